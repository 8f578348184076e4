/*
 * common/crypto_lib.h: OpenSSL's libcrypto, loaded on first use.
 *
 * Mapping libcrypto costs about 1.4 MiB of resident pages in every process (bench/gossip:
 * meshd's RSS per node), and only some nodes need it: gossip encryption (--gossip-key,
 * gossip/seal.c) and the policy chain's JWT, signature and mesh-identity checks (policy/).
 * So meshd does not link it but opens it on first use (dlopen "libcrypto.so.3", the soname of
 * Debian 12's libssl3) and calls through this table, as common/curl_lib.h does for libcurl.
 * The headers come from libssl-dev, so types and constants are checked at compile time.
 *
 * Each entry of MESH_CRYPTO_FUNCS is (field, return type, libcrypto symbol, parameters);
 * add a function by adding a line there.
 */
#ifndef MESH_CRYPTO_LIB_H
#define MESH_CRYPTO_LIB_H

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <openssl/x509.h>
#include <stddef.h>

/* clang-format off */
#define MESH_CRYPTO_FUNCS(X)                                                                       \
    /* ciphers (gossip's AES-256-GCM) */                                                           \
    X(ctx_new, EVP_CIPHER_CTX *, EVP_CIPHER_CTX_new, (void))                                       \
    X(ctx_free, void, EVP_CIPHER_CTX_free, (EVP_CIPHER_CTX *c))                                    \
    X(ctx_ctrl, int, EVP_CIPHER_CTX_ctrl, (EVP_CIPHER_CTX *c, int type, int arg, void *ptr))       \
    X(aes_256_gcm, const EVP_CIPHER *, EVP_aes_256_gcm, (void))                                    \
    X(encrypt_init, int, EVP_EncryptInit_ex, (EVP_CIPHER_CTX *c, const EVP_CIPHER *t, ENGINE *e,   \
      const unsigned char *k, const unsigned char *iv))                                            \
    X(encrypt_update, int, EVP_EncryptUpdate, (EVP_CIPHER_CTX *c, unsigned char *out, int *outl,   \
      const unsigned char *in, int inl))                                                           \
    X(encrypt_final, int, EVP_EncryptFinal_ex, (EVP_CIPHER_CTX *c, unsigned char *out, int *outl)) \
    X(decrypt_init, int, EVP_DecryptInit_ex, (EVP_CIPHER_CTX *c, const EVP_CIPHER *t, ENGINE *e,   \
      const unsigned char *k, const unsigned char *iv))                                            \
    X(decrypt_update, int, EVP_DecryptUpdate, (EVP_CIPHER_CTX *c, unsigned char *out, int *outl,   \
      const unsigned char *in, int inl))                                                           \
    X(decrypt_final, int, EVP_DecryptFinal_ex, (EVP_CIPHER_CTX *c, unsigned char *out, int *outl)) \
    /* digests and HMAC */                                                                         \
    X(sha1, const EVP_MD *, EVP_sha1, (void))                                                      \
    X(sha256, const EVP_MD *, EVP_sha256, (void))                                                  \
    X(sha384, const EVP_MD *, EVP_sha384, (void))                                                  \
    X(sha512, const EVP_MD *, EVP_sha512, (void))                                                  \
    X(md_ctx_new, EVP_MD_CTX *, EVP_MD_CTX_new, (void))                                            \
    X(md_ctx_free, void, EVP_MD_CTX_free, (EVP_MD_CTX *c))                                         \
    X(digest_init, int, EVP_DigestInit_ex, (EVP_MD_CTX *c, const EVP_MD *md, ENGINE *e))           \
    X(digest_update, int, EVP_DigestUpdate, (EVP_MD_CTX *c, const void *d, size_t n))              \
    X(digest_final, int, EVP_DigestFinal_ex, (EVP_MD_CTX *c, unsigned char *md, unsigned int *n))  \
    X(digest, int, EVP_Digest, (const void *d, size_t n, unsigned char *md, unsigned int *len,     \
      const EVP_MD *type, ENGINE *e))                                                              \
    X(hmac, unsigned char *, HMAC, (const EVP_MD *md, const void *key, int klen,                   \
      const unsigned char *d, size_t n, unsigned char *md_out, unsigned int *md_len))              \
    X(memcmp_ct, int, CRYPTO_memcmp, (const void *a, const void *b, size_t len))                   \
    X(sha256_init, int, SHA256_Init, (SHA256_CTX *c))                                              \
    X(sha256_update, int, SHA256_Update, (SHA256_CTX *c, const void *d, size_t n))                 \
    X(sha256_final, int, SHA256_Final, (unsigned char *md, SHA256_CTX *c))                         \
    /* public keys and signature verification */                                                   \
    X(pkey_free, void, EVP_PKEY_free, (EVP_PKEY *k))                                               \
    X(pkey_get_id, int, EVP_PKEY_get_id, (const EVP_PKEY *k))                                      \
    X(pkey_get_bits, int, EVP_PKEY_get_bits, (const EVP_PKEY *k))                                  \
    X(pkey_ctx_new_from_name, EVP_PKEY_CTX *, EVP_PKEY_CTX_new_from_name,                          \
      (OSSL_LIB_CTX *l, const char *name, const char *propq))                                      \
    X(pkey_ctx_free, void, EVP_PKEY_CTX_free, (EVP_PKEY_CTX *c))                                   \
    X(pkey_fromdata_init, int, EVP_PKEY_fromdata_init, (EVP_PKEY_CTX *c))                          \
    X(pkey_fromdata, int, EVP_PKEY_fromdata, (EVP_PKEY_CTX *c, EVP_PKEY **k, int sel,              \
      OSSL_PARAM *p))                                                                              \
    X(pkey_new_raw_public_key, EVP_PKEY *, EVP_PKEY_new_raw_public_key, (int type, ENGINE *e,      \
      const unsigned char *pub, size_t len))                                                       \
    X(d2i_pubkey, EVP_PKEY *, d2i_PUBKEY, (EVP_PKEY **a, const unsigned char **pp, long len))      \
    X(param_bld_new, OSSL_PARAM_BLD *, OSSL_PARAM_BLD_new, (void))                                 \
    X(param_bld_free, void, OSSL_PARAM_BLD_free, (OSSL_PARAM_BLD *b))                              \
    X(param_bld_push_bn, int, OSSL_PARAM_BLD_push_BN, (OSSL_PARAM_BLD *b, const char *key,         \
      const BIGNUM *bn))                                                                           \
    X(param_bld_push_utf8, int, OSSL_PARAM_BLD_push_utf8_string, (OSSL_PARAM_BLD *b,               \
      const char *key, const char *buf, size_t bsize))                                             \
    X(param_bld_push_octet, int, OSSL_PARAM_BLD_push_octet_string, (OSSL_PARAM_BLD *b,             \
      const char *key, const void *buf, size_t bsize))                                             \
    X(param_bld_to_param, OSSL_PARAM *, OSSL_PARAM_BLD_to_param, (OSSL_PARAM_BLD *b))              \
    X(param_free, void, OSSL_PARAM_free, (OSSL_PARAM *p))                                          \
    X(bn_bin2bn, BIGNUM *, BN_bin2bn, (const unsigned char *s, int len, BIGNUM *ret))              \
    X(bn_free, void, BN_free, (BIGNUM *a))                                                         \
    X(digest_verify_init, int, EVP_DigestVerifyInit, (EVP_MD_CTX *c, EVP_PKEY_CTX **pc,            \
      const EVP_MD *md, ENGINE *e, EVP_PKEY *k))                                                   \
    X(digest_verify, int, EVP_DigestVerify, (EVP_MD_CTX *c, const unsigned char *sig,              \
      size_t siglen, const unsigned char *tbs, size_t tbslen))                                     \
    X(pkey_ctx_set_rsa_padding, int, EVP_PKEY_CTX_set_rsa_padding, (EVP_PKEY_CTX *c, int pad))     \
    X(pkey_ctx_set_rsa_pss_saltlen, int, EVP_PKEY_CTX_set_rsa_pss_saltlen, (EVP_PKEY_CTX *c,       \
      int len))                                                                                    \
    X(ecdsa_sig_new, ECDSA_SIG *, ECDSA_SIG_new, (void))                                           \
    X(ecdsa_sig_free, void, ECDSA_SIG_free, (ECDSA_SIG *s))                                        \
    X(ecdsa_sig_set0, int, ECDSA_SIG_set0, (ECDSA_SIG *s, BIGNUM *r, BIGNUM *sv))                  \
    X(i2d_ecdsa_sig, int, i2d_ECDSA_SIG, (const ECDSA_SIG *s, unsigned char **pp))                 \
    X(err_get_error, unsigned long, ERR_get_error, (void))                                         \
    X(err_clear_error, void, ERR_clear_error, (void))                                              \
    /* randomness */                                                                               \
    X(rand_bytes, int, RAND_bytes, (unsigned char *buf, int num))
/* clang-format on */

/** The libcrypto functions meshd uses: C->sha256(), C->digest_verify(...). */
typedef struct mesh_crypto {
#define MESH_CRYPTO_FIELD(f, ret, sym, args) ret(*f) args;
    MESH_CRYPTO_FUNCS(MESH_CRYPTO_FIELD)
#undef MESH_CRYPTO_FIELD
} mesh_crypto_t;

/** The loaded library (opened once, thread-safe), or NULL when it cannot be loaded; then err
 *  (if not NULL) says why. */
const mesh_crypto_t *mesh_crypto(char *err, size_t errlen);

#endif
