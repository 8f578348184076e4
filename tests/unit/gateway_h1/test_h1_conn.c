/*
 * tests/unit/gateway_h1/test_h1_conn.c: the sans-I/O HTTP/1.1 server connection
 * (transport/h1_conn.h) driven by byte scripts, without a socket.
 *
 * A small application records every event as text ("H0 POST /x 1.1 cl=5", "B0 5", "E0",
 * "X0 413") and answers each request when its body has ended with "METHOD TARGET BODYLEN".
 * Every script is run whole, split at every byte boundary, and fed one byte at a time: the
 * events and the bytes written must be the same each time. Then pipelining order (answers
 * given in reverse), chunked bodies both ways, 100-continue, the limits and their statuses,
 * keep-alive and Connection: close, HTTP/1.0, backpressure, a request stream (the body limit
 * lifted, reading paused and resumed), timeouts and shutdown.
 */
#include "transport/h1_conn.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/check.h"

/* ---- the recording application -------------------------------------------------------------- */

enum { ANSWER_ON_END, ANSWER_NEVER, ANSWER_REVERSE_3, ANSWER_STREAM, ANSWER_ON_HEAD };

typedef struct {
    int mode;
    char log[8192];
    size_t log_len;
    char out[65536];
    size_t out_len;
    size_t body_len[64];
    char method[64][16];
    char target[64][64];
    int minor;
    int ended[64];
    uint64_t n_ended;
    int auto_continue;
} app_t;

static void logf_(app_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(app_t *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(a->log + a->log_len, sizeof(a->log) - a->log_len, fmt, ap);
    va_end(ap);
    CHECK(n > 0 && (size_t)n < sizeof(a->log) - a->log_len);
    a->log_len += (size_t)n;
}

static void answer(app_t *a, h1_conn_t *c, uint64_t id)
{
    char body[160];
    int n =
        snprintf(body, sizeof(body), "%s %s %zu", a->method[id], a->target[id], a->body_len[id]);
    h1_conn_hdr_t type = {"Content-Type", 12, "text/plain", 10};
    if (a->mode == ANSWER_STREAM) {
        CHECK_EQ(h1_conn_respond(c, id, 200, &type, 1, -1), 0);
        CHECK_EQ(h1_conn_body(c, id, "abc", 3), 0);
        CHECK_EQ(h1_conn_body(c, id, body, (size_t)n), 0);
    } else {
        CHECK_EQ(h1_conn_respond(c, id, 200, &type, 1, n), 0);
        CHECK_EQ(h1_conn_body(c, id, body, (size_t)n), 0);
    }
    CHECK_EQ(h1_conn_end(c, id), 0);
}

static void on_head(void *ud, h1_conn_t *c, uint64_t id, const h1_conn_head_t *h)
{
    app_t *a = ud;
    CHECK(id < 64);
    snprintf(a->method[id], sizeof(a->method[id]), "%s", h->method);
    snprintf(a->target[id], sizeof(a->target[id]), "%s", h->target);
    CHECK_EQ(strlen(h->target), h->target_len);
    a->body_len[id] = 0;
    logf_(a, "H%llu %s %s 1.%d", (unsigned long long)id, h->method, h->target, h->minor);
    if (h->content_length >= 0)
        logf_(a, " cl=%lld", (long long)h->content_length);
    if (h->chunked)
        logf_(a, " chunked");
    if (h->expect_continue)
        logf_(a, " expect");
    if (!h->keep_alive)
        logf_(a, " close");
    const h1_conn_hdr_t *x = h1_conn_head_find(h, "x-test");
    if (x)
        logf_(a, " x-test=%.*s", (int)x->value_len, x->value);
    logf_(a, " n=%zu|", h->n_headers);
    if (h->expect_continue && a->auto_continue)
        CHECK_EQ(h1_conn_continue(c, id), 0);
    if (a->mode == ANSWER_ON_HEAD)
        answer(a, c, id);
}

static void on_body(void *ud, h1_conn_t *c, uint64_t id, const char *data, size_t len)
{
    app_t *a = ud;
    CHECK(len > 0);
    a->body_len[id] += len;
}

static void on_end(void *ud, h1_conn_t *c, uint64_t id)
{
    app_t *a = ud;
    logf_(a, "B%llu %zu|E%llu|", (unsigned long long)id, a->body_len[id], (unsigned long long)id);
    a->ended[id] = 1;
    a->n_ended++;
    if (a->mode == ANSWER_ON_END || a->mode == ANSWER_STREAM)
        answer(a, c, id);
    if (a->mode == ANSWER_REVERSE_3 && a->n_ended == 3)
        for (int i = 2; i >= 0; i--)
            answer(a, c, (uint64_t)i);
}

static void on_error(void *ud, h1_conn_t *c, uint64_t id, int status, const char *why)
{
    app_t *a = ud;
    CHECK(why && *why);
    logf_(a, "X%llu %d|", (unsigned long long)id, status);
}

static const h1_conn_cbs_t cbs = {on_head, on_body, on_end, on_error, NULL, NULL};

/* Takes every byte c has to write into a->out. */
static void drain(app_t *a, h1_conn_t *c)
{
    const char *d;
    size_t n;
    while ((n = h1_conn_take_out(c, &d, 0)) > 0) {
        CHECK(n <= sizeof(a->out) - 1 - a->out_len);
        memcpy(a->out + a->out_len, d, n);
        a->out_len += n;
        a->out[a->out_len] = 0;
        h1_conn_sent(c, 0);
    }
}

/* Feeds data in pieces of the sizes given (0-terminated list; the rest in one piece),
 * keeping what c did not use as a binding would. */
static void feed_pieces(app_t *a, h1_conn_t *c, const char *data, size_t len, const size_t *cuts)
{
    char pending[16384];
    size_t plen = 0, off = 0;
    for (int i = 0;; i++) {
        size_t n = cuts && cuts[i] ? cuts[i] : len - off;
        if (n > len - off)
            n = len - off;
        CHECK(plen + n <= sizeof(pending));
        memcpy(pending + plen, data + off, n);
        plen += n;
        off += n;
        for (;;) {
            size_t used = h1_conn_wants_read(c) ? h1_conn_feed(c, pending, plen, 0) : 0;
            memmove(pending, pending + used, plen - used);
            plen -= used;
            size_t before = a->out_len;
            drain(a, c);
            if (!plen || (!used && before == a->out_len))
                break;
        }
        if (off == len)
            break;
    }
}

static h1_conn_t *run(app_t *a, int mode, const h1_conn_config_t *cfg, const char *data, size_t len,
                      const size_t *cuts)
{
    memset(a, 0, sizeof(*a));
    a->mode = mode;
    a->auto_continue = 1;
    h1_conn_t *c = h1_conn_new(cfg, &cbs, a, 0);
    CHECK(c);
    feed_pieces(a, c, data, len, cuts);
    return c;
}

/* Runs script whole, split in two at every byte, and byte by byte: same events, same bytes.
 * Leaves the whole run's results in *whole. Returns should_close of the whole run. */
static int check_splits(app_t *whole, int mode, const h1_conn_config_t *cfg, const char *script)
{
    size_t len = strlen(script);
    h1_conn_t *c = run(whole, mode, cfg, script, len, NULL);
    int closing = h1_conn_should_close(c);
    h1_conn_free(c);
    static app_t other;
    for (size_t cut = 1; cut <= len; cut++) {
        size_t cuts[3] = {cut, 0, 0};
        c = run(&other, mode, cfg, script, len, cuts);
        if (strcmp(other.log, whole->log) != 0 || strcmp(other.out, whole->out) != 0) {
            fprintf(stderr, "split at %zu differs:\n%s\n%s\nvs whole:\n%s\n%s\n", cut, other.log,
                    other.out, whole->log, whole->out);
            exit(1);
        }
        CHECK_EQ(h1_conn_should_close(c), closing);
        h1_conn_free(c);
    }
    size_t ones[16384];
    CHECK(len < 16384);
    for (size_t i = 0; i < len; i++)
        ones[i] = 1;
    ones[len] = 0;
    c = run(&other, mode, cfg, script, len, ones);
    CHECK_STR(other.log, whole->log);
    CHECK_STR(other.out, whole->out);
    h1_conn_free(c);
    return closing;
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void test_get_keep_alive(void)
{
    app_t a;
    int closing = check_splits(&a, ANSWER_ON_END, NULL,
                               "GET /a?x=1 HTTP/1.1\r\nHost: h\r\nX-Test: yes\r\n\r\n");
    CHECK_STR(a.log, "H0 GET /a?x=1 1.1 x-test=yes n=2|B0 0|E0|");
    CHECK_STR(a.out, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\n"
                     "GET /a?x=1 0");
    CHECK_EQ(closing, 0);
}

static void test_post_content_length(void)
{
    app_t a;
    check_splits(&a, ANSWER_ON_END, NULL,
                 "POST /pkg.Svc/M HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world"
                 "POST /b HTTP/1.1\r\nHost: h\r\ncontent-length: 0\r\n\r\n");
    CHECK_STR(a.log, "H0 POST /pkg.Svc/M 1.1 cl=11 n=2|B0 11|E0|H1 POST /b 1.1 cl=0 n=2|B1 0|E1|");
    CHECK_CONTAINS(a.out, "Content-Length: 18\r\n\r\nPOST /pkg.Svc/M 11HTTP/1.1 200 OK");
    CHECK_CONTAINS(a.out, "POST /b 0");
}

static void test_chunked_request(void)
{
    app_t a;
    check_splits(&a, ANSWER_ON_END, NULL,
                 "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
                 "GET /after HTTP/1.1\r\nHost: h\r\n\r\n");
    CHECK_STR(a.log, "H0 POST /c 1.1 chunked n=2|B0 11|E0|H1 GET /after 1.1 n=1|B1 0|E1|");
    CHECK_CONTAINS(a.out, "POST /c 11");
    CHECK_CONTAINS(a.out, "GET /after 0");
}

static void test_chunked_response(void)
{
    app_t a;
    int closing = check_splits(&a, ANSWER_STREAM, NULL, "GET /s HTTP/1.1\r\nHost: h\r\n\r\n");
    CHECK_STR(a.out, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked"
                     "\r\n\r\n3\r\nabc\r\n8\r\nGET /s 0\r\n0\r\n\r\n");
    CHECK_EQ(closing, 0);
    /* HTTP/1.0 cannot take chunks: the body ends with the connection. */
    closing = check_splits(&a, ANSWER_STREAM, NULL, "GET /s HTTP/1.0\r\n\r\n");
    CHECK_STR(a.out, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n"
                     "abcGET /s 0");
    CHECK_EQ(closing, 1);
}

static void test_pipelining_order(void)
{
    app_t a;
    check_splits(&a, ANSWER_REVERSE_3, NULL,
                 "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n"
                 "POST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
                 "GET /3 HTTP/1.1\r\nHost: h\r\n\r\n");
    /* Answered 3, 2, 1; written 1, 2, 3. */
    const char *p1 = strstr(a.out, "GET /1 0"), *p2 = strstr(a.out, "POST /2 3"),
               *p3 = strstr(a.out, "GET /3 0");
    CHECK(p1 && p2 && p3 && p1 < p2 && p2 < p3);
    CHECK(strncmp(a.out, "HTTP/1.1 200 OK", 15) == 0);
}

static void test_continue(void)
{
    /* The application asks for the body: 100 Continue comes first, then the answer. */
    app_t a;
    const char *head = "PUT /u HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4"
                       "\r\n\r\n";
    h1_conn_t *c = run(&a, ANSWER_ON_END, NULL, head, strlen(head), NULL);
    CHECK_STR(a.out, "HTTP/1.1 100 Continue\r\n\r\n");
    CHECK_STR(a.log, "H0 PUT /u 1.1 cl=4 expect n=3|");
    feed_pieces(&a, c, "data", 4, NULL);
    CHECK_CONTAINS(a.out, "100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n");
    CHECK_CONTAINS(a.out, "PUT /u 4");
    CHECK(!strstr(a.out, "Connection: close"));
    CHECK_EQ(h1_conn_should_close(c), 0);
    h1_conn_free(c);

    /* The application answers at once without 100: the connection closes after. */
    memset(&a, 0, sizeof(a));
    a.mode = ANSWER_ON_HEAD;
    c = h1_conn_new(NULL, &cbs, &a, 0);
    feed_pieces(&a, c, head, strlen(head), NULL);
    CHECK(strncmp(a.out, "HTTP/1.1 200 OK\r\n", 17) == 0);
    CHECK_CONTAINS(a.out, "Connection: close\r\n");
    CHECK(!strstr(a.out, "100 Continue"));
    CHECK_EQ(h1_conn_should_close(c), 1);
    h1_conn_free(c);

    /* A client that does not wait: the body before any 100; no 100 is sent. */
    app_t b;
    check_splits(&b, ANSWER_ON_END, NULL,
                 "PUT /u HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4"
                 "\r\n\r\ndata");
    CHECK_CONTAINS(b.out, "PUT /u 4");
}

/* Runs a bad script: the status line, a JSON error body, Connection: close, closing. */
static void check_error(const h1_conn_config_t *cfg, const char *script, int status,
                        const char *log)
{
    app_t a;
    int closing = check_splits(&a, ANSWER_ON_END, cfg, script);
    char line[64];
    snprintf(line, sizeof(line), "HTTP/1.1 %d ", status);
    if (!strstr(a.out, line)) {
        fprintf(stderr, "expected %d for %s, got:\n%s\n", status, script, a.out);
        exit(1);
    }
    CHECK_CONTAINS(strstr(a.out, line), "Connection: close\r\n");
    CHECK_CONTAINS(strstr(a.out, line), "{\"error\":\"");
    CHECK_EQ(closing, 1);
    if (strcmp(a.log, log) != 0) {
        fprintf(stderr, "events for %s: expected \"%s\", got \"%s\"\n", script, log, a.log);
        exit(1);
    }
}

static void test_limits(void)
{
    h1_conn_config_t cfg = {.max_head = 256, .max_target = 64, .max_headers = 4, .max_body = 8};
    char big[600];
    snprintf(big, sizeof(big), "GET /%0100d HTTP/1.1\r\nHost: h\r\n\r\n", 0);
    check_error(&cfg, big, 414, "");
    snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: h\r\nX-Big: %0300d\r\n\r\n", 0);
    check_error(&cfg, big, 431, "");
    check_error(&cfg, "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", 431, "");
    /* A Content-Length over max_body: 413 right after on_head (the application may lift the
     * limit there, h1_conn_body_limit: see test_stream_body). */
    check_error(&cfg, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9\r\n\r\n123456789", 413,
                "H0 POST / 1.1 cl=9 n=2|X0 413|");
    /* Chunked past max_body: the head was delivered, so the application hears 413. */
    check_error(&cfg,
                "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                "5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n",
                413, "H0 POST /c 1.1 chunked n=2|X0 413|");
    check_error(NULL, "GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505, "");
    check_error(NULL, "GET / HTTP/1.1\r\n\r\n", 400, "");
    check_error(NULL, "BREW / HTTP/1.1\r\nHost: h\r\n\r\n", 501, "");
    check_error(NULL, "\x01\x02garbage\r\n\r\n", 501, "");
    check_error(NULL, "GET / HTTP/1.1\r\nHost: h\r\nExpect: teapot\r\n\r\n", 417, "");
    check_error(NULL, "CONNECT h:443 HTTP/1.1\r\nHost: h\r\n\r\n", 405, "");
    check_error(NULL, "GET / HTTP/1.1\r\nHost h\r\n\r\n", 400, "");
    /* Request smuggling shapes. */
    check_error(NULL,
                "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked"
                "\r\n\r\n0\r\n\r\n",
                400, "");
    check_error(NULL,
                "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400,
                "");
    check_error(NULL, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\nabc", 400, "");
    /* An error after a good request: the good one is answered first, in order. */
    app_t a;
    check_splits(&a, ANSWER_ON_END, NULL,
                 "GET /ok HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/9.9\r\nHost: h\r\n\r\n");
    const char *ok = strstr(a.out, "GET /ok 0"), *bad = strstr(a.out, "HTTP/1.1 505 ");
    CHECK(ok && bad && ok < bad);
}

static void test_connection_close(void)
{
    app_t a;
    int closing = check_splits(&a, ANSWER_ON_END, NULL,
                               "GET /1 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
                               "GET /2 HTTP/1.1\r\nHost: h\r\n\r\n");
    CHECK_STR(a.log, "H0 GET /1 1.1 close n=2|B0 0|E0|");
    CHECK_CONTAINS(a.out, "Connection: close\r\n");
    CHECK(!strstr(a.out, "GET /2"));
    CHECK_EQ(closing, 1);

    /* HTTP/1.0: closes unless asked to keep alive. */
    closing = check_splits(&a, ANSWER_ON_END, NULL, "GET /old HTTP/1.0\r\n\r\n");
    CHECK_STR(a.log, "H0 GET /old 1.0 close n=0|B0 0|E0|");
    CHECK_CONTAINS(a.out, "Connection: close\r\n");
    CHECK_EQ(closing, 1);
    closing = check_splits(&a, ANSWER_ON_END, NULL,
                           "GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                           "GET /again HTTP/1.0\r\n\r\n");
    CHECK_CONTAINS(a.out, "Connection: keep-alive\r\n\r\nGET /old 0HTTP/1.1 200 OK\r\n");
    CHECK_CONTAINS(a.out, "Connection: close\r\n\r\nGET /again 0");
    CHECK_EQ(closing, 1);

    /* An Upgrade request is served as HTTP/1.1 (the upgrade is declined) and the next
     * pipelined request is read as usual. */
    closing = check_splits(&a, ANSWER_ON_END, NULL,
                           "GET /u HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                           "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n"
                           "GET /next HTTP/1.1\r\nHost: h\r\n\r\n");
    CHECK_STR(a.log, "H0 GET /u 1.1 n=4|B0 0|E0|H1 GET /next 1.1 n=1|B1 0|E1|");
    CHECK_EQ(closing, 0);
    /* HTTP/2 prior knowledge: 501, PRI is no method http_parser knows (the gateway must tell
     * h2c apart before feeding). */
    check_error(NULL, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 501, "");

    /* HEAD: the length is said, the body is not sent. */
    const char *head = "HEAD /h HTTP/1.1\r\nHost: h\r\n\r\n";
    h1_conn_t *c = run(&a, ANSWER_ON_END, NULL, head, strlen(head), NULL);
    CHECK_STR(a.out, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\n");
    CHECK_EQ(h1_conn_should_close(c), 0);
    h1_conn_free(c);
}

static void test_backpressure(void)
{
    h1_conn_config_t cfg = {.max_pipeline = 2};
    app_t a;
    const char *four = "GET /0 HTTP/1.1\r\nHost: h\r\n\r\nGET /1 HTTP/1.1\r\nHost: h\r\n\r\n"
                       "GET /2 HTTP/1.1\r\nHost: h\r\n\r\nGET /3 HTTP/1.1\r\nHost: h\r\n\r\n";
    size_t one = strlen(four) / 4;
    memset(&a, 0, sizeof(a));
    a.mode = ANSWER_NEVER;
    h1_conn_t *c = h1_conn_new(&cfg, &cbs, &a, 0);
    size_t used = h1_conn_feed(c, four, strlen(four), 0);
    CHECK_EQ(used, 2 * one);
    CHECK_EQ(h1_conn_wants_read(c), 0);
    CHECK_EQ(h1_conn_feed(c, four + used, strlen(four) - used, 0), 0);
    answer(&a, c, 1); /* out of order: nothing can leave yet */
    drain(&a, c);
    CHECK_EQ(a.out_len, 0);
    CHECK_EQ(h1_conn_wants_read(c), 0);
    answer(&a, c, 0);
    drain(&a, c);
    CHECK_CONTAINS(a.out, "GET /1 0");
    CHECK_EQ(h1_conn_wants_read(c), 1);
    CHECK_EQ(h1_conn_feed(c, four + used, strlen(four) - used, 0), 2 * one);
    CHECK_STR(a.log, "H0 GET /0 1.1 n=1|B0 0|E0|H1 GET /1 1.1 n=1|B1 0|E1|"
                     "H2 GET /2 1.1 n=1|B2 0|E2|H3 GET /3 1.1 n=1|B3 0|E3|");
    /* Body backpressure: a paused connection takes nothing until resumed. */
    h1_conn_pause(c);
    answer(&a, c, 2);
    answer(&a, c, 3);
    drain(&a, c);
    CHECK_EQ(h1_conn_wants_read(c), 0);
    CHECK_EQ(h1_conn_feed(c, "GET", 3, 0), 0);
    h1_conn_resume(c);
    CHECK_EQ(h1_conn_wants_read(c), 1);
    h1_conn_free(c);
}

/* ---- a request stream: limit lifted, body paused and resumed --------------------------------- */

typedef struct {
    char body[256];
    size_t len;
    int pause_after; /* pause once this many body bytes arrived (0: never) */
    int lift;        /* lift the body limit in on_head */
    int ended, errors, wakes;
} stream_app_t;

static void st_head(void *ud, h1_conn_t *c, uint64_t id, const h1_conn_head_t *h)
{
    stream_app_t *a = ud;
    (void)h;
    if (a->lift)
        CHECK_EQ(h1_conn_body_limit(c, id, 0), 0);
    CHECK_EQ(h1_conn_body_limit(c, id + 1, 0), -1); /* not the request being read */
}

static void st_body(void *ud, h1_conn_t *c, uint64_t id, const char *data, size_t len)
{
    stream_app_t *a = ud;
    (void)id;
    CHECK(a->len + len <= sizeof(a->body));
    memcpy(a->body + a->len, data, len);
    a->len += len;
    if (a->pause_after && a->len >= (size_t)a->pause_after && !h1_conn_paused(c))
        h1_conn_pause(c);
}

static void st_end(void *ud, h1_conn_t *c, uint64_t id)
{
    stream_app_t *a = ud;
    a->ended++;
    CHECK_EQ(h1_conn_respond(c, id, 200, NULL, 0, 0), 0);
    CHECK_EQ(h1_conn_end(c, id), 0);
}

static void st_error(void *ud, h1_conn_t *c, uint64_t id, int status, const char *why)
{
    stream_app_t *a = ud;
    (void)c;
    (void)id;
    (void)status;
    (void)why;
    a->errors++;
}

static void st_wake(void *ud, h1_conn_t *c)
{
    stream_app_t *a = ud;
    (void)c;
    a->wakes++;
}

static const h1_conn_cbs_t st_cbs = {st_head, st_body, st_end, st_error, NULL, st_wake};

static void test_stream_body(void)
{
    h1_conn_config_t cfg = {.max_body = 8, .idle_timeout_ms = 1000};
    const char *req = "POST /s HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "5\r\nhello\r\n5\r\nworld\r\n6\r\nagain!\r\n5\r\nfinal\r\n0\r\n\r\n";
    size_t len = strlen(req);

    /* The application pauses after the first piece: the connection stops taking bytes (at
     * most one more piece arrives), has no timeout while paused however long the upstream
     * takes, and once resumed delivers the rest in order. The limit was lifted, so 21 bytes
     * pass where max_body is 8. */
    stream_app_t a = {.pause_after = 5, .lift = 1};
    h1_conn_t *c = h1_conn_new(&cfg, &st_cbs, &a, 0);
    size_t used = h1_conn_feed(c, req, len, 0);
    CHECK(used < len);
    CHECK(a.len == 5 || a.len == 10);
    CHECK_EQ(h1_conn_paused(c), 1);
    CHECK_EQ(h1_conn_wants_read(c), 0);
    CHECK_EQ(h1_conn_feed(c, req + used, len - used, 10), 0);
    CHECK_EQ(h1_conn_deadline(c), 0);
    h1_conn_on_timer(c, 100000);
    CHECK_EQ(h1_conn_should_close(c), 0);
    CHECK_EQ(a.errors, 0);
    size_t before = a.len;
    a.pause_after = 0;
    int wakes = a.wakes;
    h1_conn_resume(c);
    CHECK_EQ(a.wakes, wakes + 1);
    CHECK_EQ(h1_conn_paused(c), 0);
    CHECK_EQ(h1_conn_wants_read(c), 1);
    CHECK_EQ(a.len, before);
    CHECK_EQ(h1_conn_feed(c, req + used, len - used, 100001), len - used);
    CHECK_EQ(a.len, 21);
    CHECK(memcmp(a.body, "helloworldagain!final", 21) == 0);
    CHECK_EQ(a.ended, 1);
    CHECK_EQ(a.errors, 0);
    h1_conn_free(c);

    /* Paused and resumed at every piece, fed one byte at a time: same bytes, same order. */
    memset(&a, 0, sizeof(a));
    a.lift = 1;
    c = h1_conn_new(&cfg, &st_cbs, &a, 0);
    for (size_t i = 0; i < len;) {
        size_t n = h1_conn_feed(c, req + i, 1, 0);
        i += n;
        if (n == 0) {
            CHECK_EQ(h1_conn_paused(c), 1);
            h1_conn_resume(c);
        } else if (a.len && !a.ended) {
            h1_conn_pause(c);
        }
    }
    CHECK_EQ(a.len, 21);
    CHECK(memcmp(a.body, "helloworldagain!final", 21) == 0);
    CHECK_EQ(a.ended, 1);
    h1_conn_free(c);

    /* Without the lift, the same body is over max_body: 413, the application hears it. */
    memset(&a, 0, sizeof(a));
    c = h1_conn_new(&cfg, &st_cbs, &a, 0);
    h1_conn_feed(c, req, len, 0);
    CHECK_EQ(a.errors, 1);
    CHECK_EQ(a.ended, 0);
    h1_conn_free(c);

    /* A Content-Length over max_body passes when the limit is lifted in on_head. */
    const char *cl = "POST /s HTTP/1.1\r\nHost: h\r\nContent-Length: 13\r\n\r\n{\"a\":1}\n{\"b\"}";
    memset(&a, 0, sizeof(a));
    a.lift = 1;
    c = h1_conn_new(&cfg, &st_cbs, &a, 0);
    CHECK_EQ(h1_conn_feed(c, cl, strlen(cl), 0), strlen(cl));
    CHECK_EQ(a.len, 13);
    CHECK_EQ(a.ended, 1);
    CHECK_EQ(a.errors, 0);
    h1_conn_free(c);
}

static int drained;
static void on_drain(void *ud, h1_conn_t *c)
{
    drained++;
}

static void test_output_high_water(void)
{
    h1_conn_cbs_t cb2 = cbs;
    cb2.on_drain = on_drain;
    h1_conn_config_t cfg = {.out_high = 1000};
    app_t a;
    memset(&a, 0, sizeof(a));
    a.mode = ANSWER_NEVER;
    h1_conn_t *c = h1_conn_new(&cfg, &cb2, &a, 0);
    const char *req = "GET /big HTTP/1.1\r\nHost: h\r\n\r\n";
    CHECK_EQ(h1_conn_feed(c, req, strlen(req), 0), strlen(req));
    CHECK_EQ(h1_conn_respond(c, 0, 200, NULL, 0, -1), 0);
    char piece[600];
    memset(piece, 'x', sizeof(piece));
    CHECK_EQ(h1_conn_body(c, 0, piece, sizeof(piece)), 0);
    CHECK_EQ(h1_conn_body(c, 0, piece, sizeof(piece)), 1);
    CHECK_EQ(drained, 0);
    drain(&a, c);
    CHECK_EQ(drained, 1);
    CHECK_EQ(h1_conn_end(c, 0), 0);
    /* Bad responses are refused. */
    CHECK_EQ(h1_conn_body(c, 0, "x", 1), -1);
    CHECK_EQ(h1_conn_respond(c, 7, 200, NULL, 0, 0), -1);
    h1_conn_free(c);

    c = h1_conn_new(NULL, &cbs, &a, 0);
    CHECK_EQ(h1_conn_feed(c, req, strlen(req), 0), strlen(req));
    h1_conn_hdr_t bad[] = {
        {"X-Bad", 5, "a\r\nb", 4}, {"Content-Length", 14, "1", 1}, {"Bad Name", 8, "v", 1}};
    for (int i = 0; i < 3; i++)
        CHECK_EQ(h1_conn_respond(c, 0, 200, &bad[i], 1, 0), -1);
    CHECK_EQ(h1_conn_respond(c, 0, 99, NULL, 0, 0), -1);
    CHECK_EQ(h1_conn_respond(c, 0, 200, NULL, 0, 2), 0);
    CHECK_EQ(h1_conn_body(c, 0, "abc", 3), -1); /* more than the Content-Length */
    CHECK_EQ(h1_conn_body(c, 0, "a", 1), 0);
    CHECK_EQ(h1_conn_end(c, 0), -1); /* short: the connection will close */
    drain(&a, c);
    CHECK_EQ(h1_conn_should_close(c), 1);
    h1_conn_free(c);
}

static void test_timeouts(void)
{
    h1_conn_config_t cfg = {.header_timeout_ms = 100, .idle_timeout_ms = 1000};
    app_t a;
    memset(&a, 0, sizeof(a));
    a.mode = ANSWER_ON_END;
    h1_conn_t *c = h1_conn_new(&cfg, &cbs, &a, 0);
    CHECK_EQ(h1_conn_deadline(c), 1000); /* idle */
    CHECK_EQ(h1_conn_feed(c, "GET / HT", 8, 50), 8);
    CHECK_EQ(h1_conn_deadline(c), 150); /* the head's deadline from its first byte */
    h1_conn_on_timer(c, 149);
    drain(&a, c);
    CHECK_EQ(a.out_len, 0);
    h1_conn_on_timer(c, 150);
    drain(&a, c);
    CHECK(strncmp(a.out, "HTTP/1.1 408 Request Timeout\r\n", 30) == 0);
    CHECK_EQ(h1_conn_should_close(c), 1);
    h1_conn_free(c);

    /* Idle keep-alive connection: closed silently. */
    memset(&a, 0, sizeof(a));
    c = h1_conn_new(&cfg, &cbs, &a, 0);
    const char *req = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    CHECK_EQ(h1_conn_feed(c, req, strlen(req), 10), strlen(req));
    drain(&a, c);
    CHECK_EQ(h1_conn_should_close(c), 0);
    CHECK_EQ(h1_conn_deadline(c), 1010);
    h1_conn_on_timer(c, 1010);
    CHECK_EQ(h1_conn_should_close(c), 1);
    h1_conn_free(c);

    /* A request waiting for the application has no timeout here. */
    memset(&a, 0, sizeof(a));
    a.mode = ANSWER_NEVER;
    c = h1_conn_new(&cfg, &cbs, &a, 0);
    CHECK_EQ(h1_conn_feed(c, req, strlen(req), 10), strlen(req));
    CHECK_EQ(h1_conn_deadline(c), 0);
    h1_conn_free(c);
    CHECK_STR(a.log, "H0 GET / 1.1 n=1|B0 0|E0|X0 0|"); /* freed before an answer */
}

static void test_shutdown_and_eof(void)
{
    app_t a;
    memset(&a, 0, sizeof(a));
    a.mode = ANSWER_NEVER;
    h1_conn_t *c = h1_conn_new(NULL, &cbs, &a, 0);
    const char *req = "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n";
    CHECK_EQ(h1_conn_feed(c, req, strlen(req), 0), strlen(req));
    h1_conn_shutdown(c);
    CHECK_EQ(h1_conn_wants_read(c), 0);
    CHECK_EQ(h1_conn_should_close(c), 0); /* an answer is owed */
    answer(&a, c, 0);
    drain(&a, c);
    CHECK_CONTAINS(a.out, "Connection: close\r\n");
    CHECK_EQ(h1_conn_should_close(c), 1);
    h1_conn_free(c);

    /* EOF with an answer owed: still written, then close. */
    memset(&a, 0, sizeof(a));
    a.mode = ANSWER_NEVER;
    c = h1_conn_new(NULL, &cbs, &a, 0);
    CHECK_EQ(h1_conn_feed(c, req, strlen(req), 0), strlen(req));
    h1_conn_eof(c, 0);
    CHECK_EQ(h1_conn_should_close(c), 0);
    answer(&a, c, 0);
    drain(&a, c);
    CHECK_CONTAINS(a.out, "GET /1 0");
    CHECK_EQ(h1_conn_should_close(c), 1);
    h1_conn_free(c);

    /* EOF in the middle of a body: 400, and the application hears it. */
    memset(&a, 0, sizeof(a));
    c = h1_conn_new(NULL, &cbs, &a, 0);
    const char *half = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc";
    CHECK_EQ(h1_conn_feed(c, half, strlen(half), 0), strlen(half));
    h1_conn_eof(c, 0);
    drain(&a, c);
    CHECK_STR(a.log, "H0 POST / 1.1 cl=10 n=2|X0 400|");
    CHECK(strncmp(a.out, "HTTP/1.1 400 ", 13) == 0);
    CHECK_EQ(h1_conn_should_close(c), 1);
    h1_conn_free(c);
}

int main(void)
{
    RUN(test_get_keep_alive);
    RUN(test_post_content_length);
    RUN(test_chunked_request);
    RUN(test_chunked_response);
    RUN(test_pipelining_order);
    RUN(test_continue);
    RUN(test_limits);
    RUN(test_connection_close);
    RUN(test_backpressure);
    RUN(test_stream_body);
    RUN(test_output_high_water);
    RUN(test_timeouts);
    RUN(test_shutdown_and_eof);
    fprintf(stderr, "ok\n");
    return 0;
}
