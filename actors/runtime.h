/*
 * actors/runtime.h: internals shared by the actor core, the real executor and the simulator.
 *
 * Not for actor code. A loop owns a slot table (actor addresses), the actors it runs, their
 * mailboxes, a ready queue and a timer heap. Fields marked "owner" are touched only by the
 * loop's thread; the rest are atomics that other threads read when they send.
 */
#ifndef MESH_RUNTIME_H
#define MESH_RUNTIME_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "actors/actor.h"
#include "actors/exec.h"
#include "actors/io.h"
#include "actors/prng.h"
#include "actors/sim.h"
#include "actors/simnet.h"

#define MESH_SLOT_CHUNK_BITS 12 /* 4096 slots (128 KiB, resident as used) per chunk */
#define MESH_SLOT_CHUNK      (1u << MESH_SLOT_CHUNK_BITS)
#define MESH_SLOT_CHUNKS     1024                        /* 4M actors per loop */
#define MESH_MAX_LOOPS       (MESH_EXEC_MAX_WORKERS + 1) /* an id has 8 bits of loop index */

/* Runtime-only message types. */
#define MESH_SYS_START   0xFFFFFF01u
#define MESH_SYS_STOP    0xFFFFFF02u
#define MESH_SYS_RESTART 0xFFFFFF03u
#define MESH_SYS_POST    0xFFFFFF04u

/* mesh_msg_t.rflags */
#define MESH_RF_REMOTE   0x1u /* counted in the slot's remote_pending */
#define MESH_RF_STOP_ACK 0x2u /* SYS_STOP: tell the shutdown sequence when done */
#define MESH_RF_LOCAL    0x4u /* counted in the actor's local_pending */

/* Slot states. */
enum { MESH_SLOT_FREE = 0, MESH_SLOT_LIVE = 1, MESH_SLOT_RESTARTING = 2 };

/* Actor statuses (owner). */
enum {
    MESH_ACT_STARTING = 0,
    MESH_ACT_RUNNING = 1,
    MESH_ACT_FAILED = 2, /* waiting for mesh_restart */
    MESH_ACT_DEAD = 3,
};

/** One address slot. */
typedef struct mesh_slot {
    _Atomic uint32_t gen;           /* odd while an actor holds the slot */
    _Atomic uint32_t state;         /* MESH_SLOT_* */
    _Atomic uint32_t capacity;      /* mailbox capacity */
    _Atomic int32_t remote_pending; /* cross-thread messages not yet delivered */
    struct mesh_actor *actor;       /* owner */
    uint32_t next_free;             /* under slot_lock */
} mesh_slot_t;

typedef struct mesh_loop mesh_loop_t;

/** Stall states of a simulated host (mesh_sim_host_t.state). */
enum {
    MESH_HOST_RUNNING = 0,
    MESH_HOST_STALLED = 1,  /* before resume_at: no actor of the host runs, no timer fires */
    MESH_HOST_RESUMING = 2, /* at resume_at: late timers fire, then queued I/O, then mailboxes */
};

/** The runtime's view of one simulated host (embedded in simnet.c's host): the actors bound
 *  to it (mesh_actor_t.sim_host) are parked and their timers held while it stalls. */
typedef struct mesh_sim_host {
    int state;
    int lp; /* the logical process (loop index) its actors and I/O events run on */
    uint64_t resume_at;
    mesh_io_t *io;
    struct mesh_actor **parked; /* ready actors waiting for the stall to end, in arrival order */
    uint32_t nparked, cparked;
    uint64_t *late; /* ids of timers that came due during the stall, in firing order */
    uint32_t nlate, clate;
} mesh_sim_host_t;

/** An actor (the runtime side). */
struct mesh_actor {
    mesh_actor_id_t id;
    mesh_loop_t *loop;
    mesh_slot_t *slot;
    const mesh_actor_ops_t *ops;
    void *arg;
    void *state;
    const char *name;
    mesh_actor_id_t parent;
    uint32_t capacity;
    uint32_t local_pending;
    uint32_t incarnation;
    int status;
    int restartable;
    int stop_requested;
    int pins;        /* the scheduler or a callback is using this actor */
    int queued;      /* in the ready queue */
    uint32_t sim_ix; /* index in the simulator's ready array (or its host's parked array) */
    int sim_parked;  /* queued, but parked on its stalled host */
    mesh_sim_host_t *sim_host; /* simulator: the host it is bound to (inherited), or NULL */
    mesh_msg_t *mb_head, *mb_tail;
    struct mesh_actor *ready_next;
    uint64_t start_seq;
    struct mesh_actor *reg_prev, *reg_next; /* executor registry (under reg_lock) */
    mesh_actor_id_t *children;              /* owner, in start order */
    uint32_t nchildren, cchildren;
};

/** Timer node kinds. */
enum { MESH_T_FREE = 0, MESH_T_USER = 1, MESH_T_REQUEST = 2, MESH_T_CALL = 3 };

/** A timer node in a loop's pool. */
typedef struct mesh_tnode {
    uint64_t deadline, seq, period;
    uint32_t gen, heap_pos, kind, type, incarnation, next_free;
    mesh_actor_id_t owner, peer;
    void (*fn)(void *arg);
    void *arg;
} mesh_tnode_t;

struct mesh_loop {
    mesh_exec_t *exec;
    int index;
    /* slots */
    pthread_mutex_t slot_lock;
    _Atomic(mesh_slot_t *) chunks[MESH_SLOT_CHUNKS];
    uint32_t nslots, free_slot; /* under slot_lock; free_slot UINT32_MAX = none */
    /* cross-thread inbox: a lock-free stack, drained whole and reversed */
    _Atomic(mesh_msg_t *) inbox;
    /* owner: ready queue (real executor) */
    mesh_actor_t *ready_head, *ready_tail;
    /* owner: ready array (simulator) */
    mesh_actor_t **ready_arr;
    uint32_t nready, cready;
    /* owner: timers */
    mesh_tnode_t *tn;
    uint32_t ntn, ctn, tfree;
    uint32_t *heap;
    uint32_t nheap, cheap;
    uint64_t tseq;
    /* owner: libuv (real executor) */
    uv_loop_t uv;
    uv_async_t async;
    uv_idle_t idle;
    uv_timer_t timer;
    _Atomic int uv_ready; /* the libuv handles are open (read by posting threads) */
    int idle_on, draining;
    pthread_mutex_t wake_lock; /* real loops: a wake against the async handle's close */
    uint64_t armed_deadline;
    pthread_t thread;
    mesh_io_t *io;
    mesh_prng_t prng;
    _Atomic uint64_t busy; /* published after each drain: messages left in mailboxes */
    uint64_t in_mailboxes; /* owner */
    /* simulator, logical-process mode (sim_lp.c): this loop is one logical process */
    uint64_t sim_now;         /* its clock */
    uint64_t sim_trace;       /* its FNV-1a chain of deliveries, firings and folds */
    uint64_t sim_steps;       /* deliveries and firings */
    mesh_prng_t sim_prng;     /* its scheduling and scenario draws */
    struct mesh_sim_out *out; /* calls for other processes, merged at the window's end */
    uint32_t nout, cout;
};

/** A call one logical process makes for another (or for the serial queue: lp < 0) within a
 *  window; merged at the window's end in (process, order) order. */
typedef struct mesh_sim_out {
    uint64_t at;
    int lp;
    void (*fn)(void *arg);
    void *arg;
} mesh_sim_out_t;

/* --- slots and ids (slots.c) --- */
static inline uint32_t mesh_id_gen(mesh_actor_id_t id)
{
    return (uint32_t)(id >> 32);
}
static inline uint32_t mesh_id_loop(mesh_actor_id_t id)
{
    return (uint32_t)(id >> 24) & 0xFFu;
}
static inline uint32_t mesh_id_slot(mesh_actor_id_t id)
{
    return (uint32_t)id & 0xFFFFFFu;
}
static inline mesh_slot_t *mesh_slot_get(mesh_loop_t *l, uint32_t ix)
{
    mesh_slot_t *c =
        atomic_load_explicit(&l->chunks[ix >> MESH_SLOT_CHUNK_BITS], memory_order_acquire);
    return c ? &c[ix & (MESH_SLOT_CHUNK - 1)] : NULL;
}
/** Allocates a slot (any thread); returns the new id or 0. */
mesh_actor_id_t mesh_slot_alloc(mesh_loop_t *l, mesh_actor_t *a, uint32_t capacity);
/** Releases a slot (owner thread). */
void mesh_slot_release(mesh_loop_t *l, mesh_actor_id_t id);
/** Frees every chunk. */
void mesh_slots_destroy(mesh_loop_t *l);

/* --- timers (timers.c) --- */
/** Allocates a node and queues it; returns its id (gen << 32 | index). */
uint64_t mesh_timer_add(mesh_loop_t *l, uint64_t deadline, int kind);
/** Queues a call of fn(arg) at deadline (a MESH_T_CALL node): 0, or -MESH_ENOMEM. */
int mesh_timer_add_call(mesh_loop_t *l, uint64_t deadline, void (*fn)(void *), void *arg);
/** Looks a live node up by id, NULL if fired or cancelled. */
mesh_tnode_t *mesh_timer_find(mesh_loop_t *l, uint64_t id);
/** Removes a node from the heap and frees it. */
void mesh_timer_remove(mesh_loop_t *l, mesh_tnode_t *n);
/** The earliest deadline, or UINT64_MAX. */
uint64_t mesh_timer_next(const mesh_loop_t *l);
/** Takes a node off the heap without freeing it (its id stays valid). */
void mesh_timer_detach(mesh_loop_t *l, mesh_tnode_t *n);
/** Puts a detached node back on the heap at deadline, after the nodes already due then. */
void mesh_timer_requeue(mesh_loop_t *l, mesh_tnode_t *n, uint64_t deadline);
/** The node at the top of the heap (earliest), or NULL. */
mesh_tnode_t *mesh_timer_top(mesh_loop_t *l);
/** Fires one due node (deadline <= now); returns 1 if one fired, 0 if none is due. */
int mesh_timer_fire_one(mesh_loop_t *l, uint64_t now);
/** Frees the pool and heap. */
void mesh_timers_destroy(mesh_loop_t *l);

/* --- the actor core (actor.c) --- */
/** Appends a message to an actor's mailbox and marks it ready (owner thread). */
void mesh_rt_enqueue(mesh_loop_t *l, mesh_actor_t *a, mesh_msg_t *m);
/** Moves the cross-thread inbox into mailboxes, running posts (owner thread). */
void mesh_rt_take_inbox(mesh_loop_t *l);
/** Delivers one message from a ready actor's mailbox; returns remaining mailbox emptiness. */
void mesh_rt_deliver_one(mesh_loop_t *l, mesh_actor_t *a);
/** Fails a running actor as if its handler had returned < 0 (the simulator's crash fault;
 *  call on the actor's loop, outside its callbacks). 0, -MESH_ENOENT or -MESH_ESTATE. */
int mesh_rt_crash(mesh_exec_t *e, mesh_actor_id_t id);
/** Frees a dead actor nobody references any more. */
void mesh_rt_maybe_free(mesh_actor_t *a);
/** Drops a pin; frees the actor when it is dead and unpinned. */
void mesh_rt_unpin(mesh_actor_t *a);
/** Routes a message to its receiver; sys bypasses capacity and the restarting state. */
int mesh_rt_route(mesh_exec_t *e, mesh_loop_t *from_loop, mesh_msg_t *m, int sys);
/** Spawns (parent may be NULL). */
int mesh_rt_spawn(mesh_exec_t *e, mesh_actor_t *parent, mesh_loop_t *parent_loop,
                  const mesh_actor_ops_t *ops, void *arg, const mesh_spawn_opts_t *opts,
                  mesh_actor_id_t *id_out);
/** Sends a SYS_STOP (with rflags) to id. */
int mesh_rt_stop(mesh_exec_t *e, mesh_loop_t *from_loop, mesh_actor_id_t id, int reason,
                 uint32_t rflags);
/** Dispatches a fired timer node of kind USER/REQUEST (node already unlinked). */
void mesh_rt_timer_fired(mesh_loop_t *l, mesh_tnode_t *n, uint64_t id);
/** Tells the loop it has work (real: arm idle; sim: nothing). */
void mesh_rt_schedule(mesh_loop_t *l);
/** Called when a timer was added to loop l (real: re-arm uv timer if earlier). */
void mesh_rt_timer_added(mesh_loop_t *l, uint64_t deadline);
/** Initializes/destroys the loop parts shared by both executors. */
int mesh_loop_init_common(mesh_loop_t *l, mesh_exec_t *e, int index, uint64_t seed);

/* Wakes loop l's libuv loop from any thread (after a push onto its empty inbox). The lock keeps
 * a wake from racing with the loop closing its async handle at the end of mesh_exec_run (a
 * thread posting during shutdown). Simulated loops never have uv_ready set. */
static inline void mesh_loop_wake(mesh_loop_t *l)
{
    if (!atomic_load_explicit(&l->uv_ready, memory_order_acquire))
        return;
    pthread_mutex_lock(&l->wake_lock);
    if (atomic_load_explicit(&l->uv_ready, memory_order_relaxed))
        uv_async_send(&l->async);
    pthread_mutex_unlock(&l->wake_lock);
}
void mesh_loop_destroy_common(mesh_loop_t *l);

/* --- executor internals (exec.c / sim.c) --- */
struct mesh_exec {
    int sim;
    int nloops;
    mesh_loop_t **loops;
    pthread_mutex_t reg_lock;
    mesh_actor_t *reg_head; /* live actors, newest first */
    uint64_t start_seq;     /* under reg_lock */
    /* real executor */
    mesh_exec_opts_t opts;
    _Atomic int shutdown_requested;
    int shutting_down;
    int running;
    uv_signal_t sigterm, sigint;
    struct mesh_shutdown_hook *hooks;
    mesh_actor_id_t *stop_list;
    uint32_t nstop, istop;
    uint64_t drain_deadline;
    int drain_quiet;
    uv_timer_t drain_timer;
    /* simulator */
    uint64_t now;
    uint64_t trace;
    uint64_t steps;
    mesh_prng_t prng;
    mesh_simnet_t *net;
    mesh_sim_trace_cb trace_cb;
    void *trace_arg;
    /* simulator, logical-process mode (sim_lp.c) */
    int lp_mode;                /* loops[] are logical processes run in windows */
    int nthreads;               /* threads that run a window's processes */
    uint64_t lookahead;         /* the window's length: the least latency between processes */
    uint64_t win_end;           /* the running window's end (exclusive) */
    mesh_loop_t *serial;        /* the serial queue: calls that run alone at window boundaries */
    uint32_t next_lp;           /* the process the next simulated host joins (round robin) */
    struct mesh_sim_pool *pool; /* worker threads (nthreads > 1) */
};

/** The loop the calling thread runs (NULL outside loop threads). */
extern _Thread_local mesh_loop_t *mesh_tls_loop;
/** The loop a send from outside any actor starts on (the simulator's only loop, the calling
 *  loop thread's, or NULL for foreign threads). */
mesh_loop_t *mesh_rt_caller_loop(mesh_exec_t *e);
/** Runs on_stop of every actor still running, in reverse start order (the simulator's
 *  teardown: its actors are never shut down by messages). */
void mesh_rt_stop_live(mesh_exec_t *e);
/** Frees every actor, message and timer still held (executor teardown). */
void mesh_rt_free_all(mesh_exec_t *e);
/** Now on this loop's clock. */
uint64_t mesh_rt_now(mesh_loop_t *l);
/** The real executor's shutdown sequence: an actor finished stopping. */
void mesh_exec_stop_acked(mesh_exec_t *e);
/** Folds an event into the simulator's trace. */
void mesh_sim_trace_event(mesh_exec_t *e, mesh_actor_id_t from, mesh_actor_id_t to, uint32_t type);

/** Simulator, logical-process mode: the process the calling thread runs now, or NULL (at a
 *  window boundary, or outside that mode). */
static inline mesh_loop_t *mesh_sim_cur(const mesh_exec_t *e)
{
    mesh_loop_t *l = mesh_tls_loop;
    return (e->lp_mode && l && l->exec == e) ? l : NULL;
}
/** Simulator: schedules fn(arg) at at on logical process lp (lp < 0: the serial queue); from
 *  within a window, a call for another process goes through the outbox (at must not be before
 *  the window's end: the lookahead). Outside the mode, the same as mesh_sim_call_at. */
int mesh_sim_call_at_lp(mesh_exec_t *e, int lp, uint64_t at, void (*fn)(void *), void *arg);
/** Simulator, logical-process mode: runs windows until until_ns (sim_lp.c). */
uint64_t mesh_sim_lp_run_until(mesh_exec_t *e, uint64_t until_ns, uint64_t max_steps);
/** Simulator, logical-process mode: one step of process l at its clock (sim.c). */
int mesh_sim_lp_step(mesh_exec_t *e, mesh_loop_t *l);
/** Simulator, logical-process mode: stops the worker threads (sim_lp.c). */
void mesh_sim_lp_free(mesh_exec_t *e);

/** Simulator: adds a ready actor to the ready array, or parks it when its host stalls. */
void mesh_sim_ready_add(mesh_loop_t *l, mesh_actor_t *a);
/** Simulator: takes a queued actor out of the ready array or its host's parked array. */
void mesh_sim_ready_remove(mesh_loop_t *l, mesh_actor_t *a);
/** Simulator: puts the timers a stall held back on the heap, due now, in their order. */
void mesh_sim_host_release_timers(mesh_exec_t *e, mesh_sim_host_t *h);
/** Simulator: makes the actors a stall parked ready again, in their order. */
void mesh_sim_host_unpark(mesh_exec_t *e, mesh_sim_host_t *h);
/** Simulator: frees what a host's runtime view holds. */
void mesh_sim_host_destroy(mesh_sim_host_t *h);

/* --- the simulated network (simnet.c) --- */
mesh_simnet_t *mesh_simnet_new(mesh_exec_t *sim);
void mesh_simnet_free(mesh_simnet_t *net);
/** The runtime view of the simulated host behind io, or NULL when io is not one of net's. */
mesh_sim_host_t *mesh_simnet_host_rt(mesh_simnet_t *net, mesh_io_t *io);

/* --- the libuv io (io_uv.c) --- */
mesh_io_t *mesh_io_uv_new(mesh_loop_t *l);
void mesh_io_uv_free(mesh_io_t *io);

#endif
