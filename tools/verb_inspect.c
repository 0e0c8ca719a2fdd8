/* bcae inspect: what a .npy file holds, whatever its shape or dtype. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum { HIST_MAX_BINS = 40, BAR_WIDTH = 50 };

static void usage(FILE *fp)
{
    fprintf(fp,
            "Usage: bcae inspect FILE.npy [--json]\n"
            "Describe any NumPy .npy file: shape, dtype, occupancy (fraction of non-zero\n"
            "values), the smallest non-zero and the largest value, whether it is a valid\n"
            "wedge, and a histogram of log2(v+1) over its non-zero values.\n\n"
            "  --json      print one JSON object with the keys shape, dtype, occupancy,\n"
            "              nonzero, min_nonzero, max (null when there is no such value)\n"
            "  -h, --help  show this help\n\n"
            "dtype is the NumPy descr of the array as read (native little-endian form).\n"
            "NaN counts as non-zero (as numpy.count_nonzero does) but is left out of\n"
            "min_nonzero and max; the text output counts NaN, infinite and negative\n"
            "values apart from the histogram.\n"
            "Exit status: 0 success, 1 failure (unreadable or malformed file), 2 bad usage.\n");
}

typedef struct npy_stats {
    size_t count;
    size_t nonzero;
    size_t nan;
    size_t negative;
    size_t pos_inf;
    double min_nonzero; /* NaN when there is none */
    double max;         /* NaN when there is none */
    double max_finite;  /* largest finite value, for the histogram's range */
} npy_stats;

static void compute_stats(const bcae_array *a, npy_stats *st)
{
    memset(st, 0, sizeof *st);
    st->count = bcae_array_count(a);
    st->min_nonzero = NAN;
    st->max = NAN;
    st->max_finite = 0;
    for (size_t i = 0; i < st->count; i++) {
        double v = bcae_array_get_f64(a, i);
        if (isnan(v)) {
            st->nan++;
            st->nonzero++;
            continue;
        }
        if (!(v <= st->max)) st->max = v; /* also takes the first value */
        if (isfinite(v) && v > st->max_finite) st->max_finite = v;
        if (v == 0) continue;
        st->nonzero++;
        if (!(v >= st->min_nonzero)) st->min_nonzero = v;
        if (v < 0) st->negative++;
        if (isinf(v) && v > 0) st->pos_inf++;
    }
}

static void print_shape(FILE *fp, const bcae_array *a, int json)
{
    fputc(json ? '[' : '(', fp);
    for (int d = 0; d < a->ndim; d++) fprintf(fp, d ? ", %zu" : "%zu", a->shape[d]);
    if (!json && a->ndim == 1) fputc(',', fp);
    fputc(json ? ']' : ')', fp);
}

static void print_json(const bcae_array *a, const npy_stats *st)
{
    printf("{\"shape\": ");
    print_shape(stdout, a, 1);
    printf(", \"dtype\": \"%s\", \"occupancy\": ", bcae_dtype_name(a->dtype));
    cli_json_number(stdout, st->count ? (double)st->nonzero / (double)st->count : NAN);
    printf(", \"nonzero\": %zu, \"min_nonzero\": ", st->nonzero);
    cli_json_number(stdout, st->min_nonzero);
    printf(", \"max\": ");
    cli_json_number(stdout, st->max);
    printf("}\n");
}

static void print_wedge_check(const char *path, const bcae_array *a)
{
    if (a->ndim != 3 || a->shape[0] != BCAE_WEDGE_AZIMUTH || a->shape[1] != BCAE_WEDGE_Z ||
        a->shape[2] != BCAE_WEDGE_LAYERS) {
        printf("wedge         no (a wedge has shape (%d, %d, %d))\n", BCAE_WEDGE_AZIMUTH,
               BCAE_WEDGE_Z, BCAE_WEDGE_LAYERS);
        return;
    }
    uint16_t *adc = malloc(BCAE_WEDGE_VOXELS * sizeof *adc);
    if (!adc) {
        printf("wedge         not checked (out of memory)\n");
        return;
    }
    bcae_error err;
    if (bcae_wedge_from_array(a, path, adc, &err) == BCAE_OK)
        printf("wedge         yes (%d, %d, %d), values in [0, %d]\n", BCAE_WEDGE_AZIMUTH,
               BCAE_WEDGE_Z, BCAE_WEDGE_LAYERS, BCAE_ADC_MAX);
    else
        printf("wedge         no: %s\n", err.message);
    free(adc);
}

/* Bins of log2(v+1) for the finite positive values. Half-unit bins over
 * [0, 10] show a 10-bit ADC wedge's shape (the zero-suppression gap below
 * log2(65) ~ 6.0); wider data stretches the range, with fewer, wider bins
 * once half units would make too many. */
static void print_histogram(const bcae_array *a, const npy_stats *st)
{
    size_t positive = st->nonzero - st->nan - st->negative - st->pos_inf;
    if (positive == 0) {
        printf("histogram     no finite positive values\n");
    } else {
        double hi = fmax(10.0, ceil(log2(st->max_finite + 1.0)));
        double width = 0.5;
        int nbins = (int)ceil(hi / width);
        if (nbins > HIST_MAX_BINS) {
            nbins = HIST_MAX_BINS / 2;
            width = hi / nbins;
        }
        size_t bins[HIST_MAX_BINS] = {0};
        for (size_t i = 0; i < st->count; i++) {
            double v = bcae_array_get_f64(a, i);
            if (!(v > 0) || isinf(v)) continue;
            int b = (int)(log2(v + 1.0) / width);
            bins[b < nbins ? b : nbins - 1]++;
        }
        size_t peak = 0;
        for (int b = 0; b < nbins; b++) peak = bins[b] > peak ? bins[b] : peak;
        printf("histogram of log2(v+1) over the %zu positive values:\n", positive);
        for (int b = 0; b < nbins; b++) {
            /* Round up so that a bin with any count shows at least one mark. */
            size_t marks = (bins[b] * BAR_WIDTH + peak - 1) / peak;
            printf("  [%5.2f, %5.2f) %10zu", b * width, (b + 1) * width, bins[b]);
            if (marks) fputs("  ", stdout);
            for (size_t k = 0; k < marks; k++) putchar('#');
            putchar('\n');
        }
    }
    if (st->negative) printf("  negative values (not in the histogram): %zu\n", st->negative);
    if (st->pos_inf) printf("  +inf values (not in the histogram): %zu\n", st->pos_inf);
    if (st->nan) printf("  NaN values (not in the histogram): %zu\n", st->nan);
}

static void print_text(const char *path, const bcae_array *a, const npy_stats *st)
{
    printf("file          %s\n", path);
    printf("shape         ");
    print_shape(stdout, a, 0);
    printf("\ndtype         %s\n", bcae_dtype_name(a->dtype));
    printf("elements      %zu\n", st->count);
    printf("nonzero       %zu\n", st->nonzero);
    if (st->count)
        printf("occupancy     %.6f\n", (double)st->nonzero / (double)st->count);
    else
        printf("occupancy     none (empty array)\n");
    if (isnan(st->min_nonzero))
        printf("min_nonzero   none\n");
    else
        printf("min_nonzero   %.9g\n", st->min_nonzero);
    if (isnan(st->max))
        printf("max           none\n");
    else
        printf("max           %.9g\n", st->max);
    print_wedge_check(path, a);
    print_histogram(a, st);
}

int verb_inspect(int argc, char **argv)
{
    const char *verb = argv[0];
    const char *path = NULL;
    int json = 0, options_done = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!options_done && arg[0] == '-' && arg[1] != '\0') {
            if (!strcmp(arg, "--")) {
                options_done = 1;
            } else if (!strcmp(arg, "--json")) {
                json = 1;
            } else if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
                usage(stdout);
                return CLI_EXIT_OK;
            } else {
                return cli_usage_error(verb, "unknown option '%s'", arg);
            }
        } else if (!path) {
            path = arg;
        } else {
            return cli_usage_error(verb, "too many arguments ('%s')", arg);
        }
    }
    if (!path) return cli_usage_error(verb, "expected FILE.npy");

    bcae_array a;
    bcae_error err;
    if (bcae_npy_read(path, &a, &err) != BCAE_OK) return cli_fail(verb, &err);
    npy_stats st;
    compute_stats(&a, &st);
    if (json)
        print_json(&a, &st);
    else
        print_text(path, &a, &st);
    bcae_array_free(&a);
    if (fflush(stdout) != 0) {
        cli_error(verb, "cannot write the output");
        return CLI_EXIT_FAIL;
    }
    return CLI_EXIT_OK;
}
