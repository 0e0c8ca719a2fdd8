/* Reconstruction metrics: hand-computed cases, IEEE edge cases, and a
 * comparison with a plain float64 loop on wedge-sized inputs. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bcae.h"
#include "check.h"
#include "core/rng.h"

/* Relative closeness that also accepts equal infinities and two NaNs, so
 * one helper serves every metric. */
static int close_rel(double a, double b, double rel)
{
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    if (isinf(a) || isinf(b)) return a == b;
    return fabs(a - b) <= rel * fmax(fabs(b), 1e-300);
}

static int metrics_close(const bcae_metrics *a, const bcae_metrics *b, double rel)
{
    int ok = 1;
#define CMP(f)                                                                          \
    if (!close_rel(a->f, b->f, rel)) {                                                  \
        fprintf(stderr, "  %s: %.17g vs %.17g\n", #f, a->f, b->f);                      \
        ok = 0;                                                                         \
    }
    CMP(occupancy) CMP(mse) CMP(mae) CMP(psnr) CMP(psnr_db) CMP(precision) CMP(recall)
#undef CMP
    return ok;
}

/* The formulas of docs/METRICS.md written as directly as possible. */
static void reference_metrics(const double *x, const double *v, size_t n, bcae_metrics *m)
{
    double sq = 0, ab = 0, mx = -INFINITY;
    size_t px = 0, pv = 0, pb = 0;
    for (size_t i = 0; i < n; i++) {
        double d = x[i] - v[i];
        sq += d * d;
        ab += fabs(d);
        if (x[i] > mx) mx = x[i];
        px += x[i] > 0;
        pv += v[i] > 0;
        pb += x[i] > 0 && v[i] > 0;
    }
    m->occupancy = (double)px / (double)n;
    m->mse = sq / (double)n;
    m->mae = ab / (double)n;
    m->psnr = mx / sqrt(m->mse);
    m->psnr_db = 20 * log10(mx / sqrt(m->mse));
    m->precision = pv ? (double)pb / (double)pv : NAN;
    m->recall = px ? (double)pb / (double)px : NAN;
}

static void test_hand_computed(void)
{
    /* x>0 at 2,3,5,8; v>0 at 1,2,5,7,8: TP 3 (2,5,8), FP 2 (1,7), FN 1 (3).
     * Differences -7, 8, -0.5, -8, 0.5: squares sum 177.5, |.| sum 24. */
    const float x[10] = {0, 0, 7, 8, 0, 9, 0, 0, 6.5f, 0};
    const float v[10] = {0, 7, 7, 0, 0, 9.5f, 0, 8, 6, 0};
    bcae_metrics m;
    bcae_metrics_log(x, v, 10, &m);
    CHECK_NEAR(m.occupancy, 0.4, 1e-15);
    CHECK_NEAR(m.mse, 17.75, 1e-12);
    CHECK_NEAR(m.mae, 2.4, 1e-12);
    CHECK_NEAR(m.psnr, 9.0 / sqrt(17.75), 1e-12);
    CHECK_NEAR(m.psnr_db, 20 * log10(9.0 / sqrt(17.75)), 1e-12);
    CHECK_NEAR(m.precision, 3.0 / 5.0, 1e-15);
    CHECK_NEAR(m.recall, 3.0 / 4.0, 1e-15);
}

static void test_identical(void)
{
    float x[37];
    for (int i = 0; i < 37; i++) x[i] = i % 3 ? 0.0f : 6.0f + (float)i / 10.0f;
    bcae_metrics m;
    bcae_metrics_log(x, x, 37, &m);
    CHECK_NEAR(m.occupancy, 13.0 / 37.0, 1e-15);
    CHECK(m.mse == 0 && m.mae == 0);
    CHECK(isinf(m.psnr) && m.psnr > 0);
    CHECK(isinf(m.psnr_db) && m.psnr_db > 0);
    CHECK(m.precision == 1 && m.recall == 1);
}

static void test_zero_reconstruction(void)
{
    const float x[6] = {0, 8, 0, 0, 10, 0};
    const float v[6] = {0};
    bcae_metrics m;
    bcae_metrics_log(x, v, 6, &m);
    CHECK(isnan(m.precision)); /* 0/0 as in the reference */
    CHECK(m.recall == 0);
    CHECK_NEAR(m.mse, (64.0 + 100.0) / 6.0, 1e-12);
    CHECK_NEAR(m.mae, 18.0 / 6.0, 1e-12);
    CHECK_NEAR(m.psnr, 10.0 / sqrt(164.0 / 6.0), 1e-12);
}

static void test_edge_cases(void)
{
    bcae_metrics m;
    /* Both empty: every ratio is 0/0. */
    const float z[5] = {0};
    bcae_metrics_log(z, z, 5, &m);
    CHECK(m.occupancy == 0 && m.mse == 0 && m.mae == 0);
    CHECK(isnan(m.psnr) && isnan(m.psnr_db));
    CHECK(isnan(m.precision) && isnan(m.recall));

    /* Empty original, something reconstructed: recall NaN, precision 0,
     * psnr 0 (max(x) = 0) and -inf dB. */
    const float one[5] = {0, 0, 7, 0, 0};
    bcae_metrics_log(z, one, 5, &m);
    CHECK(isnan(m.recall) && m.precision == 0);
    CHECK(m.psnr == 0 && isinf(m.psnr_db) && m.psnr_db < 0);

    /* The max is found through integer keys of the float bits: negative
     * values and -0 must still order as numbers. */
    const float neg[4] = {-3.0f, -1.25f, -2.0f, -0.0f};
    const float negv[4] = {-3.0f, -1.25f, -2.0f, 1.0f}; /* mse 1/4 */
    bcae_metrics_log(neg, negv, 3, &m);
    CHECK(isinf(m.psnr) && m.psnr < 0); /* max -1.25 over mse 0 */
    bcae_metrics_log(neg, negv, 4, &m);
    CHECK(m.psnr == 0); /* max is -0: -0 / 0.5 */
    bcae_metrics_log(negv, neg, 4, &m);
    CHECK_NEAR(m.psnr, 1.0 / 0.5, 1e-15);

    /* No voxels at all. */
    bcae_metrics_log(z, z, 0, &m);
    CHECK(isnan(m.occupancy) && isnan(m.mse) && isnan(m.recall));

    /* A NaN in the original poisons max, mse and psnr as in the reference. */
    float xn[20];
    for (int i = 0; i < 20; i++) xn[i] = (float)i;
    xn[13] = NAN;
    bcae_metrics_log(xn, z, 5, &m); /* NaN is outside the first 5 */
    CHECK(!isnan(m.psnr));
    float zz[20] = {0};
    bcae_metrics_log(xn, zz, 20, &m);
    CHECK(isnan(m.mse) && isnan(m.psnr));

    /* ADC values past 10 bits are computed, not read past the table. */
    const uint16_t big[3] = {4095, 0, 65535};
    const uint16_t zero3[3] = {0};
    bcae_metrics_adc(big, zero3, 3, &m);
    CHECK_NEAR(m.mse, (144.0 + 16.0 * 16.0) / 3.0, 1e-12);
    CHECK_NEAR(m.psnr, 16.0 / sqrt(400.0 / 3.0), 1e-12);
}

static uint16_t random_adc(bcae_rng *r, double occupancy)
{
    if (bcae_rng_uniform(r) >= occupancy) return 0;
    return (uint16_t)(BCAE_ZERO_SUPPRESSION +
                      bcae_rng_u64(r) % (BCAE_ADC_MAX - BCAE_ZERO_SUPPRESSION + 1));
}

/* Wedge-sized and awkward sizes (not a multiple of the block or the lane
 * count), against the plain loop. */
static void test_against_plain_loop(void)
{
    const size_t sizes[] = {BCAE_WEDGE_VOXELS, 1000003, 1023, 7, 1};
    const size_t nmax = 1000003;
    float *x = malloc(nmax * sizeof *x), *v = malloc(nmax * sizeof *v);
    double *xd = malloc(nmax * sizeof *xd), *vd = malloc(nmax * sizeof *vd);
    uint16_t *xa = malloc(nmax * sizeof *xa), *va = malloc(nmax * sizeof *va);
    CHECK(x && v && xd && vd && xa && va);
    if (!(x && v && xd && vd && xa && va)) goto done;

    bcae_rng r;
    bcae_rng_seed(&r, bcae_hash3(2024, 5, 0, 0));
    for (size_t i = 0; i < nmax; i++) {
        xa[i] = random_adc(&r, 0.108);
        /* A reconstruction that mostly finds the hits, with some noise,
         * some misses and some false hits. */
        double u = bcae_rng_uniform(&r);
        if (xa[i] && u < 0.9) {
            long a = (long)xa[i] + (long)(bcae_rng_normal(&r) * 30);
            va[i] = (uint16_t)(a < 64 ? 64 : a > 1023 ? 1023 : a);
        } else {
            va[i] = xa[i] ? 0 : random_adc(&r, 0.01);
        }
        x[i] = (float)log2((double)xa[i] + 1);
        v[i] = (float)log2((double)va[i] + 1);
        xd[i] = x[i];
        vd[i] = v[i];
    }

    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        bcae_metrics got, want;
        bcae_metrics_log(x, v, n, &got);
        reference_metrics(xd, vd, n, &want);
        CHECK_MSG(metrics_close(&got, &want, 1e-10), "log, n = %zu", n);

        /* The ADC version works on exact log2 values, the float inputs are
         * rounded to float: they agree to float precision. */
        bcae_metrics adc;
        bcae_metrics_adc(xa, va, n, &adc);
        CHECK_MSG(metrics_close(&adc, &want, 1e-6), "adc vs log, n = %zu", n);
        for (size_t i = 0; i < n; i++) {
            xd[i] = log2((double)xa[i] + 1);
            vd[i] = log2((double)va[i] + 1);
        }
        reference_metrics(xd, vd, n, &want);
        CHECK_MSG(metrics_close(&adc, &want, 1e-10), "adc vs exact log2, n = %zu", n);
        for (size_t i = 0; i < n; i++) {
            xd[i] = x[i];
            vd[i] = v[i];
        }
    }

    /* Sanity of the random case itself, so a degenerate generator cannot
     * make the comparison vacuous. */
    bcae_metrics m;
    bcae_metrics_adc(xa, va, BCAE_WEDGE_VOXELS, &m);
    CHECK(m.occupancy > 0.1 && m.occupancy < 0.12);
    CHECK(m.precision > 0.85 && m.precision < 0.95);
    CHECK(m.recall > 0.85 && m.recall < 0.95);
    CHECK(m.mse > 0 && isfinite(m.psnr));

done:
    free(x);
    free(v);
    free(xd);
    free(vd);
    free(xa);
    free(va);
}

int main(void)
{
    test_hand_computed();
    test_identical();
    test_zero_reconstruction();
    test_edge_cases();
    test_against_plain_loop();
    return check_report("test_metrics");
}
