/*
 * common/kafka_lib.h: librdkafka, loaded when the first Kafka client is made.
 *
 * librdkafka maps libcrypto, libssl, zstd, lz4, sasl2 and more beside it: about 3 MiB of
 * resident pages in every process (bench/rss, docs/benchmarks.md), and only the audit's Kafka
 * sink (--audit-kafka, audit/kafka_sink.c) and `meshd audit tail` (node/role_audit_cli.c) use
 * it. So meshd does not link it but opens it on first use (dlopen "librdkafka.so.1", the soname
 * of Debian's librdkafka1) and calls through this table, as common/curl_lib.h does for libcurl
 * and common/ssl_lib.h for libssl. The headers still come from librdkafka-dev, so types,
 * constants and the RD_KAFKA_V_* arguments of producev are checked at compile time, and
 * common/kafka_lib.c checks each entry's type against the header's prototype.
 *
 * Each entry of MESH_KAFKA_FUNCS is (field, return type, symbol, parameters); add a function by
 * adding a line there. The test peer tests/peers/kafka_broker.c (the mock cluster) links
 * librdkafka itself and does not use this table.
 */
#ifndef MESH_KAFKA_LIB_H
#define MESH_KAFKA_LIB_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

/* clang-format off */
#define MESH_KAFKA_FUNCS(X)                                                                        \
    /* configuration */                                                                            \
    X(conf_new, rd_kafka_conf_t *, rd_kafka_conf_new, (void))                                      \
    X(conf_destroy, void, rd_kafka_conf_destroy, (rd_kafka_conf_t *conf))                          \
    X(conf_set, rd_kafka_conf_res_t, rd_kafka_conf_set, (rd_kafka_conf_t *conf, const char *name, \
      const char *value, char *errstr, size_t errstr_size))                                        \
    X(conf_set_opaque, void, rd_kafka_conf_set_opaque, (rd_kafka_conf_t *conf, void *opaque))      \
    X(conf_set_dr_msg_cb, void, rd_kafka_conf_set_dr_msg_cb, (rd_kafka_conf_t *conf,               \
      void (*dr_msg_cb)(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)))               \
    X(conf_set_error_cb, void, rd_kafka_conf_set_error_cb, (rd_kafka_conf_t *conf,                 \
      void (*error_cb)(rd_kafka_t *rk, int err, const char *reason, void *opaque)))                \
    X(conf_set_log_cb, void, rd_kafka_conf_set_log_cb, (rd_kafka_conf_t *conf,                     \
      void (*log_cb)(const rd_kafka_t *rk, int level, const char *fac, const char *buf)))          \
    /* clients */                                                                                  \
    X(create, rd_kafka_t *, rd_kafka_new, (rd_kafka_type_t type, rd_kafka_conf_t *conf,            \
      char *errstr, size_t errstr_size))                                                           \
    X(destroy, void, rd_kafka_destroy, (rd_kafka_t *rk))                                           \
    X(destroy_flags, void, rd_kafka_destroy_flags, (rd_kafka_t *rk, int flags))                    \
    X(poll, int, rd_kafka_poll, (rd_kafka_t *rk, int timeout_ms))                                  \
    X(set_log_queue, rd_kafka_resp_err_t, rd_kafka_set_log_queue, (rd_kafka_t *rk,                 \
      rd_kafka_queue_t *rkqu))                                                                     \
    X(queue_get_main, rd_kafka_queue_t *, rd_kafka_queue_get_main, (rd_kafka_t *rk))               \
    X(queue_io_event_enable, void, rd_kafka_queue_io_event_enable, (rd_kafka_queue_t *rkqu,        \
      int fd, const void *payload, size_t size))                                                   \
    X(queue_destroy, void, rd_kafka_queue_destroy, (rd_kafka_queue_t *rkqu))                       \
    X(metadata, rd_kafka_resp_err_t, rd_kafka_metadata, (rd_kafka_t *rk, int all_topics,           \
      rd_kafka_topic_t *only_rkt, const struct rd_kafka_metadata **metadatap, int timeout_ms))     \
    X(metadata_destroy, void, rd_kafka_metadata_destroy,                                           \
      (const struct rd_kafka_metadata *metadata))                                                  \
    /* the producer */                                                                             \
    X(topic_new, rd_kafka_topic_t *, rd_kafka_topic_new, (rd_kafka_t *rk, const char *topic,       \
      rd_kafka_topic_conf_t *conf))                                                                \
    X(topic_destroy, void, rd_kafka_topic_destroy, (rd_kafka_topic_t *rkt))                        \
    X(producev, rd_kafka_resp_err_t, rd_kafka_producev, (rd_kafka_t *rk, ...))                     \
    X(flush, rd_kafka_resp_err_t, rd_kafka_flush, (rd_kafka_t *rk, int timeout_ms))                \
    X(purge, rd_kafka_resp_err_t, rd_kafka_purge, (rd_kafka_t *rk, int purge_flags))               \
    X(fatal_error, rd_kafka_resp_err_t, rd_kafka_fatal_error, (rd_kafka_t *rk, char *errstr,       \
      size_t errstr_size))                                                                         \
    /* the consumer (`meshd audit tail`) */                                                        \
    X(poll_set_consumer, rd_kafka_resp_err_t, rd_kafka_poll_set_consumer, (rd_kafka_t *rk))        \
    X(partitions_new, rd_kafka_topic_partition_list_t *, rd_kafka_topic_partition_list_new,        \
      (int size))                                                                                  \
    X(partitions_add, rd_kafka_topic_partition_t *, rd_kafka_topic_partition_list_add,             \
      (rd_kafka_topic_partition_list_t *rktparlist, const char *topic, int32_t partition))         \
    X(partitions_destroy, void, rd_kafka_topic_partition_list_destroy,                             \
      (rd_kafka_topic_partition_list_t *rkparlist))                                                \
    X(assign, rd_kafka_resp_err_t, rd_kafka_assign, (rd_kafka_t *rk,                               \
      const rd_kafka_topic_partition_list_t *partitions))                                          \
    X(consumer_poll, rd_kafka_message_t *, rd_kafka_consumer_poll, (rd_kafka_t *rk,                \
      int timeout_ms))                                                                             \
    X(consumer_close, rd_kafka_resp_err_t, rd_kafka_consumer_close, (rd_kafka_t *rk))              \
    X(message_destroy, void, rd_kafka_message_destroy, (rd_kafka_message_t *rkmessage))            \
    X(message_errstr, const char *, rd_kafka_message_errstr,                                       \
      (const rd_kafka_message_t *rkmessage))                                                       \
    /* errors and version */                                                                       \
    X(err2str, const char *, rd_kafka_err2str, (rd_kafka_resp_err_t err))                          \
    X(err2name, const char *, rd_kafka_err2name, (rd_kafka_resp_err_t err))                        \
    X(last_error, rd_kafka_resp_err_t, rd_kafka_last_error, (void))                                \
    X(version_str, const char *, rd_kafka_version_str, (void))
/* clang-format on */

/** The librdkafka functions meshd uses: K->conf_new(), K->create(RD_KAFKA_PRODUCER, ...). */
typedef struct mesh_kafka {
#define MESH_KAFKA_FIELD(f, ret, sym, args) ret(*f) args;
    MESH_KAFKA_FUNCS(MESH_KAFKA_FIELD)
#undef MESH_KAFKA_FIELD
} mesh_kafka_t;

/**
 * The loaded library (opened once, thread-safe), or NULL when it cannot be loaded; then err (if
 * not NULL) says why and which package to install ("librdkafka.so.1 cannot be loaded: ...;
 * install librdkafka1").
 */
const mesh_kafka_t *mesh_kafka(char *err, size_t errlen);

/** Whether the library was loaded by now (without loading it): for RSS checks and tests. */
int mesh_kafka_loaded(void);

#endif
