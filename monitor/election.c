/*
 * monitor/election.c: the monitors' leader election on etcd, without I/O (see
 * monitor/election.h).
 */
#include "monitor/election.h"

#include <stdio.h>
#include <stdlib.h>

#include "common/log.h"

#define RETRY_KEEPALIVE_MS 500u
#define REWATCH_MS         250u
#define BACKOFF_MIN_MS     100u
#define BACKOFF_MAX_MS     5000u

static void emit(mon_efxs_t *fx, mon_efx_kind_t kind, int64_t arg)
{
    if (fx->n >= MON_EFX_MAX) {
        mesh_error("monitor", "bug: election effect list full (%d)", fx->n);
        abort();
    }
    fx->v[fx->n++] = (mon_efx_t){.kind = kind, .arg = arg};
}

static uint64_t ttl_ms(const mon_elect_t *e)
{
    return (uint64_t)(e->granted_ttl_s > 0 ? e->granted_ttl_s : e->ttl_s) * 1000u;
}

void mon_elect_init(mon_elect_t *e, int64_t ttl_s)
{
    *e = (mon_elect_t){.state = MON_ELECT_IDLE, .ttl_s = ttl_s > 0 ? ttl_s : 10};
    e->guard_ms = (uint64_t)e->ttl_s * 1000u / 5u;
    if (e->guard_ms < 500)
        e->guard_ms = 500;
}

static void grant(mon_elect_t *e, uint64_t now, mon_efxs_t *fx)
{
    e->state = MON_ELECT_GRANTING;
    e->request_in_flight = 1;
    e->keepalive_sent = now; /* the grant renews like a keepalive sent now */
    emit(fx, MON_EFX_GRANT, e->ttl_s);
}

static void campaign(mon_elect_t *e, mon_efxs_t *fx)
{
    e->state = MON_ELECT_CAMPAIGNING;
    e->request_in_flight = 1;
    emit(fx, MON_EFX_CAMPAIGN, e->lease);
}

static void backoff(mon_elect_t *e, uint64_t now, uint64_t ms)
{
    e->state = MON_ELECT_BACKOFF;
    e->retry_at = now + ms;
}

/* Our lease is gone (or presumed gone): stop leading, start over with a new one. */
static void lease_lost(mon_elect_t *e, uint64_t now, mon_efxs_t *fx)
{
    int64_t old = e->lease;
    if (e->state == MON_ELECT_LEADER) {
        e->step_downs++;
        emit(fx, MON_EFX_STEP_DOWN, e->fence);
        if (old)
            emit(fx, MON_EFX_REVOKE, old);
    }
    e->lease = 0;
    e->fence = 0;
    e->keepalive_in_flight = 0;
    if (e->request_in_flight) { /* its answer starts over (mon_elect_campaign_done) */
        e->state = MON_ELECT_CAMPAIGNING;
        return;
    }
    grant(e, now, fx);
}

void mon_elect_start(mon_elect_t *e, uint64_t now, mon_efxs_t *fx)
{
    if (e->state != MON_ELECT_IDLE)
        return;
    grant(e, now, fx);
}

void mon_elect_grant_ok(mon_elect_t *e, int64_t lease, int64_t ttl_s, uint64_t now, mon_efxs_t *fx)
{
    if (e->state != MON_ELECT_GRANTING)
        return;
    e->request_in_flight = 0;
    e->failures = 0;
    e->lease = lease;
    e->granted_ttl_s = ttl_s > 0 ? ttl_s : e->ttl_s;
    e->last_ok_sent = e->keepalive_sent;
    e->next_keepalive = now + ttl_ms(e) / 3;
    campaign(e, fx);
}

void mon_elect_request_failed(mon_elect_t *e, uint64_t now, mon_efxs_t *fx)
{
    (void)fx;
    if (e->state != MON_ELECT_GRANTING && e->state != MON_ELECT_CAMPAIGNING)
        return;
    e->request_in_flight = 0;
    uint64_t ms = BACKOFF_MIN_MS << (e->failures < 6 ? e->failures : 6);
    if (ms > BACKOFF_MAX_MS)
        ms = BACKOFF_MAX_MS;
    e->failures++;
    backoff(e, now, ms);
}

void mon_elect_campaign_done(mon_elect_t *e, int succeeded, int64_t header_rev,
                             int64_t holder_lease, int64_t holder_create_rev, uint64_t now,
                             mon_efxs_t *fx)
{
    if (e->state != MON_ELECT_CAMPAIGNING)
        return;
    e->request_in_flight = 0;
    e->failures = 0;
    if (!e->lease) { /* the lease was lost meanwhile: a key under it is doomed anyway */
        grant(e, now, fx);
        return;
    }
    if (succeeded || (holder_lease == e->lease && holder_create_rev > 0)) {
        /* Won (or an earlier put of ours went through and its answer was lost). */
        e->state = MON_ELECT_LEADER;
        e->fence = succeeded ? header_rev : holder_create_rev;
        e->leader_lease = e->lease;
        e->terms++;
        emit(fx, MON_EFX_LEADER, e->fence);
        return;
    }
    if (holder_create_rev <= 0) { /* vanished between compare and read: try again */
        campaign(e, fx);
        return;
    }
    e->state = MON_ELECT_FOLLOWER;
    e->leader_lease = holder_lease;
    emit(fx, MON_EFX_WATCH, header_rev + 1);
}

void mon_elect_key_deleted(mon_elect_t *e, uint64_t now, mon_efxs_t *fx)
{
    (void)now;
    if (e->state != MON_ELECT_FOLLOWER)
        return;
    e->leader_lease = 0;
    campaign(e, fx);
}

void mon_elect_watch_broken(mon_elect_t *e, uint64_t now, mon_efxs_t *fx)
{
    (void)fx;
    if (e->state != MON_ELECT_FOLLOWER)
        return;
    backoff(e, now, REWATCH_MS);
}

void mon_elect_keepalive_ok(mon_elect_t *e, int64_t ttl_s, uint64_t now, mon_efxs_t *fx)
{
    if (!e->keepalive_in_flight)
        return;
    e->keepalive_in_flight = 0;
    if (ttl_s <= 0) {
        lease_lost(e, now, fx);
        return;
    }
    e->last_ok_sent = e->keepalive_sent;
}

void mon_elect_keepalive_failed(mon_elect_t *e, int lease_gone, uint64_t now, mon_efxs_t *fx)
{
    if (!e->keepalive_in_flight)
        return;
    e->keepalive_in_flight = 0;
    if (lease_gone) {
        lease_lost(e, now, fx);
        return;
    }
    e->next_keepalive = now + RETRY_KEEPALIVE_MS;
}

void mon_elect_fenced(mon_elect_t *e, uint64_t now, mon_efxs_t *fx)
{
    if (e->state == MON_ELECT_LEADER)
        lease_lost(e, now, fx);
}

void mon_elect_tick(mon_elect_t *e, uint64_t now, mon_efxs_t *fx)
{
    if (e->state == MON_ELECT_IDLE || e->state == MON_ELECT_STOPPED)
        return;
    if (e->state == MON_ELECT_LEADER && now + e->guard_ms >= e->last_ok_sent + ttl_ms(e)) {
        mesh_warn("monitor",
                  "no keepalive of lease %lld answered for %llu ms (TTL %lld s): stepping down",
                  (long long)e->lease, (unsigned long long)(now - e->last_ok_sent),
                  (long long)(ttl_ms(e) / 1000));
        lease_lost(e, now, fx);
        return;
    }
    if (e->lease && !e->keepalive_in_flight && now >= e->next_keepalive) {
        e->keepalive_in_flight = 1;
        e->keepalive_sent = now;
        e->next_keepalive = now + ttl_ms(e) / 3;
        emit(fx, MON_EFX_KEEPALIVE, e->lease);
    }
    if (e->state == MON_ELECT_BACKOFF && now >= e->retry_at) {
        if (e->lease)
            campaign(e, fx);
        else
            grant(e, now, fx);
    }
}

void mon_elect_stop(mon_elect_t *e, uint64_t now, mon_efxs_t *fx)
{
    (void)now;
    if (e->state == MON_ELECT_STOPPED)
        return;
    if (e->state == MON_ELECT_LEADER) {
        e->step_downs++;
        emit(fx, MON_EFX_STEP_DOWN, e->fence);
    }
    if (e->lease)
        emit(fx, MON_EFX_REVOKE, e->lease);
    e->lease = 0;
    e->fence = 0;
    e->state = MON_ELECT_STOPPED;
}

const char *mon_elect_state_name(mon_elect_state_t s)
{
    switch (s) {
    case MON_ELECT_IDLE:
        return "idle";
    case MON_ELECT_GRANTING:
        return "granting";
    case MON_ELECT_CAMPAIGNING:
        return "campaigning";
    case MON_ELECT_LEADER:
        return "leader";
    case MON_ELECT_FOLLOWER:
        return "standby";
    case MON_ELECT_BACKOFF:
        return "backoff";
    case MON_ELECT_STOPPED:
        return "stopped";
    }
    return "?";
}
