/*
 * Statistics of sets of wedges, to compare simulated data with real data
 * (docs/SIMULATOR.md "Statistics" defines each one).
 *
 * One pass over a wedge in memory order (azimuth, z, layer) gathers every
 * count: a run along z is closed when a zero (or the end of z) follows it on
 * the same (azimuth, layer), a run along the azimuth likewise on the same
 * (z, layer), so that no second pass or transposed copy is needed. Everything
 * kept is an integer count, hence accumulators of disjoint sets of wedges
 * merge exactly and the result does not depend on how the work was split.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "bcae.h"
#include "core/error.h"

typedef struct scalar_info {
    const char *key;
    const char *description;
    int is_fraction;
} scalar_info;

/* In the order of enum bcae_stats_scalar. */
static const scalar_info SCALARS[BCAE_STATS_SCALARS] = {
    {"occupancy_mean", "occupancy (non-zero fraction of a wedge), mean over wedges", 1},
    {"occupancy_min", "occupancy, smallest wedge", 1},
    {"occupancy_max", "occupancy, largest wedge", 1},
    {"log_adc_mean", "log2(ADC+1) of non-zero voxels, mean", 0},
    {"log_adc_median", "log2(ADC+1) of non-zero voxels, median", 0},
    {"log_adc_p90", "log2(ADC+1) of non-zero voxels, 90th percentile", 0},
    {"log_adc_p99", "log2(ADC+1) of non-zero voxels, 99th percentile", 0},
    {"saturated_fraction", "fraction of non-zero voxels at ADC 1023", 1},
    {"z_run_mean", "run length along z (time bins), mean", 0},
    {"z_run_p90", "run length along z, 90th percentile", 0},
    {"z_run_fraction_1", "runs along z of length 1, fraction of runs", 1},
    {"azimuth_run_mean", "run width across azimuth (pads), mean", 0},
    {"azimuth_run_fraction_1", "runs across azimuth of width 1, fraction of runs", 1},
    {"isolated_fraction", "non-zero voxels with no non-zero 6-neighbour, fraction", 1},
    {"next_layer_probability", "P(layer l+1 non-zero | layer l non-zero), same pad and bin", 1},
    {"layer15_over_layer0", "non-zero voxels in layer 15 / in layer 0", 0},
};

int bcae_stats_scalar_info(int i, const char **key, const char **description, int *is_fraction)
{
    if (i < 0 || i >= BCAE_STATS_SCALARS) return 0;
    if (key) *key = SCALARS[i].key;
    if (description) *description = SCALARS[i].description;
    if (is_fraction) *is_fraction = SCALARS[i].is_fraction;
    return 1;
}

void bcae_stats_init(bcae_stats_acc *acc)
{
    memset(acc, 0, sizeof *acc);
    acc->occupancy_min = INFINITY;
    acc->occupancy_max = -INFINITY;
}

enum { AZ = BCAE_WEDGE_AZIMUTH, NZ = BCAE_WEDGE_Z, NL = BCAE_WEDGE_LAYERS };
#define Z_STRIDE ((size_t)NL)
#define AZ_STRIDE ((size_t)NZ * NL)

bcae_status bcae_stats_add(bcae_stats_acc *acc, const uint16_t *adc, bcae_error *err)
{
    /* Checked first so that a bad wedge leaves the accumulator as it was. */
    for (size_t i = 0; i < BCAE_WEDGE_VOXELS; i++)
        if (adc[i] > BCAE_ADC_MAX)
            return bcae_fail(err, BCAE_ERR_RANGE,
                             "stats: value %u at (%zu, %zu, %zu) exceeds %d", (unsigned)adc[i],
                             i / AZ_STRIDE, i / Z_STRIDE % NZ, i % NL, BCAE_ADC_MAX);

    /* Open runs: along z per layer (reset for each azimuth), along the
     * azimuth per (z, layer) (carried from one azimuth to the next). */
    uint16_t zrun[NL] = {0};
    uint16_t azrun[NZ * NL] = {0};
    uint64_t nonzero = 0;

    for (size_t a = 0; a < AZ; a++) {
        for (size_t z = 0; z < NZ; z++) {
            const size_t base = a * AZ_STRIDE + z * Z_STRIDE;
            const uint16_t *v = adc + base;
            for (size_t l = 0; l < NL; l++) {
                uint16_t *ar = &azrun[z * NL + l];
                acc->adc[v[l]]++;
                if (!v[l]) {
                    if (zrun[l]) acc->z_runs[zrun[l]]++, zrun[l] = 0;
                    if (*ar) acc->az_runs[*ar]++, *ar = 0;
                    continue;
                }
                nonzero++;
                zrun[l]++;
                (*ar)++;
                acc->layer_nonzero[l]++;
                if (l + 1 < NL) {
                    acc->layer_pairs_from++;
                    acc->layer_pairs_both += v[l + 1] != 0;
                }
                /* Neighbours outside the wedge count as zero. */
                const size_t i = base + l;
                int lonely = (l == 0 || !adc[i - 1]) && (l + 1 == NL || !adc[i + 1]) &&
                             (z == 0 || !adc[i - Z_STRIDE]) &&
                             (z + 1 == NZ || !adc[i + Z_STRIDE]) &&
                             (a == 0 || !adc[i - AZ_STRIDE]) &&
                             (a + 1 == AZ || !adc[i + AZ_STRIDE]);
                acc->isolated += (uint64_t)lonely;
            }
        }
        /* The end of z closes the runs along z. */
        for (size_t l = 0; l < NL; l++)
            if (zrun[l]) acc->z_runs[zrun[l]]++, zrun[l] = 0;
    }
    /* The last azimuth closes the runs across it. */
    for (size_t i = 0; i < (size_t)NZ * NL; i++)
        if (azrun[i]) acc->az_runs[azrun[i]]++;

    double occ = (double)nonzero / BCAE_WEDGE_VOXELS;
    acc->wedges++;
    acc->occupancy_sum += occ;
    if (occ < acc->occupancy_min) acc->occupancy_min = occ;
    if (occ > acc->occupancy_max) acc->occupancy_max = occ;
    return BCAE_OK;
}

void bcae_stats_merge(bcae_stats_acc *into, const bcae_stats_acc *from)
{
    into->wedges += from->wedges;
    into->occupancy_sum += from->occupancy_sum;
    if (from->occupancy_min < into->occupancy_min) into->occupancy_min = from->occupancy_min;
    if (from->occupancy_max > into->occupancy_max) into->occupancy_max = from->occupancy_max;
    for (int i = 0; i <= BCAE_ADC_MAX; i++) into->adc[i] += from->adc[i];
    for (int i = 0; i <= NZ; i++) into->z_runs[i] += from->z_runs[i];
    for (int i = 0; i <= AZ; i++) into->az_runs[i] += from->az_runs[i];
    into->isolated += from->isolated;
    for (int l = 0; l < NL; l++) into->layer_nonzero[l] += from->layer_nonzero[l];
    into->layer_pairs_from += from->layer_pairs_from;
    into->layer_pairs_both += from->layer_pairs_both;
}

/* Nearest-rank percentile of counts[lo..hi] (total n > 0): the smallest
 * value whose cumulative count reaches ceil(p n). */
static size_t percentile(const uint64_t *counts, size_t lo, size_t hi, uint64_t n, double p)
{
    uint64_t rank = (uint64_t)ceil(p * (double)n);
    if (rank < 1) rank = 1;
    uint64_t cum = 0;
    for (size_t v = lo; v <= hi; v++) {
        cum += counts[v];
        if (cum >= rank) return v;
    }
    return hi;
}

static double ratio(uint64_t a, uint64_t b) { return b ? (double)a / (double)b : NAN; }

/* Mean, 90th percentile and fraction of 1 of run lengths counts[1..max]. */
static void runs(const uint64_t *counts, size_t max, double *mean, double *p90, double *one)
{
    uint64_t n = 0, sum = 0;
    for (size_t len = 1; len <= max; len++) {
        n += counts[len];
        sum += counts[len] * len;
    }
    *mean = ratio(sum, n);
    if (p90) *p90 = n ? (double)percentile(counts, 1, max, n, 0.90) : NAN;
    *one = ratio(counts[1], n);
}

bcae_status bcae_stats_finish(const bcae_stats_acc *acc, bcae_stats *out, bcae_error *err)
{
    if (!acc->wedges) return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "stats: no wedges");
    memset(out, 0, sizeof *out);
    double *s = out->scalar;
    out->wedges = acc->wedges;
    s[BCAE_STATS_OCCUPANCY_MEAN] = acc->occupancy_sum / (double)acc->wedges;
    s[BCAE_STATS_OCCUPANCY_MIN] = acc->occupancy_min;
    s[BCAE_STATS_OCCUPANCY_MAX] = acc->occupancy_max;

    uint64_t nz = 0;
    double log_sum = 0;
    for (int v = 1; v <= BCAE_ADC_MAX; v++) {
        nz += acc->adc[v];
        log_sum += (double)acc->adc[v] * log2(v + 1.0);
        if (!acc->adc[v]) continue;
        /* The bin of log2(v+1); the top edge 10.0 (ADC 1023) closes the last. */
        double x = log2(v + 1.0);
        if (x < BCAE_STATS_HIST_LO) {
            out->below_hist += (double)acc->adc[v];
            continue;
        }
        int b = (int)floor((x - BCAE_STATS_HIST_LO) / BCAE_STATS_HIST_WIDTH);
        if (b > BCAE_STATS_HIST_BINS - 1) b = BCAE_STATS_HIST_BINS - 1;
        out->hist[b] += (double)acc->adc[v];
    }
    for (int b = 0; b < BCAE_STATS_HIST_BINS; b++)
        out->hist[b] = nz ? out->hist[b] / (double)nz : NAN;
    out->below_hist = nz ? out->below_hist / (double)nz : NAN;
    s[BCAE_STATS_LOG_MEAN] = nz ? log_sum / (double)nz : NAN;
    const double pct[3] = {0.5, 0.9, 0.99};
    for (int k = 0; k < 3; k++)
        s[BCAE_STATS_LOG_MEDIAN + k] =
            nz ? log2((double)percentile(acc->adc, 1, BCAE_ADC_MAX, nz, pct[k]) + 1.0) : NAN;
    s[BCAE_STATS_SATURATED] = ratio(acc->adc[BCAE_ADC_MAX], nz);

    runs(acc->z_runs, NZ, &s[BCAE_STATS_Z_RUN_MEAN], &s[BCAE_STATS_Z_RUN_P90],
         &s[BCAE_STATS_Z_RUN_ONE]);
    runs(acc->az_runs, AZ, &s[BCAE_STATS_AZ_RUN_MEAN], NULL, &s[BCAE_STATS_AZ_RUN_ONE]);
    s[BCAE_STATS_ISOLATED] = ratio(acc->isolated, nz);
    s[BCAE_STATS_NEXT_LAYER] = ratio(acc->layer_pairs_both, acc->layer_pairs_from);
    s[BCAE_STATS_LAYER_RATIO] = ratio(acc->layer_nonzero[NL - 1], acc->layer_nonzero[0]);
    return BCAE_OK;
}

void bcae_stats_compare(const bcae_stats *a, const bcae_stats *ref, bcae_stats_distance *d)
{
    for (int i = 0; i < BCAE_STATS_SCALARS; i++) {
        double x = a->scalar[i], r = ref->scalar[i];
        if (isnan(x) || isnan(r)) {
            d->rel[i] = NAN;
            d->within[i] = -1;
            continue;
        }
        d->rel[i] = r != 0 ? (x - r) / fabs(r) : (x == 0 ? 0.0 : copysign(INFINITY, x));
        if (SCALARS[i].is_fraction && r < BCAE_STATS_SMALL_FRACTION)
            d->within[i] = fabs(x - r) <= BCAE_STATS_ABS_TOLERANCE + 1e-12;
        else
            d->within[i] = fabs(x - r) <= BCAE_STATS_REL_TOLERANCE * fabs(r) + 1e-12;
    }
    /* Over the histogram's bins and the part below it: the distance between
     * two distributions of the non-zero voxels. */
    double t = 0.5 * fabs(a->below_hist - ref->below_hist);
    for (int b = 0; b < BCAE_STATS_HIST_BINS; b++) t += 0.5 * fabs(a->hist[b] - ref->hist[b]);
    d->tvd = t;
    d->tvd_within = t <= BCAE_STATS_TVD_TOLERANCE;
}
