/*
 * tests/unit/common/test_config.c: the config loader: precedence of the four sources, YAML
 * sections and lists, and errors that name file:line and the option; option sections that a
 * subsystem registers (the breaker's, and one of this test's own with an option of each type)
 * and the registrations that are refused.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/config.h"
#include "policy/breaker_options.h"
#include "tests/check.h"

static char dir[] = "/tmp/meshd-test-config-XXXXXX";

static const char *write_file(const char *name, const char *text)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    CHECK(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* Loads argv/envp into a fresh config; returns the rc and leaves the error in err. */
static int load(mesh_config_t *c, char **argv, char **envp, char *err)
{
    int argc = 0;
    while (argv && argv[argc])
        argc++;
    mesh_config_init(c);
    err[0] = '\0';
    return mesh_config_load(c, argc, argv, envp, MESH_ROLE_ALL, NULL, err, 512);
}

static void test_defaults(void)
{
    mesh_config_t c;
    char err[512];
    CHECK(load(&c, NULL, NULL, err) == 0);
    CHECK_STR(c.listen, "127.0.0.1:9090");
    CHECK_STR(c.etcd_prefix, "meshd/services");
    CHECK(c.lease_ttl_ms == 10000);
    CHECK(c.stream_buffer == 256 * 1024);
    CHECK(c.conn_window == 1 << 30);
    CHECK(c.ready_failures == 3);
    CHECK(pol_breaker_options(&c)->failure_ratio == 0.5);
    CHECK(c.node && c.node[0]);
    mesh_config_destroy(&c);
}

static void test_precedence(void)
{
    const char *path = write_file("p.yaml", "listen: 127.0.0.1:1000\n"
                                            "workers: 3\n"
                                            "etcd-prefix: from/file\n"
                                            "log_level: debug\n"
                                            "static:\n"
                                            "  - a.A=127.0.0.1:1\n"
                                            "  - b.B=127.0.0.1:2,127.0.0.1:3\n");
    char cfgflag[600];
    snprintf(cfgflag, sizeof(cfgflag), "--config=%s", path);
    char *argv[] = {cfgflag, "--workers", "5", "--static", "c.C=127.0.0.1:4", NULL};
    char *envp[] = {"MESHD_ETCD_PREFIX=from/env", "MESHD_WORKERS=4", "PATH=/bin", NULL};
    mesh_config_t c;
    char err[512];
    CHECK(load(&c, argv, envp, err) == 0);
    CHECK_STR(c.listen, "127.0.0.1:1000"); /* file beats default */
    CHECK_STR(c.etcd_prefix, "from/env");  /* env beats file */
    CHECK(c.workers == 5);                 /* flag beats env */
    CHECK(c.log_level == MESH_LOG_DEBUG);  /* "_" and "-" are the same in keys */
    CHECK(c.static_routes.n == 1);         /* a higher source replaces a list */
    CHECK_STR(c.static_routes.items[0], "c.C=127.0.0.1:4");
    mesh_config_destroy(&c);

    char *argv2[] = {cfgflag, NULL};
    CHECK(load(&c, argv2, NULL, err) == 0);
    CHECK(c.static_routes.n == 2); /* a YAML sequence accumulates */
    CHECK_STR(c.static_routes.items[1], "b.B=127.0.0.1:2,127.0.0.1:3");
    mesh_config_destroy(&c);
}

static void test_sections_and_keyed_lists(void)
{
    const char *path =
        write_file("s.yaml", "breaker:\n"
                             "  failures: 7\n"
                             "  window: 30s\n"
                             "  failure-ratio: 0.25\n"
                             "static:\n"
                             "  pkg.Svc: [127.0.0.1:1, 127.0.0.1:2]\n"
                             "  pkg.Other: 127.0.0.1:3\n"
                             "stream-buffer: 1MiB\n"
                             "conn-window: 64KiB\n"
                             "etcd: [http://127.0.0.1:2379, http://127.0.0.1:22379]\n");
    mesh_config_t c;
    mesh_config_init(&c);
    char err[512];
    CHECK(mesh_config_load_file(&c, path, err, sizeof(err)) == 0);
    const pol_breaker_options_t *bo = pol_breaker_options(&c);
    CHECK(bo->failures == 7);
    CHECK(bo->window_ms == 30000);
    CHECK(bo->failure_ratio == 0.25);
    CHECK(c.static_routes.n == 2);
    CHECK_STR(c.static_routes.items[0], "pkg.Svc=127.0.0.1:1,127.0.0.1:2");
    CHECK_STR(c.static_routes.items[1], "pkg.Other=127.0.0.1:3");
    CHECK(c.stream_buffer == 1024 * 1024);
    CHECK(c.conn_window == 64 * 1024);
    CHECK(c.etcd.n == 2);
    CHECK(mesh_config_validate(&c, MESH_ROLE_PROXY, err, sizeof(err)) == 0);
    mesh_config_destroy(&c);

    /* env lists are ";"-separated, flag endpoint lists comma-separated */
    char *argv[] = {"--etcd", "http://a:1,http://b:2", NULL};
    char *envp[] = {"MESHD_STATIC=x.X=127.0.0.1:1,127.0.0.1:2;y.Y=127.0.0.1:3", NULL};
    CHECK(load(&c, argv, envp, err) == 0);
    CHECK(c.etcd.n == 2);
    CHECK_STR(c.etcd.items[1], "http://b:2");
    CHECK(c.static_routes.n == 2);
    CHECK_STR(c.static_routes.items[1], "y.Y=127.0.0.1:3");
    mesh_config_destroy(&c);
}

static void expect_file_error(const char *text, const char *want)
{
    const char *path = write_file("bad.yaml", text);
    mesh_config_t c;
    mesh_config_init(&c);
    char err[512];
    CHECK(mesh_config_load_file(&c, path, err, sizeof(err)) == -1);
    CHECK_CONTAINS(err, path);
    CHECK_CONTAINS(err, want);
    mesh_config_destroy(&c);
}

static void test_file_errors(void)
{
    expect_file_error("listen: 127.0.0.1:1\nlisen: 127.0.0.1:2\n", ":2: lisen: unknown option");
    expect_file_error("workers: many\n", ":1: workers: 'many' is not an integer");
    expect_file_error("\n\nworkers: 100000\n", ":3: workers: 100000 is out of range");
    expect_file_error("drain-timeout: 5\n", ":1: drain-timeout: '5' is not a duration");
    expect_file_error("listen: nowhere\n", ":1: listen: 'nowhere' is not HOST:PORT");
    expect_file_error("breaker:\n  failurs: 3\n", ":2: breaker.failurs: unknown option");
    expect_file_error("brekr:\n  failures: 3\n", ":1: brekr: unknown section");
    expect_file_error("listen: [a, b]\n", ":1: listen: expected a single value");
    expect_file_error("listen: \"x\n", "YAML");
    expect_file_error("log-level: loud\n", ":1: log-level: 'loud' is not a log level");
}

static void test_flag_and_env_errors(void)
{
    mesh_config_t c;
    char err[512];
    char *argv[] = {"--lisen", "x", NULL};
    CHECK(load(&c, argv, NULL, err) == -1);
    CHECK_STR(err, "--lisen: unknown option");
    mesh_config_destroy(&c);

    char *argv2[] = {"--workers", NULL};
    CHECK(load(&c, argv2, NULL, err) == -1);
    CHECK_STR(err, "--workers: needs a value");
    mesh_config_destroy(&c);

    char *envp[] = {"MESHD_WORKERS=x", NULL};
    CHECK(load(&c, NULL, envp, err) == -1);
    CHECK_STR(err, "MESHD_WORKERS: 'x' is not an integer");
    mesh_config_destroy(&c);

    char *argv3[] = {"--static", "pkg.Svc=nohostport", NULL};
    CHECK(load(&c, argv3, NULL, err) == 0);
    CHECK(mesh_config_validate(&c, MESH_ROLE_PROXY, err, sizeof(err)) == -1);
    CHECK_CONTAINS(err, "static: 'nohostport'");
    mesh_config_destroy(&c);

    char *argv4[] = {"positional", NULL};
    CHECK(load(&c, argv4, NULL, err) == -1);
    CHECK_CONTAINS(err, "positional: unexpected argument");
    mesh_config_destroy(&c);

    CHECK(load(&c, NULL, NULL, err) == 0);
    CHECK(mesh_config_validate(&c, MESH_ROLE_SIDECAR, err, sizeof(err)) == -1);
    CHECK_CONTAINS(err, "app: the sidecar needs --app");
    mesh_config_destroy(&c);
}

static void test_dump_roundtrip(void)
{
    const char *path = write_file("r.yaml", "workers: 2\nbreaker:\n  failures: 9\n"
                                            "static: [\"a.A=127.0.0.1:5\"]\n");
    mesh_config_t c;
    mesh_config_init(&c);
    char err[512];
    CHECK(mesh_config_load_file(&c, path, err, sizeof(err)) == 0);
    char out[512];
    snprintf(out, sizeof(out), "%s/dump.yaml", dir);
    FILE *f = fopen(out, "w");
    mesh_config_dump(f, &c);
    fclose(f);
    mesh_config_t d;
    mesh_config_init(&d);
    CHECK(mesh_config_load_file(&d, out, err, sizeof(err)) == 0); /* the dump is a valid config */
    CHECK(d.workers == 2 && pol_breaker_options(&d)->failures == 9 && d.static_routes.n == 1);
    CHECK_STR(d.listen, c.listen);
    mesh_config_destroy(&c);
    mesh_config_destroy(&d);
}

/* ---- a section of the test's own: one option of each type -------------------------------- */

typedef struct demo_opts {
    char *name;                 /* demo.name: STR, checked by demo_check_name */
    char *peer;                 /* demo.peer: ADDR */
    int64_t count;              /* demo.count: INT */
    int64_t period_ms;          /* demo.period: DUR */
    int64_t budget;             /* demo.budget: SIZE */
    double share;               /* demo.share: RATIO */
    mesh_config_list_t tags;    /* demo.tag: LIST */
    mesh_log_level_t verbosity; /* demo-verbosity: LEVEL, a top-level name */
    char *mode;                 /* demo.mode: ENUM */
} demo_opts_t;

/* A name may not contain an upper-case letter. */
static int demo_check_name(const void *field, int replaced, const char *v, char *err, size_t errlen)
{
    (void)field;
    (void)replaced;
    for (const char *p = v; *p; p++)
        if (*p >= 'A' && *p <= 'Z') {
            snprintf(err, errlen, "'%s' has upper-case letters", v);
            return -1;
        }
    return 0;
}

/* demo.mode fast needs demo.share at most 0.5 (a rule across two options). */
static int demo_validate(const void *values, unsigned roles, char *err, size_t errlen)
{
    (void)roles;
    const demo_opts_t *d = values;
    if (strcmp(d->mode, "fast") == 0 && d->share > 0.5) {
        snprintf(err, errlen, "demo.mode: fast needs demo.share at most 0.5, not %g", d->share);
        return -1;
    }
    return 0;
}

#define D(field) offsetof(demo_opts_t, field)
static const mesh_config_opt_t demo_table[] = {
    {.name = "demo.name",
     .type = MESH_OPT_STR,
     .off = D(name),
     .def = "plain",
     .roles = MESH_ROLE_PROXY,
     .help = "a name in lower case",
     .check = demo_check_name},
    {.name = "demo.peer",
     .type = MESH_OPT_ADDR,
     .off = D(peer),
     .roles = MESH_ROLE_PROXY,
     .help = "a peer"},
    {.name = "demo.count",
     .type = MESH_OPT_INT,
     .off = D(count),
     .def = "10",
     .roles = MESH_ROLE_PROXY,
     .min = 1,
     .max = 100,
     .help = "how many"},
    /* a top-level name between two of the section's: the dump still writes one "demo:" */
    {.name = "demo-verbosity",
     .type = MESH_OPT_LEVEL,
     .off = D(verbosity),
     .def = "warn",
     .roles = MESH_ROLE_PROXY,
     .help = "how much the demo says"},
    {.name = "demo.period",
     .type = MESH_OPT_DUR,
     .off = D(period_ms),
     .def = "2s",
     .roles = MESH_ROLE_PROXY,
     .min = 100,
     .max = 60000,
     .help = "how often"},
    {.name = "demo.budget",
     .type = MESH_OPT_SIZE,
     .off = D(budget),
     .def = "1MiB",
     .roles = MESH_ROLE_PROXY,
     .min = 1024,
     .max = 1 << 30,
     .help = "how much memory"},
    {.name = "demo.share",
     .type = MESH_OPT_RATIO,
     .off = D(share),
     .def = "0.25",
     .roles = MESH_ROLE_PROXY,
     .help = "which part"},
    {.name = "demo.tag",
     .type = MESH_OPT_LIST,
     .off = D(tags),
     .roles = MESH_ROLE_PROXY,
     .help = "a tag (repeatable)"},
    {.name = "demo.mode",
     .type = MESH_OPT_ENUM,
     .off = D(mode),
     .def = "safe",
     .roles = MESH_ROLE_MONITOR,
     .choices = "fast|safe",
     .help = "how to go about it"},
};

static const mesh_config_section_t demo_section = {
    .name = "demo",
    .opts = demo_table,
    .n_opts = sizeof(demo_table) / sizeof(demo_table[0]),
    .size = sizeof(demo_opts_t),
    .validate = demo_validate,
};

static const demo_opts_t *demo(const mesh_config_t *c)
{
    return mesh_config_section(c, &demo_section);
}

static void test_section_defaults(void)
{
    mesh_config_t c;
    char err[512];
    CHECK(load(&c, NULL, NULL, err) == 0);
    const demo_opts_t *d = demo(&c);
    CHECK_STR(d->name, "plain");
    CHECK(d->peer == NULL);
    CHECK_EQ(d->count, 10);
    CHECK(d->verbosity == MESH_LOG_WARN);
    CHECK_EQ(d->period_ms, 2000);
    CHECK_EQ(d->budget, 1024 * 1024);
    CHECK(d->share == 0.25);
    CHECK_EQ(d->tags.n, 0);
    CHECK_STR(d->mode, "safe");
    /* the core and the breaker are where they were */
    CHECK_STR(c.listen, "127.0.0.1:9090");
    CHECK_EQ(pol_breaker_options(&c)->failures, 5);
    CHECK(mesh_config_validate(&c, MESH_ROLE_PROXY, err, sizeof(err)) == 0);
    mesh_config_destroy(&c);
}

static void test_section_precedence(void)
{
    const char *path = write_file("demo.yaml", "demo:\n"
                                               "  name: from-file\n"
                                               "  peer: 127.0.0.1:7001\n"
                                               "  count: 20\n"
                                               "  period: 1m\n"
                                               "  budget: 64KiB\n"
                                               "  share: 0.1\n"
                                               "  tag: [a, b]\n"
                                               "  mode: fast\n"
                                               "demo_verbosity: debug\n"
                                               "breaker:\n"
                                               "  failures: 11\n");
    char cfgflag[600];
    snprintf(cfgflag, sizeof(cfgflag), "--config=%s", path);
    char *envp[] = {"MESHD_DEMO_COUNT=30",       "MESHD_DEMO_TAG=c;d;e",
                    "MESHD_DEMO_PERIOD=500ms",   "MESHD_DEMO_VERBOSITY=error",
                    "MESHD_BREAKER_FAILURES=12", NULL};
    char *argv[] = {cfgflag,          "--demo-count", "40",          "--demo-tag=f",
                    "--demo-share",   "0.5",          "--demo-peer", "127.0.0.1:7002",
                    "--breaker-open", "250ms",        NULL};
    mesh_config_t c;
    char err[512];
    CHECK(load(&c, argv, envp, err) == 0);
    const demo_opts_t *d = demo(&c);
    CHECK_STR(d->name, "from-file");       /* file beats default */
    CHECK_EQ(d->budget, 64 * 1024);        /* (a size) */
    CHECK_STR(d->mode, "fast");            /* (an enum) */
    CHECK_EQ(d->period_ms, 500);           /* env beats file (a duration) */
    CHECK(d->verbosity == MESH_LOG_ERROR); /* (a level, by its top-level name) */
    CHECK_EQ(d->count, 40);                /* flag beats env (an integer) */
    CHECK(d->share == 0.5);                /* (a ratio) */
    CHECK_STR(d->peer, "127.0.0.1:7002");  /* (an address) */
    CHECK_EQ(d->tags.n, 1);                /* a higher source replaces a list */
    CHECK_STR(d->tags.items[0], "f");
    const pol_breaker_options_t *b = pol_breaker_options(&c);
    CHECK_EQ(b->failures, 12); /* env beats file */
    CHECK_EQ(b->open_ms, 250);
    CHECK(mesh_config_validate(&c, MESH_ROLE_PROXY, err, sizeof(err)) == 0);
    mesh_config_destroy(&c);

    /* within one source a list accumulates: a YAML sequence, the env's ";"-separated items */
    char *argv2[] = {cfgflag, NULL};
    CHECK(load(&c, argv2, NULL, err) == 0);
    CHECK_EQ(demo(&c)->tags.n, 2);
    CHECK_STR(demo(&c)->tags.items[1], "b");
    CHECK(demo(&c)->verbosity == MESH_LOG_DEBUG); /* "_" and "-" are the same in keys */
    mesh_config_destroy(&c);
    char *envp2[] = {"MESHD_DEMO_TAG=c;d;e", NULL};
    CHECK(load(&c, argv2, envp2, err) == 0);
    CHECK_EQ(demo(&c)->tags.n, 3);
    CHECK_STR(demo(&c)->tags.items[2], "e");
    mesh_config_destroy(&c);
}

static void test_section_errors(void)
{
    expect_file_error("workers: 1\ndemo:\n  count: 0\n",
                      ":3: demo.count: 0 is out of range [1, 100]");
    expect_file_error("demo:\n  cont: 3\n", ":2: demo.cont: unknown option");
    expect_file_error("demo:\n\n  name: Upper\n", ":3: demo.name: 'Upper' has upper-case letters");
    expect_file_error("demo:\n  mode: slow\n", ":2: demo.mode: 'slow' is not one of fast|safe");
    expect_file_error("demo:\n  peer: nowhere\n", ":2: demo.peer: 'nowhere' is not HOST:PORT");
    expect_file_error("demo:\n  period: 5\n", ":2: demo.period: '5' is not a duration");
    expect_file_error("demo:\n  budget: lots\n", ":2: demo.budget: 'lots' is not a size");
    expect_file_error("demo:\n  share: [1]\n", ":2: demo.share: expected a single value");

    mesh_config_t c;
    char err[512];
    char *envp[] = {"MESHD_DEMO_SHARE=2", NULL};
    CHECK(load(&c, NULL, envp, err) == -1);
    CHECK_STR(err, "MESHD_DEMO_SHARE: '2' is not a ratio between 0 and 1");
    mesh_config_destroy(&c);

    char *argv[] = {"--demo-verbosity", "loud", NULL};
    CHECK(load(&c, argv, NULL, err) == -1);
    CHECK_STR(err, "--demo-verbosity: 'loud' is not a log level (debug, info, warn, error, off)");
    mesh_config_destroy(&c);

    /* flags are taken only for the option's roles; file and environment take them all */
    char *argv2[] = {"--demo-mode", "fast", NULL};
    mesh_config_init(&c);
    CHECK(mesh_config_load(&c, 2, argv2, NULL, MESH_ROLE_PROXY, NULL, err, sizeof(err)) == -1);
    CHECK_STR(err, "--demo-mode: unknown option");
    mesh_config_destroy(&c);
    mesh_config_init(&c);
    CHECK(mesh_config_load(&c, 2, argv2, NULL, MESH_ROLE_MONITOR, NULL, err, sizeof(err)) == 0);
    CHECK_STR(demo(&c)->mode, "fast");
    mesh_config_destroy(&c);

    /* the section's own rule across options runs in mesh_config_validate */
    char *envp2[] = {"MESHD_DEMO_MODE=fast", "MESHD_DEMO_SHARE=0.75", NULL};
    CHECK(load(&c, NULL, envp2, err) == 0);
    CHECK(mesh_config_validate(&c, MESH_ROLE_PROXY, err, sizeof(err)) == -1);
    CHECK_STR(err, "demo.mode: fast needs demo.share at most 0.5, not 0.75");
    mesh_config_destroy(&c);
}

/* The text f received, read back from the start (f is a tmpfile). */
static char *slurp(FILE *f)
{
    static char buf[65536];
    fflush(f);
    rewind(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    return buf;
}

static void test_section_usage_and_dump(void)
{
    FILE *f = tmpfile();
    CHECK(f);
    mesh_config_usage(f, MESH_ROLE_PROXY);
    const char *u = slurp(f);
    CHECK_CONTAINS(u, "  --demo-count N                     how many [10]\n"
                      "                                     env MESHD_DEMO_COUNT\n");
    CHECK_CONTAINS(u, "--demo-budget SIZE");
    CHECK_CONTAINS(u, "--demo-period DURATION");
    CHECK_CONTAINS(u, "--demo-share RATIO");
    CHECK_CONTAINS(u, "--demo-verbosity LEVEL");
    CHECK_CONTAINS(u, "--demo-peer HOST:PORT");
    CHECK_CONTAINS(u, "--demo-tag VALUE");
    CHECK(strstr(u, "--demo-mode") == NULL);                           /* a monitor option */
    CHECK(strstr(u, "--breaker-failures") == NULL);                    /* a sidecar option */
    CHECK(strstr(u, "--listen HOST:PORT") < strstr(u, "--demo-name")); /* sections come last */
    fclose(f);

    f = tmpfile();
    CHECK(f);
    mesh_config_usage(f, MESH_ROLE_SIDECAR);
    u = slurp(f);
    CHECK_CONTAINS(u, "  --breaker-failures N               consecutive failures that open the "
                      "circuit [5]\n"
                      "                                     env MESHD_BREAKER_FAILURES\n");
    CHECK_CONTAINS(u, "--breaker-failure-ratio RATIO      failure ratio over the window that "
                      "opens the circuit [0.5]");
    CHECK(strstr(u, "--demo-") == NULL);
    fclose(f);

    /* the dump groups a section's keys under one header and loads back as the same values */
    char *argv[] = {"--demo-count", "42",       "--demo-tag",       "x",  "--demo-tag", "y",
                    "--demo-peer",  "[::1]:80", "--breaker-window", "3s", NULL};
    mesh_config_t c;
    char err[512];
    CHECK(load(&c, argv, NULL, err) == 0);
    f = tmpfile();
    CHECK(f);
    mesh_config_dump(f, &c);
    const char *dump = slurp(f);
    CHECK_CONTAINS(dump, "demo:\n  name: \"plain\"\n  peer: \"[::1]:80\"\n  count: 42\n"
                         "  period: 2000ms\n  budget: 1048576\n  share: 0.25\n"
                         "  tag: [\"x\", \"y\"]\n  mode: \"safe\"\ndemo-verbosity: warn\n");
    CHECK_CONTAINS(dump, "breaker:\n  failures: 5\n  failure-ratio: 0.5\n  window: 3000ms\n");
    char path[512];
    snprintf(path, sizeof(path), "%s/demo-dump.yaml", dir);
    FILE *o = fopen(path, "w");
    CHECK(o);
    fputs(dump, o);
    fclose(o);
    fclose(f);
    mesh_config_t d;
    mesh_config_init(&d);
    CHECK(mesh_config_load_file(&d, path, err, sizeof(err)) == 0);
    CHECK_EQ(demo(&d)->count, 42);
    CHECK_EQ(demo(&d)->tags.n, 2);
    CHECK_STR(demo(&d)->tags.items[1], "y");
    CHECK_STR(demo(&d)->peer, "[::1]:80");
    CHECK_EQ(pol_breaker_options(&d)->window_ms, 3000);
    mesh_config_destroy(&c);
    mesh_config_destroy(&d);
}

/* ---- registrations that are refused ---------------------------------------------------- */

static char logpath[512];

/* Registers s with the log going to a file; returns the rc and leaves the log in text. */
static int add_logged(const mesh_config_section_t *s, char *text, size_t len)
{
    int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    mesh_log_set_fd(fd);
    int rc = mesh_config_add_section(s);
    mesh_log_set_fd(2);
    close(fd);
    FILE *f = fopen(logpath, "r");
    CHECK(f);
    size_t n = fread(text, 1, len - 1, f);
    text[n] = '\0';
    fclose(f);
    return rc;
}

typedef struct two_ints {
    int64_t x;
    int64_t y;
} two_ints_t;

/* A section named sname of two integer options named a and b, a's default dflt. */
#define TWO_OPTS(var, sname, a, b, dflt)                                                           \
    static const mesh_config_opt_t var##_opts[] = {                                                \
        {.name = a,                                                                                \
         .type = MESH_OPT_INT,                                                                     \
         .off = offsetof(two_ints_t, x),                                                           \
         .def = dflt,                                                                              \
         .roles = MESH_ROLE_ALL,                                                                   \
         .max = 9,                                                                                 \
         .help = "x"},                                                                             \
        {.name = b,                                                                                \
         .type = MESH_OPT_INT,                                                                     \
         .off = offsetof(two_ints_t, y),                                                           \
         .roles = MESH_ROLE_ALL,                                                                   \
         .max = 9,                                                                                 \
         .help = "y"},                                                                             \
    };                                                                                             \
    static const mesh_config_section_t var = {                                                     \
        .name = sname, .opts = var##_opts, .n_opts = 2, .size = sizeof(two_ints_t)}

TWO_OPTS(dup_core, "dup1", "dup1.fresh", "listen", "1");
TWO_OPTS(dup_breaker, "dup2", "breaker.failures", "dup2.fresh", "1");
TWO_OPTS(dup_spelling, "dup3", "dup3.fresh", "demo-count",
         "1"); /* --demo-count, MESHD_DEMO_COUNT */
TWO_OPTS(dup_inside, "dup4", "dup4.same", "dup4.same", "1");
TWO_OPTS(dup_prefix, "dup5", "dup5.fresh", "demo", "1"); /* YAML `demo:` is the section */
TWO_OPTS(bad_default, "dup6", "dup6.fresh", "dup6.other", "10");
TWO_OPTS(bad_name, "dup7", "dup7.fresh", "Dup7_Upper", "1");
TWO_OPTS(same_name, "demo", "dup8.fresh", "dup8.other", "1");
TWO_OPTS(dup_under, "dup9", "dup9.fresh", "demo-verbosity.x", "1");
static const mesh_config_opt_t no_range_opts[] = {
    {.name = "dup10.fresh", .type = MESH_OPT_DUR, .roles = MESH_ROLE_ALL, .help = "x"},
};
static const mesh_config_section_t no_range = {
    .name = "dup10", .opts = no_range_opts, .n_opts = 1, .size = sizeof(int64_t)};

static void test_refused_sections(void)
{
    static const struct {
        const mesh_config_section_t *s;
        const char *why;
    } cases[] = {
        {&dup_core, "cannot register option section 'dup1': option 'listen' is already declared "
                    "by section 'core'"},
        {&dup_breaker, "option 'breaker.failures' is already declared by section 'breaker'"},
        {&dup_spelling, "option 'demo-count' would have the flag and environment variable of "
                        "option 'demo.count' of section 'demo'"},
        {&dup_inside, "option 'dup4.same' is already declared by section 'dup4'"},
        {&dup_prefix, "option 'demo' is also the YAML section of option 'demo.name' of section "
                      "'demo'"},
        {&dup_under, "option 'demo-verbosity.x' would be under 'demo-verbosity', an option of "
                     "section 'demo'"},
        {&no_range, "option 'dup10.fresh' needs a range with min < max"},
        {&bad_default, "option 'dup6.fresh': default 10 is out of range [0, 9]"},
        {&bad_name, "option 'Dup7_Upper': a name is 1 to 48 of a-z"},
        {&same_name, "a section named 'demo' is already registered"},
        {&demo_section, "a section named 'demo' is already registered"},
    };
    char text[2048];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CHECK(add_logged(cases[i].s, text, sizeof(text)) == -1);
        CHECK_CONTAINS(text, cases[i].why);
    }
    /* nothing of a refused section was kept: its other option is unknown */
    mesh_config_t c;
    char err[512];
    char *argv[] = {"--dup1-fresh", "1", NULL};
    CHECK(load(&c, argv, NULL, err) == -1);
    CHECK_STR(err, "--dup1-fresh: unknown option");
    mesh_config_destroy(&c);
}

/* Fills the remaining places; the section after them is refused (no silent cap). */
static void test_section_limit(void)
{
    static char names[MESH_CONFIG_MAX_SECTIONS + 1][2][32];
    static mesh_config_opt_t opts[MESH_CONFIG_MAX_SECTIONS + 1];
    static mesh_config_section_t secs[MESH_CONFIG_MAX_SECTIONS + 1];
    char text[2048];
    int added = 0;
    for (int i = 0; i <= MESH_CONFIG_MAX_SECTIONS; i++) {
        snprintf(names[i][0], sizeof(names[i][0]), "fill%d", i);
        snprintf(names[i][1], sizeof(names[i][1]), "fill%d.x", i);
        opts[i] = (mesh_config_opt_t){.name = names[i][1],
                                      .type = MESH_OPT_INT,
                                      .def = "1",
                                      .roles = MESH_ROLE_ALL,
                                      .max = 9,
                                      .help = "x"};
        secs[i] = (mesh_config_section_t){
            .name = names[i][0], .opts = &opts[i], .n_opts = 1, .size = sizeof(int64_t)};
        if (add_logged(&secs[i], text, sizeof(text)) != 0) {
            CHECK_CONTAINS(text, "all 16 places are taken (raise MESH_CONFIG_MAX_SECTIONS");
            break;
        }
        added++;
    }
    CHECK_EQ(added, MESH_CONFIG_MAX_SECTIONS - 2); /* breaker and demo were there before */
    mesh_config_t c;
    char err[512];
    char *envp[] = {"MESHD_FILL0_X=7", NULL};
    CHECK(load(&c, NULL, envp, err) == 0);
    CHECK_EQ(*(const int64_t *)mesh_config_section(&c, &secs[0]), 7);
    CHECK_EQ(*(const int64_t *)mesh_config_section(&c, &secs[added - 1]), 1);
    mesh_config_destroy(&c);

    /* asking a config for a section it has no values for is a bug: it aborts, saying so */
    mesh_config_init(&c);
    char path[512];
    snprintf(path, sizeof(path), "%s/abort.txt", dir);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fd, 2);
        signal(SIGABRT, SIG_DFL);
        mesh_config_section(&c, &secs[added]); /* the refused one */
        _exit(0);
    }
    int status;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    FILE *f = fopen(path, "r");
    CHECK(f);
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = '\0';
    fclose(f);
    CHECK_CONTAINS(text, "meshd: config: option section 'fill");
    CHECK_CONTAINS(text, "was not registered before this config was initialized");
    mesh_config_destroy(&c);
}

int main(void)
{
    CHECK(mkdtemp(dir));
    snprintf(logpath, sizeof(logpath), "%s/log.txt", dir);
    mesh_log_init("test", MESH_LOG_ERROR, MESH_LOG_FORMAT_TEXT);
    /* as node/main.c does, before any config exists */
    CHECK(mesh_config_add_section(&pol_breaker_options_section) == 0);
    CHECK(mesh_config_add_section(&demo_section) == 0);
    test_defaults();
    test_precedence();
    test_sections_and_keyed_lists();
    test_file_errors();
    test_flag_and_env_errors();
    test_dump_roundtrip();
    test_section_defaults();
    test_section_precedence();
    test_section_errors();
    test_section_usage_and_dump();
    test_refused_sections();
    test_section_limit();
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    printf("test_config: ok\n");
    return 0;
}
