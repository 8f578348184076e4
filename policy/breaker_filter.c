/*
 * policy/breaker_filter.c: the sidecar's circuit breaker filter, one per app shared by every
 * worker (see policy/breaker_filter.h).
 *
 * The permit of an admitted call (state generation + probe flag) is packed into the filter's
 * call token, so the hook allocates nothing per call.
 */
#include "policy/breaker_filter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <uv.h>

#include "actors/evring.h"
#include "common/log.h"
#include "policy/breaker_options.h"
#include "transport/grpc_status.h"

void pol_breaker_filter_config(const mesh_config_t *cfg, pol_breaker_config_t *out)
{
    const pol_breaker_options_t *o = pol_breaker_options(cfg);
    pol_breaker_config_default(out);
    out->consecutive_failures = (uint32_t)o->failures;
    out->failure_ratio = o->failure_ratio;
    out->ratio_min_calls = (uint32_t)o->min_calls;
    out->window_ns = (uint64_t)o->window_ms * 1000000ull;
    out->max_concurrent = (uint32_t)o->max_concurrent;
    out->open_ns = (uint64_t)o->open_ms * 1000000ull;
    if (out->open_max_ns < out->open_ns)
        out->open_max_ns = out->open_ns;
    out->half_open_probes = (uint32_t)o->half_open_calls;
}

_Static_assert((int)POL_BREAKER_CLOSED == (int)MESH_EV_BREAKER_CLOSED &&
                   (int)POL_BREAKER_OPEN == (int)MESH_EV_BREAKER_OPEN &&
                   (int)POL_BREAKER_HALF_OPEN == (int)MESH_EV_BREAKER_HALF_OPEN,
               "the event ring's breaker states are the breaker's");

static void on_transition(void *ud, const pol_breaker_transition_t *t)
{
    pol_breaker_filter_t *bf = ud;
    /* On a worker, the transition goes to the control loop through the worker's event ring
     * (batched, never blocking, nothing allocated): the node logs it and audits it; elsewhere
     * it is logged here. */
    struct timeval tv;
    gettimeofday(&tv, NULL);
    mesh_event_t e = {.type = MESH_EV_BREAKER,
                      .a = t->to == POL_BREAKER_OPEN,
                      .c = (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec};
    e.breaker.instance = bf->instance;
    e.breaker.from = (uint8_t)t->from;
    e.breaker.to = (uint8_t)t->to;
    snprintf(e.breaker.reason, sizeof(e.breaker.reason), "%s", t->reason);
    if (mesh_evring_push_current(&e) == 0)
        return;
    if (t->to == POL_BREAKER_OPEN)
        mesh_warn("breaker", "circuit for %s %s -> %s: %s", t->service,
                  pol_breaker_state_name(t->from), pol_breaker_state_name(t->to), t->reason);
    else
        mesh_info("breaker", "circuit for %s %s -> %s: %s", t->service,
                  pol_breaker_state_name(t->from), pol_breaker_state_name(t->to), t->reason);
}

static int filter_on_call(void *ctx, const mesh_proxy_call_info_t *info, mesh_proxy_verdict_t *out,
                          void **token)
{
    pol_breaker_filter_t *bf = ctx;
    pol_breaker_permit_t p;
    pol_breaker_decision_t d = pol_breaker_allow(&bf->b, uv_hrtime(), &p);
    if (d == POL_BREAKER_ALLOWED) {
        *token = (void *)(((uintptr_t)p.gen << 1) | (p.probe ? 1u : 0u));
        return MESH_PROXY_ACCEPT;
    }
    out->grpc_status = MESH_GRPC_UNAVAILABLE;
    if (d == POL_BREAKER_REJECT_OPEN)
        snprintf(out->message, sizeof(out->message), "meshd: circuit open for %.*s",
                 (int)(info->service_len > 150 ? 150 : info->service_len), info->service);
    else
        pol_breaker_reject_message(&bf->b, d, out->message, sizeof(out->message));
    return MESH_PROXY_REJECT;
}

static void filter_on_done(void *ctx, void *token, int status)
{
    pol_breaker_filter_t *bf = ctx;
    uintptr_t v = (uintptr_t)token;
    pol_breaker_permit_t p = {.gen = (uint32_t)(v >> 1), .probe = (uint8_t)(v & 1), .done = 0};
    pol_breaker_outcome_t o =
        status == MESH_PROXY_STATUS_NONE ? POL_BREAKER_IGNORED : pol_breaker_classify_grpc(status);
    pol_breaker_done(&bf->b, &p, o, uv_hrtime());
}

int pol_breaker_filter_init(pol_breaker_filter_t *bf, const mesh_config_t *cfg, const char *app)
{
    pol_breaker_config_t bc;
    pol_breaker_filter_config(cfg, &bc);
    char err[128];
    if (pol_breaker_config_check(&bc, err, sizeof(err)) != 0) {
        mesh_error("breaker", "invalid breaker.* configuration: %s", err);
        return -1;
    }
    char name[POL_BREAKER_SERVICE_MAX];
    snprintf(name, sizeof(name), "app %s", app);
    bf->instance = strdup(app);
    if (!bf->instance || pol_breaker_init(&bf->b, name, &bc, on_transition, bf) != 0) {
        mesh_error("breaker", "cannot create the breaker of %s", name);
        free(bf->instance);
        bf->instance = NULL;
        return -1;
    }
    return 0;
}

void pol_breaker_filter_attach(pol_breaker_filter_t *bf, mesh_proxy_filter_t *filter)
{
    filter->ctx = bf;
    filter->on_call = filter_on_call;
    filter->on_done = filter_on_done;
}

void pol_breaker_filter_destroy(pol_breaker_filter_t *bf)
{
    pol_breaker_destroy(&bf->b);
    free(bf->instance);
    bf->instance = NULL;
}
