/*
 * policy/route_conf.h: the `routes:` block of meshd's YAML file: per service/method call
 * policies of the proxying roles (retries, idempotency, per-try timeout, hedging, fault
 * injection) and the retry budget, as plain values.
 *
 * Loaded like the `policy:` block (policy/policy_conf.h): libyaml's document API on the same
 * file, every error "file:line: routes.key: what"; immutable once loaded; carried by the policy
 * snapshot (policy/chain.h), so SIGHUP reloads it with the policy and a refused file leaves the
 * one in force.
 *
 *   routes:
 *     retry-budget: {ratio: 0.2, min-per-second: 10}   (Linkerd's defaults; these values)
 *     rules:
 *       - match: pkg.Svc/Method                       (or a list; exact, pkg.Svc/\*, *)
 *         idempotent: true                            (default false)
 *         retry: {max-attempts: 3, initial-backoff: 50ms, max-backoff: 1s,
 *                 backoff-multiplier: 2, retryable-status: [UNAVAILABLE]}
 *         per-try-timeout: 500ms
 *         hedging: {max-attempts: 2, delay: 20ms}     (idempotent methods only)
 *         fault: {abort: {status: UNAVAILABLE, percent: 10},
 *                 delay: {duration: 100ms, percent: 5}, header: x-meshd-fault}
 *       - match: pkg.Svc/\*                          (per service: pkg.Svc/\* or * only)
 *         balancer: {policy: round-robin, zone-affinity: false,
 *                    subsets: [{header: x-canary, value: "1", version: v2}]}
 *         outlier: {consecutive: 5, base-ejection: 30s, max-ejection: 300s,
 *                   max-ejection-percent: 10, enabled: true,
 *                   failure-percent: {threshold: 85, min-volume: 50, enabled: true},
 *                   success-rate: {stdev-factor: 1.9, min-hosts: 5, volume: 100,
 *                                  enabled: true}}
 *         connect-timeout: 250ms                      (the instances' connect timeout)
 *         upstream-tls: {ca: F, server-name: N,       (TLS to the instances with these files;
 *                        cert: F, key: F}             `off`: h2c whatever the node's settings)
 *
 * The most specific rule applies, whole (exact before pkg.Svc/\* before *). `balancer`,
 * `outlier`, `connect-timeout` and `upstream-tls` are per service (the proxy keeps one plan and one
 * outlier state per service): they are allowed only in rules whose patterns are all pkg.Svc/\* or
 * *, and a service's settings are those of its most specific such rule (pol_routes_match_service),
 * whole: a `pkg.Svc/\*` rule without them gives the service the command line's. A key no table
 * knows is an error, so a typo never passes silently.
 */
#ifndef POL_ROUTE_CONF_H
#define POL_ROUTE_CONF_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "transport/retry.h"
#include "transport/svc_policy.h"

/** Fault injection of one rule. Percentages 0..100; header NULL: every call may be hit. */
typedef struct pol_fault {
    int abort_status; /* gRPC status (1..16); 0: no abort */
    double abort_percent;
    uint64_t delay_ms; /* 0: no delay */
    double delay_percent;
    char *header; /* only calls with this request header (any value) */
} pol_fault_t;

/** One rule. */
typedef struct pol_route_rule {
    char **match; /* patterns: "pkg.Svc/Method", "pkg.Svc/\*", "*" */
    size_t n_match;
    int line; /* of the rule in the file */
    int has_retry, has_fault;
    mesh_retry_policy_t retry; /* idempotent, per-try timeout and hedging included */
    pol_fault_t fault;
    mesh_svc_policy_t *svc; /* balancer/outlier given (a reference); NULL: none */
} pol_route_rule_t;

/** The whole block. */
typedef struct pol_routes_conf {
    char *file;
    int present;
    mesh_retry_budget_cfg_t budget;
    pol_route_rule_t *rules;
    size_t n_rules;
    int has_svc;   /* some rule has balancer or outlier settings */
    int has_fault; /* some rule injects faults */
} pol_routes_conf_t;

/** Reads the `routes:` block of the YAML file at path (none: defaults, present 0). NULL on
 *  error with "file:line: routes.key: what" in err. */
pol_routes_conf_t *pol_routes_load(const char *path, char *err, size_t errlen);

/** Same from bytes in memory (name is used in messages). */
pol_routes_conf_t *pol_routes_parse(const char *name, const char *yaml, size_t len, char *err,
                                    size_t errlen);

/** No rules, the default budget. */
pol_routes_conf_t *pol_routes_default(void);

void pol_routes_free(pol_routes_conf_t *c);

/** The rule for service/method (not NUL-terminated), or NULL. */
const pol_route_rule_t *pol_routes_match(const pol_routes_conf_t *c, const char *service,
                                         size_t service_len, const char *method, size_t method_len);

/** The rule that sets service's balancing and outlier settings: the most specific rule with a
 *  pattern pkg.Svc/\* or * for it (exact patterns never), or NULL. Its svc may be NULL. */
const pol_route_rule_t *pol_routes_match_service(const pol_routes_conf_t *c, const char *service,
                                                 size_t service_len);

/** Adds the window detectors' settings to an outlier object o (NULL: not shown). */
void pol_routes_detectors_json(json_t *o, const mesh_olw_cfg_t *fp, const mesh_olsr_cfg_t *sr);

/** A service's upstream-tls as JSON: "off", {ca, server_name, cert, key} (null when not given),
 *  or NULL when sp (may be NULL) does not set it. */
json_t *pol_routes_upstream_tls_json(const mesh_svc_policy_t *sp);

/** Calls fn with every service's own upstream TLS context holder (upstream-tls: {ca, ...}) and
 *  its rule's line, so the node checks their files for changes like its own certificates. */
void pol_routes_each_tls(const pol_routes_conf_t *c,
                         void (*fn)(void *ud, struct mesh_tls_holder *h, int line), void *ud);

/** The effective block as JSON (GET /v1/route-policy, check-config). */
json_t *pol_routes_describe(const pol_routes_conf_t *c);

#endif
