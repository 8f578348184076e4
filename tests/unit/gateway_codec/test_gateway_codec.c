/*
 * tests/unit/gateway_codec/test_gateway_codec.c: targeted behaviour of the JSON <-> protobuf
 * transcoder (gateway/schema.h, pb_json.h, json_pb.h) on codec_test.proto: schema errors,
 * error messages with field paths and line/column, accepted input forms, options, merging of
 * non-canonical wire input, depth limits and buffer reuse. The random conformance run against
 * Python is conformance.py.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/file_read.h"
#include "gateway/json_pb.h"
#include "gateway/pb_json.h"
#include "gateway/schema.h"
#include "google/protobuf/descriptor.pb-c.h"
#include "grpc/descriptors.h"
#include "tests/check.h"

static gw_schema_t *S;
static const gw_message_t *ALL;

/* JSON -> pb with default options (resolver = the schema); returns the status. */
static gw_status_t j2p(const char *json, gw_buf_t *out, char *err, bool ignore)
{
    gw_json_pb_opts_t o = {
        .ignore_unknown = ignore, .resolve = gw_resolve_in_schema, .resolve_ud = S};
    out->len = 0;
    return gw_json_to_pb(ALL, json, strlen(json), &o, out, err, 256);
}

/* pb -> JSON into a NUL-terminated string. */
static gw_status_t p2j(const uint8_t *pb, size_t n, gw_buf_t *out, char *err, bool orig, bool defs)
{
    gw_pb_json_opts_t o = {.original_names = orig,
                           .emit_defaults = defs,
                           .resolve = gw_resolve_in_schema,
                           .resolve_ud = S};
    out->len = 0;
    gw_status_t st = gw_pb_to_json(ALL, pb, n, &o, out, err, 256);
    if (st == GW_OK) {
        gw_buf_put(out, "", 1);
        out->len--;
    }
    return st;
}

/* JSON -> pb -> JSON. */
static const char *round_trip(const char *json, gw_buf_t *pb, gw_buf_t *js)
{
    char err[256];
    gw_status_t st = j2p(json, pb, err, false);
    if (st != GW_OK)
        fprintf(stderr, "json->pb: %s\n", err);
    CHECK_EQ(st, GW_OK);
    st = p2j(pb->data, pb->len, js, err, false, false);
    if (st != GW_OK)
        fprintf(stderr, "pb->json: %s\n", err);
    CHECK_EQ(st, GW_OK);
    return (const char *)js->data;
}

static uint8_t *pack_file(Google__Protobuf__FileDescriptorProto *f, size_t *n)
{
    *n = google__protobuf__file_descriptor_proto__get_packed_size(f);
    uint8_t *b = malloc(*n + 1);
    google__protobuf__file_descriptor_proto__pack(f, b);
    return b;
}

static void test_schema_errors(void)
{
    char err[256];
    /* x.proto imports y.proto, which is not given. */
    Google__Protobuf__FileDescriptorProto f = GOOGLE__PROTOBUF__FILE_DESCRIPTOR_PROTO__INIT;
    f.name = "x.proto";
    f.package = "a";
    f.syntax = "proto3";
    char *deps[] = {"y.proto"};
    f.dependency = deps;
    f.n_dependency = 1;
    size_t n;
    uint8_t *b = pack_file(&f, &n);
    const uint8_t *files[] = {b};
    CHECK(gw_schema_build(files, &n, 1, err, sizeof err) == NULL);
    CHECK_STR(err, "file x.proto: dependency y.proto not found");
    free(b);

    /* message a.B field c of type .a.Missing */
    Google__Protobuf__FieldDescriptorProto fc = GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__INIT;
    fc.name = "c";
    fc.has_number = 1;
    fc.number = 1;
    fc.has_type = 1;
    fc.type = GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_MESSAGE;
    fc.type_name = ".a.Missing";
    Google__Protobuf__FieldDescriptorProto *fields[] = {&fc};
    Google__Protobuf__DescriptorProto m = GOOGLE__PROTOBUF__DESCRIPTOR_PROTO__INIT;
    m.name = "B";
    m.field = fields;
    m.n_field = 1;
    Google__Protobuf__DescriptorProto *msgs[] = {&m};
    f.n_dependency = 0;
    f.message_type = msgs;
    f.n_message_type = 1;
    b = pack_file(&f, &n);
    files[0] = b;
    CHECK(gw_schema_build(files, &n, 1, err, sizeof err) == NULL);
    CHECK_STR(err, "file x.proto: message a.B field c: type .a.Missing not found");
    free(b);

    /* Fixed: the field refers to a.B itself; the same file twice is taken once. */
    fc.type_name = ".a.B";
    fc.json_name = NULL;
    b = pack_file(&f, &n);
    const uint8_t *two[] = {b, b};
    size_t lens[] = {n, n};
    gw_schema_t *s = gw_schema_build(two, lens, 2, err, sizeof err);
    CHECK(s != NULL);
    const gw_message_t *mb = gw_schema_find_message(s, ".a.B");
    CHECK(mb && mb->n_fields == 1 && mb->fields[0].message == mb);
    CHECK(gw_schema_find_message(s, "google.protobuf.Timestamp") != NULL); /* built in */
    CHECK(gw_schema_ref(s) == s);
    gw_schema_unref(s);
    gw_schema_unref(s);
    free(b);

    /* Garbage is an error, not a crash. */
    const uint8_t junk[] = {0x0a, 0xff};
    const uint8_t *jf[] = {junk};
    size_t jl = sizeof junk;
    CHECK(gw_schema_build(jf, &jl, 1, err, sizeof err) == NULL);
    CHECK_CONTAINS(err, "does not parse");
}

static void test_json_errors(void)
{
    gw_buf_t pb = {0};
    char err[256];
    CHECK_EQ(j2p("{\n  \"fInt32\": 1,\n  oops}", &pb, err, false), GW_ERR_SYNTAX);
    CHECK_CONTAINS(err, "line 3 column");
    CHECK_EQ(j2p("{\"rInner\":[{},{},{\"child\":{\"a\":\"x\"}}]}", &pb, err, false), GW_ERR_TYPE);
    CHECK_STR(err, "r_inner[2].child.a: expected an integer, got \"x\"");
    CHECK_EQ(j2p("{\"fString\": 5}", &pb, err, false), GW_ERR_TYPE);
    CHECK_STR(err, "f_string: expected a string, got a number");
    CHECK_EQ(j2p("{\"fInt32\": 3000000000}", &pb, err, false), GW_ERR_TYPE);
    CHECK_STR(err, "f_int32: integer 3000000000 out of range");
    CHECK_EQ(j2p("{\"fInt32\": 1.5}", &pb, err, false), GW_ERR_TYPE);
    /* NullValue is null (or 0) in JSON: another number could not come back (found by fuzzing). */
    CHECK_EQ(j2p("{\"cNull\": 6666666}", &pb, err, false), GW_ERR_VALUE);
    CHECK_STR(err, "c_null: google.protobuf.NullValue has no value 6666666 (only null or 0)");
    CHECK_EQ(j2p("{\"cNull\": 0}", &pb, err, false), GW_OK);
    CHECK_EQ(j2p("{\"nope\": 1}", &pb, err, false), GW_ERR_UNKNOWN);
    CHECK_STR(err, "unknown field \"nope\" in gwtest.AllTypes");
    CHECK_EQ(j2p("{\"nope\": 1, \"fInt32\": 2}", &pb, err, true), GW_OK);
    CHECK_EQ(pb.len, 2);
    CHECK_EQ(j2p("{\"fEnum\": \"PURPLE\"}", &pb, err, false), GW_ERR_UNKNOWN);
    CHECK_STR(err, "f_enum: enum gwtest.Color has no value \"PURPLE\"");
    CHECK_EQ(j2p("{\"cString\": \"a\", \"cInt32\": 1}", &pb, err, false), GW_ERR_TYPE);
    CHECK_CONTAINS(err, "belong to oneof choice");
    CHECK_EQ(j2p("{\"fInt32\": 1, \"f_int32\": 2}", &pb, err, false), GW_ERR_TYPE);
    CHECK_CONTAINS(err, "given twice");
    CHECK_EQ(j2p("{\"wTimestamp\": \"2020-13-01T00:00:00Z\"}", &pb, err, false), GW_ERR_TYPE);
    CHECK_STR(err, "w_timestamp: bad timestamp \"2020-13-01T00:00:00Z\"");
    CHECK_EQ(j2p("{\"wAny\": {\"@type\": \"type.googleapis.com/x.Nope\"}}", &pb, err, false),
             GW_ERR_UNKNOWN);
    CHECK_STR(err, "w_any: Any type type.googleapis.com/x.Nope not found");
    CHECK_EQ(j2p("{\"fBytes\": \"a*b\"}", &pb, err, false), GW_ERR_TYPE);
    CHECK_EQ(j2p("{\"rInt32\": [1, null]}", &pb, err, false), GW_ERR_TYPE);
    CHECK_STR(err, "r_int32[1]: null is not allowed in a repeated field");
    CHECK_EQ(j2p("{\"mBoolString\": {\"yes\": \"a\"}}", &pb, err, false), GW_ERR_TYPE);
    CHECK_EQ(j2p("{\"wMask\": \"a_b\"}", &pb, err, false), GW_ERR_TYPE);
    CHECK_EQ(j2p("[1]", &pb, err, false), GW_ERR_TYPE);
    CHECK_EQ(j2p("{\"a\":1,\"a\":2}", &pb, err, false), GW_ERR_SYNTAX); /* duplicate key */
    /* The tokenizer's strictness (gateway/json_tape): a duplicate among many keys of a map,
     * lone surrogates, invalid UTF-8, control characters, trailing commas and garbage after the
     * value are syntax errors; a uint64 above int64 written as a number is accepted. */
    {
        char big[1024] = "{\"mStringValue\":{";
        for (int i = 0; i < 40; i++)
            sprintf(big + strlen(big), "\"k%d\":%d,", i, i);
        strcat(big, "\"k7\":1}}");
        CHECK_EQ(j2p(big, &pb, err, false), GW_ERR_SYNTAX);
        CHECK_CONTAINS(err, "duplicate");
    }
    CHECK_EQ(j2p("{\"fString\":\"\\ud800\"}", &pb, err, false), GW_ERR_SYNTAX);
    CHECK_EQ(j2p("{\"fString\":\"\\udc00\"}", &pb, err, false), GW_ERR_SYNTAX);
    CHECK_EQ(j2p("{\"fString\":\"\xc3\x28\"}", &pb, err, false), GW_ERR_SYNTAX);
    CHECK_EQ(j2p("{\"fString\":\"a\tb\"}", &pb, err, false), GW_ERR_SYNTAX);
    CHECK_EQ(j2p("{\"rInt32\":[1,]}", &pb, err, false), GW_ERR_SYNTAX);
    CHECK_EQ(j2p("{\"fInt32\":1,}", &pb, err, false), GW_ERR_SYNTAX);
    CHECK_EQ(j2p("{} x", &pb, err, false), GW_ERR_SYNTAX);
    CHECK_EQ(j2p("", &pb, err, false), GW_ERR_SYNTAX);
    CHECK_EQ(j2p("{\"fDouble\":1e999}", &pb, err, false), GW_ERR_SYNTAX);
    CHECK_EQ(j2p("{\"fString\":\"\\ud83d\\ude00\"}", &pb, err, false), GW_OK);
    CHECK_EQ(pb.len, 6); /* tag, length, 4 bytes of U+1F600 */
    pb.len = 0;
    CHECK_EQ(j2p("{\"fUint64\":18446744073709551615}", &pb, err, false), GW_OK);
    CHECK_EQ(j2p("{\"fUint64\":18446744073709551616}", &pb, err, false), GW_ERR_TYPE);
    /* Nesting past GW_MAX_DEPTH is refused cleanly. */
    char deep[4096] = "{\"fInner\":";
    for (int i = 0; i < 150; i++)
        strcat(deep, "{\"child\":");
    strcat(deep, "{}");
    for (int i = 0; i < 151; i++)
        strcat(deep, "}");
    CHECK_EQ(j2p(deep, &pb, err, false), GW_ERR_DEPTH);
    /* On error the output is restored. */
    pb.len = 0;
    gw_buf_put(&pb, "xy", 2);
    gw_json_pb_opts_t o = {0};
    CHECK(gw_json_to_pb(ALL, "{\"fInt32\":\"q\"}", 14, &o, &pb, err, sizeof err) != GW_OK);
    CHECK_EQ(pb.len, 2);
    gw_buf_free(&pb);
}

static void test_json_input_forms(void)
{
    gw_buf_t pb = {0}, js = {0};
    /* int64 as number and string; uint64 max as string; enum by number; URL-safe unpadded
     * base64; NaN; null means default; original names accepted. */
    CHECK_STR(round_trip("{\"f_int64\": -5, \"fUint64\": \"18446744073709551615\", \"fEnum\": 2,"
                         " \"fBytes\": \"-_8\", \"fDouble\": \"NaN\", \"fFloat\": \"-Infinity\","
                         " \"fInt32\": null, \"customName\": \"x\", \"field_name_2x\": 3}",
                         &pb, &js),
              "{\"fDouble\":\"NaN\",\"fFloat\":\"-Infinity\",\"fInt64\":\"-5\","
              "\"fUint64\":\"18446744073709551615\",\"fBytes\":\"+/8=\",\"fEnum\":\"GREEN\","
              "\"customName\":\"x\",\"fieldName2x\":3}");
    /* A uint64 above 2^63-1 as a JSON number (jansson refuses it; it is quoted and retried);
     * digits inside strings stay as they are. */
    CHECK_STR(round_trip("{\"fUint64\": 18446744073709551615, \"fString\": "
                         "\"99999999999999999999\", \"rFixed64\": [18446744073709551614, 1]}",
                         &pb, &js),
              "{\"fUint64\":\"18446744073709551615\",\"fString\":\"99999999999999999999\","
              "\"rFixed64\":[\"18446744073709551614\",\"1\"]}");
    char err2[256];
    CHECK_EQ(j2p("{\"fInt64\": 9223372036854775808}", &pb, err2, false), GW_ERR_TYPE);
    CHECK_STR(err2, "f_int64: integer 9223372036854775808 out of range");
    /* proto3 optional keeps an explicit default; a plain field drops it. */
    CHECK_STR(round_trip("{\"oInt32\": 0, \"fInt32\": 0, \"oString\": \"\"}", &pb, &js),
              "{\"oInt32\":0,\"oString\":\"\"}");
    /* Well-known types. */
    CHECK_STR(
        round_trip("{\"wTimestamp\": \"1972-01-01T10:00:20.021+01:00\", \"wDuration\": \"-1.5s\","
                   " \"wInt64\": 7, \"wBool\": false, \"wMask\": \"a.fooBar,b\","
                   " \"wValue\": [1, \"s\", null, {\"k\": true}], \"wEmpty\": {},"
                   " \"wAny\": {\"@type\": \"type.googleapis.com/google.protobuf.Duration\","
                   " \"value\": \"3s\"}, \"rwAny\": [{\"@type\":"
                   " \"type.googleapis.com/gwtest.Inner\", \"a\": 4}]}",
                   &pb, &js),
        "{\"wTimestamp\":\"1972-01-01T09:00:20.021Z\",\"wDuration\":\"-1.500s\","
        "\"wInt64\":\"7\",\"wBool\":false,\"wValue\":[1,\"s\",null,{\"k\":true}],"
        "\"wMask\":\"a.fooBar,b\",\"wEmpty\":{},"
        "\"wAny\":{\"@type\":\"type.googleapis.com/google.protobuf.Duration\","
        "\"value\":\"3s\"},\"rwAny\":[{\"@type\":\"type.googleapis.com/gwtest.Inner\","
        "\"a\":4}]}");
    /* Maps with non-string keys. */
    CHECK_STR(round_trip("{\"mBoolString\": {\"true\": \"t\"}, \"mSint64Double\": {\"-9\": 0.5},"
                         " \"mUint32Inner\": {\"1\": {}}}",
                         &pb, &js),
              "{\"mUint32Inner\":{\"1\":{}},\"mSint64Double\":{\"-9\":0.5},"
              "\"mBoolString\":{\"true\":\"t\"}}");
    /* Output is canonical: field order by number whatever the key order. */
    char err[256];
    CHECK_EQ(j2p("{\"fInt32\": 1, \"fDouble\": 1}", &pb, err, false), GW_OK);
    const uint8_t want[] = {0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x28, 0x01};
    CHECK_EQ(pb.len, sizeof want);
    CHECK(memcmp(pb.data, want, sizeof want) == 0);
    gw_buf_free(&pb);
    gw_buf_free(&js);
}

static void test_pb_output(void)
{
    gw_buf_t js = {0};
    char err[256];
    /* Non-canonical wire: int32 field 5 twice (last wins), f_inner (17) in two records that
     * merge, an unknown field 999, and packed and unpacked records of r_int32 (35). */
    const uint8_t pb[] = {0x28, 0x01,                         /* f_int32 = 1 */
                          0x8a, 0x01, 0x02, 0x08, 0x07,       /* f_inner { a: 7 } */
                          0xb8, 0x3e, 0x05,                   /* field 999 varint */
                          0x98, 0x02, 0x01,                   /* r_int32: 1 (unpacked) */
                          0x9a, 0x02, 0x02, 0x02, 0x03,       /* r_int32: [2, 3] (packed) */
                          0x8a, 0x01, 0x03, 0x12, 0x01, 0x7a, /* f_inner { b: "z" } */
                          0x28, 0x02};                        /* f_int32 = 2 */
    CHECK_EQ(p2j(pb, sizeof pb, &js, err, false, false), GW_OK);
    CHECK_STR((const char *)js.data, "{\"fInt32\":2,\"fInner\":{\"a\":7,\"b\":\"z\"},"
                                     "\"rInt32\":[1,2,3]}");
    /* Of several oneof members on the wire, the last record wins. */
    const uint8_t oneof[] = {0x82, 0x05, 0x01, 'a', 0x88, 0x05, 0x07, 0x82, 0x05, 0x01, 'b'};
    CHECK_EQ(p2j(oneof, sizeof oneof, &js, err, false, false), GW_OK);
    CHECK_STR((const char *)js.data, "{\"cString\":\"b\"}");
    CHECK_EQ(p2j(oneof, 7, &js, err, false, false), GW_OK);
    CHECK_STR((const char *)js.data, "{\"cInt32\":7}");
    /* Original names. */
    const uint8_t one[] = {0x28, 0x05};
    CHECK_EQ(p2j(one, sizeof one, &js, err, true, false), GW_OK);
    CHECK_STR((const char *)js.data, "{\"f_int32\":5}");
    /* Emitted defaults: plain scalars, repeated and maps appear; presence fields do not. */
    CHECK_EQ(p2j(NULL, 0, &js, err, false, true), GW_OK);
    CHECK_CONTAINS((const char *)js.data, "\"fInt64\":\"0\"");
    CHECK_CONTAINS((const char *)js.data, "\"fEnum\":\"COLOR_UNSPECIFIED\"");
    CHECK_CONTAINS((const char *)js.data, "\"rInner\":[]");
    CHECK_CONTAINS((const char *)js.data, "\"mStringValue\":{}");
    CHECK(strstr((const char *)js.data, "oInt32") == NULL);
    CHECK(strstr((const char *)js.data, "fInner") == NULL);
    /* Unknown enum numbers are written as numbers. */
    const uint8_t e7[] = {0x60, 0x07};
    CHECK_EQ(p2j(e7, sizeof e7, &js, err, false, false), GW_OK);
    CHECK_STR((const char *)js.data, "{\"fEnum\":7}");
    /* Errors name the field path. */
    const uint8_t trunc[] = {0x8a, 0x01, 0x01, 0x08}; /* f_inner { a: <missing> } */
    CHECK_EQ(p2j(trunc, sizeof trunc, &js, err, false, false), GW_ERR_WIRE);
    CHECK_STR(err, "f_inner.a: malformed or truncated field");
    const uint8_t badlen[] = {0x4a, 0x05, 'a'}; /* f_string longer than the message */
    CHECK_EQ(p2j(badlen, sizeof badlen, &js, err, false, false), GW_ERR_WIRE);
    CHECK_STR(err, "f_string: malformed or truncated field");
    const uint8_t badutf[] = {0x4a, 0x01, 0xff};
    CHECK_EQ(p2j(badutf, sizeof badutf, &js, err, false, false), GW_ERR_VALUE);
    CHECK_STR(err, "f_string: string is not valid UTF-8");
    const uint8_t badts[] = {0xa2, 0x06, 0x0a, 0x08, 0xff, 0xff, 0xff,
                             0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}; /* w_timestamp seconds = 2^63-1 */
    CHECK_EQ(p2j(badts, sizeof badts, &js, err, false, false), GW_ERR_VALUE);
    CHECK_STR(err, "w_timestamp: timestamp out of range");
    /* Any inside Any inside Any ... past GW_MAX_DEPTH is refused, not a stack overflow. */
    {
        static const char url[] = "type.googleapis.com/google.protobuf.Any";
        gw_buf_t a = {0}, t = {0};
        for (int i = 0; i < 300; i++) {
            /* t = Any{type_url: url, value: a} */
            t.len = 0;
            uint8_t h[12];
            size_t k = 0;
            h[k++] = 0x0a;
            h[k++] = (uint8_t)(sizeof url - 1);
            gw_buf_put(&t, h, k);
            gw_buf_put(&t, url, sizeof url - 1);
            k = 0;
            h[k++] = 0x12;
            size_t n = a.len;
            do {
                h[k++] = (uint8_t)((n & 0x7f) | (n >= 0x80 ? 0x80 : 0));
                n >>= 7;
            } while (n);
            gw_buf_put(&t, h, k);
            gw_buf_put(&t, a.data, a.len);
            gw_buf_t tmp = a;
            a = t;
            t = tmp;
        }
        gw_pb_json_opts_t o = {.resolve = gw_resolve_in_schema, .resolve_ud = S};
        const gw_message_t *any = gw_schema_find_message(S, "google.protobuf.Any");
        js.len = 0;
        CHECK_EQ(gw_pb_to_json(any, a.data, a.len, &o, &js, err, sizeof err), GW_ERR_DEPTH);
        CHECK_CONTAINS(err, "nesting deeper than 100");
        gw_buf_free(&a);
        gw_buf_free(&t);
    }
    /* The buffer is reused: a second identical call does not grow it. */
    CHECK_EQ(p2j(pb, sizeof pb, &js, err, false, false), GW_OK);
    size_t cap = js.cap;
    uint8_t *data = js.data;
    CHECK_EQ(p2j(pb, sizeof pb, &js, err, false, false), GW_OK);
    CHECK(js.cap == cap && js.data == data);
    gw_buf_free(&js);
}

/* Workers share one schema snapshot: each takes a reference, transcodes, drops it; the owner's
 * unref after the joins frees it (ASan/TSan builds check the sharing). */
static void *worker(void *arg)
{
    gw_schema_t *s = gw_schema_ref(arg);
    const gw_message_t *m = gw_schema_find_message(s, "gwtest.Inner");
    gw_json_pb_opts_t jo = {0};
    gw_pb_json_opts_t po = {0};
    gw_buf_t pb = {0}, js = {0};
    char err[256];
    for (int i = 0; i < 2000; i++) {
        pb.len = js.len = 0;
        CHECK_EQ(gw_json_to_pb(m, "{\"a\":1,\"b\":\"x\"}", 15, &jo, &pb, err, sizeof err), GW_OK);
        CHECK_EQ(gw_pb_to_json(m, pb.data, pb.len, &po, &js, err, sizeof err), GW_OK);
        CHECK(js.len == 15 && memcmp(js.data, "{\"a\":1,\"b\":\"x\"}", 15) == 0);
    }
    gw_buf_free(&pb);
    gw_buf_free(&js);
    gw_schema_unref(s);
    return NULL;
}

/* A schema from the sidecar's descriptor pool equals one from the set. */
static void test_from_pool(const uint8_t *set, size_t n)
{
    mesh_desc_pool_t *pool = mesh_desc_pool_new();
    CHECK(mesh_desc_pool_add_set(pool, set, n) > 0);
    char err[256];
    gw_schema_t *s = gw_schema_build_from_pool(pool, err, sizeof err);
    CHECK(s != NULL);
    CHECK_EQ(gw_schema_message_count(s), gw_schema_message_count(S));
    const gw_message_t *m = gw_schema_find_message(s, "gwtest.AllTypes");
    CHECK(m && m->n_fields == ALL->n_fields);
    gw_schema_unref(s);
    mesh_desc_pool_free(pool);
}

static void test_shared_snapshot(void)
{
    size_t n;
    const uint8_t *wkt = gw_wkt_descriptor_set(&n);
    char err[256];
    gw_schema_t *s = gw_schema_build_set(wkt, n, err, sizeof err);
    CHECK(s != NULL);
    /* The built-in well-known types alone build too. */
    gw_schema_unref(s);
    pthread_t t[4];
    gw_schema_ref(S);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, worker, S), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    gw_schema_unref(S);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_gateway_codec codec_test.pb\n");
        return 2;
    }
    char err[1200];
    size_t n;
    uint8_t *set = (uint8_t *)mesh_file_read(argv[1], 16u << 20, 0, &n, err, sizeof err);
    if (!set)
        fprintf(stderr, "%s\n", err);
    CHECK(set != NULL);
    S = gw_schema_build_set(set, n, err, sizeof err);
    if (!S)
        fprintf(stderr, "%s\n", err);
    CHECK(S != NULL);
    ALL = gw_schema_find_message(S, "gwtest.AllTypes");
    CHECK(ALL != NULL);
    RUN(test_schema_errors);
    RUN(test_json_errors);
    RUN(test_json_input_forms);
    RUN(test_pb_output);
    RUN(test_shared_snapshot);
    test_from_pool(set, n);
    gw_schema_unref(S);
    free(set);
    printf("test_gateway_codec: ok\n");
    return 0;
}
