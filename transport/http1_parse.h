/*
 * transport/http1_parse.h: a bounded, sans-I/O HTTP/1.1 request parser for the probe server.
 *
 * Bytes in -> a complete request, "need more", or an error with the HTTP status to answer.
 * It parses the request line and headers (RFC 9112 grammar, strict: CRLF or bare LF line
 * ends, no obsolete line folding), pulls out what a probe server needs (method, path, version,
 * Connection, Content-Length, Authorization) and points into the caller's buffer: nothing is copied
 * or allocated. Requests with a body are accepted when Content-Length is small (the body is
 * skipped); Transfer-Encoding is refused.
 */
#ifndef H1_PARSE_H
#define H1_PARSE_H

#include <stddef.h>

/** Largest request head (request line + headers) accepted; bigger gets 431. */
#define H1_MAX_HEAD 8192
/** Largest request body skipped; bigger gets 413. */
#define H1_MAX_BODY 8192
/** Most header lines accepted; more gets 431. */
#define H1_MAX_HEADERS 64

/** Result codes of h1_parse() besides a positive length. */
enum {
    H1_PARSE_INCOMPLETE = 0,
    H1_PARSE_BAD = -400,       /* malformed: answer 400 and close */
    H1_PARSE_TOO_LARGE = -431, /* head too large: answer 431 and close */
    H1_PARSE_BODY_TOO_LARGE = -413,
    H1_PARSE_VERSION = -505, /* not HTTP/1.x: answer 505 and close */
};

/** A parsed request; pointers borrow the parsed buffer. */
typedef struct {
    const char *method;
    size_t method_len;
    /** The request target up to '?' or '#'. */
    const char *path;
    size_t path_len;
    /** The query: what follows '?' up to '#' (without the '?'); query_len 0 when none. */
    const char *query;
    size_t query_len;
    /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
    int minor;
    /** Nonzero when the connection stays open after the answer. */
    int keep_alive;
    /** Bytes of the head (request line and headers, with the empty line). */
    size_t head_len;
    /** Bytes of the body that follows the head, and where they are (NULL when none). */
    size_t body_len;
    const char *body;
    /** The Authorization header's value (trimmed), NULL when absent; a request with two is
     *  malformed (400). */
    const char *authorization;
    size_t authorization_len;
    /** The connection it came on (set by transport/http1_server.c for h1_req_peer; NULL from
     *  the parser). */
    const void *conn;
} h1_req_t;

/** Parses one request from buf[0..len). Returns the total length of the request (head +
 * body, > 0) when complete, H1_PARSE_INCOMPLETE when more bytes are needed, or a
 * negative H1_PARSE_* error (minus the HTTP status to answer). */
int h1_parse(const char *buf, size_t len, h1_req_t *req);

/** Nonzero when the request's method is m (case-sensitive, as HTTP methods are). */
int h1_req_method_is(const h1_req_t *req, const char *m);

/** Nonzero when the request's path is p. */
int h1_req_path_is(const h1_req_t *req, const char *p);

/**
 * Looks up the query parameter name ("a=1&b&c=x%20y": "b" has the value "") and writes its
 * value, percent-decoded ('+' is a space), NUL-terminated, into out (cap bytes). Returns the
 * value's length, -1 when the parameter is absent, or -2 when the value does not fit or is
 * malformed (a bad %-escape, or a NUL byte). The first occurrence wins.
 */
int h1_req_query(const h1_req_t *req, const char *name, char *out, size_t cap);

#endif
