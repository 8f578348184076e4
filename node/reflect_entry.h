/*
 * node/reflect_entry.h: aggregated gRPC server reflection at the mesh entry, the control side.
 *
 * Runs the descriptor cache (gateway/schema_cache.h: every routed service's descriptors by
 * reflection, variants by `version`, backoff, grace) as a control actor under the node's
 * supervisor and turns each merged pool it reports into a reflection index
 * (grpc/reflect_server.h): the pool's files, the files no release label decides marked as
 * conflicts, the services whose instances serve no reflection marked unfetchable. The index is
 * published to every worker's reflection extension (node/reflect_local.h) as an immutable,
 * reference-counted snapshot, like the routing table; workers answer from it alone.
 *
 * Control loop (init on the main thread before the node runs).
 */
#ifndef MESH_NODE_REFLECT_ENTRY_H
#define MESH_NODE_REFLECT_ENTRY_H

#include <stdint.h>

#include "common/config.h"
#include "gateway/schema_cache.h"
#include "node/control.h"
#include "node/node.h"
#include "node/reflect_local.h"

/** One node's reflection at the entry; lives as long as the node (static in the role). */
typedef struct node_reflect_entry {
    mesh_node_t *node;
    int ext_id;
    mesh_node_ext_t ext;
    node_reflect_cfg_t wcfg;
    gw_cache_args_t cache;
    uint64_t generation;                /* of the last index published */
    size_t files, symbols, conflicting; /* in it */
} node_reflect_entry_t;

/** Installs the workers' reflection extension on node (before mesh_node_listen) with the
 *  reflection.* options of cfg. 0, or -1 (logged). */
int node_reflect_entry_init(node_reflect_entry_t *e, mesh_node_t *node, const mesh_config_t *cfg);

/** Publishes the index of merged (the cache c's pool of that generation; c gives its
 *  conflicts and unfetchable services) to the workers: what the cache's on_pool does. A role
 *  that runs the cache itself (the gateway) calls it from its own on_pool. */
void node_reflect_entry_publish(node_reflect_entry_t *e, const gw_cache_t *c,
                                const mesh_desc_pool_t *merged, uint64_t generation);

struct mesh_admin;

/** Serves GET /v1/reflection on admin (may be NULL: nothing): the cache's stats
 *  (gw_cache_stats_json) and the index the workers were last given. 0, or -1 (logged). */
int node_reflect_entry_admin(node_reflect_entry_t *e, struct mesh_admin *admin);

/** Adds the descriptor cache to the role's control actors (before node_control_start).
 *  0 or -1. */
int node_reflect_entry_start(node_reflect_entry_t *e, node_control_t *control);

#endif
