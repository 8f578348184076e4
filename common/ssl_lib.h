/*
 * common/ssl_lib.h: OpenSSL's libssl (and the libcrypto X.509, PEM and BIO functions TLS needs),
 * loaded on first use.
 *
 * Like common/crypto_lib.h for libcrypto: meshd does not link OpenSSL but opens "libssl.so.3"
 * (Debian 12's libssl3, which maps libcrypto.so.3 beside it) the first time a TLS context is
 * made, so a node without TLS configured maps neither and its idle RSS does not grow. The
 * X.509/PEM/BIO entries live in this table rather than in crypto_lib.h's because only TLS uses
 * them; dlsym on libssl's handle finds them in libcrypto, its dependency.
 *
 * Each entry of MESH_SSL_FUNCS is (field, return type, symbol, parameters); add a function by
 * adding a line there. Macros of ssl.h (SSL_CTX_set_min_proto_version, SSL_set_tlsext_host_name
 * ...) are spelt out through ctx_ctrl/ssl_ctrl by their users.
 */
#ifndef MESH_SSL_LIB_H
#define MESH_SSL_LIB_H

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <stddef.h>
#include <stdio.h>

/* clang-format off */
#define MESH_SSL_FUNCS(X)                                                                          \
    /* contexts */                                                                                 \
    X(server_method, const SSL_METHOD *, TLS_server_method, (void))                                \
    X(client_method, const SSL_METHOD *, TLS_client_method, (void))                                \
    X(ctx_new, SSL_CTX *, SSL_CTX_new, (const SSL_METHOD *m))                                      \
    X(ctx_free, void, SSL_CTX_free, (SSL_CTX *c))                                                  \
    X(ctx_up_ref, int, SSL_CTX_up_ref, (SSL_CTX *c))                                               \
    X(ctx_ctrl, long, SSL_CTX_ctrl, (SSL_CTX *c, int cmd, long larg, void *parg))                  \
    X(ctx_set_options, uint64_t, SSL_CTX_set_options, (SSL_CTX *c, uint64_t op))                   \
    X(ctx_use_chain_file, int, SSL_CTX_use_certificate_chain_file, (SSL_CTX *c, const char *f))    \
    X(ctx_use_key, int, SSL_CTX_use_PrivateKey, (SSL_CTX *c, EVP_PKEY *k))                         \
    X(ctx_check_key, int, SSL_CTX_check_private_key, (const SSL_CTX *c))                           \
    X(ctx_load_verify, int, SSL_CTX_load_verify_locations, (SSL_CTX *c, const char *f,             \
      const char *d))                                                                              \
    X(ctx_set_verify, void, SSL_CTX_set_verify, (SSL_CTX *c, int mode, SSL_verify_cb cb))          \
    X(ctx_set_client_ca_list, void, SSL_CTX_set_client_CA_list, (SSL_CTX *c,                       \
      STACK_OF(X509_NAME) *l))                                                                     \
    X(load_client_ca_file, STACK_OF(X509_NAME) *, SSL_load_client_CA_file, (const char *f))        \
    X(ctx_set_sid_ctx, int, SSL_CTX_set_session_id_context, (SSL_CTX *c,                           \
      const unsigned char *sid, unsigned int len))                                                 \
    X(ctx_set_alpn_select_cb, void, SSL_CTX_set_alpn_select_cb, (SSL_CTX *c,                       \
      SSL_CTX_alpn_select_cb_func cb, void *arg))                                                  \
    X(ctx_set_alpn_protos, int, SSL_CTX_set_alpn_protos, (SSL_CTX *c, const unsigned char *p,      \
      unsigned int len))                                                                           \
    X(ctx_sess_set_new_cb, void, SSL_CTX_sess_set_new_cb, (SSL_CTX *c,                           \
      int (*cb)(SSL *s, SSL_SESSION *sess)))                                                       \
    X(select_next_proto, int, SSL_select_next_proto, (unsigned char **out, unsigned char *outlen,  \
      const unsigned char *server, unsigned int server_len, const unsigned char *client,           \
      unsigned int client_len))                                                                    \
    /* connections */                                                                              \
    X(ssl_new, SSL *, SSL_new, (SSL_CTX *c))                                                       \
    X(ssl_free, void, SSL_free, (SSL *s))                                                          \
    X(ssl_set_bio, void, SSL_set_bio, (SSL *s, BIO *r, BIO *w))                                    \
    X(ssl_set_accept_state, void, SSL_set_accept_state, (SSL *s))                                  \
    X(ssl_set_connect_state, void, SSL_set_connect_state, (SSL *s))                                \
    X(ssl_do_handshake, int, SSL_do_handshake, (SSL *s))                                           \
    X(ssl_shutdown, int, SSL_shutdown, (SSL *s))                                                   \
    X(session_is_resumable, int, SSL_SESSION_is_resumable, (const SSL_SESSION *s))                 \
    X(ssl_read, int, SSL_read, (SSL *s, void *buf, int num))                                       \
    X(ssl_write, int, SSL_write, (SSL *s, const void *buf, int num))                               \
    X(ssl_get_error, int, SSL_get_error, (const SSL *s, int ret))                                  \
    X(ssl_has_pending, int, SSL_has_pending, (const SSL *s))                                      \
    X(ssl_is_init_finished, int, SSL_is_init_finished, (const SSL *s))                             \
    X(ssl_get0_alpn, void, SSL_get0_alpn_selected, (const SSL *s, const unsigned char **data,      \
      unsigned int *len))                                                                          \
    X(ssl_get1_peer_cert, X509 *, SSL_get1_peer_certificate, (const SSL *s))                       \
    X(ssl_get_verify_result, long, SSL_get_verify_result, (const SSL *s))                          \
    X(ssl_ctrl, long, SSL_ctrl, (SSL *s, int cmd, long larg, void *parg))                          \
    X(ssl_set1_host, int, SSL_set1_host, (SSL *s, const char *host))                               \
    X(ssl_get0_param, X509_VERIFY_PARAM *, SSL_get0_param, (SSL *s))                               \
    X(ssl_session_reused, int, SSL_session_reused, (const SSL *s))                                 \
    X(ssl_get_version, const char *, SSL_get_version, (const SSL *s))                              \
    X(ssl_set_verify, void, SSL_set_verify, (SSL *s, int mode, SSL_verify_cb cb))                  \
    X(ssl_set_ex_data, int, SSL_set_ex_data, (SSL *s, int idx, void *data))                        \
    X(ssl_get_ex_data, void *, SSL_get_ex_data, (const SSL *s, int idx))                           \
    X(ssl_get1_session, SSL_SESSION *, SSL_get1_session, (SSL *s))                                 \
    X(ssl_set_session, int, SSL_set_session, (SSL *s, SSL_SESSION *sess))                          \
    X(session_free, void, SSL_SESSION_free, (SSL_SESSION *sess))                                   \
    X(session_dup, SSL_SESSION *, SSL_SESSION_dup, (const SSL_SESSION *sess))                      \
    X(alert_desc_string_long, const char *, SSL_alert_desc_string_long, (int value))               \
    /* memory BIOs */                                                                              \
    X(bio_s_mem, const BIO_METHOD *, BIO_s_mem, (void))                                            \
    X(bio_new, BIO *, BIO_new, (const BIO_METHOD *m))                                              \
    X(bio_read, int, BIO_read, (BIO *b, void *data, int dlen))                                     \
    X(bio_write, int, BIO_write, (BIO *b, const void *data, int dlen))                             \
    X(bio_ctrl, long, BIO_ctrl, (BIO *b, int cmd, long larg, void *parg))                          \
    X(bio_ctrl_pending, size_t, BIO_ctrl_pending, (BIO *b))                                        \
    /* certificates and keys */                                                                    \
    X(pem_read_x509, X509 *, PEM_read_X509, (FILE *fp, X509 **x, pem_password_cb *cb, void *u))    \
    X(pem_read_pkey, EVP_PKEY *, PEM_read_PrivateKey, (FILE *fp, EVP_PKEY **x,                     \
      pem_password_cb *cb, void *u))                                                               \
    X(pkey_free, void, EVP_PKEY_free, (EVP_PKEY *k))                                               \
    X(x509_free, void, X509_free, (X509 *x))                                                       \
    X(x509_not_before, const ASN1_TIME *, X509_get0_notBefore, (const X509 *x))                    \
    X(x509_not_after, const ASN1_TIME *, X509_get0_notAfter, (const X509 *x))                      \
    X(x509_cmp_current_time, int, X509_cmp_current_time, (const ASN1_TIME *t))                     \
    X(x509_check_private_key, int, X509_check_private_key, (const X509 *x, const EVP_PKEY *k))     \
    X(x509_subject, X509_NAME *, X509_get_subject_name, (const X509 *x))                           \
    X(x509_name_oneline, char *, X509_NAME_oneline, (const X509_NAME *n, char *buf, int size))     \
    X(asn1_time_to_tm, int, ASN1_TIME_to_tm, (const ASN1_TIME *s, struct tm *tm))                  \
    X(store_new, X509_STORE *, X509_STORE_new, (void))                                             \
    X(store_free, void, X509_STORE_free, (X509_STORE *s))                                          \
    X(store_load_file, int, X509_STORE_load_file, (X509_STORE *s, const char *f))                  \
    X(store_ctx_new, X509_STORE_CTX *, X509_STORE_CTX_new, (void))                                 \
    X(store_ctx_free, void, X509_STORE_CTX_free, (X509_STORE_CTX *c))                              \
    X(store_ctx_init, int, X509_STORE_CTX_init, (X509_STORE_CTX *c, X509_STORE *s, X509 *x,        \
      STACK_OF(X509) *chain))                                                                      \
    X(store_ctx_get_error, int, X509_STORE_CTX_get_error, (const X509_STORE_CTX *c))               \
    X(verify_cert, int, X509_verify_cert, (X509_STORE_CTX *c))                                     \
    X(verify_cert_error_string, const char *, X509_verify_cert_error_string, (long n))             \
    X(param_set1_ip_asc, int, X509_VERIFY_PARAM_set1_ip_asc, (X509_VERIFY_PARAM *p,                \
      const char *ip))                                                                             \
    X(sk_new_null, OPENSSL_STACK *, OPENSSL_sk_new_null, (void))                                   \
    X(sk_push, int, OPENSSL_sk_push, (OPENSSL_STACK *st, const void *data))                        \
    X(sk_pop_free, void, OPENSSL_sk_pop_free, (OPENSSL_STACK *st, void (*fn)(void *)))             \
    /* errors */                                                                                   \
    X(err_get_error, unsigned long, ERR_get_error, (void))                                         \
    X(err_peek_last_error, unsigned long, ERR_peek_last_error, (void))                             \
    X(err_clear_error, void, ERR_clear_error, (void))                                              \
    X(err_reason_string, const char *, ERR_reason_error_string, (unsigned long e))                 \
    X(err_string_n, void, ERR_error_string_n, (unsigned long e, char *buf, size_t len))
/* clang-format on */

/** The libssl functions meshd uses: S->ssl_new(ctx), S->ssl_read(...). */
typedef struct mesh_ssl {
#define MESH_SSL_FIELD(f, ret, sym, args) ret(*f) args;
    MESH_SSL_FUNCS(MESH_SSL_FIELD)
#undef MESH_SSL_FIELD
} mesh_ssl_t;

/** The loaded library (opened once, thread-safe), or NULL when it cannot be loaded; then err
 *  (if not NULL) says why. */
const mesh_ssl_t *mesh_ssl(char *err, size_t errlen);

/** Whether the library was loaded by now (without loading it): for RSS checks and tests. */
int mesh_ssl_loaded(void);

#endif
