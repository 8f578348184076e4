/*
 * tests/unit/gossip/test_evicted.c: "marked failed in gossip": a monitor's node attributes in
 * its metadata (gossip/meta.h: role and evicted list) round trip, the bare array stays the
 * format of nodes without attributes, bad attributes are refused whole, and the set a routing
 * node builds from them (gossip/evicted.h) keeps exactly the instances live monitors list out
 * of its gossip routes, never those a node of another role lists.
 */
#include <msgpack.h>
#include <string.h>

#include "gossip/evicted.h"
#include "gossip/meta.h"
#include "tests/check.h"

static gsp_str_t S(const char *s)
{
    return (gsp_str_t){s, (uint32_t)strlen(s)};
}

static gsp_inst_t out[GSP_INST_MAX];
static gsp_node_attrs_t attrs, got;
static uint8_t buf[GSP_META_MAX];

static void inst(gsp_inst_t *in, const char *svc, const char *addr)
{
    memset(in, 0, sizeof(*in));
    in->service = S(svc);
    in->addr = S(addr);
    in->weight = 1;
}

static int eq(gsp_str_t a, const char *b)
{
    return a.n == strlen(b) && (a.n == 0 || memcmp(a.p, b, a.n) == 0);
}

static void test_attrs_round_trip(void)
{
    gsp_inst_t in[2];
    inst(&in[0], "echo.Echo", "127.0.0.1:5001");
    inst(&in[1], "kv.Store", "127.0.0.1:5002");
    /* No attributes: the bare array, as every node without them always sent. */
    int bare = gsp_meta_encode_node(in, 2, NULL, buf, sizeof(buf));
    CHECK(bare > 0 && (buf[0] & 0xf0) == 0x90);
    memset(&attrs, 0, sizeof(attrs));
    CHECK_EQ(gsp_meta_encode_node(in, 2, &attrs, buf, sizeof(buf)), bare);
    /* A monitor's role and evicted list: the map form, read back by both decoders. */
    attrs.role = S(GSP_ROLE_MONITOR);
    attrs.n_evicted = 2;
    attrs.evicted[0] = (gsp_evicted_t){S("echo.Echo"), S("127.0.0.1:6001")};
    attrs.evicted[1] = (gsp_evicted_t){S("kv.Store"), S("[fd00::1]:6002")};
    int len = gsp_meta_encode_node(in, 2, &attrs, buf, sizeof(buf));
    CHECK(len > bare && (buf[0] & 0xf0) == 0x80);
    size_t n;
    CHECK_EQ(gsp_meta_decode_node(buf, (size_t)len, out, GSP_INST_MAX, &n, &got), 0);
    CHECK_EQ(n, 2);
    CHECK(eq(out[1].service, "kv.Store") && eq(out[1].addr, "127.0.0.1:5002"));
    CHECK(eq(got.role, GSP_ROLE_MONITOR));
    CHECK_EQ(got.n_evicted, 2);
    CHECK(eq(got.evicted[1].service, "kv.Store") && eq(got.evicted[1].addr, "[fd00::1]:6002"));
    CHECK_EQ(gsp_meta_decode(buf, (size_t)len, out, GSP_INST_MAX, &n), 0);
    CHECK_EQ(n, 2);
    /* The bare array decodes with empty attributes. */
    gsp_meta_encode(in, 2, buf, sizeof(buf));
    got.role = S("x");
    CHECK_EQ(gsp_meta_decode_node(buf, (size_t)bare, out, GSP_INST_MAX, &n, &got), 0);
    CHECK(got.role.n == 0 && got.n_evicted == 0);
    /* A monitor owns no instances: an empty "i" with a role alone. */
    attrs.n_evicted = 0;
    len = gsp_meta_encode_node(NULL, 0, &attrs, buf, sizeof(buf));
    CHECK(len > 0);
    CHECK_EQ(gsp_meta_decode_node(buf, (size_t)len, out, GSP_INST_MAX, &n, &got), 0);
    CHECK(n == 0 && eq(got.role, GSP_ROLE_MONITOR) && got.n_evicted == 0);
}

/* Packs a map form by hand: unknown keys are skipped, broken attributes refuse it whole. */
static size_t pack_map(int variant)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, variant == 2 ? 2 : 3);
    msgpack_pack_str_with_body(&pk, "future", 6);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_int(&pk, 7);
    if (variant != 2) {
        msgpack_pack_str_with_body(&pk, "i", 1);
        msgpack_pack_array(&pk, 0);
    }
    msgpack_pack_str_with_body(&pk, "evicted", 7);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_array(&pk, variant == 1 ? 1 : 3); /* variant 1: no address */
    msgpack_pack_str_with_body(&pk, "echo.Echo", 9);
    if (variant != 1) {
        msgpack_pack_str_with_body(&pk, "127.0.0.1:1", 11);
        msgpack_pack_int(&pk, 1); /* a field of a newer version */
    }
    size_t len = sb.size;
    memcpy(buf, sb.data, len);
    msgpack_sbuffer_destroy(&sb);
    return len;
}

static void test_attrs_bad(void)
{
    size_t n, len = pack_map(0);
    CHECK_EQ(gsp_meta_decode_node(buf, len, out, GSP_INST_MAX, &n, &got), 0);
    CHECK(got.n_evicted == 1 && eq(got.evicted[0].addr, "127.0.0.1:1") && got.role.n == 0);
    for (size_t cut = 0; cut < len; cut++)
        CHECK_EQ(gsp_meta_decode_node(buf, cut, out, GSP_INST_MAX, &n, &got), -1);
    CHECK_EQ(gsp_meta_decode_node(buf, pack_map(1), out, GSP_INST_MAX, &n, &got), -1);
    CHECK(got.n_evicted == 0);
    CHECK_EQ(gsp_meta_decode_node(buf, pack_map(2), out, GSP_INST_MAX, &n, &got), -1); /* no "i" */
    /* Encoding refuses attributes that break the format. */
    memset(&attrs, 0, sizeof(attrs));
    attrs.role = S(GSP_ROLE_MONITOR);
    attrs.n_evicted = 1;
    attrs.evicted[0] = (gsp_evicted_t){S("echo.Echo"), S("")};
    CHECK_EQ(gsp_meta_encode_node(NULL, 0, &attrs, buf, sizeof(buf)), -1);
    attrs.n_evicted = GSP_EVICTED_MAX + 1;
    CHECK_EQ(gsp_meta_encode_node(NULL, 0, &attrs, buf, sizeof(buf)), -1);
    /* The most evicted instances there may be, with service names of a usual length, fit the
     * metadata bound; with the longest names they do not, and encoding says so (-1). */
    static char addrs[GSP_EVICTED_MAX][GSP_ADDR_MAX + 1];
    static char svc[GSP_FIELD_MAX + 1];
    memset(svc, 's', GSP_FIELD_MAX);
    attrs.n_evicted = GSP_EVICTED_MAX;
    for (int i = 0; i < GSP_EVICTED_MAX; i++) {
        snprintf(addrs[i], sizeof(addrs[i]), "[fd00::%x]:%d", i, 10000 + i);
        attrs.evicted[i] = (gsp_evicted_t){S(svc), S(addrs[i])};
    }
    CHECK_EQ(gsp_meta_encode_node(NULL, 0, &attrs, buf, sizeof(buf)), -1);
    for (int i = 0; i < GSP_EVICTED_MAX; i++)
        attrs.evicted[i].service.n = 100;
    int len2 = gsp_meta_encode_node(NULL, 0, &attrs, buf, sizeof(buf));
    CHECK(len2 > 0);
    CHECK_EQ(gsp_meta_decode_node(buf, (size_t)len2, out, GSP_INST_MAX, &n, &got), 0);
    CHECK_EQ(got.n_evicted, GSP_EVICTED_MAX);
}

static void test_set(void)
{
    gsp_evicted_set_t s;
    gsp_evicted_set_init(&s);
    CHECK(!gsp_evicted_set_has(&s, "echo.Echo", "127.0.0.1:1"));
    /* A sidecar (no role) cannot mark anything failed; a monitor can. */
    memset(&attrs, 0, sizeof(attrs));
    attrs.n_evicted = 1;
    attrs.evicted[0] = (gsp_evicted_t){S("echo.Echo"), S("127.0.0.1:1")};
    CHECK_EQ(gsp_evicted_set_add_attrs(&s, &attrs), 0);
    CHECK(!gsp_evicted_set_has(&s, "echo.Echo", "127.0.0.1:1"));
    attrs.role = S("sidecar");
    CHECK_EQ(gsp_evicted_set_add_attrs(&s, &attrs), 0);
    CHECK(!gsp_evicted_set_has(&s, "echo.Echo", "127.0.0.1:1"));
    attrs.role = S(GSP_ROLE_MONITOR);
    CHECK_EQ(gsp_evicted_set_add_attrs(&s, &attrs), 0);
    CHECK(gsp_evicted_set_has(&s, "echo.Echo", "127.0.0.1:1"));
    /* Exactly the pair: not the same address of another service, not another address. */
    CHECK(!gsp_evicted_set_has(&s, "kv.Store", "127.0.0.1:1"));
    CHECK(!gsp_evicted_set_has(&s, "echo.Echo", "127.0.0.1:10"));
    CHECK(!gsp_evicted_set_has(&s, "echo.Echo\n127.0.0.1", "1"));
    /* Two monitors' lists make a union; adds after a lookup are found too. */
    for (int i = 0; i < 100; i++) {
        char a[32];
        snprintf(a, sizeof(a), "10.0.0.%d:80", i);
        CHECK_EQ(gsp_evicted_set_add(&s, S("kv.Store"), S(a)), 0);
        CHECK(gsp_evicted_set_has(&s, "kv.Store", a));
    }
    CHECK(gsp_evicted_set_has(&s, "echo.Echo", "127.0.0.1:1"));
    CHECK(!gsp_evicted_set_has(&s, "kv.Store", "10.0.0.100:80"));
    gsp_evicted_set_destroy(&s);
}

int main(void)
{
    RUN(test_attrs_round_trip);
    RUN(test_attrs_bad);
    RUN(test_set);
    printf("ok\n");
    return 0;
}
