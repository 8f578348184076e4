/*
 * audit/kafka_sink.h: the audit actor's Kafka sink (audit/audit_sink.h) on librdkafka, driven
 * from the control loop: no polling thread of ours.
 *
 * librdkafka's main queue (delivery reports, errors, its log lines) signals an eventfd when it
 * goes from empty to non-empty (rd_kafka_queue_io_event_enable); a uv_poll on that fd calls the
 * sink's wake(), and the actor serves the queue (rd_kafka_poll(rk, 0)) from its own message
 * handler, and on its slow timer as well. librdkafka's own threads talk to the brokers.
 *
 * Producer settings, before the user's (--audit-kafka-opt K=V, any librdkafka property, applied
 * last so they can change these): enable.idempotence=true, acks=all (the idempotent producer:
 * no duplicates from its retries, order kept per partition), message.timeout.ms=0 (a record
 * waits for Kafka as long as it takes: an outage is held, bounded, by the actor, and a timeout
 * would let a later record of the same key overtake an earlier one), partitioner=murmur2_random
 * (Java's partitioner: a key lands where a Java producer puts it; the empty key of events without
 * a service hashes to one partition, so those stay in order too), linger.ms=5, log.queue=true
 * (log lines come through the main queue, on the loop), client.id. Each record carries the key
 * (the service, empty when the event has none), the header schema=<version>, and the event's
 * time as its Kafka timestamp.
 *
 * Errors: "all brokers down" (and name resolution and connection errors) are reported through
 * link(), with librdkafka's text; a fatal error (the idempotent producer lost its guarantees)
 * is logged, and the producer is destroyed and made again at the next serve: what it held
 * fails with an error (the actor resends it from the spool).
 */
#ifndef AUDIT_KAFKA_SINK_H
#define AUDIT_KAFKA_SINK_H

#include <stddef.h>
#include <uv.h>

#include "audit/audit_sink.h"

/** Default topic. */
#define AUDIT_KAFKA_TOPIC "meshd.audit"

/** The sink's settings (copied). */
typedef struct audit_kafka_cfg {
    const char *brokers;     /* bootstrap.servers */
    const char *topic;       /* default AUDIT_KAFKA_TOPIC */
    const char *const *opts; /* "KEY=VALUE" librdkafka properties, applied last */
    size_t n_opts;
    const char *client_id; /* default "meshd" */
    unsigned max_messages; /* queue.buffering.max.messages (0: librdkafka's default) */
} audit_kafka_cfg_t;

/**
 * A Kafka sink on loop (the control loop). Returns NULL with the reason in err when librdkafka
 * cannot be loaded (the first sink opens it: common/kafka_lib.h; "librdkafka.so.1 cannot be
 * loaded: ...; install librdkafka1"), the configuration is refused ("audit.kafka-opt: KEY: No
 * such configuration property ...") or the producer cannot be made. Brokers are not contacted here:
 * a wrong address is reported later, through link(), and records wait.
 */
audit_sink_t *audit_kafka_new(uv_loop_t *loop, const audit_kafka_cfg_t *cfg,
                              const audit_sink_cbs_t *cbs, void *ud, char *err, size_t errlen);

/**
 * Checks one "KEY=VALUE" librdkafka property the way the sink applies it: 0, or -1 with the
 * problem in err ("not KEY=VALUE", librdkafka's own words, or that it cannot be loaded). For the
 * config layer's check (this opens librdkafka).
 */
int audit_kafka_check_opt(const char *kv, char *err, size_t errlen);

/** The librdkafka version string ("2.0.2"; opens librdkafka). */
const char *audit_kafka_version(void);

#endif
