/*
 * policy/chain.c: the policy chain: snapshots built from the `policy:` block, and the
 * per-worker filter that runs each call through trace, identity, authn, signature, ACL, rate
 * limit and forward (see policy/chain.h).
 */
#include "policy/chain.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "actors/evring.h"
#include "common/file_read.h"
#include "common/log.h"
#include "common/peer_id.h"
#include "policy/acl.h"
#include "policy/call_identity.h"
#include "policy/cidr.h"
#include "policy/ext_authz.h"
#include "policy/fault.h"
#include "policy/jwks.h"
#include "policy/jwt.h"
#include "policy/jwt_cache.h"
#include "policy/mesh_identity.h"
#include "policy/nonce_cache.h"
#include "policy/ratelimit.h"
#include "policy/signature.h"
#include "policy/trace.h"
#include "transport/grpc_status.h"

#define ACTOR "policy"

/* Verified tokens a worker remembers, and for how long at most without an exp. */
#define JWT_CACHE_ENTRIES 4096
#define JWT_CACHE_MAX_TTL 3600
/* Access-log buffer per worker, and how often it is written out. */
#define ACCESS_BUF   (64 * 1024)
#define ACCESS_FLUSH 200
/* Nonces remembered by the node for signature replay checks. */
#define NONCE_CAPACITY 131072
/* Header carrying forwarded claims: prefix + claim name. */
#define CLAIM_PREFIX "x-meshd-claim-"

/* ---- snapshots --------------------------------------------------------------------------------
 */

/* What one rule needs at run time. */
typedef struct rule_rt {
    pol_acl_t *acl;      /* NULL: no lists */
    pol_ratelimit_t *rl; /* NULL: no limit */
} rule_rt_t;

struct pol_chain {
    _Atomic int refs;
    pol_conf_t *conf;
    rule_rt_t *rt; /* per rule */
    pol_keyset_t *keys;
    pol_jwt_rules_t jwt;
    pol_identity_keys_t idkeys;
    int has_idkeys;
    pol_sig_secrets_t *secrets;
    pol_cidr_set_t *trusted;
    pol_acl_t *forwarders;      /* identity.forwarders (an allow list); NULL: every node */
    uint64_t sample_below;      /* trace ids hashing below this are access-logged */
    size_t identity_header_len; /* strlen(conf->identity_header), for each call's scan */
    pol_routes_conf_t *routes;  /* the `routes:` block (policy/route_conf.h); never NULL */
};

/* The node's nonce cache: one for the process, so a reload never forgets a nonce. */
static pol_nonce_cache_t *nonces;
static pthread_once_t nonces_once = PTHREAD_ONCE_INIT;
static void nonces_init(void)
{
    char err[128];
    nonces = pol_nonce_cache_new(NONCE_CAPACITY, err, sizeof(err));
    if (!nonces)
        mesh_error(ACTOR, "replay cache: %s", err);
}

static int read_file(const char *path, char **out, size_t *len, char *err, size_t errlen)
{
    *out = mesh_file_read(path, 8u << 20, MESH_FILE_SECRET, len, err, errlen);
    return *out ? 0 : -1;
}

/* The mesh secret file: the current secret (base64) on its first line, optionally the
 * previous one on the second. */
static int load_mesh_secret(pol_chain_t *c, char *err, size_t errlen)
{
    char *text;
    size_t len;
    if (read_file(c->conf->mesh_secret_file, &text, &len, err, errlen) != 0)
        return -1;
    char *save = NULL, *cur = strtok_r(text, "\r\n", &save), *prev = strtok_r(NULL, "\r\n", &save);
    char why[160];
    int rc = pol_identity_keys_init(&c->idkeys, cur ? cur : "", prev,
                                    c->conf->mesh_token_ttl_ms / 1000, why, sizeof(why));
    memset(text, 0, len);
    free(text);
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", c->conf->mesh_secret_file, why);
        return -1;
    }
    c->has_idkeys = 1;
    return 0;
}

static int build_jwt(pol_chain_t *c, char *err, size_t errlen)
{
    const pol_conf_t *cf = c->conf;
    pol_jwt_rules_init(&c->jwt);
    if (cf->algorithms.n) {
        c->jwt.algs = 0;
        for (size_t i = 0; i < cf->algorithms.n; i++) {
            const char *a = cf->algorithms.v[i];
            pol_jwt_alg_t alg = pol_jwt_alg_from_name(a, strlen(a));
            if (!alg) {
                snprintf(err, errlen, "%s: policy.jwt.algorithms: '%s' is not a JWS algorithm",
                         cf->file, a);
                return -1;
            }
            c->jwt.algs |= POL_JWT_ALG_BIT(alg);
        }
    }
    c->jwt.issuers = (const char *const *)cf->issuers.v;
    c->jwt.n_issuers = cf->issuers.n;
    c->jwt.audiences = (const char *const *)cf->audiences.v;
    c->jwt.n_audiences = cf->audiences.n;
    c->jwt.skew_s = cf->clock_skew_ms / 1000;
    c->jwt.claims = (const char *const *)cf->identity_claims.v;
    c->jwt.n_claims = cf->identity_claims.n;
    c->jwt.generation = pol_jwt_rules_new_generation();
    if (pol_jwt_rules_check(&c->jwt, err, errlen) != 0)
        return -1;
    if (cf->jwks_file) {
        char *text, why[256];
        size_t len;
        if (read_file(cf->jwks_file, &text, &len, err, errlen) != 0)
            return -1;
        c->keys = pol_keyset_parse(text, len, why, sizeof(why));
        free(text);
        if (!c->keys) {
            snprintf(err, errlen, "%s: %s", cf->jwks_file, why);
            return -1;
        }
        if (pol_keyset_skipped(c->keys))
            mesh_warn(ACTOR, "%s: %zu keys skipped (%zu usable)", cf->jwks_file,
                      pol_keyset_skipped(c->keys), pol_keyset_count(c->keys));
    }
    return 0;
}

static int build_rules(pol_chain_t *c, char *err, size_t errlen)
{
    const pol_conf_t *cf = c->conf;
    c->rt = calloc(cf->n_rules ? cf->n_rules : 1, sizeof(*c->rt));
    if (!c->rt)
        return -1;
    for (size_t i = 0; i < cf->n_rules; i++) {
        const pol_rule_t *r = &cf->rules[i];
        char why[256];
        if (r->allow_peers.n || r->deny_peers.n || r->allow_identities.n || r->deny_identities.n) {
#define L(l) {(const char *const *)(l).v, (l).n}
            pol_acl_config_t ac = {
                .allow_peers = L(r->allow_peers),
                .deny_peers = L(r->deny_peers),
                .allow_identities = L(r->allow_identities),
                .deny_identities = L(r->deny_identities),
                .trusted_proxies = L(cf->trusted_proxies),
            };
#undef L
            if (!(c->rt[i].acl = pol_acl_new(&ac, why, sizeof(why)))) {
                snprintf(err, errlen, "%s:%d: policy.rules[%zu]: %s", cf->file, r->line, i, why);
                return -1;
            }
        }
        if (r->rl_key) {
            pol_ratelimit_config_t rc;
            pol_ratelimit_config_default(&rc);
            rc.rate = r->rl_rate;
            rc.burst = r->rl_burst < 1 ? 1 : (uint32_t)r->rl_burst;
            if (r->rl_key == POL_RL_METHOD)
                rc.slots = 64; /* a few keys: the rule's methods */
            if (!(c->rt[i].rl = pol_ratelimit_new(&rc, why, sizeof(why)))) {
                snprintf(err, errlen, "%s:%d: policy.rules[%zu].rate-limit: %s", cf->file, r->line,
                         i, why);
                return -1;
            }
        }
    }
    return 0;
}

pol_chain_t *pol_chain_build(pol_conf_t *conf, char *err, size_t errlen)
{
    pol_chain_t *c = calloc(1, sizeof(*c));
    if (!c) {
        pol_conf_free(conf);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    atomic_init(&c->refs, 1);
    c->conf = conf;
    if (!(c->routes = pol_routes_default())) {
        pol_conf_free(conf);
        free(c);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->identity_header_len = strlen(conf->identity_header);
    c->sample_below = conf->access_log_sample >= 1.0
                          ? UINT64_MAX
                          : (uint64_t)(conf->access_log_sample * 18446744073709551615.0);
    int rc = build_jwt(c, err, errlen);
    if (rc == 0 && conf->mesh_secret_file)
        rc = load_mesh_secret(c, err, errlen);
    if (rc == 0 && conf->sig_secrets_file) {
        char why[256];
        c->secrets = pol_sig_secrets_load(conf->sig_secrets_file, why, sizeof(why));
        if (!c->secrets) {
            snprintf(err, errlen, "%s", why);
            rc = -1;
        }
        pthread_once(&nonces_once, nonces_init);
        if (rc == 0 && !nonces) {
            snprintf(err, errlen, "policy.signature: no replay cache (out of memory)");
            rc = -1;
        }
    }
    if (rc == 0 && conf->trusted_proxies.n) {
        char why[256];
        c->trusted = pol_cidr_set_new((const char *const *)conf->trusted_proxies.v,
                                      conf->trusted_proxies.n, why, sizeof(why));
        if (!c->trusted) {
            snprintf(err, errlen, "%s: policy.trusted-proxies: %s", conf->file, why);
            rc = -1;
        }
    }
    if (rc == 0 && conf->identity_forwarders.n) {
        char why[256];
        pol_acl_config_t ac = {
            .allow_identities = {(const char *const *)conf->identity_forwarders.v,
                                 conf->identity_forwarders.n}};
        if (!(c->forwarders = pol_acl_new(&ac, why, sizeof(why)))) {
            snprintf(err, errlen, "%s: policy.identity.forwarders: %s", conf->file, why);
            rc = -1;
        }
    }
    if (rc == 0)
        rc = build_rules(c, err, errlen);
    if (rc != 0) {
        pol_chain_unref(c);
        return NULL;
    }
    return c;
}

pol_chain_t *pol_chain_load(const char *path, char *err, size_t errlen)
{
    pol_conf_t *conf = path ? pol_conf_load(path, err, errlen) : pol_conf_default();
    if (!conf)
        return NULL;
    if (!conf->file)
        conf->file = strdup("(defaults)");
    pol_routes_conf_t *routes = path ? pol_routes_load(path, err, errlen) : pol_routes_default();
    if (!routes) {
        pol_conf_free(conf);
        return NULL;
    }
    pol_chain_t *c = pol_chain_build(conf, err, errlen);
    if (!c) {
        pol_routes_free(routes);
        return NULL;
    }
    pol_chain_set_routes(c, routes);
    return c;
}

void pol_chain_set_routes(pol_chain_t *c, pol_routes_conf_t *routes)
{
    pol_routes_free(c->routes);
    c->routes = routes;
}

const pol_routes_conf_t *pol_chain_routes(const pol_chain_t *c)
{
    return c->routes;
}

pol_chain_t *pol_chain_ref(pol_chain_t *c)
{
    if (c)
        atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    return c;
}

void pol_chain_unref(pol_chain_t *c)
{
    if (!c || atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; c->rt && i < c->conf->n_rules; i++) {
        pol_acl_free(c->rt[i].acl);
        pol_ratelimit_free(c->rt[i].rl);
    }
    free(c->rt);
    pol_keyset_unref(c->keys);
    pol_sig_secrets_unref(c->secrets);
    pol_cidr_set_free(c->trusted);
    pol_acl_free(c->forwarders);
    pol_identity_keys_wipe(&c->idkeys);
    pol_conf_free(c->conf);
    pol_routes_free(c->routes);
    free(c);
}

const pol_conf_t *pol_chain_conf(const pol_chain_t *c)
{
    return c->conf;
}

json_t *pol_chain_describe(const pol_chain_t *c)
{
    const pol_conf_t *cf = c->conf;
    json_t *rules = json_array();
    for (size_t i = 0; i < cf->n_rules; i++) {
        const pol_rule_t *r = &cf->rules[i];
        json_t *m = json_array();
        for (size_t j = 0; j < r->match.n; j++)
            json_array_append_new(m, json_string(r->match.v[j]));
        json_t *authn = json_array();
        if (r->authn & POL_AUTHN_JWT)
            json_array_append_new(authn, json_string("jwt"));
        if (r->authn & POL_AUTHN_EXT_AUTHZ)
            json_array_append_new(authn, json_string("ext-authz"));
        static const char *const keys[] = {"", "peer", "identity", "method"};
        json_array_append_new(
            rules, json_pack("{s:o, s:i, s:o, s:b, s:b, s:b, s:o}", "match", m, "line", r->line,
                             "authn", authn, "optional", r->optional, "signature", r->signature,
                             "acl", c->rt[i].acl != NULL, "rate_limit",
                             r->rl_key ? json_pack("{s:s, s:f, s:f}", "key", keys[r->rl_key],
                                                   "rate", r->rl_rate, "burst", r->rl_burst)
                                       : json_null()));
    }
    json_t *exempt = json_array();
    for (size_t i = 0; i < cf->exempt.n; i++)
        json_array_append_new(exempt, json_string(cf->exempt.v[i]));
    return json_pack("{s:s, s:b, s:b, s:s?, s:f, s:i, s:i, s:b, s:o, s:o}", "file", cf->file,
                     "present", cf->present, "trace", cf->trace, "access_log", cf->access_log,
                     "access_log_sample", cf->access_log_sample, "jwt_keys",
                     (int)(c->keys ? pol_keyset_count(c->keys) : 0), "signature_clients",
                     (int)(c->secrets ? pol_sig_secrets_count(c->secrets) : 0), "mesh_identity",
                     c->has_idkeys, "exempt", exempt, "rules", rules);
}

int pol_chain_set_jwks(pol_chain_t *c, const char *json, size_t len, char *err, size_t errlen)
{
    char why[256];
    pol_keyset_t *ks = pol_keyset_parse(json, len, why, sizeof(why));
    if (!ks) {
        snprintf(err, errlen, "%s: %s", c->conf->jwks_url ? c->conf->jwks_url : "jwks", why);
        return -1;
    }
    if (pol_keyset_skipped(ks))
        mesh_warn(ACTOR, "%s: %zu keys skipped (%zu usable)",
                  c->conf->jwks_url ? c->conf->jwks_url : "jwks", pol_keyset_skipped(ks),
                  pol_keyset_count(ks));
    pol_keyset_unref(c->keys);
    c->keys = ks;
    return 0;
}

/* ---- per worker --------------------------------------------------------------------------------
 */

/* A snapshot as one worker holds it: freed once no call of this worker uses it. */
typedef struct wgen {
    pol_chain_t *chain;
    size_t calls;
    int current;
    pol_authz_t *authz; /* this snapshot's external authorization client, made on first use */
    int authz_failed;   /* it could not be made (logged once) */
} wgen_t;

typedef struct pol_call pol_call_t;

struct pol_worker {
    uv_loop_t *loop;
    int index;
    wgen_t *gen;
    pol_jwt_cache_t *jwt_cache;
    pol_call_t *free_calls;
    /* access log */
    int log_fd;
    char *log_path; /* the file log_fd writes to */
    char *log_buf;
    size_t log_len;
    uv_timer_t log_timer;
    /* audit budget */
    int64_t audit_second;
    unsigned audit_sent;
    uint64_t audit_suppressed;
    int handles;
    int freeing;
    uint64_t rng; /* xorshift state: fault injection draws */
    /* Upstreams see this node's certificate: identities go to them without a mesh secret. */
    int upstream_mtls;
};

enum {
    STEP_TRACE,
    STEP_IDENTITY,
    STEP_AUTHN,
    STEP_SIGNATURE,
    STEP_ACL,
    STEP_RATELIMIT,
    STEP_FORWARD,
    STEP_DONE
};

/* Where the request fields the steps read are: entry indexes of mesh_proxy_call_header_at, -1
 * for none (indexes, not pointers: a step that sets a field may move the header buffer). */
typedef struct call_fields {
    int traceparent, tracestate, request_id, token, identity;
    int claims; /* fields named CLAIM_PREFIX...: some */
    int n_xff;
    int xff[8]; /* the first 8 x-forwarded-for fields */
} call_fields_t;

struct pol_call {
    pol_worker_t *w;
    wgen_t *gen;
    mesh_proxy_call_t *call;
    const pol_rule_t *rule;
    size_t rule_idx;
    int exempt;
    int step;
    int waiting;   /* went pending: the verdict goes through mesh_proxy_call_resume */
    int from_mesh; /* the identity came with a mesh identity token */
    int has_id;
    uint64_t t0_ns;
    pol_authz_call_t *authz_call; /* an external check in flight */
    pol_ip_t client;              /* the client address (after trusted X-Forwarded-For) */
    int client_known;
    int client_is_peer; /* no trusted proxy spoke for another client */
    char peer[48];      /* "" until peer_of() formats it (only refusals and logs need it) */
    call_fields_t f;    /* where the fields the steps read are (scan_fields) */
    pol_trace_t trace;
    pol_identity_t id;
    const mesh_peer_id_t *peer_id; /* what the client's certificate proved; NULL: nothing */
    pol_call_t *free_next;
};

static const char *peer_of(pol_call_t *pc);

static int64_t unix_s(void)
{
    return (int64_t)time(NULL);
}

static uint64_t unix_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

static const pol_conf_t *conf_of(const pol_call_t *pc)
{
    return pc->gen->chain->conf;
}

/* ---- access log -------------------------------------------------------------------------------
 */

static void log_flush(pol_worker_t *w)
{
    size_t off = 0;
    while (w->log_fd >= 0 && off < w->log_len) {
        ssize_t n = write(w->log_fd, w->log_buf + off, w->log_len - off);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            mesh_warn(ACTOR, "access log %s: %s (lines dropped)", w->log_path,
                      n < 0 ? strerror(errno) : "short write");
            break;
        }
        off += (size_t)n;
    }
    w->log_len = 0;
}

static void on_log_timer(uv_timer_t *t)
{
    log_flush(t->data);
}

/* Opens the access log the current snapshot names (or closes it). */
static void log_open(pol_worker_t *w)
{
    const char *path = w->gen->chain->conf->access_log;
    if (w->log_path && path && !strcmp(path, w->log_path))
        return;
    log_flush(w);
    if (w->log_fd > 2)
        close(w->log_fd);
    w->log_fd = -1;
    free(w->log_path);
    w->log_path = NULL;
    if (!path)
        return;
    w->log_path = strdup(path);
    w->log_fd =
        !strcmp(path, "-") ? 2 : open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (w->log_fd < 0)
        mesh_error(ACTOR, "access log %s: %s (calls are not logged)", path, strerror(errno));
    if (!w->log_buf)
        w->log_buf = malloc(ACCESS_BUF);
}

/* JSON string body of s (n bytes) into out: escapes quotes, backslashes and control bytes;
 * cut at cap. */
static size_t json_esc(char *out, size_t cap, const char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 7 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            out[o++] = '\\';
            out[o++] = (char)ch;
        } else if (ch < 0x20 || ch >= 0x7f) {
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x", ch);
        } else {
            out[o++] = (char)ch;
        }
    }
    out[o] = '\0';
    return o;
}

/* One access-log line for the call (log_call decided there is a log). */
static __attribute__((noinline)) void log_write(pol_call_t *pc, int status)
{
    pol_worker_t *w = pc->w;
    if (w->log_fd < 0 || !w->log_buf)
        return;
    uint64_t h;
    memcpy(&h, pc->trace.trace_id, sizeof(h));
    if (h > pc->gen->chain->sample_below)
        return;
    mesh_proxy_call_summary_t sum;
    mesh_proxy_call_summary(pc->call, &sum);
    char path[256], who[2 * POL_IDENTITY_SUB_MAX], rid[2 * POL_REQUEST_ID_MAX], ts[40];
    size_t pl = 0;
    const char *p = mesh_proxy_call_header(pc->call, ":path", &pl);
    json_esc(path, sizeof(path), p ? p : "", p ? pl : 0);
    json_esc(who, sizeof(who), pc->has_id ? pc->id.sub : "", pc->has_id ? strlen(pc->id.sub) : 0);
    json_esc(rid, sizeof(rid), pc->trace.request_id, strlen(pc->trace.request_id));
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    size_t tl = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + tl, sizeof(ts) - tl, ".%06ldZ", (long)tv.tv_usec);
    if (w->log_len + 1024 > ACCESS_BUF)
        log_flush(w);
    int n =
        snprintf(w->log_buf + w->log_len, ACCESS_BUF - w->log_len,
                 "{\"ts\":\"%s\",\"trace_id\":\"%s\",\"request_id\":%s%s%s,\"peer\":\"%s\","
                 "\"identity\":%s%s%s,\"path\":\"%s\",\"status\":%d,\"upstream\":%s%s%s,"
                 "\"bytes_in\":%llu,\"bytes_out\":%llu,\"retries\":%d,\"duration_us\":%llu,"
                 "\"worker\":%d}\n",
                 ts, pc->trace.trace_id_hex, rid[0] ? "\"" : "", rid[0] ? rid : "null",
                 rid[0] ? "\"" : "", peer_of(pc), pc->has_id ? "\"" : "", pc->has_id ? who : "null",
                 pc->has_id ? "\"" : "", path, status, sum.upstream ? "\"" : "",
                 sum.upstream ? sum.upstream : "null", sum.upstream ? "\"" : "",
                 (unsigned long long)sum.req_bytes, (unsigned long long)sum.resp_bytes, sum.retries,
                 (unsigned long long)((uv_hrtime() - pc->t0_ns) / 1000), w->index);
    if (n > 0 && (size_t)n < ACCESS_BUF - w->log_len)
        w->log_len += (size_t)n;
}

/* The call's access-log line, when there is a log (the test inline: most nodes have none, and
 * the line's function saves and restores a frame's worth of registers). */
static inline void log_call(pol_call_t *pc, int status)
{
    if (conf_of(pc)->access_log)
        log_write(pc, status);
}

/* ---- refusals ------------------------------------------------------------------------------- */

/* Fills out with the refusal and audits it (through the worker's event ring). */
static int refuse(pol_call_t *pc, int kind, int status, mesh_proxy_verdict_t *out, const char *fmt,
                  ...) __attribute__((format(printf, 5, 6)));
static int refuse(pol_call_t *pc, int kind, int status, mesh_proxy_verdict_t *out, const char *fmt,
                  ...)
{
    static const char *const filters[] = {"", "authn", "signature", "acl", "ratelimit"};
    char reason[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    out->grpc_status = status;
    snprintf(out->message, sizeof(out->message), "meshd: %s: %s", filters[kind], reason);
    pol_worker_t *w = pc->w;
    int64_t sec = unix_s();
    if (sec != w->audit_second) {
        w->audit_second = sec;
        w->audit_sent = 0;
    }
    if (w->audit_sent >= POL_AUDIT_PER_SEC) {
        w->audit_suppressed++;
        return MESH_PROXY_REJECT;
    }
    w->audit_sent++;
    mesh_event_t e = {.type = MESH_EV_POLICY,
                      .worker = (uint32_t)w->index,
                      .a = w->audit_suppressed,
                      .c = unix_us()};
    mesh_ev_policy_t *p = &e.policy;
    p->kind = (uint8_t)kind;
    p->status = (uint8_t)status;
    snprintf(p->peer, sizeof(p->peer), "%s", peer_of(pc));
    snprintf(p->trace_id, sizeof(p->trace_id), "%s", pc->trace.trace_id_hex);
    size_t pl = 0;
    const char *path = mesh_proxy_call_header(pc->call, ":path", &pl);
    const char *slash = path && pl > 1 ? memchr(path + 1, '/', pl - 1) : NULL;
    if (slash) {
        snprintf(p->service, sizeof(p->service), "%.*s", (int)(slash - path - 1), path + 1);
        snprintf(p->method, sizeof(p->method), "%.*s", (int)(path + pl - slash - 1), slash + 1);
    }
    if (pc->has_id)
        snprintf(p->identity, sizeof(p->identity), "%s", pc->id.sub);
    snprintf(p->reason, sizeof(p->reason), "%s", reason);
    if (mesh_evring_push_current(&e) == 0)
        w->audit_suppressed = 0;
    else
        mesh_info(ACTOR, "refused %s from %s: %s (trace %s)", filters[kind], peer_of(pc), reason,
                  pc->trace.trace_id_hex);
    return MESH_PROXY_REJECT;
}

/* ---- steps ------------------------------------------------------------------------------------
 */

static const char *hdr(pol_call_t *pc, const char *name, size_t *len)
{
    *len = 0;
    return mesh_proxy_call_header(pc->call, name, len);
}

/* Finds the fields the steps read in one pass over the request: the configured identity header
 * compared first (by length, then bytes), then the rest by a switch on the name's length, so a
 * field is compared with at most one fixed name (and the claim prefix). */
static void scan_fields(pol_call_t *pc)
{
    call_fields_t *f = &pc->f;
    const pol_chain_t *c = pc->gen->chain;
    const char *idh = c->conf->identity_header;
    size_t idl = c->identity_header_len;
    f->traceparent = f->tracestate = f->request_id = f->token = f->identity = -1;
    f->claims = f->n_xff = 0;
    const char *name, *value;
    size_t nl, vl;
    int rv;
#define IS(lit)      (!memcmp(name, lit, sizeof(lit) - 1))
#define FIRST(field) (field = field < 0 ? (int)i : field)
    for (size_t i = 0; (rv = mesh_proxy_call_header_at(pc->call, i, &name, &nl, &value, &vl)) >= 0;
         i++) {
        if (rv != 1 || name[0] == ':')
            continue;
        if (nl == idl && !memcmp(name, idh, idl)) {
            f->identity = (int)i;
            continue;
        }
        if (name[0] != 't' && name[0] != 'x')
            continue; /* (every other name the scan looks for starts with one of these) */
        switch (nl) {
        case sizeof("tracestate") - 1:
            if (IS("tracestate")) {
                FIRST(f->tracestate);
                continue;
            }
            break;
        case sizeof("traceparent") - 1:
            if (IS("traceparent")) {
                FIRST(f->traceparent);
                continue;
            }
            break;
        case sizeof("x-request-id") - 1:
            if (IS("x-request-id")) {
                FIRST(f->request_id);
                continue;
            }
            break;
        case sizeof("x-forwarded-for") - 1:
            if (IS("x-forwarded-for")) {
                if (f->n_xff < 8)
                    f->xff[f->n_xff++] = (int)i;
                continue;
            }
            break;
        case sizeof(POL_IDENTITY_TOKEN_HEADER) - 1:
            if (IS(POL_IDENTITY_TOKEN_HEADER)) {
                FIRST(f->token);
                continue;
            }
            break;
        }
        if (nl > sizeof(CLAIM_PREFIX) - 1 && !memcmp(name, CLAIM_PREFIX, sizeof(CLAIM_PREFIX) - 1))
            f->claims = 1;
    }
#undef FIRST
#undef IS
}

/* The value of field entry i (from scan_fields), or NULL (len 0) for -1. */
static const char *field_at(pol_call_t *pc, int i, size_t *len)
{
    const char *name, *value;
    size_t nl;
    *len = 0;
    if (i < 0 || mesh_proxy_call_header_at(pc->call, (size_t)i, &name, &nl, &value, len) != 1)
        return NULL;
    return value;
}

/* Sets one of the trace context's fields: replacing the caller's, or added when the scan found
 * none to replace. */
#define OWN(name, v, len, have)                                                                    \
    ((have) ? mesh_proxy_call_set_own_header(pc->call, name, sizeof(name) - 1, v, len)             \
            : mesh_proxy_call_add_own_header(pc->call, name, sizeof(name) - 1, v, len))

static void step_trace(pol_call_t *pc)
{
    scan_fields(pc);
    size_t tpl = 0, tsl = 0, ril = 0;
    const char *tp = NULL, *ts = NULL, *ri = NULL;
    /* (the three indexes are -1 or not negative: their AND is negative only when all are -1,
     * as on most calls) */
    if ((pc->f.traceparent & pc->f.tracestate & pc->f.request_id) >= 0) {
        tp = field_at(pc, pc->f.traceparent, &tpl);
        ts = field_at(pc, pc->f.tracestate, &tsl);
        ri = field_at(pc, pc->f.request_id, &ril);
    }
    const pol_conf_t *conf = conf_of(pc);
    pol_trace_begin(&pc->trace, tp, tpl, ts, tsl, ri, ril, POL_TRACE_FLAG_SAMPLED,
                    conf->trace && conf->request_id_create);
    mesh_proxy_call_set_trace_id(pc->call, pc->trace.trace_id_hex, 32);
    if (!conf->trace)
        return; /* ids for logs and audit only: the headers go on as they came */
    OWN("traceparent", pc->trace.traceparent, POL_TRACEPARENT_LEN, tp != NULL);
    if (pc->trace.tracestate_len)
        mesh_proxy_call_set_header(pc->call, "tracestate", pc->trace.tracestate,
                                   pc->trace.tracestate_len);
    else if (ts)
        mesh_proxy_call_remove_header(pc->call, "tracestate");
    if (pc->trace.request_id[0])
        OWN("x-request-id", pc->trace.request_id, strlen(pc->trace.request_id), ri != NULL);
#undef OWN
}

/* The client's address: the peer, or the address a trusted proxy vouches for. Found on first
 * use (client_of): only refusals, the access log, external checks and a rate limit by peer
 * need it. */
static void find_client(pol_call_t *pc)
{
    pol_ip_t peer;
    const struct sockaddr *sa = mesh_proxy_call_peer(pc->call);
    if (pol_ip_from_sockaddr(sa, &peer) != 0)
        memset(&peer, 0, sizeof(peer));
    pc->client = peer;
    const pol_cidr_set_t *trusted = pc->gen->chain->trusted;
    if (trusted && pc->f.n_xff) {
        pol_str_t xff[8];
        size_t n = 0;
        for (int i = 0; i < pc->f.n_xff; i++) {
            size_t vl;
            const char *v = field_at(pc, pc->f.xff[i], &vl);
            if (v)
                xff[n++] = (pol_str_t){v, vl};
        }
        if (n)
            pol_xff_client(trusted, &peer, xff, n, &pc->client, NULL);
    }
    pc->client_is_peer = pol_ip_equal(&pc->client, &peer);
    pc->client_known = 1;
}

static const pol_ip_t *client_of(pol_call_t *pc)
{
    if (!pc->client_known)
        find_client(pc);
    return &pc->client;
}

/* The client as text, "ip:port" ("[ip]:port") or the vouched-for "ip" alone: formatted on first
 * use, since only refusals, the access log and external checks need it. */
static const char *peer_of(pol_call_t *pc)
{
    if (pc->peer[0])
        return pc->peer;
    char ip[POL_IP_STRLEN];
    if (pol_ip_format(client_of(pc), ip, sizeof(ip)) < 0)
        snprintf(ip, sizeof(ip), "?");
    const struct sockaddr *sa = mesh_proxy_call_peer(pc->call);
    int port = !sa                         ? 0
               : sa->sa_family == AF_INET  ? ntohs(((const struct sockaddr_in *)sa)->sin_port)
               : sa->sa_family == AF_INET6 ? ntohs(((const struct sockaddr_in6 *)sa)->sin6_port)
                                           : 0;
    if (pc->client_is_peer)
        snprintf(pc->peer, sizeof(pc->peer), strchr(ip, ':') ? "[%s]:%d" : "%s:%d", ip, port);
    else
        snprintf(pc->peer, sizeof(pc->peer), "%s", ip);
    return pc->peer;
}

/* Whether node peer may vouch for the callers it forwards (identity.forwarders). */
static int forwards(const pol_chain_t *c, const mesh_peer_id_t *peer)
{
    if (!c->forwarders)
        return 1;
    pol_acl_call_t ac = {
        .identity = {peer->node_uri.p, peer->node_uri.len}, .identity_mtls = 1, .cert = peer};
    pol_acl_result_t res;
    return pol_acl_check(c->forwarders, &ac, &res) == POL_ACL_ALLOWED;
}

/* Removes the identity header and the claim fields the client sent (the scan found some). */
static __attribute__((noinline)) void strip_claims(pol_call_t *pc)
{
    const pol_conf_t *cf = conf_of(pc);
    if (pc->f.identity >= 0)
        mesh_proxy_call_remove_header(pc->call, cf->identity_header);
    const char *name, *value;
    size_t nl, vl;
    int rv;
    char claim[96];
    for (size_t i = 0; pc->f.claims &&
                       (rv = mesh_proxy_call_header_at(pc->call, i, &name, &nl, &value, &vl)) >= 0;
         i++)
        if (rv == 1 && nl > sizeof(CLAIM_PREFIX) - 1 && nl < sizeof(claim) &&
            !memcmp(name, CLAIM_PREFIX, sizeof(CLAIM_PREFIX) - 1)) {
            memcpy(claim, name, nl);
            claim[nl] = '\0';
            mesh_proxy_call_remove_header(pc->call, claim);
        }
}

/* The identity the mesh token tok (NULL: none) or the client's certificate proves. */
static __attribute__((noinline)) void trust_identity(pol_call_t *pc, const char *tok, size_t tl)
{
    pol_cid_in_t in = {.peer = pc->peer_id,
                       .keys = pc->gen->chain->has_idkeys ? &pc->gen->chain->idkeys : NULL,
                       .token = tok,
                       .token_len = tl,
                       .now = unix_s()};
    in.path = hdr(pc, ":path", &in.path_len);
    in.peer_forwards = tok && pc->peer_id && forwards(pc->gen->chain, pc->peer_id);
    pol_cid_t src = pol_call_identity(&in, &pc->id, NULL);
    pc->has_id = src != POL_CID_NONE;
    pc->from_mesh = src == POL_CID_TOKEN_MTLS || src == POL_CID_TOKEN_HMAC;
    if (tok)
        mesh_proxy_call_remove_header(pc->call, POL_IDENTITY_TOKEN_HEADER);
}

/* Removes what a client may not say about itself, and trusts a valid mesh identity token (the
 * work in functions of their own: a call with neither pays a few tests). */
static inline void step_identity(pol_call_t *pc)
{
    if (pc->f.identity >= 0 || pc->f.claims)
        strip_claims(pc);
    size_t tl;
    const char *tok = field_at(pc, pc->f.token, &tl);
    pc->peer_id = mesh_proxy_call_client_identity(pc->call);
    if (tok || pc->peer_id) /* (policy/call_identity.h: the token, the certificate, or none) */
        trust_identity(pc, tok, tl);
}

/* What authn_jwt found besides a refusal (MESH_PROXY_REJECT). */
enum { JWT_NONE = 100, JWT_OK = 101 };

/* JWT: a Bearer token in the configured header: JWT_OK (the identity is set), JWT_NONE (no
 * token: the next authn may try) or MESH_PROXY_REJECT. */
static int authn_jwt(pol_call_t *pc, mesh_proxy_verdict_t *out)
{
    const pol_conf_t *cf = conf_of(pc);
    size_t vl;
    const char *v = hdr(pc, cf->jwt_header, &vl);
    if (!v)
        return JWT_NONE;
    const char *tok;
    size_t tl;
    if (pol_jwt_bearer(v, vl, &tok, &tl) != 0)
        return refuse(pc, MESH_EV_POLICY_AUTHN, MESH_GRPC_UNAUTHENTICATED, out,
                      "jwt: %s is not a Bearer token", cf->jwt_header);
    pol_jwt_claims_t claims;
    char reason[96];
    const pol_keyset_t *ks = pc->gen->chain->keys;
    if (!ks)
        return refuse(pc, MESH_EV_POLICY_AUTHN, MESH_GRPC_UNAUTHENTICATED, out,
                      "jwt: no keys yet (the JWKS URL has not answered)");
    if (!pc->w->jwt_cache) /* made on the first token: a node without JWT rules never pays */
        pc->w->jwt_cache = pol_jwt_cache_new(JWT_CACHE_ENTRIES, JWT_CACHE_MAX_TTL);
    int rc = pol_jwt_verify_cached(pc->w->jwt_cache, ks, tok, tl, &pc->gen->chain->jwt, unix_s(),
                                   &claims, NULL, reason, sizeof(reason));
    if (rc != POL_JWT_OK)
        return refuse(pc, MESH_EV_POLICY_AUTHN, MESH_GRPC_UNAUTHENTICATED, out, "jwt: %s", reason);
    const char *sub = pol_jwt_claims_sub(&claims);
    if (!sub || !sub[0])
        return refuse(pc, MESH_EV_POLICY_AUTHN, MESH_GRPC_UNAUTHENTICATED, out,
                      "jwt: the token has no subject");
    memset(&pc->id, 0, sizeof(pc->id));
    snprintf(pc->id.sub, sizeof(pc->id.sub), "%s", sub);
    snprintf(pc->id.source, sizeof(pc->id.source), "jwt");
    for (size_t i = 0; i < cf->identity_claims.n && pc->id.nclaims < POL_IDENTITY_CLAIMS_MAX; i++) {
        const char *val = pol_jwt_claims_extra(&claims, i);
        if (!val)
            continue;
        pol_identity_claim_t *c = &pc->id.claims[pc->id.nclaims++];
        snprintf(c->name, sizeof(c->name), "%s", cf->identity_claims.v[i]);
        snprintf(c->value, sizeof(c->value), "%s", val);
    }
    pc->has_id = 1;
    return JWT_OK;
}

static int run(pol_call_t *pc, mesh_proxy_verdict_t *out);

/* This snapshot's external authorization client on this worker (made on first use). */
static pol_authz_t *authz_of(pol_call_t *pc)
{
    wgen_t *g = pc->gen;
    if (g->authz || g->authz_failed)
        return g->authz;
    const pol_conf_t *cf = conf_of(pc);
    pol_authz_config_t ac = {
        .mode = cf->authz_url ? POL_AUTHZ_HTTP : POL_AUTHZ_GRPC,
        .target = cf->authz_url ? cf->authz_url : cf->authz_grpc,
        .headers = (const char *const *)cf->authz_forward.v,
        .n_headers = cf->authz_forward.n,
        .identity_header = cf->authz_identity_header,
        .timeout_ms = (uint64_t)cf->authz_timeout_ms,
        .fail_open = cf->authz_fail_open,
        .cache_ttl_ms = (uint64_t)cf->authz_cache_ttl_ms,
        .cache_off = cf->authz_cache_ttl_ms == 0,
    };
    char err[256];
    g->authz = pol_authz_new(pc->w->loop, &ac, err, sizeof(err));
    if (!g->authz) {
        g->authz_failed = 1;
        mesh_error(ACTOR, "worker %d: %s", pc->w->index, err);
    }
    return g->authz;
}

/* Applies the service's verdict; MESH_PROXY_ACCEPT or a refusal. */
static int authz_verdict(pol_call_t *pc, const pol_authz_result_t *res, mesh_proxy_verdict_t *out)
{
    if (res->verdict != POL_AUTHZ_ALLOW) {
        const char *m = res->message ? res->message : "denied";
        if (!strncmp(m, "meshd: ", 7))
            m += 7;
        return refuse(pc, MESH_EV_POLICY_AUTHN, res->grpc_status, out, "%s", m);
    }
    if (res->service_failed)
        mesh_warn(ACTOR, "%s: allowed without a verdict (fail-open) (trace %s)",
                  res->message ? res->message : "authorization service failed",
                  pc->trace.trace_id_hex);
    if (res->identity && res->identity[0]) {
        memset(&pc->id, 0, sizeof(pc->id));
        snprintf(pc->id.sub, sizeof(pc->id.sub), "%s", res->identity);
        snprintf(pc->id.source, sizeof(pc->id.source), "ext_authz");
        pc->has_id = 1;
    }
    return MESH_PROXY_ACCEPT;
}

static void on_authz(void *ctx, const pol_authz_result_t *res)
{
    pol_call_t *pc = ctx;
    pc->authz_call = NULL;
    mesh_proxy_verdict_t v = {0};
    int rc = authz_verdict(pc, res, &v);
    if (rc == MESH_PROXY_ACCEPT) {
        pc->step = STEP_AUTHN + 1;
        rc = run(pc, &v);
    }
    if (rc == MESH_PROXY_PENDING)
        return;
    pc->waiting = 0;
    mesh_proxy_call_resume(pc->call, rc == MESH_PROXY_REJECT ? &v : NULL);
}

/* Asks the external authorization service (the call's fields go along; the client picks the
 * credentials it forwards). */
static int authn_external(pol_call_t *pc, mesh_proxy_verdict_t *out)
{
    pol_authz_t *a = authz_of(pc);
    if (!a)
        return refuse(pc, MESH_EV_POLICY_AUTHN, MESH_GRPC_UNAVAILABLE, out,
                      "ext_authz: the authorization client is not available");
    pol_authz_field_t fields[64];
    size_t n = 0, pl, al;
    const char *name, *value;
    size_t nl, vl;
    int rv;
    for (size_t i = 0;
         n < 64 && (rv = mesh_proxy_call_header_at(pc->call, i, &name, &nl, &value, &vl)) >= 0; i++)
        if (rv == 1 && name[0] != ':')
            fields[n++] = (pol_authz_field_t){name, nl, value, vl};
    char path[1024], auth[256];
    const char *p = hdr(pc, ":path", &pl), *au = hdr(pc, ":authority", &al);
    snprintf(path, sizeof(path), "%.*s", (int)pl, p ? p : "");
    snprintf(auth, sizeof(auth), "%.*s", (int)al, au ? au : "");
    pol_authz_req_info_t info = {.path = path,
                                 .authority = au ? auth : NULL,
                                 .peer = peer_of(pc),
                                 .request_id =
                                     pc->trace.request_id[0] ? pc->trace.request_id : NULL,
                                 .fields = fields,
                                 .n_fields = n};
    pol_authz_result_t res;
    if (pol_authz_check(a, &info, &res, on_authz, pc, &pc->authz_call) == POL_AUTHZ_DONE)
        return authz_verdict(pc, &res, out);
    pc->waiting = 1;
    return MESH_PROXY_PENDING;
}

static int step_authn(pol_call_t *pc, mesh_proxy_verdict_t *out)
{
    const pol_rule_t *r = pc->rule;
    if (!r || !r->authn || pc->exempt || pc->from_mesh)
        return MESH_PROXY_ACCEPT;
    if (r->authn & POL_AUTHN_JWT) {
        int rc = authn_jwt(pc, out);
        if (rc != JWT_NONE)
            return rc == JWT_OK ? MESH_PROXY_ACCEPT : rc;
    }
    if (r->authn & POL_AUTHN_EXT_AUTHZ) /* no token: the SSO service decides */
        return authn_external(pc, out);
    if (r->optional)
        return MESH_PROXY_ACCEPT;
    return refuse(pc, MESH_EV_POLICY_AUTHN, MESH_GRPC_UNAUTHENTICATED, out,
                  "jwt: missing token (%s: Bearer ...)", conf_of(pc)->jwt_header);
}

static int run(pol_call_t *pc, mesh_proxy_verdict_t *out);

/* The request body is there (or too large): verify the signature, then go on. */
static void on_body(void *ctx, mesh_proxy_call_t *call, int complete)
{
    pol_call_t *pc = ctx;
    mesh_proxy_verdict_t v = {0};
    int rc;
    if (!complete) {
        rc = refuse(pc, MESH_EV_POLICY_SIGNATURE, MESH_GRPC_RESOURCE_EXHAUSTED, &v,
                    "request larger than %lld bytes cannot be verified",
                    (long long)conf_of(pc)->sig_max_body);
    } else {
        pol_sig_body_t b = {0};
        uint8_t digest[POL_SHA256_LEN];
        size_t pos = 0, n;
        const uint8_t *d;
        int bad = pol_sig_body_init(&b) != 0;
        while (!bad && (n = mesh_proxy_call_body_next(call, &pos, &d)) > 0)
            bad = pol_sig_body_update(&b, d, n) != 0;
        if (bad || pol_sig_body_final(&b, digest) != 0) {
            pol_sig_body_abort(&b);
            rc = refuse(pc, MESH_EV_POLICY_SIGNATURE, MESH_GRPC_UNAVAILABLE, &v,
                        "crypto unavailable");
        } else {
            size_t hl, pl;
            const char *h = hdr(pc, POL_SIG_HEADER, &hl), *path = hdr(pc, ":path", &pl);
            pol_sig_header_t sh;
            pol_sig_result_t sr =
                pol_sig_verify(h, hl, path, pl, digest, unix_s(), conf_of(pc)->sig_window_ms / 1000,
                               pc->gen->chain->secrets, nonces, &sh);
            if (sr != POL_SIG_OK) {
                rc = refuse(pc, MESH_EV_POLICY_SIGNATURE, MESH_GRPC_UNAUTHENTICATED, &v, "%s",
                            pol_sig_reason(sr));
            } else {
                if (!pc->has_id) { /* the signing client is who the call is from */
                    memset(&pc->id, 0, sizeof(pc->id));
                    snprintf(pc->id.sub, sizeof(pc->id.sub), "%.*s", (int)sh.client_len, sh.client);
                    snprintf(pc->id.source, sizeof(pc->id.source), "signature");
                    pc->has_id = 1;
                }
                pc->step = STEP_SIGNATURE + 1;
                rc = run(pc, &v);
            }
        }
    }
    if (rc == MESH_PROXY_PENDING)
        return;
    pc->waiting = 0;
    mesh_proxy_call_resume(call, rc == MESH_PROXY_REJECT ? &v : NULL);
}

static int step_signature(pol_call_t *pc, mesh_proxy_verdict_t *out)
{
    const pol_rule_t *r = pc->rule;
    if (!r || !r->signature || pc->exempt || pc->from_mesh)
        return MESH_PROXY_ACCEPT;
    size_t hl;
    if (!hdr(pc, POL_SIG_HEADER, &hl))
        return refuse(pc, MESH_EV_POLICY_SIGNATURE, MESH_GRPC_UNAUTHENTICATED, out,
                      "missing signature (%s)", POL_SIG_HEADER);
    pc->waiting = 1;
    mesh_proxy_call_want_body(pc->call, (size_t)conf_of(pc)->sig_max_body, on_body, pc);
    return MESH_PROXY_PENDING;
}

static int step_acl(pol_call_t *pc, mesh_proxy_verdict_t *out)
{
    const pol_acl_t *acl = pc->rule ? pc->gen->chain->rt[pc->rule_idx].acl : NULL;
    if (!acl)
        return MESH_PROXY_ACCEPT;
    pol_str_t xff[8];
    size_t n = 0, pl;
    const char *name, *value, *path = hdr(pc, ":path", &pl);
    size_t nl, vl;
    int rv;
    for (size_t i = 0;
         n < 8 && (rv = mesh_proxy_call_header_at(pc->call, i, &name, &nl, &value, &vl)) >= 0; i++)
        if (rv == 1 && nl == 15 && !memcmp(name, "x-forwarded-for", 15))
            xff[n++] = (pol_str_t){value, vl};
    pol_acl_call_t ac = {.xff = xff, .n_xff = n, .path = {path, pl}};
    if (pol_ip_from_sockaddr(mesh_proxy_call_peer(pc->call), &ac.peer) != 0)
        memset(&ac.peer, 0, sizeof(ac.peer));
    if (pc->has_id) {
        ac.identity = (pol_str_t){pc->id.sub, strlen(pc->id.sub)};
        ac.identity_mtls = !strcmp(pc->id.source, POL_IDENTITY_SOURCE_MTLS);
        if (ac.identity_mtls && pc->peer_id && !strcmp(pc->id.sub, pc->peer_id->node_uri.p))
            ac.cert = pc->peer_id; /* the caller is the peer: its service IDs count too */
    }
    pol_acl_result_t res;
    if (pol_acl_check(acl, &ac, &res) == POL_ACL_ALLOWED)
        return MESH_PROXY_ACCEPT;
    /* The client learns who was refused by which rule; the audit record, which names the
     * identity in a field of its own, gets the shorter text. */
    char msg[200], rec[96];
    pol_acl_format_reason(&ac, &res, msg, sizeof(msg));
    pol_acl_format_short(&ac, &res, rec, sizeof(rec));
    int rc = refuse(pc, MESH_EV_POLICY_ACL, MESH_GRPC_PERMISSION_DENIED, out,
                    "%s (rules[%zu], line %d)", rec, pc->rule_idx, pc->rule->line);
    if (snprintf(out->message, sizeof(out->message), "%s (rules[%zu], line %d)", msg, pc->rule_idx,
                 pc->rule->line) >= (int)sizeof(out->message))
        memcpy(out->message + sizeof(out->message) - 4, "...", 4); /* (cut, and says so) */
    return rc;
}

static int step_ratelimit(pol_call_t *pc, mesh_proxy_verdict_t *out)
{
    pol_ratelimit_t *rl = pc->rule ? pc->gen->chain->rt[pc->rule_idx].rl : NULL;
    if (!rl || pc->exempt)
        return MESH_PROXY_ACCEPT;
    char key[POL_IDENTITY_SUB_MAX + 8], what[POL_IDENTITY_SUB_MAX + 16];
    size_t kl;
    switch (pc->rule->rl_key) {
    case POL_RL_PEER:
        kl = 0; /* (keyed by the address itself) */
        snprintf(what, sizeof(what), "peer %s", peer_of(pc));
        break;
    case POL_RL_IDENTITY:
        kl = (size_t)snprintf(key, sizeof(key), "%s", pc->has_id ? pc->id.sub : "");
        snprintf(what, sizeof(what), "identity %s", pc->has_id ? pc->id.sub : "(anonymous)");
        break;
    default: {
        size_t pl;
        const char *path = hdr(pc, ":path", &pl);
        kl = pl < sizeof(key) ? pl : sizeof(key);
        memcpy(key, path, kl);
        snprintf(what, sizeof(what), "%.*s", (int)kl, path);
    }
    }
    pol_ratelimit_result_t res;
    pol_ratelimit_verdict_t v = pc->rule->rl_key == POL_RL_PEER
                                    ? pol_ratelimit_check_ip(rl, client_of(pc), uv_hrtime(), &res)
                                    : pol_ratelimit_check(rl, key, kl, uv_hrtime(), &res);
    if (v == POL_RATELIMIT_ALLOWED)
        return MESH_PROXY_ACCEPT;
    char msg[200];
    pol_ratelimit_reject_message(rl, what, &res, msg, sizeof(msg));
    const char *why = !strncmp(msg, "meshd: ratelimit: ", 18) ? msg + 18 : msg;
    refuse(pc, MESH_EV_POLICY_RATELIMIT, MESH_GRPC_RESOURCE_EXHAUSTED, out, "%s", why);
    snprintf(out->meta_name, sizeof(out->meta_name), "retry-after-ms");
    snprintf(out->meta_value, sizeof(out->meta_value), "%llu",
             (unsigned long long)pol_ratelimit_retry_after_ms(&res));
    return MESH_PROXY_REJECT;
}

/* The upstream learns who called: the subject, the claims, and a token the next meshd node
 * trusts. */
static void step_forward(pol_call_t *pc)
{
    if (!pc->has_id)
        return;
    const pol_conf_t *cf = conf_of(pc);
    mesh_proxy_call_set_header(pc->call, cf->identity_header, pc->id.sub, strlen(pc->id.sub));
    for (int i = 0; i < pc->id.nclaims; i++) {
        char name[sizeof(CLAIM_PREFIX) + POL_IDENTITY_CLAIM_NAME_MAX];
        int n = snprintf(name, sizeof(name), CLAIM_PREFIX "%s", pc->id.claims[i].name);
        for (int j = 0; j < n; j++)
            name[j] = (char)tolower((unsigned char)name[j]);
        mesh_proxy_call_set_header(pc->call, name, pc->id.claims[i].value,
                                   strlen(pc->id.claims[i].value));
    }
    if (pc->gen->chain->has_idkeys || pc->w->upstream_mtls) {
        char tok[POL_IDENTITY_TOKEN_MAX], err[128];
        size_t pl;
        const char *path = hdr(pc, ":path", &pl);
        /* Without a mesh secret the next node believes the token because our certificate
         * proves who sends it (policy/call_identity.h): no MAC. */
        long n =
            pc->gen->chain->has_idkeys
                ? pol_identity_mint(&pc->gen->chain->idkeys, &pc->id, path, pl, unix_s(), tok,
                                    sizeof(tok), err, sizeof(err))
                : pol_identity_mint_unsigned(conf_of(pc)->mesh_token_ttl_ms / 1000, &pc->id, path,
                                             pl, unix_s(), tok, sizeof(tok), err, sizeof(err));
        if (n > 0)
            mesh_proxy_call_set_header(pc->call, POL_IDENTITY_TOKEN_HEADER, tok, (size_t)n);
        else
            mesh_warn(ACTOR, "cannot mint an identity token for %s: %s (trace %s)", pc->id.sub, err,
                      pc->trace.trace_id_hex);
    }
}

/* Runs the steps from pc->step on (a step that went pending continues the run itself, from
 * the step after it). Without a rule for the call, authn, signature, ACL and rate limit have
 * nothing to do, and without an identity neither has forward: one test each instead of a call
 * (the default config has no rules). */
static int run(pol_call_t *pc, mesh_proxy_verdict_t *out)
{
    int rc;
    switch (pc->step) {
    case STEP_TRACE:
        step_trace(pc);
        /* fallthrough */
    case STEP_IDENTITY:
        step_identity(pc);
        /* fallthrough */
    case STEP_AUTHN:
        if (pc->rule && (rc = step_authn(pc, out)) != MESH_PROXY_ACCEPT)
            return rc;
        /* fallthrough */
    case STEP_SIGNATURE:
        if (pc->rule && (rc = step_signature(pc, out)) != MESH_PROXY_ACCEPT)
            return rc;
        /* fallthrough */
    case STEP_ACL:
        if (pc->rule && (rc = step_acl(pc, out)) != MESH_PROXY_ACCEPT)
            return rc;
        /* fallthrough */
    case STEP_RATELIMIT:
        if (pc->rule && (rc = step_ratelimit(pc, out)) != MESH_PROXY_ACCEPT)
            return rc;
        /* fallthrough */
    case STEP_FORWARD:
        if (pc->has_id)
            step_forward(pc);
        /* fallthrough */
    default:
        return MESH_PROXY_ACCEPT;
    }
}

/* ---- the filter -------------------------------------------------------------------------------
 */

static void gen_free(wgen_t *g)
{
    pol_authz_free(g->authz); /* (no check of its calls is pending any more) */
    pol_chain_unref(g->chain);
    free(g);
}

static void gen_release(pol_worker_t *w, wgen_t *g)
{
    if (--g->calls == 0 && !g->current)
        gen_free(g);
}

static uint64_t next_rand(pol_worker_t *w)
{
    uint64_t x = w->rng ? w->rng : (uv_hrtime() | 1) ^ ((uint64_t)w->index << 32);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    w->rng = x;
    return x;
}

/* The `routes:` rule of the call: its retry policy and budget, and the faults to inject. */
static void apply_routes(pol_call_t *pc, const mesh_proxy_call_info_t *info)
{
    const pol_routes_conf_t *rc = pc->gen->chain->routes;
    if (!rc->n_rules)
        return;
    if (rc->has_svc) { /* the service's balancing and outlier settings (its service-wide rule) */
        const pol_route_rule_t *sr = pol_routes_match_service(rc, info->service, info->service_len);
        if (sr && sr->svc)
            mesh_proxy_call_set_service_policy(pc->call, sr->svc);
    }
    const pol_route_rule_t *r =
        pol_routes_match(rc, info->service, info->service_len, info->method, info->method_len);
    if (!r)
        return;
    mesh_proxy_call_set_retry(pc->call, &r->retry, &rc->budget);
    if (!r->has_fault)
        return;
    size_t hl;
    int present = r->fault.header && mesh_proxy_call_header(pc->call, r->fault.header, &hl);
    int abort_status;
    uint64_t delay_ms;
    pol_fault_decide(&r->fault, present, next_rand(pc->w), next_rand(pc->w), &abort_status,
                     &delay_ms);
    if (abort_status || delay_ms)
        mesh_proxy_call_inject_fault(pc->call, abort_status, delay_ms);
}

static int on_call(void *ctx, const mesh_proxy_call_info_t *info, mesh_proxy_verdict_t *out,
                   void **token)
{
    pol_worker_t *w = ctx;
    pol_call_t *pc = w->free_calls;
    if (pc)
        w->free_calls = pc->free_next;
    else if (!(pc = malloc(sizeof(*pc)))) {
        out->grpc_status = MESH_GRPC_RESOURCE_EXHAUSTED;
        snprintf(out->message, sizeof(out->message), "meshd: out of memory");
        return MESH_PROXY_REJECT;
    }
    pc->w = w;
    pc->gen = w->gen;
    pc->gen->calls++;
    pc->call = info->call;
    pc->step = STEP_TRACE;
    pc->waiting = pc->from_mesh = pc->has_id = pc->client_known = 0;
    pc->peer[0] = '\0';
    pc->authz_call = NULL;
    pc->t0_ns = conf_of(pc)->access_log ? uv_hrtime() : 0; /* (only the access log's duration) */
    pc->exempt = 0;
    pc->rule = conf_of(pc)->n_rules ? pol_conf_match(conf_of(pc), info->service, info->service_len,
                                                     info->method, info->method_len, &pc->exempt)
                                    : NULL; /* (pol_conf_match's answer without rules) */
    pc->rule_idx = pc->rule ? (size_t)(pc->rule - conf_of(pc)->rules) : 0;
    apply_routes(pc, info);
    *token = pc;
    int rc = run(pc, out);
    if (rc == MESH_PROXY_REJECT) { /* no on_done for a call this filter refused at once */
        log_call(pc, out->grpc_status);
        gen_release(w, pc->gen);
        pc->free_next = w->free_calls;
        w->free_calls = pc;
        *token = NULL;
    }
    return rc;
}

static void on_done(void *ctx, void *token, int status)
{
    pol_call_t *pc = token;
    pol_worker_t *w = pc->w;
    if (pc->authz_call) { /* the call ended while the service was asked */
        pol_authz_cancel(pc->authz_call);
        pc->authz_call = NULL;
    }
    log_call(pc, status);
    gen_release(w, pc->gen);
    pc->free_next = w->free_calls;
    w->free_calls = pc;
}

pol_worker_t *pol_worker_new(uv_loop_t *loop, int worker_index, pol_chain_t *c)
{
    pol_worker_t *w = calloc(1, sizeof(*w));
    wgen_t *g = calloc(1, sizeof(*g));
    if (!w || !g) {
        free(w);
        free(g);
        mesh_error(ACTOR, "worker %d: out of memory", worker_index);
        return NULL;
    }
    w->loop = loop;
    w->index = worker_index;
    w->log_fd = -1;
    g->chain = pol_chain_ref(c);
    g->current = 1;
    w->gen = g;
    uv_timer_init(loop, &w->log_timer);
    w->log_timer.data = w;
    w->handles = 1;
    uv_timer_start(&w->log_timer, on_log_timer, ACCESS_FLUSH, ACCESS_FLUSH);
    uv_unref((uv_handle_t *)&w->log_timer);
    log_open(w);
    return w;
}

void pol_worker_filter(pol_worker_t *w, mesh_proxy_filter_t *out)
{
    *out = (mesh_proxy_filter_t){.ctx = w, .on_call = on_call, .on_done = on_done};
}

void pol_worker_set_upstream_mtls(pol_worker_t *w, int on)
{
    w->upstream_mtls = on;
}

void pol_worker_set_chain(pol_worker_t *w, pol_chain_t *c)
{
    wgen_t *g = calloc(1, sizeof(*g));
    if (!g) {
        mesh_error(ACTOR, "worker %d: out of memory: the new policy is not in force", w->index);
        return;
    }
    g->chain = pol_chain_ref(c);
    g->current = 1;
    wgen_t *old = w->gen;
    w->gen = g;
    old->current = 0;
    if (old->calls == 0)
        gen_free(old);
    log_open(w);
}

static void on_worker_closed(uv_handle_t *h)
{
    pol_worker_t *w = h->data;
    if (--w->handles > 0)
        return;
    while (w->free_calls) {
        pol_call_t *pc = w->free_calls;
        w->free_calls = pc->free_next;
        free(pc);
    }
    pol_jwt_cache_delete(w->jwt_cache);
    if (w->gen) {
        w->gen->current = 0;
        if (w->gen->calls == 0)
            gen_free(w->gen);
    }
    free(w->log_buf);
    free(w->log_path);
    free(w);
}

void pol_worker_free(pol_worker_t *w)
{
    if (!w || w->freeing)
        return;
    w->freeing = 1;
    log_flush(w);
    if (w->log_fd > 2)
        close(w->log_fd);
    w->log_fd = -1;
    uv_close((uv_handle_t *)&w->log_timer, on_worker_closed);
}
