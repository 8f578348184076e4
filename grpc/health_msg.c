/*
 * grpc/health_msg.c: grpc.health.v1 messages, both ways (the sidecar asks, the mesh entry
 * answers), with the protobuf-c code generated from health.proto.
 *
 * Decoding goes through a bump allocator over a stack buffer: a HealthCheckResponse unpacks
 * into well under a kilobyte, and anything larger is refused rather than allocated.
 */
#include "grpc/health_msg.h"

#include <string.h>

#include "grpc/health/v1/health.pb-c.h"

typedef struct {
    uint8_t *base;
    size_t used, cap;
} arena_t;

static void *arena_alloc(void *ud, size_t size)
{
    arena_t *a = ud;
    size_t off = (a->used + 15) & ~(size_t)15;
    if (off > a->cap || size > a->cap - off)
        return NULL;
    a->used = off + size;
    return a->base + off;
}

static void arena_free(void *ud, void *ptr)
{
    (void)ud;
    (void)ptr;
}

int mesh_health_encode_request(const char *service, uint8_t *buf, size_t cap)
{
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    req.service = (char *)(service ? service : "");
    size_t n = grpc__health__v1__health_check_request__get_packed_size(&req);
    if (n > cap)
        return -1;
    return (int)grpc__health__v1__health_check_request__pack(&req, buf);
}

int mesh_health_decode_response(const uint8_t *data, size_t len, mesh_health_status_t *status)
{
    _Alignas(16) uint8_t mem[1024];
    arena_t a = {.base = mem, .used = 0, .cap = sizeof(mem)};
    ProtobufCAllocator alloc = {.alloc = arena_alloc, .free = arena_free, .allocator_data = &a};
    Grpc__Health__V1__HealthCheckResponse *r =
        grpc__health__v1__health_check_response__unpack(&alloc, len, data);
    if (!r)
        return -1;
    *status = (mesh_health_status_t)r->status;
    return 0;
}

int mesh_health_decode_request(const uint8_t *data, size_t len, char *service, size_t cap)
{
    _Alignas(16) uint8_t mem[1024];
    arena_t a = {.base = mem, .used = 0, .cap = sizeof(mem)};
    ProtobufCAllocator alloc = {.alloc = arena_alloc, .free = arena_free, .allocator_data = &a};
    if (len > 512 || cap == 0) /* a service name is far shorter: refused, never allocated */
        return -1;
    Grpc__Health__V1__HealthCheckRequest *r =
        grpc__health__v1__health_check_request__unpack(&alloc, len, data);
    if (!r)
        return -1;
    const char *name = r->service ? r->service : "";
    size_t n = strlen(name);
    if (n >= cap)
        return -1;
    memcpy(service, name, n + 1);
    return 0;
}

int mesh_health_encode_response(mesh_health_status_t status, uint8_t *buf, size_t cap)
{
    Grpc__Health__V1__HealthCheckResponse r = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    r.status = (Grpc__Health__V1__HealthCheckResponse__ServingStatus)status;
    size_t n = grpc__health__v1__health_check_response__get_packed_size(&r);
    if (n > cap)
        return -1;
    return (int)grpc__health__v1__health_check_response__pack(&r, buf);
}

const char *mesh_health_status_name(mesh_health_status_t status)
{
    switch (status) {
    case MESH_HEALTH_UNKNOWN:
        return "UNKNOWN";
    case MESH_HEALTH_SERVING:
        return "SERVING";
    case MESH_HEALTH_NOT_SERVING:
        return "NOT_SERVING";
    case MESH_HEALTH_SERVICE_UNKNOWN:
        return "SERVICE_UNKNOWN";
    }
    return "UNRECOGNIZED";
}
