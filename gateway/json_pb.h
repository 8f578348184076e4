/*
 * gateway/json_pb.h: JSON text -> protobuf wire bytes under the proto3 JSON mapping, driven by
 * a gw_schema_t message type (no generated code). JSON is tokenized by
 * json_tape (strict RFC 8259) into a flat tape, no tree.
 *
 * Accepted: lowerCamelCase and original field names; 64-bit integers as strings or numbers;
 * bytes as standard or URL-safe base64, padded or not; enums by name or number; "NaN",
 * "Infinity", "-Infinity"; null as the default value; the well-known types' special forms.
 * Unknown fields are rejected (option: ignored). Output is canonical: fields in number order,
 * repeated scalars packed where the schema packs them, defaults of fields without presence
 * omitted, map entries with both key and value - the bytes C++/Python protobuf would write, up to
 * the order of map entries.
 */
#ifndef GW_JSON_PB_H
#define GW_JSON_PB_H

#include <stdbool.h>
#include <stddef.h>

#include "gateway/buf.h"
#include "gateway/pb_json.h"
#include "gateway/schema.h"

/** Options of the JSON -> protobuf direction; zero means the defaults. */
typedef struct {
    /** Skip JSON fields the message does not have instead of failing. */
    bool ignore_unknown;
    /** How Any's "@type" is resolved; NULL: Any values are an error. */
    gw_resolve_fn resolve;
    void *resolve_ud;
} gw_json_pb_opts_t;

/**
 * Appends the protobuf encoding of the JSON text json[0..len) as message m to out. Returns
 * GW_OK, or an error code with a message in err: malformed JSON gives "line L column C: ...",
 * a wrong value names the field path ("items[2].price: expected a number"). On error out->len
 * is restored to its value on entry.
 */
gw_status_t gw_json_to_pb(const gw_message_t *m, const char *json, size_t len,
                          const gw_json_pb_opts_t *opts, gw_buf_t *out, char *err, size_t errlen);

#endif
