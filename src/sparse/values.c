/*
 * The values of the hits (docs/SPARSE.md section 6): each hit's level q, in
 * scan order, once the whole occupancy is known. A prediction from causal
 * neighbours in log units, corrected by the running mean residual of its
 * context, gives a level qp; the residual q - qp is binarised (magnitude
 * class down a tree that starts at the expected class, sign, mantissa) and
 * each bin coded under a context of the prediction case, the position in
 * the pulse, the room down to the threshold and the running mean magnitude.
 * Saturated hits (ADC 1023) have a flag of their own where they are likely.
 *
 * Why log units: a pulse seen on two pads, or at two times, is one shape
 * scaled, so log(v) is close to additive in pad and time and the planar
 * predictor W + N - NW (this pad one bin earlier, + the previous pad now,
 * - the previous pad one bin earlier) is near exact; and the levels of a
 * lossy bound are evenly spaced in log units, so the same predictor serves
 * every bound. Why the occupancy first: the value coder knows where each
 * pulse ends (the last bin of a pulse sits just above threshold) and how
 * long it is (long pulses are high).
 */
#include "sparse/grid.h"

#include <stdlib.h>

#define VAL_LIMIT 255
#define STATS_HALVE 64 /* the running statistics halve when n reaches this */

enum { CASE_PLANAR, CASE_SLOPE, CASE_PREV, CASE_PAD, CASE_LAYER, CASE_NONE };

typedef struct prediction {
    uint32_t qp;   /* predicted level, 1..L */
    unsigned bctx; /* bias-correction context */
    unsigned mctx; /* magnitude context */
    unsigned k;    /* its running mean magnitude, log2 rounded up */
    rc_bit *m;     /* the residual's models: SG_VAL_PER_K of them */
    rc_bit *sat;   /* the "saturated?" flag's model, NULL where none is coded */
} prediction;

static inline unsigned bitlen(uint32_t v)
{
    return v ? 32u - (unsigned)__builtin_clz(v) : 0u;
}

/* The smallest k <= 15 with n * 2^k >= abs: the running mean magnitude's
 * log2 rounded up. Between bitlen(abs) - bitlen(n) and one more. */
static inline unsigned scale_of(uint32_t abs, uint32_t n)
{
    if (abs <= n) return 0;
    unsigned k = bitlen(abs) - bitlen(n);
    k += ((uint64_t)n << k) < abs;
    return k < SG_VAL_K - 1 ? k : SG_VAL_K - 1;
}

static inline unsigned cap3(int v)
{
    return v < 3 ? (unsigned)v : 3u;
}

/* The hit's place in its pulse, as the residual's context sees it: the
 * last bin, the one before it, the first (of a longer pulse), the others. */
static inline unsigned position_class(int i, int rem)
{
    return rem == 0 ? 0u : rem == 1 ? 1u : i == 0 ? 2u : 3u;
}

/* The case, slope and base prediction (log units above the pedestal,
 * clamped to 0..SPARSE_LOG_MAX) of the hit whose lg cell is lg[0]. */
static inline int32_t base_prediction(const uint16_t *lg, const sparse_levels *lv, unsigned *c,
                                      unsigned *slope)
{
    int32_t W = lg[-1], WW = lg[-2];
    int32_t N = lg[-SG_PZ], NW = lg[-1 - SG_PZ], NE = lg[1 - SG_PZ];
    int32_t U = lg[-(ptrdiff_t)SG_LSTRIDE];
    int32_t p;
    *slope = 0;
    if (W && N && NW) {
        *c = CASE_PLANAR;
        p = W + N - NW;
        *slope = (N >= NW ? 1u : 0u) + (W >= WW ? 2u : 0u);
    } else if (W && WW) {
        *c = CASE_SLOPE;
        p = W;
        int32_t s = W - WW;
        *slope = s < -256 ? 0 : s < 0 ? 1 : s < 256 ? 2 : 3;
    } else if (W) {
        *c = CASE_PREV;
        p = W;
    } else if (N) {
        *c = CASE_PAD;
        p = N;
        *slope = (NW ? 1u : 0u) + (NE ? 2u : 0u);
    } else if (U) {
        *c = CASE_LAYER;
        p = U;
    } else {
        *c = CASE_NONE;
        p = lv->log[lv->floor]; /* the zero-suppression threshold */
    }
    return p < 0 ? 0 : p > SPARSE_LOG_MAX ? SPARSE_LOG_MAX : p;
}

/* The prediction of the hit at grid cell `cell`, i bins into its pulse with
 * rem bins of the pulse after it. */
static inline prediction predict(sparse_grid *g, const sparse_levels *lv, size_t cell, int i,
                                 int rem)
{
    const uint16_t *lg = g->lg + cell;
    int32_t W = lg[-1], N = lg[-SG_PZ], NW = lg[-1 - SG_PZ], NE = lg[1 - SG_PZ];
    int32_t U = lg[-(ptrdiff_t)SG_LSTRIDE];
    unsigned c, slope;
    int32_t p = base_prediction(lg, lv, &c, &slope);
    const int16_t *er = g->err + cell;
    int32_t eW = er[-1], eN = er[-SG_PZ], eNE = er[1 - SG_PZ], eNW = er[-1 - SG_PZ];
    uint32_t act = (uint32_t)(abs(eW) + abs(eN) + (abs(eNE) + abs(eNW)) / 2);
    unsigned es = (eW > 0 ? 1u : eW < 0 ? 2u : 0u) * 3 + (eN > 0 ? 1u : eN < 0 ? 2u : 0u);
    unsigned bctx = (((c * 4 + cap3(i)) * 4 + cap3(rem)) * 4 + slope) * 9 + es;
    const sg_bias *b = &g->bias[bctx];
    int32_t corr = b->n ? b->sum / (int32_t)b->n : 0; /* C division: truncates toward zero */
    int32_t qp = (int32_t)lv->level_at_log[p] + corr;
    if (qp < 1) qp = 1;
    if (qp > (int32_t)lv->count) qp = (int32_t)lv->count;
    /* The amplitude in half octaves of the predicted level's value above 63
     * (the value itself, not above the pedestal: measured better). */
    int32_t ab = ((int32_t)lv->logv[qp] - 6 * 1024) / 512;
    ab = ab < 0 ? 0 : ab > 7 ? 7 : ab;
    unsigned acb = bitlen(act >> 4);
    if (acb > 7) acb = 7;
    unsigned mctx = (c * 8 + (unsigned)ab) * 8 + acb;
    sg_mag *mg = &g->mag[mctx];
    unsigned k = scale_of(mg->abs, mg->n);
    /* Saturation: the ADC clips at 1023, so a high pulse reads exactly the
     * saturated level for several bins; one flag then replaces a residual
     * that no predictor gets right. Coded where the prediction is high or a
     * neighbour is saturated. */
    int32_t ls = lv->log[lv->sat];
    unsigned nsat = (W == ls) + (N == ls) + (NW == ls) + (NE == ls) + (U == ls);
    rc_bit *sat = NULL;
    if (ab >= 4 || nsat)
        sat = g->models + SG_SAT_BASE + (nsat < 3 ? nsat : 3) * 4 + (unsigned)ab / 2;
    /* Room below the prediction, down to the zero-suppression threshold's
     * level, against the residual's scale: where it is small the residual's
     * negative side is cut off. */
    int32_t room = qp - (int32_t)lv->floor;
    unsigned rb = room < (1 << k) / 2 ? 0u : room < (1 << k) ? 1u : room < (2 << k) ? 2u : 3u;
    prediction pr = {(uint32_t)qp, bctx, mctx, k,
                     g->models + SG_OCC_MODELS +
                         (((c * SG_VAL_X + position_class(i, rem)) * 4 + rb) * SG_VAL_K + k) * SG_VAL_PER_K,
                     sat};
    return pr;
}

static inline int16_t err_of(const sparse_levels *lv, uint32_t q, uint32_t qp)
{
    return (int16_t)((int32_t)lv->log[q] - (int32_t)lv->log[qp]);
}

/* The running statistics of the residual: its sum (the bias correction is
 * their mean) and its magnitude (k), both halved with their count every
 * STATS_HALVE residuals, so that they follow the wedge's regions. */
static inline void stats_update(sparse_grid *g, const prediction *pr, int32_t r)
{
    sg_mag *m = &g->mag[pr->mctx];
    m->abs += (uint32_t)(r < 0 ? -r : r);
    if (++m->n == STATS_HALVE) {
        m->abs /= 2;
        m->n /= 2;
    }
    sg_bias *b = &g->bias[pr->bctx];
    b->sum += r;
    if (++b->n == STATS_HALVE) {
        b->sum /= 2; /* truncates toward zero */
        b->n /= 2;
    }
}

/* The residual r is binarised as its magnitude class c (0 for r = 0, else
 * 1 + floor(log2 |r|), 0..17), the sign, and the c - 1 bits below the
 * leading one. The class is coded down a binary tree that starts where k
 * says it usually is (k is the running mean magnitude's log2 rounded up, so
 * c is mostly k or k - 1): "c >= k", then upwards from k or downwards from
 * k - 1, one bin per step, ~2 decisions where a unary code from 0 would take
 * c + 1. Every bin has its own model, so the tree shape costs no
 * compression, only time. The top SG_VAL_MANT mantissa bits have models per
 * class; the lower ones are below the noise (6 ADC counts) and go direct. */
#define M_GE 0
#define M_UP 1
#define M_DN (M_UP + 17)
#define M_SIGN (M_DN + 16)
#define M_MANT (M_SIGN + 1)

static inline unsigned class_of(uint32_t v)
{
    return v ? 32u - (unsigned)__builtin_clz(v) : 0u;
}

RC_INLINE void encode_residual(rc_encoder *e, rc_bit *m, unsigned k, int32_t r, const int counting)
{
    uint32_t v = (uint32_t)(r < 0 ? -r : r);
    int c = (int)class_of(v), kk = (int)k;
    int up = kk == 0 || c >= kk;
    if (kk) rc_encode(e, &m[M_GE], up, VAL_LIMIT, counting);
    if (up) {
        for (int j = kk; j < 17; j++) {
            rc_encode(e, &m[M_UP + j - kk], c > j, VAL_LIMIT, counting);
            if (c == j) break;
        }
    } else {
        for (int j = kk - 1; j > 0; j--) {
            rc_encode(e, &m[M_DN + kk - 1 - j], c < j, VAL_LIMIT, counting);
            if (c == j) break;
        }
    }
    if (!c) return;
    rc_encode(e, &m[M_SIGN], r < 0, VAL_LIMIT, counting);
    int ex = c - 1;
    for (int t = 0; t < ex; t++) {
        int bit = (int)(v >> (ex - 1 - t)) & 1;
        if (t < SG_VAL_MANT) rc_encode(e, &m[M_MANT + ex * SG_VAL_MANT + t], bit, VAL_LIMIT, counting);
        else rc_encode_direct(e, (uint32_t)bit, 1, counting);
    }
}

/* The residual; its magnitude may exceed any level (c = 17): the caller
 * checks the level it gives. */
static inline int32_t decode_residual(rc_decoder *d, rc_bit *m, unsigned k)
{
    int kk = (int)k, c;
    int up = kk == 0 || rc_decode(d, &m[M_GE], VAL_LIMIT);
    if (up) {
        c = kk;
        while (c < 17 && rc_decode(d, &m[M_UP + c - kk], VAL_LIMIT)) c++;
    } else {
        c = kk - 1;
        while (c > 0 && rc_decode(d, &m[M_DN + kk - 1 - c], VAL_LIMIT)) c--;
    }
    if (!c) return 0;
    int neg = rc_decode(d, &m[M_SIGN], VAL_LIMIT);
    int ex = c - 1;
    uint32_t v = 1;
    for (int t = 0; t < ex; t++) {
        int bit = t < SG_VAL_MANT ? rc_decode(d, &m[M_MANT + ex * SG_VAL_MANT + t], VAL_LIMIT)
                                  : (int)rc_decode_direct(d, 1);
        v = (v << 1) | (uint32_t)bit;
    }
    return neg ? -(int32_t)v : (int32_t)v;
}

RC_INLINE void values_encode(sparse_grid *g, const sparse_levels *lv, rc_encoder *out,
                             const int counting)
{
    rc_encoder local = *out, *e = &local; /* in registers, not behind a pointer */
    for (size_t k = 0; k < g->pulses; k++) {
        size_t cell = g->pulse_cell[k];
        int len = g->pulse_len[k];
        for (int i = 0; i < len; i++, cell++) {
            prediction pr = predict(g, lv, cell, i, len - 1 - i);
            uint32_t q = g->q[cell];
            int32_t r = (int32_t)q - (int32_t)pr.qp;
            int is_sat = pr.sat && q == lv->sat;
            if (pr.sat) rc_encode(e, pr.sat, is_sat, VAL_LIMIT, counting);
            if (!is_sat) {
                encode_residual(e, pr.m, pr.k, r, counting);
                stats_update(g, &pr, r);
            }
            g->lg[cell] = lv->log[q];
            g->err[cell] = err_of(lv, q, pr.qp);
        }
    }
    *out = local;
}

void sparse_values_encode(sparse_grid *g, const sparse_levels *lv, rc_encoder *e)
{
    if (e->counts) values_encode(g, lv, e, 1);
    else values_encode(g, lv, e, 0);
}

int sparse_values_decode(sparse_grid *g, const sparse_levels *lv, rc_decoder *in)
{
    rc_decoder local = *in, *d = &local; /* in registers, not behind a pointer */
    for (size_t k = 0; k < g->pulses; k++) {
        size_t cell = g->pulse_cell[k];
        int len = g->pulse_len[k];
        for (int i = 0; i < len; i++, cell++) {
            prediction pr = predict(g, lv, cell, i, len - 1 - i);
            int32_t q = (int32_t)lv->sat;
            if (!pr.sat || !rc_decode(d, pr.sat, VAL_LIMIT)) {
                int32_t r = decode_residual(d, pr.m, pr.k);
                q = (int32_t)pr.qp + r;
                if (q < 1 || q > (int32_t)lv->count) {
                    *in = local;
                    return -1;
                }
                stats_update(g, &pr, r);
            }
            g->q[cell] = (uint16_t)q;
            g->lg[cell] = lv->log[q];
            g->err[cell] = err_of(lv, (uint32_t)q, pr.qp);
        }
    }
    *in = local;
    return 0;
}

uint64_t sparse_values_estimate(sparse_grid *g, const sparse_levels *lv, size_t stride)
{
    for (size_t k = 0; k < g->pulses; k++) {
        size_t cell = g->pulse_cell[k];
        for (int i = 0; i < g->pulse_len[k]; i++, cell++) g->lg[cell] = lv->log[g->q[cell]];
    }
    uint64_t cost = 0;
    for (size_t k = 0; k < g->pulses; k += stride) {
        size_t cell = g->pulse_cell[k];
        for (int i = 0; i < g->pulse_len[k]; i++, cell++) {
            unsigned c, slope;
            int32_t r = (int32_t)g->q[cell] -
                        (int32_t)lv->level_at_log[base_prediction(g->lg + cell, lv, &c, &slope)];
            cost += bitlen((uint32_t)(r < 0 ? -r : r));
        }
    }
    for (size_t k = 0; k < g->pulses; k++) {
        size_t cell = g->pulse_cell[k];
        for (int i = 0; i < g->pulse_len[k]; i++, cell++) g->lg[cell] = 0;
    }
    return cost;
}
