/*
 * policy/breaker_options.h: the circuit breaker's options (breaker.*), a config section of
 * their own (common/config.h).
 *
 * The sidecar's breaker in front of its app (policy/breaker_filter.h) reads them. The binary
 * registers pol_breaker_options_section at start-up (node/main.c); YAML `breaker: {failures:
 * 5}`, MESHD_BREAKER_FAILURES and --breaker-failures all set breaker.failures.
 */
#ifndef POL_BREAKER_OPTIONS_H
#define POL_BREAKER_OPTIONS_H

#include <stdint.h>

#include "common/config.h"

/** The values of the breaker.* options. Durations are in milliseconds. */
typedef struct pol_breaker_options {
    int64_t failures;        /* breaker.failures: consecutive failures that open the circuit */
    double failure_ratio;    /* breaker.failure-ratio: over the window */
    int64_t window_ms;       /* breaker.window */
    int64_t min_calls;       /* breaker.min-calls: in the window before the ratio counts */
    int64_t max_concurrent;  /* breaker.max-concurrent */
    int64_t open_ms;         /* breaker.open: before the first probe */
    int64_t half_open_calls; /* breaker.half-open-calls */
} pol_breaker_options_t;

/** The breaker.* section; register it once with mesh_config_add_section(). */
extern const mesh_config_section_t pol_breaker_options_section;

/** The breaker.* values of cfg (the section must have been registered before cfg's init). */
static inline const pol_breaker_options_t *pol_breaker_options(const mesh_config_t *cfg)
{
    return mesh_config_section(cfg, &pol_breaker_options_section);
}

#endif
