/* The simulator object: configuration checks, buffers, and one event. */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "sim/sim_internal.h"

struct bcae_simulator {
    bcae_sim_config cfg;
    sim_geometry geo;
    sim_particles particles;
    sim_deposits deposits;
    size_t *order;
    size_t order_cap;
    float *signal;
};

/* Every knob: its name, place, allowed range and meaning. The CLI's
 * --set and the configuration checks both read this table. */
typedef struct sim_knob {
    const char *name;
    size_t offset;
    double min, max;
    const char *help;
    int integer; /* counts: whole numbers only */
} sim_knob;

#define KNOB(field, lo, hi, text) {#field, offsetof(bcae_sim_config, field), lo, hi, text, 0}
#define KNOB_INT(field, lo, hi, text) {#field, offsetof(bcae_sim_config, field), lo, hi, text, 1}
static const sim_knob KNOBS[] = {
    KNOB(dndeta, 0, 1e5, "charged particles per unit pseudorapidity, triggered collision (mean)"),
    KNOB(centrality_max, 0, 1, "trigger: centrality class 0 .. centrality_max (0.1: 0-10 %)"),
    KNOB(dndeta_spread, 0, 1, "extra Gaussian relative spread of dndeta beyond the class"),
    KNOB(eta_max, 0, 5, "particles are generated in |eta| < eta_max"),
    KNOB(vertex_sigma_cm, 0, 100, "Gaussian z spread of collision vertices, cm"),
    KNOB(pileup_mean, 0, 1000, "mean number of pile-up collisions in the drift window"),
    KNOB(pileup_dndeta, 0, 1e5, "mean dndeta of a pile-up (minimum-bias) collision"),
    KNOB(mean_pt_gev, 1e-3, 100, "mean transverse momentum, GeV"),
    KNOB(looper_per_track, 0, 100, "low-momentum secondary electrons per charged track"),
    KNOB(looper_cage_fraction, 0, 1, "share of those born in the outer field cage"),
    KNOB(bfield_t, 0.01, 10, "solenoid field, T"),
    KNOB(r_inner_cm, 21, 1000, "inner radius of the 16 pad rows, cm"),
    KNOB(r_outer_cm, 21, 1000, "outer radius of the 16 pad rows, cm"),
    KNOB(half_length_cm, 1, 1000, "drift length of one side, cm"),
    KNOB(gain, 0, 1e6, "mean ADC above pedestal at the pulse peak (all pads) per MIP pad row"),
    KNOB(diffusion_t_cm, 0, 1, "transverse diffusion, cm per sqrt(cm of drift)"),
    KNOB(diffusion_l, 0, 1, "longitudinal diffusion, time bins per sqrt(cm of drift)"),
    KNOB(pad_response_cm, 0.001, 5, "sigma of the charge cloud at the pads (GEMs), cm"),
    KNOB_INT(pad_zigzag, 0, 1, "1: zigzag pads (charge shared linearly by neighbours), 0: plain"),
    KNOB(shaping_bins, 0.1, 10, "peaking time of the CR-RC^4 shaper, time bins"),
    KNOB(noise_adc, 0, 64, "sigma of the electronics noise, ADC counts"),
    KNOB(pedestal_adc, 0, 512, "pedestal: the ADC value of no signal, kept in the data"),
    KNOB(absorber_radius_cm, 21, 1000, "radius where particles stop (calorimeter), cm"),
    KNOB(electrons_per_cm, 1, 1000, "ionisation electrons per cm of a minimum-ionising track"),
    KNOB(clusters_per_cm, 1, 1000, "primary ionising collisions per cm of a MIP track"),
    KNOB_INT(cluster_size_max, 2, 1e5, "electrons of the largest ionisation cluster"),
    KNOB(polya_theta, 0, 100, "Polya parameter of one electron's GEM avalanche (0: exponential)"),
    KNOB(zs_threshold_adc, 0, 1023, "zero suppression: signal threshold above the pedestal, ADC"),
    KNOB_INT(zs_presamples, 0, 16, "zero suppression: samples kept before a signal"),
    KNOB_INT(zs_postsamples, 0, 16, "zero suppression: samples kept after a signal"),
    KNOB_INT(zs_min_samples, 0, 16, "zero suppression: samples kept from a signal's start"),
};
#define NKNOBS ((int)(sizeof KNOBS / sizeof KNOBS[0]))

static double *knob_ptr(bcae_sim_config *c, int i) { return (double *)((char *)c + KNOBS[i].offset); }

int bcae_sim_knob_info(int i, const char **name, const char **help)
{
    if (i < 0 || i >= NKNOBS) return 0;
    if (name) *name = KNOBS[i].name;
    if (help) *help = KNOBS[i].help;
    return 1;
}

bcae_status bcae_sim_config_get(const bcae_sim_config *cfg, const char *name, double *value,
                                bcae_error *err)
{
    for (int i = 0; i < NKNOBS; i++)
        if (!strcmp(KNOBS[i].name, name)) {
            *value = *knob_ptr((bcae_sim_config *)cfg, i);
            return BCAE_OK;
        }
    return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "simulator: no knob named '%s'", name);
}

bcae_status bcae_sim_config_set(bcae_sim_config *cfg, const char *name, double value,
                                bcae_error *err)
{
    for (int i = 0; i < NKNOBS; i++)
        if (!strcmp(KNOBS[i].name, name)) {
            if (!(value >= KNOBS[i].min && value <= KNOBS[i].max))
                return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                                 "simulator: %s = %g is outside [%g, %g]", name, value,
                                 KNOBS[i].min, KNOBS[i].max);
            if (KNOBS[i].integer && value != floor(value))
                return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                                 "simulator: %s = %g must be a whole number", name, value);
            *knob_ptr(cfg, i) = value;
            return BCAE_OK;
        }
    return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "simulator: no knob named '%s'", name);
}

static bcae_status check_config(const bcae_sim_config *c, bcae_error *err)
{
    for (int i = 0; i < NKNOBS; i++) {
        double v = *knob_ptr((bcae_sim_config *)c, i);
        if (!(v >= KNOBS[i].min && v <= KNOBS[i].max))
            return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                             "simulator: %s = %g is outside [%g, %g]", KNOBS[i].name, v,
                             KNOBS[i].min, KNOBS[i].max);
        if (KNOBS[i].integer && v != floor(v))
            return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                             "simulator: %s = %g must be a whole number", KNOBS[i].name, v);
    }
    if (!(c->electrons_per_cm >= c->clusters_per_cm) ||
        !(sim_cluster_tail(c->electrons_per_cm / c->clusters_per_cm, c->cluster_size_max) <= 1.0))
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                         "simulator: no cluster-size law has a mean of %g electrons "
                         "(electrons_per_cm / clusters_per_cm) with clusters of 1 to %g",
                         c->electrons_per_cm / c->clusters_per_cm, c->cluster_size_max);
    if (!(c->absorber_radius_cm >= c->r_outer_cm))
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                         "simulator: absorber_radius_cm (%g) must be at least r_outer_cm (%g)",
                         c->absorber_radius_cm, c->r_outer_cm);
    if (!(c->r_outer_cm > c->r_inner_cm + 1.0))
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                         "simulator: r_outer_cm (%g) must exceed r_inner_cm (%g) by 1 cm",
                         c->r_outer_cm, c->r_inner_cm);
    return BCAE_OK;
}

bcae_status bcae_simulator_create(const bcae_sim_config *cfg, bcae_simulator **out,
                                  bcae_error *err)
{
    *out = NULL;
    bcae_sim_config def;
    if (!cfg) {
        bcae_sim_config_default(&def);
        cfg = &def;
    }
    bcae_status s = check_config(cfg, err);
    if (s) return s;
    bcae_simulator *sim = calloc(1, sizeof *sim);
    if (!sim) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "simulator: out of memory");
    sim->cfg = *cfg;
    sim_geometry_init(&sim->geo, cfg);
    sim->signal = malloc(SIM_SIGNAL_VOXELS * sizeof *sim->signal);
    if (!sim->signal) {
        bcae_simulator_destroy(sim);
        return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "simulator: out of memory (%zu MB)",
                         SIM_SIGNAL_VOXELS * sizeof(float) >> 20);
    }
    *out = sim;
    return BCAE_OK;
}

void bcae_simulator_destroy(bcae_simulator *sim)
{
    if (!sim) return;
    free(sim->particles.v);
    free(sim->deposits.v);
    free(sim->order);
    free(sim->signal);
    free(sim);
}

bcae_status bcae_simulator_run(bcae_simulator *sim, uint64_t seed, uint64_t event,
                               uint16_t *wedges, int threads, bcae_sim_event_info *info,
                               bcae_error *err)
{
    if (!sim || !wedges)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "simulator: NULL argument");
    bcae_status s = sim_generate(&sim->cfg, &sim->geo, seed, event, &sim->particles, info, err);
    if (s) return s;
    sim->deposits.n = 0;
    for (size_t i = 0; i < sim->particles.n; i++) {
        s = sim_transport(&sim->cfg, &sim->geo, &sim->particles.v[i], seed, event, i,
                          &sim->deposits, err);
        if (s) return s;
    }
    if (sim->order_cap < sim->deposits.n) {
        size_t cap = sim->deposits.n + sim->deposits.n / 2;
        size_t *o = realloc(sim->order, cap * sizeof *o);
        if (!o) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "simulator: out of memory");
        sim->order = o;
        sim->order_cap = cap;
    }
    sim_readout(&sim->cfg, &sim->deposits, sim->order, seed, event, sim->signal, wedges,
                threads);
    return BCAE_OK;
}
