/*
 * transport/outlier_window.h: the failure-percentage outlier detector, without I/O.
 *
 * Consecutive failures (transport/outlier.h) miss an instance that fails most of its calls but
 * not all of them in a row (a flaky disk, one bad dependency): every success starts the count
 * over. This detector counts an endpoint's outcomes over fixed windows (interval_ms, Envoy's 10 s
 * analysis interval, aligned to multiples of it on the process's monotonic clock) and, when a
 * window holds at least min_volume calls of which at least threshold_pct percent were gateway
 * failures, says "eject" (the caller ejects through the shared state, with the same max
 * ejection percent, growing time and single probe).
 *
 * Two steps, so that the thresholds hold whatever the worker count with no shared write per
 * call: each worker counts its own calls to the endpoint (mesh_olw_t, mesh_olw_add), and when
 * its window closes (lazily, at its first outcome after the window's end: no timer) it merges
 * the window's counts into the endpoint's process-wide sum (mesh_olw_sum_t, mesh_olw_merge;
 * transport/outlier_board.h keeps one per address, under the slot's lock: one locked merge per
 * worker per window). The sum says "eject" once per window, to the worker whose merge took it
 * over the threshold. A worker that closes a window after the sum moved on to a later one
 * (it had no call to the endpoint for a whole interval) has its late counts dropped.
 * Time is passed in (ms). Nothing allocates.
 */
#ifndef MESH_OUTLIER_WINDOW_H
#define MESH_OUTLIER_WINDOW_H

#include <stdint.h>

#include "transport/outlier.h"

/** Envoy's failure-percentage defaults (its enforcement defaults to off, as here). */
#define MESH_OLW_INTERVAL_MS   10000
#define MESH_OLW_MIN_VOLUME    50
#define MESH_OLW_THRESHOLD_PCT 85

typedef struct mesh_olw_cfg {
    uint32_t threshold_pct; /* 0: the detector is off; above 100: 100 */
    uint32_t min_volume;    /* calls in a window, all workers together; 0: the default */
    uint64_t interval_ms;   /* 0: the default */
} mesh_olw_cfg_t;

/** One worker's counts for one endpoint. Zero it to start. */
typedef struct mesh_olw {
    uint64_t idx; /* the current window: [idx x interval, (idx + 1) x interval) */
    uint32_t ok, failed;
    uint8_t open; /* some outcome counted since the start */
    /* the window that closed last (what mesh_olw_merge adds) */
    uint64_t closed_idx;
    uint32_t closed_ok, closed_failed;
} mesh_olw_t;

/** One endpoint's process-wide sum of the workers' windows. Zero it to start. */
typedef struct mesh_olw_sum {
    uint64_t idx;
    uint32_t ok, failed;
    uint8_t said;                   /* this window said "eject" already */
    uint32_t last_pct, last_volume; /* the window that said "eject" (for the reason) */
} mesh_olw_sum_t;

/** Fills zero fields of cfg with the defaults. */
void mesh_olw_cfg_fix(mesh_olw_cfg_t *cfg);

int mesh_olw_count(mesh_olw_t *w, const mesh_olw_cfg_t *cfg, mesh_outlier_outcome_t outcome,
                   uint64_t now);

/**
 * Counts an outcome at now. Returns 1 when a window with outcomes just closed: its counts are
 * in w->closed_*, for mesh_olw_merge. Neutral outcomes are not counted; with the detector off
 * (the default) this is one test, inline, and mesh_olw_count does the counting.
 */
static inline int mesh_olw_add(mesh_olw_t *w, const mesh_olw_cfg_t *cfg,
                               mesh_outlier_outcome_t outcome, uint64_t now)
{
    if (!cfg->threshold_pct || outcome == MESH_OUTLIER_NEUTRAL)
        return 0;
    return mesh_olw_count(w, cfg, outcome, now);
}

/**
 * Adds w's closed window to sum (the caller serialises calls on one sum). Returns 1 when the
 * window's sum just went over the threshold with enough volume (sum->last_pct and
 * sum->last_volume describe it): the caller ejects the endpoint. Once per window.
 */
int mesh_olw_merge(mesh_olw_sum_t *sum, const mesh_olw_cfg_t *cfg, const mesh_olw_t *w);

#endif
