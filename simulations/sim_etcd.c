/*
 * simulations/sim_etcd.c: the in-memory etcd MVCC model of the simulations (see sim_etcd.h).
 *
 * Small on purpose: a few dozen keys and a few thousand revisions per run, so keys live in
 * plain arrays searched linearly and a backup is a deep copy.
 */
#include "simulations/sim_etcd.h"

#include <stdlib.h>
#include <string.h>

#include "actors/prng.h"

/* One store: what a backup captures and a restore brings back. */
typedef struct store {
    int64_t revision;
    int64_t compact;
    sim_kv_t *kvs;
    size_t n_kvs, cap_kvs;
    sim_event_t *hist; /* every event at or above the compact revision, in revision order */
    size_t n_hist, cap_hist;
    uint64_t *fp; /* fp[rev]: the view fingerprint after revision rev */
    size_t cap_fp;
    uint64_t cur_fp;
} store_t;

typedef struct watcher {
    int64_t id;
    uint32_t client;
    char *prefix;
    int64_t next_rev;
    sim_watch_sink sink;
    void *ctx;
} watcher_t;

/* The view fingerprints of a store lost to data loss. */
typedef struct lost_fp {
    uint64_t *fp;
    int64_t revision;
} lost_fp_t;

struct sim_etcd {
    char *view_prefix;
    mesh_prng_t prng;
    store_t cur;
    store_t backup;
    int has_backup;
    lost_fp_t *lost;
    size_t n_lost;
    watcher_t *w;
    size_t n_w, cap_w;
    int64_t next_watch_id;
    sim_event_t *txn;
    size_t n_txn, cap_txn;
    int down;
    uint8_t *partitioned; /* one byte per client, grown on demand */
    size_t n_partitioned;
    uint32_t epoch;
    char **ever; /* every key ever put: an open-addressing hash set (cap_ever slots) */
    size_t n_ever, cap_ever;
    struct sim_lease {
        int64_t id, ttl_s;
        uint64_t expires_ns;
    } * leases;
    size_t n_leases, cap_leases;
    int64_t next_lease;
};

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        abort(); /* a simulation out of memory cannot go on meaningfully */
    return q;
}

static char *xstrdup(const char *s)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        abort();
    return d;
}

#define GROW(arr, n, cap)                                                                          \
    do {                                                                                           \
        if ((n) == (cap)) {                                                                        \
            (cap) = (cap) ? (cap)*2 : 16;                                                          \
            (arr) = xrealloc((arr), (cap) * sizeof(*(arr)));                                       \
        }                                                                                          \
    } while (0)

static sim_kv_t kv_copy(const sim_kv_t *kv)
{
    sim_kv_t c = *kv;
    c.key = xstrdup(kv->key);
    c.value = xstrdup(kv->value);
    return c;
}

static void kv_release(sim_kv_t *kv)
{
    free(kv->key);
    free(kv->value);
    kv->key = kv->value = NULL;
}

static int has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

uint64_t sim_kv_fp(const char *key, int64_t mod_revision)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 0x100000001b3ull;
    uint64_t x = h ^ ((uint64_t)mod_revision * 0x9e3779b97f4a7c15ull);
    return mesh_splitmix64(&x);
}

static int counts_in_view(const sim_etcd_t *e, const sim_kv_t *kv)
{
    return has_prefix(kv->key, e->view_prefix) && !(kv->tag & SIM_TAG_HIDDEN);
}

static void store_set_fp(store_t *s, int64_t rev, uint64_t fp)
{
    while ((size_t)rev >= s->cap_fp) {
        size_t old = s->cap_fp;
        s->cap_fp = s->cap_fp ? s->cap_fp * 2 : 64;
        s->fp = xrealloc(s->fp, s->cap_fp * sizeof(*s->fp));
        memset(s->fp + old, 0, (s->cap_fp - old) * sizeof(*s->fp));
    }
    s->fp[rev] = fp;
}

static void store_free(store_t *s)
{
    for (size_t i = 0; i < s->n_kvs; i++)
        kv_release(&s->kvs[i]);
    for (size_t i = 0; i < s->n_hist; i++)
        kv_release(&s->hist[i].kv);
    free(s->kvs);
    free(s->hist);
    free(s->fp);
    memset(s, 0, sizeof(*s));
}

static void store_copy(store_t *dst, const store_t *src)
{
    memset(dst, 0, sizeof(*dst));
    dst->revision = src->revision;
    dst->compact = src->compact;
    dst->cur_fp = src->cur_fp;
    dst->cap_kvs = dst->n_kvs = src->n_kvs;
    dst->kvs = xrealloc(NULL, src->n_kvs * sizeof(sim_kv_t));
    for (size_t i = 0; i < src->n_kvs; i++)
        dst->kvs[i] = kv_copy(&src->kvs[i]);
    dst->cap_hist = dst->n_hist = src->n_hist;
    dst->hist = xrealloc(NULL, src->n_hist * sizeof(sim_event_t));
    for (size_t i = 0; i < src->n_hist; i++) {
        dst->hist[i].is_delete = src->hist[i].is_delete;
        dst->hist[i].kv = kv_copy(&src->hist[i].kv);
    }
    dst->cap_fp = src->cap_fp;
    dst->fp = xrealloc(NULL, src->cap_fp * sizeof(uint64_t));
    if (src->cap_fp)
        memcpy(dst->fp, src->fp, src->cap_fp * sizeof(uint64_t));
}

static sim_kv_t *store_find(const store_t *s, const char *key, size_t *idx)
{
    for (size_t i = 0; i < s->n_kvs; i++)
        if (strcmp(s->kvs[i].key, key) == 0) {
            if (idx)
                *idx = i;
            return &s->kvs[i];
        }
    return NULL;
}

sim_etcd_t *sim_etcd_new(const char *view_prefix, uint64_t seed)
{
    sim_etcd_t *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->view_prefix = xstrdup(view_prefix);
    mesh_prng_seed(&e->prng, seed ^ 0xe7cdu);
    e->cur.revision = 1; /* a fresh etcd answers with revision 1 */
    store_set_fp(&e->cur, 1, 0);
    e->next_watch_id = 1;
    return e;
}

void sim_etcd_free(sim_etcd_t *e)
{
    if (!e)
        return;
    store_free(&e->cur);
    if (e->has_backup)
        store_free(&e->backup);
    for (size_t i = 0; i < e->n_lost; i++)
        free(e->lost[i].fp);
    free(e->lost);
    for (size_t i = 0; i < e->n_w; i++)
        free(e->w[i].prefix);
    free(e->w);
    for (size_t i = 0; i < e->n_txn; i++)
        kv_release(&e->txn[i].kv);
    free(e->txn);
    for (size_t i = 0; i < e->cap_ever; i++)
        free(e->ever[i]);
    free(e->ever);
    free(e->leases);
    free(e->view_prefix);
    free(e->partitioned);
    free(e);
}

int64_t sim_etcd_revision(const sim_etcd_t *e)
{
    return e->cur.revision;
}

int64_t sim_etcd_compact_revision(const sim_etcd_t *e)
{
    return e->cur.compact;
}

uint32_t sim_etcd_epoch(const sim_etcd_t *e)
{
    return e->epoch;
}

void sim_etcd_txn_begin(sim_etcd_t *e)
{
    for (size_t i = 0; i < e->n_txn; i++)
        kv_release(&e->txn[i].kv);
    e->n_txn = 0;
}

void sim_etcd_txn_put(sim_etcd_t *e, const char *key, const char *value, int64_t lease,
                      uint32_t tag)
{
    GROW(e->txn, e->n_txn, e->cap_txn);
    sim_event_t *ev = &e->txn[e->n_txn++];
    memset(ev, 0, sizeof(*ev));
    ev->kv.key = xstrdup(key);
    ev->kv.value = xstrdup(value ? value : "");
    ev->kv.lease = lease;
    ev->kv.tag = tag;
}

void sim_etcd_txn_delete(sim_etcd_t *e, const char *key)
{
    GROW(e->txn, e->n_txn, e->cap_txn);
    sim_event_t *ev = &e->txn[e->n_txn++];
    memset(ev, 0, sizeof(*ev));
    ev->is_delete = 1;
    ev->kv.key = xstrdup(key);
}

static uint64_t str_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

/* The slot of key in the ever-written set: where it is, or the empty slot it would go to. */
static size_t ever_slot(const sim_etcd_t *e, const char *key)
{
    size_t mask = e->cap_ever - 1, i = (size_t)str_hash(key) & mask;
    while (e->ever[i] && strcmp(e->ever[i], key) != 0)
        i = (i + 1) & mask;
    return i;
}

static void note_written(sim_etcd_t *e, const char *key)
{
    if (2 * (e->n_ever + 1) > e->cap_ever) {
        char **old = e->ever;
        size_t old_cap = e->cap_ever;
        e->cap_ever = old_cap ? old_cap * 2 : 64;
        e->ever = calloc(e->cap_ever, sizeof(*e->ever));
        if (!e->ever)
            abort();
        for (size_t i = 0; i < old_cap; i++)
            if (old[i])
                e->ever[ever_slot(e, old[i])] = old[i];
        free(old);
    }
    size_t i = ever_slot(e, key);
    if (!e->ever[i]) {
        e->ever[i] = xstrdup(key);
        e->n_ever++;
    }
}

int sim_etcd_ever_written(const sim_etcd_t *e, const char *key)
{
    return e->cap_ever && e->ever[ever_slot(e, key)] != NULL;
}

static sim_watch_line_t *line_new(int64_t header)
{
    sim_watch_line_t *l = calloc(1, sizeof(*l));
    if (!l)
        abort();
    l->header_revision = header;
    return l;
}

static void line_add(sim_watch_line_t *l, const sim_event_t *ev)
{
    l->events = xrealloc(l->events, (l->n_events + 1) * sizeof(*l->events));
    l->events[l->n_events].is_delete = ev->is_delete;
    l->events[l->n_events].kv = kv_copy(&ev->kv);
    l->n_events++;
}

/* Sends the events of revision rev (first at hist[from..to)) matching w's prefix. */
static void deliver_live(sim_etcd_t *e, watcher_t *w, size_t from, size_t to)
{
    sim_watch_line_t *l = NULL;
    for (size_t i = from; i < to; i++) {
        if (!has_prefix(e->cur.hist[i].kv.key, w->prefix))
            continue;
        if (!l)
            l = line_new(e->cur.revision);
        line_add(l, &e->cur.hist[i]);
    }
    if (l)
        w->sink(w->ctx, l);
}

int64_t sim_etcd_txn_commit(sim_etcd_t *e)
{
    store_t *s = &e->cur;
    size_t first = s->n_hist;
    int64_t rev = s->revision + 1;
    for (size_t i = 0; i < e->n_txn; i++) {
        sim_event_t *op = &e->txn[i];
        size_t idx = 0;
        sim_kv_t *old = store_find(s, op->kv.key, &idx);
        if (op->is_delete && !old)
            continue; /* deleting a missing key changes nothing */
        if (old && counts_in_view(e, old))
            s->cur_fp -= sim_kv_fp(old->key, old->mod_revision);
        sim_event_t ev = {.is_delete = op->is_delete};
        ev.kv = kv_copy(&op->kv);
        ev.kv.mod_revision = rev;
        if (op->is_delete) {
            ev.kv.lease = 0;
            ev.kv.create_revision = 0;
            kv_release(old);
            s->kvs[idx] = s->kvs[--s->n_kvs];
        } else {
            ev.kv.create_revision = old ? old->create_revision : rev;
            ev.kv.version = old ? old->version + 1 : 1;
            note_written(e, op->kv.key);
            if (old) {
                kv_release(old);
                *old = kv_copy(&ev.kv);
            } else {
                GROW(s->kvs, s->n_kvs, s->cap_kvs);
                s->kvs[s->n_kvs++] = kv_copy(&ev.kv);
            }
            if (counts_in_view(e, &ev.kv))
                s->cur_fp += sim_kv_fp(ev.kv.key, rev);
        }
        GROW(s->hist, s->n_hist, s->cap_hist);
        s->hist[s->n_hist++] = ev;
    }
    sim_etcd_txn_begin(e); /* clears the txn */
    if (s->n_hist == first)
        return 0;
    s->revision = rev;
    store_set_fp(s, rev, s->cur_fp);
    for (size_t i = 0; i < e->n_w; i++) {
        watcher_t *w = &e->w[i];
        if (w->next_rev <= rev) {
            deliver_live(e, w, first, s->n_hist);
            w->next_rev = rev + 1;
        }
    }
    return rev;
}

int64_t sim_etcd_revoke(sim_etcd_t *e, int64_t lease)
{
    sim_etcd_txn_begin(e);
    for (size_t i = 0; i < e->cur.n_kvs; i++)
        if (e->cur.kvs[i].lease == lease)
            sim_etcd_txn_delete(e, e->cur.kvs[i].key);
    return sim_etcd_txn_commit(e);
}

int64_t sim_etcd_lease_grant(sim_etcd_t *e, uint32_t client, int64_t ttl_s, uint64_t now_ns)
{
    if (!sim_etcd_reachable(e, client))
        return -1;
    GROW(e->leases, e->n_leases, e->cap_leases);
    int64_t id = 0x7000000000000000ll + ++e->next_lease;
    e->leases[e->n_leases++] = (struct sim_lease){
        .id = id, .ttl_s = ttl_s, .expires_ns = now_ns + (uint64_t)ttl_s * 1000000000ull};
    return id;
}

static struct sim_lease *lease_find(const sim_etcd_t *e, int64_t id, size_t *ix)
{
    for (size_t i = 0; i < e->n_leases; i++)
        if (e->leases[i].id == id) {
            if (ix)
                *ix = i;
            return &e->leases[i];
        }
    return NULL;
}

int64_t sim_etcd_lease_keepalive(sim_etcd_t *e, uint32_t client, int64_t id, uint64_t now_ns)
{
    if (!sim_etcd_reachable(e, client))
        return -1;
    struct sim_lease *l = lease_find(e, id, NULL);
    if (!l)
        return 0;
    l->expires_ns = now_ns + (uint64_t)l->ttl_s * 1000000000ull;
    return l->ttl_s;
}

int sim_etcd_lease_exists(const sim_etcd_t *e, int64_t id)
{
    return lease_find(e, id, NULL) != NULL;
}

int64_t sim_etcd_lease_revoke(sim_etcd_t *e, int64_t id)
{
    size_t ix;
    if (lease_find(e, id, &ix))
        e->leases[ix] = e->leases[--e->n_leases];
    return sim_etcd_revoke(e, id);
}

int sim_etcd_expire_leases(sim_etcd_t *e, uint64_t now_ns)
{
    int n = 0;
    for (size_t i = 0; i < e->n_leases;) {
        if (e->leases[i].expires_ns > now_ns) {
            i++;
            continue;
        }
        int64_t id = e->leases[i].id;
        e->leases[i] = e->leases[--e->n_leases];
        sim_etcd_revoke(e, id);
        n++;
    }
    return n;
}

int sim_etcd_compare(const sim_etcd_t *e, const char *key, int target, int result, int64_t value)
{
    const sim_kv_t *kv = store_find(&e->cur, key, NULL);
    int64_t v = 0;
    switch (target) {
    case 0:
        v = kv ? kv->version : 0;
        break;
    case 1:
        v = kv ? kv->create_revision : 0;
        break;
    case 2:
        v = kv ? kv->mod_revision : 0;
        break;
    default:
        v = kv ? kv->lease : 0;
        break;
    }
    switch (result) {
    case 0:
        return v == value;
    case 1:
        return v > value;
    case 2:
        return v < value;
    default:
        return v != value;
    }
}

int sim_etcd_compact(sim_etcd_t *e, int64_t rev)
{
    store_t *s = &e->cur;
    if (rev > s->revision)
        rev = s->revision;
    if (rev <= s->compact)
        return -1;
    s->compact = rev;
    size_t keep = 0;
    for (size_t i = 0; i < s->n_hist; i++) {
        if (s->hist[i].kv.mod_revision < rev)
            kv_release(&s->hist[i].kv);
        else
            s->hist[keep++] = s->hist[i];
    }
    s->n_hist = keep;
    return 0;
}

void sim_etcd_backup(sim_etcd_t *e)
{
    if (e->has_backup)
        store_free(&e->backup);
    store_copy(&e->backup, &e->cur);
    e->has_backup = 1;
}

static void remove_watcher(sim_etcd_t *e, size_t i)
{
    free(e->w[i].prefix);
    /* keep the order: lines of one revision go out in watch-open order */
    memmove(&e->w[i], &e->w[i + 1], (e->n_w - i - 1) * sizeof(*e->w));
    e->n_w--;
}

static int break_where(sim_etcd_t *e, int all, uint32_t client, sim_break_t how)
{
    int n = 0;
    for (size_t i = 0; i < e->n_w;) {
        watcher_t *w = &e->w[i];
        if (!all && w->client != client) {
            i++;
            continue;
        }
        sim_watch_line_t *l = line_new(e->cur.revision);
        if (how == SIM_BREAK_ERROR)
            l->error = 1;
        else if (how == SIM_BREAK_CANCEL)
            l->canceled = 1;
        else
            l->closed = 1;
        sim_watch_sink sink = w->sink;
        void *ctx = w->ctx;
        remove_watcher(e, i);
        sink(ctx, l);
        n++;
    }
    return n;
}

int sim_etcd_restore(sim_etcd_t *e)
{
    if (!e->has_backup || e->backup.revision == e->cur.revision)
        return -1;
    break_where(e, 1, 0, SIM_BREAK_CLOSE);
    e->lost = xrealloc(e->lost, (e->n_lost + 1) * sizeof(*e->lost));
    e->lost[e->n_lost].fp = e->cur.fp;
    e->lost[e->n_lost].revision = e->cur.revision;
    e->n_lost++;
    e->cur.fp = NULL;
    store_free(&e->cur);
    store_copy(&e->cur, &e->backup);
    e->epoch++;
    return 0;
}

void sim_etcd_set_down(sim_etcd_t *e, int down)
{
    e->down = down;
    if (down)
        break_where(e, 1, 0, SIM_BREAK_CLOSE);
}

void sim_etcd_set_partitioned(sim_etcd_t *e, uint32_t client, int partitioned)
{
    if (client >= e->n_partitioned) {
        if (!partitioned)
            return;
        size_t n = (size_t)client * 2 + 64;
        uint8_t *p = realloc(e->partitioned, n);
        if (!p)
            abort(); /* a simulation without memory cannot go on */
        memset(p + e->n_partitioned, 0, n - e->n_partitioned);
        e->partitioned = p;
        e->n_partitioned = n;
    }
    e->partitioned[client] = partitioned != 0;
    if (partitioned)
        break_where(e, 0, client, SIM_BREAK_CLOSE);
}

int sim_etcd_reachable(const sim_etcd_t *e, uint32_t client)
{
    return !e->down && !(client < e->n_partitioned && e->partitioned[client]);
}

int sim_etcd_break_watches(sim_etcd_t *e, uint32_t client, sim_break_t how)
{
    return break_where(e, 0, client, how);
}

static int cmp_kv(const void *a, const void *b)
{
    return strcmp(((const sim_kv_t *)a)->key, ((const sim_kv_t *)b)->key);
}

sim_range_t *sim_etcd_range(sim_etcd_t *e, uint32_t client, const char *prefix)
{
    if (!sim_etcd_reachable(e, client))
        return NULL;
    sim_range_t *r = calloc(1, sizeof(*r));
    if (!r)
        abort();
    r->revision = e->cur.revision;
    r->epoch = e->epoch;
    r->kvs = xrealloc(NULL, e->cur.n_kvs * sizeof(sim_kv_t));
    for (size_t i = 0; i < e->cur.n_kvs; i++)
        if (has_prefix(e->cur.kvs[i].key, prefix))
            r->kvs[r->n++] = kv_copy(&e->cur.kvs[i]);
    qsort(r->kvs, r->n, sizeof(*r->kvs), cmp_kv);
    return r;
}

int64_t sim_etcd_watch(sim_etcd_t *e, uint32_t client, const char *prefix, int64_t start_revision,
                       sim_watch_sink sink, void *ctx)
{
    if (!sim_etcd_reachable(e, client))
        return -1;
    store_t *s = &e->cur;
    int64_t id = e->next_watch_id++;
    sim_watch_line_t *created = line_new(s->revision);
    created->created = 1;
    sink(ctx, created);
    if (start_revision <= 0)
        start_revision = s->revision + 1;
    if (s->compact > 0 && start_revision < s->compact) {
        sim_watch_line_t *l = line_new(s->revision);
        l->canceled = 1;
        l->compact_revision = s->compact;
        sink(ctx, l);
        return id; /* canceled: not registered */
    }
    /* Replay the history, one to three revisions per line, as etcd batches a catching-up
     * watcher's events. */
    sim_watch_line_t *l = NULL;
    int revs_in_line = 0, max_revs = 1 + (int)mesh_prng_below(&e->prng, 3);
    int64_t last_rev = 0;
    for (size_t i = 0; i < s->n_hist; i++) {
        const sim_event_t *ev = &s->hist[i];
        if (ev->kv.mod_revision < start_revision || !has_prefix(ev->kv.key, prefix))
            continue;
        if (ev->kv.mod_revision != last_rev) {
            if (l && revs_in_line >= max_revs) {
                sink(ctx, l);
                l = NULL;
                max_revs = 1 + (int)mesh_prng_below(&e->prng, 3);
            }
            if (!l) {
                l = line_new(s->revision);
                revs_in_line = 0;
            }
            revs_in_line++;
            last_rev = ev->kv.mod_revision;
        }
        line_add(l, ev);
    }
    if (l)
        sink(ctx, l);
    GROW(e->w, e->n_w, e->cap_w);
    watcher_t *w = &e->w[e->n_w++];
    w->id = id;
    w->client = client;
    w->prefix = xstrdup(prefix);
    w->next_rev = start_revision > s->revision ? start_revision : s->revision + 1;
    w->sink = sink;
    w->ctx = ctx;
    return id;
}

void sim_etcd_watch_cancel(sim_etcd_t *e, int64_t id)
{
    for (size_t i = 0; i < e->n_w; i++)
        if (e->w[i].id == id) {
            remove_watcher(e, i);
            return;
        }
}

void sim_etcd_progress(sim_etcd_t *e)
{
    for (size_t i = 0; i < e->n_w; i++) {
        sim_watch_line_t *l = line_new(e->cur.revision);
        l->progress = 1;
        e->w[i].sink(e->w[i].ctx, l);
    }
}

size_t sim_etcd_open_watches(const sim_etcd_t *e)
{
    return e->n_w;
}

size_t sim_etcd_live_count(const sim_etcd_t *e)
{
    return e->cur.n_kvs;
}

const sim_kv_t *sim_etcd_live_at(const sim_etcd_t *e, size_t i)
{
    return i < e->cur.n_kvs ? &e->cur.kvs[i] : NULL;
}

const sim_kv_t *sim_etcd_get(const sim_etcd_t *e, const char *key)
{
    return store_find(&e->cur, key, NULL);
}

uint64_t sim_etcd_fingerprint(const sim_etcd_t *e)
{
    return e->cur.cur_fp;
}

static int fp_at(const uint64_t *fp, int64_t revision, int64_t rev, uint64_t want)
{
    return fp && rev >= 1 && rev <= revision && fp[rev] == want;
}

int sim_etcd_fp_existed(const sim_etcd_t *e, int64_t rev, uint64_t fp)
{
    if (fp_at(e->cur.fp, e->cur.revision, rev, fp))
        return 1;
    for (size_t i = 0; i < e->n_lost; i++)
        if (fp_at(e->lost[i].fp, e->lost[i].revision, rev, fp))
            return 1;
    return 0;
}

void sim_etcd_line_free(sim_watch_line_t *line)
{
    if (!line)
        return;
    for (size_t i = 0; i < line->n_events; i++)
        kv_release(&line->events[i].kv);
    free(line->events);
    free(line);
}

void sim_etcd_range_free(sim_range_t *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        kv_release(&r->kvs[i]);
    free(r->kvs);
    free(r);
}
