/*
 * transport/svc_policy.h: per-service balancing, outlier and connect-timeout settings that a
 * configuration (the `routes:` block, policy/route_conf.h) gives one service over the command-line
 * defaults.
 *
 * The proxy worker keeps its balancing plan (transport/lb.h) and its outlier reports
 * (transport/outlier.h) per service, not per method, so these settings are per service: a
 * filter hands the call's service settings to the engine (mesh_proxy_call_set_service_policy,
 * transport/proxy.h) and the worker resolves them against its own defaults when a call of the
 * service picks an instance: each field not given keeps the command line's value.
 *
 * The object is immutable once made and reference counted (atomically): the rule that made it
 * holds one reference and every worker's service state that uses it holds one, so a SIGHUP
 * reload that frees the old rules never leaves a worker with a dangling pointer, and the
 * worker can tell "the settings changed" by comparing pointers.
 */
#ifndef MESH_SVC_POLICY_H
#define MESH_SVC_POLICY_H

#include <stdatomic.h>
#include <stdint.h>

#include "transport/lb.h"
#include "transport/outlier.h"
#include "transport/outlier_sr.h"
#include "transport/outlier_window.h"

struct mesh_tls_holder;

/** A service's upstream TLS (routes: upstream-tls). */
enum {
    MESH_SVC_TLS_DEFAULT = 0, /* not given: the node's (--tls-upstream-ca, mTLS to meshd nodes) */
    MESH_SVC_TLS_OFF,         /* h2c, whatever the node's settings */
    MESH_SVC_TLS_OWN,         /* the service's own client context (tls below) */
};

/** One service's settings. Fields not given ("has_*" 0, zone_affinity -1) are the defaults'. */
typedef struct mesh_svc_policy {
    _Atomic uint32_t refs;
    int has_lb_policy;          /* lb.policy given */
    int has_subsets;            /* lb.subsets given (an empty list clears the defaults') */
    int zone_affinity;          /* -1 not given; 0 no zone preference; 1 prefer the node's zone */
    mesh_lb_cfg_t lb;           /* policy and subsets (owned); other fields unused */
    int has_outlier;            /* outlier given: replaces the defaults' settings whole */
    mesh_outlier_cfg_t outlier; /* zero fields: transport/outlier.h's defaults */
    /** Upstream connect timeout of the service's instances; 0: the command line's
     *  (--connect-timeout-ms). A connection is shared by every service of its endpoint: the
     *  timeout is that of the call that opened it. */
    uint64_t connect_timeout_ms;
    /** The window detectors (outlier.failure-percent, outlier.success-rate), each replacing
     *  the command line's for the service when given; their interval stays the command line's
     *  (--outlier-interval: the windows are aligned process-wide). */
    int has_failure_pct;
    mesh_olw_cfg_t olw; /* threshold_pct (0: off), min_volume */
    int has_success_rate;
    mesh_olsr_cfg_t olsr; /* enabled, stdev_factor, min_hosts, request_volume */
    /** Upstream TLS (MESH_SVC_TLS_*). _OWN: connections to the service's instances are TLS
     *  from tls (owned; the files tls_ca, tls_cert, tls_key), the server's certificate checked
     *  against tls_name or else the instance's host. Connections of an endpoint are pooled per
     *  TLS setting, so two services at one address with different settings never share one. */
    int upstream_tls;
    struct mesh_tls_holder *tls;
    char *tls_name, *tls_ca, *tls_cert, *tls_key;
} mesh_svc_policy_t;

/** A new object with nothing given, one reference (NULL: out of memory). */
mesh_svc_policy_t *mesh_svc_policy_new(void);

/** Takes one more reference; returns p. NULL is allowed. */
mesh_svc_policy_t *mesh_svc_policy_ref(mesh_svc_policy_t *p);

/** Drops a reference; the last one frees (NULL: nothing). Any thread. */
void mesh_svc_policy_unref(mesh_svc_policy_t *p);

/**
 * The effective balancer settings of a service: def (the worker's, from the command line)
 * with p's given fields over it (p NULL: def). Shallow: out borrows def's and p's strings, so
 * it is valid while both live (the worker holds a reference on p).
 */
void mesh_svc_policy_lb(const mesh_svc_policy_t *p, const mesh_lb_cfg_t *def, mesh_lb_cfg_t *out);

/** The effective outlier settings: p's when given (defaults filled), else def. */
void mesh_svc_policy_outlier(const mesh_svc_policy_t *p, const mesh_outlier_cfg_t *def,
                             mesh_outlier_cfg_t *out);
/** The effective window detectors: each p's when given (defaults filled, def's interval), else
 *  def's. */
void mesh_svc_policy_detectors(const mesh_svc_policy_t *p, const mesh_olw_cfg_t *def_fp,
                               const mesh_olsr_cfg_t *def_sr, mesh_olw_cfg_t *fp,
                               mesh_olsr_cfg_t *sr);

#endif
