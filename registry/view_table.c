/*
 * registry/view_table.c: the view's hash table, resync by generations, the services and
 * their changes, the incremental routing table, and loading and dumping the snapshot file
 * (see view_table.h).
 */
#include "registry/view_table.h"

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

/* Views at least this large give the heap back after a full range (reg_table_sweep). */
#define TRIM_AFTER_RANGE 1024

/* The valid entries of one service; freed once it has none and the routing table knows. */
struct reg_svc {
    struct reg_svc *next;       /* hash chain */
    struct reg_svc *dirty_next; /* in t->dirty while dirty */
    reg_entry_t *entries;       /* through reg_entry_t.svc_next */
    uint32_t hash;
    uint32_t n_entries;
    uint32_t len;
    uint8_t dirty;
    char name[];
};

static uint32_t hash_key(const char *k, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)k[i];
        h *= 16777619u;
    }
    return h;
}

int reg_table_init(reg_table_t *t, const char *prefix)
{
    memset(t, 0, sizeof(*t));
    size_t pl = strlen(prefix);
    while (pl > 0 && prefix[pl - 1] == '/')
        pl--;
    t->prefix = strndup(prefix, pl);
    t->prefix_len = pl;
    t->n_buckets = 64;
    t->buckets = calloc(t->n_buckets, sizeof(*t->buckets));
    t->n_svc_buckets = 64;
    t->svc_buckets = calloc(t->n_svc_buckets, sizeof(*t->svc_buckets));
    if (!t->prefix || !t->buckets || !t->svc_buckets) {
        free(t->prefix);
        free(t->buckets);
        free(t->svc_buckets);
        return -1;
    }
    return 0;
}

void reg_table_clear(reg_table_t *t)
{
    for (size_t i = 0; i < t->n_buckets; i++) {
        reg_entry_t *e = t->buckets[i];
        while (e) {
            reg_entry_t *n = e->next;
            if (t->journal && e->valid)
                reg_snap_buf_delete(t->journal, e->key, e->klen);
            free(e);
            e = n;
        }
        t->buckets[i] = NULL;
    }
    for (size_t i = 0; i < t->n_svc_buckets; i++) {
        reg_svc_t *s = t->svc_buckets[i];
        while (s) {
            reg_svc_t *n = s->next;
            free(s);
            s = n;
        }
        t->svc_buckets[i] = NULL;
    }
    t->n_entries = t->n_valid = t->bytes = 0;
    t->n_svcs = t->svc_bytes = 0;
    t->dirty = NULL;
    t->n_dirty = 0;
    mesh_routes_unref(t->routes); /* the next reg_table_routes() starts from scratch */
    t->routes = NULL;
}

void reg_table_destroy(reg_table_t *t)
{
    if (!t->buckets)
        return;
    t->journal = NULL;
    reg_table_clear(t);
    free(t->buckets);
    free(t->svc_buckets);
    free(t->prefix);
    mesh_route_svc_builder_free(t->sb);
    free(t->edits);
    t->buckets = NULL;
    t->svc_buckets = NULL;
    t->prefix = NULL;
    t->sb = NULL;
    t->edits = NULL;
}

static reg_entry_t **find_slot(const reg_table_t *t, const char *key, size_t klen, uint32_t h)
{
    reg_entry_t **pp = &t->buckets[h & (t->n_buckets - 1)];
    for (; *pp; pp = &(*pp)->next)
        if ((*pp)->hash == h && (*pp)->klen == klen && memcmp((*pp)->key, key, klen) == 0)
            return pp;
    return pp;
}

reg_entry_t *reg_table_find(const reg_table_t *t, const char *key, size_t klen)
{
    return *find_slot(t, key, klen, hash_key(key, klen));
}

static void grow(reg_table_t *t)
{
    size_t nb = t->n_buckets * 2;
    reg_entry_t **b = calloc(nb, sizeof(*b));
    if (!b)
        return; /* keep the longer chains */
    for (size_t i = 0; i < t->n_buckets; i++) {
        reg_entry_t *e = t->buckets[i];
        while (e) {
            reg_entry_t *n = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
            e = n;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->n_buckets = nb;
}

/* ---- services -------------------------------------------------------------------------------- */

static void svc_grow(reg_table_t *t)
{
    size_t nb = t->n_svc_buckets * 2;
    reg_svc_t **b = calloc(nb, sizeof(*b));
    if (!b)
        return; /* keep the longer chains */
    for (size_t i = 0; i < t->n_svc_buckets; i++) {
        reg_svc_t *s = t->svc_buckets[i];
        while (s) {
            reg_svc_t *n = s->next;
            s->next = b[s->hash & (nb - 1)];
            b[s->hash & (nb - 1)] = s;
            s = n;
        }
    }
    free(t->svc_buckets);
    t->svc_buckets = b;
    t->n_svc_buckets = nb;
}

/* The service named name (len bytes), created if needed; NULL on OOM. */
static reg_svc_t *svc_get(reg_table_t *t, const char *name, size_t len)
{
    uint32_t h = hash_key(name, len);
    for (reg_svc_t *s = t->svc_buckets[h & (t->n_svc_buckets - 1)]; s; s = s->next)
        if (s->hash == h && s->len == len && memcmp(s->name, name, len) == 0)
            return s;
    reg_svc_t *s = calloc(1, sizeof(*s) + len + 1);
    if (!s)
        return NULL;
    memcpy(s->name, name, len);
    s->hash = h;
    s->len = (uint32_t)len;
    reg_svc_t **b = &t->svc_buckets[h & (t->n_svc_buckets - 1)];
    s->next = *b;
    *b = s;
    t->n_svcs++;
    t->svc_bytes += sizeof(*s) + len + 1;
    if (t->n_svcs > t->n_svc_buckets)
        svc_grow(t);
    return s;
}

/* Remembers that s changed, when a routing table exists to be updated. */
static void svc_mark(reg_table_t *t, reg_svc_t *s)
{
    if (!t->routes || s->dirty)
        return;
    s->dirty = 1;
    s->dirty_next = t->dirty;
    t->dirty = s;
    t->n_dirty++;
}

/* Frees s once it has no entry and no pending change. */
static void svc_maybe_free(reg_table_t *t, reg_svc_t *s)
{
    if (s->n_entries || s->dirty)
        return;
    reg_svc_t **pp = &t->svc_buckets[s->hash & (t->n_svc_buckets - 1)];
    while (*pp != s)
        pp = &(*pp)->next;
    *pp = s->next;
    t->n_svcs--;
    t->svc_bytes -= sizeof(*s) + s->len + 1;
    free(s);
}

static void svc_link(reg_table_t *t, reg_svc_t *s, reg_entry_t *e)
{
    e->svc = s;
    e->service = s->name;
    e->svc_next = s->entries;
    s->entries = e;
    s->n_entries++;
    svc_mark(t, s);
}

/* Takes a valid entry out of its service (O(instances of the service), as is rebuilding it). */
static void svc_unlink(reg_table_t *t, reg_entry_t *e)
{
    reg_svc_t *s = e->svc;
    if (!s)
        return;
    reg_entry_t **pp = &s->entries;
    while (*pp && *pp != e)
        pp = &(*pp)->svc_next;
    if (*pp)
        *pp = e->svc_next;
    s->n_entries--;
    e->svc = NULL;
    svc_mark(t, s);
    svc_maybe_free(t, s);
}

/* ---- entries -------------------------------------------------------------------------------- */

static const char *nz(const char *s)
{
    return s ? s : "";
}

/* Copies s (n bytes) to *p, NUL-terminates, advances *p. */
static const char *put_str(char **p, const char *s, size_t n)
{
    char *d = *p;
    memcpy(d, s, n);
    d[n] = '\0';
    *p += n + 1;
    return d;
}

static size_t entry_size(size_t klen, const reg_key_t *k, const reg_instance_t *in)
{
    size_t sz = sizeof(reg_entry_t) + klen + 1;
    if (!in)
        return sz;
    sz += in->n_methods * sizeof(char *) + strlen(in->addr) + 1 + strlen(nz(in->node)) + 1 +
          strlen(nz(in->zone)) + 1 + strlen(nz(in->version)) + 1;
    for (size_t i = 0; i < in->n_methods; i++)
        sz += strlen(in->methods[i]) + 1;
    return sz;
}

/* One allocation: the entry, the method pointers, then the strings (the service name lives in
 * the entry's reg_svc_t, set by the caller). */
static reg_entry_t *entry_new(const char *key, size_t klen, const reg_key_t *k,
                              const reg_instance_t *in, size_t *size)
{
    size_t sz = entry_size(klen, k, in);
    reg_entry_t *e = malloc(sz);
    if (!e)
        return NULL;
    memset(e, 0, sizeof(*e));
    char *p = (char *)(e + 1);
    if (in && in->methods) { /* NULL stays NULL: methods not listed, the instance serves any */
        e->methods = (const char **)p;
        p += in->n_methods * sizeof(char *);
    }
    e->klen = (uint32_t)klen;
    e->key = put_str(&p, key, klen);
    e->node = e->zone = e->version = e->service = e->addr = "";
    if (in) {
        e->valid = 1;
        e->addr = put_str(&p, in->addr, strlen(in->addr));
        e->node = put_str(&p, nz(in->node), strlen(nz(in->node)));
        e->zone = put_str(&p, nz(in->zone), strlen(nz(in->zone)));
        e->version = put_str(&p, nz(in->version), strlen(nz(in->version)));
        e->n_methods = (uint16_t)in->n_methods;
        e->weight = in->weight;
        e->mesh_tls = in->mesh_tls ? 1 : 0;
        for (size_t i = 0; i < in->n_methods; i++)
            e->methods[i] = put_str(&p, in->methods[i], strlen(in->methods[i]));
    }
    e->alloc_size = (uint32_t)sz;
    *size = sz;
    return e;
}

/* Same routing-relevant content? */
static int entry_same(const reg_entry_t *e, const reg_key_t *k, const reg_instance_t *in)
{
    if (!e->valid || strlen(e->service) != k->service_len ||
        memcmp(e->service, k->service, k->service_len) != 0 || strcmp(e->addr, in->addr) != 0 ||
        strcmp(e->node, nz(in->node)) != 0 || strcmp(e->zone, nz(in->zone)) != 0 ||
        strcmp(e->version, nz(in->version)) != 0 || e->weight != in->weight ||
        e->mesh_tls != (in->mesh_tls ? 1 : 0) || e->n_methods != in->n_methods ||
        !e->methods != !in->methods)
        return 0;
    for (size_t i = 0; i < in->n_methods; i++)
        if (strcmp(e->methods[i], in->methods[i]) != 0)
            return 0;
    return 1;
}

static void unlink_free(reg_table_t *t, reg_entry_t **pp)
{
    reg_entry_t *e = *pp;
    *pp = e->next;
    t->n_entries--;
    if (e->valid) {
        t->n_valid--;
        svc_unlink(t, e);
        if (t->journal)
            reg_snap_buf_delete(t->journal, e->key, e->klen);
    }
    t->bytes -= e->alloc_size;
    free(e);
}

int reg_table_put(reg_table_t *t, const char *key, size_t klen, const char *val, size_t vlen,
                  int64_t mod_revision, int64_t lease)
{
    if (klen < t->prefix_len + 1 || memcmp(key, t->prefix, t->prefix_len) != 0 ||
        key[t->prefix_len] != '/')
        return REG_TABLE_UNCHANGED; /* not ours */
    uint32_t h = hash_key(key, klen);
    reg_entry_t **pp = find_slot(t, key, klen, h);
    reg_entry_t *old = *pp;
    if (old && mod_revision != 0 && old->mod_revision == mod_revision) {
        old->gen = t->gen; /* same version of the key: nothing to parse */
        return REG_TABLE_UNCHANGED;
    }
    reg_key_t k;
    reg_value_t v;
    int key_ok = reg_key_parse(key, klen, t->prefix, t->prefix_len, &k) == 0;
    reg_value_status_t st = key_ok ? reg_value_parse(val, vlen, &v) : REG_VALUE_INVALID;
    if (st == REG_VALUE_DELETE) /* a resolver Delete record: the instance is gone */
        return reg_table_delete(t, key, klen);
    const reg_instance_t *in = st == REG_VALUE_OK ? &v.inst : NULL;
    if (old && in && entry_same(old, &k, in)) {
        old->mod_revision = mod_revision;
        old->lease = lease;
        old->gen = t->gen;
        reg_value_release(&v);
        if (t->journal)
            reg_snap_buf_put(t->journal, key, klen, val, vlen, mod_revision, lease);
        return REG_TABLE_UNCHANGED;
    }
    if (!in && old && !old->valid) { /* still malformed: already warned */
        old->mod_revision = mod_revision;
        old->gen = t->gen;
        return REG_TABLE_UNCHANGED;
    }
    if (!in) {
        t->n_warned++;
        mesh_warn("registry", "skipping %s %.*s: %s", key_ok ? "malformed value of" : "bad key",
                  (int)klen, key,
                  key_ok ? "not a naming-resolver instance record {\"Op\":0,\"Addr\":..}"
                         : "expected <prefix>/<package.Service>/<host:port>");
    }
    size_t sz;
    reg_entry_t *e = entry_new(key, klen, &k, in, &sz);
    if (in)
        reg_value_release(&v);
    reg_svc_t *svc = e && e->valid ? svc_get(t, k.service, k.service_len) : NULL;
    if (!e || (e->valid && !svc)) {
        free(e);
        return -1;
    }
    e->hash = h;
    e->gen = t->gen;
    e->mod_revision = mod_revision;
    e->lease = lease;
    int was_valid = old && old->valid;
    if (old) {
        e->next = old->next;
        t->bytes -= old->alloc_size;
        t->bytes += sz;
        if (old->valid) {
            t->n_valid--;
            if (svc == old->svc) {
                /* take old's place in its service without freeing the service */
                old->svc = NULL;
                reg_entry_t **sp = &svc->entries;
                while (*sp != old)
                    sp = &(*sp)->svc_next;
                *sp = old->svc_next;
                svc->n_entries--;
            } else {
                svc_unlink(t, old);
            }
        }
        free(old);
        *pp = e;
    } else {
        e->next = NULL;
        *pp = e;
        t->n_entries++;
        t->bytes += sz;
        if (t->n_entries > 2 * t->n_buckets) /* two entries a bucket on average at most */
            grow(t);
    }
    if (e->valid) {
        t->n_valid++;
        svc_link(t, svc, e);
    }
    if (t->journal && e->valid)
        reg_snap_buf_put(t->journal, key, klen, val, vlen, mod_revision, lease);
    else if (t->journal && was_valid)
        reg_snap_buf_delete(t->journal, key, klen);
    return e->valid || was_valid ? REG_TABLE_CHANGED : REG_TABLE_UNCHANGED;
}

int reg_table_delete(reg_table_t *t, const char *key, size_t klen)
{
    reg_entry_t **pp = find_slot(t, key, klen, hash_key(key, klen));
    if (!*pp)
        return REG_TABLE_UNCHANGED;
    int was_valid = (*pp)->valid;
    unlink_free(t, pp);
    return was_valid ? REG_TABLE_CHANGED : REG_TABLE_UNCHANGED;
}

void reg_table_mark(reg_table_t *t)
{
    t->gen++;
}

size_t reg_table_sweep(reg_table_t *t)
{
    size_t removed = 0;
    for (size_t i = 0; i < t->n_buckets; i++) {
        reg_entry_t **pp = &t->buckets[i];
        while (*pp) {
            if ((*pp)->gen != t->gen) {
                removed += (*pp)->valid;
                unlink_free(t, pp);
            } else {
                pp = &(*pp)->next;
            }
        }
    }
    /* A sweep ends a full range. The range answer was parsed into one JSON tree as large as
     * several views, freed just now, and the entries made meanwhile sit between its holes:
     * glibc keeps such pages as free heap (11 MB of a 32 MB proxy at 10,000 instances).
     * Give them back. */
    if (t->n_entries >= TRIM_AFTER_RANGE)
        malloc_trim(0);
    return removed;
}

static int cmp_entry(const void *a, const void *b)
{
    const reg_entry_t *x = *(const reg_entry_t *const *)a, *y = *(const reg_entry_t *const *)b;
    int c = strcmp(x->service, y->service);
    return c ? c : strcmp(x->addr, y->addr);
}

size_t reg_table_sorted(const reg_table_t *t, const reg_entry_t **out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < t->n_buckets; i++)
        for (const reg_entry_t *e = t->buckets[i]; e; e = e->next)
            if (e->valid && n < cap)
                out[n++] = e;
    qsort(out, n, sizeof(*out), cmp_entry);
    return n;
}

/* Builds the object of service s from its entries with builder sb. */
static int svc_build(mesh_route_svc_builder_t *sb, const reg_svc_t *s, mesh_route_svc_t **out)
{
    for (const reg_entry_t *e = s->entries; e; e = e->svc_next)
        if (mesh_route_svc_builder_add(sb, e->addr, (const char *const *)e->methods, e->n_methods,
                                       MESH_ROUTE_ETCD, e->node, e->zone, e->weight) < 0 ||
            mesh_route_svc_builder_set_version(sb, e->version) < 0 ||
            mesh_route_svc_builder_set_mesh_tls(sb, e->mesh_tls) < 0) {
            mesh_route_svc_builder_reset(sb);
            return -1;
        }
    return mesh_route_svc_builder_finish(sb, s->name, out);
}

static int edits_reserve(reg_table_t *t, size_t n)
{
    if (n <= t->edits_cap)
        return 0;
    size_t nc = t->edits_cap ? t->edits_cap : 64;
    while (nc < n)
        nc *= 2;
    mesh_route_edit_t *e = realloc(t->edits, nc * sizeof(*e));
    if (!e)
        return -1;
    t->edits = e;
    t->edits_cap = nc;
    return 0;
}

mesh_routes_t *reg_table_routes(reg_table_t *t)
{
    if (t->routes && !t->dirty)
        return mesh_routes_ref(t->routes);
    if (!t->sb && !(t->sb = mesh_route_svc_builder_new()))
        return NULL;
    size_t n = 0;
    if (!t->routes) {
        /* The first table: every service. */
        if (edits_reserve(t, t->n_svcs) < 0)
            return NULL;
        for (size_t i = 0; i < t->n_svc_buckets; i++)
            for (reg_svc_t *s = t->svc_buckets[i]; s; s = s->next) {
                if (svc_build(t->sb, s, &t->edits[n].svc) < 0)
                    goto fail;
                t->edits[n++].name = s->name;
            }
    } else {
        if (edits_reserve(t, t->n_dirty) < 0)
            return NULL;
        for (reg_svc_t *s = t->dirty; s; s = s->dirty_next) {
            if (svc_build(t->sb, s, &t->edits[n].svc) < 0)
                goto fail;
            t->edits[n++].name = s->name; /* svc NULL: no entry left, removed */
        }
    }
    mesh_routes_t *r = mesh_routes_update(t->routes, t->edits, n);
    if (!r)
        return NULL;
    mesh_routes_unref(t->routes);
    t->routes = r;
    reg_svc_t *s = t->dirty;
    t->dirty = NULL;
    t->n_dirty = 0;
    while (s) {
        reg_svc_t *next = s->dirty_next;
        s->dirty = 0;
        svc_maybe_free(t, s);
        s = next;
    }
    return mesh_routes_ref(r);
fail:
    for (size_t i = 0; i < n; i++)
        mesh_route_svc_unref(t->edits[i].svc);
    return NULL;
}

size_t reg_table_changed(const reg_table_t *t)
{
    return t->n_dirty;
}

mesh_routes_t *reg_table_build_routes(const reg_table_t *t)
{
    mesh_route_svc_builder_t *sb = mesh_route_svc_builder_new();
    mesh_route_edit_t *edits = calloc(t->n_svcs + 1, sizeof(*edits));
    mesh_routes_t *r = NULL;
    size_t n = 0;
    if (!sb || !edits)
        goto out;
    for (size_t i = 0; i < t->n_svc_buckets; i++)
        for (const reg_svc_t *s = t->svc_buckets[i]; s; s = s->next) {
            if (!s->n_entries)
                continue;
            if (svc_build(sb, s, &edits[n].svc) < 0)
                goto out;
            edits[n++].name = s->name;
        }
    r = mesh_routes_update(NULL, edits, n);
    n = 0;
out:
    for (size_t i = 0; i < n; i++)
        mesh_route_svc_unref(edits[i].svc);
    free(edits);
    mesh_route_svc_builder_free(sb);
    return r;
}

int reg_table_dump(const reg_table_t *t, reg_snap_buf_t *out)
{
    for (size_t i = 0; i < t->n_buckets; i++)
        for (const reg_entry_t *e = t->buckets[i]; e; e = e->next) {
            if (!e->valid)
                continue;
            reg_instance_t in = {
                .addr = e->addr,
                .node = *e->node ? e->node : NULL,
                .zone = *e->zone ? e->zone : NULL,
                .version = *e->version ? e->version : NULL,
                .methods = (const char *const *)e->methods,
                .n_methods = e->n_methods,
                .weight = e->weight,
                .mesh_tls = e->mesh_tls,
            };
            char *v = reg_value_format(&in);
            int rc =
                v ? reg_snap_buf_put(out, e->key, e->klen, v, strlen(v), e->mod_revision, e->lease)
                  : -1;
            free(v);
            if (rc < 0)
                return -1;
        }
    return 0;
}

int reg_table_save(const reg_table_t *t, const char *path, int64_t revision)
{
    reg_snap_buf_t b = {0};
    int rc = reg_table_dump(t, &b) == 0 ? reg_snap_file_write(path, t->prefix, revision, &b) : -1;
    if (rc < 0)
        mesh_warn("registry", "snapshot %s: write failed: %s", path, strerror(errno));
    reg_snap_buf_free(&b);
    return rc;
}

static int load_record(void *ud, char type, const char *key, size_t klen, const char *val,
                       size_t vlen, int64_t mod_revision, int64_t lease)
{
    reg_table_t *t = ud;
    if (type == 'D')
        return reg_table_delete(t, key, klen) < 0 ? -1 : 0;
    return reg_table_put(t, key, klen, val, vlen, mod_revision, lease) < 0 ? -1 : 0;
}

long reg_table_load(reg_table_t *t, const char *path, int64_t *revision)
{
    int64_t rev = 0;
    if (reg_snap_file_read(path, t->prefix, &rev, load_record, t) < 0)
        return -1;
    *revision = rev;
    return (long)t->n_valid;
}

long reg_table_load_fs(reg_table_t *t, const mesh_fs_t *fs, const char *name, int64_t *revision)
{
    int64_t rev = 0;
    if (reg_snap_fs_read(fs, name, t->prefix, &rev, load_record, t) < 0)
        return -1;
    *revision = rev;
    return (long)t->n_valid;
}

size_t reg_table_memory(const reg_table_t *t)
{
    return t->bytes + t->n_buckets * sizeof(reg_entry_t *) + t->svc_bytes +
           t->n_svc_buckets * sizeof(reg_svc_t *) + sizeof(*t);
}
