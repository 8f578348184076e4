/*
 * node/identity_client.h: a node's workload identity from the mesh CA (--ca-url), a control
 * actor: it generates an ECDSA P-256 key at start (kept in memory), sends a CSR to the CA
 * node's POST /v1/ca/sign with its bootstrap token, and writes the answer into
 * --identity-dir:
 *   key.pem   the private key, 0600 (written with the first certificate, before it)
 *   cert.pem  the leaf and the root (what a TLS server or client presents), 0644
 *   ca.pem    the root (the trust bundle to verify peers), 0644
 * each atomically (temporary file, fsync, rename: common/atomic_file.h), so a TLS reload that
 * watches the files sees whole files. The key stays the same across renewals, so after the
 * first issue only cert.pem changes and every state a watcher can see is a matching pair.
 *
 * When to ask is ca/rotation_sm.h (two thirds of the lifetime with jitter; retries with
 * backoff; the old certificate keeps serving until a new one arrived). An answer is accepted
 * only when the certificate matches our key, verifies against the root that came with it, and
 * names our node. Counted in meshd_identity_renewals_total{result} and
 * meshd_identity_cert_not_after_seconds.
 */
#ifndef MESH_IDENTITY_CLIENT_H
#define MESH_IDENTITY_CLIENT_H

#include <stdint.h>

#include "actors/actor.h"
#include "common/config.h"
#include "node/admin.h"

/** What the actor needs; lives as long as the node. */
typedef struct identity_args {
    mesh_admin_t *admin; /* may be NULL (no metrics) */
    const char *node;
    const char *url;        /* the CA node's admin API: http://HOST:PORT */
    const char *token_file; /* read at each start */
    const char *dir;
    int64_t lifetime_s;
    const mesh_config_list_t *services, *dns, *ips;
} identity_args_t;

/** The actor (node_control_add with an identity_args_t). */
extern const mesh_actor_ops_t identity_client_ops;

#endif
