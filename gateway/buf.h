/*
 * gateway/buf.h: the growable byte buffer the transcoder writes into. The caller owns it and
 * reuses it across calls, so once it is big enough no call allocates.
 */
#ifndef GW_BUF_H
#define GW_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/** A growable buffer; zero-initialize it, free it with gw_buf_free(). */
typedef struct {
    uint8_t *data;
    size_t len;
    size_t cap;
} gw_buf_t;

/** Makes room for n more bytes; false when out of memory. */
static inline bool gw_buf_reserve(gw_buf_t *b, size_t n)
{
    if (b->cap - b->len >= n)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n) {
        if (cap > SIZE_MAX / 2)
            return false;
        cap *= 2;
    }
    uint8_t *p = realloc(b->data, cap);
    if (!p)
        return false;
    b->data = p;
    b->cap = cap;
    return true;
}

/** Appends n bytes; false when out of memory. */
static inline bool gw_buf_put(gw_buf_t *b, const void *p, size_t n)
{
    if (!gw_buf_reserve(b, n))
        return false;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return true;
}

/** Releases the buffer's memory. */
static inline void gw_buf_free(gw_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

#endif
