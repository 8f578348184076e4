/*
 * node/ca_options.h: the options of the mesh CA (ca.*) and of a node's workload identity
 * (identity.*), one config section (common/config.h); docs/mesh-ca.md explains them.
 *
 * A CA node:    --ca-dir D (ca-key.pem and ca-cert.pem from `meshd ca init`) --ca-tokens F
 *               (bootstrap tokens, ca/ca_tokens.h) [--ca-max-lifetime 24h]: serves
 *               POST /v1/ca/sign on its admin API (--admin-listen), node/ca_server.h.
 * Any node:     --ca-url http://HOST:PORT (a CA node's admin API) --ca-token-file F
 *               --identity-dir D [--identity-lifetime 24h] [--identity-service pkg.Svc ...]
 *               [--identity-dns NAME ...] [--identity-ip ADDR ...]: obtains and rotates its
 *               certificate into D (node/identity_client.h).
 */
#ifndef MESH_CA_OPTIONS_H
#define MESH_CA_OPTIONS_H

#include <stdint.h>

#include "common/config.h"

/** The values of the ca.* and identity.* options. */
typedef struct mesh_ca_options {
    char *dir;                   /* ca.dir: NULL: not a CA node */
    char *tokens;                /* ca.tokens */
    int64_t max_lifetime_ms;     /* ca.max-lifetime */
    char *url;                   /* ca.url: NULL: no identity from a mesh CA */
    char *token_file;            /* ca.token-file */
    char *identity_dir;          /* identity.dir */
    int64_t lifetime_ms;         /* identity.lifetime */
    mesh_config_list_t services; /* identity.service */
    mesh_config_list_t dns;      /* identity.dns */
    mesh_config_list_t ips;      /* identity.ip */
} mesh_ca_options_t;

/** The section; registered once at start-up (node/main.c). */
extern const mesh_config_section_t mesh_ca_options_section;

/** The values in cfg. */
static inline const mesh_ca_options_t *mesh_ca_options(const mesh_config_t *cfg)
{
    return mesh_config_section(cfg, &mesh_ca_options_section);
}

/** Reads a bootstrap token file (--ca-token-file: the token alone, surrounding white space
 *  dropped). Returns its length with the token in out (cap bytes), or -1 with the reason. */
int mesh_ca_token_read(const char *path, char *out, size_t cap, char *err, size_t errlen);

#endif
