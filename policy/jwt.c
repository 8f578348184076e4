/*
 * policy/jwt.c: JWT verification (see policy/jwt.h).
 *
 * Reading order: split the token and decode its header into a stack buffer; pick the candidate
 * keys from the algorithm and "kid"; verify the signature over the first two parts (HMAC with
 * a constant-time compare, RSA PKCS#1 v1.5 and PSS, ECDSA with the JWS raw r || s turned into
 * DER, Ed25519); only then decode and parse the payload, check the times, issuer and audience,
 * and copy the forwarded claims into the caller's fixed-size pol_jwt_claims_t.
 */
#include "policy/jwt.h"

#include <jansson.h>
#include <math.h>
#include <openssl/rsa.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/crypto_lib.h"
#include "policy/b64url.h"

/* ---- rules and reasons ----------------------------------------------------------------- */

static const char *const reasons[] = {
    [0] = "ok",
    [-POL_JWT_E_TOO_LONG] = "token too long",
    [-POL_JWT_E_MALFORMED] = "malformed token",
    [-POL_JWT_E_ALG] = "algorithm not allowed",
    [-POL_JWT_E_UNKNOWN_KEY] = "unknown key",
    [-POL_JWT_E_KEY_TYPE] = "wrong key type",
    [-POL_JWT_E_SIGNATURE] = "bad signature",
    [-POL_JWT_E_EXPIRED] = "expired",
    [-POL_JWT_E_NO_EXP] = "missing exp",
    [-POL_JWT_E_NOT_YET_VALID] = "not yet valid",
    [-POL_JWT_E_IAT_FUTURE] = "issued in the future",
    [-POL_JWT_E_ISSUER] = "wrong issuer",
    [-POL_JWT_E_AUDIENCE] = "wrong audience",
    [-POL_JWT_E_BAD_CLAIM] = "bad claim",
    [-POL_JWT_E_CLAIM_TOO_LONG] = "claim too long",
    [-POL_JWT_E_INTERNAL] = "internal error",
};

const char *pol_jwt_reason(int code)
{
    if (code > 0 || -code >= (int)(sizeof(reasons) / sizeof(reasons[0])))
        return "internal error";
    return reasons[-code];
}

static _Atomic uint64_t rules_generation;

uint64_t pol_jwt_rules_new_generation(void)
{
    return atomic_fetch_add(&rules_generation, 1) + 1;
}

void pol_jwt_rules_init(pol_jwt_rules_t *r)
{
    memset(r, 0, sizeof(*r));
    r->algs = POL_JWT_ALGS_ALL;
    r->skew_s = 60;
    r->require_exp = 1;
    r->max_len = POL_JWT_TOKEN_MAX;
    r->generation = pol_jwt_rules_new_generation();
}

int pol_jwt_rules_check(const pol_jwt_rules_t *r, char *err, size_t errlen)
{
    const char *why = NULL;
    if ((r->algs & POL_JWT_ALGS_ALL) == 0 || (r->algs & ~POL_JWT_ALGS_ALL))
        why = "no algorithm allowed, or an unknown one";
    else if (r->skew_s < 0 || r->skew_s > 86400)
        why = "clock skew must be 0..86400 s";
    else if (r->n_claims > POL_JWT_EXTRA_MAX)
        why = "too many forwarded claims (at most POL_JWT_EXTRA_MAX = 8)";
    else if (r->max_len > POL_JWT_TOKEN_MAX)
        why = "max token length above 8192 bytes";
    else if ((r->n_issuers && !r->issuers) || (r->n_audiences && !r->audiences) ||
             (r->n_claims && !r->claims))
        why = "a list has a count but no entries";
    if (why && err && errlen)
        snprintf(err, errlen, "jwt rules: %s", why);
    return why ? -1 : 0;
}

/* ---- signatures ------------------------------------------------------------------------ */

static const EVP_MD *alg_md(const mesh_crypto_t *C, pol_jwt_alg_t alg)
{
    switch (alg) {
    case POL_JWT_HS256:
    case POL_JWT_RS256:
    case POL_JWT_PS256:
    case POL_JWT_ES256:
        return C->sha256();
    case POL_JWT_HS384:
    case POL_JWT_RS384:
    case POL_JWT_PS384:
    case POL_JWT_ES384:
        return C->sha384();
    case POL_JWT_HS512:
    case POL_JWT_RS512:
    case POL_JWT_PS512:
        return C->sha512();
    default:
        return NULL; /* EdDSA hashes internally */
    }
}

/* DigestVerify with pkey; pss selects RSA-PSS with the salt as long as the digest. Returns 1
 * when the signature verifies, 0 when not, -1 on an internal failure. */
static int pkey_verify(const mesh_crypto_t *C, EVP_PKEY *pkey, const EVP_MD *md, int pss,
                       const unsigned char *sig, size_t siglen, const char *msg, size_t msglen)
{
    EVP_MD_CTX *ctx = C->md_ctx_new();
    EVP_PKEY_CTX *pctx = NULL;
    int ok = -1;
    if (ctx && C->digest_verify_init(ctx, &pctx, md, NULL, pkey) == 1 &&
        (!pss || (C->pkey_ctx_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
                  C->pkey_ctx_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1)))
        ok = C->digest_verify(ctx, sig, siglen, (const unsigned char *)msg, msglen) == 1;
    C->md_ctx_free(ctx);
    return ok;
}

/* JWS ECDSA signatures are r || s, each the field size; OpenSSL wants DER. */
static int ecdsa_verify(const mesh_crypto_t *C, EVP_PKEY *pkey, const EVP_MD *md, size_t size,
                        const unsigned char *sig, size_t siglen, const char *msg, size_t msglen)
{
    if (siglen != 2 * size)
        return 0;
    ECDSA_SIG *es = C->ecdsa_sig_new();
    BIGNUM *r = C->bn_bin2bn(sig, (int)size, NULL), *s = C->bn_bin2bn(sig + size, (int)size, NULL);
    if (!es || !r || !s || C->ecdsa_sig_set0(es, r, s) != 1) {
        C->bn_free(r);
        C->bn_free(s);
        C->ecdsa_sig_free(es);
        return -1;
    }
    unsigned char der[2 * 48 + 16], *p = der;
    int derlen = C->i2d_ecdsa_sig(es, &p);
    C->ecdsa_sig_free(es);
    if (derlen <= 0 || (size_t)derlen > sizeof(der))
        return -1;
    return pkey_verify(C, pkey, md, 0, der, (size_t)derlen, msg, msglen);
}

/* Checks sig over msg with key for alg (the key fits alg). 1 good, 0 bad, -1 internal. */
static int signature_ok(const mesh_crypto_t *C, const pol_jwk_t *key, pol_jwt_alg_t alg,
                        const unsigned char *sig, size_t siglen, const char *msg, size_t msglen)
{
    const EVP_MD *md = alg_md(C, alg);
    switch (alg) {
    case POL_JWT_HS256:
    case POL_JWT_HS384:
    case POL_JWT_HS512: {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int maclen = 0;
        if (key->kty != POL_KTY_OCT || !key->secret)
            return 0;
        if (!C->hmac(md, key->secret, (int)key->secret_len, (const unsigned char *)msg, msglen, mac,
                     &maclen))
            return -1;
        return maclen == siglen && C->memcmp_ct(mac, sig, siglen) == 0;
    }
    case POL_JWT_RS256:
    case POL_JWT_RS384:
    case POL_JWT_RS512:
        return pkey_verify(C, key->pkey, md, 0, sig, siglen, msg, msglen);
    case POL_JWT_PS256:
    case POL_JWT_PS384:
    case POL_JWT_PS512:
        return pkey_verify(C, key->pkey, md, 1, sig, siglen, msg, msglen);
    case POL_JWT_ES256:
        return ecdsa_verify(C, key->pkey, md, 32, sig, siglen, msg, msglen);
    case POL_JWT_ES384:
        return ecdsa_verify(C, key->pkey, md, 48, sig, siglen, msg, msglen);
    case POL_JWT_EDDSA:
        if (siglen != 64)
            return 0;
        return pkey_verify(C, key->pkey, NULL, 0, sig, siglen, msg, msglen);
    default:
        return 0;
    }
}

/* ---- header ---------------------------------------------------------------------------- */

/* Nonzero when member name of obj is absent or a string. */
static int string_or_absent(json_t *obj, const char *name)
{
    json_t *v = json_object_get(obj, name);
    return !v || json_is_string(v);
}

/* Collects into cand the keys that may verify a token with alg and kid (kid NULL: none).
 * Returns the count, or a negative result. */
static int candidates(const pol_keyset_t *ks, pol_jwt_alg_t alg, const char *kid, size_t kidlen,
                      const pol_jwk_t **cand)
{
    int n = 0, named = 0;
    for (size_t i = 0; i < pol_keyset_count(ks); i++) {
        const pol_jwk_t *k = pol_keyset_key(ks, i);
        if (kid) {
            if (!k->has_kid || strlen(k->kid) != kidlen || memcmp(k->kid, kid, kidlen) != 0)
                continue;
            named = 1;
        }
        if (!pol_jwk_fits(k, alg))
            continue;
        if (n == POL_JWT_MAX_TRIES)
            return kid ? n : POL_JWT_E_UNKNOWN_KEY;
        cand[n++] = k;
    }
    if (n == 0)
        return named ? POL_JWT_E_KEY_TYPE : POL_JWT_E_UNKNOWN_KEY;
    return n;
}

/* ---- claims ---------------------------------------------------------------------------- */

/* Reads the NumericDate member name: 0 absent, 1 present (in *v), -1 not a number. */
static int numeric_date(json_t *payload, const char *name, int64_t *v)
{
    json_t *j = json_object_get(payload, name);
    if (!j)
        return 0;
    if (json_is_integer(j)) {
        *v = (int64_t)json_integer_value(j);
        return 1;
    }
    if (json_is_real(j)) {
        double d = floor(json_real_value(j));
        if (!(d > -9.0e18 && d < 9.0e18))
            return -1;
        *v = (int64_t)d;
        return 1;
    }
    return -1;
}

/* Appends a string to c->buf; returns its offset or a negative result. */
static int put_str(pol_jwt_claims_t *c, const char *s, size_t len, int finish)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7F)
            return POL_JWT_E_BAD_CLAIM;
    if ((size_t)c->used + len + (finish ? 1 : 0) > POL_JWT_CLAIMS_BUF)
        return POL_JWT_E_CLAIM_TOO_LONG;
    int off = c->used;
    memcpy(c->buf + c->used, s, len);
    c->used = (uint16_t)(c->used + len);
    if (finish)
        c->buf[c->used++] = 0;
    return off;
}

/* Appends a scalar (string, number, boolean) as text, unterminated. */
static int put_scalar(pol_jwt_claims_t *c, json_t *v)
{
    char num[40];
    if (json_is_string(v))
        return put_str(c, json_string_value(v), json_string_length(v), 0);
    if (json_is_integer(v)) {
        snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
    } else if (json_is_real(v)) {
        snprintf(num, sizeof(num), "%.15g", json_real_value(v));
        if (strtod(num, NULL) != json_real_value(v))
            snprintf(num, sizeof(num), "%.17g", json_real_value(v));
    } else if (json_is_boolean(v)) {
        snprintf(num, sizeof(num), "%s", json_is_true(v) ? "true" : "false");
    } else {
        return POL_JWT_E_BAD_CLAIM;
    }
    return put_str(c, num, strlen(num), 0);
}

/* Copies claim v (NULL or null: absent) into c; *off gets its offset. */
static int put_claim(pol_jwt_claims_t *c, json_t *v, uint16_t *off)
{
    *off = POL_JWT_ABSENT;
    if (!v || json_is_null(v))
        return 0;
    int start = c->used, rc;
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i && (rc = put_str(c, ",", 1, 0)) < 0)
                return rc;
            if ((rc = put_scalar(c, json_array_get(v, i))) < 0)
                return rc;
        }
    } else if ((rc = put_scalar(c, v)) < 0) {
        return rc;
    }
    if ((rc = put_str(c, "", 0, 1)) < 0)
        return rc;
    *off = (uint16_t)start;
    return 0;
}

static int one_of(const char *s, size_t len, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (list[i] && strlen(list[i]) == len && memcmp(list[i], s, len) == 0)
            return 1;
    return 0;
}

static int audience_ok(json_t *aud, const pol_jwt_rules_t *r)
{
    if (json_is_string(aud))
        return one_of(json_string_value(aud), json_string_length(aud), r->audiences,
                      r->n_audiences);
    for (size_t i = 0; json_is_array(aud) && i < json_array_size(aud); i++) {
        json_t *a = json_array_get(aud, i);
        if (json_is_string(a) &&
            one_of(json_string_value(a), json_string_length(a), r->audiences, r->n_audiences))
            return 1;
    }
    return 0;
}

/* Checks the payload's claims and fills out. */
static int check_claims(json_t *p, const pol_jwt_rules_t *r, int64_t now, pol_jwt_claims_t *c)
{
    int h;
    if ((h = numeric_date(p, "exp", &c->exp)) < 0)
        return POL_JWT_E_MALFORMED;
    c->has_exp = (uint8_t)h;
    if ((h = numeric_date(p, "nbf", &c->nbf)) < 0)
        return POL_JWT_E_MALFORMED;
    c->has_nbf = (uint8_t)h;
    if ((h = numeric_date(p, "iat", &c->iat)) < 0)
        return POL_JWT_E_MALFORMED;
    c->has_iat = (uint8_t)h;

    if (c->has_exp && c->exp <= now - r->skew_s)
        return POL_JWT_E_EXPIRED;
    if (!c->has_exp && r->require_exp)
        return POL_JWT_E_NO_EXP;
    if (c->has_nbf && c->nbf > now + r->skew_s)
        return POL_JWT_E_NOT_YET_VALID;
    if (c->has_iat && c->iat > now + r->skew_s)
        return POL_JWT_E_IAT_FUTURE;

    json_t *iss = json_object_get(p, "iss");
    if (r->n_issuers &&
        !(json_is_string(iss) &&
          one_of(json_string_value(iss), json_string_length(iss), r->issuers, r->n_issuers)))
        return POL_JWT_E_ISSUER;
    if (r->n_audiences && !audience_ok(json_object_get(p, "aud"), r))
        return POL_JWT_E_AUDIENCE;

    json_t *sub = json_object_get(p, "sub");
    if ((sub && !json_is_string(sub)) || (iss && !json_is_string(iss)))
        return POL_JWT_E_BAD_CLAIM;
    int rc;
    if ((rc = put_claim(c, sub, &c->sub_off)) < 0 || (rc = put_claim(c, iss, &c->iss_off)) < 0)
        return rc;
    c->n_extra = (uint8_t)r->n_claims;
    for (size_t i = 0; i < r->n_claims; i++) {
        json_t *v = r->claims[i] ? json_object_get(p, r->claims[i]) : NULL;
        if (v && (json_is_object(v)))
            return POL_JWT_E_BAD_CLAIM;
        if ((rc = put_claim(c, v, &c->extra_off[i])) < 0)
            return rc;
    }
    return POL_JWT_OK;
}

/* ---- verification ---------------------------------------------------------------------- */

/* Decoded header or payload: at most 3/4 of the longest token. */
#define PART_MAX (POL_JWT_TOKEN_MAX / 4 * 3)
/* Longest signature: RSA 16384 bits. */
#define SIG_MAX 2048

/* Parses n decoded bytes as a JSON object (duplicate members rejected); NULL when not one. */
static json_t *json_object_part(const unsigned char *buf, long n)
{
    if (n <= 0)
        return NULL;
    json_t *j = json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
    if (j && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

static int verify(const pol_keyset_t *ks, const char *tok, size_t len, const pol_jwt_rules_t *r,
                  int64_t now, pol_jwt_claims_t *out)
{
    size_t max = r->max_len ? r->max_len : POL_JWT_TOKEN_MAX;
    if (max > POL_JWT_TOKEN_MAX)
        max = POL_JWT_TOKEN_MAX;
    if (len > max)
        return POL_JWT_E_TOO_LONG;
    const char *d1 = tok ? memchr(tok, '.', len) : NULL;
    const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok)) : NULL;
    if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - tok)))
        return POL_JWT_E_MALFORMED;
    const char *sig_s = d2 + 1;
    size_t hlen = (size_t)(d1 - tok), plen = (size_t)(d2 - d1 - 1),
           slen = len - (size_t)(sig_s - tok);

    unsigned char part[PART_MAX];
    json_t *hdr = json_object_part(part, pol_b64url_decode(tok, hlen, part, sizeof(part)));
    if (!hdr)
        return POL_JWT_E_MALFORMED;
    json_t *alg_j = json_object_get(hdr, "alg"), *kid_j = json_object_get(hdr, "kid");
    if (!json_is_string(alg_j) || (kid_j && !json_is_string(kid_j)) ||
        !string_or_absent(hdr, "typ") || !string_or_absent(hdr, "cty") ||
        json_object_get(hdr, "crit")) {
        json_decref(hdr);
        return POL_JWT_E_MALFORMED;
    }
    pol_jwt_alg_t alg = pol_jwt_alg_from_name(json_string_value(alg_j), json_string_length(alg_j));
    const pol_jwk_t *cand[POL_JWT_MAX_TRIES];
    int n = POL_JWT_E_ALG;
    if (alg != POL_JWT_ALG_NONE && (r->algs & POL_JWT_ALG_BIT(alg)))
        n = candidates(ks, alg, kid_j ? json_string_value(kid_j) : NULL,
                       kid_j ? json_string_length(kid_j) : 0, cand);
    json_decref(hdr);
    if (n < 0)
        return n;

    /* The payload is decoded (syntax) before and parsed (meaning) after the signature check. */
    long paylen = pol_b64url_decode(d1 + 1, plen, part, sizeof(part));
    unsigned char sig[SIG_MAX];
    long siglen = pol_b64url_decode(sig_s, slen, sig, sizeof(sig));
    if (paylen <= 0 || siglen <= 0)
        return POL_JWT_E_MALFORMED;
    const mesh_crypto_t *C = mesh_crypto(NULL, 0);
    if (!C)
        return POL_JWT_E_INTERNAL;
    int good = 0, internal = 0;
    for (int i = 0; i < n && !good; i++) {
        int v = signature_ok(C, cand[i], alg, sig, (size_t)siglen, tok, (size_t)(d2 - tok));
        good = v == 1;
        internal |= v < 0;
    }
    C->err_clear_error();
    if (!good)
        return internal ? POL_JWT_E_INTERNAL : POL_JWT_E_SIGNATURE;

    json_t *payload = json_object_part(part, paylen);
    if (!payload)
        return POL_JWT_E_MALFORMED;
    pol_jwt_claims_t local, *c = out ? out : &local;
    c->used = 0;
    c->n_extra = 0;
    c->alg = (uint8_t)alg;
    c->exp = c->nbf = c->iat = 0;
    c->sub_off = c->iss_off = POL_JWT_ABSENT;
    int rc = check_claims(payload, r, now, c);
    json_decref(payload);
    return rc;
}

int pol_jwt_bearer(const char *value, size_t len, const char **tok, size_t *toklen)
{
    size_t i = 0;
    while (i < len && (value[i] == ' ' || value[i] == '\t'))
        i++;
    if (len - i < 7 || strncasecmp(value + i, "bearer", 6) != 0 ||
        (value[i + 6] != ' ' && value[i + 6] != '\t'))
        return -1;
    i += 7;
    while (i < len && (value[i] == ' ' || value[i] == '\t'))
        i++;
    size_t end = len;
    while (end > i && (value[end - 1] == ' ' || value[end - 1] == '\t'))
        end--;
    if (end == i || memchr(value + i, ' ', end - i) || memchr(value + i, '\t', end - i))
        return -1;
    *tok = value + i;
    *toklen = end - i;
    return 0;
}

int pol_jwt_verify(const pol_keyset_t *ks, const char *token, size_t len,
                   const pol_jwt_rules_t *rules, int64_t now_s, pol_jwt_claims_t *out, char *reason,
                   size_t rlen)
{
    int rc = ks && rules ? verify(ks, token, len, rules, now_s, out) : POL_JWT_E_INTERNAL;
    if (reason && rlen)
        snprintf(reason, rlen, "%s", pol_jwt_reason(rc));
    return rc;
}
