/*
 * tests/unit/transport/test_proxy_endpoints.c: the life of the proxy's upstream endpoints
 * (docs/transport.md, "Endpoints and names"), end to end: an nghttp2 client -> a proxy worker
 * on its own loop thread -> in-process echo servers.
 *
 * - An instance that leaves the routing table: its idle pooled connection is closed
 *   gracefully (the server gets a GOAWAY) and its endpoint is removed; the remaining instance
 *   keeps serving; listing the address again brings it back.
 * - An instance that leaves while a call to it is in flight: the call completes normally
 *   (nothing reset) on its connection, which takes no new call; listed again meanwhile, the
 *   endpoint is the same one and new calls open a new connection; the old one closes.
 * - Churn: 1,000 distinct instances (addresses on 127.0.0.0/8, one server on 0.0.0.0), each
 *   in one table and called once: afterwards the worker holds exactly the endpoints and
 *   connections of the last table, and the server has no connection from a churned one.
 * - Names: a name is resolved off the worker's loop and then routed ("localhost:P"); calls to a
 *   name that does not resolve, to a malformed address and to an unresolvable default upstream
 *   get UNAVAILABLE saying so.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "echo_server.h"
#include "h2_client.h"
#include "proxy_thread.h"
#include "tests/check.h"
#include "transport/grpc_frame.h"

/* One request message: the 5-byte gRPC prefix and 11 bytes. */
static uint8_t req_msg[MESH_GRPC_PREFIX_LEN + 11];

/* Starts a call on c (not waited for). */
static void call_start(h2_client_t *c, h2_call_t *call, const char *path)
{
    CHECK(h2_client_call(c, call, path, "application/grpc", NULL, req_msg, sizeof(req_msg), 1) ==
          0);
}

/* One call through a connection of its own; its status, message in msg (may be NULL). */
static int call_once(int port, const char *path, char *msg, size_t msglen)
{
    h2_client_t c;
    h2_call_t call;
    CHECK(h2_client_connect(&c, port) == 0);
    call_start(&c, &call, path);
    h2_call_t *calls[] = {&call};
    CHECK(h2_client_wait(&c, calls, 1, 10000) == 0);
    int st = call.grpc_status;
    if (st == 0)
        CHECK(call.body_len == sizeof(req_msg) && memcmp(call.body, req_msg, sizeof(req_msg)) == 0);
    if (msg)
        snprintf(msg, msglen, "%s", call.grpc_message);
    h2_call_free(&call);
    h2_client_close(&c);
    return st;
}

static mesh_routes_t *routes_of(const char *svc, const char *const *addrs, size_t n,
                                const char *svc2, const char *addr2)
{
    mesh_route_builder_t *b = mesh_route_builder_new();
    for (size_t i = 0; i < n; i++)
        CHECK(mesh_route_builder_add(b, svc, addrs[i], NULL, 0, MESH_ROUTE_STATIC, "", "", 1) == 0);
    if (svc2)
        CHECK(mesh_route_builder_add(b, svc2, addr2, NULL, 0, MESH_ROUTE_STATIC, "", "", 1) == 0);
    return mesh_route_builder_finish(b);
}

static const char *addr_of(echo_server_t *s, char *buf, size_t cap)
{
    snprintf(buf, cap, "127.0.0.1:%d", echo_server_port(s));
    return buf;
}

/* Waits (deadline 10 s) until the worker holds n_eps endpoints and n_conns upstream
 * connections and server s has s_conns connections open. */
static void wait_held(proxy_thread_t *px, uint64_t n_eps, uint64_t n_conns, echo_server_t *s,
                      int s_conns)
{
    long end = proxy_thread_now_ms() + 10000;
    mesh_proxy_stats_t st;
    for (;;) {
        st = proxy_thread_stats(px);
        if (st.endpoints == n_eps && st.upstream_conns_open == n_conns &&
            echo_server_open_conns(s) == s_conns)
            return;
        if (proxy_thread_now_ms() > end)
            break;
        usleep(5000);
    }
    fprintf(stderr,
            "endpoints %llu (want %llu), upstream conns %llu (want %llu), server conns %d "
            "(want %d)\n",
            (unsigned long long)st.endpoints, (unsigned long long)n_eps,
            (unsigned long long)st.upstream_conns_open, (unsigned long long)n_conns,
            echo_server_open_conns(s), s_conns);
    CHECK(!"the worker's endpoints and connections reached the expected counts");
}

static void test_removed_idle(void)
{
    echo_server_t *a = echo_server_start(), *b = echo_server_start();
    CHECK(a && b);
    char aa[64], ba[64];
    const char *both[] = {addr_of(a, aa, sizeof(aa)), addr_of(b, ba, sizeof(ba))};
    proxy_thread_t px;
    proxy_thread_start(&px, (mesh_proxy_config_t){.connect_timeout_ms = 2000},
                       routes_of("t.Svc", both, 2, NULL, NULL));
    for (int i = 0; i < 4; i++)
        CHECK_EQ(call_once(px.port, "/t.Svc/Echo", NULL, 0), 0);
    CHECK_EQ(echo_server_calls(a), 2);
    CHECK_EQ(echo_server_calls(b), 2);
    mesh_proxy_stats_t st = proxy_thread_stats(&px);
    CHECK_EQ(st.endpoints, 2);
    CHECK_EQ(st.upstream_conns_open, 2);
    CHECK_EQ(echo_server_open_conns(a), 1);

    /* a leaves the table: its idle connection closes with a GOAWAY, its endpoint goes. */
    proxy_thread_set_routes(&px, routes_of("t.Svc", both + 1, 1, NULL, NULL));
    wait_held(&px, 1, 1, a, 0);
    CHECK(echo_server_goaways(a) >= 1);
    CHECK_EQ(echo_server_open_conns(b), 1);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(call_once(px.port, "/t.Svc/Echo", NULL, 0), 0);
    CHECK_EQ(echo_server_calls(a), 2);
    CHECK_EQ(echo_server_calls(b), 6);

    /* Listed again: a new endpoint, calls reach a again. */
    proxy_thread_set_routes(&px, routes_of("t.Svc", both, 2, NULL, NULL));
    for (int i = 0; i < 4; i++)
        CHECK_EQ(call_once(px.port, "/t.Svc/Echo", NULL, 0), 0);
    CHECK_EQ(echo_server_calls(a), 4);
    CHECK_EQ(proxy_thread_stats(&px).endpoints, 2);
    proxy_thread_stop(&px);
    echo_server_stop(a);
    echo_server_stop(b);
    printf("ok: removed instance: idle connection closed with GOAWAY, endpoint removed\n");
}

static void test_removed_in_flight(void)
{
    echo_server_t *a = echo_server_start(), *b = echo_server_start();
    CHECK(a && b);
    echo_server_set_mode(a, ECHO_MODE_HOLD, 0);
    char aa[64], ba[64];
    const char *one_a[] = {addr_of(a, aa, sizeof(aa))}, *one_b[] = {addr_of(b, ba, sizeof(ba))};
    proxy_thread_t px;
    proxy_thread_start(&px, (mesh_proxy_config_t){.connect_timeout_ms = 2000},
                       routes_of("t.Svc", one_a, 1, NULL, NULL));
    h2_client_t c;
    h2_call_t held;
    CHECK(h2_client_connect(&c, px.port) == 0);
    call_start(&c, &held, "/t.Svc/Echo");
    long end = proxy_thread_now_ms() + 10000;
    while (echo_server_calls(a) < 1 && proxy_thread_now_ms() < end)
        h2_client_pump(&c, 10);
    CHECK_EQ(echo_server_calls(a), 1);

    /* a leaves while its call is in flight: new calls go to b, a's connection stays. */
    proxy_thread_set_routes(&px, routes_of("t.Svc", one_b, 1, NULL, NULL));
    CHECK_EQ(call_once(px.port, "/t.Svc/Echo", NULL, 0), 0);
    CHECK_EQ(echo_server_calls(b), 1);
    mesh_proxy_stats_t st = proxy_thread_stats(&px);
    CHECK_EQ(st.endpoints, 2); /* a's endpoint is held by its call */
    CHECK_EQ(st.upstream_conns_open, 2);
    CHECK_EQ(echo_server_open_conns(a), 1);

    /* Listed again (by another service) while its call is in flight: the same endpoint. */
    proxy_thread_set_routes(&px, routes_of("t.Svc", one_b, 1, "t.Other", one_a[0]));
    CHECK_EQ(proxy_thread_stats(&px).endpoints, 2);

    /* The call completes normally on its retired connection. */
    echo_server_release(a);
    h2_call_t *calls[] = {&held};
    CHECK(h2_client_wait(&c, calls, 1, 10000) == 0);
    CHECK_EQ(held.grpc_status, 0);
    CHECK(held.body_len == sizeof(req_msg));
    CHECK_EQ(held.rst_error, 0);
    h2_call_free(&held);
    h2_client_close(&c);
    /* New calls to a use a new connection; the retired one closes. */
    echo_server_set_mode(a, ECHO_MODE_NORMAL, 0);
    CHECK_EQ(call_once(px.port, "/t.Other/Echo", NULL, 0), 0);
    CHECK_EQ(echo_server_conns(a), 2);
    wait_held(&px, 2, 2, a, 1);

    /* Gone from the table for good: its connection and endpoint go. */
    proxy_thread_set_routes(&px, routes_of("t.Svc", one_b, 1, NULL, NULL));
    wait_held(&px, 1, 1, a, 0);
    CHECK_EQ(echo_server_cancels(a), 0); /* nothing in flight was reset */
    CHECK(echo_server_goaways(a) >= 2);
    proxy_thread_stop(&px);
    echo_server_stop(a);
    echo_server_stop(b);
    printf("ok: removed instance with a call in flight: the call completes, then it goes\n");
}

static void test_churn(void)
{
    enum { N = 1000 };
    echo_server_t *any = echo_server_start_any(), *stable = echo_server_start();
    CHECK(any && stable);
    char sa[64];
    addr_of(stable, sa, sizeof(sa));
    proxy_thread_t px;
    proxy_thread_start(&px, (mesh_proxy_config_t){.connect_timeout_ms = 2000},
                       routes_of("t.Stable", (const char *[]){sa}, 1, NULL, NULL));
    CHECK_EQ(call_once(px.port, "/t.Stable/Echo", NULL, 0), 0);
    h2_client_t c;
    CHECK(h2_client_connect(&c, px.port) == 0);
    for (int i = 0; i < N; i++) {
        char addr[64];
        snprintf(addr, sizeof(addr), "127.1.%d.%d:%d", i / 250, i % 250 + 1, echo_server_port(any));
        const char *one[] = {addr};
        proxy_thread_set_routes(&px, routes_of("t.Churn", one, 1, "t.Stable", sa));
        h2_call_t call;
        call_start(&c, &call, "/t.Churn/Echo");
        h2_call_t *calls[] = {&call};
        CHECK(h2_client_wait(&c, calls, 1, 10000) == 0);
        if (call.grpc_status != 0)
            fprintf(stderr, "call %d to %s: %d %s\n", i, addr, call.grpc_status, call.grpc_message);
        CHECK_EQ(call.grpc_status, 0);
        h2_call_free(&call);
    }
    h2_client_close(&c);
    CHECK_EQ(echo_server_calls(any), N);
    CHECK(proxy_thread_stats(&px).upstream_conns >= N + 1); /* a connection per instance */
    /* Only the stable instance is left: one endpoint, one connection, none to the churned. */
    proxy_thread_set_routes(&px, routes_of("t.Stable", (const char *[]){sa}, 1, NULL, NULL));
    wait_held(&px, 1, 1, any, 0);
    CHECK_EQ(echo_server_open_conns(stable), 1);
    CHECK_EQ(echo_server_cancels(any), 0);
    proxy_thread_stop(&px);
    echo_server_stop(any);
    echo_server_stop(stable);
    printf("ok: %d churned instances called and removed: nothing left behind\n", N);
}

/* Polls a call to path until its message contains want (deadline 20 s); every answer on the
 * way must be UNAVAILABLE. Returns the last message's status. */
static void wait_message(int port, const char *path, const char *want)
{
    char msg[256] = "";
    long end = proxy_thread_now_ms() + 20000;
    while (proxy_thread_now_ms() < end) {
        int st = call_once(port, path, msg, sizeof(msg));
        if (st != 14)
            fprintf(stderr, "%s: status %d %s\n", path, st, msg);
        CHECK_EQ(st, 14);
        if (strstr(msg, want))
            return;
        usleep(20000);
    }
    fprintf(stderr, "%s: last message '%s', waited for '%s'\n", path, msg, want);
    CHECK(!"the expected UNAVAILABLE message");
}

/* Whether "localhost" resolves to 127.0.0.1 first here (then the name test can use it). */
static int localhost_is_v4(void)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo("localhost", "1", &hints, &res) != 0 || !res)
        return 0;
    int ok = res->ai_family == AF_INET &&
             ((struct sockaddr_in *)res->ai_addr)->sin_addr.s_addr == htonl(INADDR_LOOPBACK);
    freeaddrinfo(res);
    return ok;
}

static void test_names(void)
{
    echo_server_t *a = echo_server_start();
    CHECK(a);
    char local[64], bad[96];
    snprintf(local, sizeof(local), "localhost:%d", echo_server_port(a));
    snprintf(bad, sizeof(bad), "meshd-test-no-such-host.invalid:%d", echo_server_port(a));
    mesh_route_builder_t *b = mesh_route_builder_new();
    CHECK(mesh_route_builder_add(b, "t.Local", local, NULL, 0, MESH_ROUTE_STATIC, "", "", 1) == 0);
    CHECK(mesh_route_builder_add(b, "t.Bad", bad, NULL, 0, MESH_ROUTE_STATIC, "", "", 1) == 0);
    CHECK(mesh_route_builder_add(b, "t.Malformed", "justaname", NULL, 0, MESH_ROUTE_STATIC, "", "",
                                 1) == 0);
    proxy_thread_t px;
    proxy_thread_start(
        &px,
        (mesh_proxy_config_t){.connect_timeout_ms = 2000,
                              .dns_retry_initial_ms = 100,
                              .default_upstream = "meshd-test-no-such-host.invalid:1"},
        mesh_route_builder_finish(b));
    if (localhost_is_v4()) {
        char msg[256];
        long end = proxy_thread_now_ms() + 20000;
        int st;
        while ((st = call_once(px.port, "/t.Local/Echo", msg, sizeof(msg))) != 0 &&
               proxy_thread_now_ms() < end) {
            /* Until the lookup completes the call is told the name is being resolved. */
            CHECK_EQ(st, 14);
            CHECK(strstr(msg, "meshd: no live instance of t.Local: upstream localhost:") == msg &&
                  strstr(msg, " is being resolved"));
            usleep(10000);
        }
        CHECK_EQ(st, 0);
        CHECK_EQ(echo_server_calls(a), 1);
    } else {
        printf("note: localhost does not resolve to 127.0.0.1 first here; name routing skipped\n");
    }
    char want[160];
    snprintf(want, sizeof(want),
             "meshd: no live instance of t.Bad: cannot resolve upstream %s: ", bad);
    wait_message(px.port, "/t.Bad/Echo", want);
    wait_message(px.port, "/t.Malformed/Echo",
                 "meshd: no live instance of t.Malformed: upstream justaname is not HOST:PORT");
    /* No route: the default upstream, whose name does not resolve either. */
    wait_message(px.port, "/t.Other/Echo",
                 "meshd: cannot resolve upstream meshd-test-no-such-host.invalid:1: ");
    proxy_thread_stop(&px);
    echo_server_stop(a);
    printf("ok: names resolved off the loop; unresolvable and malformed ones say so\n");
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    mesh_log_init("test", getenv("MESH_TEST_DEBUG") ? MESH_LOG_DEBUG : MESH_LOG_WARN,
                  MESH_LOG_FORMAT_TEXT);
    mesh_grpc_frame_prefix(req_msg, 0, 11);
    memcpy(req_msg + MESH_GRPC_PREFIX_LEN, "hello world", 11);
    test_removed_idle();
    test_removed_in_flight();
    test_churn();
    test_names();
    printf("all passed\n");
    return 0;
}
