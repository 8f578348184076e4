/*
 * tests/fuzz/registry/fuzz_watch_sm.c: libFuzzer harness over the registry view's watch/resync
 * state machine (registry/watch_sm.h) and the table behind it.
 *
 * The input is a configuration (backoff and coalescing tunables, seed, initial revision) and
 * then a sequence of events: start/stop, range begin/kv/done/failed, watch events, watch lines
 * with arbitrary flags and revisions, stream closes, timer expiries, and raw watch lines decoded
 * with registry/etcd_codec.h and fed as registry/view.c feeds them. Revisions are small (so that
 * they collide with each other) or arbitrary 64-bit values. After every step: the state and
 * link are valid enums, at most the 8 effect slots were used and every effect is well formed
 * (a WATCH starts right after the machine's revision, timers are within the configured bounds),
 * the revision never exceeds the largest revision fed in (or 0), STOPPED is final, the table's
 * counters are consistent.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "registry/etcd_codec.h"
#include "registry/watch_sm.h"

#define PREFIX    "meshd/services"
#define MAX_STEPS 1024

typedef struct {
    const uint8_t *p;
    size_t n, pos;
} rd_t;

static uint8_t u8(rd_t *r)
{
    return r->pos < r->n ? r->p[r->pos++] : 0;
}

static uint64_t u64(rd_t *r)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | u8(r);
    return v;
}

/*
 * Building with -DFUZZ_WATCH_SM_AVOID_INT64_MAX keeps INT64_MAX out of the machine (it becomes
 * INT64_MAX - 1), to fuzz past the known `revision + 1` overflow (see
 * corpus/watch_sm_*_int64_max*.bin) until it is fixed.
 */
static int64_t clamp_rev(int64_t v)
{
#ifdef FUZZ_WATCH_SM_AVOID_INT64_MAX
    return v == INT64_MAX ? INT64_MAX - 1 : v;
#else
    return v;
#endif
}

/*
 * A revision: mostly small, sometimes a boundary value (the decoder's strtoll saturates an
 * out-of-range "revision" to INT64_MAX) or any int64.
 */
static int64_t revision(rd_t *r)
{
    uint8_t sel = u8(r);
    if (sel < 0xf0)
        return sel;
    switch (sel) {
    case 0xf0:
        return clamp_rev(INT64_MAX);
    case 0xf1:
        return INT64_MAX - 1;
    case 0xf2:
        return INT64_MIN;
    case 0xf3:
        return -1;
    default:
        return clamp_rev((int64_t)u64(r));
    }
}

typedef struct {
    reg_watch_sm_t sm;
    reg_table_t table;
    etcd_decoder_t dec;
    int64_t max_rev; /* the largest revision fed in so far */
    uint64_t now;
} fz_t;

static void feed_rev(fz_t *f, int64_t rev)
{
    if (rev > f->max_rev)
        f->max_rev = rev;
}

static size_t make_key(rd_t *r, char *out, size_t cap)
{
    uint8_t sel = u8(r);
    return (size_t)snprintf(out, cap, PREFIX "/demo.v%u.Svc/10.0.0.%u:5000", sel & 1,
                            (sel >> 1) & 7);
}

static size_t make_value(rd_t *r, char *out, size_t cap)
{
    uint8_t sel = u8(r);
    if ((sel & 7) == 7)
        return (size_t)snprintf(out, cap, "not json %u", sel);
    if ((sel & 7) == 6)
        return (size_t)snprintf(out, cap, "{\"Op\":1,\"Addr\":\"10.0.0.%u:5000\"}", sel >> 5);
    return (size_t)snprintf(out, cap,
                            "{\"Op\":0,\"Addr\":\"10.0.0.%u:5000\",\"Metadata\":{\"weight\":%u}}",
                            sel >> 5, sel & 7);
}

static int on_event(void *ud, const etcd_event_t *ev)
{
    fz_t *f = ud;
    int64_t mod = clamp_rev(ev->kv.mod_revision);
    if (f->sm.state == REG_WATCH_WATCHING && mod > f->sm.revision)
        feed_rev(f, mod);
    reg_watch_sm_event(&f->sm, ev->type == ETCD_EVENT_DELETE, ev->kv.key, ev->kv.key_len,
                       ev->kv.value, ev->kv.value_len, mod, ev->kv.lease);
    return 0;
}

/* A raw watch line, decoded and applied as registry/view.c does. */
static void raw_line(fz_t *f, rd_t *r, reg_wfxs_t *fx)
{
    size_t n = ((size_t)u8(r) << 8 | u8(r)) % 2048;
    if (n > r->n - r->pos)
        n = r->n - r->pos;
    const char *line = (const char *)r->p + r->pos;
    r->pos += n;
    etcd_watch_info_t info;
    if (etcd_decode_watch(&f->dec, line, n, &info, on_event, f) < 0 || info.err.code) {
        reg_watch_sm_watch_closed(&f->sm, f->now, fx);
        return;
    }
    reg_watch_line_t wl = {
        .header_revision = clamp_rev(info.revision),
        .created = info.created,
        .progress = !info.created && !info.canceled && info.n_events == 0,
        .canceled = info.canceled,
        .compact_revision = clamp_rev(info.compact_revision),
    };
    feed_rev(f, wl.header_revision);
    feed_rev(f, wl.compact_revision);
    reg_watch_sm_watch_line(&f->sm, &wl, f->now, fx);
}

static void check(const fz_t *f, const reg_wfxs_t *fx, reg_watch_state_t before)
{
    const reg_watch_sm_t *sm = &f->sm;
    if ((unsigned)sm->state > REG_WATCH_STOPPED ||
        (sm->link != REG_LINK_DEGRADED && sm->link != REG_LINK_CONNECTED))
        abort();
    if (before == REG_WATCH_STOPPED && sm->state != REG_WATCH_STOPPED)
        abort();
    if (fx->n < 0 || fx->n > REG_WFX_PER_EVENT) /* the documented most per event */
        abort();
    if (sm->revision > f->max_rev)
        abort();
    for (int i = 0; i < fx->n; i++) {
        const reg_wfx_t *e = &fx->v[i];
        switch (e->kind) {
        case REG_WFX_RANGE:
        case REG_WFX_CANCEL_WATCH:
        case REG_WFX_PUBLISH:
            break;
        case REG_WFX_WATCH:
            /* Watch from the revision after the view's (saturating at INT64_MAX). */
            if (e->arg != (sm->revision < INT64_MAX ? sm->revision + 1 : INT64_MAX))
                abort();
            break;
        case REG_WFX_RETRY_TIMER:
            if (e->arg < 0 || (uint64_t)e->arg > sm->cfg.backoff_max_ms)
                abort();
            break;
        case REG_WFX_FLUSH_TIMER:
            if (e->arg != (int64_t)sm->cfg.coalesce_ms)
                abort();
            break;
        case REG_WFX_LINK:
            if (e->arg != REG_LINK_DEGRADED && e->arg != REG_LINK_CONNECTED)
                abort();
            break;
        default:
            abort();
        }
    }
    const reg_table_t *t = sm->table;
    size_t n = 0, nv = 0;
    for (size_t i = 0; i < t->n_buckets; i++)
        for (const reg_entry_t *e = t->buckets[i]; e; e = e->next) {
            n++;
            nv += e->valid;
        }
    if (n != t->n_entries || nv != t->n_valid)
        abort();
    if (reg_watch_state_name(sm->state)[0] == '?')
        abort();
    reg_link_name(sm->link);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        init = 1;
        mesh_log_init("fuzz", MESH_LOG_OFF, MESH_LOG_FORMAT_TEXT);
    }
    rd_t r = {data, size, 0};
    fz_t *f = calloc(1, sizeof(*f));
    if (!f)
        return 0;
    if (reg_table_init(&f->table, PREFIX) != 0) {
        free(f);
        return 0;
    }
    etcd_decoder_init(&f->dec);
    reg_watch_cfg_t cfg = {
        .coalesce_ms = u8(&r),
        .backoff_min_ms = (uint32_t)u8(&r) * 10,
        .backoff_max_ms = (uint32_t)u8(&r) * 100,
        .seed = u8(&r),
    };
    int64_t rev0 = revision(&r);
    /* 0 is the machine's "nothing pending" value and may replace a negative revision. */
    f->max_rev = rev0 > 0 ? rev0 : 0;
    reg_watch_sm_init(&f->sm, &f->table, rev0, &cfg);
    /* Effects that the machine reports against its tunables must use the defaults it took. */
    if (!f->sm.cfg.coalesce_ms || !f->sm.cfg.backoff_min_ms || !f->sm.cfg.backoff_max_ms)
        abort();

    char key[128], val[256];
    for (int step = 0; step < MAX_STEPS && r.pos < r.n; step++) {
        reg_wfxs_t fx = {.n = 0};
        reg_watch_state_t before = f->sm.state;
        f->now += u8(&r);
        switch (u8(&r) % 13) {
        case 0:
            reg_watch_sm_start(&f->sm, f->now, &fx);
            break;
        case 1:
            if (u8(&r) == 0xff) /* rarely: nothing happens after a stop */
                reg_watch_sm_stop(&f->sm, f->now, &fx);
            break;
        case 2:
            reg_watch_sm_range_begin(&f->sm);
            break;
        case 3: {
            size_t kl = make_key(&r, key, sizeof(key));
            size_t vl = make_value(&r, val, sizeof(val));
            int64_t mod = revision(&r);
            reg_watch_sm_range_kv(&f->sm, key, kl, val, vl, mod, u8(&r));
            break;
        }
        case 4: {
            int64_t rev = revision(&r);
            if (f->sm.state == REG_WATCH_RANGING)
                feed_rev(f, rev);
            reg_watch_sm_range_done(&f->sm, rev, f->now, &fx);
            break;
        }
        case 5:
            reg_watch_sm_range_failed(&f->sm, f->now, &fx);
            break;
        case 6: {
            int del = u8(&r) & 1;
            size_t kl = make_key(&r, key, sizeof(key));
            size_t vl = make_value(&r, val, sizeof(val));
            int64_t mod = revision(&r);
            if (f->sm.state == REG_WATCH_WATCHING && mod > f->sm.revision)
                feed_rev(f, mod);
            reg_watch_sm_event(&f->sm, del, key, kl, val, vl, mod, 0);
            break;
        }
        case 7: {
            uint8_t flags = u8(&r);
            reg_watch_line_t wl = {
                .header_revision = revision(&r),
                .created = flags & 1,
                .progress = (flags >> 1) & 1,
                .canceled = (flags >> 2) & 1,
                .compact_revision = (flags & 8) ? revision(&r) : 0,
            };
            feed_rev(f, wl.header_revision);
            feed_rev(f, wl.compact_revision);
            reg_watch_sm_watch_line(&f->sm, &wl, f->now, &fx);
            break;
        }
        case 8:
            reg_watch_sm_watch_closed(&f->sm, f->now, &fx);
            break;
        case 9:
            reg_watch_sm_retry_timer(&f->sm, f->now, &fx);
            break;
        case 10:
            reg_watch_sm_flush_timer(&f->sm, f->now, &fx);
            break;
        case 11:
            raw_line(f, &r, &fx);
            break;
        case 12:
            /* The adapter's dance around a whole range: begin, a few kvs, done or failed. */
            reg_watch_sm_range_begin(&f->sm);
            for (int i = u8(&r) & 7; i > 0; i--) {
                size_t kl = make_key(&r, key, sizeof(key));
                size_t vl = make_value(&r, val, sizeof(val));
                reg_watch_sm_range_kv(&f->sm, key, kl, val, vl, u8(&r), 0);
            }
            if (u8(&r) & 1) {
                reg_watch_sm_range_failed(&f->sm, f->now, &fx);
            } else {
                int64_t rev = revision(&r);
                if (f->sm.state == REG_WATCH_RANGING)
                    feed_rev(f, rev);
                reg_watch_sm_range_done(&f->sm, rev, f->now, &fx);
            }
            break;
        }
        check(f, &fx, before);
    }
    etcd_decoder_destroy(&f->dec);
    reg_table_destroy(&f->table);
    free(f);
    return 0;
}
