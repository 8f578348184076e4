/*
 * tests/fuzz/gateway_route/fuzz_http_routes.c: libFuzzer harness over the route table's lookup
 * (gateway/http_routes.h), checked against the plain definition.
 *
 * The input is lines: "G<template>" or "P<template>" adds a GET or POST route (bad templates and
 * conflicts are refused, as they must be with an error), ">G<path>" or ">P<path>" looks a
 * request up. Every lookup must give exactly what trying every route of the table in order
 * gives: the first route of the method whose template matches (with its captures), else 405
 * when a route of the other method matches, else 404. This checks the grouped binary search
 * (literal ordering of escaped segments, segment counts, verbs) on arbitrary templates.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/http_routes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gw_routes_t *rt = gw_routes_new();
    const char *p = (const char *)data, *end = p + size;
    char line[1024];
    int routes = 0, lookups = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl ? nl : end) - p);
        if (n >= sizeof line)
            n = sizeof line - 1;
        memcpy(line, p, n);
        line[n] = 0;
        p = nl ? nl + 1 : end;
        if (n < 2 || memchr(line, 0, n))
            continue;
        if (line[0] != '>') {
            if (routes++ >= 64)
                continue;
            const char *method = line[0] == 'G' ? "GET" : "POST";
            char grpc[32];
            snprintf(grpc, sizeof grpc, "/f.S/M%d", routes);
            if (gw_routes_add(rt, method, line + 1, grpc, NULL, NULL) < 0 &&
                !gw_routes_error(rt)[0])
                abort();
            continue;
        }
        if (lookups++ >= 64)
            continue;
        const char *method = line[1] == 'G' ? "GET" : "POST";
        const char *path = line + 2;
        size_t plen = n - 2;
        gw_match_t m;
        gw_route_result_t r = gw_routes_lookup(rt, method, strlen(method), path, plen, &m);
        const char *q = memchr(path, '?', plen);
        size_t path_only = q ? (size_t)(q - path) : plen;
        const gw_route_t *want = NULL;
        int other = 0;
        gw_capture_t caps[GW_MAX_CAPTURES];
        for (size_t i = 0; i < gw_routes_count(rt); i++) {
            const gw_route_t *x = gw_routes_get(rt, i);
            gw_capture_t c[GW_MAX_CAPTURES];
            int match = gw_path_template_match(&x->tmpl, path, path_only, c);
            if (strcmp(x->http_method, method) == 0) {
                if (match && !want) {
                    want = x;
                    memcpy(caps, c, sizeof caps);
                }
            } else if (match) {
                other = 1;
            }
        }
        if (want) {
            if (r != GW_ROUTE_FOUND || m.route != want || m.n_captures != want->tmpl.n_vars) {
                fprintf(stderr, "%s %s: want %s, got %d %s\n", method, path, want->tmpl.text, r,
                        r == GW_ROUTE_FOUND ? m.route->tmpl.text : "-");
                abort();
            }
            for (size_t v = 0; v < m.n_captures; v++)
                if (m.captures[v].value != caps[v].value || m.captures[v].len != caps[v].len)
                    abort();
        } else if (r != (other ? GW_ROUTE_METHOD_NOT_ALLOWED : GW_ROUTE_NOT_FOUND)) {
            fprintf(stderr, "%s %s: want %s, got %d\n", method, path, other ? "405" : "404", r);
            abort();
        }
    }
    gw_routes_free(rt);
    return 0;
}
