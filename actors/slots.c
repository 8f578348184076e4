/*
 * actors/slots.c: actor addresses.
 *
 * Each loop has a table of slots in fixed-size chunks that are never moved or freed while the
 * executor lives, so a sender on any thread can look a slot up without a lock. A slot's
 * generation is odd while an actor holds it and is bumped on release, so a stale address
 * never reaches a newer actor. Allocation and release take the loop's slot_lock (spawn and
 * stop are not hot paths).
 */
#include <sys/mman.h>

#include "actors/runtime.h"

mesh_actor_id_t mesh_slot_alloc(mesh_loop_t *l, mesh_actor_t *a, uint32_t capacity)
{
    pthread_mutex_lock(&l->slot_lock);
    uint32_t ix;
    mesh_slot_t *s;
    if (l->free_slot != UINT32_MAX) {
        ix = l->free_slot;
        s = mesh_slot_get(l, ix);
        l->free_slot = s->next_free;
    } else {
        ix = l->nslots;
        uint32_t chunk = ix >> MESH_SLOT_CHUNK_BITS;
        if (chunk >= MESH_SLOT_CHUNKS) {
            pthread_mutex_unlock(&l->slot_lock);
            return 0;
        }
        if (!atomic_load_explicit(&l->chunks[chunk], memory_order_relaxed)) {
            /* mmap: zeroed pages become resident only as slots are used (calloc zeroes). */
            mesh_slot_t *c = mmap(NULL, MESH_SLOT_CHUNK * sizeof(*c), PROT_READ | PROT_WRITE,
                                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (c == MAP_FAILED) {
                pthread_mutex_unlock(&l->slot_lock);
                return 0;
            }
            atomic_store_explicit(&l->chunks[chunk], c, memory_order_release);
        }
        l->nslots++;
        s = mesh_slot_get(l, ix);
    }
    uint32_t gen = atomic_load_explicit(&s->gen, memory_order_relaxed) + 1;
    s->actor = a;
    s->next_free = UINT32_MAX;
    atomic_store_explicit(&s->capacity, capacity, memory_order_relaxed);
    atomic_store_explicit(&s->state, MESH_SLOT_LIVE, memory_order_relaxed);
    atomic_store_explicit(&s->gen, gen, memory_order_release);
    pthread_mutex_unlock(&l->slot_lock);
    return ((uint64_t)gen << 32) | ((uint64_t)(uint32_t)l->index << 24) | ix;
}

void mesh_slot_release(mesh_loop_t *l, mesh_actor_id_t id)
{
    uint32_t ix = mesh_id_slot(id);
    pthread_mutex_lock(&l->slot_lock);
    mesh_slot_t *s = mesh_slot_get(l, ix);
    if (!s) { /* not an id of this loop's (its chunk was never made) */
        pthread_mutex_unlock(&l->slot_lock);
        return;
    }
    atomic_store_explicit(&s->state, MESH_SLOT_FREE, memory_order_relaxed);
    atomic_store_explicit(&s->gen, mesh_id_gen(id) + 1, memory_order_release);
    s->actor = NULL;
    s->next_free = l->free_slot;
    l->free_slot = ix;
    pthread_mutex_unlock(&l->slot_lock);
}

void mesh_slots_destroy(mesh_loop_t *l)
{
    for (uint32_t i = 0; i < MESH_SLOT_CHUNKS; i++) {
        mesh_slot_t *c = atomic_load(&l->chunks[i]);
        if (!c)
            break;
        munmap(c, MESH_SLOT_CHUNK * sizeof(*c));
        atomic_store(&l->chunks[i], NULL);
    }
}
