/*
 * ca/ca_pem.c: PEM reading and writing, key generation and times for the mesh CA (see
 * ca/ca_pem.h).
 */
#include "ca/ca_pem.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const mesh_crypto_t *ca_crypto(char *err, size_t errlen)
{
    return mesh_crypto(err, errlen);
}

/* A passphrase callback that refuses: an encrypted key is an error, never a prompt. */
static int no_pass(char *buf, int size, int rw, void *u)
{
    return -1;
}

/* What a PEM text holds: one reader and one writer serve every kind. */
typedef enum { PEM_X509, PEM_REQ, PEM_KEY } pem_kind_t;

/* The object of kind in PEM text pem[0..len) (its first one), or NULL. */
static void *pem_read(pem_kind_t kind, const char *pem, size_t len)
{
    const mesh_crypto_t *C = ca_crypto(NULL, 0);
    if (!C || !pem || len > INT_MAX)
        return NULL;
    BIO *b = C->bio_new_mem_buf(pem, (int)len);
    if (!b)
        return NULL;
    void *o = kind == PEM_X509  ? (void *)C->pem_read_x509(b, NULL, NULL, NULL)
              : kind == PEM_REQ ? (void *)C->pem_read_x509_req(b, NULL, NULL, NULL)
                                : (void *)C->pem_read_pkey(b, NULL, no_pass, NULL);
    C->bio_free(b);
    return o;
}

/* The object o of kind as new NUL-terminated PEM text, or NULL. */
static char *pem_write(pem_kind_t kind, const void *o)
{
    const mesh_crypto_t *C = ca_crypto(NULL, 0);
    BIO *b = C ? C->bio_new(C->bio_s_mem()) : NULL;
    if (!b)
        return NULL;
    int ok = kind == PEM_X509  ? C->pem_write_x509(b, o)
             : kind == PEM_REQ ? C->pem_write_x509_req(b, o)
                               : C->pem_write_pkey(b, o, NULL, NULL, 0, NULL, NULL);
    char *data = NULL;
    long n = ok == 1 ? C->bio_ctrl(b, BIO_CTRL_INFO, 0, &data) : -1; /* BIO_get_mem_data */
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s) {
        memcpy(s, data, (size_t)n);
        s[n] = '\0';
    }
    C->bio_free(b);
    return s;
}

X509 *ca_pem_read_x509(const char *pem, size_t len)
{
    return pem_read(PEM_X509, pem, len);
}

X509_REQ *ca_pem_read_req(const char *pem, size_t len)
{
    return pem_read(PEM_REQ, pem, len);
}

EVP_PKEY *ca_pem_read_key(const char *pem, size_t len)
{
    return pem_read(PEM_KEY, pem, len);
}

char *ca_pem_write_x509(const X509 *x)
{
    return pem_write(PEM_X509, x);
}

char *ca_pem_write_req(const X509_REQ *r)
{
    return pem_write(PEM_REQ, r);
}

char *ca_pem_write_key(const EVP_PKEY *k)
{
    return pem_write(PEM_KEY, k);
}

EVP_PKEY *ca_key_generate(void)
{
    const mesh_crypto_t *C = ca_crypto(NULL, 0);
    return C ? C->pkey_q_keygen(NULL, NULL, "EC", "P-256") : NULL;
}

int ca_asn1_time_unix(const ASN1_TIME *t, int64_t *out)
{
    const mesh_crypto_t *C = ca_crypto(NULL, 0);
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (!C || !t || C->asn1_time_to_tm(t, &tm) != 1)
        return -1;
    *out = (int64_t)timegm(&tm);
    return 0;
}

void ca_openssl_error(char *buf, size_t len, const char *fallback)
{
    const mesh_crypto_t *C = ca_crypto(NULL, 0);
    unsigned long e = C ? C->err_get_error() : 0;
    if (e && len)
        C->err_error_string_n(e, buf, len);
    else if (len)
        snprintf(buf, len, "%s", fallback);
    if (C)
        C->err_clear_error();
}

int ca_x509_add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    const mesh_crypto_t *C = ca_crypto(NULL, 0);
    if (!C)
        return -1;
    X509V3_CTX ctx;
    memset(&ctx, 0, sizeof(ctx));
    C->x509v3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = C->x509v3_ext_nconf_nid(NULL, &ctx, nid, value);
    if (!e)
        return -1;
    int ok = C->x509_add_ext(x, e, -1);
    C->x509_extension_free(e);
    return ok == 1 ? 0 : -1;
}

int ca_x509_random_serial(X509 *x, char hex[33])
{
    const mesh_crypto_t *C = ca_crypto(NULL, 0);
    unsigned char b[16];
    if (!C || C->rand_bytes(b, sizeof(b)) != 1)
        return -1;
    b[0] &= 0x7f; /* positive */
    b[0] |= 0x40; /* and always 16 bytes long */
    BIGNUM *bn = C->bn_bin2bn(b, sizeof(b), NULL);
    int rc = bn && C->bn_to_asn1_integer(bn, C->x509_get_serial(x)) ? 0 : -1;
    C->bn_free(bn);
    if (rc == 0 && hex)
        for (size_t i = 0; i < sizeof(b); i++)
            snprintf(hex + 2 * i, 3, "%02x", b[i]);
    return rc;
}
