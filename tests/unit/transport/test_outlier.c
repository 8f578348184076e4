/*
 * tests/unit/transport/test_outlier.c: per-endpoint outlier ejection (transport/outlier.h)
 * under a fake clock: ejection after the consecutive failures, success resetting the count,
 * ejection time growing per ejection up to its cap and shrinking after time in traffic, the
 * single probe after the ejection, the max ejection percent (never the last routable endpoint),
 * the gRPC status classes, and a gray failure through round robin (transport/balancer.h): calls
 * stop going to the endpoint that does not answer.
 */
#include "transport/outlier.h"

#include <stdio.h>

#include "tests/check.h"
#include "transport/balancer.h"
#include "transport/grpc_status.h"

static mesh_outlier_cfg_t cfg_small(void)
{
    mesh_outlier_cfg_t c = {.consecutive = 3,
                            .base_ejection_ms = 1000,
                            .max_ejection_ms = 3500,
                            .max_ejection_percent = 50};
    mesh_outlier_cfg_fix(&c);
    return c;
}

static mesh_outlier_effect_t fail(mesh_outlier_t *o, const mesh_outlier_cfg_t *c, uint64_t now,
                                  uint64_t *ms)
{
    return mesh_outlier_report(o, c, MESH_OUTLIER_FAILURE, 4, 0, now, ms);
}

static void test_defaults(void)
{
    mesh_outlier_cfg_t c = {0};
    mesh_outlier_cfg_fix(&c);
    CHECK_EQ(c.consecutive, 5);
    CHECK_EQ(c.base_ejection_ms, 30000);
    CHECK_EQ(c.max_ejection_ms, 300000);
    CHECK_EQ(c.max_ejection_percent, 10);
    c = (mesh_outlier_cfg_t){.base_ejection_ms = 500000, .max_ejection_percent = 250};
    mesh_outlier_cfg_fix(&c);
    CHECK_EQ(c.max_ejection_ms, 500000); /* the cap is raised to the base */
    CHECK_EQ(c.max_ejection_percent, 100);
}

static void test_consecutive_failures_eject(void)
{
    mesh_outlier_cfg_t c = cfg_small();
    mesh_outlier_t o;
    mesh_outlier_init(&o);
    uint64_t ms = 0;
    CHECK_EQ(fail(&o, &c, 0, &ms), MESH_OUTLIER_NONE);
    CHECK_EQ(fail(&o, &c, 1, &ms), MESH_OUTLIER_NONE);
    /* a success in between starts the count over */
    CHECK_EQ(mesh_outlier_report(&o, &c, MESH_OUTLIER_SUCCESS, 4, 0, 2, &ms), MESH_OUTLIER_NONE);
    CHECK_EQ(fail(&o, &c, 3, &ms), MESH_OUTLIER_NONE);
    /* neutral outcomes (client cancels) neither count nor reset */
    CHECK_EQ(mesh_outlier_report(&o, &c, MESH_OUTLIER_NEUTRAL, 4, 0, 4, &ms), MESH_OUTLIER_NONE);
    CHECK_EQ(fail(&o, &c, 5, &ms), MESH_OUTLIER_NONE);
    CHECK(mesh_outlier_up(&o, 5));
    CHECK_EQ(fail(&o, &c, 6, &ms), MESH_OUTLIER_EJECTED);
    CHECK_EQ(ms, 1000);
    CHECK(mesh_outlier_is_ejected(&o));
    CHECK(!mesh_outlier_up(&o, 6));
    CHECK(!mesh_outlier_up(&o, 1005));
    /* late outcomes of calls sent before the ejection change nothing */
    CHECK_EQ(fail(&o, &c, 500, &ms), MESH_OUTLIER_NONE);
    CHECK_EQ(mesh_outlier_report(&o, &c, MESH_OUTLIER_SUCCESS, 4, 1, 600, &ms), MESH_OUTLIER_NONE);
    CHECK(mesh_outlier_up(&o, 1006));
}

static void test_single_probe_and_growth(void)
{
    mesh_outlier_cfg_t c = cfg_small();
    mesh_outlier_t o;
    mesh_outlier_init(&o);
    uint64_t ms = 0, now = 0;
    for (int i = 0; i < 3; i++)
        fail(&o, &c, now, &ms);
    CHECK_EQ(ms, 1000);
    now = 1000;
    CHECK(mesh_outlier_up(&o, now));
    mesh_outlier_picked(&o, &c, now); /* this call is the probe */
    CHECK(!mesh_outlier_up(&o, now)); /* no second call until it reports */
    CHECK(!mesh_outlier_up(&o, now + 999));
    /* the probe fails: out again at once, for twice the base */
    CHECK_EQ(mesh_outlier_report(&o, &c, MESH_OUTLIER_FAILURE, 4, 1, now + 10, &ms),
             MESH_OUTLIER_EJECTED);
    CHECK_EQ(ms, 2000);
    now += 10 + 2000;
    mesh_outlier_picked(&o, &c, now);
    CHECK_EQ(mesh_outlier_report(&o, &c, MESH_OUTLIER_FAILURE, 4, 1, now, &ms),
             MESH_OUTLIER_EJECTED);
    CHECK_EQ(ms, 3000);
    now += 3000;
    mesh_outlier_picked(&o, &c, now);
    CHECK_EQ(mesh_outlier_report(&o, &c, MESH_OUTLIER_FAILURE, 4, 1, now, &ms),
             MESH_OUTLIER_EJECTED);
    CHECK_EQ(ms, 3500); /* capped */
    for (int i = 0; i < 100; i++) {
        now += ms;
        mesh_outlier_report(&o, &c, MESH_OUTLIER_FAILURE, 4, 1, now, &ms);
        CHECK_EQ(ms, 3500); /* stays at the cap however long it flaps */
    }
    /* a lost probe (never reports) frees the slot after base_ejection_ms */
    now += ms;
    mesh_outlier_picked(&o, &c, now);
    CHECK(!mesh_outlier_up(&o, now + 999));
    CHECK(mesh_outlier_up(&o, now + 1000));
    /* the probe succeeds: back in full traffic */
    now += 1000;
    mesh_outlier_picked(&o, &c, now);
    CHECK_EQ(mesh_outlier_report(&o, &c, MESH_OUTLIER_SUCCESS, 4, 1, now, &ms),
             MESH_OUTLIER_RETURNED);
    CHECK(!mesh_outlier_is_ejected(&o));
    CHECK(mesh_outlier_up(&o, now));
    mesh_outlier_picked(&o, &c, now); /* not a probe any more: does not hold other calls */
    CHECK(mesh_outlier_up(&o, now));
    /* soon after, the next ejection is still long ... */
    for (int i = 0; i < 3; i++)
        fail(&o, &c, now + 10, &ms);
    CHECK_EQ(ms, 3500);
}

static void test_multiplier_decays_in_traffic(void)
{
    mesh_outlier_cfg_t c = cfg_small();
    mesh_outlier_t o;
    mesh_outlier_init(&o);
    uint64_t ms = 0, now = 0;
    for (int i = 0; i < 3; i++)
        fail(&o, &c, now, &ms);
    now += ms;
    mesh_outlier_picked(&o, &c, now);
    mesh_outlier_report(&o, &c, MESH_OUTLIER_FAILURE, 4, 1, now, &ms);
    CHECK_EQ(ms, 2000);
    now += ms;
    mesh_outlier_picked(&o, &c, now);
    CHECK_EQ(mesh_outlier_report(&o, &c, MESH_OUTLIER_SUCCESS, 4, 1, now, &ms),
             MESH_OUTLIER_RETURNED);
    /* one base in traffic: the multiplier drops by one (3000 would have been next) */
    now += 1000;
    for (int i = 0; i < 3; i++)
        fail(&o, &c, now, &ms);
    CHECK_EQ(ms, 2000);
    now += ms;
    mesh_outlier_picked(&o, &c, now);
    mesh_outlier_report(&o, &c, MESH_OUTLIER_SUCCESS, 4, 1, now, &ms);
    /* a long time healthy: back to the base */
    now += 60000;
    for (int i = 0; i < 3; i++)
        fail(&o, &c, now, &ms);
    CHECK_EQ(ms, 1000);
}

static void test_max_ejection_percent(void)
{
    mesh_outlier_cfg_t c = {0};
    mesh_outlier_cfg_fix(&c); /* 10 % */
    /* at least one may always go, but never the last routable one */
    CHECK(!mesh_outlier_may_eject(&c, 1, 0));
    CHECK(mesh_outlier_may_eject(&c, 2, 0));
    CHECK(!mesh_outlier_may_eject(&c, 2, 1));
    CHECK(mesh_outlier_may_eject(&c, 5, 0));
    CHECK(!mesh_outlier_may_eject(&c, 5, 1));
    CHECK(mesh_outlier_may_eject(&c, 30, 2));
    CHECK(!mesh_outlier_may_eject(&c, 30, 3));
    c.max_ejection_percent = 100;
    CHECK(mesh_outlier_may_eject(&c, 3, 1));
    CHECK(!mesh_outlier_may_eject(&c, 3, 2));
    /* held back: the count keeps going, and the ejection happens once room is made */
    mesh_outlier_cfg_t s = cfg_small();
    mesh_outlier_t o;
    mesh_outlier_init(&o);
    uint64_t ms = 0;
    for (int i = 0; i < 2; i++)
        mesh_outlier_report(&o, &s, MESH_OUTLIER_FAILURE, 2, 1, 0, &ms);
    CHECK_EQ(mesh_outlier_report(&o, &s, MESH_OUTLIER_FAILURE, 2, 1, 0, &ms),
             MESH_OUTLIER_HELD_BACK);
    CHECK(mesh_outlier_up(&o, 0));
    CHECK_EQ(mesh_outlier_report(&o, &s, MESH_OUTLIER_FAILURE, 2, 0, 1, &ms), MESH_OUTLIER_EJECTED);
    /* disabled: nothing ever ejects */
    s.disabled = 1;
    mesh_outlier_init(&o);
    for (int i = 0; i < 50; i++)
        CHECK_EQ(mesh_outlier_report(&o, &s, MESH_OUTLIER_FAILURE, 4, 0, 0, &ms),
                 MESH_OUTLIER_NONE);
    CHECK(mesh_outlier_up(&o, 0));
}

static void test_grpc_classes(void)
{
    CHECK_EQ(mesh_outlier_classify_grpc(MESH_GRPC_UNAVAILABLE), MESH_OUTLIER_FAILURE);
    CHECK_EQ(mesh_outlier_classify_grpc(MESH_GRPC_DEADLINE_EXCEEDED), MESH_OUTLIER_FAILURE);
    CHECK_EQ(mesh_outlier_classify_grpc(MESH_GRPC_CANCELLED), MESH_OUTLIER_NEUTRAL);
    CHECK_EQ(mesh_outlier_classify_grpc(0), MESH_OUTLIER_SUCCESS);
    CHECK_EQ(mesh_outlier_classify_grpc(MESH_GRPC_NOT_FOUND), MESH_OUTLIER_SUCCESS);
    CHECK_EQ(mesh_outlier_classify_grpc(MESH_GRPC_INTERNAL), MESH_OUTLIER_SUCCESS);
}

/* Two instances behind round robin, one cut off (every call to it fails): with the defaults
 * (5 in a row, 30 s) it is out after 5 failed calls, gets one probe per ejection, and all the
 * other calls go to the healthy one; after the heal it is back in traffic. */
typedef struct {
    mesh_outlier_t o[2];
    uint64_t now;
} gray_t;

static int gray_eligible(void *ud, size_t k)
{
    gray_t *g = ud;
    return mesh_outlier_up(&g->o[k], g->now);
}

static void test_gray_failure_through_round_robin(void)
{
    mesh_outlier_cfg_t c = {0};
    mesh_outlier_cfg_fix(&c);
    gray_t g = {0};
    mesh_outlier_init(&g.o[0]);
    mesh_outlier_init(&g.o[1]);
    mesh_bal_rr_t rr;
    mesh_bal_rr_init(&rr, 0);
    int failed = 0, to_cut[2] = {0};
    /* 20 calls/s for 120 s; instance 1 cut off for the first 100 s */
    for (int i = 0; i < 20 * 120; i++) {
        g.now = (uint64_t)i * 50;
        ptrdiff_t k = mesh_bal_rr_pick(&rr, 2, gray_eligible, &g);
        CHECK(k >= 0);
        mesh_outlier_picked(&g.o[k], &c, g.now);
        int cut = k == 1 && g.now < 100000;
        failed += cut;
        if (k == 1)
            to_cut[g.now >= 100000]++;
        size_t ejected = mesh_outlier_is_ejected(&g.o[0]) + mesh_outlier_is_ejected(&g.o[1]);
        mesh_outlier_report(&g.o[k], &c, cut ? MESH_OUTLIER_FAILURE : MESH_OUTLIER_SUCCESS, 2,
                            ejected, g.now, NULL);
    }
    /* 5 to eject, then a probe at 30 s, 90 s (ejected 30 s, then 60 s): 7 failed calls in
     * 100 s instead of 1,000 without ejection */
    printf("gray failure: %d failed of %d calls to the cut instance\n", failed, to_cut[0]);
    CHECK_EQ(failed, 7);
    /* after the heal the probe at ~190 s has not come yet ... */
    CHECK(mesh_outlier_is_ejected(&g.o[1]));
    /* ... but it comes back by its probe: run on to 200 s */
    for (int i = 20 * 120; i < 20 * 200; i++) {
        g.now = (uint64_t)i * 50;
        ptrdiff_t k = mesh_bal_rr_pick(&rr, 2, gray_eligible, &g);
        mesh_outlier_picked(&g.o[k], &c, g.now);
        mesh_outlier_report(&g.o[k], &c, MESH_OUTLIER_SUCCESS, 2, 1, g.now, NULL);
    }
    CHECK(!mesh_outlier_is_ejected(&g.o[1]));
}

int main(void)
{
    RUN(test_defaults);
    RUN(test_consecutive_failures_eject);
    RUN(test_single_probe_and_growth);
    RUN(test_multiplier_decays_in_traffic);
    RUN(test_max_ejection_percent);
    RUN(test_grpc_classes);
    RUN(test_gray_failure_through_round_robin);
    printf("test_outlier: ok\n");
    return 0;
}
