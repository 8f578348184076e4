/*
 * tests/fuzz/transport/fuzz_h2_field_cache.c: libFuzzer harness for the memo of checked header
 * fields (transport/h2_field_cache.c), differential against the full check: the input is cut
 * into up to eight requests of fields drawn from a small pool (so fields repeat, in the same
 * and in other places, and reach the decoder indexed) or taken raw from the input (bad bytes
 * included); a client session encodes them, a server session (HTTP checks off, as in the proxy)
 * decodes them, and each field goes through the cache and through mesh_h2_field_check alone.
 * Every verdict and every block's first problem must agree; the cache's references are released
 * at the end (LeakSanitizer).
 */
#include <nghttp2/nghttp2.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transport/h2_field_cache.h"

typedef struct {
    mesh_h2_field_cache_t cache;
    mesh_h2_fields_t cached, plain;
} server_t;

static int on_begin(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    server_t *sv = ud;
    mesh_h2_fields_reset(&sv->cached);
    mesh_h2_fields_reset(&sv->plain);
    return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, nghttp2_rcbuf *name,
                     nghttp2_rcbuf *value, uint8_t flags, void *ud)
{
    server_t *sv = ud;
    nghttp2_vec n = nghttp2_rcbuf_get_buf(name), v = nghttp2_rcbuf_get_buf(value);
    int a =
        mesh_h2_field_cache_check(&sv->cache, &sv->cached, MESH_H2_REQUEST, name, value, &n, &v);
    int b = mesh_h2_field_check(&sv->plain, MESH_H2_REQUEST, n.base, n.len, v.base, v.len);
    if (a != b || sv->cached.problem != sv->plain.problem)
        abort();
    return 0;
}

static const char *const POOL[][2] = {
    {":method", "POST"},
    {":scheme", "http"},
    {":path", "/s.S/M"},
    {":authority", "a:1"},
    {":status", "200"},
    {":path", ""},
    {"content-type", "application/grpc"},
    {"te", "trailers"},
    {"te", "gzip"},
    {"connection", "x"},
    {"x-k", "v"},
    {"x-k", " v"},
    {"X-Up", "v"},
    {"grpc-timeout", "1S"},
};
#define POOL_N (sizeof(POOL) / sizeof(POOL[0]))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static nghttp2_session_callbacks *scb, *ccb;
    static nghttp2_option *opt;
    if (!scb) {
        nghttp2_session_callbacks_new(&scb);
        nghttp2_session_callbacks_set_on_begin_headers_callback(scb, on_begin);
        nghttp2_session_callbacks_set_on_header_callback2(scb, on_header);
        nghttp2_session_callbacks_new(&ccb);
        nghttp2_option_new(&opt);
        nghttp2_option_set_no_http_messaging(opt, 1);
    }
    server_t sv;
    memset(&sv, 0, sizeof(sv));
    nghttp2_session *client, *server;
    if (nghttp2_session_server_new2(&server, scb, &sv, opt) != 0)
        return 0;
    if (nghttp2_session_client_new2(&client, ccb, NULL, opt) != 0) {
        nghttp2_session_del(server);
        return 0;
    }
    nghttp2_submit_settings(client, NGHTTP2_FLAG_NONE, NULL, 0);
    size_t o = 0;
    for (int req = 0; req < 8 && o < size; req++) {
        nghttp2_nv nv[16];
        size_t want = data[o++] % 16, n = 0;
        for (size_t i = 0; i < want && o < size; i++, n++) {
            uint8_t k = data[o++];
            if (k < 200) { /* from the pool */
                const char *nm = POOL[k % POOL_N][0], *vl = POOL[k % POOL_N][1];
                nv[i] = (nghttp2_nv){(uint8_t *)nm, (uint8_t *)vl, strlen(nm), strlen(vl),
                                     (k & 1) ? NGHTTP2_NV_FLAG_NO_INDEX : NGHTTP2_NV_FLAG_NONE};
            } else { /* raw: a length byte each for name and value */
                size_t a = o < size ? data[o++] % 16 : 0;
                a = a > size - o ? size - o : a;
                const uint8_t *nm = data + o;
                o += a;
                size_t b = o < size ? data[o++] % 16 : 0;
                b = b > size - o ? size - o : b;
                nv[i] = (nghttp2_nv){(uint8_t *)nm, (uint8_t *)data + o, a, b, 0};
                o += b;
            }
        }
        if (n == 0 || nghttp2_submit_request(client, NULL, nv, n, NULL, NULL) < 0)
            continue;
        const uint8_t *out;
        ssize_t len;
        while ((len = nghttp2_session_mem_send(client, &out)) > 0)
            if (nghttp2_session_mem_recv(server, out, (size_t)len) < 0)
                break;
    }
    mesh_h2_field_cache_clear(&sv.cache);
    nghttp2_session_del(client);
    nghttp2_session_del(server);
    return 0;
}
