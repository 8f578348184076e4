/*
 * transport/retry.h: the sans-I/O retry core of the proxy engine: per-method retry policies
 * (gRPC service-config retryPolicy semantics), the decision whether one failed attempt may be
 * tried again, exponential backoff with full jitter, and the retry budget (Linkerd's: retries
 * at most `ratio` x calls plus a floor per second over a sliding window).
 *
 * Nothing here does I/O or reads a clock: the engine (transport/proxy_stream.c) passes the
 * attempt's facts, the loop time and a random number, and acts on the answer. The unit tests
 * (tests/unit/transport/test_retry.c) drive it under a fake clock.
 *
 * Safety rules (docs/transport.md, "Retries"):
 *  - an attempt whose request provably never reached an app (connect failure, REFUSED_STREAM,
 *    a stream above a GOAWAY's last-stream-id, a connection lost before the request was sent)
 *    may always be tried on another instance: the engine does this once without a policy;
 *  - after the app may have acted on the request, only a method configured idempotent is tried
 *    again, only on a status of its retryable list, only while no response header went to the
 *    client and only while every request byte is still held for the replay (a bounded copy);
 *  - every policy retry also needs the budget's permission.
 */
#ifndef MESH_RETRY_H
#define MESH_RETRY_H

#include <stddef.h>
#include <stdint.h>

/** One method's retry and hedging policy (plain values; from the `routes:` block). */
typedef struct mesh_retry_policy {
    uint32_t max_attempts;       /* attempts in all, the first included; <= 1: no retries */
    uint64_t initial_backoff_ms; /* backoff before the first retry (upper bound, jittered) */
    uint64_t max_backoff_ms;     /* cap of the growing backoff */
    double backoff_multiplier;   /* growth per retry (>= 1) */
    uint32_t retryable;          /* bit (1 << status) per retryable gRPC status */
    int idempotent;              /* the method may run twice: retries after the app acted */
    uint64_t per_try_timeout_ms; /* 0: an attempt may use the call's whole deadline */
    uint32_t hedge_max_attempts; /* attempts in flight at most; <= 1: no hedging */
    uint64_t hedge_delay_ms;     /* before each further hedged attempt */
} mesh_retry_policy_t;

/** What the engine knows about an attempt that did not succeed. */
typedef struct mesh_retry_attempt {
    uint32_t attempts;  /* attempts made so far, this one included (>= 1) */
    int status;         /* the gRPC status the attempt ended with; -1: reset or lost */
    int never_sent;     /* the request provably never reached an app */
    int resp_forwarded; /* response headers already went to the client */
    int replayable;     /* every request byte is still held (within the bound) */
    int timed_out;      /* the per-try timeout ended it (retryable for idempotent methods) */
} mesh_retry_attempt_t;

/** The decision, with why not. */
typedef enum mesh_retry_verdict {
    MESH_RETRY_YES = 0,
    MESH_RETRY_NO_POLICY = 1,    /* no policy retries configured (max-attempts <= 1) */
    MESH_RETRY_NO_ATTEMPTS = 2,  /* max-attempts reached */
    MESH_RETRY_NO_STATUS = 3,    /* the status is not in the retryable list */
    MESH_RETRY_NO_UNSAFE = 4,    /* the app may have acted and the method is not idempotent */
    MESH_RETRY_NO_COMMITTED = 5, /* response headers already went to the client */
    MESH_RETRY_NO_TOO_LARGE = 6, /* the request outgrew the replay bound */
} mesh_retry_verdict_t;

/** Whether attempt a may be tried again under policy p (NULL: no policy). The budget is asked
 *  separately (mesh_retry_budget_take), only when this says yes. */
mesh_retry_verdict_t mesh_retry_decide(const mesh_retry_policy_t *p, const mesh_retry_attempt_t *a);

/** A short text for a verdict ("not idempotent", ...). */
const char *mesh_retry_verdict_name(mesh_retry_verdict_t v);

/**
 * The delay before retry number n (1 for the first retry): a uniformly random value in
 * [0, min(initial x multiplier^(n-1), max)] ("full jitter", as gRPC does), from rnd (any
 * 64-bit random number).
 */
uint64_t mesh_retry_backoff_ms(const mesh_retry_policy_t *p, uint32_t n, uint64_t rnd);

/** Sliding window of the budget: MESH_RETRY_BUDGET_SLOTS slots of one second. */
#define MESH_RETRY_BUDGET_SLOTS 10

/** The retry budget's settings. The floor is per second; a per-worker budget gets its share. */
typedef struct mesh_retry_budget_cfg {
    double ratio;     /* retries allowed per call (0.2: one retry per five calls) */
    double min_per_s; /* retries allowed per second whatever the traffic */
} mesh_retry_budget_cfg_t;

/** One budget's state (one per worker: no locks). Zero-initialised is valid. */
typedef struct mesh_retry_budget {
    uint64_t slot_s;  /* the second of slot (slot_s % SLOTS) last written */
    uint64_t next_ms; /* (slot_s + 1) x 1000: before it, a call counts in slot k as is */
    uint32_t k;       /* slot_s % SLOTS */
    uint32_t calls[MESH_RETRY_BUDGET_SLOTS];
    uint32_t retries[MESH_RETRY_BUDGET_SLOTS];
    uint64_t exhausted; /* retries refused, since creation */
} mesh_retry_budget_t;

void mesh_retry_budget_call_slow(mesh_retry_budget_t *b, uint64_t now_ms);

/** Counts one call started at now_ms (a deposit). Every call pays it, retry policy or not:
 *  within the current second it is a comparison and an increment, inline (no division). */
static inline void mesh_retry_budget_call(mesh_retry_budget_t *b, uint64_t now_ms)
{
    if (now_ms < b->next_ms && b->calls[b->k] < UINT32_MAX)
        b->calls[b->k]++;
    else
        mesh_retry_budget_call_slow(b, now_ms);
}

/** Asks for one retry at now_ms: 1 granted (counted), 0 refused (counted in exhausted).
 *  Granted while retries in the window + 1 <= ratio x calls in the window + floor x window. */
int mesh_retry_budget_take(mesh_retry_budget_t *b, const mesh_retry_budget_cfg_t *cfg,
                           uint64_t now_ms);

#endif
