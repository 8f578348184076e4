/*
 * node/health_local.h: grpc.health.v1 Check and Watch answered by the mesh entry itself (proxy
 * and gateway roles): the handler of the proxy engine's local-services hook
 * (transport/proxy_local.h) over the sans-I/O rules of grpc/health_serve.h. Registered before
 * the policy chain (probes carry no credentials). docs/entry.md.
 */
#ifndef MESH_NODE_HEALTH_LOCAL_H
#define MESH_NODE_HEALTH_LOCAL_H

#include "transport/proxy.h"

typedef struct node_health node_health_t;

/** Serves grpc.health.v1.Health on engine (a worker's; its loop thread). NULL when out of
 *  memory or the engine's local table is full (logged). Free after the engine is freed (its
 *  connections may close a loop turn later: a call's on_close frees only the call's state,
 *  never touches this). */
node_health_t *node_health_install(mesh_proxy_worker_t *engine, int worker_index);

void node_health_free(node_health_t *h);

#endif
