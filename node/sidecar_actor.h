/*
 * node/sidecar_actor.h: the sidecar's control actor, on the node's control loop.
 *
 * It talks to the local app through the app seam (transport/rpc.h): learns the app's services
 * and methods through server reflection (grpc/reflection.h; again after every reconnect) or a
 * --descriptor-set file, health-checks the app every interval (grpc.health.v1 Watch where the
 * app supports it, else Check) into the readiness counter (node/readiness.h), and while the
 * app is ready asks the registry actor to keep it registered (REG_MSG_REGISTER: one key per
 * service under one lease, methods in the record). It answers /livez and /readyz
 * (transport/http1_server.h) and, when the node tells it shutdown began, deregisters first.
 *
 * Audit (audit/audit_api.h): as the owner of its registration it is the one emitter of
 * instance_registered (once per service, when the registry confirms the keys are in etcd, or in
 * gossip without etcd), instance_removed (source etcd when its deregistration finished, gossip
 * without etcd, lease_expiry when the lease was lost) and readiness_changed (the app became
 * ready or not ready).
 *
 * Its state changes only in its message handler: app events arrive as messages, its timers are
 * actor timers, and the registry answers by message, so simulations/ runs this very actor
 * against simulated apps and a simulated etcd.
 */
#ifndef MESH_SIDECAR_ACTOR_H
#define MESH_SIDECAR_ACTOR_H

#include <stdint.h>

#include "actors/actor.h"
#include "audit/audit_api.h"
#include "common/config.h"
#include "grpc/descriptors.h"
#include "transport/rpc.h"

/** Builds the actor's app seam; events go to deliver(deliver_ud, ...). */
typedef mesh_rpc_t *(*sc_rpc_factory_fn)(mesh_actor_t *self, mesh_rpc_deliver_fn deliver,
                                         void *deliver_ud, void *arg);

/** What every start of the actor reads; must outlive the actor. */
typedef struct sc_args {
    const mesh_config_t *cfg;
    char advertise[256];             /* the address registered in etcd */
    mesh_actor_id_t node;            /* told NODE_MSG_WATCH_SHUTDOWN / NODE_MSG_FAIL */
    const mesh_actor_id_t *registry; /* the registry actor (its supervisor fills it); NULL or
                                        0: no registration */
    sc_rpc_factory_fn rpc_new;
    void *rpc_arg;
    struct mesh_exec *exec; /* the real executor, for the probe server's loop; NULL: no HTTP
                               probes (simulations) */
    audit_api_t *audit;     /* where this sidecar's audit events go (NULL: nowhere) */
    struct mesh_tls_holder *probe_tls; /* the probes over TLS (--tls-probe); NULL: plain HTTP */
    uint64_t probe_tls_timeout_ms;     /* their handshake timeout (UINT64_MAX: none) */
    int mesh_tls; /* advertise serves TLS with the node's mesh identity: registered "tls":"mtls" */
    /** Observation hook for simulations, on the actor's thread: the registration wish changed
     *  (want: the app is ready and known) or the registry confirmed (registered). */
    void (*on_state)(void *ud, int want, int registered);
    void *hooks_ud;
    /** The app's API was (re)read (reflection after every reconnect, or the descriptor set):
     *  pool is its built model, valid during the call only (the sidecar's --http-listen
     *  publishes it to the HTTP/JSON front ends). May be NULL. On the actor's thread. */
    void (*on_pool)(void *ud, const mesh_desc_pool_t *pool);
    void *pool_ud;
    /** Written by the actor (kept across its restarts), read by the metrics on the same loop:
     *  refusals of the registration by etcd's RBAC (streaks, docs/etcd-rbac.md), and whether
     *  the registration is refused right now. */
    uint64_t reg_denied_total;
    int reg_denied_now;
} sc_args_t;

struct prom;

/** The sidecar's registry metric families (meshd_sidecar_registration_denied*); ud is the
 *  sc_args_t. On the control loop. */
void sc_metrics_write(void *ud, struct prom *p);

/** The actor's operations (spawn or supervise with an sc_args_t *). */
extern const mesh_actor_ops_t sc_actor_ops;

/** The production app seam factory (arg: the mesh_exec_t *). */
mesh_rpc_t *sc_rpc_grpc_factory(mesh_actor_t *self, mesh_rpc_deliver_fn deliver, void *deliver_ud,
                                void *arg);

#endif
