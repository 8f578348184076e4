/*
 * tests/fuzz/ca/fuzz_ca_tokens.c: libFuzzer over the bootstrap token file parser
 * (ca/ca_tokens.h): any bytes either parse or give a FILE:LINE error; a parsed file's tokens are
 * found by their own text and allow their own node pattern when it has no glob characters.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca_tokens.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ca_tokens_t t;
    char err[512];
    if (ca_tokens_parse(&t, "f", (const char *)data, size, err, sizeof(err)) != 0) {
        if (strncmp(err, "f:", 2) != 0)
            abort();
        return 0;
    }
    for (size_t i = 0; i < t.n; i++) {
        const ca_token_t *k = ca_tokens_find(&t, t.v[i].token, t.v[i].token_len);
        if (k != &t.v[i])
            abort(); /* duplicates are refused, so each token finds itself */
        if (!strpbrk(k->node_pattern, "*?[]!") &&
            !ca_token_allows(k, k->node_pattern, NULL, 0, err, sizeof(err)))
            abort();
    }
    ca_tokens_destroy(&t);
    return 0;
}
