/*
 * tests/fuzz/grpc/fuzz_health_local.c: libFuzzer over the mesh entry's health service as a
 * client drives it: the input is the request body (gRPC-framed bytes, untrusted) of a Check or
 * a Watch (first byte) sent in pieces (second byte: the piece size) through a proxy worker's
 * local-services hook (transport/proxy_local.h) into node/health_local.c. Every call must end
 * with a status or stay a Watch; nothing may crash, leak or be read out of bounds.
 */
#include <stdint.h>
#include <string.h>
#include <uv.h>

#include "common/log.h"
#include "node/health_local.h"
#include "registry/route_table.h"
#include "transport/proxy.h"
#include "transport/proxy_call.h"

static uv_loop_t loop;
static mesh_proxy_worker_t *w;
static node_health_t *health;
static int ended;

static void on_head(void *ud, mesh_proxy_call_t *c, int end_stream)
{
    (void)ud, (void)c, (void)end_stream;
}

static void on_data(void *ud, mesh_proxy_call_t *c)
{
    (void)ud;
    const uint8_t *d;
    size_t n;
    while ((n = mesh_proxy_call_resp_peek(c, &d)) > 0)
        mesh_proxy_call_resp_consume(c, n);
}

static void on_end(void *ud, mesh_proxy_call_t *c, int status, const char *msg, size_t ml)
{
    (void)ud, (void)c, (void)status, (void)msg, (void)ml;
    ended = 1;
}

static const mesh_proxy_downstream_t ops = {on_head, on_data, on_end, NULL, NULL};

static void setup(void)
{
    mesh_log_init("fuzz", MESH_LOG_ERROR, MESH_LOG_FORMAT_TEXT);
    uv_loop_init(&loop);
    mesh_proxy_config_t cfg = {.listen_host = "127.0.0.1", .no_listener = 1};
    w = mesh_proxy_worker_new(&loop, &cfg);
    health = node_health_install(w, 0);
    mesh_route_builder_t *b = mesh_route_builder_new();
    mesh_route_builder_add(b, "a.A", "127.0.0.1:1", NULL, 0, MESH_ROUTE_STATIC, "", "", 1);
    mesh_proxy_worker_set_routes(w, mesh_route_builder_finish(b));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!w)
        setup();
    if (size < 2)
        return 0;
    const char *path = data[0] & 1 ? "/grpc.health.v1.Health/Watch"
                                   : (data[0] & 2 ? "/grpc.health.v1.Health/Other"
                                                  : "/grpc.health.v1.Health/Check");
    size_t piece = data[1] ? data[1] : size;
    data += 2;
    size -= 2;
    mesh_proxy_call_req_t r = {.path = path, .path_len = strlen(path)};
    mesh_proxy_call_t *c = NULL;
    ended = 0;
    if (mesh_proxy_call_start(w, &r, &ops, NULL, &c) != 0)
        return 0;
    for (size_t off = 0; off < size && !ended; off += piece) {
        size_t n = size - off < piece ? size - off : piece;
        if (mesh_proxy_call_send(c, data + off, n, off + n == size) < 0)
            break;
    }
    if (size == 0)
        mesh_proxy_call_send(c, NULL, 0, 1);
    for (int i = 0; i < 4 && !ended; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    if (!ended)
        mesh_proxy_call_cancel(c); /* a Watch, or a request still open */
    for (int i = 0; i < 2; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    return 0;
}
