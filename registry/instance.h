/*
 * registry/instance.h: one registered instance as stored in etcd: its key
 * `<prefix>/<package.Service>/<host:port>` and its value.
 *
 * The value is the JSON of etcd's naming tools for grpc-go (clientv3/naming/endpoints writes
 * it, clientv3/naming/resolver reads it), with meshd's own data in a sibling object that those
 * tools ignore:
 *
 *   {"Op":0,"Addr":"host:port","Metadata":null,
 *    "meshd":{"node":..,"methods":[..],"zone":..,"weight":..,"version":..,"labels":{..},
 *             "tls":"mtls"}}
 *
 * `tls` is "mtls" when the address is a meshd node's mesh port that serves TLS with a mesh
 * identity (a sidecar with --identity-dir): nodes with an identity then call it over mTLS.
 * Absent (records of other tools, etcdctl, meshd nodes without an identity) or any other value:
 * h2c, as before.
 *
 * `Metadata` stays null: grpc-go hands it to its balancers inside resolver.Address, which they
 * use as a map key, and a JSON object decodes to an unhashable Go map (grpc-go 1.33 panics).
 * Read are: this form; the form meshd wrote before, with meshd's data inside `Metadata`; and
 * records with no meshd data at all, as other tools write them (`Metadata` absent, null, or
 * any value that is not meshd's: an instance whose methods are unknown, weight 1).
 */
#ifndef REG_INSTANCE_H
#define REG_INSTANCE_H

#include <stddef.h>
#include <stdint.h>

/** The default key prefix. */
#define REG_DEFAULT_PREFIX "meshd/services"

/** Limits of a value; a record beyond them is malformed (rejected and logged, never cut). */
#define REG_MAX_METHODS 65535 /* methods of one instance (the view stores the count in 16 bits) */
#define REG_MAX_WEIGHT  1000000

/** One label; strings are borrowed. */
typedef struct reg_label {
    const char *key;
    const char *value;
} reg_label_t;

/**
 * An instance's fields; strings are borrowed. NULL strings mean "unknown".
 *
 * methods == NULL means the record does not list the instance's methods: it may serve every
 * method of its service (records written by other tools). A non-NULL methods with n_methods 0
 * is an instance that lists no method at all.
 */
typedef struct reg_instance {
    const char *addr;
    const char *node;
    const char *zone;
    const char *version;        /* release label (canaries); never a schema hash */
    const char *schema;         /* descriptor or schema hash, when one is published */
    const char *const *methods; /* method names ("Get"), n_methods entries; NULL: unknown */
    size_t n_methods;
    const reg_label_t *labels; /* n_labels entries, in the record's order */
    size_t n_labels;
    uint32_t weight; /* 1 when unknown; 0..REG_MAX_WEIGHT */
    int mesh_tls;    /* "tls":"mtls": a meshd mesh port serving TLS with a mesh identity */
} reg_instance_t;

/** A parsed key: service and addr point into the key (not NUL-terminated). */
typedef struct reg_key {
    const char *service;
    size_t service_len;
    const char *addr;
    size_t addr_len;
} reg_key_t;

/** What reg_value_parse found. */
typedef enum {
    REG_VALUE_OK = 0,       /* an instance (Op 0 / Add) */
    REG_VALUE_DELETE = 1,   /* a naming-resolver Delete record (Op 1): no instance */
    REG_VALUE_INVALID = -1, /* not an instance record (or out of memory) */
} reg_value_status_t;

/** Where a parsed value's meshd data came from. */
typedef enum {
    REG_VALUE_FORM_PLAIN = 0,    /* no meshd data: written by another tool */
    REG_VALUE_FORM_MESHD = 1,    /* the sibling "meshd" object (what meshd writes) */
    REG_VALUE_FORM_METADATA = 2, /* meshd's data inside "Metadata" (meshd's former format) */
} reg_value_form_t;

/**
 * A parsed value. The strings live in an internal JSON tree and the method and label arrays in
 * one allocation, both freed by reg_value_release().
 */
typedef struct reg_value {
    reg_instance_t inst;
    reg_value_form_t form;
    void *json;
    void *arrays;
} reg_value_t;

/**
 * Parses key (len bytes) as `<prefix>/<service>/<addr>`: service and addr non-empty, without
 * '/', control characters or spaces. Returns 0, or -1 when the key does not have that shape.
 */
int reg_key_parse(const char *key, size_t len, const char *prefix, size_t prefix_len,
                  reg_key_t *out);

/** Writes `<prefix>/<service>/<addr>` into buf; returns its length, or -1 if cap is short. */
int reg_key_format(char *buf, size_t cap, const char *prefix, const char *service,
                   const char *addr);

/**
 * Parses a value. On REG_VALUE_OK out->inst is filled (release with reg_value_release()); on
 * the other results nothing needs releasing. Weight defaults to 1, strings and methods to NULL.
 *
 * Rules: a JSON object; `Op` absent or 0 (1 is a Delete record); `Addr` a non-empty string
 * without '/', spaces or control characters. meshd's data is read from `meshd` when present
 * (an object, or null for none), else from `Metadata` when that is an object; any other
 * `Metadata` (null, a string, a number...) is another tool's and ignored. In meshd's data,
 * `weight` is an integer 0..REG_MAX_WEIGHT, `methods` an array of at most REG_MAX_METHODS names,
 * `labels` an object of strings, and node, zone, version and schema strings (other types are
 * ignored); a record that breaks these rules is malformed (REG_VALUE_INVALID).
 */
reg_value_status_t reg_value_parse(const char *val, size_t len, reg_value_t *out);

/** Frees what reg_value_parse() kept. */
void reg_value_release(reg_value_t *v);

/**
 * Formats an instance as its etcd value (malloc'd, compact JSON): `Op` 0, `Addr`,
 * `Metadata` null and the `meshd` object (methods omitted when inst->methods is NULL, labels
 * when there are none). NULL on out of memory.
 */
char *reg_value_format(const reg_instance_t *inst);

/**
 * Writes the key of the monitor's eviction marker of service/addr into buf:
 * `<root>/evicted/<service>/<addr>`, where root is prefix without its last component
 * ("meshd/services" -> "meshd/evicted/..."). Returns its length, or -1 if cap is short.
 */
int reg_marker_key_format(char *buf, size_t cap, const char *prefix, const char *service,
                          const char *addr);

/**
 * The lease an eviction marker's value names ({"lease":"<id>",...}; a JSON string or number),
 * or 0 when the value names none (the marker then applies to any registration).
 */
int64_t reg_marker_lease(const char *val, size_t len);

#endif
