/*
 * gateway/http_routes.c: the route table (building, conflict checks, lookup) and the query
 * string reader (see http_routes.h).
 *
 * Routes are kept as one array of pointers sorted by (HTTP method, template precedence); a
 * lookup binary-searches the method's run and tries its templates in order. Building is rare
 * (a service version's descriptors change) and may be slow; lookup is per request.
 */
#include "gateway/http_routes.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A run of routes of one HTTP method with the same shape (verb or not, and the same kind of
 * segment at every position): sorted by their literal segments, so a lookup binary-searches
 * it instead of trying each route. */
typedef struct {
    size_t start, end; /* routes[start..end) */
    size_t n_segs;
    int has_verb, has_dstar;
} gw_group_t;

struct gw_routes {
    gw_route_t **routes;
    size_t n, cap;
    gw_group_t *groups;
    size_t n_groups;
    char err[512];
};

static int rt_fail(gw_routes_t *rt, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rt->err, sizeof rt->err, fmt, ap);
    va_end(ap);
    return -1;
}

gw_routes_t *gw_routes_new(void)
{
    return calloc(1, sizeof(gw_routes_t));
}

static void route_free(gw_route_t *r)
{
    if (!r)
        return;
    free(r->http_method);
    free(r->grpc_path);
    free(r->body);
    free(r->response_body);
    gw_path_template_destroy(&r->tmpl);
    free(r);
}

void gw_routes_free(gw_routes_t *rt)
{
    if (!rt)
        return;
    for (size_t i = 0; i < rt->n; i++)
        route_free(rt->routes[i]);
    free(rt->routes);
    free(rt->groups);
    free(rt);
}

size_t gw_routes_count(const gw_routes_t *rt)
{
    return rt->n;
}

const gw_route_t *gw_routes_get(const gw_routes_t *rt, size_t i)
{
    return i < rt->n ? rt->routes[i] : NULL;
}

const char *gw_routes_error(const gw_routes_t *rt)
{
    return rt->err;
}

/* Order of the table: by HTTP method, then by template precedence. */
static int route_cmp(const gw_route_t *a, const gw_route_t *b)
{
    int c = strcmp(a->http_method, b->http_method);
    if (c)
        return c;
    return gw_path_template_compare(&a->tmpl, &b->tmpl);
}

static int str_eq(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

/* A valid HTTP method token (RFC 9110 tchar). */
static int is_token(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr("!#$%&'*+-.^_`|~", *s)))
            return 0;
    return 1;
}

/* NULL for NULL or "", else a copy; *ok = 0 when out of memory. */
static char *dup_opt(const char *s, int *ok)
{
    if (!s || !*s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *ok = 0;
    return d;
}

/* Whether two routes have the same shape (see gw_group_t). */
static int same_shape(const gw_route_t *a, const gw_route_t *b)
{
    if (strcmp(a->http_method, b->http_method) != 0 || !a->tmpl.verb != !b->tmpl.verb ||
        a->tmpl.n_segs != b->tmpl.n_segs)
        return 0;
    for (size_t i = 0; i < a->tmpl.n_segs; i++)
        if (a->tmpl.segs[i].kind != b->tmpl.segs[i].kind)
            return 0;
    return 1;
}

/* Recomputes the groups after a change (building time: O(routes)). */
static int regroup(gw_routes_t *rt)
{
    gw_group_t *g = realloc(rt->groups, (rt->n ? rt->n : 1) * sizeof *g);
    if (!g)
        return -1;
    rt->groups = g;
    rt->n_groups = 0;
    for (size_t i = 0; i < rt->n; i++) {
        if (i == 0 || !same_shape(rt->routes[i - 1], rt->routes[i])) {
            const gw_path_template_t *t = &rt->routes[i]->tmpl;
            g[rt->n_groups++] =
                (gw_group_t){i, i, t->n_segs, t->verb != NULL,
                             t->n_segs && t->segs[t->n_segs - 1].kind == GW_SEG_DSTAR};
        }
        g[rt->n_groups - 1].end = i + 1;
    }
    return 0;
}

/* gw_routes_add(), marking the default route. */
static int add_route(gw_routes_t *rt, const char *http_method, const char *tmpl,
                     const char *grpc_path, const char *body, const char *response_body,
                     int is_default)
{
    rt->err[0] = 0;
    if (!http_method || !is_token(http_method))
        return rt_fail(rt, "route for %s: HTTP method '%s' is not a token",
                       grpc_path ? grpc_path : "?", http_method ? http_method : "");
    if (!grpc_path || grpc_path[0] != '/' || !strchr(grpc_path + 1, '/'))
        return rt_fail(rt, "route %s %s: gRPC method '%s' is not /pkg.Service/Method", http_method,
                       tmpl ? tmpl : "", grpc_path ? grpc_path : "");
    if (!tmpl)
        return rt_fail(rt, "route %s for %s: no path template", http_method, grpc_path);
    if (body && *body && strcmp(body, "*") != 0 && !gw_is_field_path(body, strlen(body)))
        return rt_fail(rt, "route %s %s for %s: body '%s' is neither '*' nor a field path",
                       http_method, tmpl, grpc_path, body);
    if (response_body && *response_body && !gw_is_field_path(response_body, strlen(response_body)))
        return rt_fail(rt, "route %s %s for %s: response_body '%s' is not a field path",
                       http_method, tmpl, grpc_path, response_body);
    gw_route_t *r = calloc(1, sizeof *r);
    if (!r)
        return rt_fail(rt, "out of memory");
    gw_tmpl_error_t terr;
    if (gw_path_template_parse(tmpl, strlen(tmpl), &r->tmpl, &terr) < 0) {
        free(r);
        return rt_fail(rt, "route %s %s for %s: template position %zu: %s", http_method, tmpl,
                       grpc_path, terr.pos, terr.msg);
    }
    int ok = 1;
    r->http_method = strdup(http_method);
    r->grpc_path = strdup(grpc_path);
    r->body = dup_opt(body, &ok);
    r->response_body = dup_opt(response_body, &ok);
    r->is_default = is_default;
    if (!ok || !r->http_method || !r->grpc_path) {
        route_free(r);
        return rt_fail(rt, "out of memory");
    }
    /* Where it goes, and whether an equal-precedence route (a conflict) is there already. */
    size_t lo = 0, hi = rt->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (route_cmp(rt->routes[mid], r) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < rt->n && route_cmp(rt->routes[lo], r) == 0) {
        const gw_route_t *o = rt->routes[lo];
        if (str_eq(o->grpc_path, r->grpc_path) && str_eq(o->body, r->body) &&
            str_eq(o->response_body, r->response_body)) {
            route_free(r);
            return 1;
        }
        rt_fail(rt, "route %s %s for %s conflicts with %s %s for %s (they match the same requests)",
                r->http_method, r->tmpl.text, r->grpc_path, o->http_method, o->tmpl.text,
                o->grpc_path);
        route_free(r);
        return -1;
    }
    if (rt->n == rt->cap) {
        size_t nc = rt->cap ? rt->cap * 2 : 16;
        gw_route_t **nr = realloc(rt->routes, nc * sizeof *nr);
        if (!nr) {
            route_free(r);
            return rt_fail(rt, "out of memory");
        }
        rt->routes = nr;
        rt->cap = nc;
    }
    memmove(&rt->routes[lo + 1], &rt->routes[lo], (rt->n - lo) * sizeof *rt->routes);
    rt->routes[lo] = r;
    rt->n++;
    if (regroup(rt) < 0) {
        /* Keep the table consistent: take the route out again. */
        memmove(&rt->routes[lo], &rt->routes[lo + 1], (rt->n - lo - 1) * sizeof *rt->routes);
        rt->n--;
        route_free(r);
        (void)regroup(rt);
        return rt_fail(rt, "out of memory");
    }
    return 0;
}

int gw_routes_add(gw_routes_t *rt, const char *http_method, const char *tmpl, const char *grpc_path,
                  const char *body, const char *response_body)
{
    return add_route(rt, http_method, tmpl, grpc_path, body, response_body, 0);
}

/* Adds one rule's own pattern (not its bindings). */
static int add_pattern(gw_routes_t *rt, const char *grpc_path, const gw_http_rule_t *rule)
{
    if (!rule->method && !rule->path)
        return 0;
    if (!rule->method || !rule->path || !*rule->path)
        return rt_fail(rt, "google.api.http of %s: a pattern without a path", grpc_path);
    int rc =
        gw_routes_add(rt, rule->method, rule->path, grpc_path, rule->body, rule->response_body);
    return rc < 0 ? -1 : rc == 0;
}

int gw_routes_add_rule(gw_routes_t *rt, const char *grpc_path, const gw_http_rule_t *rule)
{
    int added = add_pattern(rt, grpc_path, rule);
    if (added < 0)
        return -1;
    for (size_t i = 0; i < rule->n_bindings; i++) {
        int rc = add_pattern(rt, grpc_path, &rule->bindings[i]);
        if (rc < 0)
            return -1;
        added += rc;
    }
    return added;
}

int gw_routes_add_method(gw_routes_t *rt, const char *grpc_path,
                         const Google__Protobuf__MethodOptions *opts)
{
    int rc = add_route(rt, "POST", grpc_path, grpc_path, "*", NULL, 1);
    if (rc < 0)
        return -1;
    int added = rc == 0;
    gw_http_rule_t rule;
    char err[256];
    int found = gw_http_rule_from_options(opts, &rule, err, sizeof err);
    if (found < 0)
        return rt_fail(rt, "google.api.http of %s: %s", grpc_path, err);
    if (found) {
        rc = gw_routes_add_rule(rt, grpc_path, &rule);
        gw_http_rule_clear(&rule);
        if (rc < 0)
            return -1;
        added += rc;
    }
    return added;
}

int gw_routes_add_pool(gw_routes_t *rt, const mesh_desc_pool_t *pool, gw_routes_on_error_t on_error,
                       void *ctx)
{
    int added = 0;
    for (size_t s = 0; s < mesh_desc_pool_service_count(pool); s++) {
        const mesh_desc_service_t *svc = mesh_desc_pool_service(pool, s);
        for (size_t m = 0; m < svc->n_methods; m++) {
            const mesh_desc_method_t *md = &svc->methods[m];
            int before = (int)rt->n;
            int rc = gw_routes_add_method(rt, md->path, md->proto ? md->proto->options : NULL);
            if (rc < 0 && !on_error)
                return -1;
            if (rc < 0) {
                on_error(ctx, md->path, rt->err);
                rc = (int)rt->n - before;
            }
            added += rc;
        }
    }
    return added;
}

/* ------------------------------------------------------------------------------------------
 * Lookup
 * ------------------------------------------------------------------------------------------ */

/* strcmp of a NUL-terminated string with s[0..n). */
static int cmp_n(const char *z, const char *s, size_t n)
{
    size_t zl = strlen(z);
    size_t m = zl < n ? zl : n;
    int c = memcmp(z, s, m);
    if (c)
        return c;
    return zl < n ? -1 : zl > n ? 1 : 0;
}

static int try_route(const gw_route_t *r, const char *path, size_t len, gw_match_t *m)
{
    if (!gw_path_template_match(&r->tmpl, path, len, m ? m->captures : NULL))
        return 0;
    if (m) {
        m->route = r;
        m->n_captures = r->tmpl.n_vars;
    }
    return 1;
}

/* Most request segments indexed for the binary search; a longer path is matched route by
 * route (slower, never wrong). */
#define REQ_MAX_SEGS 64

/* A request path split at raw '/': segment i is path[off[i] .. off[i] + len[i]). */
typedef struct {
    const char *path;
    size_t path_len;
    size_t n;  /* segments; REQ_MAX_SEGS + 1 when there were more */
    int colon; /* whether the last segment holds a ':' (else no verb route can match) */
    size_t off[REQ_MAX_SEGS], len[REQ_MAX_SEGS];
} req_t;

static void req_split(req_t *q, const char *path, size_t len)
{
    q->path = path;
    q->path_len = len;
    q->n = 0;
    const char *last = len ? memrchr(path, '/', len) : NULL;
    q->colon = last && memchr(last, ':', len - (size_t)(last - path)) != NULL;
    if (len <= 1)
        return; /* "/" (or a bad path, which no template matches) */
    size_t p = 1;
    for (;;) {
        const char *slash = memchr(path + p, '/', len - p);
        size_t e = slash ? (size_t)(slash - path) : len;
        if (q->n == REQ_MAX_SEGS) {
            q->n = REQ_MAX_SEGS + 1;
            return;
        }
        q->off[q->n] = p;
        q->len[q->n++] = e - p;
        if (!slash)
            return;
        p = e + 1;
    }
}

static int hexv(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Orders request segment s[0..n), percent-decoded (a malformed escape counts as a plain '%'),
 * against a literal, bytewise as gw_path_template_compare orders literals. */
static int seg_cmp(const char *s, size_t n, const char *lit, size_t lit_len)
{
    size_t i = 0, j = 0;
    while (i < n && j < lit_len) {
        unsigned char c = (unsigned char)s[i];
        int h, l;
        if (c == '%' && i + 2 < n && (h = hexv(s[i + 1])) >= 0 && (l = hexv(s[i + 2])) >= 0) {
            c = (unsigned char)(h * 16 + l);
            i += 3;
        } else {
            i++;
        }
        unsigned char d = (unsigned char)lit[j++];
        if (c != d)
            return c < d ? -1 : 1;
    }
    if (i < n)
        return 1;
    return j < lit_len ? -1 : 0;
}

/* Orders a route of a verb-less group against the request by the literal segments. */
static int key_cmp(const gw_route_t *r, const req_t *q)
{
    for (size_t i = 0; i < r->tmpl.n_segs; i++) {
        const gw_seg_t *sg = &r->tmpl.segs[i];
        if (sg->kind != GW_SEG_LITERAL)
            continue;
        if (i >= q->n)
            return 1; /* cannot happen: groups are filtered by segment count */
        int c = seg_cmp(q->path + q->off[i], q->len[i], sg->lit, sg->lit_len);
        if (c)
            return -c;
    }
    return 0;
}

/* Tries the routes of group g. */
static int try_group(const gw_routes_t *rt, const gw_group_t *g, const req_t *q, gw_match_t *m)
{
    if (g->has_verb && !q->colon)
        return 0;
    int indexed = q->n <= REQ_MAX_SEGS && !g->has_verb;
    if (indexed) {
        /* A group's shape fixes how many segments it can match. */
        if (g->has_dstar ? q->n + 1 < g->n_segs : q->n != g->n_segs)
            return 0;
        if (g->end - g->start > 4) {
            size_t lo = g->start, hi = g->end;
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = key_cmp(rt->routes[mid], q);
                if (c == 0)
                    return try_route(rt->routes[mid], q->path, q->path_len, m);
                if (c < 0)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            return 0;
        }
    }
    for (size_t i = g->start; i < g->end; i++)
        if (try_route(rt->routes[i], q->path, q->path_len, m))
            return 1;
    return 0;
}

gw_route_result_t gw_routes_lookup(const gw_routes_t *rt, const char *method, size_t method_len,
                                   const char *target, size_t target_len, gw_match_t *m)
{
    if (!target)
        target = "", target_len = 0;
    const char *qm = memchr(target, '?', target_len);
    size_t path_len = qm ? (size_t)(qm - target) : target_len;
    m->route = NULL;
    m->n_captures = 0;
    m->query = qm ? qm + 1 : target + target_len;
    m->query_len = qm ? target_len - path_len - 1 : 0;
    req_t q;
    req_split(&q, target, path_len);
    /* The first group of the method's run. */
    size_t lo = 0, hi = rt->n_groups;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cmp_n(rt->routes[rt->groups[mid].start]->http_method, method, method_len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t g = lo;
    for (; g < rt->n_groups &&
           cmp_n(rt->routes[rt->groups[g].start]->http_method, method, method_len) == 0;
         g++)
        if (try_group(rt, &rt->groups[g], &q, m))
            return GW_ROUTE_FOUND;
    /* Not found: does the path exist for another method? */
    for (size_t i = 0; i < rt->n_groups; i++)
        if ((i < lo || i >= g) && try_group(rt, &rt->groups[i], &q, NULL))
            return GW_ROUTE_METHOD_NOT_ALLOWED;
    return GW_ROUTE_NOT_FOUND;
}

/* Whether field[0..len) is prefix itself or lies under it ("prefix.x"). */
static int under(const char *prefix, const char *field, size_t len)
{
    size_t pl = strlen(prefix);
    if (len < pl || memcmp(prefix, field, pl) != 0)
        return 0;
    return len == pl || field[pl] == '.';
}

int gw_route_binds_field(const gw_route_t *r, const char *field, size_t len)
{
    if (r->body && strcmp(r->body, "*") == 0)
        return 1;
    if (r->body && under(r->body, field, len))
        return 1;
    for (size_t i = 0; i < r->tmpl.n_vars; i++)
        if (under(r->tmpl.vars[i].field, field, len))
            return 1;
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * Query strings
 * ------------------------------------------------------------------------------------------ */

void gw_query_iter_init(gw_query_iter_t *it, const char *query, size_t len)
{
    it->p = query;
    it->end = query + len;
}

static int q_fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int gw_query_next(gw_query_iter_t *it, char *buf, size_t cap, gw_query_param_t *out, char *err,
                  size_t errlen)
{
    for (;;) {
        if (it->p >= it->end)
            return 0;
        const char *amp = memchr(it->p, '&', (size_t)(it->end - it->p));
        const char *pe = amp ? amp : it->end;
        const char *piece = it->p;
        it->p = amp ? amp + 1 : it->end;
        if (pe == piece)
            continue;
        if (cap < (size_t)(pe - piece) + 2)
            return q_fail(err, errlen, "query buffer of %zu bytes is too small", cap);
        const char *eq = memchr(piece, '=', (size_t)(pe - piece));
        const char *ke = eq ? eq : pe;
        if (ke == piece)
            return q_fail(err, errlen, "query parameter '%.*s' has an empty name",
                          (int)(pe - piece), piece);
        ssize_t kn = gw_percent_decode(piece, (size_t)(ke - piece), 1, buf, cap);
        if (kn < 0)
            return q_fail(err, errlen, "query parameter name '%.*s': bad %%-escape",
                          (int)(ke - piece), piece);
        const char *vs = eq ? eq + 1 : pe;
        ssize_t vn =
            gw_percent_decode(vs, (size_t)(pe - vs), 1, buf + kn + 1, cap - (size_t)kn - 1);
        if (vn < 0)
            return q_fail(err, errlen, "query parameter '%.*s': bad %%-escape in the value",
                          (int)(ke - piece), piece);
        out->key = buf;
        out->key_len = (size_t)kn;
        out->value = buf + kn + 1;
        out->value_len = (size_t)vn;
        out->is_field_path = gw_is_field_path(buf, (size_t)kn);
        return 1;
    }
}
