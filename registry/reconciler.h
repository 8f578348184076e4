/*
 * registry/reconciler.h: the reconciler: one routing table out of every source of instances.
 *
 * Sources are static routes (config), the etcd view and, later, the gossip view. Each source
 * hands in its own table; the reconciler merges them into the table the workers route with.
 * An instance present in several sources appears once (the later source in the order static,
 * etcd, gossip describes it). Pure: no I/O, no clock; the registry actor drives it.
 *
 * Incremental: the reconciler remembers the sources its last table was built from. A new
 * build diffs each replaced source against its previous table (by service object, so an
 * unchanged service costs a pointer comparison) and rebuilds only the services that differ;
 * a service found in one source only is shared as is, by reference; while only one source has
 * services, the merged table is that source's table itself.
 */
#ifndef MESH_RECONCILER_H
#define MESH_RECONCILER_H

#include <stddef.h>

#include "registry/route_table.h"

#define MESH_RECONCILER_SOURCES 3

typedef struct mesh_reconciler {
    mesh_routes_t *sources[MESH_RECONCILER_SOURCES]; /* indexed by mesh_route_source_t */
    mesh_routes_t *applied[MESH_RECONCILER_SOURCES]; /* the sources `merged` was built from */
    mesh_routes_t *merged;                           /* NULL before the first build */
    mesh_route_svc_builder_t *sb;                    /* scratch for merged services */
    mesh_route_edit_t *edits;                        /* scratch: changed service names */
    size_t n_edits, edits_cap;
    size_t merges;  /* services built from several sources (statistics, tests) */
    size_t rebuilt; /* services looked at by the last build (statistics, tests) */
} mesh_reconciler_t;

/** Starts with no source. */
void mesh_reconciler_init(mesh_reconciler_t *r);

/** Drops every source's table. */
void mesh_reconciler_destroy(mesh_reconciler_t *r);

/** Replaces one source's table (taking over the caller's reference; NULL clears it). */
void mesh_reconciler_set(mesh_reconciler_t *r, mesh_route_source_t source, mesh_routes_t *t);

/**
 * The merged table (a new reference for the caller), or NULL when out of memory. Costs the
 * services that changed in the sources since the last build, plus a pointer copy per service.
 */
mesh_routes_t *mesh_reconciler_build(mesh_reconciler_t *r);

#endif
