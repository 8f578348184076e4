/*
 * tests/unit/gateway_codec/codec_tool.c: the C side of the conformance run. Loads a
 * FileDescriptorSet and answers framed requests on stdin until EOF:
 *   request:  op ('P' pb->json, 'J' json->pb), flags, u32 name length, type name,
 *             u32 payload length, payload              (u32 little-endian)
 *   response: status (gw_status_t), u32 length, output or error message
 * Flags: bit 0 original names / ignore unknown fields, bit 1 emit defaults.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/file_read.h"
#include "gateway/json_pb.h"
#include "gateway/pb_json.h"
#include "gateway/schema.h"

static int read_all(void *p, size_t n)
{
    return fread(p, 1, n, stdin) == n ? 0 : -1;
}

static int read_u32(uint32_t *v)
{
    uint8_t b[4];
    if (read_all(b, 4) < 0)
        return -1;
    *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    return 0;
}

static void reply(int status, const void *p, size_t n)
{
    uint8_t h[5] = {(uint8_t)status, (uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16),
                    (uint8_t)(n >> 24)};
    fwrite(h, 1, 5, stdout);
    fwrite(p, 1, n, stdout);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gw_codec_tool DESCRIPTOR_SET\n");
        return 2;
    }
    char err[1200];
    size_t n;
    char *set = mesh_file_read(argv[1], 16u << 20, 0, &n, err, sizeof err);
    if (!set) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    gw_schema_t *s = gw_schema_build_set((const uint8_t *)set, n, err, sizeof err);
    free(set);
    if (!s) {
        fprintf(stderr, "schema: %s\n", err);
        return 2;
    }
    gw_buf_t out = {0};
    char *name = NULL, *payload = NULL;
    for (;;) {
        uint8_t op[2];
        uint32_t nl, pl;
        if (read_all(op, 2) < 0 || read_u32(&nl) < 0)
            break;
        name = realloc(name, nl + 1);
        if (read_all(name, nl) < 0 || read_u32(&pl) < 0)
            break;
        name[nl] = 0;
        payload = realloc(payload, pl + 1);
        if (read_all(payload, pl) < 0)
            break;
        const gw_message_t *m = gw_schema_find_message(s, name);
        if (!m) {
            reply(99, "no such type", 12);
            continue;
        }
        out.len = 0;
        gw_status_t st;
        if (op[0] == 'P') {
            gw_pb_json_opts_t o = {.original_names = op[1] & 1,
                                   .emit_defaults = (op[1] & 2) != 0,
                                   .resolve = gw_resolve_in_schema,
                                   .resolve_ud = s};
            st = gw_pb_to_json(m, (const uint8_t *)payload, pl, &o, &out, err, sizeof err);
        } else {
            gw_json_pb_opts_t o = {
                .ignore_unknown = op[1] & 1, .resolve = gw_resolve_in_schema, .resolve_ud = s};
            st = gw_json_to_pb(m, payload, pl, &o, &out, err, sizeof err);
        }
        if (st == GW_OK)
            reply(0, out.data, out.len);
        else
            reply((int)st, err, strlen(err));
    }
    free(name);
    free(payload);
    gw_buf_free(&out);
    gw_schema_unref(s);
    return 0;
}
