/*
 * transport/upstream_pool.c: per-worker upstream endpoints and their pools of multiplexed
 * HTTP/2 client connections.
 *
 * An endpoint is one "host:port". Calls share its connections up to the peer's
 * SETTINGS_MAX_CONCURRENT_STREAMS (or upstream_streams_per_conn when set and lower, which
 * spreads calls so a gRPC server can parse them on more than one thread), then another
 * connection is opened (up to max_upstream_conns; beyond that the least loaded one takes the
 * stream, and nghttp2 queues it if the peer's limit is reached). A connect failure or timeout
 * marks the endpoint down for a backoff that doubles up to backoff_max_ms; round robin skips
 * it meanwhile, and the calls that waited for that connection are retried on another
 * instance (they never reached an application).
 */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/log.h"
#include "transport/proxy_internal.h"

#define ACTOR "proxy"

static size_t hash_str(const char *s)
{
    size_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* Resolves "host:port" / "[v6]:port"; numeric first, then the system resolver (called when
 * a routing table is installed, not per call). */
static int resolve(const char *addr, struct sockaddr_storage *out)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr)
        return -1;
    size_t hl = (size_t)(colon - addr);
    const char *h = addr;
    if (addr[0] == '[' && hl >= 2 && addr[hl - 1] == ']') {
        h = addr + 1;
        hl -= 2;
    }
    if (hl >= sizeof(host))
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0 || !res)
        return -1;
    memcpy(out, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

pxy_endpoint_t *pxy_endpoint_get(mesh_proxy_worker_t *w, const char *addr)
{
    if (!w->ep_hash) {
        w->ep_hash_size = 256;
        w->ep_hash = calloc(w->ep_hash_size, sizeof(*w->ep_hash));
        if (!w->ep_hash)
            return NULL;
    }
    size_t b = hash_str(addr) % w->ep_hash_size;
    for (pxy_endpoint_t *ep = w->ep_hash[b]; ep; ep = ep->hnext)
        if (strcmp(ep->addr, addr) == 0)
            return ep;
    pxy_endpoint_t *ep = calloc(1, sizeof(*ep));
    if (!ep)
        return NULL;
    ep->addr = strdup(addr);
    if (!ep->addr) {
        free(ep);
        return NULL;
    }
    ep->resolved = resolve(addr, &ep->sa) == 0 ? 1 : -1;
    if (ep->resolved < 0)
        mesh_warn(ACTOR, "worker %d: cannot resolve upstream %s", w->cfg.worker_index, addr);
    ep->backoff_ms = w->cfg.backoff_initial_ms;
    pxy_list_init(&ep->conns);
    ep->hnext = w->ep_hash[b];
    w->ep_hash[b] = ep;
    pxy_list_push(&w->endpoints, &ep->all);
    return ep;
}

void pxy_endpoint_release(mesh_proxy_worker_t *w, pxy_endpoint_t *ep)
{
    (void)w;
    (void)ep; /* endpoints live until the worker is freed (for now) */
}

int pxy_endpoint_live(const mesh_proxy_worker_t *w, const pxy_endpoint_t *ep)
{
    return ep->resolved > 0 && ep->down_until <= uv_now(w->loop);
}

static void mark_down(mesh_proxy_worker_t *w, pxy_endpoint_t *ep, const char *why)
{
    ep->down_until = uv_now(w->loop) + ep->backoff_ms;
    mesh_warn(ACTOR, "worker %d: upstream %s down for %llu ms: %s", w->cfg.worker_index, ep->addr,
              (unsigned long long)ep->backoff_ms, why);
    ep->backoff_ms *= 2;
    if (ep->backoff_ms > w->cfg.backoff_max_ms)
        ep->backoff_ms = w->cfg.backoff_max_ms;
}

/* ---- upstream connection ------------------------------------------------------------------ */

static void us_on_teardown(mesh_h2_conn_t *c)
{
    pxy_us_conn_t *u = (pxy_us_conn_t *)c;
    int never_sent = !u->connected;
    char why[160];
    if (never_sent)
        snprintf(why, sizeof(why), "cannot connect to upstream %s", u->name);
    else
        snprintf(why, sizeof(why), "connection to upstream %s lost", u->name);
    if (u->ep) {
        pxy_list_remove(&u->link);
        u->ep->n_conns--;
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
    free(u);
    pxy_worker_handle_closed(w);
}

static const mesh_h2_conn_ops_t us_ops = {
    .on_teardown = us_on_teardown,
    .on_closed = us_on_closed,
    .on_idle = NULL,
};

static void on_connect_timeout(uv_timer_t *t)
{
    pxy_us_conn_t *u = t->data;
    if (u->ep)
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
        if (u->ep)
            mark_down(u->w, u->ep, uv_strerror(status));
        mesh_h2_conn_close(&u->h2);
        return;
    }
    mesh_proxy_worker_t *w = u->w;
    u->connected = 1;
    if (u->ep)
        u->ep->backoff_ms = w->cfg.backoff_initial_ms;
    uv_tcp_nodelay(&u->h2.tcp, 1);
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, w->cfg.stream_buffer},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, 4 * w->cfg.max_header_list_size},
        /* gRPC does not use stream priorities: no dependency tree to maintain. */
        {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
    };
    nghttp2_submit_settings(u->h2.session, NGHTTP2_FLAG_NONE, iv, 4);
    nghttp2_session_set_local_window_size(u->h2.session, NGHTTP2_FLAG_NONE, 0, 1 << 30);
    if (mesh_h2_conn_start(&u->h2) < 0) {
        mesh_h2_conn_close(&u->h2);
        return;
    }
    mesh_h2_conn_keepalive(&u->h2, w->cfg.keepalive_interval_ms, w->cfg.keepalive_timeout_ms);
    /* Send the calls that waited for this connection. */
    pxy_link_t *l = u->streams.next;
    while (l != &u->streams && !u->h2.closing) {
        pxy_stream_t *ps = PXY_CONTAINER(l, pxy_stream_t, us_link);
        l = l->next;
        if (ps->us_id < 0)
            pxy_stream_submit(ps);
    }
}

static pxy_us_conn_t *us_conn_open(mesh_proxy_worker_t *w, pxy_endpoint_t *ep)
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
    u->creq.data = u;
    int rv = uv_tcp_connect(&u->creq, &u->h2.tcp, (const struct sockaddr *)&ep->sa, on_connect);
    if (rv < 0) {
        mark_down(w, ep, uv_strerror(rv));
        mesh_h2_conn_close(&u->h2);
        return NULL;
    }
    uv_timer_start(&u->h2.timer, on_connect_timeout, w->cfg.connect_timeout_ms, 0);
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
    for (pxy_link_t *l = ep->conns.next; l != &ep->conns; l = l->next) {
        pxy_us_conn_t *u = PXY_CONTAINER(l, pxy_us_conn_t, link);
        if (us_room(u) > 0) {
            best = u;
            break;
        }
        if (!u->h2.closing && !u->goaway && (!least || u->n_streams < least->n_streams))
            least = u;
    }
    if (!best && ep->n_conns < w->cfg.max_upstream_conns)
        best = us_conn_open(w, ep);
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

void pxy_us_close_all(mesh_proxy_worker_t *w)
{
    for (pxy_link_t *e = w->endpoints.next; e != &w->endpoints; e = e->next) {
        pxy_endpoint_t *ep = PXY_CONTAINER(e, pxy_endpoint_t, all);
        while (!pxy_list_empty(&ep->conns)) {
            pxy_us_conn_t *u = PXY_CONTAINER(ep->conns.next, pxy_us_conn_t, link);
            mesh_h2_conn_close(&u->h2); /* teardown unlinks it */
            if (!pxy_list_empty(&ep->conns) && ep->conns.next == &u->link) {
                /* Close was deferred (inside a callback): unlink now. */
                pxy_list_remove(&u->link);
                ep->n_conns--;
                u->ep = NULL;
            }
        }
    }
}

void pxy_endpoints_free(mesh_proxy_worker_t *w)
{
    pxy_us_close_all(w);
    while (!pxy_list_empty(&w->endpoints)) {
        pxy_endpoint_t *ep = PXY_CONTAINER(w->endpoints.next, pxy_endpoint_t, all);
        pxy_list_remove(&ep->all);
        free(ep->addr);
        free(ep);
    }
    free(w->ep_hash);
    w->ep_hash = NULL;
}
