/*
 * gateway/schema_cache.h: the gateway's descriptor cache, a control-loop actor that learns the
 * schema of every service in the routing table by server reflection.
 *
 * Input: the routing table as the registry actor publishes it (REG_MSG_ROUTES, ptr = one
 * mesh_routes_t reference), asked for at start from args.routes_from (REG_MSG_ROUTES_WATCH). Each
 * service is split into variants, one per distinct (release label `version`, method set) of its
 * instances: a rolling deploy that changes either brings a new variant, which is fetched while the
 * old one keeps resolving. A variant whose descriptors the cache does not hold is fetched from one
 * of its live instances over the request-level app seam (transport/rpc.h): reflection v1, else
 * v1alpha, file_containing_symbol for the service, then file_by_filename for the imports the
 * answers left out (grpc/reflection.h). At most max_fetches run at once; each instance gets
 * fetch_timeout_ms (an instance that accepts and never answers is the common failure); on failure
 * the next instance of the variant is tried; after tries_per_round failed instances the service
 * backs off (doubling from backoff_min_ms to backoff_max_ms, with jitter). A service whose
 * instances all answer UNIMPLEMENTED for both reflection versions is logged once, counted and
 * skipped until a new variant appears. grpc.health.v1.Health and the reflection services are left
 * out.
 *
 * A variant without live instances (the old version after a deploy, a removed service) keeps
 * its descriptors for grace_ms, then they are dropped. Work is proportional to what changed: a
 * table update is read through mesh_routes_diff(), so only changed services are looked at, and
 * an instance added to or removed from a known variant fetches nothing.
 *
 * Output: on_pool(ctx, merged, generation) on the actor's loop whenever the merged set of files
 * changed, at most once per coalesce_ms. merged is one descriptor pool of every held variant's
 * files, its model built for the cached services; when two variants carry a file of the same
 * name with different content the newer variant's copy wins (newer: first seen later in the
 * table) and that is logged; unless the two are variants of one service with different
 * release labels, the conflict is also reported by gw_cache_conflict(). The pool stays valid
 * until the next on_pool call or the actor's stop; the callback may read it, never free it.
 *
 * Stats for the admin API (GET /v1/gateway/schemas): gw_cache_stats_json() on the same loop.
 */
#ifndef GW_SCHEMA_CACHE_H
#define GW_SCHEMA_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "actors/actor.h"
#include "grpc/descriptors.h"
#include "transport/rpc.h"

struct json_t;

/** Builds the seam to the instance at addr ("host:port"); events go to deliver(deliver_ud). */
typedef mesh_rpc_t *(*gw_cache_rpc_fn)(void *arg, mesh_actor_t *self, const char *addr,
                                       mesh_rpc_deliver_fn deliver, void *deliver_ud);

/** The merged pool changed (see the file comment). */
typedef void (*gw_cache_pool_fn)(void *ctx, const mesh_desc_pool_t *merged, uint64_t generation);

typedef struct gw_cache gw_cache_t;

/** What every start of the actor reads; must outlive the actor. Zero settings mean defaults. */
typedef struct gw_cache_args {
    gw_cache_rpc_fn rpc_new; /* required */
    void *rpc_arg;
    gw_cache_pool_fn on_pool; /* may be NULL */
    void *ctx;
    /** Asked for the routing tables at every start (REG_MSG_ROUTES_WATCH: the node actor);
     *  0: whoever owns the tables sends them unasked. */
    mesh_actor_id_t routes_from;
    uint32_t max_fetches;      /* fetches at once; default 4 */
    uint32_t tries_per_round;  /* instances tried before backing off; default 3 */
    uint64_t fetch_timeout_ms; /* per instance; default 5000 */
    uint64_t backoff_min_ms;   /* default 1000 */
    uint64_t backoff_max_ms;   /* default 60000 */
    uint64_t grace_ms;         /* descriptors of a variant without instances; default 30000 */
    uint64_t coalesce_ms;      /* between two on_pool calls; default 100 */
    /** Set by the actor while it runs (NULL otherwise): what gw_cache_stats_json() reads. */
    gw_cache_t *live;
} gw_cache_args_t;

/** The actor's operations (spawn with a gw_cache_args_t *). */
extern const mesh_actor_ops_t gw_cache_actor_ops;

/** Numbers of the admin API and the tests. */
typedef struct gw_cache_counts {
    size_t services;      /* services in the table (infrastructure services left out) */
    size_t held;          /* services with at least one variant's descriptors */
    size_t fetching;      /* fetches in flight */
    size_t queued;        /* variants waiting for a fetch slot */
    size_t failed;        /* services backing off after a failed round */
    size_t no_reflection; /* services whose instances serve no reflection */
    uint64_t fetches;     /* fetches started (one per instance asked) */
    uint64_t fetched;     /* variants fetched */
    uint64_t timeouts;    /* instances that did not answer within fetch_timeout_ms */
    uint64_t conflicts;   /* same-named files with different content, at the last merge */
    uint64_t generation;  /* of the last on_pool call */
    size_t files;         /* files held, all variants */
    size_t bytes;         /* serialized bytes of those files */
} gw_cache_counts_t;

/** The counts of a running cache (zeros when c is NULL). On the actor's loop. */
void gw_cache_counts(const gw_cache_t *c, gw_cache_counts_t *out);

/**
 * The stats as a JSON object (a new reference; NULL when out of memory): the counts, and per
 * service its state, last error and retry time, and its variants (version, instances, files,
 * bytes, fetch time). A stopped cache gives {"running":false}. On the actor's loop.
 */
struct json_t *gw_cache_stats_json(const gw_cache_t *c);

/** The last merge's unresolved conflicts (see schema_merge.c): file names two sources carry
 *  with different content that no release label decides (two services, or one service's
 *  variants with the same `version`). gw_cache_conflict gives the i-th file name and, in *why,
 *  a sentence naming both sources. On the actor's loop (e.g. in on_pool). */
size_t gw_cache_conflict_count(const gw_cache_t *c);
const char *gw_cache_conflict(const gw_cache_t *c, size_t i, const char **why);

/** Calls fn for every service of the table whose instances serve no reflection (and whose
 *  descriptors the cache therefore cannot hold). On the actor's loop. */
void gw_cache_each_unfetchable(const gw_cache_t *c, void (*fn)(void *ud, const char *service),
                               void *ud);

/** The production seam: a gRPC client of addr on the actor's libuv loop (arg unused). */
mesh_rpc_t *gw_cache_rpc_grpc(void *arg, mesh_actor_t *self, const char *addr,
                              mesh_rpc_deliver_fn deliver, void *deliver_ud);

#endif
