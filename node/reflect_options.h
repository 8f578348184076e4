/*
 * node/reflect_options.h: the options of aggregated reflection at the mesh entry
 * (reflection.*), a config section of their own (common/config.h).
 *
 *   --reflection-serve true|false  meshd proxy and meshd gateway answer grpc.reflection.v1 and
 *                                  v1alpha themselves,
 *                                  from the descriptors it fetches from every routed service
 *                                  (default true; false: reflection calls are routed like any
 *                                  other and the descriptor cache does not run)
 *   --reflection-hold DURATION     how long a lookup for a routed service whose descriptors are
 *                                  not fetched yet waits before NOT_FOUND (default 3s)
 *
 * The binary registers reflect_options_section at start-up (node/main.c).
 */
#ifndef MESH_NODE_REFLECT_OPTIONS_H
#define MESH_NODE_REFLECT_OPTIONS_H

#include <stdint.h>

#include "common/config.h"

/** The values of the reflection.* options. */
typedef struct reflect_options {
    int serve;
    int64_t hold_ms;
} reflect_options_t;

/** The reflection.* section; register it once with mesh_config_add_section(). */
extern const mesh_config_section_t reflect_options_section;

static inline const reflect_options_t *reflect_options(const mesh_config_t *cfg)
{
    return mesh_config_section(cfg, &reflect_options_section);
}

#endif
