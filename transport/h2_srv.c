/*
 * transport/h2_srv.c: the sans-I/O h2c server connection behind transport/h2_srv.h.
 *
 * One nghttp2 server session per connection, driven with nghttp2_session_mem_recv() (input)
 * and nghttp2_session_mem_send() (output, gathered into one send buffer that stays still
 * while the binding writes it). nghttp2 checks the protocol and the HTTP messaging rules
 * (pseudo-headers, connection-specific fields, content-length against DATA); a stream is an
 * h2s_stream_t that collects its header block ("name\0value\0" pairs, the pseudo-fields by
 * offset), turns it into an h1_conn_head_t for on_head, and buffers the application's response
 * bytes for a data provider that copies them into DATA frames as the windows allow. Stream
 * objects and their buffers are kept on a free list: a warmed-up connection allocates only what
 * nghttp2 itself allocates per stream.
 */
#include "transport/h2_srv.h"

#include <jansson.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/fmt_num.h"

/* Output gathered per take_out, at most (more waits for the next write). */
#define H2S_OUT_BATCH (64 * 1024)

/* Request body flow control: each stream's receive window (SETTINGS_INITIAL_WINDOW_SIZE) and
 * the connection's, large enough that streams paused by the application (each holding at most
 * its own window) never starve the others. */
#define H2S_STREAM_WINDOW 65535
#define H2S_CONN_WINDOW   (H2S_MAX_STREAMS * H2S_STREAM_WINDOW)

typedef struct {
    char *data;
    size_t len, cap;
} h2s_buf_t;

typedef struct h2s_stream h2s_stream_t;

struct h2s_stream {
    h2s_conn_t *c;
    h2s_stream_t *prev, *next; /* open streams, or the free list (next) */
    int32_t id;
    h2s_buf_t head;  /* "name\0value\0" ... */
    h2s_buf_t views; /* h1_conn_hdr_t[] */
    size_t method_off, path_off, authority_off;
    int has_method, has_path, has_authority;
    size_t n_fields;
    uint64_t body_len;
    uint64_t body_max; /* the request body limit (cfg.max_body, or h2s_conn_body_limit; 0: none) */
    size_t held;       /* body bytes delivered while paused, not yet acknowledged */
    int64_t resp_left;
    h2s_buf_t out;      /* response bytes not yet in DATA frames, from out_off */
    h2s_buf_t trailers; /* "name\0value\0" ... sent after the body (h2s_conn_end_trailers) */
    size_t n_trailers;
    size_t out_off;
    unsigned known : 1;    /* on_head delivered */
    unsigned req_done : 1; /* the request ended (END_STREAM received) */
    unsigned started : 1;  /* response head submitted */
    unsigned ended : 1;    /* response ended by the application */
    unsigned aborted : 1;  /* the application was told on_error (or never told at all) */
    unsigned too_big : 1;  /* the header block is over the limits */
    unsigned no_body : 1;  /* HEAD, 204, 304: body bytes dropped */
    unsigned deferred : 1; /* the data provider said DEFERRED */
    unsigned full : 1;     /* h2s_conn_body() returned 1 */
    unsigned is_head : 1;
    unsigned paused : 1; /* h2s_conn_pause(): body bytes are not acknowledged */
};

struct h2s_conn {
    nghttp2_session *session;
    h1_conn_config_t cfg;
    h2s_conn_cbs_t cbs;
    void *ud;
    h2s_stream_t *open, *free_streams;
    unsigned n_open;
    h2s_buf_t out; /* bytes handed out by take_out (taken) or gathered */
    h2s_buf_t scratch;
    nghttp2_nv *nva;
    size_t nva_cap;
    uint64_t last_ms; /* last activity: read, write, stream opened */
    uint64_t now_ms;
    h2s_stream_t *upgraded; /* stream 1 of an upgrade, until h2s_conn_start */
    int taken;              /* out handed to the binding, not yet sent */
    int dead;               /* protocol error or EOF: close once the output is written */
    int drain_pending;
    int in_cb;
};

static void wake(h2s_conn_t *c)
{
    if (c->cbs.on_wake && !c->in_cb)
        c->cbs.on_wake(c->ud, c);
}

static int buf_add(h2s_buf_t *b, const void *d, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p)
            return -1;
        b->data = p;
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, d, n);
    b->len += n;
    return 0;
}

static size_t stream_high(const h2s_conn_t *c)
{
    return c->cfg.out_high / 4;
}

/* ---- streams ------------------------------------------------------------------------------ */

static h2s_stream_t *stream_new(h2s_conn_t *c, int32_t id)
{
    h2s_stream_t *s = c->free_streams;
    if (s) {
        c->free_streams = s->next;
    } else if (!(s = calloc(1, sizeof(*s)))) {
        return NULL;
    }
    h2s_buf_t head = s->head, views = s->views, out = s->out, trailers = s->trailers;
    memset(s, 0, sizeof(*s));
    s->head = head;
    s->views = views;
    s->out = out;
    s->trailers = trailers;
    s->head.len = s->views.len = s->out.len = s->trailers.len = 0;
    s->c = c;
    s->id = id;
    s->resp_left = -1;
    s->body_max = c->cfg.max_body;
    s->next = c->open;
    if (c->open)
        c->open->prev = s;
    c->open = s;
    c->n_open++;
    return s;
}

static void stream_release(h2s_stream_t *s)
{
    h2s_conn_t *c = s->c;
    if (s->prev)
        s->prev->next = s->next;
    else
        c->open = s->next;
    if (s->next)
        s->next->prev = s->prev;
    c->n_open--;
    if (s->out.cap > H2S_OUT_BATCH) {
        free(s->out.data);
        s->out = (h2s_buf_t){0};
    }
    s->next = c->free_streams;
    c->free_streams = s;
}

static void stream_destroy(h2s_stream_t *s)
{
    free(s->head.data);
    free(s->views.data);
    free(s->out.data);
    free(s->trailers.data);
    free(s);
}

static h2s_stream_t *stream_of(h2s_conn_t *c, uint64_t id)
{
    if (!c->session || id == 0 || id > INT32_MAX)
        return NULL;
    h2s_stream_t *s = nghttp2_session_get_stream_user_data(c->session, (int32_t)id);
    return s && s->id == (int32_t)id ? s : NULL;
}

/* Tells the application the request is over (once). */
static void stream_abort(h2s_stream_t *s, int status, const char *why)
{
    h2s_conn_t *c = s->c;
    int tell = s->known && !s->aborted && !s->ended;
    s->aborted = 1;
    if (tell && c->cbs.on_error) {
        c->in_cb++;
        c->cbs.on_error(c->ud, c, (uint64_t)s->id, status, why);
        c->in_cb--;
    }
}

/* ---- the header block --------------------------------------------------------------------- */

static int field_add(h2s_stream_t *s, const uint8_t *name, size_t nl, const uint8_t *value,
                     size_t vl)
{
    size_t limit = s->c->cfg.max_head;
    if (s->head.len + nl + vl + 4 > limit || s->n_fields >= s->c->cfg.max_headers) {
        s->too_big = 1;
        return 0;
    }
    if (buf_add(&s->head, name, nl) || buf_add(&s->head, "", 1) || buf_add(&s->head, value, vl) ||
        buf_add(&s->head, "", 1))
        return -1;
    return 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t nl, const uint8_t *value, size_t vl, uint8_t flags, void *ud)
{
    (void)session;
    (void)flags;
    (void)ud;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0; /* trailers: ignored */
    h2s_stream_t *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (!s || s->too_big)
        return 0;
    size_t off = s->head.len + nl + 1;
    if (nl > 0 && name[0] == ':') {
        if (nl == 7 && memcmp(name, ":method", 7) == 0) {
            s->method_off = off;
            s->has_method = 1;
        } else if (nl == 5 && memcmp(name, ":path", 5) == 0) {
            s->path_off = off;
            s->has_path = 1;
        } else if (nl == 10 && memcmp(name, ":authority", 10) == 0) {
            s->authority_off = off;
            s->has_authority = 1;
        } else {
            return 0; /* :scheme (nghttp2 checked it) */
        }
    } else {
        s->n_fields++;
    }
    return field_add(s, name, nl, value, vl) == 0 ? 0 : NGHTTP2_ERR_CALLBACK_FAILURE;
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *ud)
{
    h2s_conn_t *c = ud;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    h2s_stream_t *s = stream_new(c, frame->hd.stream_id);
    if (!s)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, s);
    c->last_ms = c->now_ms;
    return 0;
}

/* The request body of s is over its limit: 413 (or a reset once the answer began). */
static void body_too_large(h2s_conn_t *c, h2s_stream_t *s)
{
    if (s->aborted)
        return;
    int began = s->started, tell = s->known && !s->ended;
    if (!began)
        h2s_conn_respond_error(c, (uint64_t)s->id, 413, "the request body is too large");
    else
        nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
    s->aborted = 1;
    /* (told after the answer, which ends the response: stream_abort would not tell) */
    if (tell && c->cbs.on_error) {
        c->in_cb++;
        c->cbs.on_error(c->ud, c, (uint64_t)s->id, began ? 0 : 413,
                        "the request body is too large");
        c->in_cb--;
    }
}

/* Builds the head of s (its views point into s->head) and hands it to the application. */
static void deliver_head(h2s_conn_t *c, h2s_stream_t *s, int end_stream)
{
    h1_conn_head_t h = {0};
    h.method = s->head.data + s->method_off;
    h.target = s->head.data + s->path_off;
    h.target_len = strlen(h.target);
    h.minor = 1;
    h.content_length = -1;
    h.keep_alive = 1;
    h.has_body = !end_stream;
    s->views.len = 0;
    if (s->has_authority) {
        h1_conn_hdr_t v = {"host", 4, s->head.data + s->authority_off, 0};
        v.value_len = strlen(v.value);
        if (buf_add(&s->views, &v, sizeof(v)))
            goto oom;
    }
    for (size_t off = 0; off < s->head.len;) {
        h1_conn_hdr_t v;
        v.name = s->head.data + off;
        v.name_len = strlen(v.name);
        v.value = v.name + v.name_len + 1;
        v.value_len = strlen(v.value);
        off += v.name_len + v.value_len + 2;
        if (v.name[0] == ':')
            continue;
        if (v.name_len == 14 && memcmp(v.name, "content-length", 14) == 0) {
            char *e;
            h.content_length = (int64_t)strtoull(v.value, &e, 10);
        }
        if (buf_add(&s->views, &v, sizeof(v)))
            goto oom;
    }
    h.headers = (const h1_conn_hdr_t *)(void *)s->views.data;
    h.n_headers = s->views.len / sizeof(h1_conn_hdr_t);
    h.is_head = strcmp(h.method, "HEAD") == 0;
    s->is_head = (unsigned)h.is_head;
    s->known = 1;
    if (c->cbs.on_head) {
        c->in_cb++;
        c->cbs.on_head(c->ud, c, (uint64_t)s->id, &h);
        c->in_cb--;
    }
    /* After on_head: the application may have lifted the limit for this stream. */
    if (h.content_length >= 0 && s->body_max && (uint64_t)h.content_length > s->body_max)
        body_too_large(c, s);
    return;
oom:
    h2s_conn_respond_error(c, (uint64_t)s->id, 500, "out of memory");
    s->aborted = 1;
}

static void request_done(h2s_conn_t *c, h2s_stream_t *s)
{

    s->req_done = 1;
    if (s->known && !s->aborted && c->cbs.on_end) {
        c->in_cb++;
        c->cbs.on_end(c->ud, c, (uint64_t)s->id);
        c->in_cb--;
    }
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *ud)
{
    h2s_conn_t *c = ud;
    h2s_stream_t *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (!s)
        return 0;
    int end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        if (s->too_big) {
            h2s_conn_respond_error(c, (uint64_t)s->id, 431,
                                   "the request header fields are too large");
            s->aborted = 1;
        } else if (!s->has_method || !s->has_path) {
            /* CONNECT (no :path): not served */
            h2s_conn_respond_error(c, (uint64_t)s->id, 405, "CONNECT is not served here");
            s->aborted = 1;
        } else if (strlen(s->head.data + s->path_off) > c->cfg.max_target) {
            h2s_conn_respond_error(c, (uint64_t)s->id, 414, "the request target is too long");
            s->aborted = 1;
        } else {
            deliver_head(c, s, end);
        }
        if (end)
            request_done(c, s);
    } else if (frame->hd.type == NGHTTP2_HEADERS && end) {
        request_done(c, s); /* trailers end the request */
    } else if (frame->hd.type == NGHTTP2_DATA && end) {
        request_done(c, s);
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                         const uint8_t *data, size_t len, void *ud)
{
    (void)flags;
    h2s_conn_t *c = ud;
    h2s_stream_t *s = nghttp2_session_get_stream_user_data(session, stream_id);
    /* Automatic WINDOW_UPDATE is off: bytes are acknowledged here when the application took
     * them (or they are dropped), later (h2s_conn_resume) when it paused the stream. */
    if (!s || s->aborted || !s->known) {
        nghttp2_session_consume(session, stream_id, len);
        return 0;
    }
    s->body_len += len;
    if (s->body_max && s->body_len > s->body_max) {
        nghttp2_session_consume(session, stream_id, len);
        body_too_large(c, s);
        return 0;
    }
    if (c->cbs.on_body) {
        c->in_cb++;
        c->cbs.on_body(c->ud, c, (uint64_t)s->id, (const char *)data, len);
        c->in_cb--;
    }
    if (s->paused)
        s->held += len;
    else
        nghttp2_session_consume(session, stream_id, len);
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *ud)
{
    (void)error_code;
    (void)ud;
    h2s_stream_t *s = nghttp2_session_get_stream_user_data(session, stream_id);
    if (!s)
        return 0;
    nghttp2_session_set_stream_user_data(session, stream_id, NULL);
    if (s->held) /* the connection's share of what the paused stream held */
        nghttp2_session_consume_connection(session, s->held);
    s->held = 0;
    if (!s->ended || !s->req_done)
        stream_abort(s, 0, "the client reset the stream");
    if (s->c->upgraded == s)
        s->c->upgraded = NULL;
    stream_release(s);
    return 0;
}

/* ---- the data provider -------------------------------------------------------------------- */

static void nv_set(nghttp2_nv *nv, const char *n, size_t nl, const char *v, size_t vl);

static ssize_t data_read(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                         uint32_t *data_flags, nghttp2_data_source *source, void *ud)
{
    h2s_conn_t *c = ud;
    h2s_stream_t *s = source->ptr;
    size_t have = s->out.len - s->out_off;
    size_t n = have < length ? have : length;
    if (n) {
        memcpy(buf, s->out.data + s->out_off, n);
        s->out_off += n;
        if (s->out_off == s->out.len)
            s->out.len = s->out_off = 0;
    }
    if (s->full && s->out.len - s->out_off <= stream_high(c) / 2) {
        s->full = 0;
        c->drain_pending = 1;
    }
    if (s->out.len - s->out_off == 0) {
        if (s->ended && s->n_trailers) {
            *data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
            nghttp2_nv nva[H2S_MAX_TRAILERS];
            const char *p = s->trailers.data;
            for (size_t i = 0; i < s->n_trailers; i++) {
                size_t nl = strlen(p), vl = strlen(p + nl + 1);
                nv_set(&nva[i], p, nl, p + nl + 1, vl); /* (nghttp2 copies them) */
                p += nl + 1 + vl + 1;
            }
            if (nghttp2_submit_trailer(session, stream_id, nva, s->n_trailers) != 0)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        } else if (s->ended) {
            *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        } else if (n == 0) {
            s->deferred = 1;
            return NGHTTP2_ERR_DEFERRED;
        }
    }
    return (ssize_t)n;
}

static void resume(h2s_stream_t *s)
{
    if (s->deferred) {
        s->deferred = 0;
        nghttp2_session_resume_data(s->c->session, s->id);
    }
}

/* ---- life --------------------------------------------------------------------------------- */

static nghttp2_session_callbacks *callbacks(void)
{
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb) != 0)
        return NULL;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    return cb;
}

static h2s_conn_t *conn_new(const h1_conn_config_t *cfg, const h2s_conn_cbs_t *cbs, void *ud,
                            uint64_t now_ms, nghttp2_mem *mem)
{
    h2s_conn_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    if (cfg)
        c->cfg = *cfg;
    if (!c->cfg.max_head)
        c->cfg.max_head = 8192;
    if (!c->cfg.max_target)
        c->cfg.max_target = 4096;
    if (c->cfg.max_target > c->cfg.max_head)
        c->cfg.max_target = c->cfg.max_head;
    if (!c->cfg.max_headers)
        c->cfg.max_headers = 100;
    if (!c->cfg.max_body)
        c->cfg.max_body = 1 << 20;
    if (!c->cfg.out_high)
        c->cfg.out_high = 256 << 10;
    if (!c->cfg.idle_timeout_ms)
        c->cfg.idle_timeout_ms = 60000;
    if (cbs)
        c->cbs = *cbs;
    c->ud = ud;
    c->last_ms = c->now_ms = now_ms;
    nghttp2_session_callbacks *cb = callbacks();
    nghttp2_option *opt = NULL;
    int rc = -1;
    if (cb && nghttp2_option_new(&opt) == 0) {
        nghttp2_option_set_max_send_header_block_length(opt, 64 << 10);
        nghttp2_option_set_no_auto_window_update(opt, 1);
        rc = nghttp2_session_server_new3(&c->session, cb, c, opt, mem);
    }
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, H2S_MAX_STREAMS},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)c->cfg.max_head + 1024},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2S_STREAM_WINDOW},
    };
    if (rc != 0 || nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, 4) != 0 ||
        nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0, H2S_CONN_WINDOW) !=
            0) {
        if (c->session)
            nghttp2_session_del(c->session);
        free(c);
        return NULL;
    }
    return c;
}

h2s_conn_t *h2s_conn_new(const h1_conn_config_t *cfg, const h2s_conn_cbs_t *cbs, void *ud,
                         uint64_t now_ms, nghttp2_mem *mem)
{
    return conn_new(cfg, cbs, ud, now_ms, mem);
}

int h2s_settings_decode(const char *v, size_t len, uint8_t *out, size_t cap)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = v[i];
        int d;
        if (ch >= 'A' && ch <= 'Z')
            d = ch - 'A';
        else if (ch >= 'a' && ch <= 'z')
            d = ch - 'a' + 26;
        else if (ch >= '0' && ch <= '9')
            d = ch - '0' + 52;
        else if (ch == '-' || ch == '+')
            d = 62;
        else if (ch == '_' || ch == '/')
            d = 63;
        else if (ch == '=' && i + 2 >= len)
            break; /* tolerated padding */
        else
            return -1;
        acc = (acc << 6) | (uint32_t)d;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n >= cap)
                return -1;
            out[n++] = (uint8_t)(acc >> bits);
        }
    }
    return n % 6 == 0 ? (int)n : -1;
}

h2s_conn_t *h2s_conn_new_upgrade(const h1_conn_config_t *cfg, const h2s_conn_cbs_t *cbs, void *ud,
                                 uint64_t now_ms, nghttp2_mem *mem, const uint8_t *settings,
                                 size_t settings_len, const h1_conn_head_t *head, const char *body,
                                 size_t body_len)
{
    static const char sw[] = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                             "Upgrade: h2c\r\n\r\n";
    h2s_conn_t *c = conn_new(cfg, cbs, ud, now_ms, mem);
    if (!c)
        return NULL;
    h2s_stream_t *s = stream_new(c, 1);
    if (!s || buf_add(&c->out, sw, sizeof(sw) - 1) != 0 ||
        nghttp2_session_upgrade2(c->session, settings, settings_len, head->is_head, NULL) != 0 ||
        nghttp2_session_set_stream_user_data(c->session, 1, s) != 0)
        goto fail; /* (a server session ignores upgrade2's stream_user_data) */
    static const uint8_t m[] = ":method", p[] = ":path", a[] = ":authority";
    s->method_off = sizeof(m);
    if (field_add(s, m, sizeof(m) - 1, (const uint8_t *)head->method, strlen(head->method)))
        goto fail;
    s->path_off = s->head.len + sizeof(p);
    if (field_add(s, p, sizeof(p) - 1, (const uint8_t *)head->target, head->target_len))
        goto fail;
    s->has_method = s->has_path = 1;
    for (size_t i = 0; i < head->n_headers; i++) {
        const h1_conn_hdr_t *h = &head->headers[i];
        char lower[256];
        if (h->name_len >= sizeof(lower))
            continue;
        for (size_t j = 0; j < h->name_len; j++)
            lower[j] =
                (char)(h->name[j] >= 'A' && h->name[j] <= 'Z' ? h->name[j] + 32 : h->name[j]);
        if (h->name_len == 4 && memcmp(lower, "host", 4) == 0) {
            s->authority_off = s->head.len + sizeof(a);
            s->has_authority = 1;
            if (field_add(s, a, sizeof(a) - 1, (const uint8_t *)h->value, h->value_len))
                goto fail;
            continue;
        }
        s->n_fields++;
        if (field_add(s, (const uint8_t *)lower, h->name_len, (const uint8_t *)h->value,
                      h->value_len))
            goto fail;
    }
    s->body_len = body_len;
    if (body_len && buf_add(&s->out, body, body_len)) /* the body waits in out until start */
        goto fail;
    c->upgraded = s;
    return c;
fail:
    h2s_conn_free(c);
    return NULL;
}

void h2s_conn_start(h2s_conn_t *c)
{
    h2s_stream_t *s = c->upgraded;
    if (!s)
        return;
    c->upgraded = NULL;
    h2s_buf_t body = s->out;
    s->out = (h2s_buf_t){0};
    if (s->too_big) {
        h2s_conn_respond_error(c, 1, 431, "the request header fields are too large");
        s->aborted = 1;
    } else {
        deliver_head(c, s, body.len == 0);
    }
    if (body.len && s->known && !s->aborted && c->cbs.on_body) {
        c->in_cb++;
        c->cbs.on_body(c->ud, c, 1, body.data, body.len);
        c->in_cb--;
    }
    free(body.data);
    if (stream_of(c, 1) == s)
        request_done(c, s);
    wake(c);
}

void h2s_conn_free(h2s_conn_t *c)
{
    if (!c)
        return;
    while (c->open) {
        h2s_stream_t *s = c->open;
        stream_abort(s, 0, "the connection closed");
        if (c->session)
            nghttp2_session_set_stream_user_data(c->session, s->id, NULL);
        stream_release(s);
    }
    if (c->session)
        nghttp2_session_del(c->session);
    while (c->free_streams) {
        h2s_stream_t *s = c->free_streams;
        c->free_streams = s->next;
        stream_destroy(s);
    }
    free(c->out.data);
    free(c->scratch.data);
    free(c->nva);
    free(c);
}

/* ---- input -------------------------------------------------------------------------------- */

size_t h2s_conn_feed(h2s_conn_t *c, const char *data, size_t len, uint64_t now_ms)
{
    c->now_ms = c->last_ms = now_ms;
    if (c->dead)
        return len;
    c->in_cb++;
    ssize_t n = nghttp2_session_mem_recv(c->session, (const uint8_t *)data, len);
    c->in_cb--;
    if (n < 0) {
        /* a protocol error: nghttp2 queued a GOAWAY when it could; close after it */
        if (n != NGHTTP2_ERR_BAD_CLIENT_MAGIC)
            nghttp2_session_terminate_session(c->session, NGHTTP2_PROTOCOL_ERROR);
        c->dead = 1;
    }
    return len;
}

void h2s_conn_eof(h2s_conn_t *c, uint64_t now_ms)
{
    c->now_ms = now_ms;
    c->dead = 1;
    wake(c);
}

int h2s_conn_wants_read(const h2s_conn_t *c)
{
    return !c->dead && nghttp2_session_want_read(c->session);
}

/* ---- output ------------------------------------------------------------------------------- */

size_t h2s_conn_take_out(h2s_conn_t *c, const char **data, uint64_t now_ms)
{
    c->now_ms = now_ms;
    if (c->taken)
        return 0;
    for (;;) {
        while (c->out.len < H2S_OUT_BATCH) {
            const uint8_t *p;
            c->in_cb++;
            ssize_t n = nghttp2_session_mem_send(c->session, &p);
            c->in_cb--;
            if (n < 0 || (n > 0 && buf_add(&c->out, p, (size_t)n) != 0)) {
                c->dead = 1;
                break;
            }
            if (n == 0)
                break;
        }
        /* streams that fell below their mark: the application writes more, sent now too */
        if (!c->drain_pending || !c->cbs.on_drain)
            break;
        c->drain_pending = 0;
        c->in_cb++;
        c->cbs.on_drain(c->ud, c);
        c->in_cb--;
    }
    if (!c->out.len)
        return 0;
    c->taken = 1;
    *data = c->out.data;
    return c->out.len;
}

void h2s_conn_sent(h2s_conn_t *c, uint64_t now_ms)
{
    c->now_ms = c->last_ms = now_ms;
    c->taken = 0;
    c->out.len = 0;
    if (c->out.cap > 4 * H2S_OUT_BATCH) {
        free(c->out.data);
        c->out = (h2s_buf_t){0};
    }
}

int h2s_conn_should_close(const h2s_conn_t *c)
{
    if (c->taken || c->out.len)
        return 0;
    if (c->dead)
        return 1;
    return !nghttp2_session_want_read(c->session) && !nghttp2_session_want_write(c->session);
}

void h2s_conn_shutdown(h2s_conn_t *c)
{
    if (c->dead)
        return;
    nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(c->session), NGHTTP2_NO_ERROR,
                          NULL, 0);
    wake(c);
}

uint64_t h2s_conn_deadline(const h2s_conn_t *c)
{
    if (c->dead)
        return 0;
    /* idle (no stream) or a write that makes no progress */
    if (c->n_open == 0 || c->taken)
        return c->last_ms + c->cfg.idle_timeout_ms;
    return 0;
}

void h2s_conn_on_timer(h2s_conn_t *c, uint64_t now_ms)
{
    c->now_ms = now_ms;
    uint64_t d = h2s_conn_deadline(c);
    if (!d || now_ms < d)
        return;
    if (c->taken) {
        c->dead = 1; /* the client stopped reading: give up */
        c->taken = 0;
        c->out.len = 0;
    } else {
        nghttp2_session_terminate_session(c->session, NGHTTP2_NO_ERROR);
        c->dead = 1;
    }
    wake(c);
}

unsigned h2s_conn_streams(const h2s_conn_t *c)
{
    return c->n_open;
}

/* ---- request body flow control ------------------------------------------------------------ */

int h2s_conn_pause(h2s_conn_t *c, uint64_t id)
{
    h2s_stream_t *s = stream_of(c, id);
    if (!s)
        return -1;
    s->paused = 1;
    return 0;
}

int h2s_conn_resume(h2s_conn_t *c, uint64_t id)
{
    h2s_stream_t *s = stream_of(c, id);
    if (!s)
        return -1;
    s->paused = 0;
    if (s->held) {
        nghttp2_session_consume(c->session, s->id, s->held);
        s->held = 0;
        wake(c); /* a WINDOW_UPDATE to send */
    }
    return 0;
}

size_t h2s_conn_held(const h2s_conn_t *c, uint64_t id)
{
    h2s_stream_t *s = stream_of((h2s_conn_t *)c, id);
    return s ? s->held : 0;
}

int h2s_conn_body_limit(h2s_conn_t *c, uint64_t id, uint64_t max_body)
{
    h2s_stream_t *s = stream_of(c, id);
    if (!s || s->aborted)
        return -1;
    s->body_max = max_body;
    return 0;
}

/* ---- responses ---------------------------------------------------------------------------- */

static int is_tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static int header_ok(const h1_conn_hdr_t *h)
{
    if (!h->name_len)
        return 0;
    for (size_t i = 0; i < h->name_len; i++)
        if (!is_tchar((unsigned char)h->name[i]))
            return 0;
    for (size_t i = 0; i < h->value_len; i++)
        if (h->value[i] == '\r' || h->value[i] == '\n' || h->value[i] == '\0')
            return 0;
    return 1;
}

static void nv_set(nghttp2_nv *nv, const char *n, size_t nl, const char *v, size_t vl)
{
    nv->name = (uint8_t *)(uintptr_t)n;
    nv->namelen = nl;
    nv->value = (uint8_t *)(uintptr_t)v;
    nv->valuelen = vl;
    nv->flags = NGHTTP2_NV_FLAG_NONE;
}

int h2s_conn_respond(h2s_conn_t *c, uint64_t id, int status, const h1_conn_hdr_t *headers,
                     size_t n_headers, int64_t content_length)
{
    h2s_stream_t *s = stream_of(c, id);
    if (!s || s->started || s->aborted || status < 200 || status > 599)
        return -1;
    if (c->nva_cap < n_headers + 2) {
        nghttp2_nv *p = realloc(c->nva, (n_headers + 2) * sizeof(*p));
        if (!p)
            return -1;
        c->nva = p;
        c->nva_cap = n_headers + 2;
    }
    /* names lower-cased into scratch; the nva points into it once it stops moving */
    c->scratch.len = 0;
    char st[24], cl[24];
    mesh_fmt_u64(st, (uint64_t)status); /* 200..599, checked above */
    int cll = content_length >= 0 ? (int)mesh_fmt_u64(cl, (uint64_t)content_length) : 0;
    for (size_t i = 0; i < n_headers; i++) {
        const h1_conn_hdr_t *h = &headers[i];
        if (!header_ok(h))
            return -1;
        if ((h->name_len == 14 && strncasecmp(h->name, "content-length", 14) == 0) ||
            (h->name_len == 17 && strncasecmp(h->name, "transfer-encoding", 17) == 0) ||
            (h->name_len == 10 && strncasecmp(h->name, "connection", 10) == 0))
            return -1;
        for (size_t j = 0; j < h->name_len; j++) {
            char ch = h->name[j];
            ch = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
            if (buf_add(&c->scratch, &ch, 1))
                return -1;
        }
    }
    size_t n = 0, off = 0;
    nv_set(&c->nva[n++], ":status", 7, st, strlen(st));
    if (cll > 0)
        nv_set(&c->nva[n++], "content-length", 14, cl, (size_t)cll);
    for (size_t i = 0; i < n_headers; i++) {
        nv_set(&c->nva[n++], c->scratch.data + off, headers[i].name_len, headers[i].value,
               headers[i].value_len);
        off += headers[i].name_len;
    }
    nghttp2_data_provider prd = {.source.ptr = s, .read_callback = data_read};
    s->no_body = s->is_head || status == 204 || status == 304;
    s->resp_left = content_length;
    if (nghttp2_submit_response(c->session, s->id, c->nva, n, &prd) != 0)
        return -1;
    s->started = 1;
    wake(c);
    return 0;
}

int h2s_conn_body(h2s_conn_t *c, uint64_t id, const void *data, size_t len)
{
    h2s_stream_t *s = stream_of(c, id);
    if (!s || !s->started || s->ended)
        return -1;
    if (s->resp_left >= 0) {
        if ((uint64_t)s->resp_left < len)
            return -1;
        s->resp_left -= (int64_t)len;
    }
    if (!s->no_body && len) {
        if (buf_add(&s->out, data, len))
            return -1;
        resume(s);
        wake(c);
    }
    if (s->out.len - s->out_off >= stream_high(c)) {
        s->full = 1;
        return 1;
    }
    return 0;
}

int h2s_conn_end(h2s_conn_t *c, uint64_t id)
{
    h2s_stream_t *s = stream_of(c, id);
    if (!s || !s->started || s->ended)
        return -1;
    s->ended = 1;
    if (s->resp_left > 0) {
        nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
        wake(c);
        return -1;
    }
    resume(s);
    wake(c);
    return 0;
}

int h2s_conn_end_trailers(h2s_conn_t *c, uint64_t id, const h1_conn_hdr_t *trailers, size_t n)
{
    h2s_stream_t *s = stream_of(c, id);
    if (!s || !s->started || s->ended || n == 0 || n > H2S_MAX_TRAILERS || s->resp_left > 0)
        return -1;
    s->trailers.len = 0;
    for (size_t i = 0; i < n; i++) {
        const h1_conn_hdr_t *h = &trailers[i];
        if (!header_ok(h) || memchr(h->name, 0, h->name_len) || memchr(h->value, 0, h->value_len))
            return -1;
        for (size_t j = 0; j < h->name_len; j++) { /* lower-cased, as the response's */
            char ch = h->name[j];
            ch = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
            if (buf_add(&s->trailers, &ch, 1))
                return -1;
        }
        if (buf_add(&s->trailers, "", 1) || buf_add(&s->trailers, h->value, h->value_len) ||
            buf_add(&s->trailers, "", 1))
            return -1;
    }
    s->n_trailers = n;
    s->ended = 1;
    resume(s);
    wake(c);
    return 0;
}

int h2s_conn_respond_error(h2s_conn_t *c, uint64_t id, int status, const char *message)
{
    json_t *o = json_pack("{s:s}", "error", message ? message : h1_conn_reason(status));
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    const char *body = text ? text : "{\"error\":\"error\"}";
    size_t blen = strlen(body);
    static const h1_conn_hdr_t type = {"Content-Type", 12, "application/json", 16};
    int rc = h2s_conn_respond(c, id, status, &type, 1, (int64_t)blen);
    if (rc == 0) {
        h2s_conn_body(c, id, body, blen);
        h2s_conn_end(c, id);
    }
    free(text);
    return rc;
}
