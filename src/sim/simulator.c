/* The simulator object: configuration checks, buffers, and one event. */
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
} sim_knob;

#define KNOB(field, lo, hi, text) {#field, offsetof(bcae_sim_config, field), lo, hi, text}
static const sim_knob KNOBS[] = {
    KNOB(dndeta, 0, 1e5, "charged particles per unit pseudorapidity, triggered collision"),
    KNOB(dndeta_spread, 0, 1, "relative event-to-event spread of dndeta"),
    KNOB(eta_max, 0, 5, "particles are generated in |eta| < eta_max"),
    KNOB(vertex_sigma_cm, 0, 100, "Gaussian z spread of collision vertices, cm"),
    KNOB(pileup_mean, 0, 1000, "mean number of pile-up collisions in the drift window"),
    KNOB(pileup_dndeta, 0, 1e5, "mean dndeta of a pile-up collision (exponential law)"),
    KNOB(mean_pt_gev, 1e-3, 100, "mean transverse momentum, GeV"),
    KNOB(looper_per_track, 0, 100, "low-momentum secondary electrons per charged track"),
    KNOB(bfield_t, 0.01, 10, "solenoid field, T"),
    KNOB(r_inner_cm, 21, 1000, "inner radius of the 16 pad rows, cm"),
    KNOB(r_outer_cm, 21, 1000, "outer radius of the 16 pad rows, cm"),
    KNOB(half_length_cm, 1, 1000, "drift length of one side, cm"),
    KNOB(gain, 0, 1e6, "ADC counts at the pulse peak per pad row of minimum ionisation"),
    KNOB(landau_width, 0, 10, "width of the Landau-like energy-loss fluctuation"),
    KNOB(diffusion_t, 0, 1, "transverse diffusion, pads per sqrt(cm of drift)"),
    KNOB(diffusion_l, 0, 1, "longitudinal diffusion, time bins per sqrt(cm of drift)"),
    KNOB(pad_response, 0.05, 8, "sigma of the pad response function, pads"),
    KNOB(shaping_bins, 0.1, 10, "peaking time of the CR-RC^4 shaper, time bins"),
    KNOB(noise_adc, 0, 64, "sigma of the electronics noise, ADC counts"),
    KNOB(pedestal_adc, -64, 64, "residual pedestal offset, ADC counts"),
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
    }
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
