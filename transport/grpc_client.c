/*
 * transport/grpc_client.c: the asynchronous gRPC client (see transport/grpc_client.h).
 *
 * Objects: the client (one address) owns at most one current connection (gc_conn_t, an
 * mesh_h2_conn_t with a client nghttp2 session); a connection that got GOAWAY is detached and
 * lives on until its calls finish. Each call is an HTTP/2 stream with a byte buffer of queued
 * request bytes (copied out by the data provider), a deframer for the response, and a deadline
 * timer. A call is freed when its owner is done with it (ended or cancelled) and nghttp2 no
 * longer references it (stream closed or connection gone).
 *
 * A connection is opened by a zero-delay timer, so connect errors always reach the calls
 * from the loop, never from inside mesh_grpc_call_start(); the same timer then bounds the
 * connect. Requests are submitted to the session at once; nothing is written before the
 * TCP connection is up.
 */
#include "transport/grpc_client.h"

#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "common/log.h"
#include "transport/grpc_frame.h"
#include "transport/grpc_status.h"
#include "transport/grpc_timeout.h"
#include "transport/h2_conn.h"
#include "transport/tls.h"
#include "transport/tls_holder.h"

#define ACTOR         "grpc-client"
#define CONN_RBUF     16384
#define GC_MSG_MAX    512
#define GC_WINDOW_MAX (1 << 24)

typedef struct gc_conn gc_conn_t;

struct mesh_grpc_call {
    uv_loop_t *loop;
    gc_conn_t *conn; /* non-NULL while nghttp2 may reference the call */
    mesh_grpc_call_t *prev, *next;
    int32_t id;
    mesh_grpc_call_ops_t ops;
    void *ud;
    uv_timer_t timer;
    /* request bytes not yet handed to nghttp2 */
    uint8_t *out;
    size_t out_len, out_off, out_cap;
    int out_eof;
    /* response */
    mesh_grpc_deframer_t df;
    int http_status;
    int grpc_status; /* -1 until seen */
    char grpc_message[GC_MSG_MAX];
    uint64_t deadline_ms; /* loop time; 0 for none */
    int ended;            /* the owner was told (on_end) or cancelled */
    int conn_reason;      /* mesh_grpc_conn_reason_t of a connection that ended the call */
    int freeing;          /* the timer is closing */
};

struct gc_conn {
    mesh_h2_conn_t h2;          /* first */
    mesh_grpc_client_t *client; /* NULL once detached (GOAWAY) or the client is freed */
    gc_conn_t *cprev, *cnext;   /* in client->conns */
    mesh_grpc_call_t *calls;    /* calls on this connection */
    uv_connect_t creq;
    int connected;   /* TCP up */
    int established; /* the peer's SETTINGS arrived */
    int goaway;
    int dropping;     /* the client is freed: no owner callbacks */
    int connect_sent; /* uv_tcp_connect issued */
    char why[160];    /* why it closed (for the calls' status) */
    int reason;       /* mesh_grpc_conn_reason_t, with why */
    char name[96];
    uint8_t rbuf[CONN_RBUF];
};

struct mesh_grpc_client {
    uv_loop_t *loop;
    char *addr;
    char *authority;
    uint64_t connect_timeout_ms;
    uint64_t tls_handshake_timeout_ms; /* 0: none */
    size_t max_message;
    mesh_grpc_client_event_cb on_event;
    void *ud;
    struct mesh_tls_holder *tls; /* NULL: h2c */
    char tls_name[256];          /* the server's expected name */
    gc_conn_t *conn;             /* current */
    gc_conn_t *conns;            /* all live connections */
};

/* ---- calls ------------------------------------------------------------------------------ */

static void call_timer_closed(uv_handle_t *h)
{
    mesh_grpc_call_t *call = h->data;
    mesh_grpc_deframer_destroy(&call->df);
    free(call->out);
    free(call);
}

static void call_maybe_free(mesh_grpc_call_t *call)
{
    if (!call->ended || call->conn || call->freeing)
        return;
    call->freeing = 1;
    uv_timer_stop(&call->timer);
    uv_close((uv_handle_t *)&call->timer, call_timer_closed);
}

static void call_unlink(mesh_grpc_call_t *call)
{
    gc_conn_t *k = call->conn;
    if (!k)
        return;
    if (call->prev)
        call->prev->next = call->next;
    else
        k->calls = call->next;
    if (call->next)
        call->next->prev = call->prev;
    call->prev = call->next = NULL;
    call->conn = NULL;
}

/* Tells the owner how the call ended (once). */
static void call_end(mesh_grpc_call_t *call, int status, const char *msg)
{
    if (call->ended)
        return;
    call->ended = 1;
    uv_timer_stop(&call->timer);
    if (call->ops.on_end)
        call->ops.on_end(call->ud, call, status, msg ? msg : "");
}

static void conn_flush(gc_conn_t *k)
{
    if (k->connected && !k->h2.closing)
        mesh_h2_conn_flush(&k->h2);
}

static void call_rst(mesh_grpc_call_t *call)
{
    gc_conn_t *k = call->conn;
    if (!k || call->id <= 0 || !k->h2.session)
        return;
    nghttp2_submit_rst_stream(k->h2.session, NGHTTP2_FLAG_NONE, call->id, NGHTTP2_CANCEL);
    conn_flush(k);
}

static void on_deadline(uv_timer_t *t)
{
    mesh_grpc_call_t *call = t->data;
    call_rst(call);
    call_end(call, MESH_GRPC_DEADLINE_EXCEEDED, "deadline exceeded");
    call_maybe_free(call);
}

static int on_deframed(void *arg, int compressed, const uint8_t *msg, size_t len)
{
    mesh_grpc_call_t *call = arg;
    if (call->ended)
        return 1;
    if (compressed) {
        call_rst(call);
        call_end(call, MESH_GRPC_INTERNAL, "compressed response message (no compression asked)");
        return 1;
    }
    if (call->ops.on_message)
        call->ops.on_message(call->ud, call, msg, len);
    return call->ended ? 1 : 0;
}

/* nghttp2 data provider: copies the queued request bytes. */
static ssize_t req_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length,
                        uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    mesh_grpc_call_t *call = src->ptr;
    size_t avail = call->out_len - call->out_off;
    if (avail == 0 && !call->out_eof)
        return NGHTTP2_ERR_DEFERRED;
    size_t n = avail < length ? avail : length;
    memcpy(buf, call->out + call->out_off, n);
    call->out_off += n;
    if (call->out_off == call->out_len)
        call->out_off = call->out_len = 0;
    if (call->out_eof && call->out_len == 0)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* ---- nghttp2 callbacks -------------------------------------------------------------------- */

static int parse_int(const uint8_t *v, size_t len)
{
    int n = 0;
    if (len == 0 || len > 4)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        n = n * 10 + (v[i] - '0');
    }
    return n;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nl,
                     const uint8_t *value, size_t vl, uint8_t flags, void *ud)
{
    mesh_grpc_call_t *call = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (!call || f->hd.type != NGHTTP2_HEADERS)
        return 0;
    if (nl == 7 && memcmp(name, ":status", 7) == 0) {
        call->http_status = parse_int(value, vl);
    } else if (nl == 11 && memcmp(name, "grpc-status", 11) == 0) {
        int st = mesh_grpc_status_parse((const char *)value, vl);
        call->grpc_status = st < 0 ? MESH_GRPC_UNKNOWN : st;
    } else if (nl == 12 && memcmp(name, "grpc-message", 12) == 0) {
        long n = mesh_grpc_message_decode((const char *)value, vl, call->grpc_message,
                                          sizeof(call->grpc_message));
        if (n < 0)
            snprintf(call->grpc_message, sizeof(call->grpc_message), "%.*s",
                     (int)(vl < 200 ? vl : 200), (const char *)value);
    }
    return 0;
}

static void conn_detach(gc_conn_t *k, const char *why);

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    gc_conn_t *k = ud;
    if (f->hd.type == NGHTTP2_SETTINGS && !(f->hd.flags & NGHTTP2_FLAG_ACK)) {
        if (!k->established) {
            k->established = 1;
            mesh_debug(ACTOR, "%s: HTTP/2 connection established", k->name);
            if (k->client && !k->dropping && k->client->on_event)
                k->client->on_event(k->client->ud, MESH_GRPC_CLIENT_CONNECTED, MESH_GRPC_CONN_OK,
                                    "");
        }
    } else if (f->hd.type == NGHTTP2_GOAWAY) {
        k->goaway = 1;
        k->reason = MESH_GRPC_CONN_GOAWAY;
        conn_detach(k, "the app sent GOAWAY");
    } else if (f->hd.type == NGHTTP2_PING && (f->hd.flags & NGHTTP2_FLAG_ACK)) {
        mesh_h2_conn_ping_acked(&k->h2);
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud)
{
    mesh_grpc_call_t *call = nghttp2_session_get_stream_user_data(s, id);
    if (!call || call->ended)
        return 0;
    int rv = mesh_grpc_deframer_feed(&call->df, data, len);
    if (rv < 0 && !call->ended) {
        call_rst(call);
        call_end(call, MESH_GRPC_INTERNAL,
                 rv == -1 ? "response message too large or badly framed" : "out of memory");
    }
    return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t err, void *ud)
{
    gc_conn_t *k = ud;
    mesh_grpc_call_t *call = nghttp2_session_get_stream_user_data(s, id);
    if (!call)
        return 0;
    nghttp2_session_set_stream_user_data(s, id, NULL);
    call_unlink(call);
    if (!call->ended) {
        char msg[GC_MSG_MAX + 64];
        if (call->grpc_status >= 0) {
            call_end(call, call->grpc_status, call->grpc_message);
        } else if (err == NGHTTP2_REFUSED_STREAM) {
            snprintf(msg, sizeof(msg), "%s refused the call", k->name);
            call_end(call, MESH_GRPC_UNAVAILABLE, msg);
        } else if (err == NGHTTP2_CANCEL && call->deadline_ms &&
                   uv_now(call->loop) + 100 >= call->deadline_ms) {
            /* The server's own deadline timer won the race against ours. */
            call_end(call, MESH_GRPC_DEADLINE_EXCEEDED, "deadline exceeded");
        } else if (err != NGHTTP2_NO_ERROR) {
            snprintf(msg, sizeof(msg), "%s reset the call (%s)", k->name,
                     nghttp2_http2_strerror(err));
            call_end(call, mesh_grpc_status_from_h2_error(err), msg);
        } else if (call->http_status > 0 && call->http_status != 200) {
            snprintf(msg, sizeof(msg), "%s answered HTTP %d", k->name, call->http_status);
            call_end(call, mesh_grpc_status_from_http(call->http_status), msg);
        } else {
            snprintf(msg, sizeof(msg), "%s ended the call without grpc-status", k->name);
            call_end(call, MESH_GRPC_INTERNAL, msg);
        }
    }
    call_maybe_free(call);
    return 0;
}

/* ---- connections ---------------------------------------------------------------------------- */

/* Takes k out of its client (GOAWAY or close): the next call opens a new connection. */
static void conn_detach(gc_conn_t *k, const char *why)
{
    mesh_grpc_client_t *c = k->client;
    if (!c)
        return;
    if (k->cprev)
        k->cprev->cnext = k->cnext;
    else
        c->conns = k->cnext;
    if (k->cnext)
        k->cnext->cprev = k->cprev;
    k->cprev = k->cnext = NULL;
    k->client = NULL;
    if (c->conn == k) {
        c->conn = NULL;
        if (!k->dropping && c->on_event)
            c->on_event(c->ud, MESH_GRPC_CLIENT_DISCONNECTED, k->reason, why);
    }
}

static void conn_on_teardown(mesh_h2_conn_t *h)
{
    gc_conn_t *k = (gc_conn_t *)h;
    if (!k->why[0] && h->tls && !h->tls->established && k->connected) {
        /* (mesh_tls_reason: "TLS handshake timed out", the verification error, the alert...) */
        snprintf(k->why, sizeof(k->why), "TLS handshake with %s failed: %s", k->name,
                 mesh_tls_reason(h->tls)[0] ? mesh_tls_reason(h->tls) : "connection closed");
        k->reason = MESH_GRPC_CONN_HANDSHAKE;
    }
    if (!k->why[0]) {
        snprintf(k->why, sizeof(k->why), "connection to %s %s", k->name,
                 k->established ? "lost" : "closed before the HTTP/2 handshake");
        k->reason = k->established ? MESH_GRPC_CONN_LOST : MESH_GRPC_CONN_HANDSHAKE;
    }
    mesh_debug(ACTOR, "%s: closing: %s", k->name, k->why);
    conn_detach(k, k->why);
    while (k->calls) {
        mesh_grpc_call_t *call = k->calls;
        if (h->session && call->id > 0)
            nghttp2_session_set_stream_user_data(h->session, call->id, NULL);
        call_unlink(call);
        if (k->dropping) {
            call->ended = 1;
        } else {
            call->conn_reason = k->reason;
            call_end(call, MESH_GRPC_UNAVAILABLE, k->why);
        }
        call_maybe_free(call);
    }
}

static void conn_on_closed(mesh_h2_conn_t *h)
{
    free(h);
}

static const mesh_h2_conn_ops_t conn_ops = {
    .on_teardown = conn_on_teardown,
    .on_closed = conn_on_closed,
    .on_idle = NULL,
};

static void conn_fail(gc_conn_t *k, int reason, const char *fmt, const char *detail)
{
    if (!k->why[0]) {
        snprintf(k->why, sizeof(k->why), fmt, k->name, detail);
        k->reason = reason;
    }
    mesh_h2_conn_close(&k->h2);
}

static void on_connect_timeout(uv_timer_t *t)
{
    gc_conn_t *k = t->data;
    conn_fail(k, MESH_GRPC_CONN_TIMEOUT, "cannot connect to %s: %s", "connect timeout");
}

static void on_connect(uv_connect_t *req, int status)
{
    gc_conn_t *k = req->data;
    if (k->h2.closing)
        return;
    uv_timer_stop(&k->h2.timer);
    if (status < 0) {
        conn_fail(k, MESH_GRPC_CONN_REFUSED, "cannot connect to %s: %s", uv_strerror(status));
        return;
    }
    k->connected = 1;
    uv_tcp_nodelay(&k->h2.tcp, 1);
    if (mesh_h2_conn_start(&k->h2) < 0) {
        conn_fail(k, MESH_GRPC_CONN_LOST, "cannot read from %s: %s", "read start failed");
        return;
    }
    if (k->client) /* (no-op without TLS) */
        mesh_h2_conn_tls_timeout(&k->h2, k->client->tls_handshake_timeout_ms);
}

/* The zero-delay timer: resolve and connect, then bound the connect. */
static void on_connect_start(uv_timer_t *t)
{
    gc_conn_t *k = t->data;
    if (k->connect_sent || k->h2.closing)
        return;
    k->connect_sent = 1;
    struct sockaddr_storage sa;
    char err[160];
    if (mesh_addr_resolve(k->name, &sa, err, sizeof(err)) != 0) {
        conn_fail(k, MESH_GRPC_CONN_RESOLVE, "cannot resolve %s: %s", err);
        return;
    }
    k->creq.data = k;
    int rv = uv_tcp_connect(&k->creq, &k->h2.tcp, (const struct sockaddr *)&sa, on_connect);
    if (rv < 0) {
        conn_fail(k, MESH_GRPC_CONN_REFUSED, "cannot connect to %s: %s", uv_strerror(rv));
        return;
    }
    uint64_t tmo = k->client ? k->client->connect_timeout_ms : 2000;
    uv_timer_start(&k->h2.timer, on_connect_timeout, tmo, 0);
}

static gc_conn_t *conn_open(mesh_grpc_client_t *c)
{
    gc_conn_t *k = calloc(1, sizeof(*k));
    if (!k)
        return NULL;
    snprintf(k->name, sizeof(k->name), "%s", c->addr);
    if (mesh_h2_conn_init(&k->h2, c->loop, &conn_ops, k->rbuf, sizeof(k->rbuf), k->name) < 0) {
        free(k);
        return NULL;
    }
    nghttp2_session_callbacks *cbs;
    nghttp2_session *s = NULL;
    if (nghttp2_session_callbacks_new(&cbs) == 0) {
        nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
        nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
        nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
        if (nghttp2_session_client_new(&s, cbs, k) != 0)
            s = NULL;
        nghttp2_session_callbacks_del(cbs);
    }
    k->client = c;
    k->cnext = c->conns;
    if (c->conns)
        c->conns->cprev = k;
    c->conns = k;
    if (!s) {
        snprintf(k->why, sizeof(k->why), "out of memory");
        mesh_h2_conn_close(&k->h2);
        return NULL;
    }
    mesh_h2_conn_set_session(&k->h2, s);
    if (c->tls) { /* TLS before anything is sent: the handshake leads */
        mesh_tls_ctx_t *ctx = mesh_tls_holder_get(c->tls);
        int rv = ctx ? mesh_h2_conn_set_tls(&k->h2, ctx, c->tls_name, "upstream") : -1;
        mesh_tls_ctx_unref(ctx);
        if (rv < 0) {
            snprintf(k->why, sizeof(k->why), "cannot set up TLS to %s", c->addr);
            mesh_h2_conn_close(&k->h2);
            return NULL;
        }
    }
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, GC_WINDOW_MAX},
    };
    nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, iv, 2);
    nghttp2_session_set_local_window_size(s, NGHTTP2_FLAG_NONE, 0, GC_WINDOW_MAX);
    uv_timer_start(&k->h2.timer, on_connect_start, 0, 0);
    c->conn = k;
    return k;
}

/* ---- the client ------------------------------------------------------------------------------ */

mesh_grpc_client_t *mesh_grpc_client_new(uv_loop_t *loop, const mesh_grpc_client_cfg_t *cfg)
{
    if (!cfg || !cfg->addr || !*cfg->addr)
        return NULL;
    mesh_grpc_client_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->loop = loop;
    c->addr = strdup(cfg->addr);
    c->authority = strdup(cfg->authority ? cfg->authority : cfg->addr);
    c->connect_timeout_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : 2000;
    c->tls_handshake_timeout_ms = cfg->tls_handshake_timeout_ms == UINT64_MAX ? 0
                                  : cfg->tls_handshake_timeout_ms ? cfg->tls_handshake_timeout_ms
                                                                  : 10000;
    c->max_message = cfg->max_message;
    c->on_event = cfg->on_event;
    c->ud = cfg->ud;
    c->tls = cfg->tls;
    if (cfg->tls) {
        int port;
        if (cfg->tls_name && *cfg->tls_name)
            snprintf(c->tls_name, sizeof(c->tls_name), "%s", cfg->tls_name);
        else if (mesh_addr_split(cfg->addr, c->tls_name, sizeof(c->tls_name), &port) != 0)
            snprintf(c->tls_name, sizeof(c->tls_name), "%s", cfg->addr);
    }
    if (!c->addr || !c->authority) {
        free(c->addr);
        free(c->authority);
        free(c);
        return NULL;
    }
    return c;
}

void mesh_grpc_client_free(mesh_grpc_client_t *c)
{
    if (!c)
        return;
    while (c->conns) {
        gc_conn_t *k = c->conns;
        k->dropping = 1;
        conn_detach(k, "client freed");
        if (k->calls || !k->h2.closing)
            mesh_h2_conn_close(&k->h2);
    }
    free(c->addr);
    free(c->authority);
    free(c);
}

void mesh_grpc_client_connect(mesh_grpc_client_t *c)
{
    if (!c->conn || c->conn->goaway)
        conn_open(c);
}

int mesh_grpc_client_connected(const mesh_grpc_client_t *c)
{
    return c->conn && c->conn->established && !c->conn->h2.closing;
}

void mesh_grpc_client_disconnect(mesh_grpc_client_t *c)
{
    gc_conn_t *k = c->conn;
    if (!k)
        return;
    snprintf(k->why, sizeof(k->why), "connection to %s closed by the client", k->name);
    mesh_h2_conn_close(&k->h2);
}

mesh_grpc_call_t *mesh_grpc_call_start(mesh_grpc_client_t *c, const char *path,
                                       const mesh_grpc_md_t *md, size_t n_md, uint64_t timeout_ms,
                                       const mesh_grpc_call_ops_t *ops, void *ud)
{
    if (!c || !path || path[0] != '/' || !ops || n_md > 64)
        return NULL;
    gc_conn_t *k = c->conn;
    if (!k || k->goaway || k->h2.closing || k->h2.want_close)
        k = conn_open(c);
    if (!k)
        return NULL;
    mesh_grpc_call_t *call = calloc(1, sizeof(*call));
    if (!call)
        return NULL;
    call->loop = c->loop;
    call->ops = *ops;
    call->ud = ud;
    call->grpc_status = -1;
    call->id = -1;
    mesh_grpc_deframer_init(&call->df, c->max_message, on_deframed, call);
    uv_timer_init(c->loop, &call->timer);
    call->timer.data = call;

    nghttp2_nv nv[64 + 8];
    size_t n = 0;
#define NV(nm, val)                                                                                \
    nv[n++] = (nghttp2_nv){(uint8_t *)(nm), (uint8_t *)(val), strlen(nm), strlen(val),             \
                           NGHTTP2_NV_FLAG_NONE}
    NV(":method", "POST");
    NV(":scheme", "http");
    NV(":path", path);
    NV(":authority", c->authority);
    NV("content-type", "application/grpc");
    NV("te", "trailers");
    char tmo[MESH_GRPC_TIMEOUT_MAX_LEN + 1];
    if (timeout_ms) {
        size_t tl = mesh_grpc_timeout_format(timeout_ms * 1000000ull, tmo);
        tmo[tl] = '\0';
        NV("grpc-timeout", tmo);
    }
    for (size_t i = 0; i < n_md; i++)
        if (md[i].key && md[i].value)
            NV(md[i].key, md[i].value);
#undef NV
    nghttp2_data_provider prd = {.source = {.ptr = call}, .read_callback = req_read};
    int32_t id = nghttp2_submit_request(k->h2.session, NULL, nv, n, &prd, call);
    if (id < 0) {
        mesh_debug(ACTOR, "%s: cannot submit %s: %s", k->name, path, nghttp2_strerror(id));
        call->ended = 1;
        call_maybe_free(call);
        return NULL;
    }
    call->id = id;
    call->conn = k;
    call->next = k->calls;
    if (k->calls)
        k->calls->prev = call;
    k->calls = call;
    if (timeout_ms) {
        call->deadline_ms = uv_now(c->loop) + timeout_ms;
        uv_timer_start(&call->timer, on_deadline, timeout_ms, 0);
    }
    conn_flush(k);
    return call;
}

int mesh_grpc_call_send(mesh_grpc_call_t *call, const uint8_t *msg, size_t len)
{
    if (call->ended || call->out_eof || len > UINT32_MAX)
        return -1;
    size_t need = call->out_len + MESH_GRPC_PREFIX_LEN + len;
    if (need > call->out_cap) {
        size_t nc = call->out_cap ? call->out_cap : 256;
        while (nc < need)
            nc *= 2;
        uint8_t *nb = realloc(call->out, nc);
        if (!nb)
            return -1;
        call->out = nb;
        call->out_cap = nc;
    }
    mesh_grpc_frame_prefix(call->out + call->out_len, 0, (uint32_t)len);
    if (len)
        memcpy(call->out + call->out_len + MESH_GRPC_PREFIX_LEN, msg, len);
    call->out_len += MESH_GRPC_PREFIX_LEN + len;
    if (call->conn && call->conn->h2.session) {
        nghttp2_session_resume_data(call->conn->h2.session, call->id);
        conn_flush(call->conn);
    }
    return 0;
}

void mesh_grpc_call_close_send(mesh_grpc_call_t *call)
{
    if (call->ended || call->out_eof)
        return;
    call->out_eof = 1;
    if (call->conn && call->conn->h2.session) {
        nghttp2_session_resume_data(call->conn->h2.session, call->id);
        conn_flush(call->conn);
    }
}

void mesh_grpc_call_cancel(mesh_grpc_call_t *call)
{
    if (!call || call->ended)
        return;
    call->ended = 1;
    uv_timer_stop(&call->timer);
    call_rst(call);
    call_maybe_free(call);
}

mesh_grpc_call_t *mesh_grpc_unary(mesh_grpc_client_t *c, const char *path, const uint8_t *msg,
                                  size_t len, uint64_t timeout_ms, const mesh_grpc_call_ops_t *ops,
                                  void *ud)
{
    mesh_grpc_call_t *call = mesh_grpc_call_start(c, path, NULL, 0, timeout_ms, ops, ud);
    if (!call)
        return NULL;
    mesh_grpc_call_send(call, msg, len);
    mesh_grpc_call_close_send(call);
    return call;
}

mesh_grpc_conn_reason_t mesh_grpc_call_conn_reason(const mesh_grpc_call_t *call)
{
    return (mesh_grpc_conn_reason_t)call->conn_reason;
}

const char *mesh_grpc_conn_reason_name(mesh_grpc_conn_reason_t r)
{
    switch (r) {
    case MESH_GRPC_CONN_OK:
        return "ok";
    case MESH_GRPC_CONN_RESOLVE:
        return "name not resolved";
    case MESH_GRPC_CONN_REFUSED:
        return "connect failed";
    case MESH_GRPC_CONN_TIMEOUT:
        return "connect timed out";
    case MESH_GRPC_CONN_HANDSHAKE:
        return "closed before HTTP/2";
    case MESH_GRPC_CONN_LOST:
        return "connection lost";
    case MESH_GRPC_CONN_GOAWAY:
        return "GOAWAY";
    }
    return "unknown";
}
