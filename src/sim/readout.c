/* Deposits -> diffusion, pad response, shaping -> noisy 10-bit ADC wedges. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "core/rng.h"
#include "sim/sim_internal.h"

#define SLABS (2 * SIM_LAYERS) /* (side, layer): each owns its voxels */
#define SLAB_VOXELS ((size_t)SIM_PADS * SIM_TBINS)
#define MAX_PADS 32
#define MAX_TBINS 64

double sim_pulse(double x, double peaking)
{
    /* Semi-Gaussian CR-RC^4 shaper: (t/tp)^4 exp(4 (1 - t/tp)). */
    if (x <= 0) return 0;
    double u = x / peaking;
    double u2 = u * u;
    return u2 * u2 * exp(4.0 * (1.0 - u));
}

/* Adds one deposit to its (side, layer) slab, signal[pad][tbin]. */
static void render(const bcae_sim_config *cfg, const sim_deposit *d, float *slab)
{
    /* Pad response: the fraction of a Gaussian cloud over each pad. */
    double sp = d->sigma_pad;
    int p0 = (int)floor(d->pad - 3.5 * sp), p1 = (int)floor(d->pad + 3.5 * sp);
    if (p1 - p0 + 1 > MAX_PADS) {
        p0 = (int)floor(d->pad) - MAX_PADS / 2;
        p1 = p0 + MAX_PADS - 1;
    }
    double frac[MAX_PADS];
    double inv = 1.0 / (sqrt(2.0) * sp);
    double prev = erf((p0 - d->pad) * inv);
    for (int p = p0; p <= p1; p++) {
        double next = erf((p + 1 - d->pad) * inv);
        frac[p - p0] = 0.5 * (next - prev);
        prev = next;
    }

    /* Shaping in time, smeared by longitudinal diffusion with a three-point
     * rule that keeps the Gaussian's variance. Time bin k is sampled at
     * k + 0.5; the pulse tail runs to later times (longer drifts). */
    double tp = cfg->shaping_bins;
    double a = sqrt(2.0) * d->sigma_time;
    int k0 = (int)floor(d->tbin - a - 0.5);
    int k1 = (int)ceil(d->tbin + 5.0 * tp + a);
    if (k0 < 0) k0 = 0;
    if (k1 > SIM_TBINS - 1) k1 = SIM_TBINS - 1;
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
        float *row = slab + (size_t)pad * SIM_TBINS;
        for (int k = k0; k <= k1; k++) row[k] += f * shape[k - k0];
    }
}

/* Standard normal for one voxel from its own hash. */
static double voxel_normal(uint64_t seed, uint64_t event, uint64_t voxel)
{
    uint64_t h = bcae_hash3(seed, SIM_STREAM_NOISE, event, voxel);
    double u1 = 1.0 - bcae_u64_to_unit(h), u2 = bcae_u64_to_unit(bcae_mix64(h));
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
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

    const double threshold = BCAE_ZERO_SUPPRESSION;
    /* Noise cannot lift a voxel this far below threshold over it (7 sigma):
     * skip drawing it there, which keeps empty voxels cheap. */
    const double noise_floor = threshold - 7.0 * cfg->noise_adc;
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
            const float *row = slab + (size_t)pad * SIM_TBINS;
            for (int t = 0; t < SIM_TBINS; t++) {
                double v = row[t];
                unsigned adc = 0;
                if (v > noise_floor) {
                    uint64_t voxel = ((uint64_t)s * SIM_PADS + (uint64_t)pad) * SIM_TBINS + (uint64_t)t;
                    v += cfg->pedestal_adc + cfg->noise_adc * voxel_normal(seed, event, voxel);
                    double q = floor(v + 0.5);
                    if (q >= threshold) adc = q > BCAE_ADC_MAX ? BCAE_ADC_MAX : (unsigned)q;
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
