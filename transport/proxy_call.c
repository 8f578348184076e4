/*
 * transport/proxy_call.c: the upstream-call API (transport/proxy_call.h): calls started by a
 * front end on the worker's loop, the second implementation of the engine's downstream
 * interface (pxy_down_ops_t; the first is the HTTP/2 client side in proxy_stream.c).
 *
 * The call object, its filters, routing, upstream attach, retries and deadline are the
 * engine's (proxy_stream.c). What lives here: building the request header block from the
 * front end's fields, request bytes in, response bytes out through the call's response chunk
 * queue (consumed by the front end, which returns the upstream's flow-control credit), and the
 * end of a call. on_end is always delivered from the call's own timer (0 ms), never inside an
 * engine or API function, so a front end may cancel or start calls from any callback.
 */
#include <stdio.h>
#include <string.h>

#include "transport/grpc_status.h"
#include "transport/grpc_timeout.h"
#include "transport/proxy_call.h"
#include "transport/proxy_internal.h"

/* ---- ending ------------------------------------------------------------------------------- */

/* The first field called name (nl bytes) of h, or NULL. */
static const char *hdrs_find(const pxy_hdrs_t *h, const char *name, size_t nl, size_t *vl)
{
    for (size_t i = 0; i < h->n; i++)
        if (h->ents[i].nl == nl && memcmp(h->buf + h->ents[i].no, name, nl) == 0) {
            *vl = h->ents[i].vl;
            return h->buf + h->ents[i].vo;
        }
    return NULL;
}

static void api_on_end_timer(uv_timer_t *t)
{
    pxy_stream_t *ps = t->data;
    if (!ps->api.cancelled) {
        int status;
        const char *msg = "";
        size_t ml = 0;
        char dec[sizeof(ps->err_msg)];
        if (ps->failing) {
            status = ps->err_code;
            msg = ps->err_msg;
            ml = strlen(msg);
        } else {
            const pxy_hdrs_t *h = ps->trailers == PXY_TRAILERS_FORWARD ? &ps->respt : &ps->resph;
            size_t vl = 0;
            const char *v = hdrs_find(h, "grpc-status", 11, &vl);
            status = v ? mesh_grpc_status_parse(v, vl) : MESH_GRPC_INTERNAL;
            v = hdrs_find(h, "grpc-message", 12, &vl);
            long dl = v ? mesh_grpc_message_decode(v, vl, dec, sizeof(dec)) : -1;
            if (dl >= 0) {
                msg = dec;
                ml = (size_t)dl;
            } else if (!hdrs_find(h, "grpc-status", 11, &vl)) {
                msg = "meshd: upstream ended the call without grpc-status";
                ml = strlen(msg);
            }
        }
        ps->api.cancelled = 1; /* no callback after on_end */
        ps->api.ops->on_end(ps->api.ud, ps, status, msg, ml);
    }
    pxy_stream_downstream_lost(ps);
}

/* Schedules the end of the call (again, when something stopped the timer meanwhile). */
static void api_schedule_end(pxy_stream_t *ps)
{
    ps->api.ending = 1;
    ps->resp_done = 1; /* the engine sends nothing more to this client */
    uv_timer_start(&ps->timer, api_on_end_timer, 0, 0);
}

/* ---- the downstream operations -------------------------------------------------------------- */

static void api_respond_error(pxy_stream_t *ps, int code, const char *msg)
{
    (void)code;
    (void)msg; /* on_end reads ps->err_code and ps->err_msg */
    api_schedule_end(ps);
}

static void api_respond_head(pxy_stream_t *ps, int end_stream)
{
    if (ps->api.ending) {
        api_schedule_end(ps);
        return;
    }
    if (end_stream)
        api_schedule_end(ps);
    else
        ps->resp_started = 1;
    if (ps->api.ops->on_head)
        ps->api.ops->on_head(ps->api.ud, ps, end_stream);
}

static void api_resp_ready(pxy_stream_t *ps)
{
    if (ps->api.ending) {
        api_schedule_end(ps);
        return;
    }
    if (ps->resp.q.unsent > 0) {
        ps->api.ops->on_data(ps->api.ud, ps);
        return;
    }
    if (ps->resp.q.eof)
        api_schedule_end(ps);
}

static void api_req_consumed(pxy_stream_t *ps, size_t n)
{
    (void)n;
    if (ps->api.req_full && !ps->api.ending && ps->req.q.buffered < ps->w->cfg.stream_buffer / 2) {
        ps->api.req_full = 0;
        if (ps->api.ops->on_req_drain)
            ps->api.ops->on_req_drain(ps->api.ud, ps);
    }
}

static void api_detach(pxy_stream_t *ps)
{
    ps->down = NULL;
}

static const pxy_down_ops_t api_down_ops = {
    .respond_error = api_respond_error,
    .respond_head = api_respond_head,
    .resp_ready = api_resp_ready,
    .req_consumed = api_req_consumed,
    .detach = api_detach,
};

/* ---- the API -------------------------------------------------------------------------------- */

static int field_ok(const mesh_proxy_field_t *f)
{
    if (pxy_header_reserved(f->name, f->name_len) ||
        (f->name_len == 11 && memcmp(f->name, "grpc-status", 11) == 0))
        return 0;
    for (size_t i = 0; i < f->name_len; i++) {
        char ch = f->name[i];
        if (ch <= ' ' || ch >= 127 || (ch >= 'A' && ch <= 'Z') || ch == ':')
            return 0;
    }
    for (size_t i = 0; i < f->value_len; i++)
        if (f->value[i] == '\0' || f->value[i] == '\r' || f->value[i] == '\n')
            return 0;
    return 1;
}

int mesh_proxy_call_start(mesh_proxy_worker_t *w, const mesh_proxy_call_req_t *req,
                          const mesh_proxy_downstream_t *ops, void *ud, mesh_proxy_call_t **out)
{
    *out = NULL;
    if (!req->path || req->path_len < 2 || req->path[0] != '/' || !ops->on_data || !ops->on_end)
        return -1;
    for (size_t i = 0; i < req->n_fields; i++)
        if (!field_ok(&req->fields[i]))
            return -1;
    pxy_stream_t *ps = pxy_stream_new(w, &api_down_ops, NULL, req->peer);
    if (!ps)
        return -1;
    ps->down = ps; /* held by the front end */
    ps->api.ops = ops;
    ps->api.ud = ud;
    char tmo[MESH_GRPC_TIMEOUT_MAX_LEN];
    size_t tl = req->timeout_ms ? mesh_grpc_timeout_format(req->timeout_ms * 1000000ull, tmo) : 0;
    int rc = pxy_stream_add_header(ps, ":method", 7, "POST", 4) |
             pxy_stream_add_header(ps, ":path", 5, req->path, req->path_len) |
             pxy_stream_add_header(ps, "content-type", 12, "application/grpc", 16);
    if (req->authority)
        rc |= pxy_stream_add_header(ps, ":authority", 10, req->authority, req->authority_len);
    if (tl)
        rc |= pxy_stream_add_header(ps, "grpc-timeout", 12, tmo, tl);
    for (size_t i = 0; i < req->n_fields && rc == 0; i++)
        rc |= pxy_stream_add_header(ps, req->fields[i].name, req->fields[i].name_len,
                                    req->fields[i].value, req->fields[i].value_len);
    if (rc != 0) {
        ps->api.cancelled = 1;
        pxy_stream_downstream_lost(ps);
        return -1;
    }
    ps->started = 1;
    w->stats.calls++;
    ps->t_start = pxy_now_ns(w);
    *out = ps;
    pxy_stream_admit(ps);
    return 0;
}

int mesh_proxy_call_send(mesh_proxy_call_t *ps, const void *data, size_t len, int end)
{
    if (ps->api.ending || ps->failing || ps->resp_done || ps->req.q.eof)
        return -1;
    if (len && mesh_chunkq_append(&ps->req.q, data, len) < 0) {
        pxy_stream_fail(ps, MESH_GRPC_RESOURCE_EXHAUSTED, "meshd: out of memory");
        return -1;
    }
    ps->req_bytes += len;
    if (end)
        ps->req.q.eof = 1;
    int full = ps->req.q.buffered >= ps->w->cfg.stream_buffer;
    if (full)
        ps->api.req_full = 1;
    pxy_stream_req_ready(ps);
    return full;
}

size_t mesh_proxy_call_resp_peek(mesh_proxy_call_t *ps, const uint8_t **data)
{
    mesh_chunk_t *c;
    if (ps->api.cancelled)
        return 0;
    return mesh_chunkq_peek(&ps->resp.q, &c, data);
}

void mesh_proxy_call_resp_consume(mesh_proxy_call_t *ps, size_t n)
{
    if (ps->api.cancelled || n == 0)
        return;
    mesh_chunkq_advance(&ps->resp.q, n);
    if (ps->resp.q.eof && ps->resp.q.unsent == 0)
        api_schedule_end(ps);
}

int mesh_proxy_call_resp_field(const mesh_proxy_call_t *ps, int trailers, size_t i,
                               const char **name, size_t *name_len, const char **value,
                               size_t *value_len)
{
    const pxy_hdrs_t *h = trailers ? &ps->respt : &ps->resph;
    if (i >= h->n)
        return -1;
    const char *n = h->buf + h->ents[i].no;
    if (h->ents[i].nl == 0 || n[0] == ':')
        return 0;
    *name = n;
    *name_len = h->ents[i].nl;
    *value = h->buf + h->ents[i].vo;
    *value_len = h->ents[i].vl;
    return 1;
}

size_t mesh_proxy_call_req_buffered(const mesh_proxy_call_t *ps)
{
    return ps->req.q.buffered;
}

void mesh_proxy_call_cancel(mesh_proxy_call_t *ps)
{
    if (ps->api.cancelled)
        return;
    ps->api.cancelled = 1;
    api_schedule_end(ps);
}
