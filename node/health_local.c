/*
 * node/health_local.c: grpc.health.v1 at the mesh entry (node/health_local.h).
 *
 * Check: the one request message is decoded when it arrives and answered at the client's
 * half-close: SERVING or NOT_SERVING, or NOT_FOUND (gRPC code 5) for an unknown service, as
 * grpc's own health servers answer. Watch: the current status at once (SERVICE_UNKNOWN for an
 * unknown name), then a message each time a table install or the drain changes it (only on
 * change); the stream stays open until the client leaves, and ends UNAVAILABLE when the worker
 * sends GOAWAY so the drain does not wait for it. Other methods of the service: UNIMPLEMENTED.
 */
#include "node/health_local.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "grpc/health_msg.h"
#include "grpc/health_serve.h"
#include "transport/grpc_status.h"
#include "transport/proxy_local.h"

#define HEALTH_PREFIX "/grpc.health.v1.Health/"

struct node_health {
    mesh_health_entry_t *entry;
    int worker_index;
};

/* One call's state. */
typedef struct hcall {
    int watch;    /* 1: Watch; 0: Check */
    int have_req; /* the request message arrived */
    mesh_health_watch_t sent;
    char service[512];
} hcall_t;

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static mesh_health_status_t status_of(node_health_t *h, mesh_local_call_t *c, const char *svc)
{
    return mesh_health_entry_status(h->entry, mesh_local_call_routes(c),
                                    mesh_local_call_draining(c), svc);
}

/* Sends status as a HealthCheckResponse. */
static void send_status(mesh_local_call_t *c, mesh_health_status_t st)
{
    uint8_t b[8];
    int n = mesh_health_encode_response(st, b, sizeof(b));
    if (n >= 0)
        mesh_local_call_send(c, b, (size_t)n);
}

/* A Watch: the status now, when it changed since the last message. */
static void watch_tell(node_health_t *h, hcall_t *hc, mesh_local_call_t *c)
{
    mesh_health_status_t st = status_of(h, c, hc->service);
    if (mesh_health_watch_update(&hc->sent, st))
        send_status(c, st);
}

static int h_open(void *ctx, mesh_local_call_t *c, const char *path, size_t pl, void **state)
{
    (void)ctx;
    size_t plen = sizeof(HEALTH_PREFIX) - 1;
    const char *m = path + plen;
    size_t ml = pl - plen;
    int watch = ml == 5 && memcmp(m, "Watch", 5) == 0;
    if (!watch && !(ml == 5 && memcmp(m, "Check", 5) == 0)) {
        char msg[200];
        snprintf(msg, sizeof(msg), "meshd: health: unknown method %.*s of %s", (int)ml, m,
                 MESH_HEALTH_SERVICE);
        mesh_local_call_finish(c, MESH_GRPC_UNIMPLEMENTED, msg);
        return 0;
    }
    hcall_t *hc = calloc(1, sizeof(*hc));
    if (!hc)
        return -1;
    hc->watch = watch;
    mesh_health_watch_init(&hc->sent);
    *state = hc;
    return 0;
}

static void h_message(void *ctx, void *state, mesh_local_call_t *c, const uint8_t *msg, size_t len)
{
    node_health_t *h = ctx;
    hcall_t *hc = state;
    if (!hc)
        return;
    if (hc->have_req) {
        mesh_local_call_finish(c, MESH_GRPC_UNIMPLEMENTED,
                               "meshd: health: more than one request message");
        return;
    }
    if (mesh_health_decode_request(msg, len, hc->service, sizeof(hc->service)) != 0) {
        mesh_local_call_finish(c, MESH_GRPC_INVALID_ARGUMENT,
                               "meshd: health: malformed HealthCheckRequest");
        return;
    }
    hc->have_req = 1;
    if (hc->watch)
        watch_tell(h, hc, c);
}

static void h_end(void *ctx, void *state, mesh_local_call_t *c)
{
    node_health_t *h = ctx;
    hcall_t *hc = state;
    if (!hc)
        return;
    if (!hc->have_req) {
        mesh_local_call_finish(c, MESH_GRPC_UNIMPLEMENTED, "meshd: health: no request message");
        return;
    }
    if (hc->watch)
        return; /* a server stream: open until the client leaves */
    mesh_health_status_t st = status_of(h, c, hc->service);
    if (st == MESH_HEALTH_SERVICE_UNKNOWN) {
        char msg[600];
        snprintf(msg, sizeof(msg), "meshd: health: unknown service %s", hc->service);
        mesh_local_call_finish(c, MESH_GRPC_NOT_FOUND, msg);
        return;
    }
    send_status(c, st);
    mesh_local_call_finish(c, MESH_GRPC_OK, NULL);
}

static void h_wake(void *ctx, void *state, mesh_local_call_t *c, mesh_local_wake_t why)
{
    node_health_t *h = ctx;
    hcall_t *hc = state;
    if (!hc || !hc->watch || !hc->have_req)
        return;
    if (why == MESH_LOCAL_WAKE_GOAWAY) {
        mesh_local_call_finish(c, MESH_GRPC_UNAVAILABLE, "meshd: draining");
        return;
    }
    watch_tell(h, hc, c);
}

static void h_close(void *ctx, void *state)
{
    (void)ctx;
    free(state);
}

static void h_routes(void *ctx, const mesh_routes_t *before, const mesh_routes_t *after)
{
    node_health_t *h = ctx;
    if (mesh_health_entry_routes(h->entry, before, after, mono_ms()) != 0)
        mesh_warn("health", "worker %d: out of memory remembering services that left the table",
                  h->worker_index);
}

static const mesh_local_ops_t health_ops = {
    .on_open = h_open,
    .on_message = h_message,
    .on_end = h_end,
    .on_wake = h_wake,
    .on_close = h_close,
    .on_routes = h_routes,
};

node_health_t *node_health_install(mesh_proxy_worker_t *engine, int worker_index)
{
    node_health_t *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->worker_index = worker_index;
    h->entry = mesh_health_entry_new(0);
    static const char *const methods[] = {"Check", "Watch"}; /* for the call metrics */
    mesh_local_service_t s = {
        .path = HEALTH_PREFIX,
        .methods = methods,
        .n_methods = 2,
        .before_filters = 1, /* kubelet and load balancers carry no credentials */
        .max_message = 1024,
        .ops = &health_ops,
        .ctx = h,
    };
    if (!h->entry || mesh_proxy_worker_add_local(engine, &s) != 0) {
        mesh_error("health", "worker %d: cannot serve %s", worker_index, MESH_HEALTH_SERVICE);
        node_health_free(h);
        return NULL;
    }
    return h;
}

void node_health_free(node_health_t *h)
{
    if (!h)
        return;
    mesh_health_entry_free(h->entry);
    free(h);
}
