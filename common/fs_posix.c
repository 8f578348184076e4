/*
 * common/fs_posix.c: the file layer over a real folder (see fs_posix.h).
 */
#include "common/fs_posix.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

struct mesh_fs_posix {
    char *dir;
    int dirfd;
    char **names; /* names[fd]: the file an open handle is, for error messages */
    size_t nnames;
    int mode; /* of created files */
    char err[512];
};

/* Remembers the name of handle fd (best effort: only error messages use it). */
static void name_set(mesh_fs_posix_t *fs, int fd, const char *name)
{
    if ((size_t)fd >= fs->nnames) {
        size_t n = fs->nnames ? fs->nnames : 16;
        while (n <= (size_t)fd)
            n *= 2;
        char **v = realloc(fs->names, n * sizeof(*v));
        if (!v)
            return;
        memset(v + fs->nnames, 0, (n - fs->nnames) * sizeof(*v));
        fs->names = v;
        fs->nnames = n;
    }
    free(fs->names[fd]);
    fs->names[fd] = name ? strdup(name) : NULL;
}

static const char *name_of(mesh_fs_posix_t *fs, int fd)
{
    return fd >= 0 && (size_t)fd < fs->nnames && fs->names[fd] ? fs->names[fd] : "(segment)";
}

/* Records "<what> <dir>/<name>: <strerror>" and returns -e. */
static int fail(mesh_fs_posix_t *fs, const char *what, const char *name, int e)
{
    snprintf(fs->err, sizeof(fs->err), "%s %s%s%s: %s", what, fs->dir, name ? "/" : "",
             name ? name : "", strerror(e));
    return -e;
}

/*
 * Opens <dir>/<name> by path. Not openat(dirfd, ...): ThreadSanitizer does not intercept openat,
 * so a file opened and closed on a worker thread (the snapshot writer) would look to it like
 * the previous owner of that descriptor number (a socket of the loop thread) being closed
 * under that thread's feet.
 */
static int open_in(mesh_fs_posix_t *fs, const char *name, int flags, int mode)
{
    char path[4096];
    int n = snprintf(path, sizeof(path), "%s/%s", fs->dir, name);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return open(path, flags, mode);
}

static int p_list(void *ctx, void (*fn)(void *ud, const char *name), void *ud)
{
    mesh_fs_posix_t *fs = ctx;
    DIR *d = opendir(fs->dir);
    if (!d)
        return fail(fs, "list", NULL, errno);
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] != '.')
            fn(ud, de->d_name);
        errno = 0;
    }
    int e = errno;
    closedir(d);
    return e ? fail(fs, "list", NULL, e) : 0;
}

static int p_create(void *ctx, const char *name, int *fh)
{
    mesh_fs_posix_t *fs = ctx;
    int fd = open_in(fs, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, fs->mode);
    if (fd < 0)
        return fail(fs, "create", name, errno);
    *fh = fd;
    name_set(fs, fd, name);
    return 0;
}

static int p_open(void *ctx, const char *name, int *fh, uint64_t *size)
{
    mesh_fs_posix_t *fs = ctx;
    int fd = open_in(fs, name, O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0);
    if (fd < 0)
        return fail(fs, "open", name, errno);
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return fail(fs, "stat", name, e);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return fail(fs, "open", name, EINVAL);
    }
    *fh = fd;
    *size = (uint64_t)st.st_size;
    name_set(fs, fd, name);
    return 0;
}

static void p_close(void *ctx, int fh)
{
    mesh_fs_posix_t *fs = ctx;
    name_set(fs, fh, NULL);
    close(fh);
}

static int p_write(void *ctx, int fh, uint64_t off, const void *p, size_t n)
{
    mesh_fs_posix_t *fs = ctx;
    const char *b = p;
    while (n) {
        ssize_t w = pwrite(fh, b, n, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return fail(fs, "write", name_of(fs, fh), errno);
        }
        if (w == 0)
            return fail(fs, "write", name_of(fs, fh), ENOSPC);
        b += w;
        off += (uint64_t)w;
        n -= (size_t)w;
    }
    return 0;
}

static int64_t p_read(void *ctx, int fh, uint64_t off, void *p, size_t n)
{
    mesh_fs_posix_t *fs = ctx;
    char *b = p;
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fh, b + got, n - got, (off_t)(off + got));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return fail(fs, "read", name_of(fs, fh), errno);
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (int64_t)got;
}

static int p_truncate(void *ctx, int fh, uint64_t size)
{
    mesh_fs_posix_t *fs = ctx;
    while (ftruncate(fh, (off_t)size) < 0) {
        if (errno != EINTR)
            return fail(fs, "truncate", name_of(fs, fh), errno);
    }
    return 0;
}

static int p_unlink(void *ctx, const char *name)
{
    mesh_fs_posix_t *fs = ctx;
    if (unlinkat(fs->dirfd, name, 0) < 0)
        return fail(fs, "unlink", name, errno);
    return 0;
}

/* Off the loop: touches no shared state, reports only through its result. */
static int p_sync(void *ctx, int fh, int dir)
{
    mesh_fs_posix_t *fs = ctx;
    if (fh >= 0 && fdatasync(fh) < 0)
        return -errno;
    if (dir && fsync(fs->dirfd) < 0)
        return -errno;
    return 0;
}

static int p_rename(void *ctx, const char *from, const char *to)
{
    mesh_fs_posix_t *fs = ctx;
    if (renameat(fs->dirfd, from, fs->dirfd, to) < 0)
        return fail(fs, "rename", from, errno);
    return 0;
}

static int p_lock(void *ctx, const char *name, int *fh)
{
    mesh_fs_posix_t *fs = ctx;
    int fd = open_in(fs, name, O_RDWR | O_CREAT | O_CLOEXEC, fs->mode);
    if (fd < 0)
        return fail(fs, "lock", name, errno);
    while (flock(fd, LOCK_EX) < 0) {
        if (errno != EINTR) {
            int e = errno;
            close(fd);
            return fail(fs, "lock", name, e);
        }
    }
    *fh = fd;
    name_set(fs, fd, name);
    return 0;
}

static const char *p_error(void *ctx)
{
    mesh_fs_posix_t *fs = ctx;
    return fs->err[0] ? fs->err : "no error";
}

static const mesh_fs_ops_t posix_ops = {
    .list = p_list,
    .create = p_create,
    .open = p_open,
    .close = p_close,
    .write = p_write,
    .read = p_read,
    .truncate = p_truncate,
    .unlink = p_unlink,
    .sync = p_sync,
    .rename = p_rename,
    .lock = p_lock,
    .error = p_error,
};

mesh_fs_posix_t *mesh_fs_posix_open(const char *dir, char *err, size_t errlen)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        snprintf(err, errlen, "open folder %s: %s", dir, strerror(errno));
        return NULL;
    }
    mesh_fs_posix_t *fs = calloc(1, sizeof(*fs));
    if (!fs || !(fs->dir = strdup(dir))) {
        free(fs);
        close(dfd);
        snprintf(err, errlen, "open folder %s: out of memory", dir);
        return NULL;
    }
    fs->dirfd = dfd;
    fs->mode = 0600;
    return fs;
}

void mesh_fs_posix_close(mesh_fs_posix_t *fs)
{
    if (!fs)
        return;
    close(fs->dirfd);
    for (size_t i = 0; i < fs->nnames; i++)
        free(fs->names[i]);
    free(fs->names);
    free(fs->dir);
    free(fs);
}

void mesh_fs_posix_set_mode(mesh_fs_posix_t *fs, int mode)
{
    fs->mode = mode;
}

int mesh_fs_posix_dirfd(const mesh_fs_posix_t *fs)
{
    return fs->dirfd;
}

mesh_fs_t mesh_fs_posix_layer(mesh_fs_posix_t *fs)
{
    return (mesh_fs_t){.ops = &posix_ops, .ctx = fs};
}
