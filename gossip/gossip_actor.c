/*
 * gossip/gossip_actor.c: the gossip actor (see gossip/gossip_actor.h): the swim core driven by
 * the io seam and one timer, datagrams and stream frames sealed and opened, member changes
 * forwarded to the subscriber through an ordered outbox.
 *
 * Streams: an exchange we start (push-pull, fetch, stream ping) connects, writes one frame,
 * reads one frame back and closes; an accepted stream reads one frame, writes the swim's answer
 * and waits for the peer to close. Both give up after the swim's stream timeout, so a peer that
 * silently stopped answering costs a timer, never a hang.
 */
#include "gossip/gossip_actor.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "gossip/meta.h"

#define PENDING_SETS_MAX 64

typedef struct gstate gstate_t;

/* An exchange we started. */
typedef struct xchg {
    struct xchg *next;
    gstate_t *g;
    uint64_t tag, timer;
    mesh_stream_t *st;
    uint8_t *frame;
    size_t frame_len;
    gsp_frame_reader_t rd;
} xchg_t;

/* A stream a peer opened. */
typedef struct conn {
    struct conn *next;
    gstate_t *g;
    uint64_t timer;
    mesh_stream_t *st;
    gsp_frame_reader_t rd;
    int answered;
} conn_t;

/* A member's side of an indirect check: a connect to the instance for the asker. */
typedef struct probe {
    struct probe *next;
    gstate_t *g;
    mesh_stream_t *st;
    uint64_t timer;
    uint32_t seq;
    char to[GSP_ADDR_MAX + 1]; /* the asker's gossip address */
} probe_t;

#define PROBES_MAX 64 /* connects for others at once; more CHECKs go unanswered */

/* A message waiting for room in the subscriber's mailbox. */
typedef struct outmsg {
    struct outmsg *next;
    uint32_t type;
    void *ptr;
} outmsg_t;

struct gstate {
    mesh_actor_t *self;
    const gsp_actor_cfg_t *cfg;
    mesh_io_t *io;
    gsp_swim_t *swim;
    gsp_sealer_t *sealer;
    mesh_udp_t *udp;
    mesh_listener_t *lis;
    uint64_t timer, armed_at; /* the swim's timer (armed_at UINT64_MAX: none) */
    xchg_t *xchgs;
    conn_t *conns;
    outmsg_t *out_head, *out_tail;
    int outbox_timer;
    mesh_actor_id_t leave_asker;
    int leaving;
    uint64_t leave_timer;
    char pending_sets[PENDING_SETS_MAX][GSP_NAME_MAX + 1]; /* members with unknown sets */
    size_t n_pending_sets;
    gsp_actor_stats_t stats;
    gsp_checker_t checker; /* our indirect checks in progress */
    uint64_t check_timer;
    probe_t *probes; /* others' checks we run */
    size_t n_probes;
    gsp_decoder_t cdec;             /* CHECK and CHECK_ACK datagrams */
    gsp_inst_t insts[GSP_INST_MAX]; /* decoding a member's metadata (big: not on the stack) */
    gsp_node_attrs_t nattrs;        /* scratch: a member's attributes (its certificate set) */
    uint8_t sbuf[GSP_UDP_MAX];      /* a sealed datagram */
    uint8_t scratch[GSP_UDP_MAX];   /* an opened one */
    uint8_t *fscratch;              /* opened frames */
    size_t fscratch_cap;
};

static void glog(gstate_t *g, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void glog(gstate_t *g, int level, const char *fmt, ...)
{
    if (!mesh_log_enabled((mesh_log_level_t)level))
        return;
    va_list ap;
    va_start(ap, fmt);
    mesh_log_vwrite((mesh_log_level_t)level, mesh_name(g->self), NULL, fmt, ap);
    va_end(ap);
}

/* ---- the subscriber's outbox ------------------------------------------------------------- */

static void outbox_flush(gstate_t *g)
{
    while (g->out_head) {
        outmsg_t *o = g->out_head;
        int rc = mesh_send_ptr(g->self, g->cfg->subscriber, o->type, o->ptr, free);
        if (rc == -MESH_EFULL || rc == -MESH_EAGAIN) {
            if (!g->outbox_timer &&
                mesh_timer_start(g->self, 10 * 1000000ull, 0, GSP_MSG_OUTBOX, NULL) == 0)
                g->outbox_timer = 1;
            return;
        }
        if (rc < 0)
            free(o->ptr); /* the subscriber is gone */
        g->out_head = o->next;
        if (!g->out_head)
            g->out_tail = NULL;
        free(o);
    }
}

static void emit(gstate_t *g, uint32_t type, void *ptr)
{
    if (!ptr)
        return;
    if (!g->cfg->subscriber) {
        free(ptr);
        return;
    }
    outmsg_t *o = malloc(sizeof *o);
    if (!o) {
        free(ptr);
        glog(g, MESH_LOG_ERROR, "gossip: out of memory: a membership change was not forwarded");
        return;
    }
    *o = (outmsg_t){.type = type, .ptr = ptr};
    if (g->out_tail)
        g->out_tail->next = o;
    else
        g->out_head = o;
    g->out_tail = o;
    outbox_flush(g);
}

/* ---- swim callbacks ---------------------------------------------------------------------- */

static void kick(gstate_t *g);

/* A packet or frame refused by sealing: counted (and shown to an observer). */
static void refused(gstate_t *g, gsp_seal_err_t e)
{
    g->stats.refused[e]++;
    if (g->cfg->observe)
        g->cfg->observe(g->cfg->observe_ud, g->swim, &g->stats);
}

static int addr_of(const char *text, mesh_addr_t *out)
{
    return mesh_addr_parse(text, out);
}

static void on_send(void *ud, const char *addr, const uint8_t *data, size_t len)
{
    gstate_t *g = ud;
    mesh_addr_t to;
    size_t n;
    if (addr_of(addr, &to))
        return;
    if (gsp_seal(g->sealer, data, len, g->sbuf, sizeof g->sbuf, &n) != GSP_SEAL_OK)
        return;
    (void)mesh_udp_send(g->io, g->udp, &to, g->sbuf, n);
}

static void xchg_finish(xchg_t *x, const uint8_t *body, size_t len);

static void xchg_on_read(mesh_stream_t *st, const void *data, ssize_t len, void *arg)
{
    (void)st;
    xchg_t *x = arg;
    if (len < 0) {
        xchg_finish(x, NULL, 0);
        return;
    }
    const uint8_t *p = data, *frame;
    size_t left = (size_t)len, flen;
    int rc = gsp_frame_read(&x->rd, &p, &left, &frame, &flen);
    if (rc < 0) {
        xchg_finish(x, NULL, 0);
        return;
    }
    if (rc == 0)
        return;
    gstate_t *g = x->g;
    const uint8_t *body;
    size_t blen;
    if (g->fscratch_cap < flen) {
        uint8_t *b = realloc(g->fscratch, flen);
        if (!b) {
            xchg_finish(x, NULL, 0);
            return;
        }
        g->fscratch = b;
        g->fscratch_cap = flen;
    }
    gsp_seal_err_t e = gsp_open(g->sealer, frame, flen, g->fscratch, g->fscratch_cap, &body, &blen);
    if (e != GSP_SEAL_OK) {
        refused(g, e);
        xchg_finish(x, NULL, 0);
        return;
    }
    xchg_finish(x, body, blen);
}

static void xchg_on_connect(mesh_stream_t *st, int status, void *arg)
{
    xchg_t *x = arg;
    if (status < 0) {
        xchg_finish(x, NULL, 0); /* closes the stream */
        return;
    }
    gstate_t *g = x->g;
    if (mesh_write(g->io, st, x->frame, x->frame_len) ||
        mesh_read_start(g->io, st, xchg_on_read, x))
        xchg_finish(x, NULL, 0);
}

static void xchg_finish(xchg_t *x, const uint8_t *body, size_t len)
{
    gstate_t *g = x->g;
    for (xchg_t **pp = &g->xchgs; *pp; pp = &(*pp)->next)
        if (*pp == x) {
            *pp = x->next;
            break;
        }
    if (x->st)
        mesh_stream_close(g->io, x->st);
    mesh_timer_stop(g->self, x->timer);
    if (!body)
        g->stats.stream_failures++;
    uint64_t tag = x->tag;
    gsp_frame_reader_destroy(&x->rd);
    free(x->frame);
    free(x);
    gsp_swim_on_stream_reply(g->swim, mesh_now(g->self), tag, body, len);
    kick(g);
}

static void on_stream(void *ud, const char *addr, const uint8_t *data, size_t len, uint64_t tag)
{
    gstate_t *g = ud;
    xchg_t *x = calloc(1, sizeof *x);
    mesh_addr_t to;
    size_t cap = GSP_FRAME_HDR + gsp_seal_overhead(g->sealer) + len;
    if (!x) {
        glog(g, MESH_LOG_ERROR, "gossip: out of memory: a stream exchange was not started");
        return;
    }
    x->g = g;
    x->tag = tag;
    gsp_frame_reader_init(&x->rd, GSP_FRAME_MAX);
    x->next = g->xchgs;
    g->xchgs = x;
    g->stats.streams_out++;
    /* a failure now is answered on the timer, never from inside the swim's call */
    int ok = !addr_of(addr, &to) && (x->frame = malloc(cap)) &&
             gsp_frame_seal(g->sealer, data, len, x->frame, cap, &x->frame_len) == GSP_SEAL_OK &&
             mesh_connect(g->io, &to, xchg_on_connect, x, &x->st) == 0;
    if (!ok)
        x->st = NULL;
    mesh_timer_start(g->self, ok ? g->cfg->swim.stream_timeout_ns : 0, 0, GSP_MSG_XCHG_TIMEOUT,
                     &x->timer);
}

static gsp_member_event_t *member_event(const gsp_member_t *m, gsp_state_t prev, int joined)
{
    gsp_member_event_t *e = calloc(1, sizeof *e + m->meta_len);
    if (!e)
        return NULL;
    /* copies, not snprintf: one event per member change of every node */
    size_t nl = strnlen(m->name, sizeof e->name - 1), al = strnlen(m->addr, sizeof e->addr - 1);
    memcpy(e->name, m->name, nl);
    memcpy(e->addr, m->addr, al);
    e->state = m->state;
    e->prev = prev;
    e->incarnation = m->incarnation;
    e->meta_version = m->meta_version;
    e->since_ns = m->since_ns;
    e->joined = joined;
    e->self = m->self;
    e->declared = m->declared;
    e->meta_known = m->meta != NULL || m->meta_version == 0;
    e->meta_len = m->meta_len;
    if (m->meta_len)
        memcpy(e->meta, m->meta, m->meta_len);
    return e;
}

static void on_member(void *ud, const gsp_member_t *m, gsp_state_t prev, int joined)
{
    gstate_t *g = ud;
    if (m->state != prev || joined)
        glog(g, m->state >= GSP_ST_SUSPECT ? MESH_LOG_WARN : MESH_LOG_INFO,
             "gossip: member %s (%s) %s%s at incarnation %u", m->name, m->addr,
             joined ? "joined, " : "",
             m->state == GSP_ST_ALIVE     ? "alive"
             : m->state == GSP_ST_SUSPECT ? "suspect"
             : m->state == GSP_ST_DEAD    ? "dead"
                                          : "left",
             m->incarnation);
    emit(g, GSP_MSG_MEMBER, member_event(m, prev, joined));
    /* method sets its metadata refers to: asked for after this input (not re-entrantly) */
    if (m->meta && !m->self && g->n_pending_sets < PENDING_SETS_MAX)
        snprintf(g->pending_sets[g->n_pending_sets++], GSP_NAME_MAX + 1, "%s", m->name);
}

static void on_accused(void *ud, const char *member, uint32_t inc, const char *accuser)
{
    gstate_t *g = ud;
    gsp_accused_event_t *e = calloc(1, sizeof *e);
    if (!e)
        return;
    snprintf(e->member, sizeof e->member, "%s", member);
    snprintf(e->accuser, sizeof e->accuser, "%s", accuser);
    e->incarnation = inc;
    emit(g, GSP_MSG_ACCUSED, e);
}

static int on_method_set(void *ud, uint64_t hash, const gsp_str_t *names, size_t n)
{
    gstate_t *g = ud;
    if (gsp_meta_set_hash_strs(names, n) != hash) {
        glog(g, MESH_LOG_WARN, "gossip: a method set does not match its hash: refused");
        return -1;
    }
    size_t bytes = sizeof(gsp_set_event_t) + n * sizeof(char *);
    for (size_t i = 0; i < n; i++)
        bytes += names[i].n + 1;
    gsp_set_event_t *e = malloc(bytes);
    if (e) {
        e->hash = hash;
        e->n = n;
        char *w = (char *)(e->names + n);
        for (size_t i = 0; i < n; i++) {
            memcpy(w, names[i].p, names[i].n);
            w[names[i].n] = 0;
            e->names[i] = w;
            w += names[i].n + 1;
        }
    }
    emit(g, GSP_MSG_SET, e);
    return 0;
}

static void on_conflict(void *ud, const char *name, const char *ours, const char *theirs)
{
    gstate_t *g = ud;
    int self = !strcmp(name, g->cfg->name);
    glog(g, MESH_LOG_ERROR,
         self ? "gossip: node name %s is used by another live node at %s (we are %s): names must "
                "be unique; choose another --node, or wait until the other is declared dead"
              : "gossip: node name %s is claimed from %s and %s: ignoring the second",
         name, theirs, ours);
    gsp_conflict_event_t *e = calloc(1, sizeof *e);
    if (e) {
        snprintf(e->name, sizeof e->name, "%s", name);
        snprintf(e->ours, sizeof e->ours, "%s", ours);
        snprintf(e->theirs, sizeof e->theirs, "%s", theirs);
        e->self = self;
        e->joining = self && !gsp_swim_joined(g->swim);
    }
    emit(g, GSP_MSG_CONFLICT, e);
}

static void on_log(void *ud, int level, const char *line)
{
    glog(ud, level, "gossip: %s", line);
}

/* After every input: ask for unknown method sets (and certificate sets), re-arm the timer, tell the
 * observer. */
static void kick(gstate_t *g)
{
    uint64_t now = mesh_now(g->self);
    for (size_t i = 0; i < g->n_pending_sets; i++) {
        gsp_member_t m;
        gsp_inst_t *insts = g->insts;
        size_t n = 0;
        if (gsp_swim_find(g->swim, g->pending_sets[i], &m) || !m.meta ||
            gsp_meta_decode_node(m.meta, m.meta_len, insts, GSP_INST_MAX, &n, &g->nattrs))
            continue;
        uint64_t want[GSP_INST_MAX + 1];
        size_t k = 0, sn0;
        /* a signed record's certificate travels as a set too (gossip/cert_set.h) */
        if (g->nattrs.cset && !gsp_swim_method_set(g->swim, g->nattrs.cset, &sn0))
            want[k++] = g->nattrs.cset;
        for (size_t j = 0; j < n; j++) {
            size_t sn;
            if (insts[j].methods && !gsp_swim_method_set(g->swim, insts[j].methods, &sn))
                want[k++] = insts[j].methods;
        }
        if (k)
            gsp_swim_want_sets(g->swim, now, g->pending_sets[i], want, k);
    }
    g->n_pending_sets = 0;
    uint64_t due = gsp_swim_next_deadline(g->swim);
    if (due < g->armed_at) {
        if (g->armed_at != UINT64_MAX)
            mesh_timer_stop(g->self, g->timer);
        g->armed_at = UINT64_MAX;
        if (due != UINT64_MAX &&
            mesh_timer_start(g->self, due > now ? due - now : 0, 0, GSP_MSG_TIMER, &g->timer) == 0)
            g->armed_at = due;
    }
    if (g->leaving && g->leave_asker && gsp_swim_leave_sent(g->swim)) {
        mesh_send(g->self, g->leave_asker, GSP_MSG_LEFT, NULL, 0);
        g->leave_asker = 0;
    }
    if (g->cfg->observe)
        g->cfg->observe(g->cfg->observe_ud, g->swim, &g->stats);
}

/* ---- indirect checks (gossip/check.h) ------------------------------------------------------ */

static void check_report(gstate_t *g, const gsp_check_done_t *d)
{
    gsp_check_done_t *c = malloc(sizeof(*c));
    if (!c)
        return;
    *c = *d;
    if (mesh_send_ptr(g->self, (mesh_actor_id_t)d->asker, GSP_MSG_CHECK_DONE, c, free) != 0)
        free(c);
}

static void check_arm(gstate_t *g)
{
    uint64_t d = gsp_checker_next_deadline(&g->checker), now = mesh_now(g->self);
    if (g->check_timer)
        mesh_timer_stop(g->self, g->check_timer);
    g->check_timer = 0;
    if (d != UINT64_MAX)
        mesh_timer_start(g->self, d > now ? d - now : 0, 0, GSP_MSG_CHECK_TICK, &g->check_timer);
}

static void check_expire(gstate_t *g)
{
    gsp_check_done_t d;
    while (gsp_checker_expire(&g->checker, mesh_now(g->self), &d))
        check_report(g, &d);
    check_arm(g);
}

/* A local actor asks: CHECK to up to k live members (not us), from a random start. */
static void check_ask(gstate_t *g, const gsp_check_req_t *req)
{
    size_t n = gsp_swim_count(g->swim), sent = 0;
    size_t start = n ? (size_t)(mesh_random(g->self) % n) : 0;
    const char *targets[16];
    char addrs[16][GSP_ADDR_MAX + 1];
    uint32_t k = req->k < 16 ? req->k : 16;
    for (size_t j = 0; j < n && sent < k; j++) {
        gsp_member_t m;
        if (gsp_swim_member(g->swim, (start + j) % n, &m) != 0 || m.self || m.state != GSP_ST_ALIVE)
            continue;
        snprintf(addrs[sent], sizeof(addrs[sent]), "%s", m.addr);
        targets[sent] = addrs[sent];
        sent++;
    }
    uint32_t seq = gsp_checker_begin(&g->checker, mesh_now(g->self), req->reply_to, req->tag,
                                     (uint32_t)sent, req->timeout_ms);
    if (seq == 0) {
        gsp_check_done_t d = {.asker = req->reply_to, .tag = req->tag};
        check_report(g, &d);
        return;
    }
    const char *me = g->cfg->name;
    gsp_check_t c = {.seq = seq,
                     .addr = {req->addr, (uint32_t)strlen(req->addr)},
                     .timeout_ms = req->timeout_ms,
                     .from = {me, (uint32_t)strlen(me)}};
    uint8_t buf[GSP_UDP_MAX];
    gsp_enc_t e;
    gsp_enc_init(&e, buf, sizeof(buf) - gsp_seal_overhead(g->sealer));
    if (gsp_enc_check(&e, &c) == 0) {
        size_t len = gsp_enc_finish(&e);
        for (size_t j = 0; j < sent; j++)
            on_send(g, targets[j], buf, len);
    }
    glog(g, MESH_LOG_DEBUG, "gossip: indirect check of %s: asked %zu member(s)", req->addr, sent);
    check_expire(g); /* asked nobody: answered at once */
}

static void probe_finish(probe_t *p, int reached)
{
    gstate_t *g = p->g;
    for (probe_t **pp = &g->probes; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    g->n_probes--;
    if (p->st)
        mesh_stream_close(g->io, p->st);
    if (p->timer)
        mesh_timer_stop(g->self, p->timer);
    const char *me = g->cfg->name;
    gsp_check_ack_t a = {
        .seq = p->seq, .reached = (uint8_t)reached, .from = {me, (uint32_t)strlen(me)}};
    uint8_t buf[GSP_UDP_MAX];
    gsp_enc_t e;
    gsp_enc_init(&e, buf, sizeof(buf) - gsp_seal_overhead(g->sealer));
    if (gsp_enc_check_ack(&e, &a) == 0)
        on_send(g, p->to, buf, gsp_enc_finish(&e));
    free(p);
}

static void probe_on_connect(mesh_stream_t *st, int status, void *arg)
{
    (void)st;
    probe_finish(arg, status == 0);
}

/* A member asks us: connect to the instance, answer with CHECK_ACK. */
static void probe_start(gstate_t *g, const char *from, const gsp_check_t *c)
{
    char addr[GSP_ADDR_MAX + 1];
    mesh_addr_t to;
    snprintf(addr, sizeof(addr), "%.*s", (int)c->addr.n, c->addr.p);
    probe_t *p = g->n_probes < PROBES_MAX ? calloc(1, sizeof(*p)) : NULL;
    if (!p)
        return; /* unanswered: the asker counts it as not reached */
    p->g = g;
    p->seq = c->seq;
    snprintf(p->to, sizeof(p->to), "%s", from);
    p->next = g->probes;
    g->probes = p;
    g->n_probes++;
    uint32_t ms =
        c->timeout_ms < GSP_CHECK_TIMEOUT_MAX_MS ? c->timeout_ms : GSP_CHECK_TIMEOUT_MAX_MS;
    if (addr_of(addr, &to) != 0 || mesh_connect(g->io, &to, probe_on_connect, p, &p->st) != 0) {
        p->st = NULL;
        probe_finish(p, 0);
        return;
    }
    mesh_timer_start(g->self, (uint64_t)ms * 1000000ull, 0, GSP_MSG_PROBE_TIMEOUT, &p->timer);
}

/* A datagram whose first message is CHECK or CHECK_ACK: handled here, never by the swim.
 * Returns 0 when it is another kind of datagram. */
static int check_dgram(gstate_t *g, const char *from, const uint8_t *body, size_t len)
{
    gsp_decoder_t *d = &g->cdec;
    gsp_msg_t m;
    if (gsp_dec_init(d, body, len) != GSP_WIRE_OK ||
        gsp_dec_next(d, &m, NULL, NULL) != GSP_WIRE_OK ||
        (m.type != GSP_CHECK && m.type != GSP_CHECK_ACK))
        return 0;
    do {
        if (m.type == GSP_CHECK) {
            probe_start(g, from, &m.u.check);
        } else if (m.type == GSP_CHECK_ACK) {
            gsp_check_done_t done;
            if (gsp_checker_on_ack(&g->checker, &m.u.check_ack, &done)) {
                check_report(g, &done);
                check_arm(g);
            }
        }
    } while (gsp_dec_next(d, &m, NULL, NULL) == GSP_WIRE_OK);
    return 1;
}

/* ---- the sockets ------------------------------------------------------------------------- */

static void on_dgram(mesh_udp_t *sock, const mesh_addr_t *from, const void *data, size_t len,
                     void *arg)
{
    (void)sock;
    gstate_t *g = arg;
    const uint8_t *body;
    size_t blen;
    gsp_seal_err_t e = gsp_open(g->sealer, data, len, g->scratch, sizeof g->scratch, &body, &blen);
    if (e != GSP_SEAL_OK) {
        refused(g, e);
        return;
    }
    char fromtext[GSP_ADDR_MAX + 1];
    if (mesh_addr_str(from, fromtext, sizeof fromtext))
        return;
    if (check_dgram(g, fromtext, body, blen))
        return;
    gsp_swim_on_datagram(g->swim, mesh_now(g->self), fromtext, body, blen);
    kick(g);
}

static void conn_close(conn_t *c)
{
    gstate_t *g = c->g;
    for (conn_t **pp = &g->conns; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    mesh_stream_close(g->io, c->st);
    mesh_timer_stop(g->self, c->timer);
    gsp_frame_reader_destroy(&c->rd);
    free(c);
}

static void conn_on_read(mesh_stream_t *st, const void *data, ssize_t len, void *arg)
{
    (void)st;
    conn_t *c = arg;
    gstate_t *g = c->g;
    if (len < 0 || c->answered) {
        conn_close(c); /* the peer closed (after our answer), or sent more than one frame */
        return;
    }
    const uint8_t *p = data, *frame;
    size_t left = (size_t)len, flen;
    int rc = gsp_frame_read(&c->rd, &p, &left, &frame, &flen);
    if (rc < 0) {
        conn_close(c);
        return;
    }
    if (rc == 0)
        return;
    if (g->fscratch_cap < flen) {
        uint8_t *b = realloc(g->fscratch, flen);
        if (!b) {
            conn_close(c);
            return;
        }
        g->fscratch = b;
        g->fscratch_cap = flen;
    }
    const uint8_t *body;
    size_t blen;
    gsp_seal_err_t e = gsp_open(g->sealer, frame, flen, g->fscratch, g->fscratch_cap, &body, &blen);
    if (e != GSP_SEAL_OK) {
        refused(g, e);
        conn_close(c);
        return;
    }
    c->answered = 1;
    size_t rlen;
    const uint8_t *reply =
        gsp_swim_on_stream_request(g->swim, mesh_now(g->self), body, blen, &rlen);
    uint8_t *out = NULL;
    size_t cap = GSP_FRAME_HDR + gsp_seal_overhead(g->sealer) + rlen, olen;
    if (!reply || !(out = malloc(cap)) ||
        gsp_frame_seal(g->sealer, reply, rlen, out, cap, &olen) != GSP_SEAL_OK ||
        mesh_write(g->io, c->st, out, olen))
        conn_close(c);
    free(out);
    kick(g);
}

static void on_accept(mesh_listener_t *l, mesh_stream_t *st, void *arg)
{
    (void)l;
    gstate_t *g = arg;
    conn_t *c = calloc(1, sizeof *c);
    if (!c) {
        mesh_stream_close(g->io, st);
        return;
    }
    c->g = g;
    c->st = st;
    gsp_frame_reader_init(&c->rd, GSP_FRAME_MAX);
    c->next = g->conns;
    g->conns = c;
    g->stats.streams_in++;
    mesh_timer_start(g->self, g->cfg->swim.stream_timeout_ns, 0, GSP_MSG_CONN_TIMEOUT, &c->timer);
    if (mesh_read_start(g->io, st, conn_on_read, c))
        conn_close(c);
}

/* ---- the actor --------------------------------------------------------------------------- */

static int g_start(mesh_actor_t *self, void *arg)
{
    gstate_t *g = mesh_state(self);
    gsp_checker_init(&g->checker);
    const gsp_actor_cfg_t *cfg = arg;
    g->self = self;
    g->cfg = cfg;
    g->armed_at = UINT64_MAX;
    g->io = cfg->io ? cfg->io : mesh_io(self);
    mesh_addr_t bind;
    if (mesh_addr_parse(cfg->bind, &bind)) {
        glog(g, MESH_LOG_ERROR, "gossip: bind address %s is not a numeric host:port", cfg->bind);
        return -1;
    }
    g->sealer = gsp_sealer_new(cfg->ring.n ? &cfg->ring : NULL, cfg->label);
    if (!g->sealer) {
        glog(g, MESH_LOG_ERROR, "gossip: cannot set up packet sealing (label too long?)");
        return -1;
    }
    int rc = mesh_udp_bind(g->io, &bind, on_dgram, g, &g->udp);
    if (rc == 0)
        rc = mesh_listen(g->io, &bind, on_accept, g, &g->lis);
    if (rc) {
        glog(g, MESH_LOG_ERROR, "gossip: cannot listen on %s (UDP and TCP): %d", cfg->bind, rc);
        return -1;
    }
    gsp_swim_cfg_t sc = cfg->swim;
    size_t room = GSP_UDP_MAX - gsp_seal_overhead(g->sealer);
    if (sc.udp_max > room)
        sc.udp_max = room;
    gsp_swim_ops_t ops = {.send = on_send,
                          .stream = on_stream,
                          .member = on_member,
                          .method_set = on_method_set,
                          .conflict = on_conflict,
                          .log = on_log,
                          .accused = on_accused};
    const char *adv = cfg->advertise[0] ? cfg->advertise : cfg->bind;
    g->swim = gsp_swim_new(cfg->name, adv, &sc, &ops, g, cfg->seed ? cfg->seed : mesh_random(self),
                           mesh_now(self));
    if (!g->swim) {
        glog(g, MESH_LOG_ERROR, "gossip: bad gossip settings (name %s, address %s)", cfg->name,
             adv);
        return -1;
    }
    if (cfg->incarnation)
        gsp_swim_set_incarnation(g->swim, cfg->incarnation);
    if (cfg->n_seeds) {
        const char *seeds[GSP_SEEDS_MAX];
        for (size_t i = 0; i < cfg->n_seeds && i < GSP_SEEDS_MAX; i++)
            seeds[i] = cfg->seeds[i];
        gsp_swim_join(g->swim, mesh_now(self), seeds, cfg->n_seeds);
    }
    if (cfg->subscriber)
        mesh_timer_start(self, 1000000000ull, 1000000000ull, GSP_MSG_STATS_TICK, NULL);
    glog(g, MESH_LOG_INFO, "gossip: %s listening on %s (advertised %s), %s, %zu seeds", cfg->name,
         cfg->bind, adv, cfg->ring.n ? "encrypted" : "plain", cfg->n_seeds);
    kick(g);
    return 0;
}

static int g_message(mesh_actor_t *self, mesh_msg_t *m)
{
    gstate_t *g = mesh_state(self);
    uint64_t now = mesh_now(self);
    switch (m->type) {
    case GSP_MSG_TIMER:
        if (m->corr != g->timer)
            return 0;
        g->armed_at = UINT64_MAX;
        gsp_swim_on_time(g->swim, now);
        break;
    case GSP_MSG_XCHG_TIMEOUT:
        for (xchg_t *x = g->xchgs; x; x = x->next)
            if (x->timer == m->corr) {
                xchg_finish(x, NULL, 0);
                return 0;
            }
        return 0;
    case GSP_MSG_CONN_TIMEOUT:
        for (conn_t *c = g->conns; c; c = c->next)
            if (c->timer == m->corr) {
                conn_close(c);
                break;
            }
        return 0;
    case GSP_MSG_CHECK:
        if (m->ptr)
            check_ask(g, m->ptr);
        return 0;
    case GSP_MSG_CHECK_TICK:
        if (m->corr == g->check_timer) {
            g->check_timer = 0;
            check_expire(g);
        }
        return 0;
    case GSP_MSG_PROBE_TIMEOUT:
        for (probe_t *p = g->probes; p; p = p->next)
            if (p->timer == m->corr) {
                p->timer = 0;
                probe_finish(p, 0);
                break;
            }
        return 0;
    case GSP_MSG_STATS_TICK: {
        gsp_stats_event_t *e = malloc(sizeof(*e));
        if (e) {
            gsp_swim_stats(g->swim, &e->swim);
            e->actor = g->stats;
            e->awareness = gsp_swim_awareness(g->swim);
            e->incarnation = gsp_swim_incarnation(g->swim);
        }
        emit(g, GSP_MSG_STATS, e);
        return 0;
    }
    case GSP_MSG_OUTBOX:
        g->outbox_timer = 0;
        outbox_flush(g);
        return 0;
    case GSP_MSG_SET_META: {
        gsp_meta_update_t *u = m->ptr;
        if (!u)
            return 0;
        for (size_t i = 0; i < u->n_sets; i++)
            gsp_swim_add_method_set(g->swim, u->sets[i].hash, (const char *const *)u->sets[i].names,
                                    u->sets[i].n);
        if (gsp_swim_set_meta_version(g->swim, now, u->meta, u->meta_len, u->version))
            glog(g, MESH_LOG_ERROR,
                 "gossip: our instances (%zu bytes encoded, version %llu) are over the gossip "
                 "bound or below our current version: not announced",
                 u->meta_len, (unsigned long long)u->version);
        break;
    }
    case GSP_MSG_LEAVE:
        if (!g->leaving) {
            g->leaving = 1;
            gsp_swim_leave(g->swim, now);
            mesh_timer_start(self,
                             g->cfg->leave_timeout_ns ? g->cfg->leave_timeout_ns : 2000000000ull, 0,
                             GSP_MSG_LEAVE_TIMEOUT, &g->leave_timer);
        }
        g->leave_asker = m->from;
        break;
    case GSP_MSG_LEAVE_TIMEOUT:
        if (g->leave_asker) {
            mesh_send(self, g->leave_asker, GSP_MSG_LEFT, NULL, 0);
            g->leave_asker = 0;
        }
        return 0;
    default:
        return 0;
    }
    kick(g);
    return 0;
}

static void g_stop(mesh_actor_t *self, int reason)
{
    gstate_t *g = mesh_state(self);
    /* a shutdown (SIGTERM) announces the leave, so others do not wait for detection; the
     * datagrams go out at once (the io seam sends without queueing) */
    if (reason == MESH_STOP_SHUTDOWN && g->swim && !g->leaving)
        gsp_swim_leave(g->swim, mesh_now(self));
    while (g->xchgs) {
        xchg_t *x = g->xchgs;
        g->xchgs = x->next;
        if (x->st)
            mesh_stream_close(g->io, x->st);
        gsp_frame_reader_destroy(&x->rd);
        free(x->frame);
        free(x);
    }
    while (g->conns) {
        conn_t *c = g->conns;
        g->conns = c->next;
        mesh_stream_close(g->io, c->st);
        gsp_frame_reader_destroy(&c->rd);
        free(c);
    }
    while (g->probes) {
        probe_t *p = g->probes;
        g->probes = p->next;
        if (p->st)
            mesh_stream_close(g->io, p->st);
        free(p);
    }
    /* asks in progress are answered (nobody reached: the asker decides) */
    gsp_check_done_t d;
    while (gsp_checker_expire(&g->checker, UINT64_MAX, &d))
        check_report(g, &d);
    gsp_checker_destroy(&g->checker);
    while (g->out_head) {
        outmsg_t *o = g->out_head;
        g->out_head = o->next;
        free(o->ptr);
        free(o);
    }
    if (g->udp)
        mesh_udp_close(g->io, g->udp);
    if (g->lis)
        mesh_listener_close(g->io, g->lis);
    gsp_swim_free(g->swim);
    gsp_sealer_delete(g->sealer);
    free(g->fscratch);
}

void gsp_meta_update_free(void *p)
{
    gsp_meta_update_t *u = p;
    if (!u)
        return;
    for (size_t i = 0; i < u->n_sets; i++) {
        for (size_t j = 0; j < u->sets[i].n; j++)
            free(u->sets[i].names[j]);
        free(u->sets[i].names);
    }
    free(u->sets);
    free(u->meta);
    free(u);
}

void gsp_attrs_update_free(void *p)
{
    gsp_attrs_update_t *u = p;
    if (!u)
        return;
    for (size_t i = 0; i < u->n_evicted; i++) {
        free(u->evicted[i].service);
        free(u->evicted[i].addr);
    }
    free(u->evicted);
    free(u);
}

const mesh_actor_ops_t gsp_actor_ops = {.name = "gossip",
                                        .state_size = sizeof(gstate_t),
                                        .on_start = g_start,
                                        .on_message = g_message,
                                        .on_stop = g_stop};
