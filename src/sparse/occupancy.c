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
#ifndef EXTRA
#define EXTRA (p1[z + 3] + 2u * p1[z - 2] + 4u * p2[z - 1] + 8u * p2[z + 1])
#endif

static inline unsigned row_state(int run, int gap)
{
    if (run) return (unsigned)(run < 7 ? run : 7) - 1; /* 0..6 */
    return gap <= 1 ? 7 : gap == 2 ? 8 : gap <= 4 ? 9 : 10;
}

static inline unsigned occ_context(const uint8_t *row, int z, int run, int gap)
{
    const uint8_t *p1 = row - SG_PZ, *p2 = row - 2 * SG_PZ, *u = row - SG_LSTRIDE;
    unsigned pad = (unsigned)p1[z - 1] | (unsigned)p1[z] << 1 | (unsigned)p1[z + 1] << 2 |
                   (unsigned)p1[z + 2] << 3;
    unsigned lay = (unsigned)u[z] | (unsigned)(u[z - SG_PZ] | u[z + SG_PZ]) << 1;
    return (((row_state(run, gap) * 16 + pad) * 2 + p2[z]) * 4 + lay) * 16 + EXTRA;
}

void sparse_occupancy_encode(sparse_grid *g, rc_encoder *out)
{
    rc_encoder local = *out, *e = &local; /* in registers, not behind a pointer */
    rc_bit *m = g->models;
    for (int l = 0; l < SG_NL; l++)
        for (int a = 0; a < SG_NA; a++) {
            const uint8_t *row = g->occ + sg_index(l, a, 0);
            int run = 0, gap = 5;
            for (int z = 0; z < SG_NZ; z++) {
                int bit = row[z];
                rc_encode(e, &m[occ_context(row, z, run, gap)], bit, OCC_LIMIT);
                if (bit) {
                    run++;
                    gap = 0;
                } else {
                    run = 0;
                    gap++;
                }
            }
        }
    *out = local;
}

size_t sparse_occupancy_decode(sparse_grid *g, rc_decoder *in)
{
    rc_decoder local = *in, *d = &local; /* in registers, not behind a pointer */
    rc_bit *m = g->models;
    size_t hits = 0;
    for (int l = 0; l < SG_NL; l++)
        for (int a = 0; a < SG_NA; a++) {
            uint8_t *row = g->occ + sg_index(l, a, 0);
            int run = 0, gap = 5;
            for (int z = 0; z < SG_NZ; z++) {
                int bit = rc_decode(d, &m[occ_context(row, z, run, gap)], OCC_LIMIT);
                row[z] = (uint8_t)bit;
                hits += (size_t)bit;
                if (bit) {
                    run++;
                    gap = 0;
                } else {
                    run = 0;
                    gap++;
                }
            }
        }
    *in = local;
    return hits;
}
