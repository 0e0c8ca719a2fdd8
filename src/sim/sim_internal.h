/*
 * Internals of the TPC simulator (docs/SIMULATOR.md explains the physics).
 *
 * An event is simulated in three stages:
 *   generator.c  collisions -> charged particles (momentum, species, origin)
 *   transport.c  particles -> helices in the solenoid field -> ionisation
 *                deposits in the 16 pad rows of the outer layer group
 *   readout.c    deposits -> diffusion, pad response, shaping -> ADC with
 *                noise, saturation and zero suppression -> 24 wedges
 * Each stage draws its random numbers from streams keyed by (seed, event,
 * particle...) so that the result does not depend on the thread count.
 */
#ifndef BCAE_SIM_INTERNAL_H
#define BCAE_SIM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "bcae.h"

/* Read-out geometry of the outer layer group over the full azimuth. */
#define SIM_PADS (BCAE_WEDGE_AZIMUTH * BCAE_SIM_SECTORS) /* 2304 */
#define SIM_TBINS BCAE_WEDGE_Z                         /* 249 time bins a side */
#define SIM_LAYERS BCAE_WEDGE_LAYERS

/* Random-stream tags: the second coordinate of bcae_hash3. */
enum {
    SIM_STREAM_EVENT = 1,   /* event-level quantities: vertex, multiplicities */
    SIM_STREAM_PARTICLE,    /* one particle's kinematics */
    SIM_STREAM_IONISATION,  /* one particle's energy-loss fluctuations */
    SIM_STREAM_NOISE        /* electronics noise of one voxel */
};

/* One charged particle leaving its origin. */
typedef struct sim_particle {
    double x0, y0, z0;    /* origin, cm */
    double pt;            /* transverse momentum, GeV */
    double eta;           /* pseudorapidity of the momentum */
    double phi;           /* azimuth of the momentum at the origin */
    double mass;          /* GeV */
    int charge;           /* +1 or -1 */
    double drift_shift;   /* cm added to the drift distance (pile-up timing) */
    double max_path;      /* cm of path after which it is stopped */
    int looper;           /* a low-momentum secondary electron */
} sim_particle;

/* Charge released on one pad row by one step of a particle. */
typedef struct sim_deposit {
    float pad;    /* continuous pad coordinate in [0, SIM_PADS) */
    float tbin;   /* continuous arrival time, in time bins (may lie outside the window) */
    float charge; /* in ADC counts at the pulse peak if it all fell on one pad */
    float sigma_pad;  /* transverse spread (pad response + diffusion), pads */
    float sigma_time; /* longitudinal diffusion, time bins */
    uint8_t layer;
    uint8_t side; /* 0: z < 0, 1: z >= 0 */
} sim_deposit;

typedef struct sim_deposits {
    sim_deposit *v;
    size_t n, cap;
} sim_deposits;

typedef struct sim_particles {
    sim_particle *v;
    size_t n, cap;
} sim_particles;

/* Geometry derived from the configuration. */
typedef struct sim_geometry {
    double r_inner, r_outer, row_height; /* cm */
    double half_length;                  /* cm */
    double tbin_cm;                      /* drift length of one time bin */
} sim_geometry;

void sim_geometry_init(sim_geometry *g, const bcae_sim_config *cfg);

bcae_status sim_generate(const bcae_sim_config *cfg, const sim_geometry *g, uint64_t seed,
                         uint64_t event, sim_particles *out, bcae_sim_event_info *info,
                         bcae_error *err);

/* Appends the deposits of particle number `index` to out. */
bcae_status sim_transport(const bcae_sim_config *cfg, const sim_geometry *g,
                          const sim_particle *p, uint64_t seed, uint64_t event, uint64_t index,
                          sim_deposits *out, bcae_error *err);

/* Renders deposits into the event's analogue signal buffer
 * signal[side][layer][pad][SIM_TMARGIN + tbin] (SIM_SIGNAL_VOXELS floats, any
 * contents),
 * then digitises it into the 24 wedges. `order` is scratch for deps->n
 * indices. `threads` <= 0 means OpenMP's default. */
/* The electronics sample continuously: a wedge is a 249-bin window cut from
 * that stream. Rows of the signal buffer run SIM_TMARGIN bins further on
 * each side so that the zero suppression near the window's edges sees what
 * comes just before and after it (the margin bounds zs_* samples). */
#define SIM_TMARGIN 16
#define SIM_TROW (SIM_TBINS + 2 * SIM_TMARGIN)
#define SIM_SIGNAL_VOXELS ((size_t)2 * SIM_LAYERS * SIM_PADS * SIM_TROW)
void sim_readout(const bcae_sim_config *cfg, const sim_deposits *deps, size_t *order,
                 uint64_t seed, uint64_t event, float *signal, uint16_t *wedges, int threads);

/* The tail weight c of the cluster-size law (transport.c) for a mean size
 * and a largest size; a valid law needs c <= 1. */
double sim_cluster_tail(double mean_size, double max_size);

/* Amplitude of the shaped pulse at time x (time bins) after the arrival;
 * peak 1 at x = peaking time. */
double sim_pulse(double x, double peaking);

#endif
