/*
 * grpc/health_msg.h: the grpc.health.v1 messages: the sidecar sends requests and reads
 * responses; the mesh entry (node/health_local.c) reads requests and sends responses.
 *
 * The transport carries these bytes inside gRPC frames on the paths below. Encoding writes
 * into the caller's buffer and decoding uses a small stack arena: neither touches the heap.
 */
#ifndef MESH_HEALTH_MSG_H
#define MESH_HEALTH_MSG_H

#include <stddef.h>
#include <stdint.h>

/** The unary health check method. */
#define MESH_HEALTH_CHECK_PATH "/grpc.health.v1.Health/Check"
/** The server-streaming health watch method. */
#define MESH_HEALTH_WATCH_PATH "/grpc.health.v1.Health/Watch"
/** The health service's name (left out of the registered services). */
#define MESH_HEALTH_SERVICE "grpc.health.v1.Health"

/** HealthCheckResponse.ServingStatus. */
typedef enum {
    MESH_HEALTH_UNKNOWN = 0,
    MESH_HEALTH_SERVING = 1,
    MESH_HEALTH_NOT_SERVING = 2,
    MESH_HEALTH_SERVICE_UNKNOWN = 3,
} mesh_health_status_t;

/** Encodes HealthCheckRequest{service} ("" or NULL: the whole server) into buf. Returns the
 * length (0 is valid: the empty message), or -1 if it does not fit in cap. */
int mesh_health_encode_request(const char *service, uint8_t *buf, size_t cap);

/** Decodes a HealthCheckResponse into *status (an unknown enum value is kept as is). Returns
 * 0, or -1 when the bytes are not a HealthCheckResponse. */
int mesh_health_decode_response(const uint8_t *data, size_t len, mesh_health_status_t *status);

/** Decodes a HealthCheckRequest's service name into service (cap bytes, NUL-terminated; ""
 * for the whole server). Returns 0, or -1 when the bytes are not a HealthCheckRequest or the
 * name does not fit (names longer than 511 bytes are refused). */
int mesh_health_decode_request(const uint8_t *data, size_t len, char *service, size_t cap);

/** Encodes HealthCheckResponse{status} into buf. Returns the length, or -1 if it does not
 * fit in cap (2 bytes are enough). */
int mesh_health_encode_response(mesh_health_status_t status, uint8_t *buf, size_t cap);

/** The name of a status as in health.proto ("SERVING"). */
const char *mesh_health_status_name(mesh_health_status_t status);

#endif
