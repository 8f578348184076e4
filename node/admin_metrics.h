/*
 * node/admin_metrics.h: GET /metrics on the admin port, in the Prometheus text exposition
 * format 0.0.4 (common/prom.h).
 *
 * The endpoint writes the process families (meshd_build_info, meshd_process_*: CPU seconds,
 * resident memory, open and maximum descriptors, threads, start time; from /proc/self), then
 * runs every collector added with mesh_admin_add_metrics() (node/admin.h), in order. Each
 * collector writes the families of one subsystem from state that subsystem already keeps on
 * the control loop: the node (routing table, worker counters, breakers, etcd's link), the
 * registry view (revision, resyncs, watch restarts), gossip (members by state, probes,
 * suspicions), audit (sent, spooled, dropped), the monitor (checks, evictions). No collector
 * counts anything per request itself: the data plane's figures reach the control loop through
 * the workers' event rings (actors/evring.h) and are summed there.
 *
 * Names begin meshd_, carry their unit (_seconds, _bytes) and counters end _total. The list,
 * with types and labels, is in docs/admin.md.
 */
#ifndef MESH_ADMIN_METRICS_H
#define MESH_ADMIN_METRICS_H

#include "node/admin.h"

/** The Content-Type of the exposition. */
#define MESH_ADMIN_METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"

/** Serves GET /metrics on a (called by mesh_admin_new). 0 or -1. */
int mesh_admin_metrics_init(mesh_admin_t *a);

/** Writes the exposition of a into p: the process families, then every collector. */
void mesh_admin_metrics_write(mesh_admin_t *a, prom_t *p);

#endif
