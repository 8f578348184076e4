/*
 * tests/fuzz/gateway_h1/fuzz_h1_conn.c: libFuzzer harness over the gateway's HTTP/1.1 server
 * connection (transport/h1_conn.h).
 *
 * The first byte picks the limits and how the application answers (when the body ended or
 * at once on the head, Content-Length or chunked, in order or each pair reversed, pausing the
 * body); the second picks how the rest is split into reads, and its top bit lifts the body
 * limit of every request at its head (h1_conn_body_limit, as the gateway does for streams). Every
 * request whose head was delivered is answered (those left over after the input ends too), then the
 * client closes. Checks: the connection never crashes or leaks (ASan); what it wrote parses as a
 * sequence of HTTP/1.1 responses with an independent parser (http_parser in response mode, HEAD
 * answers known to have no body); the application's answers come out in request order; a request is
 * either answered, or told it is over (on_error), never both silently; and once the input is
 * over and everything is answered and written, the connection wants to close.
 */
#include <http_parser.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/h1_conn.h"

#define MAXREQ 256

typedef struct {
    int mode;
    int lift;
    int known[MAXREQ];   /* head delivered */
    int ended[MAXREQ];   /* request body complete */
    int errored[MAXREQ]; /* on_error */
    int answered[MAXREQ];
    int is_head[MAXREQ];
    int minor[MAXREQ];
    char *out;
    size_t out_len, out_cap;
    int paused;
} app_t;

static void answer(app_t *a, h1_conn_t *c, uint64_t id)
{
    if (id >= MAXREQ || a->answered[id] || a->errored[id])
        return;
    char idv[24];
    int n = snprintf(idv, sizeof(idv), "%llu", (unsigned long long)id);
    h1_conn_hdr_t h = {"X-Id", 4, idv, (size_t)n};
    char body[64];
    int bl = snprintf(body, sizeof(body), "answer %llu\n", (unsigned long long)id);
    int chunked = (a->mode >> 2) & 1;
    if (h1_conn_respond(c, id, 200, &h, 1, chunked ? -1 : bl) != 0)
        abort(); /* a known, unanswered, not errored request must take an answer */
    if (h1_conn_body(c, id, body, (size_t)bl) < 0)
        abort();
    if (h1_conn_end(c, id) != 0)
        abort();
    a->answered[id] = 1;
}

static void on_head(void *ud, h1_conn_t *c, uint64_t id, const h1_conn_head_t *h)
{
    app_t *a = ud;
    if (id >= MAXREQ)
        return;
    if (strlen(h->target) != h->target_len || strlen(h->method) == 0)
        abort();
    a->known[id] = 1;
    a->is_head[id] = h->is_head;
    a->minor[id] = h->minor;
    if (a->lift && h1_conn_body_limit(c, id, 0) != 0)
        abort();
    if (h->expect_continue && (a->mode & 8))
        if (h1_conn_continue(c, id) != 0)
            abort();
    if ((a->mode & 3) == 1)
        answer(a, c, id);
}

static void on_body(void *ud, h1_conn_t *c, uint64_t id, const char *data, size_t len)
{
    app_t *a = ud;
    if (len == 0 || id >= MAXREQ || !a->known[id] || a->ended[id])
        abort();
    if ((a->mode & 0x30) == 0x30 && !a->paused) {
        a->paused = 1;
        h1_conn_pause(c);
    }
}

static void on_end(void *ud, h1_conn_t *c, uint64_t id)
{
    app_t *a = ud;
    if (id >= MAXREQ)
        return;
    if (!a->known[id] || a->ended[id])
        abort();
    a->ended[id] = 1;
    if ((a->mode & 3) == 0)
        answer(a, c, id);
    else if ((a->mode & 3) == 2 && id % 2 == 1) {
        answer(a, c, id);
        answer(a, c, id - 1);
    }
}

static void on_error(void *ud, h1_conn_t *c, uint64_t id, int status, const char *why)
{
    app_t *a = ud;
    if (id >= MAXREQ)
        return;
    if (!a->known[id] || a->answered[id] || a->errored[id] || !why)
        abort();
    a->errored[id] = 1;
}

static const h1_conn_cbs_t cbs = {on_head, on_body, on_end, on_error, NULL, NULL};

static void drain(app_t *a, h1_conn_t *c)
{
    const char *d;
    size_t n;
    while ((n = h1_conn_take_out(c, &d, 0)) > 0) {
        if (a->out_len + n > a->out_cap) {
            a->out_cap = (a->out_len + n) * 2;
            a->out = realloc(a->out, a->out_cap);
            if (!a->out)
                abort();
        }
        memcpy(a->out + a->out_len, d, n);
        a->out_len += n;
        h1_conn_sent(c, 0);
    }
}

/* ---- the independent check of the output ---------------------------------------------------- */

typedef struct {
    app_t *a;
    char field[8];
    size_t field_len;
    int is_xid;
    long long xid, last_xid;
    int responses;
} check_t;

static int ck_field(http_parser *p, const char *at, size_t len)
{
    check_t *k = p->data;
    if (k->field_len + len <= sizeof(k->field)) {
        memcpy(k->field + k->field_len, at, len);
        k->field_len += len;
    } else {
        k->field_len = sizeof(k->field) + 1;
    }
    return 0;
}

static int ck_value(http_parser *p, const char *at, size_t len)
{
    check_t *k = p->data;
    if (k->field_len == 4 && strncasecmp(k->field, "x-id", 4) == 0) {
        if (!k->is_xid)
            k->xid = 0;
        k->is_xid = 1;
        for (size_t i = 0; i < len; i++)
            k->xid = k->xid * 10 + (at[i] - '0');
    } else
        k->is_xid = 0;
    k->field_len = 0;
    return 0;
}

static int ck_begin(http_parser *p)
{
    check_t *k = p->data;
    k->xid = -1;
    k->is_xid = 0;
    k->field_len = 0;
    return 0;
}

static int ck_headers(http_parser *p)
{
    check_t *k = p->data;
    if (p->status_code == 100)
        return 0;
    if (k->xid >= 0) {
        if (k->xid >= MAXREQ || k->xid <= k->last_xid || !k->a->answered[k->xid])
            abort(); /* out of order, or not an answer the application gave */
        k->last_xid = k->xid;
        if (k->a->is_head[k->xid])
            return 1; /* no body follows */
    } else if (p->status_code < 400) {
        abort(); /* the connection itself only answers errors */
    }
    return 0;
}

static int ck_complete(http_parser *p)
{
    check_t *k = p->data;
    if (p->status_code != 100)
        k->responses++;
    return 0;
}

static void check_output(app_t *a)
{
    http_parser_settings s = {0};
    s.on_message_begin = ck_begin;
    s.on_header_field = ck_field;
    s.on_header_value = ck_value;
    s.on_headers_complete = ck_headers;
    s.on_message_complete = ck_complete;
    http_parser p;
    http_parser_init(&p, HTTP_RESPONSE);
    check_t k = {.a = a, .last_xid = -1};
    k.xid = -1;
    p.data = &k;
    size_t n = http_parser_execute(&p, &s, a->out, a->out_len);
    if (n != a->out_len || HTTP_PARSER_ERRNO(&p) != HPE_OK) {
        fprintf(stderr, "bad output (%s at %zu):\n%.*s\n", http_errno_name(HTTP_PARSER_ERRNO(&p)),
                n, (int)a->out_len, a->out);
        abort();
    }
    http_parser_execute(&p, &s, NULL, 0); /* a body up to the close ends here */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    static app_t a;
    free(a.out);
    memset(&a, 0, sizeof(a));
    a.mode = data[0];
    unsigned split = data[1];
    a.lift = (split & 0x80) != 0;
    data += 2;
    size -= 2;
    h1_conn_config_t cfg = {0};
    if (a.mode & 0x40) {
        cfg.max_pipeline = 2;
        cfg.max_body = 16;
        cfg.max_head = 128;
        cfg.max_target = 32;
        cfg.max_headers = 4;
    }
    if (a.mode & 0x80)
        cfg.out_high = 64;
    h1_conn_t *c = h1_conn_new(&cfg, &cbs, &a, 0);
    if (!c)
        return 0;
    /* Feed in pieces of (split % 7 + 1) * (split / 7 + 1) bytes, keeping what is not taken. */
    size_t piece = (size_t)(split % 7 + 1) * (split / 7 + 1);
    size_t off = 0, avail = 0;
    int stuck = 0;
    while (off < size && stuck < 4) {
        if (avail < off + piece)
            avail = off + piece < size ? off + piece : size;
        size_t used =
            h1_conn_wants_read(c) ? h1_conn_feed(c, (const char *)data + off, avail - off, 0) : 0;
        off += used;
        drain(&a, c);
        if (a.paused) {
            a.paused = 0;
            h1_conn_resume(c);
        }
        if (!used && avail < size) {
            avail = avail + piece < size ? avail + piece : size;
        } else if (!used) {
            /* Blocked: answer everything owed so the pipeline moves on. */
            for (uint64_t id = 0; id < MAXREQ; id++)
                if (a.known[id] && a.ended[id])
                    answer(&a, c, id);
            drain(&a, c);
            stuck++;
        } else if (used) {
            stuck = 0;
        }
        if (h1_conn_should_close(c))
            break;
    }
    h1_conn_eof(c, 0);
    for (uint64_t id = 0; id < MAXREQ; id++)
        if (a.known[id])
            answer(&a, c, id);
    drain(&a, c);
    for (uint64_t id = 0; id < MAXREQ && id < h1_conn_requests(c); id++)
        if (a.known[id] && !a.answered[id] && !a.errored[id])
            abort(); /* a request left hanging */
    if (!h1_conn_should_close(c))
        abort();
    check_output(&a);
    h1_conn_free(c);
    return 0;
}
