/*
 * registry/view_table.c: the view's hash table, resync by generations, conversion to a
 * routing table and the snapshot file (see view_table.h).
 */
#include "registry/view_table.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

#define SNAPSHOT_MAGIC "meshd-registry-snapshot 1"

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
    if (!t->prefix || !t->buckets) {
        free(t->prefix);
        free(t->buckets);
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
            free(e);
            e = n;
        }
        t->buckets[i] = NULL;
    }
    t->n_entries = t->n_valid = t->bytes = 0;
}

void reg_table_destroy(reg_table_t *t)
{
    if (!t->buckets)
        return;
    reg_table_clear(t);
    free(t->buckets);
    free(t->prefix);
    t->buckets = NULL;
    t->prefix = NULL;
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
    sz += in->n_methods * sizeof(char *) + k->service_len + 1 + strlen(in->addr) + 1 +
          strlen(nz(in->node)) + 1 + strlen(nz(in->zone)) + 1 + strlen(nz(in->version)) + 1;
    for (size_t i = 0; i < in->n_methods; i++)
        sz += strlen(in->methods[i]) + 1;
    return sz;
}

/* One allocation: the entry, the method pointers, then the strings. */
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
        e->service = put_str(&p, k->service, k->service_len);
        e->addr = put_str(&p, in->addr, strlen(in->addr));
        e->node = put_str(&p, nz(in->node), strlen(nz(in->node)));
        e->zone = put_str(&p, nz(in->zone), strlen(nz(in->zone)));
        e->version = put_str(&p, nz(in->version), strlen(nz(in->version)));
        e->n_methods = (uint16_t)in->n_methods;
        e->weight = in->weight;
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
        e->n_methods != in->n_methods || !e->methods != !in->methods)
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
    if (e->valid)
        t->n_valid--;
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
    if (!e)
        return -1;
    e->hash = h;
    e->gen = t->gen;
    e->mod_revision = mod_revision;
    e->lease = lease;
    int was_valid = old && old->valid;
    if (old) {
        e->next = old->next;
        t->bytes -= old->alloc_size;
        t->bytes += sz;
        if (old->valid)
            t->n_valid--;
        free(old);
        *pp = e;
    } else {
        e->next = NULL;
        *pp = e;
        t->n_entries++;
        t->bytes += sz;
        if (t->n_entries > t->n_buckets)
            grow(t);
    }
    if (e->valid)
        t->n_valid++;
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

mesh_routes_t *reg_table_build_routes(const reg_table_t *t)
{
    mesh_route_builder_t *b = mesh_route_builder_new();
    if (!b)
        return NULL;
    for (size_t i = 0; i < t->n_buckets; i++)
        for (const reg_entry_t *e = t->buckets[i]; e; e = e->next) {
            if (!e->valid)
                continue;
            if (mesh_route_builder_add(b, e->service, e->addr, (const char *const *)e->methods,
                                       e->n_methods, MESH_ROUTE_ETCD, e->node, e->zone,
                                       e->weight) < 0) {
                mesh_route_builder_free(b);
                return NULL;
            }
        }
    return mesh_route_builder_finish(b);
}

int reg_table_save(const reg_table_t *t, const char *path, int64_t revision)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        mesh_warn("registry", "snapshot %s: %s", tmp, strerror(errno));
        return -1;
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        return -1;
    }
    int ok = fprintf(f, SNAPSHOT_MAGIC " %" PRId64 " %s\n", revision, t->prefix) > 0;
    for (size_t i = 0; ok && i < t->n_buckets; i++)
        for (const reg_entry_t *e = t->buckets[i]; ok && e; e = e->next) {
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
            };
            char *v = reg_value_format(&in);
            ok = v && fprintf(f, "%" PRId64 "\t%" PRId64 "\t%s\t%s\n", e->mod_revision, e->lease,
                              e->key, v) > 0;
            free(v);
        }
    ok = ok && fflush(f) == 0 && fsync(fd) == 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) < 0) {
        mesh_warn("registry", "snapshot %s: write failed: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    char *dup = strdup(path);
    if (dup) {
        int dfd = open(dirname(dup), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        free(dup);
    }
    return 0;
}

long reg_table_load(reg_table_t *t, const char *path, int64_t *revision)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, f);
    long count = -1;
    char prefix[1024];
    if (n > 0 && sscanf(line, SNAPSHOT_MAGIC " %" SCNd64 " %1023s", revision, prefix) == 2 &&
        strcmp(prefix, t->prefix) == 0) {
        count = 0;
        while ((n = getline(&line, &cap, f)) > 0) {
            if (line[n - 1] == '\n')
                line[--n] = '\0';
            char *save = NULL;
            char *mr = strtok_r(line, "\t", &save), *ls = strtok_r(NULL, "\t", &save);
            char *key = strtok_r(NULL, "\t", &save), *val = strtok_r(NULL, "", &save);
            if (!mr || !ls || !key || !val)
                continue;
            if (reg_table_put(t, key, strlen(key), val, strlen(val), strtoll(mr, NULL, 10),
                              strtoll(ls, NULL, 10)) == REG_TABLE_CHANGED)
                count++;
        }
    }
    free(line);
    fclose(f);
    return count;
}

size_t reg_table_memory(const reg_table_t *t)
{
    return t->bytes + t->n_buckets * sizeof(reg_entry_t *) + sizeof(*t);
}
