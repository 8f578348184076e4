/*
 * tests/fuzz/gateway_h2/fuzz_h2_srv.c: libFuzzer harness over the gateway's h2c server
 * connection (transport/h2_srv.h) and the HTTP2-Settings decoder of the Upgrade path.
 *
 * The first byte picks the mode: prior knowledge (the preface is prepended, the rest is fed as
 * frames) or Upgrade (the next bytes, up to a NUL, are the HTTP2-Settings header value given
 * to h2s_settings_decode; when it decodes, an upgraded connection serves a GET as stream 1).
 * The second byte picks how the input is split into reads and how the application answers
 * (at the head, at the end, streamed in pieces over the output high mark, or by an error),
 * and request body flow control: the body limit lifted at the head, streams paused at each
 * body piece and resumed every other read (or only at the end).
 * Between reads the output is taken and "sent", and the timer is run. Checks: no crash or
 * leak (ASan); a request is answered or told it is over, and the response functions refuse
 * ids that are not open; once everything is answered and the input is over, the connection
 * wants to close after its output is written.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transport/h2_srv.h"

#define MAXS 64

typedef struct {
    int mode;
    uint64_t ids[MAXS];
    int n;
    uint64_t paused[MAXS];
    int np;
} app_t;

static void answer(app_t *a, h2s_conn_t *c, uint64_t id)
{
    static const h1_conn_hdr_t h = {"Content-Type", 12, "application/json", 16};
    static char big[100000];
    switch (a->mode & 3) {
    case 0:
        if (h2s_conn_respond(c, id, 200, &h, 1, 3) == 0) {
            h2s_conn_body(c, id, "{}\n", 3);
            h2s_conn_end(c, id);
        }
        break;
    case 1:
        if (h2s_conn_respond(c, id, 200, &h, 1, -1) == 0) {
            for (int i = 0; i < 3; i++)
                h2s_conn_body(c, id, big, sizeof(big)); /* over the high mark: 1 */
            h2s_conn_end(c, id);
        }
        break;
    case 2:
        h2s_conn_respond_error(c, id, 404, "no route");
        break;
    default:
        if (h2s_conn_respond(c, id, 200, &h, 1, 10) == 0) {
            h2s_conn_body(c, id, "{}", 2);
            if (h2s_conn_end(c, id) != -1) /* short of the Content-Length */
                abort();
        }
    }
}

static void on_head(void *ud, h2s_conn_t *c, uint64_t id, const h1_conn_head_t *head)
{
    app_t *a = ud;
    if (!head->method || !head->target || strlen(head->target) != head->target_len)
        abort();
    if ((a->mode & 16) && h2s_conn_body_limit(c, id, 0) != 0)
        abort();
    if (a->mode & 4)
        answer(a, c, id);
    else if (a->n < MAXS)
        a->ids[a->n++] = id;
}

static void on_end(void *ud, h2s_conn_t *c, uint64_t id)
{
    app_t *a = ud;
    if (!(a->mode & 4)) {
        for (int i = 0; i < a->n; i++)
            if (a->ids[i] == id) {
                a->ids[i] = a->ids[--a->n];
                answer(a, c, id);
                return;
            }
    }
}

static void on_error(void *ud, h2s_conn_t *c, uint64_t id, int status, const char *why)
{
    (void)c;
    (void)status;
    (void)why;
    app_t *a = ud;
    for (int i = 0; i < a->n; i++)
        if (a->ids[i] == id) {
            a->ids[i] = a->ids[--a->n];
            return;
        }
}

static void on_body(void *ud, h2s_conn_t *c, uint64_t id, const char *d, size_t n)
{
    (void)d;
    (void)n;
    app_t *a = ud;
    if ((a->mode & 32) && a->np < MAXS && h2s_conn_pause(c, id) == 0)
        a->paused[a->np++] = id;
}

static void resume_all(app_t *a, h2s_conn_t *c)
{
    while (a->np > 0) {
        uint64_t id = a->paused[--a->np];
        h2s_conn_resume(c, id); /* -1 once the stream is gone */
        if (h2s_conn_held(c, id) != 0)
            abort();
    }
}

static const h2s_conn_cbs_t cbs = {on_head, on_body, on_end, on_error, NULL, NULL};

static void drain_out(h2s_conn_t *c, uint64_t now)
{
    const char *d;
    for (int i = 0; i < 64 && h2s_conn_take_out(c, &d, now); i++)
        h2s_conn_sent(c, now);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    app_t a = {.mode = data[1]};
    int upgrade = data[0] & 1;
    size_t split = 1 + (data[0] >> 1);
    data += 2;
    size -= 2;
    h1_conn_config_t cfg = {.max_head = (a.mode & 8) ? 200 : 0, .max_body = 1000};
    uint64_t now = 1;
    h2s_conn_t *c;
    if (upgrade) {
        const uint8_t *nul = memchr(data, 0, size);
        size_t vl = nul ? (size_t)(nul - data) : size;
        uint8_t settings[256];
        int sl = h2s_settings_decode((const char *)data, vl, settings, sizeof(settings));
        data += nul ? vl + 1 : vl;
        size -= nul ? vl + 1 : vl;
        if (sl < 0)
            return 0;
        h1_conn_hdr_t hs[] = {{"Host", 4, "x", 1}, {"Accept", 6, "*/*", 3}};
        h1_conn_head_t head = {.method = "GET",
                               .target = "/a",
                               .target_len = 2,
                               .minor = 1,
                               .headers = hs,
                               .n_headers = 2};
        c = h2s_conn_new_upgrade(&cfg, &cbs, &a, now, NULL, settings, (size_t)sl, &head, NULL, 0);
        if (!c)
            return 0;
        h2s_conn_start(c);
    } else {
        c = h2s_conn_new(&cfg, &cbs, &a, now, NULL);
        if (!c)
            return 0;
        h2s_conn_feed(c, H2S_PREFACE, H2S_PREFACE_LEN, now);
    }
    /* the response functions refuse ids that are not open */
    if (h2s_conn_respond(c, 2, 200, NULL, 0, 0) != -1 || h2s_conn_body(c, 0, "x", 1) != -1 ||
        h2s_conn_end(c, 1u << 31) != -1)
        abort();
    for (size_t off = 0; off < size;) {
        size_t n = size - off < split ? size - off : split;
        if (h2s_conn_wants_read(c))
            h2s_conn_feed(c, (const char *)data + off, n, now);
        off += n;
        if (!(a.mode & 64) && (off / split) % 2)
            resume_all(&a, c);
        drain_out(c, now);
        now += 10;
    }
    resume_all(&a, c);
    /* answer what is left; the client goes away; the timer runs */
    while (a.n > 0) {
        uint64_t id = a.ids[--a.n];
        answer(&a, c, id);
    }
    drain_out(c, now);
    h2s_conn_eof(c, now);
    drain_out(c, now);
    if (!h2s_conn_should_close(c))
        abort();
    h2s_conn_on_timer(c, now + 120000);
    h2s_conn_free(c);
    return 0;
}
