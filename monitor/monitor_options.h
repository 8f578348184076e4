/*
 * monitor/monitor_options.h: the `meshd monitor` options (monitor.*), a config section of
 * their own (common/config.h). YAML `monitor: {interval: 5s}`, MESHD_MONITOR_INTERVAL and
 * --monitor-interval all set monitor.interval. node/main.c registers the section.
 */
#ifndef MON_OPTIONS_H
#define MON_OPTIONS_H

#include <stdint.h>

#include "common/config.h"

/** The values of the monitor.* options. Durations are in milliseconds. */
typedef struct mon_options {
    int64_t interval_ms;      /* monitor.interval: one probing round */
    int64_t check_timeout_ms; /* monitor.check-timeout: deadline of one Health/Check */
    int64_t failures;         /* monitor.failures: consecutive failed checks that evict */
    int64_t successes;        /* monitor.successes: consecutive good checks that re-admit */
    int64_t max_in_flight;    /* monitor.max-in-flight: checks at once */
    int64_t lease_ttl_ms;     /* monitor.lease-ttl: the election lease */
    int64_t marker_ttl_ms;    /* monitor.marker-ttl: the eviction lease */
    int64_t readmit_delay_ms; /* monitor.readmit-delay: after a first eviction (doubles) */
    int64_t readmit_max_ms;   /* monitor.readmit-max */
    double max_share;         /* monitor.max-share: the global safety valve */
    double zone_share;        /* monitor.zone-share: the per-zone valve */
    int64_t per_minute;       /* monitor.evictions-per-minute */
    int64_t indirect;         /* monitor.indirect-checks: gossip members asked before evicting */
    int dry_run;              /* monitor.dry-run: report and audit, evict nothing */
} mon_options_t;

/** The monitor.* section; register it once with mesh_config_add_section(). */
extern const mesh_config_section_t mon_options_section;

/** The monitor.* values of cfg. */
static inline const mon_options_t *mon_options(const mesh_config_t *cfg)
{
    return mesh_config_section(cfg, &mon_options_section);
}

#endif
