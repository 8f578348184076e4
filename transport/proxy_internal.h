/*
 * transport/proxy_internal.h: the proxy engine's private types, shared by proxy_worker.c
 * (listener, routes, drain), upstream_pool.c (endpoints and upstream connections) and
 * proxy_stream.c (one call through the proxy, both HTTP/2 sessions' callbacks).
 */
#ifndef MESH_PROXY_INTERNAL_H
#define MESH_PROXY_INTERNAL_H

#include <netinet/in.h>
#include <nghttp2/nghttp2.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "transport/balancer.h"
#include "transport/call_stats.h"
#include "transport/chunk.h"
#include "transport/grpc_frame.h"
#include "transport/grpc_timeout.h"
#include "transport/h2_field_cache.h"
#include "transport/h2_conn.h"
#include "transport/h2_fields.h"
#include "transport/h2_mem.h"
#include "transport/lb.h"
#include "transport/outlier.h"
#include "transport/outlier_board.h"
#include "transport/outlier_sr.h"
#include "transport/outlier_window.h"
#include "transport/proxy_local.h"
#include "transport/svc_policy.h"
#include "transport/tls.h"
#include "transport/proxy.h"
#include "transport/retry.h"

/** An intrusive doubly linked list node (a list head is a node too). */
typedef struct pxy_link {
    struct pxy_link *prev, *next;
} pxy_link_t;

/* A duration setting where UINT64_MAX means "off": 0 for the h2 connection's setters. */
static inline uint64_t pxy_ms_or_off(uint64_t v)
{
    return v == UINT64_MAX ? 0 : v;
}

static inline void pxy_list_init(pxy_link_t *h)
{
    h->prev = h->next = h;
}
static inline int pxy_list_empty(const pxy_link_t *h)
{
    return h->next == h;
}
static inline void pxy_list_push(pxy_link_t *h, pxy_link_t *n)
{
    n->prev = h->prev;
    n->next = h;
    h->prev->next = n;
    h->prev = n;
}
static inline void pxy_list_remove(pxy_link_t *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}
#define PXY_CONTAINER(p, type, member) ((type *)(void *)((char *)(p)-offsetof(type, member)))

/** Header fields the proxy looks at, indexed as they are collected. */
enum {
    PXY_H_PATH,
    PXY_H_AUTHORITY,
    PXY_H_METHOD,
    PXY_H_CONTENT_TYPE,
    PXY_H_GRPC_TIMEOUT,
    PXY_H_STATUS,
    PXY_H_GRPC_STATUS,
    PXY_H_N
};

/** Collected header fields of one HEADERS block, stored as offsets into one buffer. */
typedef struct pxy_hdrs {
    char *buf;
    size_t len, cap;
    struct pxy_hdr {
        uint32_t no, nl, vo, vl;
        uint8_t id; /* the name's mesh_h2_name_t, classified once as the field arrived */
    } * ents;
    size_t n, ents_cap;
    size_t size;          /* HTTP/2 header list size: name + value + 32 per field */
    int32_t idx[PXY_H_N]; /* entry of the first field with that name, or -1 */
    mesh_h2_fields_t chk; /* the block's field rules so far */
} pxy_hdrs_t;

typedef struct pxy_endpoint pxy_endpoint_t;
typedef struct pxy_ds_conn pxy_ds_conn_t;
typedef struct pxy_us_conn pxy_us_conn_t;
typedef struct pxy_stream pxy_stream_t;

/* The trace context's names, sent once per upstream connection with indexing so that HPACK
 * keeps the name in both tables; later calls send the value never-indexed with the indexed
 * name (pxy_us_conn.named). */
#define PXY_NAMED_TRACEPARENT 1u
#define PXY_NAMED_REQUEST_ID  2u

/** A client (downstream) connection. */
struct pxy_ds_conn {
    mesh_h2_conn_t h2; /* first */
    mesh_proxy_worker_t *w;
    pxy_link_t link;    /* in w->ds_conns */
    pxy_link_t streams; /* pxy_stream_t.ds_link */
    size_t n_streams;
    int draining;
    pxy_stream_t *hdr_ps;         /* the call found last (ds_stream): NULL once it leaves */
    mesh_h2_field_cache_t fields; /* fields that passed the checks (cleared at teardown) */
    struct sockaddr_storage peer; /* the client's address */
    struct mesh_peer_id *peer_id; /* what its verified certificate proves (TLS); NULL: nothing */
    char name[64];
};

/** An upstream connection of an endpoint's pool. */
struct pxy_us_conn {
    mesh_h2_conn_t h2; /* first */
    mesh_proxy_worker_t *w;
    pxy_endpoint_t *ep; /* held until the connection closed; NULL once the worker is freed */
    pxy_link_t link;    /* in ep->conns, ep->retired once retired, ep->closing once torn down */
    pxy_link_t streams; /* pxy_stream_t.us_link: submitted or waiting for the connect */
    size_t n_streams;
    uv_connect_t creq;
    int connected;
    int goaway;
    int retired;          /* takes no new calls; closed once its last call detached */
    pxy_stream_t *hdr_ps; /* the call found last (us_stream): NULL once it detaches */
    size_t resp_owed;     /* response bytes of closed streams not yet given back (detach_us) */
    uint8_t named;        /* PXY_NAMED_*: per-call names already in the peer's HPACK table */
    mesh_h2_field_cache_t fields; /* fields that passed the checks (cleared at teardown) */
    /* the TLS it was opened with (NULL: h2c): calls wanting another setting never share it;
     * tls_pol holds a reference on the service settings that own tls_holder, if they do */
    struct mesh_tls_holder *tls_holder;
    mesh_svc_policy_t *tls_pol;
    char name[96];
};

/** Name resolution of one hostname endpoint (numeric addresses have none): one lookup at a
 *  time on libuv's thread pool, then a timer for the retry or the refresh. Allocated apart
 *  from the endpoint, so the endpoint can go while a lookup is still running. */
typedef struct pxy_resolver {
    uv_getaddrinfo_t req;
    uv_timer_t timer;
    mesh_proxy_worker_t *w;
    pxy_endpoint_t *ep; /* NULL once the endpoint is gone */
    char host[256];
    char port[8];
    int in_flight;     /* a lookup is on the thread pool */
    int timer_closed;  /* the timer's close callback ran (only after detaching) */
    uint64_t retry_ms; /* the next retry's delay after a failure */
} pxy_resolver_t;

/** One upstream address, its pool and its health. Referenced by the routing state that lists
 *  it (refs) and by its connections until they closed (n_held); freed when both are zero. */
struct pxy_endpoint {
    union pxy_ep_sa {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
    } sa;         /* IPv4 or IPv6 only: a sockaddr_storage would cost 100 more bytes per endpoint */
    int resolved; /* 1 has an address; 0 name not resolved yet; -1 lookup failed */
    int res_err;  /* the last lookup's libuv error (UV_EAI_*), 0 when it succeeded */
    uint32_t refs;         /* table references: pxy_endpoint_get/pxy_endpoint_release */
    uint32_t n_held;       /* connections pointing here, from open until closed */
    uint32_t n_conns;      /* in conns; at most max_upstream_conns */
    mesh_bal_backoff_t bo; /* connect backoff, in loop time (ms): round robin skips it while
                              it backs off */
    /* outlier ejection, shared by the workers (a held reference; in loop time): round robin
     * skips the endpoint while ejected (transport/outlier_board.h) */
    mesh_outlier_slot_t *ol;
    /* connections whose peer is suspect now (a liveness PING out, nothing heard since): the
     * balancer sends new calls elsewhere while another instance is not */
    uint32_t n_suspect;
    /* this worker's failure-percentage window (transport/outlier_window.h) */
    mesh_olw_t olw;
    mesh_olsr_ep_t olsr;   /* this worker's success-rate counts (transport/outlier_sr.h) */
    mesh_lb_ep_t lb;       /* this worker's calls outstanding and latency EWMA (transport/lb.h) */
    pxy_link_t conns;      /* usable connections (pxy_us_conn_t.link) */
    pxy_link_t retired;    /* connections finishing their calls, taking no new ones */
    pxy_link_t closing;    /* connections torn down whose handles are still closing */
    pxy_resolver_t *res;   /* hostname endpoints only */
    pxy_endpoint_t *hnext; /* in w->ep_hash, which is also the list of all endpoints */
    mesh_tls_session_t tls_sess; /* the newest TLS session, resumed by the next connection */
    int mesh_tls;    /* a meshd mesh port serving TLS (its record): mTLS with cfg.mesh_tls */
    char *mesh_node; /* the node its record names (mesh TLS: the server must prove it); NULL */
    char addr[];     /* "host:port" as the table lists it (one allocation with the endpoint) */
};

/**
 * Per-service state of the current table: round-robin counter and endpoints, in an array
 * indexed by the service object's id (mesh_routes_index_of). Kept from one table to the next
 * while the service's object is the same; made afresh only for services that changed
 * (mesh_proxy_worker_set_routes). Holds one reference (pxy_endpoint_get) per endpoint in eps.
 */
typedef struct pxy_svc {
    const mesh_route_svc_t *obj; /* the service this state is for; NULL: unused */
    mesh_bal_rr_t rr;
    pxy_endpoint_t **eps;                /* one allocation with insts */
    const mesh_route_instance_t **insts; /* each endpoint's instance (in the shared object) */
    size_t n;
    uint32_t cs_row;      /* the service's row in w->cs + 1; 0: not looked up yet */
    mesh_lb_plan_t *plan; /* weights, subsets, zone, P2C (transport/lb.h), made at the
                             service's first call; PXY_PLAN_PLAIN: plain round robin (rr) is the
                             policy; NULL: not decided yet */
    /* The service's settings (transport/svc_policy.h), resolved over the worker's defaults by
     * pxy_svc_use_policy when a call of the service picks: the plan is made under lb, outlier
     * reports use ol. pol is held (a reference); cfg_set 0: not resolved yet. */
    mesh_svc_policy_t *pol;
    int cfg_set;
    mesh_olsr_svc_t olsr; /* the success-rate detector's interval for this service */
    mesh_lb_cfg_t lb;
    mesh_outlier_cfg_t ol;
    mesh_olw_cfg_t olw;       /* the failure-percentage detector's settings for the service */
    mesh_olsr_cfg_t olsr_cfg; /* the success-rate detector's */
} pxy_svc_t;

/** pxy_svc_t.plan of a service that plain round robin balances (not a plan to free). */
#define PXY_PLAN_PLAIN ((mesh_lb_plan_t *)(uintptr_t)1)

/** Frees a service's plan (NULL and PXY_PLAN_PLAIN are none). */
static inline void pxy_svc_plan_free(pxy_svc_t *st)
{
    if (st->plan != PXY_PLAN_PLAIN)
        mesh_lb_plan_free(st->plan);
    st->plan = NULL;
}

/**
 * The front end that holds a call (the downstream): the HTTP/2 client side (proxy_stream.c)
 * or a caller of the upstream-call API (proxy_call.c, transport/proxy_call.h). The engine
 * calls these on the worker's thread; ps->down is non-NULL while the front end holds the call.
 */
typedef struct pxy_down_ops {
    /** Answers the call with the mesh's own status before any response began (Trailers-Only);
     *  sets ps->resp_done. */
    void (*respond_error)(pxy_stream_t *ps, int code, const char *msg);
    /** The upstream's response headers (ps->resph, checked) go to the client; end_stream: the
     *  upstream ended the call with them (Trailers-Only, ps->final_status set). */
    void (*respond_head)(pxy_stream_t *ps, int end_stream);
    /** Response bytes were appended to ps->resp.q, or the queue ended (ps->trailers says
     *  how: forwarded trailers or the mesh's error). */
    void (*resp_ready)(pxy_stream_t *ps);
    /** n request bytes left the proxy (credit for the client). */
    void (*req_consumed)(pxy_stream_t *ps, size_t n);
    /** The front end lets go of the call (sets ps->down to NULL). */
    void (*detach)(pxy_stream_t *ps);
} pxy_down_ops_t;

/** The upstream-call API's state of a call (proxy_call.c). */
typedef struct pxy_api {
    const struct mesh_proxy_downstream *ops;
    void *ud;
    int ending;    /* on_end is scheduled (the stream's timer, 0 ms) */
    int cancelled; /* the caller let go: no more callbacks */
    int req_full;  /* mesh_proxy_call_send said 1: on_req_drain owed */
} pxy_api_t;

/** What a finished response still owes the client. */
enum { PXY_TRAILERS_NONE = 0, PXY_TRAILERS_FORWARD = 1, PXY_TRAILERS_ERROR = 2 };

/** One call through the proxy. Lives until both its client and upstream streams closed. */
struct pxy_stream {
    mesh_proxy_worker_t *w;
    const pxy_down_ops_t *dops;  /* the front end's side of the call */
    void *down;                  /* non-NULL while the front end holds the call */
    const struct sockaddr *peer; /* the client's address (valid while down is set) */
    pxy_ds_conn_t *ds;           /* HTTP/2 client side: its connection (NULL once closed) */
    int32_t ds_id;
    pxy_link_t ds_link;
    pxy_us_conn_t *us; /* NULL when not attached upstream */
    int32_t us_id;     /* -1 while waiting for the connection */
    pxy_link_t us_link;
    pxy_endpoint_t *ep;    /* the chosen endpoint; dereference only while attached (us set):
                              the connection holds it, nothing else does */
    mesh_routes_t *routes; /* reference held for the call */
    const mesh_route_service_t *svc;
    mesh_h2_source_t req;  /* client -> upstream bytes */
    mesh_h2_source_t resp; /* upstream -> client bytes */
    uint64_t deadline_ms;  /* loop time; 0 none */
    int retries;
    int started;      /* request headers processed */
    int hdr_overflow; /* request headers beyond the limit */
    int resp_headers; /* upstream response HEADERS seen */
    int resp_started; /* response HEADERS submitted to the client */
    int resp_done;    /* the client's response is ended (END_STREAM submitted) */
    int failing;      /* the mesh is ending the call with its own status */
    int trailers;     /* PXY_TRAILERS_* */
    int err_code;
    int default_route;   /* routed to w->default_ep (no table entry) */
    const char *svc_str; /* service name from :path (in reqh.buf), for messages */
    int svc_len;
    const char *method_str; /* method name from :path, for instances that list methods */
    int method_len;
    const char *path_seen;      /* the :path value svc_str and method_str were found in */
    int final_status;           /* for the filters' on_done: MESH_PROXY_STATUS_* or a gRPC status */
    int n_admitted;             /* filters that accepted the call or went pending (on_done owed) */
    int pending;                /* 1 + the index of the filter the call waits for; 0: none */
    mesh_proxy_body_cb body_cb; /* a filter waits for the request body */
    void *body_ctx;
    size_t body_max;
    uint64_t req_bytes, resp_bytes; /* DATA payload bytes from the client, to the client */
    uint64_t t_start;               /* uv_hrtime() when the call started (0: not a call yet) */
    uint32_t cs_row;                /* the routed service's row in w->cs + 1; 0: look it up */
    uint8_t lb_p2c;                 /* picked under P2C (the service's policy): lb_done samples */
    uint64_t lb_t0;                 /* uv_hrtime() when the request went out to ps->ep (its
                                       latency sample); 0: not yet */
    pxy_api_t api;                  /* calls started with mesh_proxy_call_start() */
    /* Retry policy and fault injection (transport/proxy_retry.c); set by a filter. */
    const mesh_retry_policy_t *rp; /* NULL: only the never-sent retry */
    /* the service's balancing and outlier settings (valid until the filter's on_done); NULL:
     * the worker's defaults */
    mesh_svc_policy_t *svc_pol;
    mesh_retry_budget_cfg_t budget_cfg;
    int retry_wait;  /* the attempt ended with a retryable status: retry once its stream closed */
    int fault_abort; /* gRPC status to answer instead of routing; 0 none */
    uint64_t fault_delay_ms;
    uint64_t try_deadline_ms;            /* loop time the attempt's per-try timeout ends; 0 */
    const pxy_endpoint_t *retry_exclude; /* compared only, never dereferenced */
    uint64_t hedge_at_ms; /* loop time to start a hedged attempt (proxy_hedge.c); 0 none */
    pxy_stream_t *hedge;  /* the call's hedged attempt in flight, or NULL */
    int hedged;           /* a hedge was started (one per call) */
    int held;             /* a backoff or an injected delay took the timer: re-arm the deadline */
    /* A locally served call (transport/proxy_local.c): its service (NULL: a routed call), the
     * handler's state, its place in w->local_calls while the handler holds it. */
    const mesh_local_service_t *local;
    void *local_state;
    pxy_link_t local_link;
    uint8_t local_ended;    /* on_end told (or the request is refused) */
    uint8_t local_finished; /* the handler finished (or the call ended): no more sends */
    pxy_stream_t *free_next;
    /* ---- Not cleared when the object is reused (pxy_stream_new): the texts, each reset to
     * "" (every writer terminates them), what is written before it is read, then what the
     * object keeps from call to call. ---- */
    char err_msg[200];
    char err_meta[2][64]; /* one more trailer of the mesh's own error: name, value */
    char trace_id[65];    /* for log lines about the call; "" none */
    char upstream[48];    /* the last endpoint tried ("host:port"), "" none */
    char retry_why[112];
    /* Written before they are read: grpc-timeout sent upstream (at each submit), the filters'
     * tokens (the first n_admitted), a local call's deframer (initialised when it opens). */
    char tmo[MESH_GRPC_TIMEOUT_MAX_LEN];
    void *filter_tokens[MESH_PROXY_MAX_FILTERS];
    mesh_grpc_deframer_t local_dfr;
    /* Header blocks. Each is written once per call and stays put until the call object is
     * reused: submitted fields point into them (NGHTTP2_NV_FLAG_NO_COPY_*), and nghttp2 reads
     * them when it packs the frame, possibly a loop turn later. */
    pxy_hdrs_t reqh;  /* the client's request headers */
    pxy_hdrs_t resph; /* the upstream's response headers */
    pxy_hdrs_t respt; /* the upstream's trailers */
    nghttp2_nv *nv;   /* scratch for submitting headers */
    size_t nv_cap;
    uv_timer_t timer; /* deadline */
};

/** The worker. */
struct mesh_proxy_worker {
    uv_loop_t *loop;
    mesh_proxy_config_t cfg;
    mesh_bal_backoff_cfg_t bal; /* cfg's endpoint backoff, for transport/balancer.h */
    mesh_outlier_cfg_t outlier; /* cfg's outlier ejection, for transport/outlier.h */
    /* cfg's failure-percentage detector */
    mesh_olw_cfg_t olw;
    mesh_olsr_cfg_t olsr; /* cfg's success-rate detector */
    /* cfg.outlier_board, or the worker's own (own_board set) */
    mesh_outlier_board_t *board;
    int own_board;
    mesh_lb_cfg_t lb;  /* cfg's balancing (strings borrowed from cfg.lb) */
    mesh_lb_rng_t rng; /* P2C's draws */
    char listen_host[64];
    uv_tcp_t listener;
    int listening;
    int port;
    uv_tcp_t tls_listener; /* cfg.tls_listen_host: the TLS listener beside the h2c one */
    int tls_listening;
    int tls_port;
    mesh_chunk_pool_t pool;
    uint8_t *rbuf;
    size_t rbuf_len;
    mesh_h2_flusher_t flusher; /* one write per connection per loop turn */
    int flusher_on;
    mesh_h2_mem_t h2mem; /* allocator of every nghttp2 session of this worker */
    nghttp2_session_callbacks *ds_cbs, *us_cbs;
    nghttp2_option *opt;
    mesh_routes_t *routes;
    pxy_svc_t *svc; /* by service object id (mesh_routes_index_of), svc_cap entries */
    size_t svc_cap;
    pxy_endpoint_t **ep_hash;
    size_t ep_hash_size;
    size_t n_endpoints;
    size_t n_us_open; /* upstream connections from open until closed */
    pxy_link_t ds_conns;
    size_t n_ds_conns;
    pxy_stream_t *free_streams;
    size_t n_handles; /* open handles and live connections */
    int draining;
    int freeing;
    void (*drain_done)(void *);
    void *drain_arg;
    mesh_proxy_stats_t stats;
    mesh_call_stats_t cs;       /* per-call figures (transport/call_stats.h) */
    pxy_endpoint_t *default_ep; /* cfg.default_upstream's endpoint, or NULL */
    char *default_upstream;
    mesh_proxy_filter_t filters[MESH_PROXY_MAX_FILTERS];
    int n_filters;
    mesh_retry_budget_t budget; /* this worker's retry budget (transport/retry.h) */
    uint64_t jitter_rng;        /* xorshift state: retry backoff jitter */
    /* locally served methods (transport/proxy_local.h) and their open calls */
    mesh_local_service_t locals[MESH_LOCAL_MAX_SERVICES];
    size_t local_len[MESH_LOCAL_MAX_SERVICES]; /* strlen of each path */
    uint8_t local_first[32];                   /* bit set: some local path has that 2nd byte */
    int n_locals;
    int n_locals_early;     /* of them, answered before the filters (the rest: after) */
    pxy_link_t local_calls; /* pxy_stream_t.local_link */
    int not_serving;        /* mesh_proxy_worker_stop_serving or a drain began */
};

/** Now in ns for the worker's latency samples and call durations: the loop turn's clock when
 * writes are coalesced (transport/h2_conn.h), else uv_hrtime(). */
static inline uint64_t pxy_now_ns(mesh_proxy_worker_t *w)
{
    return w->flusher_on ? mesh_h2_flusher_now_ns(&w->flusher) : uv_hrtime();
}

/* proxy_worker.c */
void pxy_worker_handle_closed(mesh_proxy_worker_t *w);
/** Drops the table and frees the per-service state at teardown (without releasing
 *  endpoints: pxy_endpoints_free has freed them all by then). */
void pxy_routes_free(mesh_proxy_worker_t *w);
void pxy_worker_check_drained(mesh_proxy_worker_t *w);
void pxy_ds_conn_maybe_finish(pxy_ds_conn_t *d);
/** Takes cfg.outlier_board, or gives the worker a board of its own. 0 or -1 (no memory). */
int pxy_outlier_board_init(mesh_proxy_worker_t *w);

/* proxy_svc_policy.c */
/** Resolves settings p over the worker's for s and drops the plan made under the old ones. */
void pxy_svc_set_policy(mesh_proxy_worker_t *w, pxy_svc_t *s, mesh_svc_policy_t *p);
/** Makes s follow settings p (NULL: the worker's defaults) when it does not yet. Per pick: one
 *  test, inline, when they are the same. */
static inline void pxy_svc_use_policy(mesh_proxy_worker_t *w, pxy_svc_t *s, mesh_svc_policy_t *p)
{
    if (!s->cfg_set || s->pol != p)
        pxy_svc_set_policy(w, s, p);
}
/** Drops the service's settings (its reference), at svc_drop and teardown. */
void pxy_svc_policy_drop(pxy_svc_t *s);

/* proxy_outlier_sr.c */
/** Counts an outcome of ep for the success-rate detector and, when the interval of service s
 *  (of the call ps) is over, judges its endpoints and ejects the outliers (cfg: the service's
 *  outlier settings, sr: its success-rate settings). */
void pxy_outlier_sr(pxy_stream_t *ps, pxy_svc_t *s, pxy_endpoint_t *ep,
                    const mesh_outlier_cfg_t *cfg, const mesh_olsr_cfg_t *sr,
                    mesh_outlier_outcome_t oc, uint64_t now);

/* outlier_tell.c */
/** Logs an outlier effect on ep (of service svc) and reports it on the worker's event ring;
 *  why: the detector's reason (NULL: consecutive failures). */
void pxy_outlier_tell(mesh_proxy_worker_t *w, const mesh_outlier_cfg_t *cfg,
                      const pxy_endpoint_t *ep, const char *svc, int svc_len,
                      mesh_outlier_effect_t effect, uint64_t ms, const char *why);
/** Serves an already connected socket as a client connection (fuzzers, tests). */
mesh_h2_conn_t *pxy_ds_conn_adopt(mesh_proxy_worker_t *w, int fd);

/* upstream_pool.c */
/** The endpoint of addr, created if needed, with one more table reference (drop it with
 *  pxy_endpoint_release when the routing state that holds it goes away). A numeric address is
 *  parsed at once; a name is resolved off the loop (the endpoint is not live until it is). */
pxy_endpoint_t *pxy_endpoint_get(mesh_proxy_worker_t *w, const char *addr);

/** Takes in's mesh TLS flag and node (at table install: copies only when they changed). */
void pxy_endpoint_set_mesh(pxy_endpoint_t *ep, const mesh_route_instance_t *in);
/** Drops one table reference taken by pxy_endpoint_get. The last one retires the endpoint's
 *  connections (each closes once its calls finished) and frees it when none is left. */
void pxy_endpoint_release(mesh_proxy_worker_t *w, pxy_endpoint_t *ep);
void pxy_endpoints_free(mesh_proxy_worker_t *w);
/** Whether round robin may pick ep: it has an address and is not backing off. (Per call.) */
static inline int pxy_endpoint_live(const mesh_proxy_worker_t *w, const pxy_endpoint_t *ep)
{
    return ep->resolved > 0 && mesh_bal_backoff_up(&ep->bo, uv_now(w->loop));
}
/** When ep has no address because of its name, writes why ("upstream H:P is being resolved",
 *  "cannot resolve upstream H:P: ...") into buf and returns 1; else 0. */
int pxy_endpoint_unresolved(const pxy_endpoint_t *ep, char *buf, size_t len);
/** Attaches ps to a pooled connection of ep (opening one if needed). 0 or -1. */
int pxy_endpoint_attach(mesh_proxy_worker_t *w, pxy_endpoint_t *ep, pxy_stream_t *ps);
/** The last call of a retired connection detached: close it gracefully. */
void pxy_us_conn_retired_idle(pxy_us_conn_t *u);
void pxy_us_close_all(mesh_proxy_worker_t *w);

/* proxy_stream.c */
nghttp2_session_callbacks *pxy_ds_callbacks_new(void);
/** A call object from the worker's pool for front end dops/down (not yet started). */
pxy_stream_t *pxy_stream_new(mesh_proxy_worker_t *w, const pxy_down_ops_t *dops, void *down,
                             const struct sockaddr *peer);
/** Adds a request header field (names lower case). 0 or -1 (out of memory). */
int pxy_stream_add_header(pxy_stream_t *ps, const char *name, size_t nl, const char *value,
                          size_t vl);
/** Starts a call whose request headers are complete and valid: its deadline (grpc-timeout),
 *  the filters, the route, the upstream. */
void pxy_stream_admit(pxy_stream_t *ps);
/** After appending request bytes (or ending them): hands them to the filter waiting for the
 *  body or to the upstream. */
void pxy_stream_req_ready(pxy_stream_t *ps);
/** Whether name is one the engine writes itself (pseudo, hop-by-hop, content-type, te,
 *  grpc-timeout): a front end must not pass it. */
int pxy_header_reserved(const char *name, size_t nl);
nghttp2_session_callbacks *pxy_us_callbacks_new(void);
/** Submits ps's request on its (connected) upstream connection. */
void pxy_stream_submit(pxy_stream_t *ps);
/** The upstream connection of ps closed before the call finished. */
void pxy_stream_upstream_lost(pxy_stream_t *ps, int never_sent, const char *why);
/** The client connection of ps closed. */
void pxy_stream_downstream_lost(pxy_stream_t *ps);
void pxy_streams_free_pool(mesh_proxy_worker_t *w);
/** Ends the call with the mesh's own status (printf-style message). */
void pxy_stream_fail(pxy_stream_t *ps, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* For proxy_retry.c: the attempt's parts of the call. */
/** Detaches ps from its upstream stream (reports the outcome to the endpoint's outlier state). */
void pxy_stream_detach_upstream(pxy_stream_t *ps);
/** Frees ps when neither side holds it. */
void pxy_stream_release_if_done(pxy_stream_t *ps);
/** Clears the last attempt's response headers and trailers. */
void pxy_stream_reset_response(pxy_stream_t *ps);
/** Attaches ps upstream on a live endpoint other than exclude (or fails it, naming why). */
void pxy_stream_route_to(pxy_stream_t *ps, const pxy_endpoint_t *exclude, const char *why);
/** (Re)starts the call's timer for what comes first: the deadline or the attempt's per-try
 *  timeout. */
void pxy_stream_arm_timer(pxy_stream_t *ps);

/** Cancels ps's upstream attempt: RST_STREAM CANCEL once sent, forgotten when not. */
void pxy_stream_cancel_upstream(pxy_stream_t *ps);
/** The request's :path (len set), or NULL. */
const char *pxy_stream_path(const pxy_stream_t *ps, size_t *len);
/** Points svc_str and method_str into ps's request headers. */
void pxy_stream_parse_path(pxy_stream_t *ps);

/** Adds a response header (trailers 0) or trailer (1) field. 0 or -1 (out of memory). */
int pxy_stream_add_resp_field(pxy_stream_t *ps, int trailers, const char *name, size_t nl,
                              const char *value, size_t vl);

/* proxy_local.c */
/** When ps's path is a local service's (registered with before_filters equal to early), opens
 *  the local call and returns 1 (the call is answered here); else 0. */
int pxy_local_try(pxy_stream_t *ps, int early);
/** Request bytes of a local call are queued (or the request ended): hands whole messages to
 *  the handler. */
void pxy_local_feed(pxy_stream_t *ps);
/** The call object of a local call goes: the handler's on_close. */
void pxy_local_close(pxy_stream_t *ps);
/** A routing table was installed (before: the previous one): the services' on_routes, then
 *  every open local call's on_wake. */
void pxy_local_routes_changed(mesh_proxy_worker_t *w, const mesh_routes_t *before);

/* proxy_hedge.c */
/** The front end of a hedged attempt (its down is the call it hedges). */
extern const pxy_down_ops_t pxy_hedge_ops;
/** The hedge delay of ps is over: a second attempt on another instance (when the request ended
 *  and is held whole). */
void pxy_hedge_start(pxy_stream_t *ps);
/** Cancels ps's hedge, if any (ps ends, or answered first). */
void pxy_hedge_drop(pxy_stream_t *ps);
/** Response headers arrived on ps, a call with a hedge or a hedge: the first wins. Returns the
 *  call that goes on with them (the hedged call when its hedge won), or NULL (a losing hedge:
 *  ignore the headers). */
pxy_stream_t *pxy_hedge_settle(pxy_stream_t *ps);

/* proxy_retry.c */
/** Applies the call's injected fault: 1 when it was answered (an abort) or is held (a delay). */
int pxy_retry_fault(pxy_stream_t *ps);
/** A routed call is about to pick an upstream: counts it in the budget, applies an injected
 *  fault. 1: the call was answered or is held (a delay); 0: route it now. Per call: inline. */
static inline int pxy_retry_before_route(pxy_stream_t *ps)
{
    mesh_retry_budget_call(&ps->w->budget, uv_now(ps->w->loop));
    return ps->fault_abort || ps->fault_delay_ms ? pxy_retry_fault(ps) : 0;
}
/** The attempt's upstream answered Trailers-Only with grpc-status status: 1 when it will be
 *  retried (ps->retry_wait: the stream is being closed; pxy_retry_attempt_closed follows). */
int pxy_retry_on_status(pxy_stream_t *ps, int status);
/** The attempt's upstream stream closed while ps->retry_wait: detach and retry after the
 *  backoff. */
void pxy_retry_attempt_closed(pxy_stream_t *ps);
/** The attempt failed without a status (reset, lost connection; never_sent: it provably never
 *  left): 1 when it is retried (the call is held or re-routed). */
int pxy_retry_on_lost(pxy_stream_t *ps, int never_sent, int status, const char *why);
/** An attempt was attached upstream: starts its per-try timeout, re-arms the call's timer. */
void pxy_retry_attempt_started(pxy_stream_t *ps);
/** The call's timer fired: 1 when it was the per-try timeout and was handled. */
int pxy_retry_on_timer(pxy_stream_t *ps);

#endif
