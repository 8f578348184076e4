/*
 * policy/jwks_fetch.h: a periodic fetch of one URL (a JWKS document) through
 * transport/http_fetch.h on a libuv loop, for the JWT filter.
 *
 * The first fetch starts at once; each good answer (200) is handed to on_body, and the next
 * fetch comes after the response's Cache-Control max-age (bounded by min_refresh_ms and
 * max_refresh_ms; no-cache / no-store count as 0), or after refresh_ms when it has none. A
 * failed fetch (another status, timeout, refused, too large) is reported to on_error and
 * retried after retry_ms, doubling up to refresh_ms; the consumer keeps what on_body last gave
 * it (nothing is called with an empty or bad body). This module only fetches: the JWT helper
 * parses the body. pol_jwks_fetch_refresh() asks for a fetch now (an unknown kid), at most once
 * per min_refresh_ms.
 *
 * Every function must be called on the loop's thread; callbacks run on it and may stop the
 * fetcher.
 */
#ifndef POL_JWKS_FETCH_H
#define POL_JWKS_FETCH_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct pol_jwks_fetch pol_jwks_fetch_t;

/** Settings; 0/NULL fields take their defaults. Copied by pol_jwks_fetch_start(). */
typedef struct pol_jwks_fetch_config {
    const char *url;         /* required: http:// or https:// */
    uint64_t refresh_ms;     /* without max-age; default 300000 (5 min) */
    uint64_t retry_ms;       /* first retry after a failure; default 1000 */
    uint64_t min_refresh_ms; /* lower bound of max-age and of refresh(); default 30000 */
    uint64_t max_refresh_ms; /* upper bound of max-age; default 86400000 (24 h) */
    uint64_t timeout_ms;     /* per fetch; default 5000 */
    size_t max_body;         /* default 1 MiB */
    const char *ca_file;     /* https: CA bundle instead of the system's */
    /** A good body (valid during the call); NUL-terminated, len excludes the NUL. */
    void (*on_body)(void *ctx, const char *body, size_t len);
    /** A failed fetch: "jwks_fetch: GET URL: <cause>" (the consumer keeps its last body). */
    void (*on_error)(void *ctx, const char *msg);
    void *ctx;
} pol_jwks_fetch_config_t;

/** Starts fetching on loop. NULL on a bad configuration (err says why) or out of memory. */
pol_jwks_fetch_t *pol_jwks_fetch_start(uv_loop_t *loop, const pol_jwks_fetch_config_t *cfg,
                                       char *err, size_t errlen);

/** Fetches now unless a fetch is in flight or the last one started under min_refresh_ms ago
 *  (returns 1 when a fetch was started, else 0). */
int pol_jwks_fetch_refresh(pol_jwks_fetch_t *f);

/** The delay chosen after the last answer, in ms (0 before the first). */
uint64_t pol_jwks_fetch_next_ms(const pol_jwks_fetch_t *f);

/** Stops: no callback after this; memory is freed once the handles closed (keep running the
 *  loop). Safe inside a callback. */
void pol_jwks_fetch_stop(pol_jwks_fetch_t *f);

#endif
