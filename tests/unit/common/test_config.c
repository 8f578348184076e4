/*
 * tests/unit/common/test_config.c: the config loader: precedence of the four sources, YAML
 * sections and lists, and errors that name file:line and the option.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"
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
    CHECK(c.ready_failures == 3);
    CHECK(c.breaker_failure_ratio == 0.5);
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
                             "etcd: [http://127.0.0.1:2379, http://127.0.0.1:22379]\n");
    mesh_config_t c;
    mesh_config_init(&c);
    char err[512];
    CHECK(mesh_config_load_file(&c, path, err, sizeof(err)) == 0);
    CHECK(c.breaker_failures == 7);
    CHECK(c.breaker_window_ms == 30000);
    CHECK(c.breaker_failure_ratio == 0.25);
    CHECK(c.static_routes.n == 2);
    CHECK_STR(c.static_routes.items[0], "pkg.Svc=127.0.0.1:1,127.0.0.1:2");
    CHECK_STR(c.static_routes.items[1], "pkg.Other=127.0.0.1:3");
    CHECK(c.stream_buffer == 1024 * 1024);
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
    CHECK(d.workers == 2 && d.breaker_failures == 9 && d.static_routes.n == 1);
    CHECK_STR(d.listen, c.listen);
    mesh_config_destroy(&c);
    mesh_config_destroy(&d);
}

int main(void)
{
    CHECK(mkdtemp(dir));
    mesh_log_init("test", MESH_LOG_ERROR, MESH_LOG_FORMAT_TEXT);
    test_defaults();
    test_precedence();
    test_sections_and_keyed_lists();
    test_file_errors();
    test_flag_and_env_errors();
    test_dump_roundtrip();
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    printf("test_config: ok\n");
    return 0;
}
