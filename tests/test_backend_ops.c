/*
 * Backend conformance (after ggml's test-backend-ops): every operation of
 * nn/engine.h, forward and backward, on every backend this build can
 * create (the CPU's also with its other options, for the convolutions they
 * switch), against the double-precision references of backend_ref.c (not
 * against any backend), over fixed edge shapes (batch 1, odd sizes, one
 * channel, k1 / k3 / k7 / k8, strides, transposed 3D convs) and seeded random
 * ones.
 *
 * Data only enters and leaves through the engine (tensor_alloc, from_nchw /
 * to_nchw, alloc, upload / download), so the same cases run on a device
 * backend. One line per (backend, op, case): the max error, relative to the
 * magnitude of the reference (max |got - ref| / max |ref|; NaN fails), and
 * the op's tolerance:
 *   - exact (0): memory, layout transfers, fill;
 *   - 1e-6: element-wise float ops (pooling, upsampling, LeakyReLU, ReZero,
 *     add, the heads, the loss gradients): a few roundings of one value;
 *   - 1e-9: the loss sums (double sums in another order);
 *   - 1e-5: InstanceNorm both ways (float outputs of a double computation);
 *   - 1e-4: convolutions (fp32 sums of up to ~1600 products, Winograd's
 *     transforms: ~1e-6 measured) and fp32 chains (several of them);
 *   - mixed-precision (bf16) convolutions: element by element within the
 *     bound of bf16-rounded inputs, (2^-7 + ...) sum |a||b| (derived at
 *     case_conv2d_bf16), and visibly rounded (relative error > 1e-5);
 *   - 2e-2 bf16 and 3e-2 int8 chains (8 / 7 bits per activation over up to
 *     seven layers, the int8 chain calibrated on its input; ~5e-3 measured);
 *   - AdamW: 1e-6 for the moments, 2e-6 for the weights (four roundings of
 *     an update as large as the weight at lr 0.1), and bit for bit against
 *     src/train/optim.c on the CPU.
 * A wrong tap, channel, slope or sign is O(1) of the magnitude.
 *
 * Negative controls, so that the test can fail: every comparison is
 * repeated against its reference with one element moved by 10x the
 * tolerance, which must fail; convolutions are compared against the
 * reference with the kernel mirrored, the loss against another gamma and
 * coefficient, AdamW against no weight decay, and these must fail too; each
 * backend must report misuse (wrong shapes, backward on an inference conv)
 * as an error with a message.
 *
 * Backends that cannot be created (CUDA not compiled, or no device) are
 * reported as skipped with the reason. An operation a backend lacks (an
 * optional slot left NULL, or BCAE_ERR_UNSUPPORTED) is reported as not
 * implemented and does not fail, except for backends whose table is
 * complete (the CPU's), where it does.
 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend_ref.h"
#include "check.h"
#include "core/rng.h"
#include "nn/engine.h"
#include "train/optim.h"

/* ---- backends ------------------------------------------------------------------ */

typedef struct backend {
    const char *name;
    nn_engine_options opt;
    int complete;      /* every op is there: "not implemented" is a failure */
    int adamw_bitwise; /* adamw_step equals src/train/optim.c's bit for bit */
    int convs_only;    /* an option set of a backend run in full above: only the
                          ops its options change (convolutions, chains) */
} backend;

static const backend BACKENDS[] = {
    {"cpu", {.device = BCAE_DEVICE_CPU, .threads = 2}, 1, 1, 0},
    /* The CPU's other paths: direct 2D convs, 3D convs all through oneDNN. */
    {"cpu/direct,onednn3d",
     {.device = BCAE_DEVICE_CPU,
      .threads = 1,
      .cpu = {.conv2d_algo = NN_CONV2D_DIRECT, .conv3d_onednn = 1}},
     1, 1, 1},
    /* ... and the own 3D kernels' portable C path. */
    {"cpu/portable3d", {.device = BCAE_DEVICE_CPU, .threads = 2, .cpu = {.conv3d_portable = 1}},
     1, 1, 1},
    /* The encoder chain's 3x3 convs on each algorithm: "cpu" runs the
     * default (Winograd F(4x4, 3x3) with AVX-512, else oneDNN direct),
     * "cpu/direct,onednn3d" oneDNN's direct kernels; these force the two
     * Winograd forms (oneDNN direct where the CPU lacks AVX-512). */
    {"cpu/chain-wino2", {.device = BCAE_DEVICE_CPU, .threads = 2, .cpu = {.chain_conv = NN_CHAIN_CONV_WINO2}},
     1, 1, 1},
    {"cpu/chain-wino4", {.device = BCAE_DEVICE_CPU, .threads = 1, .cpu = {.chain_conv = NN_CHAIN_CONV_WINO4}},
     1, 1, 1},
    {"cuda", {.device = BCAE_DEVICE_CUDA, .allow_partial = 1}, 0, 0, 0},
};

/* ---- the harness ---------------------------------------------------------------- */

typedef struct tctx {
    const backend *b;
    nn_engine *e;
    bcae_rng rng;
    bcae_error err; /* the message of the last failure */
    int lines, passed, failed, not_implemented;
} tctx;

static double uni(tctx *t, double lo, double hi)
{
    return lo + (hi - lo) * bcae_rng_uniform(&t->rng);
}

/* Zeroed, so that nothing reads an indeterminate value. */
static float *host_alloc(size_t n) { return calloc(n ? n : 1, sizeof(float)); }
static double *dhost_alloc(size_t n) { return malloc((n ? n : 1) * sizeof(double)); }

static void fill_uniform(tctx *t, float *p, size_t n, double lo, double hi)
{
    for (size_t i = 0; i < n; i++) p[i] = (float)uni(t, lo, hi);
}

/* Like the model's input: zero but for a fraction occupancy of values in
 * [6, 10) (log2(ADC + 1)). */
static void fill_sparse(tctx *t, float *p, size_t n, double occupancy)
{
    for (size_t i = 0; i < n; i++)
        p[i] = bcae_rng_uniform(&t->rng) < occupancy ? (float)uni(t, 6, 10) : 0.0f;
}

/* Weights of a layer with fan_in inputs, scaled so activations stay O(1). */
static void fill_weights(tctx *t, float *p, size_t n, int fan_in)
{
    const double a = 1.0 / sqrt((double)fan_in);
    fill_uniform(t, p, n, -a, a);
}

/* max |got - ref| / max(max |ref|, mag_floor) (absolute where both are 0);
 * NaN or a missing output is infinite. mag_floor: the magnitude of the terms
 * where an output may cancel to near zero (a sum of two values), else 0. */
static double rel_err(const float *got, const double *ref, size_t n, double mag_floor)
{
    double dmax = 0, rmax = mag_floor;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]);
        if (!(d <= dmax)) dmax = isnan(d) ? INFINITY : d;
        if (fabs(ref[i]) > rmax) rmax = fabs(ref[i]);
    }
    return rmax > 0 ? dmax / rmax : dmax;
}

#if defined(__GNUC__)
#define TEST_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define TEST_PRINTF(a, b)
#endif

/* One report line: backend, op, case, then the outcome. */
static void line(tctx *t, const char *op, const char *label, const char *fmt, ...)
    TEST_PRINTF(4, 5);

static void line(tctx *t, const char *op, const char *label, const char *fmt, ...)
{
    va_list ap;
    printf("%-20s %-27s %-44s ", t->b->name, op, label);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    t->lines++;
}

/* Compares and reports one output; the negative control moves the
 * reference's middle element by 10x the tolerance (of the magnitude) and
 * needs the comparison to fail then. */
static int check_out_floor(tctx *t, const char *op, const char *label, const float *got,
                           double *ref, size_t n, double tol, double mag_floor)
{
    const double err = rel_err(got, ref, n, mag_floor);
    const int ok = err <= tol;
    line(t, op, label, "max err %.2e  tol %.0e  %s", err, tol, ok ? "ok" : "FAIL");
    CHECK_MSG(ok, "%s %s %s: max err %.3g > %.3g", t->b->name, op, label, err, tol);
    ok ? t->passed++ : t->failed++;
    if (n) {
        double mag = mag_floor;
        for (size_t i = 0; i < n; i++) mag = fmax(mag, fabs(ref[i]));
        const size_t k = n / 2;
        const double keep = ref[k];
        ref[k] += (10 * tol + 1e-6) * (mag > 0 ? mag : 1);
        const double bad = rel_err(got, ref, n, mag_floor);
        ref[k] = keep;
        CHECK_MSG(bad > tol, "%s %s %s: negative control passed (%.3g <= %.3g)", t->b->name, op,
                  label, bad, tol);
    }
    return ok;
}

static int check_out(tctx *t, const char *op, const char *label, const float *got, double *ref,
                     size_t n, double tol)
{
    return check_out_floor(t, op, label, got, ref, n, tol, 0);
}

/* The largest |a_i| + |b_i|: the scale of a sum that may cancel. */
static double sum_scale(const float *a, double ka, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(ka * a[i]) + fabs((double)b[i]));
    return m;
}

/* A reference that must NOT match (a semantic negative control). */
static void check_differs(tctx *t, const char *op, const char *label, const char *what,
                          const float *got, const double *wrong, size_t n, double tol)
{
    const double err = rel_err(got, wrong, n, 0);
    CHECK_MSG(err > tol, "%s %s %s: matches the wrong reference (%s): %.3g <= %.3g", t->b->name,
              op, label, what, err, tol);
}

/* An operation that could not run: not implemented (UNSUPPORTED) or a
 * failure. */
static void report_status(tctx *t, const char *op, const char *label, bcae_status s)
{
    if (s == BCAE_ERR_UNSUPPORTED && !t->b->complete) {
        line(t, op, label, "not implemented: %s", t->err.message);
        t->not_implemented++;
        return;
    }
    line(t, op, label, "FAIL: %s (%s)", bcae_strerror(s), t->err.message);
    CHECK_MSG(0, "%s %s %s: %s", t->b->name, op, label, t->err.message);
    t->failed++;
}

/* A slot the backend left NULL (optional ones only). */
static void report_absent(tctx *t, const char *op, const char *label)
{
    if (t->b->complete) {
        line(t, op, label, "FAIL: slot missing");
        CHECK_MSG(0, "%s %s: slot missing", t->b->name, op);
        t->failed++;
        return;
    }
    line(t, op, label, "not implemented (optional slot absent)");
    t->not_implemented++;
}

/* Runs an engine call that reports through the engine, keeping its message;
 * on failure reports and jumps to `done`. */
#define RUN_E(t, op, label, call)                                                \
    do {                                                                         \
        bcae_status s_ = (call);                                                 \
        if (s_ != BCAE_OK) {                                                     \
            nn_engine_error((t)->e, s_, &(t)->err);                              \
            report_status((t), (op), (label), s_);                               \
            goto done;                                                           \
        }                                                                        \
    } while (0)

/* The same for calls that fill t->err themselves (allocation, planning). */
#define RUN(t, op, label, call)                                                  \
    do {                                                                         \
        bcae_status s_ = (call);                                                 \
        if (s_ != BCAE_OK) {                                                     \
            report_status((t), (op), (label), s_);                               \
            goto done;                                                           \
        }                                                                        \
    } while (0)

/* Backend tensors holding host NCHW data, and back. */
static bcae_status put4(tctx *t, nn_tensor *x, int n, int c, int h, int w, const float *host)
{
    bcae_status s = nn_tensor_alloc(t->e, x, n, c, h, w, &t->err);
    if (s == BCAE_OK && host) {
        s = t->e->ops->from_nchw(t->e, host, x);
        if (s) nn_engine_error(t->e, s, &t->err);
    }
    return s;
}

static bcae_status put5(tctx *t, nn_tensor5 *x, int n, int c, int d, int h, int w,
                        const float *host)
{
    bcae_status s = nn_tensor5_alloc(t->e, x, n, c, d, h, w, &t->err);
    if (s == BCAE_OK && host) {
        nn_tensor f = nn_tensor5_flat(x);
        s = t->e->ops->from_nchw(t->e, host, &f);
        if (s) nn_engine_error(t->e, s, &t->err);
    }
    return s;
}

static bcae_status get4(tctx *t, const nn_tensor *x, float *host)
{
    bcae_status s = t->e->ops->to_nchw(t->e, x, host);
    if (s) nn_engine_error(t->e, s, &t->err);
    return s;
}

static bcae_status get5(tctx *t, const nn_tensor5 *x, float *host)
{
    nn_tensor f = nn_tensor5_flat(x);
    return get4(t, &f, host);
}

/* A raw backend buffer holding host data, and back. */
static bcae_status putb(tctx *t, float **dev, const float *host, size_t n)
{
    bcae_status s = nn_alloc(t->e, n, dev, &t->err);
    if (s == BCAE_OK) {
        s = nn_upload(t->e, *dev, host, n);
        if (s) nn_engine_error(t->e, s, &t->err);
    }
    return s;
}

static bcae_status getb(tctx *t, const float *dev, float *host, size_t n)
{
    bcae_status s = nn_download(t->e, host, dev, n);
    if (s) nn_engine_error(t->e, s, &t->err);
    return s;
}

static size_t count4(int n, int c, int h, int w) { return (size_t)n * c * h * w; }

/* ---- memory and layouts --------------------------------------------------------- */

static void case_memory(tctx *t, size_t n)
{
    char label[64];
    snprintf(label, sizeof label, "%zu floats", n);
    float *src = host_alloc(n), *got = host_alloc(n), *dev = NULL;
    double *ref = dhost_alloc(n);
    fill_uniform(t, src, n, -3, 3);
    for (size_t i = 0; i < n; i++) ref[i] = src[i];
    RUN(t, "alloc+upload", label, putb(t, &dev, src, n));
    for (size_t i = 0; i < n; i++) got[i] = NAN;
    RUN(t, "download", label, getb(t, dev, got, n));
    check_out(t, "upload/download", label, got, ref, n, 0);
    RUN_E(t, "zero", label, t->e->ops->zero(t->e, dev, n));
    RUN(t, "download", label, getb(t, dev, got, n));
    for (size_t i = 0; i < n; i++) ref[i] = 0;
    check_out(t, "zero", label, got, ref, n, 0);
done:
    nn_free(t->e, dev);
    free(src), free(got), free(ref);
}

static void case_layout(tctx *t, int n, int c, int h, int w)
{
    char label[64];
    snprintf(label, sizeof label, "%dx%dx%dx%d", n, c, h, w);
    const size_t cnt = count4(n, c, h, w);
    float *x = host_alloc(cnt), *got = host_alloc(cnt);
    double *ref = dhost_alloc(cnt);
    nn_tensor tx = {0};
    fill_uniform(t, x, cnt, -5, 5);
    RUN(t, "from_nchw", label, put4(t, &tx, n, c, h, w, x));
    RUN(t, "to_nchw", label, get4(t, &tx, got));
    for (size_t i = 0; i < cnt; i++) ref[i] = x[i];
    check_out(t, "from_nchw/to_nchw", label, got, ref, cnt, 0);
    /* NHWC out: element (n, y, x, c). */
    RUN_E(t, "to_nhwc", label, t->e->ops->to_nhwc(t->e, &tx, got));
    for (int in = 0; in < n; in++)
        for (int ic = 0; ic < c; ic++)
            for (int iy = 0; iy < h; iy++)
                for (int ix = 0; ix < w; ix++)
                    ref[(((size_t)in * h + iy) * w + ix) * c + ic] =
                        x[(((size_t)in * c + ic) * h + iy) * w + ix];
    check_out(t, "to_nhwc", label, got, ref, cnt, 0);
    /* NHWC in: the same host data read as NHWC. */
    RUN_E(t, "from_nhwc", label, t->e->ops->from_nhwc(t->e, x, &tx));
    RUN(t, "to_nchw", label, get4(t, &tx, got));
    for (int in = 0; in < n; in++)
        for (int ic = 0; ic < c; ic++)
            for (int iy = 0; iy < h; iy++)
                for (int ix = 0; ix < w; ix++)
                    ref[(((size_t)in * c + ic) * h + iy) * w + ix] =
                        x[(((size_t)in * h + iy) * w + ix) * c + ic];
    check_out(t, "from_nhwc", label, got, ref, cnt, 0);
    RUN_E(t, "fill", label, t->e->ops->fill(t->e, &tx, -0.375f));
    RUN(t, "to_nchw", label, get4(t, &tx, got));
    for (size_t i = 0; i < cnt; i++) ref[i] = -0.375;
    check_out(t, "fill", label, got, ref, cnt, 0);
done:
    nn_tensor_free(t->e, &tx);
    free(x), free(got), free(ref);
}

/* ---- 2D convolutions -------------------------------------------------------------- */

typedef struct conv2d_case {
    int n, cin, cout, h, w, k, s, p;
    nn_conv2d_algo algo;
} conv2d_case;

static const conv2d_case CONV2D_CASES[] = {
    {1, 1, 8, 5, 7, 3, 1, 1, NN_CONV2D_AUTO},   /* one channel in, batch 1, odd sizes */
    {2, 16, 32, 12, 16, 7, 1, 3, NN_CONV2D_AUTO}, /* BCAE-2D's first conv */
    {2, 32, 32, 12, 16, 3, 1, 1, NN_CONV2D_AUTO}, /* its blocks: Winograd where chosen */
    {2, 32, 32, 12, 16, 3, 1, 1, NN_CONV2D_DIRECT},
    {1, 32, 16, 6, 8, 1, 1, 0, NN_CONV2D_AUTO},   /* k1 output layer */
    {2, 16, 32, 12, 16, 8, 2, 3, NN_CONV2D_AUTO}, /* the fused first conv + pool, k8 s2 */
    {1, 3, 5, 9, 7, 3, 2, 1, NN_CONV2D_AUTO},     /* odd everything, stride 2 */
    {3, 8, 4, 5, 5, 5, 1, 2, NN_CONV2D_AUTO},
};

static void conv2d_label(char *buf, size_t size, const conv2d_case *c, const char *extra)
{
    snprintf(buf, size, "n%d %d->%d k%d s%d p%d %dx%d%s%s", c->n, c->cin, c->cout, c->k, c->s,
             c->p, c->h, c->w, c->algo == NN_CONV2D_DIRECT ? " direct" : "", extra);
}

static void check_bf16(tctx *t, const char *op, const char *label, const float *got, double *ref,
                       const double *abs_sum, const float *start, size_t n, int k_terms,
                       const double *wrong);

/* ---- conv_backward_tail ---------------------------------------------------------------
 * dx = conv^T(dy), then times lrelu'(key) and plus add (nn_dx_tail), for
 * each of the three tails (key only, add only, both), through
 * nn_conv_backward_tail (the backend's slot, or the separate passes where
 * it lacks one). The reference applies the tail to the double dx; for bf16
 * the bound scales with it (the slope multiplies the error too) and counts
 * add as the sum's start. */
typedef struct tail_case {
    nn_engine *e;
    nn_conv *conv;
    nn_tensor *tx, *tdy, *tdx;
    float *dgw, *dgb; /* backend scratch for the weight gradients (not checked here) */
    size_t nx;
    const float *key, *add; /* host, nx each */
    const double *dx_ref, *dx_abs; /* conv^T(dy) in double, and from |dy| |w| (bf16) */
} tail_case;

static void check_tails(tctx *t, const tail_case *tc, const conv2d_case *cc, int bf16)
{
    nn_tensor tkey = {0}, tadd = {0};
    float *got = host_alloc(tc->nx);
    double *ref = dhost_alloc(tc->nx), *abs_ref = dhost_alloc(tc->nx);
    char label[96], lab2[128];
    conv2d_label(label, sizeof label, cc, bf16 ? " bf16" : "");
    RUN(t, "conv_backward_tail", label, put4(t, &tkey, cc->n, cc->cin, cc->h, cc->w, tc->key));
    RUN(t, "conv_backward_tail", label, put4(t, &tadd, cc->n, cc->cin, cc->h, cc->w, tc->add));
    for (int mode = 1; mode <= 3; mode++) {
        const nn_dx_tail tail = {mode & 1 ? &tkey : NULL, mode & 2 ? &tadd : NULL};
        snprintf(lab2, sizeof lab2, "%s%s%s", label, mode & 1 ? " lrelu'" : "",
                 mode & 2 ? " +add" : "");
        RUN(t, "conv_backward_tail", lab2, t->e->ops->fill(t->e, tc->tdx, NAN));
        RUN_E(t, "conv_backward_tail", lab2,
              nn_conv_backward_tail(t->e, tc->conv, tc->tx, tc->tdy, tc->tdx, &tail, tc->dgw,
                                    tc->dgb));
        RUN(t, "conv_backward_tail", lab2, get4(t, tc->tdx, got));
        for (size_t i = 0; i < tc->nx; i++) {
            const double s = (mode & 1) && !(tc->key[i] > 0) ? NN_LEAKY_SLOPE : 1.0;
            ref[i] = tc->dx_ref[i] * s + ((mode & 2) ? tc->add[i] : 0.0);
            if (bf16) abs_ref[i] = tc->dx_abs[i] * s;
        }
        if (bf16)
            check_bf16(t, "conv_backward_tail", lab2, got, ref, abs_ref, mode & 2 ? tc->add : NULL,
                       tc->nx, cc->cout * cc->k * cc->k, NULL);
        else
            check_out(t, "conv_backward_tail", lab2, got, ref, tc->nx, 1e-4);
    }
done:
    nn_tensor_free(t->e, &tkey), nn_tensor_free(t->e, &tadd);
    free(got), free(ref), free(abs_ref);
}

static void case_conv2d(tctx *t, const conv2d_case *cc)
{
    char label[96], lab2[96];
    conv2d_label(label, sizeof label, cc, "");
    const ref_conv rc = ref_conv2d(cc->n, cc->cin, cc->cout, cc->h, cc->w, cc->k, cc->s, cc->p);
    const int ho = rc.out[1], wo = rc.out[2];
    const size_t nx = ref_conv_in_count(&rc), ny = ref_conv_out_count(&rc);
    const size_t nw = ref_conv_weight_count(&rc);
    float *x = host_alloc(nx), *wt = host_alloc(nw), *b = host_alloc((size_t)cc->cout);
    float *dy = host_alloc(ny), *dw0 = host_alloc(nw), *db0 = host_alloc((size_t)cc->cout);
    float *got = host_alloc(nx > ny ? (nx > nw ? nx : nw) : (ny > nw ? ny : nw));
    float *gb = host_alloc((size_t)cc->cout);
    double *ref = dhost_alloc(nx > ny ? (nx > nw ? nx : nw) : (ny > nw ? ny : nw));
    double *rb = dhost_alloc((size_t)cc->cout);
    fill_uniform(t, x, nx, -1, 1);
    fill_weights(t, wt, nw, cc->cin * cc->k * cc->k);
    fill_uniform(t, b, (size_t)cc->cout, -0.5, 0.5);
    fill_uniform(t, dy, ny, -1, 1);
    fill_uniform(t, dw0, nw, -1, 1);
    fill_uniform(t, db0, (size_t)cc->cout, -1, 1);
    nn_conv *conv = NULL;
    nn_tensor tx = {0}, ty = {0}, tdy = {0}, tdx = {0};
    float *dwt = NULL, *dbias = NULL, *dgw = NULL, *dgb = NULL;
    const nn_conv2d_desc d = {cc->n, cc->cin, cc->cout, cc->h, cc->w, cc->k, cc->s, cc->p,
                              cc->algo, BCAE_PRECISION_FP32};
    RUN(t, "conv2d_create", label, t->e->ops->conv2d_create(t->e, &d, 1, &conv, &t->err));
    RUN(t, "conv_set_weights", label, putb(t, &dwt, wt, nw));
    RUN(t, "conv_set_weights", label, putb(t, &dbias, b, (size_t)cc->cout));
    RUN_E(t, "conv_set_weights", label, t->e->ops->conv_set_weights(conv, dwt, dbias));
    RUN(t, "conv_forward", label, put4(t, &tx, cc->n, cc->cin, cc->h, cc->w, x));
    RUN(t, "conv_forward", label, put4(t, &ty, cc->n, cc->cout, ho, wo, NULL));
    for (int leaky = 0; leaky < 2; leaky++) {
        conv2d_label(lab2, sizeof lab2, cc, leaky ? " lrelu" : "");
        RUN_E(t, "conv_forward", lab2,
              t->e->ops->conv_forward(conv, &tx, &ty, leaky ? NN_POST_LEAKY_RELU : NN_POST_NONE));
        RUN(t, "conv_forward", lab2, get4(t, &ty, got));
        ref_conv_forward(&rc, x, wt, b, leaky, 0, ref);
        check_out(t, "conv_forward", lab2, got, ref, ny, 1e-4);
        if (cc->k > 1) {
            ref_conv_forward(&rc, x, wt, b, leaky, 1, ref);
            check_differs(t, "conv_forward", lab2, "mirrored kernel", got, ref, ny, 1e-4);
        }
    }
    RUN(t, "conv_backward_data", label, put4(t, &tdy, cc->n, cc->cout, ho, wo, dy));
    RUN(t, "conv_backward_data", label, put4(t, &tdx, cc->n, cc->cin, cc->h, cc->w, NULL));
    RUN_E(t, "conv_backward_data", label, t->e->ops->conv_backward_data(conv, &tdy, &tdx));
    RUN(t, "conv_backward_data", label, get4(t, &tdx, got));
    ref_conv_backward_data(&rc, dy, wt, ref);
    check_out(t, "conv_backward_data", label, got, ref, nx, 1e-4);
    /* "+=": the gradients start from non-zero values. */
    RUN(t, "conv_backward_weights", label, putb(t, &dgw, dw0, nw));
    RUN(t, "conv_backward_weights", label, putb(t, &dgb, db0, (size_t)cc->cout));
    RUN_E(t, "conv_backward_weights", label,
          t->e->ops->conv_backward_weights(conv, &tx, &tdy, dgw, dgb));
    RUN(t, "conv_backward_weights", label, getb(t, dgw, got, nw));
    RUN(t, "conv_backward_weights", label, getb(t, dgb, gb, (size_t)cc->cout));
    ref_conv_backward_weights(&rc, x, dy, dw0, db0, ref, rb);
    check_out(t, "conv_backward_weights", label, got, ref, nw, 1e-4);
    check_out(t, "conv_backward_bias", label, gb, rb, (size_t)cc->cout, 1e-4);
    {
        float *key = host_alloc(nx), *add = host_alloc(nx);
        double *dx_ref = dhost_alloc(nx);
        fill_uniform(t, key, nx, -1, 1);
        fill_uniform(t, add, nx, -1, 1);
        ref_conv_backward_data(&rc, dy, wt, dx_ref);
        const tail_case tc = {t->e, conv, &tx, &tdy, &tdx, dgw, dgb, nx, key, add, dx_ref, NULL};
        check_tails(t, &tc, cc, 0);
        free(key), free(add), free(dx_ref);
    }
    /* Both passes in one call: the same results. */
    if (!nn_has_conv_backward(t->e)) {
        report_absent(t, "conv_backward", label);
        goto done;
    }
    RUN(t, "conv_backward", label, nn_upload(t->e, dgw, dw0, nw));
    RUN(t, "conv_backward", label, nn_upload(t->e, dgb, db0, (size_t)cc->cout));
    RUN(t, "conv_backward", label, t->e->ops->fill(t->e, &tdx, NAN));
    RUN_E(t, "conv_backward", label, t->e->ops->conv_backward(conv, &tx, &tdy, &tdx, dgw, dgb));
    RUN(t, "conv_backward", label, get4(t, &tdx, got));
    ref_conv_backward_data(&rc, dy, wt, ref);
    conv2d_label(lab2, sizeof lab2, cc, " dx");
    check_out(t, "conv_backward", lab2, got, ref, nx, 1e-4);
    RUN(t, "conv_backward", label, getb(t, dgw, got, nw));
    RUN(t, "conv_backward", label, getb(t, dgb, gb, (size_t)cc->cout));
    ref_conv_backward_weights(&rc, x, dy, dw0, db0, ref, rb);
    conv2d_label(lab2, sizeof lab2, cc, " dw");
    check_out(t, "conv_backward", lab2, got, ref, nw, 1e-4);
    conv2d_label(lab2, sizeof lab2, cc, " db");
    check_out(t, "conv_backward", lab2, gb, rb, (size_t)cc->cout, 1e-4);
done:
    if (conv) t->e->ops->conv_destroy(conv);
    nn_tensor_free(t->e, &tx), nn_tensor_free(t->e, &ty);
    nn_tensor_free(t->e, &tdy), nn_tensor_free(t->e, &tdx);
    nn_free(t->e, dwt), nn_free(t->e, dbias), nn_free(t->e, dgw), nn_free(t->e, dgb);
    free(x), free(wt), free(b), free(dy), free(dw0), free(db0), free(got), free(gb);
    free(ref), free(rb);
}

/* ---- mixed-precision (bf16) 2D convolutions -------------------------------------------
 * nn_conv2d_desc.precision = BF16 rounds x, the weights and dy to bf16 (8
 * significant bits, round to nearest even: relative error <= u = 2^-8 each)
 * and accumulates in fp32. For an output s = sum_i a_i b_i of K products the
 * error is then at most (2u + u^2) sum_i |a_i b_i| from the rounded inputs,
 * plus K 2^-24 sum_i |a_i b_i| from fp32 accumulation, plus the fp32
 * rounding of the result (and of the "+=" in backward-weights). The check is
 * element by element against that bound, computed from the same double
 * reference on |a| and |b|:
 *     |got - ref| <= (2^-7 + 2^-16 + K 2^-24) sum|a||b| + 2^-22 (|ref| + |start|)
 * (LeakyReLU is 1-Lipschitz, so the forward's bound holds after it). The
 * error relative to the output's magnitude is then ~1e-3, three orders above
 * an fp32 conv's; a bf16 conv that is secretly fp32 would pass the bound, so
 * the row also demands visible rounding (relative error > 1e-5, fp32 convs
 * measure <= 1e-6). Negative controls: one element moved by 10x its bound,
 * and the mirrored kernel, must fail. */

static void abs_copy(const float *a, float *out, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = fabsf(a[i]);
}

/* max_i |got_i - ref_i| / bound_i, the bound as in the comment above. */
static double bf16_ratio(const float *got, const double *ref, const double *abs_sum,
                         const float *start, size_t n, int k_terms)
{
    const double rel = ldexp(1, -7) + ldexp(1, -16) + k_terms * ldexp(1, -24);
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        const double bound = rel * abs_sum[i] +
                             ldexp(1, -22) * (fabs(ref[i]) + (start ? fabs(start[i]) : 0)) +
                             1e-30;
        const double r = fabs((double)got[i] - ref[i]) / bound;
        if (!(r <= worst)) worst = isnan(r) ? INFINITY : r;
    }
    return worst;
}

static void check_bf16(tctx *t, const char *op, const char *label, const float *got, double *ref,
                       const double *abs_sum, const float *start, size_t n, int k_terms,
                       const double *wrong)
{
    const double ratio = bf16_ratio(got, ref, abs_sum, start, n, k_terms);
    const double rel = rel_err(got, ref, n, 0);
    const int ok = ratio <= 1 && rel > 1e-5;
    line(t, op, label, "err/bound %.3f  rel err %.2e  %s", ratio, rel, ok ? "ok" : "FAIL");
    CHECK_MSG(ratio <= 1, "%s %s %s: error %.3g x the bf16 bound", t->b->name, op, label, ratio);
    CHECK_MSG(rel > 1e-5, "%s %s %s: rel err %.3g: no bf16 rounding visible (fp32?)", t->b->name,
              op, label, rel);
    ok ? t->passed++ : t->failed++;
    if (n) { /* controls */
        const size_t k = n / 2;
        const double keep = ref[k];
        const double bound = (ldexp(1, -7) + ldexp(1, -16) + k_terms * ldexp(1, -24)) * abs_sum[k] +
                             ldexp(1, -22) * (fabs(ref[k]) + (start ? fabs(start[k]) : 0));
        ref[k] += 10 * bound + 1e-6;
        const double bad = bf16_ratio(got, ref, abs_sum, start, n, k_terms);
        ref[k] = keep;
        CHECK_MSG(bad > 1, "%s %s %s: negative control passed (%.3g)", t->b->name, op, label, bad);
        if (wrong)
            CHECK_MSG(bf16_ratio(got, wrong, abs_sum, start, n, k_terms) > 1,
                      "%s %s %s: matches the mirrored kernel", t->b->name, op, label);
    }
}

static const conv2d_case CONV2D_BF16_CASES[] = {
    {2, 32, 32, 12, 16, 3, 1, 1, NN_CONV2D_AUTO}, /* BCAE-2D's blocks */
    {1, 16, 48, 7, 10, 3, 1, 1, NN_CONV2D_AUTO},  /* 3 output blocks, odd height */
    {1, 16, 32, 9, 67, 3, 1, 1, NN_CONV2D_AUTO},  /* odd width, 34 tiles a row: 3 groups of 16 */
    {1, 16, 16, 3, 131, 3, 1, 1, NN_CONV2D_AUTO}, /* 66 tiles a row: 2 groups of 64 (weights) */
    {2, 16, 32, 12, 16, 8, 2, 3, NN_CONV2D_AUTO}, /* the fused first conv + pool, k8 s2 */
    {1, 32, 16, 6, 8, 1, 1, 0, NN_CONV2D_AUTO},   /* k1 output layer */
    {1, 1, 8, 5, 7, 3, 1, 1, NN_CONV2D_AUTO},     /* one channel in, batch 1, odd sizes */
    {1, 3, 5, 9, 7, 3, 2, 1, NN_CONV2D_AUTO},     /* odd everything, stride 2 */
};

static void case_conv2d_bf16(tctx *t, const conv2d_case *cc)
{
    char label[96], lab2[96];
    conv2d_label(label, sizeof label, cc, " bf16");
    const ref_conv rc = ref_conv2d(cc->n, cc->cin, cc->cout, cc->h, cc->w, cc->k, cc->s, cc->p);
    const int ho = rc.out[1], wo = rc.out[2];
    const size_t nx = ref_conv_in_count(&rc), ny = ref_conv_out_count(&rc);
    const size_t nw = ref_conv_weight_count(&rc), nb = (size_t)cc->cout;
    const size_t nmax = nx > ny ? (nx > nw ? nx : nw) : (ny > nw ? ny : nw);
    float *x = host_alloc(nx), *wt = host_alloc(nw), *b = host_alloc(nb), *dy = host_alloc(ny);
    float *dw0 = host_alloc(nw), *db0 = host_alloc(nb), *zero = host_alloc(nmax);
    float *ax = host_alloc(nx), *aw = host_alloc(nw), *ady = host_alloc(ny);
    float *got = host_alloc(nmax), *gb = host_alloc(nb);
    double *ref = dhost_alloc(nmax), *asum = dhost_alloc(nmax), *wrong = dhost_alloc(nmax);
    double *rb = dhost_alloc(nb), *asb = dhost_alloc(nb);
    fill_uniform(t, x, nx, -1, 1);
    fill_weights(t, wt, nw, cc->cin * cc->k * cc->k);
    fill_uniform(t, b, nb, -0.5, 0.5);
    fill_uniform(t, dy, ny, -1, 1);
    fill_uniform(t, dw0, nw, -1, 1);
    fill_uniform(t, db0, nb, -1, 1);
    abs_copy(x, ax, nx), abs_copy(wt, aw, nw), abs_copy(dy, ady, ny);
    nn_conv *conv = NULL;
    nn_tensor tx = {0}, ty = {0}, tdy = {0}, tdx = {0};
    float *dwt = NULL, *dbias = NULL, *dgw = NULL, *dgb = NULL;
    nn_conv2d_desc d = {cc->n, cc->cin, cc->cout, cc->h, cc->w, cc->k, cc->s, cc->p, cc->algo,
                        BCAE_PRECISION_BF16};
    if (!nn_has_conv2d_bf16(t->e)) {
        /* The contract: conv2d_create then refuses the precision. */
        bcae_status s = t->e->ops->conv2d_create(t->e, &d, 1, &conv, &t->err);
        CHECK_MSG(s == BCAE_ERR_UNSUPPORTED, "%s: bf16 conv planned without the slot",
                  t->b->name);
        report_absent(t, "conv2d_bf16", label);
        goto done;
    }
    RUN(t, "conv2d_create", label, t->e->ops->conv2d_create(t->e, &d, 1, &conv, &t->err));
    RUN(t, "conv_set_weights", label, putb(t, &dwt, wt, nw));
    RUN(t, "conv_set_weights", label, putb(t, &dbias, b, nb));
    RUN_E(t, "conv_set_weights", label, t->e->ops->conv_set_weights(conv, dwt, dbias));
    RUN(t, "conv_forward", label, put4(t, &tx, cc->n, cc->cin, cc->h, cc->w, x));
    RUN(t, "conv_forward", label, put4(t, &ty, cc->n, cc->cout, ho, wo, NULL));
    const int kf = cc->cin * cc->k * cc->k;
    ref_conv_forward(&rc, ax, aw, zero, 0, 0, asum);
    for (int leaky = 0; leaky < 2; leaky++) {
        conv2d_label(lab2, sizeof lab2, cc, leaky ? " bf16 lrelu" : " bf16");
        RUN_E(t, "conv_forward", lab2,
              t->e->ops->conv_forward(conv, &tx, &ty, leaky ? NN_POST_LEAKY_RELU : NN_POST_NONE));
        RUN(t, "conv_forward", lab2, get4(t, &ty, got));
        ref_conv_forward(&rc, x, wt, b, leaky, 0, ref);
        if (cc->k > 1) ref_conv_forward(&rc, x, wt, b, leaky, 1, wrong);
        check_bf16(t, "conv_forward", lab2, got, ref, asum, NULL, ny, kf,
                   cc->k > 1 ? wrong : NULL);
    }
    RUN(t, "conv_backward_data", label, put4(t, &tdy, cc->n, cc->cout, ho, wo, dy));
    RUN(t, "conv_backward_data", label, put4(t, &tdx, cc->n, cc->cin, cc->h, cc->w, NULL));
    RUN_E(t, "conv_backward_data", label, t->e->ops->conv_backward_data(conv, &tdy, &tdx));
    RUN(t, "conv_backward_data", label, get4(t, &tdx, got));
    ref_conv_backward_data(&rc, dy, wt, ref);
    ref_conv_backward_data(&rc, ady, aw, asum);
    check_bf16(t, "conv_backward_data", label, got, ref, asum, NULL, nx,
               cc->cout * cc->k * cc->k, NULL);
    RUN(t, "conv_backward_weights", label, putb(t, &dgw, dw0, nw));
    RUN(t, "conv_backward_weights", label, putb(t, &dgb, db0, nb));
    RUN_E(t, "conv_backward_weights", label,
          t->e->ops->conv_backward_weights(conv, &tx, &tdy, dgw, dgb));
    RUN(t, "conv_backward_weights", label, getb(t, dgw, got, nw));
    RUN(t, "conv_backward_weights", label, getb(t, dgb, gb, nb));
    ref_conv_backward_weights(&rc, x, dy, dw0, db0, ref, rb);
    ref_conv_backward_weights(&rc, ax, ady, zero, zero, asum, asb);
    check_bf16(t, "conv_backward_weights", label, got, ref, asum, dw0, nw, cc->n * ho * wo, NULL);
    check_bf16(t, "conv_backward_bias", label, gb, rb, asb, db0, nb, cc->n * ho * wo, NULL);
    {
        float *key = host_alloc(nx), *add = host_alloc(nx);
        double *dx_ref = dhost_alloc(nx), *dx_abs = dhost_alloc(nx);
        fill_uniform(t, key, nx, -1, 1);
        fill_uniform(t, add, nx, -1, 1);
        ref_conv_backward_data(&rc, dy, wt, dx_ref);
        ref_conv_backward_data(&rc, ady, aw, dx_abs);
        const tail_case tc = {t->e, conv, &tx, &tdy, &tdx, dgw, dgb, nx, key, add, dx_ref, dx_abs};
        check_tails(t, &tc, cc, 1);
        free(key), free(add), free(dx_ref), free(dx_abs);
    }
    /* Both passes in one call (dy rounded once): the same bounds. */
    if (!nn_has_conv_backward(t->e)) {
        report_absent(t, "conv_backward", label);
        goto done;
    }
    RUN(t, "conv_backward", label, nn_upload(t->e, dgw, dw0, nw));
    RUN(t, "conv_backward", label, nn_upload(t->e, dgb, db0, nb));
    RUN(t, "conv_backward", label, t->e->ops->fill(t->e, &tdx, NAN));
    RUN_E(t, "conv_backward", label, t->e->ops->conv_backward(conv, &tx, &tdy, &tdx, dgw, dgb));
    RUN(t, "conv_backward", label, get4(t, &tdx, got));
    ref_conv_backward_data(&rc, dy, wt, ref);
    ref_conv_backward_data(&rc, ady, aw, asum);
    conv2d_label(lab2, sizeof lab2, cc, " bf16 dx");
    check_bf16(t, "conv_backward", lab2, got, ref, asum, NULL, nx, cc->cout * cc->k * cc->k, NULL);
    RUN(t, "conv_backward", label, getb(t, dgw, got, nw));
    ref_conv_backward_weights(&rc, x, dy, dw0, db0, ref, rb);
    ref_conv_backward_weights(&rc, ax, ady, zero, zero, asum, asb);
    conv2d_label(lab2, sizeof lab2, cc, " bf16 dw");
    check_bf16(t, "conv_backward", lab2, got, ref, asum, dw0, nw, cc->n * ho * wo, NULL);
done:
    if (conv) t->e->ops->conv_destroy(conv);
    nn_tensor_free(t->e, &tx), nn_tensor_free(t->e, &ty);
    nn_tensor_free(t->e, &tdy), nn_tensor_free(t->e, &tdx);
    nn_free(t->e, dwt), nn_free(t->e, dbias), nn_free(t->e, dgw), nn_free(t->e, dgb);
    free(x), free(wt), free(b), free(dy), free(dw0), free(db0), free(zero), free(ax), free(aw);
    free(ady), free(got), free(gb), free(ref), free(asum), free(wrong), free(rb), free(asb);
}

/* INT8 is no training precision: every backend refuses to plan it. */
static void case_conv2d_int8_refused(tctx *t)
{
    const char *label = "n1 4->4 k3 s1 p1 6x6 int8";
    const nn_conv2d_desc d = {1, 4, 4, 6, 6, 3, 1, 1, NN_CONV2D_AUTO, BCAE_PRECISION_INT8};
    nn_conv *c = NULL;
    bcae_status s = t->e->ops->conv2d_create(t->e, &d, 1, &c, &t->err);
    const int ok = s != BCAE_OK && c == NULL && t->err.message[0];
    line(t, "conv2d_create", label, "refused: %s  %s", ok ? t->err.message : "no",
         ok ? "ok" : "FAIL");
    CHECK_MSG(ok, "%s: int8 conv2d planned", t->b->name);
    ok ? t->passed++ : t->failed++;
    if (c) t->e->ops->conv_destroy(c);
}

/* ---- pooling, upsampling, element-wise ------------------------------------------- */

typedef struct shape4 {
    int n, c, h, w;
} shape4;

/* For pooling: the small side. */
static const shape4 POOL_CASES[] = {{1, 1, 1, 1}, {2, 3, 3, 5}, {1, 16, 4, 6}, {2, 32, 3, 4},
                                    {1, 8, 5, 3}};

static void case_pool(tctx *t, const shape4 *s)
{
    char label[64];
    snprintf(label, sizeof label, "%dx%dx%dx%d <-> %dx%d", s->n, s->c, 2 * s->h, 2 * s->w, s->h,
             s->w);
    const size_t ns = count4(s->n, s->c, s->h, s->w), nb = 4 * ns;
    float *big = host_alloc(nb), *small = host_alloc(ns), *got = host_alloc(nb);
    double *db = dhost_alloc(nb), *ds = dhost_alloc(ns), *ref = dhost_alloc(nb);
    nn_tensor tb = {0}, ts = {0};
    fill_uniform(t, big, nb, -2, 2);
    fill_uniform(t, small, ns, -2, 2);
    for (size_t i = 0; i < nb; i++) db[i] = big[i];
    for (size_t i = 0; i < ns; i++) ds[i] = small[i];
    const int planes = s->n * s->c;
    RUN(t, "avgpool2_forward", label, put4(t, &tb, s->n, s->c, 2 * s->h, 2 * s->w, big));
    RUN(t, "avgpool2_forward", label, put4(t, &ts, s->n, s->c, s->h, s->w, NULL));
    RUN_E(t, "avgpool2_forward", label, t->e->ops->avgpool2_forward(t->e, &tb, &ts));
    RUN(t, "avgpool2_forward", label, get4(t, &ts, got));
    /* Sums of four values may cancel: errors on the inputs' scale. */
    double in_mag = 0;
    for (size_t i = 0; i < nb; i++) in_mag = fmax(in_mag, fabs(db[i]));
    ref_avgpool2(planes, s->h, s->w, db, ref);
    check_out_floor(t, "avgpool2_forward", label, got, ref, ns, 1e-6, in_mag);
    /* Upsampling's backward sums each 2x2 block: 4x the average. */
    RUN_E(t, "upsample2_backward", label, t->e->ops->upsample2_backward(t->e, &tb, &ts));
    RUN(t, "upsample2_backward", label, get4(t, &ts, got));
    for (size_t i = 0; i < ns; i++) ref[i] *= 4;
    check_out_floor(t, "upsample2_backward", label, got, ref, ns, 1e-6, 4 * in_mag);
    RUN_E(t, "upsample2_forward", label, t->e->ops->from_nchw(t->e, small, &ts));
    RUN_E(t, "upsample2_forward", label, t->e->ops->upsample2_forward(t->e, &ts, &tb));
    RUN(t, "upsample2_forward", label, get4(t, &tb, got));
    ref_upsample2(planes, s->h, s->w, ds, ref);
    check_out(t, "upsample2_forward", label, got, ref, nb, 1e-6);
    /* Pooling's backward spreads a quarter of each gradient. */
    RUN_E(t, "avgpool2_backward", label, t->e->ops->avgpool2_backward(t->e, &ts, &tb));
    RUN(t, "avgpool2_backward", label, get4(t, &tb, got));
    for (size_t i = 0; i < nb; i++) ref[i] /= 4;
    check_out(t, "avgpool2_backward", label, got, ref, nb, 1e-6);
done:
    nn_tensor_free(t->e, &tb), nn_tensor_free(t->e, &ts);
    free(big), free(small), free(got), free(db), free(ds), free(ref);
}

static const shape4 ELEM_CASES[] = {{1, 1, 1, 1}, {2, 3, 5, 7}, {2, 16, 4, 6}, {1, 32, 3, 5},
                                    {1, 24, 2, 3}};

/* LeakyReLU's backward, the ReZero tail both ways, add; in place where the
 * contract allows it (inplace = 1). */
static void case_elementwise(tctx *t, const shape4 *s, int inplace)
{
    char label[64];
    snprintf(label, sizeof label, "%dx%dx%dx%d%s", s->n, s->c, s->h, s->w,
             inplace ? " in place" : "");
    const size_t cnt = count4(s->n, s->c, s->h, s->w);
    float *y = host_alloc(cnt), *g = host_alloc(cnt), *h = host_alloc(cnt), *x = host_alloc(cnt);
    float *got = host_alloc(cnt);
    double *ref = dhost_alloc(cnt), *ref2 = dhost_alloc(cnt);
    nn_tensor ty = {0}, tg = {0}, th = {0}, tx = {0}, to = {0};
    fill_uniform(t, y, cnt, -1, 1);
    y[cnt / 2] = 0.0f; /* the derivative at 0 is the slope */
    fill_uniform(t, g, cnt, -2, 2);
    fill_uniform(t, h, cnt, -2, 2);
    fill_uniform(t, x, cnt, -2, 2);
    const float alpha = 0.625f;
    RUN(t, "leaky_relu_backward", label, put4(t, &ty, s->n, s->c, s->h, s->w, y));
    RUN(t, "leaky_relu_backward", label, put4(t, &tg, s->n, s->c, s->h, s->w, g));
    RUN(t, "leaky_relu_backward", label, put4(t, &th, s->n, s->c, s->h, s->w, h));
    RUN(t, "leaky_relu_backward", label, put4(t, &tx, s->n, s->c, s->h, s->w, x));
    RUN(t, "leaky_relu_backward", label, put4(t, &to, s->n, s->c, s->h, s->w, NULL));

    /* dx = dy * lrelu'(y); dx may alias dy. */
    nn_tensor *dx = inplace ? &tg : &to;
    RUN_E(t, "leaky_relu_backward", label, t->e->ops->leaky_relu_backward(t->e, &ty, &tg, dx));
    RUN(t, "leaky_relu_backward", label, get4(t, dx, got));
    for (size_t i = 0; i < cnt; i++) ref[i] = (double)g[i] * (y[i] > 0 ? 1.0 : NN_LEAKY_SLOPE);
    check_out(t, "leaky_relu_backward", label, got, ref, cnt, 1e-6);
    RUN_E(t, "leaky_relu_backward", label, t->e->ops->from_nchw(t->e, g, &tg));

    /* y = lrelu(alpha h + x); y may alias h. */
    nn_tensor *yo = inplace ? &th : &to;
    RUN_E(t, "rezero_forward", label, t->e->ops->rezero_forward(t->e, alpha, &th, &tx, yo));
    RUN(t, "rezero_forward", label, get4(t, yo, got));
    for (size_t i = 0; i < cnt; i++) ref[i] = ref_lrelu((double)alpha * h[i] + x[i]);
    check_out_floor(t, "rezero_forward", label, got, ref, cnt, 1e-6, sum_scale(h, alpha, x, cnt));
    RUN_E(t, "rezero_forward", label, t->e->ops->from_nchw(t->e, h, &th));

    /* dz = dy lrelu'(y): dh = alpha dz, dx = dz, dalpha = sum(dz h); dh may
     * alias dy. */
    nn_tensor *dh = inplace ? &tg : &to;
    double dalpha = NAN;
    RUN_E(t, "rezero_backward", label,
          t->e->ops->rezero_backward(t->e, alpha, &th, &ty, &tg, dh, &tx, &dalpha));
    double ra = 0, mag = 0;
    for (size_t i = 0; i < cnt; i++) {
        const double dz = (double)g[i] * (y[i] > 0 ? 1.0 : NN_LEAKY_SLOPE);
        ref[i] = alpha * dz;
        ref2[i] = dz;
        ra += dz * h[i];
        mag += fabs(dz * h[i]);
    }
    RUN(t, "rezero_backward", label, get4(t, dh, got));
    check_out(t, "rezero_backward dh", label, got, ref, cnt, 1e-6);
    RUN(t, "rezero_backward", label, get4(t, &tx, got));
    check_out(t, "rezero_backward dx", label, got, ref2, cnt, 1e-6);
    {
        /* The sum, relative to the sum of its terms' magnitudes (it may
         * cancel). */
        const double err = fabs(dalpha - ra) / (mag > 0 ? mag : 1);
        line(t, "rezero_backward dalpha", label, "max err %.2e  tol %.0e  %s", err, 1e-6,
             err <= 1e-6 ? "ok" : "FAIL");
        CHECK_MSG(err <= 1e-6, "%s rezero dalpha %s: %.3g", t->b->name, label, err);
        err <= 1e-6 ? t->passed++ : t->failed++;
        CHECK(fabs(dalpha - (ra + 20e-6 * mag)) / (mag > 0 ? mag : 1) > 1e-6); /* control */
    }

    /* acc += x */
    RUN_E(t, "add", label, t->e->ops->from_nchw(t->e, h, &th));
    RUN_E(t, "add", label, t->e->ops->from_nchw(t->e, x, &tx));
    RUN_E(t, "add", label, t->e->ops->add(t->e, &th, &tx));
    RUN(t, "add", label, get4(t, &th, got));
    for (size_t i = 0; i < cnt; i++) ref[i] = (double)h[i] + x[i];
    check_out_floor(t, "add", label, got, ref, cnt, 1e-6, sum_scale(h, 1, x, cnt));
done:
    nn_tensor_free(t->e, &ty), nn_tensor_free(t->e, &tg), nn_tensor_free(t->e, &th);
    nn_tensor_free(t->e, &tx), nn_tensor_free(t->e, &to);
    free(y), free(g), free(h), free(x), free(got), free(ref), free(ref2);
}

/* ---- the heads and the loss ---------------------------------------------------------- */

enum { BCAE_SHIFT_X = 6, BCAE_SCALE_X = 3 }; /* SPEC section 2's T = 6 + 3 exp(r) */

static const shape4 HEAD_CASES[] = {{1, 16, 4, 6}, {2, 16, 3, 5}, {1, 1, 2, 3}, {2, 3, 4, 4}};

/* variant 0: all outputs apart; 1: seg and reg over their inputs, no recon;
 * 2: recon only. */
static void case_heads(tctx *t, const shape4 *s, int variant)
{
    static const char *names[] = {"", " in place", " recon only"};
    char label[64];
    snprintf(label, sizeof label, "%dx%dx%dx%d%s", s->n, s->c, s->h, s->w, names[variant]);
    const size_t cnt = count4(s->n, s->c, s->h, s->w);
    float *lg = host_alloc(cnt), *rw = host_alloc(cnt), *got = host_alloc(cnt);
    double *seg = dhost_alloc(cnt), *reg = dhost_alloc(cnt), *rec = dhost_alloc(cnt);
    nn_tensor tl = {0}, tr = {0}, ts = {0}, tg = {0}, tv = {0};
    fill_uniform(t, lg, cnt, -6, 6);
    fill_uniform(t, rw, cnt, -2, 1);
    const float sh = BCAE_SHIFT_X, sc = BCAE_SCALE_X, th = 0.5f;
    RUN(t, "bcae_heads", label, put4(t, &tl, s->n, s->c, s->h, s->w, lg));
    RUN(t, "bcae_heads", label, put4(t, &tr, s->n, s->c, s->h, s->w, rw));
    RUN(t, "bcae_heads", label, put4(t, &ts, s->n, s->c, s->h, s->w, NULL));
    RUN(t, "bcae_heads", label, put4(t, &tg, s->n, s->c, s->h, s->w, NULL));
    RUN(t, "bcae_heads", label, put4(t, &tv, s->n, s->c, s->h, s->w, NULL));
    ref_heads(cnt, lg, rw, sh, sc, th, seg, reg, rec);
    nn_tensor *os = variant == 0 ? &ts : variant == 1 ? &tl : NULL;
    nn_tensor *og = variant == 0 ? &tg : variant == 1 ? &tr : NULL;
    nn_tensor *ov = variant == 1 ? NULL : &tv;
    RUN_E(t, "bcae_heads", label, t->e->ops->bcae_heads(t->e, &tl, &tr, sh, sc, th, os, og, ov));
    if (os) {
        RUN(t, "bcae_heads", label, get4(t, os, got));
        check_out(t, "bcae_heads seg", label, got, seg, cnt, 1e-6);
    }
    if (og) {
        RUN(t, "bcae_heads", label, get4(t, og, got));
        check_out(t, "bcae_heads reg", label, got, reg, cnt, 1e-6);
    }
    if (ov) {
        RUN(t, "bcae_heads", label, get4(t, ov, got));
        check_out(t, "bcae_heads recon", label, got, rec, cnt, 1e-6);
    }
done:
    nn_tensor_free(t->e, &tl), nn_tensor_free(t->e, &tr), nn_tensor_free(t->e, &ts);
    nn_tensor_free(t->e, &tg), nn_tensor_free(t->e, &tv);
    free(lg), free(rw), free(got), free(seg), free(reg), free(rec);
}

typedef struct loss_case {
    int n, c, h, w, z_valid;
} loss_case;

static const loss_case LOSS_CASES[] = {
    {1, 16, 3, 20, 17}, {2, 16, 2, 8, 8}, {1, 1, 2, 5, 3}, {2, 3, 3, 7, 6}, {1, 8, 2, 6, 0},
};

static void loss_as_array(const nn_loss_sums *s, double v[7])
{
    v[0] = s->focal, v[1] = s->l1, v[2] = s->sq, v[3] = s->voxels, v[4] = s->pos;
    v[5] = s->truth, v[6] = s->true_pos;
}

/* Each sum relative to its own magnitude (the counts exactly). */
static double loss_err(const nn_loss_sums *got, const nn_loss_sums *ref)
{
    double g[7], r[7], worst = 0;
    loss_as_array(got, g);
    loss_as_array(ref, r);
    for (int i = 0; i < 7; i++) {
        double e = fabs(g[i] - r[i]) / (fabs(r[i]) > 0 ? fabs(r[i]) : 1);
        if (!(e <= worst)) worst = isnan(e) ? INFINITY : e;
    }
    return worst;
}

static void case_loss(tctx *t, const loss_case *lc)
{
    char label[64];
    snprintf(label, sizeof label, "%dx%dx%dx%d z<%d", lc->n, lc->c, lc->h, lc->w, lc->z_valid);
    const size_t cnt = count4(lc->n, lc->c, lc->h, lc->w);
    float *lg = host_alloc(cnt), *rw = host_alloc(cnt), *tg = host_alloc(cnt);
    float *got = host_alloc(cnt);
    double *dl = dhost_alloc(cnt), *dr = dhost_alloc(cnt);
    nn_tensor tl = {0}, tr = {0}, tt = {0}, tdl = {0}, tdr = {0};
    fill_uniform(t, lg, cnt, -5, 5);
    fill_uniform(t, rw, cnt, -1.5, 1);
    for (size_t i = 0; i < cnt; i++)
        tg[i] = bcae_rng_uniform(&t->rng) < 0.3 ? (float)uni(t, 1, 10) : 0.0f;
    /* The padding (z >= z_valid) holds values that would poison any sum or
     * gradient that read them. */
    for (size_t i = 0; i < cnt; i++)
        if ((int)(i % (size_t)lc->w) >= lc->z_valid) lg[i] = rw[i] = tg[i] = NAN;
    const float sh = BCAE_SHIFT_X, sc = BCAE_SCALE_X, th = 0.5f, gamma = 2.0f, eps = 1e-8f;
    const float coef = 37.5f;
    RUN(t, "bcae_loss_sums", label, put4(t, &tl, lc->n, lc->c, lc->h, lc->w, lg));
    RUN(t, "bcae_loss_sums", label, put4(t, &tr, lc->n, lc->c, lc->h, lc->w, rw));
    RUN(t, "bcae_loss_sums", label, put4(t, &tt, lc->n, lc->c, lc->h, lc->w, tg));
    nn_loss_sums got_s, ref_s, wrong_s;
    memset(&got_s, 0xff, sizeof got_s); /* NaN until written */
    RUN_E(t, "bcae_loss_sums", label,
          t->e->ops->bcae_loss_sums(t->e, &tl, &tr, &tt, lc->z_valid, sh, sc, th, gamma, eps,
                                    &got_s));
    ref_loss_sums(lc->n, lc->c, lc->h, lc->w, lg, rw, tg, lc->z_valid, sh, sc, th, gamma, eps,
                  &ref_s);
    const double err = loss_err(&got_s, &ref_s);
    line(t, "bcae_loss_sums", label, "max err %.2e  tol %.0e  %s", err, 1e-9,
         err <= 1e-9 ? "ok" : "FAIL");
    CHECK_MSG(err <= 1e-9, "%s loss sums %s: %.3g", t->b->name, label, err);
    err <= 1e-9 ? t->passed++ : t->failed++;
    if (ref_s.voxels > 0) {
        ref_loss_sums(lc->n, lc->c, lc->h, lc->w, lg, rw, tg, lc->z_valid, sh, sc, th, 1.0f, eps,
                      &wrong_s);
        CHECK_MSG(loss_err(&got_s, &wrong_s) > 1e-9, "%s loss sums %s: gamma 1 matches too",
                  t->b->name, label);
    }

    RUN(t, "bcae_loss_backward", label, put4(t, &tdl, lc->n, lc->c, lc->h, lc->w, NULL));
    RUN(t, "bcae_loss_backward", label, put4(t, &tdr, lc->n, lc->c, lc->h, lc->w, NULL));
    RUN_E(t, "bcae_loss_backward", label,
          t->e->ops->bcae_loss_backward(t->e, &tl, &tr, &tt, lc->z_valid, sh, sc, th, gamma, eps,
                                        coef, &tdl, &tdr));
    ref_loss_backward(lc->n, lc->c, lc->h, lc->w, lg, rw, tg, lc->z_valid, sh, sc, th, gamma, eps,
                      coef, dl, dr);
    RUN(t, "bcae_loss_backward", label, get4(t, &tdl, got));
    check_out(t, "bcae_loss_backward dlogit", label, got, dl, cnt, 1e-6);
    if (ref_s.voxels > 0) {
        double *wrong = dhost_alloc(cnt), *wr2 = dhost_alloc(cnt);
        ref_loss_backward(lc->n, lc->c, lc->h, lc->w, lg, rw, tg, lc->z_valid, sh, sc, th, gamma,
                          eps, 2 * coef, wrong, wr2);
        check_differs(t, "bcae_loss_backward", label, "twice the coefficient", got, wrong, cnt,
                      1e-6);
        free(wrong), free(wr2);
    }
    RUN(t, "bcae_loss_backward", label, get4(t, &tdr, got));
    check_out(t, "bcae_loss_backward draw", label, got, dr, cnt, 1e-6);
done:
    nn_tensor_free(t->e, &tl), nn_tensor_free(t->e, &tr), nn_tensor_free(t->e, &tt);
    nn_tensor_free(t->e, &tdl), nn_tensor_free(t->e, &tdr);
    free(lg), free(rw), free(tg), free(got), free(dl), free(dr);
}

/* ---- 3D convolutions and InstanceNorm -------------------------------------------------- */

static const nn_conv3d_desc CONV3D_CASES[] = {
    /* the encoders' strided conv, one channel in */
    {1, 1, 4, 3, 8, 10, {3, 4, 4}, {1, 2, 2}, {1, 1, 1}, 0, NN_CONV3D_AUTO},
    {2, 4, 8, 2, 6, 8, {3, 4, 4}, {1, 2, 2}, {1, 1, 1}, 0, NN_CONV3D_AUTO},
    /* the decoders' transposed conv: shuffle form and direct */
    {1, 8, 4, 3, 4, 5, {3, 4, 4}, {1, 2, 2}, {1, 1, 1}, 1, NN_CONV3D_AUTO},
    {1, 8, 4, 3, 4, 5, {3, 4, 4}, {1, 2, 2}, {1, 1, 1}, 1, NN_CONV3D_DIRECT},
    /* k3 s1 p1: the CPU's own kernels up to 16 channels, oneDNN above */
    {2, 3, 5, 4, 5, 7, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, 0, NN_CONV3D_AUTO},
    {1, 16, 16, 2, 3, 17, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, 0, NN_CONV3D_AUTO},
    {1, 20, 18, 2, 3, 5, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, 0, NN_CONV3D_AUTO},
    /* k1; stride 2 with uneven padding; a general transposed conv */
    {1, 2, 3, 3, 4, 4, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 0, NN_CONV3D_AUTO},
    {1, 3, 2, 5, 6, 7, {3, 3, 3}, {2, 2, 2}, {1, 0, 1}, 0, NN_CONV3D_AUTO},
    {2, 2, 3, 2, 3, 3, {2, 3, 3}, {1, 2, 2}, {0, 1, 1}, 1, NN_CONV3D_AUTO},
};

static void conv3d_label(char *buf, size_t size, const nn_conv3d_desc *d, const char *extra)
{
    snprintf(buf, size, "n%d %d->%d k%d%d%d s%d%d%d p%d%d%d %dx%dx%d%s%s%s", d->n, d->cin,
             d->cout, d->k[0], d->k[1], d->k[2], d->stride[0], d->stride[1], d->stride[2],
             d->pad[0], d->pad[1], d->pad[2], d->d, d->h, d->w, d->transposed ? " T" : "",
             d->algo == NN_CONV3D_DIRECT ? " direct" : "", extra);
}

static void case_conv3d(tctx *t, const nn_conv3d_desc *d)
{
    char label[96], lab2[96];
    conv3d_label(label, sizeof label, d, "");
    const ref_conv rc = ref_conv3d(d);
    const size_t nx = ref_conv_in_count(&rc), ny = ref_conv_out_count(&rc);
    const size_t nw = ref_conv_weight_count(&rc), most = nx > ny ? (nx > nw ? nx : nw)
                                                                 : (ny > nw ? ny : nw);
    float *x = host_alloc(nx), *wt = host_alloc(nw), *b = host_alloc((size_t)d->cout);
    float *dy = host_alloc(ny), *dw0 = host_alloc(nw), *db0 = host_alloc((size_t)d->cout);
    float *got = host_alloc(most), *gb = host_alloc((size_t)d->cout);
    double *ref = dhost_alloc(most), *rb = dhost_alloc((size_t)d->cout);
    const int fan_in = d->cin * d->k[0] * d->k[1] * d->k[2] /
                       (d->transposed ? d->stride[0] * d->stride[1] * d->stride[2] : 1);
    fill_uniform(t, x, nx, -1, 1);
    fill_weights(t, wt, nw, fan_in);
    fill_uniform(t, b, (size_t)d->cout, -0.5, 0.5);
    fill_uniform(t, dy, ny, -1, 1);
    fill_uniform(t, dw0, nw, -1, 1);
    fill_uniform(t, db0, (size_t)d->cout, -1, 1);
    nn_conv3d *conv = NULL;
    nn_tensor5 tx = {0}, ty = {0}, tdy = {0}, tdx = {0};
    float *dwt = NULL, *dbias = NULL, *dgw = NULL, *dgb = NULL;
    RUN(t, "conv3d_create", label, t->e->ops->conv3d_create(t->e, d, 1, &conv, &t->err));
    RUN(t, "conv3d_set_weights", label, putb(t, &dwt, wt, nw));
    RUN(t, "conv3d_set_weights", label, putb(t, &dbias, b, (size_t)d->cout));
    RUN_E(t, "conv3d_set_weights", label, t->e->ops->conv3d_set_weights(conv, dwt, dbias));
    RUN(t, "conv3d_forward", label, put5(t, &tx, d->n, d->cin, d->d, d->h, d->w, x));
    RUN(t, "conv3d_forward", label,
        put5(t, &ty, d->n, d->cout, rc.out[0], rc.out[1], rc.out[2], NULL));
    for (int leaky = 0; leaky < 2; leaky++) {
        conv3d_label(lab2, sizeof lab2, d, leaky ? " lrelu" : "");
        RUN_E(t, "conv3d_forward", lab2,
              t->e->ops->conv3d_forward(conv, &tx, &ty, leaky ? NN_POST_LEAKY_RELU : NN_POST_NONE));
        RUN(t, "conv3d_forward", lab2, get5(t, &ty, got));
        ref_conv_forward(&rc, x, wt, b, leaky, 0, ref);
        check_out(t, "conv3d_forward", lab2, got, ref, ny, 1e-4);
        if (d->k[0] * d->k[1] * d->k[2] > 1) {
            ref_conv_forward(&rc, x, wt, b, leaky, 1, ref);
            check_differs(t, "conv3d_forward", lab2, "mirrored kernel", got, ref, ny, 1e-4);
        }
    }
    RUN(t, "conv3d_backward_data", label,
        put5(t, &tdy, d->n, d->cout, rc.out[0], rc.out[1], rc.out[2], dy));
    RUN(t, "conv3d_backward_data", label, put5(t, &tdx, d->n, d->cin, d->d, d->h, d->w, NULL));
    RUN_E(t, "conv3d_backward_data", label, t->e->ops->conv3d_backward_data(conv, &tdy, &tdx));
    RUN(t, "conv3d_backward_data", label, get5(t, &tdx, got));
    ref_conv_backward_data(&rc, dy, wt, ref);
    check_out(t, "conv3d_backward_data", label, got, ref, nx, 1e-4);
    RUN(t, "conv3d_backward_weights", label, putb(t, &dgw, dw0, nw));
    RUN(t, "conv3d_backward_weights", label, putb(t, &dgb, db0, (size_t)d->cout));
    RUN_E(t, "conv3d_backward_weights", label,
          t->e->ops->conv3d_backward_weights(conv, &tx, &tdy, dgw, dgb));
    RUN(t, "conv3d_backward_weights", label, getb(t, dgw, got, nw));
    RUN(t, "conv3d_backward_weights", label, getb(t, dgb, gb, (size_t)d->cout));
    ref_conv_backward_weights(&rc, x, dy, dw0, db0, ref, rb);
    check_out(t, "conv3d_backward_weights", label, got, ref, nw, 1e-4);
    check_out(t, "conv3d_backward_bias", label, gb, rb, (size_t)d->cout, 1e-4);
    {
        /* The algorithm query answers one of the two (NULL: DIRECT). */
        nn_conv3d_algo a = nn_conv3d_algo_of(t->e, conv);
        CHECK(a == NN_CONV3D_DIRECT || a == NN_CONV3D_SHUFFLE);
    }
done:
    if (conv) t->e->ops->conv3d_destroy(conv);
    nn_tensor5_free(t->e, &tx), nn_tensor5_free(t->e, &ty);
    nn_tensor5_free(t->e, &tdy), nn_tensor5_free(t->e, &tdx);
    nn_free(t->e, dwt), nn_free(t->e, dbias), nn_free(t->e, dgw), nn_free(t->e, dgb);
    free(x), free(wt), free(b), free(dy), free(dw0), free(db0), free(got), free(gb);
    free(ref), free(rb);
}

typedef struct shape5 {
    int n, c, d, h, w;
} shape5;

static const shape5 NORM_CASES[] = {
    {1, 1, 2, 3, 4}, {2, 3, 2, 2, 5}, {1, 16, 2, 3, 3}, {2, 8, 1, 1, 7}, {1, 2, 1, 1, 1},
};

static void case_norm(tctx *t, const shape5 *s, int inplace)
{
    char label[64];
    snprintf(label, sizeof label, "%dx%dx%dx%dx%d%s", s->n, s->c, s->d, s->h, s->w,
             inplace ? " in place" : "");
    const size_t planes = (size_t)s->n * s->c, S = (size_t)s->d * s->h * s->w, cnt = planes * S;
    float *x = host_alloc(cnt), *g = host_alloc(cnt), *got = host_alloc(cnt);
    float *st = host_alloc(2 * planes);
    double *ref = dhost_alloc(cnt), *mean = dhost_alloc(planes), *rstd = dhost_alloc(planes);
    double *rs = dhost_alloc(2 * planes);
    nn_tensor5 tx = {0}, ty = {0}, tg = {0}, tdx = {0};
    float *stats = NULL;
    const float eps = NN_INSTANCE_NORM_EPS;
    for (size_t i = 0; i < cnt; i++) x[i] = (float)(uni(t, -1, 1) * 3 + (double)(i / S % 5));
    fill_uniform(t, g, cnt, -1, 1);
    RUN(t, "instance_norm_forward", label, put5(t, &tx, s->n, s->c, s->d, s->h, s->w, x));
    RUN(t, "instance_norm_forward", label, put5(t, &ty, s->n, s->c, s->d, s->h, s->w, NULL));
    RUN(t, "instance_norm_forward", label, nn_alloc(t->e, 2 * planes, &stats, &t->err));
    nn_tensor5 *y = inplace ? &tx : &ty;
    RUN_E(t, "instance_norm_forward", label,
          t->e->ops->instance_norm_forward(t->e, &tx, y, eps, stats));
    RUN(t, "instance_norm_forward", label, get5(t, y, got));
    ref_instance_norm(planes, S, x, eps, ref, mean, rstd);
    check_out(t, "instance_norm_forward", label, got, ref, cnt, 1e-5);
    RUN(t, "instance_norm_forward", label, getb(t, stats, st, 2 * planes));
    {
        /* stats: (mean, rstd) per plane; each compared on its own scale. */
        float *sm = host_alloc(planes), *sr = host_alloc(planes);
        for (size_t p = 0; p < planes; p++) sm[p] = st[2 * p], sr[p] = st[2 * p + 1];
        for (size_t p = 0; p < planes; p++) rs[p] = mean[p];
        check_out(t, "instance_norm_forward mean", label, sm, rs, planes, 1e-5);
        for (size_t p = 0; p < planes; p++) rs[p] = rstd[p];
        check_out(t, "instance_norm_forward rstd", label, sr, rs, planes, 1e-5);
        free(sm), free(sr);
    }
    /* The backward from the forward's output; dx may alias dy. */
    RUN(t, "instance_norm_backward", label, put5(t, &tg, s->n, s->c, s->d, s->h, s->w, g));
    RUN(t, "instance_norm_backward", label,
        put5(t, &tdx, s->n, s->c, s->d, s->h, s->w, NULL));
    nn_tensor5 *dx = inplace ? &tg : &tdx;
    RUN_E(t, "instance_norm_backward", label,
          t->e->ops->instance_norm_backward(t->e, y, stats, &tg, dx));
    RUN(t, "instance_norm_backward", label, get5(t, dx, got));
    ref_instance_norm_backward(planes, S, x, g, eps, ref);
    check_out(t, "instance_norm_backward", label, got, ref, cnt, 1e-5);
done:
    nn_tensor5_free(t->e, &tx), nn_tensor5_free(t->e, &ty), nn_tensor5_free(t->e, &tg);
    nn_tensor5_free(t->e, &tdx);
    nn_free(t->e, stats);
    free(x), free(g), free(got), free(st), free(ref), free(mean), free(rstd), free(rs);
}

/* ---- chains ------------------------------------------------------------------------- */

/* Host weights of one conv (w: cout * cin * taps, b: cout), kept in a pool
 * freed at the end of the case. */
typedef struct wpool {
    float *p[64];
    int n;
} wpool;

static float *pool_weights(tctx *t, wpool *wp, size_t count, int fan_in, double bias)
{
    float *w = wp->n < 64 ? host_alloc(count) : NULL;
    if (!w) return NULL;
    wp->p[wp->n++] = w;
    if (fan_in > 0) fill_weights(t, w, count, fan_in);
    else fill_uniform(t, w, count, -bias, bias);
    return w;
}

static void pool_free(wpool *wp)
{
    for (int i = 0; i < wp->n; i++) free(wp->p[i]);
    wp->n = 0;
}

typedef struct chain_case {
    int n, c, h, w, cout0, k0;
    int nres; /* residual blocks after each of the two pools */
} chain_case;

static const chain_case CHAIN_CASES[] = {
    {2, 16, 16, 24, 32, 7, 1}, /* BCAE-2D's form: 16 -> 32, k7 (the AVX-512 sparse kernel) */
    {1, 8, 12, 20, 8, 3, 2},   /* 8 channels, batch 1, two blocks per stage */
    {1, 1, 8, 12, 3, 5, 1},    /* one channel in, three out */
    /* 32 channels at 20x28, 10x14 and 5x7: whole and partial Winograd
     * tiles of both sizes, two blocks per stage */
    {1, 16, 40, 56, 32, 7, 2},
};

static void case_chain(tctx *t, const chain_case *cc, bcae_precision prec, nn_first_layer first)
{
    static const char *firsts[] = {"sparse", "dense", "sparse portable"};
    char label[96];
    snprintf(label, sizeof label, "n%d %d->%d k%d %dx%d +%d res %s %s", cc->n, cc->c, cc->cout0,
             cc->k0, cc->h, cc->w, cc->nres, bcae_precision_name(prec), firsts[first]);
    const double tol = prec == BCAE_PRECISION_FP32   ? 1e-4
                       : prec == BCAE_PRECISION_BF16 ? 2e-2
                                                     : 3e-2;
    if (!nn_has_chain(t->e)) {
        report_absent(t, "chain_forward", label);
        return;
    }
    wpool wp = {{0}, 0};
    nn_layer layers[2 + 2 * 4];
    int nl = 0;
    const int C = cc->cout0;
    layers[nl++] = (nn_layer){NN_LAYER_CONV, cc->c, C, cc->k0, (cc->k0 - 1) / 2,
                              pool_weights(t, &wp, (size_t)C * cc->c * cc->k0 * cc->k0,
                                           cc->c * cc->k0 * cc->k0, 0),
                              pool_weights(t, &wp, (size_t)C, 0, 0.2), NULL, NULL, 0};
    for (int stage = 0; stage < 2; stage++) {
        layers[nl++] = (nn_layer){NN_LAYER_POOL2, C, C, 0, 0, NULL, NULL, NULL, NULL, 0};
        for (int r = 0; r < cc->nres; r++)
            layers[nl++] = (nn_layer){NN_LAYER_RESIDUAL, C, C, 3, 1,
                                      pool_weights(t, &wp, (size_t)C * C * 9, C * 9, 0),
                                      pool_weights(t, &wp, (size_t)C, 0, 0.2),
                                      pool_weights(t, &wp, (size_t)C * C * 9, C * 9, 0),
                                      pool_weights(t, &wp, (size_t)C, 0, 0.2),
                                      (float)uni(t, 0.5, 1.5)};
    }
    const size_t nx = count4(cc->n, cc->c, cc->h, cc->w);
    float *x = host_alloc(nx), *got = NULL;
    double *ref = NULL;
    int od[3];
    nn_chain *chain = NULL;
    nn_tensor tx = {0}, ty = {0};
    fill_sparse(t, x, nx, 0.15);
    const nn_chain_desc d = {cc->n, cc->c, cc->h, cc->w, layers, nl, prec, first};
    const size_t ny = ref_chain(&d, x, &ref, od);
    got = host_alloc(ny);
    if (!ny || !got) {
        CHECK_MSG(0, "chain reference: out of memory");
        goto done;
    }
    RUN(t, "chain_create", label, t->e->ops->chain_create(t->e, &d, &chain, &t->err));
    RUN(t, "chain_forward", label, put4(t, &tx, cc->n, cc->c, cc->h, cc->w, x));
    RUN(t, "chain_forward", label, put4(t, &ty, cc->n, od[0], od[1], od[2], NULL));
    if (prec == BCAE_PRECISION_INT8) {
        if (!nn_has_chain_int8(t->e)) {
            report_absent(t, "chain_calibrate", label);
            goto done;
        }
        RUN_E(t, "chain_calibrate", label, t->e->ops->chain_calibrate(chain, &tx));
        RUN(t, "chain_finish", label, t->e->ops->chain_finish(chain, &t->err));
    }
    RUN_E(t, "chain_forward", label, t->e->ops->chain_forward(chain, &tx, &ty));
    RUN(t, "chain_forward", label, get4(t, &ty, got));
    check_out(t, "chain_forward", label, got, ref, ny, tol);
done:
    if (chain) t->e->ops->chain_destroy(chain);
    nn_tensor_free(t->e, &tx), nn_tensor_free(t->e, &ty);
    free(x), free(got), free(ref);
    pool_free(&wp);
}

/* A 3D block's host weights (encoder: conv0 / conv0' (cout, cin, 3, 4, 4);
 * decoder: transposed (cin, cout, 3, 4, 4)). */
static nn_block3d make_block3d(tctx *t, wpool *wp, int cin, int cout, int transposed)
{
    const int fan0 = cin * 48 / (transposed ? 4 : 1); /* a transposed output sees 1/4 */
    nn_block3d b = {cin, cout, NULL, NULL, NULL, NULL, NULL, NULL, (float)uni(t, 0.5, 1.5)};
    b.w0 = pool_weights(t, wp, (size_t)cin * cout * 48, fan0, 0);
    b.b0 = pool_weights(t, wp, (size_t)cout, 0, 0.2);
    b.ws = pool_weights(t, wp, (size_t)cin * cout * 48, fan0, 0);
    b.bs = pool_weights(t, wp, (size_t)cout, 0, 0.2);
    b.w3 = pool_weights(t, wp, (size_t)cout * cout * 27, cout * 27, 0);
    b.b3 = pool_weights(t, wp, (size_t)cout, 0, 0.2);
    return b;
}

typedef struct chain3d_case {
    int n, d, h, w;
    int nblocks, ch[3]; /* block channels (the input has 1) */
    int out_cout;
} chain3d_case;

static const chain3d_case CHAIN3D_CASES[] = {
    {1, 3, 16, 20, 2, {4, 8, 0}, 8},
    {2, 2, 10, 14, 1, {2, 0, 0}, 3},
};

static void case_chain3d(tctx *t, const chain3d_case *cc, int mode)
{
    static const char *modes[] = {"sparse", "dense", "sparse portable"};
    char label[96];
    snprintf(label, sizeof label, "n%d %dx%dx%d %d blocks -> %d %s", cc->n, cc->d, cc->h, cc->w,
             cc->nblocks, cc->out_cout, modes[mode]);
    if (!nn_has_chain3d(t->e)) {
        report_absent(t, "chain3d_forward", label);
        return;
    }
    wpool wp = {{0}, 0};
    nn_block3d blocks[3];
    int cin = 1;
    for (int i = 0; i < cc->nblocks; i++) {
        blocks[i] = make_block3d(t, &wp, cin, cc->ch[i], 0);
        cin = cc->ch[i];
    }
    const float *wo = pool_weights(t, &wp, (size_t)cc->out_cout * cin * 27, cin * 27, 0);
    const float *bo = pool_weights(t, &wp, (size_t)cc->out_cout, 0, 0.2);
    const nn_chain3d_desc d = {cc->n, cc->d, cc->h, cc->w, blocks, cc->nblocks, cin,
                               cc->out_cout, wo, bo,
                               mode == 1 ? NN_FIRST_DENSE : NN_FIRST_SPARSE, mode == 2};
    const size_t nx = (size_t)cc->n * cc->d * cc->h * cc->w;
    float *x = host_alloc(nx), *got = NULL;
    double *ref = NULL;
    int od[4];
    nn_chain3d *chain = NULL;
    nn_tensor5 tx = {0}, ty = {0};
    fill_sparse(t, x, nx, 0.15);
    const size_t ny = ref_chain3d(&d, x, &ref, od);
    got = host_alloc(ny);
    if (!ny || !got) {
        CHECK_MSG(0, "chain3d reference: out of memory");
        goto done;
    }
    RUN(t, "chain3d_create", label, t->e->ops->chain3d_create(t->e, &d, &chain, &t->err));
    RUN(t, "chain3d_forward", label, put5(t, &tx, cc->n, 1, cc->d, cc->h, cc->w, x));
    RUN(t, "chain3d_forward", label, put5(t, &ty, cc->n, od[0], od[1], od[2], od[3], NULL));
    RUN_E(t, "chain3d_forward", label, t->e->ops->chain3d_forward(chain, &tx, &ty));
    RUN(t, "chain3d_forward", label, get5(t, &ty, got));
    check_out(t, "chain3d_forward", label, got, ref, ny, 1e-4);
done:
    if (chain) t->e->ops->chain3d_destroy(chain);
    nn_tensor5_free(t->e, &tx), nn_tensor5_free(t->e, &ty);
    free(x), free(got), free(ref);
    pool_free(&wp);
}

typedef struct dechain3d_case {
    int n, c, d, h, w;
    int nblocks, ch[3];
    int out_cout;
} dechain3d_case;

static const dechain3d_case DECHAIN3D_CASES[] = {
    {1, 8, 2, 3, 4, 2, {4, 2, 0}, 1},
    {2, 3, 2, 2, 3, 1, {2, 0, 0}, 2},
};

/* mode 0: shuffle form, 1: row split, 2: row split in portable C. */
static void case_dechain3d(tctx *t, const dechain3d_case *cc, int mode)
{
    static const char *modes[] = {"shuffle", "rows", "rows portable"};
    char label[96];
    snprintf(label, sizeof label, "n%d %d x %dx%dx%d %d blocks -> %d %s", cc->n, cc->c, cc->d,
             cc->h, cc->w, cc->nblocks, cc->out_cout, modes[mode]);
    if (!nn_has_dechain3d(t->e)) {
        report_absent(t, "dechain3d_forward", label);
        return;
    }
    wpool wp = {{0}, 0};
    nn_block3d blocks[2][3];
    nn_dechain3d_desc d = {cc->n, cc->c, cc->d, cc->h, cc->w, {{0}}, 2,
                           mode == 0 ? NN_DECONV_SHUFFLE : NN_DECONV_ROWS, mode == 2};
    for (int k = 0; k < 2; k++) {
        int cin = cc->c;
        for (int i = 0; i < cc->nblocks; i++) {
            blocks[k][i] = make_block3d(t, &wp, cin, cc->ch[i], 1);
            cin = cc->ch[i];
        }
        d.heads[k] = (nn_dechain3d_head){
            blocks[k], cc->nblocks, cin, cc->out_cout,
            pool_weights(t, &wp, (size_t)cc->out_cout * cin * 27, cin * 27, 0),
            pool_weights(t, &wp, (size_t)cc->out_cout, 0, 0.2)};
    }
    const size_t nx = (size_t)cc->n * cc->c * cc->d * cc->h * cc->w;
    float *x = host_alloc(nx), *got = NULL;
    double *ref[2] = {NULL, NULL};
    int od[4];
    size_t ny = 0;
    nn_dechain3d *chain = NULL;
    nn_tensor5 tx = {0}, ty[2] = {{0}, {0}};
    fill_uniform(t, x, nx, -1, 1);
    for (int k = 0; k < 2; k++) ny = ref_dechain3d(&d, k, x, &ref[k], od);
    got = host_alloc(ny);
    if (!ny || !got || !ref[0]) {
        CHECK_MSG(0, "dechain3d reference: out of memory");
        goto done;
    }
    RUN(t, "dechain3d_create", label, t->e->ops->dechain3d_create(t->e, &d, &chain, &t->err));
    RUN(t, "dechain3d_forward", label, put5(t, &tx, cc->n, cc->c, cc->d, cc->h, cc->w, x));
    for (int k = 0; k < 2; k++)
        RUN(t, "dechain3d_forward", label,
            put5(t, &ty[k], cc->n, od[0], od[1], od[2], od[3], NULL));
    nn_tensor5 *outs[2] = {&ty[0], &ty[1]};
    RUN_E(t, "dechain3d_forward", label, t->e->ops->dechain3d_forward(chain, &tx, outs));
    for (int k = 0; k < 2; k++) {
        char lk[112];
        snprintf(lk, sizeof lk, "%s head %d", label, k);
        RUN(t, "dechain3d_forward", lk, get5(t, &ty[k], got));
        check_out(t, "dechain3d_forward", lk, got, ref[k], ny, 1e-4);
    }
done:
    if (chain) t->e->ops->dechain3d_destroy(chain);
    nn_tensor5_free(t->e, &tx), nn_tensor5_free(t->e, &ty[0]), nn_tensor5_free(t->e, &ty[1]);
    free(x), free(got), free(ref[0]), free(ref[1]);
    pool_free(&wp);
}

/* ---- AdamW ------------------------------------------------------------------------- */

static void case_adamw(tctx *t, size_t n, float lr, float wd)
{
    char label[64];
    snprintf(label, sizeof label, "%zu params lr %g wd %g", n, (double)lr, (double)wd);
    float *w = host_alloc(n), *g = host_alloc(n), *m = host_alloc(n), *v = host_alloc(n);
    float *hw = host_alloc(n), *hm = host_alloc(n), *hv = host_alloc(n), *got = host_alloc(n);
    double *rw = dhost_alloc(n), *rm = dhost_alloc(n), *rv = dhost_alloc(n);
    float *dw = NULL, *dg = NULL, *dm = NULL, *dv = NULL;
    fill_uniform(t, w, n, -1, 1);
    for (size_t i = 0; i < n; i++) m[i] = v[i] = 0.0f;
    memcpy(hw, w, n * sizeof *w);
    memcpy(hm, m, n * sizeof *m);
    memcpy(hv, v, n * sizeof *v);
    RUN(t, "adamw_step", label, putb(t, &dw, w, n));
    RUN(t, "adamw_step", label, putb(t, &dm, m, n));
    RUN(t, "adamw_step", label, putb(t, &dv, v, n));
    RUN(t, "adamw_step", label, nn_alloc(t->e, n, &dg, &t->err));
    adamw_config cfg;
    adamw_config_default(&cfg);
    cfg.weight_decay = wd;
    for (long step = 1; step <= 3; step++) {
        char ls[96];
        snprintf(ls, sizeof ls, "%s step %ld", label, step);
        fill_uniform(t, g, n, -0.1, 0.1);
        RUN_E(t, "adamw_step", ls, nn_upload(t->e, dg, g, n));
        const nn_adamw_hparams h = {lr, cfg.beta1, cfg.beta2, cfg.eps, wd, step};
        /* The reference starts from the backend's previous state (errors
         * do not accumulate over the steps). */
        RUN(t, "adamw_step", ls, getb(t, dw, w, n));
        RUN(t, "adamw_step", ls, getb(t, dm, m, n));
        RUN(t, "adamw_step", ls, getb(t, dv, v, n));
        ref_adamw(&h, n, w, g, m, v, rw, rm, rv);
        RUN_E(t, "adamw_step", ls, t->e->ops->adamw_step(t->e, &h, dw, dg, dm, dv, n));
        RUN(t, "adamw_step", ls, getb(t, dw, got, n));
        check_out(t, "adamw_step w", ls, got, rw, n, 2e-6);
        {
            nn_adamw_hparams h0 = h;
            h0.weight_decay = 0;
            double *wr = dhost_alloc(n), *wm = dhost_alloc(n), *wv = dhost_alloc(n);
            ref_adamw(&h0, n, w, g, m, v, wr, wm, wv);
            check_differs(t, "adamw_step w", ls, "no weight decay", got, wr, n, 2e-6);
            free(wr), free(wm), free(wv);
        }
        if (t->b->adamw_bitwise) {
            /* src/train/optim.c on host copies, step for step. */
            adamw_step(&cfg, lr, step, hw, g, hm, hv, n, 1);
            const int same = memcmp(got, hw, n * sizeof *got) == 0;
            line(t, "adamw_step vs optim.c", ls, "%s", same ? "bit-identical  ok" : "FAIL");
            CHECK_MSG(same, "%s adamw %s: not bit-identical to optim.c", t->b->name, ls);
            same ? t->passed++ : t->failed++;
            uint32_t bits;
            memcpy(&bits, &hw[n / 2], sizeof bits);
            bits ^= 1u; /* one ulp: the comparison must see it */
            float flipped;
            memcpy(&flipped, &bits, sizeof flipped);
            CHECK(flipped != got[n / 2]);
        }
        RUN(t, "adamw_step", ls, getb(t, dm, got, n));
        check_out(t, "adamw_step m", ls, got, rm, n, 1e-6);
        if (t->b->adamw_bitwise) CHECK(memcmp(got, hm, n * sizeof *got) == 0);
        RUN(t, "adamw_step", ls, getb(t, dv, got, n));
        check_out(t, "adamw_step v", ls, got, rv, n, 1e-6);
        if (t->b->adamw_bitwise) CHECK(memcmp(got, hv, n * sizeof *got) == 0);
    }
done:
    nn_free(t->e, dw), nn_free(t->e, dg), nn_free(t->e, dm), nn_free(t->e, dv);
    free(w), free(g), free(m), free(v), free(hw), free(hm), free(hv), free(got);
    free(rw), free(rm), free(rv);
}

/* ---- misuse: errors with messages ------------------------------------------------------ */

/* A misused op must answer an error status and leave a message in the
 * engine (for a complete backend: the specific status). */
static void expect_error(tctx *t, const char *what, bcae_status s, bcae_status want)
{
    const bcae_error *le = nn_engine_last_error(t->e);
    const int ok = s != BCAE_OK && le->status == s && le->message[0] &&
                   (!t->b->complete || s == want);
    line(t, "errors", what, "%s: %s", ok ? "ok" : "FAIL", s ? le->message : "no error");
    CHECK_MSG(ok, "%s errors %s: status %d, last error %d '%s'", t->b->name, what, (int)s,
              (int)le->status, le->message);
    ok ? t->passed++ : t->failed++;
    if (ok) {
        bcae_error passed;
        CHECK(nn_engine_error(t->e, s, &passed) == s && passed.status == s &&
              strcmp(passed.message, le->message) == 0);
    }
}

static void case_errors(tctx *t)
{
    const char *label = "misuse";
    nn_conv *train = NULL, *infer = NULL;
    nn_tensor tx = {0}, ty = {0}, bad = {0};
    const nn_conv2d_desc d = {1, 4, 4, 6, 6, 3, 1, 1, NN_CONV2D_AUTO, BCAE_PRECISION_FP32};
    RUN(t, "conv2d_create", label, t->e->ops->conv2d_create(t->e, &d, 1, &train, &t->err));
    RUN(t, "conv2d_create", label, t->e->ops->conv2d_create(t->e, &d, 0, &infer, &t->err));
    RUN(t, "tensor_alloc", label, put4(t, &tx, 1, 4, 6, 6, NULL));
    RUN(t, "tensor_alloc", label, put4(t, &ty, 1, 4, 6, 6, NULL));
    RUN(t, "tensor_alloc", label, put4(t, &bad, 1, 4, 5, 6, NULL));
    expect_error(t, "conv_forward, output of the wrong shape",
                 t->e->ops->conv_forward(train, &tx, &bad, NN_POST_NONE), BCAE_ERR_SHAPE);
    expect_error(t, "conv_backward_data on an inference conv",
                 t->e->ops->conv_backward_data(infer, &ty, &tx), BCAE_ERR_INVALID_ARGUMENT);
    expect_error(t, "avgpool2_forward, not a 2x2 pair",
                 t->e->ops->avgpool2_forward(t->e, &tx, &bad), BCAE_ERR_SHAPE);
    expect_error(t, "add, shapes differ", t->e->ops->add(t->e, &tx, &bad), BCAE_ERR_SHAPE);
    {
        float *p = NULL;
        RUN(t, "alloc", label, nn_alloc(t->e, 4, &p, &t->err));
        const nn_adamw_hparams h = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 0};
        expect_error(t, "adamw_step at step 0", t->e->ops->adamw_step(t->e, &h, p, p, p, p, 4),
                     BCAE_ERR_INVALID_ARGUMENT);
        nn_free(t->e, p);
    }
done:
    if (train) t->e->ops->conv_destroy(train);
    if (infer) t->e->ops->conv_destroy(infer);
    nn_tensor_free(t->e, &tx), nn_tensor_free(t->e, &ty), nn_tensor_free(t->e, &bad);
}

/* ---- the run -------------------------------------------------------------------------- */

/* Random conv2d shapes on top of the fixed ones (seeded: reproducible). */
static conv2d_case random_conv2d(tctx *t)
{
    static const int ks[] = {1, 3, 5, 7};
    conv2d_case c;
    c.n = 1 + (int)uni(t, 0, 3);
    c.cin = 1 + (int)uni(t, 0, 20);
    c.cout = 1 + (int)uni(t, 0, 20);
    c.k = ks[(int)uni(t, 0, 4)];
    c.s = 1 + (int)uni(t, 0, 2);
    c.p = (int)uni(t, 0, c.k / 2 + 1);
    c.h = c.k + (int)uni(t, 0, 10);
    c.w = c.k + (int)uni(t, 0, 10);
    c.algo = NN_CONV2D_AUTO;
    return c;
}

static nn_conv3d_desc random_conv3d(tctx *t)
{
    nn_conv3d_desc d = {1 + (int)uni(t, 0, 2), 1 + (int)uni(t, 0, 9), 1 + (int)uni(t, 0, 9), 0, 0,
                        0, {0, 0, 0}, {0, 0, 0}, {0, 0, 0}, bcae_rng_uniform(&t->rng) < 0.4,
                        NN_CONV3D_AUTO};
    for (int a = 0; a < 3; a++) {
        d.k[a] = 1 + (int)uni(t, 0, 4);
        d.stride[a] = 1 + (int)uni(t, 0, 2);
        d.pad[a] = (int)uni(t, 0, (d.k[a] + 1) / 2);
    }
    const int in[3] = {d.k[0] + (int)uni(t, 0, 3), d.k[1] + (int)uni(t, 0, 5),
                       d.k[2] + (int)uni(t, 0, 5)};
    d.d = in[0], d.h = in[1], d.w = in[2];
    if (d.transposed) /* keep the output at least 1 */
        for (int a = 0; a < 3; a++)
            while (d.pad[a] > 0 && (in[a] - 1) * d.stride[a] - 2 * d.pad[a] + d.k[a] < 1)
                d.pad[a]--;
    return d;
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* The convolutions and the chains built on them (2D chains last: the
 * random cases above draw from the same generator as before). */
static void run_convs(tctx *t)
{
    for (size_t i = 0; i < COUNT(CONV2D_CASES); i++) case_conv2d(t, &CONV2D_CASES[i]);
    for (size_t i = 0; i < COUNT(CONV2D_BF16_CASES); i++)
        case_conv2d_bf16(t, &CONV2D_BF16_CASES[i]);
    case_conv2d_int8_refused(t);
    for (int i = 0; i < 3; i++) {
        conv2d_case c = random_conv2d(t);
        case_conv2d(t, &c);
    }
    for (size_t i = 0; i < COUNT(CONV3D_CASES); i++) case_conv3d(t, &CONV3D_CASES[i]);
    for (int i = 0; i < 3; i++) {
        nn_conv3d_desc d = random_conv3d(t);
        case_conv3d(t, &d);
    }
    for (size_t i = 0; i < COUNT(CHAIN3D_CASES); i++)
        for (int mode = 0; mode < 3; mode++) case_chain3d(t, &CHAIN3D_CASES[i], mode);
    for (size_t i = 0; i < COUNT(DECHAIN3D_CASES); i++)
        for (int mode = 0; mode < 3; mode++) case_dechain3d(t, &DECHAIN3D_CASES[i], mode);
    for (size_t i = 0; i < COUNT(CHAIN_CASES); i++) {
        case_chain(t, &CHAIN_CASES[i], BCAE_PRECISION_FP32, NN_FIRST_SPARSE);
        case_chain(t, &CHAIN_CASES[i], BCAE_PRECISION_FP32, NN_FIRST_DENSE);
        case_chain(t, &CHAIN_CASES[i], BCAE_PRECISION_FP32, NN_FIRST_SPARSE_PORTABLE);
        case_chain(t, &CHAIN_CASES[i], BCAE_PRECISION_BF16, NN_FIRST_SPARSE);
        case_chain(t, &CHAIN_CASES[i], BCAE_PRECISION_INT8, NN_FIRST_SPARSE);
    }
}

static void run_backend(tctx *t)
{
    run_convs(t);
    if (t->b->convs_only) return;
    const size_t mem[] = {1, 17, 4096};
    for (size_t i = 0; i < COUNT(mem); i++) case_memory(t, mem[i]);
    const shape4 layouts[] = {{1, 1, 1, 1}, {2, 3, 5, 7}, {1, 8, 4, 6}, {2, 16, 3, 5},
                              {1, 32, 2, 3}, {1, 24, 3, 3}};
    for (size_t i = 0; i < COUNT(layouts); i++)
        case_layout(t, layouts[i].n, layouts[i].c, layouts[i].h, layouts[i].w);
    for (size_t i = 0; i < COUNT(POOL_CASES); i++) case_pool(t, &POOL_CASES[i]);
    for (size_t i = 0; i < COUNT(ELEM_CASES); i++)
        for (int inplace = 0; inplace < 2; inplace++) case_elementwise(t, &ELEM_CASES[i], inplace);
    for (size_t i = 0; i < COUNT(HEAD_CASES); i++)
        for (int v = 0; v < 3; v++) case_heads(t, &HEAD_CASES[i], v);
    for (size_t i = 0; i < COUNT(LOSS_CASES); i++) case_loss(t, &LOSS_CASES[i]);
    for (size_t i = 0; i < COUNT(NORM_CASES); i++)
        for (int inplace = 0; inplace < 2; inplace++) case_norm(t, &NORM_CASES[i], inplace);
    case_adamw(t, 1, 1e-3f, 0.01f);
    case_adamw(t, 1001, 1e-3f, 0.01f);
    case_adamw(t, 17, 0.1f, 0.1f);
    case_errors(t);
    {
        /* The Winograd query answers a subset of the passes (NULL: none). */
        const char *label = "n2 32->32 k3 s1 p1 12x16";
        const nn_conv2d_desc d = {2, 32, 32, 12, 16, 3, 1, 1, NN_CONV2D_AUTO, BCAE_PRECISION_FP32};
        nn_conv *c = NULL;
        if (!nn_has_conv_winograd(t->e)) {
            report_absent(t, "conv_winograd", label);
        } else if (t->e->ops->conv2d_create(t->e, &d, 1, &c, &t->err) == BCAE_OK) {
            const int p = nn_conv_winograd_passes(t->e, c);
            const int ok = (p & ~(NN_PASS_FORWARD | NN_PASS_BACKWARD_DATA |
                                  NN_PASS_BACKWARD_WEIGHTS)) == 0;
            line(t, "conv_winograd", label, "passes 0x%x  %s", p, ok ? "ok" : "FAIL");
            CHECK(ok);
            t->e->ops->conv_destroy(c);
        }
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(void)
{
    const double start = now_s();
    int backends_run = 0;
    for (size_t i = 0; i < COUNT(BACKENDS); i++) {
        tctx t = {.b = &BACKENDS[i]};
        bcae_rng_seed(&t.rng, bcae_hash3(0x5eed, 15, 6, 0)); /* same cases on every backend */
        if (nn_engine_create(&t.b->opt, &t.e, NULL, &t.err) != BCAE_OK) {
            printf("%-20s skipped: %s\n", t.b->name, t.err.message);
            continue;
        }
        backends_run++;
        printf("%-20s engine \"%s\"\n", t.b->name, t.e->ops->name);
        run_backend(&t);
        printf("%-20s %d lines: %d passed, %d failed, %d not implemented\n\n", t.b->name, t.lines,
               t.passed, t.failed, t.not_implemented);
        nn_engine_destroy(t.e);
    }
    CHECK_MSG(backends_run > 0, "no backend could be created");
    printf("%.1f s\n", now_s() - start);
    return check_report("test_backend_ops");
}
