/*
 * tests/fuzz/grpc/fuzz_reflection.c: libFuzzer harness over what the local app sends the
 * sidecar: the reflection conversation (grpc/reflection.h) and health check answers
 * (grpc/health_msg.h).
 *
 * The whole input is first decoded as a HealthCheckResponse. Then a conversation is driven
 * like the h2 adapter drives it: whenever it waits, the next input byte picks what the "app"
 * does: a raw ServerReflectionResponse, a list_services answer or a file_descriptor answer
 * built from a few bytes (the files being raw bytes or small generated FileDescriptorProtos
 * that refer to each other), an error answer, or the end of the stream with any status
 * (UNIMPLEMENTED exercises the v1alpha fallback). Checks: every action is well formed (OPEN
 * names the current path, SEND is a ServerReflectionRequest that asks something), a failed
 * call leads to FAILED with a reason, and a DONE pool holds no infrastructure service and
 * answers its own lookups. The first byte also picks a conversation about one service
 * (mesh_reflect_new_for_service, no list_services) instead of the whole app.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "google/protobuf/descriptor.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "grpc/health_msg.h"
#include "grpc/reflection.h"

#define MAX_STEPS 256
#define MSG_CAP   8192

typedef Grpc__Reflection__V1__ServerReflectionResponse resp_t;

typedef struct {
    const uint8_t *p;
    size_t n, pos;
} rd_t;

static uint8_t u8(rd_t *r)
{
    return r->pos < r->n ? r->p[r->pos++] : 0;
}

/* The next n (from two bytes, at most max) raw bytes of the input. */
static const uint8_t *chunk(rd_t *r, size_t max, size_t *len)
{
    size_t n = ((size_t)u8(r) << 8 | u8(r)) % (max + 1);
    if (n > r->n - r->pos)
        n = r->n - r->pos;
    const uint8_t *p = r->p + r->pos;
    r->pos += n;
    *len = n;
    return p;
}

static void fuzz_health(const uint8_t *data, size_t size)
{
    mesh_health_status_t st;
    if (mesh_health_decode_response(data, size, &st) == 0) {
        if (!mesh_health_status_name(st))
            abort();
    }
    /* Encoding a service name taken from the input, into buffers too short and long enough. */
    char name[64];
    size_t n = size < sizeof(name) - 1 ? size : sizeof(name) - 1;
    memcpy(name, data, n);
    name[n] = '\0';
    uint8_t buf[80];
    int len = mesh_health_encode_request(name, buf, sizeof(buf));
    if (len < 0 || (size_t)len > sizeof(buf))
        abort();
    if (len > 0 && mesh_health_encode_request(name, buf, (size_t)len - 1) != -1)
        abort();
}

static const char *const svc_names[] = {
    "demo.v1.Greeter",
    "demo.v1.Other",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
    "",
    "demo.v1.Greeter", /* a duplicate */
    "no.such.Service",
};

static const char *const file_names[] = {"demo.proto", "dep.proto", "other.proto", "empty.proto"};

/*
 * A small FileDescriptorProto in package demo.v1: file i defines Req<i>, Resp<i> and maybe a
 * service whose method uses the messages of file j (which it may or may not import).
 */
static size_t build_file(rd_t *r, uint8_t *out, size_t cap)
{
    uint8_t b = u8(r);
    unsigned i = b & 3, dep = (b >> 2) & 3, j = (b >> 5) & 3;
    char req[32], resp[32], in_t[40], out_t[40];
    snprintf(req, sizeof(req), "Req%u", i);
    snprintf(resp, sizeof(resp), "Resp%u", i);
    snprintf(in_t, sizeof(in_t), ".demo.v1.Req%u", j);
    snprintf(out_t, sizeof(out_t), ".demo.v1.Resp%u", j);

    Google__Protobuf__DescriptorProto m1 = GOOGLE__PROTOBUF__DESCRIPTOR_PROTO__INIT;
    Google__Protobuf__DescriptorProto m2 = GOOGLE__PROTOBUF__DESCRIPTOR_PROTO__INIT;
    m1.name = req;
    m2.name = resp;
    Google__Protobuf__DescriptorProto *msgs[] = {&m1, &m2};

    Google__Protobuf__MethodDescriptorProto meth = GOOGLE__PROTOBUF__METHOD_DESCRIPTOR_PROTO__INIT;
    meth.name = (b & 0x80) ? "SayHello" : "Other";
    meth.input_type = in_t;
    meth.output_type = out_t;
    Google__Protobuf__MethodDescriptorProto *meths[] = {&meth};
    Google__Protobuf__ServiceDescriptorProto svc = GOOGLE__PROTOBUF__SERVICE_DESCRIPTOR_PROTO__INIT;
    svc.name = (i & 1) ? "Other" : "Greeter";
    svc.n_method = 1;
    svc.method = meths;
    Google__Protobuf__ServiceDescriptorProto *svcs[] = {&svc};

    char *deps[] = {(char *)file_names[dep]};
    Google__Protobuf__FileDescriptorProto f = GOOGLE__PROTOBUF__FILE_DESCRIPTOR_PROTO__INIT;
    f.name = (char *)file_names[i];
    f.package = "demo.v1";
    f.n_message_type = 2;
    f.message_type = msgs;
    if (b & 0x10) {
        f.n_dependency = 1;
        f.dependency = deps;
    }
    if (i != 3) {
        f.n_service = 1;
        f.service = svcs;
    }
    if (google__protobuf__file_descriptor_proto__get_packed_size(&f) > cap)
        return 0;
    return google__protobuf__file_descriptor_proto__pack(&f, out);
}

/* Packs resp into out (MSG_CAP bytes); 0 when it does not fit. */
static size_t pack_resp(const resp_t *m, uint8_t *out)
{
    if (grpc__reflection__v1__server_reflection_response__get_packed_size(m) > MSG_CAP)
        return 0;
    return grpc__reflection__v1__server_reflection_response__pack(m, out);
}

/* The app's next answer to the outstanding request, in out; its length. */
static size_t make_answer(rd_t *r, uint8_t kind, uint8_t *out)
{
    resp_t m = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__INIT;
    switch (kind) {
    case 1: { /* list_services */
        Grpc__Reflection__V1__ServiceResponse s[8];
        Grpc__Reflection__V1__ServiceResponse *sp[8];
        Grpc__Reflection__V1__ListServiceResponse l =
            GRPC__REFLECTION__V1__LIST_SERVICE_RESPONSE__INIT;
        uint8_t b = u8(r);
        l.n_service = b & 7;
        for (size_t i = 0; i < l.n_service; i++) {
            grpc__reflection__v1__service_response__init(&s[i]);
            s[i].name = (char *)svc_names[(u8(r) + i) & 7];
            sp[i] = &s[i];
        }
        l.service = sp;
        m.message_response_case =
            GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
        m.list_services_response = &l;
        return pack_resp(&m, out);
    }
    case 2: { /* file_descriptor_response: built files or raw bytes */
        static uint8_t files[4][1024];
        ProtobufCBinaryData bd[4];
        Grpc__Reflection__V1__FileDescriptorResponse fr =
            GRPC__REFLECTION__V1__FILE_DESCRIPTOR_RESPONSE__INIT;
        uint8_t b = u8(r);
        fr.n_file_descriptor_proto = b & 3;
        for (size_t i = 0; i < fr.n_file_descriptor_proto; i++) {
            if (b & (0x10 << i)) {
                size_t n;
                const uint8_t *p = chunk(r, sizeof(files[i]), &n);
                memcpy(files[i], p, n);
                bd[i].len = n;
            } else {
                bd[i].len = build_file(r, files[i], sizeof(files[i]));
            }
            bd[i].data = files[i];
        }
        fr.file_descriptor_proto = bd;
        m.message_response_case =
            GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
        m.file_descriptor_response = &fr;
        return pack_resp(&m, out);
    }
    case 3: { /* error_response */
        Grpc__Reflection__V1__ErrorResponse e = GRPC__REFLECTION__V1__ERROR_RESPONSE__INIT;
        uint8_t b = u8(r);
        e.error_code = (int32_t)(b & 0x7f) - 8;
        e.error_message = (b & 0x80) ? "Symbol not found: demo.v1.Greeter" : "";
        m.message_response_case =
            GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
        m.error_response = &e;
        return pack_resp(&m, out);
    }
    default: { /* raw bytes */
        size_t n;
        const uint8_t *p = chunk(r, MSG_CAP, &n);
        memcpy(out, p, n);
        return n;
    }
    }
}

static void check_request(const mesh_reflect_out_t *out)
{
    if (!out->data)
        abort();
    Grpc__Reflection__V1__ServerReflectionRequest *q =
        grpc__reflection__v1__server_reflection_request__unpack(NULL, out->len, out->data);
    if (!q)
        abort();
    if (q->message_request_case !=
            GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES &&
        q->message_request_case !=
            GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL &&
        q->message_request_case !=
            GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME)
        abort();
    grpc__reflection__v1__server_reflection_request__free_unpacked(q, NULL);
}

static void check_pool(mesh_desc_pool_t *p)
{
    for (size_t i = 0; i < mesh_desc_pool_service_count(p); i++) {
        const mesh_desc_service_t *s = mesh_desc_pool_service(p, i);
        if (mesh_reflect_is_infra_service(s->name) || mesh_desc_pool_find_service(p, s->name) != s)
            abort();
        for (size_t j = 0; j < s->n_methods; j++)
            if (!mesh_desc_pool_find_method(p, s->methods[j].path))
                abort();
    }
}

static void fuzz_conversation(const uint8_t *data, size_t size)
{
    rd_t r = {data, size, 0};
    uint8_t mode = u8(&r);
    const char *host = (mode & 1) ? "localhost:50051" : NULL;
    /* Bit 1: a conversation about one service (the gateway's descriptor cache). */
    mesh_reflect_t *c =
        (mode & 2) ? mesh_reflect_new_for_service(host, "demo.v1.Greeter") : mesh_reflect_new(host);
    if (!c)
        return;
    static uint8_t msg[MSG_CAP];
    int opened = 0;
    for (int step = 0; step < MAX_STEPS; step++) {
        mesh_reflect_out_t out;
        mesh_reflect_action_t a = mesh_reflect_next(c, &out);
        if (a == MESH_REFLECT_OPEN) {
            if (!out.path || strcmp(out.path, mesh_reflect_path(c)) != 0 ||
                (strcmp(out.path, MESH_REFLECT_V1_PATH) != 0 &&
                 strcmp(out.path, MESH_REFLECT_V1ALPHA_PATH) != 0))
                abort();
            opened = 1;
            continue;
        }
        if (a == MESH_REFLECT_SEND) {
            if (!opened)
                abort();
            check_request(&out);
            continue;
        }
        if (a == MESH_REFLECT_DONE) {
            mesh_desc_pool_t *p = mesh_reflect_take_pool(c);
            if (!p)
                abort();
            check_pool(p);
            mesh_desc_pool_free(p);
            if (mesh_reflect_take_pool(c) != NULL)
                abort();
            break;
        }
        if (a == MESH_REFLECT_FAILED) {
            if (!mesh_reflect_error(c)[0])
                abort();
            break;
        }
        if (a != MESH_REFLECT_WAIT)
            abort();
        if (r.pos >= r.n) { /* the app hangs up */
            mesh_reflect_on_stream_end(c, 0, NULL);
            if (mesh_reflect_next(c, &out) != MESH_REFLECT_FAILED)
                abort();
            break;
        }
        uint8_t kind = u8(&r);
        if ((kind & 7) == 4) { /* the stream ends */
            uint8_t st = u8(&r);
            mesh_reflect_on_stream_end(c, (st & 1) ? 12 : st % 17,
                                       (st & 2) ? "unknown service" : NULL);
            continue;
        }
        size_t n = make_answer(&r, kind & 7, msg);
        if (mesh_reflect_on_response(c, msg, n) < 0 &&
            mesh_reflect_next(c, &out) != MESH_REFLECT_FAILED)
            abort();
    }
    mesh_reflect_warning_count(c);
    mesh_reflect_last_warning(c);
    mesh_reflect_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        init = 1;
        mesh_log_init("fuzz", MESH_LOG_OFF, MESH_LOG_FORMAT_TEXT); /* warnings are expected */
    }
    fuzz_health(data, size);
    fuzz_conversation(data, size);
    return 0;
}
