/*
 * registry/list_cmd.h: `meshd registry list --etcd URLS [--etcd-prefix P] [--json]`: one range of
 * the prefix, printed as a table or as JSON: each service with its methods, each instance with
 * its address, node, zone, weight, version, labels and, where they differ from its service's,
 * its methods.
 */
#ifndef REG_LIST_CMD_H
#define REG_LIST_CMD_H

#include <stdio.h>

#include "registry/etcd_client.h"

/**
 * Ranges prefix (NULL: the default) once with a client built from cfg on a private loop and
 * prints the result to out (records that are not instances are reported on err and left out).
 * Returns 0, or -1 when etcd could not be read (message on err).
 */
int reg_list_run(const etcd_client_cfg_t *cfg, const char *prefix, int json, FILE *out, FILE *err);

#endif
