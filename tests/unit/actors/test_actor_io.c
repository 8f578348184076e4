/*
 * tests/unit/actors/test_actor_io.c: the I/O seam on both backends.
 *
 * Real executor: an actor on a worker loop sends a datagram between two loopback sockets,
 * then runs a TCP ping/pong through listen/connect/read/write. Simulator: a stream between two
 * simulated hosts carries data in order and, with MESH_SIMNET_CUT_RESET, is reset by a partition
 * (the silent default is tested in test_simnet_faults.c).
 */
#include <string.h>

#include "actors/exec.h"
#include "actors/io.h"
#include "actors/sim.h"
#include "actors/simnet.h"
#include "tests/check.h"

/* ---------------------------------------------------------------------------------------- */
/* Real executor                                                                            */

typedef struct {
    mesh_io_t *io;
    mesh_udp_t *ua, *ub;
    mesh_listener_t *lis;
    mesh_stream_t *cli, *srv;
    int got_dgram, got_ping, got_pong;
    int loop_ok;
} io_state_t;

static io_state_t g_io;
static mesh_exec_t *g_exec;

static void cli_read(mesh_stream_t *s, const void *d, ssize_t n, void *arg)
{
    if (n == 4 && memcmp(d, "pong", 4) == 0) {
        g_io.got_pong = 1;
        mesh_exec_shutdown(g_exec);
    }
}

static void srv_read(mesh_stream_t *s, const void *d, ssize_t n, void *arg)
{
    if (n == 4 && memcmp(d, "ping", 4) == 0) {
        g_io.got_ping = 1;
        CHECK_EQ(mesh_write(g_io.io, s, "pong", 4), 0);
    }
}

static void on_accept(mesh_listener_t *l, mesh_stream_t *s, void *arg)
{
    g_io.srv = s;
    CHECK_EQ(mesh_read_start(g_io.io, s, srv_read, NULL), 0);
}

static void on_connected(mesh_stream_t *s, int status, void *arg)
{
    CHECK_EQ(status, 0);
    CHECK_EQ(mesh_read_start(g_io.io, s, cli_read, NULL), 0);
    CHECK_EQ(mesh_write(g_io.io, s, "ping", 4), 0);
}

static void on_dgram(mesh_udp_t *u, const mesh_addr_t *from, const void *d, size_t n, void *arg)
{
    if (n != 5 || memcmp(d, "hello", 5) != 0 || g_io.got_dgram)
        return;
    g_io.got_dgram = 1;
    g_io.loop_ok = mesh_exec_current_loop() == 1;
    mesh_addr_t any, la;
    CHECK_EQ(mesh_addr_parse("127.0.0.1:0", &any), 0);
    CHECK_EQ(mesh_listen(g_io.io, &any, on_accept, NULL, &g_io.lis), 0);
    CHECK_EQ(mesh_listener_addr(g_io.io, g_io.lis, &la), 0);
    CHECK_EQ(mesh_connect(g_io.io, &la, on_connected, NULL, &g_io.cli), 0);
}

static int io_start(mesh_actor_t *self, void *arg)
{
    mesh_addr_t any, bb;
    g_io.io = mesh_io(self);
    CHECK(mesh_io_now(g_io.io) > 0);
    CHECK_EQ(mesh_addr_parse("127.0.0.1:0", &any), 0);
    CHECK_EQ(mesh_udp_bind(g_io.io, &any, on_dgram, NULL, &g_io.ua), 0);
    CHECK_EQ(mesh_udp_bind(g_io.io, &any, on_dgram, NULL, &g_io.ub), 0);
    CHECK_EQ(mesh_udp_local_addr(g_io.io, g_io.ub, &bb), 0);
    char text[64];
    CHECK_EQ(mesh_addr_str(&bb, text, sizeof(text)), 0);
    CHECK(strncmp(text, "127.0.0.1:", 10) == 0);
    return mesh_udp_send(g_io.io, g_io.ua, &bb, "hello", 5);
}

static int io_msg(mesh_actor_t *self, mesh_msg_t *m)
{
    return 0;
}

static void io_stop(mesh_actor_t *self, int reason)
{
    mesh_udp_close(g_io.io, g_io.ua);
    mesh_udp_close(g_io.io, g_io.ub);
    if (g_io.lis)
        mesh_listener_close(g_io.io, g_io.lis);
    if (g_io.cli)
        mesh_stream_close(g_io.io, g_io.cli);
    if (g_io.srv)
        mesh_stream_close(g_io.io, g_io.srv);
}

static const mesh_actor_ops_t io_ops = {
    .name = "io", .on_start = io_start, .on_message = io_msg, .on_stop = io_stop};

static void drop_holder(mesh_exec_t *e, void *arg)
{
    (void)e;
    (void)arg;
}

static void test_real(void)
{
    mesh_exec_opts_t o = {.workers = 1, .no_signals = 1};
    g_exec = mesh_exec_new(&o);
    CHECK(g_exec);
    CHECK(mesh_exec_uv_loop(g_exec, 1) != NULL);
    CHECK(mesh_exec_uv_loop(g_exec, 2) == NULL);
    CHECK_EQ(mesh_exec_on_shutdown(g_exec, drop_holder, NULL), 0);
    mesh_spawn_opts_t so = {.loop = MESH_ON_LOOP(1)};
    CHECK_EQ(mesh_exec_spawn(g_exec, &io_ops, NULL, &so, NULL), 0);
    CHECK_EQ(mesh_exec_run(g_exec), 0);
    CHECK(g_io.got_dgram);
    CHECK(g_io.loop_ok);
    CHECK(g_io.got_ping);
    CHECK(g_io.got_pong);
    mesh_exec_free(g_exec);
}

/* ---------------------------------------------------------------------------------------- */
/* Simulated streams                                                                        */

typedef struct {
    mesh_io_t *a, *b;
    mesh_stream_t *cli, *srv;
    char got[64];
    size_t ngot;
    int connected, resets_cli, resets_srv, refused;
} sim_streams_t;

static sim_streams_t g_ss;

static void ss_srv_read(mesh_stream_t *s, const void *d, ssize_t n, void *arg)
{
    if (n < 0) {
        g_ss.resets_srv++;
        return;
    }
    memcpy(g_ss.got + g_ss.ngot, d, (size_t)n);
    g_ss.ngot += (size_t)n;
}

static void ss_cli_read(mesh_stream_t *s, const void *d, ssize_t n, void *arg)
{
    if (n < 0)
        g_ss.resets_cli++;
}

static void ss_accept(mesh_listener_t *l, mesh_stream_t *s, void *arg)
{
    g_ss.srv = s;
    mesh_read_start(g_ss.b, s, ss_srv_read, NULL);
}

static void ss_connected(mesh_stream_t *s, int status, void *arg)
{
    if (status < 0) {
        g_ss.refused++;
        return;
    }
    g_ss.connected = 1;
    mesh_read_start(g_ss.a, s, ss_cli_read, NULL);
    for (int i = 0; i < 10; i++) {
        char c = (char)('0' + i);
        CHECK_EQ(mesh_write(g_ss.a, s, &c, 1), 0);
    }
}

static void test_sim_streams(void)
{
    mesh_exec_t *sim = mesh_sim_new(9);
    mesh_simnet_t *net = mesh_sim_net(sim);
    mesh_simnet_opts_t o = {
        .latency_min_ns = 1000000, .latency_jitter_ns = 5000000, .cut = MESH_SIMNET_CUT_RESET};
    mesh_simnet_configure(net, &o);
    g_ss.a = mesh_simnet_host(net, "10.0.0.1");
    g_ss.b = mesh_simnet_host(net, "10.0.0.2");
    mesh_addr_t srv, cli;
    CHECK_EQ(mesh_addr_parse("10.0.0.2:2379", &srv), 0);
    CHECK_EQ(mesh_addr_parse("10.0.0.1:1", &cli), 0);
    mesh_listener_t *l;
    CHECK_EQ(mesh_listen(g_ss.b, &srv, ss_accept, NULL, &l), 0);
    CHECK_EQ(mesh_connect(g_ss.a, &srv, ss_connected, NULL, &g_ss.cli), 0);
    mesh_sim_run_until(sim, mesh_sim_now(sim) + 100000000ull);
    CHECK(g_ss.connected);
    CHECK_EQ(g_ss.ngot, 10);
    CHECK(memcmp(g_ss.got, "0123456789", 10) == 0); /* in order despite jitter */
    /* In reset mode a partition resets the connection on the next transfer. */
    mesh_simnet_block(net, &srv, &cli, 1);
    CHECK_EQ(mesh_write(g_ss.a, g_ss.cli, "x", 1), 0);
    mesh_sim_run_until(sim, mesh_sim_now(sim) + 100000000ull);
    CHECK_EQ(g_ss.resets_cli, 1);
    CHECK_EQ(g_ss.resets_srv, 1);
    /* And refuses new connections. */
    mesh_stream_t *c2;
    CHECK_EQ(mesh_connect(g_ss.a, &srv, ss_connected, NULL, &c2), 0);
    mesh_sim_run_until(sim, mesh_sim_now(sim) + 100000000ull);
    CHECK_EQ(g_ss.refused, 1);
    mesh_exec_free(sim);
}

int main(void)
{
    test_real();
    test_sim_streams();
    printf("ok\n");
    return 0;
}
