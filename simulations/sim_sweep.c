/*
 * simulations/sim_sweep.c: the many-seeds mode of the scenarios (see sim_sweep.h).
 */
#include "simulations/sim_sweep.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

sim_sweep_result_t sim_sweep(uint64_t first, uint64_t count, sim_seed_fn run, sim_replay_fn replay,
                             void *ud)
{
    sim_sweep_result_t res = {0};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t *hashes = calloc(count ? count : 1, sizeof(*hashes));
    if (!hashes)
        abort();
    for (uint64_t s = 0; s < count; s++) {
        sim_outcome_t o = {0};
        run(ud, first + s, 1, &o);
        hashes[s] = o.hash;
        if (o.failures) {
            res.failed++;
            printf("FAIL seed %llu (hash %016llx): %s\n", (unsigned long long)(first + s),
                   (unsigned long long)o.hash, o.why);
            replay(ud, first + s);
        }
    }
    /* Determinism: the same seed again gives the same trace; different seeds differ. */
    res.replayed = count < 3 ? (unsigned)count : 3;
    for (unsigned s = 0; s < res.replayed; s++) {
        sim_outcome_t o = {0};
        run(ud, first + s, 0, &o);
        if (o.hash != hashes[s]) {
            res.nondeterministic = 1;
            printf("NONDETERMINISTIC seed %llu: hash %016llx then %016llx\n",
                   (unsigned long long)(first + s), (unsigned long long)hashes[s],
                   (unsigned long long)o.hash);
        }
    }
    if (count > 1 && hashes[0] == hashes[1]) {
        res.nondeterministic = 1;
        printf("seeds %llu and %llu gave the same trace hash\n", (unsigned long long)first,
               (unsigned long long)first + 1);
    }
    free(hashes);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    res.secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    return res;
}

void sim_trace_fold(uint64_t *trace, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        *trace ^= (v >> (8 * i)) & 0xFFu;
        *trace *= 0x100000001b3ull;
    }
}

void sim_print_line(void *ud, const char *line)
{
    (void)ud;
    printf("%s\n", line);
}
