/*
 * sidecar/probe_http.h: a tiny HTTP/1.1 server on libuv for Kubernetes probes.
 *
 * GET (or HEAD) /livez and /readyz answer with the status code and JSON body that the
 * sidecar's callbacks produce. Anything else gets a JSON error: 404 for other paths, 405 for
 * other methods, 400 for malformed requests, 431 for oversized heads, 413 for large bodies,
 * 505 for other HTTP versions. Keep-alive and pipelining are supported; idle connections are
 * closed after a timeout. Requests are parsed by sidecar/probe_parse.h; each connection owns
 * fixed buffers, so serving a probe allocates nothing.
 */
#ifndef MESH_PROBE_HTTP_H
#define MESH_PROBE_HTTP_H

#include <stddef.h>
#include <uv.h>

/** Room a handler has for its JSON body. */
#define MESH_PROBE_BODY_MAX 2048

/** Produces a probe answer: writes up to cap bytes of JSON into body, sets *len, returns the
 * HTTP status (200, 503, ...). */
typedef int (*mesh_probe_handler_fn)(void *ud, char *body, size_t cap, size_t *len);

/** What the server answers with. */
typedef struct {
    /** GET /livez; NULL answers 200 {"status":"alive"}. */
    mesh_probe_handler_fn livez;
    /** GET /readyz; NULL answers 503 {"ready":false}. */
    mesh_probe_handler_fn readyz;
    void *ud;
    /** Idle connections are closed after this many ms; 0 means 30000. */
    unsigned idle_timeout_ms;
    /** Connections beyond this many are closed at once; 0 means 64. */
    unsigned max_connections;
} mesh_probe_config_t;

/** A probe server. */
typedef struct mesh_probe_server mesh_probe_server_t;

/** A new server on loop (not yet listening), or NULL when out of memory. */
mesh_probe_server_t *mesh_probe_server_new(uv_loop_t *loop, const mesh_probe_config_t *cfg);

/** Listens on host:port (port 0 picks a free one). Returns 0 or a negative libuv error. */
int mesh_probe_server_listen(mesh_probe_server_t *s, const char *host, int port);

/** The port listened on, or -1. */
int mesh_probe_server_port(const mesh_probe_server_t *s);

/** Requests answered so far. */
unsigned long mesh_probe_server_requests(const mesh_probe_server_t *s);

/** Closes the listener and every connection; when all handles are closed the server is freed
 * and on_closed (may be NULL) is called. */
void mesh_probe_server_close(mesh_probe_server_t *s, void (*on_closed)(void *ud), void *ud);

#endif
