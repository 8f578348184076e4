/*
 * bench/actors/bench_actors.c: actor message throughput on the real executor.
 *
 * A producer actor sends N small (16-byte) messages to a consumer in bursts, continuing on a
 * message to itself so it never blocks the loop, with a credit window so the consumer's
 * mailbox does not overflow (the consumer returns credit every ACK messages). The "full"
 * column counts sends that were refused anyway.
 * Scenarios: both on one worker loop (same-thread), control loop -> worker loop, and worker
 * loop -> worker loop. Prints a table of messages per second.
 * Usage: bench_actors [messages_same_thread] [messages_cross_thread]
 */
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

#include "actors/exec.h"
#include "common/log.h"

enum { T_DATA = 1, T_MORE, T_CREDIT };

#define BURST  256   /* messages per producer turn */
#define WINDOW 32768 /* producer's in-flight limit (the consumer's mailbox holds 65536) */
#define ACK    4096  /* the consumer returns credit every ACK messages */

typedef struct {
    mesh_exec_t *exec;
    mesh_actor_id_t consumer, producer;
    uint64_t n;
    uint64_t sent, full, received, acked;
    int waiting;
    uint64_t t_start, t_end;
} bench_t;

static int consumer_msg(mesh_actor_t *self, mesh_msg_t *m)
{
    bench_t *b = mesh_arg(self);
    if (++b->received == b->n) {
        b->t_end = uv_hrtime();
        mesh_exec_shutdown(b->exec);
    } else if (b->received % ACK == 0) {
        uint64_t r = b->received;
        mesh_send(self, b->producer, T_CREDIT, &r, sizeof(r));
    }
    return 0;
}

static int producer_msg(mesh_actor_t *self, mesh_msg_t *m)
{
    bench_t *b = mesh_arg(self);
    uint64_t payload[2] = {b->sent, 0};
    if (m->type == T_CREDIT) {
        b->acked = *mesh_msg_as(m, uint64_t);
        if (!b->waiting)
            return 0;
        b->waiting = 0;
    }
    for (int i = 0; i < BURST && b->sent < b->n && b->sent - b->acked < WINDOW; i++) {
        payload[0] = b->sent;
        int rc = mesh_send(self, b->consumer, T_DATA, payload, sizeof(payload));
        if (rc == -MESH_EFULL) {
            b->full++;
            break;
        }
        b->sent++;
    }
    if (b->sent < b->n) {
        if (b->sent - b->acked < WINDOW)
            mesh_send(self, mesh_self(self), T_MORE, NULL, 0);
        else
            b->waiting = 1; /* the next credit resumes us */
    }
    return 0;
}

static int producer_start(mesh_actor_t *self, void *arg)
{
    bench_t *b = arg;
    b->t_start = uv_hrtime();
    b->producer = mesh_self(self);
    return mesh_send(self, mesh_self(self), T_MORE, NULL, 0);
}

static const mesh_actor_ops_t consumer_ops = {.name = "consumer", .on_message = consumer_msg};
static const mesh_actor_ops_t producer_ops = {
    .name = "producer", .on_start = producer_start, .on_message = producer_msg};

static double run(int from_loop, int to_loop, uint64_t n, uint64_t *full)
{
    mesh_exec_opts_t o = {.workers = 2, .no_signals = 1};
    bench_t b = {.n = n};
    b.exec = mesh_exec_new(&o);
    mesh_spawn_opts_t co = {.loop = MESH_ON_LOOP(to_loop), .mailbox = 65536};
    mesh_spawn_opts_t po = {.loop = MESH_ON_LOOP(from_loop)};
    mesh_exec_spawn(b.exec, &consumer_ops, &b, &co, &b.consumer);
    mesh_exec_spawn(b.exec, &producer_ops, &b, &po, NULL);
    mesh_exec_run(b.exec);
    mesh_exec_free(b.exec);
    *full = b.full;
    return (double)n / ((double)(b.t_end - b.t_start) / 1e9);
}

int main(int argc, char **argv)
{
    uint64_t n_same = argc > 1 ? strtoull(argv[1], NULL, 10) : 20000000ull;
    uint64_t n_cross = argc > 2 ? strtoull(argv[2], NULL, 10) : 10000000ull;
    struct {
        const char *name;
        int from, to;
        uint64_t n;
    } cases[] = {
        {"same-thread (worker 1 -> worker 1)", 1, 1, n_same},
        {"cross-thread (control -> worker 1)", 0, 1, n_cross},
        {"cross-thread (worker 1 -> worker 2)", 1, 2, n_cross},
    };
    mesh_log_init("bench", MESH_LOG_WARN, MESH_LOG_FORMAT_AUTO);
    printf("%-40s %12s %14s %10s\n", "scenario", "messages", "msgs/s", "full");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t full = 0;
        double rate = run(cases[i].from, cases[i].to, cases[i].n, &full);
        printf("%-40s %12llu %14.0f %10llu\n", cases[i].name, (unsigned long long)cases[i].n, rate,
               (unsigned long long)full);
        fflush(stdout);
    }
    return 0;
}
