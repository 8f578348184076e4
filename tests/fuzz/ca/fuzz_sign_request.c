/*
 * tests/fuzz/ca/fuzz_sign_request.c: libFuzzer over the body of POST /v1/ca/sign
 * (ca/sign_request.h) and the token check that follows it (ca/ca_tokens.h): any bytes either
 * parse into required, NUL-free strings or give a reason; a parsed request's names go through
 * a token's globs without trouble.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca_tokens.h"
#include "ca/sign_request.h"

static ca_tokens_t tokens;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    if (!tokens.n) {
        const char *t = "0123456789abcdef-web web-* shop.Cart,shop.Order*\n";
        if (ca_tokens_parse(&tokens, "t", t, strlen(t), err, sizeof(err)) != 0)
            abort();
    }
    ca_sign_request_t r;
    if (ca_sign_request_parse(&r, (const char *)data, size, err, sizeof(err)) != 0) {
        if (!err[0])
            abort();
        return 0;
    }
    if (!r.csr || !r.node || r.lifetime_s < 0)
        abort();
    for (size_t i = 0; i < r.n_services; i++)
        if (!r.services[i])
            abort();
    (void)ca_token_allows(&tokens.v[0], r.node, r.services, r.n_services, err, sizeof(err));
    ca_sign_request_destroy(&r);
    return 0;
}
