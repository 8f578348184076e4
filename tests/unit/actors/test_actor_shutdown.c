/*
 * tests/unit/actors/test_actor_shutdown.c: orderly shutdown of the real executor on SIGTERM.
 *
 * Six actors on three loops ping each other without pause (so mailboxes never drain by
 * themselves). A thread sends SIGTERM to the process once all of them are busy. Expected:
 * the shutdown hook runs first, every actor's on_stop runs exactly once, in reverse start
 * order, with reason "shutdown", and mesh_exec_run returns 0.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "actors/exec.h"
#include "tests/check.h"

#define NACT 6

enum { T_PING = 1 };

static mesh_exec_t *g_exec;
/* Written by each actor's loop thread at start, read by its peers on other loops. */
static _Atomic mesh_actor_id_t g_ids[NACT];
static _Atomic uint64_t g_msgs[NACT];
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_order[NACT + 1], g_norder;
static _Atomic int g_bad_reason;
static int g_hook_ran;

typedef struct {
    int index;
    int peer;
} act_arg_t;

static act_arg_t g_args[NACT];

static void record(int v)
{
    pthread_mutex_lock(&g_lock);
    if (g_norder < NACT + 1)
        g_order[g_norder] = v;
    g_norder++;
    pthread_mutex_unlock(&g_lock);
}

static const mesh_actor_ops_t act_ops;

static int act_start(mesh_actor_t *self, void *arg)
{
    act_arg_t *a = arg;
    atomic_store(&g_ids[a->index], mesh_self(self));
    if (a->index == 0) { /* actor 0 spawns actor 5 as its child on worker 1 */
        mesh_spawn_opts_t o = {.loop = MESH_ON_LOOP(1)};
        CHECK_EQ(mesh_spawn(self, &act_ops, &g_args[5], &o, NULL), 0);
    }
    /* Several pings in flight per actor. */
    for (int i = 0; i < 8; i++)
        mesh_send(self, mesh_self(self), T_PING, NULL, 0);
    return 0;
}

static int act_msg(mesh_actor_t *self, mesh_msg_t *m)
{
    act_arg_t *a = mesh_arg(self);
    atomic_fetch_add_explicit(&g_msgs[a->index], 1, memory_order_relaxed);
    mesh_actor_id_t peer = atomic_load(&g_ids[a->peer]);
    /* Peers may already be stopped during shutdown: ENOENT is fine, keep busy anyway. */
    if (!peer || mesh_send(self, peer, T_PING, NULL, 0) < 0)
        mesh_send(self, mesh_self(self), T_PING, NULL, 0);
    return 0;
}

static void act_stop(mesh_actor_t *self, int reason)
{
    act_arg_t *a = mesh_arg(self);
    if (reason != MESH_STOP_SHUTDOWN)
        g_bad_reason++;
    record(a->index);
}

static const mesh_actor_ops_t act_ops = {
    .name = "busy", .on_start = act_start, .on_message = act_msg, .on_stop = act_stop};

static void hook(mesh_exec_t *e, void *arg)
{
    g_hook_ran = 1;
    record(100);
}

static void *killer(void *arg)
{
    struct timespec ts = {0, 1000000};
    for (int tries = 0; tries < 20000; tries++) { /* 20 s deadline */
        int all = 1;
        for (int i = 0; i < NACT; i++)
            if (atomic_load(&g_msgs[i]) < 1000)
                all = 0;
        if (all)
            break;
        nanosleep(&ts, NULL);
    }
    kill(getpid(), SIGTERM);
    return NULL;
}

int main(void)
{
    mesh_exec_opts_t o = {.workers = 2, .drain_timeout_ns = 100000000ull};
    g_exec = mesh_exec_new(&o);
    CHECK(g_exec);
    CHECK_EQ(mesh_exec_on_shutdown(g_exec, hook, NULL), 0);
    /* Start order: 0 (control), 1 (w1), 2 (w2), 3 (control), 4 (w2), then 5 (child of 0). */
    static const int loops[5] = {0, 1, 2, 0, 2};
    for (int i = 0; i < NACT; i++) {
        g_args[i].index = i;
        g_args[i].peer = (i + 1) % NACT;
    }
    for (int i = 0; i < 5; i++) {
        mesh_spawn_opts_t so = {.loop = MESH_ON_LOOP(loops[i])};
        CHECK_EQ(mesh_exec_spawn(g_exec, &act_ops, &g_args[i], &so, NULL), 0);
    }
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, killer, NULL), 0);
    int rc = mesh_exec_run(g_exec);
    pthread_join(th, NULL);
    CHECK_EQ(rc, 0);
    printf("stop order:");
    for (int i = 0; i < g_norder && i < NACT + 1; i++)
        printf(" %d", g_order[i]);
    printf("\n");
    CHECK(g_hook_ran);
    CHECK_EQ(g_norder, NACT + 1);
    CHECK_EQ(g_order[0], 100);
    static const int expect[NACT] = {5, 4, 3, 2, 1, 0};
    for (int i = 0; i < NACT; i++)
        CHECK_EQ(g_order[i + 1], expect[i]);
    CHECK_EQ(g_bad_reason, 0);
    mesh_exec_free(g_exec);
    printf("ok\n");
    return 0;
}
