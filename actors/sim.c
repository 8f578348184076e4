/*
 * actors/sim.c: the simulated executor: one loop, a virtual clock, a seeded PRNG.
 *
 * Determinism: the only inputs are the seed and the actors' code. Actor ids come from a
 * deterministic slot allocator, timers are ordered by (deadline, start sequence), and the
 * choice of the next event is the PRNG's: each step draws one of the ready actors (its oldest
 * message is delivered) or, when a timer is due, the timer queue. Time jumps to the next
 * deadline only when nothing is ready. Every delivery and firing is hashed (FNV-1a).
 *
 * A simulator made by mesh_sim_new_lp has one loop per logical process, each stepped the same
 * way with its own clock, PRNG and hash; sim_lp.c runs them in windows.
 */
#include <stdlib.h>
#include <string.h>

#include "actors/runtime.h"

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME  0x100000001b3ull

/* A simulator of nlps loops: one (the classic executor) or that many logical processes. */
static mesh_exec_t *sim_create(uint64_t seed, int nlps, int lp_mode)
{
    mesh_exec_t *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->sim = 1;
    e->now = 1000000000ull;
    e->trace = FNV_OFFSET;
    mesh_prng_seed(&e->prng, seed);
    pthread_mutex_init(&e->reg_lock, NULL);
    e->lp_mode = lp_mode;
    e->nthreads = 1;
    e->lookahead = 1000000ull; /* the simulated network's least latency (simnet.h) */
    e->loops = calloc((size_t)nlps, sizeof(*e->loops));
    if (!e->loops) {
        mesh_exec_free(e);
        return NULL;
    }
    for (int i = 0; i < nlps; i++) {
        mesh_loop_t *l = calloc(1, sizeof(*l));
        if (!l) {
            mesh_exec_free(e);
            return NULL;
        }
        e->loops[i] = l;
        e->nloops = i + 1;
        /* Loop 0 keeps the classic executor's seed: a one-loop simulator is unchanged. */
        mesh_loop_init_common(l, e, i, seed ^ 0x5157u ^ ((uint64_t)i << 40));
        uint64_t x = seed ^ 0x4c50ull << 48 ^ (uint64_t)i;
        mesh_prng_seed(&l->sim_prng, mesh_splitmix64(&x));
        l->sim_now = e->now;
        l->sim_trace = FNV_OFFSET;
    }
    if (lp_mode) {
        e->serial = calloc(1, sizeof(*e->serial));
        if (!e->serial) {
            mesh_exec_free(e);
            return NULL;
        }
        mesh_loop_init_common(e->serial, e, nlps, seed);
    }
    e->net = mesh_simnet_new(e);
    if (!e->net) {
        mesh_exec_free(e);
        return NULL;
    }
    for (int i = 0; i < nlps; i++)
        e->loops[i]->io = mesh_simnet_io(e->net);
    return e;
}

mesh_exec_t *mesh_sim_new(uint64_t seed)
{
    return sim_create(seed, 1, 0);
}

mesh_exec_t *mesh_sim_new_lp(uint64_t seed, int nlps)
{
    if (nlps < 1 || nlps > MESH_MAX_LOOPS)
        return NULL;
    return sim_create(seed, nlps, 1);
}

static void fnv(uint64_t *h, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        *h ^= (v >> (8 * i)) & 0xFFu;
        *h *= FNV_PRIME;
    }
}

void mesh_sim_trace_event(mesh_exec_t *e, mesh_actor_id_t from, mesh_actor_id_t to, uint32_t type)
{
    mesh_loop_t *c = mesh_sim_cur(e);
    uint64_t *h = c ? &c->sim_trace : &e->trace;
    uint64_t now = c ? c->sim_now : e->now;
    fnv(h, now);
    fnv(h, from);
    fnv(h, to);
    fnv(h, type);
    if (c)
        c->sim_steps++;
    else
        e->steps++;
    if (e->trace_cb && e->nthreads <= 1) /* the observer sees one thread's order only */
        e->trace_cb(now, from, to, type, e->trace_arg);
}

void mesh_sim_fold(mesh_exec_t *e, uint64_t v)
{
    mesh_loop_t *c = mesh_sim_cur(e);
    fnv(c ? &c->sim_trace : &e->trace, v);
}

/* ---------------------------------------------------------------------------------------- */
/* Ready actors and stalled hosts                                                           */
/* ---------------------------------------------------------------------------------------- */

static void *grow(void *arr, uint32_t *cap, size_t elem)
{
    uint32_t nc = *cap ? *cap * 2 : 64;
    void *p = realloc(arr, nc * elem);
    if (!p)
        abort(); /* out of memory in the simulator: nothing sensible to do */
    *cap = nc;
    return p;
}

static int host_holds(const mesh_actor_t *a)
{
    return a->sim_host && a->sim_host->state != MESH_HOST_RUNNING;
}

static void park(mesh_actor_t *a)
{
    mesh_sim_host_t *h = a->sim_host;
    if (h->nparked == h->cparked)
        h->parked = grow(h->parked, &h->cparked, sizeof(*h->parked));
    a->sim_parked = 1;
    a->sim_ix = h->nparked;
    h->parked[h->nparked++] = a;
}

static void ready_append(mesh_loop_t *l, mesh_actor_t *a)
{
    if (l->nready == l->cready)
        l->ready_arr = grow(l->ready_arr, &l->cready, sizeof(*l->ready_arr));
    a->sim_ix = l->nready;
    l->ready_arr[l->nready++] = a;
}

void mesh_sim_ready_add(mesh_loop_t *l, mesh_actor_t *a)
{
    a->queued = 1;
    if (host_holds(a))
        park(a);
    else
        ready_append(l, a);
}

void mesh_sim_ready_remove(mesh_loop_t *l, mesh_actor_t *a)
{
    uint32_t ix = a->sim_ix;
    if (a->sim_parked) {
        mesh_sim_host_t *h = a->sim_host;
        mesh_actor_t *last = h->parked[--h->nparked];
        h->parked[ix] = last;
        last->sim_ix = ix;
        a->sim_parked = 0;
    } else {
        mesh_actor_t *last = l->ready_arr[--l->nready];
        l->ready_arr[ix] = last;
        last->sim_ix = ix;
    }
    a->queued = 0;
}

void mesh_sim_host_release_timers(mesh_exec_t *e, mesh_sim_host_t *h)
{
    mesh_loop_t *l = e->loops[h->lp];
    uint64_t now = mesh_sim_now(e);
    for (uint32_t i = 0; i < h->nlate; i++) {
        mesh_tnode_t *n = mesh_timer_find(l, h->late[i]);
        if (n && n->heap_pos == UINT32_MAX)
            mesh_timer_requeue(l, n, now);
    }
    h->nlate = 0;
}

void mesh_sim_host_unpark(mesh_exec_t *e, mesh_sim_host_t *h)
{
    mesh_loop_t *l = e->loops[h->lp];
    /* Parked actors keep their order; the array is compacted by swaps only on removal. */
    for (uint32_t i = 0; i < h->nparked; i++) {
        mesh_actor_t *a = h->parked[i];
        a->sim_parked = 0;
        ready_append(l, a);
    }
    h->nparked = 0;
}

void mesh_sim_host_destroy(mesh_sim_host_t *h)
{
    free(h->parked);
    free(h->late);
    h->parked = NULL;
    h->late = NULL;
    h->nparked = h->cparked = h->nlate = h->clate = 0;
}

/* Takes the due timers of actors on stalled hosts off the heap until the earliest one is
 * fireable: they wait in their host's late list for the stall to end. */
static void hold_stalled_timers(mesh_loop_t *l, uint64_t now)
{
    mesh_tnode_t *n;
    while ((n = mesh_timer_top(l)) && n->deadline <= now &&
           (n->kind == MESH_T_USER || n->kind == MESH_T_REQUEST)) {
        mesh_slot_t *s = mesh_slot_get(l, mesh_id_slot(n->owner));
        mesh_actor_t *a = NULL;
        if (s && atomic_load_explicit(&s->gen, memory_order_relaxed) == mesh_id_gen(n->owner))
            a = s->actor;
        if (!a || !a->sim_host || a->sim_host->state != MESH_HOST_STALLED)
            return;
        mesh_sim_host_t *h = a->sim_host;
        if (h->nlate == h->clate)
            h->late = grow(h->late, &h->clate, sizeof(*h->late));
        uint32_t ix = (uint32_t)(n - l->tn);
        h->late[h->nlate++] = ((uint64_t)n->gen << 32) | ix;
        mesh_timer_detach(l, n);
    }
}

/* One step of loop l at now, drawing from prng; returns 0 when nothing is ready now. */
static int step_on(mesh_loop_t *l, mesh_prng_t *prng, uint64_t now)
{
    if (atomic_load_explicit(&l->inbox, memory_order_relaxed))
        mesh_rt_take_inbox(l);
    for (;;) {
        hold_stalled_timers(l, now);
        int timer_due = mesh_timer_next(l) <= now;
        uint64_t choices = l->nready + (timer_due ? 1u : 0u);
        if (choices == 0)
            return 0;
        uint64_t r = choices == 1 ? 0 : mesh_prng_below(prng, choices);
        if (r == l->nready) {
            mesh_timer_fire_one(l, now);
            return 1;
        }
        mesh_actor_t *a = l->ready_arr[r];
        if (host_holds(a)) { /* its host stalled after it became ready */
            mesh_sim_ready_remove(l, a);
            a->queued = 1;
            park(a);
            continue;
        }
        a->pins++;
        mesh_rt_deliver_one(l, a);
        if (a->queued && !a->mb_head && !a->sim_parked)
            mesh_sim_ready_remove(l, a);
        mesh_rt_unpin(a);
        return 1;
    }
}

/* One step of the classic executor at the current time. */
static int sim_step(mesh_exec_t *e)
{
    return step_on(e->loops[0], &e->prng, e->now);
}

int mesh_sim_lp_step(mesh_exec_t *e, mesh_loop_t *l)
{
    (void)e;
    return step_on(l, &l->sim_prng, l->sim_now);
}

uint64_t mesh_sim_run_until(mesh_exec_t *e, uint64_t until_ns)
{
    if (e->lp_mode)
        return mesh_sim_lp_run_until(e, until_ns, UINT64_MAX);
    uint64_t steps = 0;
    for (;;) {
        if (sim_step(e)) {
            steps++;
            continue;
        }
        uint64_t next = mesh_timer_next(e->loops[0]);
        if (next == UINT64_MAX || next > until_ns) {
            if (until_ns != UINT64_MAX && e->now < until_ns)
                e->now = until_ns;
            return steps;
        }
        e->now = next;
    }
}

uint64_t mesh_sim_run(mesh_exec_t *e, uint64_t max_steps)
{
    if (e->lp_mode)
        return mesh_sim_lp_run_until(e, UINT64_MAX, max_steps);
    uint64_t steps = 0;
    while (steps < max_steps) {
        if (sim_step(e)) {
            steps++;
            continue;
        }
        uint64_t next = mesh_timer_next(e->loops[0]);
        if (next == UINT64_MAX)
            break;
        e->now = next;
    }
    return steps;
}

uint64_t mesh_sim_now(const mesh_exec_t *e)
{
    const mesh_loop_t *c = mesh_sim_cur(e);
    return c ? c->sim_now : e->now;
}

uint64_t mesh_sim_trace_hash(const mesh_exec_t *e)
{
    if (!e->lp_mode)
        return e->trace;
    /* The processes' chains folded in process order, after the serial queue's: the same for
     * any number of threads. */
    uint64_t h = e->trace;
    for (int i = 0; i < e->nloops; i++) {
        fnv(&h, e->loops[i]->sim_trace);
        fnv(&h, e->loops[i]->sim_steps);
    }
    return h;
}

uint64_t mesh_sim_steps(const mesh_exec_t *e)
{
    uint64_t n = e->steps;
    for (int i = 0; e->lp_mode && i < e->nloops; i++)
        n += e->loops[i]->sim_steps;
    return n;
}

uint64_t mesh_sim_random(mesh_exec_t *e)
{
    mesh_loop_t *c = mesh_sim_cur(e);
    return mesh_prng_next(c ? &c->sim_prng : &e->prng);
}

mesh_simnet_t *mesh_sim_net(mesh_exec_t *e)
{
    return e->net;
}

int mesh_sim_call_at(mesh_exec_t *e, uint64_t at_ns, void (*fn)(void *), void *arg)
{
    if (e->lp_mode) { /* the calling process's own, or the serial queue's at a boundary */
        mesh_loop_t *c = mesh_sim_cur(e);
        return mesh_sim_call_at_lp(e, c ? c->index : -1, at_ns, fn, arg);
    }
    return mesh_timer_add_call(e->loops[0], at_ns < e->now ? e->now : at_ns, fn, arg);
}

void mesh_sim_drop_calls(mesh_exec_t *e, void (*fn)(void *), void (*drop)(void *))
{
    for (int i = 0; i <= e->nloops; i++) {
        mesh_loop_t *l = i < e->nloops ? e->loops[i] : e->serial;
        for (uint32_t k = 0; l && k < l->ntn; k++) {
            mesh_tnode_t *n = &l->tn[k];
            if (n->kind == MESH_T_CALL && n->fn == fn) {
                drop(n->arg);
                n->fn = NULL;
                n->arg = NULL;
            }
        }
    }
}

void mesh_sim_set_trace(mesh_exec_t *e, mesh_sim_trace_cb cb, void *arg)
{
    e->trace_cb = cb;
    e->trace_arg = arg;
}

int mesh_sim_spawn_on(mesh_exec_t *sim, mesh_io_t *host, const mesh_actor_ops_t *ops, void *arg,
                      const mesh_spawn_opts_t *opts, mesh_actor_id_t *id_out)
{
    if (!sim->sim)
        return -MESH_EINVAL;
    mesh_sim_host_t *h = mesh_simnet_host_rt(sim->net, host);
    if (!h)
        return -MESH_EINVAL;
    mesh_actor_id_t id;
    mesh_spawn_opts_t o = {0};
    if (opts)
        o = *opts;
    o.loop = MESH_ON_LOOP(sim->lp_mode ? h->lp : 0); /* its host's logical process */
    int rc = mesh_exec_spawn(sim, ops, arg, &o, &id);
    if (rc < 0)
        return rc;
    mesh_loop_t *l = sim->loops[mesh_id_loop(id)];
    mesh_actor_t *a = mesh_slot_get(l, mesh_id_slot(id))->actor;
    a->sim_host = h;
    if (a->queued && host_holds(a)) {
        mesh_sim_ready_remove(l, a);
        mesh_sim_ready_add(l, a);
    }
    if (id_out)
        *id_out = id;
    return 0;
}

int mesh_sim_crash(mesh_exec_t *sim, mesh_actor_id_t id)
{
    if (!sim->sim)
        return -MESH_EINVAL;
    return mesh_rt_crash(sim, id);
}
