/*
 * actors/exec.c: the real executor: one control loop and N worker loops on libuv threads.
 *
 * Each loop wakes on its uv_async_t when its inbox goes from empty to non-empty, drains
 * ready actors in FIFO order with a budget (a uv_idle_t keeps it going without blocking I/O
 * when more is ready), and drives its timer heap with one uv_timer_t. Shutdown runs on the
 * control loop: hooks, drain, ordered stops, loop stops.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "actors/runtime.h"
#include "common/log.h"

#define DRAIN_BUDGET     16384 /* messages per drain pass before I/O gets a turn */
#define PER_ACTOR_BUDGET 256   /* messages per actor per turn */

typedef struct mesh_shutdown_hook {
    void (*fn)(mesh_exec_t *exec, void *arg);
    void *arg;
    struct mesh_shutdown_hook *next;
} mesh_shutdown_hook_t;

/* ---------------------------------------------------------------------------------------- */
/* Loop machinery                                                                           */
/* ---------------------------------------------------------------------------------------- */

static void loop_drain(mesh_loop_t *l)
{
    l->draining = 1;
    if (atomic_load_explicit(&l->inbox, memory_order_relaxed))
        mesh_rt_take_inbox(l);
    int budget = DRAIN_BUDGET;
    mesh_actor_t *a;
    while (budget > 0 && (a = l->ready_head) != NULL) {
        l->ready_head = a->ready_next;
        if (!l->ready_head)
            l->ready_tail = NULL;
        a->ready_next = NULL;
        /* a->queued stays set while it runs: sends to it only append to its mailbox. */
        int n = 0;
        while (a->mb_head && n < PER_ACTOR_BUDGET && a->status != MESH_ACT_DEAD) {
            mesh_rt_deliver_one(l, a);
            n++;
        }
        budget -= n ? n : 1;
        if (a->status != MESH_ACT_DEAD && a->mb_head) {
            if (l->ready_tail)
                l->ready_tail->ready_next = a;
            else
                l->ready_head = a;
            l->ready_tail = a;
        } else {
            a->queued = 0;
            mesh_rt_maybe_free(a);
        }
        if (budget > 0 && !l->ready_head && atomic_load_explicit(&l->inbox, memory_order_relaxed))
            mesh_rt_take_inbox(l);
    }
    l->draining = 0;
    atomic_store_explicit(&l->busy, l->in_mailboxes, memory_order_relaxed);
    if (l->ready_head)
        mesh_rt_schedule(l);
}

static void on_idle(uv_idle_t *h)
{
    mesh_loop_t *l = h->data;
    loop_drain(l);
    if (!l->ready_head) {
        uv_idle_stop(&l->idle);
        l->idle_on = 0;
    }
}

static void on_async(uv_async_t *h)
{
    loop_drain(h->data);
}

static void on_timer(uv_timer_t *h);

static void rearm(mesh_loop_t *l, uint64_t now)
{
    uint64_t next = mesh_timer_next(l);
    if (next == UINT64_MAX) {
        uv_timer_stop(&l->timer);
        l->armed_deadline = UINT64_MAX;
        return;
    }
    uint64_t ms = next > now ? (next - now + 999999) / 1000000 : 0;
    uv_timer_start(&l->timer, on_timer, ms, 0);
    l->armed_deadline = next;
}

static void on_timer(uv_timer_t *h)
{
    mesh_loop_t *l = h->data;
    uint64_t now = uv_hrtime();
    l->armed_deadline = UINT64_MAX;
    l->draining = 1;
    while (mesh_timer_fire_one(l, now))
        ;
    l->draining = 0;
    rearm(l, uv_hrtime());
    loop_drain(l);
}

void mesh_rt_schedule(mesh_loop_t *l)
{
    if (l->exec->sim || !l->uv_ready || l->idle_on)
        return;
    uv_idle_start(&l->idle, on_idle);
    l->idle_on = 1;
}

void mesh_rt_timer_added(mesh_loop_t *l, uint64_t deadline)
{
    if (l->exec->sim || !l->uv_ready || deadline >= l->armed_deadline)
        return;
    rearm(l, uv_hrtime());
}

static void close_cb_noop(uv_handle_t *h)
{
    (void)h;
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, close_cb_noop);
}

/* Closes every handle still open on the loop and lets the close callbacks run. */
static void loop_close_handles(mesh_loop_t *l)
{
    if (!l->uv_ready)
        return;
    pthread_mutex_lock(&l->wake_lock); /* no thread wakes the loop from here on */
    l->uv_ready = 0;
    pthread_mutex_unlock(&l->wake_lock);
    uv_walk(&l->uv, close_walk, NULL);
    uv_run(&l->uv, UV_RUN_DEFAULT);
}

static void *worker_main(void *arg)
{
    mesh_loop_t *l = arg;
    mesh_tls_loop = l;
    uv_run(&l->uv, UV_RUN_DEFAULT);
    return NULL;
}

static void loop_stop_fn(void *arg)
{
    mesh_loop_t *l = arg;
    uv_stop(&l->uv);
}

/* ---------------------------------------------------------------------------------------- */
/* Construction                                                                             */
/* ---------------------------------------------------------------------------------------- */

mesh_exec_t *mesh_exec_new(const mesh_exec_opts_t *opts)
{
    mesh_exec_t *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    if (opts)
        e->opts = *opts;
    int workers = e->opts.workers;
    if (workers < -1 || workers > MESH_EXEC_MAX_WORKERS) {
        mesh_error("exec", "%d worker loops asked for: the range is 0 (one per core) to %d",
                   workers, MESH_EXEC_MAX_WORKERS);
        free(e);
        return NULL;
    }
    if (workers == 0) {
        unsigned cores = uv_available_parallelism();
        workers = cores > MESH_EXEC_MAX_WORKERS ? MESH_EXEC_MAX_WORKERS : (int)cores;
        if (cores > MESH_EXEC_MAX_WORKERS)
            mesh_warn("exec", "%u cores: running %d worker loops, the most a node runs", cores,
                      MESH_EXEC_MAX_WORKERS);
    }
    if (workers < 0)
        workers = 0;
    if (!e->opts.drain_timeout_ns)
        e->opts.drain_timeout_ns = 2000000000ull;
    pthread_mutex_init(&e->reg_lock, NULL);
    e->nloops = 1 + workers;
    e->loops = calloc((size_t)e->nloops, sizeof(*e->loops));
    if (!e->loops)
        goto fail;
    for (int i = 0; i < e->nloops; i++) {
        mesh_loop_t *l = calloc(1, sizeof(*l));
        if (!l)
            goto fail;
        e->loops[i] = l;
        mesh_loop_init_common(l, e, i, uv_hrtime() ^ ((uint64_t)i << 56));
        if (uv_loop_init(&l->uv) != 0)
            goto fail;
        uv_async_init(&l->uv, &l->async, on_async);
        uv_idle_init(&l->uv, &l->idle);
        uv_timer_init(&l->uv, &l->timer);
        l->async.data = l->idle.data = l->timer.data = l;
        pthread_mutex_init(&l->wake_lock, NULL);
        l->uv_ready = 1;
        l->io = mesh_io_uv_new(l);
        if (!l->io)
            goto fail;
    }
    return e;
fail:
    mesh_error("exec", "cannot create the executor");
    mesh_exec_free(e);
    return NULL;
}

void mesh_exec_free(mesh_exec_t *e)
{
    if (!e)
        return;
    if (e->sim)
        mesh_sim_lp_free(e); /* the worker threads first */
    if (e->sim)
        mesh_rt_stop_live(e); /* the simulated actors' on_stop release what they own */
    for (int i = 0; e->loops && i < e->nloops; i++) {
        mesh_loop_t *l = e->loops[i];
        if (!l)
            continue;
        if (!e->sim) {
            loop_close_handles(l);
            uv_loop_close(&l->uv);
            if (l->io)
                mesh_io_uv_free(l->io);
        }
        /* Dead actors still waiting in a ready queue are not in the registry. */
        for (mesh_actor_t *a = l->ready_head, *n; a; a = n) {
            n = a->ready_next;
            if (a->status == MESH_ACT_DEAD) {
                free(a->children);
                free(a);
            }
        }
    }
    mesh_rt_free_all(e);
    if (e->sim && e->net)
        mesh_simnet_free(e->net);
    for (int i = 0; e->loops && i < e->nloops; i++) {
        if (e->loops[i]) {
            if (!e->sim)
                pthread_mutex_destroy(&e->loops[i]->wake_lock);
            mesh_loop_destroy_common(e->loops[i]);
            free(e->loops[i]);
        }
    }
    if (e->serial) {
        mesh_loop_destroy_common(e->serial);
        free(e->serial);
    }
    while (e->hooks) {
        mesh_shutdown_hook_t *h = e->hooks;
        e->hooks = h->next;
        free(h);
    }
    free(e->stop_list);
    free(e->loops);
    pthread_mutex_destroy(&e->reg_lock);
    free(e);
}

/* ---------------------------------------------------------------------------------------- */
/* Entry points usable from any thread                                                      */
/* ---------------------------------------------------------------------------------------- */

int mesh_exec_spawn(mesh_exec_t *e, const mesh_actor_ops_t *ops, void *arg,
                    const mesh_spawn_opts_t *opts, mesh_actor_id_t *id_out)
{
    mesh_spawn_opts_t o = {0};
    if (opts)
        o = *opts;
    if (o.loop == MESH_LOOP_SAME)
        o.loop = MESH_LOOP_CONTROL;
    return mesh_rt_spawn(e, NULL, mesh_rt_caller_loop(e), ops, arg, &o, id_out);
}

int mesh_exec_send(mesh_exec_t *e, mesh_actor_id_t to, uint32_t type, const void *data, size_t len)
{
    int rc;
    mesh_msg_t *m = mesh_msg_make(type, data, len, &rc);
    if (!m)
        return rc;
    m->to = to;
    rc = mesh_rt_route(e, mesh_rt_caller_loop(e), m, 0);
    if (rc < 0)
        mesh_msg_free(m);
    return rc;
}

int mesh_exec_send_ptr(mesh_exec_t *e, mesh_actor_id_t to, uint32_t type, void *ptr,
                       void (*ptr_free)(void *))
{
    int rc;
    mesh_msg_t *m = mesh_msg_make_ptr(type, ptr, ptr_free, &rc);
    if (!m)
        return rc;
    m->to = to;
    rc = mesh_rt_route(e, mesh_rt_caller_loop(e), m, 0);
    if (rc < 0)
        mesh_msg_discard(m);
    return rc;
}

int mesh_exec_stop(mesh_exec_t *e, mesh_actor_id_t id)
{
    return mesh_rt_stop(e, mesh_rt_caller_loop(e), id, MESH_STOP_NORMAL, 0);
}

int mesh_exec_post(mesh_exec_t *e, int loop, void (*fn)(void *arg), void *arg)
{
    if (loop < 0 || loop >= e->nloops || !fn)
        return -MESH_EINVAL;
    mesh_msg_t *m = mesh_msg_alloc();
    if (!m)
        return -MESH_ENOMEM;
    m->type = MESH_SYS_POST;
    m->to = 0;
    memcpy(m->data, &fn, sizeof(fn));
    memcpy(m->data + sizeof(fn), &arg, sizeof(arg));
    mesh_loop_t *l = e->loops[loop];
    mesh_msg_t *old = atomic_load_explicit(&l->inbox, memory_order_relaxed);
    do {
        m->next = old;
    } while (!atomic_compare_exchange_weak_explicit(&l->inbox, &old, m, memory_order_release,
                                                    memory_order_relaxed));
    if (old == NULL)
        mesh_loop_wake(l);
    return 0;
}

int mesh_exec_loop_count(const mesh_exec_t *e)
{
    return e->nloops;
}

uv_loop_t *mesh_exec_uv_loop(mesh_exec_t *e, int loop)
{
    if (e->sim || loop < 0 || loop >= e->nloops)
        return NULL;
    return &e->loops[loop]->uv;
}

mesh_io_t *mesh_exec_io(mesh_exec_t *e, int loop)
{
    if (loop < 0 || loop >= e->nloops)
        return NULL;
    return e->loops[loop]->io;
}

int mesh_exec_current_loop(void)
{
    return mesh_tls_loop ? mesh_tls_loop->index : -1;
}

int mesh_exec_on_shutdown(mesh_exec_t *e, void (*fn)(mesh_exec_t *, void *), void *arg)
{
    mesh_shutdown_hook_t *h = calloc(1, sizeof(*h));
    if (!h)
        return -MESH_ENOMEM;
    h->fn = fn;
    h->arg = arg;
    mesh_shutdown_hook_t **p = &e->hooks;
    while (*p)
        p = &(*p)->next;
    *p = h;
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Shutdown (control loop)                                                                  */
/* ---------------------------------------------------------------------------------------- */

static void shutdown_finish(mesh_exec_t *e)
{
    mesh_info("exec", "all actors stopped; stopping loops");
    for (int i = 1; i < e->nloops; i++)
        mesh_exec_post(e, i, loop_stop_fn, e->loops[i]);
    uv_stop(&e->loops[0]->uv);
}

/* Collects live actors, newest first (the registry is kept in that order). */
static int collect_stop_list(mesh_exec_t *e)
{
    pthread_mutex_lock(&e->reg_lock);
    uint32_t n = 0;
    for (mesh_actor_t *a = e->reg_head; a; a = a->reg_next)
        n++;
    free(e->stop_list);
    e->stop_list = n ? malloc(n * sizeof(*e->stop_list)) : NULL;
    uint32_t i = 0;
    if (e->stop_list)
        for (mesh_actor_t *a = e->reg_head; a; a = a->reg_next)
            e->stop_list[i++] = a->id;
    pthread_mutex_unlock(&e->reg_lock);
    e->nstop = i;
    e->istop = 0;
    return (int)i;
}

static void stop_next(mesh_exec_t *e)
{
    for (;;) {
        while (e->istop < e->nstop) {
            mesh_actor_id_t id = e->stop_list[e->istop++];
            if (mesh_rt_stop(e, e->loops[0], id, MESH_STOP_SHUTDOWN, MESH_RF_STOP_ACK) == 0)
                return; /* wait for its acknowledgement */
        }
        /* Actors spawned while stopping: another round. */
        if (collect_stop_list(e) == 0)
            break;
    }
    shutdown_finish(e);
}

void mesh_exec_stop_acked(mesh_exec_t *e)
{
    stop_next(e);
}

static int drained(mesh_exec_t *e)
{
    for (int i = 0; i < e->nloops; i++) {
        mesh_loop_t *l = e->loops[i];
        if (atomic_load_explicit(&l->inbox, memory_order_acquire))
            return 0;
        uint64_t busy =
            i == 0 ? l->in_mailboxes : atomic_load_explicit(&l->busy, memory_order_relaxed);
        if (busy)
            return 0;
    }
    return 1;
}

static void on_drain_tick(uv_timer_t *h)
{
    mesh_exec_t *e = h->data;
    int quiet = drained(e);
    e->drain_quiet = quiet ? e->drain_quiet + 1 : 0;
    int timed_out = uv_hrtime() >= e->drain_deadline;
    if (e->drain_quiet < 2 && !timed_out)
        return;
    uv_timer_stop(h);
    if (timed_out && !quiet)
        mesh_warn("exec", "drain timed out with messages in flight; stopping anyway");
    mesh_info("exec", "stopping actors in reverse start order");
    collect_stop_list(e);
    stop_next(e);
}

static void shutdown_begin(void *arg)
{
    mesh_exec_t *e = arg;
    if (e->shutting_down)
        return;
    e->shutting_down = 1;
    mesh_info("exec", "shutdown: stop accepting");
    for (mesh_shutdown_hook_t *h = e->hooks; h; h = h->next)
        h->fn(e, h->arg);
    e->drain_deadline = uv_hrtime() + e->opts.drain_timeout_ns;
    e->drain_quiet = 0;
    uv_timer_start(&e->drain_timer, on_drain_tick, 1, 1);
}

void mesh_exec_shutdown(mesh_exec_t *e)
{
    if (atomic_exchange(&e->shutdown_requested, 1))
        return;
    if (!e->sim)
        mesh_exec_post(e, 0, shutdown_begin, e);
}

static void on_signal(uv_signal_t *h, int signum)
{
    mesh_exec_t *e = h->data;
    mesh_info("exec", "signal %d: shutting down", signum);
    mesh_exec_shutdown(e);
}

int mesh_exec_run(mesh_exec_t *e)
{
    if (e->sim || e->running)
        return -MESH_ESTATE;
    e->running = 1;
    mesh_loop_t *c = e->loops[0];
    mesh_tls_loop = c;
    uv_timer_init(&c->uv, &e->drain_timer);
    e->drain_timer.data = e;
    if (!e->opts.no_signals) {
        uv_signal_init(&c->uv, &e->sigterm);
        uv_signal_init(&c->uv, &e->sigint);
        e->sigterm.data = e->sigint.data = e;
        uv_signal_start(&e->sigterm, on_signal, SIGTERM);
        uv_signal_start(&e->sigint, on_signal, SIGINT);
    }
    for (int i = 1; i < e->nloops; i++) {
        if (pthread_create(&e->loops[i]->thread, NULL, worker_main, e->loops[i]) != 0) {
            mesh_error("exec", "cannot start worker thread %d", i);
            abort();
        }
    }
    uv_run(&c->uv, UV_RUN_DEFAULT);
    for (int i = 1; i < e->nloops; i++)
        pthread_join(e->loops[i]->thread, NULL);
    for (int i = 0; i < e->nloops; i++)
        loop_close_handles(e->loops[i]);
    mesh_tls_loop = NULL;
    e->running = 0;
    return 0;
}
