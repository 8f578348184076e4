/*
 * tests/unit/policy_acl/test_cidr.c: addresses, CIDR prefixes and sets, and the
 * X-Forwarded-For walk (policy/cidr.h).
 *
 * Covers IPv4 and IPv6 parsing and formatting, IPv4-mapped IPv6 addresses matching IPv4
 * prefixes, /0 and host prefixes, boundaries of a range, merging of overlapping and adjacent
 * prefixes, the parse errors a user sees, and XFF: spoofed values from an untrusted peer,
 * chains of trusted proxies, several header fields, ports and brackets, malformed entries.
 */
#include "policy/cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "tests/check.h"

static pol_ip_t ip(const char *s)
{
    pol_ip_t a;
    if (pol_ip_parse(s, strlen(s), &a) != 0) {
        fprintf(stderr, "bad test address %s\n", s);
        exit(1);
    }
    return a;
}

static pol_cidr_set_t *set_of(const char *const *v, size_t n)
{
    char err[256];
    pol_cidr_set_t *s = pol_cidr_set_new(v, n, err, sizeof(err));
    if (!s) {
        fprintf(stderr, "set: %s\n", err);
        exit(1);
    }
    return s;
}

static int in(const pol_cidr_set_t *s, const char *a)
{
    pol_ip_t x = ip(a);
    return pol_cidr_set_contains(s, &x);
}

static void test_parse_format(void)
{
    char buf[POL_IP_STRLEN];
    pol_ip_t a = ip("10.1.2.3");
    CHECK(pol_ip_is_v4(&a));
    CHECK(pol_ip_format(&a, buf, sizeof(buf)) > 0);
    CHECK_STR(buf, "10.1.2.3");
    /* The mapped form is the same address and prints as IPv4. */
    pol_ip_t m = ip("::ffff:10.1.2.3");
    CHECK(pol_ip_equal(&a, &m));
    m = ip("::FFFF:a01:203");
    CHECK(pol_ip_equal(&a, &m));
    pol_ip_format(&m, buf, sizeof(buf));
    CHECK_STR(buf, "10.1.2.3");
    a = ip("2001:DB8:0:0:0:0:0:1");
    CHECK(!pol_ip_is_v4(&a));
    pol_ip_format(&a, buf, sizeof(buf));
    CHECK_STR(buf, "2001:db8::1");
    /* Too small a buffer is refused, not overrun. */
    CHECK_EQ(pol_ip_format(&a, buf, 5), -1);

    pol_ip_t x;
    const char *bad[] = {"",          "1.2.3",    "1.2.3.4.5",    "256.1.1.1", "01.2.3.4",
                         "1.2.3.4 ",  " 1.2.3.4", "fe80::1%eth0", "::1::2",    "gggg::",
                         "1.2.3.4/8", "[::1]",    "localhost",    "0x7f.0.0.1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (pol_ip_parse(bad[i], strlen(bad[i]), &x) == 0) {
            fprintf(stderr, "accepted %s\n", bad[i]);
            CHECK(0);
        }
    }
    /* An embedded NUL is not an address either. */
    CHECK(pol_ip_parse("1.2.3.4\0", 8, &x) != 0);

    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(80)};
    inet_pton(AF_INET, "192.0.2.7", &sin.sin_addr);
    CHECK_EQ(pol_ip_from_sockaddr((struct sockaddr *)&sin, &x), 0);
    a = ip("192.0.2.7");
    CHECK(pol_ip_equal(&x, &a));
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "::ffff:192.0.2.7", &sin6.sin6_addr);
    CHECK_EQ(pol_ip_from_sockaddr((struct sockaddr *)&sin6, &x), 0);
    CHECK(pol_ip_equal(&x, &a));
    struct sockaddr un = {.sa_family = AF_UNIX};
    CHECK_EQ(pol_ip_from_sockaddr(&un, &x), -1);
}

static void test_prefix_errors(void)
{
    pol_cidr_t c;
    char err[256];
    CHECK_EQ(pol_cidr_parse("10.0.0.1/8", &c, err, sizeof(err)), -1);
    CHECK_STR(err, "10.0.0.1/8: host bits set after /8 (did you mean 10.0.0.0/8?)");
    CHECK_EQ(pol_cidr_parse("2001:db8::1/32", &c, err, sizeof(err)), -1);
    CHECK_CONTAINS(err, "did you mean 2001:db8::/32?");
    CHECK_EQ(pol_cidr_parse("10.0.0.0/33", &c, err, sizeof(err)), -1);
    CHECK_STR(err, "10.0.0.0/33: prefix length 33 is over 32");
    CHECK_EQ(pol_cidr_parse("::/129", &c, err, sizeof(err)), -1);
    CHECK_CONTAINS(err, "over 128");
    CHECK_EQ(pol_cidr_parse("10.0.0.0/", &c, err, sizeof(err)), -1);
    CHECK_CONTAINS(err, "bad prefix length");
    CHECK_EQ(pol_cidr_parse("10.0.0.0/08", &c, err, sizeof(err)), -1);
    CHECK_CONTAINS(err, "bad prefix length");
    CHECK_EQ(pol_cidr_parse("10.0.0.0/8x", &c, err, sizeof(err)), -1);
    CHECK_EQ(pol_cidr_parse("10.0.0.0/-1", &c, err, sizeof(err)), -1);
    CHECK_EQ(pol_cidr_parse("ten/8", &c, err, sizeof(err)), -1);
    CHECK_STR(err, "ten: not an IPv4 or IPv6 address");
    CHECK_EQ(pol_cidr_parse("", &c, err, sizeof(err)), -1);
    CHECK_STR(err, "empty prefix");

    /* Good ones. */
    CHECK_EQ(pol_cidr_parse("10.0.0.0/8", &c, err, sizeof(err)), 0);
    CHECK_EQ(c.bits, 104);
    CHECK_EQ(pol_cidr_parse("0.0.0.0/0", &c, err, sizeof(err)), 0);
    CHECK_EQ(c.bits, 96);
    CHECK_EQ(pol_cidr_parse("::/0", &c, err, sizeof(err)), 0);
    CHECK_EQ(c.bits, 0);
    CHECK_EQ(pol_cidr_parse("192.0.2.1", &c, err, sizeof(err)), 0);
    CHECK_EQ(c.bits, 128);
    CHECK_EQ(pol_cidr_parse("::1", &c, err, sizeof(err)), 0);
    CHECK_EQ(c.bits, 128);

    /* A set names the bad entry. */
    const char *v[] = {"10.0.0.0/8", "192.168.1.1/16"};
    CHECK(pol_cidr_set_new(v, 2, err, sizeof(err)) == NULL);
    CHECK_STR(err, "prefix 2 (\"192.168.1.1/16\"): 192.168.1.1/16: host bits set after /16 (did "
                   "you mean 192.168.0.0/16?)");
}

static void test_set_v4(void)
{
    const char *v[] = {"10.0.0.0/8", "192.168.1.0/24", "203.0.113.7", "172.16.0.0/12"};
    pol_cidr_set_t *s = set_of(v, 4);
    CHECK_EQ(pol_cidr_set_size(s), 4);
    CHECK(in(s, "10.0.0.0"));
    CHECK(in(s, "10.255.255.255"));
    CHECK(!in(s, "11.0.0.0"));
    CHECK(!in(s, "9.255.255.255"));
    CHECK(in(s, "192.168.1.0") && in(s, "192.168.1.255"));
    CHECK(!in(s, "192.168.0.255") && !in(s, "192.168.2.0"));
    CHECK(in(s, "203.0.113.7"));
    CHECK(!in(s, "203.0.113.6") && !in(s, "203.0.113.8"));
    CHECK(in(s, "172.31.255.255") && !in(s, "172.32.0.0") && !in(s, "172.15.255.255"));
    /* IPv4-mapped IPv6 peers match IPv4 prefixes. */
    CHECK(in(s, "::ffff:10.9.8.7"));
    CHECK(!in(s, "::ffff:11.9.8.7"));
    /* An IPv6 address whose low 32 bits look like 10.x is not IPv4. */
    CHECK(!in(s, "::10.9.8.7"));
    CHECK(!in(s, "2001:db8::a09:807"));
    pol_cidr_set_free(s);

    /* 0.0.0.0/0 is all of IPv4 and nothing of IPv6. */
    const char *all4[] = {"0.0.0.0/0"};
    s = set_of(all4, 1);
    CHECK(in(s, "0.0.0.0") && in(s, "255.255.255.255") && in(s, "::ffff:1.2.3.4"));
    CHECK(!in(s, "::1") && !in(s, "2001:db8::1") && !in(s, "::"));
    pol_cidr_set_free(s);
}

static void test_set_v6(void)
{
    const char *v[] = {"2001:db8::/32", "::1/128", "fe80::/10", "::ffff:0:0/96"};
    pol_cidr_set_t *s = set_of(v, 4);
    CHECK(in(s, "2001:db8::") && in(s, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"));
    CHECK(!in(s, "2001:db9::") && !in(s, "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff"));
    CHECK(in(s, "::1") && !in(s, "::2") && !in(s, "::"));
    CHECK(in(s, "febf:ffff::1") && !in(s, "fec0::"));
    /* ::ffff:0:0/96 is every IPv4 address. */
    CHECK(in(s, "1.2.3.4") && in(s, "255.255.255.255"));
    pol_cidr_set_free(s);

    /* ::/0 is everything, IPv4 too. */
    const char *all[] = {"::/0"};
    s = set_of(all, 1);
    CHECK(in(s, "::") && in(s, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff") && in(s, "1.2.3.4"));
    pol_cidr_set_free(s);

    /* A prefix ending at the top of the space (no overflow past all ones). */
    const char *top[] = {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff0/124", "ffff::/16"};
    s = set_of(top, 2);
    CHECK(in(s, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff") && in(s, "ffff::"));
    CHECK(!in(s, "fffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
    CHECK_EQ(pol_cidr_set_ranges(s), 1);
    pol_cidr_set_free(s);

    /* Mapped form of a v4 prefix and the v4 form are the same prefix. */
    const char *mapped[] = {"::ffff:10.0.0.0/104"};
    s = set_of(mapped, 1);
    CHECK(in(s, "10.200.0.1") && !in(s, "11.0.0.0"));
    pol_cidr_set_free(s);
}

static void test_set_merge(void)
{
    /* Overlapping, nested, duplicate and adjacent prefixes collapse into disjoint ranges. */
    const char *v[] = {"10.0.0.0/8",     "10.1.0.0/16",    "10.0.0.0/8",    "11.0.0.0/8",
                       "192.168.0.0/24", "192.168.1.0/24", "192.168.3.0/24"};
    pol_cidr_set_t *s = set_of(v, 7);
    CHECK_EQ(pol_cidr_set_size(s), 7);
    CHECK_EQ(pol_cidr_set_ranges(s), 3); /* 10-11/7, 192.168.0-1/23, 192.168.3/24 */
    CHECK(in(s, "11.255.255.255") && in(s, "10.1.2.3") && !in(s, "12.0.0.0"));
    CHECK(in(s, "192.168.1.255") && !in(s, "192.168.2.0") && in(s, "192.168.3.0"));
    pol_cidr_set_free(s);

    /* The empty set and NULL contain nothing. */
    char err[64];
    s = pol_cidr_set_new(NULL, 0, err, sizeof(err));
    CHECK(s != NULL);
    CHECK(!in(s, "1.2.3.4") && !in(s, "::"));
    pol_cidr_set_free(s);
    pol_ip_t x = ip("1.2.3.4");
    CHECK(!pol_cidr_set_contains(NULL, &x));
}

/* Runs the XFF walk with one or more header values; returns status, client in *out. */
static pol_xff_status_t xff(const pol_cidr_set_t *trusted, const char *peer, const char **vals,
                            size_t n, char *out, pol_str_t *bad)
{
    pol_str_t f[8];
    for (size_t i = 0; i < n; i++)
        f[i] = (pol_str_t){vals[i], strlen(vals[i])};
    pol_ip_t p = ip(peer), c;
    pol_xff_status_t st = pol_xff_client(trusted, &p, f, n, &c, bad);
    pol_ip_format(&c, out, POL_IP_STRLEN);
    return st;
}

static void test_xff(void)
{
    const char *tp[] = {"10.0.0.0/8", "2001:db8:ffff::/48"};
    pol_cidr_set_t *t = set_of(tp, 2);
    char c[POL_IP_STRLEN];
    pol_str_t bad;

    /* Untrusted peer: its XFF is ignored whatever it says (spoofing). */
    const char *spoof[] = {"10.0.0.5, 127.0.0.1"};
    CHECK(xff(t, "198.51.100.9", spoof, 1, c, &bad) == POL_XFF_PEER);
    CHECK_STR(c, "198.51.100.9");

    /* Trusted peer, one hop: the rightmost entry is the client. */
    const char *one[] = {"203.0.113.50"};
    CHECK(xff(t, "10.0.0.1", one, 1, c, &bad) == POL_XFF_FORWARDED);
    CHECK_STR(c, "203.0.113.50");

    /* A client that prepends a fake address: the walk stops at the first untrusted from the
     * right, so the fake one on the left is never reached. */
    const char *fake[] = {"10.9.9.9, 203.0.113.50"};
    CHECK(xff(t, "10.0.0.1", fake, 1, c, &bad) == POL_XFF_FORWARDED);
    CHECK_STR(c, "203.0.113.50");

    /* Chain of trusted proxies: skipped from the right. */
    const char *chain[] = {"198.51.100.1,203.0.113.50 , 10.2.0.1,\t10.3.0.1"};
    CHECK(xff(t, "10.0.0.1", chain, 1, c, &bad) == POL_XFF_FORWARDED);
    CHECK_STR(c, "203.0.113.50");

    /* Several fields are one list, in order. */
    const char *fields[] = {"198.51.100.1, 203.0.113.50", "10.2.0.1", " 10.3.0.1 "};
    CHECK(xff(t, "10.0.0.1", fields, 3, c, &bad) == POL_XFF_FORWARDED);
    CHECK_STR(c, "203.0.113.50");

    /* IPv6 with brackets and ports, IPv4 with a port, mapped peers. */
    const char *v6[] = {"[2001:db8:1::7]:4711, [2001:db8:ffff::1], 10.4.0.1:8080"};
    CHECK(xff(t, "::ffff:10.0.0.1", v6, 1, c, &bad) == POL_XFF_FORWARDED);
    CHECK_STR(c, "2001:db8:1::7");
    const char *v6b[] = {"2001:db8:1::8"};
    CHECK(xff(t, "2001:db8:ffff::2", v6b, 1, c, &bad) == POL_XFF_FORWARDED);
    CHECK_STR(c, "2001:db8:1::8");

    /* Every hop trusted: the leftmost entry. */
    const char *all[] = {"10.7.0.1, 10.8.0.1"};
    CHECK(xff(t, "10.0.0.1", all, 1, c, &bad) == POL_XFF_ALL_TRUSTED);
    CHECK_STR(c, "10.7.0.1");

    /* No XFF, or only empty entries and blanks: the peer. */
    CHECK(xff(t, "10.0.0.1", NULL, 0, c, &bad) == POL_XFF_PEER);
    CHECK_STR(c, "10.0.0.1");
    const char *empty[] = {"", " , ,\t,"};
    CHECK(xff(t, "10.0.0.1", empty, 2, c, &bad) == POL_XFF_PEER);
    CHECK_STR(c, "10.0.0.1");

    /* Malformed entries: the walk stops, the client is the last trusted hop, bad names it. */
    const char *unk[] = {"203.0.113.50, unknown, 10.2.0.1"};
    CHECK(xff(t, "10.0.0.1", unk, 1, c, &bad) == POL_XFF_MALFORMED);
    CHECK_STR(c, "10.2.0.1");
    CHECK(bad.len == 7 && memcmp(bad.p, "unknown", 7) == 0);
    const char *garbage[] = {"1.2.3.4:99999", "[::1",      "::1]:80",
                             "1.2.3.4:",      "[1.2.3.4]", "1.2.3.4 5.6.7.8",
                             "fe80::1%eth0",  "[::1]x",    "1.2.3.4:80:80"};
    for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
        const char *g[] = {garbage[i]};
        if (xff(t, "10.0.0.1", g, 1, c, &bad) != POL_XFF_MALFORMED) {
            fprintf(stderr, "accepted XFF entry %s\n", garbage[i]);
            CHECK(0);
        }
        CHECK_STR(c, "10.0.0.1");
    }
    /* A malformed entry to the left of the client is never reached. */
    const char *left[] = {"garbage, 203.0.113.50"};
    CHECK(xff(t, "10.0.0.1", left, 1, c, &bad) == POL_XFF_FORWARDED);
    CHECK_STR(c, "203.0.113.50");

    /* No trusted set: XFF never used. */
    CHECK(xff(NULL, "10.0.0.1", one, 1, c, &bad) == POL_XFF_PEER);
    CHECK_STR(c, "10.0.0.1");
    pol_cidr_set_free(t);
}

int main(void)
{
    RUN(test_parse_format);
    RUN(test_prefix_errors);
    RUN(test_set_v4);
    RUN(test_set_v6);
    RUN(test_set_merge);
    RUN(test_xff);
    return 0;
}
