/*
 * gossip/evicted.h: the instances that live monitors announce as evicted ("marked failed in
 * gossip"). The leading monitor lists the instances it evicted from etcd in its gossip metadata
 * (the "evicted" node attribute, gossip/meta.h); a node that routes with gossip collects the
 * lists of every live member whose role is "monitor" into this set and keeps those instances
 * out of its gossip-sourced routes, so an evicted instance stays unroutable in degraded mode
 * (etcd down) too. The marker in etcd stays the source of truth while etcd is up.
 *
 * A sorted array of "service\n addr" keys: built once per routing rebuild, looked up per
 * gossip instance.
 */
#ifndef GSP_EVICTED_H
#define GSP_EVICTED_H

#include <stddef.h>

#include "gossip/meta.h"

/** A set of (service, address) pairs. */
typedef struct gsp_evicted_set {
    char **keys;
    size_t n, cap;
    int sorted;
} gsp_evicted_set_t;

/** Initializes an empty set. */
void gsp_evicted_set_init(gsp_evicted_set_t *s);
/** Frees it. */
void gsp_evicted_set_destroy(gsp_evicted_set_t *s);

/** Adds the "evicted" attribute of a member's attributes when its role is "monitor" (a node
 *  of another role cannot mark instances failed). 0, or -1 on out of memory. */
int gsp_evicted_set_add_attrs(gsp_evicted_set_t *s, const gsp_node_attrs_t *a);

/** Adds one pair. 0, or -1 on out of memory. */
int gsp_evicted_set_add(gsp_evicted_set_t *s, gsp_str_t service, gsp_str_t addr);

/** 1 when (service, addr) is in the set, else 0 (sorts the set on first use after adds). */
int gsp_evicted_set_has(gsp_evicted_set_t *s, const char *service, const char *addr);

#endif
