/*
 * policy/sig_digest.c: SHA-256 and HMAC-SHA256 on per-thread libcrypto contexts (see
 * policy/sig_digest.h).
 */
#include "policy/sig_digest.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/crypto_lib.h"

/** Contexts a thread keeps for streamed digests (more in flight at once are freed when done). */
#define POOL_MAX 64

/* A thread's contexts: one for one-shot work and a free list for streams. */
typedef struct thread_ctxs {
    EVP_MD_CTX *oneshot;
    EVP_MD_CTX *pool[POOL_MAX];
    int npool;
} thread_ctxs_t;

static pthread_key_t key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static _Thread_local thread_ctxs_t *mine;

static void thread_exit(void *p)
{
    thread_ctxs_t *t = p;
    const mesh_crypto_t *C = mesh_crypto(NULL, 0);
    if (C) {
        if (t->oneshot)
            C->md_ctx_free(t->oneshot);
        for (int i = 0; i < t->npool; i++)
            C->md_ctx_free(t->pool[i]);
    }
    free(t);
}

static void make_key(void)
{
    pthread_key_create(&key, thread_exit);
}

/* The calling thread's contexts, created on its first use. */
static thread_ctxs_t *ctxs(const mesh_crypto_t *C)
{
    if (mine)
        return mine;
    pthread_once(&key_once, make_key);
    thread_ctxs_t *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->oneshot = C->md_ctx_new();
    if (!t->oneshot) {
        free(t);
        return NULL;
    }
    pthread_setspecific(key, t);
    mine = t;
    return t;
}

int pol_digest_ready(char *err, size_t errlen)
{
    return mesh_crypto(err, errlen) ? 0 : -1;
}

/* SHA-256 of a prefix (optional) and the pieces, on ctx. */
static int digest(const mesh_crypto_t *C, EVP_MD_CTX *ctx, const void *pre, size_t pre_n,
                  const pol_iov_t *iov, int niov, uint8_t out[POL_SHA256_LEN])
{
    if (C->digest_init(ctx, C->sha256(), NULL) != 1)
        return -1;
    if (pre_n && C->digest_update(ctx, pre, pre_n) != 1)
        return -1;
    for (int i = 0; i < niov; i++)
        if (iov[i].n && C->digest_update(ctx, iov[i].p, iov[i].n) != 1)
            return -1;
    unsigned int len = 0;
    if (C->digest_final(ctx, out, &len) != 1 || len != POL_SHA256_LEN)
        return -1;
    return 0;
}

int pol_sha256(const pol_iov_t *iov, int niov, uint8_t out[POL_SHA256_LEN])
{
    const mesh_crypto_t *C = mesh_crypto(NULL, 0);
    thread_ctxs_t *t = C ? ctxs(C) : NULL;
    if (!t)
        return -1;
    return digest(C, t->oneshot, NULL, 0, iov, niov, out);
}

int pol_hmac_sha256(const void *key_in, size_t key_len, const pol_iov_t *iov, int niov,
                    uint8_t out[POL_SHA256_LEN])
{
    const mesh_crypto_t *C = mesh_crypto(NULL, 0);
    thread_ctxs_t *t = C ? ctxs(C) : NULL;
    if (!t)
        return -1;
    uint8_t k0[POL_HMAC_BLOCK] = {0};
    if (key_len > POL_HMAC_BLOCK) {
        pol_iov_t kv = {key_in, key_len};
        if (digest(C, t->oneshot, NULL, 0, &kv, 1, k0) != 0)
            return -1;
    } else if (key_len) {
        memcpy(k0, key_in, key_len);
    }
    uint8_t pad[POL_HMAC_BLOCK], inner[POL_SHA256_LEN];
    for (int i = 0; i < POL_HMAC_BLOCK; i++)
        pad[i] = k0[i] ^ 0x36;
    int rc = digest(C, t->oneshot, pad, sizeof(pad), iov, niov, inner);
    if (rc == 0) {
        for (int i = 0; i < POL_HMAC_BLOCK; i++)
            pad[i] = k0[i] ^ 0x5c;
        pol_iov_t iv = {inner, sizeof(inner)};
        rc = digest(C, t->oneshot, pad, sizeof(pad), &iv, 1, out);
    }
    explicit_bzero(k0, sizeof(k0));
    explicit_bzero(pad, sizeof(pad));
    explicit_bzero(inner, sizeof(inner));
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

void pol_hex(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

int pol_sha256_begin(pol_sha256_stream_t *s)
{
    const mesh_crypto_t *C = mesh_crypto(NULL, 0);
    thread_ctxs_t *t = C ? ctxs(C) : NULL;
    if (!t)
        return -1;
    if (s->ctx)
        pol_sha256_abort(s);
    EVP_MD_CTX *ctx = t->npool ? t->pool[--t->npool] : C->md_ctx_new();
    if (!ctx)
        return -1;
    if (C->digest_init(ctx, C->sha256(), NULL) != 1) {
        C->md_ctx_free(ctx);
        return -1;
    }
    s->ctx = ctx;
    return 0;
}

int pol_sha256_update(pol_sha256_stream_t *s, const void *d, size_t n)
{
    const mesh_crypto_t *C = mesh_crypto(NULL, 0);
    if (!s->ctx || !C)
        return -1;
    if (n && C->digest_update(s->ctx, d, n) != 1)
        return -1;
    return 0;
}

/* Returns a stream's context to the calling thread's free list (or frees it). */
static void give_back(pol_sha256_stream_t *s)
{
    const mesh_crypto_t *C = mesh_crypto(NULL, 0);
    thread_ctxs_t *t = C ? ctxs(C) : NULL;
    if (t && t->npool < POOL_MAX)
        t->pool[t->npool++] = s->ctx;
    else if (C)
        C->md_ctx_free(s->ctx);
    s->ctx = NULL;
}

int pol_sha256_finish(pol_sha256_stream_t *s, uint8_t out[POL_SHA256_LEN])
{
    const mesh_crypto_t *C = mesh_crypto(NULL, 0);
    if (!s->ctx || !C)
        return -1;
    unsigned int len = 0;
    int ok = C->digest_final(s->ctx, out, &len) == 1 && len == POL_SHA256_LEN;
    give_back(s);
    return ok ? 0 : -1;
}

void pol_sha256_abort(pol_sha256_stream_t *s)
{
    if (s->ctx)
        give_back(s);
}
