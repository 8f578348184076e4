/*
 * bench/gateway_route/bench_gw_routes.c: what one route lookup costs.
 *
 * Builds tables of S services with 10 methods each: every method has its default
 * `POST /bench.vN.SvcN/MethodM` route, and every service five REST routes
 * (GET /vN/{name=projects/STAR/items/STAR}, GET /vN/projects/{p}/items, POST .../items,
 * PATCH /vN/{item.name=projects/STAR/items/STAR} and POST
 * /vN/{name=projects/STAR/items/STAR}:cancel, where STAR is `*`). Then looks up, round robin over
 * every service, a default route, a REST GET with a multi-segment capture, a verb route, and a miss
 * (404). Prints CPU ns per lookup (CLOCK_PROCESS_CPUTIME_ID). Not a test: numbers depend on the
 * machine; docs/gateway-routes.md records them.
 *
 *   bench_gw_routes [lookups]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway/http_routes.h"

static double cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void add(gw_routes_t *rt, const char *m, const char *t, const char *g, const char *body)
{
    if (gw_routes_add(rt, m, t, g, body, NULL) < 0) {
        fprintf(stderr, "%s\n", gw_routes_error(rt));
        exit(1);
    }
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 2000000;
    static const int sizes[] = {1, 10, 100};
    printf("%-9s %-7s %-40s %10s\n", "services", "routes", "lookup", "cpu ns");
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
        int S = sizes[si];
        gw_routes_t *rt = gw_routes_new();
        char t[256], g[256];
        for (int s = 0; s < S; s++) {
            for (int m = 0; m < 10; m++) {
                snprintf(g, sizeof g, "/bench.v%d.Svc%d/Method%d", s, s, m);
                add(rt, "POST", g, g, "*");
            }
            snprintf(g, sizeof g, "/bench.v%d.Svc%d/Method0", s, s);
            snprintf(t, sizeof t, "/v%d/{name=projects/*/items/*}", s);
            add(rt, "GET", t, g, NULL);
            snprintf(t, sizeof t, "/v%d/projects/{p}/items", s);
            add(rt, "GET", t, g, NULL);
            add(rt, "POST", t, g, "*");
            snprintf(t, sizeof t, "/v%d/{item.name=projects/*/items/*}", s);
            add(rt, "PATCH", t, g, "item");
            snprintf(t, sizeof t, "/v%d/{name=projects/*/items/*}:cancel", s);
            add(rt, "POST", t, g, "*");
        }
        /* Request targets, one per service. */
        char(*def)[64] = malloc((size_t)S * sizeof *def);
        char(*rest)[64] = malloc((size_t)S * sizeof *rest);
        char(*verb)[64] = malloc((size_t)S * sizeof *verb);
        char(*miss)[64] = malloc((size_t)S * sizeof *miss);
        for (int s = 0; s < S; s++) {
            snprintf(def[s], 64, "/bench.v%d.Svc%d/Method%d", s, s, 7 % 10);
            snprintf(rest[s], 64, "/v%d/projects/p1/items/i2?view=full", s);
            snprintf(verb[s], 64, "/v%d/projects/p1/items/i2:cancel", s);
            snprintf(miss[s], 64, "/v%d/nothing/here", s);
        }
        struct {
            const char *name, *method;
            char (*targets)[64];
            gw_route_result_t want;
        } kinds[] = {
            {"POST /pkg.Svc/Method (default)", "POST", def, GW_ROUTE_FOUND},
            {"GET /vN/{name=projects/*/items/*}", "GET", rest, GW_ROUTE_FOUND},
            {"POST /vN/{name=...}:cancel", "POST", verb, GW_ROUTE_FOUND},
            {"GET miss (404)", "GET", miss, GW_ROUTE_NOT_FOUND},
        };
        for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
            gw_match_t m;
            size_t ml = strlen(kinds[k].method);
            long iters = kinds[k].want == GW_ROUTE_NOT_FOUND ? n / 10 : n;
            double t0 = cpu_ns();
            for (long i = 0; i < iters; i++) {
                const char *tg = kinds[k].targets[i % S];
                if (gw_routes_lookup(rt, kinds[k].method, ml, tg, strlen(tg), &m) !=
                    kinds[k].want) {
                    fprintf(stderr, "unexpected result for %s\n", tg);
                    return 1;
                }
            }
            double t1 = cpu_ns();
            printf("%-9d %-7zu %-40s %10.1f\n", S, gw_routes_count(rt), kinds[k].name,
                   (t1 - t0) / (double)iters);
        }
        free(def);
        free(rest);
        free(verb);
        free(miss);
        gw_routes_free(rt);
    }
    return 0;
}
