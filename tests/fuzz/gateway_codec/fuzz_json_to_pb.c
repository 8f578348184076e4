/*
 * tests/fuzz/gateway_codec/fuzz_json_to_pb.c: libFuzzer harness over JSON -> protobuf
 * (gateway/json_pb.h). Byte 0 picks the message type and options, the rest is JSON text. Any
 * input gives GW_OK or a clean error; accepted input must round-trip: its protobuf A -> JSON ->
 * protobuf gives A again byte for byte.
 */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_init();
    if (size < 1)
        return 0;
    const gw_message_t *m = fz_type(data[0] >> 2);
    gw_json_pb_opts_t o = {
        .ignore_unknown = data[0] & 1, .resolve = gw_resolve_in_schema, .resolve_ud = fz_schema};
    char err[256];
    fz_a.len = 0;
    gw_status_t st = gw_json_to_pb(m, (const char *)data + 1, size - 1, &o, &fz_a, err, sizeof err);
    if (st != GW_OK) {
        FZ_ASSERT(fz_a.len == 0 && err[0], "error without a message or with output");
        return 0;
    }
    fz_check_canonical(m, &fz_a, data[0] & 2);
    return 0;
}
