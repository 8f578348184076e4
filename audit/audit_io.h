/*
 * audit/audit_io.h: the audit actor's production I/O, the factories audit/audit_actor.h takes:
 * the Kafka sink (audit/kafka_sink.h) on the actor's libuv loop, and the spool's folder on the
 * real file system (audit/spool_fs_posix.h, its missing parent folders created with mode 0700).
 * The simulator and the unit tests pass factories of their own (sim_fs, a scripted sink).
 */
#ifndef AUDIT_IO_H
#define AUDIT_IO_H

#include "audit/audit_actor.h"
#include "audit/kafka_sink.h"

/** The Kafka factory's argument (strings borrowed: they must outlive the actor). */
typedef struct audit_kafka_factory {
    audit_kafka_cfg_t cfg;
} audit_kafka_factory_t;

/** The production sink factory (arg: audit_kafka_factory_t *). */
audit_sink_t *audit_kafka_factory(mesh_actor_t *self, const audit_sink_cbs_t *cbs, void *ud,
                                  void *arg, char *err, size_t errlen);

/** The spool folder factory's argument. */
typedef struct audit_posix_factory {
    const char *dir;             /* borrowed */
    struct audit_spool_posix *h; /* while open */
} audit_posix_factory_t;

/** The production spool folder (arg: audit_posix_factory_t *). */
extern const audit_fs_factory_t audit_posix_fs_factory;

/**
 * Creates dir and its missing parents (mode 0700), as the spool's folder needs. 0, or -1 with
 * "create folder X: strerror" in err.
 */
int audit_mkdirs(const char *dir, char *err, size_t errlen);

#endif
