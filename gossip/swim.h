/*
 * gossip/swim.h: SWIM membership with Lifeguard, sans-I/O.
 *
 * One gsp_swim_t is one node's view of the group: its members (alive / suspect / dead / left,
 * with incarnation numbers), the probe cycle that detects failures, the suspicion timers, and
 * the queue of updates it piggybacks on its datagrams. It does no I/O and reads no clock:
 * the caller feeds it the time and what arrived (gsp_swim_on_*), and it acts through the
 * callbacks of gsp_swim_ops_t (send this datagram, send this frame on a stream, a member
 * changed). The gossip actor (gossip/gossip_actor.c) binds it to the io seam; the simulator
 * runs the same code under a virtual clock.
 *
 * Protocol (docs/gossip.md has the whole story):
 * - Probes: every probe interval the next member in a shuffled round-robin order is pinged;
 *   without an ACK within the probe timeout, k members are asked to ping it (PING_REQ, with
 *   NACKs) and a ping is also tried over a stream (a network that drops datagrams does not
 *   make the whole group dead); without any ACK by the end of the interval it is suspected.
 * - Suspicion (Lifeguard): the timeout starts at max and shrinks towards min as independent
 *   members confirm the suspicion (min = suspicion_mult * log10(n) * probe interval). A
 *   suspected node that hears of it refutes with a higher incarnation.
 * - Local health (Lifeguard): a score raised by missed ACKs and NACKs, refutations and late
 *   timers, lowered by successful probes, stretches this node's probe interval and timeouts,
 *   so a starved node does not accuse healthy ones. A timer that fires much later than due
 *   (the loop stalled) raises the score and postpones suspicion verdicts by a grace period,
 *   so input that waited in the socket is read before anyone is declared dead.
 * - Dissemination: every change is queued and piggybacked on probes and acks, fewest sent
 *   first, each at most retransmit_mult * ceil(log10(n + 1)) times; a gossip tick sends queued
 *   updates to a few random members. A periodic push-pull over a stream with one random
 *   member brings both states together (anti-entropy): the request carries a digest per
 *   member (name, incarnation, state, meta version) and the answer what the asker lacks or
 *   holds differently; what the answerer lacks it fetches (WANT). Joins, and nodes older than
 *   digests, exchange whole states. Members that died recently are retried
 *   (push-pull) every reconnect interval, and the seeds are re-joined while any are dead, so
 *   the two sides of a healed partition merge again.
 * - Each member carries metadata: the instances it serves, versioned (meta_version). Updates
 *   are ordered by (incarnation, meta_version). Metadata too large for a datagram travels on
 *   streams (WANT / STATE); method sets travel once per hash (WANT / SET), shared by every
 *   instance that serves the same set.
 * - Names are unique: an ALIVE for a live member's name from another address is refused and
 *   reported (on_conflict). A node that comes back with the same name and a new address is
 *   accepted once the old one is dead or left.
 */
#ifndef GSP_SWIM_H
#define GSP_SWIM_H

#include <stddef.h>
#include <stdint.h>

#include "gossip/wire.h"

typedef struct gsp_swim gsp_swim_t;

/** Timing and sizes. gsp_swim_profile() fills the named profiles; any field may be changed. */
typedef struct gsp_swim_cfg {
    uint64_t probe_interval_ns;
    uint64_t probe_timeout_ns;
    uint32_t indirect_checks;    /* members asked to probe for us (PING_REQ) */
    uint32_t suspicion_mult;     /* min suspicion timeout = mult * log10(n) * probe interval */
    uint32_t suspicion_max_mult; /* max suspicion timeout = this * min */
    uint32_t retransmit_mult;    /* an update is sent mult * ceil(log10(n + 1)) times */
    uint64_t gossip_interval_ns; /* queued updates to gossip_nodes random members */
    uint32_t gossip_nodes;
    uint64_t push_pull_interval_ns;
    uint32_t awareness_max;     /* local health score stays below this */
    uint64_t stream_timeout_ns; /* a stream exchange (push-pull, fetch, ping) gives up */
    uint64_t tombstone_ns;      /* dead and left members are remembered this long */
    uint64_t reconnect_interval_ns;
    uint64_t reconnect_timeout_ns; /* dead members are retried for this long */
    uint64_t late_timer_ns;        /* a timer this late means the loop stalled */
    size_t udp_max;                /* bytes of one compound (the datagram minus sealing) */
    int legacy_push_pull;          /* behave as a node older than digest push-pulls: send and answer
                                      whole states, never read digests (simulations of mixed meshes) */
} gsp_swim_cfg_t;

/** "lan" (default), "wan" or "local"; returns 0, or -1 for an unknown name. */
int gsp_swim_profile(const char *name, gsp_swim_cfg_t *cfg);

/** A member, as the callbacks and gsp_swim_member() show it (valid during the call / until the
 *  next call into the swim). */
typedef struct gsp_member {
    const char *name;
    const char *addr; /* "host:port" of its gossip socket */
    gsp_state_t state;
    uint32_t incarnation;
    uint64_t meta_version;
    const uint8_t *meta; /* encoded metadata (gsp_meta_decode), NULL while not known */
    size_t meta_len;
    uint64_t since_ns; /* when it entered its state */
    int self;
    int declared; /* member(): it is dead because our own suspicion timeout declared it (we
                     are the one member that reports the death: audit's one emitter per fact) */
} gsp_member_t;

/** What the swim asks of its host. Every callback is optional but send. */
typedef struct gsp_swim_ops {
    /** Send one datagram (an unsealed compound) to addr ("host:port"). */
    void (*send)(void *ud, const char *addr, const uint8_t *data, size_t len);
    /** Open a stream to addr, send one frame (unsealed compound), read one frame back and hand
     *  it to gsp_swim_on_stream_reply(tag) (NULL on failure or after stream_timeout). */
    void (*stream)(void *ud, const char *addr, const uint8_t *data, size_t len, uint64_t tag);
    /** A member joined, changed state, or its metadata changed (prev_state: its state before;
     *  joined: first seen). */
    void (*member)(void *ud, const gsp_member_t *m, gsp_state_t prev_state, int joined);
    /** A method set arrived (names are valid during the call): return 0 to keep it (its hash
     *  matches its names: gsp_meta_set_hash), -1 to refuse it. Without this callback sets are
     *  refused (the swim does not know how hashes are made). */
    int (*method_set)(void *ud, uint64_t hash, const gsp_str_t *names, size_t n);
    /** Another live node claims our name (or a name we know is alive from another address):
     *  the caller decides (at start: refuse to run). */
    void (*conflict)(void *ud, const char *name, const char *ours, const char *theirs);
    /** A log line (level as in common/log.h: 0 debug .. 3 error). */
    void (*log)(void *ud, int level, const char *line);
    /** A DEAD about a member we already hold dead at that incarnation: accuser's suspicion
     *  timeout declared it too (audit's tie-break between members that declared one death at
     *  about the same time). Optional. */
    void (*accused)(void *ud, const char *member, uint32_t inc, const char *accuser);
} gsp_swim_ops_t;

/** Creates a node named name advertising addr; seed feeds its PRNG. NULL on bad arguments or
 *  out of memory. */
gsp_swim_t *gsp_swim_new(const char *name, const char *addr, const gsp_swim_cfg_t *cfg,
                         const gsp_swim_ops_t *ops, void *ud, uint64_t seed, uint64_t now);
void gsp_swim_free(gsp_swim_t *s);

/** Starts from a previous life: our incarnation will be above inc (a restarted node). */
void gsp_swim_set_incarnation(gsp_swim_t *s, uint32_t inc);

/** Joins through seeds ("host:port"): push-pull with each (retried until one answers). */
void gsp_swim_join(gsp_swim_t *s, uint64_t now, const char *const *seeds, size_t n);

/** Sets our metadata (encoded instances) and the method sets it refers to; bumps
 *  meta_version and announces it. Copies everything. Returns 0, or -1 when over a bound. */
int gsp_swim_set_meta(gsp_swim_t *s, uint64_t now, const uint8_t *meta, size_t len);
/** As gsp_swim_set_meta at a version chosen by the caller (a signed record names its version:
 *  ca/record_sig.h); 0 means the next one. -1 also when version is not above our current one. */
int gsp_swim_set_meta_version(gsp_swim_t *s, uint64_t now, const uint8_t *meta, size_t len,
                              uint64_t version);
/** Registers a method set we serve (so we can answer WANT); copies the names. */
int gsp_swim_add_method_set(gsp_swim_t *s, uint64_t hash, const char *const *names, size_t n);

/** Asks for method sets we do not know (hashes that node's metadata refers to): fetched once
 *  over a stream from node (the owner). */
void gsp_swim_want_sets(gsp_swim_t *s, uint64_t now, const char *node, const uint64_t *hashes,
                        size_t n);

/** Announces that we leave: a DEAD about ourselves, sent at once to a few members and queued.
 *  After this the node stops probing; gsp_swim_leave_sent() says when the update went out to
 *  enough members to stop. */
void gsp_swim_leave(gsp_swim_t *s, uint64_t now);
int gsp_swim_leave_sent(const gsp_swim_t *s);

/** A datagram arrived (an opened compound) from addr. */
void gsp_swim_on_datagram(gsp_swim_t *s, uint64_t now, const char *from, const uint8_t *data,
                          size_t len);

/**
 * A frame arrived on an accepted stream: returns the reply frame to write back (owned by the
 * swim, valid until the next call), or NULL with *reply_len 0 when there is none.
 */
const uint8_t *gsp_swim_on_stream_request(gsp_swim_t *s, uint64_t now, const uint8_t *data,
                                          size_t len, size_t *reply_len);

/** The reply of a stream exchange asked for with ops->stream (data NULL: it failed). */
void gsp_swim_on_stream_reply(gsp_swim_t *s, uint64_t now, uint64_t tag, const uint8_t *data,
                              size_t len);

/** Runs what is due at now. Call it at gsp_swim_next_deadline() (or later). */
void gsp_swim_on_time(gsp_swim_t *s, uint64_t now);
/** The time of the next thing to do (UINT64_MAX: nothing). */
uint64_t gsp_swim_next_deadline(const gsp_swim_t *s);

/* ---- reading the view -------------------------------------------------------------------- */

/** Members known (self included, tombstones included). */
size_t gsp_swim_count(const gsp_swim_t *s);
/** Member i (0 .. count-1, in no particular order), filled into *out. */
int gsp_swim_member(const gsp_swim_t *s, size_t i, gsp_member_t *out);
/** The member named name, or -1. */
int gsp_swim_find(const gsp_swim_t *s, const char *name, gsp_member_t *out);
/** Members alive or suspect (self included). */
size_t gsp_swim_live(const gsp_swim_t *s);
/** The names of a method set we know, or NULL (n set to its size). */
const char *const *gsp_swim_method_set(const gsp_swim_t *s, uint64_t hash, size_t *n);
/** Our local health score (0 = healthy). */
uint32_t gsp_swim_awareness(const gsp_swim_t *s);
/** Whether we joined (a push-pull with a seed answered, or we have no seeds). */
int gsp_swim_joined(const gsp_swim_t *s);
/** Our own incarnation. */
uint32_t gsp_swim_incarnation(const gsp_swim_t *s);

/** Upper bounds (microseconds) of the probe round-trip buckets; one more bucket for the rest. */
#define GSP_RTT_BOUNDS 13
extern const uint64_t gsp_rtt_bounds_us[GSP_RTT_BOUNDS];

/** Counters (only uint64_t fields: simulators sum them field by field). */
typedef struct gsp_swim_stats {
    uint64_t probes, probe_acks, indirect_probes, stream_probes, suspicions, refutations, deaths,
        joins, push_pulls, bad_messages, unknown_messages, late_timers, conflicts, sent_datagrams,
        sent_bytes, recv_datagrams, recv_bytes, dropped_updates;
    /* a member's leave or newer incarnation queued again (or told an asker) because someone
     * held stale news of it */
    uint64_t reasserted;
    /* bytes of the stream requests this node opened (push-pull states, WANTs, TCP pings); the
     * answers it gives count in sent_bytes with the datagrams */
    uint64_t stream_request_bytes;
    /* push-pulls sent as digests; STATEs sent in answer to digests (what the asker lacked);
     * members fetched (WANT) from an asker that held them newer */
    uint64_t digest_push_pulls, digest_states_sent, digest_wants;
    /* Probe round trips: from a probe's ping to its first ack (direct, by TCP, or relayed by an
     * indirect probe); counts per bucket of gsp_rtt_bounds_us (not cumulative), the last one
     * for longer, and their sum. */
    uint64_t probe_rtt_buckets[GSP_RTT_BOUNDS + 1], probe_rtt_sum_us;
} gsp_swim_stats_t;
void gsp_swim_stats(const gsp_swim_t *s, gsp_swim_stats_t *out);

#endif
