/*
 * tests/unit/ca/test_record_sig.c: signed gossip records (ca/record_sig.h) and the service
 * rule table (ca/svc_rules.h), with certificates from the mesh CA's own signing core.
 *
 * A record signed by node-a with its key and leaf verifies; a tampered record, node-a's
 * certificate used by node-b, a service neither in the certificate nor in a rule, an expired
 * leaf, a leaf of another CA and an unsigned record are each refused with their reason; a rule
 * lets an identity register a service its certificate does not name. The rule parser reports
 * FILE:LINE. The record travels in gossip metadata ("sig", "cert") and the signed bytes are
 * the instance array as decoded (gossip/meta.h).
 */
#include "ca/record_sig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca/ca_sign.h"
#include "gossip/meta.h"
#include "tests/check.h"

#define NOW 1767225600 /* 2026-01-01 00:00:00 UTC */

static const mesh_crypto_t *C;

typedef struct ident {
    EVP_PKEY *key;
    uint8_t der[8192];
    size_t der_len;
} ident_t;

/* A key and a leaf for node (services svcs) from root, valid from at for lifetime_s. */
static void issue(ident_t *id, ca_root_t *root, const char *node, const char *const *svcs,
                  size_t n_svcs, int64_t at, int64_t lifetime_s)
{
    id->key = ca_key_generate();
    CHECK(id->key);
    X509_REQ *r = C->x509_req_new();
    CHECK(r && C->x509_req_set_version(r, 0) == 1);
    CHECK(C->x509_req_set_pubkey(r, id->key) == 1);
    CHECK(C->x509_req_sign(r, id->key, C->sha256()) > 0);
    char *csr = ca_pem_write_req(r);
    C->x509_req_free(r);
    ca_sign_req_t req = {.csr_pem = csr,
                         .csr_len = strlen(csr),
                         .node = node,
                         .services = svcs,
                         .n_services = n_svcs,
                         .lifetime_s = lifetime_s};
    ca_issued_t out;
    char err[512];
    CHECK(ca_sign(root, &req, at, &out, err, sizeof(err)) == CA_SIGN_OK);
    X509 *x = ca_pem_read_x509(out.cert_pem, strlen(out.cert_pem));
    CHECK(x);
    unsigned char *p = id->der;
    int n = C->i2d_x509(x, NULL);
    CHECK(n > 0 && (size_t)n <= sizeof(id->der));
    CHECK(C->i2d_x509(x, &p) == n);
    id->der_len = (size_t)n;
    C->x509_free(x);
    ca_issued_destroy(&out);
    free(csr);
}

static const uint8_t REC[] = "\x91\x98\xa9shop.Cart"; /* any bytes: the signer does not parse */

static int64_t at = NOW; /* the time verify() checks at */

#define VER 1767225600123ULL /* the metadata version records are signed at (a wall clock in ms) */

static rsig_result_t verify(rsig_trust_t *t, const svr_rules_t *rules, const char *node,
                            const ident_t *id, const uint8_t *rec, size_t rec_len,
                            const uint8_t *sig, size_t sig_len, const char *svc, char *err)
{
    const char *svcs[] = {svc};
    rsig_record_t r = {.node = node,
                       .rec = rec,
                       .rec_len = rec_len,
                       .sig = sig,
                       .sig_len = sig_len,
                       .cert_der = id ? id->der : NULL,
                       .cert_len = id ? id->der_len : 0,
                       .services = svcs,
                       .n_services = svc ? 1 : 0,
                       .version = VER};
    size_t refused = 99;
    rsig_result_t res = rsig_verify(t, rules, &r, at, &refused, err, 512);
    CHECK(res != RSIG_SERVICE_NOT_ALLOWED || refused == 0);
    return res;
}

static void test_records(void)
{
    char err[512];
    ca_root_t root, other;
    CHECK(ca_root_create(&root, "example.org", 10, NOW - 86400, err, sizeof(err)) == 0);
    CHECK(ca_root_create(&other, "example.org", 10, NOW - 86400, err, sizeof(err)) == 0);
    rsig_trust_t *t =
        rsig_trust_new(root.cert_pem, strlen(root.cert_pem), "ca.pem", err, sizeof(err));
    CHECK(t);
    const char *a_svcs[] = {"shop.Cart"};
    ident_t a, b, old, foreign;
    issue(&a, &root, "node-a", a_svcs, 1, NOW - 60, 0);
    issue(&b, &root, "node-b", NULL, 0, NOW - 60, 0);
    issue(&old, &root, "node-a", a_svcs, 1, NOW - 7200, 3600);
    issue(&foreign, &other, "node-a", a_svcs, 1, NOW - 60, 0);

    uint8_t sig[RSIG_SIG_MAX];
    int sl = rsig_sign(a.key, "node-a", VER, REC, sizeof(REC), sig, sizeof(sig));
    CHECK(sl > 0 && sl <= 72); /* ECDSA P-256, DER */
    /* The round trip. */
    CHECK(verify(t, NULL, "node-a", &a, REC, sizeof(REC), sig, (size_t)sl, "shop.Cart", err) ==
          RSIG_OK);
    /* A tampered record. */
    uint8_t bad[sizeof(REC)];
    memcpy(bad, REC, sizeof(REC));
    bad[3] ^= 1;
    CHECK(verify(t, NULL, "node-a", &a, bad, sizeof(bad), sig, (size_t)sl, "shop.Cart", err) ==
          RSIG_BAD_SIGNATURE);
    CHECK_CONTAINS(err, "does not verify");
    /* Node B announcing A's record with A's certificate: wrong identity. */
    CHECK(verify(t, NULL, "node-b", &a, REC, sizeof(REC), sig, (size_t)sl, "shop.Cart", err) ==
          RSIG_WRONG_IDENTITY);
    CHECK_CONTAINS(err, "identity of node node-a");
    /* Node B signing a claim on shop.Cart with its own identity: not allowed. */
    int bl = rsig_sign(b.key, "node-b", VER, REC, sizeof(REC), sig, sizeof(sig));
    CHECK(bl > 0);
    CHECK(verify(t, NULL, "node-b", &b, REC, sizeof(REC), sig, (size_t)bl, "shop.Cart", err) ==
          RSIG_SERVICE_NOT_ALLOWED);
    CHECK_CONTAINS(err, "may not register shop.Cart");
    /* ... unless a rule allows it (by node name glob, or by full SPIFFE ID). */
    const char *rules_txt = "# who may register what\n"
                            "shop.Order   node-*\n"
                            "\n"
                            "shop.C*  spiffe://example.org/node/node-b   # the cart team's\n";
    svr_rules_t *rules = svr_rules_parse(rules_txt, strlen(rules_txt), "rules", err, sizeof(err));
    CHECK(rules && svr_rules_count(rules) == 2);
    CHECK(verify(t, rules, "node-b", &b, REC, sizeof(REC), sig, (size_t)bl, "shop.Cart", err) ==
          RSIG_OK);
    CHECK(verify(t, rules, "node-b", &b, REC, sizeof(REC), sig, (size_t)bl, "shop.Order", err) ==
          RSIG_OK);
    CHECK(verify(t, rules, "node-b", &b, REC, sizeof(REC), sig, (size_t)bl, "bank.Ledger", err) ==
          RSIG_SERVICE_NOT_ALLOWED);
    svr_rules_free(rules);
    /* Expired leaf. */
    int ol = rsig_sign(old.key, "node-a", VER, REC, sizeof(REC), sig, sizeof(sig));
    CHECK(verify(t, NULL, "node-a", &old, REC, sizeof(REC), sig, (size_t)ol, "shop.Cart", err) ==
          RSIG_EXPIRED);
    /* A leaf of another CA. */
    int fl = rsig_sign(foreign.key, "node-a", VER, REC, sizeof(REC), sig, sizeof(sig));
    CHECK(verify(t, NULL, "node-a", &foreign, REC, sizeof(REC), sig, (size_t)fl, "shop.Cart",
                 err) == RSIG_WRONG_CA);
    CHECK_CONTAINS(err, "does not verify against the gossip CA");
    /* Unsigned, and garbage as a certificate. */
    CHECK(verify(t, NULL, "node-a", NULL, REC, sizeof(REC), NULL, 0, "shop.Cart", err) ==
          RSIG_UNSIGNED);
    ident_t junk = {.der_len = 40};
    memset(junk.der, 0x30, 40);
    CHECK(verify(t, NULL, "node-a", &junk, REC, sizeof(REC), sig, (size_t)fl, "shop.Cart", err) ==
          RSIG_BAD_CERT);
    CHECK_STR(rsig_result_name(RSIG_WRONG_IDENTITY), "wrong_identity");

    /* The certificate cache: a's checks were cached; past its notAfter it is refused anyway,
     * and a tampered record is still caught on a cache hit. */
    uint64_t hits, misses;
    rsig_trust_stats(t, &hits, &misses);
    CHECK(hits > 0 && misses >= 5);
    sl = rsig_sign(a.key, "node-a", VER, REC, sizeof(REC), sig, sizeof(sig));
    at = NOW + 2 * 86400;
    CHECK(verify(t, NULL, "node-a", &a, REC, sizeof(REC), sig, (size_t)sl, "shop.Cart", err) ==
          RSIG_EXPIRED);
    at = NOW;
    CHECK(verify(t, NULL, "node-a", &a, REC, sizeof(REC), sig, (size_t)sl, "shop.Cart", err) ==
          RSIG_OK);
    CHECK(verify(t, NULL, "node-a", &a, bad, sizeof(bad), sig, (size_t)sl, "shop.Cart", err) ==
          RSIG_BAD_SIGNATURE);

    /* The cost of one verification, printed, never asserted: a certificate seen for the first
     * time (a fresh trust each time: chain, identity, signature), and a new record of a known
     * certificate (a cache hit: the signature alone). */
    enum { N = 200 };
    double cold = 0, warm;
    struct timespec t0, t1;
    for (int i = 0; i < N / 4; i++) {
        rsig_trust_t *fresh =
            rsig_trust_new(root.cert_pem, strlen(root.cert_pem), "ca.pem", err, sizeof(err));
        clock_gettime(CLOCK_MONOTONIC, &t0);
        CHECK(verify(fresh, NULL, "node-a", &a, REC, sizeof(REC), sig, (size_t)sl, "shop.Cart",
                     err) == RSIG_OK);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        cold += (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
        rsig_trust_free(fresh);
    }
    cold = cold / 1e3 / (N / 4);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < N; i++)
        CHECK(verify(t, NULL, "node-a", &a, REC, sizeof(REC), sig, (size_t)sl, "shop.Cart", err) ==
              RSIG_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    warm = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / 1e3 / N;
    printf("one record verification: %.1f us with a new certificate (chain + identity + ECDSA "
           "P-256), %.1f us with a known one (ECDSA P-256)\n",
           cold, warm);

    C->pkey_free(a.key);
    C->pkey_free(b.key);
    C->pkey_free(old.key);
    C->pkey_free(foreign.key);
    rsig_trust_free(t);
    ca_root_destroy(&root);
    ca_root_destroy(&other);
}

/* Replays: a record signed at one metadata version and re-sent claiming a newer one fails its
 * signature; a record at a version below the member's last accepted one is stale, however well
 * signed; a v1 record (no version, what nodes before v2 sign) is read until the member was
 * accepted with v2, then it is stale too. */
static void test_replay(void)
{
    char err[512];
    ca_root_t root;
    CHECK(ca_root_create(&root, "example.org", 10, NOW - 86400, err, sizeof(err)) == 0);
    rsig_trust_t *t =
        rsig_trust_new(root.cert_pem, strlen(root.cert_pem), "ca.pem", err, sizeof(err));
    CHECK(t);
    const char *svcs[] = {"shop.Cart"};
    ident_t a;
    issue(&a, &root, "node-a", svcs, 1, NOW - 60, 0);
    static const uint8_t OLD[] = "\x91\x98\xa9shop.Cart"
                                 "\xaf"
                                 "10.0.0.1:50051";
    static const uint8_t NEW[] = "\x91\x98\xa9shop.Cart"
                                 "\xaf"
                                 "10.0.0.2:50051";
    uint8_t sig_old[RSIG_SIG_MAX], sig_new[RSIG_SIG_MAX], sig_v1[RSIG_SIG_MAX];
    int lo = rsig_sign(a.key, "node-a", 100, OLD, sizeof(OLD), sig_old, sizeof(sig_old));
    int ln = rsig_sign(a.key, "node-a", 200, NEW, sizeof(NEW), sig_new, sizeof(sig_new));
    int l1 = rsig_sign_v1(a.key, "node-a", OLD, sizeof(OLD), sig_v1, sizeof(sig_v1));
    CHECK(lo > 0 && ln > 0 && l1 > 0);
    rsig_record_t r = {.node = "node-a",
                       .rec = OLD,
                       .rec_len = sizeof(OLD),
                       .sig = sig_old,
                       .sig_len = (size_t)lo,
                       .cert_der = a.der,
                       .cert_len = a.der_len,
                       .services = svcs,
                       .n_services = 1,
                       .version = 100};
    CHECK(rsig_verify(t, NULL, &r, NOW, NULL, err, sizeof(err)) == RSIG_OK);
    /* the old record re-sent at a version above the current one: its signature says 100 */
    r.version = 201;
    CHECK(rsig_verify(t, NULL, &r, NOW, NULL, err, sizeof(err)) == RSIG_BAD_SIGNATURE);
    CHECK_CONTAINS(err, "does not verify at version 201");
    /* ... at its own version, once the member was accepted at 200: stale */
    r.version = 100;
    r.accepted = 200;
    r.pinned = 1;
    CHECK(rsig_verify(t, NULL, &r, NOW, NULL, err, sizeof(err)) == RSIG_STALE);
    CHECK_CONTAINS(err, "version 100 is older than the one accepted (200)");
    CHECK_STR(rsig_result_name(RSIG_STALE), "stale");
    /* the current record verifies, at its version and after it was accepted (the same again) */
    r.rec = NEW;
    r.rec_len = sizeof(NEW);
    r.sig = sig_new;
    r.sig_len = (size_t)ln;
    r.version = 200;
    CHECK(rsig_verify(t, NULL, &r, NOW, NULL, err, sizeof(err)) == RSIG_OK);
    /* v2 signatures do not verify as v1 and the other way round */
    r.v1 = 1;
    r.pinned = 0;
    CHECK(rsig_verify(t, NULL, &r, NOW, NULL, err, sizeof(err)) == RSIG_BAD_SIGNATURE);
    /* a v1 record: read (whatever version it claims) while the member has not shown v2 ... */
    r.rec = OLD;
    r.rec_len = sizeof(OLD);
    r.sig = sig_v1;
    r.sig_len = (size_t)l1;
    r.version = 5000;
    CHECK(rsig_verify(t, NULL, &r, NOW, NULL, err, sizeof(err)) == RSIG_OK);
    r.v1 = 0;
    CHECK(rsig_verify(t, NULL, &r, NOW, NULL, err, sizeof(err)) == RSIG_BAD_SIGNATURE);
    /* ... and refused once it has */
    r.v1 = 1;
    r.pinned = 1;
    CHECK(rsig_verify(t, NULL, &r, NOW, NULL, err, sizeof(err)) == RSIG_STALE);
    CHECK_CONTAINS(err, "without a version (v1)");
    C->pkey_free(a.key);
    rsig_trust_free(t);
    ca_root_destroy(&root);
}

static void test_rules_errors(void)
{
    char err[512];
    CHECK(!svr_rules_parse("a.B x\nonly-one\n", 16, "rules.txt", err, sizeof(err)));
    CHECK_CONTAINS(err, "rules.txt:2:");
    CHECK(!svr_rules_parse("a b c\n", 6, "r", err, sizeof(err)));
    CHECK_CONTAINS(err, "r:1: expected two fields");
    svr_rules_t *r = svr_rules_parse("", 0, "r", err, sizeof(err));
    CHECK(r && svr_rules_count(r) == 0 && !svr_rules_allow(r, "a.B", "n", NULL));
    svr_rules_free(r);
    CHECK(!svr_rules_load("/nonexistent/rules", err, sizeof(err)));
    CHECK_CONTAINS(err, "/nonexistent/rules");
}

/* The metadata carries the signature and the certificate; the signed bytes are "i"'s. */
static void test_meta_fields(void)
{
    gsp_inst_t in = {.service = {"shop.Cart", 9}, .addr = {"127.0.0.1:1", 11}, .weight = 1};
    uint8_t bare[512], signed_meta[2048];
    int bl = gsp_meta_encode(&in, 1, bare, sizeof(bare));
    CHECK(bl > 0);
    static gsp_node_attrs_t na, back;
    uint8_t cert[700];
    memset(cert, 0x5a, sizeof(cert));
    na.sig = (gsp_str_t){"0123456789", 10};
    na.cert = (gsp_str_t){(const char *)cert, sizeof(cert)};
    int ml = gsp_meta_encode_node(&in, 1, &na, signed_meta, sizeof(signed_meta));
    CHECK(ml > bl + 700);
    gsp_inst_t out[4];
    size_t n;
    CHECK(gsp_meta_decode_node(signed_meta, (size_t)ml, out, 4, &n, &back) == 0 && n == 1);
    CHECK(back.sig.n == 10 && !memcmp(back.sig.p, "0123456789", 10));
    CHECK(back.cert.n == sizeof(cert) && !memcmp(back.cert.p, cert, sizeof(cert)));
    CHECK(back.insts_raw.n == (uint32_t)bl && !memcmp(back.insts_raw.p, bare, (size_t)bl));
    /* The bare array: unsigned, and its bytes are the record. */
    CHECK(gsp_meta_decode_node(bare, (size_t)bl, out, 4, &n, &back) == 0);
    CHECK(back.sig.n == 0 && back.cert.n == 0 && back.insts_raw.n == (uint32_t)bl);
    /* A signature over GSP_SIG_MAX is refused whole. */
    static uint8_t big[GSP_SIG_MAX + 1];
    na.sig = (gsp_str_t){(const char *)big, sizeof(big)};
    CHECK(gsp_meta_encode_node(&in, 1, &na, signed_meta, sizeof(signed_meta)) == -1);
}

int main(void)
{
    char err[256];
    C = ca_crypto(err, sizeof(err));
    CHECK(C);
    RUN(test_records);
    RUN(test_replay);
    RUN(test_rules_errors);
    RUN(test_meta_fields);
    return 0;
}
