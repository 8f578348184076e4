/*
 * policy/jwks.c: parsing JWKS documents into shared key sets (see policy/jwks.h).
 *
 * Each key is checked and turned into an OpenSSL key here, once: RSA and EC keys through
 * EVP_PKEY_fromdata() (RSA n and e as BIGNUMs; EC as a named group and the uncompressed point
 * 04 || x || y, which OpenSSL checks lies on the curve), Ed25519 through
 * EVP_PKEY_new_raw_public_key(). oct secrets are copied.
 */
#include "policy/jwks.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/crypto_lib.h"
#include "common/file_read.h"
#include "policy/b64url.h"

struct pol_keyset {
    _Atomic unsigned refs;
    uint64_t generation;
    size_t n;
    size_t skipped;
    pol_jwk_t keys[];
};

static _Atomic uint64_t next_generation;

/* ---- algorithm names ------------------------------------------------------------------- */

static const char *const alg_names[POL_JWT_ALG_COUNT] = {
    [POL_JWT_ALG_NONE] = "none", [POL_JWT_HS256] = "HS256", [POL_JWT_HS384] = "HS384",
    [POL_JWT_HS512] = "HS512",   [POL_JWT_RS256] = "RS256", [POL_JWT_RS384] = "RS384",
    [POL_JWT_RS512] = "RS512",   [POL_JWT_PS256] = "PS256", [POL_JWT_PS384] = "PS384",
    [POL_JWT_PS512] = "PS512",   [POL_JWT_ES256] = "ES256", [POL_JWT_ES384] = "ES384",
    [POL_JWT_EDDSA] = "EdDSA",
};

pol_jwt_alg_t pol_jwt_alg_from_name(const char *name, size_t len)
{
    for (int a = 1; a < POL_JWT_ALG_COUNT; a++)
        if (strlen(alg_names[a]) == len && memcmp(alg_names[a], name, len) == 0)
            return (pol_jwt_alg_t)a;
    return POL_JWT_ALG_NONE;
}

const char *pol_jwt_alg_name(pol_jwt_alg_t alg)
{
    return alg > 0 && alg < POL_JWT_ALG_COUNT ? alg_names[alg] : "none";
}

int pol_jwk_fits(const pol_jwk_t *key, pol_jwt_alg_t alg)
{
    if (key->alg != POL_JWT_ALG_NONE && key->alg != alg)
        return 0;
    switch (alg) {
    case POL_JWT_HS256:
    case POL_JWT_HS384:
    case POL_JWT_HS512:
        return key->kty == POL_KTY_OCT;
    case POL_JWT_RS256:
    case POL_JWT_RS384:
    case POL_JWT_RS512:
    case POL_JWT_PS256:
    case POL_JWT_PS384:
    case POL_JWT_PS512:
        return key->kty == POL_KTY_RSA;
    case POL_JWT_ES256:
        return key->kty == POL_KTY_EC_P256;
    case POL_JWT_ES384:
        return key->kty == POL_KTY_EC_P384;
    case POL_JWT_EDDSA:
        return key->kty == POL_KTY_ED25519;
    default:
        return 0;
    }
}

/* ---- one key --------------------------------------------------------------------------- */

/* Largest decoded member we accept: a 16384-bit RSA modulus. */
#define MEMBER_MAX 2048

/* Decodes the base64url string member name of jwk into buf (cap bytes); returns the length,
 * or -1 with why filled in. */
static long member(json_t *jwk, const char *name, const char *what, unsigned char *buf, size_t cap,
                   char *why, size_t whylen)
{
    json_t *v = json_object_get(jwk, name);
    if (!v) {
        snprintf(why, whylen, "%s has no \"%s\"", what, name);
        return -1;
    }
    if (!json_is_string(v)) {
        snprintf(why, whylen, "%s \"%s\" is not a string", what, name);
        return -1;
    }
    long n = pol_b64url_decode(json_string_value(v), json_string_length(v), buf, cap);
    if (n < 0) {
        snprintf(why, whylen, "%s \"%s\" is not base64url (or longer than %zu bytes)", what, name,
                 cap);
        return -1;
    }
    if (n == 0) {
        snprintf(why, whylen, "%s \"%s\" is empty", what, name);
        return -1;
    }
    return n;
}

/* Builds an EVP_PKEY of type name ("RSA", "EC") from a parameter builder. */
static EVP_PKEY *from_params(const mesh_crypto_t *C, const char *name, OSSL_PARAM_BLD *bld)
{
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM *params = C->param_bld_to_param(bld);
    EVP_PKEY_CTX *ctx = C->pkey_ctx_new_from_name(NULL, name, NULL);
    if (params && ctx && C->pkey_fromdata_init(ctx) == 1 &&
        C->pkey_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
        pkey = NULL;
    C->pkey_ctx_free(ctx);
    C->param_free(params);
    return pkey;
}

static int rsa_key(const mesh_crypto_t *C, json_t *jwk, pol_jwk_t *k, char *why, size_t whylen)
{
    unsigned char n[MEMBER_MAX], e[8];
    long nl = member(jwk, "n", "RSA", n, sizeof(n), why, whylen);
    if (nl < 0)
        return -1;
    long el = member(jwk, "e", "RSA", e, sizeof(e), why, whylen);
    if (el < 0)
        return -1;
    if (!(e[el - 1] & 1) || (el == 1 && e[0] < 3)) {
        snprintf(why, whylen, "RSA \"e\" is not an odd number >= 3");
        return -1;
    }
    BIGNUM *bn_n = C->bn_bin2bn(n, (int)nl, NULL), *bn_e = C->bn_bin2bn(e, (int)el, NULL);
    OSSL_PARAM_BLD *bld = C->param_bld_new();
    EVP_PKEY *pkey = NULL;
    if (bn_n && bn_e && bld && C->param_bld_push_bn(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) == 1 &&
        C->param_bld_push_bn(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) == 1)
        pkey = from_params(C, "RSA", bld);
    C->param_bld_free(bld);
    C->bn_free(bn_n);
    C->bn_free(bn_e);
    if (!pkey) {
        snprintf(why, whylen, "OpenSSL does not accept the RSA key");
        return -1;
    }
    int bits = C->pkey_get_bits(pkey);
    if (bits < 2048) {
        C->pkey_free(pkey);
        snprintf(why, whylen, "RSA key of %d bits is too small (at least 2048)", bits);
        return -1;
    }
    k->kty = POL_KTY_RSA;
    k->pkey = pkey;
    return 0;
}

static int ec_key(const mesh_crypto_t *C, json_t *jwk, pol_jwk_t *k, char *why, size_t whylen)
{
    const char *crv = json_string_value(json_object_get(jwk, "crv"));
    size_t size;
    const char *group;
    if (!crv) {
        snprintf(why, whylen, "EC key has no \"crv\" string");
        return -1;
    } else if (strcmp(crv, "P-256") == 0) {
        size = 32, group = "prime256v1", k->kty = POL_KTY_EC_P256;
    } else if (strcmp(crv, "P-384") == 0) {
        size = 48, group = "secp384r1", k->kty = POL_KTY_EC_P384;
    } else {
        snprintf(why, whylen, "unsupported EC curve \"%.32s\" (P-256, P-384)", crv);
        return -1;
    }
    /* RFC 7518 wants each coordinate at full length, but common producers (python3-jwt's
     * to_jwk, some Go libraries) drop leading zero bytes, so one key in 256 has a 31-byte x:
     * a shorter coordinate is left-padded (the on-curve check still rejects garbage); a longer
     * one is refused. */
    unsigned char pt[1 + 2 * 48], tmp[64];
    pt[0] = 0x04;
    static const char *const names[2] = {"x", "y"};
    for (int i = 0; i < 2; i++) {
        long l = member(jwk, names[i], "EC", tmp, sizeof(tmp), why, whylen);
        if (l < 0)
            return -1;
        if (l == 0 || (size_t)l > size) {
            snprintf(why, whylen, "EC \"%s\" has %ld bytes, %s needs %zu", names[i], l, crv, size);
            return -1;
        }
        unsigned char *c = pt + 1 + (size_t)i * size;
        memset(c, 0, size - (size_t)l);
        memcpy(c + size - (size_t)l, tmp, (size_t)l);
    }
    OSSL_PARAM_BLD *bld = C->param_bld_new();
    EVP_PKEY *pkey = NULL;
    if (bld && C->param_bld_push_utf8(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) == 1 &&
        C->param_bld_push_octet(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, 1 + 2 * size) == 1)
        pkey = from_params(C, "EC", bld);
    C->param_bld_free(bld);
    if (!pkey) {
        snprintf(why, whylen, "EC point is not on curve %s", crv);
        return -1;
    }
    k->pkey = pkey;
    return 0;
}

static int okp_key(const mesh_crypto_t *C, json_t *jwk, pol_jwk_t *k, char *why, size_t whylen)
{
    const char *crv = json_string_value(json_object_get(jwk, "crv"));
    if (!crv || strcmp(crv, "Ed25519") != 0) {
        snprintf(why, whylen, "unsupported OKP curve \"%.32s\" (Ed25519)", crv ? crv : "");
        return -1;
    }
    unsigned char x[64];
    long xl = member(jwk, "x", "Ed25519", x, sizeof(x), why, whylen);
    if (xl < 0)
        return -1;
    if (xl != 32) {
        snprintf(why, whylen, "Ed25519 \"x\" has %ld bytes, needs 32", xl);
        return -1;
    }
    EVP_PKEY *pkey = C->pkey_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, 32);
    if (!pkey) {
        snprintf(why, whylen, "OpenSSL does not accept the Ed25519 key");
        return -1;
    }
    k->kty = POL_KTY_ED25519;
    k->pkey = pkey;
    return 0;
}

static int oct_key(json_t *jwk, pol_jwk_t *k, char *why, size_t whylen)
{
    unsigned char buf[MEMBER_MAX];
    long n = member(jwk, "k", "oct", buf, sizeof(buf), why, whylen);
    if (n < 0)
        return -1;
    if (n < 32) {
        snprintf(why, whylen, "oct key of %ld bytes is too short (at least 32)", n);
        return -1;
    }
    k->secret = malloc((size_t)n);
    if (!k->secret) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    memcpy(k->secret, buf, (size_t)n);
    k->secret_len = (size_t)n;
    k->kty = POL_KTY_OCT;
    return 0;
}

/* Fills k from jwk. Returns 0 (usable), 1 (not a signing key: leave out quietly) or -1 (bad,
 * why says how). */
static int one_key(json_t *jwk, pol_jwk_t *k, char *why, size_t whylen)
{
    memset(k, 0, sizeof(*k));
    if (!json_is_object(jwk)) {
        snprintf(why, whylen, "not a JSON object");
        return -1;
    }
    json_t *kid = json_object_get(jwk, "kid");
    if (kid) {
        if (!json_is_string(kid)) {
            snprintf(why, whylen, "\"kid\" is not a string");
            return -1;
        }
        if (json_string_length(kid) > POL_JWK_KID_MAX) {
            snprintf(why, whylen, "\"kid\" is longer than %d bytes", POL_JWK_KID_MAX);
            return -1;
        }
        memcpy(k->kid, json_string_value(kid), json_string_length(kid) + 1);
        k->has_kid = 1;
    }
    json_t *use = json_object_get(jwk, "use");
    if (use && !json_is_string(use)) {
        snprintf(why, whylen, "\"use\" is not a string");
        return -1;
    }
    if (use && strcmp(json_string_value(use), "sig") != 0)
        return 1;
    json_t *alg = json_object_get(jwk, "alg");
    if (alg) {
        if (!json_is_string(alg)) {
            snprintf(why, whylen, "\"alg\" is not a string");
            return -1;
        }
        k->alg = pol_jwt_alg_from_name(json_string_value(alg), json_string_length(alg));
        if (k->alg == POL_JWT_ALG_NONE) {
            snprintf(why, whylen, "unsupported \"alg\" \"%.32s\"", json_string_value(alg));
            return -1;
        }
    }
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    if (!kty) {
        snprintf(why, whylen, "no \"kty\" string");
        return -1;
    }
    int rc;
    if (strcmp(kty, "oct") == 0) {
        rc = oct_key(jwk, k, why, whylen);
    } else if (strcmp(kty, "RSA") == 0 || strcmp(kty, "EC") == 0 || strcmp(kty, "OKP") == 0) {
        char cerr[160];
        const mesh_crypto_t *C = mesh_crypto(cerr, sizeof(cerr));
        if (!C) {
            snprintf(why, whylen, "%s", cerr);
            return -1;
        }
        rc = kty[0] == 'R'   ? rsa_key(C, jwk, k, why, whylen)
             : kty[0] == 'E' ? ec_key(C, jwk, k, why, whylen)
                             : okp_key(C, jwk, k, why, whylen);
        C->err_clear_error();
    } else {
        snprintf(why, whylen, "unsupported kty \"%.32s\"", kty);
        return -1;
    }
    if (rc == 0 && k->alg != POL_JWT_ALG_NONE && !pol_jwk_fits(k, k->alg)) {
        snprintf(why, whylen, "\"alg\" %s does not fit a %s key", pol_jwt_alg_name(k->alg), kty);
        pol_jwk_t tmp = *k;
        memset(k, 0, sizeof(*k));
        if (tmp.pkey)
            mesh_crypto(NULL, 0)->pkey_free(tmp.pkey);
        free(tmp.secret);
        return -1;
    }
    return rc;
}

static void key_free(pol_jwk_t *k)
{
    if (k->pkey)
        mesh_crypto(NULL, 0)->pkey_free(k->pkey);
    if (k->secret) {
        memset(k->secret, 0, k->secret_len);
        free(k->secret);
    }
}

/* ---- the set --------------------------------------------------------------------------- */

/* Appends a formatted piece to err, separated by "; ". */
static void append(char *err, size_t errlen, const char *fmt, ...)
{
    size_t used = strlen(err);
    if (!errlen || used + 1 >= errlen)
        return;
    if (used) {
        snprintf(err + used, errlen - used, "; ");
        used = strlen(err);
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err + used, errlen - used, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= errlen - used) /* cut: say so (pol_keyset_skipped() counts all) */
        memcpy(err + errlen - 4, "...", 4);
}

pol_keyset_t *pol_keyset_parse(const char *json, size_t len, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = 0;
    else
        err = NULL, errlen = 0;
    if (len > POL_KEYSET_MAX_DOC) {
        if (err)
            snprintf(err, errlen, "JWKS is larger than %d bytes", POL_KEYSET_MAX_DOC);
        return NULL;
    }
    json_error_t jerr;
    json_t *doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        if (err)
            snprintf(err, errlen, "JWKS is not JSON: %s (line %d column %d)", jerr.text, jerr.line,
                     jerr.column);
        return NULL;
    }
    json_t *keys = json_object_get(doc, "keys");
    if (!json_is_array(keys)) {
        if (err)
            snprintf(err, errlen, "JWKS has no \"keys\" array");
        json_decref(doc);
        return NULL;
    }
    size_t n = json_array_size(keys);
    if (n > POL_KEYSET_MAX_KEYS) {
        if (err)
            snprintf(err, errlen, "JWKS has %zu keys, at most %d are accepted", n,
                     POL_KEYSET_MAX_KEYS);
        json_decref(doc);
        return NULL;
    }
    pol_keyset_t *ks = calloc(1, sizeof(*ks) + n * sizeof(pol_jwk_t));
    if (!ks) {
        if (err)
            snprintf(err, errlen, "out of memory");
        json_decref(doc);
        return NULL;
    }
    char msgs[1024] = "";
    for (size_t i = 0; i < n; i++) {
        char why[160];
        pol_jwk_t *k = &ks->keys[ks->n];
        int rc = one_key(json_array_get(keys, i), k, why, sizeof(why));
        if (rc == 0) {
            ks->n++;
        } else if (rc < 0) {
            ks->skipped++;
            if (k->has_kid)
                append(msgs, sizeof(msgs), "key %zu (kid \"%.64s\"): %s", i, k->kid, why);
            else
                append(msgs, sizeof(msgs), "key %zu: %s", i, why);
        }
    }
    json_decref(doc);
    if (ks->n == 0) {
        if (err)
            snprintf(err, errlen, "JWKS has no usable signing key%s%s", msgs[0] ? ": " : "", msgs);
        free(ks);
        return NULL;
    }
    if (err)
        snprintf(err, errlen, "%s", msgs);
    atomic_init(&ks->refs, 1);
    ks->generation = atomic_fetch_add(&next_generation, 1) + 1;
    return ks;
}

pol_keyset_t *pol_keyset_load_file(const char *path, char *err, size_t errlen)
{
    size_t n;
    char *buf = mesh_file_read(path, POL_KEYSET_MAX_DOC, 0, &n, err, errlen);
    if (!buf)
        return NULL;
    char why[1024];
    pol_keyset_t *ks = pol_keyset_parse(buf, n, why, sizeof(why));
    free(buf);
    if (err && errlen)
        snprintf(err, errlen, "%s%s%s", why[0] ? path : "", why[0] ? ": " : "", why);
    return ks;
}

pol_keyset_t *pol_keyset_ref(pol_keyset_t *ks)
{
    atomic_fetch_add_explicit(&ks->refs, 1, memory_order_relaxed);
    return ks;
}

void pol_keyset_unref(pol_keyset_t *ks)
{
    if (!ks || atomic_fetch_sub_explicit(&ks->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < ks->n; i++)
        key_free(&ks->keys[i]);
    free(ks);
}

size_t pol_keyset_count(const pol_keyset_t *ks)
{
    return ks->n;
}

const pol_jwk_t *pol_keyset_key(const pol_keyset_t *ks, size_t i)
{
    return i < ks->n ? &ks->keys[i] : NULL;
}

size_t pol_keyset_skipped(const pol_keyset_t *ks)
{
    return ks->skipped;
}

uint64_t pol_keyset_generation(const pol_keyset_t *ks)
{
    return ks->generation;
}
