/*
 * registry/route_static.c: parsing static routes into a routing table under construction.
 */
#include "registry/route_static.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"

int mesh_route_add_static(mesh_route_builder_t *b, const char *route, char *err, size_t errlen)
{
    const char *eq = strchr(route, '=');
    if (!eq || eq == route || !eq[1]) {
        snprintf(err, errlen, "static route '%s' is not SERVICE=HOST:PORT[,HOST:PORT...]", route);
        return -1;
    }
    char service[256];
    size_t sl = (size_t)(eq - route);
    if (sl >= sizeof(service)) {
        snprintf(err, errlen, "static route '%s': service name too long", route);
        return -1;
    }
    memcpy(service, route, sl);
    service[sl] = '\0';
    char *addrs = strdup(eq + 1), *save = NULL;
    int rc = 0;
    for (char *a = strtok_r(addrs, ",", &save); a && rc == 0; a = strtok_r(NULL, ",", &save)) {
        char host[256];
        int port;
        if (mesh_addr_split(a, host, sizeof(host), &port) != 0 || port == 0) {
            snprintf(err, errlen, "static route '%s': '%s' is not HOST:PORT", route, a);
            rc = -1;
        } else if (mesh_route_builder_add(b, service, a, NULL, 0, MESH_ROUTE_STATIC, "", "", 1) !=
                   0) {
            snprintf(err, errlen, "static route '%s': cannot add '%s'", route, a);
            rc = -1;
        }
    }
    free(addrs);
    return rc;
}

int mesh_route_add_static_all(mesh_route_builder_t *b, const mesh_config_list_t *routes, char *err,
                              size_t errlen)
{
    for (size_t i = 0; i < routes->n; i++)
        if (mesh_route_add_static(b, routes->items[i], err, errlen) != 0)
            return -1;
    return 0;
}
