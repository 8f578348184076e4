/*
 * actors/evring.c: the single-producer single-consumer event ring (see actors/evring.h).
 *
 * head and tail only grow; slot i lives at i & mask. The producer publishes a slot with a
 * release store of tail, the consumer frees slots with a release store of head. The poke flag
 * is cleared by the consumer after it drained, and the producer re-checks emptiness when it
 * decides whether to poke, so an event pushed while the consumer was draining is never
 * stranded without a poke.
 */
#include "actors/evring.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

_Static_assert(sizeof(mesh_event_t) == 384, "an event is six cache lines");

int mesh_evring_init(mesh_evring_t *r, uint32_t cap)
{
    uint32_t n = 8;
    while (n < cap && n < (1u << 24))
        n <<= 1;
    memset(r, 0, sizeof(*r));
    /* mmap: zeroed pages become resident only as the ring first goes round (calloc zeroes). */
    r->slots = mmap(NULL, n * sizeof(*r->slots), PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (r->slots == MAP_FAILED) {
        r->slots = NULL;
        return -1;
    }
    r->mask = n - 1;
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    atomic_init(&r->dropped, 0);
    atomic_init(&r->poked, 0);
    return 0;
}

void mesh_evring_destroy(mesh_evring_t *r)
{
    if (r->slots)
        munmap(r->slots, ((size_t)r->mask + 1) * sizeof(*r->slots));
    r->slots = NULL;
}

int mesh_evring_push(mesh_evring_t *r, const mesh_event_t *e)
{
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    if (tail - head > r->mask) {
        atomic_fetch_add_explicit(&r->dropped, 1, memory_order_relaxed);
        return -1;
    }
    r->slots[tail & r->mask] = *e;
    atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
    return 0;
}

int mesh_evring_want_poke(mesh_evring_t *r)
{
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    int dropped = atomic_load_explicit(&r->dropped, memory_order_relaxed) != 0;
    if (tail == head && !dropped)
        return 0;
    int expected = 0;
    return atomic_compare_exchange_strong_explicit(&r->poked, &expected, 1, memory_order_acq_rel,
                                                   memory_order_relaxed);
}

size_t mesh_evring_take(mesh_evring_t *r, mesh_event_t *out, size_t max)
{
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    size_t n = 0;
    while (head != tail && n < max)
        out[n++] = r->slots[head++ & r->mask];
    atomic_store_explicit(&r->head, head, memory_order_release);
    return n;
}

void mesh_evring_done(mesh_evring_t *r)
{
    atomic_store_explicit(&r->poked, 0, memory_order_release);
}

uint64_t mesh_evring_take_dropped(mesh_evring_t *r)
{
    return atomic_exchange_explicit(&r->dropped, 0, memory_order_relaxed);
}

static _Thread_local mesh_evring_t *current;

void mesh_evring_set_current(mesh_evring_t *r)
{
    current = r;
}

int mesh_evring_push_current(const mesh_event_t *e)
{
    if (!current)
        return -1;
    mesh_evring_push(current, e);
    return 0; /* a full ring counts the drop; the consumer reports it */
}

int mesh_evring_emit(uint32_t type, uint64_t a, uint64_t b, const char *fmt, ...)
{
    if (!current)
        return -1;
    mesh_event_t e = {.type = type, .a = a, .b = b};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.text, sizeof(e.text), fmt, ap);
    va_end(ap);
    mesh_evring_push(current, &e);
    return 0; /* a full ring counts the drop; the consumer reports it */
}
