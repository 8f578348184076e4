/*
 * simulations/sim_sweep.h: what every scenario's many-seeds mode shares: run the seeds, print
 * each failing one with the command that replays it, then check determinism (the first seeds
 * run again give the same trace hashes; two different seeds differ), the seed options and
 * the main() shape every scenario shares (one seed or a sweep, and the result lines), and the
 * trace hash and log sink every scenario's world uses.
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

/** The seed options every scenario takes: --seed N (one run, replaying a failure), or
 *  --seeds COUNT [--first-seed S] (a sweep). */
typedef struct sim_seeds {
    uint64_t seed;  /* --seed; 1 unless given */
    uint64_t count; /* --seeds; 0 unless given */
    uint64_t first; /* --first-seed; 1 unless given */
    int single;     /* --seed was given */
} sim_seeds_t;

#define SIM_SEEDS_INIT                                                                             \
    {                                                                                              \
        .seed = 1, .first = 1                                                                      \
    }

/** If argv[*i] is a seed option with its value, stores it in s, steps *i onto the value and
 *  returns 1; else returns 0 (the caller parses its own options). */
int sim_seeds_arg(sim_seeds_t *s, int argc, char **argv, int *i);

/** 1 when the options ask for a run: --seed, or --seeds with a count above zero. */
int sim_seeds_valid(const sim_seeds_t *s);

/** What a scenario's main() hands sim_run_main: its run and replay (as for sim_sweep) and the
 *  parts of the result lines that are its own. Each print callback gets the same ud. */
typedef struct sim_main_cfg {
    sim_seed_fn run;
    sim_replay_fn replay;
    /* One seed: prints that run's figures, between "seed N: hash H " and ": ok|FAIL". */
    void (*print_seed)(void *ud);
    /* A sweep: prints the scenario's size, between "COUNT seeds from FIRST, " and ": F failed; ".
     */
    void (*print_size)(void *ud);
    /* A sweep: prints the totals, between "F failed; " and "; determinism ...". */
    void (*print_totals)(void *ud);
} sim_main_cfg_t;

/** Runs what s asks for and prints the result: with --seed, the line "seed N: hash H <figures>:
 *  ok|FAIL" and for a failure the violation count, the first violation and the replay command;
 *  else a sweep (sim_sweep) and its summary line. Returns the exit status: 0 when every run
 *  passed (and the sweep was deterministic), else 1. */
int sim_run_main(const sim_seeds_t *s, const sim_main_cfg_t *cfg, void *ud);

#endif
