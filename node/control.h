/*
 * node/control.h: the control actors a role runs, built from its config and started under the
 * node's root supervisor (node/node.h): the audit actor (audit/audit_actor.h) when audit is on,
 * first, so that it stops after every actor that emits; the registry actor
 * (registry/registry_actor.h) when etcd or gossip is configured, the gossip bridge
 * (node/gossip_bridge.h, which runs the gossip actor) when gossip is, and the sidecar actor
 * (node/sidecar_actor.h) for `meshd sidecar`.
 *
 * The registry actor starts first, so the sidecar (started after it) can message it; both are
 * restarted with backoff when they fail, and the node stops with exit 1 when the supervisor
 * gives up.
 */
#ifndef MESH_NODE_CONTROL_H
#define MESH_NODE_CONTROL_H

#include "actors/supervisor.h"
#include "audit/audit_actor.h"
#include "audit/audit_io.h"
#include "audit/audit_load.h"
#include "node/node.h"
#include "node/control_metrics.h"
#include "node/gossip_bridge.h"
#include "node/ca_server.h"
#include "node/identity_client.h"
#include "monitor/monitor_actor.h"
#include "node/sidecar_actor.h"
#include "registry/registry_actor.h"

#define NODE_CONTROL_MAX 8

/** The control actors of one node; lives until the node is freed. */
typedef struct node_control {
    audit_api_t audit;        /* the node's record context; audit.actor 0: audit off */
    audit_args_t *audit_args; /* NULL when audit is off */
    audit_kafka_factory_t audit_kafka;
    audit_posix_factory_t audit_fs;
    audit_load_args_t audit_load; /* --audit-test-rate */
    char audit_spool[4096], audit_file[4096];
    mesh_supervisor_spec_t sup;
    mesh_child_spec_t children[NODE_CONTROL_MAX];
    reg_curl_factory_t etcd;
    reg_actor_args_t *registry; /* NULL without etcd */
    mesh_actor_id_t registry_id;
    sc_args_t sidecar;
    gsp_bridge_args_t gossip;
    int gossip_on;
    int watch; /* the registry actor routes (node_control_registry's watch) */
    mesh_actor_id_t monitor_id;
    mesh_actor_id_t gossip_id; /* the gossip bridge (indirect checks go through it) */
    int monitor_gossip; /* a monitor without etcd: the bridge feeds it the gossip instances */
    node_reg_metrics_t reg_metrics; /* the registry view's figures for /metrics */
    ca_server_args_t ca;            /* the mesh CA (--ca-dir) */
    identity_args_t identity;       /* the node's certificate (--ca-url) */
} node_control_t;

/** Initializes an empty set. */
void node_control_init(node_control_t *c);

/**
 * Sets up audit for the node (node name from cfg, role "proxy", "sidecar", ...): the record
 * context every emitter shares, and the audit actor when the audit.* options turn audit on
 * (audit/audit_options.h), with GET /v1/audit in the admin API. Call first, after
 * mesh_node_admin_listen. Checks what can be checked before running: the spool folder can be
 * created and locked, the audit file opened. Returns 0 (also when audit is off), -1 on a
 * failure of the node (logged), -2 on a configuration the node cannot run with (logged: exit 2).
 */
int node_control_audit(node_control_t *c, mesh_node_t *node, const mesh_config_t *cfg,
                       const char *role);

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

/**
 * Adds the mesh CA (node/ca_server.h) when cfg has --ca-dir, and the identity client
 * (node/identity_client.h) when it has --ca-url; call after node_control_audit. The CA's root
 * and tokens are checked here. Returns 0 (also when neither is configured), or -2 on a
 * configuration the node cannot run with (logged: exit 2).
 */
int node_control_ca(node_control_t *c, mesh_node_t *node, const mesh_config_t *cfg);

/** Adds the sidecar actor for cfg, advertising advertise. 0 or -1. */
int node_control_sidecar(node_control_t *c, mesh_node_t *node, const mesh_config_t *cfg,
                         const char *advertise);

/**
 * Adds the monitor actor (monitor/monitor_actor.h) with its etcd seam on cfg's endpoints and
 * its gRPC call seam; a fills its own options before. Without etcd endpoints the monitor works
 * from gossip (call node_control_gossip after this: the bridge feeds the monitor the live
 * members' instances). Serves GET /v1/monitor in the admin API. 0 or -1.
 */
int node_control_monitor(node_control_t *c, mesh_node_t *node, const mesh_config_t *cfg,
                         mon_args_t *a);

/**
 * Adds another control actor (a role's own, e.g. the gateway's descriptor cache) started after
 * the ones added before it; its id is written to *id_out (may be NULL) at every start. 0 or -1.
 */
int node_control_add(node_control_t *c, const mesh_actor_ops_t *ops, void *arg, uint32_t mailbox,
                     mesh_actor_id_t *id_out);

/** Starts what was added under the node's root supervisor. 0 or -1. */
int node_control_start(node_control_t *c, mesh_node_t *node);

/** The node's audit handle (what emitters get). */
static inline audit_api_t *node_control_audit_api(node_control_t *c)
{
    return &c->audit;
}

/** Frees what the actors' starts shared (after mesh_node_run returned). */
void node_control_release(node_control_t *c);

#endif
