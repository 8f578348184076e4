/*
 * audit/audit_options.c: the table of the audit.* options and what they resolve to (see
 * audit/audit_options.h).
 */
#include "audit/audit_options.h"

#include <stdio.h>
#include <string.h>

#include "audit/kafka_sink.h"

#define P    (MESH_ROLE_PROXY | MESH_ROLE_SIDECAR | MESH_ROLE_GATEWAY | MESH_ROLE_MONITOR)
#define F(x) offsetof(audit_options_t, x)

/* audit.kafka-opt: KEY=VALUE that librdkafka accepts, checked the way the sink applies it. */
static int check_kafka_opt(const void *field, int replaced, const char *v, char *err, size_t errlen)
{
    (void)field, (void)replaced;
    return audit_kafka_check_opt(v, err, errlen);
}

static const mesh_config_opt_t opts[] = {
    {.name = "audit.kafka",
     .type = MESH_OPT_STR,
     .off = F(kafka),
     .roles = P,
     .help = "Kafka brokers HOST:PORT[,HOST:PORT] for audit events (spooled to disk first)"},
    {.name = "audit.topic",
     .type = MESH_OPT_STR,
     .off = F(topic),
     .def = AUDIT_KAFKA_TOPIC,
     .roles = P,
     .help = "Kafka topic of the audit events"},
    {.name = "audit.kafka-opt",
     .type = MESH_OPT_LIST,
     .off = F(kafka_opts),
     .roles = P,
     .help = "a librdkafka property KEY=VALUE for the audit producer (repeatable)",
     .check = check_kafka_opt},
    {.name = "audit.spool",
     .type = MESH_OPT_STR,
     .off = F(spool),
     .def = AUDIT_DEFAULT_SPOOL,
     .roles = P,
     .help = "folder of the audit spool (records wait there for Kafka); {node}: the node name"},
    {.name = "audit.spool-max",
     .type = MESH_OPT_SIZE,
     .off = F(spool_max),
     .def = "256MiB",
     .roles = P,
     .min = 1 << 20,
     .max = (int64_t)1 << 40,
     .help = "size bound of the audit spool; past it the spool policy drops records (counted)"},
    {.name = "audit.spool-policy",
     .type = MESH_OPT_ENUM,
     .off = F(spool_policy),
     .def = "drop-newest",
     .roles = P,
     .choices = "drop-newest|drop-oldest",
     .help = "when the audit spool is full: drop-newest | drop-oldest"},
    {.name = "audit.file",
     .type = MESH_OPT_STR,
     .off = F(file),
     .def = AUDIT_DEFAULT_FILE,
     .roles = P,
     .help = "without --audit-kafka: audit events as JSON lines in this file ('off': none)"},
    {.name = "audit.file-max",
     .type = MESH_OPT_SIZE,
     .off = F(file_max),
     .def = "64MiB",
     .roles = P,
     .min = 0,
     .max = (int64_t)1 << 40,
     .help = "rotate the audit file past this size (0: never)"},
    {.name = "audit.file-keep",
     .type = MESH_OPT_INT,
     .off = F(file_keep),
     .def = "5",
     .roles = P,
     .min = 0,
     .max = AUDIT_JSONL_KEEP_MAX,
     .help = "rotated audit files kept"},
    {.name = "audit.test-rate",
     .type = MESH_OPT_INT,
     .off = F(test_rate),
     .def = "0",
     .roles = P,
     .min = 0,
     .max = 1000000,
     .help = "TESTS ONLY: emit this many synthetic config_rejected events per second"},
};

static int file_off(const char *f)
{
    return !f || !*f || !strcmp(f, "off");
}

/* A legal Kafka topic name: 1..249 of [a-zA-Z0-9._-], not "." or "..". */
static int topic_ok(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n > 249 || !strcmp(t, ".") || !strcmp(t, ".."))
        return 0;
    for (const char *p = t; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '-'))
            return 0;
    return 1;
}

static int validate(const void *values, unsigned roles, char *err, size_t errlen)
{
    (void)roles;
    const audit_options_t *o = values;
    int kafka = o->kafka && *o->kafka;
    if (!kafka && o->kafka_opts.n) {
        snprintf(err, errlen, "audit.kafka-opt: needs audit.kafka (the brokers)");
        return -1;
    }
    if (o->topic && !topic_ok(o->topic)) {
        snprintf(err, errlen,
                 "audit.topic: '%s' is not a Kafka topic name (1 to 249 of a-z A-Z 0-9 . _ -)",
                 o->topic);
        return -1;
    }
    if (kafka && !file_off(o->file) && strcmp(o->file, AUDIT_DEFAULT_FILE) != 0) {
        snprintf(err, errlen,
                 "audit.file: audit events go to Kafka (audit.kafka) through the spool; give "
                 "one of audit.kafka and audit.file");
        return -1;
    }
    if (kafka && (!o->spool || !*o->spool)) {
        snprintf(err, errlen, "audit.spool: Kafka needs a spool folder");
        return -1;
    }
    return 0;
}

const mesh_config_section_t audit_options_section = {
    .name = "audit",
    .opts = opts,
    .n_opts = sizeof(opts) / sizeof(opts[0]),
    .size = sizeof(audit_options_t),
    .validate = validate,
};

int audit_expand_path(const char *pattern, const char *node, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = pattern; *p;) {
        if (!strncmp(p, "{node}", 6)) {
            for (const char *q = node && *node ? node : "meshd"; *q; q++) {
                char c = *q;
                int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                         (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
                if (n + 1 >= cap)
                    return -1;
                out[n++] = ok ? c : '_';
            }
            p += 6;
            continue;
        }
        if (n + 1 >= cap)
            return -1;
        out[n++] = *p++;
    }
    if (n >= cap)
        return -1;
    out[n] = '\0';
    return 0;
}

int audit_options_resolve(const mesh_config_t *cfg, const char *node, audit_resolved_t *out,
                          char *err, size_t errlen)
{
    const audit_options_t *o = audit_options(cfg);
    memset(out, 0, sizeof(*out));
    if (o->kafka && *o->kafka) {
        out->mode = AUDIT_MODE_KAFKA;
        if (audit_expand_path(o->spool, node, out->spool, sizeof(out->spool)) != 0) {
            snprintf(err, errlen, "audit.spool: too long");
            return -1;
        }
        return 0;
    }
    if (file_off(o->file)) {
        out->mode = AUDIT_MODE_OFF;
        return 0;
    }
    out->mode = AUDIT_MODE_FILE;
    out->file_is_default = strcmp(o->file, AUDIT_DEFAULT_FILE) == 0;
    if (audit_expand_path(o->file, node, out->file, sizeof(out->file)) != 0) {
        snprintf(err, errlen, "audit.file: too long");
        return -1;
    }
    return 0;
}
