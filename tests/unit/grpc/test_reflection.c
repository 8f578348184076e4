/*
 * tests/unit/grpc/test_reflection.c: the reflection conversation against answers built
 * from a real protoc descriptor set.
 *
 * `serve()` answers each request the way a gRPC reflection service does: list_services lists
 * the app's services plus Health and reflection; file_containing_symbol returns the defining
 * file and those of its imports the server chooses to send (here: not demo/v1/common.proto,
 * as servers may skip files, so file_by_filename is exercised); file_by_filename returns the
 * file or NOT_FOUND. Knobs make it misbehave for the failure tests.
 */
#include "grpc/reflection.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demo_set.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "grpc/reflection/v1alpha/reflection.pb-c.h"
#include "tests/check.h"

typedef struct {
    Google__Protobuf__FileDescriptorSet *set;
    int v1_unimplemented;     /* v1 stream ends UNIMPLEMENTED at once */
    int list_error;           /* list_services answers error_response */
    const char *symbol_error; /* file_containing_symbol(this) answers NOT_FOUND */
    int hide_common;          /* file_by_filename(common.proto) answers NOT_FOUND */
    int garbage_after;        /* after this many answers, send garbage (0: never) */
    int end_after;            /* after this many answers, end the stream UNAVAILABLE */
    int answers;
    const char *path; /* stream opened */
    int opens;
    char *requested[32];
    int n_requested;
} server_t;

static void add_file(server_t *s, Grpc__Reflection__V1__FileDescriptorResponse *fr,
                     ProtobufCBinaryData *slots, const char *name)
{
    size_t len;
    uint8_t *b = demo_set_file(s->set, name, &len);
    CHECK(b);
    slots[fr->n_file_descriptor_proto].data = b;
    slots[fr->n_file_descriptor_proto].len = len;
    fr->n_file_descriptor_proto++;
}

/* Answers one request; returns the serialized response (malloc'ed) in *out. */
static size_t serve(server_t *s, const uint8_t *req_data, size_t req_len, uint8_t **out)
{
    Grpc__Reflection__V1__ServerReflectionRequest *req =
        grpc__reflection__v1__server_reflection_request__unpack(NULL, req_len, req_data);
    CHECK(req);
    Grpc__Reflection__V1__ServerReflectionResponse resp =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__INIT;
    Grpc__Reflection__V1__ListServiceResponse list =
        GRPC__REFLECTION__V1__LIST_SERVICE_RESPONSE__INIT;
    Grpc__Reflection__V1__ServiceResponse svcs[4];
    Grpc__Reflection__V1__ServiceResponse *svcp[4];
    Grpc__Reflection__V1__FileDescriptorResponse fr =
        GRPC__REFLECTION__V1__FILE_DESCRIPTOR_RESPONSE__INIT;
    ProtobufCBinaryData slots[8];
    fr.file_descriptor_proto = slots;
    Grpc__Reflection__V1__ErrorResponse er = GRPC__REFLECTION__V1__ERROR_RESPONSE__INIT;
    er.error_code = 5; /* NOT_FOUND */

    char tag[160];
    switch (req->message_request_case) {
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
        snprintf(tag, sizeof(tag), "list");
        if (s->list_error) {
            er.error_code = 13;
            er.error_message = "broken";
            resp.message_response_case =
                GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
            resp.error_response = &er;
            break;
        }
        {
            const char *names[] = {"grpc.health.v1.Health", "demo.v1.Greeter",
                                   "grpc.reflection.v1alpha.ServerReflection", "demo.v1.Counter"};
            for (int i = 0; i < 4; i++) {
                Grpc__Reflection__V1__ServiceResponse init =
                    GRPC__REFLECTION__V1__SERVICE_RESPONSE__INIT;
                svcs[i] = init;
                svcs[i].name = (char *)names[i];
                svcp[i] = &svcs[i];
            }
        }
        list.service = svcp;
        list.n_service = 4;
        resp.message_response_case =
            GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
        resp.list_services_response = &list;
        break;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
        snprintf(tag, sizeof(tag), "symbol:%s", req->file_containing_symbol);
        if (s->symbol_error && strcmp(req->file_containing_symbol, s->symbol_error) == 0) {
            er.error_message = "symbol not found";
            resp.message_response_case =
                GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
            resp.error_response = &er;
            break;
        }
        CHECK(strncmp(req->file_containing_symbol, "demo.v1.", 8) == 0);
        add_file(s, &fr, slots, "demo/v1/greeter.proto");
        add_file(s, &fr, slots, "google/protobuf/timestamp.proto");
        resp.message_response_case =
            GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
        resp.file_descriptor_response = &fr;
        break;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
        snprintf(tag, sizeof(tag), "file:%s", req->file_by_filename);
        if (s->hide_common || strcmp(req->file_by_filename, "demo/v1/common.proto") != 0) {
            er.error_message = "file not found";
            resp.message_response_case =
                GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
            resp.error_response = &er;
            break;
        }
        add_file(s, &fr, slots, req->file_by_filename);
        resp.message_response_case =
            GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
        resp.file_descriptor_response = &fr;
        break;
    default:
        CHECK(!"unexpected request kind");
    }
    CHECK(s->n_requested < 32);
    s->requested[s->n_requested++] = strdup(tag);
    resp.original_request = req;

    size_t n;
    if (s->opens == 2 && s->v1_unimplemented) {
        /* Answer on v1alpha with the v1alpha generated code: same wire format. */
        n = grpc__reflection__v1__server_reflection_response__get_packed_size(&resp);
        *out = malloc(n);
        grpc__reflection__v1__server_reflection_response__pack(&resp, *out);
        Grpc__Reflection__V1alpha__ServerReflectionResponse *a =
            grpc__reflection__v1alpha__server_reflection_response__unpack(NULL, n, *out);
        CHECK(a);
        free(*out);
        n = grpc__reflection__v1alpha__server_reflection_response__get_packed_size(a);
        *out = malloc(n);
        grpc__reflection__v1alpha__server_reflection_response__pack(a, *out);
        grpc__reflection__v1alpha__server_reflection_response__free_unpacked(a, NULL);
    } else {
        n = grpc__reflection__v1__server_reflection_response__get_packed_size(&resp);
        *out = malloc(n);
        grpc__reflection__v1__server_reflection_response__pack(&resp, *out);
    }
    for (size_t i = 0; i < fr.n_file_descriptor_proto; i++)
        free(slots[i].data);
    grpc__reflection__v1__server_reflection_request__free_unpacked(req, NULL);
    return n;
}

/* Drives a conversation against s to its end; returns the final action. */
static mesh_reflect_action_t drive(mesh_reflect_t *r, server_t *s)
{
    int stream_open = 0;
    for (int steps = 0; steps < 200; steps++) {
        mesh_reflect_out_t out;
        mesh_reflect_action_t a = mesh_reflect_next(r, &out);
        switch (a) {
        case MESH_REFLECT_OPEN:
            s->path = out.path;
            s->opens++;
            stream_open = 1;
            break;
        case MESH_REFLECT_SEND: {
            CHECK(stream_open);
            if (s->v1_unimplemented && strcmp(s->path, MESH_REFLECT_V1_PATH) == 0) {
                stream_open = 0;
                mesh_reflect_on_stream_end(r, 12, "unknown service grpc.reflection.v1...");
                break;
            }
            s->answers++;
            if (s->end_after && s->answers > s->end_after) {
                mesh_reflect_on_stream_end(r, 14, "connection reset");
                break;
            }
            if (s->garbage_after && s->answers > s->garbage_after) {
                const uint8_t junk[] = {0x22, 0x05, 0x0a, 0xff, 0xff};
                CHECK(mesh_reflect_on_response(r, junk, sizeof(junk)) == -1);
                break;
            }
            uint8_t *resp;
            size_t n = serve(s, out.data, out.len, &resp);
            mesh_reflect_on_response(r, resp, n);
            free(resp);
            break;
        }
        case MESH_REFLECT_WAIT:
            CHECK(!"WAIT with no answer pending in a synchronous driver");
            break;
        case MESH_REFLECT_DONE:
        case MESH_REFLECT_FAILED:
            return a;
        }
    }
    CHECK(!"conversation did not end");
    return MESH_REFLECT_FAILED;
}

static void server_init(server_t *s, Google__Protobuf__FileDescriptorSet *set)
{
    memset(s, 0, sizeof(*s));
    s->set = set;
}

static void server_destroy(server_t *s)
{
    for (int i = 0; i < s->n_requested; i++)
        free(s->requested[i]);
}

static void check_full_model(mesh_desc_pool_t *p)
{
    CHECK(p != NULL);
    /* Health and reflection are left out; both app services are in. */
    CHECK(mesh_desc_pool_service_count(p) == 2);
    CHECK(strcmp(mesh_desc_pool_service(p, 0)->name, "demo.v1.Counter") == 0);
    CHECK(strcmp(mesh_desc_pool_service(p, 1)->name, "demo.v1.Greeter") == 0);
    CHECK(mesh_desc_pool_find_method(p, "/grpc.health.v1.Health/Check") == NULL);
    const mesh_desc_method_t *m = mesh_desc_pool_find_method(p, "/demo.v1.Greeter/Chat");
    CHECK(m && m->kind == MESH_CALL_BIDI && strcmp(m->output_type, "demo.v1.Greeting.Meta") == 0);
    m = mesh_desc_pool_find_method(p, "/demo.v1.Greeter/ListGreetings");
    CHECK(m && m->kind == MESH_CALL_SERVER_STREAMING);
    /* The files are kept for the transcoder. */
    CHECK(mesh_desc_pool_find_file(p, "demo/v1/common.proto") != NULL);
    CHECK(mesh_desc_pool_find_message(p, "demo.v1.HelloRequest") != NULL);
}

static void test_v1_conversation(Google__Protobuf__FileDescriptorSet *set)
{
    server_t s;
    server_init(&s, set);
    mesh_reflect_t *r = mesh_reflect_new(NULL);
    CHECK(drive(r, &s) == MESH_REFLECT_DONE);
    CHECK(s.opens == 1 && strcmp(s.path, MESH_REFLECT_V1_PATH) == 0);
    /* The requests, in order: infra services are never asked about; common.proto by name. */
    CHECK(s.n_requested == 4);
    CHECK(strcmp(s.requested[0], "list") == 0);
    CHECK(strcmp(s.requested[1], "symbol:demo.v1.Greeter") == 0);
    CHECK(strcmp(s.requested[2], "symbol:demo.v1.Counter") == 0);
    CHECK(strcmp(s.requested[3], "file:demo/v1/common.proto") == 0);
    CHECK(mesh_reflect_warning_count(r) == 0);
    mesh_desc_pool_t *p = mesh_reflect_take_pool(r);
    check_full_model(p);
    CHECK(mesh_reflect_take_pool(r) == NULL);
    mesh_reflect_free(r);
    mesh_desc_pool_free(p);
    server_destroy(&s);
}

static void test_v1alpha_fallback(Google__Protobuf__FileDescriptorSet *set)
{
    server_t s;
    server_init(&s, set);
    s.v1_unimplemented = 1;
    mesh_reflect_t *r = mesh_reflect_new("localhost");
    CHECK(drive(r, &s) == MESH_REFLECT_DONE);
    CHECK(s.opens == 2 && strcmp(s.path, MESH_REFLECT_V1ALPHA_PATH) == 0);
    CHECK(strcmp(mesh_reflect_path(r), MESH_REFLECT_V1ALPHA_PATH) == 0);
    mesh_desc_pool_t *p = mesh_reflect_take_pool(r);
    check_full_model(p);
    mesh_desc_pool_free(p);
    mesh_reflect_free(r);
    server_destroy(&s);
}

static void test_service_error_is_a_warning(Google__Protobuf__FileDescriptorSet *set)
{
    server_t s;
    server_init(&s, set);
    s.symbol_error = "demo.v1.Counter";
    mesh_reflect_t *r = mesh_reflect_new(NULL);
    CHECK(drive(r, &s) == MESH_REFLECT_DONE);
    CHECK(mesh_reflect_warning_count(r) == 1);
    CHECK(strstr(mesh_reflect_last_warning(r), "demo.v1.Counter") != NULL);
    mesh_desc_pool_t *p = mesh_reflect_take_pool(r);
    CHECK(mesh_desc_pool_service_count(p) == 1);
    CHECK(mesh_desc_pool_find_service(p, "demo.v1.Greeter") != NULL);
    mesh_desc_pool_free(p);
    mesh_reflect_free(r);
    server_destroy(&s);
}

/* Runs a failing scenario and checks the error mentions want. */
static void expect_failure(Google__Protobuf__FileDescriptorSet *set, server_t *s, const char *want)
{
    mesh_reflect_t *r = mesh_reflect_new(NULL);
    CHECK(drive(r, s) == MESH_REFLECT_FAILED);
    if (!strstr(mesh_reflect_error(r), want)) {
        fprintf(stderr, "error \"%s\" lacks \"%s\"\n", mesh_reflect_error(r), want);
        exit(1);
    }
    CHECK(mesh_reflect_take_pool(r) == NULL);
    /* Further input is refused without a crash. */
    mesh_reflect_out_t out;
    CHECK(mesh_reflect_next(r, &out) == MESH_REFLECT_FAILED);
    CHECK(mesh_reflect_on_response(r, (const uint8_t *)"x", 1) == -1);
    mesh_reflect_on_stream_end(r, 0, NULL);
    mesh_reflect_free(r);
    server_destroy(s);
    (void)set;
}

static void test_failures(Google__Protobuf__FileDescriptorSet *set)
{
    server_t s;
    server_init(&s, set);
    s.list_error = 1;
    expect_failure(set, &s, "list_services: server error 13: broken");

    server_init(&s, set);
    s.garbage_after = 1;
    expect_failure(set, &s, "demo.v1.Greeter");

    server_init(&s, set);
    s.garbage_after = 0;
    s.end_after = 2;
    expect_failure(set, &s, "status 14: connection reset");

    /* A dependency the server cannot give: the method types do not resolve. */
    server_init(&s, set);
    s.hide_common = 1;
    expect_failure(set, &s, "demo.v1.Greeting");

    /* An answer without a request, and a response that is garbage from the start. */
    mesh_reflect_t *r = mesh_reflect_new(NULL);
    CHECK(mesh_reflect_on_response(r, (const uint8_t *)"", 0) == -1);
    CHECK(strstr(mesh_reflect_error(r), "without a request") != NULL);
    mesh_reflect_free(r);

    /* UNIMPLEMENTED on v1alpha too: a clear failure, no endless retry. */
    r = mesh_reflect_new(NULL);
    mesh_reflect_out_t out;
    CHECK(mesh_reflect_next(r, &out) == MESH_REFLECT_OPEN);
    mesh_reflect_on_stream_end(r, 12, NULL);
    CHECK(mesh_reflect_next(r, &out) == MESH_REFLECT_OPEN);
    CHECK(strcmp(out.path, MESH_REFLECT_V1ALPHA_PATH) == 0);
    CHECK(mesh_reflect_next(r, &out) == MESH_REFLECT_SEND);
    CHECK(mesh_reflect_next(r, &out) == MESH_REFLECT_WAIT);
    mesh_reflect_on_stream_end(r, 12, "unknown service");
    CHECK(mesh_reflect_next(r, &out) == MESH_REFLECT_FAILED);
    CHECK(strstr(mesh_reflect_error(r), "status 12: unknown service") != NULL);
    mesh_reflect_free(r);

    /* The wire bytes, laid out by hand from reflection.proto: list_services = "" is field 7,
     * wire type 2, length 0; file_containing_symbol is field 4 (host "" is not sent). */
    r = mesh_reflect_new(NULL);
    CHECK(mesh_reflect_next(r, &out) == MESH_REFLECT_OPEN);
    CHECK(strcmp(out.path, MESH_REFLECT_V1_PATH) == 0);
    CHECK(mesh_reflect_next(r, &out) == MESH_REFLECT_SEND);
    CHECK(out.len == 2 && memcmp(out.data, "\x3a\x00", 2) == 0);
    mesh_reflect_free(r);

    CHECK(mesh_reflect_is_infra_service("grpc.reflection.v1.ServerReflection"));
    CHECK(!mesh_reflect_is_infra_service("demo.v1.Greeter"));
}

int main(void)
{
    Google__Protobuf__FileDescriptorSet *set = demo_set_load();
    test_v1_conversation(set);
    test_v1alpha_fallback(set);
    test_service_error_is_a_warning(set);
    test_failures(set);
    google__protobuf__file_descriptor_set__free_unpacked(set, NULL);
    printf("test_reflection: ok\n");
    return 0;
}
