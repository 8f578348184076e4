/*
 * registry/etcd_api.h: the registry's seam to etcd, at the level of etcd's own requests.
 *
 * Control actors (the registry actor) never see HTTP, JSON or sockets: they submit requests
 * (range, txn with compares, lease grant / keepalive / revoke, watch) tagged with a number of
 * their choosing, and every answer comes back as one decoded etcd_result_t through the owner's
 * deliver callback (a watch delivers one result per line, then one with `closed` set). Two
 * implementations sit behind the table of operations:
 *
 *   - registry/etcd_api_curl.c: production, the JSON gateway over registry/etcd_client.h
 *     (libcurl on the actor's libuv loop: endpoint failover, auth, TLS);
 *   - simulations/sim_etcd_api.c: the simulated etcd of the deterministic simulations, with
 *     latency, loss of streams, partitions and data loss drawn from the simulator's seed.
 *
 * The owner turns each delivered result into an actor message, so the actor's state changes
 * only in its message handler and the simulator feeds it exactly what production feeds it.
 * Results are heap objects owned by whoever holds them; free with etcd_result_free.
 */
#ifndef ETCD_API_H
#define ETCD_API_H

#include <stddef.h>
#include <stdint.h>

#include "registry/etcd_codec.h"

/** Outcomes (etcd_result_t.err); same values as registry/etcd_client.h's ETCD_* codes. */
enum {
    ETCD_API_OK = 0,
    ETCD_API_ERR_NOMEM = -1,
    ETCD_API_ERR_UNAVAILABLE = -2, /* no endpoint answered */
    ETCD_API_ERR_TIMEOUT = -3,     /* the request timed out on every endpoint tried */
    ETCD_API_ERR_SERVER = -4,      /* etcd answered with an error (result.server says which) */
    ETCD_API_ERR_AUTH = -5,        /* authentication failed */
    ETCD_API_ERR_CLOSED = -6,      /* a watch stream ended */
    ETCD_API_ERR_MALFORMED = -7,   /* etcd's answer could not be decoded */
};

/** The requests. */
typedef enum {
    ETCD_CALL_RANGE = 0,
    ETCD_CALL_TXN = 1,
    ETCD_CALL_LEASE_GRANT = 2,
    ETCD_CALL_LEASE_KEEPALIVE = 3,
    ETCD_CALL_LEASE_REVOKE = 4,
    ETCD_CALL_WATCH = 5,
} etcd_call_t;

/** A request; everything it points to is copied by submit. */
typedef struct etcd_request {
    etcd_call_t call;
    uint64_t tag;           /* echoed in every result of this request */
    const char *key;        /* RANGE, WATCH */
    int prefix;             /* RANGE, WATCH: every key starting with key */
    int64_t start_revision; /* WATCH: 0 = from now */
    int64_t lease;          /* KEEPALIVE, REVOKE: the lease id */
    int64_t ttl_s;          /* GRANT */
    const etcd_cmp_t *cmps; /* TXN */
    size_t n_cmps;
    const etcd_op_t *success; /* TXN: run when every comparison holds */
    size_t n_success;
    const etcd_op_t *failure; /* TXN: run otherwise */
    size_t n_failure;
} etcd_request_t;

/** One key-value pair of a result (key and value NUL-terminated; keys may hold NUL bytes). */
typedef struct etcd_api_kv {
    char *key;
    size_t key_len;
    char *value;
    size_t value_len;
    int64_t create_revision;
    int64_t mod_revision;
    int64_t version;
    int64_t lease;
} etcd_api_kv_t;

/** One watch event. */
typedef struct etcd_api_event {
    int is_delete;
    etcd_api_kv_t kv;
} etcd_api_event_t;

/** One answer (a unary request's only one, or one line of a watch). */
typedef struct etcd_result {
    etcd_call_t call;
    uint64_t tag;
    int err;             /* ETCD_API_OK or ETCD_API_ERR_* */
    etcd_error_t server; /* err == ETCD_API_ERR_SERVER: etcd's code and message */
    int64_t revision;    /* header revision */
    uint64_t origin;     /* the implementation's annotation of who served it (the simulator:
                            the store's epoch); the view keeps it for checkers */
    /* RANGE, and the RANGE ops of a TXN */
    etcd_api_kv_t *kvs;
    size_t n_kvs;
    int more;
    /* TXN */
    int succeeded;
    /* LEASE_*: ttl <= 0 means the lease is gone */
    int64_t lease;
    int64_t ttl_s;
    /* WATCH: one line; closed = the stream ended (err says why) and nothing else is set */
    int closed;
    int created;
    int canceled;
    int progress; /* no events, neither created nor canceled */
    int64_t compact_revision;
    char cancel_reason[128];
    etcd_api_event_t *events;
    size_t n_events;
} etcd_result_t;

typedef struct etcd_api etcd_api_t;

/** Receives every result (the callee owns it). Called on the owner's loop, never from inside
 *  submit or cancel. */
typedef void (*etcd_deliver_fn)(void *ud, etcd_result_t *res);

/** The implementation's operations. */
typedef struct etcd_api_ops {
    /** Starts a request; its results arrive later through deliver. 0, or -1 when it cannot
     *  even be queued (then no result arrives). */
    int (*submit)(etcd_api_t *api, const etcd_request_t *req);
    /** Cancels the request(s) with this tag: no result of theirs is delivered any more. */
    void (*cancel)(etcd_api_t *api, uint64_t tag);
    /** The endpoint requests go to now (for logs). */
    const char *(*endpoint)(etcd_api_t *api);
    /** Cancels everything and frees the implementation. */
    void (*free)(etcd_api_t *api);
    /** Who etcd sees us as, for logs ("user cart", "the client certificate F"); NULL (or a
     *  NULL operation): no authentication. */
    const char *(*principal)(etcd_api_t *api);
} etcd_api_ops_t;

/** The seam: implementations embed this first. */
struct etcd_api {
    const etcd_api_ops_t *ops;
    etcd_deliver_fn deliver;
    void *ud;
};

/** Submits a request (see etcd_api_ops_t.submit). */
static inline int etcd_api_submit(etcd_api_t *api, const etcd_request_t *req)
{
    return api->ops->submit(api, req);
}

/** Cancels a tag's request(s). */
static inline void etcd_api_cancel(etcd_api_t *api, uint64_t tag)
{
    api->ops->cancel(api, tag);
}

/** The current endpoint, for logs. */
static inline const char *etcd_api_endpoint(etcd_api_t *api)
{
    return api->ops->endpoint(api);
}

/** Who etcd sees us as (for logs): never NULL ("no etcd user" without authentication). */
static inline const char *etcd_api_principal(etcd_api_t *api)
{
    const char *p = api->ops->principal ? api->ops->principal(api) : NULL;
    return p ? p : "no etcd user";
}

/** Whether a failed result is etcd's "permission denied" (RBAC: the user lacks the role). */
static inline int etcd_result_denied(const etcd_result_t *res)
{
    return res->err == ETCD_API_ERR_SERVER && res->server.code == ETCD_CODE_PERMISSION_DENIED;
}

/** Frees an implementation (NULL is ignored). */
static inline void etcd_api_free(etcd_api_t *api)
{
    if (api)
        api->ops->free(api);
}

/** A new empty result for a request (NULL on out of memory). */
etcd_result_t *etcd_result_new(etcd_call_t call, uint64_t tag);

/** Appends a copy of one key-value pair to res->kvs. 0 or -1. */
int etcd_result_add_kv(etcd_result_t *res, const char *key, size_t klen, const char *val,
                       size_t vlen, int64_t create_rev, int64_t mod_rev, int64_t version,
                       int64_t lease);

/** Appends a copy of one watch event to res->events. 0 or -1. */
int etcd_result_add_event(etcd_result_t *res, int is_delete, const char *key, size_t klen,
                          const char *val, size_t vlen, int64_t create_rev, int64_t mod_rev,
                          int64_t version, int64_t lease);

/** Frees a result and everything it holds (NULL is ignored). */
void etcd_result_free(etcd_result_t *res);

/** Frees a result given as void * (a message's pointer payload destructor). */
void etcd_result_free_ptr(void *res);

/** Whether a failed result means the lease it was about does not exist in etcd. */
int etcd_result_lease_gone(const etcd_result_t *res);

/** Name of an outcome, for logs. */
const char *etcd_api_strerror(int err);

/** Settings of the production implementation (strings are copied). */
typedef struct etcd_api_curl_cfg {
    const char *const *endpoints; /* URLs, n_endpoints of them */
    size_t n_endpoints;
    const char *username; /* NULL: no authentication */
    const char *password;
    const char *ca_file;
    const char *cert_file;
    const char *key_file;
    uint32_t request_timeout_ms; /* default 5000 */
    uint32_t connect_timeout_ms; /* default 1000 */
} etcd_api_curl_cfg_t;

struct uv_loop_s;

/** The production implementation on a libuv loop (registry/etcd_api_curl.c). NULL on bad
 *  settings (no endpoint) or out of memory. */
etcd_api_t *etcd_api_curl_new(struct uv_loop_s *loop, const etcd_api_curl_cfg_t *cfg,
                              etcd_deliver_fn deliver, void *ud);

#endif
