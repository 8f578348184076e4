/*
 * bench/gossip/bench_wire.c: the cost of one gossip datagram through the wire layer: a ping
 * compound with 6 piggybacked ALIVE updates (each with a two-instance metadata blob), encoded
 * and sealed, then opened and decoded (metadata included), plain and AES-256-GCM. Prints
 * nanoseconds per operation; no pass/fail (time on this shared machine is noisy).
 *
 *   build/rel/bench/gossip/bench_wire [ITERATIONS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gossip/meta.h"
#include "gossip/seal.h"
#include "gossip/wire.h"

static gsp_str_t S(const char *s)
{
    return (gsp_str_t){s, (uint32_t)strlen(s)};
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static uint8_t meta[512];
static size_t meta_len;
static char names[6][32];

static void make_meta(void)
{
    gsp_inst_t in[2] = {0};
    in[0].service = S("inventory.v1.Inventory");
    in[0].addr = S("10.20.30.40:50051");
    in[0].node = S("node-17");
    in[0].zone = S("eu-west-1a");
    in[0].version = S("v1.4.2");
    in[0].weight = 100;
    in[0].methods = 0x8c3f2a9b17e4d605ULL;
    in[1] = in[0];
    in[1].service = S("orders.v1.Orders");
    in[1].addr = S("10.20.30.40:50052");
    int n = gsp_meta_encode(in, 2, meta, sizeof(meta));
    if (n < 0)
        abort();
    meta_len = (size_t)n;
    for (int i = 0; i < 6; i++)
        snprintf(names[i], sizeof(names[i]), "node-%02d.example.internal", i + 10);
}

/* Encodes the compound at out + prefix and seals it in place; returns the packet length. */
static size_t encode_seal(gsp_sealer_t *s, uint8_t *out, size_t cap, uint32_t seq)
{
    size_t prefix = gsp_seal_prefix(s), len;
    gsp_enc_t e;
    gsp_enc_init(&e, out + prefix, cap - gsp_seal_overhead(s));
    gsp_ping_t ping = {seq, S("node-03.example.internal"), S("node-01.example.internal"),
                       S("10.20.30.1:7946")};
    int rc = gsp_enc_ping(&e, &ping);
    for (int i = 0; i < 6; i++) {
        gsp_alive_t al = {S(names[i]),
                          S("10.20.30.40:7946"),
                          seq + (uint32_t)i,
                          12,
                          {(const char *)meta, (uint32_t)meta_len}};
        rc |= gsp_enc_alive(&e, &al);
    }
    size_t clen = gsp_enc_finish(&e);
    if (rc || gsp_seal(s, out + prefix, clen, out, cap, &len) != GSP_SEAL_OK)
        abort();
    return len;
}

static gsp_decoder_t dec;
static gsp_inst_t insts[GSP_INST_MAX];

/* Opens and decodes a packet, metadata included; returns the messages read. */
static int open_decode(gsp_sealer_t *s, const uint8_t *pkt, size_t len, uint8_t *scratch,
                       size_t cap)
{
    const uint8_t *body;
    size_t blen, n_inst;
    gsp_msg_t m;
    int n = 0, rc;
    if (gsp_open(s, pkt, len, scratch, cap, &body, &blen) != GSP_SEAL_OK ||
        gsp_dec_init(&dec, body, blen) != GSP_WIRE_OK)
        abort();
    while ((rc = gsp_dec_next(&dec, &m, NULL, NULL)) == GSP_WIRE_OK) {
        n++;
        if (m.type == GSP_ALIVE &&
            gsp_meta_decode(m.u.alive.meta.p, m.u.alive.meta.n, insts, GSP_INST_MAX, &n_inst))
            abort();
    }
    if (rc != GSP_WIRE_END)
        abort();
    return n;
}

static void run(const char *name, gsp_sealer_t *s, long iters)
{
    static uint8_t pkt[GSP_UDP_MAX], scratch[GSP_UDP_MAX];
    size_t len = 0;
    double t0 = now_ns();
    for (long i = 0; i < iters; i++)
        len = encode_seal(s, pkt, sizeof(pkt), (uint32_t)i);
    double t1 = now_ns();
    long msgs = 0;
    for (long i = 0; i < iters; i++)
        msgs += open_decode(s, pkt, len, scratch, sizeof(scratch));
    double t2 = now_ns();
    if (msgs != 7 * iters)
        abort();
    printf("%-10s packet %4zu B   encode+seal %7.0f ns/op   open+decode %7.0f ns/op\n", name, len,
           (t1 - t0) / (double)iters, (t2 - t1) / (double)iters);
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 200000;
    make_meta();
    gsp_keyring_t ring;
    char err[256];
    const char *keys = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
                       "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoM=\n";
    if (gsp_keyring_parse(keys, strlen(keys), "bench", &ring, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    gsp_sealer_t *plain = gsp_sealer_new(NULL, "bench-cluster");
    gsp_sealer_t *gcm = gsp_sealer_new(&ring, "bench-cluster");
    if (!plain || !gcm)
        return 1;
    printf("ping + 6 ALIVE (metadata %zu B each), %ld iterations\n", meta_len, iters);
    run("plain", plain, iters);
    run("aes-gcm", gcm, iters);
    /* The last key of the ring: opening tries the first key, fails, then the second. */
    gsp_keyring_t second = ring;
    memcpy(second.keys[0], ring.keys[1], GSP_KEY_LEN);
    second.n = 1;
    gsp_sealer_t *rotated = gsp_sealer_new(&second, "bench-cluster");
    static uint8_t pkt[GSP_UDP_MAX], scratch[GSP_UDP_MAX];
    size_t len = encode_seal(rotated, pkt, sizeof(pkt), 1);
    double t0 = now_ns();
    for (long i = 0; i < iters; i++)
        open_decode(gcm, pkt, len, scratch, sizeof(scratch));
    printf("aes-gcm, 2nd key of ring: open+decode %7.0f ns/op\n", (now_ns() - t0) / (double)iters);
    gsp_sealer_delete(plain);
    gsp_sealer_delete(gcm);
    gsp_sealer_delete(rotated);
    gsp_keyring_clear(&ring);
    gsp_keyring_clear(&second);
    return 0;
}
