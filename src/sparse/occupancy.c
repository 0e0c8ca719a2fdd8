/*
 * The occupancy of a wedge, coded exactly: one binary decision per voxel in
 * scan order (grid.h), hit or empty, under a context of causal neighbours
 * (docs/SPARSE.md section 5).
 *
 * Context (1408 of them), from what decides whether a voxel is hit:
 *  - the row's own state: inside a pulse, its length so far (1..7+: a
 *    pulse of the CR-RC^4 shaper lasts ~4-7 bins above threshold, so its
 *    end is predictable from its length); outside one, the bins since the
 *    last hit (1, 2, 3-4, 5+ or none yet);
 *  - the previous pad at z - 1, z, z + 1, z + 2 (the pad response spreads
 *    each cloud over ~3 pads with the same time profile, so the neighbour
 *    pad's pulse is the best single predictor, its future bins included);
 *  - the pad before that at z;
 *  - the previous layer at this pad, and at either adjacent pad (a track
 *    crosses the layers at nearby pads and z).
 */
#include "sparse/grid.h"

#define OCC_LIMIT 60

/* The row's state as a small machine: 0..6 inside a pulse of length 1..7+,
 * 7..11 outside one, 1, 2, 3, 4, 5+ bins after its end (5+ also before the
 * row's first pulse). Its context value merges 3 and 4 bins after: */
static const uint8_t state_ctx[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 10};
static const uint8_t state_next[12][2] = {
    {7, 1}, {7, 2}, {7, 3}, {7, 4}, {7, 5}, {7, 6}, {7, 6},
    {8, 0}, {9, 0}, {10, 0}, {11, 0}, {11, 0},
};
#define STATE_START 11

/* Windows kept as bits and shifted along z: w1 = the previous pad at
 * z - 2 .. z + 3 (bit 0 = z - 2), w2 = the pad before at z - 1 .. z + 1. */
static inline unsigned occ_context(unsigned state, unsigned w1, unsigned w2, const uint8_t *u, int z)
{
    unsigned lay = (unsigned)u[z] | (unsigned)(u[z - SG_PZ] | u[z + SG_PZ]) << 1;
    return ((state_ctx[state] * 64u + w1) * 8u + w2) * 4u + lay;
}

#define ROW_SETUP(row)                                                                \
    const uint8_t *p1 = (row) - SG_PZ, *p2 = (row) - 2 * SG_PZ, *u = (row) - SG_LSTRIDE; \
    unsigned state = STATE_START, run = 0;                                            \
    unsigned w1 = (unsigned)p1[-2] << 1 | (unsigned)p1[-1] << 2 | (unsigned)p1[0] << 3 | \
                  (unsigned)p1[1] << 4 | (unsigned)p1[2] << 5;                        \
    unsigned w2 = (unsigned)p2[-2] << 0 | (unsigned)p2[-1] << 1 | (unsigned)p2[0] << 2;

/* Before coding bin z: bring the windows to z (ROW_SETUP leaves them at
 * z = -1, less the bin z - 3 that the first shift drops). */
#define ROW_ADVANCE(z)                                          \
    w1 = (w1 >> 1) | (unsigned)p1[(z) + 3] << 5;                \
    w2 = (w2 >> 1) | (unsigned)p2[(z) + 1] << 2;

static inline void pulse_add(sparse_grid *g, ptrdiff_t cell, int len)
{
    g->pulse_cell[g->pulses] = (uint32_t)cell;
    g->pulse_len[g->pulses] = (uint16_t)len;
    g->pulses++;
}

RC_INLINE void occupancy_encode(sparse_grid *g, rc_encoder *out, const int counting)
{
    rc_encoder local = *out, *e = &local; /* in registers, not behind a pointer */
    rc_bit *m = g->models;
    g->pulses = 0;
    for (int l = 0; l < SG_NL; l++)
        for (int a = 0; a < SG_NA; a++) {
            const uint8_t *row = g->occ + sg_index(l, a, 0);
            ROW_SETUP(row)
            for (int z = 0; z < SG_NZ; z++) {
                ROW_ADVANCE(z)
                int bit = row[z];
                rc_encode(e, &m[occ_context(state, w1, w2, u, z)], bit, OCC_LIMIT, counting);
                state = state_next[state][bit];
                if (bit) {
                    run++;
                } else if (run) {
                    pulse_add(g, row + z - run - g->occ, (int)run);
                    run = 0;
                }
            }
            if (run) pulse_add(g, row + SG_NZ - run - g->occ, (int)run);
        }
    *out = local;
}

void sparse_occupancy_encode(sparse_grid *g, rc_encoder *e)
{
    if (e->counts) occupancy_encode(g, e, 1);
    else occupancy_encode(g, e, 0);
}

size_t sparse_occupancy_decode(sparse_grid *g, rc_decoder *in)
{
    rc_decoder local = *in, *d = &local; /* in registers, not behind a pointer */
    rc_bit *m = g->models;
    size_t hits = 0;
    g->pulses = 0;
    for (int l = 0; l < SG_NL; l++)
        for (int a = 0; a < SG_NA; a++) {
            uint8_t *row = g->occ + sg_index(l, a, 0);
            ROW_SETUP(row)
            for (int z = 0; z < SG_NZ; z++) {
                ROW_ADVANCE(z)
                int bit = rc_decode(d, &m[occ_context(state, w1, w2, u, z)], OCC_LIMIT);
                row[z] = (uint8_t)bit;
                state = state_next[state][bit];
                if (bit) {
                    run++;
                } else if (run) {
                    hits += run;
                    pulse_add(g, row + z - run - g->occ, (int)run);
                    run = 0;
                }
            }
            if (run) {
                hits += run;
                pulse_add(g, row + SG_NZ - run - g->occ, (int)run);
            }
        }
    *in = local;
    return hits;
}
