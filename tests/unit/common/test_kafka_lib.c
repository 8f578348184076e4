/*
 * tests/unit/common/test_kafka_lib.c: librdkafka is opened on first use (common/kafka_lib.h),
 * not at start: a process that never makes a Kafka client does not map it (nor the libcrypto,
 * zstd, sasl2 ... it brings). The first calls, made from several threads at once, get one
 * table with every entry resolved, and the audit's option check works through it.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "audit/kafka_sink.h"
#include "common/kafka_lib.h"
#include "tests/check.h"

/* Whether a mapping of this process has name in its path (/proc/self/maps). */
static int mapped(const char *name)
{
    FILE *f = fopen("/proc/self/maps", "r");
    CHECK(f != NULL);
    char line[4096];
    int found = 0;
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, name) != NULL;
    fclose(f);
    return found;
}

static void t_not_loaded_at_start(void)
{
    CHECK(!mesh_kafka_loaded());
    CHECK(!mapped("librdkafka.so"));
}

enum { THREADS = 4 };
static pthread_barrier_t start_together;

static void *first_use(void *arg)
{
    pthread_barrier_wait(&start_together);
    char err[512] = "";
    *(const mesh_kafka_t **)arg = mesh_kafka(err, sizeof(err));
    if (!*(const mesh_kafka_t **)arg)
        fprintf(stderr, "mesh_kafka: %s\n", err);
    return NULL;
}

static void t_first_use_from_threads(void)
{
    pthread_t th[THREADS];
    const mesh_kafka_t *got[THREADS] = {0};
    CHECK_EQ(pthread_barrier_init(&start_together, NULL, THREADS), 0);
    for (int i = 0; i < THREADS; i++)
        CHECK_EQ(pthread_create(&th[i], NULL, first_use, &got[i]), 0);
    for (int i = 0; i < THREADS; i++)
        CHECK_EQ(pthread_join(th[i], NULL), 0);
    pthread_barrier_destroy(&start_together);
    for (int i = 0; i < THREADS; i++) {
        CHECK(got[i] != NULL);
        CHECK(got[i] == got[0]);
    }
    CHECK(mesh_kafka_loaded());
    CHECK(mapped("librdkafka.so.1"));
    /* Every entry resolved (a NULL would crash the first caller, not the loader). */
    const void *const *slot = (const void *const *)got[0];
    for (size_t i = 0; i < sizeof(mesh_kafka_t) / sizeof(void *); i++)
        CHECK(slot[i] != NULL);
    CHECK(mesh_kafka(NULL, 0) == got[0]);
}

static void t_through_the_table(void)
{
    const mesh_kafka_t *K = mesh_kafka(NULL, 0);
    CHECK(K != NULL);
    CHECK_STR(audit_kafka_version(), K->version_str());
    CHECK(K->err2name(RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) != NULL);
    CHECK_STR(K->err2name(RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN), "_ALL_BROKERS_DOWN");
    char err[512] = "";
    CHECK_EQ(audit_kafka_check_opt("linger.ms=5", err, sizeof(err)), 0);
    CHECK_EQ(audit_kafka_check_opt("no.such.property=1", err, sizeof(err)), -1);
    CHECK(strstr(err, "No such configuration property") != NULL);
#ifndef MESHD_TSAN
    /* A client made and destroyed through the table. Not under ThreadSanitizer: librdkafka's
     * own (uninstrumented) threads crash its allocator (tests/integration/audit/CMakeLists.txt). */
    rd_kafka_conf_t *conf = K->conf_new();
    CHECK_EQ(K->conf_set(conf, "bootstrap.servers", "127.0.0.1:1", err, sizeof(err)),
             RD_KAFKA_CONF_OK);
    rd_kafka_t *rk = K->create(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    CHECK(rk != NULL);
    K->destroy(rk);
#endif
}

int main(void)
{
    RUN(t_not_loaded_at_start);
    RUN(t_first_use_from_threads);
    RUN(t_through_the_table);
    return 0;
}
