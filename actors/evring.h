/*
 * actors/evring.h: a per-worker event ring, the data plane's way to tell the control loop
 * things (breaker transitions, counters, later audit and metrics events) without a message,
 * lock or allocation per event.
 *
 * One producer (the worker's loop thread) and one consumer (the control loop): a bounded
 * single-producer single-consumer ring of fixed-size events. The producer never blocks: when
 * the ring is full the event is counted as dropped, and the consumer reports the count
 * (never silent). The worker flushes in batches: it pokes the consumer with one message when
 * the ring holds events and no poke is outstanding (mesh_evring_want_poke), and the consumer
 * takes everything there is.
 */
#ifndef MESH_EVRING_H
#define MESH_EVRING_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/** One event (128 bytes). */
typedef struct mesh_event {
    uint32_t type;   /* MESH_EV_* or a module's own type */
    uint32_t worker; /* the producer's worker index */
    uint64_t a, b, c;
    char text[96]; /* NUL-terminated, truncated to fit */
} mesh_event_t;

/** Event types of the runtime and the node. */
enum {
    MESH_EV_STATS = 1,   /* a = calls, b = calls the mesh failed, c = retries (since the last) */
    MESH_EV_BREAKER = 2, /* a = from state, b = to state; text = "<name>: <reason>" */
};

/** The ring. */
typedef struct mesh_evring {
    mesh_event_t *slots;
    uint32_t mask;
    _Atomic uint64_t head; /* next to take (consumer) */
    _Atomic uint64_t tail; /* next to fill (producer) */
    _Atomic uint64_t dropped;
    _Atomic int poked; /* a poke is outstanding */
} mesh_evring_t;

/** Initializes with room for cap events (rounded up to a power of two). 0 or -1. */
int mesh_evring_init(mesh_evring_t *r, uint32_t cap);

/** Frees the slots. */
void mesh_evring_destroy(mesh_evring_t *r);

/** Producer: appends a copy of e; -1 (and one more dropped) when full. */
int mesh_evring_push(mesh_evring_t *r, const mesh_event_t *e);

/** Producer: whether the consumer should be poked now (events waiting, no poke outstanding);
 *  when it returns 1 the caller sends exactly one poke. */
int mesh_evring_want_poke(mesh_evring_t *r);

/** Consumer: moves up to max events into out (oldest first); returns how many. Call it until
 *  it returns fewer than max, then mesh_evring_done. */
size_t mesh_evring_take(mesh_evring_t *r, mesh_event_t *out, size_t max);

/** Consumer: the poke was served (a later event pokes again). */
void mesh_evring_done(mesh_evring_t *r);

/** Consumer: events dropped since the last call. */
uint64_t mesh_evring_take_dropped(mesh_evring_t *r);

#endif
