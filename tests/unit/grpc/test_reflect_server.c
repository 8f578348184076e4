/*
 * tests/unit/grpc/test_reflect_server.c: the answering side of server reflection
 * (grpc/reflect_server.h) over the demo descriptor set: list_services, the four file lookups
 * with their imports, extensions, errors for unknown names, pending services (HOLD, then a
 * NOT_FOUND saying why) and conflicting files (a clear error, never a mixed answer).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../check.h"
#include "demo_set.h"
#include "grpc/descriptors.h"
#include "grpc/reflect_server.h"
#include "grpc/reflection/v1/reflection.pb-c.h"

typedef Grpc__Reflection__V1__ServerReflectionRequest req_t;
typedef Grpc__Reflection__V1__ServerReflectionResponse resp_t;

static mesh_rsrv_index_t *ix;

/* A file "x/ext.proto" that extends demo.v1.Greeting with field 100 (top level) and 101
 * (inside message x.Holder). */
static uint8_t *ext_file(size_t *len)
{
    Google__Protobuf__FileDescriptorProto f = GOOGLE__PROTOBUF__FILE_DESCRIPTOR_PROTO__INIT;
    Google__Protobuf__FieldDescriptorProto e1 = GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__INIT;
    Google__Protobuf__FieldDescriptorProto e2 = GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__INIT;
    Google__Protobuf__DescriptorProto holder = GOOGLE__PROTOBUF__DESCRIPTOR_PROTO__INIT;
    char *deps[] = {"demo/v1/common.proto"};
    f.name = "x/ext.proto";
    f.package = "x";
    f.n_dependency = 1;
    f.dependency = deps;
    e1.name = "tag";
    e1.has_number = 1;
    e1.number = 100;
    e1.extendee = ".demo.v1.Greeting";
    e2 = e1;
    e2.name = "inner_tag";
    e2.number = 101;
    holder.name = "Holder";
    Google__Protobuf__FieldDescriptorProto *he[] = {&e2};
    holder.n_extension = 1;
    holder.extension = he;
    Google__Protobuf__FieldDescriptorProto *fe[] = {&e1};
    f.n_extension = 1;
    f.extension = fe;
    Google__Protobuf__DescriptorProto *msgs[] = {&holder};
    f.n_message_type = 1;
    f.message_type = msgs;
    *len = google__protobuf__file_descriptor_proto__get_packed_size(&f);
    uint8_t *b = malloc(*len);
    google__protobuf__file_descriptor_proto__pack(&f, b);
    return b;
}

static mesh_rsrv_index_t *build(void)
{
    mesh_desc_pool_t *p = mesh_desc_pool_new();
    size_t len;
    uint8_t *buf = demo_read_file(DEMO_SET, &len);
    CHECK(mesh_desc_pool_add_set(p, buf, len) > 0);
    free(buf);
    buf = ext_file(&len);
    CHECK_EQ(mesh_desc_pool_add_file(p, buf, len), 0);
    free(buf);
    mesh_rsrv_index_t *x = mesh_rsrv_index_new(p, 7);
    mesh_desc_pool_free(p); /* the index keeps its own copies */
    CHECK(x);
    return x;
}

/* Packs a request, answers it, unpacks the response (NULL unless ANSWER). */
static const char *const *pending;
static size_t n_pending;

static resp_t *ask_ix(const mesh_rsrv_index_t *x, req_t *rq, int may_hold,
                      mesh_rsrv_result_t *rc_out)
{
    static const char *svcs[] = {"demo.v1.Greeter", "demo.v1.Counter", "grpc.health.v1.Health"};
    uint8_t buf[4096];
    size_t n = grpc__reflection__v1__server_reflection_request__pack(rq, buf);
    uint8_t *out;
    size_t out_len;
    char err[256];
    mesh_rsrv_result_t rc = mesh_rsrv_answer(x, svcs, 3, pending, n_pending, may_hold, buf, n, &out,
                                             &out_len, err, sizeof(err));
    if (rc_out)
        *rc_out = rc;
    if (rc != MESH_RSRV_ANSWER)
        return NULL;
    resp_t *r = grpc__reflection__v1__server_reflection_response__unpack(NULL, out_len, out);
    free(out);
    CHECK(r);
    return r;
}

static resp_t *ask_symbol(const char *sym)
{
    req_t rq = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
    rq.message_request_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL;
    rq.file_containing_symbol = (char *)sym;
    resp_t *r = ask_ix(ix, &rq, 1, NULL);
    CHECK(r);
    return r;
}

/* The name of the i-th file of a file_descriptor_response. */
static char *file_name(const resp_t *r, size_t i, char *buf, size_t cap)
{
    CHECK(
        r->message_response_case ==
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE);
    CHECK(i < r->file_descriptor_response->n_file_descriptor_proto);
    ProtobufCBinaryData *b = &r->file_descriptor_response->file_descriptor_proto[i];
    Google__Protobuf__FileDescriptorProto *f =
        google__protobuf__file_descriptor_proto__unpack(NULL, b->len, b->data);
    CHECK(f);
    snprintf(buf, cap, "%s", f->name);
    google__protobuf__file_descriptor_proto__free_unpacked(f, NULL);
    return buf;
}

static void check_greeter_files(const resp_t *r)
{
    char b[256];
    CHECK_EQ(r->file_descriptor_response->n_file_descriptor_proto, 3);
    CHECK_STR(file_name(r, 0, b, sizeof(b)), "demo/v1/greeter.proto");
    CHECK_STR(file_name(r, 1, b, sizeof(b)), "demo/v1/common.proto");
    CHECK_STR(file_name(r, 2, b, sizeof(b)), "google/protobuf/timestamp.proto");
}

static void test_list_services(void)
{
    req_t rq = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
    rq.host = "entry";
    rq.message_request_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES;
    rq.list_services = "*";
    resp_t *r = ask_ix(ix, &rq, 1, NULL);
    CHECK(r);
    CHECK_STR(r->valid_host, "entry");
    CHECK(r->original_request);
    CHECK_STR(r->original_request->list_services, "*");
    CHECK(
        r->message_response_case ==
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE);
    const char *want[] = {"demo.v1.Counter", "demo.v1.Greeter", "grpc.health.v1.Health",
                          "grpc.reflection.v1.ServerReflection",
                          "grpc.reflection.v1alpha.ServerReflection"};
    CHECK_EQ(r->list_services_response->n_service, 5); /* health listed once */
    for (size_t i = 0; i < 5; i++)
        CHECK_STR(r->list_services_response->service[i]->name, want[i]);
    grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);

    /* without descriptors the listing still names the routed services */
    r = ask_ix(NULL, &rq, 1, NULL);
    CHECK(r);
    CHECK_EQ(r->list_services_response->n_service, 5);
    grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
}

static void test_symbols(void)
{
    const char *greeter[] = {"demo.v1.Greeter", "demo.v1.Greeter.SayHello", ".demo.v1.HelloRequest",
                             "demo.v1.HelloRequest.name", "demo.v1.Counter.Count"};
    for (size_t i = 0; i < sizeof(greeter) / sizeof(*greeter); i++) {
        resp_t *r = ask_symbol(greeter[i]);
        check_greeter_files(r);
        grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
    }
    char b[256];
    resp_t *r = ask_symbol("demo.v1.Greeting.Meta");
    CHECK_EQ(r->file_descriptor_response->n_file_descriptor_proto, 1);
    CHECK_STR(file_name(r, 0, b, sizeof(b)), "demo/v1/common.proto");
    grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
    r = ask_symbol("grpc.health.v1.HealthCheckResponse.SERVING"); /* an enum value */
    CHECK_STR(file_name(r, 0, b, sizeof(b)), "grpc/health/v1/health.proto");
    grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
}

static void test_file_by_filename(void)
{
    req_t rq = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
    rq.message_request_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME;
    rq.file_by_filename = "demo/v1/greeter.proto";
    resp_t *r = ask_ix(ix, &rq, 1, NULL);
    CHECK(r);
    check_greeter_files(r);
    grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
    rq.file_by_filename = "nope.proto";
    r = ask_ix(ix, &rq, 1, NULL);
    CHECK(r);
    CHECK_EQ(r->error_response->error_code, MESH_RSRV_NOT_FOUND);
    CHECK_CONTAINS(r->error_response->error_message, "file 'nope.proto' not found");
    grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
}

static void test_extensions(void)
{
    char b[256];
    req_t rq = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
    Grpc__Reflection__V1__ExtensionRequest er = GRPC__REFLECTION__V1__EXTENSION_REQUEST__INIT;
    er.containing_type = "demo.v1.Greeting";
    er.extension_number = 101;
    rq.message_request_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION;
    rq.file_containing_extension = &er;
    resp_t *r = ask_ix(ix, &rq, 1, NULL);
    CHECK(r);
    CHECK_EQ(r->file_descriptor_response->n_file_descriptor_proto, 2);
    CHECK_STR(file_name(r, 0, b, sizeof(b)), "x/ext.proto");
    CHECK_STR(file_name(r, 1, b, sizeof(b)), "demo/v1/common.proto");
    grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
    er.extension_number = 102;
    r = ask_ix(ix, &rq, 1, NULL);
    CHECK_EQ(r->error_response->error_code, MESH_RSRV_NOT_FOUND);
    CHECK_CONTAINS(r->error_response->error_message, "extension 102");
    grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);

    req_t all = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
    all.message_request_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE;
    all.all_extension_numbers_of_type = "demo.v1.Greeting";
    r = ask_ix(ix, &all, 1, NULL);
    CHECK(r);
    CHECK_STR(r->all_extension_numbers_response->base_type_name, "demo.v1.Greeting");
    CHECK_EQ(r->all_extension_numbers_response->n_extension_number, 2);
    CHECK_EQ(r->all_extension_numbers_response->extension_number[0], 100);
    CHECK_EQ(r->all_extension_numbers_response->extension_number[1], 101);
    grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
    all.all_extension_numbers_of_type = "demo.v1.HelloRequest"; /* known, no extensions */
    r = ask_ix(ix, &all, 1, NULL);
    CHECK_EQ(r->all_extension_numbers_response->n_extension_number, 0);
    grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
}

static void test_unknown(void)
{
    resp_t *r = ask_symbol("demo.v1.Nope");
    CHECK(r->message_response_case ==
          GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE);
    CHECK_EQ(r->error_response->error_code, MESH_RSRV_NOT_FOUND);
    CHECK_CONTAINS(r->error_response->error_message, "symbol 'demo.v1.Nope' not found");
    grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);

    /* nothing asked: UNIMPLEMENTED in an error_response, as grpc's servers answer */
    req_t rq = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
    r = ask_ix(ix, &rq, 1, NULL);
    CHECK(r);
    CHECK_EQ(r->error_response->error_code, MESH_RSRV_UNIMPLEMENTED);
    grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);

    /* garbage is BAD with a reason, never an answer */
    const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    uint8_t *out = (uint8_t *)1;
    size_t out_len = 1;
    char err[128] = "";
    CHECK_EQ(mesh_rsrv_answer(ix, NULL, 0, NULL, 0, 1, junk, sizeof(junk), &out, &out_len, err,
                              sizeof(err)),
             MESH_RSRV_BAD);
    CHECK(out == NULL && out_len == 0);
    CHECK_CONTAINS(err, "not a ServerReflectionRequest");
}

static void test_pending(void)
{
    mesh_rsrv_index_t *x = build();
    static const char *cart[] = {"shop.v2.Cart", "demo.v1.Greeter"};
    CHECK_EQ(mesh_rsrv_index_has_service(x, "shop.v2.Cart"), 0);
    CHECK_EQ(mesh_rsrv_index_has_service(x, "demo.v1.Greeter"), 1);
    pending = cart;
    n_pending = 1;
    req_t rq = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
    rq.message_request_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL;
    mesh_rsrv_result_t rc;
    const char *held[] = {"shop.v2.Cart", "shop.v2.Cart.Add", "shop.v2.AddRequest"};
    for (size_t i = 0; i < 3; i++) {
        rq.file_containing_symbol = (char *)held[i];
        CHECK(ask_ix(x, &rq, 1, &rc) == NULL);
        CHECK_EQ(rc, MESH_RSRV_HOLD);
        resp_t *r = ask_ix(x, &rq, 0, &rc);
        CHECK(r);
        CHECK_EQ(r->error_response->error_code, MESH_RSRV_NOT_FOUND);
        CHECK_CONTAINS(r->error_response->error_message,
                       "the descriptors of shop.v2.Cart are not fetched yet");
        grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
    }
    /* another package is not held; known symbols are answered at once */
    rq.file_containing_symbol = "other.Thing";
    resp_t *r = ask_ix(x, &rq, 1, &rc);
    CHECK(r);
    CHECK_EQ(r->error_response->error_code, MESH_RSRV_NOT_FOUND);
    grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
    rq.file_containing_symbol = "demo.v1.Greeter";
    r = ask_ix(x, &rq, 1, &rc);
    CHECK(r);
    check_greeter_files(r);
    grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
    /* a file name is held while anything is pending */
    req_t fq = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
    fq.message_request_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME;
    fq.file_by_filename = "shop/v2/cart.proto";
    CHECK(ask_ix(x, &fq, 1, &rc) == NULL);
    CHECK_EQ(rc, MESH_RSRV_HOLD);
    pending = NULL;
    n_pending = 0;

    /* a service that serves no reflection is never pending, and a miss under it says why */
    CHECK_EQ(
        mesh_rsrv_index_add_unfetchable(x, "shop.v2.Cart", "its instances serve no reflection"), 0);
    CHECK_EQ(mesh_rsrv_index_has_service(x, "shop.v2.Cart"), 1);
    rq.file_containing_symbol = "shop.v2.AddRequest";
    r = ask_ix(x, &rq, 1, &rc);
    CHECK(r);
    CHECK_CONTAINS(r->error_response->error_message,
                   "service shop.v2.Cart: its instances serve no reflection");
    grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
    mesh_rsrv_index_unref(x);
}

static void test_conflict(void)
{
    mesh_rsrv_index_t *x = build();
    CHECK_EQ(mesh_rsrv_index_add_conflict(x, "demo/v1/common.proto",
                                          "differs between demo.v1.Greeter and demo.v1.Counter"),
             0);
    mesh_rsrv_index_t *saved = ix;
    ix = x;
    resp_t *r = ask_symbol("demo.v1.Greeter"); /* imports the conflicting file */
    CHECK_EQ(r->error_response->error_code, MESH_RSRV_FAILED_PRECONDITION);
    CHECK_CONTAINS(r->error_response->error_message, "demo/v1/common.proto");
    CHECK_CONTAINS(r->error_response->error_message, "differs between");
    grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
    r = ask_symbol("grpc.health.v1.Health"); /* untouched by the conflict */
    CHECK(
        r->message_response_case ==
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE);
    grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
    ix = saved;
    /* a reference outlives its maker */
    mesh_rsrv_index_t *ref = mesh_rsrv_index_ref(x);
    mesh_rsrv_index_unref(x);
    CHECK_EQ(mesh_rsrv_index_generation(ref), 7);
    mesh_rsrv_index_unref(ref);
}

/* Indexes without files or without extensions answer like any other. */
static void test_small_indexes(void)
{
    mesh_rsrv_index_t *empty = mesh_rsrv_index_new(NULL, 1);
    CHECK(empty);
    /* gRPC's own services are always described: health and both reflection versions */
    CHECK_EQ(mesh_rsrv_index_files(empty), 3);
    CHECK(mesh_rsrv_index_has_service(empty, "grpc.health.v1.Health"));
    CHECK(mesh_rsrv_index_has_service(empty, "grpc.reflection.v1.ServerReflection"));
    CHECK(mesh_rsrv_index_has_service(empty, "grpc.reflection.v1alpha.ServerReflection"));
    mesh_desc_pool_t *p = mesh_desc_pool_new();
    size_t len = 0;
    Google__Protobuf__FileDescriptorSet *set = demo_set_load();
    uint8_t *buf = demo_set_file(set, "demo/v1/common.proto", &len);
    CHECK_EQ(mesh_desc_pool_add_file(p, buf, len), 0);
    free(buf);
    google__protobuf__file_descriptor_set__free_unpacked(set, NULL);
    mesh_rsrv_index_t *noext = mesh_rsrv_index_new(p, 2);
    mesh_desc_pool_free(p);
    CHECK(noext);
    req_t rq = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
    rq.message_request_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE;
    rq.all_extension_numbers_of_type = "demo.v1.Greeting";
    resp_t *r = ask_ix(noext, &rq, 0, NULL);
    CHECK(r);
    CHECK_EQ(r->all_extension_numbers_response->n_extension_number, 0);
    grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
    r = ask_ix(empty, &rq, 0, NULL);
    CHECK(r);
    CHECK_EQ(r->error_response->error_code, MESH_RSRV_NOT_FOUND);
    grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
    mesh_rsrv_index_unref(empty);
    mesh_rsrv_index_unref(noext);
}

int main(void)
{
    ix = build();
    CHECK(mesh_rsrv_index_files(ix) >= 5);
    CHECK(mesh_rsrv_index_symbols(ix) > 20);
    RUN(test_list_services);
    RUN(test_symbols);
    RUN(test_file_by_filename);
    RUN(test_extensions);
    RUN(test_unknown);
    RUN(test_pending);
    RUN(test_conflict);
    RUN(test_small_indexes);
    mesh_rsrv_index_unref(ix);
    return 0;
}
