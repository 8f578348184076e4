/*
 * policy/sig_digest.h: SHA-256 and HMAC-SHA256 for the request signature (policy/signature.h)
 * and the mesh identity token (policy/mesh_identity.h), through libcrypto's table
 * (common/crypto_lib.h).
 *
 * Nothing here allocates. The digest runs on libcrypto's SHA256_Init/Update/Final with the state
 * in the caller's memory (on the stack, or in a call's pol_sha256_stream_t for a body fed chunk
 * by chunk). The EVP interface was measured to allocate twice per EVP_DigestInit_ex on OpenSSL
 * 3.0 even on a reused EVP_MD_CTX (bench/policy_sig), and HMAC() allocates a context per call,
 * so HMAC is built here on the digest (RFC 2104: H((K ^ opad) || H((K ^ ipad) || m))), over
 * several pieces without copying them together.
 */
#ifndef POL_SIG_DIGEST_H
#define POL_SIG_DIGEST_H

#include <stddef.h>
#include <stdint.h>

/** Bytes of a SHA-256 digest and of an HMAC-SHA256. */
#define POL_SHA256_LEN 32

/** Longest HMAC key used as is (SHA-256's block size); a longer key is hashed first. */
#define POL_HMAC_BLOCK 64

/** One piece of a message. */
typedef struct pol_iov {
    const void *p;
    size_t n;
} pol_iov_t;

/** A digest in progress (a request body fed chunk by chunk): plain memory in the call's state,
 *  nothing to free. Zero it before first use. */
typedef struct pol_sha256_stream {
    union {
        uint8_t bytes[128]; /* libcrypto's SHA256_CTX (112 bytes) */
        uint64_t align;
    } state;
    int active; /* begun and not finished */
} pol_sha256_stream_t;

/** An HMAC-SHA256 key made ready: the digest states after the key's inner and outer pad
 *  blocks, so each HMAC with it hashes two blocks fewer. Plain memory; wipe it when done. */
typedef struct pol_hmac_key {
    union {
        uint8_t bytes[128];
        uint64_t align;
    } inner, outer;
} pol_hmac_key_t;

/** 0 when libcrypto is loaded, else -1 and err says why. */
int pol_digest_ready(char *err, size_t errlen);

/** SHA-256 of the pieces into out. 0, or -1 when libcrypto is not available or fails. */
int pol_sha256(const pol_iov_t *iov, int niov, uint8_t out[POL_SHA256_LEN]);

/** HMAC-SHA256 with key over the pieces into out. 0 or -1 (as pol_sha256). */
int pol_hmac_sha256(const void *key, size_t key_len, const pol_iov_t *iov, int niov,
                    uint8_t out[POL_SHA256_LEN]);

/** Prepares k from a key of any length. 0 or -1 (no libcrypto). */
int pol_hmac_key_init(pol_hmac_key_t *k, const void *key, size_t key_len);

/** HMAC-SHA256 with a prepared key over the pieces into out. 0 or -1. */
int pol_hmac_sha256_with(const pol_hmac_key_t *k, const pol_iov_t *iov, int niov,
                         uint8_t out[POL_SHA256_LEN]);

/** Wipes a prepared key. */
void pol_hmac_key_wipe(pol_hmac_key_t *k);

/** Whether n bytes at a and b are equal, in time independent of where they differ. */
int pol_ct_equal(const void *a, const void *b, size_t n);

/** Lowercase hex of n bytes into out (2n + 1 bytes, NUL-terminated). */
void pol_hex(const uint8_t *in, size_t n, char *out);

/** Starts a streamed SHA-256 (s must be zeroed or finished). 0 or -1. */
int pol_sha256_begin(pol_sha256_stream_t *s);

/** Feeds n bytes. 0 or -1 (also when s was not begun). */
int pol_sha256_update(pol_sha256_stream_t *s, const void *d, size_t n);

/** Writes the digest; s is finished (begin it again to reuse it). 0 or -1. */
int pol_sha256_finish(pol_sha256_stream_t *s, uint8_t out[POL_SHA256_LEN]);

/** Gives up a digest in progress (a call that ended early); harmless on a zeroed s. Nothing
 *  needs freeing either way: this only marks s finished. */
void pol_sha256_abort(pol_sha256_stream_t *s);

#endif
