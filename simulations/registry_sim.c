/*
 * simulations/registry_sim.c: the registry simulation: N meshd nodes, each running the
 * production registry actor (registry/registry_actor.h: its view, watch machine, reconciler
 * and routing tables) under the production supervisor, against one simulated etcd
 * (simulations/sim_etcd.c) reached through a simulated network (simulations/sim_etcd_link.c)
 * on the simulated executor, with a workload and faults drawn from the seed.
 *
 * Workload: several writers register instances (txns of 1-3 services under the writer's
 * lease), update and deregister them, their leases expire (all keys of a lease go in one
 * revision), some values are malformed, resolver Delete records, badly shaped keys or keys
 * outside the prefix; the history is compacted at random revisions. Faults: a node's
 * connection drops (with or without losing the lines in flight), error lines, watches canceled
 * by etcd, a node partitioned from etcd, etcd down for everyone, etcd losing its data (restored
 * from an earlier backup), and the registry actor itself crashing (restarted by its supervisor,
 * it must keep publishing the routes it had and catch up). Progress notifications come every
 * few hundred ms.
 *
 * After the workload everything heals, a last progress notification goes out and the
 * simulation runs until nothing is left to do; then every node must equal etcd (see
 * simulations/sim_check.h). Every run prints a trace hash; the same seed gives the same hash.
 *
 *   registry_sim --seed N [--verbose]            one seed (replay a failure)
 *   registry_sim --seeds COUNT [--first-seed S]  many seeds, then the determinism check
 *   options: --nodes N (1..16), --duration-ms MS, --no-dataloss, --no-faults, --keep-going
 *   (a seed stops at its first violation unless --keep-going)
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/exec.h"
#include "actors/sim.h"
#include "actors/supervisor.h"
#include "common/log.h"
#include "registry/reg_msgs.h"
#include "registry/registry_actor.h"
#include "simulations/sim_check.h"
#include "simulations/sim_etcd.h"
#include "simulations/sim_etcd_link.h"
#include "simulations/sim_sweep.h"
#include "simulations/sim_values.h"

#define MS        1000000ull
#define MAX_NODES 16
#define NWRITERS  3
#define NADDRS    4
#define PREFIX    "meshd/services/"

static const char *const services[] = {"pkg.Greeter", "pkg.Billing", "acme.v1.Search", "pkg.Auth"};
#define NSERVICES 4

typedef struct opts {
    uint64_t seed;
    int nodes;
    uint64_t duration_ms;
    int verbose;
    int dataloss;
    int faults;
    int keep_going; /* run to the end after a violation (default: stop at the first) */
} opts_t;

typedef struct world world_t;

/* One simulated meshd node: its link to etcd, its supervised registry actor and the routes
 * subscriber that receives the actor's tables. */
typedef struct node_ref {
    world_t *wd;
    int i;
    sim_etcd_link_t *link;
    reg_actor_args_t *args;
    mesh_child_spec_t child;
    mesh_supervisor_spec_t sup;
    mesh_actor_id_t registry; /* filled by the supervisor */
    mesh_actor_id_t subscriber;
    const reg_view_t *view; /* the current incarnation's, from the hook */
    uint64_t publishes, tables;
    size_t last_services;
    int expect_same; /* crashed: the next table must hold what the last one did */
    uint64_t tables_at_crash;
    size_t services_at_crash;
} node_ref_t;

typedef struct stats {
    uint64_t writes, compactions, restores, backups, drops, partitions, outages, publishes, resyncs,
        compacted, crashes;
} stats_t;

struct world {
    opts_t o;
    mesh_exec_t *sim;
    sim_etcd_t *etcd;
    node_ref_t ref[MAX_NODES];
    uint64_t t0, t_end, quiet_until;
    int dataloss_run; /* this seed may lose etcd's data (once) */
    int64_t lease[NWRITERS];
    uint32_t lease_gen;
    uint64_t part_until[MAX_NODES];
    uint64_t down_until;
    int64_t last_rev[MAX_NODES];
    uint64_t last_resyncs[MAX_NODES];
    uint32_t resync_epoch[MAX_NODES]; /* the epoch that served the node's previous range */
    uint64_t storm_start[MAX_NODES], storm_resyncs[MAX_NODES];
    int storm_reported[MAX_NODES];
    int64_t max_rev;
    uint64_t trace;
    stats_t st;
    int failures;
    char first_failure[768];
};

/* ---- helpers ---- */

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

static void elog(world_t *wd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void elog(world_t *wd, const char *fmt, ...)
{
    if (!wd->o.verbose)
        return;
    printf("%8.3f etcd ", (double)(now_ns(wd) - wd->t0) / 1e9);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf(" [rev %lld]\n", (long long)sim_etcd_revision(wd->etcd));
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

static void note_rev(world_t *wd, int64_t rev)
{
    if (rev > 0) {
        wd->st.writes++;
        if (rev > wd->max_rev)
            wd->max_rev = rev;
        fold(wd, (uint64_t)rev);
    }
}

/* ---- node hooks: the invariants checked during the run ---- */

static void on_publish(world_t *wd, node_ref_t *nr, const reg_view_t *v)
{
    char why[512];
    wd->st.publishes++;
    nr->publishes++;
    uint64_t fp = sim_check_fingerprint(reg_view_table(v));
    fold(wd, fp ^ (uint64_t)reg_view_sm(v)->revision);
    if (wd->o.verbose)
        printf("%8.3f n%d PUBLISH revision %lld, %zu instances, %zu entries\n",
               (double)(now_ns(wd) - wd->t0) / 1e9, nr->i, (long long)reg_view_sm(v)->revision,
               reg_view_table(v)->n_valid, reg_view_table(v)->n_entries);
    if (sim_check_published(wd->etcd, v, fp, why, sizeof(why)) < 0)
        fail(wd, nr->i, why);
}

/* The registry actor's hook: after every step of its view. */
static void on_view(void *ud, const reg_view_t *v, int published)
{
    node_ref_t *nr = ud;
    world_t *wd = nr->wd;
    int i = nr->i;
    if (!v) { /* a (re)start of the actor: its view starts over */
        nr->view = NULL;
        wd->last_resyncs[i] = 0;
        wd->last_rev[i] = 0;
        wd->resync_epoch[i] = 0;
        return;
    }
    nr->view = v;
    if (published)
        on_publish(wd, nr, v);
    const reg_watch_sm_t *sm = reg_view_sm(v);
    int64_t rev = sm->revision;
    uint32_t epoch = (uint32_t)reg_view_range_origin(v);
    int ranged = sm->resyncs > wd->last_resyncs[i];
    char why[256];
    /* Only a range served by a store that lost its data since the node's previous range may
     * take the revision back; once a node ranged the current store it is never ahead of it. */
    if (rev < wd->last_rev[i] && !(ranged && epoch != wd->resync_epoch[i])) {
        snprintf(why, sizeof(why), "revision went backwards from %lld to %lld",
                 (long long)wd->last_rev[i], (long long)rev);
        fail(wd, i, why);
    }
    if (ranged)
        wd->resync_epoch[i] = epoch;
    if (epoch == sim_etcd_epoch(wd->etcd) && rev > sim_etcd_revision(wd->etcd)) {
        snprintf(why, sizeof(why), "revision %lld is ahead of etcd's %lld", (long long)rev,
                 (long long)sim_etcd_revision(wd->etcd));
        fail(wd, i, why);
    }
    if (ranged) {
        /* A range storm: many full ranges within one second (no backoff between them). */
        uint64_t now = now_ns(wd);
        if (now - wd->storm_start[i] > 1000 * MS) {
            wd->storm_start[i] = now;
            wd->storm_resyncs[i] = 0;
        }
        wd->storm_resyncs[i] += sm->resyncs - wd->last_resyncs[i];
        if (wd->storm_resyncs[i] > 50 && !wd->storm_reported[i]) {
            wd->storm_reported[i] = 1;
            snprintf(why, sizeof(why),
                     "range storm: %llu full ranges within one second (revision %lld, etcd at "
                     "%lld)",
                     (unsigned long long)wd->storm_resyncs[i], (long long)rev,
                     (long long)sim_etcd_revision(wd->etcd));
            fail(wd, i, why);
        }
    }
    wd->last_resyncs[i] = sm->resyncs;
    if (rev > wd->max_rev && rev > 1) {
        snprintf(why, sizeof(why), "revision %lld is beyond any etcd ever had (%lld)",
                 (long long)rev, (long long)wd->max_rev);
        fail(wd, i, why);
    }
    wd->last_rev[i] = rev;
}

/* The node's routes subscriber (what the node actor is in production): every table the
 * registry actor publishes arrives here. */
static int sub_start(mesh_actor_t *self, void *arg)
{
    *(node_ref_t **)mesh_state(self) = arg;
    return 0;
}

static int sub_message(mesh_actor_t *self, mesh_msg_t *m)
{
    node_ref_t *nr = *(node_ref_t **)mesh_state(self);
    if (m->type == REG_MSG_ROUTES && m->ptr) {
        nr->tables++;
        nr->last_services = mesh_routes_count(m->ptr);
        fold(nr->wd, 0x70u ^ nr->last_services);
        if (nr->expect_same && nr->tables_at_crash > 0) {
            nr->expect_same = 0;
            if (nr->last_services != nr->services_at_crash) {
                char why[160];
                snprintf(why, sizeof(why),
                         "the restarted registry actor published %zu services, not the %zu it "
                         "had before the crash",
                         nr->last_services, nr->services_at_crash);
                fail(nr->wd, nr->i, why);
            }
        }
    }
    return 0;
}

static const mesh_actor_ops_t sub_ops = {
    .name = "routes-subscriber",
    .state_size = sizeof(node_ref_t *),
    .on_start = sub_start,
    .on_message = sub_message,
};

/* ---- workload ---- */

static void addr_of(char *buf, size_t cap, int writer, int a)
{
    snprintf(buf, cap, "10.0.%d.%d:50051", writer + 1, a + 1);
}

static void key_of(char *buf, size_t cap, int svc, const char *addr)
{
    snprintf(buf, cap, "%s%s/%s", PREFIX, services[svc], addr);
}

/* A random live key under the prefix, or NULL. */
static const sim_kv_t *random_live(world_t *wd)
{
    size_t n = 0, count = sim_etcd_live_count(wd->etcd);
    for (size_t i = 0; i < count; i++)
        n += strncmp(sim_etcd_live_at(wd->etcd, i)->key, PREFIX, strlen(PREFIX)) == 0;
    if (!n)
        return NULL;
    size_t pick = rnd(wd, n);
    for (size_t i = 0; i < count; i++) {
        const sim_kv_t *kv = sim_etcd_live_at(wd->etcd, i);
        if (strncmp(kv->key, PREFIX, strlen(PREFIX)) == 0 && pick-- == 0)
            return kv;
    }
    return NULL;
}

static void do_write(world_t *wd)
{
    sim_etcd_t *e = wd->etcd;
    char key[256], val[512], addr[64], node[16];
    int wi = (int)rnd(wd, NWRITERS), a = (int)rnd(wd, NADDRS);
    addr_of(addr, sizeof(addr), wi, a);
    snprintf(node, sizeof(node), "w%d", wi);
    uint64_t r = rnd(wd, 100), shape = mesh_sim_random(wd->sim);
    if (r < 38) { /* register an instance: its services in one txn under the lease */
        int n = 1 + (int)rnd(wd, 3), first = (int)rnd(wd, NSERVICES);
        sim_etcd_txn_begin(e);
        for (int k = 0; k < n; k++) {
            key_of(key, sizeof(key), (first + k) % NSERVICES, addr);
            sim_value_instance(val, sizeof(val), addr, node, shape >> k);
            sim_etcd_txn_put(e, key, val, wd->lease[wi], 0);
        }
        int64_t rev = sim_etcd_txn_commit(e);
        elog(wd, "register %s x%d (lease %llx) -> %lld", addr, n, (unsigned long long)wd->lease[wi],
             (long long)rev);
        note_rev(wd, rev);
    } else if (r < 52) { /* update a live key */
        const sim_kv_t *kv = random_live(wd);
        if (!kv)
            return;
        snprintf(key, sizeof(key), "%s", kv->key);
        int64_t lease = kv->lease;
        uint32_t tag = strstr(key, "/10.0.") ? 0 : SIM_TAG_MALFORMED; /* a bad key stays bad */
        const char *slash = strrchr(key, '/');
        sim_value_instance(val, sizeof(val), slash ? slash + 1 : "10.9.9.9:1", node, shape);
        sim_etcd_txn_begin(e);
        sim_etcd_txn_put(e, key, val, lease, tag);
        int64_t rev = sim_etcd_txn_commit(e);
        elog(wd, "update %s -> %lld", key, (long long)rev);
        note_rev(wd, rev);
    } else if (r < 66) { /* deregister one key */
        const sim_kv_t *kv = random_live(wd);
        if (!kv)
            return;
        snprintf(key, sizeof(key), "%s", kv->key);
        sim_etcd_txn_begin(e);
        sim_etcd_txn_delete(e, key);
        int64_t rev = sim_etcd_txn_commit(e);
        elog(wd, "delete %s -> %lld", key, (long long)rev);
        note_rev(wd, rev);
    } else if (r < 72) { /* deregister an instance: every service key in one txn */
        sim_etcd_txn_begin(e);
        for (int s = 0; s < NSERVICES; s++) {
            key_of(key, sizeof(key), s, addr);
            sim_etcd_txn_delete(e, key);
        }
        int64_t rev = sim_etcd_txn_commit(e);
        elog(wd, "deregister %s -> %lld", addr, (long long)rev);
        note_rev(wd, rev);
    } else if (r < 76) { /* the writer's lease expires: its keys go in one revision */
        int64_t rev = sim_etcd_revoke(e, wd->lease[wi]);
        elog(wd, "lease %llx expired -> %lld", (unsigned long long)wd->lease[wi], (long long)rev);
        note_rev(wd, rev);
        wd->lease[wi] = 0x1000 * (wi + 1) + ++wd->lease_gen;
    } else if (r < 82) { /* a malformed value or a resolver Delete record */
        key_of(key, sizeof(key), (int)rnd(wd, NSERVICES), addr);
        uint32_t tag = sim_value_odd(val, sizeof(val), addr, shape);
        sim_etcd_txn_begin(e);
        sim_etcd_txn_put(e, key, val, wd->lease[wi], tag);
        int64_t rev = sim_etcd_txn_commit(e);
        elog(wd, "odd put %s = '%s' -> %lld", key, val, (long long)rev);
        note_rev(wd, rev);
    } else if (r < 85) { /* a key of the wrong shape */
        sim_key_bad(key, sizeof(key), PREFIX, shape);
        sim_value_instance(val, sizeof(val), "10.9.9.9:1", node, shape >> 3);
        sim_etcd_txn_begin(e);
        sim_etcd_txn_put(e, key, val, 0, SIM_TAG_MALFORMED);
        int64_t rev = sim_etcd_txn_commit(e);
        elog(wd, "bad key %s -> %lld", key, (long long)rev);
        note_rev(wd, rev);
    } else if (r < 88) { /* outside the prefix: no node may see it */
        snprintf(key, sizeof(key), "%s",
                 shape & 1 ? "meshd/services2/pkg.X/10.1.1.1:1" : "other/k");
        sim_value_instance(val, sizeof(val), "10.1.1.1:1", node, shape >> 1);
        sim_etcd_txn_begin(e);
        sim_etcd_txn_put(e, key, val, 0, 0);
        int64_t rev = sim_etcd_txn_commit(e);
        elog(wd, "outside put %s -> %lld", key, (long long)rev);
        note_rev(wd, rev);
    } else if (r < 92) { /* compaction */
        int64_t cur = sim_etcd_revision(e), lo = sim_etcd_compact_revision(e) + 1;
        if (cur < lo)
            return;
        int64_t c = rnd(wd, 2) ? cur : lo + (int64_t)rnd(wd, (uint64_t)(cur - lo + 1));
        if (sim_etcd_compact(e, c) == 0) {
            wd->st.compactions++;
            fold(wd, 0xc0ull << 32 | (uint64_t)c);
            elog(wd, "compact at %lld", (long long)c);
        }
    } else if (r < 94) { /* deleting a missing key takes no revision */
        sim_etcd_txn_begin(e);
        sim_etcd_txn_delete(e, PREFIX "pkg.Nobody/10.255.0.1:1");
        if (sim_etcd_txn_commit(e) != 0)
            fail(wd, -1, "a no-op delete took a revision (model bug)");
    }
}

static void workload_tick(void *arg)
{
    world_t *wd = arg;
    if (now_ns(wd) >= wd->t_end)
        return;
    if (now_ns(wd) >= wd->quiet_until)
        do_write(wd);
    at(wd, 2 * MS + rnd(wd, 40 * MS), workload_tick, wd);
}

/* ---- faults ---- */

static void heal_node(void *arg)
{
    node_ref_t *nr = arg;
    world_t *wd = nr->wd;
    if (now_ns(wd) < wd->part_until[nr->i])
        return; /* partitioned again meanwhile */
    if (!sim_etcd_reachable(wd->etcd, (uint32_t)nr->i) || wd->part_until[nr->i]) {
        sim_etcd_set_partitioned(wd->etcd, (uint32_t)nr->i, 0);
        wd->part_until[nr->i] = 0;
        elog(wd, "partition of node %d healed", nr->i);
    }
}

static void etcd_up(void *arg)
{
    world_t *wd = arg;
    if (now_ns(wd) < wd->down_until || !wd->down_until)
        return;
    wd->down_until = 0;
    sim_etcd_set_down(wd->etcd, 0);
    elog(wd, "etcd up");
}

static void heal_all(void *arg)
{
    world_t *wd = arg;
    for (int i = 0; i < wd->o.nodes; i++) {
        wd->part_until[i] = 0;
        sim_etcd_set_partitioned(wd->etcd, (uint32_t)i, 0);
    }
    wd->down_until = 0;
    sim_etcd_set_down(wd->etcd, 0);
    elog(wd, "everything healed; no more writes or faults");
}

static void do_fault(world_t *wd)
{
    int i = (int)rnd(wd, (uint64_t)wd->o.nodes);
    uint64_t r = rnd(wd, 100);
    fold(wd, 0xfa0000ull | r << 8 | (uint64_t)i);
    if (r < 20) {
        int n = sim_etcd_break_watches(wd->etcd, (uint32_t)i, SIM_BREAK_CLOSE);
        wd->st.drops += (uint64_t)n;
        elog(wd, "node %d's connection dropped (%d streams)", i, n);
    } else if (r < 28) {
        int n = sim_etcd_break_watches(wd->etcd, (uint32_t)i, SIM_BREAK_ERROR);
        elog(wd, "error line to node %d (%d streams)", i, n);
    } else if (r < 34) {
        int n = sim_etcd_break_watches(wd->etcd, (uint32_t)i, SIM_BREAK_CANCEL);
        elog(wd, "watch of node %d canceled by etcd (%d streams)", i, n);
    } else if (r < 58) {
        uint64_t d = 100 * MS + rnd(wd, 3900 * MS);
        if (now_ns(wd) + d > wd->part_until[i])
            wd->part_until[i] = now_ns(wd) + d;
        sim_etcd_set_partitioned(wd->etcd, (uint32_t)i, 1);
        wd->st.partitions++;
        elog(wd, "node %d partitioned for %llu ms", i, (unsigned long long)(d / MS));
        at(wd, d, heal_node, &wd->ref[i]);
    } else if (r < 70) {
        uint64_t d = 100 * MS + rnd(wd, 2900 * MS);
        if (now_ns(wd) + d > wd->down_until)
            wd->down_until = now_ns(wd) + d;
        sim_etcd_set_down(wd->etcd, 1);
        wd->st.outages++;
        elog(wd, "etcd down for %llu ms", (unsigned long long)(d / MS));
        at(wd, d, etcd_up, wd);
    } else if (r < 85) {
        sim_etcd_backup(wd->etcd);
        wd->st.backups++;
        elog(wd, "backup taken");
    } else if (r >= 89 && r < 95) {
        /* The registry actor crashes; its supervisor restarts it with backoff. The restarted
         * actor must first publish the routes it had (the subscriber checks), then catch up. */
        node_ref_t *nr = &wd->ref[i];
        if (nr->registry && mesh_sim_crash(wd->sim, nr->registry) == 0) {
            wd->st.crashes++;
            nr->expect_same = nr->publishes > 0; /* it had an etcd table to keep serving */
            nr->tables_at_crash = nr->tables;
            nr->services_at_crash = nr->last_services;
            elog(wd, "node %d's registry actor crashed", i);
        }
    } else if (r < 89 && wd->dataloss_run && !wd->st.restores) {
        int64_t before = sim_etcd_revision(wd->etcd);
        if (sim_etcd_restore(wd->etcd) < 0)
            return;
        wd->st.restores++;
        elog(wd, "DATA LOSS: restored from backup, revision %lld -> %lld", (long long)before,
             (long long)sim_etcd_revision(wd->etcd));
        /* etcd restarts from the backup: every partition heals, it is down for a moment, and
         * the writers stay away until every node had the time to notice (max backoff 5 s):
         * a node that reconnects only once the store is back above its revision cannot tell
         * (etcdutl's --bump-revision exists for that), which no client can fix. */
        for (int k = 0; k < wd->o.nodes; k++) {
            wd->part_until[k] = 0;
            sim_etcd_set_partitioned(wd->etcd, (uint32_t)k, 0);
        }
        uint64_t d = 200 * MS + rnd(wd, 800 * MS);
        wd->down_until = now_ns(wd) + d;
        sim_etcd_set_down(wd->etcd, 1);
        at(wd, d, etcd_up, wd);
        wd->quiet_until = now_ns(wd) + d + 8000 * MS;
    }
}

static void fault_tick(void *arg)
{
    world_t *wd = arg;
    if (now_ns(wd) >= wd->t_end)
        return;
    if (wd->o.faults && now_ns(wd) >= wd->quiet_until)
        do_fault(wd);
    at(wd, 100 * MS + rnd(wd, 1100 * MS), fault_tick, wd);
}

static void progress_tick(void *arg)
{
    world_t *wd = arg;
    if (now_ns(wd) >= wd->t_end)
        return;
    sim_etcd_progress(wd->etcd);
    at(wd, 200 * MS + rnd(wd, 800 * MS), progress_tick, wd);
}

/* ---- one run ---- */

static int stopped(const world_t *wd)
{
    return wd->failures && !wd->o.keep_going;
}

/* Runs the simulation until virtual time until_ns, or the first violation. */
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
    int64_t revision;
    size_t live;
} result_t;

static result_t run_seed(const opts_t *o)
{
    world_t *wd = calloc(1, sizeof(*wd));
    if (!wd)
        abort();
    wd->o = *o;
    wd->trace = 0xcbf29ce484222325ull;
    wd->sim = mesh_sim_new(o->seed);
    wd->etcd = sim_etcd_new(PREFIX, o->seed);
    if (!wd->sim || !wd->etcd)
        abort();
    wd->t0 = now_ns(wd);
    wd->t_end = wd->t0 + o->duration_ms * MS;
    wd->max_rev = 1;
    for (int k = 0; k < NWRITERS; k++)
        wd->lease[k] = 0x1000 * (k + 1);
    sim_link_cfg_t link = {.latency_min_ns = 1 * MS,
                           .latency_jitter_ns = 9 * MS,
                           .fail_min_ns = 1 * MS,
                           .fail_jitter_ns = 500 * MS,
                           .reset_pct = 50};
    sim_link_hooks_t lh = {.ud = wd, .log = o->verbose ? sim_print_line : NULL, .fold = fold};
    for (int i = 0; i < o->nodes; i++) {
        node_ref_t *nr = &wd->ref[i];
        *nr = (node_ref_t){.wd = wd, .i = i};
        nr->link = sim_etcd_link_new(wd->sim, wd->etcd, (uint32_t)i, &link, &lh);
        if (mesh_exec_spawn(wd->sim, &sub_ops, nr, NULL, &nr->subscriber) < 0)
            abort();
        reg_actor_cfg_t rc = {
            .etcd_new = sim_etcd_factory,
            .etcd_arg = nr->link,
            .prefix = PREFIX,
            .watch = 1,
            .subscriber = nr->subscriber,
            .on_view = on_view,
            .hooks_ud = nr,
        };
        nr->args = reg_actor_args_new(&rc, NULL);
        if (!nr->args)
            abort();
        nr->child = (mesh_child_spec_t){.ops = &reg_actor_ops,
                                        .arg = nr->args,
                                        .opts = {.mailbox = REG_ACTOR_MAILBOX},
                                        .id_out = &nr->registry};
        nr->sup = (mesh_supervisor_spec_t){.name = "registry-supervisor",
                                           .children = &nr->child,
                                           .nchildren = 1,
                                           .max_restarts = 1000,
                                           .backoff_initial_ns = 50 * MS,
                                           .backoff_max_ns = 1000 * MS};
        if (mesh_exec_spawn(wd->sim, &mesh_supervisor_ops, &nr->sup, NULL, NULL) < 0)
            abort();
    }
    wd->dataloss_run = o->dataloss && rnd(wd, 4) == 0;
    at(wd, 1 * MS, workload_tick, wd);
    at(wd, 50 * MS, fault_tick, wd);
    at(wd, 200 * MS, progress_tick, wd);
    if (mesh_sim_call_at(wd->sim, wd->t_end, heal_all, wd) < 0)
        abort();
    /* Heal, give every node the time to come back (backoff is at most 5 s), then tell them
     * where etcd is and run until nothing is left to do. */
    run_to(wd, wd->t_end + 10000 * MS);
    elog(wd, "final progress notification");
    sim_etcd_progress(wd->etcd);
    /* Quiet means no event left; a node that keeps talking to etcd without end (a livelock)
     * is a failure, not a hang. */
    run_to(wd, wd->t_end + 70000 * MS);
    if (!stopped(wd) && mesh_sim_run(wd->sim, 1) > 0)
        fail(wd, -1, "still busy a minute after the last progress notification (livelock)");

    char why[512];
    for (int i = 0; i < o->nodes; i++) {
        const reg_view_t *v = wd->ref[i].view;
        if (!v) {
            fail(wd, i, "its registry actor never ran its view");
            continue;
        }
        wd->st.resyncs += reg_view_sm(v)->resyncs;
        wd->st.compacted += reg_view_sm(v)->compacted;
    }
    for (int i = 0; !stopped(wd) && i < o->nodes; i++) {
        const reg_view_t *v = wd->ref[i].view;
        const reg_watch_sm_t *sm = reg_view_sm(v);
        if (sim_check_final(wd->etcd, v, PREFIX, why, sizeof(why)) < 0)
            fail(wd, i, why);
        if (wd->ref[i].tables == 0)
            fail(wd, i, "its subscriber never received a routing table");
        if (o->verbose)
            printf("node %d: %s %s revision %lld, %zu instances, %zu entries, %llu publishes, "
                   "%llu tables, %llu resyncs, %llu compacted\n",
                   i, reg_watch_state_name(sm->state), reg_link_name(sm->link),
                   (long long)sm->revision, reg_view_table(v)->n_valid,
                   reg_view_table(v)->n_entries, (unsigned long long)wd->ref[i].publishes,
                   (unsigned long long)wd->ref[i].tables, (unsigned long long)sm->resyncs,
                   (unsigned long long)sm->compacted);
    }
    if (!stopped(wd) && sim_etcd_open_watches(wd->etcd) != (size_t)o->nodes) {
        snprintf(why, sizeof(why), "etcd has %zu open watches for %d nodes",
                 sim_etcd_open_watches(wd->etcd), o->nodes);
        fail(wd, -1, why);
    }

    result_t r = {.failures = wd->failures, .st = wd->st};
    r.hash = wd->trace ^ (mesh_sim_trace_hash(wd->sim) * 0x9e3779b97f4a7c15ull);
    r.revision = sim_etcd_revision(wd->etcd);
    r.live = sim_etcd_live_count(wd->etcd);
    snprintf(r.why, sizeof(r.why), "%s", wd->first_failure);
    mesh_exec_free(wd->sim);
    for (int i = 0; i < o->nodes; i++) {
        sim_etcd_link_free(wd->ref[i].link);
        reg_actor_args_free(wd->ref[i].args);
    }
    sim_etcd_free(wd->etcd);
    free(wd);
    return r;
}

/* ---- many seeds ---- */

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
    sw->tot.writes += r.st.writes;
    sw->tot.compactions += r.st.compactions;
    sw->tot.restores += r.st.restores;
    sw->tot.publishes += r.st.publishes;
    sw->tot.resyncs += r.st.resyncs;
    sw->tot.compacted += r.st.compacted;
    sw->tot.drops += r.st.drops;
    sw->tot.partitions += r.st.partitions;
    sw->tot.outages += r.st.outages;
    sw->tot.crashes += r.st.crashes;
}

static void sweep_replay(void *ud, uint64_t seed)
{
    sweep_t *sw = ud;
    sw->o.seed = seed;
    print_replay(&sw->o);
}

/* ---- main ---- */

static void print_seed(void *ud)
{
    const result_t *r = &((const sweep_t *)ud)->last;
    printf("revision %lld live %zu writes %llu compactions %llu restores %llu publishes %llu "
           "resyncs %llu compacted-watches %llu",
           (long long)r->revision, r->live, (unsigned long long)r->st.writes,
           (unsigned long long)r->st.compactions, (unsigned long long)r->st.restores,
           (unsigned long long)r->st.publishes, (unsigned long long)r->st.resyncs,
           (unsigned long long)r->st.compacted);
}

static void print_size(void *ud)
{
    const sweep_t *sw = ud;
    printf("%d nodes, %llu ms each", sw->o.nodes, (unsigned long long)sw->o.duration_ms);
}

static void print_totals(void *ud)
{
    const stats_t *tot = &((const sweep_t *)ud)->tot;
    printf("writes %llu compactions %llu data-losses %llu drops %llu partitions %llu outages %llu "
           "crashes %llu publishes %llu resyncs %llu watches-lost-to-compaction %llu",
           (unsigned long long)tot->writes, (unsigned long long)tot->compactions,
           (unsigned long long)tot->restores, (unsigned long long)tot->drops,
           (unsigned long long)tot->partitions, (unsigned long long)tot->outages,
           (unsigned long long)tot->crashes, (unsigned long long)tot->publishes,
           (unsigned long long)tot->resyncs, (unsigned long long)tot->compacted);
}

static void usage(void)
{
    fprintf(stderr, "usage: registry_sim [--seed N | --seeds COUNT [--first-seed S]] [--verbose]\n"
                    "                    [--nodes N] [--duration-ms MS] [--no-dataloss] "
                    "[--no-faults] [--keep-going]\n");
    exit(2);
}

static void print_replay(const opts_t *o)
{
    printf("  replay: registry_sim --seed %llu --verbose%s%s --nodes %d --duration-ms %llu\n",
           (unsigned long long)o->seed, o->dataloss ? "" : " --no-dataloss",
           o->faults ? "" : " --no-faults", o->nodes, (unsigned long long)o->duration_ms);
}

int main(int argc, char **argv)
{
    opts_t o = {.seed = 1, .nodes = 5, .duration_ms = 20000, .dataloss = 1, .faults = 1};
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
        } else if (!strcmp(a, "--no-dataloss")) {
            o.dataloss = 0;
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
    mesh_log_init("sim", MESH_LOG_OFF, MESH_LOG_FORMAT_TEXT);
    setvbuf(stdout, NULL, _IOLBF, 0);

    sweep_t sw = {.o = o};
    const sim_main_cfg_t cfg = {sweep_seed, sweep_replay, print_seed, print_size, print_totals};
    return sim_run_main(&seeds, &cfg, &sw);
}
