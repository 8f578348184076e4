/*
 * policy/chain.h: the policy chain, the per-call filter every role that serves calls runs
 * before routing: trace -> identity -> authn (JWT, external authorization) -> signature ->
 * ACL -> rate limit -> forward.
 *
 * Two halves:
 *  - pol_chain_t, one immutable snapshot built from the `policy:` block (policy/policy_conf.h)
 *    with everything loaded: JWKS key sets, signature secrets, the mesh identity secret, the
 *    ACLs' address sets and the rate limiters (shared by every worker: their buckets are
 *    atomics). Built on the control loop at start, on SIGHUP and when a JWKS URL gives new
 *    keys; refcounted (atomically) and handed to each worker.
 *  - pol_worker_t, one per worker thread: the filter (transport/proxy.h) with its per-worker
 *    state (verified-token cache, external-authorization client, access-log buffer, per-call
 *    state pool). A worker keeps the snapshot calls started with until they end, so a reload
 *    never changes the rules under a call in flight.
 *
 * What a call gets:
 *  - trace: a valid traceparent/tracestate/x-request-id is reused, else created; the upstream
 *    gets ours (a new span id); log lines about the call and its audit events carry the id.
 *  - identity: identity headers from the client (x-meshd-identity and the claim headers) are
 *    always removed; a mesh identity token (x-meshd-identity-token, minted by the meshd node
 *    before this one) believed over mTLS from a meshd node or by its HMAC with the mesh secret
 *    establishes the identity without checking credentials again; without one, a client
 *    certificate naming a meshd node makes its SPIFFE ID the identity (policy/call_identity.h).
 *  - authn per rule: a JWT from `authorization: Bearer ...` and/or an external check; an
 *    exempt method (health, reflection) skips authn, signature and rate limits.
 *  - the upstream receives x-meshd-identity (subject), x-meshd-claim-<name> per configured
 *    claim, and a fresh mesh identity token when a mesh secret is configured.
 *  - refusals: UNAUTHENTICATED, PERMISSION_DENIED or RESOURCE_EXHAUSTED (with
 *    retry-after-ms) and `meshd: <filter>: <reason>`, each one an audit event through the
 *    worker's event ring (MESH_EV_POLICY), at most POL_AUDIT_PER_SEC per worker per second
 *    one by one (the rest counted in the next).
 */
#ifndef POL_CHAIN_H
#define POL_CHAIN_H

#include <jansson.h>
#include <stddef.h>
#include <uv.h>

#include "policy/policy_conf.h"
#include "policy/route_conf.h"
#include "transport/proxy.h"

/** Refusals a worker audits one by one per second; beyond, they are counted. */
#define POL_AUDIT_PER_SEC 200

typedef struct pol_chain pol_chain_t;

/**
 * Builds a snapshot from the `policy:` block of the YAML file at path (NULL or a file without
 * the block: trace only). Loads every file the block names. NULL on error with
 * "file:line: policy.key: what" or "file: what" in err.
 */
pol_chain_t *pol_chain_load(const char *path, char *err, size_t errlen);

/** Builds a snapshot from a loaded conf (taken, also on error). */
pol_chain_t *pol_chain_build(pol_conf_t *conf, char *err, size_t errlen);

pol_chain_t *pol_chain_ref(pol_chain_t *c);
void pol_chain_unref(pol_chain_t *c);

/** The conf it was built from. */
const pol_conf_t *pol_chain_conf(const pol_chain_t *c);

/** The `routes:` block it carries (per-method retries, hedging, faults: policy/route_conf.h;
 *  applied to each call by the worker's filter). pol_chain_load reads it from the same file;
 *  pol_chain_build starts with the defaults. */
const pol_routes_conf_t *pol_chain_routes(const pol_chain_t *c);

/** Replaces the routes block (taken) of a snapshot no worker has yet. */
void pol_chain_set_routes(pol_chain_t *c, pol_routes_conf_t *routes);

/** Gives c the keys of a JWKS document (from jwks-url), replacing its key set; only for a
 *  snapshot no worker has yet. 0, or -1 with err when the document has no usable key. */
int pol_chain_set_jwks(pol_chain_t *c, const char *json, size_t len, char *err, size_t errlen);

/** What the admin API shows: rules, what each checks, key and secret counts (never a
 *  secret). */
json_t *pol_chain_describe(const pol_chain_t *c);

typedef struct pol_worker pol_worker_t;

/** A worker's chain on loop (its thread), starting with snapshot c (a reference is taken). */
pol_worker_t *pol_worker_new(uv_loop_t *loop, int worker_index, pol_chain_t *c);

/** The filter to give the worker's engine (first in its list). */
void pol_worker_filter(pol_worker_t *w, mesh_proxy_filter_t *out);

/** on: the worker's upstreams are reached over mTLS with this node's certificate, so the
 *  identity token goes to them even without a mesh secret (unsigned: the next node believes it
 *  because of our certificate; policy/call_identity.h). Set once, after pol_worker_new. */
void pol_worker_set_upstream_mtls(pol_worker_t *w, int on);

/** Switches to snapshot c for calls that start from now on (a reference is taken). Worker
 *  thread. */
void pol_worker_set_chain(pol_worker_t *w, pol_chain_t *c);

/** Flushes the access log and frees w once its handles closed. Worker thread, after the
 *  engine that used the filter is freed. */
void pol_worker_free(pol_worker_t *w);

#endif
