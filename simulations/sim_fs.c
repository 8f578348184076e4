/*
 * simulations/sim_fs.c: the in-memory folder with a crash model (see sim_fs.h).
 */
#include "simulations/sim_fs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_LEN 64

typedef struct inode {
    uint8_t *data; /* live bytes */
    size_t len, cap;
    uint8_t *ddata; /* durable bytes */
    size_t dlen;
    int refs; /* open handles */
    int used;
} inode_t;

typedef struct entry {
    char name[NAME_MAX_LEN];
    int ino;
} entry_t;

typedef struct names {
    entry_t *v;
    size_t n, cap;
} names_t;

struct sim_fs {
    mesh_prng_t *prng;
    inode_t *inodes;
    size_t ninodes;
    names_t live, durable;
    int *handles; /* handle h (1-based) -> inode, or -1 once closed */
    size_t nhandles, caphandles;
    sim_fs_faults_t faults;
    int fail_err[SIM_FS_NOPS], fail_count[SIM_FS_NOPS];
    sim_fs_stats_t st;
    char err[160];
};

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "sim_fs: out of memory\n");
        abort();
    }
    return q;
}

static int chance(sim_fs_t *fs, double p)
{
    return p > 0 && mesh_prng_double(fs->prng) < p;
}

static int set_err(sim_fs_t *fs, const char *what, const char *name, int e)
{
    snprintf(fs->err, sizeof(fs->err), "%s %s: %s", what, name ? name : "(handle)", strerror(e));
    return -e;
}

/* A planned failure of op: the errno, or 0. */
static int planned(sim_fs_t *fs, sim_fs_op_t op)
{
    if (fs->fail_count[op] > 0) {
        fs->fail_count[op]--;
        fs->st.faults++;
        return fs->fail_err[op];
    }
    return 0;
}

/* ---- names and inodes ------------------------------------------------------------------------ */

static ptrdiff_t names_find(const names_t *n, const char *name)
{
    for (size_t i = 0; i < n->n; i++)
        if (strcmp(n->v[i].name, name) == 0)
            return (ptrdiff_t)i;
    return -1;
}

static void names_add(names_t *n, const char *name, int ino)
{
    if (n->n == n->cap) {
        n->cap = n->cap ? n->cap * 2 : 16;
        n->v = xrealloc(n->v, n->cap * sizeof(*n->v));
    }
    snprintf(n->v[n->n].name, NAME_MAX_LEN, "%s", name);
    n->v[n->n].ino = ino;
    n->n++;
}

static void names_del(names_t *n, size_t i)
{
    memmove(n->v + i, n->v + i + 1, (n->n - i - 1) * sizeof(*n->v));
    n->n--;
}

static void names_copy(names_t *to, const names_t *from)
{
    if (to->cap < from->n) {
        to->cap = from->n;
        to->v = xrealloc(to->v, to->cap * sizeof(*to->v));
    }
    if (from->n)
        memcpy(to->v, from->v, from->n * sizeof(*to->v));
    to->n = from->n;
}

static int inode_new(sim_fs_t *fs)
{
    for (size_t i = 0; i < fs->ninodes; i++)
        if (!fs->inodes[i].used) {
            fs->inodes[i] = (inode_t){.used = 1};
            return (int)i;
        }
    fs->inodes = xrealloc(fs->inodes, (fs->ninodes + 1) * sizeof(*fs->inodes));
    fs->inodes[fs->ninodes] = (inode_t){.used = 1};
    return (int)fs->ninodes++;
}

/* Frees an inode no name, durable name or handle refers to. */
static void inode_gc(sim_fs_t *fs, int ino)
{
    inode_t *in = &fs->inodes[ino];
    if (!in->used || in->refs)
        return;
    for (size_t i = 0; i < fs->live.n; i++)
        if (fs->live.v[i].ino == ino)
            return;
    for (size_t i = 0; i < fs->durable.n; i++)
        if (fs->durable.v[i].ino == ino)
            return;
    free(in->data);
    free(in->ddata);
    *in = (inode_t){0};
}

static void inode_reserve(inode_t *in, size_t n)
{
    if (n <= in->cap)
        return;
    size_t c = in->cap ? in->cap : 256;
    while (c < n)
        c *= 2;
    in->data = xrealloc(in->data, c);
    in->cap = c;
}

static void inode_set_len(inode_t *in, size_t n)
{
    inode_reserve(in, n);
    if (n > in->len)
        memset(in->data + in->len, 0, n - in->len);
    in->len = n;
}

static void inode_capture(inode_t *in)
{
    in->ddata = xrealloc(in->ddata, in->len);
    if (in->len)
        memcpy(in->ddata, in->data, in->len);
    in->dlen = in->len;
}

static uint64_t live_bytes(const sim_fs_t *fs)
{
    uint64_t b = 0;
    for (size_t i = 0; i < fs->ninodes; i++)
        if (fs->inodes[i].used)
            b += fs->inodes[i].len;
    return b;
}

static int handle_new(sim_fs_t *fs, int ino)
{
    if (fs->nhandles == fs->caphandles) {
        fs->caphandles = fs->caphandles ? fs->caphandles * 2 : 64;
        fs->handles = xrealloc(fs->handles, fs->caphandles * sizeof(*fs->handles));
    }
    fs->handles[fs->nhandles++] = ino;
    fs->inodes[ino].refs++;
    fs->st.open_handles++;
    return (int)fs->nhandles; /* 1-based, never reused */
}

/* The inode of handle fh, or NULL (counted: a bug of the caller). */
static inode_t *handle_get(sim_fs_t *fs, int fh)
{
    if (fh < 1 || (size_t)fh > fs->nhandles || fs->handles[fh - 1] < 0) {
        fs->st.bad_handles++;
        return NULL;
    }
    return &fs->inodes[fs->handles[fh - 1]];
}

/* ---- the file layer ------------------------------------------------------------------------- */

static int f_list(void *ctx, void (*fn)(void *ud, const char *name), void *ud)
{
    sim_fs_t *fs = ctx;
    int e = planned(fs, SIM_FS_LIST);
    if (e)
        return set_err(fs, "list", "folder", e);
    /* Newest first: the core must sort. */
    for (size_t i = fs->live.n; i-- > 0;)
        fn(ud, fs->live.v[i].name);
    return 0;
}

static int f_create(void *ctx, const char *name, int *fh)
{
    sim_fs_t *fs = ctx;
    int e = planned(fs, SIM_FS_CREATE);
    if (!e && chance(fs, fs->faults.create_eio)) {
        fs->st.faults++;
        e = EIO;
    }
    if (e)
        return set_err(fs, "create", name, e);
    if (names_find(&fs->live, name) >= 0)
        return set_err(fs, "create", name, EEXIST);
    int ino = inode_new(fs);
    names_add(&fs->live, name, ino);
    *fh = handle_new(fs, ino);
    fs->st.creates++;
    return 0;
}

static int f_open(void *ctx, const char *name, int *fh, uint64_t *size)
{
    sim_fs_t *fs = ctx;
    int e = planned(fs, SIM_FS_OPEN);
    if (e)
        return set_err(fs, "open", name, e);
    ptrdiff_t i = names_find(&fs->live, name);
    if (i < 0)
        return set_err(fs, "open", name, ENOENT);
    int ino = fs->live.v[i].ino;
    *fh = handle_new(fs, ino);
    *size = fs->inodes[ino].len;
    return 0;
}

static void f_close(void *ctx, int fh)
{
    sim_fs_t *fs = ctx;
    inode_t *in = handle_get(fs, fh);
    if (!in)
        return;
    int ino = fs->handles[fh - 1];
    fs->handles[fh - 1] = -1;
    in->refs--;
    fs->st.open_handles--;
    inode_gc(fs, ino);
}

static int f_write(void *ctx, int fh, uint64_t off, const void *p, size_t n)
{
    sim_fs_t *fs = ctx;
    inode_t *in = handle_get(fs, fh);
    if (!in)
        return set_err(fs, "write", NULL, EBADF);
    fs->st.writes++;
    size_t put = n;
    int e = planned(fs, SIM_FS_WRITE);
    if (!e && chance(fs, fs->faults.write_eio)) {
        fs->st.faults++;
        e = EIO;
    }
    if (e)
        put = n ? (size_t)mesh_prng_below(fs->prng, n) : 0;
    if (fs->faults.capacity) {
        uint64_t used = live_bytes(fs);
        uint64_t grow = off + put > in->len ? off + put - in->len : 0;
        if (used + grow > fs->faults.capacity) {
            uint64_t room = fs->faults.capacity > used ? fs->faults.capacity - used : 0;
            uint64_t upto = in->len + room;
            put = off >= upto ? 0 : (size_t)(upto - off < put ? upto - off : put);
            fs->st.faults++;
            e = ENOSPC;
        }
    }
    if (put) {
        if (off + put > in->len)
            inode_set_len(in, (size_t)(off + put));
        memcpy(in->data + off, p, put);
        fs->st.bytes_written += put;
    }
    return e ? set_err(fs, "write", NULL, e) : 0;
}

static int64_t f_read(void *ctx, int fh, uint64_t off, void *p, size_t n)
{
    sim_fs_t *fs = ctx;
    inode_t *in = handle_get(fs, fh);
    if (!in)
        return set_err(fs, "read", NULL, EBADF);
    fs->st.reads++;
    int e = planned(fs, SIM_FS_READ);
    if (!e && chance(fs, fs->faults.read_eio)) {
        fs->st.faults++;
        e = EIO;
    }
    if (e)
        return set_err(fs, "read", NULL, e);
    if (off >= in->len)
        return 0;
    size_t k = in->len - off < n ? (size_t)(in->len - off) : n;
    memcpy(p, in->data + off, k);
    return (int64_t)k;
}

static int f_truncate(void *ctx, int fh, uint64_t size)
{
    sim_fs_t *fs = ctx;
    inode_t *in = handle_get(fs, fh);
    if (!in)
        return set_err(fs, "truncate", NULL, EBADF);
    int e = planned(fs, SIM_FS_TRUNCATE);
    if (e)
        return set_err(fs, "truncate", NULL, e);
    inode_set_len(in, (size_t)size);
    return 0;
}

static int f_unlink(void *ctx, const char *name)
{
    sim_fs_t *fs = ctx;
    int e = planned(fs, SIM_FS_UNLINK);
    if (!e && chance(fs, fs->faults.unlink_eio)) {
        fs->st.faults++;
        e = EIO;
    }
    if (e)
        return set_err(fs, "unlink", name, e);
    ptrdiff_t i = names_find(&fs->live, name);
    if (i < 0)
        return set_err(fs, "unlink", name, ENOENT);
    int ino = fs->live.v[i].ino;
    names_del(&fs->live, (size_t)i);
    fs->st.unlinks++;
    inode_gc(fs, ino);
    return 0;
}

static int f_sync(void *ctx, int fh, int dir)
{
    sim_fs_t *fs = ctx;
    inode_t *in = fh < 0 ? NULL : handle_get(fs, fh);
    if (!in && fh >= 0)
        return -EBADF;
    int e = planned(fs, SIM_FS_SYNC);
    if (!e && chance(fs, fs->faults.sync_eio)) {
        fs->st.faults++;
        e = EIO;
    }
    if (e) {
        /* After a writeback error the dirty pages may be dropped: reads then see what the
         * disk has, here zeros past the durable length. */
        if (e == EIO && in && in->len > in->dlen && mesh_prng_below(fs->prng, 2))
            memset(in->data + in->dlen, 0, in->len - in->dlen);
        return -e;
    }
    if (in) {
        inode_capture(in);
        fs->st.syncs++;
    }
    if (dir) {
        /* Names gone from both lists free their inodes afterwards. */
        names_t old = {0};
        names_copy(&old, &fs->durable);
        names_copy(&fs->durable, &fs->live);
        for (size_t i = 0; i < old.n; i++)
            inode_gc(fs, old.v[i].ino);
        free(old.v);
        fs->st.dir_syncs++;
    }
    return 0;
}

static int f_rename(void *ctx, const char *from, const char *to)
{
    sim_fs_t *fs = ctx;
    ptrdiff_t i = names_find(&fs->live, from);
    if (i < 0)
        return set_err(fs, "rename", from, ENOENT);
    int ino = fs->live.v[i].ino;
    names_del(&fs->live, (size_t)i);
    ptrdiff_t j = names_find(&fs->live, to);
    if (j >= 0) {
        int old = fs->live.v[j].ino;
        fs->live.v[j].ino = ino;
        inode_gc(fs, old);
    } else {
        names_add(&fs->live, to, ino);
    }
    return 0;
}

/* One thread: nobody else can hold the lock; the name exists, as with flock's file. */
static int f_lock(void *ctx, const char *name, int *fh)
{
    sim_fs_t *fs = ctx;
    ptrdiff_t i = names_find(&fs->live, name);
    if (i >= 0) {
        *fh = handle_new(fs, fs->live.v[i].ino);
        return 0;
    }
    return f_create(ctx, name, fh);
}

static const char *f_error(void *ctx)
{
    sim_fs_t *fs = ctx;
    return fs->err[0] ? fs->err : "no error";
}

static const mesh_fs_ops_t sim_ops = {
    .list = f_list,
    .create = f_create,
    .open = f_open,
    .close = f_close,
    .write = f_write,
    .read = f_read,
    .truncate = f_truncate,
    .unlink = f_unlink,
    .sync = f_sync,
    .rename = f_rename,
    .lock = f_lock,
    .error = f_error,
};

/* ---- the public calls ------------------------------------------------------------------------ */

sim_fs_t *sim_fs_new(mesh_prng_t *prng)
{
    sim_fs_t *fs = xrealloc(NULL, sizeof(*fs));
    *fs = (sim_fs_t){.prng = prng};
    return fs;
}

void sim_fs_delete(sim_fs_t *fs)
{
    if (!fs)
        return;
    for (size_t i = 0; i < fs->ninodes; i++) {
        free(fs->inodes[i].data);
        free(fs->inodes[i].ddata);
    }
    free(fs->inodes);
    free(fs->live.v);
    free(fs->durable.v);
    free(fs->handles);
    free(fs);
}

audit_spool_fs_t sim_fs_layer(sim_fs_t *fs)
{
    return (audit_spool_fs_t){.ops = &sim_ops, .ctx = fs};
}

void sim_fs_set_faults(sim_fs_t *fs, const sim_fs_faults_t *f)
{
    fs->faults = f ? *f : (sim_fs_faults_t){0};
}

void sim_fs_fail_next(sim_fs_t *fs, sim_fs_op_t op, int err, int count)
{
    fs->fail_err[op] = err;
    fs->fail_count[op] = count;
}

/* What a power loss leaves of one file's bytes. */
static void crash_inode(sim_fs_t *fs, inode_t *in)
{
    if (in->len > in->dlen && (!in->dlen || memcmp(in->data, in->ddata, in->dlen) == 0)) {
        size_t extra = in->len - in->dlen;
        size_t keep = (size_t)mesh_prng_below(fs->prng, extra + 1);
        uint64_t mode = mesh_prng_below(fs->prng, 10);
        if (mode < 4) { /* all of the tail lost */
            in->len = in->dlen;
        } else if (mode < 7) { /* a prefix of it survives */
            in->len = in->dlen + keep;
        } else if (mode < 8) { /* a prefix, then zeros up to the size */
            memset(in->data + in->dlen + keep, 0, extra - keep);
        } else if (mode < 9) { /* all of it, with a few bytes flipped */
            for (int k = 0; k < 3; k++)
                in->data[in->dlen + mesh_prng_below(fs->prng, extra)] ^=
                    (uint8_t)(1 + mesh_prng_below(fs->prng, 255));
        } /* else all of it survives */
        fs->st.lost_bytes += extra - (in->len - in->dlen);
        if (mode >= 4 && mode < 9)
            fs->st.torn++;
    } else if (in->len != in->dlen || (in->len && memcmp(in->data, in->ddata, in->len) != 0)) {
        /* Not an extension (a truncation): either state. */
        if (mesh_prng_below(fs->prng, 2)) {
            inode_reserve(in, in->dlen);
            if (in->dlen)
                memcpy(in->data, in->ddata, in->dlen);
            in->len = in->dlen;
        }
    }
    inode_capture(in);
}

void sim_fs_crash(sim_fs_t *fs, int power_loss)
{
    fs->st.crashes++;
    for (size_t h = 0; h < fs->nhandles; h++)
        if (fs->handles[h] >= 0) {
            fs->inodes[fs->handles[h]].refs--;
            fs->handles[h] = -1;
            fs->st.open_handles--;
        }
    if (power_loss) {
        /* Names: each change since the last folder sync survives or not. */
        names_t res = {0};
        for (size_t i = 0; i < fs->durable.n; i++) {
            ptrdiff_t j = names_find(&fs->live, fs->durable.v[i].name);
            int same = j >= 0 && fs->live.v[j].ino == fs->durable.v[i].ino;
            if (same || mesh_prng_below(fs->prng, 2))
                names_add(&res, fs->durable.v[i].name, fs->durable.v[i].ino);
        }
        for (size_t i = 0; i < fs->live.n; i++)
            if (names_find(&res, fs->live.v[i].name) < 0 &&
                names_find(&fs->durable, fs->live.v[i].name) < 0 && mesh_prng_below(fs->prng, 2))
                names_add(&res, fs->live.v[i].name, fs->live.v[i].ino);
        names_copy(&fs->live, &res);
        names_copy(&fs->durable, &res);
        free(res.v);
        for (size_t i = 0; i < fs->ninodes; i++)
            if (fs->inodes[i].used)
                crash_inode(fs, &fs->inodes[i]);
    }
    for (size_t i = 0; i < fs->ninodes; i++)
        inode_gc(fs, (int)i);
}

int sim_fs_put(sim_fs_t *fs, const char *name, const void *data, size_t len)
{
    ptrdiff_t i = names_find(&fs->live, name);
    int ino;
    if (i >= 0) {
        ino = fs->live.v[i].ino;
    } else {
        ino = inode_new(fs);
        names_add(&fs->live, name, ino);
    }
    inode_t *in = &fs->inodes[ino];
    inode_set_len(in, len);
    if (len)
        memcpy(in->data, data, len);
    inode_capture(in);
    if (names_find(&fs->durable, name) < 0)
        names_add(&fs->durable, name, ino);
    return 0;
}

const uint8_t *sim_fs_get(const sim_fs_t *fs, const char *name, size_t *len)
{
    ptrdiff_t i = names_find(&fs->live, name);
    if (i < 0)
        return NULL;
    const inode_t *in = &fs->inodes[fs->live.v[i].ino];
    *len = in->len;
    return in->data ? in->data : (const uint8_t *)"";
}

int sim_fs_flip(sim_fs_t *fs, const char *name, size_t off)
{
    ptrdiff_t i = names_find(&fs->live, name);
    if (i < 0)
        return -1;
    inode_t *in = &fs->inodes[fs->live.v[i].ino];
    if (off >= in->len)
        return -1;
    in->data[off] ^= 1;
    if (off < in->dlen)
        in->ddata[off] ^= 1;
    return 0;
}

int sim_fs_cut(sim_fs_t *fs, const char *name, size_t len)
{
    ptrdiff_t i = names_find(&fs->live, name);
    if (i < 0)
        return -1;
    inode_t *in = &fs->inodes[fs->live.v[i].ino];
    if (len > in->len)
        return -1;
    in->len = len;
    if (in->dlen > len)
        in->dlen = len;
    return 0;
}

size_t sim_fs_count(const sim_fs_t *fs, const char *suffix, uint64_t *bytes)
{
    size_t n = 0;
    uint64_t b = 0;
    size_t sl = suffix ? strlen(suffix) : 0;
    for (size_t i = 0; i < fs->live.n; i++) {
        const char *nm = fs->live.v[i].name;
        size_t l = strlen(nm);
        if (suffix && (l < sl || strcmp(nm + l - sl, suffix) != 0))
            continue;
        n++;
        b += fs->inodes[fs->live.v[i].ino].len;
    }
    if (bytes)
        *bytes = b;
    return n;
}

const char *sim_fs_name(const sim_fs_t *fs, size_t i)
{
    return i < fs->live.n ? fs->live.v[i].name : NULL;
}

const sim_fs_stats_t *sim_fs_stats(const sim_fs_t *fs)
{
    return &fs->st;
}
