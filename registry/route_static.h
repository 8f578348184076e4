/*
 * registry/route_static.h: static routes ("SERVICE=HOST:PORT[,HOST:PORT...]", from --static
 * or the config file) added to a routing table under construction.
 */
#ifndef MESH_ROUTE_STATIC_H
#define MESH_ROUTE_STATIC_H

#include "common/config.h"
#include "registry/route_table.h"

/** Adds one static route; returns 0, or -1 when it is malformed (err says why). */
int mesh_route_add_static(mesh_route_builder_t *b, const char *route, char *err, size_t errlen);

/** Adds every static route of cfg; returns 0 or -1 (err says which one and why). */
int mesh_route_add_static_all(mesh_route_builder_t *b, const mesh_config_list_t *routes, char *err,
                              size_t errlen);

#endif
