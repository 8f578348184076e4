/*
 * simulations/sim_etcd_link.h: the simulated network between one meshd node and the simulated
 * etcd (simulations/sim_etcd.h), seen by the node as its etcd seam (registry/etcd_api.h).
 *
 * The production registry actor (registry/registry_actor.h) runs on the simulated executor
 * with this link as its etcd: its requests (range, txn with compares, lease grant / keepalive
 * / revoke, watch) reach the simulated etcd after a latency drawn from the simulator's PRNG,
 * and the answers come back the same way. The lines of one watch stream (and the client's
 * requests on it) keep their order, as over one TCP connection; unary requests travel on
 * connections of their own. A request that cannot reach etcd fails after a connect-failure
 * delay. When etcd breaks a stream the close arrives after the lines already sent, or, for
 * some breaks (a connection reset), overtakes them: the lines still in flight are lost.
 *
 * A link outlives the actors that use it: each start of the registry actor gets a new
 * incarnation of the seam from the factory, and whatever was in flight for an earlier
 * incarnation (a crashed actor) is dropped on arrival, as is the answer to a request the node
 * cancelled (the real client's cancel aborts the HTTP request).
 *
 * On a simulator of logical processes the node's end and etcd's end may run at once on two
 * threads (cfg.node_host, cfg.etcd_host): each end keeps its own state and learns the other's
 * from packets only.
 */
#ifndef SIM_ETCD_LINK_H
#define SIM_ETCD_LINK_H

#include <stdint.h>

#include "actors/sim.h"
#include "registry/etcd_api.h"
#include "simulations/sim_etcd.h"

/** The network between a node and etcd. */
typedef struct sim_link_cfg {
    uint64_t latency_min_ns; /* one-way latency: min + PRNG jitter */
    uint64_t latency_jitter_ns;
    uint64_t fail_min_ns; /* time until an unreachable etcd is reported */
    uint64_t fail_jitter_ns;
    uint32_t reset_pct; /* % of stream breaks that lose the lines in flight */
    /* On a simulator of logical processes (mesh_sim_new_lp): the node's host, whose process
     * receives etcd's answers and lines, and etcd's own host, on a process of its own, where
     * the requests are applied (both at least latency_min_ns away: it must not be under the
     * network's least latency). NULL: answers run where etcd ran, and etcd on the serial
     * queue (alone, at window boundaries; the one-loop simulator: its one loop). */
    mesh_io_t *node_host;
    mesh_io_t *etcd_host;
} sim_link_cfg_t;

/** What the scenario learns from a link. */
typedef struct sim_link_hooks {
    void *ud;
    /** A line of the verbose trace (NULL: not verbose). */
    void (*log)(void *ud, const char *line);
    /** Folds a value into the run's trace hash. */
    void (*fold)(void *ud, uint64_t v);
} sim_link_hooks_t;

typedef struct sim_etcd_link sim_etcd_link_t;

/** A link for client index (partitions and watches in sim_etcd are per client). */
sim_etcd_link_t *sim_etcd_link_new(mesh_exec_t *sim, sim_etcd_t *etcd, uint32_t client,
                                   const sim_link_cfg_t *cfg, const sim_link_hooks_t *hooks);

/** Frees a link; call after the executor has been freed. */
void sim_etcd_link_free(sim_etcd_link_t *l);

/** The registry actor's etcd factory for the simulator (arg: sim_etcd_link_t *). */
etcd_api_t *sim_etcd_factory(mesh_actor_t *self, etcd_deliver_fn deliver, void *deliver_ud,
                             void *arg);

/** The client index of a link. */
uint32_t sim_etcd_link_client(const sim_etcd_link_t *l);

#endif
