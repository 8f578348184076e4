/*
 * transport/outlier_sr.c: the success-rate outlier detector over a service's endpoints; see
 * transport/outlier_sr.h.
 */
#include "transport/outlier_sr.h"

#include <math.h>

void mesh_olsr_cfg_fix(mesh_olsr_cfg_t *cfg)
{
    if (!(cfg->stdev_factor > 0))
        cfg->stdev_factor = MESH_OLSR_STDEV_FACTOR;
    if (!cfg->min_hosts)
        cfg->min_hosts = MESH_OLSR_MIN_HOSTS;
    if (cfg->min_hosts < 2)
        cfg->min_hosts = 2;
    if (!cfg->request_volume)
        cfg->request_volume = MESH_OLSR_REQUEST_VOLUME;
    if (!cfg->interval_ms)
        cfg->interval_ms = MESH_OLSR_INTERVAL_MS;
}

int mesh_olsr_due(mesh_olsr_svc_t *s, const mesh_olsr_cfg_t *cfg, uint64_t now)
{
    if (!cfg->enabled)
        return 0;
    if (!s->end_ms) { /* the interval around now, aligned */
        s->end_ms = (now / cfg->interval_ms + 1) * cfg->interval_ms;
        return 0;
    }
    return now >= s->end_ms;
}

static uint32_t sat_add(uint32_t a, uint32_t b)
{
    return a > UINT32_MAX - b ? UINT32_MAX : a + b;
}

void mesh_olsr_merge(mesh_olsr_sum_t *sum, uint64_t idx, const mesh_olsr_ep_t *mine,
                     mesh_olsr_ep_t *out)
{
    if (idx < sum->idx) {
        *out = *mine;
        return;
    }
    if (idx > sum->idx) {
        sum->idx = idx;
        sum->c.ok = sum->c.failed = 0;
    }
    sum->c.ok = sat_add(sum->c.ok, mine->ok);
    sum->c.failed = sat_add(sum->c.failed, mine->failed);
    *out = sum->c;
}

/* The endpoint's success rate, or -1 below the volume. */
static double rate(const mesh_olsr_ep_t *e, const mesh_olsr_cfg_t *cfg)
{
    uint64_t v = (uint64_t)e->ok + e->failed;
    return v >= cfg->request_volume && v > 0 ? (double)e->ok / (double)v : -1;
}

size_t mesh_olsr_analyze(mesh_olsr_svc_t *s, const mesh_olsr_cfg_t *cfg, mesh_olsr_ep_t *const *eps,
                         size_t n, uint64_t now, size_t *out, size_t cap, mesh_olsr_result_t *res)
{
    mesh_olsr_result_t r = {0};
    double sum = 0, sq = 0;
    for (size_t i = 0; i < n; i++) {
        double x = rate(eps[i], cfg);
        if (x >= 0) {
            r.hosts++;
            sum += x;
        }
    }
    size_t found = 0;
    if (r.hosts >= cfg->min_hosts) {
        r.mean = sum / (double)r.hosts;
        for (size_t i = 0; i < n; i++) {
            double x = rate(eps[i], cfg);
            if (x >= 0)
                sq += (x - r.mean) * (x - r.mean);
        }
        r.stdev = sqrt(sq / (double)r.hosts);
        r.threshold = r.mean - cfg->stdev_factor * r.stdev;
        for (size_t i = 0; i < n; i++) {
            double x = rate(eps[i], cfg);
            if (x < 0 || x >= r.threshold)
                continue;
            /* kept sorted by rate, the worst first; past cap a worse one replaces the last */
            if (found < cap)
                out[found++] = i;
            else if (cap && rate(eps[out[cap - 1]], cfg) > x)
                out[cap - 1] = i;
            else
                continue;
            for (size_t k = found - 1; k > 0 && rate(eps[out[k - 1]], cfg) > x; k--) {
                size_t t = out[k - 1];
                out[k - 1] = out[k];
                out[k] = t;
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        eps[i]->ok = eps[i]->failed = 0;
    /* the next interval, aligned (a quiet stretch does not shift the intervals) */
    uint64_t iv = cfg->interval_ms;
    s->end_ms = now >= s->end_ms ? s->end_ms + ((now - s->end_ms) / iv + 1) * iv : s->end_ms;
    if (res)
        *res = r;
    return found;
}
