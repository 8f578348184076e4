/*
 * audit/audit_api.h: how the rest of a node hands audit events to its audit actor
 * (audit/audit_actor.h), and the record as the actor keeps it.
 *
 * One audit_api_t per node, shared by every actor of the node that emits events: the record
 * context (node, role, boot id and the event sequence: audit/event.h) and the audit actor's
 * address. Control actors call audit_emit(self, api, &event): the event is encoded there, on the
 * emitter's loop, with the shared context (so its event_id is taken when it is accepted) and
 * the record goes to the audit actor as one message. When audit is off (no actor), emit is a
 * counted no-op. The data plane does not call this: workers push their events into their event
 * rings (actors/evring.h) and the node hands them to the audit actor in batches
 * (AUDIT_MSG_BATCH), so the hot path never allocates or blocks for audit.
 *
 * The record as spooled and sent (audit_rec_*): a small header, the Kafka key and the JSON
 * record, so a record replayed from the spool after a restart still has its key and timestamp:
 *
 *   u8 version (1) | u8 flags (bit 0: the key is null, i.e. no service) | u16 key length (LE)
 *   | i64 event time, Unix microseconds (LE) | key bytes | the JSON record (audit/event.h)
 *
 * Message types: 0x4155xxxx ("AU").
 */
#ifndef AUDIT_API_H
#define AUDIT_API_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "actors/actor.h"
#include "actors/evring.h"
#include "audit/event.h"

enum {
    /** To the audit actor: ptr = audit_rec_t (a record, freed with the message). */
    AUDIT_MSG_RECORD = 0x41550001u,
    /** To the audit actor from the node: ptr = audit_batch_t (worker events, one message per
     *  batch taken from a worker's ring). */
    AUDIT_MSG_BATCH = 0x41550002u,
    /* The actor's own: a spool sync finished (ptr: the sync job), the sink has work (fd
     *  readable), its timers. */
    AUDIT_MSG_SYNCED = 0x41550010u,
    AUDIT_MSG_SINK = 0x41550011u,
    AUDIT_MSG_SPOOL_TIMER = 0x41550012u,
    AUDIT_MSG_TICK = 0x41550013u,
    AUDIT_MSG_RESUME = 0x41550014u,
};

/** The record header's size (before the key). */
#define AUDIT_REC_HDR        12u
#define AUDIT_REC_VERSION    1u
#define AUDIT_REC_F_NULL_KEY 0x1u
/** Longest record: header, key and JSON. */
#define AUDIT_REC_MAX (AUDIT_REC_HDR + AUDIT_MAX_SERVICE + AUDIT_RECORD_MAX)

/** A record in flight to the audit actor (AUDIT_MSG_RECORD's payload). */
typedef struct audit_rec {
    uint32_t len;
    uint8_t data[]; /* the record: header, key, JSON */
} audit_rec_t;

/** A record's parts (pointers into the record). */
typedef struct audit_rec_view {
    const char *key; /* NULL when the event has no service */
    size_t key_len;
    int64_t ts_us;
    const char *json;
    size_t json_len;
} audit_rec_view_t;

/** Worker events for the audit actor (AUDIT_MSG_BATCH's payload, freed with the message). */
typedef struct audit_batch {
    size_t n;
    mesh_event_t ev[];
} audit_batch_t;

/** Events handed to the audit actor and not taken by it yet, at most: past this the actor is
 *  behind (a burst faster than the spool and Kafka take it) and emitters drop, counted, rather
 *  than pile messages up in its mailbox, where they would also delay the spool's sync
 *  completions (a FIFO mailbox) and so the time to durable (16384 events: tens of ms). */
#define AUDIT_BACKLOG_MAX 16384

/** What the emitters of one node share. Lives as long as the node; any thread may read it. */
typedef struct audit_api {
    audit_ctx_t ctx;
    /** The audit actor (0: audit is off). The supervisor fills it at each start. */
    mesh_actor_id_t actor;
    _Atomic uint64_t emitted; /* records handed to the actor */
    _Atomic uint64_t off;     /* events not emitted because audit is off */
    _Atomic uint64_t refused; /* events lost on the way: the actor is behind (backlog full), its
                                 mailbox refused them, or they were invalid (reported as drops) */
    _Atomic uint64_t backlog; /* events handed to the actor and not taken yet */
} audit_api_t;

/** Reserves room for n events in the actor's backlog: 1, or 0 (counted in refused) when the
 *  actor is behind. Undo with audit_api_taken(api, n) when the send fails. */
int audit_api_reserve(audit_api_t *api, uint64_t n);

/** The actor took n events (or a send of n failed). */
void audit_api_taken(audit_api_t *api, uint64_t n);

/**
 * Initializes api for a node (name, role; see audit_ctx_init). Audit stays off until
 * api->actor is set. Returns 0, or -1 with the reason in err.
 */
int audit_api_init(audit_api_t *api, const char *node, const char *role, char *err, size_t errlen);

/** Whether events go anywhere (an audit actor exists). */
int audit_api_on(const audit_api_t *api);

/**
 * Emits one event from a control actor: sets ev->seq (and ev->ts_us when 0: now), encodes the
 * record and sends it to the audit actor. Returns 0; -1 when audit is off (counted in off) or
 * the record could not be made or delivered (counted in refused and logged: an invalid event
 * is a bug of its emitter). api may be NULL (audit off).
 */
int audit_emit(mesh_actor_t *self, audit_api_t *api, audit_event_t *ev);

/**
 * Writes the record of ev (already given its seq and time) into out[0..cap): header, key and
 * JSON. Returns its length, or AUDIT_E2BIG / AUDIT_EINVAL as audit_event_encode. Allocates
 * nothing (cap AUDIT_REC_MAX always suffices).
 */
ssize_t audit_rec_encode(const audit_ctx_t *ctx, const audit_event_t *ev, uint8_t *out, size_t cap);

/** Splits a record into its parts: 0, or -1 when it is not a record of a known version. */
int audit_rec_parse(const void *data, size_t len, audit_rec_view_t *out);

#endif
