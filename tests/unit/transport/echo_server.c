/*
 * tests/unit/transport/echo_server.c: the echo server of the transport end-to-end tests
 * (test code: simple copies, no pooling). Every stream is linked into its connection so the
 * ones still open when a connection closes (nghttp2_session_del calls no stream-close
 * callback) are freed there.
 */
#include "echo_server.h"

#include <nghttp2/nghttp2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

struct echo_server {
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_async_t stop;
    uv_async_t release;
    atomic_int max_streams;
    pthread_t thread;
    int port;
    atomic_int cancels;
    atomic_int calls;
    atomic_int mode, mode_arg;
    atomic_int conns, refused, resets, dropped, completed, headers_frames;
    atomic_int open_conns, goaways, pings, ping_delay_ms;
    pthread_mutex_t mu;
    char last_timeout[32];
    char last_fields[2048];
    nghttp2_session_callbacks *cbs;
};

typedef struct estream estream_t;

typedef struct {
    uv_tcp_t tcp;
    nghttp2_session *session;
    echo_server_t *srv;
    int closing;
    int n_streams;  /* request HEADERS seen on this connection */
    int goaway;     /* GOAWAY submitted */
    int muted;      /* stopped reading for good */
    int32_t held;   /* ECHO_MODE_GOAWAY_AFTER_FIRST: the first stream, held unanswered;
                       ECHO_MODE_GOAWAY_ON_RELEASE: the highest held stream */
    estream_t *all; /* every live stream of the connection */
} econn_t;

struct estream {
    econn_t *c;
    estream_t *prev, *next; /* in c->all */
    char path[64];
    uint8_t *buf;
    size_t len, off;
    int eof, seen, responded, die, dropped, held;
};

/* Unlinks st from its connection and frees it. */
static void stream_free(estream_t *st)
{
    if (st->prev)
        st->prev->next = st->next;
    else
        st->c->all = st->next;
    if (st->next)
        st->next->prev = st->prev;
    free(st->buf);
    free(st);
}

typedef struct {
    uv_write_t req;
    uv_buf_t buf;
} ewrite_t;

static void on_closed(uv_handle_t *h)
{
    econn_t *c = h->data;
    atomic_fetch_sub(&c->srv->open_conns, 1);
    nghttp2_session_del(c->session);
    while (c->all)
        stream_free(c->all);
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
        atomic_fetch_add(&st->c->srv->completed, 1);
        return (ssize_t)n;
    }
    if (n == 0)
        return NGHTTP2_ERR_DEFERRED;
    return (ssize_t)n;
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    econn_t *c = ud;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    estream_t *st = calloc(1, sizeof(*st));
    if (!st)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    st->c = c;
    st->next = c->all;
    if (c->all)
        c->all->prev = st;
    c->all = st;
    nghttp2_session_set_stream_user_data(s, f->hd.stream_id, st);
    return 0;
}

static int on_begin_frame(nghttp2_session *s, const nghttp2_frame_hd *hd, void *ud)
{
    econn_t *c = ud;
    if (hd->type == NGHTTP2_HEADERS)
        atomic_fetch_add(&c->srv->headers_frames, 1);
    return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nl,
                     const uint8_t *value, size_t vl, uint8_t flags, void *ud)
{
    econn_t *c = ud;
    estream_t *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (!st)
        return 0;
    if (nl == 5 && memcmp(name, ":path", 5) == 0 && vl < sizeof(st->path)) {
        memcpy(st->path, value, vl);
        pthread_mutex_lock(&c->srv->mu);
        c->srv->last_fields[0] = '\0'; /* (:path comes first: a new call) */
        pthread_mutex_unlock(&c->srv->mu);
    }
    if (name[0] != ':') {
        pthread_mutex_lock(&c->srv->mu);
        size_t used = strlen(c->srv->last_fields);
        if (used + nl + vl + 3 < sizeof(c->srv->last_fields))
            snprintf(c->srv->last_fields + used, sizeof(c->srv->last_fields) - used,
                     "%.*s:%s %.*s\n", (int)nl, name, (flags & NGHTTP2_NV_FLAG_NO_INDEX) ? "!" : "",
                     (int)vl, value);
        pthread_mutex_unlock(&c->srv->mu);
    }
    if (nl == 12 && memcmp(name, "grpc-timeout", 12) == 0 && vl < 32) {
        pthread_mutex_lock(&c->srv->mu);
        memcpy(c->srv->last_timeout, value, vl);
        c->srv->last_timeout[vl] = '\0';
        pthread_mutex_unlock(&c->srv->mu);
    }
    return 0;
}

/* Answers a stream: response headers, then the echoed bytes and trailers (Hang: nothing). */
static void respond(nghttp2_session *s, int32_t id, estream_t *st)
{
    st->responded = 1;
    if (strcmp(st->path, "/test.Echo/Hang") == 0)
        return;
    st->die = strcmp(st->path, "/test.Echo/Die") == 0;
    /* /test.Echo/BadHeader: a response field value with a line break (malformed). */
    int bad = strcmp(st->path, "/test.Echo/BadHeader") == 0;
    nghttp2_nv nva[] = {
        {(uint8_t *)":status", (uint8_t *)"200", 7, 3, 0},
        {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, 0},
        {(uint8_t *)"x-echo-bin", (uint8_t *)(bad ? "A\r\nC" : "AAEC"), 10, 4, 0},
    };
    nghttp2_data_provider prd = {.source = {.ptr = st}, .read_callback = read_cb};
    nghttp2_submit_response(s, id, nva, 3, &prd);
}

/* The first request HEADERS of a stream, per the server's mode; 1 when the stream is answered
 * (now or later) the normal way. */
static int on_request(nghttp2_session *s, econn_t *c, int32_t id, estream_t *st)
{
    echo_server_t *srv = c->srv;
    int mode = atomic_load(&srv->mode), arg = atomic_load(&srv->mode_arg);
    c->n_streams++;
    switch (mode) {
    case ECHO_MODE_REFUSE:
        if (arg > 0 && c->n_streams > arg)
            return 1;
        st->dropped = 1;
        atomic_fetch_add(&srv->refused, 1);
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, id, NGHTTP2_REFUSED_STREAM);
        return 0;
    case ECHO_MODE_GOAWAY_ZERO:
        st->dropped = 1;
        atomic_fetch_add(&srv->dropped, 1);
        if (!c->goaway) {
            c->goaway = 1;
            nghttp2_submit_goaway(s, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, NULL, 0);
        }
        return 0;
    case ECHO_MODE_GOAWAY_AFTER_FIRST:
        if (c->n_streams == 1) {
            c->held = id; /* answered when the second stream arrives */
            return 0;
        }
        st->dropped = 1;
        atomic_fetch_add(&srv->dropped, 1);
        if (!c->goaway) {
            c->goaway = 1;
            nghttp2_submit_goaway(s, NGHTTP2_FLAG_NONE, c->held, NGHTTP2_NO_ERROR, NULL, 0);
            estream_t *h = nghttp2_session_get_stream_user_data(s, c->held);
            if (h) {
                respond(s, c->held, h);
                if (h->eof)
                    nghttp2_session_resume_data(s, c->held);
            }
        }
        return 0;
    case ECHO_MODE_RESET_INTERNAL:
        return 0; /* reset when the request ends */
    case ECHO_MODE_GOAWAY_ON_RELEASE:
        if (c->n_streams < arg || c->goaway)
            return 1;
        st->held = 1;
        c->held = id;
        return 0;
    case ECHO_MODE_HOLD:
        st->held = 1;
        if (id > c->held)
            c->held = id;
        return 0;
    case ECHO_MODE_MUTE:
        st->dropped = 1;
        atomic_fetch_add(&srv->dropped, 1);
        if (!c->muted) {
            c->muted = 1;
            uv_read_stop((uv_stream_t *)&c->tcp);
        }
        return 0;
    default:
        return 1;
    }
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    econn_t *c = ud;
    if (f->hd.type == NGHTTP2_GOAWAY)
        atomic_fetch_add(&c->srv->goaways, 1);
    if (f->hd.type == NGHTTP2_PING && !(f->hd.flags & NGHTTP2_FLAG_ACK)) {
        atomic_fetch_add(&c->srv->pings, 1); /* (nghttp2 queues the ACK itself) */
        int ms = atomic_load(&c->srv->ping_delay_ms);
        if (ms)
            usleep((useconds_t)ms * 1000); /* a busy server: the ACK leaves ms later */
    }
    if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
        return 0;
    estream_t *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (!st)
        return 0;
    if (f->hd.type == NGHTTP2_HEADERS && !st->seen) {
        st->seen = 1;
        atomic_fetch_add(&c->srv->calls, 1);
        if (on_request(s, c, f->hd.stream_id, st))
            respond(s, f->hd.stream_id, st);
    }
    if (f->hd.flags & NGHTTP2_FLAG_END_STREAM) {
        st->eof = 1;
        if (st->responded) {
            nghttp2_session_resume_data(s, f->hd.stream_id);
        } else if (!st->dropped && atomic_load(&c->srv->mode) == ECHO_MODE_RESET_INTERNAL) {
            st->dropped = 1;
            atomic_fetch_add(&c->srv->resets, 1);
            nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, f->hd.stream_id,
                                      NGHTTP2_INTERNAL_ERROR);
        }
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
        stream_free(st);
        conn_close(c);
        return NGHTTP2_ERR_PAUSE;
    }
    st->buf = realloc(st->buf, st->len + len);
    memcpy(st->buf + st->len, data, len);
    st->len += len;
    if (st->responded)
        nghttp2_session_resume_data(s, id);
    return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t err, void *ud)
{
    econn_t *c = ud;
    estream_t *st = nghttp2_session_get_stream_user_data(s, id);
    if (err == NGHTTP2_CANCEL)
        atomic_fetch_add(&c->srv->cancels, 1);
    if (st)
        stream_free(st);
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
    } else if (n > 0 && !c->closing && !c->muted) {
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
    atomic_fetch_add(&srv->conns, 1);
    atomic_fetch_add(&srv->open_conns, 1);
    uv_tcp_init(&srv->loop, &c->tcp);
    c->tcp.data = c;
    nghttp2_session_server_new(&c->session, srv->cbs, c);
    if (uv_accept(l, (uv_stream_t *)&c->tcp) < 0 || uv_tcp_nodelay(&c->tcp, 1) < 0) {
        conn_close(c);
        return;
    }
    int max = atomic_load(&srv->max_streams);
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, max > 0 ? (uint32_t)max : 100}};
    nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, 1);
    if (atomic_load(&srv->mode) == ECHO_MODE_GOAWAY_AT_CONNECT) {
        c->goaway = 1;
        nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, NULL, 0);
    }
    conn_flush(c);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* ECHO_MODE_GOAWAY_ON_RELEASE: GOAWAY, then answer the held streams of every connection;
 * ECHO_MODE_HOLD: answer them. */
static void release_conn(uv_handle_t *h, void *arg)
{
    echo_server_t *srv = arg;
    if (h->type != UV_TCP || h == (uv_handle_t *)&srv->listener || uv_is_closing(h))
        return;
    econn_t *c = h->data;
    if (!c->held || c->goaway)
        return;
    int hold = atomic_load(&srv->mode) == ECHO_MODE_HOLD;
    if (!hold) {
        c->goaway = 1;
        nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE, c->held, NGHTTP2_NO_ERROR, NULL, 0);
    }
    for (estream_t *st = c->all; st; st = st->next) {
        if (!st->held)
            continue;
        st->held = 0;
        for (int32_t id = 1; id <= c->held; id += 2) {
            if (nghttp2_session_get_stream_user_data(c->session, id) == st) {
                respond(c->session, id, st);
                if (st->eof)
                    nghttp2_session_resume_data(c->session, id);
            }
        }
    }
    if (hold)
        c->held = 0; /* later streams are held again */
    conn_flush(c);
}

static void on_release(uv_async_t *a)
{
    echo_server_t *srv = a->data;
    uv_walk(&srv->loop, release_conn, srv);
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

static echo_server_t *start_on(const char *host)
{
    echo_server_t *srv = calloc(1, sizeof(*srv));
    pthread_mutex_init(&srv->mu, NULL);
    uv_loop_init(&srv->loop);
    nghttp2_session_callbacks_new(&srv->cbs);
    nghttp2_session_callbacks_set_on_begin_headers_callback(srv->cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(srv->cbs, on_header);
    nghttp2_session_callbacks_set_on_begin_frame_callback(srv->cbs, on_begin_frame);
    nghttp2_session_callbacks_set_on_frame_recv_callback(srv->cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(srv->cbs, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(srv->cbs, on_stream_close);
    uv_tcp_init(&srv->loop, &srv->listener);
    srv->listener.data = srv;
    struct sockaddr_in sa;
    uv_ip4_addr(host, 0, &sa);
    if (uv_tcp_bind(&srv->listener, (struct sockaddr *)&sa, 0) < 0 ||
        uv_listen((uv_stream_t *)&srv->listener, 128, on_conn) < 0)
        return NULL;
    int len = sizeof(sa);
    uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&sa, &len);
    srv->port = ntohs(sa.sin_port);
    uv_async_init(&srv->loop, &srv->stop, on_stop);
    srv->stop.data = srv;
    uv_async_init(&srv->loop, &srv->release, on_release);
    srv->release.data = srv;
    pthread_create(&srv->thread, NULL, run, srv);
    return srv;
}

echo_server_t *echo_server_start(void)
{
    return start_on("127.0.0.1");
}

echo_server_t *echo_server_start_any(void)
{
    return start_on("0.0.0.0");
}

int echo_server_open_conns(echo_server_t *s)
{
    return atomic_load(&s->open_conns);
}

int echo_server_goaways(echo_server_t *s)
{
    return atomic_load(&s->goaways);
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

void echo_server_set_mode(echo_server_t *s, echo_mode_t mode, int arg)
{
    atomic_store(&s->mode_arg, arg);
    atomic_store(&s->mode, (int)mode);
}

void echo_server_set_max_streams(echo_server_t *s, int n)
{
    atomic_store(&s->max_streams, n);
}

void echo_server_release(echo_server_t *s)
{
    uv_async_send(&s->release);
}

int echo_server_conns(echo_server_t *s)
{
    return atomic_load(&s->conns);
}

int echo_server_pings(echo_server_t *s)
{
    return atomic_load(&s->pings);
}

void echo_server_set_ping_delay(echo_server_t *s, int ms)
{
    atomic_store(&s->ping_delay_ms, ms);
}

int echo_server_refused(echo_server_t *s)
{
    return atomic_load(&s->refused);
}

int echo_server_resets(echo_server_t *s)
{
    return atomic_load(&s->resets);
}

int echo_server_dropped(echo_server_t *s)
{
    return atomic_load(&s->dropped);
}

int echo_server_headers_frames(echo_server_t *s)
{
    return atomic_load(&s->headers_frames);
}

int echo_server_completed(echo_server_t *s)
{
    return atomic_load(&s->completed);
}

void echo_server_last_fields(echo_server_t *s, char *out, size_t cap)
{
    pthread_mutex_lock(&s->mu);
    snprintf(out, cap, "%s", s->last_fields);
    pthread_mutex_unlock(&s->mu);
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
