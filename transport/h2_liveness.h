/*
 * transport/h2_liveness.h: when an HTTP/2 connection sends a PING and when it gives up on its
 * peer, without I/O.
 *
 * Two reasons to PING, one PING outstanding at a time:
 *   - keepalive: every ping_interval_ms whatever the traffic; unanswered for ping_timeout_ms,
 *     the connection is closed (idle connections through NATs, half-dead peers);
 *   - liveness (upstream connections): calls are outstanding and nothing was received for
 *     stall_ms since the later of the last read and the first write since the last answered
 *     liveness PING. Then a PING goes out, and when nothing at all arrives within
 *     stall_timeout_ms (no ACK and no other frame) the connection is closed so its calls fail
 *     at once (UNAVAILABLE) instead of at their deadlines. This finds a peer whose packets are
 *     silently dropped (no RST) in stall_ms + stall_timeout_ms, not after TCP's retransmission
 *     timeout. A slow peer answers the PING and is not asked again until something more is
 *     written, so a long quiet call costs one PING per write burst, not one per stall_ms.
 *
 * Giving up is decided from outside the connection's own lateness (Lifeguard's point: a node
 * that is itself slow must not blame its peers):
 *   - bytes of the peer waiting unread in the socket answer it (libuv runs due timers before it
 *     polls for input, so after a pause of the process the ACK may sit unread when the timer
 *     fires): a liveness probe counts as answered, a keepalive PING gets one more loop turn;
 *   - when the timer fires later than a quarter of the PING's wait after its deadline, the loop
 *     itself was not running (CPU starvation, a stopped process, a long callback): the deadline
 *     moves once by that lateness, since the peer's answer may have been held up the same way.
 * A peer whose packets are dropped still is given up: nothing arrives and the extension is one.
 *
 * Before either, a TLS connection may have a handshake deadline (mesh_h2_live_handshake): when
 * the handshake is not done by then, the connection is closed (a client that connects and
 * never finishes, an upstream that accepts and never answers).
 *
 * The owner feeds reads, writes, ACKs and timer expiries with the time (ms) and arms one timer
 * for mesh_h2_live_due(); transport/h2_conn.c binds it to a uv_timer_t, the unit test to a fake
 * clock. Nothing allocates.
 */
#ifndef MESH_H2_LIVENESS_H
#define MESH_H2_LIVENESS_H

#include <stddef.h>
#include <stdint.h>

/** No timer needed. */
#define MESH_H2_LIVE_NEVER UINT64_MAX

/** The state of one connection. Zero it, then set the periods with the two setters. */
typedef struct mesh_h2_live {
    uint64_t ping_interval_ms, ping_timeout_ms; /* keepalive; 0: off */
    uint64_t stall_ms, stall_timeout_ms;        /* liveness; 0: off */
    uint64_t last_ping_ack;                     /* the last keepalive period started (set or ACK) */
    uint64_t ping_sent;                         /* when the outstanding PING went out */
    uint64_t ping_deadline;                     /* when the outstanding PING is given up */
    uint64_t last_rx;                           /* the last read */
    uint64_t tx_since; /* the first write since the last answered liveness PING; 0: none */
    uint8_t ping_outstanding;
    uint8_t ping_for_stall;      /* the outstanding PING is a liveness probe */
    uint8_t rx_since_ping;       /* something arrived since the outstanding PING went out */
    uint8_t late_forgiven;       /* the outstanding PING's deadline moved for the loop's lateness */
    uint8_t unread_forgiven;     /* ... and for bytes waiting unread (keepalive) */
    uint64_t handshake_deadline; /* the TLS handshake must be done by then; 0: none */
} mesh_h2_live_t;

/** What the owner must do when the timer fired. */
typedef enum mesh_h2_live_action {
    MESH_H2_LIVE_NONE = 0,
    MESH_H2_LIVE_PING,            /* send a PING now (then re-arm the timer) */
    MESH_H2_LIVE_CLOSE_STALL,     /* calls waited, the peer said nothing: close */
    MESH_H2_LIVE_CLOSE_KEEPALIVE, /* the keepalive PING went unanswered: close */
    MESH_H2_LIVE_CLOSE_HANDSHAKE, /* the TLS handshake was not done by its deadline: close */
} mesh_h2_live_action_t;

/** Keepalive PINGs every interval_ms (0: off), closing after timeout_ms (0: interval_ms)
 *  unanswered; the first period starts at now. */
void mesh_h2_live_keepalive(mesh_h2_live_t *l, uint64_t interval_ms, uint64_t timeout_ms,
                            uint64_t now);

/** Liveness PINGs after stall_ms quiet with calls waiting (0: off), closing after timeout_ms
 *  (0: stall_ms) without any frame. */
void mesh_h2_live_stall(mesh_h2_live_t *l, uint64_t stall_ms, uint64_t timeout_ms);

/** The TLS handshake must be done within timeout_ms of now (0: no deadline). */
static inline void mesh_h2_live_handshake(mesh_h2_live_t *l, uint64_t timeout_ms, uint64_t now)
{
    l->handshake_deadline = timeout_ms ? now + timeout_ms : 0;
}

/** The TLS handshake is done: its deadline no longer applies. */
static inline void mesh_h2_live_handshake_done(mesh_h2_live_t *l)
{
    l->handshake_deadline = 0;
}

/** When the owner's timer must fire next, or MESH_H2_LIVE_NEVER. */
uint64_t mesh_h2_live_due(const mesh_h2_live_t *l);

/** Bytes were read at now. */
static inline void mesh_h2_live_rx(mesh_h2_live_t *l, uint64_t now)
{
    l->last_rx = now;
    l->rx_since_ping = l->ping_outstanding;
}

/** Bytes were written at now. Returns 1 when this moved the due time earlier (re-arm). */
int mesh_h2_live_tx(mesh_h2_live_t *l, uint64_t now);

/** A PING ACK arrived at now. Returns 1 when it answered our PING (re-arm the timer). */
int mesh_h2_live_acked(mesh_h2_live_t *l, uint64_t now);

/** Whether the timer firing at now would decide on giving up the outstanding PING: the only
 *  time the owner needs to look for unread bytes (a syscall) for mesh_h2_live_timer. */
static inline int mesh_h2_live_deciding(const mesh_h2_live_t *l, uint64_t now)
{
    return l->ping_outstanding && now >= l->ping_deadline;
}

/**
 * The timer fired at now; outstanding is the number of calls waiting for an answer on the
 * connection; unread says bytes of the peer wait unread in the socket (only read when
 * mesh_h2_live_deciding; 0 otherwise). On MESH_H2_LIVE_PING the PING counts as sent (call
 * mesh_h2_live_ping_failed when it could not be queued). Re-arm the timer for
 * mesh_h2_live_due() afterwards.
 */
mesh_h2_live_action_t mesh_h2_live_timer(mesh_h2_live_t *l, uint64_t now, size_t outstanding,
                                         int unread);

/** Whether the peer is suspect now: a liveness PING is out and nothing arrived since. New
 *  calls are better sent elsewhere meanwhile (they would wait on a peer that may be gone). */
static inline int mesh_h2_live_suspect(const mesh_h2_live_t *l)
{
    return l->ping_outstanding && l->ping_for_stall && !l->rx_since_ping;
}

/** The PING mesh_h2_live_timer asked for could not be sent: forget it. */
void mesh_h2_live_ping_failed(mesh_h2_live_t *l);

#endif
