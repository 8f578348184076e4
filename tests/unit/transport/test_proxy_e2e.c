/*
 * tests/unit/transport/test_proxy_e2e.c: end to end through a real proxy worker on its own
 * loop thread: an nghttp2 client -> the proxy -> the in-process echo server. Covers unary and
 * streaming calls, metadata pass-through, no route, a non-gRPC content type, no live instance,
 * retry after a connect failure, deadlines, client cancel, an upstream dying mid-call, and a
 * garbage connection that must not disturb a healthy one; then a graceful drain.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "echo_server.h"
#include "h2_client.h"
#include "tests/check.h"
#include "transport/grpc_frame.h"
#include "transport/grpc_timeout.h"
#include <signal.h>
#include "transport/proxy.h"

typedef struct {
    uv_loop_t loop;
    uv_async_t cmd;
    pthread_t thread;
    mesh_proxy_worker_t *w;
    atomic_int command; /* 1 drain, 2 free */
    atomic_int drained;
} proxy_thread_t;

static void on_drained(void *arg)
{
    proxy_thread_t *p = arg;
    atomic_store(&p->drained, 1);
}

static void on_cmd(uv_async_t *a)
{
    proxy_thread_t *p = a->data;
    int c = atomic_exchange(&p->command, 0);
    if (c == 1) {
        mesh_proxy_worker_drain(p->w, on_drained, p);
    } else if (c == 2) {
        mesh_proxy_worker_free(p->w);
        uv_close((uv_handle_t *)&p->cmd, NULL);
    }
}

static void *proxy_run(void *arg)
{
    proxy_thread_t *p = arg;
    uv_run(&p->loop, UV_RUN_DEFAULT);
    return NULL;
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

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static echo_server_t *srv;
static proxy_thread_t px;
static int proxy_port;

static void start_proxy(void)
{
    char live[64], dead[64];
    snprintf(live, sizeof(live), "127.0.0.1:%d", echo_server_port(srv));
    snprintf(dead, sizeof(dead), "127.0.0.1:%d", free_port());
    mesh_route_builder_t *b = mesh_route_builder_new();
    mesh_route_builder_add(b, "test.Echo", live, NULL, 0, MESH_ROUTE_STATIC, "", "", 1);
    mesh_route_builder_add(b, "dead.Svc", dead, NULL, 0, MESH_ROUTE_STATIC, "", "", 1);
    /* One dead and one live instance: a failed connect is retried on the live one. */
    mesh_route_builder_add(b, "half.Svc", dead, NULL, 0, MESH_ROUTE_STATIC, "", "", 1);
    mesh_route_builder_add(b, "half.Svc", live, NULL, 0, MESH_ROUTE_STATIC, "", "", 1);
    mesh_routes_t *routes = mesh_route_builder_finish(b);

    uv_loop_init(&px.loop);
    mesh_proxy_config_t cfg = {.listen_host = "127.0.0.1",
                               .listen_port = 0,
                               .stream_buffer = 64 * 1024,
                               /* a connection window of one stream's: a byte never given back
                                * stalls a connection within a few calls (test_window_returned) */
                               .conn_window = 64 * 1024,
                               .connect_timeout_ms = 1000,
                               .keepalive_interval_ms = 5000,
                               /* liveness is transport_h2_liveness's and transport_proxy_retry's
                                * to test: here a loaded CI machine (ASan, parallel tests) left
                                * the in-process echo server's PING unanswered for 550 ms during
                                * the 2 MB stream, and the default 500 ms closed the connection */
                               .upstream_stall_timeout_ms = 5000,
                               .worker_index = 0};
    px.w = mesh_proxy_worker_new(&px.loop, &cfg);
    CHECK(px.w);
    proxy_port = mesh_proxy_worker_port(px.w);
    mesh_proxy_worker_set_routes(px.w, routes);
    uv_async_init(&px.loop, &px.cmd, on_cmd);
    px.cmd.data = &px;
    pthread_create(&px.thread, NULL, proxy_run, &px);
}

static void stop_proxy(void)
{
    atomic_store(&px.command, 2);
    uv_async_send(&px.cmd);
    pthread_join(px.thread, NULL);
    CHECK(uv_loop_close(&px.loop) == 0);
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
            b[o + j] = (uint8_t)(i + j);
        o += size;
    }
    return b;
}

static int count_msg(void *arg, int compressed, const uint8_t *m, size_t len)
{
    (*(size_t *)arg)++;
    return 0;
}

static void one_call(const char *path, const char *ct, const char *tmo, const uint8_t *body,
                     size_t len, h2_call_t *call, int deadline_ms)
{
    h2_client_t c;
    CHECK(h2_client_connect(&c, proxy_port) == 0);
    CHECK(h2_client_call(&c, call, path, ct, tmo, body, len, 1) == 0);
    h2_call_t *calls[] = {call};
    CHECK(h2_client_wait(&c, calls, 1, deadline_ms) == 0);
    h2_client_close(&c);
}

static void test_unary(void)
{
    size_t len;
    uint8_t *req = grpc_msgs(1, 11, &len);
    h2_call_t call;
    one_call("/test.Echo/Echo", "application/grpc", NULL, req, len, &call, 5000);
    CHECK(call.http_status == 200);
    CHECK(call.grpc_status == 0);
    CHECK(call.saw_echo_bin); /* -bin metadata passes unchanged */
    CHECK(call.body_len == len && memcmp(call.body, req, len) == 0);
    h2_call_free(&call);
    free(req);
}

static void test_streaming(void)
{
    size_t len, n = 0;
    uint8_t *req = grpc_msgs(2000, 1000, &len); /* 2 MB: far beyond the 64 KiB buffer */
    h2_call_t call;
    one_call("/test.Echo/Echo", "application/grpc+proto", NULL, req, len, &call, 20000);
    CHECK(call.grpc_status == 0);
    CHECK(call.body_len == len && memcmp(call.body, req, len) == 0);
    mesh_grpc_deframer_t d;
    mesh_grpc_deframer_init(&d, 0, count_msg, &n);
    CHECK(mesh_grpc_deframer_feed(&d, call.body, call.body_len) == 0);
    mesh_grpc_deframer_destroy(&d);
    CHECK(n == 2000);
    h2_call_free(&call);
    free(req);
}

static void test_many_concurrent(void)
{
    h2_client_t c;
    CHECK(h2_client_connect(&c, proxy_port) == 0);
    enum { N = 150 }; /* above the echo server's 100 concurrent streams: a second upstream */
    static h2_call_t calls[N];
    h2_call_t *ptrs[N];
    size_t len;
    uint8_t *req = grpc_msgs(3, 100, &len);
    for (int i = 0; i < N; i++) {
        CHECK(h2_client_call(&c, &calls[i], "/test.Echo/Echo", "application/grpc", NULL, req, len,
                             1) == 0);
        ptrs[i] = &calls[i];
    }
    CHECK(h2_client_wait(&c, ptrs, N, 20000) == 0);
    for (int i = 0; i < N; i++) {
        CHECK(calls[i].grpc_status == 0);
        CHECK(calls[i].body_len == len);
        h2_call_free(&calls[i]);
    }
    h2_client_close(&c);
    free(req);
}

/* Every byte a connection carried is given back to its window, also when the response arrived
 * with its trailers (the upstream stream closed before the bytes left the proxy): 40 calls of
 * 8 KiB each way on one client connection carry five times the 64 KiB connection windows of
 * both hops. A byte kept for good on either hop would stall the later calls. */
static void test_window_returned(void)
{
    h2_client_t c;
    CHECK(h2_client_connect(&c, proxy_port) == 0);
    size_t len;
    uint8_t *req = grpc_msgs(1, 8192, &len);
    for (int i = 0; i < 40; i++) {
        h2_call_t call;
        CHECK(h2_client_call(&c, &call, "/test.Echo/Echo", "application/grpc", NULL, req, len, 1) ==
              0);
        h2_call_t *calls[] = {&call};
        CHECK(h2_client_wait(&c, calls, 1, 5000) == 0);
        CHECK(call.grpc_status == 0);
        CHECK(call.body_len == len && memcmp(call.body, req, len) == 0);
        h2_call_free(&call);
    }
    h2_client_close(&c);
    free(req);
}

static void test_no_route(void)
{
    h2_call_t call;
    one_call("/nope.Svc/Method", "application/grpc", NULL, NULL, 0, &call, 5000);
    CHECK(call.http_status == 200);
    CHECK(call.grpc_status == 12);
    CHECK(strcmp(call.grpc_message, "meshd: no route for /nope.Svc/Method") == 0);
    h2_call_free(&call);
}

static void test_not_grpc(void)
{
    h2_call_t call;
    one_call("/test.Echo/Echo", "application/json", NULL, (const uint8_t *)"{}", 2, &call, 5000);
    CHECK(call.http_status == 415);
    h2_call_free(&call);
}

/* A request breaking an HTTP/2 field rule gets INTERNAL naming the rule; the connection and
 * its other calls carry on. */
static void test_malformed_request(void)
{
    static const struct {
        const char *name, *value, *problem;
    } cases[] = {
        {"x upper", "1", "invalid character in a field name"}, /* (nghttp2 lower-cases names) */
        {"connection", "close", "connection-specific field"},
        {"x-crlf", "a\r\nb", "control character in a field value"},
        {"te", "gzip", "te other than \"trailers\""},
    };
    size_t len;
    uint8_t *req = grpc_msgs(1, 11, &len);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        h2_client_t c;
        CHECK(h2_client_connect(&c, proxy_port) == 0);
        nghttp2_nv nv = {(uint8_t *)cases[i].name, (uint8_t *)cases[i].value, strlen(cases[i].name),
                         strlen(cases[i].value), 0};
        c.extra = &nv;
        c.n_extra = 1;
        h2_call_t bad, good;
        CHECK(h2_client_call(&c, &bad, "/test.Echo/Echo", "application/grpc", NULL, req, len, 1) ==
              0);
        c.extra = NULL;
        c.n_extra = 0;
        CHECK(h2_client_call(&c, &good, "/test.Echo/Echo", "application/grpc", NULL, req, len, 1) ==
              0);
        h2_call_t *calls[] = {&bad, &good};
        CHECK(h2_client_wait(&c, calls, 2, 5000) == 0);
        CHECK_EQ(bad.grpc_status, 13);
        char want[200];
        snprintf(want, sizeof(want), "meshd: malformed request: %s", cases[i].problem);
        CHECK_STR(bad.grpc_message, want);
        CHECK_EQ(good.grpc_status, 0);
        CHECK(good.body_len == len);
        h2_call_free(&bad);
        h2_call_free(&good);
        h2_client_close(&c);
    }
    free(req);
}

/* An upstream response breaking a field rule reaches the client as INTERNAL saying so. */
static void test_malformed_response(void)
{
    size_t len;
    uint8_t *req = grpc_msgs(1, 11, &len);
    h2_call_t call;
    one_call("/test.Echo/BadHeader", "application/grpc", NULL, req, len, &call, 5000);
    CHECK_EQ(call.grpc_status, 13);
    CHECK(
        strstr(call.grpc_message, "sent a malformed response: control character in a field value"));
    h2_call_free(&call);
    one_call("/test.Echo/Echo", "application/grpc", NULL, req, len, &call, 5000);
    CHECK_EQ(call.grpc_status, 0);
    h2_call_free(&call);
    free(req);
}

static void test_no_live_instance(void)
{
    h2_call_t call;
    one_call("/dead.Svc/M", "application/grpc", NULL, NULL, 0, &call, 5000);
    CHECK(call.grpc_status == 14);
    CHECK(strncmp(call.grpc_message, "meshd: ", 7) == 0);
    CHECK(strstr(call.grpc_message, "dead.Svc"));
    h2_call_free(&call);
    /* Now the endpoint backs off; it is the service's only one, so the panic pick still tries
     * it (a healed network must not wait out the backoff) and the call fails the same way. */
    one_call("/dead.Svc/M", "application/grpc", NULL, NULL, 0, &call, 5000);
    CHECK(call.grpc_status == 14);
    CHECK(strstr(call.grpc_message, "cannot connect to upstream"));
    CHECK(strstr(call.grpc_message, "no other live instance of dead.Svc"));
    h2_call_free(&call);
}

static void test_retry_other_instance(void)
{
    size_t len;
    uint8_t *req = grpc_msgs(1, 5, &len);
    for (int i = 0; i < 4; i++) {
        h2_call_t call;
        one_call("/half.Svc/Any", "application/grpc", NULL, req, len, &call, 5000);
        CHECK(call.grpc_status == 0 || call.grpc_status == 12); /* the echo answers any path */
        CHECK(call.body_len == len);
        h2_call_free(&call);
    }
    mesh_proxy_stats_t st;
    (void)st; /* stats are owned by the loop thread; checked at the end */
    free(req);
}

static void test_deadline(void)
{
    int cancels = echo_server_cancels(srv);
    h2_call_t call;
    one_call("/test.Echo/Hang", "application/grpc", "200m", NULL, 0, &call, 5000);
    CHECK(call.grpc_status == 4);
    CHECK(strncmp(call.grpc_message, "meshd: ", 7) == 0);
    char tmo[32];
    echo_server_last_timeout(srv, tmo, sizeof(tmo));
    /* The remaining deadline went upstream, never longer than the client's. */
    size_t tl = strlen(tmo);
    CHECK(tl >= 2);
    uint64_t ns;
    CHECK(mesh_grpc_timeout_parse(tmo, tl, &ns) == 0 && ns <= 200000000ull);
    long end = now_ms() + 5000;
    while (echo_server_cancels(srv) == cancels && now_ms() < end)
        usleep(10000);
    CHECK(echo_server_cancels(srv) > cancels); /* the upstream stream was cancelled */
    h2_call_free(&call);
}

static void test_client_cancel(void)
{
    int cancels = echo_server_cancels(srv);
    int calls = echo_server_calls(srv);
    h2_client_t c;
    CHECK(h2_client_connect(&c, proxy_port) == 0);
    h2_call_t call;
    CHECK(h2_client_call(&c, &call, "/test.Echo/Hang", "application/grpc", NULL, NULL, 0, 0) == 0);
    long end = now_ms() + 5000;
    while (echo_server_calls(srv) == calls && now_ms() < end)
        h2_client_pump(&c, 20);
    CHECK(echo_server_calls(srv) > calls);
    nghttp2_submit_rst_stream(c.session, NGHTTP2_FLAG_NONE, call.id, NGHTTP2_CANCEL);
    while (echo_server_cancels(srv) == cancels && now_ms() < end)
        h2_client_pump(&c, 20);
    CHECK(echo_server_cancels(srv) > cancels);
    h2_client_close(&c);
    h2_call_free(&call);
}

/* The proxy remembers the call of the last stream it looked up on each connection (client and
 * upstream side). A call the client resets closes both streams and its call object is reused by
 * the next call on the same connection, with new stream ids: calls after it, several at once
 * and interleaved with more resets, must each get their own answer. */
/* The request bytes a call still held when its client reset it (kept for a retry: the upstream
 * had not answered) are given back to the client connection's window: after ten such calls of
 * 8 KiB, more than the 64 KiB window, a call on the same connection still goes through. */
static void test_cancel_window_returned(void)
{
    h2_client_t c;
    CHECK(h2_client_connect(&c, proxy_port) == 0);
    size_t len;
    uint8_t *req = grpc_msgs(1, 8192, &len);
    long end = now_ms() + 10000;
    for (int i = 0; i < 10; i++) {
        int calls = echo_server_calls(srv), cancels = echo_server_cancels(srv);
        h2_call_t call;
        CHECK(h2_client_call(&c, &call, "/test.Echo/Hang", "application/grpc", NULL, req, len, 1) ==
              0);
        while (echo_server_calls(srv) == calls && now_ms() < end)
            h2_client_pump(&c, 10);
        CHECK(echo_server_calls(srv) > calls);
        nghttp2_submit_rst_stream(c.session, NGHTTP2_FLAG_NONE, call.id, NGHTTP2_CANCEL);
        while (echo_server_cancels(srv) == cancels && now_ms() < end)
            h2_client_pump(&c, 10);
        CHECK(echo_server_cancels(srv) > cancels);
        h2_call_free(&call);
    }
    h2_call_t call;
    CHECK(h2_client_call(&c, &call, "/test.Echo/Echo", "application/grpc", NULL, req, len, 1) == 0);
    h2_call_t *calls[] = {&call};
    CHECK(h2_client_wait(&c, calls, 1, 5000) == 0);
    CHECK(call.grpc_status == 0);
    CHECK(call.body_len == len);
    h2_call_free(&call);
    h2_client_close(&c);
    free(req);
}

static void test_reset_then_reuse(void)
{
    size_t len;
    uint8_t *req = grpc_msgs(3, 100, &len);
    h2_client_t c;
    CHECK(h2_client_connect(&c, proxy_port) == 0);
    for (int round = 0; round < 3; round++) {
        int cancels = echo_server_cancels(srv), seen = echo_server_calls(srv);
        h2_call_t hang;
        CHECK(h2_client_call(&c, &hang, "/test.Echo/Hang", "application/grpc", NULL, NULL, 0, 0) ==
              0);
        long end = now_ms() + 5000;
        while (echo_server_calls(srv) == seen && now_ms() < end)
            h2_client_pump(&c, 10);
        CHECK(echo_server_calls(srv) > seen);
        nghttp2_submit_rst_stream(c.session, NGHTTP2_FLAG_NONE, hang.id, NGHTTP2_CANCEL);
        while (echo_server_cancels(srv) == cancels && now_ms() < end)
            h2_client_pump(&c, 10);
        CHECK(echo_server_cancels(srv) > cancels);
        enum { N = 4 };
        h2_call_t calls[N], *ptrs[N];
        for (int i = 0; i < N; i++) {
            CHECK(h2_client_call(&c, &calls[i], "/test.Echo/Echo", "application/grpc", NULL, req,
                                 (size_t)(i % 3 + 1) * len / 3, 1) == 0);
            ptrs[i] = &calls[i];
        }
        CHECK(h2_client_wait(&c, ptrs, N, 10000) == 0);
        for (int i = 0; i < N; i++) {
            CHECK(calls[i].grpc_status == 0);
            CHECK(calls[i].body_len == (size_t)(i % 3 + 1) * len / 3);
            CHECK(memcmp(calls[i].body, req, calls[i].body_len) == 0);
            h2_call_free(&calls[i]);
        }
        h2_call_free(&hang);
    }
    h2_client_close(&c);
    free(req);
}

static void test_upstream_dies(void)
{
    size_t len;
    uint8_t *req = grpc_msgs(1, 10, &len);
    h2_client_t c;
    CHECK(h2_client_connect(&c, proxy_port) == 0);
    h2_call_t call;
    CHECK(h2_client_call(&c, &call, "/test.Echo/Die", "application/grpc", NULL, req, len, 0) == 0);
    h2_call_t *calls[] = {&call};
    CHECK(h2_client_wait(&c, calls, 1, 5000) == 0);
    CHECK(call.grpc_status == 14);
    CHECK(strncmp(call.grpc_message, "meshd: ", 7) == 0);
    h2_client_close(&c);
    h2_call_free(&call);
    free(req);
}

static void test_garbage_isolated(void)
{
    h2_client_t good;
    CHECK(h2_client_connect(&good, proxy_port) == 0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)proxy_port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\x01garbage garbage garbage";
    CHECK(send(fd, junk, sizeof(junk), MSG_NOSIGNAL) > 0);
    /* The proxy closes the garbage connection. */
    long end = now_ms() + 5000;
    int closed = 0;
    while (!closed && now_ms() < end) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 50) > 0) {
            char buf[512];
            ssize_t n = recv(fd, buf, sizeof(buf), 0);
            closed = n <= 0;
        }
    }
    CHECK(closed);
    close(fd);
    size_t len;
    uint8_t *req = grpc_msgs(1, 3, &len);
    h2_call_t call;
    CHECK(h2_client_call(&good, &call, "/test.Echo/Echo", "application/grpc", NULL, req, len, 1) ==
          0);
    h2_call_t *calls[] = {&call};
    CHECK(h2_client_wait(&good, calls, 1, 5000) == 0);
    CHECK(call.grpc_status == 0 && call.body_len == len);
    h2_client_close(&good);
    h2_call_free(&call);
    free(req);
}

static void test_drain(void)
{
    /* A call in flight when the drain starts still finishes. */
    size_t len;
    uint8_t *req = grpc_msgs(1, 4, &len);
    h2_client_t c;
    CHECK(h2_client_connect(&c, proxy_port) == 0);
    h2_call_t call;
    CHECK(h2_client_call(&c, &call, "/test.Echo/Echo", "application/grpc", NULL, req, len, 0) == 0);
    h2_client_pump(&c, 200);
    atomic_store(&px.command, 1);
    uv_async_send(&px.cmd);
    h2_client_pump(&c, 100);
    CHECK(!atomic_load(&px.drained));
    call.req_end = 1;
    h2_call_t *calls[] = {&call};
    CHECK(h2_client_wait(&c, calls, 1, 5000) == 0);
    CHECK(call.grpc_status == 0 && call.body_len == len);
    long end = now_ms() + 5000;
    while (!atomic_load(&px.drained) && now_ms() < end)
        h2_client_pump(&c, 20);
    CHECK(atomic_load(&px.drained));
    h2_client_close(&c);
    h2_call_free(&call);
    free(req);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (getenv("MESH_TEST_DEBUG"))
        mesh_log_init("test", MESH_LOG_DEBUG, MESH_LOG_FORMAT_TEXT);
    srv = echo_server_start();
    CHECK(srv);
    start_proxy();
    if (getenv("MESH_TEST_ONLY_DRAIN")) {
        RUN(test_drain);
        return 0;
    }
    RUN(test_unary);
    RUN(test_streaming);
    RUN(test_many_concurrent);
    RUN(test_window_returned);
    RUN(test_no_route);
    RUN(test_not_grpc);
    RUN(test_malformed_request);
    RUN(test_malformed_response);
    RUN(test_no_live_instance);
    RUN(test_retry_other_instance);
    RUN(test_deadline);
    RUN(test_client_cancel);
    RUN(test_cancel_window_returned);
    RUN(test_reset_then_reuse);
    RUN(test_upstream_dies);
    RUN(test_garbage_isolated);
    RUN(test_drain);
    stop_proxy();
    echo_server_stop(srv);
    fprintf(stderr, "ok\n");
    return 0;
}
