/*
 * transport/proxy_local.h: gRPC methods the proxy worker answers itself ("local services").
 *
 * A worker can be given a small table of locally served methods: an exact path
 * ("/grpc.health.v1.Health/Check") or a service prefix ending in '/' ("/grpc.health.v1.Health/")
 * with the handler that serves them. A call whose :path matches is not routed: the worker
 * de-frames its request into whole gRPC messages and runs a sans-I/O conversation with the
 * handler on the worker's thread (no thread hop, no upstream):
 *
 *   events in:   on_open (the call's path), on_message (one whole request message),
 *                on_end (the client ended its request), on_wake (the worker's routing table
 *                changed, or it stopped serving: a drain), on_close (the call is gone: finished,
 *                cancelled by the client, past its deadline or the worker closed)
 *   effects out: mesh_local_call_send (one response message), mesh_local_call_finish (the
 *                final status and message; Trailers-Only when nothing was sent)
 *
 * A call may stay open as long as the client keeps it (a server stream such as health's Watch,
 * a bidi stream such as reflection): the handler answers when it is woken, or whenever its own
 * events on the worker's thread say so (a timer, a message to the worker, an answer fetched
 * for it): it may keep the call pointer and send or finish later, until on_close. Besides the
 * per-call wake, each service gets on_routes once per table install (before its calls are woken),
 * so it can keep per-worker state that follows the table (e.g. the names that left it).
 *
 * Order against the policy chain: a service registered with before_filters 1 is answered
 * before the filters run (health probes from kubelet and load balancers carry no JWT and must
 * not be rate limited); otherwise the filters see the call like any other and it is answered
 * once they admitted it. Interface in generic terms (paths, bytes, status): the handlers live
 * in higher layers (node/ wires them in). Every function here runs on the worker's thread.
 */
#ifndef MESH_PROXY_LOCAL_H
#define MESH_PROXY_LOCAL_H

#include <stddef.h>
#include <stdint.h>

#include "registry/route_table.h"
#include "transport/proxy.h"

/** A locally served call (the engine's call object; valid until the handler's on_close). */
typedef struct pxy_stream mesh_local_call_t;

/** Why a call is woken. */
typedef enum {
    MESH_LOCAL_WAKE_ROUTES = 1, /* a new routing table is installed */
    MESH_LOCAL_WAKE_DRAIN = 2,  /* the worker stopped serving (a drain begins) */
    MESH_LOCAL_WAKE_GOAWAY = 3, /* the worker sent GOAWAY: long-lived calls should end, or the
                                   drain waits for them until its timeout */
} mesh_local_wake_t;

/**
 * A handler's operations; ctx is the one registered with the service. Every callback may send
 * and finish; none may be called again for a call after its on_close.
 * on_open: the call matched (path, path_len: its :path); *state may be set for the call. 0
 *   accepts; -1 refuses: the call ends with UNAVAILABLE "meshd: local service unavailable".
 * on_message (may be NULL: messages ignored): one whole request message (len bytes, valid
 *   during the call; a compressed message is refused by the engine with UNIMPLEMENTED).
 * on_end (may be NULL): the client ended its request (half-close); the call stays open until
 *   the handler finishes it or the client leaves.
 * on_wake (may be NULL): the worker's routing table changed, it stopped serving, or it sent
 *   GOAWAY (see mesh_local_wake_t).
 * on_close: the call is over (always called once for an opened call); free the state here.
 * on_routes (may be NULL): once per table install, before the service's calls are woken:
 *   before and after are the worker's previous and new tables (before may be NULL).
 */
typedef struct mesh_local_ops {
    int (*on_open)(void *ctx, mesh_local_call_t *c, const char *path, size_t path_len,
                   void **state);
    void (*on_message)(void *ctx, void *state, mesh_local_call_t *c, const uint8_t *msg,
                       size_t len);
    void (*on_end)(void *ctx, void *state, mesh_local_call_t *c);
    void (*on_wake)(void *ctx, void *state, mesh_local_call_t *c, mesh_local_wake_t why);
    void (*on_close)(void *ctx, void *state);
    void (*on_routes)(void *ctx, const mesh_routes_t *before, const mesh_routes_t *after);
} mesh_local_ops_t;

/** A locally served path or service. */
typedef struct mesh_local_service {
    /* "/pkg.Svc/Method" (exact) or "/pkg.Svc/" (every method of the service); borrowed: it
       must outlive the worker */
    const char *path;
    int before_filters; /* 1: answered before the policy chain runs */
    size_t max_message; /* largest request message; 0: 64 KiB */
    /* the call metrics (transport/call_stats.h): local calls count under their service's own
       row; these methods (sorted; NULL: none) get a column, any other under "other" */
    const char *const *methods;
    size_t n_methods;
    const mesh_local_ops_t *ops;
    void *ctx;
} mesh_local_service_t;

/** Most local services a worker serves. */
#define MESH_LOCAL_MAX_SERVICES 8

/** Adds a local service (copied) to worker w. 0, or -1 when the table is full or the entry is
 *  bad (no path beginning with '/', no on_open or on_close). Register before calls arrive. */
int mesh_proxy_worker_add_local(mesh_proxy_worker_t *w, const mesh_local_service_t *s);

/** The worker stops serving (its health turns NOT_SERVING; the GOAWAY follows with the
 *  drain): its local calls are woken with MESH_LOCAL_WAKE_DRAIN. mesh_proxy_worker_drain()
 *  does this too. */
void mesh_proxy_worker_stop_serving(mesh_proxy_worker_t *w);

/** Wakes every open local call with MESH_LOCAL_WAKE_GOAWAY, so long-lived ones end:
 *  mesh_proxy_worker_drain() does it after its GOAWAY; a front end that drains before the
 *  engine (the gateway's) calls it first, or its own drain would wait for them. */
void mesh_proxy_worker_end_local_calls(mesh_proxy_worker_t *w);

/* ---- what a handler can do with its call --------------------------------------------------- */

/** Sends one response message (len bytes, copied; the engine writes the gRPC prefix and the
 *  response headers before the first). 0; 1 when the call's response buffer is full (taken;
 *  send less); -1 when the call no longer takes messages (finished, failed, client gone). */
int mesh_local_call_send(mesh_local_call_t *c, const uint8_t *msg, size_t len);

/** Ends the call with grpc-status status and grpc-message message ("" or NULL: none). Once;
 *  later sends fail. Nothing happens when the call already ended (deadline, client gone). */
void mesh_local_call_finish(mesh_local_call_t *c, int status, const char *message);

/** The worker's routing table now (NULL before any); valid until the next wake. */
const mesh_routes_t *mesh_local_call_routes(const mesh_local_call_t *c);

/** 1 when the worker stopped serving (mesh_proxy_worker_stop_serving, or a drain), else 0. */
int mesh_local_call_draining(const mesh_local_call_t *c);

/** The value of the first request field called name (lower case), or NULL. */
const char *mesh_local_call_header(const mesh_local_call_t *c, const char *name, size_t *len);

/** The worker's index (for logs). */
int mesh_local_call_worker_index(const mesh_local_call_t *c);

#endif
