/*
 * tests/unit/transport/proxy_thread.c: a proxy worker on its own loop thread, driven by
 * commands from the test thread (see proxy_thread.h).
 */
#include "proxy_thread.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/check.h"

enum { PX_NONE = 0, PX_STATS = 1, PX_ROUTES = 2, PX_FREE = 3 };

long proxy_thread_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_cmd(uv_async_t *a)
{
    proxy_thread_t *p = a->data;
    int c = atomic_exchange(&p->command, PX_NONE);
    if (c == PX_STATS) {
        mesh_proxy_worker_stats(p->w, &p->stats);
    } else if (c == PX_ROUTES) {
        mesh_proxy_worker_set_routes(p->w, p->routes);
        p->routes = NULL;
    } else if (c == PX_FREE) {
        mesh_proxy_worker_free(p->w);
        uv_close((uv_handle_t *)&p->cmd, NULL);
    }
    atomic_store(&p->done, 1);
}

static void *run(void *arg)
{
    proxy_thread_t *p = arg;
    uv_run(&p->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* Runs command c on the worker's loop and waits until it ran. */
static void command(proxy_thread_t *p, int c)
{
    atomic_store(&p->done, 0);
    atomic_store(&p->command, c);
    uv_async_send(&p->cmd);
    long end = proxy_thread_now_ms() + 10000;
    while (!atomic_load(&p->done) && proxy_thread_now_ms() < end)
        usleep(1000);
    CHECK(atomic_load(&p->done));
}

void proxy_thread_start(proxy_thread_t *p, mesh_proxy_config_t cfg, mesh_routes_t *routes)
{
    memset(p, 0, sizeof(*p));
    CHECK(uv_loop_init(&p->loop) == 0);
    cfg.listen_host = "127.0.0.1";
    p->w = mesh_proxy_worker_new(&p->loop, &cfg);
    CHECK(p->w);
    p->port = mesh_proxy_worker_port(p->w);
    if (routes)
        mesh_proxy_worker_set_routes(p->w, routes);
    CHECK(uv_async_init(&p->loop, &p->cmd, on_cmd) == 0);
    p->cmd.data = p;
    CHECK(pthread_create(&p->thread, NULL, run, p) == 0);
}

mesh_proxy_stats_t proxy_thread_stats(proxy_thread_t *p)
{
    command(p, PX_STATS);
    return p->stats;
}

void proxy_thread_set_routes(proxy_thread_t *p, mesh_routes_t *routes)
{
    p->routes = routes;
    command(p, PX_ROUTES);
}

void proxy_thread_stop(proxy_thread_t *p)
{
    atomic_store(&p->command, PX_FREE);
    uv_async_send(&p->cmd);
    CHECK(pthread_join(p->thread, NULL) == 0);
    CHECK(uv_loop_close(&p->loop) == 0);
}
