/* The TPC simulator: single-particle physics, determinism, sample statistics. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "sim/sim_internal.h"

#define PI 3.14159265358979323846

static sim_deposits transport_one(const bcae_sim_config *cfg, sim_particle p)
{
    sim_geometry g;
    sim_geometry_init(&g, cfg);
    sim_deposits d = {0};
    bcae_error err;
    CHECK(sim_transport(cfg, &g, &p, 1, 0, 0, &d, &err) == BCAE_OK);
    return d;
}

static void test_single_tracks(void)
{
    bcae_sim_config cfg;
    bcae_sim_config_default(&cfg);
    sim_particle p = {0};
    p.pt = 20.0; /* nearly straight */
    p.eta = 0.0;
    p.phi = 0.3;
    p.mass = 0.13957;
    p.charge = 1;
    p.max_path = 600;
    sim_deposits d = transport_one(&cfg, p);
    int layers[SIM_LAYERS] = {0};
    double charge[SIM_LAYERS] = {0};
    /* A circle through the axis sits at azimuth phi0 - asin(r / 2R) at
     * radius r for a positive charge: the sagitta of a 20 GeV track is still
     * 2-3 pads here. */
    double radius = 333.5641 * p.pt / cfg.bfield_t;
    double pad_in = (0.3 - asin(cfg.r_inner_cm / (2 * radius))) / (2 * PI) * SIM_PADS;
    double pad_out = (0.3 - asin(cfg.r_outer_cm / (2 * radius))) / (2 * PI) * SIM_PADS;
    CHECK(pad_in - pad_out > 0.5);
    for (size_t i = 0; i < d.n; i++) {
        layers[d.v[i].layer]++;
        charge[d.v[i].layer] += d.v[i].charge;
        CHECK(d.v[i].pad <= pad_in + 0.01 && d.v[i].pad >= pad_out - 0.01);
        if (i) CHECK(d.v[i].pad < d.v[i - 1].pad);
        CHECK(d.v[i].side == 1);
        /* At eta = 0 from z = 0 the charge drifts the whole half length. */
        CHECK_NEAR(d.v[i].tbin, SIM_TBINS, 0.5);
    }
    double total = 0;
    for (int l = 0; l < SIM_LAYERS; l++) {
        CHECK_MSG(layers[l] >= 4, "layer %d has %d deposits", l, layers[l]);
        total += charge[l];
    }
    /* Mean charge per pad row ~ gain for a minimum-ionising crossing. */
    CHECK_NEAR(total / SIM_LAYERS / cfg.gain, 1.0, 0.35);
    free(d.v);

    /* Below pT = 0.3 B r / 2 the helix never reaches the pad rows. */
    p.pt = 0.9 * 0.003 * cfg.bfield_t * cfg.r_inner_cm / 2.0;
    d = transport_one(&cfg, p);
    CHECK(d.n == 0);
    free(d.v);

    /* Opposite charges bend opposite ways; positive clockwise seen from +z. */
    p.pt = 0.4;
    p.phi = 1.0;
    double last_pad[2];
    for (int q = 0; q < 2; q++) {
        p.charge = q ? 1 : -1;
        d = transport_one(&cfg, p);
        CHECK(d.n > 0);
        last_pad[q] = d.n ? d.v[d.n - 1].pad : 0;
        free(d.v);
    }
    double straight = 1.0 / (2 * PI) * SIM_PADS;
    CHECK(last_pad[1] < straight - 5); /* clockwise: azimuth decreases */
    CHECK(last_pad[0] > straight + 5);

    /* A dipping track lands on the z < 0 side with a shorter drift. */
    p.pt = 5.0;
    p.charge = 1;
    p.eta = -0.8;
    p.z0 = 0.0;
    d = transport_one(&cfg, p);
    CHECK(d.n > 0);
    for (size_t i = 0; i < d.n; i++) {
        CHECK(d.v[i].side == 0);
        CHECK(d.v[i].tbin < SIM_TBINS - 60);
    }
    free(d.v);

    /* The shaper peaks at its peaking time with height 1. */
    CHECK_NEAR(sim_pulse(2.4, 2.4), 1.0, 1e-12);
    CHECK(sim_pulse(2.0, 2.4) < 1.0 && sim_pulse(2.8, 2.4) < 1.0);
    CHECK(sim_pulse(-1.0, 2.4) == 0.0);
}

static void test_config(void)
{
    bcae_sim_config cfg;
    bcae_sim_config_default(&cfg);
    bcae_error err;
    CHECK(bcae_sim_config_set(&cfg, "gain", 900, &err) == BCAE_OK && cfg.gain == 900);
    CHECK(bcae_sim_config_set(&cfg, "gain", -1, &err) == BCAE_ERR_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "gain") != NULL);
    CHECK(bcae_sim_config_set(&cfg, "nonsense", 1, &err) == BCAE_ERR_INVALID_ARGUMENT);
    double v = 0;
    CHECK(bcae_sim_config_get(&cfg, "bfield_t", &v, &err) == BCAE_OK && v == 1.4);
    cfg.r_outer_cm = cfg.r_inner_cm;
    bcae_simulator *sim = NULL;
    CHECK(bcae_simulator_create(&cfg, &sim, &err) == BCAE_ERR_INVALID_ARGUMENT && !sim);
    cfg.r_outer_cm = 77;
    cfg.noise_adc = NAN;
    CHECK(bcae_simulator_create(&cfg, &sim, &err) == BCAE_ERR_INVALID_ARGUMENT && !sim);
    int n = 0;
    while (bcae_sim_knob_info(n, NULL, NULL)) n++;
    CHECK(n >= 20);
}

static void test_events(void)
{
    const size_t n = (size_t)BCAE_SIM_WEDGES_PER_EVENT * BCAE_WEDGE_VOXELS;
    uint16_t *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    bcae_simulator *sim = NULL;
    bcae_error err;
    CHECK(a && b);
    CHECK(bcae_simulator_create(NULL, &sim, &err) == BCAE_OK);
    if (!a || !b || !sim) return;

    /* Determinism: same seed and event, 1 or 2 threads, same bytes. */
    bcae_sim_event_info ia, ib;
    CHECK(bcae_simulator_run(sim, 5, 3, a, 1, &ia, &err) == BCAE_OK);
    CHECK(bcae_simulator_run(sim, 5, 3, b, 2, &ib, &err) == BCAE_OK);
    CHECK(memcmp(a, b, n * sizeof *a) == 0);
    CHECK(ia.primary_tracks == ib.primary_tracks && ia.loopers == ib.loopers);
    CHECK(bcae_simulator_run(sim, 6, 3, b, 2, &ib, &err) == BCAE_OK);
    CHECK(memcmp(a, b, n * sizeof *a) != 0);

    /* Statistics over a few events. */
    double occ_sum = 0, occ_min = 1, occ_max = 0;
    uint64_t nz = 0, sat = 0, below_threshold = 0, near_edge = 0, over = 0;
    int wedges = 0;
    for (uint64_t ev = 0; ev < 4; ev++) {
        CHECK(bcae_simulator_run(sim, 11, ev, a, 0, &ia, &err) == BCAE_OK);
        CHECK(ia.primary_tracks > 1000);
        for (int w = 0; w < BCAE_SIM_WEDGES_PER_EVENT; w++) {
            const uint16_t *v = a + (size_t)w * BCAE_WEDGE_VOXELS;
            uint64_t c = 0;
            for (size_t i = 0; i < BCAE_WEDGE_VOXELS; i++) {
                if (!v[i]) continue;
                c++;
                if (v[i] < BCAE_ZERO_SUPPRESSION) below_threshold++;
                if (v[i] > BCAE_ADC_MAX) over++;
                if (v[i] == BCAE_ADC_MAX) sat++;
                if (v[i] < 91) near_edge++; /* log2(ADC+1) in [6, 6.5) */
            }
            double o = (double)c / BCAE_WEDGE_VOXELS;
            occ_sum += o;
            if (o < occ_min) occ_min = o;
            if (o > occ_max) occ_max = o;
            nz += c;
            wedges++;
        }
    }
    double occ = occ_sum / wedges;
    printf("occupancy mean %.4f min %.4f max %.4f, saturated %.4f, [6,6.5) %.4f\n", occ, occ_min,
           occ_max, (double)sat / nz, (double)near_edge / nz);
    CHECK(occ > 0.06 && occ < 0.16);          /* ~10.8% on average */
    CHECK(occ_max - occ_min > 0.02);          /* wedges differ */
    CHECK(occ_min > 0.01 && occ_max < 0.4);
    CHECK(below_threshold == 0 && over == 0); /* zero suppression, 10 bits */
    CHECK(sat > 0 && (double)sat / nz < 0.1); /* saturation happens, rarely */
    /* The sharp edge at log2(ADC+1) = 6: the first half-unit above it is
     * well populated, as in the paper's Figure 3. */
    CHECK((double)near_edge / nz > 0.08);

    bcae_simulator_destroy(sim);
    free(a);
    free(b);
}

int main(void)
{
    test_single_tracks();
    test_config();
    test_events();
    return check_report("test_sim");
}
