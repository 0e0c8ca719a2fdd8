#include "sparse/levels.h"

#include <math.h>

#include "bcae.h"
#include "sparse/tables.h"

uint32_t sparse_log(uint32_t x)
{
    uint32_t e = 31 - (uint32_t)__builtin_clz(x);
    uint32_t m = e <= 10 ? x << (10 - e) : x >> (e - 10);
    return 1024 * e + sparse_logt[m - 1024];
}

uint64_t sparse_mult_of(double max_error)
{
    if (!(max_error > 0)) return SPARSE_M_ONE;
    if (max_error >= 8) return SPARSE_M_MAX - 1;
    double m = floor(exp2(max_error) * 4294967296.0) - 1;
    uint64_t r = (uint64_t)m;
    return r < SPARSE_M_ONE ? SPARSE_M_ONE : r;
}

double sparse_error_of(uint64_t mult)
{
    return log2((double)mult / 4294967296.0);
}

void sparse_levels_build(sparse_levels *lv, uint64_t mult)
{
    lv->mult = mult;
    lv->value[0] = 0;
    lv->logv[0] = 0;
    lv->level_of[0] = 0;
    uint32_t q = 0, lo = 1;
    while (lo <= 65535) {
        uint64_t r = (((uint64_t)lo + 1) * mult >> 32) - 1;
        if (r > 65535) r = 65535;
        uint64_t hi = ((r + 1) * mult >> 32) - 1;
        if (hi > 65535) hi = 65535;
        q++;
        lv->value[q] = (uint16_t)r;
        lv->logv[q] = (uint16_t)sparse_log((uint32_t)r + 1);
        for (uint32_t a = lo; a <= hi; a++) lv->level_of[a] = (uint16_t)q;
        lo = (uint32_t)hi + 1;
    }
    lv->count = q;
    lv->sat = lv->level_of[BCAE_ADC_MAX];
    lv->floor = lv->level_of[BCAE_ZERO_SUPPRESSION];
    lv->ped = UINT32_MAX; /* no pedestal set yet */
}

void sparse_levels_set_pedestal(sparse_levels *lv, uint32_t ped)
{
    lv->ped = ped;
    lv->log[0] = 0;
    for (uint32_t q = 1; q <= lv->count; q++) {
        uint32_t v = lv->value[q];
        lv->log[q] = (uint16_t)sparse_log((v > ped ? v - ped : 0) + 2);
    }
    /* level_at_log: walk t upwards, advancing q while the next level's log
     * is still <= t. */
    uint32_t k = 1;
    for (uint32_t t = 0; t <= SPARSE_LOG_MAX; t++) {
        while (k < lv->count && lv->log[k + 1] <= t) k++;
        lv->level_at_log[t] = (uint16_t)k;
    }
}
