/*
 * policy/sig_digest.h: SHA-256 and HMAC-SHA256 for the request signature (policy/signature.h)
 * and the mesh identity token (policy/mesh_identity.h), through libcrypto's table
 * (common/crypto_lib.h).
 *
 * Nothing here allocates per call. Every thread keeps one EVP_MD_CTX for one-shot digests and
 * HMACs, and a small free list of contexts for digests that span several events (a request body
 * fed chunk by chunk); a thread's contexts are freed when it exits. HMAC is built on the digest
 * (RFC 2104: H((K ^ opad) || H((K ^ ipad) || m))) so that it streams over several pieces and
 * reuses the thread's context instead of allocating one as libcrypto's one-shot HMAC() does.
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

/** A digest in progress (a request body fed chunk by chunk). Zero it before first use. */
typedef struct pol_sha256_stream {
    void *ctx; /* EVP_MD_CTX, borrowed from the thread's free list */
} pol_sha256_stream_t;

/** 0 when libcrypto is loaded, else -1 and err says why. */
int pol_digest_ready(char *err, size_t errlen);

/** SHA-256 of the pieces into out. 0, or -1 when libcrypto is not available or fails. */
int pol_sha256(const pol_iov_t *iov, int niov, uint8_t out[POL_SHA256_LEN]);

/** HMAC-SHA256 with key over the pieces into out. 0 or -1 (as pol_sha256). */
int pol_hmac_sha256(const void *key, size_t key_len, const pol_iov_t *iov, int niov,
                    uint8_t out[POL_SHA256_LEN]);

/** Whether n bytes at a and b are equal, in time independent of where they differ. */
int pol_ct_equal(const void *a, const void *b, size_t n);

/** Lowercase hex of n bytes into out (2n + 1 bytes, NUL-terminated). */
void pol_hex(const uint8_t *in, size_t n, char *out);

/** Starts a streamed SHA-256 (s must be zeroed or finished). 0 or -1. */
int pol_sha256_begin(pol_sha256_stream_t *s);

/** Feeds n bytes. 0 or -1 (also when s was not begun). */
int pol_sha256_update(pol_sha256_stream_t *s, const void *d, size_t n);

/** Writes the digest and returns the context to the thread; s is zeroed. 0 or -1. */
int pol_sha256_finish(pol_sha256_stream_t *s, uint8_t out[POL_SHA256_LEN]);

/** Gives up a digest in progress (a call that ended early); harmless on a zeroed s. */
void pol_sha256_abort(pol_sha256_stream_t *s);

#endif
