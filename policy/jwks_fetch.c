/*
 * policy/jwks_fetch.c: the periodic JWKS fetch (see policy/jwks_fetch.h).
 *
 * One timer and at most one request in flight. The timer starts a fetch; its answer sets the
 * next delay (max-age, refresh_ms, or the doubling retry) and restarts the timer.
 */
#include "policy/jwks_fetch.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "transport/http_fetch.h"

#define JWKS_REFRESH_MS     300000
#define JWKS_RETRY_MS       1000
#define JWKS_MIN_REFRESH_MS 30000
#define JWKS_MAX_REFRESH_MS 86400000
#define JWKS_TIMEOUT_MS     5000

struct pol_jwks_fetch {
    uv_loop_t *loop;
    pol_jwks_fetch_config_t cfg; /* url and ca_file are our copies */
    mesh_http_fetch_t *http;
    mesh_http_req_t *req; /* in flight */
    uv_timer_t timer;
    uint64_t retry_ms;   /* the next retry's delay */
    uint64_t next_ms;    /* last delay chosen */
    uint64_t started_at; /* loop time of the last fetch's start */
    int fetched_once;
    int stopped;
    int in_cb;
};

static uint64_t clamp(uint64_t v, uint64_t lo, uint64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* max-age of a Cache-Control value in seconds (no-cache / no-store: 0), or -1 when none. */
static long long max_age(const char *cc)
{
    long long found = -1;
    for (const char *p = cc; p && *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        size_t n = strcspn(p, ",");
        if (n >= 8 && strncasecmp(p, "max-age=", 8) == 0 && isdigit((unsigned char)p[8]))
            found = strtoll(p + 8, NULL, 10);
        else if ((n >= 8 && strncasecmp(p, "no-cache", 8) == 0) ||
                 (n >= 8 && strncasecmp(p, "no-store", 8) == 0))
            return 0;
        p += n;
    }
    return found;
}

static void fetch_now(pol_jwks_fetch_t *f);

static void on_timer(uv_timer_t *t)
{
    fetch_now(t->data);
}

static void schedule(pol_jwks_fetch_t *f, uint64_t ms)
{
    f->next_ms = ms;
    uv_timer_start(&f->timer, on_timer, ms, 0);
}

static void on_answer(void *ctx, int status, const mesh_http_response_t *resp, const char *body,
                      size_t len, const char *error)
{
    pol_jwks_fetch_t *f = ctx;
    f->req = NULL;
    f->fetched_once = 1;
    f->in_cb = 1;
    if (status == 200) {
        long long age = max_age(mesh_http_response_header(resp, "cache-control"));
        uint64_t next =
            age < 0 ? f->cfg.refresh_ms
                    : clamp((uint64_t)age * 1000, f->cfg.min_refresh_ms, f->cfg.max_refresh_ms);
        f->retry_ms = f->cfg.retry_ms;
        schedule(f, next);
        if (f->cfg.on_body)
            f->cfg.on_body(f->cfg.ctx, body, len);
    } else {
        char msg[768];
        if (status > 0)
            snprintf(msg, sizeof(msg), "jwks_fetch: GET %s: answered %d %s", f->cfg.url, status,
                     mesh_http_response_reason(resp));
        else
            snprintf(msg, sizeof(msg), "jwks_fetch: GET %s: %s", f->cfg.url, error);
        schedule(f, f->retry_ms);
        f->retry_ms = f->retry_ms * 2 > f->cfg.refresh_ms ? f->cfg.refresh_ms : f->retry_ms * 2;
        if (f->cfg.on_error)
            f->cfg.on_error(f->cfg.ctx, msg);
    }
    f->in_cb = 0;
    if (f->stopped)
        pol_jwks_fetch_stop(f);
}

static void fetch_now(pol_jwks_fetch_t *f)
{
    if (f->req || f->stopped)
        return;
    mesh_http_request_t q = {.url = f->cfg.url,
                             .timeout_ms = f->cfg.timeout_ms,
                             .max_response = f->cfg.max_body,
                             .ca_file = f->cfg.ca_file};
    mesh_http_header_t accept = {"Accept", "application/json"};
    q.headers = &accept;
    q.n_headers = 1;
    f->started_at = uv_now(f->loop);
    f->req = mesh_http_fetch_request(f->http, &q, on_answer, f);
    if (!f->req) /* out of memory: try again later */
        schedule(f, f->retry_ms);
}

pol_jwks_fetch_t *pol_jwks_fetch_start(uv_loop_t *loop, const pol_jwks_fetch_config_t *cfg,
                                       char *err, size_t errlen)
{
    char dummy[1];
    if (!err) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    if (!cfg || !cfg->url ||
        (strncmp(cfg->url, "http://", 7) != 0 && strncmp(cfg->url, "https://", 8) != 0)) {
        snprintf(err, errlen, "jwks_fetch: url: %s is not an http:// or https:// URL",
                 cfg && cfg->url ? cfg->url : "(missing)");
        return NULL;
    }
    pol_jwks_fetch_t *f = calloc(1, sizeof(*f));
    if (!f) {
        snprintf(err, errlen, "jwks_fetch: out of memory");
        return NULL;
    }
    f->loop = loop;
    f->cfg = *cfg;
    f->cfg.url = strdup(cfg->url);
    f->cfg.ca_file = cfg->ca_file ? strdup(cfg->ca_file) : NULL;
    uint64_t *fields[] = {&f->cfg.refresh_ms, &f->cfg.min_refresh_ms, &f->cfg.max_refresh_ms,
                          &f->cfg.retry_ms, &f->cfg.timeout_ms};
    const uint64_t defaults[] = {JWKS_REFRESH_MS, JWKS_MIN_REFRESH_MS, JWKS_MAX_REFRESH_MS,
                                 JWKS_RETRY_MS, JWKS_TIMEOUT_MS};
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
        if (!*fields[i])
            *fields[i] = defaults[i];
    if (f->cfg.min_refresh_ms > f->cfg.max_refresh_ms) {
        snprintf(err, errlen, "jwks_fetch: min_refresh_ms is above max_refresh_ms");
        free((char *)f->cfg.url);
        free((char *)f->cfg.ca_file);
        free(f);
        return NULL;
    }
    f->retry_ms = f->cfg.retry_ms;
    f->http = mesh_http_fetch_new(loop);
    if (!f->cfg.url || (cfg->ca_file && !f->cfg.ca_file) || !f->http) {
        snprintf(err, errlen, "jwks_fetch: cannot make the HTTP client");
        if (f->http)
            mesh_http_fetch_close(f->http);
        free((char *)f->cfg.url);
        free((char *)f->cfg.ca_file);
        free(f);
        return NULL;
    }
    uv_timer_init(loop, &f->timer);
    f->timer.data = f;
    fetch_now(f); /* the answer always comes later, on the loop */
    return f;
}

int pol_jwks_fetch_refresh(pol_jwks_fetch_t *f)
{
    if (f->stopped || f->req)
        return 0;
    if (f->fetched_once && uv_now(f->loop) - f->started_at < f->cfg.min_refresh_ms)
        return 0;
    uv_timer_stop(&f->timer);
    fetch_now(f);
    return f->req != NULL;
}

uint64_t pol_jwks_fetch_next_ms(const pol_jwks_fetch_t *f)
{
    return f->next_ms;
}

static void timer_closed(uv_handle_t *h)
{
    pol_jwks_fetch_t *f = h->data;
    free((char *)f->cfg.url);
    free((char *)f->cfg.ca_file);
    free(f);
}

void pol_jwks_fetch_stop(pol_jwks_fetch_t *f)
{
    if (!f)
        return;
    if (f->in_cb) { /* finished when the callback returns */
        f->stopped = 1;
        return;
    }
    if (f->http) {
        mesh_http_fetch_close(f->http); /* drops a request in flight */
        f->http = NULL;
    }
    f->req = NULL;
    f->stopped = 1;
    uv_timer_stop(&f->timer);
    if (!uv_is_closing((uv_handle_t *)&f->timer))
        uv_close((uv_handle_t *)&f->timer, timer_closed);
}
