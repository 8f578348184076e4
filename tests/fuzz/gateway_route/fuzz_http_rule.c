/*
 * tests/fuzz/gateway_route/fuzz_http_rule.c: libFuzzer harness over gateway/http_rule (and the
 * route table fed with what it decodes).
 *
 * Any bytes are decoded as an HttpRule and as a serialized MethodOptions: either a rule or a
 * clean error, never a crash or a leak. When protobuf-c also accepts the bytes as
 * MethodOptions, reading the option from its unknown fields must give exactly the same rule
 * (a differential check of the two entry points). Decoded rules are added to a route table.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/http_routes.h"

static int str_same(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

static int rule_same(const gw_http_rule_t *a, const gw_http_rule_t *b)
{
    if (!str_same(a->selector, b->selector) || !str_same(a->method, b->method) ||
        !str_same(a->path, b->path) || !str_same(a->body, b->body) ||
        !str_same(a->response_body, b->response_body) || a->n_bindings != b->n_bindings)
        return 0;
    for (size_t i = 0; i < a->n_bindings; i++)
        if (!rule_same(&a->bindings[i], &b->bindings[i]))
            return 0;
    return 1;
}

static void route(const gw_http_rule_t *r)
{
    gw_routes_t *rt = gw_routes_new();
    if (gw_routes_add_rule(rt, "/fuzz.S/M", r) < 0 && !gw_routes_error(rt)[0])
        abort();
    gw_match_t m;
    if (r->path && r->method)
        (void)gw_routes_lookup(rt, r->method, strlen(r->method), r->path, strlen(r->path), &m);
    gw_routes_free(rt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    gw_http_rule_t r = {0};
    err[0] = 0;
    if (gw_http_rule_decode(data, size, &r, err, sizeof err) < 0) {
        if (!err[0])
            abort();
    } else {
        route(&r);
    }
    gw_http_rule_clear(&r);

    gw_http_rule_t a, b;
    err[0] = 0;
    int ra = gw_http_rule_from_options_bytes(data, size, &a, err, sizeof err);
    if (ra < 0 && !err[0])
        abort();
    Google__Protobuf__MethodOptions *mo =
        google__protobuf__method_options__unpack(NULL, size, data);
    if (mo) {
        int rb = gw_http_rule_from_options(mo, &b, err, sizeof err);
        if (ra >= 0 && rb >= 0) {
            if (ra != rb || !rule_same(&a, &b))
                abort();
        }
        gw_http_rule_clear(&b);
        google__protobuf__method_options__free_unpacked(mo, NULL);
    }
    if (ra == 1)
        route(&a);
    gw_http_rule_clear(&a);
    return 0;
}
