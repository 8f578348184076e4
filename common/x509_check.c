/*
 * common/x509_check.c: certificate, key and CA checks with reasons (see common/x509_check.h).
 */
#include "common/x509_check.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/crypto_lib.h"
#include "common/file_read.h"

const char *x509c_result_name(x509c_result_t r)
{
    static const char *const names[] = {
        "ok",      "cert_unreadable", "key_unreadable",  "ca_unreadable", "not_yet_valid",
        "expired", "key_mismatch",    "ca_not_verified", "file",          "internal",
    };
    return (unsigned)r < sizeof(names) / sizeof(names[0]) ? names[r] : "unknown";
}

/* Every certificate of a PEM text, pushed on a new stack; NULL when there is none. */
static OPENSSL_STACK *read_certs(const mesh_crypto_t *C, const x509c_input_t *in)
{
    if (in->len > INT_MAX)
        return NULL;
    BIO *b = C->bio_new_mem_buf(in->pem, (int)in->len);
    OPENSSL_STACK *st = b ? C->sk_new_null() : NULL;
    X509 *x;
    while (st && (x = C->pem_read_x509(b, NULL, NULL, NULL)))
        if (!C->sk_push(st, x)) {
            C->x509_free(x);
            break;
        }
    C->err_clear_error(); /* the end of the text reads as an error */
    if (b)
        C->bio_free(b);
    if (st && C->sk_num(st) == 0) {
        C->sk_free(st);
        st = NULL;
    }
    return st;
}

static void free_certs(const mesh_crypto_t *C, OPENSSL_STACK *st)
{
    if (!st)
        return;
    for (int i = 0; i < C->sk_num(st); i++)
        C->x509_free(C->sk_value(st, i));
    C->sk_free(st);
}

static int no_pass(char *buf, int size, int rw, void *u)
{
    return -1;
}

static void fmt_time(const mesh_crypto_t *C, const ASN1_TIME *t, char *out, size_t n)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (C->asn1_time_to_tm(t, &tm) != 1 || !strftime(out, n, "%Y-%m-%d %H:%M:%S UTC", &tm))
        snprintf(out, n, "(unreadable date)");
}

x509c_result_t x509c_check(const x509c_input_t *cert, const x509c_input_t *key,
                           const x509c_input_t *ca, int64_t now, char *err, size_t errlen)
{
    const mesh_crypto_t *C = mesh_crypto(err, errlen);
    if (!C)
        return X509C_INTERNAL;
    x509c_result_t rc = X509C_OK;
    OPENSSL_STACK *certs = read_certs(C, cert), *cas = NULL;
    EVP_PKEY *pkey = NULL;
    X509_STORE *store = NULL;
    X509_STORE_CTX *ctx = NULL;
    if (!certs) {
        snprintf(err, errlen, "%s: no PEM certificate in it", cert->name);
        rc = X509C_CERT_UNREADABLE;
        goto done;
    }
    X509 *leaf = C->sk_value(certs, 0);
    if (key && key->pem) {
        BIO *b = key->len <= INT_MAX ? C->bio_new_mem_buf(key->pem, (int)key->len) : NULL;
        pkey = b ? C->pem_read_pkey(b, NULL, no_pass, NULL) : NULL;
        if (b)
            C->bio_free(b);
        if (!pkey) {
            snprintf(err, errlen, "%s: no unencrypted PEM private key in it", key->name);
            rc = X509C_KEY_UNREADABLE;
            goto done;
        }
    }
    if (ca && ca->pem && !(cas = read_certs(C, ca))) {
        snprintf(err, errlen, "%s: no PEM certificate in it", ca->name);
        rc = X509C_CA_UNREADABLE;
        goto done;
    }
    char when[64];
    if (C->asn1_time_cmp_time_t(C->x509_getm_not_before(leaf), (time_t)now) > 0) {
        fmt_time(C, C->x509_getm_not_before(leaf), when, sizeof(when));
        snprintf(err, errlen, "%s: not yet valid: it starts on %s", cert->name, when);
        rc = X509C_NOT_YET_VALID;
        goto done;
    }
    if (C->asn1_time_cmp_time_t(C->x509_getm_not_after(leaf), (time_t)now) < 0) {
        fmt_time(C, C->x509_getm_not_after(leaf), when, sizeof(when));
        snprintf(err, errlen, "%s: expired on %s", cert->name, when);
        rc = X509C_EXPIRED;
        goto done;
    }
    if (pkey && C->x509_check_private_key(leaf, pkey) != 1) {
        snprintf(err, errlen, "%s: the key does not match the certificate %s", key->name,
                 cert->name);
        rc = X509C_KEY_MISMATCH;
        goto done;
    }
    if (cas) {
        rc = X509C_INTERNAL;
        if (!(store = C->x509_store_new()) || !(ctx = C->x509_store_ctx_new())) {
            snprintf(err, errlen, "out of memory");
            goto done;
        }
        for (int i = 0; i < C->sk_num(cas); i++)
            C->x509_store_add_cert(store, C->sk_value(cas, i));
        OPENSSL_STACK *chain = C->sk_new_null();
        for (int i = 1; chain && i < C->sk_num(certs); i++)
            C->sk_push(chain, C->sk_value(certs, i));
        if (!chain || C->x509_store_ctx_init(ctx, store, leaf, (STACK_OF(X509) *)chain) != 1) {
            C->sk_free(chain);
            snprintf(err, errlen, "out of memory");
            goto done;
        }
        C->x509_store_ctx_set_time(ctx, 0, (time_t)now);
        int ok = C->x509_verify_cert(ctx);
        int e = ok == 1 ? 0 : C->x509_store_ctx_get_error(ctx);
        C->x509_store_ctx_free(ctx); /* before the chain it borrows */
        ctx = NULL;
        C->sk_free(chain);
        if (ok != 1) {
            snprintf(err, errlen, "%s: does not verify against the CA %s: %s", cert->name, ca->name,
                     C->x509_verify_cert_error_string(e));
            rc = X509C_CA_NOT_VERIFIED;
            goto done;
        }
        rc = X509C_OK;
    }
done:
    C->err_clear_error();
    if (ctx)
        C->x509_store_ctx_free(ctx);
    if (store)
        C->x509_store_free(store);
    C->pkey_free(pkey);
    free_certs(C, certs);
    free_certs(C, cas);
    return rc;
}

/* No certificate or key file is this big. */
#define PEM_FILE_MAX (16u << 20)

x509c_result_t x509c_check_files(const char *cert_path, const char *key_path, const char *ca_path,
                                 int64_t now, char *err, size_t errlen)
{
    x509c_input_t c = {.name = cert_path}, k = {.name = key_path}, a = {.name = ca_path};
    x509c_result_t rc = X509C_FILE;
    if (errlen)
        err[0] = '\0';
    char *kp = NULL, *ap = NULL;
    char *cp = mesh_file_read(cert_path, PEM_FILE_MAX, 0, &c.len, err, errlen);
    if (!cp)
        goto done;
    if (key_path &&
        !(kp = mesh_file_read(key_path, PEM_FILE_MAX, MESH_FILE_SECRET, &k.len, err, errlen)))
        goto done;
    if (ca_path && !(ap = mesh_file_read(ca_path, PEM_FILE_MAX, 0, &a.len, err, errlen)))
        goto done;
    c.pem = cp;
    k.pem = kp;
    a.pem = ap;
    rc = x509c_check(&c, key_path ? &k : NULL, ca_path ? &a : NULL, now, err, errlen);
done:
    free(cp);
    if (kp)
        explicit_bzero(kp, k.len);
    free(kp);
    free(ap);
    return rc;
}
