/*
 * policy/policy_conf.c: reading the `policy:` block (see policy/policy_conf.h).
 */
#include "policy/policy_conf.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "common/file_read.h"
#include "policy/acl.h"

/* The methods every node answers for itself: exempt from authn, signature and rate limits. */
static const char *const default_exempt[] = {
    "grpc.health.v1.Health/*",
    "grpc.reflection.v1.ServerReflection/*",
    "grpc.reflection.v1alpha.ServerReflection/*",
};

typedef struct ld {
    yaml_document_t doc;
    const char *name;
    char *err;
    size_t errlen;
} ld_t;

static int fail(ld_t *l, const yaml_node_t *n, const char *key, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    snprintf(l->err, l->errlen, "%s:%zu: policy%s%s: %s", l->name, n ? n->start_mark.line + 1 : 0,
             key[0] ? "." : "", key, what);
    return -1;
}

static char *dup_str(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void list_free(pol_strlist_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static int list_add(pol_strlist_t *l, const char *s)
{
    char **nv = realloc(l->v, (l->n + 1) * sizeof(*nv));
    if (!nv)
        return -1;
    l->v = nv;
    if (!(l->v[l->n] = strdup(s)))
        return -1;
    l->n++;
    return 0;
}

static const char *scalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* "500ms", "5s", "2m", "1h" (a bare number is seconds). */
static int parse_dur(const char *s, int64_t *ms)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || v < 0 || !isfinite(v))
        return -1;
    double mul = strcmp(end, "ms") == 0  ? 1
                 : strcmp(end, "s") == 0 ? 1000
                 : !*end                 ? 1000
                 : strcmp(end, "m") == 0 ? 60000
                 : strcmp(end, "h") == 0 ? 3600000
                                         : -1;
    if (mul < 0 || v * mul > 1e15)
        return -1;
    *ms = (int64_t)(v * mul);
    return 0;
}

/* "4096", "64KiB", "1MiB". */
static int parse_size(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || errno || v < 0)
        return -1;
    long long mul = !*end                     ? 1
                    : strcmp(end, "KiB") == 0 ? 1024
                    : strcmp(end, "MiB") == 0 ? 1024 * 1024
                                              : -1;
    if (mul < 0 || v > (1LL << 40) / mul)
        return -1;
    *out = v * mul;
    return 0;
}

static int parse_bool(const char *s, int *out)
{
    if (!strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "on") || !strcmp(s, "1"))
        *out = 1;
    else if (!strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "off") || !strcmp(s, "0"))
        *out = 0;
    else
        return -1;
    return 0;
}

/* ---- fields ---------------------------------------------------------------------------------- */

enum { F_STR, F_BOOL, F_DUR, F_NUM, F_SIZE, F_LIST };

typedef struct fld {
    const char *key;
    int type;
    size_t off;
} fld_t;

#define C(f) offsetof(pol_conf_t, f)

static const fld_t trace_f[] = {
    {"enabled", F_BOOL, C(trace)},
    {"access-log", F_STR, C(access_log)},
    {"sample", F_NUM, C(access_log_sample)},
    {"request-id", F_STR, C(request_id_mode)},
};
static const fld_t identity_f[] = {
    {"header", F_STR, C(identity_header)},
    {"claims", F_LIST, C(identity_claims)},
    {"mesh-secret-file", F_STR, C(mesh_secret_file)},
    {"forwarders", F_LIST, C(identity_forwarders)},
    {"ttl", F_DUR, C(mesh_token_ttl_ms)},
};
static const fld_t jwt_f[] = {
    {"jwks-file", F_STR, C(jwks_file)},      {"jwks-url", F_STR, C(jwks_url)},
    {"refresh", F_DUR, C(jwks_refresh_ms)},  {"issuers", F_LIST, C(issuers)},
    {"audiences", F_LIST, C(audiences)},     {"algorithms", F_LIST, C(algorithms)},
    {"clock-skew", F_DUR, C(clock_skew_ms)}, {"header", F_STR, C(jwt_header)},
};
static const fld_t authz_f[] = {
    {"url", F_STR, C(authz_url)},
    {"grpc", F_STR, C(authz_grpc)},
    {"timeout", F_DUR, C(authz_timeout_ms)},
    {"fail-open", F_BOOL, C(authz_fail_open)},
    {"forward", F_LIST, C(authz_forward)},
    {"identity-header", F_STR, C(authz_identity_header)},
    {"cache-ttl", F_DUR, C(authz_cache_ttl_ms)},
};
static const fld_t sig_f[] = {
    {"secrets-file", F_STR, C(sig_secrets_file)},
    {"window", F_DUR, C(sig_window_ms)},
    {"max-body", F_SIZE, C(sig_max_body)},
};

/* Reads a list value: one scalar or a sequence of scalars. */
static int read_list(ld_t *l, yaml_node_t *v, const char *key, pol_strlist_t *out)
{
    list_free(out);
    if (v->type == YAML_SCALAR_NODE)
        return list_add(out, scalar(v));
    if (v->type != YAML_SEQUENCE_NODE)
        return fail(l, v, key, "expected a value or a list");
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++) {
        yaml_node_t *e = yaml_document_get_node(&l->doc, *it);
        if (!scalar(e))
            return fail(l, e, key, "expected a list of values");
        if (list_add(out, scalar(e)) != 0)
            return fail(l, e, key, "out of memory");
    }
    return 0;
}

static int read_field(ld_t *l, const fld_t *f, yaml_node_t *v, const char *key, void *base)
{
    char *p = (char *)base + f->off;
    if (f->type == F_LIST)
        return read_list(l, v, key, (pol_strlist_t *)p);
    const char *s = scalar(v);
    if (!s)
        return fail(l, v, key, "expected a single value");
    switch (f->type) {
    case F_STR:
        free(*(char **)p);
        *(char **)p = dup_str(s);
        if (!s[0])
            return fail(l, v, key, "empty value");
        return 0;
    case F_BOOL:
        return parse_bool(s, (int *)p) == 0 ? 0 : fail(l, v, key, "expected true or false");
    case F_DUR:
        return parse_dur(s, (int64_t *)p) == 0
                   ? 0
                   : fail(l, v, key, "'%s' is not a duration (500ms, 5s, 2m, 1h)", s);
    case F_SIZE:
        return parse_size(s, (int64_t *)p) == 0
                   ? 0
                   : fail(l, v, key, "'%s' is not a size (4096, 64KiB, 1MiB)", s);
    case F_NUM: {
        char *end;
        double d = strtod(s, &end);
        if (end == s || *end || !isfinite(d) || d < 0)
            return fail(l, v, key, "'%s' is not a non-negative number", s);
        *(double *)p = d;
        return 0;
    }
    }
    return -1;
}

/* Copies a mapping key with "_" as "-". */
static void norm_key(const char *k, char *out, size_t cap)
{
    snprintf(out, cap, "%s", k);
    for (char *c = out; *c; c++)
        if (*c == '_')
            *c = '-';
}

/* Reads a mapping of known fields; unknown keys are errors. */
static int read_fields(ld_t *l, yaml_node_t *m, const char *section, const fld_t *fields, size_t n,
                       void *base)
{
    if (m->type != YAML_MAPPING_NODE)
        return fail(l, m, section, "expected a mapping (key: value lines)");
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(&l->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(&l->doc, p->value);
        char key[64], full[160];
        norm_key(scalar(k) ? scalar(k) : "?", key, sizeof(key));
        snprintf(full, sizeof(full), "%s.%s", section, key);
        size_t i = 0;
        while (i < n && strcmp(fields[i].key, key) != 0)
            i++;
        if (i == n)
            return fail(l, k, full, "unknown key");
        if (read_field(l, &fields[i], v, full, base) != 0)
            return -1;
    }
    return 0;
}

/* ---- rules ----------------------------------------------------------------------------------- */

/* "pkg.Svc/Method", "pkg.Svc/\*" or "*". */
static int pattern_ok(const char *p)
{
    if (!strcmp(p, "*"))
        return 1;
    const char *slash = strchr(p, '/');
    if (!slash || slash == p || !slash[1] || strchr(slash + 1, '/'))
        return 0;
    for (const char *c = p; *c; c++) {
        if (*c <= ' ' || *c >= 127)
            return 0;
        if (*c == '*' && !(c == slash + 1 && !c[1]))
            return 0;
    }
    return 1;
}

/* Identity patterns of SPIFFE form ("spiffe://TD/node/N", ".../node/\*", ".../svc/pkg.Svc",
 * ".../svc/\*"), checked here so that an error names the entry's own line. */
static int check_spiffe_ids(ld_t *l, yaml_node_t *v, const char *key, const pol_strlist_t *ids)
{
    for (size_t i = 0; i < ids->n; i++) {
        char why[256];
        if (strncmp(ids->v[i], "spiffe://", 9) != 0 ||
            pol_acl_spiffe_pattern_check(ids->v[i], why, sizeof(why)) == 0)
            continue;
        yaml_node_t *at = v;
        if (v->type == YAML_SEQUENCE_NODE)
            at = yaml_document_get_node(&l->doc, v->data.sequence.items.start[i]);
        return fail(l, at, key, "'%.80s': %s", ids->v[i], why);
    }
    return 0;
}

/* identity.forwarders: node patterns only ("spiffe://TD/node/NAME", a prefix and '*', or '*'). */
static int check_forwarders(ld_t *l, yaml_node_t *m, const pol_conf_t *c)
{
    yaml_node_t *v = NULL;
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        const char *k = scalar(yaml_document_get_node(&l->doc, p->key));
        if (k && !strcmp(k, "forwarders"))
            v = yaml_document_get_node(&l->doc, p->value);
    }
    if (!v)
        return 0;
    const pol_strlist_t *f = &c->identity_forwarders;
    if (check_spiffe_ids(l, v, "identity.forwarders", f) != 0)
        return -1;
    for (size_t i = 0; i < f->n; i++) {
        const char *e = f->v[i];
        const char *slash = strncmp(e, "spiffe://", 9) ? NULL : strchr(e + 9, '/');
        if (!slash || strncmp(slash, "/node/", 6) != 0)
            return fail(
                l,
                v->type == YAML_SEQUENCE_NODE
                    ? yaml_document_get_node(&l->doc, v->data.sequence.items.start[i])
                    : v,
                "identity.forwarders",
                "'%.80s': expected a node's SPIFFE ID (spiffe://<trust domain>/node/<node>, "
                "or its name ending in '*')",
                e);
    }
    return 0;
}

static int read_acl(ld_t *l, yaml_node_t *m, const char *key, pol_strlist_t *peers,
                    pol_strlist_t *ids)
{
    if (m->type != YAML_MAPPING_NODE)
        return fail(l, m, key, "expected {peers: [...], identities: [...]}");
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(&l->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(&l->doc, p->value);
        char full[160];
        snprintf(full, sizeof(full), "%s.%s", key, scalar(k) ? scalar(k) : "?");
        if (scalar(k) && !strcmp(scalar(k), "peers")) {
            if (read_list(l, v, full, peers) != 0)
                return -1;
        } else if (scalar(k) && !strcmp(scalar(k), "identities")) {
            if (read_list(l, v, full, ids) != 0 || check_spiffe_ids(l, v, full, ids) != 0)
                return -1;
        } else {
            return fail(l, k, full, "unknown key (peers or identities)");
        }
    }
    return 0;
}

static int read_ratelimit(ld_t *l, yaml_node_t *m, const char *key, pol_rule_t *r)
{
    if (m->type != YAML_MAPPING_NODE)
        return fail(l, m, key, "expected {key: peer|identity|method, rate: N, burst: N}");
    r->rl_key = POL_RL_METHOD;
    r->rl_burst = -1;
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(&l->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(&l->doc, p->value);
        const char *ks = scalar(k) ? scalar(k) : "?", *vs = scalar(v);
        char full[160];
        snprintf(full, sizeof(full), "%s.%s", key, ks);
        if (!vs)
            return fail(l, v, full, "expected a single value");
        if (!strcmp(ks, "key")) {
            r->rl_key = !strcmp(vs, "peer")       ? POL_RL_PEER
                        : !strcmp(vs, "identity") ? POL_RL_IDENTITY
                        : !strcmp(vs, "method")   ? POL_RL_METHOD
                                                  : -1;
            if (r->rl_key < 0)
                return fail(l, v, full, "'%s': expected peer, identity or method", vs);
        } else if (!strcmp(ks, "rate") || !strcmp(ks, "burst")) {
            char *end;
            double d = strtod(vs, &end);
            if (end == vs || *end || !isfinite(d) || d <= 0 || d > 1e9)
                return fail(l, v, full, "'%s' is not a positive number", vs);
            *(!strcmp(ks, "rate") ? &r->rl_rate : &r->rl_burst) = d;
        } else {
            return fail(l, k, full, "unknown key (key, rate or burst)");
        }
    }
    if (r->rl_rate <= 0)
        return fail(l, m, key, "a rate is required (calls per second)");
    if (r->rl_burst < 0)
        r->rl_burst = r->rl_rate < 1 ? 1 : r->rl_rate;
    return 0;
}

static int read_rule(ld_t *l, yaml_node_t *m, size_t idx, pol_rule_t *r)
{
    char sec[64];
    snprintf(sec, sizeof(sec), "rules[%zu]", idx);
    if (m->type != YAML_MAPPING_NODE)
        return fail(l, m, sec, "expected a mapping with match: and what to check");
    r->line = (int)m->start_mark.line + 1;
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(&l->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(&l->doc, p->value);
        char key[64], full[160];
        norm_key(scalar(k) ? scalar(k) : "?", key, sizeof(key));
        snprintf(full, sizeof(full), "%s.%s", sec, key);
        int rc = 0;
        if (!strcmp(key, "match")) {
            rc = read_list(l, v, full, &r->match);
            for (size_t i = 0; rc == 0 && i < r->match.n; i++) {
                char *pat = r->match.v[i];
                if (pat[0] == '/')
                    memmove(pat, pat + 1, strlen(pat));
                if (!pattern_ok(pat))
                    rc = fail(l, v, full, "'%s': expected pkg.Service/Method, pkg.Service/* or *",
                              pat);
            }
        } else if (!strcmp(key, "authn")) {
            pol_strlist_t a = {0};
            rc = read_list(l, v, full, &a);
            for (size_t i = 0; rc == 0 && i < a.n; i++) {
                if (!strcmp(a.v[i], "jwt"))
                    r->authn |= POL_AUTHN_JWT;
                else if (!strcmp(a.v[i], "ext-authz") || !strcmp(a.v[i], "ext_authz"))
                    r->authn |= POL_AUTHN_EXT_AUTHZ;
                else if (strcmp(a.v[i], "none") != 0)
                    rc = fail(l, v, full, "'%s': expected jwt, ext-authz or none", a.v[i]);
            }
            list_free(&a);
        } else if (!strcmp(key, "optional") || !strcmp(key, "signature")) {
            const char *s = scalar(v);
            if (!s || parse_bool(s, !strcmp(key, "optional") ? &r->optional : &r->signature))
                rc = fail(l, v, full, "expected true or false");
        } else if (!strcmp(key, "allow")) {
            rc = read_acl(l, v, full, &r->allow_peers, &r->allow_identities);
        } else if (!strcmp(key, "deny")) {
            rc = read_acl(l, v, full, &r->deny_peers, &r->deny_identities);
        } else if (!strcmp(key, "rate-limit")) {
            rc = read_ratelimit(l, v, full, r);
        } else {
            rc = fail(l, k, full,
                      "unknown key (match, authn, optional, signature, allow, deny, rate-limit)");
        }
        if (rc != 0)
            return -1;
    }
    if (r->match.n == 0)
        return fail(l, m, sec, "a rule needs match: (pkg.Service/Method, pkg.Service/* or *)");
    return 0;
}

/* ---- the block ------------------------------------------------------------------------------- */

pol_conf_t *pol_conf_default(void)
{
    pol_conf_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->trace = 1;
    c->access_log_sample = 1.0;
    c->identity_header = strdup("x-meshd-identity");
    c->mesh_token_ttl_ms = 30000;
    c->jwks_refresh_ms = 300000;
    c->clock_skew_ms = 60000;
    c->jwt_header = strdup("authorization");
    c->authz_timeout_ms = 200;
    c->authz_identity_header = strdup("x-meshd-identity");
    c->authz_cache_ttl_ms = 30000;
    c->sig_window_ms = 300000;
    c->sig_max_body = 1 << 20;
    for (size_t i = 0; i < sizeof(default_exempt) / sizeof(default_exempt[0]); i++)
        list_add(&c->exempt, default_exempt[i]);
    return c;
}

void pol_conf_free(pol_conf_t *c)
{
    if (!c)
        return;
    free(c->file);
    free(c->access_log);
    free(c->request_id_mode);
    free(c->identity_header);
    list_free(&c->identity_claims);
    list_free(&c->identity_forwarders);
    free(c->mesh_secret_file);
    free(c->jwks_file);
    free(c->jwks_url);
    list_free(&c->issuers);
    list_free(&c->audiences);
    list_free(&c->algorithms);
    free(c->jwt_header);
    free(c->authz_url);
    free(c->authz_grpc);
    list_free(&c->authz_forward);
    free(c->authz_identity_header);
    free(c->sig_secrets_file);
    list_free(&c->trusted_proxies);
    list_free(&c->exempt);
    for (size_t i = 0; i < c->n_rules; i++) {
        pol_rule_t *r = &c->rules[i];
        list_free(&r->match);
        list_free(&r->allow_peers);
        list_free(&r->allow_identities);
        list_free(&r->deny_peers);
        list_free(&r->deny_identities);
    }
    free(c->rules);
    free(c);
}

/* Cross-field checks once everything is read. */
static int validate(ld_t *l, pol_conf_t *c, yaml_node_t *policy)
{
    for (size_t i = 0; i < c->n_rules; i++) {
        const pol_rule_t *r = &c->rules[i];
        yaml_node_t at = {.start_mark.line = (size_t)r->line - 1};
        char sec[64];
        snprintf(sec, sizeof(sec), "rules[%zu]", i);
        if ((r->authn & POL_AUTHN_JWT) && !c->jwks_file && !c->jwks_url)
            return fail(l, &at, sec, "authn: jwt needs jwt.jwks-file or jwt.jwks-url");
        if ((r->authn & POL_AUTHN_EXT_AUTHZ) && !c->authz_url && !c->authz_grpc)
            return fail(l, &at, sec, "authn: ext-authz needs ext-authz.url or ext-authz.grpc");
        if (r->signature && !c->sig_secrets_file)
            return fail(l, &at, sec, "signature: true needs signature.secrets-file");
        for (size_t j = 0; j < r->match.n; j++)
            for (size_t k = 0; k <= i; k++)
                for (size_t m = 0; m < c->rules[k].match.n; m++)
                    if ((k < i || m < j) && !strcmp(c->rules[k].match.v[m], r->match.v[j]))
                        return fail(l, &at, sec, "'%s' is matched by the rule at line %d already",
                                    r->match.v[j], c->rules[k].line);
    }
    if (c->access_log_sample > 1)
        return fail(l, policy, "trace.sample", "a share between 0 and 1");
    if (c->request_id_mode && strcmp(c->request_id_mode, "reuse") &&
        strcmp(c->request_id_mode, "create"))
        return fail(l, policy, "trace.request-id", "'%s' is neither reuse nor create",
                    c->request_id_mode);
    c->request_id_create = c->request_id_mode && !strcmp(c->request_id_mode, "create");
    if (c->authz_url && strncmp(c->authz_url, "http://", 7) && strncmp(c->authz_url, "https://", 8))
        return fail(l, policy, "ext-authz.url", "'%s' is not an http:// or https:// URL",
                    c->authz_url);
    return 0;
}

static int read_policy(ld_t *l, yaml_node_t *m, pol_conf_t *c)
{
    if (m->type != YAML_MAPPING_NODE)
        return fail(l, m, "", "expected a mapping");
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(&l->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(&l->doc, p->value);
        char key[64];
        norm_key(scalar(k) ? scalar(k) : "?", key, sizeof(key));
        int rc;
#define FIELDS(t) read_fields(l, v, key, t, sizeof(t) / sizeof(t[0]), c)
        if (!strcmp(key, "trace"))
            rc = FIELDS(trace_f);
        else if (!strcmp(key, "identity"))
            rc = FIELDS(identity_f) || check_forwarders(l, v, c);
        else if (!strcmp(key, "jwt"))
            rc = FIELDS(jwt_f);
        else if (!strcmp(key, "ext-authz"))
            rc = FIELDS(authz_f);
        else if (!strcmp(key, "signature"))
            rc = FIELDS(sig_f);
        else if (!strcmp(key, "trusted-proxies"))
            rc = read_list(l, v, key, &c->trusted_proxies);
        else if (!strcmp(key, "exempt"))
            rc = read_list(l, v, key, &c->exempt);
        else if (!strcmp(key, "rules")) {
            if (v->type != YAML_SEQUENCE_NODE)
                return fail(l, v, key, "expected a list of rules (- match: ...)");
            if (c->rules)
                return fail(l, k, key, "given twice");
            size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
            c->rules = calloc(n ? n : 1, sizeof(*c->rules));
            if (!c->rules)
                return fail(l, v, key, "out of memory");
            rc = 0;
            for (size_t i = 0; rc == 0 && i < n; i++) {
                c->n_rules = i + 1;
                rc = read_rule(l, yaml_document_get_node(&l->doc, v->data.sequence.items.start[i]),
                               i, &c->rules[i]);
            }
        } else {
            rc = fail(l, k, key,
                      "unknown key (trace, identity, jwt, ext-authz, signature, trusted-proxies, "
                      "exempt, rules)");
        }
#undef FIELDS
        if (rc != 0)
            return -1;
    }
    for (size_t i = 0; i < c->exempt.n; i++) {
        char *pat = c->exempt.v[i];
        if (pat[0] == '/')
            memmove(pat, pat + 1, strlen(pat));
        if (!pattern_ok(pat))
            return fail(l, m, "exempt", "'%s': expected pkg.Service/Method, pkg.Service/* or *",
                        pat);
    }
    return validate(l, c, m);
}

pol_conf_t *pol_conf_parse(const char *name, const char *yaml, size_t len, char *err, size_t errlen)
{
    ld_t l = {.name = name, .err = err, .errlen = errlen};
    yaml_parser_t parser;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    if (!yaml_parser_load(&parser, &l.doc)) {
        snprintf(err, errlen, "%s:%zu: YAML: %s", name, parser.problem_mark.line + 1,
                 parser.problem ? parser.problem : "syntax error");
        yaml_parser_delete(&parser);
        return NULL;
    }
    yaml_parser_delete(&parser);
    pol_conf_t *c = pol_conf_default();
    int rc = c ? 0 : -1;
    if (!c)
        snprintf(err, errlen, "%s: out of memory", name);
    yaml_node_t *root = yaml_document_get_root_node(&l.doc);
    if (rc == 0 && root && root->type == YAML_MAPPING_NODE) {
        for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
             p++) {
            const char *k = scalar(yaml_document_get_node(&l.doc, p->key));
            if (k && !strcmp(k, "policy")) {
                c->present = 1;
                rc = read_policy(&l, yaml_document_get_node(&l.doc, p->value), c);
                break;
            }
        }
    }
    yaml_document_delete(&l.doc);
    if (rc != 0) {
        pol_conf_free(c);
        return NULL;
    }
    c->file = strdup(name);
    return c;
}

pol_conf_t *pol_conf_load(const char *path, char *err, size_t errlen)
{
    size_t len;
    char *buf = mesh_file_read(path, 16u << 20, 0, &len, err, errlen);
    if (!buf)
        return NULL;
    pol_conf_t *c = pol_conf_parse(path, buf, len, err, errlen);
    free(buf);
    return c;
}

/* ---- matching -------------------------------------------------------------------------------- */

/* How specifically pattern matches service/method: 3 exact, 2 service wildcard, 1 "*", 0 no. */
static int score(const char *pat, const char *svc, size_t sl, const char *m, size_t ml)
{
    if (pat[0] == '*' && !pat[1])
        return 1;
    if (strncmp(pat, svc, sl) != 0 || pat[sl] != '/')
        return 0;
    const char *pm = pat + sl + 1;
    if (pm[0] == '*' && !pm[1])
        return 2;
    return strlen(pm) == ml && memcmp(pm, m, ml) == 0 ? 3 : 0;
}

const pol_rule_t *pol_conf_match(const pol_conf_t *c, const char *service, size_t service_len,
                                 const char *method, size_t method_len, int *exempt)
{
    *exempt = 0;
    if (!c->n_rules)
        return NULL; /* (exemptions only lift rules) */
    for (size_t i = 0; i < c->exempt.n && !*exempt; i++)
        *exempt = score(c->exempt.v[i], service, service_len, method, method_len) > 0;
    const pol_rule_t *best = NULL;
    int best_score = 0;
    for (size_t i = 0; i < c->n_rules; i++)
        for (size_t j = 0; j < c->rules[i].match.n; j++) {
            int s = score(c->rules[i].match.v[j], service, service_len, method, method_len);
            if (s > best_score) {
                best_score = s;
                best = &c->rules[i];
            }
        }
    return best;
}
