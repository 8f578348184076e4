/*
 * monitor/evict_txn.h: the monitor's etcd keys and the transactions it runs, built as etcd
 * seam requests (registry/etcd_api.h), without I/O.
 *
 * Keys, with root = the registry prefix without its last component ("meshd/services" ->
 * "meshd/"):
 *
 *   <root>monitor/leader           the election key (monitor/election.h), under the leader's
 *                                  lease; value {"node":..}
 *   <root>monitor/eviction-lease   the ID of the eviction lease, under that lease itself
 *   <root>evicted/<service>/<addr> an eviction marker (registry/instance.h), under the
 *                                  eviction lease; value {"lease":"<evicted registration's
 *                                  lease>","reason":..,"monitor":..,"evictions":n,"at":..,
 *                                  "zone":..} (zone only when the registration had one)
 *
 * Every write is fenced: the txn compares the election key's create revision with the
 * leader's fence, so a deposed leader's write fails in etcd. An eviction also compares the
 * instance key's mod revision with the one the verdict was about, so a stale verdict never
 * deletes a fresh registration. Failure branches read the election key, so the answer tells
 * "fenced" (someone else leads) from "stale" (the registration changed).
 */
#ifndef MON_EVICT_TXN_H
#define MON_EVICT_TXN_H

#include <stddef.h>
#include <stdint.h>

#include "registry/etcd_api.h"

/** The monitor's keys for one registry prefix. */
typedef struct mon_keys {
    char prefix[256];        /* "<prefix>/" (the registrations) */
    char marker_prefix[256]; /* "<root>evicted/" */
    char leader[256];
    char evlease[256];
} mon_keys_t;

/** Fills keys for prefix (NULL: REG_DEFAULT_PREFIX). 0, or -1 when it does not fit. */
int mon_keys_init(mon_keys_t *k, const char *prefix);

/** A request and the storage its pointers point into (valid while the struct lives). */
typedef struct mon_txn {
    etcd_request_t req;
    etcd_cmp_t cmps[2];
    etcd_op_t success[2];
    etcd_op_t failure[1];
    char key[512];
    char marker[512];
    char *value; /* malloc'd, freed by mon_txn_release */
} mon_txn_t;

/** Frees what a mon_txn_t built (the struct itself is the caller's). */
void mon_txn_release(mon_txn_t *t);

/** The campaign: version(leader) == 0 ? put leader = {"node":node} under lease : range leader. */
int mon_txn_campaign(mon_txn_t *t, const mon_keys_t *k, const char *node, int64_t lease,
                     uint64_t tag);

/**
 * An eviction of service/addr: mod(key) == mod_revision and create(leader) == fence ?
 * delete key, put marker (naming reg_lease, with reason, node, zone, evictions, at_unix_ms) under
 * ev_lease : range leader. 0, or -1 on out of memory or a key that does not fit.
 */
int mon_txn_evict(mon_txn_t *t, const mon_keys_t *k, const char *service, const char *addr,
                  int64_t mod_revision, int64_t fence, int64_t reg_lease, int64_t ev_lease,
                  const char *reason, const char *node, const char *zone, uint32_t evictions,
                  int64_t at_unix_ms, uint64_t tag);

/** A re-admission: create(leader) == fence and mod(marker) == marker_mod_revision ? delete
 *  marker : range leader. */
int mon_txn_readmit(mon_txn_t *t, const mon_keys_t *k, const char *service, const char *addr,
                    int64_t marker_mod_revision, int64_t fence, uint64_t tag);

/** Records the eviction lease: create(leader) == fence ? put evlease = id under id : range
 *  leader. */
int mon_txn_evlease(mon_txn_t *t, const mon_keys_t *k, int64_t ev_lease, int64_t fence,
                    uint64_t tag);

/** The eviction count a marker's value records (0 when none). */
uint32_t mon_marker_evictions(const char *val, size_t len);

/** The zone a marker records (the evicted registration's), copied into buf (cap bytes): ""
 *  when none, or when it does not fit. A leader that takes over counts an evicted instance in
 *  its zone's valve by it, the registration being gone. */
void mon_marker_zone(const char *val, size_t len, char *buf, size_t cap);

/**
 * After a failed fenced txn: whether the answer's read of the election key (res->kvs) shows
 * fence still leading (1: the other comparison failed, e.g. a stale verdict) or not (0: this
 * monitor was deposed).
 */
int mon_txn_fence_holds(const etcd_result_t *res, const mon_keys_t *k, int64_t fence);

#endif
