/*
 * node/admin_options.h: the admin API's options (admin.*), a config section of their own
 * (common/config.h), and the parsing of the listen address.
 *
 * admin.listen is --admin-listen, MESHD_ADMIN_LISTEN and YAML `admin: {listen: ...}`. It
 * takes HOST:PORT, or a bare PORT or :PORT, which mean loopback (127.0.0.1:PORT): the admin
 * API says what the node routes and to whom, so exposing it on every interface is a choice
 * made by writing the host (0.0.0.0:PORT).
 *
 * admin.token-file (--admin-token-file, MESHD_ADMIN_TOKEN_FILE) names a file holding a bearer
 * token: every endpoint but /livez and /readyz then wants "Authorization: Bearer <token>"
 * (node/admin.h mesh_admin_set_token). The same flag gives the token to the CLI commands that
 * call the admin API (meshd routes, members, audit status, monitor status). The binary registers
 * mesh_admin_options_section at start-up (node/main.c).
 */
#ifndef MESH_ADMIN_OPTIONS_H
#define MESH_ADMIN_OPTIONS_H

#include <stddef.h>

#include "common/config.h"

/** The values of the admin.* options. */
typedef struct mesh_admin_options {
    char *listen;     /* admin.listen: NULL when the admin API is off */
    char *token_file; /* admin.token-file: NULL when no token is required */
    int tls;          /* admin.tls: serve over TLS with --tls-cert (node/node_tls.h) */
} mesh_admin_options_t;

/** Longest admin token accepted, in bytes. */
#define MESH_ADMIN_TOKEN_MAX 1024

/** The admin.* section; register it once with mesh_config_add_section(). */
extern const mesh_config_section_t mesh_admin_options_section;

/** The admin.* values of cfg (the section must have been registered before cfg's init). */
static inline const mesh_admin_options_t *mesh_admin_options(const mesh_config_t *cfg)
{
    return mesh_config_section(cfg, &mesh_admin_options_section);
}

/**
 * Splits an admin address: "HOST:PORT", ":PORT" or "PORT" (the last two on 127.0.0.1) into
 * host and port (0..65535). Returns 0, or -1 when malformed.
 */
int mesh_admin_listen_split(const char *v, char *host, size_t hostlen, int *port);

/**
 * Reads a token file: its content without surrounding white space (a trailing newline is
 * usual), which must be 1..MESH_ADMIN_TOKEN_MAX visible ASCII bytes (RFC 6750's token68 and
 * more: anything but spaces and control bytes). Returns the length with the token in out
 * (cap > MESH_ADMIN_TOKEN_MAX), or -1 with the reason in err.
 */
int mesh_admin_token_read(const char *path, char *out, size_t cap, char *err, size_t errlen);

#endif
