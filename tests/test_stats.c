/* Wedge statistics (src/metrics/stats.c) on hand-built wedges whose every
 * statistic is worked out by hand below, and the distance between sets. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bcae.h"
#include "check.h"

static size_t at(int az, int z, int l)
{
    return ((size_t)az * BCAE_WEDGE_Z + (size_t)z) * BCAE_WEDGE_LAYERS + (size_t)l;
}

/* Twelve non-zero voxels:
 *   a run along z of 3 at (az 10, z 5..7, layer 0): ADC 64, 100, 1023
 *   a lone voxel at (50, 100, 15): ADC 200
 *   a run across the azimuth of 4 at (20..23, 50, 3): ADC 80
 *   two layers in a row at (30, 30, 7..8): ADC 70
 *   a run of 2 at the wedge's far corner (190..191, 248, 0): ADC 90
 * Runs along z: one of 3 and nine of 1. Runs across the azimuth: (z 5, 6,
 * 7 at az 10), the lone voxel, the two layered ones: six of 1; one of 4,
 * one of 2. Only the lone voxel has no non-zero 6-neighbour. */
static void build(uint16_t *w)
{
    memset(w, 0, BCAE_WEDGE_VOXELS * sizeof *w);
    w[at(10, 5, 0)] = 64;
    w[at(10, 6, 0)] = 100;
    w[at(10, 7, 0)] = 1023;
    w[at(50, 100, 15)] = 200;
    for (int a = 20; a <= 23; a++) w[at(a, 50, 3)] = 80;
    w[at(30, 30, 7)] = 70;
    w[at(30, 30, 8)] = 70;
    w[at(190, 248, 0)] = 90;
    w[at(191, 248, 0)] = 90;
}

static void test_hand_built(void)
{
    uint16_t *w = malloc(BCAE_WEDGE_VOXELS * sizeof *w);
    bcae_stats_acc *acc = malloc(sizeof *acc);
    CHECK(w && acc);
    if (!w || !acc) return;
    build(w);
    bcae_error err;
    bcae_stats st;
    bcae_stats_init(acc);
    CHECK(bcae_stats_add(acc, w, &err) == BCAE_OK);
    CHECK(bcae_stats_finish(acc, &st, &err) == BCAE_OK);
    const double *s = st.scalar;
    const double occ = 12.0 / BCAE_WEDGE_VOXELS;
    CHECK(st.wedges == 1);
    CHECK_NEAR(s[BCAE_STATS_OCCUPANCY_MEAN], occ, 1e-15);
    CHECK_NEAR(s[BCAE_STATS_OCCUPANCY_MIN], occ, 1e-15);
    CHECK_NEAR(s[BCAE_STATS_OCCUPANCY_MAX], occ, 1e-15);
    /* Sorted: 64 70 70 80 80 80 80 90 90 100 200 1023. Nearest rank:
     * median = 6th (80), 90th = 11th (200), 99th = 12th (1023). */
    double mean = (log2(65) + 2 * log2(71) + 4 * log2(81) + 2 * log2(91) + log2(101) +
                   log2(201) + log2(1024)) / 12;
    CHECK_NEAR(s[BCAE_STATS_LOG_MEAN], mean, 1e-12);
    CHECK_NEAR(s[BCAE_STATS_LOG_MEDIAN], log2(81), 1e-12);
    CHECK_NEAR(s[BCAE_STATS_LOG_P90], log2(201), 1e-12);
    CHECK_NEAR(s[BCAE_STATS_LOG_P99], 10.0, 1e-12);
    CHECK_NEAR(s[BCAE_STATS_SATURATED], 1.0 / 12, 1e-15);
    CHECK_NEAR(s[BCAE_STATS_Z_RUN_MEAN], 12.0 / 10, 1e-15);
    CHECK_NEAR(s[BCAE_STATS_Z_RUN_P90], 1.0, 0); /* 9th of ten sorted lengths */
    CHECK_NEAR(s[BCAE_STATS_Z_RUN_ONE], 0.9, 1e-15);
    CHECK_NEAR(s[BCAE_STATS_AZ_RUN_MEAN], 12.0 / 8, 1e-15);
    CHECK_NEAR(s[BCAE_STATS_AZ_RUN_ONE], 6.0 / 8, 1e-15);
    CHECK_NEAR(s[BCAE_STATS_ISOLATED], 1.0 / 12, 1e-15);
    /* Eleven voxels in layers 0..14; only (30, 30, 7) has one above it. */
    CHECK_NEAR(s[BCAE_STATS_NEXT_LAYER], 1.0 / 11, 1e-15);
    CHECK_NEAR(s[BCAE_STATS_LAYER_RATIO], 1.0 / 5, 1e-15);
    /* log2: 6.02 (64), 6.15 (70) -> bin 0; 6.34 (80) -> 1; 6.51 (90), 6.66
     * (100) -> 2; 7.65 (200) -> 6; 10.0 (1023) -> 15, the closed last bin. */
    const double hist[BCAE_STATS_HIST_BINS] = {3, 4, 3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    for (int b = 0; b < BCAE_STATS_HIST_BINS; b++)
        CHECK_MSG(fabs(st.hist[b] - hist[b] / 12) < 1e-15, "bin %d: %g", b, st.hist[b]);
    CHECK(st.below_hist == 0);

    /* An empty wedge: the occupancy's extremes and mean move, nothing else. */
    uint16_t *empty = calloc(BCAE_WEDGE_VOXELS, sizeof *empty);
    bcae_stats_acc *acc2 = malloc(sizeof *acc2), *both = malloc(sizeof *both);
    CHECK(empty && acc2 && both);
    if (empty && acc2 && both) {
        bcae_stats_init(acc2);
        CHECK(bcae_stats_add(acc2, empty, &err) == BCAE_OK);
        bcae_stats two, direct;
        /* Merging accumulators equals adding both wedges to one. */
        *both = *acc;
        bcae_stats_merge(both, acc2);
        CHECK(bcae_stats_finish(both, &two, &err) == BCAE_OK);
        bcae_stats_init(acc2);
        CHECK(bcae_stats_add(acc2, empty, &err) == BCAE_OK);
        CHECK(bcae_stats_add(acc2, w, &err) == BCAE_OK);
        CHECK(bcae_stats_finish(acc2, &direct, &err) == BCAE_OK);
        CHECK(two.wedges == 2 && memcmp(&two, &direct, sizeof two) == 0);
        CHECK_NEAR(two.scalar[BCAE_STATS_OCCUPANCY_MEAN], occ / 2, 1e-15);
        CHECK(two.scalar[BCAE_STATS_OCCUPANCY_MIN] == 0);
        CHECK_NEAR(two.scalar[BCAE_STATS_OCCUPANCY_MAX], occ, 1e-15);
        for (int i = BCAE_STATS_LOG_MEAN; i < BCAE_STATS_SCALARS; i++)
            CHECK_MSG(two.scalar[i] == st.scalar[i], "scalar %d", i);

        /* Only the empty wedge: the scalars of non-zero voxels are undefined. */
        bcae_stats_init(acc2);
        CHECK(bcae_stats_add(acc2, empty, &err) == BCAE_OK);
        CHECK(bcae_stats_finish(acc2, &two, &err) == BCAE_OK);
        CHECK(two.scalar[BCAE_STATS_OCCUPANCY_MEAN] == 0);
        CHECK(isnan(two.scalar[BCAE_STATS_LOG_MEDIAN]) && isnan(two.scalar[BCAE_STATS_Z_RUN_MEAN]));
        CHECK(isnan(two.scalar[BCAE_STATS_LAYER_RATIO]) && isnan(two.hist[0]));
    }

    /* Values below the zero suppression stay out of the histogram. */
    w[at(0, 0, 0)] = 3; /* log2(4) = 2 */
    bcae_stats_init(acc);
    CHECK(bcae_stats_add(acc, w, &err) == BCAE_OK);
    CHECK(bcae_stats_finish(acc, &st, &err) == BCAE_OK);
    CHECK_NEAR(st.below_hist, 1.0 / 13, 1e-15);
    CHECK_NEAR(st.hist[1], 4.0 / 13, 1e-15);

    /* A value over 10 bits is refused and leaves the accumulator alone. */
    w[at(100, 200, 9)] = 1024;
    bcae_stats_init(acc);
    CHECK(bcae_stats_add(acc, w, &err) == BCAE_ERR_RANGE);
    CHECK(strstr(err.message, "1024") && strstr(err.message, "(100, 200, 9)"));
    CHECK(acc->wedges == 0 && acc->adc[64] == 0);
    CHECK(bcae_stats_finish(acc, &st, &err) == BCAE_ERR_INVALID_ARGUMENT);
    free(empty);
    free(acc2);
    free(both);
    free(acc);
    free(w);
}

/* A full wedge: one run per line, whole lines, closed at the wedge's ends. */
static void test_full(void)
{
    uint16_t *w = malloc(BCAE_WEDGE_VOXELS * sizeof *w);
    bcae_stats_acc *acc = malloc(sizeof *acc);
    CHECK(w && acc);
    if (!w || !acc) return;
    for (size_t i = 0; i < BCAE_WEDGE_VOXELS; i++) w[i] = 500;
    bcae_error err;
    bcae_stats st;
    bcae_stats_init(acc);
    CHECK(bcae_stats_add(acc, w, &err) == BCAE_OK);
    CHECK(bcae_stats_finish(acc, &st, &err) == BCAE_OK);
    CHECK(acc->z_runs[BCAE_WEDGE_Z] == BCAE_WEDGE_AZIMUTH * BCAE_WEDGE_LAYERS);
    CHECK(acc->az_runs[BCAE_WEDGE_AZIMUTH] == BCAE_WEDGE_Z * BCAE_WEDGE_LAYERS);
    CHECK(st.scalar[BCAE_STATS_OCCUPANCY_MEAN] == 1);
    CHECK(st.scalar[BCAE_STATS_Z_RUN_MEAN] == BCAE_WEDGE_Z);
    CHECK(st.scalar[BCAE_STATS_Z_RUN_P90] == BCAE_WEDGE_Z);
    CHECK(st.scalar[BCAE_STATS_AZ_RUN_MEAN] == BCAE_WEDGE_AZIMUTH);
    CHECK(st.scalar[BCAE_STATS_Z_RUN_ONE] == 0 && st.scalar[BCAE_STATS_AZ_RUN_ONE] == 0);
    CHECK(st.scalar[BCAE_STATS_ISOLATED] == 0 && st.scalar[BCAE_STATS_SATURATED] == 0);
    CHECK(st.scalar[BCAE_STATS_NEXT_LAYER] == 1 && st.scalar[BCAE_STATS_LAYER_RATIO] == 1);
    CHECK_NEAR(st.scalar[BCAE_STATS_LOG_MEDIAN], log2(501), 1e-12);
    CHECK(st.hist[(int)((log2(501) - 6) / 0.25)] == 1);

    /* Lines broken by a zero every other voxel: all runs of 1. */
    for (size_t i = 0; i < BCAE_WEDGE_VOXELS; i++) {
        size_t a = i / (BCAE_WEDGE_Z * BCAE_WEDGE_LAYERS), z = i / BCAE_WEDGE_LAYERS % BCAE_WEDGE_Z;
        w[i] = (a + z) % 2 ? 0 : 100;
    }
    bcae_stats_init(acc);
    CHECK(bcae_stats_add(acc, w, &err) == BCAE_OK);
    CHECK(bcae_stats_finish(acc, &st, &err) == BCAE_OK);
    CHECK(st.scalar[BCAE_STATS_Z_RUN_MEAN] == 1 && st.scalar[BCAE_STATS_Z_RUN_ONE] == 1);
    CHECK(st.scalar[BCAE_STATS_AZ_RUN_MEAN] == 1 && st.scalar[BCAE_STATS_AZ_RUN_ONE] == 1);
    CHECK(st.scalar[BCAE_STATS_ISOLATED] == 0); /* the layers still touch */
    CHECK(st.scalar[BCAE_STATS_NEXT_LAYER] == 1);
    free(acc);
    free(w);
}

static void test_compare(void)
{
    bcae_stats a, ref;
    memset(&a, 0, sizeof a);
    memset(&ref, 0, sizeof ref);
    for (int i = 0; i < BCAE_STATS_SCALARS; i++) ref.scalar[i] = a.scalar[i] = 0.5;
    /* 10 % off is within; a little more is not. */
    ref.scalar[BCAE_STATS_LOG_MEAN] = 6.0;
    a.scalar[BCAE_STATS_LOG_MEAN] = 6.6;
    ref.scalar[BCAE_STATS_Z_RUN_MEAN] = 5.0;
    a.scalar[BCAE_STATS_Z_RUN_MEAN] = 4.49;
    /* A fraction below 0.02 is judged by 0.002 absolute: 0.0033 vs 0.0013
     * is 154 % off but within; 0.0035 is not. */
    ref.scalar[BCAE_STATS_SATURATED] = 0.0013;
    a.scalar[BCAE_STATS_SATURATED] = 0.0033;
    ref.scalar[BCAE_STATS_ISOLATED] = 0.0001;
    a.scalar[BCAE_STATS_ISOLATED] = 0.0035;
    /* A ratio is no fraction: 10 % even when small. */
    ref.scalar[BCAE_STATS_LAYER_RATIO] = 0.01;
    a.scalar[BCAE_STATS_LAYER_RATIO] = 0.0115;
    a.scalar[BCAE_STATS_AZ_RUN_ONE] = NAN;
    a.hist[0] = 0.6, a.hist[1] = 0.4;
    ref.hist[0] = 0.5, ref.hist[2] = 0.5;
    bcae_stats_distance d;
    bcae_stats_compare(&a, &ref, &d);
    CHECK_NEAR(d.rel[BCAE_STATS_LOG_MEAN], 0.1, 1e-12);
    CHECK(d.within[BCAE_STATS_LOG_MEAN] == 1);
    CHECK_NEAR(d.rel[BCAE_STATS_Z_RUN_MEAN], -0.102, 1e-12);
    CHECK(d.within[BCAE_STATS_Z_RUN_MEAN] == 0);
    CHECK(d.within[BCAE_STATS_SATURATED] == 1 && d.rel[BCAE_STATS_SATURATED] > 1.5);
    CHECK(d.within[BCAE_STATS_ISOLATED] == 0);
    CHECK(d.within[BCAE_STATS_LAYER_RATIO] == 0);
    CHECK(d.within[BCAE_STATS_AZ_RUN_ONE] == -1 && isnan(d.rel[BCAE_STATS_AZ_RUN_ONE]));
    CHECK(d.within[BCAE_STATS_OCCUPANCY_MEAN] == 1 && d.rel[BCAE_STATS_OCCUPANCY_MEAN] == 0);
    /* 0.5 (|0.1| + |0.4| + |0.5|) */
    CHECK_NEAR(d.tvd, 0.5, 1e-15);
    CHECK(d.tvd_within == 0);
    bcae_stats_compare(&ref, &ref, &d);
    CHECK(d.tvd == 0 && d.tvd_within == 1);

    int n = 0, fractions = 0, frac;
    const char *key, *help;
    while (bcae_stats_scalar_info(n, &key, &help, &frac)) {
        CHECK(key && *key && help && *help);
        fractions += frac;
        n++;
    }
    CHECK(n == BCAE_STATS_SCALARS && fractions == 8);
    CHECK(bcae_stats_scalar_info(BCAE_STATS_NEXT_LAYER, &key, NULL, NULL) &&
          !strcmp(key, "next_layer_probability"));
}

int main(void)
{
    test_hand_built();
    test_full();
    test_compare();
    return check_report("test_stats");
}
