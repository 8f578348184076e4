/*
 * node/role_gateway.c: `meshd gateway`, the mesh's HTTP/JSON ingress: HTTP/1.1 requests are
 * matched against the google.api.http routes of the known gRPC APIs, transcoded to protobuf and
 * sent as gRPC calls through the proxy engine (same routing table, balancer, pool, policy chain
 * and deadlines as `meshd proxy`), and the answers come back as JSON (gateway/gw_front.h).
 *
 * Wiring: a node (node/node.h) whose workers each run a proxy engine (gRPC listener only with
 * --grpc-listen) and a gateway front end (the node's front end hook); routes come from
 * --static and the registry actor as for the proxy. The API schemas reach the workers as
 * immutable bundles (gateway/gw_api.h) through gw_role_publish_pool(): today from
 * --descriptor-set at start-up; the reflection-based descriptor cache calls the same function
 * whenever its merged pool changes.
 */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "gateway/gw_api.h"
#include "gateway/gw_front.h"
#include "gateway/gw_options.h"
#include "grpc/descriptors.h"
#include "node/cli.h"
#include "node/control.h"
#include "node/node.h"
#include "registry/route_static.h"
#include "transport/proxy.h"

/** The gateway role's node-side state (control loop, and the main thread before the run). */
typedef struct gw_role {
    mesh_node_t *node;
    gw_front_config_t fcfg;
    char http_host[256];
    int http_port;
    uint64_t generation; /* of the last bundle published */
} gw_role_t;

static void *fe_create(void *arg, int worker, uv_loop_t *loop, mesh_proxy_worker_t *engine)
{
    gw_role_t *r = arg;
    gw_front_config_t c = r->fcfg;
    c.port = r->http_port;
    c.worker_index = worker;
    gw_front_t *f = gw_front_new(loop, engine, &c);
    if (f)
        r->http_port = gw_front_port(f); /* port 0: the first worker picks, the others share */
    return f;
}

static void fe_update(void *fe, void *payload)
{
    gw_front_set_api(fe, payload);
}

static void fe_drain(void *fe, void (*done)(void *), void *arg)
{
    gw_front_drain(fe, done, arg);
}

static void fe_destroy(void *fe)
{
    gw_front_free(fe);
}

static void api_unref(void *p)
{
    gw_api_unref(p);
}

static void *api_ref(void *p)
{
    return gw_api_ref(p);
}

static void on_route_error(void *ctx, const char *grpc_path, const char *error)
{
    (void)ctx;
    mesh_warn("gateway", "%s: no HTTP routes: %s", grpc_path, error);
}

/**
 * Publishes the API described by pool (its model built) to every worker as a new bundle;
 * generation is the pool's version (a bundle of an older or equal generation than the last
 * one published is ignored). Control loop (or the main thread before the node runs).
 */
void gw_role_publish_pool(gw_role_t *r, const mesh_desc_pool_t *pool, uint64_t generation)
{
    if (r->generation && generation <= r->generation)
        return;
    char err[512];
    gw_api_t *api = gw_api_build(pool, generation, on_route_error, r, err, sizeof(err));
    if (!api) {
        mesh_error("gateway", "API schema generation %llu not usable: %s",
                   (unsigned long long)generation, err);
        return;
    }
    r->generation = generation;
    mesh_info("gateway", "API generation %llu: %zu methods, %zu HTTP routes",
              (unsigned long long)generation, gw_api_method_count(api),
              gw_routes_count(gw_api_routes(api)));
    mesh_node_frontend_publish(r->node, api_ref, api);
    gw_api_unref(api);
}

/* --descriptor-set FILE: the API from a FileDescriptorSet. 0 or -1 (logged). */
static int load_descriptor_set(gw_role_t *r, const char *path)
{
    mesh_desc_pool_t *pool = mesh_desc_pool_new();
    if (!pool)
        return -1;
    int rc = -1;
    if (mesh_desc_pool_load_set_file(pool, path) < 0 || mesh_desc_pool_build(pool, NULL, 0) < 0)
        mesh_error("gateway", "descriptor-set %s: %s", path, mesh_desc_pool_error(pool));
    else
        rc = 0;
    if (rc == 0)
        gw_role_publish_pool(r, pool, 1);
    mesh_desc_pool_free(pool);
    return rc;
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
    gw_role_t role = {0};
    const gw_options_t *go = gw_options(&cfg);
    char err[512];
    /* --listen is the HTTP address; the engine's gRPC listener is --grpc-listen, if any. */
    if (mesh_addr_split(cfg.listen, role.http_host, sizeof(role.http_host), &role.http_port) != 0) {
        mesh_error("gateway", "listen: '%s' is not HOST:PORT", cfg.listen);
        rc = 2;
        goto out_cfg;
    }
    char *grpc = strdup(go->grpc_listen ? go->grpc_listen : "127.0.0.1:0");
    if (!grpc)
        goto out_cfg;
    free(cfg.listen);
    cfg.listen = grpc;
    role.fcfg.host = role.http_host[0] ? role.http_host : "0.0.0.0";
    role.fcfg.default_timeout_ms = (uint64_t)go->timeout_ms;
    role.fcfg.max_timeout_ms = (uint64_t)go->max_timeout_ms;
    role.fcfg.http.conn.max_body = (uint64_t)go->max_body;
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
    role.node = node;
    mesh_node_frontend_t fe = {
        .create = fe_create,
        .update = fe_update,
        .drain = fe_drain,
        .destroy = fe_destroy,
        .payload_unref = api_unref,
        .arg = &role,
    };
    mesh_node_set_frontend(node, &fe);
    mesh_node_set_no_listener(node, go->grpc_listen == NULL);
    if (mesh_node_listen(node) != 0 || mesh_node_admin_listen(node, "gateway") != 0) {
        mesh_routes_unref(routes);
        goto out;
    }
    mesh_info("gateway", "HTTP/JSON on %s:%d; %zu static service%s", role.fcfg.host, role.http_port,
              mesh_routes_count(routes), mesh_routes_count(routes) == 1 ? "" : "s");
    if (cfg.descriptor_set && load_descriptor_set(&role, cfg.descriptor_set) != 0) {
        mesh_routes_unref(routes);
        rc = 2;
        goto out;
    }
    int arc = node_control_audit(&control, node, &cfg, "gateway");
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
    if (node_control_start(&control, node) != 0)
        goto out;
    rc = mesh_node_run(node);
out:
    mesh_node_free(node);
    node_control_release(&control);
out_cfg:
    mesh_config_destroy(&cfg);
    return rc;
}
