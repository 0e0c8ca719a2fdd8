/* The CPU backend's own kernels (src/nn/cpu/cpu_kernels.c): layout transfers
 * against the documented nChw<B>c formula, pooling and upsampling against
 * direct loops on plain NCHW, every backward against central finite
 * differences of a random linear functional J(x) = sum(w * forward(x)),
 * the aliasing engine.h allows, overwrite and "+=" semantics, and
 * thread-count independence of the one reduction (ReZero's dalpha). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bcae.h"
#include "check.h"
#include "core/rng.h"
#include "nn/cpu/cpu_internal.h"
#include "nn/engine.h"

static nn_tensor tensor_new(nn_engine *e, int n, int c, int h, int w)
{
    nn_tensor t = {n, c, h, w, NULL};
    t.data = malloc(nn_tensor_floats(e, n, c, h, w) * sizeof(float));
    if (!t.data) {
        fprintf(stderr, "test_kernels: out of memory\n");
        exit(2);
    }
    return t;
}

static size_t tensor_size(const nn_tensor *t)
{
    return (size_t)t->n * (size_t)t->c * (size_t)t->h * (size_t)t->w;
}

static void fill_uniform(bcae_rng *r, float *p, size_t n, double lo, double hi)
{
    for (size_t i = 0; i < n; i++) p[i] = (float)(lo + (hi - lo) * bcae_rng_uniform(r));
}

static void fill_nan(float *p, size_t n)
{
    for (size_t i = 0; i < n; i++) p[i] = NAN;
}

static double dot(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * (double)b[i];
    return s;
}

static int all_finite(const float *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(p[i])) return 0;
    return 1;
}

static int same_bits(const float *a, const float *b, size_t n)
{
    return memcmp(a, b, n * sizeof(float)) == 0;
}

static size_t nchw(int c, int h, int w, int n, int ci, int y, int x)
{
    return (((size_t)n * (size_t)c + (size_t)ci) * (size_t)h + (size_t)y) * (size_t)w + (size_t)x;
}

static size_t nhwc(int c, int h, int w, int n, int ci, int y, int x)
{
    return (((size_t)n * (size_t)h + (size_t)y) * (size_t)w + (size_t)x) * (size_t)c + (size_t)ci;
}

/* A gradient check: the analytic value against the central difference,
 * relative to the larger of the two and 1. */
static int grad_close(double analytic, double numeric, double rel)
{
    return fabs(analytic - numeric) <= rel * fmax(1.0, fmax(fabs(analytic), fabs(numeric)));
}

/* ---- layouts ---------------------------------------------------------------- */

static void test_layouts(nn_engine *e, bcae_rng *r)
{
    static const int channels[] = {1, 8, 16, 24, 32};
    for (size_t k = 0; k < sizeof channels / sizeof channels[0]; k++) {
        const int N = 2, C = channels[k], H = 3, W = 5;
        nn_tensor t = tensor_new(e, N, C, H, W), u = tensor_new(e, N, C, H, W);
        size_t cnt = tensor_size(&t);
        CHECK(nn_tensor_floats(e, N, C, H, W) >= cnt);
        float *a = malloc(cnt * sizeof(float)), *b = malloc(cnt * sizeof(float));
        float *a_hwc = malloc(cnt * sizeof(float));
        fill_uniform(r, a, cnt, -10, 10);
        for (int n = 0; n < N; n++)
            for (int c = 0; c < C; c++)
                for (int y = 0; y < H; y++)
                    for (int x = 0; x < W; x++)
                        a_hwc[nhwc(C, H, W, n, c, y, x)] = a[nchw(C, H, W, n, c, y, x)];

        /* from_nchw writes every element where the documented formula says. */
        fill_nan(t.data, cnt);
        e->ops->from_nchw(e, a, &t);
        int placed = 1, formula = 1;
        /* Blocks of 16 where oneDNN runs AVX-512 (else 8: cpu_blocks16). */
        const int blk = C % 16 == 0 && cpu_blocks16() ? 16 : C % 8 == 0 ? 8 : 1;
        for (int n = 0; n < N; n++)
            for (int c = 0; c < C; c++)
                for (int y = 0; y < H; y++)
                    for (int x = 0; x < W; x++) {
                        size_t want = ((((size_t)n * (size_t)(C / blk) + (size_t)(c / blk)) * H + y) *
                                           W + x) * blk + (size_t)(c % blk);
                        formula &= cpu_index(&t, n, c, y, x) == want;
                        placed &= t.data[want] == a[nchw(C, H, W, n, c, y, x)];
                    }
        CHECK_MSG(formula, "cpu_index disagrees with nChw%dc for c = %d", blk, C);
        CHECK_MSG(placed, "from_nchw misplaces elements for c = %d", C);
        if (C == blk) CHECK_MSG(same_bits(t.data, a_hwc, cnt), "one block of channels must be NHWC");

        fill_nan(b, cnt);
        e->ops->to_nchw(e, &t, b);
        CHECK_MSG(same_bits(a, b, cnt), "NCHW round trip, c = %d", C);
        fill_nan(b, cnt);
        e->ops->to_nhwc(e, &t, b);
        CHECK_MSG(same_bits(a_hwc, b, cnt), "NCHW in, NHWC out, c = %d", C);

        fill_nan(u.data, cnt);
        e->ops->from_nhwc(e, a_hwc, &u);
        CHECK_MSG(same_bits(t.data, u.data, cnt), "from_nhwc and from_nchw disagree, c = %d", C);
        fill_nan(b, cnt);
        e->ops->to_nhwc(e, &u, b);
        CHECK_MSG(same_bits(a_hwc, b, cnt), "NHWC round trip, c = %d", C);

        e->ops->fill(e, &u, -2.5f);
        int filled = 1;
        for (size_t i = 0; i < cnt; i++) filled &= u.data[i] == -2.5f;
        CHECK_MSG(filled, "fill, c = %d", C);
        free(a);
        free(b);
        free(a_hwc);
        free(t.data);
        free(u.data);
    }
}

/* ---- pooling and upsampling: forward against direct loops --------------------- */

static void test_pool_upsample_forward(nn_engine *e, bcae_rng *r)
{
    static const int channels[] = {1, 8, 16, 32};
    for (size_t k = 0; k < sizeof channels / sizeof channels[0]; k++) {
        const int N = 2, C = channels[k], H = 4, W = 6, h2 = H / 2, w2 = W / 2;
        nn_tensor big = tensor_new(e, N, C, H, W), small = tensor_new(e, N, C, h2, w2);
        size_t nb = tensor_size(&big), ns = tensor_size(&small);
        float *xb = malloc(nb * sizeof(float)), *xs = malloc(ns * sizeof(float));
        float *got_b = malloc(nb * sizeof(float)), *got_s = malloc(ns * sizeof(float));
        fill_uniform(r, xb, nb, -4, 4);
        fill_uniform(r, xs, ns, -4, 4);

        e->ops->from_nchw(e, xb, &big);
        fill_nan(small.data, ns);
        e->ops->avgpool2_forward(e, &big, &small);
        e->ops->to_nchw(e, &small, got_s);
        double err = 0;
        for (int n = 0; n < N; n++)
            for (int c = 0; c < C; c++)
                for (int y = 0; y < h2; y++)
                    for (int x = 0; x < w2; x++) {
                        double s = 0;
                        for (int dy = 0; dy < 2; dy++)
                            for (int dx = 0; dx < 2; dx++)
                                s += xb[nchw(C, H, W, n, c, 2 * y + dy, 2 * x + dx)];
                        err = fmax(err, fabs(got_s[nchw(C, h2, w2, n, c, y, x)] - s / 4));
                    }
        CHECK_MSG(err <= 2e-6, "avgpool forward, c = %d: max error %g", C, err);

        e->ops->from_nchw(e, xs, &small);
        fill_nan(big.data, nb);
        e->ops->upsample2_forward(e, &small, &big);
        e->ops->to_nchw(e, &big, got_b);
        int exact = 1;
        for (int n = 0; n < N; n++)
            for (int c = 0; c < C; c++)
                for (int y = 0; y < H; y++)
                    for (int x = 0; x < W; x++)
                        exact &= got_b[nchw(C, H, W, n, c, y, x)] ==
                                 xs[nchw(C, h2, w2, n, c, y / 2, x / 2)];
        CHECK_MSG(exact, "upsample forward, c = %d", C);
        free(xb);
        free(xs);
        free(got_b);
        free(got_s);
        free(big.data);
        free(small.data);
    }
}

/* ---- pooling and upsampling: backward by finite differences -------------------- */

typedef bcae_status (*unary_fn)(nn_engine *e, const nn_tensor *x, nn_tensor *y);

/* Checks backward(w) = dJ/dx for J(x) = sum(w * forward(x)), element by
 * element of x's storage. Both operations are linear, so a large step is
 * exact up to rounding. */
static void check_linear_backward(nn_engine *e, bcae_rng *r, const char *name, unary_fn fwd,
                                  unary_fn bwd, nn_tensor *x, nn_tensor *y)
{
    size_t nx = tensor_size(x), ny = tensor_size(y);
    nn_tensor w = *y, g = *x;
    w.data = malloc(ny * sizeof(float));
    g.data = malloc(nx * sizeof(float));
    fill_uniform(r, x->data, nx, -2, 2);
    fill_uniform(r, w.data, ny, -1, 1);
    fill_nan(g.data, nx);
    bwd(e, &w, &g); /* overwrites: the NaNs must all go */
    CHECK_MSG(all_finite(g.data, nx), "%s backward left elements unwritten", name);
    const float step = 0.5f;
    double worst = 0;
    for (size_t i = 0; i < nx; i++) {
        float keep = x->data[i];
        x->data[i] = keep + step;
        fwd(e, x, y);
        double jp = dot(w.data, y->data, ny);
        x->data[i] = keep - step;
        fwd(e, x, y);
        double jm = dot(w.data, y->data, ny);
        x->data[i] = keep;
        double num = (jp - jm) / (2.0 * step);
        double d = fabs(num - g.data[i]);
        if (d > worst) worst = d;
    }
    CHECK_MSG(worst <= 1e-5, "%s backward vs finite differences (c = %d): max error %g", name,
              x->c, worst);
    free(w.data);
    free(g.data);
}

static void test_pool_upsample_backward(nn_engine *e, bcae_rng *r)
{
    static const int channels[] = {1, 8, 32};
    for (size_t k = 0; k < sizeof channels / sizeof channels[0]; k++) {
        const int C = channels[k];
        nn_tensor big = tensor_new(e, 2, C, 4, 6), small = tensor_new(e, 2, C, 2, 3);
        check_linear_backward(e, r, "avgpool2", e->ops->avgpool2_forward,
                              e->ops->avgpool2_backward, &big, &small);
        check_linear_backward(e, r, "upsample2", e->ops->upsample2_forward,
                              e->ops->upsample2_backward, &small, &big);
        free(big.data);
        free(small.data);
    }
}

/* ---- LeakyReLU and ReZero ------------------------------------------------------ */

/* Random values whose |.| >= margin, so small steps never cross the kink. */
static void fill_away_from_zero(bcae_rng *r, float *p, size_t n, double margin)
{
    for (size_t i = 0; i < n; i++) {
        double v = -1 + 2 * bcae_rng_uniform(r);
        p[i] = (float)(v < 0 ? v - margin : v + margin);
    }
}

static void test_leaky_relu_backward(nn_engine *e, bcae_rng *r)
{
    const int N = 2, C = 32, H = 3, W = 4;
    nn_tensor x = tensor_new(e, N, C, H, W), zero = tensor_new(e, N, C, H, W);
    nn_tensor y = tensor_new(e, N, C, H, W), w = tensor_new(e, N, C, H, W);
    nn_tensor g = tensor_new(e, N, C, H, W), g2 = tensor_new(e, N, C, H, W);
    size_t cnt = tensor_size(&x);
    fill_away_from_zero(r, x.data, cnt, 0.05);
    fill_uniform(r, w.data, cnt, -1, 1);
    e->ops->fill(e, &zero, 0.0f);
    /* The forward is the kernels' own: rezero with a zero branch is lrelu(x). */
    e->ops->rezero_forward(e, 1.0f, &zero, &x, &y);
    int fwd_ok = 1;
    for (size_t i = 0; i < cnt; i++)
        fwd_ok &= y.data[i] == (x.data[i] > 0 ? x.data[i] : x.data[i] * NN_LEAKY_SLOPE);
    CHECK_MSG(fwd_ok, "rezero_forward with h = 0 is not lrelu(x)");

    fill_nan(g.data, cnt);
    e->ops->leaky_relu_backward(e, &y, &w, &g);
    const float step = 0.01f;
    double worst = 0;
    for (size_t i = 0; i < cnt; i++) {
        float keep = x.data[i];
        x.data[i] = keep + step;
        e->ops->rezero_forward(e, 1.0f, &zero, &x, &y);
        double jp = dot(w.data, y.data, cnt);
        x.data[i] = keep - step;
        e->ops->rezero_forward(e, 1.0f, &zero, &x, &y);
        double jm = dot(w.data, y.data, cnt);
        x.data[i] = keep;
        double d = fabs((jp - jm) / (2.0 * step) - g.data[i]);
        if (!(d <= worst)) worst = d;
    }
    CHECK_MSG(worst <= 1e-4, "leaky_relu backward vs finite differences: max error %g", worst);

    /* dx may alias dy. */
    e->ops->rezero_forward(e, 1.0f, &zero, &x, &y);
    memcpy(g2.data, w.data, cnt * sizeof(float));
    e->ops->leaky_relu_backward(e, &y, &g2, &g2);
    CHECK_MSG(same_bits(g.data, g2.data, cnt), "leaky_relu backward in place (dx == dy)");

    /* At y = 0 (either sign) the slope applies, as in PyTorch (y > 0 is false). */
    y.data[0] = 0.0f;
    y.data[1] = -0.0f;
    y.data[2] = 1e-30f;
    y.data[3] = -1e-30f;
    e->ops->leaky_relu_backward(e, &y, &w, &g);
    CHECK(g.data[0] == w.data[0] * NN_LEAKY_SLOPE && g.data[1] == w.data[1] * NN_LEAKY_SLOPE);
    CHECK(g.data[2] == w.data[2] && g.data[3] == w.data[3] * NN_LEAKY_SLOPE);
    free(x.data);
    free(zero.data);
    free(y.data);
    free(w.data);
    free(g.data);
    free(g2.data);
}

static double rezero_objective(nn_engine *e, float alpha, const nn_tensor *h, const nn_tensor *x,
                               nn_tensor *y, const float *w)
{
    e->ops->rezero_forward(e, alpha, h, x, y);
    return dot(w, y->data, tensor_size(y));
}

static void test_rezero(nn_engine *e, bcae_rng *r, float alpha)
{
    const int N = 2, C = 32, H = 4, W = 6;
    nn_tensor h = tensor_new(e, N, C, H, W), x = tensor_new(e, N, C, H, W);
    nn_tensor y = tensor_new(e, N, C, H, W), w = tensor_new(e, N, C, H, W);
    nn_tensor dh = tensor_new(e, N, C, H, W), dx = tensor_new(e, N, C, H, W);
    nn_tensor t1 = tensor_new(e, N, C, H, W), t2 = tensor_new(e, N, C, H, W);
    size_t cnt = tensor_size(&h);
    fill_uniform(r, h.data, cnt, -1, 1);
    fill_uniform(r, w.data, cnt, -1, 1);
    /* Keep z = alpha h + x at least 0.1 from the kink: every step below moves
     * z by at most 0.015. */
    for (size_t i = 0; i < cnt; i++) {
        double v = -1 + 2 * bcae_rng_uniform(r);
        double z = v < 0 ? v - 0.1 : v + 0.1;
        x.data[i] = (float)(z - (double)alpha * h.data[i]);
        float zf = alpha * h.data[i] + x.data[i];
        if (fabsf(zf) < 0.09f) x.data[i] += zf < 0 ? -0.1f : 0.1f;
    }

    /* Forward against a direct loop. */
    e->ops->rezero_forward(e, alpha, &h, &x, &y);
    double fwd_err = 0;
    for (size_t i = 0; i < cnt; i++) {
        double z = (double)alpha * h.data[i] + x.data[i];
        double want = z > 0 ? z : z * NN_LEAKY_SLOPE;
        fwd_err = fmax(fwd_err, fabs(y.data[i] - want));
    }
    CHECK_MSG(fwd_err <= 1e-6, "rezero forward (alpha %g): max error %g", alpha, fwd_err);

    /* Analytic gradients, outputs pre-poisoned to see that they are overwritten. */
    fill_nan(dh.data, cnt);
    fill_nan(dx.data, cnt);
    double dalpha = 1e300;
    e->ops->rezero_backward(e, alpha, &h, &y, &w, &dh, &dx, &dalpha);
    CHECK(all_finite(dh.data, cnt) && all_finite(dx.data, cnt));

    const float step = 0.01f;
    double worst_h = 0, worst_x = 0;
    for (size_t i = 0; i < cnt; i++) {
        float keep = h.data[i];
        h.data[i] = keep + step;
        double jp = rezero_objective(e, alpha, &h, &x, &y, w.data);
        h.data[i] = keep - step;
        double jm = rezero_objective(e, alpha, &h, &x, &y, w.data);
        h.data[i] = keep;
        double d = fabs((jp - jm) / (2.0 * step) - dh.data[i]);
        if (!(d <= worst_h)) worst_h = d;

        keep = x.data[i];
        x.data[i] = keep + step;
        jp = rezero_objective(e, alpha, &h, &x, &y, w.data);
        x.data[i] = keep - step;
        jm = rezero_objective(e, alpha, &h, &x, &y, w.data);
        x.data[i] = keep;
        d = fabs((jp - jm) / (2.0 * step) - dx.data[i]);
        if (!(d <= worst_x)) worst_x = d;
    }
    CHECK_MSG(worst_h <= 1e-4, "rezero dh vs finite differences (alpha %g): max error %g", alpha,
              worst_h);
    CHECK_MSG(worst_x <= 1e-4, "rezero dx vs finite differences (alpha %g): max error %g", alpha,
              worst_x);
    double jp = rezero_objective(e, alpha + step, &h, &x, &y, w.data);
    double jm = rezero_objective(e, alpha - step, &h, &x, &y, w.data);
    double num = (jp - jm) / (2.0 * (double)step);
    CHECK_MSG(grad_close(dalpha, num, 1e-4), "rezero dalpha (alpha %g): %.10g vs FD %.10g",
              alpha, dalpha, num);
    /* dalpha is accumulated in double: it matches a plain double sum far
     * more closely than a float sum would. */
    double direct = 0;
    e->ops->rezero_forward(e, alpha, &h, &x, &y);
    for (size_t i = 0; i < cnt; i++)
        direct += (double)(y.data[i] > 0 ? w.data[i] : w.data[i] * NN_LEAKY_SLOPE) * h.data[i];
    CHECK_MSG(fabs(dalpha - direct) <= 1e-12 * fmax(1, fabs(direct)),
              "rezero dalpha %.17g vs direct double sum %.17g", dalpha, direct);

    /* Aliasing allowed by engine.h: y == h in the forward ... */
    memcpy(t1.data, h.data, cnt * sizeof(float));
    e->ops->rezero_forward(e, alpha, &t1, &x, &t1);
    CHECK_MSG(same_bits(t1.data, y.data, cnt), "rezero forward in place (y == h)");
    /* ... dh == dy in the backward ... */
    double da2 = 0;
    memcpy(t1.data, w.data, cnt * sizeof(float));
    e->ops->rezero_backward(e, alpha, &h, &y, &t1, &t1, &t2, &da2);
    CHECK_MSG(same_bits(t1.data, dh.data, cnt) && same_bits(t2.data, dx.data, cnt) &&
                  da2 == dalpha,
              "rezero backward with dh == dy");
    /* ... and dx == dy (only dx == dh is excluded). */
    memcpy(t2.data, w.data, cnt * sizeof(float));
    e->ops->rezero_backward(e, alpha, &h, &y, &t2, &t1, &t2, &da2);
    CHECK_MSG(same_bits(t1.data, dh.data, cnt) && same_bits(t2.data, dx.data, cnt) &&
                  da2 == dalpha,
              "rezero backward with dx == dy");

    free(h.data);
    free(x.data);
    free(y.data);
    free(w.data);
    free(dh.data);
    free(dx.data);
    free(t1.data);
    free(t2.data);
}

/* dalpha is reduced over a fixed partition in a fixed order: identical bits
 * whatever the thread count, and on every repetition. */
static void test_rezero_determinism(bcae_rng *r)
{
    const int N = 2, C = 32, H = 24, W = 37;
    nn_engine *eng[3] = {NULL, NULL, NULL};
    const int threads[3] = {1, 2, 3};
    for (int k = 0; k < 3; k++) {
        bcae_error err;
        if (nn_cpu_engine_create(threads[k], &eng[k], &err) != BCAE_OK) {
            CHECK_MSG(0, "engine with %d threads: %s", threads[k], err.message);
            return;
        }
    }
    nn_tensor h = tensor_new(eng[0], N, C, H, W), y = tensor_new(eng[0], N, C, H, W);
    nn_tensor dy = tensor_new(eng[0], N, C, H, W), dh = tensor_new(eng[0], N, C, H, W);
    nn_tensor dx = tensor_new(eng[0], N, C, H, W);
    size_t cnt = tensor_size(&h);
    fill_uniform(r, h.data, cnt, -1, 1);
    fill_uniform(r, y.data, cnt, -1, 1);
    fill_uniform(r, dy.data, cnt, -1, 1);
    double first = 0;
    int same = 1;
    for (int k = 0; k < 3; k++)
        for (int rep = 0; rep < 2; rep++) {
            double da = 0;
            eng[k]->ops->rezero_backward(eng[k], 0.3f, &h, &y, &dy, &dh, &dx, &da);
            if (k == 0 && rep == 0) first = da;
            else same &= memcmp(&da, &first, sizeof da) == 0;
        }
    CHECK_MSG(same, "rezero dalpha differs between thread counts or runs");
    for (int k = 0; k < 3; k++) nn_engine_destroy(eng[k]);
    free(h.data);
    free(y.data);
    free(dy.data);
    free(dh.data);
    free(dx.data);
}

/* ---- add ------------------------------------------------------------------------ */

static void test_add(nn_engine *e, bcae_rng *r)
{
    nn_tensor acc = tensor_new(e, 2, 16, 3, 5), x = tensor_new(e, 2, 16, 3, 5);
    size_t cnt = tensor_size(&acc);
    float *start = malloc(cnt * sizeof(float));
    fill_uniform(r, start, cnt, -3, 3);
    fill_uniform(r, x.data, cnt, -3, 3);
    memcpy(acc.data, start, cnt * sizeof(float));
    e->ops->add(e, &acc, &x);
    e->ops->add(e, &acc, &x); /* accumulates, never overwrites */
    int ok = 1;
    for (size_t i = 0; i < cnt; i++) ok &= acc.data[i] == (start[i] + x.data[i]) + x.data[i];
    CHECK_MSG(ok, "add is not acc += x");
    free(start);
    free(acc.data);
    free(x.data);
}

/* Every kernel gives the same bits with 1 and 3 threads (rows split
 * differently, some threads getting none of a plane). */
static void test_thread_consistency(nn_engine *e1, nn_engine *e3, bcae_rng *r)
{
    const int N = 2, C = 32, H = 6, W = 10;
    nn_tensor big[2], small[2], a[2], b[2], in = tensor_new(e1, N, C, H, W);
    nn_tensor in_small = tensor_new(e1, N, C, H / 2, W / 2), w = tensor_new(e1, N, C, H, W);
    size_t cnt = tensor_size(&in), cnt_small = cnt / 4;
    float *host = malloc(cnt * sizeof(float)), *back[2];
    fill_uniform(r, in.data, cnt, -2, 2);
    fill_uniform(r, in_small.data, cnt_small, -2, 2);
    fill_uniform(r, w.data, cnt, -2, 2);
    fill_uniform(r, host, cnt, -2, 2);
    double da[2];
    for (int k = 0; k < 2; k++) {
        nn_engine *e = k ? e3 : e1;
        big[k] = tensor_new(e, N, C, H, W);
        small[k] = tensor_new(e, N, C, H / 2, W / 2);
        a[k] = tensor_new(e, N, C, H, W);
        b[k] = tensor_new(e, N, C, H, W);
        back[k] = malloc(cnt * sizeof(float));
    }
    int same = 1;
#define SAME(x, y, n) (same &= memcmp((x), (y), (n) * sizeof(float)) == 0)
    for (int k = 0; k < 2; k++) {
        nn_engine *e = k ? e3 : e1;
        e->ops->from_nchw(e, host, &a[k]);
        e->ops->to_nhwc(e, &a[k], back[k]);
        e->ops->from_nhwc(e, host, &b[k]);
    }
    SAME(a[0].data, a[1].data, cnt);
    SAME(back[0], back[1], cnt);
    SAME(b[0].data, b[1].data, cnt);
    for (int k = 0; k < 2; k++) {
        nn_engine *e = k ? e3 : e1;
        e->ops->avgpool2_forward(e, &in, &small[k]);
        e->ops->upsample2_forward(e, &in_small, &big[k]);
    }
    SAME(small[0].data, small[1].data, cnt_small);
    SAME(big[0].data, big[1].data, cnt);
    for (int k = 0; k < 2; k++) {
        nn_engine *e = k ? e3 : e1;
        e->ops->avgpool2_backward(e, &in_small, &big[k]);
        e->ops->upsample2_backward(e, &in, &small[k]);
    }
    SAME(small[0].data, small[1].data, cnt_small);
    SAME(big[0].data, big[1].data, cnt);
    for (int k = 0; k < 2; k++) {
        nn_engine *e = k ? e3 : e1;
        e->ops->rezero_forward(e, 0.4f, &in, &w, &big[k]);
        e->ops->leaky_relu_backward(e, &big[k], &w, &a[k]);
        e->ops->rezero_backward(e, 0.4f, &in, &big[k], &w, &b[k], &a[k], &da[k]);
        e->ops->add(e, &b[k], &in);
    }
    SAME(big[0].data, big[1].data, cnt);
    SAME(a[0].data, a[1].data, cnt);
    SAME(b[0].data, b[1].data, cnt);
    same &= da[0] == da[1];
#undef SAME
    CHECK_MSG(same, "kernels give different results with 1 and 3 threads");
    for (int k = 0; k < 2; k++) {
        free(big[k].data);
        free(small[k].data);
        free(a[k].data);
        free(b[k].data);
        free(back[k]);
    }
    free(in.data);
    free(in_small.data);
    free(w.data);
    free(host);
}

int main(void)
{
    /* The finite-difference checks call kernels thousands of times on tiny
     * tensors: they use one thread, so that a busy machine cannot turn each
     * call's thread barrier into a long wait. The other checks use 2 and 3. */
    nn_engine *e1 = NULL, *e2 = NULL, *e3 = NULL;
    bcae_error err;
    if (nn_cpu_engine_create(1, &e1, &err) != BCAE_OK ||
        nn_cpu_engine_create(2, &e2, &err) != BCAE_OK ||
        nn_cpu_engine_create(3, &e3, &err) != BCAE_OK) {
        fprintf(stderr, "test_kernels: %s\n", err.message);
        return 1;
    }
    bcae_rng r;
    bcae_rng_seed(&r, 20240611);
    test_layouts(e2, &r);
    test_pool_upsample_forward(e2, &r);
    test_pool_upsample_backward(e1, &r);
    test_leaky_relu_backward(e1, &r);
    test_rezero(e1, &r, 0.7f);
    test_rezero(e1, &r, 0.0f); /* ReZero's initial alpha: dalpha must still flow */
    test_rezero(e1, &r, -1.3f);
    test_rezero_determinism(&r);
    test_thread_consistency(e1, e3, &r);
    test_add(e2, &r);
    nn_engine_destroy(e1);
    nn_engine_destroy(e2);
    nn_engine_destroy(e3);
    return check_report("test_kernels");
}
