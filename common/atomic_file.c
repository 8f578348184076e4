/*
 * common/atomic_file.c: atomic file replacement (see common/atomic_file.h).
 */
#include "common/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* fsyncs the directory holding path (the rename's durability). */
static void sync_dir(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(copy);
}

int mesh_atomic_write(const char *path, const void *data, size_t len, mode_t mode, int flags,
                      char *err, size_t errlen)
{
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 16);
    if (!tmp) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    snprintf(tmp, pl + 16, "%s.tmp.XXXXXX", path);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot create a temporary file: %s", path, strerror(errno));
        free(tmp);
        return -1;
    }
    const char *p = data;
    size_t left = len;
    int rc = fchmod(fd, mode);
    while (rc == 0 && left) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = -1;
            break;
        }
        p += n;
        left -= (size_t)n;
    }
    if (rc == 0)
        rc = fsync(fd);
    int e = errno;
    if (close(fd) != 0 && rc == 0) {
        rc = -1;
        e = errno;
    }
    if (rc != 0) {
        snprintf(err, errlen, "%s: cannot write: %s", path, strerror(e));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    if (flags & MESH_ATOMIC_EXCL) {
        rc = link(tmp, path);
        e = errno;
        unlink(tmp);
    } else {
        rc = rename(tmp, path);
        e = errno;
        if (rc != 0)
            unlink(tmp);
    }
    free(tmp);
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", path,
                 e == EEXIST ? "already exists (not overwritten)" : strerror(e));
        return -1;
    }
    sync_dir(path);
    return 0;
}
