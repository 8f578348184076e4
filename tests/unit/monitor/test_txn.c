/*
 * tests/unit/monitor/test_txn.c: the monitor's fenced transactions (monitor/evict_txn.h)
 * applied to the simulated etcd store (simulations/sim_etcd.h) with etcd's txn semantics:
 * an eviction deletes the key and writes a marker naming the evicted lease under the eviction
 * lease (which the sidecar's registration reads back); a stale verdict never deletes a fresh
 * registration; a deposed leader's eviction is refused by the fence, and its failure branch
 * tells the two apart; re-admission deletes the marker, fenced too.
 */
#include <string.h>

#include "monitor/evict_txn.h"
#include "registry/instance.h"
#include "simulations/sim_etcd.h"
#include "tests/check.h"

/* Applies a txn request as etcd does; returns the result (kvs: the failure branch's range). */
static etcd_result_t *apply(sim_etcd_t *e, const etcd_request_t *r)
{
    int ok = 1;
    for (size_t i = 0; i < r->n_cmps; i++)
        ok &= sim_etcd_compare(e, r->cmps[i].key, (int)r->cmps[i].target, (int)r->cmps[i].result,
                               r->cmps[i].value) != 0;
    const etcd_op_t *ops = ok ? r->success : r->failure;
    size_t n = ok ? r->n_success : r->n_failure;
    etcd_result_t *res = etcd_result_new(ETCD_CALL_TXN, r->tag);
    CHECK(res);
    res->succeeded = ok;
    sim_etcd_txn_begin(e);
    for (size_t i = 0; i < n; i++) {
        if (ops[i].kind == ETCD_OP_PUT)
            sim_etcd_txn_put(e, ops[i].key, ops[i].value, ops[i].lease, 0);
        else if (ops[i].kind == ETCD_OP_DELETE)
            sim_etcd_txn_delete(e, ops[i].key);
        else {
            const sim_kv_t *kv = sim_etcd_get(e, ops[i].key);
            if (kv)
                etcd_result_add_kv(res, kv->key, strlen(kv->key), kv->value, strlen(kv->value),
                                   kv->create_revision, kv->mod_revision, kv->version, kv->lease);
        }
    }
    int64_t rev = sim_etcd_txn_commit(e);
    res->revision = rev ? rev : sim_etcd_revision(e);
    return res;
}

static int64_t put(sim_etcd_t *e, const char *key, const char *val, int64_t lease)
{
    sim_etcd_txn_begin(e);
    sim_etcd_txn_put(e, key, val, lease, 0);
    return sim_etcd_txn_commit(e);
}

/* Campaigns for node under lease; returns the fence on a win, 0 on a loss. */
static int64_t campaign(sim_etcd_t *e, const mon_keys_t *k, const char *node, int64_t lease)
{
    mon_txn_t t;
    CHECK_EQ(mon_txn_campaign(&t, k, node, lease, 1), 0);
    etcd_result_t *res = apply(e, &t.req);
    int64_t fence = res->succeeded ? res->revision : 0;
    etcd_result_free(res);
    mon_txn_release(&t);
    return fence;
}

static const char *KEY = "meshd/services/pkg.Svc/10.0.0.1:50051";
static const char *MARKER = "meshd/evicted/pkg.Svc/10.0.0.1:50051";

static void test_keys(void)
{
    mon_keys_t k;
    CHECK_EQ(mon_keys_init(&k, NULL), 0);
    CHECK_STR(k.prefix, "meshd/services/");
    CHECK_STR(k.marker_prefix, "meshd/evicted/");
    CHECK_STR(k.leader, "meshd/monitor/leader");
    CHECK_STR(k.evlease, "meshd/monitor/eviction-lease");
    char m[256];
    CHECK(reg_marker_key_format(m, sizeof(m), "meshd/services", "pkg.Svc", "10.0.0.1:50051") > 0);
    CHECK_STR(m, MARKER); /* the key the sidecar looks for */
    CHECK_EQ(mon_keys_init(&k, "corp/mesh/svc/"), 0);
    CHECK_STR(k.leader, "corp/mesh/monitor/leader");
}

static void test_evict_stale_fenced_readmit(void)
{
    sim_etcd_t *e = sim_etcd_new("meshd/services/", 1);
    mon_keys_t k;
    mon_keys_init(&k, NULL);
    int64_t la = sim_etcd_lease_grant(e, 0, 10, 0), lb = sim_etcd_lease_grant(e, 1, 10, 0);
    int64_t ev = sim_etcd_lease_grant(e, 0, 60, 0);
    int64_t reg_lease = sim_etcd_lease_grant(e, 2, 10, 0);
    int64_t fence_a = campaign(e, &k, "mon-a", la);
    CHECK(fence_a > 0);
    CHECK_EQ(campaign(e, &k, "mon-b", lb), 0); /* one leader */
    int64_t r1 = put(e, KEY, "{\"Op\":0,\"Addr\":\"10.0.0.1:50051\"}", reg_lease);

    /* A stale verdict: the pod re-registered (a new mod revision) after the checks. */
    int64_t r2 = put(e, KEY, "{\"Op\":0,\"Addr\":\"10.0.0.1:50051\"}", reg_lease);
    CHECK(r2 > r1);
    mon_txn_t t;
    CHECK_EQ(mon_txn_evict(&t, &k, "pkg.Svc", "10.0.0.1:50051", r1, fence_a, reg_lease, ev,
                           "3 checks failed", "mon-a", NULL, 1, 1700000000123, 2),
             0);
    etcd_result_t *res = apply(e, &t.req);
    CHECK(!res->succeeded);
    CHECK(sim_etcd_get(e, KEY));                  /* the fresh registration is still there */
    CHECK(!sim_etcd_get(e, MARKER));              /* and no marker */
    CHECK(mon_txn_fence_holds(res, &k, fence_a)); /* stale, not deposed */
    etcd_result_free(res);
    mon_txn_release(&t);

    /* The verdict about r2 evicts: key gone, marker naming the registration's lease. */
    CHECK_EQ(mon_txn_evict(&t, &k, "pkg.Svc", "10.0.0.1:50051", r2, fence_a, reg_lease, ev,
                           "3 checks failed", "mon-a", "eu-1a", 1, 1700000000123, 3),
             0);
    res = apply(e, &t.req);
    CHECK(res->succeeded);
    CHECK(!sim_etcd_get(e, KEY));
    const sim_kv_t *m = sim_etcd_get(e, MARKER);
    CHECK(m);
    CHECK_EQ(m->lease, ev);
    CHECK_EQ(reg_marker_lease(m->value, strlen(m->value)), reg_lease);
    CHECK_EQ(mon_marker_evictions(m->value, strlen(m->value)), 1);
    CHECK_CONTAINS(m->value, "\"at\":\"2023-11-14T22:13:20.123Z\"");
    char zone[16];
    mon_marker_zone(m->value, strlen(m->value), zone, sizeof(zone)); /* for a new leader's */
    CHECK_STR(zone, "eu-1a");                                        /* zone valve */
    mon_marker_zone(m->value, strlen(m->value), zone, 4);            /* does not fit: none */
    CHECK_STR(zone, "");
    int64_t marker_rev = m->mod_revision;
    etcd_result_free(res);
    mon_txn_release(&t);

    /* Leader A is deposed (its lease expired), B wins: A's writes are refused by the fence. */
    sim_etcd_lease_revoke(e, la);
    int64_t fence_b = campaign(e, &k, "mon-b", lb);
    CHECK(fence_b > fence_a);
    CHECK_EQ(mon_txn_readmit(&t, &k, "pkg.Svc", "10.0.0.1:50051", marker_rev, fence_a, 4), 0);
    res = apply(e, &t.req);
    CHECK(!res->succeeded);
    CHECK(sim_etcd_get(e, MARKER));
    CHECK(!mon_txn_fence_holds(res, &k, fence_a)); /* deposed */
    etcd_result_free(res);
    mon_txn_release(&t);
    int64_t r3 = put(e, KEY, "{\"Op\":0,\"Addr\":\"10.0.0.1:50051\"}", reg_lease);
    CHECK_EQ(mon_txn_evict(&t, &k, "pkg.Svc", "10.0.0.1:50051", r3, fence_a, reg_lease, ev, "x",
                           "mon-a", NULL, 2, 0, 5),
             0);
    res = apply(e, &t.req);
    CHECK(!res->succeeded);
    CHECK(sim_etcd_get(e, KEY));
    etcd_result_free(res);
    mon_txn_release(&t);
    sim_etcd_txn_begin(e);
    sim_etcd_txn_delete(e, KEY);
    sim_etcd_txn_commit(e);

    /* The new leader re-admits: the marker goes. */
    CHECK_EQ(mon_txn_readmit(&t, &k, "pkg.Svc", "10.0.0.1:50051", marker_rev, fence_b, 6), 0);
    res = apply(e, &t.req);
    CHECK(res->succeeded);
    CHECK(!sim_etcd_get(e, MARKER));
    etcd_result_free(res);
    mon_txn_release(&t);

    /* The eviction lease's record, fenced. */
    CHECK_EQ(mon_txn_evlease(&t, &k, ev, fence_b, 7), 0);
    res = apply(e, &t.req);
    CHECK(res->succeeded);
    CHECK_EQ(sim_etcd_get(e, k.evlease)->lease, ev);
    etcd_result_free(res);
    mon_txn_release(&t);
    sim_etcd_free(e);
}

int main(void)
{
    test_keys();
    test_evict_stale_fenced_readmit();
    printf("test_monitor_txn: ok\n");
    return 0;
}
