/*
 * tests/unit/transport/echo_server.c: the echo server of the transport end-to-end tests
 * (test code: simple copies, no pooling).
 */
#include "echo_server.h"

#include <nghttp2/nghttp2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

struct echo_server {
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_async_t stop;
    pthread_t thread;
    int port;
    atomic_int cancels;
    atomic_int calls;
    pthread_mutex_t mu;
    char last_timeout[32];
    nghttp2_session_callbacks *cbs;
};

typedef struct {
    uv_tcp_t tcp;
    nghttp2_session *session;
    echo_server_t *srv;
    int closing;
} econn_t;

typedef struct {
    char path[64];
    uint8_t *buf;
    size_t len, off;
    int eof, responded, die;
} estream_t;

typedef struct {
    uv_write_t req;
    uv_buf_t buf;
} ewrite_t;

static void on_closed(uv_handle_t *h)
{
    econn_t *c = h->data;
    nghttp2_session_del(c->session);
    free(c);
}

static void conn_close(econn_t *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_written(uv_write_t *req, int status)
{
    ewrite_t *w = (ewrite_t *)req;
    free(w->buf.base);
    free(w);
}

static void conn_flush(econn_t *c)
{
    if (c->closing)
        return;
    for (;;) {
        const uint8_t *p;
        ssize_t n = nghttp2_session_mem_send(c->session, &p);
        if (n <= 0)
            break;
        ewrite_t *w = malloc(sizeof(*w));
        w->buf = uv_buf_init(malloc((size_t)n), (unsigned)n);
        memcpy(w->buf.base, p, (size_t)n);
        if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &w->buf, 1, on_written) < 0) {
            free(w->buf.base);
            free(w);
            conn_close(c);
            return;
        }
    }
}

static ssize_t read_cb(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length, uint32_t *flags,
                       nghttp2_data_source *src, void *ud)
{
    estream_t *st = src->ptr;
    size_t n = st->len - st->off;
    if (n > length)
        n = length;
    if (n > 0)
        memcpy(buf, st->buf + st->off, n);
    st->off += n;
    if (st->off == st->len && st->eof) {
        *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
        nghttp2_nv tr[] = {{(uint8_t *)"grpc-status", (uint8_t *)"0", 11, 1, 0}};
        nghttp2_submit_trailer(s, id, tr, 1);
        return (ssize_t)n;
    }
    if (n == 0)
        return NGHTTP2_ERR_DEFERRED;
    return (ssize_t)n;
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST)
        nghttp2_session_set_stream_user_data(s, f->hd.stream_id, calloc(1, sizeof(estream_t)));
    return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nl,
                     const uint8_t *value, size_t vl, uint8_t flags, void *ud)
{
    econn_t *c = ud;
    estream_t *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (!st)
        return 0;
    if (nl == 5 && memcmp(name, ":path", 5) == 0 && vl < sizeof(st->path))
        memcpy(st->path, value, vl);
    if (nl == 12 && memcmp(name, "grpc-timeout", 12) == 0 && vl < 32) {
        pthread_mutex_lock(&c->srv->mu);
        memcpy(c->srv->last_timeout, value, vl);
        c->srv->last_timeout[vl] = '\0';
        pthread_mutex_unlock(&c->srv->mu);
    }
    return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    econn_t *c = ud;
    estream_t *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (!st)
        return 0;
    if (f->hd.type == NGHTTP2_HEADERS && !st->responded) {
        st->responded = 1;
        atomic_fetch_add(&c->srv->calls, 1);
        if (strcmp(st->path, "/test.Echo/Hang") == 0)
            return 0;
        st->die = strcmp(st->path, "/test.Echo/Die") == 0;
        nghttp2_nv nva[] = {
            {(uint8_t *)":status", (uint8_t *)"200", 7, 3, 0},
            {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, 0},
            {(uint8_t *)"x-echo-bin", (uint8_t *)"AAEC", 10, 4, 0},
        };
        nghttp2_data_provider prd = {.source = {.ptr = st}, .read_callback = read_cb};
        nghttp2_submit_response(s, f->hd.stream_id, nva, 3, &prd);
    }
    if ((f->hd.flags & NGHTTP2_FLAG_END_STREAM) && st->responded) {
        st->eof = 1;
        nghttp2_session_resume_data(s, f->hd.stream_id);
    }
    return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                   void *ud)
{
    econn_t *c = ud;
    estream_t *st = nghttp2_session_get_stream_user_data(s, id);
    if (!st)
        return 0;
    if (st->die) {
        /* The session is deleted without stream-close callbacks: free the stream here. */
        nghttp2_session_set_stream_user_data(s, id, NULL);
        free(st->buf);
        free(st);
        conn_close(c);
        return NGHTTP2_ERR_PAUSE;
    }
    st->buf = realloc(st->buf, st->len + len);
    memcpy(st->buf + st->len, data, len);
    st->len += len;
    nghttp2_session_resume_data(s, id);
    return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t err, void *ud)
{
    econn_t *c = ud;
    estream_t *st = nghttp2_session_get_stream_user_data(s, id);
    if (err == NGHTTP2_CANCEL)
        atomic_fetch_add(&c->srv->cancels, 1);
    if (st) {
        free(st->buf);
        free(st);
    }
    return 0;
}

static void on_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    b->base = malloc(65536);
    b->len = 65536;
}

static void on_read(uv_stream_t *t, ssize_t n, const uv_buf_t *b)
{
    econn_t *c = t->data;
    if (n < 0) {
        conn_close(c);
    } else if (n > 0 && !c->closing) {
        if (nghttp2_session_mem_recv(c->session, (uint8_t *)b->base, (size_t)n) < 0)
            conn_close(c);
        else
            conn_flush(c);
    }
    free(b->base);
}

static void on_conn(uv_stream_t *l, int status)
{
    echo_server_t *srv = l->data;
    econn_t *c = calloc(1, sizeof(*c));
    c->srv = srv;
    uv_tcp_init(&srv->loop, &c->tcp);
    c->tcp.data = c;
    nghttp2_session_server_new(&c->session, srv->cbs, c);
    if (uv_accept(l, (uv_stream_t *)&c->tcp) < 0) {
        conn_close(c);
        return;
    }
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100}};
    nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, 1);
    conn_flush(c);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void close_all(uv_handle_t *h, void *arg)
{
    if (uv_is_closing(h))
        return;
    if (h->type == UV_TCP && h->data != arg && h->data) {
        conn_close(h->data);
        return;
    }
    uv_close(h, NULL);
}

static void on_stop(uv_async_t *a)
{
    echo_server_t *srv = a->data;
    uv_walk(&srv->loop, close_all, srv);
}

static void *run(void *arg)
{
    echo_server_t *srv = arg;
    uv_run(&srv->loop, UV_RUN_DEFAULT);
    return NULL;
}

echo_server_t *echo_server_start(void)
{
    echo_server_t *srv = calloc(1, sizeof(*srv));
    pthread_mutex_init(&srv->mu, NULL);
    uv_loop_init(&srv->loop);
    nghttp2_session_callbacks_new(&srv->cbs);
    nghttp2_session_callbacks_set_on_begin_headers_callback(srv->cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(srv->cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(srv->cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(srv->cbs, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(srv->cbs, on_stream_close);
    uv_tcp_init(&srv->loop, &srv->listener);
    srv->listener.data = srv;
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    if (uv_tcp_bind(&srv->listener, (struct sockaddr *)&sa, 0) < 0 ||
        uv_listen((uv_stream_t *)&srv->listener, 128, on_conn) < 0)
        return NULL;
    int len = sizeof(sa);
    uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&sa, &len);
    srv->port = ntohs(sa.sin_port);
    uv_async_init(&srv->loop, &srv->stop, on_stop);
    srv->stop.data = srv;
    pthread_create(&srv->thread, NULL, run, srv);
    return srv;
}

int echo_server_port(echo_server_t *s)
{
    return s->port;
}

int echo_server_cancels(echo_server_t *s)
{
    return atomic_load(&s->cancels);
}

int echo_server_calls(echo_server_t *s)
{
    return atomic_load(&s->calls);
}

void echo_server_last_timeout(echo_server_t *s, char *out, size_t cap)
{
    pthread_mutex_lock(&s->mu);
    snprintf(out, cap, "%s", s->last_timeout);
    pthread_mutex_unlock(&s->mu);
}

void echo_server_stop(echo_server_t *s)
{
    uv_async_send(&s->stop);
    pthread_join(s->thread, NULL);
    uv_loop_close(&s->loop);
    nghttp2_session_callbacks_del(s->cbs);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
