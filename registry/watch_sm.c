/*
 * registry/watch_sm.c: the registry view's watch/resync state machine (see watch_sm.h).
 */
#include "registry/watch_sm.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"

_Static_assert(REG_WFX_PER_EVENT <= REG_WFX_MAX, "an event's effects must fit an empty list");

/* Appends an effect. A full list means a caller kept effects of more than
 * REG_WFX_MAX / REG_WFX_PER_EVENT events, or an event produced more than REG_WFX_PER_EVENT
 * (a bug in this file): dropping the effect would leave the adapter out of step with the
 * machine (a watch never opened, a timer never armed), so fail loudly instead. */
static void emit(reg_wfxs_t *fx, reg_wfx_kind_t kind, int64_t arg)
{
    if (fx->n < 0 || fx->n >= REG_WFX_MAX) {
        mesh_error("registry",
                   "watch machine: effect list full (%d) adding effect %d: a bug, "
                   "aborting rather than dropping it",
                   fx->n, (int)kind);
        abort();
    }
    fx->v[fx->n++] = (reg_wfx_t){kind, arg};
}

static uint64_t next_rand(reg_watch_sm_t *sm)
{
    /* splitmix64: small, seedable, reproducible */
    uint64_t z = (sm->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The revision a watch resumes from; saturates (etcd never gets near INT64_MAX). */
static int64_t next_revision(int64_t revision)
{
    return revision < INT64_MAX ? revision + 1 : INT64_MAX;
}

void reg_watch_sm_init(reg_watch_sm_t *sm, reg_table_t *table, int64_t revision,
                       const reg_watch_cfg_t *cfg)
{
    memset(sm, 0, sizeof(*sm));
    if (cfg)
        sm->cfg = *cfg;
    if (!sm->cfg.coalesce_ms)
        sm->cfg.coalesce_ms = 5;
    if (!sm->cfg.backoff_min_ms)
        sm->cfg.backoff_min_ms = 100;
    if (!sm->cfg.backoff_max_ms)
        sm->cfg.backoff_max_ms = 5000;
    sm->rng = sm->cfg.seed;
    sm->table = table;
    sm->revision = revision;
    sm->state = REG_WATCH_IDLE;
    sm->link = REG_LINK_DEGRADED;
}

static void set_link(reg_watch_sm_t *sm, reg_link_t l, reg_wfxs_t *fx)
{
    if (sm->link != l) {
        sm->link = l;
        emit(fx, REG_WFX_LINK, l);
    }
}

static void changed(reg_watch_sm_t *sm, reg_wfxs_t *fx)
{
    sm->dirty = 1;
    if (!sm->flush_pending) {
        sm->flush_pending = 1;
        emit(fx, REG_WFX_FLUSH_TIMER, sm->cfg.coalesce_ms);
    }
}

/* Exponential backoff with jitter: a delay in [d/2, d], d doubling up to the maximum. */
static void backoff(reg_watch_sm_t *sm, reg_wfxs_t *fx)
{
    uint64_t d = sm->cfg.backoff_min_ms;
    for (uint32_t i = 0; i < sm->failures && d < sm->cfg.backoff_max_ms; i++)
        d *= 2;
    if (d > sm->cfg.backoff_max_ms)
        d = sm->cfg.backoff_max_ms;
    if (sm->failures < 64)
        sm->failures++;
    uint64_t delay = d / 2 + next_rand(sm) % (d / 2 + 1);
    sm->state = REG_WATCH_BACKOFF;
    emit(fx, REG_WFX_RETRY_TIMER, (int64_t)delay);
}

static void range(reg_watch_sm_t *sm, reg_wfxs_t *fx)
{
    sm->state = REG_WATCH_RANGING;
    emit(fx, REG_WFX_RANGE, 0);
}

void reg_watch_sm_start(reg_watch_sm_t *sm, uint64_t now_ms, reg_wfxs_t *fx)
{
    if (sm->state == REG_WATCH_IDLE)
        range(sm, fx);
}

void reg_watch_sm_stop(reg_watch_sm_t *sm, uint64_t now_ms, reg_wfxs_t *fx)
{
    if (sm->state == REG_WATCH_WATCHING)
        emit(fx, REG_WFX_CANCEL_WATCH, 0);
    sm->state = REG_WATCH_STOPPED;
}

void reg_watch_sm_range_begin(reg_watch_sm_t *sm)
{
    if (sm->state == REG_WATCH_RANGING)
        reg_table_mark(sm->table);
}

void reg_watch_sm_range_kv(reg_watch_sm_t *sm, const char *key, size_t klen, const char *val,
                           size_t vlen, int64_t mod_revision, int64_t lease)
{
    if (sm->state != REG_WATCH_RANGING)
        return;
    if (reg_table_put(sm->table, key, klen, val, vlen, mod_revision, lease) == REG_TABLE_CHANGED)
        sm->dirty = 1;
}

void reg_watch_sm_range_done(reg_watch_sm_t *sm, int64_t revision, uint64_t now_ms, reg_wfxs_t *fx)
{
    if (sm->state != REG_WATCH_RANGING)
        return;
    if (reg_table_sweep(sm->table) > 0)
        sm->dirty = 1;
    sm->revision = revision;
    sm->pending_revision = 0; /* events of an older stream must never move the revision */
    sm->failures = 0;
    sm->resyncs++;
    sm->synced = 1;
    set_link(sm, REG_LINK_CONNECTED, fx);
    if (sm->dirty)
        changed(sm, fx);
    sm->state = REG_WATCH_WATCHING;
    emit(fx, REG_WFX_WATCH, next_revision(revision));
}

void reg_watch_sm_range_failed(reg_watch_sm_t *sm, uint64_t now_ms, reg_wfxs_t *fx)
{
    if (sm->state != REG_WATCH_RANGING)
        return;
    set_link(sm, REG_LINK_DEGRADED, fx);
    sm->resume_watch = 0;
    backoff(sm, fx);
}

void reg_watch_sm_event(reg_watch_sm_t *sm, int is_delete, const char *key, size_t klen,
                        const char *val, size_t vlen, int64_t mod_revision, int64_t lease)
{
    if (sm->state != REG_WATCH_WATCHING || mod_revision <= sm->revision)
        return; /* stale stream, or already seen by a range */
    int r = is_delete ? reg_table_delete(sm->table, key, klen)
                      : reg_table_put(sm->table, key, klen, val, vlen, mod_revision, lease);
    if (r == REG_TABLE_CHANGED)
        sm->dirty = 1;
    if (mod_revision > sm->pending_revision)
        sm->pending_revision = mod_revision;
}

void reg_watch_sm_watch_line(reg_watch_sm_t *sm, const reg_watch_line_t *line, uint64_t now_ms,
                             reg_wfxs_t *fx)
{
    if (sm->state != REG_WATCH_WATCHING)
        return;
    /* pending_revision holds this line's events only: fold it in, then forget it, so that a
     * revision seen before a resync (etcd restored from an older backup) cannot return. */
    if (sm->pending_revision > sm->revision)
        sm->revision = sm->pending_revision;
    sm->pending_revision = 0;
    if (line->progress && line->header_revision > sm->revision)
        sm->revision = line->header_revision; /* everything up to here was delivered */
    if (sm->dirty && !sm->flush_pending)
        changed(sm, fx);
    if (line->canceled || line->compact_revision > 0) {
        /* The watch is gone (compacted history, or canceled by etcd): range, diff, watch. */
        if (line->compact_revision > 0)
            sm->compacted++;
        emit(fx, REG_WFX_CANCEL_WATCH, 0);
        range(sm, fx);
        return;
    }
    if (line->created) {
        sm->failures = 0;
        set_link(sm, REG_LINK_CONNECTED, fx);
        if (line->header_revision > 0 && line->header_revision < sm->revision) {
            /* The store is older than our view (etcd lost its data): start over. */
            emit(fx, REG_WFX_CANCEL_WATCH, 0);
            range(sm, fx);
        }
    }
}

void reg_watch_sm_watch_closed(reg_watch_sm_t *sm, uint64_t now_ms, reg_wfxs_t *fx)
{
    if (sm->state != REG_WATCH_WATCHING)
        return;
    set_link(sm, REG_LINK_DEGRADED, fx);
    sm->resume_watch = 1;
    backoff(sm, fx);
}

void reg_watch_sm_retry_timer(reg_watch_sm_t *sm, uint64_t now_ms, reg_wfxs_t *fx)
{
    if (sm->state != REG_WATCH_BACKOFF)
        return;
    if (sm->synced && sm->resume_watch) {
        sm->state = REG_WATCH_WATCHING;
        emit(fx, REG_WFX_WATCH, next_revision(sm->revision));
    } else {
        range(sm, fx);
    }
}

void reg_watch_sm_flush_timer(reg_watch_sm_t *sm, uint64_t now_ms, reg_wfxs_t *fx)
{
    sm->flush_pending = 0;
    if (sm->dirty && sm->state != REG_WATCH_STOPPED) {
        sm->dirty = 0;
        emit(fx, REG_WFX_PUBLISH, sm->revision);
    }
}

const char *reg_watch_state_name(reg_watch_state_t s)
{
    static const char *const names[] = {"idle", "ranging", "watching", "backoff", "stopped"};
    return (unsigned)s < 5 ? names[s] : "?";
}

const char *reg_link_name(reg_link_t l)
{
    return l == REG_LINK_CONNECTED ? "connected" : "degraded";
}
