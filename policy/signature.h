/*
 * policy/signature.h: request signatures: HMAC-SHA256 with a per-client secret over the call's
 * method path, a timestamp, a nonce and the digest of the request body.
 *
 * The client sends one header (docs/policy-signature.md has a Python example):
 *     x-meshd-signature: keyId=<client>,ts=<unix seconds>,nonce=<nonce>,sig=<base64 HMAC>
 * The four parameters appear once each, in any order, separated by ',' (spaces around them
 * allowed); an unknown parameter is malformed. keyId: 1..128 of [A-Za-z0-9._:@-]; ts: decimal
 * digits (at most 19); nonce: 16..64 printable ASCII characters other than ',' and space; sig:
 * base64 (standard or URL-safe alphabet, padding optional) of the 32-byte HMAC.
 *
 * Canonical string (what is signed):
 *     "v1\n" <path> "\n" <ts as sent> "\n" <nonce> "\n" <lowercase hex SHA-256 of the body>
 * where path is the HTTP/2 :path (`/pkg.Service/Method`) and the body is the request's DATA
 * bytes as sent on the wire (gRPC's length-prefixed messages, 5-byte prefixes included).
 *
 * Secrets file: one `client-id secret` per line, the secret in base64 (16..64 bytes decoded;
 * `openssl rand -base64 32`); blank lines and lines starting with '#' are ignored; errors give
 * file:line. It loads into an immutable, reference-counted table that workers share.
 *
 * pol_sig_verify() checks, in this order: the header's form (malformed signature), the
 * timestamp within +-window of now (expired), the client (unknown client), the HMAC in
 * constant time (bad signature) and last the nonce, recorded in the node's nonce cache only
 * for a request whose signature verified (replayed, or replay cache full). Nothing here
 * allocates per call.
 */
#ifndef POL_SIGNATURE_H
#define POL_SIGNATURE_H

#include <stddef.h>
#include <stdint.h>

#include "policy/nonce_cache.h"
#include "policy/sig_digest.h"

/** The request header that carries the signature. */
#define POL_SIG_HEADER "x-meshd-signature"
/** Longest client id (keyId). */
#define POL_SIG_CLIENT_MAX 128
/** Nonce length bounds. */
#define POL_SIG_NONCE_MIN 16
#define POL_SIG_NONCE_MAX 64
/** Secret length bounds (decoded bytes). */
#define POL_SIG_SECRET_MIN 16
#define POL_SIG_SECRET_MAX 64
/** Default timestamp window (seconds either side of now). */
#define POL_SIG_WINDOW_DEFAULT 300

/** What pol_sig_verify() decided. */
typedef enum {
    POL_SIG_OK = 0,
    POL_SIG_MISSING,        /* "missing signature": no header */
    POL_SIG_MALFORMED,      /* "malformed signature" */
    POL_SIG_EXPIRED,        /* "expired": timestamp outside the window */
    POL_SIG_UNKNOWN_CLIENT, /* "unknown client" */
    POL_SIG_BAD_SIGNATURE,  /* "bad signature" */
    POL_SIG_REPLAYED,       /* "replayed": nonce seen within the window */
    POL_SIG_CACHE_FULL,     /* "replay cache full": no room to remember the nonce */
    POL_SIG_INTERNAL,       /* "signature check unavailable": no libcrypto, or no nonce cache */
} pol_sig_result_t;

/** The reason text of a result (static), e.g. "expired". */
const char *pol_sig_reason(pol_sig_result_t r);

/** The header's parameters; the pointers point into the header value. */
typedef struct pol_sig_header {
    const char *client;
    size_t client_len;
    const char *ts; /* digits as sent (they are signed as sent) */
    size_t ts_len;
    int64_t ts_value;
    const char *nonce;
    size_t nonce_len;
    uint8_t sig[POL_SHA256_LEN];
} pol_sig_header_t;

/** Parses an x-meshd-signature value. 0, or -1 when malformed. */
int pol_sig_header_parse(const char *v, size_t len, pol_sig_header_t *out);

/** A loaded secrets file (immutable; shared by reference). */
typedef struct pol_sig_secrets pol_sig_secrets_t;

/** Parses a secrets file's text; name is used in errors ("name:line: ..."). NULL on error. */
pol_sig_secrets_t *pol_sig_secrets_parse(const char *text, size_t len, const char *name, char *err,
                                         size_t errlen);

/** Reads and parses a secrets file. NULL with err ("path:line: ..." or "path: ...") on error. */
pol_sig_secrets_t *pol_sig_secrets_load(const char *path, char *err, size_t errlen);

/** Takes a reference (thread-safe); returns s. */
pol_sig_secrets_t *pol_sig_secrets_ref(pol_sig_secrets_t *s);

/** Drops a reference; the last one wipes the secrets and frees the table. NULL is fine. */
void pol_sig_secrets_unref(pol_sig_secrets_t *s);

/** Number of clients in the table. */
size_t pol_sig_secrets_count(const pol_sig_secrets_t *s);

/** The client's secret (and its length), or NULL when the client is unknown. */
const uint8_t *pol_sig_secrets_find(const pol_sig_secrets_t *s, const char *client, size_t len,
                                    size_t *secret_len);

/** The request body's digest, fed chunk by chunk (see policy/sig_digest.h). */
typedef pol_sha256_stream_t pol_sig_body_t;
/** Starts a body digest (b zeroed or finished). 0 or -1. */
int pol_sig_body_init(pol_sig_body_t *b);
/** Feeds a DATA chunk. 0 or -1. */
int pol_sig_body_update(pol_sig_body_t *b, const void *d, size_t n);
/** Writes the digest; b is done. 0 or -1. */
int pol_sig_body_final(pol_sig_body_t *b, uint8_t out[POL_SHA256_LEN]);
/** Drops a body digest in progress. */
void pol_sig_body_abort(pol_sig_body_t *b);

/**
 * HMAC-SHA256 of the canonical string, with secret, into mac. 0 or -1 (no libcrypto).
 * Exposed for tests and tools; pol_sig_verify uses it.
 */
int pol_sig_compute(const uint8_t *secret, size_t secret_len, const char *path, size_t path_len,
                    const char *ts, size_t ts_len, const char *nonce, size_t nonce_len,
                    const uint8_t body_sha256[POL_SHA256_LEN], uint8_t mac[POL_SHA256_LEN]);

/**
 * Verifies a call's signature: header is the x-meshd-signature value (NULL when absent), path
 * the :path, body_sha256 the body's digest, now in unix seconds, window in seconds. On
 * success the nonce is recorded in nonces. hdr (optional) receives the parsed header, e.g.
 * for the client id in audit events (also on failure after parsing). A NULL secrets table
 * knows no client; a NULL nonce cache fails every call (POL_SIG_INTERNAL).
 */
pol_sig_result_t pol_sig_verify(const char *header, size_t header_len, const char *path,
                                size_t path_len, const uint8_t body_sha256[POL_SHA256_LEN],
                                int64_t now, int64_t window, const pol_sig_secrets_t *secrets,
                                pol_nonce_cache_t *nonces, pol_sig_header_t *hdr);

#endif
