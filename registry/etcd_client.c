/*
 * registry/etcd_client.c: the etcd JSON-gateway client on libcurl multi + libuv
 * (see etcd_client.h). curl's sockets and timer run on the loop through common/curl_uv.h.
 * Layout: small helpers, then the request life cycle (start, write, finish with failover /
 * re-authentication), then the public API.
 */
#include "registry/etcd_client.h"

#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>

#include "common/curl_lib.h"
#include "common/curl_uv.h"
#include "common/log.h"
#include "registry/etcd_auth_sm.h"
#include "registry/etcd_codec.h"

/* libcurl, loaded once by the first etcd_client_new (common/curl_lib.h: pthread_once, so
 * clients on several threads see it loaded, and nothing is written after). */
#define cu (mesh_curl(NULL, 0))

struct etcd_req {
    etcd_client_t *c;
    CURL *easy;
    struct curl_slist *headers;
    char *path;
    char *body;
    int is_stream;
    int internal; /* the authentication request itself */
    int canceled;
    int queued; /* 1: start deferred, 2: waiting for a token, 3: failure to report */
    int pending_err;
    int attempts;
    int auth_retried;
    uint32_t token_gen; /* the token it was sent with (etcd_auth_sm_t.token_gen) */
    size_t endpoint;
    long status;
    char *resp;
    size_t resp_len, resp_cap;
    etcd_done_cb done;
    etcd_line_cb on_line;
    etcd_close_cb on_close;
    void *ud;
    etcd_req_t *next, *prev; /* every live request */
};

struct etcd_client {
    uv_loop_t *loop;
    CURLM *multi;
    mesh_curl_uv_t cuv; /* curl's sockets and timer on the loop (common/curl_uv.h) */
    uv_timer_t kick;    /* reports start failures on the next loop turn, never inside a call */
    int handles_open;
    char **endpoints;
    size_t n_endpoints;
    size_t current;
    char *username, *password, *ca_file, *cert_file, *key_file;
    uint32_t request_timeout_ms, connect_timeout_ms;
    char *token; /* the current token (auth.state READY) */
    char *auth_header;
    char *principal;     /* for logs: "etcd user NAME" / "the client certificate FILE" */
    etcd_auth_sm_t auth; /* when to authenticate, hold requests, give up (etcd_auth_sm.h) */
    etcd_req_t *reqs;
    int depth;
    int closing;
};

static void finish_transfer(etcd_req_t *r, CURLcode cc);

/* ---- lists and small helpers ------------------------------------------------------------ */

static void req_link(etcd_client_t *c, etcd_req_t *r)
{
    r->prev = NULL;
    r->next = c->reqs;
    if (c->reqs)
        c->reqs->prev = r;
    c->reqs = r;
}

static void req_unlink(etcd_client_t *c, etcd_req_t *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        c->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
}

static void req_drop_easy(etcd_req_t *r)
{
    if (r->easy) {
        cu->multi_remove_handle(r->c->multi, r->easy);
        cu->easy_cleanup(r->easy);
        r->easy = NULL;
    }
    cu->slist_free_all(r->headers);
    r->headers = NULL;
}

static void req_free(etcd_req_t *r)
{
    req_drop_easy(r);
    req_unlink(r->c, r);
    free(r->path);
    free(r->body);
    free(r->resp);
    free(r);
}

static int append(etcd_req_t *r, const char *p, size_t n)
{
    if (r->resp_len + n + 1 > r->resp_cap) {
        size_t cap = r->resp_cap ? r->resp_cap : 4096;
        while (cap < r->resp_len + n + 1)
            cap *= 2;
        char *b = realloc(r->resp, cap);
        if (!b)
            return -1;
        r->resp = b;
        r->resp_cap = cap;
    }
    memcpy(r->resp + r->resp_len, p, n);
    r->resp_len += n;
    r->resp[r->resp_len] = '\0';
    return 0;
}

const char *etcd_strerror(int err)
{
    switch (err) {
    case ETCD_OK:
        return "ok";
    case ETCD_ERR_NOMEM:
        return "out of memory";
    case ETCD_ERR_UNAVAILABLE:
        return "no etcd endpoint answered";
    case ETCD_ERR_TIMEOUT:
        return "etcd request timed out";
    case ETCD_ERR_SERVER:
        return "etcd answered with an error";
    case ETCD_ERR_AUTH:
        return "etcd authentication failed";
    case ETCD_ERR_CLOSED:
        return "stream closed";
    default:
        return "unknown error";
    }
}

/* ---- curl <-> libuv glue ---------------------------------------------------------------- */

static void enter(etcd_client_t *c)
{
    c->depth++;
}

static void start_transfer(etcd_req_t *r);
static void client_destroy(etcd_client_t *c);

/* Leaving the outermost call: start deferred requests, reap canceled ones, maybe free. */
static void leave(etcd_client_t *c)
{
    if (--c->depth > 0)
        return;
    c->depth++;
    for (int again = 1; again;) {
        again = 0;
        for (etcd_req_t *r = c->reqs, *n; r; r = n) {
            n = r->next;
            if (r->canceled || c->closing) {
                req_free(r);
                again = 1;
                break;
            }
            if (r->queued == 1) { /* deferred start; 2 means waiting for a token */
                r->queued = 0;
                start_transfer(r);
                again = 1;
                break;
            }
        }
    }
    c->depth--;
    if (c->closing)
        client_destroy(c);
}

static void check_multi(etcd_client_t *c)
{
    CURLMsg *m;
    int left;
    while ((m = cu->multi_info_read(c->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        etcd_req_t *r = NULL;
        cu->easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        CURLcode cc = m->data.result;
        if (r)
            finish_transfer(r, cc);
    }
}

/* curl's socket or timer fired (common/curl_uv.h). */
static void on_curl(void *owner, curl_socket_t fd, int flags)
{
    etcd_client_t *c = owner;
    int running;
    enter(c);
    cu->multi_socket_action(c->multi, fd, flags, &running);
    check_multi(c);
    leave(c);
}

/* ---- request life cycle ----------------------------------------------------------------- */

static void rotate(etcd_client_t *c, size_t failed);
static void token_rejected(etcd_client_t *c, uint32_t gen);
static int retryable_error(long status, const etcd_error_t *e);
static int auth_error(const etcd_error_t *e);

/* An error line inside a stream (e.g. "no leader" on a watch that requires one): the next
   attempt should go to another endpoint, or authenticate again. */
static void stream_error(etcd_req_t *r, const char *line, size_t len)
{
    etcd_error_t e;
    if (etcd_decode_error(line, len, &e) != 1)
        return;
    if (retryable_error(0, &e))
        rotate(r->c, r->endpoint);
    else if (auth_error(&e) && r->c->username)
        token_rejected(r->c, r->token_gen);
}

/* Per connection: how many keepalive probes may go unanswered, and how long sent data may stay
 * unacknowledged, before the kernel gives up on the connection. */
static int sockopt_cb(void *ud, curl_socket_t fd, curlsocktype purpose)
{
    (void)ud;
    if (purpose == CURLSOCKTYPE_IPCXN) {
        int cnt = 3;
        unsigned int user_timeout_ms = 5000;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
        (void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms,
                         sizeof(user_timeout_ms));
    }
    return CURL_SOCKOPT_OK;
}

static size_t write_cb(char *p, size_t size, size_t nmemb, void *ud)
{
    etcd_req_t *r = ud;
    size_t n = size * nmemb;
    if (r->canceled)
        return 0; /* aborts the transfer; reaped in leave() */
    if (!r->status)
        cu->easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
    if (append(r, p, n) < 0)
        return 0;
    if (!r->is_stream || r->status != 200)
        return n;
    /* A stream: hand out each complete line, keep the rest. */
    size_t start = 0;
    for (;;) {
        char *nl = memchr(r->resp + start, '\n', r->resp_len - start);
        if (!nl)
            break;
        size_t len = (size_t)(nl - (r->resp + start));
        if (len > 9 && memcmp(r->resp + start, "{\"error\":", 9) == 0)
            stream_error(r, r->resp + start, len);
        if (len > 0)
            r->on_line(r->ud, r->resp + start, len);
        start += len + 1;
        if (r->canceled)
            return 0;
    }
    if (start > 0) {
        memmove(r->resp, r->resp + start, r->resp_len - start);
        r->resp_len -= start;
    }
    return n;
}

static void set_auth_header(etcd_req_t *r)
{
    etcd_client_t *c = r->c;
    r->token_gen = c->auth.token_gen;
    if (c->token && !r->internal && etcd_auth_sm_has_token(&c->auth)) {
        free(c->auth_header);
        c->auth_header = NULL;
        if (asprintf(&c->auth_header, "Authorization: %s", c->token) > 0)
            r->headers = cu->slist_append(r->headers, c->auth_header);
    }
}

static void fail(etcd_req_t *r, int err, const char *body, size_t len);
static void submit(etcd_req_t *r);

static void on_kick(uv_timer_t *t)
{
    etcd_client_t *c = t->data;
    enter(c);
    for (etcd_req_t *r = c->reqs; r; r = r->next)
        if (r->queued == 3 && !r->canceled) {
            r->queued = 0;
            fail(r, r->pending_err, "", 0);
        }
    leave(c);
}

/* A request that could not start: its callback runs on the next loop turn, so the pointer the
   caller got stays valid until then. */
static void fail_later(etcd_req_t *r, int err)
{
    r->queued = 3;
    r->pending_err = err;
    uv_timer_start(&r->c->kick, on_kick, 0, 0);
}

static void start_transfer(etcd_req_t *r)
{
    etcd_client_t *c = r->c;
    char url[2048];
    r->endpoint = c->current;
    r->status = 0;
    r->resp_len = 0;
    snprintf(url, sizeof(url), "%s%s", c->endpoints[c->current], r->path);
    r->easy = cu->easy_init();
    if (!r->easy) {
        fail_later(r, ETCD_ERR_NOMEM);
        return;
    }
    r->headers = cu->slist_append(NULL, "Content-Type: application/json");
    if (r->is_stream)
        r->headers = cu->slist_append(r->headers, "Grpc-Metadata-hasleader: true");
    set_auth_header(r);
    CURL *e = r->easy;
    cu->easy_setopt(e, CURLOPT_URL, url);
    cu->easy_setopt(e, CURLOPT_PRIVATE, r);
    cu->easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
    cu->easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(r->body));
    cu->easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
    cu->easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    cu->easy_setopt(e, CURLOPT_WRITEDATA, r);
    cu->easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    cu->easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)c->connect_timeout_ms);
    if (!r->is_stream)
        cu->easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)c->request_timeout_ms);
    /* an etcd that silently stops answering (a partition drops packets, no RST) is noticed
     * in about 5 s: keepalive probes every second after 2 idle seconds, 3 unanswered ones
     * close the connection (the kernel's default count, 9, made it 23 s), and unacknowledged
     * data gives up after 5 s (TCP_USER_TIMEOUT, sockopt_cb) */
    cu->easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    cu->easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 2L);
    cu->easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 1L);
    cu->easy_setopt(e, CURLOPT_SOCKOPTFUNCTION, sockopt_cb);
    cu->easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    if (c->ca_file)
        cu->easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
    if (c->cert_file)
        cu->easy_setopt(e, CURLOPT_SSLCERT, c->cert_file);
    if (c->key_file)
        cu->easy_setopt(e, CURLOPT_SSLKEY, c->key_file);
    if (cu->multi_add_handle(c->multi, e) != CURLM_OK) {
        req_drop_easy(r);
        fail_later(r, ETCD_ERR_NOMEM);
    }
}

/* Calls the user's callback once, then the request is reaped. */
static void fail(etcd_req_t *r, int err, const char *body, size_t len)
{
    if (r->canceled)
        return;
    r->canceled = 1; /* reaped in leave(); no callback after this one */
    if (r->is_stream) {
        if (r->on_close)
            r->on_close(r->ud, err, body, len);
    } else if (r->done) {
        r->done(r->ud, err, body, len);
    }
}

static void rotate(etcd_client_t *c, size_t failed)
{
    if (c->n_endpoints > 1 && c->current == failed) {
        c->current = (c->current + 1) % c->n_endpoints;
        mesh_debug("registry", "etcd: endpoint %s failed, moving to %s", c->endpoints[failed],
                   c->endpoints[c->current]);
    }
}

/* Try the request again on the next endpoint, or give up with err. */
static void failover(etcd_req_t *r, int err, const char *body, size_t len)
{
    etcd_client_t *c = r->c;
    rotate(c, r->endpoint);
    req_drop_easy(r);
    if (++r->attempts < (int)c->n_endpoints) {
        r->queued = 1; /* restarted in leave() */
        return;
    }
    fail(r, err, body, len);
}

static int retryable_error(long status, const etcd_error_t *e)
{
    return status == 503 || e->code == ETCD_CODE_UNAVAILABLE || strstr(e->message, "no leader") ||
           strstr(e->message, "leader changed") || strstr(e->message, "timed out");
}

static int auth_error(const etcd_error_t *e)
{
    return e->code == ETCD_CODE_UNAUTHENTICATED || strstr(e->message, "invalid auth token") ||
           strstr(e->message, "user name is empty") ||
           strstr(e->message, "revision of auth store is old");
}

static void finish_transfer(etcd_req_t *r, CURLcode cc)
{
    etcd_client_t *c = r->c;
    if (r->canceled) {
        req_drop_easy(r);
        return;
    }
    if (!r->status && r->easy)
        cu->easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
    if (cc != CURLE_OK && r->status == 0) {
        /* could not connect, no answer, or timed out: next endpoint */
        mesh_debug("registry", "etcd %s%s: %s", c->endpoints[r->endpoint], r->path,
                   cu->easy_strerror(cc));
        failover(r, cc == CURLE_OPERATION_TIMEDOUT ? ETCD_ERR_TIMEOUT : ETCD_ERR_UNAVAILABLE, "",
                 0);
        return;
    }
    if (r->is_stream && r->status == 200) {
        /* The stream ended (etcd went away, or the connection broke). */
        if (cc != CURLE_OK)
            rotate(c, r->endpoint);
        req_drop_easy(r);
        fail(r, ETCD_ERR_CLOSED, "", 0);
        return;
    }
    if (cc != CURLE_OK && r->status == 200) {
        req_drop_easy(r);
        failover(r, cc == CURLE_OPERATION_TIMEDOUT ? ETCD_ERR_TIMEOUT : ETCD_ERR_UNAVAILABLE, "",
                 0);
        return;
    }
    req_drop_easy(r);
    const char *body = r->resp ? r->resp : "";
    if (r->status == 200) {
        fail(r, ETCD_OK, body, r->resp_len);
        return;
    }
    etcd_error_t e;
    etcd_decode_error(body, r->resp_len, &e);
    if (!r->internal && c->username && auth_error(&e) && !r->auth_retried) {
        r->auth_retried = 1;
        token_rejected(c, r->token_gen);
        mesh_info("registry", "etcd: auth token rejected (%s), authenticating again", e.message);
        submit(r);
        return;
    }
    if (retryable_error(r->status, &e)) {
        failover(r, ETCD_ERR_UNAVAILABLE, body, r->resp_len);
        return;
    }
    fail(r, ETCD_ERR_SERVER, body, r->resp_len);
}

/* ---- authentication --------------------------------------------------------------------- */

/* etcd rejected the token a request was sent with: the machine decides whether it is the
 * current one, which is then forgotten (the next request authenticates again). */
static void token_rejected(etcd_client_t *c, uint32_t gen)
{
    etcd_auth_sm_rejected(&c->auth, gen);
    if (!etcd_auth_sm_has_token(&c->auth)) {
        free(c->token);
        c->token = NULL;
    }
}

static void on_auth(void *ud, int err, const char *body, size_t len)
{
    etcd_client_t *c = ud;
    json_t *root = err == ETCD_OK ? json_loadb(body, len, 0, NULL) : NULL;
    const json_t *tok = json_object_get(root, "token");
    char *token = json_is_string(tok) ? strdup(json_string_value(tok)) : NULL;
    json_decref(root);
    etcd_auth_answer_t answer = token ? ETCD_AUTH_ANSWER_OK
                                : err == ETCD_OK || err == ETCD_ERR_SERVER
                                    ? ETCD_AUTH_ANSWER_REFUSED
                                    : ETCD_AUTH_ANSWER_UNREACHED;
    if (token) {
        free(c->token);
        c->token = token;
    }
    unsigned fx = etcd_auth_sm_answered(&c->auth, answer, uv_now(c->loop));
    if (fx & ETCD_AUTH_FX_LOG_AGAIN)
        mesh_info("registry", "etcd: authenticated as user %s again", c->username);
    if (fx & ETCD_AUTH_FX_LOG_REFUSED) { /* once per streak: a wrong password is no log flood */
        etcd_error_t e;
        etcd_decode_error(body, len, &e);
        mesh_error("registry",
                   "etcd: authentication as user %s refused: %s (check --etcd-user and "
                   "--etcd-password-file); asking again every %d s at most, without further logs",
                   c->username, e.message[0] ? e.message : "no token in the answer",
                   (int)(c->auth.hold_ms / 1000));
    }
    for (etcd_req_t *r = c->reqs; r; r = r->next) {
        if (r->queued != 2 || r->canceled)
            continue;
        if (fx & ETCD_AUTH_FX_RELEASE) {
            r->queued = 1;
        } else {
            r->queued = 0;
            fail(r, answer == ETCD_AUTH_ANSWER_REFUSED ? ETCD_ERR_AUTH : err, "", 0);
        }
    }
}

static etcd_req_t *req_new(etcd_client_t *c, const char *path, const char *body)
{
    etcd_req_t *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->c = c;
    r->path = strdup(path);
    r->body = strdup(body ? body : "{}");
    if (!r->path || !r->body) {
        free(r->path);
        free(r->body);
        free(r);
        return NULL;
    }
    req_link(c, r);
    return r;
}

/* Sends the authentication (the machine said START); on failure to even queue it, the
 * machine hears "unreached" and the waiting requests fail on the next loop turn. */
static void start_auth(etcd_client_t *c)
{
    json_t *j =
        json_pack("{s:s,s:s}", "name", c->username, "password", c->password ? c->password : "");
    char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    etcd_req_t *r = body ? req_new(c, "/v3/auth/authenticate", body) : NULL;
    free(body);
    if (!r) {
        etcd_auth_sm_answered(&c->auth, ETCD_AUTH_ANSWER_UNREACHED, uv_now(c->loop));
        for (etcd_req_t *w = c->reqs; w; w = w->next)
            if (w->queued == 2 && !w->canceled)
                fail_later(w, ETCD_ERR_NOMEM);
        return;
    }
    r->internal = 1;
    r->done = on_auth;
    r->ud = c;
    r->queued = 1;
}

/* Queues r to start when the outermost call returns (after a token, if one is needed). */
static void submit(etcd_req_t *r)
{
    etcd_client_t *c = r->c;
    r->attempts = 0;
    if (r->internal) {
        r->queued = 1;
        return;
    }
    switch (etcd_auth_sm_before(&c->auth, uv_now(c->loop))) {
    case ETCD_AUTH_SEND:
        r->queued = 1;
        break;
    case ETCD_AUTH_WAIT:
        r->queued = 2;
        break;
    case ETCD_AUTH_START:
        r->queued = 2;
        start_auth(c);
        break;
    case ETCD_AUTH_FAIL: /* refused a moment ago: do not ask etcd again yet */
        fail_later(r, ETCD_ERR_AUTH);
        break;
    }
}

/* ---- public API ------------------------------------------------------------------------- */

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

etcd_client_t *etcd_client_new(uv_loop_t *loop, const etcd_client_cfg_t *cfg)
{
    char why[256];
    if (!mesh_curl(why, sizeof(why))) {
        mesh_error("etcd", "%s", why);
        return NULL;
    }
    if (!cfg->endpoints || !*cfg->endpoints)
        return NULL;
    etcd_client_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->loop = loop;
    char *list = strdup(cfg->endpoints), *save = NULL;
    for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        size_t n = strlen(tok);
        while (n > 0 && (tok[n - 1] == '/' || tok[n - 1] == ' '))
            n--;
        if (n == 0)
            continue;
        char **e = realloc(c->endpoints, (c->n_endpoints + 1) * sizeof(*e));
        if (!e)
            break;
        c->endpoints = e;
        c->endpoints[c->n_endpoints++] = strstr(tok, "://") ? strndup(tok, n) : NULL;
        if (!c->endpoints[c->n_endpoints - 1] &&
            asprintf(&c->endpoints[c->n_endpoints - 1], "http://%.*s", (int)n, tok) < 0)
            c->endpoints[c->n_endpoints - 1] = NULL;
        if (!c->endpoints[c->n_endpoints - 1])
            c->n_endpoints--;
    }
    free(list);
    c->username = dup_or_null(cfg->username);
    c->password = cfg->password ? strdup(cfg->password) : NULL;
    c->ca_file = dup_or_null(cfg->ca_file);
    c->cert_file = dup_or_null(cfg->cert_file);
    c->key_file = dup_or_null(cfg->key_file);
    etcd_auth_sm_init(&c->auth, c->username != NULL, 0);
    if (c->username && asprintf(&c->principal, "etcd user %s", c->username) < 0)
        c->principal = NULL;
    else if (!c->username && c->cert_file &&
             asprintf(&c->principal, "the client certificate %s", c->cert_file) < 0)
        c->principal = NULL;
    c->request_timeout_ms = cfg->request_timeout_ms ? cfg->request_timeout_ms : 5000;
    c->connect_timeout_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : 1000;
    c->multi = cu->multi_init();
    if (c->n_endpoints == 0 || !c->multi) {
        c->closing = 1;
        client_destroy(c);
        return NULL;
    }
    uv_timer_init(loop, &c->kick);
    c->kick.data = c;
    mesh_curl_uv_init(&c->cuv, loop, c->multi, on_curl, c);
    c->handles_open = 2;
    return c;
}

static void timer_closed(uv_handle_t *h)
{
    etcd_client_t *c = h->data;
    if (--c->handles_open == 0)
        free(c);
}

static void client_destroy(etcd_client_t *c)
{
    while (c->reqs)
        req_free(c->reqs);
    if (c->multi)
        cu->multi_cleanup(c->multi);
    c->multi = NULL;
    for (size_t i = 0; i < c->n_endpoints; i++)
        free(c->endpoints[i]);
    free(c->endpoints);
    free(c->username);
    free(c->password);
    free(c->ca_file);
    free(c->cert_file);
    free(c->key_file);
    free(c->token);
    free(c->auth_header);
    free(c->principal);
    if (c->handles_open) {
        mesh_curl_uv_close(&c->cuv, timer_closed);
        uv_close((uv_handle_t *)&c->kick, timer_closed);
    } else {
        free(c);
    }
}

void etcd_client_free(etcd_client_t *c)
{
    if (!c || c->closing)
        return;
    c->closing = 1;
    if (c->depth == 0)
        client_destroy(c);
}

static etcd_req_t *post_common(etcd_client_t *c, const char *path, const char *body)
{
    if (c->closing)
        return NULL;
    etcd_req_t *r = req_new(c, path, body);
    if (!r)
        return NULL;
    return r;
}

etcd_req_t *etcd_client_post(etcd_client_t *c, const char *path, const char *body, etcd_done_cb cb,
                             void *ud)
{
    etcd_req_t *r = post_common(c, path, body);
    if (!r)
        return NULL;
    r->done = cb;
    r->ud = ud;
    enter(c);
    submit(r);
    leave(c);
    return r;
}

etcd_req_t *etcd_client_stream(etcd_client_t *c, const char *path, const char *body,
                               etcd_line_cb on_line, etcd_close_cb on_close, void *ud)
{
    etcd_req_t *r = post_common(c, path, body);
    if (!r)
        return NULL;
    r->is_stream = 1;
    r->on_line = on_line;
    r->on_close = on_close;
    r->ud = ud;
    enter(c);
    submit(r);
    leave(c);
    return r;
}

void etcd_req_cancel(etcd_req_t *r)
{
    if (!r || r->canceled)
        return;
    r->canceled = 1;
    etcd_client_t *c = r->c;
    enter(c);
    leave(c);
}

const char *etcd_client_principal(const etcd_client_t *c)
{
    return c->principal;
}

const char *etcd_client_endpoint(const etcd_client_t *c)
{
    return c->endpoints[c->current];
}
