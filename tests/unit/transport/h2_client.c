/*
 * tests/unit/transport/h2_client.c: the blocking nghttp2 client of the transport tests.
 */
#include "h2_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static ssize_t send_cb(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *ud)
{
    h2_client_t *c = ud;
    ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0)
        return errno == EAGAIN ? NGHTTP2_ERR_WOULDBLOCK : NGHTTP2_ERR_CALLBACK_FAILURE;
    return n;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nl,
                     const uint8_t *value, size_t vl, uint8_t flags, void *ud)
{
    h2_call_t *call = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (!call)
        return 0;
    if (nl == 7 && memcmp(name, ":status", 7) == 0)
        call->http_status = atoi((const char *)value);
    if (nl == 11 && memcmp(name, "grpc-status", 11) == 0)
        call->grpc_status = atoi((const char *)value);
    if (nl == 10 && memcmp(name, "x-echo-bin", 10) == 0)
        call->saw_echo_bin = 1;
    size_t used = strlen(call->fields);
    if (name[0] != ':' && used + nl + vl + 3 < sizeof(call->fields))
        snprintf(call->fields + used, sizeof(call->fields) - used, "%.*s: %.*s\n", (int)nl, name,
                 (int)vl, value);
    if (nl == 12 && memcmp(name, "grpc-message", 12) == 0) {
        size_t n = vl < sizeof(call->grpc_message) - 1 ? vl : sizeof(call->grpc_message) - 1;
        memcpy(call->grpc_message, value, n);
        call->grpc_message[n] = '\0';
    }
    return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                   void *ud)
{
    h2_call_t *call = nghttp2_session_get_stream_user_data(s, id);
    if (!call)
        return 0;
    call->body = realloc(call->body, call->body_len + len);
    memcpy(call->body + call->body_len, data, len);
    call->body_len += len;
    return 0;
}

static int on_close(nghttp2_session *s, int32_t id, uint32_t err, void *ud)
{
    h2_call_t *call = nghttp2_session_get_stream_user_data(s, id);
    if (call) {
        call->closed = 1;
        call->rst_error = err;
    }
    return 0;
}

static ssize_t read_cb(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length, uint32_t *flags,
                       nghttp2_data_source *src, void *ud)
{
    h2_call_t *call = src->ptr;
    size_t n = call->req_len - call->req_off;
    if (n > length)
        n = length;
    if (n > 0)
        memcpy(buf, call->req + call->req_off, n);
    call->req_off += n;
    if (call->req_off == call->req_len) {
        if (call->req_end)
            *flags |= NGHTTP2_DATA_FLAG_EOF;
        else if (n == 0)
            return NGHTTP2_ERR_DEFERRED;
    }
    return (ssize_t)n;
}

int h2_client_connect(h2_client_t *c, int port)
{
    memset(c, 0, sizeof(*c));
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(c->fd);
        return -1;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    nghttp2_session_callbacks *cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_send_callback(cb, send_cb);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
    nghttp2_session_client_new(&c->session, cb, c);
    nghttp2_session_callbacks_del(cb);
    nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, NULL, 0);
    return 0;
}

int h2_client_call(h2_client_t *c, h2_call_t *call, const char *path, const char *content_type,
                   const char *timeout, const uint8_t *body, size_t len, int end)
{
    memset(call, 0, sizeof(*call));
    call->grpc_status = -1;
    call->req = body;
    call->req_len = len;
    call->req_end = end;
    nghttp2_nv nva[16];
    size_t n = 0;
#define NV(a, b) nva[n++] = (nghttp2_nv){(uint8_t *)a, (uint8_t *)b, strlen(a), strlen(b), 0}
    NV(":method", "POST");
    NV(":scheme", "http");
    NV(":path", path);
    NV(":authority", "test");
    NV("content-type", content_type);
    NV("te", "trailers");
    NV("x-trace-bin", "AQID");
    if (timeout)
        NV("grpc-timeout", timeout);
#undef NV
    for (size_t i = 0; i < c->n_extra && n < sizeof(nva) / sizeof(nva[0]); i++)
        nva[n++] = c->extra[i];
    nghttp2_data_provider prd = {.source = {.ptr = call}, .read_callback = read_cb};
    call->id = nghttp2_submit_request(c->session, NULL, nva, n, &prd, call);
    return call->id > 0 ? 0 : -1;
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One round of send + poll + receive; returns -1 when the connection is gone. */
static int step(h2_client_t *c, int wait_ms)
{
    if (c->dead)
        return -1;
    if (nghttp2_session_send(c->session) != 0) {
        c->dead = 1;
        return -1;
    }
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    if (nghttp2_session_want_write(c->session))
        p.events |= POLLOUT;
    if (poll(&p, 1, wait_ms) <= 0)
        return 0;
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
        uint8_t buf[65536];
        ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
        if (n <= 0) {
            c->dead = 1;
            return -1;
        }
        if (nghttp2_session_mem_recv(c->session, buf, (size_t)n) < 0) {
            c->dead = 1;
            return -1;
        }
    }
    return 0;
}

int h2_client_wait(h2_client_t *c, h2_call_t **calls, size_t n, int deadline_ms)
{
    long end = now_ms() + deadline_ms;
    while (now_ms() < end) {
        size_t open = 0;
        for (size_t i = 0; i < n; i++) {
            if (!calls[i]->closed) {
                open++;
                nghttp2_session_resume_data(c->session, calls[i]->id);
            }
        }
        if (!open)
            return 0;
        if (step(c, 20) < 0)
            return -1;
    }
    return -1;
}

void h2_client_pump(h2_client_t *c, int ms)
{
    long end = now_ms() + ms;
    while (now_ms() < end && step(c, 10) == 0)
        ;
}

void h2_client_close(h2_client_t *c)
{
    nghttp2_session_del(c->session);
    close(c->fd);
}

void h2_call_free(h2_call_t *call)
{
    free(call->body);
    call->body = NULL;
}
