/*
 * policy/trace.h: trace context of a call: W3C Trace Context (`traceparent`, `tracestate`) and
 * `x-request-id`, reused when the caller sent valid ones and created otherwise.
 *
 * Sans-I/O and allocation-free: the parsers read header values (pointer and length, not
 * NUL-terminated) and everything is written into fixed buffers of the caller's pol_trace_t.
 * New IDs come from a per-thread PRNG (xoshiro256**) seeded once per thread from getrandom():
 * no system call per ID. IDs only need to be unique, not secret.
 *
 * Per call (meshd is one hop of the trace):
 *     pol_trace_t t;
 *     pol_trace_begin(&t, tp, tp_len, ts, ts_len, rid, rid_len, flags, create_rid);
 *                                                                (NULL, 0 when absent)
 *     upstream headers: traceparent = t.traceparent, tracestate = t.tracestate (when
 *     t.tracestate_len > 0), x-request-id = t.request_id (when not empty); logs carry
 *     t.trace_id.
 *
 * The trace ID of a call is the traceparent's trace-id: reused when present, else created.
 * x-request-id (an Envoy convention, not a standard) is passed on when the caller sent a valid
 * one, and created only when asked (`trace: {request-id: create}`): a new value on every call
 * costs the proxy about 1,600 instructions (a UUID made, Huffman-coded and sent) and the
 * upstream its decoding, for an ID the traceparent already carries.
 *
 * traceparent (https://www.w3.org/TR/trace-context/): `VV-<32 hex trace-id>-<16 hex
 * parent-id>-<2 hex flags>`, lowercase hex only. Version 00 is exactly 55 characters; a later
 * version (not ff) is parsed from its first 55 characters, and anything after them must start
 * with '-'. All-zero trace-id or parent-id is invalid. When valid, the trace-id and the sampled
 * flag are kept and the upstream receives a new parent-id (our span); otherwise a new trace
 * starts. The upstream always receives version 00.
 */
#ifndef POL_TRACE_H
#define POL_TRACE_H

#include <stddef.h>
#include <stdint.h>

/** Characters of a version-00 traceparent. */
#define POL_TRACEPARENT_LEN 55
/** Longest tracestate passed on (longer ones are dropped). */
#define POL_TRACESTATE_MAX 512
/** Most list-members of a tracestate passed on. */
#define POL_TRACESTATE_MEMBERS_MAX 32
/** Longest x-request-id reused (longer ones are replaced). */
#define POL_REQUEST_ID_MAX 128
/** Characters of a generated x-request-id (a UUID version 4). */
#define POL_UUID_LEN 36

/** The sampled flag of trace-flags. */
#define POL_TRACE_FLAG_SAMPLED 0x01

/** A parsed traceparent. */
typedef struct pol_traceparent {
    uint8_t version;
    uint8_t trace_id[16];
    uint8_t parent_id[8];
    uint8_t flags;
} pol_traceparent_t;

/** The trace context of one call, as meshd forwards it. */
typedef struct pol_trace {
    uint8_t trace_id[16];
    uint8_t span_id[8];   /* our hop: the parent-id the upstream receives */
    uint8_t parent_id[8]; /* the caller's span (all zero when the trace started here) */
    uint8_t flags;        /* trace-flags sent upstream */
    int trace_reused;     /* 1 when the caller's traceparent was valid */
    int tracestate_kept;  /* 1 when the caller's tracestate is passed on */
    int request_id_reused;
    char trace_id_hex[33];                     /* for log lines and audit events */
    char traceparent[POL_TRACEPARENT_LEN + 1]; /* the value sent upstream */
    char tracestate[POL_TRACESTATE_MAX + 1];   /* empty when absent or dropped */
    size_t tracestate_len;
    char request_id[POL_REQUEST_ID_MAX + 1]; /* the x-request-id sent upstream ("": none) */
} pol_trace_t;

/** Parses a traceparent value. 0 when valid (out filled), -1 when not. */
int pol_traceparent_parse(const char *s, size_t len, pol_traceparent_t *out);

/** Formats tp as a version-00 traceparent into out (POL_TRACEPARENT_LEN + 1 bytes). */
void pol_traceparent_format(const pol_traceparent_t *tp, char *out);

/**
 * Whether a tracestate value is passed on: at most POL_TRACESTATE_MAX bytes, at most
 * POL_TRACESTATE_MEMBERS_MAX comma-separated list-members `key=value` (W3C keys: lowercase
 * `a-z0-9_-*\/`, or `tenant@system`; values printable ASCII without ',' and '=', not ending in a
 * space), empty members and spaces around commas allowed, no key twice, at least one member.
 * 1 or 0.
 */
int pol_tracestate_valid(const char *s, size_t len);

/** Whether an x-request-id is reused: 1..POL_REQUEST_ID_MAX bytes of printable ASCII without
 *  spaces (0x21..0x7e). 1 or 0. */
int pol_request_id_valid(const char *s, size_t len);

/** n random bytes from the calling thread's PRNG (not for secrets). */
void pol_trace_random(void *buf, size_t n);

/** A new random UUID version 4 (lowercase, with dashes) into out (POL_UUID_LEN + 1 bytes). */
void pol_uuid4(char *out);

/**
 * Fills t for a call from the caller's headers (each pointer NULL or length 0 when absent):
 * reuses a valid traceparent's trace-id and sampled flag with a new span id, or starts a trace
 * (flags new_flags, e.g. POL_TRACE_FLAG_SAMPLED); keeps a valid tracestate only when the
 * traceparent was reused (the spec drops tracestate with an invalid traceparent); reuses a
 * valid x-request-id, or creates a UUID when create_request_id is set, else leaves
 * t->request_id empty. Never fails.
 */
void pol_trace_begin(pol_trace_t *t, const char *traceparent, size_t tp_len, const char *tracestate,
                     size_t ts_len, const char *request_id, size_t rid_len, uint8_t new_flags,
                     int create_request_id);

#endif
