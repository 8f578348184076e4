/*
 * ca/ca_pem.h: the small OpenSSL helpers the mesh CA shares: PEM text <-> keys, certificates
 * and requests, ECDSA P-256 key generation, ASN.1 times as Unix seconds. Everything goes
 * through libcrypto's table (common/crypto_lib.h), opened on first use.
 */
#ifndef CA_PEM_H
#define CA_PEM_H

#include <stddef.h>
#include <stdint.h>

#include "common/crypto_lib.h"

/** The libcrypto table, or NULL with the reason in err. */
const mesh_crypto_t *ca_crypto(char *err, size_t errlen);

/** The first certificate of PEM text pem[0..len), or NULL (not PEM, not a certificate). */
X509 *ca_pem_read_x509(const char *pem, size_t len);
/** The certificate request of PEM text, or NULL. */
X509_REQ *ca_pem_read_req(const char *pem, size_t len);
/** The (unencrypted) private key of PEM text, or NULL. */
EVP_PKEY *ca_pem_read_key(const char *pem, size_t len);

/** New NUL-terminated PEM text (free() it), or NULL on OOM. */
char *ca_pem_write_x509(const X509 *x);
char *ca_pem_write_req(const X509_REQ *r);
char *ca_pem_write_key(const EVP_PKEY *k);

/** A new ECDSA P-256 key, or NULL. */
EVP_PKEY *ca_key_generate(void);

/** An ASN.1 time as Unix seconds (UTC). 0, or -1 when unreadable. */
int ca_asn1_time_unix(const ASN1_TIME *t, int64_t *out);

/** Adds the extension nid with OpenSSL's text form value ("critical,CA:TRUE") to x, issued by
 *  issuer (x itself for a root). 0 or -1. */
int ca_x509_add_ext(X509 *x, X509 *issuer, int nid, const char *value);

/** Gives x a random positive 127-bit serial number; writes it in hex into hex (33 bytes) when
 *  not NULL. 0 or -1. */
int ca_x509_random_serial(X509 *x, char hex[33]);

/** Writes the oldest queued OpenSSL error (or fallback when none) into buf and clears the
 *  queue. */
void ca_openssl_error(char *buf, size_t len, const char *fallback);

#endif
