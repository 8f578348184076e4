/*
 * common/atomic_file.h: replacing a file so that readers see the old content or the new one,
 * never a part: write a temporary file beside it, fsync, rename over (or link, when the file
 * must not exist yet), fsync the directory. Used for certificates and keys (the mesh CA, the
 * node's identity files) that TLS reloads pick up by watching the files.
 */
#ifndef MESH_ATOMIC_FILE_H
#define MESH_ATOMIC_FILE_H

#include <stddef.h>
#include <sys/types.h>

/** Fails when the file already exists (nothing is written). */
#define MESH_ATOMIC_EXCL 1

/**
 * Writes data[0..len) to path with the permission bits mode (the temporary file is created
 * with them, so a key is never readable by others, not even for a moment). flags: 0 or
 * MESH_ATOMIC_EXCL. 0, or -1 with "path: reason" in err.
 */
int mesh_atomic_write(const char *path, const void *data, size_t len, mode_t mode, int flags,
                      char *err, size_t errlen);

#endif
