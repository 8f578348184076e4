/*
 * node/node.h: a meshd node: the executor, the data-plane workers and their lifecycle.
 *
 * Every role that serves gRPC (proxy, sidecar, gateway) is a node: one control loop for the
 * control-plane actors (registry, health, ...) and N worker loops, each running its own proxy
 * engine (transport/proxy.h) on its own SO_REUSEPORT listener. The node publishes routing
 * tables from the control loop to every worker by pointer, and turns SIGTERM/SIGINT into an
 * orderly drain: an optional pre-drain period (the sidecar keeps serving while peers forget
 * it), then GOAWAY and in-flight calls finish (bounded by the drain timeout), then every
 * actor stops in reverse start order and the process exits 0. A second signal skips the wait.
 */
#ifndef MESH_NODE_H
#define MESH_NODE_H

#include "actors/exec.h"
#include "common/config.h"
#include "registry/route_table.h"

struct mesh_proxy_config;

typedef struct mesh_node mesh_node_t;

/** Creates a node for cfg (not yet serving). NULL on failure (logged). */
mesh_node_t *mesh_node_new(const mesh_config_t *cfg);

/** The node's executor (to spawn control-plane actors before mesh_node_run). */
mesh_exec_t *mesh_node_exec(mesh_node_t *n);

/**
 * Sets a function that adjusts each worker's engine settings (cfg->worker_index tells which)
 * before mesh_node_listen creates the engine: roles use it for a default upstream and
 * per-worker filters. Called on the thread calling mesh_node_listen.
 */
void mesh_node_set_engine_hook(mesh_node_t *n, void (*fn)(struct mesh_proxy_config *cfg, void *arg),
                               void *arg);

/**
 * Binds the gRPC listener on every worker (cfg->listen; port 0 picks one port shared by all
 * workers) and starts accepting. Returns 0, or -1 when the address cannot be bound (logged).
 */
int mesh_node_listen(mesh_node_t *n);

/** The bound port of the gRPC listener (after mesh_node_listen). */
int mesh_node_port(const mesh_node_t *n);

/**
 * Publishes a routing table to every worker; takes over the caller's reference. Callable
 * from the control loop or, before mesh_node_run, from the thread that created the node.
 */
void mesh_node_publish_routes(mesh_node_t *n, mesh_routes_t *routes);

/**
 * Registers a hook run on the control loop when a shutdown signal arrives, before the
 * pre-drain period (the sidecar deregisters here).
 */
void mesh_node_on_signal(mesh_node_t *n, void (*fn)(void *arg), void *arg);

/** Sets how long the node keeps serving normally after a signal before it drains. */
void mesh_node_set_predrain(mesh_node_t *n, uint64_t ms);

/** Begins the orderly shutdown, as a signal would; from the control loop. */
void mesh_node_shutdown(mesh_node_t *n);

/**
 * Stops the node because something it cannot run without failed: the drain begins at once
 * (no pre-drain period) and mesh_node_run returns exit_code. From the control loop.
 */
void mesh_node_fail(mesh_node_t *n, int exit_code);

/** Runs until the node has shut down; returns the process exit code (0 after a clean drain). */
int mesh_node_run(mesh_node_t *n);

/** Frees a node after mesh_node_run returned (or one that never ran). */
void mesh_node_free(mesh_node_t *n);

#endif
