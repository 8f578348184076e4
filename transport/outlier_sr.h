/*
 * transport/outlier_sr.h: the success-rate outlier detector (Envoy's), without I/O.
 *
 * Consecutive failures (transport/outlier.h) and the failure percentage
 * (transport/outlier_window.h) judge an endpoint against fixed numbers; this detector judges it
 * against its peers: once per interval (Envoy's 10 s), over the endpoints of one service that
 * had at least request_volume calls in the interval (Envoy's 100), when there are at least
 * min_hosts of them (Envoy's 5), it takes the mean and the (population) standard deviation of
 * their success rates, and an endpoint whose success rate is below
 *   mean - stdev_factor x stdev        (stdev_factor: Envoy's 1.9)
 * is an outlier: the caller ejects it through the shared state (transport/outlier_board.h: the
 * max ejection percent, growing time and single probe hold as for the other detectors). A
 * success is any answer of the app, a failure a gateway failure (mesh_outlier_classify_grpc).
 *
 * The counts (mesh_olsr_ep_t, 8 bytes) live beside each endpoint of a worker and the interval's
 * end (mesh_olsr_svc_t) beside each service of a worker: no shared write per call. Intervals are
 * aligned to multiples of interval_ms on the process's monotonic clock, so every worker's
 * interval k is the same time span. The analysis runs lazily, from a worker's first outcome
 * reported after the interval's end (no timer): it first merges its counts of each endpoint
 * into that endpoint's process-wide sum for interval k (mesh_olsr_merge;
 * transport/outlier_board.h keeps one per address under the slot's lock: one lock per endpoint
 * per worker per interval) and judges the sums it gets back, so request_volume holds for the
 * process whatever the worker count. The worker that merges last judges all the calls; one
 * that merged earlier judged fewer (at worst its own, as a single worker would), and an
 * endpoint ejected already is not ejected twice. Time is passed in (ms). Nothing allocates. Off
 * unless enabled.
 */
#ifndef MESH_OUTLIER_SR_H
#define MESH_OUTLIER_SR_H

#include <stddef.h>
#include <stdint.h>

#include "transport/outlier.h"

/** Envoy's success-rate defaults. */
#define MESH_OLSR_INTERVAL_MS    10000
#define MESH_OLSR_MIN_HOSTS      5
#define MESH_OLSR_REQUEST_VOLUME 100
#define MESH_OLSR_STDEV_FACTOR   1.9

typedef struct mesh_olsr_cfg {
    int enabled;             /* 0 (the default): the detector is off */
    double stdev_factor;     /* 0: the default */
    uint32_t min_hosts;      /* 0: the default; below 2 acts as 2 (one endpoint has no peers) */
    uint32_t request_volume; /* 0: the default */
    uint64_t interval_ms;    /* 0: the default */
} mesh_olsr_cfg_t;

/** One endpoint's counts in the current interval. Zero it to start. */
typedef struct mesh_olsr_ep {
    uint32_t ok, failed;
} mesh_olsr_ep_t;

/** One endpoint's process-wide counts of interval idx, summed over the workers. */
typedef struct mesh_olsr_sum {
    uint64_t idx;
    mesh_olsr_ep_t c;
} mesh_olsr_sum_t;

/** One service's analysis clock. Zero it to start (the first outcome opens an interval). */
typedef struct mesh_olsr_svc {
    uint64_t end_ms; /* the current interval ends; 0: none open */
} mesh_olsr_svc_t;

/** What an analysis found (for the reason of an ejection). */
typedef struct mesh_olsr_result {
    size_t hosts;     /* endpoints with enough volume */
    double mean;      /* their mean success rate, 0..1 */
    double stdev;     /* its population standard deviation */
    double threshold; /* mean - stdev_factor x stdev */
} mesh_olsr_result_t;

/** Fills zero fields of cfg with the defaults. */
void mesh_olsr_cfg_fix(mesh_olsr_cfg_t *cfg);

/** Counts an outcome of an endpoint's call (neutral ones are not counted). Per call: inline. */
static inline void mesh_olsr_count(mesh_olsr_ep_t *e, mesh_outlier_outcome_t outcome)
{
    if (outcome == MESH_OUTLIER_SUCCESS) {
        if (e->ok < UINT32_MAX)
            e->ok++;
    } else if (outcome == MESH_OUTLIER_FAILURE && e->failed < UINT32_MAX) {
        e->failed++;
    }
}

/** Whether the service's interval is over at now (then call mesh_olsr_analyze); opens the
 *  first interval at the first call. */
int mesh_olsr_due(mesh_olsr_svc_t *s, const mesh_olsr_cfg_t *cfg, uint64_t now);

/** The index of the interval that is over when mesh_olsr_due said so. */
static inline uint64_t mesh_olsr_ended(const mesh_olsr_svc_t *s, const mesh_olsr_cfg_t *cfg)
{
    return s->end_ms / cfg->interval_ms - 1;
}

/**
 * Adds a worker's counts of interval idx to the endpoint's sum (the caller serialises calls on
 * one sum) and writes the sum into *out. Counts of an interval older than the sum's (a worker
 * that judged late) are not added: *out is then mine alone.
 */
void mesh_olsr_merge(mesh_olsr_sum_t *sum, uint64_t idx, const mesh_olsr_ep_t *mine,
                     mesh_olsr_ep_t *out);

/**
 * Analyzes the interval that ended over the service's endpoints eps[0..n-1] (their counts are
 * cleared and the next interval starts, aligned to the interval): writes the indexes of the
 * outliers into out[0..cap-1] and returns how many there are (at most cap; the lowest success
 * rates first). res (may be NULL) describes the analysis.
 */
size_t mesh_olsr_analyze(mesh_olsr_svc_t *s, const mesh_olsr_cfg_t *cfg, mesh_olsr_ep_t *const *eps,
                         size_t n, uint64_t now, size_t *out, size_t cap, mesh_olsr_result_t *res);

#endif
