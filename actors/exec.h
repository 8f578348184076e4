/*
 * actors/exec.h: executors, the things that run actors.
 *
 * The real executor runs one control loop (index 0, on the thread calling mesh_exec_run) and
 * N worker loops (1..N), each a libuv loop on its own thread. Same-thread sends go through a
 * plain per-actor mailbox (no atomics, no locks); sends to another loop go through that
 * loop's MPSC inbox, which wakes the loop with one uv_async_t only when it goes from empty to
 * non-empty, and the loop drains the whole batch per wake.
 *
 * The simulated executor (sim.h) implements the same functions on one thread under a virtual
 * clock; the functions below work on both unless noted.
 */
#ifndef MESH_EXEC_H
#define MESH_EXEC_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "actors/actor.h"

typedef struct mesh_exec mesh_exec_t;

/** Most worker loops an executor runs: an actor address has 8 bits of loop index (loop 0 is
 *  the control loop). The config's "workers" option has the same bound. */
#define MESH_EXEC_MAX_WORKERS 255

/** Options of the real executor; zeroed means defaults. */
typedef struct mesh_exec_opts {
    int workers;               /* worker loops, 1..MESH_EXEC_MAX_WORKERS; 0 = one per core
                                  (at most MESH_EXEC_MAX_WORKERS), -1 = none */
    uint64_t drain_timeout_ns; /* how long shutdown waits for mailboxes to empty; 0 = 2 s */
    int no_signals;            /* do not install SIGTERM/SIGINT handlers */
} mesh_exec_opts_t;

/** Creates the real executor (loops are created now, threads start in mesh_exec_run).
 *  Returns NULL (logged) when opts->workers is above MESH_EXEC_MAX_WORKERS or below -1. */
mesh_exec_t *mesh_exec_new(const mesh_exec_opts_t *opts);

/** Frees an executor that is not running (after mesh_exec_run returned, or never ran). */
void mesh_exec_free(mesh_exec_t *exec);

/** Spawns a root actor on loop MESH_ON_LOOP(i) (default: control); any thread, any time. */
int mesh_exec_spawn(mesh_exec_t *exec, const mesh_actor_ops_t *ops, void *arg,
                    const mesh_spawn_opts_t *opts, mesh_actor_id_t *id_out);

/** Sends from outside any actor (any thread); same contract as mesh_send. */
int mesh_exec_send(mesh_exec_t *exec, mesh_actor_id_t to, uint32_t type, const void *data,
                   size_t len);

/** Sends a pointer payload from outside any actor; on error ptr stays the caller's. */
int mesh_exec_send_ptr(mesh_exec_t *exec, mesh_actor_id_t to, uint32_t type, void *ptr,
                       void (*ptr_free)(void *));

/** Asks an actor to stop, from outside any actor. */
int mesh_exec_stop(mesh_exec_t *exec, mesh_actor_id_t id);

/** Runs fn(arg) on loop i's thread (i = 0 control, 1..N workers); any thread. Never full. */
int mesh_exec_post(mesh_exec_t *exec, int loop, void (*fn)(void *arg), void *arg);

/** Number of loops (control + workers). */
int mesh_exec_loop_count(const mesh_exec_t *exec);

/** The libuv loop of loop i (real executor only; NULL in the simulator). Handles created on
 *  it must only be touched from that loop's thread (use mesh_exec_post to get there). */
uv_loop_t *mesh_exec_uv_loop(mesh_exec_t *exec, int loop);

/** The I/O seam of loop i. */
mesh_io_t *mesh_exec_io(mesh_exec_t *exec, int loop);

/** Index of the loop the calling thread runs, or -1 when it is not a loop thread. */
int mesh_exec_current_loop(void);

/** Registers a hook run on the control loop when shutdown begins (stop accepting). Hooks run
 *  in registration order, before the drain. Call before mesh_exec_run. */
int mesh_exec_on_shutdown(mesh_exec_t *exec, void (*fn)(mesh_exec_t *exec, void *arg), void *arg);

/** Runs the executor until shutdown completes (SIGTERM/SIGINT or mesh_exec_shutdown).
 *  Shutdown: run the hooks, wait for mailboxes to drain (bounded by drain_timeout), stop every
 *  actor in reverse start order (each on_stop runs before the next stop begins), stop the
 *  loops, join the worker threads. Returns 0. */
int mesh_exec_run(mesh_exec_t *exec);

/** Begins an orderly shutdown; any thread, idempotent. */
void mesh_exec_shutdown(mesh_exec_t *exec);

#endif
