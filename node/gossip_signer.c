/*
 * node/gossip_signer.c: this node's gossip signing identity, read from --identity-dir (see
 * node/gossip_signer.h).
 */
#include "node/gossip_signer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/file_read.h"
#include "common/log.h"

void gsign_init(gsign_t *s, const char *dir)
{
    memset(s, 0, sizeof(*s));
    s->mtime_ns = -1;
    if (!dir || !*dir)
        return;
    snprintf(s->key_path, sizeof(s->key_path), "%s/key.pem", dir);
    snprintf(s->cert_path, sizeof(s->cert_path), "%s/cert.pem", dir);
}

static void forget(gsign_t *s)
{
    const mesh_crypto_t *C = ca_crypto(NULL, 0);
    if (C && s->key)
        C->pkey_free(s->key);
    s->key = NULL;
    free(s->cert_der);
    s->cert_der = NULL;
    s->cert_len = 0;
    gsp_cert_set_destroy(&s->cset);
}

void gsign_destroy(gsign_t *s)
{
    forget(s);
}

int gsign_refresh(gsign_t *s)
{
    if (!s->cert_path[0])
        return 0;
    struct stat st;
    int64_t mt = -1, size = -1;
    if (stat(s->cert_path, &st) == 0) {
        mt = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
        size = (int64_t)st.st_size;
    }
    if (mt == s->mtime_ns && size == s->size)
        return 0;
    s->mtime_ns = mt;
    s->size = size;
    int had = s->key != NULL;
    forget(s);
    if (mt < 0)
        return had;
    size_t kl = 0, cl = 0;
    /* A certificate or key file is small: at most 64 KiB. */
    char *kp = mesh_file_read(s->key_path, 64 << 10, 0, &kl, NULL, 0);
    char *cp = mesh_file_read(s->cert_path, 64 << 10, 0, &cl, NULL, 0);
    const mesh_crypto_t *C = ca_crypto(NULL, 0);
    X509 *x = cp && C ? ca_pem_read_x509(cp, cl) : NULL;
    EVP_PKEY *k = kp && C ? ca_pem_read_key(kp, kl) : NULL;
    int n = x ? C->i2d_x509(x, NULL) : -1;
    if (!x || !k || C->x509_check_private_key(x, k) != 1 || n <= 0 || n > GSP_CERT_MAX) {
        mesh_warn("gossip",
                  "%s and %s: no matching certificate and key (at most %d bytes DER): our gossip "
                  "record goes unsigned",
                  s->cert_path, s->key_path, GSP_CERT_MAX);
        if (k)
            C->pkey_free(k);
    } else if ((s->cert_der = malloc((size_t)n))) {
        unsigned char *p = s->cert_der;
        C->i2d_x509(x, &p);
        s->cert_len = (size_t)n;
        if (gsp_cert_set_make(&s->cset, s->cert_der, s->cert_len) != 0) {
            C->pkey_free(k);
            k = NULL;
            free(s->cert_der);
            s->cert_der = NULL;
            s->cert_len = 0;
            goto out;
        }
        s->key = k;
        mesh_info("gossip", "signing our gossip record with the identity in %s", s->cert_path);
    } else {
        C->pkey_free(k);
    }
out:
    if (x)
        C->x509_free(x);
    if (C)
        C->err_clear_error();
    free(kp);
    free(cp);
    return had || s->key != NULL;
}

size_t gsign_sign(const gsign_t *s, const char *node, uint64_t version, const uint8_t *rec,
                  size_t len, uint8_t *sig)
{
    if (!s->key)
        return 0;
    int n = rsig_sign(s->key, node, version, rec, len, sig, RSIG_SIG_MAX);
    if (n <= 0) {
        mesh_warn("gossip", "cannot sign our gossip record with %s: it goes unsigned", s->key_path);
        return 0;
    }
    return (size_t)n;
}
