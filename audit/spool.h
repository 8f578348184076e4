/*
 * audit/spool.h: the audit spool, a crash-safe disk queue of audit records, without I/O.
 *
 * Every audit record is appended to the spool before it counts as accepted, and stays there
 * until Kafka acknowledged it; after a crash or a restart the spool hands back, in order, every
 * record it had made durable and that was not acknowledged (at least once: downstream dedups by
 * the record's event_id). The format, the guarantees and the numbers are in docs/audit.md
 * ("## Spool").
 *
 * On disk: a folder of segment files named by a 64-bit number in 20 decimal digits
 * (00000000000000000042.spool), each a 32-byte header and then records, each framed as
 *
 *   u32 length (little endian, 1 .. 64 MiB) | u32 CRC-32C of the 4 length bytes and the payload
 *   | payload
 *
 * The core is sans-I/O: it touches files only through a small file layer (audit_spool_fs_t:
 * create/open/close, positional write and read, truncate, unlink, list, sync), which is
 * audit/spool_fs_posix.c in production and simulations/sim_fs.c (a crash model that loses
 * what was not synced) in the simulator and the tests. Time comes in as arguments (ms, any
 * monotonic origin). What the core needs done outside comes out as requests the driver pulls:
 *
 *   after every call:  while (audit_spool_take_sync(sp, &req)) run req off the loop, e.g.
 *                      uv_queue_work -> audit_spool_sync_run(sp, &req) -> on the loop
 *                      audit_spool_synced(sp, &req, rc, now) (one sync is in flight at a time);
 *                      arm a timer for audit_spool_deadline(sp), then call audit_spool_tick().
 *
 * Writing: appends are framed into an in-memory batch buffer (no allocation per record); the
 * batch is written with one write when the batch timer fires (batch_ms after its first record)
 * or the buffer fills (batch_bytes), and then a sync of the segment up to that byte is
 * requested. A record is durable once a sync past its end succeeded. Segments rotate at
 * segment_bytes; a segment is deleted once every record in it is acknowledged and it is not the
 * one being written. Records can be sent before they are durable (audit_spool_next hands out
 * written and buffered records alike): Kafka's acknowledgement may come first, which loses
 * nothing.
 *
 * Reading: a cursor walks the segments in order, reading through the file layer in chunks into
 * a bounded buffer (the tail still in the batch buffer is served from memory), so memory stays
 * bounded whatever the backlog. Acknowledgements may arrive in any order; a failed delivery
 * rewinds the cursor (audit_spool_rewind), and every record from there that is not yet
 * acknowledged is handed out again, in order.
 *
 * Opening replays: every segment is read and each frame checked. A torn or corrupt tail (an
 * incomplete frame, a zero or impossible length, a CRC mismatch) ends what is read of that
 * segment: the last segment is truncated there, and every cut is reported
 * (audit_spool_issues(), and a warning in the log). A segment whose header is bad is reported
 * and deleted; one that cannot be read is kept, untouched, for a later start. Sequence numbers
 * are given afresh at every open (1, 2, ... over the replayed records, then the appended ones);
 * they mean something only within one open spool.
 *
 * Disk errors: a failed write keeps the batch and retries it at the same offset after a backoff
 * (appends are dropped, counted, once max_buffer is full); a failed sync is never retried on
 * that file (the kernel may have dropped the pages): its records are never called durable and
 * new records go to a new segment; a failed unlink stays counted and is retried.
 *
 * Size bound: records, headers and garbage on disk plus the batch buffer never exceed
 * max_bytes because of an append. When an append does not fit, the policy applies: drop the new
 * record (AUDIT_SPOOL_DROP_NEWEST, the default), or delete the oldest whole segment that is not
 * being written and count its unacknowledged records (AUDIT_SPOOL_DROP_OLDEST; when only the
 * segment being written is left, the new record is dropped). Every drop is counted by cause.
 */
#ifndef AUDIT_SPOOL_H
#define AUDIT_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "common/fs_layer.h"

/* ---- on-disk format ------------------------------------------------------------------------ */

/** Segment header: magic (8), version (u32), header length (u32), segment number (u64),
 *  reserved (u32, 0), CRC-32C of the 28 bytes before it (u32); little endian. */
#define AUDIT_SPOOL_MAGIC     "MSHDSPL\n"
#define AUDIT_SPOOL_VERSION   1u
#define AUDIT_SPOOL_SEG_HDR   32u
#define AUDIT_SPOOL_FRAME_HDR 8u
/** No record is longer (a longer length field is corruption). */
#define AUDIT_SPOOL_RECORD_MAX (64u * 1024u * 1024u)
/** Consecutive failed reads at one place before the rest of its segment is given up. */
#define AUDIT_SPOOL_READ_ATTEMPTS 3
/** A segment file name: 20 decimal digits and this suffix. */
#define AUDIT_SPOOL_SUFFIX   ".spool"
#define AUDIT_SPOOL_NAME_LEN 26

/* ---- the file layer (the seam) ---------------------------------------------------------- */

/** The spool's file layer is the common one (common/fs_layer.h: list, create, open, close,
 *  positional write and read, truncate, unlink, sync; the spool uses neither rename nor
 *  lock). All calls run on the spool's thread, except sync, which the driver runs off the loop
 *  on a handle the core keeps open meanwhile. */
typedef mesh_fs_ops_t audit_spool_fs_ops_t;
typedef mesh_fs_t audit_spool_fs_t;

/* ---- configuration --------------------------------------------------------------------- */

/** What to do when an append does not fit under max_bytes. */
typedef enum {
    AUDIT_SPOOL_DROP_NEWEST = 0, /* refuse the new record */
    AUDIT_SPOOL_DROP_OLDEST = 1, /* delete the oldest whole segment (not the one being written) */
} audit_spool_policy_t;

/** Configuration; a field left 0 takes its default. */
typedef struct audit_spool_cfg {
    uint64_t max_bytes;     /* size bound on disk plus buffered (default 256 MiB) */
    uint64_t segment_bytes; /* rotate past this (default 8 MiB; at most max_bytes / 4) */
    uint32_t max_record;    /* longest record accepted (default 1 MiB, at most RECORD_MAX) */
    uint32_t batch_ms;      /* a batch is written this long after its first record (5) */
    uint32_t batch_bytes;   /* ... or once it holds this much (default 256 KiB) */
    uint32_t max_buffer;    /* batch buffer bound while writes fail (default 4 MiB) */
    uint32_t read_chunk;    /* bytes read per read-back call (default 256 KiB) */
    audit_spool_policy_t policy;
} audit_spool_cfg_t;

#define AUDIT_SPOOL_DEFAULT_MAX_BYTES     (256ull * 1024 * 1024)
#define AUDIT_SPOOL_DEFAULT_SEGMENT_BYTES (8ull * 1024 * 1024)
#define AUDIT_SPOOL_DEFAULT_MAX_RECORD    (1024u * 1024u)
#define AUDIT_SPOOL_DEFAULT_BATCH_MS      5u
#define AUDIT_SPOOL_DEFAULT_BATCH_BYTES   (256u * 1024u)
#define AUDIT_SPOOL_DEFAULT_MAX_BUFFER    (4u * 1024u * 1024u)
#define AUDIT_SPOOL_DEFAULT_READ_CHUNK    (256u * 1024u)

/* ---- results, reports and statistics ----------------------------------------------------- */

/** What an append did. */
typedef enum {
    AUDIT_SPOOL_OK = 0,           /* appended; *seq set */
    AUDIT_SPOOL_DROPPED_FULL = 1, /* the spool is full (drop-newest, or nothing old to delete) */
    AUDIT_SPOOL_DROPPED_SIZE = 2, /* empty, or longer than max_record */
    AUDIT_SPOOL_DROPPED_IO = 3,   /* the disk fails and the batch buffer is full */
} audit_spool_result_t;

/** Why bytes of a segment were not read. */
typedef enum {
    AUDIT_SPOOL_TORN = 0,   /* a frame runs past the end of the file (a torn write) */
    AUDIT_SPOOL_ZERO = 1,   /* a zero length (zero-filled, never written blocks) */
    AUDIT_SPOOL_LENGTH = 2, /* a length above AUDIT_SPOOL_RECORD_MAX */
    AUDIT_SPOOL_CRC = 3,    /* a CRC mismatch */
    AUDIT_SPOOL_HEADER = 4, /* a missing or bad segment header (the segment is deleted) */
    AUDIT_SPOOL_IO = 5,     /* the file could not be opened or read */
} audit_spool_issue_kind_t;

/** One cut: bytes from offset of a segment were not (and will not be) read. */
typedef struct audit_spool_issue {
    uint64_t segment;
    uint64_t offset;
    uint64_t bytes;
    audit_spool_issue_kind_t kind;
    int at_open;   /* found while replaying at open (else while reading back) */
    int truncated; /* the file was truncated at offset */
} audit_spool_issue_t;

/** Counters for the admin API (GET /v1/audit) and tests. */
typedef struct audit_spool_stats {
    uint64_t bytes;          /* on disk (headers, records, unread garbage) plus buffered */
    uint64_t segments;       /* segment files */
    uint64_t pending;        /* records neither acknowledged nor dropped */
    uint64_t replayed;       /* records found at open */
    uint64_t appended;       /* records appended since open */
    uint64_t durable;        /* records synced since open (replayed ones included) */
    uint64_t delivered;      /* records handed out by next (again after a rewind) */
    uint64_t acked;          /* records acknowledged (each counted once) */
    uint64_t dropped_full;   /* drops: spool full (drop-newest, or nothing old to delete) */
    uint64_t dropped_oldest; /* drops: unacknowledged records of segments deleted when full */
    uint64_t dropped_size;   /* drops: empty or too long */
    uint64_t dropped_io;     /* drops: the disk fails and the buffer is full */
    uint64_t lost_corrupt;   /* records unreadable at read-back (the rest of a segment) */
    uint64_t unsynced;       /* records in a segment whose sync failed: never durable */
    uint64_t corrupt_bytes;  /* bytes cut or skipped (at open and at read-back) */
    uint64_t unreadable;     /* segments left unread at open (read errors): kept for later */
    uint64_t issues;         /* entries of audit_spool_issues() */
    uint64_t writes;         /* write calls (batches) */
    uint64_t bytes_written;  /* bytes written to segment files */
    uint64_t payload_bytes;  /* payload bytes appended */
    uint64_t fsyncs;         /* syncs completed */
    uint64_t write_errors;   /* failed writes and creates */
    uint64_t sync_errors;    /* failed syncs */
    uint64_t io_errors;      /* other failed file calls (unlink, read, truncate) */
    uint64_t acks_ignored;   /* acknowledgements of unknown or already settled records */
} audit_spool_stats_t;

/** A record handed out by audit_spool_next: data is valid until the next call on the spool. */
typedef struct audit_spool_rec {
    uint64_t seq;
    const uint8_t *data;
    uint32_t len;
} audit_spool_rec_t;

/** A sync to run off the loop (see the top of this file). */
typedef struct audit_spool_sync {
    int fh;            /* the handle for the file layer's sync */
    int dir;           /* also sync the folder */
    uint64_t segment;  /* segment number */
    uint64_t upto;     /* byte of the segment it makes durable */
    uint64_t from_seq; /* it makes records [from_seq, upto_seq) durable */
    uint64_t upto_seq;
} audit_spool_sync_t;

typedef struct audit_spool audit_spool_t;

/* ---- the API ---------------------------------------------------------------------------- */

/** Fills cfg with the defaults. */
void audit_spool_cfg_default(audit_spool_cfg_t *cfg);

/**
 * Opens the spool over fs (which stays the caller's) and replays what it holds: every segment
 * is read, checked, cut where it stops being valid (see above), and its records queue for
 * audit_spool_next. Returns NULL with a message in err when the folder cannot be listed or the
 * configuration is invalid; unreadable segments are reported as issues, not fatal.
 */
audit_spool_t *audit_spool_open(const audit_spool_cfg_t *cfg, const audit_spool_fs_t *fs,
                                uint64_t now_ms, char *err, size_t errlen);

/** Frees the spool and closes its files. Buffered records not yet written are lost: call
 *  audit_spool_flush and wait for the syncs first. No sync may be in flight. */
void audit_spool_close(audit_spool_t *sp);

/** Appends one record of len bytes. On AUDIT_SPOOL_OK *seq is its sequence number (seq may be
 *  NULL); otherwise the record was dropped and counted. */
audit_spool_result_t audit_spool_append(audit_spool_t *sp, const void *data, size_t len,
                                        uint64_t now_ms, uint64_t *seq);

/** When audit_spool_tick should run next (UINT64_MAX: no timer needed). */
uint64_t audit_spool_deadline(const audit_spool_t *sp);

/** The timer: writes the batch when due (or retries a failed write). */
void audit_spool_tick(audit_spool_t *sp, uint64_t now_ms);

/** Writes the batch now, whatever the timer (for a shutdown: then drain the syncs). */
void audit_spool_flush(audit_spool_t *sp, uint64_t now_ms);

/** Takes the next sync to run: 1 and *req set, or 0 when none is due or one is in flight. */
int audit_spool_take_sync(audit_spool_t *sp, audit_spool_sync_t *req);

/** Runs req through the file layer (blocking; safe off the loop). Returns 0 or -errno. */
int audit_spool_sync_run(const audit_spool_t *sp, const audit_spool_sync_t *req);

/** The sync req finished with rc (0 or -errno). */
void audit_spool_synced(audit_spool_t *sp, const audit_spool_sync_t *req, int rc, uint64_t now_ms);

/** The next record to send, in order: 1 and *rec set, or 0 when none is left for now. A
 *  record that cannot be read back (corrupt since it was written, or unreadable) ends what is
 *  read of its segment: reported as an issue, its records counted in lost_corrupt; a read
 *  error is first retried at the next AUDIT_SPOOL_READ_ATTEMPTS - 1 calls (0 meanwhile). */
int audit_spool_next(audit_spool_t *sp, audit_spool_rec_t *rec);

/** Kafka acknowledged record seq (any order; unknown or repeated acknowledgements are
 *  counted in acks_ignored). Segments all of whose records are settled are deleted. */
void audit_spool_ack(audit_spool_t *sp, uint64_t seq);

/** Delivery of seq failed: audit_spool_next hands out again, in order, every record from seq
 *  on that is not acknowledged. */
void audit_spool_rewind(audit_spool_t *sp, uint64_t seq);

/** Every record below this sequence number is settled: acknowledged, dropped or lost. */
uint64_t audit_spool_settled_below(const audit_spool_t *sp);

/** The counters. */
const audit_spool_stats_t *audit_spool_stats(const audit_spool_t *sp);

/** Every cut found so far (at open and at read-back), oldest first; *n is their count. */
const audit_spool_issue_t *audit_spool_issues(const audit_spool_t *sp, size_t *n);

/** The name of an issue kind ("torn", "crc", ...). */
const char *audit_spool_issue_name(audit_spool_issue_kind_t kind);

/** The name of an append result ("ok", "dropped_full", ...). */
const char *audit_spool_result_name(audit_spool_result_t r);

/** The file name of segment number no, into buf (at least AUDIT_SPOOL_NAME_LEN + 1 bytes). */
void audit_spool_segment_name(uint64_t no, char *buf);

/** Parses a segment file name: 1 and *no set, or 0 when name is not one. */
int audit_spool_segment_parse(const char *name, uint64_t *no);

#endif
