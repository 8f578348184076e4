/*
 * transport/outlier_board.h: outlier ejection state shared by the proxy's workers, so that
 * its thresholds hold whatever the worker count.
 *
 * Each worker keeps its own endpoints, pools and balancer (a call never leaves its worker), but
 * an upstream instance is one instance: 5 consecutive gateway failures must eject it whether
 * they happened on one worker or were spread over four, and once ejected no worker sends it
 * traffic, and exactly one call (on whichever worker) is its probe. The board holds one slot
 * per upstream address ("host:port" as the routing table lists it); every worker's endpoint of
 * that address points at the slot.
 *
 * A slot is transport/outlier.h's state machine behind a mutex, plus two atomics the per-call
 * path reads without the lock:
 *   - blocked_until: 0 while in traffic; while ejected, the time before which no call may be
 *     sent (the end of the ejection, or of the probe in flight). A pick is one relaxed load;
 *   - hot: the slot has something a success would change (failures counted, or ejected).
 *     A success on a cold slot writes nothing shared: no lock, no store, no cache-line
 *     ping-pong between workers on the healthy path.
 * Failures, probes and state changes take the mutex (rare by construction). Each effect
 * (ejected, returned, held back) is returned to exactly one worker, the one whose report
 * caused it, so log lines, metrics and audit events are emitted once per event, not once per
 * worker. Time is the callers' loop time (uv_now: one monotonic clock in a process).
 *
 * The board also counts ejections, returns and held-back ejections (for /metrics). A board
 * with a single user (a worker on its own, a test) works the same; the mutex is then never
 * contended.
 */
#ifndef MESH_OUTLIER_BOARD_H
#define MESH_OUTLIER_BOARD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "transport/outlier.h"
#include "transport/outlier_sr.h"
#include "transport/outlier_window.h"

typedef struct mesh_outlier_board mesh_outlier_board_t;

/** One upstream address's shared state. */
typedef struct mesh_outlier_slot {
    _Atomic uint64_t blocked_until; /* no pick before this time; 0: in traffic */
    _Atomic uint32_t hot;           /* failures counted or ejected: a success must report */
    _Atomic uint32_t ejected;       /* counts toward the max ejection percent */
    pthread_mutex_t mu;
    mesh_outlier_t o;               /* under mu */
    mesh_olw_sum_t fp;              /* the failure-percentage windows' sum, under mu */
    mesh_olsr_sum_t sr;             /* the success-rate intervals' sum, under mu */
    uint32_t refs;                  /* under the board's lock */
    struct mesh_outlier_slot *next; /* the board's bucket chain, under the board's lock */
    char addr[];
} mesh_outlier_slot_t;

/** Counters of a board (monotonic, for /metrics). */
typedef struct mesh_outlier_board_stats {
    uint64_t ejections; /* an instance was taken out (first ejections and failed probes) */
    uint64_t returns;   /* a probe succeeded: back in full traffic */
    uint64_t held_back; /* an ejection the max ejection percent forbade */
    uint64_t panic;     /* calls sent to an ejected instance: no other one could take them */
    uint64_t ejected;   /* gauge: slots ejected now */
    uint64_t slots;     /* gauge: addresses on the board */
} mesh_outlier_board_stats_t;

/** A new empty board (NULL when out of memory). Thread-safe from then on. */
mesh_outlier_board_t *mesh_outlier_board_new(void);

/** Frees the board; every slot must have been put back. */
void mesh_outlier_board_free(mesh_outlier_board_t *b);

/** The slot of addr, created in traffic when new; holds a reference (NULL: out of memory). */
mesh_outlier_slot_t *mesh_outlier_board_get(mesh_outlier_board_t *b, const char *addr);

/** Drops a reference from mesh_outlier_board_get; the last one frees the slot (NULL: none). */
void mesh_outlier_board_put(mesh_outlier_board_t *b, mesh_outlier_slot_t *s);

/** Counts a panic pick (a call sent to an ejected instance because no other was eligible). */
void mesh_outlier_board_panic(mesh_outlier_board_t *b);

/** A copy of the board's counters. */
void mesh_outlier_board_stats(mesh_outlier_board_t *b, mesh_outlier_board_stats_t *out);

/** Calls fn for every address ejected now, under the board's lock (keep fn short: it holds up
 *  workers creating endpoints). until_ms: the end of its ejection, in loop time. */
void mesh_outlier_board_each_ejected(mesh_outlier_board_t *b,
                                     void (*fn)(void *ud, const char *addr, uint64_t until_ms),
                                     void *ud);

/** Whether a call may be sent to the slot's instance at now (the balancer's test). One relaxed
 *  load: the per-call path. */
static inline int mesh_outlier_slot_up(const mesh_outlier_slot_t *s, uint64_t now)
{
    return atomic_load_explicit(&s->blocked_until, memory_order_relaxed) <= now;
}

/** Whether the slot counts as ejected (for the max ejection percent of a service). */
static inline int mesh_outlier_slot_ejected(const mesh_outlier_slot_t *s)
{
    return atomic_load_explicit(&s->ejected, memory_order_relaxed) != 0;
}

int mesh_outlier_slot_take_probe(mesh_outlier_board_t *b, mesh_outlier_slot_t *s,
                                 const mesh_outlier_cfg_t *cfg, uint64_t now);

/**
 * The balancer picked the slot's instance at now. Returns 1 when the call may go there: always
 * for an instance in traffic (one relaxed load, inline: the per-call path); for an ejected
 * instance whose time is over, only for the one call that takes the probe (another worker may
 * have taken it a moment earlier: 0, pick again): mesh_outlier_slot_take_probe, under the lock.
 */
static inline int mesh_outlier_slot_picked(mesh_outlier_board_t *b, mesh_outlier_slot_t *s,
                                           const mesh_outlier_cfg_t *cfg, uint64_t now)
{
    if (!mesh_outlier_slot_ejected(s))
        return 1;
    return mesh_outlier_slot_take_probe(b, s, cfg, now);
}

mesh_outlier_effect_t mesh_outlier_slot_count(mesh_outlier_board_t *b, mesh_outlier_slot_t *s,
                                              const mesh_outlier_cfg_t *cfg,
                                              mesh_outlier_outcome_t outcome, size_t n_endpoints,
                                              size_t n_ejected, uint64_t now, uint64_t *out_ms);

/**
 * A call to the slot's instance finished at now (see mesh_outlier_report). n_endpoints and
 * n_ejected are the service's, as the calling worker sees it (mesh_outlier_slot_ejected).
 * A success on a slot with nothing to change returns at once without writing (inline, one
 * relaxed load: the healthy per-call path); anything else is mesh_outlier_slot_count, under the
 * lock. The effect is returned to this caller only; *out_ms as mesh_outlier_report.
 * MESH_OUTLIER_HELD_BACK comes once per streak of failures (the failure that reached the
 * threshold), not for each after.
 */
static inline mesh_outlier_effect_t
mesh_outlier_slot_report(mesh_outlier_board_t *b, mesh_outlier_slot_t *s,
                         const mesh_outlier_cfg_t *cfg, mesh_outlier_outcome_t outcome,
                         size_t n_endpoints, size_t n_ejected, uint64_t now, uint64_t *out_ms)
{
    if (cfg->disabled || outcome == MESH_OUTLIER_NEUTRAL ||
        (outcome == MESH_OUTLIER_SUCCESS && !atomic_load_explicit(&s->hot, memory_order_relaxed)))
        return MESH_OUTLIER_NONE;
    return mesh_outlier_slot_count(b, s, cfg, outcome, n_endpoints, n_ejected, now, out_ms);
}

/** Ejects the slot's instance now on another detector's verdict (mesh_outlier_eject); the
 *  effect is returned to this caller only. */
mesh_outlier_effect_t mesh_outlier_slot_eject(mesh_outlier_board_t *b, mesh_outlier_slot_t *s,
                                              const mesh_outlier_cfg_t *cfg, size_t n_endpoints,
                                              size_t n_ejected, uint64_t now, uint64_t *out_ms);

/**
 * Merges a worker's failure-percentage window that just closed (mesh_olw_add returned 1) into
 * the slot's process-wide sum (transport/outlier_window.h). Returns 1 when the sum just went
 * over the threshold (then *pct and *volume describe the window): this caller ejects, through
 * mesh_outlier_slot_eject. One lock per worker per window, never per call.
 */
int mesh_outlier_slot_window(mesh_outlier_slot_t *s, const mesh_olw_cfg_t *cfg, const mesh_olw_t *w,
                             uint32_t *pct, uint32_t *volume);

/** Merges a worker's success-rate counts of interval idx into the slot's process-wide sum
 *  (mesh_olsr_merge) and writes the sum into *out. */
void mesh_outlier_slot_sr(mesh_outlier_slot_t *s, uint64_t idx, const mesh_olsr_ep_t *mine,
                          mesh_olsr_ep_t *out);

/** Forgets the slot's history (its address now means another machine). */
void mesh_outlier_slot_reset(mesh_outlier_board_t *b, mesh_outlier_slot_t *s);

#endif
