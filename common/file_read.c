/*
 * common/file_read.c: reading a whole file into memory (see common/file_read.h).
 *
 * A regular file is sized with fstat and read in one buffer; a file whose size the kernel
 * does not know (a pipe, /proc, one that grows while read) grows the buffer by doubling,
 * up to the limit.
 */
#include "common/file_read.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A limit as people write it: "16 MiB", "64 KiB", else "1000 bytes". */
static void fmt_limit(char *out, size_t cap, size_t max)
{
    if (max && max % (1u << 20) == 0)
        snprintf(out, cap, "%zu MiB", max >> 20);
    else if (max && max % (1u << 10) == 0)
        snprintf(out, cap, "%zu KiB", max >> 10);
    else
        snprintf(out, cap, "%zu bytes", max);
}

/* Fails with e: closes fd, lets go of buf (wiped when secret), says why in err. */
static char *fail(const char *path, size_t max, int fd, char *buf, size_t used, int flags, int e,
                  char *err, size_t errlen)
{
    if (fd >= 0)
        close(fd);
    if (buf && (flags & MESH_FILE_SECRET))
        explicit_bzero(buf, used);
    free(buf);
    if (err && errlen) {
        if (e == EFBIG) {
            char lim[32];
            fmt_limit(lim, sizeof(lim), max);
            snprintf(err, errlen, "%s: larger than %s", path, lim);
        } else if (e == ENOMEM) {
            snprintf(err, errlen, "%s: out of memory", path);
        } else {
            snprintf(err, errlen, "%s: %s", path, strerror(e));
        }
    }
    errno = e;
    return NULL;
}

/* A buffer of cap bytes holding the first used bytes of buf, or NULL (buf is then freed). */
static char *grow(char *buf, size_t used, size_t cap, int flags)
{
    if (!(flags & MESH_FILE_SECRET)) {
        char *nb = realloc(buf, cap);
        if (!nb)
            free(buf);
        return nb;
    }
    /* realloc may leave the old copy in freed memory: move it by hand and wipe it. */
    char *nb = malloc(cap);
    if (nb && used)
        memcpy(nb, buf, used);
    explicit_bzero(buf, used);
    free(buf);
    return nb;
}

char *mesh_file_read(const char *path, size_t max, int flags, size_t *len, char *err, size_t errlen)
{
    if (max > SIZE_MAX / 4) /* no buffer is this large: keeps max + 2 from wrapping */
        max = SIZE_MAX / 4;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(path, max, -1, NULL, 0, flags, errno, err, errlen);
    struct stat st;
    if (fstat(fd, &st) != 0)
        return fail(path, max, fd, NULL, 0, flags, errno, err, errlen);
    if (S_ISDIR(st.st_mode))
        return fail(path, max, fd, NULL, 0, flags, EISDIR, err, errlen);
    if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > (uint64_t)max)
        return fail(path, max, fd, NULL, 0, flags, EFBIG, err, errlen);
    /* Room for the whole file, one byte more to see its end in one read, and the NUL. */
    size_t cap = S_ISREG(st.st_mode) && st.st_size > 0 ? (size_t)st.st_size + 2 : 4096;
    if (cap > max + 2)
        cap = max + 2;
    char *buf = malloc(cap);
    if (!buf)
        return fail(path, max, fd, NULL, 0, flags, ENOMEM, err, errlen);
    size_t n = 0;
    for (;;) {
        if (n + 1 == cap) { /* full but for the NUL: the file is longer than it said */
            if (n > max)
                return fail(path, max, fd, buf, n, flags, EFBIG, err, errlen);
            size_t nc = cap - 1 > max / 2 ? max + 2 : cap * 2;
            if (!(buf = grow(buf, n, nc, flags)))
                return fail(path, max, fd, NULL, 0, flags, ENOMEM, err, errlen);
            cap = nc;
        }
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return fail(path, max, fd, buf, n, flags, errno, err, errlen);
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (n > max)
        return fail(path, max, -1, buf, n, flags, EFBIG, err, errlen);
    buf[n] = '\0';
    *len = n;
    return buf;
}
