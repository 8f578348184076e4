/*
 * tests/fuzz/ca/fuzz_spiffe.c: libFuzzer over the SPIFFE ID parser (ca/spiffe.h) that reads
 * URI SANs of peer certificates: a URI that parses formats back to the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ca/spiffe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char td[SPF_TD_MAX + 1], name[SPF_NAME_MAX + 1], back[SPF_URI_MAX + 1];
    spf_kind_t kind;
    if (spf_parse((const char *)data, size, td, &kind, name) != 0)
        return 0;
    if (spf_format(back, sizeof(back), td, kind, name) != 0 || strlen(back) != size ||
        memcmp(back, data, size) != 0)
        abort();
    return 0;
}
