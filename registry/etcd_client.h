/*
 * registry/etcd_client.h: an etcd v3 client for the JSON gateway (`/v3/...`), built on
 * libcurl's multi interface driven by a libuv loop: sockets are watched with uv_poll_t, curl's
 * timeout with one uv_timer_t. Nothing blocks and no thread is started.
 *
 * Several endpoints: a request that cannot connect, times out, or gets "unavailable" / "no
 * leader" from etcd moves on to the next endpoint (each endpoint is tried once per request),
 * and later requests start from the endpoint that worked. With a username, the client
 * authenticates (/v3/auth/authenticate), sends the token in the Authorization header, and
 * authenticates again when etcd says the token is invalid. TLS uses curl's options (CA file,
 * client certificate and key).
 *
 * Callbacks run on the loop thread. From inside a callback you may start, cancel and free
 * anything (starting and freeing are deferred until curl has returned).
 */
#ifndef ETCD_CLIENT_H
#define ETCD_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/** Outcomes passed to callbacks. */
enum {
    ETCD_OK = 0,
    ETCD_ERR_NOMEM = -1,
    ETCD_ERR_UNAVAILABLE = -2, /* no endpoint answered */
    ETCD_ERR_TIMEOUT = -3,     /* the request timed out on every endpoint tried */
    ETCD_ERR_SERVER = -4,      /* etcd answered with an error (the body has it) */
    ETCD_ERR_AUTH = -5,        /* authentication failed */
    ETCD_ERR_CLOSED = -6,      /* a watch stream ended */
};

typedef struct etcd_client etcd_client_t;
typedef struct etcd_req etcd_req_t;

/** Client settings; strings are copied. */
typedef struct etcd_client_cfg {
    const char *endpoints; /* "http://127.0.0.1:2379[,URL...]" */
    const char *username;  /* NULL: no authentication */
    const char *password;
    const char *ca_file;         /* TLS: CA bundle to verify etcd (NULL: system default) */
    const char *cert_file;       /* TLS client certificate (PEM), NULL for none */
    const char *key_file;        /* TLS client key (PEM) */
    uint32_t request_timeout_ms; /* per attempt, unary requests; default 5000 */
    uint32_t connect_timeout_ms; /* default 1000 */
} etcd_client_cfg_t;

/**
 * Called once when a unary request finished: err ETCD_OK with etcd's 200 body, ETCD_ERR_SERVER
 * with etcd's error body, or another ETCD_ERR_* (body empty). The body is borrowed.
 */
typedef void (*etcd_done_cb)(void *ud, int err, const char *body, size_t len);

/** Called with each complete line of a watch (or other streaming) answer; borrowed. */
typedef void (*etcd_line_cb)(void *ud, const char *line, size_t len);

/** Called once when a stream ended (ETCD_ERR_CLOSED) or could not start (another error). */
typedef void (*etcd_close_cb)(void *ud, int err, const char *body, size_t len);

/** Creates a client on loop. Returns NULL on bad settings (no endpoint) or OOM. */
etcd_client_t *etcd_client_new(uv_loop_t *loop, const etcd_client_cfg_t *cfg);

/**
 * Cancels every request (no callback runs) and frees the client; its handles are released
 * when the loop runs next. Free the views and registrations using it first.
 */
void etcd_client_free(etcd_client_t *c);

/** POSTs body (copied) to path ("/v3/kv/range"); cb runs once. NULL on OOM. */
etcd_req_t *etcd_client_post(etcd_client_t *c, const char *path, const char *body, etcd_done_cb cb,
                             void *ud);

/**
 * Opens a streaming request (the watch: path "/v3/watch", body a create_request); on_line runs
 * per line, on_close once at the end. The request carries "hasleader" metadata so etcd cancels
 * the watch when its member loses the leader.
 */
etcd_req_t *etcd_client_stream(etcd_client_t *c, const char *path, const char *body,
                               etcd_line_cb on_line, etcd_close_cb on_close, void *ud);

/**
 * Cancels a request whose final callback has not run yet; its callbacks will not run. A request
 * is gone once its done / on_close callback returned: drop the pointer there.
 */
void etcd_req_cancel(etcd_req_t *r);

/** The endpoint requests currently start from. */
const char *etcd_client_endpoint(const etcd_client_t *c);

/** Who etcd sees this client as, for logs: "user NAME", "the client certificate FILE", or
 *  NULL without authentication. */
const char *etcd_client_principal(const etcd_client_t *c);

/** Name of an outcome, for logs. */
const char *etcd_strerror(int err);

#endif
