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
#include "simulations/sim_watcher.h"

/** Checks a view being published; returns 0, or -1 with the reason in why. */
int sim_check_published(const sim_etcd_t *e, const sim_watcher_t *w, char *why, size_t cap);

/** Checks a node after the run; returns 0, or -1 with the (first) reason in why. */
int sim_check_final(const sim_etcd_t *e, const sim_watcher_t *w, const char *prefix, char *why,
                    size_t cap);

#endif
