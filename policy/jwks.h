/*
 * policy/jwks.h: JSON Web Key Sets (RFC 7517) parsed into immutable, shared key sets for JWT
 * verification (policy/jwt.h), and the JWS algorithm names (RFC 7518) both sides use.
 *
 * A key set is built once (from a JWKS file, or a JWKS URL fetched on the control loop) and
 * then shared read-only by every worker: it is reference counted with C11 atomics and never
 * changes after pol_keyset_parse() returns. Each key's OpenSSL EVP_PKEY is built at parse time,
 * so verification only uses it. A new key set gets a new generation number (process-wide,
 * increasing), which is how caches of verified tokens (policy/jwt_cache.h) notice a rotation.
 *
 * Keys understood: RSA (n, e; 2048 to 16384 bits), EC (P-256, P-384; x, y of exactly the field
 * size, the point must be on the curve), OKP Ed25519 (x), oct (k, at least 32 bytes, for HS*).
 * "kid", "alg" and "use" are honoured: a key whose "use" is not "sig" is left out without
 * complaint (it is for encryption); a key with an "alg" is used for that algorithm only.
 *
 * Bad keys: the document must be a JSON object with a "keys" array (duplicate members anywhere
 * make it malformed). A key that cannot be used (unknown kty or curve, missing or malformed
 * members, too small) is skipped and described; the good keys are kept. pol_keyset_parse()
 * fails only when the document itself is malformed or no usable key remains; otherwise err
 * holds the skipped keys' descriptions ("" when none) and pol_keyset_skipped() counts them.
 */
#ifndef POL_JWKS_H
#define POL_JWKS_H

#include <stddef.h>
#include <stdint.h>

/** The JWS algorithms meshd verifies; POL_JWT_ALG_NONE stands for "none or unknown". */
typedef enum {
    POL_JWT_ALG_NONE = 0,
    POL_JWT_HS256,
    POL_JWT_HS384,
    POL_JWT_HS512,
    POL_JWT_RS256,
    POL_JWT_RS384,
    POL_JWT_RS512,
    POL_JWT_PS256,
    POL_JWT_PS384,
    POL_JWT_PS512,
    POL_JWT_ES256,
    POL_JWT_ES384,
    POL_JWT_EDDSA,
    POL_JWT_ALG_COUNT
} pol_jwt_alg_t;

/** Bit of alg in an algorithm mask (pol_jwt_rules_t.algs). */
#define POL_JWT_ALG_BIT(alg) (1u << (alg))

/** Every algorithm above. */
#define POL_JWT_ALGS_ALL (((1u << POL_JWT_ALG_COUNT) - 1) & ~1u)

/** The algorithm named name (len bytes; "RS256", "EdDSA", ...), or POL_JWT_ALG_NONE for "none"
 *  and anything unknown. Case-sensitive, as RFC 7515 says. */
pol_jwt_alg_t pol_jwt_alg_from_name(const char *name, size_t len);

/** The JOSE name of alg ("RS256"), or "none". */
const char *pol_jwt_alg_name(pol_jwt_alg_t alg);

/** Key types. */
typedef enum {
    POL_KTY_RSA = 1,
    POL_KTY_EC_P256,
    POL_KTY_EC_P384,
    POL_KTY_ED25519,
    POL_KTY_OCT,
} pol_kty_t;

/** Longest "kid" accepted in a key set (bytes); a longer one makes the key bad. */
#define POL_JWK_KID_MAX 128

/** Most keys in one key set; a document with more is rejected. */
#define POL_KEYSET_MAX_KEYS 256

/** Largest JWKS document accepted (bytes). */
#define POL_KEYSET_MAX_DOC (1024 * 1024)

/** One usable key. Read-only once the set is built. */
typedef struct {
    pol_kty_t kty;
    /** The "kid", NUL-terminated; has_kid is 0 when the key had none. */
    char kid[POL_JWK_KID_MAX + 1];
    uint8_t has_kid;
    /** The key's "alg", or POL_JWT_ALG_NONE when it did not say (then any algorithm of its
     *  type may use it). */
    pol_jwt_alg_t alg;
    /** RSA, EC, Ed25519: the public key (an EVP_PKEY *; void here so that this header does not
     *  pull in OpenSSL). */
    void *pkey;
    /** oct: the secret. */
    unsigned char *secret;
    size_t secret_len;
} pol_jwk_t;

/** An immutable, reference-counted key set. */
typedef struct pol_keyset pol_keyset_t;

/**
 * Parses the JWKS document json (len bytes, need not be NUL-terminated). Returns a key set with
 * one reference, or NULL with the reason in err. On success err holds "" or the description of
 * the skipped keys ("key 2 (kid \"a\"): RSA \"n\" is not base64url; key 4: unsupported kty
 * \"foo\""). Needs libcrypto (common/crypto_lib.h) for any key but oct.
 */
pol_keyset_t *pol_keyset_parse(const char *json, size_t len, char *err, size_t errlen);

/** Reads the JWKS file at path and parses it (pol_keyset_parse()); errors name the path. This
 *  is the only I/O here: a blocking read, for the control loop or start-up. */
pol_keyset_t *pol_keyset_load_file(const char *path, char *err, size_t errlen);

/** Takes one more reference (any thread); returns ks. */
pol_keyset_t *pol_keyset_ref(pol_keyset_t *ks);

/** Drops one reference (any thread); the last one frees the set. NULL is ignored. */
void pol_keyset_unref(pol_keyset_t *ks);

/** Number of usable keys. */
size_t pol_keyset_count(const pol_keyset_t *ks);

/** The i-th usable key (i < pol_keyset_count()), in document order. */
const pol_jwk_t *pol_keyset_key(const pol_keyset_t *ks, size_t i);

/** Keys of the document that were skipped as bad (not counting "use" other than "sig"). */
size_t pol_keyset_skipped(const pol_keyset_t *ks);

/** The set's generation: unique per parsed set in this process, increasing, never 0. */
uint64_t pol_keyset_generation(const pol_keyset_t *ks);

/** Nonzero when key can verify alg: the type fits the algorithm (oct for HS*, RSA for RS* and
 *  PS*, P-256 for ES256, P-384 for ES384, Ed25519 for EdDSA) and the key's own "alg", if any,
 *  is alg. */
int pol_jwk_fits(const pol_jwk_t *key, pol_jwt_alg_t alg);

#endif
