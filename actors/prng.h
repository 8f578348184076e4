/*
 * actors/prng.h: xoshiro256** seeded through splitmix64.
 *
 * Small, fast and well known; the simulator's only source of randomness so a seed reproduces
 * a run bit for bit.
 */
#ifndef MESH_PRNG_H
#define MESH_PRNG_H

#include <stdint.h>

/** The generator state. */
typedef struct mesh_prng {
    uint64_t s[4];
} mesh_prng_t;

/** One xoshiro256** step on a state s (never all zero): the next 64 bits. Inline, for callers
 *  that keep their own state (policy/trace.c's per-thread one) and draw several words with it
 *  loaded once. */
static inline uint64_t mesh_xoshiro_step(uint64_t s[4])
{
    uint64_t r = ((s[1] * 5) << 7 | (s[1] * 5) >> 57) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = s[3] << 45 | s[3] >> 19;
    return r;
}

/** One splitmix64 step (also a good 64-bit mixer). */
uint64_t mesh_splitmix64(uint64_t *x);
/** Seeds the generator (any seed, including 0). */
void mesh_prng_seed(mesh_prng_t *p, uint64_t seed);
/** The next 64 random bits. */
uint64_t mesh_prng_next(mesh_prng_t *p);
/** A uniform number in [0, n) (n > 0). */
uint64_t mesh_prng_below(mesh_prng_t *p, uint64_t n);
/** A uniform double in [0, 1). */
double mesh_prng_double(mesh_prng_t *p);

#endif
