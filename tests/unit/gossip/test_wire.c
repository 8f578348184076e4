/*
 * tests/unit/gossip/test_wire.c: the gossip messages' encoding and decoding (gossip/wire.h):
 * a round trip of every message type, relaying raw messages, the limits (long names, big
 * sets, too many messages), truncation at every byte, unknown types and trailing fields, and
 * a full 1400-byte compound that stays valid when a message is refused, and the cached STATE
 * head (gsp_enc_state_head) against gsp_enc_state.
 */
#include <msgpack.h>
#include <string.h>

#include "gossip/wire.h"
#include "tests/check.h"

static gsp_str_t S(const char *s)
{
    return (gsp_str_t){s, (uint32_t)strlen(s)};
}

static int str_is(gsp_str_t a, const char *b)
{
    return gsp_str_eq(a, b);
}

static gsp_decoder_t dec; /* big (scratch arrays): static */

/* Encodes one of every message type into buf; returns the compound's length. */
static size_t encode_all(uint8_t *buf, size_t cap)
{
    gsp_enc_t e;
    gsp_enc_init(&e, buf, cap);
    gsp_ping_t ping = {.seq = 7, .target = S("b"), .from = S("a"), .from_addr = S("10.0.0.1:7946")};
    CHECK_EQ(gsp_enc_ping(&e, &ping), 0);
    gsp_ping_req_t pr = {.seq = 0xfffffffe,
                         .target = S("c"),
                         .target_addr = S("10.0.0.3:7946"),
                         .want_nack = 1,
                         .from = S("a"),
                         .from_addr = S("10.0.0.1:7946")};
    CHECK_EQ(gsp_enc_ping_req(&e, &pr), 0);
    CHECK_EQ(gsp_enc_ack(&e, GSP_ACK, 7), 0);
    CHECK_EQ(gsp_enc_ack(&e, GSP_NACK, 8), 0);
    gsp_alive_t al = {.node = S("node-1"),
                      .addr = S("[::1]:7946"),
                      .incarnation = 3,
                      .meta_version = 0x123456789abcULL,
                      .meta = {"\x00\x01\x02", 3}};
    CHECK_EQ(gsp_enc_alive(&e, &al), 0);
    gsp_suspect_t su = {.node = S("node-2"), .incarnation = 9, .from = S("node-1")};
    CHECK_EQ(gsp_enc_suspect(&e, GSP_SUSPECT, &su), 0);
    su.incarnation = 10;
    CHECK_EQ(gsp_enc_suspect(&e, GSP_DEAD, &su), 0);
    gsp_member_state_t st = {.node = S("node-3"),
                             .addr = S("10.0.0.3:7946"),
                             .incarnation = 1,
                             .state = GSP_ST_LEFT,
                             .meta_version = UINT64_MAX,
                             .meta = {NULL, 0}};
    CHECK_EQ(gsp_enc_state(&e, &st), 0);
    gsp_push_pull_t pp = {.join = 1, .reply = 0, .n_states = 4096};
    CHECK_EQ(gsp_enc_push_pull(&e, &pp), 0);
    const char *names[] = {"Get", "Put", "Watch"};
    CHECK_EQ(gsp_enc_set(&e, 42, names, 3), 0);
    const char *nodes[] = {"node-2", "node-3"};
    uint64_t sets[] = {42, 1, UINT64_MAX};
    CHECK_EQ(gsp_enc_want(&e, nodes, 2, sets, 3), 0);
    CHECK_EQ(gsp_enc_want(&e, NULL, 0, NULL, 0), 0);
    CHECK_EQ(e.n, 12);
    return gsp_enc_finish(&e);
}

/* Checks that buf holds exactly what encode_all wrote; relays each message raw into out. */
static void check_all(const uint8_t *buf, size_t len, gsp_enc_t *out)
{
    gsp_msg_t m;
    const uint8_t *raw;
    size_t raw_len;
    CHECK_EQ(gsp_dec_init(&dec, buf, len), GSP_WIRE_OK);
#define NEXT(t)                                                                                    \
    do {                                                                                           \
        CHECK_EQ(gsp_dec_next(&dec, &m, &raw, &raw_len), GSP_WIRE_OK);                             \
        CHECK_EQ(m.type, t);                                                                       \
        if (out)                                                                                   \
            CHECK_EQ(gsp_enc_raw(out, raw, raw_len), 0);                                           \
    } while (0)
    NEXT(GSP_PING);
    CHECK_EQ(m.u.ping.seq, 7);
    CHECK(str_is(m.u.ping.target, "b") && str_is(m.u.ping.from, "a"));
    CHECK(str_is(m.u.ping.from_addr, "10.0.0.1:7946"));
    NEXT(GSP_PING_REQ);
    CHECK_EQ(m.u.ping_req.seq, 0xfffffffe);
    CHECK(str_is(m.u.ping_req.target, "c") && str_is(m.u.ping_req.target_addr, "10.0.0.3:7946"));
    CHECK_EQ(m.u.ping_req.want_nack, 1);
    CHECK(str_is(m.u.ping_req.from, "a") && str_is(m.u.ping_req.from_addr, "10.0.0.1:7946"));
    NEXT(GSP_ACK);
    CHECK_EQ(m.u.ack.seq, 7);
    NEXT(GSP_NACK);
    CHECK_EQ(m.u.ack.seq, 8);
    NEXT(GSP_ALIVE);
    CHECK(str_is(m.u.alive.node, "node-1") && str_is(m.u.alive.addr, "[::1]:7946"));
    CHECK_EQ(m.u.alive.incarnation, 3);
    CHECK(m.u.alive.meta_version == 0x123456789abcULL);
    CHECK(m.u.alive.meta.n == 3 && memcmp(m.u.alive.meta.p, "\x00\x01\x02", 3) == 0);
    /* Borrowed from the input. */
    CHECK((const uint8_t *)m.u.alive.node.p > buf && (const uint8_t *)m.u.alive.node.p < buf + len);
    NEXT(GSP_SUSPECT);
    CHECK(str_is(m.u.suspect.node, "node-2") && str_is(m.u.suspect.from, "node-1"));
    CHECK_EQ(m.u.suspect.incarnation, 9);
    NEXT(GSP_DEAD);
    CHECK_EQ(m.u.suspect.incarnation, 10);
    NEXT(GSP_STATE);
    CHECK(str_is(m.u.state.node, "node-3") && str_is(m.u.state.addr, "10.0.0.3:7946"));
    CHECK_EQ(m.u.state.incarnation, 1);
    CHECK_EQ(m.u.state.state, GSP_ST_LEFT);
    CHECK(m.u.state.meta_version == UINT64_MAX);
    CHECK_EQ(m.u.state.meta.n, 0);
    NEXT(GSP_PUSH_PULL);
    CHECK(m.u.push_pull.join == 1 && m.u.push_pull.reply == 0 && m.u.push_pull.n_states == 4096);
    NEXT(GSP_SET);
    CHECK_EQ(m.u.set.hash, 42);
    CHECK_EQ(m.u.set.n, 3);
    CHECK(str_is(m.u.set.names[0], "Get") && str_is(m.u.set.names[2], "Watch"));
    NEXT(GSP_WANT);
    CHECK_EQ(m.u.want.n_nodes, 2);
    CHECK(str_is(m.u.want.nodes[0], "node-2") && str_is(m.u.want.nodes[1], "node-3"));
    CHECK_EQ(m.u.want.n_sets, 3);
    CHECK(m.u.want.sets[0] == 42 && m.u.want.sets[1] == 1 && m.u.want.sets[2] == UINT64_MAX);
    NEXT(GSP_WANT);
    CHECK(m.u.want.n_nodes == 0 && m.u.want.n_sets == 0);
#undef NEXT
    CHECK_EQ(gsp_dec_next(&dec, &m, NULL, NULL), GSP_WIRE_END);
    CHECK_EQ(gsp_dec_next(&dec, &m, NULL, NULL), GSP_WIRE_END);
}

static void test_round_trip(void)
{
    static uint8_t buf[4096], relay[4096];
    size_t len = encode_all(buf, sizeof(buf));
    gsp_enc_t out;
    gsp_enc_init(&out, relay, sizeof(relay));
    check_all(buf, len, &out);
    size_t rlen = gsp_enc_finish(&out);
    /* Relaying every message raw gives the same bytes. */
    CHECK_EQ(rlen, len);
    CHECK(memcmp(buf, relay, len) == 0);
    check_all(relay, rlen, NULL);
    /* An empty compound. */
    gsp_enc_t e;
    gsp_enc_init(&e, buf, sizeof(buf));
    CHECK_EQ(gsp_enc_finish(&e), 3);
    gsp_msg_t m;
    CHECK_EQ(gsp_dec_init(&dec, buf, 3), GSP_WIRE_OK);
    CHECK_EQ(gsp_dec_next(&dec, &m, NULL, NULL), GSP_WIRE_END);
    /* A buffer too small for the header refuses everything. */
    gsp_enc_init(&e, buf, 2);
    CHECK_EQ(gsp_enc_ack(&e, GSP_ACK, 1), -1);
}

/* Every prefix of a valid compound decodes to EBAD or END without reading past it (ASan). */
static void test_truncation(void)
{
    static uint8_t buf[4096];
    size_t len = encode_all(buf, sizeof(buf));
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1);
        memcpy(copy, buf, cut);
        gsp_msg_t m;
        int rc = gsp_dec_init(&dec, copy, cut);
        int n = 0;
        while (rc == GSP_WIRE_OK || rc == GSP_WIRE_SKIP) {
            rc = gsp_dec_next(&dec, &m, NULL, NULL);
            n++;
        }
        CHECK(rc == GSP_WIRE_EBAD || rc == GSP_WIRE_END);
        CHECK(n <= 12);
        /* The header promises 12 messages: a cut compound is never read as complete. */
        CHECK_EQ(rc, GSP_WIRE_EBAD);
        free(copy);
    }
    /* Bytes after the compound make it malformed at its end. */
    buf[len] = 0xc0;
    gsp_msg_t m;
    CHECK_EQ(gsp_dec_init(&dec, buf, len + 1), GSP_WIRE_OK);
    int rc;
    while ((rc = gsp_dec_next(&dec, &m, NULL, NULL)) == GSP_WIRE_OK)
        ;
    CHECK_EQ(rc, GSP_WIRE_EBAD);
    CHECK_EQ(gsp_dec_next(&dec, &m, NULL, NULL), GSP_WIRE_EBAD); /* sticky */
}

/* A compound built by hand with msgpack-c: count messages, each packed by a callback. */
typedef struct {
    msgpack_sbuffer sb;
    msgpack_packer pk;
} hand_t;

static void hand_init(hand_t *h, uint32_t n)
{
    msgpack_sbuffer_init(&h->sb);
    msgpack_packer_init(&h->pk, &h->sb, msgpack_sbuffer_write);
    msgpack_pack_array(&h->pk, n);
}

static void hand_str(hand_t *h, const char *s, size_t n)
{
    msgpack_pack_str_with_body(&h->pk, s, n);
}

/* Decodes h's compound; returns the results of the first k messages in rc[]. */
static void hand_decode(hand_t *h, int *rc, int k, gsp_msg_t *last)
{
    CHECK_EQ(gsp_dec_init(&dec, h->sb.data, h->sb.size), GSP_WIRE_OK);
    for (int i = 0; i < k; i++)
        rc[i] = gsp_dec_next(&dec, last, NULL, NULL);
}

static void test_limits(void)
{
    static uint8_t buf[1 << 16];
    static char big[2048];
    memset(big, 'x', sizeof(big));
    gsp_enc_t e;
    gsp_enc_init(&e, buf, sizeof(buf));

    /* Encoders refuse what decoders would refuse, and leave the compound as it was. */
    gsp_suspect_t su = {.node = {big, GSP_NAME_MAX + 1}, .incarnation = 1, .from = S("a")};
    CHECK_EQ(gsp_enc_suspect(&e, GSP_SUSPECT, &su), -1);
    su.node = (gsp_str_t){big, GSP_NAME_MAX};
    CHECK_EQ(gsp_enc_suspect(&e, GSP_SUSPECT, &su), 0);
    su.node = S("");
    CHECK_EQ(gsp_enc_suspect(&e, GSP_DEAD, &su), -1);
    su.node = (gsp_str_t){"a\0b", 3};
    CHECK_EQ(gsp_enc_suspect(&e, GSP_DEAD, &su), -1);
    su.node = S("n");
    CHECK_EQ(gsp_enc_suspect(&e, GSP_ALIVE, &su), -1);
    CHECK_EQ(gsp_enc_ack(&e, GSP_PING, 1), -1);
    gsp_alive_t al = {.node = S("n"), .addr = {big, GSP_ADDR_MAX + 1}};
    CHECK_EQ(gsp_enc_alive(&e, &al), -1);
    gsp_member_state_t st = {.node = S("n"), .addr = S("a:1"), .state = 4};
    CHECK_EQ(gsp_enc_state(&e, &st), -1);
    static const char *names[GSP_SET_MAX + 1];
    for (size_t i = 0; i <= GSP_SET_MAX; i++)
        names[i] = "M";
    CHECK_EQ(gsp_enc_set(&e, 5, names, GSP_SET_MAX + 1), -1);
    CHECK_EQ(gsp_enc_set(&e, 0, names, 1), -1);
    big[GSP_FIELD_MAX + 1] = 0;
    names[0] = big;
    CHECK_EQ(gsp_enc_set(&e, 5, names, 2), -1);
    big[GSP_FIELD_MAX + 1] = 'x';
    names[0] = "M";
    CHECK_EQ(gsp_enc_set(&e, 5, names, GSP_SET_MAX), 0);
    CHECK_EQ(e.n, 2);
    size_t len = gsp_enc_finish(&e);
    gsp_msg_t m;
    CHECK_EQ(gsp_dec_init(&dec, buf, len), GSP_WIRE_OK);
    CHECK_EQ(gsp_dec_next(&dec, &m, NULL, NULL), GSP_WIRE_OK);
    CHECK_EQ(m.u.suspect.node.n, GSP_NAME_MAX);
    CHECK_EQ(gsp_dec_next(&dec, &m, NULL, NULL), GSP_WIRE_OK);
    CHECK_EQ(m.u.set.n, GSP_SET_MAX);
    CHECK_EQ(gsp_dec_next(&dec, &m, NULL, NULL), GSP_WIRE_END);

    /* No more than GSP_COMPOUND_MAX messages in a compound. */
    gsp_enc_init(&e, buf, sizeof(buf));
    for (int i = 0; i < GSP_COMPOUND_MAX; i++)
        CHECK_EQ(gsp_enc_ack(&e, GSP_ACK, (uint32_t)i), 0);
    CHECK_EQ(gsp_enc_ack(&e, GSP_ACK, 1), -1);
    CHECK_EQ(gsp_enc_raw(&e, "\x92\x03\x01", 3), -1);
    len = gsp_enc_finish(&e);
    CHECK_EQ(gsp_dec_init(&dec, buf, len), GSP_WIRE_OK);
    for (int i = 0; i < GSP_COMPOUND_MAX; i++) {
        CHECK_EQ(gsp_dec_next(&dec, &m, NULL, NULL), GSP_WIRE_OK);
        CHECK_EQ(m.u.ack.seq, i);
    }
    CHECK_EQ(gsp_dec_next(&dec, &m, NULL, NULL), GSP_WIRE_END);
    /* A header announcing more is refused. */
    memcpy(buf + len, "\x93\x03\x01\xc0", 4);
    buf[1] = (GSP_COMPOUND_MAX + 1) >> 8, buf[2] = (GSP_COMPOUND_MAX + 1) & 0xff;
    CHECK_EQ(gsp_dec_init(&dec, buf, len + 4), GSP_WIRE_EBAD);
    CHECK_EQ(gsp_dec_next(&dec, &m, NULL, NULL), GSP_WIRE_EBAD);

    /* Hand-made messages over the limits are refused whole. */
    int rc[3];
    hand_t h;
    hand_init(&h, 2);
    msgpack_pack_array(&h.pk, 4); /* SUSPECT with a long name */
    msgpack_pack_uint8(&h.pk, GSP_SUSPECT);
    hand_str(&h, big, GSP_NAME_MAX + 1);
    msgpack_pack_uint8(&h.pk, 1);
    hand_str(&h, "a", 1);
    msgpack_pack_array(&h.pk, 2);
    msgpack_pack_uint8(&h.pk, GSP_ACK);
    msgpack_pack_uint8(&h.pk, 1);
    hand_decode(&h, rc, 2, &m);
    CHECK(rc[0] == GSP_WIRE_EBAD && rc[1] == GSP_WIRE_EBAD);
    msgpack_sbuffer_destroy(&h.sb);

    hand_init(&h, 1); /* a SET of GSP_SET_MAX + 1 names */
    msgpack_pack_array(&h.pk, 3);
    msgpack_pack_uint8(&h.pk, GSP_SET);
    msgpack_pack_uint8(&h.pk, 9);
    msgpack_pack_array(&h.pk, GSP_SET_MAX + 1);
    for (int i = 0; i <= GSP_SET_MAX; i++)
        hand_str(&h, "M", 1);
    hand_decode(&h, rc, 1, &m);
    CHECK_EQ(rc[0], GSP_WIRE_EBAD);
    msgpack_sbuffer_destroy(&h.sb);

    hand_init(&h, 1); /* a STATE in an unknown state */
    msgpack_pack_array(&h.pk, 7);
    msgpack_pack_uint8(&h.pk, GSP_STATE);
    hand_str(&h, "n", 1);
    hand_str(&h, "a:1", 3);
    msgpack_pack_uint8(&h.pk, 1);
    msgpack_pack_uint8(&h.pk, 4);
    msgpack_pack_uint8(&h.pk, 1);
    msgpack_pack_bin_with_body(&h.pk, "", 0);
    hand_decode(&h, rc, 1, &m);
    CHECK_EQ(rc[0], GSP_WIRE_EBAD);
    msgpack_sbuffer_destroy(&h.sb);

    hand_init(&h, 1); /* a negative sequence number, and a field of the wrong type */
    msgpack_pack_array(&h.pk, 2);
    msgpack_pack_uint8(&h.pk, GSP_ACK);
    msgpack_pack_int8(&h.pk, -1);
    hand_decode(&h, rc, 1, &m);
    CHECK_EQ(rc[0], GSP_WIRE_EBAD);
    msgpack_sbuffer_destroy(&h.sb);
    hand_init(&h, 1);
    msgpack_pack_array(&h.pk, 2);
    msgpack_pack_uint8(&h.pk, GSP_ACK);
    hand_str(&h, "1", 1);
    hand_decode(&h, rc, 1, &m);
    CHECK_EQ(rc[0], GSP_WIRE_EBAD);
    msgpack_sbuffer_destroy(&h.sb);

    hand_init(&h, 1); /* too few fields */
    msgpack_pack_array(&h.pk, 3);
    msgpack_pack_uint8(&h.pk, GSP_SUSPECT);
    hand_str(&h, "n", 1);
    msgpack_pack_uint8(&h.pk, 1);
    hand_decode(&h, rc, 1, &m);
    CHECK_EQ(rc[0], GSP_WIRE_EBAD);
    msgpack_sbuffer_destroy(&h.sb);

    /* An array header claiming more elements than there are bytes. */
    const uint8_t lie[] = {0xdd, 0x7f, 0xff, 0xff, 0xff, 0x91, 0x03};
    CHECK_EQ(gsp_dec_init(&dec, lie, sizeof(lie)), GSP_WIRE_EBAD);
    const uint8_t lie2[] = {0x91, 0xdd, 0x7f, 0xff, 0xff, 0xff, 0x03};
    CHECK_EQ(gsp_dec_init(&dec, lie2, sizeof(lie2)), GSP_WIRE_OK);
    CHECK_EQ(gsp_dec_next(&dec, &m, NULL, NULL), GSP_WIRE_EBAD);
}

/* Unknown types are skipped (SKIP, raw bytes given); unknown trailing fields are ignored,
 * however deeply nested (skipping is iterative). */
static void test_unknown(void)
{
    hand_t h;
    gsp_msg_t m;
    const uint8_t *raw;
    size_t raw_len;
    hand_init(&h, 3);
    msgpack_pack_array(&h.pk, 3); /* type 99 with a map and a nested array */
    msgpack_pack_uint8(&h.pk, 99);
    msgpack_pack_map(&h.pk, 1);
    hand_str(&h, "k", 1);
    msgpack_pack_double(&h.pk, 1.5);
    for (int i = 0; i < 10000; i++)
        msgpack_pack_array(&h.pk, 1);
    msgpack_pack_nil(&h.pk);
    msgpack_pack_array(&h.pk, 5); /* ACK with three more fields */
    msgpack_pack_uint8(&h.pk, GSP_ACK);
    msgpack_pack_uint32(&h.pk, 77);
    msgpack_pack_ext_with_body(&h.pk, "abcd", 4, 5);
    hand_str(&h, "new", 3);
    msgpack_pack_array(&h.pk, 2);
    msgpack_pack_int64(&h.pk, -5);
    msgpack_pack_bin_with_body(&h.pk, "zz", 2);
    msgpack_pack_array(&h.pk, 2); /* ACK */
    msgpack_pack_uint8(&h.pk, GSP_ACK);
    msgpack_pack_uint8(&h.pk, 78);

    CHECK_EQ(gsp_dec_init(&dec, h.sb.data, h.sb.size), GSP_WIRE_OK);
    CHECK_EQ(gsp_dec_next(&dec, &m, &raw, &raw_len), GSP_WIRE_SKIP);
    CHECK(raw == (const uint8_t *)h.sb.data + 1); /* after the fixarray header */
    CHECK(raw_len > 10000);
    CHECK_EQ(gsp_dec_next(&dec, &m, NULL, NULL), GSP_WIRE_OK);
    CHECK_EQ(m.type, GSP_ACK);
    CHECK_EQ(m.u.ack.seq, 77);
    CHECK_EQ(gsp_dec_next(&dec, &m, NULL, NULL), GSP_WIRE_OK);
    CHECK_EQ(m.u.ack.seq, 78);
    CHECK_EQ(gsp_dec_next(&dec, &m, NULL, NULL), GSP_WIRE_END);
    msgpack_sbuffer_destroy(&h.sb);

    /* A message whose type is not an integer is malformed. */
    hand_init(&h, 1);
    msgpack_pack_array(&h.pk, 1);
    hand_str(&h, "ping", 4);
    CHECK_EQ(gsp_dec_init(&dec, h.sb.data, h.sb.size), GSP_WIRE_OK);
    CHECK_EQ(gsp_dec_next(&dec, &m, NULL, NULL), GSP_WIRE_EBAD);
    msgpack_sbuffer_destroy(&h.sb);
}

/* Fills a datagram-sized compound until it refuses: it stays valid and decodes whole. */
static void test_full(void)
{
    static uint8_t buf[GSP_UDP_MAX];
    char name[32];
    gsp_enc_t e;
    gsp_enc_init(&e, buf, sizeof(buf));
    gsp_ping_t ping = {.seq = 1, .target = S("peer"), .from = S("me"), .from_addr = S("h:1")};
    CHECK_EQ(gsp_enc_ping(&e, &ping), 0);
    int n = 0;
    for (;; n++) {
        snprintf(name, sizeof(name), "node-%d", n);
        gsp_alive_t al = {.node = S(name),
                          .addr = S("10.1.2.3:7946"),
                          .incarnation = (uint32_t)n,
                          .meta_version = 5,
                          .meta = {"meta-bytes-here", 15}};
        size_t before = gsp_enc_len(&e);
        if (gsp_enc_alive(&e, &al) < 0) {
            CHECK_EQ(gsp_enc_len(&e), before);
            break;
        }
        CHECK(gsp_enc_len(&e) - before <=
              GSP_MSG_OVERHEAD + (al.node.n + 5) + (al.addr.n + 5) + (al.meta.n + 5));
    }
    CHECK(n > 10);
    CHECK(gsp_enc_len(&e) > GSP_UDP_MAX - 64);
    CHECK_EQ(gsp_enc_ack(&e, GSP_ACK, 1) == 0, gsp_enc_len(&e) + 7 <= GSP_UDP_MAX);
    uint32_t total = e.n;
    size_t len = gsp_enc_finish(&e);
    CHECK(len <= GSP_UDP_MAX);
    gsp_msg_t m;
    CHECK_EQ(gsp_dec_init(&dec, buf, len), GSP_WIRE_OK);
    CHECK_EQ(gsp_dec_next(&dec, &m, NULL, NULL), GSP_WIRE_OK);
    CHECK_EQ(m.type, GSP_PING);
    for (int i = 0; i < n; i++) {
        CHECK_EQ(gsp_dec_next(&dec, &m, NULL, NULL), GSP_WIRE_OK);
        CHECK_EQ(m.type, GSP_ALIVE);
        CHECK_EQ(m.u.alive.incarnation, i);
    }
    for (uint32_t i = (uint32_t)n + 1; i < total; i++)
        CHECK_EQ(gsp_dec_next(&dec, &m, NULL, NULL), GSP_WIRE_OK);
    CHECK_EQ(gsp_dec_next(&dec, &m, NULL, NULL), GSP_WIRE_END);
}

/* A STATE's cached head followed by its metadata is the very message gsp_enc_state writes (a
 * push-pull frame built from cached heads is byte for byte the one encoded field by field),
 * for metadata sizes across msgpack's bin 8/16/32 boundaries, names and addresses at their
 * bounds; the head fits GSP_STATE_HEAD_MAX, and it refuses what gsp_enc_state refuses. */
static void test_state_head(void)
{
    static uint8_t meta[GSP_META_MAX], want[GSP_META_MAX + 512], got[GSP_META_MAX + 512];
    for (size_t i = 0; i < sizeof meta; i++)
        meta[i] = (uint8_t)(i * 31 + 7);
    char name[GSP_NAME_MAX + 1], addr[GSP_ADDR_MAX + 1];
    memset(name, 'n', GSP_NAME_MAX);
    name[GSP_NAME_MAX] = 0;
    memset(addr, '9', GSP_ADDR_MAX);
    addr[GSP_ADDR_MAX] = 0;
    const size_t metas[] = {0, 1, 255, 256, 65535, GSP_META_MAX};
    const gsp_str_t names[] = {S("a"), S("node-17"), S(name)};
    const gsp_str_t addrs[] = {S(""), S("10.0.3.7:7946"), S(addr)};
    for (size_t a = 0; a < 6; a++)
        for (size_t b = 0; b < 3; b++)
            for (size_t c = 0; c < 3; c++) {
                gsp_member_state_t st = {.node = names[b],
                                         .addr = addrs[c],
                                         .incarnation = c ? 0xffffffffu : 3,
                                         .state = (uint8_t)(b % 4),
                                         .meta_version = a ? 0xffffffffffull * a : 0,
                                         .meta = {(const char *)meta, (uint32_t)metas[a]}};
                gsp_enc_t e;
                gsp_enc_init(&e, want, sizeof want);
                CHECK_EQ(gsp_enc_state(&e, &st), 0);
                size_t wl = gsp_enc_finish(&e) - 3; /* without the compound's header */
                uint8_t head[GSP_STATE_HEAD_MAX(GSP_NAME_MAX, GSP_ADDR_MAX)];
                size_t h = gsp_enc_state_head(head, GSP_STATE_HEAD_MAX(st.node.n, st.addr.n), &st);
                CHECK(h > 0);
                CHECK_EQ(h + metas[a], wl);
                memcpy(got, head, h);
                memcpy(got + h, meta, metas[a]);
                CHECK(!memcmp(got, want + 3, wl));
                CHECK_EQ(gsp_enc_state_head(head, h - 1, &st), 0); /* does not fit */
            }
    gsp_member_state_t bad = {.node = S(""), .addr = S("x:1")};
    uint8_t head[GSP_STATE_HEAD_MAX(GSP_NAME_MAX, GSP_ADDR_MAX)];
    CHECK_EQ(gsp_enc_state_head(head, sizeof head, &bad), 0); /* an empty member name */
    bad.node = S("a");
    bad.state = GSP_ST_LEFT + 1;
    CHECK_EQ(gsp_enc_state_head(head, sizeof head, &bad), 0);
}

/* The digest push-pull: PUSH_PULL's optional fields, DIGEST and HAVE round trip; a PUSH_PULL
 * without digest has the three fields older nodes send (byte for byte), and older nodes' three
 * fields decode as "no digest"; what breaks a rule is refused on both sides. */
static void test_digest(void)
{
    uint8_t buf[512], old[64];
    gsp_enc_t e;
    gsp_enc_init(&e, buf, sizeof buf);
    gsp_push_pull_t pp = {.digest = 1, .from_addr = S("10.0.0.1:7946")};
    CHECK_EQ(gsp_enc_push_pull(&e, &pp), 0);
    gsp_digest_t g = {.node = S("node-1"),
                      .incarnation = 7,
                      .state = GSP_ST_SUSPECT,
                      .meta_version = 1767225600123ULL,
                      .meta_known = 1};
    CHECK_EQ(gsp_enc_digest(&e, &g), 0);
    uint64_t hashes[3] = {1, 0xffffffffffffffffULL, 42};
    CHECK_EQ(gsp_enc_have(&e, hashes, 3), 0);
    gsp_push_pull_t plain = {.join = 1, .reply = 1, .n_states = 9};
    CHECK_EQ(gsp_enc_push_pull(&e, &plain), 0);
    size_t len = gsp_enc_finish(&e);

    gsp_msg_t m;
    CHECK_EQ(gsp_dec_init(&dec, buf, len), GSP_WIRE_OK);
    CHECK_EQ(gsp_dec_next(&dec, &m, NULL, NULL), GSP_WIRE_OK);
    CHECK(m.type == GSP_PUSH_PULL && m.u.push_pull.digest == 1 && !m.u.push_pull.reply);
    CHECK(str_is(m.u.push_pull.from_addr, "10.0.0.1:7946"));
    CHECK_EQ(gsp_dec_next(&dec, &m, NULL, NULL), GSP_WIRE_OK);
    CHECK(m.type == GSP_DIGEST && str_is(m.u.digest.node, "node-1"));
    CHECK(m.u.digest.incarnation == 7 && m.u.digest.state == GSP_ST_SUSPECT);
    CHECK(m.u.digest.meta_version == 1767225600123ULL && m.u.digest.meta_known == 1);
    CHECK_EQ(gsp_dec_next(&dec, &m, NULL, NULL), GSP_WIRE_OK);
    CHECK(m.type == GSP_HAVE && m.u.have.n_sets == 3);
    CHECK(m.u.have.sets[0] == 1 && m.u.have.sets[1] == UINT64_MAX && m.u.have.sets[2] == 42);
    CHECK_EQ(gsp_dec_next(&dec, &m, NULL, NULL), GSP_WIRE_OK);
    CHECK(m.type == GSP_PUSH_PULL && m.u.push_pull.join && m.u.push_pull.reply);
    CHECK(m.u.push_pull.n_states == 9 && !m.u.push_pull.digest && !m.u.push_pull.from_addr.n);
    CHECK_EQ(gsp_dec_next(&dec, &m, NULL, NULL), GSP_WIRE_END);

    /* without digest: [9, true, true, 9], what a node older than digests writes */
    gsp_enc_init(&e, old, sizeof old);
    CHECK_EQ(gsp_enc_push_pull(&e, &plain), 0);
    len = gsp_enc_finish(&e);
    static const uint8_t want[] = {0xdc, 0, 1, 0x94, GSP_PUSH_PULL, 0xc3, 0xc3, 9};
    CHECK_EQ(len, sizeof want);
    CHECK(!memcmp(old, want, len));

    /* refused: a digest without the sender's address, an empty member, a state past LEFT, a
     * HAVE over GSP_SET_MAX */
    gsp_enc_init(&e, buf, sizeof buf);
    pp.from_addr = S("");
    CHECK_EQ(gsp_enc_push_pull(&e, &pp), -1);
    g.node = S("");
    CHECK_EQ(gsp_enc_digest(&e, &g), -1);
    g.node = S("n");
    g.state = GSP_ST_LEFT + 1;
    CHECK_EQ(gsp_enc_digest(&e, &g), -1);
    CHECK_EQ(gsp_enc_have(&e, hashes, GSP_SET_MAX + 1), -1);
    CHECK_EQ(e.n, 0);

    hand_t h; /* a digest flag with an empty address, by hand: malformed */
    hand_init(&h, 1);
    msgpack_pack_array(&h.pk, 6);
    msgpack_pack_uint8(&h.pk, GSP_PUSH_PULL);
    msgpack_pack_false(&h.pk);
    msgpack_pack_false(&h.pk);
    msgpack_pack_uint8(&h.pk, 0);
    msgpack_pack_true(&h.pk);
    hand_str(&h, "", 0);
    CHECK_EQ(gsp_dec_init(&dec, h.sb.data, h.sb.size), GSP_WIRE_OK);
    CHECK_EQ(gsp_dec_next(&dec, &m, NULL, NULL), GSP_WIRE_EBAD);
    msgpack_sbuffer_destroy(&h.sb);
}

int main(void)
{
    RUN(test_round_trip);
    RUN(test_truncation);
    RUN(test_limits);
    RUN(test_unknown);
    RUN(test_full);
    RUN(test_state_head);
    RUN(test_digest);
    printf("ok\n");
    return 0;
}
