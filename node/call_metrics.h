/*
 * node/call_metrics.h: the per-call families of GET /metrics, merged on the control loop from
 * the snapshots the workers publish (transport/call_stats.h).
 *
 * Each worker sends a snapshot of its own table through its event ring (MESH_EV_CALLS, at most
 * once per report period and only when something changed); the node keeps the latest one per
 * worker (node_calls_take) and, at scrape time, merges them by service, method and instance
 * name (node_calls_merge) and writes meshd_calls_total{service,method,code},
 * meshd_call_duration_seconds{service} (histogram), meshd_request_bytes_total{service},
 * meshd_response_bytes_total{service}, meshd_retries_total{service} and
 * meshd_upstream_connect_failures_total{upstream}. Snapshots are cumulative, so a snapshot
 * lost to a full ring costs nothing but freshness.
 */
#ifndef MESH_NODE_CALL_METRICS_H
#define MESH_NODE_CALL_METRICS_H

#include <stddef.h>

#include "common/prom.h"
#include "transport/call_stats.h"

/** The workers' latest snapshots (control loop only). */
typedef struct node_calls {
    int nworkers;
    mesh_cs_snap_t **last; /* per worker, owned; NULL before the first */
} node_calls_t;

/** The merge of several snapshots: rows by service name, instances by address. */
typedef struct node_calls_merged {
    mesh_cs_service_t *svc; /* row 0 is "other" */
    size_t n_svc, cap_svc;
    mesh_cs_instance_t *inst; /* entry 0 is "other" */
    size_t n_inst, cap_inst;
} node_calls_merged_t;

/** 0, or -1 on OOM. */
int node_calls_init(node_calls_t *c, int nworkers);

/** Frees the snapshots held. */
void node_calls_destroy(node_calls_t *c);

/** Keeps s (taken over) as worker's latest snapshot, freeing the one before. */
void node_calls_take(node_calls_t *c, int worker, mesh_cs_snap_t *s);

/** Starts an empty merge. 0, or -1 on OOM. */
int node_calls_merged_init(node_calls_merged_t *m);

/** Adds snapshot s into m: rows and methods by name (a method beyond MESH_CS_METHODS in the
 *  merged row counts as "other"), instances by address. 0, or -1 on OOM. */
int node_calls_merge(node_calls_merged_t *m, const mesh_cs_snap_t *s);

/** Frees a merge. */
void node_calls_merged_free(node_calls_merged_t *m);

/** Writes m's families (services, methods and instances in name order, "other" last). */
void node_calls_write_merged(const node_calls_merged_t *m, prom_t *p);

/** Merges the workers' latest snapshots and writes the families (nothing on OOM, logged). */
void node_calls_write(const node_calls_t *c, prom_t *p);

#endif
