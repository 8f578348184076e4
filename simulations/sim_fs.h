/*
 * simulations/sim_fs.h: an in-memory folder behind the file layer (common/fs_layer.h: the audit
 * spool's and the registry snapshot's), with a crash model that loses what was not synced.
 *
 * Each file keeps its live bytes (what reads see: the page cache) and its durable bytes (what a
 * sync last captured); the folder keeps its live names and its durable names (what the last
 * folder sync captured). A process crash closes every handle and loses nothing. A power loss
 * also throws away what was not synced, the way disks and file systems do, drawn from the
 * seeded PRNG: for each file whose live bytes extend its durable ones, all of the unsynced tail
 * is lost, or a random prefix of it survives, or that prefix is followed by zeros (blocks
 * allocated but never written), or all of it survives with a few bytes flipped, or all of it
 * survives intact; a file whose live bytes do not extend the durable ones (a truncation) comes
 * back in either state. Each name created, renamed or removed since the last folder sync
 * survives the crash or not, half and half (a removed segment may come back; a renamed file
 * may be found under its old name, or not at all).
 *
 * Faults on request: write errors (EIO after writing a random prefix), ENOSPC past a capacity
 * (after writing what fits), failing syncs (EIO; half of the time the file's unsynced bytes
 * also vanish from the cache, as pages dropped after a writeback error read back as zeros),
 * failing reads, creates, opens and unlinks; and the next N calls of one kind failing with a
 * given errno, for unit tests. Handles are never reused, so a use after close is caught
 * (counted in bad_handles, and the call fails with EBADF).
 */
#ifndef SIM_FS_H
#define SIM_FS_H

#include <stddef.h>
#include <stdint.h>

#include "actors/prng.h"
#include "audit/spool.h"

typedef struct sim_fs sim_fs_t;

/** Random faults (probabilities per call, 0 to 1) and the capacity (0: unlimited). */
typedef struct sim_fs_faults {
    double write_eio;
    double sync_eio;
    double read_eio;
    double create_eio;
    double unlink_eio;
    uint64_t capacity; /* live bytes of all files; a write past it fails with ENOSPC */
} sim_fs_faults_t;

/** The calls of the file layer, for sim_fs_fail_next. */
typedef enum {
    SIM_FS_LIST = 0,
    SIM_FS_CREATE,
    SIM_FS_OPEN,
    SIM_FS_WRITE,
    SIM_FS_READ,
    SIM_FS_TRUNCATE,
    SIM_FS_UNLINK,
    SIM_FS_SYNC,
    SIM_FS_NOPS,
} sim_fs_op_t;

/** Counters. */
typedef struct sim_fs_stats {
    uint64_t writes, bytes_written, syncs, dir_syncs, reads, creates, unlinks;
    uint64_t faults;      /* calls failed on purpose */
    uint64_t bad_handles; /* calls with a closed or unknown handle (a bug of the caller) */
    uint64_t open_handles;
    uint64_t crashes;
    uint64_t lost_bytes; /* unsynced bytes thrown away by power losses */
    uint64_t torn;       /* files that kept a prefix, zeros or flipped bytes of their tail */
} sim_fs_stats_t;

/** A new empty folder; randomness comes from prng (the caller's, seeded). */
sim_fs_t *sim_fs_new(mesh_prng_t *prng);

/** Frees the folder. */
void sim_fs_delete(sim_fs_t *fs);

/** The file layer over this folder. */
audit_spool_fs_t sim_fs_layer(sim_fs_t *fs);

/** Sets the random faults (NULL: none). */
void sim_fs_set_faults(sim_fs_t *fs, const sim_fs_faults_t *f);

/** The next count calls of op fail with -err (after writing a prefix, for a write). */
void sim_fs_fail_next(sim_fs_t *fs, sim_fs_op_t op, int err, int count);

/** A crash: every handle is closed; with power_loss, unsynced bytes and names go too (above). */
void sim_fs_crash(sim_fs_t *fs, int power_loss);

/** Puts a file with these bytes, durable (name and content), replacing any file of that name. */
int sim_fs_put(sim_fs_t *fs, const char *name, const void *data, size_t len);

/** The live bytes of name (NULL when there is no such file); *len is their count. */
const uint8_t *sim_fs_get(const sim_fs_t *fs, const char *name, size_t *len);

/** Flips bit 0 of byte off of name's live and durable bytes; 0 or -1 (no such file/byte). */
int sim_fs_flip(sim_fs_t *fs, const char *name, size_t off);

/** Cuts name's live and durable bytes to len; 0 or -1. */
int sim_fs_cut(sim_fs_t *fs, const char *name, size_t len);

/** Number of live names ending in suffix (NULL: all), and their total live bytes. */
size_t sim_fs_count(const sim_fs_t *fs, const char *suffix, uint64_t *bytes);

/** The i-th live name (in creation order), or NULL. */
const char *sim_fs_name(const sim_fs_t *fs, size_t i);

/** The counters. */
const sim_fs_stats_t *sim_fs_stats(const sim_fs_t *fs);

#endif
