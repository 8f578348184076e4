/*
 * tests/unit/registry/test_snapshot_file.c: the snapshot file (registry/snapshot_file.h):
 * records read back in order (later ones win), version 1 files, torn last lines, compaction;
 * and the writer on a real libuv loop and pool thread: writes coalesced (one batch in flight),
 * appends while the file holds the view, compaction by the thread, the last changes written
 * when the writer is freed, a whole write when the file cannot be trusted, failures reported.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "registry/instance.h"
#include "registry/snapshot_file.h"
#include "registry/view_table.h"
#include "tests/check.h"

#define P "meshd/services"

static char dir[] = "/tmp/meshd-snap-unit-XXXXXX";

static void path_of(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", dir, name);
}

typedef struct seen {
    int puts, deletes;
    char last_key[128];
    char last_val[256];
} seen_t;

static int on_record(void *ud, char type, const char *key, size_t klen, const char *val,
                     size_t vlen, int64_t mod_revision, int64_t lease)
{
    seen_t *s = ud;
    if (type == 'P')
        s->puts++;
    else
        s->deletes++;
    snprintf(s->last_key, sizeof(s->last_key), "%.*s", (int)klen, key);
    snprintf(s->last_val, sizeof(s->last_val), "%.*s", (int)vlen, val);
    return 0;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f);
    fputs(text, f);
    fclose(f);
}

static size_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (size_t)st.st_size : 0;
}

static void test_file(void)
{
    char path[256];
    path_of(path, sizeof(path), "a.snapshot");
    reg_snap_buf_t b = {0};
    CHECK(reg_snap_buf_put(&b, P "/s.S/h:1", strlen(P "/s.S/h:1"), "{\"a\":\n1}", 8, 5, 7) == 0);
    CHECK(reg_snap_buf_put(&b, P "/s.S/h:2", strlen(P "/s.S/h:2"), "{}", 2, 6, 0) == 0);
    CHECK(reg_snap_buf_delete(&b, P "/s.S/h:1", strlen(P "/s.S/h:1")) == 0);
    CHECK(reg_snap_buf_put(&b, "bad\tkey", 7, "{}", 2, 1, 0) == 0 && b.records == 3);
    CHECK(reg_snap_file_write(path, P, 41, &b) == 0);
    int64_t rev = 0;
    seen_t s = {0};
    CHECK(reg_snap_file_read(path, P, &rev, on_record, &s) == 3 && rev == 41);
    CHECK(s.puts == 2 && s.deletes == 1 && strcmp(s.last_key, P "/s.S/h:1") == 0);
    CHECK(reg_snap_file_read(path, "other/prefix", &rev, on_record, &s) == -1);
    CHECK(reg_snap_file_read("/nonexistent/x", P, &rev, on_record, &s) == -1);

    /* Appends, a torn last line (a crash), then another append: the torn line is skipped
     * and the next record is whole. */
    reg_snap_buf_t b2 = {0};
    CHECK(reg_snap_buf_put(&b2, P "/s.S/h:3", strlen(P "/s.S/h:3"), "{\"x\":1}", 7, 8, 0) == 0);
    CHECK(reg_snap_file_append(path, 42, &b2) == 0);
    int fd = open(path, O_WRONLY | O_APPEND);
    CHECK(fd >= 0 && write(fd, "P\t9\t0\t" P "/s.S/torn", 25) == 25);
    close(fd);
    memset(&s, 0, sizeof(s));
    CHECK(reg_snap_file_read(path, P, &rev, on_record, &s) == 4 && rev == 42);
    CHECK(reg_snap_file_append(path, 43, &b2) == 0);
    memset(&s, 0, sizeof(s));
    CHECK(reg_snap_file_read(path, P, &rev, on_record, &s) == 5 && rev == 43);
    CHECK(strcmp(s.last_key, P "/s.S/h:3") == 0 && strcmp(s.last_val, "{\"x\":1}") == 0);
    CHECK(reg_snap_file_append("/nonexistent/x", 1, &b2) == -1);

    /* Compaction keeps the last record of each live key (h:2 and h:3) and the revision. */
    size_t live = 0, before = file_size(path);
    CHECK(reg_snap_file_compact(path, P, &live) == 0 && live == 2);
    CHECK(file_size(path) < before);
    memset(&s, 0, sizeof(s));
    CHECK(reg_snap_file_read(path, P, &rev, on_record, &s) == 2 && rev == 43 && s.deletes == 0);
    CHECK(reg_snap_file_compact(path, "other/prefix", &live) == -1);
    reg_snap_buf_free(&b);
    reg_snap_buf_free(&b2);

    /* Version 1 files (what meshd wrote before) are read, and can be appended to. */
    char v1[512];
    snprintf(v1, sizeof(v1),
             "meshd-registry-snapshot 1 17 " P "\n3\t0\t" P
             "/s.V/h:1\t{\"Op\":0,\"Addr\":\"h:1\"}\n");
    write_text(path, v1);
    reg_table_t t;
    CHECK(reg_table_init(&t, P) == 0);
    CHECK(reg_table_load(&t, path, &rev) == 1 && rev == 17);
    reg_table_destroy(&t);
    write_text(path, "meshd-registry-snapshot 3 17 " P "\n");
    CHECK(reg_snap_file_read(path, P, &rev, on_record, &s) == -1); /* unknown version */
    unlink(path);
}

/* ---- the writer ----------------------------------------------------------------------------- */

static uv_loop_t loop;

static char *value(const char *addr, int v)
{
    char node[16];
    snprintf(node, sizeof(node), "n%d", v);
    reg_instance_t in = {.addr = addr, .node = node, .weight = 1};
    return reg_value_format(&in);
}

static void put_n(reg_table_t *t, int from, int to, int v, int64_t rev)
{
    for (int i = from; i < to; i++) {
        char key[96], addr[32];
        snprintf(addr, sizeof(addr), "h:%d", i);
        snprintf(key, sizeof(key), P "/s.S%d/%s", i % 5, addr);
        char *val = value(addr, v);
        CHECK(reg_table_put(t, key, strlen(key), val, strlen(val), rev, 0) >= 0);
        free(val);
    }
}

/* Runs the loop until the writer has nothing in flight or pending. */
static void settle(reg_snap_writer_t *w)
{
    reg_snap_stats_t st;
    for (int i = 0; i < 20000; i++) {
        reg_snap_writer_stats(w, &st);
        if (!st.in_flight && !st.pending)
            return;
        uv_run(&loop, UV_RUN_ONCE);
    }
    CHECK(!"the writer did not settle");
}

/* The file, loaded into a fresh table, holds exactly t's valid entries. */
static void check_file_is(const char *path, const reg_table_t *t)
{
    reg_table_t u;
    CHECK(reg_table_init(&u, P) == 0);
    int64_t rev;
    CHECK_EQ(reg_table_load(&u, path, &rev), (long)t->n_valid);
    for (size_t i = 0; i < t->n_buckets; i++)
        for (const reg_entry_t *e = t->buckets[i]; e; e = e->next) {
            if (!e->valid)
                continue;
            const reg_entry_t *f = reg_table_find(&u, e->key, e->klen);
            CHECK(f && f->valid && f->mod_revision == e->mod_revision);
            CHECK(strcmp(f->node, e->node) == 0 && strcmp(f->addr, e->addr) == 0);
        }
    reg_table_destroy(&u);
}

static void test_writer(void)
{
    CHECK(uv_loop_init(&loop) == 0);
    char path[256];
    path_of(path, sizeof(path), "w.snapshot");
    reg_table_t t;
    CHECK(reg_table_init(&t, P) == 0);
    reg_snap_writer_t *w = reg_snap_writer_new(&loop, &t, path, 20, 0);
    CHECK(w && t.journal);
    reg_snap_stats_t st;

    /* First batch: a new file from the journal (the view started empty: no dump). */
    put_n(&t, 0, 100, 1, 10);
    reg_snap_writer_kick(w, 10);
    reg_snap_writer_stats(w, &st);
    CHECK(st.in_flight == 1);
    /* While it is written, more changes and kicks: they wait, coalesced into one batch. */
    for (int k = 0; k < 20; k++) {
        put_n(&t, k * 5, k * 5 + 5, 2, 20 + k);
        reg_snap_writer_kick(w, 20 + k);
    }
    reg_snap_writer_stats(w, &st);
    CHECK(st.in_flight == 1 && st.pending == 1 && st.rewrites + st.appends == 0);
    settle(w);
    reg_snap_writer_stats(w, &st);
    CHECK(st.rewrites == 1 && st.appends == 1 && st.dumps == 0 && st.failures == 0);
    check_file_is(path, &t);

    /* Deletes too; and enough churn that the thread compacts the file. */
    for (int i = 0; i < 100; i += 3) {
        char key[96];
        snprintf(key, sizeof(key), P "/s.S%d/h:%d", i % 5, i);
        reg_table_delete(&t, key, strlen(key));
    }
    for (int round = 0; round < 15; round++) {
        put_n(&t, 100, 180, 3 + round, 100 + round);
        reg_snap_writer_kick(w, 100 + round);
        settle(w);
    }
    reg_snap_writer_stats(w, &st);
    CHECK(st.compactions >= 1 && st.failures == 0 && st.dumps == 0);
    seen_t seen = {0};
    int64_t frev;
    long in_file = reg_snap_file_read(path, P, &frev, on_record, &seen);
    CHECK(in_file > 0 && (uint64_t)in_file < st.records / 2); /* compacted: not every record */
    check_file_is(path, &t);

    /* Freed with a batch in flight and more pending: both reach the file. */
    put_n(&t, 200, 220, 50, 500);
    reg_snap_writer_kick(w, 500);
    put_n(&t, 220, 240, 51, 501);
    reg_snap_writer_free(w);
    CHECK(t.journal == NULL);
    uv_run(&loop, UV_RUN_DEFAULT); /* until the last batch is written and the writer freed */
    check_file_is(path, &t);

    /* A writer on a file that holds the view appends; one on a view the file does not hold
     * writes it whole (a dump) first. */
    reg_table_t u;
    CHECK(reg_table_init(&u, P) == 0);
    int64_t rev;
    CHECK(reg_table_load(&u, path, &rev) > 0);
    w = reg_snap_writer_new(&loop, &u, path, 20, 1);
    put_n(&u, 300, 301, 60, 600);
    reg_snap_writer_kick(w, 600);
    settle(w);
    reg_snap_writer_stats(w, &st);
    CHECK(st.appends == 1 && st.rewrites == 0 && st.dumps == 0);
    check_file_is(path, &u);
    reg_snap_writer_free(w);
    uv_run(&loop, UV_RUN_DEFAULT);

    char other[256];
    path_of(other, sizeof(other), "other.snapshot");
    w = reg_snap_writer_new(&loop, &u, other, 20, 0);
    reg_snap_writer_kick(w, 601);
    settle(w);
    reg_snap_writer_stats(w, &st);
    CHECK(st.dumps == 1 && st.rewrites == 1);
    check_file_is(other, &u);
    reg_snap_writer_free(w);
    uv_run(&loop, UV_RUN_DEFAULT);

    /* A folder that does not exist: the failure is reported and nothing crashes. (On a loaded
     * machine the failed write can outlast the 20 ms gap, so the retry starts before settle()
     * returns and fails too: at least one failure, not exactly one.) */
    w = reg_snap_writer_new(&loop, &u, "/nonexistent/dir/x.snapshot", 20, 0);
    put_n(&u, 400, 401, 70, 700);
    reg_snap_writer_kick(w, 700);
    settle(w);
    reg_snap_writer_stats(w, &st);
    CHECK(st.failures >= 1 && st.rewrites + st.appends == 0);
    reg_snap_writer_free(w);
    uv_run(&loop, UV_RUN_DEFAULT);

    reg_table_destroy(&t);
    reg_table_destroy(&u);
    CHECK(uv_loop_close(&loop) == 0);
    unlink(path);
    unlink(other);
    char lock[300];
    snprintf(lock, sizeof(lock), "%s.lock", path);
    CHECK(unlink(lock) == 0); /* batches lock the file's writers out of each other */
    snprintf(lock, sizeof(lock), "%s.lock", other);
    unlink(lock);
}

int main(void)
{
    mesh_log_init("test", MESH_LOG_ERROR, MESH_LOG_FORMAT_TEXT);
    CHECK(mkdtemp(dir));
    RUN(test_file);
    RUN(test_writer);
    CHECK(rmdir(dir) == 0); /* nothing left behind */
    fprintf(stderr, "ok\n");
    return 0;
}
