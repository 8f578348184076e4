/*
 * tests/unit/audit/test_jsonl_file.c: the JSON-lines audit file (audit/jsonl_file.h) on a
 * temporary folder: lines are appended whole, files rotate by size keeping the newest records
 * in order, a full disk (/dev/full) and a file size limit (RLIMIT_FSIZE: a real short write)
 * lose records without a crash or a half line, each failure streak is logged once with the
 * path and strerror and its end with the count, failed rotations keep writing, a file that
 * ended inside a line is healed, and opens after a failure are paced by the clock.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/jsonl_file.h"
#include "common/log.h"
#include "tests/check.h"

static char dir[256];
static char logpath[300];

static void cleanup(void)
{
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (dir[0] && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

/* dir/name, kept until exit (a test's paths stay valid while it runs). */
static char *path_in(const char *name)
{
    static char bufs[64][400];
    static int k;
    CHECK(k < 64);
    char *p = bufs[k++];
    snprintf(p, 400, "%s/%s", dir, name);
    return p;
}

/* The whole file (NUL-terminated; "" when it does not exist). */
static char *slurp(const char *path)
{
    static char buf[1 << 16];
    buf[0] = '\0';
    FILE *fp = fopen(path, "r");
    if (!fp)
        return buf;
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* A record of exactly len bytes (no newline) that names its number. */
static const char *rec(int i, size_t len)
{
    static char buf[4096];
    int n = snprintf(buf, sizeof(buf), "{\"n\":%d,\"pad\":\"", i);
    while ((size_t)n < len - 2)
        buf[n++] = 'x';
    buf[n++] = '"';
    buf[n++] = '}';
    buf[n] = '\0';
    return buf;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Log lines written so far that contain needle. */
static int log_count(const char *needle)
{
    mesh_log_flush();
    const char *s = slurp(logpath);
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static void test_append_and_reopen(void)
{
    audit_jsonl_t f;
    char err[400];
    audit_jsonl_cfg_t cfg = {.path = path_in("a.jsonl"), .max_bytes = 0, .keep = 3};
    CHECK(audit_jsonl_open(&f, &cfg, err, sizeof(err)) == 0);
    for (int i = 0; i < 3; i++)
        CHECK(audit_jsonl_write(&f, rec(i, 30), 30, 0) == 0);
    audit_jsonl_close(&f);
    CHECK(audit_jsonl_open(&f, &cfg, err, sizeof(err)) == 0); /* appends */
    CHECK(audit_jsonl_write(&f, rec(3, 30), 30, 0) == 0);
    CHECK_EQ(f.stats.records, 1);
    CHECK_EQ(f.stats.bytes, 31);
    audit_jsonl_close(&f);
    const char *s = slurp(cfg.path);
    CHECK_EQ(count_lines(s), 4);
    CHECK_EQ(strlen(s), 4 * 31);
    CHECK(strncmp(s, "{\"n\":0,", 7) == 0);
    CHECK_CONTAINS(s, "}\n{\"n\":3,");
}

static void test_rotation_keeps_newest_in_order(void)
{
    audit_jsonl_t f;
    char err[400];
    /* 3 records of 31 bytes fit 100 bytes; 10 records: 4 files made, the oldest dropped */
    audit_jsonl_cfg_t cfg = {.path = path_in("r.jsonl"), .max_bytes = 100, .keep = 2};
    CHECK(audit_jsonl_open(&f, &cfg, err, sizeof(err)) == 0);
    for (int i = 0; i < 10; i++)
        CHECK(audit_jsonl_write(&f, rec(i, 30), 30, 0) == 0);
    CHECK_EQ(f.stats.rotations, 3);
    CHECK_EQ(f.stats.lost, 0);
    audit_jsonl_close(&f);
    CHECK(!exists(path_in("r.jsonl.3")));
    const char *names[] = {"r.jsonl.2", "r.jsonl.1", "r.jsonl"};
    int want = 3; /* records 0..2 went with the dropped file */
    for (int k = 0; k < 3; k++) {
        const char *p = path_in(names[k]);
        CHECK(file_size(p) <= 100);
        const char *s = slurp(p);
        for (const char *line = s; *line; line = strchr(line, '\n') + 1) {
            int n = -1;
            CHECK(sscanf(line, "{\"n\":%d,", &n) == 1);
            CHECK_EQ(n, want);
            want++;
        }
    }
    CHECK_EQ(want, 10);

    /* keep 0: PATH starts over */
    cfg = (audit_jsonl_cfg_t){.path = path_in("k0.jsonl"), .max_bytes = 100, .keep = 0};
    CHECK(audit_jsonl_open(&f, &cfg, err, sizeof(err)) == 0);
    for (int i = 0; i < 7; i++)
        CHECK(audit_jsonl_write(&f, rec(i, 30), 30, 0) == 0);
    audit_jsonl_close(&f);
    CHECK(!exists(path_in("k0.jsonl.1")));
    CHECK_EQ(count_lines(slurp(cfg.path)), 1);
    CHECK_CONTAINS(slurp(cfg.path), "{\"n\":6,");

    /* a record larger than max_bytes gets a file of its own; nothing is lost */
    cfg = (audit_jsonl_cfg_t){.path = path_in("big.jsonl"), .max_bytes = 50, .keep = 5};
    CHECK(audit_jsonl_open(&f, &cfg, err, sizeof(err)) == 0);
    CHECK(audit_jsonl_write(&f, rec(0, 20), 20, 0) == 0);
    CHECK(audit_jsonl_write(&f, rec(1, 200), 200, 0) == 0);
    CHECK(audit_jsonl_write(&f, rec(2, 20), 20, 0) == 0);
    audit_jsonl_close(&f);
    CHECK_EQ(file_size(path_in("big.jsonl.2")), 21);
    CHECK_EQ(file_size(path_in("big.jsonl.1")), 201);
    CHECK_EQ(file_size(path_in("big.jsonl")), 21);
}

static void test_full_disk(void)
{
    audit_jsonl_t f;
    char err[400];
    audit_jsonl_cfg_t cfg = {.path = "/dev/full", .max_bytes = 10, .keep = 2};
    CHECK(audit_jsonl_open(&f, &cfg, err, sizeof(err)) == 0);
    int before = log_count("No space left on device");
    for (int i = 0; i < 5; i++)
        CHECK(audit_jsonl_write(&f, rec(i, 30), 30, i) == -1);
    CHECK_EQ(f.stats.lost, 5);
    CHECK_EQ(f.stats.errors, 5);
    CHECK_EQ(f.stats.rotations, 0); /* a device is never rotated */
    CHECK_STR(f.last_error, "/dev/full: write: No space left on device");
    CHECK_EQ(log_count("No space left on device") - before, 1); /* one line per streak */
    CHECK_EQ(log_count("audit file /dev/full: write: No space left on device"), 1);
    audit_jsonl_close(&f);
}

/* A real short write: the file size limit lets part of a record through, then EFBIG. */
static void test_short_write_is_taken_back(void)
{
    audit_jsonl_t f;
    char err[400];
    audit_jsonl_cfg_t cfg = {.path = path_in("fsize.jsonl"), .max_bytes = 0, .keep = 1};
    CHECK(audit_jsonl_open(&f, &cfg, err, sizeof(err)) == 0);
    struct rlimit old, lim;
    CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0);
    signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = 100;
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    CHECK(audit_jsonl_write(&f, rec(0, 40), 40, 0) == 0);
    CHECK(audit_jsonl_write(&f, rec(1, 40), 40, 0) == 0);
    CHECK(audit_jsonl_write(&f, rec(2, 40), 40, 0) == -1); /* 18 of 41 bytes fit */
    CHECK(audit_jsonl_write(&f, rec(3, 40), 40, 0) == -1);
    CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0);
    CHECK_CONTAINS(f.last_error, "write: File too large");
    CHECK_EQ(file_size(cfg.path), 82); /* the partial line was cut back off */
    CHECK(audit_jsonl_write(&f, rec(4, 40), 40, 0) == 0);
    CHECK_EQ(f.stats.lost, 2);
    CHECK_EQ(f.stats.records, 3);
    audit_jsonl_close(&f);
    const char *s = slurp(cfg.path);
    CHECK_EQ(count_lines(s), 3);
    CHECK_EQ(strlen(s), 3 * 41);
    CHECK_CONTAINS(s, "}\n{\"n\":4,");
    CHECK_EQ(log_count("fsize.jsonl: writing again; 2 records lost"), 1);
}

static void test_torn_file_is_healed(void)
{
    const char *p = path_in("torn.jsonl");
    FILE *fp = fopen(p, "w");
    CHECK(fp != NULL);
    fputs("{\"n\":0}\n{\"n\":1,\"cut\":", fp); /* a crash in the middle of a line */
    fclose(fp);
    audit_jsonl_t f;
    char err[400];
    audit_jsonl_cfg_t cfg = {.path = p, .max_bytes = 0, .keep = 1};
    CHECK(audit_jsonl_open(&f, &cfg, err, sizeof(err)) == 0);
    CHECK(audit_jsonl_write(&f, "{\"n\":2}", 7, 0) == 0);
    CHECK(audit_jsonl_write(&f, "{\"n\":3}", 7, 0) == 0);
    audit_jsonl_close(&f);
    CHECK_STR(slurp(p), "{\"n\":0}\n{\"n\":1,\"cut\":\n{\"n\":2}\n{\"n\":3}\n");
}

static void test_failed_rotation_keeps_writing(void)
{
    audit_jsonl_t f;
    char err[400];
    audit_jsonl_cfg_t cfg = {.path = path_in("rf.jsonl"), .max_bytes = 40, .keep = 1};
    /* PATH.1 is a folder with something in it: the oldest file cannot be deleted */
    CHECK(mkdir(path_in("rf.jsonl.1"), 0755) == 0);
    CHECK(mkdir(path_in("rf.jsonl.1/x"), 0755) == 0);
    CHECK(audit_jsonl_open(&f, &cfg, err, sizeof(err)) == 0);
    CHECK(audit_jsonl_write(&f, rec(0, 30), 30, 1000) == 0);
    CHECK(audit_jsonl_write(&f, rec(1, 30), 30, 1000) == 0); /* rotation fails, written */
    CHECK_EQ(f.stats.errors, 1);
    CHECK_CONTAINS(f.last_error, "rf.jsonl.1: rotate: unlink: Is a directory");
    CHECK(audit_jsonl_write(&f, rec(2, 30), 30, 1500) == 0); /* not retried yet */
    CHECK_EQ(f.stats.errors, 1);
    CHECK_EQ(file_size(cfg.path), 3 * 31);
    CHECK(rmdir(path_in("rf.jsonl.1/x")) == 0);
    CHECK(rmdir(path_in("rf.jsonl.1")) == 0);
    CHECK(audit_jsonl_write(&f, rec(3, 30), 30, 2000) == 0); /* retried: rotates */
    CHECK_EQ(f.stats.rotations, 1);
    CHECK_EQ(f.stats.lost, 0);
    audit_jsonl_close(&f);
    CHECK_EQ(count_lines(slurp(path_in("rf.jsonl.1"))), 3);
    CHECK_EQ(count_lines(slurp(cfg.path)), 1);
    CHECK_EQ(log_count("rf.jsonl.1: rotate: unlink: Is a directory (writing on to"), 1);
    CHECK_EQ(log_count("rf.jsonl: rotating again"), 1);
    CHECK_EQ(log_count("writing again"), 1); /* only test_short_write's: nothing was lost */
}

static void test_open_failures(void)
{
    audit_jsonl_t f;
    char err[400];
    audit_jsonl_cfg_t cfg = {.path = path_in("no/such/dir/a.jsonl"), .max_bytes = 0};
    CHECK(audit_jsonl_open(&f, &cfg, err, sizeof(err)) == -1);
    CHECK_CONTAINS(err, "no/such/dir/a.jsonl: open: No such file or directory");
    cfg = (audit_jsonl_cfg_t){.path = ""};
    CHECK(audit_jsonl_open(&f, &cfg, err, sizeof(err)) == -1);
    CHECK_CONTAINS(err, "no path");
    cfg = (audit_jsonl_cfg_t){.path = path_in("x"), .keep = AUDIT_JSONL_KEEP_MAX + 1};
    CHECK(audit_jsonl_open(&f, &cfg, err, sizeof(err)) == -1);
    CHECK_CONTAINS(err, "keep");

    /* the folder goes away: a reopen fails, writes are lost without an open per record
       until AUDIT_JSONL_RETRY_MS passed, then the file is back */
    CHECK(mkdir(path_in("gone"), 0755) == 0);
    cfg = (audit_jsonl_cfg_t){.path = path_in("gone/a.jsonl"), .max_bytes = 0};
    CHECK(audit_jsonl_open(&f, &cfg, err, sizeof(err)) == 0);
    CHECK(unlink(cfg.path) == 0);
    CHECK(rmdir(path_in("gone")) == 0);
    CHECK(audit_jsonl_reopen(&f, 10000) == -1);
    CHECK_CONTAINS(f.last_error, "gone/a.jsonl: open: No such file or directory");
    uint64_t errors = f.stats.errors;
    CHECK(mkdir(path_in("gone"), 0755) == 0);
    CHECK(audit_jsonl_write(&f, rec(0, 20), 20, 10000 + AUDIT_JSONL_RETRY_MS - 1) == -1);
    CHECK_EQ(f.stats.errors, errors); /* no attempt before the retry time */
    CHECK(!exists(cfg.path));
    CHECK(audit_jsonl_write(&f, rec(1, 20), 20, 10000 + AUDIT_JSONL_RETRY_MS) == 0);
    CHECK_EQ(f.stats.lost, 1);
    audit_jsonl_close(&f);
    CHECK_EQ(count_lines(slurp(cfg.path)), 1);
    CHECK_CONTAINS(slurp(cfg.path), "{\"n\":1,");
    /* closing twice is harmless */
    audit_jsonl_close(&f);
}

int main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/meshd-test-jsonl-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    atexit(cleanup);
    snprintf(logpath, sizeof(logpath), "%s/log", dir);
    int lfd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    CHECK(lfd >= 0);
    mesh_log_init("test", MESH_LOG_INFO, MESH_LOG_FORMAT_JSON);
    mesh_log_set_fd(lfd);
    RUN(test_append_and_reopen);
    RUN(test_rotation_keeps_newest_in_order);
    RUN(test_full_disk);
    RUN(test_short_write_is_taken_back);
    RUN(test_torn_file_is_healed);
    RUN(test_failed_rotation_keeps_writing);
    RUN(test_open_failures);
    return 0;
}
