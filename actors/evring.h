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

/** MESH_EV_BREAKER's own fields (in place of text): structured, so the consumer (the log line,
 *  the audit record) needs no parsing. */
typedef struct mesh_ev_breaker {
    /** The breaker's upstream ("host:port"): a string that outlives the node's run (the
     *  consumer reads it later, on the control loop), never copied per event. */
    const char *instance;
    uint8_t from, to; /* the states left and entered: MESH_EV_BREAKER_CLOSED, ... */
    char reason[86];  /* why, NUL-terminated; the breaker's reasons fit (cut to fit otherwise) */
} mesh_ev_breaker_t;

/** Breaker states in mesh_ev_breaker_t (policy/breaker.h's values, checked there). */
enum { MESH_EV_BREAKER_CLOSED = 0, MESH_EV_BREAKER_OPEN = 1, MESH_EV_BREAKER_HALF_OPEN = 2 };

/** MESH_EV_STATS's own fields: the worker's connection figures (counters as deltas since the
 *  last report, like a, b, c; gauges as they are now). */
typedef struct mesh_ev_stats {
    uint64_t upstream_conns;         /* upstream connections opened (delta) */
    uint64_t client_conns;           /* client connections accepted (delta) */
    uint64_t upstream_conns_open;    /* gauge */
    uint64_t endpoints;              /* gauge: upstream endpoints held */
    uint64_t fe_req_buffered;        /* gauge: request bytes the gateway front end holds */
    uint64_t retry_budget_exhausted; /* retries the retry budget refused (delta) */
    uint64_t faults_aborted;         /* calls answered with an injected status (delta) */
    uint64_t faults_delayed;         /* calls held by an injected delay (delta) */
    uint64_t hedges;                 /* hedged attempts started (delta) */
} mesh_ev_stats_t;

/** A call the policy chain refused (MESH_EV_POLICY): everything its audit record needs,
 *  truncated to fit. */
typedef struct mesh_ev_policy {
    uint8_t kind;   /* MESH_EV_POLICY_*: which filter refused */
    uint8_t status; /* the gRPC status answered */
    char peer[48];  /* the client, "host:port" */
    char trace_id[33];
    char service[80];
    char method[48];
    char identity[64]; /* who it proved to be, "" when nobody */
    char reason[72];
} mesh_ev_policy_t;

/** Filters in mesh_ev_policy_t.kind. */
enum {
    MESH_EV_POLICY_AUTHN = 1,
    MESH_EV_POLICY_SIGNATURE = 2,
    MESH_EV_POLICY_ACL = 3,
    MESH_EV_POLICY_RATELIMIT = 4,
};

/** MESH_EV_OUTLIER's own fields: an upstream instance ejected, returned, or held back by the
 *  max ejection percent (transport/outlier_board.h; told once, by the worker whose call caused
 *  it). Strings NUL-terminated, truncated to fit. */
typedef struct mesh_ev_outlier {
    uint8_t effect;      /* MESH_EV_OUTLIER_EJECTED, _RETURNED, _HELD_BACK */
    uint64_t ejected_ms; /* for EJECTED: how long */
    char instance[64];   /* "host:port" */
    char service[128];
    char reason[120];
} mesh_ev_outlier_t;

/** Effects in mesh_ev_outlier_t. */
enum { MESH_EV_OUTLIER_EJECTED = 1, MESH_EV_OUTLIER_RETURNED = 2, MESH_EV_OUTLIER_HELD_BACK = 3 };

/** One event (384 bytes). */
typedef struct mesh_event {
    uint32_t type;   /* MESH_EV_* or a module's own type */
    uint32_t worker; /* the producer's worker index */
    uint64_t a, b, c;
    union {
        char text[96];             /* NUL-terminated, truncated to fit */
        mesh_ev_breaker_t breaker; /* MESH_EV_BREAKER */
        mesh_ev_policy_t policy;   /* MESH_EV_POLICY */
        mesh_ev_stats_t stats;     /* MESH_EV_STATS */
        mesh_ev_outlier_t outlier; /* MESH_EV_OUTLIER */
        char pad[352];
    };
} mesh_event_t;

/** Event types of the runtime and the node. */
enum {
    MESH_EV_STATS = 1,   /* a = calls, b = calls the mesh failed, c = retries (since the last);
                            connections in .stats */
    MESH_EV_BREAKER = 2, /* a = 1 when the circuit opened; c = when, Unix time in microseconds;
                            the transition in .breaker */
    MESH_EV_POLICY = 3,  /* a call refused: c = when, Unix time in microseconds; a = refusals
                            of this worker not reported before this one (rate-limited away);
                            the call in .policy */
    MESH_EV_CALLS = 4,   /* a = a pointer to a snapshot of the worker's per-call table
                            (transport/call_stats.h), which the consumer takes over (free()) */
    MESH_EV_OUTLIER = 5, /* an outlier ejection's effect: c = when, Unix time in microseconds;
                            the rest in .outlier */
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

/** Producer: makes r the calling thread's ring (a worker sets its own at start; NULL unsets),
 *  so code deep in the data plane can report without knowing which worker it runs on. */
void mesh_evring_set_current(mesh_evring_t *r);

/** Producer: pushes a copy of e to the calling thread's ring (e->worker is left as it is).
 *  Returns 0, or -1 when the thread has no ring (the caller reports the event itself); a full
 *  ring counts the drop and returns 0 (the consumer reports it). */
int mesh_evring_push_current(const mesh_event_t *e);

/**
 * Producer: pushes an event of type with a, b and a printf-formatted text to the calling
 * thread's ring. Returns 0, or -1 when the thread has no ring (the caller reports the event
 * itself, e.g. logs it) or the ring is full (counted as dropped and reported by the consumer).
 */
int mesh_evring_emit(uint32_t type, uint64_t a, uint64_t b, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
