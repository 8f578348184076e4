/*
 * tests/unit/gateway_h1/test_gw_req_headers.c: the request headers the gateway interprets
 * itself: X-Request-Timeout values (seconds with a fraction, Go durations, rounding up, bad
 * values) and the names a --gateway-headers allow-list may hold (forbidden ones refused with
 * the reason).
 */
#include <string.h>

#include "gateway/gw_options.h"
#include "gateway/req_timeout.h"
#include "tests/check.h"

static uint64_t ms_of(const char *v)
{
    uint64_t ms = 0;
    if (gw_req_timeout_parse(v, strlen(v), &ms) < 0)
        return 0;
    return ms;
}

static void test_timeout(void)
{
    CHECK_EQ(ms_of("2"), 2000);
    CHECK_EQ(ms_of("0.25"), 250);
    CHECK_EQ(ms_of(" 1.5 "), 1500);
    CHECK_EQ(ms_of(".5"), 500);
    CHECK_EQ(ms_of("1.5s"), 1500);
    CHECK_EQ(ms_of("200ms"), 200);
    CHECK_EQ(ms_of("1m30s"), 90000);
    CHECK_EQ(ms_of("2h"), 7200000);
    CHECK_EQ(ms_of("1h1m1s1ms"), 3661001);
    CHECK_EQ(ms_of("1500us"), 2);     /* rounded up */
    CHECK_EQ(ms_of("1\xc2\xb5s"), 1); /* never 0 */
    CHECK_EQ(ms_of("1ns"), 1);
    CHECK_EQ(ms_of("0.0015"), 2);
    CHECK_EQ(ms_of("100000000"), 100000000000ull);
    const char *bad[] = {"",    "0",  "0s",  "-1",   "-1s", "1x",        "s",         "1.5.2",
                         "1 s", "1S", "1e3", "soon", "1s-", "100000001", "99999999h", "+1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t ms = 7;
        if (gw_req_timeout_parse(bad[i], strlen(bad[i]), &ms) != -1) {
            fprintf(stderr, "accepted '%s'\n", bad[i]);
            CHECK(0);
        }
        CHECK_EQ(ms, 7);
    }
    /* not NUL-terminated: only len bytes are read */
    uint64_t ms = 0;
    CHECK_EQ(gw_req_timeout_parse("3s100", 2, &ms), 0);
    CHECK_EQ(ms, 3000);
}

static void refused(const char *name, const char *why)
{
    char err[256] = "";
    CHECK_EQ(gw_header_name_check(name, err, sizeof(err)), -1);
    CHECK_CONTAINS(err, why);
}

static void test_allow_list_names(void)
{
    char err[256];
    CHECK_EQ(gw_header_name_check("x-tenant", err, sizeof(err)), 0);
    CHECK_EQ(gw_header_name_check("X-User-Id", err, sizeof(err)), 0);
    CHECK_EQ(gw_header_name_check("cookie", err, sizeof(err)), 0);
    refused(":path", "pseudo-header");
    refused(":authority", "pseudo-header");
    refused("te", "hop-by-hop");
    refused("Connection", "hop-by-hop");
    refused("keep-alive", "hop-by-hop");
    refused("transfer-encoding", "hop-by-hop");
    refused("upgrade", "hop-by-hop");
    refused("proxy-authorization", "hop-by-hop");
    refused("content-type", "written by the gateway");
    refused("host", "written by the gateway");
    refused("grpc-timeout", "grpc-* headers belong to gRPC");
    refused("Grpc-Metadata-X", "Grpc-Metadata-NAME");
    refused("grpc-status", "grpc-*");
    refused("x-request-timeout", "deadline");
    refused("x-forwarded-for", "always passed");
    refused("authorization", "always passed");
    refused("", "empty");
    refused("a b", "not a header name");
    refused("a:b", "not a header name");
    refused("caf\xc3\xa9", "not a header name");
    char longname[128];
    memset(longname, 'x', 101);
    longname[101] = '\0';
    refused(longname, "longer than 100");
}

int main(void)
{
    RUN(test_timeout);
    RUN(test_allow_list_names);
    fprintf(stderr, "ok\n");
    return 0;
}
