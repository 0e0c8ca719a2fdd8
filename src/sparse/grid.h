/*
 * The working grids of the sparse codec: the wedge transposed to the scan
 * order (layer, azimuth, z), z fastest, with zero borders, so that every
 * context can read its causal neighbours without a bounds test.
 *
 * Scan order: layer by layer, pad by pad, along z. A pulse is a run along z,
 * and when a voxel is coded the whole previous pad (a - 1) and the whole
 * previous layer (l - 1) are known, both sides of z included.
 *
 * Borders: 2 layers and 2 pads before, 1 pad after, 2 z bins before and 5
 * after (the row is 256 long): reads reach l - 2, a - 2, a + 1, z - 2 and
 * z + 3. Borders are zero (empty) and never written.
 */
#ifndef BCAE_SPARSE_GRID_H
#define BCAE_SPARSE_GRID_H

#include <stddef.h>
#include <stdint.h>

#include "bcae.h"
#include "sparse/levels.h"
#include "sparse/rc.h"

#define SG_NL BCAE_WEDGE_LAYERS
#define SG_NA BCAE_WEDGE_AZIMUTH
#define SG_NZ BCAE_WEDGE_Z
#define SG_PZ 256                /* z stride */
#define SG_PA (SG_NA + 3)        /* pads a row of pads holds */
#define SG_LSTRIDE ((size_t)SG_PA * SG_PZ)
#define SG_CELLS ((size_t)(SG_NL + 2) * SG_LSTRIDE)
/* Pulses are separated by at least one empty bin. */
#define SG_MAX_PULSES ((size_t)SG_NL * SG_NA * ((SG_NZ + 1) / 2))

static inline size_t sg_index(int l, int a, int z)
{
    return (size_t)(l + 2) * SG_LSTRIDE + (size_t)(a + 2) * SG_PZ + (size_t)(z + 2);
}

/* Bit models: the occupancy's, then the values' (one array, so that the
 * statistics hook indexes them all). */
/* bins, then quiet stretches: 8 flags by bitlen(S), 8 x 8 offset bits */
#define SG_OCC_BIN_MODELS (11 * 64 * 8 * 4)
#define SG_OCC_MODELS (SG_OCC_BIN_MODELS + 8 + 8 * 9)
#define SG_VAL_CASES 6
#define SG_VAL_K 16
#define SG_VAL_EXP 17  /* unary exponent bins: e = 0..16 */
#define SG_VAL_MANT 2  /* modelled mantissa bits below the leading one */
#define SG_VAL_PER_K (1 + 17 + 16 + 1 + SG_VAL_EXP * SG_VAL_MANT)
#define SG_VAL_X 4
#define SG_VAL_MODELS (SG_VAL_CASES * SG_VAL_X * 4 * SG_VAL_K * SG_VAL_PER_K)
#define SG_SAT_BASE (SG_OCC_MODELS + SG_VAL_MODELS)
#define SG_MODELS (SG_SAT_BASE + 16)

/* Bias-correction contexts of the value predictor. */
#define SG_BIAS_CTX (SG_VAL_CASES * 4 * 4 * 4 * 9)
/* Magnitude contexts: case, amplitude, activity. */
#define SG_MAG_CTX (SG_VAL_CASES * 8 * 8)

typedef struct sg_bias {
    int32_t sum; /* residuals, accumulated */
    uint32_t n;
} sg_bias;

typedef struct sg_mag {
    uint32_t abs; /* residual magnitudes, accumulated */
    uint32_t n;
} sg_mag;

typedef struct sparse_grid {
    uint8_t *occ;   /* SG_CELLS: 1 where a hit is */
    uint16_t *q;    /* SG_CELLS: the level of a hit, 0 elsewhere */
    uint16_t *lg;   /* SG_CELLS: log of the level's value (levels.h), 0 elsewhere */
    int16_t *err;   /* SG_CELLS: a hit's prediction error in log units, 0 elsewhere */
    /* The pulses (runs of hits along z) in scan order, as the occupancy
     * pass finds them: first cell and length. */
    uint32_t *pulse_cell;
    uint16_t *pulse_len;
    size_t pulses;
    rc_bit models[SG_MODELS];
    sg_bias bias[SG_BIAS_CTX];
    sg_mag mag[SG_MAG_CTX];

} sparse_grid;

/* Occupancy: codes occ (every voxel) and lists the pulses. Decoding fills
 * occ and the pulses and returns the number of hits; *bad is set (never
 * cleared) on a stream no encoder writes. */
void sparse_occupancy_encode(sparse_grid *g, rc_encoder *e);
size_t sparse_occupancy_decode(sparse_grid *g, rc_decoder *d, int *bad);

/* Values: codes q of every hit (the pulse list must be complete) under the levels lv,
 * filling lg as it goes. Decoding fills q and lg; returns 0, or -1 on a
 * level outside 1..lv->count (damage). */
void sparse_values_encode(sparse_grid *g, const sparse_levels *lv, rc_encoder *e);
int sparse_values_decode(sparse_grid *g, const sparse_levels *lv, rc_decoder *d);

/* A cheap proxy of the values' cost under lv (its pedestal included), for
 * the encoder's choice of pedestal: the sum of bitlen(|q - base prediction|)
 * over every stride-th pulse, with the grid's q set for every hit. Leaves
 * lg zero. */
uint64_t sparse_values_estimate(sparse_grid *g, const sparse_levels *lv, size_t stride);

#endif
