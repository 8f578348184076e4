/*
 * transport/svc_policy.c: per-service balancing, outlier and upstream TLS settings (see
 * transport/svc_policy.h): the reference count and the merge over the command-line defaults.
 */
#include "transport/svc_policy.h"

#include <stdlib.h>

#include "transport/tls_holder.h"

mesh_svc_policy_t *mesh_svc_policy_new(void)
{
    mesh_svc_policy_t *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    atomic_init(&p->refs, 1);
    p->zone_affinity = -1;
    return p;
}

mesh_svc_policy_t *mesh_svc_policy_ref(mesh_svc_policy_t *p)
{
    if (p)
        atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
    return p;
}

void mesh_svc_policy_unref(mesh_svc_policy_t *p)
{
    if (!p || atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1)
        return;
    mesh_lb_cfg_destroy(&p->lb);
    mesh_tls_holder_free(p->tls);
    free(p->tls_name);
    free(p->tls_ca);
    free(p->tls_cert);
    free(p->tls_key);
    free(p);
}

void mesh_svc_policy_lb(const mesh_svc_policy_t *p, const mesh_lb_cfg_t *def, mesh_lb_cfg_t *out)
{
    *out = *def;
    if (!p)
        return;
    if (p->has_lb_policy)
        out->policy = p->lb.policy;
    if (p->has_subsets) {
        out->subsets = p->lb.subsets;
        out->n_subsets = p->lb.n_subsets;
    }
    if (p->zone_affinity == 0)
        out->zone = NULL;
}

void mesh_svc_policy_outlier(const mesh_svc_policy_t *p, const mesh_outlier_cfg_t *def,
                             mesh_outlier_cfg_t *out)
{
    if (!p || !p->has_outlier) {
        *out = *def;
        return;
    }
    *out = p->outlier;
    mesh_outlier_cfg_fix(out);
}

void mesh_svc_policy_detectors(const mesh_svc_policy_t *p, const mesh_olw_cfg_t *def_fp,
                               const mesh_olsr_cfg_t *def_sr, mesh_olw_cfg_t *fp,
                               mesh_olsr_cfg_t *sr)
{
    *fp = *def_fp;
    *sr = *def_sr;
    if (p && p->has_failure_pct) {
        *fp = p->olw;
        fp->interval_ms = def_fp->interval_ms;
        mesh_olw_cfg_fix(fp);
    }
    if (p && p->has_success_rate) {
        *sr = p->olsr;
        sr->interval_ms = def_sr->interval_ms;
        mesh_olsr_cfg_fix(sr);
    }
}
