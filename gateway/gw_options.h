/*
 * gateway/gw_options.h: the HTTP/JSON gateway's options, a config section (common/config.h)
 * registered by node/main.c: `--grpc-listen` (meshd gateway also serves gRPC there),
 * `--http-listen` (meshd sidecar serves its app's API as HTTP/JSON there), the default and
 * the largest deadline of a call, the largest request body, the allow-list of request headers
 * passed as metadata (`--gateway-headers`).
 */
#ifndef GW_OPTIONS_H
#define GW_OPTIONS_H

#include <stdint.h>

#include "common/config.h"

/** The values of the gateway's options. */
typedef struct gw_options {
    char *grpc_listen;          /* meshd gateway: also a gRPC listener here; NULL: none */
    char *http_listen;          /* meshd sidecar: HTTP/JSON for the app here; NULL: none */
    int64_t timeout_ms;         /* deadline of a call without Grpc-Timeout; 0: none */
    int64_t max_timeout_ms;     /* cap on a client's Grpc-Timeout; 0: none */
    int64_t max_body;           /* bytes of a request body; more gets 413 */
    mesh_config_list_t headers; /* request headers passed as metadata (checked names) */
} gw_options_t;

/** 0 when header name v may be allow-listed (--gateway-headers), else -1 with the reason in
 *  err: not a token, a pseudo-header, hop-by-hop, grpc-*, or one the gateway writes or passes
 *  itself. */
int gw_header_name_check(const char *v, char *err, size_t errlen);

/** The section; register it once with mesh_config_add_section(). */
extern const mesh_config_section_t gw_options_section;

/** The gateway's values of cfg. */
static inline const gw_options_t *gw_options(const mesh_config_t *cfg)
{
    return mesh_config_section(cfg, &gw_options_section);
}

#endif
