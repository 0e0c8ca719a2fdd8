/*
 * bench_conv: times the CPU backend's convolutions (forward, backward-data,
 * backward-weights) on the layer shapes of BCAE-2D at batch 4, plus one big
 * dense convolution as a "peak" reference for what oneDNN reaches on this
 * machine with these threads.
 *
 *   bench_conv [--threads T] [--min-time SECONDS] [--only TEXT] [--direct] [--bf16]
 *
 * --only runs just the layers whose name contains TEXT. --direct plans every
 * conv with the direct algorithm (default: the engine's choice, Winograd for
 * the 3x3 stride-1 forward and backward-data); the last column names the
 * passes that ran Winograd (f = forward, d = backward-data, w = weights).
 * --bf16 plans every conv in mixed precision (training's bf16: oneDNN's
 * jit_bf16 passes, and our own backward-weights for the 3x3 stride-1 convs
 * unless --direct asks for oneDNN's everywhere; cpu_wgrad.h).
 *
 * Each pass runs once untimed (first-touch, caches), then repeatedly until
 * --min-time (default 0.3 s) has passed and at least 5 times (at most
 * MAX_REPS); the table shows the median time, so that a rep that lost its
 * core to another process (the machine is shared) does not move the result. GFLOP = 2 * N * Cout * Hout * Wout * Cin * k * k for every pass
 * (the bias and its gradient are not counted).
 */
#include <dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nn/engine.h"

enum { MIN_REPS = 5, MAX_REPS = 1000 };

typedef struct bench_shape {
    const char *role;
    nn_conv2d_desc d;
} bench_shape;

/* BCAE-2D(4, 8, 3) at batch 4: its encoder's and decoders' conv shapes. */
static const bench_shape SHAPES[] = {
    {"init_conv 7x7", {4, 16, 32, 192, 256, 7, 1, 3, NN_CONV2D_AUTO, BCAE_PRECISION_FP32}},
    {"init_conv+pool as k8 s2",
     {4, 16, 32, 192, 256, 8, 2, 3, NN_CONV2D_AUTO, BCAE_PRECISION_FP32}},
    {"res 3x3 @192x256", {4, 32, 32, 192, 256, 3, 1, 1, NN_CONV2D_AUTO, BCAE_PRECISION_FP32}},
    {"res 3x3 @96x128", {4, 32, 32, 96, 128, 3, 1, 1, NN_CONV2D_AUTO, BCAE_PRECISION_FP32}},
    {"res 3x3 @48x64", {4, 32, 32, 48, 64, 3, 1, 1, NN_CONV2D_AUTO, BCAE_PRECISION_FP32}},
    {"res 3x3 @24x32", {4, 32, 32, 24, 32, 3, 1, 1, NN_CONV2D_AUTO, BCAE_PRECISION_FP32}},
    {"output 1x1", {4, 32, 16, 192, 256, 1, 1, 0, NN_CONV2D_AUTO, BCAE_PRECISION_FP32}},
    {"peak ref 256ch 3x3", {4, 256, 256, 64, 64, 3, 1, 1, NN_CONV2D_AUTO, BCAE_PRECISION_FP32}},
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static float *alloc_random(size_t count, unsigned *state)
{
    float *p = malloc(count * sizeof *p);
    if (!p) return NULL;
    for (size_t i = 0; i < count; i++) {
        *state = *state * 1664525u + 1013904223u; /* LCG: values only need to be non-trivial */
        p[i] = (float)(*state >> 8) * 0x1.0p-24f - 0.5f;
    }
    return p;
}

enum { PASS_FWD, PASS_BWD_DATA, PASS_BWD_WEIGHTS };

static void run_pass(const nn_engine *e, nn_conv *c, int pass, nn_tensor *x, nn_tensor *y,
                     nn_tensor *dx, nn_tensor *dy, float *dw, float *db)
{
    switch (pass) {
    case PASS_FWD: e->ops->conv_forward(c, x, y, NN_POST_NONE); break;
    case PASS_BWD_DATA: e->ops->conv_backward_data(c, dy, dx); break;
    default: e->ops->conv_backward_weights(c, x, dy, dw, db); break;
    }
}

int main(int argc, char **argv)
{
    int threads = 2;
    double min_time = 0.3;
    const char *only = NULL;
    int direct = 0, bf16 = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            threads = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--min-time") && i + 1 < argc) {
            min_time = atof(argv[++i]);
        } else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
            only = argv[++i];
        } else if (!strcmp(argv[i], "--direct")) {
            direct = 1;
        } else if (!strcmp(argv[i], "--bf16")) {
            bf16 = 1;
        } else {
            fprintf(stderr, "usage: %s [--threads T] [--min-time SECONDS] [--only TEXT] [--direct] "
                            "[--bf16]\n",
                    argv[0]);
            return 2;
        }
    }

    nn_engine *e = NULL;
    bcae_error err;
    nn_engine_options eo = {.device = BCAE_DEVICE_CPU, .threads = threads,
                            .cpu.conv2d_algo = direct ? NN_CONV2D_DIRECT : NN_CONV2D_AUTO};
    if (nn_engine_create(&eo, &e, NULL, &err) != BCAE_OK) {
        fprintf(stderr, "bench_conv: %s\n", err.message);
        return 1;
    }
    const dnnl_version_t *v = dnnl_version();
    printf("bench_conv: %s, oneDNN %d.%d.%d, %d threads, %s, %s, >= %.2f s per pass\n\n",
           e->ops->name, v->major, v->minor, v->patch, threads, bf16 ? "bf16" : "fp32",
           direct ? "direct only" : "Winograd where chosen", min_time);
    printf("%-24s %-22s %7s | %9s %7s | %9s %7s | %9s %7s | %s\n", "layer",
           "shape (N,Ci->Co,HxW)", "GFLOP", "fwd ms", "GF/s", "bwd-d ms", "GF/s", "bwd-w ms",
           "GF/s", "wino");

    int status = 0;
    unsigned seed = 12345u;
    for (size_t s = 0; s < sizeof SHAPES / sizeof SHAPES[0]; s++) {
        if (only && !strstr(SHAPES[s].role, only)) continue;
        nn_conv2d_desc desc = SHAPES[s].d;
        if (bf16) desc.precision = BCAE_PRECISION_BF16;
        const nn_conv2d_desc *d = &desc;
        int ho = (d->h + 2 * d->pad - d->k) / d->stride + 1;
        int wo = (d->w + 2 * d->pad - d->k) / d->stride + 1;
        double gflop = 2.0 * d->n * d->cout * ho * wo * (double)d->cin * d->k * d->k * 1e-9;
        size_t nw = (size_t)d->cout * (size_t)d->cin * (size_t)d->k * (size_t)d->k;

        nn_conv *c = NULL;
        if (e->ops->conv2d_create(e, d, 1, &c, &err) != BCAE_OK) {
            fprintf(stderr, "bench_conv: %s\n", err.message);
            status = 1;
            continue;
        }
        nn_tensor x = {d->n, d->cin, d->h, d->w, NULL}, dx = x;
        nn_tensor y = {d->n, d->cout, ho, wo, NULL}, dy = y;
        x.data = alloc_random(nn_tensor_floats(e, d->n, d->cin, d->h, d->w), &seed);
        dx.data = alloc_random(nn_tensor_floats(e, d->n, d->cin, d->h, d->w), &seed);
        y.data = alloc_random(nn_tensor_floats(e, d->n, d->cout, ho, wo), &seed);
        dy.data = alloc_random(nn_tensor_floats(e, d->n, d->cout, ho, wo), &seed);
        float *w = alloc_random(nw, &seed), *b = alloc_random((size_t)d->cout, &seed);
        float *dw = calloc(nw, sizeof *dw), *db = calloc((size_t)d->cout, sizeof *db);
        if (!x.data || !dx.data || !y.data || !dy.data || !w || !b || !dw || !db) {
            fprintf(stderr, "bench_conv: out of memory\n");
            return 1;
        }
        e->ops->conv_set_weights(c, w, b);

        double ms[3], times[MAX_REPS];
        for (int pass = 0; pass < 3; pass++) {
            run_pass(e, c, pass, &x, &y, &dx, &dy, dw, db); /* warm-up */
            int reps = 0;
            double start = now_s();
            do {
                double t0 = now_s();
                run_pass(e, c, pass, &x, &y, &dx, &dy, dw, db);
                times[reps++] = now_s() - t0;
            } while (reps < MAX_REPS && (reps < MIN_REPS || now_s() - start < min_time));
            qsort(times, (size_t)reps, sizeof times[0], compare_double);
            ms[pass] = 1e3 * times[reps / 2];
        }
        char shape[64];
        snprintf(shape, sizeof shape, "%d,%d->%d,%dx%d k%d s%d", d->n, d->cin, d->cout, d->h,
                 d->w, d->k, d->stride);
        int wino = e->ops->conv_winograd ? e->ops->conv_winograd(c) : 0;
        printf("%-24s %-22s %7.3f | %9.2f %7.1f | %9.2f %7.1f | %9.2f %7.1f | %s%s%s%s\n",
               SHAPES[s].role, shape, gflop, ms[0], gflop / ms[0] * 1e3, ms[1],
               gflop / ms[1] * 1e3, ms[2], gflop / ms[2] * 1e3,
               wino & NN_PASS_FORWARD ? "f" : "", wino & NN_PASS_BACKWARD_DATA ? "d" : "",
               wino & NN_PASS_BACKWARD_WEIGHTS ? "w" : "", wino ? "" : "-");
        fflush(stdout);

        e->ops->conv_destroy(c);
        free(x.data);
        free(dx.data);
        free(y.data);
        free(dy.data);
        free(w);
        free(b);
        free(dw);
        free(db);
    }
    nn_engine_destroy(e);
    return status;
}
