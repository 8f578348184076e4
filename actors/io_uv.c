/*
 * actors/io_uv.c: the I/O seam on libuv, one instance per loop.
 *
 * Datagrams use uv_udp_try_send (no allocation, no queue: a datagram the kernel will not take
 * now is dropped, as datagrams may be) and a per-socket 64 KiB receive buffer. Streams are
 * uv_tcp_t; writes copy the bytes into one allocation holding the uv_write_t.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "actors/runtime.h"

typedef struct uvio {
    mesh_io_t io; /* first member */
    mesh_loop_t *loop;
} uvio_t;

struct mesh_udp {
    uv_udp_t h;
    mesh_udp_recv_cb cb;
    void *arg;
    char buf[65536];
};

struct mesh_listener {
    uv_tcp_t h;
    uvio_t *io;
    mesh_accept_cb cb;
    void *arg;
};

struct mesh_stream {
    uv_tcp_t h;
    uv_connect_t creq;
    mesh_connect_cb ccb;
    void *carg;
    mesh_read_cb cb;
    void *arg;
    int closed;
    char buf[65536];
};

typedef struct wreq {
    uv_write_t req;
    char data[];
} wreq_t;

static void free_on_close(uv_handle_t *h)
{
    free(h); /* the handle is the first member of its wrapper */
}

static uint64_t uvio_now(mesh_io_t *io)
{
    (void)io;
    return uv_hrtime();
}

static void udp_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    struct mesh_udp *u = (struct mesh_udp *)h;
    (void)sz;
    *b = uv_buf_init(u->buf, sizeof(u->buf));
}

static void udp_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *b, const struct sockaddr *from,
                     unsigned flags)
{
    struct mesh_udp *u = (struct mesh_udp *)h;
    (void)flags;
    if (n < 0 || !from)
        return;
    mesh_addr_t a;
    memset(&a, 0, sizeof(a));
    a.len = from->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    memcpy(&a.ss, from, a.len);
    u->cb(u, &a, b->base, (size_t)n, u->arg);
}

static int uvio_udp_bind(mesh_io_t *io, const mesh_addr_t *addr, mesh_udp_recv_cb cb, void *arg,
                         mesh_udp_t **out)
{
    uvio_t *x = (uvio_t *)io;
    struct mesh_udp *u = calloc(1, sizeof(*u));
    if (!u)
        return -ENOMEM;
    uv_udp_init(&x->loop->uv, &u->h);
    u->cb = cb;
    u->arg = arg;
    int rc = uv_udp_bind(&u->h, (const struct sockaddr *)&addr->ss, 0);
    if (rc == 0)
        rc = uv_udp_recv_start(&u->h, udp_alloc, udp_recv);
    if (rc != 0) {
        uv_close((uv_handle_t *)&u->h, free_on_close);
        return rc;
    }
    *out = u;
    return 0;
}

static int uvio_udp_local_addr(mesh_udp_t *u, mesh_addr_t *out)
{
    int len = sizeof(out->ss);
    memset(out, 0, sizeof(*out));
    int rc = uv_udp_getsockname(&u->h, (struct sockaddr *)&out->ss, &len);
    out->len = (socklen_t)len;
    return rc;
}

static int uvio_udp_send(mesh_udp_t *u, const mesh_addr_t *to, const void *data, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    int rc = uv_udp_try_send(&u->h, &b, 1, (const struct sockaddr *)&to->ss);
    return rc < 0 && rc != UV_EAGAIN ? rc : 0;
}

static void uvio_udp_close(mesh_udp_t *u)
{
    uv_udp_recv_stop(&u->h);
    uv_close((uv_handle_t *)&u->h, free_on_close);
}

static void stream_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    mesh_stream_t *s = (mesh_stream_t *)h;
    (void)sz;
    *b = uv_buf_init(s->buf, sizeof(s->buf));
}

static void stream_read(uv_stream_t *h, ssize_t n, const uv_buf_t *b)
{
    mesh_stream_t *s = (mesh_stream_t *)h;
    if (n == 0 || s->closed)
        return;
    if (n == UV_EOF)
        n = -1;
    s->cb(s, b->base, n, s->arg);
}

static void on_connection(uv_stream_t *server, int status)
{
    mesh_listener_t *l = (mesh_listener_t *)server;
    if (status < 0)
        return;
    mesh_stream_t *s = calloc(1, sizeof(*s));
    if (!s)
        return;
    uv_tcp_init(server->loop, &s->h);
    if (uv_accept(server, (uv_stream_t *)&s->h) != 0) {
        uv_close((uv_handle_t *)&s->h, free_on_close);
        return;
    }
    uv_tcp_nodelay(&s->h, 1);
    l->cb(l, s, l->arg);
}

static int uvio_listen(mesh_io_t *io, const mesh_addr_t *addr, mesh_accept_cb cb, void *arg,
                       mesh_listener_t **out)
{
    uvio_t *x = (uvio_t *)io;
    mesh_listener_t *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    uv_tcp_init(&x->loop->uv, &l->h);
    l->io = x;
    l->cb = cb;
    l->arg = arg;
    int rc = uv_tcp_bind(&l->h, (const struct sockaddr *)&addr->ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&l->h, 511, on_connection);
    if (rc != 0) {
        uv_close((uv_handle_t *)&l->h, free_on_close);
        return rc;
    }
    *out = l;
    return 0;
}

static int uvio_listener_addr(mesh_listener_t *l, mesh_addr_t *out)
{
    int len = sizeof(out->ss);
    memset(out, 0, sizeof(*out));
    int rc = uv_tcp_getsockname(&l->h, (struct sockaddr *)&out->ss, &len);
    out->len = (socklen_t)len;
    return rc;
}

static void uvio_listener_close(mesh_listener_t *l)
{
    uv_close((uv_handle_t *)&l->h, free_on_close);
}

static void on_connect(uv_connect_t *req, int status)
{
    mesh_stream_t *s = req->data;
    if (s->closed)
        return;
    if (status == 0)
        uv_tcp_nodelay(&s->h, 1);
    s->ccb(s, status, s->carg);
}

static int uvio_connect(mesh_io_t *io, const mesh_addr_t *to, mesh_connect_cb cb, void *arg,
                        mesh_stream_t **out)
{
    uvio_t *x = (uvio_t *)io;
    mesh_stream_t *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    uv_tcp_init(&x->loop->uv, &s->h);
    s->ccb = cb;
    s->carg = arg;
    s->creq.data = s;
    int rc = uv_tcp_connect(&s->creq, &s->h, (const struct sockaddr *)&to->ss, on_connect);
    if (rc != 0) {
        uv_close((uv_handle_t *)&s->h, free_on_close);
        return rc;
    }
    *out = s;
    return 0;
}

static int uvio_read_start(mesh_stream_t *s, mesh_read_cb cb, void *arg)
{
    s->cb = cb;
    s->arg = arg;
    return uv_read_start((uv_stream_t *)&s->h, stream_alloc, stream_read);
}

static void on_write(uv_write_t *req, int status)
{
    (void)status;
    free(req);
}

static int uvio_write(mesh_stream_t *s, const void *data, size_t len)
{
    if (s->closed)
        return -EPIPE;
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    int rc = uv_try_write((uv_stream_t *)&s->h, &b, 1);
    if (rc == (int)len)
        return 0;
    size_t done = rc > 0 ? (size_t)rc : 0;
    if (rc < 0 && rc != UV_EAGAIN)
        return rc;
    wreq_t *w = malloc(sizeof(*w) + len - done);
    if (!w)
        return -ENOMEM;
    memcpy(w->data, (const char *)data + done, len - done);
    b = uv_buf_init(w->data, (unsigned)(len - done));
    rc = uv_write(&w->req, (uv_stream_t *)&s->h, &b, 1, on_write);
    if (rc != 0)
        free(w);
    return rc;
}

static void uvio_stream_close(mesh_stream_t *s)
{
    if (s->closed)
        return;
    s->closed = 1;
    uv_close((uv_handle_t *)&s->h, free_on_close);
}

static const mesh_io_ops_t uvio_ops = {
    .now_ns = uvio_now,
    .udp_bind = uvio_udp_bind,
    .udp_local_addr = uvio_udp_local_addr,
    .udp_send = uvio_udp_send,
    .udp_close = uvio_udp_close,
    .listen = uvio_listen,
    .listener_addr = uvio_listener_addr,
    .listener_close = uvio_listener_close,
    .connect = uvio_connect,
    .read_start = uvio_read_start,
    .write = uvio_write,
    .stream_close = uvio_stream_close,
};

mesh_io_t *mesh_io_uv_new(mesh_loop_t *l)
{
    uvio_t *x = calloc(1, sizeof(*x));
    if (!x)
        return NULL;
    x->io.ops = &uvio_ops;
    x->loop = l;
    return &x->io;
}

void mesh_io_uv_free(mesh_io_t *io)
{
    free(io);
}
