/*
 * tests/unit/monitor/test_verdict.c: the instance table and verdicts (monitor/verdict.h) and
 * the safety valves (monitor/valve.h): thresholds, the re-admission delay that doubles with
 * each eviction of the same instance, a fresh pod on an evicted address, instances that leave
 * the listing, and the global, zone and rate valves.
 */
#include <stdio.h>

#include "monitor/valve.h"
#include "monitor/verdict.h"
#include "tests/check.h"

static void test_thresholds_and_hysteresis(void)
{
    mon_table_t t;
    mon_table_init(&t, &(mon_verdict_cfg_t){.fail_threshold = 3,
                                            .ok_threshold = 2,
                                            .readmit_delay = 1000,
                                            .readmit_max = 5000});
    mon_table_begin_sync(&t);
    mon_inst_t *i = mon_table_put_registration(&t, "pkg.Svc", "10.0.0.1:50051", "a", 5, 100);
    CHECK(i);
    mon_table_end_sync(&t, 0);
    CHECK_EQ(i->state, MON_INST_REGISTERED);
    mon_verdict_result(&t, i, 0, "DEADLINE_EXCEEDED", 1);
    mon_verdict_result(&t, i, 0, "DEADLINE_EXCEEDED", 2);
    CHECK(!mon_verdict_should_evict(&t, i));
    mon_verdict_result(&t, i, 1, NULL, 3); /* a success resets the count */
    mon_verdict_result(&t, i, 0, "x", 4);
    mon_verdict_result(&t, i, 0, "x", 5);
    CHECK(!mon_verdict_should_evict(&t, i));
    mon_verdict_result(&t, i, 0, "deadline", 6);
    CHECK(mon_verdict_should_evict(&t, i));
    CHECK_STR(i->last_error, "deadline");
    /* evicted at t=10: delays 1 s, 2 s, 4 s, then capped at 5 s */
    uint64_t want[] = {1000, 2000, 4000, 5000, 5000};
    for (int k = 0; k < 5; k++) {
        uint64_t now = 10000u * (uint64_t)(k + 1);
        mon_verdict_evicted(&t, i, now);
        /* the next listing shows the marker only */
        mon_table_begin_sync(&t);
        CHECK(
            mon_table_put_marker(&t, "pkg.Svc", "10.0.0.1:50051", 100, 9, i->evictions, NULL, now));
        mon_table_end_sync(&t, now);
        CHECK_EQ(i->state, MON_INST_EVICTED);
        CHECK_EQ(i->readmit_after - now, want[k]);
        mon_verdict_result(&t, i, 1, NULL, now + 1);
        mon_verdict_result(&t, i, 1, NULL, now + 2);
        CHECK(!mon_verdict_should_readmit(&t, i, now + want[k] - 1));
        CHECK(mon_verdict_should_readmit(&t, i, now + want[k]));
        /* re-admitted: the marker goes, the sidecar puts its key again */
        mon_table_begin_sync(&t);
        mon_table_put_registration(&t, "pkg.Svc", "10.0.0.1:50051", "a", 20, 100);
        mon_table_end_sync(&t, now + want[k]);
        CHECK_EQ(i->state, MON_INST_REGISTERED);
        CHECK_EQ(i->fails, 0);
        CHECK(!i->has_marker);
    }
    mon_table_destroy(&t);
}

/* A new leader learns the eviction count from the marker, so the delay keeps growing. */
static void test_count_from_marker(void)
{
    mon_table_t t;
    mon_table_init(&t, &(mon_verdict_cfg_t){.readmit_delay = 1000, .readmit_max = 60000});
    mon_table_begin_sync(&t);
    mon_inst_t *i = mon_table_put_marker(&t, "s.S", "h:1", 7, 3, 4, "z1", 500);
    mon_table_end_sync(&t, 500);
    CHECK_EQ(i->evictions, 4);
    CHECK_STR(i->zone, "z1"); /* the zone valve counts it in its zone, unregistered */
    CHECK_EQ(i->readmit_after, 500 + 8000);
    mon_table_destroy(&t);
}

/* A fresh pod on an evicted address (another lease) is registered: the marker is not for it. */
static void test_fresh_pod_and_forget(void)
{
    mon_table_t t;
    mon_table_init(&t, NULL);
    mon_table_begin_sync(&t);
    mon_table_put_marker(&t, "s.S", "h:1", 7, 3, 1, NULL, 0);
    mon_inst_t *i = mon_table_put_registration(&t, "s.S", "h:1", NULL, 9, 8);
    mon_table_end_sync(&t, 0);
    CHECK_EQ(i->state, MON_INST_REGISTERED);
    /* 300 instances come and all but one go: lookups stay right */
    mon_table_begin_sync(&t);
    char addr[32];
    for (int k = 0; k < 300; k++) {
        snprintf(addr, sizeof(addr), "h:%d", 1000 + k);
        CHECK(mon_table_put_registration(&t, "s.S", addr, "z", 1, 1));
    }
    mon_table_end_sync(&t, 0);
    CHECK_EQ(t.n, 300);
    mon_table_begin_sync(&t);
    mon_table_put_registration(&t, "s.S", "h:1299", "z", 2, 1);
    mon_table_end_sync(&t, 0);
    CHECK_EQ(t.n, 1);
    CHECK(mon_table_find(&t, "s.S/h:1299"));
    CHECK(!mon_table_find(&t, "s.S/h:1000"));
    mon_table_destroy(&t);
}

static mon_inst_t *reg(mon_table_t *t, int k, const char *zone)
{
    char addr[32];
    snprintf(addr, sizeof(addr), "10.0.0.%d:1", k);
    return mon_table_put_registration(t, "s.S", addr, zone, 1, 1);
}

static void test_valves(void)
{
    mon_table_t t;
    mon_table_init(&t, NULL);
    mon_table_begin_sync(&t);
    mon_inst_t *v[10];
    for (int k = 0; k < 10; k++)
        v[k] = reg(&t, k, k < 4 ? "east" : "");
    mon_table_end_sync(&t, 0);
    mon_valve_t valve;
    mon_valve_init(&valve, &(mon_valve_cfg_t){.per_minute = 3});
    mon_valve_say_t say[10];
    /* 6 of 10 at once: over 50 %, none goes */
    CHECK_EQ(mon_valve_decide(&valve, &t, v + 4, 6, 0, say), 0);
    for (int k = 0; k < 6; k++)
        CHECK_EQ(say[k], MON_VALVE_GLOBAL);
    CHECK(valve.global_closed);
    CHECK_CONTAINS(valve.reason, "safety valve");
    /* 5 of 10 is not more than 50 %; the rate limit lets 3 go now */
    CHECK_EQ(mon_valve_decide(&valve, &t, v + 5, 5, 0, say), 3);
    CHECK_EQ(say[0], MON_VALVE_GO);
    CHECK_EQ(say[3], MON_VALVE_RATE);
    CHECK_EQ(say[4], MON_VALVE_RATE);
    CHECK_CONTAINS(valve.reason, "rate limit");
    /* 20 s later one token came back */
    CHECK_EQ(mon_valve_decide(&valve, &t, v + 8, 2, 20000, say), 1);
    /* zone east (4 instances): 3 of them is over 50 % of the zone */
    mon_valve_init(&valve, NULL);
    CHECK_EQ(mon_valve_decide(&valve, &t, v, 3, 0, say), 0);
    CHECK_EQ(say[0], MON_VALVE_ZONE);
    CHECK_CONTAINS(valve.reason, "zone east");
    CHECK_EQ(mon_valve_decide(&valve, &t, v, 2, 0, say), 2);
    /* already evicted instances count: 4 out, 2 more would be 6 of 10 */
    for (int k = 4; k < 8; k++)
        mon_verdict_evicted(&t, v[k], 0);
    CHECK_EQ(mon_valve_decide(&valve, &t, v + 8, 2, 60000, say), 0);
    CHECK_EQ(say[0], MON_VALVE_GLOBAL);
    CHECK_EQ(mon_valve_decide(&valve, &t, v + 8, 1, 60000, say), 1);
    mon_table_destroy(&t);
}

/* A cut-off monitor: every check fails, but the instances reach the threshold in different
 * rounds. One candidate while 6 of 10 are failing must be held, not evicted alone. */
static void test_valve_counts_failing(void)
{
    mon_table_t t;
    mon_table_init(&t, NULL);
    mon_table_begin_sync(&t);
    mon_inst_t *v[10];
    for (int k = 0; k < 10; k++)
        v[k] = reg(&t, k, "");
    mon_table_end_sync(&t, 0);
    mon_valve_t valve;
    mon_valve_init(&valve, NULL);
    mon_valve_say_t say[1];
    for (int k = 0; k < 6; k++)
        v[k]->fails = k == 0 ? 3 : 1;
    CHECK_EQ(mon_valve_decide(&valve, &t, v, 1, 0, say), 0);
    CHECK_EQ(say[0], MON_VALVE_GLOBAL);
    CHECK_CONTAINS(valve.reason, "6 of 10 instances failing");
    /* the others recover: the one candidate goes */
    for (int k = 1; k < 6; k++)
        v[k]->fails = 0;
    CHECK_EQ(mon_valve_decide(&valve, &t, v, 1, 0, say), 1);
    CHECK_EQ(say[0], MON_VALVE_GO);
    mon_table_destroy(&t);
}

int main(void)
{
    test_thresholds_and_hysteresis();
    test_count_from_marker();
    test_fresh_pod_and_forget();
    test_valves();
    test_valve_counts_failing();
    printf("test_monitor_verdict: ok\n");
    return 0;
}
