/*
 * transport/lb_options.h: the balancer's options (--lb, --route-subset), a config section of
 * their own (common/config.h), and how they (with the node's --zone) become the plain settings
 * struct of transport/lb.h that the proxy engines read.
 *
 * The binary registers mesh_lb_options_section at start-up (node/main.c). YAML
 * `lb: p2c` and `route-subset: ["x-canary=1:version=v2"]`, MESHD_LB and MESHD_ROUTE_SUBSET, and
 * the flags all set them.
 */
#ifndef MESH_LB_OPTIONS_H
#define MESH_LB_OPTIONS_H

#include "common/config.h"
#include "transport/lb.h"

/** The values of the balancer's options. */
typedef struct mesh_lb_options {
    char *policy;               /* lb: round-robin | p2c */
    mesh_config_list_t subsets; /* route-subset: HEADER=VALUE:version=V (or :zone=Z) */
} mesh_lb_options_t;

/** The section; register it once with mesh_config_add_section(). */
extern const mesh_config_section_t mesh_lb_options_section;

/**
 * Fills out (zeroed first; free with mesh_lb_cfg_destroy) from cfg's balancer options and its
 * zone, with the defaults applied. Returns 0, or -1 with the problem in err (out of memory:
 * the values were checked when the config was loaded).
 */
int mesh_lb_options_load(const mesh_config_t *cfg, mesh_lb_cfg_t *out, char *err, size_t errlen);

#endif
