/* bcae forward: run encoder and decoders, write every intermediate as .npy. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/half.h"
#include "io/fileutil.h"
#include "codec/calibrate.h"
#include "model/runner.h"
#include "verb3d.h"

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

/* (b, 16, 192, 256) -> rows [row0, row0 + b) of (N, 16, 192, 249). */
static void crop_rows(const float *src, float *dst, int b)
{
    size_t planes = (size_t)b * BCAE_WEDGE_LAYERS * BCAE_WEDGE_AZIMUTH;
    for (size_t p = 0; p < planes; p++)
        memcpy(dst + p * BCAE_WEDGE_Z, src + p * BCAE_MODEL_Z, BCAE_WEDGE_Z * sizeof(float));
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

    /* BCAE++, BCAE-HT and BCAE run in verb_forward3d.c. */
    int is3d = cli_model_is_3d(verb, model_path);
    if (is3d < 0) return CLI_EXIT_FAIL;
    if (is3d) return forward3d_run(verb, model_path, out, half, b, threads, nw, argv + optind);

    bcae_error err;
    bcae2d_model model;
    nn_engine *e = NULL;
    bcae2d_runner *r = NULL;
    float *host = NULL, *code = NULL, *seg = NULL, *reg = NULL, *recon = NULL, *tmp = NULL;
    float *dev = NULL;
    uint16_t *adc = NULL;
    int rc = CLI_EXIT_FAIL;
    if (bcae2d_load(model_path, &model, &err)) return cli_fail(verb, &err);
    nn_engine_options eo = {.device = device, .threads = threads};
    if (nn_engine_create(&eo, &e, NULL, &err) ||
        bcae2d_runner_create(e, &model, b, 0, &r, &err) || bcae_mkdir_p(out, &err)) {
        cli_fail(verb, &err);
        goto done;
    }
    const int ch = bcae2d_code_h(&model), cw = bcae2d_code_w(&model);
    const size_t code_per = (size_t)BCAE2D_CHANNELS * (size_t)ch * (size_t)cw;
    const size_t out_per = (size_t)BCAE_WEDGE_LAYERS * BCAE_WEDGE_AZIMUTH * BCAE_WEDGE_Z;
    nn_tensor full = *bcae2d_runner_input(r); /* (b, 16, 192, 256) */
    size_t tf = nn_tensor_floats(e, full.n, full.c, full.h, full.w);
    host = malloc((size_t)b * BCAE_MODEL_VOXELS * sizeof(float));
    tmp = malloc((size_t)b * BCAE_MODEL_VOXELS * sizeof(float));
    dev = malloc(3 * tf * sizeof(float));
    adc = malloc(BCAE_WEDGE_VOXELS * sizeof(uint16_t));
    code = malloc((size_t)nw * code_per * sizeof(float));
    seg = malloc((size_t)nw * out_per * sizeof(float));
    reg = malloc((size_t)nw * out_per * sizeof(float));
    recon = malloc((size_t)nw * out_per * sizeof(float));
    if (!host || !tmp || !dev || !adc || !code || !seg || !reg || !recon) {
        cli_error(verb, "out of memory for %d wedges", nw);
        goto done;
    }
    if (bcae2d_runner_use_chain(r, precision, NN_FIRST_SPARSE, &err) ||
        (precision == BCAE_PRECISION_INT8 &&
         codec_calibrate(e, r, b, host, NULL, 0, threads, &err))) {
        cli_fail(verb, &err);
        goto done;
    }
    nn_tensor tseg = full, treg = full, trec = full;
    tseg.data = dev;
    treg.data = dev + tf;
    trec.data = dev + 2 * tf;
    for (int w0 = 0; w0 < nw; w0 += b) {
        int nb = nw - w0 < b ? nw - w0 : b;
        /* A short last batch is padded with empty wedges, then dropped. */
        memset(host, 0, (size_t)b * BCAE_MODEL_VOXELS * sizeof(float));
        for (int i = 0; i < nb; i++) {
            if (bcae_wedge_load(argv[optind + w0 + i], adc, &err)) {
                cli_fail(verb, &err);
                goto done;
            }
            bcae_wedge_to_model(adc, host + (size_t)i * BCAE_MODEL_VOXELS);
        }
        e->ops->from_nchw(e, host, bcae2d_runner_input(r));
        bcae2d_runner_encode(r);
        nn_tensor *tc = bcae2d_runner_code(r);
        e->ops->to_nchw(e, tc, tmp);
        if (half) {
            for (size_t i = 0; i < (size_t)b * code_per; i++)
                tmp[i] = bcae_f16_to_f32(bcae_f32_to_f16(tmp[i]));
            e->ops->from_nchw(e, tmp, tc);
        }
        memcpy(code + (size_t)w0 * code_per, tmp, (size_t)nb * code_per * sizeof(float));
        bcae2d_runner_decode(r);
        e->ops->bcae_heads(e, bcae2d_runner_seg_logit(r), bcae2d_runner_reg_raw(r), BCAE2D_SHIFT,
                           BCAE2D_SCALE, model.cfg.clf_threshold, &tseg, &treg, &trec);
        float *dst[3] = {seg, reg, recon};
        nn_tensor *src[3] = {&tseg, &treg, &trec};
        for (int k = 0; k < 3; k++) {
            e->ops->to_nchw(e, src[k], tmp);
            crop_rows(tmp, dst[k] + (size_t)w0 * out_per, nb);
        }
    }
    size_t cs[4] = {(size_t)nw, BCAE2D_CHANNELS, (size_t)ch, (size_t)cw};
    size_t os[4] = {(size_t)nw, BCAE_WEDGE_LAYERS, BCAE_WEDGE_AZIMUTH, BCAE_WEDGE_Z};
    if (save(verb, out, "code.npy", code, 4, cs) || save(verb, out, "seg.npy", seg, 4, os) ||
        save(verb, out, "reg.npy", reg, 4, os) || save(verb, out, "recon.npy", recon, 4, os))
        goto done;
    rc = CLI_EXIT_OK;
done:
    free(host);
    free(tmp);
    free(dev);
    free(adc);
    free(code);
    free(seg);
    free(reg);
    free(recon);
    bcae2d_runner_destroy(r);
    nn_engine_destroy(e);
    bcae2d_destroy(&model);
    return rc;
}
