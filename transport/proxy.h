/*
 * transport/proxy.h: the per-worker gRPC proxy engine.
 *
 * meshd runs N worker threads, each with its own uv loop; the lead creates one proxy worker
 * per loop. A worker binds its own SO_REUSEPORT listener, terminates HTTP/2 from clients,
 * routes each call by :path through the current routing table (round robin per worker over
 * the service's instances) and forwards it over a multiplexed upstream connection pool that
 * belongs to this worker alone. A call never leaves its worker, so nothing on the hot path
 * takes a lock. Every function here must be called on the worker's loop thread.
 */
#ifndef MESH_PROXY_H
#define MESH_PROXY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "registry/route_table.h"

/** The final status passed to a filter's on_done when the call failed to reach the upstream
 * (connect failure, lost connection, no live instance). */
#define MESH_PROXY_STATUS_CONN_ERROR (-1)
/** The final status passed to on_done when the call ended without a verdict (client cancel). */
#define MESH_PROXY_STATUS_NONE (-2)

/** A call, as filters see it (the engine's call object; valid until the filter's on_done). */
typedef struct pxy_stream mesh_proxy_call_t;

/** What a filter sees of a call; the strings point into the call and are valid during on_call
 * only (a filter that sets headers may move them: read again with the accessors below). */
typedef struct mesh_proxy_call_info {
    const char *path; /* ":path", "/pkg.Svc/Method" (not NUL-terminated) */
    size_t path_len;
    const char *service; /* "pkg.Svc", from the path (not NUL-terminated; may be empty) */
    size_t service_len;
    const char *method; /* "Method", from the path (not NUL-terminated; may be empty) */
    size_t method_len;
    const char *authority; /* ":authority" or NULL */
    size_t authority_len;
    const struct sockaddr *peer; /* the client's address (the TCP peer) */
    int worker_index;
    mesh_proxy_call_t *call; /* for the accessors below and mesh_proxy_call_resume() */
} mesh_proxy_call_info_t;

/** A filter's rejection: the call is answered with this gRPC status and grpc-message, and
 * with one more trailer when meta_name is set (e.g. "retry-after-ms"). */
typedef struct mesh_proxy_verdict {
    int grpc_status;
    char message[200];
    char meta_name[32];
    char meta_value[64];
} mesh_proxy_verdict_t;

/** on_call's answers. PENDING: the filter finishes later with mesh_proxy_call_resume() on the
 * worker's thread; the call waits (its request bytes are buffered, its deadline runs). */
enum { MESH_PROXY_ACCEPT = 0, MESH_PROXY_REJECT = 1, MESH_PROXY_PENDING = 2 };

/**
 * A per-call filter: the hook the policy chain (trace ids, JWT, ACLs, rate limits, the
 * circuit breaker) plugs into. on_call runs on the worker thread for every call once its
 * request headers are checked (content-type, POST, :path) and before it is routed; it returns
 * MESH_PROXY_ACCEPT (and may keep per-call state in *call_token, e.g. a packed permit),
 * MESH_PROXY_REJECT with *out filled, or MESH_PROXY_PENDING (then it calls
 * mesh_proxy_call_resume() later, once). on_done (may be NULL) runs exactly once for every
 * call whose on_call accepted or went pending, when the call object is released, with the
 * call's final gRPC status: the upstream's grpc-status, the mesh's own error status,
 * MESH_PROXY_STATUS_CONN_ERROR or MESH_PROXY_STATUS_NONE; a filter still pending then must
 * drop its work and never resume. Filters run in the order added; when one rejects, the ones
 * before it get on_done with the rejection's status. The engine allocates nothing for them.
 */
typedef struct mesh_proxy_filter {
    void *ctx;
    int (*on_call)(void *ctx, const mesh_proxy_call_info_t *info, mesh_proxy_verdict_t *out,
                   void **call_token);
    void (*on_done)(void *ctx, void *call_token, int grpc_status);
} mesh_proxy_filter_t;

/* ---- what a filter can do with a call (worker thread, until on_done) ---------------------- */

/** The value of the first request field called name (lower case), or NULL. */
const char *mesh_proxy_call_header(const mesh_proxy_call_t *c, const char *name, size_t *len);

/** The i-th request field: 1 with name and value set, 0 for a removed field, -1 past the end. */
int mesh_proxy_call_header_at(const mesh_proxy_call_t *c, size_t i, const char **name,
                              size_t *name_len, const char **value, size_t *value_len);

/** Sets request field name (lower case) to value for the upstream, replacing every field of
 * that name. Pseudo-fields, content-type, te and grpc-timeout cannot be set, nor a name that is
 * not a lower-case token or a value with a control character other than HTAB: -1 (also when
 * out of memory or over the header size limit). */
int mesh_proxy_call_set_header(mesh_proxy_call_t *c, const char *name, const char *value,
                               size_t value_len);

/** mesh_proxy_call_set_header for a field meshd sets on every call (the trace context):
 * name_len bytes of a literal name the caller knows may be set, and a value the caller made or
 * validated under stricter rules (printable ASCII), so neither is checked again; debug builds
 * assert both. */
int mesh_proxy_call_set_own_header(mesh_proxy_call_t *c, const char *name, size_t name_len,
                                   const char *value, size_t value_len);

/** mesh_proxy_call_set_own_header for a field the request does not have (the caller looked:
 * policy/chain.c's one pass over the fields found none), appended without looking for fields
 * to replace. */
int mesh_proxy_call_add_own_header(mesh_proxy_call_t *c, const char *name, size_t name_len,
                                   const char *value, size_t value_len);

/** Removes every request field called name; returns how many. */
int mesh_proxy_call_remove_header(mesh_proxy_call_t *c, const char *name);

/** The client's address (the TCP peer). */
const struct sockaddr *mesh_proxy_call_peer(const mesh_proxy_call_t *c);

struct mesh_peer_id;

/** What the client's certificate proved (common/peer_id.h): read once per TLS connection when
 *  the handshake completed with a client certificate that verified and names a meshd node;
 *  NULL otherwise (h2c, no certificate, none of ours, a front end that is not HTTP/2). Valid
 *  like the peer address, while the client holds the call. */
const struct mesh_peer_id *mesh_proxy_call_peer_identity(const mesh_proxy_call_t *c);

/** What the client of any call proved with its certificate: the HTTP/2 listener's
 *  (mesh_proxy_call_peer_identity), or, for a call a front end started (the gateway's
 *  HTTP/JSON listener, transport/proxy_call.h), the one its downstream interface reports;
 *  NULL when nothing. Valid while the client holds the call. The policy chain reads this. */
const struct mesh_peer_id *mesh_proxy_call_client_identity(const mesh_proxy_call_t *c);

/** Tags the call's log lines with a trace id (copied, at most 64 bytes). */
void mesh_proxy_call_set_trace_id(mesh_proxy_call_t *c, const char *id, size_t len);

/** What a call did, for access logs (read in on_done or later while the call is held). */
typedef struct mesh_proxy_call_summary {
    const char *upstream; /* the last instance tried ("host:port"), or NULL */
    uint64_t req_bytes;   /* request DATA bytes received from the client */
    uint64_t resp_bytes;  /* response DATA bytes received from the upstream */
    int retries;
} mesh_proxy_call_summary_t;

void mesh_proxy_call_summary(const mesh_proxy_call_t *c, mesh_proxy_call_summary_t *out);

struct mesh_retry_policy;
struct mesh_retry_budget_cfg;

/** Gives the call a retry policy (transport/retry.h; it must stay valid until the filter's
 *  on_done) and the retry budget's settings (copied; the floor is for the whole node: the
 *  worker takes its share, cfg.n_workers). Call from on_call. */
void mesh_proxy_call_set_retry(mesh_proxy_call_t *c, const struct mesh_retry_policy *p,
                               const struct mesh_retry_budget_cfg *budget);

struct mesh_svc_policy;

/** Gives the call its service's balancing and outlier settings (transport/svc_policy.h; valid
 *  until the filter's on_done); the worker's service state takes them over its defaults (a
 *  reference) when the call picks an instance. NULL: the defaults. Call from on_call. */
void mesh_proxy_call_set_service_policy(mesh_proxy_call_t *c, struct mesh_svc_policy *p);

/** Fault injection, decided by a filter: when the call is routed, abort_status (1..16; 0 none)
 *  answers it instead ("meshd: fault injected"), else delay_ms holds it first. From on_call. */
void mesh_proxy_call_inject_fault(mesh_proxy_call_t *c, int abort_status, uint64_t delay_ms);

/** Ends a PENDING filter's wait: NULL accepts (the next filters run, then the call is
 * routed), a verdict rejects. Call on the worker thread, once, before the filter's on_done. */
void mesh_proxy_call_resume(mesh_proxy_call_t *c, const mesh_proxy_verdict_t *reject);

/** Called when the request body a filter asked for is there: complete is 1 when the client
 * ended its request, 0 when the request is larger than the limit (or than the stream buffer). */
typedef void (*mesh_proxy_body_cb)(void *ctx, mesh_proxy_call_t *c, int complete);

/** Asks, from on_call before returning MESH_PROXY_PENDING, for the request body: cb runs once
 * the client ended the request or max bytes (at most the stream buffer) are buffered; read the
 * bytes with mesh_proxy_call_body_next(). One filter at a time. */
void mesh_proxy_call_want_body(mesh_proxy_call_t *c, size_t max, mesh_proxy_body_cb cb, void *ctx);

/** Iterates over the buffered request bytes: start with *pos = 0; returns the length of the
 * next span at *data (0: no more). */
size_t mesh_proxy_call_body_next(const mesh_proxy_call_t *c, size_t *pos, const uint8_t **data);

/** Most filters a worker runs. */
#define MESH_PROXY_MAX_FILTERS 8

/** Settings of a proxy worker; 0 in a numeric field means its default. */
typedef struct mesh_proxy_config {
    const char *listen_host;         /* "127.0.0.1", "::" ...; default "0.0.0.0" */
    int listen_port;                 /* 0 picks a free port (see mesh_proxy_worker_port) */
    uint32_t max_concurrent_streams; /* per client connection; default 1000 */
    uint32_t max_header_list_size;   /* bytes (names + values + 32 each); default 16384 */
    uint32_t stream_buffer;          /* bytes buffered per stream and direction; default 256 KiB;
                                        also the HTTP/2 stream window advertised */
    uint32_t conn_window;            /* connection-level receive window of client and upstream
                                        connections; default 1 GiB (at least stream_buffer) */
    uint64_t connect_timeout_ms;     /* upstream connect; default 1000 */
    uint64_t keepalive_interval_ms;  /* PING period on idle-or-not connections; default 30000;
                                        UINT64_MAX: off */
    uint64_t keepalive_timeout_ms;   /* PING ACK wait; default 10000 */
    /* Upstream liveness: an upstream connection with calls outstanding that received nothing
     * for upstream_stall_ms after a write (default 500; UINT64_MAX: off) is PINGed and closed
     * when the PING is not answered within upstream_stall_timeout_ms (default 500), failing
     * its calls with UNAVAILABLE at once instead of at their deadlines. */
    uint64_t upstream_stall_ms;
    uint64_t upstream_stall_timeout_ms;
    uint64_t backoff_initial_ms; /* endpoint down after a connect failure; default 200 */
    uint64_t backoff_max_ms;     /* doubling up to this; default 10000 */
    uint32_t max_upstream_conns; /* per endpoint; default 8 */
    /* Outlier ejection (transport/outlier.h): an instance whose calls end with
     * outlier_consecutive gateway failures in a row (UNAVAILABLE, DEADLINE_EXCEEDED, reset,
     * lost connection; default 5) leaves round robin for outlier_base_ejection_ms (default
     * 30000) times its number of ejections, capped at outlier_max_ejection_ms (default 300000),
     * while at most outlier_max_ejection_percent (default 10, at least one instance, never the
     * last) of its service is out; it returns through a single probe call. outlier_off: never. */
    uint32_t outlier_consecutive;
    uint64_t outlier_base_ejection_ms;
    uint64_t outlier_max_ejection_ms;
    uint32_t outlier_max_ejection_percent;
    int outlier_off;
    /* Failure percentage (transport/outlier_window.h): an instance whose calls on a worker
     * failed at least outlier_failure_pct percent (0, the default: off) of at least
     * outlier_failure_volume calls (default 50) in an outlier_interval_ms window (default
     * 10000) is ejected like above. */
    uint32_t outlier_failure_pct;
    uint32_t outlier_failure_volume;
    uint64_t outlier_interval_ms;
    /* Success rate (transport/outlier_sr.h): every outlier_interval_ms, among a service's
     * instances with at least outlier_sr_volume calls (all workers; default 100), when at least
     * outlier_sr_hosts have them (default 5), one whose success rate is below the mean minus
     * outlier_sr_stdev thousandths (0, the default: off; Envoy's 1900) of a standard deviation
     * is ejected like above. */
    uint32_t outlier_sr_stdev;
    uint32_t outlier_sr_hosts;
    uint32_t outlier_sr_volume;
    /* The ejection state shared by the workers of a process (transport/outlier_board.h), so the
     * thresholds hold whatever the worker count; NULL: the worker keeps its own. Outlives the
     * workers that use it. */
    struct mesh_outlier_board *outlier_board;
    /* Calls one upstream connection carries before the pool opens another (up to
     * max_upstream_conns); 0 (the default): the peer's MAX_CONCURRENT_STREAMS only, as gRPC
     * clients and other meshes do. gRPC servers (C++, Java, Go) read and parse each connection
     * on one thread at a time, so one connection carrying every call caps a busy backend at one
     * core's worth of parsing; a limit spreads the calls, at some cost in latency variance
     * (docs/benchmarks.md). */
    uint32_t upstream_streams_per_conn;
    /* Upstream names ("host:port" with a host name) are resolved on libuv's thread pool, never
     * on the worker's loop (numeric addresses are parsed at once): at most one lookup per
     * endpoint per worker at a time. An endpoint is not live until its name resolved. A
     * resolved name is looked up again every dns_refresh_ms (default 30000), so a route follows
     * DNS: new connections go to the new address, pooled ones to the old address close once
     * their calls finished. A failed lookup is retried after dns_retry_initial_ms (default
     * 1000), doubling up to dns_retry_max_ms (default 30000, never beyond dns_refresh_ms); a
     * name that resolved before keeps its last address meanwhile. */
    uint64_t dns_refresh_ms;
    uint64_t dns_retry_initial_ms;
    uint64_t dns_retry_max_ms;
    int worker_index; /* for logs */
    int n_workers;    /* workers of the node (the retry budget's floor is shared); default 1 */
    /* Where calls go when the routing table has no entry for their service (the sidecar
     * forwards every call to its app this way); NULL: such calls get UNIMPLEMENTED. */
    const char *default_upstream;
    mesh_proxy_filter_t filter; /* a first filter; on_call NULL: none */
    /* 1: no gRPC listener; every call comes from a front end on the worker's loop
     * (transport/proxy_call.h), e.g. the gateway without --grpc-listen. */
    int no_listener;
    /* Balancing (transport/lb.h): round robin or P2C, header subsets, the caller's zone; the
     * worker keeps a copy whose strings stay borrowed (they must outlive the worker). NULL:
     * round robin over every instance, shares by weight. */
    const struct mesh_lb_cfg *lb;
    /* TLS (transport/tls_holder.h; the holders outlive the worker). tls: client connections
     * are TLS: those of a second listener at tls_listen_host:tls_listen_port when
     * tls_listen_host is set (the main listener stays h2c), else those of the main listener.
     * NULL: h2c only. */
    struct mesh_tls_holder *tls;
    const char *tls_listen_host;
    int tls_listen_port;
    /* upstream_tls: upstream connections are TLS, the server checked against
     * upstream_tls_name or else the instance's host (NULL: h2c). */
    struct mesh_tls_holder *upstream_tls;
    const char *upstream_tls_name;
    /* mesh_tls: the node's identity as a client context (certificate, key, the mesh CA): used
     * for instances whose record says they are meshd mesh ports serving TLS (a sidecar with an
     * identity), before upstream_tls; the server is verified against the mesh CA, not by host
     * name (its certificate names SPIFFE IDs). NULL: no identity, those instances get
     * upstream_tls or h2c. */
    struct mesh_tls_holder *mesh_tls;
    /* A TLS handshake not done within tls_handshake_timeout_ms (default 10000; UINT64_MAX:
     * off) fails: a client connection is closed, an upstream connection counts as a failed
     * connect ("TLS handshake timed out"). Upstream, it starts once TCP connected. */
    uint64_t tls_handshake_timeout_ms;
} mesh_proxy_config_t;

/** Counters of one worker (read on its loop thread). */
typedef struct mesh_proxy_stats {
    uint64_t calls;                  /* calls accepted from clients */
    uint64_t calls_failed;           /* calls the mesh ended with an error status of its own */
    uint64_t retries;                /* calls re-sent to another endpoint */
    uint64_t upstream_conns;         /* upstream connections opened */
    uint64_t client_conns;           /* client connections accepted */
    uint64_t retry_budget_exhausted; /* retries the retry budget refused */
    uint64_t faults_aborted;         /* calls answered with an injected fault status */
    uint64_t faults_delayed;         /* calls held by an injected delay */
    uint64_t hedges;                 /* hedged attempts started */
    /* gauges */
    uint64_t endpoints;           /* upstream endpoints held (by a table or by their calls) */
    uint64_t upstream_conns_open; /* upstream connections open or closing */
} mesh_proxy_stats_t;

typedef struct mesh_proxy_worker mesh_proxy_worker_t;

/**
 * Creates a worker on loop: binds cfg's listen address with SO_REUSEPORT and starts
 * accepting. Until routes are set every call gets UNIMPLEMENTED. NULL on failure (logged).
 */
mesh_proxy_worker_t *mesh_proxy_worker_new(uv_loop_t *loop, const mesh_proxy_config_t *cfg);

/** The bound port (useful with listen_port 0). */
int mesh_proxy_worker_port(const mesh_proxy_worker_t *w);

/** The bound port of the second (TLS) listener, or 0 when there is none. */
int mesh_proxy_worker_tls_port(const mesh_proxy_worker_t *w);

/**
 * Installs a routing table: takes ownership of one reference and drops the previous table.
 * Calls in flight keep the endpoints they already chose; an endpoint no table lists any more
 * is removed once its calls finished, and its pooled connections are closed as they go idle.
 */
void mesh_proxy_worker_set_routes(mesh_proxy_worker_t *w, mesh_routes_t *routes);

/** The routing table installed now (NULL before any); valid until the next install. Worker
 *  loop thread; the gateway's front end reads it to tell "not learned yet" from "unknown". */
const mesh_routes_t *mesh_proxy_worker_routes(const mesh_proxy_worker_t *w);

/**
 * Graceful shutdown: stops accepting, sends GOAWAY to every client, lets calls in flight
 * finish, closes the client connections, then calls done(arg) on the loop thread.
 */
void mesh_proxy_worker_drain(mesh_proxy_worker_t *w, void (*done)(void *), void *arg);

/**
 * Appends a filter (copied) to the worker's chain; calls already admitted are unaffected.
 * Returns 0, or -1 when the chain is full or on_call is NULL.
 */
int mesh_proxy_worker_add_filter(mesh_proxy_worker_t *w, const mesh_proxy_filter_t *f);

/** Replaces the worker's filters by f (NULL: no filter). Only while no call is in flight
 * through the filters being removed (their on_done would still be called). */
void mesh_proxy_worker_set_filter(mesh_proxy_worker_t *w, const mesh_proxy_filter_t *f);

/** A copy of the worker's counters. */
void mesh_proxy_worker_stats(const mesh_proxy_worker_t *w, mesh_proxy_stats_t *out);

struct mesh_cs_snap;

/**
 * A copy of the worker's per-call table (transport/call_stats.h) for the control loop, or NULL
 * when it did not change since the copy whose gen is *since (or out of memory). The caller
 * owns it (free()) and sets *since to its gen once handed over.
 */
struct mesh_cs_snap *mesh_proxy_worker_call_snapshot(const mesh_proxy_worker_t *w,
                                                     const uint64_t *since);

/**
 * Closes everything at once (calls in flight are reset). Handles close asynchronously: keep
 * running the loop until uv_run() returns; the memory is released by the last close.
 */
void mesh_proxy_worker_free(mesh_proxy_worker_t *w);

#endif
