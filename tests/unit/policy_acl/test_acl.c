/*
 * tests/unit/policy_acl/test_acl.c: the ACL (policy/acl.h).
 *
 * Covers deny-wins across dimensions, allow lists per dimension and their AND, identity
 * patterns (exact, prefix*, *, no identity), method patterns (exact, whole service, star, leading
 * slash), the client address behind trusted proxies (spoofed XFF ignored, malformed XFF denied or
 * tolerated by configuration), the messages a caller sees, and the build errors.
 */
#include "policy/acl.h"

#include <stdio.h>
#include <string.h>

#include "tests/check.h"

#define LIST(...)                                                                                  \
    (pol_acl_list_t)                                                                               \
    {                                                                                              \
        (const char *const[]){__VA_ARGS__},                                                        \
            sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *)                      \
    }

static pol_acl_t *build(const pol_acl_config_t *c)
{
    char err[256];
    pol_acl_t *a = pol_acl_new(c, err, sizeof(err));
    if (!a) {
        fprintf(stderr, "acl: %s\n", err);
        exit(1);
    }
    return a;
}

/* One call: peer, optional XFF (one field), identity (NULL = none), path. */
static pol_acl_reason_t check(const pol_acl_t *a, const char *peer, const char *xff, const char *id,
                              const char *path, char *msg, size_t cap)
{
    pol_acl_call_t call = {0};
    if (pol_ip_parse(peer, strlen(peer), &call.peer) != 0)
        exit(2);
    pol_str_t f = {xff, xff ? strlen(xff) : 0};
    call.xff = &f;
    call.n_xff = xff ? 1 : 0;
    call.identity = (pol_str_t){id, id ? strlen(id) : 0};
    call.path = (pol_str_t){path, strlen(path)};
    pol_acl_result_t r;
    pol_acl_reason_t why = pol_acl_check(a, &call, &r);
    CHECK(why == r.reason);
    if (msg)
        CHECK(pol_acl_format_reason(&call, &r, msg, cap) > 0);
    return why;
}

#define CALL(a, peer, xff, id, path) check(a, peer, xff, id, path, NULL, 0)

static void test_empty_allows_all(void)
{
    pol_acl_config_t c = {0};
    pol_acl_t *a = build(&c);
    CHECK(CALL(a, "1.2.3.4", NULL, NULL, "/x.Y/Z") == POL_ACL_ALLOWED);
    CHECK(CALL(a, "::1", "9.9.9.9", "bob", "/x.Y/Z") == POL_ACL_ALLOWED);
    pol_acl_free(a);
}

static void test_peers(void)
{
    pol_acl_config_t c = {0};
    c.allow_peers = LIST("10.0.0.0/8", "2001:db8::/32");
    c.deny_peers = LIST("10.6.6.0/24");
    pol_acl_t *a = build(&c);
    char msg[256];
    CHECK(CALL(a, "10.1.2.3", NULL, NULL, "/x.Y/Z") == POL_ACL_ALLOWED);
    CHECK(CALL(a, "::ffff:10.1.2.3", NULL, NULL, "/x.Y/Z") == POL_ACL_ALLOWED);
    CHECK(CALL(a, "2001:db8::5", NULL, NULL, "/x.Y/Z") == POL_ACL_ALLOWED);
    /* Deny wins inside the allowed range. */
    CHECK(check(a, "10.6.6.6", NULL, NULL, "/x.Y/Z", msg, sizeof(msg)) == POL_ACL_PEER_DENIED);
    CHECK_STR(msg, "meshd: acl: peer 10.6.6.6 denied");
    CHECK(check(a, "::ffff:10.6.6.7", NULL, NULL, "/x.Y/Z", msg, sizeof(msg)) ==
          POL_ACL_PEER_DENIED);
    CHECK_STR(msg, "meshd: acl: peer 10.6.6.7 denied");
    CHECK(check(a, "192.0.2.1", NULL, NULL, "/x.Y/Z", msg, sizeof(msg)) ==
          POL_ACL_PEER_NOT_ALLOWED);
    CHECK_STR(msg, "meshd: acl: peer 192.0.2.1 not allowed");
    CHECK(check(a, "2001:db9::1", NULL, NULL, "/x.Y/Z", msg, sizeof(msg)) ==
          POL_ACL_PEER_NOT_ALLOWED);
    CHECK_STR(msg, "meshd: acl: peer 2001:db9::1 not allowed");
    pol_acl_free(a);

    /* Deny list only: everything else is allowed. */
    pol_acl_config_t d = {0};
    d.deny_peers = LIST("192.0.2.0/24");
    a = build(&d);
    CHECK(CALL(a, "192.0.2.9", NULL, NULL, "/x.Y/Z") == POL_ACL_PEER_DENIED);
    CHECK(CALL(a, "192.0.3.9", NULL, NULL, "/x.Y/Z") == POL_ACL_ALLOWED);
    pol_acl_free(a);
}

static void test_identities(void)
{
    pol_acl_config_t c = {0};
    c.allow_identities = LIST("alice", "svc-*", "bob");
    c.deny_identities = LIST("svc-legacy*", "mallory");
    pol_acl_t *a = build(&c);
    char msg[256];
    CHECK(CALL(a, "1.2.3.4", NULL, "alice", "/x.Y/Z") == POL_ACL_ALLOWED);
    CHECK(CALL(a, "1.2.3.4", NULL, "bob", "/x.Y/Z") == POL_ACL_ALLOWED);
    CHECK(CALL(a, "1.2.3.4", NULL, "svc-orders", "/x.Y/Z") == POL_ACL_ALLOWED);
    CHECK(CALL(a, "1.2.3.4", NULL, "svc-", "/x.Y/Z") == POL_ACL_ALLOWED);
    /* Exact means exact. */
    CHECK(CALL(a, "1.2.3.4", NULL, "alicex", "/x.Y/Z") == POL_ACL_IDENTITY_NOT_ALLOWED);
    CHECK(CALL(a, "1.2.3.4", NULL, "alic", "/x.Y/Z") == POL_ACL_IDENTITY_NOT_ALLOWED);
    CHECK(CALL(a, "1.2.3.4", NULL, "Alice", "/x.Y/Z") == POL_ACL_IDENTITY_NOT_ALLOWED);
    CHECK(CALL(a, "1.2.3.4", NULL, "svc", "/x.Y/Z") == POL_ACL_IDENTITY_NOT_ALLOWED);
    /* Deny wins over the allowed prefix. */
    CHECK(check(a, "1.2.3.4", NULL, "svc-legacy-billing", "/x.Y/Z", msg, sizeof(msg)) ==
          POL_ACL_IDENTITY_DENIED);
    CHECK_STR(msg, "meshd: acl: identity svc-legacy-billing denied by 'svc-legacy*'");
    CHECK(check(a, "1.2.3.4", NULL, "mallory", "/x.Y/Z", msg, sizeof(msg)) ==
          POL_ACL_IDENTITY_DENIED);
    CHECK_STR(msg, "meshd: acl: identity mallory denied by 'mallory'");
    CHECK(check(a, "1.2.3.4", NULL, "eve", "/x.Y/Z", msg, sizeof(msg)) ==
          POL_ACL_IDENTITY_NOT_ALLOWED);
    CHECK_STR(msg, "meshd: acl: identity eve not allowed");
    /* No identity fails a configured allow list, with its own reason. */
    CHECK(check(a, "1.2.3.4", NULL, NULL, "/x.Y/Z", msg, sizeof(msg)) == POL_ACL_NO_IDENTITY);
    CHECK_STR(msg, "meshd: acl: no identity (an identity allow list is configured)");
    /* An empty identity is an identity, and not an allowed one. */
    CHECK(CALL(a, "1.2.3.4", NULL, "", "/x.Y/Z") == POL_ACL_IDENTITY_NOT_ALLOWED);
    /* Untrusted bytes are cleaned in messages. */
    CHECK(check(a, "1.2.3.4", NULL, "ev\"e\n", "/x.Y/Z", msg, sizeof(msg)) ==
          POL_ACL_IDENTITY_NOT_ALLOWED);
    CHECK_STR(msg, "meshd: acl: identity ev?e? not allowed");
    pol_acl_free(a);

    /* "*" allows any identity but not the absence of one; "*" in deny denies every identity
     * and lets anonymous calls through (they match no identity pattern). */
    pol_acl_config_t s = {0};
    s.allow_identities = LIST("*");
    a = build(&s);
    CHECK(CALL(a, "1.2.3.4", NULL, "anyone", "/x.Y/Z") == POL_ACL_ALLOWED);
    CHECK(CALL(a, "1.2.3.4", NULL, NULL, "/x.Y/Z") == POL_ACL_NO_IDENTITY);
    pol_acl_free(a);
    pol_acl_config_t ds = {0};
    ds.deny_identities = LIST("*");
    a = build(&ds);
    CHECK(CALL(a, "1.2.3.4", NULL, "anyone", "/x.Y/Z") == POL_ACL_IDENTITY_DENIED);
    CHECK(CALL(a, "1.2.3.4", NULL, NULL, "/x.Y/Z") == POL_ACL_ALLOWED);
    pol_acl_free(a);
}

static void test_methods(void)
{
    pol_acl_config_t c = {0};
    c.allow_methods = LIST("/shop.Cart/*", "shop.Orders/Get", "grpc.health.v1.Health/Check");
    c.deny_methods = LIST("shop.Cart/Drop");
    pol_acl_t *a = build(&c);
    char msg[256];
    CHECK(CALL(a, "1.2.3.4", NULL, NULL, "/shop.Cart/Add") == POL_ACL_ALLOWED);
    CHECK(CALL(a, "1.2.3.4", NULL, NULL, "shop.Cart/Add") == POL_ACL_ALLOWED);
    CHECK(CALL(a, "1.2.3.4", NULL, NULL, "/shop.Orders/Get") == POL_ACL_ALLOWED);
    CHECK(CALL(a, "1.2.3.4", NULL, NULL, "/grpc.health.v1.Health/Check") == POL_ACL_ALLOWED);
    CHECK(check(a, "1.2.3.4", NULL, NULL, "/shop.Cart/Drop", msg, sizeof(msg)) ==
          POL_ACL_METHOD_DENIED);
    CHECK_STR(msg, "meshd: acl: method /shop.Cart/Drop denied");
    CHECK(check(a, "1.2.3.4", NULL, NULL, "/shop.Orders/Put", msg, sizeof(msg)) ==
          POL_ACL_METHOD_NOT_ALLOWED);
    CHECK_STR(msg, "meshd: acl: method /shop.Orders/Put not allowed");
    /* A service is a whole path segment: shop.CartX is not shop.Cart. */
    CHECK(CALL(a, "1.2.3.4", NULL, NULL, "/shop.CartX/Add") == POL_ACL_METHOD_NOT_ALLOWED);
    CHECK(CALL(a, "1.2.3.4", NULL, NULL, "/shop.Car/Add") == POL_ACL_METHOD_NOT_ALLOWED);
    CHECK(CALL(a, "1.2.3.4", NULL, NULL, "/shop.Orders/GetX") == POL_ACL_METHOD_NOT_ALLOWED);
    CHECK(CALL(a, "1.2.3.4", NULL, NULL, "") == POL_ACL_METHOD_NOT_ALLOWED);
    CHECK(CALL(a, "1.2.3.4", NULL, NULL, "/") == POL_ACL_METHOD_NOT_ALLOWED);
    pol_acl_free(a);

    /* "*" denies everything, whatever is allowed. */
    pol_acl_config_t d = {0};
    d.allow_methods = LIST("a.B/*");
    d.deny_methods = LIST("*");
    a = build(&d);
    CHECK(CALL(a, "1.2.3.4", NULL, NULL, "/a.B/C") == POL_ACL_METHOD_DENIED);
    pol_acl_free(a);
}

static void test_dimensions_and(void)
{
    /* Allow lists in two dimensions: both must match; deny in any dimension wins. */
    pol_acl_config_t c = {0};
    c.allow_peers = LIST("10.0.0.0/8");
    c.allow_identities = LIST("alice");
    c.deny_methods = LIST("admin.Ops/*");
    pol_acl_t *a = build(&c);
    CHECK(CALL(a, "10.1.1.1", NULL, "alice", "/x.Y/Z") == POL_ACL_ALLOWED);
    CHECK(CALL(a, "10.1.1.1", NULL, "bob", "/x.Y/Z") == POL_ACL_IDENTITY_NOT_ALLOWED);
    CHECK(CALL(a, "192.0.2.1", NULL, "alice", "/x.Y/Z") == POL_ACL_PEER_NOT_ALLOWED);
    CHECK(CALL(a, "10.1.1.1", NULL, "alice", "/admin.Ops/Reboot") == POL_ACL_METHOD_DENIED);
    /* A deny is reported before an allow-list miss in another dimension. */
    CHECK(CALL(a, "192.0.2.1", NULL, "bob", "/admin.Ops/Reboot") == POL_ACL_METHOD_DENIED);
    pol_acl_free(a);
}

static void test_xff_trust(void)
{
    pol_acl_config_t c = {0};
    c.trusted_proxies = LIST("10.0.0.0/8");
    c.allow_peers = LIST("203.0.113.0/24", "10.0.0.0/8");
    c.deny_peers = LIST("203.0.113.66");
    pol_acl_t *a = build(&c);
    char msg[256];
    /* A client behind a trusted proxy is judged by its own address. */
    CHECK(CALL(a, "10.0.0.1", "203.0.113.5", NULL, "/x.Y/Z") == POL_ACL_ALLOWED);
    CHECK(check(a, "10.0.0.1", "203.0.113.66, 10.0.0.2", NULL, "/x.Y/Z", msg, sizeof(msg)) ==
          POL_ACL_PEER_DENIED);
    CHECK_STR(msg, "meshd: acl: peer 203.0.113.66 denied");
    CHECK(check(a, "10.0.0.1", "198.51.100.7", NULL, "/x.Y/Z", msg, sizeof(msg)) ==
          POL_ACL_PEER_NOT_ALLOWED);
    CHECK_STR(msg, "meshd: acl: peer 198.51.100.7 not allowed");
    /* An untrusted peer cannot launder itself with XFF. */
    CHECK(check(a, "198.51.100.7", "203.0.113.5", NULL, "/x.Y/Z", msg, sizeof(msg)) ==
          POL_ACL_PEER_NOT_ALLOWED);
    CHECK_STR(msg, "meshd: acl: peer 198.51.100.7 not allowed");
    /* Nor escape a deny: the denied peer's XFF is ignored. */
    CHECK(CALL(a, "203.0.113.66", "203.0.113.5", NULL, "/x.Y/Z") == POL_ACL_PEER_DENIED);
    /* Malformed XFF from a trusted proxy: denied by default. */
    CHECK(check(a, "10.0.0.1", "203.0.113.5, unknown", NULL, "/x.Y/Z", msg, sizeof(msg)) ==
          POL_ACL_XFF_MALFORMED);
    CHECK_STR(
        msg, "meshd: acl: malformed X-Forwarded-For entry \"unknown\" from trusted proxy 10.0.0.1");
    pol_acl_free(a);

    /* ... or the last trusted hop is taken as the client, and judged as such. */
    c.xff_malformed = POL_ACL_XFF_USE_LAST_TRUSTED;
    c.allow_peers = LIST("203.0.113.0/24");
    a = build(&c);
    CHECK(check(a, "10.0.0.1", "203.0.113.5, _hidden, 10.0.0.9", NULL, "/x.Y/Z", msg,
                sizeof(msg)) == POL_ACL_PEER_NOT_ALLOWED);
    CHECK_STR(msg, "meshd: acl: peer 10.0.0.9 not allowed");
    pol_acl_free(a);
}

static void test_build_errors(void)
{
    char err[256];
    pol_acl_config_t c = {0};
    c.deny_peers = LIST("10.0.0.0/8", "10.0.0.1/8");
    CHECK(pol_acl_new(&c, err, sizeof(err)) == NULL);
    CHECK_STR(err, "deny_peers prefix 2 (\"10.0.0.1/8\"): 10.0.0.1/8: host bits set after /8 "
                   "(did you mean 10.0.0.0/8?)");

    pol_acl_config_t t = {0};
    t.trusted_proxies = LIST("proxy.local");
    CHECK(pol_acl_new(&t, err, sizeof(err)) == NULL);
    CHECK_CONTAINS(err, "trusted_proxies prefix 1 (\"proxy.local\")");

    pol_acl_config_t i = {0};
    i.allow_identities = LIST("ok", "a*b");
    CHECK(pol_acl_new(&i, err, sizeof(err)) == NULL);
    CHECK_CONTAINS(err, "allow_identities entry 2 (\"a*b\"): '*' may only end a pattern");
    i.allow_identities = LIST("");
    CHECK(pol_acl_new(&i, err, sizeof(err)) == NULL);
    CHECK_STR(err, "allow_identities entry 1 (\"\"): empty identity");
    i.allow_identities = LIST("two words");
    CHECK(pol_acl_new(&i, err, sizeof(err)) == NULL);
    CHECK_CONTAINS(err, "blank or a control byte");

    pol_acl_config_t m = {0};
    m.deny_methods = LIST("pkg.Svc");
    CHECK(pol_acl_new(&m, err, sizeof(err)) == NULL);
    CHECK_STR(err, "deny_methods entry 1 (\"pkg.Svc\"): want \"pkg.Service/Method\", "
                   "\"pkg.Service/*\" or \"*\" (did you mean \"pkg.Svc/*\"?)");
    const char *badm[] = {"pkg.*/M", "pkg.Svc/M*", "/pkg.Svc/", "/", "//M", "a/b/c", "*/M"};
    for (size_t k = 0; k < sizeof(badm) / sizeof(badm[0]); k++) {
        m.deny_methods = (pol_acl_list_t){&badm[k], 1};
        if (pol_acl_new(&m, err, sizeof(err)) != NULL) {
            fprintf(stderr, "accepted method pattern %s\n", badm[k]);
            CHECK(0);
        }
        CHECK_CONTAINS(err, "deny_methods entry 1");
    }
    pol_acl_config_t x = {0};
    x.xff_malformed = 7;
    CHECK(pol_acl_new(&x, err, sizeof(err)) == NULL);
    CHECK_CONTAINS(err, "xff_malformed");
}

static void test_reason_names(void)
{
    CHECK_STR(pol_acl_reason_name(POL_ACL_ALLOWED), "allowed");
    CHECK_STR(pol_acl_reason_name(POL_ACL_PEER_DENIED), "peer_denied");
    CHECK_STR(pol_acl_reason_name(POL_ACL_METHOD_NOT_ALLOWED), "method_not_allowed");
    CHECK_STR(pol_acl_reason_name(POL_ACL_XFF_MALFORMED), "xff_malformed");
}

int main(void)
{
    RUN(test_empty_allows_all);
    RUN(test_peers);
    RUN(test_identities);
    RUN(test_methods);
    RUN(test_dimensions_and);
    RUN(test_xff_trust);
    RUN(test_build_errors);
    RUN(test_reason_names);
    return 0;
}
