/*
 * actors/simnet.c: the simulated network (datagrams and streams) under the virtual clock.
 *
 * Every transfer becomes an event in the simulator's timer queue at now + latency, latency
 * drawn from the simulator's PRNG, so a seed reproduces the exact arrival order. Objects are
 * never freed before the simulator (closed ones are only marked), so late events find them.
 *
 * An event is handled in two stages: the network stage (at arrival: cuts, hosts down, socket
 * lookup, the kernel's part of a handshake) and the application stage (the callback), which a
 * stalled host defers to its queue until the stall ends. Hosts, bound sockets, listeners and
 * per-direction link settings live in open-addressing hash tables, so a packet costs O(1)
 * lookups whatever the number of hosts or blocks. The fault model is in simnet.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "actors/runtime.h"
#include "actors/simnet.h"
#include "common/log.h"

#define MS                1000000ull
#define SEC               1000000000ull
#define DEFAULT_UDP_QUEUE 256
#define SYN_RETRIES       6          /* Linux tcp_syn_retries: gives up after 127 s */
#define RTO_MIN_NS        (200 * MS) /* Linux TCP_RTO_MIN */
#define RTO_MAX_NS        (120 * SEC)
#define STREAM_GIVE_UP_NS (900 * SEC) /* about tcp_retries2 = 15 */
#define FNV_OFFSET        0xcbf29ce484222325ull
#define FNV_PRIME         0x100000001b3ull
#define DEFAULT_TAIL_CAP  (1 * SEC)
#define DEFAULT_REORDER   (10 * MS)

/* ---------------------------------------------------------------------------------------- */
/* Hash tables: uint64 key -> non-NULL pointer, linear probing, backward-shift deletion      */
/* ---------------------------------------------------------------------------------------- */

typedef struct map {
    uint64_t *keys;
    void **vals; /* NULL = empty slot */
    size_t cap, len;
} map_t;

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static void *map_get(const map_t *m, uint64_t key, uint64_t *probes)
{
    if (!m->len)
        return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = mix(key) & mask;; i = (i + 1) & mask) {
        (*probes)++;
        if (!m->vals[i])
            return NULL;
        if (m->keys[i] == key)
            return m->vals[i];
    }
}

static void map_place(map_t *m, uint64_t key, void *val)
{
    size_t mask = m->cap - 1, i = mix(key) & mask;
    while (m->vals[i] && m->keys[i] != key)
        i = (i + 1) & mask;
    if (!m->vals[i])
        m->len++;
    m->keys[i] = key;
    m->vals[i] = val;
}

static int map_put(map_t *m, uint64_t key, void *val)
{
    if ((m->len + 1) * 2 > m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 64;
        map_t g = {calloc(nc, sizeof(uint64_t)), calloc(nc, sizeof(void *)), nc, 0};
        if (!g.keys || !g.vals) {
            free(g.keys);
            free(g.vals);
            return -ENOMEM;
        }
        for (size_t i = 0; i < m->cap; i++)
            if (m->vals[i])
                map_place(&g, m->keys[i], m->vals[i]);
        free(m->keys);
        free(m->vals);
        *m = g;
    }
    map_place(m, key, val);
    return 0;
}

static void map_del(map_t *m, uint64_t key)
{
    if (!m->len)
        return;
    size_t mask = m->cap - 1, i = mix(key) & mask;
    while (m->vals[i] && m->keys[i] != key)
        i = (i + 1) & mask;
    if (!m->vals[i])
        return;
    m->vals[i] = NULL;
    m->len--;
    /* Shift back the entries after the hole that would no longer be found from their home. */
    for (size_t j = (i + 1) & mask; m->vals[j]; j = (j + 1) & mask) {
        size_t home = mix(m->keys[j]) & mask;
        int stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (stays)
            continue;
        m->keys[i] = m->keys[j];
        m->vals[i] = m->vals[j];
        m->vals[j] = NULL;
        i = j;
    }
}

static void map_free(map_t *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof(*m));
}

/* ---------------------------------------------------------------------------------------- */
/* Objects                                                                                  */
/* ---------------------------------------------------------------------------------------- */

typedef struct chunk {
    struct chunk *next;
    ssize_t len; /* < 0: EOF (-1) or an error */
    unsigned char data[];
} chunk_t;

typedef struct simev simev_t;

typedef struct simhost {
    mesh_io_t io;       /* first member */
    mesh_sim_host_t rt; /* stall state, parked actors, held timers */
    mesh_simnet_t *net;
    uint32_t ip; /* network order */
    int group;
    int down;
    uint64_t clog_in, clog_out;       /* clogged until (virtual ns), per direction */
    simev_t *defer_head, *defer_tail; /* application events held back by a stall */
    struct simhost *next;
    /* Its sockets: touched by its own logical process only (see "Logical processes"). */
    map_t udp_map; /* ip << 16 | port -> live mesh_udp */
    map_t lis_map; /* ip << 16 | port -> live listener */
    struct mesh_udp *udps;
    struct mesh_listener *listeners;
    struct mesh_stream *streams;
    uint16_t next_port; /* logical-process mode: its ephemeral ports */
} simhost_t;

/* One direction between two hosts: a one-way block and overrides of the global settings. */
typedef struct link {
    int blocked;
    int has_loss, has_dup, has_lat;
    double loss, dup;
    mesh_simnet_latency_t lat; /* defaults filled in */
} link_t;

struct mesh_udp {
    simhost_t *host;
    mesh_addr_t addr;
    mesh_udp_recv_cb cb;
    void *arg;
    int closed;
    uint32_t queued; /* datagrams waiting for a stall of the host to end */
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

struct mesh_stream {
    simhost_t *host;
    mesh_addr_t local, remote;
    struct mesh_stream *peer;
    mesh_read_cb cb;
    void *arg;
    mesh_connect_cb ccb;
    void *carg;
    int closed, connected, reset;
    int killed;       /* closed by its host going down: data to it is answered by a reset */
    int flush_queued; /* an EV_FLUSH for it is scheduled or deferred */
    int retx_queued;  /* an EV_RETX for it is scheduled */
    uint64_t last_delivery;
    chunk_t *pend_head, *pend_tail; /* arrived, not yet given to cb */
    chunk_t *held_head, *held_tail; /* held back by a silent cut, retransmitted later */
    uint64_t held_since, rto;
    uint64_t syn_t0; /* when connect was called */
    int syn_tries;
    struct mesh_stream *next;
};

/* An event of the network. A datagram's ends are kept as socket keys (ip << 16 | port: a
 * mesh_addr_t is 132 bytes) and its bytes in the same allocation, after the event (see
 * dgram_new): one allocation of about 100 bytes plus the payload per datagram, where two, the
 * first of 330 zeroed bytes, were; a datagram is the simulator's commonest event. */
struct simev {
    struct simev *next; /* in a host's deferred queue */
    mesh_simnet_t *net;
    simhost_t *dst;      /* the host whose logical process handles it */
    mesh_stream_t *peer; /* EV_SYNACK (logical-process mode): the accepted end */
    int kind;
    int status;
    int clogged;       /* counted once in stats.clogged */
    uint64_t from, to; /* a datagram's ends, as sock_key */
    struct mesh_udp *udp;
    mesh_stream_t *stream;
    mesh_listener_t *listener;
    chunk_t *chunk; /* a datagram's: inline (ev + 1), freed with the event */
};

enum {
    /* network stage */
    EV_DGRAM,   /* a datagram arrives at to */
    EV_SYN,     /* a connect's SYN arrives at the listener's host */
    EV_DATA,    /* a stream chunk arrives at stream */
    EV_RETX,    /* retransmission of stream's held chunks */
    EV_RST,     /* a reset arrives at stream */
    EV_SYNACK,  /* the handshake's answer arrives at the connecting host */
    EV_CONNERR, /* a connect fails with status (refused or timed out) */
    EV_FAIL,    /* logical-process mode: stream fails with status (its peer's kernel decided) */
    /* application stage (deferred while the host stalls) */
    EV_RECV,     /* udp's callback gets the datagram */
    EV_ACCEPTED, /* listener's callback gets stream */
    EV_CONNECTED,
    EV_CONNFAIL,
    EV_FLUSH, /* stream's pending chunks go to its callback */
};

/* Verdicts folded into the trace. */
enum {
    V_DELIVER,
    V_LOST,
    V_BLOCKED,
    V_PARTITIONED,
    V_DOWN,
    V_OVERFLOW,
    V_UNREACHABLE,
    V_HELD,
    V_DUPLICATED, /* len: the copy's length */
    V_REORDERED,  /* len: the extra delay */
    V_CLOGGED,    /* len: the end of the clog */
};

struct mesh_simnet {
    mesh_exec_t *sim;
    mesh_simnet_opts_t opts;
    mesh_simnet_latency_t glat; /* the global latency distribution, defaults filled in */
    simhost_t *hosts, *def;
    map_t host_map;    /* ip -> simhost_t */
    map_t link_map;    /* from ip << 32 | to ip -> link_t */
    size_t nblocked;   /* links with blocked set: skip the link lookup when none */
    size_t nloss;      /* links with a loss override */
    size_t ndup;       /* links with a duplication override */
    size_t nlat;       /* links with a latency override */
    uint64_t clog_end; /* the latest end of any clog: no host is clogged from then on */
    int ngrouped;      /* hosts outside group 0 (a partition is in place) */
    uint16_t next_port;
    int lp_mode;                 /* the simulator runs logical processes */
    int nstats;                  /* one per process, then the serial queue's */
    mesh_simnet_stats_t *lstats; /* summed (traces folded in order) by mesh_simnet_stats */
};

/* The counters of the calling logical process (the serial queue's at a boundary). */
static inline mesh_simnet_stats_t *st(mesh_simnet_t *n)
{
    mesh_loop_t *c = mesh_sim_cur(n->sim);
    return &n->lstats[c ? c->index : n->nstats - 1];
}

/* The calling process's clock. */
static inline uint64_t now_of(mesh_simnet_t *n)
{
    return mesh_sim_now(n->sim);
}

static const mesh_io_ops_t simnet_ops;

/* ---------------------------------------------------------------------------------------- */
/* Helpers                                                                                  */
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

static uint64_t sock_key(const mesh_addr_t *a)
{
    return (uint64_t)addr_ip(a) << 16 | addr_port(a);
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

static void fnv(uint64_t *h, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        *h ^= (v >> (8 * i)) & 0xFFu;
        *h *= FNV_PRIME;
    }
}

/* Folds one network decision into the trace; the ends as sock_key (0: none). */
static void note_k(mesh_simnet_t *n, int kind, int verdict, uint64_t from, uint64_t to, int64_t len)
{
    uint64_t *h = &st(n)->trace;
    fnv(h, now_of(n));
    fnv(h, (uint64_t)kind << 8 | (uint64_t)verdict);
    fnv(h, from);
    fnv(h, to);
    fnv(h, (uint64_t)len);
}

/* Folds one network decision into the trace. */
static void note(mesh_simnet_t *n, int kind, int verdict, const mesh_addr_t *from,
                 const mesh_addr_t *to, int64_t len)
{
    note_k(n, kind, verdict, from ? sock_key(from) : 0, to ? sock_key(to) : 0, len);
}

/* The ip (network order) of a sock_key. */
static uint32_t key_ip(uint64_t key)
{
    return (uint32_t)(key >> 16);
}

static simhost_t *host_get(mesh_simnet_t *n, uint32_t ip)
{
    return map_get(&n->host_map, ip, &st(n)->probes);
}

static link_t *link_get(mesh_simnet_t *n, uint32_t from, uint32_t to)
{
    return map_get(&n->link_map, (uint64_t)from << 32 | to, &st(n)->probes);
}

/* Whether traffic from host a (ip from) to ip to is cut: 0, V_PARTITIONED or V_BLOCKED. */
static int cut(mesh_simnet_t *n, simhost_t *a, uint32_t from, uint32_t to)
{
    if (n->ngrouped) {
        simhost_t *b = host_get(n, to);
        if ((a ? a->group : 0) != (b ? b->group : 0))
            return V_PARTITIONED;
    }
    if (n->nblocked) {
        link_t *l = link_get(n, from, to);
        if (l && l->blocked)
            return V_BLOCKED;
    }
    return 0;
}

static void count_cut(mesh_simnet_t *n, int verdict)
{
    if (verdict == V_PARTITIONED)
        st(n)->partitioned++;
    else
        st(n)->blocked++;
}

/* A uniform draw in [0, 1). */
static double unit(mesh_simnet_t *n)
{
    return (double)(mesh_sim_random(n->sim) >> 11) * 0x1.0p-53;
}

/* One draw from a latency distribution (see simnet.h). The uniform one draws exactly what the
 * simulator always drew, so traces without long tails are unchanged. */
static uint64_t draw(mesh_simnet_t *n, const mesh_simnet_latency_t *l)
{
    double x;
    switch (l->dist) {
    case MESH_SIMNET_PARETO: /* Lomax: inverse of the CDF 1 - (1 + x/scale)^-alpha */
        x = (double)l->spread_ns * (pow(1.0 - unit(n), -1.0 / l->shape) - 1.0);
        break;
    case MESH_SIMNET_LOGNORMAL: { /* Box-Muller for Z */
        double u1 = 1.0 - unit(n), u2 = unit(n);
        double z = sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
        x = (double)l->spread_ns * exp(l->shape * z);
        break;
    }
    default:
        return l->min_ns + (l->spread_ns ? mesh_sim_random(n->sim) % l->spread_ns : 0);
    }
    if (!(x < (double)l->cap_ns)) /* also NaN */
        x = (double)l->cap_ns;
    return l->min_ns + (uint64_t)x;
}

/* The global latency: control packets (resets, refusals, retries of a refused connect). */
static uint64_t latency(mesh_simnet_t *n)
{
    return draw(n, &n->glat);
}

/* The latency from ip from to ip to (its override or the global distribution); l is the
 * direction's settings when the caller has looked them up already. */
static uint64_t path_latency_l(mesh_simnet_t *n, const link_t *l)
{
    return draw(n, l && l->has_lat ? &l->lat : &n->glat);
}

static uint64_t path_latency(mesh_simnet_t *n, uint32_t from, uint32_t to)
{
    return path_latency_l(n, n->nlat ? link_get(n, from, to) : NULL);
}

/* Until when traffic from host a to host b waits in a clog: 0 when it does not. */
static uint64_t clogged_until(mesh_simnet_t *n, const simhost_t *a, const simhost_t *b)
{
    uint64_t now = now_of(n), until = 0;
    if (now >= n->clog_end)
        return 0;
    if (a && a->clog_out > now)
        until = a->clog_out;
    if (b && b->clog_in > now && b->clog_in > until)
        until = b->clog_in;
    return until;
}

static int stalled(const simhost_t *h)
{
    return h->rt.state != MESH_HOST_RUNNING;
}

static void ev_fire(void *arg);

/* Puts ev on the timer queue of its host's logical process (ev->dst) at at. Events still
 * scheduled when the simulator ends are freed through mesh_sim_drop_calls. 0 or -ENOMEM. */
static int ev_schedule(mesh_simnet_t *n, simev_t *ev, uint64_t at)
{
    if (mesh_sim_call_at_lp(n->sim, ev->dst->rt.lp, at, ev_fire, ev) < 0)
        return -ENOMEM;
    return 0;
}

static simev_t *ev_new(mesh_simnet_t *n, int kind, uint64_t at, simhost_t *dst)
{
    simev_t *ev = calloc(1, sizeof(*ev));
    if (!ev)
        return NULL;
    ev->net = n;
    ev->kind = kind;
    ev->dst = dst;
    if (ev_schedule(n, ev, at) < 0) {
        free(ev);
        return NULL;
    }
    return ev;
}

/* The host a connect's SYN goes to: the listener's, or (no such host) the connecting one,
 * which finds nothing there. */
static simhost_t *syn_host(mesh_simnet_t *n, const mesh_stream_t *cl)
{
    simhost_t *h = host_get(n, addr_ip(&cl->remote));
    return h ? h : cl->host;
}

/* Schedules an event on a stream (most kinds need nothing else); status is the tries so far
 * for a SYN. */
static simev_t *ev_stream(mesh_simnet_t *n, int kind, uint64_t at, mesh_stream_t *s, int status)
{
    simev_t *ev = ev_new(n, kind, at, kind == EV_SYN ? syn_host(n, s) : s->host);
    if (ev) {
        ev->stream = s;
        ev->status = status;
    }
    return ev;
}

/* A datagram's arrival at at on host dst: the event with its bytes inline (freed with it,
 * never alone). */
static simev_t *dgram_new(mesh_simnet_t *n, uint64_t at, simhost_t *dst, const void *data,
                          size_t len)
{
    simev_t *ev = malloc(sizeof(*ev) + sizeof(chunk_t) + len);
    if (!ev)
        return NULL;
    memset(ev, 0, sizeof(*ev));
    ev->net = n;
    ev->kind = EV_DGRAM;
    ev->dst = dst;
    chunk_t *c = (chunk_t *)(ev + 1);
    c->next = NULL;
    c->len = (ssize_t)len;
    memcpy(c->data, data, len);
    ev->chunk = c;
    if (ev_schedule(n, ev, at) < 0) {
        free(ev);
        return NULL;
    }
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

static void chunks_free(chunk_t *c)
{
    while (c) {
        chunk_t *next = c->next;
        free(c);
        c = next;
    }
}

static void chunk_append(chunk_t **head, chunk_t **tail, chunk_t *c)
{
    c->next = NULL;
    if (*tail)
        (*tail)->next = c;
    else
        *head = c;
    *tail = c;
}

/* ---------------------------------------------------------------------------------------- */
/* The application stage                                                                    */
/* ---------------------------------------------------------------------------------------- */

static void app_run(mesh_simnet_t *n, simev_t *ev);

/* Runs an application event now, or queues it on its host when that host stalls. Takes ev. */
static void app_event(mesh_simnet_t *n, simhost_t *h, simev_t *ev)
{
    if (stalled(h)) {
        ev->next = NULL;
        if (h->defer_tail)
            h->defer_tail->next = ev;
        else
            h->defer_head = ev;
        h->defer_tail = ev;
        st(n)->deferred++;
        return;
    }
    app_run(n, ev);
    free(ev);
}

/* Schedules (at now) or defers a flush of a stream's pending chunks, once. */
static void flush_later(mesh_simnet_t *n, mesh_stream_t *s, int now)
{
    if (s->flush_queued || !s->cb)
        return;
    s->flush_queued = 1;
    simev_t *ev;
    if (now) {
        ev = ev_new(n, EV_FLUSH, now_of(n), s->host);
    } else {
        ev = calloc(1, sizeof(*ev));
        if (ev) {
            ev->net = n;
            ev->kind = EV_FLUSH;
        }
    }
    if (!ev) {
        s->flush_queued = 0;
        return;
    }
    ev->stream = s;
    if (!now)
        app_event(n, s->host, ev);
}

/* Hands a chunk to the stream's reader, or keeps it pending (no reader yet, earlier chunks
 * pending, or the host stalls). Takes c. */
static void stream_deliver(mesh_simnet_t *n, mesh_stream_t *s, chunk_t *c)
{
    if (s->closed) {
        free(c);
        return;
    }
    if (!s->cb || s->pend_head || stalled(s->host)) {
        chunk_append(&s->pend_head, &s->pend_tail, c);
        if (stalled(s->host))
            flush_later(n, s, 0);
        return;
    }
    s->cb(s, c->len < 0 ? NULL : c->data, c->len, s->arg); /* len < 0: an error, no bytes */
    free(c);
}

/* Ends a stream with an error (a reset or a timeout); later writes fail. */
static void stream_fail(mesh_simnet_t *n, mesh_stream_t *s, int err)
{
    if (s->reset || s->closed)
        return;
    s->reset = 1;
    st(n)->resets++;
    chunk_t *c = chunk_new(NULL, err < 0 ? err : -ECONNRESET); /* an error: no bytes */
    if (c)
        stream_deliver(n, s, c);
}

/* The peer's kernel ended stream s: at once, or (logical-process mode: s is another process's)
 * when the news arrives. */
static void peer_fail(mesh_simnet_t *n, mesh_stream_t *s, int err)
{
    if (!n->lp_mode) {
        stream_fail(n, s, err);
        return;
    }
    ev_stream(n, EV_FAIL, now_of(n) + latency(n), s, err);
}

static void app_run(mesh_simnet_t *n, simev_t *ev)
{
    switch (ev->kind) {
    case EV_RECV: {
        struct mesh_udp *u = ev->udp;
        if (ev->status) /* counted in the socket's stall queue */
            u->queued--;
        if (u->closed) {
            st(n)->unreachable++;
        } else {
            st(n)->delivered++;
            mesh_addr_t from;
            make_addr(&from, key_ip(ev->from), (uint16_t)ev->from);
            u->cb(u, &from, ev->chunk->data, (size_t)ev->chunk->len, u->arg);
        }
        ev->chunk = NULL; /* inline: freed with ev */
        break;
    }
    case EV_ACCEPTED: {
        mesh_listener_t *l = ev->listener;
        if (l->closed) {
            simnet_ops.stream_close(ev->stream);
            break;
        }
        l->cb(l, ev->stream, l->arg);
        break;
    }
    case EV_CONNECTED:
        if (!ev->stream->closed)
            ev->stream->ccb(ev->stream, 0, ev->stream->carg);
        break;
    case EV_CONNFAIL:
        if (!ev->stream->closed)
            ev->stream->ccb(ev->stream, ev->status, ev->stream->carg);
        break;
    case EV_FLUSH: {
        mesh_stream_t *s = ev->stream;
        s->flush_queued = 0;
        while (s->pend_head && !s->closed && s->cb && !stalled(s->host)) {
            chunk_t *c = s->pend_head;
            s->pend_head = c->next;
            if (!s->pend_head)
                s->pend_tail = NULL;
            s->cb(s, c->data, c->len, s->arg);
            free(c);
        }
        if (s->pend_head && !s->closed && stalled(s->host))
            flush_later(n, s, 0);
        break;
    }
    }
}

/* ---------------------------------------------------------------------------------------- */
/* The network stage                                                                        */
/* ---------------------------------------------------------------------------------------- */

/* A SYN was lost to a silent cut: the connecting kernel sends the next one (at 1, 3, 7 ... s
 * after connect) or, after SYN_RETRIES, fails the connect with -ETIMEDOUT. */
static void syn_lost(mesh_simnet_t *n, mesh_stream_t *cl)
{
    cl->syn_tries++;
    if (cl->syn_tries > SYN_RETRIES) {
        ev_stream(n, EV_CONNERR, cl->syn_t0 + ((1ull << (SYN_RETRIES + 1)) - 1) * SEC, cl,
                  -ETIMEDOUT);
        return;
    }
    uint64_t at = cl->syn_t0 + ((1ull << cl->syn_tries) - 1) * SEC;
    if (at < now_of(n))
        at = now_of(n);
    ev_stream(n, EV_SYN, at + path_latency(n, cl->host->ip, addr_ip(&cl->remote)), cl, 0);
}

/* A chunk met a silent cut: it waits in the receiver's held queue for a retransmission. */
static void hold(mesh_simnet_t *n, mesh_stream_t *to, chunk_t *c)
{
    chunk_append(&to->held_head, &to->held_tail, c);
    st(n)->held++;
    if (to->retx_queued)
        return;
    to->retx_queued = 1;
    to->held_since = now_of(n);
    to->rto = RTO_MIN_NS;
    ev_stream(n, EV_RETX, now_of(n) + to->rto, to, 0);
}

/* A chunk met a clog: it waits in the receiver's held queue, retransmitted when the clog ends
 * (a retransmission already scheduled finds the clog and waits for its end). */
static void clog_hold(mesh_simnet_t *n, mesh_stream_t *to, chunk_t *c, uint64_t until)
{
    chunk_append(&to->held_head, &to->held_tail, c);
    st(n)->clogged++;
    if (to->retx_queued)
        return;
    to->retx_queued = 1;
    to->held_since = now_of(n);
    to->rto = RTO_MIN_NS;
    ev_stream(n, EV_RETX, until, to, 0);
}

/* Logical-process mode: the SYN ev (its tries in status) was lost; the connecting kernel's next
 * one is sent from here, on the listener's process (the connect's start is all it reads). */
static void syn_lost_lp(mesh_simnet_t *n, simev_t *ev)
{
    mesh_stream_t *cl = ev->stream;
    int tries = ev->status + 1;
    if (tries > SYN_RETRIES) {
        uint64_t at = cl->syn_t0 + ((1ull << (SYN_RETRIES + 1)) - 1) * SEC;
        uint64_t soonest = now_of(n) + n->sim->lookahead;
        ev_stream(n, EV_CONNERR, at < soonest ? soonest : at, cl, -ETIMEDOUT);
        return;
    }
    uint64_t at = cl->syn_t0 + ((1ull << tries) - 1) * SEC;
    if (at < now_of(n))
        at = now_of(n);
    ev_stream(n, EV_SYN, at + path_latency(n, cl->host->ip, addr_ip(&cl->remote)), cl, tries);
}

static void on_syn(mesh_simnet_t *n, simev_t *ev)
{
    mesh_stream_t *cl = ev->stream;
    if (!n->lp_mode && cl->closed) /* LP mode: the connecting end learns it at the SYN-ACK */
        return;
    uint32_t cip = cl->host->ip, sip = addr_ip(&cl->remote);
    simhost_t *sh = host_get(n, sip);
    int v = cut(n, cl->host, cip, sip);
    if (!v) /* the SYN-ACK must come back too */
        v = cut(n, sh, sip, cip);
    if (v) {
        count_cut(n, v);
        note(n, EV_SYN, v, &cl->local, &cl->remote, 0);
        if (n->opts.cut == MESH_SIMNET_CUT_RESET)
            ev_stream(n, EV_CONNERR, now_of(n) + latency(n), cl, -ECONNREFUSED);
        else if (n->lp_mode)
            syn_lost_lp(n, ev);
        else
            syn_lost(n, cl);
        return;
    }
    uint64_t until = clogged_until(n, cl->host, sh), back = clogged_until(n, sh, cl->host);
    if (back > until)
        until = back;
    if (until) { /* the handshake waits for the clog's end; no retry is spent */
        st(n)->clogged++;
        note(n, EV_SYN, V_CLOGGED, &cl->local, &cl->remote, (int64_t)until);
        ev_stream(n, EV_SYN, until, cl, ev->status);
        return;
    }
    mesh_listener_t *l = sh ? map_get(&sh->lis_map, sock_key(&cl->remote), &st(n)->probes) : NULL;
    if (!l || (sh && sh->down)) {
        if (sh && sh->down)
            st(n)->host_down++;
        note(n, EV_SYN, sh && sh->down ? V_DOWN : V_UNREACHABLE, &cl->local, &cl->remote, 0);
        ev_stream(n, EV_CONNERR, now_of(n) + latency(n), cl, -ECONNREFUSED);
        return;
    }
    note(n, EV_SYN, V_DELIVER, &cl->local, &cl->remote, 0);
    mesh_stream_t *sv = calloc(1, sizeof(*sv));
    simev_t *acc = calloc(1, sizeof(*acc));
    if (!sv || !acc) {
        free(sv);
        free(acc);
        return;
    }
    sv->host = l->host;
    sv->local = cl->remote;
    sv->remote = cl->local;
    sv->peer = cl;
    sv->connected = 1;
    if (!n->lp_mode)
        cl->peer = sv; /* LP mode: at the SYN-ACK, on the connecting end's process */
    sv->next = l->host->streams;
    l->host->streams = sv;
    simev_t *sa = ev_stream(n, EV_SYNACK, now_of(n) + path_latency(n, sip, cip), cl, 0);
    if (sa && n->lp_mode)
        sa->peer = sv;
    acc->net = n;
    acc->kind = EV_ACCEPTED;
    acc->listener = l;
    acc->stream = sv;
    app_event(n, l->host, acc);
}

static void on_data(mesh_simnet_t *n, mesh_stream_t *to, chunk_t *c)
{
    if (to->closed) {
        /* A killed process's kernel answers with a reset; otherwise the data is dropped. */
        if (to->killed && to->peer && (n->lp_mode || !to->peer->closed))
            ev_stream(n, EV_RST, now_of(n) + latency(n), to->peer, 0);
        free(c);
        return;
    }
    mesh_stream_t *from = to->peer;
    if (to->held_head) { /* behind earlier held data */
        chunk_append(&to->held_head, &to->held_tail, c);
        if (clogged_until(n, from->host, to->host))
            st(n)->clogged++;
        else
            st(n)->held++;
        return;
    }
    int v = cut(n, from->host, from->host->ip, to->host->ip);
    uint64_t until = v ? 0 : clogged_until(n, from->host, to->host);
    note(n, EV_DATA, v ? v : until ? V_CLOGGED : V_DELIVER, &to->remote, &to->local, c->len);
    if (until) {
        clog_hold(n, to, c, until);
        return;
    }
    if (v) {
        count_cut(n, v);
        if (n->opts.cut == MESH_SIMNET_CUT_RESET) {
            free(c);
            stream_fail(n, to, -ECONNRESET);
            peer_fail(n, from, -ECONNRESET);
            return;
        }
        hold(n, to, c);
        return;
    }
    st(n)->delivered++;
    stream_deliver(n, to, c);
}

static void on_retx(mesh_simnet_t *n, mesh_stream_t *to)
{
    to->retx_queued = 0;
    if (to->closed || !to->held_head) {
        if (to->closed && to->killed && to->held_head && to->peer &&
            (n->lp_mode || !to->peer->closed))
            ev_stream(n, EV_RST, now_of(n) + latency(n), to->peer, 0);
        chunks_free(to->held_head);
        to->held_head = to->held_tail = NULL;
        return;
    }
    mesh_stream_t *from = to->peer;
    if (cut(n, from->host, from->host->ip, to->host->ip)) {
        if (now_of(n) - to->held_since >= STREAM_GIVE_UP_NS) {
            /* The writer's kernel gives up; the reader hears nothing. */
            chunks_free(to->held_head);
            to->held_head = to->held_tail = NULL;
            note(n, EV_RETX, V_LOST, &to->remote, &to->local, 0);
            peer_fail(n, from, -ETIMEDOUT);
            return;
        }
        to->rto = to->rto * 2 > RTO_MAX_NS ? RTO_MAX_NS : to->rto * 2;
        to->retx_queued = 1;
        ev_stream(n, EV_RETX, now_of(n) + to->rto, to, 0);
        return;
    }
    uint64_t until = clogged_until(n, from->host, to->host);
    if (until) {
        to->retx_queued = 1;
        ev_stream(n, EV_RETX, until, to, 0);
        return;
    }
    chunk_t *c = to->held_head;
    to->held_head = to->held_tail = NULL;
    while (c) {
        chunk_t *next = c->next;
        note(n, EV_RETX, V_DELIVER, &to->remote, &to->local, c->len);
        st(n)->delivered++;
        stream_deliver(n, to, c);
        c = next;
    }
}

static void on_dgram(mesh_simnet_t *n, simev_t *ev)
{
    simhost_t *dh = ev->dst->ip == key_ip(ev->to) ? ev->dst : NULL;
    struct mesh_udp *u = dh ? map_get(&dh->udp_map, ev->to, &st(n)->probes) : NULL;
    if (now_of(n) < n->clog_end) {
        simhost_t *src = host_get(n, key_ip(ev->from));
        simhost_t *dst = u ? u->host : host_get(n, key_ip(ev->to));
        uint64_t until = clogged_until(n, src, dst);
        if (until) { /* it waits in the network for the clog's end */
            if (!ev->clogged)
                st(n)->clogged++;
            ev->clogged = 1;
            note_k(n, EV_DGRAM, V_CLOGGED, ev->from, ev->to, (int64_t)until);
            if (ev_schedule(n, ev, until) < 0)
                free(ev);
            return;
        }
    }
    if (!u || u->host->down) {
        simhost_t *h = u ? u->host : host_get(n, key_ip(ev->to));
        int down = h && h->down;
        if (down)
            st(n)->host_down++;
        else
            st(n)->unreachable++;
        note_k(n, EV_DGRAM, down ? V_DOWN : V_UNREACHABLE, ev->from, ev->to, ev->chunk->len);
        free(ev);
        return;
    }
    uint32_t limit = n->opts.udp_queue ? n->opts.udp_queue : DEFAULT_UDP_QUEUE;
    if (stalled(u->host) && u->queued >= limit) {
        st(n)->overflow++;
        note_k(n, EV_DGRAM, V_OVERFLOW, ev->from, ev->to, ev->chunk->len);
        free(ev);
        return;
    }
    note_k(n, EV_DGRAM, V_DELIVER, ev->from, ev->to, ev->chunk->len);
    if (stalled(u->host)) {
        u->queued++;
        ev->status = 1;
    }
    ev->kind = EV_RECV;
    ev->udp = u;
    app_event(n, u->host, ev);
}

static void ev_fire(void *arg)
{
    simev_t *ev = arg;
    mesh_simnet_t *n = ev->net;
    ev->next = NULL;
    mesh_stream_t *s = ev->stream;
    switch (ev->kind) {
    case EV_DGRAM:
        on_dgram(n, ev);
        return; /* it took ev */
    case EV_SYN:
        on_syn(n, ev);
        break;
    case EV_DATA:
        on_data(n, s, ev->chunk);
        ev->chunk = NULL;
        break;
    case EV_RETX:
        on_retx(n, s);
        break;
    case EV_RST:
        if (!s->closed &&
            !cut(n, host_get(n, addr_ip(&s->remote)), addr_ip(&s->remote), s->host->ip))
            stream_fail(n, s, -ECONNRESET);
        break;
    case EV_FAIL:
        stream_fail(n, s, ev->status);
        break;
    case EV_SYNACK:
        if (ev->peer) /* logical-process mode: the accepted end is known here from now on */
            s->peer = ev->peer;
        if (n->lp_mode && s->closed && !s->reset) { /* closed while connecting: a FIN follows */
            chunk_t *c = chunk_new(NULL, -1);
            simev_t *fin = c ? ev_new(n, EV_DATA, now_of(n) + latency(n), s->peer->host) : NULL;
            if (fin) {
                fin->stream = s->peer;
                fin->chunk = c;
            } else {
                free(c);
            }
        }
        if (!s->closed) {
            s->connected = 1;
            ev->kind = EV_CONNECTED;
            app_event(n, s->host, ev);
            return;
        }
        break;
    case EV_CONNERR:
        if (!s->closed) {
            ev->kind = EV_CONNFAIL;
            app_event(n, s->host, ev);
            return;
        }
        break;
    case EV_FLUSH:
        app_event(n, s->host, ev);
        return;
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
        port = n->lp_mode ? h->next_port++ : n->next_port++;
    struct mesh_udp *u = calloc(1, sizeof(*u));
    if (!u)
        return -ENOMEM;
    u->host = h;
    make_addr(&u->addr, h->ip, port);
    uint64_t key = sock_key(&u->addr);
    if (map_get(&h->udp_map, key, &st(n)->probes)) {
        free(u);
        return -EADDRINUSE;
    }
    if (map_put(&h->udp_map, key, u) < 0) {
        free(u);
        return -ENOMEM;
    }
    u->cb = cb;
    u->arg = arg;
    u->next = h->udps;
    h->udps = u;
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
    st(n)->sent++;
    if (u->host->down) {
        st(n)->host_down++;
        note(n, EV_DGRAM, V_DOWN, &u->addr, to, (int64_t)len);
        return 0;
    }
    uint32_t dst = addr_ip(to);
    int v = cut(n, u->host, u->host->ip, dst);
    if (v) {
        count_cut(n, v);
        note(n, EV_DGRAM, v, &u->addr, to, (int64_t)len);
        return 0;
    }
    const link_t *l = n->nloss || n->ndup || n->nlat ? link_get(n, u->host->ip, dst) : NULL;
    double loss = l && l->has_loss ? l->loss : n->opts.loss;
    if (loss > 0 && unit(n) < loss) {
        st(n)->lost++;
        note(n, EV_DGRAM, V_LOST, &u->addr, to, (int64_t)len);
        return 0;
    }
    double dup = l && l->has_dup ? l->dup : n->opts.duplicate;
    int copies = 1;
    if (dup > 0 && unit(n) < dup) {
        copies = 2;
        st(n)->duplicated++;
        note(n, EV_DGRAM, V_DUPLICATED, &u->addr, to, (int64_t)len);
    }
    for (int k = 0; k < copies; k++) {
        uint64_t at = now_of(n) + path_latency_l(n, l);
        if (n->opts.reorder > 0 && unit(n) < n->opts.reorder) {
            uint64_t extra = 1 + mesh_sim_random(n->sim) % n->opts.reorder_delay_ns;
            at += extra;
            st(n)->reordered++;
            note(n, EV_DGRAM, V_REORDERED, &u->addr, to, (int64_t)extra);
        }
        simhost_t *dh = host_get(n, dst);
        simev_t *ev = dgram_new(n, at, dh ? dh : u->host, data, len);
        if (!ev)
            return -ENOMEM;
        ev->from = sock_key(&u->addr);
        ev->to = sock_key(to);
    }
    return 0;
}

static void sn_udp_close(mesh_udp_t *u)
{
    if (u->closed)
        return;
    u->closed = 1;
    map_del(&u->host->udp_map, sock_key(&u->addr));
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
    make_addr(&l->addr, h->ip, port ? port : n->lp_mode ? h->next_port++ : n->next_port++);
    uint64_t key = sock_key(&l->addr);
    if (map_get(&h->lis_map, key, &st(n)->probes)) {
        free(l);
        return -EADDRINUSE;
    }
    if (map_put(&h->lis_map, key, l) < 0) {
        free(l);
        return -ENOMEM;
    }
    l->host = h;
    l->cb = cb;
    l->arg = arg;
    l->next = h->listeners;
    h->listeners = l;
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
    if (l->closed)
        return;
    l->closed = 1;
    map_del(&l->host->lis_map, sock_key(&l->addr));
}

static int sn_connect(mesh_io_t *io, const mesh_addr_t *to, mesh_connect_cb cb, void *arg,
                      mesh_stream_t **out)
{
    simhost_t *h = (simhost_t *)io;
    mesh_simnet_t *n = h->net;
    if (h->down)
        return -ENETDOWN;
    mesh_stream_t *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->host = h;
    make_addr(&s->local, h->ip, n->lp_mode ? h->next_port++ : n->next_port++);
    s->remote = *to;
    s->ccb = cb;
    s->carg = arg;
    s->syn_t0 = now_of(n);
    s->next = h->streams;
    h->streams = s;
    if (!ev_stream(n, EV_SYN, now_of(n) + path_latency(n, h->ip, addr_ip(to)), s, 0))
        return -ENOMEM;
    *out = s;
    return 0;
}

static int sn_read_start(mesh_stream_t *s, mesh_read_cb cb, void *arg)
{
    s->cb = cb;
    s->arg = arg;
    if (s->pend_head)
        flush_later(s->host->net, s, 1);
    return 0;
}

static int sn_write(mesh_stream_t *s, const void *data, size_t len)
{
    mesh_simnet_t *n = s->host->net;
    if (s->closed || !s->connected || !s->peer || s->reset)
        return -EPIPE;
    uint64_t at = now_of(n) + path_latency(n, s->host->ip, s->peer->host->ip);
    if (at < s->last_delivery)
        at = s->last_delivery; /* a stream keeps its order */
    s->last_delivery = at;
    chunk_t *c = chunk_new(data, (ssize_t)len);
    simev_t *ev = c ? ev_new(n, EV_DATA, at, s->peer->host) : NULL;
    if (!ev) {
        free(c);
        return -ENOMEM;
    }
    st(n)->sent++;
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
    /* LP mode: the peer is another process's; its end reads a FIN it no longer wants. */
    if (s->peer && (n->lp_mode || !s->peer->closed) && !s->reset) {
        uint64_t at = now_of(n) + path_latency(n, s->host->ip, s->peer->host->ip);
        if (at < s->last_delivery)
            at = s->last_delivery;
        chunk_t *c = chunk_new(NULL, -1);
        simev_t *ev = c ? ev_new(n, EV_DATA, at, s->peer->host) : NULL;
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
/* Stalls                                                                                   */
/* ---------------------------------------------------------------------------------------- */

static void on_flush_host(void *arg);

/* The stall's end: the timers it held fire first (they are queued now, before the flush). */
static void on_resume(void *arg)
{
    simhost_t *h = arg;
    mesh_simnet_t *n = h->net;
    if (h->rt.state != MESH_HOST_STALLED || now_of(n) < h->rt.resume_at)
        return; /* extended: a later on_resume ends it */
    h->rt.state = MESH_HOST_RESUMING;
    mesh_sim_host_release_timers(n->sim, &h->rt);
    if (mesh_sim_call_at_lp(n->sim, h->rt.lp, now_of(n), on_flush_host, h) < 0)
        on_flush_host(h);
}

/* Then the queued I/O, in arrival order; the parked actors run after it. */
static void on_flush_host(void *arg)
{
    simhost_t *h = arg;
    mesh_simnet_t *n = h->net;
    if (h->rt.state != MESH_HOST_RESUMING)
        return; /* stalled again meanwhile */
    h->rt.state = MESH_HOST_RUNNING;
    mesh_sim_host_unpark(n->sim, &h->rt);
    simev_t *ev = h->defer_head;
    h->defer_head = h->defer_tail = NULL;
    while (ev) {
        simev_t *next = ev->next;
        app_event(n, h, ev); /* defers again if a callback stalled the host */
        ev = next;
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Public                                                                                   */
/* ---------------------------------------------------------------------------------------- */

mesh_simnet_t *mesh_simnet_new(mesh_exec_t *sim)
{
    mesh_simnet_t *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->sim = sim;
    n->lp_mode = sim->lp_mode;
    n->nstats = sim->nloops + 1;
    n->lstats = calloc((size_t)n->nstats, sizeof(*n->lstats));
    if (!n->lstats) {
        free(n);
        return NULL;
    }
    for (int i = 0; i < n->nstats; i++)
        n->lstats[i].trace = FNV_OFFSET;
    mesh_simnet_opts_t o = {.latency_min_ns = MS, .latency_jitter_ns = MS};
    mesh_simnet_configure(n, &o);
    n->next_port = 40000;
    n->def = (simhost_t *)mesh_simnet_host(n, "127.0.0.1");
    if (!n->def) {
        mesh_simnet_free(n);
        return NULL;
    }
    return n;
}

static void ev_free(simev_t *ev)
{
    if (ev->chunk != (chunk_t *)(ev + 1))
        free(ev->chunk);
    free(ev);
}

static void ev_drop(void *arg)
{
    ev_free(arg);
}

void mesh_simnet_free(mesh_simnet_t *n)
{
    mesh_sim_drop_calls(n->sim, ev_fire, ev_drop);
    while (n->hosts) {
        simhost_t *h = n->hosts;
        n->hosts = h->next;
        while (h->udps) {
            struct mesh_udp *u = h->udps;
            h->udps = u->next;
            free(u);
        }
        while (h->listeners) {
            mesh_listener_t *l = h->listeners;
            h->listeners = l->next;
            free(l);
        }
        while (h->streams) {
            mesh_stream_t *s = h->streams;
            h->streams = s->next;
            chunks_free(s->pend_head);
            chunks_free(s->held_head);
            free(s);
        }
        map_free(&h->udp_map);
        map_free(&h->lis_map);
        while (h->defer_head) {
            simev_t *ev = h->defer_head;
            h->defer_head = ev->next;
            ev_free(ev);
        }
        mesh_sim_host_destroy(&h->rt);
        free(h);
    }
    for (size_t i = 0; i < n->link_map.cap; i++)
        free(n->link_map.vals[i]);
    map_free(&n->host_map);
    map_free(&n->link_map);
    free(n->lstats);
    free(n);
}

static simhost_t *host_by_text(mesh_simnet_t *n, const char *ip)
{
    return ip ? (simhost_t *)mesh_simnet_host(n, ip) : NULL;
}

mesh_io_t *mesh_simnet_host(mesh_simnet_t *n, const char *ip)
{
    struct in_addr in;
    if (inet_pton(AF_INET, ip, &in) != 1)
        return NULL;
    simhost_t *h = host_get(n, in.s_addr);
    if (h)
        return &h->io;
    if (mesh_sim_cur(n->sim)) { /* the host map is read by every process within a window */
        mesh_error("simnet", "host %s created within a window", ip);
        abort();
    }
    h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->io.ops = &simnet_ops;
    h->rt.io = &h->io;
    h->net = n;
    h->ip = in.s_addr;
    h->next_port = 40000;
    if (n->lp_mode) /* round robin over the processes: the default host on process 0 */
        h->rt.lp = (int)(n->sim->next_lp++ % (uint32_t)n->sim->nloops);
    if (map_put(&n->host_map, h->ip, h) < 0) {
        free(h);
        return NULL;
    }
    h->next = n->hosts;
    n->hosts = h;
    return &h->io;
}

mesh_sim_host_t *mesh_simnet_host_rt(mesh_simnet_t *n, mesh_io_t *io)
{
    if (!io || io->ops != &simnet_ops || ((simhost_t *)io)->net != n)
        return NULL;
    return &((simhost_t *)io)->rt;
}

mesh_io_t *mesh_simnet_io(mesh_simnet_t *n)
{
    return &n->def->io;
}

static int probability(double p)
{
    return p >= 0 && p <= 1; /* also false for NaN */
}

/* Checks a distribution and fills in its defaults. 0 or -EINVAL. */
static int latency_fill(mesh_simnet_latency_t *l)
{
    if (!(l->shape >= 0))
        return -EINVAL;
    switch (l->dist) {
    case MESH_SIMNET_UNIFORM:
        break;
    case MESH_SIMNET_PARETO:
        if (l->shape == 0)
            l->shape = 1.5;
        break;
    case MESH_SIMNET_LOGNORMAL:
        if (l->shape == 0)
            l->shape = 1.0;
        break;
    default:
        return -EINVAL;
    }
    if (!l->cap_ns)
        l->cap_ns = DEFAULT_TAIL_CAP;
    return 0;
}

int mesh_simnet_configure(mesh_simnet_t *n, const mesh_simnet_opts_t *o)
{
    mesh_simnet_latency_t g = {.min_ns = o->latency_min_ns,
                               .spread_ns = o->latency_jitter_ns,
                               .dist = o->latency_dist,
                               .shape = o->latency_shape,
                               .cap_ns = o->latency_cap_ns};
    if (!probability(o->loss) || !probability(o->duplicate) || !probability(o->reorder) ||
        latency_fill(&g) < 0)
        return -EINVAL;
    n->opts = *o;
    n->glat = g;
    n->opts.latency_shape = g.shape;
    n->opts.latency_cap_ns = g.cap_ns;
    if (!n->opts.reorder_delay_ns)
        n->opts.reorder_delay_ns = DEFAULT_REORDER;
    return 0;
}

void mesh_simnet_options(const mesh_simnet_t *n, mesh_simnet_opts_t *out)
{
    *out = n->opts;
    if (!out->udp_queue)
        out->udp_queue = DEFAULT_UDP_QUEUE;
}

/* The link from -> to, created when missing. */
static link_t *link_make(mesh_simnet_t *n, uint32_t from, uint32_t to)
{
    link_t *l = link_get(n, from, to);
    if (l)
        return l;
    l = calloc(1, sizeof(*l));
    if (!l || map_put(&n->link_map, (uint64_t)from << 32 | to, l) < 0) {
        free(l);
        return NULL;
    }
    return l;
}

static int set_blocked(mesh_simnet_t *n, uint32_t from, uint32_t to, int blocked)
{
    if (!blocked) {
        link_t *l = link_get(n, from, to);
        if (l && l->blocked) {
            l->blocked = 0;
            n->nblocked--;
        }
        return 0;
    }
    link_t *l = link_make(n, from, to);
    if (!l)
        return -ENOMEM;
    if (!l->blocked) {
        l->blocked = 1;
        n->nblocked++;
    }
    return 0;
}

int mesh_simnet_block_oneway(mesh_simnet_t *n, const mesh_addr_t *from, const mesh_addr_t *to,
                             int blocked)
{
    return set_blocked(n, addr_ip(from), addr_ip(to), blocked);
}

int mesh_simnet_block(mesh_simnet_t *n, const mesh_addr_t *a, const mesh_addr_t *b, int blocked)
{
    int rc = set_blocked(n, addr_ip(a), addr_ip(b), blocked);
    return rc < 0 ? rc : set_blocked(n, addr_ip(b), addr_ip(a), blocked);
}

int mesh_simnet_link_loss(mesh_simnet_t *n, const mesh_addr_t *from, const mesh_addr_t *to,
                          double loss)
{
    if (loss > 1)
        return -EINVAL;
    uint32_t x = addr_ip(from), y = addr_ip(to);
    link_t *l = loss < 0 ? link_get(n, x, y) : link_make(n, x, y);
    if (!l)
        return loss < 0 ? 0 : -ENOMEM;
    if (loss < 0) {
        if (l->has_loss)
            n->nloss--;
        l->has_loss = 0;
        return 0;
    }
    if (!l->has_loss)
        n->nloss++;
    l->has_loss = 1;
    l->loss = loss;
    return 0;
}

int mesh_simnet_link_duplicate(mesh_simnet_t *n, const mesh_addr_t *from, const mesh_addr_t *to,
                               double p)
{
    if (p > 1 || p != p)
        return -EINVAL;
    uint32_t x = addr_ip(from), y = addr_ip(to);
    link_t *l = p < 0 ? link_get(n, x, y) : link_make(n, x, y);
    if (!l)
        return p < 0 ? 0 : -ENOMEM;
    if (p < 0) {
        if (l->has_dup)
            n->ndup--;
        l->has_dup = 0;
        return 0;
    }
    if (!l->has_dup)
        n->ndup++;
    l->has_dup = 1;
    l->dup = p;
    return 0;
}

int mesh_simnet_link_latency(mesh_simnet_t *n, const mesh_addr_t *from, const mesh_addr_t *to,
                             const mesh_simnet_latency_t *lat)
{
    uint32_t x = addr_ip(from), y = addr_ip(to);
    if (!lat) {
        link_t *l = link_get(n, x, y);
        if (l && l->has_lat) {
            l->has_lat = 0;
            n->nlat--;
        }
        return 0;
    }
    mesh_simnet_latency_t v = *lat;
    if (latency_fill(&v) < 0)
        return -EINVAL;
    link_t *l = link_make(n, x, y);
    if (!l)
        return -ENOMEM;
    if (!l->has_lat)
        n->nlat++;
    l->has_lat = 1;
    l->lat = v;
    return 0;
}

int mesh_simnet_clog(mesh_simnet_t *n, const char *ip, uint64_t duration_ns, int dirs)
{
    simhost_t *h = host_by_text(n, ip);
    if (!h || !(dirs & MESH_SIMNET_CLOG_BOTH) || (dirs & ~MESH_SIMNET_CLOG_BOTH))
        return -EINVAL;
    uint64_t until = now_of(n) + duration_ns;
    if ((dirs & MESH_SIMNET_CLOG_IN) && until > h->clog_in)
        h->clog_in = until;
    if ((dirs & MESH_SIMNET_CLOG_OUT) && until > h->clog_out)
        h->clog_out = until;
    if (until > n->clog_end)
        n->clog_end = until;
    return 0;
}

int mesh_simnet_partition(mesh_simnet_t *n, const char *const *ips, size_t count, int group)
{
    for (size_t i = 0; i < count; i++) {
        simhost_t *h = host_by_text(n, ips[i]);
        if (!h)
            return -EINVAL;
        n->ngrouped += (group != 0) - (h->group != 0);
        h->group = group;
    }
    return 0;
}

void mesh_simnet_heal(mesh_simnet_t *n)
{
    for (simhost_t *h = n->hosts; h; h = h->next)
        h->group = 0;
    n->ngrouped = 0;
    for (size_t i = 0; i < n->link_map.cap; i++) {
        link_t *l = n->link_map.vals[i];
        if (l)
            l->blocked = 0;
    }
    n->nblocked = 0;
}

int mesh_simnet_host_down(mesh_simnet_t *n, const char *ip, int down)
{
    simhost_t *h = host_by_text(n, ip);
    if (!h)
        return -EINVAL;
    if (!down || h->down) {
        h->down = down != 0;
        return 0;
    }
    h->down = 1;
    /* The process is gone: the kernel closes its sockets and resets its connections. */
    for (struct mesh_udp *u = h->udps; u; u = u->next)
        sn_udp_close(u);
    for (mesh_listener_t *l = h->listeners; l; l = l->next)
        sn_listener_close(l);
    for (mesh_stream_t *s = h->streams; s; s = s->next) {
        if (s->closed)
            continue;
        s->closed = 1;
        s->killed = 1;
        if (s->peer && !s->peer->closed && !s->reset)
            ev_stream(n, EV_RST, now_of(n) + latency(n), s->peer, 0);
    }
    return 0;
}

int mesh_simnet_stall(mesh_simnet_t *n, const char *ip, uint64_t duration_ns)
{
    simhost_t *h = host_by_text(n, ip);
    if (!h)
        return -EINVAL;
    uint64_t until = now_of(n) + duration_ns;
    if (h->rt.state == MESH_HOST_STALLED && until <= h->rt.resume_at)
        return 0;
    if (mesh_sim_call_at_lp(n->sim, h->rt.lp, until, on_resume, h) < 0)
        return -ENOMEM;
    h->rt.state = MESH_HOST_STALLED;
    h->rt.resume_at = until;
    return 0;
}

void mesh_simnet_stats(const mesh_simnet_t *n, mesh_simnet_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    uint64_t trace = FNV_OFFSET;
    for (int i = 0; i < n->nstats; i++) {
        const mesh_simnet_stats_t *s = &n->lstats[i];
        out->sent += s->sent;
        out->delivered += s->delivered;
        out->lost += s->lost;
        out->blocked += s->blocked;
        out->partitioned += s->partitioned;
        out->host_down += s->host_down;
        out->overflow += s->overflow;
        out->unreachable += s->unreachable;
        out->deferred += s->deferred;
        out->held += s->held;
        out->resets += s->resets;
        out->duplicated += s->duplicated;
        out->reordered += s->reordered;
        out->clogged += s->clogged;
        out->probes += s->probes;
        fnv(&trace, s->trace); /* the processes' chains in process order */
    }
    /* One loop: its only chain, as before logical processes existed. */
    out->trace = n->lp_mode ? trace : n->lstats[n->nstats - 1].trace;
}
