/*
 * transport/rpc_grpc.c: the production implementation of the app seam (transport/rpc.h) over
 * the gRPC client (transport/grpc_client.h), plus the event helpers every implementation
 * shares. Calls are found by tag in a short list (a sidecar has at most a few calls open).
 */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "transport/rpc.h"

mesh_rpc_event_t *mesh_rpc_event_new(mesh_rpc_event_kind_t kind, uint64_t tag, const char *text,
                                     const uint8_t *data, size_t len)
{
    mesh_rpc_event_t *ev = calloc(1, sizeof(*ev));
    if (!ev)
        return NULL;
    ev->kind = kind;
    ev->tag = tag;
    ev->text = strdup(text ? text : "");
    ev->data = malloc(len ? len : 1);
    if (!ev->text || !ev->data) {
        mesh_rpc_event_free(ev);
        return NULL;
    }
    if (len)
        memcpy(ev->data, data, len);
    ev->len = len;
    return ev;
}

void mesh_rpc_event_free(void *p)
{
    mesh_rpc_event_t *ev = p;
    if (!ev)
        return;
    free(ev->text);
    free(ev->data);
    free(ev);
}

typedef struct grpc_rpc grpc_rpc_t;

typedef struct rpc_call {
    grpc_rpc_t *rpc;
    uint64_t tag;
    mesh_grpc_call_t *call;
    struct rpc_call *next;
} rpc_call_t;

struct grpc_rpc {
    mesh_rpc_t super;
    mesh_grpc_client_t *client;
    rpc_call_t *calls;
};

static void deliver(grpc_rpc_t *g, mesh_rpc_event_t *ev)
{
    if (ev)
        g->super.deliver(g->super.ud, ev);
    else
        mesh_error("sidecar", "out of memory: an event of the app connection is lost");
}

static rpc_call_t **find(grpc_rpc_t *g, uint64_t tag)
{
    rpc_call_t **pp = &g->calls;
    while (*pp && (*pp)->tag != tag)
        pp = &(*pp)->next;
    return pp;
}

static void on_message(void *ud, mesh_grpc_call_t *call, const uint8_t *msg, size_t len)
{
    rpc_call_t *c = ud;
    deliver(c->rpc, mesh_rpc_event_new(MESH_RPC_MESSAGE, c->tag, NULL, msg, len));
}

static void on_end(void *ud, mesh_grpc_call_t *call, int status, const char *message)
{
    rpc_call_t *c = ud;
    grpc_rpc_t *g = c->rpc;
    mesh_rpc_event_t *ev = mesh_rpc_event_new(MESH_RPC_END, c->tag, message, NULL, 0);
    if (ev) {
        ev->status = status;
        ev->reason = mesh_grpc_call_conn_reason(call);
    }
    rpc_call_t **pp = find(g, c->tag);
    if (*pp == c)
        *pp = c->next;
    free(c);
    deliver(g, ev);
}

static const mesh_grpc_call_ops_t call_ops = {on_message, on_end};

static void on_event(void *ud, mesh_grpc_client_event_t ev, mesh_grpc_conn_reason_t reason,
                     const char *why)
{
    grpc_rpc_t *g = ud;
    mesh_rpc_event_t *e = mesh_rpc_event_new(
        ev == MESH_GRPC_CLIENT_CONNECTED ? MESH_RPC_CONN_UP : MESH_RPC_CONN_DOWN, 0, why, NULL, 0);
    if (e)
        e->reason = reason;
    deliver(g, e);
}

static void op_connect(mesh_rpc_t *r)
{
    mesh_grpc_client_connect(((grpc_rpc_t *)r)->client);
}

static int op_call_start(mesh_rpc_t *r, uint64_t tag, const char *path, uint64_t timeout_ms)
{
    grpc_rpc_t *g = (grpc_rpc_t *)r;
    rpc_call_t *c = calloc(1, sizeof(*c));
    if (!c)
        return -1;
    c->rpc = g;
    c->tag = tag;
    c->call = mesh_grpc_call_start(g->client, path, NULL, 0, timeout_ms, &call_ops, c);
    if (!c->call) {
        free(c);
        return -1;
    }
    c->next = g->calls;
    g->calls = c;
    return 0;
}

static int op_call_send(mesh_rpc_t *r, uint64_t tag, const uint8_t *msg, size_t len)
{
    rpc_call_t *c = *find((grpc_rpc_t *)r, tag);
    return c ? mesh_grpc_call_send(c->call, msg, len) : -1;
}

static void op_call_close_send(mesh_rpc_t *r, uint64_t tag)
{
    rpc_call_t *c = *find((grpc_rpc_t *)r, tag);
    if (c)
        mesh_grpc_call_close_send(c->call);
}

static void op_call_cancel(mesh_rpc_t *r, uint64_t tag)
{
    grpc_rpc_t *g = (grpc_rpc_t *)r;
    rpc_call_t **pp = find(g, tag);
    rpc_call_t *c = *pp;
    if (!c)
        return;
    *pp = c->next;
    mesh_grpc_call_cancel(c->call);
    free(c);
}

static void op_free(mesh_rpc_t *r)
{
    grpc_rpc_t *g = (grpc_rpc_t *)r;
    mesh_grpc_client_free(g->client); /* drops the calls without callbacks */
    while (g->calls) {
        rpc_call_t *c = g->calls;
        g->calls = c->next;
        free(c);
    }
    free(g);
}

static const mesh_rpc_ops_t grpc_ops = {
    .connect = op_connect,
    .call_start = op_call_start,
    .call_send = op_call_send,
    .call_close_send = op_call_close_send,
    .call_cancel = op_call_cancel,
    .free = op_free,
};

mesh_rpc_t *mesh_rpc_grpc_new(struct uv_loop_s *loop, const char *addr, uint64_t connect_timeout_ms,
                              mesh_rpc_deliver_fn deliver_fn, void *ud)
{
    return mesh_rpc_grpc_new_tls(loop, addr, connect_timeout_ms, NULL, NULL, 0, deliver_fn, ud);
}

mesh_rpc_t *mesh_rpc_grpc_new_tls(struct uv_loop_s *loop, const char *addr,
                                  uint64_t connect_timeout_ms, struct mesh_tls_holder *tls,
                                  const char *tls_name, uint64_t handshake_timeout_ms,
                                  mesh_rpc_deliver_fn deliver_fn, void *ud)
{
    grpc_rpc_t *g = calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    mesh_grpc_client_cfg_t gc = {.addr = addr,
                                 .connect_timeout_ms = connect_timeout_ms,
                                 .on_event = on_event,
                                 .ud = g,
                                 .tls = tls,
                                 .tls_name = tls_name,
                                 .tls_handshake_timeout_ms = handshake_timeout_ms};
    g->client = mesh_grpc_client_new(loop, &gc);
    if (!g->client) {
        free(g);
        return NULL;
    }
    g->super.ops = &grpc_ops;
    g->super.deliver = deliver_fn;
    g->super.ud = ud;
    return &g->super;
}
