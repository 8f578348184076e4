/*
 * actors/msg.h: the message envelope every actor message travels in.
 *
 * An envelope carries a type id, the sender and receiver ids, a correlation id (requests,
 * replies, timers), a small inline payload and an optional pointer payload with a destructor.
 * Envelopes come from a per-thread free list: steady-state sends allocate nothing. An envelope
 * freed on another thread than the one that allocated it goes back to its home list through
 * a lock-free return stack.
 */
#ifndef MESH_MSG_H
#define MESH_MSG_H

#include <stddef.h>
#include <stdint.h>

/** An actor address: generation (32 bits) | loop index (8 bits) | slot (24 bits). 0 is none. */
typedef uint64_t mesh_actor_id_t;

/** Bytes of payload carried inside the envelope. */
#define MESH_MSG_INLINE 48

/** Type ids at or above this value are reserved for the runtime. */
#define MESH_MSG_SYSTEM 0xFFFF0000u
/** Delivered to a requester when a request timed out (corr = the request's corr). */
#define MESH_MSG_TIMEOUT 0xFFFF0001u
/** Delivered to a parent when a child stopped or failed (payload: mesh_child_exit_t). */
#define MESH_MSG_CHILD_EXIT 0xFFFF0002u

/** Set on replies (mesh_reply). */
#define MESH_MSG_F_REPLY 0x1u
/** Set on requests (mesh_request): the receiver should mesh_reply. */
#define MESH_MSG_F_REQUEST 0x2u
/** Set on timer firings (corr = the timer id). */
#define MESH_MSG_F_TIMER 0x4u

/** The envelope. Fields marked runtime are not for actor code. */
typedef struct mesh_msg {
    struct mesh_msg *next;       /* runtime: intrusive queue link */
    void *home;                  /* runtime: the free list this envelope returns to */
    mesh_actor_id_t from;        /* sender (0 when sent from outside any actor) */
    mesh_actor_id_t to;          /* receiver */
    uint64_t corr;               /* correlation id (requests, replies, timers) or 0 */
    uint32_t type;               /* the message type id */
    uint16_t flags;              /* MESH_MSG_F_* */
    uint16_t len;                /* bytes used in data */
    void *ptr;                   /* optional pointer payload, owned by the message */
    void (*ptr_free)(void *ptr); /* run on ptr when the message is released, if still set */
    uint32_t rflags;             /* runtime flags */
    uint32_t aux;                /* runtime: stop reason, loop index of posts */
    union {
        unsigned char data[MESH_MSG_INLINE];
        uint64_t u64[MESH_MSG_INLINE / 8];
        void *p[MESH_MSG_INLINE / sizeof(void *)];
    };
} mesh_msg_t;

/** Takes an envelope from this thread's free list (allocates only when it is empty). */
mesh_msg_t *mesh_msg_alloc(void);

/** Releases an envelope: runs ptr_free on ptr if set, then returns it to its home list. */
void mesh_msg_free(mesh_msg_t *m);

/** Takes the pointer payload out of a message so releasing the message does not free it. */
void *mesh_msg_take_ptr(mesh_msg_t *m);

/**
 * Makes an envelope of a user type with len bytes of data copied inline (to the senders'
 * checks: *err = -MESH_E2BIG when len is over MESH_MSG_INLINE, -MESH_EINVAL for a system
 * type, -MESH_ENOMEM). NULL on error.
 */
mesh_msg_t *mesh_msg_make(uint32_t type, const void *data, size_t len, int *err);

/** Makes an envelope of a user type carrying ptr (freed with ptr_free with the envelope). */
mesh_msg_t *mesh_msg_make_ptr(uint32_t type, void *ptr, void (*ptr_free)(void *), int *err);

/** Releases an envelope a send refused, leaving its pointer payload to the caller. */
void mesh_msg_discard(mesh_msg_t *m);

/** Returns the inline payload as a const T *, or NULL when the message carries fewer bytes. */
#define mesh_msg_as(m, T) ((const T *)((m)->len >= sizeof(T) ? (const void *)(m)->data : NULL))

/** Envelope cache statistics of the calling thread (tests check memory stays bounded). */
typedef struct mesh_msg_stats {
    uint64_t allocated; /* envelopes obtained from malloc, all threads */
    uint64_t freed;     /* envelopes given back to free(), all threads */
} mesh_msg_stats_t;

/** Process-wide envelope allocation counters. */
void mesh_msg_stats(mesh_msg_stats_t *out);

#endif
