/*
 * registry/snapshot_file.c: the snapshot file's records, its blocking reads and writes, and the
 * coalescing writer that runs them on a libuv pool thread (see snapshot_file.h).
 */
#include "registry/snapshot_file.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/fs_posix.h"
#include "common/log.h"
#include "registry/view_table.h"

#define ACTOR           "registry"
#define COMPACT_MIN     1024
#define FAIL_GAP_MAX_MS 30000

/* ---- records -------------------------------------------------------------------------------- */

/* Grows an anonymous mapping to hold `more` bytes after len. */
static int map_reserve(char **data, size_t *cap, size_t len, size_t more)
{
    if (len + more <= *cap)
        return 0;
    size_t nc = *cap ? *cap : 16384;
    while (nc < len + more)
        nc *= 2;
    void *p = *data ? mremap(*data, *cap, nc, MREMAP_MAYMOVE)
                    : mmap(NULL, nc, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -1;
    *data = p;
    *cap = nc;
    return 0;
}

static void map_free(char *data, size_t cap)
{
    if (data)
        munmap(data, cap);
}

static int buf_reserve(reg_snap_buf_t *b, size_t more)
{
    if (map_reserve(&b->data, &b->cap, b->len, more) == 0)
        return 0;
    b->failed = 1;
    return -1;
}

/* Copies n bytes, turning tab, CR and LF into spaces. */
static void put_clean(reg_snap_buf_t *b, const char *s, size_t n)
{
    char *d = b->data + b->len;
    memcpy(d, s, n);
    for (size_t i = 0; i < n; i++)
        if (d[i] == '\t' || d[i] == '\n' || d[i] == '\r')
            d[i] = ' ';
    b->len += n;
}

static int key_ok(const char *key, size_t klen)
{
    return klen > 0 && !memchr(key, '\t', klen) && !memchr(key, '\n', klen) &&
           !memchr(key, '\r', klen) && !memchr(key, '\0', klen);
}

int reg_snap_buf_put(reg_snap_buf_t *b, const char *key, size_t klen, const char *val, size_t vlen,
                     int64_t mod_revision, int64_t lease)
{
    if (!key_ok(key, klen))
        return 0; /* cannot be a valid entry's key; nothing to keep */
    if (buf_reserve(b, klen + vlen + 64) < 0)
        return -1;
    b->len +=
        (size_t)sprintf(b->data + b->len, "P\t%" PRId64 "\t%" PRId64 "\t", mod_revision, lease);
    memcpy(b->data + b->len, key, klen);
    b->len += klen;
    b->data[b->len++] = '\t';
    put_clean(b, val, vlen);
    b->data[b->len++] = '\n';
    b->records++;
    return 0;
}

int reg_snap_buf_delete(reg_snap_buf_t *b, const char *key, size_t klen)
{
    if (!key_ok(key, klen))
        return 0;
    if (buf_reserve(b, klen + 4) < 0)
        return -1;
    b->data[b->len++] = 'D';
    b->data[b->len++] = '\t';
    memcpy(b->data + b->len, key, klen);
    b->len += klen;
    b->data[b->len++] = '\n';
    b->records++;
    return 0;
}

void reg_snap_buf_free(reg_snap_buf_t *b)
{
    map_free(b->data, b->cap);
    memset(b, 0, sizeof(*b));
}

/* ---- parsing -------------------------------------------------------------------------------- */

typedef struct rec {
    char type; /* 'P', 'D', 'R' */
    const char *key, *val;
    size_t klen, vlen;
    int64_t mod_revision, lease, revision;
} rec_t;

/* Parses a decimal int64 field ending at a tab or at end; advances *p past the tab. */
static int field_i64(const char **p, const char *end, int64_t *out)
{
    const char *s = *p;
    int neg = s < end && *s == '-';
    if (neg)
        s++;
    if (s >= end || *s < '0' || *s > '9')
        return -1;
    int64_t v = 0;
    while (s < end && *s >= '0' && *s <= '9') {
        if (v > (INT64_MAX - (*s - '0')) / 10)
            return -1;
        v = v * 10 + (*s++ - '0');
    }
    if (s < end && *s != '\t')
        return -1;
    *out = neg ? -v : v;
    *p = s < end ? s + 1 : s;
    return 0;
}

/* Parses one line (without its newline). Returns 0, or -1 for a malformed line. */
static int parse_line(const char *l, size_t n, rec_t *r)
{
    const char *p = l, *end = l + n;
    memset(r, 0, sizeof(*r));
    if (n >= 2 && (l[0] == 'P' || l[0] == 'D' || l[0] == 'R') && l[1] == '\t') {
        r->type = l[0];
        p += 2;
        if (r->type == 'R')
            return field_i64(&p, end, &r->revision) == 0 && p == end ? 0 : -1;
        if (r->type == 'D') {
            r->key = p;
            r->klen = (size_t)(end - p);
            return r->klen && !memchr(p, '\t', r->klen) ? 0 : -1;
        }
    } else {
        r->type = 'P'; /* version 1: no type letter */
    }
    if (field_i64(&p, end, &r->mod_revision) < 0 || field_i64(&p, end, &r->lease) < 0)
        return -1;
    const char *tab = memchr(p, '\t', (size_t)(end - p));
    if (!tab || tab == p)
        return -1;
    r->key = p;
    r->klen = (size_t)(tab - p);
    r->val = tab + 1;
    r->vlen = (size_t)(end - r->val);
    return 0;
}

/* Parses the header line; returns 0 when it is a snapshot header of prefix. */
static int parse_header(const char *l, size_t n, const char *prefix, int64_t *revision)
{
    size_t ml = strlen(REG_SNAP_MAGIC), pl = strlen(prefix);
    if (n < ml + 2 || memcmp(l, REG_SNAP_MAGIC, ml) != 0 || l[ml] != ' ')
        return -1;
    const char *p = l + ml + 1, *end = l + n;
    if (p + 2 > end || (*p != '1' && *p != '2') || p[1] != ' ')
        return -1;
    p += 2;
    const char *sp = memchr(p, ' ', (size_t)(end - p));
    if (!sp)
        return -1;
    char num[32];
    size_t nl = (size_t)(sp - p);
    if (nl == 0 || nl >= sizeof(num))
        return -1;
    memcpy(num, p, nl);
    num[nl] = '\0';
    char *e = NULL;
    long long rev = strtoll(num, &e, 10);
    if (*e)
        return -1;
    p = sp + 1;
    if ((size_t)(end - p) != pl || memcmp(p, prefix, pl) != 0)
        return -1;
    *revision = rev;
    return 0;
}

/* ---- the file layer ------------------------------------------------------------------------ */

/* A layer's -errno result as -1 with errno set. */
static int fs_rc(long long rc)
{
    if (rc >= 0)
        return 0;
    errno = (int)-rc;
    return -1;
}

/* The real folder of path and the file's name in it (the path-based calls and a writer made
 * with a path): 0, or -1 with errno set. */
typedef struct folder {
    mesh_fs_posix_t *posix;
    mesh_fs_t fs;
    const char *name;
    char dir[4096];
} folder_t;

static int folder_open(folder_t *f, const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t dl = slash ? (size_t)(slash - path) : 0;
    if (dl + 2 > sizeof(f->dir)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if (!slash)
        strcpy(f->dir, ".");
    else if (dl == 0)
        strcpy(f->dir, "/");
    else {
        memcpy(f->dir, path, dl);
        f->dir[dl] = '\0';
    }
    f->name = slash ? slash + 1 : path;
    if (!*f->name) {
        errno = EISDIR;
        return -1;
    }
    char err[256];
    int e;
    f->posix = mesh_fs_posix_open(f->dir, err, sizeof(err));
    if (!f->posix) {
        e = errno ? errno : EIO;
        errno = e;
        return -1;
    }
    mesh_fs_posix_set_mode(f->posix, 0644);
    f->fs = mesh_fs_posix_layer(f->posix);
    return 0;
}

static void folder_close(folder_t *f)
{
    int e = errno;
    mesh_fs_posix_close(f->posix);
    errno = e;
}

/* "<name><suffix>" into buf; 0 or -1 (ENAMETOOLONG). */
static int name_with(char *buf, size_t cap, const char *name, const char *suffix)
{
    if (snprintf(buf, cap, "%s%s", name, suffix) >= (int)cap) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

/* Reads a whole file into an anonymous mapping. Returns 0 or -1 (errno). */
static int read_all(const mesh_fs_t *fs, const char *name, char **data, size_t *len, size_t *cap)
{
    *data = NULL;
    *len = *cap = 0;
    int fh;
    uint64_t size = 0;
    if (fs_rc(fs->ops->open(fs->ctx, name, &fh, &size)) < 0)
        return -1;
    if (map_reserve(data, cap, 0, (size_t)size + 1) < 0) {
        int e = errno;
        fs->ops->close(fs->ctx, fh);
        errno = e;
        return -1;
    }
    for (;;) {
        if (*len == *cap && map_reserve(data, cap, *len, 65536) < 0)
            break;
        int64_t r = fs->ops->read(fs->ctx, fh, *len, *data + *len, *cap - *len);
        if (r <= 0) {
            fs->ops->close(fs->ctx, fh);
            if (r < 0) {
                map_free(*data, *cap);
                *data = NULL;
                errno = (int)-r;
                return -1;
            }
            return 0;
        }
        *len += (size_t)r;
    }
    int e = errno;
    fs->ops->close(fs->ctx, fh);
    map_free(*data, *cap);
    *data = NULL;
    errno = e;
    return -1;
}

long reg_snap_fs_read(const mesh_fs_t *fs, const char *name, const char *prefix, int64_t *revision,
                      reg_snap_record_cb cb, void *ud)
{
    char *data;
    size_t len, cap;
    if (read_all(fs, name, &data, &len, &cap) < 0)
        return -1;
    const char *nl = memchr(data, '\n', len);
    long count = -1;
    int64_t rev = 0;
    if (nl && parse_header(data, (size_t)(nl - data), prefix, &rev) == 0) {
        count = 0;
        const char *p = nl + 1, *end = data + len;
        while (p < end) {
            const char *e = memchr(p, '\n', (size_t)(end - p));
            if (!e)
                break; /* torn last line */
            rec_t r;
            if (parse_line(p, (size_t)(e - p), &r) == 0) {
                if (r.type == 'R')
                    rev = r.revision;
                else if (cb(ud, r.type, r.key, r.klen, r.val, r.vlen, r.mod_revision, r.lease) == 0)
                    count++;
            }
            p = e + 1;
        }
        *revision = rev;
    }
    map_free(data, cap);
    return count;
}

long reg_snap_file_read(const char *path, const char *prefix, int64_t *revision,
                        reg_snap_record_cb cb, void *ud)
{
    folder_t f;
    if (folder_open(&f, path) < 0)
        return -1;
    long n = reg_snap_fs_read(&f.fs, f.name, prefix, revision, cb, ud);
    folder_close(&f);
    return n;
}

/* Writes header + n chunks to <name>.tmp, syncs it, renames it over name and syncs the
 * folder. 0 or -1 (errno). */
static int write_file(const mesh_fs_t *fs, const char *name, const char *prefix, int64_t revision,
                      const struct iovec *chunks, size_t n)
{
    char tmp[512];
    if (name_with(tmp, sizeof(tmp), name, ".tmp") < 0)
        return -1;
    int rc = fs->ops->unlink(fs->ctx, tmp); /* a file left by a crash: start afresh */
    int fh;
    if (rc < 0 && rc != -ENOENT)
        return fs_rc(rc);
    if (fs_rc(fs->ops->create(fs->ctx, tmp, &fh)) < 0)
        return -1;
    char hdr[1200];
    int hl = snprintf(hdr, sizeof(hdr), REG_SNAP_MAGIC " %d %" PRId64 " %s\n", REG_SNAP_VERSION,
                      revision, prefix);
    rc = hl > 0 && (size_t)hl < sizeof(hdr) ? 0 : -ENAMETOOLONG;
    uint64_t off = 0;
    if (rc == 0) {
        rc = fs->ops->write(fs->ctx, fh, off, hdr, (size_t)hl);
        off += (uint64_t)hl;
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = fs->ops->write(fs->ctx, fh, off, chunks[i].iov_base, chunks[i].iov_len);
        off += chunks[i].iov_len;
    }
    if (rc == 0)
        rc = fs->ops->sync(fs->ctx, fh, 0);
    fs->ops->close(fs->ctx, fh);
    if (rc == 0)
        rc = fs->ops->rename(fs->ctx, tmp, name);
    if (rc < 0) {
        fs->ops->unlink(fs->ctx, tmp);
        return fs_rc(rc);
    }
    fs->ops->sync(fs->ctx, -1, 1); /* the folder: the new name (best effort, as before) */
    return 0;
}

int reg_snap_fs_write(const mesh_fs_t *fs, const char *name, const char *prefix, int64_t revision,
                      const reg_snap_buf_t *records)
{
    struct iovec c = {.iov_base = records ? records->data : NULL,
                      .iov_len = records ? records->len : 0};
    return write_file(fs, name, prefix, revision, &c, c.iov_len ? 1 : 0);
}

int reg_snap_file_write(const char *path, const char *prefix, int64_t revision,
                        const reg_snap_buf_t *records)
{
    folder_t f;
    if (folder_open(&f, path) < 0)
        return -1;
    int rc = reg_snap_fs_write(&f.fs, f.name, prefix, revision, records);
    folder_close(&f);
    return rc;
}

int reg_snap_fs_append(const mesh_fs_t *fs, const char *name, int64_t revision,
                       const reg_snap_buf_t *records)
{
    int fh;
    uint64_t size = 0;
    if (fs_rc(fs->ops->open(fs->ctx, name, &fh, &size)) < 0)
        return -1;
    char last = '\n';
    long long rc = 0;
    if (size > 0) {
        int64_t r = fs->ops->read(fs->ctx, fh, size - 1, &last, 1);
        rc = r == 1 ? 0 : r < 0 ? r : -EIO;
    }
    if (rc == 0 && last != '\n') { /* a crash tore the last line: end it */
        rc = fs->ops->write(fs->ctx, fh, size, "\n", 1);
        size++;
    }
    if (rc == 0 && records && records->len) {
        rc = fs->ops->write(fs->ctx, fh, size, records->data, records->len);
        size += records->len;
    }
    char r[40];
    int rl = snprintf(r, sizeof(r), "R\t%" PRId64 "\n", revision);
    if (rc == 0)
        rc = fs->ops->write(fs->ctx, fh, size, r, (size_t)rl);
    if (rc == 0)
        rc = fs->ops->sync(fs->ctx, fh, 0);
    fs->ops->close(fs->ctx, fh);
    return fs_rc(rc);
}

int reg_snap_file_append(const char *path, int64_t revision, const reg_snap_buf_t *records)
{
    folder_t f;
    if (folder_open(&f, path) < 0)
        return -1;
    int rc = reg_snap_fs_append(&f.fs, f.name, revision, records);
    folder_close(&f);
    return rc;
}

/* Compaction index: last record of each key, by line offset; len 0 marks a deleted key. */
typedef struct kslot {
    uint32_t hash;
    uint32_t used;
    size_t off, len;         /* the line, without its newline */
    size_t key_off, key_len; /* the key inside the file */
} kslot_t;

static uint32_t hash_key(const char *k, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)k[i];
        h *= 16777619u;
    }
    return h;
}

static int cmp_chunk(const void *a, const void *b)
{
    const char *x = ((const struct iovec *)a)->iov_base, *y = ((const struct iovec *)b)->iov_base;
    return x < y ? -1 : x > y;
}

int reg_snap_fs_compact(const mesh_fs_t *fs, const char *name, const char *prefix, size_t *live)
{
    char *data;
    size_t len, cap;
    *live = 0;
    if (read_all(fs, name, &data, &len, &cap) < 0)
        return -1;
    const char *nl = memchr(data, '\n', len);
    int64_t rev = 0;
    if (!nl || parse_header(data, (size_t)(nl - data), prefix, &rev) != 0) {
        map_free(data, cap);
        errno = EINVAL;
        return -1;
    }
    size_t lines = 0;
    for (const char *p = nl + 1; p < data + len; p++)
        lines += *p == '\n';
    size_t ns = 16;
    while (ns < 2 * lines + 2)
        ns *= 2;
    char *im = NULL;
    size_t icap = 0;
    if (map_reserve(&im, &icap, 0, ns * sizeof(kslot_t)) < 0) {
        map_free(data, cap);
        return -1;
    }
    kslot_t *ix = (kslot_t *)(void *)im; /* zeroed: fresh anonymous pages */
    const char *p = nl + 1, *end = data + len;
    while (p < end) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        if (!e)
            break;
        rec_t r;
        if (parse_line(p, (size_t)(e - p), &r) == 0) {
            if (r.type == 'R') {
                rev = r.revision;
            } else {
                uint32_t h = hash_key(r.key, r.klen);
                size_t i = h & (ns - 1);
                while (ix[i].used && !(ix[i].hash == h && ix[i].key_len == r.klen &&
                                       memcmp(data + ix[i].key_off, r.key, r.klen) == 0))
                    i = (i + 1) & (ns - 1);
                ix[i].used = 1;
                ix[i].hash = h;
                ix[i].key_off = (size_t)(r.key - data);
                ix[i].key_len = r.klen;
                ix[i].off = (size_t)(p - data);
                ix[i].len = r.type == 'P' ? (size_t)(e - p) : 0;
            }
        }
        p = e + 1;
    }
    /* The live lines, in the order of their last record, as one chunk list. */
    size_t n = 0;
    for (size_t i = 0; i < ns; i++)
        n += ix[i].used && ix[i].len;
    char *cm = NULL;
    size_t ccap = 0;
    int rc = -1;
    if (map_reserve(&cm, &ccap, 0, (n + 1) * sizeof(struct iovec)) == 0) {
        struct iovec *chunks = (struct iovec *)(void *)cm;
        size_t k = 0;
        for (size_t i = 0; i < ns; i++)
            if (ix[i].used && ix[i].len)
                chunks[k++] =
                    (struct iovec){.iov_base = data + ix[i].off, .iov_len = ix[i].len + 1};
        /* in the order of the records in the old file */
        qsort(chunks, k, sizeof(*chunks), cmp_chunk);
        rc = write_file(fs, name, prefix, rev, chunks, k);
        *live = k;
        map_free(cm, ccap);
    }
    int e = errno;
    map_free(im, icap);
    map_free(data, cap);
    errno = e;
    return rc;
}

int reg_snap_file_compact(const char *path, const char *prefix, size_t *live)
{
    folder_t f;
    *live = 0;
    if (folder_open(&f, path) < 0)
        return -1;
    int rc = reg_snap_fs_compact(&f.fs, f.name, prefix, live);
    folder_close(&f);
    return rc;
}

/* ---- the writer ----------------------------------------------------------------------------- */

typedef struct job {
    uv_work_t req;
    reg_snap_writer_t *w;
    reg_snap_buf_t data;
    int64_t revision;
    int fresh;   /* write a new file instead of appending */
    int compact; /* compact after appending */
    int rc, err;
    int compacted;
    size_t live;
} job_t;

struct reg_snap_writer {
    uv_loop_t *loop;      /* NULL: batches run at once, timers through host (the simulator) */
    reg_snap_host_t host; /* without a loop */
    const mesh_fs_t *fs;  /* NULL: the real folder of path, opened per batch */
    reg_table_t *t;       /* NULL once detached */
    char *path;           /* the file (messages), or its name in fs */
    char *prefix;
    uint32_t min_gap_ms;
    uint32_t gap_ms; /* min_gap_ms, doubled after each failure up to FAIL_GAP_MAX_MS */
    reg_snap_buf_t journal;
    int base_ok;          /* the file plus the journal is the view */
    int journal_complete; /* the journal holds the whole view (it started on an empty table) */
    int64_t revision;
    size_t appended; /* records appended since the file was last written whole */
    uint64_t last_start;
    uv_timer_t timer;
    job_t *in_flight;
    job_t *last; /* when freed with a batch in flight: the final batch */
    int closing;
    int timer_open;
    int timer_armed; /* without a loop: the host's timer is armed */
    reg_snap_stats_t stats;
};

static void schedule(reg_snap_writer_t *w);

static uint64_t now_ms(const reg_snap_writer_t *w)
{
    return w->loop ? uv_now(w->loop) : w->host.now_ms(w->host.ctx);
}

/* Runs a batch through fs under <name>.lock (the layer's lock: flock on the real folder), so
 * batches of writers of one file (a restarted view's new writer and its predecessor's last
 * batch, or two processes) never interleave with a compaction. Without the lock the batch
 * goes ahead (it fails on its own if the folder is unusable). */
static void work_in(job_t *j, const mesh_fs_t *fs, const char *name)
{
    reg_snap_writer_t *w = j->w;
    char lock[512];
    int lfh = -1;
    if (name_with(lock, sizeof(lock), name, ".lock") == 0 && fs->ops->lock(fs->ctx, lock, &lfh) < 0)
        lfh = -1;
    if (j->fresh) {
        j->rc = reg_snap_fs_write(fs, name, w->prefix, j->revision, &j->data);
    } else {
        j->rc = reg_snap_fs_append(fs, name, j->revision, &j->data);
        if (j->rc == 0 && j->compact) {
            j->compacted = reg_snap_fs_compact(fs, name, w->prefix, &j->live) == 0;
            if (!j->compacted)
                j->err = errno; /* the appended file is still whole */
        }
    }
    if (j->rc < 0)
        j->err = errno;
    if (lfh >= 0)
        fs->ops->close(fs->ctx, lfh); /* releases the lock */
}

static void work(uv_work_t *req)
{
    job_t *j = req->data;
    reg_snap_writer_t *w = j->w;
    if (w->fs) {
        work_in(j, w->fs, w->path);
        return;
    }
    folder_t f;
    if (folder_open(&f, w->path) < 0) {
        j->rc = -1;
        j->err = errno;
        return;
    }
    work_in(j, &f.fs, f.name);
    folder_close(&f);
}

/* Frees a closing writer once its timer is closed and no batch is in flight. */
static void maybe_free(reg_snap_writer_t *w)
{
    if (w->timer_open || w->in_flight)
        return;
    reg_snap_buf_free(&w->journal);
    free(w->path);
    free(w->prefix);
    free(w);
}

static void timer_closed(uv_handle_t *h)
{
    reg_snap_writer_t *w = h->data;
    w->timer_open = 0;
    maybe_free(w);
}

static void start(reg_snap_writer_t *w, job_t *j);

static void after_work(uv_work_t *req, int status)
{
    job_t *j = req->data;
    reg_snap_writer_t *w = j->w;
    w->in_flight = NULL;
    w->stats.in_flight = 0;
    if (status == 0 && j->rc == 0) {
        if (j->fresh) {
            w->stats.rewrites++;
            w->appended = 0; /* a new file: one record per key, but for keys changed meanwhile */
        } else {
            w->stats.appends++;
            w->appended += j->data.records;
        }
        if (j->compacted) {
            w->stats.compactions++;
            w->appended = 0;
        } else if (j->compact) {
            mesh_warn(ACTOR, "snapshot %s: compaction failed (%s); the file stays as appended",
                      w->path, strerror(j->err));
        }
        w->gap_ms = w->min_gap_ms;
    } else {
        w->stats.failures++;
        w->base_ok = 0;
        w->journal_complete = 0;
        w->gap_ms = w->gap_ms * 2 > FAIL_GAP_MAX_MS ? FAIL_GAP_MAX_MS : w->gap_ms * 2;
        mesh_warn(ACTOR, "snapshot %s: write failed: %s; writing it whole in %u ms", w->path,
                  status ? uv_strerror(status) : strerror(j->err), w->gap_ms);
    }
    reg_snap_buf_free(&j->data);
    free(j);
    if (w->closing) {
        job_t *last = w->last;
        w->last = NULL;
        if (last)
            start(w, last);
        else
            maybe_free(w);
        return;
    }
    schedule(w);
}

static void start(reg_snap_writer_t *w, job_t *j)
{
    w->last_start = now_ms(w);
    w->in_flight = j;
    w->stats.in_flight = 1;
    w->stats.records += j->data.records;
    j->req.data = j;
    if (!w->loop) { /* no pool: the batch runs now */
        work(&j->req);
        after_work(&j->req, 0);
        return;
    }
    int rv = uv_queue_work(w->loop, &j->req, work, after_work);
    if (rv < 0) {
        /* Cannot happen with valid arguments; report as a failed write, next turn. */
        j->rc = -1;
        j->err = EIO;
        after_work(&j->req, rv);
    }
}

/* Takes what is pending as a batch (on the loop, while the table lives). NULL: nothing. */
static job_t *capture(reg_snap_writer_t *w)
{
    int dump = !w->base_ok && !w->journal_complete;
    if (!dump && w->journal.records == 0 && w->base_ok)
        return NULL;
    if (dump && !w->t)
        return NULL; /* detached and unable to say what the view is */
    job_t *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    j->w = w;
    j->revision = w->revision;
    if (dump) {
        reg_snap_buf_free(&w->journal); /* the dump covers it */
        j->fresh = 1;
        w->stats.dumps++;
        if (reg_table_dump(w->t, &j->data) < 0) {
            mesh_warn(ACTOR, "snapshot %s: out of memory encoding the view", w->path);
            reg_snap_buf_free(&j->data);
            free(j);
            return NULL;
        }
    } else {
        j->data = w->journal;
        memset(&w->journal, 0, sizeof(w->journal));
        j->fresh = !w->base_ok;
        size_t live = w->t ? w->t->n_valid : 0;
        j->compact =
            !j->fresh && w->appended + j->data.records > (live > COMPACT_MIN ? live : COMPACT_MIN);
    }
    /* The next batch appends to this one (a failed write resets this); a record lost to out of
     * memory makes the next batch write the view whole. */
    w->base_ok = !j->data.failed;
    w->journal_complete = 0;
    return j;
}

static void on_timer(uv_timer_t *t)
{
    schedule(t->data);
}

static void schedule(reg_snap_writer_t *w)
{
    if (w->in_flight || w->closing)
        return;
    if (w->journal.records == 0 && w->base_ok)
        return;
    uint64_t now = now_ms(w);
    if (w->last_start && now < w->last_start + w->gap_ms) {
        if (!w->loop) {
            if (!w->timer_armed) {
                w->timer_armed = 1;
                w->host.arm(w->host.ctx, w->last_start + w->gap_ms - now);
            }
        } else if (!uv_is_active((uv_handle_t *)&w->timer)) {
            uv_timer_start(&w->timer, on_timer, w->last_start + w->gap_ms - now, 0);
        }
        return;
    }
    job_t *j = capture(w);
    if (j)
        start(w, j);
}

static reg_snap_writer_t *writer_new(uv_loop_t *loop, const reg_snap_host_t *host,
                                     const mesh_fs_t *fs, reg_table_t *t, const char *path,
                                     uint32_t min_gap_ms, int file_holds_table)
{
    reg_snap_writer_t *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->loop = loop;
    if (host)
        w->host = *host;
    w->fs = fs;
    w->t = t;
    w->path = strdup(path);
    w->prefix = strdup(t->prefix);
    if (!w->path || !w->prefix) {
        free(w->path);
        free(w->prefix);
        free(w);
        return NULL;
    }
    w->min_gap_ms = w->gap_ms = min_gap_ms ? min_gap_ms : 500;
    w->base_ok = file_holds_table;
    w->journal_complete = !file_holds_table && t->n_valid == 0;
    if (loop) {
        uv_timer_init(loop, &w->timer);
        w->timer.data = w;
        w->timer_open = 1;
    }
    t->journal = &w->journal;
    return w;
}

reg_snap_writer_t *reg_snap_writer_new(uv_loop_t *loop, reg_table_t *t, const char *path,
                                       uint32_t min_gap_ms, int file_holds_table)
{
    return writer_new(loop, NULL, NULL, t, path, min_gap_ms, file_holds_table);
}

reg_snap_writer_t *reg_snap_writer_new_fs(uv_loop_t *loop, const reg_snap_host_t *host,
                                          const mesh_fs_t *fs, reg_table_t *t, const char *name,
                                          uint32_t min_gap_ms, int file_holds_table)
{
    if (!loop && (!host || !host->now_ms || !host->arm))
        return NULL;
    return writer_new(loop, host, fs, t, name, min_gap_ms, file_holds_table);
}

void reg_snap_writer_on_timer(reg_snap_writer_t *w)
{
    if (!w || w->loop)
        return;
    w->timer_armed = 0;
    schedule(w);
}

void reg_snap_writer_kick(reg_snap_writer_t *w, int64_t revision)
{
    if (!w)
        return;
    w->revision = revision;
    schedule(w);
}

void reg_snap_writer_free(reg_snap_writer_t *w)
{
    if (!w)
        return;
    if (w->loop)
        uv_timer_stop(&w->timer);
    else if (w->timer_armed && w->host.disarm)
        w->host.disarm(w->host.ctx);
    w->timer_armed = 0;
    job_t *last = capture(w); /* while the table still lives */
    if (w->t && w->t->journal == &w->journal)
        w->t->journal = NULL;
    w->t = NULL;
    w->closing = 1;
    /* Closed now, not when the last batch is written: a node shutting down closes every
     * handle still open on its loop, then runs the loop until the work requests are done. */
    if (w->loop)
        uv_close((uv_handle_t *)&w->timer, timer_closed);
    if (w->in_flight)
        w->last = last; /* after_work starts it */
    else if (last)
        start(w, last); /* without a loop: written and freed now */
    else if (!w->loop)
        maybe_free(w);
}

void reg_snap_writer_stats(const reg_snap_writer_t *w, reg_snap_stats_t *out)
{
    *out = w->stats;
    out->pending = w->journal.records > 0;
}
