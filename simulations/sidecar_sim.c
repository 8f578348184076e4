/*
 * simulations/sidecar_sim.c: the sidecar simulation: N meshd sidecar nodes, each running the
 * production sidecar actor (node/sidecar_actor.c: reflection, health, readiness, registration
 * wishes) and the production registry actor (registry/registry_actor.c: leases, keepalives,
 * guarded deletes) under the production supervisor, against simulated apps
 * (simulations/sim_app.c) and one simulated etcd reached through a simulated network
 * (simulations/sim_etcd_link.c), on the simulated executor, with faults drawn from the seed.
 *
 * Faults: an app's health flaps (NOT_SERVING for a while), its process goes down (and may come
 * back as the next version, serving one more service), it hangs (calls never answered); a node
 * is partitioned from etcd (shorter or longer than the lease TTL); etcd is down for everyone;
 * the sidecar actor or the registry actor crashes (restarted by the supervisor); an operator
 * deletes one of a node's keys (etcd data loss looks the same); the monitor evicts an instance
 * (deletes its key and writes an eviction marker naming its lease) and later lifts the marker.
 * Near the end one node shuts down gracefully (as on SIGTERM). etcd expires leases as its
 * lessor does.
 *
 * Invariants, checked every 100 ms of virtual time (bounds from the configured timers):
 *   - an app unhealthy for longer than the deregistration bound, on a node that reached etcd
 *     for that whole time and did not crash, has no key in etcd;
 *   - an app healthy for longer than the registration bound, on such a node, has exactly its
 *     services registered under a live lease, with its methods;
 *   - a key that vanished while its lease lives is back within a keepalive period (part of the
 *     previous rule, with that grace after the delete);
 *   - a key never carries the lease an eviction marker names (an evicted instance stays out
 *     until the marker goes);
 *   - a node that shut down has no key once the deregistration bound passed, ever again;
 *   - no sidecar ever gives up (NODE_MSG_FAIL).
 * At the end, after everything healed and went quiet: every running node's app is registered
 * exactly, nothing else is in etcd under the prefix.
 *
 *   sidecar_sim --seed N [--verbose]            one seed (replay a failure)
 *   sidecar_sim --seeds COUNT [--first-seed S]  many seeds, then the determinism check
 *   options: --nodes N (1..16), --duration-ms MS, --no-faults, --keep-going
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/exec.h"
#include "actors/sim.h"
#include "actors/supervisor.h"
#include "common/config.h"
#include "common/log.h"
#include "node/node_msgs.h"
#include "node/sidecar_actor.h"
#include "registry/instance.h"
#include "registry/registry_actor.h"
#include "simulations/sim_app.h"
#include "simulations/sim_etcd.h"
#include "simulations/sim_etcd_link.h"
#include "simulations/sim_sweep.h"

#define MS        1000000ull
#define S         (1000 * MS)
#define MAX_NODES 16
#define PREFIX    "meshd/services"

/* Timers of the sidecars (the bounds below are derived from them). */
#define HEALTH_INTERVAL_MS 1000
#define HEALTH_TIMEOUT_MS  500
#define READY_FAILURES     3
#define LEASE_TTL_MS       4000
/* Deregistration: READY_FAILURES failed checks (each at most interval + timeout apart), the
 * delete's round trip, a supervisor's restart backoff, and slack for latencies. */
#define BOUND_DEREG_NS                                                                             \
    ((uint64_t)(READY_FAILURES + 1) * (HEALTH_INTERVAL_MS + HEALTH_TIMEOUT_MS) * MS + 1 * S)
/* Registration: one check, reflection, a lease grant and a put, a keepalive period to notice a
 * lost lease (TTL/3), the backoff of a failed grant, and slack. */
#define BOUND_REG_NS ((uint64_t)(2 * HEALTH_INTERVAL_MS + LEASE_TTL_MS) * MS + 2 * S)
/* A deleted key is checked for after every keepalive (TTL/3) and put back in one round trip. */
#define BOUND_REPAIR_NS ((uint64_t)LEASE_TTL_MS / 3 * MS + 1 * S)

typedef struct opts {
    uint64_t seed;
    int nodes;
    uint64_t duration_ms;
    int verbose;
    int faults;
    int keep_going;
} opts_t;

typedef struct world world_t;

/* The node's stand-in for the node actor (which needs the real executor): it records who
 * watches for shutdown, tells them when the scenario shuts the node down, and reports a
 * sidecar that gives up. */
typedef struct node {
    world_t *wd;
    int i;
    mesh_config_t cfg;
    sim_app_t *app;
    sim_etcd_link_t *link;
    reg_actor_args_t *reg_args;
    sc_args_t sc;
    mesh_child_spec_t children[2];
    mesh_supervisor_spec_t sup;
    mesh_actor_id_t registry, sidecar, stand_in;
    mesh_actor_id_t watchers[4];
    int n_watchers;
    /* what the checker tracks */
    uint64_t healthy_since, unhealthy_since; /* 0 when not in that state */
    uint64_t reachable_since;                /* 0 while partitioned or etcd down */
    uint64_t last_crash;
    uint64_t part_until;
    uint64_t shutdown_at; /* 0: running */
    uint64_t faulty_until;
    uint64_t disturbed_at; /* an operator or the monitor touched its keys */
    int evicted;           /* a marker names its lease */
    char marker[256];
    int failed;
} node_t;

typedef struct stats {
    uint64_t flaps, downs, hangs, upgrades, partitions, outages, crashes, checks, registered_ok,
        deletes, evictions;
} stats_t;

struct world {
    opts_t o;
    mesh_exec_t *sim;
    sim_etcd_t *etcd;
    node_t n[MAX_NODES];
    uint64_t t0, t_end, down_until;
    uint64_t trace;
    stats_t st;
    int failures;
    char first_failure[768];
};

enum { STANDIN_SHUTDOWN = 0x53490001u };

/* ---- helpers -------------------------------------------------------------------------------- */

static uint64_t now_ns(world_t *wd)
{
    return mesh_sim_now(wd->sim);
}

static uint64_t rnd(world_t *wd, uint64_t n)
{
    return n ? mesh_sim_random(wd->sim) % n : 0;
}

static void fold(void *ud, uint64_t v)
{
    sim_trace_fold(&((world_t *)ud)->trace, v);
}

static void vlog(world_t *wd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void vlog(world_t *wd, const char *fmt, ...)
{
    if (!wd->o.verbose)
        return;
    printf("%8.3f ", (double)(now_ns(wd) - wd->t0) / 1e9);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

static void fail(world_t *wd, int node, const char *why)
{
    wd->failures++;
    char buf[768];
    snprintf(buf, sizeof(buf), "t=%.3fs node %d: %s", (double)(now_ns(wd) - wd->t0) / 1e9, node,
             why);
    if (wd->failures == 1)
        snprintf(wd->first_failure, sizeof(wd->first_failure), "%s", buf);
    if (wd->o.verbose)
        printf("INVARIANT VIOLATED: %s\n", buf);
}

static void at(world_t *wd, uint64_t delay_ns, void (*fn)(void *), void *arg)
{
    if (mesh_sim_call_at(wd->sim, now_ns(wd) + delay_ns, fn, arg) < 0)
        abort();
}

static void advertise_of(char *buf, size_t cap, int i)
{
    snprintf(buf, cap, "10.0.0.%d:9091", i + 1);
}

/* ---- the stand-in of the node actor --------------------------------------------------------- */

static int si_start(mesh_actor_t *self, void *arg)
{
    *(node_t **)mesh_state(self) = arg;
    return 0;
}

static int si_message(mesh_actor_t *self, mesh_msg_t *m)
{
    node_t *n = *(node_t **)mesh_state(self);
    switch (m->type) {
    case NODE_MSG_WATCH_SHUTDOWN: {
        int known = 0;
        for (int k = 0; k < n->n_watchers; k++)
            known |= n->watchers[k] == m->from;
        if (!known && n->n_watchers < 4)
            n->watchers[n->n_watchers++] = m->from;
        if (n->shutdown_at) /* asked late (a restart): shutdown already began */
            mesh_send(self, m->from, NODE_MSG_SHUTDOWN, NULL, 0);
        return 0;
    }
    case NODE_MSG_FAIL:
        n->failed = 1;
        fail(n->wd, n->i, "the sidecar gave up (NODE_MSG_FAIL)");
        return 0;
    case STANDIN_SHUTDOWN:
        for (int k = 0; k < n->n_watchers; k++)
            mesh_send(self, n->watchers[k], NODE_MSG_SHUTDOWN, NULL, 0);
        return 0;
    default:
        return 0;
    }
}

static const mesh_actor_ops_t standin_ops = {
    .name = "node-stand-in",
    .state_size = sizeof(node_t *),
    .on_start = si_start,
    .on_message = si_message,
};

/* ---- the checker ---------------------------------------------------------------------------- */

/* Tracks the app's health and the node's reach to etcd as the checker sees them. */
static void track(world_t *wd, node_t *n)
{
    uint64_t now = now_ns(wd);
    int healthy = sim_app_healthy(n->app);
    if (healthy) {
        n->unhealthy_since = 0;
        if (!n->healthy_since)
            n->healthy_since = now;
    } else {
        n->healthy_since = 0;
        if (!n->unhealthy_since)
            n->unhealthy_since = now;
    }
    int reach = sim_etcd_reachable(wd->etcd, (uint32_t)n->i);
    if (!reach)
        n->reachable_since = 0;
    else if (!n->reachable_since)
        n->reachable_since = now;
}

/* Counts the node's keys in etcd; checks they are exactly its app's services when want. */
static int check_keys(world_t *wd, node_t *n, int want, char *why, size_t cap)
{
    char adv[64];
    advertise_of(adv, sizeof(adv), n->i);
    size_t nsvc;
    const char *const *svcs = sim_app_services(n->app, &nsvc);
    size_t found = 0;
    for (size_t k = 0; k < sim_etcd_live_count(wd->etcd); k++) {
        const sim_kv_t *kv = sim_etcd_live_at(wd->etcd, k);
        size_t kl = strlen(kv->key), al = strlen(adv);
        if (kl <= al || strcmp(kv->key + kl - al, adv) != 0 || kv->key[kl - al - 1] != '/')
            continue;
        found++;
        if (!want)
            continue;
        int ok = 0;
        for (size_t s = 0; s < nsvc && !ok; s++) {
            char key[256];
            reg_key_format(key, sizeof(key), PREFIX, svcs[s], adv);
            ok = strcmp(key, kv->key) == 0;
        }
        if (!ok) {
            snprintf(why, cap, "key %s is not one of the app's services", kv->key);
            return -1;
        }
        if (!sim_etcd_lease_exists(wd->etcd, kv->lease)) {
            snprintf(why, cap, "key %s is under lease %llx, which does not exist", kv->key,
                     (unsigned long long)kv->lease);
            return -1;
        }
        reg_value_t v;
        if (reg_value_parse(kv->value, strlen(kv->value), &v) != REG_VALUE_OK) {
            snprintf(why, cap, "key %s holds no instance record: %s", kv->key, kv->value);
            return -1;
        }
        int methods_ok = v.inst.n_methods >= 1;
        reg_value_release(&v);
        if (!methods_ok) {
            snprintf(why, cap, "key %s lists no methods", kv->key);
            return -1;
        }
    }
    if (want && found != nsvc) {
        snprintf(why, cap, "%zu of the app's %zu services are registered", found, nsvc);
        return -1;
    }
    return (int)found;
}

static void check_node(world_t *wd, node_t *n)
{
    uint64_t now = now_ns(wd);
    char why[400];
    int quiet = n->reachable_since && now - n->last_crash > BOUND_REG_NS;
    if (n->shutdown_at) {
        if (now - n->shutdown_at > BOUND_DEREG_NS && n->reachable_since &&
            now - n->reachable_since > BOUND_DEREG_NS && check_keys(wd, n, 0, why, sizeof(why))) {
            snprintf(why, sizeof(why), "still registered %.1f s after its graceful shutdown",
                     (double)(now - n->shutdown_at) / 1e9);
            fail(wd, n->i, why);
        }
        return;
    }
    if (quiet && n->unhealthy_since && now - n->unhealthy_since > BOUND_DEREG_NS &&
        now - n->reachable_since > BOUND_DEREG_NS) {
        int k = check_keys(wd, n, 0, why, sizeof(why));
        if (k > 0) {
            snprintf(why, sizeof(why),
                     "%d key(s) in etcd while its app has been unhealthy for %.1f s", k,
                     (double)(now - n->unhealthy_since) / 1e9);
            fail(wd, n->i, why);
        }
    }
    if (n->evicted) {
        const sim_kv_t *m = sim_etcd_get(wd->etcd, n->marker);
        char key[256], adv[64];
        advertise_of(adv, sizeof(adv), n->i);
        size_t nsvc;
        const char *const *svcs = sim_app_services(n->app, &nsvc);
        reg_key_format(key, sizeof(key), PREFIX, svcs[nsvc - 1], adv);
        const sim_kv_t *kv = sim_etcd_get(wd->etcd, key);
        if (m && kv && kv->lease == reg_marker_lease(m->value, strlen(m->value))) {
            snprintf(why, sizeof(why),
                     "%s is back under lease %llx, which its eviction marker names", key,
                     (unsigned long long)kv->lease);
            fail(wd, n->i, why);
        }
        return; /* registration is not expected while evicted */
    }
    if (quiet && n->healthy_since && now - n->healthy_since > BOUND_REG_NS &&
        now - n->reachable_since > BOUND_REG_NS && now - n->disturbed_at > BOUND_REPAIR_NS) {
        wd->st.checks++;
        if (check_keys(wd, n, 1, why, sizeof(why)) < 0) {
            char full[560];
            snprintf(full, sizeof(full), "app healthy for %.1f s: %s",
                     (double)(now - n->healthy_since) / 1e9, why);
            fail(wd, n->i, full);
        } else {
            wd->st.registered_ok++;
        }
    }
}

static void check_tick(void *arg)
{
    world_t *wd = arg;
    sim_etcd_expire_leases(wd->etcd, now_ns(wd));
    for (int i = 0; i < wd->o.nodes; i++) {
        track(wd, &wd->n[i]);
        check_node(wd, &wd->n[i]);
    }
    at(wd, 100 * MS, check_tick, wd);
}

/* ---- faults --------------------------------------------------------------------------------- */

typedef struct undo {
    world_t *wd;
    node_t *n;
    int what; /* 0 serving, 1 up, 2 not hung */
} undo_t;

static undo_t undos[MAX_NODES][3];

static void undo_fault(void *arg)
{
    undo_t *u = arg;
    node_t *n = u->n;
    if (now_ns(u->wd) < n->faulty_until)
        return; /* another fault took over */
    if (u->what == 0)
        sim_app_set_serving(n->app, 1);
    else if (u->what == 1)
        sim_app_set_up(n->app, 1);
    else
        sim_app_set_hung(n->app, 0);
    track(u->wd, n);
    vlog(u->wd, "node %d: app back (%s)", n->i,
         u->what == 0   ? "SERVING"
         : u->what == 1 ? "up"
                        : "answering");
}

static void heal_part(void *arg)
{
    node_t *n = arg;
    if (now_ns(n->wd) < n->part_until)
        return;
    sim_etcd_set_partitioned(n->wd->etcd, (uint32_t)n->i, 0);
    vlog(n->wd, "node %d: partition from etcd healed", n->i);
}

/* The monitor lifts its eviction marker. */
static void lift_marker(void *arg)
{
    node_t *n = arg;
    sim_etcd_txn_begin(n->wd->etcd);
    sim_etcd_txn_delete(n->wd->etcd, n->marker);
    sim_etcd_txn_commit(n->wd->etcd);
    n->evicted = 0;
    n->disturbed_at = now_ns(n->wd);
    vlog(n->wd, "node %d: eviction marker lifted", n->i);
}

static void etcd_up(void *arg)
{
    world_t *wd = arg;
    if (now_ns(wd) < wd->down_until)
        return;
    sim_etcd_set_down(wd->etcd, 0);
    vlog(wd, "etcd up");
}

static void do_fault(world_t *wd)
{
    int i = (int)rnd(wd, (uint64_t)wd->o.nodes);
    node_t *n = &wd->n[i];
    uint64_t r = rnd(wd, 100), now = now_ns(wd);
    fold(wd, 0xfa00ull | r << 8 | (uint64_t)i);
    if (n->shutdown_at)
        return;
    if (r < 45 && now >= n->faulty_until) { /* the app misbehaves for a while */
        uint64_t d = 500 * MS + rnd(wd, 5500 * MS);
        int what = (int)rnd(wd, 3);
        n->faulty_until = now + d;
        undo_t *u = &undos[i][what];
        *u = (undo_t){wd, n, what};
        if (what == 0) {
            sim_app_set_serving(n->app, 0);
            wd->st.flaps++;
        } else if (what == 1) {
            if (rnd(wd, 3) == 0) { /* a rolling update: it comes back serving more */
                sim_app_set_version(n->app, 2);
                wd->st.upgrades++;
            }
            sim_app_set_up(n->app, 0);
            wd->st.downs++;
        } else {
            sim_app_set_hung(n->app, 1);
            wd->st.hangs++;
        }
        track(wd, n);
        vlog(wd, "node %d: app %s for %llu ms", i,
             what == 0   ? "NOT_SERVING"
             : what == 1 ? "down"
                         : "hung",
             (unsigned long long)(d / MS));
        at(wd, d, undo_fault, u);
    } else if (r < 65) {
        uint64_t d = 200 * MS + rnd(wd, 6000 * MS);
        if (now + d > n->part_until)
            n->part_until = now + d;
        sim_etcd_set_partitioned(wd->etcd, (uint32_t)i, 1);
        wd->st.partitions++;
        track(wd, n);
        vlog(wd, "node %d: partitioned from etcd for %llu ms", i, (unsigned long long)(d / MS));
        at(wd, d, heal_part, n);
    } else if (r < 72) {
        uint64_t d = 200 * MS + rnd(wd, 2800 * MS);
        if (now + d > wd->down_until)
            wd->down_until = now + d;
        sim_etcd_set_down(wd->etcd, 1);
        wd->st.outages++;
        for (int k = 0; k < wd->o.nodes; k++)
            track(wd, &wd->n[k]);
        vlog(wd, "etcd down for %llu ms", (unsigned long long)(d / MS));
        at(wd, d, etcd_up, wd);
    } else if (r < 86 && !n->evicted) {
        /* One of its keys is deleted: by an operator, or by the monitor, which also writes an
         * eviction marker naming the key's lease. */
        char key[256], adv[64];
        advertise_of(adv, sizeof(adv), i);
        size_t nsvc;
        const char *const *svcs = sim_app_services(n->app, &nsvc);
        reg_key_format(key, sizeof(key), PREFIX, svcs[nsvc - 1], adv);
        const sim_kv_t *kv = sim_etcd_get(wd->etcd, key);
        if (!kv)
            return;
        int64_t lease = kv->lease;
        int evict = rnd(wd, 2) == 0;
        sim_etcd_txn_begin(wd->etcd);
        sim_etcd_txn_delete(wd->etcd, key);
        if (evict) {
            char val[96];
            reg_marker_key_format(n->marker, sizeof(n->marker), PREFIX, svcs[nsvc - 1], adv);
            snprintf(val, sizeof(val), "{\"lease\":\"%lld\",\"reason\":\"no answer\"}",
                     (long long)lease);
            sim_etcd_txn_put(wd->etcd, n->marker, val, 0, 0);
        }
        sim_etcd_txn_commit(wd->etcd);
        n->disturbed_at = now;
        if (evict) {
            n->evicted = 1;
            wd->st.evictions++;
            at(wd, 1 * S + rnd(wd, 4 * S), lift_marker, n);
        } else {
            wd->st.deletes++;
        }
        vlog(wd, "node %d: %s %s", i, evict ? "the monitor evicted" : "an operator deleted", key);
    } else if (r < 86) {
        return;
    } else if (r < 92) {
        mesh_actor_id_t victim = rnd(wd, 2) ? n->sidecar : n->registry;
        if (victim && mesh_sim_crash(wd->sim, victim) == 0) {
            wd->st.crashes++;
            n->last_crash = now;
            vlog(wd, "node %d: %s actor crashed", i, victim == n->sidecar ? "sidecar" : "registry");
        }
    }
}

static void fault_tick(void *arg)
{
    world_t *wd = arg;
    if (now_ns(wd) >= wd->t_end)
        return;
    if (wd->o.faults)
        do_fault(wd);
    at(wd, 200 * MS + rnd(wd, 1300 * MS), fault_tick, wd);
}

static void heal_all(void *arg)
{
    world_t *wd = arg;
    for (int i = 0; i < wd->o.nodes; i++) {
        node_t *n = &wd->n[i];
        n->faulty_until = n->part_until = 0;
        if (n->evicted)
            lift_marker(n);
        sim_etcd_set_partitioned(wd->etcd, (uint32_t)i, 0);
        sim_app_set_serving(n->app, 1);
        sim_app_set_hung(n->app, 0);
        sim_app_set_up(n->app, 1);
        track(wd, n);
    }
    wd->down_until = 0;
    sim_etcd_set_down(wd->etcd, 0);
    vlog(wd, "everything healed; no more faults");
}

static void shutdown_one(void *arg)
{
    node_t *n = arg;
    n->shutdown_at = now_ns(n->wd);
    vlog(n->wd, "node %d: graceful shutdown (SIGTERM)", n->i);
    if (mesh_exec_send(n->wd->sim, n->stand_in, STANDIN_SHUTDOWN, NULL, 0) < 0)
        abort();
}

/* ---- one run -------------------------------------------------------------------------------- */

static int stopped(const world_t *wd)
{
    return wd->failures && !wd->o.keep_going;
}

static void run_to(world_t *wd, uint64_t until_ns)
{
    while (!stopped(wd) && now_ns(wd) < until_ns) {
        uint64_t slice = now_ns(wd) + 100 * MS;
        mesh_sim_run_until(wd->sim, slice < until_ns ? slice : until_ns);
    }
}

typedef struct result {
    uint64_t hash;
    int failures;
    char why[768];
    stats_t st;
} result_t;

static void node_setup(world_t *wd, int i, const sim_link_cfg_t *link, const sim_link_hooks_t *lh)
{
    node_t *n = &wd->n[i];
    memset(n, 0, sizeof(*n));
    n->wd = wd;
    n->i = i;
    char pkg[32];
    snprintf(pkg, sizeof(pkg), "app%d.v1", i);
    sim_app_cfg_t ac = {.package = pkg,
                        .watch_unimplemented = rnd(wd, 4) == 0,
                        .v1alpha_only = rnd(wd, 4) == 0,
                        .latency_min_ns = 100000,
                        .latency_jitter_ns = 2 * MS,
                        .fold = fold,
                        .ud = wd};
    n->app = sim_app_new(wd->sim, &ac);
    n->link = sim_etcd_link_new(wd->sim, wd->etcd, (uint32_t)i, link, lh);
    mesh_config_init(&n->cfg);
    free(n->cfg.app);
    char app[64];
    snprintf(app, sizeof(app), "10.0.0.%d:50051", i + 1);
    n->cfg.app = strdup(app);
    n->cfg.health_interval_ms = HEALTH_INTERVAL_MS;
    n->cfg.health_timeout_ms = HEALTH_TIMEOUT_MS;
    n->cfg.ready_failures = READY_FAILURES;
    n->cfg.lease_ttl_ms = LEASE_TTL_MS;
    if (mesh_exec_spawn(wd->sim, &standin_ops, n, NULL, &n->stand_in) < 0)
        abort();
    reg_actor_cfg_t rc = {.etcd_new = sim_etcd_factory, .etcd_arg = n->link, .prefix = PREFIX};
    n->reg_args = reg_actor_args_new(&rc, NULL);
    if (!n->reg_args)
        abort();
    n->sc = (sc_args_t){.cfg = &n->cfg,
                        .node = n->stand_in,
                        .registry = &n->registry,
                        .rpc_new = sim_app_factory,
                        .rpc_arg = n->app};
    advertise_of(n->sc.advertise, sizeof(n->sc.advertise), i);
    n->children[0] = (mesh_child_spec_t){.ops = &reg_actor_ops,
                                         .arg = n->reg_args,
                                         .opts = {.mailbox = REG_ACTOR_MAILBOX},
                                         .id_out = &n->registry};
    n->children[1] =
        (mesh_child_spec_t){.ops = &sc_actor_ops, .arg = &n->sc, .id_out = &n->sidecar};
    n->sup = (mesh_supervisor_spec_t){.name = "control-supervisor",
                                      .children = n->children,
                                      .nchildren = 2,
                                      .max_restarts = 1000,
                                      .backoff_initial_ns = 50 * MS,
                                      .backoff_max_ns = 1000 * MS};
    if (mesh_exec_spawn(wd->sim, &mesh_supervisor_ops, &n->sup, NULL, NULL) < 0)
        abort();
}

static result_t run_seed(const opts_t *o)
{
    world_t *wd = calloc(1, sizeof(*wd));
    if (!wd)
        abort();
    wd->o = *o;
    wd->trace = 0xcbf29ce484222325ull;
    wd->sim = mesh_sim_new(o->seed);
    wd->etcd = sim_etcd_new(PREFIX "/", o->seed);
    if (!wd->sim || !wd->etcd)
        abort();
    wd->t0 = now_ns(wd);
    wd->t_end = wd->t0 + o->duration_ms * MS;
    sim_link_cfg_t link = {.latency_min_ns = 1 * MS,
                           .latency_jitter_ns = 9 * MS,
                           .fail_min_ns = 1 * MS,
                           .fail_jitter_ns = 500 * MS,
                           .reset_pct = 50};
    sim_link_hooks_t lh = {.ud = wd, .log = o->verbose ? sim_print_line : NULL, .fold = fold};
    for (int i = 0; i < o->nodes; i++)
        node_setup(wd, i, &link, &lh);
    at(wd, 100 * MS, check_tick, wd);
    at(wd, 3000 * MS, fault_tick, wd);
    if (o->nodes > 1)
        at(wd, o->duration_ms * MS * 7 / 10, shutdown_one, &wd->n[o->nodes - 1]);
    if (mesh_sim_call_at(wd->sim, wd->t_end, heal_all, wd) < 0)
        abort();
    /* Heal, then everything must settle: every running node registered exactly. */
    run_to(wd, wd->t_end + BOUND_REG_NS + 2 * S);
    char why[400];
    for (int i = 0; !stopped(wd) && i < o->nodes; i++) {
        node_t *n = &wd->n[i];
        int k = check_keys(wd, n, !n->shutdown_at, why, sizeof(why));
        if (k < 0)
            fail(wd, i, why);
        else if (n->shutdown_at && k > 0)
            fail(wd, i, "registered at the end although it shut down");
    }
    /* Nothing under the prefix that no node owns. */
    for (size_t k = 0; !stopped(wd) && k < sim_etcd_live_count(wd->etcd); k++) {
        const sim_kv_t *kv = sim_etcd_live_at(wd->etcd, k);
        if (strncmp(kv->key, PREFIX "/", strlen(PREFIX) + 1) != 0)
            continue;
        int owned = 0;
        for (int i = 0; i < o->nodes && !owned; i++) {
            char adv[64];
            advertise_of(adv, sizeof(adv), i);
            owned = !wd->n[i].shutdown_at && strstr(kv->key, adv) != NULL;
        }
        if (!owned) {
            snprintf(why, sizeof(why), "stray key %s at the end", kv->key);
            fail(wd, -1, why);
        }
    }
    result_t r = {.failures = wd->failures, .st = wd->st};
    r.hash = wd->trace ^ (mesh_sim_trace_hash(wd->sim) * 0x9e3779b97f4a7c15ull);
    snprintf(r.why, sizeof(r.why), "%s", wd->first_failure);
    mesh_exec_free(wd->sim);
    for (int i = 0; i < o->nodes; i++) {
        sim_app_free(wd->n[i].app);
        sim_etcd_link_free(wd->n[i].link);
        reg_actor_args_free(wd->n[i].reg_args);
        mesh_config_destroy(&wd->n[i].cfg);
    }
    sim_etcd_free(wd->etcd);
    free(wd);
    return r;
}

/* ---- many seeds ---------------------------------------------------------------------------- */

typedef struct sweep {
    opts_t o;
    stats_t tot;
    result_t last; /* the latest run */
} sweep_t;

static void print_replay(const opts_t *o);

static void sweep_seed(void *ud, uint64_t seed, int tally, sim_outcome_t *out)
{
    sweep_t *sw = ud;
    sw->o.seed = seed;
    result_t r = run_seed(&sw->o);
    sw->last = r;
    out->hash = r.hash;
    out->failures = r.failures;
    snprintf(out->why, sizeof(out->why), "%s", r.why);
    if (!tally)
        return;
    sw->tot.flaps += r.st.flaps;
    sw->tot.downs += r.st.downs;
    sw->tot.hangs += r.st.hangs;
    sw->tot.upgrades += r.st.upgrades;
    sw->tot.partitions += r.st.partitions;
    sw->tot.outages += r.st.outages;
    sw->tot.crashes += r.st.crashes;
    sw->tot.deletes += r.st.deletes;
    sw->tot.evictions += r.st.evictions;
    sw->tot.checks += r.st.checks;
}

static void sweep_replay(void *ud, uint64_t seed)
{
    sweep_t *sw = ud;
    sw->o.seed = seed;
    print_replay(&sw->o);
}

/* ---- main ----------------------------------------------------------------------------------- */

static void print_seed(void *ud)
{
    const stats_t *st = &((const sweep_t *)ud)->last.st;
    printf("flaps %llu downs %llu hangs %llu upgrades %llu partitions %llu outages %llu crashes "
           "%llu deletes %llu evictions %llu checks %llu",
           (unsigned long long)st->flaps, (unsigned long long)st->downs,
           (unsigned long long)st->hangs, (unsigned long long)st->upgrades,
           (unsigned long long)st->partitions, (unsigned long long)st->outages,
           (unsigned long long)st->crashes, (unsigned long long)st->deletes,
           (unsigned long long)st->evictions, (unsigned long long)st->checks);
}

static void print_size(void *ud)
{
    const sweep_t *sw = ud;
    printf("%d nodes, %llu ms each", sw->o.nodes, (unsigned long long)sw->o.duration_ms);
}

static void print_totals(void *ud)
{
    const stats_t *tot = &((const sweep_t *)ud)->tot;
    printf("app flaps %llu downs %llu hangs %llu upgrades %llu; partitions %llu outages %llu "
           "crashes %llu; deletes %llu evictions %llu; %llu registration checks",
           (unsigned long long)tot->flaps, (unsigned long long)tot->downs,
           (unsigned long long)tot->hangs, (unsigned long long)tot->upgrades,
           (unsigned long long)tot->partitions, (unsigned long long)tot->outages,
           (unsigned long long)tot->crashes, (unsigned long long)tot->deletes,
           (unsigned long long)tot->evictions, (unsigned long long)tot->checks);
}

static void usage(void)
{
    fprintf(stderr, "usage: sidecar_sim [--seed N | --seeds COUNT [--first-seed S]] [--verbose]\n"
                    "                   [--nodes N] [--duration-ms MS] [--no-faults] "
                    "[--keep-going]\n");
    exit(2);
}

static void print_replay(const opts_t *o)
{
    printf("  replay: sidecar_sim --seed %llu --verbose%s --nodes %d --duration-ms %llu\n",
           (unsigned long long)o->seed, o->faults ? "" : " --no-faults", o->nodes,
           (unsigned long long)o->duration_ms);
}

int main(int argc, char **argv)
{
    opts_t o = {.seed = 1, .nodes = 4, .duration_ms = 30000, .faults = 1};
    sim_seeds_t seeds = SIM_SEEDS_INIT;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (sim_seeds_arg(&seeds, argc, argv, &i)) {
            continue;
        } else if (!strcmp(a, "--nodes") && v) {
            o.nodes = atoi(v);
            i++;
        } else if (!strcmp(a, "--duration-ms") && v) {
            o.duration_ms = strtoull(v, NULL, 0);
            i++;
        } else if (!strcmp(a, "--verbose")) {
            o.verbose = 1;
        } else if (!strcmp(a, "--keep-going")) {
            o.keep_going = 1;
        } else if (!strcmp(a, "--no-faults")) {
            o.faults = 0;
        } else {
            usage();
        }
    }
    if (o.nodes < 1 || o.nodes > MAX_NODES || !sim_seeds_valid(&seeds))
        usage();
    mesh_log_init("sim", o.verbose && getenv("MESHD_SIM_LOG") ? MESH_LOG_DEBUG : MESH_LOG_OFF,
                  MESH_LOG_FORMAT_TEXT);
    setvbuf(stdout, NULL, _IOLBF, 0);
    sweep_t sw = {.o = o};
    const sim_main_cfg_t cfg = {sweep_seed, sweep_replay, print_seed, print_size, print_totals};
    return sim_run_main(&seeds, &cfg, &sw);
}
