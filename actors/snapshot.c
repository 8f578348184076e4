/*
 * actors/snapshot.c: reference-counted immutable snapshots and their publication to loops.
 */
#include "actors/snapshot.h"
#include "actors/exec.h"

void mesh_snapshot_init(mesh_snapshot_t *s, uint64_t version, void (*release)(mesh_snapshot_t *))
{
    atomic_init(&s->refs, 1);
    s->release = release;
    s->version = version;
}

mesh_snapshot_t *mesh_snapshot_ref(mesh_snapshot_t *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    return s;
}

void mesh_snapshot_unref(mesh_snapshot_t *s)
{
    if (!s)
        return;
    /* Release on the decrement, acquire before freeing: every reader's accesses happen
     * before the release callback. */
    if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_release) == 1) {
        atomic_thread_fence(memory_order_acquire);
        s->release(s);
    }
}

void mesh_snapshot_holder_swap(mesh_snapshot_holder_t *h, mesh_snapshot_t *s)
{
    mesh_snapshot_t *old = h->cur;
    h->cur = s;
    mesh_snapshot_unref(old);
}

typedef struct publish_job {
    mesh_snapshot_t *s;
    int loop;
    mesh_snapshot_apply_fn apply;
    void *arg;
} publish_job_t;

#include <stdlib.h>

static void publish_run(void *p)
{
    publish_job_t *j = p;
    j->apply(j->loop, j->s, j->arg);
    free(j);
}

int mesh_snapshot_publish(mesh_exec_t *exec, mesh_snapshot_t *s, int first, int last,
                          mesh_snapshot_apply_fn apply, void *arg)
{
    int rc = 0;
    for (int i = first; i <= last; i++) {
        publish_job_t *j = malloc(sizeof(*j));
        if (!j) {
            rc = -1;
            continue;
        }
        j->s = mesh_snapshot_ref(s);
        j->loop = i;
        j->apply = apply;
        j->arg = arg;
        if (mesh_exec_post(exec, i, publish_run, j) < 0) {
            mesh_snapshot_unref(s);
            free(j);
            rc = -1;
        }
    }
    return rc;
}
