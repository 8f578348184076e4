/*
 * bench/gateway_codec/bench_gateway_codec.c: nanoseconds per message of gw_json_to_pb() and
 * gw_pb_to_json() for a small message (gwtest.Inner, 3 fields) and a medium one
 * (gwtest.AllTypes with scalars, repeated, a map, a oneof, nested messages and WKTs).
 * Usage: bench_gateway_codec [iterations [small|medium]]   (default 200000, both)
 * Under valgrind --tool=callgrind one message at a time gives instructions per call.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/file_read.h"
#include "gateway/json_pb.h"
#include "gateway/pb_json.h"
#include "gateway/schema.h"

static const char SMALL[] = "{\"a\":42,\"b\":\"hello world\",\"color\":\"RED\"}";

static const char MEDIUM[] =
    "{\"fDouble\":3.25,\"fFloat\":-1.5,\"fInt64\":\"-1234567890123\",\"fUint64\":\"987654321\","
    "\"fInt32\":-17,\"fFixed64\":\"5\",\"fFixed32\":6,\"fBool\":true,\"fString\":\"a medium "
    "string with some text\",\"fBytes\":\"AAECAwQFBgcICQ==\",\"fUint32\":99,\"fEnum\":\"GREEN\","
    "\"fSint32\":-5,\"fSint64\":\"-6\",\"fInner\":{\"a\":1,\"b\":\"inner\",\"c\":[\"1\",\"2\"],"
    "\"child\":{\"a\":2,\"color\":\"RED\"}},\"oInt32\":0,\"rInt32\":[1,2,3,4,5,6,7,8],"
    "\"rString\":[\"x\",\"y\",\"z\"],\"rInner\":[{\"a\":1},{\"b\":\"two\"}],"
    "\"mInt32String\":{\"1\":\"one\",\"2\":\"two\"},\"cString\":\"choice\","
    "\"wTimestamp\":\"2024-05-06T07:08:09.123Z\",\"wDuration\":\"1.5s\",\"wInt64\":\"7\","
    "\"wStruct\":{\"k\":[1,\"v\",true,null]},\"customName\":\"c\"}";

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void run(gw_schema_t *s, const char *type, const char *json, long iters)
{
    const gw_message_t *m = gw_schema_find_message(s, type);
    gw_json_pb_opts_t jo = {.resolve = gw_resolve_in_schema, .resolve_ud = s};
    gw_pb_json_opts_t po = {.resolve = gw_resolve_in_schema, .resolve_ud = s};
    gw_buf_t pb = {0}, js = {0};
    char err[256];
    if (gw_json_to_pb(m, json, strlen(json), &jo, &pb, err, sizeof err) != GW_OK) {
        fprintf(stderr, "%s: %s\n", type, err);
        exit(1);
    }
    double t0 = now_ns();
    for (long i = 0; i < iters; i++) {
        pb.len = 0;
        gw_json_to_pb(m, json, strlen(json), &jo, &pb, err, sizeof err);
    }
    double t1 = now_ns();
    for (long i = 0; i < iters; i++) {
        js.len = 0;
        gw_pb_to_json(m, pb.data, pb.len, &po, &js, err, sizeof err);
    }
    double t2 = now_ns();
    printf("%-16s json %4zu B, pb %4zu B: json->pb %7.0f ns/msg, pb->json %7.0f ns/msg\n", type,
           strlen(json), pb.len, (t1 - t0) / iters, (t2 - t1) / iters);
    gw_buf_free(&pb);
    gw_buf_free(&js);
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 200000;
    char err[1200];
    size_t n;
    char *set = mesh_file_read(GW_BENCH_DESCRIPTORS, 16u << 20, 0, &n, err, sizeof err);
    if (!set) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    gw_schema_t *s = gw_schema_build_set((const uint8_t *)set, n, err, sizeof err);
    free(set);
    if (!s) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    printf("bench_gateway_codec: %ld iterations each\n", iters);
    const char *only = argc > 2 ? argv[2] : "";
    if (strcmp(only, "medium") != 0)
        run(s, "gwtest.Inner", SMALL, iters);
    if (strcmp(only, "small") != 0)
        run(s, "gwtest.AllTypes", MEDIUM, iters);
    gw_schema_unref(s);
    return 0;
}
