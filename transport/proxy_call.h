/*
 * transport/proxy_call.h: the upstream-call API of the proxy engine.
 *
 * A front end other than the engine's own HTTP/2 listener (the HTTP/JSON gateway, on the same
 * worker loop) starts gRPC calls here. Such a call is a call like any other: the worker's
 * filters (the policy chain) see it in on_call with the front end's client address, it is
 * routed by its path through the worker's routing table (or the default upstream), balanced,
 * sent over the worker's upstream pool, retried when it provably never reached an app, bounded
 * by its deadline and counted in the worker's stats and call summaries. The front end sends
 * request bytes (gRPC framed) and gets the response through a small table of callbacks (the
 * downstream interface), reading response bytes from the call's queue and consuming them when
 * it has passed them on, so a slow HTTP client slows the upstream (flow control end to end).
 *
 * Everything here runs on the worker's loop thread. Callbacks never run inside the functions
 * below except mesh_proxy_call_start() (on_head / on_data cannot happen there; a call refused
 * at once gets on_end on a later loop turn, like every on_end).
 */
#ifndef MESH_PROXY_CALL_H
#define MESH_PROXY_CALL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "transport/proxy.h"

/** One request metadata field for mesh_proxy_call_start(). */
typedef struct mesh_proxy_field {
    const char *name; /* lower case; not a pseudo-field, hop-by-hop field, content-type, te,
                         grpc-timeout or grpc-status (the engine writes those) */
    size_t name_len;
    const char *value;
    size_t value_len;
} mesh_proxy_field_t;

/** A call to start. Strings are copied; peer must stay valid until on_end or cancel. */
typedef struct mesh_proxy_call_req {
    const char *path; /* "/pkg.Service/Method" */
    size_t path_len;
    const char *authority; /* NULL: the upstream's address */
    size_t authority_len;
    const mesh_proxy_field_t *fields; /* request metadata */
    size_t n_fields;
    const struct sockaddr *peer; /* the front end's client */
    uint64_t timeout_ms;         /* the deadline, from now; 0: none */
} mesh_proxy_call_req_t;

/**
 * The downstream interface: what the engine tells a front end about its call. ud is the one
 * given to mesh_proxy_call_start().
 * on_head: the upstream's response headers arrived (read them with mesh_proxy_call_resp_field);
 *   end_stream 1: a Trailers-Only response (on_end follows with its status).
 * on_data: response bytes are queued (mesh_proxy_call_resp_peek / _consume), also again later
 *   for more.
 * on_end: the call is over, every response byte consumed: status is the gRPC status (the
 *   upstream's, or the mesh's own with a message beginning "meshd:"), message its
 *   grpc-message (decoded, message_len bytes). The upstream's trailers can be read during
 *   on_end (mesh_proxy_call_resp_field with trailers 1). After on_end returns the call is gone.
 * on_req_drain (may be NULL): after mesh_proxy_call_send() returned 1, the request bytes
 *   buffered fell below half the stream buffer.
 * peer_identity (may be NULL): what the front end's client proved with its TLS certificate
 *   (common/peer_id.h), or NULL; the object must stay valid until on_end or cancel. The
 *   filters read it through mesh_proxy_call_client_identity() (transport/proxy.h), as they read
 *   the HTTP/2 listener's.
 */
typedef struct mesh_proxy_downstream {
    void (*on_head)(void *ud, mesh_proxy_call_t *c, int end_stream);
    void (*on_data)(void *ud, mesh_proxy_call_t *c);
    void (*on_end)(void *ud, mesh_proxy_call_t *c, int status, const char *message,
                   size_t message_len);
    void (*on_req_drain)(void *ud, mesh_proxy_call_t *c);
    const struct mesh_peer_id *(*peer_identity)(void *ud, const mesh_proxy_call_t *c);
} mesh_proxy_downstream_t;

/**
 * Starts a call on worker w. *out is set to the call before anything else happens (a filter
 * may already look at it). Returns 0, or -1 when out of memory or a field is not acceptable
 * (then no callback follows and *out is NULL). The call then runs the filters, is routed and
 * sent; its request bytes go in with mesh_proxy_call_send().
 */
int mesh_proxy_call_start(mesh_proxy_worker_t *w, const mesh_proxy_call_req_t *req,
                          const mesh_proxy_downstream_t *ops, void *ud, mesh_proxy_call_t **out);

/**
 * Request bytes (gRPC length-prefixed messages), copied; end 1 ends the request. Returns 0,
 * 1 when the bytes buffered reach the stream buffer (they were taken; wait for on_req_drain
 * before sending more), or -1 when the call no longer takes bytes (it is ending).
 */
int mesh_proxy_call_send(mesh_proxy_call_t *c, const void *data, size_t len, int end);

/** The next contiguous response bytes not yet consumed: sets *data, returns their length
 *  (0: none queued now). */
size_t mesh_proxy_call_resp_peek(mesh_proxy_call_t *c, const uint8_t **data);

/** The front end passed on n response bytes (n at most what peek returned): their
 *  flow-control credit goes back to the upstream. */
void mesh_proxy_call_resp_consume(mesh_proxy_call_t *c, size_t n);

/** The i-th field of the upstream's response headers (trailers 0) or trailers (1): 1 with
 *  name and value set (pseudo-fields skipped: 0), -1 past the end. */
int mesh_proxy_call_resp_field(const mesh_proxy_call_t *c, int trailers, size_t i,
                               const char **name, size_t *name_len, const char **value,
                               size_t *value_len);

/** Request bytes the call holds (taken by mesh_proxy_call_send, not yet acknowledged by the
 *  upstream, or retained for a retry). */
size_t mesh_proxy_call_req_buffered(const mesh_proxy_call_t *c);

/** The front end lets go of the call before on_end (its client left): the upstream call is
 *  cancelled, no callback follows. */
void mesh_proxy_call_cancel(mesh_proxy_call_t *c);

#endif
