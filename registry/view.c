/*
 * registry/view.c: the registry view (see view.h): carries out the effects of reg_watch_sm
 * with the owner actor's etcd seam and timers, and keeps the snapshot file.
 *
 * Requests are tagged with a sequence number (reg_tag): a range or watch that was replaced or
 * cancelled can still have a result queued in the actor's mailbox, and such stale results are
 * dropped here. Timers are actor timers; re-arming one stops the previous one first.
 */
#include "registry/view.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "registry/reg_msgs.h"
#include "registry/snapshot_file.h"

struct reg_view {
    reg_view_cfg_t cfg;
    char *prefix;
    char *snapshot_path;
    reg_table_t table;
    reg_watch_sm_t sm;
    mesh_actor_t *self;
    etcd_api_t *api;
    uint32_t range_seq, watch_seq; /* current request of each kind; 0 = none */
    uint32_t next_seq;
    uint64_t range_origin;
    uint64_t retry_timer, flush_timer, snap_timer;
    reg_snap_writer_t *snap; /* NULL: no snapshot file (or no libuv loop: the simulator) */
    reg_view_out_t *out;     /* of the call being served */
};

static void run(reg_view_t *v, reg_wfxs_t *fx);

static uint64_t now_ms(reg_view_t *v)
{
    return mesh_now(v->self) / 1000000ull;
}

int reg_view_owns_tag(uint64_t tag)
{
    uint32_t k = reg_tag_kind(tag);
    return k == REG_TAG_VIEW_RANGE || k == REG_TAG_VIEW_WATCH;
}

/* ---- results -------------------------------------------------------------------------------- */

static void on_range(reg_view_t *v, const etcd_result_t *res)
{
    v->range_seq = 0;
    reg_wfxs_t fx = {.n = 0};
    if (res->err != ETCD_API_OK) {
        mesh_debug("registry", "range of %s failed: %s", v->prefix, etcd_api_strerror(res->err));
        reg_watch_sm_range_failed(&v->sm, now_ms(v), &fx);
    } else {
        reg_watch_sm_range_begin(&v->sm);
        for (size_t i = 0; i < res->n_kvs; i++) {
            const etcd_api_kv_t *kv = &res->kvs[i];
            reg_watch_sm_range_kv(&v->sm, kv->key, kv->key_len, kv->value, kv->value_len,
                                  kv->mod_revision, kv->lease);
        }
        reg_watch_sm_range_done(&v->sm, res->revision, now_ms(v), &fx);
        v->range_origin = res->origin;
    }
    run(v, &fx);
}

static void on_watch(reg_view_t *v, const etcd_result_t *res)
{
    reg_wfxs_t fx = {.n = 0};
    if (res->closed) {
        v->watch_seq = 0;
        if (res->err == ETCD_API_ERR_SERVER || res->err == ETCD_API_ERR_MALFORMED)
            mesh_warn("registry", "watch of %s: %s%s%s", v->prefix, etcd_api_strerror(res->err),
                      res->server.message[0] ? ": " : "", res->server.message);
        else
            mesh_debug("registry", "watch of %s ended: %s", v->prefix, etcd_api_strerror(res->err));
        reg_watch_sm_watch_closed(&v->sm, now_ms(v), &fx);
        run(v, &fx);
        return;
    }
    for (size_t i = 0; i < res->n_events; i++) {
        const etcd_api_event_t *ev = &res->events[i];
        reg_watch_sm_event(&v->sm, ev->is_delete, ev->kv.key, ev->kv.key_len, ev->kv.value,
                           ev->kv.value_len, ev->kv.mod_revision, ev->kv.lease);
    }
    if (res->canceled || res->compact_revision)
        mesh_info("registry", "watch of %s %s%s%s; resyncing", v->prefix,
                  res->compact_revision ? "lost to compaction" : "canceled by etcd",
                  res->cancel_reason[0] ? ": " : "", res->cancel_reason);
    reg_watch_line_t wl = {
        .header_revision = res->revision,
        .created = res->created,
        .progress = res->progress,
        .canceled = res->canceled,
        .compact_revision = res->compact_revision,
    };
    reg_watch_sm_watch_line(&v->sm, &wl, now_ms(v), &fx);
    run(v, &fx);
}

void reg_view_on_result(reg_view_t *v, const etcd_result_t *res, reg_view_out_t *out)
{
    memset(out, 0, sizeof(*out));
    v->out = out;
    uint32_t seq = (uint32_t)res->tag;
    if (reg_tag_kind(res->tag) == REG_TAG_VIEW_RANGE && seq == v->range_seq && seq)
        on_range(v, res);
    else if (reg_tag_kind(res->tag) == REG_TAG_VIEW_WATCH && seq == v->watch_seq && seq)
        on_watch(v, res);
    v->out = NULL;
}

/* ---- timers and the snapshot ---------------------------------------------------------------- */

static void timer_arm(reg_view_t *v, uint64_t *id, uint64_t ms, uint32_t type)
{
    if (*id)
        mesh_timer_stop(v->self, *id);
    *id = 0;
    if (mesh_timer_start(v->self, ms * 1000000ull, 0, type, id) != 0)
        mesh_error("registry", "cannot start a timer of the view");
}

int reg_view_on_timer(reg_view_t *v, const mesh_msg_t *m, reg_view_out_t *out)
{
    memset(out, 0, sizeof(*out));
    reg_wfxs_t fx = {.n = 0};
    if (m->type == REG_MSG_VIEW_SNAP) {
        if (v->snap_timer != m->corr)
            return 0;
        v->snap_timer = 0;
        reg_snap_writer_on_timer(v->snap);
        return 0;
    }
    uint64_t *slot = m->type == REG_MSG_VIEW_RETRY ? &v->retry_timer : &v->flush_timer;
    if (*slot != m->corr)
        return 0;
    *slot = 0;
    v->out = out;
    if (m->type == REG_MSG_VIEW_RETRY)
        reg_watch_sm_retry_timer(&v->sm, now_ms(v), &fx);
    else
        reg_watch_sm_flush_timer(&v->sm, now_ms(v), &fx);
    run(v, &fx);
    v->out = NULL;
    return 1;
}

/* The snapshot writer's host without a libuv loop: the actor's clock and timers. */
static uint64_t snap_now(void *ctx)
{
    return now_ms(ctx);
}

static void snap_arm(void *ctx, uint64_t delay_ms)
{
    reg_view_t *v = ctx;
    timer_arm(v, &v->snap_timer, delay_ms, REG_MSG_VIEW_SNAP);
}

static void snap_disarm(void *ctx)
{
    reg_view_t *v = ctx;
    if (v->snap_timer)
        mesh_timer_stop(v->self, v->snap_timer);
    v->snap_timer = 0;
}

/* ---- effects -------------------------------------------------------------------------------- */

/* Starts a request; when it cannot even be queued, feeds the failure back at once. */
static void submit(reg_view_t *v, etcd_request_t *req, uint32_t *seq_slot, uint32_t kind)
{
    uint32_t seq = ++v->next_seq ? v->next_seq : ++v->next_seq;
    req->tag = reg_tag(kind, 0, seq);
    if (*seq_slot)
        etcd_api_cancel(v->api, reg_tag(kind, 0, *seq_slot));
    *seq_slot = seq;
    if (etcd_api_submit(v->api, req) == 0)
        return;
    *seq_slot = 0;
    reg_wfxs_t more = {.n = 0};
    if (kind == REG_TAG_VIEW_RANGE)
        reg_watch_sm_range_failed(&v->sm, now_ms(v), &more);
    else
        reg_watch_sm_watch_closed(&v->sm, now_ms(v), &more);
    run(v, &more);
}

static void run(reg_view_t *v, reg_wfxs_t *fx)
{
    for (int i = 0; i < fx->n; i++) {
        const reg_wfx_t *e = &fx->v[i];
        switch (e->kind) {
        case REG_WFX_RANGE: {
            etcd_request_t req = {.call = ETCD_CALL_RANGE, .key = v->prefix, .prefix = 1};
            submit(v, &req, &v->range_seq, REG_TAG_VIEW_RANGE);
            break;
        }
        case REG_WFX_WATCH: {
            etcd_request_t req = {
                .call = ETCD_CALL_WATCH, .key = v->prefix, .prefix = 1, .start_revision = e->arg};
            submit(v, &req, &v->watch_seq, REG_TAG_VIEW_WATCH);
            break;
        }
        case REG_WFX_CANCEL_WATCH:
            if (v->watch_seq)
                etcd_api_cancel(v->api, reg_tag(REG_TAG_VIEW_WATCH, 0, v->watch_seq));
            v->watch_seq = 0;
            break;
        case REG_WFX_RETRY_TIMER:
            timer_arm(v, &v->retry_timer, (uint64_t)e->arg, REG_MSG_VIEW_RETRY);
            break;
        case REG_WFX_FLUSH_TIMER:
            timer_arm(v, &v->flush_timer, (uint64_t)e->arg, REG_MSG_VIEW_FLUSH);
            break;
        case REG_WFX_PUBLISH:
            if (v->snap) /* coalesced, written off the loop */
                reg_snap_writer_kick(v->snap, v->sm.revision);
            if (v->out)
                v->out->publish = 1;
            break;
        case REG_WFX_LINK:
            if (e->arg == REG_LINK_CONNECTED)
                mesh_info("registry", "etcd connected (%s): %zu instances at revision %lld",
                          etcd_api_endpoint(v->api), v->table.n_valid, (long long)v->sm.revision);
            else
                mesh_warn("registry", "etcd unreachable: degraded, keeping %zu instances",
                          v->table.n_valid);
            if (v->out) {
                v->out->link_changed = 1;
                v->out->link = (reg_link_t)e->arg;
            }
            break;
        }
    }
}

/* ---- life cycle ----------------------------------------------------------------------------- */

reg_view_t *reg_view_new(const reg_view_cfg_t *cfg)
{
    reg_view_t *v = calloc(1, sizeof(*v));
    if (!v)
        return NULL;
    v->cfg = *cfg;
    if (!v->cfg.snapshot_min_gap_ms)
        v->cfg.snapshot_min_gap_ms = 500;
    const char *p = cfg->prefix ? cfg->prefix : REG_DEFAULT_PREFIX;
    size_t pl = strlen(p);
    /* Watch and range "<prefix>/" so that "meshd/services2" is not ours. */
    if (asprintf(&v->prefix, "%s%s", p, pl && p[pl - 1] == '/' ? "" : "/") < 0)
        v->prefix = NULL;
    v->snapshot_path = cfg->snapshot_path ? strdup(cfg->snapshot_path) : NULL;
    v->cfg.prefix = v->prefix;
    v->cfg.snapshot_path = v->snapshot_path;
    if (!v->prefix || (cfg->snapshot_path && !v->snapshot_path) ||
        reg_table_init(&v->table, v->prefix) < 0) {
        free(v->prefix);
        free(v->snapshot_path);
        free(v);
        return NULL;
    }
    reg_watch_sm_init(&v->sm, &v->table, 0, &v->cfg.watch);
    return v;
}

void reg_view_start(reg_view_t *v, mesh_actor_t *self, etcd_api_t *api, reg_view_out_t *out)
{
    memset(out, 0, sizeof(*out));
    v->self = self;
    v->api = api;
    v->out = out;
    uv_loop_t *loop = mesh_uv_loop(self);
    const mesh_fs_t *fs = v->cfg.snapshot_fs;
    if (v->snapshot_path && (loop || fs)) {
        int64_t rev = 0;
        long n = fs ? reg_table_load_fs(&v->table, fs, v->snapshot_path, &rev)
                    : reg_table_load(&v->table, v->snapshot_path, &rev);
        if (n >= 0) {
            v->sm.revision = rev;
            mesh_info("registry", "loaded %ld instances from snapshot %s (revision %lld)", n,
                      v->snapshot_path, (long long)rev);
            out->publish = 1;
        }
        reg_snap_host_t host = {
            .now_ms = snap_now, .arm = snap_arm, .disarm = snap_disarm, .ctx = v};
        v->snap = fs ? reg_snap_writer_new_fs(loop, &host, fs, &v->table, v->snapshot_path,
                                              v->cfg.snapshot_min_gap_ms, n >= 0)
                     : reg_snap_writer_new(loop, &v->table, v->snapshot_path,
                                           v->cfg.snapshot_min_gap_ms, n >= 0);
        if (!v->snap)
            mesh_error("registry", "cannot keep the snapshot file %s", v->snapshot_path);
    }
    reg_wfxs_t fx = {.n = 0};
    reg_watch_sm_start(&v->sm, now_ms(v), &fx);
    run(v, &fx);
    v->out = NULL;
}

void reg_view_free(reg_view_t *v)
{
    if (!v)
        return;
    if (v->self) {
        reg_wfxs_t fx = {.n = 0};
        reg_watch_sm_stop(&v->sm, now_ms(v), &fx);
        if (v->range_seq)
            etcd_api_cancel(v->api, reg_tag(REG_TAG_VIEW_RANGE, 0, v->range_seq));
        if (v->watch_seq)
            etcd_api_cancel(v->api, reg_tag(REG_TAG_VIEW_WATCH, 0, v->watch_seq));
        uint64_t *timers[] = {&v->retry_timer, &v->flush_timer, &v->snap_timer};
        for (size_t i = 0; i < 3; i++)
            if (*timers[i])
                mesh_timer_stop(v->self, *timers[i]);
    }
    reg_snap_writer_free(v->snap); /* writes what is pending, off the loop */
    v->snap = NULL;
    reg_table_destroy(&v->table);
    free(v->prefix);
    free(v->snapshot_path);
    free(v);
}

reg_link_t reg_view_link(const reg_view_t *v)
{
    return v->sm.link;
}

int64_t reg_view_revision(const reg_view_t *v)
{
    return v->sm.revision;
}

const reg_table_t *reg_view_table(const reg_view_t *v)
{
    return &v->table;
}

mesh_routes_t *reg_view_routes(reg_view_t *v)
{
    return reg_table_routes(&v->table);
}

const reg_watch_sm_t *reg_view_sm(const reg_view_t *v)
{
    return &v->sm;
}

uint64_t reg_view_range_origin(const reg_view_t *v)
{
    return v->range_origin;
}
