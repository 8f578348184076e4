/*
 * tests/unit/transport/test_outlier_window.c: the failure-percentage detector
 * (transport/outlier_window.h) on a fake clock: a flaky instance whose failures never come 5 in
 * a row (so consecutive-failure ejection never fires) is found when its window closes; too few
 * calls or a rate under the threshold say nothing; off by default; quiet stretches keep the
 * windows aligned; four workers' quarters are summed (the volume is the process's, whatever
 * the worker count); the verdict ejects through the shared state (mesh_outlier_slot_eject) with
 * the max ejection percent.
 */
#include "transport/outlier_window.h"

#include <stdio.h>

#include "tests/check.h"
#include "transport/outlier_board.h"

static mesh_olw_cfg_t cfg85(void)
{
    mesh_olw_cfg_t c = {.threshold_pct = 85};
    mesh_olw_cfg_fix(&c);
    return c;
}

static void test_defaults_and_off(void)
{
    mesh_olw_cfg_t c = {0};
    mesh_olw_cfg_fix(&c);
    CHECK_EQ(c.threshold_pct, 0); /* off unless asked for, like Envoy's enforcement */
    CHECK_EQ(c.min_volume, 50);
    CHECK_EQ(c.interval_ms, 10000);
    mesh_olw_t w = {0};
    for (uint64_t t = 1; t < 30000; t += 10)
        CHECK_EQ(mesh_olw_add(&w, &c, MESH_OUTLIER_FAILURE, t), 0);
    c = (mesh_olw_cfg_t){.threshold_pct = 250};
    mesh_olw_cfg_fix(&c);
    CHECK_EQ(c.threshold_pct, 100);
}

/* One worker: its closed window merged into the endpoint's sum (what the proxy does). */
static int add1(mesh_olw_t *w, mesh_olw_sum_t *sum, const mesh_olw_cfg_t *c,
                mesh_outlier_outcome_t r, uint64_t t)
{
    return mesh_olw_add(w, c, r, t) && mesh_olw_merge(sum, c, w);
}

/* 9 failures, then 1 success, repeated: 90 % failed, never 5 in a row. */
static void test_flaky_found(void)
{
    mesh_olw_cfg_t c = cfg85();
    mesh_olw_t w = {0};
    mesh_olw_sum_t sum = {0};
    mesh_outlier_cfg_t oc = {0};
    mesh_outlier_cfg_fix(&oc);
    mesh_outlier_t o;
    mesh_outlier_init(&o);
    int said = 0;
    uint64_t t = 10000;
    for (int i = 0; i < 200; i++, t += 100) { /* 10 calls/s for 20 s */
        mesh_outlier_outcome_t r = i % 10 == 9 ? MESH_OUTLIER_SUCCESS : MESH_OUTLIER_FAILURE;
        CHECK_EQ(mesh_outlier_report(&o, &oc, r, 4, 0, t, NULL), MESH_OUTLIER_NONE);
        if (i % 10 == 3 || i % 10 == 7) /* streaks of at most 4 failures */
            mesh_outlier_report(&o, &oc, MESH_OUTLIER_SUCCESS, 4, 0, t, NULL);
        if (add1(&w, &sum, &c, r, t)) {
            said++;
            CHECK_EQ(t, 20000); /* the first call after the first window's end */
            CHECK_EQ(sum.last_volume, 100);
            CHECK_EQ(sum.last_pct, 90);
        }
        if (said)
            break;
    }
    CHECK_EQ(said, 1);
    CHECK(!mesh_outlier_is_ejected(&o)); /* consecutive failures alone never saw it */
}

static void test_under_threshold_or_volume(void)
{
    mesh_olw_cfg_t c = cfg85();
    mesh_olw_t w = {0};
    mesh_olw_sum_t sum = {0};
    uint64_t t = 1;
    /* 80 % failed over 100 calls: under 85 % */
    for (int i = 0; i < 100; i++, t += 100)
        CHECK_EQ(add1(&w, &sum, &c, i % 5 == 0 ? MESH_OUTLIER_SUCCESS : MESH_OUTLIER_FAILURE, t),
                 0);
    /* 100 % failed but 40 calls in the window: under the volume */
    for (int i = 0; i < 40; i++, t += 250)
        add1(&w, &sum, &c, MESH_OUTLIER_FAILURE, t);
    CHECK_EQ(add1(&w, &sum, &c, MESH_OUTLIER_SUCCESS, t + 10000), 0);
    /* neutral outcomes are not counted */
    mesh_olw_t n = {0};
    for (int i = 0; i < 100; i++)
        CHECK_EQ(mesh_olw_add(&n, &c, MESH_OUTLIER_NEUTRAL, 5000 + (uint64_t)i * 100), 0);
    CHECK_EQ(n.ok + n.failed, 0);
}

static void test_windows_aligned(void)
{
    mesh_olw_cfg_t c = cfg85();
    mesh_olw_t w = {0};
    mesh_olw_add(&w, &c, MESH_OUTLIER_SUCCESS, 1000);
    /* quiet for 35 s: the next window is [30000, 40000), not one starting at the call */
    CHECK_EQ(mesh_olw_add(&w, &c, MESH_OUTLIER_FAILURE, 36000), 1);
    CHECK_EQ(w.idx, 3);
    CHECK_EQ(w.closed_idx, 0);
    CHECK_EQ(w.closed_ok, 1);
    CHECK_EQ(w.failed, 1);
    CHECK_EQ(w.ok, 0);
}

/* The thresholds hold whatever the worker count: four workers each see a quarter of a flaky
 * instance's calls (25 per window, under the volume of 50 on their own); summed, the window has
 * 100 calls at 90 % and says "eject" once, to the worker whose merge crossed it. A worker that
 * closes the window after the sum moved on adds nothing. */
static void test_workers_summed(void)
{
    mesh_olw_cfg_t c = cfg85();
    mesh_olw_t w[4] = {{0}};
    mesh_olw_sum_t sum = {0};
    int said = 0, who = -1;
    for (int i = 0; i < 100; i++) { /* window 1: [10000, 20000) */
        mesh_outlier_outcome_t r = i % 10 == 9 ? MESH_OUTLIER_SUCCESS : MESH_OUTLIER_FAILURE;
        CHECK_EQ(mesh_olw_add(&w[i % 4], &c, r, 10000 + (uint64_t)i * 100), 0);
    }
    for (int k = 0; k < 4; k++) { /* each worker's first call of window 2 closes its window 1 */
        CHECK_EQ(mesh_olw_add(&w[k], &c, MESH_OUTLIER_SUCCESS, 20000 + (uint64_t)k), 1);
        CHECK_EQ(w[k].closed_ok + w[k].closed_failed, 25);
        if (mesh_olw_merge(&sum, &c, &w[k]))
            said++, who = k;
        if (k < 1)
            CHECK_EQ(said, 0); /* 25 calls: not enough yet */
    }
    CHECK_EQ(said, 1);
    CHECK_EQ(who, 1); /* 50 calls once the second worker's window is in */
    CHECK_EQ(sum.ok + sum.failed, 100);
    CHECK_EQ(sum.last_pct, 90);
    /* each worker on its own (the old per-worker counting) would have said nothing */
    mesh_olw_sum_t alone = {0};
    CHECK_EQ(mesh_olw_merge(&alone, &c, &w[3]), 0);
    /* a late window (the sum is at window 5) is dropped */
    mesh_olw_t late = {.closed_idx = 1, .closed_failed = 1000};
    sum.idx = 5;
    sum.ok = sum.failed = 0;
    sum.said = 0;
    CHECK_EQ(mesh_olw_merge(&sum, &c, &late), 0);
    CHECK_EQ(sum.failed, 0);
}

static void test_eject_through_board(void)
{
    mesh_outlier_cfg_t oc = {.base_ejection_ms = 1000};
    mesh_outlier_cfg_fix(&oc);
    mesh_outlier_board_t *b = mesh_outlier_board_new();
    mesh_outlier_slot_t *s = mesh_outlier_board_get(b, "a:1");
    uint64_t ms = 0;
    /* 10 instances, 10 %: one may go */
    CHECK_EQ(mesh_outlier_slot_eject(b, s, &oc, 10, 0, 500, &ms), MESH_OUTLIER_EJECTED);
    CHECK_EQ(ms, 1000);
    CHECK(!mesh_outlier_slot_up(s, 501));
    CHECK_EQ(mesh_outlier_slot_eject(b, s, &oc, 10, 1, 600, &ms), MESH_OUTLIER_NONE); /* out */
    mesh_outlier_slot_t *t = mesh_outlier_board_get(b, "b:1");
    CHECK_EQ(mesh_outlier_slot_eject(b, t, &oc, 10, 1, 700, &ms), MESH_OUTLIER_HELD_BACK);
    CHECK(mesh_outlier_slot_up(t, 701));
    /* the probe returns it as for any ejection */
    CHECK_EQ(mesh_outlier_slot_picked(b, s, &oc, 1500), 1);
    CHECK_EQ(mesh_outlier_slot_report(b, s, &oc, MESH_OUTLIER_SUCCESS, 10, 1, 1501, NULL),
             MESH_OUTLIER_RETURNED);
    mesh_outlier_board_stats_t st;
    mesh_outlier_board_stats(b, &st);
    CHECK_EQ(st.ejections, 1);
    CHECK_EQ(st.held_back, 1);
    CHECK_EQ(st.returns, 1);
    mesh_outlier_board_put(b, s);
    mesh_outlier_board_put(b, t);
    mesh_outlier_board_free(b);
}

int main(void)
{
    RUN(test_defaults_and_off);
    RUN(test_flaky_found);
    RUN(test_under_threshold_or_volume);
    RUN(test_windows_aligned);
    RUN(test_workers_summed);
    RUN(test_eject_through_board);
    printf("test_outlier_window: ok\n");
    return 0;
}
