/*
 * node/admin_routes.c: the /v1/routes listing (see node/admin_routes.h).
 *
 * Records live in one array, each owning copies of its strings. Lookups sort the array by
 * (service, address) once and binary-search it; an insertion appends and marks the array
 * unsorted, so filling a listing from a table of n instances costs O(n log n).
 */
#include "node/admin_routes.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "policy/route_conf.h"

struct mesh_admin_routes {
    mesh_admin_route_t *r;
    size_t n, cap;
    int sorted;
};

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

static void rec_clear(mesh_admin_route_t *r)
{
    free((char *)r->service);
    free((char *)r->addr);
    free((char *)r->node);
    free((char *)r->zone);
    free((char *)r->version);
    for (size_t i = 0; r->methods && i < r->n_methods; i++)
        free((char *)r->methods[i]);
    free((void *)r->methods);
    memset(r, 0, sizeof(*r));
}

/* A deep copy of in into out; 0 or -1 (out cleared). */
static int rec_copy(mesh_admin_route_t *out, const mesh_admin_route_t *in)
{
    memset(out, 0, sizeof(*out));
    out->service = strdup(in->service);
    out->addr = strdup(in->addr);
    out->node = dup_or_null(in->node);
    out->zone = dup_or_null(in->zone);
    out->version = dup_or_null(in->version);
    out->weight = in->weight ? in->weight : 1;
    out->source = in->source;
    out->state = in->state;
    out->mesh_tls = in->mesh_tls;
    int ok = out->service && out->addr && (!in->node || !*in->node || out->node) &&
             (!in->zone || !*in->zone || out->zone) &&
             (!in->version || !*in->version || out->version);
    if (ok && in->methods) {
        char **m = calloc(in->n_methods ? in->n_methods : 1, sizeof(*m));
        out->methods = (const char *const *)m;
        out->n_methods = in->n_methods;
        ok = m != NULL;
        for (size_t i = 0; ok && i < in->n_methods; i++)
            ok = (m[i] = strdup(in->methods[i])) != NULL;
    }
    if (!ok) {
        rec_clear(out);
        return -1;
    }
    return 0;
}

mesh_admin_routes_t *mesh_admin_routes_new(void)
{
    mesh_admin_routes_t *l = calloc(1, sizeof(*l));
    if (l)
        l->sorted = 1;
    return l;
}

void mesh_admin_routes_free(mesh_admin_routes_t *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        rec_clear(&l->r[i]);
    free(l->r);
    free(l);
}

static int cmp_key(const char *svc, const char *addr, const mesh_admin_route_t *r)
{
    int c = strcmp(svc, r->service);
    return c ? c : strcmp(addr, r->addr);
}

static int cmp_rec(const void *a, const void *b)
{
    const mesh_admin_route_t *x = a, *y = b;
    return cmp_key(x->service, x->addr, y);
}

static void sort(mesh_admin_routes_t *l)
{
    if (!l->sorted)
        qsort(l->r, l->n, sizeof(*l->r), cmp_rec);
    l->sorted = 1;
}

mesh_admin_route_t *mesh_admin_routes_get(mesh_admin_routes_t *l, const char *service,
                                          const char *addr)
{
    sort(l);
    size_t lo = 0, hi = l->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp_key(service, addr, &l->r[mid]);
        if (c == 0)
            return &l->r[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* Appends without looking for an equal record. */
static int append(mesh_admin_routes_t *l, const mesh_admin_route_t *r)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        mesh_admin_route_t *nr = realloc(l->r, nc * sizeof(*nr));
        if (!nr)
            return -1;
        l->r = nr;
        l->cap = nc;
    }
    if (rec_copy(&l->r[l->n], r) != 0)
        return -1;
    if (l->n && l->sorted && cmp_rec(&l->r[l->n - 1], &l->r[l->n]) > 0)
        l->sorted = 0;
    l->n++;
    return 0;
}

int mesh_admin_routes_put(mesh_admin_routes_t *l, const mesh_admin_route_t *r)
{
    if (!r->service || !*r->service || !r->addr || !*r->addr)
        return -1;
    mesh_admin_route_t *old = mesh_admin_routes_get(l, r->service, r->addr);
    if (!old)
        return append(l, r);
    mesh_admin_route_t copy;
    if (rec_copy(&copy, r) != 0)
        return -1;
    rec_clear(old);
    *old = copy;
    return 0;
}

size_t mesh_admin_routes_count(const mesh_admin_routes_t *l)
{
    return l->n;
}

int mesh_admin_routes_add_table(mesh_admin_routes_t *l, const mesh_routes_t *t)
{
    size_t ns = t ? mesh_routes_count(t) : 0;
    /* Into an empty listing a table's records go in as they are and are sorted once (a table
     * holds each (service, address) once): a lookup per record would sort again after every
     * out-of-order append, O(n^2 log n) for 10k instances. */
    int fresh = l->n == 0;
    for (size_t i = 0; i < ns; i++) {
        const mesh_route_service_t *s = mesh_routes_at(t, i);
        for (size_t j = 0; j < s->n_instances; j++) {
            const mesh_route_instance_t *in = &s->instances[j];
            mesh_admin_route_t r = {
                .service = s->name,
                .addr = in->addr,
                .node = in->node,
                .zone = in->zone,
                .methods = in->methods,
                .n_methods = in->n_methods,
                .weight = in->weight,
                .source = in->source,
                .state = MESH_ADMIN_ROUTE_ROUTABLE,
                .mesh_tls = in->mesh_tls,
            };
            if ((fresh ? append(l, &r) : mesh_admin_routes_put(l, &r)) != 0)
                return -1;
        }
    }
    return 0;
}

const char *mesh_admin_route_source_name(mesh_route_source_t s)
{
    switch (s) {
    case MESH_ROUTE_STATIC:
        return "static";
    case MESH_ROUTE_ETCD:
        return "etcd";
    case MESH_ROUTE_GOSSIP:
        return "gossip";
    }
    return "unknown";
}

const char *mesh_admin_route_state_name(mesh_admin_route_state_t s)
{
    switch (s) {
    case MESH_ADMIN_ROUTE_ROUTABLE:
        return "routable";
    case MESH_ADMIN_ROUTE_OWNER_DEAD:
        return "owner_dead";
    case MESH_ADMIN_ROUTE_EJECTED:
        return "ejected";
    }
    return "unknown";
}

/* A JSON array of methods, or null for "every method". */
static json_t *methods_json(const char *const *m, size_t n)
{
    if (!m)
        return json_null();
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_string(m[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The union of the methods of records r[0..n), sorted; null when one serves every method. */
static json_t *service_methods(const mesh_admin_route_t *r, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (!r[i].methods)
            return json_null();
        total += r[i].n_methods;
    }
    const char **all = malloc((total ? total : 1) * sizeof(*all));
    if (!all)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < r[i].n_methods; j++)
            all[k++] = r[i].methods[j];
    qsort(all, k, sizeof(*all), cmp_str);
    size_t u = 0;
    for (size_t i = 0; i < k; i++)
        if (u == 0 || strcmp(all[u - 1], all[i]) != 0)
            all[u++] = all[i];
    json_t *a = methods_json(all, u);
    free(all);
    return a;
}

const char *mesh_admin_route_transport(const mesh_admin_tls_view_t *v, const mesh_svc_policy_t *sp,
                                       int mesh_tls)
{
    if (sp && sp->upstream_tls == MESH_SVC_TLS_OFF)
        return "h2c";
    if (sp && sp->upstream_tls == MESH_SVC_TLS_OWN)
        return sp->tls_cert ? "mtls" : "tls";
    if (v && mesh_tls && v->mesh)
        return "mtls";
    if (v && v->upstream)
        return v->upstream_mtls ? "mtls" : "tls";
    return "h2c";
}

static json_t *instance_json(const mesh_admin_route_t *r, const mesh_admin_tls_view_t *v,
                             const mesh_svc_policy_t *sp)
{
    json_t *m = methods_json(r->methods, r->n_methods);
    if (!m)
        return NULL;
    /* sorted methods within an instance too, so two listings compare equal */
    if (json_is_array(m)) {
        const char **v = malloc((r->n_methods ? r->n_methods : 1) * sizeof(*v));
        if (!v) {
            json_decref(m);
            return NULL;
        }
        for (size_t i = 0; i < r->n_methods; i++)
            v[i] = r->methods[i];
        qsort(v, r->n_methods, sizeof(*v), cmp_str);
        json_decref(m);
        m = methods_json(v, r->n_methods);
        free(v);
        if (!m)
            return NULL;
    }
    return json_pack("{s:s,s:s?,s:s?,s:I,s:s?,s:o,s:s,s:s,s:s?,s:s}", "address", r->addr, "node",
                     r->node, "zone", r->zone, "weight", (json_int_t)r->weight, "version",
                     r->version, "methods", m, "source", mesh_admin_route_source_name(r->source),
                     "state", mesh_admin_route_state_name(r->state), "tls",
                     r->mesh_tls ? "mtls" : NULL, "transport",
                     mesh_admin_route_transport(v, sp, r->mesh_tls));
}

json_t *mesh_admin_routes_json(const mesh_admin_routes_t *cl, const char *etcd,
                               const mesh_admin_tls_view_t *tls)
{
    mesh_admin_routes_t *l = (mesh_admin_routes_t *)cl; /* sorting does not change the set */
    sort(l);
    json_t *services = json_array();
    if (!services)
        return NULL;
    for (size_t i = 0; i < l->n;) {
        size_t e = i + 1;
        while (e < l->n && strcmp(l->r[e].service, l->r[i].service) == 0)
            e++;
        const mesh_svc_policy_t *sp = tls && tls->svc ? tls->svc(tls->ud, l->r[i].service) : NULL;
        json_t *inst = json_array();
        for (size_t j = i; inst && j < e; j++)
            if (json_array_append_new(inst, instance_json(&l->r[j], tls, sp)) != 0) {
                json_decref(inst);
                inst = NULL;
            }
        json_t *m = service_methods(&l->r[i], e - i);
        if (!inst || !m) {
            json_decref(inst);
            json_decref(m);
            json_decref(services);
            return NULL;
        }
        /* json_pack takes over the "o" references, also when it fails */
        json_t *ut = pol_routes_upstream_tls_json(sp);
        json_t *s = json_pack("{s:s,s:o,s:o,s:o}", "service", l->r[i].service, "methods", m,
                              "upstream_tls", ut ? ut : json_null(), "instances", inst);
        if (!s) {
            json_decref(services);
            return NULL;
        }
        json_array_append_new(services, s);
        i = e;
    }
    return json_pack("{s:s,s:o}", "etcd", etcd ? etcd : "off", "services", services);
}
