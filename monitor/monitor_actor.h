/*
 * monitor/monitor_actor.h: the monitor actor, `meshd monitor`'s one control actor.
 *
 * It runs the sans-I/O cores of this folder on two seams: etcd (registry/etcd_api.h) for the
 * election (monitor/election.h), the listings and the fenced transactions
 * (monitor/evict_txn.h); and gRPC calls (transport/rpc.h), one connection per instance
 * address, for grpc.health.v1 Check per service. Everything arrives as a message: etcd results
 * (MON_MSG_ETCD), call events (MON_MSG_RPC), a tick every 200 ms (election keepalives and
 * deadlines) and the probing round timer.
 *
 * Each round (monitor.interval) the leader lists the registrations and the eviction markers,
 * syncs its table (monitor/verdict.h), checks every instance (registered ones to evict,
 * evicted ones to re-admit) with at most monitor.max-in-flight calls at once and a deadline
 * each, and when the round's checks are done asks the valves (monitor/valve.h) and writes the
 * evictions and re-admissions it may. A standby only keeps its election lease alive.
 *
 * Without etcd (etcd_new NULL: a gossip-only mesh) there is no election and nothing to fence an
 * eviction with: the instances come from the gossip bridge (node/gossip_bridge.h sends
 * REG_MSG_GOSSIP, the live members' instances, to the actor it is given as its registry), every
 * monitor checks them all, and what it would evict goes through the valves and is logged and
 * audited as held ("no etcd: no fencing"); nothing is evicted.
 */
#ifndef MON_MONITOR_ACTOR_H
#define MON_MONITOR_ACTOR_H

#include "actors/actor.h"
#include "audit/audit_api.h"
#include "monitor/monitor_options.h"
#include "registry/etcd_api.h"
#include "transport/rpc.h"

struct json_t;

/** Builds the actor's etcd seam (same shape as the registry actor's factory). */
typedef etcd_api_t *(*mon_etcd_factory_fn)(mesh_actor_t *self, etcd_deliver_fn deliver,
                                           void *deliver_ud, void *arg);

/** Builds a gRPC call seam to addr. */
typedef mesh_rpc_t *(*mon_rpc_factory_fn)(mesh_actor_t *self, const char *addr,
                                          uint64_t connect_timeout_ms, mesh_rpc_deliver_fn deliver,
                                          void *deliver_ud, void *arg);

/** What every start of the actor reads; lives as long as the node. */
typedef struct mon_args {
    mon_options_t opts;
    const char *prefix; /* registry prefix (NULL: the default) */
    const char *node;   /* this monitor's name (the election key's value, markers, logs) */
    mon_etcd_factory_fn etcd_new; /* NULL: a gossip-only mesh (report, evict nothing) */
    void *etcd_arg;
    mon_rpc_factory_fn rpc_new;
    void *rpc_arg;
    audit_api_t *audit; /* may be NULL */
    /* The gossip actor (or its bridge) for indirect checks (gossip/check.h): before evicting,
     * up to opts.indirect live members are asked to connect to the instance, and any that does
     * vetoes the eviction. NULL, or an id of 0: evict on the monitor's own checks alone. */
    const mesh_actor_id_t *gossip;
    void *live; /* the running actor's state (the admin API reads it), NULL when none */
} mon_args_t;

/** The actor's operations: spawn (or supervise) with a mon_args_t * as argument. */
extern const mesh_actor_ops_t mon_actor_ops;

/** Mailbox capacity the actor should be spawned with. */
#define MON_ACTOR_MAILBOX (1u << 16)

/** The monitor's state as GET /v1/monitor shows it (on the actor's loop). */
struct json_t *mon_actor_status(const mon_args_t *a);

/** The production call seam (arg: the mesh_exec_t *). */
mesh_rpc_t *mon_rpc_grpc_factory(mesh_actor_t *self, const char *addr, uint64_t connect_timeout_ms,
                                 mesh_rpc_deliver_fn deliver, void *deliver_ud, void *arg);

#endif
