/*
 * transport/proxy_stream.c: one gRPC call through the proxy.
 *
 * Life of a call: the client's HEADERS open a pxy_stream (request headers collected in one
 * buffer); at the end of the block the call is checked (content-type, route, live instance),
 * its deadline armed, and it is attached to an upstream connection of the chosen endpoint.
 * Request DATA goes into the stream's request chunk queue and is lent to the upstream
 * session; response DATA the other way. A byte is consumed (its flow-control window given
 * back to the sender) only when it left the proxy, so a slow reader slows the writer across
 * both hops. Until the upstream answers, the request's bytes are retained (up to half the
 * stream buffer) so a call the upstream never saw can be retried once elsewhere.
 */
#include <assert.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fmt_num.h"
#include "common/log.h"
#include "transport/grpc_status.h"
#include "transport/grpc_timeout.h"
#include "transport/proxy_internal.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MESH_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(MESH_ASAN)
#define MESH_ASAN 1
#endif
#ifdef MESH_ASAN
#include <sanitizer/asan_interface.h>
#endif

#define ACTOR "proxy"

/* ---- header collection ---------------------------------------------------------------- */

/* The PXY_H_* key of each mesh_h2_name_t, plus one (0: not a key). */
static const uint8_t KEY_OF[MESH_H2_N_COUNT] = {
    [MESH_H2_N_PATH] = PXY_H_PATH + 1,
    [MESH_H2_N_AUTHORITY] = PXY_H_AUTHORITY + 1,
    [MESH_H2_N_METHOD] = PXY_H_METHOD + 1,
    [MESH_H2_N_CONTENT_TYPE] = PXY_H_CONTENT_TYPE + 1,
    [MESH_H2_N_GRPC_TIMEOUT] = PXY_H_GRPC_TIMEOUT + 1,
    [MESH_H2_N_STATUS] = PXY_H_STATUS + 1,
    [MESH_H2_N_GRPC_STATUS] = PXY_H_GRPC_STATUS + 1,
};

/* Makes room for one more field of add bytes (rarely: the buffers are kept from call to
 * call). */
static __attribute__((noinline)) int hdrs_grow(pxy_hdrs_t *h, size_t add)
{
    if (h->len + add > h->cap) {
        size_t nc = h->cap ? h->cap : 1024;
        while (nc < h->len + add)
            nc *= 2;
        char *nb = realloc(h->buf, nc);
        if (!nb)
            return -1;
        h->buf = nb;
        h->cap = nc;
    }
    if (h->n == h->ents_cap) {
        size_t nc = h->ents_cap ? h->ents_cap * 2 : 16;
        struct pxy_hdr *ne = realloc(h->ents, nc * sizeof(*ne));
        if (!ne)
            return -1;
        h->ents = ne;
        h->ents_cap = nc;
    }
    return 0;
}

/* Appends a field whose name is id (mesh_h2_name_of). Inlined into the header callbacks: as a
 * function of its own it spent a third of its instructions saving and restoring registers. */
static inline __attribute__((always_inline)) int hdrs_add(pxy_hdrs_t *h, mesh_h2_name_t id,
                                                          const uint8_t *name, size_t nl,
                                                          const uint8_t *value, size_t vl)
{
    if (__builtin_expect(h->len + nl + vl > h->cap || h->n == h->ents_cap, 0) &&
        hdrs_grow(h, nl + vl) < 0)
        return -1;
    size_t len = h->len, n = h->n;
    int key = KEY_OF[id] - 1;
    if (key >= 0 && h->idx[key] < 0)
        h->idx[key] = (int32_t)n;
    struct pxy_hdr *e = &h->ents[n];
    e->id = (uint8_t)id;
    e->no = (uint32_t)len;
    e->nl = (uint32_t)nl;
    e->vo = (uint32_t)(len + nl);
    e->vl = (uint32_t)vl;
    char *buf = h->buf;
    memcpy(buf + len, name, nl);
    memcpy(buf + len + nl, value, vl);
    h->len = len + nl + vl;
    h->n = n + 1;
    h->size += nl + vl + 32;
    return 0;
}

static void hdrs_clear(pxy_hdrs_t *h)
{
    h->len = h->n = h->size = 0;
    for (int i = 0; i < PXY_H_N; i++)
        h->idx[i] = -1;
    mesh_h2_fields_reset(&h->chk);
}

static void hdrs_free(pxy_hdrs_t *h)
{
    free(h->buf);
    free(h->ents);
    memset(h, 0, sizeof(*h));
}

#ifdef MESH_ASAN
static void hdrs_poison(pxy_hdrs_t *h)
{
    if (h->buf)
        ASAN_POISON_MEMORY_REGION(h->buf, h->cap);
}
static void hdrs_unpoison(pxy_hdrs_t *h)
{
    if (h->buf)
        ASAN_UNPOISON_MEMORY_REGION(h->buf, h->cap);
}
#else
static void hdrs_poison(pxy_hdrs_t *h)
{
    (void)h;
}
static void hdrs_unpoison(pxy_hdrs_t *h)
{
    (void)h;
}
#endif

/* The value of the first field named key (PXY_H_*), or NULL. */
static const char *hdrs_get(const pxy_hdrs_t *h, int key, size_t *vl)
{
    int32_t i = h->idx[key];
    if (i < 0)
        return NULL;
    *vl = h->ents[i].vl;
    return h->buf + h->ents[i].vo;
}

/* Fields whose value is new on every call (trace and request ids, identity tokens): sent
 * without HPACK indexing, since entering them in the connection's dynamic table would only
 * evict the fields that do repeat (path, authority, content-type ...), which then cost their
 * whole literal again on the next call. id is the name's class (h2_fields.h): the trace
 * context's names have their own, the rest are compared here. */
static int is_per_call(mesh_h2_name_t id, const char *n, size_t l)
{
    if (id == MESH_H2_N_TRACEPARENT || id == MESH_H2_N_REQUEST_ID)
        return 1;
    if (id != MESH_H2_N_OTHER)
        return 0;
#define IS(s) (l == sizeof(s) - 1 && memcmp(n, s, l) == 0)
    switch (l) {
    case 12:
        return IS("x-b3-traceid");
    case 14:
        return IS("grpc-trace-bin");
    case 22:
        return IS("x-meshd-identity-token");
    default:
        return 0;
    }
#undef IS
}

/* How a per-call field goes upstream: never indexed (a new value each call would only churn
 * the peer's table, and tokens must not be indexed), except the first traceparent and
 * x-request-id on a connection, indexed so that their names stay in the table. Every later
 * one then names its field by index instead of as a Huffman-coded literal: about 1,000
 * instructions a call, and 22 bytes on the wire. Losing the entry (a table under pressure)
 * costs only that again. */
static uint8_t per_call_flag(pxy_us_conn_t *u, mesh_h2_name_t id)
{
    unsigned bit = id == MESH_H2_N_TRACEPARENT  ? PXY_NAMED_TRACEPARENT
                   : id == MESH_H2_N_REQUEST_ID ? PXY_NAMED_REQUEST_ID
                                                : 0;
    if (bit && !(u->named & bit)) {
        u->named |= (uint8_t)bit;
        return NGHTTP2_NV_FLAG_NONE;
    }
    return NGHTTP2_NV_FLAG_NO_INDEX;
}

static nghttp2_nv *nv_reserve(pxy_stream_t *ps, size_t n)
{
    if (ps->nv_cap < n) {
        nghttp2_nv *nn = realloc(ps->nv, n * sizeof(*nn));
        if (!nn)
            return NULL;
        ps->nv = nn;
        ps->nv_cap = n;
    }
    return ps->nv;
}

static nghttp2_nv mknv(const char *n, size_t nl, const char *v, size_t vl)
{
    return (nghttp2_nv){(uint8_t *)n, (uint8_t *)v, nl, vl, NGHTTP2_NV_FLAG_NONE};
}
#define NV_LIT(n, v) mknv(n, sizeof(n) - 1, v, strlen(v))

/* A field whose bytes outlive the frame (literals, the call's header blocks): nghttp2 neither
 * copies nor lower-cases it (names were checked to be lower case on the way in). */
static nghttp2_nv mknv_nc(const char *n, size_t nl, const char *v, size_t vl)
{
    return (nghttp2_nv){(uint8_t *)n, (uint8_t *)v, nl, vl,
                        NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE};
}
#define NV_LIT_NC(n, v) mknv_nc(n, sizeof(n) - 1, v, sizeof(v) - 1)

/* ---- stream objects --------------------------------------------------------------------- */

static void on_req_drop(void *arg, size_t n)
{
    pxy_stream_t *ps = arg;
    if (ps->down)
        ps->dops->req_consumed(ps, n);
}

static void on_resp_drop(void *arg, size_t n)
{
    pxy_stream_t *ps = arg;
    if (ps->us && ps->us_id > 0 && ps->us->h2.session) {
        nghttp2_session_consume(ps->us->h2.session, ps->us_id, n);
        mesh_h2_conn_flush(&ps->us->h2);
    }
}

static int on_resp_eof(mesh_h2_source_t *src, nghttp2_session *session, int32_t id);

static void on_timer_closed(uv_handle_t *h)
{
    pxy_stream_t *ps = h->data;
    mesh_proxy_worker_t *w = ps->w;
    free(ps);
    pxy_worker_handle_closed(w);
}

pxy_stream_t *pxy_stream_new(mesh_proxy_worker_t *w, const pxy_down_ops_t *dops, void *down,
                             const struct sockaddr *peer)
{
    pxy_stream_t *ps = w->free_streams;
    if (ps) {
        w->free_streams = ps->free_next;
    } else {
        ps = calloc(1, sizeof(*ps));
        if (!ps)
            return NULL;
        uv_timer_init(w->loop, &ps->timer);
        ps->timer.data = ps;
        w->n_handles++;
    }
    /* Clear the call's state; keep the header buffers, the scratch array and the timer
     * (after the texts, at the end of the object); the texts only need to read "". */
    memset(ps, 0, offsetof(pxy_stream_t, err_msg));
    ps->err_msg[0] = ps->err_meta[0][0] = ps->err_meta[1][0] = '\0';
    ps->trace_id[0] = ps->upstream[0] = ps->retry_why[0] = '\0';
    hdrs_clear(&ps->reqh);
    hdrs_clear(&ps->resph);
    hdrs_clear(&ps->respt);
    hdrs_unpoison(&ps->reqh);
    hdrs_unpoison(&ps->resph);
    hdrs_unpoison(&ps->respt);
    ps->w = w;
    ps->dops = dops;
    ps->down = down;
    ps->peer = peer;
    ps->us_id = -1;
    ps->final_status = MESH_PROXY_STATUS_NONE;
    pxy_list_init(&ps->us_link);
    pxy_list_init(&ps->ds_link);
    pxy_list_init(&ps->local_link);
    mesh_chunkq_init(&ps->req.q, &w->pool, on_req_drop, ps);
    ps->req.q.retain = 1;
    ps->req.on_eof = NULL;
    mesh_chunkq_init(&ps->resp.q, &w->pool, on_resp_drop, ps);
    ps->resp.on_eof = on_resp_eof;
    return ps;
}

/* Tells the filters that admitted ps how it ended (last admitted first). */
static void filters_done(pxy_stream_t *ps)
{
    mesh_proxy_worker_t *w = ps->w;
    int n = ps->n_admitted;
    ps->n_admitted = 0;
    for (int i = n - 1; i >= 0; i--)
        if (i < w->n_filters && w->filters[i].on_done)
            w->filters[i].on_done(w->filters[i].ctx, ps->filter_tokens[i], ps->final_status);
}

/* Frees a call object for good (its timer handle closes asynchronously). */
static void stream_release(pxy_stream_t *ps)
{
    hdrs_unpoison(&ps->reqh);
    hdrs_unpoison(&ps->resph);
    hdrs_unpoison(&ps->respt);
    hdrs_free(&ps->reqh);
    hdrs_free(&ps->resph);
    hdrs_free(&ps->respt);
    free(ps->nv);
    uv_close((uv_handle_t *)&ps->timer, on_timer_closed);
}

/* The status the client saw, for the call metrics. */
static int client_status(const pxy_stream_t *ps)
{
    if (ps->final_status >= 0)
        return ps->final_status;
    if (ps->final_status == MESH_PROXY_STATUS_CONN_ERROR)
        return MESH_GRPC_UNAVAILABLE;
    return ps->failing && ps->err_code > 0 ? ps->err_code : MESH_GRPC_CANCELLED;
}

/* Counts a finished call in the worker's per-call table (transport/call_stats.h). A routed
 * call's row was found at routing time; other calls look theirs up by name, and take a row
 * only for a service of the table, the default route or a local service (never for any name
 * a client sends). */
static void stream_account(pxy_stream_t *ps)
{
    mesh_proxy_worker_t *w = ps->w;
    mesh_call_stats_t *cs = &w->cs;
    uint32_t row = ps->cs_row ? ps->cs_row - 1 : MESH_CS_OTHER;
    const char *const *known = NULL;
    size_t n_known = 0;
    if (ps->cs_row) {
        known = ps->svc ? ps->svc->methods : NULL;
        n_known = ps->svc ? ps->svc->n_methods : 0;
    } else if (ps->local && ps->svc_len > 0) { /* answered by the worker: its service's row */
        static const char *const none[1] = {""};
        known = ps->local->methods ? ps->local->methods : none;
        n_known = ps->local->methods ? ps->local->n_methods : 1;
        row = mesh_cs_service(cs, ps->svc_str, (size_t)ps->svc_len, 1);
    } else if (ps->svc_str && ps->svc_len > 0) {
        int insert = ps->default_route;
        if (!insert && w->routes) { /* rejected before routing: a service of the table? */
            size_t pl;
            const char *path = hdrs_get(&ps->reqh, PXY_H_PATH, &pl);
            const mesh_route_service_t *svc = NULL;
            mesh_route_status_t rs =
                path ? mesh_routes_lookup(w->routes, path, pl, &svc) : MESH_ROUTE_BAD_PATH;
            insert = rs == MESH_ROUTE_FOUND || rs == MESH_ROUTE_NO_METHOD;
            if (rs == MESH_ROUTE_FOUND) {
                known = svc->methods;
                n_known = svc->n_methods;
            } else {
                static const char *const none[1] = {""};
                known = none; /* the method is not served: "other" */
            }
        }
        row = mesh_cs_service(cs, ps->svc_str, (size_t)ps->svc_len, insert);
    }
    uint32_t col =
        ps->method_str && row != MESH_CS_OTHER
            ? mesh_cs_method(cs, row, ps->method_str, (size_t)ps->method_len, known, n_known)
            : MESH_CS_METHODS;
    double secs = (double)(pxy_now_ns(ps->w) - ps->t_start) * 1e-9;
    mesh_cs_record(cs, row, col, client_status(ps), ps->req_bytes, ps->resp_bytes,
                   (uint32_t)ps->retries, secs);
}

/* Frees ps when neither side holds it any more. */
static void stream_maybe_free(pxy_stream_t *ps)
{
    if (ps->hedge)
        pxy_hedge_drop(ps);
    if (ps->down || ps->us)
        return;
    mesh_proxy_worker_t *w = ps->w;
    if (ps->t_start) {
        stream_account(ps);
        ps->t_start = 0;
    }
    if (ps->local)
        pxy_local_close(ps); /* the handler's on_close */
    if (ps->n_admitted)
        filters_done(ps);
    uv_timer_stop(&ps->timer);
    mesh_chunkq_discard(&ps->req.q);
    mesh_chunkq_discard(&ps->resp.q);
    if (ps->routes)
        mesh_routes_unref(ps->routes);
    ps->routes = NULL;
    if (w->freeing) {
        stream_release(ps);
        return;
    }
    /* In sanitizer builds, reading a call's header bytes after it ended is an error. */
    hdrs_poison(&ps->reqh);
    hdrs_poison(&ps->resph);
    hdrs_poison(&ps->respt);
    ps->free_next = w->free_streams;
    w->free_streams = ps;
}

void pxy_streams_free_pool(mesh_proxy_worker_t *w)
{
    while (w->free_streams) {
        pxy_stream_t *ps = w->free_streams;
        w->free_streams = ps->free_next;
        stream_release(ps);
    }
}

/* What the end of the call's upstream part says about its endpoint (transport/outlier.h): the
 * upstream's grpc-status (or the mesh's deadline) by its class; a call the client left is
 * neutral; otherwise the upstream reset it, lost its connection or never answered: a failure. */
static mesh_outlier_outcome_t us_outcome(const pxy_stream_t *ps)
{
    if (ps->final_status >= 0)
        return mesh_outlier_classify_grpc(ps->final_status);
    if (!ps->down)
        return MESH_OUTLIER_NEUTRAL;
    return MESH_OUTLIER_FAILURE;
}

/* Reports the outcome of the call's upstream part to its endpoint's outlier state, and logs an
 * ejection or a return. Only routed calls: the default route is one endpoint, never ejected.
 * The service's endpoints are counted on failures only (the max ejection percent). */
static pxy_svc_t *svc_state(pxy_stream_t *ps);

static void outlier_report(pxy_stream_t *ps, pxy_endpoint_t *ep)
{
    mesh_proxy_worker_t *w = ps->w;
    if (ps->default_route || !ps->svc || !ep)
        return;
    pxy_svc_t *s = svc_state(ps);
    const mesh_outlier_cfg_t *cfg = s && s->cfg_set ? &s->ol : &w->outlier; /* the service's */
    if (cfg->disabled)
        return;
    mesh_outlier_outcome_t oc = us_outcome(ps);
    if (oc == MESH_OUTLIER_NEUTRAL)
        return;
    uint64_t now = uv_now(w->loop);
    const mesh_olw_cfg_t *fpc = s && s->cfg_set ? &s->olw : &w->olw; /* the service's */
    uint32_t fp_pct = 0, fp_volume = 0; /* failure percentage: a closed window, summed */
    int by_window = mesh_olw_add(&ep->olw, fpc, oc, now) &&
                    mesh_outlier_slot_window(ep->ol, fpc, &ep->olw, &fp_pct, &fp_volume);
    const mesh_olsr_cfg_t *src = s && s->cfg_set ? &s->olsr_cfg : &w->olsr;
    if (s && src->enabled)
        pxy_outlier_sr(ps, s, ep, cfg, src, oc, now); /* success rate among the service's */
    size_t n = 0, n_ejected = 0;
    if (oc == MESH_OUTLIER_FAILURE || by_window) {
        if (!s)
            return;
        n = s->n;
        for (size_t k = 0; k < s->n; k++)
            n_ejected += mesh_outlier_slot_ejected(s->eps[k]->ol);
    }
    uint64_t ms = 0;
    mesh_outlier_effect_t e =
        mesh_outlier_slot_report(w->board, ep->ol, cfg, oc, n, n_ejected, now, &ms);
    char why[120];
    if (e == MESH_OUTLIER_NONE && by_window) {
        e = mesh_outlier_slot_eject(w->board, ep->ol, cfg, n, n_ejected, now, &ms);
        snprintf(why, sizeof(why), "%u%% of %u calls failed in %llu ms (threshold %u%%)", fp_pct,
                 fp_volume, (unsigned long long)fpc->interval_ms, fpc->threshold_pct);
        if (e != MESH_OUTLIER_NONE)
            pxy_outlier_tell(w, cfg, ep, ps->svc_str, ps->svc_len, e, ms, why);
        return;
    }
    if (e != MESH_OUTLIER_NONE)
        pxy_outlier_tell(w, cfg, ep, ps->svc_str, ps->svc_len, e, ms, NULL);
}

static void lb_done(pxy_stream_t *ps);

/* Response bytes still queued when a call leaves its upstream connection came from that
 * connection's DATA. Their stream's window no longer matters (the stream is closed or reset),
 * but the connection's does: they are given back now, since on_resp_drop no longer knows the
 * connection when they leave. Otherwise every call whose response arrived with its trailers
 * (most unary calls) would keep its response's size of the connection window for good, and the
 * connection would stall once the upstream's window is spent (1 GiB: 70 million small calls).
 * Given back in batches of an eighth of the window, at most 64 KiB. */
static void return_resp_owed(pxy_us_conn_t *u, size_t n)
{
    u->resp_owed += n;
    size_t batch = u->w->cfg.conn_window / 8;
    if (u->resp_owed < (batch < 65536 ? batch : 65536) || !u->h2.session)
        return;
    nghttp2_session_consume_connection(u->h2.session, u->resp_owed);
    u->resp_owed = 0;
    mesh_h2_conn_flush(&u->h2);
}

static void detach_us(pxy_stream_t *ps)
{
    pxy_us_conn_t *u = ps->us;
    if (!u)
        return;
    if (ps->resp.q.buffered)
        return_resp_owed(u, ps->resp.q.buffered);
    outlier_report(ps, ps->ep);
    lb_done(ps);
    pxy_list_remove(&ps->us_link);
    if (u->hdr_ps == ps)
        u->hdr_ps = NULL;
    ps->us = NULL;
    if (--u->n_streams == 0 && u->retired)
        pxy_us_conn_retired_idle(u); /* its endpoint left the table: close it now */
}

static void detach_ds(pxy_stream_t *ps)
{
    if (ps->down)
        ps->dops->detach(ps);
}

/* ---- ending calls ----------------------------------------------------------------------- */

static void cancel_upstream(pxy_stream_t *ps)
{
    if (!ps->us)
        return;
    if (ps->us_id > 0 && ps->us->h2.session) {
        nghttp2_submit_rst_stream(ps->us->h2.session, NGHTTP2_FLAG_NONE, ps->us_id, NGHTTP2_CANCEL);
        mesh_h2_conn_flush(&ps->us->h2);
    } else {
        /* Not yet sent: just forget it. */
        detach_us(ps);
    }
}

/* The HTTP/2 client's Trailers-Only response: HTTP 200, grpc-status, grpc-message. */
static void h2_respond_error(pxy_stream_t *ps, int code, const char *msg)
{
    char status[4], enc[sizeof(ps->err_msg) * 3];
    snprintf(status, sizeof(status), "%d", code);
    mesh_grpc_message_encode(msg, strlen(msg), enc, sizeof(enc));
    nghttp2_nv nva[] = {
        NV_LIT(":status", "200"),
        NV_LIT("content-type", "application/grpc"),
        NV_LIT("grpc-status", status),
        NV_LIT("grpc-message", enc),
        NV_LIT("x", ""),
    };
    size_t n = msg[0] ? 4 : 3;
    if (ps->err_meta[0][0]) /* (nghttp2 copies names and values: the array is on the stack) */
        nva[n++] = mknv(ps->err_meta[0], strlen(ps->err_meta[0]), ps->err_meta[1],
                        strlen(ps->err_meta[1]));
    nghttp2_submit_response(ps->ds->h2.session, ps->ds_id, nva, n, NULL);
    ps->resp_done = 1;
    mesh_h2_conn_flush(&ps->ds->h2);
}

void pxy_stream_fail(pxy_stream_t *ps, int code, const char *fmt, ...)
{
    if (ps->resp_done || ps->failing)
        return;
    if (ps->hedge)
        pxy_hedge_drop(ps);
    ps->failing = 1;
    ps->w->stats.calls_failed++;
    if (ps->final_status == MESH_PROXY_STATUS_NONE)
        ps->final_status = code;
    uv_timer_stop(&ps->timer);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ps->err_msg, sizeof(ps->err_msg), fmt, ap);
    va_end(ap);
    ps->err_code = code;
    ps->body_cb = NULL;
    if (ps->trace_id[0])
        mesh_debug(ACTOR, "call failed: %s %s (trace %s)", mesh_grpc_status_name(code), ps->err_msg,
                   ps->trace_id);
    else
        mesh_debug(ACTOR, "call failed: %s %s", mesh_grpc_status_name(code), ps->err_msg);
    cancel_upstream(ps);
    if (!ps->down)
        return;
    mesh_chunkq_discard(&ps->req.q);
    if (!ps->resp_started) {
        ps->dops->respond_error(ps, code, ps->err_msg);
    } else {
        mesh_chunkq_discard(&ps->resp.q);
        ps->resp.q.eof = 1;
        ps->trailers = PXY_TRAILERS_ERROR;
        ps->dops->resp_ready(ps);
    }
}

static int on_resp_eof(mesh_h2_source_t *src, nghttp2_session *session, int32_t id)
{
    pxy_stream_t *ps = PXY_CONTAINER(src, pxy_stream_t, resp);
    ps->resp_done = 1;
    mesh_debug(ACTOR, "stream %d: response ends (trailers %d)", id, ps->trailers);
    if (ps->trailers == PXY_TRAILERS_ERROR) {
        char status[4], enc[sizeof(ps->err_msg) * 3];
        snprintf(status, sizeof(status), "%d", ps->err_code);
        mesh_grpc_message_encode(ps->err_msg, strlen(ps->err_msg), enc, sizeof(enc));
        nghttp2_nv nva[] = {NV_LIT("grpc-status", status), NV_LIT("grpc-message", enc)};
        return nghttp2_submit_trailer(session, id, nva, 2) == 0;
    }
    if (ps->trailers == PXY_TRAILERS_FORWARD) {
        pxy_hdrs_t *h = &ps->respt;
        nghttp2_nv *nv = nv_reserve(ps, h->n + 1);
        if (!nv)
            return 0;
        size_t n = 0;
        for (size_t i = 0; i < h->n; i++) {
            const char *name = h->buf + h->ents[i].no;
            if (h->ents[i].nl == 0 || name[0] == ':' || mesh_h2_name_hop_by_hop(h->ents[i].id))
                continue;
            nv[n++] = mknv_nc(name, h->ents[i].nl, h->buf + h->ents[i].vo, h->ents[i].vl);
        }
        return nghttp2_submit_trailer(session, id, nv, n) == 0;
    }
    return 0;
}

static void on_deadline(uv_timer_t *t)
{
    pxy_stream_t *ps = t->data;
    if ((ps->try_deadline_ms || ps->hedge_at_ms) && pxy_retry_on_timer(ps))
        return; /* the attempt's per-try timeout (transport/proxy_retry.c) */
    pxy_stream_fail(ps, MESH_GRPC_DEADLINE_EXCEEDED, "meshd: deadline exceeded");
}

/* ---- choosing an upstream --------------------------------------------------------------- */

static pxy_svc_t *svc_state(pxy_stream_t *ps)
{
    mesh_proxy_worker_t *w = ps->w;
    if (!w->routes || !w->svc)
        return NULL;
    if (ps->routes != w->routes) {
        /* The table changed since the call started: find the service in the new one. */
        const mesh_route_service_t *s = mesh_routes_service(w->routes, ps->svc->name);
        if (!s)
            return NULL;
        mesh_routes_unref(ps->routes);
        ps->routes = mesh_routes_ref(w->routes);
        ps->svc = s;
    }
    return &w->svc[mesh_routes_index_of(w->routes, ps->svc)];
}

/* What round robin asks of an instance of the call's service. */
typedef struct pick_ctx {
    pxy_stream_t *ps;
    pxy_svc_t *s;
    const pxy_endpoint_t *exclude;
    int avoid_suspect; /* skip endpoints whose peer is suspect (upstream liveness) */
    int panic;         /* ejected and backing-off endpoints are eligible too: no other one is */
} pick_ctx_t;

static int pick_eligible(void *ud, size_t k)
{
    const pick_ctx_t *c = ud;
    const pxy_endpoint_t *ep = c->s->eps[k];
    return ep != c->exclude && (c->panic ? ep->resolved > 0 : pxy_endpoint_live(c->ps->w, ep)) &&
           (!c->avoid_suspect || !ep->n_suspect) &&
           (c->panic || mesh_outlier_slot_up(ep->ol, uv_now(c->ps->w->loop))) &&
           mesh_route_instance_serves(c->s->insts[k], c->ps->method_str, (size_t)c->ps->method_len);
}

/* ---- the balancer's plans (transport/lb.h): weights, header subsets, zone, P2C ------------ */

static int lb_healthy(void *ud, size_t k)
{
    const pick_ctx_t *c = ud;
    const pxy_endpoint_t *ep = c->s->eps[k];
    return pxy_endpoint_live(c->ps->w, ep) && mesh_outlier_slot_up(ep->ol, uv_now(c->ps->w->loop));
}

static mesh_lb_ep_t *lb_load(void *ud, size_t k)
{
    const pick_ctx_t *c = ud;
    return &c->s->eps[k]->lb;
}

static const char *lb_header(void *ud, const char *name, size_t *len)
{
    return mesh_proxy_call_header(ud, name, len);
}

static const mesh_lb_ops_t lb_ops = {pick_eligible, lb_healthy, lb_load};

/* Makes the service's plan at its first call on this worker (services that get no calls cost
 * nothing), or marks it plain round robin when the settings and weights need none. Out of
 * memory: plain round robin, said once. */
static void lb_plan(mesh_proxy_worker_t *w, pxy_svc_t *s)
{
    s->plan = PXY_PLAN_PLAIN;
    if (!mesh_lb_plan_needed(&s->lb, s->insts, s->n))
        return;
    mesh_lb_plan_t *p = mesh_lb_plan_new(&s->lb, s->insts, s->n, (uint32_t)w->cfg.worker_index);
    if (p)
        s->plan = p;
    else
        mesh_warn(ACTOR, "worker %d: out of memory for a balancing plan: round robin for %s",
                  w->cfg.worker_index, mesh_route_svc_get(s->obj)->name);
}

/* Picks by the service's plan: the subset the call's metadata selects (any instance when none
 * of it can take the call), the caller's zone when preferred, by weight and policy. */
static ptrdiff_t lb_pick(pxy_stream_t *ps, pxy_svc_t *s, pick_ctx_t *c)
{
    const mesh_lb_cfg_t *cfg = &s->lb; /* the service's settings */
    int sub = cfg->n_subsets ? mesh_lb_subset_match(cfg, lb_header, ps) : -1;
    mesh_lb_pick_info_t info;
    ptrdiff_t k =
        mesh_lb_pick(s->plan, cfg, &ps->w->rng, sub, pxy_now_ns(ps->w), &lb_ops, c, &info);
    if (info.subset_fallback)
        mesh_debug(ACTOR, "no instance of %.*s with %s %s can take the call (%s: %s): any instance",
                   ps->svc_len, ps->svc_str,
                   cfg->subsets[sub].by == MESH_LB_BY_VERSION ? "version" : "zone",
                   cfg->subsets[sub].want, cfg->subsets[sub].header, cfg->subsets[sub].value);
    return k;
}

/* The call goes to ep's pool: one more outstanding there. Its latency sample starts when the
 * request goes out on a connection (pxy_stream_submit, maybe within the attach): a connect is
 * not the app's latency. */
static void lb_sent(pxy_stream_t *ps, pxy_endpoint_t *ep)
{
    if (ps->default_route)
        return; /* one endpoint, never balanced (the sidecar's app) */
    mesh_lb_ep_start(&ep->lb);
    ps->lb_t0 = 0;
}

/* The pool could not take the call after all (no connection): not outstanding there. */
static void lb_unsent(pxy_stream_t *ps, pxy_endpoint_t *ep)
{
    if (!ps->default_route)
        mesh_lb_ep_done(&ep->lb, &ps->w->lb, 0, 0, 0, 0);
}

/* The call's upstream part on ps->ep ended: one less outstanding there; under P2C its latency
 * and outcome go to the endpoint's EWMA (a call the client left adds no sample). */
static void lb_done(pxy_stream_t *ps)
{
    if (ps->default_route)
        return;
    if (!ps->lb_p2c) {
        mesh_lb_ep_done(&ps->ep->lb, &ps->w->lb, 0, 0, 0, 0);
        return;
    }
    mesh_outlier_outcome_t oc = us_outcome(ps);
    uint64_t now = pxy_now_ns(ps->w);
    mesh_lb_ep_done(&ps->ep->lb, &ps->w->lb, ps->lb_t0 ? ps->lb_t0 : now, now,
                    oc == MESH_OUTLIER_FAILURE, oc != MESH_OUTLIER_NEUTRAL);
}

/* One pick among the eligible instances: plain round robin, or the service's plan. */
static ptrdiff_t pick_one(pxy_stream_t *ps, pxy_svc_t *s, pick_ctx_t *c)
{
    return s->plan != PXY_PLAN_PLAIN ? lb_pick(ps, s, c)
                                     : mesh_bal_rr_pick(&s->rr, s->n, pick_eligible, c);
}

/* The balancer (transport/balancer.h, transport/lb.h): among the service's instances that are
 * not backing off, not ejected as outliers (transport/outlier.h), serve the method and are not
 * the one a retry excludes, plain round robin, or the service's plan when weights, subsets, a
 * zone or P2C apply. A pick of an instance whose ejection is over is its probe call. When
 * every candidate is suspect (upstream liveness) one of them takes the call; when only ejected
 * or backing-off ones are left (panic: e.g. a proxy whose own network just healed, its
 * instances still out for up to their ejection time or 10 s connect backoff), they do, rather
 * than no instance at all: the call then costs a connect attempt (failing within the connect
 * timeout if the network is still cut, and retried once elsewhere) instead of failing at once,
 * and the first connect that succeeds ends the backoff for everyone. */
static pxy_endpoint_t *pick_endpoint(pxy_stream_t *ps, const pxy_endpoint_t *exclude)
{
    if (ps->default_route) {
        pxy_endpoint_t *ep = ps->w->default_ep;
        return ep && ep != exclude && pxy_endpoint_live(ps->w, ep) ? ep : NULL;
    }
    pxy_svc_t *s = svc_state(ps);
    if (!s)
        return NULL;
    pick_ctx_t c = {.ps = ps, .s = s, .exclude = exclude, .avoid_suspect = 1};
    pxy_svc_use_policy(ps->w, s, ps->svc_pol); /* the service's settings (a reload changes them) */
    ps->lb_p2c = s->lb.policy == MESH_LB_P2C;
    if (!s->plan)
        lb_plan(ps->w, s);
    /* An ejected instance's probe may be taken by another worker between the test and the
     * pick: then pick again (the instance is no longer eligible). */
    for (int tries = 0; tries < 3; tries++) {
        ptrdiff_t k = pick_one(ps, s, &c);
        if (k < 0 && c.avoid_suspect) { /* all suspect: better one of them than none */
            c.avoid_suspect = 0;
            k = pick_one(ps, s, &c);
        }
        if (k < 0 && !c.panic) { /* only ejected or backing-off ones left */
            c.panic = 1;
            k = pick_one(ps, s, &c);
            if (k >= 0) {
                mesh_outlier_board_panic(ps->w->board);
                return s->eps[k];
            }
        }
        if (k < 0)
            return NULL;
        if (mesh_outlier_slot_picked(ps->w->board, s->eps[k]->ol, &s->ol, uv_now(ps->w->loop)))
            return s->eps[k];
    }
    return NULL;
}

/* When an instance of the call's service that serves its method has no address because of
 * its name, says why in buf (for the UNAVAILABLE message; not on the per-call path). */
static int unresolved_instance(pxy_stream_t *ps, char *buf, size_t len)
{
    pxy_svc_t *s = svc_state(ps);
    for (size_t k = 0; s && k < s->n; k++)
        if (mesh_route_instance_serves(s->insts[k], ps->method_str, (size_t)ps->method_len) &&
            pxy_endpoint_unresolved(s->eps[k], buf, len))
            return 1;
    return 0;
}

/* Attaches ps upstream on a live endpoint other than exclude, or fails it. */
static void route_to_upstream(pxy_stream_t *ps, const pxy_endpoint_t *exclude, const char *why)
{
    int same = 0;
    for (;;) {
        pxy_endpoint_t *ep = pick_endpoint(ps, exclude);
        if (!ep && exclude && ps->rp && !same) {
            same = 1; /* a policy retry with no other instance: the failed one again */
            ep = pick_endpoint(ps, NULL);
        }
        if (!ep) {
            ps->final_status = MESH_PROXY_STATUS_CONN_ERROR;
            char name[160];
            if (why)
                pxy_stream_fail(ps, MESH_GRPC_UNAVAILABLE,
                                "meshd: %s; no other live instance of %.*s", why, ps->svc_len,
                                ps->svc_str);
            else if (ps->default_route && ps->w->default_ep &&
                     pxy_endpoint_unresolved(ps->w->default_ep, name, sizeof(name)))
                pxy_stream_fail(ps, MESH_GRPC_UNAVAILABLE, "meshd: %s", name);
            else if (ps->default_route)
                pxy_stream_fail(ps, MESH_GRPC_UNAVAILABLE, "meshd: upstream %s is down",
                                ps->w->default_upstream);
            else if (unresolved_instance(ps, name, sizeof(name)))
                pxy_stream_fail(ps, MESH_GRPC_UNAVAILABLE, "meshd: no live instance of %.*s: %s",
                                ps->svc_len, ps->svc_str, name);
            else
                pxy_stream_fail(ps, MESH_GRPC_UNAVAILABLE, "meshd: no live instance of %.*s",
                                ps->svc_len, ps->svc_str);
            return;
        }
        ps->ep = ep;
        mesh_fmt_str(ps->upstream, sizeof(ps->upstream), ep->addr);
        lb_sent(ps, ep); /* before: the attach may submit (and even fail) the call at once */
        if (pxy_endpoint_attach(ps->w, ep, ps) == 0) {
            if ((ps->rp || ps->held) && ps->us && !ps->failing)
                pxy_retry_attempt_started(ps); /* per-try timeout; the deadline after a hold */
            return;
        }
        lb_unsent(ps, ep);
        exclude = ep; /* could not open a connection: try another once */
        if (why)
            continue;
        why = "cannot open a connection";
    }
}

void pxy_stream_upstream_lost(pxy_stream_t *ps, int never_sent, const char *why)
{
    if (ps->retry_wait) {
        pxy_retry_attempt_closed(ps);
        return;
    }
    pxy_endpoint_t *ep = ps->ep;
    detach_us(ps);
    if (!ps->down || ps->resp_done || ps->failing) {
        stream_maybe_free(ps);
        return;
    }
    if (ps->trailers == PXY_TRAILERS_FORWARD)
        return; /* the upstream finished; the client still drains */
    if (never_sent && ps->retries == 0 && ps->req.q.retain) {
        ps->retries++;
        ps->w->stats.retries++;
        mesh_chunkq_rewind(&ps->req.q);
        mesh_debug(ACTOR, "retrying call on another instance of %.*s: %s", ps->svc_len, ps->svc_str,
                   why);
        route_to_upstream(ps, ep, why);
        return;
    }
    if (ps->rp && pxy_retry_on_lost(ps, never_sent, MESH_GRPC_UNAVAILABLE, why))
        return;
    ps->final_status = MESH_PROXY_STATUS_CONN_ERROR;
    pxy_stream_fail(ps, MESH_GRPC_UNAVAILABLE, "meshd: %s", why);
}

void pxy_stream_downstream_lost(pxy_stream_t *ps)
{
    /* The client is gone: cancel the upstream call and drop what is buffered. */
    uv_timer_stop(&ps->timer);
    if (ps->hedge)
        pxy_hedge_drop(ps);
    cancel_upstream(ps); /* still attached: the upstream stream is not closed yet */
    /* Dropped while the client connection is attached, so on_req_drop gives the request bytes
     * still held (unsent, or kept for a retry) back to that connection's window. */
    mesh_chunkq_discard(&ps->req.q);
    detach_ds(ps);
    mesh_chunkq_discard(&ps->resp.q);
    stream_maybe_free(ps);
}

/* ---- the request side --------------------------------------------------------------------- */

void pxy_stream_submit(pxy_stream_t *ps)
{
    pxy_us_conn_t *u = ps->us;
    if (ps->lb_p2c && !ps->default_route)
        ps->lb_t0 = pxy_now_ns(ps->w); /* the balancer's latency sample starts (lb_done) */
    pxy_hdrs_t *h = &ps->reqh;
    nghttp2_nv *nv = nv_reserve(ps, h->n + 8);
    if (!nv) {
        pxy_stream_fail(ps, MESH_GRPC_RESOURCE_EXHAUSTED, "meshd: out of memory");
        return;
    }
    size_t n = 0, vl = 0;
    const char *v;
    nv[n++] = NV_LIT_NC(":method", "POST");
    nv[n++] = NV_LIT_NC(":scheme", "http");
    v = hdrs_get(h, PXY_H_PATH, &vl);
    nv[n++] = mknv_nc(":path", 5, v, vl);
    v = hdrs_get(h, PXY_H_AUTHORITY, &vl);
    if (v)
        nv[n++] = mknv_nc(":authority", 10, v, vl);
    else /* copied: the endpoint may go before the frame is packed */
        nv[n++] = mknv(":authority", 10, ps->ep->addr, strlen(ps->ep->addr));
    nv[n++] = NV_LIT_NC("te", "trailers");
    char prev[12];
    if (ps->retries > 0) { /* (copied by nghttp2) */
        snprintf(prev, sizeof(prev), "%d", ps->retries);
        nv[n++] = mknv("grpc-previous-rpc-attempts", 26, prev, strlen(prev));
    }
    if (ps->deadline_ms) {
        uint64_t now = uv_now(ps->w->loop);
        uint64_t left_ms = ps->deadline_ms > now ? ps->deadline_ms - now : 0;
        size_t tl = mesh_grpc_timeout_format(left_ms * 1000000ull, ps->tmo);
        nv[n++] = mknv_nc("grpc-timeout", 12, ps->tmo, tl);
    }
    for (size_t i = 0; i < h->n; i++) {
        const char *name = h->buf + h->ents[i].no;
        size_t nl = h->ents[i].nl;
        mesh_h2_name_t id = (mesh_h2_name_t)h->ents[i].id;
        if (nl == 0 || name[0] == ':' || mesh_h2_name_hop_by_hop(id) ||
            id == MESH_H2_N_GRPC_TIMEOUT)
            continue;
        nv[n] = mknv_nc(name, nl, h->buf + h->ents[i].vo, h->ents[i].vl);
        if (is_per_call(id, name, nl))
            nv[n].flags |= per_call_flag(u, id);
        n++;
    }
    nghttp2_data_provider prd = {.source = {.ptr = &ps->req}, .read_callback = mesh_h2_source_read};
    ps->req.deferred = 0; /* (a retry: the last session's state) */
    int32_t id = nghttp2_submit_request(u->h2.session, NULL, nv, n, &prd, ps);
    if (id < 0) {
        pxy_stream_upstream_lost(ps, 1, "upstream refused a new stream");
        return;
    }
    ps->us_id = id;
    mesh_h2_conn_flush(&u->h2);
}

/* Points svc_str and method_str into the request headers (again when a filter that set a
 * field moved the buffer; no filter can change :path itself, so the same address holds the
 * same path). Returns the path. */
static const char *parse_path(pxy_stream_t *ps, size_t *pl_out)
{
    size_t pl = 0;
    const char *path = hdrs_get(&ps->reqh, PXY_H_PATH, &pl);
    *pl_out = pl;
    if (path && path == ps->path_seen)
        return path;
    ps->path_seen = path;
    ps->svc_str = pl > 1 ? path + 1 : path;
    const char *slash = pl > 1 ? memchr(path + 1, '/', pl - 1) : NULL;
    ps->svc_len = slash ? (int)(slash - (path + 1)) : (pl > 1 ? (int)pl - 1 : 0);
    ps->method_str = slash ? slash + 1 : path + pl;
    ps->method_len = slash ? (int)(path + pl - (slash + 1)) : 0;
    return path;
}

/* Fails the call with a filter's verdict. */
static void fail_verdict(pxy_stream_t *ps, mesh_proxy_verdict_t *v)
{
    int code = v->grpc_status > 0 && v->grpc_status <= 16 ? v->grpc_status : MESH_GRPC_UNKNOWN;
    v->message[sizeof(v->message) - 1] = '\0';
    v->meta_name[sizeof(v->meta_name) - 1] = '\0';
    v->meta_value[sizeof(v->meta_value) - 1] = '\0';
    if (v->meta_name[0]) {
        snprintf(ps->err_meta[0], sizeof(ps->err_meta[0]), "%s", v->meta_name);
        snprintf(ps->err_meta[1], sizeof(ps->err_meta[1]), "%s", v->meta_value);
    }
    pxy_stream_fail(ps, code, "%s", v->message[0] ? v->message : "meshd: call rejected");
}

static void body_ready(pxy_stream_t *ps, int complete)
{
    mesh_proxy_body_cb cb = ps->body_cb;
    ps->body_cb = NULL;
    cb(ps->body_ctx, ps, complete);
}

/* Whether a filter waiting for the body can have it: 1 complete, 0 too large, -1 not yet. */
static int body_state(const pxy_stream_t *ps)
{
    if (ps->req.q.eof)
        return 1;
    return ps->req.q.buffered >= ps->body_max ? 0 : -1;
}

void pxy_stream_req_ready(pxy_stream_t *ps)
{
    if (ps->body_cb) {
        if (ps->req.q.eof)
            body_ready(ps, 1);
        else if (ps->req.q.buffered >= ps->body_max)
            body_ready(ps, 0);
        return;
    }
    if (ps->local) {
        pxy_local_feed(ps);
        return;
    }
    if (ps->us && ps->us_id > 0) {
        mesh_h2_source_resume(&ps->req, ps->us->h2.session, ps->us_id);
        mesh_h2_conn_flush(&ps->us->h2);
    }
}

/* Runs the filters' on_call from filter `from` on: 0 when every filter accepted, 1 when one
 * went pending (the call resumes with mesh_proxy_call_resume), -1 when one rejected (the call
 * is then failed with its verdict). */
static int filters_admit(pxy_stream_t *ps, int from)
{
    mesh_proxy_worker_t *w = ps->w;
    for (int i = from; i < w->n_filters; i++) {
        size_t pl, al = 0;
        const char *path = parse_path(ps, &pl);
        const char *auth = hdrs_get(&ps->reqh, PXY_H_AUTHORITY, &al);
        mesh_proxy_call_info_t info = {
            .path = path,
            .path_len = pl,
            .service = ps->svc_str,
            .service_len = (size_t)ps->svc_len,
            .method = ps->method_str,
            .method_len = (size_t)ps->method_len,
            .authority = auth,
            .authority_len = auth ? al : 0,
            .peer = ps->peer,
            .worker_index = w->cfg.worker_index,
            .call = ps,
        };
        mesh_proxy_verdict_t v = {.grpc_status = MESH_GRPC_UNAVAILABLE};
        void *token = NULL;
        int rv = w->filters[i].on_call(w->filters[i].ctx, &info, &v, &token);
        if (rv == MESH_PROXY_REJECT) {
            ps->body_cb = NULL;
            fail_verdict(ps, &v);
            return -1;
        }
        ps->filter_tokens[i] = token;
        ps->n_admitted = i + 1;
        if (rv == MESH_PROXY_PENDING) {
            ps->pending = i + 1;
            if (ps->body_cb && body_state(ps) >= 0)
                body_ready(ps, body_state(ps)); /* may resume (and route) the call at once */
            return 1;
        }
    }
    return 0;
}

/* Routes a call that every filter admitted and sends it on its way. */
static void stream_route(pxy_stream_t *ps)
{
    mesh_proxy_worker_t *w = ps->w;
    if (w->n_locals > w->n_locals_early && pxy_local_try(ps, 0))
        return; /* a method the worker answers itself (transport/proxy_local.c) */
    size_t pl;
    const char *path = parse_path(ps, &pl);
    const mesh_route_service_t *svc = NULL;
    mesh_route_status_t rs =
        w->routes ? mesh_routes_lookup(w->routes, path, pl, &svc) : MESH_ROUTE_NO_SERVICE;
    if (rs == MESH_ROUTE_FOUND) {
        ps->routes = mesh_routes_ref(w->routes);
        ps->svc = svc;
        if (w->svc) { /* the service's metrics row, looked up once per service object */
            pxy_svc_t *st = &w->svc[mesh_routes_index_of(w->routes, svc)];
            if (!st->cs_row)
                st->cs_row = mesh_cs_service(&w->cs, svc->name, strlen(svc->name), 1) + 1;
            ps->cs_row = st->cs_row;
        }
    } else if (w->default_ep && pl > 1 && path[0] == '/') {
        ps->default_route = 1;
    } else {
        pxy_stream_fail(ps, MESH_GRPC_UNIMPLEMENTED, "meshd: no route for %.*s", (int)pl, path);
        return;
    }
    if (pxy_retry_before_route(ps))
        return; /* an injected fault answered or holds the call */
    route_to_upstream(ps, NULL, NULL);
}

/* Checks an HTTP/2 client's complete request, then admits it. */
static void h2_stream_start(pxy_stream_t *ps)
{
    mesh_proxy_worker_t *w = ps->w;
    pxy_hdrs_t *h = &ps->reqh;
    size_t vl, pl;
    const char *v;
    ps->started = 1;
    w->stats.calls++;
    ps->t_start = pxy_now_ns(ps->w);
    mesh_debug(ACTOR, "%s: call on stream %d", ps->ds->name, ps->ds_id);
    if (ps->hdr_overflow) {
        pxy_stream_fail(ps, MESH_GRPC_RESOURCE_EXHAUSTED,
                        "meshd: request headers larger than %u bytes", w->cfg.max_header_list_size);
        return;
    }
    if (mesh_h2_fields_end(&h->chk, MESH_H2_REQUEST) < 0) {
        pxy_stream_fail(ps, MESH_GRPC_INTERNAL, "meshd: malformed request: %s", h->chk.problem);
        return;
    }
    v = hdrs_get(h, PXY_H_CONTENT_TYPE, &vl);
    if (!v || vl < 16 || memcmp(v, "application/grpc", 16) != 0 ||
        (vl > 16 && v[16] != '+' && v[16] != ';')) {
        nghttp2_nv nva[] = {NV_LIT(":status", "415"), NV_LIT("content-type", "text/plain"),
                            NV_LIT("grpc-status", "13"),
                            NV_LIT("grpc-message", "meshd: content-type is not application/grpc")};
        nghttp2_submit_response(ps->ds->h2.session, ps->ds_id, nva, 4, NULL);
        ps->resp_done = 1;
        ps->failing = 1;
        ps->final_status = MESH_GRPC_INTERNAL;
        w->stats.calls_failed++;
        mesh_chunkq_discard(&ps->req.q);
        return;
    }
    v = hdrs_get(h, PXY_H_METHOD, &vl);
    const char *path = hdrs_get(h, PXY_H_PATH, &pl);
    if (!v || vl != 4 || memcmp(v, "POST", 4) != 0 || !path) {
        pxy_stream_fail(ps, MESH_GRPC_INTERNAL, "meshd: a gRPC call must be a POST with a :path");
        return;
    }
    pxy_stream_admit(ps);
}

void pxy_stream_admit(pxy_stream_t *ps)
{
    mesh_proxy_worker_t *w = ps->w;
    size_t vl;
    const char *v;
    /* The deadline runs from here: a filter that waits (a key fetch, an external check)
     * spends the call's time, not more. */
    v = hdrs_get(&ps->reqh, PXY_H_GRPC_TIMEOUT, &vl);
    if (v) {
        uint64_t ns;
        if (mesh_grpc_timeout_parse(v, vl, &ns) < 0) {
            pxy_stream_fail(ps, MESH_GRPC_INTERNAL, "meshd: malformed grpc-timeout %.*s", (int)vl,
                            v);
            return;
        }
        uint64_t ms = ns / 1000000 + (ns % 1000000 != 0);
        if (ms > (uint64_t)1 << 40)
            ms = (uint64_t)1 << 40;
        ps->deadline_ms = uv_now(w->loop) + ms;
        uv_timer_start(&ps->timer, on_deadline, ms, 0);
    }
    /* Local services registered to come first (health probes carry no credentials). */
    if (w->n_locals_early && pxy_local_try(ps, 1))
        return;
    if (w->n_filters && filters_admit(ps, 0) != 0)
        return;
    stream_route(ps);
}

/* ---- what filters can do with a call ------------------------------------------------------ */

int pxy_stream_add_header(pxy_stream_t *ps, const char *name, size_t nl, const char *value,
                          size_t vl)
{
    return hdrs_add(&ps->reqh, mesh_h2_name_of((const uint8_t *)name, nl), (const uint8_t *)name,
                    nl, (const uint8_t *)value, vl);
}

int pxy_stream_add_resp_field(pxy_stream_t *ps, int trailers, const char *name, size_t nl,
                              const char *value, size_t vl)
{
    return hdrs_add(trailers ? &ps->respt : &ps->resph, mesh_h2_name_of((const uint8_t *)name, nl),
                    (const uint8_t *)name, nl, (const uint8_t *)value, vl);
}

/* Names a filter may not set or remove: pseudo-header fields, the fields the proxy reads
 * itself (PXY_H_*) and the hop-by-hop ones. */
static int reserved(const char *name, size_t nl, mesh_h2_name_t id)
{
    return nl == 0 || name[0] == ':' || KEY_OF[id] || mesh_h2_name_hop_by_hop(id);
}

int pxy_header_reserved(const char *name, size_t nl)
{
    return reserved(name, nl, mesh_h2_name_of((const uint8_t *)name, nl));
}

static int name_is(const pxy_hdrs_t *h, size_t i, const char *name, size_t nl)
{
    return h->ents[i].nl == nl && memcmp(h->buf + h->ents[i].no, name, nl) == 0;
}

const char *mesh_proxy_call_header(const mesh_proxy_call_t *ps, const char *name, size_t *len)
{
    const pxy_hdrs_t *h = &ps->reqh;
    size_t nl = strlen(name);
    for (size_t i = 0; i < h->n; i++)
        if (name_is(h, i, name, nl)) {
            *len = h->ents[i].vl;
            return h->buf + h->ents[i].vo;
        }
    return NULL;
}

int mesh_proxy_call_header_at(const mesh_proxy_call_t *ps, size_t i, const char **name,
                              size_t *name_len, const char **value, size_t *value_len)
{
    const pxy_hdrs_t *h = &ps->reqh;
    if (i >= h->n)
        return -1;
    if (h->ents[i].nl == 0)
        return 0;
    *name = h->buf + h->ents[i].no;
    *name_len = h->ents[i].nl;
    *value = h->buf + h->ents[i].vo;
    *value_len = h->ents[i].vl;
    return 1;
}

/* Removes the fields named name (nl bytes). */
static int remove_fields(pxy_hdrs_t *h, const char *name, size_t nl)
{
    int n = 0;
    for (size_t i = 0; i < h->n; i++)
        if (name_is(h, i, name, nl)) {
            h->size -= h->ents[i].nl + h->ents[i].vl + 32;
            h->ents[i].nl = 0;
            n++;
        }
    return n;
}

int mesh_proxy_call_remove_header(mesh_proxy_call_t *ps, const char *name)
{
    size_t nl = strlen(name);
    if (nl == 0 || name[0] == ':' || KEY_OF[mesh_h2_name_of((const uint8_t *)name, nl)])
        return 0;
    return remove_fields(&ps->reqh, name, nl);
}

/* Replaces every field called name (checked) with one of value. */
static int set_checked(pxy_hdrs_t *h, const mesh_proxy_call_t *ps, mesh_h2_name_t id,
                       const char *name, size_t nl, const char *value, size_t value_len)
{
    remove_fields(h, name, nl);
    if (h->size + nl + value_len + 32 > 2 * (size_t)ps->w->cfg.max_header_list_size)
        return -1;
    return hdrs_add(h, id, (const uint8_t *)name, nl, (const uint8_t *)value, value_len);
}

int mesh_proxy_call_set_header(mesh_proxy_call_t *ps, const char *name, const char *value,
                               size_t value_len)
{
    pxy_hdrs_t *h = &ps->reqh;
    size_t nl = strlen(name);
    mesh_h2_name_t id = mesh_h2_name_of((const uint8_t *)name, nl);
    if (reserved(name, nl, id))
        return -1;
    if ((id == MESH_H2_N_OTHER && mesh_h2_name_bad(name, nl)) ||
        mesh_h2_value_bad(value, value_len))
        return -1;
    return set_checked(h, ps, id, name, nl, value, value_len);
}

int mesh_proxy_call_set_own_header(mesh_proxy_call_t *ps, const char *name, size_t nl,
                                   const char *value, size_t value_len)
{
    mesh_h2_name_t id = mesh_h2_name_of((const uint8_t *)name, nl);
    assert(!reserved(name, nl, id) && !mesh_h2_name_bad(name, nl) &&
           !mesh_h2_value_bad(value, value_len));
    return set_checked(&ps->reqh, ps, id, name, nl, value, value_len);
}

int mesh_proxy_call_add_own_header(mesh_proxy_call_t *ps, const char *name, size_t nl,
                                   const char *value, size_t value_len)
{
    mesh_h2_name_t id = mesh_h2_name_of((const uint8_t *)name, nl);
    assert(!reserved(name, nl, id) && !mesh_h2_name_bad(name, nl) &&
           !mesh_h2_value_bad(value, value_len));
#ifndef NDEBUG
    size_t have;
    assert(!mesh_proxy_call_header(ps, name, &have)); /* (name: a literal, terminated) */
#endif
    pxy_hdrs_t *h = &ps->reqh;
    if (h->size + nl + value_len + 32 > 2 * (size_t)ps->w->cfg.max_header_list_size)
        return -1;
    return hdrs_add(h, id, (const uint8_t *)name, nl, (const uint8_t *)value, value_len);
}

const struct sockaddr *mesh_proxy_call_peer(const mesh_proxy_call_t *ps)
{
    return ps->peer;
}

const struct mesh_peer_id *mesh_proxy_call_peer_identity(const mesh_proxy_call_t *ps)
{
    return ps->ds ? ps->ds->peer_id : NULL;
}

void mesh_proxy_call_set_trace_id(mesh_proxy_call_t *ps, const char *id, size_t len)
{
    if (len >= sizeof(ps->trace_id))
        len = sizeof(ps->trace_id) - 1;
    memcpy(ps->trace_id, id, len);
    ps->trace_id[len] = '\0';
}

void mesh_proxy_call_summary(const mesh_proxy_call_t *ps, mesh_proxy_call_summary_t *out)
{
    out->upstream = ps->upstream[0] ? ps->upstream : NULL;
    out->req_bytes = ps->req_bytes;
    out->resp_bytes = ps->resp_bytes;
    out->retries = ps->retries;
}

void mesh_proxy_call_resume(mesh_proxy_call_t *ps, const mesh_proxy_verdict_t *reject)
{
    if (!ps->pending)
        return;
    int i = ps->pending - 1;
    ps->pending = 0;
    ps->body_cb = NULL;
    if (ps->failing || ps->resp_done || !ps->down)
        return; /* the call ended while the filter waited */
    if (reject) {
        mesh_proxy_verdict_t v = *reject;
        fail_verdict(ps, &v);
        return;
    }
    if (filters_admit(ps, i + 1) != 0)
        return;
    stream_route(ps);
}

void mesh_proxy_call_want_body(mesh_proxy_call_t *ps, size_t max, mesh_proxy_body_cb cb, void *ctx)
{
    size_t cap = ps->w->cfg.stream_buffer;
    ps->body_cb = cb;
    ps->body_ctx = ctx;
    ps->body_max = max < cap ? max : cap;
}

size_t mesh_proxy_call_body_next(const mesh_proxy_call_t *ps, size_t *pos, const uint8_t **data)
{
    const mesh_chunkq_t *q = &ps->req.q;
    size_t skip = *pos;
    for (const mesh_chunk_t *c = q->head; c; c = c->next) {
        size_t off = c == q->head ? q->head_off : 0;
        size_t len = c->len > off ? c->len - off : 0;
        if (skip < len) {
            *data = c->data + off + skip;
            *pos += len - skip;
            return len - skip;
        }
        skip -= len;
    }
    return 0;
}

/* ---- client (downstream) session callbacks ------------------------------------------------ */

/* The HTTP/2 client side of a call: one implementation of pxy_down_ops_t (defined below). */
static const pxy_down_ops_t h2_down_ops;

static void h2_resp_ready(pxy_stream_t *ps)
{
    mesh_h2_source_resume(&ps->resp, ps->ds->h2.session, ps->ds_id);
    mesh_h2_conn_flush(&ps->ds->h2);
}

static void h2_req_consumed(pxy_stream_t *ps, size_t n)
{
    if (ps->ds->h2.session) {
        /* A stream whose request ended takes no more DATA: only the connection's window
         * matters (and nghttp2 need not look the stream up). */
        if (ps->req.q.eof)
            nghttp2_session_consume_connection(ps->ds->h2.session, n);
        else
            nghttp2_session_consume(ps->ds->h2.session, ps->ds_id, n);
        mesh_h2_conn_flush(&ps->ds->h2);
    }
}

static void h2_detach(pxy_stream_t *ps)
{
    pxy_ds_conn_t *d = ps->ds;
    pxy_list_remove(&ps->ds_link);
    d->n_streams--;
    if (d->hdr_ps == ps)
        d->hdr_ps = NULL;
    ps->ds = NULL;
    ps->down = NULL;
    pxy_ds_conn_maybe_finish(d);
}

/* The call of the client's stream id. Most frames of a call arrive together (HEADERS, then
 * DATA), so the connection remembers the call it found last (hdr_ps, also the call whose header
 * block is coming in) and asks nghttp2's stream map only for another stream. The memo is
 * checked against the call's own connection and stream id, and dropped when the call leaves
 * the connection or its stream closes, so it never names a call object reused or freed. */
static pxy_stream_t *ds_stream(pxy_ds_conn_t *d, nghttp2_session *s, int32_t id)
{
    pxy_stream_t *ps = d->hdr_ps;
    if (ps && ps->ds_id == id && ps->ds == d)
        return ps;
    ps = nghttp2_session_get_stream_user_data(s, id);
    if (ps)
        d->hdr_ps = ps;
    return ps;
}

static int ds_on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    pxy_ds_conn_t *d = ud;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    pxy_stream_t *ps = pxy_stream_new(d->w, &h2_down_ops, d, (const struct sockaddr *)&d->peer);
    if (!ps)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    ps->ds = d;
    ps->ds_id = f->hd.stream_id;
    pxy_list_push(&d->streams, &ps->ds_link);
    d->n_streams++;
    nghttp2_session_set_stream_user_data(s, f->hd.stream_id, ps);
    d->hdr_ps = ps;
    return 0;
}

static int ds_on_header(nghttp2_session *s, const nghttp2_frame *f, nghttp2_rcbuf *name,
                        nghttp2_rcbuf *value, uint8_t flags, void *ud)
{
    pxy_ds_conn_t *d = ud;
    pxy_stream_t *ps = ds_stream(d, s, f->hd.stream_id);
    if (!ps || ps->started || ps->hdr_overflow)
        return 0; /* request trailers are not forwarded (gRPC clients send none) */
    nghttp2_vec n = nghttp2_rcbuf_get_buf(name), v = nghttp2_rcbuf_get_buf(value);
    if (ps->reqh.size + n.len + v.len + 32 > ps->w->cfg.max_header_list_size) {
        ps->hdr_overflow = 1;
        return 0;
    }
    int id =
        mesh_h2_field_cache_check(&d->fields, &ps->reqh.chk, MESH_H2_REQUEST, name, value, &n, &v);
    if (id < 0)
        return 0; /* answered when the block ends */
    if (hdrs_add(&ps->reqh, (mesh_h2_name_t)id, n.base, n.len, v.base, v.len) < 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return 0;
}

static int ds_on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    pxy_ds_conn_t *d = ud;
    if (f->hd.type == NGHTTP2_PING && (f->hd.flags & NGHTTP2_FLAG_ACK)) {
        mesh_h2_conn_ping_acked(&d->h2);
        return 0;
    }
    if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
        return 0;
    pxy_stream_t *ps = ds_stream(d, s, f->hd.stream_id);
    if (!ps)
        return 0;
    if (f->hd.type == NGHTTP2_HEADERS && !ps->started)
        h2_stream_start(ps);
    if ((f->hd.flags & NGHTTP2_FLAG_END_STREAM) && ps->ds) {
        ps->req.q.eof = 1;
        pxy_stream_req_ready(ps);
    }
    return 0;
}

static int ds_on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                            size_t len, void *ud)
{
    pxy_stream_t *ps = ds_stream(ud, s, id);
    if (!ps || ps->failing || ps->resp_done || !ps->started) {
        nghttp2_session_consume(s, id, len);
        return 0;
    }
    if (mesh_chunkq_append(&ps->req.q, data, len) < 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    ps->req_bytes += len;
    pxy_stream_req_ready(ps);
    return 0;
}

static int ds_on_frame_send(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    /* After the response ended, stop a client that is still uploading. */
    if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) &&
        (f->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
        nghttp2_session_get_stream_remote_close(s, f->hd.stream_id) == 0)
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_NO_ERROR);
    return 0;
}

static int ds_on_stream_close(nghttp2_session *s, int32_t id, uint32_t err, void *ud)
{
    pxy_ds_conn_t *d = ud;
    pxy_stream_t *ps = ds_stream(d, s, id);
    if (!ps)
        return 0;
    /* The stream's user data is left as it is: nghttp2 marks the stream closed when this
     * returns, and nghttp2_session_get_stream_user_data answers NULL for a closed stream. */
    if (d->hdr_ps == ps)
        d->hdr_ps = NULL;
    mesh_debug(ACTOR, "stream %d closed err=%u resp_done=%d", id, err, ps->resp_done);
    if (err != NGHTTP2_NO_ERROR && !ps->resp_done)
        mesh_debug(ACTOR, "client reset call (%s)", nghttp2_http2_strerror(err));
    pxy_stream_downstream_lost(ps);
    return 0;
}

nghttp2_session_callbacks *pxy_ds_callbacks_new(void)
{
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb) != 0)
        return NULL;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, ds_on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback2(cb, ds_on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, ds_on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, ds_on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, ds_on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, ds_on_stream_close);
    nghttp2_session_callbacks_set_send_data_callback(cb, mesh_h2_send_data);
    return cb;
}

/* ---- upstream session callbacks ----------------------------------------------------------- */

/* The call of the upstream stream id: as ds_stream, the connection's memo (hdr_ps) checked
 * against the call's connection and stream id, dropped when the call detaches (detach_us) or
 * the stream closes; nghttp2's stream map otherwise. */
static pxy_stream_t *us_stream(pxy_us_conn_t *u, nghttp2_session *s, int32_t id)
{
    pxy_stream_t *ps = u->hdr_ps;
    if (ps && ps->us_id == id && ps->us == u)
        return ps;
    ps = nghttp2_session_get_stream_user_data(s, id);
    if (ps)
        u->hdr_ps = ps;
    return ps;
}

static int us_on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    us_stream(ud, s, f->hd.stream_id);
    return 0;
}

static int us_on_header(nghttp2_session *s, const nghttp2_frame *f, nghttp2_rcbuf *name,
                        nghttp2_rcbuf *value, uint8_t flags, void *ud)
{
    pxy_us_conn_t *u = ud;
    pxy_stream_t *ps = us_stream(u, s, f->hd.stream_id);
    if (!ps || !ps->down || ps->failing)
        return 0;
    pxy_hdrs_t *h = ps->resp_headers ? &ps->respt : &ps->resph;
    mesh_h2_block_t blk = ps->resp_headers ? MESH_H2_TRAILERS : MESH_H2_RESPONSE;
    nghttp2_vec n = nghttp2_rcbuf_get_buf(name), v = nghttp2_rcbuf_get_buf(value);
    if (h->size + n.len + v.len + 32 > 4 * (size_t)ps->w->cfg.max_header_list_size)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    int id = mesh_h2_field_cache_check(&u->fields, &h->chk, blk, name, value, &n, &v);
    if (id < 0)
        return 0; /* answered when the block ends */
    if (hdrs_add(h, (mesh_h2_name_t)id, n.base, n.len, v.base, v.len) < 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return 0;
}

/* Forwards the upstream's response HEADERS to the client. */
static void forward_response(pxy_stream_t *ps, int end_stream)
{
    pxy_hdrs_t *h = &ps->resph;
    size_t vl;
    const char *st = hdrs_get(h, PXY_H_STATUS, &vl);
    int status = 0;
    for (size_t i = 0; st && i < vl; i++)
        status = status * 10 + (st[i] - '0');
    int has_grpc_status = hdrs_get(h, PXY_H_GRPC_STATUS, &vl) != NULL;
    if (status != 200 && !(end_stream && has_grpc_status)) {
        pxy_stream_fail(ps, mesh_grpc_status_from_http(status),
                        "meshd: upstream %s answered HTTP %d", ps->ep->addr, status);
        return;
    }
    if (end_stream) {
        const char *gs = hdrs_get(h, PXY_H_GRPC_STATUS, &vl);
        if (gs)
            ps->final_status = mesh_grpc_status_parse(gs, vl);
        uv_timer_stop(&ps->timer);
    }
    ps->dops->respond_head(ps, end_stream);
}

/* The HTTP/2 client's response HEADERS: the upstream's, less pseudo and hop-by-hop fields. */
static void h2_respond_head(pxy_stream_t *ps, int end_stream)
{
    pxy_hdrs_t *h = &ps->resph;
    size_t vl;
    const char *st = hdrs_get(h, PXY_H_STATUS, &vl);
    nghttp2_nv *nv = nv_reserve(ps, h->n + 1);
    if (!nv) {
        pxy_stream_fail(ps, MESH_GRPC_RESOURCE_EXHAUSTED, "meshd: out of memory");
        return;
    }
    size_t n = 0;
    nv[n++] = mknv_nc(":status", 7, st, 3);
    for (size_t i = 0; i < h->n; i++) {
        const char *name = h->buf + h->ents[i].no;
        if (name[0] == ':' || mesh_h2_name_hop_by_hop(h->ents[i].id))
            continue;
        nv[n++] = mknv_nc(name, h->ents[i].nl, h->buf + h->ents[i].vo, h->ents[i].vl);
    }
    nghttp2_session *ds = ps->ds->h2.session;
    mesh_debug(ACTOR, "stream %d: response headers (end %d)", ps->ds_id, end_stream);
    if (end_stream) {
        nghttp2_submit_response(ds, ps->ds_id, nv, n, NULL);
        ps->resp_done = 1;
    } else {
        nghttp2_data_provider prd = {.source = {.ptr = &ps->resp},
                                     .read_callback = mesh_h2_source_read};
        nghttp2_submit_response(ds, ps->ds_id, nv, n, &prd);
        ps->resp_started = 1;
    }
    mesh_h2_conn_flush(&ps->ds->h2);
}

/* A Trailers-Only answer (HTTP 200 with grpc-status): 1 when the retry policy takes it. */
static int retry_trailers_only(pxy_stream_t *ps)
{
    size_t vl;
    const char *st = hdrs_get(&ps->resph, PXY_H_STATUS, &vl);
    const char *gs = hdrs_get(&ps->resph, PXY_H_GRPC_STATUS, &vl);
    if (!st || memcmp(st, "200", 3) != 0 || !gs)
        return 0;
    return pxy_retry_on_status(ps, mesh_grpc_status_parse(gs, vl));
}

static int us_on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    pxy_us_conn_t *u = ud;
    if (f->hd.type == NGHTTP2_PING && (f->hd.flags & NGHTTP2_FLAG_ACK)) {
        mesh_h2_conn_ping_acked(&u->h2);
        return 0;
    }
    if (f->hd.type == NGHTTP2_GOAWAY) {
        u->goaway = 1;
        return 0;
    }
    if (f->hd.type != NGHTTP2_HEADERS)
        return 0;
    pxy_stream_t *ps = us_stream(u, s, f->hd.stream_id);
    if (!ps || !ps->down || ps->failing)
        return 0;
    int end = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    mesh_h2_block_t blk = ps->resp_headers ? MESH_H2_TRAILERS : MESH_H2_RESPONSE;
    pxy_hdrs_t *h = ps->resp_headers ? &ps->respt : &ps->resph;
    if (mesh_h2_fields_end(&h->chk, blk) < 0 || (blk == MESH_H2_TRAILERS && !end)) {
        mesh_chunkq_commit(&ps->req.q); /* the upstream saw the call: no retry */
        pxy_stream_fail(ps, MESH_GRPC_INTERNAL, "meshd: upstream %s sent a malformed response: %s",
                        u->name, h->chk.problem ? h->chk.problem : "trailers without END_STREAM");
        return 0;
    }
    if (!ps->resp_headers && (ps->hedge || ps->dops == &pxy_hedge_ops) &&
        !(ps = pxy_hedge_settle(ps)))
        return 0; /* a hedged attempt that lost: cancelled */
    if (!ps->resp_headers && end && ps->rp && retry_trailers_only(ps))
        return 0; /* a retryable status: the call goes to another instance */
    if (!ps->resp_headers) {
        ps->resp_headers = 1;
        mesh_chunkq_commit(&ps->req.q); /* the upstream took the call: no retry from here */
        forward_response(ps, end);
    } else if (end) {
        size_t gl;
        const char *gs = hdrs_get(&ps->respt, PXY_H_GRPC_STATUS, &gl);
        ps->final_status = gs ? mesh_grpc_status_parse(gs, gl) : MESH_GRPC_INTERNAL;
        ps->trailers = PXY_TRAILERS_FORWARD;
        ps->resp.q.eof = 1;
        uv_timer_stop(&ps->timer);
        ps->dops->resp_ready(ps);
    }
    return 0;
}

static int us_on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                            size_t len, void *ud)
{
    pxy_stream_t *ps = us_stream(ud, s, id);
    if (!ps || !ps->down || ps->failing || !ps->resp_started) {
        nghttp2_session_consume(s, id, len);
        return 0;
    }
    if (mesh_chunkq_append(&ps->resp.q, data, len) < 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    ps->resp_bytes += len;
    ps->dops->resp_ready(ps);
    return 0;
}

static int us_on_frame_send(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    if (f->hd.type != NGHTTP2_DATA)
        return 0;
    pxy_stream_t *ps = us_stream(ud, s, f->hd.stream_id);
    /* Retain at most half the stream buffer for a retry; beyond that, commit. */
    if (ps && ps->req.q.retain &&
        ps->req.q.buffered - ps->req.q.unsent >= ps->w->cfg.stream_buffer / 2)
        mesh_chunkq_commit(&ps->req.q);
    return 0;
}

static int us_on_stream_close(nghttp2_session *s, int32_t id, uint32_t err, void *ud)
{
    pxy_us_conn_t *u = ud;
    pxy_stream_t *ps = us_stream(u, s, id);
    if (!ps)
        return 0;
    /* User data left as it is, as in ds_on_stream_close. */
    if (u->hdr_ps == ps)
        u->hdr_ps = NULL;
    if (ps->retry_wait) { /* the attempt is closed: the retry goes on (proxy_retry.c) */
        pxy_retry_attempt_closed(ps);
        return 0;
    }
    if (err == NGHTTP2_NO_ERROR &&
        (ps->resp_done || ps->failing || !ps->down || ps->trailers == PXY_TRAILERS_FORWARD)) {
        /* The usual end: the response is complete or the client side is settled. (What
         * pxy_stream_upstream_lost does then, without formatting a reason nobody reads.) */
        detach_us(ps);
        if (!ps->down || ps->resp_done || ps->failing)
            stream_maybe_free(ps);
        return 0;
    }
    char why[160];
    int never_sent = 0;
    if (err == NGHTTP2_REFUSED_STREAM) {
        never_sent = 1;
        snprintf(why, sizeof(why), "upstream %s refused the call", u->name);
    } else if (err != NGHTTP2_NO_ERROR) {
        if (!ps->resp_done && !ps->failing && ps->down && ps->trailers == PXY_TRAILERS_NONE) {
            detach_us(ps);
            snprintf(why, sizeof(why), "upstream %s reset the call (%s)", u->name,
                     nghttp2_http2_strerror(err));
            if (ps->rp && !ps->resp_started &&
                pxy_retry_on_lost(ps, 0, mesh_grpc_status_from_h2_error(err), why))
                return 0;
            pxy_stream_fail(ps, mesh_grpc_status_from_h2_error(err),
                            "meshd: upstream %s reset the call (%s)", u->name,
                            nghttp2_http2_strerror(err));
            stream_maybe_free(ps);
            return 0;
        }
        snprintf(why, sizeof(why), "upstream %s reset the call", u->name);
    } else {
        snprintf(why, sizeof(why), "upstream %s ended the call without grpc-status", u->name);
        if (!ps->resp_done && !ps->failing && ps->down && ps->trailers == PXY_TRAILERS_NONE) {
            detach_us(ps);
            pxy_stream_fail(ps, MESH_GRPC_INTERNAL, "meshd: %s", why);
            stream_maybe_free(ps);
            return 0;
        }
    }
    pxy_stream_upstream_lost(ps, never_sent, why);
    return 0;
}

static const pxy_down_ops_t h2_down_ops = {
    .respond_error = h2_respond_error,
    .respond_head = h2_respond_head,
    .resp_ready = h2_resp_ready,
    .req_consumed = h2_req_consumed,
    .detach = h2_detach,
};

nghttp2_session_callbacks *pxy_us_callbacks_new(void)
{
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb) != 0)
        return NULL;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, us_on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback2(cb, us_on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, us_on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, us_on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, us_on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, us_on_stream_close);
    nghttp2_session_callbacks_set_send_data_callback(cb, mesh_h2_send_data);
    return cb;
}

/* ---- for transport/proxy_retry.c ---------------------------------------------------------- */

void pxy_stream_detach_upstream(pxy_stream_t *ps)
{
    detach_us(ps);
}

void pxy_stream_release_if_done(pxy_stream_t *ps)
{
    stream_maybe_free(ps);
}

void pxy_stream_reset_response(pxy_stream_t *ps)
{
    hdrs_clear(&ps->resph);
    hdrs_clear(&ps->respt);
    ps->resp_headers = 0;
}

void pxy_stream_route_to(pxy_stream_t *ps, const pxy_endpoint_t *exclude, const char *why)
{
    route_to_upstream(ps, exclude, why);
}

void pxy_stream_cancel_upstream(pxy_stream_t *ps)
{
    cancel_upstream(ps);
}

const char *pxy_stream_path(const pxy_stream_t *ps, size_t *len)
{
    return hdrs_get(&ps->reqh, PXY_H_PATH, len);
}

void pxy_stream_parse_path(pxy_stream_t *ps)
{
    size_t pl;
    parse_path(ps, &pl);
}

void pxy_stream_arm_timer(pxy_stream_t *ps)
{
    uint64_t t = ps->deadline_ms;
    if (ps->try_deadline_ms && (!t || ps->try_deadline_ms < t))
        t = ps->try_deadline_ms;
    if (ps->hedge_at_ms && (!t || ps->hedge_at_ms < t))
        t = ps->hedge_at_ms;
    uv_timer_stop(&ps->timer);
    if (!t)
        return;
    uint64_t now = uv_now(ps->w->loop);
    uv_timer_start(&ps->timer, on_deadline, t > now ? t - now : 0, 0);
}
