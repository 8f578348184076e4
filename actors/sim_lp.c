/*
 * actors/sim_lp.c: the simulator's logical processes: a conservative, window-based parallel
 * executor (mesh_sim_new_lp).
 *
 * Each loop of the simulator is one logical process (LP): its own actors, timer heap, ready
 * set, clock, PRNG and trace chain. Simulated hosts are assigned to LPs (simnet.h); an actor
 * spawned on a host runs on the host's LP, and its children with it. LPs meet only through the
 * simulated network, whose every packet takes at least the lookahead (1 ms, the network's least
 * latency), and through the serial queue (calls that run alone at window boundaries: scenario
 * faults, checkers, the simulated etcd).
 *
 * The run is a sequence of windows [start, end) with end - start <= lookahead: within one, no
 * LP can affect another, so each runs its own events in its own order (its PRNG draws which of
 * its ready actors runs next, as the classic executor does), on any thread. What an LP
 * schedules for another LP or for the serial queue goes into its outbox; at the window's end
 * the outboxes are merged in (LP, order) order, so the receiving heaps see the same sequence
 * numbers whatever thread ran what. Serial calls due at a boundary run before any LP event at
 * that instant. The trace hash folds the LPs' chains in LP order (mesh_sim_trace_hash): the
 * same seed gives the same hash with one thread or many.
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actors/runtime.h"
#include "common/log.h"

/* The worker threads. Each LP has a home thread (LP i on thread i % threads, the caller being
 * thread 0), so its actors' memory stays in one core's cache and is freed by the thread that
 * allocated it (glibc's arena of that thread, through its tcache). A window's busy LPs are laid
 * out in busy[] as one run per thread, costliest first; seg[t] packs run t's next index to take
 * (bits 0-31) with its end (bits 32-63). A thread takes its own run from the front, then steals
 * the others' cheapest from their ends; every take is a compare-and-swap on the run's word, so
 * a thread late from the last window finds the runs empty or takes a slot of this one. done
 * counts the finished LPs; gen publishes a window to the sleeping or spinning workers. */
struct mesh_sim_seg {
    _Alignas(64) _Atomic uint64_t w;
};

struct mesh_sim_pool {
    mesh_exec_t *e;
    int n; /* worker threads besides the caller */
    pthread_t *th;
    struct mesh_sim_seg *seg; /* n + 1 runs */
    _Alignas(64) _Atomic uint64_t gen;
    _Atomic int quit;
    _Atomic int sleepers;
    _Alignas(64) _Atomic uint32_t done;
    _Alignas(64) pthread_mutex_t lock;
    pthread_cond_t cond;
    uint64_t start; /* the window's start, written before gen (release) */
    int *busy;      /* the LPs with an event in the window, by home thread, costliest first */
    int *tmp;       /* room to sort them */
    /* per LP: the moving average of its windows' wall time (ns), written by the thread that ran
     * it, read between windows; it orders the LPs and decides the hand-off, never what an LP
     * does */
    uint64_t *cost;
    uint64_t handoff_ns; /* windows whose LPs' costs sum to less run here, without a hand-off */
    uint64_t wake_ns;    /* the same while a worker sleeps (a wake-up costs more than a spin) */
    int spins;           /* pauses an idle worker spins before it sleeps */
};

/* A window whose busy LPs are expected to take less than this (the sum of their moving
 * averages) runs on the calling thread alone: waking another thread would cost more (a
 * futex wake when it sleeps, cache lines bouncing when it spins). MESH_SIM_HANDOFF_NS
 * overrides it (measurements). */
#define HANDOFF_NS 20000u

/* The same threshold while a worker sleeps: waking it is a futex call here and a wait for the
 * scheduler there (tens of microseconds in this VM), so only a window with more work than that
 * wakes it. MESH_SIM_WAKE_NS overrides it. */
#define WAKE_NS 20000u

/* Pauses an idle worker spins for the next window before it sleeps on the condition variable
 * (about 19 ns each here). MESH_SIM_SPINS overrides it. */
#define SPINS 2000

int mesh_sim_call_at_lp(mesh_exec_t *e, int lp, uint64_t at, void (*fn)(void *), void *arg)
{
    if (!e->lp_mode)
        return mesh_sim_call_at(e, at, fn, arg);
    if (lp >= e->nloops)
        return -MESH_EINVAL;
    mesh_loop_t *c = mesh_sim_cur(e);
    if (c && c->index != lp) { /* another LP or the serial queue: through the outbox */
        if (at < e->win_end) {
            mesh_error("sim",
                       "lookahead violated: LP %d schedules for %d at %llu, window ends %llu",
                       c->index, lp, (unsigned long long)at, (unsigned long long)e->win_end);
            abort();
        }
        if (c->nout == c->cout) {
            uint32_t nc = c->cout ? 2 * c->cout : 64;
            mesh_sim_out_t *o = realloc(c->out, nc * sizeof(*o));
            if (!o)
                return -MESH_ENOMEM;
            c->out = o;
            c->cout = nc;
        }
        c->out[c->nout++] = (mesh_sim_out_t){.at = at, .lp = lp, .fn = fn, .arg = arg};
        return 0;
    }
    mesh_loop_t *l = lp < 0 ? e->serial : e->loops[lp];
    uint64_t now = c ? c->sim_now : e->now;
    return mesh_timer_add_call(l, at < now ? now : at, fn, arg);
}

/* MESH_SIM_LP_STATS=1: where the wall time of the windows goes (printed when the simulator is
 * freed). */
static struct {
    int on;
    uint64_t windows, busy_lps, serial_calls;
    uint64_t window_ns, serial_ns, merge_ns;
    /* one thread: the windows' time on 2 and 4 idle cores by their critical path (per window,
     * the larger of its longest LP and its LPs' sum over the cores), from the thread's CPU
     * time (preemption by other jobs does not count) */
    uint64_t bound2_ns, bound4_ns;
    uint64_t lp_ns[MESH_MAX_LOOPS]; /* one thread: each LP's CPU time in the windows */
    /* threads: windows handed off, those whose LPs the caller ran alone, its wait for the
     * others at their end */
    uint64_t handoffs, handoffs_alone, wait_ns;
    uint64_t stolen; /* threads: LPs the caller took from the other threads' runs */
} lp_stats;

static uint64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The calling thread's CPU time: what one thread's LPs cost, whatever else the cores run. */
static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Sets every clock to t (a boundary: nothing runs anywhere). */
static void set_now(mesh_exec_t *e, uint64_t t)
{
    e->now = t;
    for (int i = 0; i < e->nloops; i++)
        e->loops[i]->sim_now = t;
}

static int has_ready(mesh_loop_t *l)
{
    return l->nready || atomic_load_explicit(&l->inbox, memory_order_relaxed);
}

/* The earliest instant LP l has something to do (its clock when something is ready). */
static uint64_t lp_next(mesh_loop_t *l)
{
    return has_ready(l) ? l->sim_now : mesh_timer_next(l);
}

/* Runs LP l's events before the window's end. */
static void lp_window(mesh_exec_t *e, mesh_loop_t *l, uint64_t start)
{
    if (lp_next(l) >= e->win_end)
        return;
    mesh_tls_loop = l;
    if (l->sim_now < start)
        l->sim_now = start;
    for (;;) {
        if (mesh_sim_lp_step(e, l))
            continue;
        uint64_t next = mesh_timer_next(l);
        if (next >= e->win_end)
            break;
        if (next > l->sim_now)
            l->sim_now = next;
    }
    mesh_tls_loop = NULL;
}

/* Runs LP lp's window and notes its cost. */
static void lp_window_timed(struct mesh_sim_pool *p, int lp, uint64_t start)
{
    uint64_t t0 = wall_ns();
    lp_window(p->e, p->e->loops[lp], start);
    uint64_t d = wall_ns() - t0;
    p->cost[lp] = p->cost[lp] - p->cost[lp] / 4 + d / 4;
}

/* Takes one LP from run t: its front (the costliest) for the run's own thread, its end (the
 * cheapest) for a thief. Returns the LP, or -1 when the run is empty. */
static int seg_take(struct mesh_sim_pool *p, int t, int own)
{
    _Atomic uint64_t *w = &p->seg[t].w;
    uint64_t v = atomic_load_explicit(w, memory_order_acquire);
    for (;;) {
        uint32_t head = (uint32_t)v, end = (uint32_t)(v >> 32);
        if (head >= end)
            return -1;
        uint64_t nv = own ? v + 1 : ((uint64_t)(end - 1) << 32 | head);
        if (atomic_compare_exchange_weak_explicit(w, &v, nv, memory_order_acq_rel,
                                                  memory_order_acquire))
            return p->busy[own ? head : end - 1];
    }
}

/* Thread self takes LPs of the published window until none is left: its own run first, then the
 * others'. Returns how many it ran. */
static uint32_t pool_take(struct mesh_sim_pool *p, int self)
{
    uint32_t ran = 0;
    int nt = p->n + 1;
    for (;;) {
        int lp = seg_take(p, self, 1);
        for (int k = 1; lp < 0 && k < nt; k++)
            lp = seg_take(p, (self + k) % nt, 0);
        if (lp < 0)
            return ran;
        lp_window_timed(p, lp, p->start);
        ran++;
        atomic_fetch_add_explicit(&p->done, 1, memory_order_release);
    }
}

struct pool_arg {
    struct mesh_sim_pool *p;
    int self;
};

static void *pool_main(void *arg)
{
    struct pool_arg a = *(struct pool_arg *)arg;
    free(arg);
    struct mesh_sim_pool *p = a.p;
    uint64_t seen = 0;
    for (;;) {
        uint64_t g;
        int spins = 0;
        while ((g = atomic_load(&p->gen)) == seen && !atomic_load(&p->quit)) {
            if (++spins < p->spins) {
#if defined(__x86_64__)
                __builtin_ia32_pause();
#endif
                continue;
            }
            pthread_mutex_lock(&p->lock);
            atomic_fetch_add(&p->sleepers, 1);
            while (atomic_load(&p->gen) == seen && !atomic_load(&p->quit))
                pthread_cond_wait(&p->cond, &p->lock);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->lock);
        }
        if (atomic_load(&p->quit))
            return NULL;
        seen = g;
        pool_take(p, a.self);
    }
}

static void pool_free(struct mesh_sim_pool *p)
{
    free(p->th);
    free(p->seg);
    free(p->busy);
    free(p->tmp);
    free(p->cost);
    free(p);
}

static struct mesh_sim_pool *pool_new(mesh_exec_t *e, int workers)
{
    struct mesh_sim_pool *p = aligned_alloc(64, (sizeof(*p) + 63) / 64 * 64);
    if (!p)
        return NULL;
    memset(p, 0, sizeof(*p));
    p->e = e;
    p->th = calloc((size_t)workers, sizeof(*p->th));
    p->seg = aligned_alloc(64, (size_t)(workers + 1) * sizeof(*p->seg));
    p->busy = calloc((size_t)e->nloops, sizeof(*p->busy));
    p->tmp = calloc((size_t)e->nloops, sizeof(*p->tmp));
    p->cost = calloc((size_t)e->nloops, sizeof(*p->cost));
    const char *h = getenv("MESH_SIM_HANDOFF_NS");
    p->handoff_ns = h && *h ? strtoull(h, NULL, 10) : HANDOFF_NS;
    h = getenv("MESH_SIM_WAKE_NS");
    p->wake_ns = h && *h ? strtoull(h, NULL, 10) : WAKE_NS;
    h = getenv("MESH_SIM_SPINS");
    p->spins = h && *h ? atoi(h) : SPINS;
    if (!p->th || !p->seg || !p->busy || !p->tmp || !p->cost) {
        pool_free(p);
        return NULL;
    }
    for (int t = 0; t <= workers; t++)
        atomic_init(&p->seg[t].w, 0); /* every run empty */
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    for (int i = 0; i < workers; i++) {
        struct pool_arg *a = malloc(sizeof(*a));
        if (!a)
            break;
        *a = (struct pool_arg){.p = p, .self = i + 1};
        if (pthread_create(&p->th[i], NULL, pool_main, a) != 0) {
            free(a);
            break;
        }
        p->n = i + 1;
    }
    return p;
}

void mesh_sim_lp_free(mesh_exec_t *e)
{
    if (lp_stats.on && lp_stats.windows) {
        fprintf(stderr,
                "sim_lp: %d LPs, %d threads: %llu windows (%.1f busy LPs each), %.2f s in them; "
                "%llu serial calls, %.2f s; merges %.2f s\n",
                e->nloops, e->nthreads, (unsigned long long)lp_stats.windows,
                (double)lp_stats.busy_lps / (double)lp_stats.windows,
                (double)lp_stats.window_ns / 1e9, (unsigned long long)lp_stats.serial_calls,
                (double)lp_stats.serial_ns / 1e9, (double)lp_stats.merge_ns / 1e9);
        if (lp_stats.handoffs)
            fprintf(stderr,
                    "sim_lp: %llu windows handed off (%llu of them run by the caller alone), "
                    "%.2f s waiting for the other threads; the caller took %llu LPs of theirs\n",
                    (unsigned long long)lp_stats.handoffs,
                    (unsigned long long)lp_stats.handoffs_alone, (double)lp_stats.wait_ns / 1e9,
                    (unsigned long long)lp_stats.stolen);
        if (lp_stats.bound2_ns) {
            uint64_t all = 0;
            for (int i = 0; i < e->nloops; i++)
                all += lp_stats.lp_ns[i];
            fprintf(stderr,
                    "sim_lp: the windows' critical path on idle cores: %.2f s on 2, %.2f s on 4 "
                    "(%.2f s of CPU on one)\n",
                    (double)lp_stats.bound2_ns / 1e9, (double)lp_stats.bound4_ns / 1e9,
                    (double)all / 1e9);
        }
        fprintf(stderr, "sim_lp: steps per LP:");
        for (int i = 0; i < e->nloops; i++)
            fprintf(stderr, " %llu", (unsigned long long)e->loops[i]->sim_steps);
        fprintf(stderr, "\n");
        if (lp_stats.bound2_ns) {
            fprintf(stderr, "sim_lp: CPU seconds per LP:");
            for (int i = 0; i < e->nloops; i++)
                fprintf(stderr, " %.2f", (double)lp_stats.lp_ns[i] / 1e9);
            fprintf(stderr, "\n");
        }
        int on = lp_stats.on; /* the next simulator's figures start from zero */
        memset(&lp_stats, 0, sizeof(lp_stats));
        lp_stats.on = on;
    }
    for (int i = 0; i < e->nloops; i++) { /* empty between windows: only their room */
        free(e->loops[i]->out);
        e->loops[i]->out = NULL;
        e->loops[i]->nout = e->loops[i]->cout = 0;
    }
    struct mesh_sim_pool *p = e->pool;
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    atomic_store(&p->quit, 1);
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->n; i++)
        pthread_join(p->th[i], NULL);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    pool_free(p);
    e->pool = NULL;
}

/* Runs one window on every LP that has an event in it: on the pool, or here. */
static void run_window(mesh_exec_t *e, uint64_t start)
{
    struct mesh_sim_pool *p = e->pool;
    if (!p || p->n == 0) {
        if (!lp_stats.on) {
            for (int i = 0; i < e->nloops; i++)
                lp_window(e, e->loops[i], start);
            return;
        }
        uint64_t sum = 0, max = 0;
        for (int i = 0; i < e->nloops; i++) {
            if (lp_next(e->loops[i]) >= e->win_end)
                continue;
            uint64_t t0 = cpu_ns();
            lp_window(e, e->loops[i], start);
            uint64_t d = cpu_ns() - t0;
            lp_stats.lp_ns[i] += d;
            sum += d;
            max = d > max ? d : max;
        }
        lp_stats.bound2_ns += max > sum / 2 ? max : sum / 2;
        lp_stats.bound4_ns += max > sum / 4 ? max : sum / 4;
        return;
    }
    /* the busy LPs costliest first, then laid out by home thread, the order kept in each run */
    uint32_t n = 0;
    uint64_t sum = 0;
    for (int i = 0; i < e->nloops; i++) {
        if (lp_next(e->loops[i]) >= e->win_end)
            continue;
        uint32_t k = n++;
        for (; k > 0 && p->cost[p->tmp[k - 1]] < p->cost[i]; k--)
            p->tmp[k] = p->tmp[k - 1];
        p->tmp[k] = i;
        sum += p->cost[i];
    }
    if (n <= 1 || sum < p->handoff_ns || /* nothing to share, or too little: no hand-off */
        (sum < p->wake_ns && atomic_load_explicit(&p->sleepers, memory_order_relaxed))) {
        for (uint32_t k = 0; k < n; k++)
            lp_window_timed(p, p->tmp[k], start);
        return;
    }
    /* the runs are empty (the last window took them all): fill them, the caller's last */
    p->start = start;
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    int nt = p->n + 1;
    uint32_t at = 0, own = 0;
    for (int t = 0; t < nt; t++) {
        uint32_t lo = at;
        for (uint32_t k = 0; k < n; k++)
            if (p->tmp[k] % nt == t)
                p->busy[at++] = p->tmp[k];
        if (t > 0)
            atomic_store_explicit(&p->seg[t].w, (uint64_t)at << 32 | lo, memory_order_release);
        else
            own = at;
    }
    atomic_store_explicit(&p->seg[0].w, (uint64_t)own << 32, memory_order_release);
    atomic_fetch_add(&p->gen, 1);
    if (atomic_load(&p->sleepers)) {
        pthread_mutex_lock(&p->lock);
        pthread_cond_broadcast(&p->cond);
        pthread_mutex_unlock(&p->lock);
    }
    uint32_t ran = pool_take(p, 0);
    uint64_t t0 = lp_stats.on ? wall_ns() : 0;
    int spins = 0;
    while (atomic_load_explicit(&p->done, memory_order_acquire) < n)
        if (++spins > p->spins)
            sched_yield();
    if (lp_stats.on) {
        lp_stats.handoffs++;
        lp_stats.handoffs_alone += ran == n;
        lp_stats.stolen += ran > own ? ran - own : 0;
        lp_stats.wait_ns += wall_ns() - t0;
    }
}

/* Moves every outbox into its receivers' heaps, in LP order then outbox order. */
static void merge(mesh_exec_t *e)
{
    for (int i = 0; i < e->nloops; i++) {
        mesh_loop_t *l = e->loops[i];
        for (uint32_t k = 0; k < l->nout; k++) {
            mesh_sim_out_t *o = &l->out[k];
            mesh_loop_t *to = o->lp < 0 ? e->serial : e->loops[o->lp];
            uint64_t id = mesh_timer_add(to, o->at, MESH_T_CALL);
            if (!id)
                abort(); /* out of memory in the simulator */
            mesh_tnode_t *n = mesh_timer_find(to, id);
            n->fn = o->fn;
            n->arg = o->arg;
        }
        l->nout = 0;
    }
}

int mesh_sim_set_threads(mesh_exec_t *e, int threads)
{
    if (!e->lp_mode || threads < 1 || threads > 256)
        return -MESH_EINVAL;
    mesh_sim_lp_free(e);
    e->nthreads = threads;
    if (threads > 1 && !(e->pool = pool_new(e, threads - 1)))
        return -MESH_ENOMEM;
    return 0;
}

int mesh_sim_call_at_serial(mesh_exec_t *e, uint64_t at, void (*fn)(void *), void *arg)
{
    return mesh_sim_call_at_lp(e, -1, at, fn, arg);
}

int mesh_sim_call_at_host(mesh_exec_t *e, mesh_io_t *host, uint64_t at, void (*fn)(void *),
                          void *arg)
{
    mesh_sim_host_t *h = mesh_simnet_host_rt(e->net, host);
    if (!h)
        return -MESH_EINVAL;
    return mesh_sim_call_at_lp(e, h->lp, at, fn, arg);
}

int mesh_sim_host_lp(mesh_exec_t *e, mesh_io_t *host, int lp)
{
    mesh_sim_host_t *h = mesh_simnet_host_rt(e->net, host);
    if (!h || lp < 0 || lp >= e->nloops || mesh_sim_cur(e))
        return -MESH_EINVAL;
    h->lp = e->lp_mode ? lp : 0;
    return 0;
}

int mesh_sim_lp_count(const mesh_exec_t *e)
{
    return e->lp_mode ? e->nloops : 1;
}

int mesh_sim_lp_current(const mesh_exec_t *e)
{
    mesh_loop_t *c = mesh_sim_cur(e);
    return c && c != e->serial ? c->index : -1;
}

uint64_t mesh_sim_lp_run_until(mesh_exec_t *e, uint64_t until, uint64_t max_steps)
{
    static int checked;
    if (!checked) {
        checked = 1;
        const char *v = getenv("MESH_SIM_LP_STATS");
        lp_stats.on = v && *v == '1';
    }
    uint64_t steps0 = mesh_sim_steps(e);
    while (mesh_sim_steps(e) - steps0 < max_steps) {
        uint64_t sn = mesh_timer_next(e->serial), next = UINT64_MAX;
        for (int i = 0; i < e->nloops; i++) {
            uint64_t t = lp_next(e->loops[i]);
            if (t < next)
                next = t;
        }
        if (next < e->now)
            next = e->now;
        if (sn <= next && sn != UINT64_MAX) { /* the serial queue first at an instant */
            if (sn > until)
                break;
            set_now(e, sn > e->now ? sn : e->now);
            e->win_end = e->now;
            uint64_t t0 = lp_stats.on ? wall_ns() : 0;
            while (mesh_timer_next(e->serial) <= e->now) {
                mesh_timer_fire_one(e->serial, e->now);
                lp_stats.serial_calls++;
            }
            if (lp_stats.on)
                lp_stats.serial_ns += wall_ns() - t0;
            continue;
        }
        if (next == UINT64_MAX || next > until)
            break;
        uint64_t end = next + e->lookahead;
        if (end > sn)
            end = sn;
        if (until != UINT64_MAX && end > until + 1)
            end = until + 1;
        e->win_end = end;
        uint64_t t0 = 0;
        if (lp_stats.on) {
            t0 = wall_ns();
            lp_stats.windows++;
            for (int i = 0; i < e->nloops; i++)
                lp_stats.busy_lps += lp_next(e->loops[i]) < end;
        }
        run_window(e, next);
        uint64_t t1 = lp_stats.on ? wall_ns() : 0;
        merge(e);
        if (lp_stats.on) {
            lp_stats.window_ns += t1 - t0;
            lp_stats.merge_ns += wall_ns() - t1;
        }
        set_now(e, end - 1);
    }
    if (until != UINT64_MAX && e->now < until)
        set_now(e, until);
    e->win_end = e->now;
    return mesh_sim_steps(e) - steps0;
}
