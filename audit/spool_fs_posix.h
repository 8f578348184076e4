/*
 * audit/spool_fs_posix.h: the audit spool's file layer over a real folder (POSIX calls).
 *
 * open/openat with O_CLOEXEC, pwrite and pread (looping over short transfers and EINTR),
 * ftruncate, unlinkat, readdir, fsync of a file and of the folder. The folder is created
 * (mode 0700) when missing, and locked with flock on its file LOCK so two processes never
 * write one spool. Errors name the path and the cause ("open /var/spool/meshd/0...1.spool:
 * Permission denied"). sync is the only call safe off the spool's thread.
 */
#ifndef AUDIT_SPOOL_FS_POSIX_H
#define AUDIT_SPOOL_FS_POSIX_H

#include <stddef.h>

#include "audit/spool.h"

/** The lock file's name in the folder. */
#define AUDIT_SPOOL_LOCK_NAME "LOCK"

typedef struct audit_spool_posix audit_spool_posix_t;

/**
 * Opens (creating it when missing) the spool folder dir and locks it. Returns NULL with a
 * message in err ("audit spool: /x: Permission denied", "audit spool: /x is in use by another
 * process (LOCK held)").
 */
audit_spool_posix_t *audit_spool_posix_new(const char *dir, char *err, size_t errlen);

/** Releases the lock and frees the layer (after audit_spool_close). */
void audit_spool_posix_delete(audit_spool_posix_t *fs);

/** The layer as the spool takes it. */
audit_spool_fs_t audit_spool_posix_fs(audit_spool_posix_t *fs);

#endif
