/*
 * bench/audit/audit_bench.c: audit events per second from the workers to Kafka's
 * acknowledgement, through the production audit actor (spool on disk, librdkafka), and the
 * spool's write amplification on the way. Prints the numbers; not a test.
 *
 *   audit_bench --kafka BOOTSTRAP [--events N] [--workers W] [--dir DIR] [--topic T]
 *               [--in-flight N]
 *
 * W worker loops push breaker events into their own event rings (actors/evring.h, as the
 * sidecar's breaker does: a structured event, nothing allocated, never blocking) as fast as the
 * rings take them, and poke a collector on the control loop, which drains each ring into one
 * AUDIT_MSG_BATCH message per 64 events for the audit actor, as node.c's take_events does. The
 * audit actor encodes each event, appends it to the spool in DIR (batched writes, fdatasync off
 * the loop) and hands it to Kafka. The clock runs from the first push to the acknowledgement of
 * the last event. Write amplification: bytes the spool wrote per payload byte, and bytes the
 * kernel sent to the disk (/proc/self/io write_bytes) per payload byte.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "actors/evring.h"
#include "actors/exec.h"
#include "audit/audit_actor.h"
#include "audit/audit_api.h"
#include "audit/audit_io.h"
#include "common/log.h"

enum {
    B_PRODUCE = 0x42450001u, /* worker: push more */
    B_POKE = 0x42450002u,    /* collector: ring i holds events */
    B_TICK = 0x42450003u,    /* monitor */
};

#define RING 1024

typedef struct bench {
    mesh_exec_t *exec;
    int workers;
    uint64_t events, per_worker;
    mesh_evring_t *rings;
    mesh_actor_id_t collector;
    audit_api_t api;
    audit_args_t *args;
    double t0, t1;
    uint64_t ring_full, waits;
    audit_actor_stats_t final; /* the audit actor's counters when the last event was acked */
    uint64_t io_end;
} bench_t;

static bench_t B;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t io_write_bytes(void)
{
    FILE *f = fopen("/proc/self/io", "r");
    if (!f)
        return 0;
    char line[128];
    uint64_t v = 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "write_bytes: %" SCNu64, &v) == 1)
            break;
    fclose(f);
    return v;
}

/* ---- a worker: pushes breaker events into its ring ---------------------------------------- */

typedef struct wk {
    int index;
    uint64_t pushed;
} wk_t;

static const char INSTANCE[] = "127.0.0.1:50051";

static int wk_start(mesh_actor_t *self, void *arg)
{
    wk_t *w = mesh_state(self);
    w->index = (int)(intptr_t)arg;
    return mesh_send(self, mesh_self(self), B_PRODUCE, NULL, 0);
}

static int wk_message(mesh_actor_t *self, mesh_msg_t *m)
{
    wk_t *w = mesh_state(self);
    if (m->type != B_PRODUCE)
        return 0;
    mesh_evring_t *r = &B.rings[w->index];
    int full = 0;
    for (int k = 0; k < 256 && w->pushed < B.per_worker; k++) {
        struct timeval tv;
        gettimeofday(&tv, NULL);
        mesh_event_t e = {.type = MESH_EV_BREAKER,
                          .worker = (uint32_t)w->index,
                          .c = (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec};
        e.breaker.instance = INSTANCE;
        e.breaker.from = (uint8_t)(w->pushed % 3);
        e.breaker.to = (uint8_t)((w->pushed + 1) % 3);
        snprintf(e.breaker.reason, sizeof(e.breaker.reason),
                 "5 consecutive failures; open for "
                 "5000 ms");
        if (mesh_evring_push(r, &e) != 0) {
            mesh_evring_take_dropped(r); /* retried, not dropped */
            full = 1;
            B.ring_full++;
            break;
        }
        w->pushed++;
    }
    if (mesh_evring_want_poke(r)) {
        int32_t i = w->index;
        if (mesh_send(self, B.collector, B_POKE, &i, sizeof(i)) != 0)
            mesh_evring_done(r);
    }
    if (w->pushed < B.per_worker) {
        if (full)
            mesh_timer_start(self, 200000, 0, B_PRODUCE, NULL); /* the ring is full: 0.2 ms */
        else
            mesh_send(self, mesh_self(self), B_PRODUCE, NULL, 0);
    } else if (r->head != r->tail) {
        /* Done pushing: a poke refused while the collector was still draining would strand
         * the last events; poke again until the ring is empty (node.c's worker tick does this
         * every 250 ms). */
        mesh_timer_start(self, 1000000, 0, B_PRODUCE, NULL);
    }
    return 0;
}

static const mesh_actor_ops_t wk_ops = {.name = "bench-worker",
                                        .state_size = sizeof(wk_t),
                                        .on_start = wk_start,
                                        .on_message = wk_message};

/* ---- the collector: node.c's take_events ---------------------------------------------------- */

/* Drains ring i in batches of 64; while the audit actor's backlog is full it leaves the rest in
 * the ring (the workers then wait for room) and looks again in 1 ms: a closed loop, nothing
 * dropped, so the rate measured is what the actor sustains. 0 when it had to stop. */
static int drain(mesh_actor_t *self, int i)
{
    mesh_evring_t *r = &B.rings[i];
    size_t k;
    do {
        if (atomic_load(&B.api.backlog) + 64 > AUDIT_BACKLOG_MAX)
            return 0; /* the poke stays outstanding: the timer serves it */
        audit_batch_t *b = malloc(sizeof(*b) + 64 * sizeof(mesh_event_t));
        k = mesh_evring_take(r, b->ev, 64);
        b->n = k;
        if (k && audit_api_reserve(&B.api, k) &&
            mesh_send_ptr(self, B.api.actor, AUDIT_MSG_BATCH, b, free) == 0)
            continue;
        free(b);
    } while (k == 64);
    mesh_evring_done(r);
    return 1;
}

static int co_message(mesh_actor_t *self, mesh_msg_t *m)
{
    static int timer_on;
    if (m->type != B_POKE)
        return 0;
    const int32_t *i = mesh_msg_as(m, int32_t);
    int stalled = 0;
    if (m->flags & MESH_MSG_F_TIMER) {
        timer_on = 0;
        for (int w = 0; w < B.workers; w++)
            if (atomic_load(&B.rings[w].poked))
                stalled |= !drain(self, w);
    } else if (i) {
        stalled = !drain(self, *i);
    }
    if (stalled && !timer_on) {
        B.waits++;
        timer_on = mesh_timer_start(self, 1000000, 0, B_POKE, NULL) == 0;
    }
    return 0;
}

static const mesh_actor_ops_t co_ops = {.name = "bench-collector", .on_message = co_message};

/* ---- the monitor: stops the run once every event is acknowledged ----------------------------- */

static int mo_start(mesh_actor_t *self, void *arg)
{
    (void)arg;
    return mesh_timer_start(self, 5000000, 5000000, B_TICK, NULL) == 0 ? 0 : -1;
}

static int mo_message(mesh_actor_t *self, mesh_msg_t *m)
{
    (void)self;
    if (m->type != B_TICK)
        return 0;
    audit_actor_stats_t s;
    audit_actor_get_stats(B.args, &s);
    static int ticks;
    if (getenv("AUDIT_BENCH_DEBUG") && ++ticks % 100 == 0)
        fprintf(stderr, "acked %llu fsyncs %llu writes %llu backlog %llu\n",
                (unsigned long long)s.acked, (unsigned long long)s.spool_fsyncs,
                (unsigned long long)s.spool_writes,
                (unsigned long long)atomic_load(&B.api.backlog));
    if (s.acked + s.dropped_total >= B.events && !B.t1) {
        B.t1 = now_s();
        B.final = s;
        B.io_end = io_write_bytes();
        mesh_exec_shutdown(B.exec);
    }
    return 0;
}

static const mesh_actor_ops_t mo_ops = {
    .name = "bench-monitor", .on_start = mo_start, .on_message = mo_message};

/* ---- main --------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    const char *kafka = NULL, *dir = NULL, *topic = "meshd.audit.bench";
    uint64_t events = 1000000;
    int workers = 1;
    uint32_t in_flight = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--kafka"))
            kafka = argv[i + 1];
        else if (!strcmp(argv[i], "--events"))
            events = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--workers"))
            workers = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--dir"))
            dir = argv[i + 1];
        else if (!strcmp(argv[i], "--topic"))
            topic = argv[i + 1];
        else if (!strcmp(argv[i], "--in-flight"))
            in_flight = (uint32_t)atoi(argv[i + 1]);
    }
    if (!kafka || workers < 1 || !events) {
        fprintf(stderr, "usage: audit_bench --kafka BOOTSTRAP [--events N] [--workers W] "
                        "[--dir DIR] [--topic T] [--in-flight N]\n");
        return 2;
    }
    char tmp[] = "/tmp/meshd-audit-bench-XXXXXX";
    if (!dir && !(dir = mkdtemp(tmp))) {
        perror("mkdtemp");
        return 1;
    }
    mesh_log_init("bench", MESH_LOG_WARN, MESH_LOG_FORMAT_TEXT);
    B.workers = workers;
    B.per_worker = (events + (uint64_t)workers - 1) / (uint64_t)workers;
    B.events = B.per_worker * (uint64_t)workers;
    char err[256];
    if (audit_api_init(&B.api, "bench", "sidecar", err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    mesh_exec_opts_t eo = {.workers = workers, .no_signals = 1};
    B.exec = mesh_exec_new(&eo);
    B.rings = calloc((size_t)workers, sizeof(*B.rings));
    for (int i = 0; i < workers; i++)
        mesh_evring_init(&B.rings[i], RING);
    static audit_kafka_factory_t kf;
    kf.cfg = (audit_kafka_cfg_t){.brokers = kafka, .topic = topic, .client_id = "audit-bench"};
    static audit_posix_factory_t pf;
    pf.dir = dir;
    audit_actor_cfg_t ac = {.mode = AUDIT_MODE_KAFKA,
                            .spool = {.max_bytes = 2ull << 30}, /* a slow broker: no drops */
                            .api = &B.api,
                            .max_in_flight = in_flight,
                            .sink_new = audit_kafka_factory,
                            .sink_arg = &kf,
                            .fs = audit_posix_fs_factory,
                            .fs_arg = &pf,
                            .spool_dir = dir,
                            .brokers = kafka,
                            .topic = topic};
    B.args = audit_args_new(&ac);
    mesh_spawn_opts_t so = {.loop = MESH_LOOP_CONTROL, .mailbox = AUDIT_ACTOR_MAILBOX};
    if (!B.exec || !B.args ||
        mesh_exec_spawn(B.exec, &audit_actor_ops, B.args, &so, &B.api.actor) != 0 ||
        mesh_exec_spawn(B.exec, &co_ops, NULL,
                        &(mesh_spawn_opts_t){.loop = MESH_LOOP_CONTROL, .mailbox = 1u << 16},
                        &B.collector) != 0 ||
        mesh_exec_spawn(B.exec, &mo_ops, NULL, &(mesh_spawn_opts_t){.loop = MESH_LOOP_CONTROL},
                        NULL) != 0) {
        fprintf(stderr, "cannot start\n");
        return 1;
    }
    uint64_t io0 = io_write_bytes();
    B.t0 = now_s();
    for (int i = 0; i < workers; i++) {
        mesh_spawn_opts_t wo = {.loop = MESH_ON_LOOP(i + 1)};
        mesh_exec_spawn(B.exec, &wk_ops, (void *)(intptr_t)i, &wo, NULL);
    }
    mesh_exec_run(B.exec);
    double secs = (B.t1 ? B.t1 : now_s()) - B.t0;
    const audit_actor_stats_t *s = &B.final;
    printf("events %" PRIu64 " from %d worker%s: %.2f s, %.0f events/s to Kafka acknowledgement"
           " (ring full %" PRIu64 " times, actor behind %" PRIu64 " times, dropped %" PRIu64 ")\n",
           B.events, workers, workers == 1 ? "" : "s", secs, (double)B.final.acked / secs,
           B.ring_full, B.waits, B.final.dropped_total);
    double payload = (double)(s->spool_payload ? s->spool_payload : 1);
    printf("spool: %" PRIu64 " records, %.1f MB payload, %" PRIu64 " writes, %" PRIu64
           " fsyncs; bytes written / payload %.3f; kernel write_bytes / payload %.3f\n",
           s->accepted, payload / 1e6, s->spool_writes, s->spool_fsyncs,
           (double)s->spool_bytes_written / payload, (double)(B.io_end - io0) / payload);
    mesh_exec_free(B.exec);
    audit_args_free(B.args);
    return 0;
}
