/*
 * simulations/sim_check.h: the registry simulation's invariants, checked against the simulated
 * etcd.
 *
 * During the run, on every publish: the published view existed in etcd at the revision the
 * node claims (prefix consistency, by fingerprint) and holds only keys that were written.
 * At the end, once everything healed and went quiet: the node's table equals etcd's live set
 * under the prefix (same keys and mod_revisions, malformed values kept as skipped entries,
 * resolver Delete records absent, every valid entry's fields equal to the parsed value), the
 * node's revision equals etcd's and its link is connected.
 */
#ifndef SIM_CHECK_H
#define SIM_CHECK_H

#include <stddef.h>

#include "simulations/sim_etcd.h"
#include "registry/view.h"

/** The fingerprint of a view's table, comparable with sim_etcd_fingerprint(). */
uint64_t sim_check_fingerprint(const reg_table_t *t);

/** Checks a view being published (a production registry actor's) whose table fingerprint is
 *  fp; returns 0, or -1 with the reason in why. */
int sim_check_published(const sim_etcd_t *e, const reg_view_t *v, uint64_t fp, char *why,
                        size_t cap);

/** Checks a node's view after the run; returns 0, or -1 with the (first) reason in why. */
int sim_check_final(const sim_etcd_t *e, const reg_view_t *v, const char *prefix, char *why,
                    size_t cap);

#endif
