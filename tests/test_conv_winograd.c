/*
 * The CPU backend's Winograd convolutions (the default for 3x3 stride-1
 * forward and backward-data where oneDNN has the kernel) against the same
 * convolutions forced to the direct algorithm (NN_CONV2D_DIRECT), on random
 * data: forward with and without the LeakyReLU (applied as a separate pass
 * after Winograd), backward-data, backward-weights (weight and bias).
 *
 * Error measure: max |winograd - direct| / max |direct| per tensor. Winograd
 * F(4x4, 3x3) multiplies by transform constants up to ~8 before summing and
 * divides back, so it rounds a few float32 ulps of the tensor's magnitude
 * worse than direct: ~1e-6 measured (printed below). The bound 1e-4 holds
 * that with margin for other shapes and thread counts, while a wrong
 * algorithm, layout, post-op or padding is off by O(1) of the magnitude; the
 * test checks that a spatially flipped kernel (correlation vs convolution)
 * and a wrong LeakyReLU slope are caught, so it cannot pass vacuously.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/rng.h"
#include "nn/cpu/cpu_internal.h"

#define WINO_TOL 1e-4

static bcae_rng rng;
static double worst_seen = 0.0;

static float *random_floats(size_t count, float scale)
{
    float *p = malloc(count * sizeof *p);
    for (size_t i = 0; i < count; i++)
        p[i] = scale * (float)(2.0 * bcae_rng_uniform(&rng) - 1.0);
    return p;
}

static nn_tensor tensor_new(nn_engine *e, int n, int c, int h, int w)
{
    nn_tensor t = {n, c, h, w, NULL};
    t.data = malloc(nn_tensor_floats(e, n, c, h, w) * sizeof(float));
    return t;
}

/* max |a - b| / max |b| over count floats (both in the engine's layout: the
 * measure does not depend on the element order). */
static double rel_error(const float *a, const float *b, size_t count)
{
    double diff = 0.0, mag = 0.0;
    for (size_t i = 0; i < count; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= diff)) diff = d; /* NaN propagates */
        if (fabs((double)b[i]) > mag) mag = fabs((double)b[i]);
    }
    return mag > 0.0 ? diff / mag : diff;
}

static void expect_close(const char *what, const nn_conv2d_desc *d, const float *got,
                         const float *want, size_t count)
{
    double r = rel_error(got, want, count);
    if (r > worst_seen || r != r) worst_seen = r;
    CHECK_MSG(r <= WINO_TOL, "%d->%d %dx%dx%d %s: winograd vs direct %.3g > %g", d->cin,
              d->cout, d->n, d->h, d->w, what, r, WINO_TOL);
}

typedef struct pair {
    nn_conv *wino, *direct;
} pair;

static void compare_shape(nn_engine *e, int n, int cin, int cout, int h, int w)
{
    nn_conv2d_desc d = {n, cin, cout, h, w, 3, 1, 1, NN_CONV2D_AUTO, BCAE_PRECISION_FP32};
    nn_conv2d_desc dd = d;
    dd.algo = NN_CONV2D_DIRECT;
    bcae_error err;
    pair p = {NULL, NULL};
    CHECK(e->ops->conv2d_create(e, &d, 1, &p.wino, &err) == BCAE_OK);
    CHECK(e->ops->conv2d_create(e, &dd, 1, &p.direct, &err) == BCAE_OK);
    if (!p.wino || !p.direct) return;
    /* The comparison is only meaningful if the AUTO conv really runs
     * Winograd (oneDNN 2.6 has jit_wino_4x3 for these AVX-512 shapes). */
    CHECK_MSG(e->ops->conv_winograd(p.wino) == (NN_PASS_FORWARD | NN_PASS_BACKWARD_DATA),
              "%d->%d %dx%d: winograd passes 0x%x", cin, cout, h, w,
              (unsigned)e->ops->conv_winograd(p.wino));
    CHECK(e->ops->conv_winograd(p.direct) == 0);

    size_t nx = (size_t)n * cin * h * w, ny = (size_t)n * cout * h * w;
    size_t nw = (size_t)cout * cin * 9;
    float *x = random_floats(nx, 1.0f), *dy_host = random_floats(ny, 1.0f);
    float *wt = random_floats(nw, 1.0f / sqrtf((float)(cin * 9)));
    float *b = random_floats((size_t)cout, 0.5f);
    nn_tensor tx = tensor_new(e, n, cin, h, w), tdy = tensor_new(e, n, cout, h, w);
    nn_tensor y1 = tensor_new(e, n, cout, h, w), y2 = tensor_new(e, n, cout, h, w);
    nn_tensor dx1 = tensor_new(e, n, cin, h, w), dx2 = tensor_new(e, n, cin, h, w);
    e->ops->from_nchw(e, x, &tx);
    e->ops->from_nchw(e, dy_host, &tdy);
    e->ops->conv_set_weights(p.wino, wt, b);
    e->ops->conv_set_weights(p.direct, wt, b);

    e->ops->conv_forward(p.wino, &tx, &y1, NN_POST_NONE);
    e->ops->conv_forward(p.direct, &tx, &y2, NN_POST_NONE);
    expect_close("forward", &d, y1.data, y2.data, ny);

    e->ops->conv_forward(p.wino, &tx, &y1, NN_POST_LEAKY_RELU);
    e->ops->conv_forward(p.direct, &tx, &y2, NN_POST_LEAKY_RELU);
    expect_close("forward+LeakyReLU", &d, y1.data, y2.data, ny);

    e->ops->conv_backward_data(p.wino, &tdy, &dx1);
    e->ops->conv_backward_data(p.direct, &tdy, &dx2);
    expect_close("backward-data", &d, dx1.data, dx2.data, nx);

    float *gw1 = calloc(nw, sizeof *gw1), *gw2 = calloc(nw, sizeof *gw2);
    float *gb1 = calloc((size_t)cout, sizeof *gb1), *gb2 = calloc((size_t)cout, sizeof *gb2);
    e->ops->conv_backward_weights(p.wino, &tx, &tdy, gw1, gb1);
    e->ops->conv_backward_weights(p.direct, &tx, &tdy, gw2, gb2);
    expect_close("backward-weights", &d, gw1, gw2, nw);
    expect_close("backward-bias", &d, gb1, gb2, (size_t)cout);

    /* Negative controls: the measure must flag plausible wrong results.
     * A 180-degree flipped kernel (convolution instead of correlation): */
    float *flip = malloc(nw * sizeof *flip);
    for (size_t oc = 0; oc < nw / 9; oc++)
        for (int t = 0; t < 9; t++) flip[oc * 9 + t] = wt[oc * 9 + 8 - t];
    e->ops->conv_set_weights(p.wino, flip, b);
    e->ops->conv_forward(p.wino, &tx, &y1, NN_POST_NONE);
    e->ops->conv_forward(p.direct, &tx, &y2, NN_POST_NONE);
    double r = rel_error(y1.data, y2.data, ny);
    CHECK_MSG(r > 100 * WINO_TOL, "flipped kernel not caught: %.3g", r);
    /* The LeakyReLU with slope 0 (plain ReLU, what Winograd could fuse): */
    e->ops->conv_set_weights(p.wino, wt, b);
    e->ops->conv_forward(p.wino, &tx, &y1, NN_POST_NONE);
    for (size_t i = 0; i < ny; i++) y1.data[i] = y1.data[i] > 0 ? y1.data[i] : 0.0f;
    e->ops->conv_forward(p.direct, &tx, &y2, NN_POST_LEAKY_RELU);
    r = rel_error(y1.data, y2.data, ny);
    CHECK_MSG(r > 10 * WINO_TOL, "wrong LeakyReLU slope not caught: %.3g", r);

    free(flip);
    free(gw1);
    free(gw2);
    free(gb1);
    free(gb2);
    free(x);
    free(dy_host);
    free(wt);
    free(b);
    nn_tensor *ts[] = {&tx, &tdy, &y1, &y2, &dx1, &dx2};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) free(ts[i]->data);
    e->ops->conv_destroy(p.wino);
    e->ops->conv_destroy(p.direct);
}

/* The engine-wide option: every conv planned on an engine created with it
 * runs direct (compare_shape sees the default engine plan Winograd). */
static void check_engine_option(nn_engine *e)
{
    nn_conv2d_desc d = {2, 32, 32, 24, 32, 3, 1, 1, NN_CONV2D_AUTO, BCAE_PRECISION_FP32};
    bcae_error err;
    nn_conv *c = NULL;
    nn_engine *direct = NULL;
    const nn_cpu_options opt = {.conv2d_algo = NN_CONV2D_DIRECT};
    CHECK(nn_cpu_engine_create_with(2, &opt, &direct, &err) == BCAE_OK);
    if (direct) {
        CHECK(e->ops->conv2d_create(direct, &d, 1, &c, &err) == BCAE_OK);
        if (c) CHECK(e->ops->conv_winograd(c) == 0);
        e->ops->conv_destroy(c);
        c = NULL;
        nn_engine_destroy(direct);
    }
    /* Shapes without a Winograd kernel fall back to direct silently. */
    nn_conv2d_desc other[] = {
        {2, 32, 32, 24, 32, 3, 2, 1, NN_CONV2D_AUTO, BCAE_PRECISION_FP32}, /* stride 2 */
        {2, 32, 16, 24, 32, 1, 1, 0, NN_CONV2D_AUTO, BCAE_PRECISION_FP32}, /* 1x1 */
        {2, 3, 5, 10, 9, 3, 1, 1, NN_CONV2D_AUTO, BCAE_PRECISION_FP32},    /* odd channel counts */
    };
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
        c = NULL;
        CHECK(e->ops->conv2d_create(e, &other[i], 1, &c, &err) == BCAE_OK);
        if (c) CHECK(e->ops->conv_winograd(c) == 0);
        e->ops->conv_destroy(c);
    }
}

int main(void)
{
    bcae_rng_seed(&rng, bcae_hash3(2024, 11, 9, 3));
    const int threads[] = {2, 1};
    for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
        nn_engine *e = NULL;
        bcae_error err;
        if (nn_cpu_engine_create(threads[t], &e, &err) != BCAE_OK) {
            fprintf(stderr, "engine: %s\n", err.message);
            return 1;
        }
        /* BCAE-2D's 32->32 blocks at two resolutions (one with a partial
         * 4x4 output tile), and the 16-channel edges. */
        compare_shape(e, 2, 32, 32, 48, 64);
        compare_shape(e, 1, 32, 32, 26, 30);
        compare_shape(e, 2, 16, 32, 24, 32);
        compare_shape(e, 2, 32, 16, 24, 32);
        if (t == 0) check_engine_option(e);
        nn_engine_destroy(e);
    }
    printf("worst winograd vs direct error %.3g (bound %g)\n", worst_seen, WINO_TOL);
    return check_report("test_conv_winograd");
}
