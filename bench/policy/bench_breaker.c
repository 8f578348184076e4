/*
 * bench/policy/bench_breaker.c: what one call costs in the shared circuit breaker
 * (policy/breaker.h): allow() + done() per call, from 1, 2 and 4 threads on one breaker, with
 * the sidecar's default configuration (consecutive failures, ratio window, concurrency cap
 * 1000) and all calls succeeding (the closed-state fast path), then with 1 call in 100
 * failing. Prints the CPU time per call (each thread's CPU time, CLOCK_THREAD_CPUTIME_ID,
 * summed over the threads and divided by all calls: robust on a shared machine) and the wall
 * time per call per thread. Not a test: numbers depend on the machine; docs/sidecar.md
 * records them.
 *
 *   bench_breaker [calls-per-thread]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "policy/breaker.h"

typedef struct {
    pol_breaker_t *b;
    long calls;
    int fail_every;
    uint64_t cpu_ns; /* this thread's CPU time */
} arg_t;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *run(void *p)
{
    arg_t *a = p;
    uint64_t c0 = cpu_ns();
    for (long i = 0; i < a->calls; i++) {
        pol_breaker_permit_t permit;
        uint64_t t = now_ns();
        if (pol_breaker_allow(a->b, t, &permit) != POL_BREAKER_ALLOWED)
            continue;
        int fail = a->fail_every && i % a->fail_every == 0;
        pol_breaker_done(a->b, &permit, fail ? POL_BREAKER_FAILURE : POL_BREAKER_SUCCESS, t);
    }
    a->cpu_ns = cpu_ns() - c0;
    return NULL;
}

static void measure(int threads, long calls, int fail_every, double *cpu, double *wall)
{
    pol_breaker_config_t c;
    pol_breaker_config_default(&c);
    c.max_concurrent = 1000;
    c.half_open_probes = 3;
    pol_breaker_t b;
    if (pol_breaker_init(&b, "bench", &c, NULL, NULL) != 0)
        abort();
    pthread_t th[8];
    arg_t a[8];
    uint64_t t0 = now_ns();
    for (int i = 0; i < threads; i++) {
        a[i] = (arg_t){&b, calls, fail_every, 0};
        pthread_create(&th[i], NULL, run, &a[i]);
    }
    uint64_t sum = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        sum += a[i].cpu_ns;
    }
    uint64_t t1 = now_ns();
    if (pol_breaker_state(&b) != POL_BREAKER_CLOSED)
        fprintf(stderr, "bench_breaker: the breaker opened during the run\n");
    pol_breaker_destroy(&b);
    *cpu = (double)sum / (double)(calls * threads);
    *wall = (double)(t1 - t0) / (double)calls;
}

int main(int argc, char **argv)
{
    long calls = argc > 1 ? atol(argv[1]) : 2000000;
    printf("calls per thread: %ld\n", calls);
    for (int fe = 0; fe <= 100; fe += 100) {
        for (int t = 1; t <= 4; t *= 2) {
            double cpu, wall;
            measure(t, calls, fe, &cpu, &wall);
            printf("%-13s %d thread%s: %6.1f ns CPU per call, %6.1f ns wall per call per thread\n",
                   fe ? "1% failures," : "all succeed,", t, t == 1 ? " " : "s", cpu, wall);
        }
    }
    return 0;
}
