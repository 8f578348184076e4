/*
 * tests/fuzz/gossip/gen_seeds.c: writes the seed corpus of fuzz_gossip_decode (one file per
 * input shape the harness knows, with its mode byte first) into the folder given:
 *   gen_gossip_seeds tests/fuzz/gossip/seeds
 * The files it wrote are checked in; run it again after changing the wire format.
 */
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gossip/cert_set.h"
#include "gossip/meta.h"
#include "gossip/seal.h"
#include "gossip/wire.h"

static const char *dir;

static gsp_str_t S(const char *s)
{
    return (gsp_str_t){s, (uint32_t)strlen(s)};
}

static void put(const char *name, uint8_t mode, const void *p, size_t n)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(&mode, 1, 1, f) != 1 || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

static int meta(uint8_t *buf, size_t cap)
{
    gsp_inst_t in[2] = {0};
    in[0].service = S("kv.Store");
    in[0].addr = S("10.0.0.1:5001");
    in[0].node = S("node-1");
    in[0].zone = S("eu-1a");
    in[0].version = S("v2");
    in[0].weight = 10;
    in[0].methods = 0x1234;
    in[0].n_labels = 1;
    in[0].labels[0] = (gsp_label_t){S("team"), S("storage")};
    in[1].service = S("echo.Echo");
    in[1].addr = S("[::1]:5002");
    in[1].weight = 1;
    return gsp_meta_encode(in, 2, buf, cap);
}

/* A compound with one message of every type. */
static size_t all_types(uint8_t *buf, size_t cap)
{
    static uint8_t m[1024];
    int mlen = meta(m, sizeof(m));
    gsp_enc_t e;
    gsp_enc_init(&e, buf, cap);
    gsp_ping_t ping = {7, S("b"), S("a"), S("10.0.0.1:7946")};
    gsp_enc_ping(&e, &ping);
    gsp_ping_req_t pr = {8, S("c"), S("10.0.0.3:7946"), 1, S("a"), S("10.0.0.1:7946")};
    gsp_enc_ping_req(&e, &pr);
    gsp_enc_ack(&e, GSP_ACK, 7);
    gsp_enc_ack(&e, GSP_NACK, 8);
    gsp_alive_t al = {S("node-1"), S("10.0.0.1:7946"), 3, 5, {(const char *)m, (uint32_t)mlen}};
    gsp_enc_alive(&e, &al);
    gsp_suspect_t su = {S("node-2"), 9, S("node-1")};
    gsp_enc_suspect(&e, GSP_SUSPECT, &su);
    gsp_enc_suspect(&e, GSP_DEAD, &su);
    gsp_member_state_t st = {
        S("node-3"), S("10.0.0.3:7946"), 1, GSP_ST_ALIVE, 2, {(const char *)m, (uint32_t)mlen}};
    gsp_enc_state(&e, &st);
    gsp_push_pull_t pp = {.join = 1, .reply = 0, .n_states = 1};
    gsp_enc_push_pull(&e, &pp);
    const char *names[] = {"Get", "Put", "Watch"};
    gsp_enc_set(&e, gsp_meta_set_hash(names, 3), names, 3);
    const char *nodes[] = {"node-2"};
    uint64_t sets[] = {42};
    gsp_enc_want(&e, nodes, 1, sets, 1);
    return gsp_enc_finish(&e);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    dir = argv[1];
    static uint8_t c[4096], pkt[8192], fr[8192], m[1024];
    size_t clen = all_types(c, sizeof(c)), plen, flen, n;
    put("compound_all_types", 2, c, clen);
    put("sealed_by_fuzz_harness", 3, c, clen);

    gsp_sealer_t *plain = gsp_sealer_new(NULL, "fuzz");
    gsp_seal(plain, c, clen, pkt, sizeof(pkt), &plen);
    put("plain_packet", 0, pkt, plen);
    gsp_keyring_t ring;
    char err[256];
    const char *key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    if (gsp_keyring_parse(key, strlen(key), "key", &ring, err, sizeof(err)) != 0)
        return 1;
    gsp_sealer_t *keyed = gsp_sealer_new(&ring, "fuzz");
    gsp_seal(keyed, c, clen, pkt, sizeof(pkt), &plen);
    put("encrypted_packet", 1, pkt, plen);

    int mlen = meta(m, sizeof(m));
    put("meta", 4, m, (size_t)mlen);

    /* A monitor's metadata: node attributes (role, evicted instances), the map form. */
    static gsp_node_attrs_t na;
    na.role = S(GSP_ROLE_MONITOR);
    na.n_evicted = 2;
    na.evicted[0] = (gsp_evicted_t){S("kv.Store"), S("10.0.0.1:5001")};
    na.evicted[1] = (gsp_evicted_t){S("echo.Echo"), S("[::1]:5002")};
    mlen = gsp_meta_encode_node(NULL, 0, &na, m, sizeof(m));
    put("meta_monitor", 4, m, (size_t)mlen);

    /* A signed record: the instances with a signature and the hash of a certificate set; and
     * a compound holding that certificate set (fake DER bytes: the decoders do not parse it). */
    static uint8_t fake_der[600], bare[2048];
    for (size_t i = 0; i < sizeof(fake_der); i++)
        fake_der[i] = (uint8_t)(i * 7);
    gsp_cert_set_t cs;
    if (gsp_cert_set_make(&cs, fake_der, sizeof(fake_der)) != 0)
        return 1;
    static gsp_inst_t one[1];
    one[0].service = S("shop.Cart");
    one[0].addr = S("10.0.0.9:50051");
    one[0].weight = 1;
    static gsp_node_attrs_t sa;
    static const char sig[71] = "0E\x02\x20signature-bytes";
    sa.sig = (gsp_str_t){sig, sizeof(sig)};
    sa.cset = cs.hash;
    mlen = gsp_meta_encode_node(one, 1, &sa, m, sizeof(m));
    put("meta_signed", 4, m, (size_t)mlen);
    sa.vsig = sa.sig; /* versioned (v2), what meshd sends */
    sa.sig = (gsp_str_t){"", 0};
    mlen = gsp_meta_encode_node(one, 1, &sa, m, sizeof(m));
    put("meta_signed_v2", 4, m, (size_t)mlen);
    gsp_enc_t ce;
    gsp_enc_init(&ce, bare, sizeof(bare));
    gsp_enc_set(&ce, cs.hash, (const char *const *)cs.names, cs.n);
    put("compound_cert_set", 2, bare, gsp_enc_finish(&ce));

    /* A digest push-pull request (PUSH_PULL with its optional fields, DIGESTs, HAVE) and the
     * head of its answer. */
    gsp_enc_t de;
    gsp_enc_init(&de, bare, sizeof(bare));
    gsp_push_pull_t dp = {.digest = 1, .from_addr = S("10.0.0.1:7946")};
    gsp_enc_push_pull(&de, &dp);
    gsp_digest_t dg = {S("node-1"), 4, GSP_ST_ALIVE, 1767225600123ull, 1};
    gsp_enc_digest(&de, &dg);
    dg = (gsp_digest_t){S("node-2"), 9, GSP_ST_DEAD, 3, 0};
    gsp_enc_digest(&de, &dg);
    uint64_t have[] = {42, cs.hash};
    gsp_enc_have(&de, have, 2);
    dp = (gsp_push_pull_t){.reply = 1, .n_states = 0, .digest = 1, .from_addr = S("[::1]:7946")};
    gsp_enc_push_pull(&de, &dp);
    put("compound_digest", 2, bare, gsp_enc_finish(&de));
    gsp_cert_set_destroy(&cs);

    /* Two plain frames, read in chunks of 17 bytes (the first byte: chunk size - 1). */
    fr[0] = 16;
    gsp_frame_seal(plain, c, clen, fr + 1, sizeof(fr) - 1, &flen);
    gsp_frame_seal(plain, c, 10, fr + 1 + flen, sizeof(fr) - 1 - flen, &n);
    put("frames", 5, fr, 1 + flen + n);

    /* Unknown types and trailing fields, nested. */
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_uint8(&pk, 42);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str_with_body(&pk, "k", 1);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_nil(&pk);
    msgpack_pack_ext_with_body(&pk, "x", 1, 3);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint8(&pk, GSP_ACK);
    msgpack_pack_uint32(&pk, 1);
    msgpack_pack_double(&pk, 0.5);
    msgpack_pack_bin_with_body(&pk, "zz", 2);
    put("unknown_and_trailing", 2, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);

    gsp_sealer_delete(plain);
    gsp_sealer_delete(keyed);
    return 0;
}
