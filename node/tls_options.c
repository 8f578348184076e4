/*
 * node/tls_options.c: the table of the tls.* options (see node/tls_options.h).
 */
#include "node/tls_options.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "common/addr.h"

#define O(f)  offsetof(mesh_tls_options_t, f)
#define ROLES (MESH_ROLE_PROXY | MESH_ROLE_SIDECAR | MESH_ROLE_GATEWAY)

static int check_listen(const void *field, int replaced, const char *v, char *err, size_t errlen)
{
    (void)field;
    (void)replaced;
    char host[256];
    int port;
    if (*v && mesh_addr_split(v, host, sizeof(host), &port) != 0) {
        snprintf(err, errlen, "'%s' is not HOST:PORT", v);
        return -1;
    }
    return 0;
}

static const mesh_config_opt_t opts[] = {
    {.name = "tls.cert",
     .type = MESH_OPT_STR,
     .off = O(cert),
     .roles = ROLES,
     .help = "PEM certificate (then its chain) of the gRPC listener: with --tls-key it serves TLS "
             "(ALPN h2, TLS 1.2 and 1.3); reloaded on SIGHUP and when the file changes"},
    {.name = "tls.key",
     .type = MESH_OPT_STR,
     .off = O(key),
     .roles = ROLES,
     .help = "PEM private key of --tls-cert"},
    {.name = "tls.ca",
     .type = MESH_OPT_STR,
     .off = O(ca),
     .roles = ROLES,
     .help = "PEM CA(s) that verify client certificates (and must verify --tls-cert)"},
    {.name = "tls.client-auth",
     .type = MESH_OPT_ENUM,
     .off = O(client_auth),
     .def = "none",
     .roles = ROLES,
     .choices = "none|optional|require",
     .help = "none | optional (verified when sent) | require: client certificates, checked "
             "against --tls-ca"},
    {.name = "tls.listen",
     .type = MESH_OPT_STR,
     .off = O(listen),
     .roles = ROLES,
     .help = "HOST:PORT of a TLS listener beside the h2c one of --listen (default: --listen "
             "itself serves TLS when --tls-cert is given)",
     .check = check_listen},
    {.name = "tls.reload-interval",
     .type = MESH_OPT_DUR,
     .off = O(reload_ms),
     .def = "2s",
     .roles = ROLES,
     .min = 0,
     .max = INT32_MAX,
     .help = "how often certificate, key and CA files are checked for changes (0 = on SIGHUP "
             "only)"},
    {.name = "tls.handshake-timeout",
     .type = MESH_OPT_DUR,
     .off = O(handshake_ms),
     .def = "10s",
     .roles = ROLES,
     .min = 0,
     .max = INT32_MAX,
     .help = "a TLS handshake not done in this time fails: a client is closed, an upstream "
             "counts as a failed connect (0 = no limit)"},
    {.name = "tls.upstream-ca",
     .type = MESH_OPT_STR,
     .off = O(upstream_ca),
     .roles = ROLES,
     .help = "upstream calls use TLS (ALPN h2), the server's certificate verified against this "
             "PEM CA and the instance's host name or IP (SNI sent for names)"},
    {.name = "tls.upstream-cert",
     .type = MESH_OPT_STR,
     .off = O(upstream_cert),
     .roles = ROLES,
     .help =
         "PEM client certificate shown to upstreams that ask for one (with --tls-upstream-key)"},
    {.name = "tls.upstream-key",
     .type = MESH_OPT_STR,
     .off = O(upstream_key),
     .roles = ROLES,
     .help = "PEM private key of --tls-upstream-cert"},
    {.name = "tls.probe",
     .type = MESH_OPT_BOOL,
     .off = O(probe),
     .def = "false",
     .roles = MESH_ROLE_SIDECAR,
     .help = "the probes (--probe-listen) serve HTTPS too, with --tls-cert (a Kubernetes probe "
             "then says scheme: HTTPS)"},
    {.name = "tls.mesh",
     .type = MESH_OPT_BOOL,
     .off = O(mesh),
     .def = "true",
     .roles = ROLES,
     .help = "with an identity (--identity-dir, or a --tls-cert with a SPIFFE ID and --tls-ca): "
             "--listen serves TLS with it, registered as such, and calls to meshd nodes "
             "registered so use mTLS with it (false: neither)"},
    {.name = "tls.upstream-server-name",
     .type = MESH_OPT_STR,
     .off = O(upstream_name),
     .roles = ROLES,
     .help = "name sent as SNI and checked in every upstream's certificate instead of the "
             "instance's host"},
};

static int validate(const void *values, unsigned roles, char *err, size_t errlen)
{
    (void)roles;
    const mesh_tls_options_t *o = values;
    if ((o->cert && *o->cert) != (o->key && *o->key)) {
        snprintf(err, errlen, "%s",
                 o->cert && *o->cert ? "tls-cert: needs --tls-key" : "tls-key: needs --tls-cert");
        return -1;
    }
    /* (tls-listen without --tls-cert is checked by node/node_tls.c: an identity will do) */
    /* (tls-client-auth without --tls-ca: node/node_tls.c, since an identity's CA will do) */
    if ((o->upstream_cert && *o->upstream_cert) && !(o->upstream_ca && *o->upstream_ca)) {
        snprintf(err, errlen, "tls-upstream-cert: needs --tls-upstream-ca");
        return -1;
    }
    return 0;
}

const mesh_config_section_t mesh_tls_options_section = {
    .name = "tls",
    .opts = opts,
    .n_opts = sizeof(opts) / sizeof(opts[0]),
    .size = sizeof(mesh_tls_options_t),
    .validate = validate,
};
