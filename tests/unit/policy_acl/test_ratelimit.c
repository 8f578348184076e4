/*
 * tests/unit/policy_acl/test_ratelimit.c: the GCRA rate limiter (policy/ratelimit.h) under a
 * fake clock.
 *
 * Covers the exact token arithmetic (burst, refill, steady rate over a long run, fractional
 * rates), retry-after values and messages, independent keys, address keys, many keys in one
 * table, a full table (overflowed keys share one limited fallback bucket, never unlimited; idle
 * slots are reused) and config errors.
 */
#include "policy/ratelimit.h"

#include <stdio.h>
#include <string.h>

#include "tests/check.h"

#define SEC  1000000000ull
#define MSEC 1000000ull

static pol_ratelimit_t *make(double rate, uint32_t burst, uint32_t slots, uint32_t probe)
{
    pol_ratelimit_config_t c;
    pol_ratelimit_config_default(&c);
    c.rate = rate;
    c.burst = burst;
    if (slots)
        c.slots = slots;
    if (probe)
        c.probe = probe;
    c.seed = 42;
    char err[128];
    pol_ratelimit_t *rl = pol_ratelimit_new(&c, err, sizeof(err));
    if (!rl) {
        fprintf(stderr, "ratelimit: %s\n", err);
        exit(1);
    }
    return rl;
}

static int take(pol_ratelimit_t *rl, const char *key, uint64_t now, pol_ratelimit_result_t *r)
{
    return pol_ratelimit_check(rl, key, strlen(key), now, r) == POL_RATELIMIT_ALLOWED;
}

static void test_burst_and_refill(void)
{
    pol_ratelimit_t *rl = make(10, 5, 0, 0); /* a token every 100 ms, 5 at once */
    pol_ratelimit_result_t r;
    uint64_t t = 1000 * SEC;
    for (int i = 0; i < 5; i++) {
        CHECK(take(rl, "peer:10.0.0.1", t, &r));
        CHECK_EQ(r.remaining, 4 - i);
        CHECK_EQ(r.retry_after_ns, 0);
        CHECK(!r.fallback);
    }
    CHECK(!take(rl, "peer:10.0.0.1", t, &r));
    CHECK_EQ(r.retry_after_ns, 100 * MSEC);
    CHECK_EQ(pol_ratelimit_retry_after_ms(&r), 100);
    CHECK_EQ(pol_ratelimit_retry_after_s(&r), 1);
    /* Limited calls take nothing: still 100 ms to wait 30 ms later minus 30. */
    CHECK(!take(rl, "peer:10.0.0.1", t + 30 * MSEC, &r));
    CHECK_EQ(r.retry_after_ns, 70 * MSEC);
    /* One ns early: still limited, by 1 ns (rounded up to 1 ms for the client). */
    CHECK(!take(rl, "peer:10.0.0.1", t + 100 * MSEC - 1, &r));
    CHECK_EQ(r.retry_after_ns, 1);
    CHECK_EQ(pol_ratelimit_retry_after_ms(&r), 1);
    /* At the instant it says: exactly one token. */
    CHECK(take(rl, "peer:10.0.0.1", t + 100 * MSEC, &r));
    CHECK_EQ(r.remaining, 0);
    CHECK(!take(rl, "peer:10.0.0.1", t + 100 * MSEC, &r));
    /* A long idle period refills to burst, not beyond. */
    t += 3600 * SEC;
    int n = 0;
    while (take(rl, "peer:10.0.0.1", t, NULL))
        n++;
    CHECK_EQ(n, 5);
    pol_ratelimit_free(rl);
}

static void test_steady_rate_exact(void)
{
    /* Calls every 1 ms for 10 s at 250/s burst 20: exactly 20 + 250 * 10 allowed. */
    pol_ratelimit_t *rl = make(250, 20, 0, 0);
    uint64_t t0 = 5 * SEC;
    long allowed = 0;
    for (uint64_t t = t0; t <= t0 + 10 * SEC; t += MSEC)
        allowed += take(rl, "k", t, NULL);
    CHECK_EQ(allowed, 20 + 2500);
    pol_ratelimit_free(rl);

    /* A fractional rate: 0.5/s, burst 1: one call per 2 s. */
    rl = make(0.5, 1, 0, 0);
    allowed = 0;
    for (uint64_t t = 0; t < 60 * SEC; t += 100 * MSEC)
        allowed += take(rl, "k", t, NULL);
    CHECK_EQ(allowed, 30);
    pol_ratelimit_result_t r;
    CHECK(!take(rl, "k", 60 * SEC - 1, &r));
    CHECK_EQ(r.retry_after_ns, 1);
    CHECK(take(rl, "k", 60 * SEC, &r));
    CHECK(!take(rl, "k", 60 * SEC, &r));
    CHECK_EQ(r.retry_after_ns, 2 * SEC);
    CHECK_EQ(pol_ratelimit_retry_after_s(&r), 2);
    pol_ratelimit_free(rl);
}

static void test_keys_independent(void)
{
    pol_ratelimit_t *rl = make(1, 2, 0, 0);
    uint64_t t = SEC;
    CHECK(take(rl, "id:alice", t, NULL) && take(rl, "id:alice", t, NULL));
    CHECK(!take(rl, "id:alice", t, NULL));
    /* Another key, even a prefix or an extension of the first, has its own bucket. */
    CHECK(take(rl, "id:alic", t, NULL) && take(rl, "id:alic", t, NULL));
    CHECK(take(rl, "id:alicee", t, NULL) && take(rl, "id:alicee", t, NULL));
    CHECK(!take(rl, "id:alic", t, NULL));
    /* Keys are bytes: an embedded NUL is part of the key. */
    CHECK(pol_ratelimit_check(rl, "a\0b", 3, t, NULL) == POL_RATELIMIT_ALLOWED);
    CHECK(pol_ratelimit_check(rl, "a\0c", 3, t, NULL) == POL_RATELIMIT_ALLOWED);
    CHECK(pol_ratelimit_check(rl, "a\0b", 3, t, NULL) == POL_RATELIMIT_ALLOWED);
    CHECK(pol_ratelimit_check(rl, "a\0b", 3, t, NULL) == POL_RATELIMIT_LIMITED);
    CHECK(pol_ratelimit_check(rl, "", 0, t, NULL) == POL_RATELIMIT_ALLOWED);
    pol_ratelimit_free(rl);
}

static void test_ip_keys(void)
{
    pol_ratelimit_t *rl = make(1, 1, 0, 0);
    pol_ip_t a, b, m;
    CHECK_EQ(pol_ip_parse("10.1.2.3", 8, &a), 0);
    CHECK_EQ(pol_ip_parse("10.1.2.4", 8, &b), 0);
    CHECK_EQ(pol_ip_parse("::ffff:10.1.2.3", 15, &m), 0);
    uint64_t t = SEC;
    CHECK(pol_ratelimit_check_ip(rl, &a, t, NULL) == POL_RATELIMIT_ALLOWED);
    /* The mapped form is the same client. */
    CHECK(pol_ratelimit_check_ip(rl, &m, t, NULL) == POL_RATELIMIT_LIMITED);
    CHECK(pol_ratelimit_check_ip(rl, &b, t, NULL) == POL_RATELIMIT_ALLOWED);
    /* And never the same key as the text of the address. */
    CHECK(take(rl, "10.1.2.3", t, NULL));
    CHECK(pol_ratelimit_check_ip(rl, &a, t + SEC, NULL) == POL_RATELIMIT_ALLOWED);
    pol_ratelimit_free(rl);
}

static void test_many_keys(void)
{
    /* 3000 keys in 8192 slots: each gets exactly its burst, none falls back. */
    pol_ratelimit_t *rl = make(1, 3, 8192, 16);
    uint64_t t = SEC;
    char k[32];
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < 3000; i++) {
            snprintf(k, sizeof(k), "peer:10.%d.%d.1", i / 256, i % 256);
            pol_ratelimit_result_t r;
            int ok = take(rl, k, t, &r);
            CHECK(!r.fallback);
            CHECK_EQ(ok, round < 3);
        }
    }
    pol_ratelimit_stats_t st;
    pol_ratelimit_stats(rl, &st);
    CHECK_EQ(st.claimed, 3000);
    CHECK_EQ(st.fallback, 0);
    pol_ratelimit_free(rl);
}

static void test_table_full(void)
{
    /* 8 slots, a window of 8: the whole table. 8 busy keys fill it. */
    pol_ratelimit_t *rl = make(1, 2, 8, 8);
    uint64_t t = 10 * SEC;
    char k[16];
    pol_ratelimit_result_t r;
    for (int i = 0; i < 8; i++) {
        snprintf(k, sizeof(k), "k%d", i);
        CHECK(take(rl, k, t, &r));
        CHECK(!r.fallback);
    }
    /* New keys share the fallback bucket: limited, never unlimited. */
    CHECK(take(rl, "new1", t, &r));
    CHECK(r.fallback);
    CHECK(take(rl, "new2", t, &r));
    CHECK(r.fallback);
    CHECK(!take(rl, "new3", t, &r));
    CHECK(r.fallback);
    CHECK_EQ(r.retry_after_ns, SEC);
    CHECK(!take(rl, "new1", t, &r));
    /* The table's own keys keep their buckets meanwhile. */
    CHECK(take(rl, "k0", t, &r) && !r.fallback);
    CHECK(!take(rl, "k0", t, &r));
    pol_ratelimit_stats_t st;
    pol_ratelimit_stats(rl, &st);
    CHECK_EQ(st.fallback, 4);
    CHECK_EQ(st.evicted, 0);
    /* Once the keys are idle (buckets full again) their slots are reused. */
    t += 10 * SEC;
    CHECK(take(rl, "new3", t, &r));
    CHECK(!r.fallback);
    CHECK(take(rl, "new3", t, &r));
    CHECK(!take(rl, "new3", t, &r));
    CHECK(!r.fallback);
    pol_ratelimit_stats(rl, &st);
    CHECK_EQ(st.evicted, 1);
    /* An evicted key comes back with a full bucket (what it had when evicted). */
    int back = 0;
    for (int i = 0; i < 8; i++) {
        snprintf(k, sizeof(k), "k%d", i);
        pol_ratelimit_result_t rr;
        if (take(rl, k, t, &rr) && !rr.fallback && take(rl, k, t, &rr) && !take(rl, k, t, &rr))
            back++;
    }
    CHECK_EQ(back, 7); /* one slot is new3's now and busy: one key falls back */
    pol_ratelimit_free(rl);
}

static void test_messages_and_config(void)
{
    pol_ratelimit_t *rl = make(100, 20, 0, 0);
    pol_ratelimit_result_t r = {.retry_after_ns = 119 * MSEC + 1};
    char buf[256];
    CHECK(pol_ratelimit_reject_message(rl, "peer 10.1.2.3", &r, buf, sizeof(buf)) > 0);
    CHECK_STR(buf, "meshd: ratelimit: over 100/s (burst 20) for peer 10.1.2.3; retry after 120 ms");
    CHECK(pol_ratelimit_reject_message(rl, "id \x01x", &r, buf, sizeof(buf)) > 0);
    CHECK_CONTAINS(buf, "for id ?x;");
    CHECK_EQ(pol_ratelimit_reject_message(rl, "peer", &r, buf, 10), -1);
    CHECK(pol_ratelimit_config(rl)->seed == 42);
    pol_ratelimit_free(rl);

    pol_ratelimit_config_t c;
    char err[128];
    pol_ratelimit_config_default(&c);
    CHECK_EQ(pol_ratelimit_config_check(&c, err, sizeof(err)), 0);
    c.rate = 0;
    CHECK(pol_ratelimit_new(&c, err, sizeof(err)) == NULL);
    CHECK_STR(err, "rate: 0 is not in 1e-06..1e+09 per second");
    c.rate = -1;
    CHECK_EQ(pol_ratelimit_config_check(&c, err, sizeof(err)), -1);
    c.rate = 0.0 / 0.0;
    CHECK_EQ(pol_ratelimit_config_check(&c, err, sizeof(err)), -1);
    pol_ratelimit_config_default(&c);
    c.burst = 0;
    CHECK_EQ(pol_ratelimit_config_check(&c, err, sizeof(err)), -1);
    CHECK_STR(err, "burst: must be at least 1");
    pol_ratelimit_config_default(&c);
    c.rate = 1e-6;
    c.burst = 1000000;
    CHECK_EQ(pol_ratelimit_config_check(&c, err, sizeof(err)), -1);
    CHECK_CONTAINS(err, "over a century");
    pol_ratelimit_config_default(&c);
    c.slots = 1000;
    CHECK_EQ(pol_ratelimit_config_check(&c, err, sizeof(err)), -1);
    CHECK_CONTAINS(err, "slots: 1000 is not a power of two");
    c.slots = 4;
    CHECK_EQ(pol_ratelimit_config_check(&c, err, sizeof(err)), -1);
    pol_ratelimit_config_default(&c);
    c.probe = 0;
    CHECK_EQ(pol_ratelimit_config_check(&c, err, sizeof(err)), -1);
    c.probe = 65;
    CHECK_EQ(pol_ratelimit_config_check(&c, err, sizeof(err)), -1);
    CHECK_STR(err, "probe: 65 is not in 1..64");
    /* A random seed is chosen when none is given. */
    pol_ratelimit_config_default(&c);
    rl = pol_ratelimit_new(&c, err, sizeof(err));
    CHECK(rl && pol_ratelimit_config(rl)->seed != 0);
    pol_ratelimit_free(rl);
}

int main(void)
{
    RUN(test_burst_and_refill);
    RUN(test_steady_rate_exact);
    RUN(test_keys_independent);
    RUN(test_ip_keys);
    RUN(test_many_keys);
    RUN(test_table_full);
    RUN(test_messages_and_config);
    return 0;
}
