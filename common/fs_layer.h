/*
 * common/fs_layer.h: the file layer, a small table of file calls over one folder, the seam
 * between a sans-I/O core that keeps files and the disk.
 *
 * Two cores use it: the audit spool (audit/spool.h, whose audit_spool_fs_t is this type) and
 * the registry snapshot file (registry/snapshot_file.h). Two layers implement it: the real
 * folder (common/fs_posix.h, POSIX calls) and the simulated folder that loses unsynced writes
 * on a crash (simulations/sim_fs.h).
 */
#ifndef MESH_FS_LAYER_H
#define MESH_FS_LAYER_H

#include <stddef.h>
#include <stdint.h>

/** A file layer over one folder. Functions return 0 (or a byte count) on success and -errno
 *  on failure; error(ctx) then describes the failure (the path and the cause). Names are
 *  plain file names inside the folder. The calls run on one thread at a time; sync (and, for
 *  the snapshot, every call of a batch) may run on a pool thread, on handles that thread
 *  opened or that stay open meanwhile. */
typedef struct mesh_fs_ops {
    /** Calls fn once for every name in the folder. */
    int (*list)(void *ctx, void (*fn)(void *ud, const char *name), void *ud);
    /** Creates name, which must not exist, for reading and writing; sets *fh. */
    int (*create)(void *ctx, const char *name, int *fh);
    /** Opens the existing name for reading and writing; sets *fh and *size (its length). */
    int (*open)(void *ctx, const char *name, int *fh, uint64_t *size);
    /** Closes a handle. */
    void (*close)(void *ctx, int fh);
    /** Writes all n bytes at offset off, or fails (then a prefix may have been written). */
    int (*write)(void *ctx, int fh, uint64_t off, const void *p, size_t n);
    /** Reads up to n bytes at offset off: the count read (short only at the end of the file). */
    int64_t (*read)(void *ctx, int fh, uint64_t off, void *p, size_t n);
    /** Sets the length of the file. */
    int (*truncate)(void *ctx, int fh, uint64_t size);
    /** Removes name from the folder. */
    int (*unlink)(void *ctx, const char *name);
    /** Makes the file's content durable (fh < 0: no file), then the folder's entries too when
     *  dir is set (created, renamed and removed names). Blocks: run it off the loop. */
    int (*sync)(void *ctx, int fh, int dir);
    /** Renames from over to (atomically replacing to); durable once the folder is synced. */
    int (*rename)(void *ctx, const char *from, const char *to);
    /** Opens (creating) name and holds an exclusive lock on it until the handle is closed,
     *  waiting for another holder (another writer, another process) to close it first. */
    int (*lock)(void *ctx, const char *name, int *fh);
    /** The last failure, e.g. "open /var/spool/x/00000000000000000001.spool: Permission
     *  denied" (never NULL). */
    const char *(*error)(void *ctx);
} mesh_fs_ops_t;

/** A file layer and its context. */
typedef struct mesh_fs {
    const mesh_fs_ops_t *ops;
    void *ctx;
} mesh_fs_t;

#endif
