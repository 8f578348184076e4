/*
 * node/cli.h: the meshd command table and the entry point of each command.
 *
 * main.c owns the table; each role's file (node/role_<name>.c) implements its command:
 * it loads the config with mesh_cli_load_config(), builds the node and runs it.
 */
#ifndef MESH_CLI_H
#define MESH_CLI_H

#include <stdio.h>

#include "common/config.h"

/** One meshd command: its name, the roles whose options it takes, and its entry point. */
typedef struct mesh_cli_command {
    const char *name;
    unsigned roles;
    int (*run)(int argc, char **argv); /* argv after the command word; returns the exit code */
    const char *summary;
} mesh_cli_command_t;

/**
 * Loads the config of a command (defaults, --config file, environment, flags), validates it
 * for roles and sets up logging. On error prints "meshd COMMAND: origin: what" (and the usage
 * for an unknown flag) and returns -1: the caller exits 2.
 */
int mesh_cli_load_config(mesh_config_t *cfg, const char *command, unsigned roles, int argc,
                         char **argv, mesh_config_list_t *positional);

/** Prints the usage of one command. */
void mesh_cli_command_usage(FILE *out, const char *name);

/** `meshd proxy`: see node/role_proxy.c. */
int mesh_cli_proxy(int argc, char **argv);

/** `meshd gateway`: see node/role_gateway.c. */
int mesh_cli_gateway(int argc, char **argv);

/** `meshd sidecar`: see node/role_sidecar.c. */
int mesh_cli_sidecar(int argc, char **argv);

/** `meshd monitor`: see node/role_monitor.c. */
int mesh_cli_monitor(int argc, char **argv);
/** `meshd monitor status --admin HOST:PORT [--json]` (node/role_admin_cli.c): GET /v1/monitor. */
int mesh_cli_monitor_status(int argc, char **argv);

/** `meshd registry list`: see node/role_registry.c. */
int mesh_cli_registry(int argc, char **argv);

/** `meshd routes` and `meshd members`, clients of a node's admin API: node/role_admin_cli.c. */
int mesh_cli_routes(int argc, char **argv);

/** `meshd probe`: one grpc.health.v1 Check; exit 0 when SERVING (node/role_probe.c). */
int mesh_cli_probe(int argc, char **argv);
int mesh_cli_members(int argc, char **argv);

/** `meshd audit tail`, audit events from Kafka for people: node/role_audit_cli.c. */
int mesh_cli_audit(int argc, char **argv);
/** `meshd audit status --admin HOST:PORT [--json]` (node/role_admin_cli.c): GET /v1/audit. */
int mesh_cli_audit_status(int argc, char **argv);

#endif
