/*
 * gossip/check.h: the indirect check, as SWIM's indirect probe does it for members, applied to
 * a service instance: before the monitor evicts an instance it could not reach, its node asks
 * up to k gossip members to open a TCP connection to the instance's address (GSP_CHECK), and
 * any member that reaches it (GSP_CHECK_ACK, reached) vetoes the eviction: the monitor may be
 * the one cut off.
 *
 * This is the asking side's bookkeeping, without I/O: the asks in progress by sequence number,
 * their answers and their deadlines. The gossip actor (gossip/gossip_actor.c) picks the members,
 * sends the datagrams, runs the members' connects, and reports each finished ask to the local
 * actor that asked (GSP_MSG_CHECK / GSP_MSG_CHECK_DONE in gossip/gossip_actor.h). An ask ends at
 * the first member that reached the instance, when every asked member answered, or at its
 * deadline (the connect deadline plus GSP_CHECK_SLACK_MS for the datagrams), whichever comes
 * first. A member that never answers (an older node skips the unknown message type, or the
 * datagram was lost) counts as not reaching it.
 */
#ifndef GSP_CHECK_H
#define GSP_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "gossip/wire.h"

/** Time allowed beyond the connect deadline for the datagrams both ways. */
#define GSP_CHECK_SLACK_MS 500
/** The longest connect deadline a member accepts (a longer one is clamped). */
#define GSP_CHECK_TIMEOUT_MAX_MS 10000

/** A finished ask. */
typedef struct gsp_check_done {
    uint64_t asker; /* opaque: who asked (the actor's id) */
    uint64_t tag;   /* the asker's tag */
    uint32_t asked, answered, reached;
    char by[GSP_NAME_MAX + 1]; /* the first member that reached it ("" when none) */
} gsp_check_done_t;

/** One ask in progress. */
typedef struct gsp_check_ask {
    uint32_t seq;
    uint64_t deadline_ns;
    gsp_check_done_t d;
} gsp_check_ask_t;

/** The asks in progress. */
typedef struct gsp_checker {
    gsp_check_ask_t *v;
    size_t n, cap;
    uint32_t next_seq;
} gsp_checker_t;

/** Initializes an empty checker. */
void gsp_checker_init(gsp_checker_t *c);
/** Frees it (asks in progress are forgotten). */
void gsp_checker_destroy(gsp_checker_t *c);

/**
 * Starts an ask of `asked` members at now with a connect deadline of timeout_ms; returns its
 * sequence number (never 0), or 0 on out of memory. With asked == 0 the ask is finished at
 * once: gsp_checker_expire reports it on the next call.
 */
uint32_t gsp_checker_begin(gsp_checker_t *c, uint64_t now_ns, uint64_t asker, uint64_t tag,
                           uint32_t asked, uint32_t timeout_ms);

/**
 * A member's answer. Returns 1 and fills *done when it finished its ask (reached, or the last
 * answer), 0 otherwise (an unknown or finished seq is ignored).
 */
int gsp_checker_on_ack(gsp_checker_t *c, const gsp_check_ack_t *ack, gsp_check_done_t *done);

/** Takes one ask whose deadline passed by now (or that asked nobody) into *done: 1, or 0 when
 *  none is due. */
int gsp_checker_expire(gsp_checker_t *c, uint64_t now_ns, gsp_check_done_t *done);

/** The earliest deadline of the asks in progress (UINT64_MAX when none). */
uint64_t gsp_checker_next_deadline(const gsp_checker_t *c);

#endif
