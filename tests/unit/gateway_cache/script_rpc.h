/*
 * tests/unit/gateway_cache/script_rpc.h: a scripted world of gRPC servers behind the
 * request-level app seam (transport/rpc.h), for the descriptor cache's tests on the simulated
 * executor.
 *
 * Each address is an app with a mode (serves reflection v1 and v1alpha, only v1alpha, no
 * reflection, silent: accepts calls and never answers, or refusing connections) and a set of
 * serialized FileDescriptorProtos it answers reflection from: file_containing_symbol with the
 * file defining the service (imports left to file_by_filename), file_by_filename with the
 * named file, NOT_FOUND otherwise. Addresses without an app of their own behave as the
 * default app. Answers arrive after a fixed latency through mesh_sim_call_at, never from
 * inside an operation; a cancelled call or a freed seam gets nothing more.
 */
#ifndef GW_TEST_SCRIPT_RPC_H
#define GW_TEST_SCRIPT_RPC_H

#include <stddef.h>
#include <stdint.h>

#include "actors/sim.h"
#include "transport/rpc.h"

typedef enum {
    SR_SERVE = 0,     /* reflection v1 and v1alpha */
    SR_V1ALPHA_ONLY,  /* v1 answers UNIMPLEMENTED (grpc++ 1.51) */
    SR_NO_REFLECTION, /* both answer UNIMPLEMENTED */
    SR_SILENT,        /* calls are accepted and never answered */
    SR_REFUSE,        /* connections refused: calls end UNAVAILABLE */
} sr_mode_t;

/** One serialized file (bytes owned by whoever made it). */
typedef struct sr_file {
    const uint8_t *data;
    size_t len;
} sr_file_t;

typedef struct sr_world sr_world_t;
typedef struct sr_app sr_app_t;

sr_world_t *sr_world_new(mesh_exec_t *sim, uint64_t latency_ns);
/** Frees the world; call after the executor was freed. */
void sr_world_free(sr_world_t *w);

/** The app at addr (made on first use, mode SR_SERVE, no files); addr NULL: the default app. */
sr_app_t *sr_app(sr_world_t *w, const char *addr);
void sr_app_set_mode(sr_app_t *a, sr_mode_t mode);
/** Replaces the app's files (copied). */
void sr_app_set_files(sr_app_t *a, const sr_file_t *files, size_t n);
/** Reflection calls opened at this app so far. */
unsigned sr_app_calls(const sr_app_t *a);
/** Reflection calls opened in the whole world so far. */
unsigned sr_world_calls(const sr_world_t *w);

/** The cache's seam factory (arg: the sr_world_t *). */
mesh_rpc_t *sr_factory(void *arg, mesh_actor_t *self, const char *addr, mesh_rpc_deliver_fn deliver,
                       void *deliver_ud);

#endif
