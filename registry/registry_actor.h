/*
 * registry/registry_actor.h: the registry actor, the node's one owner of etcd.
 *
 * It holds the etcd seam (registry/etcd_api.h), the watch-fed view of the prefix
 * (registry/view.h) when the node routes, the registrations other actors asked for
 * (registry/registration.h) and the reconciler that merges static routes with the etcd view
 * (registry/reconciler.h). Its state changes only in its message handler: etcd answers arrive
 * as REG_MSG_ETCD messages, its timers are actor timers, and other actors talk to it by
 * message (registry/reg_msgs.h):
 *
 *   sidecar  --REG_MSG_REGISTER (request, reg_spec_t)-->  registry  --REG_MSG_REGISTER_OK-->
 *   sidecar  <--REG_MSG_EVENT (registered / lease lost / deregistered)--  registry
 *   sidecar  --REG_MSG_DEREGISTER-->  registry
 *   registry --REG_MSG_ROUTES (mesh_routes_t)-->  subscriber (the node, which hands the table
 *                                                  to its workers)
 *   registry --REG_MSG_LINK (reg_link_msg_t)-->   link subscriber (the node, for its admin API):
 *                                                  etcd connected or degraded, on each change
 *
 * The same actor runs on the real executor (etcd through libcurl) and in simulations/ (etcd
 * simulated), because the seam is chosen by a factory in its arguments. Run it under a
 * supervisor (actors/supervisor.h): its arguments live across restarts and remember the last
 * etcd routes it published, so a restarted actor keeps serving them (and the snapshot file
 * covers a restarted process) instead of publishing a static-only table.
 */
#ifndef REG_REGISTRY_ACTOR_H
#define REG_REGISTRY_ACTOR_H

#include "actors/actor.h"
#include "registry/etcd_api.h"
#include "registry/reg_msgs.h"
#include "registry/route_table.h"
#include "registry/view.h"

/** Builds the actor's etcd seam on its loop; results go to deliver(deliver_ud, ...). */
typedef etcd_api_t *(*reg_etcd_factory_fn)(mesh_actor_t *self, etcd_deliver_fn deliver,
                                           void *deliver_ud, void *arg);

/** The actor's settings; strings are copied by reg_actor_args_new. */
typedef struct reg_actor_cfg {
    reg_etcd_factory_fn etcd_new; /* NULL: no etcd (static routes only) */
    void *etcd_arg;               /* for etcd_new; must outlive the actor */
    const char *prefix;           /* default REG_DEFAULT_PREFIX */
    int watch;                    /* keep a view of the prefix and publish routing tables */
    const char *snapshot_path;    /* the view's snapshot file, NULL for none */
    /** The folder holding snapshot_path (then a plain file name), borrowed, outliving the
     *  actor: the simulator's sim_fs. NULL: the real folder of the path. */
    const mesh_fs_t *snapshot_fs;
    reg_watch_cfg_t watch_cfg;  /* coalescing and backoff (the jitter seed is drawn) */
    mesh_actor_id_t subscriber; /* gets REG_MSG_ROUTES; 0: nobody */
    /** Gets REG_MSG_LINK when etcd's reachability changes (and after each start, once known):
     *  the view's link when watching, else whether the registrations' etcd calls get answers
     *  (an answer with an etcd error counts as reachable). 0: nobody. */
    mesh_actor_id_t link_subscriber;
    /** Observation hook (tests, simulations, the node's metrics), on the actor's thread: called
     * after every step of the view (an etcd result or a timer), with published set when it produced
     * a table; and with view NULL at each start of the actor (a restart: the previous view is
     *  gone). */
    void (*on_view)(void *ud, const reg_view_t *view, int published);
    void *hooks_ud;
    /** Without etcd, registrations are kept locally (announced to the local subscriber, i.e.
     *  gossip) instead of refused. */
    int local_registry;
    uint64_t gossip_grace_ns;        /* after etcd comes back (0: 5 s) */
    uint64_t corroborate_timeout_ns; /* a corroborating connect gives up (0: 1 s) */
} reg_actor_cfg_t;

/** This node's own registrations, as etcd records (REG_MSG_LOCAL): what the node announces in
 *  gossip whether or not etcd is reachable. */
typedef struct reg_local {
    size_t n;
    char **keys;   /* etcd keys (prefix/service/addr) */
    char **values; /* records (registry/instance.h) */
} reg_local_t;

/** Frees a reg_local_t (its ptr_free). */
void reg_local_free(void *p);

/** A member that SWIM declares dead or left, with the services its last metadata listed.
 * services_unknown: we never had its metadata (it died before this node joined, e.g. a proxy
 * restarted from its snapshot during an etcd outage): any service may hold its instances. */
typedef struct reg_dead_owner {
    char *node;
    size_t n_services;
    char **services;
    int services_unknown;
} reg_dead_owner_t;

/**
 * What gossip knows (REG_MSG_GOSSIP, from the gossip bridge): the instances of live members (a
 * table of source MESH_ROUTE_GOSSIP) and the owners SWIM declares dead. The routes are merged
 * while etcd is off or unreachable (and for a grace period after it comes back, while sidecars
 * re-put their keys); dead owners' instances leave the etcd-sourced routes at once when etcd is
 * unreachable, and when etcd is connected only once a connect to the instance fails (the data
 * plane corroborates the death). Either way at least half of a service's instances stay
 * routable because of gossip alone (the panic floor).
 */
typedef struct reg_gossip {
    mesh_routes_t *routes; /* one reference, or NULL */
    size_t n_dead;
    /* One allocation: the n_dead entries, then their service lists and the strings they point
     * to (reg_gossip_free frees it whole). */
    reg_dead_owner_t *dead;
    /* Of the live members whose gossip metadata says role "monitor" (gossip/meta.h): the one
     * whose name sorts first (NULL: none), and whether it is this node (monitors reporting
     * without etcd leave a would-be eviction to it: one report, not one per replica). */
    char *first_monitor;
    int first_monitor_self;
} reg_gossip_t;

/** Frees a reg_gossip_t (its ptr_free). */
void reg_gossip_free(void *p);

/** The etcd link as routing sees it. */
typedef enum {
    REG_ETCD_OFF = 0,       /* no etcd configured */
    REG_ETCD_CONNECTED = 1, /* the view is live */
    REG_ETCD_DEGRADED = 2,  /* unreachable: serving the last view (and gossip) */
} reg_etcd_state_t;

/** What every start of the actor reads (and what it remembers across restarts). */
typedef struct reg_actor_args reg_actor_args_t;

/** Arguments for cfg; static_routes (may be NULL) is merged into every table and its
 *  reference is taken over. NULL on OOM. */
reg_actor_args_t *reg_actor_args_new(const reg_actor_cfg_t *cfg, mesh_routes_t *static_routes);

/** Frees the arguments once no actor uses them (after the executor stopped). */
void reg_actor_args_free(reg_actor_args_t *a);

/** The actor's operations: spawn (or supervise) with a reg_actor_args_t * as argument. */
extern const mesh_actor_ops_t reg_actor_ops;

/** Mailbox capacity the actor should be spawned with (etcd answers are never refused). */
#define REG_ACTOR_MAILBOX (1u << 16)

/** The production etcd factory's argument (registry/etcd_api_curl.c on the actor's loop). */
typedef struct reg_curl_factory {
    struct mesh_exec *exec;
    etcd_api_curl_cfg_t cfg;
} reg_curl_factory_t;

/** The production factory (arg: reg_curl_factory_t *). */
etcd_api_t *reg_etcd_curl_factory(mesh_actor_t *self, etcd_deliver_fn deliver, void *deliver_ud,
                                  void *arg);

#endif
