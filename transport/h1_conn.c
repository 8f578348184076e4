/*
 * transport/h1_conn.c: the sans-I/O HTTP/1.1 server connection behind transport/h1_conn.h.
 *
 * Parsing is http_parser's (libhttp-parser 2.9.4): its callbacks copy the request line and
 * header fields into one head buffer of max_head bytes (fields may arrive split over reads),
 * and hand body pieces on without copies. Each request takes a slot in a ring of
 * max_pipeline slots from its first byte until its response has ended and has been taken;
 * the slot holds the request's state and the response bytes written for it so far. Output is
 * taken from the oldest slot on, so answers leave in request order whatever order the
 * application writes them in; h1_conn_take_out() copies them into one send buffer that stays
 * still while the binding writes it. When the ring is full the parser pauses (http_parser's
 * own pause) and the binding stops reading: that bounds the unanswered input.
 *
 * Closing: close_limit is the number of responses still to be sent (ids below it); a request
 * with `Connection: close`, an error, an HTTP/1.0 body of unknown length, a graceful shutdown
 * or an EOF lowers it, and requests at or past it are aborted (on_error status 0). The
 * connection should close once every response below close_limit has been taken and sent.
 */
#include "transport/h1_conn.h"

#include <http_parser.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/fmt_num.h"

/* Buffers up to this many bytes are kept for reuse; bigger ones are freed after use. */
#define H1C_KEEP (64 * 1024)

/* A growable byte buffer, kept (with its capacity) for the connection's life. */
typedef struct {
    char *data;
    size_t len, cap;
} h1c_buf_t;

/* Where one header field lies in the head buffer. */
typedef struct {
    uint32_t name_off, name_len, val_off, val_len;
} h1c_field_t;

/* One request and its response. */
typedef struct {
    h1c_buf_t out;      /* response bytes not yet taken */
    uint64_t id;        /* request id (valid while used) */
    int64_t resp_left;  /* Content-Length bytes still to send, -1 when not counted */
    unsigned used : 1;  /* the slot holds a request */
    unsigned known : 1; /* its head was delivered */
    unsigned req_done : 1;
    unsigned minor : 1;
    unsigned keep_alive : 1;
    unsigned is_head : 1;
    unsigned expect : 1;   /* Expect: 100-continue, no 100 sent yet */
    unsigned has_body : 1; /* the request has a body */
    unsigned started : 1;  /* response head written */
    unsigned ended : 1;    /* response ended */
    unsigned chunked : 1;  /* response body chunked */
    unsigned no_body : 1;  /* response body suppressed (HEAD, 204, 304) */
    unsigned aborted : 1;  /* on_error told; responses refused */
} h1c_slot_t;

struct h1_conn {
    http_parser parser;
    h1_conn_config_t cfg;
    h1_conn_cbs_t cbs;
    void *ud;

    /* head being parsed */
    char *hbuf;
    size_t hlen;
    size_t target_len;
    h1c_field_t *fields;
    size_t n_fields;
    int last_was_value; /* header callback state: the last piece was a value */
    h1_conn_hdr_t *views;
    int in_trailers;
    uint64_t body_seen;
    uint64_t body_max; /* this request's body limit (cfg.max_body unless the application lifted
                          it in on_head: h1_conn_body_limit(); 0: none) */

    /* requests */
    h1c_slot_t *slots;
    uint64_t next_id;     /* ids begun */
    uint64_t head_id;     /* oldest request whose response is not all taken */
    uint64_t close_limit; /* responses to send before closing (ids below) */
    int in_message;       /* between message begin and complete */
    int in_head;          /* between message begin and headers complete */
    int err_status;       /* set by a callback that fails the parse */
    const char *err_why;
    int stop_parse; /* no more requests will be read */
    int app_paused;
    int parse_paused; /* http_parser is paused */
    int broken;       /* close at once, nothing more to send */
    int shutting;
    int eof;

    /* output */
    h1c_buf_t send;
    int sending;
    size_t buffered; /* bytes in slot buffers */
    int want_drain;

    /* clock */
    uint64_t head_start_ms, last_read_ms, last_write_ms, idle_since_ms;
    int in_callback; /* feed is running: on_wake is not needed */
};

static const http_parser_settings parser_settings;

/* ---- small helpers ------------------------------------------------------------------------ */

static int buf_reserve(h1c_buf_t *b, size_t more)
{
    if (more <= b->cap - b->len)
        return 0;
    size_t nc = b->cap ? b->cap : 256;
    while (nc - b->len < more) {
        if (nc > SIZE_MAX / 2)
            return -1;
        nc *= 2;
    }
    char *nd = realloc(b->data, nc);
    if (!nd)
        return -1;
    b->data = nd;
    b->cap = nc;
    return 0;
}

static int buf_add(h1c_buf_t *b, const void *data, size_t len)
{
    if (buf_reserve(b, len) < 0)
        return -1;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

static h1c_slot_t *slot_of(h1_conn_t *c, uint64_t id)
{
    if (id < c->head_id || id >= c->next_id)
        return NULL;
    h1c_slot_t *s = &c->slots[id % c->cfg.max_pipeline];
    return s->used && s->id == id ? s : NULL;
}

static void wake(h1_conn_t *c)
{
    if (c->cbs.on_wake && !c->in_callback)
        c->cbs.on_wake(c->ud, c);
}

/* Tells the application request s is over (once). */
static void slot_abort(h1_conn_t *c, h1c_slot_t *s, int status, const char *why)
{
    if (s->aborted)
        return;
    s->aborted = 1;
    if (s->known && !s->ended && c->cbs.on_error)
        c->cbs.on_error(c->ud, c, s->id, status, why);
}

/* No response beyond id+1 (exclusive limit n) will be sent: requests from n on are aborted,
 * and no more requests are read. */
static void limit_close(h1_conn_t *c, uint64_t n)
{
    c->stop_parse = 1;
    if (n >= c->close_limit)
        return;
    uint64_t old = c->close_limit < c->next_id ? c->close_limit : c->next_id;
    c->close_limit = n;
    for (uint64_t id = n; id < old; id++) {
        h1c_slot_t *s = slot_of(c, id);
        if (s) {
            c->buffered -= s->out.len;
            s->out.len = 0;
            slot_abort(c, s, 0, "the connection is closing");
        }
    }
}

const char *h1_conn_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 417:
        return "Expectation Failed";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 499:
        return "Client Closed Request";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Status";
    }
}

/* ---- errors the connection answers itself ------------------------------------------------- */

/* The request being parsed (or the next one) failed with status: answer it if its response
 * has not begun, and close after it. */
static void fail_request(h1_conn_t *c, int status, const char *why)
{
    h1c_slot_t *s = NULL;
    if (c->in_message) {
        s = slot_of(c, c->next_id - 1);
    } else if (!c->stop_parse && c->next_id - c->head_id < c->cfg.max_pipeline) {
        /* Garbage before a request began: it takes a slot of its own. */
        uint64_t id = c->next_id++;
        s = &c->slots[id % c->cfg.max_pipeline];
        s->out.len = 0;
        s->id = id;
        s->used = 1;
        s->known = s->req_done = s->started = s->ended = s->aborted = 0;
        s->minor = 1;
        s->keep_alive = 0;
        s->resp_left = -1;
        s->is_head = s->expect = s->has_body = s->chunked = s->no_body = 0;
    }
    c->in_message = c->in_head = 0;
    c->parse_paused = 0;
    if (!s || s->aborted) {
        limit_close(c, c->next_id);
        return;
    }
    uint64_t id = s->id;
    int was_ended = s->ended;
    s->req_done = 1;
    limit_close(c, id + 1);
    if (!s->started) {
        s->keep_alive = 0;
        if (s->is_head)
            s->is_head = 0; /* an error body is worth showing */
        h1_conn_respond_error(c, id, status, why);
    } else if (!s->ended) {
        /* The application has begun its answer: it cannot be finished cleanly. */
        s->ended = 1;
        s->keep_alive = 0;
    }
    if (s->known && !was_ended && c->cbs.on_error && !s->aborted) {
        s->aborted = 1;
        c->cbs.on_error(c->ud, c, id, status, why);
    }
    s->aborted = 1;
}

/* ---- parser callbacks --------------------------------------------------------------------- */

static int cb_message_begin(http_parser *p)
{
    h1_conn_t *c = p->data;
    uint64_t id = c->next_id++;
    h1c_slot_t *s = &c->slots[id % c->cfg.max_pipeline];
    s->out.len = 0;
    s->id = id;
    s->used = 1;
    s->known = s->req_done = s->started = s->ended = s->aborted = 0;
    s->is_head = s->expect = s->has_body = s->chunked = s->no_body = 0;
    s->minor = 1;
    s->keep_alive = 1;
    s->resp_left = -1;
    c->in_message = c->in_head = 1;
    c->hlen = c->target_len = 0;
    c->n_fields = 0;
    c->last_was_value = 0;
    c->in_trailers = 0;
    c->body_seen = 0;
    c->body_max = c->cfg.max_body;
    c->head_start_ms = c->last_read_ms;
    return 0;
}

/* Appends a piece of the head; counts toward max_head. */
static int head_add(h1_conn_t *c, const char *at, size_t len)
{
    if (len > c->cfg.max_head - c->hlen) {
        c->err_status = 431;
        c->err_why = "the request head is too large";
        return -1;
    }
    memcpy(c->hbuf + c->hlen, at, len);
    c->hlen += len;
    return 0;
}

static int cb_url(http_parser *p, const char *at, size_t len)
{
    h1_conn_t *c = p->data;
    if (len > c->cfg.max_target - c->target_len) {
        c->err_status = 414;
        c->err_why = "the request target is too long";
        return -1;
    }
    c->target_len += len;
    return head_add(c, at, len);
}

static int cb_header_field(http_parser *p, const char *at, size_t len)
{
    h1_conn_t *c = p->data;
    if (c->in_trailers)
        return 0; /* trailers are read and dropped; http_parser bounds their size */
    if (c->n_fields == 0 || c->last_was_value) {
        if (c->n_fields == c->cfg.max_headers) {
            c->err_status = 431;
            c->err_why = "too many header fields";
            return -1;
        }
        /* 4 bytes per field for ": " and CRLF, and a NUL after the target. */
        if (c->cfg.max_head - c->hlen < 5) {
            c->err_status = 431;
            c->err_why = "the request head is too large";
            return -1;
        }
        c->hlen += 4;
        h1c_field_t *f = &c->fields[c->n_fields++];
        f->name_off = (uint32_t)c->hlen;
        f->name_len = 0;
        f->val_off = f->val_len = 0;
        c->last_was_value = 0;
    }
    if (head_add(c, at, len) < 0)
        return -1;
    c->fields[c->n_fields - 1].name_len += (uint32_t)len;
    return 0;
}

static int cb_header_value(http_parser *p, const char *at, size_t len)
{
    h1_conn_t *c = p->data;
    if (c->in_trailers)
        return 0;
    if (c->n_fields == 0)
        return -1;
    h1c_field_t *f = &c->fields[c->n_fields - 1];
    if (!c->last_was_value) {
        f->val_off = (uint32_t)c->hlen;
        f->val_len = 0;
        c->last_was_value = 1;
    }
    if (head_add(c, at, len) < 0)
        return -1;
    f->val_len += (uint32_t)len;
    return 0;
}

static int token_eq(const char *a, size_t alen, const char *b)
{
    return strlen(b) == alen && strncasecmp(a, b, alen) == 0;
}

static int cb_headers_complete(http_parser *p)
{
    h1_conn_t *c = p->data;
    h1c_slot_t *s = slot_of(c, c->next_id - 1);
    c->in_head = 0;
    if (p->http_major != 1) {
        c->err_status = 505;
        c->err_why = "only HTTP/1.0 and HTTP/1.1 are served here";
        return -1;
    }
    if (!s || s->aborted) {
        c->err_status = 400;
        return -1; /* an earlier answer closed the connection: stop here, silently */
    }
    /* The target is followed by the 4 spare bytes of the first field (or the free tail, the
     * buffer has max_head + 2 bytes): room for its NUL. */
    char *target = c->hbuf;
    target[c->target_len] = 0;
    h1_conn_head_t h = {0};
    h.method = http_method_str((enum http_method)p->method);
    h.target_len = c->target_len;
    h.minor = p->http_minor >= 1 ? 1 : 0;
    int expect_bad = 0, has_host = 0;
    for (size_t i = 0; i < c->n_fields; i++) {
        h1c_field_t *f = &c->fields[i];
        h1_conn_hdr_t *v = &c->views[i];
        v->name = c->hbuf + f->name_off;
        v->name_len = f->name_len;
        v->value = c->hbuf + f->val_off;
        v->value_len = f->val_len;
        if (token_eq(v->name, v->name_len, "host"))
            has_host = 1;
        else if (token_eq(v->name, v->name_len, "expect")) {
            if (token_eq(v->value, v->value_len, "100-continue"))
                h.expect_continue = 1;
            else
                expect_bad = 1;
        }
    }
    h.target = target;
    h.headers = c->views;
    h.n_headers = c->n_fields;
    h.chunked = (p->flags & F_CHUNKED) != 0;
    h.content_length = (p->flags & F_CONTENTLENGTH) ? (int64_t)p->content_length : -1;
    h.has_body = h.chunked || h.content_length > 0;
    h.keep_alive = http_should_keep_alive(p) != 0;
    h.is_head = p->method == HTTP_HEAD;
    s->minor = (unsigned)h.minor;
    s->keep_alive = (unsigned)h.keep_alive;
    s->is_head = (unsigned)h.is_head;
    s->has_body = (unsigned)h.has_body;
    if (h.minor == 1 && !has_host) {
        c->err_status = 400;
        c->err_why = "an HTTP/1.1 request needs a Host header";
        return -1;
    }
    if (p->uses_transfer_encoding && !(p->flags & F_CHUNKED)) {
        c->err_status = 400;
        c->err_why = "a request body must be chunked or have a Content-Length";
        return -1;
    }
    if (p->method == HTTP_CONNECT) {
        c->err_status = 405;
        c->err_why = "CONNECT is not served here";
        return -1;
    }
    if (expect_bad) {
        c->err_status = 417;
        c->err_why = "only Expect: 100-continue is understood";
        return -1;
    }
    s->expect = (unsigned)(h.expect_continue && h.has_body && h.minor == 1);
    h.expect_continue = s->expect;
    s->known = 1;
    if (!h.keep_alive)
        c->stop_parse = 1; /* the last request of the connection */
    if (c->cbs.on_head)
        c->cbs.on_head(c->ud, c, s->id, &h);
    /* After on_head: the application may have lifted the limit for this request (a stream). */
    if (h.content_length > 0 && c->body_max && (uint64_t)h.content_length > c->body_max) {
        c->err_status = 413;
        c->err_why = "the request body is too large";
        return -1;
    }
    return 0;
}

static int cb_body(http_parser *p, const char *at, size_t len)
{
    h1_conn_t *c = p->data;
    h1c_slot_t *s = slot_of(c, c->next_id - 1);
    if (!s || s->aborted) {
        c->err_status = 400;
        return -1;
    }
    if (c->body_max && len > c->body_max - c->body_seen) {
        c->err_status = 413;
        c->err_why = "the request body is too large";
        return -1;
    }
    c->body_seen += len;
    if (s->expect) /* the client sent the body without waiting */
        s->expect = 0;
    if (!s->aborted && c->cbs.on_body)
        c->cbs.on_body(c->ud, c, s->id, at, len);
    if (c->app_paused) {
        c->parse_paused = 1;
        http_parser_pause(p, 1);
    }
    return 0;
}

static int cb_chunk_header(http_parser *p)
{
    h1_conn_t *c = p->data;
    if (p->content_length == 0)
        c->in_trailers = 1;
    return 0;
}

static int cb_message_complete(http_parser *p)
{
    h1_conn_t *c = p->data;
    h1c_slot_t *s = slot_of(c, c->next_id - 1);
    c->in_message = c->in_head = 0;
    if (!s)
        return -1;
    s->req_done = 1;
    s->expect = 0;
    if (!s->aborted && c->cbs.on_end)
        c->cbs.on_end(c->ud, c, s->id);
    if (!s->keep_alive || c->shutting)
        limit_close(c, s->id + 1);
    if (c->stop_parse || c->app_paused || c->next_id - c->head_id >= c->cfg.max_pipeline) {
        c->parse_paused = 1;
        http_parser_pause(p, 1);
    }
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = cb_message_begin,
    .on_url = cb_url,
    .on_header_field = cb_header_field,
    .on_header_value = cb_header_value,
    .on_headers_complete = cb_headers_complete,
    .on_body = cb_body,
    .on_message_complete = cb_message_complete,
    .on_chunk_header = cb_chunk_header,
};

/* The status and reason for a parser error that no callback explained. */
static int parse_error_status(enum http_errno e, const char **why)
{
    switch (e) {
    case HPE_HEADER_OVERFLOW:
        *why = "the request head is too large";
        return 431;
    case HPE_INVALID_METHOD:
        *why = "unknown method";
        return 501;
    case HPE_INVALID_VERSION:
        *why = "malformed HTTP version";
        return 400;
    case HPE_INVALID_TRANSFER_ENCODING:
        *why = "a request body must be chunked or have a Content-Length";
        return 400;
    default:
        *why = http_errno_description(e);
        return 400;
    }
}

/* ---- public: life ------------------------------------------------------------------------- */

h1_conn_t *h1_conn_new(const h1_conn_config_t *cfg, const h1_conn_cbs_t *cbs, void *ud,
                       uint64_t now_ms)
{
    h1_conn_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    if (cfg)
        c->cfg = *cfg;
    if (!c->cfg.max_head)
        c->cfg.max_head = 8192;
    if (c->cfg.max_head > (1u << 30))
        c->cfg.max_head = 1u << 30;
    if (!c->cfg.max_target)
        c->cfg.max_target = 4096;
    if (c->cfg.max_target > c->cfg.max_head)
        c->cfg.max_target = c->cfg.max_head;
    if (!c->cfg.max_headers)
        c->cfg.max_headers = 100;
    if (!c->cfg.max_body)
        c->cfg.max_body = 1 << 20;
    if (!c->cfg.max_pipeline)
        c->cfg.max_pipeline = 16;
    if (!c->cfg.out_high)
        c->cfg.out_high = 256 << 10;
    if (!c->cfg.header_timeout_ms)
        c->cfg.header_timeout_ms = 10000;
    if (!c->cfg.idle_timeout_ms)
        c->cfg.idle_timeout_ms = 60000;
    if (cbs)
        c->cbs = *cbs;
    c->ud = ud;
    c->hbuf = malloc(c->cfg.max_head + 2);
    c->fields = calloc(c->cfg.max_headers, sizeof(*c->fields));
    c->views = calloc(c->cfg.max_headers, sizeof(*c->views));
    c->slots = calloc(c->cfg.max_pipeline, sizeof(*c->slots));
    if (!c->hbuf || !c->fields || !c->views || !c->slots) {
        h1_conn_free(c);
        return NULL;
    }
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->close_limit = UINT64_MAX;
    c->last_read_ms = c->last_write_ms = c->idle_since_ms = now_ms;
    return c;
}

void h1_conn_free(h1_conn_t *c)
{
    if (!c)
        return;
    if (c->slots) {
        for (uint64_t id = c->head_id; id < c->next_id; id++) {
            h1c_slot_t *s = slot_of(c, id);
            if (s)
                slot_abort(c, s, 0, "the connection closed");
        }
        for (unsigned i = 0; i < c->cfg.max_pipeline; i++)
            free(c->slots[i].out.data);
    }
    free(c->slots);
    free(c->send.data);
    free(c->hbuf);
    free(c->fields);
    free(c->views);
    free(c);
}

uint64_t h1_conn_requests(const h1_conn_t *c)
{
    return c->next_id;
}

/* ---- public: input ------------------------------------------------------------------------ */

int h1_conn_wants_read(const h1_conn_t *c)
{
    if (c->broken || c->eof || c->app_paused)
        return 0;
    return c->in_message || (!c->stop_parse && c->next_id - c->head_id < c->cfg.max_pipeline);
}

size_t h1_conn_feed(h1_conn_t *c, const char *data, size_t len, uint64_t now_ms)
{
    c->last_read_ms = now_ms;
    if (c->broken || c->eof)
        return len;
    if (c->stop_parse && !c->in_message)
        return len; /* after the last request: dropped */
    if (!c->in_message && (c->app_paused || c->next_id - c->head_id >= c->cfg.max_pipeline))
        return 0;
    if (c->in_message && c->app_paused)
        return 0;
    if (c->parse_paused) {
        http_parser_pause(&c->parser, 0);
        c->parse_paused = 0;
    }
    c->in_callback++;
    size_t used = 0;
    while (used < len) {
        size_t n = http_parser_execute(&c->parser, &parser_settings, data + used, len - used);
        used += n;
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (e == HPE_PAUSED)
            break;
        if (e != HPE_OK) {
            const char *why = c->err_why;
            int status = c->err_status;
            if (!status)
                status = parse_error_status(e, &why);
            c->err_status = 0;
            c->err_why = NULL;
            fail_request(c, status, why);
            used = len;
            break;
        }
        if (n == 0)
            break; /* no progress: cannot happen without an error; be safe */
        /* An Upgrade request stopped the parser: meshd declines upgrades and reads on. */
    }
    if (c->parse_paused && c->stop_parse && !c->in_message)
        used = len;
    c->in_callback--;
    return used;
}

void h1_conn_eof(h1_conn_t *c, uint64_t now_ms)
{
    c->last_read_ms = now_ms;
    if (c->eof)
        return;
    if (c->in_message) {
        c->in_callback++;
        fail_request(c, 400, "the client closed the connection in the middle of a request");
        c->in_callback--;
    }
    c->eof = 1;
    limit_close(c, c->next_id);
    wake(c);
}

void h1_conn_pause(h1_conn_t *c)
{
    c->app_paused = 1;
}

void h1_conn_resume(h1_conn_t *c)
{
    if (!c->app_paused)
        return;
    c->app_paused = 0;
    wake(c);
}

int h1_conn_paused(const h1_conn_t *c)
{
    return c->app_paused;
}

int h1_conn_body_limit(h1_conn_t *c, uint64_t id, uint64_t max_body)
{
    if (!c->in_message || c->next_id == 0 || id != c->next_id - 1)
        return -1;
    h1c_slot_t *s = slot_of(c, id);
    if (!s || s->aborted)
        return -1;
    c->body_max = max_body;
    return 0;
}

/* ---- public: responses -------------------------------------------------------------------- */

/* A slot the application may write to. */
static h1c_slot_t *app_slot(h1_conn_t *c, uint64_t id)
{
    h1c_slot_t *s = slot_of(c, id);
    if (!s || s->aborted || s->ended || id >= c->close_limit)
        return NULL;
    return s;
}

static int out_add(h1_conn_t *c, h1c_slot_t *s, const void *data, size_t len)
{
    if (buf_add(&s->out, data, len) < 0)
        return -1;
    c->buffered += len;
    return 0;
}

int h1_conn_continue(h1_conn_t *c, uint64_t id)
{
    h1c_slot_t *s = app_slot(c, id);
    if (!s || !s->expect || s->started)
        return -1;
    s->expect = 0;
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    if (out_add(c, s, cont, sizeof(cont) - 1) < 0)
        return -1;
    wake(c);
    return 0;
}

static int is_tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static int header_ok(const h1_conn_hdr_t *h)
{
    if (!h->name || !h->name_len || (h->value_len && !h->value))
        return 0;
    for (size_t i = 0; i < h->name_len; i++)
        if (!is_tchar((unsigned char)h->name[i]))
            return 0;
    for (size_t i = 0; i < h->value_len; i++)
        if (h->value[i] == '\r' || h->value[i] == '\n' || h->value[i] == 0)
            return 0;
    if (token_eq(h->name, h->name_len, "content-length") ||
        token_eq(h->name, h->name_len, "transfer-encoding") ||
        token_eq(h->name, h->name_len, "connection"))
        return 0;
    return 1;
}

int h1_conn_respond(h1_conn_t *c, uint64_t id, int status, const h1_conn_hdr_t *headers,
                    size_t n_headers, int64_t content_length)
{
    h1c_slot_t *s = app_slot(c, id);
    if (!s || s->started || status < 200 || status > 599)
        return -1;
    for (size_t i = 0; i < n_headers; i++)
        if (!header_ok(&headers[i]))
            return -1;
    int no_body = s->is_head || status == 204 || status == 304;
    int chunked = 0;
    int keep = s->keep_alive && !c->shutting;
    if (s->expect && !s->req_done)
        keep = 0; /* no 100 Continue: the client may or may not send the body; close after */
    if (!no_body && content_length < 0) {
        if (s->minor == 1)
            chunked = 1;
        else
            keep = 0; /* HTTP/1.0: the end of the connection ends the body */
    }
    /* Everything is checked: write the head. */
    char line[96];
    const char *reason = h1_conn_reason(status);
    size_t rl = strlen(reason);
    memcpy(line, "HTTP/1.1 ", 9);
    size_t n = 9 + mesh_fmt_u64(line + 9, (uint64_t)status); /* 200..599, checked above */
    line[n++] = ' ';
    if (rl > sizeof(line) - n - 2)
        rl = sizeof(line) - n - 2;
    memcpy(line + n, reason, rl);
    n += rl;
    line[n++] = '\r';
    line[n++] = '\n';
    size_t before = s->out.len;
    int rc = out_add(c, s, line, n);
    for (size_t i = 0; rc == 0 && i < n_headers; i++) {
        rc |= out_add(c, s, headers[i].name, headers[i].name_len);
        rc |= out_add(c, s, ": ", 2);
        rc |= out_add(c, s, headers[i].value, headers[i].value_len);
        rc |= out_add(c, s, "\r\n", 2);
    }
    if (rc == 0 && content_length >= 0 && status != 204 && status != 304) {
        memcpy(line, "Content-Length: ", 16);
        n = 16 + mesh_fmt_u64(line + 16, (uint64_t)content_length);
        line[n++] = '\r';
        line[n++] = '\n';
        rc = out_add(c, s, line, n);
    } else if (rc == 0 && chunked) {
        rc = out_add(c, s, "Transfer-Encoding: chunked\r\n", 28);
    }
    if (rc == 0) {
        if (!keep)
            rc = out_add(c, s, "Connection: close\r\n\r\n", 21);
        else if (s->minor == 0)
            rc = out_add(c, s, "Connection: keep-alive\r\n\r\n", 26);
        else
            rc = out_add(c, s, "\r\n", 2);
    }
    if (rc != 0) {
        c->buffered -= s->out.len - before;
        s->out.len = before;
        return -1;
    }
    s->started = 1;
    s->expect = 0;
    s->no_body = (unsigned)no_body;
    s->chunked = (unsigned)chunked;
    s->resp_left = no_body ? 0 : content_length;
    if (!keep) {
        s->keep_alive = 0;
        limit_close(c, id + 1);
    }
    wake(c);
    return 0;
}

int h1_conn_body(h1_conn_t *c, uint64_t id, const void *data, size_t len)
{
    h1c_slot_t *s = app_slot(c, id);
    if (!s || !s->started)
        return -1;
    if (s->no_body || len == 0)
        return c->buffered > c->cfg.out_high ? 1 : 0;
    if (s->resp_left >= 0 && (uint64_t)s->resp_left < len)
        return -1;
    size_t before = s->out.len;
    int rc = 0;
    if (s->chunked) {
        char hdr[24];
        int n = snprintf(hdr, sizeof(hdr), "%zx\r\n", len);
        rc |= out_add(c, s, hdr, (size_t)n);
        rc |= out_add(c, s, data, len);
        rc |= out_add(c, s, "\r\n", 2);
    } else {
        rc = out_add(c, s, data, len);
    }
    if (rc != 0) {
        c->buffered -= s->out.len - before;
        s->out.len = before;
        return -1;
    }
    if (s->resp_left >= 0)
        s->resp_left -= (int64_t)len;
    wake(c);
    if (c->buffered > c->cfg.out_high) {
        c->want_drain = 1;
        return 1;
    }
    return 0;
}

int h1_conn_end(h1_conn_t *c, uint64_t id)
{
    h1c_slot_t *s = app_slot(c, id);
    if (!s || !s->started)
        return -1;
    int rc = 0;
    if (s->chunked && out_add(c, s, "0\r\n\r\n", 5) < 0)
        rc = -1;
    if (s->resp_left > 0) {
        /* Short of its Content-Length: the client can only tell by the close. */
        s->keep_alive = 0;
        limit_close(c, id + 1);
        rc = -1;
    }
    s->ended = 1;
    wake(c);
    return rc;
}

int h1_conn_respond_error(h1_conn_t *c, uint64_t id, int status, const char *message)
{
    json_t *o = json_pack("{s:s}", "error", message ? message : h1_conn_reason(status));
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    const char *body = text ? text : "{\"error\":\"error\"}";
    size_t blen = strlen(body);
    static const h1_conn_hdr_t type = {"Content-Type", 12, "application/json", 16};
    int rc = h1_conn_respond(c, id, status, &type, 1, (int64_t)blen);
    if (rc == 0) {
        h1_conn_body(c, id, body, blen);
        h1_conn_end(c, id);
    }
    free(text);
    return rc;
}

/* ---- public: output ----------------------------------------------------------------------- */

size_t h1_conn_take_out(h1_conn_t *c, const char **data, uint64_t now_ms)
{
    *data = NULL;
    if (c->sending || c->broken)
        return 0;
    c->send.len = 0;
    while (c->head_id < c->next_id && c->head_id < c->close_limit) {
        h1c_slot_t *s = slot_of(c, c->head_id);
        if (!s)
            break;
        if (s->out.len) {
            if (buf_add(&c->send, s->out.data, s->out.len) < 0)
                break; /* out of memory: try again later */
            c->buffered -= s->out.len;
            s->out.len = 0;
        }
        /* A slot stays until its request has been read too, unless it is the last one. */
        if (!s->ended || (!s->req_done && s->id + 1 < c->close_limit))
            break;
        s->used = 0;
        if (s->out.cap > H1C_KEEP) { /* one huge answer does not pin its buffer for good */
            free(s->out.data);
            s->out = (h1c_buf_t){0};
        }
        c->head_id++;
    }
    if (!c->send.len)
        return 0;
    c->sending = 1;
    c->last_write_ms = now_ms;
    *data = c->send.data;
    return c->send.len;
}

void h1_conn_sent(h1_conn_t *c, uint64_t now_ms)
{
    c->sending = 0;
    c->send.len = 0;
    if (c->send.cap > 4 * H1C_KEEP) {
        free(c->send.data);
        c->send = (h1c_buf_t){0};
    }
    c->last_write_ms = now_ms;
    c->idle_since_ms = now_ms;
    if (c->want_drain && c->buffered <= c->cfg.out_high / 2) {
        c->want_drain = 0;
        if (c->cbs.on_drain)
            c->cbs.on_drain(c->ud, c);
    }
}

size_t h1_conn_out_buffered(const h1_conn_t *c)
{
    return c->buffered + c->send.len;
}

int h1_conn_should_close(const h1_conn_t *c)
{
    if (c->broken)
        return 1;
    if (c->sending)
        return 0;
    uint64_t last = c->close_limit < c->next_id ? c->close_limit : c->next_id;
    if (c->close_limit == UINT64_MAX)
        return 0;
    if (c->in_message && !c->stop_parse)
        return 0;
    /* Everything below the limit taken (its slots freed) and nothing left in them. */
    if (c->head_id < last)
        return 0;
    return 1;
}

void h1_conn_shutdown(h1_conn_t *c)
{
    if (c->shutting)
        return;
    c->shutting = 1;
    if (c->in_message) {
        c->stop_parse = 1; /* finish this one; cb_message_complete limits the close */
    } else {
        limit_close(c, c->next_id);
    }
    wake(c);
}

/* ---- public: time ------------------------------------------------------------------------- */

uint64_t h1_conn_deadline(const h1_conn_t *c)
{
    if (c->broken)
        return 0;
    if (c->sending)
        return c->last_write_ms + c->cfg.idle_timeout_ms;
    if (c->in_message && !c->app_paused) {
        if (c->in_head)
            return c->head_start_ms + c->cfg.header_timeout_ms;
        return c->last_read_ms + c->cfg.idle_timeout_ms;
    }
    if (c->head_id == c->next_id && !c->buffered) {
        uint64_t t = c->last_read_ms > c->idle_since_ms ? c->last_read_ms : c->idle_since_ms;
        return t + c->cfg.idle_timeout_ms;
    }
    return 0; /* waiting for the application */
}

void h1_conn_on_timer(h1_conn_t *c, uint64_t now_ms)
{
    uint64_t d = h1_conn_deadline(c);
    if (!d || now_ms < d)
        return;
    c->in_callback++;
    if (c->sending) {
        c->broken = 1; /* the client stopped reading */
        limit_close(c, c->head_id);
    } else if (c->in_message) {
        fail_request(c, 408,
                     c->in_head ? "the request head did not arrive in time"
                                : "the request body stalled");
    } else {
        limit_close(c, c->next_id);
    }
    c->in_callback--;
    wake(c);
}

const h1_conn_hdr_t *h1_conn_head_find(const h1_conn_head_t *head, const char *name)
{
    for (size_t i = 0; i < head->n_headers; i++)
        if (token_eq(head->headers[i].name, head->headers[i].name_len, name))
            return &head->headers[i];
    return NULL;
}
