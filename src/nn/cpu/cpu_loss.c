/*
 * The BCAE heads and training loss (SPEC sections 2 and 4) on the CPU layout.
 *
 * Per voxel, with x the segmentation logit, r the regression output and t the
 * target (log2(ADC + 1)):
 *   p = sigmoid(x), q = 1 - p          (both computed directly, stably)
 *   v = shift + scale * exp(r)         (T of SPEC section 2)
 *   m = 1[p > threshold]               (p rounded to float first, as the
 *                                       heads output it, so that the loss and
 *                                       the heads agree on every mask bit)
 *   recon = v * m, l = 1[t > 0]
 *   f = -( l (q + eps)^g log2(p + eps) + (1 - l) (p + eps)^g log2(q + eps) )
 * The loss is L = sum|recon - t| / V + coef * sum f / V over the V cropped
 * voxels (z < z_valid). Its gradients, with the mask held constant:
 *   dL/dr = sign(recon - t) m scale exp(r) / V          (sign(0) = 0)
 *   dL/dx = coef / V * df/dp * p q, where
 *     l = 1, a = q + eps, b = p + eps:
 *       df/dp = g a^(g-1) log2(b) - a^g / (b ln 2)
 *     l = 0, a = q + eps, b = p + eps:
 *       df/dp = b^g / (a ln 2) - g b^(g-1) log2(a)
 * (d/dp of a is -1, of b is +1, and d log2(u) = du / (u ln 2).)
 *
 * Every voxel is evaluated in double from its float inputs; the sums are kept
 * in double and reduced over a fixed partition of the rows, in a fixed
 * order, so they do not depend on the thread count. A voxel's outputs depend
 * only on its own inputs, and each is read before anything is written there,
 * so outputs may alias inputs.
 */
#include <math.h>
#include <stdint.h>

#include "core/error.h"
#include "nn/cpu/cpu_internal.h"

/* Fixed pieces of the row range for the sums (see cpu_kernels.c). */
#define CPU_LOSS_CHUNKS 128

/* p = sigmoid(x) and q = 1 - p without overflow or cancellation: exp of a
 * non-positive number only, and q never formed as 1 - p. */
static inline void sigmoid_pq(double x, double *p, double *q)
{
    double e = exp(-fabs(x)), s = 1.0 / (1.0 + e);
    if (x >= 0) {
        *p = s;
        *q = e * s;
    } else {
        *p = e * s;
        *q = s;
    }
}

/* a^(g-1); gamma = 2 (the SPEC's) avoids pow(). a >= eps > 0. */
static inline double pow_gm1(double a, double g)
{
    return g == 2.0 ? a : g == 1.0 ? 1.0 : pow(a, g - 1.0);
}

static inline int seg_mask(double p, float threshold) { return (float)p > threshold; }

/* Rows (n, c-block, y) of a tensor; a row holds w * block floats. */
static inline size_t row_count(const nn_tensor *t)
{
    return (size_t)t->n * (size_t)(t->c / cpu_block(t->c)) * (size_t)t->h;
}

/* Every tensor of the heads and the loss has the first one's shape (NULL
 * ones are not wanted); else an error (the kernels would run off one). */
static bcae_status check_shapes(nn_engine *e, const char *op, const nn_tensor *const *t,
                                int count)
{
    for (int i = 1; i < count; i++)
        if (t[i] && (t[i]->n != t[0]->n || t[i]->c != t[0]->c || t[i]->h != t[0]->h ||
                     t[i]->w != t[0]->w))
            return bcae_fail(&e->last_error, BCAE_ERR_SHAPE,
                             "%s: tensor %d is %dx%dx%dx%d, the logits %dx%dx%dx%d", op, i,
                             t[i]->n, t[i]->c, t[i]->h, t[i]->w, t[0]->n, t[0]->c, t[0]->h,
                             t[0]->w);
    return BCAE_OK;
}

static inline int clamp_z(int z_valid, int w) { return z_valid < 0 ? 0 : z_valid > w ? w : z_valid; }

bcae_status cpu_bcae_heads(nn_engine *e, const nn_tensor *seg_logit, const nn_tensor *reg_raw,
                           float shift, float scale, float threshold, nn_tensor *seg,
                           nn_tensor *reg, nn_tensor *recon)
{
    const nn_tensor *all[5] = {seg_logit, reg_raw, seg, reg, recon};
    bcae_status st = check_shapes(e, "bcae_heads", all, 5);
    if (st != BCAE_OK) return st;
    const size_t count =
        (size_t)seg_logit->n * (size_t)seg_logit->c * (size_t)seg_logit->h * (size_t)seg_logit->w;
    const float *xl = seg_logit->data, *xr = reg_raw->data;
    float *ps = seg ? seg->data : NULL, *pr = reg ? reg->data : NULL;
    float *pv = recon ? recon->data : NULL;
    const double sh = shift, sc = scale;
#pragma omp parallel for schedule(static) num_threads(cpu_threads(e))
    for (size_t i = 0; i < count; i++) {
        double p, q;
        sigmoid_pq((double)xl[i], &p, &q);
        float v = (float)(sh + sc * exp((double)xr[i]));
        /* A masked-off voxel reconstructs to 0 even where v overflowed (the
         * reference's v * 0 would give NaN there). */
        float rv = seg_mask(p, threshold) ? v : 0.0f;
        if (ps) ps[i] = (float)p;
        if (pr) pr[i] = v;
        if (pv) pv[i] = rv;
    }
    return BCAE_OK;
}

typedef struct loss_partial {
    double focal, l1, sq;
    int64_t voxels, pos, truth, true_pos;
} loss_partial;

bcae_status cpu_bcae_loss_sums(nn_engine *e, const nn_tensor *seg_logit,
                               const nn_tensor *reg_raw, const nn_tensor *target, int z_valid,
                               float shift, float scale, float threshold, float gamma, float eps,
                               nn_loss_sums *out)
{
    const nn_tensor *all[3] = {seg_logit, reg_raw, target};
    bcae_status st = check_shapes(e, "bcae_loss_sums", all, 3);
    if (st != BCAE_OK) return st;
    const int b = cpu_block(seg_logit->c), w = seg_logit->w, zv = clamp_z(z_valid, w);
    const size_t rows = row_count(seg_logit), row_len = (size_t)w * (size_t)b;
    const size_t valid_len = (size_t)zv * (size_t)b;
    const double sh = shift, sc = scale, g = gamma, ep = eps, inv_ln2 = 1.0 / log(2.0);
    loss_partial part[CPU_LOSS_CHUNKS];
#pragma omp parallel for schedule(static) num_threads(cpu_threads(e))
    for (int k = 0; k < CPU_LOSS_CHUNKS; k++) {
        const size_t lo = rows * (size_t)k / CPU_LOSS_CHUNKS;
        const size_t hi = rows * (size_t)(k + 1) / CPU_LOSS_CHUNKS;
        loss_partial s = {0};
        for (size_t row = lo; row < hi; row++) {
            const float *xl = seg_logit->data + row * row_len;
            const float *xr = reg_raw->data + row * row_len;
            const float *xt = target->data + row * row_len;
            /* The padding columns z >= z_valid are the row's tail: skipped. */
            for (size_t i = 0; i < valid_len; i++) {
                double p, q, t = xt[i];
                sigmoid_pq((double)xl[i], &p, &q);
                int m = seg_mask(p, threshold), l = t > 0;
                double rec = m ? sh + sc * exp((double)xr[i]) : 0.0;
                double d = rec - t;
                double f;
                if (l) {
                    double a = q + ep;
                    f = -(pow_gm1(a, g) * a) * (log(p + ep) * inv_ln2);
                } else {
                    double bb = p + ep;
                    f = -(pow_gm1(bb, g) * bb) * (log(q + ep) * inv_ln2);
                }
                s.focal += f;
                s.l1 += fabs(d);
                s.sq += d * d;
                s.pos += m;
                s.truth += l;
                s.true_pos += m & l;
            }
            s.voxels += (int64_t)valid_len;
        }
        part[k] = s;
    }
    loss_partial tot = {0};
    for (int k = 0; k < CPU_LOSS_CHUNKS; k++) {
        tot.focal += part[k].focal;
        tot.l1 += part[k].l1;
        tot.sq += part[k].sq;
        tot.voxels += part[k].voxels;
        tot.pos += part[k].pos;
        tot.truth += part[k].truth;
        tot.true_pos += part[k].true_pos;
    }
    out->focal = tot.focal;
    out->l1 = tot.l1;
    out->sq = tot.sq;
    out->voxels = (double)tot.voxels;
    out->pos = (double)tot.pos;
    out->truth = (double)tot.truth;
    out->true_pos = (double)tot.true_pos;
    return BCAE_OK;
}

bcae_status cpu_bcae_loss_backward(nn_engine *e, const nn_tensor *seg_logit,
                                   const nn_tensor *reg_raw, const nn_tensor *target, int z_valid,
                                   float shift, float scale, float threshold, float gamma,
                                   float eps, float coef, nn_tensor *dseg_logit,
                                   nn_tensor *dreg_raw)
{
    const nn_tensor *all[5] = {seg_logit, reg_raw, target, dseg_logit, dreg_raw};
    bcae_status st = check_shapes(e, "bcae_loss_backward", all, 5);
    if (st != BCAE_OK) return st;
    const int b = cpu_block(seg_logit->c), w = seg_logit->w, zv = clamp_z(z_valid, w);
    const size_t rows = row_count(seg_logit), row_len = (size_t)w * (size_t)b;
    const size_t valid_len = (size_t)zv * (size_t)b;
    const double voxels = (double)rows * (double)valid_len;
    /* With no cropped voxel the loss is empty: every gradient is 0. */
    const double inv_v = voxels > 0 ? 1.0 / voxels : 0.0;
    const double seg_scale = (double)coef * inv_v;
    const double sh = shift, sc = scale, g = gamma, ep = eps, inv_ln2 = 1.0 / log(2.0);
#pragma omp parallel for schedule(static) num_threads(cpu_threads(e))
    for (size_t row = 0; row < rows; row++) {
        const float *xl = seg_logit->data + row * row_len;
        const float *xr = reg_raw->data + row * row_len;
        const float *xt = target->data + row * row_len;
        float *gl = dseg_logit->data + row * row_len;
        float *gr = dreg_raw->data + row * row_len;
        for (size_t i = 0; i < valid_len; i++) {
            double p, q, t = xt[i], r = xr[i];
            sigmoid_pq((double)xl[i], &p, &q);
            int m = seg_mask(p, threshold), l = t > 0;
            double dr = 0.0;
            if (m) {
                /* dv/dr = scale exp(r) = v - shift */
                double ex = sc * exp(r), d = (sh + ex) - t;
                dr = d > 0 ? ex * inv_v : d < 0 ? -ex * inv_v : 0.0;
            }
            double a = q + ep, bb = p + ep, dfdp;
            if (l) {
                double am = pow_gm1(a, g);
                dfdp = g * am * (log(bb) * inv_ln2) - am * a / bb * inv_ln2;
            } else {
                double bm = pow_gm1(bb, g);
                dfdp = bm * bb / a * inv_ln2 - g * bm * (log(a) * inv_ln2);
            }
            gl[i] = (float)(seg_scale * dfdp * (p * q));
            gr[i] = (float)dr;
        }
        /* The padding carries no loss, hence exactly zero gradient. */
        for (size_t i = valid_len; i < row_len; i++) {
            gl[i] = 0.0f;
            gr[i] = 0.0f;
        }
    }
    return BCAE_OK;
}
