/* bcae forward: run encoder and decoders, write every intermediate as .npy. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *fp)
{
    fprintf(fp,
            "Usage: bcae forward --model MODEL.safetensors --out DIR WEDGE.npy...\n"
            "Run the encoder and both decoders on raw-ADC wedges and write float32 .npy files\n"
            "into DIR, one row per wedge in the order given:\n"
            "  code.npy   (N, 32, 192/2^d, 256/2^d)  the encoder output\n"
            "  seg.npy    (N, 16, 192, 249)          sigmoid probabilities\n"
            "  reg.npy    (N, 16, 192, 249)          6 + 3 exp(r)\n"
            "  recon.npy  (N, 16, 192, 249)          reg * (seg > threshold), log2(ADC+1)\n"
            "3D models: code.npy (N, 8, 16, 12, 16) and seg/reg/recon (N, 1, 16, 192, 249)\n"
            "for bcae++ / bcae-ht; code (N, 8, 12, 15, 16) and (N, 1, 192, 249, 16) for bcae,\n"
            "whose reg and recon are raw ADC (docs/MODELS.md).\n"
            "This is the exact fp32 pipeline for comparing implementations: the decoders\n"
            "read the code as the encoder produced it, unless --half. The encoder is the\n"
            "one compress runs (fused first layer; --precision as there).\n"
            "\n"
            "Options:\n"
            "  -m, --model FILE     weights (safetensors, arch bcae-2d, bcae++, bcae-ht or bcae)\n"
            "  -o, --out DIR        output folder (created if needed)\n"
            "      --half           round the code to IEEE fp16 before decoding, as the\n"
            "                       compressor stores it\n"
            "  -p, --precision P    arithmetic of the encoder: fp32 (default), bf16, int8\n"
            "  -b, --batch B        wedges per pass (default 4)\n"
            "  -t, --threads N      threads (BCAE_NUM_THREADS or all cores)\n"
            CLI_DEVICE_HELP
            "  -h, --help\n");
}

static int save(const char *verb, const char *dir, const char *name, float *data, int ndim,
                const size_t *shape)
{
    bcae_array a = {BCAE_DTYPE_F32, ndim, {0}, data};
    for (int i = 0; i < ndim; i++) a.shape[i] = shape[i];
    char *path = bcae_path_join(dir, name);
    bcae_error err;
    bcae_status s = path ? bcae_npy_write(path, &a, &err) : BCAE_ERR_OUT_OF_MEMORY;
    free(path);
    if (s) {
        if (s == BCAE_ERR_OUT_OF_MEMORY) cli_error(verb, "out of memory");
        else cli_fail(verb, &err);
        return -1;
    }
    return 0;
}

int verb_forward(int argc, char **argv)
{
    const char *verb = "forward";
    const char *model_path = NULL, *out = NULL;
    long batch = 4, threads_opt = 0;
    int half = 0;
    bcae_precision precision = BCAE_PRECISION_FP32;
    enum { O_HALF = 256, O_DEVICE };
    bcae_device device = BCAE_DEVICE_AUTO;
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"out", required_argument, 0, 'o'},
        {"half", no_argument, 0, O_HALF},     {"batch", required_argument, 0, 'b'},
        {"threads", required_argument, 0, 't'},
        {"device", required_argument, 0, O_DEVICE}, {"help", no_argument, 0, 'h'},
        {"precision", required_argument, 0, 'p'},
        {0, 0, 0, 0},
    };
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":m:o:b:t:p:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_path = optarg; break;
        case 'o': out = optarg; break;
        case O_HALF: half = 1; break;
        case 'p':
            if (cli_parse_precision(verb, optarg, &precision)) return CLI_EXIT_USAGE;
            break;
        case 'b':
            if (cli_parse_long(verb, "--batch", optarg, 1, 64, &batch)) return CLI_EXIT_USAGE;
            break;
        case O_DEVICE:
            if (cli_parse_device(verb, optarg, &device)) return CLI_EXIT_USAGE;
            break;
        case 't':
            if (cli_parse_long(verb, "--threads", optarg, 1, 4096, &threads_opt)) return CLI_EXIT_USAGE;
            break;
        case 'h': usage(stdout); return CLI_EXIT_OK;
        case ':': return cli_usage_error(verb, "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error(verb, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (!model_path) return cli_usage_error(verb, "--model FILE is required");
    if (!out) return cli_usage_error(verb, "--out DIR is required");
    int nw = argc - optind;
    if (nw < 1) return cli_usage_error(verb, "no input wedges");
    int threads = cli_threads(verb, threads_opt);
    if (threads < 0) return CLI_EXIT_USAGE;
    if (cli_device_resolve(verb, device, &device)) return CLI_EXIT_FAIL;
    if (batch > nw) batch = nw;
    const int b = (int)batch;

    bcae_error err;
    bcae_model *model = NULL;
    bcae_codec *codec = NULL;
    float *code = NULL, *outs[3] = {NULL, NULL, NULL};
    uint16_t *adc = NULL;
    int rc = CLI_EXIT_FAIL;
    if (bcae_model_load(model_path, &model, &err)) return cli_fail(verb, &err);
    bcae_codec_options copt = {b, threads, precision, NULL, 0, device, BCAE_PRECISION_FP32};
    if (bcae_codec_create(model, &copt, &codec, &err) || bcae_mkdir_p(out, &err)) {
        cli_fail(verb, &err);
        goto done;
    }
    const size_t code_per = bcae_model_code_elements(model);
    adc = malloc((size_t)nw * BCAE_WEDGE_VOXELS * sizeof(uint16_t));
    code = malloc((size_t)nw * code_per * sizeof(float));
    for (int k = 0; k < 3; k++) outs[k] = malloc((size_t)nw * BCAE_WEDGE_VOXELS * sizeof(float));
    if (!adc || !code || !outs[0] || !outs[1] || !outs[2]) {
        cli_error(verb, "out of memory for %d wedges", nw);
        goto done;
    }
    for (int i = 0; i < nw; i++)
        if (bcae_wedge_load(argv[optind + i], adc + (size_t)i * BCAE_WEDGE_VOXELS, &err)) {
            cli_fail(verb, &err);
            goto done;
        }
    if (bcae_forward(codec, adc, (size_t)nw, half, code, outs[0], outs[1], outs[2], &err)) {
        cli_fail(verb, &err);
        goto done;
    }
    size_t cs[5] = {(size_t)nw}, os[5] = {(size_t)nw};
    int cn = 1 + bcae_model_code_shape(model, cs + 1), on = 1 + bcae_model_output_shape(model, os + 1);
    if (save(verb, out, "code.npy", code, cn, cs) || save(verb, out, "seg.npy", outs[0], on, os) ||
        save(verb, out, "reg.npy", outs[1], on, os) || save(verb, out, "recon.npy", outs[2], on, os))
        goto done;
    rc = CLI_EXIT_OK;
done:
    free(adc);
    free(code);
    for (int k = 0; k < 3; k++) free(outs[k]);
    bcae_codec_free(codec);
    bcae_model_free(model);
    return rc;
}
