/*
 * registry/view.h: the watch-fed registry view on a libuv loop: the thin adapter that runs
 * reg_watch_sm (watch_sm.h) against etcd through etcd_client, keeps the table, writes the
 * snapshot file and reports batched changes through one callback.
 *
 * Start-up loads the snapshot (so a node restarted during an etcd outage still routes), then
 * ranges the prefix and watches from revision+1. While etcd is unreachable the last view is
 * kept; when it answers again the view resyncs by diff (instances that still exist never leave).
 */
#ifndef REG_VIEW_H
#define REG_VIEW_H

#include <stdint.h>
#include <uv.h>

#include "registry/etcd_client.h"
#include "registry/view_table.h"
#include "registry/watch_sm.h"

typedef struct reg_view reg_view_t;

/**
 * Called after a batch of changes (at most coalesce_ms after the first), and once after a
 * snapshot was loaded. routes is a new table with one reference for the callee (NULL when
 * building routes is off or failed); table is the view itself, readable during the call.
 */
typedef void (*reg_view_cb)(void *ud, mesh_routes_t *routes, const reg_table_t *table,
                            int64_t revision);

/** Called when the link changes (connected / degraded), with the view's revision. */
typedef void (*reg_view_link_cb)(void *ud, reg_link_t link, int64_t revision);

/** Settings; strings are copied. */
typedef struct reg_view_cfg {
    etcd_client_t *client;        /* borrowed; must outlive the view */
    const char *prefix;           /* default REG_DEFAULT_PREFIX */
    const char *snapshot_path;    /* NULL: no snapshot file */
    uint32_t snapshot_min_gap_ms; /* at most one snapshot write per gap; default 500 */
    int no_routes;                /* 1: do not build mesh_routes_t (callback gets NULL) */
    reg_watch_cfg_t watch;        /* coalescing, backoff, jitter seed */
    reg_view_link_cb on_link;     /* optional; gets the callback's ud */
} reg_view_cfg_t;

/** Creates a view (not started). NULL on OOM. */
reg_view_t *reg_view_new(uv_loop_t *loop, const reg_view_cfg_t *cfg, reg_view_cb cb, void *ud);

/** Loads the snapshot (if any), then connects. Returns 0 or -1. */
int reg_view_start(reg_view_t *v);

/** Stops, writes a pending snapshot and frees the view (handles close when the loop runs). */
void reg_view_free(reg_view_t *v);

/** connected / degraded. */
reg_link_t reg_view_link(const reg_view_t *v);

/** The etcd revision the view reflects (0 before any data). */
int64_t reg_view_revision(const reg_view_t *v);

/** The table itself (read-only, on the loop thread). */
const reg_table_t *reg_view_table(const reg_view_t *v);

/** The state machine, for statistics (resyncs, compactions). */
const reg_watch_sm_t *reg_view_sm(const reg_view_t *v);

#endif
