/*
 * transport/proxy_worker.c: the proxy worker: its SO_REUSEPORT listener, client
 * connections, routing-table installs, graceful drain and teardown.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/log.h"
#include "transport/proxy_internal.h"
#include "transport/tls_holder.h"
#include "transport/tls_peer.h"

#define ACTOR         "proxy"
#define READ_BUF_SIZE (64 * 1024)

static void maybe_release(mesh_proxy_worker_t *w)
{
    if (!w->freeing || w->n_handles > 0)
        return;
    pxy_routes_free(w);
    mesh_chunk_pool_destroy(&w->pool);
    mesh_h2_mem_destroy(&w->h2mem);
    nghttp2_session_callbacks_del(w->ds_cbs);
    nghttp2_session_callbacks_del(w->us_cbs);
    nghttp2_option_del(w->opt);
    free(w->rbuf);
    free(w->default_upstream);
    mesh_cs_free(&w->cs);
    if (w->own_board)
        mesh_outlier_board_free(w->board);
    free(w);
}

int pxy_outlier_board_init(mesh_proxy_worker_t *w)
{
    w->board = w->cfg.outlier_board;
    if (w->board)
        return 0;
    w->board = mesh_outlier_board_new();
    w->own_board = 1;
    return w->board ? 0 : -1;
}

void pxy_worker_handle_closed(mesh_proxy_worker_t *w)
{
    w->n_handles--;
    pxy_worker_check_drained(w);
    maybe_release(w);
}

void pxy_worker_check_drained(mesh_proxy_worker_t *w)
{
    if (!w->draining || w->freeing || w->listening || w->tls_listening || w->n_ds_conns > 0 ||
        !w->drain_done)
        return;
    void (*done)(void *) = w->drain_done;
    w->drain_done = NULL;
    mesh_info(ACTOR, "worker %d drained", w->cfg.worker_index);
    done(w->drain_arg);
}

/* ---- client connections -------------------------------------------------------------------- */

void pxy_ds_conn_maybe_finish(pxy_ds_conn_t *d)
{
    /* Close once the last bytes are written: the flush reports idle then. */
    if (d->draining && d->n_streams == 0)
        mesh_h2_conn_flush(&d->h2);
}

static void ds_on_teardown(mesh_h2_conn_t *c)
{
    pxy_ds_conn_t *d = (pxy_ds_conn_t *)c;
    mesh_debug(ACTOR, "%s closing with %zu calls", d->name, d->n_streams);
    mesh_h2_field_cache_clear(&d->fields); /* (before the session and its tables go) */
    while (!pxy_list_empty(&d->streams)) {
        pxy_stream_t *ps = PXY_CONTAINER(d->streams.next, pxy_stream_t, ds_link);
        if (c->session)
            nghttp2_session_set_stream_user_data(c->session, ps->ds_id, NULL);
        pxy_stream_downstream_lost(ps);
    }
    d->draining = 0;
}

static void ds_on_closed(mesh_h2_conn_t *c)
{
    pxy_ds_conn_t *d = (pxy_ds_conn_t *)c;
    mesh_proxy_worker_t *w = d->w;
    pxy_list_remove(&d->link);
    w->n_ds_conns--;
    mesh_peer_id_free(d->peer_id);
    free(d);
    pxy_worker_handle_closed(w);
}

static void ds_on_idle(mesh_h2_conn_t *c)
{
    pxy_ds_conn_t *d = (pxy_ds_conn_t *)c;
    if (d->draining && d->n_streams == 0)
        mesh_h2_conn_close(c);
}

/* The handshake is done: read once what the client's certificate proves, for every call. */
static int ds_on_tls_done(mesh_h2_conn_t *c)
{
    pxy_ds_conn_t *d = (pxy_ds_conn_t *)c;
    char why[256];
    d->peer_id = mesh_tls_peer_id(c->tls, why, sizeof(why));
    if (d->peer_id)
        mesh_debug(ACTOR, "%s: peer %s", d->name, d->peer_id->node_uri.p);
    else if (why[0])
        mesh_debug(ACTOR, "%s: no peer identity: %s", d->name, why);
    return 0;
}

static const mesh_h2_conn_ops_t ds_ops = {
    .on_teardown = ds_on_teardown,
    .on_closed = ds_on_closed,
    .on_idle = ds_on_idle,
    .on_tls_done = ds_on_tls_done,
};

/* Creates a client connection; with server set it is accepted from it, else fd is adopted;
 * tls: it speaks TLS (the worker's current server context). */
static pxy_ds_conn_t *ds_conn_new(mesh_proxy_worker_t *w, uv_stream_t *server, int fd, int tls)
{
    pxy_ds_conn_t *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->w = w;
    pxy_list_init(&d->streams);
    snprintf(d->name, sizeof(d->name), "client#%llu", (unsigned long long)w->stats.client_conns);
    if (mesh_h2_conn_init(&d->h2, w->loop, &ds_ops, w->rbuf, w->rbuf_len, d->name) < 0) {
        free(d);
        return NULL;
    }
    pxy_list_push(&w->ds_conns, &d->link);
    w->n_ds_conns++;
    w->n_handles++;
    w->stats.client_conns++;
    nghttp2_session *s = NULL;
    int rv = server ? uv_accept(server, (uv_stream_t *)&d->h2.tcp) : uv_tcp_open(&d->h2.tcp, fd);
    if (rv < 0 || nghttp2_session_server_new3(&s, w->ds_cbs, d, w->opt, &w->h2mem.mem) != 0) {
        mesh_h2_conn_close(&d->h2);
        return NULL;
    }
    mesh_h2_conn_set_session(&d->h2, s);
    if (tls) {
        mesh_tls_ctx_t *ctx = mesh_tls_holder_get(w->cfg.tls);
        /* (no context yet: a mesh identity the CA has not issued; the client tries again) */
        int trv = ctx ? mesh_h2_conn_set_tls(&d->h2, ctx, NULL, "proxy") : -1;
        mesh_tls_ctx_unref(ctx);
        if (trv < 0) {
            mesh_h2_conn_close(&d->h2);
            return NULL;
        }
        mesh_h2_conn_tls_timeout(&d->h2, pxy_ms_or_off(w->cfg.tls_handshake_timeout_ms));
    }
    int plen = sizeof(d->peer);
    if (uv_tcp_getpeername(&d->h2.tcp, (struct sockaddr *)&d->peer, &plen) < 0)
        d->peer.ss_family = AF_UNSPEC;
    if (w->flusher_on)
        mesh_h2_conn_set_flusher(&d->h2, &w->flusher);
    uv_tcp_nodelay(&d->h2.tcp, 1);
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, w->cfg.max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, w->cfg.stream_buffer},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, w->cfg.max_header_list_size},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        /* gRPC does not use stream priorities: no dependency tree to maintain. */
        {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
    };
    nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, iv, 5);
    nghttp2_session_set_local_window_size(s, NGHTTP2_FLAG_NONE, 0, (int32_t)w->cfg.conn_window);
    if (mesh_h2_conn_start(&d->h2) < 0) {
        mesh_h2_conn_close(&d->h2);
        return NULL;
    }
    mesh_h2_conn_keepalive(&d->h2, pxy_ms_or_off(w->cfg.keepalive_interval_ms),
                           w->cfg.keepalive_timeout_ms);
    return d;
}

static void on_connection(uv_stream_t *server, int status)
{
    mesh_proxy_worker_t *w = server->data;
    if (status < 0 || w->draining || w->freeing)
        return;
    /* The main listener is TLS when TLS has no listener of its own. */
    ds_conn_new(w, server, -1, w->cfg.tls && !w->cfg.tls_listen_host);
}

static void on_tls_connection(uv_stream_t *server, int status)
{
    mesh_proxy_worker_t *w = server->data;
    if (status < 0 || w->draining || w->freeing)
        return;
    ds_conn_new(w, server, -1, 1);
}

mesh_h2_conn_t *pxy_ds_conn_adopt(mesh_proxy_worker_t *w, int fd)
{
    pxy_ds_conn_t *d = ds_conn_new(w, NULL, fd, 0);
    return d ? &d->h2 : NULL;
}

/* ---- the worker ---------------------------------------------------------------------------- */

static void defaults(mesh_proxy_config_t *c)
{
#define DEF(f, v)                                                                                  \
    if (!c->f)                                                                                     \
    c->f = v
    DEF(max_concurrent_streams, 1000);
    DEF(max_header_list_size, 16384);
    DEF(stream_buffer, 256 * 1024);
    DEF(conn_window, 1u << 30);
    DEF(connect_timeout_ms, 1000);
    DEF(keepalive_interval_ms, 30000);
    DEF(keepalive_timeout_ms, 10000);
    DEF(upstream_stall_ms, 500);
    DEF(upstream_stall_timeout_ms, 500);
    DEF(backoff_initial_ms, MESH_BAL_BACKOFF_INITIAL_MS);
    DEF(backoff_max_ms, MESH_BAL_BACKOFF_MAX_MS);
    DEF(max_upstream_conns, 8);
    DEF(dns_refresh_ms, 30000);
    DEF(dns_retry_initial_ms, 1000);
    DEF(dns_retry_max_ms, 30000);
    DEF(tls_handshake_timeout_ms, 10000);
#undef DEF
    /* A failing name is retried at least as often as a good one is refreshed. */
    if (c->dns_retry_max_ms > c->dns_refresh_ms)
        c->dns_retry_max_ms = c->dns_refresh_ms;
    if (c->dns_retry_max_ms < c->dns_retry_initial_ms)
        c->dns_retry_max_ms = c->dns_retry_initial_ms;
    if (c->stream_buffer < 16384)
        c->stream_buffer = 16384;
    if (c->stream_buffer > (1u << 30))
        c->stream_buffer = 1u << 30;
    if (c->conn_window > (1u << 31) - 1)
        c->conn_window = (1u << 31) - 1;
    if (c->conn_window < c->stream_buffer)
        c->conn_window = c->stream_buffer;
}

static void on_flusher_closed(uv_handle_t *h)
{
    pxy_worker_handle_closed(PXY_CONTAINER(h->data, mesh_proxy_worker_t, flusher));
}

static void on_listener_closed(uv_handle_t *h)
{
    mesh_proxy_worker_t *w = h->data;
    w->listening = 0;
    pxy_worker_handle_closed(w);
}

static void on_tls_listener_closed(uv_handle_t *h)
{
    mesh_proxy_worker_t *w = h->data;
    w->tls_listening = 0;
    pxy_worker_handle_closed(w);
}

static void close_listeners(mesh_proxy_worker_t *w)
{
    if (w->listening && !uv_is_closing((uv_handle_t *)&w->listener))
        uv_close((uv_handle_t *)&w->listener, on_listener_closed);
    if (w->tls_listening && !uv_is_closing((uv_handle_t *)&w->tls_listener))
        uv_close((uv_handle_t *)&w->tls_listener, on_tls_listener_closed);
}

/* Binds h to host:port with SO_REUSEPORT and listens; *port_out gets the bound port. Returns 0
 * or a negative libuv error (once the handle is initialized, *flag is set and it is counted in
 * n_handles: close it with close_listeners). */
static int listen_on(mesh_proxy_worker_t *w, uv_tcp_t *h, int *flag, const char *host, int port,
                     uv_connection_cb cb, int *port_out)
{
    struct sockaddr_storage sa;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&sa) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&sa) != 0)
        return UV_EINVAL;
    int rv = uv_tcp_init_ex(w->loop, h, sa.ss_family);
    if (rv < 0)
        return rv;
    h->data = w;
    *flag = 1;
    w->n_handles++;
    uv_os_fd_t fd;
    int one = 1;
    if (uv_fileno((uv_handle_t *)h, &fd) == 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    rv = uv_tcp_bind(h, (const struct sockaddr *)&sa, 0);
    if (rv == 0)
        rv = uv_listen((uv_stream_t *)h, 1024, cb);
    if (rv < 0)
        return rv;
    struct sockaddr_storage bound;
    int blen = sizeof(bound);
    uv_tcp_getsockname(h, (struct sockaddr *)&bound, &blen);
    *port_out = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                  : ((struct sockaddr_in *)&bound)->sin_port);
    return 0;
}

/* The worker's balancing settings (transport/lb.h) and its PRNG, seeded apart per worker. */
static void lb_init(mesh_proxy_worker_t *w)
{
    if (w->cfg.lb)
        w->lb = *w->cfg.lb;
    mesh_lb_cfg_fix(&w->lb);
    mesh_lb_rng_seed(&w->rng, uv_hrtime() ^ ((uint64_t)(w->cfg.worker_index + 1) << 40));
}

mesh_proxy_worker_t *mesh_proxy_worker_new(uv_loop_t *loop, const mesh_proxy_config_t *cfg)
{
    mesh_proxy_worker_t *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->loop = loop;
    w->cfg = *cfg;
    defaults(&w->cfg);
    w->bal = (mesh_bal_backoff_cfg_t){.initial_ms = w->cfg.backoff_initial_ms,
                                      .max_ms = w->cfg.backoff_max_ms};
    mesh_bal_backoff_cfg_fix(&w->bal);
    w->outlier = (mesh_outlier_cfg_t){.consecutive = w->cfg.outlier_consecutive,
                                      .base_ejection_ms = w->cfg.outlier_base_ejection_ms,
                                      .max_ejection_ms = w->cfg.outlier_max_ejection_ms,
                                      .max_ejection_percent = w->cfg.outlier_max_ejection_percent,
                                      .disabled = w->cfg.outlier_off};
    mesh_outlier_cfg_fix(&w->outlier);
    w->olw = (mesh_olw_cfg_t){.threshold_pct = w->cfg.outlier_failure_pct,
                              .min_volume = w->cfg.outlier_failure_volume,
                              .interval_ms = w->cfg.outlier_interval_ms};
    mesh_olw_cfg_fix(&w->olw);
    w->olsr = (mesh_olsr_cfg_t){.enabled = w->cfg.outlier_sr_stdev > 0,
                                .stdev_factor = w->cfg.outlier_sr_stdev / 1000.0,
                                .min_hosts = w->cfg.outlier_sr_hosts,
                                .request_volume = w->cfg.outlier_sr_volume,
                                .interval_ms = w->cfg.outlier_interval_ms};
    mesh_olsr_cfg_fix(&w->olsr);
    if (pxy_outlier_board_init(w) != 0)
        goto fail;
    lb_init(w);
    if (w->cfg.filter.on_call)
        mesh_proxy_worker_add_filter(w, &w->cfg.filter);
    if (w->cfg.default_upstream && *w->cfg.default_upstream) {
        w->default_upstream = strdup(w->cfg.default_upstream);
        if (!w->default_upstream)
            goto fail;
    }
    w->cfg.default_upstream = w->default_upstream;
    snprintf(w->listen_host, sizeof(w->listen_host), "%s",
             cfg->listen_host && *cfg->listen_host ? cfg->listen_host : "0.0.0.0");
    w->cfg.listen_host = w->listen_host;
    if (mesh_cs_init(&w->cs) != 0)
        goto fail;
    pxy_list_init(&w->ds_conns);
    pxy_list_init(&w->local_calls);
    mesh_chunk_pool_init(&w->pool, 4096);
    mesh_h2_mem_init(&w->h2mem);
    w->rbuf_len = READ_BUF_SIZE;
    w->rbuf = malloc(w->rbuf_len);
    w->ds_cbs = pxy_ds_callbacks_new();
    w->us_cbs = pxy_us_callbacks_new();
    if (!w->rbuf || !w->ds_cbs || !w->us_cbs || nghttp2_option_new(&w->opt) != 0)
        goto fail;
    nghttp2_option_set_no_auto_window_update(w->opt, 1);
    nghttp2_option_set_peer_max_concurrent_streams(w->opt, 100);
    /* Closed streams are only kept for RFC 7540 priority trees, which gRPC does not use. */
    nghttp2_option_set_no_closed_streams(w->opt, 1);
    nghttp2_option_set_no_http_messaging(w->opt, 1);

    if (w->cfg.no_listener)
        goto listening; /* calls come from a front end on this loop (transport/proxy_call.h) */
    int rv = listen_on(w, &w->listener, &w->listening, w->listen_host, w->cfg.listen_port,
                       on_connection, &w->port);
    if (rv < 0) {
        mesh_error(ACTOR, "worker %d: cannot listen on %s:%d: %s", w->cfg.worker_index,
                   w->listen_host, w->cfg.listen_port,
                   !w->listening && rv == UV_EINVAL ? "not an IP address" : uv_strerror(rv));
        if (!w->listening)
            goto fail; /* no handle yet: freed now */
        w->freeing = 1;
        close_listeners(w);
        return NULL; /* released when the loop runs the close */
    }
    mesh_info(ACTOR, "worker %d listening on %s:%d%s", w->cfg.worker_index, w->listen_host, w->port,
              w->cfg.tls && !w->cfg.tls_listen_host ? " (TLS)" : "");
    if (w->cfg.tls && w->cfg.tls_listen_host) {
        rv = listen_on(w, &w->tls_listener, &w->tls_listening, w->cfg.tls_listen_host,
                       w->cfg.tls_listen_port, on_tls_connection, &w->tls_port);
        if (rv < 0) {
            mesh_error(ACTOR, "worker %d: cannot listen on %s:%d (TLS): %s", w->cfg.worker_index,
                       w->cfg.tls_listen_host, w->cfg.tls_listen_port, uv_strerror(rv));
            w->freeing = 1;
            close_listeners(w);
            return NULL; /* released when the loop runs the closes */
        }
        mesh_info(ACTOR, "worker %d listening on %s:%d (TLS)", w->cfg.worker_index,
                  w->cfg.tls_listen_host, w->tls_port);
    }
listening:
    if (mesh_h2_flusher_init(&w->flusher, loop) == 0) {
        w->flusher_on = 1;
        w->n_handles += 3; /* prepare, check, idle */
    }
    if (w->default_upstream) {
        w->default_ep = pxy_endpoint_get(w, w->default_upstream);
        mesh_info(ACTOR, "worker %d: calls without a route go to %s", w->cfg.worker_index,
                  w->default_upstream);
    }
    return w;
fail:
    mesh_cs_free(&w->cs);
    if (w->ds_cbs)
        nghttp2_session_callbacks_del(w->ds_cbs);
    if (w->us_cbs)
        nghttp2_session_callbacks_del(w->us_cbs);
    if (w->opt)
        nghttp2_option_del(w->opt);
    if (w->own_board)
        mesh_outlier_board_free(w->board);
    free(w->rbuf);
    free(w->default_upstream);
    free(w);
    return NULL;
}

int mesh_proxy_worker_port(const mesh_proxy_worker_t *w)
{
    return w->port;
}

int mesh_proxy_worker_tls_port(const mesh_proxy_worker_t *w)
{
    return w->tls_port;
}

/* Builds the state of service object obj: one endpoint reference per instance. */
static int svc_build(mesh_proxy_worker_t *w, const mesh_route_svc_t *obj, pxy_svc_t *st)
{
    const mesh_route_service_t *s = mesh_route_svc_get(obj);
    memset(st, 0, sizeof(*st));
    st->obj = obj;
    mesh_bal_rr_init(&st->rr, (uint32_t)w->cfg.worker_index); /* workers start apart */
    if (s->n_instances == 0)
        return 0;
    /* the instance pointers follow the endpoint pointers in the same allocation */
    st->eps = malloc(s->n_instances * (sizeof(*st->eps) + sizeof(*st->insts)));
    if (!st->eps)
        return -1;
    st->insts = (const mesh_route_instance_t **)(st->eps + s->n_instances);
    for (size_t j = 0; j < s->n_instances; j++) {
        pxy_endpoint_t *ep = pxy_endpoint_get(w, s->instances[j].addr);
        if (ep) {
            pxy_endpoint_set_mesh(ep, &s->instances[j]); /* (the latest table's word) */
            st->insts[st->n] = &s->instances[j];
            st->eps[st->n++] = ep;
        }
    }
    return 0;
}

/* Drops the state of a service that left the table or changed. */
static void svc_drop(mesh_proxy_worker_t *w, pxy_svc_t *st)
{
    for (size_t j = 0; j < st->n; j++)
        pxy_endpoint_release(w, st->eps[j]);
    free(st->eps);
    pxy_svc_plan_free(st);
    pxy_svc_policy_drop(st);
    memset(st, 0, sizeof(*st));
}

/* Makes the state array hold indexes below n. */
static int svc_reserve(mesh_proxy_worker_t *w, size_t n)
{
    if (n <= w->svc_cap)
        return 0;
    size_t nc = w->svc_cap ? w->svc_cap : 64;
    while (nc < n)
        nc *= 2;
    pxy_svc_t *a = realloc(w->svc, nc * sizeof(*a));
    if (!a)
        return -1;
    memset(a + w->svc_cap, 0, (nc - w->svc_cap) * sizeof(*a));
    w->svc = a;
    w->svc_cap = nc;
    return 0;
}

void pxy_routes_free(mesh_proxy_worker_t *w)
{
    for (size_t i = 0; i < w->svc_cap; i++) {
        free(w->svc[i].eps);
        pxy_svc_plan_free(&w->svc[i]);
        pxy_svc_policy_drop(&w->svc[i]);
    }
    free(w->svc);
    w->svc = NULL;
    w->svc_cap = 0;
    if (w->routes)
        mesh_routes_unref(w->routes);
    w->routes = NULL;
}

typedef struct install {
    mesh_proxy_worker_t *w;
    size_t changed, failed;
} install_t;

/* One service that differs between the worker's table and the new one. */
static void on_change(void *ud, const char *name, const mesh_route_svc_t *before,
                      const mesh_route_svc_t *after)
{
    install_t *in = ud;
    mesh_proxy_worker_t *w = in->w;
    in->changed++;
    /* The new state first, then the old one goes: endpoints both use stay referenced. */
    if (after) {
        pxy_svc_t *st = &w->svc[mesh_routes_index_of(NULL, mesh_route_svc_get(after))];
        if (st->obj && st->obj != after)
            svc_drop(w, st); /* cannot happen: an id is re-used only once its object is gone */
        if (st->obj != after && svc_build(w, after, st) < 0)
            in->failed++;
    }
    if (before) {
        pxy_svc_t *st = &w->svc[mesh_routes_index_of(NULL, mesh_route_svc_get(before))];
        if (st->obj == before)
            svc_drop(w, st);
    }
}

const mesh_routes_t *mesh_proxy_worker_routes(const mesh_proxy_worker_t *w)
{
    return w->routes;
}

void mesh_proxy_worker_set_routes(mesh_proxy_worker_t *w, mesh_routes_t *routes)
{
    /* The state of a service lives at its object's id and stays while the object does: only
     * the services that differ between the current table and the new one are touched. When
     * the new table was made from the current one (the usual case) the difference is read
     * from its log, so an install costs what changed, whatever the size of the table. */
    if (routes == w->routes) {
        mesh_routes_unref(routes);
        return;
    }
    if (svc_reserve(w, mesh_routes_index_bound()) < 0) {
        mesh_error(ACTOR, "worker %d: out of memory installing routes; keeping the current ones",
                   w->cfg.worker_index);
        mesh_routes_unref(routes);
        return;
    }
    install_t in = {.w = w};
    mesh_routes_diff(w->routes, routes, on_change, &in);
    mesh_routes_t *before = w->routes;
    w->routes = routes;
    if (w->n_locals)
        pxy_local_routes_changed(w, before); /* local services follow the table */
    if (before)
        mesh_routes_unref(before);
    if (in.failed)
        mesh_error(ACTOR, "worker %d: out of memory routing %zu service%s", w->cfg.worker_index,
                   in.failed, in.failed == 1 ? "" : "s");
    mesh_debug(ACTOR, "worker %d: routing table with %zu services (%zu changed)",
               w->cfg.worker_index, mesh_routes_count(routes), in.changed);
}

void mesh_proxy_worker_drain(mesh_proxy_worker_t *w, void (*done)(void *), void *arg)
{
    mesh_proxy_worker_stop_serving(w); /* health says NOT_SERVING before the GOAWAY */
    w->draining = 1;
    w->drain_done = done;
    w->drain_arg = arg;
    close_listeners(w);
    for (pxy_link_t *l = w->ds_conns.next; l != &w->ds_conns;) {
        pxy_ds_conn_t *d = PXY_CONTAINER(l, pxy_ds_conn_t, link);
        l = l->next;
        if (d->h2.closing || !d->h2.session)
            continue;
        if (d->h2.tls && !d->h2.tls->established) {
            mesh_h2_conn_close(&d->h2); /* mid-handshake: no call on it, nothing to finish */
            continue;
        }
        d->draining = 1;
        nghttp2_submit_goaway(d->h2.session, NGHTTP2_FLAG_NONE,
                              nghttp2_session_get_last_proc_stream_id(d->h2.session),
                              NGHTTP2_NO_ERROR, NULL, 0);
        mesh_h2_conn_flush(&d->h2);
    }
    mesh_proxy_worker_end_local_calls(w); /* long-lived local calls (health's Watch) end */
    pxy_worker_check_drained(w);
}

int mesh_proxy_worker_add_filter(mesh_proxy_worker_t *w, const mesh_proxy_filter_t *f)
{
    if (!f || !f->on_call || w->n_filters == MESH_PROXY_MAX_FILTERS)
        return -1;
    w->filters[w->n_filters++] = *f;
    return 0;
}

void mesh_proxy_worker_set_filter(mesh_proxy_worker_t *w, const mesh_proxy_filter_t *f)
{
    w->n_filters = 0;
    if (f)
        mesh_proxy_worker_add_filter(w, f);
}

void mesh_proxy_worker_stats(const mesh_proxy_worker_t *w, mesh_proxy_stats_t *out)
{
    *out = w->stats;
    out->endpoints = w->n_endpoints;
    out->upstream_conns_open = w->n_us_open;
}

struct mesh_cs_snap *mesh_proxy_worker_call_snapshot(const mesh_proxy_worker_t *w,
                                                     const uint64_t *since)
{
    if (since && *since == w->cs.gen)
        return NULL;
    return mesh_cs_snapshot(&w->cs);
}

void mesh_proxy_worker_free(mesh_proxy_worker_t *w)
{
    if (!w)
        return;
    w->freeing = 1;
    w->drain_done = NULL;
    close_listeners(w);
    for (pxy_link_t *l = w->ds_conns.next; l != &w->ds_conns;) {
        pxy_ds_conn_t *d = PXY_CONTAINER(l, pxy_ds_conn_t, link);
        l = l->next;
        mesh_h2_conn_close(&d->h2);
    }
    pxy_endpoints_free(w);
    w->default_ep = NULL;
    pxy_streams_free_pool(w);
    if (w->flusher_on) {
        w->flusher_on = 0;
        mesh_h2_flusher_close(&w->flusher, on_flusher_closed);
    }
    w->n_handles++; /* hold while checking */
    pxy_worker_handle_closed(w);
}
