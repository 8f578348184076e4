/*
 * bench/authz/bench_authz_cache.c: what an external authorization check costs.
 *
 * Fills an HTTP-mode pol_authz_t with 1000 credentials from the real test service (each one a
 * round trip over loopback, timed), then checks the same calls again and again: every check is
 * a cache hit (a hash of the forwarded fields and a compare). Prints ns per hit and ms per
 * round trip. Numbers only; nothing is asserted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "authz_rig.h"
#include "policy/ext_authz.h"
#include "tests/check.h"

enum { USERS = 1000 };

static int done;

static void on_verdict(void *ctx, const pol_authz_result_t *r)
{
    CHECK(r->verdict == POL_AUTHZ_ALLOW);
    done = 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    CHECK(argc >= 3);
    long hits = argc > 3 ? atol(argv[3]) : 5000000;
    authz_rig_t rig;
    authz_rig_start(&rig, argv[1], argv[2]);
    uv_loop_t loop;
    uv_loop_init(&loop);
    char target[128], err[256];
    snprintf(target, sizeof(target), "http://127.0.0.1:%d/check", rig.http);
    pol_authz_config_t cfg = {.target = target,
                              .identity_header = "x-user-id",
                              .cache_ttl_ms = 3600 * 1000,
                              .cache_entries = USERS};
    pol_authz_t *a = pol_authz_new(&loop, &cfg, err, sizeof(err));
    CHECK(a);
    static char auth[USERS][64];
    for (int i = 0; i < USERS; i++)
        snprintf(auth[i], sizeof(auth[i]), "Bearer allow:user-%04d", i);
    pol_authz_field_t f[4] = {
        {":authority", 10, "svc.local", 9},
        {"content-type", 12, "application/grpc", 16},
        {"authorization", 13, NULL, 0},
        {"cookie", 6, "theme=dark; lang=en", 19},
    };
    pol_authz_req_info_t info = {
        .path = "/pkg.Svc/Method", .peer = "10.0.0.1:5000", .fields = f, .n_fields = 4};
    pol_authz_result_t res;
    pol_authz_call_t *call;
    double t0 = now_s();
    for (int i = 0; i < USERS; i++) {
        f[2].value = auth[i];
        f[2].value_len = strlen(auth[i]);
        done = 0;
        CHECK(pol_authz_check(a, &info, &res, on_verdict, NULL, &call) == POL_AUTHZ_PENDING);
        CHECK(authz_rig_run_until(&loop, &done, 20000) == 0);
    }
    double miss = (now_s() - t0) / USERS;
    t0 = now_s();
    for (long i = 0; i < hits; i++) {
        f[2].value = auth[i % USERS];
        f[2].value_len = strlen(auth[i % USERS]);
        CHECK(pol_authz_check(a, &info, &res, on_verdict, NULL, &call) == POL_AUTHZ_DONE);
    }
    double hit = (now_s() - t0) / (double)hits;
    pol_authz_stats_t st;
    pol_authz_stats(a, &st);
    printf("ext_authz HTTP check, service on loopback (Python http.server): %.3f ms per round "
           "trip (%d checks)\n",
           miss * 1e3, USERS);
    printf("ext_authz cache hit (%d credentials cached, 4 fields per call): %.0f ns per check "
           "(%ld checks, %llu hits)\n",
           USERS, hit * 1e9, hits, (unsigned long long)st.cache_hits);
    pol_authz_free(a);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return 0;
}
