/*
 * actors/actor.c: the actor core shared by both executors.
 *
 * Routing (same loop: a plain mailbox append; another loop: the target loop's lock-free inbox),
 * delivery, the actor lifecycle (start, failure, restart, stop), request/reply correlation and
 * timers. The executors only decide when a ready actor runs: the real one in FIFO order on
 * libuv loop threads (exec.c), the simulator in an order drawn from its PRNG (sim.c).
 */
#include <stdlib.h>
#include <string.h>

#include "actors/runtime.h"
#include "common/log.h"

_Thread_local mesh_loop_t *mesh_tls_loop;

/* ---------------------------------------------------------------------------------------- */
/* Small helpers                                                                            */
/* ---------------------------------------------------------------------------------------- */

static inline int is_sys(uint32_t type)
{
    return type >= 0xFFFFFF00u;
}

uint64_t mesh_rt_now(mesh_loop_t *l)
{
    if (!l->exec->sim)
        return uv_hrtime();
    return l->exec->lp_mode ? l->sim_now : l->exec->now;
}

mesh_loop_t *mesh_rt_caller_loop(mesh_exec_t *e)
{
    if (e->sim) {
        mesh_loop_t *c = mesh_sim_cur(e);
        return c ? c : e->loops[0];
    }
    mesh_loop_t *l = mesh_tls_loop;
    return (l && l->exec == e) ? l : NULL;
}

static void ready_push(mesh_loop_t *l, mesh_actor_t *a)
{
    if (l->exec->sim) {
        mesh_sim_ready_add(l, a);
        return;
    }
    a->queued = 1;
    a->ready_next = NULL;
    if (l->ready_tail)
        l->ready_tail->ready_next = a;
    else
        l->ready_head = a;
    l->ready_tail = a;
    if (!l->draining)
        mesh_rt_schedule(l);
}

void mesh_rt_maybe_free(mesh_actor_t *a)
{
    if (a->status == MESH_ACT_DEAD && !a->queued && a->pins == 0) {
        free(a->children);
        free(a);
    }
}

void mesh_rt_unpin(mesh_actor_t *a)
{
    a->pins--;
    mesh_rt_maybe_free(a);
}

/* Drops a message that will never be delivered, undoing its mailbox accounting. */
static void drop_msg(mesh_slot_t *s, mesh_actor_t *a, mesh_msg_t *m)
{
    if ((m->rflags & MESH_RF_REMOTE) && s)
        atomic_fetch_sub_explicit(&s->remote_pending, 1, memory_order_relaxed);
    else if ((m->rflags & MESH_RF_LOCAL) && a)
        a->local_pending--;
    mesh_msg_free(m);
}

static void inbox_push(mesh_loop_t *l, mesh_msg_t *m)
{
    mesh_msg_t *old = atomic_load_explicit(&l->inbox, memory_order_relaxed);
    do {
        m->next = old;
    } while (!atomic_compare_exchange_weak_explicit(&l->inbox, &old, m, memory_order_release,
                                                    memory_order_relaxed));
    /* Wake only on the empty -> non-empty transition; the loop takes the whole stack. */
    if (old == NULL)
        mesh_loop_wake(l);
}

/* ---------------------------------------------------------------------------------------- */
/* Routing                                                                                  */
/* ---------------------------------------------------------------------------------------- */

void mesh_rt_enqueue(mesh_loop_t *l, mesh_actor_t *a, mesh_msg_t *m)
{
    m->next = NULL;
    if (a->mb_tail)
        a->mb_tail->next = m;
    else
        a->mb_head = m;
    a->mb_tail = m;
    l->in_mailboxes++;
    if (!a->queued)
        ready_push(l, a);
}

int mesh_rt_route(mesh_exec_t *e, mesh_loop_t *from_loop, mesh_msg_t *m, int sys)
{
    uint32_t li = mesh_id_loop(m->to);
    if (m->to == 0 || li >= (uint32_t)e->nloops)
        return -MESH_ENOENT;
    mesh_loop_t *tl = e->loops[li];
    mesh_slot_t *s = mesh_slot_get(tl, mesh_id_slot(m->to));
    if (!s || atomic_load_explicit(&s->gen, memory_order_acquire) != mesh_id_gen(m->to))
        return -MESH_ENOENT;
    if (tl == from_loop) {
        /* Same thread: plain fields only (the acquire load above is a plain load on x86). */
        mesh_actor_t *a = s->actor;
        if (!sys) {
            if (a->status == MESH_ACT_FAILED)
                return -MESH_EAGAIN;
            if (a->status == MESH_ACT_DEAD)
                return -MESH_ENOENT;
            if (a->local_pending >= a->capacity)
                return -MESH_EFULL;
            a->local_pending++;
            m->rflags |= MESH_RF_LOCAL;
        }
        mesh_rt_enqueue(tl, a, m);
        return 0;
    }
    if (e->lp_mode && mesh_sim_cur(e)) {
        /* Within a window the logical processes meet only through the network and the serial
         * queue; a direct message would arrive at a time that depends on the threads. */
        mesh_error("sim", "a message from logical process %d to %u within a window (type %u)",
                   from_loop ? from_loop->index : -1, li, m->type);
        abort();
    }
    if (!sys) {
        uint32_t st = atomic_load_explicit(&s->state, memory_order_relaxed);
        if (st == MESH_SLOT_RESTARTING)
            return -MESH_EAGAIN;
        if (st != MESH_SLOT_LIVE)
            return -MESH_ENOENT;
        int32_t cap = (int32_t)atomic_load_explicit(&s->capacity, memory_order_relaxed);
        if (atomic_fetch_add_explicit(&s->remote_pending, 1, memory_order_relaxed) >= cap) {
            atomic_fetch_sub_explicit(&s->remote_pending, 1, memory_order_relaxed);
            return -MESH_EFULL;
        }
        m->rflags |= MESH_RF_REMOTE;
    }
    inbox_push(tl, m);
    return 0;
}

void mesh_rt_take_inbox(mesh_loop_t *l)
{
    mesh_msg_t *m = atomic_exchange_explicit(&l->inbox, NULL, memory_order_acquire);
    mesh_msg_t *rev = NULL;
    while (m) { /* the stack is newest first: reverse it into arrival order */
        mesh_msg_t *n = m->next;
        m->next = rev;
        rev = m;
        m = n;
    }
    while (rev) {
        m = rev;
        rev = rev->next;
        m->next = NULL;
        if (m->type == MESH_SYS_POST && m->to == 0) {
            void (*fn)(void *);
            void *arg;
            memcpy(&fn, m->data, sizeof(fn));
            memcpy(&arg, m->data + sizeof(fn), sizeof(arg));
            mesh_msg_free(m);
            fn(arg);
            continue;
        }
        mesh_slot_t *s = mesh_slot_get(l, mesh_id_slot(m->to));
        mesh_actor_t *a = NULL;
        if (s && atomic_load_explicit(&s->gen, memory_order_relaxed) == mesh_id_gen(m->to))
            a = s->actor;
        if (!a || a->status == MESH_ACT_DEAD) {
            drop_msg(s, NULL, m);
            continue;
        }
        mesh_rt_enqueue(l, a, m);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Lifecycle                                                                                */
/* ---------------------------------------------------------------------------------------- */

static void actor_finish(mesh_actor_t *a, int reason, int ack);

static void ack_stop(void *arg)
{
    mesh_exec_stop_acked(arg);
}

static void send_ack(mesh_exec_t *e)
{
    if (!e->sim)
        mesh_exec_post(e, 0, ack_stop, e);
}

static void notify_parent(mesh_actor_t *a, int reason, int restarting)
{
    if (!a->parent)
        return;
    mesh_msg_t *m = mesh_msg_alloc();
    if (!m)
        return;
    mesh_child_exit_t ce = {.child = a->id, .reason = reason, .restarting = restarting};
    m->type = MESH_MSG_CHILD_EXIT;
    m->from = a->id;
    m->to = a->parent;
    m->len = sizeof(ce);
    memcpy(m->data, &ce, sizeof(ce));
    if (mesh_rt_route(a->loop->exec, a->loop, m, 1) < 0)
        mesh_msg_free(m);
}

static void stop_children(mesh_actor_t *a, int reason)
{
    for (uint32_t i = a->nchildren; i-- > 0;)
        mesh_rt_stop(a->loop->exec, a->loop, a->children[i], reason, 0);
    a->nchildren = 0;
}

static void call_on_stop(mesh_actor_t *a, int reason)
{
    if (a->ops->on_stop) {
        a->pins++;
        a->ops->on_stop(a, reason);
        a->pins--;
    }
    free(a->state);
    a->state = NULL;
}

/* Empties the mailbox; keep_sys keeps runtime messages (a pending shutdown stop). Returns
 * nonzero when a dropped message asked for a stop acknowledgement. */
static int drop_mailbox(mesh_actor_t *a, int keep_sys)
{
    mesh_msg_t *m = a->mb_head, *keep_head = NULL, *keep_tail = NULL;
    int ack = 0;
    a->mb_head = a->mb_tail = NULL;
    while (m) {
        mesh_msg_t *n = m->next;
        m->next = NULL;
        if (keep_sys && is_sys(m->type)) {
            if (keep_tail)
                keep_tail->next = m;
            else
                keep_head = m;
            keep_tail = m;
        } else {
            a->loop->in_mailboxes--;
            if (m->type == MESH_SYS_STOP && (m->rflags & MESH_RF_STOP_ACK))
                ack = 1;
            drop_msg(a->slot, a, m);
        }
        m = n;
    }
    a->mb_head = keep_head;
    a->mb_tail = keep_tail;
    return ack;
}

static void actor_fail(mesh_actor_t *a)
{
    mesh_warn(a->name, "actor failed (restartable=%d)", a->restartable);
    if (!a->restartable) {
        actor_finish(a, MESH_STOP_FAILED, 0);
        return;
    }
    stop_children(a, MESH_STOP_PARENT);
    a->status = MESH_ACT_FAILED;
    call_on_stop(a, MESH_STOP_FAILED);
    a->incarnation++;
    a->stop_requested = 0;
    drop_mailbox(a, 1);
    atomic_store_explicit(&a->slot->state, MESH_SLOT_RESTARTING, memory_order_relaxed);
    notify_parent(a, MESH_STOP_FAILED, 1);
}

static void actor_start(mesh_actor_t *a)
{
    if (a->status != MESH_ACT_STARTING)
        return;
    if (a->ops->state_size) {
        a->state = calloc(1, a->ops->state_size);
        if (!a->state) {
            actor_fail(a);
            return;
        }
    }
    a->status = MESH_ACT_RUNNING;
    if (a->ops->on_start) {
        a->pins++;
        int rc = a->ops->on_start(a, a->arg);
        a->pins--;
        if (rc < 0) {
            actor_fail(a);
            return;
        }
    }
    if (a->stop_requested && a->status == MESH_ACT_RUNNING)
        actor_finish(a, MESH_STOP_NORMAL, 0);
}

static void actor_finish(mesh_actor_t *a, int reason, int ack)
{
    mesh_loop_t *l = a->loop;
    mesh_exec_t *e = l->exec;
    if (a->status == MESH_ACT_DEAD) {
        if (ack)
            send_ack(e);
        return;
    }
    int was_running = a->status == MESH_ACT_RUNNING;
    a->status = MESH_ACT_DEAD;
    stop_children(a, MESH_STOP_PARENT);
    if (was_running)
        call_on_stop(a, reason);
    free(a->state);
    a->state = NULL;
    if (drop_mailbox(a, 0))
        ack = 1;
    mesh_slot_release(l, a->id);
    pthread_mutex_lock(&e->reg_lock);
    if (a->reg_prev)
        a->reg_prev->reg_next = a->reg_next;
    else
        e->reg_head = a->reg_next;
    if (a->reg_next)
        a->reg_next->reg_prev = a->reg_prev;
    a->reg_prev = a->reg_next = NULL;
    pthread_mutex_unlock(&e->reg_lock);
    notify_parent(a, reason, 0);
    if (ack)
        send_ack(e);
    if (e->sim && a->queued)
        mesh_sim_ready_remove(l, a);
    mesh_rt_maybe_free(a);
}

static void actor_restart(mesh_actor_t *a)
{
    if (a->status != MESH_ACT_FAILED)
        return;
    a->status = MESH_ACT_STARTING;
    atomic_store_explicit(&a->slot->state, MESH_SLOT_LIVE, memory_order_relaxed);
    mesh_info(a->name, "actor restarting");
    actor_start(a);
}

static void remove_child(mesh_actor_t *a, mesh_actor_id_t child)
{
    for (uint32_t i = 0; i < a->nchildren; i++) {
        if (a->children[i] == child) {
            memmove(&a->children[i], &a->children[i + 1],
                    (a->nchildren - i - 1) * sizeof(*a->children));
            a->nchildren--;
            return;
        }
    }
}

/* Runs on_message; handles failure and a requested stop afterwards. */
static void invoke(mesh_actor_t *a, mesh_msg_t *m)
{
    a->pins++;
    int rc = a->ops->on_message(a, m);
    a->pins--;
    if (a->status != MESH_ACT_RUNNING)
        return;
    if (rc < 0)
        actor_fail(a);
    else if (a->stop_requested)
        actor_finish(a, MESH_STOP_NORMAL, 0);
}

int mesh_rt_crash(mesh_exec_t *e, mesh_actor_id_t id)
{
    uint32_t li = mesh_id_loop(id);
    if (li >= (uint32_t)e->nloops)
        return -MESH_ENOENT;
    mesh_loop_t *l = e->loops[li];
    mesh_slot_t *s = mesh_slot_get(l, mesh_id_slot(id));
    if (!s || atomic_load_explicit(&s->gen, memory_order_relaxed) != mesh_id_gen(id))
        return -MESH_ENOENT;
    mesh_actor_t *a = s->actor;
    if (a->status != MESH_ACT_RUNNING)
        return -MESH_ESTATE;
    actor_fail(a);
    return 0;
}

static void deliver(mesh_loop_t *l, mesh_actor_t *a, mesh_msg_t *m)
{
    if (m->rflags & MESH_RF_REMOTE)
        atomic_fetch_sub_explicit(&a->slot->remote_pending, 1, memory_order_relaxed);
    else if (m->rflags & MESH_RF_LOCAL)
        a->local_pending--;
    m->rflags &= ~(MESH_RF_REMOTE | MESH_RF_LOCAL);
    if (l->exec->sim)
        mesh_sim_trace_event(l->exec, m->from, m->to, m->type);
    switch (m->type) {
    case MESH_SYS_START:
        actor_start(a);
        break;
    case MESH_SYS_STOP:
        actor_finish(a, (int)m->aux, (m->rflags & MESH_RF_STOP_ACK) != 0);
        break;
    case MESH_SYS_RESTART:
        actor_restart(a);
        break;
    default:
        if (a->status != MESH_ACT_RUNNING)
            break;
        if (m->flags & MESH_MSG_F_REPLY) {
            mesh_tnode_t *n = mesh_timer_find(l, m->corr);
            if (!n || n->kind != MESH_T_REQUEST || n->owner != a->id ||
                n->incarnation != a->incarnation) {
                mesh_debug(a->name, "late or unknown reply dropped (type %u)", m->type);
                break;
            }
            mesh_timer_remove(l, n);
        }
        if (m->type == MESH_MSG_CHILD_EXIT) {
            const mesh_child_exit_t *ce = mesh_msg_as(m, mesh_child_exit_t);
            if (ce && !ce->restarting)
                remove_child(a, ce->child);
        }
        invoke(a, m);
        break;
    }
    mesh_msg_free(m);
}

void mesh_rt_deliver_one(mesh_loop_t *l, mesh_actor_t *a)
{
    mesh_msg_t *m = a->mb_head;
    a->mb_head = m->next;
    if (!a->mb_head)
        a->mb_tail = NULL;
    m->next = NULL;
    l->in_mailboxes--;
    deliver(l, a, m);
}

void mesh_rt_timer_fired(mesh_loop_t *l, mesh_tnode_t *n, uint64_t id)
{
    /* Copy what we need: the callback may start timers and move the pool. */
    uint32_t kind = n->kind, type = n->type, inc = n->incarnation;
    mesh_actor_id_t owner = n->owner, peer = n->peer;
    int periodic = kind == MESH_T_USER && n->period;
    mesh_slot_t *s = mesh_slot_get(l, mesh_id_slot(owner));
    mesh_actor_t *a = NULL;
    if (s && atomic_load_explicit(&s->gen, memory_order_relaxed) == mesh_id_gen(owner))
        a = s->actor;
    int live = a && a->status == MESH_ACT_RUNNING && a->incarnation == inc;
    if (!periodic || !live)
        mesh_timer_remove(l, n);
    if (!live)
        return;
    mesh_msg_t m;
    memset(&m, 0, sizeof(m));
    m.to = owner;
    m.corr = id;
    if (kind == MESH_T_REQUEST) {
        m.type = MESH_MSG_TIMEOUT;
        m.from = peer;
    } else {
        m.type = type;
        m.from = owner;
        m.flags = MESH_MSG_F_TIMER;
    }
    if (l->exec->sim)
        mesh_sim_trace_event(l->exec, m.from, m.to, m.type);
    a->pins++;
    invoke(a, &m);
    mesh_rt_unpin(a);
}

int mesh_rt_spawn(mesh_exec_t *e, mesh_actor_t *parent, mesh_loop_t *parent_loop,
                  const mesh_actor_ops_t *ops, void *arg, const mesh_spawn_opts_t *opts,
                  mesh_actor_id_t *id_out)
{
    if (!ops || !ops->on_message)
        return -MESH_EINVAL;
    int target = parent_loop ? parent_loop->index : 0;
    if (opts && opts->loop > 0)
        target = opts->loop - 1;
    if (e->sim && !e->lp_mode)
        target = 0; /* the simulator runs every "loop" on its single one */
    else if (e->sim && parent_loop && parent)
        target = parent_loop->index; /* a logical process's actors stay on it */
    if (target < 0 || target >= e->nloops)
        return -MESH_EINVAL;
    mesh_loop_t *tl = e->loops[target];
    mesh_actor_t *a = calloc(1, sizeof(*a));
    mesh_msg_t *m = mesh_msg_alloc();
    if (!a || !m) {
        free(a);
        if (m)
            mesh_msg_free(m);
        return -MESH_ENOMEM;
    }
    if (parent && parent->nchildren == parent->cchildren) {
        uint32_t nc = parent->cchildren ? parent->cchildren * 2 : 4;
        mesh_actor_id_t *c = realloc(parent->children, nc * sizeof(*c));
        if (!c) {
            free(a);
            mesh_msg_free(m);
            return -MESH_ENOMEM;
        }
        parent->children = c;
        parent->cchildren = nc;
    }
    a->loop = tl;
    a->ops = ops;
    a->arg = arg;
    a->name = (opts && opts->name) ? opts->name : (ops->name ? ops->name : "actor");
    a->parent = parent ? parent->id : 0;
    a->sim_host = parent ? parent->sim_host : NULL; /* a node's actors share its host */
    a->capacity = (opts && opts->mailbox) ? opts->mailbox : 1024;
    a->restartable = opts ? opts->restartable : 0;
    a->status = MESH_ACT_STARTING;
    mesh_actor_id_t id = mesh_slot_alloc(tl, a, a->capacity);
    if (!id) {
        free(a);
        mesh_msg_free(m);
        return -MESH_ENOMEM;
    }
    a->id = id;
    a->slot = mesh_slot_get(tl, mesh_id_slot(id));
    pthread_mutex_lock(&e->reg_lock);
    a->start_seq = ++e->start_seq;
    a->reg_next = e->reg_head;
    if (e->reg_head)
        e->reg_head->reg_prev = a;
    e->reg_head = a;
    pthread_mutex_unlock(&e->reg_lock);
    if (parent)
        parent->children[parent->nchildren++] = id;
    m->type = MESH_SYS_START;
    m->from = parent ? parent->id : 0;
    m->to = id;
    mesh_rt_route(e, parent_loop, m, 1);
    if (id_out)
        *id_out = id;
    return 0;
}

int mesh_rt_stop(mesh_exec_t *e, mesh_loop_t *from_loop, mesh_actor_id_t id, int reason,
                 uint32_t rflags)
{
    mesh_msg_t *m = mesh_msg_alloc();
    if (!m)
        return -MESH_ENOMEM;
    m->type = MESH_SYS_STOP;
    m->to = id;
    m->aux = (uint32_t)reason;
    m->rflags = rflags;
    int rc = mesh_rt_route(e, from_loop, m, 1);
    if (rc < 0)
        mesh_msg_free(m);
    return rc;
}

int mesh_loop_init_common(mesh_loop_t *l, mesh_exec_t *e, int index, uint64_t seed)
{
    l->exec = e;
    l->index = index;
    pthread_mutex_init(&l->slot_lock, NULL);
    l->free_slot = UINT32_MAX;
    l->tfree = UINT32_MAX;
    l->armed_deadline = UINT64_MAX;
    mesh_prng_seed(&l->prng, seed);
    return 0;
}

void mesh_loop_destroy_common(mesh_loop_t *l)
{
    mesh_msg_t *m = atomic_exchange(&l->inbox, NULL);
    while (m) {
        mesh_msg_t *n = m->next;
        mesh_msg_free(m);
        m = n;
    }
    mesh_timers_destroy(l);
    mesh_slots_destroy(l);
    free(l->ready_arr);
    pthread_mutex_destroy(&l->slot_lock);
}

void mesh_rt_stop_live(mesh_exec_t *e)
{
    /* The registry lists actors newest first: reverse start order. Every on_stop runs with the
     * loops still intact, so actors can stop their timers and release what they own. */
    for (mesh_actor_t *a = e->reg_head; a; a = a->reg_next) {
        if (a->status != MESH_ACT_RUNNING || !a->state)
            continue;
        a->status = MESH_ACT_DEAD;
        call_on_stop(a, MESH_STOP_SHUTDOWN);
    }
}

void mesh_rt_free_all(mesh_exec_t *e)
{
    pthread_mutex_lock(&e->reg_lock);
    mesh_actor_t *a = e->reg_head;
    e->reg_head = NULL;
    pthread_mutex_unlock(&e->reg_lock);
    while (a) {
        mesh_actor_t *n = a->reg_next;
        mesh_msg_t *m = a->mb_head;
        while (m) {
            mesh_msg_t *mn = m->next;
            mesh_msg_free(m);
            m = mn;
        }
        free(a->state);
        free(a->children);
        free(a);
        a = n;
    }
}

/* ---------------------------------------------------------------------------------------- */
/* The public actor API                                                                     */
/* ---------------------------------------------------------------------------------------- */

struct uv_loop_s *mesh_uv_loop(const mesh_actor_t *self)
{
    return self->loop->exec->sim ? NULL : &self->loop->uv;
}

mesh_actor_id_t mesh_self(const mesh_actor_t *self)
{
    return self->id;
}

void *mesh_state(const mesh_actor_t *self)
{
    return self->state;
}

void *mesh_arg(const mesh_actor_t *self)
{
    return self->arg;
}

const char *mesh_name(const mesh_actor_t *self)
{
    return self->name;
}

mesh_actor_id_t mesh_parent(const mesh_actor_t *self)
{
    return self->parent;
}

int mesh_loop_index(const mesh_actor_t *self)
{
    return self->loop->index;
}

int mesh_loop_count(const mesh_actor_t *self)
{
    return self->loop->exec->nloops;
}

uint64_t mesh_now(const mesh_actor_t *self)
{
    return mesh_rt_now(self->loop);
}

mesh_io_t *mesh_io(const mesh_actor_t *self)
{
    return self->sim_host ? self->sim_host->io : self->loop->io;
}

uint64_t mesh_random(mesh_actor_t *self)
{
    return mesh_prng_next(&self->loop->prng);
}

int mesh_send_msg(mesh_actor_t *self, mesh_actor_id_t to, mesh_msg_t *m)
{
    m->to = to;
    m->from = self->id;
    return mesh_rt_route(self->loop->exec, self->loop, m, 0);
}

int mesh_send(mesh_actor_t *self, mesh_actor_id_t to, uint32_t type, const void *data, size_t len)
{
    int rc;
    mesh_msg_t *m = mesh_msg_make(type, data, len, &rc);
    if (!m)
        return rc;
    rc = mesh_send_msg(self, to, m);
    if (rc < 0)
        mesh_msg_free(m);
    return rc;
}

int mesh_send_ptr(mesh_actor_t *self, mesh_actor_id_t to, uint32_t type, void *ptr,
                  void (*ptr_free)(void *))
{
    int rc;
    mesh_msg_t *m = mesh_msg_make_ptr(type, ptr, ptr_free, &rc);
    if (!m)
        return rc;
    rc = mesh_send_msg(self, to, m);
    if (rc < 0)
        mesh_msg_discard(m);
    return rc;
}

int mesh_request(mesh_actor_t *self, mesh_actor_id_t to, uint32_t type, const void *data,
                 size_t len, uint64_t timeout_ns, uint64_t *corr_out)
{
    if (len > MESH_MSG_INLINE)
        return -MESH_E2BIG;
    mesh_loop_t *l = self->loop;
    mesh_msg_t *m = mesh_msg_alloc();
    if (!m)
        return -MESH_ENOMEM;
    uint64_t deadline = mesh_rt_now(l) + timeout_ns;
    uint64_t tid = mesh_timer_add(l, deadline, MESH_T_REQUEST);
    if (!tid) {
        mesh_msg_free(m);
        return -MESH_ENOMEM;
    }
    mesh_tnode_t *n = mesh_timer_find(l, tid);
    n->owner = self->id;
    n->peer = to;
    n->incarnation = self->incarnation;
    m->type = type;
    m->flags = MESH_MSG_F_REQUEST;
    m->corr = tid;
    m->len = (uint16_t)len;
    if (len)
        memcpy(m->data, data, len);
    int rc = mesh_send_msg(self, to, m);
    if (rc < 0) {
        mesh_timer_remove(l, mesh_timer_find(l, tid));
        mesh_msg_free(m);
        return rc;
    }
    mesh_rt_timer_added(l, deadline);
    if (corr_out)
        *corr_out = tid;
    return 0;
}

int mesh_reply(mesh_actor_t *self, const mesh_msg_t *req, uint32_t type, const void *data,
               size_t len)
{
    if (len > MESH_MSG_INLINE)
        return -MESH_E2BIG;
    if (!req->from || !req->corr)
        return -MESH_EINVAL;
    mesh_msg_t *m = mesh_msg_alloc();
    if (!m)
        return -MESH_ENOMEM;
    m->type = type;
    m->flags = MESH_MSG_F_REPLY;
    m->corr = req->corr;
    m->len = (uint16_t)len;
    if (len)
        memcpy(m->data, data, len);
    int rc = mesh_send_msg(self, req->from, m);
    if (rc < 0)
        mesh_msg_free(m);
    return rc;
}

int mesh_timer_start(mesh_actor_t *self, uint64_t delay_ns, uint64_t period_ns, uint32_t type,
                     uint64_t *timer_out)
{
    mesh_loop_t *l = self->loop;
    uint64_t deadline = mesh_rt_now(l) + delay_ns;
    uint64_t tid = mesh_timer_add(l, deadline, MESH_T_USER);
    if (!tid)
        return -MESH_ENOMEM;
    mesh_tnode_t *n = mesh_timer_find(l, tid);
    n->owner = self->id;
    n->incarnation = self->incarnation;
    n->type = type;
    n->period = period_ns;
    mesh_rt_timer_added(l, deadline);
    if (timer_out)
        *timer_out = tid;
    return 0;
}

int mesh_timer_stop(mesh_actor_t *self, uint64_t timer)
{
    mesh_tnode_t *n = mesh_timer_find(self->loop, timer);
    if (!n || n->kind != MESH_T_USER || n->owner != self->id)
        return -MESH_ENOENT;
    mesh_timer_remove(self->loop, n);
    return 0;
}

int mesh_spawn(mesh_actor_t *self, const mesh_actor_ops_t *ops, void *arg,
               const mesh_spawn_opts_t *opts, mesh_actor_id_t *id_out)
{
    return mesh_rt_spawn(self->loop->exec, self, self->loop, ops, arg, opts, id_out);
}

int mesh_stop(mesh_actor_t *self, mesh_actor_id_t id)
{
    if (id == self->id) {
        mesh_stop_self(self);
        return 0;
    }
    return mesh_rt_stop(self->loop->exec, self->loop, id, MESH_STOP_NORMAL, 0);
}

void mesh_stop_self(mesh_actor_t *self)
{
    self->stop_requested = 1;
}

int mesh_restart(mesh_actor_t *self, mesh_actor_id_t child)
{
    mesh_msg_t *m = mesh_msg_alloc();
    if (!m)
        return -MESH_ENOMEM;
    m->type = MESH_SYS_RESTART;
    m->from = self->id;
    m->to = child;
    int rc = mesh_rt_route(self->loop->exec, self->loop, m, 1);
    if (rc < 0)
        mesh_msg_free(m);
    return rc;
}

const char *mesh_strerror(int err)
{
    switch (err < 0 ? -err : err) {
    case 0:
        return "ok";
    case MESH_EFULL:
        return "mailbox full";
    case MESH_ENOENT:
        return "no such actor";
    case MESH_EAGAIN:
        return "actor restarting";
    case MESH_E2BIG:
        return "payload too large for inline";
    case MESH_ENOMEM:
        return "out of memory";
    case MESH_EINVAL:
        return "invalid argument";
    case MESH_ESTATE:
        return "wrong state";
    default:
        return "unknown error";
    }
}
