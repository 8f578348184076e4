/*
 * transport/proxy_local.c: calls the proxy worker answers itself (transport/proxy_local.h).
 *
 * A local call is a pxy_stream like any other on its client side (HTTP/2 or the upstream-call
 * API): its request bytes land in ps->req.q and its response goes out through ps->resp.q and
 * the front end's operations. Instead of an upstream, the request queue is drained here into a
 * gRPC de-framer whose whole messages go to the handler, and the handler's messages and status
 * are written as a gRPC response (headers, length-prefixed messages, trailers; Trailers-Only
 * when the handler answers with a status alone). The request bytes are not retained (nothing is
 * ever retried), so each byte handed on gives its flow-control credit back to the client.
 */
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "transport/grpc_status.h"
#include "transport/proxy_internal.h"

#define ACTOR "proxy"

/** A local service's default largest request message. */
#define LOCAL_MAX_MESSAGE (64u * 1024)

int mesh_proxy_worker_add_local(mesh_proxy_worker_t *w, const mesh_local_service_t *s)
{
    if (!s || !s->path || s->path[0] != '/' || !s->ops || !s->ops->on_open || !s->ops->on_close ||
        w->n_locals == MESH_LOCAL_MAX_SERVICES)
        return -1;
    size_t sl = strlen(s->path);
    w->local_len[w->n_locals] = sl;
    w->locals[w->n_locals++] = *s;
    for (unsigned c = 0; c < 256; c++)           /* ("/" alone is a prefix of every path) */
        if (sl == 1 || c == (uint8_t)s->path[1]) /* (path[1] is NUL when sl == 1) */
            w->local_first[c >> 3] |= (uint8_t)(1u << (c & 7));
    w->n_locals_early += s->before_filters != 0;
    return 0;
}

/* The local service whose path matches (exactly, or as a prefix ending in '/'). */
static const mesh_local_service_t *local_match(const mesh_proxy_worker_t *w, const char *path,
                                               size_t pl, int early)
{
    for (int i = 0; i < w->n_locals; i++) {
        const mesh_local_service_t *s = &w->locals[i];
        size_t sl = w->local_len[i];
        if ((s->before_filters != 0) != (early != 0) || pl < sl)
            continue;
        if (s->path[sl - 1] == '/' ? pl > sl && memcmp(path, s->path, sl) == 0
                                   : pl == sl && memcmp(path, s->path, sl) == 0)
            return s;
    }
    return NULL;
}

/* Ends a local call with the engine's own status (a refused or broken request). */
static void local_fail(pxy_stream_t *ps, int code, const char *msg)
{
    ps->local_finished = 1;
    ps->local_ended = 1;
    pxy_stream_fail(ps, code, "%s", msg);
}

static int on_local_message(void *arg, int compressed, const uint8_t *msg, size_t len)
{
    pxy_stream_t *ps = arg;
    if (ps->local_finished)
        return 1;
    if (compressed) {
        local_fail(ps, MESH_GRPC_UNIMPLEMENTED,
                   "meshd: compressed messages are not accepted by local services");
        return 1;
    }
    if (ps->local->ops->on_message)
        ps->local->ops->on_message(ps->local->ctx, ps->local_state, ps, msg, len);
    return ps->local_finished ? 1 : 0;
}

int pxy_local_try(pxy_stream_t *ps, int early)
{
    mesh_proxy_worker_t *w = ps->w;
    if ((early ? w->n_locals_early : w->n_locals - w->n_locals_early) == 0)
        return 0; /* (per routed call: nothing of this kind is served locally) */
    size_t pl = 0;
    const char *path = pxy_stream_path(ps, &pl);
    if (!path)
        return 0;
    uint8_t c = pl > 1 ? (uint8_t)path[1] : 0;
    if (!(w->local_first[c >> 3] & (1u << (c & 7))))
        return 0; /* (most calls: no local path starts like this one) */
    const mesh_local_service_t *s = local_match(w, path, pl, early);
    if (!s)
        return 0;
    pxy_stream_parse_path(ps);
    ps->local = s;
    ps->local_state = NULL;
    ps->req.q.retain = 0; /* nothing is retried: each byte handed on is credit for the client */
    mesh_chunkq_commit(&ps->req.q);
    mesh_grpc_deframer_init(&ps->local_dfr, s->max_message ? s->max_message : LOCAL_MAX_MESSAGE,
                            on_local_message, ps);
    pxy_list_push(&w->local_calls, &ps->local_link);
    if (s->ops->on_open(s->ctx, ps, path, pl, &ps->local_state) != 0) {
        local_fail(ps, MESH_GRPC_UNAVAILABLE, "meshd: local service unavailable");
        return 1;
    }
    pxy_local_feed(ps);
    return 1;
}

void pxy_local_feed(pxy_stream_t *ps)
{
    if (!ps->local || ps->local_ended)
        return;
    while (!ps->local_finished && ps->req.q.unsent > 0) {
        mesh_chunk_t *ch;
        const uint8_t *d;
        size_t n = mesh_chunkq_peek(&ps->req.q, &ch, &d);
        if (n == 0)
            break;
        mesh_chunk_ref(ch); /* the handler may end the call (and drop the queue) meanwhile */
        int rc = mesh_grpc_deframer_feed(&ps->local_dfr, d, n);
        mesh_chunk_unref(ch);
        if (ps->local_finished)
            break;
        mesh_chunkq_advance(&ps->req.q, n);
        if (rc == -1) {
            local_fail(ps, MESH_GRPC_RESOURCE_EXHAUSTED,
                       "meshd: request message too large or malformed for a local service");
            return;
        }
        if (rc == -2) {
            local_fail(ps, MESH_GRPC_RESOURCE_EXHAUSTED, "meshd: out of memory");
            return;
        }
    }
    if (ps->local_finished) {
        mesh_chunkq_discard(&ps->req.q); /* what is left is not read: credit it back */
        return;
    }
    if (!ps->req.q.eof || ps->req.q.unsent > 0)
        return;
    ps->local_ended = 1;
    if (!mesh_grpc_deframer_idle(&ps->local_dfr)) {
        local_fail(ps, MESH_GRPC_INTERNAL, "meshd: request ended inside a message");
        return;
    }
    if (ps->local->ops->on_end)
        ps->local->ops->on_end(ps->local->ctx, ps->local_state, ps);
}

void pxy_local_close(pxy_stream_t *ps)
{
    const mesh_local_service_t *s = ps->local;
    if (!s)
        return;
    ps->local = NULL;
    ps->local_finished = 1;
    pxy_list_remove(&ps->local_link);
    mesh_grpc_deframer_destroy(&ps->local_dfr);
    s->ops->on_close(s->ctx, ps->local_state);
    ps->local_state = NULL;
}

/* Wakes every open local call (each once, also when calls end while others are woken). */
static void wake_all(mesh_proxy_worker_t *w, mesh_local_wake_t why)
{
    pxy_link_t todo;
    pxy_list_init(&todo);
    while (!pxy_list_empty(&w->local_calls)) { /* move them all to todo */
        pxy_link_t *l = w->local_calls.next;
        pxy_list_remove(l);
        pxy_list_push(&todo, l);
    }
    while (!pxy_list_empty(&todo)) {
        pxy_link_t *l = todo.next;
        pxy_list_remove(l);
        pxy_list_push(&w->local_calls, l);
        pxy_stream_t *ps = PXY_CONTAINER(l, pxy_stream_t, local_link);
        if (!ps->local_finished && ps->local->ops->on_wake)
            ps->local->ops->on_wake(ps->local->ctx, ps->local_state, ps, why);
    }
}

void pxy_local_routes_changed(mesh_proxy_worker_t *w, const mesh_routes_t *before)
{
    for (int i = 0; i < w->n_locals; i++)
        if (w->locals[i].ops->on_routes)
            w->locals[i].ops->on_routes(w->locals[i].ctx, before, w->routes);
    wake_all(w, MESH_LOCAL_WAKE_ROUTES);
}

void mesh_proxy_worker_end_local_calls(mesh_proxy_worker_t *w)
{
    wake_all(w, MESH_LOCAL_WAKE_GOAWAY);
}

void mesh_proxy_worker_stop_serving(mesh_proxy_worker_t *w)
{
    if (w->not_serving)
        return;
    w->not_serving = 1;
    wake_all(w, MESH_LOCAL_WAKE_DRAIN);
}

/* ---- what a handler can do ------------------------------------------------------------------ */

/* Whether the call still takes a response from its handler. */
static int can_answer(const pxy_stream_t *ps)
{
    return ps->local && !ps->local_finished && ps->down && !ps->failing && !ps->resp_done &&
           ps->trailers == PXY_TRAILERS_NONE;
}

/* The response headers of a local call (before its first message, or Trailers-Only). */
static int add_head(pxy_stream_t *ps)
{
    return pxy_stream_add_resp_field(ps, 0, ":status", 7, "200", 3) |
           pxy_stream_add_resp_field(ps, 0, "content-type", 12, "application/grpc", 16);
}

/* Adds grpc-status and grpc-message to the headers (trailers 0) or the trailers (1). */
static int add_status(pxy_stream_t *ps, int trailers, int status, const char *message)
{
    char st[12], enc[600];
    int sl = snprintf(st, sizeof(st), "%d", status);
    int rc = pxy_stream_add_resp_field(ps, trailers, "grpc-status", 11, st, (size_t)sl);
    if (message && message[0]) {
        long el = mesh_grpc_message_encode(message, strlen(message), enc, sizeof(enc));
        if (el < 0) /* too long: the message cut where it fits */
            el = mesh_grpc_message_encode(message, sizeof(enc) / 3 - 1, enc, sizeof(enc));
        if (el > 0)
            rc |= pxy_stream_add_resp_field(ps, trailers, "grpc-message", 12, enc, (size_t)el);
    }
    return rc;
}

int mesh_local_call_send(mesh_local_call_t *ps, const uint8_t *msg, size_t len)
{
    if (!can_answer(ps) || len > UINT32_MAX)
        return -1;
    if (!ps->resp_started) {
        if (add_head(ps) != 0) {
            local_fail(ps, MESH_GRPC_RESOURCE_EXHAUSTED, "meshd: out of memory");
            return -1;
        }
        ps->dops->respond_head(ps, 0);
        if (!can_answer(ps))
            return -1;
    }
    uint8_t prefix[MESH_GRPC_PREFIX_LEN];
    mesh_grpc_frame_prefix(prefix, 0, (uint32_t)len);
    if (mesh_chunkq_append(&ps->resp.q, prefix, sizeof(prefix)) < 0 ||
        mesh_chunkq_append(&ps->resp.q, msg, len) < 0) {
        local_fail(ps, MESH_GRPC_RESOURCE_EXHAUSTED, "meshd: out of memory");
        return -1;
    }
    ps->resp_bytes += sizeof(prefix) + len;
    ps->dops->resp_ready(ps);
    return ps->resp.q.buffered >= ps->w->cfg.stream_buffer ? 1 : 0;
}

void mesh_local_call_finish(mesh_local_call_t *ps, int status, const char *message)
{
    if (!can_answer(ps)) {
        if (ps->local)
            ps->local_finished = 1;
        return;
    }
    ps->local_finished = 1;
    ps->final_status = status;
    uv_timer_stop(&ps->timer);
    if (!ps->resp_started) { /* Trailers-Only */
        if (add_head(ps) != 0 || add_status(ps, 0, status, message) != 0) {
            pxy_stream_fail(ps, MESH_GRPC_RESOURCE_EXHAUSTED, "meshd: out of memory");
            return;
        }
        mesh_chunkq_discard(&ps->req.q);
        ps->dops->respond_head(ps, 1);
        return;
    }
    if (add_status(ps, 1, status, message) != 0) {
        pxy_stream_fail(ps, MESH_GRPC_RESOURCE_EXHAUSTED, "meshd: out of memory");
        return;
    }
    mesh_chunkq_discard(&ps->req.q);
    ps->trailers = PXY_TRAILERS_FORWARD;
    ps->resp.q.eof = 1;
    ps->dops->resp_ready(ps);
}

const mesh_routes_t *mesh_local_call_routes(const mesh_local_call_t *ps)
{
    return ps->w->routes;
}

int mesh_local_call_draining(const mesh_local_call_t *ps)
{
    return ps->w->not_serving || ps->w->draining;
}

const char *mesh_local_call_header(const mesh_local_call_t *ps, const char *name, size_t *len)
{
    return mesh_proxy_call_header(ps, name, len);
}

int mesh_local_call_worker_index(const mesh_local_call_t *ps)
{
    return ps->w->cfg.worker_index;
}
