/*
 * gossip/gossip_actor.h: the gossip actor: one node's SWIM membership (gossip/swim.h) bound to
 * the io seam (actors/io.h: a datagram socket and a stream listener on one port), with packets
 * sealed by gossip/seal.h. The same actor runs on the real executor (libuv) and in the
 * simulator (actors/simnet.h), so simulations run the production gossip code.
 *
 * What it tells its subscriber (an actor id given at spawn), in order, never dropping one (a
 * full mailbox is retried): GSP_MSG_MEMBER for every change of a member (joined, state,
 * incarnation, metadata), GSP_MSG_ACCUSED when another member declares a death we hold too,
 * GSP_MSG_SET for each method set that becomes known, GSP_MSG_CONFLICT
 * when another live node uses a name it sees (our own included: the subscriber decides), and
 * GSP_MSG_STATS with its counters every second.
 *
 * Indirect checks (gossip/check.h): GSP_MSG_CHECK from a local actor asks up to k live members
 * (GSP_CHECK datagrams) whether they can connect to an instance; GSP_MSG_CHECK_DONE answers.
 * A member answers a GSP_CHECK with a TCP connect of its own and a GSP_CHECK_ACK datagram.
 * These datagrams never reach the swim (gossip/swim.c): older nodes skip the unknown types.
 *
 * What it takes: GSP_MSG_SET_META (our instances, encoded with gossip/meta.h, and the method sets
 * they refer to), GSP_MSG_LEAVE (announce a graceful leave; GSP_MSG_LEFT answers when the news
 * went out to enough members, or after the leave timeout).
 *
 * Message types: 0x4753xxxx ("GS").
 */
#ifndef GSP_GOSSIP_ACTOR_H
#define GSP_GOSSIP_ACTOR_H

#include <stdint.h>

#include "actors/actor.h"
#include "actors/io.h"
#include "gossip/check.h"
#include "gossip/seal.h"
#include "gossip/swim.h"

enum {
    GSP_MSG_MEMBER = 0x47530001u,     /* to the subscriber: ptr = gsp_member_event_t */
    GSP_MSG_SET = 0x47530002u,        /* to the subscriber: ptr = gsp_set_event_t */
    GSP_MSG_CONFLICT = 0x47530003u,   /* to the subscriber: ptr = gsp_conflict_event_t */
    GSP_MSG_STATS = 0x47530004u,      /* to the subscriber every second: ptr = gsp_stats_event_t */
    GSP_MSG_ACCUSED = 0x47530005u,    /* to the subscriber: ptr = gsp_accused_event_t */
    GSP_MSG_CHECK_DONE = 0x47530006u, /* to req.reply_to: ptr = gsp_check_done_t */
    GSP_MSG_CHECK = 0x47530013u,      /* to the actor (or its bridge): ptr = gsp_check_req_t */
    GSP_MSG_SET_META = 0x47530010u,   /* to the actor: ptr = gsp_meta_update_t */
    GSP_MSG_SET_ATTRS = 0x47530014u,  /* to the bridge: ptr = gsp_attrs_update_t */
    GSP_MSG_LEAVE = 0x47530011u,      /* to the actor: no payload */
    GSP_MSG_LEFT = 0x47530012u,       /* to the sender of GSP_MSG_LEAVE: no payload */
    GSP_MSG_TIMER = 0x47530020u,      /* the actor's own timers */
    GSP_MSG_XCHG_TIMEOUT = 0x47530021u,
    GSP_MSG_CONN_TIMEOUT = 0x47530022u,
    GSP_MSG_OUTBOX = 0x47530023u,
    GSP_MSG_LEAVE_TIMEOUT = 0x47530024u,
    GSP_MSG_STATS_TICK = 0x47530025u,
    GSP_MSG_CHECK_TICK = 0x47530026u,
    GSP_MSG_PROBE_TIMEOUT = 0x47530027u,
};

/** An indirect check (gossip/check.h): ask up to k live members to connect to addr within
 *  timeout_ms; GSP_MSG_CHECK_DONE (a gsp_check_done_t with this tag, asker = reply_to) answers,
 *  always exactly once. */
typedef struct gsp_check_req {
    mesh_actor_id_t reply_to;
    uint64_t tag;
    char addr[GSP_ADDR_MAX + 1]; /* numeric "ip:port" */
    uint32_t k;
    uint32_t timeout_ms;
} gsp_check_req_t;

#define GSP_SEEDS_MAX 16

/** Counters, readable by observe callbacks and tests (packets refused by cause, streams). */
typedef struct gsp_actor_stats {
    uint64_t refused[GSP_SEAL_NERR];
    uint64_t streams_out, streams_in, stream_failures;
} gsp_actor_stats_t;

/** How a gossip actor starts (the spawn argument; it must outlive the actor, restarts too). */
typedef struct gsp_actor_cfg {
    char name[GSP_NAME_MAX + 1];
    char bind[GSP_ADDR_MAX + 1];                 /* numeric "ip:port": datagrams and streams */
    char advertise[GSP_ADDR_MAX + 1];            /* what others reach us at ("": bind) */
    char seeds[GSP_SEEDS_MAX][GSP_ADDR_MAX + 1]; /* numeric "ip:port" */
    size_t n_seeds;
    gsp_swim_cfg_t swim;
    gsp_keyring_t ring; /* ring.n == 0: plain packets */
    char label[GSP_LABEL_LEN_MAX + 1];
    mesh_io_t *io; /* NULL: the actor's loop's io (mesh_io) */
    mesh_actor_id_t subscriber;
    uint64_t seed;             /* the swim's PRNG (0: drawn from the actor's) */
    uint32_t incarnation;      /* a previous life's, when known (0: learn it from peers) */
    uint64_t leave_timeout_ns; /* 0: 2 s */
    /** Optional, for simulations and tests on the same thread: called with the swim and the
     *  actor's counters after every input (read-only use). */
    void (*observe)(void *ud, const gsp_swim_t *swim, const struct gsp_actor_stats *stats);
    void *observe_ud;
} gsp_actor_cfg_t;

/** The counters (GSP_MSG_STATS). */
typedef struct gsp_stats_event {
    gsp_swim_stats_t swim;
    gsp_actor_stats_t actor;
    uint32_t awareness, incarnation;
} gsp_stats_event_t;

/** A member changed (GSP_MSG_MEMBER). */
typedef struct gsp_member_event {
    char name[GSP_NAME_MAX + 1];
    char addr[GSP_ADDR_MAX + 1];
    gsp_state_t state, prev;
    uint32_t incarnation;
    uint64_t meta_version;
    uint64_t since_ns;
    int joined, self;
    int declared;   /* dead because our own suspicion timeout fired (gsp_member_t.declared) */
    int meta_known; /* meta holds its metadata (else it is being fetched) */
    size_t meta_len;
    uint8_t meta[]; /* encoded (gossip/meta.h) */
} gsp_member_event_t;

/** Another member declared a death we hold too (GSP_MSG_ACCUSED; gsp_swim_ops_t.accused). */
typedef struct gsp_accused_event {
    char member[GSP_NAME_MAX + 1];
    char accuser[GSP_NAME_MAX + 1];
    uint32_t incarnation;
} gsp_accused_event_t;

/** A method set became known (GSP_MSG_SET). */
typedef struct gsp_set_event {
    uint64_t hash;
    size_t n;
    char *names[]; /* n pointers, then the strings (one allocation) */
} gsp_set_event_t;

/** A name is used by two live nodes (GSP_MSG_CONFLICT). */
typedef struct gsp_conflict_event {
    char name[GSP_NAME_MAX + 1];
    char ours[GSP_ADDR_MAX + 1], theirs[GSP_ADDR_MAX + 1];
    int self;    /* the name is ours */
    int joining; /* ... and we have not joined yet: we are the newcomer */
} gsp_conflict_event_t;

/** Our metadata and its method sets (GSP_MSG_SET_META; the actor frees it). */
typedef struct gsp_meta_update {
    uint8_t *meta;
    size_t meta_len;
    uint64_t version; /* the metadata version (a signed record's, ca/record_sig.h); 0: the next */
    size_t n_sets;
    struct {
        uint64_t hash;
        size_t n;
        char **names;
    } * sets;
} gsp_meta_update_t;

/** Frees a gsp_meta_update_t (its ptr_free). */
void gsp_meta_update_free(void *p);

/** This node's attributes (gossip/meta.h: its role, the instances it evicted) for the gossip
 *  bridge to announce with its instances (GSP_MSG_SET_ATTRS; each update replaces the last). */
typedef struct gsp_attrs_update {
    char role[GSP_FIELD_MAX + 1]; /* "" for none */
    size_t n_evicted;             /* at most GSP_EVICTED_MAX are announced */
    struct {
        char *service, *addr;
    } * evicted;
} gsp_attrs_update_t;

/** Frees a gsp_attrs_update_t (its ptr_free). */
void gsp_attrs_update_free(void *p);

/** The actor. */
extern const mesh_actor_ops_t gsp_actor_ops;

#endif
