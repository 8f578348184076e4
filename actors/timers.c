/*
 * actors/timers.c: a loop's timers: a pool of nodes and a binary min-heap of their indices.
 *
 * Ordered by (deadline, sequence number), so timers due at the same instant fire in the order
 * they were started on both executors. A node's id is (generation << 32 | index); the
 * generation changes when the node is freed, so a stale id (a fired one-shot, a cancelled
 * timer, a request whose reply came) is recognised. Request correlation ids are these ids.
 */
#include <stdlib.h>

#include "actors/runtime.h"

static int tless(const mesh_loop_t *l, uint32_t a, uint32_t b)
{
    const mesh_tnode_t *x = &l->tn[a], *y = &l->tn[b];
    return x->deadline < y->deadline || (x->deadline == y->deadline && x->seq < y->seq);
}

static void hset(mesh_loop_t *l, uint32_t pos, uint32_t ix)
{
    l->heap[pos] = ix;
    l->tn[ix].heap_pos = pos;
}

static void sift_up(mesh_loop_t *l, uint32_t pos)
{
    uint32_t ix = l->heap[pos];
    while (pos > 0) {
        uint32_t parent = (pos - 1) / 2;
        if (!tless(l, ix, l->heap[parent]))
            break;
        hset(l, pos, l->heap[parent]);
        pos = parent;
    }
    hset(l, pos, ix);
}

static void sift_down(mesh_loop_t *l, uint32_t pos)
{
    uint32_t ix = l->heap[pos];
    for (;;) {
        uint32_t c = 2 * pos + 1;
        if (c >= l->nheap)
            break;
        if (c + 1 < l->nheap && tless(l, l->heap[c + 1], l->heap[c]))
            c++;
        if (!tless(l, l->heap[c], ix))
            break;
        hset(l, pos, l->heap[c]);
        pos = c;
    }
    hset(l, pos, ix);
}

static void heap_remove(mesh_loop_t *l, uint32_t pos)
{
    uint32_t last = l->heap[--l->nheap];
    l->tn[l->heap[pos]].heap_pos = UINT32_MAX;
    if (pos == l->nheap)
        return;
    hset(l, pos, last);
    sift_down(l, pos);
    sift_up(l, l->tn[last].heap_pos);
}

static void heap_push(mesh_loop_t *l, uint32_t ix)
{
    l->heap[l->nheap] = ix;
    l->tn[ix].heap_pos = l->nheap;
    sift_up(l, l->nheap++);
}

uint64_t mesh_timer_add(mesh_loop_t *l, uint64_t deadline, int kind)
{
    uint32_t ix;
    if (l->tfree != UINT32_MAX) {
        ix = l->tfree;
        l->tfree = l->tn[ix].next_free;
    } else {
        if (l->ntn == l->ctn) {
            uint32_t nc = l->ctn ? l->ctn * 2 : 64;
            mesh_tnode_t *tn = realloc(l->tn, nc * sizeof(*tn));
            uint32_t *h = realloc(l->heap, nc * sizeof(*h));
            if (tn)
                l->tn = tn;
            if (h)
                l->heap = h;
            if (!tn || !h)
                return 0;
            l->ctn = nc;
        }
        ix = l->ntn++;
        l->tn[ix].gen = 1;
    }
    mesh_tnode_t *n = &l->tn[ix];
    n->deadline = deadline;
    n->seq = l->tseq++;
    n->period = 0;
    n->kind = (uint32_t)kind;
    n->type = 0;
    n->incarnation = 0;
    n->owner = 0;
    n->peer = 0;
    n->fn = NULL;
    n->arg = NULL;
    n->next_free = UINT32_MAX;
    heap_push(l, ix);
    return ((uint64_t)n->gen << 32) | ix;
}

mesh_tnode_t *mesh_timer_find(mesh_loop_t *l, uint64_t id)
{
    uint32_t ix = (uint32_t)id;
    if (ix >= l->ntn)
        return NULL;
    mesh_tnode_t *n = &l->tn[ix];
    if (n->gen != (uint32_t)(id >> 32) || n->kind == MESH_T_FREE)
        return NULL;
    return n;
}

int mesh_timer_add_call(mesh_loop_t *l, uint64_t deadline, void (*fn)(void *), void *arg)
{
    uint64_t id = mesh_timer_add(l, deadline, MESH_T_CALL);
    if (!id)
        return -MESH_ENOMEM;
    mesh_tnode_t *n = mesh_timer_find(l, id);
    n->fn = fn;
    n->arg = arg;
    return 0;
}

static void node_free(mesh_loop_t *l, mesh_tnode_t *n)
{
    n->kind = MESH_T_FREE;
    n->gen++;
    if (n->gen == 0)
        n->gen = 1;
    uint32_t ix = (uint32_t)(n - l->tn);
    n->next_free = l->tfree;
    l->tfree = ix;
}

void mesh_timer_remove(mesh_loop_t *l, mesh_tnode_t *n)
{
    if (n->heap_pos != UINT32_MAX)
        heap_remove(l, n->heap_pos);
    node_free(l, n);
}

void mesh_timer_detach(mesh_loop_t *l, mesh_tnode_t *n)
{
    if (n->heap_pos != UINT32_MAX)
        heap_remove(l, n->heap_pos);
}

void mesh_timer_requeue(mesh_loop_t *l, mesh_tnode_t *n, uint64_t deadline)
{
    if (n->heap_pos != UINT32_MAX)
        heap_remove(l, n->heap_pos);
    n->deadline = deadline;
    n->seq = l->tseq++;
    heap_push(l, (uint32_t)(n - l->tn));
}

mesh_tnode_t *mesh_timer_top(mesh_loop_t *l)
{
    return l->nheap ? &l->tn[l->heap[0]] : NULL;
}

uint64_t mesh_timer_next(const mesh_loop_t *l)
{
    return l->nheap ? l->tn[l->heap[0]].deadline : UINT64_MAX;
}

int mesh_timer_fire_one(mesh_loop_t *l, uint64_t now)
{
    if (!l->nheap)
        return 0;
    uint32_t ix = l->heap[0];
    mesh_tnode_t *n = &l->tn[ix];
    if (n->deadline > now)
        return 0;
    uint64_t id = ((uint64_t)n->gen << 32) | ix;
    if (n->kind == MESH_T_USER && n->period) {
        /* Periodic: re-queue first (from the planned deadline, so no drift), then fire. */
        n->deadline += n->period;
        if (n->deadline <= now)
            n->deadline = now + n->period;
        n->seq = l->tseq++;
        sift_down(l, 0);
        mesh_rt_timer_fired(l, n, id);
        return 1;
    }
    heap_remove(l, 0);
    if (n->kind == MESH_T_CALL) {
        void (*fn)(void *) = n->fn;
        void *arg = n->arg;
        node_free(l, n);
        fn(arg);
        return 1;
    }
    /* USER one-shot or REQUEST timeout: the node is freed by the dispatcher. */
    mesh_rt_timer_fired(l, n, id);
    return 1;
}

void mesh_timers_destroy(mesh_loop_t *l)
{
    free(l->tn);
    free(l->heap);
    l->tn = NULL;
    l->heap = NULL;
    l->ntn = l->ctn = l->nheap = 0;
}
