/*
 * tests/unit/gateway_h1/test_h2s_flow.c: request body flow control of the sans-I/O h2c server
 * connection (transport/h2_srv.h), driven by a real nghttp2 client session over memory.
 *
 * A stream the application pauses (h2s_conn_pause) gets no WINDOW_UPDATE: the client's window
 * for it shuts after one window's worth (64 KiB) and the client stops sending, while a second
 * stream on the same connection still flows (the connection window is not held by the paused
 * one); h2s_conn_resume acknowledges what arrived and the rest follows, every byte in order.
 * A body over max_body gets 413 unless the application lifted the limit in on_head
 * (h2s_conn_body_limit). A response can end with trailers (h2s_conn_end_trailers, as gRPC's
 * grpc-status), which the client receives as a second header block after the body.
 */
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/check.h"
#include "transport/h2_srv.h"

#define BODY_LEN (300 * 1024)

/* ---- the application ------------------------------------------------------------------------ */

typedef struct {
    size_t got[8]; /* body bytes per stream (ids 1, 3, 5 ... at index id / 2) */
    int bad_order; /* a byte that is not the pattern at its offset */
    int ended[8];
    int errors[8];
    int error_status[8];
    int pause_1; /* pause stream 1 at its first body bytes */
    int lift;    /* lift the body limit in on_head */
    int grpc;    /* answer like a gRPC server: a body, then trailers (h2s_conn_end_trailers) */
} app_t;

static unsigned char pattern(size_t off)
{
    return (unsigned char)(off * 7 + off / 251);
}

static void on_head(void *ud, h2s_conn_t *c, uint64_t id, const h1_conn_head_t *h)
{
    app_t *a = ud;
    (void)h;
    if (a->lift)
        CHECK_EQ(h2s_conn_body_limit(c, id, 0), 0);
}

static void on_body(void *ud, h2s_conn_t *c, uint64_t id, const char *data, size_t len)
{
    app_t *a = ud;
    size_t i = (size_t)id / 2;
    CHECK(i < 8);
    for (size_t k = 0; k < len; k++)
        if ((unsigned char)data[k] != pattern(a->got[i] + k))
            a->bad_order = 1;
    a->got[i] += len;
    if (id == 1 && a->pause_1)
        CHECK_EQ(h2s_conn_pause(c, id), 0);
}

static void on_end(void *ud, h2s_conn_t *c, uint64_t id)
{
    app_t *a = ud;
    a->ended[id / 2] = 1;
    if (a->grpc) {
        static const h1_conn_hdr_t ct = {"Content-Type", 12, "application/grpc", 16};
        static const h1_conn_hdr_t tr[2] = {{"Grpc-Status", 11, "5", 1},
                                            {"grpc-message", 12, "not%20here", 10}};
        CHECK_EQ(h2s_conn_respond(c, id, 200, &ct, 1, -1), 0);
        CHECK_EQ(h2s_conn_body(c, id, "\0\0\0\0\2hi", 7), 0);
        CHECK_EQ(h2s_conn_end_trailers(c, id, tr, 0), -1); /* none: refused */
        CHECK_EQ(h2s_conn_end_trailers(c, id, tr, 2), 0);
        CHECK_EQ(h2s_conn_end_trailers(c, id, tr, 2), -1); /* once */
        CHECK_EQ(h2s_conn_end(c, id), -1);
        return;
    }
    CHECK_EQ(h2s_conn_respond(c, id, 200, NULL, 0, 0), 0);
    CHECK_EQ(h2s_conn_end(c, id), 0);
}

static void on_error(void *ud, h2s_conn_t *c, uint64_t id, int status, const char *why)
{
    app_t *a = ud;
    (void)c;
    (void)why;
    a->errors[id / 2]++;
    a->error_status[id / 2] = status;
}

static const h2s_conn_cbs_t cbs = {on_head, on_body, on_end, on_error, NULL, NULL};

/* ---- the client ----------------------------------------------------------------------------- */

typedef struct {
    size_t sent[8]; /* body bytes handed to nghttp2 per stream */
} client_t;

static ssize_t body_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    (void)s;
    (void)src;
    client_t *cl = ud;
    size_t *sent = &cl->sent[id / 2];
    size_t n = BODY_LEN - *sent < length ? BODY_LEN - *sent : length;
    for (size_t k = 0; k < n; k++)
        buf[k] = pattern(*sent + k);
    *sent += n;
    if (*sent == BODY_LEN)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static int32_t post(nghttp2_session *cl)
{
    nghttp2_nv nva[] = {
        {(uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0},
        {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
        {(uint8_t *)":path", (uint8_t *)"/s", 5, 2, 0},
        {(uint8_t *)":authority", (uint8_t *)"x", 10, 1, 0},
    };
    nghttp2_data_provider prd = {.read_callback = body_read};
    int32_t id = nghttp2_submit_request(cl, NULL, nva, 4, &prd, NULL);
    CHECK(id > 0);
    return id;
}

/* Moves bytes both ways until neither side has anything more to say. */
static void pump(nghttp2_session *cl, h2s_conn_t *c)
{
    for (int progress = 1; progress;) {
        progress = 0;
        const uint8_t *p;
        ssize_t n;
        while ((n = nghttp2_session_mem_send(cl, &p)) > 0) {
            CHECK_EQ(h2s_conn_feed(c, (const char *)p, (size_t)n, 0), n);
            progress = 1;
        }
        CHECK(n == 0);
        const char *d;
        size_t m;
        while ((m = h2s_conn_take_out(c, &d, 0)) > 0) {
            CHECK_EQ(nghttp2_session_mem_recv(cl, (const uint8_t *)d, m), (ssize_t)m);
            h2s_conn_sent(c, 0);
            progress = 1;
        }
    }
}

static nghttp2_session *client_new(client_t *ud)
{
    nghttp2_session_callbacks *cb;
    CHECK_EQ(nghttp2_session_callbacks_new(&cb), 0);
    nghttp2_session *cl;
    CHECK_EQ(nghttp2_session_client_new(&cl, cb, ud), 0);
    nghttp2_session_callbacks_del(cb);
    CHECK_EQ(nghttp2_submit_settings(cl, NGHTTP2_FLAG_NONE, NULL, 0), 0);
    return cl;
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void test_paused_stream(void)
{
    app_t a = {.pause_1 = 1, .lift = 1};
    client_t ud = {{0}};
    h2s_conn_t *c = h2s_conn_new(NULL, &cbs, &a, 0, NULL); /* max_body 1 MiB: lifted anyway */
    nghttp2_session *cl = client_new(&ud);
    int32_t s1 = post(cl);
    CHECK_EQ(s1, 1);
    pump(cl, c);
    /* Paused: at most the stream's window arrived; the client's window for it is shut. */
    CHECK(a.got[0] > 0 && a.got[0] <= 65535);
    CHECK_EQ(h2s_conn_held(c, 1), a.got[0]);
    CHECK_EQ(nghttp2_session_get_stream_remote_window_size(cl, 1), 0);
    CHECK(ud.sent[0] < BODY_LEN);
    CHECK_EQ(a.ended[0], 0);

    /* Another stream on the same connection flows to its end meanwhile. */
    int32_t s3 = post(cl);
    CHECK_EQ(s3, 3);
    pump(cl, c);
    CHECK_EQ(a.got[1], BODY_LEN);
    CHECK_EQ(a.ended[1], 1);
    CHECK(a.got[0] <= 65535);

    /* Resumed (and no longer paused by the application): the rest arrives, in order. */
    a.pause_1 = 0;
    CHECK_EQ(h2s_conn_resume(c, 1), 0);
    CHECK_EQ(h2s_conn_held(c, 1), 0);
    pump(cl, c);
    CHECK_EQ(a.got[0], BODY_LEN);
    CHECK_EQ(a.ended[0], 1);
    CHECK_EQ(a.bad_order, 0);
    CHECK_EQ(a.errors[0] + a.errors[1], 0);
    CHECK_EQ(h2s_conn_pause(c, 99), -1);
    nghttp2_session_del(cl);
    h2s_conn_free(c);
}

static void test_pause_every_piece(void)
{
    /* Paused at every piece and resumed after each pump: the same bytes, in order. */
    app_t a = {.pause_1 = 1, .lift = 1};
    client_t ud = {{0}};
    h2s_conn_t *c = h2s_conn_new(NULL, &cbs, &a, 0, NULL);
    nghttp2_session *cl = client_new(&ud);
    post(cl);
    for (int i = 0; i < 100000 && !a.ended[0]; i++) {
        pump(cl, c);
        h2s_conn_resume(c, 1);
    }
    CHECK_EQ(a.got[0], BODY_LEN);
    CHECK_EQ(a.ended[0], 1);
    CHECK_EQ(a.bad_order, 0);
    nghttp2_session_del(cl);
    h2s_conn_free(c);
}

static void test_body_limit(void)
{
    /* Over max_body without the lift: 413. */
    h1_conn_config_t cfg = {.max_body = 100000};
    app_t a = {0};
    client_t ud = {{0}};
    h2s_conn_t *c = h2s_conn_new(&cfg, &cbs, &a, 0, NULL);
    nghttp2_session *cl = client_new(&ud);
    post(cl);
    pump(cl, c);
    CHECK_EQ(a.errors[0], 1);
    CHECK_EQ(a.error_status[0], 413);
    CHECK_EQ(a.ended[0], 0);
    nghttp2_session_del(cl);
    h2s_conn_free(c);

    /* Lifted in on_head: the whole body passes. */
    memset(&a, 0, sizeof(a));
    memset(&ud, 0, sizeof(ud));
    a.lift = 1;
    c = h2s_conn_new(&cfg, &cbs, &a, 0, NULL);
    cl = client_new(&ud);
    post(cl);
    pump(cl, c);
    CHECK_EQ(a.got[0], BODY_LEN);
    CHECK_EQ(a.ended[0], 1);
    CHECK_EQ(a.errors[0], 0);
    nghttp2_session_del(cl);
    h2s_conn_free(c);
}

/* What a gRPC client sees of a response: its header blocks, DATA bytes and the end. */
typedef struct {
    client_t body;
    int blocks; /* header blocks of the response (2: headers, then trailers) */
    char trailers[128];
    size_t data;
    int data_after_trailers;
    int closed;
    uint32_t close_err;
} gclient_t;

static int g_on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nl,
                       const uint8_t *value, size_t vl, uint8_t flags, void *ud)
{
    (void)s, (void)flags;
    gclient_t *g = ud;
    if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_HEADERS) {
        size_t l = strlen(g->trailers);
        snprintf(g->trailers + l, sizeof(g->trailers) - l, "%.*s=%.*s;", (int)nl, name, (int)vl,
                 value);
    }
    return 0;
}

static int g_on_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    (void)s;
    gclient_t *g = ud;
    if (f->hd.type == NGHTTP2_HEADERS)
        g->blocks++;
    return 0;
}

static int g_on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *d, size_t n,
                     void *ud)
{
    (void)s, (void)flags, (void)id, (void)d;
    gclient_t *g = ud;
    g->data += n;
    g->data_after_trailers += g->blocks > 1;
    return 0;
}

static int g_on_close(nghttp2_session *s, int32_t id, uint32_t err, void *ud)
{
    (void)s, (void)id;
    gclient_t *g = ud;
    g->closed = 1;
    g->close_err = err;
    return 0;
}

static void test_trailers(void)
{
    /* A gRPC-style response: headers, a message, then grpc-status in a trailer block. */
    app_t a = {.grpc = 1, .lift = 1};
    gclient_t g = {0};
    h2s_conn_t *c = h2s_conn_new(NULL, &cbs, &a, 0, NULL);
    nghttp2_session_callbacks *cb;
    CHECK_EQ(nghttp2_session_callbacks_new(&cb), 0);
    nghttp2_session_callbacks_set_on_header_callback(cb, g_on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, g_on_frame);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, g_on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, g_on_close);
    nghttp2_session *cl;
    CHECK_EQ(nghttp2_session_client_new(&cl, cb, &g), 0);
    nghttp2_session_callbacks_del(cb);
    CHECK_EQ(nghttp2_submit_settings(cl, NGHTTP2_FLAG_NONE, NULL, 0), 0);
    post(cl);
    pump(cl, c);
    CHECK_EQ(a.ended[0], 1);
    CHECK(g.closed && g.close_err == NGHTTP2_NO_ERROR);
    CHECK_EQ(g.blocks, 2);
    CHECK_EQ(g.data, 7);
    CHECK_EQ(g.data_after_trailers, 0);
    CHECK_STR(g.trailers, "grpc-status=5;grpc-message=not%20here;"); /* names lower-cased */
    nghttp2_session_del(cl);
    h2s_conn_free(c);
}

int main(void)
{
    RUN(test_paused_stream);
    RUN(test_pause_every_piece);
    RUN(test_body_limit);
    RUN(test_trailers);
    fprintf(stderr, "ok\n");
    return 0;
}
