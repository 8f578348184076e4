/*
 * actors/role_registry.c: `meshd registry list`, a one-shot view of the etcd registry.
 */
#include "actors/cli.h"

int mesh_cli_registry(int argc, char **argv)
{
    mesh_config_t cfg;
    mesh_config_list_t pos = {{0}, 0};
    if (mesh_cli_load_config(&cfg, "registry", MESH_ROLE_ALL, argc, argv, &pos) != 0)
        return 2;
    mesh_error("registry", "registry list is not wired in yet");
    mesh_config_list_clear(&pos);
    mesh_config_destroy(&cfg);
    return 2;
}
