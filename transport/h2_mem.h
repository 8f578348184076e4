/*
 * transport/h2_mem.h: a single-thread, size-class free-list allocator handed to nghttp2
 * (nghttp2_session_*_new3), so the per-call allocations nghttp2 makes (stream objects,
 * outbound frame items, copied header arrays, header buffers) are recycled within the worker
 * instead of going through malloc and free every call.
 *
 * Blocks up to MESH_H2_MEM_MAX_CLASS bytes come from power-of-two classes with a 16-byte
 * header naming the class; freed blocks go to their class's free list, which keeps at most
 * MESH_H2_MEM_CACHE_BYTES per class (beyond that they are returned to malloc). Larger blocks
 * go to malloc directly. Every session using it must be deleted before mesh_h2_mem_destroy.
 */
#ifndef MESH_H2_MEM_H
#define MESH_H2_MEM_H

#include <nghttp2/nghttp2.h>
#include <stddef.h>

#define MESH_H2_MEM_N_CLASSES   8 /* 32, 64, ..., 4096 bytes */
#define MESH_H2_MEM_MAX_CLASS   4096
#define MESH_H2_MEM_CACHE_BYTES (512u * 1024)

typedef struct mesh_h2_mem {
    nghttp2_mem mem; /* pass &m->mem to nghttp2 */
    void *free[MESH_H2_MEM_N_CLASSES];
    size_t n_free[MESH_H2_MEM_N_CLASSES];
} mesh_h2_mem_t;

void mesh_h2_mem_init(mesh_h2_mem_t *m);

/** Returns the cached blocks to malloc. */
void mesh_h2_mem_destroy(mesh_h2_mem_t *m);

#endif
