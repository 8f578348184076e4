/*
 * tests/integration/registry/registry_rig.h: running the production registry actor against
 * real etcd from a test.
 *
 * The rig runs a real executor (no workers) on its own thread; the test drives it from the
 * main thread and observes it through the actor's hook, whose copies live under the rig's
 * mutex:
 *   - a viewer is a registry actor that watches the prefix (what a proxy runs); the test reads
 *     its link, revision, counters and keys;
 *   - a registrar is a test actor that asks a registry actor (watch off: what a sidecar runs)
 *     to register and deregister, and counts the events it gets back.
 * Waiting functions run the test's own libuv loop (for the harness's TCP proxy) while they
 * poll.
 */
#ifndef TEST_REGISTRY_RIG_H
#define TEST_REGISTRY_RIG_H

#include <pthread.h>
#include <stdint.h>
#include <uv.h>

#include "actors/exec.h"
#include "registry/registry_actor.h"
#include "registry/registration.h"

typedef struct rig_key {
    char *key;
    char *node;
    size_t n_methods;
    int64_t lease;
} rig_key_t;

/** A registry actor with a view, and what its hook saw last. */
typedef struct viewer {
    struct rig *rig;
    reg_curl_factory_t fac;
    char *endpoints;
    const char *eps[1];
    reg_actor_args_t *args;
    mesh_actor_id_t id;
    /* under rig->mu */
    int link;
    int64_t revision;
    size_t n_valid, n_warned;
    uint64_t compacted, resyncs;
    int publishes;
    size_t services;    /* services of the last table built from the view */
    size_t table_bytes; /* reg_table_memory of the view */
    rig_key_t *keys;
    size_t n_keys;
} viewer_t;

/** A test actor that registers through a registry actor. */
typedef struct registrar {
    struct rig *rig;
    reg_curl_factory_t fac;
    char *endpoints;
    const char *eps[1];
    reg_actor_args_t *args;
    mesh_actor_id_t registry;
    mesh_actor_id_t id;
    /* under rig->mu */
    uint32_t reg_id;
    int registered, lost, deregistered;
} registrar_t;

typedef struct rig {
    mesh_exec_t *exec;
    pthread_t thread;
    pthread_mutex_t mu;
    uv_loop_t *loop; /* the test's own loop, run while waiting */
} rig_t;

/** Starts an executor on its own thread. */
void rig_start(rig_t *r, uv_loop_t *test_loop);

/** Stops the executor and joins its thread (viewers and registrars are freed after). */
void rig_stop(rig_t *r);

/** Starts a viewer on endpoints (one URL) with snapshot (may be NULL) and short timeouts. */
viewer_t *viewer_start(rig_t *r, const char *endpoint, const char *snapshot, uint32_t req_ms,
                       uint32_t conn_ms);

/** Same with authentication or TLS settings. */
viewer_t *viewer_start_cfg(rig_t *r, const etcd_api_curl_cfg_t *cfg, const char *snapshot);

/** Stops a viewer's actor (its memory is kept until rig_free_all). */
void viewer_stop(viewer_t *v);

/** Predicates (lock the rig). */
int viewer_has(viewer_t *v, const char *key);
int viewer_link(viewer_t *v);
size_t viewer_valid(viewer_t *v);
size_t viewer_warned(viewer_t *v);
uint64_t viewer_compacted(viewer_t *v);
uint64_t viewer_resyncs(viewer_t *v);
int viewer_publishes(viewer_t *v);
size_t viewer_services(viewer_t *v);
size_t viewer_table_bytes(viewer_t *v);
/** Copies what the view holds for key into out (strings stay valid until rig_free_all);
 *  0, or -1 when absent. */
int viewer_key(viewer_t *v, const char *key, rig_key_t *out);

/** Waits (running the test loop) until key is present (want 1) or absent (want 0). */
int wait_key(viewer_t *v, const char *key, int want, uint64_t ms);
int wait_link(viewer_t *v, int link, uint64_t ms);
int wait_count(viewer_t *v, size_t n, uint64_t ms);

/** A registrar with its own registry actor (no view) on endpoint. */
registrar_t *registrar_start(rig_t *r, const etcd_api_curl_cfg_t *cfg);

/** Registers service at addr (methods SayHello, SayBye, node "node-1", zone z1, version 1.0)
 *  with ttl seconds. */
void registrar_register(registrar_t *g, const char *service, const char *addr, int64_t ttl);

/** Deregisters the current registration. */
void registrar_deregister(registrar_t *g);

int wait_registered(registrar_t *g, uint64_t ms);
int wait_deregistered(registrar_t *g, uint64_t ms);

/** Frees every viewer and registrar (after rig_stop). */
void rig_free_all(void);

#endif
