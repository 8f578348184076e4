/*
 * tests/unit/ca/test_ca_rotation.c: the certificate renewal schedule (ca/rotation_sm.h) on a
 * virtual clock: ask at start; renew between 60 % and two thirds of the lifetime (jitter);
 * retry with a doubling, capped backoff; a success resets it; a retry never lands after the
 * expiry of the certificate still serving; an expiry without successor is reported once.
 */
#include "ca/rotation_sm.h"

#include "tests/check.h"

#define H (3600LL * 1000)

static void test_renew_at_two_thirds(void)
{
    for (uint64_t seed = 1; seed < 200; seed++) {
        ca_rot_t r;
        ca_rot_effects_t e;
        ca_rot_init(&r, NULL, seed);
        int64_t now = 1000000;
        ca_rot_start(&r, now, &e);
        CHECK(e.send_request);
        ca_rot_start(&r, now, &e); /* already asking: nothing more */
        CHECK(!e.send_request);
        now += 200; /* the answer: a 24 h certificate */
        ca_rot_issued(&r, now, 1000000 + 24 * H, &e);
        CHECK(!e.send_request);
        CHECK(e.timer_at >= 1000000 + 24 * H * 6 / 10 - 1);
        CHECK(e.timer_at <= 1000000 + 16 * H);
        /* Early wake-ups re-arm; the due time asks. */
        int64_t due = e.timer_at;
        ca_rot_timer(&r, due - 1, &e);
        CHECK(!e.send_request);
        CHECK_EQ(e.timer_at, due);
        ca_rot_timer(&r, due, &e);
        CHECK(e.send_request);
    }
}

static void test_short_lifetime(void)
{
    /* 6 s certificates (the integration test's): renewals every 3.6-4 s, before expiry. */
    ca_rot_t r;
    ca_rot_effects_t e;
    ca_rot_init(&r, NULL, 7);
    int64_t now = 0;
    ca_rot_start(&r, now, &e);
    for (int i = 0; i < 50; i++) {
        int64_t na = now + 6000;
        ca_rot_issued(&r, now + 10, na, &e);
        CHECK(e.timer_at >= now + 3600 - 1 && e.timer_at <= now + 4000);
        now = e.timer_at;
        ca_rot_timer(&r, now, &e);
        CHECK(e.send_request);
        CHECK(now < na);
    }
    CHECK_EQ(r.issued, 50);
}

static void test_backoff(void)
{
    ca_rot_t r;
    ca_rot_effects_t e;
    ca_rot_config_t cfg = {.retry_min_ms = 1000, .retry_max_ms = 8000};
    ca_rot_init(&r, &cfg, 3);
    int64_t now = 0;
    ca_rot_start(&r, now, &e);
    uint64_t caps[] = {1000, 2000, 4000, 8000, 8000, 8000};
    for (size_t i = 0; i < 6; i++) {
        ca_rot_failed(&r, now, &e);
        int64_t d = e.timer_at - now;
        CHECK(d <= (int64_t)caps[i] && d >= (int64_t)caps[i] * 8 / 10);
        now = e.timer_at;
        ca_rot_timer(&r, now, &e);
        CHECK(e.send_request);
    }
    CHECK_EQ(r.failures, 6);
    /* A success resets the backoff. */
    ca_rot_issued(&r, now, now + 24 * H, &e);
    now = e.timer_at;
    ca_rot_timer(&r, now, &e);
    ca_rot_failed(&r, now, &e);
    CHECK(e.timer_at - now <= 1000);
}

static void test_retry_before_expiry(void)
{
    ca_rot_t r;
    ca_rot_effects_t e;
    ca_rot_config_t cfg = {.retry_min_ms = 60000, .retry_max_ms = 60000};
    ca_rot_init(&r, &cfg, 5);
    ca_rot_start(&r, 0, &e);
    ca_rot_issued(&r, 0, 6000, &e); /* expires at 6 s; retries are 60 s apart */
    int64_t now = e.timer_at;
    ca_rot_timer(&r, now, &e);
    ca_rot_failed(&r, now, &e);
    CHECK(e.timer_at < 6000); /* pulled in before the expiry */
    now = e.timer_at;
    ca_rot_timer(&r, now, &e);
    CHECK(e.send_request);
    /* Past the expiry with no new certificate: said once. */
    ca_rot_failed(&r, 6500, &e);
    ca_rot_timer(&r, 6500, &e);
    CHECK(e.expired);
    ca_rot_timer(&r, 6600, &e);
    CHECK(!e.expired);
}

int main(void)
{
    RUN(test_renew_at_two_thirds);
    RUN(test_short_lifetime);
    RUN(test_backoff);
    RUN(test_retry_before_expiry);
    return 0;
}
