/*
 * tests/fuzz/policy_jwt/fuzz_jwt.c: libFuzzer harness over JWT verification and JWKS parsing.
 *
 * The first input byte picks the target (its value mod 3):
 *   0:    the rest is a token, verified against a fixed key set (EC P-256 "ec", Ed25519 "ed",
 *         RSA 2048 "rs", oct "hs"; generated once with python3-jwt, private halves discarded),
 *         directly and twice through a token cache. All three answers must agree, the reason
 *         must be the code's stable reason, and a good token's claims must be NUL-terminated
 *         strings inside the claims buffer without control characters.
 *   2:    the rest is a header and a payload separated by the first NUL byte; the harness
 *         encodes them and signs them with the fixed oct key (HS256), so the fuzzer reaches the
 *         header and claim checks behind a valid signature; the same checks as for 0 apply.
 *   1:    the rest is a JWKS document; when it parses, every key must fit some algorithm, and a
 *         fixed HS256 token is verified against it (exercising whatever keys came out).
 * Seeds (seeds/, the first byte is the target): tokens of every algorithm of the fixed set, the
 * set and each of its keys alone.
 */
#include "policy/jwks.h"
#include "policy/jwt.h"
#include "policy/jwt_cache.h"

#include "common/crypto_lib.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char jwks_doc[] =
    "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"_"
    "0XDCgMnpxdcomxH3y1wHirFu2INvjNH4J95FbrRKz4\",\"y\":\"scZRId3F9Wz1E711oRl6h1CnIMq8EyTHr1Ua-"
    "ZQ9uec\",\"kid\":\"ec\"},{\"x\":\"yYb63EU-bUq9EZkjSR47qFo0_HJUFM_vT5-aUgEPQss\",\"kty\":"
    "\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"ed\"},{\"kty\":\"RSA\",\"key_ops\":[\"verify\"],\"n\":"
    "\"3FJlTk5_rzer7sYXzB5dDgkcrXHHCJg8VfDPyg3iExygLEpM5uEVNNdWZFWhw_"
    "SG0NJEHoDgJ2RlNsSd9tBA7nzvJfnbdgKASKvOKJAi7F7GMsicK93l8jYGJ_RF44v8ZcMIYFj9lgHiuY-"
    "WdU2w2V6NkMD80TvZEyyqIfD7-ScNfgoK1-4DlI1XAnaSilT0RGa_P4cpgarRFMS5h8DCMDCwHP-"
    "OaR7fA80sT6CcYBYT1_Aygsg6oZy2hBod3vIBYXikYCnr9ZLVeI1S7s679sUsCqN-lutNmyrYE1uCyY1_"
    "P2vFizVu6DEZVghHNf1tJXKqSkJRroksDtRiRJyWbQ\",\"e\":\"AQAB\",\"kid\":\"rs\"},{\"k\":"
    "\"ZnV6ei1zZWNyZXQtMDEyMzQ1Njc4OWFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6\",\"kty\":\"oct\",\"kid\":"
    "\"hs\"}]}";
static const char hs256_token[] =
    "eyJhbGciOiJIUzI1NiIsImtpZCI6ImhzIiwidHlwIjoiSldUIn0."
    "eyJzdWIiOiJmdXp6IiwiaXNzIjoiaHR0cHM6Ly9pc3N1ZXIuZXhhbXBsZSIsImF1ZCI6Im1lc2hkIiwiZXhwIjo0MTAyND"
    "Q0ODAwLCJpYXQiOjE3MDAwMDAwMDAsImVtYWlsIjoiZkBleGFtcGxlLmNvbSIsImdyb3VwcyI6WyJhIiwiYiJdfQ.h-"
    "WQohilNTgYos9yAmCAode5iOEUOy6LZpxV0mgt6Bw";

/* The oct key "hs" of jwks_doc. */
static const char hs_secret[] = "fuzz-secret-0123456789abcdefghijklmnopqrstuvwxyz";

static pol_keyset_t *fixed;
static pol_jwt_cache_t *cache;
static pol_jwt_rules_t rules;
static const char *const issuers[] = {"https://issuer.example"};
static const char *const audiences[] = {"meshd"};
static const char *const claims[] = {"email", "groups", "tenant"};

#define NOW 1700000000

static void setup(void)
{
    char err[512];
    fixed = pol_keyset_parse(jwks_doc, sizeof(jwks_doc) - 1, err, sizeof(err));
    if (!fixed || pol_keyset_count(fixed) != 4) {
        fprintf(stderr, "fixed key set: %s\n", err);
        abort();
    }
    cache = pol_jwt_cache_new(64, 3600);
    pol_jwt_rules_init(&rules);
    rules.issuers = issuers, rules.n_issuers = 1;
    rules.audiences = audiences, rules.n_audiences = 1;
    rules.claims = claims, rules.n_claims = 3;
}

static void check_string(const pol_jwt_claims_t *c, const char *s)
{
    if (!s)
        return;
    if (s < c->buf || s >= c->buf + c->used)
        abort();
    size_t n = strnlen(s, (size_t)(c->buf + c->used - s));
    if (s + n >= c->buf + c->used) /* no NUL inside the used part */
        abort();
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7F)
            abort();
}

static void fuzz_token(const char *tok, size_t len)
{
    pol_jwt_claims_t c, cc;
    char reason[64], r2[64];
    int rc = pol_jwt_verify(fixed, tok, len, &rules, NOW, &c, reason, sizeof(reason));
    if (rc > 0 || strcmp(reason, pol_jwt_reason(rc)) != 0 || rc == POL_JWT_E_INTERNAL)
        abort();
    if (rc == POL_JWT_OK) {
        if (c.used > POL_JWT_CLAIMS_BUF || c.n_extra != 3)
            abort();
        check_string(&c, pol_jwt_claims_sub(&c));
        check_string(&c, pol_jwt_claims_iss(&c));
        for (size_t i = 0; i < 3; i++)
            check_string(&c, pol_jwt_claims_extra(&c, i));
    }
    for (int round = 0; round < 2; round++) {
        int hit;
        int rc2 =
            pol_jwt_verify_cached(cache, fixed, tok, len, &rules, NOW, &cc, &hit, r2, sizeof(r2));
        if (rc2 != rc || strcmp(r2, reason) != 0 || (hit && rc != POL_JWT_OK))
            abort();
        if (rc == POL_JWT_OK && (cc.used != c.used || memcmp(cc.buf, c.buf, c.used) != 0 ||
                                 cc.exp != c.exp || cc.sub_off != c.sub_off))
            abort();
    }
}

static void fuzz_jwks(const char *doc, size_t len)
{
    char err[1024];
    pol_keyset_t *ks = pol_keyset_parse(doc, len, err, sizeof(err));
    if (!ks)
        return;
    if (pol_keyset_count(ks) == 0 || pol_keyset_count(ks) > POL_KEYSET_MAX_KEYS)
        abort();
    for (size_t i = 0; i < pol_keyset_count(ks); i++) {
        const pol_jwk_t *k = pol_keyset_key(ks, i);
        int fits = 0;
        for (int a = 1; a < POL_JWT_ALG_COUNT; a++)
            fits |= pol_jwk_fits(k, (pol_jwt_alg_t)a);
        if (!fits || (k->kty == POL_KTY_OCT) != (k->secret != NULL) ||
            (k->kty != POL_KTY_OCT) != (k->pkey != NULL))
            abort();
    }
    char reason[64];
    int rc = pol_jwt_verify(ks, hs256_token, sizeof(hs256_token) - 1, &rules, NOW, NULL, reason,
                            sizeof(reason));
    if (rc == POL_JWT_E_MALFORMED || rc == POL_JWT_E_INTERNAL)
        abort();
    pol_keyset_unref(ks);
}

/* Unpadded base64url of n bytes into out; returns the length. */
static size_t b64url(const unsigned char *in, size_t n, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = a[v >> 18], out[o++] = a[(v >> 12) & 63], out[o++] = a[(v >> 6) & 63];
        out[o++] = a[v & 63];
    }
    if (n - i == 1) {
        out[o++] = a[in[i] >> 2], out[o++] = a[(in[i] & 3) << 4];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 8 | in[i + 1];
        out[o++] = a[v >> 10], out[o++] = a[(v >> 4) & 63], out[o++] = a[(v & 15) << 2];
    }
    return o;
}

static void fuzz_signed(const unsigned char *d, size_t n)
{
    const unsigned char *nul = memchr(d, 0, n);
    if (!nul)
        return;
    size_t hl = (size_t)(nul - d), pl = n - hl - 1;
    char *tok = malloc((hl + pl) / 3 * 4 + 8 + 48);
    size_t len = b64url(d, hl, tok);
    tok[len++] = '.';
    len += b64url(nul + 1, pl, tok + len);
    const mesh_crypto_t *C = mesh_crypto(NULL, 0);
    unsigned char mac[32];
    unsigned int ml = 0;
    C->hmac(C->sha256(), hs_secret, (int)strlen(hs_secret), (const unsigned char *)tok, len, mac,
            &ml);
    tok[len++] = '.';
    len += b64url(mac, ml, tok + len);
    fuzz_token(tok, len);
    free(tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fixed)
        setup();
    if (size < 1)
        return 0;
    /* Copy into an exact-size heap block so that ASan sees any read past the end. */
    size_t n = size - 1;
    char *buf = malloc(n ? n : 1);
    memcpy(buf, data + 1, n);
    if (data[0] % 3 == 1)
        fuzz_jwks(buf, n);
    else if (data[0] % 3 == 2)
        fuzz_signed((const unsigned char *)buf, n);
    else
        fuzz_token(buf, n);
    free(buf);
    return 0;
}
