/*
 * tests/fuzz/transport/fuzz_h2_server.c: libFuzzer harness for the proxy's HTTP/2 server
 * side. Each input is fed, as if read from a client socket, to a client connection of a
 * real proxy worker (no routes, so every well-formed call ends in the mesh's own status);
 * the peer end of a socketpair swallows the output. The worker and its loop live for the
 * whole run; each input gets a fresh connection, closed and reaped before the next.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "transport/proxy.h"
#include "transport/proxy_internal.h"

static uv_loop_t loop;
static mesh_proxy_worker_t *worker;

static void drain_peer(int fd)
{
    char buf[65536];
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!worker) {
        mesh_log_init("fuzz", MESH_LOG_OFF, MESH_LOG_FORMAT_TEXT);
        uv_loop_init(&loop);
        mesh_proxy_config_t cfg = {.listen_host = "127.0.0.1", .listen_port = 0};
        worker = mesh_proxy_worker_new(&loop, &cfg);
        if (!worker)
            abort();
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0)
        return 0;
    mesh_h2_conn_t *c = pxy_ds_conn_adopt(worker, sv[0]);
    if (c) {
        /* Feed in two pieces to cross a read boundary. */
        size_t half = size / 2;
        if (mesh_h2_conn_feed(c, data, half) == 0)
            mesh_h2_conn_feed(c, data + half, size - half);
        for (int i = 0; i < 4; i++) {
            uv_run(&loop, UV_RUN_NOWAIT);
            drain_peer(sv[1]);
        }
        /* c may be gone already (the proxy closed a malformed connection). */
        for (pxy_link_t *l = worker->ds_conns.next; l != &worker->ds_conns; l = l->next)
            mesh_h2_conn_close(&PXY_CONTAINER(l, pxy_ds_conn_t, link)->h2);
        while (uv_run(&loop, UV_RUN_NOWAIT) && worker->n_ds_conns > 0)
            drain_peer(sv[1]);
    } else {
        close(sv[0]);
    }
    close(sv[1]);
    return 0;
}
