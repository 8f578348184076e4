/*
 * actors/registry_actor.h: the registry actor: on the control loop, it watches etcd
 * (registry/view.h), merges the etcd view with the static routes (registry/reconciler.h) and
 * publishes every new routing table to the node's workers.
 */
#ifndef MESH_REGISTRY_ACTOR_H
#define MESH_REGISTRY_ACTOR_H

#include "actors/node.h"
#include "common/config.h"

/**
 * Spawns the registry actor on node's control loop. static_routes (may be NULL) is merged
 * into every table; the actor takes over that reference. Returns 0 or -1 (logged).
 */
int mesh_registry_actor_start(mesh_node_t *node, const mesh_config_t *cfg,
                              mesh_routes_t *static_routes);

#endif
