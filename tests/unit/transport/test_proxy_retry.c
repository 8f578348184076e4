/*
 * tests/unit/transport/test_proxy_retry.c: end-to-end tests of the proxy engine's retry and
 * liveness guarantees (docs/transport.md, "Retries" and "Keepalive"): an nghttp2 client -> a
 * proxy worker on its own loop thread -> echo servers in misbehaving modes.
 *
 * Each test starts its own backends and its own proxy, so every counter starts at zero:
 * - a REFUSED_STREAM is retried on another instance (and the refusing one did see it); when
 *   every instance refuses, the client gets UNAVAILABLE from meshd;
 * - a stream above a GOAWAY's last-stream-id is retried elsewhere; one at or below it that
 *   completes is not retried (no duplicate execution);
 * - a call the upstream reset after reading it is not retried (INTERNAL);
 * - keepalive closes an upstream connection whose peer stops answering PINGs (the call fails
 *   UNAVAILABLE long before its deadline) and leaves an idle healthy one alone;
 * - liveness PINGs close a connection whose upstream went silent, not one whose answer came
 *   while the proxy's own loop was paused;
 * - two workers on two loops share one SO_REUSEPORT port and both serve connections.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
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
#include "transport/proxy.h"

/* A proxy worker running on its own loop thread; commands reach it through an async. */
typedef struct {
    uv_loop_t loop;
    uv_async_t cmd;
    pthread_t thread;
    mesh_proxy_worker_t *w;
    int port;
    atomic_int command; /* PX_* */
    atomic_int done;    /* the last PX_STATS or PX_PAUSE command was served */
    mesh_proxy_stats_t stats;
    int pause_ms; /* of a PX_PAUSE */
} proxy_thread_t;

enum { PX_NONE = 0, PX_STATS = 1, PX_FREE = 2, PX_PAUSE = 3 };

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_cmd(uv_async_t *a)
{
    proxy_thread_t *p = a->data;
    int c = atomic_exchange(&p->command, PX_NONE);
    if (c == PX_STATS) {
        mesh_proxy_worker_stats(p->w, &p->stats);
        atomic_store(&p->done, 1);
    } else if (c == PX_PAUSE) {
        usleep((useconds_t)p->pause_ms * 1000); /* the loop does not run: a stopped process */
        atomic_store(&p->done, 1);
    } else if (c == PX_FREE) {
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

/* Starts a worker with cfg (listen host and defaults filled in) and takes routes. */
static void proxy_start(proxy_thread_t *p, mesh_proxy_config_t cfg, mesh_routes_t *routes)
{
    memset(p, 0, sizeof(*p));
    CHECK(uv_loop_init(&p->loop) == 0);
    cfg.listen_host = "127.0.0.1";
    if (!cfg.connect_timeout_ms)
        cfg.connect_timeout_ms = 1000;
    p->w = mesh_proxy_worker_new(&p->loop, &cfg);
    CHECK(p->w);
    p->port = mesh_proxy_worker_port(p->w);
    mesh_proxy_worker_set_routes(p->w, routes);
    CHECK(uv_async_init(&p->loop, &p->cmd, on_cmd) == 0);
    p->cmd.data = p;
    CHECK(pthread_create(&p->thread, NULL, proxy_run, p) == 0);
}

/* A copy of the worker's counters, read on its loop thread. */
static mesh_proxy_stats_t proxy_stats(proxy_thread_t *p)
{
    atomic_store(&p->done, 0);
    atomic_store(&p->command, PX_STATS);
    uv_async_send(&p->cmd);
    long end = now_ms() + 10000;
    while (!atomic_load(&p->done) && now_ms() < end)
        usleep(1000);
    CHECK(atomic_load(&p->done));
    return p->stats;
}

static void proxy_stop(proxy_thread_t *p)
{
    atomic_store(&p->command, PX_FREE);
    uv_async_send(&p->cmd);
    pthread_join(p->thread, NULL);
    CHECK(uv_loop_close(&p->loop) == 0);
}

/* "127.0.0.1:port" of an echo server. */
static const char *addr_of(echo_server_t *s, char *buf, size_t cap)
{
    snprintf(buf, cap, "127.0.0.1:%d", echo_server_port(s));
    return buf;
}

static void route_add(mesh_route_builder_t *b, const char *svc, const char *addr)
{
    CHECK(mesh_route_builder_add(b, svc, addr, NULL, 0, MESH_ROUTE_STATIC, "", "", 1) == 0);
}

/* Starts a worker with cfg whose one route sends svc to echo server s. */
static void proxy_start_one(proxy_thread_t *p, mesh_proxy_config_t cfg, const char *svc,
                            echo_server_t *s)
{
    char a[64];
    mesh_route_builder_t *b = mesh_route_builder_new();
    route_add(b, svc, addr_of(s, a, sizeof(a)));
    proxy_start(p, cfg, mesh_route_builder_finish(b));
}

/* Two echo servers behind one proxy worker: both serve svc (round robin starts at first);
 * solo (may be NULL) is served by first alone. Modes are set by the test afterwards. */
typedef struct pair {
    echo_server_t *first, *second;
    proxy_thread_t px;
} pair_t;

static void pair_start(pair_t *p, mesh_proxy_config_t cfg, const char *svc, const char *solo)
{
    p->first = echo_server_start();
    p->second = echo_server_start();
    CHECK(p->first && p->second);
    char a1[64], a2[64];
    mesh_route_builder_t *b = mesh_route_builder_new();
    route_add(b, svc, addr_of(p->first, a1, sizeof(a1)));
    route_add(b, svc, addr_of(p->second, a2, sizeof(a2)));
    if (solo)
        route_add(b, solo, a1);
    proxy_start(&p->px, cfg, mesh_route_builder_finish(b));
}

static void pair_stop(pair_t *p)
{
    proxy_stop(&p->px);
    echo_server_stop(p->first);
    echo_server_stop(p->second);
}

/* count gRPC messages of size bytes, each byte distinct per seed. */
static uint8_t *grpc_msgs(size_t count, size_t size, int seed, size_t *total)
{
    *total = count * (MESH_GRPC_PREFIX_LEN + size);
    uint8_t *b = malloc(*total);
    size_t o = 0;
    for (size_t i = 0; i < count; i++) {
        mesh_grpc_frame_prefix(b + o, 0, (uint32_t)size);
        o += MESH_GRPC_PREFIX_LEN;
        for (size_t j = 0; j < size; j++)
            b[o + j] = (uint8_t)(seed + i + j);
        o += size;
    }
    return b;
}

/* One call on its own client connection to the proxy at port; fails the test if the call
 * does not close within deadline_ms. */
static void one_call(int port, const char *path, const char *tmo, const uint8_t *body, size_t len,
                     h2_call_t *call, int deadline_ms)
{
    h2_client_t c;
    CHECK(h2_client_connect(&c, port) == 0);
    CHECK(h2_client_call(&c, call, path, "application/grpc", tmo, body, len, 1) == 0);
    h2_call_t *calls[] = {call};
    CHECK(h2_client_wait(&c, calls, 1, deadline_ms) == 0);
    h2_client_close(&c);
}

/* A call that must have been echoed by a backend. */
static void check_echoed(const h2_call_t *call, const uint8_t *req, size_t len)
{
    CHECK(call->http_status == 200);
    CHECK(call->grpc_status == 0);
    CHECK(call->body_len == len && memcmp(call->body, req, len) == 0);
}

/* One call of req to path through the proxy on port, which must come back echoed. */
static void echoed_call(int port, const char *path, const uint8_t *req, size_t len)
{
    h2_call_t call;
    one_call(port, path, NULL, req, len, &call, 10000);
    check_echoed(&call, req, len);
    h2_call_free(&call);
}

/* ---- 1. REFUSED_STREAM ---------------------------------------------------------------------- */

static void test_refused_retried(void)
{
    pair_t p;
    pair_start(&p, (mesh_proxy_config_t){0}, "r.Svc", NULL);
    echo_server_t *ref = p.first, *ok = p.second;
    echo_server_set_mode(ref, ECHO_MODE_REFUSE, 0); /* refuses every stream */

    /* Round robin sends some of these calls to the refusing instance first; all succeed. */
    size_t len;
    uint8_t *req = grpc_msgs(2, 20, 1, &len);
    int n = 0;
    for (; n < 6 && (n < 2 || echo_server_refused(ref) == 0); n++)
        echoed_call(p.px.port, "/r.Svc/Echo", req, len);
    CHECK(echo_server_refused(ref) > 0); /* the retry really happened */
    CHECK(echo_server_completed(ref) == 0);
    CHECK(echo_server_completed(ok) == n);
    CHECK(echo_server_calls(ok) == n); /* each call executed exactly once */
    mesh_proxy_stats_t st = proxy_stats(&p.px);
    CHECK(st.retries == (uint64_t)echo_server_refused(ref));
    CHECK(st.calls == (uint64_t)n && st.calls_failed == 0);
    pair_stop(&p);
    free(req);
}

/* A backend that refuses only the first stream of each connection: the refused call goes to
 * the other instance, and the refusing backend's next stream on that connection is served. */
static void test_refused_first_stream_only(void)
{
    pair_t p;
    pair_start(&p, (mesh_proxy_config_t){0}, "r.Svc", NULL);
    echo_server_t *ref = p.first, *ok = p.second;
    echo_server_set_mode(ref, ECHO_MODE_REFUSE, 1);
    size_t len;
    uint8_t *req = grpc_msgs(1, 7, 2, &len);
    for (int i = 0; i < 6; i++)
        echoed_call(p.px.port, "/r.Svc/Echo", req, len);
    CHECK(echo_server_refused(ref) == 1);  /* one upstream connection, its first stream */
    CHECK(echo_server_completed(ref) > 0); /* later streams on it were served */
    CHECK(echo_server_completed(ref) + echo_server_completed(ok) == 6);
    CHECK(echo_server_calls(ok) == echo_server_completed(ok));
    CHECK(proxy_stats(&p.px).retries == 1);
    pair_stop(&p);
    free(req);
}

/* A refused call whose 100 KB request is still streaming: the retained bytes (several
 * chunks, some already sent to the refusing backend) are replayed to the other instance and
 * the rest follows there; the echo comes back byte for byte. */
static void test_refused_retry_streaming_body(void)
{
    pair_t p;
    pair_start(&p, (mesh_proxy_config_t){0}, "r.Svc", NULL);
    echo_server_t *ref = p.first, *ok = p.second;
    echo_server_set_mode(ref, ECHO_MODE_REFUSE, 0);
    size_t len;
    uint8_t *req = grpc_msgs(100, 1000, 11, &len); /* under half the 256 KiB stream buffer */
    h2_client_t c;
    CHECK(h2_client_connect(&c, p.px.port) == 0);
    h2_call_t call;
    CHECK(h2_client_call(&c, &call, "/r.Svc/Echo", "application/grpc", NULL, req, len / 2, 0) == 0);
    long end = now_ms() + 10000;
    while (echo_server_calls(ok) == 0 && now_ms() < end)
        h2_client_pump(&c, 10);
    CHECK(echo_server_refused(ref) == 1 && echo_server_calls(ok) == 1);
    call.req_len = len; /* now the second half, and the end of the request */
    call.req_end = 1;
    h2_call_t *calls[] = {&call};
    CHECK(h2_client_wait(&c, calls, 1, 10000) == 0);
    check_echoed(&call, req, len);
    CHECK(proxy_stats(&p.px).retries == 1);
    h2_client_close(&c);
    h2_call_free(&call);
    pair_stop(&p);
    free(req);
}

static void test_all_refuse(void)
{
    pair_t p;
    pair_start(&p, (mesh_proxy_config_t){0}, "r.Svc", "one.Svc");
    echo_server_t *r1 = p.first, *r2 = p.second;
    echo_server_set_mode(r1, ECHO_MODE_REFUSE, 0);
    echo_server_set_mode(r2, ECHO_MODE_REFUSE, 0);
    size_t len;
    uint8_t *req = grpc_msgs(1, 9, 3, &len);
    /* Two refusing instances: tried on both, then UNAVAILABLE (the deadline is far away). */
    h2_call_t call;
    one_call(p.px.port, "/r.Svc/Echo", "60S", req, len, &call, 10000);
    CHECK(call.grpc_status == 14);
    CHECK(strncmp(call.grpc_message, "meshd: ", 7) == 0);
    CHECK(echo_server_refused(r1) == 1 && echo_server_refused(r2) == 1);
    h2_call_free(&call);
    /* A single refusing instance: no other one to retry on. */
    one_call(p.px.port, "/one.Svc/Echo", "60S", req, len, &call, 10000);
    CHECK(call.grpc_status == 14);
    CHECK(strncmp(call.grpc_message, "meshd: ", 7) == 0);
    CHECK(strstr(call.grpc_message, "one.Svc"));
    CHECK(echo_server_refused(r1) == 2);
    h2_call_free(&call);
    CHECK(echo_server_completed(r1) == 0 && echo_server_completed(r2) == 0);
    pair_stop(&p);
    free(req);
}

/* ---- 2. GOAWAY ------------------------------------------------------------------------------ */

/* GOAWAY(last_stream_id 0) answering the first stream: that stream is retried elsewhere. */
static void test_goaway_zero_retried(void)
{
    pair_t p;
    pair_start(&p, (mesh_proxy_config_t){0}, "g.Svc", NULL);
    echo_server_t *g = p.first, *ok = p.second;
    echo_server_set_mode(g, ECHO_MODE_GOAWAY_ZERO, 0);
    size_t len;
    uint8_t *req = grpc_msgs(1, 33, 4, &len);
    int n = 0;
    for (; n < 6 && (n < 2 || echo_server_dropped(g) == 0); n++)
        echoed_call(p.px.port, "/g.Svc/Echo", req, len);
    CHECK(echo_server_dropped(g) > 0); /* g saw a stream above its GOAWAY */
    CHECK(echo_server_completed(g) == 0);
    CHECK(echo_server_completed(ok) == n && echo_server_calls(ok) == n);
    CHECK(proxy_stats(&p.px).retries == (uint64_t)echo_server_dropped(g));
    pair_stop(&p);
    free(req);
}

/* GOAWAY(last_stream_id 0) sent with the server's SETTINGS, before any stream: whether the
 * proxy's stream left before the GOAWAY arrived or not, the call is retried elsewhere. */
static void test_goaway_at_connect_retried(void)
{
    pair_t p;
    pair_start(&p, (mesh_proxy_config_t){0}, "g.Svc", NULL);
    echo_server_t *g = p.first, *ok = p.second;
    echo_server_set_mode(g, ECHO_MODE_GOAWAY_AT_CONNECT, 0);
    size_t len;
    uint8_t *req = grpc_msgs(1, 21, 12, &len);
    for (int i = 0; i < 4; i++)
        echoed_call(p.px.port, "/g.Svc/Echo", req, len);
    CHECK(echo_server_conns(g) > 0);
    CHECK(echo_server_calls(g) == 0 && echo_server_completed(g) == 0);
    CHECK(echo_server_completed(ok) == 4 && echo_server_calls(ok) == 4);
    CHECK(proxy_stats(&p.px).retries > 0);
    pair_stop(&p);
    free(req);
}

/* Two calls on one upstream connection; the backend answers GOAWAY(last = the first stream):
 * the first completes there and is not retried, the second is retried on the other instance. */
static void test_goaway_above_last_id(void)
{
    pair_t p;
    pair_start(&p, (mesh_proxy_config_t){0}, "both.Svc", "only.Svc");
    echo_server_t *g = p.first, *ok = p.second;
    echo_server_set_mode(g, ECHO_MODE_GOAWAY_AFTER_FIRST, 0);
    size_t la, lb;
    uint8_t *ra = grpc_msgs(1, 15, 5, &la), *rb = grpc_msgs(2, 25, 6, &lb);
    h2_client_t c;
    CHECK(h2_client_connect(&c, p.px.port) == 0);
    h2_call_t ca, cb;
    CHECK(h2_client_call(&c, &ca, "/only.Svc/Echo", "application/grpc", NULL, ra, la, 1) == 0);
    /* Let the first call reach g before the second one is sent. */
    long end = now_ms() + 10000;
    while (echo_server_calls(g) == 0 && now_ms() < end)
        h2_client_pump(&c, 10);
    CHECK(echo_server_calls(g) == 1);
    CHECK(h2_client_call(&c, &cb, "/both.Svc/Echo", "application/grpc", NULL, rb, lb, 1) == 0);
    h2_call_t *calls[] = {&ca, &cb};
    CHECK(h2_client_wait(&c, calls, 2, 10000) == 0);
    check_echoed(&ca, ra, la); /* at the last id: completed by g */
    check_echoed(&cb, rb, lb); /* above it: retried on ok */
    CHECK(echo_server_calls(g) == 2 && echo_server_dropped(g) == 1);
    CHECK(echo_server_completed(g) == 1);
    CHECK(echo_server_calls(ok) == 1 && echo_server_completed(ok) == 1); /* no duplicate */
    CHECK(proxy_stats(&p.px).retries == 1);
    h2_client_close(&c);
    h2_call_free(&ca);
    h2_call_free(&cb);
    pair_stop(&p);
    free(ra);
    free(rb);
}

/* A call queued inside nghttp2 (the backend allows one stream, the proxy one connection) when
 * the GOAWAY arrives never left the proxy: it must be retried on the other instance, and the
 * call at the GOAWAY's last id completes where it is. */
static void test_goaway_queued_stream_retried(void)
{
    pair_t p;
    pair_start(&p, (mesh_proxy_config_t){.max_upstream_conns = 1}, "both.Svc", "only.Svc");
    echo_server_t *g = p.first, *ok = p.second;
    echo_server_set_max_streams(g, 1);
    echo_server_set_mode(g, ECHO_MODE_GOAWAY_ON_RELEASE, 2); /* the first stream is served */
    size_t len;
    uint8_t *req = grpc_msgs(1, 17, 13, &len);
    h2_client_t c;
    CHECK(h2_client_connect(&c, p.px.port) == 0);
    /* Warm-up: the upstream connection is up and its SETTINGS (one stream) are known. */
    h2_call_t w, ca, cb;
    CHECK(h2_client_call(&c, &w, "/only.Svc/Echo", "application/grpc", NULL, req, len, 1) == 0);
    h2_call_t *cw[] = {&w};
    CHECK(h2_client_wait(&c, cw, 1, 10000) == 0);
    check_echoed(&w, req, len);
    /* A takes the one stream g allows (held there); B queues behind it in nghttp2. */
    CHECK(h2_client_call(&c, &ca, "/only.Svc/Echo", "application/grpc", NULL, req, len, 1) == 0);
    long end = now_ms() + 10000;
    while (echo_server_calls(g) < 2 && now_ms() < end)
        h2_client_pump(&c, 10);
    CHECK(echo_server_calls(g) == 2);
    CHECK(h2_client_call(&c, &cb, "/both.Svc/Echo", "application/grpc", "60S", req, len, 1) == 0);
    while (proxy_stats(&p.px).calls < 3 && now_ms() < end)
        h2_client_pump(&c, 10);
    CHECK(proxy_stats(&p.px).calls == 3);
    h2_client_pump(&c, 100); /* B is attached upstream; let any frame it produces go out */
    echo_server_release(g);  /* GOAWAY(last = A), then A is answered */
    h2_call_t *calls[] = {&ca, &cb};
    CHECK(h2_client_wait(&c, calls, 2, 10000) == 0);
    check_echoed(&ca, req, len);
    if (cb.grpc_status != 0)
        fprintf(stderr, "   queued call: grpc-status %d (%s)\n", cb.grpc_status, cb.grpc_message);
    check_echoed(&cb, req, len);
    CHECK(echo_server_calls(g) == 2 && echo_server_completed(g) == 2);
    CHECK(echo_server_calls(ok) == 1);
    h2_client_close(&c);
    h2_call_free(&w);
    h2_call_free(&ca);
    h2_call_free(&cb);
    pair_stop(&p);
    free(req);
}

/* ---- 3. no retry once an application saw the call ------------------------------------------- */

static void test_reset_after_read_not_retried(void)
{
    pair_t p;
    pair_start(&p, (mesh_proxy_config_t){0}, "x.Svc", NULL);
    echo_server_t *x = p.first, *ok = p.second;
    echo_server_set_mode(x, ECHO_MODE_RESET_INTERNAL, 0);
    size_t len;
    uint8_t *req = grpc_msgs(1, 12, 7, &len);
    h2_call_t call;
    one_call(p.px.port, "/x.Svc/Echo", NULL, req, len, &call, 10000);
    /* docs/transport.md: upstream RST_STREAM INTERNAL_ERROR -> 13, "meshd: upstream ... reset". */
    CHECK(call.grpc_status == 13);
    CHECK(strncmp(call.grpc_message, "meshd: upstream ", 16) == 0);
    CHECK(strstr(call.grpc_message, "reset"));
    CHECK(echo_server_resets(x) == 1);
    CHECK(echo_server_calls(ok) == 0); /* never executed twice */
    mesh_proxy_stats_t st = proxy_stats(&p.px);
    CHECK(st.retries == 0);
    h2_call_free(&call);
    pair_stop(&p);
    free(req);
}

/* ---- 4. keepalive --------------------------------------------------------------------------- */

static const mesh_proxy_config_t keepalive_cfg = {.keepalive_interval_ms = 200,
                                                  .keepalive_timeout_ms = 300};

/* An upstream that stops reading after the request: its connection fails the PING check, the
 * call ends UNAVAILABLE long before its 60 s deadline, and the client connection survives. */
static void test_keepalive_dead_upstream(void)
{
    echo_server_t *mute = echo_server_start();
    CHECK(mute);
    echo_server_set_mode(mute, ECHO_MODE_MUTE, 0);
    /* A plain TCP listener that never accepts: the handshake completes in the kernel, no
     * HTTP/2 byte ever comes back. */
    int hole = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof(sa);
    CHECK(bind(hole, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(hole, 16) == 0);
    CHECK(getsockname(hole, (struct sockaddr *)&sa, &sl) == 0);
    char a1[64], a2[64];
    snprintf(a2, sizeof(a2), "127.0.0.1:%d", ntohs(sa.sin_port));
    mesh_route_builder_t *b = mesh_route_builder_new();
    route_add(b, "mute.Svc", addr_of(mute, a1, sizeof(a1)));
    route_add(b, "hole.Svc", a2);
    proxy_thread_t px;
    proxy_start(&px, keepalive_cfg, mesh_route_builder_finish(b));
    size_t len;
    uint8_t *req = grpc_msgs(1, 10, 8, &len);
    h2_client_t c;
    CHECK(h2_client_connect(&c, px.port) == 0);
    const char *paths[] = {"/mute.Svc/Echo", "/hole.Svc/Echo"};
    for (int i = 0; i < 2; i++) {
        h2_call_t call;
        CHECK(h2_client_call(&c, &call, paths[i], "application/grpc", "60S", req, len, 1) == 0);
        h2_call_t *calls[] = {&call};
        /* 15 s: far beyond 200 + 300 ms of keepalive, far below the 60 s deadline. */
        CHECK(h2_client_wait(&c, calls, 1, 15000) == 0);
        CHECK(call.grpc_status == 14);
        CHECK(strncmp(call.grpc_message, "meshd: ", 7) == 0);
        h2_call_free(&call);
    }
    CHECK(echo_server_dropped(mute) == 1);
    CHECK(!c.dead); /* the client connection answered its PINGs and is still up */
    h2_client_close(&c);
    proxy_stop(&px);
    close(hole);
    echo_server_stop(mute);
    free(req);
}

/* An idle but healthy upstream connection outlives many keepalive periods. */
static void test_keepalive_idle_healthy(void)
{
    echo_server_t *s = echo_server_start();
    CHECK(s);
    proxy_thread_t px;
    proxy_start_one(&px, keepalive_cfg, "k.Svc", s);
    size_t len;
    uint8_t *req = grpc_msgs(1, 6, 9, &len);
    h2_client_t c;
    CHECK(h2_client_connect(&c, px.port) == 0);
    for (int i = 0; i < 2; i++) {
        if (i)
            h2_client_pump(&c, 1000); /* idle: five keepalive periods, PINGs answered */
        h2_call_t call;
        CHECK(h2_client_call(&c, &call, "/k.Svc/Echo", "application/grpc", NULL, req, len, 1) == 0);
        h2_call_t *calls[] = {&call};
        CHECK(h2_client_wait(&c, calls, 1, 10000) == 0);
        check_echoed(&call, req, len);
        h2_call_free(&call);
    }
    CHECK(echo_server_conns(s) == 1); /* the same upstream connection served both */
    mesh_proxy_stats_t st = proxy_stats(&px);
    CHECK(st.upstream_conns == 1 && st.client_conns == 1 && st.calls_failed == 0);
    h2_client_close(&c);
    proxy_stop(&px);
    echo_server_stop(s);
    free(req);
}

/* A healthy upstream busy with a call it never answers, under cfg: neither the keepalive nor
 * the liveness PINGs kill its connection; the call ends by its own deadline tmo
 * (DEADLINE_EXCEEDED, not UNAVAILABLE). */
static void busy_healthy(mesh_proxy_config_t cfg, const char *tmo)
{
    echo_server_t *s = echo_server_start();
    CHECK(s);
    proxy_thread_t px;
    proxy_start_one(&px, cfg, "test.Echo", s);
    h2_call_t call;
    one_call(px.port, "/test.Echo/Hang", tmo, NULL, 0, &call, 10000);
    CHECK(call.grpc_status == 4);
    CHECK(strcmp(call.grpc_message, "meshd: deadline exceeded") == 0);
    CHECK(echo_server_calls(s) == 1 && echo_server_completed(s) == 0);
    CHECK(echo_server_conns(s) == 1);
    CHECK(proxy_stats(&px).upstream_conns == 1);
    h2_call_free(&call);
    proxy_stop(&px);
    echo_server_stop(s);
}

static void test_keepalive_busy_healthy(void)
{
    busy_healthy(keepalive_cfg, "1S");
}

/* ---- 4a. upstream liveness ------------------------------------------------------------------ */

/* Keepalive at its 30 s default; liveness at 200 + 300 ms. */
static const mesh_proxy_config_t liveness_cfg = {.upstream_stall_ms = 200,
                                                 .upstream_stall_timeout_ms = 300};

/* An upstream that stops reading once a call is sent (the peer whose packets are dropped):
 * the call ends UNAVAILABLE at once, not at its 60 s deadline nor at the next keepalive. */
static void test_liveness_silent_upstream(void)
{
    echo_server_t *mute = echo_server_start();
    CHECK(mute);
    echo_server_set_mode(mute, ECHO_MODE_MUTE, 0);
    proxy_thread_t px;
    proxy_start_one(&px, liveness_cfg, "mute.Svc", mute);
    size_t len;
    uint8_t *req = grpc_msgs(1, 10, 8, &len);
    h2_client_t c;
    CHECK(h2_client_connect(&c, px.port) == 0);
    h2_call_t call;
    CHECK(h2_client_call(&c, &call, "/mute.Svc/Echo", "application/grpc", "60S", req, len, 1) == 0);
    h2_call_t *calls[] = {&call};
    CHECK(h2_client_wait(&c, calls, 1, 15000) == 0); /* far below keepalive's 30 + 10 s */
    CHECK(call.grpc_status == 14);
    CHECK(strncmp(call.grpc_message, "meshd: ", 7) == 0);
    h2_call_free(&call);
    CHECK(!c.dead);
    h2_client_close(&c);
    proxy_stop(&px);
    echo_server_stop(mute);
    free(req);
}

/* A healthy upstream that is slow to answer (a call it holds for 2 s) answers the liveness
 * PING: its connection stays and the call ends by its own deadline. */
static void test_liveness_slow_upstream(void)
{
    busy_healthy(liveness_cfg, "2S");
}

/* Blocks the worker's loop for ms (as a stopped process or CPU starvation would). */
static void proxy_pause(proxy_thread_t *p, int ms)
{
    p->pause_ms = ms;
    atomic_store(&p->done, 0);
    atomic_store(&p->command, PX_PAUSE);
    uv_async_send(&p->cmd);
    long end = now_ms() + ms + 10000;
    while (!atomic_load(&p->done) && now_ms() < end)
        usleep(1000);
    CHECK(atomic_load(&p->done));
}

/* The proxy's own loop stops right after its liveness PING went out; the upstream answers
 * 150 ms later, and the ACK waits unread until the loop runs again, past the PING's deadline. The
 * proxy's lateness is not the upstream's fault: the connection stays and the call ends by its
 * own deadline (before, the timer ran first and closed it: UNAVAILABLE). */
static void test_liveness_own_pause(void)
{
    echo_server_t *s = echo_server_start();
    CHECK(s);
    echo_server_set_ping_delay(s, 150);
    proxy_thread_t px;
    proxy_start_one(&px, liveness_cfg, "test.Echo", s);
    h2_client_t c;
    CHECK(h2_client_connect(&c, px.port) == 0);
    h2_call_t call;
    CHECK(h2_client_call(&c, &call, "/test.Echo/Hang", "application/grpc", "4S", NULL, 0, 1) == 0);
    long end = now_ms() + 10000;
    while (echo_server_pings(s) < 1 && now_ms() < end)
        h2_client_pump(&c, 10);
    CHECK_EQ(echo_server_pings(s), 1); /* the upstream has the PING and will answer it */
    proxy_pause(&px, 1000);            /* 3x the PING's 300 ms wait */
    h2_call_t *calls[] = {&call};
    CHECK(h2_client_wait(&c, calls, 1, 15000) == 0);
    CHECK_EQ(call.grpc_status, 4);
    CHECK(strcmp(call.grpc_message, "meshd: deadline exceeded") == 0);
    CHECK_EQ(echo_server_conns(s), 1);
    CHECK_EQ(proxy_stats(&px).upstream_conns, 1);
    h2_call_free(&call);
    h2_client_close(&c);
    proxy_stop(&px);
    echo_server_stop(s);
}

/* ---- 4b. spreading calls over upstream connections ----------------------------------------- */

/* Starts n calls that the server holds (until their 2 s deadline) on client c. */
static void hold_calls(h2_client_t *c, h2_call_t *calls, int n)
{
    for (int i = 0; i < n; i++)
        CHECK(h2_client_call(c, &calls[i], "/test.Echo/Hang", "application/grpc", "2S", NULL, 0,
                             1) == 0);
}

/* An upstream connection carries at most upstream_streams_per_conn calls; more concurrent
 * calls open further connections (gRPC servers parse each connection on one thread). */
static void test_upstream_streams_per_conn(void)
{
    echo_server_t *s = echo_server_start();
    CHECK(s);
    proxy_thread_t px;
    proxy_start_one(&px, (mesh_proxy_config_t){.upstream_streams_per_conn = 10}, "test.Echo", s);
    h2_client_t c;
    CHECK(h2_client_connect(&c, px.port) == 0);
    enum { N = 25 };
    static h2_call_t calls[N];
    hold_calls(&c, calls, 10);
    long deadline = now_ms() + 5000;
    while (echo_server_calls(s) < 10 && now_ms() < deadline)
        h2_client_pump(&c, 20);
    CHECK_EQ(echo_server_calls(s), 10);
    CHECK_EQ(echo_server_conns(s), 1); /* up to the limit: one connection */
    hold_calls(&c, calls + 10, N - 10);
    while (echo_server_calls(s) < N && now_ms() < deadline)
        h2_client_pump(&c, 20);
    CHECK_EQ(echo_server_calls(s), N);
    CHECK_EQ(echo_server_conns(s), 3); /* 10 + 10 + 5 */
    CHECK_EQ(proxy_stats(&px).upstream_conns, 3);
    h2_call_t *ptrs[N];
    for (int i = 0; i < N; i++)
        ptrs[i] = &calls[i];
    CHECK(h2_client_wait(&c, ptrs, N, 10000) == 0);
    for (int i = 0; i < N; i++) {
        CHECK_EQ(calls[i].grpc_status, 4);
        h2_call_free(&calls[i]);
    }
    h2_client_close(&c);
    proxy_stop(&px);
    echo_server_stop(s);
}

/* ---- 5. several workers -----------------------------------------------------------------------
 */

static void test_two_workers_reuseport(void)
{
    echo_server_t *s = echo_server_start();
    CHECK(s);
    char a1[64];
    addr_of(s, a1, sizeof(a1));
    proxy_thread_t px[2];
    for (int i = 0; i < 2; i++) {
        mesh_route_builder_t *b = mesh_route_builder_new();
        route_add(b, "w.Svc", a1);
        mesh_proxy_config_t cfg = {.worker_index = i, .listen_port = i ? px[0].port : 0};
        proxy_start(&px[i], cfg, mesh_route_builder_finish(b));
    }
    CHECK(px[1].port == px[0].port);
    size_t len;
    uint8_t *req = grpc_msgs(1, 8, 10, &len);
    enum { BATCH = 16, MAX_CONNS = 256 };
    int total = 0;
    mesh_proxy_stats_t st[2];
    do {
        /* A batch of connections open at once, one call on each. */
        static h2_client_t cl[BATCH];
        static h2_call_t calls[BATCH];
        for (int i = 0; i < BATCH; i++) {
            CHECK(h2_client_connect(&cl[i], px[0].port) == 0);
            CHECK(h2_client_call(&cl[i], &calls[i], "/w.Svc/Echo", "application/grpc", NULL, req,
                                 len, 1) == 0);
        }
        for (int i = 0; i < BATCH; i++) {
            h2_call_t *one[] = {&calls[i]};
            CHECK(h2_client_wait(&cl[i], one, 1, 10000) == 0);
            check_echoed(&calls[i], req, len);
            h2_call_free(&calls[i]);
            h2_client_close(&cl[i]);
        }
        total += BATCH;
        st[0] = proxy_stats(&px[0]);
        st[1] = proxy_stats(&px[1]);
    } while ((st[0].client_conns == 0 || st[1].client_conns == 0) && total < MAX_CONNS);
    fprintf(stderr, "   %d connections: worker 0 accepted %llu, worker 1 %llu\n", total,
            (unsigned long long)st[0].client_conns, (unsigned long long)st[1].client_conns);
    CHECK(st[0].client_conns + st[1].client_conns == (uint64_t)total);
    CHECK(st[0].calls + st[1].calls == (uint64_t)total);
    CHECK(st[0].client_conns > 0 && st[1].client_conns > 0);
    CHECK(echo_server_completed(s) == total);
    proxy_stop(&px[0]);
    proxy_stop(&px[1]);
    echo_server_stop(s);
    free(req);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (getenv("MESH_TEST_DEBUG"))
        mesh_log_init("test", MESH_LOG_DEBUG, MESH_LOG_FORMAT_TEXT);
    RUN(test_refused_retried);
    RUN(test_refused_first_stream_only);
    RUN(test_refused_retry_streaming_body);
    RUN(test_all_refuse);
    RUN(test_goaway_zero_retried);
    RUN(test_goaway_at_connect_retried);
    RUN(test_goaway_above_last_id);
    RUN(test_goaway_queued_stream_retried);
    RUN(test_reset_after_read_not_retried);
    RUN(test_keepalive_dead_upstream);
    RUN(test_keepalive_idle_healthy);
    RUN(test_keepalive_busy_healthy);
    RUN(test_liveness_silent_upstream);
    RUN(test_liveness_slow_upstream);
    RUN(test_liveness_own_pause);
    RUN(test_upstream_streams_per_conn);
    RUN(test_two_workers_reuseport);
    fprintf(stderr, "ok\n");
    return 0;
}
