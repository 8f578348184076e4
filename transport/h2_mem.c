/*
 * transport/h2_mem.c: the per-worker size-class allocator for nghttp2 sessions.
 */
#include "transport/h2_mem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Header in front of every block: its class, or LARGE for a plain malloc block. Sixteen
 * bytes keep the block as aligned as malloc's (16 on the 64-bit targets we build for). */
#define HDR   16
#define LARGE 0xffu

typedef struct blk_hdr {
    unsigned cls;
} blk_hdr_t;

/* The smallest class holding size bytes (size <= MESH_H2_MEM_MAX_CLASS). */
static unsigned class_of(size_t size)
{
    if (size <= 32)
        return 0;
    /* ceil(log2(size)) - 5 */
    return (unsigned)(64 - __builtin_clzll((unsigned long long)(size - 1))) - 5;
}

static size_t class_size(unsigned c)
{
    return (size_t)32 << c;
}

/* Free blocks a class keeps for reuse: MESH_H2_MEM_CACHE_BYTES of each class (a table: the
 * product was most of what a free cost). */
#define KEEP_OF(c) (MESH_H2_MEM_CACHE_BYTES / (32u << (c)))
static const size_t KEEP[MESH_H2_MEM_N_CLASSES] = {KEEP_OF(0), KEEP_OF(1), KEEP_OF(2), KEEP_OF(3),
                                                   KEEP_OF(4), KEEP_OF(5), KEEP_OF(6), KEEP_OF(7)};
_Static_assert(MESH_H2_MEM_N_CLASSES == 8, "KEEP lists every class");

static void *mem_malloc(size_t size, void *ud)
{
    mesh_h2_mem_t *m = ud;
    if (size > MESH_H2_MEM_MAX_CLASS) {
        uint8_t *p = malloc(HDR + size);
        if (!p)
            return NULL;
        ((blk_hdr_t *)(void *)p)->cls = LARGE;
        return p + HDR;
    }
    unsigned c = class_of(size);
    uint8_t *p = m->free[c];
    if (p) {
        memcpy(&m->free[c], p + HDR, sizeof(void *));
        m->n_free[c]--;
        return p + HDR;
    }
    p = malloc(HDR + class_size(c));
    if (!p)
        return NULL;
    ((blk_hdr_t *)(void *)p)->cls = c;
    return p + HDR;
}

static void mem_free(void *ptr, void *ud)
{
    mesh_h2_mem_t *m = ud;
    if (!ptr)
        return;
    uint8_t *p = (uint8_t *)ptr - HDR;
    unsigned c = ((blk_hdr_t *)(void *)p)->cls;
    if (c == LARGE || m->n_free[c] >= KEEP[c]) {
        free(p);
        return;
    }
    memcpy(p + HDR, &m->free[c], sizeof(void *));
    m->free[c] = p;
    m->n_free[c]++;
}

static void *mem_calloc(size_t nmemb, size_t size, void *ud)
{
    if (size && nmemb > SIZE_MAX / size)
        return NULL;
    void *p = mem_malloc(nmemb * size, ud);
    if (p)
        memset(p, 0, nmemb * size);
    return p;
}

static void *mem_realloc(void *ptr, size_t size, void *ud)
{
    if (!ptr)
        return mem_malloc(size, ud);
    if (size == 0) {
        mem_free(ptr, ud);
        return NULL;
    }
    uint8_t *p = (uint8_t *)ptr - HDR;
    unsigned c = ((blk_hdr_t *)(void *)p)->cls;
    if (c == LARGE) {
        if (size > MESH_H2_MEM_MAX_CLASS) {
            uint8_t *np = realloc(p, HDR + size);
            return np ? np + HDR : NULL;
        }
    } else if (size <= class_size(c)) {
        return ptr;
    }
    void *n = mem_malloc(size, ud);
    if (!n)
        return NULL;
    /* A LARGE block that shrinks below the classes: only size bytes are still wanted. */
    size_t keep = c == LARGE ? size : class_size(c);
    memcpy(n, ptr, keep < size ? keep : size);
    mem_free(ptr, ud);
    return n;
}

void mesh_h2_mem_init(mesh_h2_mem_t *m)
{
    memset(m, 0, sizeof(*m));
    m->mem.mem_user_data = m;
    m->mem.malloc = mem_malloc;
    m->mem.free = mem_free;
    m->mem.calloc = mem_calloc;
    m->mem.realloc = mem_realloc;
}

void mesh_h2_mem_destroy(mesh_h2_mem_t *m)
{
    for (unsigned c = 0; c < MESH_H2_MEM_N_CLASSES; c++) {
        while (m->free[c]) {
            uint8_t *p = m->free[c];
            memcpy(&m->free[c], p + HDR, sizeof(void *));
            free(p);
        }
        m->n_free[c] = 0;
    }
}
