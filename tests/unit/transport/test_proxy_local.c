/*
 * tests/unit/transport/test_proxy_local.c: methods the proxy worker answers itself
 * (transport/proxy_local.h), driven through the upstream-call API on a worker without a
 * listener. A test handler echoes ("/t.Local/Echo": each request message back with '!'
 * appended, OK at the client's half-close), refuses ("/t.Local/Missing": NOT_FOUND with a
 * message, Trailers-Only) and streams ("/t.Local/Watch": the table's service count now, then
 * again on every table install, "drain" when the worker stops serving, UNAVAILABLE on GOAWAY).
 * Covers: messages split across sends and several in one send, Trailers-Only, a stream woken by
 * route changes (and told only about the worker's table), the drain's NOT_SERVING-then-GOAWAY
 * order, a client cancel and a deadline (on_close once each, no callback after), a compressed
 * or oversized message (a clear status), and the order against the policy chain: an early
 * service is answered even when the filter rejects every call, a late one is not.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "common/log.h"
#include "registry/route_table.h"
#include "tests/check.h"
#include "transport/grpc_frame.h"
#include "transport/grpc_status.h"
#include "transport/proxy.h"
#include "transport/proxy_call.h"
#include "transport/proxy_local.h"

static uv_loop_t loop;
static mesh_proxy_worker_t *w;
static int opens, closes, wakes_routes, wakes_drain, routes_events;

/* ---- the test handler ----------------------------------------------------------------------- */

typedef struct hstate {
    int kind; /* 0 echo, 1 missing, 2 watch */
    int closed;
} hstate_t;

static hstate_t states[64];
static int n_states;

static int h_open(void *ctx, mesh_local_call_t *c, const char *path, size_t pl, void **state)
{
    (void)ctx;
    hstate_t *s = &states[n_states++];
    CHECK(n_states < 64);
    s->kind = pl == 14 && memcmp(path, "/t.Local/Watch", 14) == 0     ? 2
              : pl == 16 && memcmp(path, "/t.Local/Missing", 16) == 0 ? 1
                                                                      : 0;
    *state = s;
    opens++;
    if (s->kind == 1) {
        mesh_local_call_finish(c, MESH_GRPC_NOT_FOUND, "meshd: nothing here (100%)");
    } else if (s->kind == 2) {
        char b[32];
        int n = snprintf(b, sizeof(b), "%zu", mesh_routes_count(mesh_local_call_routes(c)));
        CHECK(mesh_local_call_send(c, (const uint8_t *)b, (size_t)n) == 0);
    }
    return 0;
}

static void h_message(void *ctx, void *state, mesh_local_call_t *c, const uint8_t *m, size_t len)
{
    (void)ctx;
    hstate_t *s = state;
    CHECK(!s->closed);
    if (s->kind != 0)
        return;
    uint8_t b[200];
    CHECK(len + 1 <= sizeof(b));
    memcpy(b, m, len);
    b[len] = '!';
    CHECK(mesh_local_call_send(c, b, len + 1) == 0);
}

static void h_end(void *ctx, void *state, mesh_local_call_t *c)
{
    (void)ctx;
    hstate_t *s = state;
    CHECK(!s->closed);
    if (s->kind == 0)
        mesh_local_call_finish(c, 0, NULL);
}

static void h_wake(void *ctx, void *state, mesh_local_call_t *c, mesh_local_wake_t why)
{
    (void)ctx;
    hstate_t *s = state;
    CHECK(!s->closed);
    if (s->kind != 2)
        return;
    if (why == MESH_LOCAL_WAKE_ROUTES) {
        wakes_routes++;
        char b[32];
        int n = snprintf(b, sizeof(b), "%zu", mesh_routes_count(mesh_local_call_routes(c)));
        mesh_local_call_send(c, (const uint8_t *)b, (size_t)n);
    } else if (why == MESH_LOCAL_WAKE_DRAIN) {
        wakes_drain++;
        CHECK(mesh_local_call_draining(c));
        mesh_local_call_send(c, (const uint8_t *)"drain", 5);
    } else {
        mesh_local_call_finish(c, MESH_GRPC_UNAVAILABLE, "meshd: draining");
    }
}

static void h_close(void *ctx, void *state)
{
    (void)ctx;
    hstate_t *s = state;
    CHECK(!s->closed);
    s->closed = 1;
    closes++;
}

static void h_routes(void *ctx, const mesh_routes_t *before, const mesh_routes_t *after)
{
    (void)ctx, (void)before;
    CHECK(after);
    routes_events++;
}

static const mesh_local_ops_t hops = {h_open, h_message, h_end, h_wake, h_close, h_routes};

/* ---- the client side (as in test_proxy_call.c) ---------------------------------------------- */

typedef struct tcall {
    mesh_proxy_call_t *c;
    int heads, ends, status;
    char msg[256];
    uint8_t body[4096];
    size_t body_len;
} tcall_t;

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void consume(tcall_t *t)
{
    const uint8_t *d;
    size_t n;
    while (t->c && (n = mesh_proxy_call_resp_peek(t->c, &d)) > 0) {
        CHECK(t->body_len + n <= sizeof(t->body));
        memcpy(t->body + t->body_len, d, n);
        t->body_len += n;
        mesh_proxy_call_resp_consume(t->c, n);
    }
}

static void on_head(void *ud, mesh_proxy_call_t *c, int end_stream)
{
    (void)c, (void)end_stream;
    ((tcall_t *)ud)->heads++;
}

static void on_data(void *ud, mesh_proxy_call_t *c)
{
    (void)c;
    consume(ud);
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

static void start(tcall_t *t, const char *path, uint64_t timeout_ms)
{
    static struct sockaddr_in peer = {.sin_family = AF_INET};
    peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    mesh_proxy_call_req_t r = {.path = path,
                               .path_len = strlen(path),
                               .peer = (const struct sockaddr *)&peer,
                               .timeout_ms = timeout_ms};
    CHECK(mesh_proxy_call_start(w, &r, &ops, t, &t->c) == 0);
}

/* Sends message m (framed); end 1 ends the request. */
static void send_msg(tcall_t *t, const char *m, int end)
{
    uint8_t b[256];
    size_t len = strlen(m);
    mesh_grpc_frame_prefix(b, 0, (uint32_t)len);
    memcpy(b + MESH_GRPC_PREFIX_LEN, m, len);
    CHECK(mesh_proxy_call_send(t->c, b, MESH_GRPC_PREFIX_LEN + len, end) >= 0);
}

/* The i-th response message of t as a string (into out), or NULL. */
static const char *resp_msg(const tcall_t *t, int i, char *out, size_t cap)
{
    size_t o = 0;
    for (int k = 0; o + MESH_GRPC_PREFIX_LEN <= t->body_len; k++) {
        uint32_t len = (uint32_t)t->body[o + 1] << 24 | (uint32_t)t->body[o + 2] << 16 |
                       (uint32_t)t->body[o + 3] << 8 | t->body[o + 4];
        CHECK(t->body[o] == 0 && o + MESH_GRPC_PREFIX_LEN + len <= t->body_len);
        if (k == i) {
            snprintf(out, cap, "%.*s", (int)len, (const char *)t->body + o + MESH_GRPC_PREFIX_LEN);
            return out;
        }
        o += MESH_GRPC_PREFIX_LEN + len;
    }
    return NULL;
}

#define RUN_UNTIL(cond, ms)                                                                        \
    do {                                                                                           \
        long _end = now_ms() + (ms);                                                               \
        while (!(cond) && now_ms() < _end)                                                         \
            uv_run(&loop, UV_RUN_ONCE);                                                            \
        CHECK(cond);                                                                               \
    } while (0)

static uv_timer_t tick;
static void on_tick(uv_timer_t *t)
{
    (void)t;
}

/* The filter: rejects every call (the policy chain saying no). */
static int reject_all(void *ctx, const mesh_proxy_call_info_t *info, mesh_proxy_verdict_t *out,
                      void **token)
{
    (void)ctx, (void)info, (void)token;
    out->grpc_status = MESH_GRPC_PERMISSION_DENIED;
    snprintf(out->message, sizeof(out->message), "meshd: denied by test");
    return MESH_PROXY_REJECT;
}

static mesh_routes_t *table(int n)
{
    mesh_route_builder_t *b = mesh_route_builder_new();
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof(name), "s%d.Svc", i);
        mesh_route_builder_add(b, name, "127.0.0.1:1", NULL, 0, MESH_ROUTE_STATIC, "", "", 1);
    }
    return mesh_route_builder_finish(b);
}

/* ---- the cases ------------------------------------------------------------------------------ */

static void test_echo(void)
{
    tcall_t t = {0};
    int c0 = closes;
    start(&t, "/t.Local/Echo", 5000);
    /* one message split over two sends, then two messages in one send */
    uint8_t b[64];
    mesh_grpc_frame_prefix(b, 0, 5);
    memcpy(b + 5, "hello", 5);
    CHECK(mesh_proxy_call_send(t.c, b, 3, 0) == 0);
    CHECK(mesh_proxy_call_send(t.c, b + 3, 7, 0) == 0);
    uint8_t two[32];
    mesh_grpc_frame_prefix(two, 0, 1);
    two[5] = 'a';
    mesh_grpc_frame_prefix(two + 6, 0, 1);
    two[11] = 'b';
    CHECK(mesh_proxy_call_send(t.c, two, 12, 1) == 0);
    RUN_UNTIL(t.ends, 5000);
    CHECK_EQ(t.status, 0);
    CHECK_EQ(t.heads, 1);
    char m[64];
    CHECK_STR(resp_msg(&t, 0, m, sizeof(m)), "hello!");
    CHECK_STR(resp_msg(&t, 1, m, sizeof(m)), "a!");
    CHECK_STR(resp_msg(&t, 2, m, sizeof(m)), "b!");
    CHECK(!resp_msg(&t, 3, m, sizeof(m)));
    RUN_UNTIL(closes == c0 + 1, 5000);
}

static void test_trailers_only(void)
{
    tcall_t t = {0};
    start(&t, "/t.Local/Missing", 5000); /* answered at once: the call takes no request */
    CHECK_EQ(mesh_proxy_call_send(t.c, (const uint8_t *)"\0\0\0\0\0", 5, 1), -1);
    RUN_UNTIL(t.ends, 5000);
    CHECK_EQ(t.status, MESH_GRPC_NOT_FOUND);
    CHECK_STR(t.msg, "meshd: nothing here (100%)"); /* percent-encoded and decoded again */
    CHECK_EQ(t.body_len, 0);
}

static void test_bad_messages(void)
{
    tcall_t t = {0};
    start(&t, "/t.Local/Echo", 5000);
    uint8_t b[8];
    mesh_grpc_frame_prefix(b, 1, 3); /* compressed */
    memcpy(b + 5, "abc", 3);
    mesh_proxy_call_send(t.c, b, 8, 1);
    RUN_UNTIL(t.ends, 5000);
    CHECK_EQ(t.status, MESH_GRPC_UNIMPLEMENTED);
    CHECK(strstr(t.msg, "compressed"));

    tcall_t u = {0};
    start(&u, "/t.Local/Echo", 5000);
    mesh_grpc_frame_prefix(b, 0, 1u << 20); /* beyond the 64 KiB default */
    mesh_proxy_call_send(u.c, b, 5, 0);
    RUN_UNTIL(u.ends, 5000);
    CHECK_EQ(u.status, MESH_GRPC_RESOURCE_EXHAUSTED);

    tcall_t v = {0};
    start(&v, "/t.Local/Echo", 5000);
    mesh_grpc_frame_prefix(b, 0, 3); /* the request ends inside a message */
    mesh_proxy_call_send(v.c, b, 6, 1);
    RUN_UNTIL(v.ends, 5000);
    CHECK_EQ(v.status, MESH_GRPC_INTERNAL);
    RUN_UNTIL(closes == opens, 5000);
}

static void test_watch_and_cancel(void)
{
    tcall_t t = {0};
    int r0 = wakes_routes, c0 = closes, e0 = routes_events;
    start(&t, "/t.Local/Watch", 0);
    send_msg(&t, "", 1); /* half-close: the stream stays open */
    char m[64];
    RUN_UNTIL(resp_msg(&t, 0, m, sizeof(m)), 5000);
    CHECK_STR(m, "2");
    mesh_proxy_worker_set_routes(w, table(3));
    RUN_UNTIL(resp_msg(&t, 1, m, sizeof(m)), 5000);
    CHECK_STR(m, "3");
    CHECK_EQ(wakes_routes, r0 + 1);
    CHECK_EQ(routes_events, e0 + 3);
    CHECK_EQ(t.ends, 0);
    mesh_proxy_call_cancel(t.c); /* the client leaves: on_close, no more wakes */
    t.c = NULL;
    RUN_UNTIL(closes == c0 + 1, 5000);
    mesh_proxy_worker_set_routes(w, table(2));
    CHECK_EQ(wakes_routes, r0 + 1);
}

static void test_deadline(void)
{
    tcall_t t = {0};
    int c0 = closes;
    start(&t, "/t.Local/Watch", 100);
    RUN_UNTIL(t.ends, 5000);
    CHECK_EQ(t.status, MESH_GRPC_DEADLINE_EXCEEDED);
    RUN_UNTIL(closes == c0 + 1, 5000);
}

static void test_filters(void)
{
    /* The worker's filter rejects everything: the early service still answers (health),
     * the late one is refused like any call. */
    tcall_t t = {0};
    start(&t, "/t.Early/Echo", 5000);
    send_msg(&t, "hi", 1);
    RUN_UNTIL(t.ends, 5000);
    CHECK_EQ(t.status, 0);
    char m[64];
    CHECK_STR(resp_msg(&t, 0, m, sizeof(m)), "hi!");
    tcall_t u = {0};
    int o0 = opens;
    start(&u, "/t.Late/Echo", 5000); /* refused by the filter at once: takes no request */
    CHECK_EQ(mesh_proxy_call_send(u.c, (const uint8_t *)"\0\0\0\0\0", 5, 1), -1);
    RUN_UNTIL(u.ends, 5000);
    CHECK_EQ(u.status, MESH_GRPC_PERMISSION_DENIED);
    CHECK_EQ(opens, o0);
}

static void on_drained(void *arg)
{
    *(int *)arg = 1;
}

static void test_drain(void)
{
    tcall_t t = {0};
    start(&t, "/t.Local/Watch", 0);
    char m[64];
    RUN_UNTIL(resp_msg(&t, 0, m, sizeof(m)), 5000);
    int drained = 0;
    mesh_proxy_worker_stop_serving(w);
    RUN_UNTIL(resp_msg(&t, 1, m, sizeof(m)), 5000);
    CHECK_STR(m, "drain");
    CHECK_EQ(wakes_drain, 1);
    mesh_proxy_worker_stop_serving(w); /* once */
    CHECK_EQ(wakes_drain, 1);
    mesh_proxy_worker_drain(w, on_drained, &drained);
    RUN_UNTIL(t.ends, 5000); /* GOAWAY: the handler ends its stream */
    CHECK_EQ(t.status, MESH_GRPC_UNAVAILABLE);
    CHECK_STR(t.msg, "meshd: draining");
    RUN_UNTIL(closes == opens, 5000);
    RUN_UNTIL(drained, 5000); /* nothing holds the drain */
}

int main(void)
{
    mesh_log_init("test", MESH_LOG_ERROR, MESH_LOG_FORMAT_TEXT);
    CHECK(uv_loop_init(&loop) == 0);
    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, on_tick, 50, 50);
    mesh_proxy_config_t cfg = {.listen_host = "127.0.0.1", .no_listener = 1};
    w = mesh_proxy_worker_new(&loop, &cfg);
    CHECK(w);
    mesh_local_service_t late = {.path = "/t.Local/", .ops = &hops};
    CHECK(mesh_proxy_worker_add_local(w, &late) == 0);
    mesh_local_service_t late2 = {.path = "/t.Late/Echo", .ops = &hops};
    CHECK(mesh_proxy_worker_add_local(w, &late2) == 0);
    mesh_local_service_t early = {.path = "/t.Early/Echo", .before_filters = 1, .ops = &hops};
    CHECK(mesh_proxy_worker_add_local(w, &early) == 0);
    mesh_local_service_t bad = {.path = "t.NoSlash/", .ops = &hops};
    CHECK(mesh_proxy_worker_add_local(w, &bad) == -1);
    mesh_proxy_worker_set_routes(w, table(2));
    CHECK_EQ(routes_events, 3); /* once per service entry */

    test_echo();
    test_trailers_only();
    test_bad_messages();
    test_watch_and_cancel();
    test_deadline();
    mesh_proxy_filter_t f = {.on_call = reject_all};
    CHECK(mesh_proxy_worker_add_filter(w, &f) == 0);
    test_filters();
    mesh_proxy_worker_set_filter(w, NULL);
    test_drain();

    mesh_proxy_worker_free(w);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
    CHECK_EQ(closes, opens);
    fprintf(stderr, "ok\n");
    return 0;
}
