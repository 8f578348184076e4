/*
 * actors/simnet.h: the simulated network behind the simulator's I/O seam.
 *
 * Hosts are IPv4 addresses; each has its own io seam (mesh_simnet_host) so many simulated
 * nodes share one process: a scenario hands each node's actors the io of its host. Each datagram or
 * stream chunk takes latency_min + a PRNG draw in [0, latency_jitter) of virtual time; datagrams
 * are lost with probability loss (so they may also arrive reordered); streams keep their order. A
 * partition is a set of blocked host pairs: datagrams between them are dropped, stream data between
 * them resets the connection, connects are refused.
 */
#ifndef MESH_SIMNET_H
#define MESH_SIMNET_H

#include <stdint.h>

#include "actors/io.h"

typedef struct mesh_simnet mesh_simnet_t;

/** Link behaviour. */
typedef struct mesh_simnet_opts {
    uint64_t latency_min_ns;    /* default 1 ms */
    uint64_t latency_jitter_ns; /* default 1 ms */
    double loss;                /* datagram loss probability, default 0 */
} mesh_simnet_opts_t;

/** Sets the link behaviour (applies to what is sent afterwards). */
void mesh_simnet_configure(mesh_simnet_t *net, const mesh_simnet_opts_t *opts);

/** Blocks (blocked != 0) or heals traffic between the hosts of a and b (ports ignored). */
int mesh_simnet_block(mesh_simnet_t *net, const mesh_addr_t *a, const mesh_addr_t *b, int blocked);

/** Heals every partition. */
void mesh_simnet_heal(mesh_simnet_t *net);

/** Counters. */
typedef struct mesh_simnet_stats {
    uint64_t sent, delivered, lost, blocked;
} mesh_simnet_stats_t;

/** Reads the counters. */
void mesh_simnet_stats(const mesh_simnet_t *net, mesh_simnet_stats_t *out);

/** The io seam of one simulated host (IPv4 text, e.g. "10.0.0.1"): its clock is the virtual
 *  clock, its sockets bind on that host, its connects come from that host. Created on first
 *  use, freed with the simulator. NULL if ip does not parse. */
mesh_io_t *mesh_simnet_host(mesh_simnet_t *net, const char *ip);

/** The default host's io ("127.0.0.1"): what mesh_io() returns to simulated actors. */
mesh_io_t *mesh_simnet_io(mesh_simnet_t *net);

#endif
