/* bcae eval: compress and decompress a dataset split in memory; report metrics. */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *fp)
{
    fprintf(fp,
            "Usage: bcae eval [--model MODEL.safetensors] --data DIR [OPTIONS]\n"
            "Encode every wedge of a dataset split to fp16 codes, decode them, and report the\n"
            "metrics of SPEC section 5 in log2(ADC+1) space against the originals (means over\n"
            "wedges), the compression ratio (wedge voxels / code elements, both 16-bit) and\n"
            "the encoder's throughput (wedges/s of bcae_encode, data already in memory).\n"
            "The encoder runs in fp32 unless --precision says otherwise.\n"
            "\n"
            "Options:\n"
            "  -m, --model FILE      weights (safetensors; default: the shipped model)\n"
            "  -d, --data DIR        dataset (DIR/<split>.txt or DIR/outer/<split>.txt)\n"
            "      --split NAME      manifest to read (default test)\n"
            "  -n, --limit N         only the first N wedges\n"
            "      --csv FILE        per-wedge metrics: path,occupancy,mse,mae,psnr,precision,\n"
            "                        recall,psnr_db\n"
            "      --json            one JSON object on stdout instead of the table\n"
            CLI_PRECISION_HELP
            "  -b, --batch B         wedges per pass (default 4)\n"
            "  -t, --threads N       threads (BCAE_NUM_THREADS or all cores)\n"
            CLI_DEVICE_HELP
            "  -q, --quiet           no progress on stderr\n"
            "  -h, --help\n");
}

int verb_eval(int argc, char **argv)
{
    const char *verb = "eval";
    const char *data = NULL, *split = "test", *csv_path = NULL;
    long limit = 0;
    int json = 0;
    cli_codec_args ca;
    cli_codec_args_init(&ca);
    enum { O_SPLIT = 256, O_CSV, O_JSON };
    static const struct option opts[] = {
        CLI_CODEC_LONG_OPTIONS,
        CLI_PRECISION_LONG_OPTIONS,
        {"data", required_argument, 0, 'd'},
        {"split", required_argument, 0, O_SPLIT},
        {"limit", required_argument, 0, 'n'},
        {"csv", required_argument, 0, O_CSV},
        {"json", no_argument, 0, O_JSON},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":m:d:n:b:t:p:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case O_SPLIT: split = optarg; break;
        case 'n':
            if (cli_parse_long(verb, "--limit", optarg, 1, 100000000, &limit)) return CLI_EXIT_USAGE;
            break;
        case O_CSV: csv_path = optarg; break;
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
    if (!data) return cli_usage_error(verb, "--data DIR is required");
    bcae_codec_options opt;
    int setup = cli_codec_setup(verb, &ca, &opt);
    if (setup) return setup;

    bcae_error err;
    bcae_model *model = NULL;
    bcae_codec *codec = NULL;
    bcae_dataset *ds = NULL;
    uint16_t *adc = NULL, *codes = NULL;
    float *x = NULL, *lg = NULL;
    bcae_atomic_file csv = {0};
    int have_csv = 0, rc = CLI_EXIT_FAIL;
    if (bcae_model_load(ca.model_path, &model, &err) || bcae_dataset_open(data, split, &ds, &err) ||
        bcae_codec_create(model, &opt, &codec, &err)) {
        cli_fail(verb, &err);
        goto done;
    }
    size_t n = bcae_dataset_size(ds);
    if (limit > 0 && (size_t)limit < n) n = (size_t)limit;
    const size_t V = BCAE_WEDGE_VOXELS, C = bcae_model_code_elements(model), B = (size_t)ca.batch;
    adc = malloc(B * V * sizeof *adc);
    codes = malloc(B * C * sizeof *codes);
    x = malloc(V * sizeof *x);
    lg = malloc(B * V * sizeof *lg);
    if (!adc || !codes || !x || !lg) {
        cli_error(verb, "out of memory");
        goto done;
    }
    if (csv_path) {
        if (bcae_atomic_open(&csv, csv_path, &err)) {
            cli_fail(verb, &err);
            goto done;
        }
        have_csv = 1;
        fprintf(csv.fp, "path,occupancy,mse,mae,psnr,precision,recall,psnr_db\n");
    }
    bcae_metrics sum = {0};
    size_t counted[7] = {0};
    double encode_s = 0;
    cli_progress prog;
    cli_progress_start(&prog, "eval", "wedges", n, ca.quiet || json);
    for (size_t w0 = 0; w0 < n; w0 += B) {
        size_t nb = n - w0 < B ? n - w0 : B;
        for (size_t i = 0; i < nb; i++)
            if (bcae_dataset_load(ds, w0 + i, adc + i * V, &err)) {
                cli_fail(verb, &err);
                goto done;
            }
        double t0 = cli_now();
        if (bcae_encode(codec, adc, nb, codes, &err)) {
            cli_fail(verb, &err);
            goto done;
        }
        encode_s += cli_now() - t0;
        if (bcae_decode(codec, codes, nb, NULL, lg, &err)) {
            cli_fail(verb, &err);
            goto done;
        }
        for (size_t i = 0; i < nb; i++) {
            for (size_t k = 0; k < V; k++) x[k] = (float)log2(adc[i * V + k] + 1.0);
            bcae_metrics mt;
            bcae_metrics_log(x, lg + i * V, V, &mt);
            double vals[7] = {mt.occupancy, mt.mse, mt.mae, mt.psnr, mt.psnr_db, mt.precision, mt.recall};
            double *acc[7] = {&sum.occupancy, &sum.mse, &sum.mae, &sum.psnr, &sum.psnr_db,
                              &sum.precision, &sum.recall};
            /* Means skip undefined values (an empty wedge has no recall). */
            for (int k = 0; k < 7; k++)
                if (isfinite(vals[k])) {
                    *acc[k] += vals[k];
                    counted[k]++;
                }
            if (have_csv)
                fprintf(csv.fp, "%s,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f\n",
                        bcae_dataset_relpath(ds, w0 + i), mt.occupancy, mt.mse, mt.mae, mt.psnr,
                        mt.precision, mt.recall, mt.psnr_db);
        }
        cli_progress_update(&prog, w0 + nb, NULL);
    }
    cli_progress_finish(&prog, n);
    if (have_csv) {
        have_csv = 0;
        if (bcae_atomic_commit(&csv, &err)) {
            cli_fail(verb, &err);
            goto done;
        }
    }
    double *acc[7] = {&sum.occupancy, &sum.mse, &sum.mae, &sum.psnr, &sum.psnr_db, &sum.precision,
                      &sum.recall};
    for (int k = 0; k < 7; k++) *acc[k] = counted[k] ? *acc[k] / (double)counted[k] : NAN;
    double ratio = (double)V / (double)C;
    double wps = encode_s > 0 ? (double)n / encode_s : 0;
    if (json) {
        const char *keys[7] = {"occupancy", "mse", "mae", "psnr", "psnr_db", "precision", "recall"};
        printf("{");
        for (int k = 0; k < 7; k++) {
            printf("\"%s\": ", keys[k]);
            cli_json_number(stdout, *acc[k]);
            printf(", ");
        }
        printf("\"ratio\": ");
        cli_json_number(stdout, ratio);
        printf(", \"wedges\": %zu, \"encoder_wedges_per_s\": ", n);
        cli_json_number(stdout, wps);
        printf(", \"encoder_precision\": \"%s\"}\n", bcae_precision_name(opt.precision));
    } else {
        printf("model          %s (%s)\n", ca.model_path, bcae_model_arch(model));
        printf("data           %s, split %s, %zu wedges\n", data, split, n);
        printf("occupancy      %.6f\n", sum.occupancy);
        printf("mse            %.6f\n", sum.mse);
        printf("mae            %.6f\n", sum.mae);
        printf("psnr           %.6f  (max/RMSE as the reference computes it)\n", sum.psnr);
        printf("psnr_db        %.3f dB\n", sum.psnr_db);
        printf("precision      %.6f\n", sum.precision);
        printf("recall         %.6f\n", sum.recall);
        printf("ratio          %.3f  (16-bit wedge voxels / fp16 code elements)\n", ratio);
        printf("encoder        %.2f wedges/s on %d threads, batch %ld (%s, codes to fp16)\n",
               wps, cli_threads_effective(opt.threads), ca.batch, bcae_precision_name(opt.precision));
    }
    rc = CLI_EXIT_OK;
done:
    if (have_csv) bcae_atomic_abort(&csv);
    free(adc);
    free(codes);
    free(x);
    free(lg);
    bcae_codec_free(codec);
    bcae_dataset_close(ds);
    bcae_model_free(model);
    return rc;
}
