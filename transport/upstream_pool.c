/*
 * transport/upstream_pool.c: per-worker upstream endpoints and their pools of multiplexed
 * HTTP/2 client connections.
 *
 * An endpoint is one "host:port". Calls share its connections up to the peer's
 * SETTINGS_MAX_CONCURRENT_STREAMS (or upstream_streams_per_conn when set and lower, which
 * spreads calls so a gRPC server can parse them on more than one thread), then another
 * connection is opened (up to max_upstream_conns; beyond that the least loaded one takes the
 * stream, and nghttp2 queues it if the peer's limit is reached). A connect failure or timeout
 * marks the endpoint down for a backoff that doubles up to backoff_max_ms (transport/
 * balancer.h, which the simulator runs too); round robin skips it meanwhile, and the calls that
 * waited for that connection are retried on another instance (they never reached an
 * application).
 *
 * Lifetime: the routing state holds table references (pxy_endpoint_get/release; the default
 * upstream holds its own), and each connection holds its endpoint until it closed. When the
 * last table reference goes, the endpoint's connections are retired: they take no new calls,
 * and each closes (GOAWAY, then close once written) when its last call detached, so nothing
 * in flight is reset. The endpoint is freed when no reference and no connection is left; the
 * same address listed again before that revives it.
 *
 * Names: a numeric address is parsed at once. A host name is resolved by uv_getaddrinfo on
 * libuv's thread pool, completing on the worker's loop; the endpoint is not live until then.
 * One lookup per endpoint at a time; a failure is retried with a doubling delay; a success is
 * refreshed every dns_refresh_ms. When the address changes, new connections go to the new one
 * and the pooled ones are retired like above. A failed refresh keeps the last address.
 */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "ca/peer_identity.h"
#include "common/addr.h"
#include "common/log.h"
#include "transport/proxy_internal.h"
#include "transport/tls_holder.h"

#define ACTOR "proxy"

/* res_err of an address that is not HOST:PORT (never retried). */
#define PXY_EADDR 1

static size_t hash_str(const char *s)
{
    size_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void us_retire(pxy_us_conn_t *u);

/* ---- name resolution ------------------------------------------------------------------------ */

static void res_start(pxy_resolver_t *r);

static void res_on_timer(uv_timer_t *t)
{
    res_start(t->data);
}

/* Frees a detached resolver once its lookup returned and its timer closed. */
static void res_maybe_free(pxy_resolver_t *r)
{
    if (r->ep || r->in_flight || !r->timer_closed)
        return;
    mesh_proxy_worker_t *w = r->w;
    free(r);
    pxy_worker_handle_closed(w);
}

static void res_on_timer_closed(uv_handle_t *h)
{
    pxy_resolver_t *r = h->data;
    r->timer_closed = 1;
    res_maybe_free(r);
}

/* The endpoint goes: its resolver finishes on its own (a running lookup cannot be stopped). */
static void res_detach(pxy_resolver_t *r)
{
    r->ep = NULL;
    if (r->in_flight)
        uv_cancel((uv_req_t *)&r->req); /* fails harmlessly when the lookup already runs */
    uv_close((uv_handle_t *)&r->timer, res_on_timer_closed);
}

static int same_addr(const union pxy_ep_sa *a, const struct sockaddr *b)
{
    if (a->sa.sa_family != b->sa_family)
        return 0;
    if (b->sa_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (b->sa_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    return 0;
}

/* A lookup finished (on the worker's loop): take the address, schedule the next lookup. */
static void res_on_done(uv_getaddrinfo_t *req, int status, struct addrinfo *ai)
{
    pxy_resolver_t *r = req->data;
    r->in_flight = 0;
    pxy_endpoint_t *ep = r->ep;
    if (!ep) {
        uv_freeaddrinfo(ai);
        res_maybe_free(r);
        return;
    }
    mesh_proxy_worker_t *w = r->w;
    const struct addrinfo *pick = NULL;
    for (const struct addrinfo *a = ai; a; a = a->ai_next) {
        if (a->ai_family != AF_INET && a->ai_family != AF_INET6)
            continue;
        if (!pick)
            pick = a;
        if (ep->resolved > 0 && same_addr(&ep->sa, a->ai_addr)) {
            pick = a; /* still among the answers (DNS may rotate them): keep it */
            break;
        }
    }
    uint64_t next_ms;
    if (status == 0 && pick) {
        char was[64] = "", now[64];
        mesh_addr_format(pick->ai_addr, now, sizeof(now));
        if (ep->resolved > 0 && !same_addr(&ep->sa, pick->ai_addr)) {
            mesh_addr_format(&ep->sa.sa, was, sizeof(was));
            mesh_info(ACTOR,
                      "worker %d: upstream %s now resolves to %s (was %s): %zu pooled "
                      "connection(s) retire",
                      w->cfg.worker_index, ep->addr, now, was, (size_t)ep->n_conns);
            while (!pxy_list_empty(&ep->conns))
                us_retire(PXY_CONTAINER(ep->conns.next, pxy_us_conn_t, link));
            mesh_bal_backoff_reset(&ep->bo, &w->bal);
            mesh_outlier_slot_reset(w->board, ep->ol); /* a new address: no history */
            ep->olw = (mesh_olw_t){0};
        } else if (ep->resolved <= 0) {
            mesh_info(ACTOR, "worker %d: upstream %s resolved to %s", w->cfg.worker_index, ep->addr,
                      now);
        }
        memset(&ep->sa, 0, sizeof(ep->sa));
        memcpy(&ep->sa, pick->ai_addr,
               pick->ai_family == AF_INET ? sizeof(ep->sa.in) : sizeof(ep->sa.in6));
        ep->resolved = 1;
        ep->res_err = 0;
        r->retry_ms = w->cfg.dns_retry_initial_ms;
        next_ms = w->cfg.dns_refresh_ms;
    } else {
        ep->res_err = status < 0 ? status : UV_EAI_NODATA;
        next_ms = r->retry_ms;
        r->retry_ms *= 2;
        if (r->retry_ms > w->cfg.dns_retry_max_ms)
            r->retry_ms = w->cfg.dns_retry_max_ms;
        if (ep->resolved > 0) {
            mesh_warn(ACTOR,
                      "worker %d: cannot resolve upstream %s again (%s): keeping its last "
                      "address; retrying in %llu ms",
                      w->cfg.worker_index, ep->addr, uv_strerror(ep->res_err),
                      (unsigned long long)next_ms);
        } else {
            ep->resolved = -1;
            mesh_warn(ACTOR, "worker %d: cannot resolve upstream %s (%s); retrying in %llu ms",
                      w->cfg.worker_index, ep->addr, uv_strerror(ep->res_err),
                      (unsigned long long)next_ms);
        }
    }
    uv_freeaddrinfo(ai);
    if (ep->refs > 0 && !w->freeing)
        uv_timer_start(&r->timer, res_on_timer, next_ms, 0);
}

/* Starts a lookup unless one runs. */
static void res_start(pxy_resolver_t *r)
{
    if (r->in_flight || !r->ep)
        return;
    mesh_proxy_worker_t *w = r->w;
    uv_timer_stop(&r->timer);
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    r->req.data = r;
    int rv = uv_getaddrinfo(w->loop, &r->req, res_on_done, r->host, r->port, &hints);
    if (rv < 0) {
        /* Not started (no callback comes): count it as a failed lookup. */
        r->ep->res_err = rv;
        if (r->ep->resolved == 0)
            r->ep->resolved = -1;
        mesh_warn(ACTOR, "worker %d: cannot start resolving upstream %s: %s", w->cfg.worker_index,
                  r->ep->addr, uv_strerror(rv));
        uv_timer_start(&r->timer, res_on_timer, r->retry_ms, 0);
        return;
    }
    r->in_flight = 1;
}

/* Gives a hostname endpoint its resolver and starts the first lookup. 0 or -1. */
static int res_new(mesh_proxy_worker_t *w, pxy_endpoint_t *ep, const char *host, int port)
{
    pxy_resolver_t *r = calloc(1, sizeof(*r));
    if (!r)
        return -1;
    r->w = w;
    r->ep = ep;
    snprintf(r->host, sizeof(r->host), "%s", host);
    snprintf(r->port, sizeof(r->port), "%d", port);
    r->retry_ms = w->cfg.dns_retry_initial_ms;
    uv_timer_init(w->loop, &r->timer);
    uv_unref((uv_handle_t *)&r->timer); /* a refresh alone does not keep the loop alive */
    r->timer.data = r;
    w->n_handles++; /* until res_maybe_free */
    ep->res = r;
    res_start(r);
    return 0;
}

int pxy_endpoint_unresolved(const pxy_endpoint_t *ep, char *buf, size_t len)
{
    if (ep->resolved > 0)
        return 0;
    if (ep->res_err == PXY_EADDR)
        snprintf(buf, len, "upstream %s is not HOST:PORT", ep->addr);
    else if (ep->resolved == 0)
        snprintf(buf, len, "upstream %s is being resolved", ep->addr);
    else
        snprintf(buf, len, "cannot resolve upstream %s: %s", ep->addr, uv_strerror(ep->res_err));
    return 1;
}

/* ---- endpoints ------------------------------------------------------------------------------- */

/* Doubles the hash table (endpoints at most one per bucket on average). */
static int hash_grow(mesh_proxy_worker_t *w)
{
    size_t n = w->ep_hash_size ? w->ep_hash_size * 2 : 256;
    pxy_endpoint_t **h = calloc(n, sizeof(*h));
    if (!h)
        return -1;
    for (size_t i = 0; i < w->ep_hash_size; i++) {
        while (w->ep_hash[i]) {
            pxy_endpoint_t *ep = w->ep_hash[i];
            w->ep_hash[i] = ep->hnext;
            size_t b = hash_str(ep->addr) % n;
            ep->hnext = h[b];
            h[b] = ep;
        }
    }
    free(w->ep_hash);
    w->ep_hash = h;
    w->ep_hash_size = n;
    return 0;
}

pxy_endpoint_t *pxy_endpoint_get(mesh_proxy_worker_t *w, const char *addr)
{
    if (w->n_endpoints >= w->ep_hash_size && hash_grow(w) < 0 && !w->ep_hash)
        return NULL;
    size_t b = hash_str(addr) % w->ep_hash_size;
    for (pxy_endpoint_t *ep = w->ep_hash[b]; ep; ep = ep->hnext) {
        if (strcmp(ep->addr, addr) == 0) {
            if (ep->refs++ == 0 && ep->res && !ep->res->in_flight)
                uv_timer_start(&ep->res->timer, res_on_timer, 0, 0); /* revived: look again */
            return ep;
        }
    }
    size_t alen = strlen(addr);
    pxy_endpoint_t *ep = calloc(1, sizeof(*ep) + alen + 1);
    if (!ep)
        return NULL;
    memcpy(ep->addr, addr, alen + 1);
    ep->refs = 1;
    mesh_bal_backoff_init(&ep->bo, &w->bal);
    ep->ol = mesh_outlier_board_get(w->board, addr);
    if (!ep->ol) {
        free(ep);
        return NULL;
    }
    pxy_list_init(&ep->conns);
    pxy_list_init(&ep->retired);
    pxy_list_init(&ep->closing);
    char host[256];
    int port;
    mesh_addr_t na;
    if (mesh_addr_parse(addr, &na) == 0) {
        memcpy(&ep->sa, &na.ss,
               na.ss.ss_family == AF_INET ? sizeof(ep->sa.in) : sizeof(ep->sa.in6));
        ep->resolved = 1;
    } else if (mesh_addr_split(addr, host, sizeof(host), &port) != 0 || !host[0] || !port) {
        ep->resolved = -1;
        ep->res_err = PXY_EADDR;
        mesh_warn(ACTOR, "worker %d: upstream %s is not HOST:PORT", w->cfg.worker_index, addr);
    } else if (res_new(w, ep, host, port) < 0) {
        mesh_outlier_board_put(w->board, ep->ol);
        free(ep);
        return NULL;
    }
    ep->hnext = w->ep_hash[b];
    w->ep_hash[b] = ep;
    w->n_endpoints++;
    return ep;
}

/* Frees ep when neither a table nor a connection holds it any more. */
static void ep_maybe_free(mesh_proxy_worker_t *w, pxy_endpoint_t *ep)
{
    if (ep->refs > 0 || ep->n_held > 0)
        return;
    pxy_endpoint_t **pp = &w->ep_hash[hash_str(ep->addr) % w->ep_hash_size];
    while (*pp != ep)
        pp = &(*pp)->hnext;
    *pp = ep->hnext;
    w->n_endpoints--;
    if (ep->res)
        res_detach(ep->res);
    mesh_debug(ACTOR, "worker %d: upstream %s removed", w->cfg.worker_index, ep->addr);
    mesh_outlier_board_put(w->board, ep->ol);
    mesh_tls_session_clear(&ep->tls_sess);
    free(ep->mesh_node);
    free(ep);
}

void pxy_endpoint_set_mesh(pxy_endpoint_t *ep, const mesh_route_instance_t *in)
{
    ep->mesh_tls = in->mesh_tls;
    const char *node = in->mesh_tls && in->node && *in->node ? in->node : NULL;
    if (!node == !ep->mesh_node && (!node || strcmp(node, ep->mesh_node) == 0))
        return;
    free(ep->mesh_node);
    ep->mesh_node = node ? strdup(node) : NULL; /* (out of memory: not checked, as unknown) */
}

void pxy_endpoint_release(mesh_proxy_worker_t *w, pxy_endpoint_t *ep)
{
    if (!ep)
        return;
    if (ep->refs == 0) {
        mesh_error(ACTOR, "worker %d: upstream %s released more often than taken",
                   w->cfg.worker_index, ep->addr);
        return;
    }
    if (--ep->refs > 0)
        return;
    if (ep->res && !ep->res->in_flight)
        uv_timer_stop(&ep->res->timer); /* nobody routes here: stop looking it up */
    while (!pxy_list_empty(&ep->conns))
        us_retire(PXY_CONTAINER(ep->conns.next, pxy_us_conn_t, link));
    ep_maybe_free(w, ep);
}

static void mark_down(mesh_proxy_worker_t *w, pxy_endpoint_t *ep, const char *why)
{
    uint64_t ms = mesh_bal_backoff_failed(&ep->bo, &w->bal, uv_now(w->loop));
    mesh_cs_connect_failure(&w->cs, ep->addr);
    mesh_warn(ACTOR, "worker %d: upstream %s down for %llu ms: %s", w->cfg.worker_index, ep->addr,
              (unsigned long long)ms, why);
}

/* ---- upstream connection ------------------------------------------------------------------ */

static void us_on_teardown(mesh_h2_conn_t *c)
{
    pxy_us_conn_t *u = (pxy_us_conn_t *)c;
    mesh_h2_field_cache_clear(&u->fields); /* (before the session and its tables go) */
    /* Nothing reaches the app before the TLS handshake is done: calls on a connection whose
     * handshake failed never left, and the endpoint is down as after a failed connect. */
    int tls_unfinished = c->tls && !c->tls->established;
    int never_sent = !u->connected || tls_unfinished;
    char why[320];
    if (c->tls && c->tls->failed && c->tls->fail_class == MESH_TLS_FAIL_TIMEOUT) {
        snprintf(why, sizeof(why), "upstream %s: %s", u->name, mesh_tls_reason(c->tls));
        if (u->ep)
            mark_down(u->w, u->ep, why);
    } else if (c->tls && c->tls->failed) {
        snprintf(why, sizeof(why), "TLS handshake with upstream %s failed: %s", u->name,
                 mesh_tls_reason(c->tls));
        if (u->ep)
            mark_down(u->w, u->ep, why);
    } else if (never_sent) {
        snprintf(why, sizeof(why), "cannot connect to upstream %s", u->name);
    } else {
        snprintf(why, sizeof(why), "connection to upstream %s lost", u->name);
    }
    if (u->ep) {
        pxy_list_remove(&u->link); /* from conns or retired: no new call comes here */
        if (!u->retired)
            u->ep->n_conns--;
        u->retired = 1;
        /* Still pointing at the endpoint until closed: keep it findable, so an endpoint freed
         * meanwhile (the worker's teardown) can detach it first. */
        pxy_list_push(&u->ep->closing, &u->link);
    }
    while (!pxy_list_empty(&u->streams)) {
        pxy_stream_t *ps = PXY_CONTAINER(u->streams.next, pxy_stream_t, us_link);
        /* A stream nghttp2 never opened (queued beyond the peer's limit) never left. */
        int unsent = never_sent || ps->us_id < 0 ||
                     (c->session && !nghttp2_session_get_stream_user_data(c->session, ps->us_id));
        if (c->session && ps->us_id > 0)
            nghttp2_session_set_stream_user_data(c->session, ps->us_id, NULL);
        pxy_stream_upstream_lost(ps, unsent, why);
    }
}

static void us_on_closed(mesh_h2_conn_t *c)
{
    pxy_us_conn_t *u = (pxy_us_conn_t *)c;
    mesh_proxy_worker_t *w = u->w;
    pxy_endpoint_t *ep = u->ep;
    if (ep)
        pxy_list_remove(&u->link); /* from ep->closing */
    mesh_svc_policy_unref(u->tls_pol);
    free(u);
    w->n_us_open--;
    if (ep) {
        ep->n_held--;
        ep_maybe_free(w, ep);
    }
    pxy_worker_handle_closed(w);
}

static size_t us_outstanding(mesh_h2_conn_t *c)
{
    return ((pxy_us_conn_t *)c)->n_streams;
}

/* A liveness PING went out on a quiet connection with calls waiting (suspect), or the peer
 * answered or the connection closed: new calls avoid the endpoint meanwhile. */
static void us_on_suspect(mesh_h2_conn_t *c, int suspect)
{
    pxy_us_conn_t *u = (pxy_us_conn_t *)c;
    pxy_endpoint_t *ep = u->ep;
    if (!ep)
        return;
    if (suspect) {
        ep->n_suspect++;
        mesh_info(ACTOR,
                  "worker %d: upstream %s suspect: %zu call(s) waiting, nothing received for "
                  "%llu ms; PING sent, new calls go to other instances",
                  u->w->cfg.worker_index, u->name, u->n_streams,
                  (unsigned long long)(uv_now(u->w->loop) - c->live.last_rx));
    } else if (ep->n_suspect > 0) {
        ep->n_suspect--;
    }
}

/* Mesh TLS: the server's certificate must prove the node its record names (a key holder of the
 * mesh cannot answer for another node's address). Other TLS: the chain and name checks only. */
static int us_on_tls_done(mesh_h2_conn_t *c)
{
    pxy_us_conn_t *u = (pxy_us_conn_t *)c;
    if (!u->ep || !u->ep->mesh_node || u->tls_holder != u->w->cfg.mesh_tls)
        return 0;
    struct x509_st *x = mesh_tls_peer_cert(c->tls);
    ca_peer_identity_t id;
    char err[256], why[400];
    int rv = 0;
    if (!x || ca_peer_identity_from_x509(x, NULL, &id, err, sizeof(err)) != 0) {
        snprintf(why, sizeof(why), "the server's certificate proves no mesh node: %s",
                 x ? err : "none");
        rv = -1;
    } else {
        if (strcmp(id.node, u->ep->mesh_node) != 0) {
            snprintf(why, sizeof(why), "the server proves node '%s', its record names '%s'",
                     id.node, u->ep->mesh_node);
            rv = -1;
        }
        ca_peer_identity_destroy(&id);
    }
    if (x)
        ca_crypto(NULL, 0)->x509_free(x);
    if (rv < 0)
        mesh_tls_refuse(c->tls, why);
    return rv;
}

static const mesh_h2_conn_ops_t us_ops = {
    .on_teardown = us_on_teardown,
    .on_closed = us_on_closed,
    .on_idle = NULL,
    .outstanding = us_outstanding,
    .on_suspect = us_on_suspect,
    .on_tls_done = us_on_tls_done,
};

/* Closes a connection that carries no call: GOAWAY when the session is up (the flush closes
 * it once written, as nghttp2 then wants neither to read nor to write), else at once. */
static void us_close_idle(pxy_us_conn_t *u)
{
    if (u->h2.closing || u->h2.want_close)
        return;
    if (u->connected && u->h2.session &&
        nghttp2_submit_goaway(u->h2.session, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, NULL, 0) ==
            0) {
        u->goaway = 1;
        mesh_h2_conn_flush(&u->h2);
        return;
    }
    mesh_h2_conn_close(&u->h2);
}

/* Takes u out of its endpoint's pool: it finishes its calls and then closes. */
static void us_retire(pxy_us_conn_t *u)
{
    pxy_endpoint_t *ep = u->ep;
    if (u->retired || !ep)
        return;
    pxy_list_remove(&u->link);
    ep->n_conns--;
    u->retired = 1;
    pxy_list_push(&ep->retired, &u->link);
    if (u->n_streams == 0)
        us_close_idle(u);
}

void pxy_us_conn_retired_idle(pxy_us_conn_t *u)
{
    us_close_idle(u);
}

static void on_connect_timeout(uv_timer_t *t)
{
    pxy_us_conn_t *u = t->data;
    if (u->ep && !u->retired)
        mark_down(u->w, u->ep, "connect timeout");
    mesh_h2_conn_close(&u->h2);
}

static void on_connect(uv_connect_t *req, int status)
{
    pxy_us_conn_t *u = req->data;
    if (u->h2.closing)
        return;
    uv_timer_stop(&u->h2.timer);
    if (status < 0) {
        if (u->ep && !u->retired)
            mark_down(u->w, u->ep, uv_strerror(status));
        mesh_h2_conn_close(&u->h2);
        return;
    }
    mesh_proxy_worker_t *w = u->w;
    u->connected = 1;
    if (u->ep && !u->retired)
        mesh_bal_backoff_connected(&u->ep->bo, &w->bal);
    uv_tcp_nodelay(&u->h2.tcp, 1);
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, w->cfg.stream_buffer},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, 4 * w->cfg.max_header_list_size},
        /* gRPC does not use stream priorities: no dependency tree to maintain. */
        {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
    };
    nghttp2_submit_settings(u->h2.session, NGHTTP2_FLAG_NONE, iv, 4);
    nghttp2_session_set_local_window_size(u->h2.session, NGHTTP2_FLAG_NONE, 0,
                                          (int32_t)w->cfg.conn_window);
    if (mesh_h2_conn_start(&u->h2) < 0) {
        mesh_h2_conn_close(&u->h2);
        return;
    }
    mesh_h2_conn_tls_timeout(&u->h2, pxy_ms_or_off(w->cfg.tls_handshake_timeout_ms));
    mesh_h2_conn_keepalive(&u->h2, pxy_ms_or_off(w->cfg.keepalive_interval_ms),
                           w->cfg.keepalive_timeout_ms);
    mesh_h2_conn_liveness(&u->h2, pxy_ms_or_off(w->cfg.upstream_stall_ms),
                          w->cfg.upstream_stall_timeout_ms);
    /* Send the calls that waited for this connection. */
    pxy_link_t *l = u->streams.next;
    while (l != &u->streams && !u->h2.closing) {
        pxy_stream_t *ps = PXY_CONTAINER(l, pxy_stream_t, us_link);
        l = l->next;
        if (ps->us_id < 0)
            pxy_stream_submit(ps);
    }
    /* Retired while connecting and its calls are gone already: done. */
    if (u->retired && u->n_streams == 0)
        us_close_idle(u);
}

/* The TLS a call of service settings sp needs to ep (NULL: h2c), and the name to check in the
 * server's certificate (NULL: the instance's host). The service's own setting first, then the
 * node's. */
static mesh_tls_holder_t *us_tls_for(mesh_proxy_worker_t *w, const pxy_endpoint_t *ep,
                                     const mesh_svc_policy_t *sp, const char **name)
{
    if (sp && sp->upstream_tls != MESH_SVC_TLS_DEFAULT) {
        *name = sp->tls_name;
        return sp->upstream_tls == MESH_SVC_TLS_OWN ? sp->tls : NULL;
    }
    if (ep->mesh_tls && w->cfg.mesh_tls) {
        *name = NULL;
        return w->cfg.mesh_tls;
    }
    *name = w->cfg.upstream_tls_name;
    return w->cfg.upstream_tls;
}

/* Makes the connection TLS from holder: the server's certificate must name the instance's host
 * (or name); a name is also sent as SNI (a mesh identity: verified against the mesh CA only). The
 * endpoint's last session is offered for resumption and the ones the server hands out are kept for
 * the next connection. */
static int us_tls(pxy_us_conn_t *u, mesh_tls_holder_t *holder, const char *name)
{
    char host[256];
    int port;
    if (holder == u->w->cfg.mesh_tls) {
        name = NULL; /* a mesh identity: the chain to the mesh CA is what is checked */
    } else if (!name || !*name) {
        if (mesh_addr_split(u->ep->addr, host, sizeof(host), &port) != 0)
            snprintf(host, sizeof(host), "%s", u->ep->addr);
        name = host;
    }
    mesh_tls_ctx_t *ctx = mesh_tls_holder_get(holder);
    if (!ctx)
        return -1; /* a mesh identity not issued yet */
    int rv = mesh_h2_conn_set_tls(&u->h2, ctx, name, "upstream");
    mesh_tls_ctx_unref(ctx);
    if (rv == 0)
        mesh_tls_use_session(u->h2.tls, &u->ep->tls_sess);
    return rv;
}

static pxy_us_conn_t *us_conn_open(mesh_proxy_worker_t *w, pxy_endpoint_t *ep,
                                   uint64_t connect_timeout_ms, mesh_tls_holder_t *tls,
                                   const char *tls_name, const mesh_svc_policy_t *sp)
{
    pxy_us_conn_t *u = calloc(1, sizeof(*u));
    if (!u)
        return NULL;
    u->w = w;
    u->ep = ep;
    pxy_list_init(&u->streams);
    snprintf(u->name, sizeof(u->name), "%s", ep->addr);
    if (mesh_h2_conn_init(&u->h2, w->loop, &us_ops, w->rbuf, w->rbuf_len, u->name) < 0) {
        free(u);
        return NULL;
    }
    w->n_handles++;
    w->n_us_open++;
    ep->n_held++;
    pxy_list_push(&ep->conns, &u->link);
    ep->n_conns++;
    w->stats.upstream_conns++;
    nghttp2_session *s;
    if (nghttp2_session_client_new3(&s, w->us_cbs, u, w->opt, &w->h2mem.mem) != 0) {
        mesh_h2_conn_close(&u->h2);
        return NULL;
    }
    mesh_h2_conn_set_session(&u->h2, s);
    if (w->flusher_on)
        mesh_h2_conn_set_flusher(&u->h2, &w->flusher);
    u->tls_holder = tls;
    if (tls && sp && tls == sp->tls)
        u->tls_pol = mesh_svc_policy_ref((mesh_svc_policy_t *)sp); /* tls lives while u does */
    if (tls && us_tls(u, tls, tls_name) < 0) {
        mark_down(w, ep, "no TLS context (the node's identity has no certificate yet?)");
        mesh_h2_conn_close(&u->h2);
        return NULL;
    }
    u->creq.data = u;
    int rv = uv_tcp_connect(&u->creq, &u->h2.tcp, &ep->sa.sa, on_connect);
    if (rv < 0) {
        mark_down(w, ep, uv_strerror(rv));
        mesh_h2_conn_close(&u->h2);
        return NULL;
    }
    uv_timer_start(&u->h2.timer, on_connect_timeout, connect_timeout_ms, 0);
    return u;
}

/* Streams this connection may still take before the peer's limit. */
static size_t us_room(pxy_us_conn_t *u)
{
    if (u->h2.closing || u->h2.want_close || u->goaway)
        return 0;
    /* Before the peer's SETTINGS: gRPC servers allow at least 100. */
    uint32_t max = u->connected ? nghttp2_session_get_remote_settings(
                                      u->h2.session, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS)
                                : 100;
    uint32_t cap = u->w->cfg.upstream_streams_per_conn;
    if (cap && max > cap)
        max = cap;
    return u->n_streams < max ? max - u->n_streams : 0;
}

int pxy_endpoint_attach(mesh_proxy_worker_t *w, pxy_endpoint_t *ep, pxy_stream_t *ps)
{
    pxy_us_conn_t *best = NULL, *least = NULL;
    const char *tls_name = NULL;
    mesh_tls_holder_t *tls = us_tls_for(w, ep, ps->svc_pol, &tls_name);
    uint32_t n_same = 0; /* connections of this TLS setting (the limit is per setting) */
    for (pxy_link_t *l = ep->conns.next, *next; l != &ep->conns; l = next) {
        next = l->next;
        pxy_us_conn_t *u = PXY_CONTAINER(l, pxy_us_conn_t, link);
        if (u->tls_holder != tls) {
            /* Made for another TLS setting (another service at this address), or for service
             * settings a reload replaced: nobody but the connection holds those any more, so
             * no call will want it again. */
            if (u->tls_pol && u->n_streams == 0 &&
                atomic_load_explicit(&u->tls_pol->refs, memory_order_acquire) == 1)
                us_retire(u);
            continue;
        }
        n_same++;
        if (us_room(u) > 0) {
            best = u;
            break;
        }
        if (!u->h2.closing && !u->goaway && (!least || u->n_streams < least->n_streams))
            least = u;
    }
    if (!best && n_same < w->cfg.max_upstream_conns)
        best = us_conn_open(w, ep,
                            ps->svc_pol && ps->svc_pol->connect_timeout_ms
                                ? ps->svc_pol->connect_timeout_ms
                                : w->cfg.connect_timeout_ms,
                            tls, tls_name, ps->svc_pol);
    if (!best)
        best = least;
    if (!best)
        return -1;
    ps->us = best;
    ps->us_id = -1;
    pxy_list_push(&best->streams, &ps->us_link);
    best->n_streams++;
    if (best->connected)
        pxy_stream_submit(ps);
    return 0;
}

/* Closes every connection of list at once (worker teardown); they forget their endpoint. */
static void us_close_list(pxy_endpoint_t *ep, pxy_link_t *list)
{
    while (!pxy_list_empty(list)) {
        pxy_us_conn_t *u = PXY_CONTAINER(list->next, pxy_us_conn_t, link);
        pxy_list_remove(&u->link);
        if (!u->retired)
            ep->n_conns--;
        u->retired = 1;
        ep->n_held--;
        u->ep = NULL;
        if (u->h2.tls)
            mesh_tls_use_session(u->h2.tls, NULL);
        mesh_h2_conn_close(&u->h2);
    }
}

void pxy_us_close_all(mesh_proxy_worker_t *w)
{
    for (size_t b = 0; b < w->ep_hash_size; b++) {
        for (pxy_endpoint_t *ep = w->ep_hash[b]; ep; ep = ep->hnext) {
            us_close_list(ep, &ep->conns);
            us_close_list(ep, &ep->retired);
            while (!pxy_list_empty(&ep->closing)) { /* already closing: only forget the endpoint */
                pxy_us_conn_t *u = PXY_CONTAINER(ep->closing.next, pxy_us_conn_t, link);
                pxy_list_remove(&u->link);
                ep->n_held--;
                u->ep = NULL;
                if (u->h2.tls)
                    mesh_tls_use_session(u->h2.tls, NULL);
            }
        }
    }
}

void pxy_endpoints_free(mesh_proxy_worker_t *w)
{
    pxy_us_close_all(w);
    for (size_t b = 0; b < w->ep_hash_size; b++) {
        pxy_endpoint_t *next;
        for (pxy_endpoint_t *ep = w->ep_hash[b]; ep; ep = next) {
            next = ep->hnext;
            if (ep->res)
                res_detach(ep->res);
            mesh_outlier_board_put(w->board, ep->ol);
            mesh_tls_session_clear(&ep->tls_sess);
            free(ep->mesh_node);
            free(ep);
        }
    }
    w->n_endpoints = 0;
    free(w->ep_hash);
    w->ep_hash = NULL;
    w->ep_hash_size = 0;
}
