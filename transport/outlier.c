/*
 * transport/outlier.c: per-endpoint outlier ejection (consecutive gateway failures, growing
 * ejection time, max ejection percent, single-probe return); see transport/outlier.h.
 */
#include "transport/outlier.h"

void mesh_outlier_cfg_fix(mesh_outlier_cfg_t *cfg)
{
    if (!cfg->consecutive)
        cfg->consecutive = MESH_OUTLIER_CONSECUTIVE;
    if (!cfg->base_ejection_ms)
        cfg->base_ejection_ms = MESH_OUTLIER_BASE_EJECTION_MS;
    if (!cfg->max_ejection_ms)
        cfg->max_ejection_ms = MESH_OUTLIER_MAX_EJECTION_MS;
    if (cfg->max_ejection_ms < cfg->base_ejection_ms)
        cfg->max_ejection_ms = cfg->base_ejection_ms;
    if (!cfg->max_ejection_percent)
        cfg->max_ejection_percent = MESH_OUTLIER_MAX_EJECTION_PERCENT;
    if (cfg->max_ejection_percent > 100)
        cfg->max_ejection_percent = 100;
}

void mesh_outlier_init(mesh_outlier_t *o)
{
    *o = (mesh_outlier_t){0};
}

void mesh_outlier_picked(mesh_outlier_t *o, const mesh_outlier_cfg_t *cfg, uint64_t now_ms)
{
    if (o->ejected && o->ejected_until_ms <= now_ms && o->probe_until_ms <= now_ms)
        o->probe_until_ms = now_ms + cfg->base_ejection_ms;
}

int mesh_outlier_may_eject(const mesh_outlier_cfg_t *cfg, size_t n_endpoints, size_t n_ejected)
{
    /* Never the last routable endpoint: with every instance out, calls would fail anyway, and a
     * proxy whose own network broke would otherwise end up ejecting the whole service. */
    if (n_ejected + 1 >= n_endpoints)
        return 0;
    size_t limit = n_endpoints * cfg->max_ejection_percent / 100;
    if (limit < 1)
        limit = 1;
    return n_ejected < limit;
}

/* Drops the multiplier by one per base_ejection_ms spent in traffic since decay_from_ms. */
static void decay(mesh_outlier_t *o, const mesh_outlier_cfg_t *cfg, uint64_t now_ms)
{
    if (!o->ejections || now_ms <= o->decay_from_ms)
        return;
    uint64_t steps = (now_ms - o->decay_from_ms) / cfg->base_ejection_ms;
    if (steps >= o->ejections) {
        o->ejections = 0;
        o->decay_from_ms = now_ms;
    } else {
        o->ejections -= (uint32_t)steps;
        o->decay_from_ms += steps * cfg->base_ejection_ms;
    }
}

/* Takes the endpoint out: base_ejection_ms times the number of ejections, capped. */
static uint64_t eject(mesh_outlier_t *o, const mesh_outlier_cfg_t *cfg, uint64_t now_ms)
{
    uint64_t mult = (uint64_t)o->ejections + 1;
    uint64_t ms = mult > cfg->max_ejection_ms / cfg->base_ejection_ms
                      ? cfg->max_ejection_ms
                      : cfg->base_ejection_ms * mult;
    if (ms < cfg->max_ejection_ms)
        o->ejections++; /* at the cap it stays (no overflow however long it flaps) */
    o->ejected = 1;
    o->ejected_until_ms = now_ms + ms;
    o->probe_until_ms = 0;
    o->consecutive = 0;
    return ms;
}

mesh_outlier_effect_t mesh_outlier_report(mesh_outlier_t *o, const mesh_outlier_cfg_t *cfg,
                                          mesh_outlier_outcome_t outcome, size_t n_endpoints,
                                          size_t n_ejected, uint64_t now_ms, uint64_t *out_ms)
{
    if (cfg->disabled || outcome == MESH_OUTLIER_NEUTRAL)
        return MESH_OUTLIER_NONE;
    if (o->ejected) {
        /* Outcomes of calls sent before the ejection say nothing new; after the ejection time
         * the outcome is the probe's. */
        if (now_ms < o->ejected_until_ms)
            return MESH_OUTLIER_NONE;
        if (outcome == MESH_OUTLIER_SUCCESS) {
            o->ejected = 0;
            o->probe_until_ms = 0;
            o->consecutive = 0;
            o->decay_from_ms = now_ms;
            return MESH_OUTLIER_RETURNED;
        }
        uint64_t ms = eject(o, cfg, now_ms); /* already counted as out: no percent check */
        if (out_ms)
            *out_ms = ms;
        return MESH_OUTLIER_EJECTED;
    }
    decay(o, cfg, now_ms);
    if (outcome == MESH_OUTLIER_SUCCESS) {
        o->consecutive = 0;
        return MESH_OUTLIER_NONE;
    }
    if (o->consecutive < UINT32_MAX)
        o->consecutive++;
    if (o->consecutive < cfg->consecutive)
        return MESH_OUTLIER_NONE;
    if (!mesh_outlier_may_eject(cfg, n_endpoints, n_ejected))
        return MESH_OUTLIER_HELD_BACK;
    uint64_t ms = eject(o, cfg, now_ms);
    if (out_ms)
        *out_ms = ms;
    return MESH_OUTLIER_EJECTED;
}

mesh_outlier_effect_t mesh_outlier_eject(mesh_outlier_t *o, const mesh_outlier_cfg_t *cfg,
                                         size_t n_endpoints, size_t n_ejected, uint64_t now_ms,
                                         uint64_t *out_ms)
{
    if (cfg->disabled || o->ejected)
        return MESH_OUTLIER_NONE;
    decay(o, cfg, now_ms);
    if (!mesh_outlier_may_eject(cfg, n_endpoints, n_ejected))
        return MESH_OUTLIER_HELD_BACK;
    uint64_t ms = eject(o, cfg, now_ms);
    if (out_ms)
        *out_ms = ms;
    return MESH_OUTLIER_EJECTED;
}
