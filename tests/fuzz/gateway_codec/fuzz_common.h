/*
 * tests/fuzz/gateway_codec/fuzz_common.h: what both transcoder harnesses share: the schema of
 * codec_test.proto (loaded once from GW_FUZZ_DESCRIPTORS, a path compiled in), the message types
 * a first input byte picks from, and the round-trip check.
 */
#ifndef GW_FUZZ_COMMON_H
#define GW_FUZZ_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/file_read.h"
#include "gateway/json_pb.h"
#include "gateway/pb_json.h"
#include "gateway/schema.h"

static gw_schema_t *fz_schema;
static gw_buf_t fz_a, fz_b, fz_j1, fz_j2;

static const char *const fz_types[] = {
    "gwtest.AllTypes",           "gwtest.Inner",
    "google.protobuf.Struct",    "google.protobuf.Value",
    "google.protobuf.Any",       "google.protobuf.Timestamp",
    "google.protobuf.Duration",  "google.protobuf.FieldMask",
    "google.protobuf.ListValue",
};

static void fz_init(void)
{
    if (fz_schema)
        return;
    char err[1200];
    size_t n;
    char *set = mesh_file_read(GW_FUZZ_DESCRIPTORS, 16u << 20, 0, &n, err, sizeof err);
    if (!set) {
        fprintf(stderr, "%s\n", err);
        abort();
    }
    fz_schema = gw_schema_build_set((const uint8_t *)set, n, err, sizeof err);
    free(set);
    if (!fz_schema) {
        fprintf(stderr, "schema: %s\n", err);
        abort();
    }
}

static const gw_message_t *fz_type(uint8_t sel)
{
    return gw_schema_find_message(fz_schema,
                                  fz_types[sel % (sizeof fz_types / sizeof fz_types[0])]);
}

#define FZ_ASSERT(cond, ...)                                                                       \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A is canonical protobuf made by gw_json_to_pb: A -> JSON -> B must give B == A. */
static void fz_check_canonical(const gw_message_t *m, const gw_buf_t *a, bool orig)
{
    char err[256];
    gw_pb_json_opts_t po = {
        .original_names = orig, .resolve = gw_resolve_in_schema, .resolve_ud = fz_schema};
    gw_json_pb_opts_t jo = {.resolve = gw_resolve_in_schema, .resolve_ud = fz_schema};
    fz_j2.len = 0;
    gw_status_t st = gw_pb_to_json(m, a->data, a->len, &po, &fz_j2, err, sizeof err);
    FZ_ASSERT(st == GW_OK, "canonical pb -> json failed: %s", err);
    fz_b.len = 0;
    st = gw_json_to_pb(m, (const char *)fz_j2.data, fz_j2.len, &jo, &fz_b, err, sizeof err);
    FZ_ASSERT(st == GW_OK, "json -> pb of our own JSON failed: %s (%.*s)", err, (int)fz_j2.len,
              (const char *)fz_j2.data);
    FZ_ASSERT(fz_b.len == a->len && (a->len == 0 || memcmp(fz_b.data, a->data, a->len) == 0),
              "pb -> json -> pb changed the canonical bytes (%.*s)", (int)fz_j2.len,
              (const char *)fz_j2.data);
}

#endif
