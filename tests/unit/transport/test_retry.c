/*
 * tests/unit/transport/test_retry.c: the sans-I/O retry core (transport/retry.h): which
 * failed attempts may be tried again (never-sent ones always, others only for idempotent
 * methods, on retryable statuses, before a response went out, while the request is held),
 * max-attempts, the backoff's growth, cap and jitter, and the retry budget under a fake clock
 * (ratio x calls + floor over a ten-second sliding window; a full outage cannot multiply the
 * load by more than that).
 */
#include <stdio.h>

#include "tests/check.h"
#include "transport/grpc_status.h"
#include "transport/retry.h"

static const mesh_retry_policy_t idem = {
    .max_attempts = 3,
    .initial_backoff_ms = 100,
    .max_backoff_ms = 1000,
    .backoff_multiplier = 2,
    .retryable = 1u << MESH_GRPC_UNAVAILABLE,
    .idempotent = 1,
};

static void test_decide(void)
{
    mesh_retry_attempt_t a = {.attempts = 1, .status = MESH_GRPC_UNAVAILABLE, .replayable = 1};
    CHECK_EQ(mesh_retry_decide(&idem, &a), MESH_RETRY_YES);
    CHECK_EQ(mesh_retry_decide(NULL, &a), MESH_RETRY_NO_POLICY);
    a.status = MESH_GRPC_INTERNAL;
    CHECK_EQ(mesh_retry_decide(&idem, &a), MESH_RETRY_NO_STATUS);
    a.status = -1; /* reset without a status */
    CHECK_EQ(mesh_retry_decide(&idem, &a), MESH_RETRY_NO_STATUS);
    a.status = MESH_GRPC_UNAVAILABLE;
    a.attempts = 3;
    CHECK_EQ(mesh_retry_decide(&idem, &a), MESH_RETRY_NO_ATTEMPTS);
    a.attempts = 2;
    a.resp_forwarded = 1;
    CHECK_EQ(mesh_retry_decide(&idem, &a), MESH_RETRY_NO_COMMITTED);
    a.resp_forwarded = 0;
    a.replayable = 0;
    CHECK_EQ(mesh_retry_decide(&idem, &a), MESH_RETRY_NO_TOO_LARGE);
    a.replayable = 1;
    a.timed_out = 1;
    a.status = MESH_GRPC_DEADLINE_EXCEEDED; /* a per-try timeout: retryable when idempotent */
    CHECK_EQ(mesh_retry_decide(&idem, &a), MESH_RETRY_YES);

    /* not idempotent: only an attempt that provably never reached the app */
    mesh_retry_policy_t unsafe = idem;
    unsafe.idempotent = 0;
    mesh_retry_attempt_t b = {.attempts = 1, .status = MESH_GRPC_UNAVAILABLE, .replayable = 1};
    CHECK_EQ(mesh_retry_decide(&unsafe, &b), MESH_RETRY_NO_UNSAFE);
    b.timed_out = 1;
    CHECK_EQ(mesh_retry_decide(&unsafe, &b), MESH_RETRY_NO_UNSAFE);
    b.timed_out = 0;
    b.never_sent = 1;
    b.status = -1;
    CHECK_EQ(mesh_retry_decide(&unsafe, &b), MESH_RETRY_YES);
    CHECK(mesh_retry_verdict_name(MESH_RETRY_NO_UNSAFE)[0] != '?');
}

static void test_backoff(void)
{
    /* the upper bound grows 100, 200, 400, 800, then stays at the cap */
    const uint64_t bound[] = {0, 100, 200, 400, 800, 1000, 1000};
    for (uint32_t n = 1; n <= 6; n++) {
        uint64_t hi = 0, lo = UINT64_MAX, x = 0x9E3779B97F4A7C15ull;
        for (int i = 0; i < 20000; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            uint64_t d = mesh_retry_backoff_ms(&idem, n, x);
            CHECK(d <= bound[n]);
            hi = d > hi ? d : hi;
            lo = d < lo ? d : lo;
        }
        /* jittered over the whole range */
        CHECK(hi >= bound[n] * 95 / 100 && lo <= bound[n] / 20);
    }
    mesh_retry_policy_t zero = idem;
    zero.initial_backoff_ms = 0;
    CHECK_EQ(mesh_retry_backoff_ms(&zero, 3, 12345), 0);
}

static void test_budget(void)
{
    const mesh_retry_budget_cfg_t cfg = {.ratio = 0.2, .min_per_s = 1};
    mesh_retry_budget_t b = {0};
    uint64_t t = 1000000; /* ms */
    /* no calls: the floor alone, 1/s over 10 s */
    int granted = 0;
    for (int i = 0; i < 100; i++)
        granted += mesh_retry_budget_take(&b, &cfg, t);
    CHECK_EQ(granted, 10);
    CHECK_EQ(b.exhausted, 90);

    /* a full outage: 100 calls/s for 60 s, each failing and asking for a retry; the retries
     * in any 10 s stay under 0.2 x calls + 10 */
    mesh_retry_budget_t o = {0};
    long calls = 0, retries = 0;
    long per_s[80] = {0};
    for (int s = 0; s < 60; s++)
        for (int i = 0; i < 100; i++) {
            uint64_t now = t + (uint64_t)s * 1000 + (uint64_t)i * 10;
            mesh_retry_budget_call(&o, now);
            calls++;
            if (mesh_retry_budget_take(&o, &cfg, now)) {
                retries++;
                per_s[s]++;
            }
        }
    for (int s = 9; s < 60; s++) {
        long w = 0;
        for (int k = s - 9; k <= s; k++)
            w += per_s[k];
        CHECK(w <= 0.2 * 1000 + 10);
    }
    fprintf(stderr, "outage: %ld calls, %ld retries (%.3f per call)\n", calls, retries,
            (double)retries / (double)calls);
    CHECK(retries <= (long)(0.2 * (double)calls) + 10 * 6 + 10);
    CHECK(retries >= (long)(0.2 * (double)calls) - 10); /* and the budget is usable */

    /* the window slides: after 10 quiet seconds the floor is back */
    uint64_t later = t + 60000 + 11000;
    granted = 0;
    for (int i = 0; i < 50; i++)
        granted += mesh_retry_budget_take(&o, &cfg, later);
    CHECK_EQ(granted, 10);
    /* a jump far ahead clears everything (no stale slot survives) */
    mesh_retry_budget_call(&o, later + 1000000);
    CHECK(mesh_retry_budget_take(&o, &cfg, later + 1000000));
}

int main(void)
{
    RUN(test_decide);
    RUN(test_backoff);
    RUN(test_budget);
    return 0;
}
