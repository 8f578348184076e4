/*
 * tests/unit/transport/test_proxy_routes.c: routing-table installs on a running proxy worker
 * (mesh_proxy_worker_set_routes): a service whose object is unchanged keeps its state, so
 * round robin carries on across tables that changed other services; a changed service starts
 * afresh with its new instances; a removed service is no longer routed; calls are served
 * throughout. An nghttp2 client -> a proxy worker on its own loop thread -> echo servers.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "echo_server.h"
#include "h2_client.h"
#include "registry/route_table.h"
#include "tests/check.h"
#include "transport/grpc_frame.h"
#include "transport/proxy.h"

/* A proxy worker on its own loop thread; tables reach it through an async. */
typedef struct {
    uv_loop_t loop;
    uv_async_t cmd;
    pthread_t thread;
    mesh_proxy_worker_t *w;
    int port;
    _Atomic(mesh_routes_t *) next; /* a table to install */
    atomic_int installed;          /* tables installed so far */
    atomic_int stop;
} px_t;

static void on_cmd(uv_async_t *a)
{
    px_t *p = a->data;
    mesh_routes_t *t = atomic_exchange(&p->next, NULL);
    if (t) {
        mesh_proxy_worker_set_routes(p->w, t);
        atomic_fetch_add(&p->installed, 1);
    }
    if (atomic_load(&p->stop)) {
        mesh_proxy_worker_free(p->w);
        uv_close((uv_handle_t *)&p->cmd, NULL);
    }
}

static void *px_run(void *arg)
{
    px_t *p = arg;
    uv_run(&p->loop, UV_RUN_DEFAULT);
    return NULL;
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Installs t (taking the reference) on the worker's thread and waits until it is in. */
static void px_install(px_t *p, mesh_routes_t *t)
{
    int before = atomic_load(&p->installed);
    atomic_store(&p->next, t);
    uv_async_send(&p->cmd);
    long end = now_ms() + 10000;
    while (atomic_load(&p->installed) == before && now_ms() < end)
        usleep(1000);
    CHECK(atomic_load(&p->installed) > before);
}

static void px_start(px_t *p, mesh_routes_t *t)
{
    memset(p, 0, sizeof(*p));
    CHECK(uv_loop_init(&p->loop) == 0);
    mesh_proxy_config_t cfg = {.listen_host = "127.0.0.1", .connect_timeout_ms = 1000};
    p->w = mesh_proxy_worker_new(&p->loop, &cfg);
    CHECK(p->w);
    p->port = mesh_proxy_worker_port(p->w);
    mesh_proxy_worker_set_routes(p->w, t);
    CHECK(uv_async_init(&p->loop, &p->cmd, on_cmd) == 0);
    p->cmd.data = p;
    CHECK(pthread_create(&p->thread, NULL, px_run, p) == 0);
}

static void px_stop(px_t *p)
{
    atomic_store(&p->stop, 1);
    uv_async_send(&p->cmd);
    pthread_join(p->thread, NULL);
    CHECK(uv_loop_close(&p->loop) == 0);
}

/* One call through the proxy; returns its grpc-status. */
static int call(px_t *p, const char *path)
{
    uint8_t req[5 + 3];
    mesh_grpc_frame_prefix(req, 0, 3);
    memcpy(req + 5, "abc", 3);
    h2_client_t c;
    h2_call_t k;
    CHECK(h2_client_connect(&c, p->port) == 0);
    CHECK(h2_client_call(&c, &k, path, "application/grpc", NULL, req, sizeof(req), 1) == 0);
    h2_call_t *calls[] = {&k};
    CHECK(h2_client_wait(&c, calls, 1, 10000) == 0);
    h2_client_close(&c);
    int st = k.grpc_status;
    h2_call_free(&k);
    return st;
}

static const char *addr_of(echo_server_t *s, char *buf, size_t cap)
{
    snprintf(buf, cap, "127.0.0.1:%d", echo_server_port(s));
    return buf;
}

/* The object of service name in t. */
static mesh_route_svc_t *obj(const mesh_routes_t *t, const char *name)
{
    return mesh_routes_find(t, name);
}

/* A service object named name over the given servers, in that order. */
static mesh_route_svc_t *svc(const char *name, echo_server_t **servers, size_t n)
{
    mesh_route_svc_builder_t *sb = mesh_route_svc_builder_new();
    char addrs[4][64];
    for (size_t i = 0; i < n; i++)
        CHECK(mesh_route_svc_builder_add(sb, addr_of(servers[i], addrs[i], sizeof(addrs[i])), NULL,
                                         0, MESH_ROUTE_STATIC, "", "", 1) == 0);
    mesh_route_svc_t *o = NULL;
    CHECK(mesh_route_svc_builder_finish(sb, name, &o) == 0 && o);
    mesh_route_svc_builder_free(sb);
    return o;
}

static void test_state_kept_across_tables(void)
{
    echo_server_t *s1 = echo_server_start(), *s2 = echo_server_start();
    CHECK(s1 && s2);
    echo_server_t *both[] = {s1, s2}, *swapped[] = {s2, s1};
    mesh_route_edit_t e1[] = {{.svc = svc("test.Echo", both, 2)},
                              {.svc = svc("other.Svc", both, 1)}};
    mesh_routes_t *t1 = mesh_routes_update(NULL, e1, 2);
    px_t p;
    px_start(&p, mesh_routes_ref(t1));

    CHECK(call(&p, "/test.Echo/Echo") == 0);
    CHECK(echo_server_calls(s1) == 1 && echo_server_calls(s2) == 0);

    /* Another service changes: test.Echo's state (its round-robin position) is kept. */
    mesh_route_edit_t e2 = {.svc = svc("other.Svc", swapped, 1)};
    mesh_routes_t *t2 = mesh_routes_update(t1, &e2, 1);
    CHECK(obj(t2, "test.Echo") == obj(t1, "test.Echo"));
    px_install(&p, mesh_routes_ref(t2));
    CHECK(call(&p, "/test.Echo/Echo") == 0);
    CHECK(echo_server_calls(s1) == 1 && echo_server_calls(s2) == 1); /* the next instance */
    CHECK(call(&p, "/test.Echo/Echo") == 0);
    CHECK(echo_server_calls(s1) == 2);
    CHECK(call(&p, "/other.Svc/Echo") == 0); /* the changed service routes to its new instance */
    CHECK(echo_server_calls(s2) == 2);

    /* test.Echo itself changes: its state is made afresh for the new instances, in order. */
    mesh_route_edit_t e3 = {.svc = svc("test.Echo", swapped, 2)};
    mesh_routes_t *t3 = mesh_routes_update(t2, &e3, 1);
    px_install(&p, mesh_routes_ref(t3));
    CHECK(call(&p, "/test.Echo/Echo") == 0);
    CHECK(echo_server_calls(s2) == 3 && echo_server_calls(s1) == 2);

    /* A removed service is no longer routed; the others still are. */
    mesh_route_edit_t e4 = {.name = "other.Svc", .svc = NULL};
    px_install(&p, mesh_routes_update(t3, &e4, 1));
    CHECK(call(&p, "/other.Svc/Echo") == 12); /* UNIMPLEMENTED: meshd: no route */
    CHECK(call(&p, "/test.Echo/Echo") == 0);
    /* An empty table, then the first one again. */
    px_install(&p, mesh_routes_update(NULL, NULL, 0));
    CHECK(call(&p, "/test.Echo/Echo") == 12);
    px_install(&p, mesh_routes_ref(t1));
    CHECK(call(&p, "/test.Echo/Echo") == 0 && call(&p, "/other.Svc/Echo") == 0);

    px_stop(&p);
    mesh_routes_unref(t1);
    mesh_routes_unref(t2);
    mesh_routes_unref(t3);
    echo_server_stop(s1);
    echo_server_stop(s2);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (getenv("MESH_TEST_DEBUG"))
        mesh_log_init("test", MESH_LOG_DEBUG, MESH_LOG_FORMAT_TEXT);
    RUN(test_state_kept_across_tables);
    fprintf(stderr, "ok\n");
    return 0;
}
