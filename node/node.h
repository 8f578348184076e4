/*
 * node/node.h: a meshd node: the executor, the node actor, one worker actor per data-plane
 * loop, and the supervised control actors of the roles.
 *
 * Every role that serves gRPC (proxy, sidecar, gateway) is a node. Threads and actors:
 *
 *   control loop:  node actor ── parent of ──> root supervisor ──> control actors (registry,
 *                  sidecar, ...), restarted with backoff; when the supervisor gives up the
 *                  node stops with exit 1
 *   worker loop i: worker actor i, sole owner of its proxy engine (transport/proxy.h) and of
 *                  its event ring (actors/evring.h)
 *
 * Messages (node/node_msgs.h): the registry sends REG_MSG_ROUTES to the node actor, which
 * hands each worker actor a reference, and one to each actor that asked with
 * REG_MSG_ROUTES_WATCH (the gateway's descriptor cache; the current table at once); workers poke
 * the node when their event ring holds events (counters, breaker transitions: logged, and handed to
 * the audit actor in batches); SIGTERM/SIGINT become a message to the node actor, which tells the
 * actors that asked (NODE_MSG_WATCH_SHUTDOWN) that shutdown began, serves the pre-drain period,
 * tells every worker to drain (GOAWAY, calls in flight finish, bounded by the drain timeout), and
 * once all workers report back stops the executor: actors stop in reverse start order and the
 * process exits 0. A second signal skips the waiting. A control actor that cannot run sends
 * NODE_MSG_FAIL: the node drains at once and exits with its code.
 */
#ifndef MESH_NODE_H
#define MESH_NODE_H

#include "actors/exec.h"
#include "actors/supervisor.h"
#include "common/config.h"
#include "registry/route_table.h"
#include "transport/rpc.h"

#include <uv.h>

struct mesh_proxy_config;
struct mesh_proxy_worker;
struct mesh_admin;
struct audit_api;

typedef struct mesh_node mesh_node_t;

/** Creates a node for cfg (executor and node actor; not yet serving). NULL on failure. */
mesh_node_t *mesh_node_new(const mesh_config_t *cfg);

/** The node's executor. */
mesh_exec_t *mesh_node_exec(mesh_node_t *n);

/** The node actor's address: where routing tables (REG_MSG_ROUTES), shutdown subscriptions
 *  and failures (node/node_msgs.h) go. */
mesh_actor_id_t mesh_node_actor(const mesh_node_t *n);

/**
 * Sets a function that adjusts each worker's engine settings (cfg->worker_index tells which)
 * before mesh_node_listen creates the engine: roles use it for a default upstream and
 * filters. Called on the thread calling mesh_node_listen.
 */
void mesh_node_set_engine_hook(mesh_node_t *n, void (*fn)(struct mesh_proxy_config *cfg, void *arg),
                               void *arg);

/**
 * A second front end on every worker beside the engine (the gateway's HTTP/JSON listener): it
 * starts its calls through the worker's engine (transport/proxy_call.h). The worker actor owns
 * it: create runs on the thread calling mesh_node_listen once the worker's engine exists (NULL
 * fails the listen); update, drain and destroy run on the worker's loop thread. update gets a
 * payload published with mesh_node_frontend_publish (one reference, the front end's to keep or
 * drop with payload_unref). At shutdown the front end drains first (it answers what it began,
 * then calls done), then the engine; destroy runs before the engine is freed.
 */
typedef struct mesh_node_frontend {
    void *(*create)(void *arg, int worker, uv_loop_t *loop, struct mesh_proxy_worker *engine);
    void (*update)(void *fe, void *payload);
    void (*drain)(void *fe, void (*done)(void *), void *done_arg);
    void (*destroy)(void *fe);
    void (*payload_unref)(void *payload);
    /* (may be NULL) request bytes the front end holds now, for the gauge
     * meshd_gateway_request_buffered_bytes; worker loop thread */
    uint64_t (*req_buffered)(void *fe);
    void *arg;
} mesh_node_frontend_t;

struct mesh_tls_holder;

/** The TLS context holder for the node's HTTP listeners (ALPN h2 and http/1.1, from --tls-cert),
 *  made on first use; NULL when TLS is not configured (or failed: logged). For a front end's
 *  create, during mesh_node_listen. */
struct mesh_tls_holder *mesh_node_tls_http(mesh_node_t *n);

/** The same for plain HTTP/1.1 servers (the admin API, the probes: ALPN http/1.1 only). */
struct mesh_tls_holder *mesh_node_tls_admin(mesh_node_t *n);

/** --tls-handshake-timeout for every TLS listener, in ms (UINT64_MAX: none). */
uint64_t mesh_node_tls_handshake_timeout(const mesh_node_t *n);

/** A gRPC client seam (transport/rpc.h) to an instance at addr on self's loop, made as the
 *  node's workers reach instances: over TLS with the upstream context when --tls-upstream-ca
 *  is set. For control actors that call instances (the descriptor cache: gw_cache_rpc_fn,
 *  with node as its argument). */
mesh_rpc_t *mesh_node_upstream_rpc(void *node, mesh_actor_t *self, const char *addr,
                                   mesh_rpc_deliver_fn deliver, void *ud);

/** 1 when the node's listeners are to serve TLS (--tls-cert). */
int mesh_node_tls_http_wanted(const mesh_node_t *n);

/** 1 when --listen serves TLS with the node's mesh identity (node/node_tls.h). */
int mesh_node_tls_mesh_served(const mesh_node_t *n);

/** Sets the front end (copied) every worker gets; before mesh_node_listen. */
void mesh_node_set_frontend(mesh_node_t *n, const mesh_node_frontend_t *fe);

/** Hands every worker's front end a reference to payload (ref takes one): by message once the
 *  node runs (from any thread), at once before. Returns 0, or -1 when a worker could not be
 *  reached (logged). The caller keeps its own reference. */
int mesh_node_frontend_publish(mesh_node_t *n, void *(*ref)(void *), void *payload);

/**
 * A per-worker extension of a role beside the engine (the proxy's aggregated reflection): an
 * object on each worker's thread, fed with immutable snapshots the control loop publishes, like
 * the routing table. create runs on the thread calling mesh_node_listen once the worker's engine
 * exists (it may register local services on it, transport/proxy_local.h; NULL fails the
 * listen); update (a payload reference, the extension's to keep or drop with payload_unref),
 * tick (may be NULL; every worker tick, 250 ms, with the loop's time in ms) and destroy (after
 * the engine is freed, so its local calls have closed) run on the worker's loop thread.
 */
typedef struct mesh_node_ext {
    void *(*create)(void *arg, int worker, struct mesh_proxy_worker *engine);
    void (*update)(void *ext, void *payload);
    void (*tick)(void *ext, uint64_t now_ms);
    void (*destroy)(void *ext);
    void (*payload_unref)(void *payload);
    void *arg;
} mesh_node_ext_t;

/** Most extensions a node takes. */
#define MESH_NODE_MAX_EXTS 4

/** Adds an extension (copied) every worker gets; before mesh_node_listen. Its id (0..), or -1
 *  when the node has MESH_NODE_MAX_EXTS already. */
int mesh_node_add_ext(mesh_node_t *n, const mesh_node_ext_t *e);

/** Hands every worker's extension id a reference to payload (ref takes one): by message once
 *  the node runs (from the control loop), at once before. 0, or -1 when a worker could not be
 *  reached (logged). The caller keeps its own reference. */
int mesh_node_ext_publish(mesh_node_t *n, int id, void *(*ref)(void *), void *payload);

/** With no_listener set, mesh_node_listen binds no gRPC listener (calls come from the front
 *  end only). */
void mesh_node_set_no_listener(mesh_node_t *n, int no_listener);

/**
 * Binds the gRPC listener on every worker (cfg->listen; port 0 picks one port shared by all
 * workers), starts accepting, and spawns the worker actors that own the engines. Returns 0,
 * or -1 when the address cannot be bound (logged).
 */
int mesh_node_listen(mesh_node_t *n);

/** The bound port of the gRPC listener (after mesh_node_listen). */
int mesh_node_port(const mesh_node_t *n);

/**
 * Starts the admin API when admin.listen is set (--admin-listen, node/admin.h) on the control
 * loop: /v1/node (roles, "proxy" or "sidecar" or a comma-separated list, is what it says) and
 * /v1/routes. Call after mesh_node_listen, before mesh_node_run. Returns 0 (also when the
 * option is not set), or -1 when the address cannot be bound (logged).
 */
int mesh_node_admin_listen(mesh_node_t *n, const char *roles);

/** The admin API (NULL without --admin-listen), where control actors add their endpoints;
 *  valid on the control loop until the node actor stops (the last actor to stop). */
struct mesh_admin *mesh_node_admin(const mesh_node_t *n);

/** etcd as the admin API reports it: "off" (no --etcd), "connected" or "degraded". Control
 *  loop. */
const char *mesh_node_etcd_state(const mesh_node_t *n);

/** Publishes a table to every worker before the node runs (takes over the reference). */
void mesh_node_publish_routes(mesh_node_t *n, mesh_routes_t *routes);

/** Sets how long the node keeps serving normally after a signal before it drains. */
void mesh_node_set_predrain(mesh_node_t *n, uint64_t ms);

/** Makes every worker's engine answer grpc.health.v1 itself (node/health_local.h): the mesh
 *  entry's roles (proxy, gateway). Call before mesh_node_listen. */
void mesh_node_serve_health(mesh_node_t *n, int on);

/** Where the workers' audited events (breaker transitions) go: the node hands them to
 *  api's audit actor in batches (audit/audit_api.h). Call before mesh_node_run; api must
 *  outlive the run. Without it they are only logged. */
void mesh_node_set_audit(mesh_node_t *n, struct audit_api *api);

/**
 * Starts the control actors under the node's root supervisor (children in start order; the
 * spec must outlive the run). A child's failure restarts it with backoff; when the supervisor
 * gives up, the node stops with exit 1. Call once, before mesh_node_run. 0 or -1.
 */
int mesh_node_supervise(mesh_node_t *n, const mesh_supervisor_spec_t *spec);

/** Runs until the node has shut down; returns the process exit code (0 after a clean drain). */
int mesh_node_run(mesh_node_t *n);

/** Frees a node after mesh_node_run returned (or one that never ran). */
void mesh_node_free(mesh_node_t *n);

#endif
