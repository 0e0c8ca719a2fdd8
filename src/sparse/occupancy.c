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

#include <string.h>

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

static inline unsigned bitlen(unsigned v)
{
    return v ? 32u - (unsigned)__builtin_clz(v) : 0u;
}

static inline void pulse_add(sparse_grid *g, ptrdiff_t cell, int len)
{
    g->pulse_cell[g->pulses] = (uint32_t)cell;
    g->pulse_len[g->pulses] = (uint16_t)len;
    g->pulses++;
}

/* Quiet stretches ("run mode", as in JPEG-LS): where a bin's whole context
 * is empty (5+ bins since the row's last hit, nothing in the windows of the
 * two previous pads or in the previous layer) a hit is rare (~0.1-0.3%), and
 * such bins are most of a wedge (half to four fifths of the decisions).
 * From such a bin z, the stretch is z and the bins after it whose context
 * stays empty as long as no hit comes: those where nothing new enters the
 * windows. One flag says whether the stretch holds a hit; if it does, the
 * offset of the first one follows (bit by bit, MSB first, in bitlen(S - 1)
 * bits) and bin-by-bin coding resumes after it. Same information, a
 * fraction of the decisions. */
static inline int quiet_stretch(const uint8_t *p1, const uint8_t *p2, const uint8_t *u, int z)
{
    const uint8_t *ul = u - SG_PZ, *ur = u + SG_PZ;
    int s = 1;
    while (z + s < SG_NZ && !(p1[z + s + 3] | p2[z + s + 1] | u[z + s] | ul[z + s] | ur[z + s])) s++;
    return s;
}

static inline int quiet(unsigned state, unsigned w1, unsigned w2, const uint8_t *u, int z)
{
    return state == STATE_START && !(w1 | w2 | u[z] | u[z - SG_PZ] | u[z + SG_PZ]);
}

RC_INLINE void occupancy_encode(sparse_grid *g, rc_encoder *out, const int counting)
{
    rc_encoder local = *out, *e = &local; /* in registers, not behind a pointer */
    rc_bit *m = g->models, *mq = g->models + SG_OCC_BIN_MODELS;
    g->pulses = 0;
    for (int l = 0; l < SG_NL; l++)
        for (int a = 0; a < SG_NA; a++) {
            const uint8_t *row = g->occ + sg_index(l, a, 0);
            ROW_SETUP(row)
            for (int z = 0; z < SG_NZ; z++) {
                ROW_ADVANCE(z)
                if (quiet(state, w1, w2, u, z)) {
                    int n = quiet_stretch(p1, p2, u, z), o = 0;
                    while (o < n && !row[z + o]) o++;
                    rc_encode(e, &mq[bitlen((unsigned)n) - 1], o < n, OCC_LIMIT, counting);
                    if (o == n) {
                        z += n - 1; /* the windows stay empty: w1 = w2 = 0 */
                        continue;
                    }
                    int nb = (int)bitlen((unsigned)n - 1);
                    for (int t = nb - 1; t >= 0; t--)
                        rc_encode(e, &mq[8 + nb * 8 + t], (o >> t) & 1, OCC_LIMIT, counting);
                    z += o;
                    state = state_next[state][1];
                    run = 1;
                    continue;
                }
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

size_t sparse_occupancy_decode(sparse_grid *g, rc_decoder *in, int *bad)
{
    rc_decoder local = *in, *d = &local; /* in registers, not behind a pointer */
    rc_bit *m = g->models, *mq = g->models + SG_OCC_BIN_MODELS;
    size_t hits = 0;
    g->pulses = 0;
    for (int l = 0; l < SG_NL; l++)
        for (int a = 0; a < SG_NA; a++) {
            uint8_t *row = g->occ + sg_index(l, a, 0);
            ROW_SETUP(row)
            for (int z = 0; z < SG_NZ; z++) {
                ROW_ADVANCE(z)
                if (quiet(state, w1, w2, u, z)) {
                    int n = quiet_stretch(p1, p2, u, z), o = n;
                    if (rc_decode(d, &mq[bitlen((unsigned)n) - 1], OCC_LIMIT)) {
                        int nb = (int)bitlen((unsigned)n - 1);
                        o = 0;
                        for (int t = nb - 1; t >= 0; t--)
                            o |= rc_decode(d, &mq[8 + nb * 8 + t], OCC_LIMIT) << t;
                        /* An offset past the stretch is damage; it is read as
                         * "no hit", which the hit count then refuses. */
                        if (o >= n) {
                            o = n;
                            *bad = 1;
                        }
                    }
                    memset(row + z, 0, (size_t)o);
                    if (o == n) {
                        z += n - 1;
                        continue;
                    }
                    z += o;
                    row[z] = 1;
                    state = state_next[state][1];
                    run = 1;
                    continue;
                }
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
