/*
 * actors/simnet.c: the simulated network (datagrams and streams) under the virtual clock.
 *
 * Every transfer becomes an event in the simulator's timer queue at now + latency, latency
 * drawn from the simulator's PRNG, so a seed reproduces the exact arrival order. Objects are
 * never freed before the simulator (closed ones are only marked), so late events find them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "actors/runtime.h"
#include "actors/simnet.h"

typedef struct simhost {
    mesh_io_t io; /* first member */
    mesh_simnet_t *net;
    uint32_t ip; /* network order */
    struct simhost *next;
} simhost_t;

struct mesh_udp {
    simhost_t *host;
    mesh_addr_t addr;
    mesh_udp_recv_cb cb;
    void *arg;
    int closed;
    struct mesh_udp *next;
};

struct mesh_listener {
    simhost_t *host;
    mesh_addr_t addr;
    mesh_accept_cb cb;
    void *arg;
    int closed;
    struct mesh_listener *next;
};

typedef struct chunk {
    struct chunk *next;
    ssize_t len; /* < 0: EOF / error */
    unsigned char data[];
} chunk_t;

struct mesh_stream {
    simhost_t *host;
    mesh_addr_t local, remote;
    struct mesh_stream *peer;
    mesh_read_cb cb;
    void *arg;
    mesh_connect_cb ccb;
    void *carg;
    int closed, connected, reset;
    uint64_t last_delivery;
    chunk_t *pend_head, *pend_tail; /* arrived before read_start */
    struct mesh_stream *next;
};

typedef struct simev {
    struct simev *prev, *next; /* pending list */
    mesh_simnet_t *net;
    int kind;
    mesh_addr_t from, to;
    mesh_stream_t *stream;
    mesh_listener_t *listener;
    chunk_t *chunk;
} simev_t;

enum { EV_DGRAM, EV_ACCEPT, EV_CONNECTED, EV_REFUSED, EV_DATA, EV_FLUSH };

struct mesh_simnet {
    mesh_exec_t *sim;
    mesh_simnet_opts_t opts;
    simhost_t *hosts, *def;
    uint64_t *blocked; /* (min ip << 32 | max ip) */
    size_t nblocked, cblocked;
    struct mesh_udp *udps;
    mesh_listener_t *listeners;
    mesh_stream_t *streams;
    simev_t *pending;
    uint16_t next_port;
    mesh_simnet_stats_t stats;
};

static const mesh_io_ops_t simnet_ops;

/* ---------------------------------------------------------------------------------------- */

static uint32_t addr_ip(const mesh_addr_t *a)
{
    const struct sockaddr_in *in = (const struct sockaddr_in *)&a->ss;
    return a->ss.ss_family == AF_INET ? in->sin_addr.s_addr : 0;
}

static uint16_t addr_port(const mesh_addr_t *a)
{
    return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
}

static void make_addr(mesh_addr_t *a, uint32_t ip, uint16_t port)
{
    memset(a, 0, sizeof(*a));
    struct sockaddr_in *in = (struct sockaddr_in *)&a->ss;
    in->sin_family = AF_INET;
    in->sin_addr.s_addr = ip;
    in->sin_port = htons(port);
    a->len = sizeof(*in);
}

static int is_blocked(mesh_simnet_t *n, uint32_t a, uint32_t b)
{
    uint64_t key = a < b ? ((uint64_t)a << 32 | b) : ((uint64_t)b << 32 | a);
    for (size_t i = 0; i < n->nblocked; i++)
        if (n->blocked[i] == key)
            return 1;
    return 0;
}

static uint64_t latency(mesh_simnet_t *n)
{
    uint64_t j = n->opts.latency_jitter_ns;
    return n->opts.latency_min_ns + (j ? mesh_sim_random(n->sim) % j : 0);
}

static void ev_fire(void *arg);

static simev_t *ev_new(mesh_simnet_t *n, int kind, uint64_t at)
{
    simev_t *ev = calloc(1, sizeof(*ev));
    if (!ev)
        return NULL;
    ev->net = n;
    ev->kind = kind;
    if (mesh_sim_call_at(n->sim, at, ev_fire, ev) < 0) {
        free(ev);
        return NULL;
    }
    ev->next = n->pending;
    if (n->pending)
        n->pending->prev = ev;
    n->pending = ev;
    return ev;
}

static chunk_t *chunk_new(const void *data, ssize_t len)
{
    chunk_t *c = malloc(sizeof(*c) + (len > 0 ? (size_t)len : 0));
    if (!c)
        return NULL;
    c->next = NULL;
    c->len = len;
    if (len > 0)
        memcpy(c->data, data, (size_t)len);
    return c;
}

static void stream_deliver(mesh_stream_t *s, chunk_t *c)
{
    if (s->closed) {
        free(c);
        return;
    }
    if (!s->cb) {
        if (s->pend_tail)
            s->pend_tail->next = c;
        else
            s->pend_head = c;
        s->pend_tail = c;
        return;
    }
    s->cb(s, c->data, c->len, s->arg);
    free(c);
}

static void stream_reset(mesh_stream_t *s)
{
    if (s->reset)
        return;
    s->reset = 1;
    chunk_t *c = chunk_new(NULL, -ECONNRESET);
    if (c)
        stream_deliver(s, c);
}

static void ev_fire(void *arg)
{
    simev_t *ev = arg;
    mesh_simnet_t *n = ev->net;
    if (ev->prev)
        ev->prev->next = ev->next;
    else
        n->pending = ev->next;
    if (ev->next)
        ev->next->prev = ev->prev;
    switch (ev->kind) {
    case EV_DGRAM: {
        struct mesh_udp *u = n->udps;
        while (u && (u->closed || !mesh_addr_equal(&u->addr, &ev->to)))
            u = u->next;
        if (u) {
            n->stats.delivered++;
            u->cb(u, &ev->from, ev->chunk->data, (size_t)ev->chunk->len, u->arg);
        } else {
            n->stats.lost++;
        }
        free(ev->chunk);
        break;
    }
    case EV_ACCEPT: {
        mesh_stream_t *cl = ev->stream;
        mesh_listener_t *l = n->listeners;
        while (l && (l->closed || !mesh_addr_equal(&l->addr, &cl->remote)))
            l = l->next;
        if (!l || is_blocked(n, addr_ip(&cl->local), addr_ip(&cl->remote)) || cl->closed) {
            simev_t *r = ev_new(n, EV_REFUSED, n->sim->now + latency(n));
            if (r)
                r->stream = cl;
            break;
        }
        mesh_stream_t *sv = calloc(1, sizeof(*sv));
        if (!sv)
            break;
        sv->host = l->host;
        sv->local = cl->remote;
        sv->remote = cl->local;
        sv->peer = cl;
        sv->connected = 1;
        cl->peer = sv;
        sv->next = n->streams;
        n->streams = sv;
        simev_t *c = ev_new(n, EV_CONNECTED, n->sim->now + latency(n));
        if (c)
            c->stream = cl;
        l->cb(l, sv, l->arg);
        break;
    }
    case EV_CONNECTED:
        if (!ev->stream->closed) {
            ev->stream->connected = 1;
            ev->stream->ccb(ev->stream, 0, ev->stream->carg);
        }
        break;
    case EV_REFUSED:
        if (!ev->stream->closed)
            ev->stream->ccb(ev->stream, -ECONNREFUSED, ev->stream->carg);
        break;
    case EV_DATA: {
        mesh_stream_t *to = ev->stream;
        if (to->peer && is_blocked(n, addr_ip(&to->local), addr_ip(&to->remote))) {
            free(ev->chunk);
            n->stats.blocked++;
            stream_reset(to);
            stream_reset(to->peer);
            break;
        }
        n->stats.delivered++;
        stream_deliver(to, ev->chunk);
        break;
    }
    case EV_FLUSH: {
        mesh_stream_t *s = ev->stream;
        while (s->pend_head && !s->closed && s->cb) {
            chunk_t *c = s->pend_head;
            s->pend_head = c->next;
            if (!s->pend_head)
                s->pend_tail = NULL;
            s->cb(s, c->data, c->len, s->arg);
            free(c);
        }
        break;
    }
    }
    free(ev);
}

/* ---------------------------------------------------------------------------------------- */
/* The ops                                                                                  */
/* ---------------------------------------------------------------------------------------- */

static uint64_t sn_now(mesh_io_t *io)
{
    return ((simhost_t *)io)->net->sim->now;
}

static int sn_udp_bind(mesh_io_t *io, const mesh_addr_t *a, mesh_udp_recv_cb cb, void *arg,
                       mesh_udp_t **out)
{
    simhost_t *h = (simhost_t *)io;
    mesh_simnet_t *n = h->net;
    uint16_t port = a ? addr_port(a) : 0;
    if (!port)
        port = n->next_port++;
    struct mesh_udp *u = calloc(1, sizeof(*u));
    if (!u)
        return -ENOMEM;
    u->host = h;
    make_addr(&u->addr, h->ip, port);
    for (struct mesh_udp *x = n->udps; x; x = x->next)
        if (!x->closed && mesh_addr_equal(&x->addr, &u->addr)) {
            free(u);
            return -EADDRINUSE;
        }
    u->cb = cb;
    u->arg = arg;
    u->next = n->udps;
    n->udps = u;
    *out = u;
    return 0;
}

static int sn_udp_local_addr(mesh_udp_t *u, mesh_addr_t *out)
{
    *out = u->addr;
    return 0;
}

static int sn_udp_send(mesh_udp_t *u, const mesh_addr_t *to, const void *data, size_t len)
{
    mesh_simnet_t *n = u->host->net;
    if (u->closed)
        return -EBADF;
    n->stats.sent++;
    if (is_blocked(n, u->host->ip, addr_ip(to))) {
        n->stats.blocked++;
        return 0;
    }
    if (n->opts.loss > 0 && (double)(mesh_sim_random(n->sim) >> 11) * 0x1.0p-53 < n->opts.loss) {
        n->stats.lost++;
        return 0;
    }
    chunk_t *c = chunk_new(data, (ssize_t)len);
    simev_t *ev = c ? ev_new(n, EV_DGRAM, n->sim->now + latency(n)) : NULL;
    if (!ev) {
        free(c);
        return -ENOMEM;
    }
    ev->from = u->addr;
    ev->to = *to;
    ev->chunk = c;
    return 0;
}

static void sn_udp_close(mesh_udp_t *u)
{
    u->closed = 1;
}

static int sn_listen(mesh_io_t *io, const mesh_addr_t *a, mesh_accept_cb cb, void *arg,
                     mesh_listener_t **out)
{
    simhost_t *h = (simhost_t *)io;
    mesh_simnet_t *n = h->net;
    mesh_listener_t *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    uint16_t port = a ? addr_port(a) : 0;
    make_addr(&l->addr, h->ip, port ? port : n->next_port++);
    for (mesh_listener_t *x = n->listeners; x; x = x->next)
        if (!x->closed && mesh_addr_equal(&x->addr, &l->addr)) {
            free(l);
            return -EADDRINUSE;
        }
    l->host = h;
    l->cb = cb;
    l->arg = arg;
    l->next = n->listeners;
    n->listeners = l;
    *out = l;
    return 0;
}

static int sn_listener_addr(mesh_listener_t *l, mesh_addr_t *out)
{
    *out = l->addr;
    return 0;
}

static void sn_listener_close(mesh_listener_t *l)
{
    l->closed = 1;
}

static int sn_connect(mesh_io_t *io, const mesh_addr_t *to, mesh_connect_cb cb, void *arg,
                      mesh_stream_t **out)
{
    simhost_t *h = (simhost_t *)io;
    mesh_simnet_t *n = h->net;
    mesh_stream_t *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->host = h;
    make_addr(&s->local, h->ip, n->next_port++);
    s->remote = *to;
    s->ccb = cb;
    s->carg = arg;
    s->next = n->streams;
    n->streams = s;
    simev_t *ev = ev_new(n, EV_ACCEPT, n->sim->now + latency(n));
    if (!ev)
        return -ENOMEM;
    ev->stream = s;
    *out = s;
    return 0;
}

static int sn_read_start(mesh_stream_t *s, mesh_read_cb cb, void *arg)
{
    s->cb = cb;
    s->arg = arg;
    if (s->pend_head) {
        simev_t *ev = ev_new(s->host->net, EV_FLUSH, s->host->net->sim->now);
        if (ev)
            ev->stream = s;
    }
    return 0;
}

static int sn_write(mesh_stream_t *s, const void *data, size_t len)
{
    mesh_simnet_t *n = s->host->net;
    if (s->closed || !s->connected || !s->peer || s->reset)
        return -EPIPE;
    uint64_t at = n->sim->now + latency(n);
    if (at < s->last_delivery)
        at = s->last_delivery; /* a stream keeps its order */
    s->last_delivery = at;
    chunk_t *c = chunk_new(data, (ssize_t)len);
    simev_t *ev = c ? ev_new(n, EV_DATA, at) : NULL;
    if (!ev) {
        free(c);
        return -ENOMEM;
    }
    n->stats.sent++;
    ev->stream = s->peer;
    ev->chunk = c;
    return 0;
}

static void sn_stream_close(mesh_stream_t *s)
{
    if (s->closed)
        return;
    s->closed = 1;
    mesh_simnet_t *n = s->host->net;
    if (s->peer && !s->peer->closed && !s->reset) {
        uint64_t at = n->sim->now + latency(n);
        if (at < s->last_delivery)
            at = s->last_delivery;
        chunk_t *c = chunk_new(NULL, -1);
        simev_t *ev = c ? ev_new(n, EV_DATA, at) : NULL;
        if (ev) {
            ev->stream = s->peer;
            ev->chunk = c;
        } else {
            free(c);
        }
    }
}

static const mesh_io_ops_t simnet_ops = {
    .now_ns = sn_now,
    .udp_bind = sn_udp_bind,
    .udp_local_addr = sn_udp_local_addr,
    .udp_send = sn_udp_send,
    .udp_close = sn_udp_close,
    .listen = sn_listen,
    .listener_addr = sn_listener_addr,
    .listener_close = sn_listener_close,
    .connect = sn_connect,
    .read_start = sn_read_start,
    .write = sn_write,
    .stream_close = sn_stream_close,
};

/* ---------------------------------------------------------------------------------------- */
/* Public                                                                                   */
/* ---------------------------------------------------------------------------------------- */

mesh_simnet_t *mesh_simnet_new(mesh_exec_t *sim)
{
    mesh_simnet_t *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->sim = sim;
    n->opts.latency_min_ns = 1000000;
    n->opts.latency_jitter_ns = 1000000;
    n->next_port = 40000;
    n->def = (simhost_t *)mesh_simnet_host(n, "127.0.0.1");
    if (!n->def) {
        free(n);
        return NULL;
    }
    return n;
}

void mesh_simnet_free(mesh_simnet_t *n)
{
    while (n->pending) {
        simev_t *ev = n->pending;
        n->pending = ev->next;
        free(ev->chunk);
        free(ev);
    }
    while (n->udps) {
        struct mesh_udp *u = n->udps;
        n->udps = u->next;
        free(u);
    }
    while (n->listeners) {
        mesh_listener_t *l = n->listeners;
        n->listeners = l->next;
        free(l);
    }
    while (n->streams) {
        mesh_stream_t *s = n->streams;
        n->streams = s->next;
        while (s->pend_head) {
            chunk_t *c = s->pend_head;
            s->pend_head = c->next;
            free(c);
        }
        free(s);
    }
    while (n->hosts) {
        simhost_t *h = n->hosts;
        n->hosts = h->next;
        free(h);
    }
    free(n->blocked);
    free(n);
}

mesh_io_t *mesh_simnet_host(mesh_simnet_t *n, const char *ip)
{
    struct in_addr in;
    if (inet_pton(AF_INET, ip, &in) != 1)
        return NULL;
    for (simhost_t *h = n->hosts; h; h = h->next)
        if (h->ip == in.s_addr)
            return &h->io;
    simhost_t *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->io.ops = &simnet_ops;
    h->net = n;
    h->ip = in.s_addr;
    h->next = n->hosts;
    n->hosts = h;
    return &h->io;
}

mesh_io_t *mesh_simnet_io(mesh_simnet_t *n)
{
    return &n->def->io;
}

void mesh_simnet_configure(mesh_simnet_t *n, const mesh_simnet_opts_t *o)
{
    n->opts = *o;
}

int mesh_simnet_block(mesh_simnet_t *n, const mesh_addr_t *a, const mesh_addr_t *b, int blocked)
{
    uint32_t x = addr_ip(a), y = addr_ip(b);
    uint64_t key = x < y ? ((uint64_t)x << 32 | y) : ((uint64_t)y << 32 | x);
    for (size_t i = 0; i < n->nblocked; i++) {
        if (n->blocked[i] == key) {
            if (!blocked)
                n->blocked[i] = n->blocked[--n->nblocked];
            return 0;
        }
    }
    if (!blocked)
        return 0;
    if (n->nblocked == n->cblocked) {
        size_t nc = n->cblocked ? n->cblocked * 2 : 16;
        uint64_t *b2 = realloc(n->blocked, nc * sizeof(*b2));
        if (!b2)
            return -1;
        n->blocked = b2;
        n->cblocked = nc;
    }
    n->blocked[n->nblocked++] = key;
    return 0;
}

void mesh_simnet_heal(mesh_simnet_t *n)
{
    n->nblocked = 0;
}

void mesh_simnet_stats(const mesh_simnet_t *n, mesh_simnet_stats_t *out)
{
    *out = n->stats;
}
