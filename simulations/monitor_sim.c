/*
 * simulations/monitor_sim.c: the monitor simulation: two or three `meshd monitor` replicas, each
 * the production monitor actor (monitor/monitor_actor.c: the election, the watch-fed view of
 * the registrations, the probing rounds, the valves and the fenced eviction and re-admission
 * txns) under the production supervisor, against one simulated etcd reached through simulated
 * networks (simulations/sim_etcd_link.c) and simulated apps (simulations/sim_app.c), on the
 * simulated executor, with faults drawn from the seed.
 *
 * Each instance is one app with one copy per monitor (sim_app serves one client at a time):
 * the instance's own faults go on every copy, a cut between one monitor and the instance on
 * that monitor's copy only (it goes silent: calls are never answered, no RST). The instances'
 * sidecars are scripted here: each registers its key under a lease it keeps alive, puts the key
 * back when it vanished unless an eviction marker names its lease, and now and then is
 * replaced by a fresh pod (a new lease, the key put again under it, the old lease revoked).
 *
 * Faults (every 0.4-2 s for the first DURATION): an instance NOT_SERVING, down (refused) or
 * silent for 0.5-8 s; an instance flapping; a re-registration with a new lease (a fresh, healthy
 * pod); the leader crashes (its lease revoked on the way out, or, as a kill, not) and the
 * supervisor restarts it; the leader is partitioned from etcd; a monitor is cut off from every
 * instance (its safety valve must hold) or from one; an operator revokes the leader's election
 * lease (the deposed leader does not know yet: the fence must stop it); a standby crashes.
 *
 * Invariants: checked on every eviction etcd applies (a watch on the whole store, whose lines
 * reach this file synchronously):
 *   - the evicting monitor holds the leader key when etcd applies the eviction, and every
 *     eviction under one fence (the key's create revision) comes from one monitor;
 *   - the registration the eviction deletes is the one the marker names (its lease): a stale
 *     verdict never deletes a fresh registration;
 *   - the evicted instances (a marker naming the live registration's lease, or no registration)
 *     never exceed monitor.max-share of the instances;
 * and every 100 ms of virtual time (bounds from the timers below, printed with --verbose):
 *   - a dead instance (unhealthy on every copy) is evicted within BOUND_EVICT once the monitors
 *     are undisturbed, when the valve lets it (bad instances within the share);
 *   - an evicted instance that answers again is re-admitted (its marker deleted) within
 *     BOUND_READMIT plus its hysteresis delay once the monitors are undisturbed.
 * At the end, after everything healed: every instance registered under its sidecar's lease, no
 * marker left, one leader.
 *
 *   monitor_sim --seed N [--verbose]            one seed (replay a failure)
 *   monitor_sim --seeds COUNT [--first-seed S]  many seeds, then the determinism check
 *   options: --monitors N (2..3), --instances N (2..16), --duration-ms MS, --no-faults,
 *            --keep-going
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/exec.h"
#include "actors/sim.h"
#include "actors/supervisor.h"
#include "common/log.h"
#include "gossip/gossip_actor.h"
#include "monitor/monitor_actor.h"
#include "registry/instance.h"
#include "simulations/sim_app.h"
#include "simulations/sim_etcd.h"
#include "simulations/sim_etcd_link.h"
#include "simulations/sim_sweep.h"

#define MS                1000000ull
#define S                 (1000 * MS)
#define MAX_MON           3
#define MAX_INST          16
#define PREFIX            "meshd/services"
#define LEADER_KEY        "meshd/monitor/leader"
#define MARKER_PREFIX     "meshd/evicted/"
#define SIDECAR_TTL_S     6
#define CLIENT_SIDECAR(i) (100u + (uint32_t)(i))
#define CLIENT_CHECKER    200u

/* The monitors' timers (the bounds below are derived from them). */
#define INTERVAL_MS      1000
#define CHECK_TIMEOUT_MS 400
#define FAILURES         3
#define SUCCESSES        2
#define LEASE_TTL_MS     3000
#define MARKER_TTL_MS    15000
#define READMIT_MS       2000
#define READMIT_MAX_MS   16000
#define MAX_SHARE        0.5
#define ZONE_SHARE       0.5
#define ZONES            2
#define PER_MINUTE       20
#define INDIRECT         3
/* The rate valve's bucket as the checker mirrors it: below this many tokens the leader's own
 * bucket may be empty (tokens a refused txn spent, which the mirror does not see). */
#define RATE_LOW 4.0
/* An instance members reached (up, not silent) for this long before an eviction was reached by
 * the member asked: the indirect check must have vetoed it. The member's answer, the txn, and
 * slack. */
#define VETO_WINDOW_NS ((uint64_t)(CHECK_TIMEOUT_MS + GSP_CHECK_SLACK_MS) * MS + 2 * S)
/* After the last disturbance of the monitors, a leader leads within TAKEOVER: the deposed
 * leader's lease expires (TTL), the checker's lessor tick (100 ms) deletes its key, the
 * standby's watch and campaign (a few ms), the eviction lease and the markers listed. */
#define TAKEOVER_NS ((uint64_t)LEASE_TTL_MS * MS + 1 * S)
/* A dead instance: FAILURES failed checks, one round each (INTERVAL), the last one's deadline,
 * the round that starts late, the txn, and slack for latencies. */
#define BOUND_EVICT_NS                                                                             \
    (TAKEOVER_NS + (uint64_t)(FAILURES + 1) * INTERVAL_MS * MS + CHECK_TIMEOUT_MS * MS + 1 * S)
/* An instance that answers again: SUCCESSES good checks, the round that starts late, the
 * hysteresis delay (counted from the eviction or from when a new leader listed the marker;
 * added per instance), the txn, and slack. */
#define BOUND_READMIT_NS                                                                           \
    (TAKEOVER_NS + (uint64_t)(SUCCESSES + 2) * INTERVAL_MS * MS + CHECK_TIMEOUT_MS * MS + 1 * S)

typedef struct opts {
    uint64_t seed;
    int monitors, instances;
    uint64_t duration_ms;
    int verbose;
    int faults;
    int keep_going;
} opts_t;

typedef struct world world_t;

/* One instance: its app copies (one per monitor) and its scripted sidecar. */
typedef struct inst {
    world_t *wd;
    int i;
    char addr[32], service[64], key[256], marker[256];
    sim_app_t *app[MAX_MON];
    int64_t lease;                             /* the sidecar's lease now */
    uint64_t ns_until, down_until, hung_until; /* its own faults (every copy) */
    uint64_t cut_until[MAX_MON];               /* cut off from one monitor (that copy) */
    uint64_t healthy_since, unhealthy_since;   /* 0 when not in that state */
    uint64_t last_unhealthy;                   /* last time it was seen unhealthy */
    uint64_t marker_at;                        /* when its live marker was put */
    int flaps_left;                            /* flapping: NOT_SERVING windows to come */
    /* the registration etcd holds (from the watch) */
    int64_t shadow_lease;
    int64_t shadow_mod;
} inst_t;

/* One monitor replica. */
typedef struct mon_node {
    world_t *wd;
    int i;
    char name[16];
    sim_etcd_link_t *link;
    mon_args_t args;
    mesh_child_spec_t child;
    mesh_supervisor_spec_t sup;
    mesh_actor_id_t actor;
    uint64_t cut_until;  /* cut off from every instance */
    uint64_t part_until; /* partitioned from etcd */
} mon_node_t;

typedef struct stats {
    uint64_t inst_faults, flaps, reregs, crashes, kills, partitions, cutoffs, cuts, revokes,
        evictions, readmissions, evict_checks, readmit_checks, indirect, vetoes;
} stats_t;

/* Fence -> the monitor whose evictions etcd applied under it. */
typedef struct fence_rec {
    int64_t fence;
    char node[16];
} fence_rec_t;

struct world {
    opts_t o;
    mesh_exec_t *sim;
    sim_etcd_t *etcd;
    mon_node_t m[MAX_MON];
    inst_t in[MAX_INST];
    uint64_t t0, t_end;
    uint64_t disturbed_until;    /* the monitors are undisturbed after this */
    uint64_t valve_bad_at;       /* last time more instances were bad than the valve lets go */
    uint64_t zone_bad_at[ZONES]; /* the same per zone */
    double tokens;               /* the rate valve's bucket, mirrored from applied evictions */
    uint64_t tokens_at;
    uint64_t rate_low_at;   /* last time the mirrored bucket was low */
    mesh_actor_id_t member; /* the gossip member answering indirect checks */
    uint64_t trace;
    stats_t st;
    fence_rec_t fences[256];
    size_t n_fences;
    int failures;
    char first_failure[768];
};

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

static double secs(world_t *wd, uint64_t t)
{
    return (double)(t - wd->t0) / 1e9;
}

static void vlog(world_t *wd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void vlog(world_t *wd, const char *fmt, ...)
{
    if (!wd->o.verbose)
        return;
    printf("%8.3f ", secs(wd, now_ns(wd)));
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

static void fail(world_t *wd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(world_t *wd, const char *fmt, ...)
{
    wd->failures++;
    char why[600], buf[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    snprintf(buf, sizeof(buf), "t=%.3fs: %s", secs(wd, now_ns(wd)), why);
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

static void disturbed(world_t *wd, uint64_t until)
{
    if (until > wd->disturbed_until)
        wd->disturbed_until = until;
}

static uint64_t max3(uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t m = a > b ? a : b;
    return m > c ? m : c;
}

/* A JSON string field of a value ("" when absent). */
static void json_field(const char *value, const char *name, char *out, size_t cap)
{
    out[0] = 0;
    json_t *o = value ? json_loads(value, 0, NULL) : NULL;
    json_t *f = o ? json_object_get(o, name) : NULL;
    if (json_is_string(f))
        snprintf(out, cap, "%s", json_string_value(f));
    else if (json_is_integer(f))
        snprintf(out, cap, "%lld", (long long)json_integer_value(f));
    json_decref(o);
}

/* The monitor named in the leader key, "" when none. */
static void leader_name(world_t *wd, char *out, size_t cap)
{
    const sim_kv_t *kv = sim_etcd_get(wd->etcd, LEADER_KEY);
    out[0] = 0;
    if (kv)
        json_field(kv->value, "node", out, cap);
}

static mon_node_t *leader_node(world_t *wd)
{
    char name[32];
    leader_name(wd, name, sizeof(name));
    for (int k = 0; k < wd->o.monitors; k++)
        if (strcmp(wd->m[k].name, name) == 0)
            return &wd->m[k];
    return NULL;
}

/* ---- instances: faults on their copies ------------------------------------------------------ */

static int inst_healthy(world_t *wd, const inst_t *n)
{
    uint64_t now = now_ns(wd);
    return now >= n->ns_until && now >= n->down_until && now >= n->hung_until;
}

/* Sets every copy from the instance's faults and cuts, and tracks its health. */
static void apply(inst_t *n)
{
    world_t *wd = n->wd;
    uint64_t now = now_ns(wd);
    for (int k = 0; k < wd->o.monitors; k++) {
        sim_app_set_serving(n->app[k], now >= n->ns_until);
        sim_app_set_up(n->app[k], now >= n->down_until);
        sim_app_set_hung(n->app[k],
                         now < n->hung_until || now < n->cut_until[k] || now < wd->m[k].cut_until);
    }
    if (inst_healthy(wd, n)) {
        n->unhealthy_since = 0;
        if (!n->healthy_since)
            n->healthy_since = now;
    } else {
        n->healthy_since = 0;
        n->last_unhealthy = now;
        if (!n->unhealthy_since)
            n->unhealthy_since = now;
    }
}

static void apply_cb(void *arg)
{
    apply(arg);
}

static void apply_all(void *arg)
{
    world_t *wd = arg;
    for (int i = 0; i < wd->o.instances; i++)
        apply(&wd->in[i]);
}

static sim_app_t *app_of(world_t *wd, int mon, const char *addr)
{
    for (int i = 0; i < wd->o.instances; i++)
        if (strcmp(wd->in[i].addr, addr) == 0)
            return wd->in[i].app[mon];
    return NULL;
}

/* The monitor's call seam: its own copy of the instance at addr. */
static mesh_rpc_t *rpc_factory(mesh_actor_t *self, const char *addr, uint64_t connect_timeout_ms,
                               mesh_rpc_deliver_fn deliver, void *deliver_ud, void *arg)
{
    (void)connect_timeout_ms;
    mon_node_t *mn = arg;
    sim_app_t *a = app_of(mn->wd, mn->i, addr);
    return a ? sim_app_factory(self, deliver, deliver_ud, a) : NULL;
}

/* ---- the gossip member asked for indirect checks -------------------------------------------- */

/* It stands for the gossip members a monitor's node asks (gossip/check.h): it answers every
 * GSP_MSG_CHECK after a delay drawn from the seed, for INDIRECT members, from the instance's
 * own state at that time: a member's TCP connect reaches an instance that is up and not silent
 * (NOT_SERVING still accepts connections); the cuts between one monitor and an instance do not
 * touch the members' paths. */
typedef struct member_reply {
    world_t *wd;
    gsp_check_req_t req;
} member_reply_t;

static inst_t *inst_by_addr(world_t *wd, const char *addr)
{
    for (int i = 0; i < wd->o.instances; i++)
        if (strcmp(wd->in[i].addr, addr) == 0)
            return &wd->in[i];
    return NULL;
}

static void member_reply(void *arg)
{
    member_reply_t *r = arg;
    world_t *wd = r->wd;
    uint64_t now = now_ns(wd);
    const inst_t *n = inst_by_addr(wd, r->req.addr);
    gsp_check_done_t *d = calloc(1, sizeof(*d));
    if (!d)
        abort();
    d->asker = r->req.reply_to;
    d->tag = r->req.tag;
    d->asked = d->answered = r->req.k;
    if (n && now >= n->down_until && now >= n->hung_until) {
        d->reached = 1;
        snprintf(d->by, sizeof(d->by), "member-%d", (int)rnd(wd, r->req.k ? r->req.k : 1));
        wd->st.vetoes++;
    }
    wd->st.indirect++;
    vlog(wd, "indirect check of %s: %s", r->req.addr,
         d->reached ? "reached (veto)" : "not reached");
    if (mesh_exec_send_ptr(wd->sim, r->req.reply_to, GSP_MSG_CHECK_DONE, d, free) != 0)
        free(d); /* the asking monitor crashed meanwhile */
    free(r);
}

static int member_start(mesh_actor_t *self, void *arg)
{
    *(world_t **)mesh_state(self) = arg;
    return 0;
}

static int member_message(mesh_actor_t *self, mesh_msg_t *m)
{
    world_t *wd = *(world_t **)mesh_state(self);
    if (m->type != GSP_MSG_CHECK || !m->ptr)
        return 0;
    member_reply_t *r = calloc(1, sizeof(*r));
    if (!r)
        abort();
    r->wd = wd;
    r->req = *(const gsp_check_req_t *)m->ptr;
    /* the datagrams both ways and the members' connects: 2-300 ms */
    at(wd, 2 * MS + rnd(wd, 298 * MS), member_reply, r);
    return 0;
}

static const mesh_actor_ops_t member_ops = {.name = "gossip-member",
                                            .state_size = sizeof(world_t *),
                                            .on_start = member_start,
                                            .on_message = member_message};

/* ---- the scripted sidecars ------------------------------------------------------------------ */

static void put_key(world_t *wd, inst_t *n)
{
    char val[160];
    snprintf(val, sizeof(val),
             "{\"Op\":0,\"Addr\":\"%s\",\"Metadata\":null,\"meshd\":{\"zone\":\"z%d\"}}", n->addr,
             n->i % ZONES);
    sim_etcd_txn_begin(wd->etcd);
    sim_etcd_txn_put(wd->etcd, n->key, val, n->lease, 0);
    sim_etcd_txn_commit(wd->etcd);
}

/* The marker's lease, 0 when there is no marker. */
static int64_t marker_lease(world_t *wd, const inst_t *n)
{
    const sim_kv_t *m = sim_etcd_get(wd->etcd, n->marker);
    return m ? reg_marker_lease(m->value, strlen(m->value)) : 0;
}

/* What a sidecar does on each keepalive: keep the lease, put the key back when it vanished
 * while no marker names the lease (registry/registration.c's rule). */
static void sidecar_tick(world_t *wd, inst_t *n, int keepalive)
{
    uint64_t now = now_ns(wd);
    if (keepalive && sim_etcd_lease_keepalive(wd->etcd, CLIENT_SIDECAR(n->i), n->lease, now) == 0)
        n->lease = 0;
    if (!n->lease) {
        n->lease = sim_etcd_lease_grant(wd->etcd, CLIENT_SIDECAR(n->i), SIDECAR_TTL_S, now);
        put_key(wd, n);
        return;
    }
    if (!sim_etcd_get(wd->etcd, n->key) && marker_lease(wd, n) != n->lease) {
        put_key(wd, n);
        vlog(wd, "instance %d: sidecar put its key back (lease %llx)", n->i,
             (unsigned long long)n->lease);
    }
}

/* A fresh pod: a new lease, the key put under it, the old lease revoked; healthy. */
static void reregister(world_t *wd, inst_t *n)
{
    int64_t old = n->lease;
    n->lease = sim_etcd_lease_grant(wd->etcd, CLIENT_SIDECAR(n->i), SIDECAR_TTL_S, now_ns(wd));
    n->ns_until = n->down_until = n->hung_until = 0;
    apply(n);
    put_key(wd, n);
    sim_etcd_lease_revoke(wd->etcd, old);
    vlog(wd, "instance %d: a fresh pod registered under lease %llx (was %llx)", n->i,
         (unsigned long long)n->lease, (unsigned long long)old);
}

/* ---- invariants on every eviction etcd applies ---------------------------------------------- */

static inst_t *inst_by_key(world_t *wd, const char *key)
{
    for (int i = 0; i < wd->o.instances; i++)
        if (strcmp(wd->in[i].key, key) == 0)
            return &wd->in[i];
    return NULL;
}

static inst_t *inst_by_marker(world_t *wd, const char *key)
{
    for (int i = 0; i < wd->o.instances; i++)
        if (strcmp(wd->in[i].marker, key) == 0)
            return &wd->in[i];
    return NULL;
}

/* Instances evicted in etcd: a marker naming the live registration's lease, or no
 * registration at all. */
static int evicted_count(world_t *wd)
{
    int c = 0;
    for (int i = 0; i < wd->o.instances; i++) {
        inst_t *n = &wd->in[i];
        const sim_kv_t *m = sim_etcd_get(wd->etcd, n->marker);
        const sim_kv_t *k = sim_etcd_get(wd->etcd, n->key);
        if (m && (!k || k->lease == reg_marker_lease(m->value, strlen(m->value))))
            c++;
    }
    return c;
}

/* The mirrored rate bucket: PER_MINUTE tokens a minute, at most PER_MINUTE. */
static void refill(world_t *wd)
{
    uint64_t now = now_ns(wd);
    wd->tokens += (double)(now - wd->tokens_at) * PER_MINUTE / (60.0 * S);
    if (wd->tokens > PER_MINUTE)
        wd->tokens = PER_MINUTE;
    wd->tokens_at = now;
    if (wd->tokens < RATE_LOW)
        wd->rate_low_at = now;
}

static void on_eviction(world_t *wd, inst_t *n, const sim_event_t *ev, const sim_watch_line_t *line)
{
    char mon[32], lease[32], leader[32];
    json_field(ev->kv.value, "monitor", mon, sizeof(mon));
    json_field(ev->kv.value, "lease", lease, sizeof(lease));
    wd->st.evictions++;
    n->marker_at = now_ns(wd);
    /* Fencing: the evicting monitor holds the leader key now; one monitor per fence. */
    const sim_kv_t *lk = sim_etcd_get(wd->etcd, LEADER_KEY);
    leader_name(wd, leader, sizeof(leader));
    if (!lk || strcmp(leader, mon) != 0)
        fail(wd,
             "eviction of instance %d by %s applied at revision %lld while %s holds the "
             "leader key",
             n->i, mon, (long long)ev->kv.mod_revision, lk ? leader : "nobody");
    if (lk) {
        size_t k = 0;
        while (k < wd->n_fences && wd->fences[k].fence != lk->create_revision)
            k++;
        if (k == wd->n_fences && k < sizeof(wd->fences) / sizeof(wd->fences[0])) {
            wd->fences[k].fence = lk->create_revision;
            snprintf(wd->fences[k].node, sizeof(wd->fences[k].node), "%s", mon);
            wd->n_fences++;
        } else if (k < wd->n_fences && strcmp(wd->fences[k].node, mon) != 0) {
            fail(wd, "evictions of two monitors under fence %lld: %s and %s",
                 (long long)lk->create_revision, wd->fences[k].node, mon);
        }
    }
    /* The registration deleted with it is the one the verdict was about. */
    int deleted = 0;
    for (size_t e = 0; e < line->n_events; e++)
        if (line->events[e].is_delete && strcmp(line->events[e].kv.key, n->key) == 0 &&
            line->events[e].kv.mod_revision == ev->kv.mod_revision)
            deleted = 1;
    if (!deleted)
        fail(wd, "eviction of instance %d put a marker without deleting its registration", n->i);
    else if (strtoll(lease, NULL, 10) != n->shadow_lease)
        fail(wd,
             "a stale verdict deleted a fresh registration of instance %d: the marker names "
             "lease %s, the deleted key was under lease %lld",
             n->i, lease, (long long)n->shadow_lease);
    /* The indirect check: an instance the members reached all along (up and not silent) was
     * only unreachable from the evicting monitor: a member's veto must have held it. */
    uint64_t now = now_ns(wd);
    if (now - n->last_unhealthy > VETO_WINDOW_NS)
        fail(wd,
             "instance %d evicted by %s although it answered for %.1f s (members reach it: the "
             "indirect check must veto)",
             n->i, mon, (double)(now - n->last_unhealthy) / 1e9);
    /* The zone valve: never more of a zone evicted than its share. */
    int z_out = 0, z_total = 0;
    for (int i = 0; i < wd->o.instances; i++) {
        inst_t *x = &wd->in[i];
        if (x->i % ZONES != n->i % ZONES)
            continue;
        z_total++;
        const sim_kv_t *xm = sim_etcd_get(wd->etcd, x->marker);
        const sim_kv_t *xk = sim_etcd_get(wd->etcd, x->key);
        z_out += xm && (!xk || xk->lease == reg_marker_lease(xm->value, strlen(xm->value)));
    }
    if ((double)z_out > ZONE_SHARE * z_total)
        fail(wd, "%d of zone z%d's %d instances evicted (zone share %.0f%%) after instance %d",
             z_out, n->i % ZONES, z_total, ZONE_SHARE * 100, n->i);
    /* The rate valve, mirrored: its bucket spends a token per eviction. */
    refill(wd);
    wd->tokens -= 1.0;
    /* The valve: never more evicted than the share. */
    int out = evicted_count(wd);
    if ((double)out > MAX_SHARE * wd->o.instances)
        fail(wd, "%d of %d instances evicted (max share %.0f%%) after evicting instance %d", out,
             wd->o.instances, MAX_SHARE * 100, n->i);
    vlog(wd, "instance %d evicted by %s (lease %s, %d of %d out)", n->i, mon, lease, out,
         wd->o.instances);
}

/* Every line of the whole store, synchronously at each commit. */
static void on_line(void *ctx, sim_watch_line_t *line)
{
    world_t *wd = ctx;
    for (size_t e = 0; e < line->n_events; e++) {
        const sim_event_t *ev = &line->events[e];
        inst_t *n;
        if (!ev->is_delete && (n = inst_by_marker(wd, ev->kv.key)))
            on_eviction(wd, n, ev, line);
        else if (ev->is_delete && (n = inst_by_marker(wd, ev->kv.key))) {
            wd->st.readmissions++;
            n->marker_at = 0;
            vlog(wd, "instance %d: marker deleted", n->i);
        }
    }
    for (size_t e = 0; e < line->n_events; e++) {
        const sim_event_t *ev = &line->events[e];
        inst_t *n = inst_by_key(wd, ev->kv.key);
        if (n) {
            n->shadow_lease = ev->is_delete ? 0 : ev->kv.lease;
            n->shadow_mod = ev->is_delete ? 0 : ev->kv.mod_revision;
        }
        sim_trace_fold(&wd->trace, (uint64_t)ev->kv.mod_revision << 1 | (uint64_t)ev->is_delete);
    }
    sim_etcd_line_free(line);
}

/* ---- invariants every 100 ms ---------------------------------------------------------------- */

static uint64_t readmit_delay_ns(uint32_t n)
{
    uint64_t d = READMIT_MS;
    for (uint32_t k = 1; k < n && d < READMIT_MAX_MS; k++)
        d *= 2;
    return (d < READMIT_MAX_MS ? d : READMIT_MAX_MS) * MS;
}

static void check_inst(world_t *wd, inst_t *n)
{
    uint64_t now = now_ns(wd);
    if (now <= wd->disturbed_until)
        return;
    const sim_kv_t *k = sim_etcd_get(wd->etcd, n->key);
    const sim_kv_t *m = sim_etcd_get(wd->etcd, n->marker);
    int64_t ml = m ? reg_marker_lease(m->value, strlen(m->value)) : 0;
    int evicted = m && ml == n->lease;
    if (!evicted && k && n->unhealthy_since) {
        /* A dead instance, registered: evicted within the bound when the valve lets it. */
        uint64_t from = max3(n->unhealthy_since, wd->disturbed_until, wd->valve_bad_at);
        from = max3(from, wd->zone_bad_at[n->i % ZONES],
                    wd->rate_low_at ? wd->rate_low_at + 60 * S / PER_MINUTE : 0);
        if (now > from + BOUND_EVICT_NS) {
            wd->st.evict_checks++;
            fail(wd,
                 "instance %d dead for %.1f s (monitors undisturbed since %.1f s, valve open "
                 "since %.1f s) is still registered; bound %.1f s",
                 n->i, (double)(now - n->unhealthy_since) / 1e9, secs(wd, wd->disturbed_until),
                 secs(wd, wd->valve_bad_at), (double)BOUND_EVICT_NS / 1e9);
        }
    }
    if (evicted && n->healthy_since) {
        /* Answers again: re-admitted within the bound plus its hysteresis delay. */
        char cnt[16];
        json_field(m->value, "evictions", cnt, sizeof(cnt));
        uint32_t evs = (uint32_t)strtoul(cnt, NULL, 10);
        uint64_t from = max3(n->healthy_since, wd->disturbed_until, n->marker_at);
        uint64_t bound = BOUND_READMIT_NS + readmit_delay_ns(evs ? evs : 1);
        if (now > from + bound) {
            wd->st.readmit_checks++;
            fail(wd,
                 "instance %d answering for %.1f s is still evicted (eviction %u, marker put at "
                 "%.1f s, monitors undisturbed since %.1f s); bound %.1f s",
                 n->i, (double)(now - n->healthy_since) / 1e9, evs, secs(wd, n->marker_at),
                 secs(wd, wd->disturbed_until), (double)bound / 1e9);
        }
    }
}

static void check_tick(void *arg)
{
    world_t *wd = arg;
    uint64_t now = now_ns(wd);
    sim_etcd_expire_leases(wd->etcd, now);
    int keepalive = (now / (100 * MS)) % 10 == 0;
    int bad = 0, z_bad[ZONES] = {0}, z_total[ZONES] = {0};
    for (int i = 0; i < wd->o.instances; i++) {
        inst_t *n = &wd->in[i];
        sidecar_tick(wd, n, keepalive);
        apply(n);
        /* bad for the valve: failing checks lately, or evicted */
        const sim_kv_t *m = sim_etcd_get(wd->etcd, n->marker);
        z_total[i % ZONES]++;
        if (now - n->last_unhealthy < (uint64_t)(FAILURES + 2) * INTERVAL_MS * MS ||
            (m && reg_marker_lease(m->value, strlen(m->value)) == n->lease)) {
            bad++;
            z_bad[i % ZONES]++;
        }
    }
    if ((double)bad > MAX_SHARE * wd->o.instances)
        wd->valve_bad_at = now;
    for (int z = 0; z < ZONES; z++)
        if ((double)z_bad[z] > ZONE_SHARE * z_total[z])
            wd->zone_bad_at[z] = now;
    refill(wd);
    for (int i = 0; i < wd->o.instances; i++)
        check_inst(wd, &wd->in[i]);
    at(wd, 100 * MS, check_tick, wd);
}

/* ---- faults --------------------------------------------------------------------------------- */

static void heal_part(void *arg)
{
    mon_node_t *mn = arg;
    if (now_ns(mn->wd) < mn->part_until)
        return;
    sim_etcd_set_partitioned(mn->wd->etcd, (uint32_t)mn->i, 0);
    vlog(mn->wd, "%s: partition from etcd healed", mn->name);
}

static void heal_kill(void *arg)
{
    mon_node_t *mn = arg;
    if (now_ns(mn->wd) >= mn->part_until)
        sim_etcd_set_partitioned(mn->wd->etcd, (uint32_t)mn->i, 0);
}

static void crash(world_t *wd, mon_node_t *mn, int kill)
{
    uint64_t now = now_ns(wd);
    if (!mn->actor)
        return;
    if (kill) { /* a killed process revokes nothing: its lease expires */
        sim_etcd_set_partitioned(wd->etcd, (uint32_t)mn->i, 1);
        if (now + 30 * MS > mn->part_until)
            mn->part_until = now + 30 * MS;
    }
    if (mesh_sim_crash(wd->sim, mn->actor) != 0)
        return;
    if (kill) {
        wd->st.kills++;
        at(wd, 30 * MS, heal_kill, mn);
    } else {
        wd->st.crashes++;
    }
    disturbed(wd, now + 1100 * MS);
    vlog(wd, "%s %s", mn->name, kill ? "killed (lease left to expire)" : "crashed (lease revoked)");
}

/* One flap: NOT_SERVING for 0.2-1.2 s, then the next one 0.2-1.2 s after it ends. */
static void flap_step(void *arg)
{
    inst_t *n = arg;
    world_t *wd = n->wd;
    uint64_t now = now_ns(wd);
    if (n->flaps_left <= 0 || now >= wd->t_end) {
        n->flaps_left = 0;
        apply(n);
        return;
    }
    n->flaps_left--;
    uint64_t d = 200 * MS + rnd(wd, 1000 * MS), gap = 200 * MS + rnd(wd, 1000 * MS);
    if (now + d > n->ns_until)
        n->ns_until = now + d;
    apply(n);
    at(wd, d, apply_cb, n);
    at(wd, d + gap, flap_step, n);
}

static void do_fault(world_t *wd)
{
    uint64_t now = now_ns(wd);
    uint64_t r = rnd(wd, 100);
    inst_t *n = &wd->in[rnd(wd, (uint64_t)wd->o.instances)];
    mon_node_t *lead = leader_node(wd);
    mon_node_t *any = &wd->m[rnd(wd, (uint64_t)wd->o.monitors)];
    if (r < 28) {
        uint64_t d = 500 * MS + rnd(wd, 7500 * MS);
        int what = (int)rnd(wd, 3);
        uint64_t *u = what == 0 ? &n->ns_until : what == 1 ? &n->down_until : &n->hung_until;
        if (now + d > *u)
            *u = now + d;
        wd->st.inst_faults++;
        vlog(wd, "instance %d: %s for %llu ms", n->i,
             what == 0   ? "NOT_SERVING"
             : what == 1 ? "down"
                         : "silent",
             (unsigned long long)(d / MS));
        at(wd, d, apply_cb, n);
    } else if (r < 36) {
        int more = n->flaps_left == 0;
        n->flaps_left += 4 + (int)rnd(wd, 5);
        wd->st.flaps++;
        vlog(wd, "instance %d: flapping", n->i);
        if (more)
            flap_step(n);
    } else if (r < 44) {
        wd->st.reregs++;
        reregister(wd, n);
    } else if (r < 54) {
        if (lead)
            crash(wd, lead, (int)rnd(wd, 2));
    } else if (r < 62) {
        if (!lead)
            return;
        uint64_t d = 500 * MS + rnd(wd, 5500 * MS);
        if (now + d > lead->part_until)
            lead->part_until = now + d;
        sim_etcd_set_partitioned(wd->etcd, (uint32_t)lead->i, 1);
        wd->st.partitions++;
        disturbed(wd, now + d);
        vlog(wd, "%s (leader) partitioned from etcd for %llu ms", lead->name,
             (unsigned long long)(d / MS));
        at(wd, d, heal_part, lead);
    } else if (r < 70) {
        mon_node_t *mn = lead && rnd(wd, 2) ? lead : any;
        uint64_t d = 2 * S + rnd(wd, 6 * S);
        if (now + d > mn->cut_until)
            mn->cut_until = now + d;
        wd->st.cutoffs++;
        disturbed(wd, now + d);
        apply_all(wd);
        vlog(wd, "%s cut off from every instance for %llu ms", mn->name,
             (unsigned long long)(d / MS));
        at(wd, d, apply_all, wd);
    } else if (r < 78) {
        mon_node_t *mn = lead && rnd(wd, 2) ? lead : any;
        uint64_t d = 2 * S + rnd(wd, 6 * S);
        if (now + d > n->cut_until[mn->i])
            n->cut_until[mn->i] = now + d;
        wd->st.cuts++;
        disturbed(wd, now + d);
        apply(n);
        vlog(wd, "%s cut off from instance %d for %llu ms", mn->name, n->i,
             (unsigned long long)(d / MS));
        at(wd, d, apply_cb, n);
    } else if (r < 84) {
        const sim_kv_t *lk = sim_etcd_get(wd->etcd, LEADER_KEY);
        if (!lk)
            return;
        int64_t l = lk->lease;
        sim_etcd_lease_revoke(wd->etcd, l);
        wd->st.revokes++;
        disturbed(wd, now);
        vlog(wd, "an operator revoked the leader's election lease %llx", (unsigned long long)l);
    } else if (r < 88) {
        if (any != lead)
            crash(wd, any, (int)rnd(wd, 2));
    }
}

static void fault_tick(void *arg)
{
    world_t *wd = arg;
    if (now_ns(wd) >= wd->t_end)
        return;
    if (wd->o.faults)
        do_fault(wd);
    at(wd, 400 * MS + rnd(wd, 1600 * MS), fault_tick, wd);
}

static void heal_all(void *arg)
{
    world_t *wd = arg;
    for (int k = 0; k < wd->o.monitors; k++) {
        mon_node_t *mn = &wd->m[k];
        mn->cut_until = mn->part_until = 0;
        sim_etcd_set_partitioned(wd->etcd, (uint32_t)k, 0);
    }
    for (int i = 0; i < wd->o.instances; i++) {
        inst_t *n = &wd->in[i];
        n->ns_until = n->down_until = n->hung_until = 0;
        memset(n->cut_until, 0, sizeof(n->cut_until));
        apply(n);
    }
    disturbed(wd, now_ns(wd));
    vlog(wd, "everything healed; no more faults");
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

static void mon_setup(world_t *wd, int k, const sim_link_cfg_t *link, const sim_link_hooks_t *lh)
{
    mon_node_t *mn = &wd->m[k];
    mn->wd = wd;
    mn->i = k;
    snprintf(mn->name, sizeof(mn->name), "mon-%d", k);
    mn->link = sim_etcd_link_new(wd->sim, wd->etcd, (uint32_t)k, link, lh);
    mn->args = (mon_args_t){
        .opts = {.interval_ms = INTERVAL_MS,
                 .check_timeout_ms = CHECK_TIMEOUT_MS,
                 .failures = FAILURES,
                 .successes = SUCCESSES,
                 .max_in_flight = 64,
                 .lease_ttl_ms = LEASE_TTL_MS,
                 .marker_ttl_ms = MARKER_TTL_MS,
                 .readmit_delay_ms = READMIT_MS,
                 .readmit_max_ms = READMIT_MAX_MS,
                 .max_share = MAX_SHARE,
                 .zone_share = ZONE_SHARE,
                 .per_minute = PER_MINUTE,
                 .indirect = INDIRECT},
        .prefix = PREFIX,
        .node = mn->name,
        .etcd_new = sim_etcd_factory,
        .etcd_arg = mn->link,
        .rpc_new = rpc_factory,
        .rpc_arg = mn,
        .gossip = &wd->member,
    };
    mn->child = (mesh_child_spec_t){
        .ops = &mon_actor_ops, .arg = &mn->args, .opts = {.mailbox = 4096}, .id_out = &mn->actor};
    mn->sup = (mesh_supervisor_spec_t){.name = "monitor-supervisor",
                                       .children = &mn->child,
                                       .nchildren = 1,
                                       .max_restarts = 1000,
                                       .backoff_initial_ns = 50 * MS,
                                       .backoff_max_ns = 1000 * MS};
    if (mesh_exec_spawn(wd->sim, &mesh_supervisor_ops, &mn->sup, NULL, NULL) < 0)
        abort();
}

static void inst_setup(world_t *wd, int i)
{
    inst_t *n = &wd->in[i];
    n->wd = wd;
    n->i = i;
    snprintf(n->addr, sizeof(n->addr), "10.1.0.%d:50051", i + 1);
    snprintf(n->service, sizeof(n->service), "app%d.v1.Echo", i);
    reg_key_format(n->key, sizeof(n->key), PREFIX, n->service, n->addr);
    reg_marker_key_format(n->marker, sizeof(n->marker), PREFIX, n->service, n->addr);
    char pkg[32];
    snprintf(pkg, sizeof(pkg), "app%d.v1", i);
    for (int k = 0; k < wd->o.monitors; k++) {
        sim_app_cfg_t ac = {.package = pkg,
                            .client_deadline = 1,
                            .latency_min_ns = 100000,
                            .latency_jitter_ns = 2 * MS,
                            .fold = fold,
                            .ud = wd};
        n->app[k] = sim_app_new(wd->sim, &ac);
    }
    n->healthy_since = now_ns(wd);
    sidecar_tick(wd, n, 0);
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
    if (sim_etcd_watch(wd->etcd, CLIENT_CHECKER, "meshd/", sim_etcd_revision(wd->etcd) + 1, on_line,
                       wd) < 0)
        abort();
    sim_link_cfg_t link = {.latency_min_ns = 1 * MS,
                           .latency_jitter_ns = 9 * MS,
                           .fail_min_ns = 1 * MS,
                           .fail_jitter_ns = 500 * MS,
                           .reset_pct = 50};
    sim_link_hooks_t lh = {.ud = wd, .log = o->verbose ? sim_print_line : NULL, .fold = fold};
    for (int i = 0; i < o->instances; i++)
        inst_setup(wd, i);
    wd->tokens = PER_MINUTE;
    wd->tokens_at = wd->t0;
    if (mesh_exec_spawn(wd->sim, &member_ops, wd, NULL, &wd->member) < 0)
        abort();
    for (int k = 0; k < o->monitors; k++)
        mon_setup(wd, k, &link, &lh);
    disturbed(wd, wd->t0 + 1 * S); /* the first election */
    at(wd, 100 * MS, check_tick, wd);
    at(wd, 3 * S, fault_tick, wd);
    if (mesh_sim_call_at(wd->sim, wd->t_end, heal_all, wd) < 0)
        abort();
    /* Heal, then everything settles: the longest hysteresis delay plus the re-admission. */
    uint64_t settle = BOUND_READMIT_NS + (uint64_t)READMIT_MAX_MS * MS + 5 * S;
    run_to(wd, wd->t_end + settle);
    for (int i = 0; !stopped(wd) && i < o->instances; i++) {
        inst_t *n = &wd->in[i];
        const sim_kv_t *k = sim_etcd_get(wd->etcd, n->key);
        if (!k || k->lease != n->lease)
            fail(wd, "at the end instance %d is not registered under its lease %llx", i,
                 (unsigned long long)n->lease);
        if (sim_etcd_get(wd->etcd, n->marker))
            fail(wd, "at the end instance %d still has an eviction marker", i);
    }
    if (!stopped(wd) && !leader_node(wd))
        fail(wd, "no leader at the end");
    result_t r = {.failures = wd->failures, .st = wd->st};
    r.hash = wd->trace ^ (mesh_sim_trace_hash(wd->sim) * 0x9e3779b97f4a7c15ull);
    snprintf(r.why, sizeof(r.why), "%s", wd->first_failure);
    mesh_exec_free(wd->sim);
    for (int k = 0; k < o->monitors; k++)
        sim_etcd_link_free(wd->m[k].link);
    for (int i = 0; i < o->instances; i++)
        for (int k = 0; k < o->monitors; k++)
            sim_app_free(wd->in[i].app[k]);
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

static void print_replay(const opts_t *o)
{
    printf("  replay: monitor_sim --seed %llu --verbose%s --monitors %d --instances %d "
           "--duration-ms %llu\n",
           (unsigned long long)o->seed, o->faults ? "" : " --no-faults", o->monitors, o->instances,
           (unsigned long long)o->duration_ms);
}

static void add_stats(stats_t *t, const stats_t *s)
{
    t->inst_faults += s->inst_faults;
    t->flaps += s->flaps;
    t->reregs += s->reregs;
    t->crashes += s->crashes;
    t->kills += s->kills;
    t->partitions += s->partitions;
    t->cutoffs += s->cutoffs;
    t->cuts += s->cuts;
    t->revokes += s->revokes;
    t->evictions += s->evictions;
    t->readmissions += s->readmissions;
    t->indirect += s->indirect;
    t->vetoes += s->vetoes;
}

static void print_stats(const stats_t *s)
{
    printf("instance faults %llu flaps %llu re-registrations %llu; leader crashes %llu kills %llu "
           "etcd partitions %llu; cut off from all %llu from one %llu; lease revokes %llu; "
           "evictions %llu marker deletes %llu; indirect checks %llu vetoes %llu",
           (unsigned long long)s->inst_faults, (unsigned long long)s->flaps,
           (unsigned long long)s->reregs, (unsigned long long)s->crashes,
           (unsigned long long)s->kills, (unsigned long long)s->partitions,
           (unsigned long long)s->cutoffs, (unsigned long long)s->cuts,
           (unsigned long long)s->revokes, (unsigned long long)s->evictions,
           (unsigned long long)s->readmissions, (unsigned long long)s->indirect,
           (unsigned long long)s->vetoes);
}

static void sweep_seed(void *ud, uint64_t seed, int tally, sim_outcome_t *out)
{
    sweep_t *sw = ud;
    sw->o.seed = seed;
    result_t r = run_seed(&sw->o);
    sw->last = r;
    out->hash = r.hash;
    out->failures = r.failures;
    snprintf(out->why, sizeof(out->why), "%s", r.why);
    if (tally)
        add_stats(&sw->tot, &r.st);
}

static void sweep_replay(void *ud, uint64_t seed)
{
    sweep_t *sw = ud;
    sw->o.seed = seed;
    print_replay(&sw->o);
}

static void print_seed(void *ud)
{
    const sweep_t *sw = ud;
    print_stats(&sw->last.st);
}

static void print_size(void *ud)
{
    const sweep_t *sw = ud;
    printf("%d monitors, %d instances, %llu ms each", sw->o.monitors, sw->o.instances,
           (unsigned long long)sw->o.duration_ms);
}

static void print_totals(void *ud)
{
    const sweep_t *sw = ud;
    print_stats(&sw->tot);
}

/* ---- main ----------------------------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr, "usage: monitor_sim [--seed N | --seeds COUNT [--first-seed S]] [--verbose]\n"
                    "                   [--monitors 2..3] [--instances 2..16] [--duration-ms MS]\n"
                    "                   [--no-faults] [--keep-going]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    opts_t o = {.seed = 1, .monitors = 3, .instances = 8, .duration_ms = 60000, .faults = 1};
    sim_seeds_t seeds = SIM_SEEDS_INIT;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (sim_seeds_arg(&seeds, argc, argv, &i)) {
            continue;
        } else if (!strcmp(a, "--monitors") && v) {
            o.monitors = atoi(v);
            i++;
        } else if (!strcmp(a, "--instances") && v) {
            o.instances = atoi(v);
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
    if (o.monitors < 2 || o.monitors > MAX_MON || o.instances < 2 || o.instances > MAX_INST ||
        !sim_seeds_valid(&seeds))
        usage();
    mesh_log_init("sim", o.verbose && getenv("MESHD_SIM_LOG") ? MESH_LOG_DEBUG : MESH_LOG_OFF,
                  MESH_LOG_FORMAT_TEXT);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (o.verbose)
        printf("bounds: takeover %.1f s, eviction %.1f s, re-admission %.1f s + hysteresis "
               "(%d ms doubling to %d ms)\n",
               (double)TAKEOVER_NS / 1e9, (double)BOUND_EVICT_NS / 1e9,
               (double)BOUND_READMIT_NS / 1e9, READMIT_MS, READMIT_MAX_MS);
    sweep_t sw = {.o = o};
    const sim_main_cfg_t cfg = {sweep_seed, sweep_replay, print_seed, print_size, print_totals};
    return sim_run_main(&seeds, &cfg, &sw);
}
