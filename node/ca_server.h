/*
 * node/ca_server.h: the mesh CA on a node's admin API: POST /v1/ca/sign (docs/admin.md,
 * docs/mesh-ca.md), a control actor started when --ca-dir is given.
 *
 * The request: Authorization: Bearer <bootstrap token> and a JSON body
 *   {"csr": PEM, "node": NAME, "services": [NAME...], "dns": [NAME...], "ips": [ADDR...],
 *    "lifetime_seconds": N}   (all but csr and node optional)
 * The answer: 200 {"certificate": PEM leaf + root, "ca": PEM root, "spiffe_id", "serial",
 * "not_before", "not_after" (RFC 3339), "not_after_unix"}, or {"error": "meshd: ca: ...",
 * "code": ...} with 401 (no or unknown token), 403 (the token does not allow the node or a
 * service), 400 (bad JSON, names, CSR, weak key), 405 (not POST), 500. Each answer is audited
 * (cert_issued / cert_denied) and counted in meshd_ca_requests_total{result}.
 *
 * The handler runs on the control loop, synchronously (about a millisecond per certificate,
 * docs/benchmarks.md); the root and tokens are read at the actor's start and again on SIGHUP
 * (a file that does not load is refused, logged and audited as config_rejected; what is in
 * force stays).
 */
#ifndef MESH_CA_SERVER_H
#define MESH_CA_SERVER_H

#include "actors/actor.h"
#include "audit/audit_api.h"
#include "node/admin.h"

/** What the actor needs; lives as long as the node. */
typedef struct ca_server_args {
    mesh_admin_t *admin;
    audit_api_t *audit; /* may be off */
    const char *dir;    /* the root's folder */
    const char *tokens; /* the token file */
    int64_t max_lifetime_s;
} ca_server_args_t;

/** The actor (node_control_add with a ca_server_args_t). */
extern const mesh_actor_ops_t ca_server_ops;

/** Loads the root and tokens as the actor will, to refuse a bad configuration at start: 0, or
 *  -1 with the reason. */
int ca_server_precheck(const ca_server_args_t *a, char *err, size_t errlen);

#endif
