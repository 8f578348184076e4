/*
 * tests/fuzz/route_conf/fuzz_route_conf.c: libFuzzer harness over pol_routes_parse(): the
 * routes block a person writes (or breaks) never crashes the loader, an error always names the
 * file and a line, and a conf that loads answers lookups with sane values (balancer and outlier
 * settings only in service-wide rules) and describes itself.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/route_conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512] = "";
    pol_routes_conf_t *c = pol_routes_parse("f.yaml", (const char *)data, size, err, sizeof(err));
    if (!c) {
        if (strncmp(err, "f.yaml:", 7) != 0)
            abort(); /* every error says where */
        return 0;
    }
    const char *svcs[] = {"pkg.Svc", "a", "", "meshd.test.Retry"};
    for (size_t i = 0; i < 4; i++) {
        const pol_route_rule_t *r = pol_routes_match(c, svcs[i], strlen(svcs[i]), "M", 1);
        if (r && (r->n_match == 0 || r->retry.max_attempts < 1 || r->retry.max_attempts > 5 ||
                  r->retry.max_backoff_ms < r->retry.initial_backoff_ms ||
                  (r->retry.hedge_max_attempts > 1 && !r->retry.idempotent)))
            abort();
        /* a service's balancer and outlier settings come from a service-wide rule only */
        const pol_route_rule_t *sr = pol_routes_match_service(c, svcs[i], strlen(svcs[i]));
        if (sr && sr->svc) {
            for (size_t k = 0; k < sr->n_match; k++) {
                size_t n = strlen(sr->match[k]);
                if (!n || sr->match[k][n - 1] != '*')
                    abort();
            }
            mesh_lb_cfg_t def = {0}, eff;
            mesh_lb_cfg_fix(&def);
            mesh_svc_policy_lb(sr->svc, &def, &eff);
            for (size_t k = 0; k < eff.n_subsets; k++)
                if (!eff.subsets[k].header || !eff.subsets[k].value || !eff.subsets[k].want)
                    abort();
        }
    }
    json_t *j = pol_routes_describe(c);
    if (!j)
        abort();
    json_decref(j);
    pol_routes_free(c);
    return 0;
}
