/*
 * tests/unit/policy_sig/test_mesh_identity.c: the node-to-node identity token
 * (policy/mesh_identity.h).
 *
 * Mint then verify gives the identity back; tokens minted by the Python reference (sig_ref.py)
 * verify too; expiry at now + ttl; a changed byte anywhere, a wrong secret, a token for another
 * method or a malformed one are refused with their reason and leave no identity; rotation: the
 * previous secret still verifies, a secret dropped from rotation does not.
 */
#include "policy/mesh_identity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/sig_digest.h"
#include "tests/check.h"

static const char *ref_script;

#define K1 "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" /* 32 bytes */
#define K2 "YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXowMTIzNDU=" /* 32 bytes */

/* base64url without padding, written here independently of the module. */
static size_t hand_b64url(const void *in, size_t n, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const uint8_t *p = in;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        out[o++] = a[v >> 18 & 63];
        out[o++] = a[v >> 12 & 63];
        if (i + 1 < n)
            out[o++] = a[v >> 6 & 63];
        if (i + 2 < n)
            out[o++] = a[v & 63];
    }
    out[o] = '\0';
    return o;
}

static pol_identity_t alice(void)
{
    pol_identity_t id;
    memset(&id, 0, sizeof(id));
    snprintf(id.sub, sizeof(id.sub), "alice@example.com");
    snprintf(id.source, sizeof(id.source), "jwt");
    id.nclaims = 2;
    snprintf(id.claims[0].name, sizeof(id.claims[0].name), "groups");
    snprintf(id.claims[0].value, sizeof(id.claims[0].value), "admin,dev");
    snprintf(id.claims[1].name, sizeof(id.claims[1].name), "tenant");
    snprintf(id.claims[1].value, sizeof(id.claims[1].value), "a=b c");
    return id;
}

static void test_keys(void)
{
    pol_identity_keys_t k;
    char err[160];
    CHECK(pol_identity_keys_init(&k, K1, NULL, 0, err, sizeof(err)) == 0);
    CHECK_EQ(k.ttl, POL_IDENTITY_TTL_DEFAULT);
    CHECK_EQ(k.current_len, 32);
    CHECK_EQ(k.previous_len, 0);
    CHECK(pol_identity_keys_init(&k, "c2hvcnQ=", NULL, 0, err, sizeof(err)) == -1);
    CHECK_CONTAINS(err, "current mesh secret must be 32..64 bytes");
    CHECK(pol_identity_keys_init(&k, K1, "***", 0, err, sizeof(err)) == -1);
    CHECK_CONTAINS(err, "previous mesh secret is not base64");
    CHECK(pol_identity_keys_init(&k, K1, NULL, 7200, err, sizeof(err)) == -1);
    CHECK_CONTAINS(err, "identity token lifetime 7200 s");
    CHECK(pol_identity_keys_init(&k, NULL, NULL, 0, err, sizeof(err)) == -1);
    CHECK_CONTAINS(err, "current mesh secret missing");
}

static void test_mint_verify(void)
{
    pol_identity_keys_t k;
    char err[256];
    CHECK(pol_identity_keys_init(&k, K1, NULL, 30, err, sizeof(err)) == 0);
    pol_identity_t id = alice(), got;
    char tok[POL_IDENTITY_TOKEN_MAX + 1];
    const char *path = "/pkg.Svc/Get";
    int64_t now = 1764547200;
    long n =
        pol_identity_mint(&k, &id, path, strlen(path), now, tok, sizeof(tok), err, sizeof(err));
    CHECK(n > 0 && (size_t)n == strlen(tok));
    CHECK(strncmp(tok, "v1.", 3) == 0);
    CHECK(strchr(tok, '=') == NULL && strchr(tok, '+') == NULL && strchr(tok, '/') == NULL);
    CHECK_EQ(pol_identity_verify(&k, tok, (size_t)n, path, strlen(path), now, &got),
             POL_IDENTITY_OK);
    CHECK_STR(got.sub, "alice@example.com");
    CHECK_STR(got.source, "jwt");
    CHECK_EQ(got.nclaims, 2);
    CHECK_STR(got.claims[0].name, "groups");
    CHECK_STR(got.claims[0].value, "admin,dev");
    CHECK_STR(got.claims[1].value, "a=b c");
    CHECK_EQ(got.exp, now + 30);
    CHECK_EQ(got.previous_key, 0);

    /* Valid until now + ttl inclusive, expired a second later. */
    CHECK_EQ(pol_identity_verify(&k, tok, (size_t)n, path, strlen(path), now + 30, &got),
             POL_IDENTITY_OK);
    CHECK_EQ(pol_identity_verify(&k, tok, (size_t)n, path, strlen(path), now + 31, &got),
             POL_IDENTITY_EXPIRED);
    CHECK_STR(got.sub, "");
    CHECK_STR(pol_identity_reason(POL_IDENTITY_EXPIRED), "expired");

    /* Bound to its method. */
    CHECK_EQ(pol_identity_verify(&k, tok, (size_t)n, "/pkg.Svc/Delete", 15, now, &got),
             POL_IDENTITY_WRONG_PATH);
    CHECK_EQ(pol_identity_verify(&k, tok, (size_t)n, NULL, 0, now, &got), POL_IDENTITY_WRONG_PATH);
    CHECK_STR(got.sub, "");
    /* Without a path it is valid for any call. */
    long n2 = pol_identity_mint(&k, &id, NULL, 0, now, tok, sizeof(tok), err, sizeof(err));
    CHECK(n2 > 0);
    CHECK_EQ(pol_identity_verify(&k, tok, (size_t)n2, "/x.Y/Z", 6, now, &got), POL_IDENTITY_OK);

    /* Absent. */
    CHECK_EQ(pol_identity_verify(&k, NULL, 0, path, strlen(path), now, &got), POL_IDENTITY_ABSENT);

    /* Every single-character change is refused, never accepted with another identity. */
    n = pol_identity_mint(&k, &id, path, strlen(path), now, tok, sizeof(tok), err, sizeof(err));
    for (long i = 0; i < n; i++) {
        char t2[POL_IDENTITY_TOKEN_MAX + 1];
        memcpy(t2, tok, (size_t)n + 1);
        t2[i] = t2[i] == 'A' ? 'B' : 'A';
        pol_identity_result_t r =
            pol_identity_verify(&k, t2, (size_t)n, path, strlen(path), now, &got);
        CHECK(r == POL_IDENTITY_BAD_SIGNATURE || r == POL_IDENTITY_MALFORMED);
        CHECK_STR(got.sub, "");
    }
    /* Truncated, extended, empty parts. */
    CHECK_EQ(pol_identity_verify(&k, tok, (size_t)n - 1, path, strlen(path), now, &got),
             POL_IDENTITY_MALFORMED);
    CHECK_EQ(pol_identity_verify(&k, "v1..", 4, path, strlen(path), now, &got),
             POL_IDENTITY_MALFORMED);
    CHECK_EQ(pol_identity_verify(&k, "v2.abc.def", 10, path, strlen(path), now, &got),
             POL_IDENTITY_MALFORMED);
    CHECK_EQ(pol_identity_verify(&k, "alice", 5, path, strlen(path), now, &got),
             POL_IDENTITY_MALFORMED);

    /* Another mesh's secret. */
    pol_identity_keys_t other;
    CHECK(pol_identity_keys_init(&other, K2, NULL, 30, err, sizeof(err)) == 0);
    CHECK_EQ(pol_identity_verify(&other, tok, (size_t)n, path, strlen(path), now, &got),
             POL_IDENTITY_BAD_SIGNATURE);
    CHECK_STR(pol_identity_reason(POL_IDENTITY_BAD_SIGNATURE), "bad signature");

    /* Payloads signed with the right secret but not of this format are malformed, never
     * trusted: an unknown field, a missing sub, a line without '\n', a claim name out of
     * bounds. */
    static const char *payloads[] = {
        "exp=1764547230\nsub=x\nrole=admin\n",
        "exp=1764547230\n",
        "exp=1764547230\nsub=x",
        "exp=17645472x0\nsub=x\n",
        "exp=1764547230\nsub=x\nsub=y\n",
        "exp=1764547230\nsub=x\nc.a b=1\n",
    };
    pol_identity_keys_t k1;
    CHECK(pol_identity_keys_init(&k1, K1, NULL, 30, err, sizeof(err)) == 0);
    for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
        char t3[512] = "v1.";
        size_t pn = hand_b64url(payloads[i], strlen(payloads[i]), t3 + 3);
        uint8_t mac[32];
        pol_iov_t iov = {t3, 3 + pn};
        CHECK(pol_hmac_sha256(k1.current, k1.current_len, &iov, 1, mac) == 0);
        t3[3 + pn] = '.';
        size_t mn = hand_b64url(mac, 32, t3 + 4 + pn);
        CHECK_EQ(pol_identity_verify(&k1, t3, 4 + pn + mn, NULL, 0, now, &got),
                 POL_IDENTITY_MALFORMED);
    }
    /* The same construction with a good payload verifies (the harness itself is right). */
    {
        const char *good = "exp=1764547230\nsub=x\n";
        char t3[512] = "v1.";
        size_t pn = hand_b64url(good, strlen(good), t3 + 3);
        uint8_t mac[32];
        pol_iov_t iov = {t3, 3 + pn};
        CHECK(pol_hmac_sha256(k1.current, k1.current_len, &iov, 1, mac) == 0);
        t3[3 + pn] = '.';
        size_t mn = hand_b64url(mac, 32, t3 + 4 + pn);
        CHECK_EQ(pol_identity_verify(&k1, t3, 4 + pn + mn, NULL, 0, now, &got), POL_IDENTITY_OK);
        CHECK_STR(got.sub, "x");
    }
    pol_identity_keys_wipe(&k);
    CHECK_EQ(k.current_len, 0);
}

static void test_mint_errors(void)
{
    pol_identity_keys_t k;
    char err[256], tok[POL_IDENTITY_TOKEN_MAX + 1];
    CHECK(pol_identity_keys_init(&k, K1, NULL, 30, err, sizeof(err)) == 0);
    pol_identity_t id = alice();
    id.sub[0] = '\0';
    CHECK(pol_identity_mint(&k, &id, NULL, 0, 1, tok, sizeof(tok), err, sizeof(err)) == -1);
    CHECK_CONTAINS(err, "identity sub must be 1..256 bytes");
    id = alice();
    snprintf(id.sub, sizeof(id.sub), "evil\nsub=root");
    CHECK(pol_identity_mint(&k, &id, NULL, 0, 1, tok, sizeof(tok), err, sizeof(err)) == -1);
    id = alice();
    snprintf(id.claims[1].value, sizeof(id.claims[1].value), "x\nsub=root");
    CHECK(pol_identity_mint(&k, &id, NULL, 0, 1, tok, sizeof(tok), err, sizeof(err)) == -1);
    CHECK_CONTAINS(err, "identity claim 1");
    id = alice();
    snprintf(id.claims[0].name, sizeof(id.claims[0].name), "a=b");
    CHECK(pol_identity_mint(&k, &id, NULL, 0, 1, tok, sizeof(tok), err, sizeof(err)) == -1);
    id = alice();
    id.nclaims = POL_IDENTITY_CLAIMS_MAX + 1;
    CHECK(pol_identity_mint(&k, &id, NULL, 0, 1, tok, sizeof(tok), err, sizeof(err)) == -1);
    CHECK_CONTAINS(err, "at most 8");
    id = alice();
    CHECK(pol_identity_mint(&k, &id, NULL, 0, 1, tok, 20, err, sizeof(err)) == -1);
    CHECK_CONTAINS(err, "buffer has 20");
    /* The largest identity fits POL_IDENTITY_TOKEN_MAX. */
    memset(&id, 0, sizeof(id));
    memset(id.sub, 's', POL_IDENTITY_SUB_MAX);
    memset(id.source, 'j', POL_IDENTITY_SOURCE_MAX);
    id.nclaims = POL_IDENTITY_CLAIMS_MAX;
    for (int i = 0; i < id.nclaims; i++) {
        memset(id.claims[i].name, 'n', POL_IDENTITY_CLAIM_NAME_MAX);
        memset(id.claims[i].value, 'v', POL_IDENTITY_CLAIM_VALUE_MAX);
    }
    static char path[POL_IDENTITY_PATH_MAX];
    memset(path, 'p', sizeof(path));
    long n = pol_identity_mint(&k, &id, path, sizeof(path), 1, tok, sizeof(tok), err, sizeof(err));
    CHECK(n > 0 && n <= POL_IDENTITY_TOKEN_MAX);
    pol_identity_t got;
    CHECK_EQ(pol_identity_verify(&k, tok, (size_t)n, path, sizeof(path), 1, &got), POL_IDENTITY_OK);
    CHECK_EQ(strlen(got.sub), POL_IDENTITY_SUB_MAX);
    CHECK_EQ(got.nclaims, POL_IDENTITY_CLAIMS_MAX);
}

static void test_rotation(void)
{
    char err[256], tok[POL_IDENTITY_TOKEN_MAX + 1];
    pol_identity_keys_t old, rotating, done;
    CHECK(pol_identity_keys_init(&old, K1, NULL, 30, err, sizeof(err)) == 0);
    CHECK(pol_identity_keys_init(&rotating, K2, K1, 30, err, sizeof(err)) == 0);
    CHECK(pol_identity_keys_init(&done, K2, NULL, 30, err, sizeof(err)) == 0);
    pol_identity_t id = alice(), got;
    /* A node still on the old secret mints; a rotated node accepts it via the previous one. */
    long n = pol_identity_mint(&old, &id, NULL, 0, 100, tok, sizeof(tok), err, sizeof(err));
    CHECK(n > 0);
    CHECK_EQ(pol_identity_verify(&rotating, tok, (size_t)n, NULL, 0, 100, &got), POL_IDENTITY_OK);
    CHECK_EQ(got.previous_key, 1);
    CHECK_EQ(pol_identity_verify(&done, tok, (size_t)n, NULL, 0, 100, &got),
             POL_IDENTITY_BAD_SIGNATURE);
    /* A rotated node mints with the new secret: old nodes refuse it, rotated ones accept. */
    n = pol_identity_mint(&rotating, &id, NULL, 0, 100, tok, sizeof(tok), err, sizeof(err));
    CHECK_EQ(pol_identity_verify(&rotating, tok, (size_t)n, NULL, 0, 100, &got), POL_IDENTITY_OK);
    CHECK_EQ(got.previous_key, 0);
    CHECK_EQ(pol_identity_verify(&done, tok, (size_t)n, NULL, 0, 100, &got), POL_IDENTITY_OK);
    CHECK_EQ(pol_identity_verify(&old, tok, (size_t)n, NULL, 0, 100, &got),
             POL_IDENTITY_BAD_SIGNATURE);
}

static void test_python_tokens(void)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s id 100", ref_script);
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL);
    static char line[16384];
    int count = 0;
    while (fgets(line, sizeof(line), p)) {
        char secret[256], path[256], sub[256], src[64], claims[2048], tok[4096];
        long long now;
        CHECK(sscanf(line, "id %255s %lld %255s %255s %63s %2047s %4095s", secret, &now, path, sub,
                     src, claims, tok) == 7);
        pol_identity_keys_t k;
        char err[256];
        CHECK(pol_identity_keys_init(&k, secret, NULL, 30, err, sizeof(err)) == 0);
        int bound = strcmp(path, "-") != 0;
        pol_identity_t got;
        pol_identity_result_t r = pol_identity_verify(&k, tok, strlen(tok), bound ? path : NULL,
                                                      bound ? strlen(path) : 0, now, &got);
        if (r != POL_IDENTITY_OK)
            fprintf(stderr, "python token %d: %s\n", count, pol_identity_reason(r));
        CHECK_EQ(r, POL_IDENTITY_OK);
        CHECK_STR(got.sub, sub);
        CHECK_STR(got.source, strcmp(src, "-") ? src : "");
        CHECK_EQ(got.exp, now + 30);
        /* Claims in order. */
        int i = 0;
        if (strcmp(claims, "-") != 0) {
            for (char *c = strtok(claims, ";"); c; c = strtok(NULL, ";"), i++) {
                char *eq = strchr(c, '=');
                *eq = '\0';
                CHECK(i < got.nclaims);
                CHECK_STR(got.claims[i].name, c);
                CHECK_STR(got.claims[i].value, eq + 1);
            }
        }
        CHECK_EQ(got.nclaims, i);
        /* And our own mint of the same identity, at the same time, is the same token. */
        char mine[POL_IDENTITY_TOKEN_MAX + 1];
        got.exp = 0;
        long n = pol_identity_mint(&k, &got, bound ? path : NULL, bound ? strlen(path) : 0, now,
                                   mine, sizeof(mine), err, sizeof(err));
        CHECK(n > 0);
        CHECK_STR(mine, tok);
        count++;
    }
    CHECK(pclose(p) == 0);
    CHECK_EQ(count, 100);
}

int main(int argc, char **argv)
{
    CHECK(argc == 2);
    ref_script = argv[1];
    char err[256];
    if (pol_digest_ready(err, sizeof(err)) != 0) {
        fprintf(stderr, "libcrypto: %s\n", err);
        return 1;
    }
    RUN(test_keys);
    RUN(test_mint_verify);
    RUN(test_mint_errors);
    RUN(test_rotation);
    RUN(test_python_tokens);
    return 0;
}
