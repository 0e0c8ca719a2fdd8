/*
 * The error-bounded quantiser of the sparse codec (docs/SPARSE.md section 4).
 *
 * A bound E on |log2(out + 1) - log2(in + 1)| is carried by the integer
 * multiplier M = 2^E * 2^32 (rounded down, u64, 2^32 <= M <= 2^40), and
 * everything else follows from M with integer arithmetic only, so that the
 * encoder and any decoder build the same levels on every platform:
 *
 *   the ADC values 1..65535 are cut greedily from the bottom into bins; a
 *   bin starting at lo has the level (its reconstruction)
 *       r  = min(floor((lo + 1) * M / 2^32) - 1, 65535)
 *   and ends at
 *       hi = min(floor((r + 1) * M / 2^32) - 1, 65535);
 *   the next bin starts at hi + 1.
 *
 * Every a in [lo, r] has (r + 1) <= (lo + 1) M / 2^32 <= (a + 1) 2^E, and
 * every a in [r, hi] has (a + 1) <= (r + 1) M / 2^32 <= (r + 1) 2^E: the
 * bound holds for every value, the integer rounding included, because the
 * levels are integers chosen with the rounding in view rather than points
 * in log space rounded afterwards. Greedy is also the fewest bins any
 * quantiser with this bound can have. M = 2^32 (E = 0) makes every value
 * its own level: lossless. 0 stays 0 (it is not a level: the occupancy
 * says where the hits are).
 */
#ifndef BCAE_SPARSE_LEVELS_H
#define BCAE_SPARSE_LEVELS_H

#include <stdint.h>

#define SPARSE_M_ONE (UINT64_C(1) << 32)
#define SPARSE_M_MAX (UINT64_C(1) << 40) /* E <= 8 */
#define SPARSE_MAX_LEVELS 65535
/* log2(x) in units of 1/1024 for x in 1..65536 is below 17 * 1024. */
#define SPARSE_LOG_MAX (17 * 1024)

typedef struct sparse_levels {
    uint64_t mult;      /* M */
    uint32_t count;     /* L: levels are numbered 1..L */
    uint32_t sat;       /* the level of 1023, the 10-bit ADC's saturation */
    uint32_t floor;     /* the level of 64, the zero-suppression threshold */
    /* level q -> its ADC value; [0] = 0 */
    uint16_t value[SPARSE_MAX_LEVELS + 1];
    /* level q -> lg(value + 1) (sparse_log); [0] = 0 */
    uint16_t logv[SPARSE_MAX_LEVELS + 1];
    /* level q -> lg(max(value - ped, 0) + 2), the log of the value above the
     * pedestal (>= 1024, so 0 can mean "no hit"); [0] = 0 */
    uint32_t ped;
    uint16_t log[SPARSE_MAX_LEVELS + 1];
    /* ADC a -> its level; [0] = 0 */
    uint16_t level_of[65536];
    /* t in 0..SPARSE_LOG_MAX -> the highest level q >= 1 with log[q] <= t
     * (1 if none): a prediction in log units (above the pedestal) back to a
     * level. */
    uint16_t level_at_log[SPARSE_LOG_MAX + 1];
} sparse_levels;

/* lg(x) = floor-ish 1024 * log2(x) for x in 1..65536, in integer arithmetic:
 * e = floor(log2 x), m = the top 11 bits of x (x << (10 - e) or x >> (e - 10)),
 * lg = 1024 e + logt[m - 1024]. */
uint32_t sparse_log(uint32_t x);

/* M for a bound E (0 <= E <= 8, finite): 2^32 for E = 0, else
 * floor(2^E * 2^32) - 1, one below the rounded value so that libm's exp2
 * rounding can never make M / 2^32 exceed 2^E. */
uint64_t sparse_mult_of(double max_error);
/* The bound a multiplier guarantees: log2(M / 2^32). */
double sparse_error_of(uint64_t mult);

/* Builds the levels of M (SPARSE_M_ONE <= M <= SPARSE_M_MAX): value,
 * level_of, logv, count, sat, floor. log and level_at_log need a pedestal:
 * sparse_levels_set_pedestal. */
void sparse_levels_build(sparse_levels *lv, uint64_t mult);
/* The value model's log domain for pedestal ped (0..65535): log and
 * level_at_log. */
void sparse_levels_set_pedestal(sparse_levels *lv, uint32_t ped);

#endif
