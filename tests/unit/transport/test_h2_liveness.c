/*
 * tests/unit/transport/test_h2_liveness.c: keepalive and liveness PING decisions
 * (transport/h2_liveness.h) on a fake clock: a peer that drops everything is given up
 * stall + timeout after the write its calls wait on; a slow peer that answers the PING keeps
 * its connection and is not asked again until more is written; any frame answers a liveness
 * PING (and ends the suspicion that steers new calls elsewhere); a connection with nothing
 * outstanding is never probed; keepalive still wants its ACK; a TLS handshake not done by its
 * deadline closes the connection, one done in time lifts the deadline; the node's own lateness
 * is not blamed on the peer: bytes waiting unread answer a probe, and a timer that fired late
 * (the process did not run) moves the deadline once, so a silent peer is still given up.
 */
#include "transport/h2_liveness.h"

#include <stdio.h>

#include "tests/check.h"

/* Runs the timer the way the owner does: only when due. */
static mesh_h2_live_action_t fire(mesh_h2_live_t *l, uint64_t now, size_t outstanding)
{
    CHECK(mesh_h2_live_due(l) <= now);
    return mesh_h2_live_timer(l, now, outstanding, 0);
}

static void test_silent_peer_closed(void)
{
    mesh_h2_live_t l = {0};
    mesh_h2_live_stall(&l, 1000, 1000);
    CHECK_EQ(mesh_h2_live_due(&l), MESH_H2_LIVE_NEVER); /* nothing written: no timer */
    mesh_h2_live_rx(&l, 5000);                          /* SETTINGS arrived */
    CHECK_EQ(mesh_h2_live_tx(&l, 10000), 1);            /* a call's HEADERS went out */
    CHECK_EQ(mesh_h2_live_due(&l), 11000);
    CHECK_EQ(mesh_h2_live_tx(&l, 10400), 0); /* later writes do not move the clock */
    CHECK(!mesh_h2_live_suspect(&l));
    CHECK_EQ(fire(&l, 11000, 3), MESH_H2_LIVE_PING);
    CHECK(mesh_h2_live_suspect(&l)); /* new calls go elsewhere until it answers */
    CHECK_EQ(mesh_h2_live_due(&l), 12000);
    CHECK_EQ(mesh_h2_live_timer(&l, 11500, 3, 0), MESH_H2_LIVE_NONE); /* early: still waiting */
    CHECK_EQ(fire(&l, 12000, 3), MESH_H2_LIVE_CLOSE_STALL);           /* dropped: given up at 2 s */
}

static void test_slow_peer_kept(void)
{
    mesh_h2_live_t l = {0};
    mesh_h2_live_stall(&l, 1000, 1000);
    mesh_h2_live_tx(&l, 10000);
    CHECK_EQ(fire(&l, 11000, 1), MESH_H2_LIVE_PING);
    CHECK_EQ(mesh_h2_live_acked(&l, 11002), 1);
    CHECK(!mesh_h2_live_suspect(&l));
    /* the app takes its time: no new PING until something more is written */
    CHECK_EQ(mesh_h2_live_due(&l), MESH_H2_LIVE_NEVER);
    CHECK_EQ(mesh_h2_live_acked(&l, 11003), 0); /* an ACK nobody asked for */
    mesh_h2_live_tx(&l, 20000);
    CHECK_EQ(mesh_h2_live_due(&l), 21000);
    /* reads push the check back */
    mesh_h2_live_rx(&l, 20800);
    CHECK_EQ(mesh_h2_live_due(&l), 21800);
    CHECK_EQ(fire(&l, 21800, 1), MESH_H2_LIVE_PING);
}

static void test_any_frame_answers(void)
{
    mesh_h2_live_t l = {0};
    mesh_h2_live_stall(&l, 1000, 1000);
    mesh_h2_live_tx(&l, 10000);
    CHECK_EQ(fire(&l, 11000, 1), MESH_H2_LIVE_PING);
    CHECK(mesh_h2_live_suspect(&l));
    mesh_h2_live_rx(&l, 11500); /* a large response arrives, the ACK queued behind it */
    CHECK(!mesh_h2_live_suspect(&l));
    CHECK_EQ(fire(&l, 12000, 1), MESH_H2_LIVE_NONE);
    CHECK_EQ(mesh_h2_live_due(&l), MESH_H2_LIVE_NEVER); /* answered: waits for the next write */
    CHECK_EQ(mesh_h2_live_acked(&l, 12001), 0);         /* the late ACK changes nothing */
}

static void test_nothing_outstanding(void)
{
    mesh_h2_live_t l = {0};
    mesh_h2_live_stall(&l, 1000, 0); /* timeout 0: the stall time */
    CHECK_EQ(l.stall_timeout_ms, 1000);
    mesh_h2_live_tx(&l, 10000); /* a WINDOW_UPDATE or a reset: awaits no answer */
    CHECK_EQ(fire(&l, 11000, 0), MESH_H2_LIVE_NONE);
    CHECK_EQ(mesh_h2_live_due(&l), MESH_H2_LIVE_NEVER);
}

static void test_keepalive_wants_ack(void)
{
    mesh_h2_live_t l = {0};
    mesh_h2_live_keepalive(&l, 30000, 10000, 1000);
    CHECK_EQ(mesh_h2_live_due(&l), 31000);
    CHECK_EQ(fire(&l, 31000, 0), MESH_H2_LIVE_PING);
    mesh_h2_live_rx(&l, 32000); /* data, but no ACK */
    CHECK_EQ(fire(&l, 41000, 0), MESH_H2_LIVE_CLOSE_KEEPALIVE);
    /* answered in time: the next period starts at the ACK */
    l = (mesh_h2_live_t){0};
    mesh_h2_live_keepalive(&l, 30000, 10000, 1000);
    CHECK_EQ(fire(&l, 31000, 0), MESH_H2_LIVE_PING);
    CHECK_EQ(mesh_h2_live_acked(&l, 31005), 1);
    CHECK_EQ(mesh_h2_live_due(&l), 61005);
}

static void test_stall_before_keepalive(void)
{
    mesh_h2_live_t l = {0};
    mesh_h2_live_keepalive(&l, 30000, 10000, 0);
    mesh_h2_live_stall(&l, 1000, 1000);
    mesh_h2_live_tx(&l, 5000);
    CHECK_EQ(mesh_h2_live_due(&l), 6000); /* the earlier of the two */
    CHECK_EQ(fire(&l, 6000, 2), MESH_H2_LIVE_PING);
    CHECK(l.ping_for_stall);
    CHECK_EQ(mesh_h2_live_due(&l), 7000); /* the liveness timeout, not keepalive's 10 s */
}

static void test_ping_not_sent(void)
{
    mesh_h2_live_t l = {0};
    mesh_h2_live_stall(&l, 1000, 1000);
    mesh_h2_live_tx(&l, 10000);
    CHECK_EQ(fire(&l, 11000, 1), MESH_H2_LIVE_PING);
    mesh_h2_live_ping_failed(&l); /* out of memory: no spinning timer, no close */
    CHECK_EQ(mesh_h2_live_due(&l), MESH_H2_LIVE_NEVER);
}

static void test_handshake_deadline(void)
{
    mesh_h2_live_t l = {0};
    mesh_h2_live_keepalive(&l, 30000, 10000, 1000);
    mesh_h2_live_handshake(&l, 10000, 1000);
    CHECK_EQ(mesh_h2_live_due(&l), 11000); /* before keepalive's first PING at 31 s */
    CHECK_EQ(mesh_h2_live_timer(&l, 10999, 0, 0), MESH_H2_LIVE_NONE);
    CHECK_EQ(fire(&l, 11000, 0), MESH_H2_LIVE_CLOSE_HANDSHAKE); /* a silent peer: closed */

    mesh_h2_live_t k = {0};
    mesh_h2_live_keepalive(&k, 30000, 10000, 1000);
    mesh_h2_live_handshake(&k, 10000, 1000);
    mesh_h2_live_handshake_done(&k); /* the handshake finished at once */
    CHECK_EQ(mesh_h2_live_due(&k), 31000);
    CHECK_EQ(fire(&k, 31000, 0), MESH_H2_LIVE_PING); /* keepalive as before, no close */

    mesh_h2_live_t n = {0};
    mesh_h2_live_handshake(&n, 0, 1000); /* 0: no deadline */
    CHECK_EQ(mesh_h2_live_due(&n), MESH_H2_LIVE_NEVER);
}

static void test_unread_bytes_answer(void)
{
    /* a liveness probe: the ACK sits unread when the timer fires first after a pause */
    mesh_h2_live_t l = {0};
    mesh_h2_live_stall(&l, 1000, 1000);
    mesh_h2_live_tx(&l, 10000);
    CHECK_EQ(fire(&l, 11000, 2), MESH_H2_LIVE_PING);
    CHECK(!mesh_h2_live_deciding(&l, 11999));
    CHECK(mesh_h2_live_deciding(&l, 12000));
    CHECK_EQ(mesh_h2_live_timer(&l, 12000, 2, 1), MESH_H2_LIVE_NONE);
    CHECK(!mesh_h2_live_suspect(&l));
    CHECK_EQ(mesh_h2_live_due(&l), MESH_H2_LIVE_NEVER); /* answered: waits for the next write */

    /* keepalive wants the ACK: one loop turn to read what waits, then it is given up */
    mesh_h2_live_t k = {0};
    mesh_h2_live_keepalive(&k, 30000, 10000, 1000);
    CHECK_EQ(fire(&k, 31000, 0), MESH_H2_LIVE_PING);
    CHECK_EQ(mesh_h2_live_timer(&k, 41000, 0, 1), MESH_H2_LIVE_NONE);
    CHECK_EQ(mesh_h2_live_due(&k), 41001);
    CHECK_EQ(mesh_h2_live_timer(&k, 41001, 0, 1), MESH_H2_LIVE_CLOSE_KEEPALIVE); /* data, no ACK */
    /* the ACK was among them: the next period starts */
    k = (mesh_h2_live_t){0};
    mesh_h2_live_keepalive(&k, 30000, 10000, 1000);
    CHECK_EQ(fire(&k, 31000, 0), MESH_H2_LIVE_PING);
    CHECK_EQ(mesh_h2_live_timer(&k, 41000, 0, 1), MESH_H2_LIVE_NONE);
    CHECK_EQ(mesh_h2_live_acked(&k, 41001), 1);
    CHECK_EQ(mesh_h2_live_due(&k), 71001);
}

static void test_late_loop_forgiven_once(void)
{
    mesh_h2_live_t l = {0};
    mesh_h2_live_stall(&l, 1000, 1000);
    mesh_h2_live_tx(&l, 10000);
    CHECK_EQ(fire(&l, 11000, 1), MESH_H2_LIVE_PING);
    /* the timer fires 400 ms after the deadline: the process did not run, nor maybe the peer */
    CHECK_EQ(fire(&l, 12400, 1), MESH_H2_LIVE_NONE);
    CHECK(mesh_h2_live_suspect(&l));
    CHECK_EQ(mesh_h2_live_due(&l), 12800);                  /* the deadline moved by the lateness */
    CHECK_EQ(fire(&l, 12800, 1), MESH_H2_LIVE_CLOSE_STALL); /* still silent: given up */

    /* late again after the move: once per PING, so a starved node still gives up dead peers */
    l = (mesh_h2_live_t){0};
    mesh_h2_live_stall(&l, 1000, 1000);
    mesh_h2_live_tx(&l, 10000);
    CHECK_EQ(fire(&l, 11000, 1), MESH_H2_LIVE_PING);
    CHECK_EQ(fire(&l, 15000, 1), MESH_H2_LIVE_NONE);
    CHECK_EQ(mesh_h2_live_due(&l), 16000); /* moved by at most the wait */
    CHECK_EQ(fire(&l, 17000, 1), MESH_H2_LIVE_CLOSE_STALL);

    /* a little late (under a quarter of the wait) is on time */
    l = (mesh_h2_live_t){0};
    mesh_h2_live_stall(&l, 1000, 1000);
    mesh_h2_live_tx(&l, 10000);
    CHECK_EQ(fire(&l, 11000, 1), MESH_H2_LIVE_PING);
    CHECK_EQ(fire(&l, 12200, 1), MESH_H2_LIVE_CLOSE_STALL);

    /* the next PING may be forgiven again */
    l = (mesh_h2_live_t){0};
    mesh_h2_live_stall(&l, 1000, 1000);
    mesh_h2_live_tx(&l, 10000);
    CHECK_EQ(fire(&l, 11000, 1), MESH_H2_LIVE_PING);
    CHECK_EQ(fire(&l, 12500, 1), MESH_H2_LIVE_NONE);
    CHECK_EQ(mesh_h2_live_acked(&l, 12600), 1);
    mesh_h2_live_tx(&l, 20000);
    CHECK_EQ(fire(&l, 21000, 1), MESH_H2_LIVE_PING);
    CHECK_EQ(fire(&l, 22500, 1), MESH_H2_LIVE_NONE);
}

int main(void)
{
    RUN(test_silent_peer_closed);
    RUN(test_slow_peer_kept);
    RUN(test_any_frame_answers);
    RUN(test_nothing_outstanding);
    RUN(test_keepalive_wants_ack);
    RUN(test_stall_before_keepalive);
    RUN(test_ping_not_sent);
    RUN(test_handshake_deadline);
    RUN(test_unread_bytes_answer);
    RUN(test_late_loop_forgiven_once);
    printf("test_h2_liveness: ok\n");
    return 0;
}
