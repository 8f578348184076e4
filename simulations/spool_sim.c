/*
 * simulations/spool_sim.c: the audit spool (audit/spool.c, the production core) over the
 * simulated folder (simulations/sim_fs.c, which loses what was not synced), driven the way the
 * audit actor drives it, with faults drawn from the seed.
 *
 * Each seed draws a configuration (segment size, size bound, record sizes, batch timer and
 * size, read chunk, full-spool policy) and a fault level, then runs a few seconds of virtual
 * time: bursts of appends; syncs that complete 0-30 ms after they start (the sync itself is
 * captured when it starts, so writes during it are not covered); a Kafka that takes records in
 * flight (a random cap), acknowledges each 1-60 ms later in its own order, fails some (the
 * driver rewinds to them) and has outages long enough to fill the spool; crashes at random
 * moments, either a killed process (the page cache survives) or a power loss (unsynced bytes
 * are lost, kept in part, torn, zeroed or flipped; names not synced come or go); write errors,
 * a full disk, failing syncs (pages dropped), reads, creates and unlinks. After each crash the
 * spool is opened again and its replay checked. At the end Kafka stays up until everything
 * drained.
 *
 * Invariants:
 *   - every record whose append was reported durable (a sync covering it succeeded) and that
 *     was neither acknowledged nor dropped is replayed after a crash, in order, byte for byte
 *     (records may come again: at least once);
 *   - no record is ever handed out that is not byte for byte one that was appended, and the
 *     replay and every run hand out records in append order (after a rewind: from there);
 *   - a record acknowledged in this run is never handed out again; every handed-out sequence
 *     number maps to the record appended (or replayed) under it;
 *   - drops are counted exactly: each dropped append's cause matches a counter, and at the end
 *     every record the final run held is acknowledged or counted (dropped_oldest,
 *     lost_corrupt); lost_corrupt only after a sync failure dropped pages;
 *   - the size bound holds after every accepted append, and the spool's byte and segment
 *     counts are never below what is in the folder;
 *   - once everything is acknowledged only the segment being written is left on disk;
 *   - handles are never used after close, and stay few.
 *
 *   spool_sim --seed N [--verbose]            one seed (replay a failure)
 *   spool_sim --seeds COUNT [--first-seed S]  many seeds, then the determinism check
 *   options: --duration-ms MS (virtual time per seed, default 4000), --no-faults
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/prng.h"
#include "audit/spool.h"
#include "common/log.h"
#include "simulations/sim_fs.h"
#include "simulations/sim_sweep.h"

typedef struct opts {
    uint64_t seed;
    uint64_t duration_ms;
    int verbose;
    int faults;
} opts_t;

/* What the simulation knows of each record (by id, 1-based). */
enum { R_NONE = 0, R_SPOOLED = 1, R_DROPPED = 2 };
typedef struct rec {
    uint8_t state;
    uint8_t durable; /* a sync covering it was reported (in some run) */
    uint8_t acked;   /* Kafka acknowledged it (in some run) */
    uint8_t settled; /* the spool settled it unacknowledged: dropped (drop-oldest) or lost */
} rec_t;

typedef struct flight {
    uint64_t seq, id, due;
} flight_t;

typedef struct stats {
    uint64_t appends, acks, nacks, crashes, power_losses, replayed, drops, outages, rewinds;
    uint64_t expected; /* durable unacknowledged records a replay had to bring back */
} stats_t;

typedef struct world {
    opts_t o;
    mesh_prng_t prng;
    sim_fs_t *fs;
    audit_spool_fs_t layer;
    audit_spool_cfg_t cfg;
    audit_spool_t *sp;
    uint64_t now;
    uint32_t span; /* record lengths: 8 .. 8 + span - 1 */

    rec_t *recs;
    uint64_t nrecs, caprecs; /* ids 1 .. nrecs */

    /* this run (since the last open) */
    uint64_t *seq2id; /* seq -> id (0: not known yet) */
    uint8_t *seq_acked;
    uint64_t capseq;
    uint64_t expect_min; /* the next record handed out has at least this seq */
    uint64_t acks_sent, dup_acks, late_acks;
    uint64_t floor_seen;      /* records below were looked at by note_settled */
    uint64_t settled_unacked; /* records the spool settled without an acknowledgement */
    uint64_t drop_full, drop_size, drop_io, appended_ok;

    flight_t *flight;
    size_t nflight, capflight, max_flight;
    int kafka_up;
    uint64_t kafka_flip_at;

    int sync_busy;
    audit_spool_sync_t sync_req;
    int sync_rc;
    uint64_t sync_due;

    uint64_t next_crash;
    int unlink_faults;
    int pages_dropped; /* a failed sync may have zeroed unsynced pages */

    stats_t st;
    uint64_t trace;
    int failures;
    char why[768];
} world_t;

/* ---- records --------------------------------------------------------------------------- */

static size_t rec_len(const world_t *w, uint64_t id)
{
    return 8 + (size_t)((id * 0x9E3779B97F4A7C15ull >> 20) % w->span);
}

static void rec_fill(uint64_t id, uint8_t *buf, size_t len)
{
    uint64_t x = id * 0xD1B54A32D192ED03ull + 7;
    for (size_t i = 0; i < len; i++) {
        if (i < 8) {
            buf[i] = (uint8_t)(id >> (8 * i));
            continue;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf[i] = (uint8_t)x;
    }
}

/* The id of bytes handed out, or 0 when they are not byte for byte an appended record. */
static uint64_t rec_id(const world_t *w, const uint8_t *p, size_t len)
{
    if (len < 8)
        return 0;
    uint64_t id = 0;
    for (int i = 0; i < 8; i++)
        id |= (uint64_t)p[i] << (8 * i);
    if (id == 0 || id > w->nrecs || w->recs[id].state != R_SPOOLED || rec_len(w, id) != len)
        return 0;
    uint8_t want[8 + 4096];
    rec_fill(id, want, len);
    return memcmp(want, p, len) == 0 ? id : 0;
}

/* ---- bookkeeping ---------------------------------------------------------------------------- */

static void fail(world_t *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(world_t *w, const char *fmt, ...)
{
    if (!w->failures) {
        va_list ap;
        va_start(ap, fmt);
        int n = snprintf(w->why, sizeof(w->why), "t=%llu ms: ", (unsigned long long)w->now);
        vsnprintf(w->why + n, sizeof(w->why) - (size_t)n, fmt, ap);
        va_end(ap);
    }
    w->failures++;
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q) {
        fprintf(stderr, "spool_sim: out of memory\n");
        abort();
    }
    return q;
}

static void seq_reserve(world_t *w, uint64_t seq)
{
    if (seq < w->capseq)
        return;
    uint64_t n = w->capseq ? w->capseq : 1024;
    while (n <= seq)
        n *= 2;
    w->seq2id = xrealloc(w->seq2id, n * sizeof(*w->seq2id));
    w->seq_acked = xrealloc(w->seq_acked, n);
    memset(w->seq2id + w->capseq, 0, (n - w->capseq) * sizeof(*w->seq2id));
    memset(w->seq_acked + w->capseq, 0, n - w->capseq);
    w->capseq = n;
}

static uint64_t new_id(world_t *w)
{
    if (w->nrecs + 1 >= w->caprecs) {
        uint64_t n = w->caprecs ? w->caprecs * 2 : 4096;
        w->recs = xrealloc(w->recs, n * sizeof(*w->recs));
        memset(w->recs + w->caprecs, 0, (n - w->caprecs) * sizeof(*w->recs));
        w->caprecs = n;
    }
    return ++w->nrecs;
}

static uint64_t below(world_t *w, uint64_t n)
{
    return mesh_prng_below(&w->prng, n);
}

/* ---- the spool's driver ------------------------------------------------------------------- */

/* Records the spool settled without an acknowledgement (dropped by drop-oldest, or lost at
 * read-back) are no longer expected at a replay. */
static void note_settled(world_t *w)
{
    uint64_t floor = audit_spool_settled_below(w->sp);
    for (uint64_t s = w->floor_seen; s < floor; s++) {
        uint64_t id = s < w->capseq ? w->seq2id[s] : 0;
        if (!id) {
            fail(w, "seq %llu settled, which the run does not know", (unsigned long long)s);
            continue;
        }
        if (!w->seq_acked[s]) {
            w->recs[id].settled = 1;
            w->settled_unacked++;
        }
    }
    if (floor > w->floor_seen)
        w->floor_seen = floor;
}

static void check_counts(world_t *w)
{
    const audit_spool_stats_t *st = audit_spool_stats(w->sp);
    uint64_t bytes = 0;
    size_t n = sim_fs_count(w->fs, AUDIT_SPOOL_SUFFIX, &bytes);
    if (bytes > st->bytes)
        fail(w, "the folder holds %llu bytes of segments, the spool counts %llu",
             (unsigned long long)bytes, (unsigned long long)st->bytes);
    if (n > st->segments)
        fail(w, "the folder holds %zu segments, the spool counts %llu", n,
             (unsigned long long)st->segments);
    if (st->pending !=
        st->replayed + st->appended - st->acked - st->dropped_oldest - st->lost_corrupt)
        fail(w,
             "pending %llu != replayed %llu + appended %llu - acked %llu - dropped %llu - "
             "lost %llu",
             (unsigned long long)st->pending, (unsigned long long)st->replayed,
             (unsigned long long)st->appended, (unsigned long long)st->acked,
             (unsigned long long)st->dropped_oldest, (unsigned long long)st->lost_corrupt);
    if (st->acked + st->acks_ignored != w->acks_sent)
        fail(w, "acks: %llu counted + %llu ignored != %llu sent", (unsigned long long)st->acked,
             (unsigned long long)st->acks_ignored, (unsigned long long)w->acks_sent);
    if (st->appended != w->appended_ok || st->dropped_full != w->drop_full ||
        st->dropped_size != w->drop_size || st->dropped_io != w->drop_io)
        fail(w, "append counters: appended %llu/%llu full %llu/%llu size %llu/%llu io %llu/%llu",
             (unsigned long long)st->appended, (unsigned long long)w->appended_ok,
             (unsigned long long)st->dropped_full, (unsigned long long)w->drop_full,
             (unsigned long long)st->dropped_size, (unsigned long long)w->drop_size,
             (unsigned long long)st->dropped_io, (unsigned long long)w->drop_io);
    if (st->lost_corrupt && !w->pages_dropped)
        fail(w, "%llu records lost at read-back without a sync failure",
             (unsigned long long)st->lost_corrupt);
    if (sim_fs_stats(w->fs)->bad_handles)
        fail(w, "a closed or unknown handle was used");
    if (sim_fs_stats(w->fs)->open_handles > 3)
        fail(w, "%llu handles open", (unsigned long long)sim_fs_stats(w->fs)->open_handles);
}

static void append_one(world_t *w)
{
    uint64_t id = new_id(w);
    size_t len = rec_len(w, id);
    uint8_t buf[8 + 4096];
    rec_fill(id, buf, len);
    uint64_t bytes_before = audit_spool_stats(w->sp)->bytes;
    uint64_t seq = 0;
    audit_spool_result_t r = audit_spool_append(w->sp, buf, len, w->now, &seq);
    const audit_spool_stats_t *st = audit_spool_stats(w->sp);
    note_settled(w);
    w->st.appends++;
    sim_trace_fold(&w->trace, (uint64_t)r << 56 | seq);
    switch (r) {
    case AUDIT_SPOOL_OK:
        w->recs[id].state = R_SPOOLED;
        w->appended_ok++;
        seq_reserve(w, seq);
        if (w->seq2id[seq])
            fail(w, "seq %llu given twice", (unsigned long long)seq);
        w->seq2id[seq] = id;
        if (st->bytes > w->cfg.max_bytes)
            fail(w, "%llu bytes after an append, bound %llu", (unsigned long long)st->bytes,
                 (unsigned long long)w->cfg.max_bytes);
        break;
    case AUDIT_SPOOL_DROPPED_FULL:
        w->recs[id].state = R_DROPPED;
        w->drop_full++;
        w->st.drops++;
        if (bytes_before + 8 + len + AUDIT_SPOOL_SEG_HDR <= w->cfg.max_bytes &&
            st->bytes + 8 + len + AUDIT_SPOOL_SEG_HDR <= w->cfg.max_bytes)
            fail(w, "dropped as full with %llu bytes of %llu", (unsigned long long)st->bytes,
                 (unsigned long long)w->cfg.max_bytes);
        if (w->cfg.policy == AUDIT_SPOOL_DROP_OLDEST && !w->unlink_faults &&
            st->segments - st->unreadable > 1)
            fail(w, "drop-oldest dropped a new record with %llu segments",
                 (unsigned long long)st->segments);
        break;
    case AUDIT_SPOOL_DROPPED_SIZE:
        w->recs[id].state = R_DROPPED;
        w->drop_size++;
        if (len <= w->cfg.max_record)
            fail(w, "a record of %zu bytes dropped for its size", len);
        break;
    case AUDIT_SPOOL_DROPPED_IO:
        w->recs[id].state = R_DROPPED;
        w->drop_io++;
        w->st.drops++;
        break;
    }
}

/* Starts the sync the spool asks for: captured now, reported later. */
static void start_sync(world_t *w)
{
    if (w->sync_busy || !audit_spool_take_sync(w->sp, &w->sync_req))
        return;
    w->sync_busy = 1;
    w->sync_rc = audit_spool_sync_run(w->sp, &w->sync_req);
    if (w->sync_rc == -EIO)
        w->pages_dropped = 1;
    w->sync_due = w->now + below(w, 31);
}

static void finish_sync(world_t *w)
{
    if (!w->sync_busy || w->now < w->sync_due)
        return;
    w->sync_busy = 0;
    audit_spool_synced(w->sp, &w->sync_req, w->sync_rc, w->now);
    sim_trace_fold(&w->trace, w->sync_req.upto_seq ^ (uint64_t)(w->sync_rc & 0xFF) << 48);
    if (w->sync_rc == 0)
        for (uint64_t s = w->sync_req.from_seq; s < w->sync_req.upto_seq; s++) {
            uint64_t id = s < w->capseq ? w->seq2id[s] : 0;
            if (!id)
                fail(w, "sync reported seq %llu, which the run does not know",
                     (unsigned long long)s);
            else
                w->recs[id].durable = 1;
        }
}

/* Hands records to Kafka while it is up and has room. */
static void deliver(world_t *w)
{
    audit_spool_rec_t rec;
    while (w->kafka_up && w->nflight < w->max_flight && audit_spool_next(w->sp, &rec)) {
        note_settled(w);
        uint64_t id = rec_id(w, rec.data, rec.len);
        if (!id) {
            fail(w, "seq %llu: %u bytes handed out that are no record appended",
                 (unsigned long long)rec.seq, rec.len);
            return;
        }
        seq_reserve(w, rec.seq);
        if (w->seq2id[rec.seq] != id)
            fail(w, "seq %llu handed out as record %llu, appended as %llu",
                 (unsigned long long)rec.seq, (unsigned long long)id,
                 (unsigned long long)w->seq2id[rec.seq]);
        if (rec.seq < w->expect_min)
            fail(w, "seq %llu handed out after %llu (out of order)", (unsigned long long)rec.seq,
                 (unsigned long long)w->expect_min - 1);
        if (w->seq_acked[rec.seq])
            fail(w, "seq %llu handed out again after its acknowledgement",
                 (unsigned long long)rec.seq);
        w->expect_min = rec.seq + 1;
        sim_trace_fold(&w->trace, rec.seq);
        if (w->nflight == w->capflight) {
            w->capflight = w->capflight ? w->capflight * 2 : 256;
            w->flight = xrealloc(w->flight, w->capflight * sizeof(*w->flight));
        }
        w->flight[w->nflight++] = (flight_t){rec.seq, id, w->now + 1 + below(w, 60)};
    }
}

/* Kafka answers the deliveries that are due: acknowledged, or failed (then the driver rewinds). */
static void kafka_answers(world_t *w)
{
    for (size_t i = 0; i < w->nflight;) {
        flight_t f = w->flight[i];
        if (f.due > w->now) {
            i++;
            continue;
        }
        w->flight[i] = w->flight[--w->nflight];
        if (w->kafka_up && below(w, 100) < 97) {
            w->acks_sent++;
            w->st.acks++;
            note_settled(w);
            if (w->seq_acked[f.seq])
                w->dup_acks++;
            else if (f.seq < w->floor_seen)
                w->late_acks++; /* dropped while in flight: the acknowledgement comes too late */
            w->seq_acked[f.seq] = 1;
            w->recs[f.id].acked = 1;
            audit_spool_ack(w->sp, f.seq);
            sim_trace_fold(&w->trace, f.seq | 1ull << 62);
        } else {
            w->st.nacks++;
            w->st.rewinds++;
            audit_spool_rewind(w->sp, f.seq);
            if (f.seq < w->expect_min)
                w->expect_min = f.seq;
            sim_trace_fold(&w->trace, f.seq | 1ull << 61);
        }
    }
}

/* ---- open, replay check, crash ------------------------------------------------------------ */

static void reset_run(world_t *w)
{
    if (w->capseq) {
        memset(w->seq2id, 0, w->capseq * sizeof(*w->seq2id));
        memset(w->seq_acked, 0, w->capseq);
    }
    w->expect_min = 1;
    w->floor_seen = 1;
    w->settled_unacked = 0;
    w->acks_sent = w->dup_acks = w->late_acks = w->drop_full = w->drop_size = w->drop_io =
        w->appended_ok = 0;
    w->nflight = 0;
    w->sync_busy = 0;
}

/* Opens the spool and checks its replay: records in append order, byte for byte, every
 * durable unsettled one among them. Then rewinds so they are sent as usual. */
static void open_and_check(world_t *w)
{
    char err[256];
    reset_run(w);
    w->sp = audit_spool_open(&w->cfg, &w->layer, w->now, err, sizeof(err));
    if (!w->sp) {
        fail(w, "open: %s", err);
        return;
    }
    const audit_spool_stats_t *st = audit_spool_stats(w->sp);
    uint64_t prev = 0, n = 0;
    audit_spool_rec_t rec;
    uint8_t *seen = calloc(w->nrecs + 1, 1);
    if (!seen)
        abort();
    for (int zeros = 0; zeros < AUDIT_SPOOL_READ_ATTEMPTS;) {
        if (!audit_spool_next(w->sp, &rec)) {
            zeros++; /* nothing, or a read error to retry */
            continue;
        }
        zeros = 0;
        uint64_t id = rec_id(w, rec.data, rec.len);
        n++;
        if (!id) {
            fail(w, "replay: seq %llu (%u bytes) is no record appended",
                 (unsigned long long)rec.seq, rec.len);
            continue;
        }
        if (id <= prev)
            fail(w, "replay: record %llu after %llu", (unsigned long long)id,
                 (unsigned long long)prev);
        prev = id;
        seen[id] = 1;
        seq_reserve(w, rec.seq);
        w->seq2id[rec.seq] = id;
        sim_trace_fold(&w->trace, id);
    }
    if (n != st->replayed)
        fail(w, "replay: %llu records handed out, %llu counted", (unsigned long long)n,
             (unsigned long long)st->replayed);
    for (uint64_t id = 1; id <= w->nrecs; id++) {
        const rec_t *r = &w->recs[id];
        if (r->state != R_SPOOLED || !r->durable || r->acked || r->settled)
            continue;
        w->st.expected++;
        if (!seen[id]) {
            fail(w, "replay: durable record %llu, never acknowledged, is missing",
                 (unsigned long long)id);
            break;
        }
    }
    free(seen);
    w->st.replayed += n;
    audit_spool_rewind(w->sp, 0);
    w->expect_min = 1;
    check_counts(w);
}

static void crash(world_t *w)
{
    int power = below(w, 10) < 7;
    w->st.crashes++;
    w->st.power_losses += (uint64_t)power;
    /* The process dies: its handles close, buffered records and pending answers are gone. A
     * sync already started was captured by the folder; its report never arrives. */
    audit_spool_close(w->sp);
    w->sp = NULL;
    sim_fs_crash(w->fs, power);
    sim_trace_fold(&w->trace, 0xC0FFEEull + (uint64_t)power);
    w->now += 1 + below(w, 50);
    open_and_check(w);
}

/* ---- one seed ------------------------------------------------------------------------------ */

static void pick_config(world_t *w)
{
    audit_spool_cfg_default(&w->cfg);
    w->cfg.segment_bytes = 2048u << below(w, 5); /* 2 .. 32 KiB */
    w->cfg.max_bytes = w->cfg.segment_bytes * (4 + below(w, 9));
    w->span = (uint32_t)(50 + below(w, 1000));
    w->cfg.max_record = below(w, 4) ? 8 + w->span : 8 + w->span / 2; /* some too long */
    w->cfg.batch_ms = (uint32_t)(1 + below(w, 10));
    w->cfg.batch_bytes = (uint32_t)(512u << below(w, 6));
    w->cfg.max_buffer = w->cfg.batch_bytes * (uint32_t)(1 + below(w, 8));
    w->cfg.read_chunk = (uint32_t)(256u << below(w, 6));
    w->cfg.policy = below(w, 2) ? AUDIT_SPOOL_DROP_OLDEST : AUDIT_SPOOL_DROP_NEWEST;
    if (w->cfg.max_bytes < 2 * (w->cfg.max_record + 40ull))
        w->cfg.max_bytes = 2 * (w->cfg.max_record + 40ull) + w->cfg.segment_bytes;
    w->max_flight = 1 + below(w, 300);
    if (w->o.faults) {
        uint64_t level = below(w, 3);
        sim_fs_faults_t f = {0};
        w->unlink_faults = level >= 1;
        if (level >= 1) {
            f.write_eio = 0.002;
            f.sync_eio = 0.002;
            f.read_eio = 0.001;
            f.create_eio = 0.01;
            f.unlink_eio = 0.01;
        }
        if (level == 2) {
            f.write_eio = 0.02;
            f.sync_eio = 0.01;
            f.capacity = w->cfg.max_bytes / 2 + below(w, w->cfg.max_bytes);
        }
        sim_fs_set_faults(w->fs, &f);
    }
}

static void run_seed(world_t *w)
{
    mesh_prng_seed(&w->prng, w->o.seed);
    w->fs = sim_fs_new(&w->prng);
    w->layer = sim_fs_layer(w->fs);
    w->trace = 0xCBF29CE484222325ull;
    w->now = 1;
    pick_config(w);
    sim_trace_fold(&w->trace, w->cfg.segment_bytes ^ w->cfg.max_bytes << 20);
    w->kafka_up = 1;
    w->kafka_flip_at = 200 + below(w, 800);
    w->next_crash = w->o.faults ? 300 + below(w, 1500) : UINT64_MAX;
    open_and_check(w);
    uint64_t end = w->o.duration_ms;
    uint64_t rate = 1 + below(w, 4); /* appends per ms, on average */
    while (w->now < end && !w->failures && w->sp) {
        /* appends: bursts */
        if (below(w, 4) == 0) {
            uint64_t k = below(w, 4 * rate + 1);
            for (uint64_t i = 0; i < k; i++)
                append_one(w);
        }
        if (w->now >= audit_spool_deadline(w->sp))
            audit_spool_tick(w->sp, w->now);
        start_sync(w);
        finish_sync(w);
        start_sync(w);
        kafka_answers(w);
        deliver(w);
        note_settled(w);
        if (w->now >= w->kafka_flip_at) {
            w->kafka_up = !w->kafka_up;
            w->st.outages += (uint64_t)!w->kafka_up;
            /* outages long enough to fill the spool; up times shorter */
            w->kafka_flip_at = w->now + (w->kafka_up ? 50 + below(w, 700) : 100 + below(w, 1500));
        }
        if (w->now >= w->next_crash) {
            crash(w);
            w->next_crash = w->now + 200 + below(w, 1500);
        }
        if (below(w, 50) == 0)
            check_counts(w);
        w->now += below(w, 3);
    }
    if (!w->sp || w->failures)
        return;
    /* The end: the disk behaves, Kafka stays up until every record is acknowledged. */
    sim_fs_set_faults(w->fs, NULL);
    w->kafka_up = 1;
    w->max_flight = 1000;
    for (int round = 0; round < 100000; round++) {
        audit_spool_flush(w->sp, w->now);
        if (w->now >= audit_spool_deadline(w->sp))
            audit_spool_tick(w->sp, w->now);
        start_sync(w);
        finish_sync(w);
        kafka_answers(w);
        deliver(w);
        const audit_spool_stats_t *st = audit_spool_stats(w->sp);
        if (!st->pending && !w->nflight && !w->sync_busy && st->segments <= 1 + st->unreadable)
            break;
        w->now++;
    }
    const audit_spool_stats_t *st = audit_spool_stats(w->sp);
    note_settled(w);
    check_counts(w);
    if (st->pending)
        fail(w, "%llu records still pending after the drain", (unsigned long long)st->pending);
    /* Every record this run held: acknowledged (the simulation saw it), or counted. */
    uint64_t acked_unique = 0;
    for (uint64_t s = 1; s < w->capseq; s++)
        acked_unique += w->seq_acked[s];
    /* Drops counted exactly: the records the spool settled without an acknowledgement are
     * its drops and losses; acknowledgements of records dropped while in flight came too late
     * (ignored). (Lost records are settled out of order, seen only once the floor passes: after
     * dropped pages the counts are bounds.) */
    uint64_t gone = st->dropped_oldest + st->lost_corrupt;
    int exact = !w->pages_dropped;
    if (exact ? w->settled_unacked != gone : w->settled_unacked > gone)
        fail(w, "%llu records settled unacknowledged, counted: dropped %llu + lost %llu",
             (unsigned long long)w->settled_unacked, (unsigned long long)st->dropped_oldest,
             (unsigned long long)st->lost_corrupt);
    if (exact && (acked_unique != st->acked + w->late_acks ||
                  st->acks_ignored != w->dup_acks + w->late_acks))
        fail(w, "acknowledged: %llu seen, %llu counted, %llu late, %llu ignored, %llu repeated",
             (unsigned long long)acked_unique, (unsigned long long)st->acked,
             (unsigned long long)w->late_acks, (unsigned long long)st->acks_ignored,
             (unsigned long long)w->dup_acks);
    if (st->replayed + st->appended != st->acked + st->dropped_oldest + st->lost_corrupt)
        fail(w, "held %llu records, acknowledged %llu + dropped %llu + lost %llu",
             (unsigned long long)(st->replayed + st->appended), (unsigned long long)st->acked,
             (unsigned long long)st->dropped_oldest, (unsigned long long)st->lost_corrupt);
    uint64_t bytes;
    size_t segs = sim_fs_count(w->fs, AUDIT_SPOOL_SUFFIX, &bytes);
    if (segs > 1 + st->unreadable)
        fail(w, "%zu segments left after everything was acknowledged", segs);
    sim_trace_fold(&w->trace, st->acked);
}

static void world_free(world_t *w)
{
    audit_spool_close(w->sp);
    sim_fs_delete(w->fs);
    free(w->recs);
    free(w->seq2id);
    free(w->seq_acked);
    free(w->flight);
}

typedef struct result {
    uint64_t hash;
    int failures;
    char why[768];
    stats_t st;
} result_t;

static result_t run_one(const opts_t *o)
{
    world_t *w = calloc(1, sizeof(*w));
    if (!w)
        abort();
    w->o = *o;
    run_seed(w);
    result_t r = {.hash = w->trace, .failures = w->failures, .st = w->st};
    memcpy(r.why, w->why, sizeof(r.why));
    world_free(w);
    free(w);
    return r;
}

/* ---- sweep and CLI ----------------------------------------------------------------------- */

typedef struct sweep {
    opts_t o;
    stats_t tot;
    result_t last; /* the latest run */
} sweep_t;

static void print_replay(const opts_t *o)
{
    printf("  replay: spool_sim --seed %llu --duration-ms %llu%s --verbose\n",
           (unsigned long long)o->seed, (unsigned long long)o->duration_ms,
           o->faults ? "" : " --no-faults");
}

static void sweep_seed(void *ud, uint64_t seed, int tally, sim_outcome_t *out)
{
    sweep_t *sw = ud;
    sw->o.seed = seed;
    result_t r = run_one(&sw->o);
    sw->last = r;
    out->hash = r.hash;
    out->failures = r.failures;
    memcpy(out->why, r.why, sizeof(out->why));
    if (tally) {
        sw->tot.appends += r.st.appends;
        sw->tot.acks += r.st.acks;
        sw->tot.nacks += r.st.nacks;
        sw->tot.crashes += r.st.crashes;
        sw->tot.power_losses += r.st.power_losses;
        sw->tot.replayed += r.st.replayed;
        sw->tot.drops += r.st.drops;
        sw->tot.outages += r.st.outages;
        sw->tot.expected += r.st.expected;
    }
}

static void sweep_replay(void *ud, uint64_t seed)
{
    sweep_t *sw = ud;
    sw->o.seed = seed;
    print_replay(&sw->o);
}

static void print_seed(void *ud)
{
    const stats_t *st = &((const sweep_t *)ud)->last.st;
    printf("appends %llu acks %llu nacks %llu crashes %llu (power %llu) replayed %llu drops %llu "
           "outages %llu",
           (unsigned long long)st->appends, (unsigned long long)st->acks,
           (unsigned long long)st->nacks, (unsigned long long)st->crashes,
           (unsigned long long)st->power_losses, (unsigned long long)st->replayed,
           (unsigned long long)st->drops, (unsigned long long)st->outages);
}

static void print_size(void *ud)
{
    const sweep_t *sw = ud;
    printf("%llu ms each", (unsigned long long)sw->o.duration_ms);
}

static void print_totals(void *ud)
{
    const stats_t *tot = &((const sweep_t *)ud)->tot;
    printf("appends %llu acks %llu nacks %llu crashes %llu (power losses %llu) replayed %llu (%llu "
           "of them durable and unacknowledged: checked) drops %llu outages %llu",
           (unsigned long long)tot->appends, (unsigned long long)tot->acks,
           (unsigned long long)tot->nacks, (unsigned long long)tot->crashes,
           (unsigned long long)tot->power_losses, (unsigned long long)tot->replayed,
           (unsigned long long)tot->expected, (unsigned long long)tot->drops,
           (unsigned long long)tot->outages);
}

static void usage(void)
{
    fprintf(stderr, "usage: spool_sim --seed N | --seeds COUNT [--first-seed S]\n"
                    "                 [--duration-ms MS] [--no-faults] [--verbose]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    opts_t o = {.seed = 1, .duration_ms = 4000, .faults = 1};
    sim_seeds_t seeds = SIM_SEEDS_INIT;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (sim_seeds_arg(&seeds, argc, argv, &i)) {
            continue;
        } else if (!strcmp(a, "--duration-ms") && v) {
            o.duration_ms = strtoull(v, NULL, 0);
            i++;
        } else if (!strcmp(a, "--verbose")) {
            o.verbose = 1;
        } else if (!strcmp(a, "--no-faults")) {
            o.faults = 0;
        } else {
            usage();
        }
    }
    if (!sim_seeds_valid(&seeds))
        usage();
    mesh_log_init("sim", o.verbose ? MESH_LOG_WARN : MESH_LOG_OFF, MESH_LOG_FORMAT_TEXT);
    setvbuf(stdout, NULL, _IOLBF, 0);
    sweep_t sw = {.o = o};
    const sim_main_cfg_t cfg = {sweep_seed, sweep_replay, print_seed, print_size, print_totals};
    return sim_run_main(&seeds, &cfg, &sw);
}
