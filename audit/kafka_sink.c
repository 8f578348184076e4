/*
 * audit/kafka_sink.c: the audit actor's Kafka sink on librdkafka (see audit/kafka_sink.h).
 *
 * Threads: every function here runs on the control loop. librdkafka's callbacks (delivery
 * reports, errors, log lines) are served from its main queue by rd_kafka_poll(), which only
 * serve() and flush() call: they run on the loop too. The main queue wakes the loop through an
 * eventfd (written by librdkafka's threads when the queue goes from empty to non-empty) that a
 * uv_poll watches.
 */
#include "audit/kafka_sink.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "audit/event.h"
#include "common/kafka_lib.h"
#include "common/log.h"

typedef struct kafka_sink {
    audit_sink_t super;
    uv_loop_t *loop;
    audit_sink_cbs_t cbs;
    void *ud;
    const mesh_kafka_t *K; /* librdkafka (common/kafka_lib.h) */
    /* settings, kept to make the producer again after a fatal error */
    char *brokers, *topic, *client_id;
    char **opts;
    size_t n_opts;
    unsigned max_messages;
    /* the producer */
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    rd_kafka_queue_t *mainq;
    int efd;
    uv_poll_t poll;
    int poll_on;
    int fatal;   /* a fatal error: make the producer again at the next serve */
    int closing; /* being freed: callbacks are not passed on */
} kafka_sink_t;

static const char SCHEMA_HDR[] = "schema";
#define STR_(x) #x
#define STR(x)  STR_(x)
static const char SCHEMA_VAL[] = STR(AUDIT_SCHEMA_VERSION);

/* ---- librdkafka's callbacks (on the loop, from rd_kafka_poll) ---------------------------- */

static void on_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    kafka_sink_t *k = opaque;
    if (k->closing)
        return;
    const mesh_kafka_t *K = k->K;
    uint64_t seq = (uint64_t)(uintptr_t)m->_private;
    k->cbs.delivered(k->ud, seq, m->len, m->err, m->err ? K->err2str(m->err) : "");
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    kafka_sink_t *k = opaque;
    if (k->closing)
        return;
    const mesh_kafka_t *K = k->K;
    char why[512];
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char fatal[256];
        K->fatal_error(rk, fatal, sizeof(fatal));
        mesh_error("audit",
                   "Kafka producer: fatal error: %s; starting a new producer (records "
                   "in flight are sent again from the spool)",
                   fatal);
        k->fatal = 1;
        snprintf(why, sizeof(why), "fatal: %s", fatal);
        k->cbs.link(k->ud, -1, why);
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        snprintf(why, sizeof(why), "all brokers down (%s): %s", k->brokers, reason);
        k->cbs.link(k->ud, 1, why);
        return;
    }
    snprintf(why, sizeof(why), "Kafka (%s): %s", K->err2name(err), reason);
    k->cbs.link(k->ud, -1, why);
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    /* Connection failures also come through on_error (reported once per change by the actor);
     * librdkafka's own lines are for debugging, but what it calls critical is shown. */
    if (level <= 2)
        mesh_error("audit", "librdkafka %s: %s", fac, buf);
    else
        mesh_debug("audit", "librdkafka %s: %s", fac, buf);
}

/* ---- the producer ------------------------------------------------------------------------ */

static int conf_set(const mesh_kafka_t *K, rd_kafka_conf_t *conf, const char *key, const char *val,
                    const char *what, char *err, size_t errlen)
{
    char e[512];
    if (K->conf_set(conf, key, val, e, sizeof(e)) == RD_KAFKA_CONF_OK)
        return 0;
    snprintf(err, errlen, "%s: %s", what, e);
    return -1;
}

/* Splits "KEY=VALUE" into key (copied into kbuf) and value. -1 when it is not that. */
static int split_kv(const char *kv, char *kbuf, size_t kcap, const char **val)
{
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv || (size_t)(eq - kv) >= kcap)
        return -1;
    memcpy(kbuf, kv, (size_t)(eq - kv));
    kbuf[eq - kv] = '\0';
    *val = eq + 1;
    return 0;
}

int audit_kafka_check_opt(const char *kv, char *err, size_t errlen)
{
    char key[256];
    const char *val;
    if (split_kv(kv, key, sizeof(key), &val) != 0) {
        snprintf(err, errlen, "'%s' is not KEY=VALUE (a librdkafka property)", kv);
        return -1;
    }
    const mesh_kafka_t *K = mesh_kafka(err, errlen);
    if (!K)
        return -1;
    rd_kafka_conf_t *conf = K->conf_new();
    char e[512];
    int rc = K->conf_set(conf, key, val, e, sizeof(e)) == RD_KAFKA_CONF_OK ? 0 : -1;
    if (rc)
        snprintf(err, errlen, "%s", e);
    K->conf_destroy(conf);
    return rc;
}

const char *audit_kafka_version(void)
{
    const mesh_kafka_t *K = mesh_kafka(NULL, 0);
    return K ? K->version_str() : "(librdkafka.so.1 cannot be loaded)";
}

static void on_readable(uv_poll_t *h, int status, int events)
{
    (void)status, (void)events;
    kafka_sink_t *k = h->data;
    uint64_t v;
    while (read(k->efd, &v, sizeof(v)) > 0) /* an eventfd reads as one counter */
        ;
    if (!k->closing)
        k->cbs.wake(k->ud);
}

static void producer_drop(kafka_sink_t *k)
{
    if (!k->rk)
        return;
    const mesh_kafka_t *K = k->K;
    if (k->mainq) {
        K->queue_io_event_enable(k->mainq, -1, NULL, 0);
        K->queue_destroy(k->mainq);
        k->mainq = NULL;
    }
    if (k->rkt)
        K->topic_destroy(k->rkt);
    k->rkt = NULL;
    /* What it still holds stays in the spool: purge, so destroying it does not wait. */
    K->purge(k->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    K->destroy_flags(k->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    k->rk = NULL;
}

static int producer_make(kafka_sink_t *k, char *err, size_t errlen)
{
    const mesh_kafka_t *K = k->K;
    rd_kafka_conf_t *conf = K->conf_new();
    char maxmsg[32];
    snprintf(maxmsg, sizeof(maxmsg), "%u", k->max_messages);
    struct {
        const char *k, *v;
    } ours[] = {
        {"bootstrap.servers", k->brokers},
        {"client.id", k->client_id},
        {"enable.idempotence", "true"},
        {"acks", "all"},
        {"message.timeout.ms", "0"},
        {"partitioner", "murmur2_random"},
        {"linger.ms", "5"},
        {"log.queue", "true"},
        {"log.connection.close", "false"},
        {"queue.buffering.max.messages", k->max_messages ? maxmsg : NULL},
    };
    for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++)
        if (ours[i].v && conf_set(K, conf, ours[i].k, ours[i].v, ours[i].k, err, errlen) != 0)
            goto fail;
    for (size_t i = 0; i < k->n_opts; i++) {
        char key[256], what[300];
        const char *val;
        if (split_kv(k->opts[i], key, sizeof(key), &val) != 0) {
            snprintf(err, errlen, "audit.kafka-opt: '%s' is not KEY=VALUE", k->opts[i]);
            goto fail;
        }
        snprintf(what, sizeof(what), "audit.kafka-opt %s", key);
        if (conf_set(K, conf, key, val, what, err, errlen) != 0)
            goto fail;
    }
    K->conf_set_opaque(conf, k);
    K->conf_set_dr_msg_cb(conf, on_dr);
    K->conf_set_error_cb(conf, on_error);
    K->conf_set_log_cb(conf, on_log);
    char e[512];
    k->rk = K->create(RD_KAFKA_PRODUCER, conf, e, sizeof(e));
    if (!k->rk) {
        snprintf(err, errlen, "cannot create the Kafka producer: %s", e);
        goto fail;
    }
    conf = NULL;                   /* the producer owns it now */
    K->set_log_queue(k->rk, NULL); /* log lines through the main queue, on the loop */
    k->rkt = K->topic_new(k->rk, k->topic, NULL);
    if (!k->rkt) {
        snprintf(err, errlen, "Kafka topic '%s': %s", k->topic, K->err2str(K->last_error()));
        producer_drop(k);
        return -1;
    }
    k->mainq = K->queue_get_main(k->rk);
    static const uint64_t one = 1;
    K->queue_io_event_enable(k->mainq, k->efd, &one, sizeof(one));
    return 0;
fail:
    if (conf)
        K->conf_destroy(conf);
    return -1;
}

/* ---- the sink's operations ----------------------------------------------------------------- */

static int k_produce(audit_sink_t *s, const audit_sink_rec_t *r, char *err, size_t errlen)
{
    kafka_sink_t *k = (kafka_sink_t *)s;
    const mesh_kafka_t *K = k->K;
    if (!k->rk || k->fatal) {
        snprintf(err, errlen, "the Kafka producer is being made again");
        return -1;
    }
    /* An event without a service has the empty key (not a null key): one partition. */
    static const char empty[1] = "";
    rd_kafka_resp_err_t e = K->producev(
        k->rk, RD_KAFKA_V_RKT(k->rkt), RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_VALUE((void *)r->value, r->len),
        RD_KAFKA_V_KEY(r->key ? r->key : empty, r->key ? r->key_len : 0),
        RD_KAFKA_V_TIMESTAMP(r->ts_ms),
        RD_KAFKA_V_HEADER(SCHEMA_HDR, SCHEMA_VAL, (ssize_t)(sizeof(SCHEMA_VAL) - 1)),
        RD_KAFKA_V_OPAQUE((void *)(uintptr_t)r->seq), RD_KAFKA_V_END);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
        return 0;
    snprintf(err, errlen, "%s", K->err2str(e));
    return -1;
}

static void k_serve(audit_sink_t *s)
{
    kafka_sink_t *k = (kafka_sink_t *)s;
    if (k->rk)
        k->K->poll(k->rk, 0);
    if (!k->fatal)
        return;
    /* The producer is unusable: serve what it reported, then start over. Records it held get
     * no report any more; lost() tells the actor to send them again. */
    k->fatal = 0;
    k->closing = 1;
    producer_drop(k);
    k->closing = 0;
    char err[512];
    if (producer_make(k, err, sizeof(err)) != 0) {
        mesh_error("audit", "cannot make the Kafka producer again: %s; retrying", err);
        k->fatal = 1; /* retried at the next serve (the actor's slow timer) */
    }
    k->cbs.lost(k->ud);
}

static void k_flush(audit_sink_t *s, uint64_t timeout_ms)
{
    kafka_sink_t *k = (kafka_sink_t *)s;
    if (k->rk && !k->fatal)
        k->K->flush(k->rk, (int)timeout_ms);
}

static void on_closed(uv_handle_t *h)
{
    kafka_sink_t *k = h->data;
    if (k->efd >= 0)
        close(k->efd);
    free(k);
}

static void k_free(audit_sink_t *s)
{
    kafka_sink_t *k = (kafka_sink_t *)s;
    if (!k)
        return;
    k->closing = 1;
    producer_drop(k);
    free(k->brokers);
    free(k->topic);
    free(k->client_id);
    for (size_t i = 0; i < k->n_opts; i++)
        free(k->opts[i]);
    free(k->opts);
    if (k->poll_on) {
        uv_poll_stop(&k->poll);
        uv_close((uv_handle_t *)&k->poll, on_closed);
        return;
    }
    if (k->efd >= 0)
        close(k->efd);
    free(k);
}

static const audit_sink_ops_t kafka_ops = {
    .name = "kafka",
    .produce = k_produce,
    .serve = k_serve,
    .flush = k_flush,
    .free = k_free,
};

audit_sink_t *audit_kafka_new(uv_loop_t *loop, const audit_kafka_cfg_t *cfg,
                              const audit_sink_cbs_t *cbs, void *ud, char *err, size_t errlen)
{
    /* librdkafka is opened here, by the first sink: a node without --audit-kafka never maps it
     * (nor the libcrypto, zstd, sasl2 ... it brings). When it is missing, the sink does not
     * start and the actor logs why, with the package to install. */
    const mesh_kafka_t *K = mesh_kafka(err, errlen);
    if (!K)
        return NULL;
    kafka_sink_t *k = calloc(1, sizeof(*k));
    if (!k) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    k->K = K;
    k->super.ops = &kafka_ops;
    k->loop = loop;
    k->cbs = *cbs;
    k->ud = ud;
    k->efd = -1;
    k->max_messages = cfg->max_messages;
    k->brokers = strdup(cfg->brokers ? cfg->brokers : "");
    k->topic = strdup(cfg->topic && *cfg->topic ? cfg->topic : AUDIT_KAFKA_TOPIC);
    k->client_id = strdup(cfg->client_id && *cfg->client_id ? cfg->client_id : "meshd");
    k->opts = cfg->n_opts ? calloc(cfg->n_opts, sizeof(char *)) : NULL;
    if (!k->brokers || !k->topic || !k->client_id || (cfg->n_opts && !k->opts))
        goto oom;
    for (; k->n_opts < cfg->n_opts; k->n_opts++)
        if (!(k->opts[k->n_opts] = strdup(cfg->opts[k->n_opts])))
            goto oom;
    if (!*k->brokers) {
        snprintf(err, errlen, "audit.kafka: no brokers given");
        goto fail;
    }
    k->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (k->efd < 0) {
        snprintf(err, errlen, "eventfd: %s", strerror(errno));
        goto fail;
    }
    if (producer_make(k, err, errlen) != 0)
        goto fail;
    if (uv_poll_init(loop, &k->poll, k->efd) != 0) {
        snprintf(err, errlen, "cannot watch librdkafka's queue");
        goto fail;
    }
    k->poll.data = k;
    k->poll_on = 1;
    uv_poll_start(&k->poll, UV_READABLE, on_readable);
    return &k->super;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    k_free(&k->super);
    return NULL;
}
