/*
 * tests/unit/gossip/test_swim_queue.c: the update queue of gossip/swim.c, seen through the
 * datagrams a node sends. Every queued update goes out exactly retransmit_mult x
 * max(2, ceil(log10(live + 1))) times; a datagram carries the fewest-sent updates first and, among
 * equals, the newest first; an update replaced by a newer one about the same member (a hole in
 * its level, squeezed out later) never goes out again, and the newer one goes out its full count.
 */
#include <stdio.h>
#include <string.h>

#include "gossip/swim.h"
#include "gossip/wire.h"
#include "tests/check.h"

#define MS 1000000ull
#define N  200 /* members: more updates than one datagram holds */

static int sent_count[N + 1][3]; /* [member][incarnation]: ALIVEs sent */
static int order_bad;            /* a datagram carried a more-sent update before a less-sent one */
static int first_dgram[N + 1];   /* the first datagram's ALIVEs, in order (member numbers) */
static int first_n;              /* how many */
static int n_dgrams;             /* datagrams that carried ALIVEs */

static int member_no(gsp_str_t name)
{
    int k = 0;
    if (name.n < 2 || name.p[0] != 'n')
        return -1;
    for (uint32_t i = 1; i < name.n; i++)
        k = k * 10 + (name.p[i] - '0');
    return k >= 1 && k <= N ? k : -1;
}

static void on_send(void *ud, const char *addr, const uint8_t *data, size_t len)
{
    (void)ud, (void)addr;
    gsp_decoder_t d;
    gsp_msg_t m;
    CHECK_EQ(gsp_dec_init(&d, data, len), GSP_WIRE_OK);
    int last = -1, n = 0;
    while (gsp_dec_next(&d, &m, NULL, NULL) == GSP_WIRE_OK) {
        int k = m.type == GSP_ALIVE ? member_no(m.u.alive.node) : -1;
        if (k < 0)
            continue;
        uint32_t inc = m.u.alive.incarnation;
        CHECK(inc == 1 || inc == 2);
        int before = sent_count[k][inc]++;
        if (before < last)
            order_bad = 1;
        last = before;
        if (n_dgrams == 0 && n < N)
            first_dgram[n] = k;
        n++;
    }
    if (n && n_dgrams++ == 0)
        first_n = n;
}

/* A datagram from a peer announcing members lo..hi (inclusive) at incarnation inc. */
static void announce(gsp_swim_t *s, uint64_t now, int lo, int hi, uint32_t inc)
{
    uint8_t buf[GSP_UDP_MAX];
    char names[N + 1][8], addrs[N + 1][24];
    gsp_enc_t e;
    gsp_enc_init(&e, buf, sizeof buf);
    for (int k = lo; k <= hi; k++) {
        snprintf(names[k], sizeof names[k], "n%d", k);
        snprintf(addrs[k], sizeof addrs[k], "10.0.%d.%d:7946", k / 250, k % 250 + 2);
        gsp_alive_t a = {.node = {names[k], (uint32_t)strlen(names[k])},
                         .addr = {addrs[k], (uint32_t)strlen(addrs[k])},
                         .incarnation = inc};
        CHECK_EQ(gsp_enc_alive(&e, &a), 0);
    }
    size_t len = gsp_enc_finish(&e);
    gsp_swim_on_datagram(s, now, "10.0.9.9:7946", buf, len);
}

static void test_counts_and_order(void)
{
    gsp_swim_cfg_t cfg;
    CHECK_EQ(gsp_swim_profile("lan", &cfg), 0);
    cfg.probe_interval_ns = 1000000 * 1000 * MS; /* no probes: gossip ticks alone send */
    cfg.push_pull_interval_ns = 0;
    gsp_swim_ops_t ops = {.send = on_send};
    gsp_swim_t *s = gsp_swim_new("me", "10.0.9.1:7946", &cfg, &ops, NULL, 7, 0);
    CHECK(s);
    /* 200 members in datagrams of 20 (queued oldest first), then every third one replaced */
    for (int lo = 1; lo <= N; lo += 20)
        announce(s, 0, lo, lo + 19, 1);
    for (int k = 3; k <= N; k += 3)
        announce(s, 0, k, k, 2);
    uint64_t now = 0;
    for (int i = 0; i < 3000; i++) { /* 300 s of gossip ticks */
        now += 100 * MS;
        gsp_swim_on_time(s, now);
        if (i == 20) /* later replacements land in levels above 0, leaving holes there */
            for (int k = 1; k <= N; k += 7)
                if (k % 3)
                    announce(s, now, k, k, 2);
    }
    /* live = 201: limit 4 x ceil(log10(202)) = 12 */
    const int limit = 12;
    for (int k = 1; k <= N; k++) {
        if (k % 3 == 0) {
            CHECK_EQ(sent_count[k][1], 0); /* replaced before the first tick */
            CHECK_EQ(sent_count[k][2], limit);
        } else if (k % 7 == 1) {
            CHECK(sent_count[k][1] > 0 && sent_count[k][1] < limit); /* replaced half way */
            CHECK_EQ(sent_count[k][2], limit);
        } else {
            CHECK_EQ(sent_count[k][1], limit);
            CHECK_EQ(sent_count[k][2], 0);
        }
    }
    CHECK(!order_bad);
    /* the first datagram: the replacements, newest first (k = 198, 195, ...) */
    CHECK(first_n > 10 && first_n < 66);
    for (int i = 0; i < first_n; i++)
        CHECK_EQ(first_dgram[i], 198 - 3 * i);
    gsp_swim_stats_t st;
    gsp_swim_stats(s, &st);
    CHECK_EQ(st.dropped_updates, 0);
    gsp_swim_free(s);
}

int main(void)
{
    RUN(test_counts_and_order);
    printf("ok\n");
    return 0;
}
