/*
 * tests/unit/route_conf/test_route_conf.c: reading the `routes:` block (policy/route_conf.h):
 * a full block, the defaults, the most specific rule winning, the errors a person gets
 * (file:line, the key, what is wrong), the fault decision (policy/fault.h) at its rates, and
 * per-service upstream TLS (its context made from files by tests/tls/mkcerts.sh, and refused with
 * the rule's line when a file is bad).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy/fault.h"
#include "policy/route_conf.h"
#include "tests/check.h"
#include "transport/grpc_status.h"
#include "transport/tls_holder.h"

static pol_routes_conf_t *parse(const char *y, char *err)
{
    return pol_routes_parse("r.yaml", y, strlen(y), err, 512);
}

static const char full[] = "listen: 0.0.0.0:9090\n"
                           "routes:\n"
                           "  retry-budget: {ratio: 0.1, min-per-second: 4}\n"
                           "  rules:\n"
                           "    - match: '*'\n"
                           "      retry: {max-attempts: 2}\n"
                           "    - match: [pkg.Svc/*, other.Svc/Get]\n"
                           "      idempotent: true\n"
                           "      retry:\n"
                           "        max-attempts: 9\n"
                           "        initial-backoff: 10ms\n"
                           "        max-backoff: 2s\n"
                           "        backoff-multiplier: 1.5\n"
                           "        retryable-status: [UNAVAILABLE, 8, ABORTED]\n"
                           "      per-try-timeout: 300ms\n"
                           "    - match: pkg.Svc/Slow\n"
                           "      idempotent: yes\n"
                           "      hedging: {max-attempts: 2, delay: 20ms}\n"
                           "      fault:\n"
                           "        abort: {status: UNAVAILABLE, percent: 12.5}\n"
                           "        delay: {duration: 1s, percent: 5}\n"
                           "        header: x-chaos\n";

static void test_full(void)
{
    char err[512] = "";
    pol_routes_conf_t *c = parse(full, err);
    if (!c)
        fprintf(stderr, "%s\n", err);
    CHECK(c && c->present && c->n_rules == 3);
    CHECK(c->budget.ratio == 0.1 && c->budget.min_per_s == 4);
    const pol_route_rule_t *r = &c->rules[0];
    CHECK(r->has_retry && r->retry.max_attempts == 2 && !r->retry.idempotent);
    CHECK(r->retry.retryable == 1u << MESH_GRPC_UNAVAILABLE); /* the default list */
    CHECK_EQ(r->retry.initial_backoff_ms, 50);
    r = &c->rules[1];
    CHECK(r->n_match == 2 && r->retry.idempotent && r->line == 7);
    CHECK_EQ(r->retry.max_attempts, 5); /* capped as gRPC does */
    CHECK_EQ(r->retry.initial_backoff_ms, 10);
    CHECK_EQ(r->retry.max_backoff_ms, 2000);
    CHECK(r->retry.backoff_multiplier == 1.5);
    CHECK_EQ(r->retry.retryable, (1u << 14) | (1u << 8) | (1u << 10));
    CHECK_EQ(r->retry.per_try_timeout_ms, 300);
    r = &c->rules[2];
    CHECK(!r->has_retry && r->retry.max_attempts == 1);
    CHECK(r->retry.hedge_max_attempts == 2 && r->retry.hedge_delay_ms == 20);
    CHECK(r->has_fault && r->fault.abort_status == MESH_GRPC_UNAVAILABLE);
    CHECK(r->fault.abort_percent == 12.5 && r->fault.delay_ms == 1000);
    CHECK(r->fault.delay_percent == 5);
    CHECK_STR(r->fault.header, "x-chaos");

    /* the most specific rule applies */
    CHECK(pol_routes_match(c, "pkg.Svc", 7, "Slow", 4) == &c->rules[2]);
    CHECK(pol_routes_match(c, "pkg.Svc", 7, "Fast", 4) == &c->rules[1]);
    CHECK(pol_routes_match(c, "other.Svc", 9, "Get", 3) == &c->rules[1]);
    CHECK(pol_routes_match(c, "other.Svc", 9, "Put", 3) == &c->rules[0]);
    CHECK(pol_routes_match(c, "pkg.Sv", 6, "Slow", 4) == &c->rules[0]);

    json_t *j = pol_routes_describe(c);
    char *s = json_dumps(j, JSON_COMPACT);
    CHECK_CONTAINS(s, "\"retryable_status\":[\"RESOURCE_EXHAUSTED\",\"ABORTED\",\"UNAVAILABLE\"]");
    CHECK_CONTAINS(s, "\"fault\":{\"abort\":{\"status\":\"UNAVAILABLE\",\"percent\":12.5}");
    CHECK_CONTAINS(s, "\"retry_budget\":{\"ratio\":0.1");
    free(s);
    json_decref(j);
    pol_routes_free(c);
}

static void test_defaults(void)
{
    char err[512] = "";
    pol_routes_conf_t *c = parse("listen: 1.2.3.4:5\n", err);
    CHECK(c && !c->present && c->n_rules == 0);
    CHECK(c->budget.ratio == 0.2 && c->budget.min_per_s == 10); /* Linkerd's */
    CHECK(pol_routes_match(c, "a.B", 3, "C", 1) == NULL);
    pol_routes_free(c);
    c = parse("routes:\n", err);
    CHECK(c && c->present && c->n_rules == 0);
    pol_routes_free(c);
}

/* Each bad block fails with r.yaml:LINE: routes.KEY: and a hint. */
static void bad(const char *yaml, const char *want)
{
    char err[512] = "";
    pol_routes_conf_t *c = parse(yaml, err);
    if (c)
        fprintf(stderr, "accepted: %s\n", yaml);
    CHECK(!c);
    CHECK_CONTAINS(err, want);
}

static void test_errors(void)
{
    bad("routes:\n  rules:\n    - match: pkg.Svc/*\n      retry: {max-attempts: 3, foo: 1}\n",
        "r.yaml:4: routes.rules[0].retry.foo: unknown key");
    bad("routes:\n  rules:\n    - match: pkg.Svc/*\n      retry: {initial-backoff: 1s}\n",
        "r.yaml:4: routes.rules[0].retry: max-attempts is required");
    bad("routes:\n  rules:\n    - match: pkg.Svc/*\n      retry:\n        max-attempts: 2\n"
        "        retryable-status: [UNAVAILABLE, NOPE]\n",
        "r.yaml:6: routes.rules[0].retry.retryable-status: 'NOPE' is not a gRPC status");
    /* a key given twice (YAML parsers accept it; the second would silently win) */
    bad("routes:\n  rules:\n    - match: pkg.Svc/*\n      fault: {abort: {status: 14, percent: "
        "1}}\n"
        "      fault: {abort: {status: 14, percent: 2}}\n",
        "r.yaml:5: routes.rules[0].fault: given twice in one rule");
    bad("routes:\n  rules:\n    - match: a.B/*\n  rules:\n    - match: c.D/*\n",
        "r.yaml:4: routes.rules: given twice");
    bad("routes:\n  rules:\n    - match: pkg.Svc/*\n      per-try-timeout: soon\n",
        "r.yaml:4: routes.rules[0].per-try-timeout: 'soon' is not a duration");
    bad("routes:\n  rules:\n    - match: pkg/Svc/X\n",
        "r.yaml:3: routes.rules[0].match: 'pkg/Svc/X'");
    bad("routes:\n  rules:\n    - idempotent: true\n",
        "r.yaml:3: routes.rules[0]: match is required");
    bad("routes:\n  rules:\n    - match: a.B/C\n      hedging: {max-attempts: 2, delay: 5ms}\n",
        "r.yaml:3: routes.rules[0]: hedging needs idempotent: true");
    bad("routes:\n  rules:\n    - match: a.B/C\n      fault: {abort: {status: OK}}\n",
        "r.yaml:4: routes.rules[0].fault.abort.status: 'OK' is not a gRPC error status");
    bad("routes:\n  rules:\n    - match: a.B/C\n      fault: {delay: {duration: 1s, percent: "
        "101}}\n",
        "routes.rules[0].fault.delay.percent: '101' is not a number from 0 to 100");
    bad("routes:\n  rules:\n    - match: a.B/C\n      fault: {header: X-Up}\n",
        "routes.rules[0].fault.header: 'X-Up' is not a lower-case header name");
    bad("routes:\n  retry-budget: {ratio: -1}\n", "r.yaml:2: routes.retry-budget.ratio:");
    bad("routes:\n  rulez: []\n", "r.yaml:2: routes.rulez: unknown key");
    bad("routes:\n  rules:\n    - match: a.B/*\n      outlier: {failure-percent: {threshold: 0}}\n",
        "r.yaml:4: routes.rules[0].outlier.failure-percent.threshold: '0' is not a number from 1 "
        "to 100");
    bad("routes:\n  rules:\n    - match: a.B/*\n      outlier: {success-rate: {hosts: 3}}\n",
        "r.yaml:4: routes.rules[0].outlier.success-rate.hosts: unknown key (stdev-factor, "
        "min-hosts, volume, enabled)");
    bad("routes:\n  rules:\n    - match: a.B/*\n      connect-timeout: soon\n",
        "r.yaml:4: routes.rules[0].connect-timeout: 'soon' is not a duration (50ms, 1s, 2m)");
    bad("routes:\n  rules:\n    - match: a.B/*\n      connect-timeout: 0ms\n",
        "r.yaml:4: routes.rules[0].connect-timeout: a connect timeout from 1ms to 10m");
    bad("routes:\n  rules:\n    - match: a.B/C\n      connect-timeout: 1s\n",
        "r.yaml:3: routes.rules[0]: balancer, outlier, connect-timeout and upstream-tls are per "
        "service: match "
        "'a.B/C' is a method");
    bad("routes:\n  rules:\n    - match: a.B/*\n      balancer: p2c\n",
        "r.yaml:4: routes.rules[0].balancer: expected a mapping");
    bad("routes:\n  rules:\n    - match: a.B/*\n      balancer: {policy: random}\n",
        "r.yaml:4: routes.rules[0].balancer.policy: 'random' is not p2c or round-robin");
    bad("routes:\n  rules:\n    - match: [a.B/*, a.B/C]\n      balancer: {policy: p2c}\n",
        "r.yaml:3: routes.rules[0]: balancer, outlier, connect-timeout and upstream-tls are per "
        "service: match "
        "'a.B/C' is a "
        "method");
    bad("routes:\n  rules:\n    - match: a.B/*\n      balancer:\n        subsets:\n"
        "          - {header: x-canary, value: '1'}\n",
        "r.yaml:6: routes.rules[0].balancer.subsets[0]: header, value and version (or zone) are "
        "required");
    bad("routes:\n  rules:\n    - match: a.B/*\n      balancer:\n        subsets:\n"
        "          - {header: X-Canary, value: '1', version: v2}\n",
        "r.yaml:6: routes.rules[0].balancer.subsets[0].header: 'X-Canary' is not a lower-case");
    bad("routes:\n  rules:\n    - match: a.B/*\n      balancer: {zone-affinity: maybe}\n",
        "r.yaml:4: routes.rules[0].balancer.zone-affinity: expected true or false");
    bad("routes:\n  rules:\n    - match: '*'\n      outlier: {consecutive: 0}\n",
        "r.yaml:4: routes.rules[0].outlier.consecutive: '0' is not a number from 1 to 1000");
    bad("routes:\n  rules:\n    - match: '*'\n      outlier: {max-ejection-percent: 150}\n",
        "routes.rules[0].outlier.max-ejection-percent: '150' is not a number from 1 to 100");
    bad("routes:\n  rules:\n    - match: '*'\n      outlier: {base-ejection: 10s, max-ejection: "
        "5s}\n",
        "r.yaml:4: routes.rules[0].outlier: max-ejection is below base-ejection");
    bad("routes:\n  rules:\n    - match: '*'\n      outlier: {eject: 1}\n",
        "r.yaml:4: routes.rules[0].outlier.eject: unknown key (consecutive");
    bad("routes: [1\n", "r.yaml:");
}

/* balancer and outlier: per service, chosen by the most specific service-wide rule, whole. */
static void test_service_settings(void)
{
    static const char y[] = "routes:\n"
                            "  rules:\n"
                            "    - match: '*'\n"
                            "      outlier: {consecutive: 3, base-ejection: 5s,\n"
                            "                failure-percent: {threshold: 60, min-volume: 20},\n"
                            "                success-rate: {stdev-factor: 1.5, volume: 30}}\n"
                            "    - match: pkg.Svc/*\n"
                            "      balancer:\n"
                            "        policy: round-robin\n"
                            "        zone-affinity: false\n"
                            "        subsets:\n"
                            "          - {header: x-canary, value: '1', version: v2}\n"
                            "          - {header: x-zone, value: b, zone: zb}\n"
                            "      outlier: {enabled: false}\n"
                            "      connect-timeout: 250ms\n"
                            "    - match: pkg.Svc/Get\n"
                            "      retry: {max-attempts: 2}\n"
                            "    - match: plain.Svc/*\n"
                            "      idempotent: true\n";
    char err[512] = "";
    pol_routes_conf_t *c = parse(y, err);
    if (!c)
        fprintf(stderr, "%s\n", err);
    CHECK(c && c->has_svc && !c->has_fault);
    const pol_route_rule_t *r = pol_routes_match_service(c, "pkg.Svc", 7);
    CHECK(r == &c->rules[1] && r->svc);
    CHECK(r->svc->has_lb_policy && r->svc->lb.policy == MESH_LB_ROUND_ROBIN);
    CHECK(r->svc->zone_affinity == 0 && r->svc->has_subsets && r->svc->lb.n_subsets == 2);
    CHECK(!strcmp(r->svc->lb.subsets[0].header, "x-canary"));
    CHECK(!strcmp(r->svc->lb.subsets[0].want, "v2"));
    CHECK(r->svc->lb.subsets[1].by == MESH_LB_BY_ZONE);
    CHECK(r->svc->has_outlier && r->svc->outlier.disabled);
    CHECK_EQ(r->svc->connect_timeout_ms, 250);
    /* an exact rule never sets the service's: pkg.Svc/Get's calls still balance by rules[1] */
    CHECK(pol_routes_match(c, "pkg.Svc", 7, "Get", 3) == &c->rules[2]);
    CHECK(pol_routes_match_service(c, "pkg.Svc", 7) == &c->rules[1]);
    /* "*" for a service without its own rule; a service-wide rule without the keys: defaults */
    r = pol_routes_match_service(c, "other.Svc", 9);
    CHECK(r == &c->rules[0] && r->svc && r->svc->has_outlier && !r->svc->has_lb_policy);
    CHECK_EQ(r->svc->outlier.consecutive, 3);
    CHECK_EQ(r->svc->outlier.base_ejection_ms, 5000);
    CHECK(r->svc->has_failure_pct && r->svc->olw.threshold_pct == 60 &&
          r->svc->olw.min_volume == 20);
    CHECK(r->svc->has_success_rate && r->svc->olsr.enabled && r->svc->olsr.stdev_factor == 1.5 &&
          r->svc->olsr.request_volume == 30);
    {
        mesh_olw_cfg_t dfp = {.interval_ms = 2000}, fp;
        mesh_olsr_cfg_t dsr = {.interval_ms = 2000}, sr;
        mesh_olw_cfg_fix(&dfp);
        mesh_olsr_cfg_fix(&dsr);
        mesh_svc_policy_detectors(r->svc, &dfp, &dsr, &fp, &sr);
        CHECK(fp.threshold_pct == 60 && fp.interval_ms == 2000); /* the interval: the node's */
        CHECK(sr.enabled && sr.min_hosts == 5 && sr.interval_ms == 2000);
        mesh_svc_policy_detectors(c->rules[1].svc, &dfp, &dsr, &fp, &sr); /* not given */
        CHECK(fp.threshold_pct == 0 && !sr.enabled);
    }
    CHECK(r->svc->zone_affinity == -1);
    CHECK_EQ(r->svc->connect_timeout_ms, 0); /* not given: the command line's */
    r = pol_routes_match_service(c, "plain.Svc", 9);
    CHECK(r == &c->rules[3] && !r->svc);

    /* the merge over the command line's settings */
    mesh_lb_cfg_t def = {.policy = MESH_LB_P2C, .zone = "za"}, eff;
    mesh_lb_cfg_fix(&def);
    mesh_svc_policy_lb(c->rules[1].svc, &def, &eff);
    CHECK(eff.policy == MESH_LB_ROUND_ROBIN && !eff.zone && eff.n_subsets == 2);
    CHECK_EQ(eff.decay_ms, def.decay_ms);
    mesh_svc_policy_lb(c->rules[0].svc, &def, &eff);
    CHECK(eff.policy == MESH_LB_P2C && eff.zone && !strcmp(eff.zone, "za") && !eff.n_subsets);
    mesh_outlier_cfg_t odef = {.consecutive = 7}, oeff;
    mesh_outlier_cfg_fix(&odef);
    mesh_svc_policy_outlier(c->rules[0].svc, &odef, &oeff);
    CHECK_EQ(oeff.consecutive, 3);
    CHECK_EQ(oeff.max_ejection_percent, MESH_OUTLIER_MAX_EJECTION_PERCENT); /* whole: defaults */
    mesh_svc_policy_outlier(NULL, &odef, &oeff);
    CHECK_EQ(oeff.consecutive, 7);

    /* the admin view */
    json_t *j = pol_routes_describe(c);
    char *s = json_dumps(j, JSON_COMPACT);
    CHECK_CONTAINS(s, "\"balancer\":{\"policy\":\"round-robin\",\"zone_affinity\":false,"
                      "\"subsets\":[{\"header\":\"x-canary\",\"value\":\"1\",\"version\":\"v2\"}");
    CHECK_CONTAINS(s, "\"outlier\":{\"enabled\":true,\"consecutive\":3,\"base_ejection_ms\":5000");
    CHECK_CONTAINS(s, "\"connect_timeout_ms\":250");
    CHECK_CONTAINS(s, "\"failure_percent\":{\"enabled\":true,\"threshold\":60,\"min_volume\":20}");
    free(s);
    json_decref(j);
    /* a rule's settings outlive the block while a worker holds them (a reload) */
    mesh_svc_policy_t *held = mesh_svc_policy_ref(c->rules[1].svc);
    pol_routes_free(c);
    CHECK(held->lb.n_subsets == 2 && !strcmp(held->lb.subsets[1].want, "zb"));
    mesh_svc_policy_unref(held);
}

static void test_fault_rates(void)
{
    pol_fault_t f = {.abort_status = 14, .abort_percent = 10, .delay_ms = 50, .delay_percent = 30};
    uint64_t x = 88172645463325252ull;
    int aborts = 0, delays = 0, n = 100000;
    for (int i = 0; i < n; i++) {
        uint64_t r[2];
        for (int k = 0; k < 2; k++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            r[k] = x;
        }
        int st;
        uint64_t d;
        pol_fault_decide(&f, 0, r[0], r[1], &st, &d);
        CHECK(!(st && d)); /* an aborted call is not delayed */
        aborts += st == 14;
        delays += d == 50;
    }
    fprintf(stderr, "aborts %d delays %d of %d\n", aborts, delays, n);
    CHECK(aborts > n / 10 - 1000 && aborts < n / 10 + 1000);
    CHECK(delays > 27000 - 1500 && delays < 27000 + 1500); /* 30 % of the 90 % not aborted */
    /* with a header: nothing without it, everything at 100 % with it */
    pol_fault_t h = {.abort_status = 8, .abort_percent = 100, .header = "x-chaos"};
    int st;
    uint64_t d;
    pol_fault_decide(&h, 0, 1, 1, &st, &d);
    CHECK(st == 0 && d == 0);
    pol_fault_decide(&h, 1, 999999, 1, &st, &d);
    CHECK(st == 8);
    pol_fault_t none = {.abort_status = 8, .abort_percent = 0};
    pol_fault_decide(&none, 1, 0, 0, &st, &d);
    CHECK(st == 0);
}

static char dir[256];

static void cleanup(void)
{
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

static void test_upstream_tls(const char *mkcerts)
{
    snprintf(dir, sizeof(dir), "/tmp/meshd-routes-tls-XXXXXX");
    CHECK(mkdtemp(dir));
    atexit(cleanup);
    char y[2048];
    snprintf(y, sizeof(y), "sh %s %s", mkcerts, dir);
    CHECK_EQ(system(y), 0);

    snprintf(y, sizeof(y),
             "routes:\n"
             "  rules:\n"
             "    - match: plain.Svc/*\n"
             "      upstream-tls: off\n"
             "    - match: tls.Svc/*\n"
             "      upstream-tls:\n"
             "        ca: %s/ca.pem\n"
             "        server-name: localhost\n"
             "        cert: %s/client.pem\n"
             "        key: %s/client.key\n",
             dir, dir, dir);
    char err[512] = "";
    pol_routes_conf_t *c = parse(y, err);
    if (!c)
        fprintf(stderr, "%s\n", err);
    CHECK(c && c->n_rules == 2);
    const pol_route_rule_t *r = pol_routes_match_service(c, "plain.Svc", 9);
    CHECK(r && r->svc && r->svc->upstream_tls == MESH_SVC_TLS_OFF && !r->svc->tls);
    r = pol_routes_match_service(c, "tls.Svc", 7);
    CHECK(r && r->svc && r->svc->upstream_tls == MESH_SVC_TLS_OWN && r->svc->tls);
    CHECK_STR(r->svc->tls_name, "localhost");
    mesh_tls_ctx_t *ctx = mesh_tls_holder_get(r->svc->tls);
    CHECK(ctx && !ctx->server);
    mesh_tls_ctx_unref(ctx);
    json_t *j = pol_routes_describe(c);
    char *s = json_dumps(j, JSON_COMPACT);
    CHECK_CONTAINS(s, "\"upstream_tls\":\"off\"");
    CHECK_CONTAINS(s, "\"server_name\":\"localhost\"");
    CHECK_CONTAINS(s, "/client.pem\"");
    free(s);
    json_decref(j);
    pol_routes_free(c);

    bad("routes:\n  rules:\n    - match: a.B/*\n      upstream-tls: on\n",
        "r.yaml:4: routes.rules[0].upstream-tls: expected off, or {ca: FILE, server-name: NAME, "
        "cert: FILE, key: FILE}");
    bad("routes:\n  rules:\n    - match: a.B/*\n      upstream-tls: {server-name: x}\n",
        "r.yaml:4: routes.rules[0].upstream-tls: ca is required");
    bad("routes:\n  rules:\n    - match: a.B/*\n      upstream-tls: {ca: c.pem, sni: x}\n",
        "r.yaml:4: routes.rules[0].upstream-tls.sni: unknown key (ca, server-name, cert, key)");
    bad("routes:\n  rules:\n    - match: a.B/C\n      upstream-tls: off\n",
        "r.yaml:3: routes.rules[0]: balancer, outlier, connect-timeout and upstream-tls are per "
        "service: match 'a.B/C' is a method");
    snprintf(y, sizeof(y),
             "routes:\n  rules:\n    - match: a.B/*\n      upstream-tls: {ca: %s/ca.pem, cert: "
             "%s/client.pem}\n",
             dir, dir);
    bad(y, "r.yaml:4: routes.rules[0].upstream-tls: cert and key go together");
    bad("routes:\n  rules:\n    - match: a.B/*\n      upstream-tls: {ca: /nonexistent/ca.pem}\n",
        "r.yaml:4: routes.rules[0].upstream-tls: ca /nonexistent/ca.pem: cannot read: No such "
        "file");
    snprintf(y, sizeof(y),
             "routes:\n  rules:\n    - match: a.B/*\n      upstream-tls: {ca: %s/garbage.pem}\n",
             dir);
    bad(y, "r.yaml:4: routes.rules[0].upstream-tls: CA ");
    bad(y, "garbage.pem: no PEM certificate in it");
    snprintf(y, sizeof(y),
             "routes:\n  rules:\n    - match: a.B/*\n      upstream-tls:\n"
             "        ca: %s/ca.pem\n        cert: %s/expired.pem\n        key: %s/client.key\n",
             dir, dir, dir);
    bad(y, "r.yaml:5: routes.rules[0].upstream-tls: certificate "); /* (the mapping's line) */
    bad(y, "expired.pem has expired");
}

int main(int argc, char **argv)
{
    RUN(test_full);
    RUN(test_defaults);
    RUN(test_errors);
    RUN(test_service_settings);
    RUN(test_fault_rates);
    CHECK(argc == 2); /* tests/tls/mkcerts.sh */
    test_upstream_tls(argv[1]);
    return 0;
}
