/*
 * tests/unit/gateway_route/test_gw_routes.c: the route table built from an annotated service
 * (protoc descriptor set), lookups with captures, precedence, conflicts, 404 versus 405, the
 * fields a route binds, and query-string parsing.
 */
#include "gateway/http_routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/check.h"

static gw_routes_t *shop_routes(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/shop_set.pb", GW_TESTDATA);
    mesh_desc_pool_t *p = mesh_desc_pool_new();
    CHECK(mesh_desc_pool_load_set_file(p, path) > 0);
    CHECK(mesh_desc_pool_build(p, NULL, 0) == 0);
    gw_routes_t *rt = gw_routes_new();
    int n = gw_routes_add_pool(rt, p, NULL, NULL);
    if (n < 0)
        fprintf(stderr, "%s\n", gw_routes_error(rt));
    /* 7 default routes + GetItem 3 + UpdateItem, CreateItem, ListItems, CancelItem, HeadItem. */
    CHECK_EQ(n, 15);
    CHECK_EQ(gw_routes_count(rt), 15);
    mesh_desc_pool_free(p);
    return rt;
}

/* Looks up method+target; returns the gRPC path (or "404"/"405") and the captures. */
static const char *lookup(const gw_routes_t *rt, const char *method, const char *target, char *caps,
                          size_t cap, gw_match_t *m)
{
    gw_route_result_t r = gw_routes_lookup(rt, method, strlen(method), target, strlen(target), m);
    caps[0] = 0;
    if (r == GW_ROUTE_NOT_FOUND)
        return "404";
    if (r == GW_ROUTE_METHOD_NOT_ALLOWED)
        return "405";
    size_t o = 0;
    for (size_t i = 0; i < m->n_captures; i++)
        o += (size_t)snprintf(caps + o, cap - o, "%s%s=%.*s", i ? " " : "", m->captures[i].field,
                              (int)m->captures[i].len, m->captures[i].value);
    return m->route->grpc_path;
}

static const struct {
    const char *method, *target, *want, *caps, *tmpl;
} lookups[] = {
    {"POST", "/shop.v1.Shop/GetItem", "/shop.v1.Shop/GetItem", "", "/shop.v1.Shop/GetItem"},
    {"POST", "/shop.v1.Shop/Ping", "/shop.v1.Shop/Ping", "", NULL},
    {"GET", "/shop.v1.Shop/Ping", "405", "", NULL},
    {"POST", "/shop.v1.Shop/Nope", "404", "", NULL},
    {"GET", "/v1/shelves/s1/items/i2", "/shop.v1.Shop/GetItem", "name=shelves/s1/items/i2",
     "/v1/{name=shelves/*/items/*}"},
    {"GET", "/v1/items/i2", "/shop.v1.Shop/GetItem", "name=i2", "/v1/items/{name}"},
    {"GET", "/v1/archive/2019/a/b", "/shop.v1.Shop/GetItem", "name=archive/2019/a/b", NULL},
    {"GET", "/v1/shelves/s1/items", "/shop.v1.Shop/ListItems", "parent=shelves/s1", NULL},
    {"GET", "/v1/shelves/s1/items?page_size=3&tags=a&tags=b", "/shop.v1.Shop/ListItems",
     "parent=shelves/s1", NULL},
    {"PATCH", "/v1/shelves/s1/items/i2", "/shop.v1.Shop/UpdateItem", "shelf=s1 item_id=i2", NULL},
    {"POST", "/v1/items", "/shop.v1.Shop/CreateItem", "", NULL},
    {"POST", "/v1/shelves/s1/items/i2:cancel", "/shop.v1.Shop/CancelItem",
     "name=shelves/s1/items/i2", NULL},
    {"POST", "/v1/shelves/s1/items/i2", "405", "", NULL},
    {"HEAD", "/v1/items/i2", "/shop.v1.Shop/HeadItem", "name=i2", NULL},
    {"DELETE", "/v1/items/i2", "405", "", NULL},
    {"GET", "/v2/items/i2", "404", "", NULL},
    {"GET", "/v1/items/i2/", "404", "", NULL},
    {"get", "/v1/items/i2", "405", "", NULL},
};

static void test_shop_lookups(void)
{
    gw_routes_t *rt = shop_routes();
    for (size_t i = 0; i < gw_routes_count(rt); i++) {
        const gw_route_t *r = gw_routes_get(rt, i);
        fprintf(stderr, "   route %-7s %-40s %-28s body=%s resp=%s\n", r->http_method, r->tmpl.text,
                r->grpc_path, r->body ? r->body : "-", r->response_body ? r->response_body : "-");
    }
    for (size_t i = 0; i < sizeof lookups / sizeof *lookups; i++) {
        gw_match_t m;
        char caps[256];
        const char *got = lookup(rt, lookups[i].method, lookups[i].target, caps, sizeof caps, &m);
        fprintf(stderr, "   %-6s %-50s -> %s %s\n", lookups[i].method, lookups[i].target, got,
                caps);
        CHECK_STR(got, lookups[i].want);
        CHECK_STR(caps, lookups[i].caps);
        if (lookups[i].tmpl)
            CHECK_STR(m.route->tmpl.text, lookups[i].tmpl);
    }
    /* The route's body and response_body come from the rule; the default route takes "*". */
    gw_match_t m;
    char caps[256];
    lookup(rt, "PATCH", "/v1/shelves/s1/items/i2", caps, sizeof caps, &m);
    CHECK_STR(m.route->body, "item");
    CHECK(m.route->response_body == NULL && !m.route->is_default);
    lookup(rt, "GET", "/v1/shelves/s1/items?page_size=3", caps, sizeof caps, &m);
    CHECK(m.route->body == NULL);
    CHECK_STR(m.route->response_body, "items");
    CHECK(m.query_len == 11 && memcmp(m.query, "page_size=3", 11) == 0);
    lookup(rt, "POST", "/shop.v1.Shop/GetItem", caps, sizeof caps, &m);
    CHECK_STR(m.route->body, "*");
    CHECK(m.route->is_default);
    CHECK_EQ(m.query_len, 0);
    gw_routes_free(rt);
}

static int n_reported;
static char reported[512];

static void on_error(void *ctx, const char *grpc_path, const char *error)
{
    CHECK(ctx == &n_reported);
    n_reported++;
    snprintf(reported, sizeof reported, "%s: %s", grpc_path, error);
}

/* Two services claiming one path: an error naming both, or (with a callback) a report and the
 * other methods still routed. */
static void test_pool_conflict(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/clash_set.pb", GW_TESTDATA);
    mesh_desc_pool_t *p = mesh_desc_pool_new();
    CHECK(mesh_desc_pool_load_set_file(p, path) > 0);
    CHECK(mesh_desc_pool_build(p, NULL, 0) == 0);

    gw_routes_t *rt = gw_routes_new();
    CHECK_EQ(gw_routes_add_pool(rt, p, NULL, NULL), -1);
    fprintf(stderr, "   %s\n", gw_routes_error(rt));
    CHECK_CONTAINS(gw_routes_error(rt),
                   "route GET /v1/items/{name} for /shop.v1.Shop/GetItem "
                   "conflicts with GET /v1/items/{name} for /shop.v1.Clash/Get");
    gw_routes_free(rt);

    rt = gw_routes_new();
    /* Clash (sorted first): 2 defaults + 2; Shop: 15 less GetItem's bindings after the clash. */
    CHECK_EQ(gw_routes_add_pool(rt, p, on_error, &n_reported), 17);
    CHECK_EQ(n_reported, 1);
    fprintf(stderr, "   reported %s\n", reported);
    CHECK_CONTAINS(reported, "/shop.v1.Shop/GetItem: route GET /v1/items/{name}");
    gw_match_t m;
    char caps[256];
    CHECK_STR(lookup(rt, "GET", "/v1/items/x", caps, sizeof caps, &m), "/shop.v1.Clash/Get");
    CHECK_STR(lookup(rt, "GET", "/v1/shelves/s/items/i", caps, sizeof caps, &m),
              "/shop.v1.Shop/GetItem");
    CHECK_STR(lookup(rt, "PATCH", "/v1/shelves/s/items/i", caps, sizeof caps, &m),
              "/shop.v1.Shop/UpdateItem");
    gw_routes_free(rt);
    mesh_desc_pool_free(p);
}

static void test_precedence(void)
{
    gw_routes_t *rt = gw_routes_new();
    /* Added most general first: order of addition must not matter. */
    CHECK_EQ(gw_routes_add(rt, "GET", "/v1/{name=**}", "/a.S/Any", NULL, NULL), 0);
    CHECK_EQ(gw_routes_add(rt, "GET", "/v1/{shelf}/{item}", "/a.S/Two", NULL, NULL), 0);
    CHECK_EQ(gw_routes_add(rt, "GET", "/v1/{shelf}", "/a.S/One", NULL, NULL), 0);
    CHECK_EQ(gw_routes_add(rt, "GET", "/v1/special", "/a.S/Special", NULL, NULL), 0);
    CHECK_EQ(gw_routes_add(rt, "GET", "/v1/special/{item}", "/a.S/SpecialItem", NULL, NULL), 0);
    CHECK_EQ(gw_routes_add(rt, "GET", "/v1/{shelf}:watch", "/a.S/Watch", NULL, NULL), 0);
    CHECK_EQ(gw_routes_add(rt, "GET", "/v1/a/**", "/a.S/APrefix", NULL, NULL), 0);
    static const struct {
        const char *target, *want;
    } cases[] = {
        {"/v1/special", "/a.S/Special"},
        {"/v1/other", "/a.S/One"},
        {"/v1/special/x", "/a.S/SpecialItem"},
        {"/v1/other/x", "/a.S/Two"},
        {"/v1/a/b/c", "/a.S/APrefix"},
        /* Position by position: the literal 'a' beats the variable {shelf}. */
        {"/v1/a/b", "/a.S/APrefix"},
        {"/v1/a", "/a.S/APrefix"},
        {"/v1/b/c/d", "/a.S/Any"},
        {"/v1/x:watch", "/a.S/Watch"},
        {"/v1", "/a.S/Any"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        gw_match_t m;
        char caps[256];
        const char *got = lookup(rt, "GET", cases[i].target, caps, sizeof caps, &m);
        fprintf(stderr, "   %-16s -> %s %s\n", cases[i].target, got, caps);
        CHECK_STR(got, cases[i].want);
    }
    gw_routes_free(rt);
}

static void test_conflicts_and_errors(void)
{
    gw_routes_t *rt = gw_routes_new();
    CHECK_EQ(gw_routes_add(rt, "GET", "/v1/items/{id}", "/a.S/Get", NULL, NULL), 0);
    /* The same route again (e.g. an annotation restating the default) is not a conflict. */
    CHECK_EQ(gw_routes_add(rt, "GET", "/v1/items/{id}", "/a.S/Get", NULL, NULL), 1);
    CHECK_EQ(gw_routes_add(rt, "GET", "/v1/items/{id}", "/a.S/Get", "", ""), 1);
    /* Same requests, another method: an error naming both. */
    CHECK_EQ(gw_routes_add(rt, "GET", "/v1/items/{name=*}", "/a.S/Other", NULL, NULL), -1);
    fprintf(stderr, "   %s\n", gw_routes_error(rt));
    CHECK_CONTAINS(gw_routes_error(rt), "GET /v1/items/{name=*} for /a.S/Other conflicts with "
                                        "GET /v1/items/{id} for /a.S/Get");
    /* Same template, same method, another body: still a conflict. */
    CHECK_EQ(gw_routes_add(rt, "GET", "/v1/items/*", "/a.S/Get", "x", NULL), -1);
    /* Another HTTP method, or a different literal: fine. */
    CHECK_EQ(gw_routes_add(rt, "DELETE", "/v1/items/{id}", "/a.S/Delete", NULL, NULL), 0);
    CHECK_EQ(gw_routes_add(rt, "GET", "/v1/users/{id}", "/a.S/User", NULL, NULL), 0);
    CHECK_EQ(gw_routes_count(rt), 3);

    /* Bad input. */
    CHECK_EQ(gw_routes_add(rt, "GET", "/v1/{", "/a.S/Bad", NULL, NULL), -1);
    fprintf(stderr, "   %s\n", gw_routes_error(rt));
    CHECK_CONTAINS(gw_routes_error(rt), "template position 4");
    CHECK_EQ(gw_routes_add(rt, "GET", "/v1/x", "/a.S/Bad", "a b", NULL), -1);
    CHECK_CONTAINS(gw_routes_error(rt), "body 'a b'");
    CHECK_EQ(gw_routes_add(rt, "GET", "/v1/x", "/a.S/Bad", NULL, "*"), -1);
    CHECK_CONTAINS(gw_routes_error(rt), "response_body '*'");
    CHECK_EQ(gw_routes_add(rt, "G T", "/v1/x", "/a.S/Bad", NULL, NULL), -1);
    CHECK_CONTAINS(gw_routes_error(rt), "not a token");
    CHECK_EQ(gw_routes_add(rt, "GET", "/v1/x", "a.S.Bad", NULL, NULL), -1);
    CHECK_CONTAINS(gw_routes_error(rt), "not /pkg.Service/Method");
    CHECK_EQ(gw_routes_count(rt), 3);

    /* A rule with a conflicting binding: earlier routes stay, the error names both. */
    gw_http_rule_t bind = {.method = "PUT", .path = "/v1/items/{id}"};
    gw_http_rule_t rule = {
        .method = "PUT", .path = "/v1/things/{id}", .bindings = &bind, .n_bindings = 1};
    CHECK_EQ(gw_routes_add_rule(rt, "/a.S/Put", &rule), 2);
    gw_http_rule_t bind2 = {.method = "PUT", .path = "/v1/items/{other}"};
    gw_http_rule_t rule2 = {
        .method = "PUT", .path = "/v1/more/{id}", .bindings = &bind2, .n_bindings = 1};
    CHECK_EQ(gw_routes_add_rule(rt, "/a.S/Put2", &rule2), -1);
    CHECK_CONTAINS(gw_routes_error(rt), "for /a.S/Put2 conflicts with PUT /v1/items/{id} for "
                                        "/a.S/Put");
    gw_routes_free(rt);
}

static void test_binds_field(void)
{
    gw_routes_t *rt = gw_routes_new();
    CHECK_EQ(gw_routes_add(rt, "PATCH", "/v1/{book.name=shelves/*}/{id}", "/a.S/U", "book", NULL),
             0);
    CHECK_EQ(gw_routes_add(rt, "GET", "/v1/{id}", "/a.S/G", NULL, NULL), 0);
    CHECK_EQ(gw_routes_add(rt, "POST", "/v1/{id}", "/a.S/P", "*", NULL), 0);
    gw_match_t m;
    char caps[128];
    lookup(rt, "PATCH", "/v1/shelves/1/2", caps, sizeof caps, &m);
    CHECK(gw_route_binds_field(m.route, "id", 2));
    CHECK(gw_route_binds_field(m.route, "book", 4));
    CHECK(gw_route_binds_field(m.route, "book.title", 10));
    CHECK(!gw_route_binds_field(m.route, "bookish", 7));
    CHECK(!gw_route_binds_field(m.route, "idx", 3));
    CHECK(!gw_route_binds_field(m.route, "revision", 8));
    lookup(rt, "GET", "/v1/2", caps, sizeof caps, &m);
    CHECK(gw_route_binds_field(m.route, "id", 2));
    CHECK(!gw_route_binds_field(m.route, "page_size", 9));
    lookup(rt, "POST", "/v1/2", caps, sizeof caps, &m);
    CHECK(gw_route_binds_field(m.route, "anything", 8));
    gw_routes_free(rt);
}

/* Collects every parameter as "key=value" joined by '|'; returns the rc that ended it. */
static int query(const char *q, char *out, size_t cap, char *err, size_t errlen)
{
    gw_query_iter_t it;
    gw_query_iter_init(&it, q, strlen(q));
    char buf[512];
    gw_query_param_t p;
    size_t o = 0;
    int rc;
    out[0] = 0;
    err[0] = 0;
    while ((rc = gw_query_next(&it, buf, strlen(q) + 2, &p, err, errlen)) == 1) {
        CHECK(strlen(p.key) == p.key_len && strlen(p.value) == p.value_len);
        o += (size_t)snprintf(out + o, cap - o, "%s%s%s=%s", o ? "|" : "",
                              p.is_field_path ? "" : "!", p.key, p.value);
    }
    (void)buf;
    return rc;
}

static void test_query(void)
{
    static const struct {
        const char *q;
        int rc;
        const char *want;
    } cases[] = {
        {"", 0, ""},
        {"a=1", 0, "a=1"},
        {"page_size=3&tags=a&tags=b", 0, "page_size=3|tags=a|tags=b"},
        {"sub.subfield=x%20y&b=a+b%2Bc", 0, "sub.subfield=x y|b=a b+c"},
        {"flag&empty=&&x=1&", 0, "flag=|empty=|x=1"},
        {"caf%C3%A9=1", 0, "!caf\xc3\xa9=1"},
        {"%24alt=json&access_token=t", 0, "!$alt=json|access_token=t"},
        {"a=b=c", 0, "a=b=c"},
        {"a.b.c=%2F", 0, "a.b.c=/"},
        {"=x", -1, "empty name"},
        {"a=%zz", -1, "bad %-escape in the value"},
        {"a%2=1", -1, "bad %-escape"},
        {"ok=1&a=%", -1, "bad %-escape in the value"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char out[256], err[256];
        int rc = query(cases[i].q, out, sizeof out, err, sizeof err);
        fprintf(stderr, "   %-34s -> %d %s %s\n", cases[i].q, rc, out, err);
        CHECK_EQ(rc, cases[i].rc);
        if (rc == 0)
            CHECK_STR(out, cases[i].want);
        else
            CHECK_CONTAINS(err, cases[i].want);
    }
    /* A buffer that is too small fails loudly. */
    gw_query_iter_t it;
    gw_query_iter_init(&it, "abc=def", 7);
    char small[4], err[128];
    gw_query_param_t p;
    CHECK_EQ(gw_query_next(&it, small, sizeof small, &p, err, sizeof err), -1);
    CHECK_CONTAINS(err, "too small");
}

/* The indexed lookup gives what trying every route in table order would: checked on 20000
 * seeded pseudo-random paths over a table with large groups of each shape. */
static void test_lookup_matches_linear_scan(void)
{
    gw_routes_t *rt = gw_routes_new();
    char t[128], g[128];
    static const char *const shapes[] = {
        "/v%d/{name=projects/*/items/*}",
        "/v%d/projects/{p}/items",
        "/v%d/projects/items/x",
        "/v%d/{name=projects/*/items/*}:cancel",
        "/v%d/{rest=**}",
        "/v%d/items:batchGet",
        "/v%d/projects/{p}/{q=**}",
    };
    static const char *const methods[] = {"GET", "POST"};
    for (int s = 0; s < 12; s++)
        for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++)
            for (size_t mi = 0; mi < 2; mi++) {
                snprintf(t, sizeof t, shapes[k], s);
                snprintf(g, sizeof g, "/t.S%d/M%zu%zu", s, k, mi);
                CHECK_EQ(gw_routes_add(rt, methods[mi], t, g, NULL, NULL), 0);
            }
    for (int s = 0; s < 12; s++) { /* one method only: the other gets 405 */
        snprintf(t, sizeof t, "/v%d/items/{id}", s);
        CHECK_EQ(gw_routes_add(rt, "GET", t, "/t.S/Items", NULL, NULL), 0);
        snprintf(t, sizeof t, "/v%d/x/{id}", s);
        CHECK_EQ(gw_routes_add(rt, "POST", t, "/t.S/X", NULL, NULL), 0);
    }
    for (int s = 0; s < 30; s++) {
        snprintf(g, sizeof g, "/t.v%d.Svc/Method", s);
        CHECK_EQ(gw_routes_add(rt, "POST", g, g, "*", NULL), 0);
    }
    static const char *const words[] = {"v1",
                                        "v3",
                                        "v11",
                                        "projects",
                                        "p1",
                                        "items",
                                        "i2",
                                        "%70rojects",
                                        "x",
                                        "",
                                        "items:batchGet",
                                        "i2:cancel",
                                        "t.v4.Svc",
                                        "Method",
                                        "Method:cancel",
                                        "%zz",
                                        "a%2Fb"};
    const size_t nw = sizeof words / sizeof *words;
    uint32_t seed = 12345;
    int found = 0, m405 = 0, m404 = 0;
    for (int iter = 0; iter < 20000; iter++) {
        char path[256];
        size_t o = 0;
        seed = seed * 1103515245u + 12345u;
        int nseg = (int)((seed >> 16) % 6);
        path[o++] = '/';
        for (int i = 0; i < nseg; i++) {
            seed = seed * 1103515245u + 12345u;
            o += (size_t)snprintf(path + o, sizeof path - o, "%s%s", i ? "/" : "",
                                  words[(seed >> 16) % nw]);
        }
        seed = seed * 1103515245u + 12345u;
        const char *method = methods[(seed >> 16) % 2];
        gw_match_t m;
        gw_route_result_t r = gw_routes_lookup(rt, method, strlen(method), path, o, &m);
        /* The reference: the first route of the method, in table order, that matches. */
        const gw_route_t *want = NULL;
        int other = 0;
        gw_capture_t caps[GW_MAX_CAPTURES];
        for (size_t i = 0; i < gw_routes_count(rt); i++) {
            const gw_route_t *x = gw_routes_get(rt, i);
            int match = gw_path_template_match(&x->tmpl, path, o, caps);
            if (strcmp(x->http_method, method) == 0) {
                if (match && !want)
                    want = x;
            } else if (match) {
                other = 1;
            }
        }
        if (want) {
            if (r != GW_ROUTE_FOUND || m.route != want) {
                fprintf(stderr, "%s %s: want %s, got %d %s\n", method, path, want->tmpl.text, r,
                        r == GW_ROUTE_FOUND ? m.route->tmpl.text : "-");
                CHECK(0);
            }
            found++;
        } else {
            CHECK_EQ(r, other ? GW_ROUTE_METHOD_NOT_ALLOWED : GW_ROUTE_NOT_FOUND);
            if (other)
                m405++;
            else
                m404++;
        }
    }
    fprintf(stderr, "   found %d, 405 %d, 404 %d\n", found, m405, m404);
    CHECK(found > 1000 && m405 > 0 && m404 > 1000);
    gw_routes_free(rt);
}

int main(void)
{
    RUN(test_shop_lookups);
    RUN(test_pool_conflict);
    RUN(test_precedence);
    RUN(test_conflicts_and_errors);
    RUN(test_binds_field);
    RUN(test_query);
    RUN(test_lookup_matches_linear_scan);
    fprintf(stderr, "ok\n");
    return 0;
}
