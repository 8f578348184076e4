/*
 * transport/h2_liveness.c: keepalive and liveness PING decisions of an HTTP/2 connection, on
 * the time the owner passes in; see transport/h2_liveness.h.
 */
#include "transport/h2_liveness.h"

void mesh_h2_live_keepalive(mesh_h2_live_t *l, uint64_t interval_ms, uint64_t timeout_ms,
                            uint64_t now)
{
    l->ping_interval_ms = interval_ms;
    l->ping_timeout_ms = timeout_ms ? timeout_ms : interval_ms;
    l->last_ping_ack = now;
}

void mesh_h2_live_stall(mesh_h2_live_t *l, uint64_t stall_ms, uint64_t timeout_ms)
{
    l->stall_ms = stall_ms;
    l->stall_timeout_ms = timeout_ms ? timeout_ms : stall_ms;
}

/* When a liveness PING is due: stall_ms after the later of the last read and the first write
 * since the last answered liveness PING (each write earns at most one PING while the peer is
 * quiet). */
static uint64_t stall_due(const mesh_h2_live_t *l)
{
    return (l->last_rx > l->tx_since ? l->last_rx : l->tx_since) + l->stall_ms;
}

uint64_t mesh_h2_live_due(const mesh_h2_live_t *l)
{
    uint64_t due = MESH_H2_LIVE_NEVER;
    if (l->handshake_deadline)
        due = l->handshake_deadline;
    if (l->ping_outstanding)
        return l->ping_deadline < due ? l->ping_deadline : due;
    if (l->ping_interval_ms && l->last_ping_ack + l->ping_interval_ms < due)
        due = l->last_ping_ack + l->ping_interval_ms;
    if (l->stall_ms && l->tx_since && stall_due(l) < due)
        due = stall_due(l);
    return due;
}

int mesh_h2_live_tx(mesh_h2_live_t *l, uint64_t now)
{
    if (!l->stall_ms || l->tx_since)
        return 0;
    l->tx_since = now;
    return !l->ping_outstanding;
}

/* The peer showed it is there: the next write may ask again. */
static void answered(mesh_h2_live_t *l, uint64_t now)
{
    if (l->ping_for_stall)
        l->tx_since = 0;
    l->ping_outstanding = 0;
    l->ping_for_stall = 0;
    l->rx_since_ping = 0;
    l->last_ping_ack = now;
}

int mesh_h2_live_acked(mesh_h2_live_t *l, uint64_t now)
{
    if (!l->ping_outstanding)
        return 0; /* an ACK we did not ask for, or a probe answered by other frames already */
    answered(l, now);
    return 1;
}

mesh_h2_live_action_t mesh_h2_live_timer(mesh_h2_live_t *l, uint64_t now, size_t outstanding,
                                         int unread)
{
    if (l->handshake_deadline && now >= l->handshake_deadline)
        return MESH_H2_LIVE_CLOSE_HANDSHAKE;
    if (l->ping_outstanding) {
        if (now < l->ping_deadline)
            return MESH_H2_LIVE_NONE;
        /* A liveness probe asks "is anybody there": any frame answers it (a peer busy sending
         * a large response may queue the ACK behind it), read or waiting to be. Keepalive wants
         * the ACK itself, which may be among the unread bytes: one more loop turn reads them. */
        if (l->ping_for_stall && (l->rx_since_ping || unread)) {
            answered(l, now);
            return MESH_H2_LIVE_NONE;
        }
        if (unread && !l->unread_forgiven) {
            l->unread_forgiven = 1;
            l->ping_deadline = now + 1;
            return MESH_H2_LIVE_NONE;
        }
        /* The loop ran late: the time it was not running does not count against the peer. */
        uint64_t late = now - l->ping_deadline, wait = l->ping_deadline - l->ping_sent;
        if (!l->late_forgiven && late > wait / 4) {
            l->late_forgiven = 1;
            l->ping_deadline = now + (late < wait ? late : wait);
            return MESH_H2_LIVE_NONE;
        }
        return l->ping_for_stall ? MESH_H2_LIVE_CLOSE_STALL : MESH_H2_LIVE_CLOSE_KEEPALIVE;
    }
    uint64_t wait = 0;
    int stall = 0;
    if (l->stall_ms && l->tx_since && now >= stall_due(l)) {
        if (outstanding > 0) {
            wait = l->stall_timeout_ms;
            stall = 1;
        } else {
            l->tx_since = 0; /* what was written awaits no answer (a reset, a window update) */
        }
    }
    if (!stall && l->ping_interval_ms && now >= l->last_ping_ack + l->ping_interval_ms)
        wait = l->ping_timeout_ms;
    if (!wait)
        return MESH_H2_LIVE_NONE;
    l->ping_outstanding = 1;
    l->ping_for_stall = (uint8_t)stall;
    l->rx_since_ping = 0;
    l->late_forgiven = 0;
    l->unread_forgiven = 0;
    l->ping_sent = now;
    l->ping_deadline = now + wait;
    return MESH_H2_LIVE_PING;
}

void mesh_h2_live_ping_failed(mesh_h2_live_t *l)
{
    /* Give this round up rather than ask again at once (a timer due in the past would spin). */
    if (l->ping_for_stall)
        l->tx_since = 0;
    else
        l->last_ping_ack = l->ping_sent;
    l->ping_outstanding = 0;
    l->ping_for_stall = 0;
}
