/*
 * transport/http1_server.h: a small HTTP/1.1 server on libuv for JSON (and text) GET
 * endpoints: the sidecar's probes (/livez, /readyz) and the node's admin API (node/admin.h).
 *
 * A server holds a table of paths, each with a handler. GET (or HEAD) of a path in the table
 * (and POST, for paths added with h1_server_add_post: the mesh CA's /v1/ca/sign) calls its
 * handler, which writes the body through an h1_body_t and returns the status. The
 * body starts in a buffer inside the connection (H1_BODY_INLINE bytes: a probe answer fits, so
 * serving a probe allocates nothing in the server) and grows on the heap up to max_response
 * bytes for big answers (an admin listing of 10k instances is megabytes). The query string is
 * handed to the handler (h1_req_query() reads one parameter) and does not take part in the
 * path match.
 *
 * Errors answer a JSON body {"error": ...}: 404 for paths not in the table (listing the ones
 * that are), 405 for other methods, 400 for malformed requests, 431 for oversized heads, 413
 * for large request bodies, 505 for other HTTP versions, 500 when a handler fails or its body
 * exceeds max_response. Keep-alive and pipelining are supported (answers in order); idle
 * connections are closed after a timeout.
 *
 * Big answers are written in chunks of H1_WRITE_CHUNK bytes, the next one when libuv finished
 * the previous, so one connection never holds the loop for long. Memory is bounded: at most
 * max_response bytes per connection, at most max_queued bytes of answers not yet written over
 * the whole server (a connection whose answer would go beyond is closed, logged), and a reader
 * that stops reading is closed when no chunk completes within the idle timeout.
 */
#ifndef H1_SERVER_H
#define H1_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "transport/http1_parse.h"

struct json_t;

/** Bytes of body a connection holds without allocating. */
#define H1_BODY_INLINE 4096
/** Bytes handed to libuv per write of a big answer. */
#define H1_WRITE_CHUNK (64 * 1024)

/** Where a handler writes its answer's body. */
typedef struct h1_body h1_body_t;

/** Appends len bytes. Returns 0, or -1 when the body would exceed the server's max_response
 *  or memory is short (the answer becomes a 500). */
int h1_body_write(h1_body_t *b, const void *data, size_t len);

/** Appends a formatted string; 0 or -1 as h1_body_write(). */
int h1_body_printf(h1_body_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Appends the JSON text of j (compact, jansson's key order), streamed straight into the body;
 *  0 or -1 as h1_body_write(). */
int h1_body_json(h1_body_t *b, const struct json_t *j);

/** Sets the Content-Type (a string that outlives the answer); the default is
 *  "application/json". */
void h1_body_set_type(h1_body_t *b, const char *content_type);

/** Adds one header line to the answer ("WWW-Authenticate: Bearer", no CR LF; a string that
 *  outlives the answer; NULL removes it). */
void h1_body_set_header(h1_body_t *b, const char *line);

/** Bytes written so far. */
size_t h1_body_len(const h1_body_t *b);

/** Empties the body (the type stays). */
void h1_body_reset(h1_body_t *b);

/**
 * Answers one GET or HEAD of its path: writes the body into b and returns the HTTP status
 * (200, 404, 503, ...). A status outside 100..599, or a failed write into b, is answered with
 * 500 {"error":"the handler of PATH failed"} (logged). Runs on the server's loop; the request's
 * pointers are valid during the call only.
 */
typedef int (*h1_handler_fn)(void *ud, const h1_req_t *req, h1_body_t *b);

/**
 * Decides whether a request may be answered, before its path is looked up (so an unknown path
 * tells nothing either): returns 0 to go on, or the HTTP status to answer with the body the
 * guard wrote into b (401 with {"error": ...}, and a header line with h1_body_set_header).
 */
typedef int (*h1_guard_fn)(void *ud, const h1_req_t *req, h1_body_t *b);

/** Limits and names of a server; zeros mean the defaults. */
typedef struct {
    /** Idle connections (and answers making no progress) are closed after this many ms;
     *  0 means 30000. */
    unsigned idle_timeout_ms;
    /** Connections beyond this many are closed at once; 0 means 64. */
    unsigned max_connections;
    /** Largest body one answer may have; 0 means 64 MiB. */
    size_t max_response;
    /** Bytes of answers being written, over all connections; 0 means 256 MiB. */
    size_t max_queued;
    /** Log component ("sidecar", "admin"); NULL means "http". */
    const char *name;
    /** Non-NULL: connections are TLS with this holder's current context (transport/
     *  tls_holder.h, ALPN http/1.1; it must outlive the server). */
    struct mesh_tls_holder *tls;
    /** TLS: a handshake not done within this many ms closes the connection, counted and logged
     *  as a failed handshake (reason "timeout", like the gRPC listeners'); 0 means 10000,
     *  UINT64_MAX none (the idle timeout still closes a silent client). */
    uint64_t tls_handshake_timeout_ms;
} h1_server_config_t;

/** A server. */
typedef struct h1_server h1_server_t;

/** A new server on loop (not yet listening), or NULL when out of memory. */
h1_server_t *h1_server_new(uv_loop_t *loop, const h1_server_config_t *cfg);

/** Makes the connections accepted from now on TLS (cfg.tls), their handshakes bounded by
 *  handshake_timeout_ms (cfg.tls_handshake_timeout_ms); before listening. */
void h1_server_set_tls(h1_server_t *s, struct mesh_tls_holder *tls, uint64_t handshake_timeout_ms);

/**
 * Adds path (exact match, e.g. "/v1/routes"; copied) with its handler. Returns 0, or -1 when
 * the path is already in the table, does not begin with '/', or memory is short. Call on the
 * server's loop (or before it runs).
 */
int h1_server_add(h1_server_t *s, const char *path, h1_handler_fn fn, void *ud);

/** The address of the peer that sent req, "host:port" ("[v6]:port"), into out. 0, or -1 when
 *  unknown (a request that did not come through a server). For logs and audit records. */
int h1_req_peer(const h1_req_t *req, char *out, size_t cap);

/** Like h1_server_add, and POST of the path is answered by fn too (req->body, at most
 *  H1_MAX_BODY bytes; the handler tells the methods apart with h1_req_method_is). */
int h1_server_add_post(h1_server_t *s, const char *path, h1_handler_fn fn, void *ud);

/** Sets the guard every GET and HEAD passes first (fn NULL: none). */
void h1_server_set_guard(h1_server_t *s, h1_guard_fn fn, void *ud);

/** Removes path from the table; 0, or -1 when it was not there. */
int h1_server_remove(h1_server_t *s, const char *path);

/** Listens on host:port (port 0 picks a free one). Returns 0 or a negative libuv error. */
int h1_server_listen(h1_server_t *s, const char *host, int port);

/** The port listened on, or -1. */
int h1_server_port(const h1_server_t *s);

/** Requests answered so far. */
unsigned long h1_server_requests(const h1_server_t *s);

/** Bytes of answers not yet written (for tests and statistics). */
size_t h1_server_queued(const h1_server_t *s);

/** Closes the listener and every connection; when all handles are closed the server is freed
 * and on_closed (may be NULL) is called. */
void h1_server_close(h1_server_t *s, void (*on_closed)(void *ud), void *ud);

#endif
