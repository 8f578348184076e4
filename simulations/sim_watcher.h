/*
 * simulations/sim_watcher.h: one simulated meshd node's registry view: the sans-I/O watch
 * machine (registry/watch_sm.h) over its own table (registry/view_table.h), run by an actor on
 * the simulated executor and connected to the simulated etcd (simulations/sim_etcd.h) through a
 * simulated network.
 *
 * It is the simulations' second adapter of reg_watch_sm, next to the libuv one
 * (registry/view.c), and carries out the effects the same way: RANGE cancels the range in
 * flight and issues a new one, WATCH replaces the current stream, CANCEL_WATCH closes it (no
 * close event follows), the two timers are restarted when re-armed, an error line is treated as
 * a broken stream (cancel, then watch_closed), and a line's "progress" is derived as view.c
 * does (neither created nor canceled, no events).
 *
 * The network: every request and answer takes a latency drawn from the simulator's PRNG; the
 * lines of one watch stream (and the client's requests on it) keep their order, as over one TCP
 * connection; a range answer travels on its own connection. A request that cannot reach etcd
 * fails after a connect-failure delay. When etcd breaks a stream the close arrives after the
 * lines already sent, or, for some breaks (a connection reset), overtakes them: the lines
 * still in flight are lost.
 */
#ifndef SIM_WATCHER_H
#define SIM_WATCHER_H

#include <stdint.h>

#include "actors/sim.h"
#include "registry/watch_sm.h"
#include "simulations/sim_etcd.h"

typedef struct sim_watcher sim_watcher_t;

/** The simulated network between a node and etcd. */
typedef struct sim_link_cfg {
    uint64_t latency_min_ns; /* one-way latency: min + PRNG jitter */
    uint64_t latency_jitter_ns;
    uint64_t fail_min_ns; /* time until an unreachable etcd is reported */
    uint64_t fail_jitter_ns;
    uint32_t reset_pct; /* % of stream breaks that lose the lines in flight */
} sim_link_cfg_t;

/** What the scenario learns from a node. */
typedef struct sim_watcher_hooks {
    void *ud;
    /** The node published its view (the PUBLISH effect). */
    void (*on_publish)(void *ud, sim_watcher_t *w);
    /** The node applied a watch line or a range (after the machine ran). */
    void (*on_step)(void *ud, sim_watcher_t *w);
    /** A line of the verbose trace (NULL: not verbose). */
    void (*log)(void *ud, const char *line);
    /** Folds a value into the run's trace hash. */
    void (*fold)(void *ud, uint64_t v);
} sim_watcher_hooks_t;

/**
 * Creates node index (0..63) watching prefix (with its trailing '/') on etcd, spawns its actor
 * on sim and starts the machine (its first range goes out). NULL on failure.
 */
sim_watcher_t *sim_watcher_new(mesh_exec_t *sim, sim_etcd_t *etcd, uint32_t index,
                               const char *prefix, const reg_watch_cfg_t *wcfg,
                               const sim_link_cfg_t *link, const sim_watcher_hooks_t *hooks);

/** Frees the node; call after the executor has been freed (nothing may still point at it). */
void sim_watcher_free(sim_watcher_t *w);

/** The node's index. */
uint32_t sim_watcher_index(const sim_watcher_t *w);

/** The node's table. */
const reg_table_t *sim_watcher_table(const sim_watcher_t *w);

/** The node's machine. */
const reg_watch_sm_t *sim_watcher_sm(const sim_watcher_t *w);

/** How many times the node published. */
uint64_t sim_watcher_publishes(const sim_watcher_t *w);

/** The etcd epoch (sim_etcd_epoch) that served the node's last applied range. */
uint32_t sim_watcher_range_epoch(const sim_watcher_t *w);

/** The fingerprint of the node's table, comparable with sim_etcd_fingerprint(). */
uint64_t sim_watcher_fingerprint(const sim_watcher_t *w);

#endif
