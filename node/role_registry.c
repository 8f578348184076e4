/*
 * node/role_registry.c: `meshd registry list [--json]`, a one-shot view of the etcd
 * registry: services, their methods and instances, as a table or as JSON.
 */
#include <stdlib.h>
#include <string.h>

#include "node/cli.h"
#include "registry/list_cmd.h"

/* Joins a list option's items with commas (the etcd client's endpoint syntax). */
static char *join(const mesh_config_list_t *l)
{
    size_t len = 1;
    for (size_t i = 0; i < l->n; i++)
        len += strlen(l->items[i]) + 1;
    char *s = calloc(1, len);
    for (size_t i = 0; s && i < l->n; i++) {
        if (i)
            strcat(s, ",");
        strcat(s, l->items[i]);
    }
    return s;
}

int mesh_cli_registry(int argc, char **argv)
{
    /* --json is this command's own flag, not a config option */
    int json = 0;
    char **args = calloc((size_t)argc + 1, sizeof(*args));
    int n = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else
            args[n++] = argv[i];
    }
    mesh_config_t cfg;
    mesh_config_list_t pos = {{0}, 0};
    int rc = 2;
    if (mesh_cli_load_config(&cfg, "registry", MESH_ROLE_TOOL, n, args, &pos) != 0) {
        mesh_config_list_clear(&pos);
        free(args);
        return 2;
    }
    if (pos.n != 1 || strcmp(pos.items[0], "list") != 0) {
        fprintf(stderr, "usage: meshd registry list --etcd URL[,URL...] [--etcd-prefix P] "
                        "[--json]\n");
        goto out;
    }
    if (cfg.etcd.n == 0) {
        fprintf(stderr, "meshd registry list: --etcd: needs at least one endpoint URL\n");
        goto out;
    }
    char *endpoints = join(&cfg.etcd);
    etcd_client_cfg_t ec = {
        .endpoints = endpoints,
        .username = cfg.etcd_user,
        .password = cfg.etcd_password,
        .ca_file = cfg.etcd_cacert,
        .cert_file = cfg.etcd_cert,
        .key_file = cfg.etcd_key,
    };
    rc = reg_list_run(&ec, cfg.etcd_prefix, json, stdout, stderr) == 0 ? 0 : 1;
    free(endpoints);
out:
    mesh_config_list_clear(&pos);
    mesh_config_destroy(&cfg);
    free(args);
    return rc;
}
