/*
 * gateway/schema_merge.c: the descriptor cache's merged pool (gateway/schema_cache.h).
 *
 * Every variant holding descriptors contributes its files, newest variant first, so that when
 * two variants carry a file of the same name the newer one's copy is the one the pool keeps
 * (mesh_desc_pool_add_file keeps the first of a name); a copy with different bytes is a
 * conflict, counted and logged. A conflict between two variants of one service with different
 * release labels (`version`) is resolved: the newer variant is the deploy in progress. Any
 * other (two services, or one service's variants with the same label) is unresolved: recorded
 * in c->unresolved so that reflection at the entry answers an error for that file instead of
 * a copy that may not match the caller's service. The model is built for the cached services only;
 * should a conflict leave one of them unresolvable (its file replaced by another service's file of
 * the same name), the others are modelled without it and that is logged.
 *
 * A merge costs the size of everything held (each file is unpacked once); it runs only when the
 * held set changed, at most once per coalesce period.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "gateway/schema_cache_int.h"

#define ACTOR "gw-schemas"

static int cmp_newest_first(const void *a, const void *b)
{
    const gwc_variant_t *x = *(const gwc_variant_t *const *)a;
    const gwc_variant_t *y = *(const gwc_variant_t *const *)b;
    return x->seq < y->seq ? 1 : x->seq > y->seq ? -1 : 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The held copy of a file name: which variant's bytes went into the pool. */
typedef struct taken {
    const gwc_file_t *file;
    const gwc_variant_t *v;
} taken_t;

static size_t name_hash(const char *s)
{
    size_t h = 14695981039346656037ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* The taken copies in an open-addressing table of cap (a power of two) slots. */
static taken_t *taken_slot(taken_t *t, size_t cap, const char *name)
{
    for (size_t i = name_hash(name) & (cap - 1);; i = (i + 1) & (cap - 1))
        if (!t[i].file || strcmp(t[i].file->name, name) == 0)
            return &t[i];
}

void gwc_unresolved_clear(gw_cache_t *c)
{
    for (size_t i = 0; i < c->n_unresolved; i++)
        free(c->unresolved[i]);
    free(c->unresolved);
    c->unresolved = NULL;
    c->n_unresolved = 0;
}

/* Records an unresolved conflict on file (once per file name). */
static void unresolved_add(gw_cache_t *c, const char *file, const gwc_variant_t *a,
                           const gwc_variant_t *b)
{
    for (size_t i = 0; i < c->n_unresolved; i += 2)
        if (strcmp(c->unresolved[i], file) == 0)
            return;
    char why[512];
    snprintf(why, sizeof(why),
             "the file differs between %s (version '%s', from %s) and %s (version '%s', from %s) "
             "and no release label decides which is right",
             a->svc->name, a->version, a->from, b->svc->name, b->version, b->from);
    char **u = realloc(c->unresolved, (c->n_unresolved + 2) * sizeof(*u));
    if (!u)
        return;
    c->unresolved = u;
    u[c->n_unresolved] = strdup(file);
    u[c->n_unresolved + 1] = strdup(why);
    if (!u[c->n_unresolved] || !u[c->n_unresolved + 1]) {
        free(u[c->n_unresolved]);
        free(u[c->n_unresolved + 1]);
        return;
    }
    c->n_unresolved += 2;
}

mesh_desc_pool_t *gwc_merge(gw_cache_t *c)
{
    size_t n_v = 0, n_files = 0;
    for (size_t i = 0; i < c->n_buckets; i++)
        for (const gwc_svc_t *s = c->buckets[i]; s; s = s->hnext)
            for (size_t k = 0; k < s->n_v; k++)
                if (s->v[k]->state == GWC_V_HAVE || s->v[k]->n_files) {
                    n_v++;
                    n_files += s->v[k]->n_files;
                }
    gwc_variant_t **vs = calloc(n_v ? n_v : 1, sizeof(*vs));
    const char **names = calloc(n_v ? n_v : 1, sizeof(*names));
    size_t cap = 16;
    while (cap < 2 * n_files)
        cap *= 2;
    taken_t *taken = calloc(cap, sizeof(*taken));
    char *good = calloc(n_v ? n_v : 1, 1);
    mesh_desc_pool_t *p = mesh_desc_pool_new();
    if (!vs || !names || !taken || !good || !p)
        goto oom;
    n_v = 0;
    for (size_t i = 0; i < c->n_buckets; i++)
        for (gwc_svc_t *s = c->buckets[i]; s; s = s->hnext)
            for (size_t k = 0; k < s->n_v; k++)
                if (s->v[k]->n_files)
                    vs[n_v++] = s->v[k];
    qsort(vs, n_v, sizeof(*vs), cmp_newest_first);

    /* Files, newest variant first; a name already taken is compared with the taken copy. */
    c->conflicts = 0;
    gwc_unresolved_clear(c);
    for (size_t i = 0; i < n_v; i++) {
        const gwc_variant_t *v = vs[i];
        for (size_t f = 0; f < v->n_files; f++) {
            const gwc_file_t *file = &v->files[f];
            int rc = mesh_desc_pool_add_file(p, file->data, file->len);
            if (rc < 0) {
                mesh_warn(ACTOR, "service %s (version '%s'): file %s left out: %s", v->svc->name,
                          v->version, file->name, mesh_desc_pool_error(p));
                continue;
            }
            taken_t *t = taken_slot(taken, cap, file->name);
            if (rc == 0 || !t->file) {
                *t = (taken_t){file, v};
                continue;
            }
            if ((t->file->len != file->len || memcmp(t->file->data, file->data, file->len))) {
                c->conflicts++;
                int resolved = t->v->svc == v->svc && strcmp(t->v->version, v->version) != 0;
                if (!resolved)
                    unresolved_add(c, file->name, t->v, v);
                mesh_warn(ACTOR,
                          "file %s differs between %s version '%s' and %s version '%s': the "
                          "first, seen later, is used",
                          file->name, t->v->svc->name, t->v->version, v->svc->name, v->version);
            }
        }
    }

    /* The model: every cached service named once. */
    size_t n_names = 0;
    for (size_t i = 0; i < n_v; i++)
        names[n_names++] = vs[i]->svc->name;
    qsort(names, n_names, sizeof(*names), cmp_str);
    size_t w = 0;
    for (size_t i = 0; i < n_names; i++)
        if (!w || strcmp(names[w - 1], names[i]) != 0)
            names[w++] = names[i];
    n_names = w;
    if (mesh_desc_pool_build(p, names, n_names) < 0) {
        /* Find the services that resolve on their own, then model those. */
        size_t n_good = 0;
        for (size_t i = 0; i < n_names; i++) {
            good[i] = mesh_desc_pool_build(p, &names[i], 1) == 0;
            if (!good[i])
                mesh_warn(ACTOR, "service %s left out of the merged schemas: %s", names[i],
                          mesh_desc_pool_error(p));
            else
                names[n_good++] = names[i];
        }
        if (mesh_desc_pool_build(p, names, n_good) < 0)
            (void)mesh_desc_pool_build(p, names, 0); /* an empty model rather than none */
    }
    free(vs);
    free(names);
    free(taken);
    free(good);
    return p;
oom:
    free(vs);
    free(names);
    free(taken);
    free(good);
    mesh_desc_pool_free(p);
    return NULL;
}
