/*
 * simulations/mesh_sim.c: the whole mesh in one process. N nodes, each on its own simulated host
 * (actors/simnet.h), each running the production control plane under the production supervisor:
 * sidecar nodes run the sidecar actor (node/sidecar_actor.c) against a simulated app
 * (simulations/sim_app.c), the registry actor (registry/registry_actor.c) against the simulated
 * etcd (simulations/sim_etcd.c, through sim_etcd_link.c) and the gossip bridge with its gossip
 * actor (node/gossip_bridge.c, gossip/gossip_actor.c); proxy nodes run a watching registry actor
 * and the gossip bridge, and route with the tables their registry actor publishes (the stand-in
 * of the node actor keeps the last one, as the node hands it to its workers). A sidecar node's
 * data plane is a listener on its advertised address that answers a request (what the registry
 * actor's corroborating connect meets, and what calls reach); a crashed node's host is down
 * (connects refused, datagrams dropped). Every proxy issues calls (--call-rate per second)
 * through the production circuit breaker (policy/breaker.h), balancer (transport/balancer.h) and
 * outlier ejection (transport/outlier.h),
 * each a stream connect, request and answer within a 1 s deadline ("calls" below).
 *
 * Faults (one every 40 s, drawn from the seed, or one kind with --scenario): etcd down for
 * everyone (with a crash and a new node meanwhile); the gossip network split in halves (silent
 * drops), a third cut off from the rest, halves joined only through one bridge node; one node
 * isolated from everyone (gossip and etcd); random loss; a node's loop stalling; a crash (kill
 * -9) and restart; etcd losing its data back to a 20 s old backup; etcd cut off from a third of
 * the nodes (proxies among them) with a crash meanwhile; a bad network (duplicates, reordering,
 * long-tailed latency); one node's links clogged (packets held while its loop runs); the etcd
 * outage with a proxy killed and restarted with its registry snapshot folder (a sim_fs that
 * loses unsynced writes) and another restarted without it (restart-state); one proxy cut off
 * from one node everyone else reaches (gray: only outlier ejection helps); one app flapping
 * (flap: every call fails in short bad phases, the node stays alive and reachable); every app
 * failing every call (allfail), or a third of them (third: the percent cap must hold). Every
 * fault ends before the quiet tail of the run. After each heal (and etcd's return) the run
 * measures how long until every proxy routes to exactly the running nodes and sees every
 * running node alive (--stats).
 *
 * Invariants, checked every 100 ms of virtual time (bounds from the timers, printed):
 *   - removal: a crashed sidecar node's instance is in no running proxy's table once the
 *     removal bound passed, unless the panic floor needs it (at most half of a service's
 *     instances go because of gossip);
 *   - restart with state: a proxy restarted with its snapshot folder during the etcd outage
 *     routes every instance in etcd before the outage whose node runs, before the network's
 *     least round trip has passed (faster than gossip could bring them);
 *   - no flap: while etcd comes back, a proxy's table keeps every instance of a live node that
 *     was in etcd before the outage;
 *   - calls: no call to an instance whose node is running and reachable from the proxy fails
 *     (outside a bad network, where long-tailed latencies pass the deadline); once the removal
 *     bound has passed since the last fault began, a proxy fails no more of its calls than the
 *     bound derived before check_windows() (a share of what blind round robin would fail);
 *   - flap: a proxy's failed calls to the flapping node stay under the bound derived before
 *     flap_heal() (consecutive failures per bad phase, growing ejections), and every ejection
 *     (in every fault, allfail's included) respects the max ejection percent;
 *   - at the end (everything healed, quiet tail): every node sees every running node alive
 *     (never dead forever), and every proxy's table holds exactly the instances of the running
 *     sidecar nodes, which is also etcd's view; every proxy's last 100 calls succeeded and its
 *     breaker is closed.
 *
 *   mesh_sim --seed N [--verbose]                  one seed (replay a failure)
 *   mesh_sim --seeds COUNT [--first-seed S]        many seeds, then the determinism check
 *   options: --nodes N (4..4000), --proxies P, --duration-s S, --scenario outage|halves|isolate|
 *            stall|loss|churn|minority|bridge|dataloss|etcd-subset|netem|clog|restart-state|gray|
 *            flap|allfail|third|mixed, --call-rate
 *            PER_S (per proxy, default 20, 0: no calls), --stats (metrics and a JSON line; "cpu_s"
 *            is the process's CPU time, "wall_s" its wall time), --check-prefix-s S (many seeds:
 *            the determinism check compares the trace hash after S virtual seconds and replays
 *            only that far), --threads T (default 1: the simulator's windows run on T threads;
 *            the trace hash is the same for every T), --replay-threads T (the determinism
 *            replays of a sweep run on T threads: default --threads)
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "actors/exec.h"
#include "actors/sim.h"
#include "actors/simnet.h"
#include "actors/supervisor.h"
#include "common/config.h"
#include "common/log.h"
#include "gossip/gossip_actor.h"
#include "node/gossip_bridge.h"
#include "node/node_msgs.h"
#include "node/sidecar_actor.h"
#include "policy/breaker.h"
#include "registry/instance.h"
#include "registry/reg_msgs.h"
#include "registry/registry_actor.h"
#include "simulations/sim_app.h"
#include "simulations/sim_etcd.h"
#include "simulations/sim_etcd_link.h"
#include "simulations/sim_fs.h"
#include "simulations/sim_sweep.h"
#include "transport/balancer.h"
#include "transport/outlier.h"
#include "transport/lb.h"

#define MS        1000000ull
#define S         (1000 * MS)
#define MAX_NODES 4000
#define PREFIX    "meshd/services"
#define SERVICE   "shop.v1.Echo" /* every app serves it: many instances per service */

#define LINK_LATENCY_MIN_NS (1 * MS)            /* the simulated network's least one-way latency */
#define SNAPSHOT_NAME       "registry.snapshot" /* in each proxy's simulated folder */
#define HEALTH_INTERVAL_MS  1000
#define LEASE_TTL_MS        10000

/* Calls (see "calls through the proxies" below). */
#define CALL_METHOD      "Call"      /* a method every app's Echo serves */
#define CALL_DEADLINE_NS (1000 * MS) /* the client's deadline, as a gRPC deadline */
/* The production proxy's connect timeout (transport/proxy.h, connect_timeout_ms's default): a
 * connect still pending then counts as a failed connect for the endpoint's backoff. */
#define CALL_CONNECT_TIMEOUT_NS (1000 * MS)
#define CALLS_FROM_S            10   /* calls start once the first tables are out */
#define APP_FAIL                "er" /* an app's answer that is its UNAVAILABLE */
/* The quiet tail's window: the last calls of every proxy must all have succeeded. */
#define QUIET_CALLS 100

/* The simulator's logical processes (actors/sim_lp.c): each proxy on one of its own (round
 * robin over at most SIM_PROXY_LPS), the sidecar nodes round robin over SIM_SIDECAR_LPS more: a
 * proxy (its calls, its registry's rebuilds of the whole table) costs about as much as 25-30
 * sidecar nodes. The trace hash depends on these numbers, never on --threads. */
#define SIM_PROXY_LPS   32
#define SIM_SIDECAR_LPS 32
/* The logical processes the proxies take: one each, up to SIM_PROXY_LPS. */
#define SIM_PROXY_LPS_OF(proxies) ((proxies) < SIM_PROXY_LPS ? (proxies) : SIM_PROXY_LPS)
/* The simulated etcd runs on the last process, alone (its host ETCD_IP): its requests and
 * answers cross processes as the network's packets do, at least the lookahead away, so it no
 * longer cuts the windows short as calls on the serial queue did. */
#define SIM_LPS_OF(proxies) (SIM_PROXY_LPS_OF(proxies) + SIM_SIDECAR_LPS + 1)
#define ETCD_IP             "10.255.255.250"

typedef struct opts {
    int nodes, proxies, verbose, stats, threads;
    uint64_t duration_s;
    const char *scenario;
    double call_rate; /* calls per second per proxy; 0: none */
    /* many seeds: the determinism check compares the trace hash after this many virtual
     * seconds and replays only that far (0: the whole run) */
    uint64_t check_prefix_s;
    /* the sweep's determinism replays run on this many threads (the hash must not change) */
    int replay_threads;
} opts_t;

typedef struct world world_t;
typedef struct caller caller_t;

/* Violations found by one logical process: how many, and the first one with its time. */
typedef struct fail_rec {
    int n;
    uint64_t at;
    char first[768];
} fail_rec_t;

typedef struct mnode {
    world_t *w;
    int i, proxy, running, ever_started;
    char ip[32], adv[48];
    mesh_io_t *io;
    mesh_config_t cfg;
    sim_app_t *app;
    sim_etcd_link_t *link;
    reg_actor_args_t *reg_args;
    sc_args_t sc;
    gsp_bridge_args_t br;
    mesh_child_spec_t children[3];
    mesh_supervisor_spec_t sup;
    mesh_actor_id_t registry, sidecar, stand_in, sup_id;
    const gsp_swim_t *swim; /* while running (the gossip actor's observer) */
    mesh_routes_t *table;   /* proxies: the last table published */
    uint64_t crashed_at;    /* 0: not crashed */
    int detect_measured;    /* its detection time was sampled */
    uint64_t started_at;
    uint64_t bytes_sent;
    int isolated, stalled;
    int etcd_cut; /* cut off from etcd only (the etcd-subset fault) */
    /* its last stall, clog or isolation (0: none; until UINT64_MAX while it lasts): calls to
     * or from it then are not calls between reachable nodes */
    uint64_t dist_from, dist_until;
    caller_t *caller; /* proxies: their calls */
    /* proxies: the folder of the registry snapshot (survives crashes; the restart-state
     * fault wipes it for the proxy that restarts without state), its PRNG, and the layer the
     * registry actor reads at each batch (dead_fs_ops while the process is being killed) */
    sim_fs_t *snap_fs;
    mesh_prng_t snap_prng;
    mesh_fs_t snap_layer;
} mnode_t;

struct world {
    opts_t o;
    uint64_t seed;
    mesh_exec_t *sim;
    mesh_simnet_t *net;
    sim_etcd_t *etcd;
    mesh_io_t *etcd_io; /* etcd's host: its process runs the requests */
    mnode_t *n;
    int nn;
    uint64_t t0, t_end, quiet_at;
    uint64_t trace;
    /* the run's failure record, per logical process (slot 0: the serial queue and code
     * outside the runs; k + 1: process k), merged in failures() and first_failure() */
    fail_rec_t fails[SIM_PROXY_LPS + SIM_SIDECAR_LPS + 2];
    gsp_swim_cfg_t prof;
    uint64_t b_remove, b_detect, b_converge;
    /* the etcd outage's no-flap check */
    uint64_t etcd_back_at;
    int etcd_down;
    char **kept; /* instances that must stay in proxies' tables while etcd comes back */
    size_t n_kept;
    /* metrics */
    uint64_t det_samples[4096];
    size_t n_det;
    /* convergence after a heal or etcd's return: routes (every proxy routes to exactly the
     * running sidecar nodes) and membership (every proxy sees every running node alive) */
    uint64_t heal_at;
    mesh_simnet_opts_t netem_saved; /* the link behaviour before the netem fault */
    int netem_on;
    int conv_routes_pending, conv_members_pending;
    uint64_t conv_routes[64], conv_members[64];
    size_t n_conv_routes, n_conv_members;
    uint64_t false_deaths, crashes;
    /* the network faults calls meet: the last cut between groups (kind, its bridge node, when)
     * and the last bad network (netem) */
    int cut_kind, cut_bridge;
    uint64_t cut_from, cut_until, netem_from, netem_until;
    uint64_t *lost_at; /* when instances became unavailable to a proxy (crash, cut, stall...) */
    size_t n_lost, lost_cap;
    uint64_t epoch; /* changes whenever a node may have become reachable or not */
    /* restart-state: the proxy restarted with its snapshot folder (and the one without), when
     * they restarted, and when their tables first held every kept instance of a live node */
    int rs_with, rs_without;
    uint64_t rs_with_at, rs_without_at, rs_with_ok, rs_without_ok;
    uint64_t b_state;
    uint64_t rs_samples[64], rs_gossip_samples[64];
    size_t n_rs, n_rs_gossip;
    int overdue; /* check_tick: some crashed node is down for longer than the removal bound */
    /* the gray fault: proxy gray_p cut off (silent drops) from sidecar node gray_o, which
     * everyone else reaches (gray_until UINT64_MAX while it lasts); gray_n instances in the
     * proxy's table then (the calls that failed and whether an ejection was held back are
     * the proxy's: caller_t) */
    int gray_p, gray_o;
    uint64_t gray_from, gray_until;
    size_t gray_n;
    uint64_t gray_episodes, gray_failed_max;
    /* gray cuts whose ejection the percent cap held back: their calls fail blind (connects
     * succeed, so the connect backoff the failure-rate bound rests on never applies) */
    struct {
        int p;
        uint64_t from, until;
    } gray_blind[64];
    size_t n_gray_blind;
    /* the flapping instance: sidecar node flap_o's app fails every call (UNAVAILABLE) in its
     * bad phases (flap_bad) from flap_from until flap_until (UINT64_MAX while it lasts);
     * flap_phases bad phases so far, each at least flap_bad_min long. allfail: every app fails
     * every call from allfail_from until allfail_until. app_faults: both kinds of periods, whose
     * windows the failure-rate bound excuses (they have their own checks). */
    int flap_o, flap_bad;
    uint64_t flap_from, flap_until, flap_phases;
    uint64_t allfail_from, allfail_until;
    int allfail_mod; /* the apps of nodes i with i % allfail_mod == 0 fail (1: all of them) */
    uint64_t flap_episodes, flap_failed_max, flap_checked;
    struct {
        uint64_t from, until;
    } app_faults[64];
    size_t n_app_faults;
};

enum { CUT_NONE, CUT_HALVES, CUT_MINORITY, CUT_BRIDGE };

enum { STANDIN_ROUTES_SEEN = 0x4D530001u, STANDIN_CALL_TICK, STANDIN_CALL_TIMER };

/* ---- helpers ----------------------------------------------------------------------------- */

static uint64_t now_ns(world_t *w)
{
    return mesh_sim_now(w->sim);
}

static uint64_t rnd(world_t *w, uint64_t n)
{
    return n ? mesh_sim_random(w->sim) % n : 0;
}

/* Folds v into the trace hash: the chain of the logical process that calls (actors/sim.h). */
static void fold(void *ud, uint64_t v)
{
    mesh_sim_fold(((world_t *)ud)->sim, v);
}

/* fail() is called by the checks (alone, at window boundaries), by the proxies' calls and by a
 * node giving up (each on its own process, maybe in the same window on other threads): each
 * writes its own process's record, and the run's record is their merge, the same whatever the
 * threads. */

static void vlog(world_t *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void vlog(world_t *w, const char *fmt, ...)
{
    if (!w->o.verbose)
        return;
    printf("%8.3f ", (double)(now_ns(w) - w->t0) / 1e9);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

static void fail(world_t *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(world_t *w, const char *fmt, ...)
{
    char why[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    fail_rec_t *r = &w->fails[1 + mesh_sim_lp_current(w->sim)];
    if (r->n++ == 0) {
        r->at = now_ns(w);
        snprintf(r->first, sizeof(r->first), "t=%.3fs %s", (double)(r->at - w->t0) / 1e9, why);
    }
    if (w->o.verbose)
        printf("INVARIANT VIOLATED at %.3f s: %s\n", (double)(now_ns(w) - w->t0) / 1e9, why);
}

/* The run's violations so far: read between runs (the records are written during windows). */
static int failures(const world_t *w)
{
    int n = 0;
    for (size_t k = 0; k < sizeof(w->fails) / sizeof(w->fails[0]); k++)
        n += w->fails[k].n;
    return n;
}

/* The run's first violation: the earliest of the processes' first ones (the serial queue's
 * first at an instant: it runs before the processes' events then), "" when none. */
static const char *first_failure(const world_t *w)
{
    const fail_rec_t *f = NULL;
    for (size_t k = 0; k < sizeof(w->fails) / sizeof(w->fails[0]); k++)
        if (w->fails[k].n && (!f || w->fails[k].at < f->at))
            f = &w->fails[k];
    return f ? f->first : "";
}

static void at(world_t *w, uint64_t delay_ns, void (*fn)(void *), void *arg)
{
    if (mesh_sim_call_at(w->sim, now_ns(w) + delay_ns, fn, arg) < 0)
        abort();
}

/* ---- calls through the proxies ----------------------------------------------------------- *
 *
 * Each running proxy issues calls at a steady rate (--call-rate per second, from 10 s on), on
 * its own host, the way its workers would route them:
 *   1. the production circuit breaker of the service (policy/breaker.h, one per proxy, the
 *      production defaults of pol_breaker_config_default) admits the call or rejects it
 *      (UNAVAILABLE, "circuit open");
 *   2. the production balancer (transport/balancer.h) picks an instance of the proxy's current
 *      table: round robin over the instances that serve the method, are not backing off
 *      after a failed connect and are not ejected as outliers (transport/outlier.h, the
 *      production defaults; a call's outcome goes to its instance's outlier state; when only
 *      ejected or backing-off instances are left, they take the call); the counter starts
 *      again whenever the service's object changes, and an address no table lists any more
 *      loses its backoff and outlier history, as in the worker;
 *   3. the call is a stream connect to the instance's advertised address (the node's data plane
 *      stand-in), a request and its answer, within a 1 s deadline. A refused or reset connect
 *      marks the endpoint down and is retried once on another instance, as the proxy retries a
 *      call that provably never reached an app; a connect still pending at the deadline fails
 *      the call (DEADLINE_EXCEEDED) and counts against the endpoint at the production connect
 *      timeout (2 s). The outcome goes to the breaker (pol_breaker_done).
 * A call opens a stream of its own: the production proxy multiplexes calls over pooled
 * connections, so behind a silent cut its calls hang on an established connection (until the
 * deadline, without a backoff) where the simulator's connects time out and back off.
 *
 * Every failure is classified by its instance's node at the end of the call: crashed (not
 * running, or restarted during the call), unreachable (a cut between the proxy and the node, or
 * either of them stalled, clogged or isolated at some point during the call) or live (running
 * and reachable). A failed call to a live instance is a violation, except while the network is
 * bad (netem: long-tailed latencies can pass the deadline), where it is only counted. */

typedef enum {
    CALL_OK,
    CALL_REFUSED,
    CALL_RESET,
    CALL_DEADLINE,
    CALL_NO_INSTANCE,
    CALL_BREAKER_OPEN,
    CALL_UNAVAILABLE, /* the app answered UNAVAILABLE (the flap and allfail faults) */
    CALL_CAUSES
} call_cause_t;
static const char *const call_cause_names[] = {
    "ok", "refused", "reset", "deadline", "no instance", "breaker open", "unavailable"};

enum { CALL_CONNECTING, CALL_SENT };

typedef struct call {
    caller_t *c;
    struct call *prev, *next; /* in flight, or next in the free list */
    mesh_stream_t *st;
    pol_breaker_permit_t permit;
    int has_permit;
    int state;   /* CALL_CONNECTING, CALL_SENT */
    int done;    /* the call ended; a connect may linger until its timeout */
    int retried; /* a refused connect was retried on another instance */
    int owner;   /* the node of the instance called, -1 before the pick */
    int lb_on;   /* counted in owner's load (transport/lb.h) until its end */
    uint64_t t0, deadline, connect_by;
    uint64_t lb_t0; /* when owner was picked (the latency sample's start) */
    uint64_t timer;
    int timer_on;
} call_t;

/** What one proxy's calls found. */
typedef struct call_stats {
    uint64_t calls, failed, by_cause[CALL_CAUSES];
    uint64_t to_crashed, to_unreachable, to_live, to_live_netem; /* failures, by instance */
    uint64_t to_app_error; /* answered UNAVAILABLE by the app (flap, allfail) */
    uint64_t retried, opens, closes;
    uint64_t ejected, returned, held_back; /* outlier ejection (transport/outlier.h) */
    uint64_t panic_picks; /* picks among ejected endpoints: nothing else was eligible */
} call_stats_t;

struct caller {
    pol_breaker_t br; /* first: pol_breaker_t wants 64-byte alignment */
    mnode_t *n;
    mesh_actor_t *self; /* the proxy's stand-in while it runs */
    mesh_bal_backoff_cfg_t bal;
    mesh_route_svc_t *obj; /* the service object the round robin state is for (a reference) */
    mesh_bal_rr_t rr;
    mesh_bal_backoff_t *bo; /* per node (addresses are nodes'), as the worker's endpoints */
    mesh_outlier_cfg_t olc; /* the proxy's defaults (Envoy's: 5 in a row, 30 s, 10 %) */
    mesh_outlier_t *ol;     /* per node, beside its backoff */
    mesh_lb_cfg_t lb;       /* the proxy's default balancing: P2C (transport/lb.h) */
    mesh_lb_rng_t rng;
    mesh_lb_plan_t *plan;  /* obj's plan */
    mesh_lb_ep_t *load;    /* per node, as the worker's endpoints */
    uint32_t *listed, gen; /* node k is in obj when listed[k] == gen */
    call_t inflight;       /* list head */
    call_t *free_calls;
    call_stats_t st;
    uint64_t ok_streak; /* calls that succeeded since the last failure */
    /* the flap fault: calls to the flapping node that failed while it lasted; whether the
     * percent cap held its ejection back meanwhile */
    uint64_t flap_failed;
    int flap_held;
    /* the gray fault, when this proxy is the one cut off: its calls to the cut node that
     * failed meanwhile; whether the percent cap held an ejection back meanwhile */
    uint64_t gray_failed;
    int gray_held;
    /* per second of the run, by issue time: admitted calls, the failed ones, and the sum over
     * them of the share of the table's instances the proxy could not reach then and of the
     * table's size, and the calls issued while that share was not 0 */
    uint32_t *sec_calls, *sec_failed, *sec_n, *sec_exposed;
    double *sec_blind;
    size_t n_secs;
    const mesh_route_svc_t *share_obj; /* what share was computed for */
    uint64_t share_epoch, share_at;
    double share;
};

static int owner_of(const world_t *w, const char *adv);

/* Instances may have become unavailable to some proxy now (a crash, a cut, an isolation, a
 * stall or clog, a bad network): the failure-rate bound excuses the removal bound after it. */
static void instances_lost(world_t *w)
{
    if (w->n_lost == w->lost_cap) {
        w->lost_cap = w->lost_cap ? 2 * w->lost_cap : 16;
        if (!(w->lost_at = realloc(w->lost_at, w->lost_cap * sizeof(uint64_t))))
            abort();
    }
    w->lost_at[w->n_lost++] = now_ns(w);
    w->epoch++;
}

static int overlaps(uint64_t from, uint64_t until, uint64_t t0, uint64_t t1)
{
    return from && from <= t1 && until >= t0;
}

/* Whether the last cut between groups separates nodes a and b. */
static int separated(const world_t *w, int a, int b)
{
    int h = w->nn / 2;
    switch (w->cut_kind) {
    case CUT_HALVES:
        return (a >= h) != (b >= h);
    case CUT_MINORITY:
        return (a % 3 == 2) != (b % 3 == 2);
    case CUT_BRIDGE:
        return a != w->cut_bridge && b != w->cut_bridge && (a >= h) != (b >= h);
    default:
        return 0;
    }
}

enum { CLS_CRASHED, CLS_UNREACHABLE, CLS_LIVE };

/* What the instance's node was to proxy p during a call from t0 to now. */
static int call_class(world_t *w, const mnode_t *p, int o, uint64_t t0)
{
    uint64_t t1 = now_ns(w);
    const mnode_t *on = &w->n[o];
    if (!on->running || on->started_at > t0)
        return CLS_CRASHED;
    if (overlaps(p->dist_from, p->dist_until, t0, t1) ||
        overlaps(on->dist_from, on->dist_until, t0, t1) ||
        (p->i == w->gray_p && o == w->gray_o && overlaps(w->gray_from, w->gray_until, t0, t1)) ||
        (overlaps(w->cut_from, w->cut_until, t0, t1) && separated(w, p->i, o)))
        return CLS_UNREACHABLE;
    return CLS_LIVE;
}

static void on_breaker(void *ud, const pol_breaker_transition_t *t)
{
    caller_t *c = ud;
    if (t->to == POL_BREAKER_OPEN)
        c->st.opens++;
    if (t->to == POL_BREAKER_CLOSED)
        c->st.closes++;
    vlog(c->n->w, "proxy %d: circuit for %s %s -> %s: %s", c->n->i, t->service,
         pol_breaker_state_name(t->from), pol_breaker_state_name(t->to), t->reason);
}

static caller_t *caller_new(world_t *w, mnode_t *n)
{
    caller_t *c;
    if (posix_memalign((void **)&c, 64, sizeof(*c)))
        abort();
    memset(c, 0, sizeof(*c));
    c->n = n;
    pol_breaker_config_t bc;
    pol_breaker_config_default(&bc);
    if (pol_breaker_init(&c->br, SERVICE, &bc, on_breaker, c) != 0)
        abort();
    mesh_bal_backoff_cfg_fix(&c->bal); /* the proxy's defaults */
    mesh_outlier_cfg_fix(&c->olc);
    c->bo = calloc((size_t)w->nn, sizeof(*c->bo));
    c->ol = calloc((size_t)w->nn, sizeof(*c->ol));
    c->listed = calloc((size_t)w->nn, sizeof(*c->listed));
    c->n_secs = w->o.duration_s + 1;
    c->sec_calls = calloc(c->n_secs, sizeof(uint32_t));
    c->sec_failed = calloc(c->n_secs, sizeof(uint32_t));
    c->sec_blind = calloc(c->n_secs, sizeof(double));
    c->sec_n = calloc(c->n_secs, sizeof(uint32_t));
    c->sec_exposed = calloc(c->n_secs, sizeof(uint32_t));
    if (!c->bo || !c->ol || !c->listed || !c->sec_calls || !c->sec_failed || !c->sec_blind ||
        !c->sec_n || !c->sec_exposed)
        abort();
    for (int k = 0; k < w->nn; k++)
        mesh_bal_backoff_init(&c->bo[k], &c->bal);
    c->lb = (mesh_lb_cfg_t){.policy = MESH_LB_P2C};
    mesh_lb_cfg_fix(&c->lb);
    uint64_t x = w->seed ^ (0x6c62ull << 32) ^ (uint64_t)n->i; /* apart from the sim's draws */
    mesh_lb_rng_seed(&c->rng, mesh_splitmix64(&x));
    c->load = calloc((size_t)w->nn, sizeof(*c->load));
    if (!c->load)
        abort();
    c->inflight.prev = c->inflight.next = &c->inflight;
    return c;
}

static void caller_free(caller_t *c)
{
    if (!c)
        return;
    while (c->free_calls) {
        call_t *k = c->free_calls;
        c->free_calls = k->next;
        free(k);
    }
    for (call_t *k = c->inflight.next; k != &c->inflight;) {
        call_t *next = k->next;
        free(k);
        k = next;
    }
    if (c->obj)
        mesh_route_svc_unref(c->obj);
    pol_breaker_destroy(&c->br);
    mesh_lb_plan_free(c->plan);
    free(c->load);
    free(c->bo);
    free(c->ol);
    free(c->listed);
    free(c->sec_calls);
    free(c->sec_failed);
    free(c->sec_blind);
    free(c->sec_n);
    free(c->sec_exposed);
    free(c);
}

/* The balancer's plan of the service's new object (transport/lb.h), as a worker makes it on an
 * install; NULL when plain round robin is the policy. */
static void caller_plan(caller_t *c, const mesh_route_service_t *s)
{
    mesh_lb_plan_free(c->plan);
    c->plan = NULL;
    if (!s || s->n_instances == 0)
        return;
    const mesh_route_instance_t **insts = malloc(s->n_instances * sizeof(*insts));
    if (!insts)
        abort();
    for (size_t k = 0; k < s->n_instances; k++)
        insts[k] = &s->instances[k];
    if (mesh_lb_plan_needed(&c->lb, insts, s->n_instances) &&
        !(c->plan = mesh_lb_plan_new(&c->lb, insts, s->n_instances, 0)))
        abort();
    free(insts);
}

/* The service's state follows the proxy's table, as a worker's does on an install: a new
 * object gets round robin from the worker's index (0: one worker), and the endpoints of
 * addresses it no longer lists are gone, with their backoff. */
static void caller_sync(caller_t *c)
{
    world_t *w = c->n->w;
    mesh_route_svc_t *obj = c->n->table ? mesh_routes_find(c->n->table, SERVICE) : NULL;
    if (obj == c->obj)
        return;
    c->gen++;
    const mesh_route_service_t *s = obj ? mesh_route_svc_get(obj) : NULL;
    for (size_t k = 0; s && k < s->n_instances; k++) {
        int o = owner_of(w, s->instances[k].addr);
        if (o >= 0)
            c->listed[o] = c->gen;
    }
    if (c->obj) {
        const mesh_route_service_t *old = mesh_route_svc_get(c->obj);
        for (size_t k = 0; k < old->n_instances; k++) {
            int o = owner_of(w, old->instances[k].addr);
            if (o >= 0 && c->listed[o] != c->gen) {
                mesh_bal_backoff_init(&c->bo[o], &c->bal);
                mesh_outlier_init(&c->ol[o]);
            }
        }
        mesh_route_svc_unref(c->obj);
    }
    c->obj = obj ? mesh_route_svc_ref(obj) : NULL;
    mesh_bal_rr_init(&c->rr, 0);
    caller_plan(c, s);
}

typedef struct pick_ctx {
    caller_t *c;
    const mesh_route_service_t *s;
    int exclude; /* node of a refused connect (a retry), or -1 */
    uint64_t now_ms;
    int panic; /* ejected and backing-off endpoints are eligible too: no other one is */
} pick_ctx_t;

static int pick_eligible(void *ud, size_t k)
{
    const pick_ctx_t *x = ud;
    const mesh_route_instance_t *in = &x->s->instances[k];
    int o = owner_of(x->c->n->w, in->addr);
    return o >= 0 && o != x->exclude &&
           (x->panic || (mesh_bal_backoff_up(&x->c->bo[o], x->now_ms) &&
                         mesh_outlier_up(&x->c->ol[o], x->now_ms))) &&
           mesh_route_instance_serves(in, CALL_METHOD, strlen(CALL_METHOD));
}

/* What the end of a call says about its instance (transport/outlier.h), as the proxy worker
 * reports it when a call leaves its upstream: an answer is a success, a reset, a refused
 * connect or the deadline a gateway failure. The endpoint must still be in the table. */
static void outlier_report(caller_t *c, int o, int ok)
{
    world_t *w = c->n->w;
    if (o < 0 || c->listed[o] != c->gen || !c->obj)
        return;
    const mesh_route_service_t *s = mesh_route_svc_get(c->obj);
    size_t n_ejected = 0;
    if (!ok)
        for (size_t k = 0; k < s->n_instances; k++) {
            int j = owner_of(w, s->instances[k].addr);
            n_ejected += j >= 0 && mesh_outlier_is_ejected(&c->ol[j]);
        }
    int was = mesh_outlier_is_ejected(&c->ol[o]);
    uint64_t ms = 0;
    mesh_outlier_effect_t e =
        mesh_outlier_report(&c->ol[o], &c->olc, ok ? MESH_OUTLIER_SUCCESS : MESH_OUTLIER_FAILURE,
                            s->n_instances, n_ejected, now_ns(w) / MS, &ms);
    size_t cap = s->n_instances * c->olc.max_ejection_percent / 100;
    switch (e) {
    case MESH_OUTLIER_EJECTED:
        c->st.ejected++;
        vlog(w, "proxy %d: node %d ejected for %.0f s", c->n->i, o, (double)ms / 1e3);
        /* the percent cap, from the proxy's side: a new ejection never takes out the last
         * endpoint, nor more than max(1, n x percent) (a failed probe re-ejects one counted) */
        if (!was && (n_ejected + 1 >= s->n_instances || n_ejected >= (cap > 1 ? cap : 1)))
            fail(w, "proxy %d ejected node %d with %zu of %zu instances already ejected", c->n->i,
                 o, n_ejected, s->n_instances);
        break;
    case MESH_OUTLIER_RETURNED:
        c->st.returned++;
        vlog(w, "proxy %d: node %d returned after its probe", c->n->i, o);
        break;
    case MESH_OUTLIER_HELD_BACK:
        c->st.held_back++;
        if (c->n->i == w->gray_p && w->gray_until == UINT64_MAX)
            c->gray_held = 1;
        if (o == w->flap_o && w->flap_until == UINT64_MAX)
            c->flap_held = 1;
        break;
    default:
        break;
    }
    if (e != MESH_OUTLIER_NONE)
        fold(w, ((uint64_t)e << 48) ^ ((uint64_t)c->n->i << 24) ^ (uint64_t)o);
}

static int lb_healthy(void *ud, size_t k)
{
    const pick_ctx_t *x = ud;
    int o = owner_of(x->c->n->w, x->s->instances[k].addr);
    return o >= 0 && mesh_bal_backoff_up(&x->c->bo[o], x->now_ms) &&
           mesh_outlier_up(&x->c->ol[o], x->now_ms);
}

static mesh_lb_ep_t *lb_load(void *ud, size_t k)
{
    const pick_ctx_t *x = ud;
    static mesh_lb_ep_t none; /* an address no node has: never eligible */
    int o = owner_of(x->c->n->w, x->s->instances[k].addr);
    return o >= 0 ? &x->c->load[o] : &none;
}

static const mesh_lb_ops_t lb_ops = {pick_eligible, lb_healthy, lb_load};

/* One pick among the eligible instances: the service's plan (P2C), or round robin. */
static ptrdiff_t sim_pick(caller_t *c, const mesh_route_service_t *s, pick_ctx_t *x)
{
    if (!s)
        return -1;
    return c->plan ? mesh_lb_pick(c->plan, &c->lb, &c->rng, -1, now_ns(c->n->w), &lb_ops, x, NULL)
                   : mesh_bal_rr_pick(&c->rr, s->n_instances, pick_eligible, x);
}

/* The call's part on k->owner ended (ok: it answered): its load and latency sample, as the
 * worker's detach does. */
static void call_lb_done(caller_t *c, call_t *k, int ok)
{
    if (!k->lb_on)
        return;
    k->lb_on = 0;
    uint64_t now = now_ns(c->n->w);
    mesh_lb_ep_done(&c->load[k->owner], &c->lb, k->lb_t0, now, !ok, 1);
}

static void call_timer(caller_t *c, call_t *k, uint64_t at)
{
    if (k->timer_on)
        mesh_timer_stop(c->self, k->timer);
    uint64_t now = now_ns(c->n->w);
    k->timer_on =
        mesh_timer_start(c->self, at > now ? at - now : 0, 0, STANDIN_CALL_TIMER, &k->timer) == 0;
    if (!k->timer_on)
        abort();
}

/* Takes k out of flight for good: its stream closed, its timer stopped. */
static void call_free(caller_t *c, call_t *k)
{
    if (k->st)
        mesh_stream_close(c->n->io, k->st);
    k->st = NULL;
    if (k->timer_on && c->self)
        mesh_timer_stop(c->self, k->timer);
    k->timer_on = 0;
    k->prev->next = k->next;
    k->next->prev = k->prev;
    k->next = c->free_calls;
    c->free_calls = k;
}

/* The call's outcome: to the breaker, the counters and the checks. */
static void call_end(caller_t *c, call_t *k, call_cause_t cause)
{
    world_t *w = c->n->w;
    uint64_t now = now_ns(w);
    k->done = 1;
    call_lb_done(c, k, cause == CALL_OK);
    if (k->has_permit)
        pol_breaker_done(&c->br, &k->permit,
                         cause == CALL_OK ? POL_BREAKER_SUCCESS : POL_BREAKER_FAILURE, now);
    k->has_permit = 0;
    fold(w,
         ((uint64_t)c->n->i << 40) ^ ((uint64_t)cause << 32) ^ (uint64_t)(uint32_t)(k->owner + 1));
    c->st.by_cause[cause]++;
    if (cause != CALL_NO_INSTANCE && cause != CALL_BREAKER_OPEN)
        outlier_report(c, k->owner, cause == CALL_OK);
    if (cause == CALL_OK) {
        c->ok_streak++;
        return;
    }
    c->st.failed++;
    c->ok_streak = 0;
    size_t sec = (size_t)((k->t0 - w->t0) / S);
    if (sec < c->n_secs && cause != CALL_BREAKER_OPEN)
        c->sec_failed[sec]++;
    if (cause == CALL_UNAVAILABLE) { /* the app itself failed it: the flap or allfail fault */
        c->st.to_app_error++;
        if (k->owner == w->flap_o && w->flap_until == UINT64_MAX && k->t0 >= w->flap_from)
            c->flap_failed++;
        vlog(w, "proxy %d: call to node %d failed: unavailable (the app's answer)", c->n->i,
             k->owner);
        return;
    }
    if (k->owner < 0) { /* no instance: the breaker or an empty table */
        if (cause != CALL_BREAKER_OPEN)
            vlog(w, "proxy %d: call failed: %s", c->n->i, call_cause_names[cause]);
        return;
    }
    int cls = call_class(w, c->n, k->owner, k->t0);
    vlog(w, "proxy %d: call to node %d failed: %s (%s)", c->n->i, k->owner, call_cause_names[cause],
         cls == CLS_CRASHED       ? "crashed"
         : cls == CLS_UNREACHABLE ? "unreachable"
                                  : "live");
    switch (cls) {
    case CLS_CRASHED:
        c->st.to_crashed++;
        break;
    case CLS_UNREACHABLE:
        c->st.to_unreachable++;
        if (c->n->i == w->gray_p && k->owner == w->gray_o && w->gray_until == UINT64_MAX &&
            k->t0 >= w->gray_from)
            c->gray_failed++;
        break;
    default:
        c->st.to_live++;
        if (overlaps(w->netem_from, w->netem_until, k->t0, now)) {
            c->st.to_live_netem++;
            break;
        }
        fail(w, "proxy %d: a call to %s (node %d, running and reachable) failed: %s", c->n->i,
             w->n[k->owner].adv, k->owner, call_cause_names[cause]);
    }
}

static void call_on_connect(mesh_stream_t *s, int status, void *arg);

/* Picks an instance (never exclude) and connects to it, or ends the call. */
static void call_route(caller_t *c, call_t *k, int exclude)
{
    world_t *w = c->n->w;
    for (;;) {
        const mesh_route_service_t *s = c->obj ? mesh_route_svc_get(c->obj) : NULL;
        pick_ctx_t x = {.c = c, .s = s, .exclude = exclude, .now_ms = now_ns(w) / MS};
        ptrdiff_t i = sim_pick(c, s, &x);
        if (i < 0 && s) { /* only ejected or backing-off ones left: they take the call (the
                           * proxy's panic pick) */
            x.panic = 1;
            if ((i = sim_pick(c, s, &x)) >= 0)
                c->st.panic_picks++;
        }
        if (i >= 0)
            mesh_outlier_picked(&c->ol[owner_of(w, s->instances[i].addr)], &c->olc, x.now_ms);
        if (i < 0) {
            call_end(c, k, CALL_NO_INSTANCE);
            call_free(c, k);
            return;
        }
        k->owner = owner_of(w, s->instances[i].addr);
        mesh_lb_ep_start(&c->load[k->owner]);
        k->lb_on = 1;
        k->lb_t0 = now_ns(w);
        mesh_addr_t to;
        if (mesh_addr_parse(w->n[k->owner].adv, &to) == 0 &&
            mesh_connect(c->n->io, &to, call_on_connect, k, &k->st) == 0) {
            k->state = CALL_CONNECTING;
            k->connect_by = now_ns(w) + CALL_CONNECT_TIMEOUT_NS;
            call_timer(c, k, k->deadline);
            return;
        }
        k->st = NULL; /* could not even start: down for its backoff, another one once */
        call_lb_done(c, k, 0);
        mesh_bal_backoff_failed(&c->bo[k->owner], &c->bal, now_ns(w) / MS);
        if (k->retried) {
            call_end(c, k, CALL_REFUSED);
            call_free(c, k);
            return;
        }
        k->retried = 1;
        c->st.retried++;
        exclude = k->owner;
    }
}

static void call_on_read(mesh_stream_t *s, const void *data, ssize_t len, void *arg)
{
    (void)s;
    call_t *k = arg;
    caller_t *c = k->c;
    call_end(c, k,
             len <= 0                                 ? CALL_RESET
             : len >= 2 && !memcmp(data, APP_FAIL, 2) ? CALL_UNAVAILABLE
                                                      : CALL_OK);
    call_free(c, k);
}

static void call_on_connect(mesh_stream_t *s, int status, void *arg)
{
    call_t *k = arg;
    caller_t *c = k->c;
    world_t *w = c->n->w;
    k->st = s;
    if (status < 0) {
        mesh_stream_close(c->n->io, s);
        k->st = NULL;
        call_lb_done(c, k, 0);
        if (c->listed[k->owner] == c->gen) /* a retired endpoint is not marked (upstream_pool.c) */
            mesh_bal_backoff_failed(&c->bo[k->owner], &c->bal, now_ns(w) / MS);
        if (k->done) { /* the call ended at its deadline; this was its connect */
            call_free(c, k);
            return;
        }
        if (!k->retried && now_ns(w) < k->deadline) {
            k->retried = 1;
            c->st.retried++;
            call_route(c, k, k->owner);
            return;
        }
        call_end(c, k,
                 status == -ECONNREFUSED ? CALL_REFUSED
                 : status == -ETIMEDOUT  ? CALL_DEADLINE
                                         : CALL_RESET);
        call_free(c, k);
        return;
    }
    mesh_bal_backoff_connected(&c->bo[k->owner], &c->bal);
    if (k->done) {
        call_free(c, k);
        return;
    }
    k->state = CALL_SENT;
    char req[16]; /* names the proxy: the gray fault silences one proxy's calls to one node */
    int rl = snprintf(req, sizeof(req), "call%04d", c->n->i);
    if (mesh_write(c->n->io, s, req, (size_t)rl) != 0 ||
        mesh_read_start(c->n->io, s, call_on_read, k) != 0) {
        call_end(c, k, CALL_RESET);
        call_free(c, k);
    }
}

/* A call's timer: its deadline, or the end of the connect it left behind. */
static void call_on_timer(caller_t *c, uint64_t timer)
{
    world_t *w = c->n->w;
    call_t *k = c->inflight.next;
    while (k != &c->inflight && !(k->timer_on && k->timer == timer))
        k = k->next;
    if (k == &c->inflight)
        return;
    k->timer_on = 0;
    if (k->state == CALL_CONNECTING && k->done) { /* the production connect timeout */
        if (c->listed[k->owner] == c->gen)
            mesh_bal_backoff_failed(&c->bo[k->owner], &c->bal, now_ns(w) / MS);
        call_free(c, k);
        return;
    }
    call_end(c, k, CALL_DEADLINE);
    if (k->state == CALL_CONNECTING && k->connect_by > now_ns(w)) {
        call_timer(c, k, k->connect_by); /* the connect goes on, as the pool's would */
        return;
    }
    if (k->state == CALL_CONNECTING && c->listed[k->owner] == c->gen) /* its timeout is now */
        mesh_bal_backoff_failed(&c->bo[k->owner], &c->bal, now_ns(w) / MS);
    call_free(c, k);
}

/* The share of the instances of the proxy's table that it cannot reach now (crashed, cut off,
 * stalled, clogged, isolated): what blind round robin would fail. Computed again when the
 * table, the faults or the second change. */
static double unreachable_share(caller_t *c)
{
    world_t *w = c->n->w;
    uint64_t now = now_ns(w);
    if (c->share_obj == c->obj && c->share_epoch == w->epoch && now - c->share_at < S)
        return c->share;
    const mesh_route_service_t *s = c->obj ? mesh_route_svc_get(c->obj) : NULL;
    size_t u = 0;
    for (size_t k = 0; s && k < s->n_instances; k++) {
        int o = owner_of(w, s->instances[k].addr);
        u += o < 0 || call_class(w, c->n, o, now) != CLS_LIVE;
    }
    c->share = s && s->n_instances ? (double)u / (double)s->n_instances : 1;
    c->share_obj = c->obj;
    c->share_epoch = w->epoch;
    c->share_at = now;
    return c->share;
}

/* One call of proxy c, now. */
static void call_issue(caller_t *c)
{
    world_t *w = c->n->w;
    uint64_t now = now_ns(w);
    call_t *k = c->free_calls;
    if (k)
        c->free_calls = k->next;
    else if (!(k = malloc(sizeof(*k))))
        abort();
    memset(k, 0, sizeof(*k));
    k->c = c;
    k->owner = -1;
    k->t0 = now;
    k->deadline = now + CALL_DEADLINE_NS;
    k->next = &c->inflight;
    k->prev = c->inflight.prev;
    k->prev->next = k;
    c->inflight.prev = k;
    c->st.calls++;
    if (pol_breaker_allow(&c->br, now, &k->permit) != POL_BREAKER_ALLOWED) {
        call_end(c, k, CALL_BREAKER_OPEN);
        call_free(c, k);
        return;
    }
    size_t sec = (size_t)((now - w->t0) / S);
    if (sec < c->n_secs)
        c->sec_calls[sec]++;
    k->has_permit = 1;
    caller_sync(c);
    if (sec < c->n_secs) {
        double u = unreachable_share(c);
        c->sec_blind[sec] += u;
        c->sec_exposed[sec] += u > 0;
        /* no table yet (a restarted proxy): no instance is listed */
        c->sec_n[sec] += u > 0 && c->obj ? (uint32_t)mesh_route_svc_get(c->obj)->n_instances : 0;
    }
    call_route(c, k, -1);
}

/* The proxy's stand-in starts calling (at a phase of its own) or stops: calls in flight end
 * without a verdict. */
static void caller_start(caller_t *c, mesh_actor_t *self)
{
    world_t *w = c->n->w;
    c->self = self;
    for (int k = 0; k < w->nn; k++) /* a new process: no outlier history */
        mesh_outlier_init(&c->ol[k]);
    if (w->o.call_rate <= 0)
        return;
    uint64_t period = (uint64_t)(1e9 / w->o.call_rate);
    uint64_t from = w->t0 + CALLS_FROM_S * S + rnd(w, period), now = now_ns(w);
    mesh_timer_start(self, from > now ? from - now : 0, period, STANDIN_CALL_TICK, NULL);
}

static void caller_stop(caller_t *c)
{
    while (c->inflight.next != &c->inflight) {
        call_t *k = c->inflight.next;
        if (k->has_permit)
            pol_breaker_done(&c->br, &k->permit, POL_BREAKER_IGNORED, now_ns(c->n->w));
        k->has_permit = 0;
        call_free(c, k);
    }
    c->self = NULL;
}

/*
 * The failure-rate bound, once the removal bound B (printed with the run) has passed since the
 * last fault began. Blind round robin over a table in which a share u of the n instances cannot
 * answer fails u of the calls. By B, every instance the proxy cannot reach either left its table
 * (SWIM declared its node dead and the corroborating connect failed; the removal invariant checks
 * it for crashes) or stayed: the panic floor keeps it, or SWIM still sees its node alive (the
 * bridge's far half). One that stayed has been failing since the fault began: each failed connect
 * shows at the connect timeout CT (1 s, the pool's), during which it is still picked, then its
 * backoff takes it out (0.2 s doubling to 10 s). Five cycles CT + 0.2 ... CT + 3.2 s end within
 * 11.2 s < 12.4 s, B's smallest value (below 10 nodes; 18.8 s at 20 nodes, 31.6 s at 1000): after
 * B each cycle lasts at least CT + 6.4 s, so a window of W = 10 s meets at most two, and the
 * instance is eligible during at most 2 (CT + n/rate) of it (n/rate: the wait for round robin to
 * come back to it), a share f = min(1, 2 (CT rate + n) / e) of the e calls issued while some
 * instance was unreachable (the "exposed" calls: a window that meets a heal has them in part of
 * it only). With x of the u unreachable instances eligible at a time, a call fails with
 * probability x / (n - u + x), concave in x, so over the exposed calls the failed share is at
 * most g = f u / (1 - u + f u) (u as a share, averaged over them). A balancer that does not skip
 * failing endpoints fails all of u: at 20 nodes (u = 56 % in the bridge, f = 0.58) g = 42 %,
 * measured 13-21 % with the backoff and 50-57 % without it (that balancer breaks the bound in 5
 * to 10 of 10 seeds of bridge or halves at 4 to 50 nodes). At hundreds of nodes round robin comes
 * back to an instance less often than its backoff lasts (f = 1, g = u): the backoff cannot help
 * there, and the bound says only "no worse than blind". So: in every window that starts at least
 * B after the last fault began (and meets no stall, clog or isolation of the proxy itself, where
 * nothing is reachable), a proxy's admitted calls fail at most e g plus CALL_SLACK (calls in
 * flight across a heal). Rejections by an open breaker are not admitted calls: the quiet tail
 * checks the breaker.
 */
#define CALL_WINDOW_S 10
#define CALL_SLACK    5

typedef struct window {
    size_t from_s;          /* its first second */
    uint64_t calls, failed; /* admitted calls, failed ones */
    uint64_t exposed;       /* admitted calls issued while some instance was unreachable */
    double blind;           /* the sum of the unreachable shares u at their issue */
    double bound;           /* exposed calls x g */
} window_t;

/* The bound of a window; u, n and f are taken over its exposed calls (a window that meets a
 * heal has its unreachable instances in part of it only). */
static double window_bound(const world_t *w, const window_t *x, double n_sum)
{
    if (!x->exposed)
        return 0;
    double e = (double)x->exposed, u = x->blind / e, n = n_sum / e;
    double ct_calls = w->o.call_rate * (double)CALL_CONNECT_TIMEOUT_NS / 1e9;
    double f = 2 * (ct_calls + n) / e;
    f = f > 1 ? 1 : f;
    return e * f * u / (1 - u + f * u);
}

/* Checks every window of proxy c against its bound: returns the first one over it in *over
 * (and 1), and the one with the largest failed share in *most (from_s = SIZE_MAX: none). */
static int check_windows(const world_t *w, const caller_t *c, window_t *most, window_t *over)
{
    int bad = 0;
    const mnode_t *p = c->n;
    most->from_s = SIZE_MAX;
    for (size_t s0 = 0; s0 + CALL_WINDOW_S <= c->n_secs; s0++) {
        uint64_t from = w->t0 + s0 * S, to = from + CALL_WINDOW_S * S;
        int excused = overlaps(p->dist_from, p->dist_until, from, to);
        for (size_t k = 0; k < w->n_gray_blind && !excused; k++)
            excused = w->gray_blind[k].p == p->i &&
                      overlaps(w->gray_blind[k].from, w->gray_blind[k].until, from, to);
        for (size_t k = 0; k < w->n_app_faults && !excused; k++)
            excused = overlaps(w->app_faults[k].from, w->app_faults[k].until, from, to);
        for (size_t k = 0; k < w->n_lost && !excused; k++)
            excused = overlaps(w->lost_at[k], w->lost_at[k] + w->b_remove, from, to);
        if (excused)
            continue;
        window_t x = {.from_s = s0};
        double n_sum = 0;
        for (size_t i = s0; i < s0 + CALL_WINDOW_S; i++) {
            x.calls += c->sec_calls[i];
            x.failed += c->sec_failed[i];
            x.blind += c->sec_blind[i];
            x.exposed += c->sec_exposed[i];
            n_sum += (double)c->sec_n[i];
        }
        if (!x.calls)
            continue;
        x.bound = window_bound(w, &x, n_sum);
        if (most->from_s == SIZE_MAX ||
            (double)x.failed * (double)most->calls > (double)most->failed * (double)x.calls)
            *most = x;
        if (!bad && (double)x.failed > x.bound + CALL_SLACK) {
            *over = x;
            bad = 1;
        }
    }
    return bad;
}

/* The bound over every proxy; fails the run at the first window above it. */
static void check_call_windows(world_t *w)
{
    for (int p = 0; p < w->o.proxies; p++) {
        window_t most, x;
        if (check_windows(w, w->n[p].caller, &most, &x)) {
            fail(w,
                 "proxy %d failed %llu of its %llu admitted calls in the %d s from %zu s, more "
                 "than %.1f + %d (blind round robin: %.1f; removal bound %.1f s)",
                 p, (unsigned long long)x.failed, (unsigned long long)x.calls, CALL_WINDOW_S,
                 x.from_s, x.bound, CALL_SLACK, x.blind, (double)w->b_remove / 1e9);
            return;
        }
    }
}

/* The sum of every proxy's call counters. */
static void calls_total(const world_t *w, call_stats_t *t)
{
    memset(t, 0, sizeof(*t));
    for (int p = 0; p < w->o.proxies; p++) {
        const call_stats_t *s = w->n[p].caller ? &w->n[p].caller->st : NULL;
        if (!s)
            continue;
        t->calls += s->calls;
        t->failed += s->failed;
        for (int k = 0; k < CALL_CAUSES; k++)
            t->by_cause[k] += s->by_cause[k];
        t->to_crashed += s->to_crashed;
        t->to_unreachable += s->to_unreachable;
        t->to_live += s->to_live;
        t->to_live_netem += s->to_live_netem;
        t->retried += s->retried;
        t->opens += s->opens;
        t->closes += s->closes;
        t->ejected += s->ejected;
        t->returned += s->returned;
        t->held_back += s->held_back;
        t->panic_picks += s->panic_picks;
        t->to_app_error += s->to_app_error;
    }
}

/* ---- the stand-in of the node actor, and a sidecar node's data plane ----------------------
 */

/* A request (any bytes) is answered and the stream ends; a corroborating connect, which only
 * connects and closes, meets the end of its stream. During the gray fault a call from the cut
 * proxy to the cut node gets no answer at all (its stream stays open and silent: what a pooled
 * connection whose packets are dropped looks like to the proxy). */
static void dp_read(mesh_stream_t *s, const void *data, ssize_t len, void *arg)
{
    mnode_t *n = arg;
    world_t *w = n->w;
    if (len >= 8 && w->gray_until == UINT64_MAX && n->i == w->gray_o && !memcmp(data, "call", 4)) {
        const char *d = (const char *)data + 4; /* four digits, not terminated */
        int from = 0;
        for (int k = 0; k < 4; k++)
            from = from * 10 + (d[k] - '0');
        if (from == w->gray_p)
            return; /* swallowed; the proxy's deadline ends the call and closes the stream */
    }
    if (len >= 8 && !memcmp(data, "call", 4) &&
        ((w->flap_until == UINT64_MAX && n->i == w->flap_o && w->flap_bad) ||
         (w->allfail_until == UINT64_MAX && n->i % w->allfail_mod == 0))) {
        mesh_write(n->io, s, APP_FAIL, 2); /* the app's UNAVAILABLE */
        mesh_stream_close(n->io, s);
        return;
    }
    if (len > 0)
        mesh_write(n->io, s, "ok", 2);
    mesh_stream_close(n->io, s);
}

static void dp_accept(mesh_listener_t *l, mesh_stream_t *s, void *arg)
{
    (void)l;
    mnode_t *n = arg;
    if (mesh_read_start(n->io, s, dp_read, n) != 0)
        mesh_stream_close(n->io, s);
}

typedef struct standin {
    mnode_t *n;
    mesh_listener_t *dp;
} standin_t;

static int si_start(mesh_actor_t *self, void *arg)
{
    standin_t *st = mesh_state(self);
    st->n = arg;
    if (!st->n->proxy) {
        mesh_addr_t a;
        if (mesh_addr_parse(st->n->adv, &a) ||
            mesh_listen(st->n->io, &a, dp_accept, st->n, &st->dp) != 0)
            return -1;
    }
    if (st->n->caller)
        caller_start(st->n->caller, self);
    return 0;
}

static int si_message(mesh_actor_t *self, mesh_msg_t *m)
{
    standin_t *st = mesh_state(self);
    mnode_t *n = st->n;
    (void)self;
    switch (m->type) {
    case REG_MSG_ROUTES:
        if (m->ptr) {
            mesh_routes_unref(n->table);
            n->table = mesh_msg_take_ptr(m);
        }
        return 0;
    case NODE_MSG_FAIL: {
        const node_fail_t *f = mesh_msg_as(m, node_fail_t);
        fail(n->w, "node %d gave up: %s", n->i, f ? f->why : "?");
        return 0;
    }
    case STANDIN_CALL_TICK:
        if (n->caller)
            call_issue(n->caller);
        return 0;
    case STANDIN_CALL_TIMER:
        if (n->caller)
            call_on_timer(n->caller, m->corr);
        return 0;
    default:
        return 0;
    }
}

static void si_stop(mesh_actor_t *self, int reason)
{
    (void)reason;
    standin_t *st = mesh_state(self);
    if (st->dp)
        mesh_listener_close(st->n->io, st->dp);
    st->dp = NULL;
    if (st->n->caller)
        caller_stop(st->n->caller);
}

static const mesh_actor_ops_t standin_ops = {.name = "node-stand-in",
                                             .state_size = sizeof(standin_t),
                                             .on_start = si_start,
                                             .on_message = si_message,
                                             .on_stop = si_stop};

/* ---- nodes ------------------------------------------------------------------------------- */

static void observe(void *ud, const gsp_swim_t *swim, const gsp_actor_stats_t *stats)
{
    (void)stats;
    mnode_t *n = ud;
    n->swim = swim;
}

static void node_name(int i, char *buf, size_t cap)
{
    snprintf(buf, cap, "node-%d", i);
}

static void node_init(world_t *w, int i)
{
    mnode_t *n = &w->n[i];
    memset(n, 0, sizeof(*n));
    n->w = w;
    n->i = i;
    n->proxy = i < w->o.proxies;
    snprintf(n->ip, sizeof(n->ip), "10.%d.%d.%d", 1 + i / 62500, (i / 250) % 250, i % 250 + 1);
    snprintf(n->adv, sizeof(n->adv), "%s:9091", n->ip);
    n->io = mesh_simnet_host(w->net, n->ip);
    int proxy_lps = SIM_PROXY_LPS_OF(w->o.proxies);
    int lp = n->proxy ? i % proxy_lps : proxy_lps + (i - w->o.proxies) % SIM_SIDECAR_LPS;
    if (mesh_sim_host_lp(w->sim, n->io, lp) < 0)
        abort();
    if (n->proxy) {
        n->caller = caller_new(w, n);
        uint64_t x = w->seed ^ (0x736e6170ull << 20) ^ (uint64_t)i; /* apart from the sim's */
        mesh_prng_seed(&n->snap_prng, mesh_splitmix64(&x));
        n->snap_fs = sim_fs_new(&n->snap_prng);
        n->snap_layer = sim_fs_layer(n->snap_fs);
    }
    sim_link_cfg_t link = {.latency_min_ns = 1 * MS,
                           .latency_jitter_ns = 4 * MS,
                           .fail_min_ns = 1 * MS,
                           .fail_jitter_ns = 500 * MS,
                           .reset_pct = 50,
                           .node_host = n->io,
                           .etcd_host = w->etcd_io};
    sim_link_hooks_t lh = {.ud = w, .fold = fold};
    n->link = sim_etcd_link_new(w->sim, w->etcd, (uint32_t)i, &link, &lh);
    if (!n->proxy) {
        sim_app_cfg_t ac = {.package = "shop.v1",
                            .latency_min_ns = 100000,
                            .latency_jitter_ns = 2 * MS,
                            .fold = fold,
                            .ud = w};
        n->app = sim_app_new(w->sim, &ac);
    }
}

static void node_start(world_t *w, int i)
{
    mnode_t *n = &w->n[i];
    if (n->ever_started)
        mesh_config_destroy(&n->cfg);
    reg_actor_args_free(n->reg_args);
    mesh_config_init(&n->cfg);
    free(n->cfg.node);
    char name[32];
    node_name(i, name, sizeof(name));
    n->cfg.node = strdup(name);
    if (!n->proxy) {
        free(n->cfg.app);
        char app[64];
        snprintf(app, sizeof(app), "%s:50051", n->ip);
        n->cfg.app = strdup(app);
        n->cfg.health_interval_ms = HEALTH_INTERVAL_MS;
        n->cfg.health_timeout_ms = 500;
        n->cfg.ready_failures = 3;
        n->cfg.lease_ttl_ms = LEASE_TTL_MS;
    }
    mesh_simnet_host_down(w->net, n->ip, 0);
    if (mesh_sim_spawn_on(w->sim, n->io, &standin_ops, n, NULL, &n->stand_in) < 0)
        abort();
    reg_actor_cfg_t rc = {.etcd_new = sim_etcd_factory,
                          .etcd_arg = n->link,
                          .prefix = PREFIX,
                          .watch = n->proxy,
                          .snapshot_path = n->proxy ? SNAPSHOT_NAME : NULL,
                          .snapshot_fs = n->proxy ? &n->snap_layer : NULL,
                          .subscriber = n->proxy ? n->stand_in : 0};
    n->reg_args = reg_actor_args_new(&rc, NULL);
    if (!n->reg_args)
        abort();
    memset(&n->br, 0, sizeof(n->br));
    snprintf(n->br.gossip.name, sizeof(n->br.gossip.name), "%s", name);
    snprintf(n->br.gossip.bind, sizeof(n->br.gossip.bind), "%s:7946", n->ip);
    n->br.gossip.swim = w->prof;
    n->br.gossip.observe = observe;
    n->br.gossip.observe_ud = n;
    n->br.gossip.seed = mesh_sim_random(w->sim);
    for (int s = 0; s < 3 && s < w->nn; s++)
        if (s != i)
            snprintf(n->br.gossip.seeds[n->br.gossip.n_seeds++], GSP_ADDR_MAX + 1, "%s:7946",
                     w->n[s].ip);
    n->br.registry = &n->registry;
    n->br.routes = n->proxy;
    n->br.node = n->stand_in;
    snprintf(n->br.prefix, sizeof(n->br.prefix), "%s", PREFIX);
    n->children[0] = (mesh_child_spec_t){.ops = &reg_actor_ops,
                                         .arg = n->reg_args,
                                         .opts = {.mailbox = REG_ACTOR_MAILBOX},
                                         .id_out = &n->registry};
    n->children[1] = (mesh_child_spec_t){.ops = &gsp_bridge_ops, .arg = &n->br};
    size_t nc = 2;
    if (!n->proxy) {
        n->sc = (sc_args_t){.cfg = &n->cfg,
                            .node = n->stand_in,
                            .registry = &n->registry,
                            .rpc_new = sim_app_factory,
                            .rpc_arg = n->app};
        snprintf(n->sc.advertise, sizeof(n->sc.advertise), "%s", n->adv);
        n->children[2] =
            (mesh_child_spec_t){.ops = &sc_actor_ops, .arg = &n->sc, .id_out = &n->sidecar};
        nc = 3;
    }
    n->sup = (mesh_supervisor_spec_t){.name = "control-supervisor",
                                      .children = n->children,
                                      .nchildren = nc,
                                      .max_restarts = 1000,
                                      .backoff_initial_ns = 50 * MS,
                                      .backoff_max_ns = 1000 * MS};
    if (mesh_sim_spawn_on(w->sim, n->io, &mesh_supervisor_ops, &n->sup, NULL, &n->sup_id) < 0)
        abort();
    n->running = n->ever_started = 1;
    w->epoch++;
    n->crashed_at = 0;
    n->detect_measured = 0;
    n->started_at = now_ns(w);
}

/* The file layer of a process being killed: nothing it writes on the way down reaches the
 * folder (the actors' stop handlers run, a killed process's would not). */
static int dead_list(void *c, void (*fn)(void *, const char *), void *ud)
{
    (void)c, (void)fn, (void)ud;
    return -EIO;
}
static int dead_create(void *c, const char *name, int *fh)
{
    (void)c, (void)name, (void)fh;
    return -EIO;
}
static int dead_open(void *c, const char *name, int *fh, uint64_t *size)
{
    (void)c, (void)name, (void)fh, (void)size;
    return -EIO;
}
static void dead_close(void *c, int fh)
{
    (void)c, (void)fh;
}
static int dead_write(void *c, int fh, uint64_t off, const void *p, size_t n)
{
    (void)c, (void)fh, (void)off, (void)p, (void)n;
    return -EIO;
}
static int64_t dead_read(void *c, int fh, uint64_t off, void *p, size_t n)
{
    (void)c, (void)fh, (void)off, (void)p, (void)n;
    return -EIO;
}
static int dead_truncate(void *c, int fh, uint64_t size)
{
    (void)c, (void)fh, (void)size;
    return -EIO;
}
static int dead_unlink(void *c, const char *name)
{
    (void)c, (void)name;
    return -EIO;
}
static int dead_sync(void *c, int fh, int dir)
{
    (void)c, (void)fh, (void)dir;
    return -EIO;
}
static int dead_rename(void *c, const char *from, const char *to)
{
    (void)c, (void)from, (void)to;
    return -EIO;
}
static const char *dead_error(void *c)
{
    (void)c;
    return "the process is gone";
}
static const mesh_fs_ops_t dead_fs_ops = {.list = dead_list,
                                          .create = dead_create,
                                          .open = dead_open,
                                          .close = dead_close,
                                          .write = dead_write,
                                          .read = dead_read,
                                          .truncate = dead_truncate,
                                          .unlink = dead_unlink,
                                          .sync = dead_sync,
                                          .rename = dead_rename,
                                          .lock = dead_create,
                                          .error = dead_error};

/* kill -9: the processes are gone, the host refuses connections and drops datagrams. A
 * proxy's snapshot folder loses what was not synced (a crash of the host, the harder case). */
static void node_crash(world_t *w, int i)
{
    mnode_t *n = &w->n[i];
    if (!n->running)
        return;
    if (n->snap_fs)
        n->snap_layer.ops = &dead_fs_ops;
    mesh_exec_stop(w->sim, n->sup_id);
    mesh_exec_stop(w->sim, n->stand_in);
    if (n->snap_fs) {
        sim_fs_crash(n->snap_fs, 1);
        n->snap_layer = sim_fs_layer(n->snap_fs);
    }
    if (n->proxy) { /* the process's tables are gone with it */
        mesh_routes_unref(n->table);
        n->table = NULL;
    }
    mesh_simnet_host_down(w->net, n->ip, 1);
    n->running = 0;
    n->swim = NULL;
    n->crashed_at = now_ns(w);
    w->crashes++;
    instances_lost(w);
    vlog(w, "node %d crashed", i);
}

/* ---- what nodes see ---------------------------------------------------------------------- */

static int state_at(const mnode_t *obs, int of)
{
    if (!obs->running || !obs->swim)
        return -1;
    char name[32];
    node_name(of, name, sizeof(name));
    gsp_member_t m;
    return gsp_swim_find(obs->swim, name, &m) ? -1 : (int)m.state;
}

static const mesh_route_service_t *svc_of(const mnode_t *p)
{
    return p->table ? mesh_routes_service(p->table, SERVICE) : NULL;
}

/* The node whose advertised address is adv (node_init's numbering), or -1. */
static int owner_of(const world_t *w, const char *adv)
{
    unsigned long v[3];
    const char *p = adv;
    if (strncmp(p, "10.", 3))
        return -1;
    p += 3;
    for (int k = 0; k < 3; k++) {
        char *end;
        v[k] = strtoul(p, &end, 10);
        if (end == p || *end != (k < 2 ? '.' : ':'))
            return -1;
        p = end + 1;
    }
    unsigned long a = v[0], b = v[1], c = v[2];
    if (a < 1 || c < 1)
        return -1;
    long i = (long)(a - 1) * 62500 + (long)b * 250 + (long)(c - 1);
    return i < w->nn && !strcmp(w->n[i].adv, adv) ? (int)i : -1;
}

static int routes_to(const mnode_t *p, const char *adv)
{
    const mesh_route_service_t *s = svc_of(p);
    for (size_t k = 0; s && k < s->n_instances; k++)
        if (!strcmp(s->instances[k].addr, adv))
            return 1;
    return 0;
}

/* Instances of SERVICE in etcd now. */
static size_t etcd_listed(world_t *w)
{
    size_t c = 0;
    char pre[128];
    snprintf(pre, sizeof(pre), "%s/%s/", PREFIX, SERVICE);
    for (size_t k = 0; k < sim_etcd_live_count(w->etcd); k++)
        c += !strncmp(sim_etcd_live_at(w->etcd, k)->key, pre, strlen(pre));
    return c;
}

/* ---- the checker ------------------------------------------------------------------------- */

static void check_removal(world_t *w, const mnode_t *p)
{
    const mesh_route_service_t *s = svc_of(p);
    if (!s)
        return;
    uint64_t now = now_ns(w);
    if (!w->overdue)
        return; /* no crashed node is past the bound: nothing can be routed against it */
    size_t alive = 0, dead_in = 0;
    for (size_t k = 0; k < s->n_instances; k++) {
        int owner = owner_of(w, s->instances[k].addr);
        if (owner < 0)
            continue;
        const mnode_t *o = &w->n[owner];
        if (o->running)
            alive++;
        else if (o->crashed_at && now - o->crashed_at > w->b_remove) {
            dead_in++;
            if (w->o.verbose)
                printf("  proxy %d routes to crashed node %d (%s, source %d), which it sees as "
                       "state %d\n",
                       p->i, owner, s->instances[k].addr, (int)s->instances[k].source,
                       state_at(p, owner));
        }
    }
    if (!dead_in)
        return;
    /* the panic floor may keep dead instances while the live ones are fewer than half the
     * instances etcd lists */
    size_t listed = etcd_listed(w);
    if (alive * 2 >= (listed > s->n_instances ? listed : s->n_instances) + 1)
        fail(w,
             "proxy %d still routes to %zu instance(s) of nodes crashed more than %.1f s ago "
             "(%zu live instances routed, %zu listed)",
             p->i, dead_in, (double)w->b_remove / 1e9, alive, listed);
}

static void check_no_flap(world_t *w, const mnode_t *p)
{
    /* the resync window: until the next fault (faults start 40 s apart, the outage lasts 30) */
    if (!w->etcd_back_at || now_ns(w) - w->etcd_back_at > 9 * S)
        return;
    for (size_t k = 0; k < w->n_kept; k++) {
        int owner = owner_of(w, w->kept[k]);
        if (owner >= 0 && w->n[owner].running && !w->n[owner].isolated && !routes_to(p, w->kept[k]))
            fail(w, "flap: proxy %d dropped %s, in etcd and alive, while etcd came back", p->i,
                 w->kept[k]);
    }
}

/* restart-state: whether proxy p's table holds every kept instance (in etcd before the
 * outage) of a running node; *missing gets the first one it lacks. */
static int holds_kept(world_t *w, const mnode_t *p, const char **missing)
{
    for (size_t k = 0; k < w->n_kept; k++) {
        int owner = owner_of(w, w->kept[k]);
        if (owner >= 0 && w->n[owner].running && !routes_to(p, w->kept[k])) {
            *missing = w->kept[k];
            return 0;
        }
    }
    return 1;
}

/* restart-state: the proxy restarted with its folder routes every kept instance of a live node
 * within b_state of its restart, while etcd is still down; the one restarted without its folder
 * is only measured (it learns the instances from gossip). */
static void check_restart_state(world_t *w)
{
    const char *missing = NULL;
    uint64_t now = now_ns(w);
    if (w->rs_with_at && !w->rs_with_ok && w->n[w->rs_with].running) {
        if (holds_kept(w, &w->n[w->rs_with], &missing)) {
            w->rs_with_ok = now;
            if (w->n_rs < 64)
                w->rs_samples[w->n_rs++] = now - w->rs_with_at;
            vlog(w, "proxy %d routes every kept instance %.2f s after its restart with state",
                 w->rs_with, (double)(now - w->rs_with_at) / 1e9);
        } else if (now - w->rs_with_at > w->b_state) {
            w->rs_with_ok = now;
            fail(w,
                 "restart-state: proxy %d, restarted with its snapshot during the etcd outage, "
                 "does not route %s (in etcd before the outage, its node running) %.3f s after "
                 "the restart (bound %.3f s)",
                 w->rs_with, missing, (double)(now - w->rs_with_at) / 1e9,
                 (double)w->b_state / 1e9);
        }
    }
    if (w->rs_without_at && !w->rs_without_ok && w->n[w->rs_without].running &&
        holds_kept(w, &w->n[w->rs_without], &missing)) {
        w->rs_without_ok = now;
        if (w->n_rs_gossip < 64)
            w->rs_gossip_samples[w->n_rs_gossip++] = now - w->rs_without_at;
        vlog(w, "proxy %d routes every kept instance %.2f s after its restart without state",
             w->rs_without, (double)(now - w->rs_without_at) / 1e9);
    }
    if (!w->etcd_down)
        w->rs_with_at = w->rs_without_at = 0; /* etcd's view takes over: the outage checks end */
}

/* Whether every running proxy routes to exactly the running sidecar nodes. O(proxies x
 * instances) per check. */
static int routes_converged(world_t *w)
{
    size_t want = 0;
    for (int j = w->o.proxies; j < w->nn; j++)
        want += w->n[j].running;
    for (int p = 0; p < w->o.proxies; p++) {
        const mnode_t *px = &w->n[p];
        if (!px->running)
            continue;
        const mesh_route_service_t *s = svc_of(px);
        if ((s ? s->n_instances : 0) != want)
            return 0;
        for (size_t k = 0; s && k < s->n_instances; k++) {
            int owner = owner_of(w, s->instances[k].addr);
            if (owner < 0 || !w->n[owner].running)
                return 0;
        }
    }
    return 1;
}

/* Whether every running proxy sees every running node alive (the proxies stand for the
 * mesh: all n x n views would cost n^2 per check). */
static int members_converged(world_t *w)
{
    for (int p = 0; p < w->o.proxies; p++) {
        if (!w->n[p].running)
            continue;
        for (int j = 0; j < w->nn; j++)
            if (j != p && w->n[j].running && state_at(&w->n[p], j) != GSP_ST_ALIVE)
                return 0;
    }
    return 1;
}

static void check_convergence(world_t *w)
{
    uint64_t t = now_ns(w) - w->heal_at;
    if (w->conv_routes_pending && routes_converged(w)) {
        w->conv_routes_pending = 0;
        if (w->n_conv_routes < 64)
            w->conv_routes[w->n_conv_routes++] = t;
        vlog(w, "routes converged %.1f s after the heal", (double)t / 1e9);
    }
    if (w->conv_members_pending && members_converged(w)) {
        w->conv_members_pending = 0;
        if (w->n_conv_members < 64)
            w->conv_members[w->n_conv_members++] = t;
        vlog(w, "membership converged %.1f s after the heal", (double)t / 1e9);
    }
}

static void check_tick(void *arg)
{
    world_t *w = arg;
    sim_etcd_expire_leases(w->etcd, now_ns(w));
    w->overdue = 0;
    for (int i = w->o.proxies; i < w->nn && !w->overdue; i++)
        w->overdue =
            !w->n[i].running && w->n[i].crashed_at && now_ns(w) - w->n[i].crashed_at > w->b_remove;
    if (now_ns(w) - w->t0 > 20 * S)
        for (int i = 0; i < w->o.proxies; i++)
            if (w->n[i].running && !w->n[i].isolated) {
                check_removal(w, &w->n[i]);
                check_no_flap(w, &w->n[i]);
            }
    /* detection samples: a crashed node seen dead by every running node */
    for (int i = 0; i < w->nn; i++) {
        mnode_t *c = &w->n[i];
        if (!c->crashed_at || c->running || c->detect_measured)
            continue;
        int all = 1;
        for (int j = 0; j < w->nn && all; j++)
            if (w->n[j].running && !w->n[j].isolated && state_at(&w->n[j], i) < GSP_ST_DEAD)
                all = 0;
        if (all) {
            if (w->n_det < sizeof(w->det_samples) / sizeof(w->det_samples[0]))
                w->det_samples[w->n_det++] = now_ns(w) - c->crashed_at;
            c->detect_measured = 1;
        }
    }
    check_restart_state(w);
    check_convergence(w);
    at(w, 100 * MS, check_tick, w);
}

/* ---- faults ------------------------------------------------------------------------------ */

typedef enum {
    F_OUTAGE,
    F_HALVES,
    F_ISOLATE,
    F_STALL,
    F_LOSS,
    F_CHURN,
    F_MINORITY,
    F_BRIDGE,
    F_DATALOSS,
    F_ETCD_SUBSET,
    F_NETEM,
    F_CLOG,
    F_RESTART_STATE,
    F_GRAY,
    F_FLAP,
    F_ALLFAIL,
    F_THIRD,
    F_KINDS
} fault_t;
static const char *const fault_names[] = {
    "outage",        "halves", "isolate",  "stall",       "loss",  "churn",
    "minority",      "bridge", "dataloss", "etcd-subset", "netem", "clog",
    "restart-state", "gray",   "flap",     "allfail",     "third"};

static int random_sidecar(world_t *w, int running)
{
    for (int tries = 0; tries < 100; tries++) {
        int i = w->o.proxies + (int)rnd(w, (uint64_t)(w->nn - w->o.proxies));
        if (w->n[i].running == running && !w->n[i].isolated)
            return i;
    }
    return -1;
}

typedef struct fault_ctx {
    world_t *w;
    int node;
} fault_ctx_t;

static fault_ctx_t ctxs[64];
static int n_ctx;

static fault_ctx_t *ctx(world_t *w, int node)
{
    fault_ctx_t *c = &ctxs[n_ctx++ % 64];
    c->w = w;
    c->node = node;
    return c;
}

/* A fault ended: convergence is measured from now (a fault that begins meanwhile abandons
 * the measurement). */
static void healed(world_t *w)
{
    w->heal_at = now_ns(w);
    w->conv_routes_pending = w->conv_members_pending = 1;
}

static void etcd_up(void *arg)
{
    world_t *w = arg;
    sim_etcd_set_down(w->etcd, 0);
    w->etcd_down = 0;
    w->etcd_back_at = now_ns(w);
    vlog(w, "etcd back");
    healed(w);
}

static void start_new(void *arg)
{
    fault_ctx_t *c = arg;
    if (!c->w->n[c->node].running) {
        node_start(c->w, c->node);
        vlog(c->w, "node %d (re)started", c->node);
    }
}

static void crash_one(void *arg)
{
    fault_ctx_t *c = arg;
    node_crash(c->w, c->node);
}

/* etcd down for everyone 30 s: a sidecar crashes and a new one starts meanwhile. */
static void fault_outage(world_t *w)
{
    for (size_t k = 0; k < w->n_kept; k++)
        free(w->kept[k]);
    w->n_kept = 0;
    /* what must not flap when etcd comes back: live nodes' instances in etcd now */
    for (int i = w->o.proxies; i < w->nn; i++)
        if (w->n[i].running) {
            char key[256];
            reg_key_format(key, sizeof(key), PREFIX, SERVICE, w->n[i].adv);
            if (sim_etcd_get(w->etcd, key)) {
                w->kept = realloc(w->kept, (w->n_kept + 1) * sizeof(char *));
                w->kept[w->n_kept++] = strdup(w->n[i].adv);
            }
        }
    sim_etcd_set_down(w->etcd, 1);
    w->etcd_down = 1;
    w->etcd_back_at = 0;
    vlog(w, "etcd down for 30 s");
    int victim = random_sidecar(w, 1), fresh = random_sidecar(w, 0);
    if (victim >= 0)
        at(w, 5 * S, crash_one, ctx(w, victim));
    if (fresh >= 0)
        at(w, 8 * S, start_new, ctx(w, fresh));
    at(w, 30 * S, etcd_up, w);
}

static void check_state_now(void *arg)
{
    world_t *w = arg;
    if (w->rs_with_at && !w->rs_with_ok)
        check_restart_state(w); /* past b_state: holds every kept instance, or fails */
}

static void proxy_restart(void *arg)
{
    fault_ctx_t *c = arg;
    world_t *w = c->w;
    if (w->n[c->node].running || !w->etcd_down)
        return;
    node_start(w, c->node);
    if (c->node == w->rs_with) {
        w->rs_with_at = now_ns(w), w->rs_with_ok = 0;
        at(w, w->b_state + 1, check_state_now, w);
    } else
        w->rs_without_at = now_ns(w), w->rs_without_ok = 0;
    vlog(w, "proxy %d restarted %s its snapshot folder", c->node,
         c->node == w->rs_with ? "with" : "without");
}

static void proxy_crash(void *arg)
{
    fault_ctx_t *c = arg;
    world_t *w = c->w;
    node_crash(w, c->node);
    if (c->node != w->rs_with) { /* the folder is lost with the machine: a fresh one */
        sim_fs_delete(w->n[c->node].snap_fs);
        w->n[c->node].snap_fs = sim_fs_new(&w->n[c->node].snap_prng);
        w->n[c->node].snap_layer = sim_fs_layer(w->n[c->node].snap_fs);
    }
    at(w, 1 * S, proxy_restart, c);
}

/* The etcd outage (above) with a proxy crashing 12 s in (losing what its snapshot folder had
 * not synced) and restarting 1 s later with its folder: it must route from the snapshot at
 * once. With two proxies or more, another one crashes at the same time and restarts without
 * its folder (gossip only), for contrast. */
static void fault_restart_state(world_t *w)
{
    fault_outage(w);
    w->rs_with = (int)rnd(w, (uint64_t)w->o.proxies);
    w->rs_without = w->o.proxies > 1 ? (w->rs_with + 1) % w->o.proxies : -1;
    w->rs_with_at = w->rs_without_at = 0;
    at(w, 12 * S, proxy_crash, ctx(w, w->rs_with));
    /* a rolling restart: the second proxy goes 4 s later. Both at once, while the only other
     * seed is the sidecar the outage crashed, leaves each restarted proxy joined to the other
     * fresh one: it hears of deaths older than its restart only at its next push-pull (30 s),
     * past the removal bound (docs/partitions.md, "What the simulator found") */
    if (w->rs_without >= 0)
        at(w, 16 * S, proxy_crash, ctx(w, w->rs_without));
}

static void heal(void *arg)
{
    world_t *w = arg;
    mesh_simnet_heal(w->net);
    mesh_simnet_opts_t o;
    mesh_simnet_options(w->net, &o);
    if (w->netem_on)
        o = w->netem_saved;
    w->netem_on = 0;
    o.loss = 0;
    mesh_simnet_configure(w->net, &o);
    if (w->netem_until == UINT64_MAX)
        w->netem_until = now_ns(w);
    if (w->cut_until == UINT64_MAX)
        w->cut_until = now_ns(w);
    for (int i = 0; i < w->nn; i++) {
        if (w->n[i].isolated) {
            sim_etcd_set_partitioned(w->etcd, (uint32_t)i, 0);
            w->n[i].dist_until = now_ns(w);
        }
        w->n[i].isolated = 0;
    }
    for (int i = 0; i < w->nn; i++)
        if (w->n[i].etcd_cut) {
            sim_etcd_set_partitioned(w->etcd, (uint32_t)i, 0);
            w->n[i].etcd_cut = 0;
        }
    w->epoch++;
    vlog(w, "network healed");
    healed(w);
}

/* A cut between groups of nodes begins (until the heal). */
static void cut_begins(world_t *w, int kind, int bridge)
{
    w->cut_kind = kind;
    w->cut_bridge = bridge;
    w->cut_from = now_ns(w);
    w->cut_until = UINT64_MAX;
    instances_lost(w);
}

static void fault_halves(world_t *w)
{
    const char **ips = malloc((size_t)w->nn * sizeof(char *));
    size_t k = 0;
    for (int i = w->nn / 2; i < w->nn; i++)
        ips[k++] = w->n[i].ip;
    mesh_simnet_partition(w->net, ips, k, 1);
    free(ips);
    cut_begins(w, CUT_HALVES, -1);
    vlog(w, "gossip network split in halves for 30 s");
    at(w, 30 * S, heal, w);
}

static void fault_isolate(world_t *w)
{
    int i = (int)rnd(w, (uint64_t)w->nn);
    const char *ip = w->n[i].ip;
    mesh_simnet_partition(w->net, &ip, 1, 7);
    sim_etcd_set_partitioned(w->etcd, (uint32_t)i, 1);
    w->n[i].isolated = 1;
    w->n[i].dist_from = now_ns(w);
    w->n[i].dist_until = UINT64_MAX;
    instances_lost(w);
    vlog(w, "node %d isolated from everyone (gossip and etcd) for 20 s", i);
    at(w, 20 * S, heal, w);
}

static void fault_stall(world_t *w)
{
    int i = (int)rnd(w, (uint64_t)w->nn);
    if (!w->n[i].running)
        return;
    mesh_simnet_stall(w->net, w->n[i].ip, 3 * S);
    w->n[i].dist_from = now_ns(w);
    w->n[i].dist_until = now_ns(w) + 3 * S;
    instances_lost(w);
    vlog(w, "node %d's loop stalls 3 s", i);
}

static void fault_loss(world_t *w)
{
    mesh_simnet_opts_t o;
    mesh_simnet_options(w->net, &o);
    o.loss = 0.05 + 0.05 * (double)rnd(w, 4); /* 5 to 20 % */
    mesh_simnet_configure(w->net, &o);
    vlog(w, "%.0f %% datagram loss for 30 s", o.loss * 100);
    at(w, 30 * S, heal, w);
}

static void fault_churn(world_t *w)
{
    int victim = random_sidecar(w, 1);
    if (victim < 0)
        return;
    node_crash(w, victim);
    at(w, 15 * S, start_new, ctx(w, victim));
}

/* A third of the nodes cut off from the other two thirds (majority / minority). */
static void fault_minority(world_t *w)
{
    const char **ips = malloc((size_t)w->nn * sizeof(char *));
    size_t k = 0;
    for (int i = 0; i < w->nn; i++)
        if (i % 3 == 2)
            ips[k++] = w->n[i].ip;
    mesh_simnet_partition(w->net, ips, k, 1);
    free(ips);
    cut_begins(w, CUT_MINORITY, -1);
    vlog(w, "a third of the nodes cut off from the rest for 30 s");
    at(w, 30 * S, heal, w);
}

/* Halves that cannot reach each other, except through one node that reaches both (a bridge:
 * SWIM's indirect probes through it must keep both sides alive, or at least converge after). */
static void fault_bridge(world_t *w)
{
    if (w->nn > 200) { /* pair blocks are O(n^2): halves instead at this size */
        fault_halves(w);
        return;
    }
    int bridge = (int)rnd(w, (uint64_t)w->nn);
    mesh_addr_t a, b;
    for (int i = 0; i < w->nn / 2; i++)
        for (int j = w->nn / 2; j < w->nn; j++) {
            if (i == bridge || j == bridge)
                continue;
            mesh_addr_parse(w->n[i].adv, &a);
            mesh_addr_parse(w->n[j].adv, &b);
            mesh_simnet_block(w->net, &a, &b, 1);
        }
    cut_begins(w, CUT_BRIDGE, bridge);
    vlog(w, "halves cut except through node %d (a bridge) for 30 s", bridge);
    at(w, 30 * S, heal, w);
}

static void restore_etcd(void *arg)
{
    world_t *w = arg;
    if (sim_etcd_restore(w->etcd) == 0)
        vlog(w, "etcd lost its data: back to the backup of 20 s ago");
}

/* etcd loses its data: back to a backup taken 20 s earlier (sidecars must repair their keys).
 */
static void fault_dataloss(world_t *w)
{
    sim_etcd_backup(w->etcd);
    vlog(w, "etcd backup taken");
    int victim = random_sidecar(w, 1);
    if (victim >= 0) /* a change the restore will undo */
        at(w, 5 * S, crash_one, ctx(w, victim));
    at(w, 20 * S, restore_etcd, w);
    if (victim >= 0)
        at(w, 25 * S, start_new, ctx(w, victim));
}

/* etcd cut off from a third of the nodes (proxies among them) for 30 s, with a crash meanwhile:
 * those nodes route from their last etcd view and gossip, the others from etcd. */
static void fault_etcd_subset(world_t *w)
{
    for (int i = 0; i < w->nn; i++)
        if (i % 3 == 1) {
            sim_etcd_set_partitioned(w->etcd, (uint32_t)i, 1);
            w->n[i].etcd_cut = 1;
        }
    vlog(w, "etcd cut off from a third of the nodes for 30 s");
    int victim = random_sidecar(w, 1);
    if (victim >= 0)
        at(w, 5 * S, crash_one, ctx(w, victim));
    at(w, 30 * S, heal, w);
    if (victim >= 0)
        at(w, 35 * S, start_new, ctx(w, victim));
}

/* A bad network for 30 s: 10 % duplicates, 10 % reordered by up to 200 ms, latencies with a
 * Pareto tail (capped at 1.5 s): no false death may come of it. */
static void fault_netem(world_t *w)
{
    mesh_simnet_opts_t o;
    mesh_simnet_options(w->net, &o);
    w->netem_saved = o;
    o.duplicate = 0.10;
    o.reorder = 0.10;
    o.reorder_delay_ns = 200 * MS;
    o.latency_dist = MESH_SIMNET_PARETO;
    o.latency_shape = 1.5;
    o.latency_cap_ns = 1500 * MS;
    mesh_simnet_configure(w->net, &o);
    w->netem_on = 1;
    w->netem_from = now_ns(w);
    w->netem_until = UINT64_MAX;
    instances_lost(w);
    vlog(w, "duplicates, reordering and long-tailed latency for 30 s");
    at(w, 30 * S, heal, w);
}

/* One node's links clogged (packets held, its loop running) for 2-4 s. */
static void fault_clog(world_t *w)
{
    int i = (int)rnd(w, (uint64_t)w->nn);
    uint64_t d = 2 * S + rnd(w, 2 * S);
    mesh_simnet_clog(w->net, w->n[i].ip, d, MESH_SIMNET_CLOG_BOTH);
    w->n[i].dist_from = now_ns(w);
    w->n[i].dist_until = now_ns(w) + d;
    instances_lost(w);
    vlog(w, "node %d's links clogged for %.1f s", i, (double)d / 1e9);
}

/* The gray failure (issue 16's): one proxy's calls to one sidecar node go unanswered for
 * GRAY_S, as on the production proxy's pooled connection whose packets are silently dropped:
 * connects succeed (no connect failure, so no backoff) and requests vanish. Everyone else,
 * gossip and etcd included, reaches the node, so it rightly stays in the proxy's table: only
 * the proxy's own outlier ejection (transport/outlier.h) keeps calls away from it. */
#define GRAY_S 30

static void gray_heal(void *arg);

static void fault_gray(world_t *w)
{
    int p = (int)rnd(w, (uint64_t)w->o.proxies), o = random_sidecar(w, 1);
    if (o < 0 || !w->n[p].running || !w->n[p].caller)
        return;
    const mesh_route_service_t *s = svc_of(&w->n[p]);
    w->gray_p = p;
    w->gray_o = o;
    w->gray_from = now_ns(w);
    w->gray_until = UINT64_MAX;
    w->n[p].caller->gray_failed = 0;
    w->n[p].caller->gray_held = 0;
    w->gray_n = s ? s->n_instances : 0;
    instances_lost(w);
    vlog(w, "proxy %d's calls to node %d go unanswered (others reach it) for %d s", p, o, GRAY_S);
    at(w, GRAY_S * S, gray_heal, w);
}

/*
 * The gray bound: calls from the proxy to the cut node that fail during the cut. A call fails
 * at its deadline D, so the first `consecutive` failures are known D after the last of them was
 * sent, and the calls round robin sent there meanwhile fail too: at most rate D / (n / 2) + 1
 * of them (n / 2: a generous floor on the instances round robin takes turns over). Then the
 * node is out; each time its ejection ends, one probe call fails (at most GRAY_S / base + 1 of
 * them). Only calls sent and failed during the cut count, so no slack is needed for a heal. The
 * bound holds unless the percent cap held the ejection back (other endpoints were still out).
 * Blind round robin fails rate GRAY_S / n calls (33 at 20 nodes), far above this bound (10 at
 * 20 nodes): the check fails without ejection.
 */
static void gray_heal(void *arg)
{
    world_t *w = arg;
    int p = w->gray_p, o = w->gray_o;
    w->gray_until = now_ns(w);
    w->epoch++;
    const caller_t *c = w->n[p].caller;
    uint64_t failed = c->gray_failed;
    int held = c->gray_held;
    double d = (double)CALL_DEADLINE_NS / 1e9, n = (double)(w->gray_n > 2 ? w->gray_n : 2);
    uint64_t bound = c->olc.consecutive + (uint64_t)(w->o.call_rate * d * 2 / n) + 1 +
                     GRAY_S * 1000 / c->olc.base_ejection_ms + 1;
    vlog(w,
         "proxy %d and node %d reach each other again: %llu calls failed meanwhile (bound "
         "%llu%s)",
         p, o, (unsigned long long)failed, (unsigned long long)bound,
         held ? ", not applicable: the percent cap held an ejection back" : "");
    w->gray_episodes++;
    if (held && w->n_gray_blind < 64) {
        w->gray_blind[w->n_gray_blind].p = p;
        w->gray_blind[w->n_gray_blind].from = w->gray_from;
        w->gray_blind[w->n_gray_blind++].until = now_ns(w);
    }
    if (failed > w->gray_failed_max)
        w->gray_failed_max = failed;
    if (!held && w->gray_n >= 3 && w->n[p].running && failed > bound)
        fail(w, "proxy %d failed %llu calls to node %d during its %d s gray cut (bound %llu)", p,
             (unsigned long long)failed, o, GRAY_S, (unsigned long long)bound);
    healed(w);
}

/* An app fault (flap, allfail) begins: windows meeting it are excused from the failure-rate
 * bound (it is about unreachable instances; these faults have their own checks). */
static size_t app_fault_begin(world_t *w)
{
    size_t k = w->n_app_faults < 64 ? w->n_app_faults++ : 63;
    w->app_faults[k].from = now_ns(w);
    w->app_faults[k].until = UINT64_MAX;
    return k;
}

/*
 * The flapping instance (issue 16's): one sidecar node's app fails every call with UNAVAILABLE
 * in bad phases of FLAP_BAD_MIN_MS..+FLAP_VAR_MS, answering normally in good phases of
 * FLAP_GOOD_MIN_MS..+FLAP_VAR_MS, for FLAP_S. The node stays alive, registered and reachable:
 * only the proxies' outlier ejection keeps calls away from it, and its growing ejection time
 * keeps a flapping instance from costing the same failures again at every bad phase.
 */
#define FLAP_S           30
#define FLAP_BAD_MIN_MS  2000
#define FLAP_GOOD_MIN_MS 1000
#define FLAP_VAR_MS      2000

static size_t flap_slot;
static void flap_phase(void *arg);

static void fault_flap(world_t *w)
{
    int o = random_sidecar(w, 1);
    if (o < 0)
        return;
    w->flap_o = o;
    w->flap_from = now_ns(w);
    w->flap_until = UINT64_MAX;
    w->flap_bad = 0;
    w->flap_phases = 0;
    for (int p = 0; p < w->o.proxies; p++)
        if (w->n[p].caller)
            w->n[p].caller->flap_failed = 0, w->n[p].caller->flap_held = 0;
    flap_slot = app_fault_begin(w);
    vlog(w, "node %d's app flaps (fails every call in its bad phases) for %d s", o, FLAP_S);
    flap_phase(w);
}

/*
 * The flap bound, per proxy: calls to the flapping node that failed while it flapped. In a bad
 * phase every call to the node fails, so its failures there are in a row: either fewer than
 * `consecutive` (no ejection; a good phase's success starts the count over) or `consecutive`,
 * which eject it, plus the calls sent before the last of them was answered (at most the proxy's
 * rate x 50 ms + 1: a failure is answered within a round trip). Each ejection lasts at least
 * base_ejection_ms, so at most 1 + FLAP_S / base bad phases eject, and each ejection's end may
 * cost one failed probe. So: failed <= phases x (consecutive - 1) + ejecting x (1 + in flight +
 * 1 probe). It holds unless the percent cap held the ejection back (then the check is reported
 * as not applicable). A balancer that ignores failures fails every call sent to the node in a
 * bad phase: about half of its share of FLAP_S x rate (about 190 at 8 nodes and 100 calls per
 * second; bound about 40, measured about 20: the default P2C also shies away from an endpoint
 * that just failed, so short bad phases cost 3 or 4 calls each and often eject nothing).
 */
static void flap_heal(world_t *w)
{
    int o = w->flap_o;
    w->flap_until = now_ns(w);
    w->app_faults[flap_slot].until = now_ns(w);
    w->flap_episodes++;
    for (int p = 0; p < w->o.proxies; p++) {
        caller_t *c = w->n[p].caller;
        const mesh_route_service_t *s = svc_of(&w->n[p]);
        if (!c || !s || !w->n[p].running || w->n[p].started_at > w->flap_from)
            continue;
        if (c->flap_failed > w->flap_failed_max)
            w->flap_failed_max = c->flap_failed;
        uint64_t ejecting = 1 + FLAP_S * 1000 / c->olc.base_ejection_ms;
        uint64_t bound = w->flap_phases * (c->olc.consecutive - 1) +
                         ejecting * (1 + (uint64_t)(w->o.call_rate * 0.05) + 1 + 1);
        vlog(w, "node %d stops flapping: proxy %d failed %llu calls to it meanwhile (bound %llu%s)",
             o, p, (unsigned long long)c->flap_failed, (unsigned long long)bound,
             c->flap_held ? ", not applicable: the percent cap held an ejection back" : "");
        if (c->flap_held)
            continue;
        w->flap_checked++;
        if (c->flap_failed > bound)
            fail(w, "proxy %d failed %llu calls to flapping node %d in %d s (bound %llu)", p,
                 (unsigned long long)c->flap_failed, o, FLAP_S, (unsigned long long)bound);
    }
    healed(w);
}

static void flap_phase(void *arg)
{
    world_t *w = arg;
    if (w->flap_until != UINT64_MAX)
        return;
    if (now_ns(w) >= w->flap_from + FLAP_S * S) {
        w->flap_bad = 0;
        flap_heal(w);
        return;
    }
    w->flap_bad = !w->flap_bad;
    w->flap_phases += w->flap_bad;
    uint64_t ms = (w->flap_bad ? FLAP_BAD_MIN_MS : FLAP_GOOD_MIN_MS) + rnd(w, FLAP_VAR_MS + 1);
    uint64_t left = w->flap_from + FLAP_S * S - now_ns(w);
    at(w, ms * MS < left ? ms * MS : left, flap_phase, w);
}

/* Every app fails every call for ALLFAIL_S (allfail: a bad deploy everywhere, a shared
 * dependency down; the proxies' circuit breakers open before any endpoint reaches its
 * consecutive failures), or a third of them do (third: a bad deploy to a third of the
 * instances; the proxies eject up to their max ejection percent and no further, checked at
 * each ejection). Everything returns afterwards (the quiet tail). */
#define ALLFAIL_S 10

static size_t allfail_slot;

static void allfail_heal(void *arg)
{
    world_t *w = arg;
    w->allfail_until = now_ns(w);
    w->app_faults[allfail_slot].until = now_ns(w);
    vlog(w, "the apps answer again");
    healed(w);
}

static void fault_allfail(world_t *w, int mod)
{
    w->allfail_mod = mod;
    w->allfail_from = now_ns(w);
    w->allfail_until = UINT64_MAX;
    allfail_slot = app_fault_begin(w);
    vlog(w, "%s fails every call for %d s", mod == 1 ? "every app" : "a third of the apps",
         ALLFAIL_S);
    at(w, ALLFAIL_S * S, allfail_heal, w);
}

static void do_fault(world_t *w, fault_t f)
{
    w->conv_routes_pending = w->conv_members_pending = 0; /* a new fault: not a convergence */
    switch (f) {
    case F_ETCD_SUBSET:
        fault_etcd_subset(w);
        break;
    case F_NETEM:
        fault_netem(w);
        break;
    case F_CLOG:
        fault_clog(w);
        break;
    case F_OUTAGE:
        fault_outage(w);
        break;
    case F_HALVES:
        fault_halves(w);
        break;
    case F_ISOLATE:
        fault_isolate(w);
        break;
    case F_STALL:
        fault_stall(w);
        break;
    case F_LOSS:
        fault_loss(w);
        break;
    case F_MINORITY:
        fault_minority(w);
        break;
    case F_BRIDGE:
        fault_bridge(w);
        break;
    case F_DATALOSS:
        fault_dataloss(w);
        break;
    case F_RESTART_STATE:
        fault_restart_state(w);
        break;
    case F_GRAY:
        fault_gray(w);
        break;
    case F_FLAP:
        fault_flap(w);
        break;
    case F_ALLFAIL:
        fault_allfail(w, 1);
        break;
    case F_THIRD:
        fault_allfail(w, 3);
        break;
    default:
        fault_churn(w);
        break;
    }
}

typedef struct plan {
    world_t *w;
    fault_t f;
} plan_t;

static plan_t plans[64];

static void run_fault(void *arg)
{
    plan_t *p = arg;
    do_fault(p->w, p->f);
}

/* ---- one run ----------------------------------------------------------------------------- */

static void final_checks(world_t *w)
{
    for (int i = 0; i < w->nn; i++) {
        if (!w->n[i].running)
            continue;
        for (int j = 0; j < w->nn; j++)
            if (j != i && w->n[j].running && state_at(&w->n[i], j) != GSP_ST_ALIVE) {
                fail(w, "after the quiet tail node %d sees running node %d as %d (not alive)", i, j,
                     state_at(&w->n[i], j));
                return;
            }
    }
    for (int p = 0; p < w->o.proxies; p++) {
        const mnode_t *px = &w->n[p];
        const mesh_route_service_t *s = svc_of(px);
        size_t want = 0;
        for (int j = w->o.proxies; j < w->nn; j++)
            if (w->n[j].running) {
                want++;
                if (!routes_to(px, w->n[j].adv)) {
                    fail(w, "after the quiet tail proxy %d does not route to running node %d", p,
                         j);
                    return;
                }
            }
        if (s && s->n_instances != want) {
            fail(w, "after the quiet tail proxy %d routes to %zu instances, %zu nodes run", p,
                 s->n_instances, want);
            return;
        }
        if (etcd_listed(w) != want) {
            fail(w, "after the quiet tail etcd lists %zu instances, %zu nodes run", etcd_listed(w),
                 want);
            return;
        }
    }
    /* calls: the last ones of every proxy all succeeded (QUIET_CALLS, or 10 s worth at a low
     * rate), and every breaker is closed */
    uint64_t quiet = (uint64_t)(w->o.call_rate * 10);
    if (quiet > QUIET_CALLS)
        quiet = QUIET_CALLS;
    for (int p = 0; p < w->o.proxies && quiet; p++) {
        caller_t *c = w->n[p].caller;
        pol_breaker_state_t bs = pol_breaker_poll(&c->br, now_ns(w));
        if (c->ok_streak < quiet || bs != POL_BREAKER_CLOSED) {
            fail(w,
                 "after the quiet tail proxy %d's last %llu calls did not all succeed (%llu did "
                 "since its last failure) or its breaker is not closed (%s)",
                 p, (unsigned long long)quiet, (unsigned long long)c->ok_streak,
                 pol_breaker_state_name(bs));
            return;
        }
    }
    /* outlier ejection: no endpoint of a running node stays out past its ejection time plus
     * the wait for its probe (round robin coming round to it, then the probe's deadline) */
    for (int p = 0; p < w->o.proxies; p++) {
        caller_t *c = w->n[p].caller;
        const mesh_route_service_t *s = svc_of(&w->n[p]);
        if (!c || !s || !w->n[p].running || w->o.call_rate <= 0)
            continue;
        uint64_t now_ms = now_ns(w) / MS;
        uint64_t wait_ms =
            (uint64_t)(2e3 * (double)s->n_instances / w->o.call_rate) + CALL_DEADLINE_NS / MS;
        for (int j = w->o.proxies; j < w->nn; j++) {
            const mesh_outlier_t *ol = &c->ol[j];
            if (w->n[j].running && c->listed[j] == c->gen && ol->ejected &&
                now_ms > ol->ejected_until_ms + wait_ms && now_ms > ol->probe_until_ms) {
                fail(w,
                     "after the quiet tail proxy %d still ejects running node %d (%.1f s past "
                     "its ejection time, no probe in flight)",
                     p, j, (double)(now_ms - ol->ejected_until_ms) / 1e3);
                return;
            }
        }
    }
    check_call_windows(w);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static long rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static void run_one(void *ud, uint64_t seed, int tally, sim_outcome_t *out)
{
    const opts_t *o = ud;
    world_t *w = calloc(1, sizeof(*w));
    if (!w)
        abort();
    memset(out, 0, sizeof(*out));
    w->o = *o;
    w->seed = seed;
    w->nn = o->nodes;
    w->trace = 0xcbf29ce484222325ull;
    w->gray_p = w->gray_o = -1;
    w->flap_o = -1;
    w->allfail_mod = 1;
    w->n = calloc((size_t)w->nn, sizeof(mnode_t));
    w->sim = mesh_sim_new_lp(seed, SIM_LPS_OF(o->proxies));
    if (!w->sim || mesh_sim_set_threads(w->sim, tally ? o->threads : o->replay_threads) < 0)
        abort();
    w->net = mesh_sim_net(w->sim);
    w->etcd = sim_etcd_new(PREFIX "/", seed);
    mesh_simnet_opts_t no = {.latency_min_ns = LINK_LATENCY_MIN_NS, .latency_jitter_ns = 1 * MS};
    mesh_simnet_configure(w->net, &no);
    w->etcd_io = mesh_simnet_host(w->net, ETCD_IP);
    if (!w->etcd_io || mesh_sim_host_lp(w->sim, w->etcd_io, SIM_LPS_OF(o->proxies) - 1) < 0)
        abort();
    gsp_swim_profile("lan", &w->prof);
    /* bounds from the timers: detection (a probe round of at most 8 probers' intervals, the
     * longest suspicion, dissemination), then a corroborating connect (1 s) and a rebuild */
    double l = 1;
    for (double x = w->nn; x >= 10; x /= 10)
        l += 1;
    uint64_t susp_max = (uint64_t)(w->prof.suspicion_mult * l * (double)w->prof.probe_interval_ns) *
                        w->prof.suspicion_max_mult;
    w->b_detect =
        10 * w->prof.probe_interval_ns + susp_max + (uint64_t)(l * 8) * w->prof.gossip_interval_ns;
    w->b_remove = w->b_detect + 2 * S;
    /* restart with state: the view loads the snapshot and publishes at its start, before any
     * datagram or etcd call; gossip needs at least a round trip. So the table must be whole
     * before the least round trip has passed: faster than anything gossip could bring. */
    w->b_state = 2 * LINK_LATENCY_MIN_NS - 1;
    clock_t c0 = clock();
    struct timespec wall0, wall1;
    clock_gettime(CLOCK_MONOTONIC, &wall0);
    w->t0 = now_ns(w);
    w->t_end = w->t0 + o->duration_s * S;
    w->quiet_at = w->t_end - (w->prof.reconnect_interval_ns + 30 * S);
    for (int i = 0; i < w->nn; i++)
        node_init(w, i);
    /* a tenth of the sidecar slots start later (new nodes during faults) */
    for (int i = 0; i < w->nn; i++)
        if (w->n[i].proxy || i % 10 != 9)
            node_start(w, i);
    at(w, 100 * MS, check_tick, w);
    /* faults: one every 40 s from t=30 s, ending before the quiet tail */
    int k = 0;
    for (uint64_t t = 30 * S; w->t0 + t + 40 * S < w->quiet_at && k < 64; t += 40 * S, k++) {
        fault_t f = F_KINDS;
        for (int x = 0; x < F_KINDS; x++)
            if (!strcmp(o->scenario, fault_names[x]))
                f = (fault_t)x;
        if (f == F_KINDS)
            f = (fault_t)rnd(w, F_KINDS);
        plans[k] = (plan_t){w, f};
        if (mesh_sim_call_at(w->sim, w->t0 + t, run_fault, &plans[k]) < 0)
            abort();
    }
    if (o->verbose)
        printf("%d nodes (%d proxies), %llu s; bounds: detection %.1f s, removal %.1f s; calls: "
               "%g per second per proxy from %d s, deadline %.1f s, connect timeout %.1f s, "
               "failed share after the removal bound at most f u / (1 - u + f u) + %d calls per "
               "%d s\n",
               w->nn, o->proxies, (unsigned long long)o->duration_s, (double)w->b_detect / 1e9,
               (double)w->b_remove / 1e9, o->call_rate, CALLS_FROM_S,
               (double)CALL_DEADLINE_NS / 1e9, (double)CALL_CONNECT_TIMEOUT_NS / 1e9, CALL_SLACK,
               CALL_WINDOW_S);
    /* --check-prefix-s: the hash the determinism check compares is the one at the prefix's
     * end, and a replay (not tallied) stops there */
    uint64_t prefix_end = o->check_prefix_s ? w->t0 + o->check_prefix_s * S : 0, prefix_hash = 0;
    int replay_cut = 0;
    while (now_ns(w) < w->t_end && (!failures(w) || o->verbose)) {
        uint64_t slice = now_ns(w) + 1 * S;
        if (prefix_end && !prefix_hash && slice > prefix_end)
            slice = prefix_end;
        mesh_sim_run_until(w->sim, slice < w->t_end ? slice : w->t_end);
        if (prefix_end && !prefix_hash && now_ns(w) >= prefix_end) {
            prefix_hash = mesh_sim_trace_hash(w->sim) ^ w->trace;
            if (!tally) {
                replay_cut = 1;
                break;
            }
        }
    }
    if (!failures(w) && !replay_cut)
        final_checks(w);
    /* the process's CPU time (clock()), not wall time: the machine's cores are shared */
    double cpu = (double)(clock() - c0) / CLOCKS_PER_SEC;
    clock_gettime(CLOCK_MONOTONIC, &wall1);
    double wall =
        (double)(wall1.tv_sec - wall0.tv_sec) + (double)(wall1.tv_nsec - wall0.tv_nsec) / 1e9;
    if (o->stats && !replay_cut) {
        qsort(w->det_samples, w->n_det, sizeof(uint64_t), cmp_u64);
        double p50 = w->n_det ? (double)w->det_samples[w->n_det / 2] / 1e9 : 0;
        double p99 = w->n_det ? (double)w->det_samples[(w->n_det * 99) / 100] / 1e9 : 0;
        uint64_t sent = 0;
        for (int i = 0; i < w->nn; i++)
            if (w->n[i].running && w->n[i].swim) {
                gsp_swim_stats_t st;
                gsp_swim_stats(w->n[i].swim, &st);
                sent += st.sent_bytes;
            }
        double node_s = (double)w->nn * (double)o->duration_s;
        qsort(w->conv_routes, w->n_conv_routes, sizeof(uint64_t), cmp_u64);
        qsort(w->conv_members, w->n_conv_members, sizeof(uint64_t), cmp_u64);
        double cr50 = w->n_conv_routes ? (double)w->conv_routes[w->n_conv_routes / 2] / 1e9 : 0;
        double cr99 =
            w->n_conv_routes ? (double)w->conv_routes[(w->n_conv_routes * 99) / 100] / 1e9 : 0;
        double cm50 = w->n_conv_members ? (double)w->conv_members[w->n_conv_members / 2] / 1e9 : 0;
        double cm99 =
            w->n_conv_members ? (double)w->conv_members[(w->n_conv_members * 99) / 100] / 1e9 : 0;
        printf(
            "seed %llu: %d nodes, %llu s virtual in %.1f s of CPU, %.1f s of wall time on %d "
            "threads (%.0f node-seconds per wall second, %.0f per CPU second), peak RSS %.1f MiB "
            "(%.1f KiB per node); "
            "crashes %llu, detection p50 %.2f "
            "s p99 %.2f s over %zu crashes; gossip %.0f bytes per node per second\n",
            (unsigned long long)seed, w->nn, (unsigned long long)o->duration_s, cpu, wall,
            o->threads, wall > 0 ? node_s / wall : 0, cpu > 0 ? node_s / cpu : 0,
            (double)rss_kb() / 1024, (double)rss_kb() / w->nn, (unsigned long long)w->crashes, p50,
            p99, w->n_det, (double)sent / node_s);
        printf("seed %llu: after %zu heals routes converged in p50 %.2f s p99 %.2f s, membership "
               "in p50 %.2f s p99 %.2f s (over %zu)\n",
               (unsigned long long)seed, w->n_conv_routes, cr50, cr99, cm50, cm99,
               w->n_conv_members);
        call_stats_t ct;
        calls_total(w, &ct);
        window_t worst = {.from_s = SIZE_MAX}; /* the checked window with most failed */
        for (int p = 0; p < o->proxies; p++) {
            window_t x, over;
            check_windows(w, w->n[p].caller, &x, &over);
            if (x.from_s != SIZE_MAX &&
                (worst.from_s == SIZE_MAX ||
                 (double)x.failed * (double)worst.calls > (double)worst.failed * (double)x.calls))
                worst = x;
        }
        double worst_pct = worst.calls ? 100.0 * (double)worst.failed / (double)worst.calls : 0;
        double bound_pct = worst.calls ? 100.0 * worst.bound / (double)worst.calls : 0;
        printf("seed %llu: %llu calls (%d proxies x %.1f/s from %d s), %llu failed (refused %llu, "
               "reset %llu, deadline %llu, no instance %llu, breaker open %llu): to crashed "
               "nodes %llu, to unreachable %llu, to live %llu (%llu of them in a bad network); "
               "%llu retried on another instance; breakers opened %llu times, closed %llu; worst "
               "%d s window after the removal bound: %.1f %% failed, bound %.1f %% (+%d calls)\n",
               (unsigned long long)seed, (unsigned long long)ct.calls, o->proxies, o->call_rate,
               CALLS_FROM_S, (unsigned long long)ct.failed,
               (unsigned long long)ct.by_cause[CALL_REFUSED],
               (unsigned long long)ct.by_cause[CALL_RESET],
               (unsigned long long)ct.by_cause[CALL_DEADLINE],
               (unsigned long long)ct.by_cause[CALL_NO_INSTANCE],
               (unsigned long long)ct.by_cause[CALL_BREAKER_OPEN],
               (unsigned long long)ct.to_crashed, (unsigned long long)ct.to_unreachable,
               (unsigned long long)ct.to_live, (unsigned long long)ct.to_live_netem,
               (unsigned long long)ct.retried, (unsigned long long)ct.opens,
               (unsigned long long)ct.closes, CALL_WINDOW_S, worst_pct, bound_pct, CALL_SLACK);
        printf("seed %llu: outlier ejection: %llu ejections, %llu returns, %llu held back by the "
               "percent cap, %llu picks among ejected endpoints; %llu gray cuts, at most %llu "
               "calls failed in one; %llu flapping apps, at most %llu calls to one failed at one "
               "proxy (%llu checked against the bound); %llu calls answered UNAVAILABLE by apps\n",
               (unsigned long long)seed, (unsigned long long)ct.ejected,
               (unsigned long long)ct.returned, (unsigned long long)ct.held_back,
               (unsigned long long)ct.panic_picks, (unsigned long long)w->gray_episodes,
               (unsigned long long)w->gray_failed_max, (unsigned long long)w->flap_episodes,
               (unsigned long long)w->flap_failed_max, (unsigned long long)w->flap_checked,
               (unsigned long long)ct.to_app_error);
        printf("{\"seed\":%llu,\"nodes\":%d,\"virtual_s\":%llu,\"cpu_s\":%.2f,"
               "\"wall_s\":%.2f,\"threads\":%d,"
               "\"node_s_per_wall_s\":%.0f,\"node_s_per_cpu_s\":%.0f,\"rss_kib_per_node\":%.1f,"
               "\"detect_p50_s\":%.3f,"
               "\"detect_p99_s\":%.3f,\"gossip_bytes_per_node_s\":%.1f,\"heals\":%zu,"
               "\"routes_converge_p50_s\":%.3f,\"routes_converge_p99_s\":%.3f,"
               "\"members_converge_p50_s\":%.3f,\"members_converge_p99_s\":%.3f,"
               "\"calls\":%llu,\"failed\":%llu,\"failed_to_live\":%llu,"
               "\"failed_to_crashed\":%llu,\"failed_to_unreachable\":%llu,"
               "\"failed_no_instance\":%llu,\"breaker_rejected\":%llu,\"retried\":%llu,"
               "\"breaker_opens\":%llu,\"window_failed_pct\":%.2f,"
               "\"window_bound_pct\":%.2f}\n",
               (unsigned long long)seed, w->nn, (unsigned long long)o->duration_s, cpu, wall,
               o->threads, wall > 0 ? node_s / wall : 0, cpu > 0 ? node_s / cpu : 0,
               (double)rss_kb() / w->nn, p50, p99, (double)sent / node_s, w->n_conv_routes, cr50,
               cr99, cm50, cm99, (unsigned long long)ct.calls, (unsigned long long)ct.failed,
               (unsigned long long)ct.to_live, (unsigned long long)ct.to_crashed,
               (unsigned long long)ct.to_unreachable,
               (unsigned long long)ct.by_cause[CALL_NO_INSTANCE],
               (unsigned long long)ct.by_cause[CALL_BREAKER_OPEN], (unsigned long long)ct.retried,
               (unsigned long long)ct.opens, worst_pct, bound_pct);
    }
    out->hash = prefix_hash ? prefix_hash : mesh_sim_trace_hash(w->sim) ^ w->trace;
    out->failures = failures(w);
    snprintf(out->why, sizeof(out->why), "%s", first_failure(w));
    mesh_exec_free(w->sim);
    for (int i = 0; i < w->nn; i++) {
        mnode_t *n = &w->n[i];
        mesh_routes_unref(n->table);
        reg_actor_args_free(n->reg_args);
        if (n->ever_started)
            mesh_config_destroy(&n->cfg);
        sim_etcd_link_free(n->link);
        if (n->app)
            sim_app_free(n->app);
        caller_free(n->caller);
        sim_fs_delete(n->snap_fs);
    }
    free(w->lost_at);
    for (size_t k2 = 0; k2 < w->n_kept; k2++)
        free(w->kept[k2]);
    free(w->kept);
    sim_etcd_free(w->etcd);
    free(w->n);
    free(w);
}

static void replay(void *ud, uint64_t seed)
{
    const opts_t *o = ud;
    printf("  replay: mesh_sim --seed %llu --nodes %d --proxies %d --duration-s %llu --scenario "
           "%s --call-rate %g --verbose\n",
           (unsigned long long)seed, o->nodes, o->proxies, (unsigned long long)o->duration_s,
           o->scenario, o->call_rate);
}

int main(int argc, char **argv)
{
    opts_t o = {.nodes = 20,
                .proxies = 2,
                .duration_s = 240,
                .scenario = "mixed",
                .call_rate = 20,
                .threads = 1};
    uint64_t seed = 0, seeds = 0, first = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--seed") && v)
            seed = strtoull(v, NULL, 10), i++;
        else if (!strcmp(a, "--seeds") && v)
            seeds = strtoull(v, NULL, 10), i++;
        else if (!strcmp(a, "--first-seed") && v)
            first = strtoull(v, NULL, 10), i++;
        else if (!strcmp(a, "--nodes") && v)
            o.nodes = atoi(v), i++;
        else if (!strcmp(a, "--proxies") && v)
            o.proxies = atoi(v), i++;
        else if (!strcmp(a, "--duration-s") && v)
            o.duration_s = strtoull(v, NULL, 10), i++;
        else if (!strcmp(a, "--scenario") && v)
            o.scenario = v, i++;
        else if (!strcmp(a, "--call-rate") && v)
            o.call_rate = strtod(v, NULL), i++;
        else if (!strcmp(a, "--check-prefix-s") && v)
            o.check_prefix_s = strtoull(v, NULL, 10), i++;
        else if (!strcmp(a, "--threads") && v)
            o.threads = atoi(v), i++;
        else if (!strcmp(a, "--replay-threads") && v)
            o.replay_threads = atoi(v), i++;
        else if (!strcmp(a, "--verbose"))
            o.verbose = 1;
        else if (!strcmp(a, "--stats"))
            o.stats = 1;
        else {
            fprintf(stderr, "usage: mesh_sim [--seed N | --seeds COUNT [--first-seed S]] "
                            "[--nodes N] [--proxies P] [--duration-s S] [--scenario "
                            "outage|halves|isolate|stall|loss|churn|minority|bridge|dataloss|"
                            "etcd-subset|netem|clog|restart-state|mixed] [--call-rate PER_S] "
                            "[--check-prefix-s S] [--threads T (1: the default; the trace hash is "
                            "the same for any T)] [--replay-threads T (the sweep's determinism "
                            "replays; default --threads)] [--stats] [--verbose]\n");
            return 2;
        }
    }
    if (o.nodes < 4 || o.nodes > MAX_NODES || o.proxies < 1 || o.proxies >= o.nodes ||
        o.duration_s < 120 || !(o.call_rate >= 0 && o.call_rate <= 1000) ||
        o.check_prefix_s > o.duration_s || o.threads < 1 || o.threads > 64 ||
        o.replay_threads < 0 || o.replay_threads > 64) {
        fprintf(stderr,
                "mesh_sim: --nodes 4..%d, --proxies 1..nodes-1, --duration-s >= 120, "
                "--call-rate 0..1000, --check-prefix-s 0..duration, --threads 1..64\n",
                MAX_NODES);
        return 2;
    }
    if (!o.replay_threads)
        o.replay_threads = o.threads;
    mesh_log_init("sim",
                  o.verbose ? (getenv("MESH_SIM_LOG_INFO") ? MESH_LOG_INFO : MESH_LOG_WARN)
                            : MESH_LOG_OFF,
                  MESH_LOG_FORMAT_TEXT);
    if (!seeds) {
        sim_outcome_t out;
        run_one(&o, seed ? seed : first, 1, &out);
        printf("mesh_sim seed %llu: %s%s (trace hash %016llx)\n",
               (unsigned long long)(seed ? seed : first), out.failures ? "FAILED: " : "ok", out.why,
               (unsigned long long)out.hash);
        return out.failures ? 1 : 0;
    }
    printf("mesh_sim: %llu seeds from %llu, %d nodes (%d proxies), %llu s, scenario %s, %g calls "
           "per second per proxy\n",
           (unsigned long long)seeds, (unsigned long long)first, o.nodes, o.proxies,
           (unsigned long long)o.duration_s, o.scenario, o.call_rate);
    sim_sweep_result_t r = sim_sweep(first, seeds, run_one, replay, &o);
    return r.failed || r.nondeterministic ? 1 : 0;
}
