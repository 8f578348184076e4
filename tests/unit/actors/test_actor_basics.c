/*
 * tests/unit/actors/test_actor_basics.c: the actor API under the simulated executor:
 * per-sender ordering, errors (unknown / stopped actor, full mailbox), request/reply with a
 * timeout (and a late reply dropped), timers at exact virtual times.
 */
#include <string.h>

#include "actors/actor.h"
#include "actors/sim.h"
#include "tests/check.h"

#define MS 1000000ull

enum { T_SEQ = 1, T_GO, T_PING, T_PONG, T_SLOW, T_TICK, T_ONCE, T_LATE_DONE };

/* ---- ordering: 3 senders, each sends 0..N-1 to a sink that checks the order per sender. */

#define N_ORDER 2000
typedef struct {
    mesh_actor_id_t from;
    uint32_t seq;
} seq_msg_t;

typedef struct {
    uint32_t next[8];
    mesh_actor_id_t senders[8];
    int nsenders;
    uint64_t received;
    int bad;
} sink_state_t;

static sink_state_t *g_sink;

static int sink_start(mesh_actor_t *self, void *arg)
{
    g_sink = mesh_state(self);
    return 0;
}

static int sink_msg(mesh_actor_t *self, mesh_msg_t *m)
{
    sink_state_t *s = mesh_state(self);
    const seq_msg_t *sm = mesh_msg_as(m, seq_msg_t);
    if (m->type != T_SEQ || !sm)
        return 0;
    int i = 0;
    while (i < s->nsenders && s->senders[i] != m->from)
        i++;
    if (i == s->nsenders)
        s->senders[s->nsenders++] = m->from;
    if (sm->seq != s->next[i])
        s->bad++;
    s->next[i] = sm->seq + 1;
    s->received++;
    return 0;
}

static const mesh_actor_ops_t sink_ops = {.name = "sink",
                                          .state_size = sizeof(sink_state_t),
                                          .on_start = sink_start,
                                          .on_message = sink_msg};

typedef struct {
    uint32_t seq;
    mesh_actor_id_t to;
} src_state_t;

static int src_msg(mesh_actor_t *self, mesh_msg_t *m)
{
    src_state_t *s = mesh_state(self);
    if (m->type == T_GO)
        s->to = *mesh_msg_as(m, mesh_actor_id_t);
    /* Send a burst, then continue on our own message so other senders interleave. */
    for (int k = 0; k < 7 && s->seq < N_ORDER; k++) {
        seq_msg_t sm = {mesh_self(self), s->seq};
        int rc = mesh_send(self, s->to, T_SEQ, &sm, sizeof(sm));
        if (rc == -MESH_EFULL)
            break; /* retry on the next turn */
        CHECK_EQ(rc, 0);
        s->seq++;
    }
    if (s->seq < N_ORDER)
        CHECK_EQ(mesh_send(self, mesh_self(self), T_GO + 100, NULL, 0), 0);
    return 0;
}

static const mesh_actor_ops_t src_ops = {
    .name = "src", .state_size = sizeof(src_state_t), .on_message = src_msg};

static void test_ordering(void)
{
    mesh_exec_t *sim = mesh_sim_new(7);
    mesh_actor_id_t sink, src[3];
    mesh_spawn_opts_t small = {.mailbox = 16}; /* small: senders see "full" and retry */
    CHECK_EQ(mesh_exec_spawn(sim, &sink_ops, NULL, &small, &sink), 0);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(mesh_exec_spawn(sim, &src_ops, NULL, NULL, &src[i]), 0);
        CHECK_EQ(mesh_exec_send(sim, src[i], T_GO, &sink, sizeof(sink)), 0);
    }
    mesh_sim_run(sim, 10000000);
    CHECK_EQ(g_sink->received, 3 * N_ORDER);
    CHECK_EQ(g_sink->bad, 0);
    CHECK_EQ(g_sink->nsenders, 3);
    mesh_exec_free(sim);
}

/* ---- errors: unknown id, stopped actor, full mailbox, oversized inline payload. */

static int noop_msg(mesh_actor_t *self, mesh_msg_t *m)
{
    return 0;
}
static const mesh_actor_ops_t noop_ops = {.name = "noop", .on_message = noop_msg};

static void free_counter(void *p)
{
    (*(int *)p)++;
}

static void test_errors(void)
{
    mesh_exec_t *sim = mesh_sim_new(1);
    mesh_actor_id_t a;
    mesh_spawn_opts_t o = {.mailbox = 4};
    CHECK_EQ(mesh_exec_spawn(sim, &noop_ops, NULL, &o, &a), 0);
    CHECK_EQ(mesh_exec_send(sim, 0, 1, NULL, 0), -MESH_ENOENT);
    CHECK_EQ(mesh_exec_send(sim, 0xdead00000001ull, 1, NULL, 0), -MESH_ENOENT);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(mesh_exec_send(sim, a, 1, NULL, 0), 0);
    CHECK_EQ(mesh_exec_send(sim, a, 1, NULL, 0), -MESH_EFULL);
    int freed = 0;
    /* On error a pointer payload stays the caller's. */
    CHECK_EQ(mesh_exec_send_ptr(sim, a, 1, &freed, free_counter), -MESH_EFULL);
    CHECK_EQ(freed, 0);
    char big[MESH_MSG_INLINE + 1] = {0};
    CHECK_EQ(mesh_exec_send(sim, a, 1, big, sizeof(big)), -MESH_E2BIG);
    mesh_sim_run(sim, 1000);
    CHECK_EQ(mesh_exec_send_ptr(sim, a, 1, &freed, free_counter), 0);
    mesh_sim_run(sim, 1000);
    CHECK_EQ(freed, 1); /* released after delivery */
    CHECK_EQ(mesh_exec_stop(sim, a), 0);
    mesh_sim_run(sim, 1000);
    CHECK_EQ(mesh_exec_send(sim, a, 1, NULL, 0), -MESH_ENOENT);
    CHECK_EQ(mesh_exec_stop(sim, a), -MESH_ENOENT);
    /* A new actor reusing the slot does not answer to the old address. */
    mesh_actor_id_t b;
    CHECK_EQ(mesh_exec_spawn(sim, &noop_ops, NULL, NULL, &b), 0);
    CHECK(b != a);
    CHECK_EQ(mesh_exec_send(sim, a, 1, NULL, 0), -MESH_ENOENT);
    CHECK_EQ(mesh_exec_send(sim, b, 1, NULL, 0), 0);
    mesh_sim_run(sim, 1000);
    mesh_exec_free(sim);
}

/* ---- request/reply: the server answers T_PING at once and T_SLOW after 50 ms; the client
 * asks with a 20 ms timeout. */

typedef struct {
    uint64_t corr_fast, corr_slow;
    int got_fast, got_timeout, got_other;
    uint64_t fast_at, timeout_at, start;
} client_state_t;

static client_state_t g_client;
static mesh_actor_id_t g_server;
static int g_late_replies_sent;

typedef struct {
    mesh_msg_t req; /* a copy of the request header, enough for mesh_reply */
} server_state_t;

static int server_msg(mesh_actor_t *self, mesh_msg_t *m)
{
    server_state_t *s = mesh_state(self);
    if (m->type == T_PING) {
        uint32_t v = *mesh_msg_as(m, uint32_t) + 1;
        return mesh_reply(self, m, T_PONG, &v, sizeof(v));
    }
    if (m->type == T_SLOW) {
        s->req = *m;
        return mesh_timer_start(self, 50 * MS, 0, T_ONCE, NULL);
    }
    if (m->type == T_ONCE) {
        uint32_t v = 0;
        /* The requester's timeout already fired: this reply must be dropped quietly. */
        CHECK_EQ(mesh_reply(self, &s->req, T_PONG, &v, sizeof(v)), 0);
        g_late_replies_sent++;
    }
    return 0;
}
static const mesh_actor_ops_t server_ops = {
    .name = "server", .state_size = sizeof(server_state_t), .on_message = server_msg};

static int client_start(mesh_actor_t *self, void *arg)
{
    client_state_t *c = &g_client;
    uint32_t v = 41;
    c->start = mesh_now(self);
    CHECK_EQ(mesh_request(self, g_server, T_PING, &v, sizeof(v), 20 * MS, &c->corr_fast), 0);
    CHECK_EQ(mesh_request(self, g_server, T_SLOW, NULL, 0, 20 * MS, &c->corr_slow), 0);
    CHECK(c->corr_fast != c->corr_slow);
    /* A request to nobody fails at once. */
    CHECK_EQ(mesh_request(self, 0x77700000001ull, T_PING, &v, sizeof(v), MS, NULL), -MESH_ENOENT);
    return 0;
}

static int client_msg(mesh_actor_t *self, mesh_msg_t *m)
{
    client_state_t *c = &g_client;
    if (m->type == T_PONG && (m->flags & MESH_MSG_F_REPLY) && m->corr == c->corr_fast) {
        CHECK_EQ(*mesh_msg_as(m, uint32_t), 42);
        c->got_fast++;
        c->fast_at = mesh_now(self);
    } else if (m->type == MESH_MSG_TIMEOUT && m->corr == c->corr_slow) {
        CHECK_EQ(m->from, g_server);
        c->got_timeout++;
        c->timeout_at = mesh_now(self);
    } else {
        c->got_other++;
    }
    return 0;
}
static const mesh_actor_ops_t client_ops = {
    .name = "client", .on_start = client_start, .on_message = client_msg};

static void test_request_reply(void)
{
    mesh_exec_t *sim = mesh_sim_new(3);
    memset(&g_client, 0, sizeof(g_client));
    CHECK_EQ(mesh_exec_spawn(sim, &server_ops, NULL, NULL, &g_server), 0);
    mesh_actor_id_t client;
    CHECK_EQ(mesh_exec_spawn(sim, &client_ops, NULL, NULL, &client), 0);
    mesh_sim_run(sim, 100000);
    CHECK_EQ(g_client.got_fast, 1);
    CHECK_EQ(g_client.fast_at, g_client.start); /* messages take no virtual time */
    CHECK_EQ(g_client.got_timeout, 1);
    CHECK_EQ(g_client.timeout_at - g_client.start, 20 * MS);
    CHECK_EQ(g_late_replies_sent, 1);
    CHECK_EQ(g_client.got_other, 0); /* the late reply was dropped */
    mesh_exec_free(sim);
}

/* ---- timers: one-shots in deadline order (ties in start order), a periodic one, a cancel. */

typedef struct {
    uint64_t t0;
    uint64_t tick_id;
    int ticks;
} timer_state_t;

static uint64_t g_fired_at[16];
static uint32_t g_fired_type[16];
static int g_nfired;

static int timers_start(mesh_actor_t *self, void *arg)
{
    timer_state_t *s = mesh_state(self);
    s->t0 = mesh_now(self);
    uint64_t cancel_me;
    CHECK_EQ(mesh_timer_start(self, 30 * MS, 0, 30, NULL), 0);
    CHECK_EQ(mesh_timer_start(self, 10 * MS, 0, 10, NULL), 0);
    CHECK_EQ(mesh_timer_start(self, 20 * MS, 0, 21, NULL), 0);
    CHECK_EQ(mesh_timer_start(self, 20 * MS, 0, 22, NULL), 0);
    CHECK_EQ(mesh_timer_start(self, 15 * MS, 0, 99, &cancel_me), 0);
    CHECK_EQ(mesh_timer_start(self, 7 * MS, 7 * MS, T_TICK, &s->tick_id), 0);
    CHECK_EQ(mesh_timer_stop(self, cancel_me), 0);
    CHECK_EQ(mesh_timer_stop(self, cancel_me), -MESH_ENOENT);
    return 0;
}

static int timers_msg(mesh_actor_t *self, mesh_msg_t *m)
{
    timer_state_t *s = mesh_state(self);
    CHECK(m->flags & MESH_MSG_F_TIMER);
    if (g_nfired < 16) {
        g_fired_at[g_nfired] = mesh_now(self) - s->t0;
        g_fired_type[g_nfired++] = m->type;
    }
    if (m->type == T_TICK && ++s->ticks == 3)
        CHECK_EQ(mesh_timer_stop(self, s->tick_id), 0);
    return 0;
}
static const mesh_actor_ops_t timers_ops = {.name = "timers",
                                            .state_size = sizeof(timer_state_t),
                                            .on_start = timers_start,
                                            .on_message = timers_msg};

static void test_timers(void)
{
    mesh_exec_t *sim = mesh_sim_new(11);
    mesh_actor_id_t a;
    CHECK_EQ(mesh_exec_spawn(sim, &timers_ops, NULL, NULL, &a), 0);
    uint64_t t0 = mesh_sim_now(sim);
    mesh_sim_run(sim, 1000);
    /* Expected: tick@7, 10@10, tick@14, 21@20, 22@20, tick@21, 30@30 (then no more ticks). */
    static const uint64_t at[] = {7, 10, 14, 20, 20, 21, 30};
    static const uint32_t ty[] = {T_TICK, 10, T_TICK, 21, 22, T_TICK, 30};
    CHECK_EQ(g_nfired, 7);
    for (int i = 0; i < 7; i++) {
        CHECK_EQ(g_fired_at[i], at[i] * MS);
        CHECK_EQ(g_fired_type[i], ty[i]);
    }
    CHECK_EQ(mesh_sim_now(sim) - t0, 30 * MS);
    /* run_until moves the clock even with nothing to do. */
    mesh_sim_run_until(sim, mesh_sim_now(sim) + 5 * MS);
    CHECK_EQ(mesh_sim_now(sim) - t0, 35 * MS);
    mesh_exec_free(sim);
}

int main(void)
{
    test_ordering();
    test_errors();
    test_request_reply();
    test_timers();
    printf("ok\n");
    return 0;
}
