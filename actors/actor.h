/*
 * actors/actor.h: the actor API, the only view of the runtime actor code has.
 *
 * An actor is a table of callbacks (mesh_actor_ops_t) plus state the runtime allocates for
 * each start. Every callback runs on the actor's loop thread, one at a time; the same actor
 * code runs on the real executor (libuv loop threads, exec.h) and on the simulated one
 * (sim.h). Functions return 0 or a negative MESH_E* code.
 */
#ifndef MESH_ACTOR_H
#define MESH_ACTOR_H

#include <stddef.h>
#include <stdint.h>

#include "actors/msg.h"

typedef struct mesh_actor mesh_actor_t;
typedef struct mesh_io mesh_io_t;

/** Error codes (returned negated). */
enum {
    MESH_EFULL = 1,  /* the receiver's mailbox is full: retry later */
    MESH_ENOENT = 2, /* no such actor (never existed or stopped) */
    MESH_EAGAIN = 3, /* the receiver is restarting: retry later */
    MESH_E2BIG = 4,  /* payload larger than MESH_MSG_INLINE: use mesh_send_ptr */
    MESH_ENOMEM = 5, /* allocation failed */
    MESH_EINVAL = 6, /* bad argument */
    MESH_ESTATE = 7, /* wrong state for this call */
};

/** Why an actor stopped (on_stop's reason, mesh_child_exit_t.reason). */
typedef enum {
    MESH_STOP_NORMAL = 0,   /* mesh_stop / mesh_stop_self */
    MESH_STOP_FAILED = 1,   /* on_start or on_message returned < 0 */
    MESH_STOP_SHUTDOWN = 2, /* executor shutdown */
    MESH_STOP_PARENT = 3,   /* its parent stopped */
} mesh_stop_reason_t;

/** What an actor does. Callbacks may be NULL except on_message. */
typedef struct mesh_actor_ops {
    const char *name;  /* for logs */
    size_t state_size; /* bytes of zeroed state allocated at each start (mesh_state) */
    /** Called first, before any message; < 0 means the start failed. */
    int (*on_start)(mesh_actor_t *self, void *arg);
    /** Called per message; the message is released after it returns; < 0 means failure. */
    int (*on_message)(mesh_actor_t *self, mesh_msg_t *msg);
    /** Called once when the actor stops or fails; frees what the state owns. */
    void (*on_stop)(mesh_actor_t *self, int reason);
} mesh_actor_ops_t;

/** mesh_spawn_opts_t.loop values: the spawner's loop (default), or loop i (0 = control,
 *  1..N = workers) as MESH_ON_LOOP(i). */
#define MESH_LOOP_SAME    0
#define MESH_ON_LOOP(i)   ((i) + 1)
#define MESH_LOOP_CONTROL MESH_ON_LOOP(0)

/** Spawn options; a zeroed struct (or NULL) means defaults. */
typedef struct mesh_spawn_opts {
    const char *name; /* overrides ops->name */
    int loop;         /* MESH_LOOP_SAME or MESH_ON_LOOP(i) */
    uint32_t mailbox; /* mailbox capacity (per origin: same-thread / cross-thread); 0 = 1024 */
    int restartable;  /* on failure keep the address, wait for the parent's mesh_restart */
} mesh_spawn_opts_t;

/** Payload of MESH_MSG_CHILD_EXIT. */
typedef struct mesh_child_exit {
    mesh_actor_id_t child;
    int32_t reason;     /* mesh_stop_reason_t */
    int32_t restarting; /* nonzero: the address is kept, mesh_restart restarts it */
} mesh_child_exit_t;

/** This actor's address. */
mesh_actor_id_t mesh_self(const mesh_actor_t *self);
/** This actor's state (ops->state_size zeroed bytes, fresh at each start). */
void *mesh_state(const mesh_actor_t *self);
/** The arg given at spawn (borrowed; lives as long as the spawner keeps it). */
void *mesh_arg(const mesh_actor_t *self);
/** This actor's name. */
const char *mesh_name(const mesh_actor_t *self);
/** This actor's parent (0 for root actors). */
mesh_actor_id_t mesh_parent(const mesh_actor_t *self);
/** Index of the loop this actor runs on (0 = control). */
int mesh_loop_index(const mesh_actor_t *self);
/** Number of loops of the executor (control + workers). */
int mesh_loop_count(const mesh_actor_t *self);
/** Current time in ns (monotonic on the real executor, virtual in the simulator). */
uint64_t mesh_now(const mesh_actor_t *self);
/** The I/O seam of this actor's loop (libuv or simulated network). */
mesh_io_t *mesh_io(const mesh_actor_t *self);
/** The libuv loop of this actor's loop on the real executor, for adapters that need libuv
 *  itself (the thread pool); NULL in the simulator. */
struct uv_loop_s *mesh_uv_loop(const mesh_actor_t *self);
/** A deterministic random number in the simulator, a fast PRNG in the real executor. */
uint64_t mesh_random(mesh_actor_t *self);

/** Sends type with len bytes copied inline; -MESH_EFULL / -MESH_ENOENT / -MESH_EAGAIN. */
int mesh_send(mesh_actor_t *self, mesh_actor_id_t to, uint32_t type, const void *data, size_t len);
/** Sends a pointer payload; on error ptr stays the caller's (not freed) so it can retry. */
int mesh_send_ptr(mesh_actor_t *self, mesh_actor_id_t to, uint32_t type, void *ptr,
                  void (*ptr_free)(void *));
/** Sends a prepared envelope (mesh_msg_alloc); on error it stays the caller's. */
int mesh_send_msg(mesh_actor_t *self, mesh_actor_id_t to, mesh_msg_t *m);

/** Sends a request; the reply arrives as a message with MESH_MSG_F_REPLY and the same corr,
 *  or MESH_MSG_TIMEOUT with that corr after timeout_ns. A late reply is dropped. */
int mesh_request(mesh_actor_t *self, mesh_actor_id_t to, uint32_t type, const void *data,
                 size_t len, uint64_t timeout_ns, uint64_t *corr_out);
/** Answers a request message (to its sender, with its corr). */
int mesh_reply(mesh_actor_t *self, const mesh_msg_t *request, uint32_t type, const void *data,
               size_t len);

/** Starts a timer: after delay_ns (then every period_ns if nonzero) on_message gets a message
 *  of this type with MESH_MSG_F_TIMER and corr = *timer_out. */
int mesh_timer_start(mesh_actor_t *self, uint64_t delay_ns, uint64_t period_ns, uint32_t type,
                     uint64_t *timer_out);
/** Cancels a timer; -MESH_ENOENT when it already fired (one-shot) or was cancelled. */
int mesh_timer_stop(mesh_actor_t *self, uint64_t timer);

/** Spawns a child of self (on self's loop unless opts says otherwise). */
int mesh_spawn(mesh_actor_t *self, const mesh_actor_ops_t *ops, void *arg,
               const mesh_spawn_opts_t *opts, mesh_actor_id_t *id_out);
/** Asks an actor to stop after the messages already in its mailbox (asynchronous). */
int mesh_stop(mesh_actor_t *self, mesh_actor_id_t id);
/** Stops self once the current callback returns. */
void mesh_stop_self(mesh_actor_t *self);
/** Restarts a failed restartable child (see mesh_spawn_opts_t.restartable). */
int mesh_restart(mesh_actor_t *self, mesh_actor_id_t child);

/** Human-readable text of a MESH_E* code (positive or negative). */
const char *mesh_strerror(int err);

#endif
