/*
 * tests/unit/actors/test_simnet_faults.c: the simulated network's fault model (simnet.h).
 *
 * One-way blocks, per-direction loss, group partitions at 1000 hosts (with the lookup cost
 * per packet checked structurally, by hash probes, not by time), silent cuts against hosts
 * that are down, loop stalls (late timers first, then queued datagrams, then mailboxes; a full
 * socket queue drops), duplication, reordering (datagrams only: streams keep their order),
 * per-direction latency distributions (uniform, Pareto and lognormal tails under their cap),
 * clogs (held, then delivered at the clog's end, while the clogged host's loop runs), and the
 * reproducibility of all of it under a seed, with the traces of runs that do not use the new
 * faults unchanged.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/exec.h"
#include "actors/io.h"
#include "actors/sim.h"
#include "actors/simnet.h"
#include "tests/check.h"

#define MS  1000000ull
#define SEC 1000000000ull

static mesh_addr_t addr(const char *text)
{
    mesh_addr_t a;
    CHECK_EQ(mesh_addr_parse(text, &a), 0);
    return a;
}

static void count_dgram(mesh_udp_t *s, const mesh_addr_t *from, const void *d, size_t n, void *arg)
{
    (*(uint64_t *)arg)++;
}

static mesh_simnet_stats_t stats(mesh_simnet_t *net)
{
    mesh_simnet_stats_t st;
    mesh_simnet_stats(net, &st);
    return st;
}

static void send_n(mesh_io_t *io, mesh_udp_t *u, const mesh_addr_t *to, int n)
{
    for (int i = 0; i < n; i++)
        CHECK_EQ(mesh_udp_send(io, u, to, "x", 1), 0);
}

/* ---------------------------------------------------------------------------------------- */

static void test_one_way_block(void)
{
    mesh_exec_t *sim = mesh_sim_new(1);
    mesh_simnet_t *net = mesh_sim_net(sim);
    mesh_io_t *ha = mesh_simnet_host(net, "10.0.0.1"), *hb = mesh_simnet_host(net, "10.0.0.2");
    mesh_addr_t a = addr("10.0.0.1:7000"), b = addr("10.0.0.2:7000");
    uint64_t rx_a = 0, rx_b = 0;
    mesh_udp_t *ua, *ub;
    CHECK_EQ(mesh_udp_bind(ha, &a, count_dgram, &rx_a, &ua), 0);
    CHECK_EQ(mesh_udp_bind(hb, &b, count_dgram, &rx_b, &ub), 0);

    CHECK_EQ(mesh_simnet_block_oneway(net, &a, &b, 1), 0);
    send_n(ha, ua, &b, 10);
    send_n(hb, ub, &a, 10);
    mesh_sim_run_until(sim, mesh_sim_now(sim) + SEC);
    CHECK_EQ(rx_b, 0);  /* A -> B is cut */
    CHECK_EQ(rx_a, 10); /* B -> A still flows */
    CHECK_EQ(stats(net).blocked, 10);

    CHECK_EQ(mesh_simnet_block_oneway(net, &a, &b, 0), 0); /* restore */
    send_n(ha, ua, &b, 10);
    mesh_sim_run_until(sim, mesh_sim_now(sim) + SEC);
    CHECK_EQ(rx_b, 10);

    /* The symmetric block is both directions; heal lifts it. */
    CHECK_EQ(mesh_simnet_block(net, &b, &a, 1), 0);
    send_n(ha, ua, &b, 5);
    send_n(hb, ub, &a, 5);
    mesh_sim_run_until(sim, mesh_sim_now(sim) + SEC);
    CHECK_EQ(rx_a, 10);
    CHECK_EQ(rx_b, 10);
    CHECK_EQ(stats(net).blocked, 20);
    mesh_simnet_heal(net);
    send_n(ha, ua, &b, 5);
    send_n(hb, ub, &a, 5);
    mesh_sim_run_until(sim, mesh_sim_now(sim) + SEC);
    CHECK_EQ(rx_a, 15);
    CHECK_EQ(rx_b, 15);
    CHECK_EQ(stats(net).lost, 0);
    mesh_exec_free(sim);
}

/* ---------------------------------------------------------------------------------------- */

static void test_link_loss(void)
{
    mesh_exec_t *sim = mesh_sim_new(7);
    mesh_simnet_t *net = mesh_sim_net(sim);
    mesh_io_t *ha = mesh_simnet_host(net, "10.0.0.1"), *hb = mesh_simnet_host(net, "10.0.0.2");
    mesh_addr_t a = addr("10.0.0.1:7000"), b = addr("10.0.0.2:7000");
    uint64_t rx_a = 0, rx_b = 0;
    mesh_udp_t *ua, *ub;
    CHECK_EQ(mesh_udp_bind(ha, &a, count_dgram, &rx_a, &ua), 0);
    CHECK_EQ(mesh_udp_bind(hb, &b, count_dgram, &rx_b, &ub), 0);

    /* 30 % from A to B only: 10000 packets, binomial sd ~46; allow 5 sd. */
    CHECK_EQ(mesh_simnet_link_loss(net, &a, &b, 0.3), 0);
    CHECK_EQ(mesh_simnet_link_loss(net, &a, &b, 1.5), -EINVAL);
    send_n(ha, ua, &b, 10000);
    send_n(hb, ub, &a, 1000);
    mesh_sim_run_until(sim, mesh_sim_now(sim) + SEC);
    printf("link loss 0.3: %llu of 10000 delivered\n", (unsigned long long)rx_b);
    CHECK(rx_b > 7000 - 230 && rx_b < 7000 + 230);
    CHECK_EQ(rx_a, 1000); /* the other direction keeps the global loss (0) */
    CHECK_EQ(stats(net).lost, 10000 - rx_b);

    /* An override of 0 beats a global loss; a negative loss restores the global one. */
    mesh_simnet_opts_t o;
    mesh_simnet_options(net, &o);
    CHECK_EQ(o.udp_queue, 256);
    o.loss = 0.5;
    mesh_simnet_configure(net, &o);
    CHECK_EQ(mesh_simnet_link_loss(net, &a, &b, 0), 0);
    rx_b = 0;
    send_n(ha, ua, &b, 1000);
    mesh_sim_run_until(sim, mesh_sim_now(sim) + SEC);
    CHECK_EQ(rx_b, 1000);
    CHECK_EQ(mesh_simnet_link_loss(net, &a, &b, -1), 0);
    rx_b = 0;
    send_n(ha, ua, &b, 1000);
    mesh_sim_run_until(sim, mesh_sim_now(sim) + SEC);
    CHECK(rx_b > 500 - 80 && rx_b < 500 + 80);
    mesh_exec_free(sim);
}

/* ---------------------------------------------------------------------------------------- */

#define NBIG 1000

static char g_ips[NBIG][16];
static mesh_addr_t g_addrs[NBIG];
static uint64_t g_rx[NBIG];
static mesh_udp_t *g_socks[NBIG];
static mesh_io_t *g_ios[NBIG];

/* Sends from every host to its next one and to the one NBIG/2 away; returns hash probes per
 * packet (sends and arrivals). */
static double big_round(mesh_exec_t *sim, mesh_simnet_t *net)
{
    uint64_t p0 = stats(net).probes;
    for (int i = 0; i < NBIG; i++) {
        send_n(g_ios[i], g_socks[i], &g_addrs[(i + 1) % NBIG], 1);
        send_n(g_ios[i], g_socks[i], &g_addrs[(i + NBIG / 2) % NBIG], 1);
    }
    mesh_sim_run_until(sim, mesh_sim_now(sim) + SEC);
    return (double)(stats(net).probes - p0) / (2.0 * NBIG);
}

static uint64_t rx_total(void)
{
    uint64_t t = 0;
    for (int i = 0; i < NBIG; i++)
        t += g_rx[i];
    return t;
}

static void test_partition_1000(void)
{
    mesh_exec_t *sim = mesh_sim_new(3);
    mesh_simnet_t *net = mesh_sim_net(sim);
    const char *names[NBIG];
    memset(g_rx, 0, sizeof(g_rx));
    for (int i = 0; i < NBIG; i++) {
        snprintf(g_ips[i], sizeof(g_ips[i]), "10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
        char hp[32];
        snprintf(hp, sizeof(hp), "%s:7946", g_ips[i]);
        g_addrs[i] = addr(hp);
        names[i] = g_ips[i];
        g_ios[i] = mesh_simnet_host(net, g_ips[i]);
        CHECK(g_ios[i]);
        CHECK_EQ(mesh_udp_bind(g_ios[i], &g_addrs[i], count_dgram, &g_rx[i], &g_socks[i]), 0);
    }
    double base = big_round(sim, net);
    CHECK_EQ(rx_total(), 2 * NBIG);

    /* Two halves: every "next" packet stays inside a half except 499->500 and 999->0; every
     * packet to the host NBIG/2 away crosses. */
    CHECK_EQ(mesh_simnet_partition(net, names, NBIG / 2, 1), 0);
    CHECK_EQ(mesh_simnet_partition(net, names + NBIG / 2, NBIG / 2, 2), 0);
    const char *bad = "not-an-ip";
    CHECK_EQ(mesh_simnet_partition(net, &bad, 1, 1), -EINVAL);
    memset(g_rx, 0, sizeof(g_rx));
    double cut = big_round(sim, net);
    CHECK_EQ(rx_total(), NBIG - 2);
    CHECK_EQ(stats(net).partitioned, NBIG + 2);
    CHECK_EQ(g_rx[500], 0); /* 499 is across the cut */
    CHECK_EQ(g_rx[501], 1);

    /* Many one-way blocks on top: the per-packet cost stays a few hash probes. */
    for (int i = 0; i < NBIG; i++)
        CHECK_EQ(mesh_simnet_block_oneway(net, &g_addrs[i], &g_addrs[(i + 3) % NBIG], 1), 0);
    double blocks = big_round(sim, net);
    printf("hash probes per packet: %.2f open, %.2f partitioned, %.2f with %d blocks\n", base, cut,
           blocks, NBIG);
    CHECK(base < 4.0);
    CHECK(cut < 6.0);
    CHECK(blocks < 8.0);

    /* Per-direction latencies and duplication on 2000 more links, and a clog of one host: a
     * packet still costs a few probes (one lookup of its direction, two hosts while a clog
     * lasts). */
    mesh_simnet_latency_t lat = {.min_ns = MS, .spread_ns = MS, .dist = MESH_SIMNET_PARETO};
    for (int i = 0; i < NBIG; i++) {
        CHECK_EQ(mesh_simnet_link_latency(net, &g_addrs[i], &g_addrs[(i + 7) % NBIG], &lat), 0);
        CHECK_EQ(mesh_simnet_link_duplicate(net, &g_addrs[i], &g_addrs[(i + 9) % NBIG], 0.5), 0);
    }
    CHECK_EQ(mesh_simnet_clog(net, g_ips[3], 10 * SEC, MESH_SIMNET_CLOG_BOTH), 0);
    double more = big_round(sim, net);
    printf("hash probes per packet: %.2f with %d latency and %d duplication overrides and a clog\n",
           more, NBIG, NBIG);
    CHECK(more < 12.0);

    mesh_simnet_heal(net);
    mesh_sim_run_until(sim, mesh_sim_now(sim) + 10 * SEC); /* the clog ends */
    memset(g_rx, 0, sizeof(g_rx));
    big_round(sim, net);
    CHECK_EQ(rx_total(), 2 * NBIG);
    mesh_exec_free(sim);
}

/* ---------------------------------------------------------------------------------------- */

typedef struct {
    mesh_io_t *io;
    int connects, status;
    uint64_t at;
    mesh_stream_t *accepted;
    char got[64];
    size_t ngot;
    int errors, last_error;
} conn_t;

static void conn_read(mesh_stream_t *s, const void *d, ssize_t n, void *arg)
{
    conn_t *c = arg;
    if (n < 0) {
        c->errors++;
        c->last_error = (int)n;
        return;
    }
    memcpy(c->got + c->ngot, d, (size_t)n);
    c->ngot += (size_t)n;
}

static void conn_done(mesh_stream_t *s, int status, void *arg)
{
    conn_t *c = arg;
    c->connects++;
    c->status = status;
    c->at = mesh_io_now(c->io);
    if (status == 0)
        mesh_read_start(c->io, s, conn_read, c);
}

static void conn_accept(mesh_listener_t *l, mesh_stream_t *s, void *arg)
{
    conn_t *c = arg;
    c->accepted = s;
    mesh_read_start(c->io, s, conn_read, c);
}

static void test_silent_cut_vs_host_down(void)
{
    mesh_exec_t *sim = mesh_sim_new(5);
    mesh_simnet_t *net = mesh_sim_net(sim);
    mesh_io_t *ha = mesh_simnet_host(net, "10.0.0.1"), *hb = mesh_simnet_host(net, "10.0.0.2"),
              *hc = mesh_simnet_host(net, "10.0.0.3");
    const char *a_ip = "10.0.0.1";
    mesh_addr_t b = addr("10.0.0.2:80"), c = addr("10.0.0.3:80");
    conn_t srv_b = {.io = hb}, srv_c = {.io = hc}, cli = {.io = ha}, cli2 = {.io = ha},
           cli3 = {.io = ha};
    mesh_listener_t *lb, *lc;
    CHECK_EQ(mesh_listen(hb, &b, conn_accept, &srv_b, &lb), 0);
    CHECK_EQ(mesh_listen(hc, &c, conn_accept, &srv_c, &lc), 0);

    /* Silent (the default): a connect across a partition says nothing, for as long as the
     * caller's own timeout would take, and completes after the heal (a SYN retry). */
    CHECK_EQ(mesh_simnet_partition(net, &a_ip, 1, 1), 0);
    mesh_stream_t *s;
    uint64_t t0 = mesh_sim_now(sim);
    CHECK_EQ(mesh_connect(ha, &b, conn_done, &cli, &s), 0);
    mesh_sim_run_until(sim, t0 + 60 * SEC);
    CHECK_EQ(cli.connects, 0);
    CHECK(srv_b.accepted == NULL);
    CHECK(stats(net).partitioned >= 6); /* the SYN and its retries */
    mesh_simnet_heal(net);
    mesh_sim_run_until(sim, t0 + 70 * SEC);
    CHECK_EQ(cli.connects, 1);
    CHECK_EQ(cli.status, 0);
    CHECK(cli.at >= t0 + 63 * SEC); /* the 6th retry, as Linux */
    CHECK(srv_b.accepted != NULL);

    /* Data across a silent cut waits, in order, and arrives after the heal; nobody is reset. */
    CHECK_EQ(mesh_simnet_partition(net, &a_ip, 1, 1), 0);
    CHECK_EQ(mesh_write(ha, s, "ab", 2), 0);
    CHECK_EQ(mesh_write(ha, s, "c", 1), 0);
    mesh_sim_run_until(sim, mesh_sim_now(sim) + 10 * SEC);
    CHECK_EQ(srv_b.ngot, 0);
    CHECK_EQ(srv_b.errors + cli.errors, 0);
    CHECK(stats(net).held >= 2);
    mesh_simnet_heal(net);
    mesh_sim_run_until(sim, mesh_sim_now(sim) + 30 * SEC);
    CHECK_EQ(srv_b.ngot, 3);
    CHECK(memcmp(srv_b.got, "abc", 3) == 0);
    CHECK_EQ(srv_b.errors + cli.errors, 0);

    /* Never healed: Linux gives up after 127 s with ETIMEDOUT. */
    CHECK_EQ(mesh_simnet_partition(net, &a_ip, 1, 1), 0);
    mesh_stream_t *s2;
    t0 = mesh_sim_now(sim);
    CHECK_EQ(mesh_connect(ha, &b, conn_done, &cli2, &s2), 0);
    mesh_sim_run_until(sim, t0 + 126 * SEC);
    CHECK_EQ(cli2.connects, 0);
    mesh_sim_run_until(sim, t0 + 128 * SEC);
    CHECK_EQ(cli2.connects, 1);
    CHECK_EQ(cli2.status, -ETIMEDOUT);
    mesh_simnet_heal(net);

    /* A host that is down answers at once: its streams' peers are reset, connects refused,
     * datagrams dropped. */
    mesh_stream_t *s3;
    CHECK_EQ(mesh_connect(ha, &c, conn_done, &cli3, &s3), 0);
    mesh_sim_run_until(sim, mesh_sim_now(sim) + SEC);
    CHECK_EQ(cli3.status, 0);
    mesh_udp_t *uc, *ua;
    uint64_t rx_c = 0, rx_a = 0;
    mesh_addr_t cu = addr("10.0.0.3:7000"), au = addr("10.0.0.1:7000");
    CHECK_EQ(mesh_udp_bind(hc, &cu, count_dgram, &rx_c, &uc), 0);
    CHECK_EQ(mesh_udp_bind(ha, &au, count_dgram, &rx_a, &ua), 0);
    CHECK_EQ(mesh_simnet_host_down(net, "10.0.0.3", 1), 0);
    mesh_sim_run_until(sim, mesh_sim_now(sim) + SEC);
    CHECK_EQ(cli3.errors, 1);
    CHECK_EQ(cli3.last_error, -ECONNRESET);
    cli3.connects = 0;
    t0 = mesh_sim_now(sim);
    CHECK_EQ(mesh_connect(ha, &c, conn_done, &cli3, &s3), 0);
    send_n(ha, ua, &cu, 3);
    mesh_sim_run_until(sim, t0 + SEC);
    CHECK_EQ(cli3.connects, 1);
    CHECK_EQ(cli3.status, -ECONNREFUSED);
    CHECK(cli3.at - t0 < 20 * MS); /* a round trip, not a timeout */
    CHECK_EQ(rx_c, 0);
    CHECK(stats(net).host_down >= 4); /* 3 datagrams and the refused connect */
    /* Back up: a restarted process binds and listens again. */
    CHECK_EQ(mesh_simnet_host_down(net, "10.0.0.3", 0), 0);
    CHECK_EQ(mesh_listen(hc, &c, conn_accept, &srv_c, &lc), 0);
    cli3.connects = 0;
    CHECK_EQ(mesh_connect(ha, &c, conn_done, &cli3, &s3), 0);
    mesh_sim_run_until(sim, mesh_sim_now(sim) + SEC);
    CHECK_EQ(cli3.status, 0);
    mesh_exec_free(sim);
}

/* ---------------------------------------------------------------------------------------- */
/* Stalls                                                                                   */

enum { T_TICK = 1, T_POKE = 2 };
enum { E_TIMER = 1, E_DGRAM, E_MSG };

typedef struct {
    mesh_io_t *host;
    int kinds[16];
    uint64_t times[16];
    int n;
    uint64_t dgrams;
    int io_ok;
} stall_log_t;

static stall_log_t g_log;

static void log_event(int kind, uint64_t now)
{
    if (g_log.n < 16) {
        g_log.kinds[g_log.n] = kind;
        g_log.times[g_log.n++] = now;
    }
}

static void stall_dgram(mesh_udp_t *s, const mesh_addr_t *from, const void *d, size_t n, void *arg)
{
    g_log.dgrams++;
    if (g_log.dgrams == 1)
        log_event(E_DGRAM, mesh_io_now(g_log.host));
}

typedef struct {
    mesh_udp_t *sock;
} stall_state_t;

static int stall_start(mesh_actor_t *self, void *arg)
{
    stall_state_t *st = mesh_state(self);
    mesh_addr_t a = addr("10.0.0.2:7000");
    g_log.io_ok = mesh_io(self) == g_log.host;
    CHECK_EQ(mesh_udp_bind(mesh_io(self), &a, stall_dgram, NULL, &st->sock), 0);
    return mesh_timer_start(self, 100 * MS, 0, T_TICK, NULL);
}

static int stall_msg(mesh_actor_t *self, mesh_msg_t *m)
{
    log_event(m->type == T_TICK ? E_TIMER : E_MSG, mesh_now(self));
    return 0;
}

static void stall_stop(mesh_actor_t *self, int reason)
{
    stall_state_t *st = mesh_state(self);
    mesh_udp_close(mesh_io(self), st->sock);
}

static const mesh_actor_ops_t stall_ops = {.name = "stalled",
                                           .state_size = sizeof(stall_state_t),
                                           .on_start = stall_start,
                                           .on_message = stall_msg,
                                           .on_stop = stall_stop};

typedef struct {
    mesh_exec_t *sim;
    mesh_io_t *ha;
    mesh_udp_t *ua;
    mesh_actor_id_t id;
    int burst;
} stall_scene_t;

static void scene_stall(void *arg)
{
    stall_scene_t *sc = arg;
    CHECK_EQ(mesh_simnet_stall(mesh_sim_net(sc->sim), "10.0.0.2", 200 * MS), 0);
}

static void scene_send(void *arg)
{
    stall_scene_t *sc = arg;
    mesh_addr_t b = addr("10.0.0.2:7000");
    send_n(sc->ha, sc->ua, &b, sc->burst);
}

static void scene_poke(void *arg)
{
    stall_scene_t *sc = arg;
    CHECK_EQ(mesh_exec_send(sc->sim, sc->id, T_POKE, NULL, 0), 0);
}

static void test_stall(void)
{
    memset(&g_log, 0, sizeof(g_log));
    mesh_exec_t *sim = mesh_sim_new(11);
    mesh_simnet_t *net = mesh_sim_net(sim);
    stall_scene_t sc = {.sim = sim, .ha = mesh_simnet_host(net, "10.0.0.1"), .burst = 1};
    g_log.host = mesh_simnet_host(net, "10.0.0.2");
    mesh_addr_t a = addr("10.0.0.1:7000");
    CHECK_EQ(mesh_udp_bind(sc.ha, &a, count_dgram, &(uint64_t){0}, &sc.ua), 0);
    CHECK_EQ(mesh_sim_spawn_on(sim, g_log.host, &stall_ops, NULL, NULL, &sc.id), 0);
    CHECK_EQ(mesh_sim_spawn_on(sim, NULL, &stall_ops, NULL, NULL, NULL), -MESH_EINVAL);
    uint64_t t0 = mesh_sim_now(sim);
    mesh_sim_run_until(sim, t0 + 10 * MS); /* started: the timer is due at t0 + 100 ms */
    CHECK(g_log.io_ok);
    CHECK_EQ(g_log.n, 0);
    mesh_sim_call_at(sim, t0 + 50 * MS, scene_stall, &sc); /* until t0 + 250 ms */
    mesh_sim_call_at(sim, t0 + 60 * MS, scene_send, &sc);
    mesh_sim_call_at(sim, t0 + 70 * MS, scene_poke, &sc);
    mesh_sim_run_until(sim, t0 + 249 * MS);
    CHECK_EQ(g_log.n, 0); /* nothing ran during the stall */
    CHECK_EQ(g_log.dgrams, 0);
    mesh_sim_run_until(sim, t0 + 400 * MS);
    CHECK_EQ(g_log.n, 3);
    CHECK_EQ(g_log.kinds[0], E_TIMER); /* the late timer first, at the resume time */
    CHECK_EQ(g_log.times[0], t0 + 250 * MS);
    CHECK_EQ(g_log.kinds[1], E_DGRAM); /* then the queued datagram */
    CHECK_EQ(g_log.times[1], t0 + 250 * MS);
    CHECK_EQ(g_log.kinds[2], E_MSG); /* then the mailbox */
    CHECK_EQ(g_log.times[2], t0 + 250 * MS);
    CHECK_EQ(stats(net).deferred, 1);

    /* Streams: a connect to the stalled host completes in its kernel, but the accept
     * callback and the bytes wait for the end of the stall. */
    conn_t srv = {.io = g_log.host}, cli = {.io = sc.ha};
    mesh_addr_t lb = addr("10.0.0.2:80");
    mesh_listener_t *l;
    mesh_stream_t *s;
    CHECK_EQ(mesh_listen(g_log.host, &lb, conn_accept, &srv, &l), 0);
    t0 = mesh_sim_now(sim);
    CHECK_EQ(mesh_simnet_stall(net, "10.0.0.2", 100 * MS), 0);
    CHECK_EQ(mesh_connect(sc.ha, &lb, conn_done, &cli, &s), 0);
    mesh_sim_run_until(sim, t0 + 50 * MS);
    CHECK_EQ(cli.status, 0);
    CHECK_EQ(cli.connects, 1);
    CHECK(srv.accepted == NULL);
    CHECK_EQ(mesh_write(sc.ha, s, "xy", 2), 0);
    mesh_sim_run_until(sim, t0 + 99 * MS);
    CHECK(srv.accepted == NULL);
    mesh_sim_run_until(sim, t0 + 200 * MS);
    CHECK(srv.accepted != NULL);
    CHECK_EQ(srv.ngot, 2);
    CHECK(memcmp(srv.got, "xy", 2) == 0);

    /* A burst beyond the socket queue: 256 kept, the rest dropped and counted. */
    g_log.dgrams = 0;
    sc.burst = 300;
    t0 = mesh_sim_now(sim);
    mesh_sim_call_at(sim, t0 + 10 * MS, scene_stall, &sc);
    mesh_sim_call_at(sim, t0 + 20 * MS, scene_send, &sc);
    mesh_sim_run_until(sim, t0 + 200 * MS);
    CHECK_EQ(g_log.dgrams, 0);
    mesh_sim_run_until(sim, t0 + 300 * MS);
    CHECK_EQ(g_log.dgrams, 256);
    CHECK_EQ(stats(net).overflow, 44);

    /* Without a stall the same burst is all delivered. */
    g_log.dgrams = 0;
    scene_send(&sc);
    mesh_sim_run_until(sim, mesh_sim_now(sim) + 100 * MS);
    CHECK_EQ(g_log.dgrams, 300);
    CHECK_EQ(stats(net).overflow, 44);
    mesh_exec_free(sim);
}

/* ---------------------------------------------------------------------------------------- */
/* Duplication, reordering, latency distributions, clogs                                     */

/* What a receiving socket saw: the arrival time and sequence number of each datagram. */
typedef struct {
    mesh_io_t *io;
    uint64_t sent_at; /* for delays: every datagram was sent at this time */
    uint64_t *at;
    uint32_t *seq;
    size_t n, cap;
} rx_log_t;

static void log_dgram(mesh_udp_t *s, const mesh_addr_t *from, const void *d, size_t n, void *arg)
{
    rx_log_t *l = arg;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 1024;
        l->at = realloc(l->at, l->cap * sizeof(*l->at));
        l->seq = realloc(l->seq, l->cap * sizeof(*l->seq));
        CHECK(l->at && l->seq);
    }
    uint32_t v = 0;
    if (n == sizeof(v))
        memcpy(&v, d, sizeof(v));
    l->at[l->n] = mesh_io_now(l->io);
    l->seq[l->n++] = v;
}

static void rx_free(rx_log_t *l)
{
    free(l->at);
    free(l->seq);
    memset(l, 0, sizeof(*l));
}

static void send_seq(mesh_io_t *io, mesh_udp_t *u, const mesh_addr_t *to, uint32_t v)
{
    CHECK_EQ(mesh_udp_send(io, u, to, &v, sizeof(v)), 0);
}

/* Arrivals that come after one with a higher sequence number. */
static size_t inversions(const rx_log_t *l)
{
    size_t c = 0;
    uint32_t hi = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (i && l->seq[i] < hi)
            c++;
        if (l->seq[i] > hi)
            hi = l->seq[i];
    }
    return c;
}

static void test_duplication(void)
{
    mesh_exec_t *sim = mesh_sim_new(21);
    mesh_simnet_t *net = mesh_sim_net(sim);
    mesh_io_t *ha = mesh_simnet_host(net, "10.0.0.1"), *hb = mesh_simnet_host(net, "10.0.0.2");
    mesh_addr_t a = addr("10.0.0.1:7000"), b = addr("10.0.0.2:7000");
    rx_log_t la = {.io = ha}, lb = {.io = hb};
    mesh_udp_t *ua, *ub;
    CHECK_EQ(mesh_udp_bind(ha, &a, log_dgram, &la, &ua), 0);
    CHECK_EQ(mesh_udp_bind(hb, &b, log_dgram, &lb, &ub), 0);
    mesh_simnet_opts_t o = {.latency_min_ns = MS, .latency_jitter_ns = 10 * MS, .duplicate = 0.3};
    CHECK_EQ(mesh_simnet_configure(net, &o), 0);
    mesh_simnet_opts_t bad = o;
    bad.duplicate = 1.5;
    CHECK_EQ(mesh_simnet_configure(net, &bad), -EINVAL);

    /* 30 % globally: 10000 datagrams arrive about 13000 times (sd ~46; 5 sd allowed). */
    for (uint32_t i = 0; i < 10000; i++)
        send_seq(ha, ua, &b, i);
    mesh_sim_run_until(sim, mesh_sim_now(sim) + SEC);
    printf("duplicate 0.3: 10000 datagrams arrived %zu times\n", lb.n);
    CHECK(lb.n > 13000 - 230 && lb.n < 13000 + 230);
    CHECK_EQ(stats(net).duplicated, lb.n - 10000);
    CHECK_EQ(stats(net).delivered, lb.n);

    /* Per direction: A -> B always twice, each copy with its own latency draw; B -> A keeps
     * the global setting, which is now 0. */
    o.duplicate = 0;
    CHECK_EQ(mesh_simnet_configure(net, &o), 0);
    CHECK_EQ(mesh_simnet_link_duplicate(net, &a, &b, 1.0), 0);
    CHECK_EQ(mesh_simnet_link_duplicate(net, &a, &b, 2.0), -EINVAL);
    rx_free(&lb);
    lb.io = hb;
    for (uint32_t i = 0; i < 200; i++) {
        send_seq(ha, ua, &b, i);
        send_seq(hb, ub, &a, i);
        mesh_sim_run_until(sim, mesh_sim_now(sim) + 100 * MS);
    }
    CHECK_EQ(lb.n, 400);
    CHECK_EQ(la.n, 200);
    size_t differ = 0;
    for (size_t i = 0; i + 1 < lb.n; i += 2) {
        CHECK_EQ(lb.seq[i], lb.seq[i + 1]); /* both copies before the next one (100 ms later) */
        differ += lb.at[i] != lb.at[i + 1];
    }
    CHECK(differ > 150); /* 10 ms of jitter: two draws rarely coincide */

    /* A negative probability restores the global one. */
    CHECK_EQ(mesh_simnet_link_duplicate(net, &a, &b, -1), 0);
    rx_free(&lb);
    lb.io = hb;
    for (uint32_t i = 0; i < 100; i++)
        send_seq(ha, ua, &b, i);
    mesh_sim_run_until(sim, mesh_sim_now(sim) + SEC);
    CHECK_EQ(lb.n, 100);
    rx_free(&la);
    rx_free(&lb);
    mesh_exec_free(sim);
}

static void test_reordering(void)
{
    mesh_exec_t *sim = mesh_sim_new(22);
    mesh_simnet_t *net = mesh_sim_net(sim);
    mesh_io_t *ha = mesh_simnet_host(net, "10.0.0.1"), *hb = mesh_simnet_host(net, "10.0.0.2");
    mesh_addr_t a = addr("10.0.0.1:7000"), b = addr("10.0.0.2:7000");
    rx_log_t lb = {.io = hb};
    mesh_udp_t *ua, *ub;
    CHECK_EQ(mesh_udp_bind(ha, &a, count_dgram, &(uint64_t){0}, &ua), 0);
    CHECK_EQ(mesh_udp_bind(hb, &b, log_dgram, &lb, &ub), 0);

    /* Without reordering and without jitter, one datagram a millisecond arrives in order. */
    mesh_simnet_opts_t o = {.latency_min_ns = MS, .latency_jitter_ns = 0};
    CHECK_EQ(mesh_simnet_configure(net, &o), 0);
    for (uint32_t i = 1; i <= 1000; i++) {
        send_seq(ha, ua, &b, i);
        mesh_sim_run_until(sim, mesh_sim_now(sim) + MS);
    }
    mesh_sim_run_until(sim, mesh_sim_now(sim) + SEC);
    CHECK_EQ(lb.n, 1000);
    CHECK_EQ(inversions(&lb), 0);

    /* 20 % take up to 20 ms more: they arrive after later ones; none is lost. */
    o.reorder = 0.2;
    o.reorder_delay_ns = 20 * MS;
    CHECK_EQ(mesh_simnet_configure(net, &o), 0);
    rx_free(&lb);
    lb.io = hb;
    for (uint32_t i = 1; i <= 1000; i++) {
        send_seq(ha, ua, &b, i);
        mesh_sim_run_until(sim, mesh_sim_now(sim) + MS);
    }
    mesh_sim_run_until(sim, mesh_sim_now(sim) + SEC);
    mesh_simnet_stats_t st = stats(net);
    printf("reorder 0.2: %llu delayed, %zu arrivals after a later datagram\n",
           (unsigned long long)st.reordered, inversions(&lb));
    CHECK_EQ(lb.n, 1000);
    CHECK(st.reordered > 200 - 65 && st.reordered < 200 + 65);
    CHECK(inversions(&lb) > 100);

    /* Streams keep their order whatever the datagrams do, also over a long-tailed link. */
    o.reorder = 1.0;
    o.latency_dist = MESH_SIMNET_PARETO;
    o.latency_jitter_ns = 5 * MS;
    CHECK_EQ(mesh_simnet_configure(net, &o), 0);
    conn_t srv = {.io = hb}, cli = {.io = ha};
    mesh_addr_t lbaddr = addr("10.0.0.2:80");
    mesh_listener_t *l;
    mesh_stream_t *s;
    CHECK_EQ(mesh_listen(hb, &lbaddr, conn_accept, &srv, &l), 0);
    CHECK_EQ(mesh_connect(ha, &lbaddr, conn_done, &cli, &s), 0);
    mesh_sim_run_until(sim, mesh_sim_now(sim) + 2 * SEC);
    CHECK_EQ(cli.status, 0);
    for (int i = 0; i < 60; i++) {
        char ch = (char)('0' + i % 64);
        CHECK_EQ(mesh_write(ha, s, &ch, 1), 0);
        mesh_sim_run_until(sim, mesh_sim_now(sim) + MS);
    }
    mesh_sim_run_until(sim, mesh_sim_now(sim) + 5 * SEC);
    CHECK_EQ(srv.ngot, 60);
    for (int i = 0; i < 60; i++)
        CHECK_EQ(srv.got[i], (char)('0' + i % 64));
    rx_free(&lb);
    mesh_exec_free(sim);
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

/* Sends count datagrams at once from a to the socket of l and returns the sorted delays. */
static uint64_t *delays(mesh_exec_t *sim, mesh_io_t *io, mesh_udp_t *u, const mesh_addr_t *to,
                        rx_log_t *l, uint32_t count)
{
    l->n = 0;
    l->sent_at = mesh_sim_now(sim);
    for (uint32_t i = 0; i < count; i++)
        send_seq(io, u, to, i);
    mesh_sim_run_until(sim, mesh_sim_now(sim) + 5 * SEC);
    CHECK_EQ(l->n, count);
    uint64_t *d = malloc(count * sizeof(*d));
    CHECK(d);
    for (uint32_t i = 0; i < count; i++)
        d[i] = l->at[i] - l->sent_at;
    qsort(d, count, sizeof(*d), cmp_u64);
    return d;
}

static void test_link_latency(void)
{
    mesh_exec_t *sim = mesh_sim_new(23);
    mesh_simnet_t *net = mesh_sim_net(sim);
    mesh_io_t *ha = mesh_simnet_host(net, "10.0.0.1"), *hb = mesh_simnet_host(net, "10.0.0.2"),
              *hc = mesh_simnet_host(net, "10.0.0.3");
    mesh_addr_t a = addr("10.0.0.1:7000"), b = addr("10.0.0.2:7000"), c = addr("10.0.0.3:7000");
    rx_log_t la = {.io = ha}, lb = {.io = hb}, lc = {.io = hc};
    mesh_udp_t *ua, *ub, *uc;
    CHECK_EQ(mesh_udp_bind(ha, &a, log_dgram, &la, &ua), 0);
    CHECK_EQ(mesh_udp_bind(hb, &b, log_dgram, &lb, &ub), 0);
    CHECK_EQ(mesh_udp_bind(hc, &c, log_dgram, &lc, &uc), 0);
    enum { N = 10000 };

    /* A -> B: 50 ms + [0, 10 ms); B -> A keeps the global 1 ms + [0, 1 ms). */
    mesh_simnet_latency_t slow = {.min_ns = 50 * MS, .spread_ns = 10 * MS};
    CHECK_EQ(mesh_simnet_link_latency(net, &a, &b, &slow), 0);
    mesh_simnet_latency_t wrong = {.dist = (mesh_simnet_dist_t)7};
    CHECK_EQ(mesh_simnet_link_latency(net, &a, &b, &wrong), -EINVAL);
    uint64_t *d = delays(sim, ha, ua, &b, &lb, N);
    CHECK(d[0] >= 50 * MS && d[N - 1] < 60 * MS);
    CHECK(d[N / 2] > 54 * MS && d[N / 2] < 56 * MS);
    free(d);
    d = delays(sim, hb, ub, &a, &la, 1000);
    CHECK(d[0] >= MS && d[999] < 2 * MS);
    free(d);

    /* A -> C: a Pareto tail (alpha 1.5, scale 2 ms) above 5 ms, capped at 200 ms. Quantiles of
     * the tail: median 2 * (2^(2/3) - 1) = 1.17 ms, p99 2 * (100^(2/3) - 1) = 41 ms; beyond the
     * cap with probability (1 + 100)^-1.5 = 0.1 %. */
    mesh_simnet_latency_t tail = {
        .min_ns = 5 * MS, .spread_ns = 2 * MS, .dist = MESH_SIMNET_PARETO, .cap_ns = 200 * MS};
    CHECK_EQ(mesh_simnet_link_latency(net, &a, &c, &tail), 0);
    d = delays(sim, ha, ua, &c, &lc, N);
    size_t at_cap = 0;
    for (int i = 0; i < N; i++)
        at_cap += d[i] == 205 * MS;
    printf("pareto A->C: min %.2f ms, p50 %.2f ms, p99 %.2f ms, max %.2f ms, %zu at the cap\n",
           d[0] / 1e6, d[N / 2] / 1e6, d[N * 99 / 100] / 1e6, d[N - 1] / 1e6, at_cap);
    CHECK(d[0] >= 5 * MS);
    CHECK(d[N - 1] <= 205 * MS);
    CHECK(d[N / 2] > 6 * MS && d[N / 2] < 6400 * 1000);
    CHECK(d[N * 99 / 100] > 35 * MS && d[N * 99 / 100] < 55 * MS);
    CHECK(at_cap >= 2 && at_cap <= 30);
    free(d);

    /* Streams take the direction's latency too. */
    conn_t srv = {.io = hb}, cli = {.io = ha};
    mesh_addr_t lbaddr = addr("10.0.0.2:80");
    mesh_listener_t *l;
    mesh_stream_t *s;
    CHECK_EQ(mesh_listen(hb, &lbaddr, conn_accept, &srv, &l), 0);
    uint64_t t0 = mesh_sim_now(sim);
    CHECK_EQ(mesh_connect(ha, &lbaddr, conn_done, &cli, &s), 0);
    mesh_sim_run_until(sim, t0 + SEC);
    CHECK_EQ(cli.status, 0);
    CHECK(cli.at - t0 >= 51 * MS); /* the SYN at 50+ ms, the SYN-ACK back at 1+ ms */
    t0 = mesh_sim_now(sim);
    CHECK_EQ(mesh_write(ha, s, "z", 1), 0);
    mesh_sim_run_until(sim, t0 + 49 * MS);
    CHECK_EQ(srv.ngot, 0);
    mesh_sim_run_until(sim, t0 + 60 * MS);
    CHECK_EQ(srv.ngot, 1);

    /* NULL restores the global distribution; a lognormal global one (median 1 ms + 2 ms). */
    CHECK_EQ(mesh_simnet_link_latency(net, &a, &b, NULL), 0);
    CHECK_EQ(mesh_simnet_link_latency(net, &a, &c, NULL), 0);
    mesh_simnet_opts_t o = {.latency_min_ns = MS,
                            .latency_jitter_ns = 2 * MS,
                            .latency_dist = MESH_SIMNET_LOGNORMAL,
                            .latency_cap_ns = 50 * MS};
    CHECK_EQ(mesh_simnet_configure(net, &o), 0);
    mesh_simnet_options(net, &o);
    CHECK(o.latency_shape == 1.0);
    o.latency_shape = -1;
    CHECK_EQ(mesh_simnet_configure(net, &o), -EINVAL);
    d = delays(sim, ha, ua, &b, &lb, N);
    printf("lognormal A->B: p50 %.3f ms, p99 %.3f ms, max %.3f ms\n", d[N / 2] / 1e6,
           d[N * 99 / 100] / 1e6, d[N - 1] / 1e6);
    CHECK(d[0] >= MS && d[N - 1] <= 51 * MS);
    CHECK(d[N / 2] > 2800 * 1000 && d[N / 2] < 3200 * 1000);
    CHECK(d[N * 99 / 100] > 15 * MS); /* 1 + 2 * e^2.33 = 21 ms */
    free(d);
    rx_free(&la);
    rx_free(&lb);
    rx_free(&lc);
    mesh_exec_free(sim);
}

/* The clogged host's loop: an actor that ticks every 100 ms and sends a datagram each time. */
typedef struct {
    mesh_addr_t self, to;
    uint64_t ticks, rx;
} clog_arg_t;

typedef struct {
    mesh_udp_t *sock;
} clog_state_t;

static int clog_start(mesh_actor_t *self, void *arg)
{
    clog_arg_t *a = arg;
    clog_state_t *st = mesh_state(self);
    CHECK_EQ(mesh_udp_bind(mesh_io(self), &a->self, count_dgram, &a->rx, &st->sock), 0);
    return mesh_timer_start(self, 100 * MS, 100 * MS, T_TICK, NULL);
}

static int clog_msg(mesh_actor_t *self, mesh_msg_t *m)
{
    clog_arg_t *a = mesh_arg(self);
    clog_state_t *st = mesh_state(self);
    a->ticks++;
    send_seq(mesh_io(self), st->sock, &a->to, 1000 + (uint32_t)a->ticks); /* A sends < 1000 */
    return 0;
}

static void clog_stop(mesh_actor_t *self, int reason)
{
    clog_state_t *st = mesh_state(self);
    mesh_udp_close(mesh_io(self), st->sock);
}

static const mesh_actor_ops_t clog_ops = {.name = "clogged",
                                          .state_size = sizeof(clog_state_t),
                                          .on_start = clog_start,
                                          .on_message = clog_msg,
                                          .on_stop = clog_stop};

static void test_clog(void)
{
    mesh_exec_t *sim = mesh_sim_new(24);
    mesh_simnet_t *net = mesh_sim_net(sim);
    mesh_io_t *ha = mesh_simnet_host(net, "10.0.0.1"), *hb = mesh_simnet_host(net, "10.0.0.2"),
              *hc = mesh_simnet_host(net, "10.0.0.3");
    mesh_addr_t a = addr("10.0.0.1:7000"), b = addr("10.0.0.2:7000"), c = addr("10.0.0.3:7000");
    rx_log_t la = {.io = ha}, lc = {.io = hc};
    mesh_udp_t *ua, *uc;
    CHECK_EQ(mesh_udp_bind(ha, &a, log_dgram, &la, &ua), 0);
    CHECK_EQ(mesh_udp_bind(hc, &c, log_dgram, &lc, &uc), 0);
    clog_arg_t arg = {.self = addr("10.0.0.2:7000"), .to = c};
    CHECK_EQ(mesh_sim_spawn_on(sim, hb, &clog_ops, &arg, NULL, NULL), 0);
    conn_t srv = {.io = hb}, cli = {.io = ha}, cli2 = {.io = hc};
    mesh_addr_t lbaddr = addr("10.0.0.2:80");
    mesh_listener_t *l;
    mesh_stream_t *s, *s2;
    CHECK_EQ(mesh_listen(hb, &lbaddr, conn_accept, &srv, &l), 0);
    CHECK_EQ(mesh_connect(ha, &lbaddr, conn_done, &cli, &s), 0);
    mesh_sim_run_until(sim, mesh_sim_now(sim) + 50 * MS);
    CHECK_EQ(cli.status, 0);
    CHECK_EQ(mesh_simnet_clog(net, "10.0.0.2", SEC, 0), -EINVAL);
    CHECK_EQ(mesh_simnet_clog(net, "nope", SEC, MESH_SIMNET_CLOG_BOTH), -EINVAL);

    /* B clogged both ways for 2 s: its loop ticks and sends, nothing crosses its links. */
    uint64_t t0 = mesh_sim_now(sim), end = t0 + 2 * SEC, ticks0 = arg.ticks;
    size_t c0 = lc.n;
    CHECK_EQ(mesh_simnet_clog(net, "10.0.0.2", 2 * SEC, MESH_SIMNET_CLOG_BOTH), 0);
    for (uint32_t i = 0; i < 10; i++) {
        send_seq(ha, ua, &b, i); /* into B: held */
        send_seq(ha, ua, &c, i); /* A -> C: unaffected */
        CHECK_EQ(mesh_write(ha, s, (char[]){(char)('a' + i)}, 1), 0);
        mesh_sim_run_until(sim, mesh_sim_now(sim) + 100 * MS);
    }
    CHECK_EQ(mesh_connect(hc, &lbaddr, conn_done, &cli2, &s2), 0);
    mesh_sim_run_until(sim, end - 1);
    CHECK(arg.ticks - ticks0 >= 19); /* the loop ran all along (unlike a stall) */
    CHECK_EQ(arg.rx, 0);             /* datagrams into B wait */
    CHECK_EQ(srv.ngot, 0);           /* so do stream bytes */
    CHECK_EQ(cli2.connects, 0);      /* and a connect */
    size_t from_b = 0, from_a = 0;
    for (size_t i = c0; i < lc.n; i++) {
        from_a += lc.seq[i] < 1000;
        from_b += lc.seq[i] >= 1000;
    }
    CHECK_EQ(from_a, 10); /* A -> C flowed */
    CHECK_EQ(from_b, 0);  /* B -> C waits */
    printf("clog: %llu packets held\n", (unsigned long long)stats(net).clogged);
    CHECK(stats(net).clogged >= 10 + 10 + 19 + 1);

    /* At the clog's end everything held arrives at that instant, streams in order. */
    mesh_sim_run_until(sim, end + 100 * MS);
    CHECK_EQ(srv.ngot, 10);
    CHECK(memcmp(srv.got, "abcdefghij", 10) == 0);
    CHECK_EQ(cli2.connects, 1);
    CHECK_EQ(cli2.status, 0);
    CHECK(cli2.at >= end);
    CHECK_EQ(arg.rx, 10);
    for (size_t i = c0; i < lc.n; i++)
        from_b += lc.seq[i] >= 1000 && lc.at[i] == end;
    CHECK(from_b >= 19);
    CHECK_EQ(stats(net).lost, 0);

    /* Inbound only: B's datagrams flow out at once, A's into B wait. */
    size_t c1 = lc.n;
    t0 = mesh_sim_now(sim);
    CHECK_EQ(mesh_simnet_clog(net, "10.0.0.2", SEC, MESH_SIMNET_CLOG_IN), 0);
    mesh_sim_run_until(sim, t0 + 500 * MS);
    CHECK(lc.n - c1 >= 4);
    CHECK_EQ(mesh_write(ha, s, "k", 1), 0);
    mesh_sim_run_until(sim, t0 + 900 * MS);
    CHECK_EQ(srv.ngot, 10);
    mesh_sim_run_until(sim, t0 + SEC + 10 * MS);
    CHECK_EQ(srv.ngot, 11);

    /* A later clog of another host: B's ended clog holds nothing any more (a datagram into B
     * used to be rescheduled at B's past clog end, forever). */
    uint64_t rx0 = arg.rx;
    t0 = mesh_sim_now(sim);
    CHECK_EQ(mesh_simnet_clog(net, "10.0.0.3", SEC, MESH_SIMNET_CLOG_BOTH), 0);
    send_seq(ha, ua, &b, 77);
    mesh_sim_run_until(sim, t0 + 100 * MS);
    CHECK_EQ(arg.rx, rx0 + 1);
    rx_free(&la);
    rx_free(&lc);
    mesh_exec_free(sim);
}

/* ---------------------------------------------------------------------------------------- */
/* Determinism                                                                              */

#define NDET 6

typedef struct {
    mesh_addr_t addrs[NDET];
    int index;
    uint64_t rx;
} det_arg_t;

typedef struct {
    mesh_udp_t *sock;
} det_state_t;

static void det_dgram(mesh_udp_t *s, const mesh_addr_t *from, const void *d, size_t n, void *arg)
{
    ((det_arg_t *)arg)->rx++;
}

static int det_start(mesh_actor_t *self, void *arg)
{
    det_arg_t *a = arg;
    det_state_t *st = mesh_state(self);
    CHECK_EQ(mesh_udp_bind(mesh_io(self), &a->addrs[a->index], det_dgram, a, &st->sock), 0);
    return mesh_timer_start(self, 5 * MS + mesh_random(self) % (5 * MS), 7 * MS, T_TICK, NULL);
}

static int det_msg(mesh_actor_t *self, mesh_msg_t *m)
{
    det_arg_t *a = mesh_arg(self);
    det_state_t *st = mesh_state(self);
    for (int k = 0; k < 3; k++) {
        int peer = (int)(mesh_random(self) % NDET);
        mesh_udp_send(mesh_io(self), st->sock, &a->addrs[peer], &k, sizeof(k));
    }
    return 0;
}

static void det_stop(mesh_actor_t *self, int reason)
{
    det_state_t *st = mesh_state(self);
    mesh_udp_close(mesh_io(self), st->sock);
}

static const mesh_actor_ops_t det_ops = {.name = "det",
                                         .state_size = sizeof(det_state_t),
                                         .on_start = det_start,
                                         .on_message = det_msg,
                                         .on_stop = det_stop};

typedef struct {
    mesh_simnet_t *net;
    det_arg_t *args;
    int step;
    int extra; /* also duplication, reordering, long tails and a clog */
} det_scene_t;

static void det_fault(void *arg)
{
    det_scene_t *sc = arg;
    static const char *const left[] = {"10.1.0.1", "10.1.0.2"};
    switch (sc->step++) {
    case 0:
        mesh_simnet_block_oneway(sc->net, &sc->args[0].addrs[0], &sc->args[0].addrs[3], 1);
        mesh_simnet_link_loss(sc->net, &sc->args[0].addrs[1], &sc->args[0].addrs[2], 0.5);
        break;
    case 1:
        mesh_simnet_partition(sc->net, left, 2, 1);
        mesh_simnet_stall(sc->net, "10.1.0.5", 40 * MS);
        break;
    case 2:
        mesh_simnet_heal(sc->net);
        mesh_simnet_host_down(sc->net, "10.1.0.6", 1);
        if (sc->extra)
            mesh_simnet_clog(sc->net, "10.1.0.3", 50 * MS, MESH_SIMNET_CLOG_BOTH);
        break;
    }
}

typedef struct {
    uint64_t hash, net_trace, steps, rx;
    mesh_simnet_stats_t st;
} det_result_t;

static det_result_t det_run(uint64_t seed, int extra)
{
    mesh_exec_t *sim = mesh_sim_new(seed);
    mesh_simnet_t *net = mesh_sim_net(sim);
    mesh_simnet_opts_t o = {.latency_min_ns = MS, .latency_jitter_ns = 3 * MS, .loss = 0.05};
    if (extra) {
        o.duplicate = 0.1;
        o.reorder = 0.1;
        o.latency_dist = MESH_SIMNET_PARETO;
    }
    CHECK_EQ(mesh_simnet_configure(net, &o), 0);
    static det_arg_t args[NDET];
    memset(args, 0, sizeof(args));
    for (int i = 0; i < NDET; i++) {
        char ip[32], hp[40];
        snprintf(ip, sizeof(ip), "10.1.0.%d", i + 1);
        for (int j = 0; j < NDET; j++) {
            snprintf(hp, sizeof(hp), "10.1.0.%d:7946", j + 1);
            args[i].addrs[j] = addr(hp);
        }
        args[i].index = i;
        CHECK_EQ(mesh_sim_spawn_on(sim, mesh_simnet_host(net, ip), &det_ops, &args[i], NULL, NULL),
                 0);
    }
    det_scene_t sc = {net, args, 0, extra};
    if (extra) {
        mesh_simnet_latency_t lat = {
            .min_ns = 2 * MS, .spread_ns = MS, .dist = MESH_SIMNET_LOGNORMAL};
        CHECK_EQ(mesh_simnet_link_latency(net, &args[0].addrs[1], &args[0].addrs[2], &lat), 0);
        CHECK_EQ(mesh_simnet_link_duplicate(net, &args[0].addrs[2], &args[0].addrs[1], 0.5), 0);
    }
    uint64_t t0 = mesh_sim_now(sim);
    for (int k = 1; k <= 3; k++)
        mesh_sim_call_at(sim, t0 + (uint64_t)k * 100 * MS, det_fault, &sc);
    mesh_sim_run_until(sim, t0 + 500 * MS);
    det_result_t r = {.hash = mesh_sim_trace_hash(sim), .steps = mesh_sim_steps(sim)};
    mesh_simnet_stats(net, &r.st);
    r.net_trace = r.st.trace;
    for (int i = 0; i < NDET; i++)
        r.rx += args[i].rx;
    mesh_exec_free(sim);
    return r;
}

static void test_determinism(void)
{
    det_result_t a = det_run(42, 0), b = det_run(42, 0), c = det_run(43, 0);
    printf("seed 42: hash %016llx net %016llx rx %llu lost %llu blocked %llu partitioned %llu "
           "down %llu deferred %llu\n",
           (unsigned long long)a.hash, (unsigned long long)a.net_trace, (unsigned long long)a.rx,
           (unsigned long long)a.st.lost, (unsigned long long)a.st.blocked,
           (unsigned long long)a.st.partitioned, (unsigned long long)a.st.host_down,
           (unsigned long long)a.st.deferred);
    CHECK(a.rx > 100);
    CHECK(a.st.lost > 0 && a.st.blocked > 0 && a.st.partitioned > 0);
    CHECK(a.st.host_down > 0 && a.st.deferred > 0);
    CHECK_EQ(a.hash, b.hash);
    CHECK_EQ(a.net_trace, b.net_trace);
    CHECK_EQ(a.steps, b.steps);
    CHECK_EQ(a.rx, b.rx);
    CHECK(memcmp(&a.st, &b.st, sizeof(a.st)) == 0);
    CHECK(a.hash != c.hash);
    CHECK(a.net_trace != c.net_trace);
    /* Duplication, reordering, latency distributions and clogs draw nothing and note nothing
     * when off: this run's traces are those of the simulator before they existed. A change of
     * the network model that means to change every trace updates these two values. */
    CHECK_EQ(a.hash, 0xa9eec465b725d246ull);
    CHECK_EQ(a.net_trace, 0xcc74ba604d7d7246ull);

    /* With them on: the same seed, the same trace; another seed, another. */
    det_result_t x = det_run(42, 1), y = det_run(42, 1), z = det_run(43, 1);
    printf("seed 42 with the new faults: hash %016llx net %016llx rx %llu duplicated %llu "
           "reordered %llu clogged %llu\n",
           (unsigned long long)x.hash, (unsigned long long)x.net_trace, (unsigned long long)x.rx,
           (unsigned long long)x.st.duplicated, (unsigned long long)x.st.reordered,
           (unsigned long long)x.st.clogged);
    CHECK(x.st.duplicated > 0 && x.st.reordered > 0 && x.st.clogged > 0);
    CHECK(x.net_trace != a.net_trace);
    CHECK_EQ(x.hash, y.hash);
    CHECK_EQ(x.net_trace, y.net_trace);
    CHECK_EQ(x.rx, y.rx);
    CHECK(memcmp(&x.st, &y.st, sizeof(x.st)) == 0);
    CHECK(x.net_trace != z.net_trace);
}

int main(void)
{
    RUN(test_one_way_block);
    RUN(test_link_loss);
    RUN(test_partition_1000);
    RUN(test_silent_cut_vs_host_down);
    RUN(test_stall);
    RUN(test_duplication);
    RUN(test_reordering);
    RUN(test_link_latency);
    RUN(test_clog);
    RUN(test_determinism);
    printf("ok\n");
    return 0;
}
