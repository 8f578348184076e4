/*
 * transport/proxy.h: the per-worker gRPC proxy engine.
 *
 * meshd runs N worker threads, each with its own uv loop; the lead creates one proxy worker
 * per loop. A worker binds its own SO_REUSEPORT listener, terminates HTTP/2 from clients,
 * routes each call by :path through the current routing table (round robin per worker over
 * the service's instances) and forwards it over a multiplexed upstream connection pool that
 * belongs to this worker alone. A call never leaves its worker, so nothing on the hot path
 * takes a lock. Every function here must be called on the worker's loop thread.
 */
#ifndef MESH_PROXY_H
#define MESH_PROXY_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "registry/route_table.h"

/** Settings of a proxy worker; 0 in a numeric field means its default. */
typedef struct mesh_proxy_config {
    const char *listen_host;         /* "127.0.0.1", "::" ...; default "0.0.0.0" */
    int listen_port;                 /* 0 picks a free port (see mesh_proxy_worker_port) */
    uint32_t max_concurrent_streams; /* per client connection; default 1000 */
    uint32_t max_header_list_size;   /* bytes (names + values + 32 each); default 16384 */
    uint32_t stream_buffer;          /* bytes buffered per stream and direction; default 256 KiB;
                                        also the HTTP/2 stream window advertised */
    uint64_t connect_timeout_ms;     /* upstream connect; default 2000 */
    uint64_t keepalive_interval_ms;  /* PING period on idle-or-not connections; default 30000 */
    uint64_t keepalive_timeout_ms;   /* PING ACK wait; default 10000 */
    uint64_t backoff_initial_ms;     /* endpoint down after a connect failure; default 200 */
    uint64_t backoff_max_ms;         /* doubling up to this; default 10000 */
    uint32_t max_upstream_conns;     /* per endpoint; default 8 */
    int worker_index;                /* for logs */
} mesh_proxy_config_t;

/** Counters of one worker (read on its loop thread). */
typedef struct mesh_proxy_stats {
    uint64_t calls;          /* calls accepted from clients */
    uint64_t calls_failed;   /* calls the mesh ended with an error status of its own */
    uint64_t retries;        /* calls re-sent to another endpoint */
    uint64_t upstream_conns; /* upstream connections opened */
    uint64_t client_conns;   /* client connections accepted */
} mesh_proxy_stats_t;

typedef struct mesh_proxy_worker mesh_proxy_worker_t;

/**
 * Creates a worker on loop: binds cfg's listen address with SO_REUSEPORT and starts
 * accepting. Until routes are set every call gets UNIMPLEMENTED. NULL on failure (logged).
 */
mesh_proxy_worker_t *mesh_proxy_worker_new(uv_loop_t *loop, const mesh_proxy_config_t *cfg);

/** The bound port (useful with listen_port 0). */
int mesh_proxy_worker_port(const mesh_proxy_worker_t *w);

/**
 * Installs a routing table: takes ownership of one reference and drops the previous table.
 * Calls in flight keep the endpoints they already chose.
 */
void mesh_proxy_worker_set_routes(mesh_proxy_worker_t *w, mesh_routes_t *routes);

/**
 * Graceful shutdown: stops accepting, sends GOAWAY to every client, lets calls in flight
 * finish, closes the client connections, then calls done(arg) on the loop thread.
 */
void mesh_proxy_worker_drain(mesh_proxy_worker_t *w, void (*done)(void *), void *arg);

/** A copy of the worker's counters. */
void mesh_proxy_worker_stats(const mesh_proxy_worker_t *w, mesh_proxy_stats_t *out);

/**
 * Closes everything at once (calls in flight are reset). Handles close asynchronously: keep
 * running the loop until uv_run() returns; the memory is released by the last close.
 */
void mesh_proxy_worker_free(mesh_proxy_worker_t *w);

#endif
