/*
 * policy/breaker_filter.h: the sidecar's circuit breaker as a proxy-engine filter.
 *
 * One breaker (policy/breaker.h) per app, shared by every worker: the configured thresholds
 * hold for the app whatever the worker count. It plugs into the engine's per-call filter hook
 * (transport/proxy.h) of each worker: a call the breaker refuses is answered at once with
 * UNAVAILABLE and grpc-message "meshd: circuit open for <service>"; every admitted call
 * reports its final status back. The per-call path takes no lock and allocates nothing (the
 * permit is packed into the filter's call token). Each transition goes once, with its reason,
 * into the event ring of the worker whose call caused it (actors/evring.h MESH_EV_BREAKER, its
 * fields structured): the node logs it (actor "breaker") and hands it to the audit actor.
 */
#ifndef POL_BREAKER_FILTER_H
#define POL_BREAKER_FILTER_H

#include "common/config.h"
#include "policy/breaker.h"
#include "transport/proxy.h"

/** The breaker of one app. */
typedef struct pol_breaker_filter {
    pol_breaker_t b;
    char *instance; /* the app's "host:port" (the events' instance; lives until destroy) */
} pol_breaker_filter_t;

/**
 * Fills a breaker configuration from the sidecar's breaker.* options (the section of
 * policy/breaker_options.h, which must be registered before cfg was initialized).
 */
void pol_breaker_filter_config(const mesh_config_t *cfg, pol_breaker_config_t *out);

/**
 * Initializes bf for the app at address app (named "app HOST:PORT" in logs and messages).
 * Returns 0, or -1 when the configuration is invalid (logged).
 */
int pol_breaker_filter_init(pol_breaker_filter_t *bf, const mesh_config_t *cfg, const char *app);

/** Fills *filter with the engine filter that runs bf; call once per worker (any number). */
void pol_breaker_filter_attach(pol_breaker_filter_t *bf, mesh_proxy_filter_t *filter);

/** Releases bf once no worker runs its filter any more. */
void pol_breaker_filter_destroy(pol_breaker_filter_t *bf);

#endif
