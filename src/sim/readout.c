/* Deposits -> diffusion, pad response, shaping -> noisy 10-bit ADC wedges. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "core/rng.h"
#include "sim/sim_internal.h"

#define SLABS (2 * SIM_LAYERS) /* (side, layer): each owns its voxels */
#define SLAB_VOXELS ((size_t)SIM_PADS * SIM_TROW)
#define MAX_PADS 32
#define MAX_TBINS 64
#define PI 3.14159265358979323846

double sim_pulse(double x, double peaking)
{
    /* Semi-Gaussian CR-RC^4 shaper: (t/tp)^4 exp(4 (1 - t/tp)). */
    if (x <= 0) return 0;
    double u = x / peaking;
    double u2 = u * u;
    return u2 * u2 * exp(4.0 * (1.0 - u));
}

/* E[(a + sigma Z)^+] for a standard normal Z. */
static double ramp_mean(double a, double sigma)
{
    double u = a / sigma;
    return a * 0.5 * erfc(-u / sqrt(2.0)) + sigma * exp(-0.5 * u * u) / sqrt(2.0 * PI);
}

/* Adds one deposit to its (side, layer) slab, signal[pad][tbin]. */
static void render(const bcae_sim_config *cfg, const sim_deposit *d, float *slab)
{
    /* Pad response: the share of the Gaussian cloud each pad collects.
     * Zigzag (chevron) pads interleave with their neighbours so that a
     * point charge at x divides linearly between the two nearest pad
     * centres: pad p's response is the triangle max(0, 1 - |x - c_p|),
     * here averaged over the cloud. Plain pads collect what lies over them. */
    double sp = d->sigma_pad;
    const int zigzag = cfg->pad_zigzag != 0;
    const double reach = 3.5 * sp + (zigzag ? 1.0 : 0.0);
    int p0 = (int)floor(d->pad - reach), p1 = (int)floor(d->pad + reach);
    if (p1 - p0 + 1 > MAX_PADS) {
        p0 = (int)floor(d->pad) - MAX_PADS / 2;
        p1 = p0 + MAX_PADS - 1;
    }
    double frac[MAX_PADS];
    if (zigzag) {
        for (int p = p0; p <= p1; p++) {
            double x = d->pad - (p + 0.5);
            frac[p - p0] = ramp_mean(x + 1, sp) - 2 * ramp_mean(x, sp) + ramp_mean(x - 1, sp);
        }
    } else {
        double inv = 1.0 / (sqrt(2.0) * sp);
        double prev = erf((p0 - d->pad) * inv);
        for (int p = p0; p <= p1; p++) {
            double next = erf((p + 1 - d->pad) * inv);
            frac[p - p0] = 0.5 * (next - prev);
            prev = next;
        }
    }

    /* Shaping in time, smeared by longitudinal diffusion with a three-point
     * rule that keeps the Gaussian's variance. Time bin k is sampled at
     * k + 0.5; the pulse tail runs to later times (longer drifts). */
    double tp = cfg->shaping_bins;
    double a = sqrt(2.0) * d->sigma_time;
    int k0 = (int)floor(d->tbin - a - 0.5);
    int k1 = (int)ceil(d->tbin + 5.0 * tp + a);
    if (k0 < -SIM_TMARGIN) k0 = -SIM_TMARGIN;
    if (k1 > SIM_TBINS + SIM_TMARGIN - 1) k1 = SIM_TBINS + SIM_TMARGIN - 1;
    if (k1 < k0) return;
    if (k1 - k0 + 1 > MAX_TBINS) k1 = k0 + MAX_TBINS - 1;
    float shape[MAX_TBINS];
    for (int k = k0; k <= k1; k++) {
        double x = k + 0.5 - d->tbin;
        double h = 0.5 * sim_pulse(x, tp);
        if (a > 0) h += 0.25 * (sim_pulse(x - a, tp) + sim_pulse(x + a, tp));
        else h *= 2.0;
        shape[k - k0] = (float)(d->charge * h);
    }
    for (int p = p0; p <= p1; p++) {
        float f = (float)frac[p - p0];
        if (f < 1e-4f) continue;
        int pad = ((p % SIM_PADS) + SIM_PADS) % SIM_PADS;
        float *row = slab + (size_t)pad * SIM_TROW + SIM_TMARGIN;
        for (int k = k0; k <= k1; k++) row[k] += f * shape[k - k0];
    }
}

/* The standard normal quantile (Acklam's rational approximation, relative
 * error below 1.2e-9), for p in (0, 1). */
static double normal_quantile(double p)
{
    static const double a[6] = {-3.969683028665376e+01, 2.209460984245205e+02,
                                -2.759285104469687e+02, 1.383577518672690e+02,
                                -3.066479806614716e+01, 2.506628277459239e+00};
    static const double b[5] = {-5.447609879822406e+01, 1.615858368580409e+02,
                                -1.556989798598866e+02, 6.680131188771972e+01,
                                -1.328068155288572e+01};
    static const double c[6] = {-7.784894002430293e-03, -3.223964580411365e-01,
                                -2.400758277161838e+00, -2.549732539343734e+00,
                                4.374664141464968e+00, 2.938163982698783e+00};
    static const double d[4] = {7.784695709041462e-03, 3.224671290700398e-01,
                                2.445134137142996e+00, 3.754408661907416e+00};
    const double lo = 0.02425;
    if (p < lo || p > 1 - lo) {
        double q = sqrt(-2.0 * log(p < lo ? p : 1 - p));
        double x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
                   ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
        return p < lo ? x : -x;
    }
    double q = p - 0.5, r = q * q;
    return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
           (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0);
}

/* The uniform in (0, 1) behind one voxel's noise, from its own hash. The
 * noise is sigma * quantile(u): an empty voxel is signal exactly when u
 * falls in the upper tail beyond the threshold, which one comparison tells
 * without computing the noise (most voxels are empty). */
static double voxel_uniform(uint64_t seed, uint64_t event, uint64_t voxel)
{
    uint64_t h = bcae_hash3(seed, SIM_STREAM_NOISE, event, voxel);
    return ((double)(h >> 11) + 0.5) * 0x1.0p-53;
}

void sim_readout(const bcae_sim_config *cfg, const sim_deposits *deps, size_t *order,
                 uint64_t seed, uint64_t event, float *signal, uint16_t *wedges, int threads)
{
    /* Bucket the deposits by slab, keeping their order, so that every
     * voxel sums its contributions in the same order whatever the threads. */
    size_t start[SLABS + 1] = {0};
    for (size_t i = 0; i < deps->n; i++) start[deps->v[i].side * SIM_LAYERS + deps->v[i].layer + 1]++;
    for (int s = 0; s < SLABS; s++) start[s + 1] += start[s];
    size_t fill[SLABS];
    memcpy(fill, start, sizeof fill);
    for (size_t i = 0; i < deps->n; i++)
            order[fill[deps->v[i].side * SIM_LAYERS + deps->v[i].layer]++] = i;

    /* The SAMPA's zero suppression, channel by channel: a sample more than
     * zs_threshold_adc above the pedestal is signal; it is kept with
     * zs_presamples before and zs_postsamples after each run of signal, and
     * at least zs_min_samples from the run's first sample on; the rest is
     * dropped. Kept samples carry the pedestal, as the read-out stores them.
     * Noise crosses the threshold on its own in an empty sample with
     * probability tail = P(Z > threshold / sigma). */
    const double threshold = cfg->zs_threshold_adc, sigma = cfg->noise_adc;
    const double tail = sigma > 0 ? 0.5 * erfc(threshold / sigma / sqrt(2.0)) : 0.0;
    const int pre = (int)cfg->zs_presamples, post = (int)cfg->zs_postsamples;
    const int min_samples = (int)cfg->zs_min_samples;
    int nt = threads > 0 ? threads : omp_get_max_threads();

#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (int s = 0; s < SLABS; s++) {
        float *slab = signal + (size_t)s * SLAB_VOXELS;
        memset(slab, 0, SLAB_VOXELS * sizeof *slab);
        for (size_t j = start[s]; j < start[s + 1]; j++) render(cfg, &deps->v[order[j]], slab);
        int side = s / SIM_LAYERS, layer = s % SIM_LAYERS;
        for (int pad = 0; pad < SIM_PADS; pad++) {
            int sector = pad / BCAE_WEDGE_AZIMUTH, az = pad % BCAE_WEDGE_AZIMUTH;
            uint16_t *w = wedges + (size_t)(sector * 2 + side) * BCAE_WEDGE_VOXELS;
            const float *row = slab + (size_t)pad * SIM_TROW;
            const uint64_t voxel0 = ((uint64_t)s * SIM_PADS + (uint64_t)pad) * SIM_TROW;
            double u[SIM_TROW];
            uint8_t over[SIM_TROW], keep[SIM_TROW];
            /* Forward: signal samples, and the samples since the last one
             * and since the start of the current run of them; backward:
             * the samples until the next one. */
            int last = -1000000, run_start = -1000000;
            for (int k = 0; k < SIM_TROW; k++) {
                u[k] = voxel_uniform(seed, event, voxel0 + (uint64_t)k);
                over[k] = row[k] != 0.0f ? row[k] + sigma * normal_quantile(u[k]) > threshold
                                         : u[k] > 1.0 - tail;
                if (over[k]) {
                    if (last != k - 1) run_start = k;
                    last = k;
                }
                keep[k] = k - last <= post || k - run_start < min_samples;
            }
            int next = 1000000;
            for (int k = SIM_TROW - 1; k >= 0; k--) {
                if (over[k]) next = k;
                if (next - k <= pre) keep[k] = 1;
            }
            for (int t = 0; t < SIM_TBINS; t++) {
                const int k = t + SIM_TMARGIN;
                unsigned adc = 0;
                if (keep[k]) {
                    double x = cfg->pedestal_adc + row[k] + sigma * normal_quantile(u[k]);
                    double q = floor(x + 0.5);
                    /* The data format's own zero suppression below 64
                     * (never reached with the default pedestal). */
                    if (q >= BCAE_ZERO_SUPPRESSION)
                        adc = q > BCAE_ADC_MAX ? BCAE_ADC_MAX : (unsigned)q;
                }
                /* Side 0 (z < 0): z index grows with drift time from the
                 * end plate at z = -L; side 1: from the membrane outwards. */
                int zi = side == 0 ? t : SIM_TBINS - 1 - t;
                w[((size_t)az * BCAE_WEDGE_Z + (size_t)zi) * BCAE_WEDGE_LAYERS + (size_t)layer] =
                    (uint16_t)adc;
            }
        }
    }
}
