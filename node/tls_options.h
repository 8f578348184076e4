/*
 * node/tls_options.h: the TLS options (tls.*), a config section of their own (common/config.h).
 *
 * tls.cert is --tls-cert, MESHD_TLS_CERT and YAML `tls: {cert: ...}`, and so on. With a
 * certificate and a key the node's gRPC listener serves TLS: the --listen address itself, or,
 * with --tls-listen HOST:PORT, a second address beside the h2c one (both served by every worker).
 * --tls-upstream-ca makes every upstream connection TLS, verified against that CA and the
 * instance's host or IP (node/node_tls.h). The binary registers mesh_tls_options_section at
 * start-up (node/main.c).
 */
#ifndef MESH_TLS_OPTIONS_H
#define MESH_TLS_OPTIONS_H

#include <stdint.h>

#include "common/config.h"

/** The values of the tls.* options. */
typedef struct mesh_tls_options {
    char *cert;           /* tls.cert: PEM certificate (and chain) of the listener */
    char *key;            /* tls.key: its private key */
    char *ca;             /* tls.ca: CA that verifies client certificates */
    char *client_auth;    /* tls.client-auth: none | optional | require */
    char *listen;         /* tls.listen: HOST:PORT of a TLS listener beside --listen */
    int64_t reload_ms;    /* tls.reload-interval: file change checks (0: SIGHUP only) */
    int64_t handshake_ms; /* tls.handshake-timeout: handshakes not done by then fail (0: none) */
    char *upstream_ca;    /* tls.upstream-ca: upstreams are TLS, verified against this CA */
    char *upstream_cert;  /* tls.upstream-cert: client certificate shown to upstreams */
    char *upstream_key;   /* tls.upstream-key: its key */
    char *upstream_name;  /* tls.upstream-server-name: name checked instead of the host */
    int probe;            /* tls.probe: the sidecar's probes over TLS too */
    int mesh;             /* tls.mesh: with an identity, TLS on the mesh port and mTLS to nodes */
} mesh_tls_options_t;

/** The tls.* section; register it once with mesh_config_add_section(). */
extern const mesh_config_section_t mesh_tls_options_section;

/** The tls.* values of cfg (the section must have been registered before cfg's init). */
static inline const mesh_tls_options_t *mesh_tls_options(const mesh_config_t *cfg)
{
    return mesh_config_section(cfg, &mesh_tls_options_section);
}

#endif
