/*
 * registry/lease_sm.c: the lease/registration state machine (see lease_sm.h).
 */
#include "registry/lease_sm.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"

_Static_assert(REG_LFX_PER_EVENT <= REG_LFX_MAX, "an event's effects must fit an empty list");

/* Appends an effect; a full list is a bug (see registry/watch_sm.c): fail loudly rather than
 * lose a put, a revoke or a timer. */
static void emit(reg_lfxs_t *fx, reg_lfx_kind_t kind, int64_t arg)
{
    if (fx->n < 0 || fx->n >= REG_LFX_MAX) {
        mesh_error("registry",
                   "lease machine: effect list full (%d) adding effect %d: a bug, "
                   "aborting rather than dropping it",
                   fx->n, (int)kind);
        abort();
    }
    fx->v[fx->n++] = (reg_lfx_t){kind, arg};
}

void reg_lease_sm_init(reg_lease_sm_t *sm, int64_t ttl_s)
{
    memset(sm, 0, sizeof(*sm));
    sm->ttl_s = ttl_s > 0 ? ttl_s : 10;
    sm->state = REG_LEASE_IDLE;
}

static uint64_t keepalive_interval_ms(const reg_lease_sm_t *sm)
{
    int64_t ttl = sm->granted_ttl_s > 0 ? sm->granted_ttl_s : sm->ttl_s;
    uint64_t ms = (uint64_t)ttl * 1000 / 3;
    return ms ? ms : 1;
}

static void grant(reg_lease_sm_t *sm, reg_lfxs_t *fx)
{
    sm->state = REG_LEASE_GRANTING;
    sm->lease = 0;
    emit(fx, REG_LFX_GRANT, sm->ttl_s);
}

static void backoff(reg_lease_sm_t *sm, reg_lfxs_t *fx)
{
    uint64_t d = 200;
    for (uint32_t i = 0; i < sm->failures && d < 2000; i++)
        d *= 2;
    if (d > 2000)
        d = 2000;
    sm->failures++;
    sm->state = REG_LEASE_BACKOFF;
    emit(fx, REG_LFX_TIMER, (int64_t)d);
}

/* A pending stop takes over as soon as no request is in flight. */
static int stop_now(reg_lease_sm_t *sm, reg_lfxs_t *fx)
{
    if (!sm->stop_requested)
        return 0;
    sm->state = REG_LEASE_REVOKING;
    emit(fx, REG_LFX_REVOKE, sm->lease);
    return 1;
}

static void lost(reg_lease_sm_t *sm, reg_lfxs_t *fx)
{
    emit(fx, REG_LFX_LOST, sm->lease);
    sm->regrants++;
    sm->lease = 0;
    if (!stop_now(sm, fx))
        grant(sm, fx);
}

void reg_lease_sm_start(reg_lease_sm_t *sm, uint64_t now_ms, reg_lfxs_t *fx)
{
    if (sm->state == REG_LEASE_IDLE)
        grant(sm, fx);
}

void reg_lease_sm_grant_ok(reg_lease_sm_t *sm, int64_t id, int64_t ttl_s, uint64_t now_ms,
                           reg_lfxs_t *fx)
{
    if (sm->state != REG_LEASE_GRANTING)
        return;
    sm->lease = id;
    sm->granted_ttl_s = ttl_s > 0 ? ttl_s : sm->ttl_s;
    sm->last_ok_ms = now_ms;
    if (stop_now(sm, fx))
        return;
    sm->state = REG_LEASE_PUTTING;
    emit(fx, REG_LFX_PUT, id);
}

void reg_lease_sm_grant_failed(reg_lease_sm_t *sm, uint64_t now_ms, reg_lfxs_t *fx)
{
    if (sm->state != REG_LEASE_GRANTING)
        return;
    if (!stop_now(sm, fx))
        backoff(sm, fx);
}

void reg_lease_sm_put_ok(reg_lease_sm_t *sm, uint64_t now_ms, reg_lfxs_t *fx)
{
    if (sm->state != REG_LEASE_PUTTING)
        return;
    sm->failures = 0;
    sm->denied = 0;
    sm->last_ok_ms = now_ms;
    emit(fx, REG_LFX_REGISTERED, sm->lease);
    if (stop_now(sm, fx))
        return;
    sm->state = REG_LEASE_ACTIVE;
    emit(fx, REG_LFX_TIMER, (int64_t)keepalive_interval_ms(sm));
}

void reg_lease_sm_put_failed(reg_lease_sm_t *sm, int lease_gone, uint64_t now_ms, reg_lfxs_t *fx)
{
    if (sm->state != REG_LEASE_PUTTING)
        return;
    if (lease_gone) {
        lost(sm, fx);
        return;
    }
    if (!stop_now(sm, fx))
        backoff(sm, fx); /* the timer retries the put while the lease may still live */
}

void reg_lease_sm_put_denied(reg_lease_sm_t *sm, uint64_t now_ms, reg_lfxs_t *fx)
{
    if (sm->state != REG_LEASE_PUTTING)
        return;
    sm->denials++;
    if (!sm->denied)
        emit(fx, REG_LFX_DENIED, sm->lease);
    sm->denied = 1;
    if (stop_now(sm, fx))
        return;
    /* The lease is left to expire: the retry grants a new one if it did. */
    sm->state = REG_LEASE_BACKOFF;
    emit(fx, REG_LFX_TIMER, REG_LEASE_DENIED_RETRY_MS);
}

void reg_lease_sm_keepalive_ok(reg_lease_sm_t *sm, int64_t ttl_s, uint64_t now_ms, reg_lfxs_t *fx)
{
    if (sm->state != REG_LEASE_KEEPALIVE)
        return;
    if (ttl_s <= 0) {
        lost(sm, fx);
        return;
    }
    sm->failures = 0;
    sm->last_ok_ms = now_ms;
    if (stop_now(sm, fx))
        return;
    sm->state = REG_LEASE_ACTIVE;
    emit(fx, REG_LFX_TIMER, (int64_t)keepalive_interval_ms(sm));
}

void reg_lease_sm_keepalive_failed(reg_lease_sm_t *sm, int lease_gone, uint64_t now_ms,
                                   reg_lfxs_t *fx)
{
    if (sm->state != REG_LEASE_KEEPALIVE)
        return;
    if (lease_gone || now_ms - sm->last_ok_ms >= (uint64_t)sm->granted_ttl_s * 1000) {
        lost(sm, fx);
        return;
    }
    if (stop_now(sm, fx))
        return;
    /* Retry soon: a third of the keepalive interval, at least 100 ms. */
    uint64_t retry = keepalive_interval_ms(sm) / 3;
    sm->state = REG_LEASE_ACTIVE;
    emit(fx, REG_LFX_TIMER, (int64_t)(retry < 100 ? 100 : retry));
}

void reg_lease_sm_timer(reg_lease_sm_t *sm, uint64_t now_ms, reg_lfxs_t *fx)
{
    if (sm->state == REG_LEASE_ACTIVE) {
        sm->state = REG_LEASE_KEEPALIVE;
        emit(fx, REG_LFX_KEEPALIVE, sm->lease);
    } else if (sm->state == REG_LEASE_BACKOFF) {
        /* Put again under the same lease while it may live, else start over with a grant. */
        if (sm->lease && now_ms - sm->last_ok_ms < (uint64_t)sm->granted_ttl_s * 1000) {
            sm->state = REG_LEASE_PUTTING;
            emit(fx, REG_LFX_PUT, sm->lease);
        } else {
            grant(sm, fx);
        }
    }
}

void reg_lease_sm_stop(reg_lease_sm_t *sm, uint64_t now_ms, reg_lfxs_t *fx)
{
    if (sm->state == REG_LEASE_REVOKING || sm->state == REG_LEASE_DONE)
        return;
    sm->stop_requested = 1;
    switch (sm->state) {
    case REG_LEASE_IDLE:
        sm->state = REG_LEASE_DONE;
        emit(fx, REG_LFX_DONE, 0);
        break;
    case REG_LEASE_ACTIVE:
    case REG_LEASE_BACKOFF:
        stop_now(sm, fx); /* nothing in flight; the adapter drops its timer */
        break;
    default:
        break; /* a request is in flight: its outcome leads to the revoke */
    }
}

void reg_lease_sm_revoke_done(reg_lease_sm_t *sm, uint64_t now_ms, reg_lfxs_t *fx)
{
    if (sm->state != REG_LEASE_REVOKING)
        return;
    sm->lease = 0;
    sm->state = REG_LEASE_DONE;
    emit(fx, REG_LFX_DONE, 0);
}

const char *reg_lease_state_name(reg_lease_state_t s)
{
    static const char *const names[] = {"idle",      "granting", "putting",  "active",
                                        "keepalive", "backoff",  "revoking", "done"};
    return (unsigned)s < 8 ? names[s] : "?";
}
