/*
 * tests/unit/gateway_route/test_gw_http_rule.c: google.api.http decoding from bytes made by
 * protoc (an HttpRule with every field, a MethodOptions carrying the extension, and the
 * options of an annotated service in a descriptor set, as reflection serves them), protobuf
 * merging of repeated occurrences, and malformed bytes.
 */
#include "gateway/http_rule.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/file_read.h"
#include "grpc/descriptors.h"
#include "tests/check.h"

static uint8_t *read_file(const char *name, size_t *len)
{
    char path[1024], err[1200];
    snprintf(path, sizeof path, "%s/%s", GW_TESTDATA, name);
    uint8_t *buf = (uint8_t *)mesh_file_read(path, 16u << 20, 0, len, err, sizeof err);
    if (!buf)
        fprintf(stderr, "%s\n", err);
    CHECK(buf);
    return buf;
}

/* ------------------------------------------------------------------------------------------
 * A tiny wire writer for hand-made cases.
 * ------------------------------------------------------------------------------------------ */

typedef struct {
    uint8_t b[4096];
    size_t n;
} wbuf_t;

static void w_varint(wbuf_t *w, uint64_t v)
{
    do {
        uint8_t c = v & 0x7f;
        v >>= 7;
        w->b[w->n++] = c | (v ? 0x80 : 0);
    } while (v);
}

static void w_key(wbuf_t *w, uint64_t field, unsigned wt)
{
    w_varint(w, field << 3 | wt);
}

static void w_bytes(wbuf_t *w, uint64_t field, const void *d, size_t n)
{
    w_key(w, field, 2);
    w_varint(w, n);
    memcpy(w->b + w->n, d, n);
    w->n += n;
}

static void w_str(wbuf_t *w, uint64_t field, const char *s)
{
    w_bytes(w, field, s, strlen(s));
}

/* ------------------------------------------------------------------------------------------ */

static void check_rule(const gw_http_rule_t *r, const char *method, const char *path,
                       const char *body, const char *response_body, size_t n_bindings)
{
    CHECK_STR(r->method, method);
    CHECK_STR(r->path, path);
    if (body)
        CHECK_STR(r->body, body);
    else
        CHECK(r->body == NULL);
    if (response_body)
        CHECK_STR(r->response_body, response_body);
    else
        CHECK(r->response_body == NULL);
    CHECK_EQ(r->n_bindings, n_bindings);
}

static void test_rule_from_protoc(void)
{
    size_t n;
    uint8_t *b = read_file("http_rule.bin", &n);
    gw_http_rule_t r = {0};
    char err[256] = "";
    CHECK_EQ(gw_http_rule_decode(b, n, &r, err, sizeof err), 0);
    CHECK_STR(r.selector, "shop.v1.Shop.UpdateItem");
    check_rule(&r, "PUT", "/v1/shelves/{shelf}/items/{item_id}", "item", "title", 3);
    check_rule(&r.bindings[0], "PATCH", "/v1/items/{item_id}", "*", NULL, 0);
    check_rule(&r.bindings[1], "OPTIONS", "/v1/items", NULL, NULL, 0);
    check_rule(&r.bindings[2], "GET", "/v2/items/{item_id}", NULL, NULL, 0);
    CHECK_STR(r.bindings[2].selector, "ignored");
    gw_http_rule_clear(&r);
    CHECK(r.method == NULL && r.bindings == NULL);
    gw_http_rule_clear(&r); /* twice is fine */

    /* Every strict prefix either decodes to a shorter rule or fails cleanly. */
    for (size_t cut = 0; cut < n; cut++) {
        gw_http_rule_t p = {0};
        int rc = gw_http_rule_decode(b, cut, &p, err, sizeof err);
        CHECK(rc == 0 || rc == -1);
        gw_http_rule_clear(&p);
    }
    free(b);
}

static void check_options_rule(const gw_http_rule_t *r)
{
    check_rule(r, "DELETE", "/v1/{name=items/*}", NULL, "name", 1);
    check_rule(&r->bindings[0], "PURGE", "/v1/{name=items/*}:purge", NULL, NULL, 0);
}

static void test_options_bytes(void)
{
    size_t n;
    uint8_t *b = read_file("method_options.bin", &n);
    gw_http_rule_t r;
    char err[256] = "";
    CHECK_EQ(gw_http_rule_from_options_bytes(b, n, &r, err, sizeof err), 1);
    check_options_rule(&r);
    gw_http_rule_clear(&r);

    /* The same bytes parsed by protobuf-c: the option is an unknown field. */
    Google__Protobuf__MethodOptions *mo = google__protobuf__method_options__unpack(NULL, n, b);
    CHECK(mo != NULL);
    CHECK(mo->has_deprecated && mo->deprecated);
    CHECK(mo->base.n_unknown_fields == 1);
    CHECK_EQ(gw_http_rule_from_options(mo, &r, err, sizeof err), 1);
    check_options_rule(&r);
    gw_http_rule_clear(&r);
    /* And packed again by protobuf-c (unknown fields are kept). */
    size_t pn = google__protobuf__method_options__get_packed_size(mo);
    uint8_t *pb = malloc(pn);
    CHECK(google__protobuf__method_options__pack(mo, pb) == pn);
    CHECK_EQ(gw_http_rule_from_options_bytes(pb, pn, &r, err, sizeof err), 1);
    check_options_rule(&r);
    gw_http_rule_clear(&r);
    free(pb);
    google__protobuf__method_options__free_unpacked(mo, NULL);

    /* Truncations never crash; cuts inside the extension are errors. */
    int errors = 0;
    for (size_t cut = 0; cut < n; cut++) {
        int rc = gw_http_rule_from_options_bytes(b, cut, &r, err, sizeof err);
        CHECK(rc >= -1 && rc <= 1);
        if (rc < 0)
            errors++;
        CHECK(rc != -1 || (r.method == NULL && r.bindings == NULL && err[0]));
        gw_http_rule_clear(&r);
    }
    CHECK(errors > 0);
    free(b);

    /* Absent, and NULL options. */
    wbuf_t w = {.n = 0};
    w_key(&w, 33, 0); /* deprecated */
    w_varint(&w, 1);
    CHECK_EQ(gw_http_rule_from_options_bytes(w.b, w.n, &r, err, sizeof err), 0);
    CHECK(r.method == NULL);
    CHECK_EQ(gw_http_rule_from_options_bytes(NULL, 0, &r, err, sizeof err), 0);
    CHECK_EQ(gw_http_rule_from_options(NULL, &r, err, sizeof err), 0);
}

/* Options as a server's reflection serves them: the descriptor set made by protoc. */
static void test_descriptor_set(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/shop_set.pb", GW_TESTDATA);
    mesh_desc_pool_t *p = mesh_desc_pool_new();
    CHECK(mesh_desc_pool_load_set_file(p, path) > 0);
    CHECK(mesh_desc_pool_build(p, NULL, 0) == 0);
    char err[256] = "";
    gw_http_rule_t r;

    const mesh_desc_method_t *m = mesh_desc_pool_find_method(p, "/shop.v1.Shop/GetItem");
    CHECK(m && m->proto->options);
    CHECK_EQ(gw_http_rule_from_options(m->proto->options, &r, err, sizeof err), 1);
    check_rule(&r, "GET", "/v1/{name=shelves/*/items/*}", NULL, NULL, 2);
    check_rule(&r.bindings[0], "GET", "/v1/items/{name}", NULL, NULL, 0);
    check_rule(&r.bindings[1], "GET", "/v1/{name=archive/**}", NULL, NULL, 0);
    gw_http_rule_clear(&r);

    m = mesh_desc_pool_find_method(p, "/shop.v1.Shop/ListItems");
    CHECK_EQ(gw_http_rule_from_options(m->proto->options, &r, err, sizeof err), 1);
    check_rule(&r, "GET", "/v1/{parent=shelves/*}/items", NULL, "items", 0);
    gw_http_rule_clear(&r);

    m = mesh_desc_pool_find_method(p, "/shop.v1.Shop/HeadItem");
    CHECK_EQ(gw_http_rule_from_options(m->proto->options, &r, err, sizeof err), 1);
    check_rule(&r, "HEAD", "/v1/items/{name}", NULL, NULL, 0);
    gw_http_rule_clear(&r);

    m = mesh_desc_pool_find_method(p, "/shop.v1.Shop/Ping");
    CHECK(m != NULL);
    CHECK_EQ(gw_http_rule_from_options(m->proto->options, &r, err, sizeof err), 0);
    mesh_desc_pool_free(p);
}

/* Two occurrences of the extension merge like protobuf messages. */
static void test_merge(void)
{
    wbuf_t a = {.n = 0}, b = {.n = 0}, o = {.n = 0};
    w_str(&a, 2, "/a");
    w_str(&a, 7, "x");
    wbuf_t bind = {.n = 0};
    w_str(&bind, 3, "/a/put");
    w_bytes(&a, 11, bind.b, bind.n);
    w_str(&b, 4, "/b");
    w_bytes(&b, 11, bind.b, bind.n);
    w_bytes(&o, GW_HTTP_RULE_EXTENSION, a.b, a.n);
    w_key(&o, 34, 0); /* idempotency_level in between */
    w_varint(&o, 1);
    w_bytes(&o, GW_HTTP_RULE_EXTENSION, b.b, b.n);
    gw_http_rule_t r;
    char err[256];
    CHECK_EQ(gw_http_rule_from_options_bytes(o.b, o.n, &r, err, sizeof err), 1);
    check_rule(&r, "POST", "/b", "x", NULL, 2);
    check_rule(&r.bindings[1], "PUT", "/a/put", NULL, NULL, 0);
    gw_http_rule_clear(&r);

    /* A custom pattern after get replaces it; an empty custom is an empty kind and path. */
    wbuf_t c = {.n = 0};
    w_str(&c, 2, "/x");
    w_bytes(&c, 8, "", 0);
    r = (gw_http_rule_t){0};
    CHECK_EQ(gw_http_rule_decode(c.b, c.n, &r, err, sizeof err), 0);
    CHECK_STR(r.method, "");
    CHECK_STR(r.path, "");
    gw_http_rule_clear(&r);
}

/* Unknown fields of every wire type are skipped. */
static void test_unknown_fields(void)
{
    wbuf_t w = {.n = 0};
    w_key(&w, 100, 0);
    w_varint(&w, 123456789);
    w_key(&w, 101, 1);
    memset(w.b + w.n, 0xab, 8);
    w.n += 8;
    w_key(&w, 102, 5);
    memset(w.b + w.n, 0xcd, 4);
    w.n += 4;
    w_str(&w, 103, "ignored");
    w_key(&w, 104, 3); /* group with a nested group and a varint */
    w_key(&w, 1, 0);
    w_varint(&w, 5);
    w_key(&w, 2, 3);
    w_key(&w, 2, 4);
    w_key(&w, 104, 4);
    w_str(&w, 2, "/v1/x");
    gw_http_rule_t r = {0};
    char err[256] = "";
    CHECK_EQ(gw_http_rule_decode(w.b, w.n, &r, err, sizeof err), 0);
    check_rule(&r, "GET", "/v1/x", NULL, NULL, 0);
    gw_http_rule_clear(&r);
}

static void expect_error(const wbuf_t *w, const char *msg)
{
    gw_http_rule_t r = {0};
    char err[256] = "";
    int rc = gw_http_rule_decode(w->b, w->n, &r, err, sizeof err);
    fprintf(stderr, "   -> %d: %s\n", rc, err);
    CHECK_EQ(rc, -1);
    CHECK_CONTAINS(err, msg);
    gw_http_rule_clear(&r);
}

static void test_errors(void)
{
    wbuf_t w = {.n = 0};
    w_key(&w, 2, 0); /* get as a varint */
    w_varint(&w, 1);
    expect_error(&w, "wire type 0");

    w.n = 0;
    wbuf_t inner = {.n = 0}, mid = {.n = 0};
    w_str(&inner, 2, "/deep");
    w_bytes(&mid, 11, inner.b, inner.n);
    w_bytes(&w, 11, mid.b, mid.n);
    expect_error(&w, "additional_bindings inside additional_bindings");

    w.n = 0;
    w_bytes(&w, 2, "/v1/a\0b", 7);
    expect_error(&w, "NUL");

    w.n = 0;
    w_key(&w, 0, 2);
    w_varint(&w, 0);
    expect_error(&w, "field number 0");

    w.n = 0;
    w_key(&w, 2, 2);
    w_varint(&w, 50); /* but nothing follows */
    expect_error(&w, "runs past the end");

    w.n = 0;
    w_key(&w, 2, 2);
    for (int i = 0; i < 11; i++)
        w.b[w.n++] = 0xff;
    expect_error(&w, "varint");

    w.n = 0;
    w_key(&w, 9, 4); /* end-group without a start */
    expect_error(&w, "without a start");

    w.n = 0;
    w_key(&w, 9, 3);
    w_key(&w, 10, 4); /* mismatched end */
    expect_error(&w, "ended by end-group 10");

    w.n = 0;
    for (int i = 0; i < 40; i++)
        w_key(&w, 9, 3);
    expect_error(&w, "nested deeper");

    w.n = 0;
    w_key(&w, 9, 7);
    expect_error(&w, "invalid wire type 7");

    w.n = 0;
    wbuf_t cu = {.n = 0};
    w_key(&cu, 1, 0);
    w_varint(&cu, 3);
    w_bytes(&w, 8, cu.b, cu.n);
    expect_error(&w, "CustomHttpPattern field 1 has wire type 0");

    /* The extension with the wrong wire type in MethodOptions. */
    w.n = 0;
    w_key(&w, GW_HTTP_RULE_EXTENSION, 0);
    w_varint(&w, 1);
    gw_http_rule_t r;
    char err[256] = "";
    CHECK_EQ(gw_http_rule_from_options_bytes(w.b, w.n, &r, err, sizeof err), -1);
    CHECK_CONTAINS(err, "google.api.http has wire type 0");
}

int main(void)
{
    RUN(test_rule_from_protoc);
    RUN(test_options_bytes);
    RUN(test_descriptor_set);
    RUN(test_merge);
    RUN(test_unknown_fields);
    RUN(test_errors);
    fprintf(stderr, "ok\n");
    return 0;
}
