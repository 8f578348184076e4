/*
 * transport/http_fetch.c: the asynchronous HTTP client (see transport/http_fetch.h).
 *
 * Layout: the request objects and their buffers, curl's multi socket API on the loop
 * (common/curl_uv.h), completion (curl's result to
 * a status or MESH_HTTP_ERR_* code), then the public API.
 *
 * Re-entrancy: user code runs only from check_multi() and on_kick(), never inside a curl
 * callback, so a request can be removed from the multi handle at once when it is cancelled.
 * Its memory, and the fetcher's on close, are released when the outermost entry into this file
 * returns (enter()/leave()), so a callback may cancel or close whatever it likes.
 */
#include "transport/http_fetch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/curl_lib.h"
#include "common/curl_uv.h"
#include "common/log.h"

#define ACTOR                 "http-fetch"
#define FETCH_TIMEOUT_MS      5000
#define FETCH_CONNECT_MS      2000
#define FETCH_MAX_RESPONSE    (1u << 20)
#define FETCH_MAX_HEADER_SIZE (64u * 1024) /* all header lines of a response together */

/* Loaded by mesh_http_fetch_new (pthread_once in common/curl_lib.c; read-only afterwards). */
#define cu (mesh_curl(NULL, 0))

typedef struct http_field {
    char *name, *value; /* point into the request's header buffer */
} http_field_t;

struct mesh_http_response {
    http_field_t *fields;
    size_t n, cap;
    const char *reason; /* the status line's reason phrase ("" for HTTP/2) */
};

struct mesh_http_req {
    mesh_http_fetch_t *f;
    mesh_http_req_t *prev, *next; /* every request not yet freed */
    CURL *easy;
    struct curl_slist *hdrs;
    char *body;
    size_t body_len;
    mesh_http_fetch_cb cb;
    void *ctx;
    size_t max_body;
    char *resp; /* body received so far, NUL-terminated */
    size_t resp_len, resp_cap;
    char *hbuf; /* header lines of the last response, as received */
    size_t hlen, hcap;
    int too_large;  /* refused more bytes: 1 the body, 2 the header block */
    int fail_err;   /* nonzero: a failure found before the transfer, reported by on_kick */
    int dead;       /* cancelled or delivered: freed by leave() */
    int delivering; /* inside its own callback */
    mesh_http_response_t rh;
    char errbuf[CURL_ERROR_SIZE];
};

struct mesh_http_fetch {
    uv_loop_t *loop;
    CURLM *multi;
    mesh_curl_uv_t cuv; /* curl's sockets and timer on the loop (common/curl_uv.h) */
    uv_timer_t kick;    /* reports failures found before a transfer on the next loop turn */
    int handles_open;
    mesh_http_req_t *reqs;
    size_t pending;
    int depth;
    int closing;
};

const char *mesh_http_err_name(int err)
{
    switch (err) {
    case MESH_HTTP_ERR_NOMEM:
        return "out of memory";
    case MESH_HTTP_ERR_BAD_REQUEST:
        return "bad request";
    case MESH_HTTP_ERR_CONNECT:
        return "connect failed";
    case MESH_HTTP_ERR_TIMEOUT:
        return "timeout";
    case MESH_HTTP_ERR_TOO_LARGE:
        return "response too large";
    case MESH_HTTP_ERR_PROTOCOL:
        return "protocol error";
    case MESH_HTTP_ERR_TLS:
        return "TLS error";
    default:
        return err >= 0 ? "ok" : "unknown error";
    }
}

/* ---- requests and their buffers --------------------------------------------------------- */

static void req_link(mesh_http_fetch_t *f, mesh_http_req_t *r)
{
    r->prev = NULL;
    r->next = f->reqs;
    if (f->reqs)
        f->reqs->prev = r;
    f->reqs = r;
}

static void req_unlink(mesh_http_fetch_t *f, mesh_http_req_t *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        f->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
}

/* Takes the transfer out of curl (its socket may be closed or kept for reuse by curl). */
static void req_drop_easy(mesh_http_req_t *r)
{
    if (r->easy) {
        cu->multi_remove_handle(r->f->multi, r->easy);
        cu->easy_cleanup(r->easy);
        r->easy = NULL;
    }
    cu->slist_free_all(r->hdrs);
    r->hdrs = NULL;
}

static void req_free(mesh_http_req_t *r)
{
    req_drop_easy(r);
    req_unlink(r->f, r);
    free(r->body);
    free(r->resp);
    free(r->hbuf);
    free(r->rh.fields);
    free(r);
}

/* Marks r finished: no callback after this; freed when the outermost call returns. */
static void req_retire(mesh_http_req_t *r)
{
    if (r->dead)
        return;
    r->dead = 1;
    r->f->pending--;
    req_drop_easy(r);
}

static int grow(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 1024;
    while (c < need)
        c *= 2;
    char *b = realloc(*buf, c);
    if (!b)
        return -1;
    *buf = b;
    *cap = c;
    return 0;
}

static size_t write_cb(char *p, size_t size, size_t nmemb, void *ud)
{
    mesh_http_req_t *r = ud;
    size_t n = size * nmemb;
    if (r->resp_len + n > r->max_body) {
        r->too_large = 1;
        return 0; /* aborts the transfer (CURLE_WRITE_ERROR) */
    }
    if (grow(&r->resp, &r->resp_cap, r->resp_len + n + 1) < 0)
        return 0;
    memcpy(r->resp + r->resp_len, p, n);
    r->resp_len += n;
    r->resp[r->resp_len] = '\0';
    return n;
}

static size_t header_cb(char *p, size_t size, size_t nmemb, void *ud)
{
    mesh_http_req_t *r = ud;
    size_t n = size * nmemb;
    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0)
        r->hlen = 0; /* a new status line (after a 100 Continue): only the last head counts */
    if (r->hlen + n > FETCH_MAX_HEADER_SIZE) {
        r->too_large = 2; /* the header block */
        return 0;
    }
    if (grow(&r->hbuf, &r->hcap, r->hlen + n + 1) < 0)
        return 0;
    memcpy(r->hbuf + r->hlen, p, n);
    r->hlen += n;
    r->hbuf[r->hlen] = '\0';
    return n;
}

static char *trim(char *s, char *end)
{
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
        end--;
    *end = '\0';
    return s;
}

/* Splits the received header lines into fields, in place (the status line is skipped). */
static int parse_fields(mesh_http_req_t *r)
{
    if (!r->hbuf)
        return 0;
    char *p = r->hbuf, *end = r->hbuf + r->hlen;
    int first = 1;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *line_end = nl ? nl : end;
        char *colon = memchr(p, ':', (size_t)(line_end - p));
        if (first) {
            /* "HTTP/1.1 403 Forbidden": the reason phrase follows the second space */
            char *sp = memchr(p, ' ', (size_t)(line_end - p));
            sp = sp ? memchr(sp + 1, ' ', (size_t)(line_end - sp - 1)) : NULL;
            r->rh.reason = sp ? trim(sp + 1, line_end) : "";
        } else if (colon && colon > p && *p != ' ' && *p != '\t') {
            if (r->rh.n == r->rh.cap) {
                size_t c = r->rh.cap ? r->rh.cap * 2 : 16;
                http_field_t *nf = realloc(r->rh.fields, c * sizeof(*nf));
                if (!nf)
                    return -1;
                r->rh.fields = nf;
                r->rh.cap = c;
            }
            *colon = '\0';
            http_field_t *fl = &r->rh.fields[r->rh.n++];
            fl->name = trim(p, colon);
            fl->value = trim(colon + 1, line_end);
        }
        first = 0;
        p = nl ? nl + 1 : end;
    }
    return 0;
}

const char *mesh_http_response_header(const mesh_http_response_t *r, const char *name)
{
    for (size_t i = 0; r && i < r->n; i++)
        if (strcasecmp(r->fields[i].name, name) == 0)
            return r->fields[i].value;
    return NULL;
}

const char *mesh_http_response_reason(const mesh_http_response_t *r)
{
    return r && r->reason ? r->reason : "";
}

size_t mesh_http_response_header_count(const mesh_http_response_t *r)
{
    return r ? r->n : 0;
}

void mesh_http_response_header_at(const mesh_http_response_t *r, size_t i, const char **name,
                                  const char **value)
{
    *name = i < r->n ? r->fields[i].name : NULL;
    *value = i < r->n ? r->fields[i].value : NULL;
}

/* ---- entering and leaving --------------------------------------------------------------- */

static void fetch_destroy(mesh_http_fetch_t *f);

static void enter(mesh_http_fetch_t *f)
{
    f->depth++;
}

/* Leaving the outermost call: free retired requests, and the fetcher when it is closing. */
static void leave(mesh_http_fetch_t *f)
{
    if (--f->depth > 0)
        return;
    for (mesh_http_req_t *r = f->reqs, *n; r; r = n) {
        n = r->next;
        if (r->dead)
            req_free(r);
    }
    if (f->closing)
        fetch_destroy(f);
}

/* Runs r's callback once (outside any curl callback), then retires r. */
static void deliver(mesh_http_req_t *r, int status, const char *error)
{
    if (r->dead || r->f->closing)
        return;
    req_drop_easy(r);
    static const mesh_http_response_t none;
    r->delivering = 1;
    r->cb(r->ctx, status, status > 0 ? &r->rh : &none, status > 0 && r->resp ? r->resp : "",
          status > 0 ? r->resp_len : 0, error);
    r->delivering = 0;
    req_retire(r);
}

/* ---- curl <-> libuv --------------------------------------------------------------------- */

static int map_result(mesh_http_req_t *r, CURLcode cc)
{
    if (r->too_large || cc == CURLE_FILESIZE_EXCEEDED)
        return MESH_HTTP_ERR_TOO_LARGE;
    switch (cc) {
    case CURLE_OPERATION_TIMEDOUT:
        return MESH_HTTP_ERR_TIMEOUT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
        return MESH_HTTP_ERR_CONNECT;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        return MESH_HTTP_ERR_BAD_REQUEST;
    case CURLE_OUT_OF_MEMORY:
        return MESH_HTTP_ERR_NOMEM;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
        return MESH_HTTP_ERR_TLS;
    default:
        return MESH_HTTP_ERR_PROTOCOL;
    }
}

static void finish(mesh_http_req_t *r, CURLcode cc)
{
    long code = 0;
    cu->easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
    if (cc == CURLE_OK && !r->too_large && code > 0) {
        if (parse_fields(r) < 0) {
            deliver(r, MESH_HTTP_ERR_NOMEM, "out of memory reading the response headers");
            return;
        }
        deliver(r, (int)code, "");
        return;
    }
    int err = cc == CURLE_OK ? MESH_HTTP_ERR_PROTOCOL : map_result(r, cc);
    char why[CURL_ERROR_SIZE + 160];
    if (err == MESH_HTTP_ERR_TOO_LARGE)
        snprintf(why, sizeof(why), "response %s larger than %zu bytes",
                 r->too_large == 2 ? "header fields" : "body",
                 r->too_large == 2 ? (size_t)FETCH_MAX_HEADER_SIZE : r->max_body);
    else
        snprintf(why, sizeof(why), "%s: %s", mesh_http_err_name(err),
                 r->errbuf[0] ? r->errbuf : cu->easy_strerror(cc));
    deliver(r, err, why);
}

static void check_multi(mesh_http_fetch_t *f)
{
    CURLMsg *m;
    int left;
    while (!f->closing && (m = cu->multi_info_read(f->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        mesh_http_req_t *r = NULL;
        cu->easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        CURLcode cc = m->data.result;
        if (r && !r->dead)
            finish(r, cc);
    }
}

/* curl's socket or timer fired (common/curl_uv.h). */
static void on_curl(void *owner, curl_socket_t fd, int flags)
{
    mesh_http_fetch_t *f = owner;
    int running;
    enter(f);
    cu->multi_socket_action(f->multi, fd, flags, &running);
    check_multi(f);
    leave(f);
}

static void on_kick(uv_timer_t *t)
{
    mesh_http_fetch_t *f = t->data;
    enter(f);
    for (mesh_http_req_t *r = f->reqs; r && !f->closing; r = r->next)
        if (r->fail_err && !r->dead) {
            int err = r->fail_err;
            r->fail_err = 0;
            deliver(r, err, r->errbuf);
        }
    leave(f);
}

/* A request that cannot start: reported on the next loop turn, never from the caller's call. */
static void fail_later(mesh_http_req_t *r, int err, const char *why)
{
    req_drop_easy(r);
    r->fail_err = err;
    if (why != r->errbuf)
        snprintf(r->errbuf, sizeof(r->errbuf), "%s", why);
    uv_timer_start(&r->f->kick, on_kick, 0, 0);
}

/* ---- public API ------------------------------------------------------------------------- */

mesh_http_fetch_t *mesh_http_fetch_new(uv_loop_t *loop)
{
    char why[256];
    if (!mesh_curl(why, sizeof(why))) {
        mesh_error(ACTOR, "%s", why);
        return NULL;
    }
    mesh_http_fetch_t *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->loop = loop;
    f->multi = cu->multi_init();
    if (!f->multi) {
        free(f);
        return NULL;
    }
    uv_timer_init(loop, &f->kick);
    f->kick.data = f;
    mesh_curl_uv_init(&f->cuv, loop, f->multi, on_curl, f);
    f->handles_open = 2;
    return f;
}

static int valid_token(const char *s)
{
    if (!s || !*s)
        return 0;
    for (; *s; s++)
        if (*s <= ' ' || *s >= 127 || strchr("()<>@,;:\\\"/[]?={}", *s))
            return 0;
    return 1;
}

static int valid_value(const char *s)
{
    return s && !strpbrk(s, "\r\n");
}

/* Configures r's transfer; returns 0, or a MESH_HTTP_ERR_* code with r->errbuf saying why. */
static int setup(mesh_http_req_t *r, const mesh_http_request_t *q)
{
    const char *method = q->method && *q->method ? q->method : q->body_len ? "POST" : "GET";
    if (!q->url ||
        (strncasecmp(q->url, "http://", 7) != 0 && strncasecmp(q->url, "https://", 8) != 0)) {
        snprintf(r->errbuf, sizeof(r->errbuf), "bad request: URL must be http:// or https://");
        return MESH_HTTP_ERR_BAD_REQUEST;
    }
    if (!valid_token(method)) {
        snprintf(r->errbuf, sizeof(r->errbuf), "bad request: bad method");
        return MESH_HTTP_ERR_BAD_REQUEST;
    }
    /* curl would add "Expect: 100-continue" to larger bodies (one more round trip) */
    struct curl_slist *h = cu->slist_append(NULL, "Expect:");
    if (!h)
        return MESH_HTTP_ERR_NOMEM;
    r->hdrs = h;
    for (size_t i = 0; i < q->n_headers; i++) {
        const mesh_http_header_t *hd = &q->headers[i];
        if (!valid_token(hd->name) || !valid_value(hd->value)) {
            snprintf(r->errbuf, sizeof(r->errbuf), "bad request: bad header field %.64s",
                     hd->name ? hd->name : "(null)");
            return MESH_HTTP_ERR_BAD_REQUEST;
        }
        /* "Name;" sends a field with an empty value; "Name:" would remove it */
        char *line = NULL;
        int n = *hd->value ? asprintf(&line, "%s: %s", hd->name, hd->value)
                           : asprintf(&line, "%s;", hd->name);
        if (n < 0)
            return MESH_HTTP_ERR_NOMEM;
        h = cu->slist_append(r->hdrs, line);
        free(line);
        if (!h)
            return MESH_HTTP_ERR_NOMEM;
        r->hdrs = h;
    }
    CURL *e = cu->easy_init();
    if (!e)
        return MESH_HTTP_ERR_NOMEM;
    r->easy = e;
    uint64_t timeout = q->timeout_ms ? q->timeout_ms : FETCH_TIMEOUT_MS;
    uint64_t connect = q->connect_timeout_ms ? q->connect_timeout_ms : FETCH_CONNECT_MS;
    if (connect > timeout)
        connect = timeout;
    cu->easy_setopt(e, CURLOPT_URL, q->url);
    cu->easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    cu->easy_setopt(e, CURLOPT_PROXY, ""); /* no proxy from the environment */
    cu->easy_setopt(e, CURLOPT_PRIVATE, r);
    cu->easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    cu->easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    cu->easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout);
    cu->easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)connect);
    cu->easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    cu->easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
    cu->easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    cu->easy_setopt(e, CURLOPT_WRITEDATA, r);
    cu->easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    cu->easy_setopt(e, CURLOPT_HEADERDATA, r);
    cu->easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)r->max_body);
    if (q->ca_file)
        cu->easy_setopt(e, CURLOPT_CAINFO, q->ca_file);
    if (r->body || strcasecmp(method, "POST") == 0 || strcasecmp(method, "PUT") == 0 ||
        strcasecmp(method, "PATCH") == 0) {
        cu->easy_setopt(e, CURLOPT_POSTFIELDS, r->body ? r->body : "");
        cu->easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
        if (strcasecmp(method, "POST") != 0)
            cu->easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    } else if (strcasecmp(method, "HEAD") == 0) {
        cu->easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (strcasecmp(method, "GET") == 0) {
        cu->easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
        cu->easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    }
    if (cu->multi_add_handle(r->f->multi, e) != CURLM_OK) {
        snprintf(r->errbuf, sizeof(r->errbuf), "cannot start the transfer");
        return MESH_HTTP_ERR_NOMEM;
    }
    return 0;
}

mesh_http_req_t *mesh_http_fetch_request(mesh_http_fetch_t *f, const mesh_http_request_t *q,
                                         mesh_http_fetch_cb cb, void *ctx)
{
    if (!f || f->closing || !q || !cb)
        return NULL;
    mesh_http_req_t *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->f = f;
    r->cb = cb;
    r->ctx = ctx;
    r->max_body = q->max_response ? q->max_response : FETCH_MAX_RESPONSE;
    if (q->body_len) {
        r->body = malloc(q->body_len);
        if (!r->body) {
            free(r);
            return NULL;
        }
        memcpy(r->body, q->body, q->body_len);
        r->body_len = q->body_len;
    }
    req_link(f, r);
    f->pending++;
    enter(f);
    int err = setup(r, q);
    if (err)
        fail_later(r, err, r->errbuf[0] ? r->errbuf : mesh_http_err_name(err));
    leave(f);
    return r;
}

void mesh_http_fetch_cancel(mesh_http_req_t *r)
{
    if (!r || r->dead || r->delivering)
        return;
    mesh_http_fetch_t *f = r->f;
    enter(f);
    req_retire(r);
    leave(f);
}

size_t mesh_http_fetch_pending(const mesh_http_fetch_t *f)
{
    return f ? f->pending : 0;
}

static void timer_closed(uv_handle_t *h)
{
    mesh_http_fetch_t *f = h->data;
    if (--f->handles_open == 0)
        free(f);
}

static void fetch_destroy(mesh_http_fetch_t *f)
{
    f->depth = 1; /* nothing below re-enters leave() */
    while (f->reqs)
        req_free(f->reqs);
    if (f->multi)
        cu->multi_cleanup(f->multi); /* closes the connections (CURL_POLL_REMOVE each) */
    f->multi = NULL;
    mesh_curl_uv_close(&f->cuv, timer_closed);
    uv_close((uv_handle_t *)&f->kick, timer_closed);
}

void mesh_http_fetch_close(mesh_http_fetch_t *f)
{
    if (!f || f->closing)
        return;
    f->closing = 1;
    if (f->depth == 0)
        fetch_destroy(f);
}
