/*
 * actors/supervisor.h: a supervisor actor.
 *
 * Starts its children in order; when one fails it restarts it (same address) after a backoff
 * that doubles from backoff_initial_ns up to backoff_max_ns. The count decays: a child that
 * ran for healthy_after_ns since its last restart starts over at zero. After max_restarts
 * restarts of a child in a row it gives up: logs, stops the other children and fails itself, so its
 * own parent gets MESH_MSG_CHILD_EXIT with MESH_STOP_FAILED. A child that stops normally is not
 * restarted.
 */
#ifndef MESH_SUPERVISOR_H
#define MESH_SUPERVISOR_H

#include <stdint.h>

#include "actors/actor.h"

/** One child. */
typedef struct mesh_child_spec {
    const mesh_actor_ops_t *ops;
    void *arg;
    mesh_spawn_opts_t opts; /* restartable is forced on */
    /* Optional: where the supervisor writes the child's address when it spawns it (kept
     * across restarts), so siblings started after it can message it. */
    mesh_actor_id_t *id_out;
} mesh_child_spec_t;

/** The supervisor's configuration; must outlive the supervisor. */
typedef struct mesh_supervisor_spec {
    const char *name;
    const mesh_child_spec_t *children;
    uint32_t nchildren;
    uint32_t max_restarts;       /* per child; 0 = give up at the first failure */
    uint64_t backoff_initial_ns; /* 0 = 100 ms */
    uint64_t backoff_max_ns;     /* 0 = 30 s */
    /* A child that ran this long since its last restart is healthy again: its restart count
     * (and backoff) start over, so rare failures over a long life never exhaust max_restarts.
     * 0 = 60 s. */
    uint64_t healthy_after_ns;
} mesh_supervisor_spec_t;

/** The supervisor's actor ops; spawn it with a mesh_supervisor_spec_t * as arg. */
extern const mesh_actor_ops_t mesh_supervisor_ops;

/** Address of child i of a supervisor (call from the supervisor's own loop), 0 if none. */
mesh_actor_id_t mesh_supervisor_child(mesh_actor_t *sup, uint32_t i);

#endif
