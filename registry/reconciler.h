/*
 * registry/reconciler.h: the reconciler: one routing table out of every source of instances.
 *
 * Sources are static routes (config), the etcd view and, later, the gossip view. Each source
 * hands in its own table; the reconciler merges them into the table the workers route with.
 * An instance present in several sources appears once (the later source in the order static,
 * etcd, gossip describes it). Pure: no I/O, no clock; the registry actor drives it.
 */
#ifndef MESH_RECONCILER_H
#define MESH_RECONCILER_H

#include "registry/route_table.h"

#define MESH_RECONCILER_SOURCES 3

typedef struct mesh_reconciler {
    mesh_routes_t *sources[MESH_RECONCILER_SOURCES]; /* indexed by mesh_route_source_t */
} mesh_reconciler_t;

/** Starts with no source. */
void mesh_reconciler_init(mesh_reconciler_t *r);

/** Drops every source's table. */
void mesh_reconciler_destroy(mesh_reconciler_t *r);

/** Replaces one source's table (taking over the caller's reference; NULL clears it). */
void mesh_reconciler_set(mesh_reconciler_t *r, mesh_route_source_t source, mesh_routes_t *t);

/** Builds the merged table (reference count 1), or NULL when out of memory. */
mesh_routes_t *mesh_reconciler_build(const mesh_reconciler_t *r);

#endif
