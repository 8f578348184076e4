/*
 * tests/unit/gateway_h1/test_h1_alloc.c: a connection allocates nothing per request once warmed
 * up, and how fast its core is.
 *
 * malloc, calloc and realloc are wrapped at link time (-Wl,--wrap) to count calls. 100
 * pipelined JSON POSTs at a time go in (parsed, answered with Content-Length, taken out) until
 * N requests are done; after the first 1,000 no call may allocate, and every answer must have
 * come out. Prints requests per second (information only, not a pass criterion).
 * Usage: test_h1_alloc [N] (default 20000).
 */
#include "transport/h1_conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/check.h"

static long allocs;
void *__real_malloc(size_t n);
void *__real_realloc(void *p, size_t n);
void *__real_calloc(size_t a, size_t b);
void *__wrap_malloc(size_t n)
{
    allocs++;
    return __real_malloc(n);
}
void *__wrap_realloc(void *p, size_t n)
{
    allocs++;
    return __real_realloc(p, n);
}
void *__wrap_calloc(size_t a, size_t b)
{
    allocs++;
    return __real_calloc(a, b);
}

#define ANSWER "{\"result\":\"0123456789abcdef0\"}\n"

static void on_end(void *ud, h1_conn_t *c, uint64_t id)
{
    static const h1_conn_hdr_t t = {"Content-Type", 12, "application/json", 16};
    CHECK_EQ(h1_conn_respond(c, id, 200, &t, 1, (int64_t)strlen(ANSWER)), 0);
    CHECK_EQ(h1_conn_body(c, id, ANSWER, strlen(ANSWER)), 0);
    CHECK_EQ(h1_conn_end(c, id), 0);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 20000;
    const char *req = "POST /pkg.Echo/Say HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json"
                      "\r\nUser-Agent: bench\r\nContent-Length: 63\r\n\r\n"
                      "{\"message\":\"0123456789012345678901234567890123456789012345678\"}";
    size_t rl = strlen(req);
    char *buf = malloc(rl * 100);
    CHECK(buf);
    for (int i = 0; i < 100; i++)
        memcpy(buf + i * rl, req, rl);
    h1_conn_cbs_t cbs = {0};
    cbs.on_end = on_end;
    h1_conn_config_t cfg = {.max_pipeline = 128};
    h1_conn_t *c = h1_conn_new(&cfg, &cbs, NULL, 0);
    CHECK(c);
    char head[128];
    snprintf(head, sizeof(head),
             "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
             strlen(ANSWER));
    size_t one = strlen(head) + strlen(ANSWER);
    long done = 0, warm = -1;
    size_t out = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (done < n) {
        size_t off = 0;
        while (off < rl * 100) {
            size_t used = h1_conn_feed(c, buf + off, rl * 100 - off, 0);
            off += used;
            const char *d;
            size_t k;
            int took = 0;
            while ((k = h1_conn_take_out(c, &d, 0)) > 0) {
                CHECK(k % one == 0 && memcmp(d, head, strlen(head)) == 0);
                out += k;
                took = 1;
                h1_conn_sent(c, 0);
            }
            CHECK(used || took);
        }
        done += 100;
        if (done == 1000)
            warm = allocs;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    fprintf(stderr,
            "%ld requests in %.3f s: %.0f req/s, %.0f ns a request; %ld allocations after "
            "the first 1000\n",
            done, s, (double)done / s, s * 1e9 / (double)done, allocs - warm);
    CHECK_EQ(out, (size_t)done * one);
    CHECK(warm > 0); /* the wrap counts: h1_conn_new() allocated */
    CHECK_EQ(allocs - warm, 0);
    CHECK_EQ(h1_conn_should_close(c), 0);
    h1_conn_free(c);
    free(buf);
    fprintf(stderr, "ok\n");
    return 0;
}
