/*
 * grpc/health_serve.h: what the mesh entry (proxy, gateway) answers to grpc.health.v1, sans
 * I/O: the status of the node and of each service from the routing table, and Watch's "send
 * only on change".
 *
 * Rules (docs/entry.md):
 * - service "" (and "grpc.health.v1.Health") is the node: SERVING once it has a routing table
 *   (before the first one it could route nothing), NOT_SERVING once the node stops serving (a
 *   drain begins), so load balancers stop before the GOAWAY;
 * - a service of the routing table is SERVING while the table lists at least one instance of
 *   it (what routing uses: the table already leaves out evicted and dead instances; local
 *   outlier ejection and connect backoff do not count, the engine never ejects the last
 *   instance), NOT_SERVING when it lists none or the node is draining;
 * - a service that left the table is NOT_SERVING for gone_ttl_ms (so a Watch and a Check see
 *   its last instance go), then unknown again;
 * - any other name is unknown: Check answers NOT_FOUND, Watch SERVICE_UNKNOWN.
 * One mesh_health_entry_t per worker, fed every table the worker installs, with the time.
 */
#ifndef MESH_HEALTH_SERVE_H
#define MESH_HEALTH_SERVE_H

#include <stddef.h>
#include <stdint.h>

#include "grpc/health_msg.h"
#include "registry/route_table.h"

/** How long a service that left the table stays NOT_SERVING (then unknown): 10 minutes. */
#define MESH_HEALTH_GONE_TTL_MS (10ull * 60 * 1000)

typedef struct mesh_health_entry mesh_health_entry_t;

/** A worker's health state; gone_ttl_ms 0: MESH_HEALTH_GONE_TTL_MS. NULL when out of memory. */
mesh_health_entry_t *mesh_health_entry_new(uint64_t gone_ttl_ms);
void mesh_health_entry_free(mesh_health_entry_t *e);

/** A table install (before: the previous table or NULL) at now_ms: remembers the services that
 *  left, forgets those back and those gone longer than the TTL. O(changes + expired). 0, or -1
 *  when out of memory (a service that left is then unknown at once). */
int mesh_health_entry_routes(mesh_health_entry_t *e, const mesh_routes_t *before,
                             const mesh_routes_t *after, uint64_t now_ms);

/** The status of service (NUL-terminated) under table t (may be NULL) and draining:
 *  SERVING, NOT_SERVING, or SERVICE_UNKNOWN for a name the entry does not know. */
mesh_health_status_t mesh_health_entry_status(const mesh_health_entry_t *e, const mesh_routes_t *t,
                                              int draining, const char *service);

/** Services remembered as gone (for tests and metrics). */
size_t mesh_health_entry_gone(const mesh_health_entry_t *e);

/** One Watch's memory: the status last sent. */
typedef struct mesh_health_watch {
    int last; /* -1: nothing sent yet */
} mesh_health_watch_t;

static inline void mesh_health_watch_init(mesh_health_watch_t *w)
{
    w->last = -1;
}

/** 1 when status differs from what the Watch sent last (then it is recorded as sent), else 0. */
int mesh_health_watch_update(mesh_health_watch_t *w, mesh_health_status_t status);

#endif
