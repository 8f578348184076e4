/*
 * actors/prng.c: xoshiro256** (Blackman and Vigna) seeded through splitmix64.
 */
#include "actors/prng.h"

uint64_t mesh_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void mesh_prng_seed(mesh_prng_t *p, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        p->s[i] = mesh_splitmix64(&x);
}

uint64_t mesh_prng_next(mesh_prng_t *p)
{
    return mesh_xoshiro_step(p->s);
}

uint64_t mesh_prng_below(mesh_prng_t *p, uint64_t n)
{
    /* Rejection sampling keeps the draw uniform. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t r;
    do {
        r = mesh_prng_next(p);
    } while (r >= limit);
    return r % n;
}

double mesh_prng_double(mesh_prng_t *p)
{
    return (double)(mesh_prng_next(p) >> 11) * 0x1.0p-53;
}
