/*
 * bench/jwt/bench_jwt.c: what a JWT costs in the policy chain (policy/jwt.h, jwt_cache.h).
 *
 * For each algorithm, with the tokens and keys minted by tests/unit/policy_jwt/make_vectors.py
 * (python3-jwt; RSA 2048, P-256, P-384, Ed25519, 64-byte HMAC secrets): the CPU time of one
 * full verification (what the first sighting of a token costs: base64url, JSON, signature,
 * claims), and of one verification through a warm per-worker cache (a hit: hash + compare +
 * claims copy). CPU time of this thread (CLOCK_THREAD_CPUTIME_ID), robust on a shared machine.
 * Not a test: numbers depend on the machine; docs/policy-jwt.md records them.
 *
 *   bench_jwt [vectors.json] [iterations]
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy/jwks.h"
#include "policy/jwt.h"
#include "policy/jwt_cache.h"

static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : MESHD_JWT_VECTORS;
    long iters = argc > 2 ? atol(argv[2]) : 2000;
    json_error_t jerr;
    json_t *v = json_load_file(path, 0, &jerr);
    if (!v) {
        fprintf(stderr, "%s: %s (build the jwt_vectors target first)\n", path, jerr.text);
        return 1;
    }
    int64_t now = json_integer_value(json_object_get(v, "now"));
    char *doc = json_dumps(json_object_get(json_object_get(v, "jwks"), "main"), 0);
    char err[512];
    pol_keyset_t *ks = pol_keyset_parse(doc, strlen(doc), err, sizeof(err));
    free(doc);
    if (!ks) {
        fprintf(stderr, "jwks: %s\n", err);
        return 1;
    }
    const char *iss[] = {json_string_value(json_object_get(v, "iss"))};
    const char *aud[] = {json_string_value(json_object_get(v, "aud"))};
    const char *claims[] = {"email", "groups", "tenant"};
    pol_jwt_rules_t r;
    pol_jwt_rules_init(&r);
    r.issuers = iss, r.n_issuers = 1;
    r.audiences = aud, r.n_audiences = 1;
    r.claims = claims, r.n_claims = 3;
    pol_jwt_cache_t *cache = pol_jwt_cache_new(1024, 3600);

    static const char *const names[] = {"ok HS256 hs-1",   "ok HS384 hs-1",  "ok HS512 hs-1",
                                        "ok RS256 rsa-1",  "ok RS384 rsa-1", "ok RS512 rsa-1",
                                        "ok PS256 rsa-1",  "ok PS384 rsa-1", "ok ES256 ec-256",
                                        "ok ES384 ec-384", "ok EdDSA ed-1"};
    printf("%-8s %6s %14s %14s %10s\n", "alg", "bytes", "verify ns", "cached ns", "speedup");
    for (size_t n = 0; n < sizeof(names) / sizeof(names[0]); n++) {
        json_t *cs;
        size_t i;
        const char *tok = NULL;
        size_t len = 0;
        json_array_foreach(json_object_get(v, "cases"), i, cs)
        {
            if (strcmp(json_string_value(json_object_get(cs, "name")), names[n]) == 0) {
                tok = json_string_value(json_object_get(cs, "token"));
                len = json_string_length(json_object_get(cs, "token"));
            }
        }
        if (!tok) {
            fprintf(stderr, "no case \"%s\"\n", names[n]);
            return 1;
        }
        long rounds = iters;
        pol_jwt_claims_t c;
        if (pol_jwt_verify(ks, tok, len, &r, now, &c, NULL, 0) != 0) {
            fprintf(stderr, "%s does not verify\n", names[n]);
            return 1;
        }
        uint64_t t0 = cpu_ns();
        for (long k = 0; k < rounds; k++)
            pol_jwt_verify(ks, tok, len, &r, now, &c, NULL, 0);
        double verify = (double)(cpu_ns() - t0) / (double)rounds;
        /* Cached: warm the cache, then look up many times. */
        int hit = 0;
        pol_jwt_verify_cached(cache, ks, tok, len, &r, now, &c, &hit, NULL, 0);
        long lookups = iters * 200;
        t0 = cpu_ns();
        for (long k = 0; k < lookups; k++)
            pol_jwt_verify_cached(cache, ks, tok, len, &r, now, &c, &hit, NULL, 0);
        double cached = (double)(cpu_ns() - t0) / (double)lookups;
        if (!hit) {
            fprintf(stderr, "%s: not a cache hit\n", names[n]);
            return 1;
        }
        char alg[8];
        snprintf(alg, sizeof(alg), "%.*s", (int)strcspn(names[n] + 3, " "), names[n] + 3);
        printf("%-8s %6zu %14.0f %14.1f %9.0fx\n", alg, len, verify, cached, verify / cached);
    }
    pol_jwt_cache_delete(cache);
    pol_keyset_unref(ks);
    json_decref(v);
    return 0;
}
