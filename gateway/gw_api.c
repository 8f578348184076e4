/*
 * gateway/gw_api.c: building, sharing and reading the gateway's API bundle (gateway/gw_api.h).
 */
#include "gateway/gw_api.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gw_api {
    atomic_uint refs;
    uint64_t generation;
    gw_schema_t *schema;
    gw_routes_t *routes;
    gw_method_t *methods; /* sorted by path */
    size_t n_methods;
};

typedef struct {
    gw_api_on_error_t fn;
    void *ctx;
} err_fwd_t;

static void route_error(void *ctx, const char *grpc_path, const char *error)
{
    err_fwd_t *f = ctx;
    if (f->fn)
        f->fn(f->ctx, grpc_path, error);
}

static int by_path(const void *a, const void *b)
{
    return strcmp(((const gw_method_t *)a)->path, ((const gw_method_t *)b)->path);
}

gw_api_t *gw_api_build(const mesh_desc_pool_t *pool, uint64_t generation,
                       gw_api_on_error_t on_error, void *ctx, char *err, size_t errlen)
{
    gw_api_t *api = calloc(1, sizeof(*api));
    if (!api) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    atomic_init(&api->refs, 1);
    api->generation = generation;
    api->schema = gw_schema_build_from_pool(pool, err, errlen);
    api->routes = gw_routes_new();
    if (!api->schema || !api->routes)
        goto fail;
    size_t total = 0;
    for (size_t i = 0; i < mesh_desc_pool_service_count(pool); i++)
        total += mesh_desc_pool_service(pool, i)->n_methods;
    api->methods = calloc(total ? total : 1, sizeof(*api->methods));
    if (!api->methods) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < mesh_desc_pool_service_count(pool); i++) {
        const mesh_desc_service_t *s = mesh_desc_pool_service(pool, i);
        for (size_t k = 0; k < s->n_methods; k++) {
            const mesh_desc_method_t *dm = &s->methods[k];
            gw_method_t *m = &api->methods[api->n_methods];
            m->input = gw_schema_find_message(api->schema, dm->input_type);
            m->output = gw_schema_find_message(api->schema, dm->output_type);
            if (!m->input || !m->output) {
                if (on_error)
                    on_error(ctx, dm->path, "message type not found in the schema");
                continue;
            }
            m->path = strdup(dm->path);
            if (!m->path) {
                snprintf(err, errlen, "out of memory");
                goto fail;
            }
            m->kind = dm->kind;
            api->n_methods++;
            err_fwd_t fwd = {on_error, ctx};
            if (gw_routes_add_method(api->routes, dm->path, dm->proto ? dm->proto->options : NULL) <
                0)
                route_error(&fwd, dm->path, gw_routes_error(api->routes));
        }
    }
    qsort(api->methods, api->n_methods, sizeof(*api->methods), by_path);
    return api;
fail:
    gw_api_unref(api);
    return NULL;
}

gw_api_t *gw_api_ref(gw_api_t *api)
{
    atomic_fetch_add_explicit(&api->refs, 1, memory_order_relaxed);
    return api;
}

void gw_api_unref(gw_api_t *api)
{
    if (!api || atomic_fetch_sub_explicit(&api->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < api->n_methods; i++)
        free((char *)api->methods[i].path);
    free(api->methods);
    gw_routes_free(api->routes);
    gw_schema_unref(api->schema);
    free(api);
}

const gw_routes_t *gw_api_routes(const gw_api_t *api)
{
    return api->routes;
}

gw_schema_t *gw_api_schema(const gw_api_t *api)
{
    return api->schema;
}

const gw_method_t *gw_api_method(const gw_api_t *api, const char *path, size_t len)
{
    size_t lo = 0, hi = api->n_methods;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const char *p = api->methods[mid].path;
        int c = strncmp(p, path, len);
        if (c == 0 && p[len] != '\0')
            c = 1;
        if (c == 0)
            return &api->methods[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

size_t gw_api_method_count(const gw_api_t *api)
{
    return api->n_methods;
}

uint64_t gw_api_generation(const gw_api_t *api)
{
    return api->generation;
}
