/*
 * registry/etcd_auth_check.h: the etcd credentials of a node, checked once at start.
 *
 * `--etcd-user U --etcd-password-file F` (a password never appears on the command line, in the
 * environment of `ps` or in logs): etcd_password_read reads F; etcd_auth_check asks etcd's
 * /v3/auth/authenticate once, blocking for at most a few seconds, so a wrong password stops
 * the node at start (exit 2, the user and etcd's reason in the message) instead of failing
 * every later request. An etcd that does not answer is not an error at start: the node runs
 * on its snapshot and gossip until etcd is back (docs/etcd-rbac.md).
 */
#ifndef ETCD_AUTH_CHECK_H
#define ETCD_AUTH_CHECK_H

#include <stddef.h>

#include "registry/etcd_client.h"

/** Reads a password file: its first line without the line end (an empty file is an error).
 *  0 with *out malloc'd, or -1 with err naming the file and the reason. */
int etcd_password_read(const char *path, char **out, char *err, size_t errlen);

/** Outcomes of etcd_auth_check. */
enum {
    ETCD_AUTH_CHECK_OK = 0,
    ETCD_AUTH_CHECK_REFUSED = -1,   /* etcd refused the credentials: err says why */
    ETCD_AUTH_CHECK_UNREACHED = -2, /* no endpoint answered in time: err says so */
};

/** Authenticates cfg's user with cfg's password once against cfg's endpoints (blocking, on a
 *  private loop). ETCD_AUTH_CHECK_* with err set unless OK. */
int etcd_auth_check(const etcd_client_cfg_t *cfg, char *err, size_t errlen);

#endif
