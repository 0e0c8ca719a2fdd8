/* bcae threshold: choose the classifier's threshold on validation data and
 * store it in the model's metadata. */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *fp)
{
    fprintf(fp,
            "Usage: bcae threshold [--model MODEL.safetensors] --data DIR [--write OUT] [OPTIONS]\n"
            "       bcae threshold [--model MODEL.safetensors] --set H --write OUT\n"
            "Run a dataset split through the model (fp16 code, as compress stores it) and\n"
            "report the classifier's precision and recall at a range of thresholds h (a voxel\n"
            "is reconstructed as a hit where the classifier's probability exceeds h), pooled\n"
            "over the voxels of the split. The rule: the break-even threshold, where the\n"
            "voxels called hits are as many as the true hits, so precision equals recall and\n"
            "the reconstruction keeps the wedges' occupancy. Choose it on validation data\n"
            "(not the wedges you report on): e.g. a dataset simulated with another seed.\n"
            "With --write, the model is written to OUT with that threshold (or --set H) in\n"
            "its metadata (clf_threshold); its weights and fingerprint are unchanged.\n"
            "\n"
            "Options:\n"
            "  -m, --model FILE      weights (safetensors; default: the shipped model)\n"
            "  -d, --data DIR        dataset (DIR/<split>.txt or DIR/outer/<split>.txt)\n"
            "      --split NAME      manifest to read (default test)\n"
            "  -n, --limit N         only the first N wedges\n"
            "      --bins K          resolution of the threshold: K equal bins of [0, 1]\n"
            "                        (default 1000)\n"
            "      --set H           write H instead of searching (0 < H < 1; no --data)\n"
            "  -o, --write OUT       the model with the chosen threshold (atomic; may be the\n"
            "                        model itself)\n"
            "      --json            one JSON object on stdout instead of the table\n"
            CLI_PRECISION_HELP
            "  -b, --batch B         wedges per pass (default 4)\n"
            "  -t, --threads N       threads (BCAE_NUM_THREADS or all cores)\n"
            CLI_DECODER_PRECISION_HELP
            CLI_DEVICE_HELP
            "  -q, --quiet           no progress on stderr\n"
            "  -h, --help\n");
}

static void print_json(const uint64_t *hits, const uint64_t *all, size_t nbins, size_t n,
                       double current, size_t best)
{
    double p, r;
    uint64_t voxels = 0, positives = 0;
    for (size_t b = 0; b < nbins; b++) {
        voxels += all[b];
        positives += hits[b];
    }
    printf("{\"wedges\": %zu, \"voxels\": %llu, \"hits\": %llu, \"bins\": %zu", n,
           (unsigned long long)voxels, (unsigned long long)positives, nbins);
    bcae_classifier_rates(hits, all, nbins, (size_t)lround(current * (double)nbins), &p, &r);
    printf(", \"current\": {\"threshold\": %g, \"precision\": ", current);
    cli_json_number(stdout, p);
    printf(", \"recall\": ");
    cli_json_number(stdout, r);
    bcae_classifier_rates(hits, all, nbins, best, &p, &r);
    printf("}, \"breakeven\": {\"threshold\": %g, \"precision\": ", (double)best / (double)nbins);
    cli_json_number(stdout, p);
    printf(", \"recall\": ");
    cli_json_number(stdout, r);
    printf("}}\n");
}

static void print_table(const uint64_t *hits, const uint64_t *all, size_t nbins, size_t n,
                        double current, size_t best)
{
    uint64_t voxels = 0, positives = 0;
    for (size_t b = 0; b < nbins; b++) {
        voxels += all[b];
        positives += hits[b];
    }
    printf("wedges          %zu (%llu voxels, occupancy %.4f)\n", n, (unsigned long long)voxels,
           voxels ? (double)positives / (double)voxels : 0.0);
    printf("%-12s %10s %10s %12s\n", "threshold", "precision", "recall", "called/true");
    for (int i = 1; i <= 9; i++) {
        size_t k = (size_t)lround(i * 0.1 * (double)nbins);
        double p, r;
        bcae_classifier_rates(hits, all, nbins, k, &p, &r);
        const char *mark = fabs((double)k / (double)nbins - current) < 0.5 / (double)nbins
                               ? "  (the model's)"
                               : "";
        printf("%-12.3f %10.4f %10.4f %12.4f%s\n", (double)k / (double)nbins, p, r, p > 0 ? r / p : 0.0,
               mark);
    }
    double p, r;
    bcae_classifier_rates(hits, all, nbins, best, &p, &r);
    printf("break-even   %.4f: precision %.4f, recall %.4f\n", (double)best / (double)nbins, p, r);
}

int verb_threshold(int argc, char **argv)
{
    const char *verb = "threshold";
    const char *data = NULL, *split = "test", *out = NULL;
    long limit = 0, nbins = 1000;
    double set = 0;
    int json = 0;
    cli_codec_args ca;
    cli_codec_args_init(&ca);
    enum { O_SPLIT = 256, O_BINS, O_SET, O_JSON };
    static const struct option opts[] = {
        CLI_CODEC_LONG_OPTIONS,
        CLI_DECODER_PRECISION_LONG_OPTIONS,
        CLI_PRECISION_LONG_OPTIONS,
        {"data", required_argument, 0, 'd'},
        {"split", required_argument, 0, O_SPLIT},
        {"limit", required_argument, 0, 'n'},
        {"bins", required_argument, 0, O_BINS},
        {"set", required_argument, 0, O_SET},
        {"write", required_argument, 0, 'o'},
        {"json", no_argument, 0, O_JSON},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":m:d:n:o:b:t:p:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case O_SPLIT: split = optarg; break;
        case 'n':
            if (cli_parse_long(verb, "--limit", optarg, 1, 100000000, &limit)) return CLI_EXIT_USAGE;
            break;
        case O_BINS:
            if (cli_parse_long(verb, "--bins", optarg, 2, 1000000, &nbins)) return CLI_EXIT_USAGE;
            break;
        case O_SET:
            if (cli_parse_double(verb, "--set", optarg, 0, 1, &set)) return CLI_EXIT_USAGE;
            if (!(set > 0 && set < 1)) return cli_usage_error(verb, "--set must be in (0, 1)");
            break;
        case 'o': out = optarg; break;
        case O_JSON: json = 1; break;
        case 'h': usage(stdout); return CLI_EXIT_OK;
        case ':': return cli_usage_error(verb, "option '%s' needs a value", argv[optind - 1]);
        default: {
            int r = cli_codec_option(verb, c, optarg, &ca);
            if (r < 0) return CLI_EXIT_USAGE;
            if (!r) return cli_usage_error(verb, "unknown option '%s'", argv[optind - 1]);
        }
        }
    }
    if (optind < argc) return cli_usage_error(verb, "unexpected argument '%s'", argv[optind]);
    if (set > 0 && data) return cli_usage_error(verb, "--set writes a given threshold: no --data");
    if (set > 0 && !out) return cli_usage_error(verb, "--set needs --write OUT");
    if (!set && !data) return cli_usage_error(verb, "--data DIR is required (or --set H)");
    bcae_codec_options opt;
    int setup = cli_codec_setup(verb, &ca, &opt);
    if (setup) return setup;

    bcae_error err;
    bcae_model *model = NULL;
    bcae_codec *codec = NULL;
    bcae_dataset *ds = NULL;
    uint16_t *adc = NULL;
    uint64_t *hits = NULL, *all = NULL;
    int rc = CLI_EXIT_FAIL;
    if (bcae_model_load(ca.model_path, &model, &err)) {
        cli_fail(verb, &err);
        goto done;
    }
    double current = bcae_model_threshold(model), chosen = set;
    if (!set) {
        if (bcae_dataset_open(data, split, &ds, &err) || bcae_codec_create(model, &opt, &codec, &err)) {
            cli_fail(verb, &err);
            goto done;
        }
        size_t n = bcae_dataset_size(ds);
        if (limit > 0 && (size_t)limit < n) n = (size_t)limit;
        if (n == 0) {
            cli_error(verb, "%s: split '%s' has no wedges", data, split);
            goto done;
        }
        const size_t V = BCAE_WEDGE_VOXELS, B = (size_t)ca.batch;
        adc = malloc(B * V * sizeof *adc);
        hits = calloc((size_t)nbins, sizeof *hits);
        all = calloc((size_t)nbins, sizeof *all);
        if (!adc || !hits || !all) {
            cli_error(verb, "out of memory");
            goto done;
        }
        cli_progress prog;
        cli_progress_start(&prog, "threshold", "wedges", n, ca.quiet || json);
        for (size_t w0 = 0; w0 < n; w0 += B) {
            size_t nb = n - w0 < B ? n - w0 : B;
            for (size_t i = 0; i < nb; i++)
                if (bcae_dataset_load(ds, w0 + i, adc + i * V, &err)) {
                    cli_fail(verb, &err);
                    goto done;
                }
            if (bcae_classifier_histogram(codec, adc, nb, hits, all, (size_t)nbins, &err)) {
                cli_fail(verb, &err);
                goto done;
            }
            cli_progress_update(&prog, w0 + nb, NULL);
        }
        cli_progress_finish(&prog, n);
        size_t best = bcae_classifier_breakeven(hits, all, (size_t)nbins);
        chosen = (double)best / (double)nbins;
        if (json)
            print_json(hits, all, (size_t)nbins, n, current, best);
        else
            print_table(hits, all, (size_t)nbins, n, current, best);
    }
    if (out) {
        if (bcae_model_set_threshold(model, (float)chosen, &err) ||
            bcae_model_save(model, out, &err)) {
            cli_fail(verb, &err);
            goto done;
        }
        if (!json) printf("written         %s (clf_threshold %g, was %g)\n", out, chosen, current);
    }
    rc = CLI_EXIT_OK;
done:
    free(adc);
    free(hits);
    free(all);
    bcae_dataset_close(ds);
    bcae_codec_free(codec);
    bcae_model_free(model);
    return rc;
}
