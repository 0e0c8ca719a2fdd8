/* Particles -> helices in the solenoid field -> ionisation on the pad rows. */
#include <math.h>
#include <stdlib.h>

#include "core/error.h"
#include "core/rng.h"
#include "sim/sim_internal.h"

#define PI 3.14159265358979323846
/* Step along the path inside the pad rows: several steps per pad row
 * (1.06 cm) and per time bin (0.42 cm), so the charge lies along the track
 * rather than in lumps. */
#define STEP_CM 0.2
/* Radius of curvature: R[cm] = pT[GeV] / (0.3 B[T]) * 100. */
#define CURVATURE_CM_PER_GEV_T 333.5641
/* Inner field cage: secondaries born in the gas stop there. */
#define TPC_INNER_RADIUS_CM 20.0

static bcae_status push_deposit(sim_deposits *d, const sim_deposit *x, bcae_error *err)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 65536;
        sim_deposit *v = realloc(d->v, cap * sizeof *v);
        if (!v) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "simulator: out of memory");
        d->v = v;
        d->cap = cap;
    }
    d->v[d->n++] = *x;
    return BCAE_OK;
}

/* Ionisation in a thin gas layer comes in clusters: the number of
 * primary collisions is Poisson, and each frees a cluster of electrons whose
 * size falls as 1/s^2 (energy transfers to delta electrons follow the
 * Rutherford 1/E^2 law). That tail is the Landau distribution's. Sizes:
 * P(S = 1) = 1 - c and P(S >= s) = 2c / s for 2 <= s <= max, with c set by
 * the mean (sim_cluster_tail); a larger transfer makes a delta electron that
 * leaves the step, and is capped at max here. */
static int cluster_size(bcae_rng *r, double c, int max)
{
    double u = bcae_rng_uniform_pos(r);
    if (u > c) return 1;
    double s = 2.0 * c / u;
    return s >= max ? max : (int)s;
}

double sim_cluster_tail(double mean_size, double max_size)
{
    double h = 0;
    for (int s = 2; s <= (int)max_size; s++) h += 1.0 / s;
    return h > 0 ? (mean_size - 1.0) / (2.0 * h) : INFINITY;
}

/* Gamma(shape, 1) by Marsaglia and Tsang (shape >= 1). */
static double gamma_draw(bcae_rng *r, double shape)
{
    const double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x = bcae_rng_normal(r), v = 1.0 + c * x;
        if (v <= 0) continue;
        v = v * v * v;
        double u = bcae_rng_uniform_pos(r);
        if (log(u) < 0.5 * x * x + d - d * v + d * log(v)) return d * v;
    }
}

/* The avalanche charge of n electrons, in units of the mean avalanche: each
 * electron's GEM gain follows a Polya law (a Gamma law of shape 1 + theta,
 * mean 1; theta = 0 is the exponential of a single-GEM avalanche), so the
 * sum of n is Gamma(n (1 + theta)) / (1 + theta). */
static double avalanche(bcae_rng *r, int n, double theta)
{
    if (n <= 0) return 0.0;
    double k = 1.0 + theta;
    return gamma_draw(r, n * k) / k;
}

bcae_status sim_transport(const bcae_sim_config *cfg, const sim_geometry *g,
                          const sim_particle *p, uint64_t seed, uint64_t event, uint64_t index,
                          sim_deposits *out, bcae_error *err)
{
    if (!(p->pt > 0) || cfg->bfield_t <= 0) return BCAE_OK;
    const double radius = CURVATURE_CM_PER_GEV_T * p->pt / cfg->bfield_t;
    const double cosh_eta = cosh(p->eta), sinh_eta = sinh(p->eta);
    /* A positive particle turns clockwise seen from +z (field along +z). */
    const double turn = p->charge > 0 ? -1.0 : 1.0;
    const double cx = p->x0 + turn * radius * -sin(p->phi);
    const double cy = p->y0 + turn * radius * cos(p->phi);

    /* Energy loss rises as 1/beta^2 below minimum ionisation. */
    const double pmom = p->pt * cosh_eta;
    const double beta2 = pmom * pmom / (pmom * pmom + p->mass * p->mass);
    double dedx = 1.0 / beta2;
    if (dedx > 10.0) dedx = 10.0;

    double psi = 0.0;
    /* A primary starts on the beam line: its circle passes through the
     * axis, where r(psi) = 2 R sin(psi / 2); skip straight to the pad rows. */
    const int from_axis = !p->looper && p->x0 == 0.0 && p->y0 == 0.0;
    if (from_axis) {
        if (2.0 * radius < g->r_inner) return BCAE_OK;
        psi = 2.0 * asin(g->r_inner / (2.0 * radius)) * 0.999;
    }
    const double dpsi_per_cm = 1.0 / (radius * cosh_eta);
    double path = psi / dpsi_per_cm;

    bcae_rng rng;
    bcae_rng_seed(&rng, bcae_hash3(seed, SIM_STREAM_IONISATION, event, index));
    /* A step has clusters_per_cm * step * dE/dx collisions on average; each
     * electron of their clusters is amplified by the GEMs with its own
     * fluctuation. `gain` is the mean peak signal of a minimum-ionising row
     * crossing. */
    const double clusters_per_step = cfg->clusters_per_cm * STEP_CM * dedx;
    const double tail = sim_cluster_tail(cfg->electrons_per_cm / cfg->clusters_per_cm,
                                         cfg->cluster_size_max);
    const int size_max = (int)cfg->cluster_size_max;
    const double adc_per_electron = cfg->gain / (cfg->electrons_per_cm * g->row_height);
    const double cloud2 = cfg->pad_response_cm * cfg->pad_response_cm;
    const double pad_diff2 = cfg->diffusion_t_cm * cfg->diffusion_t_cm;
    const double time_diff2 = cfg->diffusion_l * cfg->diffusion_l;
    const double absorber = cfg->absorber_radius_cm;

    while (path < p->max_path) {
        /* Midpoint of the next step. */
        double mid = psi + 0.5 * STEP_CM * dpsi_per_cm;
        double theta = p->phi + turn * mid;
        double x = cx + turn * radius * sin(theta);
        double y = cy - turn * radius * cos(theta);
        double z = p->z0 + radius * mid * sinh_eta;
        if (fabs(z) >= g->half_length) break;
        double r = sqrt(x * x + y * y);
        /* Everything stops in the calorimeter. The field cages are thin
         * (~1 % of a radiation length): a particle curling out through the
         * outer one comes back on its helix if it turns before the
         * calorimeter, and is read out again. */
        if (r >= absorber) break;
        if (p->looper && r < TPC_INNER_RADIUS_CM) break;
        double step_cm = STEP_CM;
        if (r >= g->r_inner && r < g->r_outer) {
            int layer = (int)((r - g->r_inner) / g->row_height);
            if (layer > SIM_LAYERS - 1) layer = SIM_LAYERS - 1;
            double drift = g->half_length - fabs(z) + p->drift_shift;
            double phi_pos = atan2(y, x);
            if (phi_pos < 0) phi_pos += 2.0 * PI;
            double dclamp = drift > 0 ? drift : 0;
            sim_deposit d;
            d.pad = (float)(phi_pos / (2.0 * PI) * SIM_PADS);
            if (d.pad >= (float)SIM_PADS) d.pad = 0.0f;
            d.tbin = (float)(drift / g->tbin_cm);
            int clusters = bcae_rng_poisson(&rng, clusters_per_step), electrons = 0;
            for (int c = 0; c < clusters; c++) electrons += cluster_size(&rng, tail, size_max);
            d.charge = (float)(adc_per_electron * avalanche(&rng, electrons, cfg->polya_theta));
            /* The cloud's width is fixed in cm; pads widen with the radius
             * (the same number on every row), so outer rows see it on fewer
             * pads. */
            double pad_cm = 2.0 * PI * r / SIM_PADS;
            d.sigma_pad = (float)(sqrt(cloud2 + pad_diff2 * dclamp) / pad_cm);
            d.sigma_time = (float)sqrt(time_diff2 * dclamp);
            d.layer = (uint8_t)layer;
            d.side = z >= 0 ? 1 : 0;
            bcae_status s = push_deposit(out, &d, err);
            if (s) return s;
        } else {
            /* Off the pad rows nothing is read out: stride towards them or
             * the absorber, whichever is nearer (r changes by at most the
             * arc length). */
            double gap = r < g->r_inner ? g->r_inner - r : fmin(r - g->r_outer, absorber - r);
            if (gap > step_cm) step_cm = gap;
        }
        psi += step_cm * dpsi_per_cm;
        path += step_cm;
    }
    return BCAE_OK;
}
