/*
 * tests/unit/gossip/test_intern.c: the process-wide interned strings (gossip/intern.h): one
 * copy per distinct text however many swims hold it, freed with its last reference, and the
 * table stays whole while thousands of strings come and go.
 */
#include <stdio.h>
#include <string.h>

#include "gossip/intern.h"
#include "tests/check.h"

static void test_one_copy(void)
{
    size_t before = gsp_intern_count();
    const gsp_istr_t *a = gsp_intern("node-17", 7);
    const gsp_istr_t *b = gsp_intern("node-17:7946", 7); /* the same 7 bytes */
    const gsp_istr_t *c = gsp_intern("node-18", 7);
    CHECK(a && b && c);
    CHECK(a == b);
    CHECK(a != c);
    CHECK_STR(a->s, "node-17");
    CHECK_EQ(a->len, 7);
    CHECK_EQ(a->hash, gsp_intern_hash("node-17", 7));
    CHECK(gsp_istr_of(a->s) == a);
    CHECK_EQ(gsp_intern_count(), before + 2);
    gsp_intern_release(a);
    CHECK_EQ(gsp_intern_count(), before + 2); /* b still holds it */
    gsp_intern_release(b);
    gsp_intern_release(c);
    CHECK_EQ(gsp_intern_count(), before);
    gsp_intern_release(NULL);
}

static void test_many(void)
{
    enum { N = 5000 };
    static const gsp_istr_t *held[N];
    char buf[32];
    for (int i = 0; i < N; i++) {
        int n = snprintf(buf, sizeof buf, "10.0.%d.%d:7946", i / 256, i % 256);
        held[i] = gsp_intern(buf, (size_t)n);
        CHECK(held[i]);
    }
    CHECK_EQ(gsp_intern_count(), N);
    /* drop every other one: the rest are still found (deletion keeps probe chains whole) */
    for (int i = 0; i < N; i += 2)
        gsp_intern_release(held[i]);
    for (int i = 1; i < N; i += 2) {
        int n = snprintf(buf, sizeof buf, "10.0.%d.%d:7946", i / 256, i % 256);
        const gsp_istr_t *again = gsp_intern(buf, (size_t)n);
        CHECK(again == held[i]);
        gsp_intern_release(again);
    }
    for (int i = 1; i < N; i += 2)
        gsp_intern_release(held[i]);
    CHECK_EQ(gsp_intern_count(), 0);
}

int main(void)
{
    RUN(test_one_copy);
    RUN(test_many);
    printf("ok\n");
    return 0;
}
