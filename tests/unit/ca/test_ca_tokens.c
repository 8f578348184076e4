/*
 * tests/unit/ca/test_ca_tokens.c: the bootstrap token file (ca/ca_tokens.h): comments and
 * blank lines, globs for nodes and services, "-" and "*", constant-time lookup; every error
 * names FILE:LINE.
 */
#include "ca/ca_tokens.h"

#include <string.h>

#include "tests/check.h"

#define T1 "0123456789abcdef-web"
#define T2 "0123456789abcdef-any"
#define T3 "0123456789abcdef-none"

static void test_good(void)
{
    const char *text = "# who may get what\n"
                       "\n" T1 "  web-*   shop.Cart,shop.Order*\r\n"
                       "  \t" T2 "\t*\t*\n" T3 " edge-1 -";
    ca_tokens_t t;
    char err[256];
    CHECK(ca_tokens_parse(&t, "tokens", text, strlen(text), err, sizeof(err)) == 0);
    CHECK_EQ(t.n, 3);
    CHECK_EQ(t.v[0].line, 3);
    CHECK_EQ(t.v[2].n_services, 0);
    const ca_token_t *k = ca_tokens_find(&t, T1, strlen(T1));
    CHECK(k == &t.v[0]);
    CHECK(!ca_tokens_find(&t, T1 "x", strlen(T1) + 1));
    CHECK(!ca_tokens_find(&t, "0123456789abcdef", 16));
    CHECK(!ca_tokens_find(&t, "", 0));
    const char *ok[] = {"shop.Cart", "shop.OrderHistory"};
    CHECK(ca_token_allows(k, "web-1", ok, 2, err, sizeof(err)));
    const char *no[] = {"shop.Cart", "bank.Ledger"};
    CHECK(!ca_token_allows(k, "web-1", no, 2, err, sizeof(err)));
    CHECK_CONTAINS(err, "may not obtain service 'bank.Ledger'");
    CHECK(!ca_token_allows(k, "db-1", NULL, 0, err, sizeof(err)));
    CHECK_CONTAINS(err, "may not obtain node 'db-1' (allowed: web-*)");
    k = ca_tokens_find(&t, T2, strlen(T2));
    CHECK(ca_token_allows(k, "anything", no, 2, err, sizeof(err)));
    k = ca_tokens_find(&t, T3, strlen(T3));
    CHECK(ca_token_allows(k, "edge-1", NULL, 0, err, sizeof(err)));
    CHECK(!ca_token_allows(k, "edge-1", ok, 1, err, sizeof(err)));
    ca_tokens_destroy(&t);
}

static void bad(const char *text, const char *want)
{
    ca_tokens_t t;
    char err[256];
    CHECK(ca_tokens_parse(&t, "tok.txt", text, strlen(text), err, sizeof(err)) == -1);
    CHECK_CONTAINS(err, want);
    CHECK_EQ(t.n, 0);
}

static void test_errors(void)
{
    bad("short n *\n", "tok.txt:1: the token must have 16 to 256 characters");
    bad("# c\n" T1 " n\n", "tok.txt:2: expected 3 fields");
    bad(T1 " n * extra\n", "tok.txt:1: more than 3 fields");
    bad(T1 " n/x *\n", "tok.txt:1: the node pattern");
    bad(T1 " n a,,b\n", "tok.txt:1: a service pattern is empty");
    bad(T1 " n a\n\n" T1 " m b\n", "tok.txt:3: the same token as line 1");
    bad(T1 "\x01 n a\n", "tok.txt:1: the token has a character that is not printable");
    ca_tokens_t t;
    char err[256];
    CHECK(ca_tokens_parse(&t, "z", T1 " n a\n\0x", strlen(T1) + 7, err, sizeof(err)) == -1);
    CHECK_CONTAINS(err, "z:2: a NUL byte");
    /* An empty file is valid (nobody may obtain anything). */
    CHECK(ca_tokens_parse(&t, "e", "", 0, err, sizeof(err)) == 0);
    CHECK_EQ(t.n, 0);
    ca_tokens_destroy(&t);
}

int main(void)
{
    RUN(test_good);
    RUN(test_errors);
    return 0;
}
