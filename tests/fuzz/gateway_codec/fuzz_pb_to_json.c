/*
 * tests/fuzz/gateway_codec/fuzz_pb_to_json.c: libFuzzer harness over protobuf -> JSON
 * (gateway/pb_json.h). Byte 0 picks the message type and options, the rest is wire bytes. Any
 * input gives GW_OK or a clean error; accepted input must give JSON that jansson parses and that
 * our JSON -> protobuf accepts (duplicate map keys aside: JSON input rejects them), and that
 * canonical protobuf must round-trip byte for byte.
 */
#include <jansson.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_init();
    if (size < 1)
        return 0;
    const gw_message_t *m = fz_type(data[0] >> 2);
    gw_pb_json_opts_t o = {.original_names = data[0] & 1,
                           .emit_defaults = (data[0] & 2) != 0,
                           .resolve = gw_resolve_in_schema,
                           .resolve_ud = fz_schema};
    char err[256];
    fz_j1.len = 0;
    gw_status_t st = gw_pb_to_json(m, data + 1, size - 1, &o, &fz_j1, err, sizeof err);
    if (st != GW_OK) {
        FZ_ASSERT(fz_j1.len == 0 && err[0], "error without a message or with output");
        return 0;
    }
    /* jansson cannot read an object key holding U+0000 (a documented limit of JSON input). */
    if (memmem(fz_j1.data, fz_j1.len, "\\u0000", 6))
        return 0;
    json_error_t je;
    json_t *j =
        json_loadb((const char *)fz_j1.data, fz_j1.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    FZ_ASSERT(j != NULL, "pb -> json wrote invalid JSON: %s (%.*s)", je.text, (int)fz_j1.len,
              (const char *)fz_j1.data);
    json_decref(j);
    gw_json_pb_opts_t jo = {.resolve = gw_resolve_in_schema, .resolve_ud = fz_schema};
    fz_a.len = 0;
    st = gw_json_to_pb(m, (const char *)fz_j1.data, fz_j1.len, &jo, &fz_a, err, sizeof err);
    if (st == GW_ERR_SYNTAX)
        return 0; /* duplicate map keys in the wire input (last wins in protobuf) */
    FZ_ASSERT(st == GW_OK, "json -> pb of our own JSON failed: %s (%.*s)", err, (int)fz_j1.len,
              (const char *)fz_j1.data);
    fz_check_canonical(m, &fz_a, false);
    return 0;
}
