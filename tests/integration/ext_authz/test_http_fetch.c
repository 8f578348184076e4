/*
 * tests/integration/ext_authz/test_http_fetch.c: transport/http_fetch.h against a real HTTP
 * server (tests/peers/authz_server.py, Python's http.server): status, header fields, body,
 * methods, a timeout, a server that accepts and never answers, a refused connection, bodies
 * over the bound (with and without Content-Length), bad requests, cancel, close with requests
 * in flight and from inside a callback, and many requests at once on one loop.
 *
 * usage: test_http_fetch AUTHZ_SERVER_PY PROTO_DIR
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authz_rig.h"
#include "tests/check.h"
#include "transport/http_fetch.h"

static authz_rig_t rig;
static uv_loop_t loop;

typedef struct {
    int done;
    int calls;
    int status;
    char *body;
    size_t len;
    char error[512];
    char x_test[64];
    char reason[64];
    size_t n_fields;
    mesh_http_fetch_t *close_in_cb; /* closes this fetcher from the callback */
} result_t;

static int many_left, many_flag; /* test_many: callbacks still to come, and all came */

static void on_done(void *ctx, int status, const mesh_http_response_t *resp, const char *body,
                    size_t len, const char *error)
{
    result_t *r = ctx;
    many_flag = --many_left == 0;
    r->calls++;
    r->done = 1;
    r->status = status;
    free(r->body);
    r->body = malloc(len + 1);
    memcpy(r->body, body, len + 1);
    r->len = len;
    snprintf(r->error, sizeof(r->error), "%s", error);
    const char *x = mesh_http_response_header(resp, "x-test");
    snprintf(r->x_test, sizeof(r->x_test), "%s", x ? x : "");
    snprintf(r->reason, sizeof(r->reason), "%s", mesh_http_response_reason(resp));
    r->n_fields = mesh_http_response_header_count(resp);
    if (r->close_in_cb)
        mesh_http_fetch_close(r->close_in_cb);
}

static void url(char *out, size_t cap, int port, const char *path)
{
    snprintf(out, cap, "http://127.0.0.1:%d%s", port, path);
}

/* One request to completion on a fresh fetcher; the fetcher is closed after. */
static void fetch(const mesh_http_request_t *q, result_t *r)
{
    mesh_http_fetch_t *f = mesh_http_fetch_new(&loop);
    CHECK(f);
    memset(r, 0, sizeof(*r));
    CHECK(mesh_http_fetch_request(f, q, on_done, r));
    CHECK(!r->done); /* never from inside the call */
    CHECK(authz_rig_run_until(&loop, &r->done, 20000) == 0);
    CHECK_EQ(mesh_http_fetch_pending(f), 0);
    mesh_http_fetch_close(f);
    uv_run(&loop, UV_RUN_NOWAIT);
}

static void test_post_echo(void)
{
    char u[128];
    url(u, sizeof(u), rig.http, "/echo?q=1");
    mesh_http_header_t h[] = {{"X-A", "one"}, {"Content-Type", "text/plain"}, {"X-Empty", ""}};
    mesh_http_request_t q = {
        .url = u, .headers = h, .n_headers = 3, .body = "hello body", .body_len = 10};
    result_t r;
    fetch(&q, &r);
    CHECK_EQ(r.status, 200);
    CHECK_STR(r.error, "");
    CHECK_STR(r.x_test, "yes");
    CHECK_STR(r.reason, "OK");
    CHECK(r.n_fields >= 3);
    json_t *doc = json_loads(r.body, 0, NULL);
    CHECK(doc);
    CHECK_STR(json_string_value(json_object_get(doc, "method")), "POST");
    CHECK_STR(json_string_value(json_object_get(doc, "path")), "/echo?q=1");
    CHECK_STR(json_string_value(json_object_get(doc, "body")), "hello body");
    json_t *hd = json_object_get(doc, "headers");
    CHECK_STR(json_string_value(json_object_get(hd, "x-a")), "one");
    CHECK_STR(json_string_value(json_object_get(hd, "x-empty")), "");
    CHECK(!json_object_get(hd, "expect"));
    json_decref(doc);
    free(r.body);
}

static void test_methods(void)
{
    char u[128];
    url(u, sizeof(u), rig.http, "/echo");
    const char *methods[] = {"GET", "PUT", "DELETE"};
    for (size_t i = 0; i < 3; i++) {
        mesh_http_request_t q = {.url = u, .method = methods[i]};
        result_t r;
        fetch(&q, &r);
        CHECK_EQ(r.status, 200);
        json_t *doc = json_loads(r.body, 0, NULL);
        CHECK_STR(json_string_value(json_object_get(doc, "method")), methods[i]);
        json_decref(doc);
        free(r.body);
    }
    mesh_http_request_t q = {.url = u, .method = "HEAD"};
    result_t r;
    fetch(&q, &r);
    CHECK_EQ(r.status, 200);
    CHECK_EQ(r.len, 0);
    free(r.body);
}

static void test_status(void)
{
    char u[128];
    url(u, sizeof(u), rig.http, "/status/404");
    mesh_http_request_t q = {.url = u};
    result_t r;
    fetch(&q, &r);
    CHECK_EQ(r.status, 404);
    CHECK_STR(r.body, "status 404");
    CHECK_STR(r.reason, "Not Found");
    free(r.body);
    url(u, sizeof(u), rig.http, "/status/503");
    fetch(&q, &r);
    CHECK_EQ(r.status, 503);
    free(r.body);
}

static void test_timeout_slow(void)
{
    char u[128];
    url(u, sizeof(u), rig.http, "/slow/3000");
    mesh_http_request_t q = {.url = u, .timeout_ms = 300};
    result_t r;
    fetch(&q, &r);
    CHECK_EQ(r.status, MESH_HTTP_ERR_TIMEOUT);
    CHECK_CONTAINS(r.error, "timeout");
    CHECK_EQ(r.len, 0);
    free(r.body);
}

static void test_timeout_hang(void)
{
    char u[128];
    url(u, sizeof(u), rig.hang, "/anything");
    mesh_http_request_t q = {.url = u, .timeout_ms = 300};
    result_t r;
    fetch(&q, &r);
    CHECK_EQ(r.status, MESH_HTTP_ERR_TIMEOUT);
    free(r.body);
}

static void test_refused(void)
{
    char u[128];
    url(u, sizeof(u), authz_rig_closed_port(), "/x");
    mesh_http_request_t q = {.url = u};
    result_t r;
    fetch(&q, &r);
    CHECK_EQ(r.status, MESH_HTTP_ERR_CONNECT);
    CHECK_CONTAINS(r.error, "connect");
    free(r.body);
}

static void test_too_large(void)
{
    char u[128];
    result_t r;
    url(u, sizeof(u), rig.http, "/big/5000");
    mesh_http_request_t q = {.url = u, .max_response = 1000};
    fetch(&q, &r); /* Content-Length says too much */
    CHECK_EQ(r.status, MESH_HTTP_ERR_TOO_LARGE);
    CHECK_CONTAINS(r.error, "body larger than 1000");
    free(r.body);
    url(u, sizeof(u), rig.http, "/big/5000?nolen=1");
    fetch(&q, &r); /* no length: the bytes themselves are counted */
    CHECK_EQ(r.status, MESH_HTTP_ERR_TOO_LARGE);
    free(r.body);
    url(u, sizeof(u), rig.http, "/big/1000?nolen=1");
    fetch(&q, &r); /* exactly the bound */
    CHECK_EQ(r.status, 200);
    CHECK_EQ(r.len, 1000);
    CHECK_EQ(strspn(r.body, "a"), 1000);
    free(r.body);
}

static void test_bad_requests(void)
{
    result_t r;
    mesh_http_request_t q = {.url = "ftp://127.0.0.1/x"};
    fetch(&q, &r);
    CHECK_EQ(r.status, MESH_HTTP_ERR_BAD_REQUEST);
    free(r.body);
    char u[128];
    url(u, sizeof(u), rig.http, "/echo");
    mesh_http_header_t h[] = {{"X-Bad", "a\r\nX-Injected: 1"}};
    mesh_http_request_t q2 = {.url = u, .headers = h, .n_headers = 1};
    fetch(&q2, &r);
    CHECK_EQ(r.status, MESH_HTTP_ERR_BAD_REQUEST);
    CHECK_CONTAINS(r.error, "X-Bad");
    free(r.body);
    mesh_http_request_t q3 = {.url = u, .method = "GE T"};
    fetch(&q3, &r);
    CHECK_EQ(r.status, MESH_HTTP_ERR_BAD_REQUEST);
    free(r.body);
}

static void test_cancel(void)
{
    mesh_http_fetch_t *f = mesh_http_fetch_new(&loop);
    char slow[128], echo[128];
    url(slow, sizeof(slow), rig.http, "/slow/500");
    url(echo, sizeof(echo), rig.http, "/echo");
    result_t a = {0}, b = {0}, c = {0};
    mesh_http_request_t qs = {.url = slow}, qe = {.url = echo};
    mesh_http_req_t *ra = mesh_http_fetch_request(f, &qs, on_done, &a);
    mesh_http_req_t *rb = mesh_http_fetch_request(f, &qs, on_done, &b);
    CHECK(ra && rb);
    CHECK_EQ(mesh_http_fetch_pending(f), 2);
    mesh_http_fetch_cancel(ra); /* before it started */
    CHECK_EQ(mesh_http_fetch_pending(f), 1);
    /* b is on the wire: cancel it once the loop has run a little */
    for (int i = 0; i < 5; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    mesh_http_fetch_cancel(rb);
    CHECK_EQ(mesh_http_fetch_pending(f), 0);
    CHECK(mesh_http_fetch_request(f, &qe, on_done, &c));
    CHECK(authz_rig_run_until(&loop, &c.done, 20000) == 0);
    CHECK_EQ(c.status, 200);
    /* the slow answers would have come by now: give them the time, they must stay silent */
    qs.url = slow;
    result_t d = {0};
    CHECK(mesh_http_fetch_request(f, &qs, on_done, &d));
    CHECK(authz_rig_run_until(&loop, &d.done, 20000) == 0);
    CHECK_EQ(a.calls, 0);
    CHECK_EQ(b.calls, 0);
    CHECK_EQ(d.status, 200);
    mesh_http_fetch_close(f);
    uv_run(&loop, UV_RUN_NOWAIT);
    free(c.body);
    free(d.body);
}

static void test_close_in_flight(void)
{
    mesh_http_fetch_t *f = mesh_http_fetch_new(&loop);
    char slow[128];
    url(slow, sizeof(slow), rig.http, "/slow/1000");
    result_t a = {0};
    mesh_http_request_t qs = {.url = slow};
    CHECK(mesh_http_fetch_request(f, &qs, on_done, &a));
    for (int i = 0; i < 5; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    mesh_http_fetch_close(f);
    uv_run(&loop, UV_RUN_DEFAULT); /* returns: every handle of the fetcher closed */
    CHECK_EQ(a.calls, 0);
}

static void test_close_in_callback(void)
{
    mesh_http_fetch_t *f = mesh_http_fetch_new(&loop);
    char echo[128], slow[128];
    url(echo, sizeof(echo), rig.http, "/echo");
    url(slow, sizeof(slow), rig.http, "/slow/1000");
    result_t a = {.close_in_cb = f}, b = {0};
    mesh_http_request_t qe = {.url = echo}, qs = {.url = slow};
    CHECK(mesh_http_fetch_request(f, &qe, on_done, &a));
    CHECK(mesh_http_fetch_request(f, &qs, on_done, &b));
    a.close_in_cb = f;
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ(a.calls, 1);
    CHECK_EQ(a.status, 200);
    CHECK_EQ(b.calls, 0);
    free(a.body);
}

static void test_many(void)
{
    enum { N = 40 };
    mesh_http_fetch_t *f = mesh_http_fetch_new(&loop);
    char echo[128];
    url(echo, sizeof(echo), rig.http, "/echo");
    static result_t rs[N];
    memset(rs, 0, sizeof(rs));
    many_left = N;
    many_flag = 0;
    for (int i = 0; i < N; i++) {
        char body[32];
        int n = snprintf(body, sizeof(body), "request %d", i);
        mesh_http_request_t q = {.url = echo, .body = body, .body_len = (size_t)n};
        CHECK(mesh_http_fetch_request(f, &q, on_done, &rs[i]));
    }
    CHECK(authz_rig_run_until(&loop, &many_flag, 30000) == 0);
    for (int i = 0; i < N; i++) {
        char want[32];
        snprintf(want, sizeof(want), "\"body\": \"request %d\"", i);
        CHECK_EQ(rs[i].status, 200);
        CHECK_CONTAINS(rs[i].body, want);
        free(rs[i].body);
    }
    mesh_http_fetch_close(f);
    uv_run(&loop, UV_RUN_NOWAIT);
}

int main(int argc, char **argv)
{
    CHECK(argc == 3);
    authz_rig_start(&rig, argv[1], argv[2]);
    uv_loop_init(&loop);
    RUN(test_post_echo);
    RUN(test_methods);
    RUN(test_status);
    RUN(test_timeout_slow);
    RUN(test_timeout_hang);
    RUN(test_refused);
    RUN(test_too_large);
    RUN(test_bad_requests);
    RUN(test_cancel);
    RUN(test_close_in_flight);
    RUN(test_close_in_callback);
    RUN(test_many);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ(uv_loop_close(&loop), 0);
    fprintf(stderr, "ok\n");
    return 0;
}
