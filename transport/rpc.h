/*
 * transport/rpc.h: the sidecar's seam to its app, at the level of gRPC calls.
 *
 * A control actor talks to one gRPC server through this table of operations: open the
 * connection, start a call (path, deadline) under a tag of its choosing, send messages,
 * half-close, cancel. Everything that comes back (the connection going up or down, with a
 * reason code; a response message; a call's end with its status) is one mesh_rpc_event_t
 * handed to the owner's deliver callback, which turns it into an actor message. Two
 * implementations:
 *
 *   - transport/rpc_grpc.c: production, over transport/grpc_client.h on the actor's loop;
 *   - simulations/sim_app.c: a simulated app (health that flaps, reflection answers, crashes)
 *     on the simulated executor.
 *
 * Events are never delivered from inside an operation: a call that cannot reach the app ends
 * later with UNAVAILABLE and the connection's reason.
 */
#ifndef MESH_RPC_H
#define MESH_RPC_H

#include <stddef.h>
#include <stdint.h>

#include "transport/grpc_client.h"

/** What an event says. */
typedef enum {
    MESH_RPC_CONN_UP = 0,   /* the app answered the HTTP/2 handshake: a (new) connection */
    MESH_RPC_CONN_DOWN = 1, /* the connection failed or closed (reason, text) */
    MESH_RPC_MESSAGE = 2,   /* one response message of call tag (data, len) */
    MESH_RPC_END = 3,       /* call tag ended (status, text; reason when the connection ended
                               it) */
} mesh_rpc_event_kind_t;

/** One event; owned by whoever holds it (mesh_rpc_event_free). */
typedef struct mesh_rpc_event {
    mesh_rpc_event_kind_t kind;
    uint64_t tag;
    int status;                     /* END: the gRPC status */
    mesh_grpc_conn_reason_t reason; /* CONN_DOWN, END */
    char *text;                     /* CONN_DOWN: why; END: grpc-message ("" when none) */
    uint8_t *data;                  /* MESSAGE */
    size_t len;
} mesh_rpc_event_t;

/** A new event with a copy of text (may be NULL) and of data[0..len). NULL on OOM. */
mesh_rpc_event_t *mesh_rpc_event_new(mesh_rpc_event_kind_t kind, uint64_t tag, const char *text,
                                     const uint8_t *data, size_t len);

/** Frees an event (a message payload destructor too). */
void mesh_rpc_event_free(void *ev);

typedef struct mesh_rpc mesh_rpc_t;

/** Receives every event (the callee owns it). */
typedef void (*mesh_rpc_deliver_fn)(void *ud, mesh_rpc_event_t *ev);

/** The implementation's operations. */
typedef struct mesh_rpc_ops {
    /** Opens the connection now if there is none (calls open it on demand anyway). */
    void (*connect)(mesh_rpc_t *rpc);
    /** Starts a call; -1 only on bad arguments or out of memory. */
    int (*call_start)(mesh_rpc_t *rpc, uint64_t tag, const char *path, uint64_t timeout_ms);
    /** Sends one message on call tag; -1 when the call is gone or half-closed. */
    int (*call_send)(mesh_rpc_t *rpc, uint64_t tag, const uint8_t *msg, size_t len);
    /** Half-closes call tag. */
    void (*call_close_send)(mesh_rpc_t *rpc, uint64_t tag);
    /** Cancels call tag: none of its events are delivered any more. */
    void (*call_cancel)(mesh_rpc_t *rpc, uint64_t tag);
    /** Drops every call (no events) and frees the implementation. */
    void (*free)(mesh_rpc_t *rpc);
} mesh_rpc_ops_t;

/** The seam: implementations embed this first. */
struct mesh_rpc {
    const mesh_rpc_ops_t *ops;
    mesh_rpc_deliver_fn deliver;
    void *ud;
};

static inline void mesh_rpc_connect(mesh_rpc_t *r)
{
    r->ops->connect(r);
}
static inline int mesh_rpc_call_start(mesh_rpc_t *r, uint64_t tag, const char *path,
                                      uint64_t timeout_ms)
{
    return r->ops->call_start(r, tag, path, timeout_ms);
}
static inline int mesh_rpc_call_send(mesh_rpc_t *r, uint64_t tag, const uint8_t *msg, size_t len)
{
    return r->ops->call_send(r, tag, msg, len);
}
static inline void mesh_rpc_call_close_send(mesh_rpc_t *r, uint64_t tag)
{
    r->ops->call_close_send(r, tag);
}
static inline void mesh_rpc_call_cancel(mesh_rpc_t *r, uint64_t tag)
{
    r->ops->call_cancel(r, tag);
}
static inline void mesh_rpc_free(mesh_rpc_t *r)
{
    if (r)
        r->ops->free(r);
}

struct uv_loop_s;

/** The production implementation: a gRPC client of addr on loop. NULL on bad settings. */
mesh_rpc_t *mesh_rpc_grpc_new(struct uv_loop_s *loop, const char *addr, uint64_t connect_timeout_ms,
                              mesh_rpc_deliver_fn deliver, void *ud);

struct mesh_tls_holder;

/** The same over TLS when tls is given (transport/tls_holder.h: the node's upstream context;
 *  tls_name NULL: addr's host is the name the certificate must carry; handshake_timeout_ms:
 *  mesh_grpc_client_cfg_t.tls_handshake_timeout_ms, 0 its default, UINT64_MAX none). */
mesh_rpc_t *mesh_rpc_grpc_new_tls(struct uv_loop_s *loop, const char *addr,
                                  uint64_t connect_timeout_ms, struct mesh_tls_holder *tls,
                                  const char *tls_name, uint64_t handshake_timeout_ms,
                                  mesh_rpc_deliver_fn deliver, void *ud);

#endif
