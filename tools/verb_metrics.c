/* bcae metrics: compare an original and a reconstructed wedge. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *fp)
{
    fprintf(fp,
            "Usage: bcae metrics ORIGINAL.npy RECONSTRUCTED.npy [--json]\n"
            "Compare two raw-ADC wedges (shape (192, 249, 16), integer values in [0, 1023])\n"
            "in log2(ADC+1) space, as the BCAE papers do (docs/METRICS.md).\n\n"
            "  --json      print one JSON object with the keys occupancy, mse, mae, psnr,\n"
            "              psnr_db, precision, recall (null where a value is NaN or infinite)\n"
            "  -h, --help  show this help\n\n"
            "psnr is the reference's max(x)/RMSE, a plain ratio; psnr_db is 20 log10 of it.\n"
            "precision is NaN when nothing is reconstructed non-zero, recall when the\n"
            "original is empty.\n"
            "Exit status: 0 success, 1 failure (unreadable or invalid wedge), 2 bad usage.\n");
}

/* Why a metric is not a number, for readers of the text output. */
static const char *note(const char *name, double v)
{
    if (isfinite(v)) return "";
    if (!strcmp(name, "psnr") || !strcmp(name, "psnr_db")) {
        if (isnan(v)) return "  (both wedges empty)";
        return v > 0 ? "  (exact reconstruction)" : "  (original is empty)";
    }
    if (!strcmp(name, "precision")) return "  (nothing reconstructed non-zero)";
    if (!strcmp(name, "recall")) return "  (original is empty)";
    return "";
}

static void print_text(const char *orig, const char *recon, const bcae_metrics *m)
{
    printf("original       %s\n", orig);
    printf("reconstructed  %s\n", recon);
    printf("occupancy      %.6f\n", m->occupancy);
    printf("mse            %.6g\n", m->mse);
    printf("mae            %.6g\n", m->mae);
    printf("psnr           %.6g%s\n", m->psnr,
           isfinite(m->psnr) ? "  (max(x)/RMSE, a ratio, as the reference reports it)"
                             : note("psnr", m->psnr));
    printf("psnr_db        %.6g dB%s\n", m->psnr_db, note("psnr_db", m->psnr_db));
    printf("precision      %.6f%s\n", m->precision, note("precision", m->precision));
    printf("recall         %.6f%s\n", m->recall, note("recall", m->recall));
}

static void print_json(const bcae_metrics *m)
{
    const struct {
        const char *key;
        double value;
    } fields[] = {
        {"occupancy", m->occupancy}, {"mse", m->mse},
        {"mae", m->mae},             {"psnr", m->psnr},
        {"psnr_db", m->psnr_db},     {"precision", m->precision},
        {"recall", m->recall},
    };
    putchar('{');
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        printf("%s\"%s\": ", i ? ", " : "", fields[i].key);
        cli_json_number(stdout, fields[i].value);
    }
    printf("}\n");
}

int verb_metrics(int argc, char **argv)
{
    const char *verb = argv[0];
    const char *paths[2];
    int npaths = 0, json = 0, options_done = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!options_done && a[0] == '-' && a[1] != '\0') {
            if (!strcmp(a, "--")) {
                options_done = 1;
            } else if (!strcmp(a, "--json")) {
                json = 1;
            } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
                usage(stdout);
                return CLI_EXIT_OK;
            } else {
                return cli_usage_error(verb, "unknown option '%s'", a);
            }
        } else if (npaths < 2) {
            paths[npaths++] = a;
        } else {
            return cli_usage_error(verb, "too many arguments ('%s')", a);
        }
    }
    if (npaths < 2)
        return cli_usage_error(verb, "expected ORIGINAL.npy and RECONSTRUCTED.npy");

    uint16_t *orig = malloc(BCAE_WEDGE_VOXELS * sizeof *orig);
    uint16_t *recon = malloc(BCAE_WEDGE_VOXELS * sizeof *recon);
    if (!orig || !recon) {
        free(orig);
        free(recon);
        cli_error(verb, "out of memory");
        return CLI_EXIT_FAIL;
    }
    bcae_error err;
    int rc = CLI_EXIT_OK;
    if (bcae_wedge_load(paths[0], orig, &err) != BCAE_OK ||
        bcae_wedge_load(paths[1], recon, &err) != BCAE_OK) {
        rc = cli_fail(verb, &err);
    } else {
        bcae_metrics m;
        bcae_metrics_adc(orig, recon, BCAE_WEDGE_VOXELS, &m);
        if (json)
            print_json(&m);
        else
            print_text(paths[0], paths[1], &m);
        if (fflush(stdout) != 0) {
            cli_error(verb, "cannot write the output");
            rc = CLI_EXIT_FAIL;
        }
    }
    free(orig);
    free(recon);
    return rc;
}
