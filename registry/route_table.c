/*
 * registry/route_table.c: service objects, tables and their builders (see route_table.h).
 *
 * A service object is one allocation: the header, the instances, the method-pointer arrays and
 * a pool of strings. Within an object every distinct string (node ids, zones, method names) is
 * stored once, and so is every distinct method list, however many instances share it. Each
 * object has a small id, unique among live objects, for per-service state kept in arrays.
 *
 * A table is a root array over leaves; a leaf is a run of up to LEAF_MAX services sorted by
 * name, holding a reference to each, and is itself reference counted and shared. An update
 * copies the root (one pointer per leaf), shares every untouched leaf with one reference, and
 * builds new leaves only where edits fall: the cost is O(services / LEAF_SPLIT) pointer copies
 * plus O(edits * LEAF_MAX), and one atomic per leaf rather than per service. The table also
 * keeps the log of its edits against the table it was made from, so that whoever holds that
 * table (a worker, the reconciler) learns the difference in O(changes).
 */
#include "registry/route_table.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct mesh_route_svc {
    mesh_route_service_t pub; /* first; its pointers point into this allocation */
    atomic_uint refs;
    uint32_t id;       /* small, unique among live objects (mesh_routes_index_of) */
    uint32_t name_len; /* strlen(pub.name): a call's lookup compares without strlen */
    size_t size;       /* bytes of the allocation */
};

static int grow(void *pp, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap : 16;
    while (nc < need)
        nc *= 2;
    void *np = realloc(*(void **)pp, nc * elem);
    if (!np)
        return -1;
    *(void **)pp = np;
    *cap = nc;
    return 0;
}

/* Object ids: dense, re-used once their object is gone (LIFO). Taken when an object is built
 * (the control loop) and given back when it is freed (any thread); the free list always has
 * room for every id handed out, so giving one back never allocates. */
static struct {
    pthread_mutex_t lock;
    uint32_t *free_ids;
    size_t n_free, cap;
    uint32_t next;
} ids = {.lock = PTHREAD_MUTEX_INITIALIZER};

static int id_take(uint32_t *out)
{
    int rc = 0;
    pthread_mutex_lock(&ids.lock);
    if (ids.n_free) {
        *out = ids.free_ids[--ids.n_free];
    } else if (ids.next == UINT32_MAX ||
               grow(&ids.free_ids, &ids.cap, (size_t)ids.next + 1, sizeof(uint32_t)) < 0) {
        rc = -1;
    } else {
        *out = ids.next++;
    }
    pthread_mutex_unlock(&ids.lock);
    return rc;
}

static void id_give_back(uint32_t id)
{
    pthread_mutex_lock(&ids.lock);
    ids.free_ids[ids.n_free++] = id;
    pthread_mutex_unlock(&ids.lock);
}

/* The method list of an instance that lists none (it serves nothing). */
static const char *const no_methods[1] = {NULL};

static uint32_t hash_bytes(uint32_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 16777619u;
    }
    return h;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* ---- service objects ------------------------------------------------------------------------ */

const mesh_route_service_t *mesh_route_svc_get(const mesh_route_svc_t *s)
{
    return s ? &s->pub : NULL;
}

mesh_route_svc_t *mesh_route_svc_ref(mesh_route_svc_t *s)
{
    if (s)
        atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    return s;
}

void mesh_route_svc_unref(mesh_route_svc_t *s)
{
    if (s && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1) {
        id_give_back(s->id);
        free(s);
    }
}

size_t mesh_route_svc_memory(const mesh_route_svc_t *s)
{
    return s ? s->size : 0;
}

/* An instance as added, strings borrowed. */
typedef struct pend {
    const char *addr, *node, *zone, *version;
    const char *const *methods; /* NULL: unknown */
    uint32_t n_methods;
    uint32_t weight;
    uint32_t seq;
    mesh_route_source_t source;
    uint8_t mesh_tls;
} pend_t;

/* A string of the pool: hash, offset, length; len == UINT32_MAX marks a free slot. */
typedef struct ient {
    uint32_t hash, off, len;
} ient_t;

/* A distinct method list: indices into the union, idx[start .. start+n). */
typedef struct dlist {
    uint32_t hash, start, n;
} dlist_t;

/* An instance while the object is laid out: pool offsets and its distinct list (-1: none). */
typedef struct fin {
    uint32_t addr, node, zone, version;
    int32_t list;
} fin_t;

struct mesh_route_svc_builder {
    pend_t *p;
    size_t n, cap;
    /* scratch of finish(), kept for the next service */
    char *pool;
    size_t plen, pcap;
    ient_t *it;
    size_t it_cap;
    const char **names; /* every listed method name, then the sorted union */
    size_t names_cap;
    uint32_t *uoff; /* pool offset of each union name */
    size_t uoff_cap;
    uint32_t *idx; /* method lists as union indices */
    size_t idx_cap;
    dlist_t *dl;
    size_t dl_cap;
    uint32_t *dlt; /* hash table of distinct lists: index + 1, 0 free */
    size_t dlt_cap;
    fin_t *fin;
    size_t fin_cap;
    const char **merged; /* method lists of instances added more than once, concatenated */
    size_t merged_cap;
    /* a hash set of slot numbers + 1 (0 free): the distinct method names while the union is
     * made, and the distinct addresses while finish() looks for an address added twice */
    uint32_t *set;
    size_t set_cap;
};

mesh_route_svc_builder_t *mesh_route_svc_builder_new(void)
{
    return calloc(1, sizeof(mesh_route_svc_builder_t));
}

void mesh_route_svc_builder_free(mesh_route_svc_builder_t *b)
{
    if (!b)
        return;
    free(b->p);
    free(b->pool);
    free(b->it);
    free(b->names);
    free(b->uoff);
    free(b->idx);
    free(b->dl);
    free(b->dlt);
    free(b->fin);
    free(b->merged);
    free(b->set);
    free(b);
}

int mesh_route_svc_builder_add(mesh_route_svc_builder_t *b, const char *addr,
                               const char *const *methods, size_t n_methods,
                               mesh_route_source_t source, const char *node, const char *zone,
                               uint32_t weight)
{
    if (!b || !addr || !*addr || n_methods > UINT32_MAX ||
        grow(&b->p, &b->cap, b->n + 1, sizeof(pend_t)) < 0)
        return -1;
    b->p[b->n] = (pend_t){
        .addr = addr,
        .node = node ? node : "",
        .zone = zone ? zone : "",
        .version = "",
        .methods = methods,
        .n_methods = methods ? (uint32_t)n_methods : 0,
        .weight = weight, /* 0 kept: no traffic unless nothing else (transport/lb.h) */
        .seq = (uint32_t)b->n,
        .source = source,
    };
    b->n++;
    return 0;
}

int mesh_route_svc_builder_set_version(mesh_route_svc_builder_t *b, const char *version)
{
    if (!b || b->n == 0)
        return -1;
    b->p[b->n - 1].version = version ? version : "";
    return 0;
}

int mesh_route_svc_builder_set_mesh_tls(mesh_route_svc_builder_t *b, int mesh_tls)
{
    if (!b || b->n == 0)
        return -1;
    b->p[b->n - 1].mesh_tls = mesh_tls ? 1 : 0;
    return 0;
}

int mesh_route_svc_builder_add_instance(mesh_route_svc_builder_t *b,
                                        const mesh_route_instance_t *in)
{
    if (mesh_route_svc_builder_add(b, in->addr, in->methods, in->n_methods, in->source, in->node,
                                   in->zone, in->weight) < 0)
        return -1;
    b->p[b->n - 1].mesh_tls = in->mesh_tls;
    return mesh_route_svc_builder_set_version(b, in->version);
}

void mesh_route_svc_builder_reset(mesh_route_svc_builder_t *b)
{
    if (b)
        b->n = 0;
}

size_t mesh_route_svc_builder_count(const mesh_route_svc_builder_t *b)
{
    return b ? b->n : 0;
}

static int cmp_pend(const void *a, const void *b)
{
    const pend_t *x = a, *y = b;
    int c = strcmp(x->addr, y->addr);
    return c ? c : x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int cmp_seq(const void *a, const void *b)
{
    uint32_t x = ((const pend_t *)a)->seq, y = ((const pend_t *)b)->seq;
    return x < y ? -1 : x > y;
}

/* The pool offset of s, stored once per object. */
static int intern(mesh_route_svc_builder_t *b, const char *s, uint32_t *off)
{
    size_t len = strlen(s);
    uint32_t h = hash_bytes(2166136261u, s, len);
    size_t mask = b->it_cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        ient_t *e = &b->it[i];
        if (e->len == UINT32_MAX) {
            if (grow(&b->pool, &b->pcap, b->plen + len + 1, 1) < 0 ||
                b->plen + len + 1 > UINT32_MAX)
                return -1;
            memcpy(b->pool + b->plen, s, len + 1);
            *e = (ient_t){h, (uint32_t)b->plen, (uint32_t)len};
            b->plen += len + 1;
            *off = e->off;
            return 0;
        }
        if (e->hash == h && e->len == len && memcmp(b->pool + e->off, s, len) == 0) {
            *off = e->off;
            return 0;
        }
    }
}

/* Position of name in the sorted union (it is there: the union was made of every list). */
static uint32_t union_index(const mesh_route_svc_builder_t *b, size_t u, const char *name)
{
    size_t lo = 0, hi = u;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(b->names[mid], name);
        if (c == 0)
            return (uint32_t)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

/* Stores idx[start..idx_len) as a distinct list (or finds its twin); returns its number. */
static int32_t list_intern(mesh_route_svc_builder_t *b, size_t *n_dl, size_t start, size_t *idx_len)
{
    size_t n = *idx_len - start;
    uint32_t h = hash_bytes(2166136261u, b->idx + start, n * sizeof(uint32_t)) ^ (uint32_t)n;
    size_t mask = b->dlt_cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        if (b->dlt[i] == 0) {
            b->dl[*n_dl] = (dlist_t){h, (uint32_t)start, (uint32_t)n};
            b->dlt[i] = (uint32_t)++ * n_dl;
            return (int32_t)(*n_dl - 1);
        }
        const dlist_t *d = &b->dl[b->dlt[i] - 1];
        if (d->hash == h && d->n == n &&
            memcmp(b->idx + d->start, b->idx + start, n * sizeof(uint32_t)) == 0) {
            *idx_len = start; /* a twin exists: drop this copy */
            return (int32_t)(b->dlt[i] - 1);
        }
    }
}

static size_t pow2_at_least(size_t n)
{
    size_t s = 16;
    while (s < n)
        s *= 2;
    return s;
}

/* Looks str up in b->set, whose entries are positions + 1 in strs (mask + 1 slots, at most half
 * full); when absent, records it as strs[n] and returns 1 (the caller stores it there). */
static int set_put(mesh_route_svc_builder_t *b, size_t mask, const char *const *strs, size_t n,
                   const char *str)
{
    uint32_t h = hash_bytes(2166136261u, str, strlen(str));
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        if (!b->set[i]) {
            b->set[i] = (uint32_t)n + 1;
            return 1;
        }
        const char *t = strs[b->set[i] - 1];
        if (t == str || strcmp(t, str) == 0)
            return 0;
    }
}

/* Whether two of the n instances added have one address (a hash set of their addresses). */
static int addr_added_twice(mesh_route_svc_builder_t *b)
{
    size_t cap = pow2_at_least(2 * b->n + 2);
    if (grow(&b->names, &b->names_cap, b->n, sizeof(char *)) < 0 ||
        grow(&b->set, &b->set_cap, cap, sizeof(uint32_t)) < 0)
        return -1;
    memset(b->set, 0, cap * sizeof(uint32_t));
    for (size_t i = 0; i < b->n; i++) {
        if (!set_put(b, cap - 1, b->names, i, b->p[i].addr))
            return 1;
        b->names[i] = b->p[i].addr;
    }
    return 0;
}

/* Lays out the object of the k merged instances in b->p. */
static mesh_route_svc_t *layout(mesh_route_svc_builder_t *b, const char *name, size_t k)
{
    /* The union of the listed methods, sorted and unique. */
    size_t total = 0;
    int known = 0, any_unlisted = 0;
    for (size_t i = 0; i < k; i++)
        if (b->p[i].methods) {
            known = 1;
            total += b->p[i].n_methods;
        } else {
            any_unlisted = 1;
        }
    if (grow(&b->names, &b->names_cap, total + 1, sizeof(char *)) < 0 ||
        grow(&b->set, &b->set_cap, pow2_at_least(2 * total + 2), sizeof(uint32_t)) < 0)
        return NULL;
    /* Each distinct name once (a hash set: the instances of a service mostly list the same
     * methods, often the very same strings), then only the distinct names are sorted. */
    size_t u = 0, set_mask = pow2_at_least(2 * total + 2) - 1;
    memset(b->set, 0, (set_mask + 1) * sizeof(uint32_t));
    const char *const *seen_list = NULL; /* the last list taken whole (lists are shared) */
    uint32_t seen_n = 0;
    for (size_t i = 0; i < k; i++) {
        const char *const *ml = b->p[i].methods;
        if (!ml || (ml == seen_list && b->p[i].n_methods == seen_n))
            continue;
        seen_list = ml;
        seen_n = b->p[i].n_methods;
        for (uint32_t j = 0; j < b->p[i].n_methods; j++)
            if (ml[j] && set_put(b, set_mask, b->names, u, ml[j]))
                b->names[u++] = ml[j];
    }
    if (u > 1)
        qsort(b->names, u, sizeof(char *), cmp_str);

    /* The string pool: every distinct string once. */
    size_t it_cap = pow2_at_least(2 * (4 * k + u + 1));
    if (grow(&b->it, &b->it_cap, it_cap, sizeof(ient_t)) < 0 ||
        grow(&b->uoff, &b->uoff_cap, u + 1, sizeof(uint32_t)) < 0 ||
        grow(&b->idx, &b->idx_cap, total + 1, sizeof(uint32_t)) < 0 ||
        grow(&b->dl, &b->dl_cap, k, sizeof(dlist_t)) < 0 ||
        grow(&b->dlt, &b->dlt_cap, pow2_at_least(2 * k), sizeof(uint32_t)) < 0 ||
        grow(&b->fin, &b->fin_cap, k, sizeof(fin_t)) < 0)
        return NULL;
    b->it_cap = it_cap; /* the probe mask uses exactly this size */
    memset(b->it, 0xff, it_cap * sizeof(ient_t));
    b->dlt_cap = pow2_at_least(2 * k);
    memset(b->dlt, 0, b->dlt_cap * sizeof(uint32_t));
    b->plen = 0;
    uint32_t name_off;
    if (intern(b, name, &name_off) < 0)
        return NULL;
    for (size_t i = 0; i < u; i++)
        if (intern(b, b->names[i], &b->uoff[i]) < 0)
            return NULL;

    /* Instances: their strings, and their method lists as distinct lists of union indices. */
    size_t idx_len = 0, n_dl = 0;
    const char *const *last_list = NULL; /* the previous instance's list and its number */
    uint32_t last_n = 0;
    int32_t last_id = -1;
    for (size_t i = 0; i < k; i++) {
        const pend_t *p = &b->p[i];
        fin_t *f = &b->fin[i];
        if (intern(b, p->addr, &f->addr) < 0 || intern(b, p->node, &f->node) < 0 ||
            intern(b, p->zone, &f->zone) < 0 || intern(b, p->version, &f->version) < 0)
            return NULL;
        f->list = -1;
        if (!p->methods)
            continue;
        if (p->methods == last_list && p->n_methods == last_n) {
            f->list = last_id; /* the same list as the instance before (a shared one) */
            continue;
        }
        size_t start = idx_len;
        for (uint32_t j = 0; j < p->n_methods; j++)
            if (p->methods[j])
                b->idx[idx_len++] = union_index(b, u, p->methods[j]);
        if (idx_len - start > 1)
            qsort(b->idx + start, idx_len - start, sizeof(uint32_t), cmp_u32);
        size_t e = start;
        for (size_t j = start; j < idx_len; j++)
            if (e == start || b->idx[e - 1] != b->idx[j])
                b->idx[e++] = b->idx[j];
        idx_len = e;
        f->list = list_intern(b, &n_dl, start, &idx_len);
        last_list = p->methods;
        last_n = p->n_methods;
        last_id = f->list;
    }

    /* One allocation: header, instances, union pointers, list pointers, string pool. */
    size_t ptrs = u;
    for (size_t d = 0; d < n_dl; d++)
        ptrs += b->dl[d].n;
    size_t size = sizeof(mesh_route_svc_t) + k * sizeof(mesh_route_instance_t) +
                  ptrs * sizeof(char *) + b->plen;
    mesh_route_svc_t *s = malloc(size);
    if (!s)
        return NULL;
    if (id_take(&s->id) < 0) {
        free(s);
        return NULL;
    }
    mesh_route_instance_t *insts = (mesh_route_instance_t *)(s + 1);
    const char **ua = (const char **)(insts + k);
    const char **lp = ua + u;
    char *pool = (char *)(lp + (ptrs - u));
    memcpy(pool, b->pool, b->plen);
    for (size_t i = 0; i < u; i++)
        ua[i] = pool + b->uoff[i];
    /* Each distinct list's pointers; dl[d].start now says where they are in lp. */
    size_t o = 0;
    for (size_t d = 0; d < n_dl; d++) {
        dlist_t *dl = &b->dl[d];
        for (uint32_t j = 0; j < dl->n; j++)
            lp[o + j] = ua[b->idx[dl->start + j]];
        dl->start = (uint32_t)o;
        o += dl->n;
    }
    for (size_t i = 0; i < k; i++) {
        const fin_t *f = &b->fin[i];
        const dlist_t *dl = f->list >= 0 ? &b->dl[f->list] : NULL;
        insts[i] = (mesh_route_instance_t){
            .addr = pool + f->addr,
            .node = pool + f->node,
            .zone = pool + f->zone,
            .version = pool + f->version,
            .methods = !dl     ? NULL
                       : dl->n ? (const char *const *)lp + dl->start
                               : no_methods,
            .n_methods = dl ? dl->n : 0,
            .weight = b->p[i].weight,
            .index = (uint32_t)i,
            .source = b->p[i].source,
            .mesh_tls = b->p[i].mesh_tls,
        };
    }
    /* An instance that does not list its methods may serve any (records other tools wrote):
     * then the service's method set is unknown, and a method nobody lists still routes (to
     * the unlisted instances; their app answers UNIMPLEMENTED itself if it lacks it). */
    int listed = known && !any_unlisted;
    s->pub = (mesh_route_service_t){
        .name = pool + name_off,
        .instances = insts,
        .n_instances = k,
        .methods = !listed ? NULL
                   : u     ? (const char *const *)ua
                           : no_methods,
        .n_methods = listed ? u : 0,
    };
    atomic_init(&s->refs, 1);
    s->name_len = (uint32_t)strlen(s->pub.name);
    s->size = size;
    return s;
}

int mesh_route_svc_builder_finish(mesh_route_svc_builder_t *b, const char *name,
                                  mesh_route_svc_t **out)
{
    *out = NULL;
    if (!b || b->n == 0)
        return 0;
    if (!name || !*name) {
        b->n = 0;
        return -1;
    }
    /* Same address added more than once: one instance, in the place of its first add. Node,
     * zone, weight and source: the later add wins; methods: the union of the lists the adds
     * give (unknown only when none gives one). The unions go to b->merged, sized first. */
    int twice = b->n > 1 ? addr_added_twice(b) : 0;
    if (twice < 0) {
        b->n = 0;
        return -1;
    }
    if (!twice) { /* every address once (the usual case): the instances stand as added */
        *out = layout(b, name, b->n);
        b->n = 0;
        return *out ? 0 : -1;
    }
    qsort(b->p, b->n, sizeof(pend_t), cmp_pend);
    size_t need = 0;
    for (size_t i = 0, j; i < b->n; i = j) {
        for (j = i + 1; j < b->n && strcmp(b->p[j].addr, b->p[i].addr) == 0; j++)
            ;
        for (size_t r = i; j - i > 1 && r < j; r++)
            need += b->p[r].n_methods;
    }
    if (grow(&b->merged, &b->merged_cap, need + 1, sizeof(char *)) < 0) {
        b->n = 0;
        return -1;
    }
    size_t k = 0, used = 0;
    for (size_t i = 0, j; i < b->n; i = j) {
        for (j = i + 1; j < b->n && strcmp(b->p[j].addr, b->p[i].addr) == 0; j++)
            ;
        pend_t d = b->p[j - 1];
        d.seq = b->p[i].seq;
        if (j - i > 1) {
            const char **m = b->merged + used;
            size_t nm = 0;
            int listed = 0;
            for (size_t r = i; r < j; r++) {
                if (!b->p[r].methods)
                    continue;
                listed = 1;
                for (uint32_t q = 0; q < b->p[r].n_methods; q++)
                    m[nm++] = b->p[r].methods[q];
            }
            d.methods = listed ? m : NULL;
            d.n_methods = (uint32_t)nm;
            used += nm;
        }
        b->p[k++] = d; /* k <= i: the run was read before */
    }
    /* Instances keep the order of their first add (round robin starts at the first). */
    if (k > 1)
        qsort(b->p, k, sizeof(pend_t), cmp_seq);
    *out = layout(b, name, k);
    b->n = 0;
    return *out ? 0 : -1;
}

/* ---- tables --------------------------------------------------------------------------------- */

/* Leaves are split into halves of this size when an update makes them larger than LEAF_MAX. */
#define LEAF_MAX   64
#define LEAF_SPLIT 32

/* A run of services sorted by name, shared by every table that contains it unchanged. */
typedef struct leaf {
    atomic_uint refs;
    uint32_t n;
    mesh_route_svc_t *svc[]; /* n, each referenced */
} leaf_t;

typedef struct root_ent {
    leaf_t *leaf;      /* referenced */
    const char *first; /* leaf->svc[0]'s name */
    size_t first_len;  /* and its length */
    size_t before;     /* services in the leaves before this one */
} root_ent_t;

/* One change from the parent table: before is in the parent, after in this table (neither is
 * referenced by the log; the parent's and this table's leaves hold them). */
typedef struct log_ent {
    const mesh_route_svc_t *before, *after;
} log_ent_t;

struct mesh_routes {
    atomic_int refs;
    uint64_t serial; /* unique per table */
    uint64_t parent; /* serial of the table this one was made from; 0: none */
    size_t n;        /* services */
    size_t n_leaves;
    root_ent_t *root;
    size_t n_log;
    log_ent_t *log;
};

static atomic_uint_fast64_t serials = 1;

static void leaf_unref(leaf_t *l)
{
    if (!l || atomic_fetch_sub_explicit(&l->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (uint32_t i = 0; i < l->n; i++)
        mesh_route_svc_unref(l->svc[i]);
    free(l);
}

/* A leaf of n services taken from v (their references move into the leaf). */
static leaf_t *leaf_new(mesh_route_svc_t **v, size_t n)
{
    leaf_t *l = malloc(sizeof(*l) + n * sizeof(l->svc[0]));
    if (!l)
        return NULL;
    atomic_init(&l->refs, 1);
    l->n = (uint32_t)n;
    memcpy(l->svc, v, n * sizeof(v[0]));
    return l;
}

static const char *edit_name(const mesh_route_edit_t *e)
{
    return e->svc ? e->svc->pub.name : e->name ? e->name : "";
}

static int cmp_edit(const void *a, const void *b)
{
    return strcmp(edit_name(a), edit_name(b));
}

/* Scratch of one update. */
typedef struct upd {
    root_ent_t *root;
    size_t n_root, root_cap;
    log_ent_t *log;
    size_t n_log, log_cap;
    mesh_route_svc_t **run; /* the services of the leaf being rebuilt */
    size_t n_run, run_cap;
    int failed;
} upd_t;

static void push_leaf(upd_t *u, leaf_t *l)
{
    if (!l || grow(&u->root, &u->root_cap, u->n_root + 1, sizeof(root_ent_t)) < 0) {
        u->failed = 1;
        leaf_unref(l);
        return;
    }
    u->root[u->n_root++].leaf = l;
}

static void push_log(upd_t *u, const mesh_route_svc_t *before, const mesh_route_svc_t *after)
{
    if (grow(&u->log, &u->log_cap, u->n_log + 1, sizeof(log_ent_t)) < 0) {
        u->failed = 1;
        return;
    }
    u->log[u->n_log++] = (log_ent_t){before, after};
}

static void push_run(upd_t *u, mesh_route_svc_t *s)
{
    if (grow(&u->run, &u->run_cap, u->n_run + 1, sizeof(s)) < 0) {
        u->failed = 1;
        mesh_route_svc_unref(s);
        return;
    }
    u->run[u->n_run++] = s;
}

/* Turns the run into leaves (halves of LEAF_SPLIT when it is too long for one). */
static void flush_run(upd_t *u)
{
    size_t o = 0;
    while (o < u->n_run) {
        size_t k = u->n_run - o <= LEAF_MAX ? u->n_run - o : LEAF_SPLIT;
        leaf_t *l = leaf_new(u->run + o, k);
        if (!l) {
            for (size_t i = o; i < o + k; i++)
                mesh_route_svc_unref(u->run[i]);
            u->failed = 1;
        } else {
            push_leaf(u, l);
        }
        o += k;
    }
    u->n_run = 0;
}

/* Merges leaf l (may be NULL) with the sorted edits e[0..n) into the run. */
static void merge_leaf(upd_t *u, const leaf_t *l, mesh_route_edit_t *e, size_t n)
{
    size_t i = 0, j = 0, ln = l ? l->n : 0;
    while (i < ln || j < n) {
        int c = j == n ? -1 : i == ln ? 1 : strcmp(l->svc[i]->pub.name, edit_name(&e[j]));
        if (c < 0) {
            push_run(u, mesh_route_svc_ref(l->svc[i++]));
            continue;
        }
        const mesh_route_svc_t *before = c == 0 ? l->svc[i++] : NULL;
        mesh_route_svc_t *after = e[j].svc;
        e[j++].svc = NULL; /* consumed */
        if (after == before) {
            if (after) {
                push_run(u, after); /* the same object again: no change */
            }
            continue;
        }
        if (after)
            push_run(u, after);
        push_log(u, before, after);
    }
}

mesh_routes_t *mesh_routes_update(const mesh_routes_t *base, mesh_route_edit_t *e, size_t ne)
{
    upd_t u = {0};
    mesh_routes_t *t = NULL;
    if (ne > 1)
        qsort(e, ne, sizeof(*e), cmp_edit);
    /* Of several edits of one name the last in sorted order wins; nameless ones are dropped. */
    size_t w = 0;
    for (size_t j = 0; j < ne; j++) {
        if (!*edit_name(&e[j]) ||
            (j + 1 < ne && strcmp(edit_name(&e[j]), edit_name(&e[j + 1])) == 0))
            mesh_route_svc_unref(e[j].svc);
        else
            e[w++] = e[j];
    }
    ne = w;
    size_t nl = base ? base->n_leaves : 0, j = 0;
    if (nl == 0) {
        merge_leaf(&u, NULL, e, ne);
        flush_run(&u);
    }
    for (size_t li = 0; li < nl; li++) {
        /* The edits that fall into leaf li: names below the next leaf's first name. */
        size_t k = j;
        if (li + 1 == nl)
            k = ne;
        else
            while (k < ne && strcmp(edit_name(&e[k]), base->root[li + 1].first) < 0)
                k++;
        leaf_t *l = base->root[li].leaf;
        if (k == j) {
            atomic_fetch_add_explicit(&l->refs, 1, memory_order_relaxed);
            push_leaf(&u, l); /* untouched: shared */
            continue;
        }
        merge_leaf(&u, l, e + j, k - j);
        flush_run(&u);
        j = k;
    }
    if (u.failed)
        goto out;
    t = calloc(1, sizeof(*t));
    if (!t)
        goto out;
    atomic_init(&t->refs, 1);
    t->serial = atomic_fetch_add_explicit(&serials, 1, memory_order_relaxed);
    t->parent = base ? base->serial : 0;
    t->n_leaves = u.n_root;
    t->root = u.root;
    for (size_t i = 0; i < u.n_root; i++) {
        t->root[i].first = u.root[i].leaf->svc[0]->pub.name;
        t->root[i].first_len = u.root[i].leaf->svc[0]->name_len;
        t->root[i].before = t->n;
        t->n += u.root[i].leaf->n;
    }
    t->n_log = u.n_log;
    t->log = u.n_log ? u.log : NULL;
    if (!u.n_log)
        free(u.log);
    u.root = NULL;
    u.log = NULL;
out:
    for (size_t i = 0; u.root && i < u.n_root; i++)
        leaf_unref(u.root[i].leaf);
    for (size_t i = 0; i < u.n_run; i++)
        mesh_route_svc_unref(u.run[i]);
    for (size_t i = 0; i < ne; i++)
        if (e[i].svc) /* left unconsumed by a failure */
            mesh_route_svc_unref(e[i].svc);
    free(u.root);
    free(u.log);
    free(u.run);
    return t;
}

/* A position in a table, for walking it in name order. */
typedef struct cursor {
    const mesh_routes_t *t;
    size_t leaf, k;
} cursor_t;

static const mesh_route_svc_t *cursor_get(const cursor_t *c)
{
    return c->t && c->leaf < c->t->n_leaves ? c->t->root[c->leaf].leaf->svc[c->k] : NULL;
}

static void cursor_next(cursor_t *c)
{
    if (++c->k == c->t->root[c->leaf].leaf->n) {
        c->leaf++;
        c->k = 0;
    }
}

size_t mesh_routes_diff(const mesh_routes_t *a, const mesh_routes_t *b, mesh_routes_diff_cb cb,
                        void *ud)
{
    if (a && b && b->parent == a->serial) {
        /* b was made from a: its log is the difference. */
        for (size_t i = 0; cb && i < b->n_log; i++) {
            const log_ent_t *l = &b->log[i];
            cb(ud, (l->after ? l->after : l->before)->pub.name, l->before, l->after);
        }
        return b->n_log;
    }
    if (a == b)
        return 0;
    /* Otherwise walk both in name order, leaf by leaf. */
    cursor_t x = {a, 0, 0}, y = {b, 0, 0};
    size_t count = 0;
    for (;;) {
        const mesh_route_svc_t *p = cursor_get(&x), *q = cursor_get(&y);
        if (!p && !q)
            break;
        if (p && p == q) {
            cursor_next(&x);
            cursor_next(&y);
            continue;
        }
        int c = !p ? 1 : !q ? -1 : strcmp(p->pub.name, q->pub.name);
        if (c < 0) {
            if (cb)
                cb(ud, p->pub.name, p, NULL);
            cursor_next(&x);
        } else if (c > 0) {
            if (cb)
                cb(ud, q->pub.name, NULL, q);
            cursor_next(&y);
        } else {
            if (cb)
                cb(ud, p->pub.name, p, q);
            cursor_next(&x);
            cursor_next(&y);
        }
        count++;
    }
    return count;
}

size_t mesh_routes_changes(const mesh_routes_t *t, const mesh_routes_t *parent)
{
    return t && parent && t->parent == parent->serial ? t->n_log : (size_t)-1;
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
    for (size_t i = 0; i < t->n_leaves; i++)
        leaf_unref(t->root[i].leaf);
    free(t->root);
    free(t->log);
    free(t);
}

/* z (of length zl) against p[0..len) in strcmp's order. */
static int cmp_n(const char *z, size_t zl, const char *p, size_t len)
{
    int c = memcmp(z, p, zl < len ? zl : len);
    if (c)
        return c;
    return zl < len ? -1 : zl > len ? 1 : 0;
}

/* strcmp of a NUL-terminated string against len bytes. */
static int cmp_z(const char *z, const char *p, size_t len)
{
    return cmp_n(z, strlen(z), p, len);
}

static const mesh_route_svc_t *find_service(const mesh_routes_t *t, const char *name, size_t len)
{
    /* The last leaf whose first name is <= name, then the service inside it. */
    size_t lo = 0, hi = t->n_leaves;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cmp_n(t->root[mid].first, t->root[mid].first_len, name, len) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return NULL;
    const leaf_t *l = t->root[lo - 1].leaf;
    lo = 0;
    hi = l->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = cmp_n(l->svc[mid]->pub.name, l->svc[mid]->name_len, name, len);
        if (c == 0)
            return l->svc[mid];
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
    const mesh_route_svc_t *s = t ? find_service(t, path + 1, (size_t)(slash - path - 1)) : NULL;
    if (!s)
        return MESH_ROUTE_NO_SERVICE;
    if (s->pub.methods) {
        size_t lo = 0, hi = s->pub.n_methods;
        int found = 0;
        while (lo < hi && !found) {
            size_t mid = (lo + hi) / 2;
            int c = cmp_z(s->pub.methods[mid], method, mlen);
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

int mesh_route_instance_lists(const mesh_route_instance_t *in, const char *method, size_t len)
{
    size_t lo = 0, hi = in->n_methods;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = cmp_z(in->methods[mid], method, len);
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
    const mesh_route_svc_t *s = t && name ? find_service(t, name, strlen(name)) : NULL;
    return s ? &s->pub : NULL;
}

mesh_route_svc_t *mesh_routes_find(const mesh_routes_t *t, const char *name)
{
    return t && name ? (mesh_route_svc_t *)find_service(t, name, strlen(name)) : NULL;
}

size_t mesh_routes_count(const mesh_routes_t *t)
{
    return t ? t->n : 0;
}

mesh_route_svc_t *mesh_routes_svc_at(const mesh_routes_t *t, size_t i)
{
    if (!t || i >= t->n)
        return NULL;
    size_t lo = 0, hi = t->n_leaves;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (t->root[mid].before <= i)
            lo = mid;
        else
            hi = mid;
    }
    return t->root[lo].leaf->svc[i - t->root[lo].before];
}

const mesh_route_service_t *mesh_routes_at(const mesh_routes_t *t, size_t i)
{
    const mesh_route_svc_t *s = mesh_routes_svc_at(t, i);
    return s ? &s->pub : NULL;
}

size_t mesh_routes_index_of(const mesh_routes_t *t, const mesh_route_service_t *s)
{
    (void)t;
    /* pub is the first member of the object. */
    return ((const mesh_route_svc_t *)(const void *)s)->id;
}

size_t mesh_routes_index_bound(void)
{
    pthread_mutex_lock(&ids.lock);
    size_t n = ids.next;
    pthread_mutex_unlock(&ids.lock);
    return n;
}

size_t mesh_routes_memory(const mesh_routes_t *t)
{
    return t ? sizeof(*t) + t->n_leaves * (sizeof(root_ent_t) + sizeof(leaf_t) + 8) +
                   t->n * sizeof(mesh_route_svc_t *) + t->n_log * sizeof(log_ent_t)
             : 0;
}

/* ---- building a whole table from loose instances -------------------------------------------- */

/* One added instance; strings are offsets into the builder's arena. */
typedef struct badd {
    uint32_t svc, addr, node, zone, version;
    uint32_t m_start, n_methods; /* offsets in moff */
    int has_methods;
    uint32_t weight;
    mesh_route_source_t source;
    int mesh_tls;
} badd_t;

struct mesh_route_builder {
    char *arena;
    size_t alen, acap;
    badd_t *adds;
    size_t n, cap;
    uint32_t *moff;
    size_t mn, mcap;
};

mesh_route_builder_t *mesh_route_builder_new(void)
{
    return calloc(1, sizeof(mesh_route_builder_t));
}

void mesh_route_builder_free(mesh_route_builder_t *b)
{
    if (!b)
        return;
    free(b->arena);
    free(b->adds);
    free(b->moff);
    free(b);
}

static int arena_put(mesh_route_builder_t *b, const char *s, uint32_t *off)
{
    size_t len = strlen(s ? s : "");
    if (b->alen + len + 1 > UINT32_MAX || grow(&b->arena, &b->acap, b->alen + len + 1, 1) < 0)
        return -1;
    memcpy(b->arena + b->alen, s ? s : "", len + 1);
    *off = (uint32_t)b->alen;
    b->alen += len + 1;
    return 0;
}

int mesh_route_builder_add(mesh_route_builder_t *b, const char *service, const char *addr,
                           const char *const *methods, size_t n_methods, mesh_route_source_t source,
                           const char *node, const char *zone, uint32_t weight)
{
    if (!b || !service || !addr || !*service || !*addr ||
        grow(&b->adds, &b->cap, b->n + 1, sizeof(badd_t)) < 0)
        return -1;
    badd_t *a = &b->adds[b->n];
    memset(a, 0, sizeof(*a));
    if (arena_put(b, service, &a->svc) < 0 || arena_put(b, addr, &a->addr) < 0 ||
        arena_put(b, node, &a->node) < 0 || arena_put(b, zone, &a->zone) < 0 ||
        arena_put(b, "", &a->version) < 0)
        return -1;
    a->has_methods = methods != NULL;
    a->m_start = (uint32_t)b->mn;
    for (size_t i = 0; methods && i < n_methods; i++) {
        if (!methods[i])
            continue;
        if (grow(&b->moff, &b->mcap, b->mn + 1, sizeof(uint32_t)) < 0 ||
            arena_put(b, methods[i], &b->moff[b->mn]) < 0)
            return -1;
        b->mn++;
        a->n_methods++;
    }
    a->weight = weight;
    a->source = source;
    b->n++;
    return 0;
}

int mesh_route_builder_set_version(mesh_route_builder_t *b, const char *version)
{
    if (!b || b->n == 0)
        return -1;
    return arena_put(b, version, &b->adds[b->n - 1].version);
}

int mesh_route_builder_set_mesh_tls(mesh_route_builder_t *b, int mesh_tls)
{
    if (!b || b->n == 0)
        return -1;
    b->adds[b->n - 1].mesh_tls = mesh_tls ? 1 : 0;
    return 0;
}

typedef struct ord {
    const char *svc;
    uint32_t i;
} ord_t;

static int cmp_ord(const void *a, const void *b)
{
    const ord_t *x = a, *y = b;
    int c = strcmp(x->svc, y->svc);
    return c ? c : x->i < y->i ? -1 : x->i > y->i;
}

mesh_routes_t *mesh_route_builder_finish(mesh_route_builder_t *b)
{
    if (!b)
        return NULL;
    mesh_routes_t *t = NULL;
    ord_t *ord = calloc(b->n + 1, sizeof(*ord));
    const char **mptr = calloc(b->mn + 1, sizeof(*mptr));
    mesh_route_edit_t *edits = calloc(b->n + 1, sizeof(*edits));
    mesh_route_svc_builder_t *sb = mesh_route_svc_builder_new();
    size_t ne = 0;
    if (!ord || !mptr || !edits || !sb)
        goto out;
    for (size_t i = 0; i < b->mn; i++)
        mptr[i] = b->arena + b->moff[i];
    for (size_t i = 0; i < b->n; i++)
        ord[i] = (ord_t){b->arena + b->adds[i].svc, (uint32_t)i};
    /* added in (service, order) order already (one service, or grouped by the caller): no sort */
    size_t run = 1;
    while (run < b->n && strcmp(ord[run - 1].svc, ord[run].svc) <= 0)
        run++;
    if (run < b->n)
        qsort(ord, b->n, sizeof(*ord), cmp_ord);
    for (size_t i = 0; i < b->n; i++) {
        const badd_t *a = &b->adds[ord[i].i];
        if (mesh_route_svc_builder_add(
                sb, b->arena + a->addr, a->has_methods ? mptr + a->m_start : NULL, a->n_methods,
                a->source, b->arena + a->node, b->arena + a->zone, a->weight) < 0 ||
            mesh_route_svc_builder_set_version(sb, b->arena + a->version) < 0 ||
            mesh_route_svc_builder_set_mesh_tls(sb, a->mesh_tls) < 0)
            goto out;
        if (i + 1 < b->n && strcmp(ord[i].svc, ord[i + 1].svc) == 0)
            continue;
        if (mesh_route_svc_builder_finish(sb, ord[i].svc, &edits[ne].svc) < 0)
            goto out;
        ne++;
    }
    t = mesh_routes_update(NULL, edits, ne);
    ne = 0;
out:
    for (size_t i = 0; i < ne; i++)
        mesh_route_svc_unref(edits[i].svc);
    mesh_route_svc_builder_free(sb);
    free(edits);
    free(mptr);
    free(ord);
    mesh_route_builder_free(b);
    return t;
}
