/*
 * gossip/gossip_options.c: the table of the gossip.* options and the actor settings made from
 * them (see gossip/gossip_options.h).
 */
#include "gossip/gossip_options.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/addr.h"

#define P    (MESH_ROLE_PROXY | MESH_ROLE_SIDECAR | MESH_ROLE_GATEWAY | MESH_ROLE_MONITOR)
#define F(x) offsetof(gsp_options_t, x)

static const mesh_config_opt_t opts[] = {
    {.name = "gossip.bind",
     .type = MESH_OPT_ADDR,
     .off = F(bind),
     .roles = P,
     .help = "HOST:PORT for SWIM gossip (UDP and TCP on one port); turns gossip on"},
    {.name = "gossip.advertise",
     .type = MESH_OPT_ADDR,
     .off = F(advertise),
     .roles = P,
     .help = "HOST:PORT other nodes reach our gossip at (default: --gossip-bind)"},
    {.name = "gossip.join",
     .type = MESH_OPT_LIST,
     .off = F(join),
     .roles = P,
     .sep = ",",
     .help = "gossip seeds HOST:PORT (comma-separated or repeated)"},
    {.name = "gossip.key",
     .type = MESH_OPT_STR,
     .off = F(key),
     .roles = P,
     .help = "keyring file: one base64 32-byte key a line; the first encrypts, all decrypt"},
    {.name = "gossip.label",
     .type = MESH_OPT_STR,
     .off = F(label),
     .roles = P,
     .help = "cluster label: gossip packets with another label are refused"},
    {.name = "gossip.profile",
     .type = MESH_OPT_ENUM,
     .off = F(profile),
     .def = "lan",
     .roles = P,
     .choices = "lan|wan|local",
     .help = "gossip timers: lan | wan | local"},
    {.name = "gossip.insecure",
     .type = MESH_OPT_BOOL,
     .off = F(insecure),
     .def = "false",
     .roles = P,
     .help = "allow unencrypted gossip on a non-loopback address"},
    {.name = "gossip.verify",
     .type = MESH_OPT_BOOL,
     .off = F(verify),
     .def = "false",
     .roles = P,
     .help = "route only gossip records signed by an identity of the mesh CA that may register "
             "their services (docs/gossip.md, Signed records)"},
    {.name = "gossip.ca",
     .type = MESH_OPT_STR,
     .off = F(ca),
     .roles = P,
     .help = "CA certificates (PEM) gossip records must chain to; implies --gossip-verify "
             "(default with --gossip-verify: the identity directory's ca.pem)"},
    {.name = "gossip.rules",
     .type = MESH_OPT_STR,
     .off = F(rules),
     .roles = P,
     .help = "rule table: lines SERVICE-GLOB IDENTITY-GLOB, who may register a service besides "
             "the services in its certificate"},
    {.name = "gossip.probe-interval",
     .type = MESH_OPT_DUR,
     .off = F(probe_interval_ms),
     .roles = P,
     .min = 0,
     .max = 3600000,
     .help = "override the profile's probe interval"},
    {.name = "gossip.probe-timeout",
     .type = MESH_OPT_DUR,
     .off = F(probe_timeout_ms),
     .roles = P,
     .min = 0,
     .max = 3600000,
     .help = "override the profile's probe timeout"},
    {.name = "gossip.suspicion-mult",
     .type = MESH_OPT_INT,
     .off = F(suspicion_mult),
     .roles = P,
     .min = 0,
     .max = 100,
     .help = "override the profile's suspicion multiplier"},
    {.name = "gossip.interval",
     .type = MESH_OPT_DUR,
     .off = F(gossip_interval_ms),
     .roles = P,
     .min = 0,
     .max = 3600000,
     .help = "override the profile's gossip interval"},
    {.name = "gossip.push-pull-interval",
     .type = MESH_OPT_DUR,
     .off = F(push_pull_interval_ms),
     .roles = P,
     .min = 0,
     .max = 86400000,
     .help = "override the profile's push-pull (anti-entropy) interval"},
};

/* Whether a numeric host is a loopback address. */
static int loopback_host(const char *hostport)
{
    char host[256];
    int port;
    if (mesh_addr_split(hostport, host, sizeof(host), &port) != 0)
        return 0;
    struct in_addr a4;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    return !strcmp(host, "::1") || !strcmp(host, "localhost");
}

static int validate(const void *values, unsigned roles, char *err, size_t errlen)
{
    (void)roles;
    const gsp_options_t *o = values;
    if (!o->bind) {
        if (o->join.n || o->advertise || o->key || o->label || o->verify || o->ca || o->rules) {
            snprintf(err, errlen, "gossip.bind: needed by the other gossip options");
            return -1;
        }
        return 0;
    }
    const char *exposed = o->advertise ? o->advertise : o->bind;
    if (!o->key && !o->insecure && (!loopback_host(o->bind) || !loopback_host(exposed))) {
        snprintf(err, errlen,
                 "gossip.key: gossip on %s without a key lets anyone who can send it a datagram "
                 "write routes; give --gossip-key FILE, or --gossip-insecure to accept that",
                 exposed);
        return -1;
    }
    if (o->label && strlen(o->label) > GSP_LABEL_LEN_MAX) {
        snprintf(err, errlen, "gossip.label: longer than %d bytes", GSP_LABEL_LEN_MAX);
        return -1;
    }
    if (o->join.n > GSP_SEEDS_MAX) {
        snprintf(err, errlen, "gossip.join: at most %d seeds", GSP_SEEDS_MAX);
        return -1;
    }
    return 0;
}

const mesh_config_section_t gsp_options_section = {
    .name = "gossip",
    .opts = opts,
    .n_opts = sizeof(opts) / sizeof(opts[0]),
    .size = sizeof(gsp_options_t),
    .validate = validate,
};

int gsp_options_enabled(const mesh_config_t *cfg)
{
    const gsp_options_t *o = gsp_options(cfg);
    return o && o->bind && *o->bind;
}

void gsp_options_default_name(mesh_config_t *cfg)
{
    char host[256], bh[256], name[600];
    int port;
    if (!gsp_options_enabled(cfg) || gethostname(host, sizeof(host)) != 0)
        return;
    host[sizeof(host) - 1] = 0;
    if (!cfg->node || strcmp(cfg->node, host) != 0 ||
        mesh_addr_split(gsp_options(cfg)->bind, bh, sizeof(bh), &port) != 0)
        return;
    snprintf(name, sizeof(name), "%s:%d", host, port);
    char *n = strdup(name);
    if (n) {
        free(cfg->node);
        cfg->node = n;
    }
}

/* Resolves "host:port" into numeric "ip:port" text. */
static int numeric(const char *what, const char *v, char *out, size_t cap, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    char why[128];
    if (mesh_addr_resolve(v, &ss, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "%s: cannot resolve %s: %s", what, v, why);
        return -1;
    }
    mesh_addr_format((const struct sockaddr *)&ss, out, cap);
    return 0;
}

int gsp_options_actor_cfg(const mesh_config_t *cfg, const char *name, gsp_actor_cfg_t *out,
                          char *err, size_t errlen)
{
    const gsp_options_t *o = gsp_options(cfg);
    memset(out, 0, sizeof(*out));
    if (!gsp_options_enabled(cfg)) {
        snprintf(err, errlen, "gossip.bind: not set");
        return -1;
    }
    if (strlen(name) > GSP_NAME_MAX) {
        snprintf(err, errlen, "node: a gossip name is at most %d bytes", GSP_NAME_MAX);
        return -1;
    }
    snprintf(out->name, sizeof(out->name), "%s", name);
    if (numeric("gossip.bind", o->bind, out->bind, sizeof(out->bind), err, errlen) != 0)
        return -1;
    if (o->advertise && numeric("gossip.advertise", o->advertise, out->advertise,
                                sizeof(out->advertise), err, errlen) != 0)
        return -1;
    if (!o->advertise && !strncmp(out->bind, "0.0.0.0:", 8)) {
        snprintf(err, errlen, "gossip.advertise: needed when gossip binds to every interface (%s)",
                 o->bind);
        return -1;
    }
    /* every address of a name (a headless service lists one per pod), up to GSP_SEEDS_MAX */
    for (size_t i = 0; i < o->join.n && out->n_seeds < GSP_SEEDS_MAX; i++) {
        struct sockaddr_storage ss[GSP_SEEDS_MAX];
        char why[128];
        int n = mesh_addr_resolve_all(o->join.items[i], ss, GSP_SEEDS_MAX - out->n_seeds, why,
                                      sizeof(why));
        if (n < 0) {
            snprintf(err, errlen, "gossip.join: cannot resolve %s: %s", o->join.items[i], why);
            return -1;
        }
        for (int k = 0; k < n; k++)
            mesh_addr_format((const struct sockaddr *)&ss[k], out->seeds[out->n_seeds++],
                             GSP_ADDR_MAX + 1);
    }
    if (gsp_swim_profile(o->profile ? o->profile : "lan", &out->swim) != 0) {
        snprintf(err, errlen, "gossip.profile: unknown profile %s", o->profile);
        return -1;
    }
    const uint64_t ms = 1000000ull;
    if (o->probe_interval_ms)
        out->swim.probe_interval_ns = (uint64_t)o->probe_interval_ms * ms;
    if (o->probe_timeout_ms)
        out->swim.probe_timeout_ns = (uint64_t)o->probe_timeout_ms * ms;
    if (o->gossip_interval_ms)
        out->swim.gossip_interval_ns = (uint64_t)o->gossip_interval_ms * ms;
    if (o->push_pull_interval_ms)
        out->swim.push_pull_interval_ns = (uint64_t)o->push_pull_interval_ms * ms;
    if (o->suspicion_mult)
        out->swim.suspicion_mult = (uint32_t)o->suspicion_mult;
    if (out->swim.probe_timeout_ns >= out->swim.probe_interval_ns) {
        snprintf(err, errlen, "gossip.probe-timeout: must be shorter than the probe interval");
        return -1;
    }
    if (o->label)
        snprintf(out->label, sizeof(out->label), "%s", o->label);
    if (o->key) {
        char why[512];
        if (gsp_keyring_load(o->key, &out->ring, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "gossip.key: %s", why);
            return -1;
        }
    }
    return 0;
}
