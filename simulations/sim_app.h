/*
 * simulations/sim_app.h: a simulated gRPC app, as the production sidecar actor sees it through
 * its app seam (transport/rpc.h).
 *
 * It serves what a real app beside a sidecar serves: grpc.health.v1 (Check, and Watch unless
 * configured not to), server reflection (v1, or only v1alpha, answering list_services and
 * file_containing_symbol with FileDescriptorProtos it builds for its services) and its own
 * services, whose set depends on its version (a rolling update changes it). The scenario flips
 * its faults: health SERVING / NOT_SERVING, the process down (connections refused; an open
 * connection is lost), or hung (calls get no answer until their deadline). Every answer takes
 * a latency drawn from the simulator's PRNG.
 *
 * Like the etcd link, an app outlives the actors that talk to it: each start of the sidecar
 * actor gets a new incarnation of the seam, and events for an earlier one are dropped.
 */
#ifndef SIM_APP_H
#define SIM_APP_H

#include <stddef.h>
#include <stdint.h>

#include "actors/sim.h"
#include "transport/rpc.h"

typedef struct sim_app_cfg {
    const char *package;     /* services are "<package>.Echo" (+ "<package>.Admin" from v2) */
    int watch_unimplemented; /* Health/Watch answers UNIMPLEMENTED */
    int v1alpha_only;        /* reflection v1 answers UNIMPLEMENTED */
    /* The call's deadline runs on the client from the call's start, as a gRPC client's does
     * (the monitor scenario: a silent app, hung or cut off, never sees the call); off (0), it
     * starts when the call reaches the app, as the existing scenarios pin. */
    int client_deadline;
    uint64_t latency_min_ns, latency_jitter_ns;
    void (*fold)(void *ud, uint64_t v); /* folds events into the run's trace hash */
    void *ud;
} sim_app_cfg_t;

typedef struct sim_app sim_app_t;

sim_app_t *sim_app_new(mesh_exec_t *sim, const sim_app_cfg_t *cfg);

/** Frees the app; call after the executor has been freed. */
void sim_app_free(sim_app_t *a);

/** Health: 1 SERVING, 0 NOT_SERVING (pushed to open Watch streams). */
void sim_app_set_serving(sim_app_t *a, int serving);

/** The process: 0 down (connections refused, the open one lost), 1 up. */
void sim_app_set_up(sim_app_t *a, int up);

/** Hung: calls are accepted but never answered (health checks time out). */
void sim_app_set_hung(sim_app_t *a, int hung);

/** The version (1: Echo; 2 and up: Echo and Admin); takes effect at the next start. */
void sim_app_set_version(sim_app_t *a, int version);

/** Whether the app is ready as the sidecar should see it: up, not hung, SERVING. */
int sim_app_healthy(const sim_app_t *a);

/** The services it serves now (sorted); *n gets their count. */
const char *const *sim_app_services(const sim_app_t *a, size_t *n);

/** The sidecar actor's app factory for the simulator (arg: sim_app_t *). */
mesh_rpc_t *sim_app_factory(mesh_actor_t *self, mesh_rpc_deliver_fn deliver, void *deliver_ud,
                            void *arg);

#endif
