/*
 * common/x509_check.h: checks of a certificate, its key and a CA that a person gave us in
 * files, each failure with a reason they can act on (`meshd ca verify`, and TLS options at
 * start).
 *
 * In order, the first failure wins:
 *   X509C_CERT_UNREADABLE  the certificate file holds no PEM certificate (garbage, a key, DER)
 *   X509C_KEY_UNREADABLE   the key file holds no unencrypted PEM private key
 *   X509C_CA_UNREADABLE    the CA file holds no PEM certificate
 *   X509C_NOT_YET_VALID    notBefore is after now (with its date)
 *   X509C_EXPIRED          notAfter is before now (with its date)
 *   X509C_KEY_MISMATCH     the key is not the certificate's
 *   X509C_CA_NOT_VERIFIED  the chain (the certificate file's further certificates as
 *                          intermediates) does not verify against the CA file's certificates,
 *                          with OpenSSL's reason
 * The key and the CA are optional. Sans-I/O in x509c_check (PEM texts and the time in);
 * x509c_check_files reads the files first (a file that cannot be read is its own reason).
 */
#ifndef MESH_X509_CHECK_H
#define MESH_X509_CHECK_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    X509C_OK = 0,
    X509C_CERT_UNREADABLE,
    X509C_KEY_UNREADABLE,
    X509C_CA_UNREADABLE,
    X509C_NOT_YET_VALID,
    X509C_EXPIRED,
    X509C_KEY_MISMATCH,
    X509C_CA_NOT_VERIFIED,
    X509C_FILE, /* a file could not be read */
    X509C_INTERNAL,
} x509c_result_t;

/** A short name of a result ("expired", "key_mismatch", ...). */
const char *x509c_result_name(x509c_result_t r);

/** A PEM text and the name to use in sentences (a file name). */
typedef struct x509c_input {
    const char *pem;
    size_t len;
    const char *name;
} x509c_input_t;

/**
 * Checks cert (required), key and ca (pem NULL: not checked) at now (Unix seconds). X509C_OK,
 * or the first failure with a sentence in err that names the file ("cert.pem: expired on
 * 2026-01-02 03:04:05 UTC").
 */
x509c_result_t x509c_check(const x509c_input_t *cert, const x509c_input_t *key,
                           const x509c_input_t *ca, int64_t now, char *err, size_t errlen);

/** Reads the files (key_path and ca_path may be NULL), then x509c_check. */
x509c_result_t x509c_check_files(const char *cert_path, const char *key_path, const char *ca_path,
                                 int64_t now, char *err, size_t errlen);

#endif
