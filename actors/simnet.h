/*
 * actors/simnet.h: the simulated network behind the simulator's I/O seam.
 *
 * Hosts are IPv4 addresses; each has its own io seam (mesh_simnet_host) so many simulated
 * nodes share one process: a scenario hands each node's actors the io of its host (or spawns
 * them on it with mesh_sim_spawn_on, so that mesh_io() returns it). Each datagram or stream
 * chunk takes latency_min + a PRNG draw in [0, latency_jitter) of virtual time; datagrams are
 * lost with probability loss (so they may also arrive reordered); streams keep their order.
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

/** Link behaviour; zeroed fields other than latency and loss mean defaults. */
typedef struct mesh_simnet_opts {
    uint64_t latency_min_ns;    /* default 1 ms */
    uint64_t latency_jitter_ns; /* default 1 ms */
    double loss;                /* datagram loss probability, default 0 */
    mesh_simnet_cut_t cut;      /* default MESH_SIMNET_CUT_SILENT */
    uint32_t udp_queue;         /* datagrams one socket of a stalled host queues; 0 = 256 */
} mesh_simnet_opts_t;

/** Sets the link behaviour (applies to what is sent afterwards). */
void mesh_simnet_configure(mesh_simnet_t *net, const mesh_simnet_opts_t *opts);

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
