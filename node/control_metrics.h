/*
 * node/control_metrics.h: the control actors' parts of GET /metrics (node/admin_metrics.h):
 * the registry view (etcd revision, resyncs, compactions, watch restarts), the audit pipeline
 * (records sent, spooled, dropped) and the monitor (checks, evictions, leadership).
 *
 * Each reads state its actor already keeps: the registry view through the registry actor's
 * observation hook (on_view, called on the control loop after each step of the view), the
 * audit actor through audit_actor_get_stats(), the monitor through the status it serves as
 * /v1/monitor. node/control.c adds them when it builds the actors.
 */
#ifndef MESH_CONTROL_METRICS_H
#define MESH_CONTROL_METRICS_H

#include <stdint.h>

#include "audit/audit_actor.h"
#include "common/prom.h"
#include "monitor/monitor_actor.h"
#include "registry/view.h"

/** What the registry view's hook keeps (control loop). */
typedef struct node_reg_metrics {
    int64_t revision;
    uint64_t resyncs, compacted; /* from the watch machine, kept across actor restarts */
    uint64_t base_resyncs, base_compacted;
    uint64_t watch_starts; /* transitions into watching */
    int watching;
} node_reg_metrics_t;

/** The registry actor's on_view hook (reg_actor_cfg_t.on_view) with ud a node_reg_metrics_t. */
void node_reg_metrics_on_view(void *ud, const reg_view_t *view, int published);

/** A collector (mesh_admin_metrics_fn): the etcd view families; ud a node_reg_metrics_t. */
void node_reg_metrics_write(void *ud, prom_t *p);

/** A collector: the audit families; ud the node_control_t's audit_args_t ** (NULL inside when
 *  audit is off). */
void node_audit_metrics_write(void *ud, prom_t *p);

/** A collector: the monitor families; ud a mon_args_t. */
void node_monitor_metrics_write(void *ud, prom_t *p);

#endif
