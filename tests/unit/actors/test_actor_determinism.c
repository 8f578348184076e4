/*
 * tests/unit/actors/test_actor_determinism.c: the simulated executor is reproducible.
 *
 * A small gossip-like scenario: 5 nodes, each an actor with a datagram socket on its own
 * simulated host, pinging random peers on timers over a lossy network with a partition in
 * the middle, plus actor-to-actor messages. Same seed: same trace hash and same result;
 * another seed: another hash.
 *
 * The same scenario on the logical-process executor (actors/sim_lp.c: each node's host on its
 * own process, streams too, no messages between hosts: those cross the network there) gives
 * the same trace hash, counters and results with 1, 2 and 4 threads.
 */
#include <stdio.h>
#include <string.h>

#include "actors/io.h"
#include "actors/sim.h"
#include "actors/simnet.h"
#include "tests/check.h"

#define MS     1000000ull
#define NNODES 5

enum { T_TICK = 1, T_NOTE };

typedef struct node_arg {
    mesh_io_t *io;
    int lp;          /* on the logical-process executor: streams, no messages between hosts */
    uint64_t echoes; /* stream answers */
    mesh_addr_t addrs[NNODES];
    mesh_addr_t saddrs[NNODES]; /* the stream listeners (port 9000) */
    int index;
    uint64_t received; /* datagrams */
    uint64_t notes;    /* actor messages */
    uint64_t digest;
} node_arg_t;

static mesh_actor_id_t g_ids[NNODES];

typedef struct {
    mesh_udp_t *sock;
    mesh_listener_t *lis;
    uint64_t ticks;
} node_state_t;

/* Streams (the logical-process run): a peer answers what it reads and closes; the caller
 * counts the answer. */
static void srv_read(mesh_stream_t *s, const void *d, ssize_t n, void *arg)
{
    node_arg_t *a = arg;
    if (n > 0)
        mesh_write(a->io, s, d, (size_t)n);
    mesh_stream_close(a->io, s);
}

static void on_accept(mesh_listener_t *l, mesh_stream_t *s, void *arg)
{
    (void)l;
    node_arg_t *a = arg;
    mesh_read_start(a->io, s, srv_read, a);
}

static void cli_read(mesh_stream_t *s, const void *d, ssize_t n, void *arg)
{
    node_arg_t *a = arg;
    if (n > 0) {
        uint64_t v = 0;
        memcpy(&v, d, (size_t)n < sizeof(v) ? (size_t)n : sizeof(v));
        a->echoes++;
        a->digest = a->digest * 7 + v;
    }
    mesh_stream_close(a->io, s);
}

static void on_connect(mesh_stream_t *s, int status, void *arg)
{
    node_arg_t *a = arg;
    if (status < 0) {
        mesh_stream_close(a->io, s);
        return;
    }
    uint64_t v = mesh_io_now(a->io) ^ (uint64_t)a->index << 56;
    mesh_write(a->io, s, &v, sizeof(v));
    mesh_read_start(a->io, s, cli_read, a);
}

static void on_dgram(mesh_udp_t *s, const mesh_addr_t *from, const void *d, size_t n, void *arg)
{
    node_arg_t *a = arg;
    uint64_t v;
    CHECK_EQ(n, sizeof(v));
    memcpy(&v, d, sizeof(v));
    a->received++;
    a->digest = a->digest * 31 + v;
}

static int node_start(mesh_actor_t *self, void *arg)
{
    node_arg_t *a = arg;
    node_state_t *st = mesh_state(self);
    CHECK_EQ(mesh_udp_bind(a->io, &a->addrs[a->index], on_dgram, a, &st->sock), 0);
    if (a->lp) {
        CHECK_EQ(mesh_listen(a->io, &a->saddrs[a->index], on_accept, a, &st->lis), 0);
    }
    return mesh_timer_start(self, 10 * MS + mesh_random(self) % (10 * MS), 10 * MS, T_TICK, NULL);
}

static int node_msg(mesh_actor_t *self, mesh_msg_t *m)
{
    node_arg_t *a = mesh_arg(self);
    node_state_t *st = mesh_state(self);
    if (m->type == T_TICK) {
        int peer = (int)(mesh_random(self) % NNODES);
        uint64_t v = mesh_now(self) ^ (uint64_t)a->index;
        mesh_udp_send(a->io, st->sock, &a->addrs[peer], &v, sizeof(v));
        int other = (int)(mesh_random(self) % NNODES);
        if (!a->lp) {
            mesh_send(self, g_ids[other], T_NOTE, &v, sizeof(v));
        } else if (++st->ticks % 5 == 0) {
            mesh_stream_t *s = NULL;
            mesh_connect(a->io, &a->saddrs[other], on_connect, a, &s);
        }
    } else if (m->type == T_NOTE) {
        a->notes++;
        a->digest = a->digest * 17 + *mesh_msg_as(m, uint64_t);
    }
    return 0;
}

static void node_stop(mesh_actor_t *self, int reason)
{
    node_arg_t *a = mesh_arg(self);
    node_state_t *st = mesh_state(self);
    mesh_udp_close(a->io, st->sock);
    if (st->lis)
        mesh_listener_close(a->io, st->lis);
}

static const mesh_actor_ops_t node_ops = {.name = "node",
                                          .state_size = sizeof(node_state_t),
                                          .on_start = node_start,
                                          .on_message = node_msg,
                                          .on_stop = node_stop};

typedef struct {
    mesh_simnet_t *net;
    node_arg_t *args;
    int heal;
} part_arg_t;

static void partition(void *p)
{
    part_arg_t *pa = p;
    for (int i = 0; i < 2; i++)
        for (int j = 2; j < NNODES; j++)
            mesh_simnet_block(pa->net, &pa->args[i].addrs[i], &pa->args[j].addrs[j], !pa->heal);
}

typedef struct {
    uint64_t hash, steps, digest, received, notes, echoes;
    mesh_simnet_stats_t net;
} result_t;

/* threads 0: the classic executor; else the logical-process one on that many threads. */
static result_t run_on(uint64_t seed, int threads)
{
    mesh_exec_t *sim = threads ? mesh_sim_new_lp(seed, NNODES + 1) : mesh_sim_new(seed);
    CHECK(sim);
    if (threads)
        CHECK_EQ(mesh_sim_set_threads(sim, threads), 0);
    mesh_simnet_t *net = mesh_sim_net(sim);
    mesh_simnet_opts_t o = {.latency_min_ns = MS, .latency_jitter_ns = 4 * MS, .loss = 0.1};
    mesh_simnet_configure(net, &o);
    static node_arg_t args[NNODES];
    memset(args, 0, sizeof(args));
    for (int i = 0; i < NNODES; i++) {
        char ip[32], hp[40];
        snprintf(ip, sizeof(ip), "10.0.0.%d", i + 1);
        for (int j = 0; j < NNODES; j++) {
            snprintf(hp, sizeof(hp), "10.0.0.%d:7946", j + 1);
            CHECK_EQ(mesh_addr_parse(hp, &args[i].addrs[j]), 0);
            snprintf(hp, sizeof(hp), "10.0.0.%d:9000", j + 1);
            CHECK_EQ(mesh_addr_parse(hp, &args[i].saddrs[j]), 0);
        }
        args[i].io = mesh_simnet_host(net, ip);
        args[i].index = i;
        args[i].lp = threads > 0;
        CHECK(args[i].io);
        if (threads)
            CHECK_EQ(mesh_sim_spawn_on(sim, args[i].io, &node_ops, &args[i], NULL, &g_ids[i]), 0);
        else
            CHECK_EQ(mesh_exec_spawn(sim, &node_ops, &args[i], NULL, &g_ids[i]), 0);
    }
    part_arg_t cut = {net, args, 0}, heal = {net, args, 1};
    uint64_t t0 = mesh_sim_now(sim);
    mesh_sim_call_at(sim, t0 + 300 * MS, partition, &cut);
    mesh_sim_call_at(sim, t0 + 600 * MS, partition, &heal);
    mesh_sim_run_until(sim, t0 + 1000 * MS);
    result_t r = {.hash = mesh_sim_trace_hash(sim), .steps = mesh_sim_steps(sim)};
    for (int i = 0; i < NNODES; i++) {
        r.digest = r.digest * 1000003 + args[i].digest;
        r.received += args[i].received;
        r.notes += args[i].notes;
        r.echoes += args[i].echoes;
    }
    mesh_simnet_stats(net, &r.net);
    mesh_exec_free(sim);
    return r;
}

static result_t run(uint64_t seed)
{
    return run_on(seed, 0);
}

int main(void)
{
    result_t a = run(42), b = run(42), c = run(43);
    printf("seed 42: hash %016llx steps %llu dgrams %llu notes %llu lost %llu blocked %llu\n",
           (unsigned long long)a.hash, (unsigned long long)a.steps, (unsigned long long)a.received,
           (unsigned long long)a.notes, (unsigned long long)a.net.lost,
           (unsigned long long)a.net.blocked);
    printf("seed 43: hash %016llx steps %llu\n", (unsigned long long)c.hash,
           (unsigned long long)c.steps);
    CHECK(a.steps > 500);
    CHECK(a.received > 100);
    CHECK(a.net.lost > 0);    /* loss happened */
    CHECK(a.net.blocked > 0); /* the partition dropped traffic */
    CHECK_EQ(a.hash, b.hash);
    CHECK_EQ(a.steps, b.steps);
    CHECK_EQ(a.digest, b.digest);
    CHECK_EQ(a.received, b.received);
    CHECK(a.hash != c.hash);

    result_t l1 = run_on(42, 1), l2 = run_on(42, 2), l4 = run_on(42, 4), l5 = run_on(43, 2);
    printf("LP executor, seed 42: hash %016llx steps %llu dgrams %llu echoes %llu net trace "
           "%016llx\n",
           (unsigned long long)l1.hash, (unsigned long long)l1.steps,
           (unsigned long long)l1.received, (unsigned long long)l1.echoes,
           (unsigned long long)l1.net.trace);
    CHECK(l1.steps > 400);
    CHECK(l1.received > 100);
    CHECK(l1.echoes > 20);     /* streams crossed processes both ways */
    CHECK(l1.net.blocked > 0); /* the partition ran at a window boundary */
    const result_t *same[] = {&l2, &l4};
    for (int k = 0; k < 2; k++) {
        CHECK_EQ(same[k]->hash, l1.hash);
        CHECK_EQ(same[k]->steps, l1.steps);
        CHECK_EQ(same[k]->digest, l1.digest);
        CHECK_EQ(same[k]->received, l1.received);
        CHECK_EQ(same[k]->echoes, l1.echoes);
        CHECK_EQ(same[k]->net.trace, l1.net.trace);
        CHECK_EQ(same[k]->net.delivered, l1.net.delivered);
    }
    CHECK(l5.hash != l1.hash);
    printf("ok\n");
    return 0;
}
