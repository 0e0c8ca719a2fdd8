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

/* Landau-like energy-loss fluctuation with mean 1: the Moyal distribution
 * (lambda = -ln(g^2), g standard normal) has the Landau's sharp rise and long
 * upper tail. The tail is capped so one step cannot carry an absurd charge. */
static double landau_factor(bcae_rng *r, double width)
{
    double g = bcae_rng_normal(r);
    double lambda = -log(g * g + 1e-300);
    if (lambda > 12.0) lambda = 12.0;
    const double mean_lambda = 1.2703628454614782; /* ln 2 + Euler's gamma */
    double f = (1.0 + width * lambda) / (1.0 + width * mean_lambda);
    return f > 0 ? f : 0;
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
    const double charge_per_step =
        cfg->gain * dedx * (STEP_CM / g->row_height) / 1.0;
    const double pad_diff2 = cfg->diffusion_t * cfg->diffusion_t;
    const double time_diff2 = cfg->diffusion_l * cfg->diffusion_l;

    while (path < p->max_path) {
        /* Midpoint of the next step. */
        double mid = psi + 0.5 * STEP_CM * dpsi_per_cm;
        double theta = p->phi + turn * mid;
        double x = cx + turn * radius * sin(theta);
        double y = cy - turn * radius * cos(theta);
        double z = p->z0 + radius * mid * sinh_eta;
        if (fabs(z) >= g->half_length) break;
        double r = sqrt(x * x + y * y);
        if (r >= g->r_outer) {
            /* Primaries are absorbed beyond the TPC; a secondary electron
             * stops on the outer field cage too. */
            break;
        }
        if (p->looper && r < TPC_INNER_RADIUS_CM) break;
        double step_cm = STEP_CM;
        if (r >= g->r_inner) {
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
            d.charge = (float)(charge_per_step * landau_factor(&rng, cfg->landau_width));
            d.sigma_pad = (float)sqrt(cfg->pad_response * cfg->pad_response + pad_diff2 * dclamp);
            d.sigma_time = (float)sqrt(time_diff2 * dclamp);
            d.layer = (uint8_t)layer;
            d.side = z >= 0 ? 1 : 0;
            bcae_status s = push_deposit(out, &d, err);
            if (s) return s;
        } else {
            /* Below the pad rows nothing is read out: stride towards them
             * (r changes by at most the arc length). */
            double gap = g->r_inner - r;
            if (gap > step_cm) step_cm = gap;
        }
        psi += step_cm * dpsi_per_cm;
        path += step_cm;
    }
    return BCAE_OK;
}
