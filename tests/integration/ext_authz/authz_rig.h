/*
 * tests/integration/ext_authz/authz_rig.h: what the ext_authz, http_fetch and jwks_fetch
 * integration tests share: the Python test server (tests/peers/authz_server.py) started on
 * free ports and stopped by PID at exit, a closed port, and running a loop until a condition
 * holds or a generous deadline passes.
 */
#ifndef AUTHZ_RIG_H
#define AUTHZ_RIG_H

#include <stddef.h>
#include <uv.h>

/** Ports of the running test server. */
typedef struct authz_rig {
    int http; /* HTTP: /check, /echo, /status/N, /big/N, /slow/MS, /jwks, /_stats, ... */
    int grpc; /* envoy.service.auth.v3.Authorization */
    int hang; /* accepts and never answers */
} authz_rig_t;

/** Starts the server (argv[1] of the test: the path of authz_server.py, argv[2]: the proto
 *  directory) and fills *rig; exits the test when it does not come up in 30 s. */
void authz_rig_start(authz_rig_t *rig, const char *server_py, const char *proto_dir);

/** A loopback port nothing listens on (bound, then closed). */
int authz_rig_closed_port(void);

/** Runs loop until *flag is nonzero; returns 0, or -1 after deadline_ms. */
int authz_rig_run_until(uv_loop_t *loop, const int *flag, unsigned deadline_ms);

/** GET http://127.0.0.1:port/path with libcurl on a fresh loop; the body (malloc'd) or NULL. */
char *authz_rig_get(int port, const char *path);

/** POST body to http://127.0.0.1:port/path; exits the test unless it answers 200. */
void authz_rig_post(int port, const char *path, const char *body);

/** The integer value of "key" in the server's /_stats. */
long authz_rig_stat(const authz_rig_t *rig, const char *key);

#endif
