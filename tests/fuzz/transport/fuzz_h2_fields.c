/*
 * tests/fuzz/transport/fuzz_h2_fields.c: libFuzzer harness for the HTTP/2 field rules
 * (transport/h2_fields.c), differential against nghttp2's own checkers: for a regular field
 * that has no rule of its own, ours must accept exactly what nghttp2_check_header_name() and
 * nghttp2_check_header_value_rfc9113() accept (so turning nghttp2's messaging checks off lost
 * nothing). The same bytes are then run as whole request and response blocks (fields separated
 * by a length byte) for memory safety and the first-problem-sticks rule.
 */
#include <nghttp2/nghttp2.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transport/h2_fields.h"

static int has_own_rule(const uint8_t *n, size_t nl)
{
    static const char *const special[] = {
        "te", "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"};
    for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++)
        if (nl == strlen(special[i]) && memcmp(n, special[i], nl) == 0)
            return 1;
    return nl > 0 && n[0] == ':';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /* One field: the first byte splits the rest into name and value. */
    size_t nl = data[0] < size - 1 ? data[0] : size - 1;
    const uint8_t *name = data + 1, *value = data + 1 + nl;
    size_t vl = size - 1 - nl;
    if (!has_own_rule(name, nl)) {
        mesh_h2_fields_t f;
        mesh_h2_fields_reset(&f);
        int ours = mesh_h2_field_check(&f, MESH_H2_TRAILERS, name, nl, value, vl) >= 0;
        int theirs =
            nghttp2_check_header_name(name, nl) && nghttp2_check_header_value_rfc9113(value, vl);
        if (ours != theirs)
            abort();
        if (!ours && !f.problem)
            abort();
    }
    /* Whole blocks: [len][bytes] name, [len][bytes] value, ... */
    for (int kind = MESH_H2_REQUEST; kind <= MESH_H2_TRAILERS; kind++) {
        mesh_h2_fields_t f;
        mesh_h2_fields_reset(&f);
        const char *first = NULL;
        size_t o = 0;
        while (o < size) {
            size_t a = data[o++] % 32;
            if (a > size - o)
                a = size - o;
            const uint8_t *n = data + o;
            o += a;
            size_t b = o < size ? data[o++] % 32 : 0;
            if (b > size - o)
                b = size - o;
            int rc = mesh_h2_field_check(&f, (mesh_h2_block_t)kind, n, a, data + o, b);
            o += b;
            if (rc < 0 && !first)
                first = f.problem;
            if (first && f.problem != first)
                abort();
        }
        mesh_h2_fields_end(&f, (mesh_h2_block_t)kind);
        if (first && f.problem != first)
            abort();
    }
    return 0;
}
