/*
 * tests/unit/policy_sig/test_signature.c: request signatures (policy/signature.h).
 *
 * Vectors come from an independent Python reference (sig_ref.py, hmac + hashlib, run now):
 * meshd accepts every header it produced, computes the same MAC over a body fed in random
 * chunks, and a change to any signed input turns the answer into "bad signature". Every
 * rejection reason is provoked on purpose, with its text; the secrets file's errors carry
 * file:line.
 */
#include "policy/signature.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/base64.h"
#include "tests/check.h"

static const char *ref_script;

/* Decodes hex (or "-" for empty) into out; its length. */
static size_t unhex(const char *s, uint8_t *out, size_t cap)
{
    if (strcmp(s, "-") == 0)
        return 0;
    size_t n = strlen(s) / 2;
    CHECK(n <= cap);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        CHECK(sscanf(s + 2 * i, "%2x", &v) == 1);
        out[i] = (uint8_t)v;
    }
    return n;
}

/* The digest of a body, fed in chunks of varying size as DATA frames would bring it. */
static void body_digest(const uint8_t *body, size_t n, unsigned seed, uint8_t out[32])
{
    pol_sig_body_t b = {0};
    CHECK(pol_sig_body_init(&b) == 0);
    size_t off = 0;
    while (off < n) {
        seed = seed * 1103515245u + 12345u;
        size_t k = 1 + (seed >> 16) % 97;
        if (k > n - off)
            k = n - off;
        CHECK(pol_sig_body_update(&b, body + off, k) == 0);
        off += k;
    }
    CHECK(pol_sig_body_final(&b, out) == 0);
}

static void test_python_vectors(void)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s sig 200", ref_script);
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL);
    static char line[16384];
    int n = 0;
    pol_nonce_cache_t *nc = pol_nonce_cache_new(4096, NULL, 0);
    CHECK(nc != NULL);
    while (fgets(line, sizeof(line), p)) {
        char client[256], secret64[256], path[256], nonce[128], header[512];
        static char bodyhex[8192];
        long long ts;
        CHECK(sscanf(line, "sig %255s %255s %255s %lld %127s %8191s %511s", client, secret64, path,
                     &ts, nonce, bodyhex, header) == 7);
        /* A secrets table with this client and one other. */
        char file[1024];
        snprintf(file, sizeof(file), "# test\nother %s\n%s %s\n",
                 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", client, secret64);
        char err[256];
        pol_sig_secrets_t *s = pol_sig_secrets_parse(file, strlen(file), "t", err, sizeof(err));
        if (!s)
            fprintf(stderr, "%s\n", err);
        CHECK(s != NULL);
        CHECK_EQ(pol_sig_secrets_count(s), 2);

        static uint8_t body[8192];
        size_t blen = unhex(bodyhex, body, sizeof(body));
        uint8_t digest[32];
        body_digest(body, blen, (unsigned)n, digest);

        /* The same MAC as Python's, byte for byte. */
        pol_sig_header_t h;
        CHECK(pol_sig_header_parse(header, strlen(header), &h) == 0);
        CHECK_EQ(h.ts_value, ts);
        size_t klen;
        const uint8_t *key = pol_sig_secrets_find(s, client, strlen(client), &klen);
        CHECK(key != NULL);
        uint8_t mac[32];
        CHECK(pol_sig_compute(key, klen, path, strlen(path), h.ts, h.ts_len, h.nonce, h.nonce_len,
                              digest, mac) == 0);
        CHECK(memcmp(mac, h.sig, 32) == 0);

        /* Accepted at the edges of the window, once. */
        int64_t now = ts + (n % 3 == 0 ? 300 : n % 3 == 1 ? -300 : 0);
        pol_sig_header_t got;
        pol_sig_result_t r = pol_sig_verify(header, strlen(header), path, strlen(path), digest, now,
                                            300, s, nc, &got);
        if (r != POL_SIG_OK)
            fprintf(stderr, "vector %d: %s\n", n, pol_sig_reason(r));
        CHECK_EQ(r, POL_SIG_OK);
        CHECK(got.client_len == strlen(client) && memcmp(got.client, client, got.client_len) == 0);
        CHECK_EQ(pol_sig_verify(header, strlen(header), path, strlen(path), digest, now, 300, s, nc,
                                NULL),
                 POL_SIG_REPLAYED);

        /* Any change to a signed input: bad signature (checked before the nonce). */
        uint8_t other[32];
        memcpy(other, digest, 32);
        other[n % 32] ^= 1;
        CHECK_EQ(pol_sig_verify(header, strlen(header), path, strlen(path), other, now, 300, s, nc,
                                NULL),
                 POL_SIG_BAD_SIGNATURE);
        char path2[300];
        snprintf(path2, sizeof(path2), "%sX", path);
        CHECK_EQ(pol_sig_verify(header, strlen(header), path2, strlen(path2), digest, now, 300, s,
                                nc, NULL),
                 POL_SIG_BAD_SIGNATURE);
        pol_sig_secrets_unref(s);
        n++;
    }
    CHECK(pclose(p) == 0);
    CHECK_EQ(n, 200);
    pol_nonce_cache_delete(nc);
}

/* A header signed here for one client, with a chosen ts and nonce. */
static void make_header(const uint8_t *secret, size_t slen, const char *client, const char *path,
                        long long ts, const char *nonce, const uint8_t digest[32], char *out,
                        size_t cap)
{
    char tss[32];
    snprintf(tss, sizeof(tss), "%lld", ts);
    uint8_t mac[32];
    CHECK(pol_sig_compute(secret, slen, path, strlen(path), tss, strlen(tss), nonce, strlen(nonce),
                          digest, mac) == 0);
    char b64[64];
    mesh_b64_encode(mac, 32, b64);
    snprintf(out, cap, "keyId=%s,ts=%s,nonce=%s,sig=%s", client, tss, nonce, b64);
}

static void test_rejections(void)
{
    const char *file = "alice MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n"; /* 32 bytes */
    char err[256];
    pol_sig_secrets_t *s = pol_sig_secrets_parse(file, strlen(file), "secrets", err, sizeof(err));
    CHECK(s != NULL);
    const uint8_t *key = (const uint8_t *)"0123456789abcdef0123456789abcdef";
    pol_nonce_cache_t *nc = pol_nonce_cache_new(64 * 64, err, sizeof(err));
    CHECK(nc != NULL);
    uint8_t digest[32];
    pol_iov_t none = {"", 0};
    CHECK(pol_sha256(&none, 1, digest) == 0);
    const char *path = "/pkg.Svc/Get";
    int64_t now = 1764547200;
    char h[512];

#define VERIFY(hdr, at)                                                                            \
    pol_sig_verify(hdr, strlen(hdr), path, strlen(path), digest, at, 300, s, nc, NULL)

    CHECK_EQ(pol_sig_verify(NULL, 0, path, strlen(path), digest, now, 300, s, nc, NULL),
             POL_SIG_MISSING);
    CHECK_STR(pol_sig_reason(POL_SIG_MISSING), "missing signature");

    make_header(key, 32, "alice", path, now, "nonce-0000000001", digest, h, sizeof(h));
    CHECK_EQ(VERIFY(h, now), POL_SIG_OK);
    CHECK_EQ(VERIFY(h, now), POL_SIG_REPLAYED);
    CHECK_STR(pol_sig_reason(POL_SIG_REPLAYED), "replayed");

    /* Timestamp 301 s away either way: expired (and the nonce is not consumed). */
    make_header(key, 32, "alice", path, now - 301, "nonce-0000000002", digest, h, sizeof(h));
    CHECK_EQ(VERIFY(h, now), POL_SIG_EXPIRED);
    CHECK_STR(pol_sig_reason(POL_SIG_EXPIRED), "expired");
    make_header(key, 32, "alice", path, now + 301, "nonce-0000000002", digest, h, sizeof(h));
    CHECK_EQ(VERIFY(h, now), POL_SIG_EXPIRED);
    make_header(key, 32, "alice", path, now + 300, "nonce-0000000002", digest, h, sizeof(h));
    CHECK_EQ(VERIFY(h, now), POL_SIG_OK);
    /* A timestamp far beyond any clock does not overflow into the window. */
    CHECK_EQ(VERIFY("keyId=alice,ts=9223372036854775807,nonce=nonce-0000000003,"
                    "sig=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                    now),
             POL_SIG_EXPIRED);

    make_header(key, 32, "bob", path, now, "nonce-0000000004", digest, h, sizeof(h));
    CHECK_EQ(VERIFY(h, now), POL_SIG_UNKNOWN_CLIENT);
    CHECK_STR(pol_sig_reason(POL_SIG_UNKNOWN_CLIENT), "unknown client");

    const uint8_t *wrong = (const uint8_t *)"0123456789abcdef0123456789abcdeF";
    make_header(wrong, 32, "alice", path, now, "nonce-0000000005", digest, h, sizeof(h));
    CHECK_EQ(VERIFY(h, now), POL_SIG_BAD_SIGNATURE);
    CHECK_STR(pol_sig_reason(POL_SIG_BAD_SIGNATURE), "bad signature");
    /* A bad signature does not burn the nonce: the genuine request still passes. */
    make_header(key, 32, "alice", path, now, "nonce-0000000005", digest, h, sizeof(h));
    CHECK_EQ(VERIFY(h, now), POL_SIG_OK);

    /* Without a secrets table nobody is known; without a replay cache nothing passes. */
    make_header(key, 32, "alice", path, now, "nonce-0000000008", digest, h, sizeof(h));
    CHECK_EQ(pol_sig_verify(h, strlen(h), path, strlen(path), digest, now, 300, NULL, nc, NULL),
             POL_SIG_UNKNOWN_CLIENT);
    CHECK_EQ(pol_sig_verify(h, strlen(h), path, strlen(path), digest, now, 300, s, NULL, NULL),
             POL_SIG_INTERNAL);
    CHECK_STR(pol_sig_reason(POL_SIG_INTERNAL), "signature check unavailable");

    /* The same nonce from another client is not a replay. */
    const char *two = "alice MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n"
                      "carol MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n";
    pol_sig_secrets_t *s2 = pol_sig_secrets_parse(two, strlen(two), "two", err, sizeof(err));
    CHECK(s2 != NULL);
    make_header(key, 32, "carol", path, now, "nonce-0000000005", digest, h, sizeof(h));
    CHECK_EQ(pol_sig_verify(h, strlen(h), path, strlen(path), digest, now, 300, s2, nc, NULL),
             POL_SIG_OK);
    pol_sig_secrets_unref(s2);

    /* Malformed headers. */
    static const char *bad[] = {
        "",
        "keyId=alice",
        "keyId=alice,ts=1,nonce=nonce-0000000006",
        "keyId=alice,ts=1x,nonce=nonce-0000000006,sig=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "keyId=alice,ts=-1,nonce=nonce-0000000006,sig=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "keyId=alice,ts=99999999999999999999,nonce=nonce-0000000006,"
        "sig=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "keyId=alice,ts=1,nonce=short,sig=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "keyId=alice,ts=1,nonce=nonce 0000000006,sig=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "keyId=alice,ts=1,nonce=nonce-0000000006,sig=AAAA",
        "keyId=alice,ts=1,nonce=nonce-0000000006,sig=!!!!AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "keyId=al ice,ts=1,nonce=nonce-0000000006,sig=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "keyId=alice,keyId=alice,ts=1,nonce=nonce-0000000006,"
        "sig=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "keyId=alice,ts=1,nonce=nonce-0000000006,sig=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,"
        "x=y",
        "keyId=alice,ts=1,nonce=nonce-0000000006,sig=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        pol_sig_result_t r = VERIFY(bad[i], now);
        if (r != POL_SIG_MALFORMED)
            fprintf(stderr, "bad[%zu] = %s\n", i, pol_sig_reason(r));
        CHECK_EQ(r, POL_SIG_MALFORMED);
    }
    CHECK_STR(pol_sig_reason(POL_SIG_MALFORMED), "malformed signature");

    /* Spaces around parameters and any order are fine; URL-safe base64 without padding too. */
    make_header(key, 32, "alice", path, now, "nonce-0000000007", digest, h, sizeof(h));
    char *sig = strstr(h, "sig=") + 4;
    char re[512];
    char sigurl[64];
    snprintf(sigurl, sizeof(sigurl), "%s", sig);
    for (char *c = sigurl; *c; c++)
        *c = *c == '+' ? '-' : *c == '/' ? '_' : *c;
    *strchr(sigurl, '=') = '\0';
    snprintf(re, sizeof(re), " sig=%s , nonce=nonce-0000000007,ts=%lld,  keyId=alice ", sigurl,
             (long long)now);
    CHECK_EQ(VERIFY(re, now), POL_SIG_OK);

    /* A full replay cache refuses rather than forgets: a cache of 64 entries (one per shard). */
    pol_nonce_cache_t *tiny = pol_nonce_cache_new(64, err, sizeof(err));
    CHECK(tiny != NULL);
    make_header(key, 32, "alice", path, now, "nonce-0000000001", digest, h, sizeof(h));
    CHECK_EQ(pol_sig_verify(h, strlen(h), path, strlen(path), digest, now, 300, s, tiny, NULL),
             POL_SIG_OK);
    int full = 0;
    for (int i = 0; i < 1000 && !full; i++) {
        char nonce[32];
        snprintf(nonce, sizeof(nonce), "fill-nonce-%08d", i);
        make_header(key, 32, "alice", path, now, nonce, digest, h, sizeof(h));
        pol_sig_result_t r =
            pol_sig_verify(h, strlen(h), path, strlen(path), digest, now, 300, s, tiny, NULL);
        CHECK(r == POL_SIG_OK || r == POL_SIG_CACHE_FULL);
        full = r == POL_SIG_CACHE_FULL;
    }
    CHECK(full);
    CHECK_STR(pol_sig_reason(POL_SIG_CACHE_FULL), "replay cache full");
    /* The first nonce is still remembered. */
    make_header(key, 32, "alice", path, now, "nonce-0000000001", digest, h, sizeof(h));
    CHECK_EQ(pol_sig_verify(h, strlen(h), path, strlen(path), digest, now, 300, s, tiny, NULL),
             POL_SIG_REPLAYED);
    pol_nonce_cache_delete(tiny);
#undef VERIFY
    pol_nonce_cache_delete(nc);
    pol_sig_secrets_unref(s);
}

static void expect_error(const char *text, const char *want)
{
    char err[256] = "";
    pol_sig_secrets_t *s =
        pol_sig_secrets_parse(text, strlen(text), "clients.txt", err, sizeof(err));
    CHECK(s == NULL);
    CHECK_CONTAINS(err, want);
}

static void test_secrets_file(void)
{
    const char *k32 = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    char text[1024];
    snprintf(text, sizeof(text), "# clients\n\n  alice   %s  \r\nbob\t%s\n# end\n", k32, k32);
    char err[256];
    pol_sig_secrets_t *s = pol_sig_secrets_parse(text, strlen(text), "x", err, sizeof(err));
    CHECK(s != NULL);
    CHECK_EQ(pol_sig_secrets_count(s), 2);
    size_t n = 0;
    const uint8_t *k = pol_sig_secrets_find(s, "bob", 3, &n);
    CHECK(k != NULL && n == 32 && memcmp(k, "0123456789abcdef0123456789abcdef", 32) == 0);
    CHECK(pol_sig_secrets_find(s, "bo", 2, &n) == NULL);
    CHECK(pol_sig_secrets_find(s, "carol", 5, &n) == NULL);
    /* References: the table outlives the first unref. */
    CHECK(pol_sig_secrets_ref(s) == s);
    pol_sig_secrets_unref(s);
    CHECK(pol_sig_secrets_find(s, "alice", 5, &n) != NULL);
    pol_sig_secrets_unref(s);

    snprintf(text, sizeof(text), "alice %s\nalice %s\n", k32, k32);
    expect_error(text, "clients.txt:2: client alice listed twice");
    expect_error("# nothing\n", "clients.txt: no clients");
    expect_error("alice\n", "clients.txt:1: expected `client-id secret`");
    snprintf(text, sizeof(text), "\nalice %s extra\n", k32);
    expect_error(text, "clients.txt:2: expected `client-id secret`");
    expect_error("alice not*base64\n", "clients.txt:1: secret of alice is not base64");
    expect_error("alice c2hvcnQ=\n", "clients.txt:1: secret of alice must be 16..64 bytes");
    snprintf(text, sizeof(text), "al/ice %s\n", k32);
    expect_error(text, "clients.txt:1: client id must be");

    /* From a file, and a missing file. */
    char path[] = "/tmp/meshd-test-secrets-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "# a\nalice %s\nbroken\n", k32);
    fclose(f);
    CHECK(pol_sig_secrets_load(path, err, sizeof(err)) == NULL);
    char want[128];
    snprintf(want, sizeof(want), "%s:3: expected", path);
    CHECK_CONTAINS(err, want);
    unlink(path);
    CHECK(pol_sig_secrets_load(path, err, sizeof(err)) == NULL);
    CHECK_CONTAINS(err, "No such file");
}

static void test_body_digest(void)
{
    /* SHA-256("abc") from FIPS 180-2, fed one byte at a time. */
    pol_sig_body_t b = {0};
    CHECK(pol_sig_body_init(&b) == 0);
    CHECK(pol_sig_body_update(&b, "a", 1) == 0);
    CHECK(pol_sig_body_update(&b, "b", 1) == 0);
    CHECK(pol_sig_body_update(&b, "c", 1) == 0);
    uint8_t d[32];
    CHECK(pol_sig_body_final(&b, d) == 0);
    char hex[65];
    pol_hex(d, 32, hex);
    CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    /* Done streams refuse more input; an aborted one is harmless; many at once work. */
    CHECK(pol_sig_body_update(&b, "x", 1) == -1);
    pol_sig_body_abort(&b);
    pol_sig_body_t many[100];
    memset(many, 0, sizeof(many));
    for (int i = 0; i < 100; i++)
        CHECK(pol_sig_body_init(&many[i]) == 0);
    for (int i = 0; i < 100; i++)
        CHECK(pol_sig_body_update(&many[i], "abc", 3) == 0);
    for (int i = 0; i < 100; i += 2)
        pol_sig_body_abort(&many[i]);
    for (int i = 1; i < 100; i += 2) {
        CHECK(pol_sig_body_final(&many[i], d) == 0);
        pol_hex(d, 32, hex);
        CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
    /* HMAC-SHA256 test case 2 of RFC 4231, and case 6 (a key longer than a block). */
    uint8_t mac[32];
    pol_iov_t m = {"what do ya want for nothing?", 28};
    CHECK(pol_hmac_sha256("Jefe", 4, &m, 1, mac) == 0);
    pol_hex(mac, 32, hex);
    CHECK_STR(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    uint8_t big[131];
    memset(big, 0xaa, sizeof(big));
    pol_iov_t m6[] = {{"Test Using Larger Than Block-Size Key", 37}, {" - Hash Key First", 17}};
    CHECK(pol_hmac_sha256(big, sizeof(big), m6, 2, mac) == 0);
    pol_hex(mac, 32, hex);
    CHECK_STR(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

/* pol_hex (4 bytes a word, then byte by byte) equals printf's %02x for every byte value, at
 * every length and alignment, and ends the string. */
static void test_hex(void)
{
    uint8_t in[256 + 8];
    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (uint8_t)(i * 7 + 3); /* every value, each nibble beside every other */
    for (size_t off = 0; off < 4; off++)
        for (size_t n = 0; n + off <= sizeof(in); n += n < 40 ? 1 : 37) {
            char got[2 * sizeof(in) + 2], want[2 * sizeof(in) + 2];
            memset(got, 'X', sizeof(got));
            pol_hex(in + off, n, got + (off & 1));
            for (size_t i = 0; i < n; i++)
                snprintf(want + 2 * i, 3, "%02x", in[off + i]);
            want[2 * n] = '\0';
            CHECK_STR(got + (off & 1), want);
        }
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
    RUN(test_hex);
    RUN(test_body_digest);
    RUN(test_secrets_file);
    RUN(test_rejections);
    RUN(test_python_vectors);
    return 0;
}
