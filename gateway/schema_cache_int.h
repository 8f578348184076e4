/*
 * gateway/schema_cache_int.h: the descriptor cache's state, shared by its three files
 * (schema_cache.c: the actor and its fetches; schema_merge.c: the merged pool;
 * schema_cache_json.c: the admin stats). Not for other modules.
 */
#ifndef GW_SCHEMA_CACHE_INT_H
#define GW_SCHEMA_CACHE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "gateway/schema_cache.h"
#include "grpc/reflection.h"
#include "registry/route_table.h"

/** A variant's state. */
typedef enum {
    GWC_V_NEED = 0,     /* no descriptors yet; queued when it has instances */
    GWC_V_FETCHING = 1, /* a fetch is asking one of its instances */
    GWC_V_HAVE = 2,     /* descriptors held */
    GWC_V_FAILED = 3,   /* the last round failed: waiting for the service's backoff */
    GWC_V_NOREFL = 4,   /* its instances serve no reflection: skipped */
} gwc_vstate_t;

/** One serialized FileDescriptorProto. */
typedef struct gwc_file {
    char *name;
    uint8_t *data;
    size_t len;
} gwc_file_t;

typedef struct gwc_svc gwc_svc_t;

/** Instances of one service sharing a release label and a method set. */
typedef struct gwc_variant {
    gwc_svc_t *svc;
    char *version;  /* "" when unknown */
    uint64_t mhash; /* hash of the sorted method list; 0 when the instances do not list it */
    uint64_t seq;   /* first seen: a higher seq is the newer variant */
    gwc_vstate_t state;
    uint32_t n_instances; /* in the current table; 0: absent (grace running) */
    uint64_t absent_since;
    int in_absent; /* listed in gw_cache.absent */
    int queued;    /* in the fetch queue */
    struct gwc_variant *qnext;
    uint32_t next_inst; /* where the next round starts among its instances */
    gwc_file_t *files;
    size_t n_files;
    size_t bytes;
    uint64_t fetch_ns; /* duration of the fetch that got the files */
    uint64_t fetched_at;
    char from[64]; /* the instance the files came from */
} gwc_variant_t;

/** One service of the table (or one that left it, until its variants' grace ends). */
struct gwc_svc {
    gwc_svc_t *hnext;
    char *name;
    mesh_route_svc_t *obj; /* its object in the current table (a reference); NULL: absent */
    gwc_variant_t **v;
    size_t n_v, cap_v;
    uint32_t failures; /* failed rounds in a row */
    uint64_t retry_at; /* backoff: when its failed variants are asked again */
    int in_backoff;
    int norefl_logged;
    char last_error[200];
};

/** A fetch in flight: one variant, one instance at a time. */
typedef struct gwc_fetch {
    gwc_variant_t *v; /* NULL: the slot is free */
    mesh_rpc_t *rpc;
    mesh_reflect_t *refl;
    uint64_t call_tag;
    uint64_t timer;
    uint64_t started;       /* this instance's start */
    uint32_t tried, unimpl; /* instances tried this round, and of them without reflection */
    uint32_t inst;          /* the instance asked (index among the variant's instances) */
    char addr[128];
} gwc_fetch_t;

struct gw_cache {
    mesh_actor_t *self;
    gw_cache_args_t *a;
    /* settings with defaults applied */
    uint32_t max_fetches, tries;
    uint64_t timeout_ms, backoff_min_ms, backoff_max_ms, grace_ns, coalesce_ns;

    mesh_routes_t *routes;
    gwc_svc_t **buckets;
    size_t n_buckets, n_svcs, n_table_svcs;
    uint64_t seq;
    uint64_t next_tag;

    gwc_fetch_t *fetches;
    size_t n_fetching;
    gwc_variant_t *q_head, *q_tail;
    size_t n_queued;

    gwc_variant_t **absent; /* variants without instances (grace) */
    size_t n_absent, cap_absent;
    gwc_svc_t **backoff; /* services waiting to retry */
    size_t n_backoff, cap_backoff;
    uint64_t wake_timer, wake_at;

    int dirty;
    uint64_t emit_timer;
    uint64_t last_emit;
    mesh_desc_pool_t *merged;
    uint64_t generation;

    uint64_t fetches_started, fetched, timeouts, conflicts;
    /* the last merge's unresolved conflicts: file name, why, file name, why, ... */
    char **unresolved;
    size_t n_unresolved;
    size_t no_reflection;
};

/** Builds the merged pool of every held variant (see schema_cache.h); NULL when out of
 * memory. Counts conflicts into c->conflicts (reset per merge) and logs them; those no release
 * label decides go to c->unresolved (replaced per merge). */
mesh_desc_pool_t *gwc_merge(gw_cache_t *c);

/** Frees c->unresolved. */
void gwc_unresolved_clear(gw_cache_t *c);

/** The name of a variant state for the stats. */
const char *gwc_vstate_name(gwc_vstate_t s);

#endif
