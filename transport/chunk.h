/*
 * transport/chunk.h: pooled, reference-counted byte chunks and the per-stream chunk queue.
 *
 * DATA payloads are copied once from the socket read buffer into a stream's chunk queue; the
 * outgoing side lends slices of those chunks to the write batch (a uv_write of several
 * uv_buf_t), holding a reference until the write completes. Chunks come from a per-worker
 * pool, so the steady state allocates nothing per frame. A queue can retain bytes it already
 * sent (for a retry on another upstream) until commit().
 */
#ifndef MESH_CHUNK_H
#define MESH_CHUNK_H

#include <stddef.h>
#include <stdint.h>

/** Payload bytes per chunk. */
#define MESH_CHUNK_SIZE 16384
/** Payload bytes of a small chunk: a queue's first chunk when its first bytes fit (most gRPC
 * messages are small, and a small chunk keeps a call's buffers on fewer cache lines and
 * pages). The bytes after it go to full-size chunks. */
#define MESH_CHUNK_SMALL 480

/** One pooled buffer (data holds cap bytes: MESH_CHUNK_SIZE or MESH_CHUNK_SMALL). */
typedef struct mesh_chunk {
    struct mesh_chunk *next; /* in a queue or in the pool's free list */
    struct mesh_chunk_pool *pool;
    uint32_t refs;
    uint32_t len; /* bytes written into data */
    uint32_t cap;
    uint8_t data[];
} mesh_chunk_t;

/** A per-worker (single-thread) pool of chunks (full-size and small, each its own list). */
typedef struct mesh_chunk_pool {
    mesh_chunk_t *free;
    size_t n_free;
    size_t max_free; /* chunks beyond this (per size) are returned to malloc */
    size_t n_live;   /* chunks handed out and not yet returned */
    mesh_chunk_t *free_small;
    size_t n_free_small;
} mesh_chunk_pool_t;

/** Starts a pool that keeps at most max_free idle chunks. */
void mesh_chunk_pool_init(mesh_chunk_pool_t *p, size_t max_free);

/** Frees the idle chunks (live ones are freed when their last reference goes). */
void mesh_chunk_pool_destroy(mesh_chunk_pool_t *p);

/** A full-size chunk with one reference, len 0; NULL on out of memory. */
mesh_chunk_t *mesh_chunk_get(mesh_chunk_pool_t *p);

/** A chunk of at least want bytes when want <= MESH_CHUNK_SMALL (small), else full-size. */
mesh_chunk_t *mesh_chunk_get_for(mesh_chunk_pool_t *p, size_t want);

/** Takes a reference. */
void mesh_chunk_ref(mesh_chunk_t *c);

/** Drops a reference; the last one returns the chunk to its pool. */
void mesh_chunk_unref(mesh_chunk_t *c);

/** Called with the number of bytes a queue dropped (sent and committed, or discarded). */
typedef void (*mesh_chunkq_drop_cb)(void *arg, size_t n);

/**
 * A FIFO of bytes in chunks with a send cursor. Bytes before the cursor were sent; they are
 * dropped at once unless the queue retains them, in which case commit() drops them and
 * rewind() sends them again.
 */
typedef struct mesh_chunkq {
    mesh_chunk_pool_t *pool;
    mesh_chunk_t *head; /* oldest chunk; bytes before head_off are gone */
    mesh_chunk_t *tail;
    uint32_t head_off;
    mesh_chunk_t *cur; /* send cursor */
    uint32_t cur_off;
    size_t buffered; /* bytes in the queue, sent-and-retained included */
    size_t unsent;   /* bytes at or after the cursor */
    int retain;      /* keep sent bytes until commit() */
    int eof;         /* no more bytes will be appended */
    mesh_chunkq_drop_cb on_drop;
    void *drop_arg;
} mesh_chunkq_t;

/** Starts an empty queue. */
void mesh_chunkq_init(mesh_chunkq_t *q, mesh_chunk_pool_t *pool, mesh_chunkq_drop_cb on_drop,
                      void *drop_arg);

/** Drops everything (reported through on_drop) and releases the chunks. */
void mesh_chunkq_destroy(mesh_chunkq_t *q);

/** Copies len bytes to the end of the queue. Returns 0 or -1 on out of memory. */
int mesh_chunkq_append(mesh_chunkq_t *q, const uint8_t *data, size_t len);

/** The contiguous unsent bytes at the cursor (up to the end of the cursor's chunk). */
size_t mesh_chunkq_peek(const mesh_chunkq_t *q, mesh_chunk_t **chunk, const uint8_t **data);

/** Moves the cursor over n sent bytes (n <= what peek returned). */
void mesh_chunkq_advance(mesh_chunkq_t *q, size_t n);

/** Drops the retained bytes and stops retaining. */
void mesh_chunkq_commit(mesh_chunkq_t *q);

/** Moves the cursor back to the oldest retained byte (to send everything again). */
void mesh_chunkq_rewind(mesh_chunkq_t *q);

/** Drops all bytes, sent or not (a stream that ended early). */
void mesh_chunkq_discard(mesh_chunkq_t *q);

#endif
