/*
 * transport/grpc_client.h: an asynchronous gRPC client on a libuv loop (h2c, prior knowledge).
 *
 * The client talks to one address ("host:port") over one HTTP/2 connection at a time
 * (transport/h2_conn.h), opened on demand by the first call and again after it closed. A call
 * is one HTTP/2 stream: open it with a path, metadata and an optional deadline, send
 * length-prefixed messages, half-close, and receive each response message and then the final
 * status (from trailers or a Trailers-Only response). Connection failures and closed
 * connections end the calls with UNAVAILABLE. It is meant for the control plane (the sidecar's
 * health checks and reflection against its app): simple and copying rather than zero-copy.
 *
 * Every function must be called on the loop's thread. Callbacks run on that thread and may
 * start, cancel or send on any call, and may free the client.
 */
#ifndef MESH_GRPC_CLIENT_H
#define MESH_GRPC_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct mesh_grpc_client mesh_grpc_client_t;
typedef struct mesh_grpc_call mesh_grpc_call_t;

/** Connection events reported to the client's owner. */
typedef enum {
    /** The app answered the HTTP/2 handshake (its SETTINGS arrived): a (new) connection. */
    MESH_GRPC_CLIENT_CONNECTED = 0,
    /** The connection failed or closed; why says how ("connection refused"). */
    MESH_GRPC_CLIENT_DISCONNECTED = 1,
} mesh_grpc_client_event_t;

/** Why a connection failed or closed: a code to decide on, beside the text for people. */
typedef enum {
    MESH_GRPC_CONN_OK = 0,        /* connected (or the call's end did not come from the
                                     connection) */
    MESH_GRPC_CONN_RESOLVE = 1,   /* the app's name did not resolve */
    MESH_GRPC_CONN_REFUSED = 2,   /* the TCP connect failed (refused, unreachable) */
    MESH_GRPC_CONN_TIMEOUT = 3,   /* the TCP connect timed out */
    MESH_GRPC_CONN_HANDSHAKE = 4, /* TCP worked but the peer closed before speaking HTTP/2 */
    MESH_GRPC_CONN_LOST = 5,      /* an established connection closed or broke */
    MESH_GRPC_CONN_GOAWAY = 6,    /* the peer sent GOAWAY */
} mesh_grpc_conn_reason_t;

/** Nonzero when the reason means nothing answers on the app's port (as opposed to a port
 *  that answered and then closed). */
static inline int mesh_grpc_conn_unanswered(mesh_grpc_conn_reason_t r)
{
    return r == MESH_GRPC_CONN_RESOLVE || r == MESH_GRPC_CONN_REFUSED ||
           r == MESH_GRPC_CONN_TIMEOUT;
}

/** The name of a reason, for logs. */
const char *mesh_grpc_conn_reason_name(mesh_grpc_conn_reason_t r);

/** Owner callback for connection events: reason says why a connection went away (OK for
 *  CONNECTED), why says it in words. */
typedef void (*mesh_grpc_client_event_cb)(void *ud, mesh_grpc_client_event_t ev,
                                          mesh_grpc_conn_reason_t reason, const char *why);

/** Settings of a client; 0/NULL fields take their defaults. */
typedef struct mesh_grpc_client_cfg {
    const char *addr;            /* "host:port" or "[v6]:port"; required */
    const char *authority;       /* :authority of every call; default addr */
    uint64_t connect_timeout_ms; /* default 2000 */
    size_t max_message;          /* largest response message; default 4 MiB */
    /* TLS to the server (transport/tls_holder.h; NULL: h2c): the certificate must name tls_name,
     * or else addr's host (also sent as SNI); the holder must outlive the client */
    struct mesh_tls_holder *tls;
    const char *tls_name;
    /* a TLS handshake not done within this long after the TCP connect fails the connection
     * (its calls end UNAVAILABLE naming the timeout; counted as a failed handshake of class
     * "timeout"): a server that accepts and then says nothing. Default 10000; UINT64_MAX: none */
    uint64_t tls_handshake_timeout_ms;
    mesh_grpc_client_event_cb on_event;
    void *ud;
} mesh_grpc_client_cfg_t;

/** One metadata entry (a "-bin" key carries raw bytes: the caller base64-encodes them). */
typedef struct mesh_grpc_md {
    const char *key;
    const char *value;
} mesh_grpc_md_t;

/** What a call reports to its owner. */
typedef struct mesh_grpc_call_ops {
    /** One response message (valid during the call only). May be NULL. */
    void (*on_message)(void *ud, mesh_grpc_call_t *call, const uint8_t *msg, size_t len);
    /**
     * The call ended with a gRPC status and message ("" when none). Called exactly once per
     * call that was not cancelled; the call is invalid once it returns.
     */
    void (*on_end)(void *ud, mesh_grpc_call_t *call, int status, const char *message);
} mesh_grpc_call_ops_t;

/** Creates a client (not yet connected). NULL on bad settings or out of memory. */
mesh_grpc_client_t *mesh_grpc_client_new(uv_loop_t *loop, const mesh_grpc_client_cfg_t *cfg);

/**
 * Frees the client: the connection is closed and calls in flight are dropped without their
 * callbacks. Handles close asynchronously (keep running the loop).
 */
void mesh_grpc_client_free(mesh_grpc_client_t *c);

/** Opens the connection now if there is none (calls open it on demand anyway). */
void mesh_grpc_client_connect(mesh_grpc_client_t *c);

/** Nonzero while a connection is established (the peer's SETTINGS arrived). */
int mesh_grpc_client_connected(const mesh_grpc_client_t *c);

/** Closes the current connection (its calls end with UNAVAILABLE); the next call reconnects. */
void mesh_grpc_client_disconnect(mesh_grpc_client_t *c);

/**
 * Starts a call on path ("/pkg.Svc/Method") with n_md metadata entries and a deadline
 * (timeout_ms from now, 0 for none; the server is told with grpc-timeout). The request
 * stream stays open for mesh_grpc_call_send() until mesh_grpc_call_close_send(). Failures
 * to connect are reported later through on_end, never from inside this function. Returns
 * NULL only on bad arguments or out of memory.
 */
mesh_grpc_call_t *mesh_grpc_call_start(mesh_grpc_client_t *c, const char *path,
                                       const mesh_grpc_md_t *md, size_t n_md, uint64_t timeout_ms,
                                       const mesh_grpc_call_ops_t *ops, void *ud);

/** Queues one message (the 5-byte prefix is added). Returns 0, or -1 after close_send, after
 * the call ended, or on out of memory. */
int mesh_grpc_call_send(mesh_grpc_call_t *call, const uint8_t *msg, size_t len);

/** Half-closes the request stream (END_STREAM after the queued messages). */
void mesh_grpc_call_close_send(mesh_grpc_call_t *call);

/** Inside on_end: the connection failure that ended the call (MESH_GRPC_CONN_OK when the
 *  status came from the app or the deadline). */
mesh_grpc_conn_reason_t mesh_grpc_call_conn_reason(const mesh_grpc_call_t *call);

/** Cancels a call (RST_STREAM CANCEL): its callbacks are not called any more and the call
 * is invalid once this returns. */
void mesh_grpc_call_cancel(mesh_grpc_call_t *call);

/**
 * Convenience for a unary call: sends msg, half-closes; on_message gets the response and
 * on_end the status.
 */
mesh_grpc_call_t *mesh_grpc_unary(mesh_grpc_client_t *c, const char *path, const uint8_t *msg,
                                  size_t len, uint64_t timeout_ms, const mesh_grpc_call_ops_t *ops,
                                  void *ud);

#endif
