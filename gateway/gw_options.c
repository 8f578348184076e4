/*
 * gateway/gw_options.c: the table of the gateway's options (gateway/gw_options.h).
 */
#include "gateway/gw_options.h"

#include <stddef.h>

#define F(field) offsetof(gw_options_t, field)

static const mesh_config_opt_t opts[] = {
    {.name = "grpc-listen",
     .type = MESH_OPT_ADDR,
     .off = F(grpc_listen),
     .roles = MESH_ROLE_GATEWAY,
     .help = "HOST:PORT where meshd gateway also takes gRPC calls (none by default)"},
    {.name = "http-listen",
     .type = MESH_OPT_ADDR,
     .off = F(http_listen),
     .roles = MESH_ROLE_SIDECAR,
     .help = "HOST:PORT where the sidecar serves its app's API as HTTP/JSON (none by default)"},
    {.name = "gateway-timeout",
     .type = MESH_OPT_DUR,
     .off = F(timeout_ms),
     .def = "60s",
     .roles = MESH_ROLE_GATEWAY | MESH_ROLE_SIDECAR,
     .min = 0,
     .max = INT32_MAX,
     .help = "deadline of an HTTP/JSON call without a Grpc-Timeout header; 0: none"},
    {.name = "gateway-max-timeout",
     .type = MESH_OPT_DUR,
     .off = F(max_timeout_ms),
     .def = "0",
     .roles = MESH_ROLE_GATEWAY | MESH_ROLE_SIDECAR,
     .min = 0,
     .max = INT32_MAX,
     .help = "largest deadline a Grpc-Timeout header may ask for; 0: no cap"},
    {.name = "gateway-max-body",
     .type = MESH_OPT_SIZE,
     .off = F(max_body),
     .def = "1MiB",
     .roles = MESH_ROLE_GATEWAY | MESH_ROLE_SIDECAR,
     .min = 1024,
     .max = INT32_MAX,
     .help = "largest HTTP/JSON request body; larger gets 413"},
};

const mesh_config_section_t gw_options_section = {
    .name = "gateway",
    .opts = opts,
    .n_opts = sizeof(opts) / sizeof(opts[0]),
    .size = sizeof(gw_options_t),
};
