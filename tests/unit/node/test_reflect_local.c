/*
 * tests/unit/node/test_reflect_local.c: the workers' reflection handler (node/reflect_local.h)
 * on a real proxy worker without a listener, driven through the upstream-call API
 * (transport/proxy_call.h), with indexes handed over as the node would (ext update).
 * Covers: requests of one stream answered in order, a lookup for a routed service not in the
 * index held until a newer index describes it (the request behind it waiting), a hold that
 * runs out (NOT_FOUND saying the descriptors are not fetched yet), v1alpha, a wrong method
 * (UNIMPLEMENTED), garbage (INVALID_ARGUMENT), the half-close (OK), and a drain (what is held
 * is answered, then UNAVAILABLE).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "common/log.h"
#include "google/protobuf/descriptor.pb-c.h"
#include "grpc/reflect_server.h"
#include "grpc/reflection.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "node/reflect_local.h"
#include "tests/check.h"
#include "transport/grpc_frame.h"
#include "transport/grpc_status.h"
#include "transport/proxy.h"
#include "transport/proxy_call.h"
#include "transport/proxy_local.h"

typedef Grpc__Reflection__V1__ServerReflectionRequest req_t;
typedef Grpc__Reflection__V1__ServerReflectionResponse resp_t;

static uv_loop_t loop;
static mesh_proxy_worker_t *w;
static void *ext;
static node_reflect_cfg_t rcfg = {.hold_ms = 300};

/* ---- descriptors ---------------------------------------------------------------------------- */

/* Adds file NAME (package PKG) with message Req and service SVC { Do(Req) returns (Req) }. */
static void add_file(mesh_desc_pool_t *p, const char *name, const char *pkg, const char *svc)
{
    Google__Protobuf__FileDescriptorProto f = GOOGLE__PROTOBUF__FILE_DESCRIPTOR_PROTO__INIT;
    Google__Protobuf__DescriptorProto m = GOOGLE__PROTOBUF__DESCRIPTOR_PROTO__INIT;
    Google__Protobuf__ServiceDescriptorProto s = GOOGLE__PROTOBUF__SERVICE_DESCRIPTOR_PROTO__INIT;
    Google__Protobuf__MethodDescriptorProto md = GOOGLE__PROTOBUF__METHOD_DESCRIPTOR_PROTO__INIT;
    char type[64];
    snprintf(type, sizeof(type), ".%s.Req", pkg);
    m.name = "Req";
    md.name = "Do";
    md.input_type = md.output_type = type;
    Google__Protobuf__MethodDescriptorProto *mds[] = {&md};
    s.name = (char *)svc;
    s.n_method = 1;
    s.method = mds;
    Google__Protobuf__DescriptorProto *ms[] = {&m};
    Google__Protobuf__ServiceDescriptorProto *ss[] = {&s};
    f.name = (char *)name;
    f.package = (char *)pkg;
    f.n_message_type = 1;
    f.message_type = ms;
    f.n_service = 1;
    f.service = ss;
    uint8_t b[1024];
    size_t n = google__protobuf__file_descriptor_proto__pack(&f, b);
    CHECK(mesh_desc_pool_add_file(p, b, n) == 0);
}

/* An index of a/svc.proto, and of b/late.proto when with_late. */
static mesh_rsrv_index_t *index_of(int with_late, uint64_t gen)
{
    mesh_desc_pool_t *p = mesh_desc_pool_new();
    add_file(p, "a/svc.proto", "a.v1", "Svc");
    if (with_late)
        add_file(p, "b/late.proto", "b.v1", "Late");
    mesh_rsrv_index_t *ix = mesh_rsrv_index_new(p, gen);
    mesh_desc_pool_free(p);
    CHECK(ix);
    return ix;
}

static mesh_routes_t *table(void)
{
    mesh_route_builder_t *b = mesh_route_builder_new();
    const char *names[] = {"a.v1.Svc", "b.v1.Late", "c.v1.Never"};
    for (int i = 0; i < 3; i++)
        mesh_route_builder_add(b, names[i], "127.0.0.1:1", NULL, 0, MESH_ROUTE_STATIC, "", "", 1);
    return mesh_route_builder_finish(b);
}

/* ---- the client side ------------------------------------------------------------------------ */

typedef struct tcall {
    mesh_proxy_call_t *c;
    int ends, status;
    char msg[256];
    uint8_t body[8192];
    size_t body_len;
} tcall_t;

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_head(void *ud, mesh_proxy_call_t *c, int end_stream)
{
    (void)ud, (void)c, (void)end_stream;
}

static void on_data(void *ud, mesh_proxy_call_t *c)
{
    tcall_t *t = ud;
    const uint8_t *d;
    size_t n;
    while ((n = mesh_proxy_call_resp_peek(c, &d)) > 0) {
        CHECK(t->body_len + n <= sizeof(t->body));
        memcpy(t->body + t->body_len, d, n);
        t->body_len += n;
        mesh_proxy_call_resp_consume(c, n);
    }
}

static void on_end(void *ud, mesh_proxy_call_t *c, int status, const char *msg, size_t ml)
{
    tcall_t *t = ud;
    CHECK(t->c == c);
    t->ends++;
    t->status = status;
    snprintf(t->msg, sizeof(t->msg), "%.*s", (int)ml, msg);
    t->c = NULL;
}

static const mesh_proxy_downstream_t ops = {on_head, on_data, on_end, NULL, NULL};

/* Runs the loop (and the worker tick the node would give) until cond or ms pass. */
#define RUN_UNTIL(cond, ms)                                                                        \
    do {                                                                                           \
        long _end = now_ms() + (ms);                                                               \
        while (!(cond) && now_ms() < _end) {                                                       \
            uv_run(&loop, UV_RUN_NOWAIT);                                                          \
            node_reflect_ext.tick(ext, (uint64_t)now_ms());                                        \
            struct timespec _ts = {0, 5000000};                                                    \
            nanosleep(&_ts, NULL);                                                                 \
        }                                                                                          \
    } while (0)

static void start(tcall_t *t, const char *path)
{
    static struct sockaddr_in peer = {.sin_family = AF_INET};
    peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    mesh_proxy_call_req_t r = {
        .path = path, .path_len = strlen(path), .peer = (const struct sockaddr *)&peer};
    CHECK(mesh_proxy_call_start(w, &r, &ops, t, &t->c) == 0);
}

static void send_raw(tcall_t *t, const uint8_t *m, size_t len, int end)
{
    uint8_t b[512];
    CHECK(len + MESH_GRPC_PREFIX_LEN <= sizeof(b));
    mesh_grpc_frame_prefix(b, 0, (uint32_t)len);
    memcpy(b + MESH_GRPC_PREFIX_LEN, m, len);
    CHECK(mesh_proxy_call_send(t->c, b, MESH_GRPC_PREFIX_LEN + len, end) >= 0);
}

static void ask_symbol(tcall_t *t, const char *sym)
{
    req_t rq = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
    rq.message_request_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL;
    rq.file_containing_symbol = (char *)sym;
    uint8_t b[256];
    send_raw(t, b, grpc__reflection__v1__server_reflection_request__pack(&rq, b), 0);
}

static void ask_list(tcall_t *t)
{
    req_t rq = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
    rq.message_request_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES;
    rq.list_services = "";
    uint8_t b[256];
    send_raw(t, b, grpc__reflection__v1__server_reflection_request__pack(&rq, b), 0);
}

/* Number of whole response messages received. */
static int n_resp(const tcall_t *t)
{
    int k = 0;
    for (size_t o = 0; o + MESH_GRPC_PREFIX_LEN <= t->body_len; k++) {
        uint32_t len = (uint32_t)t->body[o + 1] << 24 | (uint32_t)t->body[o + 2] << 16 |
                       (uint32_t)t->body[o + 3] << 8 | t->body[o + 4];
        if (o + MESH_GRPC_PREFIX_LEN + len > t->body_len)
            break;
        o += MESH_GRPC_PREFIX_LEN + len;
    }
    return k;
}

/* The i-th response, unpacked (free it). */
static resp_t *resp(const tcall_t *t, int i)
{
    size_t o = 0;
    for (int k = 0;; k++) {
        CHECK(o + MESH_GRPC_PREFIX_LEN <= t->body_len);
        uint32_t len = (uint32_t)t->body[o + 1] << 24 | (uint32_t)t->body[o + 2] << 16 |
                       (uint32_t)t->body[o + 3] << 8 | t->body[o + 4];
        if (k == i) {
            resp_t *r = grpc__reflection__v1__server_reflection_response__unpack(
                NULL, len, t->body + o + MESH_GRPC_PREFIX_LEN);
            CHECK(r);
            return r;
        }
        o += MESH_GRPC_PREFIX_LEN + len;
    }
}

static void check_file(const tcall_t *t, int i, const char *want)
{
    resp_t *r = resp(t, i);
    CHECK(
        r->message_response_case ==
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE);
    ProtobufCBinaryData *b = &r->file_descriptor_response->file_descriptor_proto[0];
    Google__Protobuf__FileDescriptorProto *f =
        google__protobuf__file_descriptor_proto__unpack(NULL, b->len, b->data);
    CHECK_STR(f->name, want);
    google__protobuf__file_descriptor_proto__free_unpacked(f, NULL);
    grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
}

static void check_not_found(const tcall_t *t, int i, const char *needle)
{
    resp_t *r = resp(t, i);
    CHECK(r->message_response_case ==
          GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE);
    CHECK_EQ(r->error_response->error_code, MESH_GRPC_NOT_FOUND);
    CHECK_CONTAINS(r->error_response->error_message, needle);
    grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
}

/* ---- the cases ------------------------------------------------------------------------------ */

static void test_hold_until_index(void)
{
    tcall_t t = {0};
    start(&t, MESH_REFLECT_V1_PATH);
    ask_symbol(&t, "a.v1.Svc");     /* known: answered at once */
    ask_symbol(&t, "b.v1.Late.Do"); /* routed, not described yet: held */
    ask_list(&t);                   /* waits behind it */
    RUN_UNTIL(n_resp(&t) == 1, 2000);
    RUN_UNTIL(0, 100);
    CHECK_EQ(n_resp(&t), 1);
    check_file(&t, 0, "a/svc.proto");
    node_reflect_ext.update(ext, index_of(1, 2)); /* the control loop's next index */
    RUN_UNTIL(n_resp(&t) == 3, 2000);
    check_file(&t, 1, "b/late.proto");
    resp_t *r = resp(&t, 2);
    CHECK(
        r->message_response_case ==
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE);
    CHECK_EQ(r->list_services_response->n_service, 6); /* 3 routed + health + 2 reflection */
    grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
    CHECK(mesh_proxy_call_send(t.c, NULL, 0, 1) >= 0); /* half-close: the stream ends OK */
    RUN_UNTIL(t.ends, 2000);
    CHECK_EQ(t.status, MESH_GRPC_OK);
}

static void test_hold_runs_out(void)
{
    tcall_t t = {0};
    start(&t, MESH_REFLECT_V1ALPHA_PATH);
    long t0 = now_ms();
    ask_symbol(&t, "c.v1.Never");
    RUN_UNTIL(n_resp(&t) == 1, 3000);
    CHECK(now_ms() - t0 >= 250); /* it was held (hold_ms 300), not answered at once */
    check_not_found(&t, 0, "the descriptors of c.v1.Never are not fetched yet");
    ask_symbol(&t, "z.v1.Unknown"); /* not routed: NOT_FOUND at once */
    RUN_UNTIL(n_resp(&t) == 2, 2000);
    check_not_found(&t, 1, "symbol 'z.v1.Unknown' not found");
    CHECK(mesh_proxy_call_send(t.c, NULL, 0, 1) >= 0);
    RUN_UNTIL(t.ends, 2000);
    CHECK_EQ(t.status, MESH_GRPC_OK);
}

static void test_bad_calls(void)
{
    tcall_t t = {0};
    start(&t, "/grpc.reflection.v1.ServerReflection/Other");
    RUN_UNTIL(t.ends, 2000);
    CHECK_EQ(t.status, MESH_GRPC_UNIMPLEMENTED);
    tcall_t g = {0};
    start(&g, MESH_REFLECT_V1_PATH);
    const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    send_raw(&g, junk, sizeof(junk), 0);
    RUN_UNTIL(g.ends, 2000);
    CHECK_EQ(g.status, MESH_GRPC_INVALID_ARGUMENT);
    CHECK_CONTAINS(g.msg, "not a ServerReflectionRequest");
}

static void test_drain(void)
{
    tcall_t t = {0};
    start(&t, MESH_REFLECT_V1_PATH);
    ask_symbol(&t, "c.v1.Never.Do"); /* held */
    RUN_UNTIL(0, 50);
    CHECK_EQ(n_resp(&t), 0);
    mesh_proxy_worker_stop_serving(w);
    RUN_UNTIL(t.ends, 2000);
    CHECK_EQ(n_resp(&t), 1); /* answered as things stand, not left hanging */
    check_not_found(&t, 0, "not fetched yet");
    CHECK_EQ(t.status, MESH_GRPC_UNAVAILABLE);
}

int main(void)
{
    mesh_log_init("test", MESH_LOG_ERROR, MESH_LOG_FORMAT_TEXT);
    CHECK(uv_loop_init(&loop) == 0);
    mesh_proxy_config_t cfg = {.listen_host = "127.0.0.1", .no_listener = 1};
    w = mesh_proxy_worker_new(&loop, &cfg);
    CHECK(w);
    ext = node_reflect_ext.create(&rcfg, 0, w);
    CHECK(ext);
    mesh_proxy_worker_set_routes(w, table());
    node_reflect_ext.update(ext, index_of(0, 1));

    test_hold_until_index();
    node_reflect_ext.update(ext, index_of(0, 3)); /* b.v1.Late pending again */
    test_hold_runs_out();
    test_bad_calls();
    test_drain();

    mesh_proxy_worker_free(w);
    node_reflect_ext.destroy(ext);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
    fprintf(stderr, "ok\n");
    return 0;
}
