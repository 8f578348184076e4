/*
 * policy/ext_authz.c: external authorization (see policy/ext_authz.h).
 *
 * Layout: configuration, the credential key (the forwarded fields gathered from the call into
 * a reusable scratch buffer), the ALLOW cache, a pending check and its verdict, the HTTP and
 * the gRPC ways of asking, then the public API.
 */
#include "policy/ext_authz.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "envoy/service/auth/v3/external_auth.pb-c.h"
#include "transport/grpc_client.h"
#include "transport/grpc_status.h"
#include "transport/http_fetch.h"

#define ACTOR              "ext_authz"
#define AUTHZ_TIMEOUT_MS   1000
#define AUTHZ_TTL_MS       30000
#define AUTHZ_ENTRIES      1024
#define AUTHZ_MAX_RESPONSE (64 * 1024)
#define AUTHZ_MSG_MAX      384
#define AUTHZ_IDENTITY_MAX 4096
#define AUTHZ_CHECK_PATH   "/envoy.service.auth.v3.Authorization/Check"
#define NO_ENTRY           UINT32_MAX

typedef struct cache_entry {
    uint64_t hash;
    uint64_t expires; /* loop time (ms) */
    char *key;
    size_t key_len;
    char *identity; /* NULL: allowed without identity */
    uint32_t next;  /* bucket chain */
    int used;
} cache_entry_t;

struct pol_authz_call {
    pol_authz_t *a;
    pol_authz_call_t *prev, *next;
    pol_authz_cb cb;
    void *ctx;
    char *key; /* credential key, for the cache on ALLOW */
    size_t key_len;
    uint64_t hash;
    mesh_http_req_t *http;
    mesh_grpc_call_t *grpc;
    uint8_t *reply; /* the gRPC response message */
    size_t reply_len;
    int got_reply;
};

struct pol_authz {
    uv_loop_t *loop;
    pol_authz_mode_t mode;
    char *target;
    char **names; /* forwarded field names, lower case: authorization, cookie, configured */
    size_t n_names;
    char *identity_header;
    char *http_method;
    uint64_t timeout_ms, ttl_ms;
    int fail_open, error_status, cache_off, cache_any_path;
    size_t max_response;
    mesh_http_fetch_t *fetch;
    mesh_grpc_client_t *grpc;
    pol_authz_call_t *calls;
    /* the cache */
    cache_entry_t *entries;
    size_t n_entries, next_slot, live;
    uint32_t *buckets;
    size_t n_buckets; /* a power of two */
    /* scratch for one check: the credential key and each name's merged value */
    char *scratch;
    size_t scratch_len, scratch_cap;
    size_t *val_off, *val_len; /* per name, into scratch; len SIZE_MAX: absent */
    char msg[AUTHZ_MSG_MAX];   /* message of a DONE result */
    pol_authz_stats_t stats;
};

/* ---- configuration ---------------------------------------------------------------------- */

static int add_name(pol_authz_t *a, const char *name, char *err, size_t errlen)
{
    size_t n = strlen(name);
    if (n == 0 || name[0] == ':' || strncasecmp(name, "x-meshd-", 8) == 0) {
        snprintf(err, errlen, "ext_authz: headers: %s cannot be forwarded",
                 n ? name : "an empty name");
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)name[i]) && !strchr("-_.!#$%&'*+^`|~", name[i])) {
            snprintf(err, errlen, "ext_authz: headers: bad header name \"%s\"", name);
            return -1;
        }
    for (size_t i = 0; i < a->n_names; i++)
        if (strcasecmp(a->names[i], name) == 0)
            return 0;
    char **nn = realloc(a->names, (a->n_names + 1) * sizeof(*nn));
    if (!nn)
        return -1;
    a->names = nn;
    char *c = strdup(name);
    if (!c)
        return -1;
    for (char *p = c; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    a->names[a->n_names++] = c;
    return 0;
}

/* ---- the credential key ----------------------------------------------------------------- */

static int scratch_put(pol_authz_t *a, const void *p, size_t n)
{
    if (a->scratch_len + n > a->scratch_cap) {
        size_t c = a->scratch_cap ? a->scratch_cap : 1024;
        while (c < a->scratch_len + n)
            c *= 2;
        char *s = realloc(a->scratch, c); /* grows to the largest key seen, then stays */
        if (!s)
            return -1;
        a->scratch = s;
        a->scratch_cap = c;
    }
    memcpy(a->scratch + a->scratch_len, p, n);
    a->scratch_len += n;
    return 0;
}

static int name_is(const pol_authz_field_t *f, const char *name, size_t len)
{
    return f->name_len == len && strncasecmp(f->name, name, len) == 0;
}

/*
 * Gathers the forwarded fields of info into the scratch buffer: the path (unless the cache is
 * shared by every path), then per forwarded name its values joined (cookie crumbs with "; ",
 * others with ", ") behind a length prefix, so the scratch is the cache key. Returns 0, 1 when
 * a value has CR, LF or NUL (such a call is denied), -1 when out of memory.
 */
static int gather(pol_authz_t *a, const pol_authz_req_info_t *info)
{
    a->scratch_len = 0;
    const char *path = info->path ? info->path : "";
    if (!a->cache_any_path && scratch_put(a, path, strlen(path) + 1) < 0)
        return -1;
    for (size_t k = 0; k < a->n_names; k++) {
        const char *sep = strcmp(a->names[k], "cookie") == 0 ? "; " : ", ";
        size_t name_len = strlen(a->names[k]);
        size_t len_at = a->scratch_len;
        uint32_t len = 0;
        if (scratch_put(a, &len, sizeof(len)) < 0)
            return -1;
        a->val_off[k] = a->scratch_len;
        int seen = 0;
        for (size_t i = 0; i < info->n_fields; i++) {
            const pol_authz_field_t *f = &info->fields[i];
            if (!name_is(f, a->names[k], name_len))
                continue;
            for (size_t j = 0; j < f->value_len; j++)
                if (f->value[j] == '\r' || f->value[j] == '\n' || f->value[j] == '\0')
                    return 1;
            if ((seen && scratch_put(a, sep, 2) < 0) || scratch_put(a, f->value, f->value_len) < 0)
                return -1;
            seen = 1;
        }
        a->val_len[k] = seen ? a->scratch_len - a->val_off[k] : SIZE_MAX;
        len = seen ? (uint32_t)(a->val_len[k] + 1) : 0; /* 0: absent, 1: present and empty */
        memcpy(a->scratch + len_at, &len, sizeof(len));
    }
    return 0;
}

static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* ---- the ALLOW cache -------------------------------------------------------------------- */

static cache_entry_t *cache_find(pol_authz_t *a, uint64_t hash, const char *key, size_t len)
{
    for (uint32_t i = a->buckets[hash & (a->n_buckets - 1)]; i != NO_ENTRY;
         i = a->entries[i].next) {
        cache_entry_t *e = &a->entries[i];
        if (e->hash == hash && e->key_len == len && memcmp(e->key, key, len) == 0)
            return e;
    }
    return NULL;
}

static void cache_unlink(pol_authz_t *a, uint32_t idx)
{
    cache_entry_t *e = &a->entries[idx];
    uint32_t *p = &a->buckets[e->hash & (a->n_buckets - 1)];
    while (*p != idx)
        p = &a->entries[*p].next;
    *p = e->next;
    free(e->key);
    free(e->identity);
    memset(e, 0, sizeof(*e));
    a->live--;
}

/* Remembers an ALLOW (takes key; identity is copied). Out of memory: not cached. */
static void cache_put(pol_authz_t *a, uint64_t hash, char *key, size_t len, const char *identity)
{
    char *id = identity ? strdup(identity) : NULL;
    if (identity && !id) {
        free(key);
        return;
    }
    uint64_t expires = uv_now(a->loop) + a->ttl_ms;
    cache_entry_t *e = cache_find(a, hash, key, len);
    if (e) { /* refreshed after it expired, or two checks raced */
        free(key);
        free(e->identity);
        e->identity = id;
        e->expires = expires;
        return;
    }
    uint32_t idx = (uint32_t)(a->next_slot++ % a->n_entries); /* the oldest entry */
    if (a->entries[idx].used)
        cache_unlink(a, idx);
    e = &a->entries[idx];
    e->used = 1;
    e->hash = hash;
    e->key = key;
    e->key_len = len;
    e->identity = id;
    e->expires = expires;
    uint32_t *b = &a->buckets[hash & (a->n_buckets - 1)];
    e->next = *b;
    *b = idx;
    a->live++;
}

/* ---- pending checks and verdicts -------------------------------------------------------- */

static void call_free(pol_authz_call_t *c)
{
    pol_authz_t *a = c->a;
    if (c->prev)
        c->prev->next = c->next;
    else
        a->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c->key);
    free(c->reply);
    free(c);
}

/* Printable ASCII of the first line of s[0..n) into out (cap bytes); "..." marks a cut. */
static void clean_text(char *out, size_t cap, const char *s, size_t n)
{
    size_t o = 0, i = 0;
    for (; i < n && o + 4 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\r' || ch == '\n')
            break;
        out[o++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    if (i < n && s[i] != '\r' && s[i] != '\n') {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

static void result_deny(pol_authz_result_t *r, int grpc_status, char *msg)
{
    memset(r, 0, sizeof(*r));
    r->verdict = POL_AUTHZ_DENY;
    r->grpc_status = grpc_status;
    r->http_status = grpc_status == MESH_GRPC_UNAUTHENTICATED ? 401 : 403;
    r->message = msg;
}

/* The service gave no verdict: fail open or closed as configured. msg holds the cause. */
static void result_failure(pol_authz_t *a, pol_authz_result_t *r, char *msg, size_t cap,
                           const char *cause)
{
    snprintf(msg, cap, "meshd: ext_authz: authorization service failed: %s", cause);
    memset(r, 0, sizeof(*r));
    r->service_failed = 1;
    r->message = msg;
    if (a->fail_open) {
        r->verdict = POL_AUTHZ_ALLOW;
        r->http_status = 200;
    } else {
        r->verdict = POL_AUTHZ_DENY;
        r->grpc_status = a->error_status;
        r->http_status = a->error_status == MESH_GRPC_UNAVAILABLE ? 503 : 403;
    }
    a->stats.failed++;
}

/* Hands the verdict to the owner and frees the call; caches an ALLOW the service gave. */
static void call_finish(pol_authz_call_t *c, const pol_authz_result_t *r)
{
    pol_authz_t *a = c->a;
    if (r->verdict == POL_AUTHZ_ALLOW && !r->service_failed && !a->cache_off) {
        cache_put(a, c->hash, c->key, c->key_len, r->identity);
        c->key = NULL;
    }
    c->http = NULL;
    c->grpc = NULL;
    pol_authz_cb cb = c->cb;
    void *ctx = c->ctx;
    call_free(c);
    cb(ctx, r);
}

/* Nonzero when an identity can be forwarded as a header value: no control characters (tab
 * and bytes >= 0x80 are allowed, as HTTP allows them) and at most AUTHZ_IDENTITY_MAX bytes. */
static int identity_ok(const char *id)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++, n++)
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
            return 0;
    return n <= AUTHZ_IDENTITY_MAX;
}

/* An ALLOW with identity id (NULL or "": none), or a failure when id cannot be forwarded. */
static void result_allow(pol_authz_t *a, pol_authz_result_t *r, const char *id, char *msg,
                         size_t cap)
{
    if (id && *id && !identity_ok(id)) {
        char cause[160];
        snprintf(cause, sizeof(cause),
                 "the identity in %s has control characters or is over %d bytes",
                 a->identity_header, AUTHZ_IDENTITY_MAX);
        result_failure(a, r, msg, cap, cause);
        return;
    }
    memset(r, 0, sizeof(*r));
    r->verdict = POL_AUTHZ_ALLOW;
    r->http_status = 200;
    r->message = "";
    r->identity = id && *id ? id : NULL;
    a->stats.allowed++;
}

/* ---- asking over HTTP ------------------------------------------------------------------- */

static void on_http(void *ctx, int status, const mesh_http_response_t *resp, const char *body,
                    size_t len, const char *error)
{
    pol_authz_call_t *c = ctx;
    pol_authz_t *a = c->a;
    char msg[AUTHZ_MSG_MAX], text[160], cause[320];
    pol_authz_result_t r;
    if (status >= 200 && status < 300) {
        result_allow(a, &r, mesh_http_response_header(resp, a->identity_header), msg, sizeof(msg));
    } else if (status == 401 || status == 403) {
        clean_text(text, sizeof(text), body, len);
        snprintf(msg, sizeof(msg), "meshd: ext_authz: denied (%d%s%s)%s%s", status,
                 *mesh_http_response_reason(resp) ? " " : "", mesh_http_response_reason(resp),
                 *text ? ": " : "", text);
        result_deny(&r, status == 401 ? MESH_GRPC_UNAUTHENTICATED : MESH_GRPC_PERMISSION_DENIED,
                    msg);
        a->stats.denied++;
    } else if (status == MESH_HTTP_ERR_BAD_REQUEST) {
        /* the call's own values could not be sent (a path with a line break): never fail open */
        snprintf(msg, sizeof(msg), "meshd: ext_authz: denied: %s", error);
        result_deny(&r, MESH_GRPC_PERMISSION_DENIED, msg);
        a->stats.denied++;
    } else {
        if (status > 0)
            snprintf(cause, sizeof(cause), "it answered %d %s", status,
                     mesh_http_response_reason(resp));
        else
            snprintf(cause, sizeof(cause), "%s", error);
        result_failure(a, &r, msg, sizeof(msg), cause);
        mesh_debug(ACTOR, "%s", msg);
    }
    call_finish(c, &r);
}

/* Starts the HTTP check; returns 0 or -1 (out of memory). */
static int ask_http(pol_authz_t *a, pol_authz_call_t *c, const pol_authz_req_info_t *info)
{
    mesh_http_header_t h[a->n_names + 3];
    char *vals[a->n_names];
    size_t n = 0;
    int rc = -1;
    memset(vals, 0, sizeof(vals));
    for (size_t k = 0; k < a->n_names; k++) {
        if (a->val_len[k] == SIZE_MAX)
            continue;
        vals[k] = strndup(a->scratch + a->val_off[k], a->val_len[k]);
        if (!vals[k])
            goto out;
        h[n].name = a->names[k];
        h[n++].value = vals[k];
    }
    h[n].name = "x-meshd-path";
    h[n++].value = info->path ? info->path : "";
    if (info->peer) {
        h[n].name = "x-meshd-peer";
        h[n++].value = info->peer;
    }
    if (info->request_id && !strpbrk(info->request_id, "\r\n")) {
        h[n].name = "x-request-id";
        h[n++].value = info->request_id;
    }
    mesh_http_request_t q = {
        .method = a->http_method,
        .url = a->target,
        .headers = h,
        .n_headers = n,
        .timeout_ms = a->timeout_ms,
        .max_response = a->max_response,
    };
    c->http = mesh_http_fetch_request(a->fetch, &q, on_http, c);
    rc = c->http ? 0 : -1;
out:
    for (size_t k = 0; k < a->n_names; k++)
        free(vals[k]);
    return rc;
}

/* ---- asking over gRPC ------------------------------------------------------------------- */

static void on_grpc_message(void *ud, mesh_grpc_call_t *call, const uint8_t *msg, size_t len)
{
    pol_authz_call_t *c = ud;
    if (c->got_reply)
        return; /* a unary call has one; a second is ignored */
    c->reply = len ? malloc(len) : NULL;
    if (len && !c->reply)
        return;
    if (len)
        memcpy(c->reply, msg, len);
    c->reply_len = len;
    c->got_reply = 1;
}

/* The identity among the OK response's header options, or NULL. */
static const char *ok_identity(const pol_authz_t *a,
                               const Envoy__Service__Auth__V3__CheckResponse *resp)
{
    if (resp->http_response_case !=
            ENVOY__SERVICE__AUTH__V3__CHECK_RESPONSE__HTTP_RESPONSE_OK_RESPONSE ||
        !resp->ok_response)
        return NULL;
    const Envoy__Service__Auth__V3__OkHttpResponse *ok = resp->ok_response;
    for (size_t i = 0; i < ok->n_headers; i++) {
        const Envoy__Config__Core__V3__HeaderValue *h = ok->headers[i]->header;
        if (h && h->key && strcasecmp(h->key, a->identity_header) == 0 && h->value && *h->value)
            return h->value;
    }
    return NULL;
}

static void on_grpc_end(void *ud, mesh_grpc_call_t *call, int status, const char *message)
{
    pol_authz_call_t *c = ud;
    pol_authz_t *a = c->a;
    char msg[AUTHZ_MSG_MAX], text[200], cause[256];
    pol_authz_result_t r;
    Envoy__Service__Auth__V3__CheckResponse *resp = NULL;
    if (status != MESH_GRPC_OK) {
        snprintf(cause, sizeof(cause), "Check ended with %s%s%s", mesh_grpc_status_name(status),
                 *message ? ": " : "", message);
        result_failure(a, &r, msg, sizeof(msg), cause);
    } else if (!c->got_reply || !(resp = envoy__service__auth__v3__check_response__unpack(
                                      NULL, c->reply_len, c->reply))) {
        result_failure(a, &r, msg, sizeof(msg),
                       c->got_reply ? "Check answered a message that is not a CheckResponse"
                                    : "Check answered no message");
    } else if (!resp->status || resp->status->code == 0) {
        /* the identity points into resp until it is freed below */
        result_allow(a, &r, ok_identity(a, resp), msg, sizeof(msg));
    } else {
        const Envoy__Service__Auth__V3__DeniedHttpResponse *d =
            resp->http_response_case ==
                    ENVOY__SERVICE__AUTH__V3__CHECK_RESPONSE__HTTP_RESPONSE_DENIED_RESPONSE
                ? resp->denied_response
                : NULL;
        int unauth = resp->status->code == MESH_GRPC_UNAUTHENTICATED ||
                     (d && d->status && d->status->code == 401);
        const char *why = resp->status->message && *resp->status->message ? resp->status->message
                          : d && d->body                                  ? d->body
                                                                          : "";
        clean_text(text, sizeof(text), why, strlen(why));
        snprintf(msg, sizeof(msg), "meshd: ext_authz: denied (%s)%s%s",
                 mesh_grpc_status_name(resp->status->code), *text ? ": " : "", text);
        result_deny(&r, unauth ? MESH_GRPC_UNAUTHENTICATED : MESH_GRPC_PERMISSION_DENIED, msg);
        a->stats.denied++;
    }
    if (r.service_failed)
        mesh_debug(ACTOR, "%s", msg);
    call_finish(c, &r);
    if (resp)
        envoy__service__auth__v3__check_response__free_unpacked(resp, NULL);
}

/* Splits "ip:port" / "[v6]:port" into address and port (port 0 when there is none). */
static void split_peer(const char *peer, char *addr, size_t cap, uint32_t *port)
{
    *port = 0;
    snprintf(addr, cap, "%s", peer);
    char *colon = strrchr(addr, ':');
    if (addr[0] == '[') {
        char *close = strchr(addr, ']');
        if (close && close[1] == ':') {
            *port = (uint32_t)strtoul(close + 2, NULL, 10);
            *close = '\0';
            memmove(addr, addr + 1, strlen(addr + 1) + 1);
        }
    } else if (colon && strchr(addr, ':') == colon) {
        *port = (uint32_t)strtoul(colon + 1, NULL, 10);
        *colon = '\0';
    }
}

static int ask_grpc(pol_authz_t *a, pol_authz_call_t *c, const pol_authz_req_info_t *info)
{
    Envoy__Service__Auth__V3__AttributeContext__HttpRequest__HeadersEntry ent[a->n_names + 1];
    Envoy__Service__Auth__V3__AttributeContext__HttpRequest__HeadersEntry *ents[a->n_names + 1];
    char *vals[a->n_names];
    size_t n = 0;
    int rc = -1;
    uint8_t *buf = NULL;
    memset(vals, 0, sizeof(vals));
    for (size_t k = 0; k < a->n_names; k++) {
        if (a->val_len[k] == SIZE_MAX)
            continue;
        vals[k] = strndup(a->scratch + a->val_off[k], a->val_len[k]);
        if (!vals[k])
            goto out;
        envoy__service__auth__v3__attribute_context__http_request__headers_entry__init(&ent[n]);
        ent[n].key = a->names[k];
        ent[n].value = vals[k];
        ents[n] = &ent[n];
        n++;
    }
    Envoy__Service__Auth__V3__AttributeContext__HttpRequest http;
    envoy__service__auth__v3__attribute_context__http_request__init(&http);
    http.id = (char *)(info->request_id ? info->request_id : "");
    http.method = "POST";
    http.path = (char *)(info->path ? info->path : "");
    http.host = (char *)(info->authority ? info->authority : "");
    http.scheme = "http";
    http.protocol = "HTTP/2";
    http.headers = ents;
    http.n_headers = n;
    Envoy__Service__Auth__V3__AttributeContext__Request req;
    envoy__service__auth__v3__attribute_context__request__init(&req);
    req.http = &http;
    char addr[128];
    Envoy__Config__Core__V3__SocketAddress sa;
    envoy__config__core__v3__socket_address__init(&sa);
    Envoy__Config__Core__V3__Address ad;
    envoy__config__core__v3__address__init(&ad);
    Envoy__Service__Auth__V3__AttributeContext__Peer src;
    envoy__service__auth__v3__attribute_context__peer__init(&src);
    if (info->peer) {
        split_peer(info->peer, addr, sizeof(addr), &sa.port_value);
        sa.address = addr;
        ad.address_case = ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS;
        ad.socket_address = &sa;
        src.address = &ad;
    }
    Envoy__Service__Auth__V3__AttributeContext ctx;
    envoy__service__auth__v3__attribute_context__init(&ctx);
    ctx.source = &src;
    ctx.request = &req;
    Envoy__Service__Auth__V3__CheckRequest cr;
    envoy__service__auth__v3__check_request__init(&cr);
    cr.attributes = &ctx;
    size_t len = envoy__service__auth__v3__check_request__get_packed_size(&cr);
    buf = malloc(len ? len : 1);
    if (!buf)
        goto out;
    envoy__service__auth__v3__check_request__pack(&cr, buf);
    static const mesh_grpc_call_ops_t ops = {on_grpc_message, on_grpc_end};
    c->grpc = mesh_grpc_unary(a->grpc, AUTHZ_CHECK_PATH, buf, len, a->timeout_ms, &ops, c);
    rc = c->grpc ? 0 : -1;
out:
    free(buf);
    for (size_t k = 0; k < a->n_names; k++)
        free(vals[k]);
    return rc;
}

/* ---- public API ------------------------------------------------------------------------- */

pol_authz_t *pol_authz_new(uv_loop_t *loop, const pol_authz_config_t *cfg, char *err, size_t errlen)
{
    char scratch_err[1];
    if (!err) {
        err = scratch_err;
        errlen = sizeof(scratch_err);
    }
    if (!cfg || !cfg->target || !*cfg->target) {
        snprintf(err, errlen, "ext_authz: target: missing (a URL or host:port)");
        return NULL;
    }
    if (cfg->mode == POL_AUTHZ_HTTP && strncmp(cfg->target, "http://", 7) != 0 &&
        strncmp(cfg->target, "https://", 8) != 0) {
        snprintf(err, errlen, "ext_authz: target: %s is not an http:// or https:// URL",
                 cfg->target);
        return NULL;
    }
    if (cfg->mode == POL_AUTHZ_GRPC && (strstr(cfg->target, "://") || !strchr(cfg->target, ':'))) {
        snprintf(err, errlen, "ext_authz: target: %s is not host:port (gRPC is h2c)", cfg->target);
        return NULL;
    }
    if (cfg->mode != POL_AUTHZ_HTTP && cfg->mode != POL_AUTHZ_GRPC) {
        snprintf(err, errlen, "ext_authz: mode: unknown");
        return NULL;
    }
    if (cfg->error_status < 0 || cfg->error_status > 16) {
        snprintf(err, errlen, "ext_authz: error_status: %d is not a gRPC status",
                 cfg->error_status);
        return NULL;
    }
    pol_authz_t *a = calloc(1, sizeof(*a));
    if (!a) {
        snprintf(err, errlen, "ext_authz: out of memory");
        return NULL;
    }
    a->loop = loop;
    a->mode = cfg->mode;
    a->target = strdup(cfg->target);
    a->identity_header = strdup(cfg->identity_header && *cfg->identity_header ? cfg->identity_header
                                                                              : "x-meshd-identity");
    a->http_method = strdup(cfg->http_method && *cfg->http_method ? cfg->http_method : "GET");
    a->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : AUTHZ_TIMEOUT_MS;
    a->ttl_ms = cfg->cache_ttl_ms ? cfg->cache_ttl_ms : AUTHZ_TTL_MS;
    a->fail_open = cfg->fail_open;
    a->error_status = cfg->error_status ? cfg->error_status : MESH_GRPC_UNAVAILABLE;
    a->cache_off = cfg->cache_off;
    a->cache_any_path = cfg->cache_any_path;
    a->max_response = cfg->max_response ? cfg->max_response : AUTHZ_MAX_RESPONSE;
    a->n_entries = cfg->cache_entries ? cfg->cache_entries : AUTHZ_ENTRIES;
    a->n_buckets = 16;
    while (a->n_buckets < 2 * a->n_entries)
        a->n_buckets *= 2;
    a->entries = calloc(a->n_entries, sizeof(*a->entries));
    a->buckets = malloc(a->n_buckets * sizeof(*a->buckets));
    int bad = !a->target || !a->identity_header || !a->http_method || !a->entries || !a->buckets;
    if (!bad)
        for (size_t i = 0; i < a->n_buckets; i++)
            a->buckets[i] = NO_ENTRY;
    err[0] = '\0';
    bad = bad || add_name(a, "authorization", err, errlen) || add_name(a, "cookie", err, errlen);
    for (size_t i = 0; !bad && i < cfg->n_headers; i++)
        bad = !cfg->headers[i] || add_name(a, cfg->headers[i], err, errlen);
    if (!bad) {
        a->val_off = calloc(a->n_names, sizeof(*a->val_off));
        a->val_len = calloc(a->n_names, sizeof(*a->val_len));
        bad = !a->val_off || !a->val_len;
    }
    if (!bad && a->mode == POL_AUTHZ_HTTP) {
        a->fetch = mesh_http_fetch_new(loop);
        if (!a->fetch)
            snprintf(err, errlen, "ext_authz: cannot make the HTTP client (libcurl missing?)");
        bad = !a->fetch;
    } else if (!bad) {
        mesh_grpc_client_cfg_t gc = {.addr = a->target};
        a->grpc = mesh_grpc_client_new(loop, &gc);
        if (!a->grpc)
            snprintf(err, errlen, "ext_authz: target: cannot make a gRPC client for %s", a->target);
        bad = !a->grpc;
    }
    if (bad) {
        if (!err[0])
            snprintf(err, errlen, "ext_authz: out of memory");
        pol_authz_free(a);
        return NULL;
    }
    return a;
}

pol_authz_status_t pol_authz_check(pol_authz_t *a, const pol_authz_req_info_t *info,
                                   pol_authz_result_t *out, pol_authz_cb cb, void *ctx,
                                   pol_authz_call_t **call)
{
    pol_authz_result_t r;
    a->stats.checks++;
    if (call)
        *call = NULL;
    int g = gather(a, info);
    if (g == 1) {
        snprintf(a->msg, sizeof(a->msg),
                 "meshd: ext_authz: denied: a credential header has a line break or NUL");
        result_deny(&r, MESH_GRPC_PERMISSION_DENIED, a->msg);
        *out = r;
        return POL_AUTHZ_DONE;
    }
    if (g < 0) {
        result_failure(a, &r, a->msg, sizeof(a->msg), "out of memory");
        *out = r;
        return POL_AUTHZ_DONE;
    }
    uint64_t hash = hash_bytes(a->scratch, a->scratch_len);
    if (!a->cache_off) {
        cache_entry_t *e = cache_find(a, hash, a->scratch, a->scratch_len);
        if (e && e->expires > uv_now(a->loop)) {
            memset(out, 0, sizeof(*out));
            out->verdict = POL_AUTHZ_ALLOW;
            out->http_status = 200;
            out->identity = e->identity;
            out->message = "";
            out->cached = 1;
            a->stats.cache_hits++;
            return POL_AUTHZ_DONE;
        }
    }
    pol_authz_call_t *c = calloc(1, sizeof(*c));
    if (c)
        c->key = malloc(a->scratch_len ? a->scratch_len : 1);
    if (!c || !c->key) {
        free(c);
        result_failure(a, &r, a->msg, sizeof(a->msg), "out of memory");
        *out = r;
        return POL_AUTHZ_DONE;
    }
    memcpy(c->key, a->scratch, a->scratch_len);
    c->key_len = a->scratch_len;
    c->hash = hash;
    c->a = a;
    c->cb = cb;
    c->ctx = ctx;
    c->next = a->calls;
    if (a->calls)
        a->calls->prev = c;
    a->calls = c;
    int rc = a->mode == POL_AUTHZ_HTTP ? ask_http(a, c, info) : ask_grpc(a, c, info);
    if (rc < 0) {
        call_free(c);
        result_failure(a, &r, a->msg, sizeof(a->msg), "out of memory");
        *out = r;
        return POL_AUTHZ_DONE;
    }
    a->stats.asked++;
    if (call)
        *call = c;
    return POL_AUTHZ_PENDING;
}

void pol_authz_cancel(pol_authz_call_t *c)
{
    if (!c)
        return;
    if (c->http)
        mesh_http_fetch_cancel(c->http);
    if (c->grpc)
        mesh_grpc_call_cancel(c->grpc);
    call_free(c);
}

void pol_authz_stats(const pol_authz_t *a, pol_authz_stats_t *out)
{
    *out = a->stats;
    out->cache_size = a->live;
}

void pol_authz_free(pol_authz_t *a)
{
    if (!a)
        return;
    while (a->calls)
        pol_authz_cancel(a->calls);
    if (a->fetch)
        mesh_http_fetch_close(a->fetch);
    if (a->grpc)
        mesh_grpc_client_free(a->grpc);
    for (size_t i = 0; a->entries && i < a->n_entries; i++) {
        free(a->entries[i].key);
        free(a->entries[i].identity);
    }
    for (size_t i = 0; i < a->n_names; i++)
        free(a->names[i]);
    free(a->names);
    free(a->entries);
    free(a->buckets);
    free(a->scratch);
    free(a->val_off);
    free(a->val_len);
    free(a->target);
    free(a->identity_header);
    free(a->http_method);
    free(a);
}
