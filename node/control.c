/*
 * node/control.c: building a node's control actors from its config (see node/control.h).
 */
#include "node/control.h"

#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "gossip/gossip_options.h"
#include "node/admin.h"

void node_control_init(node_control_t *c)
{
    memset(c, 0, sizeof(*c));
    c->sup = (mesh_supervisor_spec_t){
        .name = "control-supervisor",
        .children = c->children,
        .max_restarts = 20,
        .backoff_initial_ns = 100000000ull,
        .backoff_max_ns = 30000000000ull,
    };
}

static int add_child(node_control_t *c, const mesh_actor_ops_t *ops, void *arg, uint32_t mailbox,
                     mesh_actor_id_t *id_out)
{
    if (c->sup.nchildren == NODE_CONTROL_MAX) {
        mesh_error("node", "too many control actors");
        return -1;
    }
    c->children[c->sup.nchildren++] = (mesh_child_spec_t){
        .ops = ops,
        .arg = arg,
        .opts = {.loop = MESH_LOOP_CONTROL, .mailbox = mailbox},
        .id_out = id_out,
    };
    return 0;
}

int node_control_registry(node_control_t *c, mesh_node_t *node, const mesh_config_t *cfg,
                          mesh_routes_t *static_routes, int watch)
{
    /* The static routes serve from the first accepted call on, before any actor runs. */
    if (static_routes)
        mesh_node_publish_routes(node, mesh_routes_ref(static_routes));
    int gossip = gsp_options_enabled(cfg);
    if (cfg->etcd.n == 0 && !gossip) {
        mesh_routes_unref(static_routes);
        return 0;
    }
    if (cfg->etcd.n == 0) { /* a gossip-only mesh: gossip is the registry */
        reg_actor_cfg_t rc = {
            .prefix = cfg->etcd_prefix,
            .watch = watch,
            .subscriber = watch ? mesh_node_actor(node) : 0,
            .local_registry = 1,
        };
        c->registry = reg_actor_args_new(&rc, static_routes);
        if (!c->registry)
            return -1;
        return add_child(c, &reg_actor_ops, c->registry, REG_ACTOR_MAILBOX, &c->registry_id);
    }
    c->etcd = (reg_curl_factory_t){
        .exec = mesh_node_exec(node),
        .cfg =
            {
                .endpoints = (const char *const *)cfg->etcd.items,
                .n_endpoints = cfg->etcd.n,
                .username = cfg->etcd_username,
                .password = cfg->etcd_password,
                .ca_file = cfg->etcd_ca,
                .cert_file = cfg->etcd_cert,
                .key_file = cfg->etcd_key,
            },
    };
    reg_actor_cfg_t rc = {
        .etcd_new = reg_etcd_curl_factory,
        .etcd_arg = &c->etcd,
        .prefix = cfg->etcd_prefix,
        .watch = watch,
        .snapshot_path = cfg->snapshot_file,
        .subscriber = watch ? mesh_node_actor(node) : 0,
        .link_subscriber = mesh_node_actor(node), /* etcd's state in the admin API */
    };
    c->registry = reg_actor_args_new(&rc, static_routes);
    if (!c->registry)
        return -1;
    return add_child(c, &reg_actor_ops, c->registry, REG_ACTOR_MAILBOX, &c->registry_id);
}

int node_control_gossip(node_control_t *c, mesh_node_t *node, const mesh_config_t *cfg)
{
    if (!gsp_options_enabled(cfg))
        return 0;
    gsp_bridge_args_t *a = &c->gossip;
    char err[600];
    if (gsp_options_actor_cfg(cfg, cfg->node, &a->gossip, err, sizeof(err)) != 0) {
        mesh_error("node", "%s", err);
        return -1;
    }
    a->registry = c->registry ? &c->registry_id : NULL;
    a->node = mesh_node_actor(node);
    snprintf(a->prefix, sizeof(a->prefix), "%s",
             cfg->etcd_prefix ? cfg->etcd_prefix : REG_DEFAULT_PREFIX);
    a->admin = mesh_node_admin(node);
    c->gossip_on = 1;
    return add_child(c, &gsp_bridge_ops, a, 0, NULL);
}

int node_control_sidecar(node_control_t *c, mesh_node_t *node, const mesh_config_t *cfg,
                         const char *advertise)
{
    sc_args_t *a = &c->sidecar;
    a->cfg = cfg;
    snprintf(a->advertise, sizeof(a->advertise), "%s", advertise);
    a->node = mesh_node_actor(node);
    a->registry = c->registry ? &c->registry_id : NULL;
    a->rpc_new = sc_rpc_grpc_factory;
    a->rpc_arg = mesh_node_exec(node);
    a->exec = mesh_node_exec(node);
    return add_child(c, &sc_actor_ops, a, 0, NULL);
}

int node_control_start(node_control_t *c, mesh_node_t *node)
{
    if (c->sup.nchildren == 0)
        return 0;
    return mesh_node_supervise(node, &c->sup);
}

void node_control_release(node_control_t *c)
{
    reg_actor_args_free(c->registry);
    c->registry = NULL;
}
