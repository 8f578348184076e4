/*
 * tests/unit/gossip/test_cert_set.c: certificates as content-addressed sets (gossip/cert_set.h).
 *
 * A certificate cut into names reads back to the same bytes in any order of the names, and its
 * hash is the method-set hash of the names (what WANT asks for); a missing, repeated or foreign
 * chunk, bad base64 and a short middle chunk are refused; sizes at the bounds.
 */
#include "gossip/cert_set.h"

#include <stdlib.h>
#include <string.h>

#include "tests/check.h"

static uint8_t der[GSP_CERT_MAX + 1], back[GSP_CERT_MAX];

static void test_round_trip(void)
{
    for (size_t i = 0; i < sizeof(der); i++)
        der[i] = (uint8_t)(i * 31 + 7);
    static const size_t sizes[] = {1,   GSP_CERT_CHUNK - 1, GSP_CERT_CHUNK, GSP_CERT_CHUNK + 1,
                                   600, GSP_CERT_MAX};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        gsp_cert_set_t cs;
        CHECK(gsp_cert_set_make(&cs, der, sizes[k]) == 0);
        CHECK(cs.n == (sizes[k] + GSP_CERT_CHUNK - 1) / GSP_CERT_CHUNK);
        CHECK(cs.hash == gsp_meta_set_hash((const char *const *)cs.names, cs.n));
        for (size_t i = 0; i < cs.n; i++)
            CHECK(strlen(cs.names[i]) <= GSP_FIELD_MAX); /* a set name's limit on the wire */
        /* reversed order: a set travels sorted, not in our order */
        const char *rev[GSP_CERT_SET_NAMES];
        for (size_t i = 0; i < cs.n; i++)
            rev[i] = cs.names[cs.n - 1 - i];
        CHECK(gsp_cert_set_read(rev, cs.n, back, sizeof(back)) == (long)sizes[k]);
        CHECK(!memcmp(back, der, sizes[k]));
        CHECK(gsp_cert_set_read(rev, cs.n, back, sizes[k] - 1) == -1); /* no room */
        gsp_cert_set_destroy(&cs);
    }
    gsp_cert_set_t cs;
    CHECK(gsp_cert_set_make(&cs, der, GSP_CERT_MAX + 1) == -1 && cs.n == 0);
    CHECK(gsp_cert_set_make(&cs, der, 0) == -1);
}

static void test_refused(void)
{
    gsp_cert_set_t cs;
    CHECK(gsp_cert_set_make(&cs, der, 600) == 0 && cs.n == 4);
    const char *v[8];
    /* a chunk missing */
    v[0] = cs.names[0], v[1] = cs.names[1], v[2] = cs.names[3];
    CHECK(gsp_cert_set_read(v, 3, back, sizeof(back)) == -1);
    /* a chunk twice */
    v[0] = cs.names[0], v[1] = cs.names[1], v[2] = cs.names[1], v[3] = cs.names[3];
    CHECK(gsp_cert_set_read(v, 4, back, sizeof(back)) == -1);
    /* a method name among them (an ordinary method set is no certificate) */
    v[0] = "/shop.Cart/Add";
    CHECK(gsp_cert_set_read(v, 1, back, sizeof(back)) == -1);
    /* bad base64, and a short chunk before the last */
    v[0] = "x509:00:@@@@";
    CHECK(gsp_cert_set_read(v, 1, back, sizeof(back)) == -1);
    v[0] = "x509:00:AAAA", v[1] = cs.names[1];
    CHECK(gsp_cert_set_read(v, 2, back, sizeof(back)) == -1);
    CHECK(gsp_cert_set_read(v, 0, back, sizeof(back)) == -1);
    gsp_cert_set_destroy(&cs);
}

int main(void)
{
    RUN(test_round_trip);
    RUN(test_refused);
    return 0;
}
