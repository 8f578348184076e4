/*
 * node/reflect_options.c: the table of the reflection.* options (node/reflect_options.h).
 */
#include "node/reflect_options.h"

#include <stddef.h>

#define F(x) offsetof(reflect_options_t, x)

static const mesh_config_opt_t opts[] = {
    {.name = "reflection.serve",
     .type = MESH_OPT_BOOL,
     .off = F(serve),
     .def = "true",
     .roles = MESH_ROLE_PROXY | MESH_ROLE_GATEWAY,
     .help = "answer gRPC server reflection (v1, v1alpha) at the entry for every routed "
             "service, from descriptors fetched by reflection"},
    {.name = "reflection.hold",
     .type = MESH_OPT_DUR,
     .off = F(hold_ms),
     .def = "3s",
     .roles = MESH_ROLE_PROXY | MESH_ROLE_GATEWAY,
     .min = 0,
     .max = 60000,
     .help = "how long a lookup waits for descriptors not fetched yet before NOT_FOUND"},
};

const mesh_config_section_t reflect_options_section = {
    .name = "reflection",
    .opts = opts,
    .n_opts = sizeof(opts) / sizeof(opts[0]),
    .size = sizeof(reflect_options_t),
};
