/*
 * node/readiness.h: the health/readiness counter of the sidecar, a pure state machine.
 *
 * The sidecar checks the local app with grpc.health.v1 every few seconds and feeds each
 * result in; the machine answers with effects: became ready / not ready, register /
 * deregister the app's instances in the registry. Readiness starts false (nothing
 * registered); the first SERVING makes it ready and registers. `threshold` (default 3)
 * consecutive failed checks (NOT_SERVING, error/timeout, connection closed) make it not ready
 * and deregister; the next SERVING makes it ready and registers again. A shutdown (SIGTERM,
 * drain) makes it not ready and deregisters for good. The reason string feeds /readyz's JSON.
 *
 * No clock, no I/O, no allocation: time comes in with each event, for the report only.
 */
#ifndef MESH_READINESS_H
#define MESH_READINESS_H

#include <stddef.h>
#include <stdint.h>

#include "transport/http1_server.h"

/** Default number of consecutive failed checks that make the app not ready. */
#define MESH_READINESS_DEFAULT_THRESHOLD 3

/** The result of one health check of the local app. */
typedef enum {
    MESH_CHECK_SERVING = 0,     /* HealthCheckResponse{SERVING} */
    MESH_CHECK_NOT_SERVING = 1, /* NOT_SERVING, UNKNOWN or SERVICE_UNKNOWN */
    MESH_CHECK_FAILED = 2,      /* the call failed with a gRPC error */
    MESH_CHECK_TIMEOUT = 3,     /* no answer before the check deadline */
    MESH_CHECK_CONN_CLOSED = 4, /* the connection to the app closed or was refused */
} mesh_check_result_t;

/** Effect bits returned by the event functions. */
enum {
    MESH_READINESS_BECAME_READY = 1 << 0,
    MESH_READINESS_BECAME_NOT_READY = 1 << 1,
    /** Put the app's instances into the registry. */
    MESH_READINESS_REGISTER = 1 << 2,
    /** Remove the app's instances from the registry. */
    MESH_READINESS_DEREGISTER = 1 << 3,
};

/** The readiness counter; fields are private, read them through the functions below. */
typedef struct {
    uint32_t threshold;
    int ready;
    int registered;
    int shutting_down;
    uint32_t consecutive_failures;
    uint64_t checks;
    mesh_check_result_t last_result;
    int has_result;
    uint64_t last_check_ns;
    uint64_t since_ns; /* when `ready` last changed */
    char detail[128];  /* detail of the last failed check ("connection refused") */
    char reason[256];
} mesh_readiness_t;

/** Initializes r (not ready, not registered); threshold 0 means the default (3). */
void mesh_readiness_init(mesh_readiness_t *r, uint32_t threshold);

/** Feeds one check result at now_ns; detail (may be NULL) says more about a failure (an error
 * message). Returns the effect bits (0 when nothing changes). */
int mesh_readiness_on_check(mesh_readiness_t *r, mesh_check_result_t result, const char *detail,
                            uint64_t now_ns);

/** The sidecar is stopping: not ready, deregister (once); later checks change nothing.
 * Returns the effect bits. */
int mesh_readiness_shutdown(mesh_readiness_t *r, uint64_t now_ns);

/** Nonzero when the app is ready (/readyz answers 200). */
int mesh_readiness_is_ready(const mesh_readiness_t *r);

/** Nonzero while the app's instances are (to be) registered. */
int mesh_readiness_is_registered(const mesh_readiness_t *r);

/** Consecutive failed checks so far. */
uint32_t mesh_readiness_failures(const mesh_readiness_t *r);

/** Why the state is what it is, in words ("3 consecutive failed health checks (last: timeout)").
 */
const char *mesh_readiness_reason(const mesh_readiness_t *r);

/** The name of a check result: "serving", "not_serving", "failed", "timeout", "conn_closed". */
const char *mesh_check_result_name(mesh_check_result_t result);

/** Writes /readyz's JSON body:
 * {"ready":bool,"reason":"...","consecutive_failures":n,"threshold":n,"last_check":"..."}
 * Returns the length, or -1 if it did not fit in cap. */
int mesh_readiness_json(const mesh_readiness_t *r, char *buf, size_t cap);

/** The same object as a new jansson json_t * (NULL on OOM), for callers that add fields. */
struct json_t;
struct json_t *mesh_readiness_to_json(const mesh_readiness_t *r);

/** A /readyz handler for transport/http1_server.h (h1_handler_fn) with ud = the
 * mesh_readiness_t: writes the JSON body and returns 200 when ready, 503 when not (500 if the
 * body could not be written). */
int mesh_readiness_probe(void *ud, const h1_req_t *req, h1_body_t *b);

#endif
