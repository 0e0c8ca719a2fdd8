/* Collisions -> charged particles. */
#include <math.h>
#include <stdlib.h>

#include "core/error.h"
#include "core/rng.h"
#include "sim/sim_internal.h"

#define PI 3.14159265358979323846
/* The outer field cage's wall sits ~1 cm outside the last pad row. */
#define OUTER_CAGE_GAP_CM 1.0

void bcae_sim_config_default(bcae_sim_config *c)
{
    /* Central (0-10 %) Au+Au at 200 GeV: dNch/deta ~ 560-690 at
     * mid-rapidity; the triggered sample of the BCAE papers is central. */
    c->dndeta = 680;
    c->centrality_max = 0.10;
    c->dndeta_spread = 0;
    c->eta_max = 1.4;
    c->vertex_sigma_cm = 10.0;
    /* 170 kHz collision rate x ~13 us drift in each direction of time. */
    c->pileup_mean = 4.4;
    c->pileup_dndeta = 170;
    c->mean_pt_gev = 0.5;
    c->looper_per_track = 0.65;
    c->bfield_t = 1.4;
    c->r_inner_cm = 60.0;
    c->r_outer_cm = 77.0;
    c->half_length_cm = 105.5;
    /* Calibrated against real sPHENIX wedges (docs/SIMULATOR.md,
     * "Calibration"): gain, pad_response_cm, shaping_bins, pedestal_adc,
     * cluster_size_max, looper_per_track and looper_cage_fraction were
     * tuned to the data; noise, threshold, gas and diffusion are sPHENIX's
     * design values (Ne:CF4 50:50, SAMPA at 20 mV/fC). */
    c->gain = 150;
    c->diffusion_t_cm = 0.004;
    c->diffusion_l = 0.03;
    c->pad_response_cm = 0.075;
    c->pad_zigzag = 1;
    c->shaping_bins = 1.4;
    c->noise_adc = 1.0;
    c->pedestal_adc = 74;
    c->absorber_radius_cm = 90.0;
    c->electrons_per_cm = 71.5;
    c->clusters_per_cm = 31.5;
    c->cluster_size_max = 2000;
    c->polya_theta = 0.8;
    c->looper_cage_fraction = 0.09;
    c->zs_threshold_adc = 4.0;
    c->zs_presamples = 1;
    c->zs_postsamples = 1;
    c->zs_min_samples = 0;
}

void sim_geometry_init(sim_geometry *g, const bcae_sim_config *cfg)
{
    g->r_inner = cfg->r_inner_cm;
    g->r_outer = cfg->r_outer_cm;
    g->row_height = (cfg->r_outer_cm - cfg->r_inner_cm) / SIM_LAYERS;
    g->half_length = cfg->half_length_cm;
    g->tbin_cm = cfg->half_length_cm / SIM_TBINS;
}

static bcae_status push_particle(sim_particles *ps, const sim_particle *p, bcae_error *err)
{
    if (ps->n == ps->cap) {
        size_t cap = ps->cap ? 2 * ps->cap : 4096;
        sim_particle *v = realloc(ps->v, cap * sizeof *v);
        if (!v) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "simulator: out of memory");
        ps->v = v;
        ps->cap = cap;
    }
    ps->v[ps->n++] = *p;
    return BCAE_OK;
}

/* Species mix of charged hadrons at RHIC: mostly pions. The mass sets the
 * velocity, and so the 1/beta^2 rise of the energy loss at low momentum. */
static double draw_mass(bcae_rng *r)
{
    double u = bcae_rng_uniform(r);
    if (u < 0.80) return 0.13957;
    if (u < 0.92) return 0.49368;
    return 0.93827;
}

/* pT spectrum: p * exp(-p / T) (a Gamma(2) law, mean 2T) with a 2% power-law
 * tail of hard particles, which come out as nearly straight tracks. */
static double draw_pt(bcae_rng *r, double mean)
{
    double t = 0.5 * mean;
    if (bcae_rng_uniform(r) < 0.02) return 1.0 * pow(bcae_rng_uniform_pos(r), -1.0 / 4.0);
    return -t * log(bcae_rng_uniform_pos(r) * bcae_rng_uniform_pos(r));
}

/* Overlap area of two equal discs at distance x (in diameters), as a
 * fraction of one disc: the share of the nucleons that collide. */
static double overlap(double x)
{
    return x >= 1.0 ? 0.0 : 2.0 / PI * (acos(x) - x * sqrt(1.0 - x * x));
}

/* Multiplicity of a minimum-bias collision over the mean of all of them.
 * Every impact parameter up to the nuclear diameter is equally likely per
 * unit area (b^2 uniform) and the multiplicity follows the overlap: most
 * collisions are peripheral and small, a few are central and as large as
 * the triggered one. (The mean of the overlap over b^2 uniform is 1/4.) */
static double minbias_multiplicity(bcae_rng *r)
{
    return 4.0 * overlap(sqrt(bcae_rng_uniform(r)));
}

/* Charged multiplicity at mid-rapidity falls with the centrality c (the
 * fraction of the cross-section more central than the collision) nearly as
 * exp(-c / 0.244) from 0 to 25 % in Au+Au at 200 GeV: PHENIX measures
 * dNch/deta ~ 690, 560, 455, 370, 300 in the classes 0-5 % .. 20-25 %, a
 * factor ~0.815 every 5 %. */
#define CENTRALITY_SCALE 0.244

/* The triggered collision's dndeta: its centrality uniform in the class
 * 0 .. c_max (every impact parameter of it equally likely per unit area),
 * the multiplicity of that centrality, scaled so that the class's mean is
 * `dndeta`. Bounded: a 0-10 % class spans 0.81 to 1.22 times its mean. */
static double triggered_multiplicity(const bcae_sim_config *cfg, bcae_rng *r)
{
    double cmax = cfg->centrality_max, shape = 1.0;
    if (cmax > 0) {
        double mean = CENTRALITY_SCALE / cmax * (1.0 - exp(-cmax / CENTRALITY_SCALE));
        shape = exp(-cmax * bcae_rng_uniform(r) / CENTRALITY_SCALE) / mean;
    }
    double m = cfg->dndeta * shape;
    if (cfg->dndeta_spread > 0) m *= 1.0 + cfg->dndeta_spread * bcae_rng_normal(r);
    return m < 0 ? 0 : m;
}

/* The particles of one collision; `first` numbers them within the event so
 * that each has its own random stream. */
static bcae_status collision(const bcae_sim_config *cfg, uint64_t seed, uint64_t event,
                             int number, double dndeta, double vz, double drift_shift,
                             uint64_t *index, sim_particles *out, int *count, bcae_error *err)
{
    bcae_rng er;
    bcae_rng_seed(&er, bcae_hash3(seed, SIM_STREAM_EVENT, event, 1 + (uint64_t)number));
    int n = bcae_rng_poisson(&er, dndeta * 2.0 * cfg->eta_max);
    for (int i = 0; i < n; i++) {
        bcae_rng r;
        bcae_rng_seed(&r, bcae_hash3(seed, SIM_STREAM_PARTICLE, event, *index));
        sim_particle p = {0};
        p.z0 = vz;
        p.pt = draw_pt(&r, cfg->mean_pt_gev);
        p.eta = cfg->eta_max * (2.0 * bcae_rng_uniform(&r) - 1.0);
        p.phi = 2.0 * PI * bcae_rng_uniform(&r);
        p.mass = draw_mass(&r);
        p.charge = bcae_rng_uniform(&r) < 0.5 ? -1 : 1;
        p.drift_shift = drift_shift;
        /* Curling primaries spiral along z until they leave or range out. */
        p.max_path = 600.0;
        (*index)++;
        bcae_status s = push_particle(out, &p, err);
        if (s) return s;
    }
    *count += n;
    return BCAE_OK;
}

bcae_status sim_generate(const bcae_sim_config *cfg, const sim_geometry *g, uint64_t seed,
                         uint64_t event, sim_particles *out, bcae_sim_event_info *info,
                         bcae_error *err)
{
    bcae_rng r;
    bcae_rng_seed(&r, bcae_hash3(seed, SIM_STREAM_EVENT, event, 0));
    bcae_sim_event_info in = {0};
    out->n = 0;
    uint64_t index = 0;

    /* The triggered collision: its centrality within the class sets the
     * multiplicity. */
    double mult = triggered_multiplicity(cfg, &r);
    in.vertex_z_cm = cfg->vertex_sigma_cm * bcae_rng_normal(&r);
    bcae_status s = collision(cfg, seed, event, 0, mult, in.vertex_z_cm, 0.0, &index, out,
                              &in.primary_tracks, err);
    if (s) return s;

    /* Pile-up: minimum-bias collisions up to one drift time before or after
     * the trigger. Their charge arrives early or late, i.e. shifted along
     * the drift direction, and partly outside the read-out window. */
    in.pileup_collisions = bcae_rng_poisson(&r, cfg->pileup_mean);
    for (int c = 0; c < in.pileup_collisions; c++) {
        double m = cfg->pileup_dndeta * minbias_multiplicity(&r);
        double vz = cfg->vertex_sigma_cm * bcae_rng_normal(&r);
        double shift = g->half_length * (2.0 * bcae_rng_uniform(&r) - 1.0);
        s = collision(cfg, seed, event, 1 + c, m, vz, shift, &index, out, &in.pileup_tracks,
                      err);
        if (s) return s;
    }

    /* Low-momentum electrons (delta rays, Compton electrons, conversions in
     * the gas and the field cage) curl on helices of a few cm and leave
     * dense columns of charge along z. */
    int nprim = in.primary_tracks + in.pileup_tracks;
    in.loopers = bcae_rng_poisson(&r, cfg->looper_per_track * nprim);
    for (int i = 0; i < in.loopers; i++) {
        bcae_rng pr;
        bcae_rng_seed(&pr, bcae_hash3(seed, SIM_STREAM_PARTICLE, event, index));
        sim_particle p = {0};
        /* Born in the gas (uniform in volume), or in the outer field cage
         * just outside the pad rows: Compton and conversion electrons from
         * the photons of pi0 decays and of the calorimeter's backsplash. */
        double rad = bcae_rng_uniform(&pr) < cfg->looper_cage_fraction
                         ? g->r_outer + OUTER_CAGE_GAP_CM
                         : sqrt(20.0 * 20.0 +
                                (g->r_outer * g->r_outer - 20.0 * 20.0) * bcae_rng_uniform(&pr));
        double ang = 2.0 * PI * bcae_rng_uniform(&pr);
        p.x0 = rad * cos(ang);
        p.y0 = rad * sin(ang);
        p.z0 = g->half_length * (2.0 * bcae_rng_uniform(&pr) - 1.0);
        /* Isotropic emission: cos(theta) uniform. */
        double cos_theta = 2.0 * bcae_rng_uniform(&pr) - 1.0;
        if (cos_theta > 0.999) cos_theta = 0.999;
        if (cos_theta < -0.999) cos_theta = -0.999;
        double p_tot = 0.001 + bcae_rng_exponential(&pr, 0.008);
        p.pt = p_tot * sqrt(1.0 - cos_theta * cos_theta);
        p.eta = atanh(cos_theta);
        p.phi = 2.0 * PI * bcae_rng_uniform(&pr);
        p.mass = 0.000511;
        p.charge = -1;
        p.drift_shift = 0.0;
        p.max_path = 40.0 + bcae_rng_exponential(&pr, 40.0);
        p.looper = 1;
        index++;
        s = push_particle(out, &p, err);
        if (s) return s;
    }
    if (info) *info = in;
    return BCAE_OK;
}
