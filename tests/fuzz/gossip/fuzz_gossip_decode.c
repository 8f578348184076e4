/*
 * tests/fuzz/gossip/fuzz_gossip_decode.c: libFuzzer harness over everything a gossip node reads
 * from the network (gossip/seal.h, gossip/wire.h, gossip/meta.h).
 *
 * The first input byte picks what the rest is:
 *   0  a packet opened by a plain sealer (label "fuzz"), then decoded
 *   1  a packet opened by a keyed sealer (keys A, B; label "fuzz"), then decoded
 *   2  a compound, decoded as is
 *   3  a compound sealed with key B by a [B] sealer, opened by the [A, B] one (must succeed and
 *      give the same bytes), then decoded
 *   4  a node's metadata
 *   5  a stream fed to a frame reader in chunks whose sizes come from the input; each frame is
 *      opened by the plain sealer and decoded
 * Properties checked besides "no crash, no leak, no read out of bounds":
 *   - the encoders accept every message the decoder accepted (same rules on both sides), and
 *     re-encoding is a fixed point: decode(encode(decode(x))) encodes to the same bytes (the
 *     digest push-pull's messages too: PUSH_PULL's optional fields, DIGEST, HAVE);
 *   - a message relayed raw (gsp_enc_raw) decodes to the same message;
 *   - metadata that decodes re-encodes, and decodes again to the same encoding;
 *   - a SET's names hash the same in any order (the hash of the names as decoded and reversed);
 *   - signed records' fields (vsig, sig, cert, cset) survive re-encoding, and the bytes signed (the
 *     instance array) lie within the metadata;
 *   - a SET read as a certificate set (gossip/cert_set.h) gives a bounded result or -1, and a
 *     certificate made into a set reads back to the same bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gossip/cert_set.h"
#include "gossip/meta.h"
#include "gossip/seal.h"
#include "gossip/wire.h"

static gsp_sealer_t *plain, *keyed, *sender;
static gsp_decoder_t dec1, dec2;
static gsp_inst_t insts[GSP_INST_MAX], insts2[GSP_INST_MAX];

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_gossip_decode: %s\n", what);
        abort();
    }
}

static void setup(void)
{
    if (plain)
        return;
    gsp_keyring_t ab, b;
    char err[256];
    static const char keys[] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
                               "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoM=\n";
    check(gsp_keyring_parse(keys, sizeof(keys) - 1, "keys", &ab, err, sizeof(err)) == 0, err);
    b.n = 1;
    memcpy(b.keys[0], ab.keys[1], GSP_KEY_LEN);
    plain = gsp_sealer_new(NULL, "fuzz");
    keyed = gsp_sealer_new(&ab, "fuzz");
    sender = gsp_sealer_new(&b, "fuzz");
    check(plain && keyed && sender, "sealers");
}

/* NUL-terminated copies of decoded strings, for the encoders that take C strings. */
typedef struct {
    char *buf;
    size_t used;
    const char *ptrs[GSP_SET_MAX];
} cstrs_t;

static const char *const *to_cstrs(cstrs_t *c, const gsp_str_t *s, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        char *p = c->buf + c->used;
        memcpy(p, s[i].p, s[i].n);
        p[s[i].n] = 0;
        c->used += s[i].n + 1;
        c->ptrs[i] = p;
    }
    return c->ptrs;
}

/* Encodes m into e; 0 or -1. */
static int encode(gsp_enc_t *e, const gsp_msg_t *m, cstrs_t *c)
{
    switch (m->type) {
    case GSP_PING:
        return gsp_enc_ping(e, &m->u.ping);
    case GSP_PING_REQ:
        return gsp_enc_ping_req(e, &m->u.ping_req);
    case GSP_ACK:
    case GSP_NACK:
        return gsp_enc_ack(e, m->type, m->u.ack.seq);
    case GSP_ALIVE:
        return gsp_enc_alive(e, &m->u.alive);
    case GSP_SUSPECT:
    case GSP_DEAD:
        return gsp_enc_suspect(e, m->type, &m->u.suspect);
    case GSP_STATE:
        return gsp_enc_state(e, &m->u.state);
    case GSP_PUSH_PULL:
        return gsp_enc_push_pull(e, &m->u.push_pull);
    case GSP_SET:
        return gsp_enc_set(e, m->u.set.hash, to_cstrs(c, m->u.set.names, m->u.set.n), m->u.set.n);
    case GSP_WANT:
        return gsp_enc_want(e, to_cstrs(c, m->u.want.nodes, m->u.want.n_nodes), m->u.want.n_nodes,
                            m->u.want.sets, m->u.want.n_sets);
    case GSP_CHECK:
        return gsp_enc_check(e, &m->u.check);
    case GSP_CHECK_ACK:
        return gsp_enc_check_ack(e, &m->u.check_ack);
    case GSP_DIGEST:
        return gsp_enc_digest(e, &m->u.digest);
    case GSP_HAVE:
        return gsp_enc_have(e, m->u.have.sets, m->u.have.n_sets);
    }
    return -1;
}

static gsp_node_attrs_t attrs1, attrs2;

/* Metadata in either form (gossip/meta.h: the bare array, or the map with node attributes). */
static void check_meta(const uint8_t *p, size_t len)
{
    size_t n, n2;
    if (gsp_meta_decode_node(p, len, insts, GSP_INST_MAX, &n, &attrs1) != 0)
        return;
    static uint8_t a[GSP_META_MAX], b[GSP_META_MAX];
    int la = gsp_meta_encode_node(insts, n, &attrs1, a, sizeof(a));
    check(la > 0, "decoded metadata re-encodes");
    check(gsp_meta_decode_node(a, (size_t)la, insts2, GSP_INST_MAX, &n2, &attrs2) == 0 && n2 == n &&
              attrs2.n_evicted == attrs1.n_evicted,
          "re-encoded metadata decodes");
    check(attrs2.sig.n == attrs1.sig.n && attrs2.vsig.n == attrs1.vsig.n &&
              attrs2.cert.n == attrs1.cert.n && attrs2.cset == attrs1.cset &&
              (!attrs1.sig.n || !memcmp(attrs2.sig.p, attrs1.sig.p, attrs1.sig.n)) &&
              (!attrs1.vsig.n || !memcmp(attrs2.vsig.p, attrs1.vsig.p, attrs1.vsig.n)) &&
              (!attrs1.cert.n || !memcmp(attrs2.cert.p, attrs1.cert.p, attrs1.cert.n)),
          "signature, certificate and certificate set survive re-encoding");
    check((const uint8_t *)attrs1.insts_raw.p >= p && attrs1.insts_raw.n > 0 &&
              (const uint8_t *)attrs1.insts_raw.p + attrs1.insts_raw.n <= p + len,
          "the signed bytes (the instance array) lie within the metadata");
    int lb = gsp_meta_encode_node(insts2, n2, &attrs2, b, sizeof(b));
    check(lb == la && memcmp(a, b, (size_t)la) == 0, "metadata encoding is a fixed point");
}

/* Decodes a compound, checking the properties above. */
static void check_compound(const uint8_t *p, size_t len)
{
    if (gsp_dec_init(&dec1, p, len) != GSP_WIRE_OK)
        return;
    /* Re-encoded messages go to a; relayed raw ones to r. */
    size_t cap = 2 * len + 64;
    uint8_t *a = malloc(cap), *r = malloc(len + 3), *b = malloc(cap);
    cstrs_t c = {.buf = malloc(len + GSP_SET_MAX + 1)};
    check(a && r && b && c.buf, "out of memory");
    gsp_enc_t ea, er, eb;
    gsp_enc_init(&ea, a, cap);
    gsp_enc_init(&er, r, len + 3);
    gsp_msg_t m;
    const uint8_t *raw;
    size_t raw_len;
    int rc;
    while ((rc = gsp_dec_next(&dec1, &m, &raw, &raw_len)) == GSP_WIRE_OK || rc == GSP_WIRE_SKIP) {
        check(gsp_enc_raw(&er, raw, raw_len) == 0, "raw relay fits");
        if (rc == GSP_WIRE_SKIP)
            continue;
        c.used = 0;
        check(encode(&ea, &m, &c) == 0, "the encoder accepts what the decoder accepted");
        if (m.type == GSP_ALIVE)
            check_meta((const uint8_t *)m.u.alive.meta.p, m.u.alive.meta.n);
        if (m.type == GSP_STATE)
            check_meta((const uint8_t *)m.u.state.meta.p, m.u.state.meta.n);
        if (m.type == GSP_SET && m.u.set.n > 0) {
            static gsp_str_t rev[GSP_SET_MAX];
            for (uint32_t i = 0; i < m.u.set.n; i++)
                rev[i] = m.u.set.names[m.u.set.n - 1 - i];
            check(gsp_meta_set_hash_strs(m.u.set.names, m.u.set.n) ==
                      gsp_meta_set_hash_strs(rev, m.u.set.n),
                  "set hash is order-independent");
            /* a certificate set: reassembled within bounds, and made again to the same hash */
            static uint8_t der[GSP_CERT_MAX];
            c.used = 0;
            const char *const *names = to_cstrs(&c, m.u.set.names, m.u.set.n);
            long dl = gsp_cert_set_read(names, m.u.set.n, der, sizeof(der));
            check(dl == -1 || (dl > 0 && dl <= GSP_CERT_MAX), "certificate set read is bounded");
            if (dl > 0) {
                gsp_cert_set_t cs;
                static uint8_t back[GSP_CERT_MAX];
                check(gsp_cert_set_make(&cs, der, (size_t)dl) == 0 && cs.n == m.u.set.n,
                      "a certificate read from a set makes a set again");
                check(gsp_cert_set_read((const char *const *)cs.names, cs.n, back, sizeof(back)) ==
                              dl &&
                          !memcmp(back, der, (size_t)dl),
                      "a certificate set reads back to its bytes");
                gsp_cert_set_destroy(&cs);
            }
        }
    }
    check(rc == GSP_WIRE_END || rc == GSP_WIRE_EBAD, "decoder result");
    size_t la = gsp_enc_finish(&ea), lr = gsp_enc_finish(&er);

    /* The relayed compound decodes message for message like the original. */
    if (rc == GSP_WIRE_END) {
        check(gsp_dec_init(&dec2, r, lr) == GSP_WIRE_OK, "relayed compound");
        int n = 0;
        while ((rc = gsp_dec_next(&dec2, &m, NULL, NULL)) == GSP_WIRE_OK || rc == GSP_WIRE_SKIP)
            n++;
        check(rc == GSP_WIRE_END && n == (int)er.n, "relayed compound decodes");
    }
    /* decode(encode(decode(x))) re-encodes to the same bytes. */
    check(gsp_dec_init(&dec2, a, la) == GSP_WIRE_OK, "re-encoded compound");
    gsp_enc_init(&eb, b, cap);
    while ((rc = gsp_dec_next(&dec2, &m, NULL, NULL)) == GSP_WIRE_OK) {
        c.used = 0;
        check(encode(&eb, &m, &c) == 0, "re-encoding");
    }
    check(rc == GSP_WIRE_END, "re-encoded compound decodes");
    size_t lb = gsp_enc_finish(&eb);
    check(la == lb && memcmp(a, b, la) == 0, "encoding is a fixed point");
    free(a);
    free(b);
    free(r);
    free(c.buf);
}

static void open_and_check(gsp_sealer_t *s, const uint8_t *p, size_t len)
{
    uint8_t *scratch = malloc(len + 1);
    const uint8_t *body;
    size_t blen;
    check(scratch != NULL, "out of memory");
    gsp_seal_err_t rc = gsp_open(s, p, len, scratch, len, &body, &blen);
    check(rc >= 0 && rc < GSP_SEAL_NERR && rc != GSP_SEAL_ESPACE, "open result");
    if (rc == GSP_SEAL_OK)
        check_compound(body, blen);
    free(scratch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    if (size < 1 || size > (1u << 20))
        return 0;
    const uint8_t *p = data + 1;
    size_t len = size - 1;
    switch (data[0] % 6) {
    case 0:
        open_and_check(plain, p, len);
        break;
    case 1:
        open_and_check(keyed, p, len);
        break;
    case 2:
        check_compound(p, len);
        break;
    case 3: {
        size_t cap = len + gsp_seal_overhead(sender);
        uint8_t *pkt = malloc(cap), *scratch = malloc(len + 1);
        size_t plen, blen;
        const uint8_t *body;
        check(pkt && scratch, "out of memory");
        check(gsp_seal(sender, p, len, pkt, cap, &plen) == GSP_SEAL_OK, "seal");
        check(gsp_open(keyed, pkt, plen, scratch, len, &body, &blen) == GSP_SEAL_OK &&
                  blen == len && memcmp(body, p, len) == 0,
              "open what was sealed with the second key");
        check_compound(body, blen);
        free(pkt);
        free(scratch);
        break;
    }
    case 4:
        check_meta(p, len);
        break;
    case 5: {
        /* The first byte of the rest sizes the chunks (1..256). */
        if (len < 1)
            break;
        size_t chunk = (size_t)p[0] + 1;
        p++, len--;
        gsp_frame_reader_t r;
        gsp_frame_reader_init(&r, 1 << 16);
        int rc = 0;
        for (size_t pos = 0; pos < len && rc >= 0; pos += chunk) {
            const uint8_t *q = p + pos;
            size_t n = len - pos < chunk ? len - pos : chunk;
            const uint8_t *f;
            size_t flen;
            while ((rc = gsp_frame_read(&r, &q, &n, &f, &flen)) == 1) {
                check(flen > 0 && flen <= (1 << 16), "frame length");
                open_and_check(plain, f, flen);
            }
            check(rc == -1 || n == 0, "chunk used up");
        }
        gsp_frame_reader_destroy(&r);
        break;
    }
    }
    return 0;
}
