/*
 * transport/balancer.h: how the proxy picks an upstream instance for a call, without I/O.
 *
 * Two pieces, both fed with the time instead of reading a clock:
 *   - the connect backoff of one endpoint: a connect that fails (refused, reset, timed out)
 *     takes the endpoint out of round robin for an interval that doubles with each failure up
 *     to a cap; a connect that succeeds makes the next failure start from the first interval
 *     again;
 *   - round robin over a service's instances: from a per-service counter, the next instance
 *     the caller deems eligible (not backing off, has an address, serves the method, is not
 *     the instance a retry excludes), each tried at most once per pick.
 *
 * The proxy worker (transport/proxy_stream.c, upstream_pool.c) keeps one backoff per endpoint
 * and one counter per service on its libuv loop, in milliseconds of uv_now(); the whole-mesh
 * simulator (simulations/mesh_sim.c) runs the very same functions for its simulated calls
 * under the virtual clock. Nothing here allocates or locks.
 */
#ifndef MESH_BALANCER_H
#define MESH_BALANCER_H

#include <stddef.h>
#include <stdint.h>

/** The first interval an endpoint stays out of round robin after a failed connect. */
#define MESH_BAL_BACKOFF_INITIAL_MS 200
/** The cap of that interval as it doubles. */
#define MESH_BAL_BACKOFF_MAX_MS 10000

/** Backoff settings (shared by every endpoint of a worker). */
typedef struct mesh_bal_backoff_cfg {
    uint64_t initial_ms; /* first interval; 0 means MESH_BAL_BACKOFF_INITIAL_MS */
    uint64_t max_ms;     /* cap; 0 means MESH_BAL_BACKOFF_MAX_MS; raised to initial_ms */
} mesh_bal_backoff_cfg_t;

/** One endpoint's backoff. */
typedef struct mesh_bal_backoff {
    uint64_t down_until_ms; /* round robin skips the endpoint before this time */
    uint64_t next_ms;       /* how long the next failed connect takes it out */
} mesh_bal_backoff_t;

/** Fills zero fields of cfg with the defaults and makes max_ms at least initial_ms. */
void mesh_bal_backoff_cfg_fix(mesh_bal_backoff_cfg_t *cfg);

/** A fresh endpoint: eligible now, the next failure takes it out for cfg->initial_ms. */
void mesh_bal_backoff_init(mesh_bal_backoff_t *b, const mesh_bal_backoff_cfg_t *cfg);

/** Whether the endpoint is out of its backoff at now_ms. (Per call: inline.) */
static inline int mesh_bal_backoff_up(const mesh_bal_backoff_t *b, uint64_t now_ms)
{
    return b->down_until_ms <= now_ms;
}

/**
 * A connect to the endpoint failed at now_ms: it is out of round robin until now_ms plus the
 * current interval, and the interval doubles (up to cfg->max_ms). Returns the interval it is
 * out for (for the log line).
 */
uint64_t mesh_bal_backoff_failed(mesh_bal_backoff_t *b, const mesh_bal_backoff_cfg_t *cfg,
                                 uint64_t now_ms);

/** A connect to the endpoint succeeded: the next failure starts from cfg->initial_ms. */
void mesh_bal_backoff_connected(mesh_bal_backoff_t *b, const mesh_bal_backoff_cfg_t *cfg);

/** The endpoint's address changed: its history no longer applies (eligible now, first
 * interval next). */
void mesh_bal_backoff_reset(mesh_bal_backoff_t *b, const mesh_bal_backoff_cfg_t *cfg);

/** Round robin position of one service: a counter, and the candidate it points at (next % n,
 *  kept for the n of the last pick, so a pick divides only when n changed). */
typedef struct mesh_bal_rr {
    uint32_t next;
    uint32_t pos; /* next % n_at */
    size_t n_at;  /* 0: pos not known */
} mesh_bal_rr_t;

/** Starts the counter at start (each worker starts at its own index, so workers that install
 * the same table do not all send their first calls to the same instance). */
static inline void mesh_bal_rr_init(mesh_bal_rr_t *rr, uint32_t start)
{
    rr->next = start;
    rr->n_at = 0;
}

/** Whether candidate k (0..n-1) may take the call; ud is the caller's. */
typedef int (*mesh_bal_eligible_fn)(void *ud, size_t k);

/**
 * Picks the next of n candidates in round robin order that eligible() accepts: candidates are
 * tried from the counter on, each at most once, and the counter moves past every candidate
 * tried (so a skipped instance does not shift the others' share). Returns the index picked, or
 * -1 when none is eligible (or n is 0). Inline: on the proxy's per-call path the compiler
 * sees the predicate.
 */
static inline ptrdiff_t mesh_bal_rr_pick(mesh_bal_rr_t *rr, size_t n, mesh_bal_eligible_fn eligible,
                                         void *ud)
{
    if (rr->n_at != n) { /* the service's size changed: where the counter points now */
        rr->n_at = n;
        rr->pos = n ? (uint32_t)(rr->next % n) : 0;
    }
    for (size_t i = 0; i < n; i++) {
        size_t k = rr->pos;
        /* next % n after next++: the following candidate, or 0 past the last one or when the
           counter wraps (0 % n) */
        rr->pos = ++rr->next == 0 || k + 1 == n ? 0 : (uint32_t)k + 1;
        if (eligible(ud, k))
            return (ptrdiff_t)k;
    }
    return -1;
}

#endif
