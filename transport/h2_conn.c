/*
 * transport/h2_conn.c: an nghttp2 session on a libuv TCP handle: shared-buffer reads,
 * batched gather writes with lent DATA payloads (uv_try_write first, uv_write for the
 * remainder), per-loop-turn write coalescing, keepalive PINGs, liveness PINGs when calls wait
 * on a silent peer, deferred close.
 */
#include "transport/h2_conn.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/log.h"
#include "transport/tls.h"

/* Stop adding to a batch beyond this many bytes. */
#define BATCH_MAX_BYTES (256u * 1024)

static void do_close(mesh_h2_conn_t *c);
static void suspect_sync(mesh_h2_conn_t *c);
static void flush_now(mesh_h2_conn_t *c);

/* ---- flusher -------------------------------------------------------------------------------- */

static void dirty_remove(mesh_h2_conn_t *c)
{
    if (!c->dirty_pprev)
        return;
    *c->dirty_pprev = c->dirty_next;
    if (c->dirty_next)
        c->dirty_next->dirty_pprev = c->dirty_pprev;
    c->dirty_next = NULL;
    c->dirty_pprev = NULL;
}

static void dirty_push(mesh_h2_flusher_t *f, mesh_h2_conn_t *c)
{
    if (c->dirty_pprev)
        return;
    c->dirty_next = f->dirty;
    if (f->dirty)
        f->dirty->dirty_pprev = &c->dirty_next;
    f->dirty = c;
    c->dirty_pprev = &f->dirty;
}

/* Flushes every queued connection; flushing one may queue others (or itself) again. */
static void flusher_run(mesh_h2_flusher_t *f)
{
    while (f->dirty) {
        mesh_h2_conn_t *c = f->dirty;
        dirty_remove(c);
        flush_now(c);
    }
}

static void on_flusher_idle(uv_idle_t *h)
{
    (void)h; /* only there to make the next poll non-blocking */
}

static void on_flusher_check(uv_check_t *h)
{
    mesh_h2_flusher_t *f = h->data;
    f->now_ns = 0;
    if (f->held) {
        f->held = 0;
        uv_idle_stop(&f->idle);
    } else if (f->dirty && !f->closed) {
        f->held = 1; /* one more (non-blocking) poll first */
        uv_idle_start(&f->idle, on_flusher_idle);
        return;
    }
    flusher_run(f);
}

static void on_flusher_prepare(uv_prepare_t *h)
{
    mesh_h2_flusher_t *f = h->data;
    f->now_ns = 0;
    if (!f->held) /* (held: the poll right after this does not block) */
        flusher_run(f);
}

int mesh_h2_flusher_init(mesh_h2_flusher_t *f, uv_loop_t *loop)
{
    memset(f, 0, sizeof(*f));
    /* Neither init can fail in libuv (both only link the handle into the loop). */
    int rv = uv_prepare_init(loop, &f->prepare);
    if (rv == 0)
        rv = uv_check_init(loop, &f->check);
    if (rv == 0)
        rv = uv_idle_init(loop, &f->idle);
    if (rv < 0)
        return rv;
    f->prepare.data = f;
    f->check.data = f;
    f->idle.data = f;
    uv_prepare_start(&f->prepare, on_flusher_prepare);
    uv_check_start(&f->check, on_flusher_check);
    uv_unref((uv_handle_t *)&f->prepare);
    uv_unref((uv_handle_t *)&f->check);
    uv_unref((uv_handle_t *)&f->idle);
    return 0;
}

void mesh_h2_flusher_close(mesh_h2_flusher_t *f, uv_close_cb cb)
{
    if (f->closed)
        return;
    f->closed = 1;
    f->held = 0;
    flusher_run(f);
    uv_close((uv_handle_t *)&f->prepare, cb);
    uv_close((uv_handle_t *)&f->check, cb);
    uv_close((uv_handle_t *)&f->idle, cb);
}

void mesh_h2_conn_set_flusher(mesh_h2_conn_t *c, mesh_h2_flusher_t *f)
{
    c->flusher = f;
}

/* ---- connection ----------------------------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *h)
{
    mesh_h2_conn_t *c = h->data;
    if (--c->handles_open == 0) {
        free(c->bytes);
        c->bytes = NULL;
        if (c->tls) {
            mesh_tls_destroy(c->tls);
            free(c->tls);
            c->tls = NULL;
        }
        c->ops->on_closed(c);
    }
}

int mesh_h2_conn_init(mesh_h2_conn_t *c, uv_loop_t *loop, const mesh_h2_conn_ops_t *ops,
                      uint8_t *rbuf, size_t rbuf_len, const char *name)
{
    memset(c, 0, sizeof(*c));
    c->ops = ops;
    c->rbuf = rbuf;
    c->rbuf_len = rbuf_len;
    c->name = name;
    int rv = uv_tcp_init(loop, &c->tcp);
    if (rv < 0)
        return rv;
    c->tcp.data = c;
    c->handles_open = 1;
    rv = uv_timer_init(loop, &c->timer);
    if (rv < 0)
        return rv;
    c->timer.data = c;
    c->handles_open = 2;
    return 0;
}

void mesh_h2_conn_set_session(mesh_h2_conn_t *c, nghttp2_session *s)
{
    c->session = s;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    mesh_h2_conn_t *c = h->data;
    buf->base = (char *)c->rbuf;
    buf->len = c->rbuf_len;
}

/* Runs the deferred work once the outermost nghttp2 call on this session returned. */
static void settle(mesh_h2_conn_t *c)
{
    if (c->depth > 0)
        return;
    if (c->want_close) {
        do_close(c);
        return;
    }
    if (c->want_flush)
        mesh_h2_conn_flush(c);
}

int mesh_h2_conn_feed(mesh_h2_conn_t *c, const uint8_t *data, size_t len)
{
    if (c->closing || c->want_close)
        return -1;
    c->depth++;
    ssize_t rv = nghttp2_session_mem_recv(c->session, data, len);
    c->depth--;
    if (rv < 0) {
        mesh_debug("h2", "%s: bad input: %s", c->name, nghttp2_strerror((int)rv));
        c->want_close = 1;
        settle(c);
        return -1;
    }
    c->want_flush = 1;
    settle(c);
    return 0;
}

static void tls_on_read(mesh_h2_conn_t *c, const uint8_t *p, size_t n);

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    mesh_h2_conn_t *c = s->data;
    if (nread < 0) {
        if (nread != UV_EOF)
            mesh_debug("h2", "%s: read: %s", c->name, uv_strerror((int)nread));
        mesh_h2_conn_close(c);
        return;
    }
    if (nread > 0) {
        mesh_h2_live_rx(&c->live, uv_now(c->tcp.loop));
        if (c->suspect)
            suspect_sync(c); /* it spoke: not suspect any more */
        if (c->tls)
            tls_on_read(c, (const uint8_t *)buf->base, (size_t)nread);
        else
            mesh_h2_conn_feed(c, (const uint8_t *)buf->base, (size_t)nread);
    }
}

int mesh_h2_conn_start(mesh_h2_conn_t *c)
{
    if (c->tls && !c->tls->ctx->server && mesh_tls_handshake(c->tls) == MESH_TLS_FAIL)
        return UV_EPROTO; /* (the ClientHello could not be made) */
    int rv = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (rv == 0)
        c->reading = 1;
    nghttp2_session_want_write(c->session);
    mesh_h2_conn_flush(c);
    return rv;
}

/* ---- keepalive and liveness --------------------------------------------------------------- */

/* The decisions are transport/h2_liveness.c's; this binds them to the connection's timer. */

static void on_timer(uv_timer_t *t);
static void tls_failed(mesh_h2_conn_t *c);

/* Tells the owner when the peer became suspect or stopped being (closing: never suspect). */
static void suspect_sync(mesh_h2_conn_t *c)
{
    int now = !c->closing && mesh_h2_live_suspect(&c->live);
    if (now == c->suspect)
        return;
    c->suspect = now;
    if (c->ops->on_suspect)
        c->ops->on_suspect(c, now);
}

/* Arms the timer for the liveness core's next due time. */
static void schedule(mesh_h2_conn_t *c, uint64_t now)
{
    uint64_t due = mesh_h2_live_due(&c->live);
    if (due == MESH_H2_LIVE_NEVER) {
        uv_timer_stop(&c->timer);
        c->timer_due = 0;
        return;
    }
    c->timer_due = due;
    uv_timer_start(&c->timer, on_timer, due > now ? due - now : 0, 0);
}

/* Whether the peer's bytes wait unread in the socket (libuv runs due timers before it polls
 * for input: after a pause of this process, an answer may be there, not yet read). */
static int peer_bytes_unread(mesh_h2_conn_t *c)
{
    uv_os_fd_t fd;
    uint8_t b;
    if (!c->reading || uv_fileno((const uv_handle_t *)&c->tcp, &fd) != 0)
        return 0;
    return recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

static void on_timer(uv_timer_t *t)
{
    mesh_h2_conn_t *c = t->data;
    uint64_t now = uv_now(t->loop);
    c->timer_due = 0;
    if (c->closing)
        return;
    size_t outstanding = c->ops->outstanding ? c->ops->outstanding(c) : 0;
    int unread = mesh_h2_live_deciding(&c->live, now) && peer_bytes_unread(c);
    switch (mesh_h2_live_timer(&c->live, now, outstanding, unread)) {
    case MESH_H2_LIVE_CLOSE_STALL:
        mesh_info("h2",
                  "%s: %zu call(s) outstanding, nothing received for %llu ms and no answer to a "
                  "PING: closing",
                  c->name, outstanding, (unsigned long long)(now - c->live.last_rx));
        mesh_h2_conn_close(c);
        return;
    case MESH_H2_LIVE_CLOSE_KEEPALIVE:
        mesh_info("h2", "%s: keepalive PING unanswered, closing", c->name);
        mesh_h2_conn_close(c);
        return;
    case MESH_H2_LIVE_CLOSE_HANDSHAKE:
        if (c->tls) {
            mesh_tls_timed_out(c->tls);
            tls_failed(c); /* counted and logged as a failed handshake; closes */
        } else {
            mesh_h2_conn_close(c);
        }
        return;
    case MESH_H2_LIVE_PING:
        if (nghttp2_submit_ping(c->session, NGHTTP2_FLAG_NONE, NULL) == 0)
            mesh_h2_conn_flush(c);
        else
            mesh_h2_live_ping_failed(&c->live);
        break;
    case MESH_H2_LIVE_NONE:
        break;
    }
    suspect_sync(c);
    schedule(c, now);
}

/* A batch went to the socket: start the liveness clock unless an earlier write did. */
static void note_tx(mesh_h2_conn_t *c)
{
    if (!c->live.stall_ms || c->live.tx_since)
        return;
    uint64_t now = uv_now(c->tcp.loop);
    if (mesh_h2_live_tx(&c->live, now) &&
        (!c->timer_due || c->timer_due > mesh_h2_live_due(&c->live)))
        schedule(c, now);
}

void mesh_h2_conn_keepalive(mesh_h2_conn_t *c, uint64_t interval_ms, uint64_t timeout_ms)
{
    uint64_t now = uv_now(c->tcp.loop);
    mesh_h2_live_keepalive(&c->live, interval_ms, timeout_ms, now);
    if (!c->closing)
        schedule(c, now);
}

void mesh_h2_conn_liveness(mesh_h2_conn_t *c, uint64_t stall_ms, uint64_t timeout_ms)
{
    mesh_h2_live_stall(&c->live, stall_ms, timeout_ms);
    if (!c->closing)
        schedule(c, uv_now(c->tcp.loop));
}

void mesh_h2_conn_ping_acked(mesh_h2_conn_t *c)
{
    uint64_t now = uv_now(c->tcp.loop);
    if (mesh_h2_live_acked(&c->live, now) && !c->closing) {
        suspect_sync(c);
        schedule(c, now);
    }
}

/* Releases the lent chunks of the batch and empties it. */
static void batch_reset(mesh_h2_conn_t *c)
{
    for (int i = 0; i < c->n_segs; i++)
        if (c->segs[i].chunk)
            mesh_chunk_unref(c->segs[i].chunk);
    c->n_segs = 0;
    c->bytes_len = 0;
    c->batch_total = 0;
}

static int batch_bytes(mesh_h2_conn_t *c, const uint8_t *p, size_t n)
{
    if (c->bytes_len + n > c->bytes_cap) {
        size_t nc = c->bytes_cap ? c->bytes_cap : 16384;
        while (nc < c->bytes_len + n)
            nc *= 2;
        uint8_t *nb = realloc(c->bytes, nc);
        if (!nb)
            return -1;
        c->bytes = nb;
        c->bytes_cap = nc;
    }
    mesh_h2_seg_t *last = c->n_segs ? &c->segs[c->n_segs - 1] : NULL;
    if (last && !last->chunk && last->off + last->len == c->bytes_len) {
        last->len += n;
    } else {
        if (c->n_segs == MESH_H2_MAX_SEGS)
            return -1;
        c->segs[c->n_segs++] = (mesh_h2_seg_t){NULL, NULL, c->bytes_len, n};
    }
    memcpy(c->bytes + c->bytes_len, p, n);
    c->bytes_len += n;
    c->batch_total += n;
    return 0;
}

static void on_write(uv_write_t *req, int status)
{
    mesh_h2_conn_t *c = req->data;
    c->writing = 0;
    batch_reset(c);
    if (status < 0) {
        if (status != UV_ECANCELED)
            mesh_debug("h2", "%s: write: %s", c->name, uv_strerror(status));
        mesh_h2_conn_close(c);
        return;
    }
    mesh_h2_conn_flush(c);
}

void mesh_h2_conn_flush(mesh_h2_conn_t *c)
{
    if (c->closing || !c->session)
        return;
    if (c->flusher && !c->flusher->closed) {
        dirty_push(c->flusher, c);
        return;
    }
    flush_now(c);
}

/* Gathers what nghttp2 has to send into the batch; returns 1 when it stopped because the
 * batch is full (more may be pending), 0 when nghttp2 had nothing more (or failed). */
static int gather(mesh_h2_conn_t *c)
{
    int full = 1;
    c->depth++;
    while (c->n_segs < MESH_H2_MAX_SEGS - 2 && c->batch_total < BATCH_MAX_BYTES) {
        const uint8_t *p;
        ssize_t n = nghttp2_session_mem_send(c->session, &p);
        if (n < 0) {
            mesh_debug("h2", "%s: send: %s", c->name, nghttp2_strerror((int)n));
            c->want_close = 1;
            full = 0;
            break;
        }
        if (n == 0) {
            full = 0;
            break;
        }
        if (batch_bytes(c, p, (size_t)n) < 0) {
            c->want_close = 1;
            full = 0;
            break;
        }
    }
    c->depth--;
    return full;
}

/* Nothing left to send and nothing being written: close a session that is done both ways,
 * else tell the owner. */
static void went_idle(mesh_h2_conn_t *c)
{
    if (!nghttp2_session_want_read(c->session) && !nghttp2_session_want_write(c->session)) {
        mesh_h2_conn_close(c);
        return;
    }
    if (c->ops->on_idle)
        c->ops->on_idle(c);
}

static void flush_tls(mesh_h2_conn_t *c);

static void flush_now(mesh_h2_conn_t *c)
{
    if (c->closing || !c->session)
        return;
    if (c->depth > 0 || c->writing) {
        c->want_flush = 1;
        return;
    }
    c->want_flush = 0;
    if (c->tls) {
        flush_tls(c);
        return;
    }
    for (;;) {
        int full = gather(c);
        if (c->want_close) {
            batch_reset(c);
            settle(c);
            return;
        }
        if (c->n_segs == 0) {
            went_idle(c);
            return;
        }
        for (int i = 0; i < c->n_segs; i++) {
            mesh_h2_seg_t *s = &c->segs[i];
            c->bufs[i] = uv_buf_init(s->chunk ? (char *)s->data : (char *)c->bytes + s->off,
                                     (unsigned)s->len);
        }
        note_tx(c);
        /* Most batches fit in the socket buffer: write them now, without arming POLLOUT. */
        int rv = uv_try_write((uv_stream_t *)&c->tcp, c->bufs, (unsigned)c->n_segs);
        if (rv == UV_EAGAIN || rv == UV_ENOSYS)
            rv = 0;
        if (rv < 0) {
            mesh_debug("h2", "%s: write: %s", c->name, uv_strerror(rv));
            batch_reset(c);
            mesh_h2_conn_close(c);
            return;
        }
        if ((size_t)rv == c->batch_total) {
            batch_reset(c);
            if (full)
                continue; /* nghttp2 may have more */
            went_idle(c); /* it had nothing more and the socket took everything */
            return;
        }
        /* The socket took part of it: queue the rest, the chunks stay lent until it is out. */
        int first = 0;
        size_t skip = (size_t)rv;
        while (skip >= c->bufs[first].len) {
            skip -= c->bufs[first].len;
            first++;
        }
        c->bufs[first].base += skip;
        c->bufs[first].len -= skip;
        c->wreq.data = c;
        rv = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, c->bufs + first,
                      (unsigned)(c->n_segs - first), on_write);
        if (rv < 0) {
            batch_reset(c);
            mesh_h2_conn_close(c);
            return;
        }
        c->writing = 1;
        return;
    }
}

/* ---- TLS ------------------------------------------------------------------------------------ */

/* Plaintext of a batch is gathered here before encryption (one SSL_write per scratch-full rather
 * than one record per frame). Per thread, not the shared read buffer: a connection may flush
 * while nghttp2 still parses another connection's input in that buffer. Allocated on a thread's
 * first TLS write (a static thread-local array would be zeroed, so resident, in every thread of
 * every node, TLS or not) and freed when the thread ends. */
#define TLS_SCRATCH (32 * 1024)
static _Thread_local uint8_t *tls_scratch;
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_key_init(void)
{
    pthread_key_create(&scratch_key, free);
}

static uint8_t *scratch(void)
{
    if (!tls_scratch) {
        pthread_once(&scratch_once, scratch_key_init);
        tls_scratch = malloc(TLS_SCRATCH);
        if (tls_scratch)
            pthread_setspecific(scratch_key, tls_scratch);
    }
    return tls_scratch;
}

int mesh_h2_conn_set_tls(mesh_h2_conn_t *c, struct mesh_tls_ctx *ctx, const char *server_name,
                         const char *where)
{
    mesh_tls_t *t = calloc(1, sizeof(*t));
    if (!t || mesh_tls_init(t, ctx, server_name) < 0) {
        free(t);
        return -1;
    }
    c->tls = t;
    c->tls_where = where;
    return 0;
}

void mesh_h2_conn_tls_timeout(mesh_h2_conn_t *c, uint64_t timeout_ms)
{
    if (!c->tls || c->tls->established || c->closing || !timeout_ms)
        return;
    uint64_t now = uv_now(c->tcp.loop);
    mesh_h2_live_handshake(&c->live, timeout_ms, now);
    schedule(c, now);
}

static int bytes_reserve(mesh_h2_conn_t *c, size_t n)
{
    if (n <= c->bytes_cap)
        return 0;
    size_t nc = c->bytes_cap ? c->bytes_cap : 16384;
    while (nc < n)
        nc *= 2;
    uint8_t *nb = realloc(c->bytes, nc);
    if (!nb)
        return -1;
    c->bytes = nb;
    c->bytes_cap = nc;
    return 0;
}

/* The handshake failed: count and log it, send the alert if the socket takes it, close. */
static void tls_failed(mesh_h2_conn_t *c)
{
    struct sockaddr_storage peer;
    int plen = sizeof(peer);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&peer, &plen) < 0)
        peer.ss_family = AF_UNSPEC;
    mesh_tls_fail_report(c->tls, c->tls_where ? c->tls_where : c->name,
                         (const struct sockaddr *)&peer);
    uint8_t alert[256]; /* an alert record is a few bytes */
    size_t n = mesh_tls_out_take(c->tls, alert, sizeof(alert));
    if (n && !c->writing) {
        uv_buf_t b = uv_buf_init((char *)alert, (unsigned)n);
        uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    }
    mesh_h2_conn_close(c);
}

/* Ciphertext from the socket: advance the handshake, then hand the plaintext to nghttp2. */
static void tls_on_read(mesh_h2_conn_t *c, const uint8_t *p, size_t n)
{
    mesh_tls_t *t = c->tls;
    if (mesh_tls_feed(t, p, n) < 0) {
        mesh_h2_conn_close(c);
        return;
    }
    if (!t->established) {
        int r = mesh_tls_handshake(t);
        if (r == MESH_TLS_DONE && c->ops->on_tls_done && c->ops->on_tls_done(c) < 0) {
            t->failed = 1; /* (the owner said why with mesh_tls_refuse) */
            t->established = 0;
            r = MESH_TLS_FAIL;
        }
        if (r == MESH_TLS_FAIL) {
            tls_failed(c);
            return;
        }
        mesh_h2_conn_flush(c); /* the next flight of the handshake, or (done) the SETTINGS */
        if (r == MESH_TLS_WANT)
            return;
        mesh_tls_count_handshake(t);
        if (c->live.handshake_deadline) {
            mesh_h2_live_handshake_done(&c->live);
            if (!c->closing)
                schedule(c, uv_now(c->tcp.loop));
        }
        mesh_debug("h2", "%s: %s%s", c->name, mesh_tls_version(t),
                   mesh_tls_resumed(t) ? ", resumed" : "");
    }
    /* The ciphertext is in the TLS input now: the read buffer takes the plaintext. */
    for (;;) {
        ssize_t k = mesh_tls_read(t, c->rbuf, c->rbuf_len);
        if (k > 0) {
            if (mesh_h2_conn_feed(c, c->rbuf, (size_t)k) < 0)
                return;
            continue;
        }
        if (k == MESH_TLS_WANT)
            break;
        if (k == MESH_TLS_FAIL)
            mesh_debug("h2", "%s: TLS: %s", c->name, mesh_tls_reason(t));
        mesh_h2_conn_close(c); /* failed, or the peer's close_notify */
        return;
    }
    if (mesh_tls_out_pending(t))
        mesh_h2_conn_flush(c); /* TLS's own output (tickets, key updates) */
}

/* Encrypts the batch (then releases it: its chunks are no longer needed). */
static int tls_seal(mesh_h2_conn_t *c)
{
    uint8_t *buf = scratch();
    if (!buf)
        return -1;
    size_t fill = 0;
    for (int i = 0; i < c->n_segs; i++) {
        mesh_h2_seg_t *s = &c->segs[i];
        const uint8_t *p = s->chunk ? s->data : c->bytes + s->off;
        size_t n = s->len;
        while (n > 0) {
            if (fill == TLS_SCRATCH) {
                if (mesh_tls_write(c->tls, buf, fill) < 0)
                    return -1;
                fill = 0;
            }
            size_t k = n < TLS_SCRATCH - fill ? n : TLS_SCRATCH - fill;
            memcpy(buf + fill, p, k);
            fill += k;
            p += k;
            n -= k;
        }
    }
    int rv = fill ? mesh_tls_write(c->tls, buf, fill) : 0;
    batch_reset(c);
    return rv;
}

/* flush_now over TLS: gather, encrypt, write the ciphertext; the batch bytes hold it (and keep
 * it while a write the socket did not take at once is in flight). */
static void flush_tls(mesh_h2_conn_t *c)
{
    mesh_tls_t *t = c->tls;
    for (;;) {
        if (t->established) {
            gather(c);
            if (c->want_close) {
                batch_reset(c);
                settle(c);
                return;
            }
            if (c->n_segs && tls_seal(c) < 0) {
                mesh_debug("h2", "%s: TLS: %s", c->name, mesh_tls_reason(t));
                batch_reset(c);
                mesh_h2_conn_close(c);
                return;
            }
        }
        size_t n = mesh_tls_out_pending(t);
        if (n == 0) {
            if (t->established)
                went_idle(c);
            return;
        }
        if (bytes_reserve(c, n) < 0) {
            mesh_h2_conn_close(c);
            return;
        }
        n = mesh_tls_out_take(t, c->bytes, n);
        note_tx(c);
        c->bufs[0] = uv_buf_init((char *)c->bytes, (unsigned)n);
        int rv = uv_try_write((uv_stream_t *)&c->tcp, c->bufs, 1);
        if (rv == UV_EAGAIN || rv == UV_ENOSYS)
            rv = 0;
        if (rv < 0) {
            mesh_debug("h2", "%s: write: %s", c->name, uv_strerror(rv));
            mesh_h2_conn_close(c);
            return;
        }
        if ((size_t)rv == n)
            continue; /* nghttp2 may have more */
        /* The socket took part of it: the rest goes from the batch bytes, which stay until the
         * write completes (on_write resets the batch). */
        c->bufs[0].base += rv;
        c->bufs[0].len -= (unsigned)rv;
        c->wreq.data = c;
        rv = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, c->bufs, 1, on_write);
        if (rv < 0) {
            mesh_h2_conn_close(c);
            return;
        }
        c->writing = 1;
        return;
    }
}

static void do_close(mesh_h2_conn_t *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    dirty_remove(c);
    suspect_sync(c);
    if (c->ops->on_teardown)
        c->ops->on_teardown(c);
    if (c->session) {
        nghttp2_session_del(c->session);
        c->session = NULL;
    }
    uv_timer_stop(&c->timer);
    if (!c->writing)
        batch_reset(c);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

void mesh_h2_conn_close(mesh_h2_conn_t *c)
{
    if (c->closing)
        return;
    c->want_close = 1;
    if (c->depth == 0)
        do_close(c);
}

ssize_t mesh_h2_source_read(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                            size_t length, uint32_t *data_flags, nghttp2_data_source *source,
                            void *user_data)
{
    mesh_h2_source_t *src = source->ptr;
    mesh_chunkq_t *q = &src->q;
    mesh_chunk_t *chunk;
    const uint8_t *data;
    size_t n = mesh_chunkq_peek(q, &chunk, &data);
    if (n == 0 && !q->eof) {
        src->deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    if (n > length)
        n = length;
    if (n > 0)
        *data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (q->eof && n == q->unsent) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        if (src->on_eof && src->on_eof(src, session, stream_id))
            *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
    }
    return (ssize_t)n;
}

int mesh_h2_send_data(nghttp2_session *session, nghttp2_frame *frame, const uint8_t *framehd,
                      size_t length, nghttp2_data_source *source, void *user_data)
{
    mesh_h2_conn_t *c = user_data;
    mesh_h2_source_t *src = source->ptr;
    if (c->n_segs + 2 > MESH_H2_MAX_SEGS)
        return NGHTTP2_ERR_WOULDBLOCK;
    if (batch_bytes(c, framehd, 9) < 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    if (length > 0) {
        mesh_chunk_t *chunk;
        const uint8_t *data;
        size_t n = mesh_chunkq_peek(&src->q, &chunk, &data);
        if (n < length)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        mesh_chunk_ref(chunk);
        c->segs[c->n_segs++] = (mesh_h2_seg_t){chunk, data, 0, length};
        c->batch_total += length;
        mesh_chunkq_advance(&src->q, length);
    }
    return 0;
}
