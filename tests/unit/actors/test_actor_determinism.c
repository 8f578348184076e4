/*
 * tests/unit/actors/test_actor_determinism.c: the simulated executor is reproducible.
 *
 * A small gossip-like scenario: 5 nodes, each an actor with a datagram socket on its own
 * simulated host, pinging random peers on timers over a lossy network with a partition in
 * the middle, plus actor-to-actor messages. Same seed: same trace hash and same result;
 * another seed: another hash.
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
    mesh_addr_t addrs[NNODES];
    int index;
    uint64_t received; /* datagrams */
    uint64_t notes;    /* actor messages */
    uint64_t digest;
} node_arg_t;

static mesh_actor_id_t g_ids[NNODES];

typedef struct {
    mesh_udp_t *sock;
} node_state_t;

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
        mesh_send(self, g_ids[other], T_NOTE, &v, sizeof(v));
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
    uint64_t hash, steps, digest, received, notes;
    mesh_simnet_stats_t net;
} result_t;

static result_t run(uint64_t seed)
{
    mesh_exec_t *sim = mesh_sim_new(seed);
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
        }
        args[i].io = mesh_simnet_host(net, ip);
        args[i].index = i;
        CHECK(args[i].io);
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
    }
    mesh_simnet_stats(net, &r.net);
    mesh_exec_free(sim);
    return r;
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
    printf("ok\n");
    return 0;
}
