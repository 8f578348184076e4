/*
 * node/role_audit_cli.c: `meshd audit tail`, the audit events in a Kafka topic for people (and
 * the dispatch of `meshd audit status`, a client of the admin API in node/role_admin_cli.c).
 *
 *   meshd audit tail --kafka BROKERS [--topic T] [--follow] [--json] [--from-beginning]
 *                    [--last N] [--timeout SECONDS] [--kafka-opt KEY=VALUE]...
 *
 * A librdkafka consumer without a group: it reads every partition of the topic (default
 * meshd.audit) from the beginning (--from-beginning) or the last N records of each (--last,
 * default 10), prints one aligned line per event (audit/tail_format.h) or, with --json, each
 * record as it is, one per line, and exits once it reached the end of every partition; with
 * --follow it keeps printing new events until SIGINT or SIGTERM. Order is per partition (per
 * service, the Kafka key); partitions interleave. --kafka-opt passes any librdkafka property
 * (security.protocol, sasl.*, ssl.*), as the node's --audit-kafka-opt does.
 *
 * Nothing waits forever: the topic's metadata must come within --timeout (default 10 s), and
 * without --follow the read ends with an error when no record or end of partition arrived for
 * that long. A broker address that does not answer and a topic that does not exist are errors
 * that say so (the topic is looked up in the list of all topics, which never creates it).
 *
 * librdkafka is opened on first use (common/kafka_lib.h): when it is missing, the command says
 * so, with the package to install (librdkafka1).
 *
 * Exit codes: 0 shown; 1 librdkafka missing, Kafka unreachable, no such topic or the read broke
 * off; 2 bad flags.
 */
#include <errno.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit/tail_format.h"
#include "common/kafka_lib.h"
#include "node/cli.h"

#define DEFAULT_TOPIC "meshd.audit"

static volatile sig_atomic_t stop_requested;

/* librdkafka (common/kafka_lib.h), opened by tail() before anything else here runs. */
static const mesh_kafka_t *K;

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* The last error librdkafka reported (served by rd_kafka_poll on this thread). */
static char last_error[512];

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    snprintf(last_error, sizeof(last_error), "%s", reason);
}

static int usage(void)
{
    fprintf(stderr,
            "usage: meshd audit tail --kafka BROKERS [--topic T] [--follow] [--json]\n"
            "                        [--from-beginning] [--last N] [--timeout SECONDS]\n"
            "                        [--kafka-opt KEY=VALUE]...\n\n"
            "Prints the audit events in a Kafka topic (default " DEFAULT_TOPIC "): one line\n"
            "per event, or with --json each record as it is. Without --from-beginning it\n"
            "starts at the last N records of each partition (--last, default 10). Without\n"
            "--follow it exits at the end of the topic.\n\n"
            "       meshd audit status --admin HOST:PORT [--json]\n\n"
            "Shows a running node's audit pipeline (GET /v1/audit): sink, Kafka state, spool,\n"
            "drops, last error.\n");
    return 2;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct {
    const char *brokers, *topic;
    int follow, json, from_beginning;
    long last;
    double timeout_s;
    const char *opts[64];
    int nopts;
} tail_args_t;

/* Parses the flags after `tail`; 0, or 2 after printing what is wrong. */
static int parse_args(tail_args_t *a, int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        const char *f = argv[i];
        const char *eq = strncmp(f, "--", 2) == 0 ? strchr(f, '=') : NULL;
        char name[32];
        const char *val = NULL;
        if (eq && (size_t)(eq - f) < sizeof(name)) {
            memcpy(name, f, (size_t)(eq - f));
            name[eq - f] = '\0';
            f = name;
            val = eq + 1;
        }
        if (strcmp(f, "--follow") == 0 || strcmp(f, "-f") == 0) {
            a->follow = 1;
            continue;
        }
        if (strcmp(f, "--json") == 0) {
            a->json = 1;
            continue;
        }
        if (strcmp(f, "--from-beginning") == 0) {
            a->from_beginning = 1;
            continue;
        }
        int takes = strcmp(f, "--kafka") == 0 || strcmp(f, "--topic") == 0 ||
                    strcmp(f, "--last") == 0 || strcmp(f, "--timeout") == 0 ||
                    strcmp(f, "--kafka-opt") == 0;
        if (!takes) {
            fprintf(stderr, "meshd audit tail: unknown argument '%s'\n", argv[i]);
            return usage();
        }
        if (!val) {
            if (i + 1 >= argc) {
                fprintf(stderr, "meshd audit tail: %s needs a value\n", f);
                return usage();
            }
            val = argv[++i];
        }
        char *end;
        if (strcmp(f, "--kafka") == 0) {
            a->brokers = val;
        } else if (strcmp(f, "--topic") == 0) {
            a->topic = val;
        } else if (strcmp(f, "--last") == 0) {
            errno = 0;
            a->last = strtol(val, &end, 10);
            if (errno || end == val || *end || a->last < 0 || a->last > 1000000000) {
                fprintf(stderr, "meshd audit tail: --last: '%s' is not a count\n", val);
                return usage();
            }
        } else if (strcmp(f, "--timeout") == 0) {
            a->timeout_s = strtod(val, &end);
            if (end == val || *end || !(a->timeout_s > 0) || a->timeout_s > 86400) {
                fprintf(stderr, "meshd audit tail: --timeout: '%s' is not seconds\n", val);
                return usage();
            }
        } else {
            if (!strchr(val, '=') || val[0] == '=' ||
                a->nopts == (int)(sizeof(a->opts) / sizeof(a->opts[0]))) {
                fprintf(stderr, "meshd audit tail: --kafka-opt: '%s' is not KEY=VALUE\n", val);
                return usage();
            }
            a->opts[a->nopts++] = val;
        }
    }
    if (!a->brokers || !*a->brokers) {
        fprintf(stderr, "meshd audit tail: --kafka BROKERS is required (host:port[,...])\n");
        return usage();
    }
    if (!*a->topic) {
        fprintf(stderr, "meshd audit tail: --topic: empty\n");
        return usage();
    }
    return 0;
}

static int set(rd_kafka_conf_t *conf, const char *k, const char *v)
{
    char err[512];
    if (K->conf_set(conf, k, v, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "meshd audit tail: %s=%s: %s\n", k, v, err);
        return -1;
    }
    return 0;
}

/* The topic's partition count from the list of all topics, or -1 after saying why. */
static int find_topic(rd_kafka_t *rk, const tail_args_t *a)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = K->metadata(rk, 1, NULL, &md, (int)(a->timeout_s * 1000));
    if (e) {
        K->poll(rk, 0); /* serve the error callback: the last transport error */
        fprintf(stderr, "meshd audit tail: cannot reach Kafka at %s within %g s: %s\n", a->brokers,
                a->timeout_s, last_error[0] ? last_error : K->err2str(e));
        return -1;
    }
    int n = -1;
    for (int i = 0; i < md->topic_cnt; i++) {
        const rd_kafka_metadata_topic_t *t = &md->topics[i];
        if (strcmp(t->topic, a->topic) != 0)
            continue;
        if (t->err) {
            fprintf(stderr, "meshd audit tail: topic '%s' at %s: %s\n", a->topic, a->brokers,
                    K->err2str(t->err));
        } else if (t->partition_cnt == 0) {
            fprintf(stderr, "meshd audit tail: topic '%s' at %s has no partitions\n", a->topic,
                    a->brokers);
        } else {
            n = t->partition_cnt;
        }
        K->metadata_destroy(md);
        return n;
    }
    fprintf(stderr, "meshd audit tail: topic '%s' does not exist at %s", a->topic, a->brokers);
    int shown = 0;
    for (int i = 0; i < md->topic_cnt; i++) {
        if (md->topics[i].topic[0] == '_')
            continue; /* internal topics */
        fprintf(stderr, "%s%s", shown ? ", " : " (topics there: ", md->topics[i].topic);
        shown++;
    }
    fprintf(stderr, "%s\n", shown ? ")" : " (no topics there)");
    K->metadata_destroy(md);
    return -1;
}

/* Prints one record; counts what is not an audit record. */
static void show(const tail_args_t *a, const rd_kafka_message_t *m, unsigned long *bad)
{
    const char *p = m->payload ? (const char *)m->payload : "";
    if (a->json) {
        fwrite(p, 1, m->len, stdout);
        if (!m->len || p[m->len - 1] != '\n')
            putchar('\n');
        return;
    }
    json_error_t err;
    json_t *o = json_loadb(p, m->len, 0, &err);
    if (!json_is_object(o)) {
        fprintf(stderr, "meshd audit tail: partition %d offset %lld: not a JSON record (%s)\n",
                (int)m->partition, (long long)m->offset, o ? "not an object" : err.text);
        (*bad)++;
    } else {
        audit_tail_print(stdout, o);
    }
    json_decref(o);
}

static int tail(const tail_args_t *a)
{
    char err[512];
    if (!(K = mesh_kafka(err, sizeof(err)))) {
        fprintf(stderr, "meshd audit tail: %s\n", err);
        return 1;
    }
    rd_kafka_conf_t *conf = K->conf_new();
    /* The high-level consumer needs a group even for assign(); nothing joins it or commits
     * (a cluster with group ACLs may want --kafka-opt group.id=ALLOWED). */
    char group[64];
    snprintf(group, sizeof(group), "meshd-audit-tail-%ld", (long)getpid());
    if (set(conf, "bootstrap.servers", a->brokers) || set(conf, "client.id", "meshd-audit-tail") ||
        set(conf, "group.id", group) || set(conf, "enable.auto.commit", "false") ||
        set(conf, "enable.auto.offset.store", "false") ||
        set(conf, "enable.partition.eof", "true") ||
        set(conf, "allow.auto.create.topics", "false") || set(conf, "log_level", "0")) {
        K->conf_destroy(conf);
        return 2;
    }
    for (int i = 0; i < a->nopts; i++) {
        const char *eq = strchr(a->opts[i], '=');
        char key[256];
        if ((size_t)(eq - a->opts[i]) >= sizeof(key)) {
            fprintf(stderr, "meshd audit tail: --kafka-opt: key too long in '%s'\n", a->opts[i]);
            K->conf_destroy(conf);
            return 2;
        }
        memcpy(key, a->opts[i], (size_t)(eq - a->opts[i]));
        key[eq - a->opts[i]] = '\0';
        if (set(conf, key, eq + 1)) {
            K->conf_destroy(conf);
            return 2;
        }
    }
    K->conf_set_error_cb(conf, on_error);
    rd_kafka_t *rk = K->create(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (!rk) {
        fprintf(stderr, "meshd audit tail: %s\n", err);
        return 1;
    }
    K->poll_set_consumer(rk);

    int rc = 1;
    int nparts = find_topic(rk, a);
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (nparts < 0)
        goto out;
    parts = K->partitions_new(nparts);
    long last = a->last >= 0 ? a->last : 10;
    for (int p = 0; p < nparts; p++)
        K->partitions_add(parts, a->topic, p)->offset = a->from_beginning
                                                            ? RD_KAFKA_OFFSET_BEGINNING
                                                        : last == 0 ? RD_KAFKA_OFFSET_END
                                                                    : RD_KAFKA_OFFSET_TAIL(last);
    rd_kafka_resp_err_t e = K->assign(rk, parts);
    if (e) {
        fprintf(stderr, "meshd audit tail: assign %s: %s\n", a->topic, K->err2str(e));
        goto out;
    }
    if (!a->json)
        audit_tail_print_header(stdout);

    char *at_end = calloc((size_t)nparts, 1);
    int ended = 0;
    unsigned long shown = 0, bad = 0;
    double idle_since = now_s();
    while (!stop_requested) {
        rd_kafka_message_t *m = K->consumer_poll(rk, 200);
        if (!m) {
            if (!a->follow && now_s() - idle_since > a->timeout_s) {
                fprintf(stderr,
                        "meshd audit tail: no record and no end of the topic from %s for %g "
                        "s%s%s\n",
                        a->brokers, a->timeout_s, last_error[0] ? ": " : "", last_error);
                goto out_loop;
            }
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (m->partition >= 0 && m->partition < nparts && !at_end[m->partition]) {
                at_end[m->partition] = 1;
                ended++;
            }
            idle_since = now_s();
            K->message_destroy(m);
            if (!a->follow && ended == nparts)
                break;
            continue;
        }
        if (m->err) {
            int fatal = m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                        m->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
                        m->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED;
            fprintf(stderr, "meshd audit tail: %s\n", K->message_errstr(m));
            K->message_destroy(m);
            if (fatal)
                goto out_loop;
            continue;
        }
        idle_since = now_s();
        show(a, m, &bad);
        shown++;
        if (m->partition >= 0 && m->partition < nparts && at_end[m->partition]) {
            at_end[m->partition] = 0; /* --follow: new records after the end */
            ended--;
        }
        K->message_destroy(m);
        fflush(stdout);
    }
    rc = 0;
    if (!a->json && isatty(fileno(stderr)))
        fprintf(stderr, "%lu event%s\n", shown, shown == 1 ? "" : "s");
    if (bad)
        fprintf(stderr, "meshd audit tail: %lu record%s were not JSON objects\n", bad,
                bad == 1 ? "" : "s");
out_loop:
    free(at_end);
out:
    fflush(stdout);
    if (parts)
        K->partitions_destroy(parts);
    K->consumer_close(rk);
    K->destroy(rk);
    return rc;
}

int mesh_cli_audit(int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "status") == 0)
        return mesh_cli_audit_status(argc - 1, argv + 1);
    if (argc < 1 || strcmp(argv[0], "tail") != 0) {
        fprintf(stderr, "meshd audit: expected a subcommand: tail, status\n");
        return usage();
    }
    tail_args_t a = {.topic = DEFAULT_TOPIC, .last = -1, .timeout_s = 10};
    int rc = parse_args(&a, argc - 1, argv + 1);
    if (rc)
        return rc;
    struct sigaction sa = {.sa_handler = on_stop};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    return tail(&a);
}
