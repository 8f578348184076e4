/*
 * tests/unit/transport/test_outlier_board.c: outlier state shared by workers
 * (transport/outlier_board.h): 5 consecutive failures eject an instance whether one worker saw
 * them or four did (interleaved views on a fake clock, then real threads racing); a success
 * from any worker resets the count; an ejected instance is out for every worker; exactly one
 * worker's call takes the probe; each effect is returned to one worker only; a success on a
 * healthy slot writes nothing shared; the board's counters and slot lifetime.
 */
#include "transport/outlier_board.h"

#include <pthread.h>
#include <stdio.h>

#include "tests/check.h"

static mesh_outlier_cfg_t cfg5(void)
{
    mesh_outlier_cfg_t c = {.consecutive = 5, .base_ejection_ms = 1000, .max_ejection_percent = 50};
    mesh_outlier_cfg_fix(&c);
    return c;
}

#define N_EP 4 /* endpoints of the service, as every worker sees them */

static mesh_outlier_effect_t report(mesh_outlier_board_t *b, mesh_outlier_slot_t *s,
                                    const mesh_outlier_cfg_t *c, mesh_outlier_outcome_t oc,
                                    uint64_t now)
{
    return mesh_outlier_slot_report(b, s, c, oc, N_EP, mesh_outlier_slot_ejected(s), now, NULL);
}

/* Worker w's view of the endpoint: its own reference to the shared slot. */
static void test_threshold_whatever_the_worker_count(void)
{
    mesh_outlier_cfg_t c = cfg5();
    for (int workers = 1; workers <= 4; workers++) {
        mesh_outlier_board_t *b = mesh_outlier_board_new();
        mesh_outlier_slot_t *view[4];
        for (int i = 0; i < workers; i++)
            view[i] = mesh_outlier_board_get(b, "10.0.0.2:50051");
        for (int i = 1; i < workers; i++)
            CHECK(view[i] == view[0]); /* one slot per address */
        /* failures spread round robin over the workers */
        for (int f = 0; f < 4; f++)
            CHECK_EQ(report(b, view[f % workers], &c, MESH_OUTLIER_FAILURE, 100 + f),
                     MESH_OUTLIER_NONE);
        CHECK_EQ(report(b, view[4 % workers], &c, MESH_OUTLIER_FAILURE, 104), MESH_OUTLIER_EJECTED);
        for (int i = 0; i < workers; i++) {
            CHECK(!mesh_outlier_slot_up(view[i], 105)); /* out for every worker */
            CHECK(mesh_outlier_slot_ejected(view[i]));
        }
        mesh_outlier_board_stats_t st;
        mesh_outlier_board_stats(b, &st);
        CHECK_EQ(st.ejections, 1);
        CHECK_EQ(st.ejected, 1);
        CHECK_EQ(st.slots, 1);
        for (int i = 0; i < workers; i++)
            mesh_outlier_board_put(b, view[i]);
        mesh_outlier_board_stats(b, &st);
        CHECK_EQ(st.slots, 0);
        CHECK_EQ(st.ejected, 0);
        mesh_outlier_board_free(b);
    }
}

static void test_success_anywhere_resets(void)
{
    mesh_outlier_cfg_t c = cfg5();
    mesh_outlier_board_t *b = mesh_outlier_board_new();
    mesh_outlier_slot_t *w0 = mesh_outlier_board_get(b, "a:1"),
                        *w1 = mesh_outlier_board_get(b, "a:1");
    CHECK_EQ(atomic_load(&w0->hot), 0);
    /* the healthy path: nothing shared is written */
    CHECK_EQ(report(b, w0, &c, MESH_OUTLIER_SUCCESS, 1), MESH_OUTLIER_NONE);
    CHECK_EQ(w0->o.decay_from_ms, 0); /* the state machine did not even run */
    for (int f = 0; f < 4; f++)
        report(b, w0, &c, MESH_OUTLIER_FAILURE, 2 + f);
    CHECK_EQ(atomic_load(&w0->hot), 1);
    CHECK_EQ(report(b, w1, &c, MESH_OUTLIER_SUCCESS, 10), MESH_OUTLIER_NONE); /* other worker */
    CHECK_EQ(atomic_load(&w0->hot), 0);
    for (int f = 0; f < 4; f++)
        CHECK_EQ(report(b, w0, &c, MESH_OUTLIER_FAILURE, 11 + f), MESH_OUTLIER_NONE);
    CHECK_EQ(report(b, w1, &c, MESH_OUTLIER_FAILURE, 20), MESH_OUTLIER_EJECTED);
    /* neutral outcomes and a disabled detector do nothing */
    mesh_outlier_cfg_t off = c;
    off.disabled = 1;
    CHECK_EQ(mesh_outlier_slot_report(b, w0, &off, MESH_OUTLIER_FAILURE, 4, 1, 3000, NULL),
             MESH_OUTLIER_NONE);
    mesh_outlier_board_put(b, w0);
    mesh_outlier_board_put(b, w1);
    mesh_outlier_board_free(b);
}

static void test_one_probe_across_workers(void)
{
    mesh_outlier_cfg_t c = cfg5();
    mesh_outlier_board_t *b = mesh_outlier_board_new();
    mesh_outlier_slot_t *v[3];
    for (int i = 0; i < 3; i++)
        v[i] = mesh_outlier_board_get(b, "a:1");
    for (int f = 0; f < 5; f++)
        report(b, v[f % 3], &c, MESH_OUTLIER_FAILURE, 100);
    CHECK(!mesh_outlier_slot_up(v[0], 1099));
    CHECK(mesh_outlier_slot_up(v[0], 1100)); /* ejection over: due for its probe */
    /* all three workers saw it pickable at once; one gets the probe */
    int got = 0;
    for (int i = 0; i < 3; i++)
        got += mesh_outlier_slot_picked(b, v[i], &c, 1100);
    CHECK_EQ(got, 1);
    for (int i = 0; i < 3; i++)
        CHECK(!mesh_outlier_slot_up(v[i], 1101));
    /* the probe succeeds on the worker that sent it: back for everyone, told once */
    CHECK_EQ(report(b, v[1], &c, MESH_OUTLIER_SUCCESS, 1150), MESH_OUTLIER_RETURNED);
    for (int i = 0; i < 3; i++)
        CHECK(mesh_outlier_slot_up(v[i], 1151) && !mesh_outlier_slot_ejected(v[i]));
    CHECK_EQ(report(b, v[2], &c, MESH_OUTLIER_SUCCESS, 1152), MESH_OUTLIER_NONE);
    /* a probe that never reports frees the slot after base_ejection_ms */
    for (int f = 0; f < 5; f++)
        report(b, v[0], &c, MESH_OUTLIER_FAILURE, 2000);
    uint64_t back = atomic_load(&v[0]->blocked_until);
    CHECK_EQ(mesh_outlier_slot_picked(b, v[0], &c, back), 1);
    CHECK_EQ(mesh_outlier_slot_picked(b, v[1], &c, back + 999), 0);
    CHECK_EQ(mesh_outlier_slot_picked(b, v[1], &c, back + 1000), 1);
    mesh_outlier_board_stats_t st;
    mesh_outlier_board_stats(b, &st);
    CHECK_EQ(st.ejections, 2);
    CHECK_EQ(st.returns, 1);
    /* a new address behind the name: history gone */
    mesh_outlier_slot_reset(b, v[0]);
    CHECK(mesh_outlier_slot_up(v[2], back) && !mesh_outlier_slot_ejected(v[2]));
    mesh_outlier_board_stats(b, &st);
    CHECK_EQ(st.ejected, 0);
    for (int i = 0; i < 3; i++)
        mesh_outlier_board_put(b, v[i]);
    mesh_outlier_board_free(b);
}

static void test_held_back_once_per_streak(void)
{
    mesh_outlier_cfg_t c = cfg5();
    mesh_outlier_board_t *b = mesh_outlier_board_new();
    mesh_outlier_slot_t *s = mesh_outlier_board_get(b, "a:1");
    /* 2 endpoints, the other one already out: this one may not go (never the last) */
    for (int f = 0; f < 4; f++)
        mesh_outlier_slot_report(b, s, &c, MESH_OUTLIER_FAILURE, 2, 1, 10, NULL);
    CHECK_EQ(mesh_outlier_slot_report(b, s, &c, MESH_OUTLIER_FAILURE, 2, 1, 10, NULL),
             MESH_OUTLIER_HELD_BACK);
    CHECK_EQ(mesh_outlier_slot_report(b, s, &c, MESH_OUTLIER_FAILURE, 2, 1, 11, NULL),
             MESH_OUTLIER_NONE);
    CHECK(mesh_outlier_slot_up(s, 12));
    mesh_outlier_board_stats_t st;
    mesh_outlier_board_stats(b, &st);
    CHECK_EQ(st.held_back, 1);
    mesh_outlier_board_panic(b); /* a call sent to an ejected instance: nothing else left */
    mesh_outlier_board_stats(b, &st);
    CHECK_EQ(st.panic, 1);
    mesh_outlier_board_put(b, s);
    mesh_outlier_board_free(b);
}

/* Real threads: 4 workers fail calls to the same instance at once. */
typedef struct racer {
    mesh_outlier_board_t *b;
    mesh_outlier_slot_t *s;
    int ejected, probes;
} racer_t;

static pthread_barrier_t gate;

static void *race(void *arg)
{
    racer_t *r = arg;
    mesh_outlier_cfg_t c = cfg5();
    pthread_barrier_wait(&gate);
    for (int f = 0; f < 50; f++)
        if (report(r->b, r->s, &c, MESH_OUTLIER_FAILURE, 100) == MESH_OUTLIER_EJECTED)
            r->ejected++;
    pthread_barrier_wait(&gate);
    for (int f = 0; f < 50; f++)
        if (mesh_outlier_slot_up(r->s, 5000) && mesh_outlier_slot_picked(r->b, r->s, &c, 5000))
            r->probes++;
    return NULL;
}

static void test_threads(void)
{
    mesh_outlier_board_t *b = mesh_outlier_board_new();
    racer_t r[4] = {0};
    pthread_t t[4];
    pthread_barrier_init(&gate, NULL, 4);
    for (int i = 0; i < 4; i++) {
        r[i].b = b;
        r[i].s = mesh_outlier_board_get(b, "10.0.0.2:50051");
        CHECK(pthread_create(&t[i], NULL, race, &r[i]) == 0);
    }
    int ejected = 0, probes = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        ejected += r[i].ejected;
        probes += r[i].probes;
    }
    /* 200 failures before its time ran out: one ejection (outcomes while ejected say nothing),
     * then at 5 s, 200 tries: one probe */
    CHECK_EQ(ejected, 1);
    CHECK_EQ(probes, 1);
    for (int i = 0; i < 4; i++)
        mesh_outlier_board_put(b, r[i].s);
    pthread_barrier_destroy(&gate);
    mesh_outlier_board_free(b);
}

static void test_many_addresses(void)
{
    mesh_outlier_board_t *b = mesh_outlier_board_new();
    mesh_outlier_slot_t *s[1000];
    char a[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(a, sizeof(a), "10.0.%d.%d:80", i / 250, i % 250);
        s[i] = mesh_outlier_board_get(b, a);
        CHECK(s[i]);
    }
    snprintf(a, sizeof(a), "10.0.%d.%d:80", 3, 7);
    mesh_outlier_slot_t *again = mesh_outlier_board_get(b, a);
    CHECK(again == s[3 * 250 + 7]);
    mesh_outlier_board_put(b, again);
    mesh_outlier_board_stats_t st;
    mesh_outlier_board_stats(b, &st);
    CHECK_EQ(st.slots, 1000);
    for (int i = 0; i < 1000; i++)
        mesh_outlier_board_put(b, s[i]);
    mesh_outlier_board_stats(b, &st);
    CHECK_EQ(st.slots, 0);
    mesh_outlier_board_free(b);
}

int main(void)
{
    RUN(test_threshold_whatever_the_worker_count);
    RUN(test_success_anywhere_resets);
    RUN(test_one_probe_across_workers);
    RUN(test_held_back_once_per_streak);
    RUN(test_threads);
    RUN(test_many_addresses);
    printf("test_outlier_board: ok\n");
    return 0;
}
