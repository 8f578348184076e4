/*
 * transport/h1_server.c: the libuv binding behind transport/h1_server.h.
 *
 * One connection = one uv_tcp_t, one uv_timer_t, one read buffer and one h1_conn_t. Every
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
#include <sys/socket.h>

#include "common/log.h"

typedef struct h1s_conn h1s_conn_t;

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
    struct sockaddr_storage peer; /* of the connection being opened (h1_srv_peer) */
};

struct h1s_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wr;
    uv_shutdown_t shut;
    h1_srv_t *s;
    h1_conn_t *core;
    void *app_ud;
    h1s_conn_t *next, *prev;
    int handles; /* handles not yet closed */
    int closing;
    int writing;
    int reading;
    int lingering; /* FIN sent: reading and dropping until EOF */
    int pumping, again;
    int opened; /* on_open was called */
    int eof;    /* the client sent FIN; 2 when the core has been told */
    size_t in_len;
    char in[];
};

static void pump(h1s_conn_t *sc);

/* ---- closing ------------------------------------------------------------------------------ */

static void server_maybe_free(h1_srv_t *s)
{
    if (!s->stopping || s->conns || s->listening)
        return;
    void (*cb)(void *) = s->on_closed;
    void *ud = s->on_closed_ud;
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
    if (sc->opened && s->h.on_close)
        s->h.on_close(sc->app_ud);
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
    h1_conn_sent(sc->core, uv_now(sc->s->loop));
    pump(sc);
}

static void on_timer(uv_timer_t *t)
{
    h1s_conn_t *sc = t->data;
    if (sc->closing || sc->lingering)
        return;
    h1_conn_on_timer(sc->core, uv_now(sc->s->loop));
    pump(sc);
}

static void pump_once(h1s_conn_t *sc)
{
    h1_srv_t *s = sc->s;
    uint64_t now = uv_now(s->loop);
    if (sc->in_len && h1_conn_wants_read(sc->core)) {
        size_t used = h1_conn_feed(sc->core, sc->in, sc->in_len, now);
        if (used) {
            memmove(sc->in, sc->in + used, sc->in_len - used);
            sc->in_len -= used;
            sc->again = 1;
        }
    }
    /* The FIN is told to the core once it has taken every byte before it: pipelined requests
     * sent before a half-close are all read and answered. */
    if (sc->eof == 1 && (!sc->in_len || h1_conn_should_close(sc->core))) {
        sc->eof = 2;
        h1_conn_eof(sc->core, now);
    }
    if (!sc->writing) {
        const char *data;
        size_t n = h1_conn_take_out(sc->core, &data, now);
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
    if (!sc->writing && h1_conn_should_close(sc->core)) {
        uv_timer_stop(&sc->timer);
        if (sc->reading) {
            uv_read_stop((uv_stream_t *)&sc->tcp);
            sc->reading = 0;
        }
        conn_linger(sc);
        return;
    }
    int want = !sc->eof && h1_conn_wants_read(sc->core) && sc->in_len < s->cfg.read_buffer;
    if (want && !sc->reading) {
        if (uv_read_start((uv_stream_t *)&sc->tcp, on_alloc, on_read) == 0)
            sc->reading = 1;
    } else if (!want && sc->reading) {
        uv_read_stop((uv_stream_t *)&sc->tcp);
        sc->reading = 0;
    }
    uint64_t d = h1_conn_deadline(sc->core);
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

static void fw_head(void *ud, h1_conn_t *c, uint64_t id, const h1_conn_head_t *head)
{
    h1s_conn_t *sc = ud;
    if (sc->s->h.cbs.on_head)
        sc->s->h.cbs.on_head(sc->app_ud, c, id, head);
}

static void fw_body(void *ud, h1_conn_t *c, uint64_t id, const char *data, size_t len)
{
    h1s_conn_t *sc = ud;
    if (sc->s->h.cbs.on_body)
        sc->s->h.cbs.on_body(sc->app_ud, c, id, data, len);
}

static void fw_end(void *ud, h1_conn_t *c, uint64_t id)
{
    h1s_conn_t *sc = ud;
    if (sc->s->h.cbs.on_end)
        sc->s->h.cbs.on_end(sc->app_ud, c, id);
}

static void fw_error(void *ud, h1_conn_t *c, uint64_t id, int status, const char *why)
{
    h1s_conn_t *sc = ud;
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
    sc->core = h1_conn_new(&s->cfg.conn, &forward, sc, uv_now(s->loop));
    if (!sc->core) {
        mesh_error(s->name, "out of memory accepting a connection");
        conn_close(sc);
        return;
    }
    if (s->n_conns > s->cfg.max_connections) {
        mesh_warn(s->name, "connection refused: %u open (max-connections)", s->n_conns - 1);
        conn_close(sc);
        return;
    }
    s->accepted++;
    sc->opened = 1;
    int plen = sizeof(s->peer);
    if (uv_tcp_getpeername(&sc->tcp, (struct sockaddr *)&s->peer, &plen) < 0)
        s->peer.ss_family = AF_UNSPEC;
    if (s->h.on_open)
        sc->app_ud = s->h.on_open(s->ud, sc->core);
    uv_tcp_nodelay(&sc->tcp, 1);
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
        if (hard || !sc->core) {
            conn_close(sc);
        } else if (!sc->closing && !sc->lingering) {
            h1_conn_shutdown(sc->core); /* wakes: pump() closes once the answers are out */
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
