/*
 * common/config.c: the option tables and their four sources (defaults, YAML file, environment,
 * flags), see common/config.h.
 *
 * A table describes each of its options once: its name, type, default, the roles it is meant
 * for and where it lives in its struct. Table 0 is the core table below, whose values live in
 * mesh_config_t itself; tables 1.. are the sections subsystems registered, whose values live in
 * the structs mesh_config_init() allocates (cfg->sections[t - 1]). Every source goes through
 * opt_set(), so a value is checked the same way whichever source and table it came from, and
 * errors name their origin.
 */
#include "common/config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "common/addr.h"

/* Where a value came from; a higher source replaces a lower one. */
enum { SRC_DEFAULT = 0, SRC_FILE = 1, SRC_ENV = 2, SRC_FLAG = 3 };

typedef mesh_config_opt_t opt_t;

#define F(field) offsetof(mesh_config_t, field)
#define P        MESH_ROLE_PROXY
#define S        MESH_ROLE_SIDECAR
#define G        MESH_ROLE_GATEWAY
#define M        MESH_ROLE_MONITOR
#define ALL      MESH_ROLE_ALL
#define DP       (P | S | G)

/* The core's own value checks (mesh_config_check_fn), defined below. */
static int check_word(const void *field, int replaced, const char *v, char *err, size_t errlen);
static int check_label(const void *field, int replaced, const char *v, char *err, size_t errlen);

/* The core table: the options every role shares, in the order --help and check-config list
 * them. Sections registered by subsystems follow it. */
static const opt_t core_opts[] = {
    {"config", MESH_OPT_STR, F(config_file), NULL, ALL, 0, 0, NULL, "YAML configuration file", NULL,
     NULL},
    {"node", MESH_OPT_STR, F(node), NULL, ALL, 0, 0, NULL, "node id (default: the host name)", NULL,
     NULL},
    {"log-level", MESH_OPT_LEVEL, F(log_level), "info", ALL, 0, 0, NULL,
     "debug | info | warn | error | off", NULL, NULL},
    {"log-format", MESH_OPT_ENUM, F(log_format), "auto", ALL, 0, 0, "auto|json|text",
     "auto (text on a terminal, JSON otherwise) | json | text", NULL, NULL},

    {"listen", MESH_OPT_ADDR, F(listen), "127.0.0.1:9090", DP, 0, 0, NULL,
     "HOST:PORT the gRPC listener binds (one SO_REUSEPORT socket per worker)", NULL, NULL},
    /* The bound is actors/exec.h's MESH_EXEC_MAX_WORKERS (common/ cannot include actors/;
     * tests/unit/actors/test_exec_limits.c checks that the two agree). */
    {"workers", MESH_OPT_INT, F(workers), "0", DP, 0, 255, NULL,
     "worker loops, at most 255; 0 = one per core", NULL, NULL},
    {"static", MESH_OPT_LIST, F(static_routes), NULL, P | G, 0, 0, NULL,
     "static route SERVICE=HOST:PORT[,HOST:PORT...] (repeatable)", NULL, NULL},
    {"max-concurrent-streams", MESH_OPT_INT, F(max_concurrent_streams), "1000", DP, 1, 1 << 20,
     NULL, "HTTP/2 streams per client connection", NULL, NULL},
    {"max-header-list-size", MESH_OPT_SIZE, F(max_header_list_size), "16KiB", DP, 1024, 1 << 24,
     NULL, "largest header block accepted", NULL, NULL},
    {"stream-buffer", MESH_OPT_SIZE, F(stream_buffer), "256KiB", DP, 16384, 1 << 30, NULL,
     "bytes buffered per stream and direction before the sender is slowed", NULL, NULL},
    {"conn-window", MESH_OPT_SIZE, F(conn_window), "1GiB", DP, 16384, (1u << 31) - 1, NULL,
     "HTTP/2 connection receive window of client and upstream connections (at least "
     "stream-buffer)",
     NULL, NULL},
    {"upstream-streams-per-conn", MESH_OPT_INT, F(upstream_streams_per_conn), "0", DP, 0, 1 << 20,
     NULL,
     "calls per upstream connection before the pool opens another, up to 8 (0 = the "
     "server's limit)",
     NULL, NULL},
    {"connect-timeout", MESH_OPT_DUR, F(connect_timeout_ms), "1s", DP, 1, INT32_MAX, NULL,
     "upstream connect timeout", NULL, NULL},
    {"keepalive-interval", MESH_OPT_DUR, F(keepalive_interval_ms), "30s", DP, 0, INT32_MAX, NULL,
     "HTTP/2 PING interval on idle connections (0 = off)", NULL, NULL},
    {"keepalive-timeout", MESH_OPT_DUR, F(keepalive_timeout_ms), "10s", DP, 1, INT32_MAX, NULL,
     "a PING unanswered this long closes the connection", NULL, NULL},
    {"upstream-stall", MESH_OPT_DUR, F(upstream_stall_ms), "500ms", DP, 0, INT32_MAX, NULL,
     "an upstream connection with calls waiting that received nothing this long after a write "
     "is PINGed (0 = off)",
     NULL, NULL},
    {"upstream-stall-timeout", MESH_OPT_DUR, F(upstream_stall_timeout_ms), "500ms", DP, 1,
     INT32_MAX, NULL,
     "...and closed, failing its calls UNAVAILABLE, when the PING is unanswered this long", NULL,
     NULL},
    /* outlier ejection of upstream instances (transport/outlier.h), proxy and gateway */
    {"outlier", MESH_OPT_ENUM, F(outlier), "on", P | G, 0, 0, "on|off",
     "on | off: take an instance whose calls keep failing out of balancing", NULL, NULL},
    {"outlier-consecutive", MESH_OPT_INT, F(outlier_consecutive), "5", P | G, 1, 1000000, NULL,
     "gateway failures in a row (connect failure, reset, lost connection, UNAVAILABLE, "
     "DEADLINE_EXCEEDED) that eject an instance",
     NULL, NULL},
    {"outlier-base-ejection", MESH_OPT_DUR, F(outlier_base_ejection_ms), "30s", P | G, 1, INT32_MAX,
     NULL, "first ejection time; each further ejection adds as much", NULL, NULL},
    {"outlier-max-ejection", MESH_OPT_DUR, F(outlier_max_ejection_ms), "300s", P | G, 1, INT32_MAX,
     NULL, "longest ejection", NULL, NULL},
    {"outlier-max-ejection-percent", MESH_OPT_INT, F(outlier_max_ejection_percent), "10", P | G, 1,
     100, NULL,
     "most instances of a service ejected at once, in percent (at least one, never the last)", NULL,
     NULL},
    {"outlier-failure-percent", MESH_OPT_INT, F(outlier_failure_pct), "0", P | G, 0, 100, NULL,
     "eject an instance whose calls failed at least this percentage in a window (0 = off)", NULL,
     NULL},
    {"outlier-failure-volume", MESH_OPT_INT, F(outlier_failure_volume), "50", P | G, 1, 1000000,
     NULL, "...of at least this many calls (per worker)", NULL, NULL},
    {"outlier-interval", MESH_OPT_DUR, F(outlier_interval_ms), "10s", P | G, 100, INT32_MAX, NULL,
     "...the window of the failure percentage (and of the success rate)", NULL, NULL},
    {"outlier-success-rate-stdev", MESH_OPT_INT, F(outlier_sr_stdev), "0", P | G, 0, 100000, NULL,
     "success-rate ejection: an instance below the service's mean success rate minus this many "
     "thousandths of a standard deviation (Envoy's 1900; 0 = off)",
     NULL, NULL},
    {"outlier-success-rate-hosts", MESH_OPT_INT, F(outlier_sr_hosts), "5", P | G, 2, 1000000, NULL,
     "...judged only when this many instances of the service had the volume", NULL, NULL},
    {"outlier-success-rate-volume", MESH_OPT_INT, F(outlier_sr_volume), "100", P | G, 1, 1000000,
     NULL, "...calls an instance needs in an interval to be judged (per worker)", NULL, NULL},
    {"drain-timeout", MESH_OPT_DUR, F(drain_timeout_ms), "5s", DP, 0, INT32_MAX, NULL,
     "on SIGTERM, how long in-flight calls may take to finish", NULL, NULL},
    /* gRPC health at the mesh entry (node/health_local.c, docs/entry.md) */
    {"health-passthrough", MESH_OPT_BOOL, F(health_passthrough), "false", P | G, 0, 0, NULL,
     "forward grpc.health.v1.Health calls to the instances instead of answering them", NULL, NULL},
    {"health-grace", MESH_OPT_DUR, F(health_grace_ms), "0s", P | G, 0, INT32_MAX, NULL,
     "on SIGTERM, how long health answers NOT_SERVING (calls still served) before the GOAWAY", NULL,
     NULL},

    /* upstream names (transport/upstream_pool.c) */
    {"dns-refresh", MESH_OPT_DUR, F(dns_refresh_ms), "30s", DP, 100, INT32_MAX, NULL,
     "how often an upstream host name is resolved again (off the worker loops), so routes "
     "follow DNS",
     NULL, NULL},

    {"etcd", MESH_OPT_LIST, F(etcd), NULL, ALL, 0, 0, NULL, "etcd endpoint URLs (comma-separated)",
     NULL, ","},
    {"etcd-prefix", MESH_OPT_STR, F(etcd_prefix), "meshd/services", ALL, 0, 0, NULL,
     "key prefix of service instances", NULL, NULL},
    {"etcd-user", MESH_OPT_STR, F(etcd_user), NULL, ALL, 0, 0, NULL,
     "etcd user to authenticate as (etcd RBAC, docs/etcd-rbac.md); needs --etcd-password-file",
     NULL, NULL},
    {"etcd-password-file", MESH_OPT_STR, F(etcd_password_file), NULL, ALL, 0, 0, NULL,
     "file whose first line is the etcd user's password (never on the command line)", NULL, NULL},
    {"etcd-cacert", MESH_OPT_STR, F(etcd_cacert), NULL, ALL, 0, 0, NULL,
     "CA bundle that verifies etcd's https:// endpoints", NULL, NULL},
    {"etcd-cert", MESH_OPT_STR, F(etcd_cert), NULL, ALL, 0, 0, NULL,
     "client certificate for etcd's mutual TLS (PEM; without a CN: etcd 3.4's gateway refuses "
     "one with a CN)",
     NULL, NULL},
    {"etcd-key", MESH_OPT_STR, F(etcd_key), NULL, ALL, 0, 0, NULL, "client key for etcd", NULL,
     NULL},
    {"snapshot-file", MESH_OPT_STR, F(snapshot_file), NULL, ALL, 0, 0, NULL,
     "file keeping the last registry view for restarts while etcd is down", NULL, NULL},
    {"lease-ttl", MESH_OPT_DUR, F(lease_ttl_ms), "10s", S, 2000, 3600000, NULL,
     "TTL of the etcd lease registrations live under", NULL, NULL},

    {"app", MESH_OPT_ADDR, F(app), NULL, S, 0, 0, NULL, "HOST:PORT of the local gRPC server", NULL,
     NULL},
    {"advertise", MESH_OPT_ADDR, F(advertise), NULL, S, 0, 0, NULL,
     "HOST:PORT registered in etcd (default: --listen)", NULL, NULL},
    {"probe-listen", MESH_OPT_ADDR, F(probe_listen), NULL, S, 0, 0, NULL,
     "HOST:PORT of the HTTP probes /livez and /readyz", NULL, NULL},
    {"descriptor-set", MESH_OPT_STR, F(descriptor_set), NULL, S | G, 0, 0, NULL,
     "FileDescriptorSet describing an app without reflection", NULL, NULL},
    {"health-interval", MESH_OPT_DUR, F(health_interval_ms), "1s", S, 10, INT32_MAX, NULL,
     "interval between health checks of the app", NULL, NULL},
    {"health-timeout", MESH_OPT_DUR, F(health_timeout_ms), "1s", S, 10, INT32_MAX, NULL,
     "a health check unanswered this long failed", NULL, NULL},
    {"ready-failures", MESH_OPT_INT, F(ready_failures), "3", S, 1, 1000, NULL,
     "consecutive failed checks before /readyz says 503", NULL, NULL},

    {"zone", MESH_OPT_STR, F(zone), NULL, DP, 0, 0, NULL,
     "zone of this instance, written into its registration; proxies and gateways prefer "
     "instances of their zone",
     check_word, NULL},
    {"weight", MESH_OPT_INT, F(weight), "1", S, 1, 1000000, NULL,
     "relative weight of this instance, written into its registration", NULL, NULL},
    {"version", MESH_OPT_STR, F(version), NULL, S, 0, 0, NULL,
     "release label of this instance (e.g. for canaries), written into its registration",
     check_word, NULL},
    {"label", MESH_OPT_LIST, F(labels), NULL, S, 0, 0, NULL,
     "KEY=VALUE label of this instance, written into its registration (repeatable)", check_label,
     NULL},
};

#define N_CORE (sizeof(core_opts) / sizeof(core_opts[0]))

/* ---- the tables: the core and the registered sections ---------------------------------- */

static const mesh_config_section_t core_section = {
    .name = "core", .opts = core_opts, .n_opts = N_CORE, .size = sizeof(mesh_config_t)};

/*
 * Table 0 is the core, table t > 0 the section registered t-th. Registration happens at
 * start-up, before any config exists; afterwards these are only read.
 */
static const mesh_config_section_t *tables[1 + MESH_CONFIG_MAX_SECTIONS] = {&core_section};
static size_t n_tables = 1;
/* Options are numbered across tables (for load_state_t): table t's come from table_first[t] on. */
static size_t table_first[1 + MESH_CONFIG_MAX_SECTIONS];
static size_t n_all = N_CORE;

/* An option and the table it belongs to. */
typedef struct opt_ref {
    size_t t;
    const opt_t *o;
} opt_ref_t;

/* True when r is the core option stored in field (for the few options with special rules). */
#define CORE_IS(r, field) ((r).t == 0 && (r).o->off == F(field))

/* The tables cfg has values for: the core and the sections registered before its init. */
static size_t tables_of(const mesh_config_t *cfg)
{
    return 1 + cfg->n_sections;
}

/* Where table t's values live in cfg. */
static void *values_of(const mesh_config_t *cfg, size_t t)
{
    return t == 0 ? (void *)cfg : cfg->sections[t - 1];
}

/* The number of r among all options. */
static size_t opt_index(opt_ref_t r)
{
    return table_first[r.t] + (size_t)(r.o - tables[r.t]->opts);
}

/* Per-load state: which source set each option last (indexed by opt_index()). */
typedef struct load_state {
    unsigned char *src;
} load_state_t;

static void state_destroy(load_state_t *st)
{
    free(st->src);
    st->src = NULL;
}

static void errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Option names compare with "_" and "-" as the same character. */
static int name_eq(const char *a, const char *b, size_t blen)
{
    size_t i = 0;
    for (; i < blen && a[i]; i++) {
        char x = a[i] == '_' ? '-' : a[i];
        char y = b[i] == '_' ? '-' : b[i];
        if (x != y)
            return 0;
    }
    return i == blen && a[i] == '\0';
}

/* The option named name (len bytes) among the first nt tables; .o is NULL when none is. */
static opt_ref_t opt_find(size_t nt, const char *name, size_t len)
{
    for (size_t t = 0; t < nt; t++)
        for (size_t i = 0; i < tables[t]->n_opts; i++)
            if (name_eq(tables[t]->opts[i].name, name, len))
                return (opt_ref_t){t, &tables[t]->opts[i]};
    return (opt_ref_t){0, NULL};
}

/* The flag of an option: "breaker.failures" -> "breaker-failures". */
static void opt_flag(const opt_t *o, char *buf, size_t len)
{
    snprintf(buf, len, "%s", o->name);
    for (char *p = buf; *p; p++)
        if (*p == '.')
            *p = '-';
}

/* The environment variable of an option: "etcd-prefix" -> "MESHD_ETCD_PREFIX". */
static void opt_env(const opt_t *o, char *buf, size_t len)
{
    size_t n = (size_t)snprintf(buf, len, "MESHD_");
    for (const char *p = o->name; *p && n + 1 < len; p++)
        buf[n++] = (*p == '.' || *p == '-') ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
    buf[n] = '\0';
}

static opt_ref_t opt_by_flag(size_t nt, const char *flag, size_t len)
{
    char f[64];
    for (size_t t = 0; t < nt; t++) {
        for (size_t i = 0; i < tables[t]->n_opts; i++) {
            opt_flag(&tables[t]->opts[i], f, sizeof(f));
            if (name_eq(f, flag, len))
                return (opt_ref_t){t, &tables[t]->opts[i]};
        }
    }
    return (opt_ref_t){0, NULL};
}

/* Whether some option among the first nt tables is in section name (len bytes): "name.x". */
static int section_known(size_t nt, const char *name, size_t len)
{
    for (size_t t = 0; t < nt; t++)
        for (size_t i = 0; i < tables[t]->n_opts; i++) {
            const char *o = tables[t]->opts[i].name;
            if (strlen(o) > len && o[len] == '.' && strncmp(o, name, len) == 0)
                return 1;
        }
    return 0;
}

/* ---- value checks of single options ---------------------------------------------------- */

/* A zone or version: 1..128 bytes, no spaces or control characters. */
static int check_word(const void *field, int replaced, const char *v, char *err, size_t errlen)
{
    (void)field;
    (void)replaced;
    size_t n = strlen(v);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] <= ' ' || v[i] == 0x7f)
            n = 0;
    if (n == 0 || n > 128) {
        errf(err, errlen, "'%s' must be 1 to 128 characters without spaces", v);
        return -1;
    }
    return 0;
}

static int is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* A label name or value as Kubernetes has them: at most 63 of [A-Za-z0-9._-], alphanumeric at
   both ends (a value may be empty). */
static int label_part_ok(const char *s, size_t n, int may_be_empty)
{
    if (n == 0)
        return may_be_empty;
    if (n > 63 || !is_alnum(s[0]) || !is_alnum(s[n - 1]))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
            return 0;
    return 1;
}

/* A label's key prefix: a DNS subdomain (lower case, digits, '-' and '.'), at most 253. */
static int label_prefix_ok(const char *s, size_t n)
{
    if (n == 0 || n > 253)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int edge = i == 0 || i == n - 1 || s[i - 1] == '.' || s[i + 1] == '.';
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (!edge && c == '-') ||
              (c == '.' && !edge)))
            return 0;
    }
    return 1;
}

/* KEY=VALUE with KEY [PREFIX/]NAME; a key given twice in one source is an error. */
static int check_label(const void *field, int replaced, const char *v, char *err, size_t errlen)
{
    const char *eq = strchr(v, '=');
    if (!eq) {
        errf(err, errlen, "'%s' is not KEY=VALUE", v);
        return -1;
    }
    size_t kl = (size_t)(eq - v);
    const char *slash = memchr(v, '/', kl);
    const char *name = slash ? slash + 1 : v;
    size_t nl = kl - (size_t)(name - v);
    if ((slash && !label_prefix_ok(v, (size_t)(slash - v))) || !label_part_ok(name, nl, 0)) {
        errf(err, errlen,
             "'%.*s' is not a label key: [PREFIX/]NAME, NAME at most 63 of letters, digits, "
             "'.', '_', '-', beginning and ending with a letter or digit",
             (int)kl, v);
        return -1;
    }
    if (!label_part_ok(eq + 1, strlen(eq + 1), 1)) {
        errf(err, errlen,
             "'%s' is not a label value: at most 63 of letters, digits, '.', '_', '-', "
             "beginning and ending with a letter or digit",
             eq + 1);
        return -1;
    }
    const mesh_config_list_t *l = field;
    for (size_t i = 0; !replaced && i < l->n; i++)
        if (strncmp(l->items[i], v, kl + 1) == 0) {
            errf(err, errlen, "label '%.*s' is given twice", (int)kl, v);
            return -1;
        }
    return 0;
}

static int parse_int(const char *v, int64_t *out)
{
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end)
        return -1;
    *out = x;
    return 0;
}

/* "500ms", "5s", "2m", "1h", "0": milliseconds. */
static int parse_duration(const char *v, int64_t *ms)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || x < 0)
        return -1;
    double mult;
    if (strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "s") == 0)
        mult = 1000;
    else if (strcmp(end, "m") == 0)
        mult = 60000;
    else if (strcmp(end, "h") == 0)
        mult = 3600000;
    else if (*end == '\0' && x == 0)
        mult = 0;
    else
        return -1;
    *ms = (int64_t)(x * mult + 0.5);
    return 0;
}

/* "4096", "64KiB"/"64k", "4MiB"/"4m", "1GiB": bytes. */
static int parse_size(const char *v, int64_t *bytes)
{
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || x < 0)
        return -1;
    int64_t mult;
    if (*end == '\0' || strcasecmp(end, "b") == 0)
        mult = 1;
    else if (strcasecmp(end, "k") == 0 || strcasecmp(end, "kb") == 0 || strcmp(end, "KiB") == 0)
        mult = 1024;
    else if (strcasecmp(end, "m") == 0 || strcasecmp(end, "mb") == 0 || strcmp(end, "MiB") == 0)
        mult = 1024 * 1024;
    else if (strcasecmp(end, "g") == 0 || strcasecmp(end, "gb") == 0 || strcmp(end, "GiB") == 0)
        mult = 1024LL * 1024 * 1024;
    else
        return -1;
    *bytes = x * mult;
    return 0;
}

static void list_clear(mesh_config_list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i]);
    l->n = 0;
}

void mesh_config_list_clear(mesh_config_list_t *l)
{
    list_clear(l);
}

static int list_push(mesh_config_list_t *l, const char *v, char *err, size_t errlen)
{
    if (l->n == MESH_CONFIG_MAX_LIST) {
        errf(err, errlen, "more than %d values", MESH_CONFIG_MAX_LIST);
        return -1;
    }
    l->items[l->n++] = strdup(v);
    return 0;
}

/*
 * Sets option r, whose table's values are at values, from a string value v coming from source
 * src. A list option is cleared the first time a source above the one that filled it sets it.
 * On error writes the problem (without origin) into err.
 */
static int opt_set_at(void *values, load_state_t *st, opt_ref_t r, const char *v, int src,
                      char *err, size_t errlen)
{
    const opt_t *o = r.o;
    void *field = (char *)values + o->off;
    size_t idx = opt_index(r);
    int first = st->src[idx] < src;
    st->src[idx] = (unsigned char)src;
    if (o->check && o->check(field, first, v, err, errlen) != 0)
        return -1;
    int64_t x = 0;
    switch (o->type) {
    case MESH_OPT_STR:
    case MESH_OPT_ADDR:
    case MESH_OPT_ENUM: {
        if (o->type == MESH_OPT_ADDR && *v) {
            char host[256];
            int port;
            if (mesh_addr_split(v, host, sizeof(host), &port) != 0) {
                errf(err, errlen, "'%s' is not HOST:PORT", v);
                return -1;
            }
        }
        if (o->type == MESH_OPT_ENUM) {
            size_t vl = strlen(v);
            const char *c = o->choices;
            int ok = 0;
            while (*c) {
                const char *bar = strchr(c, '|');
                size_t cl = bar ? (size_t)(bar - c) : strlen(c);
                if (cl == vl && strncmp(c, v, vl) == 0)
                    ok = 1;
                c += cl + (bar ? 1 : 0);
            }
            if (!ok) {
                errf(err, errlen, "'%s' is not one of %s", v, o->choices);
                return -1;
            }
        }
        char **s = field;
        free(*s);
        *s = strdup(v);
        return 0;
    }
    case MESH_OPT_INT:
        if (parse_int(v, &x) != 0) {
            errf(err, errlen, "'%s' is not an integer", v);
            return -1;
        }
        break;
    case MESH_OPT_DUR:
        if (parse_duration(v, &x) != 0) {
            errf(err, errlen, "'%s' is not a duration (like 500ms, 5s, 2m)", v);
            return -1;
        }
        break;
    case MESH_OPT_SIZE:
        if (parse_size(v, &x) != 0) {
            errf(err, errlen, "'%s' is not a size (like 4096, 64KiB, 4MiB)", v);
            return -1;
        }
        break;
    case MESH_OPT_RATIO: {
        char *end;
        double d = strtod(v, &end);
        if (end == v || *end || d < 0 || d > 1) {
            errf(err, errlen, "'%s' is not a ratio between 0 and 1", v);
            return -1;
        }
        *(double *)field = d;
        return 0;
    }
    case MESH_OPT_BOOL: {
        static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no",
                                                                                    "off", "0"};
        for (size_t k = 0; k < 4; k++)
            if (!strcasecmp(v, yes[k]) || !strcasecmp(v, no[k])) {
                *(int *)field = !strcasecmp(v, yes[k]);
                return 0;
            }
        errf(err, errlen, "'%s' is not true or false", v);
        return -1;
    }
    case MESH_OPT_LEVEL: {
        mesh_log_level_t l;
        if (mesh_log_level_parse(v, &l) != 0) {
            errf(err, errlen, "'%s' is not a log level (debug, info, warn, error, off)", v);
            return -1;
        }
        *(mesh_log_level_t *)field = l;
        return 0;
    }
    case MESH_OPT_LIST: {
        mesh_config_list_t *l = field;
        if (first)
            list_clear(l);
        if (!*v) {
            errf(err, errlen, "empty value");
            return -1;
        }
        return list_push(l, v, err, errlen);
    }
    }
    if (x < o->min || x > o->max) {
        errf(err, errlen, "%s is out of range [%lld, %lld]", v, (long long)o->min,
             (long long)o->max);
        return -1;
    }
    if (CORE_IS(r, workers)) /* the one int among the core's integers */
        *(int *)field = (int)x;
    else
        *(int64_t *)field = x;
    return 0;
}

static int opt_set(mesh_config_t *cfg, load_state_t *st, opt_ref_t r, const char *v, int src,
                   char *err, size_t errlen)
{
    return opt_set_at(values_of(cfg, r.t), st, r, v, src, err, errlen);
}

/* ---- sections, init, destroy ----------------------------------------------------------- */

static void *xcalloc(size_t size)
{
    void *p = calloc(1, size);
    if (!p) {
        fprintf(stderr, "meshd: config: out of memory\n");
        abort();
    }
    return p;
}

/* The size and alignment of a value of type type; 0 for a type that does not exist. */
static size_t type_size(mesh_config_opt_type_t type, size_t *align)
{
    switch (type) {
    case MESH_OPT_STR:
    case MESH_OPT_ADDR:
    case MESH_OPT_ENUM:
        *align = _Alignof(char *);
        return sizeof(char *);
    case MESH_OPT_INT:
    case MESH_OPT_DUR:
    case MESH_OPT_SIZE:
        *align = _Alignof(int64_t);
        return sizeof(int64_t);
    case MESH_OPT_RATIO:
        *align = _Alignof(double);
        return sizeof(double);
    case MESH_OPT_LIST:
        *align = _Alignof(mesh_config_list_t);
        return sizeof(mesh_config_list_t);
    case MESH_OPT_LEVEL:
        *align = _Alignof(mesh_log_level_t);
        return sizeof(mesh_log_level_t);
    case MESH_OPT_BOOL:
        *align = _Alignof(int);
        return sizeof(int);
    }
    return 0;
}

/* Frees the strings and lists among the values of section s at values. */
static void values_free(const mesh_config_section_t *s, void *values)
{
    for (size_t i = 0; i < s->n_opts; i++) {
        const opt_t *o = &s->opts[i];
        void *field = (char *)values + o->off;
        if (o->type == MESH_OPT_STR || o->type == MESH_OPT_ADDR || o->type == MESH_OPT_ENUM) {
            free(*(char **)field);
            *(char **)field = NULL;
        } else if (o->type == MESH_OPT_LIST) {
            list_clear(field);
        }
    }
}

/* The longest option name: its flag and environment name fit opt_flag's and opt_env's buffers. */
#define OPT_NAME_MAX 48

/* 1..OPT_NAME_MAX of a-z, 0-9, '-' and '.', a letter or digit first, last and around each dot. */
static int name_ok(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > OPT_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = n[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (alnum)
            continue;
        if ((c != '-' && c != '.') || i == 0 || i == len - 1)
            return 0;
        if (c == '.' && (n[i - 1] == '-' || n[i - 1] == '.' || n[i + 1] == '-' || n[i + 1] == '.'))
            return 0;
    }
    return 1;
}

/* Whether option name a is the section b lives in ("breaker" and "breaker.failures"). */
static int is_section_of(const char *a, const char *b)
{
    size_t n = strlen(a);
    return strncmp(a, b, n) == 0 && b[n] == '.';
}

/* Whether option o (of a section being added) clashes with option e of section es (-1, with
 * why written) or not (0). */
static int name_clash(const opt_t *o, const opt_t *e, const char *es, char *why, size_t whylen)
{
    char a[96], b[96];
    opt_env(o, a, sizeof(a));
    opt_env(e, b, sizeof(b));
    if (strcmp(a, b) == 0) {
        if (strcmp(o->name, e->name) == 0)
            errf(why, whylen, "option '%s' is already declared by section '%s'", o->name, es);
        else
            errf(why, whylen,
                 "option '%s' would have the flag and environment variable of option '%s' of "
                 "section '%s'",
                 o->name, e->name, es);
        return -1;
    }
    if (is_section_of(o->name, e->name)) {
        errf(why, whylen, "option '%s' is also the YAML section of option '%s' of section '%s'",
             o->name, e->name, es);
        return -1;
    }
    if (is_section_of(e->name, o->name)) {
        errf(why, whylen, "option '%s' would be under '%s', an option of section '%s'", o->name,
             e->name, es);
        return -1;
    }
    return 0;
}

/* Checks section s's declaration; on error writes why. */
static int section_check(const mesh_config_section_t *s, char *why, size_t whylen)
{
    if (!s->name || !*s->name || (s->n_opts && !s->opts) || s->size == 0) {
        errf(why, whylen, "a section needs a name, its options and the size of their struct");
        return -1;
    }
    for (size_t t = 0; t < n_tables; t++)
        if (tables[t] == s || strcmp(tables[t]->name, s->name) == 0) {
            errf(why, whylen, "a section named '%s' is already registered", s->name);
            return -1;
        }
    for (size_t i = 0; i < s->n_opts; i++) {
        const opt_t *o = &s->opts[i];
        size_t align = 1, size = type_size(o->type, &align);
        if (!o->name || !name_ok(o->name)) {
            errf(why, whylen,
                 "option '%s': a name is 1 to %d of a-z, 0-9, '-' and '.', beginning and ending "
                 "with a letter or digit",
                 o->name ? o->name : "(null)", OPT_NAME_MAX);
            return -1;
        }
        if (size == 0) {
            errf(why, whylen, "option '%s': unknown type %d", o->name, (int)o->type);
            return -1;
        }
        if (o->off % align != 0 || o->off > s->size || s->size - o->off < size) {
            errf(why, whylen,
                 "option '%s': its value at offset %zu is outside the struct (%zu bytes)", o->name,
                 o->off, s->size);
            return -1;
        }
        int ranged = o->type == MESH_OPT_INT || o->type == MESH_OPT_DUR || o->type == MESH_OPT_SIZE;
        const char *missing = NULL;
        if (ranged && o->min >= o->max)
            missing = "a range with min < max";
        else if (o->type == MESH_OPT_ENUM && (!o->choices || !*o->choices))
            missing = "its choices";
        else if (!o->help)
            missing = "a help line";
        else if (o->roles & ~(unsigned)MESH_ROLE_ALL)
            missing = "roles made of MESH_ROLE_* bits";
        if (missing) {
            errf(why, whylen, "option '%s' needs %s", o->name, missing);
            return -1;
        }
        for (size_t t = 0; t < n_tables; t++)
            for (size_t j = 0; j < tables[t]->n_opts; j++)
                if (name_clash(o, &tables[t]->opts[j], tables[t]->name, why, whylen) != 0)
                    return -1;
        for (size_t j = 0; j < i; j++)
            if (name_clash(o, &s->opts[j], s->name, why, whylen) != 0)
                return -1;
    }
    /* Every default must be a valid value: set them on scratch values as table n_tables. */
    tables[n_tables] = s;
    table_first[n_tables] = n_all;
    void *scratch = xcalloc(s->size);
    load_state_t st = {xcalloc(n_all + s->n_opts)};
    int rc = 0;
    for (size_t i = 0; i < s->n_opts && rc == 0; i++) {
        const opt_t *o = &s->opts[i];
        char err[256];
        if (o->def && opt_set_at(scratch, &st, (opt_ref_t){n_tables, o}, o->def, SRC_DEFAULT, err,
                                 sizeof(err)) != 0) {
            errf(why, whylen, "option '%s': default %s", o->name, err);
            rc = -1;
        }
    }
    values_free(s, scratch);
    free(scratch);
    state_destroy(&st);
    tables[n_tables] = NULL;
    return rc;
}

/* Top-level YAML keys read by a loader of their own (mesh_config_add_block). */
static const char *blocks[8];
static size_t n_blocks;

int mesh_config_add_block(const char *key)
{
    for (size_t i = 0; i < n_blocks; i++)
        if (strcmp(blocks[i], key) == 0)
            return 0;
    if (n_blocks == sizeof(blocks) / sizeof(blocks[0])) {
        mesh_error("config", "cannot register YAML block '%s': all places are taken", key);
        return -1;
    }
    blocks[n_blocks++] = key;
    return 0;
}

static int is_block(const char *key)
{
    for (size_t i = 0; i < n_blocks; i++)
        if (strcmp(blocks[i], key) == 0)
            return 1;
    return 0;
}

int mesh_config_add_section(const mesh_config_section_t *section)
{
    char why[512];
    const char *name = section->name ? section->name : "(null)";
    if (n_tables == 1 + MESH_CONFIG_MAX_SECTIONS) {
        mesh_error("config",
                   "cannot register option section '%s': all %d places are taken (raise "
                   "MESH_CONFIG_MAX_SECTIONS in common/config.h)",
                   name, MESH_CONFIG_MAX_SECTIONS);
        return -1;
    }
    if (section_check(section, why, sizeof(why)) != 0) {
        mesh_error("config", "cannot register option section '%s': %s", name, why);
        return -1;
    }
    tables[n_tables] = section;
    table_first[n_tables] = n_all;
    n_all += section->n_opts;
    n_tables++;
    return 0;
}

const void *mesh_config_section(const mesh_config_t *cfg, const mesh_config_section_t *section)
{
    for (size_t t = 1; t < tables_of(cfg); t++)
        if (tables[t] == section)
            return cfg->sections[t - 1];
    /* A bug in the program, not in the configuration: say so where it cannot be missed. */
    fprintf(stderr,
            "meshd: config: option section '%s' was not registered before this config was "
            "initialized (mesh_config_add_section)\n",
            section->name);
    abort();
}

void mesh_config_init(mesh_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->n_sections = n_tables - 1;
    for (size_t t = 1; t < n_tables; t++)
        cfg->sections[t - 1] = xcalloc(tables[t]->size);
    load_state_t st = {xcalloc(n_all)};
    char err[256];
    for (size_t t = 0; t < n_tables; t++)
        for (size_t i = 0; i < tables[t]->n_opts; i++) {
            opt_ref_t r = {t, &tables[t]->opts[i]};
            if (r.o->def && opt_set(cfg, &st, r, r.o->def, SRC_DEFAULT, err, sizeof(err)) != 0)
                abort(); /* a default that does not parse is a bug in the core table (sections'
                            defaults are checked when they are registered) */
        }
    state_destroy(&st);
    char host[256];
    if (gethostname(host, sizeof(host)) != 0)
        snprintf(host, sizeof(host), "meshd");
    host[sizeof(host) - 1] = '\0';
    cfg->node = strdup(host);
}

void mesh_config_destroy(mesh_config_t *cfg)
{
    if (cfg->etcd_password) { /* read from --etcd-password-file, not an option */
        memset(cfg->etcd_password, 0, strlen(cfg->etcd_password));
        free(cfg->etcd_password);
        cfg->etcd_password = NULL;
    }
    for (size_t t = 0; t < tables_of(cfg); t++) {
        values_free(tables[t], values_of(cfg, t));
        if (t > 0) {
            free(cfg->sections[t - 1]);
            cfg->sections[t - 1] = NULL;
        }
    }
    cfg->n_sections = 0;
}

/* ---- YAML --------------------------------------------------------------------------- */

typedef struct yaml_ctx {
    yaml_parser_t parser;
    const char *path;
    mesh_config_t *cfg;
    load_state_t *st;
    char *err;
    size_t errlen;
} yaml_ctx_t;

static int yaml_next(yaml_ctx_t *y, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&y->parser, ev)) {
        const yaml_parser_t *p = &y->parser;
        if (p->context) /* where the broken construct starts, which is where to look */
            errf(y->err, y->errlen, "%s:%zu: YAML: %s: %s (line %zu)", y->path,
                 p->context_mark.line + 1, p->context, p->problem ? p->problem : "syntax error",
                 p->problem_mark.line + 1);
        else
            errf(y->err, y->errlen, "%s:%zu: YAML: %s", y->path, p->problem_mark.line + 1,
                 p->problem ? p->problem : "syntax error");
        return -1;
    }
    return 0;
}

static int yaml_fail(yaml_ctx_t *y, size_t line, const char *name, const char *what)
{
    errf(y->err, y->errlen, "%s:%zu: %s: %s", y->path, line + 1, name, what);
    return -1;
}

/* Skips the rest of a value whose first event is v (a block another loader reads). */
static int yaml_skip(yaml_ctx_t *y, const yaml_event_t *v)
{
    int depth = v->type == YAML_MAPPING_START_EVENT || v->type == YAML_SEQUENCE_START_EVENT;
    while (depth > 0) {
        yaml_event_t e;
        if (yaml_next(y, &e) != 0)
            return -1;
        if (e.type == YAML_MAPPING_START_EVENT || e.type == YAML_SEQUENCE_START_EVENT)
            depth++;
        else if (e.type == YAML_MAPPING_END_EVENT || e.type == YAML_SEQUENCE_END_EVENT)
            depth--;
        yaml_event_delete(&e);
    }
    return 0;
}

static int yaml_set(yaml_ctx_t *y, opt_ref_t r, const char *v, size_t line)
{
    char why[256];
    if (opt_set(y->cfg, y->st, r, v, SRC_FILE, why, sizeof(why)) != 0)
        return yaml_fail(y, line, r.o->name, why);
    return 0;
}

/* Reads the items of a sequence into list option o (after its SEQUENCE_START). */
static int yaml_sequence(yaml_ctx_t *y, opt_ref_t r, const char *name)
{
    for (;;) {
        yaml_event_t e;
        if (yaml_next(y, &e) != 0)
            return -1;
        if (e.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&e);
            return 0;
        }
        size_t line = e.start_mark.line;
        if (e.type != YAML_SCALAR_EVENT) {
            yaml_event_delete(&e);
            return yaml_fail(y, line, name, "expected a list of plain values");
        }
        int rc = yaml_set(y, r, (const char *)e.data.scalar.value, line);
        yaml_event_delete(&e);
        if (rc != 0)
            return -1;
    }
}

/*
 * Reads the next key of a mapping: returns 1 at the mapping's end, 0 with the key copied into
 * key and its line in *line, or -1 on error (a key that is not a plain scalar is one).
 */
static int yaml_key(yaml_ctx_t *y, const char *owner, const char *what, char *key, size_t keylen,
                    size_t *line)
{
    yaml_event_t k;
    if (yaml_next(y, &k) != 0)
        return -1;
    if (k.type == YAML_MAPPING_END_EVENT) {
        yaml_event_delete(&k);
        return 1;
    }
    *line = k.start_mark.line;
    if (k.type != YAML_SCALAR_EVENT) {
        yaml_event_delete(&k);
        return yaml_fail(y, *line, owner, what);
    }
    snprintf(key, keylen, "%s", (char *)k.data.scalar.value);
    yaml_event_delete(&k);
    return 0;
}

/*
 * A mapping under a list option: each "key: value" or "key: [v1, v2]" becomes one item
 * "key=value" or "key=v1,v2" (static: {pkg.Svc: [a:1, b:2]} is --static pkg.Svc=a:1,b:2).
 */
static int yaml_keyed_list(yaml_ctx_t *y, opt_ref_t r)
{
    const opt_t *o = r.o;
    for (;;) {
        char key[512];
        size_t line;
        int rc = yaml_key(y, o->name, "expected KEY: VALUE entries", key, sizeof(key), &line);
        if (rc != 0)
            return rc < 0 ? -1 : 0;
        char item[1024];
        size_t n = (size_t)snprintf(item, sizeof(item), "%s=", key);
        yaml_event_t v;
        if (yaml_next(y, &v) != 0)
            return -1;
        int ok = 1;
        if (v.type == YAML_SCALAR_EVENT) {
            n += (size_t)snprintf(item + n, sizeof(item) - n, "%s", (char *)v.data.scalar.value);
        } else if (v.type == YAML_SEQUENCE_START_EVENT) {
            for (int first = 1;; first = 0) {
                yaml_event_t e;
                if (yaml_next(y, &e) != 0) {
                    yaml_event_delete(&v);
                    return -1;
                }
                if (e.type == YAML_SEQUENCE_END_EVENT) {
                    yaml_event_delete(&e);
                    break;
                }
                if (e.type != YAML_SCALAR_EVENT)
                    ok = 0;
                else if (n < sizeof(item))
                    n += (size_t)snprintf(item + n, sizeof(item) - n, "%s%s", first ? "" : ",",
                                          (char *)e.data.scalar.value);
                yaml_event_delete(&e);
            }
        } else {
            ok = 0;
        }
        yaml_event_delete(&v);
        if (!ok)
            return yaml_fail(y, line, o->name, "expected KEY: VALUE or KEY: [VALUES]");
        if (n >= sizeof(item))
            return yaml_fail(y, line, o->name, "entry too long");
        if (yaml_set(y, r, item, line) != 0)
            return -1;
    }
}

/* Reads a mapping's entries (after its MAPPING_START); prefix is the section ("" at top). */
static int yaml_mapping(yaml_ctx_t *y, const char *prefix)
{
    for (;;) {
        char key[128];
        size_t line;
        int krc = yaml_key(y, prefix[0] ? prefix : "(top)", "keys must be plain words", key,
                           sizeof(key), &line);
        if (krc != 0)
            return krc < 0 ? -1 : 0;
        char name[256];
        snprintf(name, sizeof(name), "%s%s%s", prefix, prefix[0] ? "." : "", key);
        for (char *c = name; *c; c++)
            if (*c == '_')
                *c = '-';

        yaml_event_t v;
        if (yaml_next(y, &v) != 0)
            return -1;
        size_t nt = tables_of(y->cfg);
        opt_ref_t r = opt_find(nt, name, strlen(name));
        const opt_t *o = r.o;
        int rc = 0;
        if (!prefix[0] && is_block(key)) {
            rc = yaml_skip(y, &v); /* read by its own loader */
        } else if (!o && v.type == YAML_MAPPING_START_EVENT) {
            /* a section: known if some option starts with "name." */
            rc = section_known(nt, name, strlen(name))
                     ? yaml_mapping(y, name)
                     : yaml_fail(y, line, name, "unknown section");
        } else if (!o || CORE_IS(r, config_file)) {
            rc = yaml_fail(y, line, name, "unknown option");
        } else if (v.type == YAML_SCALAR_EVENT) {
            rc = yaml_set(y, r, (const char *)v.data.scalar.value, line);
        } else if (v.type == YAML_SEQUENCE_START_EVENT && o->type == MESH_OPT_LIST) {
            rc = yaml_sequence(y, r, name);
        } else if (v.type == YAML_MAPPING_START_EVENT && o->type == MESH_OPT_LIST) {
            rc = yaml_keyed_list(y, r);
        } else {
            rc = yaml_fail(y, line, name,
                           o->type == MESH_OPT_LIST ? "expected a value or a list"
                                                    : "expected a single value");
        }
        yaml_event_delete(&v);
        if (rc != 0)
            return -1;
    }
}

static int load_file(mesh_config_t *cfg, load_state_t *st, const char *path, char *err,
                     size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        errf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    yaml_ctx_t y = {.path = path, .cfg = cfg, .st = st, .err = err, .errlen = errlen};
    yaml_parser_initialize(&y.parser);
    yaml_parser_set_input_file(&y.parser, f);
    int rc = 0;
    int done = 0;
    while (!done && rc == 0) {
        yaml_event_t ev;
        if (yaml_next(&y, &ev) != 0) {
            rc = -1;
            break;
        }
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        case YAML_MAPPING_START_EVENT:
            rc = yaml_mapping(&y, "");
            break;
        case YAML_SCALAR_EVENT:
            if (ev.data.scalar.length != 0) /* an empty document is an empty config */
                rc = yaml_fail(&y, ev.start_mark.line, "(top)",
                               "expected a mapping of option: value");
            break;
        case YAML_SEQUENCE_START_EVENT:
            rc = yaml_fail(&y, ev.start_mark.line, "(top)", "expected a mapping of option: value");
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&y.parser);
    fclose(f);
    return rc;
}

int mesh_config_load_file(mesh_config_t *cfg, const char *path, char *err, size_t errlen)
{
    load_state_t st = {xcalloc(n_all)};
    int rc = load_file(cfg, &st, path, err, errlen);
    state_destroy(&st);
    return rc;
}

/* ---- environment and flags ------------------------------------------------------------ */

/* Sets list option o from v split at sep (every item is checked like a single value). */
static int opt_set_split(mesh_config_t *cfg, load_state_t *st, opt_ref_t r, const char *v,
                         const char *sep, int src, char *why, size_t whylen)
{
    char *copy = strdup(v), *save = NULL;
    int rc = 0;
    for (char *it = strtok_r(copy, sep, &save); it && rc == 0; it = strtok_r(NULL, sep, &save))
        rc = opt_set(cfg, st, r, it, src, why, whylen);
    free(copy);
    return rc;
}

static int load_env(mesh_config_t *cfg, load_state_t *st, char **envp, char *err, size_t errlen)
{
    if (!envp)
        return 0;
    for (char **e = envp; *e; e++) {
        if (strncmp(*e, "MESHD_", 6) != 0)
            continue;
        const char *eq = strchr(*e, '=');
        if (!eq)
            continue;
        size_t nl = (size_t)(eq - *e);
        opt_ref_t r = {0, NULL};
        char env[96];
        for (size_t t = 0; t < tables_of(cfg) && !r.o; t++)
            for (size_t i = 0; i < tables[t]->n_opts && !r.o; i++) {
                opt_env(&tables[t]->opts[i], env, sizeof(env));
                if (strlen(env) == nl && strncmp(env, *e, nl) == 0)
                    r = (opt_ref_t){t, &tables[t]->opts[i]};
            }
        if (!r.o) {
            /* The environment is shared by the whole process tree: an unrelated MESHD_ name
             * is reported, not fatal. */
            mesh_warn("config", "ignoring unknown environment variable %.*s", (int)nl, *e);
            continue;
        }
        if (CORE_IS(r, config_file))
            continue; /* read before the file */
        char why[256];
        const char *v = eq + 1;
        /* list items are separated by ";" (a static route itself contains commas), etcd
         * endpoints by "," as on the command line */
        const char *sep = r.o->sep ? r.o->sep : ";";
        int rc = r.o->type == MESH_OPT_LIST
                     ? opt_set_split(cfg, st, r, v, sep, SRC_ENV, why, sizeof(why))
                     : opt_set(cfg, st, r, v, SRC_ENV, why, sizeof(why));
        if (rc != 0) {
            errf(err, errlen, "%.*s: %s", (int)nl, *e, why);
            return -1;
        }
    }
    return 0;
}

/* Finds --config in argv or MESHD_CONFIG in envp. */
static const char *find_config(int argc, char **argv, char **envp)
{
    const char *path = NULL;
    for (char **e = envp; e && *e; e++)
        if (strncmp(*e, "MESHD_CONFIG=", 13) == 0)
            path = *e + 13;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            path = argv[i + 1];
        else if (strncmp(argv[i], "--config=", 9) == 0)
            path = argv[i] + 9;
        else if (strcmp(argv[i], "--") == 0)
            break;
    }
    return path;
}

/* The sources in order: the file, the environment, the flags. */
static int load_all(mesh_config_t *cfg, load_state_t *st, int argc, char **argv, char **envp,
                    unsigned roles, mesh_config_list_t *positional, char *err, size_t errlen)
{
    const char *path = find_config(argc, argv, envp);
    if (path) {
        free(cfg->config_file);
        cfg->config_file = strdup(path);
        if (load_file(cfg, st, path, err, errlen) != 0)
            return -1;
    }
    if (load_env(cfg, st, envp, err, errlen) != 0)
        return -1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            if (strcmp(a, "--") == 0) {
                for (i++; i < argc && positional; i++)
                    if (list_push(positional, argv[i], err, errlen) != 0)
                        return -1;
                break;
            }
            if (!positional) {
                errf(err, errlen, "%s: unexpected argument", a);
                return -1;
            }
            if (list_push(positional, a, err, errlen) != 0)
                return -1;
            continue;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t nl = eq ? (size_t)(eq - name) : strlen(name);
        opt_ref_t r = opt_by_flag(tables_of(cfg), name, nl);
        if (!r.o || !(r.o->roles & roles)) {
            errf(err, errlen, "--%.*s: unknown option", (int)nl, name);
            return -1;
        }
        const char *v;
        if (eq) {
            v = eq + 1;
        } else if (r.o->type == MESH_OPT_BOOL) {
            v = "true"; /* a switch: --gossip-insecure */
        } else if (i + 1 < argc) {
            v = argv[++i];
        } else {
            errf(err, errlen, "--%.*s: needs a value", (int)nl, name);
            return -1;
        }
        if (CORE_IS(r, config_file))
            continue;
        char why[256];
        /* endpoint lists are comma-separated */
        int rc = r.o->type == MESH_OPT_LIST && r.o->sep
                     ? opt_set_split(cfg, st, r, v, r.o->sep, SRC_FLAG, why, sizeof(why))
                     : opt_set(cfg, st, r, v, SRC_FLAG, why, sizeof(why));
        if (rc != 0) {
            errf(err, errlen, "--%.*s: %s", (int)nl, name, why);
            return -1;
        }
    }
    return 0;
}

int mesh_config_load(mesh_config_t *cfg, int argc, char **argv, char **envp, unsigned roles,
                     mesh_config_list_t *positional, char *err, size_t errlen)
{
    load_state_t st = {xcalloc(n_all)};
    int rc = load_all(cfg, &st, argc, argv, envp, roles, positional, err, errlen);
    state_destroy(&st);
    return rc;
}

/* ---- validation, usage, dump ---------------------------------------------------------- */

/* Checks one "SERVICE=HOST:PORT[,HOST:PORT...]" static route. */
static int check_static(const char *r, char *err, size_t errlen)
{
    const char *eq = strchr(r, '=');
    if (!eq || eq == r || !eq[1]) {
        errf(err, errlen, "static: '%s' is not SERVICE=HOST:PORT[,HOST:PORT...]", r);
        return -1;
    }
    char *copy = strdup(eq + 1), *save = NULL;
    int rc = 0;
    for (char *a = strtok_r(copy, ",", &save); a; a = strtok_r(NULL, ",", &save)) {
        char host[256];
        int port;
        if (mesh_addr_split(a, host, sizeof(host), &port) != 0 || port == 0) {
            errf(err, errlen, "static: '%s' in '%s' is not HOST:PORT", a, r);
            rc = -1;
            break;
        }
    }
    free(copy);
    return rc;
}

int mesh_config_validate(const mesh_config_t *cfg, unsigned role, char *err, size_t errlen)
{
    for (size_t i = 0; i < cfg->static_routes.n; i++)
        if (check_static(cfg->static_routes.items[i], err, errlen) != 0)
            return -1;
    for (size_t i = 0; i < cfg->etcd.n; i++) {
        const char *u = cfg->etcd.items[i];
        if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0) {
            errf(err, errlen, "etcd: '%s' is not an http:// or https:// URL", u);
            return -1;
        }
    }
    if (cfg->etcd_user && !cfg->etcd_password_file) {
        errf(err, errlen, "etcd-user: give the password in --etcd-password-file FILE");
        return -1;
    }
    if (cfg->etcd_password_file && !cfg->etcd_user) {
        errf(err, errlen, "etcd-password-file: whose password? give --etcd-user too");
        return -1;
    }
    if (!cfg->etcd_cert != !cfg->etcd_key) {
        errf(err, errlen, "%s: a client certificate needs both --etcd-cert and --etcd-key",
             cfg->etcd_cert ? "etcd-cert" : "etcd-key");
        return -1;
    }
    if ((role & MESH_ROLE_SIDECAR) && !cfg->app) {
        errf(err, errlen, "app: the sidecar needs --app HOST:PORT");
        return -1;
    }
    if (cfg->keepalive_interval_ms && cfg->keepalive_timeout_ms > cfg->keepalive_interval_ms * 10)
        mesh_warn("config", "keepalive-timeout is much longer than keepalive-interval");
    for (size_t t = 1; t < tables_of(cfg); t++)
        if (tables[t]->validate &&
            tables[t]->validate(cfg->sections[t - 1], role, err, errlen) != 0)
            return -1;
    return 0;
}

static const char *type_hint(opt_ref_t r)
{
    const opt_t *o = r.o;
    switch (o->type) {
    case MESH_OPT_ADDR:
        return "HOST:PORT";
    case MESH_OPT_INT:
        return "N";
    case MESH_OPT_DUR:
        return "DURATION";
    case MESH_OPT_SIZE:
        return "SIZE";
    case MESH_OPT_RATIO:
        return "RATIO";
    case MESH_OPT_LEVEL:
        return "LEVEL";
    case MESH_OPT_LIST:
        return CORE_IS(r, labels) ? "KEY=VALUE" : "VALUE";
    case MESH_OPT_BOOL:
        return "";
    default:
        return CORE_IS(r, config_file) || CORE_IS(r, descriptor_set) ? "FILE" : "VALUE";
    }
}

void mesh_config_usage(FILE *out, unsigned roles)
{
    for (size_t t = 0; t < n_tables; t++)
        for (size_t i = 0; i < tables[t]->n_opts; i++) {
            opt_ref_t r = {t, &tables[t]->opts[i]};
            const opt_t *o = r.o;
            if (!(o->roles & roles))
                continue;
            char flag[64], env[96], left[128];
            opt_flag(o, flag, sizeof(flag));
            opt_env(o, env, sizeof(env));
            snprintf(left, sizeof(left), "--%s %s", flag, type_hint(r));
            fprintf(out, "  %-34s %s", left, o->help);
            if (o->def && *o->def)
                fprintf(out, " [%s]", o->def);
            fprintf(out, "\n  %-34s env %s\n", "", env);
        }
}

/* Writes a YAML scalar, quoted when it could be misread. */
static void dump_scalar(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

/* Writes option r's value in cfg as "indent name: value". */
static void dump_opt(FILE *out, const mesh_config_t *cfg, opt_ref_t r, const char *indent,
                     const char *name)
{
    const opt_t *o = r.o;
    const void *field = (const char *)values_of(cfg, r.t) + o->off;
    int is_str = o->type == MESH_OPT_STR || o->type == MESH_OPT_ADDR || o->type == MESH_OPT_ENUM;
    if (is_str && !*(char *const *)field) {
        fprintf(out, "%s# %s: (unset)\n", indent, name);
        return;
    }
    fprintf(out, "%s%s: ", indent, name);
    switch (o->type) {
    case MESH_OPT_STR:
    case MESH_OPT_ADDR:
    case MESH_OPT_ENUM: {
        dump_scalar(out, *(char *const *)field);
        break;
    }
    case MESH_OPT_INT:
        if (CORE_IS(r, workers))
            fprintf(out, "%d", *(const int *)field);
        else
            fprintf(out, "%lld", (long long)*(const int64_t *)field);
        break;
    case MESH_OPT_DUR:
        fprintf(out, "%lldms", (long long)*(const int64_t *)field);
        break;
    case MESH_OPT_SIZE:
        fprintf(out, "%lld", (long long)*(const int64_t *)field);
        break;
    case MESH_OPT_RATIO:
        fprintf(out, "%g", *(const double *)field);
        break;
    case MESH_OPT_LEVEL:
        fputs(mesh_log_level_name(*(const mesh_log_level_t *)field), out);
        break;
    case MESH_OPT_BOOL:
        fputs(*(const int *)field ? "true" : "false", out);
        break;
    case MESH_OPT_LIST: {
        const mesh_config_list_t *l = field;
        fputc('[', out);
        for (size_t j = 0; j < l->n; j++) {
            if (j)
                fputs(", ", out);
            dump_scalar(out, l->items[j]);
        }
        fputc(']', out);
        break;
    }
    }
    fputc('\n', out);
}

/* Whether an option before number `before` (in opt_index() order) is in section sec (len). */
static int section_seen(size_t before, const char *sec, size_t len)
{
    for (size_t t = 0; t < n_tables && table_first[t] < before; t++)
        for (size_t i = 0; i < tables[t]->n_opts && table_first[t] + i < before; i++) {
            const char *n = tables[t]->opts[i].name;
            if (strncmp(n, sec, len) == 0 && n[len] == '.')
                return 1;
        }
    return 0;
}

/*
 * Options in table order; the options of a YAML section ("breaker.x") all go under its one
 * header where its first option would be, whichever tables declared them.
 */
void mesh_config_dump(FILE *out, const mesh_config_t *cfg)
{
    size_t nt = tables_of(cfg);
    for (size_t t = 0; t < nt; t++)
        for (size_t i = 0; i < tables[t]->n_opts; i++) {
            opt_ref_t r = {t, &tables[t]->opts[i]};
            if (CORE_IS(r, config_file))
                continue;
            const char *dot = strchr(r.o->name, '.');
            if (!dot) {
                dump_opt(out, cfg, r, "", r.o->name);
                continue;
            }
            size_t sl = (size_t)(dot - r.o->name);
            if (section_seen(opt_index(r), r.o->name, sl))
                continue; /* written with the section's first option */
            fprintf(out, "%.*s:\n", (int)sl, r.o->name);
            for (size_t u = t; u < nt; u++)
                for (size_t j = u == t ? i : 0; j < tables[u]->n_opts; j++) {
                    opt_ref_t q = {u, &tables[u]->opts[j]};
                    if (strncmp(q.o->name, r.o->name, sl) == 0 && q.o->name[sl] == '.')
                        dump_opt(out, cfg, q, "  ", q.o->name + sl + 1);
                }
        }
}
