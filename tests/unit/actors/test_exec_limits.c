/*
 * tests/unit/actors/test_exec_limits.c: the worker bound is one number everywhere.
 *
 * The config accepts exactly the worker counts the executor runs (0..MESH_EXEC_MAX_WORKERS) and
 * refuses the next one with a clear error; the executor refuses a count above the bound
 * instead of quietly running fewer; and the highest count works end to end: an actor on the
 * last worker loop (index 255, the top of an address's 8-bit loop field) is reached from
 * the control loop and answers it.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "actors/exec.h"
#include "common/config.h"
#include "common/log.h"
#include "tests/check.h"

enum { T_PING = 1, T_PONG = 2 };

static mesh_exec_t *g_exec;
static _Atomic mesh_actor_id_t g_last;
static _Atomic int g_last_loop = -1, g_pongs;

static int last_start(mesh_actor_t *self, void *arg)
{
    atomic_store(&g_last_loop, mesh_loop_index(self));
    return 0;
}

static int last_msg(mesh_actor_t *self, mesh_msg_t *m)
{
    if (m->type == T_PING)
        CHECK_EQ(mesh_reply(self, m, T_PONG, NULL, 0), 0);
    return 0;
}

static const mesh_actor_ops_t last_ops = {
    .name = "last", .on_start = last_start, .on_message = last_msg};

static int ctl_start(mesh_actor_t *self, void *arg)
{
    mesh_spawn_opts_t o = {.loop = MESH_ON_LOOP(MESH_EXEC_MAX_WORKERS)};
    mesh_actor_id_t id;
    CHECK_EQ(mesh_spawn(self, &last_ops, NULL, &o, &id), 0);
    atomic_store(&g_last, id);
    CHECK_EQ(mesh_request(self, id, T_PING, NULL, 0, 30ull * 1000000000ull, NULL), 0);
    return 0;
}

static int ctl_msg(mesh_actor_t *self, mesh_msg_t *m)
{
    CHECK(m->type != MESH_MSG_TIMEOUT);
    if (m->type == T_PONG) {
        atomic_fetch_add(&g_pongs, 1);
        mesh_exec_shutdown(g_exec);
    }
    return 0;
}

static const mesh_actor_ops_t ctl_ops = {
    .name = "ctl", .on_start = ctl_start, .on_message = ctl_msg};

static int load_workers(const char *value, mesh_config_t *cfg, char *err, size_t errlen)
{
    char *argv[] = {"--workers", (char *)value, NULL};
    mesh_config_init(cfg);
    return mesh_config_load(cfg, 2, argv, NULL, MESH_ROLE_PROXY, NULL, err, errlen);
}

static void test_config_bound(void)
{
    mesh_config_t cfg;
    char err[256], top[16], over[16];
    snprintf(top, sizeof(top), "%d", MESH_EXEC_MAX_WORKERS);
    snprintf(over, sizeof(over), "%d", MESH_EXEC_MAX_WORKERS + 1);
    CHECK_EQ(load_workers(top, &cfg, err, sizeof(err)), 0);
    CHECK_EQ(cfg.workers, MESH_EXEC_MAX_WORKERS);
    mesh_config_destroy(&cfg);
    CHECK_EQ(load_workers(over, &cfg, err, sizeof(err)), -1);
    printf("config error: %s\n", err);
    CHECK_CONTAINS(err, "--workers");
    CHECK_CONTAINS(err, "out of range [0, 255]");
    mesh_config_destroy(&cfg);
}

static void test_exec_refuses_over_bound(void)
{
    mesh_exec_opts_t o = {.workers = MESH_EXEC_MAX_WORKERS + 1, .no_signals = 1};
    CHECK(mesh_exec_new(&o) == NULL);
    o.workers = -2;
    CHECK(mesh_exec_new(&o) == NULL);
}

static void test_last_loop_works(void)
{
    mesh_exec_opts_t o = {.workers = MESH_EXEC_MAX_WORKERS, .no_signals = 1};
    g_exec = mesh_exec_new(&o);
    CHECK(g_exec);
    CHECK_EQ(mesh_exec_loop_count(g_exec), MESH_EXEC_MAX_WORKERS + 1);
    CHECK_EQ(mesh_exec_spawn(g_exec, &ctl_ops, NULL, NULL, NULL), 0);
    CHECK_EQ(mesh_exec_run(g_exec), 0);
    CHECK_EQ(atomic_load(&g_last_loop), MESH_EXEC_MAX_WORKERS);
    CHECK_EQ((atomic_load(&g_last) >> 24) & 0xFF, MESH_EXEC_MAX_WORKERS);
    CHECK_EQ(atomic_load(&g_pongs), 1);
    mesh_exec_free(g_exec);
}

int main(void)
{
    mesh_log_init("test", MESH_LOG_WARN, MESH_LOG_FORMAT_TEXT);
    RUN(test_config_bound);
    RUN(test_exec_refuses_over_bound);
    RUN(test_last_loop_works);
    printf("test_exec_limits: ok\n");
    return 0;
}
