/*
 * policy/mesh_identity.h: the identity token that carries a verified caller identity from one
 * meshd node to the next.
 *
 * A signature or a JWT is verified once, at the first meshd node on the path (or ext_authz
 * decides there). That node mints a token naming the identity; the next node verifies the token
 * and trusts the identity it names instead of checking again (so retries and hedges never meet
 * the nonce cache twice). Any token that does not verify (absent, malformed, bad MAC, expired,
 * minted for another method) is stripped and the call is anonymous.
 *
 * Header and format (one header, one line):
 *     x-meshd-identity-token: v1.<base64url payload>.<base64url HMAC-SHA256>
 * The HMAC is over the ASCII text "v1.<base64url payload>" with the mesh secret. base64url
 * has no padding. The payload is text, one `name=value` per line ('\n' after each):
 *     exp=<unix seconds>      required: minted at now + ttl (default 30 s)
 *     sub=<subject>           required, 1..256 bytes
 *     src=<how>               optional: jwt, signature, ext_authz ... (1..32 bytes)
 *     path=<:path>            optional: the call it was minted for; verify then demands it
 *     c.<name>=<value>        0..8 claims; name 1..63 of [A-Za-z0-9_.-], value 0..255 bytes
 * No value may hold '\n' or NUL. The header name differs from the app-facing `x-meshd-identity`
 * (the plain subject the engine gives the app) so that neither is mistaken for the other.
 *
 * Keys: a current and optionally a previous mesh secret (base64, 32..64 bytes). Mint uses the
 * current one; verify accepts either, so secrets rotate without a flag day: give every node
 * the new secret as current and the old as previous, then drop the previous.
 */
#ifndef POL_MESH_IDENTITY_H
#define POL_MESH_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#include "policy/sig_digest.h"

/** The source of an identity a peer certificate proved (a SPIFFE ID: policy/call_identity.h). */
#define POL_IDENTITY_SOURCE_MTLS "mtls"
/** The header between meshd nodes. */
#define POL_IDENTITY_TOKEN_HEADER "x-meshd-identity-token"
/** Default token lifetime in seconds, and the largest allowed. */
#define POL_IDENTITY_TTL_DEFAULT 30
#define POL_IDENTITY_TTL_MAX     3600
/** Mesh secret length bounds (decoded bytes). */
#define POL_IDENTITY_SECRET_MIN 32
#define POL_IDENTITY_SECRET_MAX 64
/** Field bounds. */
#define POL_IDENTITY_SUB_MAX         256
#define POL_IDENTITY_SOURCE_MAX      32
#define POL_IDENTITY_PATH_MAX        1024
#define POL_IDENTITY_CLAIMS_MAX      8
#define POL_IDENTITY_CLAIM_NAME_MAX  63
#define POL_IDENTITY_CLAIM_VALUE_MAX 255
/** Largest payload and token; a buffer of POL_IDENTITY_TOKEN_MAX + 1 always fits a token. */
#define POL_IDENTITY_PAYLOAD_MAX 4096
#define POL_IDENTITY_TOKEN_MAX   (3 + (POL_IDENTITY_PAYLOAD_MAX + 2) / 3 * 4 + 1 + 43)

/** One claim carried with the identity. */
typedef struct pol_identity_claim {
    char name[POL_IDENTITY_CLAIM_NAME_MAX + 1];
    char value[POL_IDENTITY_CLAIM_VALUE_MAX + 1];
} pol_identity_claim_t;

/** A caller identity (NUL-terminated strings; source and claims may be empty). */
typedef struct pol_identity {
    char sub[POL_IDENTITY_SUB_MAX + 1];
    char source[POL_IDENTITY_SOURCE_MAX + 1];
    int nclaims;
    pol_identity_claim_t claims[POL_IDENTITY_CLAIMS_MAX];
    int64_t exp;      /* verify: the token's expiry */
    int previous_key; /* verify: 1 when the previous secret matched */
} pol_identity_t;

/** The mesh secrets and the token lifetime (plain data: copy it into a policy snapshot). */
typedef struct pol_identity_keys {
    uint8_t current[POL_IDENTITY_SECRET_MAX];
    size_t current_len;
    uint8_t previous[POL_IDENTITY_SECRET_MAX];
    size_t previous_len;                    /* 0: none */
    int64_t ttl;                            /* seconds */
    pol_hmac_key_t current_hk, previous_hk; /* the secrets prepared for HMAC */
} pol_identity_keys_t;

/** What pol_identity_verify() found. */
typedef enum {
    POL_IDENTITY_OK = 0,
    POL_IDENTITY_ABSENT,        /* "absent": no header */
    POL_IDENTITY_MALFORMED,     /* "malformed" */
    POL_IDENTITY_BAD_SIGNATURE, /* "bad signature": neither secret made this MAC */
    POL_IDENTITY_EXPIRED,       /* "expired" */
    POL_IDENTITY_WRONG_PATH,    /* "minted for another method" */
    POL_IDENTITY_INTERNAL,      /* "crypto unavailable" */
    POL_IDENTITY_UNTRUSTED,     /* "no mesh secret and not over mTLS from a meshd node" */
} pol_identity_result_t;

/** The reason text of a result (static). */
const char *pol_identity_reason(pol_identity_result_t r);

/**
 * Sets k from base64 secrets (previous may be NULL or "") and a ttl in seconds (0: the
 * default). 0, or -1 with err (also when libcrypto cannot be loaded).
 */
int pol_identity_keys_init(pol_identity_keys_t *k, const char *current_b64,
                           const char *previous_b64, int64_t ttl, char *err, size_t errlen);

/** Wipes the secrets. */
void pol_identity_keys_wipe(pol_identity_keys_t *k);

/**
 * Mints a token for id (sub, source, claims; exp is ignored) valid until now + k->ttl, bound
 * to path when path is not NULL. Writes it NUL-terminated into out (cap bytes). Returns its
 * length, or -1 with err (a field out of bounds or holding '\n' or NUL, out too small, no
 * libcrypto). Allocates nothing.
 */
long pol_identity_mint(const pol_identity_keys_t *k, const pol_identity_t *id, const char *path,
                       size_t path_len, int64_t now, char *out, size_t cap, char *err,
                       size_t errlen);

/**
 * Verifies a token (token NULL when the header is absent) at now for the call's path. On
 * POL_IDENTITY_OK, out holds the identity; otherwise out is zeroed (treat the call as
 * anonymous and strip the header). A token minted without a path is valid for any path.
 */
pol_identity_result_t pol_identity_verify(const pol_identity_keys_t *k, const char *token,
                                          size_t len, const char *path, size_t path_len,
                                          int64_t now, pol_identity_t *out);

/**
 * Mints a token without a MAC ("v1.<payload>.", the MAC part empty) valid until now + ttl
 * seconds (0: the default): for a hop whose channel authenticates the sender (mTLS from a meshd
 * node; policy/call_identity.h), when no mesh secret is configured. Otherwise as
 * pol_identity_mint.
 */
long pol_identity_mint_unsigned(int64_t ttl, const pol_identity_t *id, const char *path,
                                size_t path_len, int64_t now, char *out, size_t cap, char *err,
                                size_t errlen);

/**
 * Reads a token whose sender the channel vouches for (mTLS from a meshd node): the format,
 * expiry and path are checked as by pol_identity_verify, the MAC part (empty, or any MAC) is
 * not. Never use it for a token that came over a channel that does not authenticate its
 * sender.
 */
pol_identity_result_t pol_identity_read(const char *token, size_t len, const char *path,
                                        size_t path_len, int64_t now, pol_identity_t *out);

#endif
