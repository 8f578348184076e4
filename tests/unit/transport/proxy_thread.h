/*
 * tests/unit/transport/proxy_thread.h: a proxy worker on its own loop thread for the transport
 * end-to-end tests. The test thread talks to it by commands (an async handle and a flag):
 * read its counters, install a routing table, free it. Each command returns once the worker's
 * loop ran it, so what a test checks afterwards saw the command's effect.
 */
#ifndef MESH_TEST_PROXY_THREAD_H
#define MESH_TEST_PROXY_THREAD_H

#include <pthread.h>
#include <stdatomic.h>
#include <uv.h>

#include "transport/proxy.h"

typedef struct proxy_thread {
    uv_loop_t loop;
    uv_async_t cmd;
    pthread_t thread;
    mesh_proxy_worker_t *w;
    int port;
    atomic_int command; /* PX_* of proxy_thread.c */
    atomic_int done;    /* the last command ran */
    mesh_proxy_stats_t stats;
    mesh_routes_t *routes; /* of a routes command */
} proxy_thread_t;

/** Starts a worker with cfg (listen host 127.0.0.1, port 0) and routes (may be NULL). */
void proxy_thread_start(proxy_thread_t *p, mesh_proxy_config_t cfg, mesh_routes_t *routes);

/** The worker's counters, read on its loop. */
mesh_proxy_stats_t proxy_thread_stats(proxy_thread_t *p);

/** Installs routes (the worker takes the reference) on its loop. */
void proxy_thread_set_routes(proxy_thread_t *p, mesh_routes_t *routes);

/** Frees the worker, runs its loop until everything closed, joins the thread. */
void proxy_thread_stop(proxy_thread_t *p);

/** Milliseconds, monotonic. */
long proxy_thread_now_ms(void);

#endif
