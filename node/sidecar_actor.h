/*
 * node/sidecar_actor.h: the sidecar's control actor, on the node's control loop.
 *
 * It keeps a gRPC connection to the local app (transport/grpc_client.h), learns the app's
 * services and methods through server reflection (grpc/reflection.h; again after every
 * reconnect) or a --descriptor-set file, health-checks the app every interval
 * (grpc.health.v1 Watch where the app supports it, else Check) into the readiness counter
 * (node/readiness.h), keeps the app's services registered in etcd while it is ready
 * (registry/registration.h: one key per service under one lease, methods in the metadata),
 * answers /livez and /readyz (transport/http1_server.h), and on SIGTERM deregisters first.
 */
#ifndef MESH_SIDECAR_ACTOR_H
#define MESH_SIDECAR_ACTOR_H

#include "node/node.h"
#include "common/config.h"

/**
 * Spawns the sidecar actor on node's control loop. advertise is the "host:port" registered
 * in etcd (copied). Registers the node's signal hook (deregister, then serve for the drain
 * period). Returns 0 or -1 (logged).
 */
int mesh_sidecar_actor_start(mesh_node_t *node, const mesh_config_t *cfg, const char *advertise);

#endif
