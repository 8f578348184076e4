/*
 * node/registry_actor.c: the registry actor (see node/registry_actor.h).
 *
 * It owns the etcd client and the watch-fed view on the control loop. Every batch of etcd
 * changes arrives as a table through the view's callback; the actor hands it to the
 * reconciler, builds the merged table and publishes it to the workers. It logs the link
 * state (connected / degraded) and the revision when they change.
 */
#include "node/registry_actor.h"

#include <stdlib.h>
#include <string.h>

#include "actors/actor.h"
#include "actors/supervisor.h"
#include "common/log.h"
#include "registry/etcd_client.h"
#include "registry/reconciler.h"
#include "registry/view.h"

/* What every start of the actor reads; lives from mesh_registry_actor_start to
 * mesh_registry_actor_release, across restarts. */
struct mesh_registry_actor {
    mesh_node_t *node;
    const mesh_config_t *cfg;
    mesh_routes_t *static_routes; /* one reference, held for the whole run */
    mesh_child_spec_t child;
    mesh_supervisor_spec_t sup;
};
typedef struct mesh_registry_actor registry_args_t;

typedef struct registry_state {
    mesh_node_t *node;
    etcd_client_t *client;
    reg_view_t *view;
    mesh_reconciler_t rec;
    char *endpoints;
    int last_link;
    uint64_t tables;
} registry_state_t;

static void publish(registry_state_t *st)
{
    mesh_routes_t *t = mesh_reconciler_build(&st->rec);
    if (!t) {
        mesh_error("registry", "out of memory building the routing table");
        return;
    }
    st->tables++;
    mesh_node_publish_routes(st->node, t);
}

static void on_link(void *ud, reg_link_t link, int64_t revision)
{
    registry_state_t *st = ud;
    if ((int)link == st->last_link)
        return;
    st->last_link = (int)link;
    if (link == REG_LINK_CONNECTED)
        mesh_info("registry", "etcd connected (%s), revision %lld",
                  etcd_client_endpoint(st->client), (long long)revision);
    else
        mesh_warn("registry", "etcd unreachable: degraded, serving the last view (revision %lld)",
                  (long long)revision);
}

static void on_view(void *ud, mesh_routes_t *routes, const reg_table_t *table, int64_t revision)
{
    registry_state_t *st = ud;
    if (!routes)
        return;
    mesh_info("registry", "view at revision %lld: %zu service%s", (long long)revision,
              mesh_routes_count(routes), mesh_routes_count(routes) == 1 ? "" : "s");
    mesh_reconciler_set(&st->rec, MESH_ROUTE_ETCD, routes);
    publish(st);
}

static int registry_start(mesh_actor_t *self, void *arg)
{
    registry_args_t *a = arg;
    registry_state_t *st = mesh_state(self);
    const mesh_config_t *cfg = a->cfg;
    st->node = a->node;
    st->last_link = -1;
    mesh_reconciler_init(&st->rec);
    if (a->static_routes)
        mesh_reconciler_set(&st->rec, MESH_ROUTE_STATIC, mesh_routes_ref(a->static_routes));
    publish(st); /* static routes serve at once, before etcd answers */

    size_t len = 1;
    for (size_t i = 0; i < cfg->etcd.n; i++)
        len += strlen(cfg->etcd.items[i]) + 1;
    st->endpoints = calloc(1, len);
    for (size_t i = 0; i < cfg->etcd.n; i++) {
        if (i)
            strcat(st->endpoints, ",");
        strcat(st->endpoints, cfg->etcd.items[i]);
    }
    etcd_client_cfg_t ec = {
        .endpoints = st->endpoints,
        .username = cfg->etcd_username,
        .password = cfg->etcd_password,
        .ca_file = cfg->etcd_ca,
        .cert_file = cfg->etcd_cert,
        .key_file = cfg->etcd_key,
    };
    uv_loop_t *loop = mesh_exec_uv_loop(mesh_node_exec(st->node), mesh_loop_index(self));
    st->client = etcd_client_new(loop, &ec);
    if (!st->client) {
        mesh_error("registry", "cannot create the etcd client for %s", st->endpoints);
        return -1;
    }
    reg_view_cfg_t vc = {
        .client = st->client,
        .prefix = cfg->etcd_prefix,
        .snapshot_path = cfg->snapshot_file,
        .watch = {.seed = mesh_random(self)},
        .on_link = on_link,
    };
    st->view = reg_view_new(loop, &vc, on_view, st);
    if (!st->view || reg_view_start(st->view) != 0) {
        mesh_error("registry", "cannot start the etcd watch of %s", cfg->etcd_prefix);
        return -1;
    }
    mesh_info("registry", "watching %s/ on %s", cfg->etcd_prefix, st->endpoints);
    return 0;
}

static int registry_message(mesh_actor_t *self, mesh_msg_t *msg)
{
    return 0;
}

static void registry_stop(mesh_actor_t *self, int reason)
{
    registry_state_t *st = mesh_state(self);
    if (st->view)
        reg_view_free(st->view);
    if (st->client)
        etcd_client_free(st->client);
    mesh_reconciler_destroy(&st->rec);
    free(st->endpoints);
    st->view = NULL;
    st->client = NULL;
}

static const mesh_actor_ops_t registry_ops = {
    .name = "registry",
    .state_size = sizeof(registry_state_t),
    .on_start = registry_start,
    .on_message = registry_message,
    .on_stop = registry_stop,
};

mesh_registry_actor_t *mesh_registry_actor_start(mesh_node_t *node, const mesh_config_t *cfg,
                                                 mesh_routes_t *static_routes)
{
    registry_args_t *a = calloc(1, sizeof(*a));
    if (!a) {
        if (static_routes)
            mesh_routes_unref(static_routes);
        return NULL;
    }
    a->node = node;
    a->cfg = cfg;
    a->static_routes = static_routes;
    /* Supervised: a failed registry actor (etcd client or watch could not start) is restarted
     * with backoff while the workers keep routing with the last table they got. */
    a->child = (mesh_child_spec_t){.ops = &registry_ops, .arg = a};
    a->sup = (mesh_supervisor_spec_t){
        .name = "registry-supervisor",
        .children = &a->child,
        .nchildren = 1,
        .max_restarts = 20,
        .backoff_initial_ns = 100000000ull,
        .backoff_max_ns = 30000000000ull,
    };
    mesh_spawn_opts_t so = {.loop = MESH_LOOP_CONTROL, .name = "registry-supervisor"};
    if (mesh_exec_spawn(mesh_node_exec(node), &mesh_supervisor_ops, &a->sup, &so, NULL) != 0) {
        mesh_error("registry", "cannot spawn the registry actor");
        mesh_registry_actor_release(a);
        return NULL;
    }
    return a;
}

void mesh_registry_actor_release(mesh_registry_actor_t *a)
{
    if (!a)
        return;
    if (a->static_routes)
        mesh_routes_unref(a->static_routes);
    free(a);
}
