/*
 * simulations/sim_sweep.c: the many-seeds mode of the scenarios and the main() shape they share
 * (see sim_sweep.h).
 */
#include "simulations/sim_sweep.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int sim_seeds_arg(sim_seeds_t *s, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    const char *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    if (!v)
        return 0;
    if (!strcmp(a, "--seed")) {
        s->seed = strtoull(v, NULL, 0);
        s->single = 1;
    } else if (!strcmp(a, "--seeds")) {
        s->count = strtoull(v, NULL, 0);
    } else if (!strcmp(a, "--first-seed")) {
        s->first = strtoull(v, NULL, 0);
    } else {
        return 0;
    }
    (*i)++;
    return 1;
}

int sim_seeds_valid(const sim_seeds_t *s)
{
    return s->single || s->count;
}

int sim_run_main(const sim_seeds_t *s, const sim_main_cfg_t *cfg, void *ud)
{
    if (s->single) {
        sim_outcome_t o = {0};
        cfg->run(ud, s->seed, 1, &o);
        printf("seed %llu: hash %016llx ", (unsigned long long)s->seed, (unsigned long long)o.hash);
        cfg->print_seed(ud);
        printf(": %s\n", o.failures ? "FAIL" : "ok");
        if (o.failures) {
            printf("  %d violation(s), first: %s\n", o.failures, o.why);
            cfg->replay(ud, s->seed);
        }
        return o.failures ? 1 : 0;
    }
    sim_sweep_result_t sr = sim_sweep(s->first, s->count, cfg->run, cfg->replay, ud);
    printf("%llu seeds from %llu, ", (unsigned long long)s->count, (unsigned long long)s->first);
    cfg->print_size(ud);
    printf(": %llu failed; ", (unsigned long long)sr.failed);
    cfg->print_totals(ud);
    printf("; determinism %s (%u seeds replayed); %.1f s\n", sr.nondeterministic ? "FAILED" : "ok",
           sr.replayed, sr.secs);
    return sr.failed || sr.nondeterministic ? 1 : 0;
}
