/*
 * tests/unit/transport/test_grpc.c: the gRPC deframer across DATA-frame splits, grpc-timeout
 * parse/format, grpc-message percent coding and status names.
 */
#include "transport/grpc_frame.h"
#include "transport/grpc_status.h"
#include "transport/grpc_timeout.h"
#include "tests/check.h"

#include <stdint.h>
#include <string.h>

typedef struct {
    size_t count;
    size_t lens[64];
    uint64_t sums[64];
} collected_t;

static uint64_t sum_bytes(const uint8_t *p, size_t n)
{
    uint64_t s = 0;
    for (size_t i = 0; i < n; i++)
        s = s * 31 + p[i];
    return s;
}

static int on_msg(void *arg, int compressed, const uint8_t *msg, size_t len)
{
    collected_t *c = arg;
    CHECK(compressed == 0);
    CHECK(c->count < 64);
    c->lens[c->count] = len;
    c->sums[c->count] = sum_bytes(msg, len);
    c->count++;
    return 0;
}

/* Builds a stream of messages of the given sizes; bytes are a position pattern. */
static uint8_t *build(const size_t *sizes, size_t n, size_t *total)
{
    size_t t = 0;
    for (size_t i = 0; i < n; i++)
        t += MESH_GRPC_PREFIX_LEN + sizes[i];
    uint8_t *buf = malloc(t ? t : 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        mesh_grpc_frame_prefix(buf + o, 0, (uint32_t)sizes[i]);
        o += MESH_GRPC_PREFIX_LEN;
        for (size_t j = 0; j < sizes[i]; j++)
            buf[o + j] = (uint8_t)(j * 7 + i);
        o += sizes[i];
    }
    *total = t;
    return buf;
}

static void feed_split(const uint8_t *buf, size_t total, size_t step, collected_t *c)
{
    mesh_grpc_deframer_t d;
    mesh_grpc_deframer_init(&d, 8u << 20, on_msg, c);
    for (size_t o = 0; o < total; o += step) {
        size_t n = total - o < step ? total - o : step;
        CHECK(mesh_grpc_deframer_feed(&d, buf + o, n) == 0);
    }
    CHECK(mesh_grpc_deframer_idle(&d));
    mesh_grpc_deframer_destroy(&d);
}

static void test_deframer_splits(void)
{
    size_t sizes[] = {0, 1, 5, 0, 300, 17000, 0, 2};
    size_t n = sizeof(sizes) / sizeof(sizes[0]);
    size_t total;
    uint8_t *buf = build(sizes, n, &total);
    collected_t ref = {0};
    feed_split(buf, total, total, &ref);
    CHECK(ref.count == n);
    size_t steps[] = {1, 2, 3, 5, 7, 16384, 16385};
    for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
        collected_t c = {0};
        feed_split(buf, total, steps[s], &c);
        CHECK(c.count == n);
        for (size_t i = 0; i < n; i++) {
            CHECK(c.lens[i] == sizes[i]);
            CHECK(c.sums[i] == ref.sums[i]);
        }
    }
    free(buf);
}

static void test_deframer_4mib(void)
{
    size_t sizes[] = {4u << 20, 3, 4u << 20};
    size_t total;
    uint8_t *buf = build(sizes, 3, &total);
    collected_t whole = {0}, split = {0};
    feed_split(buf, total, total, &whole);
    feed_split(buf, total, 16384, &split);
    CHECK(whole.count == 3 && split.count == 3);
    for (int i = 0; i < 3; i++) {
        CHECK(split.lens[i] == sizes[i]);
        CHECK(split.sums[i] == whole.sums[i]);
    }
    free(buf);
}

static void test_deframer_errors(void)
{
    collected_t c = {0};
    mesh_grpc_deframer_t d;
    mesh_grpc_deframer_init(&d, 100, on_msg, &c);
    uint8_t big[5];
    mesh_grpc_frame_prefix(big, 0, 101);
    CHECK(mesh_grpc_deframer_feed(&d, big, 5) == -1);
    mesh_grpc_deframer_destroy(&d);

    mesh_grpc_deframer_init(&d, 100, on_msg, &c);
    uint8_t bad[5] = {2, 0, 0, 0, 0};
    CHECK(mesh_grpc_deframer_feed(&d, bad, 5) == -1);
    mesh_grpc_deframer_destroy(&d);

    mesh_grpc_deframer_init(&d, 100, on_msg, &c);
    uint8_t partial[3] = {0, 0, 0};
    CHECK(mesh_grpc_deframer_feed(&d, partial, 3) == 0);
    CHECK(!mesh_grpc_deframer_idle(&d));
    mesh_grpc_deframer_destroy(&d);
}

static void check_timeout(const char *s, int ok, uint64_t ns)
{
    uint64_t got = 0;
    int rv = mesh_grpc_timeout_parse(s, strlen(s), &got);
    CHECK((rv == 0) == ok);
    if (ok)
        CHECK(got == ns);
}

static void test_timeout(void)
{
    check_timeout("1S", 1, 1000000000ull);
    check_timeout("100m", 1, 100000000ull);
    check_timeout("5u", 1, 5000ull);
    check_timeout("7n", 1, 7ull);
    check_timeout("2M", 1, 120000000000ull);
    check_timeout("1H", 1, 3600000000000ull);
    check_timeout("99999999S", 1, 99999999000000000ull);
    check_timeout("99999999H", 1, UINT64_MAX);
    check_timeout("123456789S", 0, 0);
    check_timeout("S", 0, 0);
    check_timeout("10", 0, 0);
    check_timeout("1x", 0, 0);
    check_timeout("-1S", 0, 0);
    check_timeout("", 0, 0);

    char out[MESH_GRPC_TIMEOUT_MAX_LEN];
    CHECK(mesh_grpc_timeout_format(1500, out) == 5 && strcmp(out, "1500n") == 0);
    mesh_grpc_timeout_format(1000000000ull, out);
    CHECK(strcmp(out, "1000000u") == 0);
    mesh_grpc_timeout_format(99999999ull, out);
    CHECK(strcmp(out, "99999999n") == 0);
    mesh_grpc_timeout_format(100000001ull, out); /* rounds up */
    CHECK(strcmp(out, "100001u") == 0);
    mesh_grpc_timeout_format(0, out);
    CHECK(strcmp(out, "0n") == 0);
    mesh_grpc_timeout_format(UINT64_MAX, out);
    uint64_t back;
    CHECK(mesh_grpc_timeout_parse(out, strlen(out), &back) == 0 && back >= UINT64_MAX / 2);
    /* Round trip never shortens a deadline. */
    for (uint64_t ns = 1; ns < (1ull << 60); ns = ns * 3 + 1) {
        size_t l = mesh_grpc_timeout_format(ns, out);
        CHECK(mesh_grpc_timeout_parse(out, l, &back) == 0);
        CHECK(back >= ns);
    }
}

static void test_message_coding(void)
{
    char enc[64], dec[64];
    const char *msg = "meshd: 100% \xe2\x9c\x93\n";
    long n = mesh_grpc_message_encode(msg, strlen(msg), enc, sizeof(enc));
    CHECK(n > 0 && strcmp(enc, "meshd: 100%25 %E2%9C%93%0A") == 0);
    CHECK(mesh_grpc_message_decode(enc, (size_t)n, dec, sizeof(dec)) == (long)strlen(msg));
    CHECK(strcmp(dec, msg) == 0);
    /* Malformed sequences are kept verbatim. */
    CHECK(mesh_grpc_message_decode("a%zzb%4", 7, dec, sizeof(dec)) == 7);
    CHECK(strcmp(dec, "a%zzb%4") == 0);
    CHECK(mesh_grpc_message_encode("abcdef", 6, enc, 4) == -1);
    CHECK(strcmp(enc, "abc") == 0);
}

static void test_status(void)
{
    CHECK(strcmp(mesh_grpc_status_name(4), "DEADLINE_EXCEEDED") == 0);
    CHECK(strcmp(mesh_grpc_status_name(16), "UNAUTHENTICATED") == 0);
    CHECK(strcmp(mesh_grpc_status_name(17), "UNKNOWN_STATUS") == 0);
    CHECK(mesh_grpc_status_from_name("UNAVAILABLE") == 14);
    CHECK(mesh_grpc_status_parse("14", 2) == 14);
    CHECK(mesh_grpc_status_parse("1a", 2) == -1);
    CHECK(mesh_grpc_status_from_h2_error(0x8) == MESH_GRPC_CANCELLED);
    CHECK(mesh_grpc_status_from_h2_error(0x7) == MESH_GRPC_UNAVAILABLE);
    CHECK(mesh_grpc_status_from_http(503) == MESH_GRPC_UNAVAILABLE);
    CHECK(mesh_grpc_status_from_http(404) == MESH_GRPC_UNIMPLEMENTED);
}

int main(void)
{
    RUN(test_deframer_splits);
    RUN(test_deframer_4mib);
    RUN(test_deframer_errors);
    RUN(test_timeout);
    RUN(test_message_coding);
    RUN(test_status);
    fprintf(stderr, "ok\n");
    return 0;
}
