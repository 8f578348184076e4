/*
 * tests/unit/policy/test_breaker.c: the circuit breaker under a fake clock.
 *
 * Covers every transition (closed -> open by consecutive failures and by ratio, open ->
 * half-open, half-open -> closed, half-open -> open with a growing capped interval), the
 * sliding ratio window, the concurrency cap, stale permits and the rejection messages.
 */
#include "policy/breaker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tests/check.h"

#define SEC  1000000000ull
#define MSEC 1000000ull

/* Records the transitions a breaker reports. */
typedef struct {
    int n;
    pol_breaker_state_t from[32], to[32];
    char reason[32][160];
    uint64_t open_until[32];
} log_t;

static void on_transition(void *ud, const pol_breaker_transition_t *t)
{
    log_t *l = ud;
    CHECK(strcmp(t->service, "pkg.Svc") == 0);
    if (l->n < 32) {
        l->from[l->n] = t->from;
        l->to[l->n] = t->to;
        snprintf(l->reason[l->n], sizeof(l->reason[0]), "%s", t->reason);
        l->open_until[l->n] = t->open_until_ns;
    }
    l->n++;
}

/* One call admitted at now and finished at now with the given outcome. */
static pol_breaker_decision_t call(pol_breaker_t *b, uint64_t now, pol_breaker_outcome_t o)
{
    pol_breaker_permit_t p;
    pol_breaker_decision_t d = pol_breaker_allow(b, now, &p);
    if (d == POL_BREAKER_ALLOWED)
        pol_breaker_done(b, &p, o, now);
    return d;
}

static void config_only_consecutive(pol_breaker_config_t *c)
{
    pol_breaker_config_default(c);
    c->consecutive_failures = 3;
    c->failure_ratio = 0;
    c->open_ns = 1 * SEC;
    c->open_max_ns = 5 * SEC;
    c->half_open_probes = 2;
}

static void test_consecutive_trip_and_recovery(void)
{
    pol_breaker_config_t c;
    config_only_consecutive(&c);
    pol_breaker_t b;
    log_t l = {0};
    CHECK(pol_breaker_init(&b, "pkg.Svc", &c, on_transition, &l) == 0);
    uint64_t t = 100 * SEC;

    /* Failures interrupted by a success do not trip. */
    CHECK(call(&b, t, POL_BREAKER_FAILURE) == POL_BREAKER_ALLOWED);
    CHECK(call(&b, t, POL_BREAKER_FAILURE) == POL_BREAKER_ALLOWED);
    CHECK(call(&b, t, POL_BREAKER_SUCCESS) == POL_BREAKER_ALLOWED);
    CHECK(call(&b, t, POL_BREAKER_FAILURE) == POL_BREAKER_ALLOWED);
    CHECK(call(&b, t, POL_BREAKER_FAILURE) == POL_BREAKER_ALLOWED);
    CHECK(l.n == 0 && pol_breaker_state(&b) == POL_BREAKER_CLOSED);

    /* The third consecutive failure trips: closed -> open. */
    CHECK(call(&b, t, POL_BREAKER_FAILURE) == POL_BREAKER_ALLOWED);
    CHECK(l.n == 1 && l.from[0] == POL_BREAKER_CLOSED && l.to[0] == POL_BREAKER_OPEN);
    CHECK(strstr(l.reason[0], "3 consecutive failures") != NULL);
    CHECK(l.open_until[0] == t + 1 * SEC);

    /* While open every call is rejected, and nothing more is reported. */
    CHECK(call(&b, t + 999 * MSEC, POL_BREAKER_SUCCESS) == POL_BREAKER_REJECT_OPEN);
    CHECK(l.n == 1);
    char msg[128];
    CHECK(pol_breaker_reject_message(&b, POL_BREAKER_REJECT_OPEN, msg, sizeof(msg)) > 0);
    CHECK(strcmp(msg, "meshd: circuit open for pkg.Svc") == 0);

    /* After the open interval: open -> half-open, two probes let through, a third rejected. */
    t += 1 * SEC;
    pol_breaker_permit_t p1, p2, p3;
    CHECK(pol_breaker_allow(&b, t, &p1) == POL_BREAKER_ALLOWED);
    CHECK(l.n == 2 && l.from[1] == POL_BREAKER_OPEN && l.to[1] == POL_BREAKER_HALF_OPEN);
    CHECK(p1.probe);
    CHECK(pol_breaker_allow(&b, t, &p2) == POL_BREAKER_ALLOWED);
    CHECK(pol_breaker_allow(&b, t, &p3) == POL_BREAKER_REJECT_OPEN);

    /* One probe succeeding is not enough; both: half-open -> closed. */
    pol_breaker_done(&b, &p1, POL_BREAKER_SUCCESS, t);
    CHECK(pol_breaker_state(&b) == POL_BREAKER_HALF_OPEN);
    pol_breaker_done(&b, &p2, POL_BREAKER_SUCCESS, t);
    CHECK(l.n == 3 && l.from[2] == POL_BREAKER_HALF_OPEN && l.to[2] == POL_BREAKER_CLOSED);
    CHECK(strstr(l.reason[2], "2 probe call(s) succeeded") != NULL);
    CHECK(pol_breaker_in_flight(&b) == 0);

    /* Closed again with a fresh failure count. */
    CHECK(call(&b, t, POL_BREAKER_FAILURE) == POL_BREAKER_ALLOWED);
    CHECK(call(&b, t, POL_BREAKER_FAILURE) == POL_BREAKER_ALLOWED);
    CHECK(pol_breaker_state(&b) == POL_BREAKER_CLOSED);
}

static void test_probe_failure_reopens_with_growing_capped_interval(void)
{
    pol_breaker_config_t c;
    config_only_consecutive(&c);
    c.half_open_probes = 1;
    pol_breaker_t b;
    log_t l = {0};
    CHECK(pol_breaker_init(&b, "pkg.Svc", &c, on_transition, &l) == 0);
    uint64_t t = 0;
    for (int i = 0; i < 3; i++)
        call(&b, t, POL_BREAKER_FAILURE);
    CHECK(pol_breaker_state(&b) == POL_BREAKER_OPEN);

    /* Intervals after each failed probe: 2 s, 4 s, then capped at 5 s. */
    uint64_t expect[] = {2 * SEC, 4 * SEC, 5 * SEC, 5 * SEC};
    uint64_t interval = 1 * SEC;
    for (int i = 0; i < 4; i++) {
        /* Just before the interval ends it is still open. */
        CHECK(pol_breaker_poll(&b, t + interval - 1) == POL_BREAKER_OPEN);
        t += interval;
        int before = l.n;
        CHECK(call(&b, t, POL_BREAKER_FAILURE) == POL_BREAKER_ALLOWED);
        CHECK(l.n == before + 2);
        CHECK(l.to[before] == POL_BREAKER_HALF_OPEN);
        CHECK(l.from[before + 1] == POL_BREAKER_HALF_OPEN && l.to[before + 1] == POL_BREAKER_OPEN);
        CHECK(strstr(l.reason[before + 1], "probe call failed") != NULL);
        CHECK(l.open_until[before + 1] == t + expect[i]);
        interval = expect[i];
    }

    /* A successful probe closes it and resets the interval to the base. */
    t += interval;
    CHECK(call(&b, t, POL_BREAKER_SUCCESS) == POL_BREAKER_ALLOWED);
    CHECK(pol_breaker_state(&b) == POL_BREAKER_CLOSED);
    for (int i = 0; i < 3; i++)
        call(&b, t, POL_BREAKER_FAILURE);
    CHECK(pol_breaker_state(&b) == POL_BREAKER_OPEN);
    CHECK(l.open_until[l.n - 1] == t + 1 * SEC);
}

static void test_ratio_window(void)
{
    pol_breaker_config_t c;
    pol_breaker_config_default(&c);
    c.consecutive_failures = 0;
    c.failure_ratio = 0.5;
    c.ratio_min_calls = 10;
    c.window_ns = 10 * SEC; /* buckets of 1 s */
    pol_breaker_t b;
    log_t l = {0};
    CHECK(pol_breaker_init(&b, "pkg.Svc", &c, on_transition, &l) == 0);
    uint64_t t = 1000 * SEC;

    /* Below the minimum number of calls nothing trips, even at 100% failures. */
    for (int i = 0; i < 9; i++)
        call(&b, t, POL_BREAKER_FAILURE);
    CHECK(pol_breaker_state(&b) == POL_BREAKER_CLOSED);
    uint64_t calls, fails;
    pol_breaker_window(&b, t, &calls, &fails);
    CHECK(calls == 9 && fails == 9);

    /* Those failures slide out of the window: 10 s later the window is empty. */
    t += 10 * SEC;
    pol_breaker_window(&b, t, &calls, &fails);
    CHECK(calls == 0 && fails == 0);

    /* 4 failures and 6 successes: 40% < 50%, no trip. */
    for (int i = 0; i < 6; i++)
        call(&b, t, POL_BREAKER_SUCCESS);
    for (int i = 0; i < 4; i++)
        call(&b, t + 1 * SEC, POL_BREAKER_FAILURE);
    CHECK(pol_breaker_state(&b) == POL_BREAKER_CLOSED);

    /* The 6 successes expire 10 s later; the 4 failures are still in the window. Adding
     * 6 calls of which 1 fails: 5/10 = 50% -> trip. */
    t += 10 * SEC;
    pol_breaker_window(&b, t, &calls, &fails);
    CHECK(calls == 4 && fails == 4);
    for (int i = 0; i < 5; i++)
        call(&b, t, POL_BREAKER_SUCCESS);
    CHECK(pol_breaker_state(&b) == POL_BREAKER_CLOSED);
    call(&b, t, POL_BREAKER_FAILURE);
    CHECK(pol_breaker_state(&b) == POL_BREAKER_OPEN);
    CHECK(l.n == 1 && strstr(l.reason[0], "failure ratio 5/10") != NULL);
}

static void test_concurrency_cap(void)
{
    pol_breaker_config_t c;
    pol_breaker_config_default(&c);
    c.max_concurrent = 2;
    pol_breaker_t b;
    log_t l = {0};
    CHECK(pol_breaker_init(&b, "pkg.Svc", &c, on_transition, &l) == 0);
    pol_breaker_permit_t p1, p2, p3;
    CHECK(pol_breaker_allow(&b, 0, &p1) == POL_BREAKER_ALLOWED);
    CHECK(pol_breaker_allow(&b, 0, &p2) == POL_BREAKER_ALLOWED);
    for (int i = 0; i < 50; i++)
        CHECK(pol_breaker_allow(&b, 0, &p3) == POL_BREAKER_REJECT_CONCURRENCY);
    /* Rejections over the cap never trip the breaker. */
    CHECK(l.n == 0 && pol_breaker_state(&b) == POL_BREAKER_CLOSED);
    char msg[128];
    CHECK(pol_breaker_reject_message(&b, POL_BREAKER_REJECT_CONCURRENCY, msg, sizeof(msg)) > 0);
    CHECK(strstr(msg, "pkg.Svc") != NULL && strstr(msg, "limit 2") != NULL);
    pol_breaker_done(&b, &p1, POL_BREAKER_SUCCESS, 0);
    pol_breaker_done(&b, &p1, POL_BREAKER_SUCCESS, 0); /* twice: no-op */
    CHECK(pol_breaker_in_flight(&b) == 1);
    CHECK(pol_breaker_allow(&b, 0, &p3) == POL_BREAKER_ALLOWED);
    pol_breaker_done(&b, &p2, POL_BREAKER_IGNORED, 0);
    pol_breaker_done(&b, &p3, POL_BREAKER_SUCCESS, 0);
    CHECK(pol_breaker_in_flight(&b) == 0);
}

static void test_stale_permits_and_ignored_probes(void)
{
    pol_breaker_config_t c;
    config_only_consecutive(&c);
    c.half_open_probes = 1;
    pol_breaker_t b;
    log_t l = {0};
    CHECK(pol_breaker_init(&b, "pkg.Svc", &c, on_transition, &l) == 0);

    /* A slow call admitted while closed ... */
    pol_breaker_permit_t slow;
    CHECK(pol_breaker_allow(&b, 0, &slow) == POL_BREAKER_ALLOWED);
    for (int i = 0; i < 3; i++)
        call(&b, 0, POL_BREAKER_FAILURE);
    CHECK(pol_breaker_state(&b) == POL_BREAKER_OPEN);

    /* ... ending successfully during half-open must not close the breaker. */
    pol_breaker_permit_t probe;
    CHECK(pol_breaker_allow(&b, 1 * SEC, &probe) == POL_BREAKER_ALLOWED);
    pol_breaker_done(&b, &slow, POL_BREAKER_SUCCESS, 1 * SEC);
    CHECK(pol_breaker_state(&b) == POL_BREAKER_HALF_OPEN);

    /* A cancelled probe gives its slot back for another probe. */
    pol_breaker_permit_t other;
    CHECK(pol_breaker_allow(&b, 1 * SEC, &other) == POL_BREAKER_REJECT_OPEN);
    pol_breaker_done(&b, &probe, POL_BREAKER_IGNORED, 1 * SEC);
    CHECK(pol_breaker_allow(&b, 1 * SEC, &other) == POL_BREAKER_ALLOWED);
    pol_breaker_done(&b, &other, POL_BREAKER_SUCCESS, 1 * SEC);
    CHECK(pol_breaker_state(&b) == POL_BREAKER_CLOSED);
    CHECK(pol_breaker_in_flight(&b) == 0);
}

static void test_classify_and_messages(void)
{
    CHECK(pol_breaker_classify_grpc(14) == POL_BREAKER_FAILURE);
    CHECK(pol_breaker_classify_grpc(13) == POL_BREAKER_FAILURE);
    CHECK(pol_breaker_classify_grpc(4) == POL_BREAKER_FAILURE);
    CHECK(pol_breaker_classify_grpc(-1) == POL_BREAKER_FAILURE);
    CHECK(pol_breaker_classify_grpc(0) == POL_BREAKER_SUCCESS);
    CHECK(pol_breaker_classify_grpc(5) == POL_BREAKER_SUCCESS);  /* NOT_FOUND */
    CHECK(pol_breaker_classify_grpc(3) == POL_BREAKER_SUCCESS);  /* INVALID_ARGUMENT */
    CHECK(pol_breaker_classify_grpc(12) == POL_BREAKER_SUCCESS); /* UNIMPLEMENTED */

    char buf[64];
    CHECK(pol_breaker_format_open_message("a.B", buf, sizeof(buf)) == 27);
    CHECK(strcmp(buf, "meshd: circuit open for a.B") == 0);
    CHECK(pol_breaker_format_open_message("a.B", buf, 10) == -1);

    CHECK(strcmp(pol_breaker_state_name(POL_BREAKER_HALF_OPEN), "half-open") == 0);

    pol_breaker_config_t c;
    pol_breaker_t b;
    pol_breaker_config_default(&c);
    c.half_open_probes = 0;
    CHECK(pol_breaker_init(&b, "x", &c, NULL, NULL) == -1);
    pol_breaker_config_default(&c);
    c.failure_ratio = 1.5;
    CHECK(pol_breaker_init(&b, "x", &c, NULL, NULL) == -1);
    pol_breaker_config_default(&c);
    c.open_max_ns = c.open_ns - 1;
    CHECK(pol_breaker_init(&b, "x", &c, NULL, NULL) == -1);
    pol_breaker_config_default(&c);
    c.half_open_probes = POL_BREAKER_PROBES_MAX + 1;
    char err[128];
    CHECK(pol_breaker_config_check(&c, err, sizeof(err)) == -1);
    CHECK(strstr(err, "half-open probes") != NULL);
}

int main(void)
{
    test_consecutive_trip_and_recovery();
    test_probe_failure_reopens_with_growing_capped_interval();
    test_ratio_window();
    test_concurrency_cap();
    test_stale_permits_and_ignored_probes();
    test_classify_and_messages();
    printf("test_breaker: ok\n");
    return 0;
}
