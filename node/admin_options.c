/*
 * node/admin_options.c: the table of the admin.* options and the admin address syntax (see
 * node/admin_options.h).
 */
#include "node/admin_options.h"

#include <ctype.h>
#include <errno.h>
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

int mesh_admin_token_read(const char *path, char *out, size_t cap, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read the admin token file %s: %s", path, strerror(errno));
        return -1;
    }
    char buf[MESH_ADMIN_TOKEN_MAX + 64];
    size_t n = fread(buf, 1, sizeof(buf), f);
    int bad_read = ferror(f);
    fclose(f);
    if (bad_read) {
        snprintf(err, errlen, "cannot read the admin token file %s", path);
        return -1;
    }
    size_t b = 0, e = n;
    while (b < e && isspace((unsigned char)buf[b]))
        b++;
    while (e > b && isspace((unsigned char)buf[e - 1]))
        e--;
    if (e == b) {
        snprintf(err, errlen, "the admin token file %s is empty", path);
        return -1;
    }
    if (e - b > MESH_ADMIN_TOKEN_MAX || n == sizeof(buf) || cap <= e - b) {
        snprintf(err, errlen, "the admin token in %s is longer than %d bytes", path,
                 MESH_ADMIN_TOKEN_MAX);
        return -1;
    }
    for (size_t i = b; i < e; i++)
        if ((unsigned char)buf[i] <= 0x20 || (unsigned char)buf[i] >= 0x7f) {
            snprintf(err, errlen,
                     "the admin token in %s holds a space or a byte that is not visible ASCII",
                     path);
            return -1;
        }
    memcpy(out, buf + b, e - b);
    out[e - b] = '\0';
    return (int)(e - b);
}

static int check_token_file(const void *field, int replaced, const char *v, char *err,
                            size_t errlen)
{
    char tok[MESH_ADMIN_TOKEN_MAX + 1];
    if (*v && mesh_admin_token_read(v, tok, sizeof(tok), err, errlen) < 0)
        return -1;
    return 0;
}

static const mesh_config_opt_t opts[] = {
    {.name = "admin.listen",
     .type = MESH_OPT_STR,
     .off = offsetof(mesh_admin_options_t, listen),
     .roles = MESH_ROLE_PROXY | MESH_ROLE_SIDECAR | MESH_ROLE_GATEWAY | MESH_ROLE_MONITOR,
     .help = "HOST:PORT of the admin HTTP API (/, /metrics, /v1/...); PORT or :PORT alone "
             "listen on 127.0.0.1",
     .check = check_listen},
    {.name = "admin.token-file",
     .type = MESH_OPT_STR,
     .off = offsetof(mesh_admin_options_t, token_file),
     .roles = MESH_ROLE_PROXY | MESH_ROLE_SIDECAR | MESH_ROLE_GATEWAY | MESH_ROLE_MONITOR,
     .help = "file holding a bearer token every admin endpoint but /livez and /readyz then "
             "requires (Authorization: Bearer TOKEN)",
     .check = check_token_file},
    {.name = "admin.tls",
     .type = MESH_OPT_BOOL,
     .off = offsetof(mesh_admin_options_t, tls),
     .def = "false",
     .roles = MESH_ROLE_PROXY | MESH_ROLE_SIDECAR | MESH_ROLE_GATEWAY,
     .help = "serve the admin API over TLS (HTTP/1.1) with --tls-cert and --tls-key; the CLI "
             "commands then need --admin-ca"},
};

const mesh_config_section_t mesh_admin_options_section = {
    .name = "admin",
    .opts = opts,
    .n_opts = sizeof(opts) / sizeof(opts[0]),
    .size = sizeof(mesh_admin_options_t),
};
