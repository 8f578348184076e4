/*
 * registry/registration.h: keeping one instance registered in etcd, a component of the
 * registry actor (registry/registry_actor.h): it carries out the effects of the sans-I/O lease
 * machine (registry/lease_sm.h) with the actor's etcd seam and one actor timer.
 *
 * The instance serves one or more services; each gets the key `<prefix>/<service>/<addr>` with
 * the naming-resolver value {"Op":0,"Addr":..,"Metadata":null,"meshd":{node, methods, zone,
 * weight, version, labels}} (registry/instance.h); all keys are written in one txn under one
 * lease (default TTL 10 s, keepalive every TTL/3). A lost lease is replaced and the keys put
 * again. Deregistering deletes the keys in a txn that compares each key's lease with ours (a
 * slow old pod never deletes the keys of a new pod on the same address), then revokes the
 * lease.
 *
 * After every keepalive the registration checks that its keys still carry its lease (one txn
 * that compares them all). A key that vanished while the lease lives (etcd data loss, an
 * operator's delete) is put again, unless the monitor's eviction marker for it names this
 * lease: an evicted instance stays out until the monitor removes the marker. A key that now
 * carries another lease belongs to someone else (a new pod on the same address) and is left.
 *
 * A put that etcd refuses with "permission denied" (its RBAC: the etcd user may not write
 * this service's prefix, docs/etcd-rbac.md) is logged once with the keys and the user,
 * reported as REG_EV_DENIED, and retried every REG_LEASE_DENIED_RETRY_MS without more logs
 * until it succeeds (an operator granted the role).
 *
 * Whoever asked for the registration (the sidecar actor) is told what happens through
 * REG_MSG_EVENT messages (registry/reg_msgs.h).
 */
#ifndef REG_REGISTRATION_H
#define REG_REGISTRATION_H

#include <stddef.h>
#include <stdint.h>

#include "actors/actor.h"
#include "registry/etcd_api.h"
#include "registry/lease_sm.h"

/** One service of the instance. */
typedef struct reg_service {
    const char *name;           /* "package.Service" */
    const char *const *methods; /* method names ("Get"), may be NULL */
    size_t n_methods;
} reg_service_t;

/** What to register; everything is copied by reg_spec_build. */
typedef struct reg_registration_cfg {
    const char *prefix;        /* default REG_DEFAULT_PREFIX */
    const char *addr;          /* "host:port" callers should use */
    const char *node;          /* node id */
    const char *zone;          /* may be NULL */
    const char *version;       /* release label (canaries), may be NULL; never a schema hash */
    uint32_t weight;           /* default 1 (0 means 1); at most REG_MAX_WEIGHT */
    const char *const *labels; /* "KEY=VALUE" each (KEY non-empty), n_labels of them */
    size_t n_labels;
    int64_t ttl_s; /* default 10 */
    int mesh_tls;  /* addr serves TLS with a mesh identity: "tls":"mtls" in the records */
    const reg_service_t *services;
    size_t n_services;
} reg_registration_cfg_t;

/** A registration ready to send to the registry actor: its keys and values, built once. */
typedef struct reg_spec {
    char *addr;
    int64_t ttl_s;
    size_t n_keys;
    char **keys;
    char **values;
    char **markers; /* the eviction marker key of each key (registry/instance.h) */
} reg_spec_t;

/** Builds the keys and values of cfg (NULL on bad settings or out of memory). */
reg_spec_t *reg_spec_build(const reg_registration_cfg_t *cfg);

/** Frees a spec (NULL is ignored); also usable as a message payload destructor. */
void reg_spec_free(void *spec);

/** Events reported to the owner (reg_event_t.event). */
typedef enum {
    REG_EV_REGISTERED = 0,   /* keys are in etcd (first time, or again after a lost lease) */
    REG_EV_LEASE_LOST = 1,   /* the lease expired in etcd; registering again */
    REG_EV_DEREGISTERED = 2, /* deregistration finished */
    REG_EV_DENIED = 3,       /* etcd refused the keys (permission denied); retried slowly */
} reg_event_kind_t;

/** Payload of REG_MSG_EVENT. */
typedef struct reg_event {
    uint32_t id;
    int32_t event; /* reg_event_kind_t */
    int64_t lease;
} reg_event_t;

/** Payload of REG_MSG_REGISTER_OK. */
typedef struct reg_register_ok {
    uint32_t id;
} reg_register_ok_t;

/** Payload of REG_MSG_DEREGISTER. */
typedef struct reg_deregister {
    uint32_t id;
} reg_deregister_t;

typedef struct reg_registration reg_registration_t;

/** A registration with id for owner (not started); spec is borrowed and must outlive it.
 *  NULL on OOM. */
reg_registration_t *reg_registration_new(uint32_t id, mesh_actor_id_t owner,
                                         const reg_spec_t *spec);

/** Starts registering with the actor's timers and etcd seam. */
void reg_registration_start(reg_registration_t *r, mesh_actor_t *self, etcd_api_t *api);

/** Deregisters; REG_EV_DEREGISTERED is reported when done. */
void reg_registration_stop(reg_registration_t *r);

/** Feeds an etcd result tagged with this registration (REG_TAG_LEASE and its id). */
void reg_registration_on_result(reg_registration_t *r, const etcd_result_t *res);

/** Feeds a REG_MSG_LEASE_TIMER message; 1 when it was this registration's timer. */
int reg_registration_on_timer(reg_registration_t *r, const mesh_msg_t *m);

/** Whether the registration is done (deregistered). */
int reg_registration_done(const reg_registration_t *r);

/** Its id, and the actor told about its events. */
uint32_t reg_registration_id(const reg_registration_t *r);
mesh_actor_id_t reg_registration_owner(const reg_registration_t *r);

/** Frees (without deregistering: the lease then expires on its own). */
void reg_registration_free(reg_registration_t *r);

/** The state machine (state, lease, regrants). */
const reg_lease_sm_t *reg_registration_sm(const reg_registration_t *r);

#endif
