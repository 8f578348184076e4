/*
 * tests/unit/audit/test_spool_posix.c: the audit spool over the real file layer
 * (audit/spool_fs_posix.h) in a temporary folder: records survive a restart in order; segment
 * files written by hand (framing computed here, with a bitwise CRC-32C) replay, and when cut
 * mid-record or with a flipped byte, the bad tail is truncated on disk (or, in a middle
 * segment, skipped and left as it is) and reported; the folder lock; errors name the path.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/spool.h"
#include "audit/spool_fs_posix.h"
#include "common/log.h"
#include "tests/check.h"

static char tmpdir[64];

static void cleanup(void)
{
    DIR *d = opendir(tmpdir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char p[512];
        snprintf(p, sizeof(p), "%s/%s", tmpdir, de->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(tmpdir);
}

static void clear_dir(void)
{
    cleanup();
    CHECK(mkdir(tmpdir, 0700) == 0);
}

static uint32_t crc_ref(uint32_t crc, const uint8_t *p, size_t n)
{
    uint32_t c = ~crc;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    }
    return ~c;
}

static void le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Writes segment no by hand with the given records; returns the offsets where each record
 * ends (ends[i]) through ends. */
static void write_segment(uint64_t no, const char *const *recs, int n, size_t *ends)
{
    uint8_t buf[4096];
    memset(buf, 0, 32);
    memcpy(buf, "MSHDSPL\n", 8);
    le32(buf + 8, 1);
    le32(buf + 12, 32);
    le32(buf + 16, (uint32_t)no);
    le32(buf + 20, (uint32_t)(no >> 32));
    le32(buf + 28, crc_ref(0, buf, 28));
    size_t off = 32;
    for (int i = 0; i < n; i++) {
        size_t len = strlen(recs[i]);
        le32(buf + off, (uint32_t)len);
        memcpy(buf + off + 8, recs[i], len);
        le32(buf + off + 4, crc_ref(crc_ref(0, buf + off, 4), buf + off + 8, len));
        off += 8 + len;
        ends[i] = off;
    }
    char name[AUDIT_SPOOL_NAME_LEN + 1], path[256];
    audit_spool_segment_name(no, name);
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    CHECK(write(fd, buf, off) == (ssize_t)off);
    close(fd);
}

static off_t file_size(uint64_t no)
{
    char name[AUDIT_SPOOL_NAME_LEN + 1], path[256];
    audit_spool_segment_name(no, name);
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    struct stat st;
    if (stat(path, &st) < 0)
        return -1;
    return st.st_size;
}

typedef struct open_spool {
    audit_spool_posix_t *fs;
    audit_spool_t *sp;
} open_spool_t;

static open_spool_t sp_open(const audit_spool_cfg_t *cfg)
{
    char err[256];
    open_spool_t o;
    o.fs = audit_spool_posix_new(tmpdir, err, sizeof(err));
    if (!o.fs)
        fprintf(stderr, "%s\n", err);
    CHECK(o.fs);
    audit_spool_fs_t layer = audit_spool_posix_fs(o.fs);
    o.sp = audit_spool_open(cfg, &layer, 0, err, sizeof(err));
    if (!o.sp)
        fprintf(stderr, "%s\n", err);
    CHECK(o.sp);
    return o;
}

static void sp_close(open_spool_t *o)
{
    audit_spool_close(o->sp);
    audit_spool_posix_delete(o->fs);
}

static void run_syncs(audit_spool_t *sp)
{
    audit_spool_sync_t req;
    while (audit_spool_take_sync(sp, &req))
        audit_spool_synced(sp, &req, audit_spool_sync_run(sp, &req), 0);
}

/* Records go to disk, come back in order after a restart, and the folder holds segments. */
static void t_roundtrip(void)
{
    clear_dir();
    audit_spool_cfg_t cfg = {.segment_bytes = 64 << 10, .max_bytes = 16 << 20};
    open_spool_t o = sp_open(&cfg);
    char rec[512];
    for (int i = 0; i < 2000; i++) {
        int n =
            snprintf(rec, sizeof(rec), "{\"event_id\":\"%06d\",\"pad\":\"%*s\"}", i, i % 300, "");
        CHECK_EQ(audit_spool_append(o.sp, rec, (size_t)n, 0, NULL), AUDIT_SPOOL_OK);
    }
    audit_spool_flush(o.sp, 0);
    run_syncs(o.sp);
    CHECK_EQ(audit_spool_stats(o.sp)->durable, 2000);
    CHECK(audit_spool_stats(o.sp)->segments > 4);
    sp_close(&o);

    o = sp_open(&cfg);
    CHECK_EQ(audit_spool_stats(o.sp)->replayed, 2000);
    audit_spool_rec_t r;
    int i = 0;
    while (audit_spool_next(o.sp, &r)) {
        int n =
            snprintf(rec, sizeof(rec), "{\"event_id\":\"%06d\",\"pad\":\"%*s\"}", i, i % 300, "");
        CHECK_EQ(r.len, n);
        CHECK(memcmp(r.data, rec, r.len) == 0);
        audit_spool_ack(o.sp, r.seq);
        i++;
    }
    CHECK_EQ(i, 2000);
    /* All acknowledged: the replayed segments are deleted. */
    run_syncs(o.sp);
    CHECK_EQ(audit_spool_stats(o.sp)->segments, 0);
    sp_close(&o);
    o = sp_open(&cfg);
    CHECK_EQ(audit_spool_stats(o.sp)->replayed, 0);
    sp_close(&o);
}

/* A last segment cut by hand in the middle of a record: the rest is truncated on disk. */
static void t_truncated_by_hand(void)
{
    clear_dir();
    const char *recs[] = {"first record", "second record", "third record, cut short"};
    size_t ends[3];
    write_segment(7, recs, 3, ends);
    char name[AUDIT_SPOOL_NAME_LEN + 1], path[256];
    audit_spool_segment_name(7, name);
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    CHECK(truncate(path, (off_t)ends[1] + 8 + 4) == 0);

    open_spool_t o = sp_open(NULL);
    size_t n;
    const audit_spool_issue_t *is = audit_spool_issues(o.sp, &n);
    CHECK_EQ(n, 1);
    CHECK_EQ(is[0].kind, AUDIT_SPOOL_TORN);
    CHECK_EQ(is[0].offset, ends[1]);
    CHECK_EQ(is[0].bytes, 12);
    CHECK(is[0].truncated);
    CHECK_EQ(file_size(7), (off_t)ends[1]);
    audit_spool_rec_t r;
    CHECK(audit_spool_next(o.sp, &r));
    CHECK_EQ(r.len, strlen(recs[0]));
    CHECK(memcmp(r.data, recs[0], r.len) == 0);
    CHECK(audit_spool_next(o.sp, &r));
    CHECK(memcmp(r.data, recs[1], r.len) == 0);
    CHECK(!audit_spool_next(o.sp, &r));
    /* New records go to a new segment numbered after it. */
    CHECK_EQ(audit_spool_append(o.sp, "new", 3, 0, NULL), AUDIT_SPOOL_OK);
    audit_spool_flush(o.sp, 0);
    run_syncs(o.sp);
    CHECK(file_size(8) > 0);
    sp_close(&o);
}

/* A flipped byte: in the last segment the tail from that record is truncated; in a middle
 * segment it is skipped and the file left as it is. */
static void t_flipped_byte(void)
{
    clear_dir();
    const char *a[] = {"a1", "a2 with the flipped byte", "a3"};
    const char *b[] = {"b1", "b2 with the flipped byte", "b3"};
    size_t ea[3], eb[3];
    write_segment(1, a, 3, ea);
    write_segment(2, b, 3, eb);
    char path[256], name[AUDIT_SPOOL_NAME_LEN + 1];
    for (uint64_t no = 1; no <= 2; no++) {
        audit_spool_segment_name(no, name);
        snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
        int fd = open(path, O_RDWR);
        CHECK(fd >= 0);
        size_t at = (no == 1 ? ea[0] : eb[0]) + 8 + 5;
        uint8_t c;
        CHECK(pread(fd, &c, 1, (off_t)at) == 1);
        c ^= 0x20;
        CHECK(pwrite(fd, &c, 1, (off_t)at) == 1);
        close(fd);
    }
    off_t size1 = file_size(1);
    open_spool_t o = sp_open(NULL);
    size_t n;
    const audit_spool_issue_t *is = audit_spool_issues(o.sp, &n);
    CHECK_EQ(n, 2);
    CHECK_EQ(is[0].segment, 1);
    CHECK_EQ(is[0].kind, AUDIT_SPOOL_CRC);
    CHECK(!is[0].truncated);
    CHECK_EQ(is[1].segment, 2);
    CHECK_EQ(is[1].kind, AUDIT_SPOOL_CRC);
    CHECK(is[1].truncated);
    CHECK_EQ(file_size(1), size1);
    CHECK_EQ(file_size(2), (off_t)eb[0]);
    audit_spool_rec_t r;
    CHECK(audit_spool_next(o.sp, &r));
    CHECK(r.len == 2 && memcmp(r.data, "a1", 2) == 0);
    CHECK(audit_spool_next(o.sp, &r));
    CHECK(r.len == 2 && memcmp(r.data, "b1", 2) == 0);
    CHECK(!audit_spool_next(o.sp, &r));
    CHECK_EQ(audit_spool_stats(o.sp)->corrupt_bytes, (size1 - ea[0]) + (eb[2] - eb[0]));
    sp_close(&o);
}

/* One process per folder; other files in it are left alone. */
static void t_lock(void)
{
    clear_dir();
    char err[256];
    audit_spool_posix_t *a = audit_spool_posix_new(tmpdir, err, sizeof(err));
    CHECK(a);
    audit_spool_posix_t *b = audit_spool_posix_new(tmpdir, err, sizeof(err));
    CHECK(!b);
    CHECK_CONTAINS(err, "in use by another process");
    CHECK_CONTAINS(err, tmpdir);
    audit_spool_posix_delete(a);
    b = audit_spool_posix_new(tmpdir, err, sizeof(err));
    CHECK(b);
    audit_spool_posix_delete(b);
}

/* Errors name the path and the cause. */
static void t_errors(void)
{
    clear_dir();
    char file[256], sub[300], err[512];
    snprintf(file, sizeof(file), "%s/plain-file", tmpdir);
    int fd = open(file, O_WRONLY | O_CREAT, 0600);
    CHECK(fd >= 0);
    close(fd);
    snprintf(sub, sizeof(sub), "%s/spool", file);
    CHECK(!audit_spool_posix_new(sub, err, sizeof(err)));
    CHECK_CONTAINS(err, sub);
    CHECK_CONTAINS(err, "Not a directory");
    CHECK(!audit_spool_posix_new("", err, sizeof(err)));
    /* A folder that is created when missing. */
    snprintf(sub, sizeof(sub), "%s/new", tmpdir);
    audit_spool_posix_t *p = audit_spool_posix_new(sub, err, sizeof(err));
    CHECK(p);
    audit_spool_posix_delete(p);
    snprintf(file, sizeof(file), "%s/%s", sub, AUDIT_SPOOL_LOCK_NAME);
    unlink(file);
    CHECK(rmdir(sub) == 0);
}

int main(void)
{
    mesh_log_init("test", MESH_LOG_OFF, MESH_LOG_FORMAT_TEXT);
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/meshd-spool-XXXXXX", base && *base ? base : "/tmp");
    CHECK(mkdtemp(tmpdir));
    atexit(cleanup);
    RUN(t_roundtrip);
    RUN(t_truncated_by_hand);
    RUN(t_flipped_byte);
    RUN(t_lock);
    RUN(t_errors);
    return 0;
}
