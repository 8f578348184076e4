/*
 * actors/supervisor.c: the supervisor actor (restart with exponential backoff, then give up).
 *
 * Built only on the public actor API: children are spawned restartable, so a failed child
 * keeps its address while the supervisor waits out the backoff on a timer and then calls
 * mesh_restart. Giving up is a failure of the supervisor itself.
 */
#include <stdlib.h>

#include "actors/supervisor.h"
#include "common/log.h"

#define SUP_TIMER_BASE 0x5E000000u

typedef struct sup_state {
    const mesh_supervisor_spec_t *spec;
    mesh_actor_id_t *ids;
    uint32_t *restarts;
    uint64_t *started; /* when each child last (re)started */
} sup_state_t;

static int sup_start(mesh_actor_t *self, void *arg)
{
    sup_state_t *st = mesh_state(self);
    const mesh_supervisor_spec_t *spec = arg;
    st->spec = spec;
    st->ids = calloc(spec->nchildren ? spec->nchildren : 1, sizeof(*st->ids));
    st->restarts = calloc(spec->nchildren ? spec->nchildren : 1, sizeof(*st->restarts));
    st->started = calloc(spec->nchildren ? spec->nchildren : 1, sizeof(*st->started));
    if (!st->ids || !st->restarts || !st->started)
        return -1;
    for (uint32_t i = 0; i < spec->nchildren; i++) {
        mesh_spawn_opts_t o = spec->children[i].opts;
        o.restartable = 1;
        int rc = mesh_spawn(self, spec->children[i].ops, spec->children[i].arg, &o, &st->ids[i]);
        if (rc < 0) {
            mesh_error(mesh_name(self), "cannot spawn child %u: %s", i, mesh_strerror(rc));
            return -1;
        }
        st->started[i] = mesh_now(self);
        if (spec->children[i].id_out)
            *spec->children[i].id_out = st->ids[i];
    }
    return 0;
}

static uint64_t backoff(const mesh_supervisor_spec_t *spec, uint32_t n)
{
    uint64_t init = spec->backoff_initial_ns ? spec->backoff_initial_ns : 100000000ull;
    uint64_t max = spec->backoff_max_ns ? spec->backoff_max_ns : 30000000000ull;
    uint64_t d = init;
    while (n-- > 0 && d < max)
        d *= 2;
    return d < max ? d : max;
}

static int sup_message(mesh_actor_t *self, mesh_msg_t *msg)
{
    sup_state_t *st = mesh_state(self);
    const mesh_supervisor_spec_t *spec = st->spec;
    if (msg->type == MESH_MSG_CHILD_EXIT) {
        const mesh_child_exit_t *ce = mesh_msg_as(msg, mesh_child_exit_t);
        uint32_t i = 0;
        while (ce && i < spec->nchildren && st->ids[i] != ce->child)
            i++;
        if (!ce || i == spec->nchildren)
            return 0;
        if (!ce->restarting) {
            st->ids[i] = 0; /* stopped for good (normally, or by us) */
            return 0;
        }
        uint64_t healthy = spec->healthy_after_ns ? spec->healthy_after_ns : 60000000000ull;
        if (mesh_now(self) - st->started[i] >= healthy)
            st->restarts[i] = 0; /* it ran long enough: an old failure no longer counts */
        if (st->restarts[i] >= spec->max_restarts) {
            mesh_error(mesh_name(self), "child %u failed after %u restarts: giving up", i,
                       st->restarts[i]);
            return -1;
        }
        uint64_t d = backoff(spec, st->restarts[i]);
        st->restarts[i]++;
        mesh_info(mesh_name(self), "child %u failed: restart %u in %llu ms", i, st->restarts[i],
                  (unsigned long long)(d / 1000000));
        return mesh_timer_start(self, d, 0, SUP_TIMER_BASE + i, NULL) < 0 ? -1 : 0;
    }
    if ((msg->flags & MESH_MSG_F_TIMER) && msg->type >= SUP_TIMER_BASE &&
        msg->type < SUP_TIMER_BASE + spec->nchildren) {
        uint32_t i = msg->type - SUP_TIMER_BASE;
        if (st->ids[i]) {
            st->started[i] = mesh_now(self);
            mesh_restart(self, st->ids[i]);
        }
    }
    return 0;
}

static void sup_stop(mesh_actor_t *self, int reason)
{
    sup_state_t *st = mesh_state(self);
    free(st->ids);
    free(st->restarts);
    free(st->started);
}

const mesh_actor_ops_t mesh_supervisor_ops = {
    .name = "supervisor",
    .state_size = sizeof(sup_state_t),
    .on_start = sup_start,
    .on_message = sup_message,
    .on_stop = sup_stop,
};

mesh_actor_id_t mesh_supervisor_child(mesh_actor_t *sup, uint32_t i)
{
    sup_state_t *st = mesh_state(sup);
    if (!st || !st->spec || i >= st->spec->nchildren)
        return 0;
    return st->ids[i];
}
