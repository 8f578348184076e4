/*
 * monitor/valve.c: the global, per-zone and rate valves (see monitor/valve.h).
 */
#include "monitor/valve.h"

#include <stdio.h>
#include <string.h>

void mon_valve_init(mon_valve_t *v, const mon_valve_cfg_t *cfg)
{
    memset(v, 0, sizeof(*v));
    if (cfg)
        v->cfg = *cfg;
    if (v->cfg.max_share <= 0 || v->cfg.max_share > 1)
        v->cfg.max_share = 0.5;
    if (v->cfg.zone_share <= 0 || v->cfg.zone_share > 1)
        v->cfg.zone_share = 0.5;
    if (!v->cfg.per_minute)
        v->cfg.per_minute = 10;
}

static void refill(mon_valve_t *v, uint64_t now)
{
    if (!v->started) {
        v->started = 1;
        v->tokens = v->cfg.per_minute;
        v->refilled_at = now;
        return;
    }
    if (now > v->refilled_at) {
        v->tokens += (double)(now - v->refilled_at) * v->cfg.per_minute / 60000.0;
        if (v->tokens > v->cfg.per_minute)
            v->tokens = v->cfg.per_minute;
        v->refilled_at = now;
    }
}

size_t mon_valve_decide(mon_valve_t *v, const mon_table_t *t, mon_inst_t *const *cand, size_t n,
                        uint64_t now, mon_valve_say_t *say)
{
    v->reason[0] = '\0';
    refill(v, now);
    if (n == 0) {
        v->global_closed = 0;
        return 0;
    }
    size_t registered, evicted;
    mon_table_counts(t, &registered, &evicted, NULL);
    size_t total = registered + evicted;
    /* Registered instances whose last check failed count too: when the monitor itself is cut
     * off, every check starts failing within one interval, but the instances reach the failure
     * threshold in different rounds; counting only the candidates would let the first few go. */
    size_t failing = 0;
    for (size_t k = 0; k < t->n; k++)
        failing += t->v[k]->state == MON_INST_REGISTERED && t->v[k]->fails > 0;
    if (failing < n)
        failing = n; /* the candidates are failing instances themselves */
    if ((double)(evicted + failing) > v->cfg.max_share * (double)total) {
        for (size_t i = 0; i < n; i++)
            say[i] = MON_VALVE_GLOBAL;
        v->held_global += n;
        v->global_closed = 1;
        snprintf(v->reason, sizeof(v->reason),
                 "safety valve: %zu of %zu instances failing (%zu of them eviction candidates, "
                 "%zu evicted already) would exceed %.0f%%; evicting none",
                 failing, total, n, evicted, v->cfg.max_share * 100);
        return 0;
    }
    v->global_closed = 0;
    size_t go = 0;
    for (size_t i = 0; i < n; i++) {
        say[i] = MON_VALVE_GO;
        const char *zone = cand[i]->zone;
        if (!zone[0])
            continue;
        size_t z_total = 0, z_out = 0, z_cand = 0;
        for (size_t k = 0; k < t->n; k++) {
            if (strcmp(t->v[k]->zone, zone) != 0)
                continue;
            z_total++;
            z_out += t->v[k]->state == MON_INST_EVICTED;
        }
        for (size_t k = 0; k < n; k++)
            z_cand += strcmp(cand[k]->zone, zone) == 0;
        if ((double)(z_out + z_cand) > v->cfg.zone_share * (double)z_total) {
            say[i] = MON_VALVE_ZONE;
            v->held_zone++;
            snprintf(v->reason, sizeof(v->reason),
                     "zone valve: evicting %zu more of zone %s's %zu instances (%zu evicted "
                     "already) would exceed %.0f%%",
                     z_cand, zone, z_total, z_out, v->cfg.zone_share * 100);
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (say[i] != MON_VALVE_GO)
            continue;
        if (v->tokens >= 1.0) {
            v->tokens -= 1.0;
            go++;
            continue;
        }
        say[i] = MON_VALVE_RATE;
        v->held_rate++;
        snprintf(v->reason, sizeof(v->reason),
                 "rate limit: at most %u evictions per minute; the rest wait", v->cfg.per_minute);
    }
    return go;
}

const char *mon_valve_say_name(mon_valve_say_t s)
{
    switch (s) {
    case MON_VALVE_GO:
        return "go";
    case MON_VALVE_GLOBAL:
        return "global";
    case MON_VALVE_ZONE:
        return "zone";
    case MON_VALVE_RATE:
        return "rate";
    }
    return "?";
}
