/*
 * monitor/valve.h: the safety valves between the verdicts and etcd, without I/O.
 *
 * A monitor cut off from the network sees every instance fail; it must not empty the
 * registry. Before each batch of evictions the leader asks the valves, in this order:
 *
 *   - global: if the instances evicted already plus every registered instance whose last
 *     check failed (this batch among them) would exceed `max_share` of all known instances
 *     (registered + evicted), nothing is evicted in this round. Counting the failing ones, not
 *     only the candidates, closes the valve in the round a cut-off monitor sees the first
 *     failures reach the threshold, although the instances reach it in different rounds;
 *   - zone: likewise per zone (`zone_share` of the zone's instances), for instances that
 *     registered a zone; a zone over its share keeps all of its candidates;
 *   - rate: at most `per_minute` evictions per minute (a token bucket holding at most that
 *     many); candidates beyond it wait for the next round.
 *
 * Held candidates stay candidates: they go in a later round once the valve lets them. Every
 * decision that holds something carries a reason for the log and the audit event.
 */
#ifndef MON_VALVE_H
#define MON_VALVE_H

#include <stddef.h>
#include <stdint.h>

#include "monitor/verdict.h"

/** Valve settings. */
typedef struct mon_valve_cfg {
    double max_share;    /* default 0.5 (0 < share <= 1) */
    double zone_share;   /* default 0.5 */
    uint32_t per_minute; /* default 10 */
} mon_valve_cfg_t;

/** What the valves said about one candidate. */
typedef enum {
    MON_VALVE_GO = 0,
    MON_VALVE_GLOBAL = 1, /* held by the global share */
    MON_VALVE_ZONE = 2,   /* held by its zone's share */
    MON_VALVE_RATE = 3,   /* held by the rate limit (goes in a later round) */
} mon_valve_say_t;

/** The valves' state. */
typedef struct mon_valve {
    mon_valve_cfg_t cfg;
    double tokens;
    uint64_t refilled_at;
    int started;
    uint64_t held_global, held_zone, held_rate; /* candidates held, by valve, in total */
    int global_closed;                          /* the last batch was held by the global share */
    char reason[256];                           /* why the last batch was (partly) held */
} mon_valve_t;

/** Initializes (zeroed cfg fields take the defaults). */
void mon_valve_init(mon_valve_t *v, const mon_valve_cfg_t *cfg);

/**
 * Decides a batch of n eviction candidates of table t at time now: say[i] for cand[i].
 * Returns how many may go now. v->reason says why others were held ("" when none was).
 */
size_t mon_valve_decide(mon_valve_t *v, const mon_table_t *t, mon_inst_t *const *cand, size_t n,
                        uint64_t now, mon_valve_say_t *say);

/** Name of a decision ("go", "global", "zone", "rate"). */
const char *mon_valve_say_name(mon_valve_say_t s);

#endif
