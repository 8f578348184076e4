/*
 * registry/reconciler.c: merging the sources' routing tables into one, incrementally
 * (registry/reconciler.h).
 */
#include "registry/reconciler.h"

#include <stdlib.h>
#include <string.h>

void mesh_reconciler_init(mesh_reconciler_t *r)
{
    memset(r, 0, sizeof(*r));
}

void mesh_reconciler_destroy(mesh_reconciler_t *r)
{
    for (int i = 0; i < MESH_RECONCILER_SOURCES; i++) {
        mesh_routes_unref(r->sources[i]);
        mesh_routes_unref(r->applied[i]);
    }
    mesh_routes_unref(r->merged);
    mesh_route_svc_builder_free(r->sb);
    free(r->edits);
    memset(r, 0, sizeof(*r));
}

void mesh_reconciler_set(mesh_reconciler_t *r, mesh_route_source_t source, mesh_routes_t *t)
{
    if ((unsigned)source >= MESH_RECONCILER_SOURCES) {
        mesh_routes_unref(t);
        return;
    }
    mesh_routes_unref(r->sources[source]);
    r->sources[source] = t;
}

typedef struct diff_ctx {
    mesh_reconciler_t *r;
    int failed;
} diff_ctx_t;

/* Collects the name of a service that differs in one source. */
static void on_diff(void *ud, const char *name, const mesh_route_svc_t *before,
                    const mesh_route_svc_t *after)
{
    diff_ctx_t *d = ud;
    mesh_reconciler_t *r = d->r;
    if (d->failed)
        return;
    if (r->n_edits == r->edits_cap) {
        size_t nc = r->edits_cap ? r->edits_cap * 2 : 64;
        mesh_route_edit_t *ne = realloc(r->edits, nc * sizeof(*ne));
        if (!ne) {
            d->failed = 1;
            return;
        }
        r->edits = ne;
        r->edits_cap = nc;
    }
    r->edits[r->n_edits++] = (mesh_route_edit_t){.name = name, .svc = NULL};
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const mesh_route_edit_t *)a)->name, ((const mesh_route_edit_t *)b)->name);
}

/* The merged object of one service: shared when one source has it, else built. */
static int merge_service(mesh_reconciler_t *r, const char *name, mesh_route_svc_t **out)
{
    mesh_route_svc_t *objs[MESH_RECONCILER_SOURCES];
    int n = 0, only = -1;
    for (int i = 0; i < MESH_RECONCILER_SOURCES; i++) {
        objs[i] = mesh_routes_find(r->sources[i], name);
        if (objs[i]) {
            n++;
            only = i;
        }
    }
    *out = NULL;
    if (n == 0)
        return 0; /* gone from every source */
    if (n == 1) {
        *out = mesh_route_svc_ref(objs[only]);
        return 0;
    }
    if (!r->sb && !(r->sb = mesh_route_svc_builder_new()))
        return -1;
    for (int i = 0; i < MESH_RECONCILER_SOURCES; i++) {
        const mesh_route_service_t *s = mesh_route_svc_get(objs[i]);
        for (size_t j = 0; s && j < s->n_instances; j++)
            if (mesh_route_svc_builder_add_instance(r->sb, &s->instances[j]) < 0) {
                mesh_route_svc_builder_reset(r->sb);
                return -1;
            }
    }
    r->merges++;
    return mesh_route_svc_builder_finish(r->sb, name, out);
}

mesh_routes_t *mesh_reconciler_build(mesh_reconciler_t *r)
{
    int nonempty = 0, last = -1;
    for (int i = 0; i < MESH_RECONCILER_SOURCES; i++)
        if (mesh_routes_count(r->sources[i])) {
            nonempty++;
            last = i;
        }
    mesh_routes_t *m = NULL;
    r->rebuilt = 0;
    if (nonempty <= 1) {
        /* One source (or none): its table is the merged table. */
        m = last >= 0 ? mesh_routes_ref(r->sources[last]) : mesh_routes_update(NULL, NULL, 0);
        if (!m)
            return NULL;
    } else {
        diff_ctx_t d = {.r = r};
        r->n_edits = 0;
        for (int i = 0; i < MESH_RECONCILER_SOURCES; i++) {
            const mesh_routes_t *before = r->merged ? r->applied[i] : NULL;
            if (!r->merged || before != r->sources[i])
                mesh_routes_diff(before, r->sources[i], on_diff, &d);
        }
        if (d.failed)
            return NULL;
        if (r->n_edits > 1)
            qsort(r->edits, r->n_edits, sizeof(*r->edits), cmp_name);
        size_t n = 0;
        for (size_t i = 0; i < r->n_edits; i++)
            if (n == 0 || strcmp(r->edits[n - 1].name, r->edits[i].name) != 0)
                r->edits[n++] = r->edits[i];
        for (size_t i = 0; i < n; i++)
            if (merge_service(r, r->edits[i].name, &r->edits[i].svc) < 0) {
                for (size_t j = 0; j < i; j++)
                    mesh_route_svc_unref(r->edits[j].svc);
                return NULL;
            }
        r->rebuilt = n;
        m = mesh_routes_update(r->merged, r->edits, n);
        if (!m)
            return NULL;
    }
    for (int i = 0; i < MESH_RECONCILER_SOURCES; i++) {
        mesh_routes_unref(r->applied[i]);
        r->applied[i] = mesh_routes_ref(r->sources[i]);
    }
    mesh_routes_unref(r->merged);
    r->merged = m;
    return mesh_routes_ref(m);
}
