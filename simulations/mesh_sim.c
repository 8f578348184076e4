/*
 * simulations/mesh_sim.c: the whole mesh in one process. N nodes, each on its own simulated host
 * (actors/simnet.h), each running the production control plane under the production supervisor:
 * sidecar nodes run the sidecar actor (node/sidecar_actor.c) against a simulated app
 * (simulations/sim_app.c), the registry actor (registry/registry_actor.c) against the simulated
 * etcd (simulations/sim_etcd.c, through sim_etcd_link.c) and the gossip bridge with its gossip
 * actor (node/gossip_bridge.c, gossip/gossip_actor.c); proxy nodes run a watching registry actor
 * and the gossip bridge, and route with the tables their registry actor publishes (the stand-in
 * of the node actor keeps the last one, as the node hands it to its workers). A sidecar node's
 * data plane is a listener on its advertised address that accepts connections (what the
 * registry actor's corroborating connect meets); a crashed node's host is down (connects
 * refused, datagrams dropped).
 *
 * Faults (one every 40 s, drawn from the seed, or one kind with --scenario): etcd down for
 * everyone (with a crash and a new node meanwhile); the gossip network split in halves (silent
 * drops), a third cut off from the rest, halves joined only through one bridge node; one node
 * isolated from everyone (gossip and etcd); random loss; a node's loop stalling; a crash (kill
 * -9) and restart; etcd losing its data back to a 20 s old backup; etcd cut off from a third of
 * the nodes (proxies among them) with a crash meanwhile; a bad network (duplicates, reordering,
 * long-tailed latency); one node's links clogged (packets held while its loop runs). Every
 * fault ends before the quiet tail of the run. After each heal (and etcd's return) the run
 * measures how long until every proxy routes to exactly the running nodes and sees every
 * running node alive (--stats).
 *
 * Invariants, checked every 100 ms of virtual time (bounds from the timers, printed):
 *   - removal: a crashed sidecar node's instance is in no running proxy's table once the
 *     removal bound passed, unless the panic floor needs it (at most half of a service's
 *     instances go because of gossip);
 *   - no flap: while etcd comes back, a proxy's table keeps every instance of a live node that
 *     was in etcd before the outage;
 *   - at the end (everything healed, quiet tail): every node sees every running node alive
 *     (never dead forever), and every proxy's table holds exactly the instances of the running
 *     sidecar nodes, which is also etcd's view.
 *
 *   mesh_sim --seed N [--verbose]                  one seed (replay a failure)
 *   mesh_sim --seeds COUNT [--first-seed S]        many seeds, then the determinism check
 *   options: --nodes N (4..4000), --proxies P, --duration-s S, --scenario outage|halves|isolate|
 *            stall|loss|churn|minority|bridge|dataloss|etcd-subset|netem|clog|mixed, --stats
 *            (metrics and a JSON line)
 */
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
#include "registry/instance.h"
#include "registry/reg_msgs.h"
#include "registry/registry_actor.h"
#include "simulations/sim_app.h"
#include "simulations/sim_etcd.h"
#include "simulations/sim_etcd_link.h"
#include "simulations/sim_sweep.h"

#define MS        1000000ull
#define S         (1000 * MS)
#define MAX_NODES 4000
#define PREFIX    "meshd/services"
#define SERVICE   "shop.v1.Echo" /* every app serves it: many instances per service */

#define HEALTH_INTERVAL_MS 1000
#define LEASE_TTL_MS       10000

typedef struct opts {
    int nodes, proxies, verbose, stats;
    uint64_t duration_s;
    const char *scenario;
} opts_t;

typedef struct world world_t;

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
} mnode_t;

struct world {
    opts_t o;
    mesh_exec_t *sim;
    mesh_simnet_t *net;
    sim_etcd_t *etcd;
    mnode_t *n;
    int nn;
    uint64_t t0, t_end, quiet_at;
    uint64_t trace;
    int failures;
    char first_failure[768];
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
};

enum { STANDIN_ROUTES_SEEN = 0x4D530001u };

/* ---- helpers ----------------------------------------------------------------------------- */

static uint64_t now_ns(world_t *w)
{
    return mesh_sim_now(w->sim);
}

static uint64_t rnd(world_t *w, uint64_t n)
{
    return n ? mesh_sim_random(w->sim) % n : 0;
}

static void fold(void *ud, uint64_t v)
{
    sim_trace_fold(&((world_t *)ud)->trace, v);
}

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
    if (w->failures++ == 0)
        snprintf(w->first_failure, sizeof(w->first_failure), "t=%.3fs %s",
                 (double)(now_ns(w) - w->t0) / 1e9, why);
    if (w->o.verbose)
        printf("INVARIANT VIOLATED at %.3f s: %s\n", (double)(now_ns(w) - w->t0) / 1e9, why);
}

static void at(world_t *w, uint64_t delay_ns, void (*fn)(void *), void *arg)
{
    if (mesh_sim_call_at(w->sim, now_ns(w) + delay_ns, fn, arg) < 0)
        abort();
}

/* ---- the stand-in of the node actor, and a sidecar node's data plane ---------------------- */

static void dp_accept(mesh_listener_t *l, mesh_stream_t *s, void *arg)
{
    (void)l;
    mnode_t *n = arg;
    mesh_stream_close(n->io, s); /* accepted: that is all a corroborating connect asks */
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
    sim_link_cfg_t link = {.latency_min_ns = 1 * MS,
                           .latency_jitter_ns = 4 * MS,
                           .fail_min_ns = 1 * MS,
                           .fail_jitter_ns = 500 * MS,
                           .reset_pct = 50};
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
    n->crashed_at = 0;
    n->detect_measured = 0;
    n->started_at = now_ns(w);
}

/* kill -9: the processes are gone, the host refuses connections and drops datagrams. */
static void node_crash(world_t *w, int i)
{
    mnode_t *n = &w->n[i];
    if (!n->running)
        return;
    mesh_exec_stop(w->sim, n->sup_id);
    mesh_exec_stop(w->sim, n->stand_in);
    mesh_simnet_host_down(w->net, n->ip, 1);
    n->running = 0;
    n->swim = NULL;
    n->crashed_at = now_ns(w);
    w->crashes++;
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
    /* the panic floor may keep dead instances while the live ones are fewer than half the
     * instances etcd lists */
    size_t listed = etcd_listed(w);
    if (dead_in && alive * 2 >= (listed > s->n_instances ? listed : s->n_instances) + 1)
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
    F_KINDS
} fault_t;
static const char *const fault_names[] = {"outage",   "halves",      "isolate",  "stall",
                                          "loss",     "churn",       "minority", "bridge",
                                          "dataloss", "etcd-subset", "netem",    "clog"};

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
    for (int i = 0; i < w->nn; i++) {
        if (w->n[i].isolated)
            sim_etcd_set_partitioned(w->etcd, (uint32_t)i, 0);
        w->n[i].isolated = 0;
    }
    for (int i = 0; i < w->nn; i++)
        if (w->n[i].etcd_cut) {
            sim_etcd_set_partitioned(w->etcd, (uint32_t)i, 0);
            w->n[i].etcd_cut = 0;
        }
    vlog(w, "network healed");
    healed(w);
}

static void fault_halves(world_t *w)
{
    const char **ips = malloc((size_t)w->nn * sizeof(char *));
    size_t k = 0;
    for (int i = w->nn / 2; i < w->nn; i++)
        ips[k++] = w->n[i].ip;
    mesh_simnet_partition(w->net, ips, k, 1);
    free(ips);
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
    vlog(w, "node %d isolated from everyone (gossip and etcd) for 20 s", i);
    at(w, 20 * S, heal, w);
}

static void fault_stall(world_t *w)
{
    int i = (int)rnd(w, (uint64_t)w->nn);
    if (!w->n[i].running)
        return;
    mesh_simnet_stall(w->net, w->n[i].ip, 3 * S);
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
    vlog(w, "halves cut except through node %d (a bridge) for 30 s", bridge);
    at(w, 30 * S, heal, w);
}

static void restore_etcd(void *arg)
{
    world_t *w = arg;
    if (sim_etcd_restore(w->etcd) == 0)
        vlog(w, "etcd lost its data: back to the backup of 20 s ago");
}

/* etcd loses its data: back to a backup taken 20 s earlier (sidecars must repair their keys). */
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
    vlog(w, "duplicates, reordering and long-tailed latency for 30 s");
    at(w, 30 * S, heal, w);
}

/* One node's links clogged (packets held, its loop running) for 2-4 s. */
static void fault_clog(world_t *w)
{
    int i = (int)rnd(w, (uint64_t)w->nn);
    uint64_t d = 2 * S + rnd(w, 2 * S);
    mesh_simnet_clog(w->net, w->n[i].ip, d, MESH_SIMNET_CLOG_BOTH);
    vlog(w, "node %d's links clogged for %.1f s", i, (double)d / 1e9);
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
    (void)tally;
    const opts_t *o = ud;
    world_t *w = calloc(1, sizeof(*w));
    if (!w)
        abort();
    memset(out, 0, sizeof(*out));
    w->o = *o;
    w->nn = o->nodes;
    w->trace = 0xcbf29ce484222325ull;
    w->n = calloc((size_t)w->nn, sizeof(mnode_t));
    w->sim = mesh_sim_new(seed);
    w->net = mesh_sim_net(w->sim);
    w->etcd = sim_etcd_new(PREFIX "/", seed);
    mesh_simnet_opts_t no = {.latency_min_ns = 1 * MS, .latency_jitter_ns = 1 * MS};
    mesh_simnet_configure(w->net, &no);
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
    clock_t c0 = clock();
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
        printf("%d nodes (%d proxies), %llu s; bounds: detection %.1f s, removal %.1f s\n", w->nn,
               o->proxies, (unsigned long long)o->duration_s, (double)w->b_detect / 1e9,
               (double)w->b_remove / 1e9);
    while (now_ns(w) < w->t_end && (!w->failures || o->verbose)) {
        uint64_t slice = now_ns(w) + 1 * S;
        mesh_sim_run_until(w->sim, slice < w->t_end ? slice : w->t_end);
    }
    if (!w->failures)
        final_checks(w);
    double wall = (double)(clock() - c0) / CLOCKS_PER_SEC;
    if (o->stats) {
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
        printf("seed %llu: %d nodes, %llu s virtual in %.1f s wall (%.0f node-seconds per wall "
               "second), peak RSS %.1f MiB (%.1f KiB per node); crashes %llu, detection p50 %.2f "
               "s p99 %.2f s over %zu crashes; gossip %.0f bytes per node per second\n",
               (unsigned long long)seed, w->nn, (unsigned long long)o->duration_s, wall,
               wall > 0 ? node_s / wall : 0, (double)rss_kb() / 1024, (double)rss_kb() / w->nn,
               (unsigned long long)w->crashes, p50, p99, w->n_det, (double)sent / node_s);
        printf("seed %llu: after %zu heals routes converged in p50 %.2f s p99 %.2f s, membership "
               "in p50 %.2f s p99 %.2f s (over %zu)\n",
               (unsigned long long)seed, w->n_conv_routes, cr50, cr99, cm50, cm99,
               w->n_conv_members);
        printf("{\"seed\":%llu,\"nodes\":%d,\"virtual_s\":%llu,\"wall_s\":%.2f,"
               "\"node_s_per_wall_s\":%.0f,\"rss_kib_per_node\":%.1f,\"detect_p50_s\":%.3f,"
               "\"detect_p99_s\":%.3f,\"gossip_bytes_per_node_s\":%.1f,\"heals\":%zu,"
               "\"routes_converge_p50_s\":%.3f,\"routes_converge_p99_s\":%.3f,"
               "\"members_converge_p50_s\":%.3f,\"members_converge_p99_s\":%.3f}\n",
               (unsigned long long)seed, w->nn, (unsigned long long)o->duration_s, wall,
               wall > 0 ? node_s / wall : 0, (double)rss_kb() / w->nn, p50, p99,
               (double)sent / node_s, w->n_conv_routes, cr50, cr99, cm50, cm99);
    }
    out->hash = mesh_sim_trace_hash(w->sim) ^ w->trace;
    out->failures = w->failures;
    snprintf(out->why, sizeof(out->why), "%s", w->first_failure);
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
    }
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
           "%s --verbose\n",
           (unsigned long long)seed, o->nodes, o->proxies, (unsigned long long)o->duration_s,
           o->scenario);
}

int main(int argc, char **argv)
{
    opts_t o = {.nodes = 20, .proxies = 2, .duration_s = 240, .scenario = "mixed"};
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
        else if (!strcmp(a, "--verbose"))
            o.verbose = 1;
        else if (!strcmp(a, "--stats"))
            o.stats = 1;
        else {
            fprintf(stderr, "usage: mesh_sim [--seed N | --seeds COUNT [--first-seed S]] "
                            "[--nodes N] [--proxies P] [--duration-s S] [--scenario "
                            "outage|halves|isolate|stall|loss|churn|minority|bridge|dataloss|"
                            "etcd-subset|netem|clog|mixed] [--stats] [--verbose]\n");
            return 2;
        }
    }
    if (o.nodes < 4 || o.nodes > MAX_NODES || o.proxies < 1 || o.proxies >= o.nodes ||
        o.duration_s < 120) {
        fprintf(stderr, "mesh_sim: --nodes 4..%d, --proxies 1..nodes-1, --duration-s >= 120\n",
                MAX_NODES);
        return 2;
    }
    mesh_log_init("sim",
                  o.verbose ? (getenv("MESH_SIM_LOG_INFO") ? MESH_LOG_INFO : MESH_LOG_WARN)
                            : MESH_LOG_OFF,
                  MESH_LOG_FORMAT_TEXT);
    if (!seeds) {
        sim_outcome_t out;
        run_one(&o, seed ? seed : first, 1, &out);
        printf("mesh_sim seed %llu: %s%s\n", (unsigned long long)(seed ? seed : first),
               out.failures ? "FAILED: " : "ok", out.why);
        return out.failures ? 1 : 0;
    }
    printf("mesh_sim: %llu seeds from %llu, %d nodes (%d proxies), %llu s, scenario %s\n",
           (unsigned long long)seeds, (unsigned long long)first, o.nodes, o.proxies,
           (unsigned long long)o.duration_s, o.scenario);
    sim_sweep_result_t r = sim_sweep(first, seeds, run_one, replay, &o);
    return r.failed || r.nondeterministic ? 1 : 0;
}
