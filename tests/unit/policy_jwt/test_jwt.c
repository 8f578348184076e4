/*
 * tests/unit/policy_jwt/test_jwt.c: JWT verification against tokens minted by python3-jwt.
 *
 * argv[1] is the vectors file written by make_vectors.py (keys, JWKS documents and tokens with
 * their expected outcome, from an independent implementation). Every case is verified directly
 * and through a token cache (a miss, then a hit) and must give the exact expected reason, and
 * for good tokens the expected sub, iss, exp and forwarded claims. Then: strict base64url, bad
 * and partly bad JWKS documents, key set reference counting and generations, the rules check,
 * the cache (hits return the same claims, expiry at exp + skew and at the max TTL, key set and
 * rules generations, CLOCK eviction when full, near-identical tokens never hit), and one key set
 * shared by four verifying threads.
 */
#include "policy/b64url.h"
#include "policy/jwks.h"
#include "policy/jwt.h"
#include "policy/jwt_cache.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "tests/check.h"

/* Allocations by meshd's own code (the test links with --wrap=malloc,calloc,realloc, which
 * redirects calls from the static meshd_lib and this file, not from shared libraries). */
static __thread long allocations;
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n)
{
    allocations++;
    return __real_malloc(n);
}
void *__wrap_calloc(size_t n, size_t m)
{
    allocations++;
    return __real_calloc(n, m);
}
void *__wrap_realloc(void *p, size_t n)
{
    allocations++;
    return __real_realloc(p, n);
}

static json_t *vectors;
static int64_t now;
static pol_keyset_t *ks_main, *ks_nokid;

/* Default rules of the vectors: issuer, audience, skew, forwarded claims. */
static const char *def_iss[1], *def_aud[1], *def_claims[3];

static void rules_default(pol_jwt_rules_t *r)
{
    pol_jwt_rules_init(r);
    def_iss[0] = json_string_value(json_object_get(vectors, "iss"));
    def_aud[0] = json_string_value(json_object_get(vectors, "aud"));
    json_t *cl = json_object_get(vectors, "claims");
    for (size_t i = 0; i < 3; i++)
        def_claims[i] = json_string_value(json_array_get(cl, i));
    r->issuers = def_iss, r->n_issuers = 1;
    r->audiences = def_aud, r->n_audiences = 1;
    r->claims = def_claims, r->n_claims = 3;
    r->skew_s = json_integer_value(json_object_get(vectors, "skew"));
}

/* Rules of one case: the defaults with its overrides; list strings point into the vectors. */
typedef struct {
    pol_jwt_rules_t r;
    const char *iss[8], *aud[8];
} case_rules_t;

static void rules_for(json_t *over, case_rules_t *cr)
{
    rules_default(&cr->r);
    json_t *v;
    size_t i;
    if ((v = json_object_get(over, "algs"))) {
        cr->r.algs = 0;
        json_t *a;
        json_array_foreach(v, i, a)
        {
            pol_jwt_alg_t alg = pol_jwt_alg_from_name(json_string_value(a), json_string_length(a));
            CHECK(alg != POL_JWT_ALG_NONE);
            cr->r.algs |= POL_JWT_ALG_BIT(alg);
        }
    }
    if ((v = json_object_get(over, "issuers"))) {
        CHECK(json_array_size(v) <= 8);
        for (i = 0; i < json_array_size(v); i++)
            cr->iss[i] = json_string_value(json_array_get(v, i));
        cr->r.issuers = cr->iss, cr->r.n_issuers = json_array_size(v);
    }
    if ((v = json_object_get(over, "audiences"))) {
        CHECK(json_array_size(v) <= 8);
        for (i = 0; i < json_array_size(v); i++)
            cr->aud[i] = json_string_value(json_array_get(v, i));
        cr->r.audiences = cr->aud, cr->r.n_audiences = json_array_size(v);
    }
    if ((v = json_object_get(over, "skew")))
        cr->r.skew_s = json_integer_value(v);
    if ((v = json_object_get(over, "require_exp")))
        cr->r.require_exp = json_is_true(v);
    if ((v = json_object_get(over, "max_len")))
        cr->r.max_len = (size_t)json_integer_value(v);
    char err[200];
    CHECK(pol_jwt_rules_check(&cr->r, err, sizeof(err)) == 0);
}

static pol_keyset_t *parse_jwks(const char *name, char *err, size_t errlen)
{
    char *doc = json_dumps(json_object_get(json_object_get(vectors, "jwks"), name), 0);
    CHECK(doc);
    pol_keyset_t *ks = pol_keyset_parse(doc, strlen(doc), err, errlen);
    free(doc);
    return ks;
}

/* Checks claims c against what case cs expects. */
static void check_claims(json_t *cs, const pol_jwt_claims_t *c, const char *name)
{
    json_t *sub = json_object_get(cs, "sub"), *iss = json_object_get(cs, "iss");
    json_t *exp = json_object_get(cs, "exp"), *extra = json_object_get(cs, "extra");
    if (json_is_string(sub))
        CHECK_STR(pol_jwt_claims_sub(c), json_string_value(sub));
    else
        CHECK(pol_jwt_claims_sub(c) == NULL);
    CHECK_STR(pol_jwt_claims_iss(c), json_string_value(iss));
    if (json_is_integer(exp)) {
        CHECK(c->has_exp);
        CHECK_EQ(c->exp, json_integer_value(exp));
    } else {
        CHECK(!c->has_exp);
    }
    CHECK_EQ(c->n_extra, json_array_size(extra));
    for (size_t i = 0; i < json_array_size(extra); i++) {
        json_t *want = json_array_get(extra, i);
        if (json_is_string(want)) {
            CHECK_STR(pol_jwt_claims_extra(c, i), json_string_value(want));
        } else if (pol_jwt_claims_extra(c, i) != NULL) {
            fprintf(stderr, "%s: claim %zu should be absent\n", name, i);
            exit(1);
        }
    }
}

/* ---- the python3-jwt vectors ------------------------------------------------------------ */

/* The vectors' key sets by name, parsed once. */
static struct {
    const char *name;
    pol_keyset_t *ks;
} sets[8];

static pol_keyset_t *keyset_named(const char *name)
{
    size_t i = 0;
    for (; i < 8 && sets[i].name; i++)
        if (strcmp(sets[i].name, name) == 0)
            return sets[i].ks;
    CHECK(i < 8);
    char err[1024];
    sets[i].name = name;
    sets[i].ks = parse_jwks(name, err, sizeof(err));
    CHECK(sets[i].ks);
    CHECK_STR(err, "");
    return sets[i].ks;
}

static void test_vectors(void)
{
    json_t *cases = json_object_get(vectors, "cases"), *cs;
    size_t i;
    pol_jwt_cache_t *cache = pol_jwt_cache_new(256, 3600);
    CHECK(cache);
    int ok = 0, rejected = 0;
    json_array_foreach(cases, i, cs)
    {
        const char *name = json_string_value(json_object_get(cs, "name"));
        const char *token = json_string_value(json_object_get(cs, "token"));
        size_t len = json_string_length(json_object_get(cs, "token"));
        const char *expect = json_string_value(json_object_get(cs, "expect"));
        const char *set = json_string_value(json_object_get(cs, "jwks"));
        pol_keyset_t *ks = keyset_named(set);
        case_rules_t cr;
        rules_for(json_object_get(cs, "rules"), &cr);

        pol_jwt_claims_t c;
        char reason[64];
        memset(&c, 0xAB, sizeof(c));
        int rc = pol_jwt_verify(ks, token, len, &cr.r, now, &c, reason, sizeof(reason));
        if (strcmp(reason, expect) != 0) {
            fprintf(stderr, "case \"%s\": expected \"%s\", got \"%s\" (%d)\n", name, expect, reason,
                    rc);
            exit(1);
        }
        CHECK_STR(pol_jwt_reason(rc), reason);
        CHECK((rc == 0) == (strcmp(expect, "ok") == 0));
        if (rc == 0) {
            check_claims(cs, &c, name);
            ok++;
        } else {
            rejected++;
        }

        /* Through the cache: the same answer twice; the second time from the cache if good. */
        for (int round = 0; round < 2; round++) {
            pol_jwt_claims_t cc;
            int hit = -1;
            char r2[64];
            int rc2 =
                pol_jwt_verify_cached(cache, ks, token, len, &cr.r, now, &cc, &hit, r2, sizeof(r2));
            CHECK_EQ(rc2, rc);
            CHECK_STR(r2, reason);
            CHECK_EQ(hit, rc == 0 && round == 1);
            if (rc == 0)
                check_claims(cs, &cc, name);
        }
    }
    fprintf(stderr, "   %d good and %d rejected tokens as expected\n", ok, rejected);
    for (size_t k = 0; k < 8 && sets[k].name; k++)
        pol_keyset_unref(sets[k].ks);
    CHECK(ok >= 20 && rejected >= 60);
    pol_jwt_cache_delete(cache);
}

/* ---- base64url ------------------------------------------------------------------------ */

static void test_b64url(void)
{
    unsigned char out[16];
    CHECK_EQ(pol_b64url_decode("", 0, out, sizeof(out)), 0);
    CHECK_EQ(pol_b64url_decode("AQAB", 4, out, sizeof(out)), 3);
    CHECK(out[0] == 1 && out[1] == 0 && out[2] == 1);
    CHECK_EQ(pol_b64url_decode("_-8", 3, out, sizeof(out)), 2);
    CHECK(out[0] == 0xFF && out[1] == 0xEF);
    CHECK_EQ(pol_b64url_decode("YQ", 2, out, sizeof(out)), 1); /* "a" */
    CHECK(out[0] == 'a');
    CHECK_EQ(pol_b64url_decode("YR", 2, out, sizeof(out)), -1);   /* trailing bits set */
    CHECK_EQ(pol_b64url_decode("YQ==", 4, out, sizeof(out)), -1); /* padding */
    CHECK_EQ(pol_b64url_decode("Y", 1, out, sizeof(out)), -1);    /* 1 mod 4 */
    CHECK_EQ(pol_b64url_decode("a+/b", 4, out, sizeof(out)), -1); /* standard alphabet */
    CHECK_EQ(pol_b64url_decode("AQ\nB", 4, out, sizeof(out)), -1);
    CHECK_EQ(pol_b64url_decode("AAAAAAAA", 8, out, 5), -1); /* does not fit */
    CHECK_EQ(pol_b64url_decode("AAAAAAAA", 8, out, 6), 6);
}

/* ---- key sets ------------------------------------------------------------------------- */

static void test_keyset_mixed(void)
{
    char err[1024];
    pol_keyset_t *ks = parse_jwks("mixed", err, sizeof(err));
    CHECK(ks);
    json_t *want = json_object_get(vectors, "mixed_expect");
    CHECK_EQ(pol_keyset_count(ks), json_integer_value(json_object_get(want, "keys")));
    CHECK_EQ(pol_keyset_skipped(ks), json_integer_value(json_object_get(want, "skipped")));
    json_t *m;
    size_t i;
    json_array_foreach(json_object_get(want, "mentions"), i, m)
    {
        char kid[80];
        snprintf(kid, sizeof(kid), "(kid \"%s\")", json_string_value(m));
        CHECK_CONTAINS(err, kid);
    }
    CHECK_CONTAINS(err, "too small");
    CHECK_CONTAINS(err, "not on curve");
    CHECK_CONTAINS(err, "too short");
    CHECK_CONTAINS(err, "unsupported kty \"foo\"");
    CHECK_STR(pol_keyset_key(ks, 0)->kid, "good-rsa");
    CHECK_EQ(pol_keyset_key(ks, 0)->kty, POL_KTY_RSA);
    CHECK_STR(pol_keyset_key(ks, 1)->kid, "good-hs");
    CHECK_EQ(pol_keyset_key(ks, 1)->kty, POL_KTY_OCT);
    pol_keyset_unref(ks);

    /* The main set: the use=enc key is left out quietly (ec-short, whose x is 31 bytes, is in). */
    ks = parse_jwks("main", err, sizeof(err));
    CHECK(ks);
    CHECK_STR(err, "");
    CHECK_EQ(pol_keyset_count(ks), 8);
    CHECK_EQ(pol_keyset_skipped(ks), 0);
    for (size_t k = 0; k < pol_keyset_count(ks); k++)
        CHECK(strcmp(pol_keyset_key(ks, k)->kid, "rsa-enc") != 0);
    pol_keyset_unref(ks);
}

static void expect_bad_doc(const char *doc, const char *want)
{
    char err[512];
    pol_keyset_t *ks = pol_keyset_parse(doc, strlen(doc), err, sizeof(err));
    if (ks) {
        fprintf(stderr, "JWKS %s was accepted\n", doc);
        exit(1);
    }
    CHECK_CONTAINS(err, want);
}

static void test_keyset_bad_docs(void)
{
    expect_bad_doc("", "not JSON");
    expect_bad_doc("{\"keys\": [", "not JSON");
    expect_bad_doc("[]", "no \"keys\" array");
    expect_bad_doc("{\"keys\": {}}", "no \"keys\" array");
    expect_bad_doc("{\"keys\": []}", "no usable signing key");
    expect_bad_doc("{\"keys\": [], \"keys\": []}", "not JSON");
    expect_bad_doc("{\"keys\": [{\"kty\": \"oct\", \"kty\": \"oct\"}]}", "not JSON");
    expect_bad_doc("{\"keys\": [{\"kty\": \"oct\", \"kid\": \"a\", \"k\": \"AA\"}]}",
                   "key 0 (kid \"a\"): oct key of 1 bytes is too short");
    expect_bad_doc("{\"keys\": [1, {\"kid\": 5}]}", "key 0: not a JSON object; key 1: \"kid\"");
    expect_bad_doc("{\"keys\": [{\"kty\": \"RSA\", \"n\": \"AQAB\"}]}", "RSA has no \"e\"");
    /* A short coordinate is left-padded (producers drop leading zeros): (1, 1) is then checked
     * and is not on the curve; a coordinate longer than the field is refused outright. */
    expect_bad_doc("{\"keys\": [{\"kty\": \"EC\", \"crv\": \"P-256\", \"x\": \"AQAB\", \"y\": "
                   "\"AQAB\"}]}",
                   "EC point is not on curve P-256");
    expect_bad_doc("{\"keys\": [{\"kty\": \"EC\", \"crv\": \"P-256\", \"x\": "
                   "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\", \"y\": \"AQAB\"}]}",
                   "EC \"x\" has 34 bytes, P-256 needs 32");
    expect_bad_doc("{\"keys\": [{\"kty\": \"OKP\", \"crv\": \"Ed25519\", \"x\": \"AQAB\"}]}",
                   "Ed25519 \"x\" has 3 bytes");
    expect_bad_doc("{\"keys\": [{\"kty\": \"oct\", \"alg\": \"RS256\", \"k\": "
                   "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}]}",
                   "\"alg\" RS256 does not fit a oct key");
    expect_bad_doc("{\"keys\": [{\"kty\": \"oct\", \"alg\": \"none\", \"k\": \"AA\"}]}",
                   "unsupported \"alg\" \"none\"");
    expect_bad_doc("{\"keys\": [{\"kty\": \"oct\", \"use\": \"enc\", \"k\": \"AA\"}]}",
                   "no usable signing key");
}

static void test_keyset_refs_and_generations(void)
{
    char err[256];
    pol_keyset_t *a = parse_jwks("nokid", err, sizeof(err));
    pol_keyset_t *b = parse_jwks("nokid", err, sizeof(err));
    CHECK(a && b);
    CHECK(pol_keyset_generation(a) != 0);
    CHECK(pol_keyset_generation(b) > pol_keyset_generation(a));
    CHECK(pol_keyset_ref(a) == a);
    pol_keyset_unref(a);
    CHECK_EQ(pol_keyset_count(a), 2); /* still alive: one reference left */
    pol_keyset_unref(a);
    pol_keyset_unref(b);
    pol_keyset_unref(NULL);
}

static void test_load_file(void)
{
    char path[] = "/tmp/test_jwt_jwksXXXXXX", err[1024];
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    char *doc = json_dumps(json_object_get(json_object_get(vectors, "jwks"), "mixed"), 0);
    CHECK(write(fd, doc, strlen(doc)) == (ssize_t)strlen(doc));
    close(fd);
    free(doc);
    pol_keyset_t *ks = pol_keyset_load_file(path, err, sizeof(err));
    CHECK(ks);
    CHECK_EQ(pol_keyset_count(ks), 2);
    CHECK_CONTAINS(err, path); /* the skipped keys, under the file's name */
    CHECK_CONTAINS(err, "small-rsa");
    pol_keyset_unref(ks);
    unlink(path);
    CHECK(pol_keyset_load_file(path, err, sizeof(err)) == NULL);
    CHECK_CONTAINS(err, path);
    CHECK_CONTAINS(err, "No such file");
}

static void test_bearer(void)
{
    const char *t;
    size_t n;
    const char *v = "Bearer abc.def.ghi";
    CHECK(pol_jwt_bearer(v, strlen(v), &t, &n) == 0);
    CHECK(n == 11 && memcmp(t, "abc.def.ghi", 11) == 0);
    v = "  bEaReR \t abc.def.ghi  ";
    CHECK(pol_jwt_bearer(v, strlen(v), &t, &n) == 0);
    CHECK(n == 11 && memcmp(t, "abc.def.ghi", 11) == 0);
    v = "Basic dXNlcjpwYXNz";
    CHECK(pol_jwt_bearer(v, strlen(v), &t, &n) == -1);
    v = "Bearer";
    CHECK(pol_jwt_bearer(v, strlen(v), &t, &n) == -1);
    v = "Bearer   ";
    CHECK(pol_jwt_bearer(v, strlen(v), &t, &n) == -1);
    v = "Bearerabc.def.ghi";
    CHECK(pol_jwt_bearer(v, strlen(v), &t, &n) == -1);
    v = "Bearer abc def";
    CHECK(pol_jwt_bearer(v, strlen(v), &t, &n) == -1);
}

static void test_rules_check(void)
{
    pol_jwt_rules_t r;
    char err[200];
    pol_jwt_rules_init(&r);
    CHECK(pol_jwt_rules_check(&r, err, sizeof(err)) == 0);
    uint64_t g = r.generation;
    pol_jwt_rules_init(&r);
    CHECK(r.generation > g);
    r.algs = 0;
    CHECK(pol_jwt_rules_check(&r, err, sizeof(err)) == -1);
    CHECK_CONTAINS(err, "algorithm");
    pol_jwt_rules_init(&r);
    r.skew_s = -1;
    CHECK(pol_jwt_rules_check(&r, err, sizeof(err)) == -1);
    pol_jwt_rules_init(&r);
    r.n_claims = POL_JWT_EXTRA_MAX + 1;
    CHECK(pol_jwt_rules_check(&r, err, sizeof(err)) == -1);
    CHECK_CONTAINS(err, "claims");
}

/* ---- the cache ------------------------------------------------------------------------ */

/* The good tokens of the vectors that pass the default rules. */
static const char *good[64];
static size_t good_len[64], n_good;

static void collect_good(void)
{
    json_t *cs;
    size_t i;
    json_array_foreach(json_object_get(vectors, "cases"), i, cs)
    {
        if (strcmp(json_string_value(json_object_get(cs, "expect")), "ok") != 0 ||
            json_object_size(json_object_get(cs, "rules")) != 0 ||
            strcmp(json_string_value(json_object_get(cs, "jwks")), "main") != 0 ||
            !json_is_integer(json_object_get(cs, "exp")) ||
            json_integer_value(json_object_get(cs, "exp")) != now + 3600 ||
            !json_is_string(json_object_get(cs, "sub")) || n_good == 64)
            continue;
        good[n_good] = json_string_value(json_object_get(cs, "token"));
        good_len[n_good++] = json_string_length(json_object_get(cs, "token"));
    }
    CHECK(n_good >= 10);
}

/* The token of the case named name. */
static const char *case_token(const char *name, size_t *len)
{
    json_t *cs;
    size_t i;
    json_array_foreach(json_object_get(vectors, "cases"), i, cs)
    {
        if (strcmp(json_string_value(json_object_get(cs, "name")), name) == 0) {
            *len = json_string_length(json_object_get(cs, "token"));
            return json_string_value(json_object_get(cs, "token"));
        }
    }
    return NULL;
}

static void test_cache_hit_and_expiry(void)
{
    pol_jwt_rules_t r;
    rules_default(&r);
    pol_jwt_cache_t *c = pol_jwt_cache_new(16, 100000);
    pol_jwt_claims_t a, b;
    char reason[64];
    int hit;
    CHECK_EQ(pol_jwt_verify_cached(c, ks_main, good[0], good_len[0], &r, now, &a, &hit, reason,
                                   sizeof(reason)),
             0);
    CHECK(!hit);
    CHECK_EQ(pol_jwt_cache_size(c), 1);
    memset(&b, 0, sizeof(b));
    CHECK_EQ(pol_jwt_verify_cached(c, ks_main, good[0], good_len[0], &r, now + 10, &b, &hit, reason,
                                   sizeof(reason)),
             0);
    CHECK(hit);
    CHECK_STR(reason, "ok");
    /* A hit allocates nothing. */
    long before = allocations;
    for (int i = 0; i < 100; i++)
        CHECK_EQ(pol_jwt_verify_cached(c, ks_main, good[0], good_len[0], &r, now + 10, &b, &hit,
                                       reason, sizeof(reason)),
                 0);
    CHECK_EQ(allocations - before, 0);
    /* (The counter works: a key set parse allocates.) */
    char e2[256];
    pol_keyset_t *tmp = parse_jwks("nokid", e2, sizeof(e2));
    CHECK(allocations > before);
    pol_keyset_unref(tmp);
    CHECK_STR(pol_jwt_claims_sub(&b), pol_jwt_claims_sub(&a));
    CHECK_STR(pol_jwt_claims_iss(&b), pol_jwt_claims_iss(&a));
    CHECK_EQ(b.exp, a.exp);
    CHECK_EQ(b.alg, a.alg);
    for (int i = 0; i < 3; i++)
        CHECK_STR(pol_jwt_claims_extra(&b, i), pol_jwt_claims_extra(&a, i));

    /* exp = now + 3600: a hit until exp + skew, then the token is expired, not a hit. */
    int64_t last = now + 3600 + r.skew_s - 1;
    CHECK_EQ(pol_jwt_verify_cached(c, ks_main, good[0], good_len[0], &r, last, &b, &hit, reason,
                                   sizeof(reason)),
             0);
    CHECK(hit);
    CHECK_EQ(pol_jwt_verify_cached(c, ks_main, good[0], good_len[0], &r, last + 1, &b, &hit, reason,
                                   sizeof(reason)),
             POL_JWT_E_EXPIRED);
    CHECK(!hit);
    CHECK_STR(reason, "expired");
    CHECK_EQ(pol_jwt_cache_size(c), 0);

    /* A token one character away from a cached one is never a hit. */
    CHECK_EQ(pol_jwt_verify_cached(c, ks_main, good[1], good_len[1], &r, now, NULL, &hit, NULL, 0),
             0);
    char *bad = strdup(good[1]);
    size_t mid = good_len[1] - 10;
    bad[mid] = bad[mid] == 'A' ? 'B' : 'A';
    CHECK_EQ(pol_jwt_verify_cached(c, ks_main, bad, good_len[1], &r, now, NULL, &hit, reason,
                                   sizeof(reason)),
             POL_JWT_E_SIGNATURE);
    CHECK(!hit);
    /* ...nor is a prefix of it. */
    CHECK(pol_jwt_verify_cached(c, ks_main, good[1], good_len[1] - 1, &r, now, NULL, &hit, NULL,
                                0) != 0);
    CHECK(!hit);
    free(bad);
    pol_jwt_cache_stats_t st = pol_jwt_cache_stats(c);
    CHECK_EQ(st.hits, 102);
    CHECK_EQ(st.inserts, 2);
    pol_jwt_cache_delete(c);

    /* The max TTL bounds an entry even when exp is far. */
    c = pol_jwt_cache_new(16, 30);
    CHECK_EQ(pol_jwt_verify_cached(c, ks_main, good[0], good_len[0], &r, now, NULL, &hit, NULL, 0),
             0);
    CHECK_EQ(
        pol_jwt_verify_cached(c, ks_main, good[0], good_len[0], &r, now + 29, NULL, &hit, NULL, 0),
        0);
    CHECK(hit);
    CHECK_EQ(
        pol_jwt_verify_cached(c, ks_main, good[0], good_len[0], &r, now + 30, NULL, &hit, NULL, 0),
        0);
    CHECK(!hit); /* verified again, and cached again */
    CHECK_EQ(pol_jwt_cache_stats(c).expirations, 1);
    pol_jwt_cache_delete(c);
}

static void test_cache_generations(void)
{
    pol_jwt_rules_t r;
    rules_default(&r);
    pol_jwt_cache_t *c = pol_jwt_cache_new(16, 3600);
    int hit;
    char err[256];
    CHECK_EQ(pol_jwt_verify_cached(c, ks_main, good[0], good_len[0], &r, now, NULL, &hit, NULL, 0),
             0);
    /* Rotation: a new key set (same document) is a new generation: a miss, verified again. */
    pol_keyset_t *ks2 = parse_jwks("main", err, sizeof(err));
    CHECK_EQ(pol_jwt_verify_cached(c, ks2, good[0], good_len[0], &r, now, NULL, &hit, NULL, 0), 0);
    CHECK(!hit);
    CHECK_EQ(pol_jwt_verify_cached(c, ks2, good[0], good_len[0], &r, now, NULL, &hit, NULL, 0), 0);
    CHECK(hit);
    /* A key set where kid rsa-1 is an oct key: the cached entry must not answer for it. */
    size_t rslen;
    const char *rs = case_token("ok RS256 rsa-1", &rslen);
    CHECK(rs);
    CHECK_EQ(pol_jwt_verify_cached(c, ks2, rs, rslen, &r, now, NULL, &hit, NULL, 0), 0);
    pol_keyset_t *oct_only =
        pol_keyset_parse("{\"keys\":[{\"kty\":\"oct\",\"kid\":\"rsa-1\",\"k\":"
                         "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}]}",
                         strlen("{\"keys\":[{\"kty\":\"oct\",\"kid\":\"rsa-1\",\"k\":"
                                "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}]}"),
                         err, sizeof(err));
    CHECK(oct_only);
    char reason[64];
    CHECK_EQ(
        pol_jwt_verify_cached(c, oct_only, rs, rslen, &r, now, NULL, &hit, reason, sizeof(reason)),
        POL_JWT_E_KEY_TYPE);
    CHECK(!hit);
    CHECK_STR(reason, "wrong key type");
    /* New rules (another audience): the entry from the old rules is not used. (The look-up
     * under oct_only dropped the entry of ks2: verify once more to have it cached.) */
    CHECK_EQ(pol_jwt_verify_cached(c, ks2, rs, rslen, &r, now, NULL, &hit, NULL, 0), 0);
    CHECK(!hit);
    CHECK_EQ(pol_jwt_verify_cached(c, ks2, rs, rslen, &r, now, NULL, &hit, NULL, 0), 0);
    CHECK(hit);
    static const char *other_aud[] = {"somebody-else"};
    r.audiences = other_aud;
    r.generation = pol_jwt_rules_new_generation();
    CHECK_EQ(pol_jwt_verify_cached(c, ks2, rs, rslen, &r, now, NULL, &hit, reason, sizeof(reason)),
             POL_JWT_E_AUDIENCE);
    CHECK(!hit);
    pol_jwt_cache_clear(c);
    CHECK_EQ(pol_jwt_cache_size(c), 0);
    pol_keyset_unref(oct_only);
    pol_keyset_unref(ks2);
    pol_jwt_cache_delete(c);
}

static void test_cache_eviction(void)
{
    pol_jwt_rules_t r;
    rules_default(&r);
    pol_jwt_cache_t *c = pol_jwt_cache_new(4, 3600);
    int hit;
    CHECK(n_good >= 8);
    for (size_t i = 0; i < 4; i++)
        CHECK_EQ(
            pol_jwt_verify_cached(c, ks_main, good[i], good_len[i], &r, now, NULL, &hit, NULL, 0),
            0);
    CHECK_EQ(pol_jwt_cache_size(c), 4);
    /* Use tokens 0 and 1 (reference bits set); 2 and 3 are the eviction victims. */
    for (size_t i = 0; i < 2; i++) {
        CHECK_EQ(
            pol_jwt_verify_cached(c, ks_main, good[i], good_len[i], &r, now, NULL, &hit, NULL, 0),
            0);
        CHECK(hit);
    }
    for (size_t i = 4; i < 6; i++)
        CHECK_EQ(
            pol_jwt_verify_cached(c, ks_main, good[i], good_len[i], &r, now, NULL, &hit, NULL, 0),
            0);
    CHECK_EQ(pol_jwt_cache_size(c), 4);
    CHECK_EQ(pol_jwt_cache_stats(c).evictions, 2);
    CHECK(pol_jwt_cache_get(c, good[0], good_len[0], pol_keyset_generation(ks_main), r.generation,
                            now));
    CHECK(pol_jwt_cache_get(c, good[1], good_len[1], pol_keyset_generation(ks_main), r.generation,
                            now));
    CHECK(!pol_jwt_cache_get(c, good[2], good_len[2], pol_keyset_generation(ks_main), r.generation,
                             now));
    CHECK(!pol_jwt_cache_get(c, good[3], good_len[3], pol_keyset_generation(ks_main), r.generation,
                             now));
    CHECK(pol_jwt_cache_get(c, good[5], good_len[5], pol_keyset_generation(ks_main), r.generation,
                            now));
    /* Many more tokens through a full cache: it stays bounded and keeps answering. */
    for (int round = 0; round < 3; round++)
        for (size_t i = 0; i < n_good; i++)
            CHECK_EQ(pol_jwt_verify_cached(c, ks_main, good[i], good_len[i], &r, now, NULL, &hit,
                                           NULL, 0),
                     0);
    CHECK_EQ(pol_jwt_cache_size(c), 4);
    pol_jwt_cache_delete(c);

    /* A slot freed by a stale entry is reused before CLOCK evicts a live one. */
    c = pol_jwt_cache_new(2, 3600);
    uint64_t g = pol_keyset_generation(ks_main);
    for (size_t i = 0; i < 2; i++)
        CHECK_EQ(
            pol_jwt_verify_cached(c, ks_main, good[i], good_len[i], &r, now, NULL, &hit, NULL, 0),
            0);
    CHECK(!pol_jwt_cache_get(c, good[0], good_len[0], g + 1000, r.generation, now)); /* stale */
    CHECK_EQ(pol_jwt_cache_size(c), 1);
    CHECK_EQ(pol_jwt_verify_cached(c, ks_main, good[2], good_len[2], &r, now, NULL, &hit, NULL, 0),
             0);
    CHECK_EQ(pol_jwt_cache_stats(c).evictions, 0);
    CHECK(pol_jwt_cache_get(c, good[1], good_len[1], g, r.generation, now));
    CHECK(pol_jwt_cache_get(c, good[2], good_len[2], g, r.generation, now));
    pol_jwt_cache_clear(c);
    for (size_t i = 3; i < 5; i++)
        CHECK_EQ(
            pol_jwt_verify_cached(c, ks_main, good[i], good_len[i], &r, now, NULL, &hit, NULL, 0),
            0);
    CHECK_EQ(pol_jwt_cache_stats(c).evictions, 0);
    CHECK_EQ(pol_jwt_cache_size(c), 2);
    CHECK(pol_jwt_cache_new(0, 10) == NULL);
    CHECK(pol_jwt_cache_new(10, 0) == NULL);
    pol_jwt_cache_delete(c);
}

/* ---- threads -------------------------------------------------------------------------- */

static pol_jwt_rules_t thread_rules;

static void *verify_thread(void *arg)
{
    pol_keyset_t *ks = arg;
    const pol_jwt_rules_t r = thread_rules;
    pol_jwt_cache_t *c = pol_jwt_cache_new(8, 3600);
    for (int round = 0; round < 20; round++)
        for (size_t i = 0; i < n_good; i++) {
            pol_jwt_claims_t cl;
            CHECK_EQ(
                pol_jwt_verify_cached(c, ks, good[i], good_len[i], &r, now, &cl, NULL, NULL, 0), 0);
            CHECK_STR(pol_jwt_claims_sub(&cl), "user-1");
        }
    pol_jwt_cache_delete(c);
    pol_keyset_unref(ks);
    return NULL;
}

static void test_shared_keyset_threads(void)
{
    char err[256];
    pol_keyset_t *ks = parse_jwks("main", err, sizeof(err));
    rules_default(&thread_rules);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        CHECK(pthread_create(&t[i], NULL, verify_thread, pol_keyset_ref(ks)) == 0);
    pol_keyset_unref(ks); /* the threads hold the last references */
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_jwt VECTORS.json\n");
        return 2;
    }
    json_error_t jerr;
    vectors = json_load_file(argv[1], 0, &jerr);
    if (!vectors) {
        fprintf(stderr, "%s: %s\n", argv[1], jerr.text);
        return 1;
    }
    now = json_integer_value(json_object_get(vectors, "now"));
    char err[1024];
    ks_main = parse_jwks("main", err, sizeof(err));
    ks_nokid = parse_jwks("nokid", err, sizeof(err));
    CHECK(ks_main && ks_nokid);
    collect_good();

    RUN(test_b64url);
    RUN(test_vectors);
    RUN(test_keyset_mixed);
    RUN(test_keyset_bad_docs);
    RUN(test_keyset_refs_and_generations);
    RUN(test_load_file);
    RUN(test_bearer);
    RUN(test_rules_check);
    RUN(test_cache_hit_and_expiry);
    RUN(test_cache_generations);
    RUN(test_cache_eviction);
    RUN(test_shared_keyset_threads);

    pol_keyset_unref(ks_main);
    pol_keyset_unref(ks_nokid);
    json_decref(vectors);
    fprintf(stderr, "all passed\n");
    return 0;
}
