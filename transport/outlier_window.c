/*
 * transport/outlier_window.c: the failure-percentage outlier detector over fixed windows,
 * counted per worker and summed per endpoint; see transport/outlier_window.h.
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

int mesh_olw_count(mesh_olw_t *w, const mesh_olw_cfg_t *cfg, mesh_outlier_outcome_t outcome,
                   uint64_t now)
{
    if (!cfg->threshold_pct || outcome == MESH_OUTLIER_NEUTRAL)
        return 0;
    uint64_t idx = now / cfg->interval_ms;
    int closed = 0;
    if (!w->open) {
        w->open = 1;
        w->idx = idx;
    } else if (idx != w->idx) {
        closed = w->ok || w->failed;
        w->closed_idx = w->idx;
        w->closed_ok = w->ok;
        w->closed_failed = w->failed;
        w->ok = w->failed = 0;
        w->idx = idx;
    }
    if (outcome == MESH_OUTLIER_SUCCESS) {
        if (w->ok < UINT32_MAX)
            w->ok++;
    } else if (w->failed < UINT32_MAX) {
        w->failed++;
    }
    return closed;
}

static uint32_t sat_add(uint32_t a, uint32_t b)
{
    return a > UINT32_MAX - b ? UINT32_MAX : a + b;
}

int mesh_olw_merge(mesh_olw_sum_t *sum, const mesh_olw_cfg_t *cfg, const mesh_olw_t *w)
{
    if (w->closed_idx < sum->idx)
        return 0; /* late: the sum moved on */
    if (w->closed_idx > sum->idx) {
        sum->idx = w->closed_idx;
        sum->ok = sum->failed = 0;
        sum->said = 0;
    }
    sum->ok = sat_add(sum->ok, w->closed_ok);
    sum->failed = sat_add(sum->failed, w->closed_failed);
    uint64_t volume = (uint64_t)sum->ok + sum->failed;
    if (sum->said || volume < cfg->min_volume || volume == 0 ||
        (uint64_t)sum->failed * 100 < (uint64_t)cfg->threshold_pct * volume)
        return 0;
    sum->said = 1;
    sum->last_volume = (uint32_t)(volume > UINT32_MAX ? UINT32_MAX : volume);
    sum->last_pct = (uint32_t)((uint64_t)sum->failed * 100 / volume);
    return 1;
}
