/*
 * actors/simnet.h: the simulated network behind the simulator's I/O seam.
 *
 * Hosts are IPv4 addresses; each has its own io seam (mesh_simnet_host) so many simulated
 * nodes share one process: a scenario hands each node's actors the io of its host (or spawns
 * them on it with mesh_sim_spawn_on, so that mesh_io() returns it). Each datagram or stream
 * chunk takes a latency drawn from the link's distribution (by default latency_min + a PRNG
 * draw in [0, latency_jitter) of virtual time); datagrams are lost with probability loss (so
 * they may also arrive reordered); streams keep their order.
 *
 * The fault model. Every decision draws from the simulator's seeded PRNG, so a seed replays
 * the same faults; every decision is also folded into stats.trace.
 *   - Loss: the global datagram loss, overridden per direction of a host pair by
 *     mesh_simnet_link_loss. Streams are not subject to loss (TCP hides it).
 *   - Cuts: a packet from host A to host B is cut when A->B is blocked (mesh_simnet_block_oneway;
 *     mesh_simnet_block blocks both directions) or when A and B are in different groups
 *     (mesh_simnet_partition; every host starts in group 0). Checking a packet costs O(1)
 *     hash lookups, whatever the number of hosts, blocks or groups. Cut datagrams are dropped.
 *     What a cut does to streams is opts.cut:
 *       MESH_SIMNET_CUT_SILENT (the default, as in production): nothing is said. A connect
 *       whose SYN or SYN-ACK would cross a cut is retried by the "kernel" (SYNs at 1, 3, 7, ...
 *       63 s, as Linux) and completes once the cut heals; after 127 s without success it fails
 *       with -ETIMEDOUT, also as Linux does: the caller's own, shorter timeout is expected to
 *       fire first. Stream data crossing a cut is held and retransmitted (RTO 200 ms doubling
 *       to 120 s) and arrives in order after the heal; after 15 min the writer's stream fails
 *       with -ETIMEDOUT while the reader hears nothing.
 *       MESH_SIMNET_CUT_RESET: stream data crossing a cut resets both ends (-ECONNRESET) and
 *       connects across one are refused (-ECONNREFUSED) at once.
 *   - A host that is down (mesh_simnet_host_down: its process was killed) is not a cut: its
 *     sockets, listeners and streams are closed, the peers of its streams get -ECONNRESET,
 *     connects to it are refused (RST) and datagrams to or from it are dropped. Stopping the
 *     node's actors is the scenario's part.
 *   - A stalled host (mesh_simnet_stall: its event loop blocked for a while) runs none of the
 *     actors bound to it (mesh_sim_spawn_on) and gets no I/O callback: its timers wait, its
 *     actors' mailboxes fill, datagrams queue per socket (at most opts.udp_queue, the rest
 *     dropped as by a full receive buffer), stream bytes, accepts and connect results queue.
 *     When the stall ends its due timers fire first (late: now is the resume time), then the
 *     queued I/O is delivered in arrival order, then its actors' mailboxes: the order a libuv
 *     loop uses after a blocking call. The network keeps running meanwhile (connects to the
 *     stalled host complete in its "kernel").
 *   - Latency: a distribution per direction of a host pair (mesh_simnet_link_latency), else the
 *     global one of opts: UNIFORM (min + [0, spread)), PARETO (min + spread * (U^(-1/shape) -
 *     1), a Lomax tail with median spread * (2^(1/shape) - 1); shape 1.5 by default) or
 *     LOGNORMAL (min + spread * exp(shape * Z), Z standard normal: median spread; shape 1 by
 *     default). The long tails are capped at min + cap (1 s by default). Datagrams, stream
 *     chunks, SYNs and SYN-ACKs take the latency of their direction; resets and refusals the
 *     global one. A stream chunk never overtakes the one written before it.
 *   - Duplication: a datagram is sent twice with probability duplicate (global, or per
 *     direction with mesh_simnet_link_duplicate), the copy with its own latency (and reorder)
 *     draw; each copy then meets the network on its own. Streams are never duplicated.
 *   - Reordering: beyond the spread of latencies, a datagram is delayed by an extra draw in
 *     [1, reorder_delay] ns with probability reorder, so it arrives after datagrams sent later.
 *     Streams are not reordered (TCP).
 *   - Clogging (FoundationDB's "clog"; mesh_simnet_clog): for a duration, the packets into
 *     and/or out of one host are held in the network and delivered when the clog ends, not
 *     dropped: a datagram, stream chunk or SYN that arrives while its receiver's inbound or its
 *     sender's outbound is clogged waits for the end of the clog (FoundationDB delays too), then
 *     arrives, in arrival order, at that instant; stream chunks keep their order behind it. The
 *     host's loop keeps running meanwhile (its timers fire, it sends): unlike a stall, only its
 *     links are stuck, so its probes time out while its own peers' probes of it time out too.
 *   Duplication, reordering, latency distributions and clogs draw from the same PRNG and are
 *   folded into the trace; when they are off, nothing is drawn for them (the traces of runs
 *   that do not use them are those of a simulator without them). Their per-packet cost is
 *   O(1) whatever the number of hosts: one lookup of the direction's settings when some link
 *   has an override, and one or two host lookups on arrival while a clog lasts.
 */
#ifndef MESH_SIMNET_H
#define MESH_SIMNET_H

#include <stddef.h>
#include <stdint.h>

#include "actors/io.h"

typedef struct mesh_simnet mesh_simnet_t;

/** What a cut (block or partition) does to streams; see the header comment. */
typedef enum mesh_simnet_cut {
    MESH_SIMNET_CUT_SILENT = 0, /* default: packets vanish, connects and data wait for a heal */
    MESH_SIMNET_CUT_RESET = 1,  /* streams are reset, connects refused */
} mesh_simnet_cut_t;

/** The shape of a latency distribution; see the header comment. */
typedef enum mesh_simnet_dist {
    MESH_SIMNET_UNIFORM = 0,   /* min + [0, spread) */
    MESH_SIMNET_PARETO = 1,    /* min + spread * (U^(-1/shape) - 1), capped */
    MESH_SIMNET_LOGNORMAL = 2, /* min + spread * exp(shape * Z), capped */
} mesh_simnet_dist_t;

/** One direction's latency distribution. */
typedef struct mesh_simnet_latency {
    uint64_t min_ns;         /* the floor every packet takes */
    uint64_t spread_ns;      /* UNIFORM: the width; PARETO, LOGNORMAL: the tail's scale */
    mesh_simnet_dist_t dist; /* default UNIFORM */
    double shape;            /* PARETO: alpha (0 = 1.5); LOGNORMAL: sigma (0 = 1) */
    uint64_t cap_ns;         /* PARETO, LOGNORMAL: the tail's cap above min (0 = 1 s) */
} mesh_simnet_latency_t;

/** Link behaviour; zeroed fields other than latency and loss mean defaults (features off). */
typedef struct mesh_simnet_opts {
    uint64_t latency_min_ns;         /* default 1 ms */
    uint64_t latency_jitter_ns;      /* default 1 ms: the spread of latency_dist */
    double loss;                     /* datagram loss probability, default 0 */
    mesh_simnet_cut_t cut;           /* default MESH_SIMNET_CUT_SILENT */
    uint32_t udp_queue;              /* datagrams one socket of a stalled host queues; 0 = 256 */
    mesh_simnet_dist_t latency_dist; /* the global distribution, default UNIFORM */
    double latency_shape;            /* its shape (0 = the distribution's default) */
    uint64_t latency_cap_ns;         /* its tail's cap above the minimum (0 = 1 s) */
    double duplicate;                /* datagram duplication probability, default 0 */
    double reorder;                  /* probability of an extra delay for a datagram, default 0 */
    uint64_t reorder_delay_ns;       /* the extra delay's maximum; 0 = 10 ms */
} mesh_simnet_opts_t;

/** Sets the link behaviour (applies to what is sent afterwards). 0, or -EINVAL (a probability
 *  outside [0, 1], an unknown distribution or a negative shape: nothing changed). */
int mesh_simnet_configure(mesh_simnet_t *net, const mesh_simnet_opts_t *opts);

/** Reads the link behaviour (defaults filled in). */
void mesh_simnet_options(const mesh_simnet_t *net, mesh_simnet_opts_t *out);

/** Blocks (blocked != 0) or heals traffic between the hosts of a and b, both directions
 *  (ports ignored). 0 or -ENOMEM. */
int mesh_simnet_block(mesh_simnet_t *net, const mesh_addr_t *a, const mesh_addr_t *b, int blocked);

/** Blocks or heals traffic from the host of from to the host of to only; to -> from keeps
 *  flowing. 0 or -ENOMEM. */
int mesh_simnet_block_oneway(mesh_simnet_t *net, const mesh_addr_t *from, const mesh_addr_t *to,
                             int blocked);

/** Sets the datagram loss probability from the host of from to the host of to (one direction),
 *  overriding opts.loss; a negative loss restores opts.loss. 0, -EINVAL (loss > 1) or
 *  -ENOMEM. */
int mesh_simnet_link_loss(mesh_simnet_t *net, const mesh_addr_t *from, const mesh_addr_t *to,
                          double loss);

/** Sets the datagram duplication probability from the host of from to the host of to (one
 *  direction), overriding opts.duplicate; a negative p restores opts.duplicate. 0, -EINVAL
 *  (p > 1) or -ENOMEM. */
int mesh_simnet_link_duplicate(mesh_simnet_t *net, const mesh_addr_t *from, const mesh_addr_t *to,
                               double p);

/** Sets the latency distribution from the host of from to the host of to (one direction),
 *  overriding the global one; NULL restores the global one. 0, -EINVAL (unknown distribution,
 *  negative shape) or -ENOMEM. */
int mesh_simnet_link_latency(mesh_simnet_t *net, const mesh_addr_t *from, const mesh_addr_t *to,
                             const mesh_simnet_latency_t *lat);

/** Directions of a clog (or them together). */
#define MESH_SIMNET_CLOG_IN   1 /* packets to the host */
#define MESH_SIMNET_CLOG_OUT  2 /* packets from the host */
#define MESH_SIMNET_CLOG_BOTH 3

/** Clogs the links of a host for duration_ns from now in the directions dirs (extends a running
 *  clog; see the header comment): packets wait in the network until the clog ends. Hosts that
 *  are down, stalls and cuts are independent of it; mesh_simnet_heal does not end it. 0 or
 *  -EINVAL (ip does not parse, dirs empty). */
int mesh_simnet_clog(mesh_simnet_t *net, const char *ip, uint64_t duration_ns, int dirs);

/** Puts the n hosts named by ips (IPv4 text) into group; traffic between hosts of different
 *  groups is cut. Every host starts in group 0. 0 or -EINVAL (an ip does not parse; the hosts
 *  before it were moved). */
int mesh_simnet_partition(mesh_simnet_t *net, const char *const *ips, size_t n, int group);

/** Heals every cut: blocks (both kinds) are lifted and every host goes back to group 0. Loss
 *  overrides, hosts that are down and stalls are left as they are. */
void mesh_simnet_heal(mesh_simnet_t *net);

/** Takes a host down (down != 0: its process was killed; see the header comment) or lets it
 *  be used again (a restarted process binds anew). 0 or -EINVAL. */
int mesh_simnet_host_down(mesh_simnet_t *net, const char *ip, int down);

/** Stalls the event loop of a host for duration_ns from now (extends a running stall; see the
 *  header comment). Call from scenario code (mesh_sim_call_at) or from one of the host's own
 *  callbacks. 0, -EINVAL or -ENOMEM. */
int mesh_simnet_stall(mesh_simnet_t *net, const char *ip, uint64_t duration_ns);

/** Counters. Each dropped datagram or cut stream chunk is counted once, under its reason. */
typedef struct mesh_simnet_stats {
    uint64_t sent;        /* datagrams sent and stream chunks written */
    uint64_t delivered;   /* datagrams and stream chunks handed to a socket */
    uint64_t lost;        /* datagrams lost to the loss probability (global or per link) */
    uint64_t blocked;     /* datagrams, chunks and SYNs cut by a pair or one-way block */
    uint64_t partitioned; /* datagrams, chunks and SYNs cut between groups */
    uint64_t host_down;   /* datagrams to or from a host that is down; connects refused by one */
    uint64_t overflow;    /* datagrams dropped by a stalled host's full socket queue */
    uint64_t unreachable; /* datagrams to an address where no socket is bound */
    uint64_t deferred;    /* I/O events held back by a stall (delivered after it) */
    uint64_t held;        /* stream chunks held back by a silent cut (retransmitted) */
    uint64_t resets;      /* stream ends reset or timed out */
    uint64_t duplicated;  /* datagrams sent twice (the copy also counts in delivered) */
    uint64_t reordered;   /* datagrams (copies included) given an extra delay */
    uint64_t clogged;     /* datagrams, stream chunks and SYNs held by a clog (once each) */
    uint64_t probes;      /* hash slots examined by lookups: a structural cost measure */
    uint64_t trace;       /* FNV-1a over every network decision (time, kind, ends, verdict) */
} mesh_simnet_stats_t;

/** Reads the counters. */
void mesh_simnet_stats(const mesh_simnet_t *net, mesh_simnet_stats_t *out);

/** The io seam of one simulated host (IPv4 text, e.g. "10.0.0.1"): its clock is the virtual
 *  clock, its sockets bind on that host, its connects come from that host. Created on first
 *  use (O(1)), freed with the simulator. NULL if ip does not parse. */
mesh_io_t *mesh_simnet_host(mesh_simnet_t *net, const char *ip);

/** The default host's io ("127.0.0.1"): what mesh_io() returns to simulated actors that are
 *  bound to no host. */
mesh_io_t *mesh_simnet_io(mesh_simnet_t *net);

#endif
