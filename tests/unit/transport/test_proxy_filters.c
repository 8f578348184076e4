/*
 * tests/unit/transport/test_proxy_filters.c: the proxy's per-call filter hook as the policy
 * chain uses it: reading, setting and removing request fields (the backend sees the result),
 * the peer and method, rejections with a status, a message and one more trailer, filters
 * that finish later (accept, reject, a call whose deadline passes while it waits, a client
 * that goes away), filters that wait for the request body, and per-call fields (new values on
 * every call, sent never-indexed once their names are in the backend's HPACK table).
 */
#include <arpa/inet.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "echo_server.h"
#include "h2_client.h"
#include "proxy_thread.h"
#include "registry/route_table.h"
#include "tests/check.h"
#include "transport/grpc_frame.h"
#include "transport/proxy.h"

/* What the test filter saw, read by the test thread after the calls. */
static atomic_int done_calls, done_after_wait, resumed_after_done, body_spans, body_bytes;
static atomic_int peer_ok, body_complete;
static proxy_thread_t px;

/* A call that waits in the filter: its timer resumes it. */
typedef struct waiter {
    uv_timer_t timer;
    mesh_proxy_call_t *call;
    int reject;
    int done; /* on_done ran: resuming now would be a bug */
} waiter_t;

static void on_waiter_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_waiter_timer(uv_timer_t *t)
{
    waiter_t *wt = t->data;
    if (wt->done) {
        atomic_fetch_add(&resumed_after_done, 1);
        return;
    }
    mesh_proxy_verdict_t v = {.grpc_status = 16};
    snprintf(v.message, sizeof(v.message), "meshd: test: not you");
    mesh_proxy_call_resume(wt->call, wt->reject ? &v : NULL);
}

static int method_is(const mesh_proxy_call_info_t *i, const char *m)
{
    return i->method_len == strlen(m) && memcmp(i->method, m, i->method_len) == 0;
}

static void on_body(void *ctx, mesh_proxy_call_t *call, int complete)
{
    size_t pos = 0, n, total = 0;
    const uint8_t *d;
    int spans = 0;
    while ((n = mesh_proxy_call_body_next(call, &pos, &d)) > 0) {
        total += n;
        spans++;
    }
    atomic_store(&body_spans, spans);
    atomic_store(&body_bytes, (int)total);
    atomic_store(&body_complete, complete);
    mesh_proxy_verdict_t v = {.grpc_status = 8};
    snprintf(v.message, sizeof(v.message), "meshd: test: body too large");
    mesh_proxy_call_resume(call, complete ? NULL : &v);
}

static int filter_call(void *ctx, const mesh_proxy_call_info_t *info, mesh_proxy_verdict_t *out,
                       void **token)
{
    const struct sockaddr_in *sin = (const struct sockaddr_in *)info->peer;
    if (sin->sin_family == AF_INET && sin->sin_addr.s_addr == htonl(INADDR_LOOPBACK))
        atomic_fetch_add(&peer_ok, 1);
    if (method_is(info, "Set")) {
        size_t l;
        const char *in = mesh_proxy_call_header(info->call, "x-in", &l);
        CHECK(in && l == 5 && memcmp(in, "hello", 5) == 0);
        CHECK(mesh_proxy_call_set_header(info->call, "x-seen-in", in, l) == 0);
        CHECK(mesh_proxy_call_set_header(info->call, "x-added", "yes", 3) == 0);
        CHECK(mesh_proxy_call_set_header(info->call, "x-added", "twice", 5) == 0);
        CHECK(mesh_proxy_call_remove_header(info->call, "x-secret") == 2);
        /* What the engine owns cannot be set. */
        CHECK(mesh_proxy_call_set_header(info->call, ":path", "/x/y", 4) < 0);
        CHECK(mesh_proxy_call_set_header(info->call, "content-type", "a", 1) < 0);
        CHECK(mesh_proxy_call_set_header(info->call, "grpc-timeout", "1S", 2) < 0);
        CHECK(mesh_proxy_call_set_header(info->call, "X-Upper", "a", 1) < 0);
        CHECK(mesh_proxy_call_set_header(info->call, "x-crlf", "a\r\nb: c", 7) < 0);
        return MESH_PROXY_ACCEPT;
    }
    if (method_is(info, "Trace")) { /* new on every call, as the trace context is */
        static int seq;
        char tp[64], rid[40];
        int n = ++seq;
        snprintf(tp, sizeof(tp), "00-%032x-%016x-01", n, n);
        snprintf(rid, sizeof(rid), "req-%d", n);
        CHECK(mesh_proxy_call_set_header(info->call, "traceparent", tp, strlen(tp)) == 0);
        CHECK(mesh_proxy_call_set_header(info->call, "x-request-id", rid, strlen(rid)) == 0);
        return MESH_PROXY_ACCEPT;
    }
    if (method_is(info, "Reject")) {
        out->grpc_status = 8;
        snprintf(out->message, sizeof(out->message), "meshd: test: slow down");
        snprintf(out->meta_name, sizeof(out->meta_name), "retry-after-ms");
        snprintf(out->meta_value, sizeof(out->meta_value), "250");
        return MESH_PROXY_REJECT;
    }
    if (method_is(info, "Later") || method_is(info, "LaterNo") || method_is(info, "Never")) {
        waiter_t *wt = calloc(1, sizeof(*wt));
        wt->call = info->call;
        wt->reject = method_is(info, "LaterNo");
        uv_timer_init(&px.loop, &wt->timer);
        wt->timer.data = wt;
        uv_timer_start(&wt->timer, on_waiter_timer, method_is(info, "Never") ? 3000 : 50, 0);
        *token = wt;
        return MESH_PROXY_PENDING;
    }
    if (method_is(info, "Body") || method_is(info, "BigBody")) {
        mesh_proxy_call_want_body(info->call, method_is(info, "Body") ? 1 << 20 : 100, on_body,
                                  NULL);
        return MESH_PROXY_PENDING;
    }
    return MESH_PROXY_ACCEPT;
}

static void filter_done(void *ctx, void *token, int status)
{
    atomic_fetch_add(&done_calls, 1);
    waiter_t *wt = token;
    if (!wt)
        return;
    if (status == 4)
        atomic_fetch_add(&done_after_wait, 1);
    wt->done = 1;
    /* The timer may still fire once more before the close: it checks done. */
    uv_close((uv_handle_t *)&wt->timer, on_waiter_closed);
}

static uint8_t *grpc_msgs(size_t count, size_t size, size_t *total)
{
    *total = count * (MESH_GRPC_PREFIX_LEN + size);
    uint8_t *b = malloc(*total);
    size_t o = 0;
    for (size_t i = 0; i < count; i++) {
        mesh_grpc_frame_prefix(b + o, 0, (uint32_t)size);
        o += MESH_GRPC_PREFIX_LEN;
        memset(b + o, (int)i, size);
        o += size;
    }
    return b;
}

/* One call with the extra fields nv; returns it finished. */
static void call(const char *path, const char *tmo, const nghttp2_nv *nv, size_t n_nv,
                 const uint8_t *body, size_t len, h2_call_t *out)
{
    h2_client_t c;
    CHECK(h2_client_connect(&c, px.port) == 0);
    c.extra = nv;
    c.n_extra = n_nv;
    CHECK(h2_client_call(&c, out, path, "application/grpc", tmo, body, len, 1) == 0);
    h2_call_t *calls[] = {out};
    CHECK(h2_client_wait(&c, calls, 1, 15000) == 0);
    h2_client_close(&c);
}

#define NV(n, v)                                                                                   \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1, 0                            \
    }

static void test_fields(echo_server_t *s)
{
    nghttp2_nv nv[] = {NV("x-in", "hello"), NV("x-secret", "a"), NV("x-secret", "b"),
                       NV("x-added", "from-client")};
    size_t len;
    uint8_t *req = grpc_msgs(1, 16, &len);
    h2_call_t c;
    call("/f.Svc/Set", NULL, nv, 4, req, len, &c);
    CHECK(c.grpc_status == 0 && c.body_len == len);
    char seen[2048];
    echo_server_last_fields(s, seen, sizeof(seen));
    CHECK(strstr(seen, "x-seen-in: hello\n"));
    CHECK(strstr(seen, "x-added: twice\n"));
    CHECK(!strstr(seen, "from-client"));
    CHECK(!strstr(seen, "x-secret"));
    CHECK(strstr(seen, "x-in: hello\n"));
    h2_call_free(&c);
    free(req);
}

/* Per-call fields reach the backend with their own values on every call, never indexed in
 * HPACK (a new value each call would only churn the backend's table) once the connection's
 * first call has put their names in it. Other fields are indexed as usual. */
static void test_per_call_fields(echo_server_t *s)
{
    nghttp2_nv nv[] = {NV("x-in", "hello")};
    for (int i = 1; i <= 3; i++) {
        h2_call_t c;
        call("/f.Svc/Trace", NULL, nv, 1, NULL, 0, &c);
        CHECK(c.grpc_status == 0);
        char seen[2048], want[128];
        echo_server_last_fields(s, seen, sizeof(seen));
        const char *never = i > 1 ? "!" : "";
        snprintf(want, sizeof(want), "traceparent:%s 00-%032x-%016x-01\n", never, i, i);
        CHECK(strstr(seen, want));
        snprintf(want, sizeof(want), "x-request-id:%s req-%d\n", never, i);
        CHECK(strstr(seen, want));
        CHECK(strstr(seen, "x-in: hello\n"));
        h2_call_free(&c);
    }
}

static void test_reject_with_trailer(void)
{
    h2_call_t c;
    call("/f.Svc/Reject", NULL, NULL, 0, NULL, 0, &c);
    CHECK(c.grpc_status == 8);
    CHECK(strcmp(c.grpc_message, "meshd: test: slow down") == 0);
    CHECK(strstr(c.fields, "retry-after-ms: 250\n"));
    h2_call_free(&c);
}

static void test_pending(echo_server_t *s)
{
    size_t len;
    uint8_t *req = grpc_msgs(2, 100, &len);
    int before = echo_server_calls(s);
    h2_call_t c;
    call("/f.Svc/Later", "5S", NULL, 0, req, len, &c);
    CHECK(c.grpc_status == 0 && c.body_len == len && memcmp(c.body, req, len) == 0);
    h2_call_free(&c);
    call("/f.Svc/LaterNo", "5S", NULL, 0, req, len, &c);
    CHECK(c.grpc_status == 16);
    CHECK(strcmp(c.grpc_message, "meshd: test: not you") == 0);
    h2_call_free(&c);
    CHECK(echo_server_calls(s) == before + 1); /* the rejected one never reached it */
    /* The deadline runs while the filter waits; the filter hears of it and must not resume. */
    call("/f.Svc/Never", "300m", NULL, 0, req, len, &c);
    CHECK(c.grpc_status == 4);
    h2_call_free(&c);
    CHECK(atomic_load(&done_after_wait) == 1);
    CHECK(echo_server_calls(s) == before + 1);
    free(req);
}

static void test_body(echo_server_t *s)
{
    size_t len;
    uint8_t *req = grpc_msgs(20, 1000, &len);
    h2_call_t c;
    call("/f.Svc/Body", "5S", NULL, 0, req, len, &c);
    CHECK(c.grpc_status == 0 && c.body_len == len && memcmp(c.body, req, len) == 0);
    CHECK(atomic_load(&body_complete) == 1 && atomic_load(&body_bytes) == (int)len);
    CHECK(atomic_load(&body_spans) >= 1);
    h2_call_free(&c);
    /* Without a body at all (END_STREAM on HEADERS). */
    call("/f.Svc/Body", "5S", NULL, 0, NULL, 0, &c);
    CHECK(c.grpc_status == 0 && c.body_len == 0);
    CHECK(atomic_load(&body_complete) == 1 && atomic_load(&body_bytes) == 0);
    h2_call_free(&c);
    int before = echo_server_calls(s);
    call("/f.Svc/BigBody", "5S", NULL, 0, req, len, &c);
    CHECK(c.grpc_status == 8 && atomic_load(&body_complete) == 0);
    CHECK(atomic_load(&body_bytes) >= 100);
    CHECK(echo_server_calls(s) == before);
    h2_call_free(&c);
    free(req);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (getenv("MESH_TEST_DEBUG"))
        mesh_log_init("test", MESH_LOG_DEBUG, MESH_LOG_FORMAT_TEXT);
    echo_server_t *s = echo_server_start();
    CHECK(s);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", echo_server_port(s));
    mesh_route_builder_t *b = mesh_route_builder_new();
    CHECK(mesh_route_builder_add(b, "f.Svc", addr, NULL, 0, MESH_ROUTE_STATIC, "", "", 1) == 0);
    mesh_proxy_config_t cfg = {.filter = {.on_call = filter_call, .on_done = filter_done}};
    proxy_thread_start(&px, cfg, mesh_route_builder_finish(b));
    fprintf(stderr, "-- fields\n");
    test_fields(s);
    fprintf(stderr, "-- per-call fields\n");
    test_per_call_fields(s);
    fprintf(stderr, "-- reject\n");
    test_reject_with_trailer();
    fprintf(stderr, "-- pending\n");
    test_pending(s);
    fprintf(stderr, "-- body\n");
    test_body(s);
    proxy_thread_stop(&px);
    /* Every call that got past on_call got its on_done, the rejected one too (none owed). */
    CHECK(atomic_load(&done_calls) == 10);
    CHECK(atomic_load(&peer_ok) == 11);
    CHECK(atomic_load(&resumed_after_done) == 0);
    echo_server_stop(s);
    fprintf(stderr, "ok\n");
    return 0;
}
