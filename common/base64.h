/*
 * common/base64.h: base64 (RFC 4648), both alphabets on input, the standard one on output.
 *
 * Used for etcd's JSON gateway (keys and values travel base64-encoded) and for gossip key files
 * (one base64 key a line). OpenSSL has an encoder, but meshd does not link libcrypto (it is
 * opened only for gossip encryption: common/crypto_lib.h), so this small one is ours.
 */
#ifndef MESH_BASE64_H
#define MESH_BASE64_H

#include <stddef.h>

/** Characters the encoding of n bytes takes (without the NUL). */
size_t mesh_b64_len(size_t n);

/** Encodes n bytes into out (mesh_b64_len(n) + 1 bytes, NUL-terminated), padded. */
void mesh_b64_encode(const void *in, size_t n, char *out);

/**
 * Decodes len characters (padding optional; '+' '/' and the URL-safe '-' '_' both accepted)
 * into out (cap bytes). Returns the decoded length; -1 when the text is not base64 (with
 * strict, also when the unused trailing bits are not zero: a non-canonical encoding); cap + 1
 * when it decodes to more than cap bytes.
 */
long mesh_b64_decode(const char *in, size_t len, void *out, size_t cap, int strict);

#endif
