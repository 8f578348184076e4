/*
 * node/role_probe.c: `meshd probe`, a gRPC health probe for exec probes (the container image
 * has no grpc_health_probe): one grpc.health.v1 Check against a gRPC server, with a deadline
 * (Kubernetes' `grpc:` probe uses 1 s); exit 0 when it answers SERVING, 1 otherwise (another
 * status, an error status, no connection), 2 on a usage error. Works against any gRPC server:
 * the mesh entry (docs/entry.md), a sidecar's app, meshd's own listener.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "grpc/health_msg.h"
#include "node/cli.h"
#include "transport/grpc_client.h"
#include "transport/grpc_status.h"

typedef struct probe {
    int have;                    /* a response message arrived */
    mesh_health_status_t status; /* its status */
    int done, grpc_status;
    char message[256];
    mesh_grpc_client_t *client;
} probe_t;

static void on_message(void *ud, mesh_grpc_call_t *call, const uint8_t *msg, size_t len)
{
    (void)call;
    probe_t *p = ud;
    if (mesh_health_decode_response(msg, len, &p->status) == 0)
        p->have = 1;
}

static void on_end(void *ud, mesh_grpc_call_t *call, int status, const char *message)
{
    (void)call;
    probe_t *p = ud;
    p->done = 1;
    p->grpc_status = status;
    snprintf(p->message, sizeof(p->message), "%s", message ? message : "");
    mesh_grpc_client_free(p->client); /* the loop ends once its handles closed */
    p->client = NULL;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: meshd probe [--addr HOST:PORT] [--service NAME] [--timeout MS]\n\n"
            "One grpc.health.v1 Check (default: 127.0.0.1:9090, the server as a whole, 1000 ms);\n"
            "exit 0 when the answer is SERVING, 1 otherwise, 2 on a usage error.\n");
    return 2;
}

int mesh_cli_probe(int argc, char **argv)
{
    const char *addr = "127.0.0.1:9090", *service = "";
    long timeout_ms = 1000;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--addr") == 0 && v) {
            addr = v;
            i++;
        } else if (strcmp(a, "--service") == 0 && v) {
            service = v;
            i++;
        } else if (strcmp(a, "--timeout") == 0 && v) {
            char *end;
            timeout_ms = strtol(v, &end, 10);
            if (*end == 's' && end[1] == '\0')
                timeout_ms *= 1000;
            else if (!(*end == '\0' || strcmp(end, "ms") == 0))
                timeout_ms = -1;
            if (timeout_ms <= 0 || timeout_ms > 3600000) {
                fprintf(stderr, "meshd probe: --timeout '%s': expected e.g. 1000, 500ms, 2s\n", v);
                return usage();
            }
            i++;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage();
            return 0;
        } else {
            fprintf(stderr, "meshd probe: unknown argument '%s'\n", a);
            return usage();
        }
    }
    uint8_t req[600];
    int rl = mesh_health_encode_request(service, req, sizeof(req));
    if (rl < 0) {
        fprintf(stderr, "meshd probe: --service: name too long\n");
        return 2;
    }
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0)
        return 1;
    probe_t p = {0};
    mesh_grpc_client_cfg_t cfg = {.addr = addr, .connect_timeout_ms = (uint64_t)timeout_ms};
    p.client = mesh_grpc_client_new(&loop, &cfg);
    if (!p.client) {
        fprintf(stderr, "meshd probe: --addr '%s' is not HOST:PORT\n", addr);
        uv_loop_close(&loop);
        return 2;
    }
    static const mesh_grpc_call_ops_t ops = {on_message, on_end};
    if (!mesh_grpc_unary(p.client, MESH_HEALTH_CHECK_PATH, req, (size_t)rl, (uint64_t)timeout_ms,
                         &ops, &p)) {
        mesh_grpc_client_free(p.client);
        p.client = NULL;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    if (!p.done) {
        fprintf(stderr, "meshd probe: out of memory\n");
        return 1;
    }
    if (p.grpc_status != MESH_GRPC_OK || !p.have) {
        fprintf(stderr, "meshd probe: %s Check(\"%s\"): %s%s%s\n", addr, service,
                mesh_grpc_status_name(p.grpc_status), p.message[0] ? ": " : "", p.message);
        return 1;
    }
    printf("%s\n", mesh_health_status_name(p.status));
    return p.status == MESH_HEALTH_SERVING ? 0 : 1;
}
