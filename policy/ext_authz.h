/*
 * policy/ext_authz.h: external authorization (SSO) for the policy chain: ask an outside
 * service whether a call may go on, and who the caller is.
 *
 * Two ways to ask (one per instance):
 *  - HTTP check, like nginx's auth_request and Envoy's ext_authz HTTP service: a request (GET
 *    by default) to a configured URL carrying the call's credential header fields
 *    (authorization, cookie and a configured list) plus x-meshd-path (":path" of the call),
 *    x-meshd-peer (the caller's address) and x-request-id when known. 2xx allows, and the
 *    identity is the value of a configured response header (default x-meshd-identity); 401
 *    denies with UNAUTHENTICATED, 403 with PERMISSION_DENIED, the status line and the start of
 *    the body as the reason. Anything else (another status, a timeout, a refused connection, a
 *    response over its bound) is a failure.
 *  - gRPC check, wire-compatible with Envoy's envoy.service.auth.v3.Authorization/Check
 *    (proto/ext_authz/, a subset with Envoy's names and field numbers) over h2c with
 *    transport/grpc_client.h: CheckResponse.status OK allows, and the identity is the
 *    configured header among ok_response.headers; any other status denies (UNAUTHENTICATED when
 *    the code is UNAUTHENTICATED or denied_response.status is 401, else PERMISSION_DENIED) with
 *    status.message (or denied_response.body) as the reason. A call that fails (any non-OK gRPC
 *    status of the Check call itself, a broken response) is a failure.
 * A failure is fail-closed by default: the call is rejected with error_status (UNAVAILABLE
 * unless configured: the service gave no verdict, so the caller may retry; Envoy answers 403
 * here) and "meshd: ext_authz: authorization service failed: <cause>". With fail_open the call
 * is allowed without an identity and the result says the service failed.
 *
 * ALLOW verdicts are cached per instance (one instance per worker loop; nothing is shared),
 * keyed by the forwarded credential fields and, unless cache_any_path, the call's path (an
 * authorization service may decide per method): a bounded table (cache_entries, oldest entry
 * replaced first) with a TTL (default 30 s); a hit is a hash lookup and a compare, with no
 * allocation. Denials and failures are never cached.
 *
 * Every function must be called on the instance's loop thread; callbacks run on it.
 */
#ifndef POL_EXT_AUTHZ_H
#define POL_EXT_AUTHZ_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct pol_authz pol_authz_t;
typedef struct pol_authz_call pol_authz_call_t;

/** How the service is asked. */
typedef enum {
    POL_AUTHZ_HTTP = 0, /* HTTP check (target is a URL) */
    POL_AUTHZ_GRPC = 1, /* Envoy's Authorization/Check over h2c (target is "host:port") */
} pol_authz_mode_t;

/** Settings of an instance; 0/NULL fields take their defaults. Copied by pol_authz_new(). */
typedef struct pol_authz_config {
    pol_authz_mode_t mode;
    const char *target;          /* required: http(s)://host:port/path or host:port */
    const char *const *headers;  /* forwarded besides authorization and cookie */
    size_t n_headers;            /* (names, case-insensitive; not x-meshd-*, not pseudo) */
    const char *identity_header; /* response header with the identity; default
                                    "x-meshd-identity" */
    const char *http_method;     /* HTTP check method; default "GET" */
    uint64_t timeout_ms;         /* per check; default 1000 */
    int fail_open;               /* allow (without identity) when the service fails */
    int error_status;            /* gRPC status when it fails closed; default UNAVAILABLE (14) */
    uint64_t cache_ttl_ms;       /* default 30000 */
    size_t cache_entries;        /* default 1024 */
    int cache_off;               /* no cache */
    int cache_any_path;          /* one verdict per credentials for every path */
    size_t max_response;         /* largest check response body; default 64 KiB */
} pol_authz_config_t;

/** One request header field of the call (not NUL-terminated; names compared case-blind). */
typedef struct pol_authz_field {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} pol_authz_field_t;

/** What the check sees of a call. Only valid during pol_authz_check(). */
typedef struct pol_authz_req_info {
    const char *path;       /* ":path", e.g. "/pkg.Service/Method"; required */
    const char *authority;  /* ":authority" or NULL */
    const char *peer;       /* the caller's "ip:port" or NULL */
    const char *request_id; /* x-request-id / trace id or NULL */
    const pol_authz_field_t *fields;
    size_t n_fields;
} pol_authz_req_info_t;

/** The verdict. */
typedef enum {
    POL_AUTHZ_ALLOW = 0,
    POL_AUTHZ_DENY = 1,
} pol_authz_verdict_t;

/** A verdict with what the chain needs to act on it. Strings: see pol_authz_check(). */
typedef struct pol_authz_result {
    pol_authz_verdict_t verdict;
    int grpc_status;      /* 0 on ALLOW; UNAUTHENTICATED, PERMISSION_DENIED or error_status */
    int http_status;      /* for HTTP callers: 200, 401, 403, or 503/403 for a failure */
    const char *identity; /* ALLOW: the identity the service returned, or NULL */
    const char *message;  /* DENY: "meshd: ext_authz: ..."; ALLOW after a failure (fail
                             open): why the service failed; else "" */
    int cached;           /* the verdict came from the cache */
    int service_failed;   /* the service gave no verdict (timeout, connect, 5xx, ...) */
} pol_authz_result_t;

/** Status of pol_authz_check(). */
typedef enum {
    POL_AUTHZ_DONE = 0,    /* *out holds the verdict now */
    POL_AUTHZ_PENDING = 1, /* cb will run later on the loop, unless pol_authz_cancel() */
} pol_authz_status_t;

/** The verdict of a pending check; res and its strings are valid during the call only. */
typedef void (*pol_authz_cb)(void *ctx, const pol_authz_result_t *res);

/**
 * An instance on loop. NULL on a bad configuration or when the client cannot be made; err then
 * says why ("ext_authz: target: ...").
 */
pol_authz_t *pol_authz_new(uv_loop_t *loop, const pol_authz_config_t *cfg, char *err,
                           size_t errlen);

/**
 * Checks a call. DONE: *out holds the verdict (a cached ALLOW, or a result that needed no
 * service: a credential value with CR/LF/NUL is denied, and a check that cannot start fails
 * as configured); its strings stay valid until the next call into the instance. PENDING: the
 * service was asked; *call is the handle for pol_authz_cancel(), and cb(ctx, result) runs
 * exactly once later on the loop unless cancelled (cb is required). A call whose path or peer
 * cannot be sent in an HTTP check (a line break) is denied, never failed open. A cache hit
 * allocates nothing.
 */
pol_authz_status_t pol_authz_check(pol_authz_t *a, const pol_authz_req_info_t *info,
                                   pol_authz_result_t *out, pol_authz_cb cb, void *ctx,
                                   pol_authz_call_t **call);

/** Drops a pending check (the call went away): its callback is not called. */
void pol_authz_cancel(pol_authz_call_t *call);

/** Counters of an instance. */
typedef struct pol_authz_stats {
    uint64_t checks;                  /* pol_authz_check() calls */
    uint64_t cache_hits;              /* answered from the cache */
    uint64_t asked;                   /* requests sent to the service */
    uint64_t allowed, denied, failed; /* service answers by kind (failed: no verdict) */
    size_t cache_size;                /* entries in the cache (live or expired) */
} pol_authz_stats_t;

/** Fills *out with the instance's counters. */
void pol_authz_stats(const pol_authz_t *a, pol_authz_stats_t *out);

/** Frees the instance: pending checks are dropped without callbacks; handles close
 *  asynchronously (keep running the loop). */
void pol_authz_free(pol_authz_t *a);

#endif
