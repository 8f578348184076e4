/*
 * grpc/reflection.h: the gRPC server reflection conversation, sans-I/O.
 *
 * The sidecar learns the local app's services and methods by asking its reflection service on
 * one bidi stream: list_services, then file_containing_symbol for each service, then
 * file_by_filename for every imported file the answers left out. It tries
 * grpc.reflection.v1 first and, when the app answers UNIMPLEMENTED before any response, starts
 * over on grpc.reflection.v1alpha (what grpc++ 1.51 serves). The result is a descriptor pool
 * (grpc/descriptors.h) whose model holds the listed services minus grpc.health.v1.Health
 * and the reflection services themselves.
 *
 * The driver (a libuv/h2 adapter, or a test) loops:
 *     for (;;) switch (mesh_reflect_next(r, &out)) {
 *     case MESH_REFLECT_OPEN:   open a bidi stream on out.path (after closing an earlier one)
 *     case MESH_REFLECT_SEND:   send out.data/out.len as one gRPC message on the stream
 *     case MESH_REFLECT_WAIT:   return to the loop; on a message call mesh_reflect_on_response(),
 *                               when the stream ends call mesh_reflect_on_stream_end()
 *     case MESH_REFLECT_DONE:   close the stream; mesh_reflect_take_pool()
 *     case MESH_REFLECT_FAILED: close the stream; mesh_reflect_error() says why
 *     }
 * One request is outstanding at a time. Both versions share one wire format, so the same
 * bytes serve both.
 */
#ifndef MESH_REFLECTION_H
#define MESH_REFLECTION_H

#include <stddef.h>
#include <stdint.h>

#include "grpc/descriptors.h"

/** The v1 reflection method (a bidi stream). */
#define MESH_REFLECT_V1_PATH "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
/** The v1alpha reflection method (a bidi stream). */
#define MESH_REFLECT_V1ALPHA_PATH "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"

/** What the driver should do next. */
typedef enum {
    MESH_REFLECT_OPEN = 0,
    MESH_REFLECT_SEND = 1,
    MESH_REFLECT_WAIT = 2,
    MESH_REFLECT_DONE = 3,
    MESH_REFLECT_FAILED = 4,
} mesh_reflect_action_t;

/** Output of mesh_reflect_next(); pointers stay valid until the next call on the
 * conversation. */
typedef struct {
    /** OPEN: the method path of the stream to open. */
    const char *path;
    /** SEND: the serialized ServerReflectionRequest. */
    const uint8_t *data;
    size_t len;
} mesh_reflect_out_t;

/** One reflection conversation. */
typedef struct mesh_reflect mesh_reflect_t;

/** A new conversation; host (may be NULL) goes into each request's host field. NULL when out
 * of memory. */
mesh_reflect_t *mesh_reflect_new(const char *host);

/** A conversation about one service only (the gateway's descriptor cache): no list_services;
 * file_containing_symbol for service, then file_by_filename for the imports the answers left
 * out; the pool's model holds that service alone. An error answer for the service fails the
 * conversation (it is not served there). NULL when out of memory. */
mesh_reflect_t *mesh_reflect_new_for_service(const char *host, const char *service);

/** Frees the conversation (and its pool unless taken). */
void mesh_reflect_free(mesh_reflect_t *r);

/** The next action; see the file comment. */
mesh_reflect_action_t mesh_reflect_next(mesh_reflect_t *r, mesh_reflect_out_t *out);

/** Feeds one serialized ServerReflectionResponse. Returns 0, or -1 when the conversation
 * failed on it (garbage, unexpected answer, bad descriptors). */
int mesh_reflect_on_response(mesh_reflect_t *r, const uint8_t *data, size_t len);

/** The stream ended with grpc_status (and grpc-message, may be NULL). UNIMPLEMENTED on v1
 * before any response switches to v1alpha (next() says OPEN again); any other end before
 * DONE fails the conversation. */
void mesh_reflect_on_stream_end(mesh_reflect_t *r, int grpc_status, const char *message);

/** After DONE: hands the pool over to the caller (who frees it), NULL otherwise. */
mesh_desc_pool_t *mesh_reflect_take_pool(mesh_reflect_t *r);

/** After FAILED: why. "" otherwise. */
const char *mesh_reflect_error(const mesh_reflect_t *r);

/** The method path in use (v1 or v1alpha). */
const char *mesh_reflect_path(const mesh_reflect_t *r);

/** Nonzero when the conversation failed because neither reflection version is implemented
 * (v1alpha also ended UNIMPLEMENTED before any answer): the server does not serve reflection. */
int mesh_reflect_unimplemented(const mesh_reflect_t *r);

/** Number of non-fatal problems (a service or a file the server could not describe). */
size_t mesh_reflect_warning_count(const mesh_reflect_t *r);

/** The last non-fatal problem, "" if none. */
const char *mesh_reflect_last_warning(const mesh_reflect_t *r);

/** Nonzero for the services the sidecar never registers: grpc.health.v1.Health and the
 * reflection services. */
int mesh_reflect_is_infra_service(const char *name);

#endif
