/*
 * common/config.h: meshd's configuration: tables of options, four sources.
 *
 * Every option has one name ("etcd-prefix", or dotted for sections: "breaker.failures") and
 * can be given, from lowest to highest precedence, as its default, in the YAML file
 * (--config FILE; "breaker.failures" is `breaker: {failures: 5}` and "_" and "-" are the same
 * in keys), as an environment variable (MESHD_ + the name upper-cased with "." and "-" turned
 * into "_": MESHD_ETCD_PREFIX), and as a command-line flag (--etcd-prefix V or
 * --etcd-prefix=V). List options accumulate within one source (a YAML sequence, repeated
 * flags, or ";"-separated items in the environment) and a higher source replaces a lower one.
 * Errors name their origin: "file:line: option: what is wrong", "--flag: ...", "MESHD_X: ...".
 *
 * The options every role shares live in mesh_config_t (the core table in config.c). A
 * subsystem declares its own options next to its code: a struct for their values, a table of
 * mesh_config_opt_t pointing into that struct, and a mesh_config_section_t naming both (see
 * policy/breaker_options.c). The binary registers each section it links once at start-up with
 * mesh_config_add_section(), before any config is created; from then on every source, --help,
 * check-config and the errors treat its options exactly like the core ones.
 * mesh_config_init() allocates each registered section's struct (filled with its defaults),
 * mesh_config_destroy() frees it, and the subsystem reads it with mesh_config_section().
 */
#ifndef MESH_CONFIG_H
#define MESH_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/log.h"

#define MESH_CONFIG_MAX_LIST 64

/** How many option sections (besides the core table) a process can register. */
#define MESH_CONFIG_MAX_SECTIONS 16

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
    int64_t conn_window;               /* HTTP/2 connection receive window */
    int64_t upstream_streams_per_conn; /* calls per upstream connection; 0 = server's limit */
    int64_t connect_timeout_ms;
    int64_t keepalive_interval_ms;
    int64_t upstream_stall_ms, upstream_stall_timeout_ms;
    int64_t keepalive_timeout_ms;
    int64_t drain_timeout_ms;
    int health_passthrough;  /* forward grpc.health.v1 to the instances (proxy, gateway) */
    int64_t health_grace_ms; /* NOT_SERVING before the GOAWAY on SIGTERM (proxy, gateway) */

    /* outlier ejection (transport/outlier.h) */
    char *outlier; /* on | off */
    int64_t outlier_consecutive;
    int64_t outlier_base_ejection_ms, outlier_max_ejection_ms;
    int64_t outlier_max_ejection_percent;
    int64_t outlier_failure_pct, outlier_failure_volume, outlier_interval_ms;
    int64_t outlier_sr_stdev, outlier_sr_hosts, outlier_sr_volume; /* transport/outlier_sr.h */

    /* upstream names (transport/upstream_pool.c) */
    int64_t dns_refresh_ms; /* how often a resolved upstream name is looked up again */

    /* registry (etcd) */
    mesh_config_list_t etcd; /* endpoint URLs */
    char *etcd_prefix;
    char *etcd_user;          /* etcd RBAC user (docs/etcd-rbac.md) */
    char *etcd_password_file; /* its password: the file's first line */
    char *etcd_password;      /* not an option: read from etcd_password_file at start */
    char *etcd_cacert;
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

    /* the values of the registered sections (mesh_config_section()), owned by the config */
    void *sections[MESH_CONFIG_MAX_SECTIONS];
    size_t n_sections; /* sections registered when this config was initialized */
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

/** The type of an option's value, and how it is stored in its struct. */
typedef enum mesh_config_opt_type {
    MESH_OPT_STR,   /* any string; char * (NULL when unset) */
    MESH_OPT_ADDR,  /* host:port; char * */
    MESH_OPT_INT,   /* integer within [min, max]; int64_t */
    MESH_OPT_DUR,   /* duration (500ms, 5s, 2m, 1h) within [min, max] ms; int64_t ms */
    MESH_OPT_SIZE,  /* size (4096, 64KiB, 4MiB, 1GiB) within [min, max]; int64_t bytes */
    MESH_OPT_RATIO, /* number in [0, 1]; double */
    MESH_OPT_LIST,  /* repeatable string; mesh_config_list_t */
    MESH_OPT_LEVEL, /* log level; mesh_log_level_t */
    MESH_OPT_ENUM,  /* one of the words in choices; char * */
    MESH_OPT_BOOL,  /* true | false (also yes/no, on/off, 1/0); int. A flag alone means true */
} mesh_config_opt_type_t;

/**
 * An option's own value check, run before the value is parsed and stored, whatever the
 * source. field is the option's storage (for a list: the items kept so far, or to be ignored
 * when replaced is set because this source replaces them), v the new value. Returns 0, or -1
 * with the problem (without the option's name) written into err.
 */
typedef int (*mesh_config_check_fn)(const void *field, int replaced, const char *v, char *err,
                                    size_t errlen);

/** One option. */
typedef struct mesh_config_opt {
    const char *name;            /* "listen", or "section.key" (YAML `section: {key: V}`) */
    mesh_config_opt_type_t type; /* its storage is given with mesh_config_opt_type_t */
    size_t off;                  /* offsetof its value in the section's struct */
    const char *def;             /* default as it would be written in the file, NULL: none */
    unsigned roles;              /* MESH_ROLE_* bits: which commands take it as a flag */
    int64_t min, max;            /* MESH_OPT_INT, _DUR, _SIZE: the accepted range */
    const char *choices;         /* MESH_OPT_ENUM: "a|b|c" */
    const char *help;            /* one line for --help */
    mesh_config_check_fn check;  /* optional */
    const char *sep; /* MESH_OPT_LIST: characters that split one flag or environment value into
                        several items (NULL: a flag is one item, the environment splits at ';') */
} mesh_config_opt_t;

/**
 * A subsystem's options: a table of options whose values live in a struct of `size` bytes,
 * allocated (zeroed, then set to the defaults) for every config. validate, optional, checks
 * rules across the section's options for the roles being run, like mesh_config_validate();
 * on error it writes "option: problem" into err and returns -1.
 */
typedef struct mesh_config_section {
    const char *name; /* for messages: "breaker" */
    const mesh_config_opt_t *opts;
    size_t n_opts;
    size_t size;
    int (*validate)(const void *values, unsigned roles, char *err, size_t errlen);
} mesh_config_section_t;

/**
 * Registers a section (kept by pointer: it must outlive every config). Call at start-up,
 * before the first mesh_config_init(), from one thread; a config made earlier has no values
 * for it. Refuses, logged, with -1: an option name that another option already has (also
 * when only "_", "-" and "." differ, since flags and environment names would clash), a name
 * that is also a section prefix, a bad name or default, a value outside the struct, a section
 * given twice, and more than MESH_CONFIG_MAX_SECTIONS sections.
 */
int mesh_config_add_section(const mesh_config_section_t *section);

/**
 * Registers a top-level YAML key whose value (any structure) another loader reads from the
 * same file, such as `policy:` (policy/policy_load.h): the option loader skips it. Call at
 * start-up like mesh_config_add_section(). Returns 0 or -1 (logged).
 */
int mesh_config_add_block(const char *key);

/**
 * The values of a registered section in cfg, as the section's struct:
 * `const pol_breaker_options_t *o = mesh_config_section(cfg, &pol_breaker_options_section);`.
 * Asking for a section that was not registered before cfg was initialized is a bug: it aborts
 * with a message saying so.
 */
const void *mesh_config_section(const mesh_config_t *cfg, const mesh_config_section_t *section);

/** Fills cfg and the values of every registered section with the options' defaults. */
void mesh_config_init(mesh_config_t *cfg);

/** Frees what cfg owns, the sections' values included. */
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

/**
 * Checks cross-option rules for a role (e.g. the proxy needs a listen address), then each
 * registered section's own (mesh_config_section_t.validate).
 */
int mesh_config_validate(const mesh_config_t *cfg, unsigned role, char *err, size_t errlen);

/** Writes the options of the given roles with their flags, env names and defaults. */
void mesh_config_usage(FILE *out, unsigned roles);

/** Writes the effective configuration as YAML. */
void mesh_config_dump(FILE *out, const mesh_config_t *cfg);

/** Frees a positional list filled by mesh_config_load. */
void mesh_config_list_clear(mesh_config_list_t *l);

#endif
