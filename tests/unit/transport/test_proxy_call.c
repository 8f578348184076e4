/*
 * tests/unit/transport/test_proxy_call.c: the upstream-call API (transport/proxy_call.h) as a
 * front end uses it: calls started on a proxy worker without a gRPC listener (the gateway's
 * setup) on this thread's loop, against the in-process echo server (a real HTTP/2 gRPC server
 * on its own thread). Covers a unary call with metadata, a 2 MB streamed echo whose response
 * the front end stops consuming (the upstream cannot finish: its window is shut) and then
 * reads, a cancel from inside on_data (the server sees the RST_STREAM, no callback follows), a
 * deadline, a retry after a connect failure, a filter that rejects, a call with no route, the
 * client identity the front end reports reaching the filters (mesh_proxy_call_client_identity,
 * as the gateway's TLS listener reports a client certificate's), and, for every call, on_end on
 * a later loop turn than mesh_proxy_call_start().
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/peer_id.h"
#include "echo_server.h"
#include "registry/route_table.h"
#include "tests/check.h"
#include "transport/grpc_frame.h"
#include "transport/grpc_status.h"
#include "transport/proxy.h"
#include "transport/proxy_call.h"

static uv_loop_t loop;
static mesh_proxy_worker_t *w;
static echo_server_t *srv;
static int in_start; /* inside mesh_proxy_call_start(): on_end must not come now */

/* One call as the test front end sees it. */
typedef struct tcall {
    mesh_proxy_call_t *c;
    int heads, ends, status, datas;
    char msg[256];
    int hold;           /* 1: do not consume the response */
    int cancel_on_data; /* cancel from inside the first on_data */
    int cancelled;      /* (then no callback may follow) */
    int saw_echo_meta;  /* response header x-echo-meta came back */
    uint8_t *body;      /* response bytes consumed */
    size_t body_len, body_cap;
    const uint8_t *req; /* request still to send */
    int send_refused;
    size_t req_len, req_off;
    const mesh_peer_id_t *peer_id; /* what the front end reports its client proved */
} tcall_t;

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    socklen_t l = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &l);
    close(fd);
    return ntohs(sa.sin_port);
}

static void consume(tcall_t *t)
{
    const uint8_t *d;
    size_t n;
    while (!t->hold && t->c && (n = mesh_proxy_call_resp_peek(t->c, &d)) > 0) {
        if (t->body_len + n > t->body_cap) {
            t->body_cap = (t->body_len + n) * 2;
            t->body = realloc(t->body, t->body_cap);
            CHECK(t->body);
        }
        memcpy(t->body + t->body_len, d, n);
        t->body_len += n;
        mesh_proxy_call_resp_consume(t->c, n);
    }
}

static void send_more(tcall_t *t)
{
    while (t->c && t->req_off < t->req_len) {
        size_t n = t->req_len - t->req_off;
        if (n > 16384)
            n = 16384;
        int end = t->req_off + n == t->req_len;
        int rc = mesh_proxy_call_send(t->c, t->req + t->req_off, n, end);
        if (rc < 0) { /* the call is ending (rejected, failed): it takes no more */
            t->send_refused = 1;
            return;
        }
        t->req_off += n;
        if (rc == 1)
            return; /* wait for on_req_drain */
    }
}

static void on_head(void *ud, mesh_proxy_call_t *c, int end_stream)
{
    tcall_t *t = ud;
    (void)end_stream;
    CHECK(!t->cancelled && t->c == c);
    t->heads++;
    const char *n, *v;
    size_t nl, vl;
    int rc;
    for (size_t i = 0; (rc = mesh_proxy_call_resp_field(c, 0, i, &n, &nl, &v, &vl)) >= 0; i++)
        if (rc == 1 && nl == 10 && memcmp(n, "x-echo-bin", 10) == 0 && vl == 4 &&
            memcmp(v, "AAEC", 4) == 0)
            t->saw_echo_meta = 1;
}

static void on_data(void *ud, mesh_proxy_call_t *c)
{
    tcall_t *t = ud;
    CHECK(!t->cancelled && t->c == c);
    t->datas++;
    if (t->cancel_on_data) {
        mesh_proxy_call_cancel(c);
        t->cancelled = 1;
        t->c = NULL;
        return;
    }
    consume(t);
}

static void on_end(void *ud, mesh_proxy_call_t *c, int status, const char *msg, size_t ml)
{
    tcall_t *t = ud;
    CHECK(!in_start);     /* always a later loop turn */
    CHECK(!t->cancelled); /* no callback after a cancel */
    CHECK(t->c == c);
    CHECK(mesh_proxy_call_resp_peek(c, &(const uint8_t *){0}) == 0); /* everything consumed */
    t->ends++;
    t->status = status;
    snprintf(t->msg, sizeof(t->msg), "%.*s", (int)ml, msg);
    t->c = NULL;
}

static void on_req_drain(void *ud, mesh_proxy_call_t *c)
{
    tcall_t *t = ud;
    CHECK(t->c == c);
    send_more(t);
}

static const mesh_peer_id_t *peer_identity(void *ud, const mesh_proxy_call_t *c)
{
    tcall_t *t = ud;
    CHECK(t->c == c);
    return t->peer_id;
}

static const mesh_proxy_downstream_t ops = {on_head, on_data, on_end, on_req_drain, peer_identity};

static void start(tcall_t *t, const char *path, uint64_t timeout_ms, const uint8_t *req, size_t len)
{
    static struct sockaddr_in peer = {.sin_family = AF_INET};
    peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    mesh_proxy_field_t meta = {"x-echo-meta", 11, "hello", 5};
    mesh_proxy_call_req_t r = {.path = path,
                               .path_len = strlen(path),
                               .fields = &meta,
                               .n_fields = 1,
                               .peer = (const struct sockaddr *)&peer,
                               .timeout_ms = timeout_ms};
    t->req = req;
    t->req_len = len;
    in_start = 1;
    CHECK(mesh_proxy_call_start(w, &r, &ops, t, &t->c) == 0);
    in_start = 0;
    CHECK(t->c);
    send_more(t);
    if (len == 0)
        mesh_proxy_call_send(t->c, NULL, 0, 1);
}

/* Runs the loop until cond or the deadline (generous: a failure, not a timing). */
#define RUN_UNTIL(cond, ms)                                                                        \
    do {                                                                                           \
        long _end = now_ms() + (ms);                                                               \
        while (!(cond) && now_ms() < _end)                                                         \
            uv_run(&loop, UV_RUN_ONCE);                                                            \
        CHECK(cond);                                                                               \
    } while (0)

static uv_timer_t tick; /* keeps uv_run(ONCE) from blocking forever */

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

static uint8_t *grpc_msgs(size_t count, size_t size, size_t *total)
{
    *total = count * (MESH_GRPC_PREFIX_LEN + size);
    uint8_t *b = malloc(*total);
    size_t o = 0;
    for (size_t i = 0; i < count; i++) {
        mesh_grpc_frame_prefix(b + o, 0, (uint32_t)size);
        o += MESH_GRPC_PREFIX_LEN;
        for (size_t j = 0; j < size; j++)
            b[o + j] = (uint8_t)(i * 7 + j);
        o += size;
    }
    return b;
}

static void test_unary(void)
{
    size_t len;
    uint8_t *req = grpc_msgs(1, 11, &len);
    tcall_t t = {0};
    start(&t, "/test.Echo/Echo", 5000, req, len);
    RUN_UNTIL(t.ends, 10000);
    CHECK_EQ(t.status, 0);
    CHECK_EQ(t.heads, 1);
    CHECK(t.saw_echo_meta);
    CHECK(t.body_len == len && memcmp(t.body, req, len) == 0);
    char fields[2048];
    echo_server_last_fields(srv, fields, sizeof(fields));
    CHECK(strstr(fields, "x-echo-meta: hello")); /* request metadata reached the app */
    free(t.body);
    free(req);
}

static void test_backpressure(void)
{
    size_t len;
    uint8_t *req = grpc_msgs(2000, 1000, &len); /* 2 MB: far beyond the 64 KiB stream buffer */
    int completed = echo_server_completed(srv);
    tcall_t t = {.hold = 1};
    start(&t, "/test.Echo/Echo", 30000, req, len);
    RUN_UNTIL(t.datas > 0, 10000);
    /* Not consuming: the upstream's window stays shut, so the server cannot finish the echo
     * however long we wait; the call neither ends nor loses bytes. */
    long end = now_ms() + 1000;
    while (now_ms() < end)
        uv_run(&loop, UV_RUN_ONCE);
    CHECK_EQ(t.ends, 0);
    CHECK_EQ(echo_server_completed(srv), completed);
    /* Reading again: every byte arrives in order. */
    t.hold = 0;
    consume(&t);
    RUN_UNTIL(t.ends, 20000);
    CHECK_EQ(t.status, 0);
    CHECK(t.body_len == len && memcmp(t.body, req, len) == 0);
    CHECK_EQ(echo_server_completed(srv), completed + 1);
    free(t.body);
    free(req);
}

static void test_cancel_in_callback(void)
{
    size_t len;
    uint8_t *req = grpc_msgs(200, 1000, &len);
    int cancels = echo_server_cancels(srv);
    tcall_t t = {.cancel_on_data = 1};
    start(&t, "/test.Echo/Echo", 10000, req, len);
    RUN_UNTIL(t.cancelled, 10000);
    RUN_UNTIL(echo_server_cancels(srv) > cancels, 10000); /* the server saw the RST_STREAM */
    /* a few more turns: nothing else arrives (on_* check cancelled) */
    for (int i = 0; i < 20; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    CHECK_EQ(t.ends, 0);
    free(req);
}

static void test_deadline(void)
{
    size_t len;
    uint8_t *req = grpc_msgs(1, 8, &len);
    tcall_t t = {0};
    start(&t, "/test.Echo/Hang", 200, req, len);
    RUN_UNTIL(t.ends, 10000);
    CHECK_EQ(t.status, MESH_GRPC_DEADLINE_EXCEEDED);
    CHECK(strncmp(t.msg, "meshd:", 6) == 0);
    free(req);
}

static void test_retry_connect_failure(void)
{
    size_t len;
    uint8_t *req = grpc_msgs(1, 20, &len);
    mesh_proxy_stats_t before, after;
    mesh_proxy_worker_stats(w, &before);
    for (int i = 0; i < 4; i++) { /* round robin: some go to the dead instance first */
        tcall_t t = {0};
        start(&t, "/half.Svc/Echo", 10000, req, len);
        RUN_UNTIL(t.ends, 10000);
        CHECK_EQ(t.status, 0); /* reached the live instance */
        CHECK(t.body_len == len && memcmp(t.body, req, len) == 0);
        free(t.body);
    }
    mesh_proxy_worker_stats(w, &after);
    CHECK(after.retries > before.retries);
    /* only dead instances: UNAVAILABLE from the mesh */
    tcall_t t = {0};
    start(&t, "/dead.Svc/Echo", 10000, req, len);
    RUN_UNTIL(t.ends, 10000);
    CHECK_EQ(t.status, MESH_GRPC_UNAVAILABLE);
    CHECK(strncmp(t.msg, "meshd:", 6) == 0);
    free(req);
}

static int reject_filter(void *ctx, const mesh_proxy_call_info_t *info, mesh_proxy_verdict_t *out,
                         void **token)
{
    (void)ctx;
    (void)token;
    CHECK(info->peer && info->peer->sa_family == AF_INET); /* the front end's client */
    if (info->method_len == 6 && memcmp(info->method, "Whoami", 6) == 0) {
        const mesh_peer_id_t *id = mesh_proxy_call_client_identity(info->call);
        out->grpc_status = MESH_GRPC_PERMISSION_DENIED;
        snprintf(out->message, sizeof(out->message), "whoami: %s", id ? id->node_uri.p : "-");
        return MESH_PROXY_REJECT;
    }
    if (info->method_len == 6 && memcmp(info->method, "Reject", 6) == 0) {
        out->grpc_status = MESH_GRPC_PERMISSION_DENIED;
        snprintf(out->message, sizeof(out->message), "meshd: test: not you");
        return MESH_PROXY_REJECT;
    }
    return MESH_PROXY_ACCEPT;
}

static void test_filter_and_no_route(void)
{
    size_t len;
    uint8_t *req = grpc_msgs(1, 8, &len);
    int calls = echo_server_calls(srv);
    tcall_t t = {0};
    start(&t, "/test.Echo/Reject", 5000, req, len);
    RUN_UNTIL(t.ends, 10000);
    CHECK_EQ(t.status, MESH_GRPC_PERMISSION_DENIED);
    CHECK(strcmp(t.msg, "meshd: test: not you") == 0);
    CHECK_EQ(echo_server_calls(srv), calls); /* never reached the app */
    CHECK(t.send_refused);                   /* nor took request bytes */
    tcall_t u = {0};
    start(&u, "/nosuch.Svc/M", 5000, req, len);
    RUN_UNTIL(u.ends, 10000);
    CHECK_EQ(u.status, MESH_GRPC_UNIMPLEMENTED);
    CHECK(strncmp(u.msg, "meshd:", 6) == 0);
    free(req);
}

/* The identity the front end reports is the one the filters see, per call; none is none. */
static void test_client_identity(void)
{
    size_t len;
    uint8_t *req = grpc_msgs(1, 8, &len);
    const char *svcs[] = {"pkg.Orders"};
    mesh_peer_id_t *id = mesh_peer_id_new("mesh.test", "client-1", svcs, 1);
    CHECK(id);
    tcall_t t = {.peer_id = id};
    start(&t, "/test.Echo/Whoami", 5000, req, len);
    RUN_UNTIL(t.ends, 10000);
    CHECK(strcmp(t.msg, "whoami: spiffe://mesh.test/node/client-1") == 0);
    tcall_t u = {0};
    start(&u, "/test.Echo/Whoami", 5000, req, len);
    RUN_UNTIL(u.ends, 10000);
    CHECK(strcmp(u.msg, "whoami: -") == 0);
    mesh_peer_id_free(id);
    free(req);
}

int main(void)
{
    mesh_log_init("test", MESH_LOG_ERROR, MESH_LOG_FORMAT_TEXT);
    srv = echo_server_start();
    CHECK(srv);
    char live[64], dead[64];
    snprintf(live, sizeof(live), "127.0.0.1:%d", echo_server_port(srv));
    snprintf(dead, sizeof(dead), "127.0.0.1:%d", free_port());
    mesh_route_builder_t *b = mesh_route_builder_new();
    mesh_route_builder_add(b, "test.Echo", live, NULL, 0, MESH_ROUTE_STATIC, "", "", 1);
    mesh_route_builder_add(b, "dead.Svc", dead, NULL, 0, MESH_ROUTE_STATIC, "", "", 1);
    mesh_route_builder_add(b, "half.Svc", dead, NULL, 0, MESH_ROUTE_STATIC, "", "", 1);
    mesh_route_builder_add(b, "half.Svc", live, NULL, 0, MESH_ROUTE_STATIC, "", "", 1);
    CHECK(uv_loop_init(&loop) == 0);
    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, on_tick, 50, 50);
    mesh_proxy_config_t cfg = {.listen_host = "127.0.0.1",
                               .stream_buffer = 64 * 1024,
                               .connect_timeout_ms = 1000,
                               .no_listener = 1,
                               .filter = {.on_call = reject_filter}};
    w = mesh_proxy_worker_new(&loop, &cfg);
    CHECK(w);
    mesh_proxy_worker_set_routes(w, mesh_route_builder_finish(b));

    test_unary();
    test_backpressure();
    test_cancel_in_callback();
    test_deadline();
    test_retry_connect_failure();
    test_filter_and_no_route();
    test_client_identity();

    mesh_proxy_worker_free(w);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
    echo_server_stop(srv);
    fprintf(stderr, "ok\n");
    return 0;
}
