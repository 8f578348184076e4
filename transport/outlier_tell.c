/*
 * transport/outlier_tell.c: what the proxy says when an outlier ejection changes something
 * (transport/outlier_board.h returns each effect to one worker): a log line on the worker, and
 * a MESH_EV_OUTLIER event on its ring (actors/evring.h) for the control loop, which hands
 * ejections and returns to the audit stream. Metrics are read from the shared board itself.
 */
#include <stdio.h>
#include <sys/time.h>

#include "actors/evring.h"
#include "common/log.h"
#include "transport/proxy_internal.h"

#define ACTOR "proxy"

void pxy_outlier_tell(mesh_proxy_worker_t *w, const mesh_outlier_cfg_t *cfg,
                      const pxy_endpoint_t *ep, const char *svc, int svc_len,
                      mesh_outlier_effect_t effect, uint64_t ms, const char *why)
{
    mesh_event_t e = {.type = MESH_EV_OUTLIER, .worker = (uint32_t)w->cfg.worker_index};
    mesh_ev_outlier_t *o = &e.outlier;
    switch (effect) {
    case MESH_OUTLIER_EJECTED:
        o->effect = MESH_EV_OUTLIER_EJECTED;
        o->ejected_ms = ms;
        if (why)
            snprintf(o->reason, sizeof(o->reason), "%s; ejected for %llu ms", why,
                     (unsigned long long)ms);
        else
            snprintf(o->reason, sizeof(o->reason),
                     "%u gateway failures in a row (or a failed probe); ejected for %llu ms",
                     (unsigned)cfg->consecutive, (unsigned long long)ms);
        mesh_warn(ACTOR, "worker %d: upstream %s of %.*s ejected: %s", w->cfg.worker_index,
                  ep->addr, svc_len, svc, o->reason);
        break;
    case MESH_OUTLIER_RETURNED:
        o->effect = MESH_EV_OUTLIER_RETURNED;
        snprintf(o->reason, sizeof(o->reason), "its probe call succeeded");
        mesh_info(ACTOR, "worker %d: upstream %s of %.*s returned to traffic: %s",
                  w->cfg.worker_index, ep->addr, svc_len, svc, o->reason);
        break;
    case MESH_OUTLIER_HELD_BACK:
        o->effect = MESH_EV_OUTLIER_HELD_BACK;
        snprintf(o->reason, sizeof(o->reason),
                 "%s, but the service has as many instances ejected as %u%% allows (at least "
                 "one, never the last)",
                 why ? why : "gateway failures in a row", (unsigned)cfg->max_ejection_percent);
        mesh_warn(ACTOR, "worker %d: upstream %s of %.*s not ejected: %s", w->cfg.worker_index,
                  ep->addr, svc_len, svc, o->reason);
        break;
    default:
        return;
    }
    snprintf(o->instance, sizeof(o->instance), "%s", ep->addr);
    snprintf(o->service, sizeof(o->service), "%.*s", svc_len, svc);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    e.c = (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
    mesh_evring_push_current(&e); /* no ring (a test's worker): the log line above is all */
}
