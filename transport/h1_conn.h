/*
 * transport/h1_conn.h: the gateway's HTTP/1.1 server connection, sans-I/O.
 *
 * One h1_conn_t is one client connection. Bytes read from the socket go in (h1_conn_feed());
 * events come out through a small callback table: a request head (method, target, headers),
 * body chunks (Content-Length or chunked, decoded), the request's end, and "this request is
 * over" errors carrying the HTTP status the connection answered. Responses go in per request
 * (h1_conn_respond(), h1_conn_body(), h1_conn_end(): head, body chunks, end) and bytes to
 * write come out (h1_conn_take_out() / h1_conn_sent()), always in request order however the
 * application orders its answers to pipelined requests. The connection also says when to
 * stop reading (h1_conn_wants_read(): too many unanswered requests, or the application paused
 * the body), when to close (h1_conn_should_close()), and when its next timeout falls
 * (h1_conn_deadline() / h1_conn_on_timer(), the clock is the caller's).
 *
 * The parser is Debian's libhttp-parser (node's http_parser 2.9.4); this file adds what a
 * server needs on top of it: limits with their statuses (400, 405, 408, 413, 414, 417, 431,
 * 501, 505), `Expect: 100-continue`, keep-alive and HTTP/1.0, ordering of pipelined answers,
 * chunked or close-delimited response bodies, graceful shutdown. Every buffer belongs to the
 * connection and is reused: once warmed up, requests and responses allocate nothing.
 *
 * Request ids count from 0 on each connection. All pointers handed to callbacks are valid
 * during the call only. Callbacks may call the response functions (also for other ids),
 * h1_conn_pause()/h1_conn_resume() and h1_conn_shutdown(), but not h1_conn_free().
 */
#ifndef TRANSPORT_H1_CONN_H
#define TRANSPORT_H1_CONN_H

#include <stddef.h>
#include <stdint.h>

/** A connection. */
typedef struct h1_conn h1_conn_t;

/** One header field, as received (names keep their case) or as given to h1_conn_respond(). */
typedef struct {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} h1_conn_hdr_t;

/** A request head, valid during on_head only. */
typedef struct {
    /** The method ("GET", "POST", ...), NUL-terminated. */
    const char *method;
    /** The request target as sent ("/pkg.Svc/Method?x=1"), NUL-terminated. */
    const char *target;
    size_t target_len;
    /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
    int minor;
    const h1_conn_hdr_t *headers;
    size_t n_headers;
    /** Nonzero when the body is chunked. */
    int chunked;
    /** The Content-Length, or -1 when there is none (chunked, or no body). */
    int64_t content_length;
    /** Nonzero when the request has a body (on_body/on_end follow; else on_end follows). */
    int has_body;
    /** Nonzero when the client sent `Expect: 100-continue` (see h1_conn_continue()). */
    int expect_continue;
    /** Nonzero when the client asks to keep the connection open. */
    int keep_alive;
    /** Nonzero for HEAD (the response body is not sent). */
    int is_head;
} h1_conn_head_t;

/**
 * What a connection tells its owner. ud is the one given to h1_conn_new().
 * on_head: a request head arrived (request id). on_body: a piece of its body (decoded).
 * on_end: its body is complete. on_error: the request is over without (more of) its body:
 * status is the HTTP status the connection answered itself (400, 408, 413, ...) or 0 when the
 * connection is closing and no answer can be given (peer gone, timeout, earlier close); after
 * on_error the response functions return -1 for this id. on_error is only called for requests
 * whose head was delivered and whose response has not ended.
 * on_drain: buffered output fell below half of out_high after h1_conn_body() returned 1.
 * on_wake: there are bytes to take, reading may resume, or the connection should close (for
 * the I/O binding; may be NULL).
 */
typedef struct {
    void (*on_head)(void *ud, h1_conn_t *c, uint64_t id, const h1_conn_head_t *head);
    void (*on_body)(void *ud, h1_conn_t *c, uint64_t id, const char *data, size_t len);
    void (*on_end)(void *ud, h1_conn_t *c, uint64_t id);
    void (*on_error)(void *ud, h1_conn_t *c, uint64_t id, int status, const char *why);
    void (*on_drain)(void *ud, h1_conn_t *c);
    void (*on_wake)(void *ud, h1_conn_t *c);
} h1_conn_cbs_t;

/** Limits; zeros mean the defaults. */
typedef struct {
    /** Bytes of request line and header fields (names and values, 4 more per field); more
     *  gets 431. 0 means 8192. */
    size_t max_head;
    /** Bytes of the request target; more gets 414. 0 means 4096 (capped at max_head). */
    size_t max_target;
    /** Header fields per request; more gets 431. 0 means 100. */
    size_t max_headers;
    /** Bytes of a request body; more gets 413 (per request: h1_conn_body_limit()). 0 means
     *  1 MiB. */
    uint64_t max_body;
    /** Requests received whose responses are not yet all taken; at this many the connection
     *  stops reading. 0 means 16. */
    unsigned max_pipeline;
    /** Output bytes buffered past which h1_conn_body() returns 1. 0 means 256 KiB. */
    size_t out_high;
    /** A request head must arrive within this many ms of its first byte (else 408). 0 means
     *  10000. */
    unsigned header_timeout_ms;
    /** An idle connection, a body that stalls, or output that makes no progress for this long
     *  is closed. 0 means 60000. */
    unsigned idle_timeout_ms;
} h1_conn_config_t;

/** A new connection (cfg may be NULL), or NULL when out of memory. now_ms starts the idle
 *  timer. */
h1_conn_t *h1_conn_new(const h1_conn_config_t *cfg, const h1_conn_cbs_t *cbs, void *ud,
                       uint64_t now_ms);

/** Frees c. Requests whose responses have not ended get on_error(status 0) first. */
void h1_conn_free(h1_conn_t *c);

/* ---- input ---------------------------------------------------------------------------------- */

/**
 * Hands len bytes read from the socket to c. Returns how many were used: fewer than len when
 * c stopped reading (h1_conn_wants_read() is 0; keep the rest and feed it again when reading
 * resumes). Bytes after the last request c will answer are used and dropped.
 */
size_t h1_conn_feed(h1_conn_t *c, const char *data, size_t len, uint64_t now_ms);

/** The client closed its side (EOF). Answers already owed are still written. */
void h1_conn_eof(h1_conn_t *c, uint64_t now_ms);

/** Nonzero when c wants bytes (else stop reading until on_wake). */
int h1_conn_wants_read(const h1_conn_t *c);

/** Stops delivering request bytes (body backpressure). Takes effect after the current
 *  callback, at the latest after one more body piece. */
void h1_conn_pause(h1_conn_t *c);

/** Undoes h1_conn_pause(); reading resumes (on_wake). */
void h1_conn_resume(h1_conn_t *c);

/** Nonzero while the application has c paused (h1_conn_pause() without h1_conn_resume()).
 *  While paused, no idle or body timeout runs: a slow upstream is not the client's fault. */
int h1_conn_paused(const h1_conn_t *c);

/**
 * Sets the body limit of request id, the one whose head was just delivered (call it from
 * on_head): max_body bytes (0: no limit) instead of the configured max_body. A stream whose
 * body is consumed as it arrives (NDJSON lines, bounded by pausing) needs no whole-body limit.
 * A Content-Length over the limit is answered 413 right after on_head returns. 0, or -1 when
 * id is not the request being read.
 */
int h1_conn_body_limit(h1_conn_t *c, uint64_t id, uint64_t max_body);

/* ---- responses ------------------------------------------------------------------------------ */

/** Sends `100 Continue` for request id (in order, before its response). 0, or -1 when id is
 *  not waiting for one (no Expect, already sent, response begun, or unknown). */
int h1_conn_continue(h1_conn_t *c, uint64_t id);

/**
 * Begins the response to request id: status (100..599, not 1xx), extra header fields (the
 * connection writes Content-Length or Transfer-Encoding and Connection itself: passing them
 * is an error), and the body length, or -1 when unknown (chunked for HTTP/1.1; for HTTP/1.0
 * the body ends with the connection). Returns 0, or -1 (unknown or finished id, a response
 * already begun, a bad status, a field name that is not a token or a value with CR, LF or
 * NUL). A response may begin before its request's body has been read.
 */
int h1_conn_respond(h1_conn_t *c, uint64_t id, int status, const h1_conn_hdr_t *headers,
                    size_t n_headers, int64_t content_length);

/** Appends body bytes to the response of id (one chunk when chunked). Returns 0, 1 when
 *  the output buffered is over out_high (the data was taken; wait for on_drain), or -1
 *  (no response begun, ended, more than the Content-Length, out of memory). */
int h1_conn_body(h1_conn_t *c, uint64_t id, const void *data, size_t len);

/** Ends the response of id. 0, or -1 (not begun, already ended, fewer bytes than the
 *  Content-Length: then the connection closes after what was sent). */
int h1_conn_end(h1_conn_t *c, uint64_t id);

/** Answers id completely with a JSON body {"error": message} (built with jansson). 0 or -1
 *  as h1_conn_respond(). */
int h1_conn_respond_error(h1_conn_t *c, uint64_t id, int status, const char *message);

/* ---- output and life ------------------------------------------------------------------------ */

/**
 * Bytes to write: sets *data and returns their length (0 when none). The bytes stay valid and
 * unchanged until h1_conn_sent(); until then h1_conn_take_out() returns 0.
 */
size_t h1_conn_take_out(h1_conn_t *c, const char **data, uint64_t now_ms);

/** The bytes of the last h1_conn_take_out() were written. */
void h1_conn_sent(h1_conn_t *c, uint64_t now_ms);

/** Output bytes buffered and not yet sent. */
size_t h1_conn_out_buffered(const h1_conn_t *c);

/** Nonzero when c has nothing more to write and the connection should be closed. */
int h1_conn_should_close(const h1_conn_t *c);

/** Stops taking new requests: requests already begun are answered, the last answer says
 *  `Connection: close`, then h1_conn_should_close() becomes nonzero. */
void h1_conn_shutdown(h1_conn_t *c);

/** The time (ms, the caller's clock) of the next timeout, or 0 when none is running. */
uint64_t h1_conn_deadline(const h1_conn_t *c);

/** Handles timeouts due at now_ms: a slow head or body gets 408 and a close, an idle
 *  connection or stalled output a close. */
void h1_conn_on_timer(h1_conn_t *c, uint64_t now_ms);

/** Requests begun on c so far. */
uint64_t h1_conn_requests(const h1_conn_t *c);

/** Finds header name (case-insensitive) in head; the first match, or NULL. */
const h1_conn_hdr_t *h1_conn_head_find(const h1_conn_head_t *head, const char *name);

/** The reason phrase of status ("OK", "Not Found", ...; "Status" when unknown). */
const char *h1_conn_reason(int status);

#endif
