/*
 * node/control.h: the control actors a role runs, built from its config and started under the
 * node's root supervisor (node/node.h): the registry actor (registry/registry_actor.h) when
 * etcd or gossip is configured, the gossip bridge (node/gossip_bridge.h, which runs the gossip
 * actor) when gossip is, and the sidecar actor (node/sidecar_actor.h) for `meshd sidecar`.
 *
 * The registry actor starts first, so the sidecar (started after it) can message it; both are
 * restarted with backoff when they fail, and the node stops with exit 1 when the supervisor
 * gives up.
 */
#ifndef MESH_NODE_CONTROL_H
#define MESH_NODE_CONTROL_H

#include "actors/supervisor.h"
#include "node/node.h"
#include "node/gossip_bridge.h"
#include "node/sidecar_actor.h"
#include "registry/registry_actor.h"

#define NODE_CONTROL_MAX 6

/** The control actors of one node; lives until the node is freed. */
typedef struct node_control {
    mesh_supervisor_spec_t sup;
    mesh_child_spec_t children[NODE_CONTROL_MAX];
    reg_curl_factory_t etcd;
    reg_actor_args_t *registry; /* NULL without etcd */
    mesh_actor_id_t registry_id;
    sc_args_t sidecar;
    gsp_bridge_args_t gossip;
    int gossip_on;
} node_control_t;

/** Initializes an empty set. */
void node_control_init(node_control_t *c);

/**
 * Adds the registry actor (when cfg has etcd endpoints): watch selects whether it keeps a
 * view of the registry and publishes routing tables to the node (proxies) or only registers
 * (sidecars). static_routes (may be NULL) are installed on every worker at once (they serve
 * from the first accepted call on) and merged into every table the actor publishes; its
 * reference is taken over. Without etcd nothing is added. 0 or -1.
 */
int node_control_registry(node_control_t *c, mesh_node_t *node, const mesh_config_t *cfg,
                          mesh_routes_t *static_routes, int watch);

/**
 * Adds the gossip bridge (which runs the gossip actor) when cfg configures gossip; call after
 * node_control_registry. Returns 0 (also when gossip is off), or -1 with the problem logged
 * (an unreadable key file, an unresolvable seed).
 */
int node_control_gossip(node_control_t *c, mesh_node_t *node, const mesh_config_t *cfg);

/** Adds the sidecar actor for cfg, advertising advertise. 0 or -1. */
int node_control_sidecar(node_control_t *c, mesh_node_t *node, const mesh_config_t *cfg,
                         const char *advertise);

/** Starts what was added under the node's root supervisor. 0 or -1. */
int node_control_start(node_control_t *c, mesh_node_t *node);

/** Frees what the actors' starts shared (after mesh_node_run returned). */
void node_control_release(node_control_t *c);

#endif
