/*
 * gateway/gw_front.h: the gateway's front end on one worker: an HTTP/1.1 and h2c listener
 * (transport/h1_server.h, SO_REUSEPORT so every worker listens on the same port; HTTP/2 by
 * prior knowledge or Upgrade: h2c, transport/h2_srv.h) whose requests are matched against the
 * current API bundle's routes (gateway/gw_api.h), transcoded to a gRPC request
 * (gateway/gw_transcode.h), sent through the worker's proxy engine with the upstream-call API
 * (transport/proxy_call.h: same filters, routes, pool, retries and deadlines as gRPC clients get)
 * and answered with JSON: one body for unary calls, newline-delimited JSON (or server-sent events
 * when the client accepts text/event-stream) for server streams, flushed per message with
 * backpressure to the upstream.
 *
 * Everything runs on the worker's loop thread. Buffers live per request object and request
 * objects are reused per connection, so a warmed-up connection allocates only what the JSON
 * library and the transcoder need per request.
 */
#ifndef GW_FRONT_H
#define GW_FRONT_H

#include <stdint.h>
#include <uv.h>

#include "gateway/gw_api.h"
#include "transport/h1_server.h"
#include "transport/proxy.h"

#define GW_FRONT_MAX_HEADERS 64
#define GW_FRONT_HEADER_LEN  100

/** Settings of a front end; zeros mean the defaults. */
typedef struct gw_front_config {
    const char *host; /* listen address (IPv4 or IPv6 literal) */
    int port;         /* 0: a free port (then every worker must be given the first's) */
    h1_srv_config_t http;
    uint64_t default_timeout_ms; /* deadline of calls without Grpc-Timeout; 0: none */
    uint64_t max_timeout_ms;     /* cap on a client's Grpc-Timeout; 0: none */
    char *const *headers;        /* allow-list: request headers passed as metadata under their
                                    own names (checked by gw_header_name_check; copied: at most
                                    GW_FRONT_MAX_HEADERS of GW_FRONT_HEADER_LEN bytes) */
    size_t n_headers;
    int worker_index; /* for logs */
} gw_front_config_t;

typedef struct gw_front gw_front_t;

/** A front end on loop calling through engine, listening. NULL when it cannot listen
 *  (logged). */
gw_front_t *gw_front_new(uv_loop_t *loop, mesh_proxy_worker_t *engine,
                         const gw_front_config_t *cfg);

/** The port listened on. */
int gw_front_port(const gw_front_t *f);

/** Takes over a reference to api (NULL: none) for requests from now on. */
void gw_front_set_api(gw_front_t *f, gw_api_t *api);

/** Bytes of client request streams (client-streaming and bidi bodies) the front end holds now:
 *  lines not yet sent plus what their calls buffer. Bounded per stream by backpressure. */
uint64_t gw_front_req_buffered(const gw_front_t *f);

/** Stops accepting; requests begun are answered; then done(arg). */
void gw_front_drain(gw_front_t *f, void (*done)(void *), void *arg);

/** Closes everything now (calls in flight are cancelled) and frees f (asynchronously: keep
 *  the loop running). */
void gw_front_free(gw_front_t *f);

#endif
