/*
 * audit/event.h: one audit event and its versioned JSON record (docs/audit.md, "## Record";
 * the JSON Schema is docs/audit-event.schema.json).
 *
 * An event is a plain struct whose strings belong to the caller (nothing is copied); the
 * encoder writes its record into a caller buffer and allocates nothing, so the audit actor can
 * encode every event it takes from the workers' rings without touching the heap. A record is
 * one JSON object with a fixed key order:
 *
 *   {"schema":1,"event_id":"<32 hex boot id>-<16 hex seq>","ts":"2026-12-01T16:40:00.123456Z",
 *    "type":"breaker_open","outcome":"failure","reason":"...","node":"...","role":"...",
 *    "service":"...","method":"...","peer":{"address":"...","identity":"..."},
 *    "trace_id":"...","status":14, <the type's own fields>[, "truncated":true]}
 *
 * Common fields are always present (null when unknown); a type's own fields (instance, source,
 * member, ready, dropped) appear only in the records of the types that carry them.
 *
 * Strings: every string is valid UTF-8 JSON text. `"` and `\` are escaped, control characters
 * become \b \f \n \r \t or \u00XX, and every byte that does not begin a well-formed UTF-8
 * sequence (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF) is replaced by
 * U+FFFD, one per byte. Each string field has a cap on its JSON text (AUDIT_MAX_*, escapes
 * counted); a longer value is cut at a character boundary and the record carries
 * "truncated":true. With the caps a record never exceeds AUDIT_RECORD_MAX bytes.
 *
 * event_id: a context (audit_ctx_t) draws a boot id of 128 random bits from the OS once per
 * process start (getrandom), and hands out a per-boot sequence starting at 1. The id is
 * "<boot id, 32 lowercase hex>-<sequence, 16 lowercase hex>": unique across nodes (random
 * 128 bits) and restarts (a new boot id per start), and ordered by sequence within one boot.
 * The sequence is taken when an event is accepted (audit_ctx_next_seq) and stays with the
 * event, so a replayed or re-sent record keeps its id and consumers deduplicate by it.
 */
#ifndef AUDIT_EVENT_H
#define AUDIT_EVENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/** The record's "schema" version: bumped when a field changes meaning or type. */
#define AUDIT_SCHEMA_VERSION 1

/** A buffer of this size holds any record the encoder writes. */
#define AUDIT_RECORD_MAX 4096

/* Caps on each string field's JSON text in bytes (escapes counted, quotes not). */
#define AUDIT_MAX_REASON   1024
#define AUDIT_MAX_SERVICE  256
#define AUDIT_MAX_METHOD   256
#define AUDIT_MAX_ADDRESS  256 /* peer.address and instance */
#define AUDIT_MAX_IDENTITY 512
#define AUDIT_MAX_TRACE_ID 128
#define AUDIT_MAX_MEMBER   256
#define AUDIT_MAX_NODE     256 /* the context's node name: longer ones are refused */
#define AUDIT_MAX_ROLE     32  /* the context's role: longer ones are refused */

/** Length of an event_id: 32 hex, '-', 16 hex. */
#define AUDIT_EVENT_ID_LEN 49

/** Event types. The wire name is the enumerator's name in lower case without the prefix. */
typedef enum audit_type {
    AUDIT_BREAKER_OPEN = 1,
    AUDIT_BREAKER_HALF_OPEN,
    AUDIT_BREAKER_CLOSED,
    AUDIT_INSTANCE_REGISTERED,
    AUDIT_INSTANCE_REMOVED, /* with a source */
    AUDIT_MEMBER_DEAD,
    AUDIT_MEMBER_LEFT,
    AUDIT_READINESS_CHANGED,
    AUDIT_CONFIG_REJECTED,
    AUDIT_AUDIT_DROPPED, /* with a count */
    /* The policy chain's denials (outcome "denied"). */
    AUDIT_AUTHN_FAILURE,
    AUDIT_ACL_DENIED,
    AUDIT_RATE_LIMITED,
    AUDIT_SIGNATURE_INVALID,
    /* The monitor's verdicts (docs/monitor.md), with the instance. */
    AUDIT_MONITOR_EVICTION,      /* evicted from etcd: it stopped answering (failure) */
    AUDIT_MONITOR_READMITTED,    /* answering again: its eviction marker removed (success) */
    AUDIT_MONITOR_EVICTION_HELD, /* would be evicted, but a safety valve or a dry run held it
                                    (denied); instance may be null for a whole batch */
    /* A proxy's outlier ejection (transport/outlier_board.h), with the instance and service. */
    AUDIT_OUTLIER_EJECTED,  /* its calls kept failing: out of balancing for a while (failure) */
    AUDIT_OUTLIER_RETURNED, /* its probe call succeeded: back in full traffic (success) */
    /* A `routes:` block that injects faults was loaded (at start or a reload), one per rule, or
     * a reload turned fault injection off (success: the configuration is in force). */
    AUDIT_FAULT_INJECTION,
    /* The mesh CA (docs/mesh-ca.md): a certificate issued over POST /v1/ca/sign (success), or a
     * request refused: wrong token, a name the token does not allow, a bad CSR (denied). The
     * requested node goes in peer_identity as its SPIFFE ID, the caller in peer_address. */
    AUDIT_CERT_ISSUED,
    AUDIT_CERT_DENIED,
    /* A gossip member's signed record refused (docs/gossip.md, "Signed records"): denied. */
    AUDIT_GOSSIP_RECORD_REJECTED,
    AUDIT_TYPE_END /* one past the last type */
} audit_type_t;

/** Outcomes. AUDIT_OUTCOME_DEFAULT asks for the type's usual one (audit_type_outcome). */
typedef enum audit_outcome {
    AUDIT_OUTCOME_DEFAULT = 0,
    AUDIT_OUTCOME_SUCCESS,
    AUDIT_OUTCOME_FAILURE,
    AUDIT_OUTCOME_DENIED,
    AUDIT_OUTCOME_UNKNOWN,
    AUDIT_OUTCOME_END
} audit_outcome_t;

/** Who removed an instance (instance_removed). */
typedef enum audit_source {
    AUDIT_SOURCE_NONE = 0,
    AUDIT_SOURCE_ETCD,         /* its registration was deleted in etcd (deregistered) */
    AUDIT_SOURCE_GOSSIP,       /* its owner was declared dead or left the gossip mesh */
    AUDIT_SOURCE_MONITOR,      /* the monitor evicted it */
    AUDIT_SOURCE_LEASE_EXPIRY, /* its etcd lease expired */
    AUDIT_SOURCE_END
} audit_source_t;

/**
 * One event. Strings are NUL-terminated, belong to the caller and may be NULL (null in the
 * record), except where a type requires them (audit_event_problem). Zero-initialize, then set
 * what applies: `audit_event_t e = {.type = AUDIT_BREAKER_OPEN, .ts_us = ..., .seq = ...}`.
 */
typedef struct audit_event {
    audit_type_t type;
    audit_outcome_t outcome;   /* AUDIT_OUTCOME_DEFAULT: the type's usual outcome */
    int64_t ts_us;             /* when it happened: Unix time in microseconds, UTC */
    uint64_t seq;              /* event_id's sequence: audit_ctx_next_seq(), never 0 */
    const char *reason;        /* for people: why ("5 consecutive failures", "lease expired") */
    const char *service;       /* the gRPC service ("pkg.Svc"); also the Kafka key */
    const char *method;        /* the gRPC method ("Get"), when a call caused the event */
    const char *peer_address;  /* the remote side: "host:port" */
    const char *peer_identity; /* who it proved to be (a JWT subject, a SPIFFE ID) */
    const char *trace_id;
    bool has_status; /* whether status is set (0 is OK, a valid status) */
    int32_t status;  /* the gRPC status code the mesh answered or saw, 0..16 */

    /* The types' own fields (ignored for the other types). */
    const char *instance;  /* breaker_*, instance_*, monitor_*: the instance's "host:port"
                              (required by instance_registered, instance_removed,
                              monitor_eviction and monitor_readmitted) */
    audit_source_t source; /* instance_removed: required */
    const char *member;    /* member_dead, member_left, gossip_record_rejected: the gossip
                              member's name (required) */
    bool ready;            /* readiness_changed: the new state */
    uint64_t dropped;      /* audit_dropped: events dropped since the last report (>= 1) */
} audit_event_t;

/** What every record of one process shares: node, role and the event_id's boot id. */
typedef struct audit_ctx {
    uint8_t boot_id[16];
    char boot_hex[33];                  /* boot_id as 32 lowercase hex + NUL */
    char node_json[AUDIT_MAX_NODE + 3]; /* node as a JSON string, quotes included */
    char role_json[AUDIT_MAX_ROLE + 3]; /* role likewise */
    size_t node_len, role_len;
    _Atomic uint64_t seq; /* the last sequence handed out */
} audit_ctx_t;

/** Negative results of audit_event_encode. */
enum {
    AUDIT_E2BIG = -1,  /* the buffer is too small (a buffer of AUDIT_RECORD_MAX never is) */
    AUDIT_EINVAL = -2, /* the event is not valid: audit_event_problem() says why */
};

/**
 * Initializes ctx for a node (its name, non-empty) and role ("proxy", "sidecar", ...) with a
 * fresh boot id from getrandom(2). Returns 0, or -1 with the reason in err (an empty or too
 * long name or role, or no randomness from the OS).
 */
int audit_ctx_init(audit_ctx_t *ctx, const char *node, const char *role, char *err, size_t errlen);

/** Like audit_ctx_init with a given boot id (tests; a restored identity). */
int audit_ctx_init_with_boot_id(audit_ctx_t *ctx, const char *node, const char *role,
                                const uint8_t boot_id[16], char *err, size_t errlen);

/** The next event sequence (1, 2, ...); any thread may call it. */
uint64_t audit_ctx_next_seq(audit_ctx_t *ctx);

/** Formats the event_id of seq into out (AUDIT_EVENT_ID_LEN + 1 bytes, NUL-terminated). */
void audit_ctx_event_id(const audit_ctx_t *ctx, uint64_t seq, char *out);

/** The current time as Unix microseconds (CLOCK_REALTIME). */
int64_t audit_now_us(void);

/**
 * Writes ev's record (one JSON object, no newline) into buf[0..cap). Returns its length, and
 * writes a NUL after it when cap leaves room; AUDIT_E2BIG when cap is too small (buf then
 * holds nothing usable); AUDIT_EINVAL when the event is not valid. Allocates nothing; any
 * thread may encode with one context at a time.
 */
ssize_t audit_event_encode(const audit_ctx_t *ctx, const audit_event_t *ev, char *buf, size_t cap);

/** NULL when ev can be encoded, else what is wrong with it ("instance_removed needs a
 *  source"). */
const char *audit_event_problem(const audit_event_t *ev);

/** Wire names ("breaker_open", "failure", "lease_expiry"); NULL for values out of range. */
const char *audit_type_name(audit_type_t type);
const char *audit_outcome_name(audit_outcome_t outcome);
const char *audit_source_name(audit_source_t source);

/** Parses a wire name; 0 (not a value) when unknown. */
audit_type_t audit_type_parse(const char *name);

/** The outcome a record of ev gets: ev->outcome, or the type's usual one when it is
 *  AUDIT_OUTCOME_DEFAULT (see docs/audit.md: failure for breaker_open, member_dead, ...). */
audit_outcome_t audit_event_outcome(const audit_event_t *ev);

#endif
