/*
 * node/gossip_bridge.h: the gossip bridge: the actor between the gossip layer and the rest of
 * the node, on the control loop.
 *
 * It starts the gossip actor (gossip/gossip_actor.h) as its child and keeps a mirror of the
 * membership it reports. From the mirror it makes what the registry actor routes with
 * (REG_MSG_GOSSIP: the instances of live members as a table of source gossip, and the owners
 * SWIM declares dead with the services they had), it serves the admin API's /v1/members and
 * marks /v1/routes entries whose owner is dead. The other way, it subscribes to the registry
 * actor's own registrations (REG_MSG_LOCAL) and announces them as this node's gossip metadata,
 * with their method sets, whether etcd is reachable or not.
 *
 * Audit (audit/audit_api.h), one emitter per fact: member_dead (and instance_removed with
 * source gossip for each instance its metadata listed) only when our own suspicion timeout
 * declared the member dead, and of the members whose timeouts declared one death within a
 * tie-break window (ten gossip rounds) only the one whose name sorts first; member_left about
 * ourselves when we leave (the gossip actor announces the leave as it stops at shutdown).
 *
 * Signed records: with an identity (--identity-dir) our record is signed (node/gossip_signer.h)
 * and announced again whenever the certificate changes. With verification on, each member's
 * record is checked once per metadata version (ca/record_sig.h); one that fails is not routed
 * (the member stays known), is counted in meshd_gossip_records_total{result}, logged
 * once per (member, reason) and audited (gossip_record_rejected).
 *
 * A name conflict about our own name while we are joining (another live node uses it) stops
 * the node with exit 2: names must be unique, and the newcomer gives way.
 */
#ifndef MESH_GOSSIP_BRIDGE_H
#define MESH_GOSSIP_BRIDGE_H

#include "actors/actor.h"
#include "audit/audit_api.h"
#include "ca/record_sig.h"
#include "gossip/gossip_actor.h"

struct mesh_admin;

/** The bridge's settings (the spawn argument; it must outlive the actor, restarts too). */
typedef struct gsp_bridge_args {
    gsp_actor_cfg_t gossip;          /* the gossip actor's (subscriber set by the bridge) */
    const mesh_actor_id_t *registry; /* the registry actor, or NULL */
    mesh_actor_id_t node;            /* the node actor (NODE_MSG_FAIL), or 0 */
    char prefix[256];                /* the etcd key prefix of our registrations */
    struct mesh_admin *admin;        /* on the control loop, or NULL */
    uint64_t coalesce_ns;            /* membership changes gathered before a rebuild (0: 20 ms) */
    int routes;         /* the registry actor routes (a proxy): send it REG_MSG_GOSSIP */
    audit_api_t *audit; /* where membership audit events go (NULL: nowhere) */
    /* Signed records (docs/gossip.md): */
    const char *identity_dir; /* key.pem, cert.pem: sign our record (NULL: unsigned) */
    int verify;               /* route only records that verify (trust set) */
    rsig_trust_t *trust;      /* the CA records chain to */
    svr_rules_t *rules;       /* who may register what besides certificates, or NULL */
} gsp_bridge_args_t;

extern const mesh_actor_ops_t gsp_bridge_ops;

/** Message types of the bridge's own timers. */
enum {
    GSP_BRIDGE_MSG_REBUILD = 0x47530040u,
    GSP_BRIDGE_MSG_DEATH = 0x47530041u,    /* a declared death's tie-break window ended */
    GSP_BRIDGE_MSG_IDENTITY = 0x47530042u, /* look for a new signing certificate */
};

#endif
