/*
 * registry/reg_msgs.h: the message types of the registry actor (registry/registry_actor.h)
 * and of the components it drives (the view, registry/view.h; registrations,
 * registry/registration.h), and the tags of their etcd requests.
 *
 * Message type ranges of meshd's actors (one per module, so a stray message is recognisable):
 * registry 0x5245xxxx, node 0x4E4Fxxxx, sidecar 0x5343xxxx. Types at or above
 * MESH_MSG_SYSTEM belong to the runtime.
 */
#ifndef REG_MSGS_H
#define REG_MSGS_H

#include <stdint.h>

enum {
    /* From the etcd seam: ptr = etcd_result_t (freed with the message). */
    REG_MSG_ETCD = 0x52450001u,
    /* Timers of the view. */
    REG_MSG_VIEW_RETRY = 0x52450002u,
    REG_MSG_VIEW_FLUSH = 0x52450003u,
    /* Timer of the view's snapshot writer, without a libuv loop (the simulator). */
    REG_MSG_VIEW_SNAP = 0x52450004u,
    /* Timer of a registration (corr: the timer id). */
    REG_MSG_LEASE_TIMER = 0x52450005u,
    /* Register an instance; ptr = reg_spec_t (freed with the message). The sender gets
     * REG_MSG_REGISTER_OK (reg_register_ok_t; id 0: refused), then REG_MSG_EVENT events. */
    REG_MSG_REGISTER = 0x52450010u,
    REG_MSG_REGISTER_OK = 0x52450011u,
    /* Deregister (reg_deregister_t); REG_MSG_EVENT REG_EV_DEREGISTERED follows. */
    REG_MSG_DEREGISTER = 0x52450012u,
    /* Deregister every registration the sender owns (no payload): what a restarted owner sends
     * first, since it does not know what its previous start registered. */
    REG_MSG_RELEASE_OWNER = 0x52450014u,
    /* To the registration's owner: reg_event_t. */
    REG_MSG_EVENT = 0x52450013u,
    /* To the subscriber: a new routing table; ptr = mesh_routes_t (one reference). */
    REG_MSG_ROUTES = 0x52450020u,
    /* To the node actor (which hands tables to its workers): send the sender a reference of
     * every routing table from now on (REG_MSG_ROUTES), the current one at once; no payload.
     * A restarted actor asks again (it is kept once). The gateway's descriptor cache uses it. */
    REG_MSG_ROUTES_WATCH = 0x52450023u,
    /* To the link subscriber: whether etcd answers (reg_link_msg_t), sent when it changes. */
    REG_MSG_LINK = 0x52450022u,
    /* The snapshot file write finished (from the work pool). */
    REG_MSG_SNAPSHOT_DONE = 0x52450021u,
    /* Subscribe to this node's own registrations (no payload): the sender gets REG_MSG_LOCAL
     * now and after every change (the gossip bridge announces them in gossip). */
    REG_MSG_LOCAL_SUBSCRIBE = 0x52450030u,
    /* To the local subscriber: ptr = reg_local_t (freed with the message). */
    REG_MSG_LOCAL = 0x52450031u,
    /* From the gossip bridge: ptr = reg_gossip_t (freed with the message). */
    REG_MSG_GOSSIP = 0x52450032u,
    /* Timers of the registry actor: the end of the gossip grace after etcd came back, and a
     * corroboration probe's timeout (corr: the timer id). */
    REG_MSG_GOSSIP_GRACE = 0x52450033u,
    REG_MSG_PROBE_TIMEOUT = 0x52450034u,
    /* Corroboration results came in: the table is rebuilt once for all of them. */
    REG_MSG_PROBE_APPLY = 0x52450036u,
    REG_MSG_PROBE_TICK = 0x52450035u,
};

/** REG_MSG_LINK's payload. */
typedef struct reg_link_msg {
    int32_t connected; /* 1: etcd answers; 0: degraded (unreachable, last view kept) */
} reg_link_msg_t;

/* etcd request tags: kind in the top byte, the registration id below it, a sequence below. */
#define REG_TAG_VIEW_RANGE 0x01u
#define REG_TAG_VIEW_WATCH 0x02u
#define REG_TAG_LEASE      0x03u

static inline uint64_t reg_tag(uint32_t kind, uint32_t id, uint32_t seq)
{
    return (uint64_t)kind << 56 | (uint64_t)(id & 0xFFFFFFu) << 32 | seq;
}
static inline uint32_t reg_tag_kind(uint64_t tag)
{
    return (uint32_t)(tag >> 56);
}
static inline uint32_t reg_tag_id(uint64_t tag)
{
    return (uint32_t)(tag >> 32) & 0xFFFFFFu;
}

#endif
