/*
 * tests/fuzz/policy_conf/fuzz_policy_conf.c: libFuzzer harness over pol_conf_parse(): the
 * policy block a person writes (or breaks) never crashes the loader, an error always names
 * the file and a line, and a conf that loads answers lookups.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy_conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512] = "";
    pol_conf_t *c = pol_conf_parse("f.yaml", (const char *)data, size, err, sizeof(err));
    if (!c) {
        if (strncmp(err, "f.yaml:", 7) != 0)
            abort(); /* every error says where */
        return 0;
    }
    int ex;
    const char *svcs[] = {"pkg.Svc", "a", "", "grpc.health.v1.Health"};
    for (size_t i = 0; i < 4; i++) {
        const pol_rule_t *r = pol_conf_match(c, svcs[i], strlen(svcs[i]), "M", 1, &ex);
        if (r && r->match.n == 0)
            abort();
    }
    pol_conf_free(c);
    return 0;
}
