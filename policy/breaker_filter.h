/*
 * policy/breaker_filter.h: the sidecar's circuit breaker as a proxy-engine filter.
 *
 * Each worker gets its own breaker (policy/breaker.h) in front of the app, used only by that
 * worker's thread, so nothing is locked. It plugs into the engine's per-call filter hook
 * (transport/proxy.h): a call the breaker refuses is answered at once with UNAVAILABLE and
 * grpc-message "meshd: circuit open for <service>"; every admitted call reports its final
 * status back. Transitions are logged with their reason (actor "breaker").
 */
#ifndef MESH_SIDECAR_BREAKER_H
#define MESH_SIDECAR_BREAKER_H

#include "common/config.h"
#include "policy/breaker.h"
#include "transport/proxy.h"

/** One worker's breaker and its counters. */
typedef struct pol_breaker_filter {
    mesh_breaker_t b;
    int worker;
    uint64_t rejected;
} pol_breaker_filter_t;

/** Fills a breaker configuration from the sidecar's breaker.* options. */
void pol_breaker_filter_config(const mesh_config_t *cfg, mesh_breaker_config_t *out);

/**
 * Initializes sb for worker (name: the app's address, for logs) and fills *filter with the
 * engine filter that runs it. Returns 0, or -1 when the configuration is invalid (logged).
 */
int pol_breaker_filter_init(pol_breaker_filter_t *sb, const mesh_config_t *cfg, const char *app,
                            int worker, mesh_proxy_filter_t *filter);

#endif
