/* bcae bench: throughput of the encoder, the decoders and a training step. */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli.h"
#include "model/model.h"
#include "nn/cpu/cpu_report.h"
#include "train/train_step.h"

/* One untimed run, then runs until `seconds` have passed and at least
 * BENCH_MIN_REPS were timed; samples holds BENCH_MAX_REPS. */
enum {
    BENCH_MIN_REPS = 3,     /* a median of fewer says little */
    BENCH_MAX_REPS = 100000 /* bounds the sample array of a very fast pass */
};
typedef struct bench_pass_stats {
    long reps;
    double median_s, min_s;
    double cpu_s; /* mean CPU time (user + system, all threads) of a timed run */
} bench_pass_stats;

/* CPU time of this process so far: on a shared machine it moves far less
 * than wall time when other processes take the cores (idle OpenMP threads
 * wait passively, so waiting costs none). */
static double cpu_seconds(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru)) return 0;
    return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
           (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
}

static void usage(FILE *fp)
{
    fprintf(fp,
            "Usage: bcae bench [--model MODEL.safetensors | --m M --n N --d D] [OPTIONS]\n"
            "       bcae bench --codec sparse [...]  (the sparse codec: see its --help)\n"
            "Time the encoder and the decoders (and with --train one training step) of a\n"
            "BCAE-2D on synthetic wedges held in memory: no file I/O is timed (SPEC 6).\n"
            "Without --model the network has random weights (BCAE-2D(4, 8, 3) by default).\n"
            "\n"
            "Input: deterministic wedge-like data, ~11%% of the voxels non-zero with\n"
            "log2(ADC+1) in (6, 10], the rest 0, z zero-padded to 256 as in the model input.\n"
            "Each pass runs once untimed, then repeatedly for at least --seconds and at least\n"
            "%d times; the figures use the median time of one batch.\n"
            "\n"
            "Options:\n"
            "  -m, --model FILE     weights (safetensors, arch bcae-2d, bcae++, bcae-ht, bcae)\n"
            "      --m M, --n N, --d D  architecture of a random model (default 4, 8, 3)\n"
            "      --arch A         a random model of another architecture: bcae-2d,\n"
            "                       bcae++, bcae-ht or bcae\n"
            "      --deconv D       3D models: transposed convolutions as auto (default),\n"
            "                       direct (oneDNN deconvolution) or shuffle (Conv3d + 2x2\n"
            "                       pixel shuffle, SPEC 6)\n"
            "      --conv3d K       3D models: small Conv3d k3 s1 p1 layers on auto\n"
            "                       (default; own direct kernels) or onednn\n"
            "  -b, --batch B        wedges per pass (default 4)\n"
            "  -t, --threads N      threads (BCAE_NUM_THREADS or all cores)\n"
            CLI_DEVICE_HELP,
            BENCH_MIN_REPS);
    fprintf(fp,
            "  -p, --precision P    arithmetic of the encoder: fp32 (default), bf16 or int8\n"
            "                       (int8 is calibrated on the timed input itself); with\n"
            "                       --train also of the training step: bf16 = mixed\n"
            "                       precision (bf16 convolutions, fp32 master weights,\n"
            "                       AdamW and losses; bcae-2d, docs/PRECISION.md)\n"
            "      --encoder E      fused (default): the encoder as one planned chain, its\n"
            "                       first conv and pooling fused and computed sparsely;\n"
            "                       dense: the same with the fused layer dense (fp32);\n"
            "                       layers: layer by layer as training runs it (fp32);\n"
            "                       sparse: as fused (bcae-2d); BCAE++/BCAE-HT: fused is\n"
            "                       the 3D chain as the codec runs it, sparse / dense the\n"
            "                       chain with block 0's strided convs sparse / dense (the\n"
            "                       original BCAE always runs layer by layer)\n"
            "      --decoder D      fused (default): the decoders as one planned chain as\n"
            "                       the codec runs them (bcae-2d: where the CPU has\n"
            "                       AVX-512, else layers); layers: layer by layer;\n"
            "                       BCAE++/BCAE-HT also shuffle / rows: the chain with the\n"
            "                       transposed convs in shuffle or row-split form\n"
            "      --decoder-precision P  arithmetic of the bcae-2d decoders: fp32\n"
            "                       (default) or bf16 (the fused chain: bf16 activations,\n"
            "                       fp32 sums; docs/PRECISION.md)\n"
            "      --train          also time one training step (forward, loss, backward,\n"
            "                       AdamW, weight sync) with a training runner at batch B\n"
            "      --conv-algo A    2D convolutions: auto (default; Winograd for the 3x3\n"
            "                       stride-1 forward and backward-data where oneDNN has it;\n"
            "                       bf16: our Winograd for all three passes) or direct\n"
            "                       (oneDNN's direct everywhere, the reference)\n"
            "      --chain-conv A   bcae-2d encoder chain's 3x3 convs: auto (default;\n"
            "                       BCAE_CHAIN_CONV if set, else wino4 with AVX-512),\n"
            "                       direct (oneDNN), wino2 or wino4 (Winograd F(2x2,3x3)\n"
            "                       or F(4x4,3x3), own kernels; fp32 and bf16)\n"
            "      --only P         time one pass only: encode or decode\n"
            "      --peak           also measure the CPU's FMA peak (fp32 and bf16 dot\n"
            "                       products, register-resident) on 1 and N threads\n"
            "  -s, --seconds S      minimum timed seconds per pass (default 3)\n"
            "      --seed N         seed of the random weights (default 1)\n");
    /* Two calls: one string literal this long exceeds what C99 promises. */
    fprintf(fp,
            "      --json           print one JSON object as the last line of stdout with\n"
            "                       encoder_wedges_per_s, decoder_wedges_per_s, encoder_gflops,\n"
            "                       decoder_gflops, threads, batch, precision (and train_step_s,\n"
            "                       train_wedges_per_s, train_gflops, train_step_cpu_s\n"
            "                       (mean CPU time of a step, all threads) with --train), the\n"
            "                       CPU (vendor, family/model, ISA flags, kernels chosen)\n"
            "  -h, --help\n"
            "\n"
            "Columns: wedges/s = batch / median time; GFLOP/s counts 2 x multiply-adds of\n"
            "the model's dense convolutions (for the fused encoder an effective rate: it\n"
            "does less arithmetic than it is credited with); wedge GB/s = wedges/s x 16*192*249 voxels x 2 bytes.\n"
            "A training step counts forward + backward-weights + backward-data FLOPs (no\n"
            "backward-data for the first convolution, whose input needs no gradient).\n");
}

/* Share of non-zero voxels of the synthetic input (SPEC 1: ~10.8% in the
 * real data); compared, in 24-bit fixed point, with each voxel's hash. */
#define BENCH_OCCUPANCY 0.11
#define BENCH_SEED 0x62636165u /* "bcae": any constant, shared with compare_torch.py */

/* splitmix64's output function: a counter-based hash, so every voxel's value
 * depends on its index alone and bench/compare_torch.py can build the same
 * input with vectorised NumPy. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Wedge `index` of the synthetic input in the files' (azimuth, z, layer)
 * order: voxel i (global index index * VOXELS + i) is non-zero when the top
 * 24 bits of its hash fall below the occupancy, with ADC uniform in
 * [64, 1023] (10-bit, zero-suppressed at 64: log2(ADC+1) in (6, 10]). The
 * values do not change the dense convolutions' speed, but zeros and the
 * value range keep the loss and its gradients as on real data. */
static void synth_wedge(uint16_t *adc, uint64_t index)
{
    const uint64_t below = (uint64_t)(BENCH_OCCUPANCY * (double)(1u << 24));
    const uint64_t span = BCAE_ADC_MAX + 1 - BCAE_ZERO_SUPPRESSION;
    for (uint64_t i = 0; i < BCAE_WEDGE_VOXELS; i++) {
        uint64_t h = mix64(BENCH_SEED + (index * BCAE_WEDGE_VOXELS + i + 1) * 0x9E3779B97F4A7C15ull);
        adc[i] = (h >> 40) < below ? (uint16_t)(BCAE_ZERO_SUPPRESSION + (h & 0xffffffffu) % span)
                                   : 0;
    }
}

/* Fills the runner's input with wedges 0 .. batch-1. Returns the share of
 * non-zero voxels, or -1 when out of memory. */
static double fill_input(model_runner *r)
{
    float *host = malloc((size_t)r->batch * r->model->input_floats * sizeof *host);
    uint16_t *adc = malloc((size_t)r->batch * BCAE_WEDGE_VOXELS * sizeof *adc);
    size_t nonzero = 0;
    if (host && adc) {
        for (int b = 0; b < r->batch; b++) synth_wedge(adc + (size_t)b * BCAE_WEDGE_VOXELS, (uint64_t)b);
        for (size_t i = 0; i < (size_t)r->batch * BCAE_WEDGE_VOXELS; i++) nonzero += adc[i] != 0;
    }
    int ok = host && adc && !model_runner_load_wedges(r, adc, (size_t)r->batch, 0, host, NULL);
    free(host);
    free(adc);
    return ok ? (double)nonzero / ((double)r->batch * BCAE_WEDGE_VOXELS) : -1;
}

/* ---- timing --------------------------------------------------------------- */


static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The first run pays first touch of buffers and oneDNN's lazy set-up. The
 * median rather than the mean: on a shared machine a run that lost its core
 * to another process would otherwise move the result. */
static void bench_time_pass(void (*fn)(void *ctx), void *ctx, double seconds, double *samples,
                            bench_pass_stats *st)
{
    fn(ctx);
    long reps = 0;
    double start = cli_now(), cpu0 = cpu_seconds();
    do {
        double t0 = cli_now();
        fn(ctx);
        samples[reps++] = cli_now() - t0;
    } while (reps < BENCH_MAX_REPS && (reps < BENCH_MIN_REPS || cli_now() - start < seconds));
    st->cpu_s = (cpu_seconds() - cpu0) / (double)reps;
    qsort(samples, (size_t)reps, sizeof *samples, compare_double);
    st->reps = reps;
    st->median_s = reps % 2 ? samples[reps / 2] : 0.5 * (samples[reps / 2 - 1] + samples[reps / 2]);
    st->min_s = samples[0];
}

static void run_encode(void *ctx)
{
    model_runner *r = ctx;
    r->ops->encode(r, NULL);
}

static void run_decode(void *ctx)
{
    model_runner *r = ctx;
    r->ops->decode(r, NULL);
}

/* One training step as bcae train takes it (src/train/train_step.c), minus
 * the batch loading: the input stays in the runner. */
static void run_train_step(void *p)
{
    train_step *t = p;
    train_step_result res;
    train_step_run(t, t->opt.lr, BCAE_OK, &res, NULL);
}

/* ---- report --------------------------------------------------------------- */

typedef struct row {
    const char *name;
    bench_pass_stats st;
    double flops; /* per wedge */
    double wedges_per_s, gflops, gbytes_per_s;
} row;

static void row_finish(row *rw, int batch)
{
    rw->wedges_per_s = batch / rw->st.median_s;
    rw->gflops = rw->flops * rw->wedges_per_s * 1e-9;
    rw->gbytes_per_s = rw->wedges_per_s * (double)BCAE_WEDGE_VOXELS * 2.0 * 1e-9;
}

static void print_row(const row *rw)
{
    printf("%-11s %6ld %10.2f %10.2f %10.2f %9.3f %9.1f %8.4f\n", rw->name, rw->st.reps,
           1e3 * rw->st.median_s, 1e3 * rw->st.min_s, rw->wedges_per_s, rw->flops * 1e-9,
           rw->gflops, rw->gbytes_per_s);
}

static void json_field(const char *key, double v, int *first)
{
    printf("%s\"%s\":", *first ? "" : ",", key);
    cli_json_number(stdout, v);
    *first = 0;
}

int verb_bench(int argc, char **argv)
{
    /* The sparse codec has a bench of its own (verb_bench_sparse.c). */
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--codec") && !strcmp(argv[i + 1], "sparse"))
            return verb_bench_sparse(argc, argv);
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--codec=sparse")) return verb_bench_sparse(argc, argv);
    const char *verb = "bench";
    const char *model_path = NULL;
    long batch = 4, threads_opt = 0, mm = -1, nn = -1, dd = -1;
    double seconds = 3.0;
    uint64_t seed = 1;
    int train = 0, json = 0;
    bcae_precision precision = BCAE_PRECISION_FP32, dec_precision = BCAE_PRECISION_FP32;
    const char *encoder = "fused", *decoder = "fused";
    enum { O_M = 256, O_N, O_D, O_TRAIN, O_JSON, O_SEED, O_ENCODER, O_DEVICE, O_ARCH, O_DECONV,
           O_CONV_ALGO, O_DECODER, O_CONV3D, O_CHAIN_CONV, O_ONLY, O_PEAK, O_DEC_PRECISION };
    bcae_device device = BCAE_DEVICE_AUTO;
    const char *arch = NULL, *deconv = "auto", *conv3d = "auto";
    nn_conv2d_algo conv_algo = NN_CONV2D_AUTO;
    nn_chain_conv chain_conv = NN_CHAIN_CONV_AUTO;
    const char *only = NULL;
    int peak = 0;
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},   {"m", required_argument, 0, O_M},
        {"n", required_argument, 0, O_N},       {"d", required_argument, 0, O_D},
        {"batch", required_argument, 0, 'b'},   {"threads", required_argument, 0, 't'},
        {"device", required_argument, 0, O_DEVICE},
        {"precision", required_argument, 0, 'p'}, {"train", no_argument, 0, O_TRAIN},
        {"seconds", required_argument, 0, 's'}, {"seed", required_argument, 0, O_SEED},
        {"json", no_argument, 0, O_JSON},       {"help", no_argument, 0, 'h'},
        {"encoder", required_argument, 0, O_ENCODER},
        {"decoder", required_argument, 0, O_DECODER},
        {"decoder-precision", required_argument, 0, O_DEC_PRECISION},
        {"arch", required_argument, 0, O_ARCH}, {"deconv", required_argument, 0, O_DECONV},
        {"conv-algo", required_argument, 0, O_CONV_ALGO},
        {"conv3d", required_argument, 0, O_CONV3D},
        {"chain-conv", required_argument, 0, O_CHAIN_CONV},
        {"only", required_argument, 0, O_ONLY},
        {"peak", no_argument, 0, O_PEAK},
        {0, 0, 0, 0},
    };
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":m:b:t:p:s:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_path = optarg; break;
        case O_M:
            if (cli_parse_long(verb, "--m", optarg, 1, 32, &mm)) return CLI_EXIT_USAGE;
            break;
        case O_N:
            if (cli_parse_long(verb, "--n", optarg, 1, 32, &nn)) return CLI_EXIT_USAGE;
            break;
        case O_D:
            if (cli_parse_long(verb, "--d", optarg, 1, 6, &dd)) return CLI_EXIT_USAGE;
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
        case O_ARCH: arch = optarg; break;
        case O_DECONV: deconv = optarg; break;
        case O_CONV3D:
            if (strcmp(optarg, "auto") && strcmp(optarg, "onednn"))
                return cli_usage_error(verb, "--conv3d expects auto or onednn, got '%s'", optarg);
            conv3d = optarg;
            break;
        case O_CONV_ALGO:
            if (strcmp(optarg, "auto") && strcmp(optarg, "direct"))
                return cli_usage_error(verb, "--conv-algo expects auto or direct, got '%s'",
                                       optarg);
            conv_algo = strcmp(optarg, "direct") ? NN_CONV2D_AUTO : NN_CONV2D_DIRECT;
            break;
        case O_CHAIN_CONV:
            if (!strcmp(optarg, "auto")) chain_conv = NN_CHAIN_CONV_AUTO;
            else if (!strcmp(optarg, "direct")) chain_conv = NN_CHAIN_CONV_DIRECT;
            else if (!strcmp(optarg, "wino2")) chain_conv = NN_CHAIN_CONV_WINO2;
            else if (!strcmp(optarg, "wino4")) chain_conv = NN_CHAIN_CONV_WINO4;
            else
                return cli_usage_error(verb, "--chain-conv expects auto, direct, wino2 or wino4, "
                                             "got '%s'", optarg);
            break;
        case O_ONLY:
            if (strcmp(optarg, "encode") && strcmp(optarg, "decode"))
                return cli_usage_error(verb, "--only expects encode or decode, got '%s'", optarg);
            only = optarg;
            break;
        case O_PEAK: peak = 1; break;
        case 'p': {
            bcae_error perr;
            if (bcae_precision_parse(optarg, &precision, &perr))
                return cli_usage_error(verb, "--precision: %s", perr.message);
            break;
        }
        case O_ENCODER:
            if (strcmp(optarg, "fused") && strcmp(optarg, "sparse") && strcmp(optarg, "dense") &&
                strcmp(optarg, "layers"))
                return cli_usage_error(verb,
                                       "--encoder expects fused, sparse, dense or layers, got '%s'",
                                       optarg);
            encoder = optarg;
            break;
        case O_DECODER:
            if (strcmp(optarg, "fused") && strcmp(optarg, "shuffle") && strcmp(optarg, "rows") &&
                strcmp(optarg, "layers"))
                return cli_usage_error(verb,
                                       "--decoder expects fused, shuffle, rows or layers, got '%s'",
                                       optarg);
            decoder = optarg;
            break;
        case O_DEC_PRECISION: {
            bcae_error perr;
            if (bcae_precision_parse(optarg, &dec_precision, &perr))
                return cli_usage_error(verb, "--decoder-precision: %s", perr.message);
            if (dec_precision == BCAE_PRECISION_INT8)
                return cli_usage_error(verb, "--decoder-precision expects fp32 or bf16");
            break;
        }
        case O_TRAIN: train = 1; break;
        case 's':
            if (cli_parse_double(verb, "--seconds", optarg, 0.0, 86400.0, &seconds))
                return CLI_EXIT_USAGE;
            break;
        case O_SEED:
            if (cli_parse_u64(verb, "--seed", optarg, &seed)) return CLI_EXIT_USAGE;
            break;
        case O_JSON: json = 1; break;
        case 'h': usage(stdout); return CLI_EXIT_OK;
        case ':': return cli_usage_error(verb, "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error(verb, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error(verb, "unexpected argument '%s'", argv[optind]);
    if (model_path && (mm > 0 || nn > 0 || dd > 0))
        return cli_usage_error(verb, "--model and --m/--n/--d exclude each other");
    if (model_path && arch) return cli_usage_error(verb, "--model and --arch exclude each other");
    if (train && precision == BCAE_PRECISION_INT8)
        return cli_usage_error(verb, "--train runs fp32 or bf16, not int8");
    if (strcmp(encoder, "fused") && strcmp(encoder, "sparse") && precision != BCAE_PRECISION_FP32)
        return cli_usage_error(verb, "--encoder %s runs fp32 only", encoder);
    int threads = cli_threads(verb, threads_opt);
    if (threads < 0) return CLI_EXIT_USAGE;
    const int b = (int)batch;
    bcae_error err;
    bcae_model *model = NULL;
    if (model_path) {
        if (bcae_model_load(model_path, &model, &err)) return cli_fail(verb, &err);
    } else {
        const model_arch *a = model_arch_find(arch ? arch : "bcae-2d");
        if (!a)
            return cli_usage_error(verb, "--arch expects %s, got '%s'", model_arch_names(), arch);
        if (a != model_arch_find("bcae-2d") && (mm > 0 || nn > 0 || dd > 0))
            return cli_usage_error(verb, "--m, --n, --d are for bcae-2d only");
        model_config mc = {mm > 0 ? (int)mm : 0, nn > 0 ? (int)nn : 0, dd > 0 ? (int)dd : 0,
                           {0}, 0, MODEL_INPUT_DEFAULT};
        /* The architecture's own check (d <= m, n) is a usage error here. */
        if (model_create(a, &mc, &model, &err)) {
            cli_error(verb, "%s", err.message);
            return CLI_EXIT_USAGE;
        }
        model_init(model, seed);
    }
    const int is2d = !strcmp(model->arch->name, "bcae-2d");
    int rc = CLI_EXIT_USAGE;
    runner_options ropt = {precision, RUNNER_ENCODER_FAST, RUNNER_DECODER_FAST, NN_CONV3D_AUTO,
                           dec_precision};
    /* Options that only one family has are refused rather than ignored. */
    if (is2d) {
        if (strcmp(decoder, "fused") && strcmp(decoder, "layers")) {
            cli_error(verb, "--decoder %s is for bcae++ and bcae-ht only (bcae-2d: fused or "
                            "layers)", decoder);
            goto done_model;
        }
        if (!strcmp(decoder, "layers")) ropt.decoder = RUNNER_DECODER_LAYERS;
        if (!strcmp(decoder, "layers") && dec_precision != BCAE_PRECISION_FP32) {
            cli_error(verb, "--decoder layers runs fp32 only");
            goto done_model;
        }
        if (strcmp(conv3d, "auto") || strcmp(deconv, "auto")) {
            cli_error(verb, "--conv3d and --deconv are for the 3D models");
            goto done_model;
        }
    } else {
        if (precision != BCAE_PRECISION_FP32 || dec_precision != BCAE_PRECISION_FP32) {
            cli_error(verb, "--precision / --decoder-precision %s is not supported for 3D "
                            "models yet",
                      bcae_precision_name(precision != BCAE_PRECISION_FP32 ? precision
                                                                           : dec_precision));
            goto done_model;
        }
        if (conv_algo != NN_CONV2D_AUTO) {
            cli_error(verb, "--conv-algo is for bcae-2d only");
            goto done_model;
        }
        if (!strcmp(deconv, "direct")) ropt.conv3d_algo = NN_CONV3D_DIRECT;
        else if (!strcmp(deconv, "shuffle")) ropt.conv3d_algo = NN_CONV3D_SHUFFLE;
        else if (strcmp(deconv, "auto")) {
            cli_error(verb, "--deconv expects auto, direct or shuffle, got '%s'", deconv);
            goto done_model;
        }
        if (ropt.conv3d_algo == NN_CONV3D_SHUFFLE && !strcmp(model->arch->name, "bcae")) {
            cli_error(verb, "--deconv shuffle needs kernel (3,4,4) stride (1,2,2): bcae++ or "
                            "bcae-ht");
            goto done_model;
        }
        if (!strcmp(decoder, "shuffle")) ropt.decoder = RUNNER_DECODER_SHUFFLE;
        else if (!strcmp(decoder, "rows")) ropt.decoder = RUNNER_DECODER_ROWS;
        else if (!strcmp(decoder, "layers")) ropt.decoder = RUNNER_DECODER_LAYERS;
    }
    if (!strcmp(encoder, "layers")) ropt.encoder = RUNNER_ENCODER_LAYERS;
    else if (!strcmp(encoder, "dense")) ropt.encoder = RUNNER_ENCODER_DENSE;
    else if (!strcmp(encoder, "sparse")) ropt.encoder = RUNNER_ENCODER_SPARSE;
    /* The original BCAE has no chains: it always runs layer by layer. */
    if (!strcmp(model->arch->name, "bcae")) {
        ropt.encoder = RUNNER_ENCODER_LAYERS;
        ropt.decoder = RUNNER_DECODER_LAYERS;
    }
    rc = CLI_EXIT_FAIL;
    if (cli_device_resolve(verb, device, &device)) goto done_model;

    nn_engine *e = NULL;
    model_runner *r = NULL;
    double *samples = NULL;
    train_step tc = {0};
    row rows[3] = {{0}};
    int nrows = 0;
    char enc_used[64], dec_used[64];
    samples = malloc(BENCH_MAX_REPS * sizeof *samples);
    if (!samples) {
        cli_error(verb, "out of memory");
        goto done;
    }
    nn_engine_options eo = {.device = device, .threads = threads};
    eo.cpu.conv2d_algo = conv_algo;
    eo.cpu.chain_conv = chain_conv;
    eo.cpu.conv3d_onednn = !strcmp(conv3d, "onednn");
    nn_engine_create(&eo, &e, NULL, &err);
    if (!e || model_runner_create(e, model, b, RUNNER_INFERENCE, &ropt, &r, &err)) {
        cli_fail(verb, &err);
        goto done;
    }
    double occupancy = fill_input(r);
    /* int8 is calibrated on the timed input itself. */
    if (occupancy >= 0 && r->needs_calibration &&
        (r->ops->calibrate(r, &err) || r->ops->finish(r, &err))) {
        cli_fail(verb, &err);
        goto done;
    }
    if (occupancy < 0) {
        cli_error(verb, "out of memory");
        goto done;
    }
    r->ops->describe(r, 0, enc_used, sizeof enc_used);
    r->ops->describe(r, 1, dec_used, sizeof dec_used);
    char kernels[160], dec_kernels[160];
    r->ops->describe(r, 2, kernels, sizeof kernels);
    r->ops->describe(r, 3, dec_kernels, sizeof dec_kernels);
    /* The layer path's decoders are fp32; a chain names its precision. */
    const char *dec_prec = strncmp(dec_used, "chain ", 6) || is2d == 0 ? " fp32" : "";
    cpu_report cpu;
    cpu_report_read(&cpu);
    char isa[256];
    cpu_report_flags(cpu.flags, isa, sizeof isa);

    const int eff_threads = cli_threads_effective(threads);
    char shape[96] = "";
    if (is2d)
        snprintf(shape, sizeof shape, "(%d,%d,%d)", model->cfg.m, model->cfg.n, model->cfg.d);
    else
        snprintf(shape, sizeof shape, " (features %d,%d,%d,%d)", model->cfg.features[0],
                 model->cfg.features[1], model->cfg.features[2], model->cfg.features[3]);
    printf("bcae bench: %s%s %s, engine %s, %d threads, encoder %s %s, decoders %s%s, "
           "batch %d, conv algorithm %s, transposed convs %s, small 3D convs %s, >= %g s per "
           "pass\n",
           model->arch->title, shape, model_path ? model_path : "random weights", e->ops->name,
           eff_threads, enc_used, bcae_precision_name(precision), dec_used, dec_prec, b,
           conv_algo == NN_CONV2D_DIRECT ? "direct" : "auto", deconv, conv3d, seconds);
    printf("cpu: %s (%s, family %d model %d stepping %d%s%s), %d logical CPUs\n"
           "isa: %s\n", cpu.brand[0] ? cpu.brand : "unknown", cpu.vendor, cpu.family, cpu.model,
           cpu.stepping, cpu_report_uarch(&cpu)[0] ? ", " : "", cpu_report_uarch(&cpu),
           cpu.logical_cpus, isa);
    if (cpu_isa_cap())
        printf("isa cap: BCAE_MAX_ISA=%s (the backend's own kernels use nothing above it)\n",
               cpu_isa_cap());
    if (kernels[0]) printf("encoder kernels: %s\n", kernels);
    if (dec_kernels[0]) printf("decoder kernels: %s\n", dec_kernels);
    cpu_peak pk1 = {0}, pkn = {0};
    if (peak) {
        cpu_peak_measure(1, 1.0, &pk1);
        cpu_peak_measure(eff_threads, 1.0, &pkn);
        printf("peak (%d-bit FMA, register-resident): fp32 %.1f GFLOP/s on 1 thread, %.1f on %d; "
               "bf16 dot %.1f / %.1f\n", pkn.vector_bits, pk1.fp32_gflops, pkn.fp32_gflops,
               eff_threads, pk1.bf16_gflops, pkn.bf16_gflops);
    }
    printf("input: %.1f%% non-zero, code (", 100.0 * occupancy);
    for (int i = 0; i < model->code_ndim; i++)
        printf(i ? ", %zu" : "%zu", model->code_shape[i]);
    printf("), inference arena %.1f MiB\n\n", (double)r->ops->arena_bytes(r) / (1 << 20));
    printf("%-11s %6s %10s %10s %10s %9s %9s %8s\n", "pass", "reps", "median ms", "min ms",
           "wedges/s", "GFLOP/w", "GFLOP/s", "wedge GB/s");
    fflush(stdout);

    rows[nrows] = (row){"encode", {0}, model->arch->encoder_flops(model), 0, 0, 0};
    if (only && !strcmp(only, "decode")) {
        run_encode(r); /* the code the decoders read */
    } else {
        bench_time_pass(run_encode, r, seconds, samples, &rows[nrows].st);
        row_finish(&rows[nrows], b);
        print_row(&rows[nrows]);
    }
    nrows++;
    fflush(stdout);
    /* The decoders read the code the encoder left: the same every run. */
    rows[nrows] = (row){"decode", {0}, model->arch->decoder_flops(model), 0, 0, 0};
    if (!only || !strcmp(only, "decode")) {
        bench_time_pass(run_decode, r, seconds, samples, &rows[nrows].st);
        row_finish(&rows[nrows], b);
        print_row(&rows[nrows]);
    }
    nrows++;
    fflush(stdout);

    if (train) {
        /* The inference runner's memory goes back before the (larger)
         * training runner is planned. */
        model_runner_destroy(r);
        r = NULL;
        if (model_runner_create(e, model, b, RUNNER_TRAIN, &ropt, &r, &err) ||
            train_step_init(&tc, model, r, threads, NULL, &err)) {
            cli_fail(verb, &err);
            goto done;
        }
        if (fill_input(r) < 0) {
            cli_error(verb, "out of memory");
            goto done;
        }
        rows[nrows] = (row){"train step", {0}, model->arch->train_flops(model), 0, 0, 0};
        bench_time_pass(run_train_step, &tc, seconds, samples, &rows[nrows].st);
        row_finish(&rows[nrows], b);
        print_row(&rows[nrows++]);
        printf("(training arena %.1f MiB, %s convolutions, mean CPU time %.3f s per step)\n",
               (double)r->ops->arena_bytes(r) / (1 << 20), bcae_precision_name(precision),
               rows[nrows - 1].st.cpu_s);
    }

    if (json) {
        int first = 1;
        putchar('{');
        json_field("encoder_wedges_per_s", rows[0].wedges_per_s, &first);
        json_field("decoder_wedges_per_s", rows[1].wedges_per_s, &first);
        json_field("encoder_gflops", rows[0].gflops, &first);
        json_field("decoder_gflops", rows[1].gflops, &first);
        json_field("encoder_ms_per_batch", 1e3 * rows[0].st.median_s, &first);
        json_field("decoder_ms_per_batch", 1e3 * rows[1].st.median_s, &first);
        json_field("encoder_min_ms_per_batch", 1e3 * rows[0].st.min_s, &first);
        json_field("decoder_min_ms_per_batch", 1e3 * rows[1].st.min_s, &first);
        json_field("encoder_gbytes_per_s", rows[0].gbytes_per_s, &first);
        json_field("encoder_flops_per_wedge", rows[0].flops, &first);
        json_field("decoder_flops_per_wedge", rows[1].flops, &first);
        if (train) {
            json_field("train_step_s", rows[2].st.median_s, &first);
            json_field("train_wedges_per_s", rows[2].wedges_per_s, &first);
            json_field("train_gflops", rows[2].gflops, &first);
            json_field("train_flops_per_wedge", rows[2].flops, &first);
            json_field("train_step_cpu_s", rows[2].st.cpu_s, &first);
        }
        json_field("threads", eff_threads, &first);
        json_field("batch", b, &first);
        json_field("seconds", seconds, &first);
        json_field("occupancy", occupancy, &first);
        printf(",\"precision\":\"%s\",\"encoder\":\"%s\",\"decoder\":\"%s\",\"arch\":\"%s\"",
               bcae_precision_name(precision), enc_used, dec_used, model->arch->name);
        printf(",\"decoder_precision\":\"%s\",\"decoder_kernels\":\"%s\"",
               bcae_precision_name(dec_precision), dec_kernels);
        printf(",\"isa_cap\":\"%s\"", cpu_isa_cap() ? cpu_isa_cap() : "");
        if (is2d)
            printf(",\"m\":%d,\"n\":%d,\"d\":%d", model->cfg.m, model->cfg.n, model->cfg.d);
        else
            printf(",\"features\":[%d,%d,%d,%d]", model->cfg.features[0], model->cfg.features[1],
                   model->cfg.features[2], model->cfg.features[3]);
        printf(",\"engine\":\"%s\",\"conv_algo\":\"%s\",\"deconv\":\"%s\",\"conv3d\":\"%s\"",
               e->ops->name, conv_algo == NN_CONV2D_DIRECT ? "direct" : "auto", deconv, conv3d);
        /* Strings from CPUID and our own words: no quotes or backslashes
         * to escape but for the brand string, which gets them dropped. */
        char brand[sizeof cpu.brand];
        size_t nb = 0;
        for (const char *p = cpu.brand; *p; p++)
            if (*p != '"' && *p != '\\' && (unsigned char)*p >= 0x20) brand[nb++] = *p;
        brand[nb] = 0;
        printf(",\"encoder_kernels\":\"%s\",\"cpu\":{\"vendor\":\"%s\",\"brand\":\"%s\","
               "\"family\":%d,\"model\":%d,\"stepping\":%d,\"uarch\":\"%s\","
               "\"logical_cpus\":%d,\"isa\":\"%s\"}",
               kernels, cpu.vendor, brand, cpu.family, cpu.model, cpu.stepping,
               cpu_report_uarch(&cpu), cpu.logical_cpus, isa);
        if (peak)
            printf(",\"peak\":{\"vector_bits\":%d,\"fp32_gflops_1t\":%.2f,\"fp32_gflops\":%.2f,"
                   "\"bf16_gflops_1t\":%.2f,\"bf16_gflops\":%.2f,\"threads\":%d}",
                   pkn.vector_bits, pk1.fp32_gflops, pkn.fp32_gflops, pk1.bf16_gflops,
                   pkn.bf16_gflops, pkn.threads);
        printf("}\n");
    }
    rc = CLI_EXIT_OK;
done:
    free(samples);
    train_step_free(&tc);
    model_runner_destroy(r);
    nn_engine_destroy(e);
done_model:
    bcae_model_free(model);
    return rc;
}
