/*
 * policy/breaker_options.c: the table of the breaker.* options (see policy/breaker_options.h):
 * names, defaults, bounds and help as `meshd help sidecar` lists them.
 */
#include "policy/breaker_options.h"

#include <stddef.h>

#define F(field) offsetof(pol_breaker_options_t, field)

static const mesh_config_opt_t opts[] = {
    {.name = "breaker.failures",
     .type = MESH_OPT_INT,
     .off = F(failures),
     .def = "5",
     .roles = MESH_ROLE_SIDECAR,
     .min = 1,
     .max = 1000000,
     .help = "consecutive failures that open the circuit"},
    {.name = "breaker.failure-ratio",
     .type = MESH_OPT_RATIO,
     .off = F(failure_ratio),
     .def = "0.5",
     .roles = MESH_ROLE_SIDECAR,
     .help = "failure ratio over the window that opens the circuit"},
    {.name = "breaker.window",
     .type = MESH_OPT_DUR,
     .off = F(window_ms),
     .def = "10s",
     .roles = MESH_ROLE_SIDECAR,
     .min = 100,
     .max = INT32_MAX,
     .help = "sliding window of the failure ratio"},
    {.name = "breaker.min-calls",
     .type = MESH_OPT_INT,
     .off = F(min_calls),
     .def = "20",
     .roles = MESH_ROLE_SIDECAR,
     .min = 1,
     .max = 1000000,
     .help = "calls in the window before the ratio counts"},
    {.name = "breaker.max-concurrent",
     .type = MESH_OPT_INT,
     .off = F(max_concurrent),
     .def = "1000",
     .roles = MESH_ROLE_SIDECAR,
     .min = 1,
     .max = 1000000,
     .help = "concurrent calls to the app; more are rejected at once"},
    {.name = "breaker.open",
     .type = MESH_OPT_DUR,
     .off = F(open_ms),
     .def = "5s",
     .roles = MESH_ROLE_SIDECAR,
     .min = 10,
     .max = INT32_MAX,
     .help = "how long the circuit stays open before probing"},
    {.name = "breaker.half-open-calls",
     .type = MESH_OPT_INT,
     .off = F(half_open_calls),
     .def = "3",
     .roles = MESH_ROLE_SIDECAR,
     .min = 1,
     .max = 1000,
     .help = "probe calls let through while half-open"},
};

const mesh_config_section_t pol_breaker_options_section = {
    .name = "breaker",
    .opts = opts,
    .n_opts = sizeof(opts) / sizeof(opts[0]),
    .size = sizeof(pol_breaker_options_t),
};
