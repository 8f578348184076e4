/*
 * tests/unit/audit/test_spool.c: the audit spool's core (audit/spool.h) over the simulated
 * folder: framing on disk, durability only after a sync, replay in order after a restart, torn
 * and corrupt tails cut and reported, corrupt middle segments skipped, bad headers, rotation,
 * acknowledgements out of order and segment deletion, rewind, the size bound under both
 * policies, write, sync and create errors, read-back through the bounded buffer.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "audit/spool.h"
#include "common/crc32c.h"
#include "common/log.h"
#include "simulations/sim_fs.h"
#include "tests/check.h"
#include "tests/unit/audit/spool_rig.h"

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static size_t nsegments(rig_t *r)
{
    return sim_fs_count(r->fs, AUDIT_SPOOL_SUFFIX, NULL);
}

/* Records round-trip in order and byte for byte; everything acknowledged leaves one segment. */
static void t_roundtrip(void)
{
    rig_t r;
    rig_init(&r, NULL);
    rig_open(&r);
    for (uint64_t id = 1; id <= 200; id++) {
        uint64_t seq = 0;
        CHECK_EQ(rig_append(&r, id, &seq), AUDIT_SPOOL_OK);
        CHECK_EQ(seq, id);
    }
    uint64_t ids[300], seqs[300];
    CHECK_EQ(rig_next_all(&r, ids, seqs, 300), 200);
    for (int i = 0; i < 200; i++) {
        CHECK_EQ(ids[i], (uint64_t)i + 1);
        CHECK_EQ(seqs[i], (uint64_t)i + 1);
    }
    rig_settle(&r);
    const audit_spool_stats_t *st = audit_spool_stats(r.sp);
    CHECK_EQ(st->appended, 200);
    CHECK_EQ(st->durable, 200);
    CHECK_EQ(st->pending, 200);
    for (int i = 0; i < 200; i++)
        audit_spool_ack(r.sp, seqs[i]);
    CHECK_EQ(st->pending, 0);
    CHECK_EQ(st->acked, 200);
    CHECK_EQ(nsegments(&r), 1); /* the one being written stays */
    CHECK_EQ(st->segments, 1);
    rig_free(&r);
}

/* A record is durable only once a sync past it succeeded; the batch waits for its timer. */
static void t_durable_after_sync(void)
{
    rig_t r;
    rig_init(&r, NULL);
    rig_open(&r);
    CHECK_EQ(audit_spool_deadline(r.sp), UINT64_MAX);
    CHECK_EQ(rig_append(&r, 1, NULL), AUDIT_SPOOL_OK);
    CHECK_EQ(rig_append(&r, 2, NULL), AUDIT_SPOOL_OK);
    CHECK_EQ(audit_spool_deadline(r.sp), r.now + AUDIT_SPOOL_DEFAULT_BATCH_MS);
    audit_spool_sync_t req;
    CHECK(!audit_spool_take_sync(r.sp, &req)); /* nothing written yet */
    uint64_t bytes = 0;
    sim_fs_count(r.fs, AUDIT_SPOOL_SUFFIX, &bytes);
    CHECK_EQ(bytes, 0);
    audit_spool_tick(r.sp, r.now + 1); /* too early */
    CHECK(!audit_spool_take_sync(r.sp, &req));
    r.now += AUDIT_SPOOL_DEFAULT_BATCH_MS;
    audit_spool_tick(r.sp, r.now);
    CHECK_EQ(audit_spool_deadline(r.sp), UINT64_MAX);
    CHECK_EQ(audit_spool_stats(r.sp)->writes, 1); /* one write for the batch */
    CHECK(audit_spool_take_sync(r.sp, &req));
    CHECK_EQ(req.from_seq, 1);
    CHECK_EQ(req.upto_seq, 3);
    CHECK_EQ(req.dir, 1);                      /* a new segment: its name must be durable too */
    CHECK(!audit_spool_take_sync(r.sp, &req)); /* one at a time */
    CHECK_EQ(audit_spool_stats(r.sp)->durable, 0);
    /* A record appended while the sync runs is not covered by it. */
    CHECK_EQ(rig_append(&r, 3, NULL), AUDIT_SPOOL_OK);
    audit_spool_flush(r.sp, r.now);
    audit_spool_synced(r.sp, &req, audit_spool_sync_run(r.sp, &req), r.now);
    CHECK_EQ(audit_spool_stats(r.sp)->durable, 2);
    CHECK(audit_spool_take_sync(r.sp, &req));
    CHECK_EQ(req.from_seq, 3);
    CHECK_EQ(req.upto_seq, 4);
    CHECK_EQ(req.dir, 0);
    audit_spool_synced(r.sp, &req, audit_spool_sync_run(r.sp, &req), r.now);
    CHECK_EQ(audit_spool_stats(r.sp)->durable, 3);
    CHECK_EQ(audit_spool_stats(r.sp)->fsyncs, 2);
    rig_free(&r);
}

/* The bytes on disk: header, then length | CRC-32C(length, payload) | payload. */
static void t_format_on_disk(void)
{
    rig_t r;
    rig_init(&r, NULL);
    rig_open(&r);
    CHECK_EQ(audit_spool_append(r.sp, "hello", 5, r.now, NULL), AUDIT_SPOOL_OK);
    CHECK_EQ(audit_spool_append(r.sp, "audit!", 6, r.now, NULL), AUDIT_SPOOL_OK);
    rig_settle(&r);
    char name[AUDIT_SPOOL_NAME_LEN + 1];
    CHECK_STR(rig_segment(&r, 0, name), "00000000000000000001.spool");
    size_t len = 0;
    const uint8_t *f = sim_fs_get(r.fs, name, &len);
    CHECK(f);
    CHECK_EQ(len, 32 + 8 + 5 + 8 + 6);
    CHECK(memcmp(f, AUDIT_SPOOL_MAGIC, 8) == 0);
    CHECK_EQ(le32(f + 8), 1);
    CHECK_EQ(le32(f + 12), 32);
    CHECK_EQ(le32(f + 16), 1);
    CHECK_EQ(le32(f + 28), mesh_crc32c(f, 28));
    const uint8_t *rec = f + 32;
    CHECK_EQ(le32(rec), 5);
    CHECK_EQ(le32(rec + 4), mesh_crc32c_extend(mesh_crc32c(rec, 4), "hello", 5));
    CHECK(memcmp(rec + 8, "hello", 5) == 0);
    CHECK_EQ(le32(rec + 13), 6);
    CHECK_EQ(audit_spool_stats(r.sp)->bytes, len);
    CHECK_EQ(audit_spool_stats(r.sp)->bytes_written, len);
    rig_free(&r);
}

/* A restart replays every unacknowledged record in order; new ones follow in a new segment. */
static void t_replay(void)
{
    rig_t r;
    rig_init(&r, NULL);
    rig_open(&r);
    uint64_t seqs[400];
    for (uint64_t id = 1; id <= 300; id++)
        CHECK_EQ(rig_append(&r, id, &seqs[id - 1]), AUDIT_SPOOL_OK);
    rig_settle(&r);
    CHECK(nsegments(&r) > 3);
    CHECK_EQ(rig_next_all(&r, NULL, NULL, 150), 150);
    for (int i = 0; i < 150; i++) /* the first 150 acknowledged */
        audit_spool_ack(r.sp, seqs[i]);
    rig_reopen(&r);
    const audit_spool_stats_t *st = audit_spool_stats(r.sp);
    size_t n;
    audit_spool_issues(r.sp, &n);
    CHECK_EQ(n, 0);
    /* Whole segments went with their acknowledgements; the rest of the first kept one is sent
     * again (at least once). */
    CHECK(st->replayed >= 150 && st->replayed < 300);
    uint64_t first = 300 - st->replayed + 1;
    uint64_t ids[400];
    CHECK_EQ(rig_next_all(&r, ids, NULL, 400), st->replayed);
    for (uint64_t i = 0; i < st->replayed; i++)
        CHECK_EQ(ids[i], first + i);
    CHECK_EQ(rig_append(&r, 301, NULL), AUDIT_SPOOL_OK);
    CHECK_EQ(rig_next_all(&r, ids, NULL, 400), 1);
    CHECK_EQ(ids[0], 301);
    rig_settle(&r);
    rig_reopen(&r);
    CHECK_EQ(audit_spool_stats(r.sp)->replayed, 300 - first + 2);
    rig_free(&r);
}

/* The bytes where the last segment's good records end. */
static size_t good_end(rig_t *r, const char *name, int records)
{
    size_t len = 0, off = 32;
    const uint8_t *f = sim_fs_get(r->fs, name, &len);
    for (int i = 0; i < records && off + 8 <= len; i++)
        off += 8 + le32(f + off);
    return off;
}

/* Torn, zeroed and corrupt tails of the last segment are cut, reported and never replayed;
 * the next open finds nothing more to cut. */
static void t_torn_tail(void)
{
    for (int variant = 0; variant < 4; variant++) {
        rig_t r;
        rig_init(&r, NULL);
        rig_open(&r);
        for (uint64_t id = 1; id <= 20; id++)
            CHECK_EQ(rig_append(&r, id, NULL), AUDIT_SPOOL_OK);
        rig_settle(&r);
        audit_spool_close(r.sp);
        char name[AUDIT_SPOOL_NAME_LEN + 1];
        char other[AUDIT_SPOOL_NAME_LEN + 1];
        CHECK(rig_segment(&r, 0, name));
        CHECK(!rig_segment(&r, 1, other)); /* one segment */
        size_t len = 0;
        sim_fs_get(r.fs, name, &len);
        size_t end18 = good_end(&r, name, 18);
        size_t end19 = good_end(&r, name, 19);
        audit_spool_issue_kind_t want = AUDIT_SPOOL_TORN;
        switch (variant) {
        case 0: /* cut inside record 19's payload */
            sim_fs_cut(r.fs, name, end18 + 8 + 3);
            break;
        case 1: /* cut inside record 19's frame header */
            sim_fs_cut(r.fs, name, end18 + 5);
            break;
        case 2: { /* blocks of zeros after record 20 (allocated, never written) */
            size_t l;
            const uint8_t *f = sim_fs_get(r.fs, name, &l);
            uint8_t buf[8192];
            memcpy(buf, f, l);
            memset(buf + l, 0, 100);
            sim_fs_put(r.fs, name, buf, l + 100);
            want = AUDIT_SPOOL_ZERO;
            end18 = len; /* all 20 survive */
            break;
        }
        case 3: /* one flipped bit in record 19's payload */
            sim_fs_flip(r.fs, name, end18 + 8 + 2);
            want = AUDIT_SPOOL_CRC;
            break;
        }
        (void)end19;
        rig_open(&r);
        size_t n = 0;
        const audit_spool_issue_t *is = audit_spool_issues(r.sp, &n);
        CHECK_EQ(n, 1);
        CHECK_EQ(is[0].kind, want);
        CHECK_EQ(is[0].offset, end18);
        CHECK(is[0].truncated);
        CHECK(is[0].at_open);
        uint64_t expect = variant == 2 ? 20 : 18;
        CHECK_EQ(audit_spool_stats(r.sp)->replayed, expect);
        size_t after = 0;
        sim_fs_get(r.fs, name, &after);
        CHECK_EQ(after, end18);
        uint64_t ids[64];
        CHECK_EQ(rig_next_all(&r, ids, NULL, 64), expect);
        for (uint64_t i = 0; i < expect; i++)
            CHECK_EQ(ids[i], i + 1);
        rig_reopen(&r);
        audit_spool_issues(r.sp, &n);
        CHECK_EQ(n, 0);
        CHECK_EQ(audit_spool_stats(r.sp)->replayed, expect);
        rig_free(&r);
    }
}

/* A corrupt record in a middle segment: reported, the rest of that segment skipped (the file
 * is left as it is), later segments replayed. */
static void t_corrupt_middle(void)
{
    rig_t r;
    rig_init(&r, NULL);
    rig_open(&r);
    for (uint64_t id = 1; id <= 300; id++)
        CHECK_EQ(rig_append(&r, id, NULL), AUDIT_SPOOL_OK);
    rig_settle(&r);
    audit_spool_close(r.sp);
    char s0[AUDIT_SPOOL_NAME_LEN + 1], s1[AUDIT_SPOOL_NAME_LEN + 1];
    CHECK(rig_segment(&r, 0, s0) && rig_segment(&r, 1, s1));
    char s3[AUDIT_SPOOL_NAME_LEN + 1];
    CHECK(rig_segment(&r, 3, s3)); /* segment 1 is in the middle */
    /* Records per segment. */
    size_t len0, len1;
    sim_fs_get(r.fs, s0, &len0);
    sim_fs_get(r.fs, s1, &len1);
    int in0 = 0;
    for (size_t off = 32; off < len0; in0++)
        off += 8 + le32(sim_fs_get(r.fs, s0, &len0) + off);
    size_t off5 = good_end(&r, s1, 5);
    sim_fs_flip(r.fs, s1, off5 + 4); /* record 6 of segment 1: its CRC */
    rig_open(&r);
    size_t n = 0;
    const audit_spool_issue_t *is = audit_spool_issues(r.sp, &n);
    CHECK_EQ(n, 1);
    CHECK_EQ(is[0].kind, AUDIT_SPOOL_CRC);
    CHECK_EQ(is[0].offset, off5);
    CHECK_EQ(is[0].bytes, len1 - off5);
    CHECK(!is[0].truncated);
    size_t after;
    sim_fs_get(r.fs, s1, &after);
    CHECK_EQ(after, len1);
    uint64_t ids[400];
    size_t got = rig_next_all(&r, ids, NULL, 400);
    int in1 = 0;
    for (size_t off = 32; off < len1; in1++)
        off += 8 + le32(sim_fs_get(r.fs, s1, &len1) + off);
    CHECK_EQ(got, 300 - (size_t)(in1 - 5));
    uint64_t want = 1;
    for (size_t i = 0; i < got; i++) {
        if (want == (uint64_t)in0 + 6)
            want = (uint64_t)in0 + (uint64_t)in1 + 1; /* skipped: records 6.. of segment 1 */
        CHECK_EQ(ids[i], want);
        want++;
    }
    CHECK_EQ(audit_spool_stats(r.sp)->corrupt_bytes, len1 - off5);
    rig_free(&r);
}

/* A bad header (or a file too short for one) is reported and the segment deleted. */
static void t_bad_header(void)
{
    rig_t r;
    rig_init(&r, NULL);
    rig_open(&r);
    for (uint64_t id = 1; id <= 300; id++)
        CHECK_EQ(rig_append(&r, id, NULL), AUDIT_SPOOL_OK);
    rig_settle(&r);
    audit_spool_close(r.sp);
    size_t before = nsegments(&r);
    char s1[AUDIT_SPOOL_NAME_LEN + 1], s2[AUDIT_SPOOL_NAME_LEN + 1];
    rig_segment(&r, 1, s1);
    rig_segment(&r, 2, s2);
    sim_fs_flip(r.fs, s1, 3);  /* magic */
    sim_fs_flip(r.fs, s2, 17); /* segment number (the CRC catches it) */
    sim_fs_put(r.fs, "00000000000000000099.spool", "MSHD", 4);
    sim_fs_put(r.fs, "notes.txt", "not a segment", 13);
    rig_open(&r);
    size_t n = 0;
    const audit_spool_issue_t *is = audit_spool_issues(r.sp, &n);
    CHECK_EQ(n, 3);
    for (size_t i = 0; i < n; i++)
        CHECK_EQ(is[i].kind, AUDIT_SPOOL_HEADER);
    CHECK_EQ(nsegments(&r), before - 2);
    size_t l;
    CHECK(sim_fs_get(r.fs, s1, &l) == NULL);
    CHECK(sim_fs_get(r.fs, "notes.txt", &l) != NULL);
    uint64_t ids[400];
    size_t got = rig_next_all(&r, ids, NULL, 400);
    for (size_t i = 1; i < got; i++)
        CHECK(ids[i] > ids[i - 1]);
    /* The next segment is numbered past every name seen. */
    CHECK_EQ(rig_append(&r, 1000, NULL), AUDIT_SPOOL_OK);
    rig_settle(&r);
    CHECK(sim_fs_get(r.fs, "00000000000000000100.spool", &l) != NULL);
    rig_free(&r);
}

/* Segments rotate at segment_bytes; a record longer than a segment gets one of its own. */
static void t_rotation(void)
{
    rig_t r;
    rig_init(&r, NULL);
    r.cfg.max_record = 40000;
    rig_open(&r);
    for (uint64_t id = 1; id <= 400; id++)
        CHECK_EQ(rig_append(&r, id, NULL), AUDIT_SPOOL_OK);
    static uint8_t big[30000];
    memset(big, 'x', sizeof(big));
    CHECK_EQ(audit_spool_append(r.sp, big, sizeof(big), r.now, NULL), AUDIT_SPOOL_OK);
    CHECK_EQ(rig_append(&r, 401, NULL), AUDIT_SPOOL_OK);
    rig_settle(&r);
    char name[AUDIT_SPOOL_NAME_LEN + 1];
    size_t nseg = nsegments(&r), bigs = 0;
    CHECK(nseg >= 6);
    CHECK_EQ(audit_spool_stats(r.sp)->segments, nseg);
    for (size_t i = 0; rig_segment(&r, i, name); i++) {
        size_t len;
        sim_fs_get(r.fs, name, &len);
        if (len > r.cfg.segment_bytes) {
            bigs++;
            CHECK_EQ(len, 32 + 8 + sizeof(big));
        }
    }
    CHECK_EQ(bigs, 1);
    uint64_t bytes;
    sim_fs_count(r.fs, AUDIT_SPOOL_SUFFIX, &bytes);
    CHECK_EQ(audit_spool_stats(r.sp)->bytes, bytes);
    /* Handles stay few however many segments there are. */
    CHECK(sim_fs_stats(r.fs)->open_handles <= 3);
    rig_free(&r);
}

/* Acknowledgements in any order; a segment goes when all of its records are acknowledged. */
static void t_ack_out_of_order(void)
{
    rig_t r;
    rig_init(&r, NULL);
    rig_open(&r);
    uint64_t seqs[300];
    for (uint64_t id = 1; id <= 300; id++)
        CHECK_EQ(rig_append(&r, id, NULL), AUDIT_SPOOL_OK);
    rig_settle(&r);
    CHECK_EQ(rig_next_all(&r, NULL, seqs, 300), 300);
    size_t nseg = nsegments(&r);
    CHECK(nseg >= 4);
    for (int i = 299; i >= 1; i--) /* all but the first, newest first */
        audit_spool_ack(r.sp, seqs[i]);
    CHECK_EQ(nsegments(&r), nseg); /* the first segment holds an unacknowledged record */
    CHECK_EQ(audit_spool_stats(r.sp)->pending, 1);
    audit_spool_ack(r.sp, seqs[5]); /* again: ignored */
    audit_spool_ack(r.sp, 999999);  /* never handed out: ignored */
    CHECK_EQ(audit_spool_stats(r.sp)->acks_ignored, 2);
    audit_spool_ack(r.sp, seqs[0]);
    CHECK_EQ(nsegments(&r), 1);
    CHECK_EQ(audit_spool_stats(r.sp)->pending, 0);
    /* Interleaved, as two partitions would. */
    for (uint64_t id = 301; id <= 600; id++)
        CHECK_EQ(rig_append(&r, id, NULL), AUDIT_SPOOL_OK);
    CHECK_EQ(rig_next_all(&r, NULL, seqs, 300), 300);
    for (int i = 0; i < 300; i += 2)
        audit_spool_ack(r.sp, seqs[i]);
    CHECK(nsegments(&r) >= 4);
    for (int i = 1; i < 300; i += 2)
        audit_spool_ack(r.sp, seqs[i]);
    CHECK_EQ(nsegments(&r), 1);
    rig_free(&r);
}

/* A failed delivery rewinds: every unacknowledged record from there comes again, in order,
 * also when it must be read back from an older segment. */
static void t_rewind(void)
{
    rig_t r;
    rig_init(&r, NULL);
    rig_open(&r);
    uint64_t ids[400], seqs[400];
    for (uint64_t id = 1; id <= 300; id++)
        CHECK_EQ(rig_append(&r, id, NULL), AUDIT_SPOOL_OK);
    CHECK_EQ(rig_next_all(&r, ids, seqs, 10), 10);
    audit_spool_ack(r.sp, 2);
    audit_spool_ack(r.sp, 4);
    audit_spool_rewind(r.sp, 3);
    CHECK_EQ(rig_next_all(&r, ids, seqs, 3), 3);
    CHECK_EQ(seqs[0], 3);
    CHECK_EQ(seqs[1], 5); /* 4 was acknowledged */
    CHECK_EQ(seqs[2], 6);
    CHECK_EQ(ids[0], 3);
    /* Deliver the rest, acknowledge some, rewind to the start of the oldest segment. */
    size_t n = rig_next_all(&r, ids, seqs, 400);
    CHECK_EQ(n, 294);
    for (uint64_t s = 100; s < 200; s++)
        audit_spool_ack(r.sp, s);
    audit_spool_rewind(r.sp, 1);
    n = rig_next_all(&r, ids, seqs, 400);
    CHECK_EQ(n, 300 - 2 - 100);
    uint64_t prev = 0;
    for (size_t i = 0; i < n; i++) {
        CHECK(seqs[i] > prev);
        CHECK(seqs[i] != 2 && seqs[i] != 4 && (seqs[i] < 100 || seqs[i] >= 200));
        CHECK_EQ(ids[i], seqs[i]);
        prev = seqs[i];
    }
    /* Rewinding forward does nothing; rewinding below the floor starts at the floor. */
    audit_spool_rewind(r.sp, 5000);
    CHECK_EQ(rig_next_all(&r, NULL, NULL, 400), 0);
    audit_spool_ack(r.sp, 1);
    audit_spool_rewind(r.sp, 0);
    CHECK_EQ(rig_next_all(&r, NULL, seqs, 400), 300 - 3 - 100);
    CHECK_EQ(seqs[0], 3);
    rig_free(&r);
}

/* Drop-newest: once full, new records are dropped and counted, the bound holds, and room made
 * by acknowledgements is used again. */
static void t_drop_newest(void)
{
    rig_t r;
    rig_init(&r, NULL);
    r.cfg.max_bytes = 64 << 10;
    rig_open(&r);
    uint64_t ok = 0, dropped = 0, first_drop = 0;
    for (uint64_t id = 1; id <= 1000; id++) {
        audit_spool_result_t res = rig_append(&r, id, NULL);
        if (res == AUDIT_SPOOL_OK)
            ok++;
        else {
            CHECK_EQ(res, AUDIT_SPOOL_DROPPED_FULL);
            dropped++;
            if (!first_drop)
                first_drop = id;
        }
        CHECK(audit_spool_stats(r.sp)->bytes <= r.cfg.max_bytes);
    }
    rig_settle(&r);
    const audit_spool_stats_t *st = audit_spool_stats(r.sp);
    CHECK(dropped > 0 && ok > 0);
    CHECK_EQ(st->dropped_full, dropped);
    CHECK_EQ(st->pending, ok);
    uint64_t bytes;
    sim_fs_count(r.fs, AUDIT_SPOOL_SUFFIX, &bytes);
    CHECK(bytes <= r.cfg.max_bytes);
    /* The oldest records are the ones kept (and later ones short enough to fit the room left). */
    uint64_t ids[1000], seqs[1000];
    CHECK_EQ(rig_next_all(&r, ids, seqs, 1000), ok);
    for (uint64_t i = 0; i < ok; i++)
        CHECK(i == 0 ? ids[i] == 1 : ids[i] > ids[i - 1]);
    for (uint64_t i = 0; i + 1 < first_drop; i++)
        CHECK_EQ(ids[i], i + 1); /* everything before the first drop */
    for (uint64_t i = 0; i < ok; i++)
        audit_spool_ack(r.sp, seqs[i]);
    CHECK_EQ(rig_append(&r, 5000, NULL), AUDIT_SPOOL_OK);
    rig_free(&r);
}

/* Drop-oldest: the oldest whole segment goes, its unacknowledged records counted exactly;
 * new records are kept. */
static void t_drop_oldest(void)
{
    rig_t r;
    rig_init(&r, NULL);
    r.cfg.max_bytes = 64 << 10;
    r.cfg.policy = AUDIT_SPOOL_DROP_OLDEST;
    rig_open(&r);
    for (uint64_t id = 1; id <= 1000; id++) {
        CHECK_EQ(rig_append(&r, id, NULL), AUDIT_SPOOL_OK);
        CHECK(audit_spool_stats(r.sp)->bytes <= r.cfg.max_bytes);
        if (id == 20) { /* hand out and acknowledge a few of the oldest */
            uint64_t seqs[20];
            CHECK_EQ(rig_next_all(&r, NULL, seqs, 20), 20);
            for (int i = 0; i < 10; i++)
                audit_spool_ack(r.sp, seqs[i]);
        }
    }
    rig_settle(&r);
    const audit_spool_stats_t *st = audit_spool_stats(r.sp);
    CHECK(st->dropped_oldest > 0);
    CHECK_EQ(st->dropped_full, 0);
    /* Every record appended is acknowledged, dropped or still pending. */
    CHECK_EQ(st->acked + st->dropped_oldest + st->pending, 1000);
    uint64_t ids[1000];
    size_t n = rig_next_all(&r, ids, NULL, 1000);
    CHECK_EQ(n, st->pending);
    CHECK_EQ(ids[n - 1], 1000);
    CHECK_EQ(ids[0], 1000 - n + 1); /* contiguous newest */
    rig_free(&r);
}

/* Drop-oldest with only the segment being written: the new record is dropped. */
static void t_drop_oldest_single_segment(void)
{
    rig_t r;
    rig_init(&r, NULL);
    r.cfg.max_bytes = 8192;
    r.cfg.segment_bytes = 1 << 20; /* clamped to max_bytes / 4 */
    r.cfg.max_record = 1024;
    r.cfg.policy = AUDIT_SPOOL_DROP_OLDEST;
    rig_open(&r);
    static uint8_t big[1024];
    int full = 0;
    for (int i = 0; i < 20; i++) {
        audit_spool_result_t res = audit_spool_append(r.sp, big, sizeof(big), r.now, NULL);
        full += res == AUDIT_SPOOL_DROPPED_FULL;
    }
    CHECK(audit_spool_stats(r.sp)->segments >= 4);
    CHECK(audit_spool_stats(r.sp)->bytes <= 8192);
    CHECK(audit_spool_stats(r.sp)->dropped_oldest > 0);
    CHECK_EQ(audit_spool_stats(r.sp)->dropped_full, (uint64_t)full);
    rig_free(&r);
}

/* Empty and oversized records are refused and counted. */
static void t_size_limits(void)
{
    rig_t r;
    rig_init(&r, NULL);
    rig_open(&r);
    static uint8_t big[4097];
    CHECK_EQ(audit_spool_append(r.sp, big, 0, r.now, NULL), AUDIT_SPOOL_DROPPED_SIZE);
    CHECK_EQ(audit_spool_append(r.sp, big, 4097, r.now, NULL), AUDIT_SPOOL_DROPPED_SIZE);
    CHECK_EQ(audit_spool_append(r.sp, big, 4096, r.now, NULL), AUDIT_SPOOL_OK);
    CHECK_EQ(audit_spool_stats(r.sp)->dropped_size, 2);
    CHECK_STR(audit_spool_result_name(AUDIT_SPOOL_DROPPED_SIZE), "dropped_size");
    rig_free(&r);
}

/* A failed write keeps the batch in memory and retries it at the same offset after a backoff;
 * nothing is lost or duplicated. */
static void t_write_error(void)
{
    rig_t r;
    rig_init(&r, NULL);
    rig_open(&r);
    for (uint64_t id = 1; id <= 5; id++)
        CHECK_EQ(rig_append(&r, id, NULL), AUDIT_SPOOL_OK);
    sim_fs_fail_next(r.fs, SIM_FS_WRITE, EIO, 2);
    r.now += 5;
    audit_spool_tick(r.sp, r.now);
    CHECK_EQ(audit_spool_stats(r.sp)->write_errors, 1);
    audit_spool_sync_t req;
    CHECK(!audit_spool_take_sync(r.sp, &req));
    uint64_t d1 = audit_spool_deadline(r.sp), wait1 = d1 - r.now;
    CHECK(d1 > r.now && d1 != UINT64_MAX);
    r.now = d1;
    audit_spool_tick(r.sp, r.now);
    CHECK_EQ(audit_spool_stats(r.sp)->write_errors, 2);
    CHECK(audit_spool_deadline(r.sp) - r.now > wait1); /* the backoff grows */
    /* Meanwhile records are still handed out (from memory). */
    CHECK_EQ(rig_next_all(&r, NULL, NULL, 10), 5);
    for (uint64_t id = 6; id <= 8; id++)
        CHECK_EQ(rig_append(&r, id, NULL), AUDIT_SPOOL_OK);
    r.now = audit_spool_deadline(r.sp);
    audit_spool_tick(r.sp, r.now);
    rig_syncs(&r);
    CHECK_EQ(audit_spool_stats(r.sp)->durable, 8);
    rig_reopen(&r);
    uint64_t ids[16];
    CHECK_EQ(rig_next_all(&r, ids, NULL, 16), 8);
    for (int i = 0; i < 8; i++)
        CHECK_EQ(ids[i], (uint64_t)i + 1);
    rig_free(&r);
}

/* While writes fail the buffer grows to max_buffer, then appends are dropped and counted. */
static void t_disk_full(void)
{
    rig_t r;
    rig_init(&r, NULL);
    r.cfg.max_buffer = 8192;
    rig_open(&r);
    sim_fs_faults_t f = {.capacity = 4096};
    sim_fs_set_faults(r.fs, &f);
    uint64_t ok = 0, io = 0;
    for (uint64_t id = 1; id <= 200; id++) {
        audit_spool_result_t res = rig_append(&r, id, NULL);
        ok += res == AUDIT_SPOOL_OK;
        io += res == AUDIT_SPOOL_DROPPED_IO;
        r.now++;
        audit_spool_tick(r.sp, r.now);
    }
    CHECK(io > 0);
    CHECK_EQ(audit_spool_stats(r.sp)->dropped_io, io);
    CHECK(audit_spool_stats(r.sp)->write_errors > 0);
    /* The disk frees up: everything accepted reaches it, in order. */
    sim_fs_set_faults(r.fs, NULL);
    r.now += 2000;
    audit_spool_tick(r.sp, r.now);
    rig_settle(&r);
    rig_reopen(&r);
    uint64_t ids[256];
    CHECK_EQ(rig_next_all(&r, ids, NULL, 256), ok);
    for (uint64_t i = 1; i < ok; i++)
        CHECK(ids[i] > ids[i - 1]);
    rig_free(&r);
}

/* A failed sync: those records are never called durable (still delivered), the segment is
 * sealed and new records go to a new one whose syncs work. */
static void t_sync_error(void)
{
    rig_t r;
    rig_init(&r, NULL);
    rig_open(&r);
    for (uint64_t id = 1; id <= 5; id++)
        CHECK_EQ(rig_append(&r, id, NULL), AUDIT_SPOOL_OK);
    audit_spool_flush(r.sp, r.now);
    sim_fs_fail_next(r.fs, SIM_FS_SYNC, EIO, 1);
    rig_syncs(&r);
    const audit_spool_stats_t *st = audit_spool_stats(r.sp);
    CHECK_EQ(st->sync_errors, 1);
    CHECK_EQ(st->durable, 0);
    CHECK_EQ(st->unsynced, 5);
    CHECK_EQ(rig_append(&r, 6, NULL), AUDIT_SPOOL_OK);
    rig_settle(&r);
    CHECK_EQ(st->durable, 1);
    CHECK_EQ(nsegments(&r), 2);
    CHECK_EQ(rig_next_all(&r, NULL, NULL, 10), 6);
    rig_free(&r);
}

/* Creating a segment fails: the append is dropped (counted), later ones work again. */
static void t_create_error(void)
{
    rig_t r;
    rig_init(&r, NULL);
    rig_open(&r);
    sim_fs_fail_next(r.fs, SIM_FS_CREATE, EACCES, 1);
    CHECK_EQ(rig_append(&r, 1, NULL), AUDIT_SPOOL_DROPPED_IO);
    CHECK_EQ(rig_append(&r, 2, NULL), AUDIT_SPOOL_DROPPED_IO); /* within the backoff */
    r.now += 1000;
    CHECK_EQ(rig_append(&r, 3, NULL), AUDIT_SPOOL_OK);
    CHECK_EQ(audit_spool_stats(r.sp)->dropped_io, 2);
    rig_free(&r);
}

/* A backlog far larger than the buffers is read back from the files, in order. */
static void t_read_back(void)
{
    rig_t r;
    rig_init(&r, NULL);
    r.cfg.max_bytes = 4 << 20;
    rig_open(&r);
    for (uint64_t id = 1; id <= 10000; id++) {
        CHECK_EQ(rig_append(&r, id, NULL), AUDIT_SPOOL_OK);
        if (id % 100 == 0) {
            r.now += 5;
            audit_spool_tick(r.sp, r.now);
            rig_syncs(&r);
        }
    }
    uint64_t reads = sim_fs_stats(r.fs)->reads;
    audit_spool_rec_t rec;
    uint64_t want = 1;
    while (audit_spool_next(r.sp, &rec)) {
        CHECK_EQ(rec_check(rec.data, rec.len, SPAN), want);
        audit_spool_ack(r.sp, rec.seq);
        want++;
    }
    CHECK_EQ(want, 10001);
    /* Read in chunks, not per record. */
    uint64_t calls = sim_fs_stats(r.fs)->reads - reads;
    CHECK(calls > 100 && calls < 10000 / 2);
    CHECK_EQ(nsegments(&r), 1);
    rig_free(&r);
}

/* Records not synced before a power loss may go; synced ones never do. */
static void t_power_loss(void)
{
    rig_t r;
    rig_init(&r, NULL);
    rig_open(&r);
    for (uint64_t id = 1; id <= 100; id++)
        CHECK_EQ(rig_append(&r, id, NULL), AUDIT_SPOOL_OK);
    rig_settle(&r);
    for (uint64_t id = 101; id <= 200; id++)
        CHECK_EQ(rig_append(&r, id, NULL), AUDIT_SPOOL_OK);
    audit_spool_flush(r.sp, r.now); /* written, not synced */
    audit_spool_close(r.sp);
    sim_fs_crash(r.fs, 1);
    rig_open(&r);
    uint64_t ids[256];
    size_t n = rig_next_all(&r, ids, NULL, 256);
    CHECK(n >= 100);
    for (size_t i = 0; i < n; i++)
        CHECK_EQ(ids[i], i + 1);
    rig_free(&r);
}

/* A segment whose unlink fails stays counted (the bound still sees it) and is deleted later. */
static void t_unlink_retry(void)
{
    rig_t r;
    rig_init(&r, NULL);
    rig_open(&r);
    uint64_t seqs[300];
    for (uint64_t id = 1; id <= 300; id++)
        CHECK_EQ(rig_append(&r, id, NULL), AUDIT_SPOOL_OK);
    rig_settle(&r);
    CHECK_EQ(rig_next_all(&r, NULL, seqs, 300), 300);
    size_t nseg = nsegments(&r);
    CHECK(nseg >= 3);
    sim_fs_fail_next(r.fs, SIM_FS_UNLINK, EIO, 100);
    for (int i = 0; i < 300; i++)
        audit_spool_ack(r.sp, seqs[i]);
    /* The unlinks failed: the files are still there and still counted. */
    uint64_t bytes;
    CHECK_EQ(nsegments(&r), nseg);
    sim_fs_count(r.fs, AUDIT_SPOOL_SUFFIX, &bytes);
    CHECK_EQ(audit_spool_stats(r.sp)->segments, nseg);
    CHECK_EQ(audit_spool_stats(r.sp)->bytes, bytes);
    CHECK(audit_spool_stats(r.sp)->io_errors >= nseg - 1);
    sim_fs_fail_next(r.fs, SIM_FS_UNLINK, 0, 0);
    uint64_t d = audit_spool_deadline(r.sp);
    CHECK(d != UINT64_MAX);
    r.now = d;
    audit_spool_tick(r.sp, r.now);
    CHECK_EQ(nsegments(&r), 1);
    CHECK_EQ(audit_spool_stats(r.sp)->segments, 1);
    CHECK_EQ(audit_spool_deadline(r.sp), UINT64_MAX);
    rig_free(&r);
}

/* A read error at read-back is retried; a lasting one gives up the rest of that segment
 * (counted), never hands out a wrong record, and goes on with the next segment. */
static void t_read_error(void)
{
    rig_t r;
    rig_init(&r, NULL);
    rig_open(&r);
    for (uint64_t id = 1; id <= 300; id++)
        CHECK_EQ(rig_append(&r, id, NULL), AUDIT_SPOOL_OK);
    rig_settle(&r);
    audit_spool_close(r.sp);
    rig_open(&r); /* everything is read back from the files now */
    uint64_t ids[400];
    CHECK_EQ(rig_next_all(&r, ids, NULL, 5), 5);
    audit_spool_rec_t rec;
    /* A passing error: one call says "nothing now", the next goes on. */
    uint64_t reads = sim_fs_stats(r.fs)->reads;
    size_t n = 5;
    for (int i = 0; i < 2000 && sim_fs_stats(r.fs)->reads == reads; i++) {
        CHECK(audit_spool_next(r.sp, &rec));
        CHECK_EQ(rec_check(rec.data, rec.len, SPAN), ++n);
    }
    sim_fs_fail_next(r.fs, SIM_FS_READ, EIO, 1);
    while (n < 300) {
        if (!audit_spool_next(r.sp, &rec)) {
            CHECK_EQ(audit_spool_stats(r.sp)->io_errors, 1);
            continue;
        }
        CHECK_EQ(rec_check(rec.data, rec.len, SPAN), ++n);
    }
    CHECK_EQ(audit_spool_stats(r.sp)->lost_corrupt, 0);
    /* A lasting error: rewind to the start, every read fails. */
    audit_spool_rewind(r.sp, 1);
    sim_fs_fail_next(r.fs, SIM_FS_READ, EIO, AUDIT_SPOOL_READ_ATTEMPTS);
    for (int i = 0; i + 1 < AUDIT_SPOOL_READ_ATTEMPTS; i++)
        CHECK(!audit_spool_next(r.sp, &rec));
    CHECK(audit_spool_next(r.sp, &rec)); /* the first segment given up, the second read */
    const audit_spool_stats_t *st = audit_spool_stats(r.sp);
    CHECK(st->lost_corrupt > 50);
    CHECK_EQ(rec.seq, st->lost_corrupt + 1);
    CHECK_EQ(rec_check(rec.data, rec.len, SPAN), rec.seq);
    size_t ni = 0;
    const audit_spool_issue_t *is = audit_spool_issues(r.sp, &ni);
    CHECK_EQ(ni, 1);
    CHECK_EQ(is[0].kind, AUDIT_SPOOL_IO);
    CHECK(!is[0].at_open);
    /* Rewinding over the lost part does not report it again. */
    audit_spool_rewind(r.sp, 1);
    CHECK(audit_spool_next(r.sp, &rec));
    CHECK_EQ(rec.seq, st->lost_corrupt + 1);
    audit_spool_issues(r.sp, &ni);
    CHECK_EQ(ni, 1);
    rig_free(&r);
}

/* A killed process keeps the page cache: what was written but not synced comes back, and the
 * new run syncs it before calling it durable. */
static void t_process_kill(void)
{
    rig_t r;
    rig_init(&r, NULL);
    rig_open(&r);
    for (uint64_t id = 1; id <= 50; id++)
        CHECK_EQ(rig_append(&r, id, NULL), AUDIT_SPOOL_OK);
    audit_spool_flush(r.sp, r.now); /* written, never synced */
    audit_spool_close(r.sp);
    sim_fs_crash(r.fs, 0);
    rig_open(&r);
    CHECK_EQ(audit_spool_stats(r.sp)->replayed, 50);
    CHECK_EQ(audit_spool_stats(r.sp)->durable, 0);
    audit_spool_sync_t req;
    CHECK(audit_spool_take_sync(r.sp, &req));
    CHECK_EQ(req.from_seq, 1);
    CHECK_EQ(req.upto_seq, 51);
    CHECK(req.dir);
    audit_spool_synced(r.sp, &req, audit_spool_sync_run(r.sp, &req), r.now);
    CHECK_EQ(audit_spool_stats(r.sp)->durable, 50);
    audit_spool_close(r.sp);
    sim_fs_crash(r.fs, 1); /* now a power loss keeps them */
    rig_open(&r);
    CHECK_EQ(audit_spool_stats(r.sp)->replayed, 50);
    rig_free(&r);
}

static void t_names_and_config(void)
{
    uint64_t no = 0;
    CHECK(audit_spool_segment_parse("00000000000000000042.spool", &no));
    CHECK_EQ(no, 42);
    CHECK(!audit_spool_segment_parse("0000000000000000042.spool", &no));
    CHECK(!audit_spool_segment_parse("00000000000000000042.spoo", &no));
    CHECK(!audit_spool_segment_parse("0000000000000000004x.spool", &no));
    CHECK(!audit_spool_segment_parse("99999999999999999999.spool", &no)); /* > 2^64 */
    CHECK(audit_spool_segment_parse("18446744073709551615.spool", &no));
    char name[AUDIT_SPOOL_NAME_LEN + 1];
    audit_spool_segment_name(7, name);
    CHECK_STR(name, "00000000000000000007.spool");

    rig_t r;
    rig_init(&r, NULL);
    char err[256];
    r.cfg.max_bytes = 1000;
    CHECK(audit_spool_open(&r.cfg, &r.layer, 0, err, sizeof(err)) == NULL);
    CHECK_CONTAINS(err, "too small");
    r.cfg.max_bytes = 1 << 20;
    r.cfg.max_record = AUDIT_SPOOL_RECORD_MAX + 1;
    CHECK(audit_spool_open(&r.cfg, &r.layer, 0, err, sizeof(err)) == NULL);
    CHECK_CONTAINS(err, "max record");
    r.cfg.max_record = 4096;
    sim_fs_fail_next(r.fs, SIM_FS_LIST, EACCES, 1);
    CHECK(audit_spool_open(&r.cfg, &r.layer, 0, err, sizeof(err)) == NULL);
    CHECK_CONTAINS(err, "Permission denied");
    sim_fs_delete(r.fs);
}

int main(void)
{
    mesh_log_init("test", MESH_LOG_OFF, MESH_LOG_FORMAT_TEXT);
    RUN(t_roundtrip);
    RUN(t_durable_after_sync);
    RUN(t_format_on_disk);
    RUN(t_replay);
    RUN(t_torn_tail);
    RUN(t_corrupt_middle);
    RUN(t_bad_header);
    RUN(t_rotation);
    RUN(t_ack_out_of_order);
    RUN(t_rewind);
    RUN(t_drop_newest);
    RUN(t_drop_oldest);
    RUN(t_drop_oldest_single_segment);
    RUN(t_size_limits);
    RUN(t_write_error);
    RUN(t_disk_full);
    RUN(t_sync_error);
    RUN(t_create_error);
    RUN(t_read_back);
    RUN(t_power_loss);
    RUN(t_unlink_retry);
    RUN(t_read_error);
    RUN(t_process_kill);
    RUN(t_names_and_config);
    return 0;
}
