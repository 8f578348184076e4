/*
 * simulations/gossip_sim.c: the gossip scenarios: N production gossip actors
 * (gossip/gossip_actor.c, running gossip/swim.c) on simulated hosts of the simulated network
 * (actors/simnet.h), under the simulated executor's virtual clock, with the network faults and
 * process faults each scenario names. Every scenario asserts its outcome and its time bound;
 * bounds are derived from the timers of the profile in use and printed with the run.
 *
 * Scenarios:
 *   join       N nodes join through one seed: everyone sees everyone alive
 *   kill       a node killed (no leave): every other node sees it dead; nobody else dies
 *   refute     a node cut off for less than a suspicion timeout: suspected, refutes, never dead
 *   loss       20 % datagram loss for 10 minutes: no false death
 *   oneway     all datagrams from one node to another lost (one way) for 2 minutes: no death
 *   stall      a node's loop stalls 3 s: it declares nobody dead; whole again afterwards
 *   restart    a killed node restarts under its name: alive again at a higher incarnation
 *   restartall every node restarts at once: one whole membership again
 *   partition  halves split until each declares the other dead, then heal: one membership again
 *   leave      a graceful leave: everyone sees it left (not dead), fast
 *   meta       a node's instances and method sets reach every node (small and large metadata)
 *   signed     every node announces one instance, unsigned, then signed (ca/record_sig.h: a
 *              real ECDSA P-256 signature and a leaf from the mesh CA's signing core) with the
 *              certificate inline, then as a set (gossip/cert_set.h): each reaches every node,
 *              node-2's record verifies at node-0 with the certificate from its set, and the
 *              idle gossip bytes per node per second of the three are printed (inline only up
 *              to 30 nodes: it is the alternative not taken, measured for comparison)
 *   keys       key rotation in three rolling steps without a death; a node with a foreign key,
 *              and one with another cluster label, never join
 *   dupreorder 20 % of datagrams duplicated and 20 % delayed past later ones (up to a probe
 *              interval), from the join on: one membership, no false death in a minute, then
 *              a killed node is still seen dead everywhere within the detection bound
 *   longtail   long-tailed latencies (a capped Pareto tail on every link, a far heavier one on
 *              one node's links) for 2 minutes: no false death (Lifeguard), one membership
 *   clog       one node's links clogged both ways for 2-4 s (its loop runs): nobody else is
 *              ever seen dead, the clogged node declares nobody dead, and once unclogged it is
 *              alive again everywhere within the bound from the timers
 *   mixed      every odd node behaves as a node older than digest push-pulls (whole states
 *              both ways); halves split until each declares the other dead, a new node of one
 *              half and an old node of the other announce metadata, then heal: one membership
 *              again, both records everywhere, and both kinds of push-pull were used
 *
 *   gossip_sim --scenario NAME|all [--seed N | --seeds COUNT [--first-seed S]] [--nodes N]
 *              [--verbose] [--json]   --json: after a single seed's line, a JSON line of what
 *              it measured (outcome, detection and heal times, bytes, counters, speed, memory)
 *   gossip_sim --report [--nodes N] [--seed S]   detection, false positives at 0/5/10/20 %
 *              loss, dissemination rounds, bytes, speed and memory, as a table and a JSON line
 *   gossip_sim --list                            the scenario names (simulations/sweep)
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "actors/exec.h"
#include "actors/sim.h"
#include "actors/simnet.h"
#include "ca/ca_sign.h"
#include "ca/record_sig.h"
#include "common/log.h"
#include "gossip/cert_set.h"
#include "gossip/gossip_actor.h"
#include "gossip/meta.h"
#include "simulations/sim_sweep.h"

#define MS        1000000ull
#define S         (1000 * MS)
#define MAX_NODES 128

typedef struct gnode {
    int i;
    char ip[32];
    gsp_actor_cfg_t cfg;
    mesh_actor_id_t id;
    int running;
    const gsp_swim_t *swim; /* set by the observer while running */
    gsp_actor_stats_t stats;
    uint64_t max_awareness;
    struct world *w;
} gnode_t;

typedef struct world {
    mesh_exec_t *sim;
    mesh_simnet_t *net;
    gnode_t nodes[MAX_NODES];
    int n;
    int verbose;
    uint64_t t0;
    sim_outcome_t *out;
    gsp_swim_cfg_t prof;
    /* what the scenario measured, for --json (UINT64_MAX: not measured) */
    uint64_t m_detect; /* a failure (kill, partition) seen everywhere, from the fault */
    uint64_t m_heal;   /* one membership again after the fault ended (heal, clog, stall) */
} world_t;

typedef struct opts {
    const char *scenario;
    int nodes;
    int verbose;
    int report;
    int json;
} opts_t;

static void fail(world_t *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(world_t *w, const char *fmt, ...)
{
    w->out->failures++;
    size_t l = strlen(w->out->why);
    if (l + 2 >= sizeof w->out->why)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->out->why + l, sizeof w->out->why - l, fmt, ap);
    va_end(ap);
    l = strlen(w->out->why);
    if (l + 2 < sizeof w->out->why)
        strcat(w->out->why, "; ");
}

static void say(world_t *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(world_t *w, const char *fmt, ...)
{
    if (!w->verbose)
        return;
    va_list ap;
    va_start(ap, fmt);
    printf("[%8.3f s] ", (double)(mesh_sim_now(w->sim) - w->t0) / 1e9);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

static uint64_t now(world_t *w)
{
    return mesh_sim_now(w->sim) - w->t0;
}

/* The process's resident memory now (KiB; getrusage's peak is updated lazily by the kernel)
 * and a wall clock: the simulator's own costs, never a decision of the simulation. */
static long rss_now_kib(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- nodes ------------------------------------------------------------------------------- */

static void observe(void *ud, const gsp_swim_t *swim, const gsp_actor_stats_t *stats)
{
    gnode_t *n = ud;
    n->swim = swim;
    n->stats = *stats;
    uint32_t a = gsp_swim_awareness(swim);
    if (a > n->max_awareness)
        n->max_awareness = a;
}

static void node_name(int i, char *buf, size_t cap)
{
    snprintf(buf, cap, "node-%d", i);
}

/* Prepares node i (host 10.0.i/250.i%250+1, port 7946) with seeds: node 0 (and 1). */
static void node_init(world_t *w, int i)
{
    gnode_t *n = &w->nodes[i];
    memset(n, 0, sizeof *n);
    n->i = i;
    n->w = w;
    snprintf(n->ip, sizeof n->ip, "10.0.%d.%d", i / 250, i % 250 + 1);
    node_name(i, n->cfg.name, sizeof n->cfg.name);
    snprintf(n->cfg.bind, sizeof n->cfg.bind, "10.0.%d.%d:7946", i / 250, i % 250 + 1);
    n->cfg.swim = w->prof;
    n->cfg.io = mesh_simnet_host(w->net, n->ip);
    n->cfg.observe = observe;
    n->cfg.observe_ud = n;
    n->cfg.seed = mesh_sim_random(w->sim);
    int seeds[2] = {0, 1};
    for (int k = 0; k < 2; k++)
        if (seeds[k] != i && seeds[k] < w->n)
            snprintf(n->cfg.seeds[n->cfg.n_seeds++], GSP_ADDR_MAX + 1, "10.0.0.%d:7946",
                     seeds[k] + 1);
}

static void node_start(world_t *w, int i)
{
    gnode_t *n = &w->nodes[i];
    n->cfg.seed = mesh_sim_random(w->sim);
    mesh_spawn_opts_t so = {.name = n->cfg.name}; /* log lines name the node */
    mesh_simnet_host_down(w->net, n->ip, 0);
    if (mesh_sim_spawn_on(w->sim, n->cfg.io, &gsp_actor_ops, &n->cfg, &so, &n->id) < 0) {
        fail(w, "node %d did not start", i);
        return;
    }
    n->running = 1;
}

/* kill -9: the process is gone (its sockets close, nothing is announced). */
static void node_kill(world_t *w, int i)
{
    gnode_t *n = &w->nodes[i];
    if (!n->running)
        return;
    mesh_exec_stop(w->sim, n->id);
    mesh_simnet_host_down(w->net, n->ip, 1);
    n->running = 0;
    n->swim = NULL;
}

static void run_for(world_t *w, uint64_t d)
{
    mesh_sim_run_until(w->sim, mesh_sim_now(w->sim) + d);
}

/* The state node `obs` has for node `of` (-1: unknown, or obs not running). */
static int state_at(world_t *w, int obs, int of, uint32_t *inc)
{
    gnode_t *o = &w->nodes[obs];
    if (!o->running || !o->swim)
        return -1;
    char name[32];
    node_name(of, name, sizeof name);
    gsp_member_t m;
    if (gsp_swim_find(o->swim, name, &m))
        return -1;
    if (inc)
        *inc = m.incarnation;
    return (int)m.state;
}

/* Whether every running node other than `of` (and not in skip) sees `of` in state st. */
static int all_see(world_t *w, int of, int st)
{
    for (int i = 0; i < w->n; i++)
        if (i != of && w->nodes[i].running && state_at(w, i, of, NULL) != st)
            return 0;
    return 1;
}

/* Whether every running node sees exactly the running nodes alive (a whole membership). */
static int whole(world_t *w)
{
    for (int i = 0; i < w->n; i++) {
        if (!w->nodes[i].running)
            continue;
        for (int j = 0; j < w->n; j++) {
            if (!w->nodes[j].running || i == j)
                continue;
            if (state_at(w, i, j, NULL) != GSP_ST_ALIVE)
                return 0;
        }
    }
    return 1;
}

/* Runs in 10 ms steps until pred holds or the bound passes; returns the time it took, or
 * UINT64_MAX. */
static uint64_t wait_for(world_t *w, uint64_t bound, int (*pred)(world_t *, void *), void *arg)
{
    uint64_t start = now(w);
    while (now(w) - start <= bound) {
        if (pred(w, arg))
            return now(w) - start;
        run_for(w, 10 * MS);
    }
    return pred(w, arg) ? now(w) - start : UINT64_MAX;
}

static int pred_whole(world_t *w, void *arg)
{
    (void)arg;
    return whole(w);
}

typedef struct sees {
    int of, st;
} sees_t;

static int pred_all_see(world_t *w, void *arg)
{
    sees_t *s = arg;
    return all_see(w, s->of, s->st);
}

/* Counts the (observer, member) pairs where a running member is seen dead. */
static int false_deaths(world_t *w)
{
    int c = 0;
    for (int i = 0; i < w->n; i++)
        for (int j = 0; j < w->n; j++)
            if (i != j && w->nodes[j].running && state_at(w, i, j, NULL) == GSP_ST_DEAD)
                c++;
    return c;
}

/* The counters of every running node, added up (every field is a uint64_t count). */
_Static_assert(sizeof(gsp_swim_stats_t) % sizeof(uint64_t) == 0,
               "gsp_swim_stats_t holds only uint64_t counters");
static gsp_swim_stats_t stats_sum(world_t *w)
{
    gsp_swim_stats_t sum;
    memset(&sum, 0, sizeof sum);
    uint64_t *t = (uint64_t *)&sum;
    for (int i = 0; i < w->n; i++)
        if (w->nodes[i].running && w->nodes[i].swim) {
            gsp_swim_stats_t st;
            gsp_swim_stats(w->nodes[i].swim, &st);
            const uint64_t *f = (const uint64_t *)&st;
            for (size_t k = 0; k < sizeof st / sizeof(uint64_t); k++)
                t[k] += f[k];
        }
    return sum;
}

/* Deaths declared so far by every running node (its suspicion timeouts that expired). */
static uint64_t deaths_declared(world_t *w)
{
    return stats_sum(w).deaths;
}

/* ---- bounds from the timers -------------------------------------------------------------- */

static double log10n(int n)
{
    double l = 0;
    for (double x = n; x >= 10; x /= 10)
        l += 1;
    return l < 1 ? 1 : l + 0.5; /* a coarse ceiling of log10 */
}

/* The longest suspicion timeout at n members. */
static uint64_t susp_max(const world_t *w, int n)
{
    return (uint64_t)(w->prof.suspicion_mult * log10n(n) * (double)w->prof.probe_interval_ns) *
           w->prof.suspicion_max_mult;
}

/* Spreading an update to n members: rounds of gossip to gossip_nodes members each. */
static uint64_t spread(const world_t *w, int n)
{
    return (uint64_t)(log10n(n) * 6 + 4) * w->prof.gossip_interval_ns + w->prof.probe_interval_ns;
}

/* From a kill to everyone seeing the death: someone probes it within a round of probes, the
 * probe fails by the end of its interval, the suspicion times out, the death spreads. */
static uint64_t detect_bound(const world_t *w, int n)
{
    int round = n - 1 < 8 ? n - 1 : 8; /* a random order reaches it early with many probers */
    return (uint64_t)(round + 2) * w->prof.probe_interval_ns + susp_max(w, n) + spread(w, n);
}

/* Joining: the push-pull with a seed, gossip, and the early push-pull after the join (5 probe
 * intervals) that catches what gossip missed among nodes joining at once. */
static uint64_t join_bound(const world_t *w, int n)
{
    return 1 * S + 5 * w->prof.probe_interval_ns + spread(w, n) * 2;
}

/* ---- scenarios --------------------------------------------------------------------------- */

static void start_all(world_t *w)
{
    for (int i = 0; i < w->n; i++)
        node_init(w, i);
    for (int i = 0; i < w->n; i++)
        node_start(w, i);
}

static int join_all(world_t *w)
{
    uint64_t b = join_bound(w, w->n), t = wait_for(w, b, pred_whole, NULL);
    if (t == UINT64_MAX) {
        fail(w, "%d nodes did not form one membership within %llu ms", w->n,
             (unsigned long long)(b / MS));
        for (int i = 0; i < w->n; i++) {
            char row[MAX_NODES + 1];
            for (int j = 0; j < w->n; j++)
                row[j] = "?ASDL"[state_at(w, i, j, NULL) + 1];
            row[w->n] = 0;
            say(w, "view of node %2d: %s", i, row);
        }
        return -1;
    }
    say(w, "%d nodes joined in %llu ms (bound %llu ms)", w->n, (unsigned long long)(t / MS),
        (unsigned long long)(b / MS));
    return 0;
}

/* Starts every node and waits for one membership, then 2 s more; returns a random node other
 * than the first seed (the one a scenario acts on), or -1 when the join failed. */
static int settled(world_t *w)
{
    start_all(w);
    if (join_all(w))
        return -1;
    run_for(w, 2 * S);
    return 1 + (int)(mesh_sim_random(w->sim) % (uint64_t)(w->n - 1));
}

static void sc_join(world_t *w)
{
    start_all(w);
    join_all(w);
}

static void sc_kill(world_t *w)
{
    int k = settled(w);
    if (k < 0)
        return;
    node_kill(w, k);
    sees_t s = {k, GSP_ST_DEAD};
    uint64_t b = detect_bound(w, w->n), t = wait_for(w, b, pred_all_see, &s);
    if (t == UINT64_MAX)
        fail(w, "killed node %d not seen dead by everyone within %llu ms", k,
             (unsigned long long)(b / MS));
    else
        w->m_detect = t;
    if (t != UINT64_MAX)
        say(w, "node %d killed: everyone saw it dead after %llu ms (bound %llu ms)", k,
            (unsigned long long)(t / MS), (unsigned long long)(b / MS));
    run_for(w, 5 * S);
    if (false_deaths(w))
        fail(w, "%d false deaths after a kill", false_deaths(w));
}

static void block_node(world_t *w, int k, int blocked)
{
    mesh_addr_t a, b;
    for (int i = 0; i < w->n; i++) {
        if (i == k)
            continue;
        mesh_addr_parse(w->nodes[k].cfg.bind, &a);
        mesh_addr_parse(w->nodes[i].cfg.bind, &b);
        mesh_simnet_block(w->net, &a, &b, blocked);
    }
}

static void sc_refute(world_t *w)
{
    int k = settled(w);
    if (k < 0)
        return;
    /* cut off long enough to be suspected, shorter than the shortest suspicion timeout */
    uint64_t cut = 3 * w->prof.probe_interval_ns;
    block_node(w, k, 1);
    run_for(w, cut);
    block_node(w, k, 0);
    run_for(w, susp_max(w, w->n) + spread(w, w->n));
    gsp_swim_stats_t st;
    uint64_t sus = 0, ref = 0;
    for (int i = 0; i < w->n; i++) {
        gsp_swim_stats(w->nodes[i].swim, &st);
        sus += st.suspicions;
        if (i == k)
            ref = st.refutations;
    }
    say(w, "node %d cut off for %llu ms: %llu suspicions, %llu refutations", k,
        (unsigned long long)(cut / MS), (unsigned long long)sus, (unsigned long long)ref);
    if (false_deaths(w))
        fail(w, "node %d declared dead after a %llu ms cut (suspicions %llu, refutations %llu)", k,
             (unsigned long long)(cut / MS), (unsigned long long)sus, (unsigned long long)ref);
    if (!whole(w))
        fail(w, "membership not whole after the cut healed");
}

static void sc_loss(world_t *w)
{
    start_all(w);
    if (join_all(w))
        return;
    mesh_simnet_opts_t o = {.latency_min_ns = MS, .latency_jitter_ns = MS, .loss = 0.20};
    mesh_simnet_configure(w->net, &o);
    uint64_t d0 = deaths_declared(w);
    for (int m = 0; m < 10; m++) {
        run_for(w, 60 * S);
        if (false_deaths(w)) {
            fail(w, "minute %d of 20%% loss: %d false deaths", m + 1, false_deaths(w));
            break;
        }
    }
    uint64_t d = deaths_declared(w) - d0;
    if (d)
        fail(w, "%llu deaths declared in 10 min of 20%% loss", (unsigned long long)d);
    say(w, "10 min at 20%% loss: %llu deaths declared", (unsigned long long)d);
    mesh_simnet_opts_t ok = {.latency_min_ns = MS, .latency_jitter_ns = MS};
    mesh_simnet_configure(w->net, &ok);
}

static void sc_oneway(world_t *w)
{
    start_all(w);
    if (join_all(w))
        return;
    run_for(w, 2 * S);
    /* datagrams from a to b are all lost (b to a flows): indirect probes and the stream
     * fallback keep b alive in a's eyes */
    int a = 1, b = 2 + (int)(mesh_sim_random(w->sim) % (uint64_t)(w->n - 2));
    mesh_addr_t x, y;
    mesh_addr_parse(w->nodes[a].cfg.bind, &x);
    mesh_addr_parse(w->nodes[b].cfg.bind, &y);
    mesh_simnet_link_loss(w->net, &x, &y, 1.0);
    uint64_t d0 = deaths_declared(w);
    run_for(w, 120 * S);
    if (deaths_declared(w) != d0 || false_deaths(w))
        fail(w, "one-way loss %d->%d: %llu deaths declared", a, b,
             (unsigned long long)(deaths_declared(w) - d0));
    say(w, "2 min of one-way loss %d->%d: no death", a, b);
    mesh_simnet_link_loss(w->net, &x, &y, -1);
}

static void sc_stall(world_t *w)
{
    int k = settled(w);
    if (k < 0)
        return;
    gsp_swim_stats_t before, after;
    gsp_swim_stats(w->nodes[k].swim, &before);
    mesh_simnet_stall(w->net, w->nodes[k].ip, 3 * S);
    run_for(w, 3 * S);
    /* the stalled node must not accuse the others when it wakes up */
    uint64_t b = susp_max(w, w->n) + w->prof.reconnect_interval_ns + spread(w, w->n);
    uint64_t t = wait_for(w, b, pred_whole, NULL);
    gsp_swim_stats(w->nodes[k].swim, &after);
    if (after.deaths != before.deaths)
        fail(w, "node %d declared %llu deaths after its 3 s stall", k,
             (unsigned long long)(after.deaths - before.deaths));
    if (!after.late_timers)
        fail(w, "node %d did not notice its stall (no late timer)", k);
    w->m_heal = t;
    if (t == UINT64_MAX)
        fail(w, "membership not whole within %llu ms after node %d's stall",
             (unsigned long long)(b / MS), k);
    else
        say(w,
            "node %d stalled 3 s: %llu late timers, awareness up to %llu, whole again after %llu "
            "ms",
            k, (unsigned long long)after.late_timers, (unsigned long long)w->nodes[k].max_awareness,
            (unsigned long long)(t / MS));
}

static void sc_restart(world_t *w)
{
    int k = settled(w);
    if (k < 0)
        return;
    uint32_t old = 0;
    state_at(w, 0, k, &old);
    node_kill(w, k);
    sees_t s = {k, GSP_ST_DEAD};
    if (wait_for(w, detect_bound(w, w->n), pred_all_see, &s) == UINT64_MAX) {
        fail(w, "node %d not seen dead", k);
        return;
    }
    node_start(w, k);
    s.st = GSP_ST_ALIVE;
    uint64_t b = join_bound(w, w->n) + w->prof.reconnect_interval_ns,
             t = wait_for(w, b, pred_all_see, &s);
    uint32_t inc = 0;
    state_at(w, 0, k, &inc);
    w->m_heal = t;
    if (t == UINT64_MAX)
        fail(w, "restarted node %d not alive everywhere within %llu ms", k,
             (unsigned long long)(b / MS));
    else if (inc <= old)
        fail(w, "restarted node %d alive at incarnation %u, not above %u", k, inc, old);
    else
        say(w, "node %d restarted: alive everywhere after %llu ms at incarnation %u (was %u)", k,
            (unsigned long long)(t / MS), inc, old);
    if (wait_for(w, join_bound(w, w->n), pred_whole, NULL) == UINT64_MAX)
        fail(w, "membership not whole after the restart");
}

static void sc_restartall(world_t *w)
{
    start_all(w);
    if (join_all(w))
        return;
    run_for(w, 2 * S);
    for (int i = 0; i < w->n; i++)
        node_kill(w, i);
    run_for(w, 500 * MS);
    for (int i = 0; i < w->n; i++)
        node_start(w, i);
    uint64_t b = join_bound(w, w->n) + w->prof.reconnect_interval_ns,
             t = wait_for(w, b, pred_whole, NULL);
    if (t == UINT64_MAX)
        fail(w, "after all %d nodes restarted: no whole membership within %llu ms", w->n,
             (unsigned long long)(b / MS));
    else
        say(w, "all restarted: whole again after %llu ms", (unsigned long long)(t / MS));
}

static void partition(world_t *w, int split)
{
    if (!split) {
        mesh_simnet_heal(w->net);
        return;
    }
    const char *ips[MAX_NODES];
    for (int i = w->n / 2; i < w->n; i++)
        ips[i - w->n / 2] = w->nodes[i].ip;
    mesh_simnet_partition(w->net, ips, (size_t)(w->n - w->n / 2), 1);
}

static int pred_split(world_t *w, void *arg)
{
    (void)arg;
    int h = w->n / 2;
    for (int i = 0; i < w->n; i++)
        for (int j = 0; j < w->n; j++)
            if (i != j && (i < h) != (j < h) && state_at(w, i, j, NULL) != GSP_ST_DEAD)
                return 0;
    return 1;
}

static void sc_partition(world_t *w)
{
    start_all(w);
    if (join_all(w))
        return;
    run_for(w, 2 * S);
    partition(w, 1);
    uint64_t b = detect_bound(w, w->n) * 2, t = wait_for(w, b, pred_split, NULL);
    if (t == UINT64_MAX) {
        fail(w, "halves did not declare each other dead within %llu ms",
             (unsigned long long)(b / MS));
        return;
    }
    w->m_detect = t;
    say(w, "partitioned: each half saw the other dead after %llu ms", (unsigned long long)(t / MS));
    run_for(w, 60 * S);
    partition(w, 0);
    b = w->prof.reconnect_interval_ns + join_bound(w, w->n) + susp_max(w, w->n);
    t = wait_for(w, b, pred_whole, NULL);
    w->m_heal = t;
    if (t == UINT64_MAX)
        fail(w, "no whole membership within %llu ms after the heal", (unsigned long long)(b / MS));
    else
        say(w, "healed: one membership after %llu ms (bound %llu ms)", (unsigned long long)(t / MS),
            (unsigned long long)(b / MS));
}

static void sc_leave(world_t *w)
{
    int k = settled(w);
    if (k < 0)
        return;
    uint64_t d0 = deaths_declared(w);
    mesh_exec_send(w->sim, w->nodes[k].id, GSP_MSG_LEAVE, NULL, 0);
    run_for(w, 300 * MS); /* what a graceful shutdown waits at most before exiting */
    node_kill(w, k);
    sees_t s = {k, GSP_ST_LEFT};
    uint64_t b = spread(w, w->n), t = wait_for(w, b, pred_all_see, &s);
    if (t == UINT64_MAX)
        fail(w, "node %d left, not seen as left by everyone within %llu ms", k,
             (unsigned long long)(b / MS));
    else
        say(w, "node %d left: seen as left everywhere after %llu ms", k,
            (unsigned long long)(t / MS));
    run_for(w, 10 * S);
    if (deaths_declared(w) != d0)
        fail(w, "a death was declared around a graceful leave");
    if (!all_see(w, k, GSP_ST_LEFT))
        fail(w, "node %d's leave turned into another state", k);
}

/* Metadata: node 2 announces an instance with a method set, then a big one (over a datagram). */
static int pred_meta(world_t *w, void *arg)
{
    uint64_t *want = arg; /* [meta_version, set hash] */
    for (int i = 0; i < w->n; i++) {
        if (i == 2 || !w->nodes[i].running || !w->nodes[i].swim)
            continue;
        gsp_member_t m;
        size_t n;
        if (gsp_swim_find(w->nodes[i].swim, "node-2", &m) || m.meta_version != want[0] || !m.meta)
            return 0;
        if (!gsp_swim_method_set(w->nodes[i].swim, want[1], &n))
            return 0;
    }
    return 1;
}

/* A signing identity for the signed scenario: the record's bytes are signed with key and
 * travel with cert (DER); NULL: unsigned. */
typedef struct sim_signer {
    EVP_PKEY *key;
    uint8_t cert[GSP_CERT_MAX];
    size_t cert_len;
    gsp_cert_set_t cs; /* the certificate as a set (gossip/cert_set.h) */
    int inline_cert;   /* carry the certificate in the metadata instead */
} sim_signer_t;

static void announce_signed(world_t *w, int k, int n_inst, uint64_t *hash_out,
                            const sim_signer_t *sg);

static void announce(world_t *w, int k, int n_inst, uint64_t *hash_out)
{
    announce_signed(w, k, n_inst, hash_out, NULL);
}

static void announce_signed(world_t *w, int k, int n_inst, uint64_t *hash_out,
                            const sim_signer_t *sg)
{
    static const char *methods[] = {"/shop.Cart/Add", "/shop.Cart/Get", "/shop.Cart/Clear"};
    uint64_t h = gsp_meta_set_hash(methods, 3);
    static gsp_inst_t insts[GSP_INST_MAX];
    char svc[GSP_INST_MAX][48], addr[GSP_INST_MAX][32];
    for (int i = 0; i < n_inst; i++) {
        snprintf(svc[i], sizeof svc[i], "shop.Cart%d", i);
        snprintf(addr[i], sizeof addr[i], "%s:%d", w->nodes[k].ip, 50051 + i);
        memset(&insts[i], 0, sizeof insts[i]);
        insts[i].service = (gsp_str_t){svc[i], (uint32_t)strlen(svc[i])};
        insts[i].addr = (gsp_str_t){addr[i], (uint32_t)strlen(addr[i])};
        insts[i].node = (gsp_str_t){w->nodes[k].cfg.name, (uint32_t)strlen(w->nodes[k].cfg.name)};
        insts[i].zone = (gsp_str_t){"zone-a", 6};
        insts[i].version = (gsp_str_t){"v1", 2};
        insts[i].weight = 100;
        insts[i].methods = h;
    }
    gsp_meta_update_t *u = calloc(1, sizeof *u);
    u->meta = malloc(GSP_META_MAX);
    int len = gsp_meta_encode(insts, (size_t)n_inst, u->meta, GSP_META_MAX);
    if (len > 0 && sg) { /* the bare array is the record signed; then the map with sig, cert */
        static gsp_node_attrs_t na;
        uint8_t sig[RSIG_SIG_MAX];
        gsp_member_t self; /* signed at the version it is announced at: the next */
        if (!w->nodes[k].swim || gsp_swim_find(w->nodes[k].swim, w->nodes[k].cfg.name, &self))
            self.meta_version = 0;
        u->version = self.meta_version + 1;
        int sl = rsig_sign(sg->key, w->nodes[k].cfg.name, u->version, u->meta, (size_t)len, sig,
                           sizeof sig);
        memset(&na, 0, sizeof na);
        na.vsig = (gsp_str_t){(const char *)sig, sl > 0 ? (uint32_t)sl : 0};
        if (sg->inline_cert)
            na.cert = (gsp_str_t){(const char *)sg->cert, (uint32_t)sg->cert_len};
        else
            na.cset = sg->cs.hash;
        len = sl > 0 ? gsp_meta_encode_node(insts, (size_t)n_inst, &na, u->meta, GSP_META_MAX) : -1;
    }
    if (len < 0) {
        fail(w, "metadata of %d instances does not encode", n_inst);
        gsp_meta_update_free(u);
        return;
    }
    u->meta_len = (size_t)len;
    u->n_sets = 1;
    u->sets = calloc(2, sizeof *u->sets);
    u->sets[0].hash = h;
    u->sets[0].n = 3;
    u->sets[0].names = calloc(3, sizeof(char *));
    for (int i = 0; i < 3; i++)
        u->sets[0].names[i] = strdup(methods[i]);
    if (sg && !sg->inline_cert) { /* the certificate set, as the bridge adds it */
        u->sets[1].hash = sg->cs.hash;
        u->sets[1].n = sg->cs.n;
        u->sets[1].names = calloc(sg->cs.n, sizeof(char *));
        for (size_t i = 0; i < sg->cs.n; i++)
            u->sets[1].names[i] = strdup(sg->cs.names[i]);
        u->n_sets = 2;
    }
    if (mesh_exec_send_ptr(w->sim, w->nodes[k].id, GSP_MSG_SET_META, u, gsp_meta_update_free))
        gsp_meta_update_free(u);
    *hash_out = h;
}

static void sc_meta(world_t *w)
{
    if (w->n < 3) {
        fail(w, "meta needs 3 nodes");
        return;
    }
    start_all(w);
    if (join_all(w))
        return;
    uint64_t want[2];
    announce(w, 2, 1, &want[1]);
    want[0] = 1;
    uint64_t b = spread(w, w->n) + w->prof.stream_timeout_ns, t = wait_for(w, b, pred_meta, want);
    if (t == UINT64_MAX)
        fail(w, "node-2's instance and method set not everywhere within %llu ms",
             (unsigned long long)(b / MS));
    else
        say(w, "small metadata everywhere after %llu ms", (unsigned long long)(t / MS));
    announce(w, 2, 40, &want[1]); /* about 3 KB: fetched over streams */
    want[0] = 2;
    t = wait_for(w, b, pred_meta, want);
    if (t == UINT64_MAX)
        fail(w, "node-2's large metadata not everywhere within %llu ms",
             (unsigned long long)(b / MS));
    else
        say(w, "large metadata everywhere after %llu ms", (unsigned long long)(t / MS));
}

/* Every node knows every other node's metadata at version want[0] (or later), and the set
 * want[1] when not 0. */
static int pred_all_meta(world_t *w, void *arg)
{
    uint64_t want = ((uint64_t *)arg)[0], set = ((uint64_t *)arg)[1];
    size_t sn;
    for (int i = 0; i < w->n; i++)
        for (int j = 0; j < w->n; j++) {
            if (set && w->nodes[i].running && w->nodes[i].swim &&
                !gsp_swim_method_set(w->nodes[i].swim, set, &sn))
                return 0;
            gsp_member_t m;
            if (i == j || !w->nodes[i].running || !w->nodes[i].swim)
                continue;
            if (gsp_swim_find(w->nodes[i].swim, w->nodes[j].cfg.name, &m) ||
                m.meta_version < want || !m.meta)
                return 0;
        }
    return 1;
}

/* A key and a mesh CA leaf for node (one service), made with the CA's own signing core. */
static int make_signer(sim_signer_t *sg, ca_root_t *root, const char *node, const char *svc)
{
    char err[512];
    const mesh_crypto_t *C = ca_crypto(err, sizeof err);
    if (!C || !(sg->key = ca_key_generate()))
        return -1;
    X509_REQ *r = C->x509_req_new();
    char *csr = NULL;
    if (!r || C->x509_req_set_pubkey(r, sg->key) != 1 ||
        C->x509_req_sign(r, sg->key, C->sha256()) <= 0 || !(csr = ca_pem_write_req(r))) {
        if (r)
            C->x509_req_free(r);
        return -1;
    }
    C->x509_req_free(r);
    const char *svcs[] = {svc};
    ca_sign_req_t req = {
        .csr_pem = csr, .csr_len = strlen(csr), .node = node, .services = svcs, .n_services = 1};
    ca_issued_t out;
    int rc = ca_sign(root, &req, (int64_t)time(NULL), &out, err, sizeof err) == CA_SIGN_OK ? 0 : -1;
    free(csr);
    if (rc)
        return -1;
    X509 *x = ca_pem_read_x509(out.cert_pem, strlen(out.cert_pem));
    int n = x ? C->i2d_x509(x, NULL) : -1;
    unsigned char *p = sg->cert;
    if (n > 0 && (size_t)n <= sizeof sg->cert && C->i2d_x509(x, &p) == n &&
        gsp_cert_set_make(&sg->cs, sg->cert, (size_t)n) == 0)
        sg->cert_len = (size_t)n;
    else
        rc = -1;
    if (x)
        C->x509_free(x);
    ca_issued_destroy(&out);
    return rc;
}

/* Idle gossip bytes per node per second over d: datagrams, and streams both ways (push-pull
 * carries every member's metadata). */
static double idle_bytes(world_t *w, uint64_t d)
{
    gsp_swim_stats_t a = stats_sum(w);
    uint64_t t0 = now(w);
    run_for(w, d);
    gsp_swim_stats_t b = stats_sum(w);
    uint64_t bytes = b.sent_bytes + b.stream_request_bytes - a.sent_bytes - a.stream_request_bytes;
    return (double)bytes / w->n / ((double)(now(w) - t0) / 1e9);
}

static void sc_signed(world_t *w)
{
    start_all(w);
    if (join_all(w))
        return;
    char err[512];
    ca_root_t root;
    sim_signer_t *sg = calloc(1, sizeof *sg);
    if (!sg || ca_root_create(&root, "sim.example", 10, (int64_t)time(NULL), err, sizeof err) ||
        make_signer(sg, &root, "node-2", "shop.Cart0")) {
        fail(w, "cannot make a mesh CA identity for the signed records");
        free(sg);
        return;
    }
    uint64_t h, v[2] = {1, 0};
    for (int k = 0; k < w->n; k++)
        announce(w, k, 1, &h);
    /* a metadata version each node's records reach everyone by: spread, and a push-pull */
    uint64_t b = spread(w, w->n) + w->prof.push_pull_interval_ns + w->prof.stream_timeout_ns;
    uint64_t t = wait_for(w, b, pred_all_meta, v);
    if (t == UINT64_MAX)
        fail(w, "unsigned records not everywhere within %llu ms", (unsigned long long)(b / MS));
    run_for(w, 10 * S);
    uint64_t window = 4 * w->prof.push_pull_interval_ns;
    double bytes[3] = {idle_bytes(w, window), 0, 0};
    /* Signed, the certificate inline (1), then as a set fetched once (2). Every node signs with
     * node-2's identity: the same sizes as its own would have. */
    for (int phase = 1; phase <= 2; phase++) {
        /* inline is the alternative measured for comparison; past 30 nodes every node fetching
         * every other node's over-a-datagram metadata at once takes longer than the bound */
        if (phase == 1 && w->n > 30)
            continue;
        sg->inline_cert = phase == 1;
        for (int k = 0; k < w->n; k++)
            announce_signed(w, k, 1, &h, sg);
        v[0]++; /* each announcement raises every node's metadata version by one */
        v[1] = phase == 2 ? sg->cs.hash : 0;
        t = wait_for(w, b, pred_all_meta, v);
        if (t == UINT64_MAX)
            fail(w, "signed records (%s) not everywhere within %llu ms",
                 phase == 1 ? "inline certificate" : "certificate set",
                 (unsigned long long)(b / MS));
        else
            say(w, "signed records (%s) everywhere after %llu ms",
                phase == 1 ? "inline certificate" : "certificate set",
                (unsigned long long)(t / MS));
        run_for(w, 10 * S);
        bytes[phase] = idle_bytes(w, window);
    }
    /* node-0 checks node-2's record as the bridge would: the certificate from its set */
    gsp_member_t m;
    static gsp_inst_t insts[GSP_INST_MAX];
    static gsp_node_attrs_t na;
    static uint8_t der[GSP_CERT_MAX];
    size_t n = 0, sn = 0;
    const char *const *names = gsp_swim_method_set(w->nodes[0].swim, sg->cs.hash, &sn);
    long dl = names ? gsp_cert_set_read(names, sn, der, sizeof der) : -1;
    rsig_trust_t *tr =
        rsig_trust_new(root.cert_pem, strlen(root.cert_pem), "root", err, sizeof err);
    if (!tr || dl <= 0 || gsp_swim_find(w->nodes[0].swim, "node-2", &m) || !m.meta ||
        gsp_meta_decode_node(m.meta, m.meta_len, insts, GSP_INST_MAX, &n, &na) || n != 1 ||
        na.cset != sg->cs.hash) {
        fail(w, "node-2's signed record or its certificate set not readable at node-0");
    } else {
        const char *svcs[] = {"shop.Cart0"};
        rsig_record_t rec = {.node = "node-2",
                             .rec = (const uint8_t *)na.insts_raw.p,
                             .rec_len = na.insts_raw.n,
                             .sig = (const uint8_t *)na.vsig.p,
                             .sig_len = na.vsig.n,
                             .cert_der = der,
                             .cert_len = (size_t)dl,
                             .services = svcs,
                             .n_services = 1,
                             .version = m.meta_version};
        rsig_result_t r = rsig_verify(tr, NULL, &rec, (int64_t)time(NULL), NULL, err, sizeof err);
        if (r != RSIG_OK)
            fail(w, "node-2's record does not verify at node-0: %s", err);
        rec.version++; /* the same record replayed as a newer version */
        if (rsig_verify(tr, NULL, &rec, (int64_t)time(NULL), NULL, err, sizeof err) !=
            RSIG_BAD_SIGNATURE)
            fail(w, "node-2's record verifies at a version it was not signed at");
    }
    if (w->n > 30)
        bytes[1] = 0; /* not measured */
    say(w,
        "idle gossip bytes per node per second (datagrams and streams), %d nodes, one instance "
        "each: unsigned %.0f; "
        "signed, certificate inline %.0f (x%.2f); signed, certificate as a set %.0f (x%.2f); "
        "signature %u B, certificate %zu B, signed metadata %u B",
        w->n, bytes[0], bytes[1], bytes[0] > 0 ? bytes[1] / bytes[0] : 0, bytes[2],
        bytes[0] > 0 ? bytes[2] / bytes[0] : 0, na.vsig.n, sg->cert_len, (unsigned)m.meta_len);
    rsig_trust_free(tr);
    gsp_cert_set_destroy(&sg->cs);
    ca_crypto(NULL, 0)->pkey_free(sg->key);
    free(sg);
    ca_root_destroy(&root);
}

static void set_key(gnode_t *n, const uint8_t *const *keys, int nk)
{
    n->cfg.ring.n = (uint32_t)nk;
    for (int i = 0; i < nk; i++)
        memcpy(n->cfg.ring.keys[i], keys[i], GSP_KEY_LEN);
}

static void sc_keys(world_t *w)
{
    static uint8_t ka[GSP_KEY_LEN], kb[GSP_KEY_LEN], kc[GSP_KEY_LEN];
    for (int i = 0; i < GSP_KEY_LEN; i++) {
        ka[i] = (uint8_t)(mesh_sim_random(w->sim));
        kb[i] = (uint8_t)(mesh_sim_random(w->sim));
        kc[i] = (uint8_t)(mesh_sim_random(w->sim));
    }
    const uint8_t *a[] = {ka}, *ab[] = {ka, kb}, *ba[] = {kb, ka}, *b[] = {kb}, *c[] = {kc};
    int real = w->n - 2; /* the last two are the intruders */
    int n_all = w->n;
    w->n = real;
    for (int i = 0; i < real; i++) {
        node_init(w, i);
        set_key(&w->nodes[i], a, 1);
        node_start(w, i);
    }
    if (join_all(w))
        return;
    uint64_t d0 = deaths_declared(w);
    /* rolling restarts: each node is down briefly (less than a probe timeout) */
    const uint8_t *const *steps[] = {ab, ba, b};
    int nk[] = {2, 2, 1};
    for (int s = 0; s < 3; s++)
        for (int i = 0; i < real; i++) {
            node_kill(w, i);
            run_for(w, 20 * MS);
            set_key(&w->nodes[i], steps[s], nk[s]);
            node_start(w, i);
            run_for(w, 100 * MS);
        }
    run_for(w, 5 * S);
    if (!whole(w))
        fail(w, "membership not whole after the key rotation");
    (void)d0;
    /* intruders: a foreign key, and the right key with another cluster label */
    w->n = n_all;
    node_init(w, real);
    set_key(&w->nodes[real], c, 1);
    node_init(w, real + 1);
    set_key(&w->nodes[real + 1], b, 1);
    snprintf(w->nodes[real + 1].cfg.label, sizeof w->nodes[real + 1].cfg.label, "other-mesh");
    node_start(w, real);
    node_start(w, real + 1);
    run_for(w, 10 * S);
    for (int i = 0; i < real; i++)
        for (int j = real; j < n_all; j++)
            if (state_at(w, i, j, NULL) >= 0)
                fail(w, "node %d knows intruder %d", i, j);
    uint64_t auth = 0, label = 0;
    for (int i = 0; i < real; i++) {
        auth += w->nodes[i].stats.refused[GSP_SEAL_EAUTH];
        label += w->nodes[i].stats.refused[GSP_SEAL_ELABEL];
    }
    if (!auth || !label)
        fail(w, "intruders' packets not refused as such (auth %llu, label %llu)",
             (unsigned long long)auth, (unsigned long long)label);
    say(w, "keys rotated; intruder packets refused: %llu auth, %llu label",
        (unsigned long long)auth, (unsigned long long)label);
}

/* The network's counters, for what a scenario's faults did. */
static mesh_simnet_stats_t net_stats(world_t *w)
{
    mesh_simnet_stats_t st;
    mesh_simnet_stats(w->net, &st);
    return st;
}

/* Whether any running node sees a running node other than `except` dead. */
static int others_dead(world_t *w, int except)
{
    for (int i = 0; i < w->n; i++)
        for (int j = 0; j < w->n; j++)
            if (i != j && j != except && w->nodes[j].running &&
                state_at(w, i, j, NULL) == GSP_ST_DEAD)
                return 1;
    return 0;
}

static void sc_dupreorder(world_t *w)
{
    /* From the start: the join itself meets copies and late datagrams. A reordered datagram
     * is late by up to a probe interval, so half of the late acks miss their probe's timeout. */
    mesh_simnet_opts_t o = {.latency_min_ns = MS,
                            .latency_jitter_ns = MS,
                            .duplicate = 0.20,
                            .reorder = 0.20,
                            .reorder_delay_ns = w->prof.probe_interval_ns};
    mesh_simnet_configure(w->net, &o);
    start_all(w);
    if (join_all(w))
        return;
    uint64_t d0 = deaths_declared(w);
    for (int s = 0; s < 60; s += 10) {
        run_for(w, 10 * S);
        if (false_deaths(w)) {
            fail(w, "%d false deaths after %d s of duplication and reordering", false_deaths(w),
                 s + 10);
            return;
        }
    }
    gsp_swim_stats_t st = stats_sum(w);
    mesh_simnet_stats_t ns = net_stats(w);
    if (deaths_declared(w) != d0)
        fail(w, "%llu deaths declared in a minute of duplication and reordering",
             (unsigned long long)(deaths_declared(w) - d0));
    if (!whole(w))
        fail(w, "membership not whole after a minute of duplication and reordering");
    if (!ns.duplicated || !ns.reordered)
        fail(w, "the faults did not happen (duplicated %llu, reordered %llu)",
             (unsigned long long)ns.duplicated, (unsigned long long)ns.reordered);
    say(w,
        "a minute of 20 %% duplication and 20 %% reordering: %llu duplicated, %llu reordered, "
        "%llu suspicions, %llu refutations, no death",
        (unsigned long long)ns.duplicated, (unsigned long long)ns.reordered,
        (unsigned long long)st.suspicions, (unsigned long long)st.refutations);
    /* A real death is still found, within the same bound as without the faults. */
    int k = 1 + (int)(mesh_sim_random(w->sim) % (uint64_t)(w->n - 1));
    node_kill(w, k);
    sees_t s = {k, GSP_ST_DEAD};
    uint64_t b = detect_bound(w, w->n), t = wait_for(w, b, pred_all_see, &s);
    if (t == UINT64_MAX)
        fail(w,
             "killed node %d not seen dead by everyone within %llu ms under duplication and "
             "reordering",
             k, (unsigned long long)(b / MS));
    else
        w->m_detect = t;
    if (t != UINT64_MAX)
        say(w, "node %d killed: dead everywhere after %llu ms (bound %llu ms)", k,
            (unsigned long long)(t / MS), (unsigned long long)(b / MS));
    run_for(w, 5 * S);
    if (false_deaths(w))
        fail(w, "%d false deaths after the kill", false_deaths(w));
}

static void link_both(world_t *w, int a, int b, const mesh_simnet_latency_t *lat)
{
    mesh_addr_t x, y;
    mesh_addr_parse(w->nodes[a].cfg.bind, &x);
    mesh_addr_parse(w->nodes[b].cfg.bind, &y);
    mesh_simnet_link_latency(w->net, &x, &y, lat);
    mesh_simnet_link_latency(w->net, &y, &x, lat);
}

static void sc_longtail(world_t *w)
{
    /* Every link: 1 ms + a Pareto tail (alpha 1.5, scale 2 ms: median 1.2 ms, 1 in 1000 packets
     * beyond a probe timeout), capped at 1 s. One node is far: 20 ms + a heavier tail (alpha
     * 1.2, scale 30 ms: 1 in 9 packets beyond a probe timeout), capped at 2 s. */
    mesh_simnet_opts_t o = {.latency_min_ns = MS,
                            .latency_jitter_ns = 2 * MS,
                            .latency_dist = MESH_SIMNET_PARETO,
                            .latency_shape = 1.5,
                            .latency_cap_ns = 1 * S};
    mesh_simnet_configure(w->net, &o);
    start_all(w);
    if (join_all(w))
        return;
    int far = 1 + (int)(mesh_sim_random(w->sim) % (uint64_t)(w->n - 1));
    mesh_simnet_latency_t slow = {.min_ns = 20 * MS,
                                  .spread_ns = 30 * MS,
                                  .dist = MESH_SIMNET_PARETO,
                                  .shape = 1.2,
                                  .cap_ns = 2 * S};
    for (int i = 0; i < w->n; i++)
        if (i != far)
            link_both(w, far, i, &slow);
    uint64_t d0 = deaths_declared(w);
    gsp_swim_stats_t before = stats_sum(w);
    for (int s = 0; s < 120; s += 10) {
        run_for(w, 10 * S);
        if (false_deaths(w)) {
            fail(w, "%d false deaths after %d s of long-tailed latency (node %d far)",
                 false_deaths(w), s + 10, far);
            return;
        }
    }
    gsp_swim_stats_t after = stats_sum(w);
    if (deaths_declared(w) != d0)
        fail(w, "%llu deaths declared in 2 min of long-tailed latency (node %d far)",
             (unsigned long long)(deaths_declared(w) - d0), far);
    for (int i = 0; i < w->n; i++)
        if (i != far)
            link_both(w, far, i, NULL);
    uint64_t b = spread(w, w->n) + susp_max(w, w->n);
    if (wait_for(w, b, pred_whole, NULL) == UINT64_MAX)
        fail(w, "membership not whole within %llu ms after 2 min of long-tailed latency",
             (unsigned long long)(b / MS));
    say(w,
        "2 min of long-tailed latency (node %d far): %llu suspicions, %llu refutations, "
        "%llu indirect probes, no death",
        far, (unsigned long long)(after.suspicions - before.suspicions),
        (unsigned long long)(after.refutations - before.refutations),
        (unsigned long long)(after.indirect_probes - before.indirect_probes));
}

static void sc_clog(world_t *w)
{
    int k = settled(w);
    if (k < 0)
        return;
    gsp_swim_stats_t kb, ka;
    gsp_swim_stats(w->nodes[k].swim, &kb);
    uint64_t d = 2 * S + mesh_sim_random(w->sim) % (2 * S);
    mesh_simnet_clog(w->net, w->nodes[k].ip, d, MESH_SIMNET_CLOG_BOTH);
    uint64_t t0 = now(w);
    int seen_suspect = 0;
    while (now(w) - t0 < d) {
        run_for(w, 10 * MS);
        if (others_dead(w, k)) {
            fail(w, "a node other than the clogged node %d seen dead during its clog", k);
            return;
        }
        seen_suspect |= !all_see(w, k, GSP_ST_ALIVE);
    }
    /* Alive again everywhere: the held packets arrive, the clogged node hears it is
     * suspected (or dead) and refutes; members that gave it up meet it again through the
     * reconnect loop. */
    uint64_t b = susp_max(w, w->n) + w->prof.reconnect_interval_ns + spread(w, w->n);
    sees_t s = {k, GSP_ST_ALIVE};
    uint64_t t1 = now(w), t = UINT64_MAX;
    while (now(w) - t1 <= b) {
        if (others_dead(w, k)) {
            fail(w, "a node other than the clogged node %d seen dead after its clog", k);
            return;
        }
        if (pred_all_see(w, &s) && whole(w)) {
            t = now(w) - t1;
            break;
        }
        run_for(w, 10 * MS);
    }
    w->m_heal = t;
    gsp_swim_stats(w->nodes[k].swim, &ka);
    if (ka.deaths != kb.deaths)
        fail(w, "the clogged node %d declared %llu deaths", k,
             (unsigned long long)(ka.deaths - kb.deaths));
    if (t == UINT64_MAX)
        fail(w, "node %d, clogged %llu ms, not alive everywhere within %llu ms of the clog's end",
             k, (unsigned long long)(d / MS), (unsigned long long)(b / MS));
    else
        say(w,
            "node %d clogged %llu ms (%s meanwhile, %llu packets held): alive everywhere %llu "
            "ms after (bound %llu ms)",
            k, (unsigned long long)(d / MS), seen_suspect ? "suspected" : "never suspected",
            (unsigned long long)net_stats(w).clogged, (unsigned long long)(t / MS),
            (unsigned long long)(b / MS));
}

typedef struct scenario {
    const char *name;
    void (*run)(world_t *w);
    int min_nodes;
} scenario_t;

/* Every running node knows the metadata of nodes a and b (arg: {a, b}) at version 1 or later. */
static int pred_meta_of(world_t *w, void *arg)
{
    const int *k = arg;
    for (int i = 0; i < w->n; i++)
        for (int j = 0; j < 2; j++) {
            gsp_member_t m;
            if (i == k[j] || !w->nodes[i].running || !w->nodes[i].swim)
                continue;
            if (gsp_swim_find(w->nodes[i].swim, w->nodes[k[j]].cfg.name, &m) ||
                m.meta_version < 1 || !m.meta)
                return 0;
        }
    return 1;
}

static void sc_mixed(world_t *w)
{
    for (int i = 0; i < w->n; i++)
        node_init(w, i);
    for (int i = 1; i < w->n; i += 2)
        w->nodes[i].cfg.swim.legacy_push_pull = 1; /* a node older than digests */
    for (int i = 0; i < w->n; i++)
        node_start(w, i);
    if (join_all(w))
        return;
    run_for(w, 2 * S);
    partition(w, 1);
    uint64_t b = detect_bound(w, w->n) * 2, t = wait_for(w, b, pred_split, NULL);
    if (t == UINT64_MAX) {
        fail(w, "halves did not declare each other dead within %llu ms",
             (unsigned long long)(b / MS));
        return;
    }
    int k[2] = {0, (w->n / 2) | 1}; /* a new node in one half, an old one in the other */
    uint64_t h;
    announce(w, k[0], 1, &h);
    announce(w, k[1], 1, &h);
    run_for(w, 60 * S);
    partition(w, 0);
    b = w->prof.reconnect_interval_ns + join_bound(w, w->n) + susp_max(w, w->n);
    t = wait_for(w, b, pred_whole, NULL);
    w->m_heal = t;
    if (t == UINT64_MAX) {
        fail(w, "no whole membership within %llu ms after the heal", (unsigned long long)(b / MS));
        return;
    }
    say(w, "healed: one membership after %llu ms (bound %llu ms)", (unsigned long long)(t / MS),
        (unsigned long long)(b / MS));
    b = w->prof.push_pull_interval_ns * 2 + spread(w, w->n);
    t = wait_for(w, b, pred_meta_of, k);
    if (t == UINT64_MAX)
        fail(w, "the records of %s (new) and %s (old) not everywhere within %llu ms after the heal",
             w->nodes[k[0]].cfg.name, w->nodes[k[1]].cfg.name, (unsigned long long)(b / MS));
    gsp_swim_stats_t st = stats_sum(w);
    if (!st.digest_push_pulls || st.push_pulls <= st.digest_push_pulls)
        fail(w, "push-pulls: %llu, by digest %llu: both kinds should have run",
             (unsigned long long)st.push_pulls, (unsigned long long)st.digest_push_pulls);
    say(w, "push-pulls %llu (by digest %llu; %llu states answered to digests, %llu fetched back)",
        (unsigned long long)st.push_pulls, (unsigned long long)st.digest_push_pulls,
        (unsigned long long)st.digest_states_sent, (unsigned long long)st.digest_wants);
}

static const scenario_t scenarios[] = {
    {"join", sc_join, 3},           {"kill", sc_kill, 3},
    {"refute", sc_refute, 4},       {"loss", sc_loss, 3},
    {"oneway", sc_oneway, 4},       {"stall", sc_stall, 3},
    {"restart", sc_restart, 3},     {"restartall", sc_restartall, 3},
    {"partition", sc_partition, 4}, {"leave", sc_leave, 3},
    {"meta", sc_meta, 3},           {"signed", sc_signed, 3},
    {"keys", sc_keys, 5},           {"dupreorder", sc_dupreorder, 4},
    {"longtail", sc_longtail, 3},   {"clog", sc_clog, 3},
    {"mixed", sc_mixed, 4},
};

/* ---- the report (--report): detection, false positives by loss, dissemination, bytes ------- */

/* What the report's worlds added up: simulated node-seconds, and whether one failed to join. */
static double report_node_s;
static int report_failures;
static long report_rss_kib; /* the largest resident size at the end of a world */

static world_t *report_world(uint64_t seed, int n)
{
    world_t *w = calloc(1, sizeof *w);
    static sim_outcome_t out;
    if (!w)
        abort();
    memset(&out, 0, sizeof out);
    w->out = &out;
    w->n = n;
    w->sim = mesh_sim_new(seed);
    w->net = mesh_sim_net(w->sim);
    mesh_simnet_opts_t o = {.latency_min_ns = MS, .latency_jitter_ns = MS};
    mesh_simnet_configure(w->net, &o);
    gsp_swim_profile("lan", &w->prof);
    w->t0 = mesh_sim_now(w->sim);
    start_all(w);
    join_all(w);
    run_for(w, 5 * S);
    return w;
}

static void report_free(world_t *w)
{
    report_node_s += (double)w->n * (double)now(w) / 1e9;
    report_failures += w->out->failures != 0;
    long rss = rss_now_kib();
    if (rss > report_rss_kib)
        report_rss_kib = rss;
    mesh_exec_free(w->sim);
    free(w);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int pred_any_suspects(world_t *w, void *arg)
{
    int of = *(int *)arg;
    for (int i = 0; i < w->n; i++)
        if (i != of && w->nodes[i].running && state_at(w, i, of, NULL) >= GSP_ST_SUSPECT)
            return 1;
    return 0;
}

/* The sample at quantile q of n sorted samples, in seconds (0 when there is none). */
static double quantile_s(const uint64_t *v, int n, double q)
{
    return n ? (double)v[(int)(q * (n - 1) + 0.5)] / 1e9 : 0;
}

static json_t *samples_json(const uint64_t *v, int n)
{
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++)
        json_array_append_new(a, json_real((double)v[i] / 1e9));
    return a;
}

static json_t *u64s_json(const uint64_t *v, int n)
{
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++)
        json_array_append_new(a, json_integer((json_int_t)v[i]));
    return a;
}

/*
 * Prints, for n nodes on the lan profile: detection of a kill (first suspicion anywhere, and
 * dead everywhere; SWIM's expected first detection is e/(e-1) protocol periods), false deaths
 * and suspicions in 10 minutes at 0/5/10/20 % loss, dissemination of a metadata update in
 * gossip rounds against log2 n, gossip bytes per node per second, and the simulator's own
 * speed (simulated node-seconds per wall second) and memory per simulated node. A table, then
 * a JSON line with every sample (what simulations/sweep aggregates over seeds).
 */
static int report(uint64_t seed, int n)
{
    enum { KILLS = 10, LOSSES = 4 };
    uint64_t first[KILLS], all[KILLS];
    int k_done = 0;
    double wall0 = wall_now();
    long rss0 = rss_now_kib();
    world_t *w = report_world(seed, n);
    const gsp_swim_cfg_t prof = w->prof;
    for (int k = 0; k < KILLS; k++) {
        int v = 1 + (int)(mesh_sim_random(w->sim) % (uint64_t)(n - 1));
        node_kill(w, v);
        uint64_t t1 = wait_for(w, 30 * S, pred_any_suspects, &v);
        sees_t sd = {v, GSP_ST_DEAD};
        uint64_t t2 = wait_for(w, 60 * S, pred_all_see, &sd);
        if (t1 != UINT64_MAX && t2 != UINT64_MAX) {
            first[k_done] = t1;
            all[k_done++] = t1 + t2;
        }
        node_start(w, v);
        wait_for(w, 60 * S, pred_whole, NULL);
        run_for(w, 5 * S);
    }
    uint64_t b0 = stats_sum(w).sent_bytes, t0 = now(w);
    run_for(w, 60 * S);
    double bytes = (double)(stats_sum(w).sent_bytes - b0) / n / ((double)(now(w) - t0) / 1e9);
    /* dissemination: a metadata update from node 2 reaching everyone */
    uint64_t want[2] = {1, 0};
    announce(w, 2, 1, &want[1]);
    uint64_t t_meta = wait_for(w, 30 * S, pred_meta, want);
    report_free(w);
    qsort(first, (size_t)k_done, sizeof *first, cmp_u64);
    qsort(all, (size_t)k_done, sizeof *all, cmp_u64);
    static const double losses[LOSSES] = {0, 0.05, 0.10, 0.20};
    uint64_t deaths[LOSSES], susp[LOSSES];
    for (int l = 0; l < LOSSES; l++) {
        w = report_world(seed + 1 + (uint64_t)l, n);
        mesh_simnet_opts_t o = {.latency_min_ns = MS, .latency_jitter_ns = MS, .loss = losses[l]};
        mesh_simnet_configure(w->net, &o);
        gsp_swim_stats_t before = stats_sum(w);
        run_for(w, 600 * S);
        gsp_swim_stats_t after = stats_sum(w);
        deaths[l] = after.deaths - before.deaths;
        susp[l] = after.suspicions - before.suspicions;
        report_free(w);
    }
    double wall = wall_now() - wall0, rss_node = (double)(report_rss_kib - rss0) / n;
    double period = (double)prof.probe_interval_ns / 1e9, e = 2.718281828;
    double log2n = 0;
    for (int x = n; x > 1; x /= 2)
        log2n += 1;
    double rounds = t_meta == UINT64_MAX ? -1 : (double)t_meta / (double)prof.gossip_interval_ns;
    printf("gossip_sim report: %d nodes, lan profile (probe %.0f ms), seed %llu\n\n", n,
           period * 1e3, (unsigned long long)seed);
    printf("| metric | value | reference |\n|---|---:|---|\n");
    printf("| first suspicion after a kill, p50 / p99 (s) | %.2f / %.2f | SWIM: e/(e-1) periods = "
           "%.2f s; memberlist's 1 s probe: %.2f s |\n",
           quantile_s(first, k_done, 0.5), quantile_s(first, k_done, 0.99), period * e / (e - 1),
           e / (e - 1));
    printf("| dead everywhere after a kill, p50 / p99 (s) | %.2f / %.2f | serf measured here: "
           "5.6 s (N=10), 8.9 s (N=30) |\n",
           quantile_s(all, k_done, 0.5), quantile_s(all, k_done, 0.99));
    for (int l = 0; l < LOSSES; l++)
        printf("| %.0f %% loss, 10 min: deaths declared / suspicions | %llu / %llu | false "
               "positives: %.4f per member-minute |\n",
               losses[l] * 100, (unsigned long long)deaths[l], (unsigned long long)susp[l],
               (double)deaths[l] / n / 10);
    printf("| metadata update reaching all: gossip rounds | %.1f | log2 n = %.0f |\n", rounds,
           log2n);
    printf("| gossip bytes per node per second (idle) | %.0f | bench/gossip: serf 279-342 |\n",
           bytes);
    printf("| simulated node-seconds per wall second; KiB per simulated node | %.0f; %.0f | |\n\n",
           wall > 0 ? report_node_s / wall : 0, rss_node);
    json_t *loss_a = json_array();
    for (int l = 0; loss_a && l < LOSSES; l++)
        json_array_append_new(loss_a, json_real(losses[l]));
    json_t *j = json_pack(
        "{s:s, s:s, s:I, s:i, s:b, s:s, s:f, s:f, s:i, s:i, s:f, s:i, s:o, s:o, s:f, s:f, s:f, "
        "s:o, s:o, s:o, s:i, s:f, s:f, s:f, s:f, s:f, s:f, s:f}",
        "sim", "gossip", "scenario", "report", "seed", (json_int_t)seed, "nodes", n, "ok",
        k_done == KILLS && !report_failures, "profile", "lan", "probe_interval_s", period,
        "probe_timeout_s", (double)prof.probe_timeout_ns / 1e9, "suspicion_mult",
        (int)prof.suspicion_mult, "suspicion_max_mult", (int)prof.suspicion_max_mult,
        "gossip_interval_s", (double)prof.gossip_interval_ns / 1e9, "gossip_nodes",
        (int)prof.gossip_nodes, "first_suspicion_s", samples_json(first, k_done), "dead_all_s",
        samples_json(all, k_done), "first_suspicion_p50_s", quantile_s(first, k_done, 0.5),
        "dead_all_p50_s", quantile_s(all, k_done, 0.5), "dead_all_p99_s",
        quantile_s(all, k_done, 0.99), "loss", loss_a, "false_deaths", u64s_json(deaths, LOSSES),
        "suspicions", u64s_json(susp, LOSSES), "loss_minutes", 10, "dissemination_rounds", rounds,
        "log2_n", log2n, "bytes_per_node_s", bytes, "virtual_node_s", report_node_s, "wall_s", wall,
        "node_s_per_wall_s", wall > 0 ? report_node_s / wall : 0.0, "rss_kib_per_node", rss_node);
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
    if (!text) {
        fprintf(stderr, "gossip_sim: cannot build the report's JSON line\n");
        return 1;
    }
    printf("%s\n", text);
    free(text);
    json_decref(j);
    return k_done == KILLS && !report_failures ? 0 : 1;
}

/* ---- driver ------------------------------------------------------------------------------ */

typedef struct sweep_ud {
    const opts_t *o;
    const scenario_t *sc;
} sweep_ud_t;

/* What one run measured, for --json. */
typedef struct run_metrics {
    int nodes;
    double virtual_s, wall_s;
    long rss_kib; /* growth of the process's resident memory from before the world to its end */
    uint64_t detect, heal;
    gsp_swim_stats_t swim; /* summed over the nodes running at the end */
    mesh_simnet_stats_t net;
} run_metrics_t;

static run_metrics_t last_run;

static void run_one(void *ud, uint64_t seed, int tally, sim_outcome_t *out)
{
    (void)tally;
    sweep_ud_t *su = ud;
    double wall0 = wall_now();
    long rss0 = rss_now_kib();
    world_t *w = calloc(1, sizeof *w);
    if (!w)
        abort();
    memset(out, 0, sizeof *out);
    w->out = out;
    w->m_detect = w->m_heal = UINT64_MAX;
    w->verbose = su->o->verbose;
    w->n = su->o->nodes < su->sc->min_nodes ? su->sc->min_nodes : su->o->nodes;
    if (w->n > MAX_NODES)
        w->n = MAX_NODES;
    w->sim = mesh_sim_new(seed);
    w->net = mesh_sim_net(w->sim);
    mesh_simnet_opts_t o = {.latency_min_ns = MS, .latency_jitter_ns = MS};
    mesh_simnet_configure(w->net, &o);
    gsp_swim_profile("lan", &w->prof);
    w->t0 = mesh_sim_now(w->sim);
    su->sc->run(w);
    out->hash = mesh_sim_trace_hash(w->sim);
    run_metrics_t *m = &last_run;
    m->nodes = w->n;
    m->virtual_s = (double)now(w) / 1e9;
    m->detect = w->m_detect;
    m->heal = w->m_heal;
    m->swim = stats_sum(w);
    mesh_simnet_stats(w->net, &m->net);
    m->rss_kib = rss_now_kib() - rss0;
    mesh_exec_free(w->sim);
    free(w);
    m->wall_s = wall_now() - wall0;
}

/* A duration in seconds, or JSON null when it was not measured. */
static json_t *secs_or_null(uint64_t ns)
{
    return ns == UINT64_MAX ? json_null() : json_real((double)ns / 1e9);
}

/* Prints one run's outcome and measures as a JSON line (--json). */
static void print_run_json(const char *scenario, uint64_t seed, const sim_outcome_t *out)
{
    const run_metrics_t *m = &last_run;
    char hash[17];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)out->hash);
    double node_s = m->nodes * m->virtual_s;
    json_t *j = json_pack(
        "{s:s, s:s, s:I, s:i, s:b, s:s, s:s, s:f, s:f, s:f, s:f, s:o, s:o, s:f, s:{s:I, s:I, "
        "s:I, s:I, s:I}, s:{s:I, s:I, s:I, s:I, s:I}}",
        "sim", "gossip", "scenario", scenario, "seed", (json_int_t)seed, "nodes", m->nodes, "ok",
        !out->failures, "why", out->why, "hash", hash, "virtual_s", m->virtual_s, "wall_s",
        m->wall_s, "node_s_per_wall_s", m->wall_s > 0 ? node_s / m->wall_s : 0.0,
        "rss_kib_per_node", (double)m->rss_kib / m->nodes, "detect_s", secs_or_null(m->detect),
        "heal_s", secs_or_null(m->heal), "bytes_per_node_s",
        node_s > 0 ? (double)m->swim.sent_bytes / node_s : 0.0, "swim", "suspicions",
        (json_int_t)m->swim.suspicions, "refutations", (json_int_t)m->swim.refutations, "deaths",
        (json_int_t)m->swim.deaths, "probes", (json_int_t)m->swim.probes, "indirect_probes",
        (json_int_t)m->swim.indirect_probes, "net", "lost", (json_int_t)m->net.lost, "duplicated",
        (json_int_t)m->net.duplicated, "reordered", (json_int_t)m->net.reordered, "clogged",
        (json_int_t)m->net.clogged, "delivered", (json_int_t)m->net.delivered);
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
    if (!text) {
        fprintf(stderr, "gossip_sim: cannot build the JSON line\n");
        exit(1);
    }
    printf("%s\n", text);
    free(text);
    json_decref(j);
}

static void replay(void *ud, uint64_t seed)
{
    sweep_ud_t *su = ud;
    printf("  replay: gossip_sim --scenario %s --seed %llu --nodes %d --verbose\n", su->sc->name,
           (unsigned long long)seed, su->o->nodes);
}

int main(int argc, char **argv)
{
    opts_t o = {.scenario = "all", .nodes = 10};
    uint64_t seed = 0, seeds = 0, first = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--scenario") && v)
            o.scenario = v, i++;
        else if (!strcmp(a, "--seed") && v)
            seed = strtoull(v, NULL, 10), i++;
        else if (!strcmp(a, "--seeds") && v)
            seeds = strtoull(v, NULL, 10), i++;
        else if (!strcmp(a, "--first-seed") && v)
            first = strtoull(v, NULL, 10), i++;
        else if (!strcmp(a, "--nodes") && v)
            o.nodes = atoi(v), i++;
        else if (!strcmp(a, "--verbose"))
            o.verbose = 1;
        else if (!strcmp(a, "--report"))
            o.report = 1;
        else if (!strcmp(a, "--json"))
            o.json = 1;
        else if (!strcmp(a, "--list")) {
            for (size_t k = 0; k < sizeof scenarios / sizeof *scenarios; k++)
                printf("%s\n", scenarios[k].name);
            return 0;
        } else {
            fprintf(stderr, "usage: gossip_sim [--scenario NAME|all] [--seed N | --seeds COUNT "
                            "[--first-seed S]] [--nodes N] [--verbose] [--json] | --report "
                            "[--nodes N] [--seed S] | --list\n");
            return 2;
        }
    }
    if (o.nodes < 1 || o.nodes > MAX_NODES) {
        fprintf(stderr, "gossip_sim: --nodes must be 1..%d\n", MAX_NODES);
        return 2;
    }
    mesh_log_init("sim", o.verbose ? MESH_LOG_INFO : MESH_LOG_OFF, MESH_LOG_FORMAT_TEXT);
    if (o.report)
        return report(seed ? seed : first, o.nodes < 4 ? 4 : o.nodes);
    int failed = 0, matched = 0;
    for (size_t k = 0; k < sizeof scenarios / sizeof *scenarios; k++) {
        const scenario_t *sc = &scenarios[k];
        if (strcmp(o.scenario, "all") && strcmp(o.scenario, sc->name))
            continue;
        matched++;
        sweep_ud_t su = {&o, sc};
        if (!seeds) {
            sim_outcome_t out;
            run_one(&su, seed ? seed : first, 1, &out);
            printf("%-10s seed %llu (hash %016llx): %s%s\n", sc->name,
                   (unsigned long long)(seed ? seed : first), (unsigned long long)out.hash,
                   out.failures ? "FAILED: " : "ok", out.why);
            if (o.json)
                print_run_json(sc->name, seed ? seed : first, &out);
            failed += out.failures != 0;
        } else {
            printf("%-10s %llu seeds from %llu, %d nodes\n", sc->name, (unsigned long long)seeds,
                   (unsigned long long)first, o.nodes);
            sim_sweep_result_t r = sim_sweep(first, seeds, run_one, replay, &su);
            failed += r.failed != 0 || r.nondeterministic;
        }
    }
    if (!matched) {
        fprintf(stderr, "gossip_sim: no scenario named %s\n", o.scenario);
        return 2;
    }
    return failed ? 1 : 0;
}
