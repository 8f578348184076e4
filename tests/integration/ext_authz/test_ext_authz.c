/*
 * tests/integration/ext_authz/test_ext_authz.c: policy/ext_authz.h driven on a uv loop against
 * a real authorization service (tests/peers/authz_server.py), over HTTP and over Envoy's gRPC
 * Authorization/Check: allow with identity, deny (401 / 403, UNAUTHENTICATED /
 * PERMISSION_DENIED), what the service is sent, cookie merging, cache hits (the server counts
 * the checks it got), per-path keys, TTL expiry, timeout, fail-closed vs fail-open, server
 * error, server down, cancel, free with checks pending, and configuration errors.
 *
 * usage: test_ext_authz AUTHZ_SERVER_PY PROTO_DIR
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authz_rig.h"
#include "policy/ext_authz.h"
#include "tests/check.h"
#include "transport/grpc_status.h"

static authz_rig_t rig;
static uv_loop_t loop;

typedef struct {
    int done, calls;
    pol_authz_result_t res;
    char identity[128];
    char message[512];
} verdict_t;

static void on_verdict(void *ctx, const pol_authz_result_t *r)
{
    verdict_t *v = ctx;
    v->calls++;
    v->done = 1;
    v->res = *r;
    snprintf(v->identity, sizeof(v->identity), "%s", r->identity ? r->identity : "");
    snprintf(v->message, sizeof(v->message), "%s", r->message ? r->message : "");
    v->res.identity = r->identity ? v->identity : NULL;
    v->res.message = v->message;
}

static const char *mode_name(pol_authz_mode_t m)
{
    return m == POL_AUTHZ_HTTP ? "http" : "grpc";
}

static const char *count_key(pol_authz_mode_t m)
{
    return m == POL_AUTHZ_HTTP ? "checks" : "grpc_checks";
}

/* A configuration against the test server (port 0: the server's) in mode m. */
static pol_authz_config_t config(pol_authz_mode_t m, int port, char *target, size_t cap)
{
    if (m == POL_AUTHZ_HTTP)
        snprintf(target, cap, "http://127.0.0.1:%d/check", port ? port : rig.http);
    else
        snprintf(target, cap, "127.0.0.1:%d", port ? port : rig.grpc);
    static const char *extra[] = {"X-Api-Key"};
    pol_authz_config_t c = {.mode = m,
                            .target = target,
                            .identity_header = "x-user-id",
                            .headers = extra,
                            .n_headers = 1,
                            .timeout_ms = 5000};
    return c;
}

static pol_authz_t *make(const pol_authz_config_t *c)
{
    char err[256];
    pol_authz_t *a = pol_authz_new(&loop, c, err, sizeof(err));
    if (!a)
        fprintf(stderr, "pol_authz_new: %s\n", err);
    CHECK(a);
    return a;
}

/* Checks one call with an authorization value (NULL: none) on path; waits for the verdict. */
static pol_authz_status_t check(pol_authz_t *a, const char *auth, const char *path, verdict_t *v)
{
    pol_authz_field_t f[] = {
        {"content-type", 12, "application/grpc", 16},
        {"authorization", 13, auth ? auth : "", auth ? strlen(auth) : 0},
        {"x-api-key", 9, "k-123", 5},
    };
    pol_authz_req_info_t info = {.path = path,
                                 .authority = "svc.local",
                                 .peer = "10.1.2.3:4567",
                                 .request_id = "req-42",
                                 .fields = auth ? f : f + 2,
                                 .n_fields = auth ? 3 : 1};
    memset(v, 0, sizeof(*v));
    pol_authz_call_t *call = NULL;
    pol_authz_result_t now;
    pol_authz_status_t st = pol_authz_check(a, &info, &now, on_verdict, v, &call);
    if (st == POL_AUTHZ_DONE) {
        CHECK(!call);
        on_verdict(v, &now);
        v->calls = 0; /* not a callback */
        return st;
    }
    CHECK(call);
    CHECK(!v->done);
    CHECK(authz_rig_run_until(&loop, &v->done, 20000) == 0);
    CHECK_EQ(v->calls, 1);
    return st;
}

/* The headers the server saw in its last check, as a JSON object (a new reference). */
static json_t *last_check(void)
{
    char *body = authz_rig_get(rig.http, "/_stats");
    CHECK(body);
    json_t *doc = json_loads(body, 0, NULL);
    free(body);
    CHECK(doc);
    json_t *last = json_incref(json_object_get(doc, "last"));
    json_decref(doc);
    return last;
}

static void test_allow_identity(pol_authz_mode_t m)
{
    char t[128];
    pol_authz_config_t c = config(m, 0, t, sizeof(t));
    pol_authz_t *a = make(&c);
    verdict_t v;
    CHECK_EQ(check(a, "Bearer allow:alice", "/pkg.Svc/Get", &v), POL_AUTHZ_PENDING);
    CHECK_EQ(v.res.verdict, POL_AUTHZ_ALLOW);
    CHECK_EQ(v.res.grpc_status, 0);
    CHECK_STR(v.res.identity, "alice");
    CHECK(!v.res.cached && !v.res.service_failed);
    /* what the service was sent */
    json_t *last = last_check();
    json_t *h = json_object_get(last, "headers");
    CHECK_STR(json_string_value(json_object_get(h, "authorization")), "Bearer allow:alice");
    CHECK_STR(json_string_value(json_object_get(h, "x-api-key")), "k-123");
    CHECK(!json_object_get(h, "content-type") ||
          m == POL_AUTHZ_HTTP); /* not a forwarded field (gRPC: only forwarded ones) */
    if (m == POL_AUTHZ_HTTP) {
        CHECK_STR(json_string_value(json_object_get(h, "x-meshd-path")), "/pkg.Svc/Get");
        CHECK_STR(json_string_value(json_object_get(h, "x-meshd-peer")), "10.1.2.3:4567");
        CHECK_STR(json_string_value(json_object_get(h, "x-request-id")), "req-42");
        CHECK_STR(json_string_value(json_object_get(last, "method")), "GET");
    } else {
        CHECK_STR(json_string_value(json_object_get(last, "path")), "/pkg.Svc/Get");
        CHECK_STR(json_string_value(json_object_get(last, "peer")), "10.1.2.3:4567");
        CHECK_STR(json_string_value(json_object_get(last, "id")), "req-42");
        CHECK_STR(json_string_value(json_object_get(last, "host")), "svc.local");
        CHECK_STR(json_string_value(json_object_get(last, "method")), "POST");
    }
    json_decref(last);
    pol_authz_free(a);
}

static void test_cookies(pol_authz_mode_t m)
{
    char t[128];
    pol_authz_config_t c = config(m, 0, t, sizeof(t));
    pol_authz_t *a = make(&c);
    /* HTTP/2 splits cookies into several fields: they are joined with "; " */
    pol_authz_field_t f[] = {{"cookie", 6, "theme=dark", 10}, {"Cookie", 6, "session=carol", 13}};
    pol_authz_req_info_t info = {.path = "/pkg.Svc/Get", .fields = f, .n_fields = 2};
    verdict_t v = {0};
    pol_authz_call_t *call;
    pol_authz_result_t now;
    CHECK_EQ(pol_authz_check(a, &info, &now, on_verdict, &v, &call), POL_AUTHZ_PENDING);
    CHECK(authz_rig_run_until(&loop, &v.done, 20000) == 0);
    CHECK_EQ(v.res.verdict, POL_AUTHZ_ALLOW);
    CHECK_STR(v.res.identity, "carol");
    json_t *last = last_check();
    CHECK_STR(json_string_value(json_object_get(json_object_get(last, "headers"), "cookie")),
              "theme=dark; session=carol");
    json_decref(last);
    pol_authz_free(a);
}

static void test_deny(pol_authz_mode_t m)
{
    char t[128];
    pol_authz_config_t c = config(m, 0, t, sizeof(t));
    pol_authz_t *a = make(&c);
    verdict_t v;
    long before = authz_rig_stat(&rig, count_key(m));
    check(a, "Bearer deny", "/pkg.Svc/Get", &v);
    CHECK_EQ(v.res.verdict, POL_AUTHZ_DENY);
    CHECK_EQ(v.res.grpc_status, MESH_GRPC_PERMISSION_DENIED);
    CHECK_EQ(v.res.http_status, 403);
    CHECK_CONTAINS(v.res.message, "meshd: ext_authz: denied");
    CHECK_CONTAINS(v.res.message, "token revoked");
    CHECK(!v.res.identity && !v.res.service_failed);
    /* denials are not cached: the service is asked again */
    CHECK_EQ(check(a, "Bearer deny", "/pkg.Svc/Get", &v), POL_AUTHZ_PENDING);
    CHECK_EQ(v.res.verdict, POL_AUTHZ_DENY);
    CHECK_EQ(authz_rig_stat(&rig, count_key(m)), before + 2);
    /* no credentials at all: UNAUTHENTICATED */
    check(a, NULL, "/pkg.Svc/Get", &v);
    CHECK_EQ(v.res.verdict, POL_AUTHZ_DENY);
    CHECK_EQ(v.res.grpc_status, MESH_GRPC_UNAUTHENTICATED);
    CHECK_EQ(v.res.http_status, 401);
    CHECK_CONTAINS(v.res.message, "no credentials");
    if (m == POL_AUTHZ_HTTP)
        CHECK_CONTAINS(v.res.message, "401 Unauthorized");
    pol_authz_free(a);
}

static void test_cache(pol_authz_mode_t m)
{
    char t[128];
    pol_authz_config_t c = config(m, 0, t, sizeof(t));
    pol_authz_t *a = make(&c);
    verdict_t v;
    long before = authz_rig_stat(&rig, count_key(m));
    CHECK_EQ(check(a, "Bearer allow:dave", "/pkg.Svc/Get", &v), POL_AUTHZ_PENDING);
    CHECK_STR(v.res.identity, "dave");
    for (int i = 0; i < 5; i++) {
        CHECK_EQ(check(a, "Bearer allow:dave", "/pkg.Svc/Get", &v), POL_AUTHZ_DONE);
        CHECK_EQ(v.res.verdict, POL_AUTHZ_ALLOW);
        CHECK(v.res.cached);
        CHECK_STR(v.res.identity, "dave");
    }
    CHECK_EQ(authz_rig_stat(&rig, count_key(m)), before + 1);
    /* other credentials, or another method: asked */
    CHECK_EQ(check(a, "Bearer allow:erin", "/pkg.Svc/Get", &v), POL_AUTHZ_PENDING);
    CHECK_STR(v.res.identity, "erin");
    CHECK_EQ(check(a, "Bearer allow:dave", "/pkg.Svc/Put", &v), POL_AUTHZ_PENDING);
    CHECK_EQ(authz_rig_stat(&rig, count_key(m)), before + 3);
    pol_authz_stats_t st;
    pol_authz_stats(a, &st);
    CHECK_EQ(st.cache_hits, 5);
    CHECK_EQ(st.asked, 3);
    CHECK_EQ(st.cache_size, 3);
    pol_authz_free(a);

    /* cache_any_path: one verdict for every method; cache_off: always asked */
    c.cache_any_path = 1;
    a = make(&c);
    CHECK_EQ(check(a, "Bearer allow:dave", "/pkg.Svc/Get", &v), POL_AUTHZ_PENDING);
    CHECK_EQ(check(a, "Bearer allow:dave", "/pkg.Svc/Put", &v), POL_AUTHZ_DONE);
    pol_authz_free(a);
    c.cache_any_path = 0;
    c.cache_off = 1;
    a = make(&c);
    CHECK_EQ(check(a, "Bearer allow:dave", "/pkg.Svc/Get", &v), POL_AUTHZ_PENDING);
    CHECK_EQ(check(a, "Bearer allow:dave", "/pkg.Svc/Get", &v), POL_AUTHZ_PENDING);
    pol_authz_free(a);
}

static void test_cache_ttl_and_bound(pol_authz_mode_t m)
{
    char t[128];
    pol_authz_config_t c = config(m, 0, t, sizeof(t));
    c.cache_ttl_ms = 200;
    c.cache_entries = 2;
    pol_authz_t *a = make(&c);
    verdict_t v;
    CHECK_EQ(check(a, "Bearer allow:fay", "/pkg.Svc/Get", &v), POL_AUTHZ_PENDING);
    CHECK_EQ(check(a, "Bearer allow:fay", "/pkg.Svc/Get", &v), POL_AUTHZ_DONE);
    /* wait well past the TTL */
    int never = 0;
    authz_rig_run_until(&loop, &never, 600);
    CHECK_EQ(check(a, "Bearer allow:fay", "/pkg.Svc/Get", &v), POL_AUTHZ_PENDING);
    CHECK_STR(v.res.identity, "fay");
    CHECK_EQ(check(a, "Bearer allow:fay", "/pkg.Svc/Get", &v), POL_AUTHZ_DONE);
    /* two entries at most: a third credential replaces the oldest (fay) */
    CHECK_EQ(check(a, "Bearer allow:gus", "/pkg.Svc/Get", &v), POL_AUTHZ_PENDING);
    CHECK_EQ(check(a, "Bearer allow:hal", "/pkg.Svc/Get", &v), POL_AUTHZ_PENDING);
    pol_authz_stats_t st;
    pol_authz_stats(a, &st);
    CHECK_EQ(st.cache_size, 2);
    CHECK_EQ(check(a, "Bearer allow:hal", "/pkg.Svc/Get", &v), POL_AUTHZ_DONE);
    CHECK_EQ(check(a, "Bearer allow:gus", "/pkg.Svc/Get", &v), POL_AUTHZ_DONE);
    CHECK_EQ(check(a, "Bearer allow:fay", "/pkg.Svc/Get", &v), POL_AUTHZ_PENDING);
    pol_authz_free(a);
}

static void test_timeout(pol_authz_mode_t m)
{
    char t[128];
    pol_authz_config_t c = config(m, 0, t, sizeof(t));
    c.timeout_ms = 300;
    pol_authz_t *a = make(&c);
    verdict_t v;
    check(a, "Bearer slow", "/pkg.Svc/Get", &v); /* the server sleeps 3 s */
    CHECK_EQ(v.res.verdict, POL_AUTHZ_DENY);     /* fail-closed is the default */
    CHECK_EQ(v.res.grpc_status, MESH_GRPC_UNAVAILABLE);
    CHECK_EQ(v.res.http_status, 503);
    CHECK(v.res.service_failed);
    CHECK_CONTAINS(v.res.message, "meshd: ext_authz: authorization service failed");
    pol_authz_free(a);

    c.fail_open = 1;
    a = make(&c);
    check(a, "Bearer slow", "/pkg.Svc/Get", &v);
    CHECK_EQ(v.res.verdict, POL_AUTHZ_ALLOW);
    CHECK(v.res.service_failed);
    CHECK(!v.res.identity);
    CHECK_CONTAINS(v.res.message, "authorization service failed");
    /* an ALLOW by failure is not cached */
    CHECK_EQ(check(a, "Bearer slow", "/pkg.Svc/Get", &v), POL_AUTHZ_PENDING);
    pol_authz_free(a);
}

static void test_server_error(pol_authz_mode_t m)
{
    char t[128];
    pol_authz_config_t c = config(m, 0, t, sizeof(t));
    c.error_status = MESH_GRPC_PERMISSION_DENIED; /* Envoy's choice */
    pol_authz_t *a = make(&c);
    verdict_t v;
    check(a, "Bearer error", "/pkg.Svc/Get", &v);
    CHECK_EQ(v.res.verdict, POL_AUTHZ_DENY);
    CHECK_EQ(v.res.grpc_status, MESH_GRPC_PERMISSION_DENIED);
    CHECK_EQ(v.res.http_status, 403);
    CHECK(v.res.service_failed);
    CHECK_CONTAINS(v.res.message, m == POL_AUTHZ_HTTP ? "answered 500" : "INTERNAL");
    pol_authz_free(a);
}

static void test_bad_identity(pol_authz_mode_t m)
{
    char t[128];
    pol_authz_config_t c = config(m, 0, t, sizeof(t));
    pol_authz_t *a = make(&c);
    verdict_t v;
    check(a, "Bearer evil-identity", "/pkg.Svc/Get", &v);
    CHECK_EQ(v.res.verdict, POL_AUTHZ_DENY); /* a service failure, closed */
    CHECK(v.res.service_failed);
    CHECK_CONTAINS(v.res.message, "the identity in x-user-id has control characters");
    /* not cached either */
    CHECK_EQ(check(a, "Bearer evil-identity", "/pkg.Svc/Get", &v), POL_AUTHZ_PENDING);
    pol_authz_free(a);
}

static void test_ipv6_peer(void)
{
    char t[128];
    pol_authz_config_t c = config(POL_AUTHZ_GRPC, 0, t, sizeof(t));
    pol_authz_t *a = make(&c);
    pol_authz_field_t f[] = {{"authorization", 13, "Bearer allow:v6", 15}};
    pol_authz_req_info_t info = {
        .path = "/pkg.Svc/Get", .peer = "[2001:db8::7]:443", .fields = f, .n_fields = 1};
    verdict_t v = {0};
    pol_authz_call_t *call;
    pol_authz_result_t now;
    CHECK_EQ(pol_authz_check(a, &info, &now, on_verdict, &v, &call), POL_AUTHZ_PENDING);
    CHECK(authz_rig_run_until(&loop, &v.done, 20000) == 0);
    CHECK_STR(v.res.identity, "v6");
    json_t *last = last_check();
    CHECK_STR(json_string_value(json_object_get(last, "peer")), "2001:db8::7:443");
    json_decref(last);
    pol_authz_free(a);
}

static void test_server_down(pol_authz_mode_t m)
{
    char t[128];
    pol_authz_config_t c = config(m, authz_rig_closed_port(), t, sizeof(t));
    pol_authz_t *a = make(&c);
    verdict_t v;
    check(a, "Bearer allow:ivy", "/pkg.Svc/Get", &v);
    CHECK_EQ(v.res.verdict, POL_AUTHZ_DENY);
    CHECK_EQ(v.res.grpc_status, MESH_GRPC_UNAVAILABLE);
    CHECK(v.res.service_failed);
    pol_authz_free(a);
    c.fail_open = 1;
    a = make(&c);
    check(a, "Bearer allow:ivy", "/pkg.Svc/Get", &v);
    CHECK_EQ(v.res.verdict, POL_AUTHZ_ALLOW);
    CHECK(v.res.service_failed && !v.res.identity);
    pol_authz_free(a);
}

static void test_hang_http(void)
{
    char t[128];
    pol_authz_config_t c = config(POL_AUTHZ_HTTP, rig.hang, t, sizeof(t));
    c.timeout_ms = 300;
    pol_authz_t *a = make(&c);
    verdict_t v;
    check(a, "Bearer allow:joe", "/pkg.Svc/Get", &v);
    CHECK_EQ(v.res.verdict, POL_AUTHZ_DENY);
    CHECK(v.res.service_failed);
    CHECK_CONTAINS(v.res.message, "timeout");
    pol_authz_free(a);
}

static void test_cancel_and_free(pol_authz_mode_t m)
{
    char t[128];
    pol_authz_config_t c = config(m, 0, t, sizeof(t));
    pol_authz_t *a = make(&c);
    pol_authz_field_t f[] = {{"authorization", 13, "Bearer slow", 11}};
    pol_authz_req_info_t info = {.path = "/pkg.Svc/Get", .fields = f, .n_fields = 1};
    verdict_t v1 = {0}, v2 = {0}, v3 = {0};
    pol_authz_call_t *c1, *c2;
    pol_authz_result_t now;
    CHECK_EQ(pol_authz_check(a, &info, &now, on_verdict, &v1, &c1), POL_AUTHZ_PENDING);
    CHECK_EQ(pol_authz_check(a, &info, &now, on_verdict, &v2, &c2), POL_AUTHZ_PENDING);
    pol_authz_cancel(c1);
    /* a quick check still works beside them */
    check(a, "Bearer allow:kim", "/pkg.Svc/Get", &v3);
    CHECK_STR(v3.res.identity, "kim");
    /* free with c2 pending: no callback, ever */
    pol_authz_free(a);
    int never = 0;
    authz_rig_run_until(&loop, &never, 500);
    CHECK_EQ(v1.calls, 0);
    CHECK_EQ(v2.calls, 0);
}

static void test_bad_credentials(void)
{
    char t[128];
    pol_authz_config_t c = config(POL_AUTHZ_HTTP, 0, t, sizeof(t));
    pol_authz_t *a = make(&c);
    pol_authz_field_t f[] = {{"authorization", 13, "Bearer a\r\nX-Evil: 1", 19}};
    pol_authz_req_info_t info = {.path = "/pkg.Svc/Get", .fields = f, .n_fields = 1};
    pol_authz_call_t *call;
    pol_authz_result_t now;
    long before = authz_rig_stat(&rig, "checks");
    CHECK_EQ(pol_authz_check(a, &info, &now, NULL, NULL, &call), POL_AUTHZ_DONE);
    CHECK_EQ(now.verdict, POL_AUTHZ_DENY);
    CHECK_EQ(now.grpc_status, MESH_GRPC_PERMISSION_DENIED);
    CHECK_CONTAINS(now.message, "line break");
    CHECK_EQ(authz_rig_stat(&rig, "checks"), before);
    pol_authz_free(a);

    /* a path that cannot go into a header is denied, even when failing open */
    c.fail_open = 1;
    a = make(&c);
    verdict_t v;
    check(a, "Bearer allow:lea", "/pkg.Svc/Get\r\nX-Evil: 1", &v);
    CHECK_EQ(v.res.verdict, POL_AUTHZ_DENY);
    CHECK_EQ(v.res.grpc_status, MESH_GRPC_PERMISSION_DENIED);
    CHECK(!v.res.service_failed);
    CHECK_CONTAINS(v.res.message, "x-meshd-path");
    CHECK_EQ(authz_rig_stat(&rig, "checks"), before);
    pol_authz_free(a);
}

static void test_config_errors(void)
{
    char err[256];
    pol_authz_config_t c = {.mode = POL_AUTHZ_HTTP};
    CHECK(!pol_authz_new(&loop, &c, err, sizeof(err)));
    CHECK_CONTAINS(err, "target");
    c.target = "127.0.0.1:1234";
    CHECK(!pol_authz_new(&loop, &c, err, sizeof(err)));
    CHECK_CONTAINS(err, "not an http:// or https:// URL");
    c.mode = POL_AUTHZ_GRPC;
    c.target = "http://127.0.0.1:1234/";
    CHECK(!pol_authz_new(&loop, &c, err, sizeof(err)));
    CHECK_CONTAINS(err, "not host:port");
    c.target = "127.0.0.1:1234";
    const char *bad[] = {"x-meshd-identity"};
    c.headers = bad;
    c.n_headers = 1;
    CHECK(!pol_authz_new(&loop, &c, err, sizeof(err)));
    CHECK_CONTAINS(err, "x-meshd-identity cannot be forwarded");
    const char *bad2[] = {"bad name"};
    c.headers = bad2;
    CHECK(!pol_authz_new(&loop, &c, err, sizeof(err)));
    CHECK_CONTAINS(err, "bad header name");
}

/* Runs one test function for mode m and prints its name. */
#define RUN_M(fn, m)                                                                               \
    do {                                                                                           \
        fprintf(stderr, "-- %s (%s)\n", #fn, mode_name(m));                                        \
        fn(m);                                                                                     \
    } while (0)

int main(int argc, char **argv)
{
    CHECK(argc == 3);
    authz_rig_start(&rig, argv[1], argv[2]);
    uv_loop_init(&loop);
    pol_authz_mode_t modes[] = {POL_AUTHZ_HTTP, POL_AUTHZ_GRPC};
    for (size_t i = 0; i < 2; i++) {
        pol_authz_mode_t m = modes[i];
        fprintf(stderr, "== %s\n", mode_name(m));
        RUN_M(test_allow_identity, m);
        RUN_M(test_cookies, m);
        RUN_M(test_deny, m);
        RUN_M(test_cache, m);
        RUN_M(test_cache_ttl_and_bound, m);
        RUN_M(test_timeout, m);
        RUN_M(test_server_error, m);
        RUN_M(test_bad_identity, m);
        RUN_M(test_server_down, m);
        RUN_M(test_cancel_and_free, m);
    }
    RUN(test_ipv6_peer);
    RUN(test_hang_http);
    RUN(test_bad_credentials);
    RUN(test_config_errors);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ(uv_loop_close(&loop), 0);
    fprintf(stderr, "ok\n");
    return 0;
}
