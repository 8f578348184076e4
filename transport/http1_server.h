/*
 * transport/http1_server.h: a tiny HTTP/1.1 server on libuv (the sidecar's probes today).
 *
 * GET (or HEAD) /livez and /readyz answer with the status code and JSON body that the
 * sidecar's callbacks produce. Anything else gets a JSON error: 404 for other paths, 405 for
 * other methods, 400 for malformed requests, 431 for oversized heads, 413 for large bodies,
 * 505 for other HTTP versions. Keep-alive and pipelining are supported; idle connections are
 * closed after a timeout. Requests are parsed by transport/http1_parse.h; each connection owns
 * fixed buffers, so serving a probe allocates nothing.
 */
#ifndef H1_SERVER_H
#define H1_SERVER_H

#include <stddef.h>
#include <uv.h>

/** Room a handler has for its JSON body. */
#define H1_BODY_MAX 2048

/** Produces a probe answer: writes up to cap bytes of JSON into body, sets *len, returns the
 * HTTP status (200, 503, ...). */
typedef int (*h1_handler_fn)(void *ud, char *body, size_t cap, size_t *len);

/** What the server answers with. */
typedef struct {
    /** GET /livez; NULL answers 200 {"status":"alive"}. */
    h1_handler_fn livez;
    /** GET /readyz; NULL answers 503 {"ready":false}. */
    h1_handler_fn readyz;
    void *ud;
    /** Idle connections are closed after this many ms; 0 means 30000. */
    unsigned idle_timeout_ms;
    /** Connections beyond this many are closed at once; 0 means 64. */
    unsigned max_connections;
} h1_server_config_t;

/** A probe server. */
typedef struct h1_server h1_server_t;

/** A new server on loop (not yet listening), or NULL when out of memory. */
h1_server_t *h1_server_new(uv_loop_t *loop, const h1_server_config_t *cfg);

/** Listens on host:port (port 0 picks a free one). Returns 0 or a negative libuv error. */
int h1_server_listen(h1_server_t *s, const char *host, int port);

/** The port listened on, or -1. */
int h1_server_port(const h1_server_t *s);

/** Requests answered so far. */
unsigned long h1_server_requests(const h1_server_t *s);

/** Closes the listener and every connection; when all handles are closed the server is freed
 * and on_closed (may be NULL) is called. */
void h1_server_close(h1_server_t *s, void (*on_closed)(void *ud), void *ud);

#endif
