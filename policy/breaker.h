/*
 * policy/breaker.h: a circuit breaker as a pure state machine.
 *
 * The breaker never reads a clock and never does I/O: every call takes the current time in
 * nanoseconds (any monotonic origin) and returns a decision. It is tripped by
 *   - N consecutive failures,
 *   - a failure ratio over a sliding time window (only once the window holds a minimum number
 *     of calls),
 * and it caps concurrent calls (over the cap a call is rejected without tripping).
 *
 * States: CLOSED (calls flow) -> OPEN (calls rejected for the open interval) -> HALF_OPEN (a
 * configured number of probe calls flow) -> CLOSED when all probes succeed, or back to OPEN
 * with a longer open interval (doubled, capped) when one fails. Every transition is reported
 * through a callback with a reason string, for logs and audit events.
 *
 * Usage per call:
 *     mesh_breaker_permit_t p;
 *     if (mesh_breaker_allow(b, now, &p) != MESH_BREAKER_ALLOWED) -> answer UNAVAILABLE with
 *         the message from mesh_breaker_reject_message();
 *     ... call the upstream ...
 *     mesh_breaker_done(b, &p, mesh_breaker_classify_grpc(status), now);
 *
 * No allocation happens after mesh_breaker_init(); a breaker is used by one thread.
 */
#ifndef MESH_BREAKER_H
#define MESH_BREAKER_H

#include <stddef.h>
#include <stdint.h>

/** Number of buckets of the sliding ratio window. */
#define MESH_BREAKER_BUCKETS 10

/** Longest service name kept by a breaker (longer names are truncated in messages). */
#define MESH_BREAKER_SERVICE_MAX 128

/** The three breaker states. */
typedef enum {
    MESH_BREAKER_CLOSED = 0,
    MESH_BREAKER_OPEN = 1,
    MESH_BREAKER_HALF_OPEN = 2,
} mesh_breaker_state_t;

/** What mesh_breaker_allow() decided. */
typedef enum {
    MESH_BREAKER_ALLOWED = 0,
    /** Open, or half-open with every probe slot taken: answer UNAVAILABLE. */
    MESH_BREAKER_REJECT_OPEN = 1,
    /** Too many calls in flight: answer UNAVAILABLE (the breaker does not trip). */
    MESH_BREAKER_REJECT_CONCURRENCY = 2,
} mesh_breaker_decision_t;

/** How a call ended, as classified by the caller. */
typedef enum {
    MESH_BREAKER_SUCCESS = 0,
    MESH_BREAKER_FAILURE = 1,
    /** The call ended without a verdict (client cancelled): frees its slot, counts nothing. */
    MESH_BREAKER_IGNORED = 2,
} mesh_breaker_outcome_t;

/** Tuning of one breaker; mesh_breaker_config_default() gives sane values. */
typedef struct {
    /** Trip after this many consecutive failures; 0 disables this trigger. */
    uint32_t consecutive_failures;
    /** Trip when failures/calls in the window reaches this ratio (0 < r <= 1); 0 disables. */
    double failure_ratio;
    /** The ratio trigger needs at least this many calls in the window. */
    uint32_t ratio_min_calls;
    /** Length of the sliding window in ns (resolution: window / MESH_BREAKER_BUCKETS). */
    uint64_t window_ns;
    /** Calls in flight above which new calls are rejected; 0 means no cap. */
    uint32_t max_concurrent;
    /** First open interval in ns. */
    uint64_t open_ns;
    /** Cap of the open interval as it doubles after failed probes. */
    uint64_t open_max_ns;
    /** Probe calls let through in half-open; all must succeed to close (>= 1). */
    uint32_t half_open_probes;
} mesh_breaker_config_t;

/** A state change, passed to the transition callback. */
typedef struct {
    /** The breaker's service name. */
    const char *service;
    mesh_breaker_state_t from;
    mesh_breaker_state_t to;
    /** Why, in words ("5 consecutive failures", "probe failed", ...). */
    const char *reason;
    /** The time passed to the call that caused the transition. */
    uint64_t now_ns;
    /** When entering OPEN: the time at which the breaker will go half-open; else 0. */
    uint64_t open_until_ns;
} mesh_breaker_transition_t;

/** Called on every transition; the pointers in t are valid during the call only. */
typedef void (*mesh_breaker_on_transition_fn)(void *ud, const mesh_breaker_transition_t *t);

/** Handed out by mesh_breaker_allow() and given back to mesh_breaker_done(). */
typedef struct {
    /** State generation at admission: results of calls admitted in an older one are ignored. */
    uint32_t gen;
    /** Nonzero when the call is a half-open probe. */
    uint8_t probe;
    /** Nonzero once done() has seen it (a second done() is a no-op). */
    uint8_t done;
} mesh_breaker_permit_t;

/** One bucket of the ratio window. */
typedef struct {
    uint64_t epoch;
    uint32_t calls;
    uint32_t failures;
} mesh_breaker_bucket_t;

/** A circuit breaker; fields are private, read them through the functions below. */
typedef struct {
    mesh_breaker_config_t cfg;
    char service[MESH_BREAKER_SERVICE_MAX];
    mesh_breaker_on_transition_fn on_transition;
    void *ud;

    mesh_breaker_state_t state;
    uint32_t gen;
    uint32_t in_flight;
    uint32_t consecutive;
    uint64_t bucket_ns;
    mesh_breaker_bucket_t buckets[MESH_BREAKER_BUCKETS];

    uint64_t open_interval_ns;
    uint64_t open_until_ns;
    uint32_t probes_issued;
    uint32_t probes_ok;

    uint64_t rejected_open;
    uint64_t rejected_concurrency;
    uint64_t trips;
} mesh_breaker_t;

/** Fills cfg with defaults: 5 consecutive failures, ratio 0.5 over 10 s with >= 20 calls, no
 * concurrency cap, open 5 s doubling up to 60 s, 1 probe. */
void mesh_breaker_config_default(mesh_breaker_config_t *cfg);

/** Initializes b for service (copied) with cfg (copied); on_transition may be NULL.
 * Returns 0, or -1 when cfg is invalid. */
int mesh_breaker_init(mesh_breaker_t *b, const char *service, const mesh_breaker_config_t *cfg,
                      mesh_breaker_on_transition_fn on_transition, void *ud);

/** Replaces the configuration of a live breaker (state and counters are kept). Returns 0/-1. */
int mesh_breaker_reconfigure(mesh_breaker_t *b, const mesh_breaker_config_t *cfg);

/** Asks whether a call may start now. On MESH_BREAKER_ALLOWED the permit is filled and the
 * caller must later hand it to mesh_breaker_done() exactly once. May move OPEN -> HALF_OPEN. */
mesh_breaker_decision_t mesh_breaker_allow(mesh_breaker_t *b, uint64_t now_ns,
                                           mesh_breaker_permit_t *permit);

/** Reports how an admitted call ended. May trip, close or reopen the breaker. */
void mesh_breaker_done(mesh_breaker_t *b, mesh_breaker_permit_t *permit,
                       mesh_breaker_outcome_t outcome, uint64_t now_ns);

/** Applies time-based transitions (OPEN -> HALF_OPEN) and returns the state at now_ns. */
mesh_breaker_state_t mesh_breaker_poll(mesh_breaker_t *b, uint64_t now_ns);

/** The state as of the last call (no time applied). */
mesh_breaker_state_t mesh_breaker_state(const mesh_breaker_t *b);

/** Calls currently admitted and not yet done. */
uint32_t mesh_breaker_in_flight(const mesh_breaker_t *b);

/** Calls and failures currently in the ratio window, as seen at now_ns. */
void mesh_breaker_window(const mesh_breaker_t *b, uint64_t now_ns, uint32_t *calls,
                         uint32_t *failures);

/** The name of a state: "closed", "open", "half-open". */
const char *mesh_breaker_state_name(mesh_breaker_state_t s);

/** Maps a gRPC status to an outcome: UNAVAILABLE, INTERNAL and DEADLINE_EXCEEDED are failures,
 * a negative value (connection error, no status) is a failure, anything else a success. */
mesh_breaker_outcome_t mesh_breaker_classify_grpc(int grpc_status);

/** Writes the grpc-message for a call rejected because the circuit is open:
 * "meshd: circuit open for <service>". Returns the length, or -1 if it did not fit. */
int mesh_breaker_format_open_message(const char *service, char *buf, size_t cap);

/** Writes the grpc-message for a rejection decision of b (open or concurrency cap).
 * Returns the length, or -1 if it did not fit. */
int mesh_breaker_reject_message(const mesh_breaker_t *b, mesh_breaker_decision_t d, char *buf,
                                size_t cap);

#endif
