/*
 * Counter-based random numbers. Every stream is derived from a seed and a
 * tuple of integers (event, track, voxel...) rather than from a shared
 * generator, so results do not depend on the order in which threads run.
 */
#ifndef BCAE_CORE_RNG_H
#define BCAE_CORE_RNG_H

#include <math.h>
#include <stdint.h>

/* SplitMix64 finaliser: a bijective 64-bit mixer. */
static inline uint64_t bcae_mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Hash of a seed and up to three stream coordinates. */
static inline uint64_t bcae_hash3(uint64_t seed, uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t h = bcae_mix64(seed);
    h = bcae_mix64(h ^ a);
    h = bcae_mix64(h ^ (b + 0x632be59bd9b4e019ULL));
    h = bcae_mix64(h ^ (c + 0x85157af5ULL));
    return h;
}

/* xoshiro256** generator, seeded from a hash. */
typedef struct bcae_rng {
    uint64_t s[4];
} bcae_rng;

static inline void bcae_rng_seed(bcae_rng *r, uint64_t key)
{
    for (int i = 0; i < 4; i++) {
        key = bcae_mix64(key + (uint64_t)i);
        r->s[i] = key;
    }
    if ((r->s[0] | r->s[1] | r->s[2] | r->s[3]) == 0) r->s[0] = 1;
}

static inline uint64_t bcae_rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t bcae_rng_u64(bcae_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = bcae_rotl64(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = bcae_rotl64(s[3], 45);
    return result;
}

/* Uniform in [0, 1) with 53 random bits. */
static inline double bcae_u64_to_unit(uint64_t x) { return (double)(x >> 11) * 0x1.0p-53; }

static inline double bcae_rng_uniform(bcae_rng *r) { return bcae_u64_to_unit(bcae_rng_u64(r)); }

/* Uniform in (0, 1]: safe under log(). */
static inline double bcae_rng_uniform_pos(bcae_rng *r) { return 1.0 - bcae_rng_uniform(r); }

/* Standard normal by Box-Muller (one value per call; simplicity over speed). */
static inline double bcae_rng_normal(bcae_rng *r)
{
    double u1 = bcae_rng_uniform_pos(r), u2 = bcae_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static inline double bcae_rng_exponential(bcae_rng *r, double mean)
{
    return -mean * log(bcae_rng_uniform_pos(r));
}

/* Poisson by inversion for small means, normal approximation above 50. */
static inline int bcae_rng_poisson(bcae_rng *r, double mean)
{
    if (mean <= 0) return 0;
    if (mean > 50) {
        double v = mean + sqrt(mean) * bcae_rng_normal(r) + 0.5;
        return v < 0 ? 0 : (int)v;
    }
    double l = exp(-mean), p = 1.0;
    int k = 0;
    do {
        k++;
        p *= bcae_rng_uniform(r);
    } while (p > l);
    return k - 1;
}

#endif
