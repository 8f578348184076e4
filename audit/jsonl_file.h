/*
 * audit/jsonl_file.h: the audit sink without Kafka (`--audit-file PATH`): one record per line
 * appended to a local file, rotated by size.
 *
 * Rotation: before a record would take PATH past max_bytes, PATH.keep is deleted, PATH.i is
 * renamed to PATH.i+1 for i = keep-1 .. 1, PATH becomes PATH.1 and a new PATH is opened; so
 * PATH is the newest file and PATH.keep the oldest, keep + 1 files at most. keep 0 starts PATH
 * over; max_bytes 0 never rotates. A file that is not a regular file (`/dev/stdout`, a FIFO) is
 * never rotated. A record longer than max_bytes gets a file of its own.
 *
 * Errors never stop the node: a record that cannot be written (disk full, file removed, I/O
 * error) is counted as lost, the first failure of a streak is logged with the path and
 * strerror, and the recovery is logged with the number lost. After a failed open the file is
 * retried at most once per AUDIT_JSONL_RETRY_MS (so a broken disk costs one open per second,
 * not one per event). A record is never left half written: a short write is cut back off the
 * file, and when even that fails the next record starts on a new line, so every line a reader
 * finds complete is one whole record. A file that does not end in a newline when opened (a crash
 * in the middle of a line) is handled the same way.
 *
 * Single-threaded (the audit actor); no allocation per record (one writev per record). No
 * fsync: this sink is for development and for hosts that ship the file themselves; the Kafka
 * path with its disk spool is the one that survives crashes without loss.
 */
#ifndef AUDIT_JSONL_FILE_H
#define AUDIT_JSONL_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Defaults for the options. */
#define AUDIT_JSONL_MAX_BYTES_DEFAULT (64ull * 1024 * 1024)
#define AUDIT_JSONL_KEEP_DEFAULT      5
#define AUDIT_JSONL_KEEP_MAX          999
/** Least time between two attempts to open the file after one failed. */
#define AUDIT_JSONL_RETRY_MS 1000

/** Where and how big. */
typedef struct audit_jsonl_cfg {
    const char *path;
    uint64_t max_bytes; /* rotate before a record would take the file past this; 0: never */
    unsigned keep;      /* rotated files kept (PATH.1 .. PATH.keep), 0..AUDIT_JSONL_KEEP_MAX */
} audit_jsonl_cfg_t;

/** Counters since open (for the admin API and tests). */
typedef struct audit_jsonl_stats {
    uint64_t records;   /* written whole */
    uint64_t bytes;     /* written, newlines included */
    uint64_t lost;      /* records not written because of an error */
    uint64_t errors;    /* failed operations (open, write, rename, unlink) */
    uint64_t rotations; /* files started by rotation */
} audit_jsonl_stats_t;

/** The sink; fields are private but for stats and last_error. */
typedef struct audit_jsonl {
    char *path;
    char *name_a, *name_b; /* rotation names PATH.N */
    uint64_t max_bytes;
    unsigned keep;
    int fd;                   /* -1 while closed by an error */
    bool regular;             /* a regular file: rotated by size */
    bool torn;                /* the file may end inside a line: the next record starts with '\n' */
    bool failing;             /* in a streak of lost records (logged once) */
    bool rotate_failing;      /* in a streak of failed rotations (logged once) */
    uint64_t size;            /* of the open file */
    int64_t retry_at;         /* no open before this time (ms) */
    int64_t rotate_at;        /* no rotation before this time (ms), after a failed one */
    uint64_t lost_at_failure; /* stats.lost when the streak began */
    audit_jsonl_stats_t stats;
    char last_error[320]; /* "PATH: write: No space left on device", or "" */
} audit_jsonl_t;

/**
 * Opens (creates, appends to) cfg->path. Returns 0, or -1 with "PATH: what: strerror" in err
 * when the configuration is invalid or the file cannot be opened (at start-up a wrong path is
 * the operator's to fix; later failures are counted instead). f is then not open.
 */
int audit_jsonl_open(audit_jsonl_t *f, const audit_jsonl_cfg_t *cfg, char *err, size_t errlen);

/**
 * Appends rec[0..len) and a newline (rec should be one line: audit_event_encode's output),
 * rotating first when needed. now_ms is a monotonic clock in milliseconds (it paces retries).
 * Returns 0 when the record was written whole, -1 when it was lost (counted; last_error says
 * why).
 */
int audit_jsonl_write(audit_jsonl_t *f, const char *rec, size_t len, int64_t now_ms);

/** Closes and opens PATH again (after someone else moved it away, e.g. on SIGHUP). 0 or -1
 *  (then counted and retried by the next write). */
int audit_jsonl_reopen(audit_jsonl_t *f, int64_t now_ms);

/** Closes the file and frees what open allocated. */
void audit_jsonl_close(audit_jsonl_t *f);

#endif
