/*
 * audit/spool_fs_posix.c: the audit spool's file layer over a real folder (see
 * spool_fs_posix.h): the folder is created and locked here; the file calls are
 * common/fs_posix.c's.
 */
#include "audit/spool_fs_posix.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs_posix.h"

struct audit_spool_posix {
    mesh_fs_posix_t *fs;
    int lockfd;
};

audit_spool_posix_t *audit_spool_posix_new(const char *dir, char *err, size_t errlen)
{
    if (!dir || !*dir) {
        snprintf(err, errlen, "audit spool: no folder given");
        return NULL;
    }
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "audit spool: create folder %s: %s", dir, strerror(errno));
        return NULL;
    }
    char e2[400];
    mesh_fs_posix_t *fs = mesh_fs_posix_open(dir, e2, sizeof(e2));
    if (!fs) {
        snprintf(err, errlen, "audit spool: %s", e2);
        return NULL;
    }
    char lpath[4096];
    snprintf(lpath, sizeof(lpath), "%s/%s", dir, AUDIT_SPOOL_LOCK_NAME);
    int lfd =
        open(lpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600); /* open, not openat: see fs_posix.c */
    if (lfd < 0) {
        snprintf(err, errlen, "audit spool: create %s/%s: %s", dir, AUDIT_SPOOL_LOCK_NAME,
                 strerror(errno));
        mesh_fs_posix_close(fs);
        return NULL;
    }
    if (flock(lfd, LOCK_EX | LOCK_NB) < 0) {
        if (errno == EWOULDBLOCK)
            snprintf(err, errlen, "audit spool: %s is in use by another process (%s held)", dir,
                     AUDIT_SPOOL_LOCK_NAME);
        else
            snprintf(err, errlen, "audit spool: lock %s/%s: %s", dir, AUDIT_SPOOL_LOCK_NAME,
                     strerror(errno));
        close(lfd);
        mesh_fs_posix_close(fs);
        return NULL;
    }
    audit_spool_posix_t *a = calloc(1, sizeof(*a));
    if (!a) {
        close(lfd);
        mesh_fs_posix_close(fs);
        snprintf(err, errlen, "audit spool: out of memory");
        return NULL;
    }
    a->fs = fs;
    a->lockfd = lfd;
    return a;
}

void audit_spool_posix_delete(audit_spool_posix_t *a)
{
    if (!a)
        return;
    close(a->lockfd); /* releases the flock */
    mesh_fs_posix_close(a->fs);
    free(a);
}

audit_spool_fs_t audit_spool_posix_fs(audit_spool_posix_t *a)
{
    return mesh_fs_posix_layer(a->fs);
}
