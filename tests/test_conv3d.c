/*
 * The CPU backend's 3D operations against a float64 reference written here:
 *  - Conv3d and ConvTranspose3d (direct oneDNN, and the Conv3d + pixel
 *    shuffle form of SPEC section 6) forward, with and without the fused
 *    LeakyReLU, over the shapes BCAE++ / BCAE-HT / BCAE use (anisotropic
 *    kernels, strides and paddings, all three activation layouts);
 *  - backward-data and backward-weights (with the "+=" contract);
 *  - finite differences of L = sum(y * r) against both backward passes;
 *  - the shuffle and direct forms of one transposed convolution against each
 *    other, forward and backward;
 *  - InstanceNorm3d forward against the reference, backward by finite
 *    differences;
 *  - invalid descriptors refused.
 * Error bound per output: 1e-5 of |b| + sum |w x| (see test_conv.c).
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/rng.h"
#include "nn/cpu/cpu_internal.h"

#define REL_TOL 1e-5

static bcae_rng rng;
static char case_name[200];

static float uniform(void) { return (float)(2.0 * bcae_rng_uniform(&rng) - 1.0); }

static float *random_floats(size_t n, float scale)
{
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = scale * uniform();
    return p;
}

static size_t count5(const nn_tensor5 *t)
{
    return (size_t)t->n * (size_t)t->c * (size_t)t->d * (size_t)t->h * (size_t)t->w;
}

/* Host NCDHW <-> engine layout, through cpu_index on the flattened view. */
static void put(const float *host, nn_tensor5 *t)
{
    nn_tensor f = nn_tensor5_flat(t);
    size_t i = 0;
    for (int n = 0; n < f.n; n++)
        for (int c = 0; c < f.c; c++)
            for (int y = 0; y < f.h; y++)
                for (int x = 0; x < f.w; x++) f.data[cpu_index(&f, n, c, y, x)] = host[i++];
}

static void get(const nn_tensor5 *t, float *host)
{
    nn_tensor f = nn_tensor5_flat(t);
    size_t i = 0;
    for (int n = 0; n < f.n; n++)
        for (int c = 0; c < f.c; c++)
            for (int y = 0; y < f.h; y++)
                for (int x = 0; x < f.w; x++) host[i++] = f.data[cpu_index(&f, n, c, y, x)];
}

static nn_tensor5 tensor_new(int n, int c, int d, int h, int w)
{
    nn_tensor5 t = {n, c, d, h, w, NULL};
    t.data = malloc(count5(&t) * sizeof(float));
    return t;
}

/* ---- float64 reference ------------------------------------------------------------
 * Every multiply of a convolution links a "small" position q (the output of a
 * Conv3d, the input of a transposed one) with the "big" position q * s - p + k.
 * tap(xi, wi, yi) is called for each, with plain NCDHW / PyTorch weight indices. */
typedef struct c3case {
    nn_conv3d_desc d;
    int out[3];
} c3case;

#define FOR_EACH_TAP(cc, BODY)                                                                  \
    do {                                                                                        \
        const nn_conv3d_desc *d_ = &(cc)->d;                                                    \
        const int tr_ = d_->transposed;                                                         \
        const int in_[3] = {d_->d, d_->h, d_->w};                                               \
        const int *sm_ = tr_ ? in_ : (cc)->out, *bg_ = tr_ ? (cc)->out : in_;                   \
        for (int n_ = 0; n_ < d_->n; n_++)                                                      \
            for (int o_ = 0; o_ < d_->cout; o_++)                                               \
                for (int c_ = 0; c_ < d_->cin; c_++)                                            \
                    for (int q0 = 0; q0 < sm_[0]; q0++)                                         \
                        for (int q1 = 0; q1 < sm_[1]; q1++)                                     \
                            for (int q2 = 0; q2 < sm_[2]; q2++)                                 \
                                for (int k0 = 0; k0 < d_->k[0]; k0++) {                         \
                                    int b0 = q0 * d_->stride[0] - d_->pad[0] + k0;              \
                                    if (b0 < 0 || b0 >= bg_[0]) continue;                       \
                                    for (int k1 = 0; k1 < d_->k[1]; k1++) {                     \
                                        int b1 = q1 * d_->stride[1] - d_->pad[1] + k1;          \
                                        if (b1 < 0 || b1 >= bg_[1]) continue;                   \
                                        for (int k2 = 0; k2 < d_->k[2]; k2++) {                 \
                                            int b2 = q2 * d_->stride[2] - d_->pad[2] + k2;      \
                                            if (b2 < 0 || b2 >= bg_[2]) continue;               \
                                            size_t sp_ = ((size_t)q0 * sm_[1] + q1) * sm_[2] + q2; \
                                            size_t bp_ = ((size_t)b0 * bg_[1] + b1) * bg_[2] + b2; \
                                            size_t xs_ = (size_t)in_[0] * in_[1] * in_[2];      \
                                            size_t ys_ = (size_t)(cc)->out[0] * (cc)->out[1] *  \
                                                         (cc)->out[2];                          \
                                            size_t xi = ((size_t)n_ * d_->cin + c_) * xs_ +     \
                                                        (tr_ ? sp_ : bp_);                      \
                                            size_t yi = ((size_t)n_ * d_->cout + o_) * ys_ +    \
                                                        (tr_ ? bp_ : sp_);                      \
                                            size_t wi = (tr_ ? ((size_t)c_ * d_->cout + o_)     \
                                                             : ((size_t)o_ * d_->cin + c_)) *   \
                                                            d_->k[0] * d_->k[1] * d_->k[2] +    \
                                                        ((size_t)k0 * d_->k[1] + k1) * d_->k[2] + k2; \
                                            BODY;                                               \
                                        }                                                       \
                                    }                                                           \
                                }                                                               \
    } while (0)

typedef struct c3run {
    c3case cs;
    nn_conv3d *conv;
    nn_tensor5 tx, ty, tdx, tdy;
    float *x, *w, *b, *r; /* r: dL/dy */
    size_t nx, ny, nw;
} c3run;

static c3case make_case(int n, int cin, int cout, int d, int h, int w, int k0, int k1, int k2,
                        int s0, int s1, int s2, int p0, int p1, int p2, int tr, nn_conv3d_algo algo)
{
    c3case c = {{n, cin, cout, d, h, w, {k0, k1, k2}, {s0, s1, s2}, {p0, p1, p2}, tr, algo},
                {0, 0, 0}};
    nn_conv3d_out_dims(&c.d, c.out);
    return c;
}

static void name_case(const c3case *c)
{
    const nn_conv3d_desc *d = &c->d;
    snprintf(case_name, sizeof case_name,
             "%s %d->%d k(%d,%d,%d) s(%d,%d,%d) p(%d,%d,%d) on %dx%dx%dx%dx%d [%s]",
             d->transposed ? "deconv3d" : "conv3d", d->cin, d->cout, d->k[0], d->k[1], d->k[2],
             d->stride[0], d->stride[1], d->stride[2], d->pad[0], d->pad[1], d->pad[2], d->n,
             d->cin, d->d, d->h, d->w,
             d->algo == NN_CONV3D_SHUFFLE ? "shuffle" : d->algo == NN_CONV3D_DIRECT ? "direct" : "auto");
}

static int run_open(nn_engine *e, c3run *r, c3case cs, int training)
{
    memset(r, 0, sizeof *r);
    r->cs = cs;
    name_case(&cs);
    const nn_conv3d_desc *d = &cs.d;
    bcae_error err;
    if (e->ops->conv3d_create(e, d, training, &r->conv, &err)) {
        CHECK_MSG(0, "%s: create failed: %s", case_name, err.message);
        return -1;
    }
    r->tx = tensor_new(d->n, d->cin, d->d, d->h, d->w);
    r->ty = tensor_new(d->n, d->cout, cs.out[0], cs.out[1], cs.out[2]);
    r->tdx = tensor_new(d->n, d->cin, d->d, d->h, d->w);
    r->tdy = tensor_new(d->n, d->cout, cs.out[0], cs.out[1], cs.out[2]);
    r->nx = count5(&r->tx);
    r->ny = count5(&r->ty);
    r->nw = (size_t)d->cin * d->cout * d->k[0] * d->k[1] * d->k[2];
    r->x = random_floats(r->nx, 1.0f);
    r->w = random_floats(r->nw, 0.5f);
    r->b = random_floats((size_t)d->cout, 0.5f);
    r->r = random_floats(r->ny, 1.0f);
    put(r->x, &r->tx);
    put(r->r, &r->tdy);
    e->ops->conv3d_set_weights(r->conv, r->w, r->b);
    return 0;
}

static void run_close(nn_engine *e, c3run *r)
{
    e->ops->conv3d_destroy(r->conv);
    free(r->tx.data);
    free(r->ty.data);
    free(r->tdx.data);
    free(r->tdy.data);
    free(r->x);
    free(r->w);
    free(r->b);
    free(r->r);
}

static void compare(const char *what, const float *got, const double *ref, const double *bound,
                    size_t n)
{
    size_t bad = 0, worst_i = 0;
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double err = fabs((double)got[i] - ref[i]) / (bound[i] + 1e-30);
        if (!(err <= REL_TOL)) bad++;
        if (!(err <= worst)) {
            worst = err;
            worst_i = i;
        }
    }
    CHECK_MSG(bad == 0, "%s %s: %zu of %zu beyond tolerance; worst at %zu: got %.8g ref %.8g",
              case_name, what, bad, n, worst_i, (double)got[worst_i], ref[worst_i]);
}

static void check_forward(nn_engine *e, c3run *r)
{
    double *y = calloc(r->ny, sizeof *y), *ya = calloc(r->ny, sizeof *ya);
    float *got = malloc(r->ny * sizeof *got);
    const size_t ys = (size_t)r->cs.out[0] * r->cs.out[1] * r->cs.out[2];
    for (size_t i = 0; i < r->ny; i++) {
        int o = (int)(i / ys % (size_t)r->cs.d.cout);
        y[i] = r->b[o];
        ya[i] = fabs(r->b[o]);
    }
    FOR_EACH_TAP(&r->cs, {
        double t = (double)r->w[wi] * r->x[xi];
        y[yi] += t;
        ya[yi] += fabs(t);
    });
    e->ops->conv3d_forward(r->conv, &r->tx, &r->ty, NN_POST_NONE);
    get(&r->ty, got);
    compare("forward", got, y, ya, r->ny);
    e->ops->conv3d_forward(r->conv, &r->tx, &r->ty, NN_POST_LEAKY_RELU);
    get(&r->ty, got);
    for (size_t i = 0; i < r->ny; i++)
        if (y[i] <= 0) y[i] *= NN_LEAKY_SLOPE;
    compare("forward+lrelu", got, y, ya, r->ny);
    free(y);
    free(ya);
    free(got);
}

static void check_backward(nn_engine *e, c3run *r)
{
    double *dx = calloc(r->nx, sizeof *dx), *dxa = calloc(r->nx, sizeof *dxa);
    double *dw = calloc(r->nw, sizeof *dw), *dwa = calloc(r->nw, sizeof *dwa);
    const int cout = r->cs.d.cout;
    double *db = calloc((size_t)cout, sizeof *db), *dba = calloc((size_t)cout, sizeof *dba);
    float *got = malloc((r->nx > r->nw ? r->nx : r->nw) * sizeof *got);
    FOR_EACH_TAP(&r->cs, {
        double t = (double)r->w[wi] * r->r[yi];
        double u = (double)r->x[xi] * r->r[yi];
        dx[xi] += t;
        dxa[xi] += fabs(t);
        dw[wi] += u;
        dwa[wi] += fabs(u);
    });
    const size_t ys = (size_t)r->cs.out[0] * r->cs.out[1] * r->cs.out[2];
    for (size_t i = 0; i < r->ny; i++) {
        int o = (int)(i / ys % (size_t)cout);
        db[o] += r->r[i];
        dba[o] += fabs(r->r[i]);
    }
    e->ops->conv3d_backward_data(r->conv, &r->tdy, &r->tdx);
    get(&r->tdx, got);
    compare("backward-data", got, dx, dxa, r->nx);
    /* "+=": start from 1 everywhere. */
    float *gw = malloc(r->nw * sizeof *gw), *gb = malloc((size_t)cout * sizeof *gb);
    for (size_t i = 0; i < r->nw; i++) gw[i] = 1.0f;
    for (int o = 0; o < cout; o++) gb[o] = 1.0f;
    e->ops->conv3d_backward_weights(r->conv, &r->tx, &r->tdy, gw, gb);
    for (size_t i = 0; i < r->nw; i++) {
        dw[i] += 1.0;
        dwa[i] += 1.0;
    }
    for (int o = 0; o < cout; o++) {
        db[o] += 1.0;
        dba[o] += 1.0;
    }
    compare("backward-weights", gw, dw, dwa, r->nw);
    compare("backward-bias", gb, db, dba, (size_t)cout);
    free(dx);
    free(dxa);
    free(dw);
    free(dwa);
    free(db);
    free(dba);
    free(got);
    free(gw);
    free(gb);
}

static double loss(nn_engine *e, c3run *r, float *ybuf)
{
    e->ops->conv3d_forward(r->conv, &r->tx, &r->ty, NN_POST_NONE);
    get(&r->ty, ybuf);
    double l = 0;
    for (size_t i = 0; i < r->ny; i++) l += (double)ybuf[i] * r->r[i];
    return l;
}

/* Central differences of L = sum(y r); L is linear in each input, weight
 * and bias, so a large step is exact up to float32 rounding of y. */
static void check_finite_differences(nn_engine *e, c3run *r)
{
    const float h = 0.25f;
    const double tol = 1e-4;
    const int cout = r->cs.d.cout;
    float *ybuf = malloc(r->ny * sizeof *ybuf), *dx = malloc(r->nx * sizeof *dx);
    float *gw = calloc(r->nw, sizeof *gw), *gb = calloc((size_t)cout, sizeof *gb);
    e->ops->conv3d_backward_data(r->conv, &r->tdy, &r->tdx);
    get(&r->tdx, dx);
    e->ops->conv3d_backward_weights(r->conv, &r->tx, &r->tdy, gw, gb);
    for (int t = 0; t < 5; t++) {
        size_t i = bcae_rng_u64(&rng) % r->nx;
        float keep = r->x[i];
        r->x[i] = keep + h;
        put(r->x, &r->tx);
        double lp = loss(e, r, ybuf);
        r->x[i] = keep - h;
        put(r->x, &r->tx);
        double lm = loss(e, r, ybuf);
        r->x[i] = keep;
        put(r->x, &r->tx);
        double fd = (lp - lm) / (2.0 * h);
        CHECK_MSG(fabs(fd - dx[i]) <= tol * (1.0 + fabs(fd)), "%s: dL/dx[%zu] %.8g, fd %.8g",
                  case_name, i, (double)dx[i], fd);
    }
    for (int t = 0; t < 5; t++) {
        size_t i = bcae_rng_u64(&rng) % r->nw;
        float keep = r->w[i];
        r->w[i] = keep + h;
        e->ops->conv3d_set_weights(r->conv, r->w, r->b);
        double lp = loss(e, r, ybuf);
        r->w[i] = keep - h;
        e->ops->conv3d_set_weights(r->conv, r->w, r->b);
        double lm = loss(e, r, ybuf);
        r->w[i] = keep;
        double fd = (lp - lm) / (2.0 * h);
        CHECK_MSG(fabs(fd - gw[i]) <= tol * (1.0 + fabs(fd)), "%s: dL/dw[%zu] %.8g, fd %.8g",
                  case_name, i, (double)gw[i], fd);
    }
    for (int o = 0; o < cout && o < 2; o++) {
        float keep = r->b[o];
        r->b[o] = keep + h;
        e->ops->conv3d_set_weights(r->conv, r->w, r->b);
        double lp = loss(e, r, ybuf);
        r->b[o] = keep - h;
        e->ops->conv3d_set_weights(r->conv, r->w, r->b);
        double lm = loss(e, r, ybuf);
        r->b[o] = keep;
        double fd = (lp - lm) / (2.0 * h);
        CHECK_MSG(fabs(fd - gb[o]) <= tol * (1.0 + fabs(fd)), "%s: dL/db[%d] %.8g, fd %.8g",
                  case_name, o, (double)gb[o], fd);
    }
    e->ops->conv3d_set_weights(r->conv, r->w, r->b);
    free(ybuf);
    free(dx);
    free(gw);
    free(gb);
}

static void check_case(nn_engine *e, c3case cs, int fd)
{
    c3run r;
    if (run_open(e, &r, cs, 1)) return;
    check_forward(e, &r);
    check_backward(e, &r);
    if (fd) check_finite_differences(e, &r);
    run_close(e, &r);
}

/* The two forms of one transposed convolution, on the same data. */
static void check_shuffle_vs_direct(nn_engine *e, int cin, int cout)
{
    c3case a = make_case(2, cin, cout, 3, 5, 6, 3, 4, 4, 1, 2, 2, 1, 1, 1, 1, NN_CONV3D_DIRECT);
    c3case b = a;
    b.d.algo = NN_CONV3D_SHUFFLE;
    c3run ra, rb;
    if (run_open(e, &ra, a, 1)) return;
    if (run_open(e, &rb, b, 1)) {
        run_close(e, &ra);
        return;
    }
    CHECK(e->ops->conv3d_algo(ra.conv) == NN_CONV3D_DIRECT);
    CHECK(e->ops->conv3d_algo(rb.conv) == NN_CONV3D_SHUFFLE);
    put(ra.x, &rb.tx);
    put(ra.r, &rb.tdy);
    e->ops->conv3d_set_weights(rb.conv, ra.w, ra.b);
    float *ya = malloc(ra.ny * sizeof(float)), *yb = malloc(ra.ny * sizeof(float));
    float *xa = malloc(ra.nx * sizeof(float)), *xb = malloc(ra.nx * sizeof(float));
    float *wa = calloc(ra.nw, sizeof(float)), *wb = calloc(ra.nw, sizeof(float));
    float *ba = calloc((size_t)cout, sizeof(float)), *bb = calloc((size_t)cout, sizeof(float));
    e->ops->conv3d_forward(ra.conv, &ra.tx, &ra.ty, NN_POST_LEAKY_RELU);
    e->ops->conv3d_forward(rb.conv, &rb.tx, &rb.ty, NN_POST_LEAKY_RELU);
    get(&ra.ty, ya);
    get(&rb.ty, yb);
    e->ops->conv3d_backward_data(ra.conv, &ra.tdy, &ra.tdx);
    e->ops->conv3d_backward_data(rb.conv, &rb.tdy, &rb.tdx);
    get(&ra.tdx, xa);
    get(&rb.tdx, xb);
    e->ops->conv3d_backward_weights(ra.conv, &ra.tx, &ra.tdy, wa, ba);
    e->ops->conv3d_backward_weights(rb.conv, &rb.tx, &rb.tdy, wb, bb);
    double worst = 0;
    const float *pa[4] = {ya, xa, wa, ba}, *pb[4] = {yb, xb, wb, bb};
    size_t ns[4] = {ra.ny, ra.nx, ra.nw, (size_t)cout};
    for (int k = 0; k < 4; k++) {
        double scale = 0;
        for (size_t i = 0; i < ns[k]; i++) scale = fmax(scale, fabs(pa[k][i]));
        for (size_t i = 0; i < ns[k]; i++)
            worst = fmax(worst, fabs((double)pa[k][i] - pb[k][i]) / (scale + 1e-30));
    }
    CHECK_MSG(worst <= 1e-5, "shuffle vs direct %d->%d: worst relative difference %.3g", cin,
              cout, worst);
    free(ya);
    free(yb);
    free(xa);
    free(xb);
    free(wa);
    free(wb);
    free(ba);
    free(bb);
    run_close(e, &ra);
    run_close(e, &rb);
}

/* ---- InstanceNorm3d ----------------------------------------------------------- */

static void check_instance_norm(nn_engine *e, int n, int c, int d, int h, int w)
{
    snprintf(case_name, sizeof case_name, "instance norm %dx%dx%dx%dx%d", n, c, d, h, w);
    nn_tensor5 tx = tensor_new(n, c, d, h, w), ty = tensor_new(n, c, d, h, w);
    nn_tensor5 tg = tensor_new(n, c, d, h, w), tdx = tensor_new(n, c, d, h, w);
    size_t N = count5(&tx), S = (size_t)d * h * w;
    float *x = random_floats(N, 2.0f), *r = random_floats(N, 1.0f), *y = malloc(N * sizeof *y);
    float *dx = malloc(N * sizeof *dx), *stats = malloc(2 * (size_t)n * c * sizeof *stats);
    for (size_t i = 0; i < N; i++) x[i] += 0.7f; /* a non-zero mean */
    put(x, &tx);
    put(r, &tg);
    e->ops->instance_norm_forward(e, &tx, &ty, NN_INSTANCE_NORM_EPS, stats);
    get(&ty, y);
    double worst = 0;
    for (int p = 0; p < n * c; p++) {
        double mean = 0, var = 0;
        for (size_t s = 0; s < S; s++) mean += x[(size_t)p * S + s];
        mean /= (double)S;
        for (size_t s = 0; s < S; s++) var += pow(x[(size_t)p * S + s] - mean, 2);
        var /= (double)S;
        double rstd = 1.0 / sqrt(var + NN_INSTANCE_NORM_EPS);
        for (size_t s = 0; s < S; s++)
            worst = fmax(worst, fabs(y[(size_t)p * S + s] - (x[(size_t)p * S + s] - mean) * rstd));
        CHECK_NEAR(stats[2 * p], mean, 1e-6);
        CHECK_NEAR(stats[2 * p + 1], rstd, 1e-6 * rstd);
    }
    CHECK_MSG(worst < 1e-5, "%s: forward off by %.3g", case_name, worst);
    /* Backward (dx aliasing dy) against central differences of sum(y r). */
    put(r, &tdx);
    e->ops->instance_norm_backward(e, &ty, stats, &tdx, &tdx);
    get(&tdx, dx);
    const double hstep = 1e-2;
    for (int t = 0; t < 8; t++) {
        size_t i = bcae_rng_u64(&rng) % N;
        double l[2];
        float keep = x[i];
        for (int sgn = 0; sgn < 2; sgn++) {
            x[i] = keep + (float)(sgn ? -hstep : hstep);
            put(x, &tx);
            e->ops->instance_norm_forward(e, &tx, &ty, NN_INSTANCE_NORM_EPS, stats);
            get(&ty, y);
            l[sgn] = 0;
            for (size_t k = 0; k < N; k++) l[sgn] += (double)y[k] * r[k];
        }
        x[i] = keep;
        double fd = (l[0] - l[1]) / (2 * hstep);
        CHECK_MSG(fabs(fd - dx[i]) <= 2e-3 * (1.0 + fabs(fd)), "%s: dx[%zu] %.7g, fd %.7g",
                  case_name, i, (double)dx[i], fd);
    }
    free(tx.data);
    free(ty.data);
    free(tg.data);
    free(tdx.data);
    free(x);
    free(r);
    free(y);
    free(dx);
    free(stats);
}

static void check_invalid(nn_engine *e)
{
    nn_conv3d *c = NULL;
    bcae_error err;
    c3case bad = make_case(1, 2, 2, 4, 4, 4, 3, 3, 3, 1, 1, 1, -1, 1, 1, 0, NN_CONV3D_AUTO);
    CHECK(e->ops->conv3d_create(e, &bad.d, 0, &c, &err) == BCAE_ERR_INVALID_ARGUMENT && !c);
    CHECK(strstr(err.message, "invalid shape") != NULL);
    /* The shuffle form exists only for k(3,4,4) s(1,2,2) p1. */
    c3case ns = make_case(1, 2, 2, 4, 4, 4, 4, 3, 3, 2, 2, 1, 1, 0, 1, 1, NN_CONV3D_SHUFFLE);
    CHECK(e->ops->conv3d_create(e, &ns.d, 0, &c, &err) == BCAE_ERR_INVALID_ARGUMENT && !c);
    /* AUTO on such a shape runs direct; on the BCAE++ shape, shuffle. */
    ns.d.algo = NN_CONV3D_AUTO;
    CHECK(e->ops->conv3d_create(e, &ns.d, 0, &c, &err) == BCAE_OK);
    if (c) CHECK(e->ops->conv3d_algo(c) == NN_CONV3D_DIRECT);
    e->ops->conv3d_destroy(c);
    c3case pp = make_case(1, 8, 4, 4, 4, 4, 3, 4, 4, 1, 2, 2, 1, 1, 1, 1, NN_CONV3D_AUTO);
    CHECK(e->ops->conv3d_create(e, &pp.d, 0, &c, &err) == BCAE_OK);
    if (c) CHECK(e->ops->conv3d_algo(c) == NN_CONV3D_SHUFFLE);
    e->ops->conv3d_destroy(c);
}

int main(void)
{
    bcae_rng_seed(&rng, 3);
    nn_engine *e;
    bcae_error err;
    if (nn_cpu_engine_create(2, &e, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    const nn_conv3d_algo D = NN_CONV3D_DIRECT, S = NN_CONV3D_SHUFFLE;
    /* BCAE++ / HT encoder: strided k(3,4,4), then k3. Layouts ncdhw, 8c, 16c. */
    check_case(e, make_case(2, 1, 8, 4, 8, 10, 3, 4, 4, 1, 2, 2, 1, 1, 1, 0, D), 1);
    check_case(e, make_case(1, 8, 16, 3, 6, 8, 3, 4, 4, 1, 2, 2, 1, 1, 1, 0, D), 0);
    check_case(e, make_case(1, 16, 16, 3, 5, 6, 3, 3, 3, 1, 1, 1, 1, 1, 1, 0, D), 0);
    check_case(e, make_case(2, 2, 4, 3, 6, 6, 3, 4, 4, 1, 2, 2, 1, 1, 1, 0, D), 1);
    /* Decoders: transposed k(3,4,4) both ways; 16 -> 8, 8 -> 4, 4 -> 2. */
    check_case(e, make_case(1, 16, 8, 3, 3, 4, 3, 4, 4, 1, 2, 2, 1, 1, 1, 1, D), 0);
    check_case(e, make_case(1, 16, 8, 3, 3, 4, 3, 4, 4, 1, 2, 2, 1, 1, 1, 1, S), 0);
    check_case(e, make_case(2, 4, 2, 3, 4, 3, 3, 4, 4, 1, 2, 2, 1, 1, 1, 1, D), 1);
    check_case(e, make_case(2, 4, 2, 3, 4, 3, 3, 4, 4, 1, 2, 2, 1, 1, 1, 1, S), 1);
    check_case(e, make_case(1, 8, 16, 2, 3, 3, 3, 4, 4, 1, 2, 2, 1, 1, 1, 1, S), 0);
    /* The original BCAE: (azimuth, z, layer) kernels (4,3,3) p(1,0,1) and
     * (4,4,3) p(1,1,1), strides (2,2,1), both directions. */
    check_case(e, make_case(2, 1, 8, 8, 9, 4, 4, 3, 3, 2, 2, 1, 1, 0, 1, 0, D), 1);
    check_case(e, make_case(1, 8, 16, 6, 6, 3, 4, 4, 3, 2, 2, 1, 1, 1, 1, 0, D), 0);
    check_case(e, make_case(1, 8, 16, 3, 4, 3, 4, 3, 3, 2, 2, 1, 1, 0, 1, 1, D), 0);
    check_case(e, make_case(2, 4, 2, 3, 3, 3, 4, 4, 3, 2, 2, 1, 1, 1, 1, 1, D), 1);
    check_case(e, make_case(1, 2, 1, 3, 3, 4, 3, 3, 3, 1, 1, 1, 1, 1, 1, 0, D), 1);
    check_shuffle_vs_direct(e, 16, 8);
    check_shuffle_vs_direct(e, 8, 4);
    check_shuffle_vs_direct(e, 4, 2);
    check_shuffle_vs_direct(e, 8, 16);
    check_instance_norm(e, 2, 8, 3, 4, 5);
    check_instance_norm(e, 1, 2, 4, 5, 3);
    check_instance_norm(e, 1, 16, 2, 3, 4);
    check_invalid(e);
    nn_engine_destroy(e);
    return check_report("test_conv3d");
}
