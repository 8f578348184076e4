/*
 * policy/breaker.h: a circuit breaker shared by every worker thread that calls one upstream.
 *
 * The breaker never reads a clock and never does I/O: every call takes the current time in
 * nanoseconds (any monotonic origin, the same for all threads) and returns a decision. It is
 * tripped by
 *   - N consecutive failures,
 *   - a failure ratio over a sliding time window (only once the window holds a minimum number
 *     of calls),
 * and it caps concurrent calls (over the cap a call is rejected without tripping).
 *
 * States: CLOSED (calls flow) -> OPEN (calls rejected for the open interval) -> HALF_OPEN (a
 * configured number of probe calls flow) -> CLOSED when all probes succeed, or back to OPEN
 * with a longer open interval (doubled, capped) when one fails. Every transition is reported
 * once, through a callback with a reason string, for logs and audit events.
 *
 * Threads: one breaker per upstream, used by any number of threads at once, and the thresholds
 * hold for the sum of their calls (N workers do not multiply them). allow() and done() take no
 * lock in the closed state and allocate nothing: the state, its generation and the consecutive
 * failure count (or, half-open, the probes issued and succeeded) share one atomic word updated
 * by compare-and-swap; the window and the calls in flight are atomic counters. Transitions take
 * a mutex (they are rare) and re-check the word under it, so each happens once and exactly the
 * configured number of probes is let through.
 *
 * Usage per call:
 *     pol_breaker_permit_t p;
 *     if (pol_breaker_allow(b, now, &p) != POL_BREAKER_ALLOWED) -> answer UNAVAILABLE with
 *         the message from pol_breaker_reject_message();
 *     ... call the upstream ...
 *     pol_breaker_done(b, &p, pol_breaker_classify_grpc(status), now);
 */
#ifndef POL_BREAKER_H
#define POL_BREAKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/** Number of buckets of the sliding ratio window. */
#define POL_BREAKER_BUCKETS 10

/** Longest service name kept by a breaker (longer names are truncated in messages). */
#define POL_BREAKER_SERVICE_MAX 128

/** Most half-open probes a configuration may ask for (a larger value is a config error). */
#define POL_BREAKER_PROBES_MAX 0x7FFFu

/** The three breaker states. */
typedef enum {
    POL_BREAKER_CLOSED = 0,
    POL_BREAKER_OPEN = 1,
    POL_BREAKER_HALF_OPEN = 2,
} pol_breaker_state_t;

/** What pol_breaker_allow() decided. */
typedef enum {
    POL_BREAKER_ALLOWED = 0,
    /** Open, or half-open with every probe slot taken: answer UNAVAILABLE. */
    POL_BREAKER_REJECT_OPEN = 1,
    /** Too many calls in flight: answer UNAVAILABLE (the breaker does not trip). */
    POL_BREAKER_REJECT_CONCURRENCY = 2,
} pol_breaker_decision_t;

/** How a call ended, as classified by the caller. */
typedef enum {
    POL_BREAKER_SUCCESS = 0,
    POL_BREAKER_FAILURE = 1,
    /** The call ended without a verdict (client cancelled): frees its slot, counts nothing. */
    POL_BREAKER_IGNORED = 2,
} pol_breaker_outcome_t;

/** Tuning of one breaker; pol_breaker_config_default() gives sane values. */
typedef struct {
    /** Trip after this many consecutive failures; 0 disables this trigger. */
    uint32_t consecutive_failures;
    /** Trip when failures/calls in the window reaches this ratio (0 < r <= 1); 0 disables. */
    double failure_ratio;
    /** The ratio trigger needs at least this many calls in the window. */
    uint32_t ratio_min_calls;
    /** Length of the sliding window in ns (resolution: window / POL_BREAKER_BUCKETS). */
    uint64_t window_ns;
    /** Calls in flight above which new calls are rejected; 0 means no cap. */
    uint32_t max_concurrent;
    /** First open interval in ns. */
    uint64_t open_ns;
    /** Cap of the open interval as it doubles after failed probes. */
    uint64_t open_max_ns;
    /** Probe calls let through in half-open; all must succeed to close (1..PROBES_MAX). */
    uint32_t half_open_probes;
} pol_breaker_config_t;

/** A state change, passed to the transition callback. */
typedef struct {
    /** The breaker's service name. */
    const char *service;
    pol_breaker_state_t from;
    pol_breaker_state_t to;
    /** Why, in words ("5 consecutive failures", "probe failed", ...). */
    const char *reason;
    /** The time passed to the call that caused the transition. */
    uint64_t now_ns;
    /** When entering OPEN: the time at which the breaker will go half-open; else 0. */
    uint64_t open_until_ns;
} pol_breaker_transition_t;

/** Called once per transition, on the thread that caused it, with the breaker's transition
 * mutex held (transitions are reported in order); the pointers in t are valid during the call
 * only. It must not call back into the same breaker. */
typedef void (*pol_breaker_on_transition_fn)(void *ud, const pol_breaker_transition_t *t);

/** Handed out by pol_breaker_allow() and given back to pol_breaker_done(). */
typedef struct {
    /** State generation at admission: results of calls admitted in an older one are ignored. */
    uint32_t gen;
    /** Nonzero when the call is a half-open probe. */
    uint8_t probe;
    /** Nonzero once done() has seen it (a second done() is a no-op). */
    uint8_t done;
} pol_breaker_permit_t;

/** One bucket of the ratio window: tag = generation (low 16 bits) and epoch (low 48 bits). */
typedef struct {
    _Atomic uint64_t tag;
    _Atomic uint64_t successes;
    _Atomic uint64_t failures;
} pol_breaker_bucket_t;

/** A circuit breaker; fields are private, read them through the functions below. */
typedef struct pol_breaker {
    /* Read-only after init. */
    pol_breaker_config_t cfg;
    uint64_t bucket_ns;
    char service[POL_BREAKER_SERVICE_MAX];
    pol_breaker_on_transition_fn on_transition;
    void *ud;

    /* state (2 bits) | generation (30) | closed: consecutive failures, half-open: probes
     * issued (16) and succeeded (16). Read by every call, written on failures and transitions. */
    _Alignas(64) _Atomic uint64_t word;
    _Atomic uint64_t open_until_ns; /* written before the word that enters OPEN */

    /* Written by every call. */
    _Alignas(64) _Atomic uint32_t in_flight;

    _Alignas(64) pol_breaker_bucket_t buckets[POL_BREAKER_BUCKETS];

    /* Counters (relaxed). */
    _Alignas(64) _Atomic uint64_t rejected_open;
    _Atomic uint64_t rejected_concurrency;
    _Atomic uint64_t trips;

    /* Transitions and bucket recycling; open_interval_ns is touched only under it. */
    pthread_mutex_t lock;
    uint64_t open_interval_ns;
} pol_breaker_t;

/** Fills cfg with defaults: 5 consecutive failures, ratio 0.5 over 10 s with >= 20 calls, no
 * concurrency cap, open 5 s doubling up to 60 s, 1 probe. */
void pol_breaker_config_default(pol_breaker_config_t *cfg);

/** Checks cfg; on a problem writes it to err (for the caller's log) and returns -1. */
int pol_breaker_config_check(const pol_breaker_config_t *cfg, char *err, size_t errlen);

/** Initializes b for service (copied) with cfg (copied); on_transition may be NULL.
 * Returns 0, or -1 when cfg is invalid (see pol_breaker_config_check). */
int pol_breaker_init(pol_breaker_t *b, const char *service, const pol_breaker_config_t *cfg,
                     pol_breaker_on_transition_fn on_transition, void *ud);

/** Releases what init took (no thread may use b any more). */
void pol_breaker_destroy(pol_breaker_t *b);

/** Asks whether a call may start now. On POL_BREAKER_ALLOWED the permit is filled and the
 * caller must later hand it to pol_breaker_done() exactly once. May move OPEN -> HALF_OPEN. */
pol_breaker_decision_t pol_breaker_allow(pol_breaker_t *b, uint64_t now_ns,
                                         pol_breaker_permit_t *permit);

/** Reports how an admitted call ended (any thread). May trip, close or reopen the breaker. */
void pol_breaker_done(pol_breaker_t *b, pol_breaker_permit_t *permit, pol_breaker_outcome_t outcome,
                      uint64_t now_ns);

/** Applies time-based transitions (OPEN -> HALF_OPEN) and returns the state at now_ns. */
pol_breaker_state_t pol_breaker_poll(pol_breaker_t *b, uint64_t now_ns);

/** The state as of the last call (no time applied). */
pol_breaker_state_t pol_breaker_state(const pol_breaker_t *b);

/** Calls currently admitted and not yet done. */
uint32_t pol_breaker_in_flight(const pol_breaker_t *b);

/** Calls and failures currently in the ratio window, as seen at now_ns. */
void pol_breaker_window(const pol_breaker_t *b, uint64_t now_ns, uint64_t *calls,
                        uint64_t *failures);

/** Counters since init. */
typedef struct {
    uint64_t trips;                /* transitions into OPEN */
    uint64_t rejected_open;        /* calls refused while open / half-open with no probe slot */
    uint64_t rejected_concurrency; /* calls refused over max_concurrent */
} pol_breaker_stats_t;
void pol_breaker_stats(const pol_breaker_t *b, pol_breaker_stats_t *out);

/** The name of a state: "closed", "open", "half-open". */
const char *pol_breaker_state_name(pol_breaker_state_t s);

/** Maps a gRPC status to an outcome: UNAVAILABLE, INTERNAL and DEADLINE_EXCEEDED are failures,
 * a negative value (connection error, no status) is a failure, anything else a success. */
pol_breaker_outcome_t pol_breaker_classify_grpc(int grpc_status);

/** Writes the grpc-message for a call rejected because the circuit is open:
 * "meshd: circuit open for <service>". Returns the length, or -1 if it did not fit. */
int pol_breaker_format_open_message(const char *service, char *buf, size_t cap);

/** Writes the grpc-message for a rejection decision of b (open or concurrency cap).
 * Returns the length, or -1 if it did not fit. */
int pol_breaker_reject_message(const pol_breaker_t *b, pol_breaker_decision_t d, char *buf,
                               size_t cap);

#endif
