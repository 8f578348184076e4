/*
 * audit/audit_options.h: the audit options (audit.*), a config section of their own
 * (common/config.h), and what they resolve to for a node.
 *
 *   --audit-kafka BROKERS        bootstrap brokers (host:port[,host:port]): records go to Kafka
 *                                through the disk spool
 *   --audit-topic T              the topic (default meshd.audit)
 *   --audit-kafka-opt K=V        any librdkafka property (repeatable): security.protocol=SASL_SSL,
 *                                sasl.mechanism=..., ssl.ca.location=...
 *   --audit-spool DIR            the spool's folder (default /var/lib/meshd/audit/{node})
 *   --audit-spool-max SIZE       its size bound (default 256MiB)
 *   --audit-spool-policy P       drop-newest (default) | drop-oldest, when the spool is full
 *   --audit-file PATH            without Kafka: JSON lines in PATH (default
 *                                /var/log/meshd/{node}.audit.jsonl; "off": no file)
 *   --audit-file-max SIZE, --audit-file-keep N   its rotation (64MiB, 5 files)
 *   --audit-test-rate N          tests and benchmarks only: N synthetic events per second
 *
 * "{node}" in a path is replaced by the node's name (characters other than letters, digits,
 * '.', '_' and '-' become '_'). Which sink a node uses: Kafka when audit.kafka is set; else the
 * file; the default file is used only when its folder exists and it can be opened (a node does
 * not create /var/log/meshd by itself): otherwise audit is off, and the node says so once.
 */
#ifndef AUDIT_OPTIONS_H
#define AUDIT_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "audit/audit_actor.h"
#include "common/config.h"

#define AUDIT_DEFAULT_SPOOL "/var/lib/meshd/audit/{node}"
#define AUDIT_DEFAULT_FILE  "/var/log/meshd/{node}.audit.jsonl"

/** The values of the audit.* options. */
typedef struct audit_options {
    char *kafka, *topic, *spool, *spool_policy, *file;
    mesh_config_list_t kafka_opts;
    int64_t spool_max, file_max, file_keep;
    int64_t test_rate; /* --audit-test-rate: synthetic events per second (audit/audit_load.h) */
} audit_options_t;

/** The audit.* section; register it once with mesh_config_add_section(). */
extern const mesh_config_section_t audit_options_section;

static inline const audit_options_t *audit_options(const mesh_config_t *cfg)
{
    return mesh_config_section(cfg, &audit_options_section);
}

/** What the options say for one node: the mode and its expanded paths. */
typedef struct audit_resolved {
    audit_mode_t mode;
    int file_is_default; /* the file is the default path (not given) */
    char spool[4096];
    char file[4096];
} audit_resolved_t;

/**
 * Resolves cfg's audit options for node (its name). Returns 0, or -1 with the reason in err
 * (a path too long once expanded).
 */
int audit_options_resolve(const mesh_config_t *cfg, const char *node, audit_resolved_t *out,
                          char *err, size_t errlen);

/** Expands "{node}" in pattern into out (see above). 0, or -1 when out is too small. */
int audit_expand_path(const char *pattern, const char *node, char *out, size_t cap);

#endif
