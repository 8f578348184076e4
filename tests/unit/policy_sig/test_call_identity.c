/*
 * tests/unit/policy_sig/test_call_identity.c: who a call is from (policy/call_identity.h).
 *
 * The trust decision for the identity token: over mTLS from a meshd node it is believed with
 * no mesh secret (signed or not); over plaintext it needs its HMAC, and without a secret it is
 * never believed; a client certificate that names no meshd node counts as plaintext (the
 * transport gives no peer identity then). A peer with a certificate and no (good) token is
 * itself the caller: its node's SPIFFE ID, source mtls. Expired and other-method tokens are
 * refused on every channel.
 */
#include "policy/call_identity.h"

#include <stdio.h>
#include <string.h>

#include "tests/check.h"

#define K1 "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" /* 32 bytes */
#define K2 "YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXowMTIzNDU=" /* 32 bytes */

static const char *path = "/pkg.Orders/Put";
static const int64_t now = 1764547200;

static pol_identity_t alice(void)
{
    pol_identity_t id;
    memset(&id, 0, sizeof(id));
    snprintf(id.sub, sizeof(id.sub), "alice");
    snprintf(id.source, sizeof(id.source), "jwt");
    id.nclaims = 1;
    snprintf(id.claims[0].name, sizeof(id.claims[0].name), "email");
    snprintf(id.claims[0].value, sizeof(id.claims[0].value), "alice@example.com");
    return id;
}

static int forwarder = 1; /* whether the peer of decide() may vouch for callers */

/* Runs the decision for one case. */
static pol_cid_t decide(const mesh_peer_id_t *peer, const pol_identity_keys_t *keys,
                        const char *tok, const char *p, pol_identity_t *out,
                        pol_identity_result_t *tr)
{
    pol_cid_in_t in = {.peer = peer,
                       .peer_forwards = peer && forwarder,
                       .keys = keys,
                       .token = tok,
                       .token_len = tok ? strlen(tok) : 0,
                       .path = p,
                       .path_len = strlen(p),
                       .now = now};
    memset(out, 0x5a, sizeof(*out)); /* nothing left over from before may pass for a result */
    return pol_call_identity(&in, out, tr);
}

static void test_trust(void)
{
    char err[128], signed_tok[POL_IDENTITY_TOKEN_MAX + 1], bare[POL_IDENTITY_TOKEN_MAX + 1],
        other[POL_IDENTITY_TOKEN_MAX + 1];
    pol_identity_keys_t k, k2;
    CHECK(pol_identity_keys_init(&k, K1, NULL, 30, err, sizeof(err)) == 0);
    CHECK(pol_identity_keys_init(&k2, K2, NULL, 30, err, sizeof(err)) == 0);
    pol_identity_t id = alice(), got;
    pol_identity_result_t tr;
    CHECK(pol_identity_mint(&k, &id, path, strlen(path), now, signed_tok, sizeof(signed_tok), err,
                            sizeof(err)) > 0);
    long n = pol_identity_mint_unsigned(30, &id, path, strlen(path), now, bare, sizeof(bare), err,
                                        sizeof(err));
    CHECK(n > 0);
    CHECK(bare[n - 1] == '.'); /* no MAC */
    CHECK(pol_identity_mint(&k2, &id, path, strlen(path), now, other, sizeof(other), err,
                            sizeof(err)) > 0);
    const char *svcs[] = {"pkg.Orders"};
    mesh_peer_id_t *node = mesh_peer_id_new("mesh.test", "proxy-1", svcs, 1);

    /* Over mTLS from a node: believed without a secret, signed or not, or with another
     * mesh's secret (the certificate is what vouches). */
    CHECK_EQ(decide(node, NULL, bare, path, &got, &tr), POL_CID_TOKEN_MTLS);
    CHECK_EQ(tr, POL_IDENTITY_OK);
    CHECK_STR(got.sub, "alice");
    CHECK_STR(got.source, "jwt");
    CHECK_EQ(got.nclaims, 1);
    CHECK_STR(got.claims[0].value, "alice@example.com");
    CHECK_EQ(decide(node, NULL, signed_tok, path, &got, &tr), POL_CID_TOKEN_MTLS);
    CHECK_STR(got.sub, "alice");
    CHECK_EQ(decide(node, &k, bare, path, &got, &tr), POL_CID_TOKEN_MTLS);
    CHECK_EQ(decide(node, &k, other, path, &got, &tr), POL_CID_TOKEN_MTLS);

    /* Over plaintext (or a certificate naming no meshd node: no peer): the HMAC decides. */
    CHECK_EQ(decide(NULL, &k, signed_tok, path, &got, &tr), POL_CID_TOKEN_HMAC);
    CHECK_STR(got.sub, "alice");
    CHECK_EQ(decide(NULL, &k, bare, path, &got, &tr), POL_CID_NONE);
    CHECK_EQ(tr, POL_IDENTITY_BAD_SIGNATURE);
    CHECK_STR(got.sub, "");
    CHECK_EQ(decide(NULL, &k, other, path, &got, &tr), POL_CID_NONE);
    CHECK_EQ(tr, POL_IDENTITY_BAD_SIGNATURE);
    CHECK_STR(got.sub, "");
    /* No secret and no mTLS: never believed, however it is made. */
    CHECK_EQ(decide(NULL, NULL, signed_tok, path, &got, &tr), POL_CID_NONE);
    CHECK_EQ(tr, POL_IDENTITY_UNTRUSTED);
    CHECK_STR(got.sub, "");
    CHECK_EQ(decide(NULL, NULL, bare, path, &got, &tr), POL_CID_NONE);
    CHECK_STR(pol_identity_reason(POL_IDENTITY_UNTRUSTED),
              "no mesh secret and not over mTLS from a meshd node");

    /* No token: a peer with a certificate is the caller (its node ID, source mtls). */
    CHECK_EQ(decide(node, &k, NULL, path, &got, &tr), POL_CID_PEER);
    CHECK_EQ(tr, POL_IDENTITY_ABSENT);
    CHECK_STR(got.sub, "spiffe://mesh.test/node/proxy-1");
    CHECK_STR(got.source, POL_IDENTITY_SOURCE_MTLS);
    CHECK_EQ(got.nclaims, 0);
    CHECK_EQ(decide(NULL, &k, NULL, path, &got, &tr), POL_CID_NONE);
    CHECK_STR(got.sub, "");

    /* A token the node sent for another method, or an expired one, is refused even over mTLS;
     * the call is then the node's own. */
    CHECK_EQ(decide(node, NULL, bare, "/pkg.Orders/Delete", &got, &tr), POL_CID_PEER);
    CHECK_EQ(tr, POL_IDENTITY_WRONG_PATH);
    CHECK_STR(got.sub, "spiffe://mesh.test/node/proxy-1");
    char old[POL_IDENTITY_TOKEN_MAX + 1];
    CHECK(pol_identity_mint_unsigned(30, &id, path, strlen(path), now - 31, old, sizeof(old), err,
                                     sizeof(err)) > 0);
    CHECK_EQ(decide(node, NULL, old, path, &got, &tr), POL_CID_PEER);
    CHECK_EQ(tr, POL_IDENTITY_EXPIRED);
    CHECK_EQ(decide(node, NULL, "alice", path, &got, &tr), POL_CID_PEER);
    CHECK_EQ(tr, POL_IDENTITY_MALFORMED);
    /* A MAC part that is not a MAC is malformed on mTLS too (nothing half-read). */
    char junk[POL_IDENTITY_TOKEN_MAX + 8];
    snprintf(junk, sizeof(junk), "%sAAAA", bare);
    CHECK_EQ(decide(node, NULL, junk, path, &got, &tr), POL_CID_PEER);
    CHECK_EQ(tr, POL_IDENTITY_MALFORMED);

    /* A node that is not among identity.forwarders: its token counts as over plaintext (the
     * HMAC decides), and without one the call is the node's own. */
    forwarder = 0;
    CHECK_EQ(decide(node, NULL, bare, path, &got, &tr), POL_CID_PEER);
    CHECK_EQ(tr, POL_IDENTITY_UNTRUSTED);
    CHECK_STR(got.sub, "spiffe://mesh.test/node/proxy-1");
    CHECK_EQ(decide(node, &k, bare, path, &got, &tr), POL_CID_PEER);
    CHECK_EQ(tr, POL_IDENTITY_BAD_SIGNATURE);
    CHECK_EQ(decide(node, &k, signed_tok, path, &got, &tr), POL_CID_TOKEN_HMAC);
    CHECK_STR(got.sub, "alice");
    forwarder = 1;

    CHECK_STR(pol_cid_name(POL_CID_TOKEN_MTLS), "token over mTLS");
    mesh_peer_id_free(node);
    pol_identity_keys_wipe(&k);
    pol_identity_keys_wipe(&k2);
}

int main(void)
{
    RUN(test_trust);
    return 0;
}
