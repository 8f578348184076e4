/*
 * actors/sim.h: the simulated executor.
 *
 * Runs the same actors as the real executor on the calling thread under a virtual clock.
 * Each step the seeded PRNG picks one of the ready events (an actor with a non-empty mailbox,
 * or the timer queue when a timer is due); when nothing is ready the clock jumps to the next
 * deadline. Every delivery and firing is folded into an FNV-1a trace hash over
 * (time, from, to, type): the same seed gives the same hash, another seed explores another
 * interleaving. Messages from one sender to one receiver keep their order.
 *
 * Hosts: an actor spawned with mesh_sim_spawn_on is bound to a simulated host (its children
 * too); mesh_io() gives it that host's io, and a stall of the host (mesh_simnet_stall) holds
 * it: no message is delivered to it and none of its timers fires until the stall ends, then
 * its late timers fire first (now = the resume time), then the host's queued I/O, then its
 * mailbox. Faults of the network itself (loss, one-way blocks, partitions, hosts down) are
 * described in simnet.h.
 */
#ifndef MESH_SIM_H
#define MESH_SIM_H

#include <stdint.h>

#include "actors/exec.h"

typedef struct mesh_simnet mesh_simnet_t;

/** Creates a simulated executor seeded with seed; free with mesh_exec_free (which runs the
 *  on_stop of the actors still running, newest first). The virtual
 *  clock starts at 1 s. */
mesh_exec_t *mesh_sim_new(uint64_t seed);

/** Creates a simulator of nlps logical processes (1..256; actors/sim_lp.c): simulated hosts are
 *  spread over them (mesh_sim_host_lp), each runs its hosts' actors and I/O with its own clock,
 *  timer heap, ready set, PRNG and trace chain, in windows as long as the network's least latency
 *  (1 ms), on mesh_sim_set_threads threads. The trace hash depends on the seed and nlps, never
 *  on the number of threads. Calls scheduled with mesh_sim_call_at from outside any process
 *  (scenario code, checkers) run alone at window boundaries (the serial queue); from within
 *  one, on that process. */
mesh_exec_t *mesh_sim_new_lp(uint64_t seed, int nlps);

/** Runs the windows of a mesh_sim_new_lp simulator on threads threads (1: the calling thread
 *  alone; the default). 0 or -MESH_EINVAL (not an LP simulator, threads outside 1..256). */
int mesh_sim_set_threads(mesh_exec_t *sim, int threads);

/** The number of logical processes (1 for mesh_sim_new). */
int mesh_sim_lp_count(const mesh_exec_t *sim);

/** The logical process running the caller (0..count-1), or -1 outside any (the serial queue,
 *  code between runs, a mesh_sim_new simulator): state the processes write during a window
 *  can be kept per process and merged in process order, whatever the threads. */
int mesh_sim_lp_current(const mesh_exec_t *sim);

/** Moves a simulated host (an io of mesh_simnet_host) to logical process lp, before any actor
 *  runs on it or any packet travels to it (hosts join the processes round robin as they are
 *  created, the default host 127.0.0.1 process 0). 0 or -MESH_EINVAL. */
int mesh_sim_host_lp(mesh_exec_t *sim, mesh_io_t *host, int lp);

/** Schedules fn(arg) at at_ns on the serial queue (alone, at a window boundary): for state
 *  that several hosts share, such as a simulated etcd. From within a process at_ns must not be
 *  sooner than the lookahead (the process aborts with a message otherwise). */
int mesh_sim_call_at_serial(mesh_exec_t *sim, uint64_t at_ns, void (*fn)(void *arg), void *arg);

/** Schedules fn(arg) at at_ns on the process of host (same rule). */
int mesh_sim_call_at_host(mesh_exec_t *sim, mesh_io_t *host, uint64_t at_ns, void (*fn)(void *arg),
                          void *arg);

/** Folds v into the trace hash: the calling process's chain, or the serial one. */
void mesh_sim_fold(mesh_exec_t *sim, uint64_t v);

/** Calls drop(arg) for every scheduled call of fn not yet run (teardown of what they own). */
void mesh_sim_drop_calls(mesh_exec_t *sim, void (*fn)(void *arg), void (*drop)(void *arg));

/** Runs until no event is left or the virtual clock would pass until_ns; returns the number
 *  of steps taken. The clock ends at until_ns if events remain beyond it. */
uint64_t mesh_sim_run_until(mesh_exec_t *sim, uint64_t until_ns);

/** Runs until nothing is ready and no timer is pending, or max_steps were taken. */
uint64_t mesh_sim_run(mesh_exec_t *sim, uint64_t max_steps);

/** The current virtual time in ns. */
uint64_t mesh_sim_now(const mesh_exec_t *sim);

/** The trace hash so far (FNV-1a over every delivery and firing). */
uint64_t mesh_sim_trace_hash(const mesh_exec_t *sim);

/** Number of deliveries and firings so far. */
uint64_t mesh_sim_steps(const mesh_exec_t *sim);

/** The simulator's PRNG (for scenario code that must stay reproducible). */
uint64_t mesh_sim_random(mesh_exec_t *sim);

/** The simulated network behind mesh_io() of every simulated actor. */
mesh_simnet_t *mesh_sim_net(mesh_exec_t *sim);

/** Schedules fn(arg) at virtual time at_ns (scenario scripting: partitions, crashes). */
int mesh_sim_call_at(mesh_exec_t *sim, uint64_t at_ns, void (*fn)(void *arg), void *arg);

/** Spawns a root actor bound to a simulated host (host = mesh_simnet_host(...)): it and the
 *  actors it spawns get host from mesh_io() and stall with it. 0 or a negative MESH_E*. */
int mesh_sim_spawn_on(mesh_exec_t *sim, mesh_io_t *host, const mesh_actor_ops_t *ops, void *arg,
                      const mesh_spawn_opts_t *opts, mesh_actor_id_t *id_out);

/** Crashes a running actor now, as if its message handler had failed (its supervisor sees
 *  MESH_STOP_FAILED and restarts it): the fault "a component crashed" of the simulations.
 *  Call from a mesh_sim_call_at callback. 0, -MESH_ENOENT or -MESH_ESTATE. */
int mesh_sim_crash(mesh_exec_t *sim, mesh_actor_id_t id);

/** Optional per-event observer (tests record the delivery order). */
typedef void (*mesh_sim_trace_cb)(uint64_t now, mesh_actor_id_t from, mesh_actor_id_t to,
                                  uint32_t type, void *arg);
/** Sets the observer (NULL to clear). */
void mesh_sim_set_trace(mesh_exec_t *sim, mesh_sim_trace_cb cb, void *arg);

#endif
