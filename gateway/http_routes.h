/*
 * gateway/http_routes.h: the gateway's route table, (HTTP method, path) -> gRPC method, and
 * the query-string reader.
 *
 * Routes come from three places: the default `POST /pkg.Service/Method` (body "*") for every
 * method, a method's `google.api.http` rule, and the rule's additional_bindings. Building
 * checks templates and conflicts (two routes of one HTTP method that match exactly the same
 * requests: the error names both) and allocates; lookup allocates nothing: it tries the routes
 * of the request's method in precedence order (gw_path_template_compare: literal segments beat
 * variables, a verb template beats one without, `**` goes last) and returns the first match
 * with its captures pointing into the request target. Query parameters are returned as
 * (field path, value) pairs for the transcoder to apply.
 */
#ifndef GW_HTTP_ROUTES_H
#define GW_HTTP_ROUTES_H

#include <stddef.h>
#include <sys/types.h>

#include "gateway/http_rule.h"
#include "gateway/path_template.h"
#include "grpc/descriptors.h"

/** One route; all strings are owned by the table. */
typedef struct {
    char *http_method;   /**< "GET", "POST", ... or a custom kind, as written */
    char *grpc_path;     /**< "/pkg.Service/Method" */
    char *body;          /**< NULL: no request body; "*": the whole message; else a field path */
    char *response_body; /**< NULL: the whole response; else a field path */
    int is_default;      /**< 1 for the default POST /pkg.Service/Method route */
    gw_path_template_t tmpl;
} gw_route_t;

/** A lookup's result: the route and its captures (pointing into the request target). */
typedef struct {
    const gw_route_t *route;
    gw_capture_t captures[GW_MAX_CAPTURES];
    size_t n_captures;
    /** The query string after '?' (without it; not decoded), length 0 when none. */
    const char *query;
    size_t query_len;
} gw_match_t;

/** Lookup outcomes. */
typedef enum {
    GW_ROUTE_FOUND = 0,
    GW_ROUTE_NOT_FOUND = 1,          /**< no route matches the path: 404 */
    GW_ROUTE_METHOD_NOT_ALLOWED = 2, /**< the path matches routes of other methods only: 405 */
} gw_route_result_t;

typedef struct gw_routes gw_routes_t;

/** A new empty table, or NULL when out of memory. */
gw_routes_t *gw_routes_new(void);

/** Frees the table and its routes. */
void gw_routes_free(gw_routes_t *rt);

/** Adds one route. body and response_body may be NULL or "" for none. Returns 0, 1 when an
 * identical route (same method, template, gRPC method, body and response body) is already
 * there (nothing added), or -1 with the error set: bad template (with its position), body or
 * response_body not a field path, or a conflict with a route already in the table. */
int gw_routes_add(gw_routes_t *rt, const char *http_method, const char *tmpl, const char *grpc_path,
                  const char *body, const char *response_body);

/** Adds a rule's pattern and its additional_bindings for grpc_path. A rule without a pattern
 * adds nothing. Returns the number of routes added, or -1 (routes added before the error
 * stay). */
int gw_routes_add_rule(gw_routes_t *rt, const char *grpc_path, const gw_http_rule_t *rule);

/** Adds the default route for grpc_path, then the google.api.http rule found in the method's
 * options (opts may be NULL). Returns the number of routes added or -1. */
int gw_routes_add_method(gw_routes_t *rt, const char *grpc_path,
                         const Google__Protobuf__MethodOptions *opts);

/** Called by gw_routes_add_pool() for a method whose routes could not all be added. */
typedef void (*gw_routes_on_error_t)(void *ctx, const char *grpc_path, const char *error);

/** gw_routes_add_method() for every method of every service in the pool's model
 * (mesh_desc_pool_build() first). With on_error NULL it stops at the first error and returns
 * -1; otherwise each failing method is reported (the routes it added before the error stay)
 * and the others are still added. Returns the number of routes added, or -1. */
int gw_routes_add_pool(gw_routes_t *rt, const mesh_desc_pool_t *pool, gw_routes_on_error_t on_error,
                       void *ctx);

/** Finds the route for a request. target is the request target ("/v1/books/1?x=2"), method
 * the HTTP method (case-sensitive). Fills *m on GW_ROUTE_FOUND. Allocates nothing. */
gw_route_result_t gw_routes_lookup(const gw_routes_t *rt, const char *method, size_t method_len,
                                   const char *target, size_t target_len, gw_match_t *m);

/** Number of routes. */
size_t gw_routes_count(const gw_routes_t *rt);

/** The i-th route in lookup order (grouped by method, then by precedence). */
const gw_route_t *gw_routes_get(const gw_routes_t *rt, size_t i);

/** The last error, "" if none. */
const char *gw_routes_error(const gw_routes_t *rt);

/** 1 when the request field path (len bytes) is bound by the route's path variables or lies
 * under its body field (or the body is "*"): a query parameter naming it must be ignored or
 * refused, per google.api.http (only fields not in the path or body come from the query). */
int gw_route_binds_field(const gw_route_t *r, const char *field, size_t len);

/* ------------------------------------------------------------------------------------------
 * Query strings
 * ------------------------------------------------------------------------------------------ */

/** One query parameter, decoded ('+' is a space, %XX escapes decoded). */
typedef struct {
    const char *key; /**< NUL-terminated, in the caller's buffer */
    size_t key_len;
    const char *value; /**< NUL-terminated, in the caller's buffer; "" for "k" or "k=" */
    size_t value_len;
    int is_field_path; /**< 1 when key is IDENT{.IDENT} (else the transcoder decides) */
} gw_query_param_t;

/** Walks a query string ("a=1&b.c=x%20y&a=2"), one parameter at a time, in order; a repeated
 * key comes once per occurrence (the transcoder appends to a repeated field). */
typedef struct {
    const char *p, *end;
} gw_query_iter_t;

/** Starts walking query[0..len) (without the '?'). */
void gw_query_iter_init(gw_query_iter_t *it, const char *query, size_t len);

/** The next parameter, decoded into buf (cap bytes; the query's length + 2 always suffices).
 * Empty pieces ("a=1&&b=2") are skipped. Returns 1 with *out set, 0 at the end, or -1 on a
 * malformed escape, an empty key or a too small buffer, with err set. Allocates nothing. */
int gw_query_next(gw_query_iter_t *it, char *buf, size_t cap, gw_query_param_t *out, char *err,
                  size_t errlen);

#endif
