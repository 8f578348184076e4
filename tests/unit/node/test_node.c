/*
 * tests/unit/node/test_node.c: the node actor's lifecycle on the real executor: a control
 * actor that keeps failing makes the supervisor give up and the node stop with exit 1; a
 * NODE_MSG_FAIL stops it with the code it names; SIGTERM drains it and it exits 0, after
 * telling the actors that watch for shutdown (a routing table sent as REG_MSG_ROUTES on the way
 * is handed to the workers; the proxy tests with etcd check what they route).
 */
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "actors/actor.h"
#include "common/log.h"
#include "node/node.h"
#include "node/node_msgs.h"
#include "registry/reg_msgs.h"
#include "tests/check.h"
#include "node/ca_options.h"
#include "node/tls_options.h"
#include "transport/lb_options.h"

static mesh_config_t cfg;

static void config(int workers)
{
    mesh_config_init(&cfg);
    free(cfg.listen);
    cfg.listen = strdup("127.0.0.1:0");
    cfg.workers = workers;
    cfg.drain_timeout_ms = 500;
}

/* ---- a control actor that always fails to start ---- */

static atomic_int starts;

static int failing_start(mesh_actor_t *self, void *arg)
{
    atomic_fetch_add(&starts, 1);
    return -1;
}

static int nothing(mesh_actor_t *self, mesh_msg_t *m)
{
    return 0;
}

static const mesh_actor_ops_t failing_ops = {
    .name = "failing", .on_start = failing_start, .on_message = nothing};

static void test_supervisor_gives_up(void)
{
    config(1);
    mesh_node_t *n = mesh_node_new(&cfg);
    CHECK(n && mesh_node_listen(n) == 0);
    mesh_child_spec_t child = {.ops = &failing_ops};
    mesh_supervisor_spec_t sup = {.name = "control-supervisor",
                                  .children = &child,
                                  .nchildren = 1,
                                  .max_restarts = 2,
                                  .backoff_initial_ns = 10000000ull,
                                  .backoff_max_ns = 20000000ull};
    CHECK(mesh_node_supervise(n, &sup) == 0);
    CHECK_EQ(mesh_node_run(n), 1);
    CHECK_EQ(atomic_load(&starts), 3); /* the start and two restarts */
    mesh_node_free(n);
    mesh_config_destroy(&cfg);
}

/* ---- a control actor that reports a failure with its own code ---- */

static int fail_with_7(mesh_actor_t *self, void *arg)
{
    node_fail_t f = {.exit_code = 7};
    snprintf(f.why, sizeof(f.why), "the test actor");
    return mesh_send(self, *(mesh_actor_id_t *)arg, NODE_MSG_FAIL, &f, sizeof(f));
}

static const mesh_actor_ops_t reporting_ops = {
    .name = "reporting", .on_start = fail_with_7, .on_message = nothing};

static void test_fail_message(void)
{
    config(1);
    mesh_node_t *n = mesh_node_new(&cfg);
    CHECK(n && mesh_node_listen(n) == 0);
    mesh_actor_id_t node_id = mesh_node_actor(n);
    mesh_child_spec_t child = {.ops = &reporting_ops, .arg = &node_id};
    mesh_supervisor_spec_t sup = {.name = "control-supervisor", .children = &child, .nchildren = 1};
    CHECK(mesh_node_supervise(n, &sup) == 0);
    CHECK_EQ(mesh_node_run(n), 7);
    mesh_node_free(n);
    mesh_config_destroy(&cfg);
}

/* ---- SIGTERM: watchers are told, the node drains and exits 0 ---- */

static atomic_int told;

static int watcher_start(mesh_actor_t *self, void *arg)
{
    mesh_actor_id_t node = *(mesh_actor_id_t *)arg;
    CHECK(mesh_send(self, node, NODE_MSG_WATCH_SHUTDOWN, NULL, 0) == 0);
    /* A table for the workers, as the registry actor sends it. */
    mesh_route_builder_t *b = mesh_route_builder_new();
    CHECK(mesh_route_builder_add(b, "pkg.Svc", "127.0.0.1:1", NULL, 0, MESH_ROUTE_STATIC, "", "",
                                 1) == 0);
    mesh_routes_t *t = mesh_route_builder_finish(b);
    CHECK(mesh_send_ptr(self, node, REG_MSG_ROUTES, t, (void (*)(void *))mesh_routes_unref) == 0);
    /* Signal ourselves once everything is wired. */
    return mesh_timer_start(self, 50000000ull, 0, 1, NULL) < 0 ? -1 : 0;
}

static int watcher_msg(mesh_actor_t *self, mesh_msg_t *m)
{
    if (m->type == NODE_MSG_SHUTDOWN)
        atomic_fetch_add(&told, 1);
    else if (m->flags & MESH_MSG_F_TIMER)
        kill(getpid(), SIGTERM);
    return 0;
}

static const mesh_actor_ops_t watcher_ops = {
    .name = "watcher", .on_start = watcher_start, .on_message = watcher_msg};

static void test_sigterm(void)
{
    config(2);
    mesh_node_t *n = mesh_node_new(&cfg);
    CHECK(n && mesh_node_listen(n) == 0);
    CHECK(mesh_node_port(n) > 0);
    mesh_actor_id_t node_id = mesh_node_actor(n);
    mesh_child_spec_t child = {.ops = &watcher_ops, .arg = &node_id};
    mesh_supervisor_spec_t sup = {.name = "control-supervisor", .children = &child, .nchildren = 1};
    CHECK(mesh_node_supervise(n, &sup) == 0);
    CHECK_EQ(mesh_node_run(n), 0);
    CHECK_EQ(atomic_load(&told), 1);
    mesh_node_free(n);
    mesh_config_destroy(&cfg);
}

int main(void)
{
    mesh_log_init("test", MESH_LOG_WARN, MESH_LOG_FORMAT_TEXT);
    /* the node reads the balancer's options when it listens (as node/main.c registers them) */
    CHECK(mesh_config_add_section(&mesh_lb_options_section) == 0);
    CHECK(mesh_config_add_section(&mesh_tls_options_section) == 0); /* read at listen too */
    CHECK(mesh_config_add_section(&mesh_ca_options_section) == 0);  /* (the identity, for TLS) */
    RUN(test_supervisor_gives_up);
    RUN(test_fail_message);
    RUN(test_sigterm);
    printf("ok\n");
    return 0;
}
