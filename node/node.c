/*
 * node/node.c: a meshd node (see node/node.h): the node actor on the control loop, one worker
 * actor per data-plane loop, signals, drain and the root supervisor.
 *
 * Ownership: the node struct is built on the main thread and read-only once the executor
 * runs, except for exit_code (written by the node actor on the control loop, read after the
 * run) and what the admin API reads (the latest routing table, etcd's link, the admin server):
 * written by the node actor and read by the admin's handlers, both on the control loop, which
 * is the main thread's loop. Each worker slot (node_wk_t) belongs to its worker actor once the
 * loops run: the engine, the previous counters, the actor pointer. The event ring inside it is
 * shared by design (one producer, one consumer). The engines are created on the main thread before
 * the worker threads start (so bind errors are reported synchronously; pthread_create orders
 * the two), and from then on only their worker actor touches them.
 *
 * Shutdown, on the control loop unless noted:
 *   NODE_MSG_SIGNAL -> NODE_MSG_SHUTDOWN to the watchers -> pre-drain timer (0 for the proxy)
 *     -> NODE_MSG_DRAIN to every worker; drain-timeout timer
 *   worker (its loop): engine drained -> free it -> NODE_MSG_WORKER_DONE
 *   node: all workers done, or the drain timeout (NODE_MSG_FORCE to the rest) ->
 *     mesh_exec_shutdown, which stops the actors in reverse start order and ends the run.
 *
 * Admin API (node/admin.h, with --admin-listen): the node serves /v1/node and /v1/routes from
 * the table it last handed its workers and from etcd's link (REG_MSG_LINK from the registry
 * actor). The admin server stops with the node actor, the last actor to stop, so control
 * actors may remove their endpoints in their own stop.
 */
#include "node/node.h"

#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "actors/evring.h"
#include "audit/audit_api.h"
#include "common/addr.h"
#include "common/log.h"
#include "node/admin.h"
#include "node/admin_options.h"
#include "node/call_metrics.h"
#include "node/health_local.h"
#include "node/node_metrics.h"
#include "node/node_msgs.h"
#include "node/node_tls.h"
#include "policy/breaker.h"
#include "policy/chain.h"
#include "policy/jwks_fetch.h"
#include "transport/grpc_status.h"
#include "registry/reg_msgs.h"
#include "transport/call_stats.h"
#include "transport/outlier_board.h"
#include "node/outlier_metrics.h"
#include "transport/lb_options.h"
#include "transport/proxy.h"
#include "transport/proxy_local.h"
#include "transport/svc_policy.h"

#define WORKER_TICK_MS 250
#define RING_EVENTS    1024 /* 384 KiB per worker once the ring has gone round */

typedef struct node_wk {
    mesh_node_t *node;
    int index; /* 0..N-1; executor loop index + 1 */
    mesh_proxy_worker_t *engine;
    void *fe; /* the role's front end on this worker (mesh_node_frontend_t), or NULL */
    void *ext[MESH_NODE_MAX_EXTS]; /* the role's extensions on this worker (mesh_node_ext_t) */
    pol_worker_t *pol;             /* the policy chain's filter of this worker */
    node_health_t *health;         /* grpc.health.v1 answered by the engine, or NULL */
    mesh_evring_t ring;
    mesh_actor_id_t actor;
    /* worker thread only */
    mesh_actor_t *self;
    mesh_proxy_stats_t last;
    uint64_t last_fe_buffered; /* the front end's gauge last reported */
    uint64_t calls_gen;        /* the per-call table's gen in the last snapshot handed over */
    int draining;
} node_wk_t;

struct mesh_node {
    mesh_exec_t *exec;
    const mesh_config_t *cfg;
    mesh_proxy_config_t pcfg;
    mesh_outlier_board_t *outlier_board; /* shared by the workers' engines; outlives them */
    mesh_lb_cfg_t
        lb; /* the engines' balancing (transport/lb.h), from --lb, --route-subset, --zone */
    char listen_host[256];
    int port;
    node_tls_t *tls; /* TLS contexts (node/node_tls.h); NULL: no TLS configured */
    int tls_port;    /* the port of a TLS listener beside the h2c one; 0: none */
    int nworkers;
    node_wk_t *wk;
    mesh_actor_id_t actor;
    uv_signal_t sigterm, sigint, sighup;
    int signals_on;
    pol_chain_t *chain;     /* the policy the workers were last given (control loop) */
    pol_jwks_fetch_t *jwks; /* fetching the policy's jwt.jwks-url, NULL when none */
    char *jwks_url;         /* the URL it fetches */
    char *jwks_body;        /* the last good document, for snapshots built later */
    size_t jwks_len;
    uint64_t predrain_ms;
    int serve_health; /* the engines answer grpc.health.v1 (mesh_node_serve_health) */
    void (*engine_hook)(mesh_proxy_config_t *cfg, void *arg);
    void *engine_hook_arg;
    mesh_node_frontend_t fe; /* create NULL: none */
    mesh_node_ext_t exts[MESH_NODE_MAX_EXTS];
    int n_exts;
    int no_listener;
    int running; /* mesh_node_run began: front end payloads go by message */
    const mesh_supervisor_spec_t *sup_spec;
    audit_api_t *audit; /* where worker events are audited (NULL: nowhere) */
    int exit_code;
    /* admin API (control loop) */
    mesh_admin_t *admin;
    mesh_routes_t *routes; /* the table the workers were last given */
    int etcd_connected;    /* the registry's last REG_MSG_LINK (0 before any) */
    char roles[64];
    uint64_t started_ns; /* uv_hrtime() at creation */
    time_t started;
};

/* ---- the worker actor ------------------------------------------------------------------------ */

/* Hands a snapshot of the per-call table to the node when it changed (one allocation per
 * report period at most, never per call); a full ring: the next report tries again. */
static void wk_report_calls(node_wk_t *w)
{
    mesh_cs_snap_t *snap = mesh_proxy_worker_call_snapshot(w->engine, &w->calls_gen);
    if (!snap)
        return;
    mesh_event_t e = {.type = MESH_EV_CALLS, .worker = (uint32_t)w->index, .a = (uintptr_t)snap};
    if (mesh_evring_push(&w->ring, &e) == 0)
        w->calls_gen = snap->gen;
    else
        free(snap);
}

/* Reports the counters since the last report into the ring (never blocks). */
static void wk_report(node_wk_t *w)
{
    if (!w->engine)
        return;
    wk_report_calls(w);
    mesh_proxy_stats_t s;
    mesh_proxy_worker_stats(w->engine, &s);
    uint64_t feb = w->fe && w->node->fe.req_buffered ? w->node->fe.req_buffered(w->fe) : 0;
    if (!memcmp(&s, &w->last, sizeof(s)) && feb == w->last_fe_buffered)
        return;
    mesh_event_t e = {.type = MESH_EV_STATS,
                      .worker = (uint32_t)w->index,
                      .a = s.calls - w->last.calls,
                      .b = s.calls_failed - w->last.calls_failed,
                      .c = s.retries - w->last.retries};
    e.stats = (mesh_ev_stats_t){.upstream_conns = s.upstream_conns - w->last.upstream_conns,
                                .client_conns = s.client_conns - w->last.client_conns,
                                .upstream_conns_open = s.upstream_conns_open,
                                .retry_budget_exhausted =
                                    s.retry_budget_exhausted - w->last.retry_budget_exhausted,
                                .faults_aborted = s.faults_aborted - w->last.faults_aborted,
                                .faults_delayed = s.faults_delayed - w->last.faults_delayed,
                                .hedges = s.hedges - w->last.hedges,
                                .endpoints = s.endpoints,
                                .fe_req_buffered = feb};
    if (mesh_evring_push(&w->ring, &e) == 0) {
        w->last = s;
        w->last_fe_buffered = feb;
    }
}

static void wk_poke(node_wk_t *w)
{
    if (!mesh_evring_want_poke(&w->ring))
        return;
    node_worker_t p = {.worker = w->index};
    if (mesh_send(w->self, w->node->actor, NODE_MSG_EVENTS, &p, sizeof(p)) != 0)
        mesh_evring_done(&w->ring); /* the node is gone or busy: poke again next tick */
}

static void wk_destroy_exts(node_wk_t *w)
{
    for (int i = 0; i < w->node->n_exts; i++)
        if (w->ext[i]) {
            w->node->exts[i].destroy(w->ext[i]);
            w->ext[i] = NULL;
        }
}

/* Frees the engine (after a drain, or forced) and tells the node. */
static void wk_release(node_wk_t *w)
{
    if (!w->engine)
        return;
    wk_report(w);
    wk_poke(w);
    if (w->fe) { /* before the engine: it cancels the calls it started */
        w->node->fe.destroy(w->fe);
        w->fe = NULL;
    }
    mesh_proxy_worker_free(w->engine);
    w->engine = NULL;
    wk_destroy_exts(w);          /* after the engine: its local calls closed */
    node_health_free(w->health); /* after the engine (a call closed later frees only itself) */
    w->health = NULL;
    pol_worker_free(w->pol); /* after the engine: its calls' on_done ran */
    w->pol = NULL;
    node_worker_t p = {.worker = w->index};
    mesh_send(w->self, w->node->actor, NODE_MSG_WORKER_DONE, &p, sizeof(p));
}

/* The engine's drain callback (inside the engine): continue outside it. */
static void wk_drained(void *arg)
{
    node_wk_t *w = arg;
    mesh_send(w->self, mesh_self(w->self), NODE_MSG_DRAINED, NULL, 0);
}

/* The front end's drain callback: the engine drains next (outside the front end). */
static void wk_fe_drained(void *arg)
{
    node_wk_t *w = arg;
    mesh_send(w->self, mesh_self(w->self), NODE_MSG_FE_DRAINED, NULL, 0);
}

static int wk_start(mesh_actor_t *self, void *arg)
{
    node_wk_t *w = arg;
    *(node_wk_t **)mesh_state(self) = w;
    w->self = self;
    mesh_evring_set_current(&w->ring); /* what the data plane reports goes to this ring */
    uint64_t t = (uint64_t)WORKER_TICK_MS * 1000000ull;
    return mesh_timer_start(self, t, t, NODE_MSG_WORKER_TICK, NULL) < 0 ? -1 : 0;
}

static int wk_message(mesh_actor_t *self, mesh_msg_t *m)
{
    node_wk_t *w = *(node_wk_t **)mesh_state(self);
    switch (m->type) {
    case NODE_MSG_ROUTES: {
        mesh_routes_t *routes = mesh_msg_take_ptr(m);
        if (w->engine && routes)
            mesh_proxy_worker_set_routes(w->engine, routes);
        else
            mesh_routes_unref(routes);
        return 0;
    }
    case NODE_MSG_POLICY: {
        pol_chain_t *c = mesh_msg_take_ptr(m);
        if (w->pol && c)
            pol_worker_set_chain(w->pol, c);
        pol_chain_unref(c);
        return 0;
    }
    case NODE_MSG_FRONTEND: {
        void *p = mesh_msg_take_ptr(m);
        if (w->fe && p)
            w->node->fe.update(w->fe, p);
        else if (p)
            w->node->fe.payload_unref(p);
        return 0;
    }
    case NODE_MSG_STOP_SERVING:
        if (w->engine)
            mesh_proxy_worker_stop_serving(w->engine);
        return 0;
    case NODE_MSG_FE_DRAINED:
        if (w->engine)
            mesh_proxy_worker_drain(w->engine, wk_drained, w);
        return 0;
    case NODE_MSG_DRAIN:
        if (w->engine && !w->draining) {
            w->draining = 1;
            if (w->fe)
                w->node->fe.drain(w->fe, wk_fe_drained, w);
            else
                mesh_proxy_worker_drain(w->engine, wk_drained, w);
        } else if (!w->engine) {
            node_worker_t p = {.worker = w->index};
            mesh_send(self, w->node->actor, NODE_MSG_WORKER_DONE, &p, sizeof(p));
        }
        return 0;
    case NODE_MSG_DRAINED:
    case NODE_MSG_FORCE:
        wk_release(w);
        return 0;
    case NODE_MSG_WORKER_TICK:
        wk_report(w);
        wk_poke(w);
        for (int i = 0; i < w->node->n_exts; i++)
            if (w->ext[i] && w->node->exts[i].tick)
                w->node->exts[i].tick(w->ext[i], mesh_now(self) / 1000000u);
        return 0;
    default:
        if (m->type >= NODE_MSG_EXT && m->type < NODE_MSG_EXT + MESH_NODE_MAX_EXTS) {
            int id = (int)(m->type - NODE_MSG_EXT);
            void *p = mesh_msg_take_ptr(m);
            if (id < w->node->n_exts && w->ext[id] && p)
                w->node->exts[id].update(w->ext[id], p);
            else if (p && id < w->node->n_exts)
                w->node->exts[id].payload_unref(p);
        }
        return 0;
    }
}

static void wk_stop(mesh_actor_t *self, int reason)
{
    node_wk_t **slot = mesh_state(self);
    node_wk_t *w = *slot;
    if (!w)
        return;
    if (w->fe) {
        w->node->fe.destroy(w->fe);
        w->fe = NULL;
    }
    if (w->engine) { /* shutdown without a drain */
        mesh_proxy_worker_free(w->engine);
        w->engine = NULL;
    }
    wk_destroy_exts(w);
    node_health_free(w->health);
    w->health = NULL;
    pol_worker_free(w->pol);
    w->pol = NULL;
    mesh_evring_set_current(NULL);
    w->self = NULL;
}

static const mesh_actor_ops_t worker_ops = {
    .name = "worker",
    .state_size = sizeof(node_wk_t *),
    .on_start = wk_start,
    .on_message = wk_message,
    .on_stop = wk_stop,
};

/* ---- the node actor -------------------------------------------------------------------------- */

typedef struct node_state {
    mesh_node_t *n;
    int faults_audited; /* the start's fault_injection records were emitted (audit_faults) */
    mesh_actor_t *self;
    mesh_actor_id_t supervisor;
    mesh_actor_id_t *watchers; /* told when shutdown begins */
    size_t n_watchers, cap_watchers;
    mesh_actor_id_t *route_watchers; /* get every routing table (REG_MSG_ROUTES_WATCH) */
    size_t n_route_watchers, cap_route_watchers;
    int live; /* workers whose engine is not freed yet */
    int signals;
    int draining;
    int finished;
    uint64_t predrain_timer, drain_timer;
    uint64_t calls, failed, retries; /* totals reported by the workers */
    node_metrics_t metrics;          /* the rest of what /metrics shows (node/node_metrics.h) */
    node_calls_t call_metrics;       /* the workers' per-call tables (node/call_metrics.h) */
} node_state_t;

/* Adds id to a list of actors: 1 when added, 0 when it was there, -1 out of memory. */
static int ids_add(mesh_actor_id_t **v, size_t *n, size_t *cap, mesh_actor_id_t id)
{
    for (size_t i = 0; i < *n; i++)
        if ((*v)[i] == id)
            return 0;
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 4;
        mesh_actor_id_t *nv = realloc(*v, nc * sizeof(*nv));
        if (!nv)
            return -1;
        *v = nv;
        *cap = nc;
    }
    (*v)[(*n)++] = id;
    return 1;
}

/* Sends watcher a reference of routes; an actor that is gone leaves the list (-1). */
static int routes_to_watcher(node_state_t *st, mesh_actor_id_t to, mesh_routes_t *routes)
{
    mesh_routes_t *r = mesh_routes_ref(routes);
    int rc = mesh_send_ptr(st->self, to, REG_MSG_ROUTES, r, (void (*)(void *))mesh_routes_unref);
    if (rc == 0)
        return 0;
    mesh_routes_unref(r);
    mesh_debug("node", "a routing table watcher is gone: %s", mesh_strerror(rc));
    return -1;
}

static void finish(node_state_t *st)
{
    if (st->finished)
        return;
    st->finished = 1;
    if (st->predrain_timer)
        mesh_timer_stop(st->self, st->predrain_timer);
    if (st->drain_timer)
        mesh_timer_stop(st->self, st->drain_timer);
    mesh_info("node",
              "drained (%llu calls served, %llu failed by the mesh, %llu retried); "
              "stopping actors",
              (unsigned long long)st->calls, (unsigned long long)st->failed,
              (unsigned long long)st->retries);
    mesh_exec_shutdown(st->n->exec);
}

static void to_workers(node_state_t *st, uint32_t type)
{
    for (int i = 0; i < st->n->nworkers; i++) {
        int rc = mesh_send(st->self, st->n->wk[i].actor, type, NULL, 0);
        if (rc != 0)
            mesh_error("node", "cannot reach worker %d: %s", i, mesh_strerror(rc));
    }
}

static void start_drain(node_state_t *st)
{
    if (st->draining)
        return;
    st->draining = 1;
    if (st->live == 0) {
        finish(st);
        return;
    }
    mesh_info("node", "draining: GOAWAY sent, waiting up to %lld ms for calls in flight",
              (long long)st->n->cfg->drain_timeout_ms);
    to_workers(st, NODE_MSG_DRAIN);
    mesh_timer_start(st->self, (uint64_t)st->n->cfg->drain_timeout_ms * 1000000ull, 0,
                     NODE_MSG_DRAIN_TIMEOUT, &st->drain_timer);
}

static void force_stop(node_state_t *st)
{
    if (st->live == 0) {
        finish(st);
        return;
    }
    mesh_warn("node", "drain timeout: resetting the calls still in flight on %d worker%s", st->live,
              st->live == 1 ? "" : "s");
    to_workers(st, NODE_MSG_FORCE);
}

static void shutdown_begin(node_state_t *st)
{
    st->signals++;
    if (st->signals > 1) {
        mesh_warn("node", "second shutdown request: not waiting any longer");
        start_drain(st);
        force_stop(st);
        return;
    }
    for (size_t i = 0; i < st->n_watchers; i++)
        mesh_send(st->self, st->watchers[i], NODE_MSG_SHUTDOWN, NULL, 0);
    if (st->n->serve_health)
        to_workers(st, NODE_MSG_STOP_SERVING); /* health NOT_SERVING before the GOAWAY */
    if (st->n->predrain_ms)
        mesh_info("node", "shutting down: serving %llu ms more before draining",
                  (unsigned long long)st->n->predrain_ms);
    mesh_timer_start(st->self, st->n->predrain_ms * 1000000ull, 0, NODE_MSG_PREDRAIN_DONE,
                     &st->predrain_timer);
}

static void fail(node_state_t *st, int code, const char *why)
{
    mesh_error("node", "stopping: %s (exit %d)", why, code);
    st->n->exit_code = code;
    st->n->predrain_ms = 0;
    if (st->signals == 0)
        shutdown_begin(st);
}

static void routes_to_workers(node_state_t *st, mesh_routes_t *routes)
{
    for (int i = 0; i < st->n->nworkers; i++) {
        mesh_routes_t *r = mesh_routes_ref(routes);
        int rc = mesh_send_ptr(st->self, st->n->wk[i].actor, NODE_MSG_ROUTES, r,
                               (void (*)(void *))mesh_routes_unref);
        if (rc != 0) {
            mesh_routes_unref(r);
            mesh_error("node", "worker %d did not take the routing table: %s", i,
                       mesh_strerror(rc));
        }
    }
}

/* Builds a snapshot from the config file, with the last JWKS document fetched when the policy
 * names a jwks-url (control loop). */
static pol_chain_t *build_chain(mesh_node_t *n, char *err, size_t errlen)
{
    pol_chain_t *c = pol_chain_load(n->cfg->config_file, err, errlen);
    const char *url = c ? pol_chain_conf(c)->jwks_url : NULL;
    if (c && url && n->jwks_body && n->jwks_url && !strcmp(url, n->jwks_url))
        pol_chain_set_jwks(c, n->jwks_body, n->jwks_len, err, errlen); /* (it loaded before) */
    return c;
}

static void jwks_watch(mesh_node_t *n, const char *url);

/* A JWKS document arrived: a new snapshot with its keys for every worker. */
static void on_jwks_body(void *ctx, const char *body, size_t len)
{
    mesh_node_t *n = ctx;
    char err[512];
    pol_chain_t *c = pol_chain_load(n->cfg->config_file, err, sizeof(err));
    if (!c) {
        mesh_error("policy", "JWKS fetched but the policy no longer loads: %s", err);
        return;
    }
    if (pol_chain_set_jwks(c, body, len, err, sizeof(err)) != 0) {
        mesh_error("policy", "%s (the keys in force stay)", err);
        pol_chain_unref(c);
        return;
    }
    char *copy = malloc(len + 1);
    if (copy) {
        memcpy(copy, body, len);
        copy[len] = '\0';
        free(n->jwks_body);
        n->jwks_body = copy;
        n->jwks_len = len;
    }
    mesh_debug("policy", "JWKS from %s: keys updated", n->jwks_url);
    node_policy_t np = {.chain = c};
    if (mesh_exec_send(n->exec, n->actor, NODE_MSG_POLICY_NEW, &np, sizeof(np)) != 0) {
        mesh_error("policy", "the node did not take the JWKS keys");
        pol_chain_unref(c);
    }
}

static void on_jwks_error(void *ctx, const char *msg)
{
    mesh_warn("policy", "%s (the keys in force stay)", msg);
}

/* Starts, replaces or stops the JWKS fetcher for url (NULL: none). Control loop. */
static void jwks_watch(mesh_node_t *n, const char *url)
{
    if (url && n->jwks_url && !strcmp(url, n->jwks_url))
        return;
    if (n->jwks)
        pol_jwks_fetch_stop(n->jwks);
    n->jwks = NULL;
    free(n->jwks_url);
    n->jwks_url = NULL;
    if (!url)
        return;
    n->jwks_url = strdup(url);
    pol_jwks_fetch_config_t fc = {.url = url,
                                  .refresh_ms = (uint64_t)pol_chain_conf(n->chain)->jwks_refresh_ms,
                                  .on_body = on_jwks_body,
                                  .on_error = on_jwks_error,
                                  .ctx = n};
    char err[256];
    n->jwks = pol_jwks_fetch_start(mesh_exec_uv_loop(n->exec, 0), &fc, err, sizeof(err));
    if (!n->jwks)
        mesh_error("policy", "cannot fetch %s: %s", url, err);
}

/* What a rule injects, for the log line and the audit record: "fault injection on for pkg.Svc/\*
 * (meshd.yaml:12): abort UNAVAILABLE 5%, delay 200 ms 10%" (every pattern of the rule). */
static void fault_text(const pol_routes_conf_t *r, const pol_route_rule_t *ru, char *buf,
                       size_t len)
{
    const pol_fault_t *f = &ru->fault;
    size_t o = (size_t)snprintf(buf, len, "fault injection on for ");
    for (size_t j = 0; j < ru->n_match && o < len; j++)
        o += (size_t)snprintf(buf + o, len - o, "%s%s", j ? ", " : "", ru->match[j]);
    if (o < len)
        snprintf(buf + o, len - o, " (%s:%d): abort %s %.4g%%, delay %llu ms %.4g%%%s%s",
                 r->file ? r->file : "?", ru->line,
                 f->abort_status ? mesh_grpc_status_name(f->abort_status) : "-",
                 f->abort_status ? f->abort_percent : 0.0, (unsigned long long)f->delay_ms,
                 f->delay_ms ? f->delay_percent : 0.0, f->header ? ", only with header " : "",
                 f->header ? f->header : "");
}

/* Fault injection is for chaos tests: every rule that injects faults is logged when the routes
 * block is loaded (at start and on each reload), so nobody runs faults unknowingly. */
static void log_faults(const pol_chain_t *c)
{
    const pol_routes_conf_t *r = pol_chain_routes(c);
    char text[512];
    for (size_t i = 0; i < r->n_rules; i++)
        if (r->rules[i].has_fault) {
            fault_text(r, &r->rules[i], text, sizeof(text));
            mesh_warn("routes", "%s", text);
        }
}

/* ... and audited (docs/audit.md, fault_injection): one record per rule that injects faults,
 * with the service (and method) of its first pattern, when a block is loaded at start or by a
 * reload; and one when a reload turns it off (had_faults: the block before did inject). */
static void audit_faults(node_state_t *st, const pol_chain_t *c, int had_faults, const char *when)
{
    const pol_routes_conf_t *r = pol_chain_routes(c);
    if (!st->n->audit || (!r->has_fault && !had_faults))
        return;
    char text[640], reason[700], svc[AUDIT_MAX_SERVICE + 1];
    if (!r->has_fault) {
        snprintf(reason, sizeof(reason),
                 "fault injection off: the routes block %s (%s) has no fault rule", when,
                 r->file ? r->file : "(no file)");
        audit_event_t ev = {.type = AUDIT_FAULT_INJECTION, .reason = reason};
        audit_emit(st->self, st->n->audit, &ev);
        return;
    }
    for (size_t i = 0; i < r->n_rules; i++) {
        const pol_route_rule_t *ru = &r->rules[i];
        if (!ru->has_fault)
            continue;
        fault_text(r, ru, text, sizeof(text));
        snprintf(reason, sizeof(reason), "%s; %s", text, when);
        const char *m = ru->match[0], *slash = strchr(m, '/');
        audit_event_t ev = {.type = AUDIT_FAULT_INJECTION, .reason = reason};
        if (slash && (size_t)(slash - m) <= AUDIT_MAX_SERVICE) {
            snprintf(svc, sizeof(svc), "%.*s", (int)(slash - m), m);
            ev.service = svc;
            if (strcmp(slash + 1, "*") != 0)
                ev.method = slash + 1;
        }
        audit_emit(st->self, st->n->audit, &ev);
    }
}

/* Gives every worker snapshot c (the node keeps its own reference). */
static void policy_to_workers(node_state_t *st, pol_chain_t *c)
{
    for (int i = 0; i < st->n->nworkers; i++) {
        if (!st->n->wk[i].engine)
            continue;
        pol_chain_t *r = pol_chain_ref(c);
        int rc = mesh_send_ptr(st->self, st->n->wk[i].actor, NODE_MSG_POLICY, r,
                               (void (*)(void *))pol_chain_unref);
        if (rc != 0) {
            pol_chain_unref(r);
            mesh_error("node", "worker %d did not take the new policy: %s", i, mesh_strerror(rc));
        }
    }
    pol_chain_unref(st->n->chain);
    st->n->chain = c;
}

/* SIGHUP: loads the policy again; a policy that does not load is refused (and audited as
 * config_rejected) and the one in force stays. */
static void reload_policy(node_state_t *st)
{
    mesh_node_t *n = st->n;
    if (!n->chain)
        return; /* a node that serves no calls */
    char err[512];
    pol_chain_t *c = build_chain(n, err, sizeof(err));
    if (!c) {
        mesh_error("policy", "reload refused, the policy in force stays: %s", err);
        audit_event_t ev = {.type = AUDIT_CONFIG_REJECTED, .reason = err};
        if (n->audit)
            audit_emit(st->self, n->audit, &ev);
        return;
    }
    int had_faults = n->chain && pol_chain_routes(n->chain)->has_fault;
    st->faults_audited = 1; /* (a reload before the start's record: this one says it all) */
    policy_to_workers(st, c);
    jwks_watch(n, pol_chain_conf(c)->jwks_url);
    log_faults(c);
    audit_faults(st, c, had_faults, "loaded by a reload (SIGHUP)");
    mesh_info("policy", "reloaded from %s: %zu rules",
              n->cfg->config_file ? n->cfg->config_file : "(no file)", pol_chain_conf(c)->n_rules);
}

/* Logs a breaker transition from its fields. */
static void log_breaker(const mesh_event_t *e, int worker)
{
    const mesh_ev_breaker_t *b = &e->breaker;
    if (b->to == MESH_EV_BREAKER_OPEN)
        mesh_warn("breaker", "circuit for app %s %s -> %s: %s (worker %d)",
                  b->instance ? b->instance : "?",
                  pol_breaker_state_name((pol_breaker_state_t)b->from),
                  pol_breaker_state_name((pol_breaker_state_t)b->to), b->reason, worker);
    else
        mesh_info("breaker", "circuit for app %s %s -> %s: %s (worker %d)",
                  b->instance ? b->instance : "?",
                  pol_breaker_state_name((pol_breaker_state_t)b->from),
                  pol_breaker_state_name((pol_breaker_state_t)b->to), b->reason, worker);
}

/* Hands the audited events of one batch to the audit actor: one message per batch. */
static void audit_batch(node_state_t *st, const mesh_event_t *ev, size_t n)
{
    audit_api_t *api = st->n->audit;
    if (!n || !audit_api_on(api))
        return;
    if (!audit_api_reserve(api, n)) /* the audit actor is behind: counted, reported */
        return;
    audit_batch_t *b = malloc(sizeof(*b) + n * sizeof(b->ev[0]));
    if (!b) {
        audit_api_taken(api, n);
        atomic_fetch_add_explicit(&api->refused, n, memory_order_relaxed);
        mesh_error("node", "out of memory: %zu audit events of the workers lost", n);
        return;
    }
    b->n = n;
    memcpy(b->ev, ev, n * sizeof(b->ev[0]));
    int rc = mesh_send_ptr(st->self, api->actor, AUDIT_MSG_BATCH, b, free);
    if (rc != 0) {
        audit_api_taken(api, n);
        free(b);
        atomic_fetch_add_explicit(&api->refused, n, memory_order_relaxed);
        mesh_warn("node", "%zu audit events of the workers not taken by the audit actor: %s", n,
                  mesh_strerror(rc));
    }
}

static void take_events(node_state_t *st, int i)
{
    if (i < 0 || i >= st->n->nworkers)
        return;
    mesh_evring_t *ring = &st->n->wk[i].ring;
    mesh_event_t ev[64], audit[64];
    size_t k, na = 0;
    do {
        k = mesh_evring_take(ring, ev, 64);
        for (size_t j = 0; j < k; j++) {
            if (ev[j].type == MESH_EV_STATS) {
                st->calls += ev[j].a;
                st->failed += ev[j].b;
                st->retries += ev[j].c;
                node_metrics_stats(&st->metrics, i, &ev[j].stats);
            } else if (ev[j].type == MESH_EV_BREAKER) {
                log_breaker(&ev[j], i);
                node_metrics_breaker(&st->metrics, i, &ev[j].breaker);
                audit[na++] = ev[j];
            } else if (ev[j].type == MESH_EV_OUTLIER) {
                audit[na++] = ev[j]; /* logged and counted by the worker and the board */
            } else if (ev[j].type == MESH_EV_POLICY) {
                audit[na++] = ev[j]; /* a refused call: recorded, not logged one by one */
            } else if (ev[j].type == MESH_EV_CALLS) {
                node_calls_take(&st->call_metrics, i, (mesh_cs_snap_t *)(uintptr_t)ev[j].a);
            }
            if (na == 64) { /* a batch per 64 audited events */
                audit_batch(st, audit, na);
                na = 0;
            }
        }
    } while (k == 64);
    audit_batch(st, audit, na);
    mesh_evring_done(ring);
    uint64_t dropped = mesh_evring_take_dropped(ring);
    st->metrics.events_dropped += dropped;
    if (dropped)
        mesh_warn("node", "worker %d: %llu events dropped (its event ring was full)", i,
                  (unsigned long long)dropped);
}

/* GET /metrics: the node's families. */
static void node_collect(void *ud, prom_t *p)
{
    node_state_t *st = ud;
    node_metrics_view_t v = {.calls = st->calls,
                             .failed = st->failed,
                             .retries = st->retries,
                             .routes = st->n->routes,
                             .etcd = mesh_node_etcd_state(st->n)};
    node_metrics_write(&st->metrics, &v, p);
    node_calls_write(&st->call_metrics, p);
    node_outlier_metrics_write(st->n->outlier_board, p);
}

static int node_start(mesh_actor_t *self, void *arg)
{
    node_state_t *st = mesh_state(self);
    st->n = arg;
    st->self = self;
    if (node_metrics_init(&st->metrics, st->n->nworkers) != 0 ||
        node_calls_init(&st->call_metrics, st->n->nworkers) != 0 ||
        (st->n->admin && mesh_admin_add_metrics(st->n->admin, node_collect, st) != 0)) {
        mesh_error("node", "out of memory for the metrics");
        return -1;
    }
    if (st->n->tls && st->n->admin &&
        mesh_admin_add_metrics(st->n->admin, node_tls_metrics, st->n->tls) != 0) {
        mesh_error("node", "out of memory for the metrics");
        return -1;
    }
    /* the node's own certificates, and the services' upstream-tls files (routes:) */
    uint64_t poll_ns =
        st->n->tls || st->n->chain ? node_tls_poll_ms_of(st->n->cfg) * 1000000ull : 0;
    if (poll_ns && mesh_timer_start(self, poll_ns, poll_ns, NODE_MSG_TLS_POLL, NULL) < 0) {
        mesh_error("node", "cannot start the TLS file check timer");
        return -1;
    }
    st->live = st->n->nworkers;
    for (int i = 0; i < st->n->nworkers; i++)
        if (!st->n->wk[i].engine)
            st->live--;
    if (st->n->sup_spec) {
        mesh_spawn_opts_t so = {.name = st->n->sup_spec->name};
        int rc =
            mesh_spawn(self, &mesh_supervisor_ops, (void *)st->n->sup_spec, &so, &st->supervisor);
        if (rc != 0) {
            mesh_error("node", "cannot start the control actors: %s", mesh_strerror(rc));
            return -1;
        }
    }
    return 0;
}

/* One service's upstream-tls holder: reloaded when its files changed, like the node's own. */
static void route_tls_one(void *ud, struct mesh_tls_holder *h, int line)
{
    node_state_t *st = ud;
    char what[64];
    snprintf(what, sizeof(what), "routes: upstream-tls (line %d)", line);
    node_tls_reload_holder(st->n->tls, h, what, 0);
}

/* The services' own upstream TLS files (routes: upstream-tls), checked for changes. */
static void routes_tls_reload(node_state_t *st)
{
    if (st->n->chain)
        pol_routes_each_tls(pol_chain_routes(st->n->chain), route_tls_one, st);
}

static int node_message(mesh_actor_t *self, mesh_msg_t *m)
{
    node_state_t *st = mesh_state(self);
    if (!st->faults_audited && audit_api_on(st->n->audit) && st->n->chain) {
        /* the audit actor is spawned after this actor starts: the start's block audited once
         * its address is known (the first message after) */
        st->faults_audited = 1;
        audit_faults(st, st->n->chain, 0, "loaded at start");
    }
    switch (m->type) {
    case REG_MSG_ROUTES: {
        mesh_routes_t *routes = mesh_msg_take_ptr(m);
        if (routes) {
            routes_to_workers(st, routes);
            for (size_t i = 0; i < st->n_route_watchers;)
                if (routes_to_watcher(st, st->route_watchers[i], routes) != 0)
                    st->route_watchers[i] = st->route_watchers[--st->n_route_watchers];
                else
                    i++;
            mesh_routes_unref(st->n->routes); /* kept for the admin API */
            st->n->routes = routes;
        }
        return 0;
    }
    case REG_MSG_ROUTES_WATCH: {
        if (ids_add(&st->route_watchers, &st->n_route_watchers, &st->cap_route_watchers, m->from) <
            0)
            return -1;
        if (st->n->routes && routes_to_watcher(st, m->from, st->n->routes) != 0)
            for (size_t i = 0; i < st->n_route_watchers; i++)
                if (st->route_watchers[i] == m->from)
                    st->route_watchers[i] = st->route_watchers[--st->n_route_watchers];
        return 0;
    }
    case REG_MSG_LINK: {
        const reg_link_msg_t *l = mesh_msg_as(m, reg_link_msg_t);
        if (l)
            st->n->etcd_connected = l->connected != 0;
        return 0;
    }
    case NODE_MSG_RELOAD:
        reload_policy(st); /* (a new routes: block made its services' TLS from the files) */
        node_tls_reload(st->n->tls, 1);
        routes_tls_reload(st);
        return 0;
    case NODE_MSG_TLS_POLL:
        node_tls_reload(st->n->tls, 0);
        routes_tls_reload(st);
        return 0;
    case NODE_MSG_POLICY_NEW: {
        const node_policy_t *np = mesh_msg_as(m, node_policy_t);
        if (np && np->chain)
            policy_to_workers(st, np->chain);
        return 0;
    }
    case NODE_MSG_SIGNAL: {
        const node_signal_t *s = mesh_msg_as(m, node_signal_t);
        mesh_info("node", "signal %d received", s ? s->signum : 0);
        shutdown_begin(st);
        return 0;
    }
    case NODE_MSG_WATCH_SHUTDOWN:
        /* A restarted actor asks again; one asking late learns that shutdown began. */
        if (ids_add(&st->watchers, &st->n_watchers, &st->cap_watchers, m->from) < 0)
            return -1;
        if (st->signals)
            mesh_send(self, m->from, NODE_MSG_SHUTDOWN, NULL, 0);
        return 0;
    case NODE_MSG_FAIL: {
        const node_fail_t *f = mesh_msg_as(m, node_fail_t);
        char why[64];
        snprintf(why, sizeof(why), "%s failed", f && f->why[0] ? f->why : "a component");
        fail(st, f ? f->exit_code : 1, why);
        return 0;
    }
    case NODE_MSG_EVENTS: {
        const node_worker_t *w = mesh_msg_as(m, node_worker_t);
        if (w)
            take_events(st, w->worker);
        return 0;
    }
    case NODE_MSG_WORKER_DONE: {
        const node_worker_t *w = mesh_msg_as(m, node_worker_t);
        if (w)
            take_events(st, w->worker);
        if (st->live > 0)
            st->live--;
        if (st->live == 0 && st->draining)
            finish(st);
        return 0;
    }
    case NODE_MSG_PREDRAIN_DONE:
        st->predrain_timer = 0;
        start_drain(st);
        return 0;
    case NODE_MSG_DRAIN_TIMEOUT:
        st->drain_timer = 0;
        force_stop(st);
        return 0;
    case MESH_MSG_CHILD_EXIT: {
        const mesh_child_exit_t *ce = mesh_msg_as(m, mesh_child_exit_t);
        if (ce && ce->child == st->supervisor && ce->reason == MESH_STOP_FAILED)
            fail(st, 1, "the control actors kept failing and their supervisor gave up");
        return 0;
    }
    default:
        return 0;
    }
}

static void node_stop(mesh_actor_t *self, int reason)
{
    node_state_t *st = mesh_state(self);
    free(st->watchers);
    st->watchers = NULL;
    free(st->route_watchers);
    st->route_watchers = NULL;
    if (st->n) { /* the last actor to stop: nothing adds or removes endpoints any more */
        mesh_admin_close(st->n->admin);
        st->n->admin = NULL;
    }
    node_metrics_destroy(&st->metrics);
    node_calls_destroy(&st->call_metrics);
}

static const mesh_actor_ops_t node_ops = {
    .name = "node",
    .state_size = sizeof(node_state_t),
    .on_start = node_start,
    .on_message = node_message,
    .on_stop = node_stop,
};

/* ---- construction ------------------------------------------------------------------------------
 */

mesh_node_t *mesh_node_new(const mesh_config_t *cfg)
{
    mesh_node_t *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->cfg = cfg;
    n->started_ns = uv_hrtime();
    n->started = time(NULL);
    mesh_exec_opts_t eo = {.workers = cfg->workers > 0 ? cfg->workers : 0, .no_signals = 1};
    n->exec = mesh_exec_new(&eo);
    if (!n->exec) {
        free(n);
        return NULL;
    }
    n->nworkers = mesh_exec_loop_count(n->exec) - 1;
    n->wk = calloc((size_t)(n->nworkers > 0 ? n->nworkers : 1), sizeof(*n->wk));
    if (!n->wk)
        goto fail;
    for (int i = 0; i < n->nworkers; i++) {
        n->wk[i].node = n;
        n->wk[i].index = i;
        if (mesh_evring_init(&n->wk[i].ring, RING_EVENTS) < 0)
            goto fail;
    }
    /* The node actor, first to start and last to stop; a big mailbox: every actor talks to
     * it. */
    mesh_spawn_opts_t so = {.loop = MESH_LOOP_CONTROL, .mailbox = 1u << 16};
    if (mesh_exec_spawn(n->exec, &node_ops, n, &so, &n->actor) != 0)
        goto fail;
    return n;
fail:
    mesh_error("node", "cannot create the node");
    mesh_node_free(n);
    return NULL;
}

mesh_exec_t *mesh_node_exec(mesh_node_t *n)
{
    return n->exec;
}

mesh_actor_id_t mesh_node_actor(const mesh_node_t *n)
{
    return n->actor;
}

int mesh_node_port(const mesh_node_t *n)
{
    return n->port;
}

/* Outlier ejection settings (--outlier*) and the state the workers share, so thresholds hold
 * whatever the worker count (transport/outlier_board.h). */
static int node_outlier_setup(mesh_node_t *n)
{
    const mesh_config_t *cfg = n->cfg;
    mesh_proxy_config_t *pc = &n->pcfg;
    pc->outlier_off = cfg->outlier && strcmp(cfg->outlier, "off") == 0;
    pc->outlier_consecutive = (uint32_t)cfg->outlier_consecutive;
    pc->outlier_base_ejection_ms = (uint64_t)cfg->outlier_base_ejection_ms;
    pc->outlier_max_ejection_ms = (uint64_t)cfg->outlier_max_ejection_ms;
    pc->outlier_max_ejection_percent = (uint32_t)cfg->outlier_max_ejection_percent;
    pc->outlier_failure_pct = (uint32_t)cfg->outlier_failure_pct;
    pc->outlier_failure_volume = (uint32_t)cfg->outlier_failure_volume;
    pc->outlier_interval_ms = (uint64_t)cfg->outlier_interval_ms;
    pc->outlier_sr_stdev = (uint32_t)cfg->outlier_sr_stdev;
    pc->outlier_sr_hosts = (uint32_t)cfg->outlier_sr_hosts;
    pc->outlier_sr_volume = (uint32_t)cfg->outlier_sr_volume;
    if (!n->outlier_board)
        n->outlier_board = mesh_outlier_board_new();
    pc->outlier_board = n->outlier_board;
    return n->outlier_board ? 0 : -1;
}

/* The engines' balancing settings from the lb options and the node's zone. */
static int node_lb_config(mesh_node_t *n, char *err, size_t errlen)
{
    mesh_lb_cfg_destroy(&n->lb);
    if (mesh_lb_options_load(n->cfg, &n->lb, err, errlen) != 0)
        return -1;
    n->pcfg.lb = &n->lb;
    mesh_info("node", "balancing: %s%s%s, %zu header subset%s", mesh_lb_policy_name(n->lb.policy),
              n->lb.zone ? ", prefer zone " : "", n->lb.zone ? n->lb.zone : "", n->lb.n_subsets,
              n->lb.n_subsets == 1 ? "" : "s");
    return 0;
}

int mesh_node_listen(mesh_node_t *n)
{
    const mesh_config_t *cfg = n->cfg;
    if (mesh_addr_split(cfg->listen, n->listen_host, sizeof(n->listen_host), &n->port) != 0) {
        mesh_error("node", "listen: '%s' is not HOST:PORT", cfg->listen);
        return -1;
    }
    mesh_proxy_config_t *pc = &n->pcfg;
    pc->listen_host = n->listen_host[0] ? n->listen_host : "0.0.0.0";
    pc->max_concurrent_streams = (uint32_t)cfg->max_concurrent_streams;
    pc->max_header_list_size = (uint32_t)cfg->max_header_list_size;
    pc->stream_buffer = (uint32_t)cfg->stream_buffer;
    pc->conn_window = (uint32_t)cfg->conn_window;
    pc->upstream_streams_per_conn = (uint32_t)cfg->upstream_streams_per_conn;
    pc->connect_timeout_ms = (uint64_t)cfg->connect_timeout_ms;
    /* (0 in the options is "off"; in the proxy's settings it is "the default") */
    pc->keepalive_interval_ms =
        cfg->keepalive_interval_ms ? (uint64_t)cfg->keepalive_interval_ms : UINT64_MAX;
    pc->keepalive_timeout_ms = (uint64_t)cfg->keepalive_timeout_ms;
    pc->upstream_stall_ms = cfg->upstream_stall_ms ? (uint64_t)cfg->upstream_stall_ms : UINT64_MAX;
    pc->upstream_stall_timeout_ms = (uint64_t)cfg->upstream_stall_timeout_ms;
    pc->dns_refresh_ms = (uint64_t)cfg->dns_refresh_ms;
    pc->tls_handshake_timeout_ms = node_tls_handshake_timeout(cfg);
    if (node_outlier_setup(n) != 0)
        return -1;
    char err[512];
    if (node_lb_config(n, err, sizeof(err)) != 0) {
        mesh_error("node", "%s", err);
        return -1;
    }
    n->chain = build_chain(n, err, sizeof(err));
    if (!n->chain) {
        mesh_error("policy", "%s", err);
        return -1;
    }
    jwks_watch(n, pol_chain_conf(n->chain)->jwks_url);
    log_faults(n->chain);
    if (node_tls_new(cfg, &n->tls) != 0)
        return -1;
    pc->n_workers = n->nworkers;
    for (int i = 0; i < n->nworkers; i++) {
        node_wk_t *w = &n->wk[i];
        pc->listen_port = n->port; /* port 0: the first worker picks, the others share it */
        pc->worker_index = i;
        mesh_proxy_config_t wc = *pc;
        wc.no_listener = n->no_listener;
        node_tls_engine_config(n->tls, &wc, n->tls_port);
        if (n->engine_hook)
            n->engine_hook(&wc, n->engine_hook_arg);
        /* The policy chain runs first, then the role's own filter (the sidecar's breaker). */
        mesh_proxy_filter_t role_filter = wc.filter;
        uv_loop_t *loop = mesh_exec_uv_loop(n->exec, i + 1);
        w->pol = pol_worker_new(loop, i, n->chain);
        if (!w->pol)
            return -1;
        pol_worker_set_upstream_mtls(w->pol, node_tls_upstream_mtls(n->tls));
        pol_worker_filter(w->pol, &wc.filter);
        w->engine = mesh_proxy_worker_new(loop, &wc);
        if (!w->engine) {
            mesh_error("node", "cannot listen on %s", cfg->listen);
            return -1;
        }
        if (role_filter.on_call)
            mesh_proxy_worker_add_filter(w->engine, &role_filter);
        if (n->serve_health && !(w->health = node_health_install(w->engine, i)))
            return -1;
        n->port = mesh_proxy_worker_port(w->engine);
        n->tls_port = mesh_proxy_worker_tls_port(w->engine);
        if (n->fe.create) {
            w->fe = n->fe.create(n->fe.arg, i, loop, w->engine);
            if (!w->fe)
                return -1;
        }
        for (int k = 0; k < n->n_exts; k++)
            if (!(w->ext[k] = n->exts[k].create(n->exts[k].arg, i, w->engine)))
                return -1;
        mesh_spawn_opts_t so = {.loop = MESH_ON_LOOP(i + 1)};
        if (mesh_exec_spawn(n->exec, &worker_ops, w, &so, &w->actor) != 0) {
            mesh_error("node", "cannot start worker %d", i);
            return -1;
        }
    }
    if (n->no_listener)
        mesh_info("node", "%d worker%s (no gRPC listener)", n->nworkers,
                  n->nworkers == 1 ? "" : "s");
    else
        mesh_info("node", "listening on %s:%d%s with %d worker%s", pc->listen_host, n->port,
                  node_tls_listener(n->tls) && !n->tls_port && !n->no_listener ? " (TLS)" : "",
                  n->nworkers, n->nworkers == 1 ? "" : "s");
    if (n->tls_port)
        mesh_info("node", "listening on %s:%d (TLS)", node_tls_listen_host(n->tls), n->tls_port);
    return 0;
}

void mesh_node_publish_routes(mesh_node_t *n, mesh_routes_t *routes)
{
    for (int i = 0; i < n->nworkers; i++)
        if (n->wk[i].engine)
            mesh_proxy_worker_set_routes(n->wk[i].engine, mesh_routes_ref(routes));
    mesh_routes_unref(n->routes); /* kept for the admin API */
    n->routes = routes;
}

void mesh_node_set_engine_hook(mesh_node_t *n, void (*fn)(mesh_proxy_config_t *cfg, void *arg),
                               void *arg)
{
    n->engine_hook = fn;
    n->engine_hook_arg = arg;
}

struct mesh_tls_holder *mesh_node_tls_http(mesh_node_t *n)
{
    return node_tls_http(n->tls);
}

struct mesh_tls_holder *mesh_node_tls_admin(mesh_node_t *n)
{
    return node_tls_admin(n->tls);
}

mesh_rpc_t *mesh_node_upstream_rpc(void *node, mesh_actor_t *self, const char *addr,
                                   mesh_rpc_deliver_fn deliver, void *ud)
{
    mesh_node_t *n = node;
    struct uv_loop_s *loop = mesh_uv_loop(self);
    mesh_proxy_config_t up = {0}; /* the upstream part of what the workers get */
    node_tls_engine_config(n->tls, &up, 0);
    return loop ? mesh_rpc_grpc_new_tls(loop, addr, 5000, up.upstream_tls, up.upstream_tls_name,
                                        node_tls_handshake_timeout(n->cfg), deliver, ud)
                : NULL;
}

uint64_t mesh_node_tls_handshake_timeout(const mesh_node_t *n)
{
    return node_tls_handshake_timeout(n->cfg);
}

int mesh_node_tls_http_wanted(const mesh_node_t *n)
{
    return node_tls_listener(n->tls);
}

int mesh_node_tls_mesh_served(const mesh_node_t *n)
{
    return node_tls_mesh_served(n->tls);
}

void mesh_node_set_frontend(mesh_node_t *n, const mesh_node_frontend_t *fe)
{
    n->fe = *fe;
}

int mesh_node_add_ext(mesh_node_t *n, const mesh_node_ext_t *e)
{
    if (n->n_exts == MESH_NODE_MAX_EXTS)
        return -1;
    n->exts[n->n_exts] = *e;
    return n->n_exts++;
}

int mesh_node_ext_publish(mesh_node_t *n, int id, void *(*ref)(void *), void *payload)
{
    if (id < 0 || id >= n->n_exts)
        return -1;
    const mesh_node_ext_t *e = &n->exts[id];
    int rc = 0;
    for (int i = 0; i < n->nworkers; i++) {
        node_wk_t *w = &n->wk[i];
        if (!w->ext[id])
            continue;
        void *p = ref(payload);
        if (!n->running) {
            e->update(w->ext[id], p);
            continue;
        }
        int err =
            mesh_exec_send_ptr(n->exec, w->actor, NODE_MSG_EXT + (uint32_t)id, p, e->payload_unref);
        if (err != 0) {
            e->payload_unref(p);
            mesh_error("node", "worker %d did not take an extension's update: %s", i,
                       mesh_strerror(err));
            rc = -1;
        }
    }
    return rc;
}

void mesh_node_set_no_listener(mesh_node_t *n, int no_listener)
{
    n->no_listener = no_listener;
}

int mesh_node_frontend_publish(mesh_node_t *n, void *(*ref)(void *), void *payload)
{
    int rc = 0;
    for (int i = 0; i < n->nworkers; i++) {
        node_wk_t *w = &n->wk[i];
        if (!w->fe)
            continue;
        void *p = ref(payload);
        if (!n->running) {
            n->fe.update(w->fe, p);
            continue;
        }
        int e = mesh_exec_send_ptr(n->exec, w->actor, NODE_MSG_FRONTEND, p, n->fe.payload_unref);
        if (e != 0) {
            n->fe.payload_unref(p);
            mesh_error("node", "worker %d did not take the front end's update: %s", i,
                       mesh_strerror(e));
            rc = -1;
        }
    }
    return rc;
}

void mesh_node_set_predrain(mesh_node_t *n, uint64_t ms)
{
    n->predrain_ms = ms;
}

void mesh_node_serve_health(mesh_node_t *n, int on)
{
    n->serve_health = on;
}

void mesh_node_set_audit(mesh_node_t *n, audit_api_t *api)
{
    n->audit = api;
}

int mesh_node_supervise(mesh_node_t *n, const mesh_supervisor_spec_t *spec)
{
    if (n->sup_spec)
        return -1;
    n->sup_spec = spec;
    return 0;
}

/* ---- admin API ------------------------------------------------------------------------------ */

mesh_admin_t *mesh_node_admin(const mesh_node_t *n)
{
    return n->admin;
}

const char *mesh_node_etcd_state(const mesh_node_t *n)
{
    if (n->cfg->etcd.n == 0)
        return "off";
    return n->etcd_connected ? "connected" : "degraded";
}

/* GET /v1/node. */
static json_t *admin_node(void *ud, const h1_req_t *req, int *status)
{
    mesh_node_t *n = ud;
    size_t services = n->routes ? mesh_routes_count(n->routes) : 0, instances = 0;
    for (size_t i = 0; i < services; i++)
        instances += mesh_routes_at(n->routes, i)->n_instances;
    json_t *roles = json_array();
    char buf[64];
    snprintf(buf, sizeof(buf), "%s", n->roles);
    for (char *save = NULL, *r = strtok_r(buf, ",", &save); roles && r;
         r = strtok_r(NULL, ",", &save))
        json_array_append_new(roles, json_string(r));
    char started[32];
    struct tm tm;
    gmtime_r(&n->started, &tm);
    strftime(started, sizeof(started), "%Y-%m-%dT%H:%M:%SZ", &tm);
    char grpc[300];
    snprintf(grpc, sizeof(grpc), strchr(n->listen_host, ':') ? "[%s]:%d" : "%s:%d",
             n->listen_host[0] ? n->listen_host : "0.0.0.0", n->port);
    json_t *etcd = json_array();
    for (size_t i = 0; etcd && i < n->cfg->etcd.n; i++)
        json_array_append_new(etcd, json_string(n->cfg->etcd.items[i]));
    json_t *o =
        json_pack("{s:s,s:o,s:s,s:I,s:s,s:f,s:{s:s,s:s},s:i,s:s,s:o,s:{s:I,s:I},s:n}", "node",
                  n->cfg->node ? n->cfg->node : "", "roles", roles ? roles : json_array(),
                  "version", MESHD_VERSION, "pid", (json_int_t)getpid(), "started", started,
                  "uptime_s", (double)(uv_hrtime() - n->started_ns) / 1e9, "listen", "grpc", grpc,
                  "admin", mesh_admin_address(n->admin), "workers", n->nworkers, "etcd",
                  mesh_node_etcd_state(n), "etcd_endpoints", etcd ? etcd : json_array(), "counts",
                  "services", (json_int_t)services, "instances", (json_int_t)instances, "gossip");
    if (o)
        mesh_admin_node_sections(n->admin, o); /* "gossip" when gossip runs */
    return o;
}

/* The first source of /v1/routes: the table the workers route with. */
static void admin_routes_table(void *ud, mesh_admin_routes_t *list)
{
    mesh_node_t *n = ud;
    if (mesh_admin_routes_add_table(list, n->routes) != 0)
        mesh_error("admin", "out of memory listing the routes");
}

/* A service's own settings (routes:), for its upstream TLS in /v1/routes. */
static const mesh_svc_policy_t *admin_routes_svc(void *ud, const char *service)
{
    mesh_node_t *n = ud;
    const pol_route_rule_t *r =
        n->chain ? pol_routes_match_service(pol_chain_routes(n->chain), service, strlen(service))
                 : NULL;
    return r ? r->svc : NULL;
}

/* GET /v1/routes. */
static json_t *admin_routes(void *ud, const h1_req_t *req, int *status)
{
    mesh_node_t *n = ud;
    mesh_admin_routes_t *list = mesh_admin_routes_new();
    if (!list)
        return NULL;
    mesh_admin_collect_routes(n->admin, list);
    mesh_admin_tls_view_t tls = {.mesh = node_tls_mesh_client(n->tls),
                                 .upstream = node_tls_upstream(n->tls),
                                 .upstream_mtls = node_tls_upstream_mtls(n->tls),
                                 .svc = admin_routes_svc,
                                 .ud = n};
    json_t *o = mesh_admin_routes_json(list, mesh_node_etcd_state(n), &tls);
    mesh_admin_routes_free(list);
    return o;
}

/* The balancing and outlier settings in force for one service: its service-wide rule's over
 * the command line's (transport/svc_policy.h), as the workers resolve them. */
static json_t *effective_settings(const mesh_node_t *n, const pol_routes_conf_t *rc,
                                  const char *svc)
{
    const pol_route_rule_t *r = pol_routes_match_service(rc, svc, strlen(svc));
    mesh_lb_cfg_t lb;
    mesh_svc_policy_lb(r ? r->svc : NULL, &n->lb, &lb);
    const mesh_proxy_config_t *pc = &n->pcfg;
    mesh_outlier_cfg_t def = {.consecutive = pc->outlier_consecutive,
                              .base_ejection_ms = pc->outlier_base_ejection_ms,
                              .max_ejection_ms = pc->outlier_max_ejection_ms,
                              .max_ejection_percent = pc->outlier_max_ejection_percent,
                              .disabled = pc->outlier_off},
                       ol;
    mesh_outlier_cfg_fix(&def);
    mesh_svc_policy_outlier(r ? r->svc : NULL, &def, &ol);
    mesh_olw_cfg_t dfp = {.threshold_pct = pc->outlier_failure_pct,
                          .min_volume = pc->outlier_failure_volume,
                          .interval_ms = pc->outlier_interval_ms},
                   fp;
    mesh_olsr_cfg_t dsr = {.enabled = pc->outlier_sr_stdev > 0,
                           .stdev_factor = pc->outlier_sr_stdev / 1000.0,
                           .min_hosts = pc->outlier_sr_hosts,
                           .request_volume = pc->outlier_sr_volume,
                           .interval_ms = pc->outlier_interval_ms},
                    sr;
    mesh_olw_cfg_fix(&dfp);
    mesh_olsr_cfg_fix(&dsr);
    mesh_svc_policy_detectors(r ? r->svc : NULL, &dfp, &dsr, &fp, &sr);
    json_t *subsets = json_array();
    for (size_t i = 0; i < lb.n_subsets; i++)
        json_array_append_new(subsets,
                              json_pack("{s:s,s:s,s:s}", "header", lb.subsets[i].header, "value",
                                        lb.subsets[i].value,
                                        lb.subsets[i].by == MESH_LB_BY_ZONE ? "zone" : "version",
                                        lb.subsets[i].want));
    json_t *o = json_pack("{s:o,s:{s:s,s:s?,s:o},s:{s:b,s:i,s:I,s:I,s:i}}", "rule_line",
                          r ? json_integer(r->line) : json_null(), "balancer", "policy",
                          mesh_lb_policy_name(lb.policy), "zone", lb.zone, "subsets", subsets,
                          "outlier", "enabled", !ol.disabled, "consecutive", (int)ol.consecutive,
                          "base_ejection_ms", (json_int_t)ol.base_ejection_ms, "max_ejection_ms",
                          (json_int_t)ol.max_ejection_ms, "max_ejection_percent",
                          (int)ol.max_ejection_percent);
    pol_routes_detectors_json(json_object_get(o, "outlier"), &fp, &sr);
    json_object_set_new(o, "connect_timeout_ms",
                        json_integer((json_int_t)(r && r->svc && r->svc->connect_timeout_ms
                                                      ? r->svc->connect_timeout_ms
                                                      : pc->connect_timeout_ms)));
    return o;
}

/* GET /v1/route-policy: the `routes:` block in force (retries, budget, hedging, faults,
 * balancer and outlier rules) and, per service of the routing table, the balancing and outlier
 * settings in force (`services`). */
static json_t *admin_route_policy(void *ud, const h1_req_t *req, int *status)
{
    mesh_node_t *n = ud;
    if (!n->chain)
        return json_pack("{s:b}", "present", 0);
    const pol_routes_conf_t *rc = pol_chain_routes(n->chain);
    json_t *o = pol_routes_describe(rc);
    json_t *svcs = json_object();
    size_t ns = n->routes ? mesh_routes_count(n->routes) : 0;
    for (size_t i = 0; i < ns; i++) {
        const char *name = mesh_routes_at(n->routes, i)->name;
        json_object_set_new(svcs, name, effective_settings(n, rc, name));
    }
    json_object_set_new(o, "services", svcs);
    return o;
}

/* GET /v1/policy: the policy in force (never a secret). */
static json_t *admin_policy(void *ud, const h1_req_t *req, int *status)
{
    mesh_node_t *n = ud;
    if (!n->chain)
        return json_pack("{s:b}", "present", 0);
    return pol_chain_describe(n->chain);
}

int mesh_node_admin_listen(mesh_node_t *n, const char *roles)
{
    const char *spec = mesh_admin_options(n->cfg)->listen;
    snprintf(n->roles, sizeof(n->roles), "%s", roles ? roles : "");
    if (!spec || !*spec || n->admin)
        return 0;
    n->admin = mesh_admin_new(mesh_exec_uv_loop(n->exec, 0));
    const char *tf = mesh_admin_options(n->cfg)->token_file;
    if (n->admin && tf && *tf) {
        char tok[MESH_ADMIN_TOKEN_MAX + 1], err[512];
        if (mesh_admin_token_read(tf, tok, sizeof(tok), err, sizeof(err)) < 0 ||
            mesh_admin_set_token(n->admin, tok) != 0) {
            mesh_error("node", "%s", err);
            return -1;
        }
    }
    if (!n->admin || mesh_admin_add_json(n->admin, "/v1/node", admin_node, n) != 0 ||
        mesh_admin_add_json(n->admin, "/v1/routes", admin_routes, n) != 0 ||
        mesh_admin_add_json(n->admin, "/v1/policy", admin_policy, n) != 0 ||
        mesh_admin_add_json(n->admin, "/v1/route-policy", admin_route_policy, n) != 0 ||
        mesh_admin_add_routes_source(n->admin, admin_routes_table, n) != 0) {
        mesh_error("node", "cannot create the admin API");
        return -1;
    }
    if (mesh_admin_options(n->cfg)->tls) {
        struct mesh_tls_holder *h = node_tls_admin(n->tls);
        if (!h) {
            if (!node_tls_listener(n->tls))
                mesh_error("node", "admin-tls: needs --tls-cert and --tls-key");
            return -1;
        }
        mesh_admin_set_tls(n->admin, h, node_tls_handshake_timeout(n->cfg));
    }
    return mesh_admin_listen(n->admin, spec);
}

/* ---- running --------------------------------------------------------------------------------- */

/* The signal adapter: a signal becomes a message to the node actor. */
static void on_signal(uv_signal_t *h, int signum)
{
    mesh_node_t *n = h->data;
    node_signal_t s = {.signum = signum};
    int rc = signum == SIGHUP ? mesh_exec_send(n->exec, n->actor, NODE_MSG_RELOAD, NULL, 0)
                              : mesh_exec_send(n->exec, n->actor, NODE_MSG_SIGNAL, &s, sizeof(s));
    if (rc != 0)
        mesh_error("node", "signal %d: cannot reach the node actor: %s", signum, mesh_strerror(rc));
}

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* Control loop, at executor shutdown: the signal handles close with the loop. */
static void on_exec_shutdown(mesh_exec_t *exec, void *arg)
{
    mesh_node_t *n = arg;
    close_handle((uv_handle_t *)&n->sigterm);
    close_handle((uv_handle_t *)&n->sigint);
    close_handle((uv_handle_t *)&n->sighup);
    jwks_watch(n, NULL);
}

int mesh_node_run(mesh_node_t *n)
{
    uv_loop_t *control = mesh_exec_uv_loop(n->exec, 0);
    uv_signal_init(control, &n->sigterm);
    uv_signal_init(control, &n->sigint);
    uv_signal_init(control, &n->sighup);
    n->sigterm.data = n->sigint.data = n->sighup.data = n;
    uv_signal_start(&n->sigterm, on_signal, SIGTERM);
    uv_signal_start(&n->sigint, on_signal, SIGINT);
    uv_signal_start(&n->sighup, on_signal, SIGHUP);
    n->signals_on = 1;
    mesh_exec_on_shutdown(n->exec, on_exec_shutdown, n);
    n->running = 1; /* (set before the worker threads start) */
    mesh_exec_run(n->exec);
    return n->exit_code;
}

void mesh_node_free(mesh_node_t *n)
{
    if (!n)
        return;
    /* Engines of a node that never ran: free them, let their closes finish. */
    for (int i = 0; n->wk && i < n->nworkers; i++)
        if (n->wk[i].engine || n->wk[i].pol) {
            if (n->wk[i].fe)
                n->fe.destroy(n->wk[i].fe);
            n->wk[i].fe = NULL;
            if (n->wk[i].engine)
                mesh_proxy_worker_free(n->wk[i].engine);
            n->wk[i].engine = NULL;
            pol_worker_free(n->wk[i].pol);
            n->wk[i].pol = NULL;
        }
    for (int i = 0; n->wk && i < n->nworkers; i++) { /* (no call can be open: none ran) */
        node_health_free(n->wk[i].health);
        n->wk[i].health = NULL;
        if (n->wk[i].node) /* the extensions of workers that never ran */
            wk_destroy_exts(&n->wk[i]);
    }
    mesh_admin_close(n->admin); /* a node that never ran: its closes finish in mesh_exec_free */
    n->admin = NULL;
    if (n->exec)
        mesh_exec_free(n->exec);
    mesh_outlier_board_free(n->outlier_board); /* after the engines' endpoints */
    mesh_routes_unref(n->routes);
    pol_chain_unref(n->chain);
    free(n->jwks_body);
    free(n->jwks_url);
    for (int i = 0; n->wk && i < n->nworkers; i++) {
        mesh_event_t ev[64]; /* events nobody took: free the snapshots they carry */
        size_t k;
        do {
            k = mesh_evring_take(&n->wk[i].ring, ev, 64);
            for (size_t j = 0; j < k; j++)
                if (ev[j].type == MESH_EV_CALLS)
                    free((void *)(uintptr_t)ev[j].a);
        } while (k == 64);
        mesh_evring_destroy(&n->wk[i].ring);
    }
    free(n->wk);
    mesh_lb_cfg_destroy(&n->lb);
    node_tls_free(n->tls); /* after the engines: connections hold contexts, not the holders */
    free(n);
}
