/*
 * audit/audit_actor.h: the audit actor, a node's one owner of its audit records, on the control
 * loop.
 *
 * What comes in: records from control actors (AUDIT_MSG_RECORD, audit/audit_api.h), and the
 * workers' events in batches from the node (AUDIT_MSG_BATCH: breaker transitions, encoded here
 * with the node's shared record context). What goes out depends on the mode:
 *
 *   Kafka (--audit-kafka): every record is appended to the disk spool (audit/spool.h) before it
 *     counts as accepted; records are handed to the sink (audit/audit_sink.h: Kafka in
 *     production) in spool order, at most max_in_flight records and max_in_flight_bytes bytes at
 *     a time, so a long outage stays on disk, not in memory. An acknowledgement deletes what it
 *     settles (audit_spool_ack); a failed delivery is held until everything in flight has
 *     settled, then the spool is rewound to the first failure and sending resumes after a
 *     backoff (1 s doubling to 30 s), so records of a key go again in their order. At start the
 *     spool replays what an earlier run left. Drops (a full spool, disk errors, corruption) are
 *     counted and reported as an audit_dropped event once Kafka acknowledges again.
 *   File (--audit-file): each record is appended as a JSON line (audit/jsonl_file.h).
 *
 * Its state changes only in its message handler: spool syncs run off the loop (libuv's thread
 * pool; inline in the simulator, which has no libuv loop) and finish as AUDIT_MSG_SYNCED; the
 * sink asks to be served with AUDIT_MSG_SINK; its timers are actor timers. The sink and the
 * spool's folder come from factories in its arguments (the production ones in
 * audit/audit_io.h), so tests and simulations run this very actor over sim_fs and a sink of
 * their own.
 *
 * Stop: the sink gets a bounded flush (acknowledgements still arriving settle records), the
 * spool's batch is written and synced (a sync in flight is waited for), then both close: what
 * Kafka did not acknowledge is sent again by the next start. Run it under the node's
 * supervisor, started before the actors that emit, so it stops after them.
 */
#ifndef AUDIT_ACTOR_H
#define AUDIT_ACTOR_H

#include <jansson.h>
#include <stdint.h>

#include "actors/actor.h"
#include "audit/audit_api.h"
#include "audit/audit_sink.h"
#include "audit/jsonl_file.h"
#include "audit/spool.h"

/** Where records go. */
typedef enum audit_mode {
    AUDIT_MODE_OFF = 0,
    AUDIT_MODE_FILE = 1,  /* JSON lines (audit.file) */
    AUDIT_MODE_KAFKA = 2, /* spool, then Kafka (audit.kafka) */
} audit_mode_t;

/** Builds the actor's sink on its loop; callbacks go to cbs with ud. NULL with err set. */
typedef audit_sink_t *(*audit_sink_factory_fn)(mesh_actor_t *self, const audit_sink_cbs_t *cbs,
                                               void *ud, void *arg, char *err, size_t errlen);

/** Opens the spool's folder: 0 and *fs set, or -1 with err set. close(arg, fs) undoes it. */
typedef struct audit_fs_factory {
    int (*open)(mesh_actor_t *self, void *arg, audit_spool_fs_t *fs, char *err, size_t errlen);
    void (*close)(void *arg, audit_spool_fs_t *fs);
} audit_fs_factory_t;

/** The actor's settings (copied by audit_args_new; strings too). */
typedef struct audit_actor_cfg {
    audit_mode_t mode;
    audit_api_t *api; /* the node's record context (for the records it makes itself) */
    /* Kafka mode */
    audit_spool_cfg_t spool;
    uint32_t max_in_flight;       /* records at the sink and not settled (0: 10000) */
    uint64_t max_in_flight_bytes; /* their JSON bytes (0: 16 MiB) */
    uint64_t stop_flush_ms;       /* at stop, how long acknowledgements are waited for (0: 1 s) */
    audit_sink_factory_fn sink_new;
    void *sink_arg; /* must outlive the actor */
    audit_fs_factory_t fs;
    void *fs_arg;          /* must outlive the actor */
    const char *spool_dir; /* for messages and the status */
    const char *brokers;   /* likewise */
    const char *topic;     /* likewise */
    /* File mode */
    audit_jsonl_cfg_t file;
} audit_actor_cfg_t;

/** What every start reads, and what outlives a start (counters of drops not yet reported). */
typedef struct audit_args audit_args_t;

/** Arguments for cfg; NULL on OOM. */
audit_args_t *audit_args_new(const audit_actor_cfg_t *cfg);

/** Frees the arguments once no actor uses them (after the executor stopped). */
void audit_args_free(audit_args_t *a);

/** The actor's operations: spawn (or supervise) with an audit_args_t * as argument. */
extern const mesh_actor_ops_t audit_actor_ops;

/** Mailbox capacity the actor should be spawned with (records are never refused for room). */
#define AUDIT_ACTOR_MAILBOX (1u << 16)

/**
 * The status as GET /v1/audit shows it (docs/audit.md): a new JSON object, built from the
 * running actor's state. Call on the actor's loop (the admin handler runs there).
 */
json_t *audit_actor_status(const audit_args_t *a);

/** The sink's name: "kafka", "file" or "off". */
const char *audit_actor_sink_name(const audit_args_t *a);

/** Counters for tests and benchmarks (the actor's loop; zeros when it is not running). */
typedef struct audit_actor_stats {
    int link; /* 0 connecting, 1 connected, 2 spooling */
    uint64_t accepted, sent, acked, failures, rewinds, in_flight;
    uint64_t dropped_total, dropped_reported, reports;
    uint64_t file_records, file_lost, off_dropped;
    uint64_t spool_pending, spool_bytes_written, spool_payload, spool_fsyncs, spool_writes;
} audit_actor_stats_t;
void audit_actor_get_stats(const audit_args_t *a, audit_actor_stats_t *out);

#endif
