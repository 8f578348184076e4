/*
 * tests/fuzz/policy_sig/fuzz_signature_header.c: libFuzzer harness over the request signature
 * (policy/signature.h) and the mesh identity token (policy/mesh_identity.h).
 *
 * The first byte picks a mode, the rest is the input:
 *   0: the bytes are an x-meshd-signature value: parsing never reads outside it, parsed fields
 *      point inside it within their bounds, and verification gives a defined reason (never OK:
 *      the fuzzer cannot know the secret);
 *   1: the bytes choose a client, timestamp offset, nonce and path; the harness signs them
 *      with pol_sig_compute; verify must accept exactly when the nonce is well-formed and the
 *      timestamp inside the window (else refuse), then call the same header a replay;
 *   2: the bytes are an identity token: verification never crashes and never trusts it;
 *   3: the bytes are split at 0xFF into sub, source, path and claims; whatever mint accepts
 *      verifies back to the same identity.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/base64.h"
#include "policy/mesh_identity.h"
#include "policy/signature.h"

#define NOW 1764547200

static pol_sig_secrets_t *secrets;
static pol_identity_keys_t keys;

static void setup(void)
{
    const char *file = "alice MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n"
                       "bob   YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXowMTIzNDU=\n";
    char err[256];
    secrets = pol_sig_secrets_parse(file, strlen(file), "fuzz", err, sizeof(err));
    if (!secrets || pol_identity_keys_init(&keys, "YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXowMTIzNDU=",
                                           "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", 30, err,
                                           sizeof(err)) != 0)
        abort();
}

static int inside(const char *p, size_t n, const char *base, size_t len)
{
    return p >= base && p + n <= base + len;
}

static void header_mode(const uint8_t *d, size_t n, pol_nonce_cache_t *nc)
{
    char *v = malloc(n ? n : 1);
    memcpy(v, d, n);
    pol_sig_header_t h;
    if (pol_sig_header_parse(v, n, &h) == 0) {
        if (!inside(h.client, h.client_len, v, n) || !inside(h.ts, h.ts_len, v, n) ||
            !inside(h.nonce, h.nonce_len, v, n) || h.client_len < 1 ||
            h.client_len > POL_SIG_CLIENT_MAX || h.nonce_len < POL_SIG_NONCE_MIN ||
            h.nonce_len > POL_SIG_NONCE_MAX || h.ts_value < 0)
            abort();
    }
    uint8_t digest[32] = {0};
    pol_sig_result_t r = pol_sig_verify(v, n, "/a.B/C", 6, digest, NOW, 300, secrets, nc, NULL);
    if (r == POL_SIG_OK || r > POL_SIG_INTERNAL || !pol_sig_reason(r))
        abort();
    free(v);
}

static void roundtrip_mode(const uint8_t *d, size_t n, pol_nonce_cache_t *nc)
{
    if (n < 3)
        return;
    const char *client = d[0] & 1 ? "bob" : "alice";
    const uint8_t *key = (const uint8_t *)(d[0] & 1 ? "abcdefghijklmnopqrstuvwxyz012345"
                                                    : "0123456789abcdef0123456789abcdef");
    long long ts = NOW + (int8_t)d[1] * 5; /* -640..635 s around now */
    size_t nonce_len = d[2] % 80;
    d += 3;
    n -= 3;
    if (nonce_len > n)
        nonce_len = n;
    char nonce[80];
    memcpy(nonce, d, nonce_len);
    nonce[nonce_len] = '\0';
    const char *path = (const char *)d + nonce_len;
    size_t path_len = n - nonce_len;
    uint8_t digest[32];
    pol_iov_t body = {d, n};
    if (pol_sha256(&body, 1, digest) != 0)
        abort();
    char tss[32];
    snprintf(tss, sizeof(tss), "%lld", ts);
    uint8_t mac[32];
    if (pol_sig_compute(key, 32, path, path_len, tss, strlen(tss), nonce, nonce_len, digest, mac) !=
        0)
        abort();
    char b64[64], hdr[256];
    mesh_b64_encode(mac, 32, b64);
    int hl = snprintf(hdr, sizeof(hdr), "keyId=%s,ts=%s,nonce=%.*s,sig=%s", client, tss,
                      (int)nonce_len, nonce, b64);
    int nonce_ok = nonce_len >= POL_SIG_NONCE_MIN && nonce_len <= POL_SIG_NONCE_MAX &&
                   !memchr(nonce, '\0', nonce_len);
    for (size_t i = 0; nonce_ok && i < nonce_len; i++)
        nonce_ok = nonce[i] > 0x20 && nonce[i] < 0x7f && nonce[i] != ',';
    long long off = ts - NOW;
    int in_window = off >= -300 && off <= 300;
    pol_sig_result_t r =
        pol_sig_verify(hdr, (size_t)hl, path, path_len, digest, NOW, 300, secrets, nc, NULL);
    /* A nonce the grammar refuses never passes (how it fails depends on where the header
     * splits); a good one passes exactly inside the window. */
    if (nonce_ok ? r != (in_window ? POL_SIG_OK : POL_SIG_EXPIRED) : r == POL_SIG_OK)
        abort();
    if (r == POL_SIG_OK && pol_sig_verify(hdr, (size_t)hl, path, path_len, digest, NOW, 300,
                                          secrets, nc, NULL) != POL_SIG_REPLAYED)
        abort();
}

static void token_mode(const uint8_t *d, size_t n)
{
    char *v = malloc(n ? n : 1);
    memcpy(v, d, n);
    pol_identity_t id;
    pol_identity_result_t r = pol_identity_verify(&keys, v, n, "/a.B/C", 6, NOW, &id);
    if (r == POL_IDENTITY_OK || r > POL_IDENTITY_INTERNAL || id.sub[0] || id.nclaims)
        abort();
    /* Read without a MAC (over mTLS): any bytes, and an identity only with a subject. */
    r = pol_identity_read(v, n, "/a.B/C", 6, NOW, &id);
    if (r == POL_IDENTITY_OK ? !id.sub[0] : (r > POL_IDENTITY_INTERNAL || id.sub[0]))
        abort();
    free(v);
}

static void mint_mode(const uint8_t *d, size_t n)
{
    const uint8_t *part[4 + POL_IDENTITY_CLAIMS_MAX];
    size_t len[4 + POL_IDENTITY_CLAIMS_MAX];
    int k = 0;
    part[0] = d;
    for (size_t i = 0; i <= n && k < (int)(sizeof(part) / sizeof(part[0])); i++) {
        if (i == n || d[i] == 0xff) {
            len[k] = (size_t)(d + i - part[k]);
            k++;
            if (k < (int)(sizeof(part) / sizeof(part[0])))
                part[k] = d + i + 1;
        }
    }
    if (k < 3)
        return;
    pol_identity_t id, got;
    memset(&id, 0, sizeof(id));
#define COPY(dst, i) memcpy(dst, part[i], len[i] < sizeof(dst) - 1 ? len[i] : sizeof(dst) - 1)
    COPY(id.sub, 0);
    COPY(id.source, 1);
    id.nclaims = k - 3 > POL_IDENTITY_CLAIMS_MAX / 2 ? POL_IDENTITY_CLAIMS_MAX / 2 : k - 3;
    for (int c = 0; c < id.nclaims && 3 + 2 * c + 1 < k; c++) {
        COPY(id.claims[c].name, 3 + 2 * c);
        COPY(id.claims[c].value, 3 + 2 * c + 1);
    }
#undef COPY
    const char *path = len[2] ? (const char *)part[2] : NULL;
    char tok[POL_IDENTITY_TOKEN_MAX + 1], err[256];
    long tn = pol_identity_mint(&keys, &id, path, len[2], NOW, tok, sizeof(tok), err, sizeof(err));
    if (tn < 0)
        return;
    if ((size_t)tn != strlen(tok) || tn > POL_IDENTITY_TOKEN_MAX)
        abort();
    if (pol_identity_verify(&keys, tok, (size_t)tn, path, len[2], NOW + 30, &got) !=
        POL_IDENTITY_OK)
        abort();
    if (strcmp(got.sub, id.sub) || strcmp(got.source, id.source) || got.nclaims != id.nclaims)
        abort();
    for (int c = 0; c < id.nclaims; c++)
        if (strcmp(got.claims[c].name, id.claims[c].name) ||
            strcmp(got.claims[c].value, id.claims[c].value))
            abort();
    if (pol_identity_verify(&keys, tok, (size_t)tn, path, len[2], NOW + 31, &got) !=
        POL_IDENTITY_EXPIRED)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int inited;
    if (!inited) {
        setup();
        inited = 1;
    }
    if (size < 1)
        return 0;
    char err[128];
    pol_nonce_cache_t *nc = pol_nonce_cache_new(64, err, sizeof(err));
    if (!nc)
        abort();
    switch (data[0] & 3) {
    case 0:
        header_mode(data + 1, size - 1, nc);
        break;
    case 1:
        roundtrip_mode(data + 1, size - 1, nc);
        break;
    case 2:
        token_mode(data + 1, size - 1);
        break;
    default:
        mint_mode(data + 1, size - 1);
        break;
    }
    pol_nonce_cache_delete(nc);
    return 0;
}
