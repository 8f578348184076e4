/*
 * ca/record_sig.c: signing and verifying gossip records (see ca/record_sig.h), through
 * libcrypto's table (common/crypto_lib.h): nothing here runs unless a node signs or verifies.
 */
#include "ca/record_sig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/peer_identity.h"
#include "ca/spiffe.h"

#define RSIG_TAG "meshd-gossip-record-v1"

struct rsig_trust {
    X509_STORE *store;
};

static const char *const names[RSIG_N_RESULTS] = {
    [RSIG_OK] = "ok",
    [RSIG_UNSIGNED] = "unsigned",
    [RSIG_BAD_CERT] = "bad_cert",
    [RSIG_NOT_YET_VALID] = "not_yet_valid",
    [RSIG_EXPIRED] = "expired",
    [RSIG_WRONG_CA] = "wrong_ca",
    [RSIG_WRONG_IDENTITY] = "wrong_identity",
    [RSIG_BAD_SIGNATURE] = "bad_signature",
    [RSIG_SERVICE_NOT_ALLOWED] = "service_not_allowed",
    [RSIG_INTERNAL] = "internal",
};

const char *rsig_result_name(rsig_result_t r)
{
    return (unsigned)r < RSIG_N_RESULTS ? names[r] : "unknown";
}

/* The bytes signed: tag, NUL, node, NUL, record; into a new buffer (*out, free it). */
static uint8_t *tbs(const char *node, const uint8_t *rec, size_t len, size_t *out_len)
{
    size_t tl = sizeof(RSIG_TAG), nl = strlen(node) + 1;
    uint8_t *b = malloc(tl + nl + len + 1);
    if (!b)
        return NULL;
    memcpy(b, RSIG_TAG, tl);
    memcpy(b + tl, node, nl);
    if (len)
        memcpy(b + tl + nl, rec, len);
    *out_len = tl + nl + len;
    return b;
}

/* The digest for key: none for Ed25519 (it hashes itself), SHA-256 otherwise. */
static const EVP_MD *md_for(const mesh_crypto_t *C, EVP_PKEY *key)
{
    return C->pkey_is_a(key, "ED25519") ? NULL : C->sha256();
}

int rsig_sign(EVP_PKEY *key, const char *node, const uint8_t *rec, size_t len, uint8_t *sig,
              size_t cap)
{
    const mesh_crypto_t *C = ca_crypto(NULL, 0);
    if (!C || !key || !node)
        return -1;
    size_t n;
    uint8_t *b = tbs(node, rec, len, &n);
    EVP_MD_CTX *ctx = C->md_ctx_new();
    int rc = -1;
    size_t sl = cap;
    if (b && ctx && C->digest_sign_init(ctx, NULL, md_for(C, key), NULL, key) == 1 &&
        C->digest_sign(ctx, NULL, &sl, b, n) == 1 && sl <= cap) {
        sl = cap;
        if (C->digest_sign(ctx, sig, &sl, b, n) == 1)
            rc = (int)sl;
    }
    C->err_clear_error();
    C->md_ctx_free(ctx);
    free(b);
    return rc;
}

rsig_trust_t *rsig_trust_new(const char *pem, size_t len, const char *name, char *err,
                             size_t errlen)
{
    const mesh_crypto_t *C = ca_crypto(err, errlen);
    if (!C)
        return NULL;
    rsig_trust_t *t = calloc(1, sizeof(*t));
    BIO *bio = len <= 0x7fffffff ? C->bio_new_mem_buf(pem, (int)len) : NULL;
    if (!t || !bio || !(t->store = C->x509_store_new())) {
        snprintf(err, errlen, "%s: out of memory", name);
        goto fail;
    }
    int n = 0;
    X509 *x;
    while ((x = C->pem_read_x509(bio, NULL, NULL, NULL))) {
        int ok = C->x509_store_add_cert(t->store, x);
        C->x509_free(x); /* the store holds its own reference */
        if (ok != 1) {
            snprintf(err, errlen, "%s: cannot add a CA certificate", name);
            goto fail;
        }
        n++;
    }
    C->err_clear_error();
    if (!n) {
        snprintf(err, errlen, "%s: no PEM certificate", name);
        goto fail;
    }
    C->bio_free(bio);
    return t;
fail:
    C->err_clear_error();
    if (bio)
        C->bio_free(bio);
    rsig_trust_free(t);
    return NULL;
}

void rsig_trust_free(rsig_trust_t *t)
{
    if (!t)
        return;
    const mesh_crypto_t *C = ca_crypto(NULL, 0);
    if (C && t->store)
        C->x509_store_free(t->store);
    free(t);
}

/* Chains leaf to the trust at now. */
static rsig_result_t chain(const mesh_crypto_t *C, const rsig_trust_t *t, X509 *leaf, int64_t now,
                           const char *node, char *err, size_t errlen)
{
    X509_STORE_CTX *ctx = C->x509_store_ctx_new();
    if (!ctx || C->x509_store_ctx_init(ctx, t->store, leaf, NULL) != 1) {
        if (ctx)
            C->x509_store_ctx_free(ctx);
        snprintf(err, errlen, "out of memory");
        return RSIG_INTERNAL;
    }
    C->x509_store_ctx_set_time(ctx, 0, (time_t)now);
    int ok = C->x509_verify_cert(ctx);
    int e = ok == 1 ? 0 : C->x509_store_ctx_get_error(ctx);
    C->x509_store_ctx_free(ctx);
    if (ok == 1)
        return RSIG_OK;
    rsig_result_t r = e == X509_V_ERR_CERT_HAS_EXPIRED     ? RSIG_EXPIRED
                      : e == X509_V_ERR_CERT_NOT_YET_VALID ? RSIG_NOT_YET_VALID
                                                           : RSIG_WRONG_CA;
    snprintf(err, errlen, "node %s: its certificate does not verify against the gossip CA: %s",
             node, C->x509_verify_cert_error_string(e));
    return r;
}

rsig_result_t rsig_verify(const rsig_trust_t *t, const svr_rules_t *rules, const rsig_record_t *r,
                          int64_t now, size_t *refused, char *err, size_t errlen)
{
    if (!r->sig || !r->sig_len || !r->cert_der || !r->cert_len) {
        snprintf(err, errlen, "node %s: its record is not signed", r->node);
        return RSIG_UNSIGNED;
    }
    const mesh_crypto_t *C = ca_crypto(err, errlen);
    if (!C || !t)
        return RSIG_INTERNAL;
    const unsigned char *p = r->cert_der;
    X509 *leaf = r->cert_len <= 0x7fffffff ? C->d2i_x509(NULL, &p, (long)r->cert_len) : NULL;
    if (!leaf || p != r->cert_der + r->cert_len) {
        if (leaf)
            C->x509_free(leaf);
        C->err_clear_error();
        snprintf(err, errlen, "node %s: its certificate is not DER X.509", r->node);
        return RSIG_BAD_CERT;
    }
    ca_peer_identity_t id = {0};
    uint8_t *b = NULL;
    EVP_MD_CTX *ctx = NULL;
    rsig_result_t rc = chain(C, t, leaf, now, r->node, err, errlen);
    if (rc != RSIG_OK)
        goto done;
    char why[256];
    if (ca_peer_identity_from_x509(leaf, NULL, &id, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "node %s: its certificate names no meshd identity: %s", r->node, why);
        rc = RSIG_WRONG_IDENTITY;
        goto done;
    }
    if (strcmp(id.node, r->node) != 0) {
        snprintf(err, errlen, "node %s: its record is signed by the identity of node %s", r->node,
                 id.node);
        rc = RSIG_WRONG_IDENTITY;
        goto done;
    }
    size_t n;
    EVP_PKEY *pub = C->x509_get0_pubkey(leaf);
    if (!pub || !(b = tbs(r->node, r->rec, r->rec_len, &n)) || !(ctx = C->md_ctx_new())) {
        snprintf(err, errlen, "out of memory");
        rc = RSIG_INTERNAL;
        goto done;
    }
    if (C->digest_verify_init(ctx, NULL, md_for(C, pub), NULL, pub) != 1 ||
        C->digest_verify(ctx, r->sig, r->sig_len, b, n) != 1) {
        snprintf(err, errlen, "node %s: the signature of its record does not verify", r->node);
        rc = RSIG_BAD_SIGNATURE;
        goto done;
    }
    char uri[SPF_URI_MAX + 1];
    if (spf_format(uri, sizeof(uri), id.trust_domain, SPF_KIND_NODE, id.node) != 0)
        uri[0] = 0;
    for (size_t i = 0; i < r->n_services; i++) {
        const char *s = r->services[i];
        if (ca_peer_identity_has_service(&id, s) ||
            svr_rules_allow(rules, s, id.node, uri[0] ? uri : NULL))
            continue;
        snprintf(err, errlen,
                 "node %s: may not register %s (not in its certificate, no rule allows it)",
                 r->node, s);
        rc = RSIG_SERVICE_NOT_ALLOWED;
        if (refused)
            *refused = i;
        goto done;
    }
    rc = RSIG_OK;
done:
    C->err_clear_error();
    if (ctx)
        C->md_ctx_free(ctx);
    free(b);
    ca_peer_identity_destroy(&id);
    C->x509_free(leaf);
    return rc;
}
