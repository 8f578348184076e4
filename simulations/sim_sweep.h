/*
 * simulations/sim_sweep.h: what every scenario's many-seeds mode shares: run the seeds, print
 * each failing one with the command that replays it, then check determinism (the first seeds
 * run again give the same trace hashes; two different seeds differ), and the trace hash and
 * log sink every scenario's world uses.
 */
#ifndef SIM_SWEEP_H
#define SIM_SWEEP_H

#include <stdint.h>

/** What one seed's run found. */
typedef struct sim_outcome {
    uint64_t hash;
    int failures;
    char why[768];
} sim_outcome_t;

/** Runs one seed into out; tally is set on the first pass (add the seed's stats then, not on
 *  the determinism replays). */
typedef void (*sim_seed_fn)(void *ud, uint64_t seed, int tally, sim_outcome_t *out);

/** Prints the command that replays seed. */
typedef void (*sim_replay_fn)(void *ud, uint64_t seed);

/** The sweep's result. */
typedef struct sim_sweep_result {
    uint64_t failed; /* seeds with a violation */
    int nondeterministic;
    unsigned replayed; /* seeds run twice */
    double secs;       /* wall time */
} sim_sweep_result_t;

/** Folds v into a run's trace hash (FNV-1a over v's eight bytes): what the determinism check
 *  compares. */
void sim_trace_fold(uint64_t *trace, uint64_t v);

/** A log sink for the simulated components (sim_link_hooks_t.log, sim_app_cfg_t.log): prints
 *  the line to stdout; ud unused. */
void sim_print_line(void *ud, const char *line);

/** Runs seeds first .. first+count-1 (see above). */
sim_sweep_result_t sim_sweep(uint64_t first, uint64_t count, sim_seed_fn run, sim_replay_fn replay,
                             void *ud);

#endif
