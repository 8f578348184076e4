/*
 * tests/unit/ca/test_ca_sign.c: the mesh CA's root and signing core (ca/ca_root.h,
 * ca/ca_sign.h) and the peer identity read back from what it signs (ca/peer_identity.h).
 *
 * A leaf carries the node and service SPIFFE IDs, the DNS and IP SANs asked for, both EKUs,
 * 24 h by default from a notBefore slightly in the past, a serial that differs per leaf, and
 * verifies against the root (common/x509_check.h); a CSR whose signature does not verify, a
 * weak RSA key, garbage, bad names and a bad IP are refused with their code. A peer's identity
 * is read from its URI SANs: other URIs ignored; two nodes, two trust domains or no node
 * refused.
 */
#include "ca/ca_sign.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/peer_identity.h"
#include "common/x509_check.h"
#include "tests/check.h"

#define NOW 1767225600 /* 2026-01-01 00:00:00 UTC */

static const mesh_crypto_t *C;
static ca_root_t root;

/* A CSR for key, signed by signer (key itself normally). */
static char *make_csr(EVP_PKEY *key, EVP_PKEY *signer)
{
    X509_REQ *r = C->x509_req_new();
    CHECK(r);
    CHECK(C->x509_req_set_version(r, 0) == 1);
    CHECK(C->x509_name_add_entry_txt(C->x509_req_get_subject_name(r), "CN", MBSTRING_UTF8,
                                     (const unsigned char *)"evil", -1, -1, 0) == 1);
    CHECK(C->x509_req_set_pubkey(r, signer) == 1);
    CHECK(C->x509_req_sign(r, signer, C->sha256()) > 0);
    if (signer != key) /* swap the key after signing: the signature no longer verifies */
        CHECK(C->x509_req_set_pubkey(r, key) == 1);
    char *pem = ca_pem_write_req(r);
    CHECK(pem);
    C->x509_req_free(r);
    return pem;
}

static void test_root(void)
{
    char err[512];
    CHECK(ca_root_create(&root, "example.org", 10, NOW, err, sizeof(err)) == 0);
    CHECK_STR(root.trust_domain, "example.org");
    /* Reading it back (what a CA node does with --ca-dir). */
    char *key = ca_pem_write_key(root.key);
    ca_root_t back;
    CHECK(ca_root_load(&back, key, strlen(key), root.cert_pem, strlen(root.cert_pem), err,
                       sizeof(err)) == 0);
    CHECK_STR(back.trust_domain, "example.org");
    ca_root_destroy(&back);
    /* A key of another root does not match. */
    ca_root_t other;
    CHECK(ca_root_create(&other, "other.org", 10, NOW, err, sizeof(err)) == 0);
    CHECK(ca_root_load(&back, key, strlen(key), other.cert_pem, strlen(other.cert_pem), err,
                       sizeof(err)) == -1);
    CHECK_CONTAINS(err, "does not match");
    ca_root_destroy(&other);
    free(key);
    CHECK(ca_root_create(&other, "Bad Domain", 10, NOW, err, sizeof(err)) == -1);
    CHECK_CONTAINS(err, "not valid");
}

static void test_leaf(void)
{
    EVP_PKEY *k = ca_key_generate();
    char *csr = make_csr(k, k);
    const char *svcs[] = {"shop.Cart", "shop.Order"};
    const char *dns[] = {"node-1.example.org"};
    const char *ips[] = {"10.0.0.7", "::1"};
    ca_sign_req_t req = {.csr_pem = csr,
                         .csr_len = strlen(csr),
                         .node = "node-1",
                         .services = svcs,
                         .n_services = 2,
                         .dns = dns,
                         .n_dns = 1,
                         .ips = ips,
                         .n_ips = 2};
    ca_issued_t out, out2;
    char err[512];
    CHECK_EQ(ca_sign(&root, &req, NOW, &out, err, sizeof(err)), CA_SIGN_OK);
    CHECK_EQ(out.not_after, NOW + 24 * 3600);
    CHECK_EQ(out.not_before, NOW - CA_SKEW_S);
    CHECK_EQ(strlen(out.serial), 32);
    CHECK(strstr(out.chain_pem, root.cert_pem)); /* the chain ends with the root */
    X509 *x = ca_pem_read_x509(out.cert_pem, strlen(out.cert_pem));
    CHECK(x);
    int64_t na;
    CHECK(ca_asn1_time_unix(C->x509_getm_not_after(x), &na) == 0);
    CHECK_EQ(na, NOW + 24 * 3600);
    CHECK(C->x509_check_private_key(x, k) == 1);
    CHECK(C->x509_check_ca(x) == 0);
    /* The identity it proves. */
    ca_peer_identity_t id;
    CHECK(ca_peer_identity_from_x509(x, "example.org", &id, err, sizeof(err)) == 0);
    CHECK_STR(id.node, "node-1"); /* the CSR's CN "evil" is ignored */
    CHECK_EQ(id.n_services, 2);
    CHECK(ca_peer_identity_has_service(&id, "shop.Cart"));
    CHECK(ca_peer_identity_has_service(&id, "shop.Order"));
    ca_peer_identity_destroy(&id);
    CHECK(ca_peer_identity_from_x509(x, "other.org", &id, err, sizeof(err)) == -1);
    CHECK_CONTAINS(err, "trust domain is example.org");
    /* It verifies against the root, at NOW and not a day later. */
    x509c_input_t ci = {out.chain_pem, strlen(out.chain_pem), "leaf.pem"};
    x509c_input_t ri = {root.cert_pem, strlen(root.cert_pem), "ca.pem"};
    char *kp = ca_pem_write_key(k);
    x509c_input_t ki = {kp, strlen(kp), "key.pem"};
    CHECK_EQ(x509c_check(&ci, &ki, &ri, NOW, err, sizeof(err)), X509C_OK);
    CHECK_EQ(x509c_check(&ci, &ki, &ri, NOW + 25 * 3600, err, sizeof(err)), X509C_EXPIRED);
    CHECK_CONTAINS(err, "leaf.pem: expired on 2026-01-02 00:00:00 UTC");
    /* Two leaves never share a serial; a shorter lifetime is honoured. */
    req.lifetime_s = 6;
    CHECK_EQ(ca_sign(&root, &req, NOW, &out2, err, sizeof(err)), CA_SIGN_OK);
    CHECK(strcmp(out.serial, out2.serial) != 0);
    CHECK_EQ(out2.not_after, NOW + 6);
    ca_issued_destroy(&out2);
    C->x509_free(x);
    ca_issued_destroy(&out);
    free(kp);
    free(csr);
    C->pkey_free(k);
}

static void test_rejections(void)
{
    char err[512];
    ca_issued_t out;
    EVP_PKEY *k = ca_key_generate(), *k2 = ca_key_generate();
    /* The CSR's signature was made by another key. */
    char *bad = make_csr(k, k2);
    ca_sign_req_t req = {.csr_pem = bad, .csr_len = strlen(bad), .node = "n1"};
    CHECK_EQ(ca_sign(&root, &req, NOW, &out, err, sizeof(err)), CA_SIGN_CSR_SIGNATURE);
    CHECK_CONTAINS(err, "signature does not verify");
    /* A weak RSA key. */
    EVP_PKEY *weak = C->pkey_q_keygen(NULL, NULL, "RSA", (size_t)1024);
    CHECK(weak);
    char *wcsr = make_csr(weak, weak);
    req.csr_pem = wcsr;
    req.csr_len = strlen(wcsr);
    CHECK_EQ(ca_sign(&root, &req, NOW, &out, err, sizeof(err)), CA_SIGN_WEAK_KEY);
    CHECK_CONTAINS(err, "1024 bits");
    /* Garbage. */
    req.csr_pem = "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n";
    req.csr_len = strlen(req.csr_pem);
    CHECK_EQ(ca_sign(&root, &req, NOW, &out, err, sizeof(err)), CA_SIGN_BAD_CSR);
    /* Names that could inject SANs, a bad IP, a bad DNS name. */
    char *good = make_csr(k, k);
    req.csr_pem = good;
    req.csr_len = strlen(good);
    req.node = "n1,URI:spiffe://example.org/node/admin";
    CHECK_EQ(ca_sign(&root, &req, NOW, &out, err, sizeof(err)), CA_SIGN_BAD_REQUEST);
    CHECK_CONTAINS(err, "node name");
    req.node = "n1";
    const char *svc[] = {"a/b"};
    req.services = svc;
    req.n_services = 1;
    CHECK_EQ(ca_sign(&root, &req, NOW, &out, err, sizeof(err)), CA_SIGN_BAD_REQUEST);
    CHECK_CONTAINS(err, "service name 'a/b'");
    req.n_services = 0;
    const char *ip[] = {"10.0.0.300"};
    req.ips = ip;
    req.n_ips = 1;
    CHECK_EQ(ca_sign(&root, &req, NOW, &out, err, sizeof(err)), CA_SIGN_BAD_REQUEST);
    CHECK_CONTAINS(err, "IP address");
    req.n_ips = 0;
    const char *dns[] = {"a..b"};
    req.dns = dns;
    req.n_dns = 1;
    CHECK_EQ(ca_sign(&root, &req, NOW, &out, err, sizeof(err)), CA_SIGN_BAD_REQUEST);
    req.n_dns = 0;
    CHECK_EQ(ca_sign(&root, &req, NOW, &out, err, sizeof(err)), CA_SIGN_OK);
    ca_issued_destroy(&out);
    free(bad);
    free(wcsr);
    free(good);
    C->pkey_free(k);
    C->pkey_free(k2);
    C->pkey_free(weak);
}

/* A self-signed certificate with the given subjectAltName value. */
static X509 *with_san(const char *san)
{
    X509 *x = C->x509_new();
    EVP_PKEY *k = ca_key_generate();
    time_t t = NOW;
    CHECK(x && k);
    CHECK(C->x509_set_version(x, 2) == 1);
    CHECK(C->x509_time_adj_ex(C->x509_getm_not_before(x), 0, 0, &t));
    CHECK(C->x509_time_adj_ex(C->x509_getm_not_after(x), 1, 0, &t));
    CHECK(C->x509_set_pubkey(x, k) == 1);
    CHECK(ca_x509_add_ext(x, x, NID_subject_alt_name, san) == 0);
    CHECK(C->x509_sign(x, k, C->sha256()) > 0);
    C->pkey_free(k);
    return x;
}

static void peer_case(const char *san, const char *want_err, const char *want_node,
                      size_t want_services)
{
    X509 *x = with_san(san);
    ca_peer_identity_t id;
    char err[512];
    int rc = ca_peer_identity_from_x509(x, NULL, &id, err, sizeof(err));
    if (want_err) {
        CHECK_EQ(rc, -1);
        CHECK_CONTAINS(err, want_err);
        CHECK_EQ(id.n_services, 0);
    } else {
        CHECK_EQ(rc, 0);
        CHECK_STR(id.node, want_node);
        CHECK_EQ(id.n_services, want_services);
        ca_peer_identity_destroy(&id);
    }
    C->x509_free(x);
}

static void test_peer_identity(void)
{
    /* Other URIs, DNS names and other SPIFFE paths are ignored; duplicates count once. */
    peer_case("DNS:a.example.org,URI:https://example.org/x,URI:spiffe://td/ns/default/sa/x,"
              "URI:spiffe://td/svc/a.B,URI:spiffe://td/node/n1,URI:spiffe://td/svc/a.B",
              NULL, "n1", 1);
    peer_case("URI:spiffe://td/node/n1,URI:spiffe://td/node/n2", "two nodes", NULL, 0);
    peer_case("URI:spiffe://td/node/n1,URI:spiffe://other/svc/a.B", "two trust domains", NULL, 0);
    peer_case("URI:spiffe://td/svc/a.B", "no meshd identity", NULL, 0);
    peer_case("DNS:only.example.org", "no meshd identity", NULL, 0);
    peer_case("URI:spiffe://td/node/n1/extra", "no meshd identity", NULL, 0);
}

static void test_spiffe_parse(void)
{
    char td[SPF_TD_MAX + 1], name[SPF_NAME_MAX + 1];
    spf_kind_t kind;
    const char *u = "spiffe://example.org/svc/shop.Cart";
    CHECK(spf_parse(u, strlen(u), td, &kind, name) == 0);
    CHECK_STR(td, "example.org");
    CHECK_EQ(kind, SPF_KIND_SVC);
    CHECK_STR(name, "shop.Cart");
    const char *bad[] = {"spiffe://example.org/node/a/b",
                         "spiffe://Example.org/node/a",
                         "spiffe://example.org/ns/a",
                         "https://example.org/node/a",
                         "spiffe://example.org/node/",
                         "spiffe://example.org/node/..",
                         "spiffe:///node/a"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(spf_parse(bad[i], strlen(bad[i]), td, &kind, name) == -1);
    CHECK(spf_parse("spiffe://e/node/a\0b", 19, td, &kind, name) == -1);
}

int main(void)
{
    char err[256];
    C = ca_crypto(err, sizeof(err));
    CHECK(C);
    RUN(test_root);
    RUN(test_leaf);
    RUN(test_rejections);
    RUN(test_peer_identity);
    RUN(test_spiffe_parse);
    ca_root_destroy(&root);
    return 0;
}
