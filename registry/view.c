/*
 * registry/view.c: the libuv adapter of the registry view (see view.h): carries out the
 * effects of reg_watch_sm with etcd_client requests, uv timers, the snapshot file and the
 * user's callback.
 */
#include "registry/view.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "registry/etcd_codec.h"

struct reg_view {
    uv_loop_t *loop;
    reg_view_cfg_t cfg;
    char *prefix;
    char *snapshot_path;
    reg_table_t table;
    reg_watch_sm_t sm;
    etcd_decoder_t dec;
    etcd_req_t *range_req;
    etcd_req_t *watch_req;
    uv_timer_t retry_timer;
    uv_timer_t flush_timer;
    reg_snap_writer_t *snap; /* NULL: no snapshot file */
    int handles_open;
    reg_view_cb cb;
    void *ud;
};

static void run(reg_view_t *v, reg_wfxs_t *fx);

static void on_range(void *ud, int err, const char *body, size_t len);
static void on_watch_line(void *ud, const char *line, size_t len);
static void on_watch_close(void *ud, int err, const char *body, size_t len);

static int range_kv(void *ud, const etcd_kv_t *kv)
{
    reg_view_t *v = ud;
    reg_watch_sm_range_kv(&v->sm, kv->key, kv->key_len, kv->value, kv->value_len, kv->mod_revision,
                          kv->lease);
    return 0;
}

static void on_range(void *ud, int err, const char *body, size_t len)
{
    reg_view_t *v = ud;
    v->range_req = NULL;
    reg_wfxs_t fx = {.n = 0};
    uint64_t now = uv_now(v->loop);
    if (err != ETCD_OK) {
        mesh_debug("registry", "range of %s failed: %s", v->prefix, etcd_strerror(err));
        reg_watch_sm_range_failed(&v->sm, now, &fx);
        run(v, &fx);
        return;
    }
    etcd_range_info_t info;
    reg_watch_sm_range_begin(&v->sm);
    if (etcd_decode_range(&v->dec, body, len, &info, range_kv, v) < 0 || info.err.code) {
        mesh_warn("registry", "range of %s: malformed answer", v->prefix);
        reg_watch_sm_range_failed(&v->sm, now, &fx);
    } else {
        reg_watch_sm_range_done(&v->sm, info.revision, now, &fx);
    }
    run(v, &fx);
}

static int watch_event(void *ud, const etcd_event_t *ev)
{
    reg_view_t *v = ud;
    reg_watch_sm_event(&v->sm, ev->type == ETCD_EVENT_DELETE, ev->kv.key, ev->kv.key_len,
                       ev->kv.value, ev->kv.value_len, ev->kv.mod_revision, ev->kv.lease);
    return 0;
}

static void on_watch_line(void *ud, const char *line, size_t len)
{
    reg_view_t *v = ud;
    etcd_watch_info_t info;
    reg_wfxs_t fx = {.n = 0};
    uint64_t now = uv_now(v->loop);
    if (etcd_decode_watch(&v->dec, line, len, &info, watch_event, v) < 0 || info.err.code) {
        mesh_warn("registry", "watch of %s: %s", v->prefix,
                  info.err.code ? info.err.message : "malformed line");
        /* Treat as a broken stream: close it and resync after a backoff. */
        fx.v[fx.n++] = (reg_wfx_t){REG_WFX_CANCEL_WATCH, 0};
        reg_watch_sm_watch_closed(&v->sm, now, &fx);
        run(v, &fx);
        return;
    }
    if (info.canceled || info.compact_revision)
        mesh_info("registry", "watch of %s %s%s%s; resyncing", v->prefix,
                  info.compact_revision ? "lost to compaction" : "canceled by etcd",
                  info.cancel_reason[0] ? ": " : "", info.cancel_reason);
    reg_watch_line_t wl = {
        .header_revision = info.revision,
        .created = info.created,
        .progress = !info.created && !info.canceled && info.n_events == 0,
        .canceled = info.canceled,
        .compact_revision = info.compact_revision,
    };
    reg_watch_sm_watch_line(&v->sm, &wl, now, &fx);
    run(v, &fx);
}

static void on_watch_close(void *ud, int err, const char *body, size_t len)
{
    reg_view_t *v = ud;
    v->watch_req = NULL;
    mesh_debug("registry", "watch of %s ended: %s", v->prefix, etcd_strerror(err));
    reg_wfxs_t fx = {.n = 0};
    reg_watch_sm_watch_closed(&v->sm, uv_now(v->loop), &fx);
    run(v, &fx);
}

static void on_retry_timer(uv_timer_t *t)
{
    reg_view_t *v = t->data;
    reg_wfxs_t fx = {.n = 0};
    reg_watch_sm_retry_timer(&v->sm, uv_now(v->loop), &fx);
    run(v, &fx);
}

static void on_flush_timer(uv_timer_t *t)
{
    reg_view_t *v = t->data;
    reg_wfxs_t fx = {.n = 0};
    reg_watch_sm_flush_timer(&v->sm, uv_now(v->loop), &fx);
    run(v, &fx);
}

static void publish(reg_view_t *v)
{
    reg_snap_writer_kick(v->snap, v->sm.revision); /* coalesced, written off the loop */
    mesh_routes_t *routes = v->cfg.no_routes ? NULL : reg_table_routes(&v->table);
    if (v->cb)
        v->cb(v->ud, routes, &v->table, v->sm.revision);
    else if (routes)
        mesh_routes_unref(routes);
}

static void run(reg_view_t *v, reg_wfxs_t *fx)
{
    for (int i = 0; i < fx->n; i++) {
        const reg_wfx_t *e = &fx->v[i];
        switch (e->kind) {
        case REG_WFX_RANGE: {
            char *body = etcd_req_range_prefix(v->prefix);
            etcd_req_cancel(v->range_req);
            v->range_req =
                body ? etcd_client_post(v->cfg.client, "/v3/kv/range", body, on_range, v) : NULL;
            free(body);
            if (!v->range_req) {
                reg_wfxs_t more = {.n = 0};
                reg_watch_sm_range_failed(&v->sm, uv_now(v->loop), &more);
                run(v, &more);
            }
            break;
        }
        case REG_WFX_WATCH: {
            char *body = etcd_req_watch_prefix(v->prefix, e->arg);
            etcd_req_cancel(v->watch_req);
            v->watch_req = body ? etcd_client_stream(v->cfg.client, "/v3/watch", body,
                                                     on_watch_line, on_watch_close, v)
                                : NULL;
            free(body);
            if (!v->watch_req) {
                reg_wfxs_t more = {.n = 0};
                reg_watch_sm_watch_closed(&v->sm, uv_now(v->loop), &more);
                run(v, &more);
            }
            break;
        }
        case REG_WFX_CANCEL_WATCH:
            etcd_req_cancel(v->watch_req);
            v->watch_req = NULL;
            break;
        case REG_WFX_RETRY_TIMER:
            uv_timer_start(&v->retry_timer, on_retry_timer, (uint64_t)e->arg, 0);
            break;
        case REG_WFX_FLUSH_TIMER:
            uv_timer_start(&v->flush_timer, on_flush_timer, (uint64_t)e->arg, 0);
            break;
        case REG_WFX_PUBLISH:
            publish(v);
            break;
        case REG_WFX_LINK:
            if (e->arg == REG_LINK_CONNECTED)
                mesh_info("registry", "etcd connected (%s): %zu instances at revision %lld",
                          etcd_client_endpoint(v->cfg.client), v->table.n_valid,
                          (long long)v->sm.revision);
            else
                mesh_warn("registry", "etcd unreachable: degraded, keeping %zu instances",
                          v->table.n_valid);
            if (v->cfg.on_link)
                v->cfg.on_link(v->ud, (reg_link_t)e->arg, v->sm.revision);
            break;
        }
    }
}

reg_view_t *reg_view_new(uv_loop_t *loop, const reg_view_cfg_t *cfg, reg_view_cb cb, void *ud)
{
    reg_view_t *v = calloc(1, sizeof(*v));
    if (!v)
        return NULL;
    v->loop = loop;
    v->cfg = *cfg;
    if (!v->cfg.snapshot_min_gap_ms)
        v->cfg.snapshot_min_gap_ms = 500;
    v->prefix = strdup(cfg->prefix ? cfg->prefix : REG_DEFAULT_PREFIX);
    /* Watch and range "<prefix>/" so that "meshd/services2" is not ours. */
    size_t pl = v->prefix ? strlen(v->prefix) : 0;
    if (v->prefix && (pl == 0 || v->prefix[pl - 1] != '/')) {
        char *p = NULL;
        if (asprintf(&p, "%s/", v->prefix) > 0) {
            free(v->prefix);
            v->prefix = p;
        }
    }
    v->snapshot_path = cfg->snapshot_path ? strdup(cfg->snapshot_path) : NULL;
    if (!v->prefix || reg_table_init(&v->table, v->prefix) < 0) {
        free(v->prefix);
        free(v->snapshot_path);
        free(v);
        return NULL;
    }
    etcd_decoder_init(&v->dec);
    reg_watch_sm_init(&v->sm, &v->table, 0, &v->cfg.watch);
    uv_timer_init(loop, &v->retry_timer);
    uv_timer_init(loop, &v->flush_timer);
    v->retry_timer.data = v->flush_timer.data = v;
    v->cb = cb;
    v->ud = ud;
    return v;
}

int reg_view_start(reg_view_t *v)
{
    if (v->snapshot_path) {
        int64_t rev = 0;
        long n = reg_table_load(&v->table, v->snapshot_path, &rev);
        if (n >= 0) {
            v->sm.revision = rev;
            mesh_info("registry", "loaded %ld instances from snapshot %s (revision %lld)", n,
                      v->snapshot_path, (long long)rev);
            publish(v);
        }
        v->snap = reg_snap_writer_new(v->loop, &v->table, v->snapshot_path,
                                      v->cfg.snapshot_min_gap_ms, n >= 0);
        if (!v->snap)
            return -1;
    }
    reg_wfxs_t fx = {.n = 0};
    reg_watch_sm_start(&v->sm, uv_now(v->loop), &fx);
    run(v, &fx);
    return 0;
}

static void handle_closed(uv_handle_t *h)
{
    reg_view_t *v = h->data;
    if (--v->handles_open == 0) {
        reg_table_destroy(&v->table);
        etcd_decoder_destroy(&v->dec);
        free(v->prefix);
        free(v->snapshot_path);
        free(v);
    }
}

void reg_view_free(reg_view_t *v)
{
    if (!v)
        return;
    reg_wfxs_t fx = {.n = 0};
    reg_watch_sm_stop(&v->sm, uv_now(v->loop), &fx);
    etcd_req_cancel(v->range_req);
    etcd_req_cancel(v->watch_req);
    v->range_req = v->watch_req = NULL;
    reg_snap_writer_free(v->snap); /* writes what is pending, off the loop */
    v->snap = NULL;
    v->handles_open = 2;
    uv_close((uv_handle_t *)&v->retry_timer, handle_closed);
    uv_close((uv_handle_t *)&v->flush_timer, handle_closed);
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

const reg_watch_sm_t *reg_view_sm(const reg_view_t *v)
{
    return &v->sm;
}
