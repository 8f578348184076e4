/*
 * tests/integration/ext_authz/test_jwks_fetch.c: policy/jwks_fetch.h against a real HTTP server
 * (tests/peers/authz_server.py's /jwks, whose status, body and Cache-Control the test sets):
 * the first body, a refresh driven by max-age (well before refresh_ms), max-age bounded by
 * min/max, refresh_ms without max-age, a failing server (on_error, the consumer keeps its last
 * body, recovery), a server that is down, refresh() and its rate limit, stop inside a callback.
 *
 * usage: test_jwks_fetch AUTHZ_SERVER_PY PROTO_DIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authz_rig.h"
#include "policy/jwks_fetch.h"
#include "tests/check.h"

static authz_rig_t rig;
static uv_loop_t loop;

typedef struct {
    int bodies, errors;
    int flag; /* set by every callback; the test clears it */
    char body[256];
    char error[1024];
    pol_jwks_fetch_t *stop_in_cb;
} consumer_t;

static void on_body(void *ctx, const char *body, size_t len)
{
    consumer_t *c = ctx;
    c->bodies++;
    c->flag = 1;
    snprintf(c->body, sizeof(c->body), "%.*s", (int)len, body);
    if (c->stop_in_cb)
        pol_jwks_fetch_stop(c->stop_in_cb);
}

static void on_error(void *ctx, const char *msg)
{
    consumer_t *c = ctx;
    c->errors++;
    c->flag = 1;
    snprintf(c->error, sizeof(c->error), "%s", msg);
}

static void set_jwks(int status, const char *body, const char *cache_control)
{
    char doc[512];
    snprintf(doc, sizeof(doc), "{\"status\": %d, \"body\": \"%s\", \"cache_control\": \"%s\"}",
             status, body, cache_control);
    authz_rig_post(rig.http, "/_jwks", doc);
}

static pol_jwks_fetch_t *start(consumer_t *c, int port, uint64_t refresh, uint64_t min,
                               uint64_t max)
{
    char url[128], err[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/jwks", port ? port : rig.http);
    pol_jwks_fetch_config_t cfg = {.url = url,
                                   .refresh_ms = refresh,
                                   .retry_ms = 200,
                                   .min_refresh_ms = min,
                                   .max_refresh_ms = max,
                                   .on_body = on_body,
                                   .on_error = on_error,
                                   .ctx = c};
    pol_jwks_fetch_t *f = pol_jwks_fetch_start(&loop, &cfg, err, sizeof(err));
    CHECK(f);
    return f;
}

/* Waits for the next callback. */
static void next(consumer_t *c)
{
    c->flag = 0;
    CHECK(authz_rig_run_until(&loop, &c->flag, 20000) == 0);
}

static void stop(pol_jwks_fetch_t *f)
{
    pol_jwks_fetch_stop(f);
    uv_run(&loop, UV_RUN_NOWAIT);
}

static void test_max_age_refresh(void)
{
    set_jwks(200, "K1", "public, max-age=1");
    consumer_t c = {0};
    pol_jwks_fetch_t *f = start(&c, 0, 600000, 500, 600000);
    CHECK(!c.flag); /* never from inside start */
    next(&c);
    CHECK_STR(c.body, "K1");
    CHECK_EQ(pol_jwks_fetch_next_ms(f), 1000);
    set_jwks(200, "K2", "max-age=1");
    next(&c); /* after max-age, not after the 10 min refresh */
    CHECK_STR(c.body, "K2");
    CHECK_EQ(c.errors, 0);
    stop(f);
}

static void test_bounds(void)
{
    consumer_t c = {0};
    set_jwks(200, "K3", "max-age=99999");
    pol_jwks_fetch_t *f = start(&c, 0, 600000, 500, 2000);
    next(&c);
    CHECK_EQ(pol_jwks_fetch_next_ms(f), 2000); /* capped by max */
    stop(f);
    set_jwks(200, "K3", "no-cache");
    f = start(&c, 0, 600000, 700, 2000);
    next(&c);
    CHECK_EQ(pol_jwks_fetch_next_ms(f), 700); /* raised to min */
    stop(f);
    set_jwks(200, "K3", "");
    f = start(&c, 0, 4000, 700, 20000);
    next(&c);
    CHECK_EQ(pol_jwks_fetch_next_ms(f), 4000); /* no max-age: refresh_ms */
    stop(f);
}

static void test_failure_keeps_body(void)
{
    consumer_t c = {0};
    set_jwks(200, "GOOD", "max-age=1");
    pol_jwks_fetch_t *f = start(&c, 0, 600000, 300, 600000);
    next(&c);
    CHECK_STR(c.body, "GOOD");
    set_jwks(500, "broken", "max-age=1");
    next(&c);
    CHECK_EQ(c.errors, 1);
    CHECK_CONTAINS(c.error, "jwks_fetch: GET http://127.0.0.1:");
    CHECK_CONTAINS(c.error, "answered 500");
    CHECK_STR(c.body, "GOOD"); /* on_body was not called with the error page */
    CHECK_EQ(c.bodies, 1);
    CHECK_EQ(pol_jwks_fetch_next_ms(f), 200); /* retry_ms */
    next(&c);
    CHECK_EQ(c.errors, 2);
    CHECK_EQ(pol_jwks_fetch_next_ms(f), 400); /* doubled */
    set_jwks(200, "AGAIN", "max-age=1");
    next(&c);
    CHECK_STR(c.body, "AGAIN");
    CHECK_EQ(c.bodies, 2);
    stop(f);
}

static void test_server_down(void)
{
    consumer_t c = {0};
    pol_jwks_fetch_t *f = start(&c, authz_rig_closed_port(), 600000, 300, 600000);
    next(&c);
    CHECK_EQ(c.bodies, 0);
    CHECK_EQ(c.errors, 1);
    CHECK_CONTAINS(c.error, "connect");
    stop(f);
}

static void test_refresh_and_stop_in_callback(void)
{
    consumer_t c = {0};
    set_jwks(200, "R1", "");
    pol_jwks_fetch_t *f = start(&c, 0, 600000, 500, 600000);
    CHECK_EQ(pol_jwks_fetch_refresh(f), 0); /* one is in flight */
    next(&c);
    CHECK_EQ(pol_jwks_fetch_refresh(f), 0); /* too soon (min_refresh_ms) */
    int never = 0;
    authz_rig_run_until(&loop, &never, 700);
    set_jwks(200, "R2", "");
    c.stop_in_cb = f;
    CHECK_EQ(pol_jwks_fetch_refresh(f), 1);
    next(&c);
    CHECK_STR(c.body, "R2");
    /* stopped from inside on_body: nothing more comes */
    c.flag = 0;
    authz_rig_run_until(&loop, &never, 700);
    CHECK_EQ(c.flag, 0);
}

static void test_bad_config(void)
{
    char err[256];
    pol_jwks_fetch_config_t cfg = {.url = "file:///etc/passwd"};
    CHECK(!pol_jwks_fetch_start(&loop, &cfg, err, sizeof(err)));
    CHECK_CONTAINS(err, "not an http:// or https:// URL");
    cfg.url = "http://127.0.0.1:1/";
    cfg.min_refresh_ms = 10;
    cfg.max_refresh_ms = 5;
    CHECK(!pol_jwks_fetch_start(&loop, &cfg, err, sizeof(err)));
    CHECK_CONTAINS(err, "min_refresh_ms");
}

int main(int argc, char **argv)
{
    CHECK(argc == 3);
    authz_rig_start(&rig, argv[1], argv[2]);
    uv_loop_init(&loop);
    RUN(test_max_age_refresh);
    RUN(test_bounds);
    RUN(test_failure_keeps_body);
    RUN(test_server_down);
    RUN(test_refresh_and_stop_in_callback);
    RUN(test_bad_config);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ(uv_loop_close(&loop), 0);
    fprintf(stderr, "ok\n");
    return 0;
}
