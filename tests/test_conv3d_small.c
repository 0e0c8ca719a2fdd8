/*
 * The CPU backend's own direct kernels for small Conv3d k3 s1 p1 layers
 * (cpu_conv3d_small.c) against oneDNN's path for the same convolution
 * (nn_cpu_options.conv3d_onednn), on the same random data: forward with and
 * without the fused LeakyReLU, backward-data, and backward-weights / bias
 * with the "+=" contract; channel counts of the BCAE-HT / BCAE++ decoders
 * (1 -> 2, 2 -> 2, 2 -> 1, 4 -> 8, 8 -> 16, 16 -> 16) and odd ones, all three
 * activation layouts, widths below, at and across whole 16-column vectors.
 * (test_conv3d.c checks both against a float64 reference on fewer shapes.)
 * Bound: |a - b| <= 1e-5 max |b| over each tensor. Backward-weights runs
 * twice to check it is deterministic.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/rng.h"
#include "nn/cpu/cpu_internal.h"

#define REL_TOL 1e-5

static bcae_rng rng;

static float uniform(void) { return (float)(2.0 * bcae_rng_uniform(&rng) - 1.0); }

static size_t count5(const nn_tensor5 *t)
{
    return (size_t)t->n * (size_t)t->c * (size_t)t->d * (size_t)t->h * (size_t)t->w;
}

static nn_tensor5 tensor_random(int n, int c, int d, int h, int w)
{
    nn_tensor5 t = {n, c, d, h, w, NULL};
    t.data = malloc(count5(&t) * sizeof(float));
    /* Any order will do: both paths read the same storage. */
    for (size_t i = 0; i < count5(&t); i++) t.data[i] = uniform();
    return t;
}

static nn_tensor5 tensor_like(const nn_tensor5 *s)
{
    nn_tensor5 t = *s;
    t.data = malloc(count5(&t) * sizeof(float));
    for (size_t i = 0; i < count5(&t); i++) t.data[i] = NAN;
    return t;
}

static void compare(const char *name, const char *what, const float *got, const float *ref,
                    size_t n)
{
    double scale = 0, worst = 0;
    size_t worst_i = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(ref[i]));
    for (size_t i = 0; i < n; i++) {
        double err = fabs((double)got[i] - ref[i]) / (scale + 1e-30);
        if (!(err <= worst)) {
            worst = err;
            worst_i = i;
        }
    }
    CHECK_MSG(worst <= REL_TOL, "%s %s: worst relative difference %.3g at %zu: own %.8g oneDNN %.8g",
              name, what, worst, worst_i, (double)got[worst_i], (double)ref[worst_i]);
}

/* The engines: own kernels (AVX-512 where present), own kernels' portable
 * path, oneDNN for everything (the options are fixed when an engine is
 * created). */
enum { ENG_OWN, ENG_PORTABLE, ENG_ONEDNN, ENG_COUNT };

static void check_small_path(nn_engine *const *eng, int portable, int n, int cin, int cout, int d,
                             int h, int w)
{
    nn_engine *e = eng[portable ? ENG_PORTABLE : ENG_OWN];
    char name[140];
    snprintf(name, sizeof name, "conv3d %d->%d k3 s1 p1 on %dx%dx%dx%dx%d (%s)", cin, cout, n, cin,
             d, h, w, portable ? "portable" : "AVX-512 where present");
    nn_conv3d_desc desc = {n, cin, cout, d, h, w, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, 0,
                           NN_CONV3D_AUTO};
    nn_conv3d *own = NULL, *ref = NULL;
    bcae_error err;
    bcae_status s = e->ops->conv3d_create(e, &desc, 1, &own, &err);
    if (!s) s = e->ops->conv3d_create(eng[ENG_ONEDNN], &desc, 1, &ref, &err);
    if (s) {
        CHECK_MSG(0, "%s: create failed: %s", name, err.message);
        e->ops->conv3d_destroy(own);
        return;
    }
    const size_t nw = (size_t)cin * cout * 27;
    float *wt = malloc(nw * sizeof *wt), *b = malloc((size_t)cout * sizeof *b);
    for (size_t i = 0; i < nw; i++) wt[i] = 0.5f * uniform();
    for (int o = 0; o < cout; o++) b[o] = 0.5f * uniform();
    e->ops->conv3d_set_weights(own, wt, b);
    e->ops->conv3d_set_weights(ref, wt, b);

    nn_tensor5 x = tensor_random(n, cin, d, h, w), dy = tensor_random(n, cout, d, h, w);
    nn_tensor5 y0 = tensor_like(&dy), y1 = tensor_like(&dy);
    nn_tensor5 dx0 = tensor_like(&x), dx1 = tensor_like(&x);
    for (int post = 0; post < 2; post++) {
        e->ops->conv3d_forward(own, &x, &y0, post ? NN_POST_LEAKY_RELU : NN_POST_NONE);
        e->ops->conv3d_forward(ref, &x, &y1, post ? NN_POST_LEAKY_RELU : NN_POST_NONE);
        compare(name, post ? "forward+lrelu" : "forward", y0.data, y1.data, count5(&y0));
    }
    e->ops->conv3d_backward_data(own, &dy, &dx0);
    e->ops->conv3d_backward_data(ref, &dy, &dx1);
    compare(name, "backward-data", dx0.data, dx1.data, count5(&dx0));

    /* "+=": both start from the same values; the difference is the gradient. */
    float *gw0 = malloc(nw * sizeof *gw0), *gw1 = malloc(nw * sizeof *gw1);
    float *gw2 = malloc(nw * sizeof *gw2);
    float *gb0 = malloc((size_t)cout * sizeof *gb0), *gb1 = malloc((size_t)cout * sizeof *gb1);
    float *gb2 = malloc((size_t)cout * sizeof *gb2);
    for (size_t i = 0; i < nw; i++) gw0[i] = gw1[i] = gw2[i] = wt[i];
    for (int o = 0; o < cout; o++) gb0[o] = gb1[o] = gb2[o] = b[o];
    e->ops->conv3d_backward_weights(own, &x, &dy, gw0, gb0);
    e->ops->conv3d_backward_weights(ref, &x, &dy, gw1, gb1);
    e->ops->conv3d_backward_weights(own, &x, &dy, gw2, gb2);
    for (size_t i = 0; i < nw; i++) gw0[i] -= wt[i], gw1[i] -= wt[i], gw2[i] -= wt[i];
    for (int o = 0; o < cout; o++) gb0[o] -= b[o], gb1[o] -= b[o], gb2[o] -= b[o];
    compare(name, "backward-weights", gw0, gw1, nw);
    compare(name, "backward-bias", gb0, gb1, (size_t)cout);
    CHECK_MSG(!memcmp(gw0, gw2, nw * sizeof *gw0) && !memcmp(gb0, gb2, (size_t)cout * sizeof *gb0),
              "%s: backward-weights differs between two runs", name);

    free(gw0), free(gw1), free(gw2), free(gb0), free(gb1), free(gb2);
    free(x.data), free(dy.data), free(y0.data), free(y1.data), free(dx0.data), free(dx1.data);
    free(wt), free(b);
    e->ops->conv3d_destroy(own);
    e->ops->conv3d_destroy(ref);
}

/* Both paths of the own kernels against oneDNN: the AVX-512 one (where the
 * CPU has it) and the portable C one that other machines run. */
static void check_small(nn_engine *const *eng, int n, int cin, int cout, int d, int h, int w)
{
    check_small_path(eng, 0, n, cin, cout, d, h, w);
    check_small_path(eng, 1, n, cin, cout, d, h, w);
}

int main(void)
{
    bcae_rng_seed(&rng, 11);
    nn_engine *e[ENG_COUNT] = {NULL};
    bcae_error err;
    const nn_cpu_options opt[ENG_COUNT] = {{.conv3d_portable = 0},
                                           {.conv3d_portable = 1},
                                           {.conv3d_onednn = 1}};
    for (int k = 0; k < ENG_COUNT; k++)
        if (nn_cpu_engine_create_with(2, &opt[k], &e[k], &err)) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
    /* The decoders' layers (widths 16, 8, 4, 2 and the output conv; the
     * shuffle form's inner convs 4 -> 8 and 8 -> 16). */
    check_small(e, 2, 1, 2, 3, 5, 37);
    check_small(e, 2, 2, 2, 4, 7, 19);
    check_small(e, 1, 2, 1, 3, 6, 70);
    check_small(e, 2, 4, 8, 3, 5, 33);
    check_small(e, 1, 8, 16, 2, 5, 21);
    check_small(e, 1, 16, 16, 3, 4, 16);
    check_small(e, 2, 4, 4, 5, 3, 64);
    /* Odd channel counts, tiny and single-voxel extents. */
    check_small(e, 1, 3, 5, 2, 3, 7);
    check_small(e, 1, 5, 3, 1, 1, 1);
    check_small(e, 3, 6, 7, 2, 2, 49);
    check_small(e, 1, 16, 8, 3, 3, 17);
    check_small(e, 1, 1, 1, 6, 9, 129);
    for (int k = 0; k < ENG_COUNT; k++) nn_engine_destroy(e[k]);
    return check_report("test_conv3d_small");
}
