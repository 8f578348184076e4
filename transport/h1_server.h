/*
 * transport/h1_server.h: the gateway's HTTP listener on libuv, a thin binding of the sans-I/O
 * connections in transport/h1_conn.h (HTTP/1.1) and transport/h2_srv.h (HTTP/2 cleartext).
 *
 * When the handler serves HTTP/2 (on_open_h2 set), the first bytes of each connection decide:
 * the client preface (`PRI * HTTP/2.0...`) makes it an h2c connection (prior knowledge); anything
 * else HTTP/1.1, whose first request may ask `Upgrade: h2c` (with `HTTP2-Settings`): the binding
 * then keeps that request to itself, reads its body (within max_body), and replaces the HTTP/1.1
 * core by an HTTP/2 one that answers `101 Switching Protocols` and serves the request as stream
 * 1 (the application sees on_close of the HTTP/1.1 connection, which had no request, then
 * on_open_h2). An Upgrade on a later request, or to anything else, is ignored (answered in
 * HTTP/1.1, as RFC 9113 allows).
 *
 * The server accepts TCP connections, gives each an h1_conn_t, and moves bytes: reads go into
 * one fixed buffer per connection and are fed to the core (what the core does not take stays
 * there, and reading stops until the core wants more: that is the input backpressure); what
 * the core has to write is written, one write at a time; one timer per connection follows the
 * core's deadline. When the core says close, the connection half-closes (FIN), reads and drops
 * what the client still sends for a short while (so no RST destroys the last answer), then
 * closes. The application sees only the core: its callbacks (h1_conn_cbs_t, on_wake excepted)
 * get the h1_conn_t to answer on, from any callback or later on the same loop.
 *
 * Not to be confused with transport/http1_server.h (the probes' and admin API's small GET
 * server, h1_server_*): this one streams bodies both ways and is the gateway's (h1_srv_*).
 */
#ifndef TRANSPORT_H1_SERVER_H
#define TRANSPORT_H1_SERVER_H

#include <stddef.h>
#include <uv.h>

#include "common/peer_id.h"
#include "transport/h1_conn.h"
#include "transport/h2_srv.h"

/** A listener and its connections. */
typedef struct h1_srv h1_srv_t;

/** What the application does with connections. */
typedef struct {
    /** A connection was accepted; returns the ud its callbacks get (may be NULL). May be NULL.*/
    void *(*on_open)(void *srv_ud, h1_conn_t *c);
    /** A connection opened by on_open was freed (its open requests have had on_error(0)
     *  first); its h1_conn_t is gone. May be NULL. */
    void (*on_close)(void *conn_ud);
    /** The request callbacks; on_wake is the binding's own and is ignored here. */
    h1_conn_cbs_t cbs;
    /** An HTTP/2 connection began (prior knowledge, or upgraded); returns its ud. NULL: HTTP/2
     *  is not served (a preface is answered by HTTP/1.1's 505). */
    void *(*on_open_h2)(void *srv_ud, h2s_conn_t *c);
    /** The HTTP/2 request callbacks; on_wake is ignored here. */
    h2s_conn_cbs_t h2cbs;
} h1_srv_handler_t;

/** Limits of a server; zeros mean the defaults. */
typedef struct {
    /** Limits of each connection (h1_conn_config_t's defaults for zeros). */
    h1_conn_config_t conn;
    /** Connections beyond this many are closed at once; 0 means 1024. */
    unsigned max_connections;
    /** Bytes of each connection's read buffer; 0 means 64 KiB. */
    size_t read_buffer;
    /** Nonzero: SO_REUSEPORT on the listener, so each worker loop can listen on the same
     *  port (the kernel spreads connections), as the proxy's workers do. */
    int reuseport;
    /** Log component; NULL means "gateway". */
    const char *name;
    /** Non-NULL: connections are TLS with this holder's current context (transport/
     *  tls_holder.h; ALPN "h2,http/1.1"; it must outlive the server). The first plaintext
     *  bytes still decide between HTTP/2 and HTTP/1.1, as without TLS. */
    struct mesh_tls_holder *tls;
    /** TLS: a handshake not done within this many ms closes the connection, counted and logged
     *  as a failed handshake (reason "timeout", like the gRPC listeners'); 0 means 10000,
     *  UINT64_MAX none (then the header timeout closes a silent client, uncounted). */
    uint64_t tls_handshake_timeout_ms;
} h1_srv_config_t;

/** A new server on loop (not yet listening), or NULL when out of memory. handler is copied. */
h1_srv_t *h1_srv_new(uv_loop_t *loop, const h1_srv_config_t *cfg, const h1_srv_handler_t *handler,
                     void *ud);

/** Listens on host:port (IPv4 or IPv6 literal; port 0 picks a free one). 0 or a negative libuv
 *  error. */
int h1_srv_listen(h1_srv_t *s, const char *host, int port);

/** The address of the client whose connection is being opened: valid during on_open only
 *  (family AF_UNSPEC when unknown). */
const struct sockaddr *h1_srv_peer(const h1_srv_t *s);

/** What the certificate of the client whose connection is being opened proves (TLS with client
 *  certificates asked for: transport/tls_peer.h), or NULL (none, or not TLS): valid during
 *  on_open, and the object itself until that connection's on_close has returned. */
const mesh_peer_id_t *h1_srv_peer_identity(const h1_srv_t *s);

/** The port listened on, or -1. */
int h1_srv_port(const h1_srv_t *s);

/** Connections open now. */
unsigned h1_srv_connections(const h1_srv_t *s);

/** Connections accepted so far. */
unsigned long h1_srv_accepted(const h1_srv_t *s);

/** Graceful stop: no new connections; each connection answers the requests it has begun (the
 *  last answer says Connection: close), then closes. on_closed (may be NULL) is called and
 *  the server freed when everything has closed. */
void h1_srv_shutdown(h1_srv_t *s, void (*on_closed)(void *ud), void *ud);

/** Hard stop: closes the listener and every connection now (their requests get on_error(0));
 *  then as h1_srv_shutdown(). After h1_srv_shutdown() (before its on_closed) it closes what is
 *  left now and keeps the first on_closed. */
void h1_srv_close(h1_srv_t *s, void (*on_closed)(void *ud), void *ud);

#endif
