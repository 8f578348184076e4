/*
 * node/node_msgs.h: the messages of the node actor and the worker actors (node/node.h).
 * Range 0x4E4Fxxxx (see registry/reg_msgs.h for the ranges of every module).
 */
#ifndef MESH_NODE_MSGS_H
#define MESH_NODE_MSGS_H

#include <stdint.h>

enum {
    /* To the node: a shutdown signal arrived (node_signal_t). */
    NODE_MSG_SIGNAL = 0x4E4F0001u,
    /* To the node: tell the sender when shutdown begins (no payload). */
    NODE_MSG_WATCH_SHUTDOWN = 0x4E4F0002u,
    /* From the node to the actors that asked: shutdown began (no payload). */
    NODE_MSG_SHUTDOWN = 0x4E4F0003u,
    /* To the node: a component the node cannot run without failed (node_fail_t). */
    NODE_MSG_FAIL = 0x4E4F0004u,
    /* To the node: worker i's event ring holds events (node_worker_t). */
    NODE_MSG_EVENTS = 0x4E4F0005u,
    /* To the node: worker i freed its engine (node_worker_t). */
    NODE_MSG_WORKER_DONE = 0x4E4F0006u,
    /* Node -> worker: a routing table (ptr: mesh_routes_t, one reference). */
    NODE_MSG_ROUTES = 0x4E4F0010u,
    /* Node -> worker: drain (GOAWAY, let calls finish), then free the engine. */
    NODE_MSG_DRAIN = 0x4E4F0011u,
    /* Node -> worker: free the engine now (calls in flight are reset). */
    NODE_MSG_FORCE = 0x4E4F0012u,
    /* Worker -> itself: the engine finished draining. */
    NODE_MSG_DRAINED = 0x4E4F0013u,
    /* Timers. */
    NODE_MSG_PREDRAIN_DONE = 0x4E4F0020u,
    NODE_MSG_DRAIN_TIMEOUT = 0x4E4F0021u,
    NODE_MSG_WORKER_TICK = 0x4E4F0022u,
    /** To the node: SIGHUP, reload what can be reloaded (the policy chain). */
    NODE_MSG_RELOAD = 0x4E4F0023u,
    /** To a worker: ptr = pol_chain_t (a reference), the policy for calls from now on. */
    NODE_MSG_POLICY = 0x4E4F0024u,
    /** To the node: node_policy_t, a snapshot built off the actor (new JWKS keys) for every
     *  worker. */
    NODE_MSG_POLICY_NEW = 0x4E4F0025u,
    /* node -> worker: a payload for the worker's front end (mesh_node_frontend_publish) */
    NODE_MSG_FRONTEND = 0x4E4F0026u,
    /* worker -> itself: the front end drained; the engine drains next */
    NODE_MSG_FE_DRAINED = 0x4E4F0027u,
    /* node -> worker: a shutdown began: health at the entry turns NOT_SERVING (before the
     * pre-drain period and the GOAWAY) */
    NODE_MSG_STOP_SERVING = 0x4E4F0028u,
    /* node -> worker: a payload for the worker's extension number (type - NODE_MSG_EXT)
     * (mesh_node_ext_publish); NODE_MSG_EXT .. NODE_MSG_EXT + MESH_NODE_MAX_EXTS - 1 */
    NODE_MSG_EXT = 0x4E4F0030u,
    /* node timer: check the TLS certificate files for changes (node/node_tls.h) */
    NODE_MSG_TLS_POLL = 0x4E4F0029u,
};

typedef struct node_signal {
    int32_t signum;
} node_signal_t;

typedef struct node_fail {
    int32_t exit_code;
    char why[40];
} node_fail_t;

typedef struct node_worker {
    int32_t worker; /* 0..N-1 */
} node_worker_t;

/** NODE_MSG_POLICY_NEW's payload: a reference to a policy snapshot (policy/chain.h). */
typedef struct node_policy {
    struct pol_chain *chain;
} node_policy_t;

#endif
