/*
 * node/admin_options.h: the admin API's options (admin.*), a config section of their own
 * (common/config.h), and the parsing of the listen address.
 *
 * admin.listen is --admin-listen, MESHD_ADMIN_LISTEN and YAML `admin: {listen: ...}`. It
 * takes HOST:PORT, or a bare PORT or :PORT, which mean loopback (127.0.0.1:PORT): the admin
 * API says what the node routes and to whom, so exposing it on every interface is a choice
 * made by writing the host (0.0.0.0:PORT). The binary registers mesh_admin_options_section at
 * start-up (node/main.c).
 */
#ifndef MESH_ADMIN_OPTIONS_H
#define MESH_ADMIN_OPTIONS_H

#include <stddef.h>

#include "common/config.h"

/** The values of the admin.* options. */
typedef struct mesh_admin_options {
    char *listen; /* admin.listen: NULL when the admin API is off */
} mesh_admin_options_t;

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

#endif
