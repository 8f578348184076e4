/*
 * gateway/pb_json.h: protobuf wire bytes -> JSON text under the proto3 JSON mapping, driven by
 * a gw_schema_t message type (no generated code).
 *
 * Output: lowerCamelCase names (or original names), 64-bit integers as strings, bytes as
 * standard base64, enums by name (unknown numbers as numbers), NaN/Infinity as strings, maps as
 * objects, packed and unpacked repeated fields, oneofs, proto3 `optional` presence, default
 * values omitted (or emitted), unknown wire fields dropped, and the well-known types' special
 * forms. The JSON goes into a caller-owned gw_buf_t that is reused: once it is large enough a
 * call allocates nothing (except to merge a singular message field split over several wire
 * records, which canonical encoders never produce).
 */
#ifndef GW_PB_JSON_H
#define GW_PB_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/buf.h"
#include "gateway/schema.h"

/** Resolves an Any's type URL ("type.googleapis.com/pkg.Msg", n bytes) to a message type, or
 * NULL when unknown. */
typedef const gw_message_t *(*gw_resolve_fn)(void *ud, const char *type_url, size_t n);

/** Resolves a type URL by the name after its last '/' in the schema given as ud. */
const gw_message_t *gw_resolve_in_schema(void *schema, const char *type_url, size_t n);

/** Options of the protobuf -> JSON direction; zero means the defaults. */
typedef struct {
    /** Use the fields' original names instead of lowerCamelCase. */
    bool original_names;
    /** Emit fields without presence that hold their default value (0, "", [], {}). */
    bool emit_defaults;
    /** How Any's type URLs are resolved; NULL: Any values are an error. */
    gw_resolve_fn resolve;
    void *resolve_ud;
} gw_pb_json_opts_t;

/** Error codes of both directions. */
typedef enum {
    GW_OK = 0,
    GW_ERR_WIRE = 1,    /* malformed protobuf bytes */
    GW_ERR_SYNTAX = 2,  /* malformed JSON */
    GW_ERR_TYPE = 3,    /* a JSON value of the wrong type or out of range */
    GW_ERR_UNKNOWN = 4, /* an unknown JSON field, enum name or Any type */
    GW_ERR_VALUE = 5,   /* a value the mapping cannot express (bad UTF-8, NaN in Value, ...) */
    GW_ERR_DEPTH = 6,   /* nesting deeper than GW_MAX_DEPTH */
    GW_ERR_NOMEM = 7,
} gw_status_t;

/** Maximum message nesting either direction accepts. */
#define GW_MAX_DEPTH 100

/**
 * Appends the JSON form of the message m encoded in pb[0..len) to out. Returns GW_OK, or an
 * error code with a message naming the field path in err ("items[2].price: truncated field").
 * On error out->len is restored to its value on entry.
 */
gw_status_t gw_pb_to_json(const gw_message_t *m, const uint8_t *pb, size_t len,
                          const gw_pb_json_opts_t *opts, gw_buf_t *out, char *err, size_t errlen);

#endif
