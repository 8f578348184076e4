/*
 * transport/http1_server.c: the probe HTTP server behind transport/http1_server.h.
 *
 * One connection = one uv_tcp_t, one idle uv_timer_t and fixed input/output buffers. Reads
 * append to the input buffer; complete requests are answered one at a time, and reading
 * pauses while an answer is being written, so pipelined requests are answered in order. A
 * connection is freed when both of its handles have closed; the server is freed when the
 * listener and every connection have.
 */
#include "transport/http1_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "transport/http1_parse.h"

typedef struct probe_conn probe_conn_t;

struct h1_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    h1_server_config_t cfg;
    int listening;
    int closing;
    int port;
    unsigned n_conns;
    unsigned long requests;
    probe_conn_t *conns;
    void (*on_closed)(void *ud);
    void *on_closed_ud;
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
    int draining; /* answered with Connection: close; discarding input until EOF */
    size_t in_len;
    char in[H1_MAX_HEAD + H1_MAX_BODY];
    char head[512];
    char body[H1_BODY_MAX];
};

static void conn_process(probe_conn_t *c);

static void server_maybe_free(h1_server_t *s)
{
    if (!s->closing || s->conns || s->listening)
        return;
    void (*cb)(void *) = s->on_closed;
    void *ud = s->on_closed_ud;
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

static void on_idle(uv_timer_t *t)
{
    conn_close(t->data);
}

static void touch(probe_conn_t *c)
{
    uv_timer_start(&c->timer, on_idle, c->s->cfg.idle_timeout_ms, 0);
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
    if (c->close_after_write) {
        conn_linger(c);
        return;
    }
    conn_process(c);
}

/* Writes one answer: head + (unless head_only) body. */
static void conn_respond(probe_conn_t *c, int status, size_t body_len, int keep_alive, int minor,
                         int head_only, int allow)
{
    int n = snprintf(c->head, sizeof(c->head),
                     "HTTP/1.1 %d %s\r\n"
                     "Content-Type: application/json\r\n"
                     "Content-Length: %zu\r\n"
                     "Cache-Control: no-store\r\n"
                     "%s%s\r\n",
                     status, reason_phrase(status), body_len, allow ? "Allow: GET, HEAD\r\n" : "",
                     !keep_alive  ? "Connection: close\r\n"
                     : minor == 0 ? "Connection: keep-alive\r\n"
                                  : "");
    uv_buf_t bufs[2] = {uv_buf_init(c->head, (unsigned)n),
                        uv_buf_init(c->body, head_only ? 0 : (unsigned)body_len)};
    c->close_after_write = !keep_alive;
    c->writing = 1;
    c->wr.data = c;
    c->s->requests++;
    if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, bufs, head_only || body_len == 0 ? 1 : 2,
                 on_written) < 0) {
        c->writing = 0;
        conn_close(c);
    }
}

static size_t set_body(probe_conn_t *c, const char *json)
{
    size_t n = strlen(json);
    memcpy(c->body, json, n);
    return n;
}

/* Answers one complete request. */
static void conn_answer(probe_conn_t *c, const h1_req_t *req)
{
    h1_server_t *s = c->s;
    int head_only = h1_req_method_is(req, "HEAD");
    if (!head_only && !h1_req_method_is(req, "GET")) {
        size_t n = set_body(c, "{\"error\":\"method not allowed\",\"allow\":[\"GET\",\"HEAD\"]}");
        conn_respond(c, 405, n, req->keep_alive, req->minor, 0, 1);
        return;
    }
    h1_handler_fn h = NULL;
    int is_live = h1_req_path_is(req, "/livez");
    if (is_live)
        h = s->cfg.livez;
    else if (h1_req_path_is(req, "/readyz"))
        h = s->cfg.readyz;
    else {
        size_t n = set_body(c, "{\"error\":\"not found\",\"paths\":[\"/livez\",\"/readyz\"]}");
        conn_respond(c, 404, n, req->keep_alive, req->minor, head_only, 0);
        return;
    }
    size_t len = 0;
    int status;
    if (h) {
        status = h(s->cfg.ud, c->body, sizeof(c->body), &len);
        if (status < 100 || status > 599 || len > sizeof(c->body)) {
            mesh_error("sidecar", "probe handler returned status %d, body %zu bytes", status, len);
            status = 500;
            len = set_body(c, "{\"error\":\"probe handler failed\"}");
        }
    } else if (is_live) {
        status = 200;
        len = set_body(c, "{\"status\":\"alive\"}");
    } else {
        status = 503;
        len = set_body(c, "{\"ready\":false}");
    }
    conn_respond(c, status, len, req->keep_alive, req->minor, head_only, 0);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    /* in_len is reset after every drained read, so the whole buffer is reused. */
    probe_conn_t *c = h->data;
    (void)suggested;
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
    c->in_len += (size_t)nread;
    touch(c);
    conn_process(c);
}

/* Answers the next buffered request if there is one, else reads on. */
static void conn_process(probe_conn_t *c)
{
    if (c->closing || c->writing || c->draining)
        return;
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
        conn_respond(c, status, set_body(c, msg), 0, 1, 0, 0);
        return;
    }
    /* Answer, then drop the request from the buffer (the answer does not point into it). */
    conn_answer(c, &req);
    memmove(c->in, c->in + rc, c->in_len - (size_t)rc);
    c->in_len -= (size_t)rc;
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
        mesh_warn("sidecar", "probe server: connection refused (%u open)", s->n_conns - 1);
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
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
    mesh_info("sidecar", "probe server listening on %s:%d", host, s->port);
    return 0;
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
