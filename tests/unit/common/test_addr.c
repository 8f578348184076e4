/*
 * tests/unit/common/test_addr.c: the one address module agrees with itself: every form is
 * parsed the same way by the splitter, the numeric parser and the resolver, a bare IPv6
 * address without brackets is refused by all three, and formatting gives back what parsing
 * took.
 */
#include <arpa/inet.h>
#include <string.h>

#include "common/addr.h"
#include "tests/check.h"

static void test_forms(void)
{
    char host[64], buf[80], err[160];
    int port;
    mesh_addr_t a;
    struct sockaddr_storage ss;

    CHECK(mesh_addr_split("10.1.2.3:80", host, sizeof(host), &port) == 0);
    CHECK_STR(host, "10.1.2.3");
    CHECK_EQ(port, 80);
    CHECK(mesh_addr_parse("10.1.2.3:80", &a) == 0);
    CHECK(mesh_addr_str(&a, buf, sizeof(buf)) == 0);
    CHECK_STR(buf, "10.1.2.3:80");
    /* IPv4 is formatted by hand (once per gossip datagram): the extremes, and a buffer one
     * byte short fails rather than truncating */
    CHECK(mesh_addr_parse("0.0.0.0:0", &a) == 0);
    CHECK(mesh_addr_str(&a, buf, sizeof(buf)) == 0);
    CHECK_STR(buf, "0.0.0.0:0");
    CHECK(mesh_addr_parse("255.255.255.255:65535", &a) == 0);
    CHECK(mesh_addr_str(&a, buf, sizeof(buf)) == 0);
    CHECK_STR(buf, "255.255.255.255:65535");
    CHECK(mesh_addr_str(&a, buf, strlen("255.255.255.255:65535") + 1) == 0);
    CHECK(mesh_addr_str(&a, buf, strlen("255.255.255.255:65535")) == -1);
    CHECK(mesh_addr_parse("192.168.10.200:7946", &a) == 0);
    CHECK(mesh_addr_str(&a, buf, sizeof(buf)) == 0);
    CHECK_STR(buf, "192.168.10.200:7946");

    CHECK(mesh_addr_split("[::1]:9090", host, sizeof(host), &port) == 0);
    CHECK_STR(host, "::1");
    CHECK(mesh_addr_parse("[::1]:9090", &a) == 0);
    CHECK(mesh_addr_str(&a, buf, sizeof(buf)) == 0);
    CHECK_STR(buf, "[::1]:9090");
    CHECK(mesh_addr_resolve("[::1]:9090", &ss, err, sizeof(err)) == 0);
    CHECK_EQ(ss.ss_family, AF_INET6);

    /* A bare IPv6 address: which colon starts the port? Refused everywhere. */
    CHECK(mesh_addr_split("::1:80", host, sizeof(host), &port) == -1);
    CHECK(mesh_addr_parse("::1:80", &a) == -1);
    CHECK(mesh_addr_resolve("::1:80", &ss, err, sizeof(err)) == -1);
    CHECK(mesh_addr_parse("fe80::1:443", &a) == -1);

    /* Names are for the resolver, not the numeric parser. */
    CHECK(mesh_addr_parse("localhost:80", &a) == -1);
    CHECK(mesh_addr_resolve("localhost:80", &ss, err, sizeof(err)) == 0);

    /* Every address of a name, once each, the port on each; a numeric form is one; the cap
     * holds; a name that does not resolve says so. */
    struct sockaddr_storage all[8];
    int n = mesh_addr_resolve_all("localhost:7946", all, 8, err, sizeof(err));
    CHECK(n >= 1);
    int has_v4 = 0;
    for (int i = 0; i < n; i++) {
        mesh_addr_format((const struct sockaddr *)&all[i], buf, sizeof(buf));
        has_v4 |= !strcmp(buf, "127.0.0.1:7946");
        CHECK(strstr(buf, ":7946") != NULL);
        for (int j = 0; j < i; j++)
            CHECK(memcmp(&all[i], &all[j], sizeof(all[i])) != 0);
    }
    CHECK(has_v4);
    CHECK_EQ(mesh_addr_resolve_all("10.1.2.3:7946", all, 8, err, sizeof(err)), 1);
    CHECK_EQ(mesh_addr_resolve_all("localhost:7946", all, 1, err, sizeof(err)), 1);
    CHECK_EQ(mesh_addr_resolve_all("no-such-host.invalid:7946", all, 8, err, sizeof(err)), -1);
    CHECK(strstr(err, "cannot resolve 'no-such-host.invalid'") != NULL);
    CHECK_EQ(mesh_addr_resolve_all("localhost:7946", all, 0, err, sizeof(err)), -1);

    /* Malformed ports and missing parts. */
    const char *bad[] = {"10.0.0.1", "10.0.0.1:", "10.0.0.1:x", "10.0.0.1:65536", "[::1]80",
                         "[::1",     ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK(mesh_addr_split(bad[i], host, sizeof(host), &port) == -1);
        CHECK(mesh_addr_parse(bad[i], &a) == -1);
    }

    /* ":80" is a listen address (all interfaces) for the resolver. */
    CHECK(mesh_addr_resolve(":80", &ss, err, sizeof(err)) == 0);
    CHECK_EQ(ss.ss_family, AF_INET);
}

static void test_compare(void)
{
    mesh_addr_t a, b, c;
    CHECK(mesh_addr_parse("127.0.0.1:1", &a) == 0);
    CHECK(mesh_addr_parse("127.0.0.1:2", &b) == 0);
    CHECK(mesh_addr_parse("[::1]:1", &c) == 0);
    CHECK(mesh_addr_same_host(&a, &b) && !mesh_addr_equal(&a, &b));
    CHECK(!mesh_addr_same_host(&a, &c));
    CHECK(mesh_addr_equal(&a, &a));
}

int main(void)
{
    RUN(test_forms);
    RUN(test_compare);
    printf("ok\n");
    return 0;
}
