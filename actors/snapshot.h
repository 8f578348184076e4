/*
 * actors/snapshot.h: reference-counted immutable snapshots.
 *
 * Control publishes routing tables, policies and certificates to the worker loops by pointer:
 * a snapshot is built once, never changed, and freed by its release callback when the last
 * reference goes. Embed mesh_snapshot_t as the first member ("super") of the published struct.
 * A worker keeps its current snapshot in a mesh_snapshot_holder_t touched only by its thread.
 */
#ifndef MESH_SNAPSHOT_H
#define MESH_SNAPSHOT_H

#include <stdatomic.h>
#include <stdint.h>

typedef struct mesh_exec mesh_exec_t;

/** The header of a snapshot. */
typedef struct mesh_snapshot {
    _Atomic uint32_t refs;
    void (*release)(struct mesh_snapshot *s); /* frees the whole snapshot */
    uint64_t version;                         /* set by the publisher, for logs and checks */
} mesh_snapshot_t;

/** Initializes with one reference (the creator's). */
void mesh_snapshot_init(mesh_snapshot_t *s, uint64_t version, void (*release)(mesh_snapshot_t *s));
/** Takes a reference; returns s. */
mesh_snapshot_t *mesh_snapshot_ref(mesh_snapshot_t *s);
/** Drops a reference; the last one runs release. NULL is ignored. */
void mesh_snapshot_unref(mesh_snapshot_t *s);

/** A loop-local "current snapshot" slot. */
typedef struct mesh_snapshot_holder {
    mesh_snapshot_t *cur;
} mesh_snapshot_holder_t;

/** Installs s (taking over one reference) and drops the previous one. */
void mesh_snapshot_holder_swap(mesh_snapshot_holder_t *h, mesh_snapshot_t *s);

/** Called on each target loop with one reference the callee takes over. */
typedef void (*mesh_snapshot_apply_fn)(int loop, mesh_snapshot_t *s, void *arg);

/** Publishes s to loops first..last (inclusive): takes one reference per loop and posts
 *  apply(loop, s, arg) to each. The caller keeps its own reference. Returns 0 or -1. */
int mesh_snapshot_publish(mesh_exec_t *exec, mesh_snapshot_t *s, int first, int last,
                          mesh_snapshot_apply_fn apply, void *arg);

#endif
