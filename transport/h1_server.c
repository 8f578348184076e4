/*
 * transport/h1_server.c: the libuv binding behind transport/h1_server.h.
 *
 * One connection = one uv_tcp_t, one uv_timer_t, one read buffer and one core: an h1_conn_t
 * or an h2s_conn_t, chosen by the first bytes (the core_* functions call whichever it is). Every
 * event (a read, a finished write, the timer, an application call that woke the core) ends in
 * pump(), which feeds what is buffered while the core wants it, starts the next write,
 * starts or stops reading, re-arms the timer, and closes when the core says so. pump() does
 * not nest: a wake-up during a pump makes it loop once more. A connection is freed when both
 * its handles have closed; the server when the listener and every connection have.
 */
#include "transport/h1_server.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "common/log.h"
#include "transport/h2_mem.h"
#include "transport/tls_holder.h"
#include "transport/tls_peer.h"

/* Ciphertext is read into one buffer per server (reads are handed to TLS at once). */
#define TLS_READ 16384

typedef struct h1s_conn h1s_conn_t;

/* The first HTTP/1.1 request asked `Upgrade: h2c`: its head and body, kept by the binding. */
typedef struct {
    char *head; /* method\0 target\0 name\0 value\0 ... */
    size_t head_len, head_cap;
    char *body;
    size_t body_len, body_cap;
    size_t n_fields;
    uint8_t settings[512];
    int settings_len;
    int is_head;
    int ready; /* the request is complete: switch once the HTTP/1.1 output is written */
} h1s_upgrade_t;

struct h1_srv {
    uv_loop_t *loop;
    uv_tcp_t listener;
    h1_srv_config_t cfg;
    h1_srv_handler_t h;
    void *ud;
    const char *name;
    int listening; /* the listener handle is open */
    int stopping;  /* shutdown or close asked */
    int port;
    unsigned n_conns;
    unsigned long accepted;
    h1s_conn_t *conns;
    void (*on_closed)(void *ud);
    void *on_closed_ud;
    struct sockaddr_storage peer;  /* of the connection being opened (h1_srv_peer) */
    const mesh_peer_id_t *peer_id; /* of the connection being opened (h1_srv_peer_identity) */
    mesh_h2_mem_t h2mem;           /* nghttp2's allocator for the HTTP/2 connections */
    uint8_t *ctext;                /* TLS: the read buffer of ciphertext (TLS_READ bytes) */
};

struct h1s_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wr;
    uv_shutdown_t shut;
    h1_srv_t *s;
    h1_conn_t *core; /* HTTP/1.1, or */
    h2s_conn_t *h2;  /* HTTP/2; both NULL until the first bytes said which */
    h1s_upgrade_t *up;
    int switching; /* the HTTP/1.1 core is being replaced: its last on_error is not forwarded */
    struct sockaddr_storage peer;
    void *app_ud;
    h1s_conn_t *next, *prev;
    int handles; /* handles not yet closed */
    int closing;
    int writing;
    int reading;
    int lingering; /* FIN sent: reading and dropping until EOF */
    int pumping, again;
    int opened;       /* on_open was called */
    int eof;          /* the client sent FIN; 2 when the core has been told */
    mesh_tls_t *tls;  /* TLS (cfg.tls): decrypted into in, the core's output encrypted */
    uint8_t *tls_out; /* ciphertext being written */
    size_t tls_out_cap;
    int tls_core_write; /* the write in flight carries the core's output (core_sent after it) */
    mesh_peer_id_t *peer_id; /* what the client's verified certificate proves; NULL: nothing */
    uint64_t hs_deadline;    /* TLS: loop time the handshake must be done by; 0: no limit */
    size_t in_len;
    char in[];
};

static void pump(h1s_conn_t *sc);

static void upgrade_free(h1s_upgrade_t *u)
{
    if (!u)
        return;
    free(u->head);
    free(u->body);
    free(u);
}

/* ---- the core, whichever protocol ----------------------------------------------------------- */

static size_t core_feed(h1s_conn_t *sc, const char *d, size_t n, uint64_t now)
{
    return sc->h2 ? h2s_conn_feed(sc->h2, d, n, now) : h1_conn_feed(sc->core, d, n, now);
}

static void core_eof(h1s_conn_t *sc, uint64_t now)
{
    if (sc->h2)
        h2s_conn_eof(sc->h2, now);
    else
        h1_conn_eof(sc->core, now);
}

static int core_wants_read(h1s_conn_t *sc)
{
    return sc->h2 ? h2s_conn_wants_read(sc->h2) : h1_conn_wants_read(sc->core);
}

static size_t core_take_out(h1s_conn_t *sc, const char **d, uint64_t now)
{
    return sc->h2 ? h2s_conn_take_out(sc->h2, d, now) : h1_conn_take_out(sc->core, d, now);
}

static void core_sent(h1s_conn_t *sc, uint64_t now)
{
    if (sc->h2)
        h2s_conn_sent(sc->h2, now);
    else
        h1_conn_sent(sc->core, now);
}

static int core_should_close(h1s_conn_t *sc)
{
    return sc->h2 ? h2s_conn_should_close(sc->h2) : h1_conn_should_close(sc->core);
}

static uint64_t core_deadline(h1s_conn_t *sc)
{
    return sc->h2 ? h2s_conn_deadline(sc->h2) : h1_conn_deadline(sc->core);
}

static void core_on_timer(h1s_conn_t *sc, uint64_t now)
{
    if (sc->h2)
        h2s_conn_on_timer(sc->h2, now);
    else
        h1_conn_on_timer(sc->core, now);
}

static void core_shutdown(h1s_conn_t *sc)
{
    if (sc->h2)
        h2s_conn_shutdown(sc->h2);
    else
        h1_conn_shutdown(sc->core);
}

/* ---- closing ------------------------------------------------------------------------------ */

static void server_maybe_free(h1_srv_t *s)
{
    if (!s->stopping || s->conns || s->listening)
        return;
    void (*cb)(void *) = s->on_closed;
    void *ud = s->on_closed_ud;
    mesh_h2_mem_destroy(&s->h2mem);
    free(s->ctext);
    free(s);
    if (cb)
        cb(ud);
}

static void on_conn_handle_closed(uv_handle_t *h)
{
    h1s_conn_t *sc = h->data;
    if (--sc->handles > 0)
        return;
    h1_srv_t *s = sc->s;
    if (sc->prev)
        sc->prev->next = sc->next;
    else
        s->conns = sc->next;
    if (sc->next)
        sc->next->prev = sc->prev;
    s->n_conns--;
    h1_conn_free(sc->core); /* requests still open hear on_error(0) */
    h2s_conn_free(sc->h2);
    if (sc->tls) {
        mesh_tls_destroy(sc->tls);
        free(sc->tls);
    }
    free(sc->tls_out);
    upgrade_free(sc->up);
    if (sc->opened && s->h.on_close)
        s->h.on_close(sc->app_ud);
    mesh_peer_id_free(sc->peer_id); /* after on_close: the application may hold it till then */
    free(sc);
    server_maybe_free(s);
}

static void conn_close(h1s_conn_t *sc)
{
    if (sc->closing)
        return;
    sc->closing = 1;
    uv_close((uv_handle_t *)&sc->tcp, on_conn_handle_closed);
    uv_close((uv_handle_t *)&sc->timer, on_conn_handle_closed);
}

static void on_linger_timeout(uv_timer_t *t)
{
    conn_close(t->data);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    if (status < 0)
        conn_close(req->data);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

/* Everything is written: send FIN, then read and drop what the client still sends until it
 * closes or 2 s pass. Closing with unread input would make the kernel answer RST, which can
 * destroy the last answer before the client reads it. */
static void conn_linger(h1s_conn_t *sc)
{
    if (sc->tls && sc->tls->established) {
        /* close_notify before the FIN: a TLS client then sees a clean end, not a truncation */
        mesh_tls_close(sc->tls);
        uint8_t alert[256];
        size_t n = mesh_tls_out_take(sc->tls, alert, sizeof(alert));
        uv_buf_t b = uv_buf_init((char *)alert, (unsigned)n);
        if (n)
            uv_try_write((uv_stream_t *)&sc->tcp, &b, 1);
    }
    sc->lingering = 1;
    sc->in_len = 0;
    sc->shut.data = sc;
    if (uv_shutdown(&sc->shut, (uv_stream_t *)&sc->tcp, on_shutdown) < 0) {
        conn_close(sc);
        return;
    }
    uv_timer_start(&sc->timer, on_linger_timeout, 2000, 0);
    if (!sc->reading && uv_read_start((uv_stream_t *)&sc->tcp, on_alloc, on_read) == 0)
        sc->reading = 1;
}

/* ---- I/O ---------------------------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    h1s_conn_t *sc = h->data;
    (void)suggested;
    if (sc->lingering)
        sc->in_len = 0;
    if (sc->tls && !sc->lingering) {
        *buf = uv_buf_init((char *)sc->s->ctext, TLS_READ);
        return;
    }
    *buf = uv_buf_init(sc->in + sc->in_len, (unsigned)(sc->s->cfg.read_buffer - sc->in_len));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    h1s_conn_t *sc = st->data;
    (void)buf;
    if (sc->closing)
        return;
    if (sc->lingering) {
        sc->in_len = 0;
        if (nread < 0)
            conn_close(sc);
        return;
    }
    if (nread == UV_EOF) {
        uv_read_stop(st);
        sc->reading = 0;
        sc->eof = 1; /* told to the core once it has taken every byte before it (pump) */
    } else if (nread == UV_ENOBUFS) {
        uv_read_stop(st); /* the buffer is full: pump() reads again once the core took some */
        sc->reading = 0;
        return;
    } else if (nread < 0) {
        conn_close(sc);
        return;
    } else if (nread == 0) {
        return;
    } else if (sc->tls) {
        if (mesh_tls_feed(sc->tls, sc->s->ctext, (size_t)nread) < 0) {
            conn_close(sc);
            return;
        }
    } else {
        sc->in_len += (size_t)nread;
    }
    pump(sc);
}

static void on_written(uv_write_t *wr, int status)
{
    h1s_conn_t *sc = wr->data;
    sc->writing = 0;
    if (sc->closing)
        return;
    if (status < 0) {
        conn_close(sc);
        return;
    }
    if (!sc->tls || sc->tls_core_write)
        core_sent(sc, uv_now(sc->s->loop));
    sc->tls_core_write = 0;
    pump(sc);
}

static void on_timer(uv_timer_t *t)
{
    h1s_conn_t *sc = t->data;
    if (sc->closing || sc->lingering)
        return;
    if (!sc->core && !sc->h2) {
        if (sc->tls && !sc->tls->established && sc->hs_deadline &&
            uv_now(sc->s->loop) >= sc->hs_deadline) {
            mesh_tls_timed_out(sc->tls); /* counted and logged as a failed handshake */
            mesh_tls_fail_report(sc->tls, sc->s->name, (const struct sockaddr *)&sc->peer);
        }
        conn_close(sc); /* no handshake, or no first bytes, in time */
        return;
    }
    core_on_timer(sc, uv_now(sc->s->loop));
    pump(sc);
}

static int conn_sniff(h1s_conn_t *sc);
static void conn_upgrade(h1s_conn_t *sc);

/* How long a connection may wait for its first bytes (ms). */
static uint64_t header_timeout(const h1_srv_t *s)
{
    return s->cfg.conn.header_timeout_ms ? s->cfg.conn.header_timeout_ms : 10000;
}

/* TLS: writes the ciphertext waiting (one write at a time). 0, or -1 when the connection closed. */
static int tls_flush(h1s_conn_t *sc, int core_write)
{
    size_t n = mesh_tls_out_pending(sc->tls);
    if (n == 0 || sc->writing)
        return 0;
    if (n > sc->tls_out_cap) {
        uint8_t *p = realloc(sc->tls_out, n);
        if (!p) {
            conn_close(sc);
            return -1;
        }
        sc->tls_out = p;
        sc->tls_out_cap = n;
    }
    n = mesh_tls_out_take(sc->tls, sc->tls_out, n);
    uv_buf_t b = uv_buf_init((char *)sc->tls_out, (unsigned)n);
    sc->wr.data = sc;
    if (uv_write(&sc->wr, (uv_stream_t *)&sc->tcp, &b, 1, on_written) < 0) {
        conn_close(sc);
        return -1;
    }
    sc->writing = 1;
    sc->tls_core_write = core_write;
    return 0;
}

/* TLS: advances the handshake, then decrypts into the read buffer while it has room. 0 when the
 * core may run, -1 when it may not (handshake going on, or the connection closed). */
static int tls_step(h1s_conn_t *sc)
{
    mesh_tls_t *t = sc->tls;
    if (!t->established) {
        int r = mesh_tls_handshake(t);
        if (r == MESH_TLS_FAIL) {
            mesh_tls_fail_report(t, sc->s->name, (const struct sockaddr *)&sc->peer);
            uint8_t alert[256];
            size_t n = mesh_tls_out_take(t, alert, sizeof(alert));
            uv_buf_t b = uv_buf_init((char *)alert, (unsigned)n);
            if (n && !sc->writing)
                uv_try_write((uv_stream_t *)&sc->tcp, &b, 1);
            conn_close(sc);
            return -1;
        }
        if (tls_flush(sc, 0) < 0)
            return -1;
        if (r == MESH_TLS_WANT && sc->eof) {
            conn_close(sc); /* the client left before the handshake was done */
            return -1;
        }
        if (r == MESH_TLS_WANT) {
            if (!sc->reading && uv_read_start((uv_stream_t *)&sc->tcp, on_alloc, on_read) == 0)
                sc->reading = 1;
            return -1;
        }
        mesh_tls_count_handshake(t);
        if (!sc->core && !sc->h2) /* the first bytes have the header timeout from now on */
            uv_timer_start(&sc->timer, on_timer, header_timeout(sc->s), 0);
        char why[256];
        sc->peer_id = mesh_tls_peer_id(t, why, sizeof(why));
        if (sc->peer_id)
            mesh_debug(sc->s->name, "TLS client: peer %s", sc->peer_id->node_uri.p);
        else if (why[0])
            mesh_debug(sc->s->name, "TLS client: no peer identity: %s", why);
    }
    while (sc->in_len < sc->s->cfg.read_buffer) {
        ssize_t k =
            mesh_tls_read(t, (uint8_t *)sc->in + sc->in_len, sc->s->cfg.read_buffer - sc->in_len);
        if (k > 0) {
            sc->in_len += (size_t)k;
            continue;
        }
        if (k == MESH_TLS_WANT)
            break;
        if (k == MESH_TLS_CLOSED) {
            if (!sc->eof)
                sc->eof = 1; /* close_notify: as a FIN */
            break;
        }
        mesh_debug(sc->s->name, "TLS: %s", mesh_tls_reason(t));
        conn_close(sc);
        return -1;
    }
    return 0;
}

static void pump_once(h1s_conn_t *sc)
{
    h1_srv_t *s = sc->s;
    uint64_t now = uv_now(s->loop);
    if (sc->tls && tls_step(sc) < 0)
        return;
    if (!sc->core && !sc->h2 && !conn_sniff(sc)) {
        /* waiting for the first bytes (the timer closes a silent connection) */
        if (sc->closing)
            return;
        if (!sc->reading && uv_read_start((uv_stream_t *)&sc->tcp, on_alloc, on_read) == 0)
            sc->reading = 1;
        return;
    }
    if (sc->closing)
        return;
    if (sc->up && sc->up->ready && !sc->writing && h1_conn_out_buffered(sc->core) == 0) {
        conn_upgrade(sc);
        if (sc->closing)
            return;
    }
    if (sc->in_len && core_wants_read(sc)) {
        size_t used = core_feed(sc, sc->in, sc->in_len, now);
        if (used) {
            memmove(sc->in, sc->in + used, sc->in_len - used);
            sc->in_len -= used;
            sc->again = 1;
        }
    }
    /* The FIN is told to the core once it has taken every byte before it: pipelined requests
     * sent before a half-close are all read and answered. */
    if (sc->eof == 1 && (!sc->in_len || core_should_close(sc))) {
        sc->eof = 2;
        core_eof(sc, now);
    }
    if (!sc->writing && sc->tls) {
        const char *data;
        size_t n = core_take_out(sc, &data, now);
        if (n && mesh_tls_write(sc->tls, data, n) < 0) {
            conn_close(sc);
            return;
        }
        if (tls_flush(sc, n > 0) < 0)
            return;
        if (n && !sc->writing) /* (cannot happen: the bytes were encrypted) */
            core_sent(sc, now);
    } else if (!sc->writing) {
        const char *data;
        size_t n = core_take_out(sc, &data, now);
        if (n) {
            uv_buf_t b = uv_buf_init((char *)data, (unsigned)n);
            sc->wr.data = sc;
            if (uv_write(&sc->wr, (uv_stream_t *)&sc->tcp, &b, 1, on_written) < 0) {
                conn_close(sc);
                return;
            }
            sc->writing = 1;
        }
    }
    if (!sc->writing && core_should_close(sc)) {
        uv_timer_stop(&sc->timer);
        if (sc->reading) {
            uv_read_stop((uv_stream_t *)&sc->tcp);
            sc->reading = 0;
        }
        conn_linger(sc);
        return;
    }
    int want = !sc->eof && core_wants_read(sc) && sc->in_len < s->cfg.read_buffer;
    if (want && !sc->reading) {
        if (uv_read_start((uv_stream_t *)&sc->tcp, on_alloc, on_read) == 0)
            sc->reading = 1;
    } else if (!want && sc->reading) {
        uv_read_stop((uv_stream_t *)&sc->tcp);
        sc->reading = 0;
    }
    uint64_t d = core_deadline(sc);
    if (d)
        uv_timer_start(&sc->timer, on_timer, d > now ? d - now : 0, 0);
    else
        uv_timer_stop(&sc->timer);
}

static void pump(h1s_conn_t *sc)
{
    if (sc->pumping) {
        sc->again = 1;
        return;
    }
    sc->pumping = 1;
    do {
        sc->again = 0;
        if (sc->closing || sc->lingering)
            break;
        pump_once(sc);
    } while (sc->again);
    sc->pumping = 0;
}

/* ---- the core's callbacks, forwarded -------------------------------------------------------- */

/* Whether a comma-separated header value holds token (case-insensitive). */
static int has_token(const char *v, size_t vl, const char *token)
{
    size_t tl = strlen(token);
    for (size_t i = 0; i < vl;) {
        while (i < vl && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t j = i;
        while (j < vl && v[j] != ',')
            j++;
        size_t e = j;
        while (e > i && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - i == tl && strncasecmp(v + i, token, tl) == 0)
            return 1;
        i = j;
    }
    return 0;
}

static int up_add(h1s_upgrade_t *u, const char *d, size_t n)
{
    if (u->head_len + n + 1 > u->head_cap) {
        size_t cap = u->head_cap ? u->head_cap : 1024;
        while (cap < u->head_len + n + 1)
            cap *= 2;
        char *p = realloc(u->head, cap);
        if (!p)
            return -1;
        u->head = p;
        u->head_cap = cap;
    }
    memcpy(u->head + u->head_len, d, n);
    u->head[u->head_len + n] = 0;
    u->head_len += n + 1;
    return 0;
}

/* The connection's first request asks to switch to h2c (RFC 7540 3.2): a copy of it for the
 * HTTP/2 core, or NULL (not an h2c upgrade, a bad HTTP2-Settings, no memory: served as
 * HTTP/1.1). */
static h1s_upgrade_t *upgrade_take(const h1_conn_head_t *head)
{
    const h1_conn_hdr_t *up = h1_conn_head_find(head, "upgrade");
    const h1_conn_hdr_t *conn = h1_conn_head_find(head, "connection");
    const h1_conn_hdr_t *set = h1_conn_head_find(head, "http2-settings");
    if (!up || !conn || !set || !has_token(up->value, up->value_len, "h2c") ||
        !has_token(conn->value, conn->value_len, "upgrade") || head->minor != 1)
        return NULL;
    h1s_upgrade_t *u = calloc(1, sizeof(*u));
    if (!u)
        return NULL;
    u->settings_len =
        h2s_settings_decode(set->value, set->value_len, u->settings, sizeof(u->settings));
    if (u->settings_len < 0 || up_add(u, head->method, strlen(head->method)) != 0 ||
        up_add(u, head->target, head->target_len) != 0)
        goto fail;
    for (size_t i = 0; i < head->n_headers; i++) {
        const h1_conn_hdr_t *h = &head->headers[i];
        static const char *const hop[] = {"connection",     "upgrade",           "http2-settings",
                                          "keep-alive",     "transfer-encoding", "expect",
                                          "content-length", "proxy-connection"};
        int skip = 0;
        for (size_t j = 0; j < sizeof(hop) / sizeof(hop[0]); j++)
            if (strlen(hop[j]) == h->name_len && strncasecmp(hop[j], h->name, h->name_len) == 0)
                skip = 1;
        if (skip || memchr(h->value, 0, h->value_len))
            continue;
        if (up_add(u, h->name, h->name_len) != 0 || up_add(u, h->value, h->value_len) != 0)
            goto fail;
        u->n_fields++;
    }
    u->is_head = head->is_head;
    return u;
fail:
    upgrade_free(u);
    return NULL;
}

static void fw_head(void *ud, h1_conn_t *c, uint64_t id, const h1_conn_head_t *head)
{
    h1s_conn_t *sc = ud;
    if (id == 0 && sc->s->h.on_open_h2 && (sc->up = upgrade_take(head)) != NULL) {
        if (head->expect_continue)
            h1_conn_continue(c, id);
        return; /* kept by the binding: the application sees it as HTTP/2 stream 1 */
    }
    if (sc->s->h.cbs.on_head)
        sc->s->h.cbs.on_head(sc->app_ud, c, id, head);
}

static void fw_body(void *ud, h1_conn_t *c, uint64_t id, const char *data, size_t len)
{
    h1s_conn_t *sc = ud;
    if (id == 0 && sc->up) {
        h1s_upgrade_t *u = sc->up;
        if (u->body_len + len > u->body_cap) {
            size_t cap = u->body_cap ? u->body_cap : 4096;
            while (cap < u->body_len + len)
                cap *= 2;
            char *p = realloc(u->body, cap);
            if (!p) {
                h1_conn_respond_error(c, id, 500, "out of memory");
                upgrade_free(u);
                sc->up = NULL;
                return;
            }
            u->body = p;
            u->body_cap = cap;
        }
        memcpy(u->body + u->body_len, data, len);
        u->body_len += len;
        return;
    }
    if (sc->s->h.cbs.on_body)
        sc->s->h.cbs.on_body(sc->app_ud, c, id, data, len);
}

static void fw_end(void *ud, h1_conn_t *c, uint64_t id)
{
    h1s_conn_t *sc = ud;
    if (id == 0 && sc->up) {
        sc->up->ready = 1; /* pump() switches */
        return;
    }
    if (sc->s->h.cbs.on_end)
        sc->s->h.cbs.on_end(sc->app_ud, c, id);
}

static void fw_error(void *ud, h1_conn_t *c, uint64_t id, int status, const char *why)
{
    h1s_conn_t *sc = ud;
    if (id == 0 && (sc->up || sc->switching)) {
        upgrade_free(sc->up); /* the core answered it itself (413, ...) */
        sc->up = NULL;
        return;
    }
    if (sc->s->h.cbs.on_error)
        sc->s->h.cbs.on_error(sc->app_ud, c, id, status, why);
}

static void fw_drain(void *ud, h1_conn_t *c)
{
    h1s_conn_t *sc = ud;
    if (sc->s->h.cbs.on_drain)
        sc->s->h.cbs.on_drain(sc->app_ud, c);
}

static void on_wake(void *ud, h1_conn_t *c)
{
    (void)c;
    pump(ud);
}

static const h1_conn_cbs_t forward = {fw_head, fw_body, fw_end, fw_error, fw_drain, on_wake};

static void fw2_head(void *ud, h2s_conn_t *c, uint64_t id, const h1_conn_head_t *head)
{
    h1s_conn_t *sc = ud;
    if (sc->s->h.h2cbs.on_head)
        sc->s->h.h2cbs.on_head(sc->app_ud, c, id, head);
}

static void fw2_body(void *ud, h2s_conn_t *c, uint64_t id, const char *data, size_t len)
{
    h1s_conn_t *sc = ud;
    if (sc->s->h.h2cbs.on_body)
        sc->s->h.h2cbs.on_body(sc->app_ud, c, id, data, len);
}

static void fw2_end(void *ud, h2s_conn_t *c, uint64_t id)
{
    h1s_conn_t *sc = ud;
    if (sc->s->h.h2cbs.on_end)
        sc->s->h.h2cbs.on_end(sc->app_ud, c, id);
}

static void fw2_error(void *ud, h2s_conn_t *c, uint64_t id, int status, const char *why)
{
    h1s_conn_t *sc = ud;
    if (sc->s->h.h2cbs.on_error)
        sc->s->h.h2cbs.on_error(sc->app_ud, c, id, status, why);
}

static void fw2_drain(void *ud, h2s_conn_t *c)
{
    h1s_conn_t *sc = ud;
    if (sc->s->h.h2cbs.on_drain)
        sc->s->h.h2cbs.on_drain(sc->app_ud, c);
}

static void on_wake2(void *ud, h2s_conn_t *c)
{
    (void)c;
    pump(ud);
}

static const h2s_conn_cbs_t forward2 = {fw2_head,  fw2_body,  fw2_end,
                                        fw2_error, fw2_drain, on_wake2};

/* ---- choosing the protocol ------------------------------------------------------------------ */

/* Gives the connection its core once the first bytes say which: 1, or 0 while they may still
 * be the HTTP/2 preface. */
static int conn_sniff(h1s_conn_t *sc)
{
    h1_srv_t *s = sc->s;
    uint64_t now = uv_now(s->loop);
    size_t n = sc->in_len < H2S_PREFACE_LEN ? sc->in_len : H2S_PREFACE_LEN;
    int h2 = s->h.on_open_h2 && memcmp(sc->in, H2S_PREFACE, n) == 0;
    if (h2 && sc->in_len < H2S_PREFACE_LEN && !sc->eof)
        return 0;
    h2 = h2 && sc->in_len >= H2S_PREFACE_LEN;
    if (h2)
        sc->h2 = h2s_conn_new(&s->cfg.conn, &forward2, sc, now, &s->h2mem.mem);
    else
        sc->core = h1_conn_new(&s->cfg.conn, &forward, sc, now);
    if (!sc->core && !sc->h2) {
        mesh_error(s->name, "out of memory accepting a connection");
        conn_close(sc);
        return 0;
    }
    sc->opened = 1;
    s->peer = sc->peer;
    s->peer_id = sc->peer_id;
    if (h2 && s->h.on_open_h2)
        sc->app_ud = s->h.on_open_h2(s->ud, sc->h2);
    else if (!h2 && s->h.on_open)
        sc->app_ud = s->h.on_open(s->ud, sc->core);
    if (s->stopping)
        core_shutdown(sc);
    return 1;
}

/* The upgrade request is complete and the HTTP/1.1 side has written everything: the HTTP/2
 * core takes over (101, then the request as stream 1). */
static void conn_upgrade(h1s_conn_t *sc)
{
    h1_srv_t *s = sc->s;
    h1s_upgrade_t *u = sc->up;
    sc->up = NULL;
    h1_conn_hdr_t *views = calloc(u->n_fields + 1, sizeof(*views));
    h1_conn_head_t head = {0};
    if (!views) {
        upgrade_free(u);
        h1_conn_respond_error(sc->core, 0, 500, "out of memory");
        return;
    }
    const char *p = u->head;
    head.method = p;
    p += strlen(p) + 1;
    head.target = p;
    head.target_len = strlen(p);
    p += head.target_len + 1;
    size_t n = 0;
    for (size_t i = 0; i < u->n_fields; i++, n++) {
        views[n].name = p;
        views[n].name_len = strlen(p);
        p += views[n].name_len + 1;
        views[n].value = p;
        views[n].value_len = strlen(p);
        p += views[n].value_len + 1;
    }
    head.headers = views;
    head.n_headers = n;
    head.is_head = u->is_head;
    head.minor = 1;
    head.keep_alive = 1;
    h2s_conn_t *h2 =
        h2s_conn_new_upgrade(&s->cfg.conn, &forward2, sc, uv_now(s->loop), &s->h2mem.mem,
                             u->settings, (size_t)u->settings_len, &head, u->body, u->body_len);
    upgrade_free(u);
    free(views);
    if (!h2) {
        h1_conn_respond_error(sc->core, 0, 400, "cannot switch to HTTP/2 (HTTP2-Settings)");
        return;
    }
    sc->switching = 1;
    h1_conn_free(sc->core);
    sc->core = NULL;
    sc->switching = 0;
    if (s->h.on_close)
        s->h.on_close(sc->app_ud);
    sc->h2 = h2;
    s->peer = sc->peer;
    s->peer_id = sc->peer_id;
    sc->app_ud = s->h.on_open_h2(s->ud, h2);
    h2s_conn_start(h2);
    if (s->stopping)
        core_shutdown(sc);
}

/* ---- the listener ------------------------------------------------------------------------- */

static void on_connection(uv_stream_t *ls, int status)
{
    h1_srv_t *s = ls->data;
    if (status < 0 || s->stopping)
        return;
    h1s_conn_t *sc = calloc(1, sizeof(*sc) + s->cfg.read_buffer);
    if (!sc) {
        mesh_error(s->name, "out of memory accepting a connection");
        return;
    }
    sc->s = s;
    uv_tcp_init(s->loop, &sc->tcp);
    uv_timer_init(s->loop, &sc->timer);
    sc->tcp.data = sc->timer.data = sc;
    sc->handles = 2;
    sc->next = s->conns;
    if (s->conns)
        s->conns->prev = sc;
    s->conns = sc;
    s->n_conns++;
    if (uv_accept(ls, (uv_stream_t *)&sc->tcp) < 0) {
        conn_close(sc);
        return;
    }
    if (s->n_conns > s->cfg.max_connections) {
        mesh_warn(s->name, "connection refused: %u open (max-connections)", s->n_conns - 1);
        conn_close(sc);
        return;
    }
    s->accepted++;
    int plen = sizeof(sc->peer);
    if (uv_tcp_getpeername(&sc->tcp, (struct sockaddr *)&sc->peer, &plen) < 0)
        sc->peer.ss_family = AF_UNSPEC;
    if (s->cfg.tls) {
        mesh_tls_ctx_t *ctx = mesh_tls_holder_get(s->cfg.tls);
        sc->tls = calloc(1, sizeof(*sc->tls));
        if (!s->ctext)
            s->ctext = malloc(TLS_READ);
        if (!ctx || !sc->tls || !s->ctext || mesh_tls_init(sc->tls, ctx, NULL) < 0) {
            free(sc->tls);
            sc->tls = NULL;
            mesh_tls_ctx_unref(ctx);
            conn_close(sc);
            return;
        }
        mesh_tls_ctx_unref(ctx);
    }
    uv_tcp_nodelay(&sc->tcp, 1);
    uint64_t hs = s->cfg.tls_handshake_timeout_ms ? s->cfg.tls_handshake_timeout_ms : 10000;
    if (sc->tls && hs != UINT64_MAX) {
        sc->hs_deadline = uv_now(s->loop) + hs; /* then the header timeout (tls_step) */
        uv_timer_start(&sc->timer, on_timer, hs, 0);
    } else if (!s->h.on_open_h2 && !sc->tls) {
        conn_sniff(sc); /* HTTP/1.1 only: nothing to wait for (with TLS: the handshake first, so
                           on_open knows the client's certificate) */
    } else {
        uv_timer_start(&sc->timer, on_timer, header_timeout(s), 0);
    }
    pump(sc);
}

h1_srv_t *h1_srv_new(uv_loop_t *loop, const h1_srv_config_t *cfg, const h1_srv_handler_t *handler,
                     void *ud)
{
    h1_srv_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->loop = loop;
    if (cfg)
        s->cfg = *cfg;
    if (handler)
        s->h = *handler;
    s->ud = ud;
    if (!s->cfg.max_connections)
        s->cfg.max_connections = 1024;
    if (!s->cfg.read_buffer)
        s->cfg.read_buffer = 64 << 10;
    s->name = s->cfg.name ? s->cfg.name : "gateway";
    mesh_h2_mem_init(&s->h2mem);
    s->port = -1;
    return s;
}

int h1_srv_listen(h1_srv_t *s, const char *host, int port)
{
    struct sockaddr_storage ss;
    int rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&ss);
    if (rc < 0)
        rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss);
    if (rc < 0)
        return rc;
    if (!s->listening) {
        if ((rc = uv_tcp_init_ex(s->loop, &s->listener, ss.ss_family)) < 0)
            return rc;
        s->listener.data = s;
        s->listening = 1;
        uv_os_fd_t fd;
        int one = 1;
        if (s->cfg.reuseport && uv_fileno((uv_handle_t *)&s->listener, &fd) == 0 &&
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
            return uv_translate_sys_error(errno);
    }
    if ((rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&ss, 0)) < 0 ||
        (rc = uv_listen((uv_stream_t *)&s->listener, 511, on_connection)) < 0)
        return rc;
    struct sockaddr_storage got;
    int len = sizeof(got);
    if ((rc = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&got, &len)) < 0)
        return rc;
    s->port = got.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&got)->sin6_port)
                                        : ntohs(((struct sockaddr_in *)&got)->sin_port);
    mesh_debug(s->name, "HTTP/1.1 listening on %s:%d", host, s->port);
    return 0;
}

const struct sockaddr *h1_srv_peer(const h1_srv_t *s)
{
    return (const struct sockaddr *)&s->peer;
}

const mesh_peer_id_t *h1_srv_peer_identity(const h1_srv_t *s)
{
    return s->peer_id;
}

int h1_srv_port(const h1_srv_t *s)
{
    return s->port;
}

unsigned h1_srv_connections(const h1_srv_t *s)
{
    return s->n_conns;
}

unsigned long h1_srv_accepted(const h1_srv_t *s)
{
    return s->accepted;
}

static void on_listener_closed(uv_handle_t *h)
{
    h1_srv_t *s = h->data;
    s->listening = 0;
    server_maybe_free(s);
}

static void srv_stop(h1_srv_t *s, int hard, void (*on_closed)(void *ud), void *ud)
{
    if (s->stopping && !hard)
        return;
    int first = !s->stopping;
    s->stopping = 1;
    if (first) {
        s->on_closed = on_closed;
        s->on_closed_ud = ud;
    }
    for (h1s_conn_t *sc = s->conns, *next; sc; sc = next) {
        next = sc->next;
        if (hard || (!sc->core && !sc->h2)) {
            conn_close(sc);
        } else if (!sc->closing && !sc->lingering) {
            core_shutdown(sc); /* wakes: pump() closes once the answers are out */
            pump(sc);
        }
    }
    if (!first)
        return; /* a hard close after a graceful one: the listener is closing already */
    if (s->listening)
        uv_close((uv_handle_t *)&s->listener, on_listener_closed);
    else
        server_maybe_free(s);
}

void h1_srv_shutdown(h1_srv_t *s, void (*on_closed)(void *ud), void *ud)
{
    srv_stop(s, 0, on_closed, ud);
}

void h1_srv_close(h1_srv_t *s, void (*on_closed)(void *ud), void *ud)
{
    srv_stop(s, 1, on_closed, ud);
}
