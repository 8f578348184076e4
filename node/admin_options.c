/*
 * node/admin_options.c: the table of the admin.* options and the admin address syntax (see
 * node/admin_options.h).
 */
#include "node/admin_options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"

int mesh_admin_listen_split(const char *v, char *host, size_t hostlen, int *port)
{
    if (!v || !*v || hostlen < sizeof("127.0.0.1"))
        return -1;
    const char *p = v[0] == ':' ? v + 1 : v;
    if (strspn(p, "0123456789") == strlen(p)) { /* PORT or :PORT */
        if (strlen(p) == 0 || strlen(p) > 5 || atoi(p) > 65535)
            return -1;
        snprintf(host, hostlen, "127.0.0.1");
        *port = atoi(p);
        return 0;
    }
    if (mesh_addr_split(v, host, hostlen, port) != 0 || *port < 0 || *port > 65535)
        return -1;
    return 0;
}

static int check_listen(const void *field, int replaced, const char *v, char *err, size_t errlen)
{
    char host[256];
    int port;
    if (*v && mesh_admin_listen_split(v, host, sizeof(host), &port) != 0) {
        snprintf(err, errlen, "'%s' is not HOST:PORT, :PORT or PORT", v);
        return -1;
    }
    return 0;
}

static const mesh_config_opt_t opts[] = {
    {.name = "admin.listen",
     .type = MESH_OPT_STR,
     .off = offsetof(mesh_admin_options_t, listen),
     .roles = MESH_ROLE_PROXY | MESH_ROLE_SIDECAR | MESH_ROLE_GATEWAY | MESH_ROLE_MONITOR,
     .help = "HOST:PORT of the admin HTTP API (/v1/node, /v1/routes, /v1/members); PORT or "
             ":PORT alone listen on 127.0.0.1",
     .check = check_listen},
};

const mesh_config_section_t mesh_admin_options_section = {
    .name = "admin",
    .opts = opts,
    .n_opts = sizeof(opts) / sizeof(opts[0]),
    .size = sizeof(mesh_admin_options_t),
};
