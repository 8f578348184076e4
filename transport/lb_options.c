/*
 * transport/lb_options.c: the table of the balancer's options (see transport/lb_options.h) and
 * their conversion into transport/lb.h's settings.
 */
#include "transport/lb_options.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define F(field) offsetof(mesh_lb_options_t, field)

/* A route-subset value must parse (mesh_config_check_fn). */
static int check_subset(const void *field, int replaced, const char *v, char *err, size_t errlen)
{
    (void)field;
    (void)replaced;
    mesh_lb_subset_t r;
    if (mesh_lb_subset_parse(v, &r, err, errlen) != 0)
        return -1;
    mesh_lb_subset_destroy(&r);
    return 0;
}

static const mesh_config_opt_t opts[] = {
    {.name = "lb",
     .type = MESH_OPT_ENUM,
     .off = F(policy),
     .def = "p2c",
     .roles = MESH_ROLE_PROXY | MESH_ROLE_GATEWAY,
     .choices = "round-robin|p2c",
     .help = "balancing: p2c (power of two choices over latency EWMA and outstanding calls) | "
             "round-robin; both share by instance weight"},
    {.name = "route-subset",
     .type = MESH_OPT_LIST,
     .off = F(subsets),
     .roles = MESH_ROLE_PROXY | MESH_ROLE_GATEWAY,
     .help = "HEADER=VALUE:version=V (or :zone=Z): calls with that metadata go to those "
             "instances, any instance when none can take it (repeatable; first match wins)",
     .check = check_subset},
};

const mesh_config_section_t mesh_lb_options_section = {
    .name = "lb",
    .opts = opts,
    .n_opts = sizeof(opts) / sizeof(opts[0]),
    .size = sizeof(mesh_lb_options_t),
};

int mesh_lb_options_load(const mesh_config_t *cfg, mesh_lb_cfg_t *out, char *err, size_t errlen)
{
    const mesh_lb_options_t *o = mesh_config_section(cfg, &mesh_lb_options_section);
    memset(out, 0, sizeof(*out));
    if (o->policy && mesh_lb_policy_parse(o->policy, &out->policy) != 0) {
        snprintf(err, errlen, "lb: '%s' is not round-robin or p2c", o->policy);
        return -1;
    }
    if (cfg->zone && cfg->zone[0] && !(out->zone = strdup(cfg->zone)))
        goto oom;
    for (size_t i = 0; i < o->subsets.n; i++) {
        mesh_lb_subset_t r;
        if (mesh_lb_subset_parse(o->subsets.items[i], &r, err, errlen) != 0) {
            mesh_lb_cfg_destroy(out);
            return -1;
        }
        if (mesh_lb_cfg_add_subset(out, &r) != 0) {
            mesh_lb_subset_destroy(&r);
            goto oom;
        }
    }
    mesh_lb_cfg_fix(out);
    return 0;
oom:
    mesh_lb_cfg_destroy(out);
    snprintf(err, errlen, "out of memory");
    return -1;
}
