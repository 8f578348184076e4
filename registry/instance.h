/*
 * registry/instance.h: one registered instance as stored in etcd: its key
 * `<prefix>/<package.Service>/<host:port>` and its value, the JSON that etcd's grpc-go naming
 * resolver reads: {"Op":0,"Addr":"host:port","Metadata":{node, methods, zone, weight, version}}.
 */
#ifndef REG_INSTANCE_H
#define REG_INSTANCE_H

#include <stddef.h>
#include <stdint.h>

/** The default key prefix. */
#define REG_DEFAULT_PREFIX "meshd/services"

/** An instance's fields; strings are borrowed. NULL strings mean "unknown". */
typedef struct reg_instance {
    const char *addr;
    const char *node;
    const char *zone;
    const char *version;
    const char *const *methods; /* method names ("Get"), n_methods entries */
    size_t n_methods;
    uint32_t weight; /* 1 when unknown */
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
    REG_VALUE_INVALID = -1, /* not an instance record */
} reg_value_status_t;

/** A parsed value; the strings live in an internal JSON tree freed by reg_value_release(). */
typedef struct reg_value {
    reg_instance_t inst;
    const char *methods_buf[64]; /* method names (at most 64 kept) */
    void *json;
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
 * the other results nothing needs releasing. Weight defaults to 1, strings to NULL.
 */
reg_value_status_t reg_value_parse(const char *val, size_t len, reg_value_t *out);

/** Frees what reg_value_parse() kept. */
void reg_value_release(reg_value_t *v);

/** Formats an instance as its etcd value (malloc'd, compact JSON), or NULL on OOM. */
char *reg_value_format(const reg_instance_t *inst);

#endif
