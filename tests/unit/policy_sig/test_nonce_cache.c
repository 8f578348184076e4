/*
 * tests/unit/policy_sig/test_nonce_cache.c: the replay cache (policy/nonce_cache.h).
 *
 * A nonce is fresh once and replayed until its expiry, per client; expired entries make room;
 * a cache full of live entries refuses (and still knows every nonce it holds) instead of
 * forgetting one; and across 4 threads racing to insert the same nonce exactly one wins, every
 * round.
 */
#include "policy/nonce_cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "tests/check.h"

static pol_nonce_result_t ins(pol_nonce_cache_t *c, const char *client, const char *nonce,
                              int64_t exp, int64_t now)
{
    return pol_nonce_cache_insert(c, client, strlen(client), nonce, strlen(nonce), exp, now);
}

static void test_basic(void)
{
    char err[128];
    CHECK(pol_nonce_cache_new(10, err, sizeof(err)) == NULL);
    CHECK_CONTAINS(err, "nonce cache capacity 10: expected 64..");
    pol_nonce_cache_t *c = pol_nonce_cache_new(1024, err, sizeof(err));
    CHECK(c != NULL);
    CHECK_EQ(pol_nonce_cache_capacity(c), 1024);
    CHECK_EQ(ins(c, "alice", "n1", 110, 100), POL_NONCE_FRESH);
    CHECK_EQ(ins(c, "alice", "n1", 110, 100), POL_NONCE_REPLAYED);
    CHECK_EQ(ins(c, "alice", "n1", 999, 110), POL_NONCE_REPLAYED); /* expiry 110 still live */
    CHECK_EQ(ins(c, "bob", "n1", 110, 100), POL_NONCE_FRESH);      /* per client */
    /* The client/nonce split is part of the key. */
    CHECK_EQ(ins(c, "alicen", "1", 110, 100), POL_NONCE_FRESH);
    CHECK_EQ(pol_nonce_cache_count(c), 3);
    /* After its expiry the pair is new again (a fresh timestamp would be required anyway). */
    CHECK_EQ(ins(c, "alice", "n1", 200, 111), POL_NONCE_FRESH);
    CHECK_EQ(ins(c, "alice", "n1", 200, 150), POL_NONCE_REPLAYED);
    pol_nonce_cache_delete(c);
}

static void test_full_and_expiry(void)
{
    char err[128];
    const size_t cap = 64 * 32;
    pol_nonce_cache_t *c = pol_nonce_cache_new(cap, err, sizeof(err));
    CHECK(c != NULL);
    int64_t now = 1000;
    size_t accepted = 0;
    char nonce[32];
    int i;
    for (i = 0; i < 10000; i++) {
        snprintf(nonce, sizeof(nonce), "nonce-%d", i);
        pol_nonce_result_t r = ins(c, "alice", nonce, now + 60, now);
        if (r == POL_NONCE_FULL)
            break;
        CHECK_EQ(r, POL_NONCE_FRESH);
        accepted++;
    }
    /* It filled up before 10000, within capacity, and not much earlier (shards even out). */
    CHECK(i < 10000);
    CHECK(accepted <= cap);
    CHECK(accepted >= cap / 2);
    fprintf(stderr, "   full after %zu of %zu\n", accepted, cap);
    /* Full: nothing is forgotten, every accepted nonce is still a replay; new ones refused. */
    for (size_t k = 0; k < accepted; k++) {
        snprintf(nonce, sizeof(nonce), "nonce-%zu", k);
        CHECK_EQ(ins(c, "alice", nonce, now + 60, now + 1), POL_NONCE_REPLAYED);
    }
    int refused = 0;
    for (int k = 0; k < 5000; k++) {
        snprintf(nonce, sizeof(nonce), "other-%d", k);
        pol_nonce_result_t r = ins(c, "alice", nonce, now + 60, now + 1);
        CHECK(r != POL_NONCE_REPLAYED);
        refused += r == POL_NONCE_FULL;
    }
    CHECK(refused > 0);
    size_t held = pol_nonce_cache_count(c);
    CHECK(held <= cap);
    /* Once they expire there is room again, and the old nonces are new. */
    now += 61;
    for (int k = 0; k < (int)cap / 2; k++) {
        snprintf(nonce, sizeof(nonce), "later-%d", k);
        CHECK_EQ(ins(c, "alice", nonce, now + 60, now), POL_NONCE_FRESH);
    }
    CHECK_EQ(ins(c, "alice", "nonce-0", now + 60, now), POL_NONCE_FRESH);
    CHECK(pol_nonce_cache_count(c) <= cap);
    pol_nonce_cache_delete(c);
}

/* At the default capacity the shards even out: the cache takes at least 90 % of it. */
static void test_default_capacity_fill(void)
{
    char err[128];
    pol_nonce_cache_t *c = pol_nonce_cache_new(POL_NONCE_CAPACITY_DEFAULT, err, sizeof(err));
    CHECK(c != NULL);
    size_t accepted = 0;
    char nonce[32];
    for (;;) {
        snprintf(nonce, sizeof(nonce), "%zu", accepted);
        pol_nonce_result_t r = ins(c, "alice", nonce, 100, 50);
        if (r == POL_NONCE_FULL)
            break;
        CHECK_EQ(r, POL_NONCE_FRESH);
        accepted++;
    }
    fprintf(stderr, "   full after %zu of %d\n", accepted, POL_NONCE_CAPACITY_DEFAULT);
    CHECK(accepted <= POL_NONCE_CAPACITY_DEFAULT);
    CHECK(accepted >= POL_NONCE_CAPACITY_DEFAULT / 10 * 9);
    pol_nonce_cache_delete(c);
}

/* Mixed expiries under churn: inserting many short-lived nonces over simulated time never
 * reports a false replay or loses a live entry (checked against a plain list). */
static void test_churn(void)
{
    char err[128];
    pol_nonce_cache_t *c = pol_nonce_cache_new(64 * 64, err, sizeof(err));
    CHECK(c != NULL);
    enum { N = 20000 };
    static int64_t exp_of[N];
    char nonce[32];
    unsigned seed = 7;
    for (int t = 0; t < N; t++) {
        int64_t now = t / 50; /* 50 inserts per second */
        seed = seed * 1103515245u + 12345u;
        exp_of[t] = now + 1 + (seed >> 16) % 10;
        snprintf(nonce, sizeof(nonce), "n%d", t);
        CHECK_EQ(ins(c, "c", nonce, exp_of[t], now), POL_NONCE_FRESH);
        /* A few recent ones must still be replays while live. */
        for (int back = 1; back <= 3 && back <= t; back++) {
            int j = t - back * 37 % (t + 1);
            snprintf(nonce, sizeof(nonce), "n%d", j);
            pol_nonce_result_t r = ins(c, "c", nonce, exp_of[j], now);
            if (exp_of[j] >= now)
                CHECK_EQ(r, POL_NONCE_REPLAYED);
        }
    }
    pol_nonce_cache_delete(c);
}

/* ---- 4 threads racing for the same nonce ---------------------------------------------------- */

#define THREADS 4
#define ROUNDS  2000

static pol_nonce_cache_t *shared;
static atomic_int wins[ROUNDS];
static pthread_barrier_t barrier;

static void *racer(void *arg)
{
    (void)arg;
    char nonce[32];
    for (int r = 0; r < ROUNDS; r++) {
        snprintf(nonce, sizeof(nonce), "race-%d", r);
        if (r % 100 == 0)
            pthread_barrier_wait(&barrier); /* line up now and then */
        if (pol_nonce_cache_insert(shared, "alice", 5, nonce, strlen(nonce), 100, 50) ==
            POL_NONCE_FRESH)
            atomic_fetch_add(&wins[r], 1);
    }
    return NULL;
}

static void test_threads(void)
{
    char err[128];
    shared = pol_nonce_cache_new(64 * 256, err, sizeof(err));
    CHECK(shared != NULL);
    pthread_barrier_init(&barrier, NULL, THREADS);
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_create(&th[i], NULL, racer, NULL) == 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    for (int r = 0; r < ROUNDS; r++)
        CHECK_EQ(atomic_load(&wins[r]), 1);
    CHECK_EQ(pol_nonce_cache_count(shared), ROUNDS);
    pthread_barrier_destroy(&barrier);
    pol_nonce_cache_delete(shared);
}

int main(void)
{
    RUN(test_basic);
    RUN(test_full_and_expiry);
    RUN(test_default_capacity_fill);
    RUN(test_churn);
    RUN(test_threads);
    return 0;
}
