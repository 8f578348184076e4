/*
 * monitor/verdict.c: the instance table, check counts and re-admission hysteresis (see
 * monitor/verdict.h).
 */
#include "monitor/verdict.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

void mon_table_init(mon_table_t *t, const mon_verdict_cfg_t *cfg)
{
    memset(t, 0, sizeof(*t));
    if (cfg)
        t->cfg = *cfg;
    if (!t->cfg.fail_threshold)
        t->cfg.fail_threshold = 3;
    if (!t->cfg.ok_threshold)
        t->cfg.ok_threshold = 2;
    if (!t->cfg.readmit_delay)
        t->cfg.readmit_delay = 10000;
    if (!t->cfg.readmit_max)
        t->cfg.readmit_max = 600000;
}

static void inst_free(mon_inst_t *i)
{
    if (!i)
        return;
    free(i->id);
    free(i->service);
    free(i->addr);
    free(i->zone);
    free(i);
}

void mon_table_destroy(mon_table_t *t)
{
    for (size_t i = 0; i < t->n; i++) {
        if (t->on_forget)
            t->on_forget(t->forget_ud, t->v[i]);
        inst_free(t->v[i]);
    }
    free(t->v);
    free(t->slots);
    memset(t, 0, sizeof(*t));
}

/* Rebuilds the index with room for twice the instances. 0 or -1. */
static int reindex(mon_table_t *t, size_t want)
{
    size_t n_slots = 64;
    while (n_slots < want * 2)
        n_slots *= 2;
    size_t *slots = calloc(n_slots, sizeof(*slots));
    if (!slots)
        return -1;
    for (size_t i = 0; i < t->n; i++) {
        size_t s = (size_t)hash(t->v[i]->id) & (n_slots - 1);
        while (slots[s])
            s = (s + 1) & (n_slots - 1);
        slots[s] = i + 1;
    }
    free(t->slots);
    t->slots = slots;
    t->n_slots = n_slots;
    return 0;
}

mon_inst_t *mon_table_find(const mon_table_t *t, const char *id)
{
    if (!t->n_slots)
        return NULL;
    for (size_t s = (size_t)hash(id) & (t->n_slots - 1); t->slots[s];
         s = (s + 1) & (t->n_slots - 1))
        if (strcmp(t->v[t->slots[s] - 1]->id, id) == 0)
            return t->v[t->slots[s] - 1];
    return NULL;
}

/* The instance of service/addr, created when new. */
static mon_inst_t *get(mon_table_t *t, const char *service, const char *addr)
{
    size_t len = strlen(service) + strlen(addr) + 2;
    char *id = malloc(len);
    if (!id)
        return NULL;
    snprintf(id, len, "%s/%s", service, addr);
    mon_inst_t *i = mon_table_find(t, id);
    if (i) {
        free(id);
        return i;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        mon_inst_t **v = realloc(t->v, cap * sizeof(*v));
        if (!v) {
            free(id);
            return NULL;
        }
        t->v = v;
        t->cap = cap;
    }
    i = calloc(1, sizeof(*i));
    if (!i || !(i->service = strdup(service)) || !(i->addr = strdup(addr)) ||
        !(i->zone = strdup(""))) {
        free(id);
        inst_free(i);
        return NULL;
    }
    i->id = id;
    t->v[t->n++] = i;
    if (t->n * 2 > t->n_slots) { /* grow: the new index holds the new instance too */
        if (reindex(t, t->n) != 0) {
            t->v[--t->n] = NULL;
            inst_free(i);
            return NULL;
        }
    } else {
        size_t s = (size_t)hash(id) & (t->n_slots - 1);
        while (t->slots[s])
            s = (s + 1) & (t->n_slots - 1);
        t->slots[s] = t->n;
    }
    return i;
}

void mon_table_begin_sync(mon_table_t *t)
{
    for (size_t i = 0; i < t->n; i++)
        t->v[i]->reg_seen = t->v[i]->marker_seen = 0;
}

mon_inst_t *mon_table_put_registration(mon_table_t *t, const char *service, const char *addr,
                                       const char *zone, int64_t mod_revision, int64_t lease)
{
    mon_inst_t *i = get(t, service, addr);
    if (!i)
        return NULL;
    if (zone && strcmp(zone, i->zone) != 0) {
        char *z = strdup(zone);
        if (!z)
            return NULL;
        free(i->zone);
        i->zone = z;
    }
    i->reg_seen = 1;
    i->mod_revision = mod_revision;
    i->lease = lease;
    return i;
}

mon_inst_t *mon_table_put_marker(mon_table_t *t, const char *service, const char *addr,
                                 int64_t lease, int64_t mod_revision, uint32_t evictions,
                                 const char *zone, uint64_t now)
{
    mon_inst_t *i = get(t, service, addr);
    if (!i)
        return NULL;
    if (zone && zone[0] && !i->zone[0]) {
        char *z = strdup(zone);
        if (z) { /* out of memory: the zone stays unknown until the next listing */
            free(i->zone);
            i->zone = z;
        }
    }
    i->marker_seen = 1;
    if (!i->has_marker && evictions > i->evictions) {
        /* A marker another leader wrote: take over its count and a fresh delay. */
        i->evictions = evictions;
        i->readmit_after = now + mon_verdict_readmit_delay(t, evictions);
    }
    i->has_marker = 1;
    i->marker_lease = lease;
    i->marker_mod_revision = mod_revision;
    return i;
}

void mon_table_end_sync(mon_table_t *t, uint64_t now)
{
    (void)now;
    size_t w = 0;
    int removed = 0;
    for (size_t r = 0; r < t->n; r++) {
        mon_inst_t *i = t->v[r];
        if (!i->reg_seen && !i->marker_seen && !i->busy) {
            if (t->on_forget)
                t->on_forget(t->forget_ud, i);
            inst_free(i);
            removed = 1;
            continue;
        }
        if (!i->marker_seen && !i->busy)
            i->has_marker = 0;
        mon_inst_state_t st = i->reg_seen ? MON_INST_REGISTERED : MON_INST_EVICTED;
        if (!i->reg_seen && !i->has_marker)
            st = i->state; /* busy and listed nowhere: keep until the txn answers */
        if (st != i->state) {
            i->fails = i->oks = 0;
            i->state = st;
        }
        t->v[w++] = i;
    }
    t->n = w;
    if (removed && reindex(t, t->n) != 0) {
        free(t->slots); /* out of memory: lookups miss until the next sync, never misread */
        t->slots = NULL;
        t->n_slots = 0;
    }
}

void mon_verdict_result(mon_table_t *t, mon_inst_t *inst, int ok, const char *error, uint64_t now)
{
    (void)t;
    inst->last_check = now;
    if (ok) {
        inst->oks++;
        inst->fails = 0;
        inst->last_error[0] = '\0';
    } else {
        inst->fails++;
        inst->oks = 0;
        snprintf(inst->last_error, sizeof(inst->last_error), "%s", error ? error : "failed");
    }
}

int mon_verdict_should_evict(const mon_table_t *t, const mon_inst_t *inst)
{
    return inst->state == MON_INST_REGISTERED && !inst->busy &&
           inst->fails >= t->cfg.fail_threshold;
}

int mon_verdict_should_readmit(const mon_table_t *t, const mon_inst_t *inst, uint64_t now)
{
    return inst->state == MON_INST_EVICTED && inst->has_marker && !inst->busy &&
           inst->oks >= t->cfg.ok_threshold && now >= inst->readmit_after;
}

uint64_t mon_verdict_readmit_delay(const mon_table_t *t, uint32_t n)
{
    uint64_t d = t->cfg.readmit_delay;
    for (uint32_t k = 1; k < n && d < t->cfg.readmit_max; k++)
        d *= 2;
    return d < t->cfg.readmit_max ? d : t->cfg.readmit_max;
}

void mon_verdict_evicted(mon_table_t *t, mon_inst_t *inst, uint64_t now)
{
    inst->evictions++;
    inst->readmit_after = now + mon_verdict_readmit_delay(t, inst->evictions);
    inst->state = MON_INST_EVICTED;
    inst->fails = inst->oks = 0;
}

void mon_table_counts(const mon_table_t *t, size_t *registered, size_t *evicted, size_t *failing)
{
    size_t r = 0, e = 0, f = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (t->v[i]->state == MON_INST_REGISTERED) {
            r++;
            if (t->v[i]->fails)
                f++;
        } else {
            e++;
        }
    }
    if (registered)
        *registered = r;
    if (evicted)
        *evicted = e;
    if (failing)
        *failing = f;
}
