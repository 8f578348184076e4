/*
 * gateway/gw_api.h: the gateway's API bundle: what a worker needs to serve HTTP/JSON calls,
 * built once from a descriptor pool and shared read-only by every worker.
 *
 * A bundle holds the schema tables (gateway/schema.h), the route table (gateway/http_routes.h:
 * google.api.http rules and the default POST /pkg.Service/Method of every method) and, per
 * gRPC method, its input and output message types and call kind. It is immutable and
 * reference counted (atomics): the control loop builds a new bundle when the set of known
 * descriptors changes and hands every worker a reference by message; a worker swaps its
 * pointer and drops the old reference, and each request holds a reference for its life, so
 * nothing is locked per request.
 */
#ifndef GW_API_H
#define GW_API_H

#include <stddef.h>
#include <stdint.h>

#include "gateway/http_routes.h"
#include "gateway/schema.h"
#include "grpc/descriptors.h"

/** One gRPC method as the gateway calls it. */
typedef struct gw_method {
    const char *path; /* "/pkg.Service/Method" (owned by the bundle) */
    const gw_message_t *input;
    const gw_message_t *output;
    mesh_call_kind_t kind;
} gw_method_t;

typedef struct gw_api gw_api_t;

/** Called for each method whose HTTP routes could not be added (the others still are). */
typedef void (*gw_api_on_error_t)(void *ctx, const char *grpc_path, const char *error);

/**
 * Builds a bundle from pool, whose model must be built (mesh_desc_pool_build). generation is
 * the caller's version of the pool (reported back by gw_api_generation). Methods whose
 * message types cannot be resolved or whose routes conflict are reported through on_error
 * (may be NULL) and left out. Returns a bundle with one reference, or NULL with err set.
 */
gw_api_t *gw_api_build(const mesh_desc_pool_t *pool, uint64_t generation,
                       gw_api_on_error_t on_error, void *ctx, char *err, size_t errlen);

/** Takes a reference (thread-safe); returns api. */
gw_api_t *gw_api_ref(gw_api_t *api);

/** Drops a reference (thread-safe); the last frees the bundle. NULL is ignored. */
void gw_api_unref(gw_api_t *api);

/** The route table. */
const gw_routes_t *gw_api_routes(const gw_api_t *api);

/** The schema (for Any type resolution: gw_resolve_in_schema). */
gw_schema_t *gw_api_schema(const gw_api_t *api);

/** The method with gRPC path path[0..len), or NULL. Allocates nothing. */
const gw_method_t *gw_api_method(const gw_api_t *api, const char *path, size_t len);

/** Number of methods. */
size_t gw_api_method_count(const gw_api_t *api);

/** The generation given to gw_api_build. */
uint64_t gw_api_generation(const gw_api_t *api);

#endif
