/*
 * policy/acl.c: the allow/deny lists behind policy/acl.h.
 *
 * Each list of names becomes a matcher: exact names in a sorted array (binary search), prefix
 * patterns ("name*", identities only) in a short array scanned in order, and a flag for "*".
 * Method lists keep exact "pkg.Svc/Method" paths and whole services (pattern "pkg.Svc/" then a
 * star) in two sorted arrays. Peer lists are CIDR sets (policy/cidr.h). Everything is copied at
 * build time; a check only reads.
 */
#include "policy/acl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/spiffe.h"
#include "common/peer_id.h"

/* ---- name matchers -------------------------------------------------------------------------- */

typedef struct {
    pol_str_t *exact; /* sorted by str_cmp */
    size_t nexact;
    pol_str_t *prefix; /* "name*" without the star */
    size_t nprefix;
    int any; /* "*" */
} matcher_t;

static int str_cmp(const pol_str_t *a, const pol_str_t *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    int c = n ? memcmp(a->p, b->p, n) : 0;
    if (c)
        return c;
    return a->len < b->len ? -1 : a->len > b->len ? 1 : 0;
}

static int str_qcmp(const void *a, const void *b)
{
    return str_cmp(a, b);
}

static int matcher_empty(const matcher_t *m)
{
    return m->nexact == 0 && m->nprefix == 0 && !m->any;
}

static int exact_find(const pol_str_t *v, size_t n, const pol_str_t *key)
{
    size_t a = 0, b = n;
    while (a < b) {
        size_t mid = a + (b - a) / 2;
        int c = str_cmp(&v[mid], key);
        if (c == 0)
            return 1;
        if (c < 0)
            a = mid + 1;
        else
            b = mid;
    }
    return 0;
}

static void matcher_free(matcher_t *m)
{
    for (size_t i = 0; i < m->nexact; i++)
        free((char *)m->exact[i].p);
    for (size_t i = 0; i < m->nprefix; i++)
        free((char *)m->prefix[i].p);
    free(m->exact);
    free(m->prefix);
    memset(m, 0, sizeof(*m));
}

/* Adds a copy of s[0..len) to v (which has room). */
static int push_copy(pol_str_t *v, size_t *n, const char *s, size_t len)
{
    char *c = malloc(len + 1);
    if (!c)
        return -1;
    memcpy(c, s, len);
    c[len] = '\0';
    v[(*n)++] = (pol_str_t){c, len};
    return 0;
}

static void sort_unique(pol_str_t *v, size_t *n)
{
    if (*n < 2)
        return;
    qsort(v, *n, sizeof(*v), str_qcmp);
    size_t k = 1;
    for (size_t i = 1; i < *n; i++) {
        if (str_cmp(&v[i], &v[k - 1]) == 0)
            free((char *)v[i].p);
        else
            v[k++] = v[i];
    }
    *n = k;
}

/* Nonzero when s holds a byte outside printable ASCII. */
static int has_unprintable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7E)
            return 1;
    return 0;
}

#define SPIFFE_SCHEME "spiffe://"

/* Copies s[0..n) NUL-terminated into out (cap bytes); 0, or -1 when it does not fit. */
static int part(char *out, size_t cap, const char *s, size_t n)
{
    if (n >= cap)
        return -1;
    memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}

int pol_acl_spiffe_pattern_check(const char *pattern, char *why, size_t whylen)
{
    static const char form[] = "a SPIFFE pattern is spiffe://<trust domain>/node/<node> or "
                               "spiffe://<trust domain>/svc/<pkg.Service>, the name or its end "
                               "may be '*'";
    const char *td = pattern + sizeof(SPIFFE_SCHEME) - 1;
    const char *slash = strchr(td, '/');
    char tds[SPF_TD_MAX + 1], name[SPF_NAME_MAX + 1];
    if (strncmp(pattern, SPIFFE_SCHEME, sizeof(SPIFFE_SCHEME) - 1) != 0 || !slash) {
        snprintf(why, whylen, "%s", form);
        return -1;
    }
    if (part(tds, sizeof(tds), td, (size_t)(slash - td)) != 0 || !spf_trust_domain_ok(tds)) {
        snprintf(why, whylen, "trust domain '%.*s' is not 1..%d of a-z 0-9 . _ -",
                 (int)(slash - td) > 64 ? 64 : (int)(slash - td), td, SPF_TD_MAX);
        return -1;
    }
    const char *rest = slash + 1, *nm;
    if (!strncmp(rest, "node/", 5))
        nm = rest + 5;
    else if (!strncmp(rest, "svc/", 4))
        nm = rest + 4;
    else {
        snprintf(why, whylen, "%s", form);
        return -1;
    }
    size_t nl = strlen(nm);
    if (nl && nm[nl - 1] == '*') /* a prefix of names ("web-" then a star), or all */
        nl--;
    if (nl == 0 && nm[0] == '*')
        return 0;
    if (part(name, sizeof(name), nm, nl) != 0 || !spf_name_ok(name)) {
        snprintf(why, whylen,
                 "'%.64s' is not a node or service name (1..%d of A-Za-z 0-9 . _ -, or a prefix "
                 "of one and '*')",
                 nm, SPF_NAME_MAX);
        return -1;
    }
    return 0;
}

/* An identity list: plain patterns, and SPIFFE ones (matched only for certificate-proven
 * identities, and against the certificate's service IDs too). */
typedef struct {
    matcher_t plain, spiffe;
} idlist_t;

static int idlist_empty(const idlist_t *l)
{
    return matcher_empty(&l->plain) && matcher_empty(&l->spiffe);
}

static void idlist_free(idlist_t *l)
{
    matcher_free(&l->plain);
    matcher_free(&l->spiffe);
}

static int identities_build(idlist_t *ids, const pol_acl_list_t *l, const char *what, char *err,
                            size_t errlen)
{
    memset(ids, 0, sizeof(*ids));
    if (l->n == 0)
        return 0;
    matcher_t *ms[2] = {&ids->plain, &ids->spiffe};
    for (int k = 0; k < 2; k++) {
        ms[k]->exact = calloc(l->n, sizeof(pol_str_t));
        ms[k]->prefix = calloc(l->n, sizeof(pol_str_t));
        if (!ms[k]->exact || !ms[k]->prefix) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    for (size_t i = 0; i < l->n; i++) {
        const char *s = l->v[i];
        const char *why = NULL;
        char swhy[200];
        size_t len = s ? strlen(s) : 0;
        const char *star = s ? strchr(s, '*') : NULL;
        int spiffe = s && !strncmp(s, SPIFFE_SCHEME, sizeof(SPIFFE_SCHEME) - 1);
        if (!s || len == 0)
            why = "empty identity";
        else if (has_unprintable(s))
            why = "identity holds a blank or a control byte";
        else if (spiffe && pol_acl_spiffe_pattern_check(s, swhy, sizeof(swhy)) != 0)
            why = swhy;
        else if (star && star != s + len - 1)
            why = "'*' may only end a pattern (\"name\", \"prefix*\" or \"*\")";
        if (why) {
            snprintf(err, errlen, "%s entry %zu (\"%.64s\"): %s", what, i + 1, s ? s : "", why);
            return -1;
        }
        matcher_t *m = spiffe ? &ids->spiffe : &ids->plain;
        if (len == 1 && star) {
            m->any = 1;
            continue;
        }
        int rc = star ? push_copy(m->prefix, &m->nprefix, s, len - 1)
                      : push_copy(m->exact, &m->nexact, s, len);
        if (rc) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    sort_unique(ids->plain.exact, &ids->plain.nexact);
    sort_unique(ids->spiffe.exact, &ids->spiffe.nexact);
    return 0;
}

/* The pattern of m that id matches (recorded in res when res is not NULL): 1, or 0. */
static int matcher_hit(const matcher_t *m, const pol_str_t *id, pol_acl_result_t *res)
{
    if (m->any) {
        if (res) {
            res->pattern = (pol_str_t){"", 0};
            res->pattern_star = 1;
        }
        return 1;
    }
    size_t a = 0, b = m->nexact;
    while (a < b) {
        size_t mid = a + (b - a) / 2;
        int c = str_cmp(&m->exact[mid], id);
        if (c == 0) {
            if (res) {
                res->pattern = m->exact[mid];
                res->pattern_star = 0;
            }
            return 1;
        }
        if (c < 0)
            a = mid + 1;
        else
            b = mid;
    }
    for (size_t i = 0; i < m->nprefix; i++)
        if (id->len >= m->prefix[i].len && memcmp(id->p, m->prefix[i].p, m->prefix[i].len) == 0) {
            if (res) {
                res->pattern = m->prefix[i];
                res->pattern_star = 1;
            }
            return 1;
        }
    return 0;
}

/* Whether the call's identity (or, for SPIFFE patterns, its certificate's service IDs)
 * matches a pattern of l; the pattern goes to res when res is not NULL. */
static int identity_match(const idlist_t *l, const pol_acl_call_t *call, pol_acl_result_t *res)
{
    const pol_str_t *id = &call->identity;
    if (!id->p)
        return 0;
    if (matcher_hit(&l->plain, id, res))
        return 1;
    if (!call->identity_mtls || matcher_empty(&l->spiffe))
        return 0;
    if (matcher_hit(&l->spiffe, id, res))
        return 1;
    const mesh_peer_id_t *cert = call->cert;
    for (size_t i = 0; cert && i < cert->n_svc; i++) {
        pol_str_t svc = {cert->svc[i].p, cert->svc[i].len};
        if (matcher_hit(&l->spiffe, &svc, res))
            return 1;
    }
    return 0;
}

/* Method lists: exact holds "pkg.Svc/Method", prefix holds whole services "pkg.Svc". */
static int methods_build(matcher_t *m, const pol_acl_list_t *l, const char *what, char *err,
                         size_t errlen)
{
    memset(m, 0, sizeof(*m));
    if (l->n == 0)
        return 0;
    m->exact = calloc(l->n, sizeof(pol_str_t));
    m->prefix = calloc(l->n, sizeof(pol_str_t));
    if (!m->exact || !m->prefix) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < l->n; i++) {
        const char *orig = l->v[i], *s = orig;
        const char *why = NULL;
        if (s && *s == '/')
            s++;
        size_t len = s ? strlen(s) : 0;
        const char *slash = s ? strchr(s, '/') : NULL;
        if (!s || len == 0)
            why = "empty method pattern";
        else if (has_unprintable(s))
            why = "method pattern holds a blank or a control byte";
        else if (len == 1 && *s == '*')
            ;
        else if (!slash)
            why = "want \"pkg.Service/Method\", \"pkg.Service/*\" or \"*\"";
        else if (slash == s || strchr(slash + 1, '/') || slash[1] == '\0')
            why = "want \"pkg.Service/Method\", \"pkg.Service/*\" or \"*\"";
        else if (memchr(s, '*', (size_t)(slash - s)) ||
                 (strchr(slash + 1, '*') && strcmp(slash + 1, "*") != 0))
            why =
                "'*' may only stand for the whole method (\"pkg.Service/*\") or everything (\"*\")";
        if (why) {
            char hint[96] = "";
            if (s && *s && !slash && strcmp(s, "*") != 0 && !has_unprintable(s))
                snprintf(hint, sizeof(hint), " (did you mean \"%.64s/*\"?)", s);
            snprintf(err, errlen, "%s entry %zu (\"%.64s\"): %s%s", what, i + 1, orig ? orig : "",
                     why, hint);
            return -1;
        }
        int rc = 0;
        if (len == 1)
            m->any = 1;
        else if (strcmp(slash + 1, "*") == 0)
            rc = push_copy(m->prefix, &m->nprefix, s, (size_t)(slash - s));
        else
            rc = push_copy(m->exact, &m->nexact, s, len);
        if (rc) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    sort_unique(m->exact, &m->nexact);
    sort_unique(m->prefix, &m->nprefix);
    return 0;
}

static int method_match(const matcher_t *m, const pol_str_t *path)
{
    if (m->any)
        return 1;
    pol_str_t p = *path;
    if (!p.p)
        return 0;
    if (p.len && p.p[0] == '/') {
        p.p++;
        p.len--;
    }
    if (exact_find(m->exact, m->nexact, &p))
        return 1;
    const char *slash = memchr(p.p, '/', p.len);
    if (!slash)
        return 0;
    pol_str_t svc = {p.p, (size_t)(slash - p.p)};
    return exact_find(m->prefix, m->nprefix, &svc);
}

/* ---- the ACL -------------------------------------------------------------------------------- */

struct pol_acl {
    pol_cidr_set_t *allow_peers, *deny_peers, *trusted;
    idlist_t allow_ids, deny_ids;
    matcher_t allow_methods, deny_methods;
    pol_acl_xff_malformed_t xff_malformed;
};

void pol_acl_free(pol_acl_t *acl)
{
    if (!acl)
        return;
    pol_cidr_set_free(acl->allow_peers);
    pol_cidr_set_free(acl->deny_peers);
    pol_cidr_set_free(acl->trusted);
    idlist_free(&acl->allow_ids);
    idlist_free(&acl->deny_ids);
    matcher_free(&acl->allow_methods);
    matcher_free(&acl->deny_methods);
    free(acl);
}

static int peers_build(pol_cidr_set_t **out, const pol_acl_list_t *l, const char *what, char *err,
                       size_t errlen)
{
    *out = NULL;
    if (l->n == 0)
        return 0;
    char why[256];
    *out = pol_cidr_set_new(l->v, l->n, why, sizeof(why));
    if (!*out) {
        snprintf(err, errlen, "%s %s", what, why);
        return -1;
    }
    return 0;
}

pol_acl_t *pol_acl_new(const pol_acl_config_t *cfg, char *err, size_t errlen)
{
    pol_acl_t *acl = calloc(1, sizeof(*acl));
    if (!acl) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (cfg->xff_malformed != POL_ACL_XFF_DENY &&
        cfg->xff_malformed != POL_ACL_XFF_USE_LAST_TRUSTED) {
        snprintf(err, errlen, "xff_malformed: unknown value %d", (int)cfg->xff_malformed);
        goto fail;
    }
    acl->xff_malformed = cfg->xff_malformed;
    /* pol_cidr_set_new says "prefix N (...)": keep the list's name in front. */
    if (peers_build(&acl->allow_peers, &cfg->allow_peers, "allow_peers", err, errlen) ||
        peers_build(&acl->deny_peers, &cfg->deny_peers, "deny_peers", err, errlen) ||
        peers_build(&acl->trusted, &cfg->trusted_proxies, "trusted_proxies", err, errlen) ||
        identities_build(&acl->allow_ids, &cfg->allow_identities, "allow_identities", err,
                         errlen) ||
        identities_build(&acl->deny_ids, &cfg->deny_identities, "deny_identities", err, errlen) ||
        methods_build(&acl->allow_methods, &cfg->allow_methods, "allow_methods", err, errlen) ||
        methods_build(&acl->deny_methods, &cfg->deny_methods, "deny_methods", err, errlen))
        goto fail;
    return acl;
fail:
    pol_acl_free(acl);
    return NULL;
}

pol_acl_reason_t pol_acl_check(const pol_acl_t *acl, const pol_acl_call_t *call,
                               pol_acl_result_t *res)
{
    memset(res, 0, sizeof(*res));
    res->client_from = pol_xff_client(acl->trusted, &call->peer, call->xff, call->n_xff,
                                      &res->client, &res->bad_xff);
    if (res->client_from == POL_XFF_MALFORMED && acl->xff_malformed == POL_ACL_XFF_DENY)
        return res->reason = POL_ACL_XFF_MALFORMED;
    /* Deny wins. */
    if (acl->deny_peers && pol_cidr_set_contains(acl->deny_peers, &res->client))
        return res->reason = POL_ACL_PEER_DENIED;
    if (!idlist_empty(&acl->deny_ids) && identity_match(&acl->deny_ids, call, res))
        return res->reason = POL_ACL_IDENTITY_DENIED;
    if (!matcher_empty(&acl->deny_methods) && method_match(&acl->deny_methods, &call->path))
        return res->reason = POL_ACL_METHOD_DENIED;
    /* Every configured allow list must match. */
    if (acl->allow_peers && !pol_cidr_set_contains(acl->allow_peers, &res->client))
        return res->reason = POL_ACL_PEER_NOT_ALLOWED;
    if (!idlist_empty(&acl->allow_ids)) {
        if (!call->identity.p)
            return res->reason = POL_ACL_NO_IDENTITY;
        if (!identity_match(&acl->allow_ids, call, NULL))
            return res->reason = POL_ACL_IDENTITY_NOT_ALLOWED;
    }
    if (!matcher_empty(&acl->allow_methods) && !method_match(&acl->allow_methods, &call->path))
        return res->reason = POL_ACL_METHOD_NOT_ALLOWED;
    return res->reason = POL_ACL_ALLOWED;
}

const char *pol_acl_reason_name(pol_acl_reason_t r)
{
    switch (r) {
    case POL_ACL_ALLOWED:
        return "allowed";
    case POL_ACL_PEER_DENIED:
        return "peer_denied";
    case POL_ACL_PEER_NOT_ALLOWED:
        return "peer_not_allowed";
    case POL_ACL_IDENTITY_DENIED:
        return "identity_denied";
    case POL_ACL_IDENTITY_NOT_ALLOWED:
        return "identity_not_allowed";
    case POL_ACL_NO_IDENTITY:
        return "no_identity";
    case POL_ACL_METHOD_DENIED:
        return "method_denied";
    case POL_ACL_METHOD_NOT_ALLOWED:
        return "method_not_allowed";
    case POL_ACL_XFF_MALFORMED:
        return "xff_malformed";
    }
    return "unknown";
}

/* Copies untrusted bytes for a message: at most 64, non-printable ASCII as '?'. */
static void safe_copy(char *dst, size_t cap, const pol_str_t *s)
{
    size_t n = s->p ? s->len : 0, k = 0;
    if (n > 64)
        n = 64;
    for (size_t i = 0; i < n && k + 1 < cap; i++) {
        unsigned char c = (unsigned char)s->p[i];
        dst[k++] = (c >= 0x20 && c <= 0x7E && c != '"') ? (char)c : '?';
    }
    if (s->p && s->len > 64 && k + 3 < cap) {
        memcpy(dst + k, "...", 3);
        k += 3;
    }
    dst[k] = '\0';
}

int pol_acl_format_reason(const pol_acl_call_t *call, const pol_acl_result_t *res, char *buf,
                          size_t cap)
{
    char ip[POL_IP_STRLEN], s[72];
    pol_ip_format(&res->client, ip, sizeof(ip));
    int n;
    switch (res->reason) {
    case POL_ACL_ALLOWED:
        n = snprintf(buf, cap, "meshd: acl: allowed");
        break;
    case POL_ACL_PEER_DENIED:
        n = snprintf(buf, cap, "meshd: acl: peer %s denied", ip);
        break;
    case POL_ACL_PEER_NOT_ALLOWED:
        n = snprintf(buf, cap, "meshd: acl: peer %s not allowed", ip);
        break;
    case POL_ACL_IDENTITY_DENIED: {
        char pat[72];
        safe_copy(s, sizeof(s), &call->identity);
        safe_copy(pat, sizeof(pat), &res->pattern);
        n = snprintf(buf, cap, "meshd: acl: identity %s denied by '%s%s'", s, pat,
                     res->pattern_star ? "*" : "");
        break;
    }
    case POL_ACL_IDENTITY_NOT_ALLOWED:
        safe_copy(s, sizeof(s), &call->identity);
        n = snprintf(buf, cap, "meshd: acl: identity %s not allowed", s);
        break;
    case POL_ACL_NO_IDENTITY:
        n = snprintf(buf, cap, "meshd: acl: no identity (an identity allow list is configured)");
        break;
    case POL_ACL_METHOD_DENIED:
        safe_copy(s, sizeof(s), &call->path);
        n = snprintf(buf, cap, "meshd: acl: method %s denied", s);
        break;
    case POL_ACL_METHOD_NOT_ALLOWED:
        safe_copy(s, sizeof(s), &call->path);
        n = snprintf(buf, cap, "meshd: acl: method %s not allowed", s);
        break;
    case POL_ACL_XFF_MALFORMED:
        safe_copy(s, sizeof(s), &res->bad_xff);
        n = snprintf(buf, cap,
                     "meshd: acl: malformed X-Forwarded-For entry \"%s\" from trusted proxy %s", s,
                     ip);
        break;
    default:
        n = snprintf(buf, cap, "meshd: acl: denied");
        break;
    }
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

int pol_acl_format_short(const pol_acl_call_t *call, const pol_acl_result_t *res, char *buf,
                         size_t cap)
{
    int n;
    if (res->reason == POL_ACL_IDENTITY_DENIED) {
        char pat[72];
        safe_copy(pat, sizeof(pat), &res->pattern);
        n = snprintf(buf, cap, "denied by '%s%s'", pat, res->pattern_star ? "*" : "");
    } else if (res->reason == POL_ACL_IDENTITY_NOT_ALLOWED) {
        n = snprintf(buf, cap, "not allowed");
    } else {
        char full[200];
        n = pol_acl_format_reason(call, res, full, sizeof(full));
        const char *t = strncmp(full, "meshd: acl: ", 12) == 0 ? full + 12 : full;
        n = n < 0 ? -1 : snprintf(buf, cap, "%s", t);
    }
    return n < 0 || (size_t)n >= cap ? -1 : n;
}
