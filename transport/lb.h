/*
 * transport/lb.h: load-aware, weighted, header- and zone-aware choice of an upstream instance,
 * without I/O (the proxy and the simulator feed it the time and their predicates).
 *
 * Settings (mesh_lb_cfg_t, a plain struct the command line fills; a service's `routes:` rule
 * may override the policy, the zone preference and the subsets: transport/svc_policy.h):
 *   - the policy: round robin (weighted: each instance's share is its weight over the total) or
 *     P2C (power of two choices over a time-decayed EWMA of latency and the outstanding calls,
 *     as Linkerd balances);
 *   - subsets: "a request whose metadata KEY is VALUE goes to the instances whose version (or
 *     zone) is V" (e.g. x-canary: 1 -> version v2); when no instance of the subset can take
 *     the call (none listed, or all down) the call goes to any instance of the service;
 *   - the caller's zone: instances of that zone are preferred while enough of them are up and
 *     they are not overloaded; otherwise every zone.
 *
 * Per service a plan (mesh_lb_plan_t) is made when the routing table changes, never per call:
 * the instances of each subset, the caller's zone first, with their cumulative weights. Weight 0
 * means "no traffic unless nothing else can take it". Per upstream endpoint a mesh_lb_ep_t keeps
 * the EWMA and the outstanding calls; both live in the worker that owns the endpoint, so no
 * call writes across threads. A pick costs a few random draws and a binary search in the
 * cumulative weights (O(log n)); nothing allocates.
 *
 * P2C with weights: the first candidate is the weighted round robin's next turn, the second a
 * weighted random draw; the second replaces the first only when its cost is lower by more than
 * the margin (cfg.p2c_margin, 2). So among instances that cost about the same the weights set
 * the shares exactly (not only on average), while a slow or overloaded instance (cost twice the
 * others' or more) loses its traffic. Cost = (EWMA latency + 5 ms) * (outstanding + 1) /
 * (expected + 1), the 5 ms floor so that differences within the noise of fast instances on a
 * busy host do not decide (with a 1 ms floor, two Python servers behind a 75/25 split got
 * 77.25/22.75 one call at a time while another test loaded the machine), and where expected is the
 * share of the two candidates' outstanding calls their weights give it: candidates carrying their
 * weighted share of the load cost the same whatever the scale of the weights (pure Linkerd cost,
 * latency * (outstanding + 1), would starve the heavy instance of a canary split under load). An
 * endpoint with no latency sample yet has a neutral prior: the two candidates are then compared by
 * load only. The EWMA decays with time, not per sample (a sample weighs exp(-age / decay), see
 * mesh_lb_ep_t), and decays toward zero while an endpoint gets no calls, and an instance whose turn
 * comes while it has no call in flight and no sample for cfg.probe_ms (1 s) takes that call as a
 * probe: an instance that was slow and recovered is seen again within about a second, one call at a
 * time.
 */
#ifndef MESH_LB_H
#define MESH_LB_H

#include <stddef.h>
#include <stdint.h>

#include "registry/route_table.h"

/** The balancing policy. */
typedef enum { MESH_LB_ROUND_ROBIN = 0, MESH_LB_P2C = 1 } mesh_lb_policy_t;

/** What a subset selects instances by. */
typedef enum { MESH_LB_BY_VERSION = 0, MESH_LB_BY_ZONE = 1 } mesh_lb_by_t;

/** One header-based subset rule: calls whose metadata `header` is `value` go to the instances
 *  whose `by` is `want`. Strings are owned by the struct (mesh_lb_cfg_destroy frees them). */
typedef struct mesh_lb_subset {
    char *header; /* lower case */
    char *value;
    mesh_lb_by_t by;
    char *want;
} mesh_lb_subset_t;

/** Balancer settings; zero fields mean the defaults below (mesh_lb_cfg_fix). */
typedef struct mesh_lb_cfg {
    mesh_lb_policy_t policy;
    char *zone;                /* the caller's zone; NULL or "": no zone preference */
    mesh_lb_subset_t *subsets; /* first matching rule wins */
    size_t n_subsets;
    uint64_t decay_ms;         /* EWMA time constant; default 10000 (Linkerd's) */
    double p2c_margin;         /* second candidate wins when cheaper by this factor; 2 */
    uint64_t fail_penalty_ms;  /* latency sample of a failed call, at least; default 1000 */
    uint64_t floor_us;         /* added to every latency estimate in costs, so differences
                                  within the noise of fast instances do not decide; 5000 */
    uint64_t probe_ms;         /* an instance whose turn comes with no call in flight and no
                                  sample for this long takes the call, whatever its cost, so an
                                  instance that recovered is seen again; default 1000 */
    uint32_t zone_min_healthy; /* percent of the zone's instances up to prefer it; 50 */
    double zone_overload;      /* zone overloaded when its mean outstanding per instance is
                                  above this times the others' (and above this); default 4 */
} mesh_lb_cfg_t;

#define MESH_LB_DECAY_MS         10000
#define MESH_LB_P2C_MARGIN       2.0
#define MESH_LB_FAIL_PENALTY_MS  1000
#define MESH_LB_FLOOR_US         5000
#define MESH_LB_PROBE_MS         1000
#define MESH_LB_ZONE_MIN_HEALTHY 50
#define MESH_LB_ZONE_OVERLOAD    4.0

/** Fills zero fields with the defaults. */
void mesh_lb_cfg_fix(mesh_lb_cfg_t *cfg);

/** Frees what the struct owns (zone, subsets) and zeroes it. */
void mesh_lb_cfg_destroy(mesh_lb_cfg_t *cfg);

/** Parses a policy name ("round-robin", "p2c"); 0, or -1. */
int mesh_lb_policy_parse(const char *s, mesh_lb_policy_t *out);

/** The policy's name. */
const char *mesh_lb_policy_name(mesh_lb_policy_t p);

/**
 * Parses one subset rule "HEADER=VALUE:version=V" or "HEADER=VALUE:zone=Z" (header names are
 * case-insensitive and stored lower case). Returns 0 with *out filled (free with
 * mesh_lb_subset_destroy), or -1 with the problem in err.
 */
int mesh_lb_subset_parse(const char *s, mesh_lb_subset_t *out, char *err, size_t errlen);
void mesh_lb_subset_destroy(mesh_lb_subset_t *s);

/** Appends a parsed rule to cfg (takes over its strings); 0, or -1 out of memory. */
int mesh_lb_cfg_add_subset(mesh_lb_cfg_t *cfg, mesh_lb_subset_t *s);

/**
 * Which subset rule applies to a call: the first whose header has its value. get(ud, name)
 * returns the call's value of a metadata field (lower-case name) and its length, or NULL.
 * Returns the rule's index, or -1.
 */
typedef const char *(*mesh_lb_header_fn)(void *ud, const char *name, size_t *len);
int mesh_lb_subset_match(const mesh_lb_cfg_t *cfg, mesh_lb_header_fn get, void *ud);

/* ---- per endpoint -------------------------------------------------------------------------- */

/**
 * Load of one endpoint as one worker sees it. All zero is the fresh state (no sample). The
 * latency estimate is a time-decayed average: every sample counts once, weighed down by
 * exp(-age / decay), so sum_us / n is the mean latency of the last `decay` or so. (Weighing a
 * sample by the time since the previous one instead is biased under concurrency: a slow call
 * tends to finish right after another, so a busy endpoint would look faster than it is.) 16
 * bytes: one per endpoint per worker.
 */
typedef struct mesh_lb_ep {
    float sum_us;         /* decayed sum of latency samples (us) at at_ms */
    float n;              /* decayed count of samples at at_ms; 0: no sample yet */
    uint32_t at_ms;       /* time of the last sample (ms, wrapping: compared by difference) */
    uint32_t outstanding; /* calls sent and not finished */
} mesh_lb_ep_t;

/** A call was sent to the endpoint. */
static inline void mesh_lb_ep_start(mesh_lb_ep_t *e)
{
    e->outstanding++;
}

/**
 * A call sent at start_ns finished at now_ns: failed (the upstream failed it or never
 * answered) counts its latency as at least cfg->fail_penalty_ms; sample 0 adds no sample (the
 * client left: says nothing about the endpoint).
 */
void mesh_lb_ep_done(mesh_lb_ep_t *e, const mesh_lb_cfg_t *cfg, uint64_t start_ns, uint64_t now_ns,
                     int failed, int sample);

/** The endpoint's latency estimate at now_ns: the decayed mean, itself decayed toward 0 by the
 *  time since the last sample (an idle instance that was slow is tried again); 0: no sample. */
double mesh_lb_ep_estimate(const mesh_lb_ep_t *e, const mesh_lb_cfg_t *cfg, uint64_t now_ns);

/* ---- random numbers ------------------------------------------------------------------------ */

/** A cheap PRNG (xorshift64*), one per worker. */
typedef struct mesh_lb_rng {
    uint64_t s;
} mesh_lb_rng_t;

static inline void mesh_lb_rng_seed(mesh_lb_rng_t *r, uint64_t seed)
{
    r->s = seed ? seed : 0x9e3779b97f4a7c15ull;
}

static inline uint64_t mesh_lb_rand(mesh_lb_rng_t *r)
{
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545f4914f6cdd1dull;
}

/* ---- per service --------------------------------------------------------------------------- */

typedef struct mesh_lb_plan mesh_lb_plan_t;

/**
 * Whether a service of these instances needs a plan under cfg: not when cfg has no zone and no
 * subsets, every instance has the same weight (above 0) and the policy is round robin or there
 * is one instance (P2C then has nothing to choose). Then the caller's unweighted round robin
 * (transport/balancer.h) is exactly the policy.
 */
int mesh_lb_plan_needed(const mesh_lb_cfg_t *cfg, const mesh_route_instance_t *const *insts,
                        size_t n);

/**
 * Makes the plan of a service whose candidates are insts[0..n-1] (candidate k is insts[k]);
 * start is where round robin begins (each worker its own). The instances are read now only.
 * NULL when out of memory.
 */
mesh_lb_plan_t *mesh_lb_plan_new(const mesh_lb_cfg_t *cfg,
                                 const mesh_route_instance_t *const *insts, size_t n,
                                 uint32_t start);
void mesh_lb_plan_free(mesh_lb_plan_t *p);

/** What the balancer asks of the caller about candidate k. */
typedef struct mesh_lb_ops {
    /** May take this call (up, serves the method, not excluded by a retry). */
    int (*eligible)(void *ud, size_t k);
    /** Up at all (address, no connect backoff, not ejected): for the zone's health. */
    int (*healthy)(void *ud, size_t k);
    /** The candidate's load. */
    mesh_lb_ep_t *(*load)(void *ud, size_t k);
} mesh_lb_ops_t;

/** How a pick went (for logs and counters). */
typedef struct mesh_lb_pick_info {
    int subset_fallback; /* a subset applied but none of it could take the call */
    int zone_local;      /* picked in the caller's zone by preference */
} mesh_lb_pick_info_t;

/**
 * Picks a candidate for a call: within subset rule `subset` (-1: none; the plan's instances of
 * that rule, or every instance when none of them is eligible), in the caller's zone when it is
 * preferred, by cfg's policy and the weights. Returns the candidate index or -1 when no
 * candidate is eligible. info may be NULL.
 */
ptrdiff_t mesh_lb_pick(mesh_lb_plan_t *p, const mesh_lb_cfg_t *cfg, mesh_lb_rng_t *rng, int subset,
                       uint64_t now_ns, const mesh_lb_ops_t *ops, void *ud,
                       mesh_lb_pick_info_t *info);

#endif
