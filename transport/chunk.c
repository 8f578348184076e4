/*
 * transport/chunk.c: the chunk pool and the chunk queue.
 */
#include "transport/chunk.h"

#include <stdlib.h>
#include <string.h>

void mesh_chunk_pool_init(mesh_chunk_pool_t *p, size_t max_free)
{
    memset(p, 0, sizeof(*p));
    p->max_free = max_free;
}

void mesh_chunk_pool_destroy(mesh_chunk_pool_t *p)
{
    while (p->free) {
        mesh_chunk_t *c = p->free;
        p->free = c->next;
        free(c);
    }
    p->n_free = 0;
    while (p->free_small) {
        mesh_chunk_t *c = p->free_small;
        p->free_small = c->next;
        free(c);
    }
    p->n_free_small = 0;
}

mesh_chunk_t *mesh_chunk_get_for(mesh_chunk_pool_t *p, size_t want)
{
    int small = want <= MESH_CHUNK_SMALL;
    mesh_chunk_t **list = small ? &p->free_small : &p->free;
    mesh_chunk_t *c = *list;
    if (c) {
        *list = c->next;
        if (small)
            p->n_free_small--;
        else
            p->n_free--;
    } else {
        uint32_t cap = small ? MESH_CHUNK_SMALL : MESH_CHUNK_SIZE;
        c = malloc(sizeof(*c) + cap);
        if (!c)
            return NULL;
        c->cap = cap;
    }
    c->next = NULL;
    c->pool = p;
    c->refs = 1;
    c->len = 0;
    p->n_live++;
    return c;
}

mesh_chunk_t *mesh_chunk_get(mesh_chunk_pool_t *p)
{
    return mesh_chunk_get_for(p, MESH_CHUNK_SIZE);
}

void mesh_chunk_ref(mesh_chunk_t *c)
{
    c->refs++;
}

void mesh_chunk_unref(mesh_chunk_t *c)
{
    if (--c->refs)
        return;
    mesh_chunk_pool_t *p = c->pool;
    p->n_live--;
    if (c->cap == MESH_CHUNK_SMALL && p->n_free_small < p->max_free) {
        c->next = p->free_small;
        p->free_small = c;
        p->n_free_small++;
    } else if (c->cap == MESH_CHUNK_SIZE && p->n_free < p->max_free) {
        c->next = p->free;
        p->free = c;
        p->n_free++;
    } else {
        free(c);
    }
}

void mesh_chunkq_init(mesh_chunkq_t *q, mesh_chunk_pool_t *pool, mesh_chunkq_drop_cb on_drop,
                      void *drop_arg)
{
    memset(q, 0, sizeof(*q));
    q->pool = pool;
    q->on_drop = on_drop;
    q->drop_arg = drop_arg;
}

/* Drops the bytes before the cursor; returns how many. */
static size_t drop_sent(mesh_chunkq_t *q)
{
    size_t dropped = q->buffered - q->unsent;
    while (q->head && q->head != q->cur) {
        mesh_chunk_t *c = q->head;
        q->head = c->next;
        if (c == q->tail)
            q->tail = NULL;
        mesh_chunk_unref(c);
    }
    q->head_off = q->cur_off;
    q->buffered = q->unsent;
    /* A fully sent chunk that is also full can go too. */
    if (q->head && q->head_off == q->head->cap) {
        mesh_chunk_t *c = q->head;
        q->head = q->cur = c->next;
        if (c == q->tail)
            q->tail = NULL;
        q->head_off = q->cur_off = 0;
        mesh_chunk_unref(c);
    }
    if (dropped && q->on_drop)
        q->on_drop(q->drop_arg, dropped);
    return dropped;
}

void mesh_chunkq_destroy(mesh_chunkq_t *q)
{
    mesh_chunkq_discard(q);
}

int mesh_chunkq_append(mesh_chunkq_t *q, const uint8_t *data, size_t len)
{
    while (len > 0) {
        mesh_chunk_t *t = q->tail;
        if (!t || t->len == t->cap) {
            /* The first chunk of a queue is small when the bytes fit in one. */
            mesh_chunk_t *c = t ? mesh_chunk_get(q->pool) : mesh_chunk_get_for(q->pool, len);
            if (!c)
                return -1;
            if (t)
                t->next = c;
            else
                q->head = c;
            q->tail = t = c;
            if (!q->cur || (q->cur_off == q->cur->cap)) {
                /* The cursor sat at the end of a full chunk: move it to the new one. */
                if (!q->cur)
                    q->head_off = 0;
                q->cur = c;
                q->cur_off = 0;
            }
        }
        size_t n = t->cap - t->len;
        if (n > len)
            n = len;
        memcpy(t->data + t->len, data, n);
        t->len += (uint32_t)n;
        data += n;
        len -= n;
        q->buffered += n;
        q->unsent += n;
    }
    return 0;
}

size_t mesh_chunkq_peek(const mesh_chunkq_t *q, mesh_chunk_t **chunk, const uint8_t **data)
{
    if (!q->cur || q->unsent == 0)
        return 0;
    *chunk = q->cur;
    *data = q->cur->data + q->cur_off;
    return q->cur->len - q->cur_off;
}

void mesh_chunkq_advance(mesh_chunkq_t *q, size_t n)
{
    q->cur_off += (uint32_t)n;
    q->unsent -= n;
    if (q->cur_off == q->cur->cap && q->cur->next) {
        q->cur = q->cur->next;
        q->cur_off = 0;
    }
    if (!q->retain)
        drop_sent(q);
}

void mesh_chunkq_commit(mesh_chunkq_t *q)
{
    q->retain = 0;
    drop_sent(q);
}

void mesh_chunkq_rewind(mesh_chunkq_t *q)
{
    q->cur = q->head;
    q->cur_off = q->head_off;
    q->unsent = q->buffered;
    if (q->cur && q->cur_off == q->cur->cap && q->cur->next) {
        q->cur = q->cur->next;
        q->cur_off = 0;
    }
}

void mesh_chunkq_discard(mesh_chunkq_t *q)
{
    size_t dropped = q->buffered;
    while (q->head) {
        mesh_chunk_t *c = q->head;
        q->head = c->next;
        mesh_chunk_unref(c);
    }
    q->tail = q->cur = NULL;
    q->head_off = q->cur_off = 0;
    q->buffered = q->unsent = 0;
    if (dropped && q->on_drop)
        q->on_drop(q->drop_arg, dropped);
}
