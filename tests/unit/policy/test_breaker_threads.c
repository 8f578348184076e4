/*
 * tests/unit/policy/test_breaker_threads.c: one breaker shared by 4 threads, as the sidecar's
 * workers share their app's breaker. The thresholds must hold for the sum of the threads'
 * calls, not per thread: the circuit opens after the configured number of consecutive
 * failures (not 4x), the failure ratio trips at the configured ratio and minimum of calls,
 * no more calls than max_concurrent are in flight, exactly half_open_probes probes are let
 * through, and every transition is reported exactly once, in order. Many rounds of each, so
 * the threads collide on every path; run under ThreadSanitizer by scripts/test.
 *
 * The clock is the test's (a fixed or stepped value), so no result depends on timing; only
 * the interleaving varies from run to run, and every interleaving must pass.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "policy/breaker.h"
#include "tests/check.h"

#define THREADS 4
#define SEC     1000000000ull

/* Transitions as reported (the callback runs under the breaker's mutex: no lock needed here;
 * the main thread reads them after joining the threads). */
typedef struct {
    int n;
    pol_breaker_state_t from[4096], to[4096];
    char reason[4096][160];
} log_t;

static log_t g_log;

static void on_transition(void *ud, const pol_breaker_transition_t *t)
{
    log_t *l = ud;
    if (l->n < 4096) {
        l->from[l->n] = t->from;
        l->to[l->n] = t->to;
        snprintf(l->reason[l->n], sizeof(l->reason[0]), "%s", t->reason);
    }
    l->n++;
}

typedef struct {
    pol_breaker_t *b;
    pthread_barrier_t *go;
    _Atomic uint64_t *now;
    int index;
    uint64_t admitted; /* this thread's admitted calls */
    pol_breaker_permit_t held[256];
    int nheld;
} worker_t;

static pthread_barrier_t g_go;

static void run_threads(worker_t *w, void *(*fn)(void *))
{
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        CHECK_EQ(pthread_create(&th[i], NULL, fn, &w[i]), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
}

static void workers_init(worker_t *w, pol_breaker_t *b, _Atomic uint64_t *now)
{
    memset(w, 0, sizeof(*w) * THREADS);
    for (int i = 0; i < THREADS; i++) {
        w[i].b = b;
        w[i].go = &g_go;
        w[i].now = now;
        w[i].index = i;
    }
}

static uint64_t total_admitted(const worker_t *w)
{
    uint64_t n = 0;
    for (int i = 0; i < THREADS; i++)
        n += w[i].admitted;
    return n;
}

/* ---- consecutive failures ------------------------------------------------------------- */

/* Every thread fails calls as fast as it can until the circuit refuses them. */
static void *fail_until_open(void *arg)
{
    worker_t *w = arg;
    pthread_barrier_wait(w->go);
    for (;;) {
        pol_breaker_permit_t p;
        uint64_t now = atomic_load(w->now);
        pol_breaker_decision_t d = pol_breaker_allow(w->b, now, &p);
        if (d != POL_BREAKER_ALLOWED)
            break;
        w->admitted++;
        pol_breaker_done(w->b, &p, POL_BREAKER_FAILURE, now);
    }
    return NULL;
}

/* Every thread holds one probe call (or is refused), then they all report success. */
static void *probe_once(void *arg)
{
    worker_t *w = arg;
    uint64_t now = atomic_load(w->now);
    w->nheld = 0;
    pthread_barrier_wait(w->go);
    for (int i = 0; i < 8; i++) { /* more attempts per thread than there are probe slots */
        pol_breaker_permit_t p;
        if (pol_breaker_allow(w->b, now, &p) == POL_BREAKER_ALLOWED) {
            CHECK(p.probe);
            w->held[w->nheld++] = p;
            w->admitted++;
        }
    }
    pthread_barrier_wait(w->go); /* every probe slot is taken before any result arrives */
    for (int i = 0; i < w->nheld; i++)
        pol_breaker_done(w->b, &w->held[i], POL_BREAKER_SUCCESS, now);
    return NULL;
}

static void test_consecutive_failures_exact(void)
{
    enum { FAILURES = 500, PROBES = 5, ROUNDS = 40 };
    pol_breaker_config_t c;
    pol_breaker_config_default(&c);
    c.consecutive_failures = FAILURES;
    c.failure_ratio = 0;
    c.open_ns = 1 * SEC;
    c.open_max_ns = 1 * SEC;
    c.half_open_probes = PROBES;
    pol_breaker_t b;
    memset(&g_log, 0, sizeof(g_log));
    CHECK_EQ(pol_breaker_init(&b, "app 127.0.0.1:1", &c, on_transition, &g_log), 0);
    _Atomic uint64_t now = 100 * SEC;
    worker_t w[THREADS];
    CHECK_EQ(pthread_barrier_init(&g_go, NULL, THREADS), 0);

    for (int round = 0; round < ROUNDS; round++) {
        int base = g_log.n;
        /* closed -> open after exactly FAILURES consecutive failures from 4 threads: the calls
         * admitted are those FAILURES plus at most one in flight on each other thread. */
        workers_init(w, &b, &now);
        run_threads(w, fail_until_open);
        uint64_t admitted = total_admitted(w);
        if (admitted < FAILURES || admitted > FAILURES + THREADS - 1) {
            fprintf(stderr, "round %d: %llu calls admitted for a threshold of %d\n", round,
                    (unsigned long long)admitted, FAILURES);
            CHECK(0);
        }
        CHECK_EQ(g_log.n, base + 1);
        CHECK(g_log.from[base] == POL_BREAKER_CLOSED && g_log.to[base] == POL_BREAKER_OPEN);
        char expect[64];
        snprintf(expect, sizeof(expect), "%d consecutive failures;", FAILURES);
        CHECK_CONTAINS(g_log.reason[base], expect);
        CHECK(pol_breaker_state(&b) == POL_BREAKER_OPEN);
        CHECK_EQ(pol_breaker_in_flight(&b), 0);

        /* open -> half-open once, exactly PROBES probes among 4 x 8 attempts, -> closed once. */
        atomic_fetch_add(&now, 1 * SEC);
        workers_init(w, &b, &now);
        run_threads(w, probe_once);
        CHECK_EQ(total_admitted(w), PROBES);
        CHECK_EQ(g_log.n, base + 3);
        CHECK(g_log.from[base + 1] == POL_BREAKER_OPEN &&
              g_log.to[base + 1] == POL_BREAKER_HALF_OPEN);
        CHECK(g_log.from[base + 2] == POL_BREAKER_HALF_OPEN &&
              g_log.to[base + 2] == POL_BREAKER_CLOSED);
        snprintf(expect, sizeof(expect), "%d probe call(s) succeeded", PROBES);
        CHECK_CONTAINS(g_log.reason[base + 2], expect);
        CHECK(pol_breaker_state(&b) == POL_BREAKER_CLOSED);
        CHECK_EQ(pol_breaker_in_flight(&b), 0);
    }
    pol_breaker_stats_t st;
    pol_breaker_stats(&b, &st);
    CHECK_EQ(st.trips, ROUNDS);
    pthread_barrier_destroy(&g_go);
    pol_breaker_destroy(&b);
}

/* ---- a success on one thread resets the count for every thread ------------------------ */

/* Rounds of: every thread fails 10 calls at once (40 < the threshold of 50), then thread 0
 * reports one success. The failures add up to 4 x 10 x 200, far past the threshold, but no
 * run of consecutive failures reaches it: the circuit must stay closed. Per-thread breakers,
 * or a success that reset only its own thread's count, would open it. */
enum { RESET_THRESHOLD = 50, RESET_ROUNDS = 200, RESET_BURST = 10 };

static void *fail_then_one_success(void *arg)
{
    worker_t *w = arg;
    uint64_t now = atomic_load(w->now);
    for (int round = 0; round < RESET_ROUNDS; round++) {
        pthread_barrier_wait(w->go);
        for (int i = 0; i < RESET_BURST; i++) {
            pol_breaker_permit_t p;
            CHECK(pol_breaker_allow(w->b, now, &p) == POL_BREAKER_ALLOWED);
            pol_breaker_done(w->b, &p, POL_BREAKER_FAILURE, now);
        }
        pthread_barrier_wait(w->go);
        if (w->index == 0) {
            pol_breaker_permit_t p;
            CHECK(pol_breaker_allow(w->b, now, &p) == POL_BREAKER_ALLOWED);
            pol_breaker_done(w->b, &p, POL_BREAKER_SUCCESS, now);
        }
    }
    return NULL;
}

static void test_success_resets_shared_count(void)
{
    pol_breaker_config_t c;
    pol_breaker_config_default(&c);
    c.consecutive_failures = RESET_THRESHOLD;
    c.failure_ratio = 0;
    pol_breaker_t b;
    memset(&g_log, 0, sizeof(g_log));
    CHECK_EQ(pol_breaker_init(&b, "app 127.0.0.1:1", &c, on_transition, &g_log), 0);
    _Atomic uint64_t now = 5 * SEC;
    worker_t w[THREADS];
    CHECK_EQ(pthread_barrier_init(&g_go, NULL, THREADS), 0);
    workers_init(w, &b, &now);
    run_threads(w, fail_then_one_success);
    CHECK_EQ(g_log.n, 0);
    CHECK(pol_breaker_state(&b) == POL_BREAKER_CLOSED);
    /* The count starts from zero after the last success: the threads together open the
     * circuit after exactly the threshold (plus what was in flight on the others). */
    workers_init(w, &b, &now);
    run_threads(w, fail_until_open);
    uint64_t admitted = total_admitted(w);
    CHECK(admitted >= RESET_THRESHOLD && admitted <= RESET_THRESHOLD + THREADS - 1);
    CHECK_EQ(g_log.n, 1);
    CHECK_CONTAINS(g_log.reason[0], "50 consecutive failures");
    pthread_barrier_destroy(&g_go);
    pol_breaker_destroy(&b);
}

/* ---- failure ratio -------------------------------------------------------------------- */

/* Phase 1 (before the barrier): 1 failure in 4 calls, 25% < 50%: never trips. Phase 2:
 * failures only, until the circuit opens. */
static void *ratio_worker(void *arg)
{
    worker_t *w = arg;
    uint64_t now = atomic_load(w->now);
    pthread_barrier_wait(w->go);
    for (int i = 0; i < 2000; i++) {
        pol_breaker_permit_t p;
        CHECK(pol_breaker_allow(w->b, now, &p) == POL_BREAKER_ALLOWED);
        pol_breaker_done(w->b, &p, i % 4 == 0 ? POL_BREAKER_FAILURE : POL_BREAKER_SUCCESS, now);
    }
    pthread_barrier_wait(w->go);
    for (;;) {
        pol_breaker_permit_t p;
        if (pol_breaker_allow(w->b, now, &p) != POL_BREAKER_ALLOWED)
            break;
        w->admitted++;
        pol_breaker_done(w->b, &p, POL_BREAKER_FAILURE, now);
    }
    return NULL;
}

static void test_failure_ratio_exact(void)
{
    for (int round = 0; round < 20; round++) {
        pol_breaker_config_t c;
        pol_breaker_config_default(&c);
        c.consecutive_failures = 0;
        c.failure_ratio = 0.5;
        c.ratio_min_calls = 100;
        c.window_ns = 10 * SEC;
        pol_breaker_t b;
        memset(&g_log, 0, sizeof(g_log));
        CHECK_EQ(pol_breaker_init(&b, "app 127.0.0.1:1", &c, on_transition, &g_log), 0);
        _Atomic uint64_t now = 1000 * SEC + (uint64_t)round;
        worker_t w[THREADS];
        CHECK_EQ(pthread_barrier_init(&g_go, NULL, THREADS), 0);
        workers_init(w, &b, &now);
        run_threads(w, ratio_worker);
        /* Phase 1 left 8000 calls with 2000 failures; the ratio reaches 50% after 4000 more
         * failures (6000/12000), give or take the calls in flight on the other threads. */
        uint64_t extra = total_admitted(w);
        if (extra < 4000 || extra > 4000 + THREADS - 1) {
            fprintf(stderr, "round %d: tripped after %llu more failures (expected 4000)\n", round,
                    (unsigned long long)extra);
            CHECK(0);
        }
        CHECK_EQ(g_log.n, 1);
        unsigned long long f = 0, k = 0;
        const char *r = strstr(g_log.reason[0], "failure ratio ");
        CHECK(r && sscanf(r, "failure ratio %llu/%llu", &f, &k) == 2);
        /* What the tripping thread saw: at least 50%, and at most a call or so per other
         * thread past the point where it first reached 50%. */
        CHECK(2 * f >= k);
        CHECK(k >= 12000 && k <= 12000 + 2 * THREADS);
        pthread_barrier_destroy(&g_go);
        pol_breaker_destroy(&b);
    }
}

/* The ratio needs min_calls in the window, counted across threads: with failures only, the
 * circuit opens once the threads together made ratio_min_calls calls. */
static void test_ratio_min_calls_across_threads(void)
{
    for (int round = 0; round < 20; round++) {
        pol_breaker_config_t c;
        pol_breaker_config_default(&c);
        c.consecutive_failures = 0;
        c.failure_ratio = 1.0;
        c.ratio_min_calls = 400;
        pol_breaker_t b;
        memset(&g_log, 0, sizeof(g_log));
        CHECK_EQ(pol_breaker_init(&b, "app 127.0.0.1:1", &c, on_transition, &g_log), 0);
        _Atomic uint64_t now = 7 * SEC;
        worker_t w[THREADS];
        CHECK_EQ(pthread_barrier_init(&g_go, NULL, THREADS), 0);
        workers_init(w, &b, &now);
        run_threads(w, fail_until_open);
        uint64_t admitted = total_admitted(w);
        CHECK(admitted >= 400 && admitted <= 400 + THREADS - 1);
        CHECK_EQ(g_log.n, 1);
        CHECK(g_log.to[0] == POL_BREAKER_OPEN);
        pthread_barrier_destroy(&g_go);
        pol_breaker_destroy(&b);
    }
}

/* ---- concurrency cap ------------------------------------------------------------------ */

static void *hold_until_refused(void *arg)
{
    worker_t *w = arg;
    uint64_t now = atomic_load(w->now);
    w->nheld = 0;
    pthread_barrier_wait(w->go);
    for (int i = 0; i < 200; i++) {
        pol_breaker_permit_t p;
        pol_breaker_decision_t d = pol_breaker_allow(w->b, now, &p);
        if (d == POL_BREAKER_ALLOWED)
            w->held[w->nheld++] = p;
        else
            CHECK(d == POL_BREAKER_REJECT_CONCURRENCY);
    }
    pthread_barrier_wait(w->go);
    for (int i = 0; i < w->nheld; i++)
        pol_breaker_done(w->b, &w->held[i], POL_BREAKER_SUCCESS, now);
    w->admitted = (uint64_t)w->nheld;
    return NULL;
}

static void test_max_concurrent_exact(void)
{
    pol_breaker_config_t c;
    pol_breaker_config_default(&c);
    c.max_concurrent = 300;
    pol_breaker_t b;
    memset(&g_log, 0, sizeof(g_log));
    CHECK_EQ(pol_breaker_init(&b, "app 127.0.0.1:1", &c, on_transition, &g_log), 0);
    _Atomic uint64_t now = 3 * SEC;
    CHECK_EQ(pthread_barrier_init(&g_go, NULL, THREADS), 0);
    for (int round = 0; round < 50; round++) {
        worker_t w[THREADS];
        workers_init(w, &b, &now);
        run_threads(w, hold_until_refused);
        CHECK_EQ(total_admitted(w), 300); /* 4 x 200 attempts, exactly 300 in flight */
        CHECK_EQ(pol_breaker_in_flight(&b), 0);
    }
    CHECK_EQ(g_log.n, 0);
    pol_breaker_stats_t st;
    pol_breaker_stats(&b, &st);
    CHECK_EQ(st.rejected_concurrency, 50 * (800 - 300));
    pthread_barrier_destroy(&g_go);
    pol_breaker_destroy(&b);
}

int main(void)
{
    RUN(test_consecutive_failures_exact);
    RUN(test_success_resets_shared_count);
    RUN(test_failure_ratio_exact);
    RUN(test_ratio_min_calls_across_threads);
    RUN(test_max_concurrent_exact);
    printf("test_breaker_threads: ok\n");
    return 0;
}
