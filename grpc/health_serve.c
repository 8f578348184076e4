/*
 * grpc/health_serve.c: the mesh entry's grpc.health.v1 answers from the routing table, sans
 * I/O (grpc/health_serve.h). The services that left the table are kept in an array sorted by
 * name (binary search per Check of an unknown name; inserts and removals per table change).
 */
#include "grpc/health_serve.h"

#include <stdlib.h>
#include <string.h>

typedef struct gone {
    char *name;
    uint64_t at_ms; /* when it left */
} gone_t;

struct mesh_health_entry {
    gone_t *gone; /* sorted by name */
    size_t n, cap;
    uint64_t ttl_ms;
    int oom; /* an insert failed during the current diff */
};

mesh_health_entry_t *mesh_health_entry_new(uint64_t gone_ttl_ms)
{
    mesh_health_entry_t *e = calloc(1, sizeof(*e));
    if (e)
        e->ttl_ms = gone_ttl_ms ? gone_ttl_ms : MESH_HEALTH_GONE_TTL_MS;
    return e;
}

void mesh_health_entry_free(mesh_health_entry_t *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->n; i++)
        free(e->gone[i].name);
    free(e->gone);
    free(e);
}

/* The position of name in the gone array, or where it would go (*found set). */
static size_t gone_find(const mesh_health_entry_t *e, const char *name, int *found)
{
    size_t lo = 0, hi = e->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(e->gone[mid].name, name);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

static void gone_remove_at(mesh_health_entry_t *e, size_t i)
{
    free(e->gone[i].name);
    memmove(&e->gone[i], &e->gone[i + 1], (e->n - i - 1) * sizeof(*e->gone));
    e->n--;
}

typedef struct diff_ctx {
    mesh_health_entry_t *e;
    uint64_t now;
} diff_ctx_t;

static void on_diff(void *ud, const char *name, const mesh_route_svc_t *before,
                    const mesh_route_svc_t *after)
{
    diff_ctx_t *d = ud;
    mesh_health_entry_t *e = d->e;
    int found;
    size_t i = gone_find(e, name, &found);
    if (after) { /* (back) in the table */
        if (found)
            gone_remove_at(e, i);
        return;
    }
    if (!before)
        return;
    if (found) {
        e->gone[i].at_ms = d->now;
        return;
    }
    if (e->n == e->cap) {
        size_t nc = e->cap ? e->cap * 2 : 16;
        gone_t *g = realloc(e->gone, nc * sizeof(*g));
        if (!g) {
            e->oom = 1;
            return;
        }
        e->gone = g;
        e->cap = nc;
    }
    char *copy = strdup(name);
    if (!copy) {
        e->oom = 1;
        return;
    }
    memmove(&e->gone[i + 1], &e->gone[i], (e->n - i) * sizeof(*e->gone));
    e->gone[i] = (gone_t){.name = copy, .at_ms = d->now};
    e->n++;
}

int mesh_health_entry_routes(mesh_health_entry_t *e, const mesh_routes_t *before,
                             const mesh_routes_t *after, uint64_t now_ms)
{
    e->oom = 0;
    if (before != after) {
        diff_ctx_t d = {.e = e, .now = now_ms};
        mesh_routes_diff(before, after, on_diff, &d);
    }
    /* expire (a scan, only when something may be old: the array is small) */
    for (size_t i = 0; i < e->n;) {
        if (now_ms - e->gone[i].at_ms >= e->ttl_ms)
            gone_remove_at(e, i);
        else
            i++;
    }
    return e->oom ? -1 : 0;
}

mesh_health_status_t mesh_health_entry_status(const mesh_health_entry_t *e, const mesh_routes_t *t,
                                              int draining, const char *service)
{
    if (service[0] == '\0' || strcmp(service, MESH_HEALTH_SERVICE) == 0)
        return draining || !t ? MESH_HEALTH_NOT_SERVING : MESH_HEALTH_SERVING;
    const mesh_route_service_t *s = t ? mesh_routes_service(t, service) : NULL;
    if (s)
        return !draining && s->n_instances > 0 ? MESH_HEALTH_SERVING : MESH_HEALTH_NOT_SERVING;
    int found = 0;
    if (e)
        gone_find(e, service, &found);
    return found ? MESH_HEALTH_NOT_SERVING : MESH_HEALTH_SERVICE_UNKNOWN;
}

size_t mesh_health_entry_gone(const mesh_health_entry_t *e)
{
    return e->n;
}

int mesh_health_watch_update(mesh_health_watch_t *w, mesh_health_status_t status)
{
    if (w->last == (int)status)
        return 0;
    w->last = (int)status;
    return 1;
}
