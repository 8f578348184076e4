/*
 * tests/unit/gossip/test_meta.c: a node's metadata (gossip/meta.h): round trip, limits,
 * truncation, fields of a newer version, and the method set hash (order and duplicates do
 * not matter, the empty set is not "not listed").
 */
#include <msgpack.h>
#include <string.h>

#include "gossip/meta.h"
#include "tests/check.h"

static gsp_str_t S(const char *s)
{
    return (gsp_str_t){s, (uint32_t)strlen(s)};
}

static gsp_inst_t out[GSP_INST_MAX];

static void fill(gsp_inst_t *in, int i)
{
    memset(in, 0, sizeof(*in));
    in->service = S(i % 2 ? "echo.Echo" : "kv.Store");
    in->addr = S(i % 2 ? "10.0.0.1:5001" : "[fd00::1]:5002");
    in->node = S("node-1");
    in->zone = S(i % 2 ? "eu-1a" : "");
    in->version = S("v2");
    in->weight = (uint32_t)(i * 100);
    in->methods = i % 3 ? 0 : 0x1234567890abcdefULL;
    in->n_labels = (uint32_t)(i % 3);
    for (uint32_t k = 0; k < in->n_labels; k++) {
        in->labels[k].key = S(k ? "tier" : "team");
        in->labels[k].value = S(k ? "" : "storage");
    }
}

static int eq(gsp_str_t a, gsp_str_t b)
{
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

static void test_round_trip(void)
{
    static gsp_inst_t in[GSP_INST_MAX];
    static uint8_t buf[GSP_META_MAX];
    for (int i = 0; i < 5; i++)
        fill(&in[i], i);
    in[3].mesh_tls = 1; /* a mesh TLS port: the 9th field */
    int len = gsp_meta_encode(in, 5, buf, sizeof(buf));
    CHECK(len > 0);
    size_t n;
    CHECK_EQ(gsp_meta_decode(buf, (size_t)len, out, GSP_INST_MAX, &n), 0);
    CHECK_EQ(n, 5);
    for (int i = 0; i < 5; i++) {
        CHECK(eq(out[i].service, in[i].service) && eq(out[i].addr, in[i].addr));
        CHECK(eq(out[i].node, in[i].node) && eq(out[i].zone, in[i].zone));
        CHECK(eq(out[i].version, in[i].version));
        CHECK_EQ(out[i].weight, in[i].weight);
        CHECK(out[i].methods == in[i].methods);
        CHECK_EQ(out[i].mesh_tls, i == 3);
        CHECK_EQ(out[i].n_labels, in[i].n_labels);
        for (uint32_t k = 0; k < in[i].n_labels; k++)
            CHECK(eq(out[i].labels[k].key, in[i].labels[k].key) &&
                  eq(out[i].labels[k].value, in[i].labels[k].value));
    }
    /* Too small an out array, or a buffer too small. */
    CHECK_EQ(gsp_meta_decode(buf, (size_t)len, out, 4, &n), -1);
    CHECK_EQ(gsp_meta_encode(in, 5, buf, (size_t)len - 1), -1);
    /* Every truncation is refused; so are trailing bytes. */
    for (int cut = 0; cut < len; cut++) {
        uint8_t *copy = malloc(cut ? (size_t)cut : 1);
        memcpy(copy, buf, (size_t)cut);
        CHECK_EQ(gsp_meta_decode(copy, (size_t)cut, out, GSP_INST_MAX, &n), -1);
        free(copy);
    }
    buf[len] = 0xc0;
    CHECK_EQ(gsp_meta_decode(buf, (size_t)len + 1, out, GSP_INST_MAX, &n), -1);
    /* No instances. */
    len = gsp_meta_encode(NULL, 0, buf, sizeof(buf));
    CHECK_EQ(len, 1);
    CHECK_EQ(gsp_meta_decode(buf, 1, out, GSP_INST_MAX, &n), 0);
    CHECK_EQ(n, 0);

    /* GSP_INST_MAX instances with a few labels each fit in GSP_META_MAX; metadata over
     * GSP_META_MAX is refused even when the buffer is bigger. */
    for (int i = 0; i < GSP_INST_MAX; i++) {
        fill(&in[i], i);
        in[i].n_labels = 2;
        for (int k = 0; k < 2; k++)
            in[i].labels[k] = (gsp_label_t){S("some-label-key"), S("some label value")};
    }
    len = gsp_meta_encode(in, GSP_INST_MAX, buf, sizeof(buf));
    CHECK(len > 0);
    CHECK_EQ(gsp_meta_decode(buf, (size_t)len, out, GSP_INST_MAX, &n), 0);
    CHECK_EQ(n, GSP_INST_MAX);
    CHECK(eq(out[GSP_INST_MAX - 1].labels[1].value, S("some label value")));
    static uint8_t huge[2 * GSP_META_MAX];
    for (int i = 0; i < GSP_INST_MAX; i++) {
        in[i].n_labels = GSP_LABEL_MAX;
        for (int k = 0; k < GSP_LABEL_MAX; k++)
            in[i].labels[k] = (gsp_label_t){S("some-label-key"), S("some label value")};
    }
    CHECK_EQ(gsp_meta_encode(in, GSP_INST_MAX, huge, sizeof(huge)), -1);
}

/* An instance without tls encodes as before (8 fields: a node of the version before reads it
 * and signatures over it do not change); with it, 9. */
static void test_tls_field(void)
{
    static gsp_inst_t in[1];
    static uint8_t a[GSP_META_MAX], b[GSP_META_MAX];
    fill(&in[0], 0);
    int la = gsp_meta_encode(in, 1, a, sizeof(a));
    in[0].mesh_tls = 1;
    int lb = gsp_meta_encode(in, 1, b, sizeof(b));
    CHECK(la > 0 && lb == la + 1);
    CHECK_EQ(a[1], 0x98); /* fixarray of 8 */
    CHECK_EQ(b[1], 0x99); /* of 9 */
    size_t n;
    CHECK_EQ(gsp_meta_decode(a, (size_t)la, out, GSP_INST_MAX, &n), 0);
    CHECK(n == 1 && !out[0].mesh_tls);
    CHECK_EQ(gsp_meta_decode(b, (size_t)lb, out, GSP_INST_MAX, &n), 0);
    CHECK(n == 1 && out[0].mesh_tls);
}

static void test_limits(void)
{
    static gsp_inst_t in[GSP_INST_MAX + 1];
    static uint8_t buf[GSP_META_MAX];
    static char big[GSP_FIELD_MAX + 2];
    memset(big, 's', sizeof(big));
    for (int i = 0; i <= GSP_INST_MAX; i++)
        fill(&in[i], 1);
    CHECK_EQ(gsp_meta_encode(in, GSP_INST_MAX + 1, buf, sizeof(buf)), -1);
    gsp_inst_t bad = in[0];
    bad.service = (gsp_str_t){big, GSP_FIELD_MAX + 1};
    CHECK_EQ(gsp_meta_encode(&bad, 1, buf, sizeof(buf)), -1);
    bad.service = (gsp_str_t){big, GSP_FIELD_MAX};
    CHECK(gsp_meta_encode(&bad, 1, buf, sizeof(buf)) > 0);
    bad = in[0];
    bad.service = S("");
    CHECK_EQ(gsp_meta_encode(&bad, 1, buf, sizeof(buf)), -1);
    bad = in[0];
    bad.weight = GSP_WEIGHT_MAX + 1;
    CHECK_EQ(gsp_meta_encode(&bad, 1, buf, sizeof(buf)), -1);
    bad = in[0];
    bad.n_labels = GSP_LABEL_MAX + 1;
    CHECK_EQ(gsp_meta_encode(&bad, 1, buf, sizeof(buf)), -1);
    bad = in[0];
    bad.zone = (gsp_str_t){"a\0b", 3};
    CHECK_EQ(gsp_meta_encode(&bad, 1, buf, sizeof(buf)), -1);

    /* By hand: a newer node's extra fields are ignored; over-limit values are refused. */
    size_t n;
    for (int variant = 0; variant < 4; variant++) {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, 1);
        msgpack_pack_array(&pk, 10);
        msgpack_pack_str_with_body(&pk, "svc", 3);
        msgpack_pack_str_with_body(&pk, "h:1", 3);
        msgpack_pack_str_with_body(&pk, "", 0);
        msgpack_pack_str_with_body(&pk, "", 0);
        msgpack_pack_str_with_body(&pk, "", 0);
        msgpack_pack_uint32(&pk, variant == 1 ? GSP_WEIGHT_MAX + 1 : 1);
        msgpack_pack_uint64(&pk, 0);
        msgpack_pack_map(&pk, variant == 2 ? GSP_LABEL_MAX + 1 : 1);
        for (int k = 0; k < (variant == 2 ? GSP_LABEL_MAX + 1 : 1); k++) {
            msgpack_pack_str_with_body(&pk, "k", 1);
            if (variant == 3)
                msgpack_pack_uint8(&pk, 1); /* a label value that is not a string */
            else
                msgpack_pack_str_with_body(&pk, "v", 1);
        }
        msgpack_pack_map(&pk, 1);
        msgpack_pack_str_with_body(&pk, "future", 6);
        msgpack_pack_array(&pk, 1);
        msgpack_pack_nil(&pk);
        msgpack_pack_double(&pk, 2.5);
        int rc = gsp_meta_decode(sb.data, sb.size, out, GSP_INST_MAX, &n);
        CHECK_EQ(rc, variant == 0 ? 0 : -1);
        if (variant == 0) {
            CHECK_EQ(n, 1);
            CHECK(eq(out[0].service, S("svc")) && out[0].n_labels == 1);
        }
        msgpack_sbuffer_destroy(&sb);
    }
}

static void test_set_hash(void)
{
    const char *a[] = {"Get", "Put", "Watch"};
    const char *b[] = {"Watch", "Get", "Put", "Get", "Watch"};
    const char *c[] = {"Get", "Put"};
    const char *d[] = {"GetPut"};
    const char *e[] = {"Ge", "tPut"};
    uint64_t ha = gsp_meta_set_hash(a, 3);
    CHECK(ha != 0);
    CHECK(ha == gsp_meta_set_hash(b, 5));
    CHECK(ha != gsp_meta_set_hash(c, 2));
    CHECK(gsp_meta_set_hash(d, 1) != gsp_meta_set_hash(e, 2)); /* lengths are hashed */
    /* The empty set is listed: non-zero, and not the hash of any one-name set. */
    uint64_t h0 = gsp_meta_set_hash(NULL, 0);
    CHECK(h0 != 0);
    CHECK(h0 == GSP_SET_HASH_EMPTY);
    const char *empty_name[] = {""};
    CHECK(h0 != gsp_meta_set_hash(empty_name, 1));
    /* Borrowed strings hash the same. */
    gsp_str_t s[] = {S("Put"), S("Watch"), S("Get")};
    CHECK(ha == gsp_meta_set_hash_strs(s, 3));
    /* A set bigger than travels is still hashed (with a heap scratch). */
    static const char *many[GSP_SET_MAX + 10];
    static char names[GSP_SET_MAX + 10][8];
    for (int i = 0; i < GSP_SET_MAX + 10; i++) {
        snprintf(names[i], sizeof(names[i]), "m%d", i);
        many[i] = names[i];
    }
    uint64_t hm = gsp_meta_set_hash(many, GSP_SET_MAX + 10);
    CHECK(hm != 0 && hm != gsp_meta_set_hash(many, GSP_SET_MAX));
    /* Shuffled, with duplicates: the same hash. */
    static const char *shuffled[2 * GSP_SET_MAX];
    uint64_t h500 = gsp_meta_set_hash(many, 500);
    for (int round = 0; round < 20; round++) {
        unsigned seed = (unsigned)round * 2654435761u + 1;
        for (int i = 0; i < 1000; i++) {
            seed = seed * 1103515245u + 12345u;
            shuffled[i] = many[i < 500 ? (unsigned)i : (seed >> 8) % 500];
        }
        for (int i = 999; i > 0; i--) {
            seed = seed * 1103515245u + 12345u;
            int j = (int)((seed >> 8) % (unsigned)(i + 1));
            const char *t = shuffled[i];
            shuffled[i] = shuffled[j];
            shuffled[j] = t;
        }
        CHECK(gsp_meta_set_hash(shuffled, 1000) == h500);
    }
}

int main(void)
{
    RUN(test_round_trip);
    RUN(test_tls_field);
    RUN(test_limits);
    RUN(test_set_hash);
    printf("ok\n");
    return 0;
}
