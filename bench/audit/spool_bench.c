/*
 * bench/audit/spool_bench.c: the audit spool over the real file layer in a temporary folder:
 * appends per second with batched syncs run on a second thread (as libuv's threadpool would),
 * how long until every record is durable, read-back speed with a backlog, and write
 * amplification (bytes the spool wrote, and bytes the kernel sent to the disk, per payload
 * byte). Prints the numbers; not a test.
 *
 *   spool_bench [--records N] [--size BYTES] [--batch-ms MS] [--segment-mb MB] [--dir DIR]
 *               [--rate PER_SECOND]
 *
 * Phase 1 "live": records are appended in a tight loop while a consumer hands them out and
 * acknowledges them at once (Kafka up). Phase 2 "outage": appended with nobody reading, then
 * the backlog is read back from the files and acknowledged. With --rate the appends are paced
 * (e.g. 10000/s, the proxy load): smaller batches, so the kernel rewrites partly
 * filled pages more often (its write amplification grows).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit/spool.h"
#include "audit/spool_fs_posix.h"
#include "common/log.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t now_ms(void)
{
    return (uint64_t)(now_s() * 1000.0);
}

/* The bytes this process had the kernel send to storage (/proc/self/io write_bytes). */
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

/* The sync thread: one request at a time, as the spool asks. */
typedef struct syncer {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    audit_spool_t *sp;
    audit_spool_sync_t req;
    int busy, done, rc, quit;
    double busy_s;
} syncer_t;

static void *sync_main(void *arg)
{
    syncer_t *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->quit && !(s->busy && !s->done))
            pthread_cond_wait(&s->cv, &s->mu);
        if (s->quit)
            break;
        audit_spool_sync_t req = s->req;
        pthread_mutex_unlock(&s->mu);
        double t0 = now_s();
        int rc = audit_spool_sync_run(s->sp, &req);
        double dt = now_s() - t0;
        pthread_mutex_lock(&s->mu);
        s->busy_s += dt;
        s->rc = rc;
        s->done = 1;
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* The driver's part after each call: report a finished sync, start the next, run the timer. */
static void drive(syncer_t *s, audit_spool_t *sp)
{
    uint64_t t = now_ms();
    if (t >= audit_spool_deadline(sp))
        audit_spool_tick(sp, t);
    pthread_mutex_lock(&s->mu);
    if (s->busy && s->done) {
        audit_spool_sync_t req = s->req;
        int rc = s->rc;
        s->busy = s->done = 0;
        pthread_mutex_unlock(&s->mu);
        if (rc < 0)
            fprintf(stderr, "sync failed: %s\n", strerror(-rc));
        audit_spool_synced(sp, &req, rc, t);
        pthread_mutex_lock(&s->mu);
    }
    if (!s->busy && audit_spool_take_sync(sp, &s->req)) {
        s->busy = 1;
        s->done = 0;
        pthread_cond_signal(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
}

static void fill(uint8_t *b, size_t n, uint64_t i)
{
    /* JSON-looking bytes with a counter, so nothing compresses or repeats by accident. */
    int k = snprintf((char *)b, n, "{\"schema\":1,\"event_id\":\"%016" PRIx64 "\",\"pad\":\"", i);
    for (size_t j = (size_t)k; j < n; j++)
        b[j] = (uint8_t)('a' + (i * 31 + j * 7) % 26);
}

typedef struct phase {
    double append_s, durable_s, drain_s;
    uint64_t records;
} phase_t;

static void run(const char *dir, uint64_t records, size_t size, uint32_t batch_ms,
                uint64_t segment_mb, int live, uint64_t rate)
{
    char err[256];
    audit_spool_posix_t *pfs = audit_spool_posix_new(dir, err, sizeof(err));
    if (!pfs) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    audit_spool_fs_t layer = audit_spool_posix_fs(pfs);
    audit_spool_cfg_t cfg;
    audit_spool_cfg_default(&cfg);
    cfg.batch_ms = batch_ms;
    cfg.segment_bytes = segment_mb << 20;
    cfg.max_bytes = 4ull << 30;
    audit_spool_t *sp = audit_spool_open(&cfg, &layer, now_ms(), err, sizeof(err));
    if (!sp) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    syncer_t s = {.sp = sp};
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.cv, NULL);
    pthread_t th;
    pthread_create(&th, NULL, sync_main, &s);

    uint8_t *rec = malloc(size);
    uint64_t io0 = io_write_bytes();
    double t0 = now_s();
    audit_spool_rec_t r;
    for (uint64_t i = 0; i < records; i++) {
        fill(rec, size, i);
        if (audit_spool_append(sp, rec, size, now_ms(), NULL) != AUDIT_SPOOL_OK) {
            fprintf(stderr, "append %" PRIu64 " dropped\n", i);
            exit(1);
        }
        if ((i & 63) == 0 || rate)
            drive(&s, sp);
        if (rate) /* paced: wait for this record's time */
            while (now_s() - t0 < (double)(i + 1) / (double)rate)
                usleep(50);
        if (live)
            while (audit_spool_next(sp, &r))
                audit_spool_ack(sp, r.seq);
    }
    double t1 = now_s();
    audit_spool_flush(sp, now_ms());
    const audit_spool_stats_t *st = audit_spool_stats(sp);
    /* Durable: every sync asked for has run (records acknowledged before their sync need
     * none: their segments may be gone already). */
    for (;;) {
        drive(&s, sp);
        pthread_mutex_lock(&s.mu);
        int busy = s.busy;
        pthread_mutex_unlock(&s.mu);
        if (!busy && audit_spool_deadline(sp) == UINT64_MAX)
            break;
        usleep(50);
    }
    double t2 = now_s();
    uint64_t drained = 0;
    while (audit_spool_next(sp, &r)) {
        audit_spool_ack(sp, r.seq);
        drained++;
    }
    double t3 = now_s();
    uint64_t io1 = io_write_bytes();

    printf("%s: %" PRIu64 " records of %zu bytes, batch %u ms, segments %" PRIu64 " MiB%s\n",
           live ? "live (acknowledged at once)" : "outage (backlog, then read back)", records, size,
           batch_ms, segment_mb, rate ? ", paced" : "");
    printf("  appends:          %.0f /s (%.3f s)\n", (double)records / (t1 - t0), t1 - t0);
    printf("  all durable:      %.0f /s (%.3f s to the last sync)\n", (double)records / (t2 - t0),
           t2 - t0);
    if (!live)
        printf("  read back:        %.0f /s (%" PRIu64 " records, %.3f s)\n",
               (double)drained / (t3 - t2), drained, t3 - t2);
    printf("  writes %" PRIu64 " (%.0f records each), syncs %" PRIu64
           " (%.0f records each, %.2f ms each on the sync thread)\n",
           st->writes, (double)records / (double)(st->writes ? st->writes : 1), st->fsyncs,
           (double)records / (double)(st->fsyncs ? st->fsyncs : 1),
           1000.0 * s.busy_s / (double)(st->fsyncs ? st->fsyncs : 1));
    printf("  write amplification: spool %.4f (bytes written / payload), kernel to disk %.4f\n",
           (double)st->bytes_written / (double)st->payload_bytes,
           (double)(io1 - io0) / (double)st->payload_bytes);

    pthread_mutex_lock(&s.mu);
    while (s.busy && !s.done) {
        pthread_mutex_unlock(&s.mu);
        usleep(100);
        pthread_mutex_lock(&s.mu);
    }
    s.quit = 1;
    pthread_cond_signal(&s.cv);
    pthread_mutex_unlock(&s.mu);
    pthread_join(th, NULL);
    if (s.busy && s.done)
        audit_spool_synced(sp, &s.req, s.rc, now_ms());
    audit_spool_close(sp);
    audit_spool_posix_delete(pfs);
    free(rec);
}

static void cleanup_dir(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

int main(int argc, char **argv)
{
    uint64_t records = 1000000, segment_mb = 8, rate = 0;
    size_t size = 400;
    uint32_t batch_ms = 5;
    const char *dir_arg = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--records") && v)
            records = strtoull(v, NULL, 0), i++;
        else if (!strcmp(a, "--size") && v)
            size = (size_t)strtoull(v, NULL, 0), i++;
        else if (!strcmp(a, "--batch-ms") && v)
            batch_ms = (uint32_t)strtoul(v, NULL, 0), i++;
        else if (!strcmp(a, "--segment-mb") && v)
            segment_mb = strtoull(v, NULL, 0), i++;
        else if (!strcmp(a, "--rate") && v)
            rate = strtoull(v, NULL, 0), i++;
        else if (!strcmp(a, "--dir") && v)
            dir_arg = v, i++;
        else {
            fprintf(stderr, "usage: spool_bench [--records N] [--size BYTES] [--batch-ms MS] "
                            "[--segment-mb MB] [--dir DIR] [--rate PER_SECOND]\n");
            return 2;
        }
    }
    if (size < 64)
        size = 64;
    mesh_log_init("bench", MESH_LOG_WARN, MESH_LOG_FORMAT_TEXT);
    char dir[512];
    const char *base = dir_arg ? dir_arg : getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/meshd-spool-bench-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(dir)) {
        fprintf(stderr, "mkdtemp %s: %s\n", dir, strerror(errno));
        return 1;
    }
    char sub[600];
    snprintf(sub, sizeof(sub), "%s/live", dir);
    run(sub, records, size, batch_ms, segment_mb, 1, rate);
    snprintf(sub, sizeof(sub), "%s/outage", dir);
    run(sub, records, size, batch_ms, segment_mb, 0, rate);
    cleanup_dir(dir);
    return 0;
}
