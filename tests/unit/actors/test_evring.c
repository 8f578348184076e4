/*
 * tests/unit/actors/test_evring.c: the per-worker event ring: order kept, a full ring counts
 * (and reports once) what it dropped, one poke per batch and a new poke once the consumer is
 * done, events from a thread without a ring are refused (the caller reports them itself), and
 * a producer thread and a consumer thread lose nothing below the ring's size.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "actors/evring.h"
#include "tests/check.h"

static void test_order_and_drops(void)
{
    mesh_evring_t r;
    CHECK(mesh_evring_init(&r, 8) == 0);
    CHECK(!mesh_evring_want_poke(&r)); /* empty: nothing to say */
    for (uint64_t i = 0; i < 10; i++) {
        mesh_event_t e = {.type = MESH_EV_STATS, .a = i};
        CHECK_EQ(mesh_evring_push(&r, &e), i < 8 ? 0 : -1);
    }
    CHECK(mesh_evring_want_poke(&r));
    CHECK(!mesh_evring_want_poke(&r)); /* one poke per batch */
    mesh_event_t out[16];
    CHECK_EQ(mesh_evring_take(&r, out, 16), 8);
    for (uint64_t i = 0; i < 8; i++)
        CHECK_EQ(out[i].a, i);
    mesh_evring_done(&r);
    CHECK_EQ(mesh_evring_take_dropped(&r), 2);
    CHECK_EQ(mesh_evring_take_dropped(&r), 0);
    mesh_event_t e = {.type = MESH_EV_STATS, .a = 99};
    CHECK_EQ(mesh_evring_push(&r, &e), 0);
    CHECK(mesh_evring_want_poke(&r)); /* the consumer was done: a new batch pokes again */
    mesh_evring_destroy(&r);
}

static void test_current(void)
{
    CHECK_EQ(mesh_evring_emit(MESH_EV_BREAKER, 1, 0, "no ring %d", 1), -1);
    mesh_evring_t r;
    CHECK(mesh_evring_init(&r, 8) == 0);
    mesh_evring_set_current(&r);
    CHECK_EQ(mesh_evring_emit(MESH_EV_BREAKER, 1, 0, "circuit for %s opened", "app"), 0);
    mesh_event_t out[2];
    CHECK_EQ(mesh_evring_take(&r, out, 2), 1);
    CHECK_EQ(out[0].type, MESH_EV_BREAKER);
    CHECK_STR(out[0].text, "circuit for app opened");
    mesh_evring_set_current(NULL);
    mesh_evring_destroy(&r);
}

#define N 200000
static mesh_evring_t shared;

static void *producer(void *arg)
{
    for (uint64_t i = 0; i < N; i++) {
        mesh_event_t e = {.type = MESH_EV_STATS, .a = i};
        while (mesh_evring_push(&shared, &e) < 0)
            ; /* full: the test's producer waits (a worker would count the drop instead) */
    }
    return NULL;
}

static void test_threads(void)
{
    CHECK(mesh_evring_init(&shared, 1024) == 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, producer, NULL) == 0);
    uint64_t next = 0;
    mesh_event_t out[64];
    while (next < N) {
        size_t k = mesh_evring_take(&shared, out, 64);
        for (size_t i = 0; i < k; i++)
            CHECK_EQ(out[i].a, next++);
    }
    pthread_join(t, NULL);
    /* every push that failed was retried: the ring counted them as drops, none was lost */
    (void)mesh_evring_take_dropped(&shared);
    mesh_evring_destroy(&shared);
}

int main(void)
{
    RUN(test_order_and_drops);
    RUN(test_current);
    RUN(test_threads);
    printf("ok\n");
    return 0;
}
