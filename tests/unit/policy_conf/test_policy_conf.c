/*
 * tests/unit/policy_conf/test_policy_conf.c: reading the `policy:` block
 * (policy/policy_conf.h): a full policy, the defaults, rule matching, and errors with
 * file:line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy_conf.h"
#include "tests/check.h"

static pol_conf_t *parse(const char *y, char *err)
{
    return pol_conf_parse("p.yaml", y, strlen(y), err, 512);
}

static const char full[] = "listen: 0.0.0.0:9090\n"
                           "etcd: [http://127.0.0.1:2379]\n"
                           "policy:\n"
                           "  trace: {enabled: true, access_log: /tmp/a.jsonl, sample: 0.25,\n"
                           "          request-id: create}\n"
                           "  identity:\n"
                           "    header: x-who\n"
                           "    claims: [email, groups]\n"
                           "    mesh-secret-file: /etc/meshd/mesh.key\n"
                           "    ttl: 10s\n"
                           "  jwt:\n"
                           "    jwks-file: /etc/meshd/jwks.json\n"
                           "    issuers: https://issuer.example\n"
                           "    audiences: [a, b]\n"
                           "    algorithms: [RS256, ES256]\n"
                           "    clock-skew: 30s\n"
                           "  ext-authz: {url: 'http://127.0.0.1:8081/check', timeout: 150ms,\n"
                           "              fail-open: yes, forward: [cookie]}\n"
                           "  signature: {secrets-file: /etc/meshd/clients, window: 2m,\n"
                           "              max-body: 64KiB}\n"
                           "  trusted-proxies: [10.0.0.0/8, '::1']\n"
                           "  rules:\n"
                           "    - match: '*'\n"
                           "      authn: jwt\n"
                           "      optional: true\n"
                           "    - match: [pkg.Svc/*, /other.Svc/Get]\n"
                           "      authn: [jwt, ext-authz]\n"
                           "      signature: true\n"
                           "      allow: {peers: [127.0.0.0/8], identities: [alice]}\n"
                           "      deny: {identities: [mallory]}\n"
                           "    - match: pkg.Svc/Hot\n"
                           "      rate-limit: {key: peer, rate: 50}\n";

static void test_full(void)
{
    char err[512] = "";
    pol_conf_t *c = parse(full, err);
    if (!c)
        fprintf(stderr, "%s\n", err);
    CHECK(c && c->present);
    CHECK(c->trace && strcmp(c->access_log, "/tmp/a.jsonl") == 0 && c->access_log_sample == 0.25);
    CHECK(c->request_id_create);
    CHECK(strcmp(c->identity_header, "x-who") == 0 && c->identity_claims.n == 2);
    CHECK(c->mesh_token_ttl_ms == 10000);
    CHECK(c->issuers.n == 1 && c->audiences.n == 2 && c->algorithms.n == 2);
    CHECK(c->clock_skew_ms == 30000);
    CHECK(c->authz_timeout_ms == 150 && c->authz_fail_open == 1 && c->authz_forward.n == 1);
    CHECK(c->sig_window_ms == 120000 && c->sig_max_body == 65536);
    CHECK(c->trusted_proxies.n == 2 && c->n_rules == 3);
    CHECK(c->rules[1].authn == (POL_AUTHN_JWT | POL_AUTHN_EXT_AUTHZ) && c->rules[1].signature);
    CHECK(c->rules[1].allow_peers.n == 1 && c->rules[1].deny_identities.n == 1);
    CHECK(strcmp(c->rules[1].match.v[1], "other.Svc/Get") == 0); /* a leading / is dropped */
    CHECK(c->rules[2].rl_key == POL_RL_PEER && c->rules[2].rl_rate == 50);
    CHECK(c->rules[2].rl_burst == 50);
    CHECK(c->rules[1].line == 26);
    /* Most specific wins. */
    int ex;
    CHECK(pol_conf_match(c, "pkg.Svc", 7, "Hot", 3, &ex) == &c->rules[2] && !ex);
    CHECK(pol_conf_match(c, "pkg.Svc", 7, "Cold", 4, &ex) == &c->rules[1]);
    CHECK(pol_conf_match(c, "other.Svc", 9, "Get", 3, &ex) == &c->rules[1]);
    CHECK(pol_conf_match(c, "other.Svc", 9, "Put", 3, &ex) == &c->rules[0]);
    CHECK(pol_conf_match(c, "pkg.Svcx", 8, "Hot", 3, &ex) == &c->rules[0]);
    CHECK(pol_conf_match(c, "pkg", 3, "Svc", 3, &ex) == &c->rules[0]);
    /* Health and reflection are exempt by default. */
    pol_conf_match(c, "grpc.health.v1.Health", 21, "Check", 5, &ex);
    CHECK(ex);
    pol_conf_match(c, "grpc.reflection.v1alpha.ServerReflection", 40, "ServerReflectionInfo", 20,
                   &ex);
    CHECK(ex);
    pol_conf_free(c);
}

static void test_defaults(void)
{
    char err[512];
    pol_conf_t *c = parse("listen: 127.0.0.1:1\n", err);
    CHECK(c && !c->present && c->trace && !c->request_id_create && c->n_rules == 0 &&
          c->exempt.n == 3);
    int ex;
    CHECK(pol_conf_match(c, "a.B", 3, "C", 1, &ex) == NULL && !ex);
    pol_conf_free(c);
    c = parse("", err); /* an empty file */
    CHECK(c && !c->present);
    pol_conf_free(c);
}

/* The error for y must contain want. */
static void bad(const char *y, const char *want)
{
    char err[512] = "";
    pol_conf_t *c = parse(y, err);
    if (c || !strstr(err, want))
        fprintf(stderr, "for:\n%s\ngot: %s\nwant: %s\n", y, c ? "(accepted)" : err, want);
    CHECK(!c && strstr(err, want));
}

static void test_errors(void)
{
    bad("policy:\n  nope: 1\n", "p.yaml:2: policy.nope: unknown key");
    bad("policy:\n  jwt:\n    jwks-file: f\n    skew: 1s\n",
        "p.yaml:4: policy.jwt.skew: unknown key");
    bad("policy:\n  jwt: {clock-skew: soon}\n",
        "p.yaml:2: policy.jwt.clock-skew: 'soon' is not a duration");
    bad("policy:\n  trace: {sample: 2}\n", "policy.trace.sample: a share between 0 and 1");
    bad("policy:\n  trace: {request-id: always}\n",
        "p.yaml:2: policy.trace.request-id: 'always' is neither reuse nor create");
    bad("policy:\n  rules:\n    - authn: jwt\n", "p.yaml:3: policy.rules[0]: a rule needs match:");
    bad("policy:\n  rules:\n    - match: pkg.Svc\n", "'pkg.Svc': expected pkg.Service/Method");
    bad("policy:\n  rules:\n    - match: 'a.B/C*'\n", "'a.B/C*': expected");
    bad("policy:\n  rules:\n    - match: '*'\n      authn: saml\n",
        "p.yaml:4: policy.rules[0].authn: 'saml': expected jwt, ext-authz or none");
    bad("policy:\n  rules:\n    - match: '*'\n      authn: jwt\n",
        "p.yaml:3: policy.rules[0]: authn: jwt needs jwt.jwks-file or jwt.jwks-url");
    bad("policy:\n  rules:\n    - match: '*'\n      signature: true\n",
        "signature: true needs signature.secrets-file");
    bad("policy:\n  rules:\n    - match: '*'\n    - match: [a.B/*, '*']\n",
        "p.yaml:4: policy.rules[1]: '*' is matched by the rule at line 3 already");
    bad("policy:\n  rules:\n    - match: '*'\n      rate-limit: {key: ip, rate: 5}\n",
        "'ip': expected peer, identity or method");
    bad("policy:\n  rules:\n    - match: '*'\n      rate-limit: {key: peer}\n",
        "a rate is required");
    bad("policy:\n  rules:\n    - match: '*'\n      rate-limit: {rate: -1}\n",
        "not a positive number");
    bad("policy:\n  ext-authz: {url: ftp://x}\n", "is not an http:// or https:// URL");
    bad("policy:\n  rules: {match: '*'}\n", "policy.rules: expected a list of rules");
    bad("policy:\n  jwt: [a]\n", "policy.jwt: expected a mapping");
    bad("policy:\n  jwt: {audiences: {a: 1}}\n",
        "policy.jwt.audiences: expected a value or a list");
    bad("policy:\n  rules:\n   - match: '*'\n  - x\n", "p.yaml:");
    bad("policy:\n  exempt: [nope]\n", "policy.exempt: 'nope': expected");
    /* Identity rules of SPIFFE form: each bad entry names its own line. */
    bad("policy:\n  rules:\n    - match: '*'\n      allow:\n        identities:\n"
        "          - alice\n          - spiffe://Mesh.Test/node/a\n",
        "p.yaml:7: policy.rules[0].allow.identities: 'spiffe://Mesh.Test/node/a': trust domain "
        "'Mesh.Test' is not 1..255 of a-z 0-9 . _ -");
    bad("policy:\n  rules:\n    - match: '*'\n      deny: {identities: 'spiffe://m/ns/x/sa/y'}\n",
        "p.yaml:4: policy.rules[0].deny.identities: 'spiffe://m/ns/x/sa/y': a SPIFFE pattern is "
        "spiffe://<trust domain>/node/<node>");
    bad("policy:\n  rules:\n    - match: '*'\n      allow: {identities: [a, "
        "'spiffe://m/node/w*b']}\n",
        "p.yaml:4: policy.rules[0].allow.identities: 'spiffe://m/node/w*b': 'w*b' is not a "
        "node or service name");
}

/* identity.forwarders: node patterns only, errors on the entry's line. */
static void test_forwarders(void)
{
    char err[512] = "";
    pol_conf_t *c =
        parse("policy:\n  identity:\n    forwarders: ['spiffe://mesh.test/node/proxy-*',"
              " 'spiffe://mesh.test/node/gw']\n",
              err);
    CHECK(c && c->identity_forwarders.n == 2);
    pol_conf_free(c);
    bad("policy:\n  identity:\n    forwarders:\n      - spiffe://mesh.test/node/gw\n"
        "      - spiffe://mesh.test/svc/pkg.Svc\n",
        "p.yaml:5: policy.identity.forwarders: 'spiffe://mesh.test/svc/pkg.Svc': expected a "
        "node's SPIFFE ID");
    bad("policy:\n  identity: {forwarders: proxy}\n",
        "p.yaml:2: policy.identity.forwarders: 'proxy': expected a node's SPIFFE ID");
    bad("policy:\n  identity: {forwarders: ['spiffe://MESH/node/a']}\n",
        "p.yaml:2: policy.identity.forwarders: 'spiffe://MESH/node/a': trust domain 'MESH'");
}

/* SPIFFE identity rules load, beside plain ones. */
static void test_spiffe_rules(void)
{
    char err[512] = "";
    pol_conf_t *c = parse("policy:\n  rules:\n    - match: pkg.Orders/*\n      allow:\n"
                          "        identities: [alice, 'spiffe://mesh.test/node/*',\n"
                          "                     'spiffe://mesh.test/svc/pkg.Billing']\n"
                          "      deny: {identities: 'spiffe://mesh.test/node/evil'}\n",
                          err);
    if (!c)
        fprintf(stderr, "%s\n", err);
    CHECK(c != NULL);
    CHECK(c->n_rules == 1);
    CHECK(c->rules[0].allow_identities.n == 3);
    CHECK(!strcmp(c->rules[0].allow_identities.v[1], "spiffe://mesh.test/node/*"));
    CHECK(c->rules[0].deny_identities.n == 1);
    pol_conf_free(c);
}

int main(void)
{
    test_full();
    test_defaults();
    test_errors();
    test_spiffe_rules();
    test_forwarders();
    fprintf(stderr, "ok\n");
    return 0;
}
