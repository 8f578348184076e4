/*
 * tests/unit/monitor/test_election.c: the monitors' election (monitor/election.h) under a fake
 * clock: grant -> campaign -> leader with the key's create revision as fence; a loser watches
 * and campaigns again when the key goes; a leader whose keepalives go unanswered steps down
 * before etcd could expire its lease (so a standby cannot lead while it still believes it
 * does); a lost lease means a new one and a new campaign.
 */
#include "monitor/election.h"
#include "tests/check.h"

static int find(const mon_efxs_t *fx, mon_efx_kind_t k, int64_t *arg)
{
    for (int i = 0; i < fx->n; i++)
        if (fx->v[i].kind == k) {
            if (arg)
                *arg = fx->v[i].arg;
            return 1;
        }
    return 0;
}

static void test_win(void)
{
    mon_elect_t e;
    mon_efxs_t fx = {.n = 0};
    int64_t arg = 0;
    mon_elect_init(&e, 10);
    mon_elect_start(&e, 0, &fx);
    CHECK(find(&fx, MON_EFX_GRANT, &arg));
    CHECK_EQ(arg, 10);
    fx.n = 0;
    mon_elect_grant_ok(&e, 42, 10, 20, &fx);
    CHECK(find(&fx, MON_EFX_CAMPAIGN, &arg));
    CHECK_EQ(arg, 42);
    fx.n = 0;
    mon_elect_campaign_done(&e, 1, 77, 0, 0, 30, &fx);
    CHECK(find(&fx, MON_EFX_LEADER, &arg));
    CHECK_EQ(arg, 77);
    CHECK(mon_elect_leading(&e));
    CHECK_EQ(e.fence, 77);
    /* keepalives every TTL/3 keep it leading for ever */
    uint64_t now = 30;
    for (int i = 0; i < 100; i++) {
        now += 500;
        fx.n = 0;
        mon_elect_tick(&e, now, &fx);
        if (find(&fx, MON_EFX_KEEPALIVE, NULL))
            mon_elect_keepalive_ok(&e, 10, now + 5, &fx);
        CHECK(!find(&fx, MON_EFX_STEP_DOWN, NULL));
    }
    CHECK(mon_elect_leading(&e));
}

/* An earlier campaign put went through but its answer was lost: the key holds our lease. */
static void test_own_key(void)
{
    mon_elect_t e;
    mon_efxs_t fx = {.n = 0};
    int64_t arg = 0;
    mon_elect_init(&e, 10);
    mon_elect_start(&e, 0, &fx);
    mon_elect_grant_ok(&e, 42, 10, 0, &fx);
    fx.n = 0;
    mon_elect_campaign_done(&e, 0, 90, 42, 55, 0, &fx);
    CHECK(find(&fx, MON_EFX_LEADER, &arg));
    CHECK_EQ(arg, 55);
}

static void test_standby_takes_over(void)
{
    mon_elect_t e;
    mon_efxs_t fx = {.n = 0};
    int64_t arg = 0;
    mon_elect_init(&e, 10);
    mon_elect_start(&e, 0, &fx);
    mon_elect_grant_ok(&e, 43, 10, 0, &fx);
    fx.n = 0;
    mon_elect_campaign_done(&e, 0, 100, 42, 77, 0, &fx);
    CHECK(find(&fx, MON_EFX_WATCH, &arg));
    CHECK_EQ(arg, 101);
    CHECK(!mon_elect_leading(&e));
    CHECK_STR(mon_elect_state_name(e.state), "standby");
    /* a broken watch campaigns again after a short delay */
    fx.n = 0;
    mon_elect_watch_broken(&e, 1000, &fx);
    CHECK_EQ(fx.n, 0);
    mon_elect_tick(&e, 1100, &fx);
    CHECK(!find(&fx, MON_EFX_CAMPAIGN, NULL));
    mon_elect_tick(&e, 1300, &fx);
    CHECK(find(&fx, MON_EFX_CAMPAIGN, NULL));
    fx.n = 0;
    mon_elect_campaign_done(&e, 0, 120, 42, 77, 1300, &fx);
    CHECK(find(&fx, MON_EFX_WATCH, &arg));
    /* the holder's key is deleted: campaign at once, and win */
    fx.n = 0;
    mon_elect_key_deleted(&e, 5000, &fx);
    CHECK(find(&fx, MON_EFX_CAMPAIGN, &arg));
    CHECK_EQ(arg, 43);
    fx.n = 0;
    mon_elect_campaign_done(&e, 1, 130, 0, 0, 5010, &fx);
    CHECK(find(&fx, MON_EFX_LEADER, &arg));
    CHECK_EQ(arg, 130);
}

/* A leader cut off from etcd steps down before its lease can expire there. */
static void test_step_down_before_expiry(void)
{
    mon_elect_t e;
    mon_efxs_t fx = {.n = 0};
    mon_elect_init(&e, 10);
    mon_elect_start(&e, 0, &fx);
    mon_elect_grant_ok(&e, 42, 10, 10, &fx);
    mon_elect_campaign_done(&e, 1, 7, 0, 0, 20, &fx);
    /* one answered keepalive, sent at t = 3400 */
    uint64_t now = 20, sent_ok = 0, stepped = 0;
    int answered = 0;
    int64_t revoked = 0;
    while (now < 30000 && !stepped) {
        now += 100;
        fx.n = 0;
        mon_elect_tick(&e, now, &fx);
        if (find(&fx, MON_EFX_KEEPALIVE, NULL)) {
            if (!answered) {
                answered = 1;
                sent_ok = now;
                mon_elect_keepalive_ok(&e, 10, now + 50, &fx);
            } else {
                mon_elect_keepalive_failed(&e, 0, now + 1000, &fx); /* etcd unreachable */
            }
        }
        if (find(&fx, MON_EFX_STEP_DOWN, NULL)) {
            stepped = now;
            CHECK(find(&fx, MON_EFX_REVOKE, &revoked));
            CHECK_EQ(revoked, 42);
            CHECK(find(&fx, MON_EFX_GRANT, NULL));
        }
    }
    CHECK(answered);
    CHECK(stepped);
    /* etcd renewed the lease no earlier than sent_ok: it cannot expire before sent_ok + TTL */
    CHECK(stepped < sent_ok + 10000);
    CHECK(stepped + e.guard_ms >= sent_ok + 10000);
    CHECK(!mon_elect_leading(&e));
    CHECK_EQ(e.step_downs, 1);
}

static void test_lease_gone(void)
{
    mon_elect_t e;
    mon_efxs_t fx = {.n = 0};
    mon_elect_init(&e, 6);
    mon_elect_start(&e, 0, &fx);
    mon_elect_grant_ok(&e, 42, 6, 0, &fx);
    mon_elect_campaign_done(&e, 1, 7, 0, 0, 0, &fx);
    fx.n = 0;
    mon_elect_tick(&e, 2000, &fx);
    CHECK(find(&fx, MON_EFX_KEEPALIVE, NULL));
    fx.n = 0;
    mon_elect_keepalive_ok(&e, 0, 2010, &fx); /* TTL 0: etcd expired it */
    CHECK(find(&fx, MON_EFX_STEP_DOWN, NULL));
    CHECK(find(&fx, MON_EFX_GRANT, NULL));
    CHECK(!mon_elect_leading(&e));
    CHECK_EQ(e.lease, 0);
    /* a failed grant backs off, then grants again */
    fx.n = 0;
    mon_elect_request_failed(&e, 2020, &fx);
    mon_elect_tick(&e, 2050, &fx);
    CHECK(!find(&fx, MON_EFX_GRANT, NULL));
    mon_elect_tick(&e, 2200, &fx);
    CHECK(find(&fx, MON_EFX_GRANT, NULL));
}

static void test_stop(void)
{
    mon_elect_t e;
    mon_efxs_t fx = {.n = 0};
    int64_t arg = 0;
    mon_elect_init(&e, 10);
    mon_elect_start(&e, 0, &fx);
    mon_elect_grant_ok(&e, 42, 10, 0, &fx);
    mon_elect_campaign_done(&e, 1, 7, 0, 0, 0, &fx);
    fx.n = 0;
    mon_elect_stop(&e, 100, &fx);
    CHECK(find(&fx, MON_EFX_STEP_DOWN, NULL));
    CHECK(find(&fx, MON_EFX_REVOKE, &arg));
    CHECK_EQ(arg, 42);
    fx.n = 0;
    mon_elect_tick(&e, 100000, &fx);
    CHECK_EQ(fx.n, 0);
}

int main(void)
{
    test_win();
    test_own_key();
    test_standby_takes_over();
    test_step_down_before_expiry();
    test_lease_gone();
    test_stop();
    printf("test_monitor_election: ok\n");
    return 0;
}
