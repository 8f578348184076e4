/*
 * tests/unit/policy_acl/test_acl_spiffe.c: identity rules that name SPIFFE IDs (policy/acl.h):
 * an exact node ID, every node of a trust domain (spiffe://TD/node/\*), and a service ID
 * matched against the caller's certificate; SPIFFE patterns never match an identity no
 * certificate proved (a JWT subject that looks like one); deny wins and names the pattern; the
 * pattern checker's errors.
 */
#include "policy/acl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/peer_id.h"
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

/* A call with identity id; mtls: a certificate proved it; cert: the caller's certificate. */
static pol_acl_reason_t check(const pol_acl_t *a, const char *id, int mtls,
                              const mesh_peer_id_t *cert, char *msg, size_t cap)
{
    pol_acl_call_t call = {0};
    CHECK(pol_ip_parse("10.1.2.3", 8, &call.peer) == 0);
    call.identity = (pol_str_t){id, id ? strlen(id) : 0};
    call.identity_mtls = mtls;
    call.cert = cert;
    call.path = (pol_str_t){"/pkg.Orders/Put", 15};
    pol_acl_result_t r;
    pol_acl_reason_t why = pol_acl_check(a, &call, &r);
    if (msg)
        CHECK(pol_acl_format_reason(&call, &r, msg, cap) > 0);
    return why;
}

static void test_peer_id_strings(void)
{
    const char *svcs[] = {"pkg.Orders", "pkg.Billing"};
    mesh_peer_id_t *p = mesh_peer_id_new("mesh.test", "client-1", svcs, 2);
    CHECK(p != NULL);
    CHECK_STR(p->node_uri.p, "spiffe://mesh.test/node/client-1");
    CHECK_EQ(p->node_uri.len, strlen("spiffe://mesh.test/node/client-1"));
    CHECK_STR(p->trust_domain, "mesh.test");
    CHECK_STR(p->node, "client-1");
    CHECK_EQ(p->n_svc, 2);
    CHECK_STR(p->svc[0].p, "spiffe://mesh.test/svc/pkg.Orders");
    CHECK_STR(p->svc[1].p, "spiffe://mesh.test/svc/pkg.Billing");
    CHECK_EQ(p->svc[1].len, strlen("spiffe://mesh.test/svc/pkg.Billing"));
    mesh_peer_id_free(p);
}

static void test_allow_by_spiffe(void)
{
    const char *svcs[] = {"pkg.Orders"};
    mesh_peer_id_t *c1 = mesh_peer_id_new("mesh.test", "client-1", svcs, 1);
    mesh_peer_id_t *c2 = mesh_peer_id_new("mesh.test", "client-2", NULL, 0);
    mesh_peer_id_t *o1 = mesh_peer_id_new("other.test", "client-1", svcs, 1);
    char msg[256];

    /* An exact node ID. */
    pol_acl_config_t c = {0};
    c.allow_identities = LIST("spiffe://mesh.test/node/client-1");
    pol_acl_t *a = build(&c);
    CHECK_EQ(check(a, c1->node_uri.p, 1, c1, NULL, 0), POL_ACL_ALLOWED);
    CHECK_EQ(check(a, c2->node_uri.p, 1, c2, msg, sizeof(msg)), POL_ACL_IDENTITY_NOT_ALLOWED);
    CHECK_STR(msg, "meshd: acl: identity spiffe://mesh.test/node/client-2 not allowed");
    /* Another trust domain is another workload. */
    CHECK_EQ(check(a, o1->node_uri.p, 1, o1, NULL, 0), POL_ACL_IDENTITY_NOT_ALLOWED);
    /* The same string, not proved by a certificate (a JWT sub): not a workload. */
    CHECK_EQ(check(a, "spiffe://mesh.test/node/client-1", 0, NULL, NULL, 0),
             POL_ACL_IDENTITY_NOT_ALLOWED);
    /* Forwarded by a node as src=mtls (no certificate here): still the workload. */
    CHECK_EQ(check(a, "spiffe://mesh.test/node/client-1", 1, NULL, NULL, 0), POL_ACL_ALLOWED);
    CHECK_EQ(check(a, NULL, 0, NULL, NULL, 0), POL_ACL_NO_IDENTITY);
    pol_acl_free(a);

    /* Every node of a trust domain. */
    c.allow_identities = LIST("spiffe://mesh.test/node/*");
    a = build(&c);
    CHECK_EQ(check(a, c1->node_uri.p, 1, c1, NULL, 0), POL_ACL_ALLOWED);
    CHECK_EQ(check(a, c2->node_uri.p, 1, c2, NULL, 0), POL_ACL_ALLOWED);
    CHECK_EQ(check(a, o1->node_uri.p, 1, o1, NULL, 0), POL_ACL_IDENTITY_NOT_ALLOWED);
    CHECK_EQ(check(a, "spiffe://mesh.test/svc/pkg.Orders", 1, NULL, NULL, 0),
             POL_ACL_IDENTITY_NOT_ALLOWED);
    CHECK_EQ(check(a, "spiffe://mesh.test/node/x", 0, NULL, NULL, 0), POL_ACL_IDENTITY_NOT_ALLOWED);
    pol_acl_free(a);

    /* A prefix of node names. */
    c.allow_identities = LIST("spiffe://mesh.test/node/client-*");
    a = build(&c);
    CHECK_EQ(check(a, c1->node_uri.p, 1, c1, NULL, 0), POL_ACL_ALLOWED);
    CHECK_EQ(check(a, "spiffe://mesh.test/node/clientx", 1, NULL, NULL, 0),
             POL_ACL_IDENTITY_NOT_ALLOWED);
    CHECK_EQ(check(a, o1->node_uri.p, 1, o1, NULL, 0), POL_ACL_IDENTITY_NOT_ALLOWED);
    pol_acl_free(a);

    /* A service ID: matched against the caller's certificate. */
    c.allow_identities = LIST("alice", "spiffe://mesh.test/svc/pkg.Orders");
    a = build(&c);
    CHECK_EQ(check(a, c1->node_uri.p, 1, c1, NULL, 0), POL_ACL_ALLOWED);
    CHECK_EQ(check(a, c2->node_uri.p, 1, c2, NULL, 0), POL_ACL_IDENTITY_NOT_ALLOWED);
    CHECK_EQ(check(a, o1->node_uri.p, 1, o1, NULL, 0), POL_ACL_IDENTITY_NOT_ALLOWED);
    /* Without the certificate (the caller is not this peer) the service does not count. */
    CHECK_EQ(check(a, c1->node_uri.p, 1, NULL, NULL, 0), POL_ACL_IDENTITY_NOT_ALLOWED);
    /* Plain patterns keep working beside SPIFFE ones. */
    CHECK_EQ(check(a, "alice", 0, NULL, NULL, 0), POL_ACL_ALLOWED);
    pol_acl_free(a);
    mesh_peer_id_free(c1);
    mesh_peer_id_free(c2);
    mesh_peer_id_free(o1);
}

static void test_deny_by_spiffe(void)
{
    const char *svcs[] = {"pkg.Legacy", "pkg.Orders"};
    mesh_peer_id_t *c1 = mesh_peer_id_new("mesh.test", "client-1", svcs, 2);
    mesh_peer_id_t *c2 = mesh_peer_id_new("mesh.test", "client-2", NULL, 0);
    char msg[256];
    pol_acl_config_t c = {0};
    c.allow_identities = LIST("spiffe://mesh.test/node/*");
    c.deny_identities = LIST("spiffe://mesh.test/svc/pkg.Legacy", "spiffe://mesh.test/node/evil");
    pol_acl_t *a = build(&c);
    /* Deny wins over the allowed node pattern, and the message names identity and pattern. */
    CHECK_EQ(check(a, c1->node_uri.p, 1, c1, msg, sizeof(msg)), POL_ACL_IDENTITY_DENIED);
    CHECK_STR(msg, "meshd: acl: identity spiffe://mesh.test/node/client-1 denied by "
                   "'spiffe://mesh.test/svc/pkg.Legacy'");
    CHECK_EQ(check(a, "spiffe://mesh.test/node/evil", 1, NULL, msg, sizeof(msg)),
             POL_ACL_IDENTITY_DENIED);
    CHECK_STR(msg, "meshd: acl: identity spiffe://mesh.test/node/evil denied by "
                   "'spiffe://mesh.test/node/evil'");
    CHECK_EQ(check(a, c2->node_uri.p, 1, c2, NULL, 0), POL_ACL_ALLOWED);
    pol_acl_free(a);

    c = (pol_acl_config_t){0};
    c.deny_identities = LIST("spiffe://mesh.test/node/*");
    a = build(&c);
    CHECK_EQ(check(a, c2->node_uri.p, 1, c2, msg, sizeof(msg)), POL_ACL_IDENTITY_DENIED);
    CHECK_STR(msg, "meshd: acl: identity spiffe://mesh.test/node/client-2 denied by "
                   "'spiffe://mesh.test/node/*'");
    /* A JWT subject spelled like a node ID is not denied as one (nor allowed as one above). */
    CHECK_EQ(check(a, "spiffe://mesh.test/node/client-2", 0, NULL, NULL, 0), POL_ACL_ALLOWED);
    pol_acl_free(a);
    mesh_peer_id_free(c1);
    mesh_peer_id_free(c2);
}

static void test_pattern_errors(void)
{
    char why[256];
    const char *good[] = {"spiffe://mesh.test/node/a",      "spiffe://mesh.test/node/*",
                          "spiffe://mesh.test/svc/pkg.Svc", "spiffe://mesh.test/svc/*",
                          "spiffe://a-b_c.d/node/N.1_x-y",  "spiffe://mesh.test/node/web-*",
                          "spiffe://mesh.test/svc/pkg.*"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        CHECK_EQ(pol_acl_spiffe_pattern_check(good[i], why, sizeof(why)), 0);
    CHECK_EQ(pol_acl_spiffe_pattern_check("spiffe://Mesh/node/a", why, sizeof(why)), -1);
    CHECK_STR(why, "trust domain 'Mesh' is not 1..255 of a-z 0-9 . _ -");
    CHECK_EQ(pol_acl_spiffe_pattern_check("spiffe://mesh.test/ns/default/sa/x", why, sizeof(why)),
             -1);
    CHECK_CONTAINS(why, "a SPIFFE pattern is spiffe://<trust domain>/node/<node>");
    CHECK_EQ(pol_acl_spiffe_pattern_check("spiffe://mesh.test/node/w*b", why, sizeof(why)), -1);
    CHECK_STR(why, "'w*b' is not a node or service name (1..128 of A-Za-z 0-9 . _ -, or a "
                   "prefix of one and '*')");
    const char *bad[] = {"spiffe://",
                         "spiffe://mesh.test",
                         "spiffe:///node/a",
                         "spiffe://mesh.test/node/",
                         "spiffe://mesh.test/node/a/b",
                         "spiffe://mesh.test/svc/..",
                         "spiffe://mesh.test/node/*/x",
                         "spiffe://mesh.test/node/**",
                         "spiffe://mesh.test/*"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (pol_acl_spiffe_pattern_check(bad[i], why, sizeof(why)) != -1) {
            fprintf(stderr, "accepted %s\n", bad[i]);
            CHECK(0);
        }
    }
    /* pol_acl_new refuses them with the list and the entry. */
    pol_acl_config_t c = {0};
    c.deny_identities = LIST("mallory", "spiffe://mesh.test/pod/x");
    CHECK(pol_acl_new(&c, why, sizeof(why)) == NULL);
    CHECK_CONTAINS(why, "deny_identities entry 2 (\"spiffe://mesh.test/pod/x\"): a SPIFFE pattern");
}

int main(void)
{
    RUN(test_peer_id_strings);
    RUN(test_allow_by_spiffe);
    RUN(test_deny_by_spiffe);
    RUN(test_pattern_errors);
    return 0;
}
