/*
 * node/reflect_local.h: aggregated gRPC server reflection at the mesh entry, the worker side.
 *
 * A node extension (node/node.h, mesh_node_ext_t) that registers grpc.reflection.v1 and
 * v1alpha as local services (transport/proxy_local.h) on every worker's engine and answers
 * their bidi streams on the worker's thread from the worker's current reflection index
 * (grpc/reflect_server.h), an immutable snapshot the control loop publishes
 * (node/reflect_entry.h). list_services names the worker's routing table; a lookup that misses
 * for a routed service whose descriptors the index lacks is held (requests of a stream are
 * answered in order) until a newer index or table answers it, at most hold_ms, then answered
 * NOT_FOUND saying the descriptors are not fetched yet. Nothing crosses threads per request.
 */
#ifndef MESH_NODE_REFLECT_LOCAL_H
#define MESH_NODE_REFLECT_LOCAL_H

#include <stdint.h>

#include "node/node.h"

/** What every worker's handler reads; must outlive the node. */
typedef struct node_reflect_cfg {
    uint64_t hold_ms; /* longest hold of a request on a miss (--reflection-hold); 0: none */
} node_reflect_cfg_t;

/** The extension's operations (arg: a node_reflect_cfg_t *, NULL: holds of 3 s); payloads are
 * mesh_rsrv_index_t references. */
extern const mesh_node_ext_t node_reflect_ext;

/** mesh_node_ext_publish's ref function for an index. */
void *node_reflect_index_ref(void *ix);

#endif
