/*
 * registry/view_table.h: the local copy of the etcd registry prefix: one entry per key,
 * parsed once, held in one allocation each, in a hash table by key.
 *
 * Resync is mark-and-sweep: reg_table_mark() starts a generation, every key of a full range is
 * put again (a put with the same mod_revision costs a lookup, nothing else), reg_table_sweep()
 * removes what the range did not contain. Malformed values stay in the table as invalid entries
 * so that each is warned about once, not once per event or resync.
 *
 * The valid entries are also grouped by service (each service name is stored once), and the
 * table remembers which services changed since its routing table was last made, so that
 * reg_table_routes() rebuilds only those and shares every other service with the previous
 * routing table. With a snapshot writer attached (registry/snapshot_file.h), every change of a
 * valid entry is also recorded, as the key and the value bytes etcd sent, into its journal.
 */
#ifndef REG_VIEW_TABLE_H
#define REG_VIEW_TABLE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "registry/instance.h"
#include "registry/route_table.h"
#include "registry/snapshot_file.h"

typedef struct reg_svc reg_svc_t;

/** One key of the view. Strings are NUL-terminated and live inside the entry. */
typedef struct reg_entry {
    struct reg_entry *next; /* hash chain */
    uint32_t hash;
    uint32_t gen;
    int64_t mod_revision;
    int64_t lease;
    uint8_t valid;    /* 0: malformed value, skipped (and warned about once) */
    uint8_t mesh_tls; /* the record's "tls":"mtls" */
    uint16_t n_methods;
    uint32_t weight;
    uint32_t alloc_size; /* bytes of this entry's allocation */
    uint32_t klen;       /* etcd keys are bytes: they may hold a NUL */
    const char *key;
    reg_svc_t *svc;             /* valid entries: their service */
    struct reg_entry *svc_next; /* next valid entry of the same service */
    const char *service;        /* valid entries only (the service's name) */
    const char *addr;
    const char *node;    /* "" when unknown */
    const char *zone;    /* "" when unknown */
    const char *version; /* "" when unknown */
    /* n_methods names; NULL: not listed (the instance serves any method) */
    const char **methods;
} reg_entry_t;

/** The view. */
typedef struct reg_table {
    char *prefix;
    size_t prefix_len;
    reg_entry_t **buckets;
    size_t n_buckets; /* power of two */
    size_t n_entries; /* valid and invalid */
    size_t n_valid;
    uint32_t gen;
    size_t n_warned; /* malformed values warned about (for tests) */
    size_t bytes;    /* heap held by entries */
    /* services of the valid entries */
    reg_svc_t **svc_buckets;
    size_t n_svc_buckets; /* power of two */
    size_t n_svcs;
    size_t svc_bytes;
    reg_svc_t *dirty; /* services changed since `routes` was made */
    size_t n_dirty;
    mesh_routes_t *routes; /* the last table reg_table_routes() made; NULL: none yet */
    mesh_route_svc_builder_t *sb;
    mesh_route_edit_t *edits; /* scratch of reg_table_routes() */
    size_t edits_cap;
    reg_snap_buf_t *journal; /* the snapshot writer's journal, or NULL */
} reg_table_t;

/** Result of reg_table_put / reg_table_delete. */
typedef enum {
    REG_TABLE_UNCHANGED = 0,
    REG_TABLE_CHANGED = 1, /* the set of routable instances changed */
} reg_table_result_t;

/** Initializes an empty view of prefix (e.g. "meshd/services"). Returns 0 or -1. */
int reg_table_init(reg_table_t *t, const char *prefix);

/** Frees every entry. */
void reg_table_destroy(reg_table_t *t);

/** Removes every entry. */
void reg_table_clear(reg_table_t *t);

/**
 * Applies a put of key=val at mod_revision. Keys outside the prefix are ignored; malformed keys
 * or values become invalid entries (one warning each). Marks the entry with the current
 * generation. Returns REG_TABLE_CHANGED when routing changes, REG_TABLE_UNCHANGED, or -1 on OOM.
 */
int reg_table_put(reg_table_t *t, const char *key, size_t klen, const char *val, size_t vlen,
                  int64_t mod_revision, int64_t lease);

/** Applies a delete; returns REG_TABLE_CHANGED when a valid instance went away. */
int reg_table_delete(reg_table_t *t, const char *key, size_t klen);

/** Finds an entry by key; NULL when absent. */
reg_entry_t *reg_table_find(const reg_table_t *t, const char *key, size_t klen);

/** Starts a resync generation. */
void reg_table_mark(reg_table_t *t);

/**
 * Removes entries not put since reg_table_mark(); returns how many valid instances were
 * removed.
 */
size_t reg_table_sweep(reg_table_t *t);

/**
 * Fills out with every valid entry sorted by (service, addr); returns how many (at most cap).
 * The pointers stay valid until the table changes.
 */
size_t reg_table_sorted(const reg_table_t *t, const reg_entry_t **out, size_t cap);

/**
 * The routing table of the valid entries (source MESH_ROUTE_ETCD), a new reference for the
 * caller, or NULL on out of memory (the changes stay pending; a later call retries). Only the
 * services that changed since the previous call are built again; the others are shared with
 * the previous table by reference. An instance that lists no methods serves every method.
 */
mesh_routes_t *reg_table_routes(reg_table_t *t);

/** Services changed since the last reg_table_routes() (0 before the first call). */
size_t reg_table_changed(const reg_table_t *t);

/** Builds a routing table from scratch, sharing nothing (tests, benchmarks); NULL on failure. */
mesh_routes_t *reg_table_build_routes(const reg_table_t *t);

/**
 * Appends a P record for every valid entry to out, each value encoded again from the entry
 * (reg_value_format): the slow path for writing a snapshot whole. Returns 0 or -1 (OOM).
 */
int reg_table_dump(const reg_table_t *t, reg_snap_buf_t *out);

/**
 * Writes the whole view to path atomically (path.tmp, fsync, rename, fsync of the directory),
 * with the revision it reflects, blocking. Returns 0 or -1.
 */
int reg_table_save(const reg_table_t *t, const char *path, int64_t revision);

/**
 * Loads a snapshot file (registry/snapshot_file.h) into t (which should be empty, and without
 * a journal) and sets *revision. Returns the number of valid instances then in t, or -1 when
 * the file is missing or not a snapshot of the same prefix.
 */
long reg_table_load(reg_table_t *t, const char *path, int64_t *revision);

/** As reg_table_load, from the file name of a file layer (common/fs_layer.h). */
long reg_table_load_fs(reg_table_t *t, const mesh_fs_t *fs, const char *name, int64_t *revision);

/** Bytes of heap the table holds (entries, services, buckets), for the memory benchmark. */
size_t reg_table_memory(const reg_table_t *t);

#endif
