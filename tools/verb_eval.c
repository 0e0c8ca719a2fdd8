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
            "       bcae eval --codec sparse [--max-error E | --ratio R] --data DIR [OPTIONS]\n"
            "Encode every wedge of a dataset split to fp16 codes, decode them, and report the\n"
            "metrics of SPEC section 5 in log2(ADC+1) space against the originals (means over\n"
            "wedges), the compression ratio (wedge voxels / code elements, both 16-bit) and\n"
            "the encoder's throughput (wedges/s of bcae_encode, data already in memory).\n"
            "The encoder runs in fp32 unless --precision says otherwise.\n"
            "With --codec sparse, the learning-free sparse codec (docs/SPARSE.md) instead:\n"
            "the ratio is the input over the streams' bytes, and both its encoder's and its\n"
            "decoder's throughput are reported (one thread: one stream of wedges).\n"
            "\n"
            "Options:\n"
            "  -m, --model FILE      weights (safetensors; default: the shipped model)\n"
            "      --codec C         bcae (default) or sparse\n"
            "      --max-error E     sparse: the error bound in log2(ADC+1), 0..8 (default 0)\n"
            "      --ratio R         sparse: per wedge the finest bound meeting ratio R\n"
            "  -d, --data DIR        dataset (DIR/<split>.txt or DIR/outer/<split>.txt)\n"
            "      --split NAME      manifest to read (default test)\n"
            "  -n, --limit N         only the first N wedges\n"
            "      --csv FILE        per-wedge metrics: path,occupancy,mse,mae,psnr,precision,\n"
            "                        recall,psnr_db\n"
            "      --json            one JSON object on stdout instead of the table\n"
            CLI_PRECISION_HELP
            "  -b, --batch B         wedges per pass (default 4)\n"
            "  -t, --threads N       threads (BCAE_NUM_THREADS or all cores)\n"
            CLI_DECODER_PRECISION_HELP
            CLI_DEVICE_HELP
            "  -q, --quiet           no progress on stderr\n"
            "  -h, --help\n"
            "\n"
            "On several processes (a build with MPI; docs/SCALING.md): mpirun -np N bcae\n"
            "eval ... gives each rank a contiguous run of the wedges (starting on a multiple\n"
            "of --batch, so each wedge's codes are the same bits as in one process), sums\n"
            "the per-wedge metrics over the ranks into the same means, and writes --csv in\n"
            "wedge order; the throughputs are the ranks' summed.\n");
}

/* The per-wedge CSV rows of this rank, in memory until the end, when every
 * rank's go into one file in rank order (bcae_shared_file; one process: an
 * ordinary atomic write). */
typedef struct csv_rows {
    char *buf;
    size_t len;
    FILE *fp;
} csv_rows;

static int csv_rows_open(const char *verb, csv_rows *c, const char *header)
{
    c->buf = NULL;
    c->len = 0;
    c->fp = open_memstream(&c->buf, &c->len);
    if (!c->fp) {
        cli_error(verb, "out of memory");
        return -1;
    }
    if (cli_rank() == 0) fputs(header, c->fp);
    return 0;
}

/* Collective. */
static int csv_rows_commit(const char *verb, csv_rows *c, const char *path)
{
    bcae_error err;
    bcae_shared_file *f = NULL;
    int bad = fclose(c->fp) != 0;
    c->fp = NULL;
    if (bad) cli_error(verb, "%s: out of memory", path);
    if (bcae_shared_file_open(path, cli_comm(), &f, &err)) return cli_fail(verb, &err), -1;
    if (bad) { /* the others learn it in their write */
        bcae_shared_file_abort(f);
        return -1;
    }
    if (bcae_shared_file_write(f, c->buf, c->len, &err)) {
        cli_fail(verb, &err);
        bcae_shared_file_abort(f);
        return -1;
    }
    if (bcae_shared_file_commit(f, &err)) return cli_fail(verb, &err), -1;
    return 0;
}

static void csv_rows_free(csv_rows *c)
{
    if (c->fp) fclose(c->fp);
    free(c->buf);
    c->fp = NULL;
    c->buf = NULL;
}

typedef struct sparse_eval {
    double max_error, ratio;
    long limit;
    int json, quiet;
    const char *csv_path;
} sparse_eval;

/* eval for the sparse codec: every wedge coded and decoded in memory. */
static int eval_sparse(const char *verb, const char *data, const char *split, const sparse_eval *o)
{
    bcae_error err;
    bcae_dataset *ds = NULL;
    bcae_sparse_coder *coder = NULL;
    const size_t V = BCAE_WEDGE_VOXELS;
    uint16_t *adc = malloc(V * sizeof *adc), *rec = malloc(V * sizeof *rec);
    uint8_t *buf = malloc(bcae_sparse_bound());
    csv_rows csv = {0};
    int have_csv = 0, rc = CLI_EXIT_FAIL;
    if (!adc || !rec || !buf) {
        cli_error(verb, "out of memory");
        goto done;
    }
    if (bcae_dataset_open(data, split, &ds, &err) || bcae_sparse_coder_create(&coder, &err)) {
        cli_fail(verb, &err);
        goto done;
    }
    if (o->csv_path) {
        if (csv_rows_open(verb, &csv,
                          "path,occupancy,mse,mae,psnr,precision,recall,psnr_db,max_error,bytes\n"))
            goto done;
        have_csv = 1;
    }
    size_t n = bcae_dataset_size(ds);
    if (o->limit > 0 && (size_t)o->limit < n) n = (size_t)o->limit;
    cli_share sh;
    size_t lo, hi;
    cli_share_plan(&sh, n, 1, (size_t)-1);
    cli_share_round(&sh, 0, &lo, &hi);
    bcae_sparse_options sopt = {o->max_error, o->ratio};
    double sum[7] = {0}, occ_b = 0, val_b = 0, bytes = 0, hits = 0, enc_s = 0, dec_s = 0;
    double emin = INFINITY, emax = 0;
    size_t counted[7] = {0}, unmet = 0;
    cli_progress prog;
    cli_progress_start(&prog, "eval", "wedges", hi - lo, o->quiet || o->json || cli_rank());
    for (size_t i = lo; i < hi; i++) {
        if (bcae_dataset_load(ds, i, adc, &err)) {
            cli_fail(verb, &err);
            goto done;
        }
        size_t len;
        bcae_sparse_info si;
        double t0 = cli_now();
        if (bcae_sparse_encode(coder, adc, &sopt, buf, bcae_sparse_bound(), &len, &si, &err)) {
            cli_fail(verb, &err);
            goto done;
        }
        double t1 = cli_now();
        if (bcae_sparse_decode(coder, buf, len, rec, NULL, &err)) {
            cli_fail(verb, &err);
            goto done;
        }
        enc_s += t1 - t0;
        dec_s += cli_now() - t1;
        bytes += (double)len;
        occ_b += (double)si.occupancy_bytes;
        val_b += (double)si.value_bytes;
        hits += (double)si.hits;
        emin = fmin(emin, si.max_error);
        emax = fmax(emax, si.max_error);
        unmet += !si.met;
        bcae_metrics mt;
        bcae_metrics_adc(adc, rec, V, &mt);
        double vals[7] = {mt.occupancy, mt.mse, mt.mae, mt.psnr, mt.psnr_db, mt.precision, mt.recall};
        for (int k = 0; k < 7; k++)
            if (isfinite(vals[k])) {
                sum[k] += vals[k];
                counted[k]++;
            }
        if (have_csv)
            fprintf(csv.fp, "%s,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%zu\n",
                    bcae_dataset_relpath(ds, i), mt.occupancy, mt.mse, mt.mae, mt.psnr,
                    mt.precision, mt.recall, mt.psnr_db, si.max_error, len);
        cli_progress_update(&prog, i + 1 - lo, NULL);
    }
    cli_progress_finish(&prog, hi - lo);
    if (have_csv) {
        have_csv = 0;
        if (csv_rows_commit(verb, &csv, o->csv_path)) goto done;
    }
    /* Sums over the ranks: the same means as one process's (the rates add). */
    double tot[21];
    for (int k = 0; k < 7; k++) {
        tot[k] = sum[k];
        tot[7 + k] = (double)counted[k];
    }
    double ew = enc_s > 0 ? (double)(hi - lo) / enc_s : 0;
    double dw = dec_s > 0 ? (double)(hi - lo) / dec_s : 0;
    double more[] = {bytes, occ_b, val_b, hits, (double)unmet, ew, dw};
    memcpy(tot + 14, more, sizeof more);
    double ext[2] = {emax, -emin};
    if (cli_allreduce_sum(verb, tot, 21) || cli_allreduce_max(verb, ext, 2)) goto done;
    for (int k = 0; k < 7; k++) sum[k] = tot[7 + k] ? tot[k] / tot[7 + k] : NAN;
    bytes = tot[14], occ_b = tot[15], val_b = tot[16], hits = tot[17], unmet = (size_t)tot[18];
    ew = tot[19], dw = tot[20];
    emax = ext[0], emin = -ext[1];
    if (cli_rank() != 0) {
        rc = CLI_EXIT_OK;
        goto done;
    }
    double ratio = bytes > 0 ? (double)n * (double)V * 2 / bytes : NAN;
    if (o->json) {
        const char *keys[7] = {"occupancy", "mse", "mae", "psnr", "psnr_db", "precision", "recall"};
        printf("{");
        for (int k = 0; k < 7; k++) {
            printf("\"%s\": ", keys[k]);
            cli_json_number(stdout, sum[k]);
            printf(", ");
        }
        printf("\"ratio\": ");
        cli_json_number(stdout, ratio);
        printf(", \"wedges\": %zu, \"codec\": \"sparse\", \"max_error_min\": ", n);
        cli_json_number(stdout, n ? emin : NAN);
        printf(", \"max_error_max\": ");
        cli_json_number(stdout, n ? emax : NAN);
        printf(", \"ratio_unmet_wedges\": %zu, \"occupancy_bits_per_hit\": ", unmet);
        cli_json_number(stdout, hits ? 8 * occ_b / hits : NAN);
        printf(", \"value_bits_per_hit\": ");
        cli_json_number(stdout, hits ? 8 * val_b / hits : NAN);
        printf(", \"encoder_wedges_per_s\": ");
        cli_json_number(stdout, ew);
        printf(", \"decoder_wedges_per_s\": ");
        cli_json_number(stdout, dw);
        printf("}\n");
    } else {
        printf("codec          sparse (docs/SPARSE.md)\n");
        printf("data           %s, split %s, %zu wedges\n", data, split, n);
        if (o->ratio > 0) printf("bound          per wedge for ratio %g: E %.4f .. %.4f%s\n", o->ratio,
                                 emin, emax, unmet ? " (some wedges could not reach it)" : "");
        else printf("bound          E = %g%s\n", o->max_error, o->max_error ? "" : " (lossless)");
        printf("occupancy      %.6f\n", sum[0]);
        printf("mse            %.6f\n", sum[1]);
        printf("mae            %.6f\n", sum[2]);
        printf("psnr           %.6f  (max/RMSE as the reference computes it)\n", sum[3]);
        printf("psnr_db        %.3f dB\n", sum[4]);
        printf("precision      %.6f\n", sum[5]);
        printf("recall         %.6f\n", sum[6]);
        printf("ratio          %.3f  (16-bit wedge voxels / stream bytes)\n", ratio);
        printf("bits per hit   occupancy %.3f, values %.3f\n", hits ? 8 * occ_b / hits : 0.0,
               hits ? 8 * val_b / hits : 0.0);
        printf("encoder        %.2f wedges/s, decoder %.2f wedges/s (one thread%s)\n", ew, dw,
               cli_size() > 1 ? " a rank, summed" : "");
    }
    rc = CLI_EXIT_OK;
done:
    csv_rows_free(&csv); /* after a commit too: the rows stay in memory until here */
    free(adc);
    free(rec);
    free(buf);
    bcae_sparse_coder_free(coder);
    bcae_dataset_close(ds);
    return rc;
}

int verb_eval(int argc, char **argv)
{
    const char *verb = "eval";
    const char *data = NULL, *split = "test", *csv_path = NULL;
    long limit = 0;
    int json = 0;
    cli_sparse_args sa = {0};
    cli_codec_args ca;
    cli_codec_args_init(&ca);
    enum { O_SPLIT = 256, O_CSV, O_JSON };
    static const struct option opts[] = {
        CLI_CODEC_LONG_OPTIONS,
        CLI_DECODER_PRECISION_LONG_OPTIONS,
        CLI_PRECISION_LONG_OPTIONS,
        {"data", required_argument, 0, 'd'},
        {"split", required_argument, 0, O_SPLIT},
        {"limit", required_argument, 0, 'n'},
        {"csv", required_argument, 0, O_CSV},
        {"json", no_argument, 0, O_JSON},
        CLI_SPARSE_LONG_OPTIONS,
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
            if (!r) r = cli_sparse_option(verb, c, optarg, &sa);
            if (r < 0) return CLI_EXIT_USAGE;
            if (!r) return cli_usage_error(verb, "unknown option '%s'", argv[optind - 1]);
        }
        }
    }
    if (optind < argc) return cli_usage_error(verb, "unexpected argument '%s'", argv[optind]);
    if (!data) return cli_usage_error(verb, "--data DIR is required");
    if (cli_sparse_check(verb, &sa)) return CLI_EXIT_USAGE;
    if (sa.sparse) {
        if (ca.model_path || ca.precision != BCAE_PRECISION_FP32)
            return cli_usage_error(verb, "--codec sparse takes no --model or --precision");
        sparse_eval o = {sa.max_error, sa.ratio, limit, json, ca.quiet, csv_path};
        return eval_sparse(verb, data, split, &o);
    }
    bcae_codec_options opt;
    int setup = cli_codec_setup(verb, &ca, &opt);
    if (setup) return setup;

    bcae_error err;
    bcae_model *model = NULL;
    bcae_codec *codec = NULL;
    bcae_dataset *ds = NULL;
    uint16_t *adc = NULL, *codes = NULL;
    float *x = NULL, *lg = NULL;
    csv_rows csv = {0};
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
        if (csv_rows_open(verb, &csv, "path,occupancy,mse,mae,psnr,precision,recall,psnr_db\n"))
            goto done;
        have_csv = 1;
    }
    /* Runs start on a multiple of the batch: each wedge is encoded in the
     * slot one process gives it, so its metrics are the same numbers. */
    cli_share sh;
    size_t lo, hi;
    cli_share_plan(&sh, n, B, (size_t)-1);
    cli_share_round(&sh, 0, &lo, &hi);
    bcae_metrics sum = {0};
    size_t counted[7] = {0};
    double encode_s = 0;
    cli_progress prog;
    cli_progress_start(&prog, "eval", "wedges", hi - lo, ca.quiet || json || cli_rank());
    for (size_t w0 = lo; w0 < hi; w0 += B) {
        size_t nb = hi - w0 < B ? hi - w0 : B;
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
        cli_progress_update(&prog, w0 + nb - lo, NULL);
    }
    cli_progress_finish(&prog, hi - lo);
    if (have_csv) {
        have_csv = 0;
        if (csv_rows_commit(verb, &csv, csv_path)) goto done;
    }
    double *acc[7] = {&sum.occupancy, &sum.mse, &sum.mae, &sum.psnr, &sum.psnr_db, &sum.precision,
                      &sum.recall};
    /* Sums over the ranks: the same means as one process's (the rates add). */
    double tot[15];
    for (int k = 0; k < 7; k++) {
        tot[k] = *acc[k];
        tot[7 + k] = (double)counted[k];
    }
    tot[14] = encode_s > 0 ? (double)(hi - lo) / encode_s : 0;
    if (cli_allreduce_sum(verb, tot, 15)) goto done;
    for (int k = 0; k < 7; k++) *acc[k] = tot[7 + k] ? tot[k] / tot[7 + k] : NAN;
    double ratio = (double)V / (double)C;
    double wps = tot[14];
    if (cli_rank() != 0) {
        rc = CLI_EXIT_OK;
        goto done;
    }
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
        printf(", \"encoder_precision\": \"%s\", \"decoder_precision\": \"%s\"}\n",
               bcae_precision_name(opt.precision), bcae_precision_name(opt.decoder_precision));
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
        printf("decoders       %s\n", bcae_precision_name(opt.decoder_precision));
        if (cli_size() > 1)
            printf("encoder        %.2f wedges/s on %d ranks x %d threads, batch %ld (%s, codes "
                   "to fp16)\n",
                   wps, cli_size(), cli_threads_effective(opt.threads), ca.batch,
                   bcae_precision_name(opt.precision));
        else
            printf("encoder        %.2f wedges/s on %d threads, batch %ld (%s, codes to fp16)\n",
                   wps, cli_threads_effective(opt.threads), ca.batch,
                   bcae_precision_name(opt.precision));
    }
    rc = CLI_EXIT_OK;
done:
    csv_rows_free(&csv); /* after a commit too: the rows stay in memory until here */
    free(adc);
    free(codes);
    free(x);
    free(lg);
    bcae_codec_free(codec);
    bcae_dataset_close(ds);
    bcae_model_free(model);
    return rc;
}
