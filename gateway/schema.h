/*
 * gateway/schema.h: compact, immutable protobuf schema tables for the JSON <-> protobuf
 * transcoder, built from serialized FileDescriptorProtos.
 *
 * Input is what server reflection returns (several files, dependencies again, duplicates
 * possible) or the files of a FileDescriptorSet. The well-known types (google/protobuf/
 * {any,duration,empty,field_mask,struct,timestamp,wrappers}.proto) are built in and need not be
 * supplied. Every type reference is resolved to a pointer once; afterwards lookups are binary
 * searches over sorted tables and allocate nothing. A schema is reference counted (C11 atomics)
 * so one snapshot can be shared by every worker thread; it is never modified after building.
 */
#ifndef GW_SCHEMA_H
#define GW_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Field types, numbered as in descriptor.proto's FieldDescriptorProto.Type. */
typedef enum {
    GW_TYPE_DOUBLE = 1,
    GW_TYPE_FLOAT = 2,
    GW_TYPE_INT64 = 3,
    GW_TYPE_UINT64 = 4,
    GW_TYPE_INT32 = 5,
    GW_TYPE_FIXED64 = 6,
    GW_TYPE_FIXED32 = 7,
    GW_TYPE_BOOL = 8,
    GW_TYPE_STRING = 9,
    GW_TYPE_GROUP = 10,
    GW_TYPE_MESSAGE = 11,
    GW_TYPE_BYTES = 12,
    GW_TYPE_UINT32 = 13,
    GW_TYPE_ENUM = 14,
    GW_TYPE_SFIXED32 = 15,
    GW_TYPE_SFIXED64 = 16,
    GW_TYPE_SINT32 = 17,
    GW_TYPE_SINT64 = 18,
} gw_type_t;

/** Well-known types that have a special JSON form. */
typedef enum {
    GW_WKT_NONE = 0,
    GW_WKT_ANY,
    GW_WKT_TIMESTAMP,
    GW_WKT_DURATION,
    GW_WKT_FIELD_MASK,
    GW_WKT_STRUCT,
    GW_WKT_VALUE,
    GW_WKT_LIST_VALUE,
    GW_WKT_EMPTY,
    GW_WKT_WRAPPER, /* DoubleValue ... BytesValue: the bare value of field 1 */
} gw_wkt_t;

typedef struct gw_message gw_message_t;
typedef struct gw_enum gw_enum_t;

/** One field of a message. */
typedef struct {
    /** Original name ("foo_bar"). */
    const char *name;
    /** JSON name ("fooBar"): the descriptor's json_name, or lowerCamelCase of the name. */
    const char *json_name;
    uint32_t number;
    gw_type_t type;
    bool repeated;
    /** Repeated scalars are written packed (proto3 default, or [packed=true]). */
    bool packed;
    /** The field tracks presence (message, oneof member, proto3 `optional`, proto2 singular):
     * a set default value is still emitted. */
    bool has_presence;
    /** The field is declared proto3 `optional` (its synthetic oneof is not a real one). */
    bool proto3_optional;
    /** Index of the real oneof the field belongs to, or -1. */
    int32_t oneof_index;
    /** For GW_TYPE_MESSAGE / GW_TYPE_GROUP: the resolved message type. */
    const gw_message_t *message;
    /** For GW_TYPE_ENUM: the resolved enum type. */
    const gw_enum_t *enumeration;
} gw_field_t;

/** One message type. */
struct gw_message {
    /** Fully qualified name without the leading dot ("pkg.Outer.Inner"). */
    const char *full_name;
    /** Fields sorted by number. */
    const gw_field_t *fields;
    size_t n_fields;
    /** The same fields sorted by json_name and by name (for binary search). */
    const gw_field_t *const *by_json_name;
    const gw_field_t *const *by_name;
    /** Names of the oneofs by index (synthetic proto3-optional oneofs included; fields of those
     * have oneof_index -1). */
    const char *const *oneof_names;
    size_t n_oneofs;
    /** This is a map<K,V> entry type (key is field 1, value field 2). */
    bool map_entry;
    gw_wkt_t wkt;
};

/** One value of an enum. */
typedef struct {
    const char *name;
    int32_t number;
} gw_enum_value_t;

/** One enum type. */
struct gw_enum {
    const char *full_name;
    /** Values sorted by number (first declared wins among aliases) and by name. */
    const gw_enum_value_t *by_number;
    size_t n_by_number;
    const gw_enum_value_t *by_name;
    size_t n_values;
    /** google.protobuf.NullValue: written as JSON null. */
    bool null_value;
};

/** A built schema. */
typedef struct gw_schema gw_schema_t;

/**
 * Builds a schema from n serialized FileDescriptorProtos (any order; a file named twice is
 * taken once). The built-in well-known type files are added unless supplied. Returns a schema
 * with one reference, or NULL with a message in err ("file x.proto: message a.B field c: type
 * .a.Missing not found", "file x.proto: dependency y.proto not found").
 */
gw_schema_t *gw_schema_build(const uint8_t *const *files, const size_t *lens, size_t n, char *err,
                             size_t errlen);

/** Like gw_schema_build() from one serialized FileDescriptorSet. */
gw_schema_t *gw_schema_build_set(const uint8_t *set, size_t len, char *err, size_t errlen);

struct mesh_desc_pool;

/** Like gw_schema_build() from every file of a descriptor pool (grpc/descriptors.h), e.g. the
 * one the sidecar fills from reflection. */
gw_schema_t *gw_schema_build_from_pool(const struct mesh_desc_pool *pool, char *err, size_t errlen);

/** Takes another reference; returns s. Thread-safe. */
gw_schema_t *gw_schema_ref(gw_schema_t *s);

/** Drops a reference; the last one frees the schema. Thread-safe; NULL is ignored. */
void gw_schema_unref(gw_schema_t *s);

/** The message type with that fully qualified name (a leading dot is allowed), or NULL. */
const gw_message_t *gw_schema_find_message(const gw_schema_t *s, const char *name);

/** The enum type with that fully qualified name (a leading dot is allowed), or NULL. */
const gw_enum_t *gw_schema_find_enum(const gw_schema_t *s, const char *name);

/** Number of message types (built-in ones included). */
size_t gw_schema_message_count(const gw_schema_t *s);

/** The field with that number, or NULL. */
const gw_field_t *gw_message_field_by_number(const gw_message_t *m, uint32_t number);

/** The field whose JSON name or original name is the n bytes at name, or NULL. */
const gw_field_t *gw_message_field_by_json(const gw_message_t *m, const char *name, size_t n);

/** The enum value with that number, or NULL. */
const gw_enum_value_t *gw_enum_by_number(const gw_enum_t *e, int32_t number);

/** The enum value with that name, or NULL. */
const gw_enum_value_t *gw_enum_by_name(const gw_enum_t *e, const char *name, size_t n);

/** The serialized FileDescriptorSet of the built-in well-known types. */
const uint8_t *gw_wkt_descriptor_set(size_t *len);

#endif
