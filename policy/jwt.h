/*
 * policy/jwt.h: verifying JSON Web Tokens (RFC 7519, compact JWS of RFC 7515) against a key set
 * (policy/jwks.h) and a set of rules, sans I/O: the caller passes the time.
 *
 * Algorithms: HS256/384/512, RS256/384/512, PS256/384/512, ES256, ES384, EdDSA (Ed25519).
 * "none" and anything else are rejected. The checks, in order, each with its stable reason:
 *
 *   token too long            longer than rules->max_len (default POL_JWT_TOKEN_MAX)
 *   malformed token           not three strict base64url parts (no padding, canonical), header
 *                             or payload not a JSON object, duplicate members, a non-string
 *                             "alg"/"kid"/"typ"/"cty", a "crit" header, a non-numeric
 *                             exp/nbf/iat
 *   algorithm not allowed     "none", unknown, or not in rules->algs
 *   unknown key               no key with the token's "kid" (keys with "use" other than "sig"
 *                             are not in the set); without a "kid", no key of the algorithm's
 *                             type, or more than POL_JWT_MAX_TRIES of them
 *   wrong key type            the "kid" names a key that does not fit the algorithm (an HS
 *                             token naming an RSA key, ES384 naming a P-256 key, a key whose
 *                             own "alg" differs); HMAC only ever uses oct keys' secrets
 *   bad signature             the signature does not verify (or has the wrong length)
 *   expired                   exp <= now - skew
 *   missing exp               no exp and rules->require_exp
 *   not yet valid             nbf > now + skew
 *   issued in the future      iat > now + skew
 *   wrong issuer              rules->issuers set and iss missing or not one of them
 *   wrong audience            rules->audiences set and aud (a string or an array of strings)
 *                             missing or sharing none of them
 *   bad claim                 sub or a forwarded claim is not a string/number/boolean (arrays
 *                             of them are joined with ','), or contains a control character
 *   claim too long            the forwarded claims do not fit POL_JWT_CLAIMS_BUF
 *
 * The signature is checked before the payload is parsed. Without a "kid" every fitting key is
 * tried (at most POL_JWT_MAX_TRIES). Embedded keys ("jwk", "jku", "x5u", "x5c" headers) are never
 * used. A reason never contains the token, its signature or any key material.
 *
 * Threads: any number of threads may verify with the same key set at once. Allocation: none of
 * our own; JSON parsing (jansson) and libcrypto allocate inside during a verification. For a
 * repeated token use the cache (policy/jwt_cache.h): a hit is a hash and a compare.
 */
#ifndef POL_JWT_H
#define POL_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "policy/jwks.h"

/** Default and largest token length accepted (bytes). */
#define POL_JWT_TOKEN_MAX 8192

/** Most configured claims forwarded besides sub and iss. */
#define POL_JWT_EXTRA_MAX 8

/** Bytes for all forwarded claim strings of one token (sub, iss and the extras, each with its
 *  NUL); a token whose claims do not fit is rejected ("claim too long"). */
#define POL_JWT_CLAIMS_BUF 1024

/** Without a "kid", at most this many keys are tried. */
#define POL_JWT_MAX_TRIES 4

/** Result codes of pol_jwt_verify(); pol_jwt_reason() names them. */
typedef enum {
    POL_JWT_OK = 0,
    POL_JWT_E_TOO_LONG = -1,
    POL_JWT_E_MALFORMED = -2,
    POL_JWT_E_ALG = -3,
    POL_JWT_E_UNKNOWN_KEY = -4,
    POL_JWT_E_KEY_TYPE = -5,
    POL_JWT_E_SIGNATURE = -6,
    POL_JWT_E_EXPIRED = -7,
    POL_JWT_E_NO_EXP = -8,
    POL_JWT_E_NOT_YET_VALID = -9,
    POL_JWT_E_IAT_FUTURE = -10,
    POL_JWT_E_ISSUER = -11,
    POL_JWT_E_AUDIENCE = -12,
    POL_JWT_E_BAD_CLAIM = -13,
    POL_JWT_E_CLAIM_TOO_LONG = -14,
    /** libcrypto could not be loaded or failed internally. */
    POL_JWT_E_INTERNAL = -15,
} pol_jwt_result_t;

/** The stable reason for a result code ("expired", "bad signature", ...; "ok" for 0). */
const char *pol_jwt_reason(int code);

/** What a token must satisfy. The strings are the caller's and must outlive the rules. */
typedef struct {
    /** Allowed algorithms: a mask of POL_JWT_ALG_BIT(alg). */
    uint32_t algs;
    /** Accepted issuers; n_issuers == 0 accepts any (and no) iss. */
    const char *const *issuers;
    size_t n_issuers;
    /** Accepted audiences; n_audiences == 0 does not look at aud. */
    const char *const *audiences;
    size_t n_audiences;
    /** Clock skew tolerated on exp, nbf and iat, in seconds (0..86400). */
    int64_t skew_s;
    /** Nonzero: a token without exp is rejected ("missing exp"). */
    int require_exp;
    /** Claims copied into pol_jwt_claims_t besides sub and iss (at most POL_JWT_EXTRA_MAX). */
    const char *const *claims;
    size_t n_claims;
    /** Longest token accepted (1..POL_JWT_TOKEN_MAX; 0 means POL_JWT_TOKEN_MAX). */
    size_t max_len;
    /** Identifies these rules for the token cache: unique per distinct rules in the process.
     *  pol_jwt_rules_init() assigns a fresh one; change it (pol_jwt_rules_new_generation())
     *  whenever the rules change. */
    uint64_t generation;
} pol_jwt_rules_t;

/** Fills r with defaults: every algorithm, any issuer, no audience check, 60 s skew, exp
 *  required, no extra claims, POL_JWT_TOKEN_MAX, and a fresh generation. */
void pol_jwt_rules_init(pol_jwt_rules_t *r);

/** A new process-unique rules generation (never 0). */
uint64_t pol_jwt_rules_new_generation(void);

/** Checks r; on a problem writes it to err and returns -1. */
int pol_jwt_rules_check(const pol_jwt_rules_t *r, char *err, size_t errlen);

/** The claims of a verified token: a fixed-size value (copy it freely). Strings live in buf and
 *  are read through the accessors below. */
typedef struct {
    /** exp, nbf, iat in seconds; the has_* flags say whether the token had them. */
    int64_t exp, nbf, iat;
    uint8_t has_exp, has_nbf, has_iat;
    /** The algorithm that verified the token. */
    uint8_t alg;
    /** Number of extra claims (rules->n_claims). */
    uint8_t n_extra;
    /** Offsets into buf of sub, iss and each extra claim; 0xFFFF when absent. */
    uint16_t sub_off, iss_off;
    uint16_t extra_off[POL_JWT_EXTRA_MAX];
    /** Bytes of buf in use. */
    uint16_t used;
    char buf[POL_JWT_CLAIMS_BUF];
} pol_jwt_claims_t;

#define POL_JWT_ABSENT 0xFFFFu

/** The token's sub, or NULL when it had none. */
static inline const char *pol_jwt_claims_sub(const pol_jwt_claims_t *c)
{
    return c->sub_off == POL_JWT_ABSENT ? NULL : c->buf + c->sub_off;
}

/** The token's iss, or NULL. */
static inline const char *pol_jwt_claims_iss(const pol_jwt_claims_t *c)
{
    return c->iss_off == POL_JWT_ABSENT ? NULL : c->buf + c->iss_off;
}

/** The value of rules->claims[i] as text (numbers and booleans as in JSON, arrays joined with
 *  ','), or NULL when the token did not have it. */
static inline const char *pol_jwt_claims_extra(const pol_jwt_claims_t *c, size_t i)
{
    return i >= c->n_extra || c->extra_off[i] == POL_JWT_ABSENT ? NULL : c->buf + c->extra_off[i];
}

/**
 * Finds the token in an Authorization header value ("Bearer <token>", scheme case-insensitive,
 * spaces around the token allowed, RFC 6750). Returns 0 with *tok and *toklen set, or -1 when
 * the value is not a bearer credential (another scheme, no token, or a space inside it).
 */
int pol_jwt_bearer(const char *value, size_t len, const char **tok, size_t *toklen);

/**
 * Verifies token (len bytes, need not be NUL-terminated) with the keys of ks under rules at
 * now_s (Unix seconds). Returns POL_JWT_OK and fills out (may be NULL), or a negative
 * pol_jwt_result_t with its reason copied to reason (rlen bytes; may be NULL).
 */
int pol_jwt_verify(const pol_keyset_t *ks, const char *token, size_t len,
                   const pol_jwt_rules_t *rules, int64_t now_s, pol_jwt_claims_t *out, char *reason,
                   size_t rlen);

#endif
