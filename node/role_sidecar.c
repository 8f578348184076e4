/*
 * node/role_sidecar.c: `meshd sidecar`, the node that runs beside one gRPC app.
 *
 * Callers reach the app through the sidecar's --listen port: a node (node/node.h) whose
 * proxy engines forward every call to --app (the engines' default upstream: the sidecar
 * publishes no routing table) through one circuit breaker for the app, shared by all workers
 * (policy/breaker_filter.h, the engines' filter). The control actors (node/control.h): the
 * sidecar actor (node/sidecar_actor.h) learns the app's services, checks its health and serves
 * the probes; the registry actor keeps it registered in etcd under --advertise; the audit actor
 * (when audit is on) records what happens. SIGTERM:
 * deregister, keep serving for --drain-timeout, then GOAWAY and exit 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/cli.h"
#include "node/admin_options.h"
#include "node/control.h"
#include "node/node.h"
#include "policy/breaker_filter.h"
#include "common/addr.h"
#include "common/log.h"

/* The engines' settings, applied to each worker by the node's engine hook. */
typedef struct sidecar_engines {
    const mesh_config_t *cfg;
    pol_breaker_filter_t breaker; /* the app's one breaker, shared by every worker */
    int breaker_ready;
    int failed;
} sidecar_engines_t;

/* Called once per worker, from the main thread, before the workers start. */
static void engine_config(mesh_proxy_config_t *pc, void *arg)
{
    sidecar_engines_t *e = arg;
    pc->default_upstream = e->cfg->app;
    /* The app restarts in place: retry its port soon rather than after a long backoff. */
    pc->backoff_max_ms = 1000;
    if (!e->breaker_ready) {
        if (pol_breaker_filter_init(&e->breaker, e->cfg, e->cfg->app) != 0) {
            e->failed = 1;
            return;
        }
        e->breaker_ready = 1;
    }
    pol_breaker_filter_attach(&e->breaker, &pc->filter);
}

int mesh_cli_sidecar(int argc, char **argv)
{
    mesh_config_t cfg;
    if (mesh_cli_load_config(&cfg, "sidecar", MESH_ROLE_SIDECAR, argc, argv, NULL) != 0)
        return 2;
    int rc = 1;
    mesh_node_t *node = NULL;
    node_control_t control;
    node_control_init(&control);
    static sidecar_engines_t engines; /* read by the workers for the process's life */
    engines.cfg = &cfg;
    char host[256];
    int port;
    if (mesh_addr_split(cfg.app, host, sizeof(host), &port) != 0 || port <= 0) {
        fprintf(stderr, "meshd sidecar: app: '%s' is not HOST:PORT\n", cfg.app);
        rc = 2;
        goto out;
    }
    /* The probes and the admin API are two servers (node/admin.h says why): two ports. */
    const char *admin = mesh_admin_options(&cfg)->listen;
    char ah[256], ph[256];
    int ap, pp;
    if (admin && cfg.probe_listen && mesh_admin_listen_split(admin, ah, sizeof(ah), &ap) == 0 &&
        mesh_addr_split(cfg.probe_listen, ph, sizeof(ph), &pp) == 0 && ap == pp && ap != 0 &&
        (strcmp(ah, ph) == 0 || !ph[0] || strcmp(ph, "0.0.0.0") == 0)) {
        fprintf(stderr,
                "meshd sidecar: --admin-listen %s and --probe-listen %s share a port: the "
                "admin API and the probes are separate servers\n",
                admin, cfg.probe_listen);
        rc = 2;
        goto out;
    }
    node = mesh_node_new(&cfg);
    if (!node)
        goto out;
    mesh_node_set_engine_hook(node, engine_config, &engines);
    if (mesh_node_listen(node) != 0 || engines.failed ||
        mesh_node_admin_listen(node, "sidecar") != 0)
        goto out;
    /* The registered address: --advertise, else --listen with its real port (a wildcard
     * host is not callable: loopback is used then). */
    char advertise[300];
    if (cfg.advertise) {
        snprintf(advertise, sizeof(advertise), "%s", cfg.advertise);
    } else {
        char lh[256];
        int lp;
        mesh_addr_split(cfg.listen, lh, sizeof(lh), &lp);
        if (!lh[0] || strcmp(lh, "0.0.0.0") == 0 || strcmp(lh, "::") == 0) {
            mesh_warn("sidecar",
                      "--listen %s is a wildcard: advertising 127.0.0.1 (set --advertise)",
                      cfg.listen);
            snprintf(lh, sizeof(lh), "127.0.0.1");
        }
        if (strchr(lh, ':'))
            snprintf(advertise, sizeof(advertise), "[%s]:%d", lh, mesh_node_port(node));
        else
            snprintf(advertise, sizeof(advertise), "%s:%d", lh, mesh_node_port(node));
    }
    mesh_node_set_predrain(node, (uint64_t)cfg.drain_timeout_ms);
    int arc = node_control_audit(&control, node, &cfg, "sidecar");
    if (arc != 0) {
        rc = arc == -2 ? 2 : 1;
        goto out;
    }
    if (node_control_registry(&control, node, &cfg, NULL, 0) != 0)
        goto out;
    if (node_control_gossip(&control, node, &cfg) != 0) {
        rc = 2; /* a key file or a seed that does not work: the config's fault */
        goto out;
    }
    if (node_control_sidecar(&control, node, &cfg, advertise) != 0 ||
        node_control_start(&control, node) != 0)
        goto out;
    rc = mesh_node_run(node);
out:
    mesh_node_free(node);
    node_control_release(&control);
    mesh_config_destroy(&cfg);
    return rc;
}
