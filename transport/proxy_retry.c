/*
 * transport/proxy_retry.c: the proxy engine's policy retries, per-try timeouts and injected
 * faults: the I/O half of transport/retry.h, on a call of proxy_stream.c.
 *
 * A filter (the policy chain, from the `routes:` block) gives a call its retry policy and, for
 * fault injection, an abort status or a delay. Then:
 *  - when the call is routed, it is counted in the worker's retry budget, and an injected
 *    abort answers it ("meshd: fault injected") or an injected delay holds it first;
 *  - an attempt answered Trailers-Only (no response header went to the client yet) with a
 *    retryable status, by a method configured idempotent, whose request bytes are all still
 *    held (proxy_stream.c retains them up to half the stream buffer), is retried when the
 *    budget allows: its upstream stream is closed (RST_STREAM CANCEL when still open), and after
 *    a jittered exponential backoff the call goes to another instance (the failed one excluded
 *    while another is live) with grpc-previous-rpc-attempts;
 *  - an attempt reset or lost before any response is retried the same way (status UNAVAILABLE);
 *    one that provably never left is retried like before, also beyond the engine's one free
 *    retry when the policy allows;
 *  - a per-try timeout ends an attempt (RST_STREAM CANCEL) and retries it when allowed, else
 *    the call ends DEADLINE_EXCEEDED.
 * The backoff and the delay use the call's one timer: the deadline is re-armed after them.
 */
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "transport/grpc_status.h"
#include "transport/proxy_internal.h"

#define ACTOR "proxy"

static uint64_t next_rand(mesh_proxy_worker_t *w)
{
    uint64_t x = w->jitter_rng ? w->jitter_rng : (uv_hrtime() | 1) ^ ((uint64_t)(uintptr_t)w << 17);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    w->jitter_rng = x;
    return x;
}

void mesh_proxy_call_set_retry(mesh_proxy_call_t *ps, const mesh_retry_policy_t *p,
                               const mesh_retry_budget_cfg_t *budget)
{
    ps->rp = p;
    if (budget) {
        int n = ps->w->cfg.n_workers > 0 ? ps->w->cfg.n_workers : 1;
        ps->budget_cfg.ratio = budget->ratio;
        ps->budget_cfg.min_per_s = budget->min_per_s / n;
    }
}

void mesh_proxy_call_inject_fault(mesh_proxy_call_t *ps, int abort_status, uint64_t delay_ms)
{
    ps->fault_abort = abort_status >= 1 && abort_status <= 16 ? abort_status : 0;
    ps->fault_delay_ms = delay_ms;
}

/* The call's timer after a hold (backoff or injected delay): route it now. */
static void on_hold(uv_timer_t *t)
{
    pxy_stream_t *ps = t->data;
    if (!ps->down || ps->failing || ps->resp_done)
        return;
    if (ps->deadline_ms && uv_now(ps->w->loop) >= ps->deadline_ms) {
        pxy_stream_fail(ps, MESH_GRPC_DEADLINE_EXCEEDED, "meshd: deadline exceeded%s%s",
                        ps->retry_why[0] ? " before a retry: " : "", ps->retry_why);
        return;
    }
    const pxy_endpoint_t *ex = ps->retry_exclude;
    ps->retry_exclude = NULL;
    pxy_stream_route_to(ps, ex, ps->retry_why[0] ? ps->retry_why : NULL);
}

/* Holds the call for ms, then routes it (the deadline still ends it meanwhile). */
static void hold(pxy_stream_t *ps, uint64_t ms)
{
    uv_timer_stop(&ps->timer);
    ps->held = 1;
    if (ps->deadline_ms) {
        uint64_t now = uv_now(ps->w->loop);
        uint64_t left = ps->deadline_ms > now ? ps->deadline_ms - now : 0;
        if (ms > left)
            ms = left; /* on_hold then fails it DEADLINE_EXCEEDED */
    }
    uv_timer_start(&ps->timer, on_hold, ms, 0);
}

int pxy_retry_fault(pxy_stream_t *ps)
{
    mesh_proxy_worker_t *w = ps->w;
    if (ps->fault_abort) {
        int code = ps->fault_abort;
        ps->fault_abort = 0;
        ps->fault_delay_ms = 0;
        w->stats.faults_aborted++;
        pxy_stream_fail(ps, code, "meshd: fault injected (%s) for %.*s/%.*s",
                        mesh_grpc_status_name(code), ps->svc_len, ps->svc_str, ps->method_len,
                        ps->method_str);
        return 1;
    }
    if (ps->fault_delay_ms) {
        uint64_t ms = ps->fault_delay_ms;
        ps->fault_delay_ms = 0;
        w->stats.faults_delayed++;
        ps->retry_why[0] = '\0';
        ps->retry_exclude = NULL;
        hold(ps, ms);
        return 1;
    }
    return 0;
}

/* Asks the policy and the budget whether the attempt may be tried again. */
static int may_retry(pxy_stream_t *ps, int status, int never_sent, int timed_out)
{
    mesh_retry_attempt_t a = {
        .attempts = (uint32_t)ps->retries + 1,
        .status = status,
        .never_sent = never_sent,
        .resp_forwarded = ps->resp_started || ps->resp_done,
        .replayable = ps->req.q.retain,
        .timed_out = timed_out,
    };
    mesh_retry_verdict_t v = mesh_retry_decide(ps->rp, &a);
    if (v != MESH_RETRY_YES) {
        if (ps->rp && ps->rp->max_attempts > 1)
            mesh_debug(ACTOR, "no retry of %.*s/%.*s: %s", ps->svc_len, ps->svc_str, ps->method_len,
                       ps->method_str, mesh_retry_verdict_name(v));
        return 0;
    }
    if (!mesh_retry_budget_take(&ps->w->budget, &ps->budget_cfg, uv_now(ps->w->loop))) {
        ps->w->stats.retry_budget_exhausted++;
        mesh_debug(ACTOR, "no retry of %.*s/%.*s: retry budget exhausted", ps->svc_len, ps->svc_str,
                   ps->method_len, ps->method_str);
        return 0;
    }
    return 1;
}

/* Counts the retry and routes the call again after the backoff, away from ep when it can. */
static void schedule(pxy_stream_t *ps, const pxy_endpoint_t *ep)
{
    ps->retries++;
    ps->w->stats.retries++;
    ps->retry_exclude = ep;
    ps->us_id = -1;
    pxy_stream_reset_response(ps);
    mesh_chunkq_rewind(&ps->req.q);
    uint64_t ms = mesh_retry_backoff_ms(ps->rp, (uint32_t)ps->retries, next_rand(ps->w));
    mesh_debug(ACTOR, "retry %d of %.*s/%.*s in %llu ms: %s", ps->retries, ps->svc_len, ps->svc_str,
               ps->method_len, ps->method_str, (unsigned long long)ms, ps->retry_why);
    hold(ps, ms);
}

int pxy_retry_on_status(pxy_stream_t *ps, int status)
{
    if (!ps->rp || status == MESH_GRPC_OK || !may_retry(ps, status, 0, 0))
        return 0;
    snprintf(ps->retry_why, sizeof(ps->retry_why), "upstream %s answered %s", ps->upstream,
             mesh_grpc_status_name(status));
    ps->retry_wait = 1;
    ps->final_status = status; /* for the endpoint's outlier state when it detaches */
    uv_timer_stop(&ps->timer);
    /* Close the attempt's stream; its close callback goes on in pxy_retry_attempt_closed. */
    pxy_us_conn_t *u = ps->us;
    if (u && ps->us_id > 0 && u->h2.session &&
        nghttp2_session_get_stream_local_close(u->h2.session, ps->us_id) == 0) {
        nghttp2_submit_rst_stream(u->h2.session, NGHTTP2_FLAG_NONE, ps->us_id, NGHTTP2_CANCEL);
        mesh_h2_conn_flush(&u->h2);
    }
    return 1;
}

void pxy_retry_attempt_closed(pxy_stream_t *ps)
{
    const pxy_endpoint_t *ep = ps->ep;
    pxy_stream_detach_upstream(ps);
    ps->retry_wait = 0;
    ps->final_status = MESH_PROXY_STATUS_NONE;
    if (!ps->down || ps->failing || ps->resp_done) {
        pxy_stream_release_if_done(ps);
        return;
    }
    schedule(ps, ep);
}

int pxy_retry_on_lost(pxy_stream_t *ps, int never_sent, int status, const char *why)
{
    if (!ps->rp || !ps->down || ps->failing || ps->resp_done ||
        !may_retry(ps, status, never_sent, 0))
        return 0;
    snprintf(ps->retry_why, sizeof(ps->retry_why), "%s", why);
    schedule(ps, ps->ep);
    return 1;
}

void pxy_retry_attempt_started(pxy_stream_t *ps)
{
    uint64_t now = uv_now(ps->w->loop);
    ps->try_deadline_ms =
        ps->rp && ps->rp->per_try_timeout_ms ? now + ps->rp->per_try_timeout_ms : 0;
    if (ps->rp && ps->rp->hedge_max_attempts > 1 && !ps->hedged && ps->dops != &pxy_hedge_ops)
        ps->hedge_at_ms = now + ps->rp->hedge_delay_ms;
    pxy_stream_arm_timer(ps);
}

int pxy_retry_on_timer(pxy_stream_t *ps)
{
    uint64_t now = uv_now(ps->w->loop);
    if (ps->hedge_at_ms && now >= ps->hedge_at_ms && !(ps->deadline_ms && now >= ps->deadline_ms)) {
        ps->hedge_at_ms = 0;
        pxy_hedge_start(ps); /* (transport/proxy_hedge.c) */
        if (!ps->failing)
            pxy_stream_arm_timer(ps);
        return 1;
    }
    if (!ps->try_deadline_ms || (ps->deadline_ms && now >= ps->deadline_ms))
        return 0; /* the call's own deadline */
    if (now < ps->try_deadline_ms) {
        pxy_stream_arm_timer(ps);
        return 1;
    }
    ps->try_deadline_ms = 0;
    if (!ps->us || ps->resp_started || ps->resp_done || ps->failing || ps->retry_wait) {
        pxy_stream_arm_timer(ps); /* the attempt answered in time: the deadline alone */
        return 1;
    }
    /* The attempt took too long: end it, and retry when the policy allows (an idempotent
     * method: the app may have acted). */
    if (!may_retry(ps, MESH_GRPC_DEADLINE_EXCEEDED, 0, 1)) {
        pxy_stream_fail(ps, MESH_GRPC_DEADLINE_EXCEEDED,
                        "meshd: upstream %s did not answer within the per-try timeout (%llu ms)",
                        ps->upstream, (unsigned long long)ps->rp->per_try_timeout_ms);
        return 1;
    }
    snprintf(ps->retry_why, sizeof(ps->retry_why),
             "upstream %s did not answer within the per-try timeout", ps->upstream);
    ps->retry_wait = 1;
    ps->final_status = MESH_GRPC_DEADLINE_EXCEEDED;
    pxy_us_conn_t *u = ps->us;
    if (ps->us_id > 0 && u->h2.session) {
        nghttp2_submit_rst_stream(u->h2.session, NGHTTP2_FLAG_NONE, ps->us_id, NGHTTP2_CANCEL);
        mesh_h2_conn_flush(&u->h2);
    } else {
        pxy_retry_attempt_closed(ps); /* not sent yet: nothing to close */
    }
    return 1;
}
