/*
 * registry/route_table.c: the immutable, reference-counted routing table and its builder.
 *
 * The builder keeps services in a growable array and merges instances by address; finish()
 * sorts services by name and each service's methods, so lookups are two binary searches
 * over borrowed bytes of the :path with no allocation.
 */
#include "registry/route_table.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    mesh_route_service_t pub;
    mesh_route_instance_t *inst; /* owned; pub.instances aliases it */
    size_t inst_cap;
    char **methods; /* owned; pub.methods aliases it */
    size_t methods_cap;
    int methods_known; /* some instance listed its methods */
} svc_t;

struct mesh_route_builder {
    svc_t *svcs;
    size_t n, cap;
};

struct mesh_routes {
    atomic_int refs;
    svc_t *svcs;
    size_t n;
};

mesh_route_builder_t *mesh_route_builder_new(void)
{
    return calloc(1, sizeof(mesh_route_builder_t));
}

/* Frees an instance's own method list (its strings and array are owned by the table). */
static void inst_methods_free(mesh_route_instance_t *in)
{
    for (size_t i = 0; i < in->n_methods; i++)
        free((char *)in->methods[i]);
    free((void *)in->methods);
    in->methods = NULL;
    in->n_methods = 0;
}

/* Replaces an instance's method list with a copy of methods (n of them). */
static int inst_methods_set(mesh_route_instance_t *in, const char *const *methods, size_t n)
{
    inst_methods_free(in);
    const char **m = calloc(n ? n : 1, sizeof(*m));
    if (!m)
        return -1;
    in->methods = m;
    for (size_t i = 0; i < n; i++) {
        if (!methods[i])
            continue;
        if (!(m[in->n_methods] = strdup(methods[i])))
            return -1;
        in->n_methods++;
    }
    return 0;
}

static void svc_destroy(svc_t *s)
{
    for (size_t i = 0; i < s->pub.n_instances; i++) {
        free((char *)s->inst[i].addr);
        free((char *)s->inst[i].node);
        free((char *)s->inst[i].zone);
        inst_methods_free(&s->inst[i]);
    }
    free(s->inst);
    for (size_t i = 0; i < s->pub.n_methods; i++)
        free(s->methods[i]);
    free(s->methods);
    free((char *)s->pub.name);
}

void mesh_route_builder_free(mesh_route_builder_t *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++)
        svc_destroy(&b->svcs[i]);
    free(b->svcs);
    free(b);
}

static svc_t *builder_service(mesh_route_builder_t *b, const char *name)
{
    for (size_t i = 0; i < b->n; i++)
        if (strcmp(b->svcs[i].pub.name, name) == 0)
            return &b->svcs[i];
    if (b->n == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 8;
        svc_t *ns = realloc(b->svcs, nc * sizeof(*ns));
        if (!ns)
            return NULL;
        b->svcs = ns;
        b->cap = nc;
    }
    svc_t *s = &b->svcs[b->n];
    memset(s, 0, sizeof(*s));
    s->pub.name = strdup(name);
    if (!s->pub.name)
        return NULL;
    b->n++;
    return s;
}

static int add_method(svc_t *s, const char *m)
{
    for (size_t i = 0; i < s->pub.n_methods; i++)
        if (strcmp(s->methods[i], m) == 0)
            return 0;
    if (s->pub.n_methods == s->methods_cap) {
        size_t nc = s->methods_cap ? s->methods_cap * 2 : 8;
        char **nm = realloc(s->methods, nc * sizeof(*nm));
        if (!nm)
            return -1;
        s->methods = nm;
        s->methods_cap = nc;
    }
    char *d = strdup(m);
    if (!d)
        return -1;
    s->methods[s->pub.n_methods++] = d;
    return 0;
}

static int set_str(const char **dst, const char *src)
{
    char *d = strdup(src ? src : "");
    if (!d)
        return -1;
    free((char *)*dst);
    *dst = d;
    return 0;
}

int mesh_route_builder_add(mesh_route_builder_t *b, const char *service, const char *addr,
                           const char *const *methods, size_t n_methods, mesh_route_source_t source,
                           const char *node, const char *zone, uint32_t weight)
{
    if (!b || !service || !addr || !*service || !*addr)
        return -1;
    svc_t *s = builder_service(b, service);
    if (!s)
        return -1;
    mesh_route_instance_t *in = NULL;
    for (size_t i = 0; i < s->pub.n_instances; i++)
        if (strcmp(s->inst[i].addr, addr) == 0)
            in = &s->inst[i];
    if (!in) {
        if (s->pub.n_instances == s->inst_cap) {
            size_t nc = s->inst_cap ? s->inst_cap * 2 : 4;
            mesh_route_instance_t *ni = realloc(s->inst, nc * sizeof(*ni));
            if (!ni)
                return -1;
            s->inst = ni;
            s->inst_cap = nc;
        }
        in = &s->inst[s->pub.n_instances];
        memset(in, 0, sizeof(*in));
        if (set_str(&in->addr, addr) < 0)
            return -1;
        in->index = (uint32_t)s->pub.n_instances;
        s->pub.n_instances++;
    }
    if (set_str(&in->node, node) < 0 || set_str(&in->zone, zone) < 0)
        return -1;
    in->weight = weight ? weight : 1;
    in->source = source;
    if (methods) {
        s->methods_known = 1;
        if (inst_methods_set(in, methods, n_methods) < 0)
            return -1;
        for (size_t i = 0; i < n_methods; i++)
            if (methods[i] && add_method(s, methods[i]) < 0)
                return -1;
    }
    return 0;
}

static int cmp_svc(const void *a, const void *b)
{
    return strcmp(((const svc_t *)a)->pub.name, ((const svc_t *)b)->pub.name);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

mesh_routes_t *mesh_route_builder_finish(mesh_route_builder_t *b)
{
    if (!b)
        return NULL;
    mesh_routes_t *t = calloc(1, sizeof(*t));
    if (!t) {
        mesh_route_builder_free(b);
        return NULL;
    }
    atomic_init(&t->refs, 1);
    t->svcs = b->svcs;
    t->n = b->n;
    free(b);
    if (t->n > 1)
        qsort(t->svcs, t->n, sizeof(svc_t), cmp_svc);
    for (size_t i = 0; i < t->n; i++) {
        svc_t *s = &t->svcs[i];
        s->pub.instances = s->inst;
        int any_unlisted = 0; /* an instance that does not list its methods may serve any */
        for (size_t j = 0; j < s->pub.n_instances; j++) {
            any_unlisted |= !s->inst[j].methods;
            if (s->inst[j].n_methods > 1)
                qsort((void *)s->inst[j].methods, s->inst[j].n_methods, sizeof(char *), cmp_str);
        }
        if (s->methods_known && !any_unlisted) {
            if (s->pub.n_methods > 1)
                qsort(s->methods, s->pub.n_methods, sizeof(char *), cmp_str);
            s->pub.methods = (const char *const *)s->methods;
        } else { /* unknown: the union of the listed names is of no use */
            for (size_t j = 0; j < s->pub.n_methods; j++)
                free(s->methods[j]);
            s->pub.n_methods = 0;
            s->pub.methods = NULL;
        }
    }
    return t;
}

mesh_routes_t *mesh_routes_ref(mesh_routes_t *t)
{
    if (t)
        atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
    return t;
}

void mesh_routes_unref(mesh_routes_t *t)
{
    if (!t || atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < t->n; i++)
        svc_destroy(&t->svcs[i]);
    free(t->svcs);
    free(t);
}

/* strcmp of a NUL-terminated string against len bytes. */
static int cmp_n(const char *z, const char *p, size_t len)
{
    size_t zl = strlen(z);
    int c = memcmp(z, p, zl < len ? zl : len);
    if (c)
        return c;
    return zl < len ? -1 : zl > len ? 1 : 0;
}

static const svc_t *find_service(const mesh_routes_t *t, const char *name, size_t len)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = cmp_n(t->svcs[mid].pub.name, name, len);
        if (c == 0)
            return &t->svcs[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

mesh_route_status_t mesh_routes_lookup(const mesh_routes_t *t, const char *path, size_t len,
                                       const mesh_route_service_t **out)
{
    if (len < 4 || path[0] != '/')
        return MESH_ROUTE_BAD_PATH;
    const char *slash = memchr(path + 1, '/', len - 1);
    if (!slash || slash == path + 1 || slash == path + len - 1)
        return MESH_ROUTE_BAD_PATH;
    const char *method = slash + 1;
    size_t mlen = (size_t)(path + len - method);
    if (memchr(method, '/', mlen))
        return MESH_ROUTE_BAD_PATH;
    const svc_t *s = t ? find_service(t, path + 1, (size_t)(slash - path - 1)) : NULL;
    if (!s)
        return MESH_ROUTE_NO_SERVICE;
    if (s->pub.methods) {
        size_t lo = 0, hi = s->pub.n_methods;
        int found = 0;
        while (lo < hi && !found) {
            size_t mid = (lo + hi) / 2;
            int c = cmp_n(s->pub.methods[mid], method, mlen);
            if (c == 0)
                found = 1;
            else if (c < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (!found)
            return MESH_ROUTE_NO_METHOD;
    }
    if (out)
        *out = &s->pub;
    return MESH_ROUTE_FOUND;
}

int mesh_route_instance_serves(const mesh_route_instance_t *in, const char *method, size_t len)
{
    if (!in->methods)
        return 1;
    size_t lo = 0, hi = in->n_methods;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = cmp_n(in->methods[mid], method, len);
        if (c == 0)
            return 1;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

const mesh_route_service_t *mesh_routes_service(const mesh_routes_t *t, const char *name)
{
    const svc_t *s = t && name ? find_service(t, name, strlen(name)) : NULL;
    return s ? &s->pub : NULL;
}

size_t mesh_routes_count(const mesh_routes_t *t)
{
    return t ? t->n : 0;
}

const mesh_route_service_t *mesh_routes_at(const mesh_routes_t *t, size_t i)
{
    return t && i < t->n ? &t->svcs[i].pub : NULL;
}

size_t mesh_routes_index_of(const mesh_routes_t *t, const mesh_route_service_t *s)
{
    /* pub is the first member of svc_t, so the service pointer is the svc_t pointer. */
    return (size_t)((const svc_t *)(const void *)s - t->svcs);
}
