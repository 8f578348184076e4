/*
 * node/outlier_metrics.h: the outlier-ejection families of GET /metrics, read from the board
 * the node's workers share (transport/outlier_board.h): ejections, returns and held-back
 * ejections as counters, and which upstream instances are ejected now.
 */
#ifndef MESH_NODE_OUTLIER_METRICS_H
#define MESH_NODE_OUTLIER_METRICS_H

#include "common/prom.h"
#include "transport/outlier_board.h"

/** Writes the families (nothing when b is NULL: a node without a data plane). */
void node_outlier_metrics_write(mesh_outlier_board_t *b, prom_t *p);

#endif
