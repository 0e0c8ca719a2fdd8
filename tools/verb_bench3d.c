/* bcae bench for the 3D models: encoder, decoders and a training step. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "codec/codec3d.h"
#include "train/optim.h"
#include "verb3d.h"

/* The synthetic wedges of verb_bench.c (same hash, occupancy and seed, so
 * bench/compare_torch_3d.py builds the same input). */
#define BENCH_OCCUPANCY 0.11
#define BENCH_SEED 0x62636165u

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

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

static int fill_input(nn_engine *e, const bcae3d_model *m, bcae3d_runner *r, int batch)
{
    size_t per = bcae3d_input_floats(m);
    float *host = malloc((size_t)batch * per * sizeof *host);
    uint16_t *adc = malloc(BCAE_WEDGE_VOXELS * sizeof *adc);
    if (!host || !adc) {
        free(host);
        free(adc);
        return -1;
    }
    for (int b = 0; b < batch; b++) {
        synth_wedge(adc, (uint64_t)b);
        bcae3d_wedge_to_input(m, adc, host + (size_t)b * per);
    }
    nn_tensor in = nn_tensor5_flat(bcae3d_runner_input(r));
    e->ops->from_nchw(e, host, &in);
    free(host);
    free(adc);
    return 0;
}

/* bench_time_pass's median, with the count of timed runs. */
static double time_pass(void (*fn)(void *ctx), void *ctx, double seconds, double *samples,
                        long *reps_out)
{
    bench_pass_stats st;
    bench_time_pass(fn, ctx, seconds, samples, &st);
    *reps_out = st.reps;
    return st.median_s;
}

static void run_encode(void *ctx) { bcae3d_runner_encode(ctx); }
static void run_decode(void *ctx) { bcae3d_runner_decode(ctx); }

typedef struct train_ctx {
    bcae3d_runner *r;
    bcae3d_model *m;
    float *grad, *mo, *v;
    adamw_config opt;
    long step;
    double coef;
    int threads;
} train_ctx;

static void run_train_step(void *p)
{
    train_ctx *t = p;
    bcae3d_runner_encode(t->r);
    bcae3d_runner_decode(t->r);
    nn_loss_sums ls;
    bcae3d_runner_loss_sums(t->r, &ls);
    double l_seg = ls.focal / ls.voxels, l_reg = ls.l1 / ls.voxels;
    t->coef = train_coef_update(t->coef, l_reg, l_seg);
    bcae3d_runner_backward(t->r, (float)t->coef, t->grad);
    t->step++;
    adamw_step(&t->opt, t->opt.lr, t->step, t->m->weights, t->grad, t->mo, t->v, t->m->nfloats,
               t->threads);
    bcae3d_runner_sync_weights(t->r);
}

static void json_field(const char *key, double v, int *first)
{
    printf("%s\"%s\":", *first ? "" : ",", key);
    cli_json_number(stdout, v);
    *first = 0;
}

int bench3d_run(const char *verb, const bench3d_args *a)
{
    bcae_error err;
    bcae3d_model model;
    nn_conv3d_algo algo = NN_CONV3D_AUTO;
    if (!strcmp(a->algo, "direct")) algo = NN_CONV3D_DIRECT;
    else if (!strcmp(a->algo, "shuffle")) algo = NN_CONV3D_SHUFFLE;
    else if (strcmp(a->algo, "auto"))
        return cli_usage_error(verb, "--deconv expects auto, direct or shuffle, got '%s'",
                               a->algo);
    if (a->model_path) {
        if (bcae3d_load(a->model_path, &model, &err)) return cli_fail(verb, &err);
    } else {
        bcae3d_config cfg;
        bcae3d_config_default((bcae3d_arch)bcae3d_arch_parse(a->arch), &cfg);
        if (bcae3d_create(&cfg, &model, &err)) return cli_fail(verb, &err);
        bcae3d_init(&model, a->seed);
    }
    if (algo == NN_CONV3D_SHUFFLE && model.cfg.arch == BCAE3D_ORIGINAL) {
        bcae3d_destroy(&model);
        return cli_usage_error(verb, "--deconv shuffle needs kernel (3,4,4) stride (1,2,2): "
                                     "bcae++ or bcae-ht");
    }
    nn_engine *e = NULL;
    bcae3d_runner *r = NULL;
    train_ctx tc = {0};
    int rc = CLI_EXIT_FAIL;
    const int b = a->batch;
    double *samples = malloc(BENCH_MAX_REPS * sizeof *samples);
    if (!samples) {
        cli_error(verb, "out of memory");
        goto done;
    }
    nn_engine_options eo = {.device = BCAE_DEVICE_CPU, .threads = a->threads,
                            .cpu.conv3d_onednn = !strcmp(a->conv3d, "onednn")};
    nn_engine_create(&eo, &e, NULL, &err);
    if (!e || bcae3d_runner_create(e, &model, b, 0, algo, &r, &err)) {
        cli_fail(verb, &err);
        goto done;
    }
    const char *enc_used = "layers";
    if (strcmp(a->encoder, "layers") && model.cfg.arch != BCAE3D_ORIGINAL) {
        bcae_status s;
        if (!strcmp(a->encoder, "fused"))
            s = bcae3d_runner_use_fast_encoder(r, &err);
        else
            s = bcae3d_runner_use_chain(r, strcmp(a->encoder, "dense") ? NN_FIRST_SPARSE : NN_FIRST_DENSE,
                                        &err);
        if (s) {
            cli_fail(verb, &err);
            goto done;
        }
        enc_used = a->encoder;
    }
    const char *dec_used = "layers";
    if (strcmp(a->decoder, "layers") && model.cfg.arch != BCAE3D_ORIGINAL) {
        bcae_status s;
        if (!strcmp(a->decoder, "fused"))
            s = bcae3d_runner_use_fast_decoder(r, &err);
        else
            s = bcae3d_runner_use_decoder_chain(
                r, strcmp(a->decoder, "rows") ? NN_DECONV_SHUFFLE : NN_DECONV_ROWS, 0, &err);
        if (s) {
            cli_fail(verb, &err);
            goto done;
        }
        dec_used = a->decoder;
    }
    if (fill_input(e, &model, r, b)) {
        cli_error(verb, "out of memory");
        goto done;
    }
    const int eff = cli_threads_effective(a->threads);
    const double fe = bcae3d_encoder_flops(&model), fd = bcae3d_decoder_flops(&model);
    printf("bcae bench: %s (features %d,%d,%d,%d) %s, engine %s, %d threads, fp32, batch %d, "
           "encoder %s, decoders %s, transposed convs %s, small convs %s, >= %g s per pass\n",
           bcae3d_arch_name(model.cfg.arch), model.cfg.features[0], model.cfg.features[1],
           model.cfg.features[2], model.cfg.features[3],
           a->model_path ? a->model_path : "random weights", e->ops->name, eff, b, enc_used,
           dec_used, a->algo, a->conv3d, a->seconds);
    printf("code (8, %d, %d, %d), inference arena %.1f MiB\n\n", model.code_dims[0],
           model.code_dims[1], model.code_dims[2],
           (double)bcae3d_runner_arena_bytes(r) / (1 << 20));
    printf("%-11s %6s %10s %10s %9s %9s\n", "pass", "reps", "median ms", "wedges/s", "GFLOP/w",
           "GFLOP/s");
    long reps;
    double t_enc = time_pass(run_encode, r, a->seconds, samples, &reps);
    printf("%-11s %6ld %10.2f %10.2f %9.3f %9.1f\n", "encode", reps, 1e3 * t_enc, b / t_enc,
           fe * 1e-9, fe * b / t_enc * 1e-9);
    fflush(stdout);
    double t_dec = time_pass(run_decode, r, a->seconds, samples, &reps);
    printf("%-11s %6ld %10.2f %10.2f %9.3f %9.1f\n", "decode", reps, 1e3 * t_dec, b / t_dec,
           fd * 1e-9, fd * b / t_dec * 1e-9);
    fflush(stdout);
    double t_train = 0, ft = 3.0 * (fe + fd);
    if (a->train) {
        bcae3d_runner_destroy(r);
        r = NULL;
        if (bcae3d_runner_create(e, &model, b, 1, algo, &r, &err)) {
            cli_fail(verb, &err);
            goto done;
        }
        tc.grad = calloc(model.nfloats, sizeof(float));
        tc.mo = calloc(model.nfloats, sizeof(float));
        tc.v = calloc(model.nfloats, sizeof(float));
        if (!tc.grad || !tc.mo || !tc.v || fill_input(e, &model, r, b)) {
            cli_error(verb, "out of memory");
            goto done;
        }
        tc.r = r;
        tc.m = &model;
        adamw_config_default(&tc.opt);
        tc.coef = TRAIN_COEF0;
        tc.threads = a->threads;
        t_train = time_pass(run_train_step, &tc, a->seconds, samples, &reps);
        printf("%-11s %6ld %10.2f %10.2f %9.3f %9.1f\n", "train step", reps, 1e3 * t_train,
               b / t_train, ft * 1e-9, ft * b / t_train * 1e-9);
        printf("(training arena %.1f MiB)\n", (double)bcae3d_runner_arena_bytes(r) / (1 << 20));
    }
    if (a->json) {
        int first = 1;
        putchar('{');
        json_field("encoder_wedges_per_s", b / t_enc, &first);
        json_field("decoder_wedges_per_s", b / t_dec, &first);
        json_field("encoder_gflops", fe * b / t_enc * 1e-9, &first);
        json_field("decoder_gflops", fd * b / t_dec * 1e-9, &first);
        json_field("encoder_ms_per_batch", 1e3 * t_enc, &first);
        json_field("decoder_ms_per_batch", 1e3 * t_dec, &first);
        json_field("encoder_flops_per_wedge", fe, &first);
        json_field("decoder_flops_per_wedge", fd, &first);
        if (a->train) {
            json_field("train_step_s", t_train, &first);
            json_field("train_wedges_per_s", b / t_train, &first);
            json_field("train_gflops", ft * b / t_train * 1e-9, &first);
        }
        json_field("threads", eff, &first);
        json_field("batch", b, &first);
        json_field("seconds", a->seconds, &first);
        printf(",\"precision\":\"fp32\",\"arch\":\"%s\",\"deconv\":\"%s\",\"encoder\":\"%s\","
               "\"decoder\":\"%s\",\"conv3d\":\"%s\","
               "\"engine\":\"%s\"}\n",
               bcae3d_arch_name(model.cfg.arch), a->algo, enc_used, dec_used, a->conv3d,
               e->ops->name);
    }
    rc = CLI_EXIT_OK;
done:
    free(samples);
    free(tc.grad);
    free(tc.mo);
    free(tc.v);
    bcae3d_runner_destroy(r);
    nn_engine_destroy(e);
    bcae3d_destroy(&model);
    return rc;
}
