/*
 * registry/view.h: the watch-fed registry view, a component of the registry actor
 * (registry/registry_actor.h): the local table of the prefix (registry/view_table.h), kept by
 * the sans-I/O watch machine (registry/watch_sm.h) whose effects it carries out with the
 * actor's etcd seam (registry/etcd_api.h) and the actor's timers.
 *
 * The owner actor feeds it the etcd results tagged REG_TAG_VIEW_* and the REG_MSG_VIEW_*
 * timer messages; after each call it reads what changed from reg_view_out_t (a table to
 * publish, a link change). Start-up loads the snapshot file (so a node restarted during an
 * etcd outage still routes), then ranges the prefix and watches from revision+1. While etcd is
 * unreachable the last view is kept; when it answers again the view resyncs by diff (instances
 * that still exist never leave).
 */
#ifndef REG_VIEW_H
#define REG_VIEW_H

#include <stdint.h>

#include "actors/actor.h"
#include "registry/etcd_api.h"
#include "registry/view_table.h"
#include "registry/watch_sm.h"

typedef struct reg_view reg_view_t;

/** Settings; strings are copied. */
typedef struct reg_view_cfg {
    const char *prefix;           /* default REG_DEFAULT_PREFIX */
    const char *snapshot_path;    /* NULL: no snapshot file */
    const mesh_fs_t *snapshot_fs; /* the folder of snapshot_path (a name); NULL: the real one */
    uint32_t snapshot_min_gap_ms; /* at most one snapshot write per gap; default 500 */
    reg_watch_cfg_t watch;        /* coalescing, backoff, jitter seed */
} reg_view_cfg_t;

/** What one call changed, for the owner. */
typedef struct reg_view_out {
    int publish;      /* the table changed (a batch, or a snapshot was loaded): publish it */
    int link_changed; /* link is new */
    reg_link_t link;
} reg_view_out_t;

/** Creates a view (not started). NULL on OOM. */
reg_view_t *reg_view_new(const reg_view_cfg_t *cfg);

/** Loads the snapshot (if any), then ranges. self and api are the owner's and must stay the
 *  same for the view's life. */
void reg_view_start(reg_view_t *v, mesh_actor_t *self, etcd_api_t *api, reg_view_out_t *out);

/** Feeds one etcd result of the view (reg_view_owns_tag); returns 0. */
void reg_view_on_result(reg_view_t *v, const etcd_result_t *res, reg_view_out_t *out);

/** Feeds one of the view's timer messages (REG_MSG_VIEW_*); returns 1 when it was the view's
 *  current timer, 0 for a stale one. */
int reg_view_on_timer(reg_view_t *v, const mesh_msg_t *m, reg_view_out_t *out);

/** Whether an etcd result's tag belongs to the view. */
int reg_view_owns_tag(uint64_t tag);

/** Stops watching, writes a pending snapshot and frees the view. */
void reg_view_free(reg_view_t *v);

/** connected / degraded. */
reg_link_t reg_view_link(const reg_view_t *v);

/** The etcd revision the view reflects (0 before any data). */
int64_t reg_view_revision(const reg_view_t *v);

/** The table itself (read-only, on the owner's thread). */
const reg_table_t *reg_view_table(const reg_view_t *v);

/** The table's routes (a new reference), rebuilt only for the services that changed since the
 *  previous call (registry/view_table.h reg_table_routes). NULL on OOM. */
mesh_routes_t *reg_view_routes(reg_view_t *v);

/** The origin annotation (etcd_result_t.origin) of the last range the view applied. */
uint64_t reg_view_range_origin(const reg_view_t *v);

/** The state machine, for statistics (resyncs, compactions). */
const reg_watch_sm_t *reg_view_sm(const reg_view_t *v);

#endif
