/*
 * transport/proxy_hedge.c: hedging in the proxy engine: for a method configured idempotent with
 * `hedging:` (transport/retry.h), a second attempt on another instance after `delay`; the first
 * attempt whose response headers arrive wins, the other is cancelled (RST_STREAM CANCEL).
 *
 * The second attempt is a call object of its own (a "hedge": its front end is the first call,
 * through hedge_ops below): a copy of the request headers and of the whole request, which must
 * have ended and still be held for replay when the delay is over (a request still streaming or
 * larger than the replay bound is not hedged). The hedge runs no filter and is not counted as a
 * call; it carries grpc-previous-rpc-attempts: 1.
 *
 * When the hedge's response headers come first and its request was sent to the end, the first
 * call takes the hedge's upstream stream over (the stream's user data, its place in the
 * connection's list, the response headers) and cancels its own attempt; the response then flows
 * as for any call. When the first call's headers come first, or it ends in any way, the hedge is
 * cancelled. A hedge that fails on its own (no other live instance, a reset) just goes away.
 * One hedge per call: max-attempts above 2 act as 2.
 */
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "transport/grpc_status.h"
#include "transport/proxy_internal.h"

#define ACTOR "proxy"

/* ---- the hedge's front end: the first call ------------------------------------------------ */

/* Unlinks the hedge from its first call; no callback reaches that call afterwards. */
static void hedge_unlink(pxy_stream_t *h)
{
    pxy_stream_t *ps = h->down;
    if (ps && ps->hedge == h)
        ps->hedge = NULL;
    h->down = NULL;
}

static void hedge_respond_error(pxy_stream_t *h, int code, const char *msg)
{
    mesh_debug(ACTOR, "hedged attempt ends: %s %s", mesh_grpc_status_name(code), msg);
    h->resp_done = 1;
    h->w->stats.calls_failed--; /* the call did not fail: one of its attempts did */
    hedge_unlink(h);
}

static void hedge_respond_head(pxy_stream_t *h, int end_stream)
{
    (void)end_stream; /* (the hedge's headers are taken over before they are forwarded) */
    h->resp_done = 1;
    hedge_unlink(h);
}

static void hedge_resp_ready(pxy_stream_t *h)
{
    (void)h;
}

static void hedge_req_consumed(pxy_stream_t *h, size_t n)
{
    (void)h; /* the client's credit comes back through the first call's queue */
    (void)n;
}

const pxy_down_ops_t pxy_hedge_ops = {
    .respond_error = hedge_respond_error,
    .respond_head = hedge_respond_head,
    .resp_ready = hedge_resp_ready,
    .req_consumed = hedge_req_consumed,
    .detach = hedge_unlink,
};

/* ---- starting and ending a hedge ------------------------------------------------------------ */

/* A copy of ps's request (headers and bytes) as a new call object, or NULL. */
static pxy_stream_t *hedge_new(pxy_stream_t *ps)
{
    mesh_proxy_worker_t *w = ps->w;
    pxy_stream_t *h = pxy_stream_new(w, &pxy_hedge_ops, ps, ps->peer);
    if (!h)
        return NULL;
    for (size_t i = 0; i < ps->reqh.n; i++) {
        const struct pxy_hdr *e = &ps->reqh.ents[i];
        if (e->nl &&
            pxy_stream_add_header(h, ps->reqh.buf + e->no, e->nl, ps->reqh.buf + e->vo, e->vl) != 0)
            goto fail;
    }
    size_t pos = 0, n;
    const uint8_t *data;
    while ((n = mesh_proxy_call_body_next(ps, &pos, &data)) > 0)
        if (mesh_chunkq_append(&h->req.q, data, n) < 0)
            goto fail;
    h->req.q.eof = 1;
    h->started = 1;
    h->retries = 1; /* grpc-previous-rpc-attempts: 1 */
    h->deadline_ms = ps->deadline_ms;
    h->routes = ps->routes ? mesh_routes_ref(ps->routes) : NULL;
    h->svc = ps->svc;
    h->svc_pol = ps->svc_pol; /* the service's settings: the same plan as the call's */
    h->default_route = ps->default_route;
    pxy_stream_parse_path(h);
    return h;
fail:
    h->down = NULL;
    pxy_stream_release_if_done(h);
    return NULL;
}

void pxy_hedge_start(pxy_stream_t *ps)
{
    mesh_proxy_worker_t *w = ps->w;
    if (ps->hedge || ps->hedged || !ps->us || ps->resp_headers || ps->resp_started ||
        ps->resp_done || ps->failing || !ps->req.q.eof || !ps->req.q.retain)
        return; /* answered already, streaming, or too large to replay */
    ps->hedged = 1;
    pxy_stream_t *h = hedge_new(ps);
    if (!h)
        return;
    ps->hedge = h;
    w->stats.hedges++;
    mesh_debug(ACTOR, "hedging %.*s/%.*s: a second attempt away from %s", ps->svc_len, ps->svc_str,
               ps->method_len, ps->method_str, ps->upstream);
    pxy_stream_route_to(h, ps->ep, NULL); /* (no other live instance: the hedge just ends) */
    if (!h->down && !h->us)
        pxy_stream_release_if_done(h);
}

void pxy_hedge_drop(pxy_stream_t *ps)
{
    pxy_stream_t *h = ps->hedge;
    if (!h)
        return;
    hedge_unlink(h);
    pxy_stream_cancel_upstream(h); /* RST_STREAM CANCEL once sent; forgotten when not */
    pxy_stream_release_if_done(h);
}

pxy_stream_t *pxy_hedge_settle(pxy_stream_t *ps)
{
    if (ps->dops != &pxy_hedge_ops) { /* the first call answered first: the hedge loses */
        pxy_hedge_drop(ps);
        return ps;
    }
    pxy_stream_t *h = ps, *c = h->down;
    pxy_us_conn_t *u = h->us;
    if (!c || c->failing || c->resp_done || c->resp_started || !u || h->us_id <= 0 ||
        !u->h2.session || !nghttp2_session_get_stream_local_close(u->h2.session, h->us_id)) {
        /* the call is over, or the hedge's request is still being sent: it loses */
        if (c)
            pxy_hedge_drop(c);
        else
            pxy_stream_cancel_upstream(h);
        return NULL;
    }
    /* The hedge wins: the call cancels its own attempt (neutral for the endpoint's outlier
     * state) and takes the hedge's upstream stream over. */
    mesh_debug(ACTOR, "hedged attempt on %s answered first; cancelling %s", h->upstream,
               c->upstream);
    if (c->us) {
        if (c->us_id > 0 && c->us->h2.session) {
            nghttp2_session_set_stream_user_data(c->us->h2.session, c->us_id, NULL);
            nghttp2_submit_rst_stream(c->us->h2.session, NGHTTP2_FLAG_NONE, c->us_id,
                                      NGHTTP2_CANCEL);
            mesh_h2_conn_flush(&c->us->h2);
        }
        int fs = c->final_status;
        c->final_status = MESH_GRPC_CANCELLED;
        pxy_stream_detach_upstream(c);
        c->final_status = fs;
    }
    c->us = u;
    c->us_id = h->us_id;
    c->ep = h->ep;
    pxy_list_remove(&h->us_link);
    pxy_list_push(&u->streams, &c->us_link);
    nghttp2_session_set_stream_user_data(u->h2.session, c->us_id, c);
    if (u->hdr_ps == h)
        u->hdr_ps = c;
    pxy_hdrs_t t = c->resph;
    c->resph = h->resph;
    h->resph = t;
    snprintf(c->upstream, sizeof(c->upstream), "%s", h->upstream);
    c->hedge = NULL;
    c->retries++;
    h->us = NULL;
    h->us_id = -1;
    h->down = NULL;
    pxy_stream_release_if_done(h);
    return c;
}
