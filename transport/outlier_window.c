/*
 * transport/outlier_window.c: the failure-percentage outlier detector over fixed windows; see
 * transport/outlier_window.h.
 */
#include "transport/outlier_window.h"

void mesh_olw_cfg_fix(mesh_olw_cfg_t *cfg)
{
    if (cfg->threshold_pct > 100)
        cfg->threshold_pct = 100;
    if (!cfg->min_volume)
        cfg->min_volume = MESH_OLW_MIN_VOLUME;
    if (!cfg->interval_ms)
        cfg->interval_ms = MESH_OLW_INTERVAL_MS;
}

/* Judges the window that ends now and starts the next one (aligned to the interval, so a quiet
 * stretch does not shift the windows). 1: over the threshold. */
static int close_window(mesh_olw_t *w, const mesh_olw_cfg_t *cfg, uint64_t now)
{
    uint64_t volume = (uint64_t)w->ok + w->failed;
    int eject = 0;
    if (volume >= cfg->min_volume && volume > 0 &&
        (uint64_t)w->failed * 100 >= (uint64_t)cfg->threshold_pct * volume) {
        w->last_volume = (uint32_t)volume;
        w->last_pct = (uint32_t)((uint64_t)w->failed * 100 / volume);
        eject = 1;
    }
    w->ok = w->failed = 0;
    w->start_ms = now - (now - w->start_ms) % cfg->interval_ms;
    return eject;
}

int mesh_olw_add(mesh_olw_t *w, const mesh_olw_cfg_t *cfg, mesh_outlier_outcome_t outcome,
                 uint64_t now)
{
    if (!cfg->threshold_pct || outcome == MESH_OUTLIER_NEUTRAL)
        return 0;
    int eject = 0;
    if (!w->start_ms && !w->ok && !w->failed)
        w->start_ms = now; /* the first outcome opens the first window */
    else if (now >= w->start_ms + cfg->interval_ms)
        eject = close_window(w, cfg, now);
    if (outcome == MESH_OUTLIER_SUCCESS) {
        if (w->ok < UINT32_MAX)
            w->ok++;
    } else if (w->failed < UINT32_MAX) {
        w->failed++;
    }
    return eject;
}
