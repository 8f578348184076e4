/*
 * transport/http1_server.c: the HTTP/1.1 server behind transport/http1_server.h.
 *
 * One connection = one uv_tcp_t, one idle uv_timer_t, a fixed input buffer and a body that
 * begins inline and grows on the heap. Reads append to the input buffer; complete requests are
 * answered one at a time, and reading pauses while an answer is being written, so pipelined
 * requests are answered in order. An answer is written as its head plus the first chunk of
 * the body, then chunk after chunk from the write callback; once written, a heap body is
 * freed (an idle connection holds no more than its inline buffer). A connection is freed when
 * both of its handles have closed; the server is freed when the listener and every connection
 * have.
 */
#include "transport/http1_server.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/sockios.h>

#include "common/addr.h"
#include "common/log.h"
#include "transport/tls_holder.h"

/* TLS: ciphertext is read into one buffer per server and handed to the connection's TLS. */
#define TLS_READ 16384

typedef struct probe_conn probe_conn_t;

struct h1_body {
    char *data; /* inl or a heap buffer */
    size_t len, cap;
    size_t max; /* the server's max_response */
    int failed; /* a write did not fit */
    const char *type;
    const char *header; /* one more header line, or NULL */
    char *inl;
};

/* One path of the table. */
typedef struct h1_route {
    char *path;
    size_t len;
    h1_handler_fn fn;
    void *ud;
    int post; /* POST is answered too (h1_server_add_post) */
} h1_route_t;

struct h1_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    h1_server_config_t cfg;
    int listening;
    int closing;
    int port;
    unsigned n_conns;
    unsigned long requests;
    size_t queued; /* body bytes of answers not yet written */
    const char *name;
    h1_route_t *routes; /* sorted by path */
    size_t n_routes, cap_routes;
    probe_conn_t *conns;
    h1_guard_fn guard;
    void *guard_ud;
    void (*on_closed)(void *ud);
    void *on_closed_ud;
    uint8_t *ctext; /* TLS: the read buffer of ciphertext */
};

struct probe_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wr;
    uv_shutdown_t shut;
    h1_server_t *s;
    probe_conn_t *next, *prev;
    int handles; /* handles not yet closed */
    int closing;
    int writing;
    int close_after_write;
    int draining;     /* answered with Connection: close; discarding input until EOF */
    mesh_tls_t *tls;  /* cfg.tls: requests decrypted into in, answers encrypted */
    uint8_t *tls_out; /* ciphertext being written */
    size_t tls_out_cap;
    uint64_t hs_deadline; /* TLS: loop time the handshake must be done by; 0: no limit */
    int sent_queue;       /* while writing: the kernel's unsent bytes when the timer was armed */
    size_t in_len;
    size_t out_off, out_len; /* body bytes written / to write of the current answer */
    size_t queued;           /* what this answer counts in s->queued */
    h1_body_t body;
    char in[H1_MAX_HEAD + H1_MAX_BODY];
    char head[512];
    char inl[H1_BODY_INLINE];
};

/* ---- bodies ------------------------------------------------------------------------------- */

static void body_init(h1_body_t *b, char *inl, size_t max)
{
    *b = (h1_body_t){.data = inl, .cap = H1_BODY_INLINE, .max = max, .inl = inl};
    b->type = "application/json";
}

/* Drops a heap buffer (back to the inline one) and empties the body. */
static void body_release(h1_body_t *b)
{
    if (b->data != b->inl)
        free(b->data);
    b->data = b->inl;
    b->cap = H1_BODY_INLINE;
    b->len = 0;
    b->failed = 0;
    b->type = "application/json";
    b->header = NULL;
}

int h1_body_write(h1_body_t *b, const void *data, size_t len)
{
    if (b->failed)
        return -1;
    if (len > b->max || b->len > b->max - len) {
        b->failed = 1;
        return -1;
    }
    if (b->len + len > b->cap) {
        size_t nc = b->cap * 2;
        while (nc < b->len + len)
            nc *= 2;
        if (nc > b->max)
            nc = b->max;
        char *nd = b->data == b->inl ? malloc(nc) : realloc(b->data, nc);
        if (!nd) {
            b->failed = 1;
            return -1;
        }
        if (b->data == b->inl)
            memcpy(nd, b->inl, b->len);
        b->data = nd;
        b->cap = nc;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

int h1_body_printf(h1_body_t *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return -1;
    }
    if ((size_t)n < sizeof(small))
        return h1_body_write(b, small, (size_t)n);
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->failed = 1;
        return -1;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = h1_body_write(b, big, (size_t)n);
    free(big);
    return rc;
}

static int json_sink(const char *buf, size_t size, void *ud)
{
    return h1_body_write(ud, buf, size);
}

int h1_body_json(h1_body_t *b, const json_t *j)
{
    if (!j || json_dump_callback(j, json_sink, b, JSON_COMPACT) != 0) {
        b->failed = 1;
        return -1;
    }
    return 0;
}

void h1_body_set_type(h1_body_t *b, const char *content_type)
{
    b->type = content_type ? content_type : "application/json";
}

void h1_body_set_header(h1_body_t *b, const char *line)
{
    b->header = line;
}

size_t h1_body_len(const h1_body_t *b)
{
    return b->len;
}

void h1_body_reset(h1_body_t *b)
{
    b->len = 0;
    b->failed = 0;
}

static void conn_process(probe_conn_t *c);
static int tls_handshake(probe_conn_t *c);

static void server_maybe_free(h1_server_t *s)
{
    if (!s->closing || s->conns || s->listening)
        return;
    void (*cb)(void *) = s->on_closed;
    void *ud = s->on_closed_ud;
    for (size_t i = 0; i < s->n_routes; i++)
        free(s->routes[i].path);
    free(s->routes);
    free(s->ctext);
    free(s);
    if (cb)
        cb(ud);
}

static void on_conn_handle_closed(uv_handle_t *h)
{
    probe_conn_t *c = h->data;
    if (--c->handles > 0)
        return;
    h1_server_t *s = c->s;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->n_conns--;
    s->queued -= c->queued;
    body_release(&c->body);
    if (c->tls) {
        mesh_tls_destroy(c->tls);
        free(c->tls);
    }
    free(c->tls_out);
    free(c);
    server_maybe_free(s);
}

static void conn_close(probe_conn_t *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

/* The bytes the kernel still holds to send on c's socket (SIOCOUTQ), or -1. */
static int send_queue(probe_conn_t *c)
{
    uv_os_fd_t fd;
    int q;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0 || ioctl(fd, SIOCOUTQ, &q) != 0)
        return -1;
    return q;
}

/* The connection's timer: idle for too long, or (TLS) its handshake not done in time. A reader
 * still taking the answer is not idle: a write waits while the kernel's buffers (hundreds of
 * KB on loopback) drain, so progress is the kernel's send queue moving since the timer was
 * armed, not a write finishing. */
static void on_idle(uv_timer_t *t)
{
    probe_conn_t *c = t->data;
    if (c->writing && !c->closing) {
        int q = send_queue(c);
        if (q >= 0 && q != c->sent_queue) {
            c->sent_queue = q;
            uv_timer_start(&c->timer, on_idle, c->s->cfg.idle_timeout_ms, 0);
            return;
        }
    }
    if (c->tls && !c->tls->established && c->hs_deadline && uv_now(c->s->loop) >= c->hs_deadline) {
        struct sockaddr_storage peer;
        int plen = sizeof(peer);
        if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&peer, &plen) < 0)
            peer.ss_family = AF_UNSPEC;
        mesh_tls_timed_out(c->tls);
        mesh_tls_fail_report(c->tls, c->s->name, (const struct sockaddr *)&peer);
    }
    conn_close(c);
}

/* Re-arms the idle timer; before the TLS handshake is done, no later than its deadline. */
static void touch(probe_conn_t *c)
{
    uint64_t ms = c->s->cfg.idle_timeout_ms;
    if (c->tls && !c->tls->established && c->hs_deadline) {
        uint64_t now = uv_now(c->s->loop);
        uint64_t left = c->hs_deadline > now ? c->hs_deadline - now : 0;
        if (left < ms)
            ms = left;
    }
    uv_timer_start(&c->timer, on_idle, ms, 0);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

static void on_shutdown(uv_shutdown_t *req, int status)
{
    probe_conn_t *c = req->data;
    if (status < 0)
        conn_close(c);
}

/* Closes gracefully after a final answer: send FIN, then read and drop whatever the client
 * still sends until it closes too (or a short timer fires). Closing with unread input would
 * make the kernel send RST, which can destroy the answer before the client reads it. */
static void conn_linger(probe_conn_t *c)
{
    if (c->tls && c->tls->established) { /* close_notify first: a clean end for the client */
        mesh_tls_close(c->tls);
        uint8_t alert[256];
        size_t n = mesh_tls_out_take(c->tls, alert, sizeof(alert));
        uv_buf_t b = uv_buf_init((char *)alert, (unsigned)n);
        if (n)
            uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    }
    c->draining = 1;
    c->in_len = 0;
    c->shut.data = c;
    if (uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
        conn_close(c);
        return;
    }
    uv_timer_start(&c->timer, on_idle, 2000, 0);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Content Too Large";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Status";
    }
}

/* Ends the current answer: its bytes leave the queue, a heap body is freed. */
static void answer_done(probe_conn_t *c)
{
    c->s->queued -= c->queued;
    c->queued = 0;
    c->out_off = c->out_len = 0;
    body_release(&c->body);
}

static void on_written(uv_write_t *wr, int status);

/* TLS: moves the ciphertext waiting into the connection's out buffer; *n gets its length. */
static int tls_take(probe_conn_t *c, size_t *n)
{
    size_t want = mesh_tls_out_pending(c->tls);
    if (want > c->tls_out_cap) {
        uint8_t *p = realloc(c->tls_out, want);
        if (!p)
            return -1;
        c->tls_out = p;
        c->tls_out_cap = want;
    }
    *n = mesh_tls_out_take(c->tls, c->tls_out, want);
    return 0;
}

/* TLS: encrypts bufs and replaces them by one buffer of ciphertext. */
static int tls_seal(probe_conn_t *c, uv_buf_t *bufs, unsigned *nb)
{
    for (unsigned i = 0; i < *nb; i++)
        if (bufs[i].len && mesh_tls_write(c->tls, bufs[i].base, bufs[i].len) < 0)
            return -1;
    size_t n;
    if (tls_take(c, &n) < 0)
        return -1;
    bufs[0] = uv_buf_init((char *)c->tls_out, (unsigned)n);
    *nb = 1;
    return 0;
}

/* Hands libuv the next chunk of the body (after the head, when head_len > 0). */
static void write_next(probe_conn_t *c, size_t head_len)
{
    size_t n = c->out_len - c->out_off;
    if (n > H1_WRITE_CHUNK)
        n = H1_WRITE_CHUNK;
    uv_buf_t bufs[2];
    unsigned nb = 0;
    if (head_len)
        bufs[nb++] = uv_buf_init(c->head, (unsigned)head_len);
    if (n)
        bufs[nb++] = uv_buf_init(c->body.data + c->out_off, (unsigned)n);
    c->out_off += n;
    c->writing = 1;
    c->wr.data = c;
    touch(c); /* a reader that stops reading is closed after the idle timeout */
    if (c->tls && tls_seal(c, bufs, &nb) < 0) {
        c->writing = 0;
        conn_close(c);
        return;
    }
    if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, bufs, nb, on_written) < 0) {
        c->writing = 0;
        conn_close(c);
        return;
    }
    c->sent_queue = send_queue(c); /* (after the part of the write the kernel took at once) */
}

static void on_written(uv_write_t *wr, int status)
{
    probe_conn_t *c = wr->data;
    c->writing = 0;
    if (c->closing)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (c->out_off < c->out_len) {
        write_next(c, 0);
        return;
    }
    answer_done(c);
    if (c->close_after_write) {
        conn_linger(c);
        return;
    }
    conn_process(c);
}

/* Writes one answer: head + (unless head_only) the body in c->body. */
static void conn_respond(probe_conn_t *c, int status, int keep_alive, int minor, int head_only,
                         int allow)
{
    h1_server_t *s = c->s;
    size_t body_len = c->body.len;
    int n = snprintf(c->head, sizeof(c->head),
                     "HTTP/1.1 %d %s\r\n"
                     "Content-Type: %s\r\n"
                     "Content-Length: %zu\r\n"
                     "Cache-Control: no-store\r\n"
                     "%s%s%s%s\r\n",
                     status, reason_phrase(status), c->body.type, body_len,
                     allow ? "Allow: GET, HEAD\r\n" : "", c->body.header ? c->body.header : "",
                     c->body.header ? "\r\n" : "",
                     !keep_alive  ? "Connection: close\r\n"
                     : minor == 0 ? "Connection: keep-alive\r\n"
                                  : "");
    if (n < 0 || (size_t)n >= sizeof(c->head)) { /* only a very long Content-Type */
        mesh_error(s->name, "answer head too long (content type %s)", c->body.type);
        conn_close(c);
        return;
    }
    c->out_off = 0;
    c->out_len = head_only ? 0 : body_len;
    if (c->out_len > s->cfg.max_queued || s->queued > s->cfg.max_queued - c->out_len) {
        mesh_warn(s->name,
                  "closing a connection: its %zu-byte answer would queue more than %zu bytes "
                  "(%zu queued by slow readers)",
                  c->out_len, s->cfg.max_queued, s->queued);
        c->out_len = 0;
        body_release(&c->body);
        conn_close(c);
        return;
    }
    c->queued = c->out_len;
    s->queued += c->queued;
    c->close_after_write = !keep_alive;
    s->requests++;
    write_next(c, (size_t)n);
}

/* Replaces the body with a fixed JSON text. */
static void set_body(probe_conn_t *c, const char *json)
{
    body_release(&c->body);
    h1_body_write(&c->body, json, strlen(json));
}

static const h1_route_t *find_route(const h1_server_t *s, const h1_req_t *req)
{
    for (size_t i = 0; i < s->n_routes; i++)
        if (s->routes[i].len == req->path_len &&
            memcmp(s->routes[i].path, req->path, req->path_len) == 0)
            return &s->routes[i];
    return NULL;
}

/* 404: what was asked and the paths there are. */
static void not_found(probe_conn_t *c, const h1_req_t *req)
{
    h1_server_t *s = c->s;
    json_t *paths = json_array();
    for (size_t i = 0; paths && i < s->n_routes; i++)
        json_array_append_new(paths, json_string(s->routes[i].path));
    json_t *o = json_pack("{s:s,s:s%,s:o*}", "error", "not found", "path", req->path, req->path_len,
                          "paths", paths);
    body_release(&c->body);
    if (!o || h1_body_json(&c->body, o) != 0)
        set_body(c, "{\"error\":\"not found\"}");
    json_decref(o);
}

/* Answers one complete request. */
static void conn_answer(probe_conn_t *c, const h1_req_t *req)
{
    h1_server_t *s = c->s;
    int head_only = h1_req_method_is(req, "HEAD");
    const h1_route_t *pr = h1_req_method_is(req, "POST") ? find_route(s, req) : NULL;
    if (!head_only && !h1_req_method_is(req, "GET") && !(pr && pr->post)) {
        set_body(c, "{\"error\":\"method not allowed\",\"allow\":[\"GET\",\"HEAD\"]}");
        conn_respond(c, 405, req->keep_alive, req->minor, 0, 1);
        return;
    }
    if (s->guard) {
        body_release(&c->body);
        int status = s->guard(s->guard_ud, req, &c->body);
        if (status) {
            conn_respond(c, status, req->keep_alive, req->minor, head_only, 0);
            return;
        }
    }
    const h1_route_t *r = find_route(s, req);
    if (!r) {
        not_found(c, req);
        conn_respond(c, 404, req->keep_alive, req->minor, head_only, 0);
        return;
    }
    body_release(&c->body);
    int status = r->fn(r->ud, req, &c->body);
    if (status < 100 || status > 599 || c->body.failed) {
        mesh_error(s->name, "the handler of %s failed: status %d, %s", r->path, status,
                   c->body.failed ? "its body did not fit (max-response or memory)" : "body ok");
        status = 500;
        char msg[300];
        snprintf(msg, sizeof(msg), "the handler of %s failed", r->path);
        json_t *o = json_pack("{s:s}", "error", msg);
        body_release(&c->body);
        if (!o || h1_body_json(&c->body, o) != 0)
            set_body(c, "{\"error\":\"handler failed\"}");
        json_decref(o);
    }
    conn_respond(c, status, req->keep_alive, req->minor, head_only, 0);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    /* in_len is reset after every drained read, so the whole buffer is reused. */
    probe_conn_t *c = h->data;
    (void)suggested;
    if (c->tls && !c->draining) {
        *buf = uv_buf_init((char *)c->s->ctext, TLS_READ);
        return;
    }
    *buf = uv_buf_init(c->in + c->in_len, (unsigned)(sizeof(c->in) - c->in_len));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    probe_conn_t *c = st->data;
    (void)buf;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (nread == 0)
        return;
    if (c->draining) {
        c->in_len = 0;
        return;
    }
    touch(c);
    if (c->tls) {
        if (mesh_tls_feed(c->tls, c->s->ctext, (size_t)nread) < 0 || tls_handshake(c) < 0)
            return;
    } else {
        c->in_len += (size_t)nread;
    }
    conn_process(c);
}

/* TLS: advances the handshake and sends its next flight. 0 once it is done; -1 while it is
 * not, or when it failed (the connection is closed). */
static int tls_handshake(probe_conn_t *c)
{
    if (c->tls->established)
        return 0;
    int r = mesh_tls_handshake(c->tls);
    if (r == MESH_TLS_FAIL) {
        struct sockaddr_storage peer;
        int plen = sizeof(peer);
        if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&peer, &plen) < 0)
            peer.ss_family = AF_UNSPEC;
        mesh_tls_fail_report(c->tls, c->s->name, (const struct sockaddr *)&peer);
        conn_close(c);
        return -1;
    }
    size_t n;
    if (!c->writing && mesh_tls_out_pending(c->tls)) {
        if (tls_take(c, &n) < 0) {
            conn_close(c);
            return -1;
        }
        uv_buf_t b = uv_buf_init((char *)c->tls_out, (unsigned)n);
        c->writing = 1;
        c->wr.data = c;
        if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0) {
            c->writing = 0;
            conn_close(c);
            return -1;
        }
    }
    if (r != MESH_TLS_DONE)
        return -1;
    mesh_tls_count_handshake(c->tls);
    touch(c); /* the idle timeout from now on */
    return 0;
}

/* TLS: decrypts what arrived into the input buffer while it has room. */
static void tls_fill(probe_conn_t *c)
{
    while (c->tls->established && c->in_len < sizeof(c->in)) {
        ssize_t k = mesh_tls_read(c->tls, (uint8_t *)c->in + c->in_len, sizeof(c->in) - c->in_len);
        if (k <= 0) {
            if (k == MESH_TLS_FAIL || k == MESH_TLS_CLOSED)
                conn_close(c);
            return;
        }
        c->in_len += (size_t)k;
    }
}

/* Answers the next buffered request if there is one, else reads on. */
static void conn_process(probe_conn_t *c)
{
    if (c->closing || c->writing || c->draining)
        return;
    if (c->tls) {
        if (!c->tls->established)
            return; /* on_read goes on with the handshake */
        tls_fill(c);
        if (c->closing)
            return;
    }
    h1_req_t req;
    int rc = h1_parse(c->in, c->in_len, &req);
    if (rc == H1_PARSE_INCOMPLETE) {
        if (c->in_len == sizeof(c->in)) { /* cannot happen with the limits; be safe */
            conn_close(c);
            return;
        }
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
        return;
    }
    uv_read_stop((uv_stream_t *)&c->tcp);
    if (rc < 0) {
        int status = -rc;
        const char *msg = status == 431   ? "{\"error\":\"request header fields too large\"}"
                          : status == 413 ? "{\"error\":\"request body too large\"}"
                          : status == 505 ? "{\"error\":\"HTTP version not supported\"}"
                                          : "{\"error\":\"bad request\"}";
        c->in_len = 0;
        set_body(c, msg);
        conn_respond(c, status, 0, 1, 0, 0);
        return;
    }
    /* Answer, then drop the request from the buffer (the answer does not point into it). */
    req.conn = c;
    conn_answer(c, &req);
    memmove(c->in, c->in + rc, c->in_len - (size_t)rc);
    c->in_len -= (size_t)rc;
}

void h1_server_set_tls(h1_server_t *s, struct mesh_tls_holder *tls, uint64_t handshake_timeout_ms)
{
    s->cfg.tls = tls;
    s->cfg.tls_handshake_timeout_ms = handshake_timeout_ms;
}

static void on_connection(uv_stream_t *ls, int status)
{
    h1_server_t *s = ls->data;
    if (status < 0 || s->closing)
        return;
    probe_conn_t *c = calloc(1, sizeof(*c));
    if (!c)
        return;
    c->s = s;
    body_init(&c->body, c->inl, s->cfg.max_response);
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles = 2;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->n_conns++;
    if (uv_accept(ls, (uv_stream_t *)&c->tcp) < 0 || s->n_conns > s->cfg.max_connections) {
        mesh_warn(s->name, "connection refused (%u open)", s->n_conns - 1);
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (s->cfg.tls) {
        mesh_tls_ctx_t *ctx = mesh_tls_holder_get(s->cfg.tls);
        c->tls = calloc(1, sizeof(*c->tls));
        if (!s->ctext)
            s->ctext = malloc(TLS_READ);
        int rv = ctx && c->tls && s->ctext ? mesh_tls_init(c->tls, ctx, NULL) : -1;
        mesh_tls_ctx_unref(ctx);
        if (rv < 0) {
            free(c->tls);
            c->tls = NULL;
            conn_close(c);
            return;
        }
        uint64_t hs = s->cfg.tls_handshake_timeout_ms;
        if (hs != UINT64_MAX)
            c->hs_deadline = uv_now(s->loop) + (hs ? hs : 10000);
    }
    touch(c);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

h1_server_t *h1_server_new(uv_loop_t *loop, const h1_server_config_t *cfg)
{
    h1_server_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->loop = loop;
    if (cfg)
        s->cfg = *cfg;
    if (!s->cfg.idle_timeout_ms)
        s->cfg.idle_timeout_ms = 30000;
    if (!s->cfg.max_connections)
        s->cfg.max_connections = 64;
    if (!s->cfg.max_response)
        s->cfg.max_response = (size_t)64 << 20;
    if (!s->cfg.max_queued)
        s->cfg.max_queued = (size_t)256 << 20;
    if (s->cfg.max_response < H1_BODY_INLINE)
        s->cfg.max_response = H1_BODY_INLINE;
    s->name = s->cfg.name ? s->cfg.name : "http";
    s->port = -1;
    return s;
}

int h1_server_listen(h1_server_t *s, const char *host, int port)
{
    struct sockaddr_storage ss;
    int rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&ss);
    if (rc < 0)
        rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss);
    if (rc < 0)
        return rc;
    if (!s->listening) {
        if ((rc = uv_tcp_init(s->loop, &s->listener)) < 0)
            return rc;
        s->listener.data = s;
        s->listening = 1;
    }
    if ((rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&ss, 0)) < 0 ||
        (rc = uv_listen((uv_stream_t *)&s->listener, 64, on_connection)) < 0)
        return rc;
    struct sockaddr_storage got;
    int len = sizeof(got);
    if ((rc = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&got, &len)) < 0)
        return rc;
    s->port = got.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&got)->sin6_port)
                                        : ntohs(((struct sockaddr_in *)&got)->sin_port);
    mesh_debug(s->name, "HTTP server listening on %s:%d", host, s->port);
    return 0;
}

void h1_server_set_guard(h1_server_t *s, h1_guard_fn fn, void *ud)
{
    s->guard = fn;
    s->guard_ud = ud;
}

static int add_route(h1_server_t *s, const char *path, h1_handler_fn fn, void *ud, int post);

int h1_server_add(h1_server_t *s, const char *path, h1_handler_fn fn, void *ud)
{
    return add_route(s, path, fn, ud, 0);
}

int h1_server_add_post(h1_server_t *s, const char *path, h1_handler_fn fn, void *ud)
{
    return add_route(s, path, fn, ud, 1);
}

static int add_route(h1_server_t *s, const char *path, h1_handler_fn fn, void *ud, int post)
{
    if (!path || path[0] != '/' || !fn)
        return -1;
    size_t at = 0;
    for (; at < s->n_routes; at++) {
        int c = strcmp(s->routes[at].path, path);
        if (c == 0)
            return -1;
        if (c > 0)
            break;
    }
    if (s->n_routes == s->cap_routes) {
        size_t nc = s->cap_routes ? s->cap_routes * 2 : 8;
        h1_route_t *nr = realloc(s->routes, nc * sizeof(*nr));
        if (!nr)
            return -1;
        s->routes = nr;
        s->cap_routes = nc;
    }
    char *p = strdup(path);
    if (!p)
        return -1;
    memmove(&s->routes[at + 1], &s->routes[at], (s->n_routes - at) * sizeof(*s->routes));
    s->routes[at] = (h1_route_t){.path = p, .len = strlen(p), .fn = fn, .ud = ud, .post = post};
    s->n_routes++;
    return 0;
}

int h1_server_remove(h1_server_t *s, const char *path)
{
    for (size_t i = 0; i < s->n_routes; i++)
        if (strcmp(s->routes[i].path, path) == 0) {
            free(s->routes[i].path);
            memmove(&s->routes[i], &s->routes[i + 1], (s->n_routes - i - 1) * sizeof(*s->routes));
            s->n_routes--;
            return 0;
        }
    return -1;
}

size_t h1_server_queued(const h1_server_t *s)
{
    return s->queued;
}

int h1_server_port(const h1_server_t *s)
{
    return s->port;
}

unsigned long h1_server_requests(const h1_server_t *s)
{
    return s->requests;
}

static void on_listener_closed(uv_handle_t *h)
{
    h1_server_t *s = h->data;
    s->listening = 0;
    server_maybe_free(s);
}

void h1_server_close(h1_server_t *s, void (*on_closed)(void *ud), void *ud)
{
    if (s->closing)
        return;
    s->closing = 1;
    s->on_closed = on_closed;
    s->on_closed_ud = ud;
    for (probe_conn_t *c = s->conns; c; c = c->next)
        conn_close(c);
    if (s->listening)
        uv_close((uv_handle_t *)&s->listener, on_listener_closed);
    else
        server_maybe_free(s);
}

int h1_req_peer(const h1_req_t *req, char *out, size_t cap)
{
    const probe_conn_t *c = req->conn;
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (!c || cap == 0 || uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    char host[64];
    int port;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
        uv_ip4_name(a, host, sizeof(host));
        port = ntohs(a->sin_port);
        snprintf(out, cap, "%s:%d", host, port);
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
        uv_ip6_name(a, host, sizeof(host));
        port = ntohs(a->sin6_port);
        snprintf(out, cap, "[%s]:%d", host, port);
    } else {
        return -1;
    }
    return 0;
}
