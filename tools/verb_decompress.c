/* bcae decompress: a .bcae container -> one .npy per wedge. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *fp)
{
    fprintf(fp,
            "Usage: bcae decompress [--model MODEL.safetensors] -o OUTDIR IN.bcae\n"
            "Decode every record of a .bcae container and write one .npy per wedge under\n"
            "OUTDIR at its stored relative path: uint16 raw ADC (default) or float32\n"
            "log2(ADC+1), shape (192, 249, 16). The model must be the one the container\n"
            "names (by the SHA-256 fingerprint of its weights); another is refused unless\n"
            "--force.\n"
            "\n"
            "Options:\n"
            "  -m, --model FILE     weights (safetensors; default: the shipped model)\n"
            "  -o, --out DIR        output folder (created if needed)\n"
            "      --output KIND    adc (default) or log\n"
            "  -f, --force          decode with a model other than the container's\n"
            "  -b, --batch B        wedges per pass (default 4)\n"
            "  -t, --threads N      threads (BCAE_NUM_THREADS or all cores)\n"
            CLI_DEVICE_HELP
            "  -q, --quiet          no progress on stderr\n"
            "  -h, --help\n");
}

/* Writes wedge i of a decoded batch under dir/rel, creating folders. */
static int write_wedge(const char *verb, const char *dir, const char *rel, int log_out,
                       const uint16_t *adc, const float *lg)
{
    char *path = cli_path_join(dir, rel);
    if (!path) return cli_error(verb, "out of memory"), -1;
    bcae_error err;
    char *slash = strrchr(path, '/');
    int rc = 0;
    if (slash) {
        *slash = '\0';
        if (cli_mkdir_p(path, &err)) rc = -1;
        *slash = '/';
    }
    if (!rc) {
        bcae_array a = {log_out ? BCAE_DTYPE_F32 : BCAE_DTYPE_U16, 3,
                        {BCAE_WEDGE_AZIMUTH, BCAE_WEDGE_Z, BCAE_WEDGE_LAYERS},
                        log_out ? (void *)lg : (void *)adc};
        if (bcae_npy_write(path, &a, &err)) rc = -1;
    }
    if (rc) cli_fail(verb, &err);
    free(path);
    return rc;
}

int verb_decompress(int argc, char **argv)
{
    const char *verb = "decompress";
    const char *out = NULL, *kind = "adc";
    int force = 0;
    cli_codec_args ca;
    cli_codec_args_init(&ca);
    enum { O_OUTPUT = 256 };
    static const struct option opts[] = {
        CLI_CODEC_LONG_OPTIONS,
        {"out", required_argument, 0, 'o'},
        {"output", required_argument, 0, O_OUTPUT},
        {"force", no_argument, 0, 'f'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    optind = 1;
    opterr = 0;
    int c;
    /* No -p: the decoders run in fp32 (docs/PRECISION.md). */
    while ((c = getopt_long(argc, argv, ":m:o:fb:t:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case O_OUTPUT: kind = optarg; break;
        case 'f': force = 1; break;
        case 'h': usage(stdout); return CLI_EXIT_OK;
        case ':': return cli_usage_error(verb, "option '%s' needs a value", argv[optind - 1]);
        default: {
            int r = cli_codec_option(verb, c, optarg, &ca);
            if (r < 0) return CLI_EXIT_USAGE;
            if (!r) return cli_usage_error(verb, "unknown option '%s'", argv[optind - 1]);
        }
        }
    }
    if (!out) return cli_usage_error(verb, "-o OUTDIR is required");
    if (strcmp(kind, "adc") && strcmp(kind, "log"))
        return cli_usage_error(verb, "--output must be adc or log, not '%s'", kind);
    if (argc - optind != 1) return cli_usage_error(verb, "expected one container file");
    const char *in_path = argv[optind];
    int log_out = !strcmp(kind, "log");
    bcae_codec_options opt;
    int setup = cli_codec_setup(verb, &ca, &opt);
    if (setup) return setup;

    bcae_error err;
    bcae_model *model = NULL;
    bcae_codec *codec = NULL;
    bcae_ctr_reader *r = NULL;
    uint16_t *codes = NULL, *adc = NULL;
    float *lg = NULL;
    char(*rel)[BCAE_CTR_PATH_MAX + 1] = NULL;
    int rc = CLI_EXIT_FAIL;
    if (bcae_ctr_reader_open(in_path, &r, &err) || bcae_model_load(ca.model_path, &model, &err)) {
        cli_fail(verb, &err);
        goto done;
    }
    const bcae_ctr_info *info = bcae_ctr_reader_info(r);
    bcae_ctr_info mine = {0};
    mine.version = info->version;
    bcae_model_fingerprint(model, mine.fingerprint);
    snprintf(mine.arch, sizeof mine.arch, "%s", bcae_model_arch(model));
    mine.code_dtype = BCAE_CTR_DTYPE_F16;
    mine.code_ndim = bcae_model_code_shape(model, mine.code_shape);
    if (bcae_ctr_check_model(info, &mine, in_path, &err)) {
        /* The code shape must match whatever --force says: it is what decodes. */
        int same_shape = info->code_ndim == mine.code_ndim;
        for (int d = 0; same_shape && d < mine.code_ndim; d++)
            same_shape = info->code_shape[d] == mine.code_shape[d];
        if (!force || !same_shape) {
            cli_fail(verb, &err);
            if (same_shape) fprintf(stderr, "bcae %s: --force decodes it anyway\n", verb);
            goto done;
        }
        char hex[65];
        for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", info->fingerprint[i]);
        fprintf(stderr, "bcae %s: warning: decoding with a model other than %s\n", verb, hex);
    }
    if (bcae_codec_create(model, &opt, &codec, &err) || cli_mkdir_p(out, &err)) {
        cli_fail(verb, &err);
        goto done;
    }
    const size_t V = BCAE_WEDGE_VOXELS, C = bcae_model_code_elements(model), B = (size_t)ca.batch;
    codes = malloc(B * C * sizeof *codes);
    adc = malloc(B * V * sizeof *adc);
    lg = log_out ? malloc(B * V * sizeof *lg) : NULL;
    rel = malloc(B * sizeof *rel);
    if (!codes || !adc || !rel || (log_out && !lg)) {
        cli_error(verb, "out of memory");
        goto done;
    }
    cli_progress prog;
    uint64_t expect = 0;
    if (!bcae_ctr_peek_count(in_path, &expect)) expect = 0;
    cli_progress_start(&prog, "decompress", "wedges", expect, ca.quiet);
    size_t done_n = 0;
    double t0 = cli_now();
    for (int end = 0; !end;) {
        size_t nb = 0;
        while (nb < B) {
            bcae_ctr_record rec;
            if (bcae_ctr_reader_next(r, &rec, codes + nb * C, &end, &err)) {
                cli_fail(verb, &err);
                goto done;
            }
            if (end) break;
            if (rec.orig_ndim != 3 || rec.orig_shape[0] != BCAE_WEDGE_AZIMUTH ||
                rec.orig_shape[1] != BCAE_WEDGE_Z || rec.orig_shape[2] != BCAE_WEDGE_LAYERS) {
                cli_error(verb, "%s: record %llu (\"%s\") is not a (192, 249, 16) wedge", in_path,
                          (unsigned long long)rec.index, rec.path);
                goto done;
            }
            memcpy(rel[nb], rec.path, sizeof rel[nb]);
            nb++;
        }
        if (!nb) break;
        if (bcae_decode(codec, codes, nb, log_out ? NULL : adc, lg, &err)) {
            cli_fail(verb, &err);
            goto done;
        }
        for (size_t i = 0; i < nb; i++)
            if (write_wedge(verb, out, rel[i], log_out, adc + i * V, log_out ? lg + i * V : NULL))
                goto done;
        done_n += nb;
        /* Without a count from the end marker the bar shows the wedges so far. */
        if (prog.total < done_n) prog.total = done_n;
        cli_progress_update(&prog, done_n - 1, NULL);
    }
    prog.total = done_n;
    cli_progress_finish(&prog, done_n);
    double el = cli_now() - t0;
    printf("decompressed    %zu wedges from %s into %s (%s)\n", done_n, in_path, out,
           log_out ? "float32 log2(ADC+1)" : "uint16 ADC");
    printf("throughput      %.2f wedges/s (file I/O included)\n", el > 0 ? (double)done_n / el : 0.0);
    rc = CLI_EXIT_OK;
done:
    free(codes);
    free(adc);
    free(lg);
    free(rel);
    bcae_ctr_reader_close(r);
    bcae_codec_free(codec);
    bcae_model_free(model);
    return rc;
}
