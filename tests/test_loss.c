/* The BCAE heads and loss of the CPU backend (src/nn/cpu/cpu_loss.c) against
 * a float64 restatement of SPEC sections 2 and 4 written as plainly as
 * possible on NCHW arrays; the backward against central finite differences
 * of that float64 loss and, end to end, of the backend's own loss sums. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bcae.h"
#include "check.h"
#include "core/rng.h"
#include "nn/cpu/cpu_internal.h"
#include "nn/engine.h"

#define N_ 2
#define C_ 16
#define H_ 5
#define W_ 12
#define ZV 9 /* columns ZV..W_-1 are padding */
#define COUNT ((size_t)N_ * C_ * H_ * W_)

static const float SHIFT = 6.0f, SCALE = 3.0f, THRESH = 0.5f, GAMMA = 2.0f, EPS = 1e-8f;
static const float COEF = 2000.0f;

static size_t at(int n, int c, int y, int x)
{
    return (((size_t)n * C_ + (size_t)c) * H_ + (size_t)y) * W_ + (size_t)x;
}

static nn_tensor tensor_new(nn_engine *e)
{
    nn_tensor t = {N_, C_, H_, W_, NULL};
    t.data = malloc(nn_tensor_floats(e, N_, C_, H_, W_) * sizeof(float));
    if (!t.data) {
        fprintf(stderr, "test_loss: out of memory\n");
        exit(2);
    }
    return t;
}

static void fill_nan(float *p, size_t n)
{
    for (size_t i = 0; i < n; i++) p[i] = NAN;
}

/* ---- the float64 reference (plain NCHW, naive formulas) ---------------------------- */

typedef struct ref_sums {
    double focal, l1, sq, voxels, pos, truth, true_pos;
} ref_sums;

static double ref_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

static void ref_loss(const double *logit, const double *raw, const float *target, ref_sums *s)
{
    memset(s, 0, sizeof *s);
    for (int n = 0; n < N_; n++)
        for (int c = 0; c < C_; c++)
            for (int y = 0; y < H_; y++)
                for (int x = 0; x < ZV; x++) {
                    size_t i = at(n, c, y, x);
                    double p = ref_sigmoid(logit[i]), t = target[i];
                    double v = (double)SHIFT + (double)SCALE * exp(raw[i]);
                    double m = p > THRESH ? 1.0 : 0.0, l = t > 0 ? 1.0 : 0.0;
                    double rec = v * m;
                    double p0 = 1.0 - p + EPS, p1 = p + EPS;
                    s->focal -= l * pow(p0, GAMMA) * log2(p1) + (1 - l) * pow(p1, GAMMA) * log2(p0);
                    s->l1 += fabs(rec - t);
                    s->sq += (rec - t) * (rec - t);
                    s->voxels += 1;
                    s->pos += m;
                    s->truth += l;
                    s->true_pos += m * l;
                }
}

static double ref_total(const double *logit, const double *raw, const float *target)
{
    ref_sums s;
    ref_loss(logit, raw, target, &s);
    return s.l1 / s.voxels + (double)COEF * s.focal / s.voxels;
}

/* dL/dvar[i] by the five-point stencil; var is lg or rw. */
static double five_point(double *var, size_t i, double h, const double *rw, const double *lg,
                         const float *target)
{
    double keep = var[i], f[4];
    static const double off[4] = {2, 1, -1, -2};
    for (int k = 0; k < 4; k++) {
        var[i] = keep + off[k] * h;
        f[k] = ref_total(lg, rw, target);
    }
    var[i] = keep;
    /* Differences first: a variable L does not depend on gives exactly 0. */
    return ((f[3] - f[0]) + 8 * (f[1] - f[2])) / (12 * h);
}

static int rel_close(double a, double b, double rel)
{
    return fabs(a - b) <= rel * fmax(fabs(b), 1e-300);
}

/* ---- data ------------------------------------------------------------------------- */

typedef struct loss_data {
    float logit[COUNT], raw[COUNT], target[COUNT]; /* NCHW */
} loss_data;

/* Logits around 0 (so both masks occur), never within 0.01 of it; raw
 * outputs giving v in about [6.7, 14]; targets 0 for ~60% of voxels, else in
 * (6, 10]. */
static void make_data(bcae_rng *r, loss_data *d)
{
    for (size_t i = 0; i < COUNT; i++) {
        double x = 2.0 * bcae_rng_normal(r);
        if (fabs(x) < 0.01) x = x < 0 ? -0.01 : 0.01;
        d->logit[i] = (float)x;
        d->raw[i] = (float)(-1.5 + 2.5 * bcae_rng_uniform(r));
        /* 10 - 4u with u in [0, 1): (6, 10], then rounded to float. */
        float t = (float)(10.0 - 4.0 * bcae_rng_uniform(r));
        d->target[i] = bcae_rng_uniform(r) < 0.6 ? 0.0f : t > 6.0f ? t : 6.5f;
        /* Every 50th voxel reconstructs its target exactly (mask on, r = 0:
         * v = 6 + 3 = 9 = t), the |.| kink where the gradient must be 0. */
        if (i % 50 == 3) {
            d->logit[i] = 1.0f;
            d->raw[i] = 0.0f;
            d->target[i] = 9.0f;
        }
    }
}

static int exact_tie(const loss_data *d, size_t i)
{
    return d->logit[i] > 0 && d->raw[i] == 0.0f && d->target[i] == 9.0f;
}

/* Values in the padding columns that would poison any sum or gradient they
 * reached: NaN, overflowing exponentials, huge targets. */
static void corrupt_padding(loss_data *d)
{
    for (int n = 0; n < N_; n++)
        for (int c = 0; c < C_; c++)
            for (int y = 0; y < H_; y++)
                for (int x = ZV; x < W_; x++) {
                    size_t i = at(n, c, y, x);
                    d->target[i] = (x % 2) ? NAN : 1e30f;
                    d->logit[i] = (x % 2) ? NAN : (y % 2 ? 1e30f : -1e30f);
                    d->raw[i] = (x % 2) ? 1e4f : NAN;
                }
}

/* ---- heads ------------------------------------------------------------------------- */

static void test_heads(nn_engine *e, bcae_rng *r)
{
    static loss_data d;
    make_data(r, &d);
    nn_tensor lg = tensor_new(e), rw = tensor_new(e), seg = tensor_new(e), reg = tensor_new(e);
    nn_tensor rec = tensor_new(e), a = tensor_new(e), b = tensor_new(e);
    e->ops->from_nchw(e, d.logit, &lg);
    e->ops->from_nchw(e, d.raw, &rw);
    fill_nan(seg.data, COUNT);
    fill_nan(reg.data, COUNT);
    fill_nan(rec.data, COUNT);
    e->ops->bcae_heads(e, &lg, &rw, SHIFT, SCALE, THRESH, &seg, &reg, &rec);
    static float hs[COUNT], hr[COUNT], hv[COUNT];
    e->ops->to_nchw(e, &seg, hs);
    e->ops->to_nchw(e, &reg, hr);
    e->ops->to_nchw(e, &rec, hv);
    double seg_err = 0, reg_err = 0;
    int mask_ok = 1, recon_ok = 1, masks_on = 0;
    for (size_t i = 0; i < COUNT; i++) { /* every column: the heads do not crop */
        double p = ref_sigmoid(d.logit[i]), v = SHIFT + SCALE * exp((double)d.raw[i]);
        seg_err = fmax(seg_err, fabs(hs[i] - p));
        reg_err = fmax(reg_err, fabs(hr[i] - v) / v);
        mask_ok &= (hs[i] > THRESH) == (p > THRESH);
        recon_ok &= hv[i] == (hs[i] > THRESH ? hr[i] : 0.0f);
        masks_on += p > THRESH;
    }
    CHECK_MSG(seg_err <= 1e-7, "seg vs sigmoid: max error %g", seg_err);
    CHECK_MSG(reg_err <= 1e-7, "reg vs shift + scale exp: max relative error %g", reg_err);
    CHECK(mask_ok);
    CHECK(recon_ok);
    CHECK_MSG(masks_on > (int)COUNT / 5 && masks_on < (int)COUNT * 4 / 5,
              "test data should switch the mask both ways (%d of %zu on)", masks_on, COUNT);

    /* Unwanted outputs may be NULL. */
    fill_nan(a.data, COUNT);
    e->ops->bcae_heads(e, &lg, &rw, SHIFT, SCALE, THRESH, NULL, NULL, &a);
    CHECK(memcmp(a.data, rec.data, COUNT * sizeof(float)) == 0);
    /* Outputs may alias the inputs: seg over the logits, recon over the raw
     * outputs, and reg over the raw outputs. */
    memcpy(a.data, lg.data, COUNT * sizeof(float));
    memcpy(b.data, rw.data, COUNT * sizeof(float));
    e->ops->bcae_heads(e, &a, &b, SHIFT, SCALE, THRESH, &a, NULL, &b);
    CHECK(memcmp(a.data, seg.data, COUNT * sizeof(float)) == 0);
    CHECK(memcmp(b.data, rec.data, COUNT * sizeof(float)) == 0);
    memcpy(b.data, rw.data, COUNT * sizeof(float));
    e->ops->bcae_heads(e, &lg, &b, SHIFT, SCALE, THRESH, NULL, &b, NULL);
    CHECK(memcmp(b.data, reg.data, COUNT * sizeof(float)) == 0);

    /* Saturated logits: p is exactly 0 or 1 and stays finite, no NaN. */
    e->ops->fill(e, &a, 200.0f);
    e->ops->fill(e, &b, -200.0f);
    e->ops->bcae_heads(e, &a, &b, SHIFT, SCALE, THRESH, &seg, NULL, NULL);
    CHECK(seg.data[0] == 1.0f);
    e->ops->bcae_heads(e, &b, &b, SHIFT, SCALE, THRESH, &seg, NULL, &rec);
    CHECK(seg.data[0] == 0.0f && rec.data[0] == 0.0f);

    free(lg.data);
    free(rw.data);
    free(seg.data);
    free(reg.data);
    free(rec.data);
    free(a.data);
    free(b.data);
}

/* ---- loss sums ----------------------------------------------------------------------- */

static void to_double(const float *f, double *d)
{
    for (size_t i = 0; i < COUNT; i++) d[i] = f[i];
}

static void test_loss_sums(nn_engine *e, bcae_rng *r)
{
    static loss_data clean, dirty;
    static double lg64[COUNT], rw64[COUNT];
    make_data(r, &clean);
    dirty = clean;
    corrupt_padding(&dirty);
    to_double(clean.logit, lg64);
    to_double(clean.raw, rw64);
    ref_sums want;
    ref_loss(lg64, rw64, clean.target, &want);
    CHECK_MSG(want.true_pos > 0 && want.pos > want.true_pos && want.truth > want.true_pos,
              "test data: pos %g truth %g true_pos %g", want.pos, want.truth, want.true_pos);

    nn_tensor lg = tensor_new(e), rw = tensor_new(e), tg = tensor_new(e);
    e->ops->from_nchw(e, dirty.logit, &lg);
    e->ops->from_nchw(e, dirty.raw, &rw);
    e->ops->from_nchw(e, dirty.target, &tg);
    nn_loss_sums got;
    e->ops->bcae_loss_sums(e, &lg, &rw, &tg, ZV, SHIFT, SCALE, THRESH, GAMMA, EPS, &got);
    CHECK_MSG(rel_close(got.focal, want.focal, 1e-10), "focal %.17g vs %.17g", got.focal, want.focal);
    CHECK_MSG(rel_close(got.l1, want.l1, 1e-10), "l1 %.17g vs %.17g", got.l1, want.l1);
    CHECK_MSG(rel_close(got.sq, want.sq, 1e-10), "sq %.17g vs %.17g", got.sq, want.sq);
    CHECK(got.voxels == want.voxels && got.voxels == (double)N_ * C_ * H_ * ZV);
    CHECK(got.pos == want.pos);
    CHECK(got.truth == want.truth);
    CHECK(got.true_pos == want.true_pos);

    /* Without padding (z_valid = w) the whole tensor counts. */
    e->ops->from_nchw(e, clean.logit, &lg);
    e->ops->from_nchw(e, clean.raw, &rw);
    e->ops->from_nchw(e, clean.target, &tg);
    nn_loss_sums full;
    e->ops->bcae_loss_sums(e, &lg, &rw, &tg, W_, SHIFT, SCALE, THRESH, GAMMA, EPS, &full);
    CHECK(full.voxels == (double)COUNT && full.focal > got.focal && full.l1 > got.l1);

    /* Sums do not depend on the thread count: bit for bit. */
    for (int threads = 1; threads <= 3; threads++) {
        nn_engine *et = NULL;
        bcae_error err;
        if (nn_cpu_engine_create(threads, &et, &err) != BCAE_OK) {
            CHECK_MSG(0, "engine: %s", err.message);
            break;
        }
        nn_loss_sums again;
        et->ops->bcae_loss_sums(et, &lg, &rw, &tg, W_, SHIFT, SCALE, THRESH, GAMMA, EPS, &again);
        CHECK_MSG(memcmp(&again, &full, sizeof full) == 0, "loss sums with %d threads differ",
                  threads);
        nn_engine_destroy(et);
    }
    free(lg.data);
    free(rw.data);
    free(tg.data);
}

/* ---- backward -------------------------------------------------------------------------- */

static void test_loss_backward(nn_engine *e, nn_engine *e_fd, bcae_rng *r)
{
    static loss_data clean, dirty;
    static double lg64[COUNT], rw64[COUNT];
    static float gl[COUNT], gr[COUNT];
    make_data(r, &clean);
    dirty = clean;
    corrupt_padding(&dirty);
    to_double(clean.logit, lg64);
    to_double(clean.raw, rw64);

    nn_tensor lg = tensor_new(e), rw = tensor_new(e), tg = tensor_new(e);
    nn_tensor dl = tensor_new(e), dr = tensor_new(e);
    e->ops->from_nchw(e, dirty.logit, &lg);
    e->ops->from_nchw(e, dirty.raw, &rw);
    e->ops->from_nchw(e, dirty.target, &tg);
    fill_nan(dl.data, COUNT);
    fill_nan(dr.data, COUNT);
    e->ops->bcae_loss_backward(e, &lg, &rw, &tg, ZV, SHIFT, SCALE, THRESH, GAMMA, EPS, COEF, &dl,
                               &dr);
    e->ops->to_nchw(e, &dl, gl);
    e->ops->to_nchw(e, &dr, gr);

    /* Padding: exactly zero. Mask off: no regression gradient. */
    int pad_zero = 1, off_zero = 1;
    for (int n = 0; n < N_; n++)
        for (int c = 0; c < C_; c++)
            for (int y = 0; y < H_; y++)
                for (int x = 0; x < W_; x++) {
                    size_t i = at(n, c, y, x);
                    if (x >= ZV) pad_zero &= gl[i] == 0.0f && gr[i] == 0.0f;
                    else if (!(ref_sigmoid(lg64[i]) > THRESH)) off_zero &= gr[i] == 0.0f;
                }
    CHECK_MSG(pad_zero, "gradient not exactly zero in the padding");
    CHECK_MSG(off_zero, "regression gradient where the mask is off");
    int ties = 0, tie_zero = 1;
    for (size_t i = 0; i < COUNT; i++)
        if (i % W_ < ZV && exact_tie(&clean, i)) {
            ties++;
            tie_zero &= gr[i] == 0.0f;
        }
    CHECK_MSG(ties > 10 && tie_zero, "recon == target must give sign(0) = 0 (%d ties)", ties);

    /* Every valid voxel away from the kinks: five-point central differences
     * of the float64 loss, step 1e-3 (truncation ~h^4; rounding of L, about
     * 2000, divided by h stays ~1e-9 absolute, far under the gradients). */
    const double h = 1e-3;
    int n_seg = 0, n_reg = 0, n_reg_on = 0;
    double worst_seg = 0, worst_reg = 0;
    for (int n = 0; n < N_; n++)
        for (int c = 0; c < C_; c++)
            for (int y = 0; y < H_; y++)
                for (int x = 0; x < ZV; x++) {
                    size_t i = at(n, c, y, x);
                    if (fabs(lg64[i]) > 3 * h) { /* the mask cannot flip */
                        double num = five_point(lg64, i, h, rw64, lg64, clean.target);
                        double err = fabs(gl[i] - num) / fmax(fabs(num), 1e-3);
                        worst_seg = fmax(worst_seg, err);
                        n_seg++;
                    }
                    double v = SHIFT + SCALE * exp(rw64[i]);
                    int on = ref_sigmoid(lg64[i]) > THRESH;
                    if (!on || fabs(v - clean.target[i]) > 0.1) { /* off the |.| kink */
                        double num = five_point(rw64, i, h, rw64, lg64, clean.target);
                        double err = fabs(gr[i] - num) / fmax(fabs(num), 1e-6);
                        worst_reg = fmax(worst_reg, err);
                        n_reg++;
                        n_reg_on += on;
                    }
                }
    CHECK_MSG(worst_seg <= 1e-5, "dseg_logit vs finite differences: worst relative error %g "
                                 "over %d voxels", worst_seg, n_seg);
    CHECK_MSG(worst_reg <= 1e-5, "dreg_raw vs finite differences: worst relative error %g "
                                 "over %d voxels", worst_reg, n_reg);
    CHECK(n_seg > (int)(N_ * C_ * H_ * ZV) * 9 / 10 && n_reg_on > 100);
    printf("finite differences: dseg worst %.2g over %d, dreg worst %.2g over %d (%d masked on)\n",
           worst_seg, n_seg, worst_reg, n_reg, n_reg_on);

    /* End to end through the backend's own loss sums (float inputs, so a
     * coarser step, measured as actually taken): every 7th valid voxel. */
    nn_tensor pl = tensor_new(e), pr = tensor_new(e);
    e->ops->from_nchw(e, clean.logit, &pl);
    e->ops->from_nchw(e, clean.raw, &pr);
    e->ops->from_nchw(e, clean.target, &tg);
    double worst_e2e = 0;
    int n_e2e = 0;
    for (int n = 0; n < N_; n++)
        for (int c = 0; c < C_; c++)
            for (int y = 0; y < H_; y++)
                for (int x = 0; x < ZV; x++) {
                    size_t i = at(n, c, y, x);
                    if (i % 7) continue;
                    size_t s = cpu_index(&pl, n, c, y, x);
                    for (int which = 0; which < 2; which++) {
                        nn_tensor *t = which ? &pr : &pl;
                        double v = SHIFT + SCALE * exp(rw64[i]);
                        int on = ref_sigmoid(lg64[i]) > THRESH;
                        if (which == 0 && fabs(lg64[i]) < 0.1) continue;
                        if (which == 1 && on && fabs(v - clean.target[i]) < 0.5) continue;
                        float keep = t->data[s];
                        float up = keep + 1.0f / 64, down = keep - 1.0f / 64;
                        nn_loss_sums sp, sm;
                        t->data[s] = up;
                        e_fd->ops->bcae_loss_sums(e_fd, &pl, &pr, &tg, ZV, SHIFT, SCALE, THRESH,
                                                  GAMMA, EPS, &sp);
                        t->data[s] = down;
                        e_fd->ops->bcae_loss_sums(e_fd, &pl, &pr, &tg, ZV, SHIFT, SCALE, THRESH,
                                                  GAMMA, EPS, &sm);
                        t->data[s] = keep;
                        double lp = (sp.l1 + (double)COEF * sp.focal) / sp.voxels;
                        double lm = (sm.l1 + (double)COEF * sm.focal) / sm.voxels;
                        double num = (lp - lm) / ((double)up - (double)down);
                        double an = which ? gr[i] : gl[i];
                        worst_e2e = fmax(worst_e2e, fabs(an - num) / fmax(fabs(num), 1e-4));
                        n_e2e++;
                    }
                }
    CHECK_MSG(worst_e2e <= 2e-3, "backward vs differences of the backend's loss sums: worst "
                                 "relative error %g over %d", worst_e2e, n_e2e);
    CHECK(n_e2e > 100);
    printf("end to end through loss sums: worst %.2g over %d\n", worst_e2e, n_e2e);

    /* The same bits with 1 and 3 threads (the sums' case is above). */
    e->ops->from_nchw(e, dirty.logit, &pl);
    e->ops->from_nchw(e, dirty.raw, &pr);
    e->ops->from_nchw(e, dirty.target, &tg);
    for (int threads = 1; threads <= 3; threads += 2) {
        nn_engine *et = NULL;
        bcae_error err;
        if (nn_cpu_engine_create(threads, &et, &err) != BCAE_OK) {
            CHECK_MSG(0, "engine: %s", err.message);
            break;
        }
        nn_tensor a = tensor_new(e), b = tensor_new(e);
        et->ops->bcae_loss_backward(et, &pl, &pr, &tg, ZV, SHIFT, SCALE, THRESH, GAMMA, EPS, COEF,
                                    &a, &b);
        CHECK_MSG(memcmp(a.data, dl.data, COUNT * sizeof(float)) == 0 &&
                      memcmp(b.data, dr.data, COUNT * sizeof(float)) == 0,
                  "loss backward with %d threads differs", threads);
        et->ops->bcae_heads(et, &pl, &pr, SHIFT, SCALE, THRESH, &a, NULL, &b);
        nn_tensor c = tensor_new(e), d = tensor_new(e);
        e->ops->bcae_heads(e, &pl, &pr, SHIFT, SCALE, THRESH, &c, NULL, &d);
        CHECK_MSG(memcmp(a.data, c.data, COUNT * sizeof(float)) == 0 &&
                      memcmp(b.data, d.data, COUNT * sizeof(float)) == 0,
                  "heads with %d threads differ", threads);
        free(a.data);
        free(b.data);
        free(c.data);
        free(d.data);
        nn_engine_destroy(et);
    }

    /* coef scales only the segmentation gradient. */
    e->ops->bcae_loss_backward(e, &lg, &rw, &tg, ZV, SHIFT, SCALE, THRESH, GAMMA, EPS, 0.0f, &pl,
                               &pr);
    int zero_seg = 1;
    for (size_t i = 0; i < COUNT; i++) zero_seg &= pl.data[i] == 0.0f;
    CHECK_MSG(zero_seg, "coef = 0 must leave no segmentation gradient");
    CHECK(memcmp(pr.data, dr.data, COUNT * sizeof(float)) == 0);

    free(lg.data);
    free(rw.data);
    free(tg.data);
    free(dl.data);
    free(dr.data);
    free(pl.data);
    free(pr.data);
}

int main(void)
{
    /* e1 serves the end-to-end finite differences (hundreds of calls on tiny
     * tensors: one thread keeps a busy machine from stretching each call's
     * barrier); everything else runs on two threads. */
    nn_engine *e = NULL, *e1 = NULL;
    bcae_error err;
    if (nn_cpu_engine_create(2, &e, &err) != BCAE_OK ||
        nn_cpu_engine_create(1, &e1, &err) != BCAE_OK) {
        fprintf(stderr, "test_loss: %s\n", err.message);
        return 1;
    }
    bcae_rng r;
    bcae_rng_seed(&r, 777);
    test_heads(e, &r);
    test_loss_sums(e, &r);
    test_loss_backward(e, e1, &r);
    nn_engine_destroy(e);
    nn_engine_destroy(e1);
    return check_report("test_loss");
}
