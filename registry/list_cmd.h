/*
 * registry/list_cmd.h: `meshd registry list --etcd URLS [--prefix P] [--json]`: one range of
 * the prefix, printed as a table (service, methods, instances) or as JSON.
 */
#ifndef REG_LIST_CMD_H
#define REG_LIST_CMD_H

#include <stdio.h>

#include "registry/etcd_client.h"
#include "registry/view_table.h"

/**
 * Ranges prefix (NULL: the default) once with a client built from cfg on a private loop and
 * prints the result to out. Returns 0, or -1 when etcd could not be read (message on err).
 */
int reg_list_run(const etcd_client_cfg_t *cfg, const char *prefix, int json, FILE *out, FILE *err);

/** Prints a table's valid entries to out, as text or JSON. Returns 0 or -1. */
int reg_list_print(const reg_table_t *t, int64_t revision, int json, FILE *out);

#endif
