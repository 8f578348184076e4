/*
 * tests/unit/gossip/test_seal.c: sealed gossip packets and stream frames (gossip/seal.h): key
 * files and their errors (file:line), plain and encrypted round trips, in-place sealing, key
 * rotation, label and mode mismatches, tampering, and the frame reader fed in any chunking.
 */
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "gossip/seal.h"
#include "gossip/wire.h"
#include "tests/check.h"

#define KEY_A "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define KEY_B "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoM="
#define KEY_C "yMnKy8zNzs/Q0dLT1NXW19jZ2tvc3d7f4OHi4+Tl5uc="

static void ring_of(gsp_keyring_t *ring, const char *text)
{
    char err[256];
    if (gsp_keyring_parse(text, strlen(text), "test", ring, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        CHECK(0);
    }
}

static void parse_err(const char *text, const char *want)
{
    gsp_keyring_t ring;
    char err[256] = "";
    CHECK_EQ(gsp_keyring_parse(text, strlen(text), "keys.txt", &ring, err, sizeof(err)), -1);
    CHECK_STR(err, want);
    CHECK_EQ(ring.n, 0);
}

static void test_keyring(void)
{
    gsp_keyring_t ring;
    ring_of(&ring, "# gossip keys\n\n  " KEY_B "  \r\n\t# old one:\n" KEY_A "\n");
    CHECK_EQ(ring.n, 2);
    CHECK_EQ(ring.keys[0][0], 100);
    CHECK_EQ(ring.keys[1][31], 31);
    ring_of(&ring, KEY_C); /* no final newline */
    CHECK_EQ(ring.n, 1);
    CHECK_EQ(ring.keys[0][0], 200);
    /* Unpadded base64 is fine too. */
    ring_of(&ring, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\n");
    CHECK_EQ(ring.keys[0][1], 1);

    parse_err("# nothing\n\n", "keys.txt: no key");
    parse_err("", "keys.txt: no key");
    parse_err(KEY_A "\n\nnot base64!\n", "keys.txt:3: not a base64 key");
    parse_err("# c\nAAAAAAAAAAAAAAAAAAAAAA==\n", "keys.txt:2: key of 16 bytes (AES-256 needs 32)");
    parse_err("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
              "keys.txt:1: key longer than 32 bytes (AES-256 needs 32)");
    parse_err(KEY_A " " KEY_B "\n", "keys.txt:1: not a base64 key");
    char many[2048] = "";
    for (int i = 0; i <= GSP_KEYRING_MAX; i++)
        strcat(many, KEY_A "\n");
    parse_err(many, "keys.txt:17: more than 16 keys");

    /* From a file. */
    char path[] = "/tmp/gsp_keys_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    const char *text = KEY_A "\n" KEY_B "\n";
    CHECK_EQ(write(fd, text, strlen(text)), (long)strlen(text));
    close(fd);
    char err[512];
    CHECK_EQ(gsp_keyring_load(path, &ring, err, sizeof(err)), 0);
    CHECK_EQ(ring.n, 2);
    fd = open(path, O_WRONLY | O_TRUNC);
    CHECK_EQ(write(fd, "#\nxx\n", 5), 5);
    close(fd);
    CHECK_EQ(gsp_keyring_load(path, &ring, err, sizeof(err)), -1);
    char want[512];
    snprintf(want, sizeof(want), "%s:2: not a base64 key", path);
    CHECK_STR(err, want);
    unlink(path);
    CHECK_EQ(gsp_keyring_load(path, &ring, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s: No such file or directory", path);
    CHECK_STR(err, want);
    gsp_keyring_clear(&ring);
    CHECK_EQ(ring.n, 0);
}

/* Seals body with a, opens with b: the result, and the body when it opens. */
static gsp_seal_err_t seal_open(gsp_sealer_t *a, gsp_sealer_t *b, const char *body)
{
    static uint8_t pkt[GSP_UDP_MAX], scratch[GSP_UDP_MAX];
    size_t len, blen;
    const uint8_t *out;
    CHECK_EQ(gsp_seal(a, body, strlen(body), pkt, sizeof(pkt), &len), GSP_SEAL_OK);
    CHECK_EQ(len, strlen(body) + gsp_seal_overhead(a));
    gsp_seal_err_t rc = gsp_open(b, pkt, len, scratch, sizeof(scratch), &out, &blen);
    if (rc == GSP_SEAL_OK) {
        CHECK_EQ(blen, strlen(body));
        CHECK(memcmp(out, body, blen) == 0);
    }
    return rc;
}

static void test_packets(void)
{
    gsp_keyring_t ab, ba, a, c;
    ring_of(&ab, KEY_A "\n" KEY_B);
    ring_of(&ba, KEY_B "\n" KEY_A);
    ring_of(&a, KEY_A);
    ring_of(&c, KEY_C);
    gsp_sealer_t *plain = gsp_sealer_new(NULL, "prod");
    gsp_sealer_t *plain2 = gsp_sealer_new(NULL, "prod");
    gsp_sealer_t *plain_other = gsp_sealer_new(NULL, "staging");
    gsp_sealer_t *plain_none = gsp_sealer_new(NULL, "");
    gsp_sealer_t *s_ab = gsp_sealer_new(&ab, "prod");
    gsp_sealer_t *s_ba = gsp_sealer_new(&ba, "prod");
    gsp_sealer_t *s_a = gsp_sealer_new(&a, "prod");
    gsp_sealer_t *s_c = gsp_sealer_new(&c, "prod");
    gsp_sealer_t *s_a_other = gsp_sealer_new(&a, "prodx");
    CHECK(plain && plain2 && plain_other && plain_none && s_ab && s_ba && s_a && s_c && s_a_other);
    CHECK(!gsp_sealer_encrypted(plain) && gsp_sealer_encrypted(s_ab));
    CHECK_EQ(gsp_seal_overhead(plain), 3 + 4);
    CHECK_EQ(gsp_seal_overhead(s_ab), 3 + 4 + 12 + 16);
    char label[300];
    memset(label, 'l', sizeof(label));
    label[GSP_LABEL_LEN_MAX + 1] = 0;
    CHECK(gsp_sealer_new(NULL, label) == NULL);
    label[GSP_LABEL_LEN_MAX] = 0;
    gsp_sealer_t *long_label = gsp_sealer_new(&a, label);
    CHECK(long_label);

    /* Round trips. */
    CHECK_EQ(seal_open(plain, plain2, "hello"), GSP_SEAL_OK);
    CHECK_EQ(seal_open(plain_none, plain_none, ""), GSP_SEAL_OK);
    CHECK_EQ(seal_open(s_a, s_a, "secret gossip"), GSP_SEAL_OK);
    CHECK_EQ(seal_open(s_a, s_a, ""), GSP_SEAL_OK);
    CHECK_EQ(seal_open(long_label, long_label, "x"), GSP_SEAL_OK);
    /* Rotation: [B, A] encrypts with B; [A, B] opens it with its second key, and back. */
    CHECK_EQ(seal_open(s_ba, s_ab, "rotated"), GSP_SEAL_OK);
    CHECK_EQ(seal_open(s_ab, s_ba, "rotated"), GSP_SEAL_OK);
    CHECK_EQ(seal_open(s_ab, s_a, "old key"), GSP_SEAL_OK);
    CHECK_EQ(seal_open(s_ba, s_a, "new key"), GSP_SEAL_EAUTH);
    CHECK_EQ(seal_open(s_c, s_ab, "stranger"), GSP_SEAL_EAUTH);
    /* Labels and modes. */
    CHECK_EQ(seal_open(plain, plain_other, "x"), GSP_SEAL_ELABEL);
    CHECK_EQ(seal_open(plain, plain_none, "x"), GSP_SEAL_ELABEL);
    CHECK_EQ(seal_open(plain_none, plain, "x"), GSP_SEAL_ELABEL);
    CHECK_EQ(seal_open(s_a, s_a_other, "x"), GSP_SEAL_ELABEL);
    CHECK_EQ(seal_open(s_a, plain, "x"), GSP_SEAL_ENOKEY);
    CHECK_EQ(seal_open(plain, s_a, "x"), GSP_SEAL_EPLAIN);

    /* Tampering: every byte of an encrypted packet. */
    uint8_t pkt[256], scratch[256];
    const uint8_t *body;
    size_t len, blen;
    CHECK_EQ(gsp_seal(s_a, "tamper me", 9, pkt, sizeof(pkt), &len), GSP_SEAL_OK);
    for (size_t i = 0; i < len; i++) {
        pkt[i] ^= 0x01;
        gsp_seal_err_t rc = gsp_open(s_a, pkt, len, scratch, sizeof(scratch), &body, &blen);
        gsp_seal_err_t want = i == 0   ? GSP_SEAL_EVERSION
                              : i == 1 ? GSP_SEAL_EPLAIN /* the encrypted bit cleared */
                              : i < 7  ? GSP_SEAL_ELABEL /* label length and bytes */
                                       : GSP_SEAL_EAUTH;
        CHECK_EQ(rc, want);
        pkt[i] ^= 0x01;
    }
    pkt[1] |= 0x80; /* a reserved flag */
    CHECK_EQ(gsp_open(s_a, pkt, len, scratch, sizeof(scratch), &body, &blen), GSP_SEAL_ESHORT);
    pkt[1] &= 0x7f;
    /* Every truncation is refused. */
    for (size_t cut = 0; cut < len; cut++) {
        gsp_seal_err_t rc = gsp_open(s_a, pkt, cut, scratch, sizeof(scratch), &body, &blen);
        CHECK(rc == GSP_SEAL_ESHORT || rc == GSP_SEAL_EAUTH);
    }
    CHECK_EQ(gsp_open(s_a, pkt, len, scratch, 8, &body, &blen), GSP_SEAL_ESPACE);
    CHECK_EQ(gsp_open(s_a, pkt, len, scratch, 9, &body, &blen), GSP_SEAL_OK);
    /* Nonces differ from packet to packet. */
    uint8_t pkt2[256];
    size_t len2;
    CHECK_EQ(gsp_seal(s_a, "tamper me", 9, pkt2, sizeof(pkt2), &len2), GSP_SEAL_OK);
    CHECK(memcmp(pkt + 7, pkt2 + 7, 12) != 0);
    /* Sealing needs room. */
    CHECK_EQ(gsp_seal(s_a, "tamper me", 9, pkt2, len2 - 1, &len2), GSP_SEAL_ESPACE);

    /* Sealing in place: encode the compound at out + prefix. */
    uint8_t buf[GSP_UDP_MAX];
    gsp_enc_t e;
    size_t prefix = gsp_seal_prefix(s_ab);
    gsp_enc_init(&e, buf + prefix, sizeof(buf) - gsp_seal_overhead(s_ab));
    CHECK_EQ(gsp_enc_ack(&e, GSP_ACK, 99), 0);
    size_t clen = gsp_enc_finish(&e);
    CHECK_EQ(gsp_seal(s_ab, buf + prefix, clen, buf, sizeof(buf), &len), GSP_SEAL_OK);
    static uint8_t big_scratch[GSP_UDP_MAX];
    CHECK_EQ(gsp_open(s_ba, buf, len, big_scratch, sizeof(big_scratch), &body, &blen), GSP_SEAL_OK);
    static gsp_decoder_t d;
    gsp_msg_t m;
    CHECK_EQ(gsp_dec_init(&d, body, blen), GSP_WIRE_OK);
    CHECK_EQ(gsp_dec_next(&d, &m, NULL, NULL), GSP_WIRE_OK);
    CHECK(m.type == GSP_ACK && m.u.ack.seq == 99);
    gsp_enc_init(&e, buf + gsp_seal_prefix(plain), sizeof(buf));
    CHECK_EQ(gsp_enc_ack(&e, GSP_NACK, 5), 0);
    clen = gsp_enc_finish(&e);
    CHECK_EQ(gsp_seal(plain, buf + gsp_seal_prefix(plain), clen, buf, sizeof(buf), &len), 0);
    CHECK_EQ(gsp_open(plain2, buf, len, NULL, 0, &body, &blen), GSP_SEAL_OK);
    CHECK(body == buf + gsp_seal_prefix(plain)); /* plain packets are read in place */
    CHECK_EQ(blen, clen);

    /* Short packets and other versions. */
    const uint8_t v2[] = {2, 0, 0, 0x90};
    CHECK_EQ(gsp_open(plain_none, v2, sizeof(v2), NULL, 0, &body, &blen), GSP_SEAL_EVERSION);
    CHECK_EQ(gsp_open(plain_none, v2, 1, NULL, 0, &body, &blen), GSP_SEAL_EVERSION);
    const uint8_t v1[] = {GSP_WIRE_VERSION, 0, 5, 'p'};
    CHECK_EQ(gsp_open(plain_none, v1, 0, NULL, 0, &body, &blen), GSP_SEAL_ESHORT);
    CHECK_EQ(gsp_open(plain_none, v1, 2, NULL, 0, &body, &blen), GSP_SEAL_ESHORT);
    CHECK_EQ(gsp_open(plain_none, v1, sizeof(v1), NULL, 0, &body, &blen), GSP_SEAL_ESHORT);
    const uint8_t enc_short[] = {GSP_WIRE_VERSION, 1, 0, 1, 2, 3};
    gsp_sealer_t *s_a_none = gsp_sealer_new(&a, NULL);
    CHECK_EQ(
        gsp_open(s_a_none, enc_short, sizeof(enc_short), scratch, sizeof(scratch), &body, &blen),
        GSP_SEAL_ESHORT);

    /* Every error has a sentence and a name. */
    for (int i = 0; i < GSP_SEAL_NERR; i++)
        CHECK(gsp_seal_strerror(i) && gsp_seal_errname(i) && *gsp_seal_errname(i));
    CHECK_STR(gsp_seal_errname(GSP_SEAL_EAUTH), "auth");

    gsp_sealer_t *all[] = {plain, plain2, plain_other, plain_none, s_ab,    s_ba,
                           s_a,   s_c,    s_a_other,   long_label, s_a_none};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        gsp_sealer_delete(all[i]);
}

/* Feeds a stream of frames in chunks of size chunk (0: sizes varying 1..97). */
static void read_stream(const uint8_t *stream, size_t len, size_t chunk, const size_t *want,
                        int n_want)
{
    gsp_frame_reader_t r;
    gsp_frame_reader_init(&r, 0);
    int got = 0;
    size_t pos = 0, k = 0;
    while (pos < len) {
        size_t c = chunk ? chunk : 1 + (k++ * 37) % 97;
        if (c > len - pos)
            c = len - pos;
        const uint8_t *p = stream + pos;
        size_t n = c;
        const uint8_t *f;
        size_t flen;
        int rc;
        while ((rc = gsp_frame_read(&r, &p, &n, &f, &flen)) == 1) {
            CHECK(got < n_want);
            CHECK_EQ(flen, want[got]);
            for (size_t i = 0; i < flen; i++)
                CHECK_EQ(f[i], (uint8_t)(got + i));
            got++;
        }
        CHECK_EQ(rc, 0);
        CHECK_EQ(n, 0);
        pos += c;
    }
    CHECK_EQ(got, n_want);
    CHECK(!r.in_body && r.hdr_have == 0);
    gsp_frame_reader_destroy(&r);
}

static void test_frames(void)
{
    static uint8_t stream[300000];
    const size_t sizes[] = {1, 5000, 3, 200000, 7};
    size_t len = 0;
    for (int f = 0; f < 5; f++) {
        uint32_t n = (uint32_t)sizes[f];
        stream[len++] = (uint8_t)(n >> 24);
        stream[len++] = (uint8_t)(n >> 16);
        stream[len++] = (uint8_t)(n >> 8);
        stream[len++] = (uint8_t)n;
        for (uint32_t i = 0; i < n; i++)
            stream[len++] = (uint8_t)(f + i);
    }
    read_stream(stream, len, 1, sizes, 5);
    read_stream(stream, len, 0, sizes, 5);
    read_stream(stream, len, 4096, sizes, 5);
    read_stream(stream, len, len, sizes, 5); /* all at once: every frame in place */

    /* Oversize and empty lengths are refused, also when they arrive a byte at a time. */
    gsp_frame_reader_t r;
    const uint8_t *f;
    size_t flen;
    for (int whole = 0; whole < 2; whole++) {
        const uint8_t over[] = {0x00, 0x80, 0x00, 0x01, 1, 2, 3}; /* GSP_FRAME_MAX + 1 */
        gsp_frame_reader_init(&r, 0);
        const uint8_t *p = over;
        size_t n = whole ? sizeof(over) : 1, rc = 0;
        for (int i = 0; i < 4 && (int)rc == 0; i++) {
            rc = (size_t)gsp_frame_read(&r, &p, &n, &f, &flen);
            n = whole ? n : 1;
        }
        CHECK_EQ((int)rc, -1);
        CHECK_EQ(r.err, GSP_SEAL_EFRAME);
        CHECK(r.buf == NULL); /* nothing was allocated for it */
        gsp_frame_reader_destroy(&r);
    }
    gsp_frame_reader_init(&r, 100);
    const uint8_t big[] = {0, 0, 0, 101};
    const uint8_t *p = big;
    size_t n = 4;
    CHECK_EQ(gsp_frame_read(&r, &p, &n, &f, &flen), -1);
    CHECK_EQ(gsp_frame_read(&r, &p, &n, &f, &flen), -1); /* sticky */
    gsp_frame_reader_destroy(&r);
    gsp_frame_reader_init(&r, 0);
    const uint8_t empty[] = {0, 0, 0, 0};
    p = empty, n = 4;
    CHECK_EQ(gsp_frame_read(&r, &p, &n, &f, &flen), -1);
    gsp_frame_reader_destroy(&r);

    /* A sealed frame through the reader and back. */
    gsp_keyring_t a;
    ring_of(&a, KEY_A);
    gsp_sealer_t *s = gsp_sealer_new(&a, "prod");
    uint8_t out[128], scratch[128];
    size_t olen, blen;
    const uint8_t *body;
    CHECK_EQ(gsp_frame_seal(s, "frame body", 10, out, sizeof(out), &olen), GSP_SEAL_OK);
    CHECK_EQ(olen, 4 + 10 + gsp_seal_overhead(s));
    CHECK_EQ(gsp_frame_seal(s, "frame body", 10, out, olen - 1, &olen), GSP_SEAL_ESPACE);
    CHECK_EQ(gsp_frame_seal(s, "frame body", 10, out, sizeof(out), &olen), GSP_SEAL_OK);
    gsp_frame_reader_init(&r, 0);
    int frames = 0;
    for (size_t i = 0; i < olen; i++) {
        p = out + i, n = 1;
        int rc = gsp_frame_read(&r, &p, &n, &f, &flen);
        CHECK_EQ(rc, i + 1 == olen);
        if (rc == 1) {
            frames++;
            CHECK_EQ(gsp_open(s, f, flen, scratch, sizeof(scratch), &body, &blen), GSP_SEAL_OK);
            CHECK(blen == 10 && memcmp(body, "frame body", 10) == 0);
        }
    }
    CHECK_EQ(frames, 1);
    gsp_frame_reader_destroy(&r);
    gsp_sealer_delete(s);
}

int main(void)
{
    RUN(test_keyring);
    RUN(test_packets);
    RUN(test_frames);
    printf("ok\n");
    return 0;
}
