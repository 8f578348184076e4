/*
 * gossip/crypto_lib.h: OpenSSL's libcrypto, loaded when the first keyed sealer is made.
 *
 * Only gossip encryption (gossip/seal.c: AES-256-GCM) needs libcrypto, and mapping it costs
 * about 1.4 MiB of resident pages in every process (bench/gossip: meshd's RSS per node), so
 * meshd does not link it but opens it on first use (dlopen "libcrypto.so.3", the soname of
 * Debian 12's libssl3) and calls through this table, as registry/curl_lib.h does for libcurl.
 * A node without --gossip-key never maps it. The headers come from libssl-dev, so types and
 * constants are checked at compile time.
 */
#ifndef GSP_CRYPTO_LIB_H
#define GSP_CRYPTO_LIB_H

#include <openssl/evp.h>
#include <stddef.h>

/** The libcrypto functions gossip uses. */
typedef struct gsp_crypto {
    EVP_CIPHER_CTX *(*ctx_new)(void);
    void (*ctx_free)(EVP_CIPHER_CTX *c);
    int (*ctx_ctrl)(EVP_CIPHER_CTX *c, int type, int arg, void *ptr);
    const EVP_CIPHER *(*aes_256_gcm)(void);
    int (*encrypt_init)(EVP_CIPHER_CTX *c, const EVP_CIPHER *t, ENGINE *e, const unsigned char *k,
                        const unsigned char *iv);
    int (*encrypt_update)(EVP_CIPHER_CTX *c, unsigned char *out, int *outl, const unsigned char *in,
                          int inl);
    int (*encrypt_final)(EVP_CIPHER_CTX *c, unsigned char *out, int *outl);
    int (*decrypt_init)(EVP_CIPHER_CTX *c, const EVP_CIPHER *t, ENGINE *e, const unsigned char *k,
                        const unsigned char *iv);
    int (*decrypt_update)(EVP_CIPHER_CTX *c, unsigned char *out, int *outl, const unsigned char *in,
                          int inl);
    int (*decrypt_final)(EVP_CIPHER_CTX *c, unsigned char *out, int *outl);
} gsp_crypto_t;

/** The loaded library (opened once, thread-safe), or NULL when it cannot be loaded; then err
 *  (if not NULL) says why. */
const gsp_crypto_t *gsp_crypto(char *err, size_t errlen);

#endif
