/*
 * gateway/gw_options.c: the table of the gateway's options (gateway/gw_options.h).
 */
#include "gateway/gw_options.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define F(field) offsetof(gw_options_t, field)

/* Headers an allow-list may not name, and why: the gateway or the engine writes them itself, or
 * they describe one HTTP hop (RFC 9110 7.6.1) and mean nothing to the gRPC server. */
static const struct {
    const char *name, *why;
} refused[] = {
    {"connection", "a hop-by-hop header"},
    {"keep-alive", "a hop-by-hop header"},
    {"proxy-connection", "a hop-by-hop header"},
    {"proxy-authenticate", "a hop-by-hop header"},
    {"proxy-authorization", "a hop-by-hop header"},
    {"transfer-encoding", "a hop-by-hop header"},
    {"upgrade", "a hop-by-hop header"},
    {"trailer", "a hop-by-hop header"},
    {"te", "a hop-by-hop header (gRPC's te: trailers is written by the gateway)"},
    {"http2-settings", "a hop-by-hop header"},
    {"host", "written by the gateway (:authority)"},
    {"content-type", "written by the gateway (application/grpc)"},
    {"content-length", "describes the HTTP body, not the gRPC call"},
    {"x-request-timeout", "it sets the call's deadline"},
    {"x-forwarded-for", "always passed, with the client's address appended"},
    {"authorization", "always passed"},
    {"x-request-id", "always passed"},
    {"traceparent", "always passed"},
    {"tracestate", "always passed"},
};

int gw_header_name_check(const char *v, char *err, size_t errlen)
{
    size_t n = strlen(v);
    if (n == 0) {
        snprintf(err, errlen, "an empty header name");
        return -1;
    }
    if (v[0] == ':') {
        snprintf(err, errlen, "'%s' is a pseudo-header: the gateway writes those itself", v);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (!(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') && !(c >= '0' && c <= '9') &&
            !strchr("!#$%&'*+-.^_`|~", c)) {
            snprintf(err, errlen, "'%s' is not a header name (character %zu)", v, i + 1);
            return -1;
        }
    }
    if (n > 100) {
        snprintf(err, errlen, "'%.32s...' is longer than 100 characters", v);
        return -1;
    }
    if (strncasecmp(v, "grpc-", 5) == 0) {
        snprintf(err, errlen,
                 "'%s': grpc-* headers belong to gRPC; send metadata as Grpc-Metadata-NAME "
                 "(Grpc-Timeout sets the deadline)",
                 v);
        return -1;
    }
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        if (strcasecmp(v, refused[i].name) == 0) {
            snprintf(err, errlen, "'%s' cannot be allow-listed: %s", v, refused[i].why);
            return -1;
        }
    return 0;
}

static int check_header(const void *field, int replaced, const char *v, char *err, size_t errlen)
{
    (void)field;
    (void)replaced;
    return gw_header_name_check(v, err, errlen);
}

static const mesh_config_opt_t opts[] = {
    {.name = "grpc-listen",
     .type = MESH_OPT_ADDR,
     .off = F(grpc_listen),
     .roles = MESH_ROLE_GATEWAY,
     .help = "HOST:PORT where meshd gateway also takes gRPC calls (none by default)"},
    {.name = "http-listen",
     .type = MESH_OPT_ADDR,
     .off = F(http_listen),
     .roles = MESH_ROLE_SIDECAR,
     .help = "HOST:PORT where the sidecar serves its app's API as HTTP/JSON (none by default)"},
    {.name = "gateway-timeout",
     .type = MESH_OPT_DUR,
     .off = F(timeout_ms),
     .def = "60s",
     .roles = MESH_ROLE_GATEWAY | MESH_ROLE_SIDECAR,
     .min = 0,
     .max = INT32_MAX,
     .help = "deadline of an HTTP/JSON call without a Grpc-Timeout header; 0: none"},
    {.name = "gateway-max-timeout",
     .type = MESH_OPT_DUR,
     .off = F(max_timeout_ms),
     .def = "0",
     .roles = MESH_ROLE_GATEWAY | MESH_ROLE_SIDECAR,
     .min = 0,
     .max = INT32_MAX,
     .help = "largest deadline a Grpc-Timeout header may ask for; 0: no cap"},
    {.name = "gateway-max-body",
     .type = MESH_OPT_SIZE,
     .off = F(max_body),
     .def = "1MiB",
     .roles = MESH_ROLE_GATEWAY | MESH_ROLE_SIDECAR,
     .min = 1024,
     .max = INT32_MAX,
     .help = "largest HTTP/JSON request body; larger gets 413"},
    {.name = "gateway-headers",
     .type = MESH_OPT_LIST,
     .off = F(headers),
     .roles = MESH_ROLE_GATEWAY | MESH_ROLE_SIDECAR,
     .sep = ",",
     .check = check_header,
     .help = "request headers passed as gRPC metadata under their own lower-cased names "
             "(comma-separated or repeated), besides Grpc-Metadata-*"},
};

const mesh_config_section_t gw_options_section = {
    .name = "gateway",
    .opts = opts,
    .n_opts = sizeof(opts) / sizeof(opts[0]),
    .size = sizeof(gw_options_t),
};
