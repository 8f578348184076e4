/*
 * policy/b64url.h: strict base64url (RFC 4648 section 5) decoding for JOSE (JWS, JWK).
 *
 * JOSE says base64url "with all trailing '=' characters omitted" (RFC 7515 section 2), so this
 * decoder accepts exactly that and nothing else: only A-Z a-z 0-9 '-' '_', no padding, no
 * whitespace, no '+' or '/', and the unused low bits of the last character must be zero (one
 * canonical text per byte string, so a token cannot be re-spelled and still verify).
 * common/base64.h is the lenient decoder for other uses.
 */
#ifndef POL_B64URL_H
#define POL_B64URL_H

#include <stddef.h>

/** Bytes that decoding len characters gives (len must not be 1 mod 4). */
static inline size_t pol_b64url_decoded_len(size_t len)
{
    return len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
}

/**
 * Decodes len characters of unpadded base64url into out (cap bytes). Returns the decoded
 * length, or -1 when the text is not strict base64url (a bad character, padding, length 1 mod 4,
 * non-zero trailing bits) or does not fit cap. Allocates nothing.
 */
long pol_b64url_decode(const char *in, size_t len, unsigned char *out, size_t cap);

#endif
