/*
 * transport/proxy_outlier_sr.c: the engine side of the success-rate outlier detector
 * (transport/outlier_sr.h): each reported outcome is counted for its endpoint on this worker;
 * the first report after a service's interval ended merges this worker's counts into the
 * endpoints' process-wide sums on the shared board, judges the service's endpoints by the sums
 * and ejects the outliers through the board (max ejection percent, growing time, single
 * probe).
 */
#include <stdio.h>
#include <stdlib.h>

#include "common/log.h"
#include "transport/proxy_internal.h"

#define ACTOR "proxy"

void pxy_outlier_sr(pxy_stream_t *ps, pxy_svc_t *s, pxy_endpoint_t *ep,
                    const mesh_outlier_cfg_t *cfg, const mesh_olsr_cfg_t *sr,
                    mesh_outlier_outcome_t oc, uint64_t now)
{
    mesh_proxy_worker_t *w = ps->w;
    mesh_olsr_count(&ep->olsr, oc);
    if (!mesh_olsr_due(&s->olsr, sr, now) || !s->n)
        return;
    /* once per service per interval, not per call: the scratch is allocated here */
    mesh_olsr_ep_t **eps = malloc(s->n * (sizeof(*eps) + sizeof(size_t) + sizeof(**eps)));
    if (!eps) {
        mesh_warn(ACTOR, "worker %d: out of memory for the success-rate analysis of %.*s",
                  w->cfg.worker_index, ps->svc_len, ps->svc_str);
        s->olsr.end_ms = now + sr->interval_ms;
        return;
    }
    size_t *out = (size_t *)(eps + s->n);
    mesh_olsr_ep_t *sums = (mesh_olsr_ep_t *)(out + s->n);
    uint64_t idx = mesh_olsr_ended(&s->olsr, sr);
    for (size_t k = 0; k < s->n; k++) { /* this worker's counts into the process's sums */
        mesh_outlier_slot_sr(s->eps[k]->ol, idx, &s->eps[k]->olsr, &sums[k]);
        s->eps[k]->olsr = (mesh_olsr_ep_t){0};
        eps[k] = &sums[k];
    }
    mesh_olsr_result_t r;
    size_t found = mesh_olsr_analyze(&s->olsr, sr, eps, s->n, now, out, s->n, &r);
    for (size_t i = 0; i < found; i++) {
        pxy_endpoint_t *e = s->eps[out[i]];
        size_t n_ejected = 0;
        for (size_t k = 0; k < s->n; k++)
            n_ejected += mesh_outlier_slot_ejected(s->eps[k]->ol);
        uint64_t ms = 0;
        mesh_outlier_effect_t eff =
            mesh_outlier_slot_eject(w->board, e->ol, cfg, s->n, n_ejected, now, &ms);
        if (eff == MESH_OUTLIER_NONE)
            continue;
        char why[200];
        snprintf(why, sizeof(why),
                 "success rate below the service's %.2f%% - %.2f x %.2f%% = %.2f%% (%zu instances "
                 "judged over %llu ms)",
                 100 * r.mean, sr->stdev_factor, 100 * r.stdev, 100 * r.threshold, r.hosts,
                 (unsigned long long)sr->interval_ms);
        pxy_outlier_tell(w, cfg, e, ps->svc_str, ps->svc_len, eff, ms, why);
    }
    free(eps);
}
