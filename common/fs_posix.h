/*
 * common/fs_posix.h: the file layer (common/fs_layer.h) over a real folder, with POSIX calls.
 *
 * open with O_CLOEXEC (by path, for ThreadSanitizer's sake), pwrite and pread (looping over short
 * transfers and EINTR), ftruncate, unlinkat, renameat, readdir, flock, fdatasync of a file and
 * fsync of the folder. Errors name the path and the cause ("open /var/spool/meshd/0...1.spool:
 * Permission denied"). The folder must exist; the audit spool's layer (audit/spool_fs_posix.h)
 * creates and locks its own.
 */
#ifndef MESH_FS_POSIX_H
#define MESH_FS_POSIX_H

#include <stddef.h>

#include "common/fs_layer.h"

typedef struct mesh_fs_posix mesh_fs_posix_t;

/** Opens the existing folder dir. NULL with "open folder X: strerror" in err. */
mesh_fs_posix_t *mesh_fs_posix_open(const char *dir, char *err, size_t errlen);

/** Closes the folder and frees the layer (its handles must be closed). */
void mesh_fs_posix_close(mesh_fs_posix_t *fs);

/** The mode of files it creates (default 0600). */
void mesh_fs_posix_set_mode(mesh_fs_posix_t *fs, int mode);

/** The folder's descriptor (valid until mesh_fs_posix_close). */
int mesh_fs_posix_dirfd(const mesh_fs_posix_t *fs);

/** The layer. */
mesh_fs_t mesh_fs_posix_layer(mesh_fs_posix_t *fs);

#endif
