/*
 * audit/audit_sink.h: the audit actor's sink seam: where records go once they are spooled.
 *
 * A sink takes records tagged with their spool sequence number and reports each one's fate
 * later, exactly once, through the callbacks it was created with: acknowledged, or failed (the
 * actor then rewinds the spool and sends the record again, in order). It never calls back from
 * inside produce: callbacks run from serve(), which the actor calls from its own message
 * handler (after wake() asked for it, and on a slow timer), so the actor's state changes only
 * there. Production: audit/kafka_sink.c (librdkafka). Tests and simulations: a sink of their own
 * that acknowledges, fails or holds records as a scenario says.
 */
#ifndef AUDIT_SINK_H
#define AUDIT_SINK_H

#include <stddef.h>
#include <stdint.h>

typedef struct audit_sink audit_sink_t;

/** What a sink tells the actor. Called from serve() (wake: from anywhere on the loop). */
typedef struct audit_sink_cbs {
    /** Record seq (its value len bytes long) was acknowledged (err 0), or its delivery failed
     *  (err != 0; why says how: "Broker: Unknown topic or partition"). */
    void (*delivered)(void *ud, uint64_t seq, size_t len, int err, const char *why);
    /** The sink lost every broker (down = 1: "all brokers down: ...") or a broker answers again
     *  (down = 0); other errors worth a log line come with down = -1. */
    void (*link)(void *ud, int down, const char *why);
    /** Every record in flight is lost: the sink started over (a fatal producer error) and none
     *  of them will get a delivered() call any more. The actor sends them again. */
    void (*lost)(void *ud);
    /** The sink has callbacks to run: have serve() called soon. Called outside the actor's
     *  callbacks (an fd became readable): send a message, do not serve from here. */
    void (*wake)(void *ud);
} audit_sink_cbs_t;

/** One record to send. The sink copies what it keeps: the pointers are valid during produce. */
typedef struct audit_sink_rec {
    uint64_t seq;    /* the spool's sequence number, given back in delivered() */
    const void *key; /* the Kafka key (the service), NULL with key_len 0: empty key */
    size_t key_len;
    int64_t ts_ms;     /* the record's timestamp: the event's time, Unix milliseconds */
    const void *value; /* the JSON record */
    size_t len;
} audit_sink_rec_t;

/** A sink's operations. */
typedef struct audit_sink_ops {
    const char *name; /* "kafka" */
    /** Queues a record: 0 (delivered() follows, once), or -1 with why in err when it cannot
     *  take it now (its own queue is full, or it is broken): the actor retries later. */
    int (*produce)(audit_sink_t *s, const audit_sink_rec_t *r, char *err, size_t errlen);
    /** Runs the callbacks that are due. */
    void (*serve)(audit_sink_t *s);
    /** At stop: waits up to timeout_ms for the records in flight (serving callbacks). */
    void (*flush)(audit_sink_t *s, uint64_t timeout_ms);
    /** Frees the sink; records still in flight get no callback (they stay in the spool). */
    void (*free)(audit_sink_t *s);
} audit_sink_ops_t;

/** The part of every sink the actor sees (sinks embed it first). */
struct audit_sink {
    const audit_sink_ops_t *ops;
};

#endif
