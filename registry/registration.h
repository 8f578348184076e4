/*
 * registry/registration.h: keeps one instance registered in etcd on a libuv loop: the thin
 * adapter that runs reg_lease_sm (lease_sm.h) with etcd_client requests and one uv timer.
 *
 * The instance serves one or more services; each gets the key `<prefix>/<service>/<addr>` with
 * the naming-resolver value {"Op":0,"Addr":..,"Metadata":null,"meshd":{node, methods, zone,
 * weight, version, labels}} (registry/instance.h); all keys are written in one txn under one
 * lease (default TTL 10 s, keepalive every TTL/3). A lost lease is replaced and the keys put
 * again. Stopping deletes the keys (one txn) and revokes the lease.
 */
#ifndef REG_REGISTRATION_H
#define REG_REGISTRATION_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "registry/etcd_client.h"
#include "registry/lease_sm.h"

/** One service of the instance. */
typedef struct reg_service {
    const char *name;           /* "package.Service" */
    const char *const *methods; /* method names ("Get"), may be NULL */
    size_t n_methods;
} reg_service_t;

/** Settings; everything is copied. */
typedef struct reg_registration_cfg {
    etcd_client_t *client;     /* borrowed; must outlive the registration */
    const char *prefix;        /* default REG_DEFAULT_PREFIX */
    const char *addr;          /* "host:port" callers should use */
    const char *node;          /* node id */
    const char *zone;          /* may be NULL */
    const char *version;       /* release label (canaries), may be NULL; never a schema hash */
    uint32_t weight;           /* default 1 (0 means 1); at most REG_MAX_WEIGHT */
    const char *const *labels; /* "KEY=VALUE" each (KEY non-empty), n_labels of them */
    size_t n_labels;
    int64_t ttl_s; /* default 10 */
    const reg_service_t *services;
    size_t n_services;
} reg_registration_cfg_t;

typedef struct reg_registration reg_registration_t;

/** Events reported to the owner. */
typedef enum {
    REG_REGISTERED = 0,   /* keys are in etcd (first time, or again after a lost lease) */
    REG_LEASE_LOST = 1,   /* the lease expired in etcd; registering again */
    REG_DEREGISTERED = 2, /* reg_registration_stop() finished */
} reg_registration_event_t;

/** Owner callback; lease is the lease concerned. */
typedef void (*reg_registration_cb)(void *ud, reg_registration_event_t ev, int64_t lease);

/** Creates a registration (not started); NULL on bad settings or OOM. */
reg_registration_t *reg_registration_new(uv_loop_t *loop, const reg_registration_cfg_t *cfg,
                                         reg_registration_cb cb, void *ud);

/** Starts registering. Returns 0 or -1. */
int reg_registration_start(reg_registration_t *r);

/** Deregisters (delete keys + revoke lease); REG_DEREGISTERED is reported when done. */
void reg_registration_stop(reg_registration_t *r);

/** Frees (without deregistering: the lease then expires on its own). */
void reg_registration_free(reg_registration_t *r);

/** The state machine (state, lease, regrants). */
const reg_lease_sm_t *reg_registration_sm(const reg_registration_t *r);

#endif
