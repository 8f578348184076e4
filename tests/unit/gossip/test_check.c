/*
 * tests/unit/gossip/test_check.c: the indirect check's messages (GSP_CHECK, GSP_CHECK_ACK in
 * gossip/wire.h) and the asking side's bookkeeping (gossip/check.h): round trips, what an
 * encoder refuses, truncation, a compound an older node reads (the new types skipped, the rest
 * intact), and the asks: the first member that reaches the instance ends the ask (the veto),
 * every member answering "not reached" ends it too, duplicates are ignored, silent members
 * end it at the deadline, and an ask of nobody ends at once.
 */
#include <string.h>

#include "gossip/check.h"
#include "gossip/wire.h"
#include "tests/check.h"

#define MS 1000000ull

static gsp_str_t S(const char *s)
{
    return (gsp_str_t){s, (uint32_t)strlen(s)};
}

static gsp_decoder_t dec;

static int test_round_trip(void)
{
    uint8_t buf[256];
    gsp_enc_t e;
    gsp_enc_init(&e, buf, sizeof(buf));
    gsp_check_t c = {.seq = 9, .addr = S("10.0.0.7:50051"), .timeout_ms = 2000, .from = S("mon")};
    gsp_check_ack_t a = {.seq = 9, .reached = 1, .from = S("sidecar-3")};
    CHECK_EQ(gsp_enc_check(&e, &c), 0);
    CHECK_EQ(gsp_enc_check_ack(&e, &a), 0);
    size_t len = gsp_enc_finish(&e);
    gsp_msg_t m;
    CHECK_EQ(gsp_dec_init(&dec, buf, len), GSP_WIRE_OK);
    CHECK_EQ(gsp_dec_next(&dec, &m, NULL, NULL), GSP_WIRE_OK);
    CHECK_EQ(m.type, GSP_CHECK);
    CHECK_EQ(m.u.check.seq, 9);
    CHECK(gsp_str_eq(m.u.check.addr, "10.0.0.7:50051"));
    CHECK_EQ(m.u.check.timeout_ms, 2000);
    CHECK(gsp_str_eq(m.u.check.from, "mon"));
    CHECK_EQ(gsp_dec_next(&dec, &m, NULL, NULL), GSP_WIRE_OK);
    CHECK_EQ(m.type, GSP_CHECK_ACK);
    CHECK_EQ(m.u.check_ack.seq, 9);
    CHECK_EQ(m.u.check_ack.reached, 1);
    CHECK(gsp_str_eq(m.u.check_ack.from, "sidecar-3"));
    CHECK_EQ(gsp_dec_next(&dec, &m, NULL, NULL), GSP_WIRE_END);
    /* every truncation is refused, never misread */
    for (size_t cut = 0; cut < len; cut++) {
        int rc = gsp_dec_init(&dec, buf, cut);
        while (rc == GSP_WIRE_OK)
            rc = gsp_dec_next(&dec, &m, NULL, NULL);
        CHECK(rc == GSP_WIRE_EBAD);
    }
    return 0;
}

static int test_refused(void)
{
    uint8_t buf[256];
    gsp_enc_t e;
    gsp_enc_init(&e, buf, sizeof(buf));
    gsp_check_t c = {.seq = 1, .addr = S(""), .from = S("mon")};
    CHECK_EQ(gsp_enc_check(&e, &c), -1); /* no address */
    char big[GSP_ADDR_MAX + 2];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    c.addr = S(big);
    CHECK_EQ(gsp_enc_check(&e, &c), -1); /* over GSP_ADDR_MAX */
    c.addr = (gsp_str_t){"1.2.3.4:5\0x", 11};
    CHECK_EQ(gsp_enc_check(&e, &c), -1); /* NUL inside */
    CHECK_EQ(e.n, 0);
    return 0;
}

/* An older node knows types up to GSP_WANT: it skips CHECK and CHECK_ACK whole. Emulated by
 * a message of a type above GSP_TYPE_MAX with CHECK's fields, followed by an ACK. */
static int test_old_node_skips(void)
{
    uint8_t buf[128];
    gsp_enc_t e;
    gsp_enc_init(&e, buf, sizeof(buf));
    gsp_check_t c = {.seq = 5, .addr = S("10.0.0.1:1"), .timeout_ms = 10, .from = S("m")};
    CHECK_EQ(gsp_enc_check(&e, &c), 0);
    CHECK_EQ(gsp_enc_ack(&e, GSP_ACK, 77), 0);
    size_t len = gsp_enc_finish(&e);
    buf[3 + 1] = GSP_TYPE_MAX + 1; /* the first message's type byte: [array hdr, type, ...] */
    gsp_msg_t m;
    CHECK_EQ(gsp_dec_init(&dec, buf, len), GSP_WIRE_OK);
    CHECK_EQ(gsp_dec_next(&dec, &m, NULL, NULL), GSP_WIRE_SKIP);
    CHECK_EQ(gsp_dec_next(&dec, &m, NULL, NULL), GSP_WIRE_OK);
    CHECK_EQ(m.type, GSP_ACK);
    CHECK_EQ(m.u.ack.seq, 77);
    return 0;
}

static int test_asks(void)
{
    gsp_checker_t c;
    gsp_check_done_t d;
    gsp_checker_init(&c);
    /* three asked; two say no, the third reaches it: a veto naming it */
    uint32_t s1 = gsp_checker_begin(&c, 1000 * MS, 42, 7, 3, 2000);
    CHECK(s1 != 0);
    gsp_check_ack_t no = {.seq = s1, .reached = 0, .from = S("a")};
    gsp_check_ack_t yes = {.seq = s1, .reached = 1, .from = S("b")};
    CHECK_EQ(gsp_checker_on_ack(&c, &no, &d), 0);
    CHECK_EQ(gsp_checker_on_ack(&c, &yes, &d), 1);
    CHECK_EQ(d.asker, 42);
    CHECK_EQ(d.tag, 7);
    CHECK_EQ(d.reached, 1);
    CHECK_EQ(d.answered, 2);
    CHECK_STR(d.by, "b");
    CHECK_EQ(gsp_checker_on_ack(&c, &no, &d), 0); /* finished: a late answer is ignored */
    /* two asked, both unreachable: ends on the last answer, nobody reached */
    uint32_t s2 = gsp_checker_begin(&c, 1000 * MS, 42, 8, 2, 2000);
    CHECK(s2 != s1);
    no.seq = s2;
    CHECK_EQ(gsp_checker_on_ack(&c, &no, &d), 0);
    CHECK_EQ(gsp_checker_on_ack(&c, &no, &d), 1);
    CHECK_EQ(d.reached, 0);
    CHECK_EQ(d.answered, 2);
    CHECK_EQ(d.by[0], 0);
    /* silent members: the deadline (connect deadline + slack) ends it */
    uint32_t s3 = gsp_checker_begin(&c, 1000 * MS, 42, 9, 3, 2000);
    no.seq = s3;
    CHECK_EQ(gsp_checker_on_ack(&c, &no, &d), 0);
    CHECK_EQ(gsp_checker_next_deadline(&c), (1000 + 2000 + GSP_CHECK_SLACK_MS) * MS);
    CHECK_EQ(gsp_checker_expire(&c, (1000 + 2000) * MS, &d), 0);
    CHECK_EQ(gsp_checker_expire(&c, (1000 + 2000 + GSP_CHECK_SLACK_MS) * MS, &d), 1);
    CHECK_EQ(d.tag, 9);
    CHECK_EQ(d.asked, 3);
    CHECK_EQ(d.answered, 1);
    CHECK_EQ(d.reached, 0);
    /* nobody to ask: finished at once */
    gsp_checker_begin(&c, 5000 * MS, 42, 10, 0, 2000);
    CHECK_EQ(gsp_checker_expire(&c, 5000 * MS, &d), 1);
    CHECK_EQ(d.tag, 10);
    CHECK_EQ(d.asked, 0);
    CHECK_EQ(gsp_checker_next_deadline(&c), UINT64_MAX);
    /* many at once: the table grows */
    for (int i = 0; i < 100; i++)
        CHECK(gsp_checker_begin(&c, 0, 1, (uint64_t)i, 1, 100) != 0);
    int n = 0;
    while (gsp_checker_expire(&c, UINT64_MAX, &d))
        n++;
    CHECK_EQ(n, 100);
    gsp_checker_destroy(&c);
    return 0;
}

int main(void)
{
    RUN(test_round_trip);
    RUN(test_refused);
    RUN(test_old_node_skips);
    RUN(test_asks);
    return 0;
}
