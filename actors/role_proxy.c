/*
 * actors/role_proxy.c: `meshd proxy`, the gRPC ingress: wiring of config, executor, routing
 * table and the per-worker proxy engines.
 */
#include "actors/cli.h"

int mesh_cli_proxy(int argc, char **argv)
{
    mesh_config_t cfg;
    if (mesh_cli_load_config(&cfg, "proxy", MESH_ROLE_PROXY, argc, argv, NULL) != 0)
        return 2;
    mesh_error("proxy", "the proxy engine is not wired in yet");
    mesh_config_destroy(&cfg);
    return 2;
}
