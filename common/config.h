/*
 * common/config.h: meshd's configuration: one table of options, four sources.
 *
 * Every option has one name ("etcd-prefix", or dotted for sections: "breaker.failures") and
 * can be given, from lowest to highest precedence, as its default, in the YAML file
 * (--config FILE; "breaker.failures" is `breaker: {failures: 5}` and "_" and "-" are the same
 * in keys), as an environment variable (MESHD_ + the name upper-cased with "." and "-" turned
 * into "_": MESHD_ETCD_PREFIX), and as a command-line flag (--etcd-prefix V or
 * --etcd-prefix=V). List options accumulate within one source (a YAML sequence, repeated
 * flags, or ";"-separated items in the environment) and a higher source replaces a lower one.
 * Errors name their origin: "file:line: option: what is wrong", "--flag: ...", "MESHD_X: ...".
 */
#ifndef MESH_CONFIG_H
#define MESH_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/log.h"

#define MESH_CONFIG_MAX_LIST 64

/** A list option's values (owned by the config). */
typedef struct mesh_config_list {
    char *items[MESH_CONFIG_MAX_LIST];
    size_t n;
} mesh_config_list_t;

/** The effective configuration of a node. Durations are in milliseconds, sizes in bytes. */
typedef struct mesh_config {
    char *config_file; /* --config, NULL when none */
    char *node;        /* node id, defaults to the host name */
    mesh_log_level_t log_level;
    char *log_format; /* auto | json | text */

    /* data plane (proxy, sidecar, gateway) */
    char *listen;                     /* host:port */
    int workers;                      /* worker loops; 0 = one per core */
    mesh_config_list_t static_routes; /* "SERVICE=HOST:PORT[,HOST:PORT...]" */
    int64_t max_concurrent_streams;
    int64_t max_header_list_size;
    int64_t stream_buffer;             /* bytes buffered per stream and direction */
    int64_t upstream_streams_per_conn; /* calls per upstream connection; 0 = server's limit */
    int64_t connect_timeout_ms;
    int64_t keepalive_interval_ms;
    int64_t keepalive_timeout_ms;
    int64_t drain_timeout_ms;

    /* upstream names (transport/upstream_pool.c) */
    int64_t dns_refresh_ms; /* how often a resolved upstream name is looked up again */

    /* registry (etcd) */
    mesh_config_list_t etcd; /* endpoint URLs */
    char *etcd_prefix;
    char *etcd_username;
    char *etcd_password;
    char *etcd_ca;
    char *etcd_cert;
    char *etcd_key;
    char *snapshot_file; /* last registry view, for restarts during an etcd outage */
    int64_t lease_ttl_ms;

    /* sidecar */
    char *app;          /* the local gRPC server, host:port */
    char *advertise;    /* address registered in etcd; defaults to listen */
    char *probe_listen; /* HTTP probes (/livez, /readyz) */
    char *descriptor_set;
    int64_t health_interval_ms;
    int64_t health_timeout_ms;
    int64_t ready_failures;

    /* sidecar registration: written into the `meshd` object of the instance's etcd records */
    char *zone;                /* NULL: no zone */
    int64_t weight;            /* 1..1000000 */
    char *version;             /* release label (e.g. for canaries), NULL: none */
    mesh_config_list_t labels; /* "KEY=VALUE" */

    /* circuit breaker (sidecar, in front of the app) */
    int64_t breaker_failures;
    double breaker_failure_ratio;
    int64_t breaker_window_ms;
    int64_t breaker_min_calls;
    int64_t breaker_max_concurrent;
    int64_t breaker_open_ms;
    int64_t breaker_half_open_calls;
} mesh_config_t;

/** Role bits: which roles an option is meant for (for --help). */
enum {
    MESH_ROLE_PROXY = 1,
    MESH_ROLE_SIDECAR = 2,
    MESH_ROLE_GATEWAY = 4,
    MESH_ROLE_MONITOR = 8,
    MESH_ROLE_TOOL = 16, /* one-shot commands such as `registry list` */
    MESH_ROLE_ALL = 31,
};

/** Fills cfg with every option's default. */
void mesh_config_init(mesh_config_t *cfg);

/** Frees what cfg owns. */
void mesh_config_destroy(mesh_config_t *cfg);

/**
 * Loads cfg from all sources: defaults, then the YAML file named by --config (or MESHD_CONFIG),
 * then the environment (envp, NULL for none), then the flags in argv[0..argc). Flags that are
 * not options (positional words) are an error unless positional is non-NULL, in which case
 * they are collected there. On error returns -1 and writes "origin: option: what" into err.
 * roles limits which options are accepted as flags; file and environment accept them all.
 */
int mesh_config_load(mesh_config_t *cfg, int argc, char **argv, char **envp, unsigned roles,
                     mesh_config_list_t *positional, char *err, size_t errlen);

/** Loads only a YAML file into cfg (used by check-config). */
int mesh_config_load_file(mesh_config_t *cfg, const char *path, char *err, size_t errlen);

/** Checks cross-option rules for a role (e.g. the proxy needs a listen address). */
int mesh_config_validate(const mesh_config_t *cfg, unsigned role, char *err, size_t errlen);

/** Writes the options of the given roles with their flags, env names and defaults. */
void mesh_config_usage(FILE *out, unsigned roles);

/** Writes the effective configuration as YAML. */
void mesh_config_dump(FILE *out, const mesh_config_t *cfg);

/** Frees a positional list filled by mesh_config_load. */
void mesh_config_list_clear(mesh_config_list_t *l);

#endif
