/*
 * transport/outlier.h: per-endpoint outlier ejection for the proxy, without I/O.
 *
 * The proxy's answer to a gray failure: an instance the registry still lists (it is alive and
 * others reach it) but this proxy cannot (dropped packets, a broken route). Modelled on Envoy's
 * outlier detection, consecutive gateway failures flavour:
 *   - each finished call reports an outcome for the endpoint it went to: a gateway failure
 *     (connect failure, reset, UNAVAILABLE, DEADLINE_EXCEEDED), a success (any answer from the
 *     app, whatever its status: the instance is there) or neutral (the client cancelled);
 *   - cfg.consecutive gateway failures in a row eject the endpoint for base_ejection_ms times
 *     its number of ejections, capped at max_ejection_ms; the multiplier drops by one for each
 *     base_ejection_ms the endpoint spends in traffic afterwards;
 *   - an ejection happens only while at most max_ejection_percent of the service's endpoints
 *     are ejected (at least one may always be), and never when it would leave no endpoint
 *     routable: a proxy with a broken network does not eject everything;
 *   - when the ejection time is over the endpoint takes a single probe call: a success returns
 *     it to full traffic, a failure ejects it again at once (for a longer time). A probe that
 *     never reports (lost) frees the slot after base_ejection_ms.
 *
 * Endpoint state is a small struct the caller keeps beside its connect backoff
 * (transport/balancer.h); the service-wide count (how many are ejected) is the caller's to
 * give, since it knows which endpoints form the service. Time is passed in (ms), so the proxy
 * worker runs this on uv_now() and the simulator on its virtual clock. Nothing allocates.
 */
#ifndef MESH_OUTLIER_H
#define MESH_OUTLIER_H

#include <stddef.h>
#include <stdint.h>

#include "transport/grpc_status.h"

/** Envoy's defaults: 5 consecutive gateway failures, 30 s base ejection, 300 s cap, 10 %. */
#define MESH_OUTLIER_CONSECUTIVE          5
#define MESH_OUTLIER_BASE_EJECTION_MS     30000
#define MESH_OUTLIER_MAX_EJECTION_MS      300000
#define MESH_OUTLIER_MAX_EJECTION_PERCENT 10

/** Settings shared by the endpoints of a worker. */
typedef struct mesh_outlier_cfg {
    uint32_t consecutive;          /* failures in a row that eject; 0 means the default */
    uint64_t base_ejection_ms;     /* 0 means the default */
    uint64_t max_ejection_ms;      /* cap; 0 means the default; raised to base_ejection_ms */
    uint32_t max_ejection_percent; /* 0 means the default; above 100 means 100 */
    int disabled;                  /* 1: never eject (the outcome calls do nothing) */
} mesh_outlier_cfg_t;

/** What a finished call says about its endpoint. */
typedef enum mesh_outlier_outcome {
    MESH_OUTLIER_SUCCESS = 0, /* the app answered (any status it sent itself) */
    MESH_OUTLIER_FAILURE,     /* connect failure, reset, UNAVAILABLE, DEADLINE_EXCEEDED */
    MESH_OUTLIER_NEUTRAL,     /* says nothing about the endpoint (client cancel, local reject) */
} mesh_outlier_outcome_t;

/** One endpoint's outlier state. */
typedef struct mesh_outlier {
    uint64_t ejected_until_ms; /* not pickable before this time */
    uint64_t probe_until_ms;   /* a probe is in flight until it reports or this time passes */
    uint64_t decay_from_ms;    /* the multiplier last dropped (or the endpoint returned) */
    uint32_t consecutive;      /* gateway failures in a row */
    uint32_t ejections;        /* the multiplier of the next ejection's time, minus one */
    uint8_t ejected;           /* 1 from an ejection until a probe succeeds */
} mesh_outlier_t;

/** What an outcome did to the endpoint (for the log line, the metrics and the audit stream). */
typedef enum mesh_outlier_effect {
    MESH_OUTLIER_NONE = 0,
    MESH_OUTLIER_EJECTED,   /* taken out; *out_ms says for how long */
    MESH_OUTLIER_RETURNED,  /* its probe succeeded: back in full traffic */
    MESH_OUTLIER_HELD_BACK, /* would have been ejected, but the percent cap forbids it */
} mesh_outlier_effect_t;

/** Fills zero fields of cfg with the defaults. */
void mesh_outlier_cfg_fix(mesh_outlier_cfg_t *cfg);

/** A fresh endpoint: in traffic, no history. */
void mesh_outlier_init(mesh_outlier_t *o);

/**
 * Whether the balancer may pick the endpoint at now_ms: not ejected, or ejected with its time
 * over and no probe in flight (that pick is then the probe: call mesh_outlier_picked). Per
 * call: inline.
 */
static inline int mesh_outlier_up(const mesh_outlier_t *o, uint64_t now_ms)
{
    return !o->ejected || (o->ejected_until_ms <= now_ms && o->probe_until_ms <= now_ms);
}

/** Whether the endpoint counts as ejected at now_ms (for the max ejection percent). */
static inline int mesh_outlier_is_ejected(const mesh_outlier_t *o)
{
    return o->ejected;
}

/** The balancer picked the endpoint at now_ms: if it was due for a probe, this call is the
 *  probe, and no other call goes there until it reports (or base_ejection_ms passed). */
void mesh_outlier_picked(mesh_outlier_t *o, const mesh_outlier_cfg_t *cfg, uint64_t now_ms);

/**
 * A call to the endpoint finished at now_ms with outcome. n_endpoints is the number of
 * endpoints of the service, n_ejected how many of them are ejected now (this one included if
 * it is). Returns what changed; for MESH_OUTLIER_EJECTED *out_ms (may be NULL) is the time out.
 */
mesh_outlier_effect_t mesh_outlier_report(mesh_outlier_t *o, const mesh_outlier_cfg_t *cfg,
                                          mesh_outlier_outcome_t outcome, size_t n_endpoints,
                                          size_t n_ejected, uint64_t now_ms, uint64_t *out_ms);

/**
 * Another detector (transport/outlier_window.h) found the endpoint an outlier at now: ejects it
 * like a streak of failures would (growing time, max ejection percent: MESH_OUTLIER_HELD_BACK
 * when it forbids). Nothing when the endpoint is out already or the detection is disabled.
 */
mesh_outlier_effect_t mesh_outlier_eject(mesh_outlier_t *o, const mesh_outlier_cfg_t *cfg,
                                         size_t n_endpoints, size_t n_ejected, uint64_t now_ms,
                                         uint64_t *out_ms);

/** The outcome a call's final gRPC status (0..16) says about its upstream: UNAVAILABLE and
 *  DEADLINE_EXCEEDED are failures, CANCELLED is neutral, anything else came from the app.
 *  Per call: inline. */
static inline mesh_outlier_outcome_t mesh_outlier_classify_grpc(int grpc_status)
{
    switch (grpc_status) {
    case MESH_GRPC_UNAVAILABLE:
    case MESH_GRPC_DEADLINE_EXCEEDED:
        return MESH_OUTLIER_FAILURE;
    case MESH_GRPC_CANCELLED:
        return MESH_OUTLIER_NEUTRAL;
    default:
        return MESH_OUTLIER_SUCCESS;
    }
}

/** Whether one more endpoint may be ejected out of n_endpoints with n_ejected already out. */
int mesh_outlier_may_eject(const mesh_outlier_cfg_t *cfg, size_t n_endpoints, size_t n_ejected);

#endif
