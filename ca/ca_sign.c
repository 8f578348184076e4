/*
 * ca/ca_sign.c: the mesh CA's signing core (see ca/ca_sign.h).
 */
#include "ca/ca_sign.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *ca_sign_err_name(ca_sign_err_t e)
{
    switch (e) {
    case CA_SIGN_OK:
        return "ok";
    case CA_SIGN_BAD_REQUEST:
        return "bad_request";
    case CA_SIGN_BAD_CSR:
        return "bad_csr";
    case CA_SIGN_CSR_SIGNATURE:
        return "csr_signature";
    case CA_SIGN_WEAK_KEY:
        return "weak_key";
    case CA_SIGN_INTERNAL:
        return "internal";
    }
    return "unknown";
}

void ca_issued_destroy(ca_issued_t *out)
{
    free(out->cert_pem);
    free(out->chain_pem);
    memset(out, 0, sizeof(*out));
}

/* A growing string for the subjectAltName value. */
typedef struct {
    char *s;
    size_t len, cap;
} sbuf_t;

static int sb_add(sbuf_t *b, const char *kind, const char *v)
{
    size_t need = b->len + strlen(kind) + strlen(v) + 3;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 512;
        while (cap < need)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s)
            return -1;
        b->s = s;
        b->cap = cap;
    }
    b->len += (size_t)sprintf(b->s + b->len, "%s%s:%s", b->len ? "," : "", kind, v);
    return 0;
}

/* A DNS name: labels of [A-Za-z0-9-], not starting or ending with '-', 1..253 bytes. */
static int dns_ok(const char *s)
{
    size_t n = strlen(s), lab = 0;
    if (n == 0 || n > 253)
        return 0;
    for (size_t i = 0; i <= n; i++) {
        char c = s[i];
        if (c == '.' || c == '\0') {
            if (lab == 0 || lab > 63 || s[i - 1] == '-')
                return 0;
            lab = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   (c == '-' && lab > 0)) {
            lab++;
        } else {
            return 0;
        }
    }
    return 1;
}

/* The canonical text of an IPv4 or IPv6 address, or -1. */
static int ip_canon(const char *s, char out[INET6_ADDRSTRLEN])
{
    unsigned char b[16];
    if (inet_pton(AF_INET, s, b) == 1)
        return inet_ntop(AF_INET, b, out, INET6_ADDRSTRLEN) ? 0 : -1;
    if (inet_pton(AF_INET6, s, b) == 1)
        return inet_ntop(AF_INET6, b, out, INET6_ADDRSTRLEN) ? 0 : -1;
    return -1;
}

/* Builds "URI:...,DNS:...,IP:..." for req, or a BAD_REQUEST sentence. */
static ca_sign_err_t build_san(const ca_root_t *root, const ca_sign_req_t *req, sbuf_t *b,
                               char *err, size_t errlen)
{
    char uri[SPF_URI_MAX + 1];
    if (spf_format(uri, sizeof(uri), root->trust_domain, SPF_KIND_NODE,
                   req->node ? req->node : "") != 0) {
        snprintf(err, errlen, "node name '%s' is not valid: 1-%d characters of A-Z a-z 0-9 . - _",
                 req->node ? req->node : "", SPF_NAME_MAX);
        return CA_SIGN_BAD_REQUEST;
    }
    if (sb_add(b, "URI", uri) != 0)
        return CA_SIGN_INTERNAL;
    if (req->n_services + req->n_dns + req->n_ips > CA_SIGN_MAX_NAMES) {
        snprintf(err, errlen, "%zu names asked for: at most %d per certificate",
                 req->n_services + req->n_dns + req->n_ips, CA_SIGN_MAX_NAMES);
        return CA_SIGN_BAD_REQUEST;
    }
    for (size_t i = 0; i < req->n_services; i++) {
        if (spf_format(uri, sizeof(uri), root->trust_domain, SPF_KIND_SVC, req->services[i]) != 0) {
            snprintf(err, errlen,
                     "service name '%s' is not valid: 1-%d characters of A-Z a-z 0-9 . - _",
                     req->services[i], SPF_NAME_MAX);
            return CA_SIGN_BAD_REQUEST;
        }
        if (sb_add(b, "URI", uri) != 0)
            return CA_SIGN_INTERNAL;
    }
    for (size_t i = 0; i < req->n_dns; i++) {
        if (!dns_ok(req->dns[i])) {
            snprintf(err, errlen, "DNS name '%s' is not valid", req->dns[i]);
            return CA_SIGN_BAD_REQUEST;
        }
        if (sb_add(b, "DNS", req->dns[i]) != 0)
            return CA_SIGN_INTERNAL;
    }
    for (size_t i = 0; i < req->n_ips; i++) {
        char ip[INET6_ADDRSTRLEN];
        if (ip_canon(req->ips[i], ip) != 0) {
            snprintf(err, errlen, "IP address '%s' is not valid", req->ips[i]);
            return CA_SIGN_BAD_REQUEST;
        }
        if (sb_add(b, "IP", ip) != 0)
            return CA_SIGN_INTERNAL;
    }
    return CA_SIGN_OK;
}

/* Refuses keys too weak to certify. */
static ca_sign_err_t check_key(const mesh_crypto_t *C, EVP_PKEY *k, char *err, size_t errlen)
{
    int bits = C->pkey_get_bits(k);
    if (C->pkey_is_a(k, "RSA") || C->pkey_is_a(k, "RSA-PSS")) {
        if (bits < 2048) {
            snprintf(err, errlen, "the CSR's RSA key has %d bits: at least 2048 are required",
                     bits);
            return CA_SIGN_WEAK_KEY;
        }
        return CA_SIGN_OK;
    }
    if (C->pkey_is_a(k, "EC")) {
        if (bits < 256) {
            snprintf(err, errlen, "the CSR's EC key has %d bits: at least 256 are required", bits);
            return CA_SIGN_WEAK_KEY;
        }
        return CA_SIGN_OK;
    }
    if (C->pkey_is_a(k, "ED25519"))
        return CA_SIGN_OK;
    snprintf(err, errlen,
             "the CSR's key type is not certified here (use EC P-256, RSA 2048+ or "
             "Ed25519)");
    return CA_SIGN_WEAK_KEY;
}

ca_sign_err_t ca_sign(const ca_root_t *root, const ca_sign_req_t *req, int64_t now,
                      ca_issued_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    const mesh_crypto_t *C = ca_crypto(err, errlen);
    if (!C)
        return CA_SIGN_INTERNAL;
    int64_t life = req->lifetime_s ? req->lifetime_s : CA_SIGN_DEFAULT_LIFETIME_S;
    if (life < 1 || life > 3650LL * 86400) {
        snprintf(err, errlen, "lifetime %lld s is not valid", (long long)life);
        return CA_SIGN_BAD_REQUEST;
    }
    sbuf_t san = {0};
    X509_REQ *csr = NULL;
    X509 *x = NULL;
    ca_sign_err_t rc = build_san(root, req, &san, err, errlen);
    if (rc != CA_SIGN_OK)
        goto done;
    rc = CA_SIGN_BAD_CSR;
    csr = ca_pem_read_req(req->csr_pem, req->csr_len);
    if (!csr) {
        snprintf(err, errlen, "the CSR is not a PEM certificate request");
        goto done;
    }
    EVP_PKEY *pub = C->x509_req_get0_pubkey(csr);
    if (!pub) {
        snprintf(err, errlen, "the CSR's public key cannot be read");
        goto done;
    }
    if ((rc = check_key(C, pub, err, errlen)) != CA_SIGN_OK)
        goto done;
    if (C->x509_req_verify(csr, pub) != 1) {
        rc = CA_SIGN_CSR_SIGNATURE;
        snprintf(err, errlen, "the CSR's signature does not verify with its own key");
        goto done;
    }
    rc = CA_SIGN_INTERNAL;
    if (!(x = C->x509_new()))
        goto done;
    time_t t = (time_t)now;
    X509_NAME *name = C->x509_get_subject_name(x);
    if (C->x509_set_version(x, 2) != 1 || ca_x509_random_serial(x, out->serial) != 0 ||
        !C->x509_time_adj_ex(C->x509_getm_not_before(x), 0, -CA_SKEW_S, &t) ||
        !C->x509_time_adj_ex(C->x509_getm_not_after(x), 0, (long)life, &t) ||
        C->x509_set_pubkey(x, pub) != 1 ||
        C->x509_name_add_entry_txt(name, "O", MBSTRING_UTF8,
                                   (const unsigned char *)root->trust_domain, -1, -1, 0) != 1 ||
        C->x509_name_add_entry_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)req->node, -1,
                                   -1, 0) != 1 ||
        C->x509_set_issuer_name(x, C->x509_get_subject_name(root->cert)) != 1 ||
        ca_x509_add_ext(x, root->cert, NID_basic_constraints, "critical,CA:FALSE") != 0 ||
        ca_x509_add_ext(x, root->cert, NID_key_usage,
                        "critical,digitalSignature,keyEncipherment") != 0 ||
        ca_x509_add_ext(x, root->cert, NID_ext_key_usage, "serverAuth,clientAuth") != 0 ||
        ca_x509_add_ext(x, root->cert, NID_subject_key_identifier, "hash") != 0 ||
        ca_x509_add_ext(x, root->cert, NID_authority_key_identifier, "keyid:always") != 0 ||
        ca_x509_add_ext(x, root->cert, NID_subject_alt_name, san.s) != 0 ||
        C->x509_sign(x, root->key, C->sha256()) <= 0) {
        ca_openssl_error(err, errlen, "out of memory");
        goto done;
    }
    out->not_before = now - CA_SKEW_S;
    out->not_after = now + life;
    out->cert_pem = ca_pem_write_x509(x);
    size_t nl = out->cert_pem ? strlen(out->cert_pem) : 0, rl = strlen(root->cert_pem);
    out->chain_pem = out->cert_pem ? malloc(nl + rl + 1) : NULL;
    if (!out->chain_pem) {
        snprintf(err, errlen, "out of memory");
        ca_issued_destroy(out);
        goto done;
    }
    memcpy(out->chain_pem, out->cert_pem, nl);
    memcpy(out->chain_pem + nl, root->cert_pem, rl + 1);
    rc = CA_SIGN_OK;
done:
    C->err_clear_error();
    C->x509_free(x);
    C->x509_req_free(csr);
    free(san.s);
    return rc;
}
