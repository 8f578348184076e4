/*
 * node/role_gateway.c: `meshd gateway`, the mesh's HTTP/JSON ingress: HTTP/1.1 requests are
 * matched against the google.api.http routes of the known gRPC APIs, transcoded to protobuf and
 * sent as gRPC calls through the proxy engine (same routing table, balancer, pool, policy chain
 * and deadlines as `meshd proxy`), and the answers come back as JSON (gateway/gw_front.h).
 *
 * Wiring: a node (node/node.h) whose workers each run a proxy engine (gRPC listener only with
 * --grpc-listen) and a gateway front end (node/gw_frontend.h); routes come from --static and
 * the registry actor as for the proxy. Schemas: the descriptor cache (gateway/schema_cache.h),
 * a control actor under the node's supervisor, watches the node's routing tables
 * (REG_MSG_ROUTES_WATCH) and learns every service by reflection; each merged pool it reports
 * is published to the workers (node_gw_publish), merged with --descriptor-set FILE when one is
 * given (the file's services win), and turned into the reflection index the workers answer gRPC
 * server reflection from (node/reflect_entry.h; unless --reflection-serve false).
 * GET /v1/gateway/schemas reports both.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "gateway/gw_options.h"
#include "gateway/schema_cache.h"
#include "node/admin.h"
#include "node/cli.h"
#include "node/control.h"
#include "node/gw_frontend.h"
#include "node/node.h"
#include "node/reflect_entry.h"
#include "node/reflect_options.h"
#include "registry/route_static.h"
#include "transport/proxy.h"

typedef struct gw_role {
    node_gw_t gw;
    gw_cache_args_t cache;
    int reflection; /* the workers answer reflection (reflect below) */
    node_reflect_entry_t reflect;
} gw_role_t;

/* The descriptor cache reports a new merged pool (control loop): the HTTP/JSON API, and the
 * reflection index. */
static void on_pool(void *ctx, const mesh_desc_pool_t *merged, uint64_t generation)
{
    gw_role_t *r = ctx;
    node_gw_publish(&r->gw, merged);
    if (r->reflection)
        node_reflect_entry_publish(&r->reflect, r->cache.live, merged, generation);
}

/* GET /v1/gateway/schemas: the descriptor cache's stats, and the API the workers serve. */
static json_t *admin_schemas(void *ud, const h1_req_t *req, int *status)
{
    (void)req, (void)status;
    gw_role_t *r = ud;
    json_t *o = gw_cache_stats_json(r->cache.live);
    if (o)
        json_object_set_new(o, "api", node_gw_status_json(&r->gw));
    return o;
}

int mesh_cli_gateway(int argc, char **argv)
{
    mesh_config_t cfg;
    if (mesh_cli_load_config(&cfg, "gateway", MESH_ROLE_GATEWAY, argc, argv, NULL) != 0)
        return 2;
    int rc = 1;
    mesh_node_t *node = NULL;
    node_control_t control;
    node_control_init(&control);
    static gw_role_t role; /* read by the workers and the cache for the process's life */
    const gw_options_t *go = gw_options(&cfg);
    char err[512];
    /* --listen is the HTTP address; the engine's gRPC listener is --grpc-listen, if any. */
    char *http = strdup(cfg.listen);
    char *grpc = strdup(go->grpc_listen ? go->grpc_listen : "127.0.0.1:0");
    if (!http || !grpc) {
        free(http);
        free(grpc);
        goto out_cfg;
    }
    free(cfg.listen);
    cfg.listen = grpc;
    mesh_route_builder_t *b = mesh_route_builder_new();
    if (mesh_route_add_static_all(b, &cfg.static_routes, err, sizeof(err)) != 0) {
        mesh_route_builder_free(b);
        mesh_error("gateway", "%s", err);
        rc = 2;
        goto out;
    }
    mesh_routes_t *routes = mesh_route_builder_finish(b);
    node = mesh_node_new(&cfg);
    if (!node) {
        mesh_routes_unref(routes);
        goto out;
    }
    if (node_gw_init(&role.gw, node, &cfg, http, "gateway") != 0) {
        mesh_routes_unref(routes);
        rc = 2;
        goto out;
    }
    mesh_node_set_no_listener(node, go->grpc_listen == NULL);
    const reflect_options_t *ro = reflect_options(&cfg);
    role.reflection = ro && ro->serve;
    if (role.reflection && node_reflect_entry_init(&role.reflect, node, &cfg) != 0) {
        mesh_routes_unref(routes);
        goto out;
    }
    if (!cfg.health_passthrough) { /* grpc.health.v1 answered here (docs/entry.md) */
        mesh_node_serve_health(node, 1);
        mesh_node_set_predrain(node, (uint64_t)cfg.health_grace_ms);
    }
    if (mesh_node_listen(node) != 0 || mesh_node_admin_listen(node, "gateway") != 0) {
        mesh_routes_unref(routes);
        goto out;
    }
    mesh_info("gateway", "HTTP/JSON on %s:%d; %zu static service%s", role.gw.fcfg.host,
              node_gw_port(&role.gw), mesh_routes_count(routes),
              mesh_routes_count(routes) == 1 ? "" : "s");
    if (cfg.descriptor_set && node_gw_load_set(&role.gw, cfg.descriptor_set) != 0) {
        mesh_routes_unref(routes);
        rc = 2;
        goto out;
    }
    mesh_admin_t *admin = mesh_node_admin(node);
    if (admin && mesh_admin_add_json(admin, "/v1/gateway/schemas", admin_schemas, &role) != 0) {
        mesh_error("gateway", "cannot serve /v1/gateway/schemas");
        mesh_routes_unref(routes);
        goto out;
    }
    int arc = node_control_audit(&control, node, &cfg, "gateway");
    if (arc == 0)
        arc = node_control_ca(&control, node, &cfg); /* the mesh CA, the node's identity */
    if (arc != 0) {
        mesh_routes_unref(routes);
        rc = arc == -2 ? 2 : 1;
        goto out;
    }
    if (node_control_registry(&control, node, &cfg, routes, 1) != 0)
        goto out;
    if (node_control_gossip(&control, node, &cfg) != 0) {
        rc = 2;
        goto out;
    }
    /* The descriptor cache: every service of the node's routing tables, by reflection. */
    role.cache = (gw_cache_args_t){
        .rpc_new = mesh_node_upstream_rpc, /* TLS to instances as the workers reach them */
        .rpc_arg = node,
        .on_pool = on_pool,
        .ctx = &role,
        .routes_from = mesh_node_actor(node),
    };
    if (node_control_add(&control, &gw_cache_actor_ops, &role.cache, 0, NULL) != 0 ||
        node_control_start(&control, node) != 0)
        goto out;
    rc = mesh_node_run(node);
out:
    mesh_node_free(node);
    node_control_release(&control);
    node_gw_destroy(&role.gw);
    free(http);
out_cfg:
    mesh_config_destroy(&cfg);
    return rc;
}
