/*
 * simulations/sim_check.c: the registry simulation's invariants (see sim_check.h).
 */
#include "simulations/sim_check.h"

#include <stdio.h>
#include <string.h>

#include "registry/instance.h"
#include "simulations/sim_values.h"

uint64_t sim_check_fingerprint(const reg_table_t *t)
{
    uint64_t fp = 0;
    for (size_t i = 0; i < t->n_buckets; i++)
        for (const reg_entry_t *e = t->buckets[i]; e; e = e->next)
            fp += sim_kv_fp(e->key, e->mod_revision);
    return fp;
}

int sim_check_published(const sim_etcd_t *e, const reg_view_t *w, uint64_t fp, char *why,
                        size_t cap)
{
    const reg_table_t *t = reg_view_table(w);
    for (size_t i = 0; i < t->n_buckets; i++)
        for (const reg_entry_t *en = t->buckets[i]; en; en = en->next)
            if (!sim_etcd_ever_written(e, en->key)) {
                snprintf(why, cap, "published key %s that was never written", en->key);
                return -1;
            }
    int64_t rev = reg_view_sm(w)->revision;
    if (!sim_etcd_fp_existed(e, rev, fp)) {
        snprintf(why, cap,
                 "published a view (%zu entries, fingerprint %016llx) that etcd never had at "
                 "revision %lld (etcd is at %lld)",
                 t->n_entries, (unsigned long long)fp, (long long)rev,
                 (long long)sim_etcd_revision(e));
        return -1;
    }
    return 0;
}

static int str_eq(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

/* Compares a valid entry with what parsing the stored value gives. */
static int fields_match(const reg_entry_t *en, const sim_kv_t *kv, const char *prefix, char *why,
                        size_t cap)
{
    reg_value_t v;
    reg_key_t k;
    size_t pl = strlen(prefix);
    while (pl && prefix[pl - 1] == '/')
        pl--;
    if (reg_key_parse(kv->key, strlen(kv->key), prefix, pl, &k) < 0 ||
        reg_value_parse(kv->value, strlen(kv->value), &v) != REG_VALUE_OK) {
        snprintf(why, cap, "%s is valid in the table but etcd's value does not parse: %s", kv->key,
                 kv->value);
        return -1;
    }
    int ok = strlen(en->service) == k.service_len &&
             memcmp(en->service, k.service, k.service_len) == 0 && str_eq(en->addr, v.inst.addr) &&
             str_eq(en->node, v.inst.node) && str_eq(en->zone, v.inst.zone) &&
             str_eq(en->version, v.inst.version) && en->weight == v.inst.weight &&
             en->n_methods == v.inst.n_methods;
    for (size_t i = 0; ok && i < v.inst.n_methods; i++)
        ok = str_eq(en->methods[i], v.inst.methods[i]);
    reg_value_release(&v);
    if (!ok) {
        snprintf(why, cap, "%s: the table's fields differ from etcd's value %s", kv->key,
                 kv->value);
        return -1;
    }
    return 0;
}

int sim_check_final(const sim_etcd_t *e, const reg_view_t *w, const char *prefix, char *why,
                    size_t cap)
{
    const reg_watch_sm_t *sm = reg_view_sm(w);
    const reg_table_t *t = reg_view_table(w);
    if (sm->link != REG_LINK_CONNECTED || sm->state != REG_WATCH_WATCHING) {
        snprintf(why, cap, "link %s, state %s after healing (want connected, watching)",
                 reg_link_name(sm->link), reg_watch_state_name(sm->state));
        return -1;
    }
    if (sm->revision != sim_etcd_revision(e)) {
        snprintf(why, cap, "revision %lld, etcd is at %lld", (long long)sm->revision,
                 (long long)sim_etcd_revision(e));
        return -1;
    }
    size_t want = 0;
    for (size_t i = 0; i < sim_etcd_live_count(e); i++) {
        const sim_kv_t *kv = sim_etcd_live_at(e, i);
        if (strncmp(kv->key, prefix, strlen(prefix)) != 0)
            continue;
        const reg_entry_t *en = reg_table_find(t, kv->key, strlen(kv->key));
        if (kv->tag & SIM_TAG_HIDDEN) {
            if (en) {
                snprintf(why, cap, "%s holds a resolver Delete record but is in the table",
                         kv->key);
                return -1;
            }
            continue;
        }
        want++;
        if (!en) {
            snprintf(why, cap, "%s (mod_revision %lld) is live in etcd but missing", kv->key,
                     (long long)kv->mod_revision);
            return -1;
        }
        if (en->mod_revision != kv->mod_revision) {
            snprintf(why, cap, "%s: mod_revision %lld in the table, %lld in etcd", kv->key,
                     (long long)en->mod_revision, (long long)kv->mod_revision);
            return -1;
        }
        int malformed = (kv->tag & SIM_TAG_MALFORMED) != 0;
        if (en->valid == malformed) {
            snprintf(why, cap, "%s: %s in the table, %s in etcd (%s)", kv->key,
                     en->valid ? "valid" : "skipped", malformed ? "malformed" : "an instance",
                     kv->value);
            return -1;
        }
        if (en->valid && en->lease != kv->lease) {
            snprintf(why, cap, "%s: lease %lld in the table, %lld in etcd", kv->key,
                     (long long)en->lease, (long long)kv->lease);
            return -1;
        }
        if (en->valid && fields_match(en, kv, prefix, why, cap) < 0)
            return -1;
    }
    if (t->n_entries != want) {
        snprintf(why, cap, "the table has %zu entries, etcd %zu keys (a key etcd lacks)",
                 t->n_entries, want);
        return -1;
    }
    if (sim_check_fingerprint(t) != sim_etcd_fingerprint(e)) {
        snprintf(why, cap, "table fingerprint differs from etcd's");
        return -1;
    }
    return 0;
}
