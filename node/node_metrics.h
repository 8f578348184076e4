/*
 * node/node_metrics.h: the node's part of GET /metrics: what its workers report through their
 * event rings (calls, connections, breaker transitions), its routing table and etcd's link.
 *
 * The workers never touch this: they push MESH_EV_STATS (counters as deltas, gauges as they
 * are) and MESH_EV_BREAKER events into their own ring (actors/evring.h), and the node actor
 * folds them in here, on the control loop, when it drains the rings. The per-call families
 * (by service, method and status; latency histograms) plug in the same way: a worker keeps
 * its own counters and common/prom.h histograms, ships them in its periodic report, and the
 * node merges them here (prom_hist_merge); nothing is shared or locked on the hot path.
 */
#ifndef MESH_NODE_METRICS_H
#define MESH_NODE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "actors/evring.h"
#include "common/prom.h"
#include "registry/route_table.h"

/** One upstream's circuit breaker as the workers reported it. */
typedef struct node_breaker {
    const char *instance; /* the breaker's string (lives for the node's run) */
    uint8_t *state;       /* per worker: MESH_EV_BREAKER_CLOSED, _OPEN, _HALF_OPEN */
    uint64_t opened;      /* transitions into open, over every worker */
} node_breaker_t;

/** What the node keeps for /metrics (control loop only). */
typedef struct node_metrics {
    int nworkers;
    uint64_t upstream_conns, client_conns;                                   /* totals */
    uint64_t retry_budget_exhausted, faults_aborted, faults_delayed, hedges; /* totals */
    uint64_t *upstream_open, *endpoints; /* per worker: the last reported gauges */
    uint64_t *fe_req_buffered;           /* per worker: gateway request bytes held */
    uint64_t events_dropped;             /* events the rings had no room for */
    node_breaker_t *br;
    size_t n_br, cap_br;
} node_metrics_t;

/** Initializes for nworkers workers. 0, or -1 on OOM. */
int node_metrics_init(node_metrics_t *m, int nworkers);

/** Frees what init and the breakers allocated. */
void node_metrics_destroy(node_metrics_t *m);

/** Folds in a worker's MESH_EV_STATS connection figures. */
void node_metrics_stats(node_metrics_t *m, int worker, const mesh_ev_stats_t *s);

/** Folds in a worker's breaker transition. */
void node_metrics_breaker(node_metrics_t *m, int worker, const mesh_ev_breaker_t *b);

/** The node's figures that live elsewhere in the node. */
typedef struct node_metrics_view {
    uint64_t calls, failed, retries; /* the workers' call counters, summed */
    const mesh_routes_t *routes;     /* the table the workers use (may be NULL) */
    const char *etcd;                /* "off", "connected" or "degraded" */
} node_metrics_view_t;

/** Writes the node's families (docs/admin.md lists them). */
void node_metrics_write(const node_metrics_t *m, const node_metrics_view_t *v, prom_t *p);

#endif
