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

#define RSIG_TAG_V1 "meshd-gossip-record-v1"
#define RSIG_TAG_V2 "meshd-gossip-record-v2"

/* A certificate checked once (chain, validity, identity), for RSIG_CACHE_TTL_S: records of
 * later metadata versions cost a digest, a lookup and the signature check alone. */
typedef struct cert_entry {
    uint8_t digest[32]; /* SHA-256 of the DER */
    int used;
    X509 *leaf;            /* NULL when it did not parse */
    rsig_result_t rc;      /* of the chain and identity checks (RSIG_OK, or the reason) */
    char why[300];         /* the reason, without the node's name */
    ca_peer_identity_t id; /* when rc is RSIG_OK */
    int64_t checked_at, not_before, not_after;
} cert_entry_t;

struct rsig_trust {
    X509_STORE *store;
    cert_entry_t cache[RSIG_CACHE_MAX];
    size_t next; /* the entry replaced next (round robin) */
    uint64_t hits, misses;
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
    [RSIG_STALE] = "stale",
};

const char *rsig_result_name(rsig_result_t r)
{
    return (unsigned)r < RSIG_N_RESULTS ? names[r] : "unknown";
}

/* The bytes signed: tag, NUL, node, NUL, (v2) the version in 8 bytes big endian, record; into
 * a new buffer (free it). */
static uint8_t *tbs(int v1, const char *node, uint64_t version, const uint8_t *rec, size_t len,
                    size_t *out_len)
{
    const char *tag = v1 ? RSIG_TAG_V1 : RSIG_TAG_V2;
    size_t tl = strlen(tag) + 1, nl = strlen(node) + 1, vl = v1 ? 0 : 8;
    uint8_t *b = malloc(tl + nl + vl + len + 1);
    if (!b)
        return NULL;
    memcpy(b, tag, tl);
    memcpy(b + tl, node, nl);
    for (size_t i = 0; i < vl; i++)
        b[tl + nl + i] = (uint8_t)(version >> (56 - 8 * i));
    if (len)
        memcpy(b + tl + nl + vl, rec, len);
    *out_len = tl + nl + vl + len;
    return b;
}

/* The digest for key: none for Ed25519 (it hashes itself), SHA-256 otherwise. */
static const EVP_MD *md_for(const mesh_crypto_t *C, EVP_PKEY *key)
{
    return C->pkey_is_a(key, "ED25519") ? NULL : C->sha256();
}

static int sign(int v1, EVP_PKEY *key, const char *node, uint64_t version, const uint8_t *rec,
                size_t len, uint8_t *sig, size_t cap)
{
    const mesh_crypto_t *C = ca_crypto(NULL, 0);
    if (!C || !key || !node)
        return -1;
    size_t n;
    uint8_t *b = tbs(v1, node, version, rec, len, &n);
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

int rsig_sign(EVP_PKEY *key, const char *node, uint64_t version, const uint8_t *rec, size_t len,
              uint8_t *sig, size_t cap)
{
    return sign(0, key, node, version, rec, len, sig, cap);
}

int rsig_sign_v1(EVP_PKEY *key, const char *node, const uint8_t *rec, size_t len, uint8_t *sig,
                 size_t cap)
{
    return sign(1, key, node, 0, rec, len, sig, cap);
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

static void entry_clear(const mesh_crypto_t *C, cert_entry_t *e)
{
    if (C && e->leaf)
        C->x509_free(e->leaf);
    ca_peer_identity_destroy(&e->id);
    memset(e, 0, sizeof(*e));
}

void rsig_trust_stats(const rsig_trust_t *t, uint64_t *hits, uint64_t *misses)
{
    *hits = t ? t->hits : 0;
    *misses = t ? t->misses : 0;
}

void rsig_trust_free(rsig_trust_t *t)
{
    if (!t)
        return;
    const mesh_crypto_t *C = ca_crypto(NULL, 0);
    for (size_t i = 0; i < RSIG_CACHE_MAX; i++)
        entry_clear(C, &t->cache[i]);
    if (C && t->store)
        C->x509_store_free(t->store);
    free(t);
}

/* Chains leaf to the trust at now. */
static rsig_result_t chain(const mesh_crypto_t *C, const rsig_trust_t *t, X509 *leaf, int64_t now,
                           char *err, size_t errlen)
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
    snprintf(err, errlen, "its certificate does not verify against the gossip CA: %s",
             C->x509_verify_cert_error_string(e));
    return r;
}

/* Checks a certificate once: parse, chain at now, identity. Fills e. */
static void check_cert(const mesh_crypto_t *C, rsig_trust_t *t, cert_entry_t *e, const uint8_t *der,
                       size_t len, int64_t now)
{
    e->used = 1;
    e->checked_at = now;
    const unsigned char *p = der;
    e->leaf = len <= 0x7fffffff ? C->d2i_x509(NULL, &p, (long)len) : NULL;
    if (!e->leaf || p != der + len) {
        if (e->leaf)
            C->x509_free(e->leaf);
        e->leaf = NULL;
        e->rc = RSIG_BAD_CERT;
        snprintf(e->why, sizeof(e->why), "its certificate is not DER X.509");
        return;
    }
    if (ca_asn1_time_unix(C->x509_getm_not_before(e->leaf), &e->not_before) != 0 ||
        ca_asn1_time_unix(C->x509_getm_not_after(e->leaf), &e->not_after) != 0)
        e->not_before = e->not_after = 0; /* unreadable times: the chain check refuses it */
    e->rc = chain(C, t, e->leaf, now, e->why, sizeof(e->why));
    if (e->rc != RSIG_OK)
        return;
    char why[256];
    if (ca_peer_identity_from_x509(e->leaf, NULL, &e->id, why, sizeof(why)) != 0) {
        snprintf(e->why, sizeof(e->why), "its certificate names no meshd identity: %s", why);
        e->rc = RSIG_WRONG_IDENTITY;
    }
}

/* The checked entry for a certificate: from the cache while fresh and valid now, else checked
 * again (into the entry replaced next). */
static const cert_entry_t *lookup(const mesh_crypto_t *C, rsig_trust_t *t, const uint8_t *der,
                                  size_t len, int64_t now)
{
    uint8_t d[32];
    unsigned int dl = 0;
    if (C->digest(der, len, d, &dl, C->sha256(), NULL) != 1 || dl != sizeof(d))
        return NULL;
    cert_entry_t *e = NULL;
    for (size_t i = 0; i < RSIG_CACHE_MAX && !e; i++)
        if (t->cache[i].used && !memcmp(t->cache[i].digest, d, sizeof(d)))
            e = &t->cache[i];
    if (e && now >= e->checked_at && now - e->checked_at < RSIG_CACHE_TTL_S &&
        (e->rc != RSIG_OK || (now >= e->not_before && now <= e->not_after))) {
        t->hits++;
        return e;
    }
    t->misses++;
    if (!e) {
        e = &t->cache[t->next];
        t->next = (t->next + 1) % RSIG_CACHE_MAX;
    }
    entry_clear(C, e);
    memcpy(e->digest, d, sizeof(d));
    check_cert(C, t, e, der, len, now);
    return e;
}

rsig_result_t rsig_verify(rsig_trust_t *t, const svr_rules_t *rules, const rsig_record_t *r,
                          int64_t now, size_t *refused, char *err, size_t errlen)
{
    if (!r->sig || !r->sig_len || !r->cert_der || !r->cert_len) {
        snprintf(err, errlen, "node %s: its record is not signed", r->node);
        return RSIG_UNSIGNED;
    }
    if (r->v1 && r->pinned) {
        snprintf(err, errlen,
                 "node %s: its record is signed without a version (v1), after a versioned one "
                 "was accepted: a replay",
                 r->node);
        return RSIG_STALE;
    }
    if (!r->v1 && r->version < r->accepted) {
        snprintf(err, errlen,
                 "node %s: its record at version %llu is older than the one accepted (%llu): "
                 "a replay",
                 r->node, (unsigned long long)r->version, (unsigned long long)r->accepted);
        return RSIG_STALE;
    }
    const mesh_crypto_t *C = ca_crypto(err, errlen);
    if (!C || !t)
        return RSIG_INTERNAL;
    const cert_entry_t *e = lookup(C, t, r->cert_der, r->cert_len, now);
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return RSIG_INTERNAL;
    }
    if (e->rc != RSIG_OK) {
        snprintf(err, errlen, "node %s: %s", r->node, e->why);
        return e->rc;
    }
    const ca_peer_identity_t *id = &e->id;
    if (strcmp(id->node, r->node) != 0) {
        snprintf(err, errlen, "node %s: its record is signed by the identity of node %s", r->node,
                 id->node);
        return RSIG_WRONG_IDENTITY;
    }
    size_t n;
    uint8_t *b = NULL;
    EVP_MD_CTX *ctx = NULL;
    rsig_result_t rc;
    EVP_PKEY *pub = C->x509_get0_pubkey(e->leaf);
    if (!pub || !(b = tbs(r->v1, r->node, r->version, r->rec, r->rec_len, &n)) ||
        !(ctx = C->md_ctx_new())) {
        snprintf(err, errlen, "out of memory");
        rc = RSIG_INTERNAL;
        goto done;
    }
    if (C->digest_verify_init(ctx, NULL, md_for(C, pub), NULL, pub) != 1 ||
        C->digest_verify(ctx, r->sig, r->sig_len, b, n) != 1) {
        if (r->v1)
            snprintf(err, errlen, "node %s: the signature of its record does not verify", r->node);
        else
            snprintf(err, errlen,
                     "node %s: the signature of its record does not verify at version %llu",
                     r->node, (unsigned long long)r->version);
        rc = RSIG_BAD_SIGNATURE;
        goto done;
    }
    char uri[SPF_URI_MAX + 1];
    if (spf_format(uri, sizeof(uri), id->trust_domain, SPF_KIND_NODE, id->node) != 0)
        uri[0] = 0;
    for (size_t i = 0; i < r->n_services; i++) {
        const char *s = r->services[i];
        if (ca_peer_identity_has_service(id, s) ||
            svr_rules_allow(rules, s, id->node, uri[0] ? uri : NULL))
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
    return rc;
}
