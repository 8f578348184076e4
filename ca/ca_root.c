/*
 * ca/ca_root.c: creating and loading the mesh CA's root key and certificate (see ca/ca_root.h).
 */
#include "ca/ca_root.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ca_root_destroy(ca_root_t *r)
{
    const mesh_crypto_t *C = ca_crypto(NULL, 0);
    if (C) {
        C->pkey_free(r->key);
        C->x509_free(r->cert);
    }
    free(r->cert_pem);
    memset(r, 0, sizeof(*r));
}

int ca_root_create(ca_root_t *r, const char *trust_domain, int days, int64_t now, char *err,
                   size_t errlen)
{
    memset(r, 0, sizeof(*r));
    const mesh_crypto_t *C = ca_crypto(err, errlen);
    if (!C)
        return -1;
    if (!spf_trust_domain_ok(trust_domain)) {
        snprintf(err, errlen,
                 "trust domain '%s' is not valid: 1-255 characters of a-z, 0-9, '.', '-', '_'",
                 trust_domain);
        return -1;
    }
    if (days < 1 || days > 36500) {
        snprintf(err, errlen, "--days %d: expected 1..36500", days);
        return -1;
    }
    snprintf(r->trust_domain, sizeof(r->trust_domain), "%s", trust_domain);
    r->key = ca_key_generate();
    r->cert = C->x509_new();
    if (!r->key || !r->cert)
        goto fail;
    time_t t = (time_t)now;
    X509_NAME *name = C->x509_get_subject_name(r->cert);
    char san[SPF_URI_MAX + 8];
    snprintf(san, sizeof(san), "URI:spiffe://%s", trust_domain);
    if (C->x509_set_version(r->cert, 2) != 1 || ca_x509_random_serial(r->cert, NULL) != 0 ||
        !C->x509_time_adj_ex(C->x509_getm_not_before(r->cert), 0, -CA_SKEW_S, &t) ||
        !C->x509_time_adj_ex(C->x509_getm_not_after(r->cert), days, 0, &t) ||
        C->x509_set_pubkey(r->cert, r->key) != 1 ||
        C->x509_name_add_entry_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)trust_domain,
                                   -1, -1, 0) != 1 ||
        C->x509_name_add_entry_txt(name, "CN", MBSTRING_UTF8,
                                   (const unsigned char *)"meshd mesh CA", -1, -1, 0) != 1 ||
        C->x509_set_issuer_name(r->cert, name) != 1 ||
        ca_x509_add_ext(r->cert, r->cert, NID_basic_constraints, "critical,CA:TRUE") != 0 ||
        ca_x509_add_ext(r->cert, r->cert, NID_key_usage, "critical,keyCertSign,cRLSign") != 0 ||
        ca_x509_add_ext(r->cert, r->cert, NID_subject_key_identifier, "hash") != 0 ||
        ca_x509_add_ext(r->cert, r->cert, NID_subject_alt_name, san) != 0 ||
        C->x509_sign(r->cert, r->key, C->sha256()) <= 0 ||
        !(r->cert_pem = ca_pem_write_x509(r->cert)))
        goto fail;
    return 0;
fail:
    ca_openssl_error(err, errlen, "out of memory");
    ca_root_destroy(r);
    return -1;
}

/* The trust domain of a root: its URI SAN spiffe://TD (no path). */
static int root_trust_domain(const mesh_crypto_t *C, X509 *x, char td[SPF_TD_MAX + 1])
{
    GENERAL_NAMES *gens = C->x509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    int found = -1;
    int n = gens ? C->sk_num((const OPENSSL_STACK *)gens) : 0;
    for (int i = 0; i < n && found != 0; i++) {
        const GENERAL_NAME *g = C->sk_value((const OPENSSL_STACK *)gens, i);
        if (g->type != GEN_URI)
            continue;
        const char *s = (const char *)C->asn1_string_data(g->d.uniformResourceIdentifier);
        int len = C->asn1_string_length(g->d.uniformResourceIdentifier);
        if (len > 9 && len - 9 <= SPF_TD_MAX && memcmp(s, "spiffe://", 9) == 0) {
            memcpy(td, s + 9, (size_t)len - 9);
            td[len - 9] = '\0';
            if (spf_trust_domain_ok(td))
                found = 0;
        }
    }
    C->general_names_free(gens);
    return found;
}

int ca_root_load(ca_root_t *r, const char *key_pem, size_t key_len, const char *cert_pem,
                 size_t cert_len, char *err, size_t errlen)
{
    memset(r, 0, sizeof(*r));
    const mesh_crypto_t *C = ca_crypto(err, errlen);
    if (!C)
        return -1;
    r->key = ca_pem_read_key(key_pem, key_len);
    r->cert = ca_pem_read_x509(cert_pem, cert_len);
    C->err_clear_error();
    if (!r->key || !r->cert) {
        snprintf(err, errlen, "%s is not a PEM %s", r->key ? "the certificate" : "the key",
                 r->key ? "certificate" : "private key (unencrypted)");
        goto fail;
    }
    if (C->x509_check_private_key(r->cert, r->key) != 1) {
        snprintf(err, errlen, "the key does not match the certificate");
        goto fail;
    }
    if (C->x509_check_ca(r->cert) < 1) {
        snprintf(err, errlen, "the certificate is not a CA (basicConstraints CA:TRUE)");
        goto fail;
    }
    if (root_trust_domain(C, r->cert, r->trust_domain) != 0) {
        snprintf(err, errlen,
                 "the certificate has no URI SAN spiffe://<trust domain> "
                 "(made by `meshd ca init`?)");
        goto fail;
    }
    if (!(r->cert_pem = ca_pem_write_x509(r->cert))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    C->err_clear_error();
    return 0;
fail:
    C->err_clear_error();
    ca_root_destroy(r);
    return -1;
}
