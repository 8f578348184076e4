/*
 * tests/unit/actors/test_actor_supervisor.c: a supervisor restarts a failing child with
 * exponential backoff (exact virtual times), keeps its address, and gives up after
 * max_restarts: it fails and its own parent is told. A child that recovers keeps running. The
 * restart count decays: a child that crashes rarely (each time after running longer than
 * healthy_after) is restarted forever, at the initial backoff; one that crashes again soon
 * after each restart exhausts the budget. The child's address is written to id_out.
 */
#include <string.h>

#include "actors/sim.h"
#include "actors/supervisor.h"
#include "tests/check.h"

#define MS 1000000ull

enum { T_WORK = 1 };

static uint64_t g_starts[16];
static int g_nstarts, g_nstops;
static int g_fail_starts; /* the child fails this many of its first starts */
static mesh_actor_id_t g_child_ids[16];

/* The child: fails on its first message when told to, counts its starts. */
static int child_start(mesh_actor_t *self, void *arg)
{
    if (g_nstarts < 16) {
        g_child_ids[g_nstarts] = mesh_self(self);
        g_starts[g_nstarts] = mesh_now(self);
    }
    g_nstarts++;
    /* Ask ourselves for work: the failure happens in on_message. */
    return mesh_send(self, mesh_self(self), T_WORK, NULL, 0);
}

static int child_msg(mesh_actor_t *self, mesh_msg_t *m)
{
    if (m->type == T_WORK && g_nstarts <= g_fail_starts)
        return -1;
    return 0;
}

static void child_stop(mesh_actor_t *self, int reason)
{
    g_nstops++;
}

static const mesh_actor_ops_t child_ops = {
    .name = "child", .on_start = child_start, .on_message = child_msg, .on_stop = child_stop};

static const mesh_child_spec_t children[] = {{.ops = &child_ops}};
static const mesh_supervisor_spec_t spec = {.name = "sup",
                                            .children = children,
                                            .nchildren = 1,
                                            .max_restarts = 3,
                                            .backoff_initial_ns = 100 * MS,
                                            .backoff_max_ns = 300 * MS};

/* The supervisor's parent: records the exit notice. */
static int g_parent_exits, g_parent_reason = -1;
static mesh_actor_id_t g_sup;

static int parent_start(mesh_actor_t *self, void *arg)
{
    mesh_spawn_opts_t o = {.name = "sup"};
    return mesh_spawn(self, &mesh_supervisor_ops, (void *)&spec, &o, &g_sup);
}

static int parent_msg(mesh_actor_t *self, mesh_msg_t *m)
{
    if (m->type == MESH_MSG_CHILD_EXIT) {
        const mesh_child_exit_t *ce = mesh_msg_as(m, mesh_child_exit_t);
        CHECK_EQ(ce->child, g_sup);
        CHECK_EQ(ce->restarting, 0);
        g_parent_reason = ce->reason;
        g_parent_exits++;
    }
    return 0;
}

static const mesh_actor_ops_t parent_ops = {
    .name = "parent", .on_start = parent_start, .on_message = parent_msg};

static void reset(int fail_starts)
{
    memset(g_starts, 0, sizeof(g_starts));
    g_nstarts = g_nstops = 0;
    g_fail_starts = fail_starts;
    g_parent_exits = 0;
    g_parent_reason = -1;
}

static void test_give_up(void)
{
    reset(1000);
    mesh_exec_t *sim = mesh_sim_new(5);
    mesh_actor_id_t parent;
    CHECK_EQ(mesh_exec_spawn(sim, &parent_ops, NULL, NULL, &parent), 0);
    uint64_t t0 = mesh_sim_now(sim);
    mesh_sim_run(sim, 100000);
    /* 1 start + 3 restarts, after 100, 200, 300 (capped) ms. */
    CHECK_EQ(g_nstarts, 4);
    CHECK_EQ(g_starts[0] - t0, 0);
    CHECK_EQ(g_starts[1] - g_starts[0], 100 * MS);
    CHECK_EQ(g_starts[2] - g_starts[1], 200 * MS);
    CHECK_EQ(g_starts[3] - g_starts[2], 300 * MS);
    for (int i = 1; i < 4; i++)
        CHECK_EQ(g_child_ids[i], g_child_ids[0]); /* same address across restarts */
    CHECK_EQ(g_nstops, 4);
    CHECK_EQ(g_parent_exits, 1);
    CHECK_EQ(g_parent_reason, MESH_STOP_FAILED);
    /* The supervisor and its child are gone. */
    CHECK_EQ(mesh_exec_send(sim, g_sup, 1, NULL, 0), -MESH_ENOENT);
    CHECK_EQ(mesh_exec_send(sim, g_child_ids[0], 1, NULL, 0), -MESH_ENOENT);
    mesh_exec_free(sim);
}

/* While the child waits for its restart, sends to it report "restarting". */
static int g_probe_rc = 1;
static void probe(void *arg)
{
    g_probe_rc = mesh_exec_send(arg, g_child_ids[0], 1, NULL, 0);
}

static void test_recover(void)
{
    reset(2);
    mesh_exec_t *sim = mesh_sim_new(6);
    mesh_actor_id_t parent;
    CHECK_EQ(mesh_exec_spawn(sim, &parent_ops, NULL, NULL, &parent), 0);
    mesh_sim_call_at(sim, mesh_sim_now(sim) + 50 * MS, probe, sim);
    mesh_sim_run(sim, 100000);
    CHECK_EQ(g_probe_rc, -MESH_EAGAIN);
    CHECK_EQ(g_nstarts, 3); /* failed twice, then runs */
    CHECK_EQ(g_starts[2] - g_starts[1], 200 * MS);
    CHECK_EQ(g_parent_exits, 0);
    CHECK_EQ(mesh_exec_send(sim, g_child_ids[0], 1, NULL, 0), 0);
    /* Stopping the parent stops the supervisor and the child. */
    CHECK_EQ(mesh_exec_stop(sim, parent), 0);
    mesh_sim_run(sim, 100000);
    CHECK_EQ(g_nstops, 3);
    CHECK_EQ(mesh_exec_send(sim, g_child_ids[0], 1, NULL, 0), -MESH_ENOENT);
    mesh_exec_free(sim);
}

/* Crash faults injected from outside (mesh_sim_crash), as the simulations do. */
typedef struct crash_at {
    mesh_exec_t *sim;
} crash_at_t;

static mesh_actor_id_t g_decay_child;

static void crash(void *arg)
{
    crash_at_t *c = arg;
    mesh_sim_crash(c->sim, g_decay_child);
}

static const mesh_child_spec_t decay_children[] = {{.ops = &child_ops, .id_out = &g_decay_child}};
static const mesh_supervisor_spec_t decay_spec = {.name = "sup",
                                                  .children = decay_children,
                                                  .nchildren = 1,
                                                  .max_restarts = 3,
                                                  .backoff_initial_ns = 100 * MS,
                                                  .backoff_max_ns = 300 * MS,
                                                  .healthy_after_ns = 1000 * MS};

static int decay_parent_start(mesh_actor_t *self, void *arg)
{
    mesh_spawn_opts_t o = {.name = "sup"};
    return mesh_spawn(self, &mesh_supervisor_ops, (void *)&decay_spec, &o, &g_sup);
}

static const mesh_actor_ops_t decay_parent_ops = {
    .name = "parent", .on_start = decay_parent_start, .on_message = parent_msg};

static void test_decay(int gap_ms, int crashes, int want_give_up)
{
    reset(0);
    g_decay_child = 0;
    mesh_exec_t *sim = mesh_sim_new(7);
    mesh_actor_id_t parent;
    CHECK_EQ(mesh_exec_spawn(sim, &decay_parent_ops, NULL, NULL, &parent), 0);
    crash_at_t c = {sim};
    uint64_t t0 = mesh_sim_now(sim), t = t0;
    for (int i = 0; i < crashes; i++) {
        t += (uint64_t)gap_ms * MS;
        mesh_sim_call_at(sim, t, crash, &c);
    }
    mesh_sim_run_until(sim, t + 5000 * MS);
    CHECK(g_decay_child != 0); /* the supervisor wrote the child's address */
    if (want_give_up) {
        CHECK_EQ(g_nstarts, 4); /* 1 start + 3 restarts, then the budget is gone */
        CHECK_EQ(g_parent_exits, 1);
        CHECK_EQ(g_parent_reason, MESH_STOP_FAILED);
    } else {
        CHECK_EQ(g_nstarts, crashes + 1); /* every crash restarted */
        CHECK_EQ(g_parent_exits, 0);
        /* each restart at the initial backoff: the count started over every time */
        for (int i = 1; i < 16 && i <= crashes; i++)
            CHECK_EQ(g_starts[i] - (t0 + (uint64_t)i * (uint64_t)gap_ms * MS), 100 * MS);
        CHECK_EQ(mesh_exec_send(sim, g_decay_child, 1, NULL, 0), 0);
    }
    mesh_exec_free(sim);
}

int main(void)
{
    test_give_up();
    test_recover();
    test_decay(1500, 10, 0); /* rare crashes: restarted forever */
    test_decay(150, 10, 1);  /* crashes soon after each restart: gives up */
    printf("ok\n");
    return 0;
}
