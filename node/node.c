/*
 * node/node.c: a meshd node: executor, per-worker proxy engines, route publishing and the
 * signal-driven drain (see node/node.h).
 *
 * Threads: the node struct is owned by the control loop; each worker slot (node_worker_t) is
 * touched only by its worker's loop thread once the node runs. The proxy engines are created
 * from the main thread before the worker threads start (the loops are not running yet, and
 * pthread_create orders the two), so bind errors are reported synchronously.
 *
 * Shutdown, all on the control loop unless noted:
 *   signal -> on_signal hooks -> pre-drain timer (0 for the proxy)
 *          -> post drain to every worker; start the drain-timeout timer
 *   worker (its loop): drained -> free its engine -> post "worker done" to control
 *   control: all workers done, or drain timeout (forces the rest) -> mesh_exec_shutdown,
 *            which stops the actors in reverse start order and ends mesh_exec_run.
 */
#include "node/node.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "common/log.h"
#include "transport/proxy.h"

typedef struct node_worker {
    mesh_node_t *node;
    int loop; /* executor loop index (1..N) */
    mesh_proxy_worker_t *engine;
    int draining;
} node_worker_t;

typedef struct node_hook {
    void (*fn)(void *arg);
    void *arg;
} node_hook_t;

struct mesh_node {
    mesh_exec_t *exec;
    const mesh_config_t *cfg;
    mesh_proxy_config_t pcfg;
    char listen_host[256];
    int port;
    int nworkers;
    node_worker_t *workers;
    _Atomic int workers_live; /* engines not yet freed */

    uv_signal_t sigterm, sigint;
    uv_timer_t predrain_timer, drain_timer;
    uint64_t predrain_ms;
    int signals; /* signals received */
    int draining;
    int finished;
    int exit_code;
    node_hook_t hooks[8];
    int nhooks;
    void (*engine_hook)(mesh_proxy_config_t *cfg, void *arg);
    void *engine_hook_arg;
};

/* ---- route publishing ---------------------------------------------------------------- */

typedef struct routes_post {
    node_worker_t *w;
    mesh_routes_t *routes;
} routes_post_t;

static void apply_routes(void *arg)
{
    routes_post_t *p = arg;
    if (p->w->engine)
        mesh_proxy_worker_set_routes(p->w->engine, p->routes);
    else
        mesh_routes_unref(p->routes);
    free(p);
}

void mesh_node_publish_routes(mesh_node_t *n, mesh_routes_t *routes)
{
    for (int i = 0; i < n->nworkers; i++) {
        node_worker_t *w = &n->workers[i];
        if (!w->engine)
            continue;
        routes_post_t *p = malloc(sizeof(*p));
        if (!p)
            continue;
        p->w = w;
        p->routes = mesh_routes_ref(routes);
        if (mesh_exec_post(n->exec, w->loop, apply_routes, p) != 0) {
            mesh_routes_unref(p->routes);
            free(p);
        }
    }
    mesh_routes_unref(routes);
}

/* ---- construction ---------------------------------------------------------------------- */

mesh_node_t *mesh_node_new(const mesh_config_t *cfg)
{
    mesh_node_t *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->cfg = cfg;
    mesh_exec_opts_t eo = {.workers = cfg->workers > 0 ? cfg->workers : 0, .no_signals = 1};
    n->exec = mesh_exec_new(&eo);
    if (!n->exec) {
        free(n);
        return NULL;
    }
    n->nworkers = mesh_exec_loop_count(n->exec) - 1;
    n->workers = calloc((size_t)n->nworkers, sizeof(*n->workers));
    for (int i = 0; i < n->nworkers; i++) {
        n->workers[i].node = n;
        n->workers[i].loop = i + 1;
    }
    return n;
}

mesh_exec_t *mesh_node_exec(mesh_node_t *n)
{
    return n->exec;
}

int mesh_node_port(const mesh_node_t *n)
{
    return n->port;
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
    pc->upstream_streams_per_conn = (uint32_t)cfg->upstream_streams_per_conn;
    pc->connect_timeout_ms = (uint64_t)cfg->connect_timeout_ms;
    pc->keepalive_interval_ms = (uint64_t)cfg->keepalive_interval_ms;
    pc->keepalive_timeout_ms = (uint64_t)cfg->keepalive_timeout_ms;
    pc->dns_refresh_ms = (uint64_t)cfg->dns_refresh_ms;
    for (int i = 0; i < n->nworkers; i++) {
        node_worker_t *w = &n->workers[i];
        pc->listen_port = n->port; /* port 0: the first worker picks, the others share it */
        pc->worker_index = i;
        mesh_proxy_config_t wc = *pc;
        if (n->engine_hook)
            n->engine_hook(&wc, n->engine_hook_arg);
        w->engine = mesh_proxy_worker_new(mesh_exec_uv_loop(n->exec, w->loop), &wc);
        if (!w->engine) {
            mesh_error("node", "cannot listen on %s", cfg->listen);
            return -1;
        }
        atomic_fetch_add(&n->workers_live, 1);
        n->port = mesh_proxy_worker_port(w->engine);
    }
    mesh_info("node", "listening on %s:%d with %d worker%s", pc->listen_host, n->port, n->nworkers,
              n->nworkers == 1 ? "" : "s");
    return 0;
}

void mesh_node_set_engine_hook(mesh_node_t *n, void (*fn)(mesh_proxy_config_t *cfg, void *arg),
                               void *arg)
{
    n->engine_hook = fn;
    n->engine_hook_arg = arg;
}

void mesh_node_on_signal(mesh_node_t *n, void (*fn)(void *arg), void *arg)
{
    if (n->nhooks < (int)(sizeof(n->hooks) / sizeof(n->hooks[0])))
        n->hooks[n->nhooks++] = (node_hook_t){fn, arg};
}

void mesh_node_set_predrain(mesh_node_t *n, uint64_t ms)
{
    n->predrain_ms = ms;
}

/* ---- shutdown ---------------------------------------------------------------------------- */

static void finish(mesh_node_t *n)
{
    if (n->finished)
        return;
    n->finished = 1;
    uv_timer_stop(&n->drain_timer);
    uv_timer_stop(&n->predrain_timer);
    mesh_info("node", "drained; stopping actors");
    mesh_exec_shutdown(n->exec);
}

/* Control loop: one worker has freed its engine. */
static void worker_done(void *arg)
{
    mesh_node_t *n = arg;
    if (atomic_load(&n->workers_live) == 0)
        finish(n);
}

/* Worker loop: frees the engine (once) and tells the control loop. */
static void worker_release(node_worker_t *w)
{
    if (!w->engine)
        return;
    mesh_proxy_worker_free(w->engine);
    w->engine = NULL;
    atomic_fetch_sub(&w->node->workers_live, 1);
    mesh_exec_post(w->node->exec, 0, worker_done, w->node);
}

static void worker_drained_post(void *arg)
{
    worker_release(arg);
}

/* Worker loop: drain finished (called by the engine; free it outside its own callback). */
static void worker_drained(void *arg)
{
    node_worker_t *w = arg;
    mesh_exec_post(w->node->exec, w->loop, worker_drained_post, w);
}

static void worker_drain(void *arg)
{
    node_worker_t *w = arg;
    if (!w->engine || w->draining)
        return;
    w->draining = 1;
    mesh_proxy_worker_drain(w->engine, worker_drained, w);
}

static void worker_force(void *arg)
{
    worker_release(arg);
}

static void start_drain(mesh_node_t *n)
{
    if (n->draining)
        return;
    n->draining = 1;
    if (atomic_load(&n->workers_live) == 0) {
        finish(n);
        return;
    }
    mesh_info("node", "draining: GOAWAY sent, waiting up to %lld ms for calls in flight",
              (long long)n->cfg->drain_timeout_ms);
    for (int i = 0; i < n->nworkers; i++)
        mesh_exec_post(n->exec, n->workers[i].loop, worker_drain, &n->workers[i]);
}

static void force_stop(mesh_node_t *n)
{
    int live = atomic_load(&n->workers_live);
    if (live == 0) {
        finish(n);
        return;
    }
    mesh_warn("node", "drain timeout: resetting the calls still in flight on %d worker%s", live,
              live == 1 ? "" : "s");
    for (int i = 0; i < n->nworkers; i++)
        mesh_exec_post(n->exec, n->workers[i].loop, worker_force, &n->workers[i]);
}

static void on_drain_timeout(uv_timer_t *t)
{
    force_stop(t->data);
}

static void on_predrain_done(uv_timer_t *t)
{
    mesh_node_t *n = t->data;
    start_drain(n);
    uv_timer_start(&n->drain_timer, on_drain_timeout, (uint64_t)n->cfg->drain_timeout_ms, 0);
}

void mesh_node_shutdown(mesh_node_t *n)
{
    n->signals++;
    if (n->signals > 1) {
        mesh_warn("node", "second shutdown request: not waiting any longer");
        start_drain(n);
        force_stop(n);
        return;
    }
    for (int i = 0; i < n->nhooks; i++)
        n->hooks[i].fn(n->hooks[i].arg);
    if (n->predrain_ms)
        mesh_info("node", "shutting down: serving %llu ms more before draining",
                  (unsigned long long)n->predrain_ms);
    uv_timer_start(&n->predrain_timer, on_predrain_done, n->predrain_ms, 0);
}

void mesh_node_fail(mesh_node_t *n, int exit_code)
{
    mesh_error("node", "stopping: a component the node needs has failed (exit %d)", exit_code);
    n->exit_code = exit_code;
    n->predrain_ms = 0;
    if (n->signals == 0)
        mesh_node_shutdown(n);
}

static void on_signal(uv_signal_t *h, int signum)
{
    mesh_node_t *n = h->data;
    mesh_info("node", "signal %d received", signum);
    mesh_node_shutdown(n);
}

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* Control loop, at executor shutdown: the node's own handles close with the loop. */
static void on_exec_shutdown(mesh_exec_t *exec, void *arg)
{
    mesh_node_t *n = arg;
    close_handle((uv_handle_t *)&n->sigterm);
    close_handle((uv_handle_t *)&n->sigint);
    close_handle((uv_handle_t *)&n->predrain_timer);
    close_handle((uv_handle_t *)&n->drain_timer);
}

int mesh_node_run(mesh_node_t *n)
{
    uv_loop_t *control = mesh_exec_uv_loop(n->exec, 0);
    uv_signal_init(control, &n->sigterm);
    uv_signal_init(control, &n->sigint);
    uv_timer_init(control, &n->predrain_timer);
    uv_timer_init(control, &n->drain_timer);
    n->sigterm.data = n->sigint.data = n->predrain_timer.data = n->drain_timer.data = n;
    uv_signal_start(&n->sigterm, on_signal, SIGTERM);
    uv_signal_start(&n->sigint, on_signal, SIGINT);
    mesh_exec_on_shutdown(n->exec, on_exec_shutdown, n);
    mesh_exec_run(n->exec);
    /* Engines not freed yet (shutdown without a drain) are freed on this thread: the worker
     * loops have stopped, and the executor closes their handles when it is freed. */
    for (int i = 0; i < n->nworkers; i++)
        if (n->workers[i].engine) {
            mesh_proxy_worker_free(n->workers[i].engine);
            n->workers[i].engine = NULL;
        }
    return n->exit_code;
}

void mesh_node_free(mesh_node_t *n)
{
    if (!n)
        return;
    for (int i = 0; i < n->nworkers; i++)
        if (n->workers[i].engine) /* never ran: free the engines, let their closes finish */
            mesh_proxy_worker_free(n->workers[i].engine);
    mesh_exec_free(n->exec);
    free(n->workers);
    free(n);
}
