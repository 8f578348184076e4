/*
 * node/ca_options.c: the table of the ca.* and identity.* options and their checks (see
 * node/ca_options.h).
 */
#include "node/ca_options.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca_tokens.h"
#include "ca/spiffe.h"
#include "common/file_read.h"

#define F(f) offsetof(mesh_ca_options_t, f)
#define R    (MESH_ROLE_PROXY | MESH_ROLE_SIDECAR | MESH_ROLE_GATEWAY | MESH_ROLE_MONITOR)

/* The whole of a small file, or NULL with "cannot read PATH: why". */
static char *slurp(const char *path, size_t max, size_t *len, char *err, size_t errlen)
{
    char why[600];
    char *s = mesh_file_read(path, max, 0, len, why, sizeof(why));
    if (!s)
        snprintf(err, errlen, "cannot read %s", why);
    return s;
}

/* --ca-tokens: the whole file must parse (errors name file:line). */
static int check_tokens(const void *field, int replaced, const char *v, char *err, size_t errlen)
{
    if (!*v)
        return 0;
    size_t n;
    char *text = slurp(v, 4 << 20, &n, err, errlen);
    if (!text)
        return -1;
    ca_tokens_t t;
    int rc = ca_tokens_parse(&t, v, text, n, err, errlen);
    if (rc == 0)
        ca_tokens_destroy(&t);
    free(text);
    return rc;
}

int mesh_ca_token_read(const char *path, char *out, size_t cap, char *err, size_t errlen)
{
    size_t n;
    char *s = slurp(path, 4096, &n, err, errlen);
    if (!s)
        return -1;
    size_t b = 0, e = n;
    while (b < e && isspace((unsigned char)s[b]))
        b++;
    while (e > b && isspace((unsigned char)s[e - 1]))
        e--;
    int rc = -1;
    if (e - b < CA_TOKEN_MIN || e - b > CA_TOKEN_MAX || e - b >= cap)
        snprintf(err, errlen, "the token in %s must have %d to %d characters", path, CA_TOKEN_MIN,
                 CA_TOKEN_MAX);
    else {
        rc = (int)(e - b);
        for (size_t i = b; i < e; i++)
            if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f) {
                snprintf(err, errlen,
                         "the token in %s has a space or a byte that is not visible "
                         "ASCII",
                         path);
                rc = -1;
                break;
            }
        if (rc > 0) {
            memcpy(out, s + b, e - b);
            out[e - b] = '\0';
        }
    }
    memset(s, 0, n);
    free(s);
    return rc;
}

static int check_token_file(const void *field, int replaced, const char *v, char *err,
                            size_t errlen)
{
    char tok[CA_TOKEN_MAX + 1];
    return *v && mesh_ca_token_read(v, tok, sizeof(tok), err, errlen) < 0 ? -1 : 0;
}

static int check_url(const void *field, int replaced, const char *v, char *err, size_t errlen)
{
    if (*v && strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0) {
        snprintf(err, errlen, "'%s' is not an http:// or https:// URL of a CA node's admin API", v);
        return -1;
    }
    return 0;
}

static int check_service(const void *field, int replaced, const char *v, char *err, size_t errlen)
{
    if (!spf_name_ok(v)) {
        snprintf(err, errlen, "'%s' is not a service name (1-%d characters of A-Z a-z 0-9 . - _)",
                 v, SPF_NAME_MAX);
        return -1;
    }
    return 0;
}

static const mesh_config_opt_t opts[] = {
    {.name = "ca.dir",
     .type = MESH_OPT_STR,
     .off = F(dir),
     .roles = R,
     .help = "serve the mesh CA (POST /v1/ca/sign on the admin API) with the root in this "
             "folder (`meshd ca init`)"},
    {.name = "ca.tokens",
     .type = MESH_OPT_STR,
     .off = F(tokens),
     .roles = R,
     .help = "the CA's bootstrap tokens: one 'TOKEN NODE-GLOB SERVICE-GLOBS' per line",
     .check = check_tokens},
    {.name = "ca.max-lifetime",
     .type = MESH_OPT_DUR,
     .off = F(max_lifetime_ms),
     .def = "24h",
     .roles = R,
     .min = 1000,
     .max = 365LL * 86400 * 1000,
     .help = "the longest certificate lifetime the CA signs (and its default)"},
    {.name = "ca.url",
     .type = MESH_OPT_STR,
     .off = F(url),
     .roles = R,
     .help = "http://HOST:PORT of a CA node's admin API: obtain and rotate this node's "
             "certificate there",
     .check = check_url},
    {.name = "ca.token-file",
     .type = MESH_OPT_STR,
     .off = F(token_file),
     .roles = R,
     .help = "file holding this node's bootstrap token for --ca-url",
     .check = check_token_file},
    {.name = "identity.dir",
     .type = MESH_OPT_STR,
     .off = F(identity_dir),
     .roles = R,
     .help = "folder of the node's key.pem, cert.pem and ca.pem (written with --ca-url); "
             "with them the node signs its gossip record"},
    {.name = "identity.lifetime",
     .type = MESH_OPT_DUR,
     .off = F(lifetime_ms),
     .def = "24h",
     .roles = R,
     .min = 1000,
     .max = 365LL * 86400 * 1000,
     .help = "certificate lifetime asked of the CA; renewed at two thirds of it"},
    {.name = "identity.service",
     .type = MESH_OPT_LIST,
     .off = F(services),
     .roles = R,
     .sep = ",",
     .help = "a service this node owns, in its certificate as spiffe://TD/svc/NAME (repeatable)",
     .check = check_service},
    {.name = "identity.dns",
     .type = MESH_OPT_LIST,
     .off = F(dns),
     .roles = R,
     .sep = ",",
     .help = "a DNS name for the certificate (repeatable)"},
    {.name = "identity.ip",
     .type = MESH_OPT_LIST,
     .off = F(ips),
     .roles = R,
     .sep = ",",
     .help = "an IP address for the certificate (repeatable)"},
};

static int validate(const void *values, unsigned roles, char *err, size_t errlen)
{
    const mesh_ca_options_t *o = values;
    if (o->dir && *o->dir && !(o->tokens && *o->tokens)) {
        snprintf(err, errlen, "ca.dir: a CA node needs --ca-tokens (who may obtain what)");
        return -1;
    }
    if (o->url && *o->url) {
        if (!(o->token_file && *o->token_file)) {
            snprintf(err, errlen, "ca.url: needs --ca-token-file (the bootstrap token)");
            return -1;
        }
        if (!(o->identity_dir && *o->identity_dir)) {
            snprintf(err, errlen, "ca.url: needs --identity-dir (where the certificate goes)");
            return -1;
        }
    }
    return 0;
}

const mesh_config_section_t mesh_ca_options_section = {
    .name = "ca",
    .opts = opts,
    .n_opts = sizeof(opts) / sizeof(opts[0]),
    .size = sizeof(mesh_ca_options_t),
    .validate = validate,
};
