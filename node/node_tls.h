/*
 * node/node_tls.h: the node's TLS: the listener's and the upstreams' contexts made from the
 * tls.* options (node/tls_options.h), refused at start with the file and the reason, reloaded on
 * SIGHUP and when the files change (new handshakes get the new certificate, connections up keep
 * theirs), and the TLS metrics of GET /metrics.
 */
#ifndef MESH_NODE_TLS_H
#define MESH_NODE_TLS_H

#include <stdint.h>

#include "common/config.h"
#include "common/prom.h"
#include "transport/proxy.h"

typedef struct node_tls node_tls_t;

/** Makes the contexts cfg asks for: 0 with *out NULL when TLS is not configured (libssl is then
 *  never loaded), 0 with *out set, or -1 (logged: the file and the reason). */
int node_tls_new(const mesh_config_t *cfg, node_tls_t **out);

void node_tls_free(node_tls_t *t);

/** Puts the contexts and the TLS listen address into an engine's settings. port: the TLS
 *  listener's port to use (0 before the first worker picked one). */
void node_tls_engine_config(node_tls_t *t, mesh_proxy_config_t *pc, int port);

/** The context holder of HTTP listeners (the gateway's: ALPN h2 and http/1.1, the same files),
 *  made on first use; NULL when no listener certificate is configured, or (logged) when it cannot
 *  be made. On the thread that sets the node up. */
struct mesh_tls_holder *node_tls_http(node_tls_t *t);

/** The same for the admin API (ALPN http/1.1 only). */
struct mesh_tls_holder *node_tls_admin(node_tls_t *t);

/** Reloads the contexts whose files changed, or all of them (force, SIGHUP); logs what it did.
 *  On the control loop. */
void node_tls_reload(node_tls_t *t, int force);

/** Reloads another holder whose files the node checks with its own (a service's upstream-tls in
 *  routes:): the same check, log lines and reload metrics. t may be NULL (a node with no TLS
 *  options of its own: nothing counted). On the control loop. */
void node_tls_reload_holder(node_tls_t *t, struct mesh_tls_holder *h, const char *what, int force);

/** How often to check TLS files, from the options, whether or not the node has TLS of its own
 *  (ms; 0: never). */
uint64_t node_tls_poll_ms_of(const mesh_config_t *cfg);

/** --tls-handshake-timeout in the engine's terms (mesh_proxy_config_t: UINT64_MAX is off). */
uint64_t node_tls_handshake_timeout(const mesh_config_t *cfg);

/** How often to check the files (ms; 0: never, SIGHUP only). */
uint64_t node_tls_poll_ms(const node_tls_t *t);

/** 1 when --listen serves TLS with the node's mesh identity (the sidecar registers its address
 *  as a mesh TLS port then, "tls":"mtls"). */
int node_tls_mesh_served(const node_tls_t *t);

/** 1 when client connections are TLS (a certificate is configured). */
int node_tls_listener(const node_tls_t *t);

/** 1 when upstream connections are mTLS: TLS with a client certificate of this node. */
int node_tls_upstream_mtls(const node_tls_t *t);

/** 1 when upstream connections are TLS (--tls-upstream-ca). */
int node_tls_upstream(const node_tls_t *t);

/** 1 when calls to meshd nodes whose records say "tls":"mtls" use mTLS with this node's identity
 *  (an identity, --tls-mesh). */
int node_tls_mesh_client(const node_tls_t *t);

/** The TLS listen address for logs ("HOST" part), or NULL when --listen itself is TLS. */
const char *node_tls_listen_host(const node_tls_t *t);

/** Metrics collector (node/admin.h mesh_admin_metrics_fn): handshake failures by reason,
 *  reloads, and the certificate's expiry time. */
void node_tls_metrics(void *ud, prom_t *p);

#endif
