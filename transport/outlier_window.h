/*
 * transport/outlier_window.h: the failure-percentage outlier detector, without I/O.
 *
 * Consecutive failures (transport/outlier.h) miss an instance that fails most of its calls but
 * not all of them in a row (a flaky disk, one bad dependency): every success starts the count
 * over. This detector counts an endpoint's outcomes over fixed windows (interval_ms, Envoy's 10 s
 * analysis interval) and, when a window closes with at least min_volume calls of which at least
 * threshold_pct percent were gateway failures, says "eject" (the caller ejects through the
 * shared state, with the same max ejection percent, growing time and single probe).
 *
 * The counts are the calling worker's own (no shared write per call): with W workers each
 * judges its share of the calls, so min_volume is per worker. A window is closed lazily by the
 * first outcome after its end (no timer); a window that saw no call closes empty. Time is passed
 * in (ms). Nothing allocates.
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
    uint32_t min_volume;    /* 0: the default */
    uint64_t interval_ms;   /* 0: the default */
} mesh_olw_cfg_t;

/** One endpoint's current window. Zero it to start. */
typedef struct mesh_olw {
    uint64_t start_ms;
    uint32_t ok, failed;
    uint32_t last_pct, last_volume; /* the window that said "eject" (for the reason) */
} mesh_olw_t;

/** Fills zero fields of cfg with the defaults. */
void mesh_olw_cfg_fix(mesh_olw_cfg_t *cfg);

/**
 * Counts an outcome at now. Returns 1 when a window just closed over the threshold (then
 * w->last_pct and w->last_volume describe it): the caller ejects the endpoint. Neutral
 * outcomes are not counted.
 */
int mesh_olw_add(mesh_olw_t *w, const mesh_olw_cfg_t *cfg, mesh_outlier_outcome_t outcome,
                 uint64_t now);

#endif
