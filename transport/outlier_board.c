/*
 * transport/outlier_board.c: per-address outlier slots shared by the proxy's workers (a hash
 * table under one lock, taken when endpoints come and go) and the lock-free fast paths of a
 * slot; see transport/outlier_board.h.
 */
#include "transport/outlier_board.h"

#include <stdlib.h>
#include <string.h>

struct mesh_outlier_board {
    pthread_mutex_t mu; /* the table */
    mesh_outlier_slot_t **buckets;
    size_t n_buckets, n_slots;
    _Atomic uint64_t ejections, returns, held_back, ejected, panic;
};

static size_t hash_str(const char *s)
{
    size_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

mesh_outlier_board_t *mesh_outlier_board_new(void)
{
    mesh_outlier_board_t *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->n_buckets = 64;
    b->buckets = calloc(b->n_buckets, sizeof(*b->buckets));
    if (!b->buckets) {
        free(b);
        return NULL;
    }
    pthread_mutex_init(&b->mu, NULL);
    return b;
}

void mesh_outlier_board_free(mesh_outlier_board_t *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n_buckets; i++) {
        mesh_outlier_slot_t *next;
        for (mesh_outlier_slot_t *s = b->buckets[i]; s; s = next) {
            next = s->next;
            pthread_mutex_destroy(&s->mu);
            free(s);
        }
    }
    pthread_mutex_destroy(&b->mu);
    free(b->buckets);
    free(b);
}

/* Doubles the table when it holds more slots than buckets (under b->mu). */
static void grow(mesh_outlier_board_t *b)
{
    size_t n = b->n_buckets * 2;
    mesh_outlier_slot_t **nb = calloc(n, sizeof(*nb));
    if (!nb)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < b->n_buckets; i++) {
        while (b->buckets[i]) {
            mesh_outlier_slot_t *s = b->buckets[i];
            b->buckets[i] = s->next;
            size_t k = hash_str(s->addr) % n;
            s->next = nb[k];
            nb[k] = s;
        }
    }
    free(b->buckets);
    b->buckets = nb;
    b->n_buckets = n;
}

mesh_outlier_slot_t *mesh_outlier_board_get(mesh_outlier_board_t *b, const char *addr)
{
    pthread_mutex_lock(&b->mu);
    size_t k = hash_str(addr) % b->n_buckets;
    for (mesh_outlier_slot_t *s = b->buckets[k]; s; s = s->next) {
        if (strcmp(s->addr, addr) == 0) {
            s->refs++;
            pthread_mutex_unlock(&b->mu);
            return s;
        }
    }
    size_t len = strlen(addr);
    mesh_outlier_slot_t *s = calloc(1, sizeof(*s) + len + 1);
    if (!s) {
        pthread_mutex_unlock(&b->mu);
        return NULL;
    }
    memcpy(s->addr, addr, len + 1);
    pthread_mutex_init(&s->mu, NULL);
    mesh_outlier_init(&s->o);
    s->refs = 1;
    s->next = b->buckets[k];
    b->buckets[k] = s;
    if (++b->n_slots > b->n_buckets)
        grow(b);
    pthread_mutex_unlock(&b->mu);
    return s;
}

void mesh_outlier_board_put(mesh_outlier_board_t *b, mesh_outlier_slot_t *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&b->mu);
    if (--s->refs > 0) {
        pthread_mutex_unlock(&b->mu);
        return;
    }
    mesh_outlier_slot_t **pp = &b->buckets[hash_str(s->addr) % b->n_buckets];
    while (*pp != s)
        pp = &(*pp)->next;
    *pp = s->next;
    b->n_slots--;
    if (atomic_load(&s->ejected))
        atomic_fetch_sub(&b->ejected, 1);
    pthread_mutex_unlock(&b->mu);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

void mesh_outlier_board_panic(mesh_outlier_board_t *b)
{
    atomic_fetch_add_explicit(&b->panic, 1, memory_order_relaxed);
}

void mesh_outlier_board_stats(mesh_outlier_board_t *b, mesh_outlier_board_stats_t *out)
{
    out->ejections = atomic_load(&b->ejections);
    out->returns = atomic_load(&b->returns);
    out->held_back = atomic_load(&b->held_back);
    out->ejected = atomic_load(&b->ejected);
    out->panic = atomic_load(&b->panic);
    pthread_mutex_lock(&b->mu);
    out->slots = b->n_slots;
    pthread_mutex_unlock(&b->mu);
}

void mesh_outlier_board_each_ejected(mesh_outlier_board_t *b,
                                     void (*fn)(void *ud, const char *addr, uint64_t until_ms),
                                     void *ud)
{
    pthread_mutex_lock(&b->mu);
    for (size_t i = 0; i < b->n_buckets; i++)
        for (mesh_outlier_slot_t *s = b->buckets[i]; s; s = s->next)
            if (mesh_outlier_slot_ejected(s))
                fn(ud, s->addr, atomic_load_explicit(&s->blocked_until, memory_order_relaxed));
    pthread_mutex_unlock(&b->mu);
}

/* Makes the state machine's state visible to the lock-free readers (under s->mu). */
static void publish(mesh_outlier_board_t *b, mesh_outlier_slot_t *s)
{
    const mesh_outlier_t *o = &s->o;
    uint64_t blocked = 0;
    if (o->ejected)
        blocked = o->ejected_until_ms > o->probe_until_ms ? o->ejected_until_ms : o->probe_until_ms;
    atomic_store_explicit(&s->blocked_until, blocked, memory_order_relaxed);
    atomic_store_explicit(&s->hot, o->ejected || o->consecutive, memory_order_relaxed);
    uint32_t was = atomic_exchange_explicit(&s->ejected, o->ejected, memory_order_relaxed);
    if (was && !o->ejected)
        atomic_fetch_sub(&b->ejected, 1);
    else if (!was && o->ejected)
        atomic_fetch_add(&b->ejected, 1);
}

/* Counts an effect for /metrics. */
static void count(mesh_outlier_board_t *b, mesh_outlier_effect_t e)
{
    switch (e) {
    case MESH_OUTLIER_EJECTED:
        atomic_fetch_add(&b->ejections, 1);
        break;
    case MESH_OUTLIER_RETURNED:
        atomic_fetch_add(&b->returns, 1);
        break;
    case MESH_OUTLIER_HELD_BACK:
        atomic_fetch_add(&b->held_back, 1);
        break;
    default:
        break;
    }
}

int mesh_outlier_slot_take_probe(mesh_outlier_board_t *b, mesh_outlier_slot_t *s,
                                 const mesh_outlier_cfg_t *cfg, uint64_t now)
{
    pthread_mutex_lock(&s->mu);
    int ok = 1;
    if (s->o.ejected) {
        ok = mesh_outlier_up(&s->o, now); /* another worker may have taken the probe */
        if (ok) {
            mesh_outlier_picked(&s->o, cfg, now);
            publish(b, s);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return ok;
}

mesh_outlier_effect_t mesh_outlier_slot_count(mesh_outlier_board_t *b, mesh_outlier_slot_t *s,
                                              const mesh_outlier_cfg_t *cfg,
                                              mesh_outlier_outcome_t outcome, size_t n_endpoints,
                                              size_t n_ejected, uint64_t now, uint64_t *out_ms)
{
    if (cfg->disabled || outcome == MESH_OUTLIER_NEUTRAL)
        return MESH_OUTLIER_NONE;
    pthread_mutex_lock(&s->mu);
    mesh_outlier_effect_t e =
        mesh_outlier_report(&s->o, cfg, outcome, n_endpoints, n_ejected, now, out_ms);
    if (e == MESH_OUTLIER_HELD_BACK && s->o.consecutive > cfg->consecutive)
        e = MESH_OUTLIER_NONE; /* told once per streak of failures, not once per failure */
    publish(b, s);
    pthread_mutex_unlock(&s->mu);
    count(b, e);
    return e;
}

mesh_outlier_effect_t mesh_outlier_slot_eject(mesh_outlier_board_t *b, mesh_outlier_slot_t *s,
                                              const mesh_outlier_cfg_t *cfg, size_t n_endpoints,
                                              size_t n_ejected, uint64_t now, uint64_t *out_ms)
{
    pthread_mutex_lock(&s->mu);
    mesh_outlier_effect_t e = mesh_outlier_eject(&s->o, cfg, n_endpoints, n_ejected, now, out_ms);
    publish(b, s);
    pthread_mutex_unlock(&s->mu);
    count(b, e);
    return e;
}

int mesh_outlier_slot_window(mesh_outlier_slot_t *s, const mesh_olw_cfg_t *cfg, const mesh_olw_t *w,
                             uint32_t *pct, uint32_t *volume)
{
    pthread_mutex_lock(&s->mu);
    int eject = mesh_olw_merge(&s->fp, cfg, w);
    *pct = s->fp.last_pct;
    *volume = s->fp.last_volume;
    pthread_mutex_unlock(&s->mu);
    return eject;
}

void mesh_outlier_slot_sr(mesh_outlier_slot_t *s, uint64_t idx, const mesh_olsr_ep_t *mine,
                          mesh_olsr_ep_t *out)
{
    pthread_mutex_lock(&s->mu);
    mesh_olsr_merge(&s->sr, idx, mine, out);
    pthread_mutex_unlock(&s->mu);
}

void mesh_outlier_slot_reset(mesh_outlier_board_t *b, mesh_outlier_slot_t *s)
{
    pthread_mutex_lock(&s->mu);
    mesh_outlier_init(&s->o);
    s->fp = (mesh_olw_sum_t){0};
    s->sr = (mesh_olsr_sum_t){0};
    publish(b, s);
    pthread_mutex_unlock(&s->mu);
}
