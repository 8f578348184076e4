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
 *
 * --http-listen HOST:PORT adds the HTTP/JSON front end (node/gw_frontend.h) on every worker:
 * its API is the sidecar actor's pool of the app (reflection, or --descriptor-set), published
 * again whenever the actor re-reads it, and its calls go through the same engines to the app
 * (same breaker and policy chain as the gRPC listener's calls).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "gateway/gw_options.h"
#include "node/admin.h"
#include "node/admin_options.h"
#include "node/cli.h"
#include "node/control.h"
#include "node/gw_frontend.h"
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

/* The sidecar actor (re)read the app's API: the HTTP/JSON front ends serve it from now on. */
static void on_app_pool(void *ud, const mesh_desc_pool_t *pool)
{
    node_gw_publish(ud, pool);
}

/* GET /v1/gateway/schemas: the API the HTTP/JSON front end serves. */
static json_t *admin_schemas(void *ud, const h1_req_t *req, int *status)
{
    (void)req, (void)status;
    return json_pack("{s:s,s:o}", "source", "the app's reflection (sidecar)", "api",
                     node_gw_status_json(ud));
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
    static node_gw_t http;            /* the HTTP/JSON front end, with --http-listen */
    const char *http_listen = gw_options(&cfg)->http_listen;
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
    if (http_listen && node_gw_init(&http, node, &cfg, http_listen, "sidecar") != 0) {
        rc = 2;
        goto out;
    }
    if (mesh_node_listen(node) != 0 || engines.failed ||
        mesh_node_admin_listen(node, "sidecar") != 0)
        goto out;
    if (http_listen) {
        mesh_info("sidecar", "HTTP/JSON for the app on %s:%d", http.fcfg.host, node_gw_port(&http));
        mesh_admin_t *admin = mesh_node_admin(node);
        if (admin && mesh_admin_add_json(admin, "/v1/gateway/schemas", admin_schemas, &http) != 0)
            goto out;
    }
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
    if (arc == 0)
        arc = node_control_ca(&control, node, &cfg); /* the mesh CA, the node's identity */
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
    if (http_listen) {
        control.sidecar.on_pool = on_app_pool;
        control.sidecar.pool_ud = &http;
    }
    if (node_control_sidecar(&control, node, &cfg, advertise) != 0 ||
        node_control_start(&control, node) != 0)
        goto out;
    rc = mesh_node_run(node);
out:
    mesh_node_free(node);
    node_control_release(&control);
    node_gw_destroy(&http);
    mesh_config_destroy(&cfg);
    return rc;
}
