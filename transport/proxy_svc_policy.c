/*
 * transport/proxy_svc_policy.c: the engine side of per-service settings
 * (transport/svc_policy.h): a filter gives a call its service's settings, and the worker's
 * service state follows them (its balancing plan and outlier settings), holding a reference.
 */
#include "transport/proxy_internal.h"

void mesh_proxy_call_set_service_policy(mesh_proxy_call_t *ps, mesh_svc_policy_t *p)
{
    ps->svc_pol = p;
}

void pxy_svc_set_policy(mesh_proxy_worker_t *w, pxy_svc_t *s, mesh_svc_policy_t *p)
{
    mesh_svc_policy_ref(p);
    mesh_svc_policy_unref(s->pol);
    s->pol = p;
    mesh_svc_policy_lb(p, &w->lb, &s->lb);
    mesh_svc_policy_outlier(p, &w->outlier, &s->ol);
    mesh_svc_policy_detectors(p, &w->olw, &w->olsr, &s->olw, &s->olsr_cfg);
    if (s->cfg_set) /* settings changed (a reload): the next pick makes the plan anew */
        pxy_svc_plan_free(s);
    s->cfg_set = 1;
}

void pxy_svc_policy_drop(pxy_svc_t *s)
{
    mesh_svc_policy_unref(s->pol);
    s->pol = NULL;
    s->cfg_set = 0;
}
