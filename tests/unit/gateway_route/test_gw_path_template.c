/*
 * tests/unit/gateway_route/test_gw_path_template.c: path template parsing (valid and invalid
 * templates with the error position, from googleapis' http.proto and grpc-gateway's documented
 * examples), matching with captures, percent-decoding of captures, and precedence.
 */
#include "gateway/path_template.h"

#include <stdio.h>
#include <string.h>

#include "tests/check.h"

/* ------------------------------------------------------------------------------------------
 * Parsing
 * ------------------------------------------------------------------------------------------ */

/* Valid templates and their shape: segment kinds as a string (L literal, * star, D `**`),
 * variables as "field[first,last)" joined by ' ', and the verb. */
static const struct {
    const char *tmpl, *kinds, *vars, *verb;
} valid[] = {
    {"/", "", "", NULL},
    {"/v1/messages/{message_id}", "LL*", "message_id[2,3)", NULL},
    {"/v1/{name=messages/*}", "LL*", "name[1,3)+", NULL},
    {"/v1/users/{user_id}/messages/{message_id}", "LL*L*", "user_id[2,3) message_id[4,5)", NULL},
    {"/v1/messages/{message_id}/{sub.subfield}", "LL**", "message_id[2,3) sub.subfield[3,4)", NULL},
    {"/v1/{name=shelves/*/books/*}", "LL*L*", "name[1,5)+", NULL},
    {"/v1/{name=**}", "LD", "name[1,2)+", NULL},
    {"/v1/{name=shelves/**}", "LLD", "name[1,3)+", NULL},
    {"/v1/{var=*}", "L*", "var[1,2)", NULL},
    {"/v1/{var=foo/*/bar}", "LL*L", "var[1,4)+", NULL},
    {"/v1/*/items", "L*L", "", NULL},
    {"/v1/**", "LD", "", NULL},
    {"/v1/**:watch", "LD", "", "watch"},
    {"/v1/{name=operations/**}:cancel", "LLD", "name[1,3)+", "cancel"},
    {"/v1/items:batchGet", "LL", "", "batchGet"},
    {"/v1/{book.name}", "L*", "book.name[1,2)", NULL},
    {"/v1/{a_b.c_1.d}/x", "L*L", "a_b.c_1.d[1,2)", NULL},
    {"/v1/caf%C3%A9/{x}", "LL*", "x[2,3)", NULL},
    {"/pkg.Service/Method", "LL", "", NULL},
    {"/a-b_c.d~e/!$&'()+,;=@", "LL", "", NULL},
    {"/{x=foo}", "L", "x[0,1)", NULL},
};

static void kinds_of(const gw_path_template_t *t, char *out)
{
    size_t i;
    for (i = 0; i < t->n_segs; i++)
        out[i] = "L*D"[t->segs[i].kind];
    out[i] = 0;
}

static void vars_of(const gw_path_template_t *t, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = 0;
    for (size_t i = 0; i < t->n_vars; i++)
        o += (size_t)snprintf(out + o, cap - o, "%s%s[%zu,%zu)%s", i ? " " : "", t->vars[i].field,
                              t->vars[i].first, t->vars[i].last, t->vars[i].multi ? "+" : "");
}

static void test_parse_valid(void)
{
    for (size_t i = 0; i < sizeof valid / sizeof *valid; i++) {
        gw_path_template_t t;
        gw_tmpl_error_t e;
        int rc = gw_path_template_parse(valid[i].tmpl, strlen(valid[i].tmpl), &t, &e);
        if (rc != 0) {
            fprintf(stderr, "%s: position %zu: %s\n", valid[i].tmpl, e.pos, e.msg);
            CHECK(rc == 0);
        }
        char kinds[64], vars[256];
        kinds_of(&t, kinds);
        vars_of(&t, vars, sizeof vars);
        fprintf(stderr, "   %-45s %-6s %s\n", valid[i].tmpl, kinds, vars);
        CHECK_STR(kinds, valid[i].kinds);
        CHECK_STR(vars, valid[i].vars);
        if (valid[i].verb)
            CHECK_STR(t.verb, valid[i].verb);
        else
            CHECK(t.verb == NULL);
        CHECK_STR(t.text, valid[i].tmpl);
        gw_path_template_destroy(&t);
    }
    /* Literals are stored decoded. */
    gw_path_template_t t;
    CHECK(gw_path_template_parse("/v1/caf%C3%A9", 13, &t, NULL) == 0);
    CHECK_STR(t.segs[1].lit, "caf\xc3\xa9");
    gw_path_template_destroy(&t);
}

/* Invalid templates, the error position and a word of the message. */
static const struct {
    const char *tmpl;
    size_t pos;
    const char *msg;
} invalid[] = {
    {"", 0, "start with '/'"},
    {"v1/items", 0, "start with '/'"},
    {"//", 1, "empty segment"},
    {"/v1//items", 4, "empty segment"},
    {"/v1/items/", 10, "empty segment"},
    {"/v1/{name", 4, "never closed"},
    {"/v1/{name=shelves/*", 4, "never closed"},
    {"/v1/{}", 5, "field path"},
    {"/v1/{1abc}", 5, "field path"},
    {"/v1/{a..b}", 5, "field path"},
    {"/v1/{a.}", 5, "field path"},
    {"/v1/{a=}", 7, "empty segment"},
    {"/v1/{a={b}}", 7, "cannot contain a variable"},
    {"/v1/{a}/{a}", 9, "bound twice"},
    {"/v1/**/items", 4, "'**' must be the last"},
    {"/v1/{a=**}/{b}", 7, "'**' must be the last"},
    {"/v1/{a=**/x}", 7, "'**' must be the last"},
    {"/v1/a*b", 5, "whole segment"},
    {"/v1/*b", 5, "whole segment"},
    {"/v1/***", 6, "whole segment"},
    {"/v1/items:", 10, "empty verb"},
    {"/v1/items:do/more", 12, "after the verb"},
    {"/v1/{name:x}", 5, "field path"},
    {"/v1/{a=b:c}", 8, "verb cannot be inside"},
    {"/v1/a%2", 5, "two hex digits"},
    {"/v1/a%zz", 5, "two hex digits"},
    {"/v1/a b", 5, "not allowed"},
    {"/v1/a?b", 5, "not allowed"},
    {"/v1/a#b", 5, "not allowed"},
    {"/v1/}", 4, "empty segment"},
    {"/v1/x}", 5, "'}' without '{'"},
    {"/:verb", 1, "empty segment"},
    {"/v1/{a=*}x", 9, "unexpected 'x'"},
};

static void test_parse_invalid(void)
{
    for (size_t i = 0; i < sizeof invalid / sizeof *invalid; i++) {
        gw_path_template_t t;
        gw_tmpl_error_t e;
        int rc = gw_path_template_parse(invalid[i].tmpl, strlen(invalid[i].tmpl), &t, &e);
        fprintf(stderr, "   %-22s -> %d at %zu: %s\n", invalid[i].tmpl, rc, e.pos, e.msg);
        CHECK(rc == -1);
        CHECK_EQ(e.pos, invalid[i].pos);
        CHECK_CONTAINS(e.msg, invalid[i].msg);
        CHECK(t.segs == NULL && t.vars == NULL && t.text == NULL && t.n_segs == 0);
    }
    /* Too many variables fails loudly, not silently. */
    char buf[512];
    size_t o = 0;
    for (int i = 0; i <= GW_MAX_CAPTURES; i++)
        o += (size_t)snprintf(buf + o, sizeof buf - o, "/{v%d}", i);
    gw_path_template_t t;
    gw_tmpl_error_t e;
    CHECK(gw_path_template_parse(buf, o, &t, &e) == -1);
    CHECK_CONTAINS(e.msg, "more than 16 variables");
    /* An embedded NUL byte. */
    CHECK(gw_path_template_parse("/v1/a\0b", 7, &t, &e) == -1);
    CHECK_EQ(e.pos, 5);
}

/* ------------------------------------------------------------------------------------------
 * Matching
 * ------------------------------------------------------------------------------------------ */

/* Template, path, whether it matches, and the captures (raw) as "field=value" joined by ' '. */
static const struct {
    const char *tmpl, *path;
    int match;
    const char *caps;
} matches[] = {
    {"/", "/", 1, ""},
    {"/", "/x", 0, ""},
    {"/v1/messages/{message_id}", "/v1/messages/123456", 1, "message_id=123456"},
    {"/v1/messages/{message_id}", "/v1/messages/", 0, ""},
    {"/v1/messages/{message_id}", "/v1/messages/1/2", 0, ""},
    {"/v1/messages/{message_id}", "/v1/messages", 0, ""},
    {"/v1/messages/{message_id}", "/v1/messages/a%2Fb", 1, "message_id=a%2Fb"},
    {"/v1/messages/{message_id}", "/v1/messages/1/", 0, ""},
    {"/v1/{name=messages/*}", "/v1/messages/123456", 1, "name=messages/123456"},
    {"/v1/{name=messages/*}", "/v1/other/123456", 0, ""},
    {"/v1/users/{user_id}/messages/{message_id}", "/v1/users/me/messages/123456", 1,
     "user_id=me message_id=123456"},
    {"/v1/messages/{message_id}/{sub.subfield}", "/v1/messages/123456/foo", 1,
     "message_id=123456 sub.subfield=foo"},
    {"/v1/{name=shelves/*/books/*}", "/v1/shelves/s1/books/b2", 1, "name=shelves/s1/books/b2"},
    {"/v1/{name=shelves/*/books/*}", "/v1/shelves/s1/books", 0, ""},
    {"/v1/{name=**}", "/v1/a/b/c", 1, "name=a/b/c"},
    {"/v1/{name=**}", "/v1/a", 1, "name=a"},
    {"/v1/{name=**}", "/v1", 1, "name="},
    {"/v1/{name=**}", "/v1/", 1, "name="},
    {"/v1/{name=**}", "/v2/a", 0, ""},
    {"/v1/{name=shelves/**}", "/v1/shelves/a/b", 1, "name=shelves/a/b"},
    {"/v1/{name=shelves/**}", "/v1/shelves", 1, "name=shelves"},
    {"/v1/{var=foo/*/bar}", "/v1/foo/x/bar", 1, "var=foo/x/bar"},
    {"/v1/{var=foo/*/bar}", "/v1/foo/x/baz", 0, ""},
    {"/v1/**", "/v1/anything/at/all", 1, ""},
    {"/v1/**:watch", "/v1/a/b:watch", 1, ""},
    {"/v1/**:watch", "/v1/a/b", 0, ""},
    {"/v1/{name=operations/**}:cancel", "/v1/operations/x/y:cancel", 1, "name=operations/x/y"},
    {"/v1/{name=operations/**}:cancel", "/v1/operations/x/y:cancelx", 0, ""},
    {"/v1/items:batchGet", "/v1/items:batchGet", 1, ""},
    {"/v1/items:batchGet", "/v1/items", 0, ""},
    {"/v1/items:batchGet", "/v1/items%3AbatchGet", 0, ""},
    {"/v1/{name}:cancel", "/v1/:cancel", 0, ""},
    {"/v1/{name}:cancel", "/v1/a:b:cancel", 1, "name=a:b"},
    {"/v1/{name}", "/v1/a:cancel", 1, "name=a:cancel"},
    {"/v1/items", "/v1/%69tems", 1, ""},
    {"/v1/items", "/v1/ITEMS", 0, ""},
    {"/v1/items", "/v1/items%", 0, ""},
    {"/v1/caf%C3%A9/{x}", "/v1/caf%c3%a9/1", 1, "x=1"},
    {"/v1/a%2Fb", "/v1/a%2Fb", 1, ""},
    {"/v1/a%2Fb", "/v1/a/b", 0, ""},
    {"/v1/*/items", "/v1/s/items", 1, ""},
    {"/v1/*/items", "/v1//items", 0, ""},
    {"/pkg.Service/Method", "/pkg.Service/Method", 1, ""},
    {"/pkg.Service/Method", "pkg.Service/Method", 0, ""},
    {"/pkg.Service/Method", "", 0, ""},
};

static void test_match(void)
{
    for (size_t i = 0; i < sizeof matches / sizeof *matches; i++) {
        gw_path_template_t t;
        CHECK(gw_path_template_parse(matches[i].tmpl, strlen(matches[i].tmpl), &t, NULL) == 0);
        gw_capture_t caps[GW_MAX_CAPTURES];
        memset(caps, 0, sizeof caps);
        int m = gw_path_template_match(&t, matches[i].path, strlen(matches[i].path), caps);
        char got[256];
        size_t o = 0;
        got[0] = 0;
        for (size_t v = 0; m && v < t.n_vars; v++)
            o += (size_t)snprintf(got + o, sizeof got - o, "%s%s=%.*s", v ? " " : "", caps[v].field,
                                  (int)caps[v].len, caps[v].value);
        fprintf(stderr, "   %-40s %-30s %d %s\n", matches[i].tmpl, matches[i].path, m, got);
        CHECK_EQ(m, matches[i].match);
        CHECK_STR(got, matches[i].caps);
        /* Captures point into the path itself. */
        for (size_t v = 0; m && v < t.n_vars; v++)
            CHECK(caps[v].value >= matches[i].path &&
                  caps[v].value + caps[v].len <= matches[i].path + strlen(matches[i].path));
        gw_path_template_destroy(&t);
    }
}

/* ------------------------------------------------------------------------------------------
 * Decoding captures
 * ------------------------------------------------------------------------------------------ */

static const char *dec(const char *tmpl, const char *path, gw_unescape_t mode, char *out,
                       size_t cap)
{
    gw_path_template_t t;
    CHECK(gw_path_template_parse(tmpl, strlen(tmpl), &t, NULL) == 0);
    gw_capture_t c[GW_MAX_CAPTURES];
    CHECK(gw_path_template_match(&t, path, strlen(path), c) == 1);
    ssize_t n = gw_capture_decode(&c[0], mode, out, cap);
    gw_path_template_destroy(&t);
    return n < 0 ? NULL : out;
}

static void test_decode(void)
{
    char out[128];
    /* One segment: everything decodes, "%2F" becomes part of the value. */
    CHECK_STR(dec("/v1/{id}", "/v1/a%2Fb%20c%3A", GW_UNESCAPE_DEFAULT, out, sizeof out), "a/b c:");
    CHECK_STR(dec("/v1/{id}", "/v1/caf%C3%A9", GW_UNESCAPE_DEFAULT, out, sizeof out),
              "caf\xc3\xa9");
    /* Multi-segment, default: reserved characters stay escaped as written. */
    CHECK_STR(dec("/v1/{name=**}", "/v1/a/b%2Fc%20d%3a%41", GW_UNESCAPE_DEFAULT, out, sizeof out),
              "a/b%2Fc d%3aA");
    CHECK_STR(dec("/v1/{name=x/*}", "/v1/x/%2f%3F", GW_UNESCAPE_DEFAULT, out, sizeof out),
              "x/%2f%3F");
    /* Multi-segment, all but slash. */
    CHECK_STR(
        dec("/v1/{name=**}", "/v1/a/b%2Fc%20d%3a", GW_UNESCAPE_ALL_EXCEPT_SLASH, out, sizeof out),
        "a/b%2Fc d:");
    /* Everything. */
    CHECK_STR(dec("/v1/{name=**}", "/v1/a/b%2Fc%3a", GW_UNESCAPE_ALL, out, sizeof out), "a/b/c:");
    /* '+' is not a space in paths. */
    CHECK_STR(dec("/v1/{id}", "/v1/a+b", GW_UNESCAPE_DEFAULT, out, sizeof out), "a+b");
    /* Malformed escapes and small buffers are refused. */
    CHECK(dec("/v1/{id}", "/v1/a%2", GW_UNESCAPE_DEFAULT, out, sizeof out) == NULL);
    CHECK(dec("/v1/{id}", "/v1/a%g0", GW_UNESCAPE_DEFAULT, out, sizeof out) == NULL);
    CHECK(dec("/v1/{id}", "/v1/abcd", GW_UNESCAPE_DEFAULT, out, 4) == NULL);
    CHECK_STR(dec("/v1/{id}", "/v1/abcd", GW_UNESCAPE_DEFAULT, out, 5), "abcd");
    CHECK(dec("/v1/{name=**}", "/v1/a%2F", GW_UNESCAPE_DEFAULT, out, 4) == NULL);
    CHECK_STR(dec("/v1/{name=**}", "/v1/a%2F", GW_UNESCAPE_DEFAULT, out, 5), "a%2F");
    /* Query-style decoding. */
    CHECK_EQ(gw_percent_decode("a+b%2B", 6, 1, out, sizeof out), 4);
    CHECK_STR(out, "a b+");
}

/* ------------------------------------------------------------------------------------------
 * Precedence
 * ------------------------------------------------------------------------------------------ */

static int cmp(const char *a, const char *b)
{
    gw_path_template_t ta, tb;
    CHECK(gw_path_template_parse(a, strlen(a), &ta, NULL) == 0);
    CHECK(gw_path_template_parse(b, strlen(b), &tb, NULL) == 0);
    int c = gw_path_template_compare(&ta, &tb), r = gw_path_template_compare(&tb, &ta);
    /* Antisymmetric. */
    CHECK((c < 0 && r > 0) || (c > 0 && r < 0) || (c == 0 && r == 0));
    gw_path_template_destroy(&ta);
    gw_path_template_destroy(&tb);
    return c;
}

static void test_precedence(void)
{
    /* Literal beats variable beats `**`. */
    CHECK(cmp("/v1/items/special", "/v1/items/{id}") < 0);
    CHECK(cmp("/v1/items/{id}", "/v1/{name=**}") < 0);
    CHECK(cmp("/v1/a/**", "/v1/**") < 0);
    /* Longer (more specific) before shorter `**`. */
    CHECK(cmp("/v1/*/items/**", "/v1/*/**") < 0);
    /* Exact before a `**` that would match zero segments. */
    CHECK(cmp("/v1", "/v1/**") < 0);
    /* A verb template first. */
    CHECK(cmp("/v1/{name}:cancel", "/v1/{name}") < 0);
    CHECK(cmp("/v1/**:cancel", "/v1/a") < 0);
    /* Same shapes: the same requests (whatever the variables are called). */
    CHECK(cmp("/v1/{a}", "/v1/{b}") == 0);
    CHECK(cmp("/v1/*", "/v1/{b=*}") == 0);
    CHECK(cmp("/v1/{a}/{b}", "/v1/{c=*/*}") == 0);
    CHECK(cmp("/v1/{a=**}", "/v1/**") == 0);
    CHECK(cmp("/v1/x:go", "/v1/x:go") == 0);
    CHECK(cmp("/v1/%61", "/v1/a") == 0);
    /* Different literals or verbs: disjoint, ordered but never equal. */
    CHECK(cmp("/v1/a", "/v1/b") != 0);
    CHECK(cmp("/v1/x:go", "/v1/x:stop") != 0);
    CHECK(cmp("/v1/{a}/x", "/v1/{a}/y") != 0);
}

int main(void)
{
    RUN(test_parse_valid);
    RUN(test_parse_invalid);
    RUN(test_match);
    RUN(test_decode);
    RUN(test_precedence);
    fprintf(stderr, "ok\n");
    return 0;
}
