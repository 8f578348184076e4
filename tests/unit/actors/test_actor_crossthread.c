/*
 * tests/unit/actors/test_actor_crossthread.c: 4 threads x 1,000,000 messages into one actor
 * on a worker loop of the real executor. None is lost, each sender's order is kept, a full
 * mailbox is reported to the sender (who retries), and envelope memory stays bounded.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>

#include "actors/exec.h"
#include "tests/check.h"

#define NTHREADS 4
#define PER      1000000u
#define MAILBOX  4096

enum { T_DATA = 1 };

typedef struct {
    uint32_t sender, seq;
} data_t;

static mesh_exec_t *g_exec;
static mesh_actor_id_t g_sink;
static uint32_t g_next[NTHREADS];
static uint64_t g_received, g_bad;
static _Atomic uint64_t g_full;
static int g_wrong_loop;

static int sink_msg(mesh_actor_t *self, mesh_msg_t *m)
{
    const data_t *d = mesh_msg_as(m, data_t);
    if (mesh_exec_current_loop() != 1)
        g_wrong_loop++;
    if (d->seq != g_next[d->sender])
        g_bad++;
    g_next[d->sender] = d->seq + 1;
    if (++g_received == (uint64_t)NTHREADS * PER)
        mesh_exec_shutdown(g_exec);
    return 0;
}

static const mesh_actor_ops_t sink_ops = {.name = "sink", .on_message = sink_msg};

static void *sender(void *arg)
{
    uint32_t idx = (uint32_t)(uintptr_t)arg;
    uint64_t full = 0;
    for (uint32_t i = 0; i < PER; i++) {
        data_t d = {idx, i};
        int rc;
        while ((rc = mesh_exec_send(g_exec, g_sink, T_DATA, &d, sizeof(d))) == -MESH_EFULL) {
            full++;
            sched_yield();
        }
        CHECK_EQ(rc, 0);
    }
    atomic_fetch_add(&g_full, full);
    return NULL;
}

int main(void)
{
    mesh_exec_opts_t o = {.workers = 2, .no_signals = 1};
    g_exec = mesh_exec_new(&o);
    CHECK(g_exec);
    mesh_spawn_opts_t so = {.loop = MESH_ON_LOOP(1), .mailbox = MAILBOX};
    CHECK_EQ(mesh_exec_spawn(g_exec, &sink_ops, NULL, &so, &g_sink), 0);
    mesh_msg_stats_t before;
    mesh_msg_stats(&before);
    pthread_t th[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        CHECK_EQ(pthread_create(&th[i], NULL, sender, (void *)(uintptr_t)i), 0);
    CHECK_EQ(mesh_exec_run(g_exec), 0);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    mesh_msg_stats_t after;
    mesh_msg_stats(&after);
    uint64_t live = (after.allocated - after.freed) - (before.allocated - before.freed);
    printf("received %llu, out of order %llu, full reported %llu, envelopes from malloc %llu\n",
           (unsigned long long)g_received, (unsigned long long)g_bad,
           (unsigned long long)atomic_load(&g_full), (unsigned long long)live);
    CHECK_EQ(g_received, (uint64_t)NTHREADS * PER);
    CHECK_EQ(g_bad, 0);
    CHECK_EQ(g_wrong_loop, 0);
    for (int i = 0; i < NTHREADS; i++)
        CHECK_EQ(g_next[i], PER);
    CHECK(atomic_load(&g_full) > 0);
    /* In flight at most one mailbox of cross-thread messages: envelopes stay bounded. */
    CHECK(live <= (uint64_t)MAILBOX * (NTHREADS + 2));
    mesh_exec_free(g_exec);
    printf("ok\n");
    return 0;
}
