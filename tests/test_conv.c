/*
 * The CPU backend's convolutions (src/nn/cpu/cpu_conv.c, oneDNN) against a
 * plain float64 reference written here:
 *  - forward, with and without the fused LeakyReLU, over many shapes and all
 *    three activation layouts (nChw16c, nChw8c, nchw);
 *  - backward-data (the adjoint) and backward-weights (weight and bias
 *    gradients), including the "+=" contract of backward-weights;
 *  - finite differences of L = sum(y * r) with respect to inputs, weights
 *    and biases, an independent check of both backward passes;
 *  - conv_set_weights really replaces the weights every primitive uses;
 *  - invalid shapes are refused with a message naming the shape.
 *
 * Errors are measured against the sum of the absolute values of the terms of
 * each output (|b| + sum |w x|): float32 accumulation of n terms is off by
 * at most about n * 2^-24 of that sum, in practice far less, so 1e-5 of it is
 * a tolerance that any wrong index, padding or layout breaks by orders of
 * magnitude, while holding for any summation order oneDNN picks.
 */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/rng.h"
#include "nn/cpu/cpu_internal.h"

#define REL_TOL 1e-5

static bcae_rng rng;

static float uniform(void) { return (float)(2.0 * bcae_rng_uniform(&rng) - 1.0); }

static float *random_floats(size_t count, float scale)
{
    float *p = malloc(count * sizeof *p);
    for (size_t i = 0; i < count; i++) p[i] = scale * uniform();
    return p;
}

/* ---- layout helpers (our own, independent of cpu_kernels.c) ----------------- */

static void put_nchw(const float *host, nn_tensor *t)
{
    size_t i = 0;
    for (int n = 0; n < t->n; n++)
        for (int c = 0; c < t->c; c++)
            for (int y = 0; y < t->h; y++)
                for (int x = 0; x < t->w; x++) t->data[cpu_index(t, n, c, y, x)] = host[i++];
}

static void get_nchw(const nn_tensor *t, float *host)
{
    size_t i = 0;
    for (int n = 0; n < t->n; n++)
        for (int c = 0; c < t->c; c++)
            for (int y = 0; y < t->h; y++)
                for (int x = 0; x < t->w; x++) host[i++] = t->data[cpu_index(t, n, c, y, x)];
}

static nn_tensor tensor_new(nn_engine *e, int n, int c, int h, int w)
{
    nn_tensor t = {n, c, h, w, NULL};
    t.data = malloc(nn_tensor_floats(e, n, c, h, w) * sizeof(float));
    return t;
}

static size_t count4(int n, int c, int h, int w)
{
    return (size_t)n * (size_t)c * (size_t)h * (size_t)w;
}

/* ---- float64 reference, plain NCHW / OIHW ---------------------------------------- */

typedef struct conv_shape {
    nn_conv2d_desc d;
    int ho, wo;
} conv_shape;

static conv_shape shape_of(int n, int cin, int cout, int h, int w, int k, int s, int p)
{
    conv_shape cs = {{n, cin, cout, h, w, k, s, p, NN_CONV2D_AUTO, BCAE_PRECISION_FP32}, 0, 0};
    cs.ho = (h + 2 * p - k) / s + 1;
    cs.wo = (w + 2 * p - k) / s + 1;
    return cs;
}

/* Calls f(xi, wi, yi) for every multiply of the convolution: input index xi
 * (NCHW), weight index wi (OIHW), output index yi (NCHW). The three
 * reference passes are this one loop nest read in three ways. */
#define FOR_EACH_TAP(cs, BODY)                                                           \
    do {                                                                                 \
        const nn_conv2d_desc *d_ = &(cs)->d;                                             \
        for (int n_ = 0; n_ < d_->n; n_++)                                               \
            for (int o_ = 0; o_ < d_->cout; o_++)                                        \
                for (int i_ = 0; i_ < (cs)->ho; i_++)                                    \
                    for (int j_ = 0; j_ < (cs)->wo; j_++) {                              \
                        size_t yi = (((size_t)n_ * d_->cout + o_) * (cs)->ho + i_) *     \
                                        (cs)->wo + j_;                                   \
                        for (int c_ = 0; c_ < d_->cin; c_++)                             \
                            for (int ky_ = 0; ky_ < d_->k; ky_++) {                      \
                                int yy_ = i_ * d_->stride + ky_ - d_->pad;               \
                                if (yy_ < 0 || yy_ >= d_->h) continue;                   \
                                for (int kx_ = 0; kx_ < d_->k; kx_++) {                  \
                                    int xx_ = j_ * d_->stride + kx_ - d_->pad;           \
                                    if (xx_ < 0 || xx_ >= d_->w) continue;               \
                                    size_t xi = (((size_t)n_ * d_->cin + c_) * d_->h +   \
                                                 yy_) * d_->w + xx_;                     \
                                    size_t wi = (((size_t)o_ * d_->cin + c_) * d_->k +   \
                                                 ky_) * d_->k + kx_;                     \
                                    BODY;                                                \
                                }                                                        \
                            }                                                            \
                    }                                                                    \
    } while (0)

/* y = conv(x) + b; yabs = |b| + sum |w x|. */
static void ref_forward(const conv_shape *cs, const float *x, const float *w, const float *b,
                        double *y, double *yabs)
{
    const nn_conv2d_desc *d = &cs->d;
    size_t plane = (size_t)cs->ho * (size_t)cs->wo;
    for (int n = 0; n < d->n; n++)
        for (int o = 0; o < d->cout; o++)
            for (size_t q = 0; q < plane; q++) {
                size_t yi = ((size_t)n * d->cout + o) * plane + q;
                y[yi] = b[o];
                yabs[yi] = fabs(b[o]);
            }
    FOR_EACH_TAP(cs, {
        double t = (double)w[wi] * x[xi];
        y[yi] += t;
        yabs[yi] += fabs(t);
    });
}

/* dx = conv^T(dy): every multiply of the forward, scattered back. */
static void ref_backward_data(const conv_shape *cs, const float *dy, const float *w, double *dx,
                              double *dxabs)
{
    size_t nx = count4(cs->d.n, cs->d.cin, cs->d.h, cs->d.w);
    memset(dx, 0, nx * sizeof *dx);
    memset(dxabs, 0, nx * sizeof *dxabs);
    FOR_EACH_TAP(cs, {
        double t = (double)w[wi] * dy[yi];
        dx[xi] += t;
        dxabs[xi] += fabs(t);
    });
}

static void ref_backward_weights(const conv_shape *cs, const float *x, const float *dy,
                                 double *dw, double *dwabs, double *db, double *dbabs)
{
    const nn_conv2d_desc *d = &cs->d;
    size_t nw = count4(d->cout, d->cin, d->k, d->k), plane = (size_t)cs->ho * (size_t)cs->wo;
    memset(dw, 0, nw * sizeof *dw);
    memset(dwabs, 0, nw * sizeof *dwabs);
    FOR_EACH_TAP(cs, {
        double t = (double)x[xi] * dy[yi];
        dw[wi] += t;
        dwabs[wi] += fabs(t);
    });
    for (int o = 0; o < d->cout; o++) {
        db[o] = dbabs[o] = 0;
        for (int n = 0; n < d->n; n++)
            for (size_t q = 0; q < plane; q++) {
                double t = dy[((size_t)n * d->cout + o) * plane + q];
                db[o] += t;
                dbabs[o] += fabs(t);
            }
    }
}

/* ---- comparison ------------------------------------------------------------------ */

static double worst_seen = 0; /* largest |got - ref| / bound over all checks */

static char case_name[160];

static void name_case(const conv_shape *cs)
{
    const nn_conv2d_desc *d = &cs->d;
    snprintf(case_name, sizeof case_name, "%d->%d k%d s%d p%d on %dx%dx%dx%d", d->cin, d->cout,
             d->k, d->stride, d->pad, d->n, d->cin, d->h, d->w);
}

/* |got - scale * ref| <= REL_TOL * scale * bound elementwise. */
static void compare(const char *what, const float *got, const double *ref, const double *bound,
                    size_t count, double scale)
{
    double worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < count; i++) {
        double err = fabs((double)got[i] - scale * ref[i]);
        double ratio = err / (scale * bound[i] + 1e-30);
        if (!(ratio <= worst)) { /* also catches NaN */
            worst = isnan(ratio) ? INFINITY : ratio;
            at = i;
        }
    }
    if (worst > worst_seen && isfinite(worst)) worst_seen = worst;
    CHECK_MSG(worst <= REL_TOL, "%s, %s: element %zu: got %.9g, want %.9g (error %.3g of bound)",
              case_name, what, at, (double)got[at], scale * ref[at], worst);
}

/* ---- one shape ------------------------------------------------------------------- */

typedef struct conv_case {
    conv_shape cs;
    size_t nx, ny, nw;
    float *x, *w, *b, *r;  /* host NCHW / OIHW */
    nn_tensor tx, ty, tdx, tdy;
    nn_conv *conv;
} conv_case;

static void case_close(nn_engine *e, conv_case *cc)
{
    e->ops->conv_destroy(cc->conv);
    free(cc->x);
    free(cc->w);
    free(cc->b);
    free(cc->r);
    free(cc->tx.data);
    free(cc->tdx.data);
    free(cc->ty.data);
    free(cc->tdy.data);
}

static int case_open(nn_engine *e, conv_case *cc, conv_shape cs, int training)
{
    const nn_conv2d_desc *d = &cs.d;
    memset(cc, 0, sizeof *cc);
    cc->cs = cs;
    name_case(&cs);
    cc->nx = count4(d->n, d->cin, d->h, d->w);
    cc->ny = count4(d->n, d->cout, cs.ho, cs.wo);
    cc->nw = count4(d->cout, d->cin, d->k, d->k);
    cc->x = random_floats(cc->nx, 1.0f);
    cc->w = random_floats(cc->nw, 1.0f / sqrtf((float)(d->cin * d->k * d->k)));
    cc->b = random_floats((size_t)d->cout, 0.5f);
    cc->r = random_floats(cc->ny, 1.0f);
    cc->tx = tensor_new(e, d->n, d->cin, d->h, d->w);
    cc->tdx = tensor_new(e, d->n, d->cin, d->h, d->w);
    cc->ty = tensor_new(e, d->n, d->cout, cs.ho, cs.wo);
    cc->tdy = tensor_new(e, d->n, d->cout, cs.ho, cs.wo);
    put_nchw(cc->x, &cc->tx);
    put_nchw(cc->r, &cc->tdy);
    bcae_error err;
    bcae_status st = e->ops->conv2d_create(e, d, training, &cc->conv, &err);
    CHECK_MSG(st == BCAE_OK, "%s: create failed: %s", case_name, err.message);
    if (st != BCAE_OK) {
        case_close(e, cc);
        return 0;
    }
    e->ops->conv_set_weights(cc->conv, cc->w, cc->b);
    return 1;
}

static void check_forward(nn_engine *e, conv_case *cc)
{
    double *ref = malloc(cc->ny * sizeof *ref), *bound = malloc(cc->ny * sizeof *bound);
    float *got = malloc(cc->ny * sizeof *got);
    ref_forward(&cc->cs, cc->x, cc->w, cc->b, ref, bound);

    e->ops->conv_forward(cc->conv, &cc->tx, &cc->ty, NN_POST_NONE);
    get_nchw(&cc->ty, got);
    compare("forward", got, ref, bound, cc->ny, 1.0);

    for (size_t i = 0; i < cc->ny; i++)
        if (ref[i] < 0) {
            ref[i] *= NN_LEAKY_SLOPE;
            bound[i] *= NN_LEAKY_SLOPE;
        }
    e->ops->conv_forward(cc->conv, &cc->tx, &cc->ty, NN_POST_LEAKY_RELU);
    get_nchw(&cc->ty, got);
    compare("forward + LeakyReLU", got, ref, bound, cc->ny, 1.0);
    free(ref);
    free(bound);
    free(got);
}

static void check_backward(nn_engine *e, conv_case *cc)
{
    const nn_conv2d_desc *d = &cc->cs.d;
    double *ref = malloc(cc->nx * sizeof *ref), *bound = malloc(cc->nx * sizeof *bound);
    float *got = malloc(cc->nx * sizeof *got);

    /* backward-data overwrites: start from garbage. */
    for (size_t i = 0; i < cc->nx; i++) cc->tdx.data[i] = 1e30f;
    e->ops->conv_backward_data(cc->conv, &cc->tdy, &cc->tdx);
    get_nchw(&cc->tdx, got);
    ref_backward_data(&cc->cs, cc->r, cc->w, ref, bound);
    compare("backward-data", got, ref, bound, cc->nx, 1.0);
    free(ref);
    free(bound);
    free(got);

    double *dw = malloc(cc->nw * sizeof *dw), *dwb = malloc(cc->nw * sizeof *dwb);
    double *db = malloc((size_t)d->cout * sizeof *db), *dbb = malloc((size_t)d->cout * sizeof *dbb);
    float *gw = calloc(cc->nw, sizeof *gw), *gb = calloc((size_t)d->cout, sizeof *gb);
    ref_backward_weights(&cc->cs, cc->x, cc->r, dw, dwb, db, dbb);
    e->ops->conv_backward_weights(cc->conv, &cc->tx, &cc->tdy, gw, gb);
    compare("backward-weights dweight", gw, dw, dwb, cc->nw, 1.0);
    compare("backward-weights dbias", gb, db, dbb, (size_t)d->cout, 1.0);
    /* "+=": a second call adds the same gradient again. */
    e->ops->conv_backward_weights(cc->conv, &cc->tx, &cc->tdy, gw, gb);
    compare("backward-weights dweight, accumulated twice", gw, dw, dwb, cc->nw, 2.0);
    compare("backward-weights dbias, accumulated twice", gb, db, dbb, (size_t)d->cout, 2.0);
    free(dw);
    free(dwb);
    free(db);
    free(dbb);
    free(gw);
    free(gb);
}

/* L = sum(y * r) in double from the engine's forward (no post-op). */
static double loss(nn_engine *e, conv_case *cc, float *ybuf)
{
    e->ops->conv_forward(cc->conv, &cc->tx, &cc->ty, NN_POST_NONE);
    get_nchw(&cc->ty, ybuf);
    double l = 0;
    for (size_t i = 0; i < cc->ny; i++) l += (double)ybuf[i] * cc->r[i];
    return l;
}

/* Central differences of L w.r.t. a few inputs, weights and biases against
 * the backward passes (dL/dy = r). The convolution is linear in each of
 * them, so a large step is exact up to float32 rounding of y; only the
 * outputs the perturbed value touches change, and they change the same way
 * in both runs, so rounding contributes ~1e-6 of the gradient. */
static void check_finite_differences(nn_engine *e, conv_case *cc)
{
    const nn_conv2d_desc *d = &cc->cs.d;
    const float h = 0.25f;
    const double tol = 1e-4;
    float *ybuf = malloc(cc->ny * sizeof *ybuf), *dx = malloc(cc->nx * sizeof *dx);
    float *gw = calloc(cc->nw, sizeof *gw), *gb = calloc((size_t)d->cout, sizeof *gb);
    e->ops->conv_backward_data(cc->conv, &cc->tdy, &cc->tdx);
    get_nchw(&cc->tdx, dx);
    e->ops->conv_backward_weights(cc->conv, &cc->tx, &cc->tdy, gw, gb);

    for (int t = 0; t < 6; t++) {
        size_t i = bcae_rng_u64(&rng) % cc->nx;
        float keep = cc->x[i];
        cc->x[i] = keep + h;
        put_nchw(cc->x, &cc->tx);
        double lp = loss(e, cc, ybuf);
        cc->x[i] = keep - h;
        put_nchw(cc->x, &cc->tx);
        double lm = loss(e, cc, ybuf);
        cc->x[i] = keep;
        put_nchw(cc->x, &cc->tx);
        double fd = (lp - lm) / (2.0 * h);
        CHECK_MSG(fabs(fd - dx[i]) <= tol * (1.0 + fabs(fd)), "%s: dL/dx[%zu] %.8g, fd %.8g",
                  case_name, i, (double)dx[i], fd);
    }
    for (int t = 0; t < 6; t++) {
        size_t i = bcae_rng_u64(&rng) % cc->nw;
        float keep = cc->w[i];
        cc->w[i] = keep + h;
        e->ops->conv_set_weights(cc->conv, cc->w, cc->b);
        double lp = loss(e, cc, ybuf);
        cc->w[i] = keep - h;
        e->ops->conv_set_weights(cc->conv, cc->w, cc->b);
        double lm = loss(e, cc, ybuf);
        cc->w[i] = keep;
        double fd = (lp - lm) / (2.0 * h);
        CHECK_MSG(fabs(fd - gw[i]) <= tol * (1.0 + fabs(fd)), "%s: dL/dw[%zu] %.8g, fd %.8g",
                  case_name, i, (double)gw[i], fd);
    }
    for (int o = 0; o < d->cout && o < 3; o++) {
        float keep = cc->b[o];
        cc->b[o] = keep + h;
        e->ops->conv_set_weights(cc->conv, cc->w, cc->b);
        double lp = loss(e, cc, ybuf);
        cc->b[o] = keep - h;
        e->ops->conv_set_weights(cc->conv, cc->w, cc->b);
        double lm = loss(e, cc, ybuf);
        cc->b[o] = keep;
        double fd = (lp - lm) / (2.0 * h);
        CHECK_MSG(fabs(fd - gb[o]) <= tol * (1.0 + fabs(fd)), "%s: dL/db[%d] %.8g, fd %.8g",
                  case_name, o, (double)gb[o], fd);
    }
    e->ops->conv_set_weights(cc->conv, cc->w, cc->b);
    free(ybuf);
    free(dx);
    free(gw);
    free(gb);
}

/* New weights reach the forward and the backward-data primitives (each has
 * its own private copy), and "+=" adds to what dweight already holds. */
static void check_set_weights_and_accumulation(nn_engine *e)
{
    conv_case cc;
    if (!case_open(e, &cc, shape_of(2, 16, 32, 11, 13, 3, 1, 1), 1)) return;
    float *y1 = malloc(cc.ny * sizeof *y1), *y2 = malloc(cc.ny * sizeof *y2);
    e->ops->conv_forward(cc.conv, &cc.tx, &cc.ty, NN_POST_NONE);
    get_nchw(&cc.ty, y1);
    for (size_t i = 0; i < cc.nw; i++) cc.w[i] = -0.5f * cc.w[i] + 0.01f;
    for (int o = 0; o < cc.cs.d.cout; o++) cc.b[o] += 1.0f;
    e->ops->conv_set_weights(cc.conv, cc.w, cc.b);
    e->ops->conv_forward(cc.conv, &cc.tx, &cc.ty, NN_POST_NONE);
    get_nchw(&cc.ty, y2);
    size_t changed = 0;
    for (size_t i = 0; i < cc.ny; i++) changed += y1[i] != y2[i];
    CHECK_MSG(changed == cc.ny, "set_weights changed only %zu of %zu outputs", changed, cc.ny);
    check_forward(e, &cc);  /* against the reference with the new weights */
    check_backward(e, &cc); /* backward-data uses them too */

    /* dweight/dbias holding earlier values: the gradient is added to them. */
    const nn_conv2d_desc *d = &cc.cs.d;
    float *gw = random_floats(cc.nw, 3.0f), *gb = random_floats((size_t)d->cout, 3.0f);
    float *gw0 = malloc(cc.nw * sizeof *gw0), *gb0 = malloc((size_t)d->cout * sizeof *gb0);
    float *g1w = calloc(cc.nw, sizeof *g1w), *g1b = calloc((size_t)d->cout, sizeof *g1b);
    memcpy(gw0, gw, cc.nw * sizeof *gw);
    memcpy(gb0, gb, (size_t)d->cout * sizeof *gb);
    e->ops->conv_backward_weights(cc.conv, &cc.tx, &cc.tdy, g1w, g1b);
    e->ops->conv_backward_weights(cc.conv, &cc.tx, &cc.tdy, gw, gb);
    int ok_w = 1, ok_b = 1;
    for (size_t i = 0; i < cc.nw; i++) ok_w &= gw[i] == gw0[i] + g1w[i];
    for (int o = 0; o < d->cout; o++) ok_b &= gb[o] == gb0[o] + g1b[o];
    CHECK_MSG(ok_w, "dweight += gradient");
    CHECK_MSG(ok_b, "dbias += gradient");
    free(y1);
    free(y2);
    free(gw);
    free(gb);
    free(gw0);
    free(gb0);
    free(g1w);
    free(g1b);
    case_close(e, &cc);
}

static void check_errors(nn_engine *e)
{
    bcae_error err;
    nn_conv *c = (nn_conv *)&err; /* must be reset to NULL on failure */
    const nn_conv2d_desc bad[] = {
        /* kernel larger than the padded input */
        {1, 16, 32, 5, 5, 7, 1, 0, NN_CONV2D_AUTO, BCAE_PRECISION_FP32},
        {0, 16, 32, 8, 8, 3, 1, 1, NN_CONV2D_AUTO, BCAE_PRECISION_FP32}, /* empty batch */
        {1, 16, 0, 8, 8, 3, 1, 1, NN_CONV2D_AUTO, BCAE_PRECISION_FP32},  /* no output channels */
        {1, 16, 32, 8, 8, 3, 0, 1, NN_CONV2D_AUTO, BCAE_PRECISION_FP32}, /* stride 0 */
        {1, 16, 32, 8, 8, 3, 1, -1, NN_CONV2D_AUTO, BCAE_PRECISION_FP32} /* negative padding */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bcae_status st = e->ops->conv2d_create(e, &bad[i], 1, &c, &err);
        CHECK(st == BCAE_ERR_INVALID_ARGUMENT && err.status == st && c == NULL);
    }
    e->ops->conv2d_create(e, &bad[0], 1, &c, &err);
    CHECK_MSG(strstr(err.message, "16->32 k7 s1 p0 on 1x16x5x5") != NULL, "message: %s",
              err.message);

    /* A conv planned for inference has no backward passes: misuse gives NaN,
     * not stale numbers. */
    conv_case cc;
    if (!case_open(e, &cc, shape_of(1, 16, 16, 6, 6, 3, 1, 1), 0)) return;
    check_forward(e, &cc);
    e->ops->conv_backward_data(cc.conv, &cc.tdy, &cc.tdx);
    CHECK(isnan(cc.tdx.data[0]) && isnan(cc.tdx.data[cc.nx - 1]));
    case_close(e, &cc);
}

/* The calling thread's OpenMP setting is the caller's: left as it was. */
static void check_threads_restored(nn_engine *e)
{
    conv_case cc;
    if (!case_open(e, &cc, shape_of(1, 16, 16, 9, 9, 3, 1, 1), 1)) return;
    int saved = omp_get_max_threads();
    omp_set_num_threads(3);
    e->ops->conv_forward(cc.conv, &cc.tx, &cc.ty, NN_POST_LEAKY_RELU);
    e->ops->conv_backward_data(cc.conv, &cc.tdy, &cc.tdx);
    CHECK(omp_get_max_threads() == 3);
    omp_set_num_threads(saved);
    case_close(e, &cc);
}

/* The engine's own layout transfer (cpu_kernels.c) and ours agree, so the
 * tensors we build are what model code would build. */
static void check_layout_agrees(nn_engine *e)
{
    const int cs[] = {16, 8, 3};
    for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
        nn_tensor a = tensor_new(e, 2, cs[k], 5, 7), b = tensor_new(e, 2, cs[k], 5, 7);
        size_t count = count4(2, cs[k], 5, 7);
        float *host = random_floats(count, 1.0f);
        put_nchw(host, &a);
        e->ops->from_nchw(e, host, &b);
        CHECK_MSG(memcmp(a.data, b.data, count * sizeof(float)) == 0,
                  "from_nchw layout, %d channels", cs[k]);
        free(host);
        free(a.data);
        free(b.data);
    }
}

int main(void)
{
    bcae_rng_seed(&rng, bcae_hash3(2024, 7, 3, 1));
    nn_engine *e = NULL;
    bcae_error err;
    if (nn_cpu_engine_create(2, &e, &err) != BCAE_OK) {
        fprintf(stderr, "engine: %s\n", err.message);
        return 1;
    }
    check_layout_agrees(e);

    /* Every (cin, cout) in {16, 32}^2, kernel and stride; padding, batch and
     * the odd spatial sizes rotate through their ranges. */
    const int chans[] = {16, 32}, ks[] = {1, 3, 7, 8}, hs[] = {9, 11, 13}, ws[] = {7, 11, 15};
    int cases = 0;
    for (int ci = 0; ci < 2; ci++)
        for (int co = 0; co < 2; co++)
            for (int ki = 0; ki < 4; ki++)
                for (int s = 1; s <= 2; s++) {
                    int i = cases++;
                    conv_case cc;
                    conv_shape cs = shape_of(1 + i % 3, chans[ci], chans[co], hs[i % 3],
                                             ws[(i / 3) % 3], ks[ki], s, (i / 2) % 4);
                    if (!case_open(e, &cc, cs, 1)) continue;
                    check_forward(e, &cc);
                    check_backward(e, &cc);
                    if (i % 5 == 0) check_finite_differences(e, &cc);
                    case_close(e, &cc);
                }

    /* The other layouts (nChw8c and plain nchw, mixed with nChw16c), and
     * BCAE-2D's fused first layer (16->32 k8 s2 p3) with an even size. */
    const conv_shape more[] = {
        shape_of(2, 8, 16, 9, 11, 3, 1, 1),  shape_of(2, 16, 8, 11, 9, 3, 2, 1),
        shape_of(1, 1, 16, 13, 11, 7, 1, 3), shape_of(3, 16, 1, 9, 7, 1, 1, 0),
        shape_of(2, 3, 5, 10, 9, 3, 2, 2),   shape_of(1, 24, 8, 7, 9, 8, 2, 3),
        shape_of(2, 16, 32, 24, 32, 8, 2, 3), shape_of(1, 8, 8, 7, 7, 3, 2, 0),
        shape_of(3, 32, 32, 40, 36, 3, 1, 1),
    };
    for (size_t i = 0; i < sizeof more / sizeof more[0]; i++) {
        conv_case cc;
        if (!case_open(e, &cc, more[i], 1)) continue;
        check_forward(e, &cc);
        check_backward(e, &cc);
        check_finite_differences(e, &cc);
        case_close(e, &cc);
        cases++;
    }

    check_set_weights_and_accumulation(e);
    check_threads_restored(e);
    check_errors(e);
    nn_engine_destroy(e);

    /* Other thread counts: oneDNN splits the work (and sizes the scratchpad
     * and the backward-weights reduction) by the count set at create. */
    const int thread_counts[] = {1, 3};
    const conv_shape threaded[] = {
        shape_of(3, 32, 32, 40, 36, 3, 1, 1),
        shape_of(2, 16, 32, 30, 26, 7, 1, 3),
        shape_of(2, 16, 32, 30, 26, 8, 2, 3),
    };
    for (size_t t = 0; t < sizeof thread_counts / sizeof thread_counts[0]; t++) {
        if (nn_cpu_engine_create(thread_counts[t], &e, &err) != BCAE_OK) {
            fprintf(stderr, "engine: %s\n", err.message);
            return 1;
        }
        for (size_t i = 0; i < sizeof threaded / sizeof threaded[0]; i++) {
            conv_case cc;
            if (!case_open(e, &cc, threaded[i], 1)) continue;
            check_forward(e, &cc);
            check_backward(e, &cc);
            case_close(e, &cc);
            cases++;
        }
        nn_engine_destroy(e);
    }
    printf("%d shapes; worst error %.3g of the bound (tolerance %g)\n", cases, worst_seen,
           REL_TOL);
    return check_report("test_conv");
}
