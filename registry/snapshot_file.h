/*
 * registry/snapshot_file.h: the registry snapshot file, kept up to date off the control loop.
 *
 * The file keeps the last view of the registry so that a node restarted while etcd is down
 * still routes. It is a log of records, one per line; later records win:
 *
 *   meshd-registry-snapshot 2 <revision> <prefix>     header
 *   P\t<mod_revision>\t<lease>\t<key>\t<value>          the key holds value (as etcd sent it)
 *   D\t<key>                                            the key is gone
 *   R\t<revision>                                       the view reflects this revision
 *
 * (Version 1 files, a header then "<mod_revision>\t<lease>\t<key>\t<value>" lines, are read as
 * P records.) A value is stored with its tab, CR and LF bytes turned into spaces: in valid JSON
 * those occur only as insignificant whitespace, so the value parses the same.
 *
 * Cost follows what changed, not the size of the view:
 *  - on the loop, the view table records each change of a valid entry into a journal buffer
 *    (reg_snap_buf_t): a copy of the key and of the value bytes etcd sent; no JSON work;
 *  - reg_snap_writer_t hands the journal to a libuv pool thread (uv_queue_work), at most one
 *    batch in flight and at most one batch per min_gap_ms; the thread appends the records and
 *    an R record to the file and fsyncs it. Later changes wait in the next journal (the latest
 *    state of a key wins when the file is read);
 *  - when the records appended since the file was last written whole outnumber the live
 *    instances (and 1024), the same thread compacts the file: reads it back, keeps the last
 *    record of each key, writes <path>.tmp, fsyncs it, renames it over <path> and fsyncs the
 *    folder. The loop never formats the whole view and never waits for the disk.
 *  - The whole view is encoded on the loop (reg_table_dump(), JSON per instance) only when the
 *    file cannot be trusted: after a failed write (then with a growing gap, up to 30 s), or
 *    when the writer starts on a non-empty view that the file does not hold.
 *
 * A crash can lose the records of the batch in flight (the file keeps every earlier batch)
 * or leave a torn last line, which the reader skips and the next append terminates. Batches
 * hold an flock on <path>.lock, so writers of one file (a restarted view's new writer and the
 * last batch of its predecessor, or two processes) never interleave with a compaction.
 */
#ifndef REG_SNAPSHOT_FILE_H
#define REG_SNAPSHOT_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/fs_layer.h"

struct reg_table;

#define REG_SNAP_MAGIC   "meshd-registry-snapshot"
#define REG_SNAP_VERSION 2

/**
 * Records waiting to be written. The memory is mapped anonymously (mmap/mremap), so a large
 * batch (the first range of a big registry) goes back to the system when it is freed.
 */
typedef struct reg_snap_buf {
    char *data;
    size_t len, cap;
    size_t records;
    int failed; /* a record could not be stored (out of memory): the journal is incomplete */
} reg_snap_buf_t;

/** Appends a P record. Returns 0 or -1 (out of memory; sets failed). */
int reg_snap_buf_put(reg_snap_buf_t *b, const char *key, size_t klen, const char *val, size_t vlen,
                     int64_t mod_revision, int64_t lease);

/** Appends a D record. Returns 0 or -1 (out of memory; sets failed). */
int reg_snap_buf_delete(reg_snap_buf_t *b, const char *key, size_t klen);

/** Frees the buffer's memory and empties it. */
void reg_snap_buf_free(reg_snap_buf_t *b);

/* ---- blocking file operations (any thread) -------------------------------------------------- */

/*
 * Each operation exists twice: over a file layer (common/fs_layer.h; name is the file's name in
 * its folder: the real folder in production, sim_fs in the simulator), and over a path (the
 * real folder of path, opened for the call: common/fs_posix.h). The file's folder must exist.
 * A new file is written as <name>.tmp (removed first if a crash left one), synced, renamed
 * over name, and the folder synced; an append writes at the end of the file and syncs it.
 */

int reg_snap_fs_write(const mesh_fs_t *fs, const char *name, const char *prefix, int64_t revision,
                      const reg_snap_buf_t *records);
int reg_snap_fs_append(const mesh_fs_t *fs, const char *name, int64_t revision,
                       const reg_snap_buf_t *records);
int reg_snap_fs_compact(const mesh_fs_t *fs, const char *name, const char *prefix, size_t *live);

/**
 * Writes a new file: header (revision, prefix) and the records, to path.tmp, fsync, rename over
 * path, fsync of the folder. Returns 0, or -1 with errno set.
 */
int reg_snap_file_write(const char *path, const char *prefix, int64_t revision,
                        const reg_snap_buf_t *records);

/**
 * Appends the records and "R\t<revision>" to an existing file and fsyncs it (a torn last line
 * left by a crash is terminated first). Returns 0, or -1 with errno set (also when the file is
 * missing).
 */
int reg_snap_file_append(const char *path, int64_t revision, const reg_snap_buf_t *records);

/**
 * Rewrites the file with the last record of each live key (atomically, as
 * reg_snap_file_write). *live gets their number. Returns 0, or -1 with errno set (EINVAL: not a
 * snapshot of prefix).
 */
int reg_snap_file_compact(const char *path, const char *prefix, size_t *live);

/** One record read back: type 'P' (a put) or 'D' (a delete; val is empty). */
typedef int (*reg_snap_record_cb)(void *ud, char type, const char *key, size_t klen,
                                  const char *val, size_t vlen, int64_t mod_revision,
                                  int64_t lease);

/**
 * Reads a snapshot of prefix: calls cb for each record in file order and sets *revision to
 * the last one recorded. Malformed and torn lines are skipped. Returns the number of records,
 * or -1 when the file is missing, unreadable or not a snapshot of prefix.
 */
long reg_snap_file_read(const char *path, const char *prefix, int64_t *revision,
                        reg_snap_record_cb cb, void *ud);
long reg_snap_fs_read(const mesh_fs_t *fs, const char *name, const char *prefix, int64_t *revision,
                      reg_snap_record_cb cb, void *ud);

/* ---- the writer on a libuv loop ------------------------------------------------------------- */

typedef struct reg_snap_writer reg_snap_writer_t;

/**
 * Without a libuv loop (the simulator) a writer runs each batch at once on the caller's thread
 * and asks its host for the time and for its one timer: arm(delay_ms) (re)arms it, and when
 * it fires the host calls reg_snap_writer_on_timer; disarm (may be NULL) cancels it.
 */
typedef struct reg_snap_host {
    uint64_t (*now_ms)(void *ctx);
    void (*arm)(void *ctx, uint64_t delay_ms);
    void (*disarm)(void *ctx);
    void *ctx;
} reg_snap_host_t;

/** Counters of a writer (tests, benchmarks). */
typedef struct reg_snap_stats {
    uint64_t appends;     /* batches appended */
    uint64_t rewrites;    /* whole files written (a fresh file or after an error) */
    uint64_t compactions; /* files compacted by the thread */
    uint64_t dumps;       /* times the whole view was encoded on the loop */
    uint64_t failures;    /* writes that failed */
    uint64_t records;     /* records handed to the thread */
    int in_flight;        /* a batch is being written now */
    int pending;          /* records wait for the next batch */
} reg_snap_stats_t;

/**
 * Creates the writer of table t's snapshot at path and attaches its journal to t (from now on
 * every change of t is recorded). file_holds_table: 1 when the file at path holds exactly t's
 * entries (t was just loaded from it; later batches are appended to it), 0 otherwise (the
 * first batch writes a new file: from the journal when t is empty now, else from a dump of
 * t). min_gap_ms: at least this long between the starts of two writes (0: 500). NULL on OOM.
 */
reg_snap_writer_t *reg_snap_writer_new(uv_loop_t *loop, struct reg_table *t, const char *path,
                                       uint32_t min_gap_ms, int file_holds_table);

/**
 * As reg_snap_writer_new, over the file name of the layer fs (which must outlive the writer,
 * and is read at each batch) instead of a path; with loop NULL, driven by host (above). NULL on OOM
 * (or without a loop and a host).
 */
reg_snap_writer_t *reg_snap_writer_new_fs(uv_loop_t *loop, const reg_snap_host_t *host,
                                          const mesh_fs_t *fs, struct reg_table *t,
                                          const char *name, uint32_t min_gap_ms,
                                          int file_holds_table);

/** The host's timer fired (writers without a loop). */
void reg_snap_writer_on_timer(reg_snap_writer_t *w);

/**
 * The view now reflects revision and t may have recorded changes: write them soon (at once
 * when no write is in flight and the gap has passed, else when it has).
 */
void reg_snap_writer_kick(reg_snap_writer_t *w, int64_t revision);

/**
 * Detaches from the table (which may be freed right after), hands what is pending to the
 * thread as the last batch, and frees the writer when nothing is in flight any more. The
 * loop must keep running until then (a queued work request keeps uv_run going).
 */
void reg_snap_writer_free(reg_snap_writer_t *w);

/** The writer's counters. */
void reg_snap_writer_stats(const reg_snap_writer_t *w, reg_snap_stats_t *out);

#endif
