/*
 * audit/audit_load.h: a synthetic audit event source, for tests and benchmarks only
 * (--audit-test-rate N, off by default).
 *
 * An actor on the control loop that emits N events per second through audit_emit, like any
 * control actor does: type config_rejected, outcome failure, service test.Load0 .. test.Load15
 * round robin (sixteen Kafka keys, to check the order per key), reason "synthetic test event K
 * of --audit-test-rate (not a real event)", K counting from 1. It paces itself on a 10 ms timer and
 * catches up after a late one, so the rate holds on a busy loop. Nothing else in meshd emits
 * config_rejected today, so a consumer can tell these records apart by type and reason.
 */
#ifndef AUDIT_LOAD_H
#define AUDIT_LOAD_H

#include <stdint.h>

#include "actors/actor.h"
#include "audit/audit_api.h"

/** The actor's argument (must outlive it). */
typedef struct audit_load_args {
    audit_api_t *api;
    uint32_t rate;    /* events per second */
    uint64_t emitted; /* so far (kept across restarts) */
} audit_load_args_t;

extern const mesh_actor_ops_t audit_load_ops;

#endif
