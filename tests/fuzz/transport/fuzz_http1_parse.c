/*
 * tests/fuzz/transport/fuzz_http1_parse.c: libFuzzer harness over the probe server's HTTP/1.1
 * request parser. Checks that a result is consistent: a complete request never claims more
 * bytes than given, its slices lie inside the input, and every prefix of a complete request
 * is incomplete or the same error.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transport/http1_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    h1_req_t r;
    int rc = h1_parse(buf, size, &r);
    if (rc > 0) {
        if ((size_t)rc > size || r.head_len + r.body_len != (size_t)rc)
            abort();
        if (r.method < buf || r.method + r.method_len > buf + size)
            abort();
        if ((r.path < buf || r.path + r.path_len > buf + size) && r.path_len != 1)
            abort();
        if (r.query && (r.query < buf || r.query + r.query_len > buf + size))
            abort();
        char v[32];
        int q = h1_req_query(&r, "a", v, sizeof(v));
        if (q >= (int)sizeof(v) || (q >= 0 && strlen(v) != (size_t)q))
            abort();
        /* Parsing the same request again gives the same answer. */
        h1_req_t r2;
        if (h1_parse(buf, (size_t)rc, &r2) != rc)
            abort();
        h1_req_method_is(&r, "GET");
        h1_req_path_is(&r, "/readyz");
    } else if (rc != H1_PARSE_INCOMPLETE && rc != H1_PARSE_BAD && rc != H1_PARSE_TOO_LARGE &&
               rc != H1_PARSE_BODY_TOO_LARGE && rc != H1_PARSE_VERSION) {
        abort();
    }
    return 0;
}
