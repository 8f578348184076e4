/*
 * tests/fuzz/grpc/fuzz_reflect_server.c: libFuzzer harness over what a client sends the mesh
 * entry's reflection service: a ServerReflectionRequest (grpc/reflect_server.h), untrusted.
 *
 * The index is built once from a small pool made here (two files, one importing the other, with
 * a service, nested messages, an enum and an extension); one service is pending (when the first
 * byte says so), one cannot be fetched and one file conflicts, so every path of an answer is
 * reachable. The first input byte picks may_hold, whether the index is used at all and whether a
 * service is pending; the rest is the request. Checks: ANSWER gives a ServerReflectionResponse that
 * decodes and answers something; BAD leaves no output and says why; HOLD happens only when allowed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/descriptor.pb-c.h"
#include "grpc/reflect_server.h"
#include "grpc/reflection/v1/reflection.pb-c.h"

static mesh_rsrv_index_t *ix;

static void add(mesh_desc_pool_t *p, Google__Protobuf__FileDescriptorProto *f)
{
    uint8_t buf[2048];
    size_t n = google__protobuf__file_descriptor_proto__pack(f, buf);
    if (mesh_desc_pool_add_file(p, buf, n) != 0)
        abort();
}

static mesh_rsrv_index_t *make_index(void)
{
    mesh_desc_pool_t *p = mesh_desc_pool_new();
    Google__Protobuf__FileDescriptorProto a = GOOGLE__PROTOBUF__FILE_DESCRIPTOR_PROTO__INIT;
    Google__Protobuf__DescriptorProto msg = GOOGLE__PROTOBUF__DESCRIPTOR_PROTO__INIT;
    Google__Protobuf__DescriptorProto inner = GOOGLE__PROTOBUF__DESCRIPTOR_PROTO__INIT;
    Google__Protobuf__EnumDescriptorProto en = GOOGLE__PROTOBUF__ENUM_DESCRIPTOR_PROTO__INIT;
    Google__Protobuf__EnumValueDescriptorProto ev =
        GOOGLE__PROTOBUF__ENUM_VALUE_DESCRIPTOR_PROTO__INIT;
    ev.name = "ON";
    Google__Protobuf__EnumValueDescriptorProto *evs[] = {&ev};
    en.name = "State";
    en.n_value = 1;
    en.value = evs;
    inner.name = "Inner";
    Google__Protobuf__DescriptorProto *nested[] = {&inner};
    Google__Protobuf__EnumDescriptorProto *enums[] = {&en};
    msg.name = "Msg";
    msg.n_nested_type = 1;
    msg.nested_type = nested;
    msg.n_enum_type = 1;
    msg.enum_type = enums;
    Google__Protobuf__DescriptorProto *msgs[] = {&msg};
    a.name = "f/a.proto";
    a.package = "f";
    a.n_message_type = 1;
    a.message_type = msgs;
    add(p, &a);

    Google__Protobuf__FileDescriptorProto b = GOOGLE__PROTOBUF__FILE_DESCRIPTOR_PROTO__INIT;
    Google__Protobuf__ServiceDescriptorProto svc = GOOGLE__PROTOBUF__SERVICE_DESCRIPTOR_PROTO__INIT;
    Google__Protobuf__MethodDescriptorProto m = GOOGLE__PROTOBUF__METHOD_DESCRIPTOR_PROTO__INIT;
    Google__Protobuf__FieldDescriptorProto ext = GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__INIT;
    m.name = "Do";
    m.input_type = ".f.Msg";
    m.output_type = ".f.Msg";
    Google__Protobuf__MethodDescriptorProto *ms[] = {&m};
    svc.name = "Svc";
    svc.n_method = 1;
    svc.method = ms;
    Google__Protobuf__ServiceDescriptorProto *svcs[] = {&svc};
    ext.name = "x";
    ext.has_number = 1;
    ext.number = 7;
    ext.extendee = ".f.Msg";
    Google__Protobuf__FieldDescriptorProto *exts[] = {&ext};
    char *deps[] = {"f/a.proto", "f/missing.proto"};
    b.name = "f/b.proto";
    b.package = "f";
    b.n_dependency = 2;
    b.dependency = deps;
    b.n_service = 1;
    b.service = svcs;
    b.n_extension = 1;
    b.extension = exts;
    add(p, &b);

    Google__Protobuf__FileDescriptorProto c = GOOGLE__PROTOBUF__FILE_DESCRIPTOR_PROTO__INIT;
    char *cdeps[] = {"f/b.proto"};
    c.name = "g/c.proto";
    c.package = "g";
    c.n_dependency = 1;
    c.dependency = cdeps;
    add(p, &c);

    mesh_rsrv_index_t *x = mesh_rsrv_index_new(p, 1);
    mesh_desc_pool_free(p);
    if (!x || mesh_rsrv_index_add_unfetchable(x, "u.NoRefl", "serves no reflection") != 0 ||
        mesh_rsrv_index_add_conflict(x, "g/c.proto", "differs between two sources") != 0)
        abort();
    return x;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    ix = make_index();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const char *svcs[] = {"f.Svc", "p.Pending", "u.NoRefl"};
    static const char *pending[] = {"p.Pending"};
    int may_hold = data[0] & 1;
    const mesh_rsrv_index_t *x = (data[0] & 2) ? NULL : ix;
    uint8_t *out;
    size_t out_len;
    char err[128];
    mesh_rsrv_result_t rc = mesh_rsrv_answer(x, svcs, 3, pending, (data[0] & 4) ? 1 : 0, may_hold,
                                             data + 1, size - 1, &out, &out_len, err, sizeof(err));
    switch (rc) {
    case MESH_RSRV_ANSWER: {
        Grpc__Reflection__V1__ServerReflectionResponse *r =
            grpc__reflection__v1__server_reflection_response__unpack(NULL, out_len, out);
        if (!r || !r->original_request ||
            r->message_response_case ==
                GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE__NOT_SET)
            abort();
        if (r->message_response_case ==
                GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE &&
            (!r->error_response->error_message || !r->error_response->error_message[0]))
            abort();
        grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
        free(out);
        break;
    }
    case MESH_RSRV_HOLD:
        if (!may_hold || out)
            abort();
        break;
    case MESH_RSRV_BAD:
        if (out || out_len || !err[0])
            abort();
        break;
    }
    return 0;
}
