/*
 * tests/integration/registry/etcd_harness.h: real etcd members for tests and benchmarks:
 * started on free loopback ports with their own data dirs, killed by PID (SIGKILL) at the end
 * (also on failure); etcdctl; a TCP proxy on the loop that can cut connections; waiting for a
 * condition with a deadline while the loop runs.
 */
#ifndef REG_ETCD_HARNESS_H
#define REG_ETCD_HARNESS_H

#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

/** One member. */
typedef struct etcd_member {
    pid_t pid;
    int client_port;
    int peer_port;
    char name[16];
    char dir[512];
    char url[64];
} etcd_member_t;

/** A cluster of 1..3 members under one temp folder. */
typedef struct etcd_cluster {
    etcd_member_t m[3];
    int n;
    char root[256];
    char endpoints[256];
    char initial_cluster[512];
    char tls_dir[256]; /* set by h_tls_make() before start: https with client certificates */
} etcd_cluster_t;

/**
 * Creates a CA, a server certificate for 127.0.0.1 and a client certificate under a temp folder
 * (ca.crt, server.crt/key, client.crt/key) with openssl; the next h_cluster_start() serves
 * https and requires client certificates. Returns the folder or NULL.
 */
const char *h_tls_make(void);

/** A free loopback TCP port. */
int h_free_port(void);

/** Creates a temp folder (/tmp/<tag>-XXXXXX) removed at exit; returns its path. */
const char *h_tmpdir(const char *tag);

/** Starts an n-member cluster and waits until every member reports healthy. 0 or -1. */
int h_cluster_start(etcd_cluster_t *c, int n);

/** Same, serving https with the certificates made by h_tls_make() in tls_dir. */
int h_cluster_start_tls(etcd_cluster_t *c, int n, const char *tls_dir);

/** (Re)starts member i on its data dir. Does not wait. */
int h_member_start(etcd_cluster_t *c, int i);

/** SIGKILLs member i and reaps it. */
void h_member_kill(etcd_cluster_t *c, int i);

/** 1 when GET url/health says healthy. */
int h_member_healthy(const char *url);

/** Index of the current leader, or -1. */
int h_cluster_leader(etcd_cluster_t *c);

/** Runs etcdctl (API 3) against endpoints with the given arguments (NULL-terminated). */
int h_etcdctl(const char *endpoints, ...);

/** Runs the loop until pred(ud) is true or timeout_ms passed; returns 1 if pred held. */
int h_wait(uv_loop_t *loop, int (*pred)(void *), void *ud, uint64_t timeout_ms);

/** Runs the loop for ms milliseconds (lets background work happen; not a condition wait). */
void h_run_for(uv_loop_t *loop, uint64_t ms);

/** Records a PID to SIGKILL at exit (child processes a test starts). */
void h_track_pid(pid_t pid);

/** SIGKILLs and reaps a tracked PID now. */
void h_kill_pid(pid_t pid);

/** Milliseconds, monotonic. */
double h_now_ms(void);

typedef struct h_proxy h_proxy_t;

/** A TCP proxy on loop from a free port to 127.0.0.1:target_port. */
h_proxy_t *h_proxy_start(uv_loop_t *loop, int target_port);

/** The proxy's listening port. */
int h_proxy_port(const h_proxy_t *p);

/** Closes every proxied connection and stops listening (connections are refused). */
void h_proxy_cut(h_proxy_t *p);

/** Listens again on the same port. */
int h_proxy_restore(h_proxy_t *p);

#endif
