/*
 * registry/etcd_codec.h: the etcd v3 JSON gateway's wire format, without I/O.
 *
 * Base64 for keys and values, the range_end of a prefix, request bodies, and decoders for
 * the responses etcd 3.4 sends: int64 fields come as JSON strings (numbers are accepted too),
 * fields holding their default value are left out (no "kvs" when nothing matched, no "type"
 * on PUT events, no "TTL" on a keepalive of an expired lease), streaming answers are wrapped
 * in {"result":...}, and errors come as {"error":..,"code":..,"message":..}.
 */
#ifndef ETCD_CODEC_H
#define ETCD_CODEC_H

#include <stddef.h>
#include <stdint.h>

/** gRPC status codes etcd uses in its error objects. */
enum {
    ETCD_CODE_OK = 0,
    ETCD_CODE_INVALID_ARGUMENT = 3,
    ETCD_CODE_NOT_FOUND = 5,
    ETCD_CODE_PERMISSION_DENIED = 7,
    ETCD_CODE_FAILED_PRECONDITION = 9,
    ETCD_CODE_OUT_OF_RANGE = 11,
    ETCD_CODE_UNAVAILABLE = 14,
    ETCD_CODE_UNAUTHENTICATED = 16,
};

/** An error object from etcd; code 0 and an empty message when there was none. */
typedef struct etcd_error {
    int code;
    char message[192];
} etcd_error_t;

/** One key-value pair; key and value point into the decoder's scratch buffer. */
typedef struct etcd_kv {
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
    int64_t create_revision;
    int64_t mod_revision;
    int64_t version;
    int64_t lease;
} etcd_kv_t;

/** Kind of a watch event (etcd leaves "type" out for PUT). */
typedef enum {
    ETCD_EVENT_PUT = 0,
    ETCD_EVENT_DELETE = 1,
} etcd_event_type_t;

/** One watch event. prev_kv is filled when has_prev is set. */
typedef struct etcd_event {
    etcd_event_type_t type;
    etcd_kv_t kv;
    int has_prev;
    etcd_kv_t prev_kv;
} etcd_event_t;

/** What a range answer said besides its key-value pairs. */
typedef struct etcd_range_info {
    int64_t revision; /* header.revision: the store revision the range was served at */
    int64_t count;
    int more;
    etcd_error_t err;
} etcd_range_info_t;

/** What one line of a watch stream said besides its events. */
typedef struct etcd_watch_info {
    int64_t revision; /* header.revision */
    int64_t watch_id;
    int created;
    int canceled;
    int64_t compact_revision; /* nonzero: the requested start revision was compacted */
    int n_events;             /* 0 with neither created nor canceled: a progress notification */
    char cancel_reason[128];
    etcd_error_t err;
} etcd_watch_info_t;

/** A lease grant / keepalive / timetolive answer. ttl <= 0 means the lease is gone. */
typedef struct etcd_lease_info {
    int64_t id;
    int64_t ttl;
    int64_t revision;
    etcd_error_t err;
} etcd_lease_info_t;

/** What a txn comparison looks at. */
typedef enum {
    ETCD_CMP_VERSION = 0, /* the key's version (0: the key does not exist) */
    ETCD_CMP_CREATE = 1,  /* create_revision */
    ETCD_CMP_MOD = 2,     /* mod_revision */
    ETCD_CMP_LEASE = 3,   /* the lease the key is attached to (0: none) */
} etcd_cmp_target_t;

/** How a comparison compares. */
typedef enum {
    ETCD_CMP_EQUAL = 0,
    ETCD_CMP_GREATER = 1,
    ETCD_CMP_LESS = 2,
    ETCD_CMP_NOT_EQUAL = 3,
} etcd_cmp_result_t;

/** One comparison of a txn: target(key) result value. */
typedef struct etcd_cmp {
    const char *key;
    etcd_cmp_target_t target;
    etcd_cmp_result_t result;
    int64_t value;
} etcd_cmp_t;

/** Kinds of txn operations. */
typedef enum {
    ETCD_OP_PUT = 0,
    ETCD_OP_DELETE = 1, /* the key, or every key under it with prefix */
    ETCD_OP_RANGE = 2,  /* the key, or every key under it with prefix */
} etcd_op_kind_t;

/** One operation of a txn branch. */
typedef struct etcd_op {
    etcd_op_kind_t kind;
    const char *key;
    const char *value; /* PUT */
    size_t value_len;
    int64_t lease; /* PUT: 0 for none */
    int prefix;    /* DELETE / RANGE */
} etcd_op_t;

/** Called for each key-value pair of a range answer; return nonzero to stop. */
typedef int (*etcd_kv_cb)(void *ud, const etcd_kv_t *kv);

/** Called for each event of a watch line; return nonzero to stop. */
typedef int (*etcd_event_cb)(void *ud, const etcd_event_t *ev);

/**
 * Scratch space reused across decodes so that decoding allocates no buffer per key (jansson
 * still allocates its tree).
 */
typedef struct etcd_decoder {
    char *buf;
    size_t cap;
} etcd_decoder_t;

/** Number of characters base64 needs for n bytes (without the NUL). */
size_t etcd_b64_len(size_t n);

/** Encodes n bytes as standard padded base64 into out (etcd_b64_len(n) + 1 bytes). */
void etcd_b64_encode(const void *in, size_t n, char *out);

/**
 * Decodes base64 (padded or not) into out, which holds at least len*3/4+3 bytes; a NUL is
 * appended (not counted). Returns the decoded length, or -1 on invalid input.
 */
long etcd_b64_decode(const char *in, size_t len, char *out);

/**
 * Writes the range_end that selects every key starting with prefix (the prefix with its last
 * byte below 0xff incremented, or "\0" for all keys) into out (len+1 bytes); returns its length.
 */
size_t etcd_prefix_end(const char *prefix, size_t len, char *out);

/** Initializes an empty decoder. */
void etcd_decoder_init(etcd_decoder_t *d);

/** Frees a decoder's buffer. */
void etcd_decoder_destroy(etcd_decoder_t *d);

/**
 * Decodes an error body ({"error":..,"code":..,"message":..}, possibly wrapped as
 * {"error":{"grpc_code":..,"message":..}} in streams). Returns 1 when body is an error, 0 when
 * it is not, -1 when it is not JSON.
 */
int etcd_decode_error(const char *body, size_t len, etcd_error_t *err);

/** Decodes a range answer, calling cb per pair. Returns 0, or -1 on malformed JSON/base64. */
int etcd_decode_range(etcd_decoder_t *d, const char *body, size_t len, etcd_range_info_t *info,
                      etcd_kv_cb cb, void *ud);

/** Decodes one line of a watch stream, calling cb per event. Returns 0 or -1 (malformed). */
int etcd_decode_watch(etcd_decoder_t *d, const char *line, size_t len, etcd_watch_info_t *info,
                      etcd_event_cb cb, void *ud);

/** Decodes a lease grant, keepalive or timetolive answer. Returns 0 or -1 (malformed). */
int etcd_decode_lease(const char *body, size_t len, etcd_lease_info_t *info);

/**
 * Decodes the header of a put / deleterange / txn answer: *revision, and for a txn
 * *succeeded (may be NULL). Returns 0, 1 when the body is an error (err filled), -1 malformed.
 */
int etcd_decode_header(const char *body, size_t len, int64_t *revision, int *succeeded,
                       etcd_error_t *err);

/**
 * Decodes a txn answer: *revision, *succeeded, err (when etcd answered an error), and cb for
 * every key-value pair of its range responses. Returns 0, 1 when the body is an error, -1 when
 * malformed.
 */
int etcd_decode_txn(etcd_decoder_t *d, const char *body, size_t len, int64_t *revision,
                    int *succeeded, etcd_error_t *err, etcd_kv_cb cb, void *ud);

/** Body of a txn request (malloc'd): compares, then the success and failure branches. */
char *etcd_req_txn(const etcd_cmp_t *cmps, size_t n_cmps, const etcd_op_t *success,
                   size_t n_success, const etcd_op_t *failure, size_t n_failure);

/** Body of a range request of one key, or of every key under it with prefix (malloc'd). */
char *etcd_req_range(const char *key, int prefix);

/** Body of a prefix range request (malloc'd): {"key":..,"range_end":..}. */
char *etcd_req_range_prefix(const char *prefix);

/** Body of a put request (malloc'd); lease 0 means none. */
char *etcd_req_put(const char *key, const char *value, size_t value_len, int64_t lease);

/** Body of a single-key deleterange request (malloc'd). */
char *etcd_req_delete(const char *key);

/** Body of a lease grant request (malloc'd). */
char *etcd_req_lease_grant(int64_t ttl);

/** Body of a keepalive / revoke / timetolive request (malloc'd): {"ID":"<id>"}. */
char *etcd_req_lease_id(int64_t id);

/**
 * Body of a watch create request for a prefix starting at start_revision (0: now), with
 * prev_kv and progress notifications (malloc'd).
 */
char *etcd_req_watch_prefix(const char *prefix, int64_t start_revision);

#endif
