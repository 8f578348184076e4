/*
 * node/role_proxy.c: `meshd proxy`, the mesh's gRPC ingress: callers send any gRPC call to
 * one fixed address and it is routed by /package.Service/Method to an instance.
 *
 * Wiring: a node (node/node.h) with one proxy engine per worker; the routing table comes from
 * --static routes and, with --etcd, from the registry actor's view of etcd (node/control.h).
 * With --admin-listen the node serves its admin API (node/admin.h). Audit events (the audit.*
 * options) go through the audit actor (node/control.h). grpc.health.v1 is answered by the
 * proxy itself (node/health_local.h) unless --health-passthrough; on SIGTERM health turns
 * NOT_SERVING --health-grace before the GOAWAY. Unless --reflection-serve false, the workers
 * answer gRPC server reflection for every routed service (node/reflect_entry.h: the descriptor
 * cache runs as a control actor and its index reaches the workers as a snapshot).
 */
#include "node/cli.h"
#include "node/control.h"
#include "node/node.h"
#include "node/reflect_entry.h"
#include "node/reflect_options.h"
#include "common/log.h"
#include "registry/route_static.h"

int mesh_cli_proxy(int argc, char **argv)
{
    mesh_config_t cfg;
    if (mesh_cli_load_config(&cfg, "proxy", MESH_ROLE_PROXY, argc, argv, NULL) != 0)
        return 2;
    int rc = 1;
    mesh_node_t *node = NULL;
    node_control_t control;
    node_control_init(&control);
    static node_reflect_entry_t reflect; /* read by the workers for the process's life */
    const reflect_options_t *ro = reflect_options(&cfg);
    int serve_reflection = ro && ro->serve;
    char err[512];
    mesh_route_builder_t *b = mesh_route_builder_new();
    if (mesh_route_add_static_all(b, &cfg.static_routes, err, sizeof(err)) != 0) {
        mesh_route_builder_free(b);
        mesh_error("proxy", "%s", err);
        rc = 2;
        goto out;
    }
    mesh_routes_t *routes = mesh_route_builder_finish(b);
    node = mesh_node_new(&cfg);
    if (node && !cfg.health_passthrough) { /* grpc.health.v1 answered here (docs/entry.md) */
        mesh_node_serve_health(node, 1);
        mesh_node_set_predrain(node, (uint64_t)cfg.health_grace_ms);
    }
    if (node && serve_reflection && node_reflect_entry_init(&reflect, node, &cfg) != 0) {
        mesh_routes_unref(routes);
        goto out;
    }
    if (!node || mesh_node_listen(node) != 0 || mesh_node_admin_listen(node, "proxy") != 0) {
        mesh_routes_unref(routes);
        goto out;
    }
    mesh_info("proxy", "%zu static service%s", mesh_routes_count(routes),
              mesh_routes_count(routes) == 1 ? "" : "s");
    int arc = node_control_audit(&control, node, &cfg, "proxy");
    if (arc == 0)
        arc = node_control_ca(&control, node, &cfg); /* the mesh CA, the node's identity */
    if (arc != 0) {
        mesh_routes_unref(routes);
        rc = arc == -2 ? 2 : 1;
        goto out;
    }
    /* the registry actor merges the static routes into every table it publishes */
    if (node_control_registry(&control, node, &cfg, routes, 1) != 0)
        goto out;
    if (node_control_gossip(&control, node, &cfg) != 0) {
        rc = 2; /* a key file or a seed that does not work: the config's fault */
        goto out;
    }
    if (serve_reflection && (node_reflect_entry_start(&reflect, &control) != 0 ||
                             node_reflect_entry_admin(&reflect, mesh_node_admin(node)) != 0))
        goto out;
    if (node_control_start(&control, node) != 0)
        goto out;
    rc = mesh_node_run(node);
out:
    mesh_node_free(node);
    node_control_release(&control);
    mesh_config_destroy(&cfg);
    return rc;
}
