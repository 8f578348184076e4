/*
 * node/registry_actor.h: the registry actor: on the control loop, it watches etcd
 * (registry/view.h), merges the etcd view with the static routes (registry/reconciler.h) and
 * publishes every new routing table to the node's workers.
 */
#ifndef MESH_REGISTRY_ACTOR_H
#define MESH_REGISTRY_ACTOR_H

#include "node/node.h"
#include "common/config.h"

typedef struct mesh_registry_actor mesh_registry_actor_t;

/**
 * Spawns the registry actor, under a supervisor that restarts it with backoff, on node's
 * control loop. static_routes (may be NULL) is merged into every table; the actor takes over
 * that reference. Returns a handle, or NULL (logged). cfg must outlive the node's run.
 */
mesh_registry_actor_t *mesh_registry_actor_start(mesh_node_t *node, const mesh_config_t *cfg,
                                                 mesh_routes_t *static_routes);

/** Frees what the actor's starts share, after mesh_node_run returned. */
void mesh_registry_actor_release(mesh_registry_actor_t *a);

#endif
