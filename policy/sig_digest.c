/*
 * policy/sig_digest.c: SHA-256 and HMAC-SHA256 with the state in the caller's memory (see
 * policy/sig_digest.h).
 */
#include "policy/sig_digest.h"

#include <string.h>

#include "common/crypto_lib.h"

_Static_assert(sizeof(SHA256_CTX) <= sizeof(((pol_sha256_stream_t *)0)->state),
               "pol_sha256_stream_t too small for SHA256_CTX");
_Static_assert(sizeof(SHA256_CTX) <= sizeof(((pol_hmac_key_t *)0)->inner),
               "pol_hmac_key_t too small for SHA256_CTX");
_Static_assert(_Alignof(SHA256_CTX) <= _Alignof(uint64_t), "SHA256_CTX alignment");

int pol_digest_ready(char *err, size_t errlen)
{
    return mesh_crypto(err, errlen) ? 0 : -1;
}

/* SHA-256 of a prefix (optional) and the pieces. */
static int digest(const mesh_crypto_t *C, const void *pre, size_t pre_n, const pol_iov_t *iov,
                  int niov, uint8_t out[POL_SHA256_LEN])
{
    SHA256_CTX c;
    int ok = C->sha256_init(&c) == 1;
    if (ok && pre_n)
        ok = C->sha256_update(&c, pre, pre_n) == 1;
    for (int i = 0; ok && i < niov; i++)
        if (iov[i].n)
            ok = C->sha256_update(&c, iov[i].p, iov[i].n) == 1;
    ok = ok && C->sha256_final(out, &c) == 1;
    explicit_bzero(&c, sizeof(c));
    return ok ? 0 : -1;
}

int pol_sha256(const pol_iov_t *iov, int niov, uint8_t out[POL_SHA256_LEN])
{
    const mesh_crypto_t *C = mesh_crypto(NULL, 0);
    return C ? digest(C, NULL, 0, iov, niov, out) : -1;
}

static SHA256_CTX *state_of(void *bytes)
{
    return (SHA256_CTX *)bytes;
}

int pol_hmac_key_init(pol_hmac_key_t *k, const void *key, size_t key_len)
{
    const mesh_crypto_t *C = mesh_crypto(NULL, 0);
    if (!C)
        return -1;
    memset(k, 0, sizeof(*k));
    uint8_t k0[POL_HMAC_BLOCK] = {0};
    if (key_len > POL_HMAC_BLOCK) {
        pol_iov_t kv = {key, key_len};
        if (digest(C, NULL, 0, &kv, 1, k0) != 0)
            return -1;
    } else if (key_len) {
        memcpy(k0, key, key_len);
    }
    uint8_t ipad[POL_HMAC_BLOCK], opad[POL_HMAC_BLOCK];
    for (int i = 0; i < POL_HMAC_BLOCK; i++) {
        ipad[i] = k0[i] ^ 0x36;
        opad[i] = k0[i] ^ 0x5c;
    }
    SHA256_CTX *in = state_of(k->inner.bytes), *out = state_of(k->outer.bytes);
    int ok = C->sha256_init(in) == 1 && C->sha256_update(in, ipad, sizeof(ipad)) == 1 &&
             C->sha256_init(out) == 1 && C->sha256_update(out, opad, sizeof(opad)) == 1;
    explicit_bzero(k0, sizeof(k0));
    explicit_bzero(ipad, sizeof(ipad));
    explicit_bzero(opad, sizeof(opad));
    if (!ok)
        pol_hmac_key_wipe(k);
    return ok ? 0 : -1;
}

int pol_hmac_sha256_with(const pol_hmac_key_t *k, const pol_iov_t *iov, int niov,
                         uint8_t out[POL_SHA256_LEN])
{
    const mesh_crypto_t *C = mesh_crypto(NULL, 0);
    if (!C)
        return -1;
    SHA256_CTX c;
    uint8_t inner[POL_SHA256_LEN];
    memcpy(&c, k->inner.bytes, sizeof(c));
    int ok = 1;
    for (int i = 0; ok && i < niov; i++)
        if (iov[i].n)
            ok = C->sha256_update(&c, iov[i].p, iov[i].n) == 1;
    ok = ok && C->sha256_final(inner, &c) == 1;
    if (ok) {
        memcpy(&c, k->outer.bytes, sizeof(c));
        ok = C->sha256_update(&c, inner, sizeof(inner)) == 1 && C->sha256_final(out, &c) == 1;
    }
    explicit_bzero(&c, sizeof(c));
    explicit_bzero(inner, sizeof(inner));
    return ok ? 0 : -1;
}

void pol_hmac_key_wipe(pol_hmac_key_t *k)
{
    explicit_bzero(k, sizeof(*k));
}

int pol_hmac_sha256(const void *key, size_t key_len, const pol_iov_t *iov, int niov,
                    uint8_t out[POL_SHA256_LEN])
{
    pol_hmac_key_t k;
    int rc = pol_hmac_key_init(&k, key, key_len);
    if (rc == 0)
        rc = pol_hmac_sha256_with(&k, iov, niov, out);
    pol_hmac_key_wipe(&k);
    return rc;
}

int pol_ct_equal(const void *a, const void *b, size_t n)
{
    const mesh_crypto_t *C = mesh_crypto(NULL, 0);
    if (C)
        return C->memcmp_ct(a, b, n) == 0;
    /* Without libcrypto nothing was computed to compare; still answer in constant time. */
    const volatile uint8_t *x = a, *y = b;
    uint8_t d = 0;
    for (size_t i = 0; i < n; i++)
        d |= x[i] ^ y[i];
    return d == 0;
}

/* The two hex digits of every byte value, so a byte is one 2-byte copy (trace ids are hexed on
 * every call). */
#define HEX_ROW(h)                                                                                 \
    h "0" h "1" h "2" h "3" h "4" h "5" h "6" h "7" h "8" h "9" h "a" h "b" h "c" h "d" h "e" h "f"
static const char HEX_PAIRS[513] = HEX_ROW("0") HEX_ROW("1") HEX_ROW("2") HEX_ROW("3") HEX_ROW("4")
    HEX_ROW("5") HEX_ROW("6") HEX_ROW("7") HEX_ROW("8") HEX_ROW("9") HEX_ROW("a") HEX_ROW("b")
        HEX_ROW("c") HEX_ROW("d") HEX_ROW("e") HEX_ROW("f");
#undef HEX_ROW

void pol_hex(const uint8_t *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        memcpy(out + 2 * i, HEX_PAIRS + 2 * in[i], 2);
    out[2 * n] = '\0';
}

static SHA256_CTX *ctx_of(pol_sha256_stream_t *s)
{
    return (SHA256_CTX *)(void *)s->state.bytes;
}

int pol_sha256_begin(pol_sha256_stream_t *s)
{
    const mesh_crypto_t *C = mesh_crypto(NULL, 0);
    s->active = C && C->sha256_init(ctx_of(s)) == 1;
    return s->active ? 0 : -1;
}

int pol_sha256_update(pol_sha256_stream_t *s, const void *d, size_t n)
{
    const mesh_crypto_t *C = mesh_crypto(NULL, 0);
    if (!s->active || !C)
        return -1;
    if (n && C->sha256_update(ctx_of(s), d, n) != 1) {
        s->active = 0;
        return -1;
    }
    return 0;
}

int pol_sha256_finish(pol_sha256_stream_t *s, uint8_t out[POL_SHA256_LEN])
{
    const mesh_crypto_t *C = mesh_crypto(NULL, 0);
    if (!s->active || !C)
        return -1;
    s->active = 0;
    return C->sha256_final(out, ctx_of(s)) == 1 ? 0 : -1;
}

void pol_sha256_abort(pol_sha256_stream_t *s)
{
    s->active = 0;
}
