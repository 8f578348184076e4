/*
 * registry/reconciler.c: merging the sources' routing tables into one (registry/reconciler.h).
 */
#include "registry/reconciler.h"

#include <string.h>

void mesh_reconciler_init(mesh_reconciler_t *r)
{
    memset(r, 0, sizeof(*r));
}

void mesh_reconciler_destroy(mesh_reconciler_t *r)
{
    for (int i = 0; i < MESH_RECONCILER_SOURCES; i++)
        if (r->sources[i])
            mesh_routes_unref(r->sources[i]);
    memset(r, 0, sizeof(*r));
}

void mesh_reconciler_set(mesh_reconciler_t *r, mesh_route_source_t source, mesh_routes_t *t)
{
    if ((unsigned)source >= MESH_RECONCILER_SOURCES) {
        if (t)
            mesh_routes_unref(t);
        return;
    }
    if (r->sources[source])
        mesh_routes_unref(r->sources[source]);
    r->sources[source] = t;
}

/* Adds every instance of table t to b, keeping each instance's own fields. */
static int add_table(mesh_route_builder_t *b, const mesh_routes_t *t)
{
    for (size_t i = 0; i < mesh_routes_count(t); i++) {
        const mesh_route_service_t *s = mesh_routes_at(t, i);
        for (size_t j = 0; j < s->n_instances; j++) {
            const mesh_route_instance_t *in = &s->instances[j];
            if (mesh_route_builder_add(b, s->name, in->addr, in->methods, in->n_methods, in->source,
                                       in->node, in->zone, in->weight) != 0)
                return -1;
        }
    }
    return 0;
}

mesh_routes_t *mesh_reconciler_build(const mesh_reconciler_t *r)
{
    mesh_route_builder_t *b = mesh_route_builder_new();
    if (!b)
        return NULL;
    for (int i = 0; i < MESH_RECONCILER_SOURCES; i++) {
        if (r->sources[i] && add_table(b, r->sources[i]) != 0) {
            mesh_route_builder_free(b);
            return NULL;
        }
    }
    return mesh_route_builder_finish(b);
}
