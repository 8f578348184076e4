/*
 * common/config.c: the option table and its four sources (defaults, YAML file, environment,
 * flags), see common/config.h.
 *
 * One table describes every option once: its name, type, default, the roles it is meant for
 * and where it lives in mesh_config_t. Every source goes through opt_set(), so a value is
 * checked the same way whichever source it came from, and errors name their origin.
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

typedef enum {
    OPT_STR,   /* any string */
    OPT_ADDR,  /* host:port */
    OPT_INT,   /* integer within [min, max] */
    OPT_DUR,   /* duration: 500ms, 5s, 2m, 1h; stored in ms */
    OPT_SIZE,  /* size: 4096, 64KiB, 4MiB, 1GiB; stored in bytes */
    OPT_RATIO, /* number in [0, 1] */
    OPT_LIST,  /* repeatable string */
    OPT_LEVEL, /* log level */
    OPT_ENUM,  /* one of the words in choices */
} opt_type_t;

/* Where a value came from; a higher source replaces a lower one. */
enum { SRC_DEFAULT = 0, SRC_FILE = 1, SRC_ENV = 2, SRC_FLAG = 3 };

typedef struct opt {
    const char *name;
    opt_type_t type;
    size_t off;
    const char *def;
    unsigned roles;
    int64_t min, max;
    const char *choices; /* OPT_ENUM: "a|b|c" */
    const char *help;
} opt_t;

#define F(field) offsetof(mesh_config_t, field)
#define P        MESH_ROLE_PROXY
#define S        MESH_ROLE_SIDECAR
#define G        MESH_ROLE_GATEWAY
#define M        MESH_ROLE_MONITOR
#define ALL      MESH_ROLE_ALL
#define DP       (P | S | G)

static const opt_t opts[] = {
    {"config", OPT_STR, F(config_file), NULL, ALL, 0, 0, NULL, "YAML configuration file"},
    {"node", OPT_STR, F(node), NULL, ALL, 0, 0, NULL, "node id (default: the host name)"},
    {"log-level", OPT_LEVEL, F(log_level), "info", ALL, 0, 0, NULL,
     "debug | info | warn | error | off"},
    {"log-format", OPT_ENUM, F(log_format), "auto", ALL, 0, 0, "auto|json|text",
     "auto (text on a terminal, JSON otherwise) | json | text"},

    {"listen", OPT_ADDR, F(listen), "127.0.0.1:9090", DP, 0, 0, NULL,
     "HOST:PORT the gRPC listener binds (one SO_REUSEPORT socket per worker)"},
    /* The bound is actors/exec.h's MESH_EXEC_MAX_WORKERS (common/ cannot include actors/;
     * tests/unit/actors/test_exec_limits.c checks that the two agree). */
    {"workers", OPT_INT, F(workers), "0", DP, 0, 255, NULL,
     "worker loops, at most 255; 0 = one per core"},
    {"static", OPT_LIST, F(static_routes), NULL, P | G, 0, 0, NULL,
     "static route SERVICE=HOST:PORT[,HOST:PORT...] (repeatable)"},
    {"max-concurrent-streams", OPT_INT, F(max_concurrent_streams), "1000", DP, 1, 1 << 20, NULL,
     "HTTP/2 streams per client connection"},
    {"max-header-list-size", OPT_SIZE, F(max_header_list_size), "16KiB", DP, 1024, 1 << 24, NULL,
     "largest header block accepted"},
    {"stream-buffer", OPT_SIZE, F(stream_buffer), "256KiB", DP, 16384, 1 << 30, NULL,
     "bytes buffered per stream and direction before the sender is slowed"},
    {"upstream-streams-per-conn", OPT_INT, F(upstream_streams_per_conn), "0", DP, 0, 1 << 20, NULL,
     "calls per upstream connection before the pool opens another, up to 8 (0 = the "
     "server's limit)"},
    {"connect-timeout", OPT_DUR, F(connect_timeout_ms), "2s", DP, 1, INT32_MAX, NULL,
     "upstream connect timeout"},
    {"keepalive-interval", OPT_DUR, F(keepalive_interval_ms), "30s", DP, 0, INT32_MAX, NULL,
     "HTTP/2 PING interval on idle connections (0 = off)"},
    {"keepalive-timeout", OPT_DUR, F(keepalive_timeout_ms), "10s", DP, 1, INT32_MAX, NULL,
     "a PING unanswered this long closes the connection"},
    {"drain-timeout", OPT_DUR, F(drain_timeout_ms), "5s", DP, 0, INT32_MAX, NULL,
     "on SIGTERM, how long in-flight calls may take to finish"},

    /* upstream names (transport/upstream_pool.c) */
    {"dns-refresh", OPT_DUR, F(dns_refresh_ms), "30s", DP, 100, INT32_MAX, NULL,
     "how often an upstream host name is resolved again (off the worker loops), so routes "
     "follow DNS"},

    {"etcd", OPT_LIST, F(etcd), NULL, ALL, 0, 0, NULL, "etcd endpoint URLs (comma-separated)"},
    {"etcd-prefix", OPT_STR, F(etcd_prefix), "meshd/services", ALL, 0, 0, NULL,
     "key prefix of service instances"},
    {"etcd-username", OPT_STR, F(etcd_username), NULL, ALL, 0, 0, NULL, "etcd user"},
    {"etcd-password", OPT_STR, F(etcd_password), NULL, ALL, 0, 0, NULL, "etcd password"},
    {"etcd-ca", OPT_STR, F(etcd_ca), NULL, ALL, 0, 0, NULL, "CA file for etcd TLS"},
    {"etcd-cert", OPT_STR, F(etcd_cert), NULL, ALL, 0, 0, NULL, "client certificate for etcd"},
    {"etcd-key", OPT_STR, F(etcd_key), NULL, ALL, 0, 0, NULL, "client key for etcd"},
    {"snapshot-file", OPT_STR, F(snapshot_file), NULL, ALL, 0, 0, NULL,
     "file keeping the last registry view for restarts while etcd is down"},
    {"lease-ttl", OPT_DUR, F(lease_ttl_ms), "10s", S, 2000, 3600000, NULL,
     "TTL of the etcd lease registrations live under"},

    {"app", OPT_ADDR, F(app), NULL, S, 0, 0, NULL, "HOST:PORT of the local gRPC server"},
    {"advertise", OPT_ADDR, F(advertise), NULL, S, 0, 0, NULL,
     "HOST:PORT registered in etcd (default: --listen)"},
    {"probe-listen", OPT_ADDR, F(probe_listen), NULL, S, 0, 0, NULL,
     "HOST:PORT of the HTTP probes /livez and /readyz"},
    {"descriptor-set", OPT_STR, F(descriptor_set), NULL, S | G, 0, 0, NULL,
     "FileDescriptorSet describing an app without reflection"},
    {"health-interval", OPT_DUR, F(health_interval_ms), "1s", S, 10, INT32_MAX, NULL,
     "interval between health checks of the app"},
    {"health-timeout", OPT_DUR, F(health_timeout_ms), "1s", S, 10, INT32_MAX, NULL,
     "a health check unanswered this long failed"},
    {"ready-failures", OPT_INT, F(ready_failures), "3", S, 1, 1000, NULL,
     "consecutive failed checks before /readyz says 503"},

    {"zone", OPT_STR, F(zone), NULL, S, 0, 0, NULL,
     "zone of this instance, written into its registration"},
    {"weight", OPT_INT, F(weight), "1", S, 1, 1000000, NULL,
     "relative weight of this instance, written into its registration"},
    {"version", OPT_STR, F(version), NULL, S, 0, 0, NULL,
     "release label of this instance (e.g. for canaries), written into its registration"},
    {"label", OPT_LIST, F(labels), NULL, S, 0, 0, NULL,
     "KEY=VALUE label of this instance, written into its registration (repeatable)"},

    {"breaker.failures", OPT_INT, F(breaker_failures), "5", S, 1, 1000000, NULL,
     "consecutive failures that open the circuit"},
    {"breaker.failure-ratio", OPT_RATIO, F(breaker_failure_ratio), "0.5", S, 0, 0, NULL,
     "failure ratio over the window that opens the circuit"},
    {"breaker.window", OPT_DUR, F(breaker_window_ms), "10s", S, 100, INT32_MAX, NULL,
     "sliding window of the failure ratio"},
    {"breaker.min-calls", OPT_INT, F(breaker_min_calls), "20", S, 1, 1000000, NULL,
     "calls in the window before the ratio counts"},
    {"breaker.max-concurrent", OPT_INT, F(breaker_max_concurrent), "1000", S, 1, 1000000, NULL,
     "concurrent calls to the app; more are rejected at once"},
    {"breaker.open", OPT_DUR, F(breaker_open_ms), "5s", S, 10, INT32_MAX, NULL,
     "how long the circuit stays open before probing"},
    {"breaker.half-open-calls", OPT_INT, F(breaker_half_open_calls), "3", S, 1, 1000, NULL,
     "probe calls let through while half-open"},
};

#define N_OPTS (sizeof(opts) / sizeof(opts[0]))

/* Per-load state: which source set each option last. */
typedef struct load_state {
    unsigned char src[N_OPTS];
} load_state_t;

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

static const opt_t *opt_find(const char *name, size_t len)
{
    for (size_t i = 0; i < N_OPTS; i++)
        if (name_eq(opts[i].name, name, len))
            return &opts[i];
    return NULL;
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

static const opt_t *opt_by_flag(const char *flag, size_t len)
{
    char f[64];
    for (size_t i = 0; i < N_OPTS; i++) {
        opt_flag(&opts[i], f, sizeof(f));
        if (name_eq(f, flag, len))
            return &opts[i];
    }
    return NULL;
}

/* ---- value checks of single options ---------------------------------------------------- */

/*
 * A check sees the option's field (for lists: the items kept so far, or none when replaced is
 * set because this source replaces them) and the new value; on error it writes the problem.
 */
typedef int (*opt_check_fn)(const void *field, int replaced, const char *v, char *err,
                            size_t errlen);

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

static const struct {
    size_t off;
    opt_check_fn check;
} opt_checks[] = {
    {F(zone), check_word},
    {F(version), check_word},
    {F(labels), check_label},
};

static opt_check_fn opt_check_of(const opt_t *o)
{
    for (size_t i = 0; i < sizeof(opt_checks) / sizeof(opt_checks[0]); i++)
        if (opt_checks[i].off == o->off)
            return opt_checks[i].check;
    return NULL;
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
 * Sets option o from a string value v coming from source src. A list option is cleared
 * the first time a source above the one that filled it sets it. On error writes the problem
 * (without origin) into err.
 */
static int opt_set(mesh_config_t *cfg, load_state_t *st, const opt_t *o, const char *v, int src,
                   char *err, size_t errlen)
{
    void *field = (char *)cfg + o->off;
    size_t idx = (size_t)(o - opts);
    int first = st->src[idx] < src;
    st->src[idx] = (unsigned char)src;
    opt_check_fn check = opt_check_of(o);
    if (check && check(field, first, v, err, errlen) != 0)
        return -1;
    int64_t x = 0;
    switch (o->type) {
    case OPT_STR:
    case OPT_ADDR:
    case OPT_ENUM: {
        if (o->type == OPT_ADDR && *v) {
            char host[256];
            int port;
            if (mesh_addr_split(v, host, sizeof(host), &port) != 0) {
                errf(err, errlen, "'%s' is not HOST:PORT", v);
                return -1;
            }
        }
        if (o->type == OPT_ENUM) {
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
    case OPT_INT:
        if (parse_int(v, &x) != 0) {
            errf(err, errlen, "'%s' is not an integer", v);
            return -1;
        }
        break;
    case OPT_DUR:
        if (parse_duration(v, &x) != 0) {
            errf(err, errlen, "'%s' is not a duration (like 500ms, 5s, 2m)", v);
            return -1;
        }
        break;
    case OPT_SIZE:
        if (parse_size(v, &x) != 0) {
            errf(err, errlen, "'%s' is not a size (like 4096, 64KiB, 4MiB)", v);
            return -1;
        }
        break;
    case OPT_RATIO: {
        char *end;
        double d = strtod(v, &end);
        if (end == v || *end || d < 0 || d > 1) {
            errf(err, errlen, "'%s' is not a ratio between 0 and 1", v);
            return -1;
        }
        *(double *)field = d;
        return 0;
    }
    case OPT_LEVEL: {
        mesh_log_level_t l;
        if (mesh_log_level_parse(v, &l) != 0) {
            errf(err, errlen, "'%s' is not a log level (debug, info, warn, error, off)", v);
            return -1;
        }
        *(mesh_log_level_t *)field = l;
        return 0;
    }
    case OPT_LIST: {
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
    if (o->type == OPT_INT && o->max <= INT_MAX && o->off == F(workers))
        *(int *)field = (int)x;
    else
        *(int64_t *)field = x;
    return 0;
}

void mesh_config_init(mesh_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    load_state_t st = {{0}};
    char err[256];
    for (size_t i = 0; i < N_OPTS; i++) {
        if (opts[i].def &&
            opt_set(cfg, &st, &opts[i], opts[i].def, SRC_DEFAULT, err, sizeof(err)) != 0)
            abort(); /* a default that does not parse is a bug in the table */
    }
    char host[256];
    if (gethostname(host, sizeof(host)) != 0)
        snprintf(host, sizeof(host), "meshd");
    host[sizeof(host) - 1] = '\0';
    cfg->node = strdup(host);
}

void mesh_config_destroy(mesh_config_t *cfg)
{
    for (size_t i = 0; i < N_OPTS; i++) {
        void *field = (char *)cfg + opts[i].off;
        if (opts[i].type == OPT_STR || opts[i].type == OPT_ADDR || opts[i].type == OPT_ENUM) {
            free(*(char **)field);
            *(char **)field = NULL;
        } else if (opts[i].type == OPT_LIST) {
            list_clear(field);
        }
    }
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

static int yaml_set(yaml_ctx_t *y, const opt_t *o, const char *v, size_t line)
{
    char why[256];
    if (opt_set(y->cfg, y->st, o, v, SRC_FILE, why, sizeof(why)) != 0)
        return yaml_fail(y, line, o->name, why);
    return 0;
}

/* Reads the items of a sequence into list option o (after its SEQUENCE_START). */
static int yaml_sequence(yaml_ctx_t *y, const opt_t *o, const char *name)
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
        int rc = yaml_set(y, o, (const char *)e.data.scalar.value, line);
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
static int yaml_keyed_list(yaml_ctx_t *y, const opt_t *o)
{
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
        if (yaml_set(y, o, item, line) != 0)
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
        const opt_t *o = opt_find(name, strlen(name));
        int rc = 0;
        if (!o && v.type == YAML_MAPPING_START_EVENT) {
            /* a section: known if some option starts with "name." */
            size_t nl = strlen(name);
            int known = 0;
            for (size_t i = 0; i < N_OPTS; i++)
                if (strlen(opts[i].name) > nl && opts[i].name[nl] == '.' &&
                    strncmp(opts[i].name, name, nl) == 0)
                    known = 1;
            rc = known ? yaml_mapping(y, name) : yaml_fail(y, line, name, "unknown section");
        } else if (!o || strcmp(o->name, "config") == 0) {
            rc = yaml_fail(y, line, name, "unknown option");
        } else if (v.type == YAML_SCALAR_EVENT) {
            rc = yaml_set(y, o, (const char *)v.data.scalar.value, line);
        } else if (v.type == YAML_SEQUENCE_START_EVENT && o->type == OPT_LIST) {
            rc = yaml_sequence(y, o, name);
        } else if (v.type == YAML_MAPPING_START_EVENT && o->type == OPT_LIST) {
            rc = yaml_keyed_list(y, o);
        } else {
            rc = yaml_fail(y, line, name,
                           o->type == OPT_LIST ? "expected a value or a list"
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
    load_state_t st = {{0}};
    return load_file(cfg, &st, path, err, errlen);
}

/* ---- environment and flags ------------------------------------------------------------ */

/* Sets list option o from v split at sep (every item is checked like a single value). */
static int opt_set_split(mesh_config_t *cfg, load_state_t *st, const opt_t *o, const char *v,
                         const char *sep, int src, char *why, size_t whylen)
{
    char *copy = strdup(v), *save = NULL;
    int rc = 0;
    for (char *it = strtok_r(copy, sep, &save); it && rc == 0; it = strtok_r(NULL, sep, &save))
        rc = opt_set(cfg, st, o, it, src, why, whylen);
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
        const opt_t *o = NULL;
        char env[96];
        for (size_t i = 0; i < N_OPTS && !o; i++) {
            opt_env(&opts[i], env, sizeof(env));
            if (strlen(env) == nl && strncmp(env, *e, nl) == 0)
                o = &opts[i];
        }
        if (!o) {
            /* The environment is shared by the whole process tree: an unrelated MESHD_ name
             * is reported, not fatal. */
            mesh_warn("config", "ignoring unknown environment variable %.*s", (int)nl, *e);
            continue;
        }
        if (o->off == F(config_file))
            continue; /* read before the file */
        char why[256];
        const char *v = eq + 1;
        /* list items are separated by ";" (a static route itself contains commas), etcd
         * endpoints by "," as on the command line */
        const char *sep = o->off == F(etcd) ? "," : ";";
        int rc = o->type == OPT_LIST ? opt_set_split(cfg, st, o, v, sep, SRC_ENV, why, sizeof(why))
                                     : opt_set(cfg, st, o, v, SRC_ENV, why, sizeof(why));
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

int mesh_config_load(mesh_config_t *cfg, int argc, char **argv, char **envp, unsigned roles,
                     mesh_config_list_t *positional, char *err, size_t errlen)
{
    load_state_t st = {{0}};
    const char *path = find_config(argc, argv, envp);
    if (path) {
        free(cfg->config_file);
        cfg->config_file = strdup(path);
        if (load_file(cfg, &st, path, err, errlen) != 0)
            return -1;
    }
    if (load_env(cfg, &st, envp, err, errlen) != 0)
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
        const opt_t *o = opt_by_flag(name, nl);
        if (!o || !(o->roles & roles)) {
            errf(err, errlen, "--%.*s: unknown option", (int)nl, name);
            return -1;
        }
        const char *v;
        if (eq) {
            v = eq + 1;
        } else if (i + 1 < argc) {
            v = argv[++i];
        } else {
            errf(err, errlen, "--%.*s: needs a value", (int)nl, name);
            return -1;
        }
        if (o->off == F(config_file))
            continue;
        char why[256];
        /* endpoint lists are comma-separated */
        int rc = o->off == F(etcd) ? opt_set_split(cfg, &st, o, v, ",", SRC_FLAG, why, sizeof(why))
                                   : opt_set(cfg, &st, o, v, SRC_FLAG, why, sizeof(why));
        if (rc != 0) {
            errf(err, errlen, "--%.*s: %s", (int)nl, name, why);
            return -1;
        }
    }
    return 0;
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
    if ((role & MESH_ROLE_SIDECAR) && !cfg->app) {
        errf(err, errlen, "app: the sidecar needs --app HOST:PORT");
        return -1;
    }
    if (cfg->keepalive_interval_ms && cfg->keepalive_timeout_ms > cfg->keepalive_interval_ms * 10)
        mesh_warn("config", "keepalive-timeout is much longer than keepalive-interval");
    return 0;
}

static const char *type_hint(const opt_t *o)
{
    switch (o->type) {
    case OPT_ADDR:
        return "HOST:PORT";
    case OPT_INT:
        return "N";
    case OPT_DUR:
        return "DURATION";
    case OPT_SIZE:
        return "SIZE";
    case OPT_RATIO:
        return "RATIO";
    case OPT_LEVEL:
        return "LEVEL";
    case OPT_LIST:
        return o->off == F(labels) ? "KEY=VALUE" : "VALUE";
    default:
        return o->off == F(config_file) || o->off == F(descriptor_set) ? "FILE" : "VALUE";
    }
}

void mesh_config_usage(FILE *out, unsigned roles)
{
    for (size_t i = 0; i < N_OPTS; i++) {
        const opt_t *o = &opts[i];
        if (!(o->roles & roles))
            continue;
        char flag[64], env[96], left[128];
        opt_flag(o, flag, sizeof(flag));
        opt_env(o, env, sizeof(env));
        snprintf(left, sizeof(left), "--%s %s", flag, type_hint(o));
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

void mesh_config_dump(FILE *out, const mesh_config_t *cfg)
{
    const char *section = "";
    size_t seclen = 0;
    for (size_t i = 0; i < N_OPTS; i++) {
        const opt_t *o = &opts[i];
        if (o->off == F(config_file) || o->off == F(etcd_password))
            continue;
        const char *name = o->name;
        const char *dot = strchr(name, '.');
        const char *indent = "";
        if (dot) {
            size_t sl = (size_t)(dot - name);
            if (sl != seclen || strncmp(section, name, sl) != 0) {
                fprintf(out, "%.*s:\n", (int)sl, name);
                section = name;
                seclen = sl;
            }
            name = dot + 1;
            indent = "  ";
        }
        const void *field = (const char *)cfg + o->off;
        int is_str = o->type == OPT_STR || o->type == OPT_ADDR || o->type == OPT_ENUM;
        if (is_str && !*(char *const *)field) {
            fprintf(out, "%s# %s: (unset)\n", indent, name);
            continue;
        }
        fprintf(out, "%s%s: ", indent, name);
        switch (o->type) {
        case OPT_STR:
        case OPT_ADDR:
        case OPT_ENUM: {
            dump_scalar(out, *(char *const *)field);
            break;
        }
        case OPT_INT:
            if (o->off == F(workers))
                fprintf(out, "%d", *(const int *)field);
            else
                fprintf(out, "%lld", (long long)*(const int64_t *)field);
            break;
        case OPT_DUR:
            fprintf(out, "%lldms", (long long)*(const int64_t *)field);
            break;
        case OPT_SIZE:
            fprintf(out, "%lld", (long long)*(const int64_t *)field);
            break;
        case OPT_RATIO:
            fprintf(out, "%g", *(const double *)field);
            break;
        case OPT_LEVEL:
            fputs(mesh_log_level_name(*(const mesh_log_level_t *)field), out);
            break;
        case OPT_LIST: {
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
}
