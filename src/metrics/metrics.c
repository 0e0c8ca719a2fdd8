/*
 * Per-wedge reconstruction metrics, computed as the reference's test script
 * does (see docs/METRICS.md): in log2(ADC+1) space, over every voxel of the
 * cropped wedge.
 *
 * Work goes block by block. The differences are summed in double by one
 * kernel that both entry points share, in LANES independent accumulators per
 * block whose totals are then added in double: fixed-width lanes let the
 * compiler vectorise without -ffast-math (which a single scalar reduction
 * would need), and the two-level sum keeps the error of a 764,928-term sum
 * near 1e-14 relative. Counts and the maximum are found on the caller's own
 * input type with integer operations, which vectorise more widely than the
 * double ones and, unlike a floating-point max, at all.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "bcae.h"

/* Voxels per block: small enough for the double buffers to stay in L1. */
enum { BLOCK = 1024, LANES = 8 };

typedef struct metric_sums {
    double sq;       /* sum (x - v)^2 */
    double ab;       /* sum |x - v| */
    double max;      /* max x */
    size_t pos_x;    /* #(x > 0) */
    size_t pos_v;    /* #(v > 0) */
    size_t pos_both; /* #(x > 0 and v > 0) */
} metric_sums;

static void sums_init(metric_sums *s)
{
    s->sq = 0;
    s->ab = 0;
    s->max = -INFINITY;
    s->pos_x = s->pos_v = s->pos_both = 0;
}

/* Adds sum (x - v)^2 and sum |x - v| of n <= BLOCK voxels to s. */
static void sum_differences(const double *x, const double *v, size_t n, metric_sums *s)
{
    double sq[LANES] = {0}, ab[LANES] = {0};
    size_t full = n - n % LANES;
    for (size_t i = 0; i < full; i += LANES) {
        for (int l = 0; l < LANES; l++) {
            double d = x[i + (size_t)l] - v[i + (size_t)l];
            sq[l] += d * d;
            ab[l] += fabs(d);
        }
    }
    for (size_t i = full; i < n; i++) {
        double d = x[i] - v[i];
        sq[0] += d * d;
        ab[0] += fabs(d);
    }
    double bsq = 0, bab = 0;
    for (int l = 0; l < LANES; l++) {
        bsq += sq[l];
        bab += ab[l];
    }
    s->sq += bsq;
    s->ab += bab;
}

/* Ratios follow IEEE arithmetic on purpose, reproducing the reference's
 * tensor arithmetic: psnr = max / 0 is +inf for an exact reconstruction
 * (NaN when the wedge is empty too), and 0/0 precision or recall is NaN. */
static void sums_finish(const metric_sums *s, size_t n, bcae_metrics *m)
{
    if (n == 0) {
        m->occupancy = m->mse = m->mae = m->psnr = m->psnr_db = NAN;
        m->precision = m->recall = NAN;
        return;
    }
    double dn = (double)n;
    m->occupancy = (double)s->pos_x / dn;
    m->mse = s->sq / dn;
    m->mae = s->ab / dn;
    m->psnr = s->max / sqrt(m->mse);
    m->psnr_db = 20.0 * log10(m->psnr);
    m->precision = s->pos_v ? (double)s->pos_both / (double)s->pos_v : NAN;
    m->recall = s->pos_x ? (double)s->pos_both / (double)s->pos_x : NAN;
}

/* A float's bits mapped to an unsigned key with the same order (negatives
 * flipped, positives moved above them), so that the max is an integer max.
 * NaNs get keys too, but they cannot matter: a NaN in x makes the mse NaN,
 * and with it psnr and psnr_db, whatever the max. */
static uint32_t float_key(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    uint32_t negative = 0u - (u >> 31);
    return u ^ (negative | 0x80000000u);
}

static float key_float(uint32_t key)
{
    uint32_t positive = 0u - (key >> 31);
    uint32_t u = key ^ (~positive | 0x80000000u);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

void bcae_metrics_log(const float *x, const float *v, size_t n, bcae_metrics *m)
{
    double xb[BLOCK], vb[BLOCK];
    metric_sums s;
    sums_init(&s);
    uint32_t max_key = 0; /* a negative NaN's key: below every number's */
    for (size_t start = 0; start < n; start += BLOCK) {
        size_t len = n - start < BLOCK ? n - start : BLOCK;
        const float *xs = x + start, *vs = v + start;
        /* 32-bit counters cannot overflow within a block. */
        uint32_t px = 0, pv = 0, pb = 0, mk = max_key;
        for (size_t i = 0; i < len; i++) {
            uint32_t ix = xs[i] > 0, iv = vs[i] > 0;
            px += ix;
            pv += iv;
            pb += ix & iv;
            uint32_t k = float_key(xs[i]);
            mk = k > mk ? k : mk;
            xb[i] = xs[i];
            vb[i] = vs[i];
        }
        s.pos_x += px;
        s.pos_v += pv;
        s.pos_both += pb;
        max_key = mk;
        sum_differences(xb, vb, len, &s);
    }
    if (n) s.max = key_float(max_key);
    sums_finish(&s, n, m);
}

void bcae_metrics_adc(const uint16_t *orig, const uint16_t *recon, size_t n, bcae_metrics *m)
{
    /* Built per call (a few microseconds) rather than cached in a static,
     * which would be mutable shared state. */
    double table[BCAE_ADC_MAX + 1];
    for (int a = 0; a <= BCAE_ADC_MAX; a++) table[a] = log2((double)a + 1.0);

    double xb[BLOCK], vb[BLOCK];
    metric_sums s;
    sums_init(&s);
    unsigned max_adc = 0;
    for (size_t start = 0; start < n; start += BLOCK) {
        size_t len = n - start < BLOCK ? n - start : BLOCK;
        const uint16_t *os = orig + start, *rs = recon + start;
        uint32_t px = 0, pv = 0, pb = 0;
        uint16_t mx = 0;
        for (size_t i = 0; i < len; i++) {
            uint32_t ix = os[i] > 0, iv = rs[i] > 0;
            px += ix;
            pv += iv;
            pb += ix & iv;
            mx = os[i] > mx ? os[i] : mx;
        }
        s.pos_x += px;
        s.pos_v += pv;
        s.pos_both += pb;
        max_adc = mx > max_adc ? mx : max_adc;
        for (size_t i = 0; i < len; i++) {
            unsigned o = os[i], r = rs[i];
            /* Values past 10 bits are not wedges, but this function cannot
             * fail: compute them rather than read past the table. */
            xb[i] = o <= BCAE_ADC_MAX ? table[o] : log2((double)o + 1.0);
            vb[i] = r <= BCAE_ADC_MAX ? table[r] : log2((double)r + 1.0);
        }
        sum_differences(xb, vb, len, &s);
    }
    if (n) s.max = log2((double)max_adc + 1.0);
    sums_finish(&s, n, m);
}
