/*
 * audit/spool.c: the audit spool's core (see spool.h): segments, the batch buffer, syncs,
 * replay, the read cursor, acknowledgements and the size bound.
 *
 * State, in the order a record meets it:
 *  - segs[]: the segment files in number order, FIFO (only the front is ever deleted: a segment
 *    goes once every record in it is settled, and settling advances a floor). Their sequence
 *    numbers are contiguous: segs[i + 1].base_seq == segs[i].end_seq. The last one is being
 *    written when `active` is set.
 *  - wbuf: bytes [woff, woff + wlen) of the active segment, framed records (and the header of a
 *    new segment). Bytes below seg.written are in the file; the rest waits for the batch write.
 *    Written bytes stay in wbuf until it fills, so the reader usually finds the tail there.
 *  - syncs: each segment remembers what is written and what is synced; take_sync asks for the
 *    oldest segment with written > synced, one at a time, so durability advances in order.
 *  - the cursor (cur_*): the next frame to read; records below skip_to (after a rewind) and
 *    settled records are passed over. Reading from a file goes through rbuf (read_chunk bytes
 *    per read call).
 *  - settling: a bitmap over [floor, hi), hi being one past the highest record handed out;
 *    a record is settled when acknowledged, dropped or lost. floor advances over settled
 *    records, and segments wholly below it are deleted.
 */
#include "audit/spool.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "common/log.h"

#define NONE UINT64_MAX

typedef struct seg {
    uint64_t no;
    int fh; /* -1: closed */
    int sync_inflight;
    int sync_failed;      /* a sync failed: nothing more of it is ever called durable */
    uint64_t base_seq;    /* its records are [base_seq, end_seq) */
    uint64_t end_seq;     /* */
    uint64_t size;        /* bytes counted against max_bytes */
    uint64_t end;         /* end of its last record (buffered ones included) */
    uint64_t written;     /* bytes of it in the file */
    uint64_t written_seq; /* records below are in the file */
    uint64_t synced;      /* bytes of it durable */
    uint64_t synced_seq;  /* records below are durable */
    uint64_t hole_off;    /* unreadable from here (NONE: no hole) ... */
    uint64_t hole_end;    /* ... to here, */
    uint64_t hole_seq;    /* where reading resumes with this record */
} seg_t;

struct audit_spool {
    audit_spool_cfg_t cfg;
    audit_spool_fs_t fs;
    audit_spool_stats_t st;

    seg_t *segs;
    size_t nseg, capseg;
    int active;        /* segs[nseg - 1] is being written */
    uint64_t next_no;  /* number of the next segment created */
    uint64_t next_seq; /* sequence number of the next record */

    uint8_t *wbuf; /* bytes [woff, woff + wlen) of the active segment */
    size_t wlen, wcap;
    uint64_t woff, wseq; /* wseq: the first record in wbuf */
    uint64_t flush_at;   /* when the batch is written (NONE: nothing waits) */
    uint32_t backoff_ms; /* after a failed write or create; 0 after a success */
    uint64_t create_at;  /* no create before this (after a failed one) */
    int rotate_next;     /* seal the active segment at the next append (its sync failed) */
    int dir_dirty;       /* names created or removed since the folder was last synced */
    int sync_inflight;

    uint8_t *rbuf; /* bytes [roff, roff + rlen) of segment rseg (0: none) */
    size_t rlen, rcap;
    uint64_t rseg, roff;

    uint64_t cur_no, cur_off, cur_seq; /* the cursor: valid when cur_ok */
    size_t cur_idx;                    /* a hint: segs[cur_idx].no == cur_no, mostly */
    int cur_ok;
    uint64_t skip_to; /* records below are passed over (a rewind) */

    uint64_t floor, hi; /* records below floor are settled; bits cover [floor, hi) */
    uint64_t *bits;     /* a ring of words, bcap (a power of two) of them */
    size_t bcap;

    audit_spool_issue_t *issues;
    size_t nissue, capissue;

    seg_t *zombies; /* segments to delete whose unlink failed: retried, still counted */
    size_t nzombie, capzombie;
    uint64_t zombie_at; /* when to retry them (NONE: none) */
    size_t nkept;       /* segments left unread at open (read errors): kept, counted */
    uint64_t now;       /* the latest time a call brought */
    int read_failures;  /* consecutive failed reads at the cursor */
};

/* ---- small helpers ------------------------------------------------------------------------ */

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static uint64_t max64(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

void audit_spool_segment_name(uint64_t no, char *buf)
{
    snprintf(buf, AUDIT_SPOOL_NAME_LEN + 1, "%020" PRIu64 AUDIT_SPOOL_SUFFIX, no);
}

int audit_spool_segment_parse(const char *name, uint64_t *no)
{
    if (strlen(name) != AUDIT_SPOOL_NAME_LEN || strcmp(name + 20, AUDIT_SPOOL_SUFFIX) != 0)
        return 0;
    uint64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9')
            return 0;
        unsigned d = (unsigned)(name[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    *no = v;
    return 1;
}

const char *audit_spool_issue_name(audit_spool_issue_kind_t kind)
{
    switch (kind) {
    case AUDIT_SPOOL_TORN:
        return "torn";
    case AUDIT_SPOOL_ZERO:
        return "zero";
    case AUDIT_SPOOL_LENGTH:
        return "length";
    case AUDIT_SPOOL_CRC:
        return "crc";
    case AUDIT_SPOOL_HEADER:
        return "header";
    case AUDIT_SPOOL_IO:
        return "io";
    }
    return "?";
}

const char *audit_spool_result_name(audit_spool_result_t r)
{
    switch (r) {
    case AUDIT_SPOOL_OK:
        return "ok";
    case AUDIT_SPOOL_DROPPED_FULL:
        return "dropped_full";
    case AUDIT_SPOOL_DROPPED_SIZE:
        return "dropped_size";
    case AUDIT_SPOOL_DROPPED_IO:
        return "dropped_io";
    }
    return "?";
}

void audit_spool_cfg_default(audit_spool_cfg_t *cfg)
{
    *cfg = (audit_spool_cfg_t){
        .max_bytes = AUDIT_SPOOL_DEFAULT_MAX_BYTES,
        .segment_bytes = AUDIT_SPOOL_DEFAULT_SEGMENT_BYTES,
        .max_record = AUDIT_SPOOL_DEFAULT_MAX_RECORD,
        .batch_ms = AUDIT_SPOOL_DEFAULT_BATCH_MS,
        .batch_bytes = AUDIT_SPOOL_DEFAULT_BATCH_BYTES,
        .max_buffer = AUDIT_SPOOL_DEFAULT_MAX_BUFFER,
        .read_chunk = AUDIT_SPOOL_DEFAULT_READ_CHUNK,
        .policy = AUDIT_SPOOL_DROP_NEWEST,
    };
}

static const char *fs_error(const audit_spool_t *sp)
{
    const char *e = sp->fs.ops->error ? sp->fs.ops->error(sp->fs.ctx) : NULL;
    return e ? e : "unknown error";
}

static void add_issue(audit_spool_t *sp, uint64_t no, uint64_t off, uint64_t bytes,
                      audit_spool_issue_kind_t kind, int at_open, int truncated)
{
    sp->st.issues++;
    sp->st.corrupt_bytes += bytes;
    char name[AUDIT_SPOOL_NAME_LEN + 1];
    audit_spool_segment_name(no, name);
    static const char *const why[] = {
        [AUDIT_SPOOL_TORN] = "a frame runs past the end of the file (torn write)",
        [AUDIT_SPOOL_ZERO] = "a zero length (blocks never written)",
        [AUDIT_SPOOL_LENGTH] = "an impossible length",
        [AUDIT_SPOOL_CRC] = "a CRC mismatch",
        [AUDIT_SPOOL_HEADER] = "a bad segment header",
        [AUDIT_SPOOL_IO] = "unreadable",
    };
    const char *what;
    if (kind == AUDIT_SPOOL_HEADER)
        what = "the segment is deleted";
    else if (kind == AUDIT_SPOOL_IO && at_open)
        what = "the segment is left as it is for a later start";
    else if (truncated)
        what = "truncated, never replayed";
    else
        what = at_open ? "skipped, never replayed" : "skipped, its records lost";
    mesh_warn("audit", "spool: segment %s, byte %" PRIu64 " (%s): %s%s%s; %" PRIu64 " bytes %s",
              name, off, at_open ? "replay" : "read-back", why[kind],
              kind == AUDIT_SPOOL_IO ? ": " : "", kind == AUDIT_SPOOL_IO ? fs_error(sp) : "", bytes,
              what);
    if (sp->nissue == sp->capissue) {
        size_t ncap = sp->capissue ? sp->capissue * 2 : 8;
        audit_spool_issue_t *n = realloc(sp->issues, ncap * sizeof(*n));
        if (!n)
            return; /* counted and logged; the list is a convenience */
        sp->issues = n;
        sp->capissue = ncap;
    }
    sp->issues[sp->nissue++] = (audit_spool_issue_t){
        .segment = no,
        .offset = off,
        .bytes = bytes,
        .kind = kind,
        .at_open = at_open,
        .truncated = truncated,
    };
}

/* ---- segments ------------------------------------------------------------------------------- */

static seg_t *active_seg(audit_spool_t *sp)
{
    return sp->active && sp->nseg ? &sp->segs[sp->nseg - 1] : NULL;
}

static int is_active(const audit_spool_t *sp, const seg_t *s)
{
    return sp->active && sp->nseg && s == &sp->segs[sp->nseg - 1];
}

/* The index of segment number no, or -1. */
static ptrdiff_t find_seg(const audit_spool_t *sp, uint64_t no)
{
    size_t lo = 0, hi = sp->nseg;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sp->segs[mid].no < no)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < sp->nseg && sp->segs[lo].no == no ? (ptrdiff_t)lo : -1;
}

static void count_segments(audit_spool_t *sp)
{
    sp->st.segments = sp->nseg + sp->nzombie + sp->nkept;
}

static int push_seg(audit_spool_t *sp, const seg_t *s)
{
    if (sp->nseg == sp->capseg) {
        size_t ncap = sp->capseg ? sp->capseg * 2 : 16;
        seg_t *n = realloc(sp->segs, ncap * sizeof(*n));
        if (!n)
            return -1;
        sp->segs = n;
        sp->capseg = ncap;
    }
    sp->segs[sp->nseg++] = *s;
    count_segments(sp);
    return 0;
}

static int seg_open(audit_spool_t *sp, seg_t *s)
{
    if (s->fh >= 0)
        return 0;
    char name[AUDIT_SPOOL_NAME_LEN + 1];
    audit_spool_segment_name(s->no, name);
    uint64_t size = 0;
    int rc = sp->fs.ops->open(sp->fs.ctx, name, &s->fh, &size);
    if (rc < 0) {
        s->fh = -1;
        sp->st.io_errors++;
        return rc;
    }
    return 0;
}

/* Closes a segment's handle once nothing needs it: not being written, no sync in flight, not
 * under the cursor. (A sync still due opens it again: fsync covers what any handle wrote.) So
 * at most three are open: the active segment, the cursor's and the one being synced. */
static void seg_maybe_close(audit_spool_t *sp, seg_t *s)
{
    if (s->fh < 0 || is_active(sp, s) || s->sync_inflight)
        return;
    if (sp->cur_ok && sp->cur_no == s->no)
        return;
    sp->fs.ops->close(sp->fs.ctx, s->fh);
    s->fh = -1;
}

/* Retries the unlinks that failed before. */
static void retry_zombies(audit_spool_t *sp)
{
    size_t k = 0;
    for (size_t i = 0; i < sp->nzombie; i++) {
        char name[AUDIT_SPOOL_NAME_LEN + 1];
        audit_spool_segment_name(sp->zombies[i].no, name);
        int rc = sp->fs.ops->unlink(sp->fs.ctx, name);
        if (rc == 0 || rc == -ENOENT) {
            sp->st.bytes -= sp->zombies[i].size;
            sp->dir_dirty = 1;
        } else {
            sp->zombies[k++] = sp->zombies[i];
        }
    }
    sp->nzombie = k;
    sp->zombie_at = k ? sp->now + 1000 : NONE;
    count_segments(sp);
}

/* Unlinks segment no (size bytes, counted in st.bytes); when that fails it stays counted and
 * is retried at the next deletion or rotation. */
static void unlink_or_keep(audit_spool_t *sp, uint64_t no, uint64_t size)
{
    char name[AUDIT_SPOOL_NAME_LEN + 1];
    audit_spool_segment_name(no, name);
    sp->dir_dirty = 1;
    int rc = sp->fs.ops->unlink(sp->fs.ctx, name);
    if (rc == 0 || rc == -ENOENT) {
        sp->st.bytes -= size;
        if (sp->nzombie)
            retry_zombies(sp);
        return;
    }
    sp->st.io_errors++;
    mesh_warn("audit", "spool: cannot delete a segment (retried later): %s", fs_error(sp));
    if (sp->nzombie == sp->capzombie) {
        size_t ncap = sp->capzombie ? sp->capzombie * 2 : 8;
        seg_t *n = realloc(sp->zombies, ncap * sizeof(*n));
        if (!n) {
            sp->st.bytes -= size; /* forgotten: replayed (at least once) after a restart */
            return;
        }
        sp->zombies = n;
        sp->capzombie = ncap;
    }
    sp->zombies[sp->nzombie++] = (seg_t){.no = no, .size = size, .fh = -1};
    if (sp->zombie_at == NONE)
        sp->zombie_at = sp->now + 1000;
    count_segments(sp);
}

/* Deletes the front segment (it is not active). */
static void remove_front(audit_spool_t *sp)
{
    seg_t *s = &sp->segs[0];
    uint64_t no = s->no, size = s->size;
    /* A sync in flight keeps the handle; audit_spool_synced closes it. */
    if (s->fh >= 0 && !s->sync_inflight)
        sp->fs.ops->close(sp->fs.ctx, s->fh);
    if (sp->rseg == s->no)
        sp->rseg = 0;
    if (sp->cur_ok && sp->cur_no == s->no)
        sp->cur_ok = 0;
    memmove(sp->segs, sp->segs + 1, (sp->nseg - 1) * sizeof(*sp->segs));
    sp->nseg--;
    if (sp->cur_idx)
        sp->cur_idx--;
    count_segments(sp);
    unlink_or_keep(sp, no, size);
}

/* ---- settling: acknowledged, dropped or lost ----------------------------------------------- */

static uint64_t *bit_word(const audit_spool_t *sp, uint64_t seq)
{
    return &sp->bits[(seq >> 6) & (sp->bcap - 1)];
}

static int settled(const audit_spool_t *sp, uint64_t seq)
{
    if (seq < sp->floor)
        return 1;
    if (seq >= sp->hi)
        return 0;
    return (*bit_word(sp, seq) >> (seq & 63)) & 1;
}

/* Makes the bitmap cover [floor, upto) and sets hi to at least upto. The bitmap is a few bits
 * per unsettled record; running out of memory for it is fatal. */
static void bits_cover(audit_spool_t *sp, uint64_t upto)
{
    if (upto <= sp->hi)
        return;
    uint64_t need = ((upto - 1) >> 6) - (sp->floor >> 6) + 1;
    if (need > sp->bcap) {
        size_t ncap = sp->bcap ? sp->bcap : 64;
        while (ncap < need)
            ncap *= 2;
        uint64_t *nb = calloc(ncap, sizeof(*nb));
        if (!nb) {
            mesh_error("audit", "spool: out of memory for %zu acknowledgement words", ncap);
            abort();
        }
        if (sp->hi > sp->floor)
            for (uint64_t w = sp->floor >> 6; w <= (sp->hi - 1) >> 6; w++)
                nb[w & (ncap - 1)] = sp->bits[w & (sp->bcap - 1)];
        free(sp->bits);
        sp->bits = nb;
        sp->bcap = ncap;
    }
    sp->hi = upto;
}

static void reap(audit_spool_t *sp)
{
    while (sp->nseg && !(sp->active && sp->nseg == 1) && sp->segs[0].end_seq <= sp->floor)
        remove_front(sp);
}

static void advance_floor(audit_spool_t *sp)
{
    while (sp->floor < sp->hi) {
        uint64_t *w = bit_word(sp, sp->floor);
        uint64_t m = 1ull << (sp->floor & 63);
        if (!(*w & m))
            break;
        *w &= ~m;
        sp->floor++;
    }
    reap(sp);
}

/* Settles every record of [a, b) not settled yet; returns how many that was. */
static uint64_t settle_range(audit_spool_t *sp, uint64_t a, uint64_t b)
{
    a = max64(a, sp->floor);
    if (b <= a)
        return 0;
    bits_cover(sp, b);
    uint64_t n = 0;
    for (uint64_t s = a; s < b; s++) {
        uint64_t *w = bit_word(sp, s), m = 1ull << (s & 63);
        if (!(*w & m)) {
            *w |= m;
            n++;
        }
    }
    sp->st.pending -= n;
    return n;
}

void audit_spool_ack(audit_spool_t *sp, uint64_t seq)
{
    if (seq < sp->floor || seq >= sp->hi || settled(sp, seq)) {
        sp->st.acks_ignored++;
        return;
    }
    *bit_word(sp, seq) |= 1ull << (seq & 63);
    sp->st.acked++;
    sp->st.pending--;
    if (seq == sp->floor)
        advance_floor(sp);
}

/* Drop-oldest: deletes the oldest segment that is not being written. Returns 0 when there is
 * none. */
static int drop_oldest(audit_spool_t *sp)
{
    if (!sp->nseg || (sp->active && sp->nseg == 1))
        return 0;
    seg_t *s = &sp->segs[0];
    uint64_t n = settle_range(sp, s->base_seq, s->end_seq);
    sp->st.dropped_oldest += n;
    char name[AUDIT_SPOOL_NAME_LEN + 1];
    audit_spool_segment_name(s->no, name);
    mesh_warn("audit",
              "spool: full (%" PRIu64 " bytes): deleted the oldest segment %s, dropping %" PRIu64
              " unacknowledged records",
              sp->st.bytes, name, n);
    advance_floor(sp); /* deletes it: its records are all settled now */
    return 1;
}

/* ---- reading frames ------------------------------------------------------------------------- */

/* n bytes at off of segment no (handle fh, ours up to limit), through rbuf; NULL with *kind
 * when the file ends first or cannot be read. */
static const uint8_t *rb_get(audit_spool_t *sp, uint64_t no, int fh, uint64_t off, size_t n,
                             uint64_t limit, audit_spool_issue_kind_t *kind)
{
    if (sp->rseg == no && off >= sp->roff && off + n <= sp->roff + sp->rlen)
        return sp->rbuf + (off - sp->roff);
    if (off > limit || limit - off < n) {
        *kind = AUDIT_SPOOL_TORN;
        return NULL;
    }
    uint64_t want = n > sp->cfg.read_chunk ? n : sp->cfg.read_chunk;
    if (want > limit - off)
        want = limit - off;
    if (want > sp->rcap) {
        uint8_t *nb = realloc(sp->rbuf, want);
        if (!nb) {
            *kind = AUDIT_SPOOL_IO;
            return NULL;
        }
        sp->rbuf = nb;
        sp->rcap = want;
    }
    sp->rseg = 0;
    int64_t got = sp->fs.ops->read(sp->fs.ctx, fh, off, sp->rbuf, want);
    if (got < 0) {
        sp->st.io_errors++;
        *kind = AUDIT_SPOOL_IO;
        return NULL;
    }
    sp->rseg = no;
    sp->roff = off;
    sp->rlen = (size_t)got;
    if ((uint64_t)got < n) {
        *kind = AUDIT_SPOOL_TORN;
        return NULL;
    }
    return sp->rbuf;
}

/* Reads and checks the frame at off: 0 with *data and *len, or -1 with *kind. */
static int read_frame(audit_spool_t *sp, uint64_t no, int fh, uint64_t off, uint64_t limit,
                      const uint8_t **data, uint32_t *len, audit_spool_issue_kind_t *kind)
{
    const uint8_t *h = rb_get(sp, no, fh, off, AUDIT_SPOOL_FRAME_HDR, limit, kind);
    if (!h)
        return -1;
    uint32_t n = get32(h);
    if (n == 0) {
        *kind = AUDIT_SPOOL_ZERO;
        return -1;
    }
    if (n > AUDIT_SPOOL_RECORD_MAX) {
        *kind = AUDIT_SPOOL_LENGTH;
        return -1;
    }
    const uint8_t *f = rb_get(sp, no, fh, off, AUDIT_SPOOL_FRAME_HDR + (size_t)n, limit, kind);
    if (!f)
        return -1;
    uint32_t crc = mesh_crc32c_extend(mesh_crc32c(f, 4), f + AUDIT_SPOOL_FRAME_HDR, n);
    if (crc != get32(f + 4)) {
        *kind = AUDIT_SPOOL_CRC;
        return -1;
    }
    *data = f + AUDIT_SPOOL_FRAME_HDR;
    *len = n;
    return 0;
}

/* ---- opening and replay ----------------------------------------------------------------- */

typedef struct listing {
    uint64_t *v;
    size_t n, cap;
    int oom;
} listing_t;

static void list_cb(void *ud, const char *name)
{
    listing_t *l = ud;
    uint64_t no;
    if (!audit_spool_segment_parse(name, &no))
        return;
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 64;
        uint64_t *n = realloc(l->v, ncap * sizeof(*n));
        if (!n) {
            l->oom = 1;
            return;
        }
        l->v = n;
        l->cap = ncap;
    }
    l->v[l->n++] = no;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void header_encode(uint8_t *h, uint64_t no)
{
    memset(h, 0, AUDIT_SPOOL_SEG_HDR);
    memcpy(h, AUDIT_SPOOL_MAGIC, 8);
    put32(h + 8, AUDIT_SPOOL_VERSION);
    put32(h + 12, AUDIT_SPOOL_SEG_HDR);
    put64(h + 16, no);
    put32(h + 28, mesh_crc32c(h, 28));
}

static int header_ok(const uint8_t *h, uint64_t no)
{
    return memcmp(h, AUDIT_SPOOL_MAGIC, 8) == 0 && get32(h + 8) == AUDIT_SPOOL_VERSION &&
           get32(h + 12) == AUDIT_SPOOL_SEG_HDR && get64(h + 16) == no &&
           get32(h + 28) == mesh_crc32c(h, 28);
}

/* A segment that cannot be read at open stays on disk untouched, counted, for a later start. */
static void keep_unread(audit_spool_t *sp, uint64_t no, uint64_t size, uint64_t off)
{
    sp->st.io_errors++;
    add_issue(sp, no, off, 0, AUDIT_SPOOL_IO, 1, 0);
    sp->nkept++;
    sp->st.unreadable++;
    sp->st.bytes += size;
    count_segments(sp);
}

/* read_frame, retried when the read itself fails. */
static int read_frame_retry(audit_spool_t *sp, uint64_t no, int fh, uint64_t off, uint64_t limit,
                            const uint8_t **data, uint32_t *len, audit_spool_issue_kind_t *kind)
{
    for (int i = 0;; i++) {
        if (read_frame(sp, no, fh, off, limit, data, len, kind) == 0)
            return 0;
        if (*kind != AUDIT_SPOOL_IO || i + 1 >= AUDIT_SPOOL_READ_ATTEMPTS)
            return -1;
    }
}

/* Replays segment no: checks every frame, cuts a bad tail (truncating the last segment), and
 * queues its records. A segment without a valid record is deleted; one that cannot be read is
 * kept for a later start (its records are not lost, only later). */
static int replay_segment(audit_spool_t *sp, uint64_t no, int last)
{
    char name[AUDIT_SPOOL_NAME_LEN + 1];
    audit_spool_segment_name(no, name);
    int fh = -1;
    uint64_t size = 0;
    if (sp->fs.ops->open(sp->fs.ctx, name, &fh, &size) < 0) {
        keep_unread(sp, no, 0, 0);
        return 0;
    }
    audit_spool_issue_kind_t kind = AUDIT_SPOOL_HEADER;
    const uint8_t *h = NULL;
    for (int i = 0; size >= AUDIT_SPOOL_SEG_HDR && !h && i < AUDIT_SPOOL_READ_ATTEMPTS; i++)
        h = rb_get(sp, no, fh, 0, AUDIT_SPOOL_SEG_HDR, size, &kind);
    if (!h && kind == AUDIT_SPOOL_IO) {
        sp->fs.ops->close(sp->fs.ctx, fh);
        keep_unread(sp, no, size, 0);
        return 0;
    }
    if (!h || !header_ok(h, no)) {
        add_issue(sp, no, 0, size, AUDIT_SPOOL_HEADER, 1, 0);
        sp->fs.ops->close(sp->fs.ctx, fh);
        sp->rseg = 0;
        sp->st.bytes += size;
        unlink_or_keep(sp, no, size);
        return 0;
    }
    uint64_t off = AUDIT_SPOOL_SEG_HDR, count = 0;
    while (off < size) {
        const uint8_t *data;
        uint32_t len;
        if (read_frame_retry(sp, no, fh, off, size, &data, &len, &kind) == 0) {
            off += AUDIT_SPOOL_FRAME_HDR + len;
            count++;
            continue;
        }
        if (kind == AUDIT_SPOOL_IO) {
            sp->fs.ops->close(sp->fs.ctx, fh);
            sp->rseg = 0;
            keep_unread(sp, no, size, off);
            return 0;
        }
        int cut = last && sp->fs.ops->truncate(sp->fs.ctx, fh, off) == 0;
        if (last && !cut)
            sp->st.io_errors++;
        add_issue(sp, no, off, size - off, kind, 1, cut);
        if (cut) {
            size = off;
            if (sp->rseg == no && sp->roff + sp->rlen > off)
                sp->rseg = 0;
        }
        break;
    }
    sp->fs.ops->close(sp->fs.ctx, fh);
    if (!count) {
        sp->rseg = 0;
        sp->st.bytes += size;
        unlink_or_keep(sp, no, size);
        return 0;
    }
    seg_t s = {
        .no = no,
        .fh = -1,
        .base_seq = sp->next_seq,
        .end_seq = sp->next_seq + count,
        .size = size,
        .end = off,
        .written = off,
        .written_seq = sp->next_seq + count,
        .synced = 0, /* it may live only in the page cache (a killed process): sync it again */
        .synced_seq = sp->next_seq,
        .hole_off = NONE,
    };
    if (push_seg(sp, &s) < 0)
        return -1;
    sp->next_seq += count;
    sp->st.replayed += count;
    sp->st.pending += count;
    sp->st.bytes += size;
    return 0;
}

audit_spool_t *audit_spool_open(const audit_spool_cfg_t *cfg_in, const audit_spool_fs_t *fs,
                                uint64_t now_ms, char *err, size_t errlen)
{
    audit_spool_cfg_t cfg;
    audit_spool_cfg_default(&cfg);
    if (cfg_in) {
        if (cfg_in->max_bytes)
            cfg.max_bytes = cfg_in->max_bytes;
        if (cfg_in->segment_bytes)
            cfg.segment_bytes = cfg_in->segment_bytes;
        if (cfg_in->max_record)
            cfg.max_record = cfg_in->max_record;
        if (cfg_in->batch_ms)
            cfg.batch_ms = cfg_in->batch_ms;
        if (cfg_in->batch_bytes)
            cfg.batch_bytes = cfg_in->batch_bytes;
        if (cfg_in->max_buffer)
            cfg.max_buffer = cfg_in->max_buffer;
        if (cfg_in->read_chunk)
            cfg.read_chunk = cfg_in->read_chunk;
        cfg.policy = cfg_in->policy;
    }
    if (cfg.policy != AUDIT_SPOOL_DROP_NEWEST && cfg.policy != AUDIT_SPOOL_DROP_OLDEST) {
        snprintf(err, errlen, "audit spool: unknown full-spool policy %d", (int)cfg.policy);
        return NULL;
    }
    if (cfg.max_record > AUDIT_SPOOL_RECORD_MAX) {
        snprintf(err, errlen, "audit spool: max record %" PRIu32 " bytes is above the limit %u",
                 cfg.max_record, AUDIT_SPOOL_RECORD_MAX);
        return NULL;
    }
    if (cfg.max_bytes < 4096 || cfg.max_bytes < 2 * ((uint64_t)cfg.max_record +
                                                     AUDIT_SPOOL_FRAME_HDR + AUDIT_SPOOL_SEG_HDR)) {
        snprintf(err, errlen,
                 "audit spool: size bound %" PRIu64 " bytes is too small (at least 4096 and twice "
                 "the longest record, %" PRIu32 " bytes, plus framing)",
                 cfg.max_bytes, cfg.max_record);
        return NULL;
    }
    /* At least four segments under the bound, so drop-oldest has something to delete. */
    if (cfg.segment_bytes > cfg.max_bytes / 4)
        cfg.segment_bytes = cfg.max_bytes / 4;
    if (cfg.segment_bytes < 2 * AUDIT_SPOOL_SEG_HDR)
        cfg.segment_bytes = 2 * AUDIT_SPOOL_SEG_HDR;
    if (cfg.max_buffer < cfg.batch_bytes)
        cfg.max_buffer = cfg.batch_bytes;
    if (!fs || !fs->ops) {
        snprintf(err, errlen, "audit spool: no file layer");
        return NULL;
    }

    audit_spool_t *sp = calloc(1, sizeof(*sp));
    if (!sp) {
        snprintf(err, errlen, "audit spool: out of memory");
        return NULL;
    }
    sp->cfg = cfg;
    sp->fs = *fs;
    sp->next_seq = 1;
    sp->floor = sp->hi = 1;
    sp->cur_seq = 1;
    sp->flush_at = NONE;
    sp->zombie_at = NONE;
    sp->now = now_ms;
    sp->dir_dirty = 1;

    listing_t l = {0};
    int rc = fs->ops->list(fs->ctx, list_cb, &l);
    if (rc < 0 || l.oom) {
        snprintf(err, errlen, "audit spool: %s",
                 l.oom ? "out of memory listing the folder" : fs_error(sp));
        free(l.v);
        free(sp);
        return NULL;
    }
    if (l.n)
        qsort(l.v, l.n, sizeof(*l.v), cmp_u64);
    for (size_t i = 0; i < l.n; i++) {
        if (i && l.v[i] == l.v[i - 1])
            continue;
        if (replay_segment(sp, l.v[i], i + 1 == l.n) < 0) {
            snprintf(err, errlen, "audit spool: out of memory replaying");
            free(l.v);
            audit_spool_close(sp);
            return NULL;
        }
    }
    sp->next_no = l.n ? l.v[l.n - 1] + 1 : 1;
    free(l.v);
    if (sp->st.replayed)
        mesh_info("audit",
                  "spool: replaying %" PRIu64 " records from %zu segments (%" PRIu64 " bytes)",
                  sp->st.replayed, sp->nseg, sp->st.bytes);
    return sp;
}

void audit_spool_close(audit_spool_t *sp)
{
    if (!sp)
        return;
    for (size_t i = 0; i < sp->nseg; i++) {
        seg_t *s = &sp->segs[i];
        if (s->fh >= 0 && !s->sync_inflight)
            sp->fs.ops->close(sp->fs.ctx, s->fh);
        else if (s->sync_inflight)
            mesh_error("audit", "spool: closed with a sync in flight (its handle is left open)");
    }
    free(sp->segs);
    free(sp->wbuf);
    free(sp->rbuf);
    free(sp->bits);
    free(sp->issues);
    free(sp->zombies);
    free(sp);
}

/* ---- writing ------------------------------------------------------------------------------ */

static void note_io_failure(audit_spool_t *sp, uint64_t now)
{
    uint32_t b = sp->backoff_ms ? sp->backoff_ms * 2 : (sp->cfg.batch_ms ? sp->cfg.batch_ms : 1);
    sp->backoff_ms = b > 1000 ? 1000 : b;
    sp->flush_at = now + sp->backoff_ms;
}

/* Writes the unwritten part of the batch; 0 or -errno. */
static int write_batch(audit_spool_t *sp, uint64_t now)
{
    seg_t *a = active_seg(sp);
    if (!a || a->written >= a->end) {
        sp->flush_at = NONE;
        return 0;
    }
    for (int attempt = 0;; attempt++) {
        a = active_seg(sp);
        size_t n = (size_t)(a->end - a->written);
        int rc =
            sp->fs.ops->write(sp->fs.ctx, a->fh, a->written, sp->wbuf + (a->written - sp->woff), n);
        sp->st.writes++;
        if (rc == 0) {
            sp->st.bytes_written += n;
            a->written = a->end;
            a->written_seq = a->end_seq;
            sp->backoff_ms = 0;
            sp->flush_at = NONE;
            return 0;
        }
        sp->st.write_errors++;
        /* A full disk under drop-oldest: make room and try again. */
        if (rc == -ENOSPC && sp->cfg.policy == AUDIT_SPOOL_DROP_OLDEST && attempt < 4 &&
            drop_oldest(sp))
            continue;
        mesh_warn("audit", "spool: write failed (%zu bytes kept in memory, retried): %s", n,
                  fs_error(sp));
        note_io_failure(sp, now);
        return rc;
    }
}

/* Seals the active segment (its batch written) and starts the next one. 0, or -1 when the
 * active segment stays (its batch cannot be written, or no new file can be created). */
static int rotate(audit_spool_t *sp, uint64_t now)
{
    if (active_seg(sp) && write_batch(sp, now) < 0)
        return -1;
    if (now < sp->create_at)
        return -1;
    char name[AUDIT_SPOOL_NAME_LEN + 1];
    int fh = -1, rc = -EEXIST;
    uint64_t no = sp->next_no;
    for (int i = 0; i < 16 && rc == -EEXIST; i++, no++) {
        audit_spool_segment_name(no, name);
        rc = sp->fs.ops->create(sp->fs.ctx, name, &fh);
        if (rc == 0)
            break;
    }
    if (rc < 0) {
        sp->st.write_errors++;
        mesh_warn("audit", "spool: cannot create a segment: %s", fs_error(sp));
        note_io_failure(sp, now);
        sp->create_at = now + sp->backoff_ms;
        return -1;
    }
    if (sp->wcap < AUDIT_SPOOL_SEG_HDR) {
        size_t cap =
            sp->cfg.batch_bytes > AUDIT_SPOOL_SEG_HDR ? sp->cfg.batch_bytes : AUDIT_SPOOL_SEG_HDR;
        uint8_t *nb = realloc(sp->wbuf, cap);
        if (!nb) {
            sp->fs.ops->close(sp->fs.ctx, fh);
            sp->fs.ops->unlink(sp->fs.ctx, name);
            return -1;
        }
        sp->wbuf = nb;
        sp->wcap = cap;
    }
    seg_t s = {
        .no = no,
        .fh = fh,
        .base_seq = sp->next_seq,
        .end_seq = sp->next_seq,
        .size = AUDIT_SPOOL_SEG_HDR,
        .end = AUDIT_SPOOL_SEG_HDR,
        .written_seq = sp->next_seq,
        .synced_seq = sp->next_seq,
        .hole_off = NONE,
    };
    if (push_seg(sp, &s) < 0) {
        sp->fs.ops->close(sp->fs.ctx, fh);
        sp->fs.ops->unlink(sp->fs.ctx, name);
        return -1;
    }
    sp->next_no = no + 1;
    if (sp->nzombie)
        retry_zombies(sp);
    /* Seal the previous segment: its batch is written; it keeps its handle until its last sync
     * and the cursor are done with it. */
    if (sp->active && sp->nseg >= 2) {
        sp->active = 0;
        seg_maybe_close(sp, &sp->segs[sp->nseg - 2]);
    }
    sp->active = 1;
    sp->rotate_next = 0;
    sp->dir_dirty = 1;
    sp->st.bytes += AUDIT_SPOOL_SEG_HDR;
    header_encode(sp->wbuf, no);
    sp->woff = 0;
    sp->wlen = AUDIT_SPOOL_SEG_HDR;
    sp->wseq = sp->next_seq;
    sp->create_at = 0;
    if (sp->flush_at == NONE)
        sp->flush_at = now + sp->cfg.batch_ms;
    return 0;
}

/* Makes room for frame more bytes in wbuf: writes and forgets the batch, or grows the buffer
 * (up to max_buffer while writes fail). 0 or -1. */
static int wbuf_room(audit_spool_t *sp, size_t frame, uint64_t now)
{
    if (sp->wlen + frame <= sp->wcap)
        return 0;
    seg_t *a = active_seg(sp);
    if (a->written < a->end && (sp->backoff_ms == 0 || now >= sp->flush_at))
        write_batch(sp, now);
    a = active_seg(sp);
    if (a->written == a->end) {
        sp->woff = a->end;
        sp->wseq = a->end_seq;
        sp->wlen = 0;
    }
    if (sp->wlen + frame <= sp->wcap)
        return 0;
    size_t want = sp->wlen + frame;
    size_t limit = sp->cfg.max_buffer > frame + AUDIT_SPOOL_SEG_HDR ? sp->cfg.max_buffer
                                                                    : frame + AUDIT_SPOOL_SEG_HDR;
    if (want > limit)
        return -1;
    size_t cap = sp->wcap ? sp->wcap : 4096;
    while (cap < want)
        cap *= 2;
    if (cap > limit)
        cap = limit;
    uint8_t *nb = realloc(sp->wbuf, cap);
    if (!nb)
        return -1;
    sp->wbuf = nb;
    sp->wcap = cap;
    return 0;
}

audit_spool_result_t audit_spool_append(audit_spool_t *sp, const void *data, size_t len,
                                        uint64_t now, uint64_t *seq)
{
    sp->now = now;
    if (len == 0 || len > sp->cfg.max_record) {
        sp->st.dropped_size++;
        return AUDIT_SPOOL_DROPPED_SIZE;
    }
    size_t frame = AUDIT_SPOOL_FRAME_HDR + len;
    seg_t *a = active_seg(sp);
    int want_rotate = !a || sp->rotate_next ||
                      (a->end_seq > a->base_seq && a->end + frame > sp->cfg.segment_bytes);
    uint64_t need = frame + (want_rotate ? AUDIT_SPOOL_SEG_HDR : 0);
    if (sp->st.bytes + need > sp->cfg.max_bytes) {
        if (sp->cfg.policy == AUDIT_SPOOL_DROP_OLDEST)
            while (sp->st.bytes + need > sp->cfg.max_bytes && drop_oldest(sp))
                ;
        if (sp->st.bytes + need > sp->cfg.max_bytes) {
            sp->st.dropped_full++;
            return AUDIT_SPOOL_DROPPED_FULL;
        }
    }
    if (want_rotate && rotate(sp, now) < 0 && !active_seg(sp)) {
        sp->st.dropped_io++;
        return AUDIT_SPOOL_DROPPED_IO;
    }
    /* (A segment that cannot be sealed takes the record: it grows past segment_bytes while
     * the disk fails, within the bound checked above.) */
    if (wbuf_room(sp, frame, now) < 0) {
        sp->st.dropped_io++;
        return AUDIT_SPOOL_DROPPED_IO;
    }
    a = active_seg(sp);
    uint8_t *f = sp->wbuf + sp->wlen;
    put32(f, (uint32_t)len);
    memcpy(f + AUDIT_SPOOL_FRAME_HDR, data, len);
    put32(f + 4, mesh_crc32c_extend(mesh_crc32c(f, 4), f + AUDIT_SPOOL_FRAME_HDR, len));
    sp->wlen += frame;
    a->end += frame;
    a->size += frame;
    a->end_seq++;
    sp->st.bytes += frame;
    sp->st.appended++;
    sp->st.pending++;
    sp->st.payload_bytes += len;
    if (a->sync_failed)
        sp->st.unsynced++;
    uint64_t s = sp->next_seq++;
    if (seq)
        *seq = s;
    if (sp->flush_at == NONE)
        sp->flush_at = now + sp->cfg.batch_ms;
    if (a->end - a->written >= sp->cfg.batch_bytes && (sp->backoff_ms == 0 || now >= sp->flush_at))
        write_batch(sp, now);
    return AUDIT_SPOOL_OK;
}

uint64_t audit_spool_deadline(const audit_spool_t *sp)
{
    const seg_t *a = sp->active && sp->nseg ? &sp->segs[sp->nseg - 1] : NULL;
    uint64_t t = !a || a->written >= a->end ? NONE : sp->flush_at;
    return sp->zombie_at < t ? sp->zombie_at : t;
}

void audit_spool_tick(audit_spool_t *sp, uint64_t now)
{
    sp->now = now;
    if (sp->nzombie && now >= sp->zombie_at)
        retry_zombies(sp);
    if (sp->flush_at != NONE && now >= sp->flush_at)
        write_batch(sp, now);
}

void audit_spool_flush(audit_spool_t *sp, uint64_t now)
{
    write_batch(sp, now);
}

/* ---- syncs ------------------------------------------------------------------------------- */

int audit_spool_take_sync(audit_spool_t *sp, audit_spool_sync_t *req)
{
    if (sp->sync_inflight)
        return 0;
    for (size_t i = 0; i < sp->nseg; i++) {
        seg_t *s = &sp->segs[i];
        if (s->sync_failed || s->written <= s->synced)
            continue;
        if (seg_open(sp, s) < 0) {
            mesh_warn("audit", "spool: cannot open a segment to sync it: %s", fs_error(sp));
            s->sync_failed = 1;
            sp->st.sync_errors++;
            sp->st.unsynced += s->end_seq - s->synced_seq;
            continue;
        }
        *req = (audit_spool_sync_t){
            .fh = s->fh,
            .dir = sp->dir_dirty,
            .segment = s->no,
            .upto = s->written,
            .from_seq = s->synced_seq,
            .upto_seq = s->written_seq,
        };
        sp->dir_dirty = 0;
        s->sync_inflight = 1;
        sp->sync_inflight = 1;
        return 1;
    }
    return 0;
}

int audit_spool_sync_run(const audit_spool_t *sp, const audit_spool_sync_t *req)
{
    return sp->fs.ops->sync(sp->fs.ctx, req->fh, req->dir);
}

void audit_spool_synced(audit_spool_t *sp, const audit_spool_sync_t *req, int rc, uint64_t now)
{
    sp->now = now;
    sp->sync_inflight = 0;
    ptrdiff_t i = find_seg(sp, req->segment);
    if (i < 0) {
        /* Deleted while its sync ran (every record acknowledged or dropped). */
        sp->fs.ops->close(sp->fs.ctx, req->fh);
        if (rc < 0)
            sp->dir_dirty = 1;
        return;
    }
    seg_t *s = &sp->segs[i];
    s->sync_inflight = 0;
    if (rc < 0) {
        sp->st.sync_errors++;
        if (req->dir)
            sp->dir_dirty = 1;
        char name[AUDIT_SPOOL_NAME_LEN + 1];
        audit_spool_segment_name(s->no, name);
        mesh_error("audit",
                   "spool: sync of segment %s failed (%s): its %" PRIu64
                   " unsynced records are not durable; they are still sent, new records go to "
                   "a new segment",
                   name, strerror(-rc), s->end_seq - s->synced_seq);
        if (!s->sync_failed) {
            s->sync_failed = 1;
            sp->st.unsynced += s->end_seq - s->synced_seq;
            if (is_active(sp, s))
                sp->rotate_next = 1;
        }
    } else if (req->upto > s->synced) {
        sp->st.fsyncs++;
        sp->st.durable += req->upto_seq - s->synced_seq;
        s->synced = req->upto;
        s->synced_seq = req->upto_seq;
    } else {
        sp->st.fsyncs++;
    }
    seg_maybe_close(sp, s);
}

/* ---- the read cursor --------------------------------------------------------------------- */

static void cursor_set(audit_spool_t *sp, size_t idx, uint64_t off, uint64_t seq)
{
    ptrdiff_t old = sp->cur_ok ? find_seg(sp, sp->cur_no) : -1;
    sp->cur_ok = 1;
    sp->cur_idx = idx;
    sp->cur_no = sp->segs[idx].no;
    sp->cur_off = off;
    sp->cur_seq = seq;
    if (old >= 0 && (size_t)old != idx)
        seg_maybe_close(sp, &sp->segs[old]);
}

/* Points the cursor at record target (or the first one after it still on disk): at the start
 * of its segment (or of the batch buffer), passing over what is below target. */
static void seek(audit_spool_t *sp, uint64_t target)
{
    target = max64(target, sp->floor);
    sp->skip_to = target;
    size_t lo = 0, hi = sp->nseg;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sp->segs[mid].end_seq <= target)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == sp->nseg) {
        sp->cur_ok = 0;
        sp->cur_seq = target;
        return;
    }
    seg_t *s = &sp->segs[lo];
    if (is_active(sp, s) && target >= sp->wseq && sp->wseq > s->base_seq)
        cursor_set(sp, lo, sp->woff, sp->wseq);
    else
        cursor_set(sp, lo, AUDIT_SPOOL_SEG_HDR, s->base_seq);
}

static seg_t *cursor_seg(audit_spool_t *sp)
{
    if (sp->cur_ok) {
        if (sp->cur_idx < sp->nseg && sp->segs[sp->cur_idx].no == sp->cur_no)
            return &sp->segs[sp->cur_idx];
        ptrdiff_t i = find_seg(sp, sp->cur_no);
        if (i >= 0) {
            sp->cur_idx = (size_t)i;
            return &sp->segs[i];
        }
        sp->cur_ok = 0;
    }
    seek(sp, max64(sp->cur_seq, sp->skip_to));
    return sp->cur_ok ? &sp->segs[sp->cur_idx] : NULL;
}

/* The rest of the cursor's segment cannot be read: report it, settle its records as lost and
 * go on after it (after the part still in the batch buffer, for the active segment). */
static void lose_rest(audit_spool_t *sp, seg_t *s, audit_spool_issue_kind_t kind)
{
    uint64_t off = sp->cur_off, seq = sp->cur_seq, end, end_seq;
    if (is_active(sp, s)) {
        end = sp->woff;
        end_seq = sp->wseq;
    } else {
        end = s->end;
        end_seq = s->end_seq;
    }
    if (end < off)
        end = off;
    add_issue(sp, s->no, off, end - off, kind, 0, 0);
    s->hole_off = off;
    s->hole_end = end;
    s->hole_seq = end_seq;
    uint64_t n = settle_range(sp, seq, end_seq);
    sp->st.lost_corrupt += n;
    sp->cur_off = end;
    sp->cur_seq = end_seq;
    advance_floor(sp);
}

int audit_spool_next(audit_spool_t *sp, audit_spool_rec_t *rec)
{
    for (;;) {
        if (sp->cur_seq >= sp->next_seq)
            return 0;
        seg_t *s = cursor_seg(sp);
        if (!s)
            return 0;
        if (sp->cur_seq >= s->end_seq) {
            if (sp->cur_idx + 1 >= sp->nseg)
                return 0;
            cursor_set(sp, sp->cur_idx + 1, AUDIT_SPOOL_SEG_HDR,
                       sp->segs[sp->cur_idx + 1].base_seq);
            continue;
        }
        if (s->hole_off != NONE && sp->cur_off == s->hole_off) {
            sp->cur_off = s->hole_end;
            sp->cur_seq = s->hole_seq;
            continue;
        }
        const uint8_t *data;
        uint32_t len;
        if (is_active(sp, s) && sp->cur_off >= sp->woff) {
            const uint8_t *f = sp->wbuf + (sp->cur_off - sp->woff);
            len = get32(f);
            data = f + AUDIT_SPOOL_FRAME_HDR;
        } else {
            audit_spool_issue_kind_t kind = AUDIT_SPOOL_IO;
            if (seg_open(sp, s) < 0 ||
                read_frame(sp, s->no, s->fh, sp->cur_off, s->written, &data, &len, &kind) < 0) {
                /* An I/O error may pass: try again at the next calls before giving up the
                 * rest of the segment. */
                if (kind == AUDIT_SPOOL_IO && ++sp->read_failures < AUDIT_SPOOL_READ_ATTEMPTS) {
                    mesh_warn("audit", "spool: read-back failed (retried): %s", fs_error(sp));
                    return 0;
                }
                sp->read_failures = 0;
                lose_rest(sp, s, kind);
                continue;
            }
            sp->read_failures = 0;
        }
        uint64_t seq = sp->cur_seq++;
        sp->cur_off += AUDIT_SPOOL_FRAME_HDR + len;
        if (seq < sp->skip_to || settled(sp, seq))
            continue;
        bits_cover(sp, seq + 1);
        sp->st.delivered++;
        rec->seq = seq;
        rec->data = data;
        rec->len = len;
        return 1;
    }
}

void audit_spool_rewind(audit_spool_t *sp, uint64_t seq)
{
    seq = max64(seq, sp->floor);
    if (seq >= max64(sp->cur_seq, sp->skip_to))
        return;
    seek(sp, seq);
}

uint64_t audit_spool_settled_below(const audit_spool_t *sp)
{
    return sp->floor;
}

const audit_spool_stats_t *audit_spool_stats(const audit_spool_t *sp)
{
    return &sp->st;
}

const audit_spool_issue_t *audit_spool_issues(const audit_spool_t *sp, size_t *n)
{
    *n = sp->nissue;
    return sp->issues;
}
