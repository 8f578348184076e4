/*
 * tests/unit/transport/test_h2_field_cache.c: the memo of checked header fields
 * (transport/h2_field_cache.c), fed by real nghttp2 sessions: a client session encodes
 * requests, a server session (HTTP checks off, as in the proxy) decodes them and hands each
 * field's buffers to the cache. Every verdict equals the full check's (mesh_h2_field_check), a
 * field sent indexed again is answered from the cache, a bad field is refused every time, the
 * checks that depend on the fields before still run on a remembered field, and clearing the
 * cache releases every buffer it held (LeakSanitizer checks in the test build).
 */
#include "transport/h2_field_cache.h"
#include "tests/check.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    mesh_h2_field_cache_t cache;
    mesh_h2_fields_t cached, plain; /* the block through the cache, and the full check alone */
    int results[32], plain_results[32], n;
    nghttp2_rcbuf *seen_name[32]; /* the buffers of each field, by place */
} server_t;

static int on_begin(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    server_t *sv = ud;
    mesh_h2_fields_reset(&sv->cached);
    mesh_h2_fields_reset(&sv->plain);
    sv->n = 0;
    return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, nghttp2_rcbuf *name,
                     nghttp2_rcbuf *value, uint8_t flags, void *ud)
{
    server_t *sv = ud;
    nghttp2_vec n = nghttp2_rcbuf_get_buf(name), v = nghttp2_rcbuf_get_buf(value);
    sv->seen_name[sv->n] = name;
    sv->results[sv->n] =
        mesh_h2_field_cache_check(&sv->cache, &sv->cached, MESH_H2_REQUEST, name, value, &n, &v);
    sv->plain_results[sv->n] =
        mesh_h2_field_check(&sv->plain, MESH_H2_REQUEST, n.base, n.len, v.base, v.len);
    sv->n++;
    return 0;
}

static nghttp2_session *client, *server;
static server_t sv;

#define NV(n, v)                                                                                   \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1, 0                            \
    }

/* Sends one request with fields nv (count n) through both sessions. */
static void request(const nghttp2_nv *nv, size_t n)
{
    CHECK(nghttp2_submit_request(client, NULL, nv, n, NULL, NULL) > 0);
    const uint8_t *data;
    ssize_t len;
    while ((len = nghttp2_session_mem_send(client, &data)) > 0)
        CHECK(nghttp2_session_mem_recv(server, data, (size_t)len) == len);
    CHECK(len == 0);
    CHECK(sv.n == (int)n);
    for (int i = 0; i < sv.n; i++) /* the cache never changes a verdict */
        CHECK_EQ(sv.results[i], sv.plain_results[i]);
    CHECK((sv.cached.problem == NULL) == (sv.plain.problem == NULL));
}

static int entry_holds(int i, nghttp2_rcbuf *name)
{
    return sv.cache.e[i].name == name;
}

int main(void)
{
    nghttp2_session_callbacks *cb;
    CHECK(nghttp2_session_callbacks_new(&cb) == 0);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin);
    nghttp2_session_callbacks_set_on_header_callback2(cb, on_header);
    nghttp2_option *opt;
    CHECK(nghttp2_option_new(&opt) == 0);
    nghttp2_option_set_no_http_messaging(opt, 1);
    CHECK(nghttp2_session_server_new2(&server, cb, &sv, opt) == 0);
    nghttp2_session_callbacks_del(cb);
    CHECK(nghttp2_session_callbacks_new(&cb) == 0);
    CHECK(nghttp2_session_client_new2(&client, cb, NULL, opt) == 0);
    CHECK(nghttp2_submit_settings(client, NGHTTP2_FLAG_NONE, NULL, 0) == 0); /* (the first frame) */
    nghttp2_session_callbacks_del(cb);
    nghttp2_option_del(opt);

    /* A gRPC request twice: the second time every field comes from the decoder's tables (the
     * client indexed them), and each place's entry is the buffer the decoder handed over. */
    const nghttp2_nv call[] = {NV(":method", "POST"),
                               NV(":scheme", "http"),
                               NV(":path", "/shop.v1.Echo/Say"),
                               NV(":authority", "echo:50051"),
                               NV("content-type", "application/grpc"),
                               NV("te", "trailers"),
                               NV("x-tenant", "blue")};
    request(call, 7);
    CHECK(sv.cached.problem == NULL);
    request(call, 7);
    CHECK(sv.cached.problem == NULL);
    for (int i = 0; i < 7; i++)
        CHECK(i == 2 || entry_holds(i, sv.seen_name[i])); /* (:path: a literal, new each time) */
    CHECK_EQ(sv.results[4], MESH_H2_N_CONTENT_TYPE);
    CHECK_EQ(sv.results[6], MESH_H2_N_OTHER);

    /* A bad value is refused every time it comes, and never remembered. */
    const nghttp2_nv bad[] = {NV(":method", "POST"), NV(":scheme", "http"), NV(":path", "/a/b"),
                              NV("x-bad", "a\001b")};
    for (int i = 0; i < 3; i++) {
        request(bad, 4);
        CHECK(sv.results[3] < 0);
        CHECK_STR(sv.cached.problem, "control character in a field value");
        CHECK(!entry_holds(3, sv.seen_name[3]));
    }
    request(call, 7); /* (the places the bad request took are filled again) */

    /* A remembered field still obeys the rules about the fields before it: ":scheme: http" in
     * the same place as before, now after a regular field. */
    const nghttp2_nv late[] = {NV("x-tenant", "blue"), NV(":scheme", "http")};
    request(late, 2);
    CHECK(entry_holds(1, sv.seen_name[1])); /* (remembered: the check came from the cache) */
    CHECK(sv.results[1] < 0);
    CHECK_STR(sv.cached.problem, "pseudo-header field after a regular field");
    /* ... and a repeated pseudo-header field is still one. */
    const nghttp2_nv twice[] = {NV(":method", "POST"), NV(":method", "POST")};
    request(call, 7);
    request(twice, 2);
    CHECK(sv.results[1] < 0);
    CHECK_STR(sv.cached.problem, "repeated pseudo-header field");

    /* Connection-specific fields and te other than "trailers" are refused, however often. */
    const nghttp2_nv conn[] = {NV(":method", "POST"), NV(":scheme", "http"), NV(":path", "/a/b"),
                               NV("te", "gzip")};
    request(conn, 4);
    request(conn, 4);
    CHECK_STR(sv.cached.problem, "te other than \"trailers\"");

    /* A literal under a remembered name (":path", a new value every call, its name from the
     * static table) has only its value checked anew, and a bad one is still refused. */
    request(call, 7);
    const nghttp2_nv empty_path[] = {NV(":method", "POST"), NV(":scheme", "http"), NV(":path", "")};
    request(empty_path, 3);
    CHECK(sv.cache.e[2].name == sv.seen_name[2]); /* (the name's entry answered) */
    CHECK(sv.results[2] < 0);
    CHECK_STR(sv.cached.problem, "empty :method, :scheme or :path");
    const nghttp2_nv ctl_path[] = {NV(":method", "POST"), NV(":scheme", "http"),
                                   NV(":path", "/a/\001")};
    request(ctl_path, 3);
    CHECK(sv.results[2] < 0);
    CHECK_STR(sv.cached.problem, "control character in a field value");
    const nghttp2_nv good_path[] = {NV(":method", "POST"), NV(":scheme", "http"),
                                    NV(":path", "/shop.v1.Echo/Other")};
    request(good_path, 3);
    CHECK(sv.cache.e[2].name == sv.seen_name[2]);
    CHECK_EQ(sv.results[2], MESH_H2_N_PATH);

    mesh_h2_field_cache_clear(&sv.cache);
    for (int i = 0; i < MESH_H2_FIELD_CACHE_N; i++)
        CHECK(sv.cache.e[i].name == NULL);
    nghttp2_session_del(client);
    nghttp2_session_del(server);
    return 0;
}
