/*
 * node/main.c: the meshd binary's entry point: global flags, the command table, and the
 * config loading every role shares. Each role's wiring lives in node/role_<name>.c.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/cli.h"
#include "policy/chain.h"
#include "common/config.h"
#include "audit/audit_options.h"
#include "common/log.h"
#include "gateway/gw_options.h"
#include "gossip/gossip_options.h"
#include "monitor/monitor_options.h"
#include "node/admin_options.h"
#include "node/ca_options.h"
#include "node/reflect_options.h"
#include "node/tls_options.h"
#include "policy/breaker_options.h"
#include "registry/etcd_auth_check.h"
#include "transport/lb_options.h"

extern char **environ;

static int cmd_version(int argc, char **argv);
static int cmd_help(int argc, char **argv);
static int cmd_check_config(int argc, char **argv);

/* The commands, in the order --help lists them. */
static const mesh_cli_command_t commands[] = {
    {"proxy", MESH_ROLE_PROXY, mesh_cli_proxy,
     "gRPC ingress: routes every call by /package.Service/Method to an instance"},
    {"gateway", MESH_ROLE_GATEWAY, mesh_cli_gateway,
     "HTTP/JSON ingress: google.api.http routes transcoded to gRPC calls to instances"},
    {"sidecar", MESH_ROLE_SIDECAR, mesh_cli_sidecar,
     "runs beside one gRPC app: registers it while healthy, probes, circuit breaker"},
    {"monitor", MESH_ROLE_MONITOR, mesh_cli_monitor,
     "evicts instances that stop answering grpc.health.v1 (leader-elected on etcd); "
     "`monitor status --admin HOST:PORT`"},
    {"registry", MESH_ROLE_TOOL, mesh_cli_registry,
     "`registry list [--json]`: services, methods and instances in etcd"},
    {"routes", 0, mesh_cli_routes,
     "`routes --admin HOST:PORT [--json]`: a running node's routes, from its admin API"},
    {"members", 0, mesh_cli_members,
     "`members --admin HOST:PORT [--json]`: a running node's gossip members, from its admin API"},
    {"audit", 0, mesh_cli_audit,
     "`audit tail --kafka BROKERS [--topic T] [--follow] [--json]`: audit events in Kafka; "
     "`audit status --admin HOST:PORT`: a node's audit pipeline"},
    {"probe", 0, mesh_cli_probe,
     "`probe [--addr HOST:PORT] [--service NAME] [--timeout MS]`: one grpc.health.v1 Check; "
     "exit 0 when SERVING (for exec probes)"},
    {"ca", 0, mesh_cli_ca,
     "`ca init --dir D --trust-domain TD`: a mesh CA root; `ca verify --cert F [--key F] "
     "[--ca F]`: checks certificate files"},
    {"check-config", 0, cmd_check_config, "checks a YAML config file and prints it"},
    {"version", 0, cmd_version, "prints the version"},
    {"help", 0, cmd_help, "this text; `meshd help COMMAND` for a command's options"},
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

/* The option sections of the subsystems this binary links (common/config.h), in the order
 * --help and check-config list them after the core options. */
static const mesh_config_section_t *const sections[] = {
    &pol_breaker_options_section, &mesh_admin_options_section, &gsp_options_section,
    &audit_options_section,       &mon_options_section,        &gw_options_section,
    &mesh_lb_options_section,     &mesh_ca_options_section,    &reflect_options_section,
    &mesh_tls_options_section,
};

static void usage(FILE *out)
{
    fprintf(out, "usage: meshd [--version] [--help] COMMAND [OPTIONS]\n\n"
                 "meshd is a service mesh node for gRPC services.\n\ncommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-14s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nEvery option is also a YAML key (--config FILE) and an environment variable\n"
                 "(MESHD_<OPTION>); flags beat the environment, which beats the file.\n");
}

static const mesh_cli_command_t *find_command(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

void mesh_cli_command_usage(FILE *out, const char *name)
{
    const mesh_cli_command_t *c = find_command(name);
    if (!c) {
        usage(out);
        return;
    }
    fprintf(out, "usage: meshd %s [OPTIONS]\n\n%s\n", c->name, c->summary);
    if (c->roles) {
        fprintf(out, "\noptions:\n");
        mesh_config_usage(out, c->roles);
    }
}

/* The etcd credentials (docs/etcd-rbac.md): the password file is read, then etcd is asked
 * once, so a wrong password or an unreadable file stops the node now (exit 2) with the user or
 * the file named. An etcd that does not answer yet is only a warning: the node runs on its
 * snapshot and gossip until it does. 0 or -1 (printed). */
static int etcd_credentials(mesh_config_t *cfg, const char *command)
{
    char err[512];
    const char *files[] = {cfg->etcd_cacert, cfg->etcd_cert, cfg->etcd_key};
    const char *names[] = {"etcd-cacert", "etcd-cert", "etcd-key"};
    for (size_t i = 0; i < 3; i++) {
        FILE *f = files[i] ? fopen(files[i], "r") : NULL;
        if (files[i] && !f) {
            fprintf(stderr, "meshd %s: %s: cannot read %s: %s\n", command, names[i], files[i],
                    strerror(errno));
            return -1;
        }
        if (f)
            fclose(f);
    }
    if (!cfg->etcd_user && !cfg->etcd_cert)
        return 0;
    if (cfg->etcd_user &&
        etcd_password_read(cfg->etcd_password_file, &cfg->etcd_password, err, sizeof(err)) != 0) {
        fprintf(stderr, "meshd %s: %s\n", command, err);
        return -1;
    }
    if (cfg->etcd.n == 0)
        return 0;
    size_t len = 1;
    for (size_t i = 0; i < cfg->etcd.n; i++)
        len += strlen(cfg->etcd.items[i]) + 1;
    char *endpoints = calloc(1, len);
    for (size_t i = 0; endpoints && i < cfg->etcd.n; i++) {
        if (i)
            strcat(endpoints, ",");
        strcat(endpoints, cfg->etcd.items[i]);
    }
    etcd_client_cfg_t ec = {
        .endpoints = endpoints,
        .username = cfg->etcd_user,
        .password = cfg->etcd_password,
        .ca_file = cfg->etcd_cacert,
        .cert_file = cfg->etcd_cert,
        .key_file = cfg->etcd_key,
    };
    int rc = endpoints ? etcd_auth_check(&ec, err, sizeof(err)) : ETCD_AUTH_CHECK_UNREACHED;
    free(endpoints);
    if (rc == ETCD_AUTH_CHECK_REFUSED) {
        fprintf(stderr, "meshd %s: %s\n", command, err);
        return -1;
    }
    if (rc != ETCD_AUTH_CHECK_OK)
        mesh_warn("config", "%s; going on (authenticating when etcd answers)", err);
    return 0;
}

int mesh_cli_load_config(mesh_config_t *cfg, const char *command, unsigned roles, int argc,
                         char **argv, mesh_config_list_t *positional)
{
    char err[512];
    mesh_config_init(cfg);
    if (mesh_config_load(cfg, argc, argv, environ, roles, positional, err, sizeof(err)) != 0) {
        fprintf(stderr, "meshd %s: %s\n", command, err);
        if (strstr(err, "unknown option") && strncmp(err, "--", 2) == 0)
            mesh_cli_command_usage(stderr, command);
        mesh_config_destroy(cfg);
        return -1;
    }
    if (mesh_config_validate(cfg, roles, err, sizeof(err)) != 0) {
        fprintf(stderr, "meshd %s: %s\n", command, err);
        mesh_config_destroy(cfg);
        return -1;
    }
    gsp_options_default_name(cfg);
    mesh_log_format_t fmt = MESH_LOG_FORMAT_AUTO;
    if (strcmp(cfg->log_format, "json") == 0)
        fmt = MESH_LOG_FORMAT_JSON;
    else if (strcmp(cfg->log_format, "text") == 0)
        fmt = MESH_LOG_FORMAT_TEXT;
    mesh_log_init(cfg->node, cfg->log_level, fmt);
    if (etcd_credentials(cfg, command) != 0) {
        mesh_config_destroy(cfg);
        return -1;
    }
    return 0;
}

static int cmd_version(int argc, char **argv)
{
    printf("meshd %s\n", MESHD_VERSION);
    return 0;
}

static int cmd_help(int argc, char **argv)
{
    if (argc > 0)
        mesh_cli_command_usage(stdout, argv[0]);
    else
        usage(stdout);
    return 0;
}

static int cmd_check_config(int argc, char **argv)
{
    if (argc != 1 || argv[0][0] == '-') {
        fprintf(stderr, "usage: meshd check-config FILE\n");
        return 2;
    }
    mesh_config_t cfg;
    mesh_config_init(&cfg);
    char err[512];
    if (mesh_config_load_file(&cfg, argv[0], err, sizeof(err)) != 0 ||
        mesh_config_validate(&cfg, 0, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        mesh_config_destroy(&cfg);
        return 2;
    }
    /* The policy: block, with every file it names (keys, secrets). */
    pol_chain_t *chain = pol_chain_load(argv[0], err, sizeof(err));
    if (!chain) {
        fprintf(stderr, "%s\n", err);
        mesh_config_destroy(&cfg);
        return 2;
    }
    size_t n_rules = pol_chain_conf(chain)->n_rules;
    size_t n_routes = pol_chain_routes(chain)->n_rules;
    pol_chain_unref(chain);
    printf("# %s: ok (policy: %zu rules, routes: %zu rules)\n", argv[0], n_rules, n_routes);
    mesh_config_dump(stdout, &cfg);
    mesh_config_destroy(&cfg);
    return 0;
}

int main(int argc, char **argv)
{
    /* A peer that closes while an answer is being written must cost that connection only
     * (EPIPE from the write), never the process: SIGPIPE's default action kills it. */
    signal(SIGPIPE, SIG_IGN);
    for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
        if (mesh_config_add_section(sections[i]) != 0)
            return 1;                         /* a bug in a section's table, logged */
    if (mesh_config_add_block("policy") != 0) /* read by policy/policy_conf.c */
        return 1;
    if (mesh_config_add_block("routes") != 0) /* read by policy/route_conf.c */
        return 1;
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0)
        return cmd_version(0, NULL);
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    const mesh_cli_command_t *c = find_command(cmd);
    if (!c) {
        fprintf(stderr, "meshd: unknown command '%s'\n\n", cmd);
        usage(stderr);
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            mesh_cli_command_usage(stdout, cmd);
            return 0;
        }
    }
    return c->run(argc - 2, argv + 2);
}
