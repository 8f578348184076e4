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
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
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
    /* X.509 for the mesh CA (ca/, common/x509_check.c): keys, PEM, certificates, requests */  \
    X(pkey_q_keygen, EVP_PKEY *, EVP_PKEY_Q_keygen, (OSSL_LIB_CTX *l, const char *propq,           \
      const char *type, ...))                                                                      \
    X(pkey_is_a, int, EVP_PKEY_is_a, (const EVP_PKEY *k, const char *name))                        \
    X(bio_new, BIO *, BIO_new, (const BIO_METHOD *m))                                              \
    X(bio_s_mem, const BIO_METHOD *, BIO_s_mem, (void))                                            \
    X(bio_new_mem_buf, BIO *, BIO_new_mem_buf, (const void *buf, int len))                         \
    X(bio_free, int, BIO_free, (BIO *b))                                                           \
    X(bio_ctrl, long, BIO_ctrl, (BIO *b, int cmd, long larg, void *parg))                          \
    X(pem_read_x509, X509 *, PEM_read_bio_X509, (BIO *b, X509 **x, pem_password_cb *cb, void *u)) \
    X(pem_read_x509_req, X509_REQ *, PEM_read_bio_X509_REQ, (BIO *b, X509_REQ **x,                 \
      pem_password_cb *cb, void *u))                                                               \
    X(pem_read_pkey, EVP_PKEY *, PEM_read_bio_PrivateKey, (BIO *b, EVP_PKEY **x,                   \
      pem_password_cb *cb, void *u))                                                               \
    X(pem_write_x509, int, PEM_write_bio_X509, (BIO *b, const X509 *x))                            \
    X(pem_write_x509_req, int, PEM_write_bio_X509_REQ, (BIO *b, const X509_REQ *x))                \
    X(pem_write_pkey, int, PEM_write_bio_PrivateKey, (BIO *b, const EVP_PKEY *k,                   \
      const EVP_CIPHER *enc, const unsigned char *kstr, int klen, pem_password_cb *cb, void *u))   \
    X(x509_new, X509 *, X509_new, (void))                                                          \
    X(x509_free, void, X509_free, (X509 *x))                                                       \
    X(x509_up_ref, int, X509_up_ref, (X509 *x))                                                    \
    X(x509_set_version, int, X509_set_version, (X509 *x, long v))                                  \
    X(x509_get_serial, ASN1_INTEGER *, X509_get_serialNumber, (X509 *x))                           \
    X(bn_to_asn1_integer, ASN1_INTEGER *, BN_to_ASN1_INTEGER, (const BIGNUM *bn,                   \
      ASN1_INTEGER *ai))                                                                           \
    X(x509_getm_not_before, ASN1_TIME *, X509_getm_notBefore, (const X509 *x))                     \
    X(x509_getm_not_after, ASN1_TIME *, X509_getm_notAfter, (const X509 *x))                       \
    X(x509_time_adj_ex, ASN1_TIME *, X509_time_adj_ex, (ASN1_TIME *t, int days, long secs,         \
      time_t *in))                                                                                 \
    X(asn1_time_cmp_time_t, int, ASN1_TIME_cmp_time_t, (const ASN1_TIME *t, time_t cmp))           \
    X(asn1_time_to_tm, int, ASN1_TIME_to_tm, (const ASN1_TIME *t, struct tm *tm))                  \
    X(x509_set_pubkey, int, X509_set_pubkey, (X509 *x, EVP_PKEY *k))                               \
    X(x509_get0_pubkey, EVP_PKEY *, X509_get0_pubkey, (const X509 *x))                             \
    X(x509_get_subject_name, X509_NAME *, X509_get_subject_name, (const X509 *x))                  \
    X(x509_set_subject_name, int, X509_set_subject_name, (X509 *x, const X509_NAME *n))            \
    X(x509_set_issuer_name, int, X509_set_issuer_name, (X509 *x, const X509_NAME *n))              \
    X(x509_name_add_entry_txt, int, X509_NAME_add_entry_by_txt, (X509_NAME *n, const char *f,      \
      int type, const unsigned char *b, int len, int loc, int set))                                \
    X(x509_sign, int, X509_sign, (X509 *x, EVP_PKEY *k, const EVP_MD *md))                         \
    X(x509_add_ext, int, X509_add_ext, (X509 *x, X509_EXTENSION *e, int loc))                      \
    X(x509v3_set_ctx, void, X509V3_set_ctx, (X509V3_CTX *c, X509 *iss, X509 *subj, X509_REQ *r,   \
      X509_CRL *crl, int flags))                                                                   \
    X(x509v3_ext_nconf_nid, X509_EXTENSION *, X509V3_EXT_nconf_nid, (CONF *conf, X509V3_CTX *c,    \
      int nid, const char *value))                                                                 \
    X(x509_extension_free, void, X509_EXTENSION_free, (X509_EXTENSION *e))                         \
    X(x509_get_ext_d2i, void *, X509_get_ext_d2i, (const X509 *x, int nid, int *crit, int *idx))   \
    X(general_names_free, void, GENERAL_NAMES_free, (GENERAL_NAMES *g))                            \
    X(sk_num, int, OPENSSL_sk_num, (const OPENSSL_STACK *s))                                       \
    X(sk_value, void *, OPENSSL_sk_value, (const OPENSSL_STACK *s, int i))                         \
    X(asn1_string_data, const unsigned char *, ASN1_STRING_get0_data, (const ASN1_STRING *s))      \
    X(asn1_string_length, int, ASN1_STRING_length, (const ASN1_STRING *s))                         \
    X(x509_check_private_key, int, X509_check_private_key, (const X509 *x, const EVP_PKEY *k))     \
    X(x509_check_ca, int, X509_check_ca, (X509 *x))                                                \
    X(x509_req_new, X509_REQ *, X509_REQ_new, (void))                                              \
    X(x509_req_free, void, X509_REQ_free, (X509_REQ *r))                                           \
    X(x509_req_set_version, int, X509_REQ_set_version, (X509_REQ *r, long v))                      \
    X(x509_req_set_pubkey, int, X509_REQ_set_pubkey, (X509_REQ *r, EVP_PKEY *k))                   \
    X(x509_req_get_subject_name, X509_NAME *, X509_REQ_get_subject_name, (const X509_REQ *r))      \
    X(x509_req_sign, int, X509_REQ_sign, (X509_REQ *r, EVP_PKEY *k, const EVP_MD *md))             \
    X(x509_req_get0_pubkey, EVP_PKEY *, X509_REQ_get0_pubkey, (X509_REQ *r))                       \
    X(x509_req_verify, int, X509_REQ_verify, (X509_REQ *r, EVP_PKEY *k))                           \
    X(d2i_x509, X509 *, d2i_X509, (X509 **a, const unsigned char **pp, long len))                 \
    X(i2d_x509, int, i2d_X509, (const X509 *x, unsigned char **pp))                               \
    X(digest_sign_init, int, EVP_DigestSignInit, (EVP_MD_CTX *c, EVP_PKEY_CTX **pc,                \
      const EVP_MD *md, ENGINE *e, EVP_PKEY *k))                                                   \
    X(digest_sign, int, EVP_DigestSign, (EVP_MD_CTX *c, unsigned char *sig, size_t *siglen,       \
      const unsigned char *tbs, size_t tbslen))                                                    \
    X(x509_store_new, X509_STORE *, X509_STORE_new, (void))                                        \
    X(x509_store_free, void, X509_STORE_free, (X509_STORE *s))                                     \
    X(x509_store_add_cert, int, X509_STORE_add_cert, (X509_STORE *s, X509 *x))                     \
    X(x509_store_ctx_new, X509_STORE_CTX *, X509_STORE_CTX_new, (void))                            \
    X(x509_store_ctx_free, void, X509_STORE_CTX_free, (X509_STORE_CTX *c))                         \
    X(x509_store_ctx_init, int, X509_STORE_CTX_init, (X509_STORE_CTX *c, X509_STORE *s, X509 *x,   \
      STACK_OF(X509) *chain))                                                                      \
    X(x509_store_ctx_set_time, void, X509_STORE_CTX_set_time, (X509_STORE_CTX *c,                  \
      unsigned long flags, time_t t))                                                              \
    X(x509_store_ctx_get_error, int, X509_STORE_CTX_get_error, (const X509_STORE_CTX *c))          \
    X(x509_verify_cert, int, X509_verify_cert, (X509_STORE_CTX *c))                                \
    X(x509_verify_cert_error_string, const char *, X509_verify_cert_error_string, (long n))        \
    X(sk_new_null, OPENSSL_STACK *, OPENSSL_sk_new_null, (void))                                   \
    X(sk_push, int, OPENSSL_sk_push, (OPENSSL_STACK *s, const void *v))                            \
    X(sk_free, void, OPENSSL_sk_free, (OPENSSL_STACK *s))                                          \
    X(err_error_string_n, void, ERR_error_string_n, (unsigned long e, char *buf, size_t len))      \
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
