/*
 * transport/http_fetch.h: a small asynchronous HTTP/1.1 (and HTTPS) client on one libuv loop.
 *
 * It drives libcurl's multi socket API (common/curl_lib.h: libcurl is opened on first use,
 * never linked) from the loop that created the fetcher: one uv_poll per socket curl asks to
 * watch, one uv_timer for curl's timeout. Nothing blocks the loop (name resolution runs in
 * curl's resolver thread). Connections are kept and reused per fetcher, so one fetcher per loop
 * (a worker's or the control loop) is the intended use.
 *
 * A request has a method, a URL (http:// or https:// only; redirects are not followed and
 * proxy environment variables are ignored), header fields, an optional body, a timeout for the
 * whole exchange and a bound on the response size. Its callback runs exactly once on the
 * loop, never from inside mesh_http_fetch_request(), unless the request is cancelled first
 * or the fetcher is closed: with the HTTP status (any status, 1xx-5xx, is a response) or a
 * negative MESH_HTTP_ERR_* code, the response header fields, the body and a sentence for logs.
 *
 * Every function must be called on the loop's thread. Callbacks may start and cancel requests
 * and may close the fetcher.
 */
#ifndef MESH_HTTP_FETCH_H
#define MESH_HTTP_FETCH_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct mesh_http_fetch mesh_http_fetch_t;
typedef struct mesh_http_req mesh_http_req_t;

/** Why a request produced no HTTP response (the callback's negative status). */
typedef enum {
    MESH_HTTP_ERR_NOMEM = -1,       /* out of memory, or libcurl could not be loaded */
    MESH_HTTP_ERR_BAD_REQUEST = -2, /* bad URL, scheme or header field (nothing was sent) */
    MESH_HTTP_ERR_CONNECT = -3,     /* name did not resolve, connection refused or unreachable */
    MESH_HTTP_ERR_TIMEOUT = -4,     /* no complete response within the timeout */
    MESH_HTTP_ERR_TOO_LARGE = -5,   /* the response (headers or body) exceeded its bound */
    MESH_HTTP_ERR_PROTOCOL = -6,    /* the server closed early or spoke something else */
    MESH_HTTP_ERR_TLS = -7,         /* TLS handshake or certificate verification failed */
} mesh_http_err_t;

/** A short name for a MESH_HTTP_ERR_* code ("timeout", "connect", ...). */
const char *mesh_http_err_name(int err);

/** One request header field. Values with CR, LF or NUL are refused (MESH_HTTP_ERR_BAD_REQUEST). */
typedef struct mesh_http_header {
    const char *name;
    const char *value;
} mesh_http_header_t;

/** A request; everything is copied by mesh_http_fetch_request(). 0/NULL take the defaults. */
typedef struct mesh_http_request {
    const char *method; /* default "GET", or "POST" when a body is given */
    const char *url;    /* required: http://host[:port]/path or https://... */
    const mesh_http_header_t *headers;
    size_t n_headers;
    const void *body; /* sent as is (no Content-Type is added: pass one in headers) */
    size_t body_len;
    uint64_t timeout_ms;         /* the whole exchange, connect included; default 5000 */
    uint64_t connect_timeout_ms; /* default min(timeout_ms, 2000) */
    size_t max_response;         /* most body bytes accepted; default 1 MiB */
    const char *ca_file;         /* https: CA bundle instead of the system's */
} mesh_http_request_t;

/** The response header fields, valid during the callback only. */
typedef struct mesh_http_response mesh_http_response_t;

/** The first value of header field name (case-insensitive), or NULL. Values are trimmed. */
const char *mesh_http_response_header(const mesh_http_response_t *r, const char *name);

/** The reason phrase of the status line ("Forbidden"), "" when none (HTTP/2, an error). */
const char *mesh_http_response_reason(const mesh_http_response_t *r);

/** Number of header fields of the response (0 when there was none). */
size_t mesh_http_response_header_count(const mesh_http_response_t *r);

/** Field i (< count): its name and value. */
void mesh_http_response_header_at(const mesh_http_response_t *r, size_t i, const char **name,
                                  const char **value);

/**
 * The outcome of a request: status is the HTTP status (> 0) or a MESH_HTTP_ERR_* code (< 0).
 * resp is never NULL (no fields on an error); body is NUL-terminated (len excludes the NUL; ""
 * on an error); error is "" on a response, else a sentence naming the cause. The request
 * handle is invalid once the callback returns.
 */
typedef void (*mesh_http_fetch_cb)(void *ctx, int status, const mesh_http_response_t *resp,
                                   const char *body, size_t len, const char *error);

/** A fetcher on loop. NULL when libcurl cannot be loaded (logged) or out of memory. */
mesh_http_fetch_t *mesh_http_fetch_new(uv_loop_t *loop);

/**
 * Starts a request. Returns its handle, or NULL only when out of memory (bad requests are
 * reported through the callback, on the next loop turn).
 */
mesh_http_req_t *mesh_http_fetch_request(mesh_http_fetch_t *f, const mesh_http_request_t *req,
                                         mesh_http_fetch_cb cb, void *ctx);

/** Cancels a request in flight: its callback is not called and its handle is invalid. Calling
 * it for a request inside that request's own callback does nothing. */
void mesh_http_fetch_cancel(mesh_http_req_t *r);

/** Number of requests in flight (started, callback not yet run). */
size_t mesh_http_fetch_pending(const mesh_http_fetch_t *f);

/**
 * Closes the fetcher: requests in flight are dropped without their callbacks, connections are
 * closed, and the memory is freed once libuv closed the handles (keep running the loop).
 * Safe inside a callback.
 */
void mesh_http_fetch_close(mesh_http_fetch_t *f);

#endif
