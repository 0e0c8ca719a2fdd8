/* Double-precision references of the engine's operations (backend_ref.h). */
#include "backend_ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- convolutions --------------------------------------------------------------
 * One loop serves every pass and both kinds: an input position i and an
 * output position o meet through kernel tap t where
 *     big = small * stride - pad + t,
 * (small, big) being (o, i) for a convolution and (i, o) for a transposed
 * one. The loop walks small positions and taps and skips big positions
 * outside the tensor (the zero padding). */

ref_conv ref_conv2d(int n, int cin, int cout, int h, int w, int k, int s, int p)
{
    nn_conv3d_desc d = {n, cin, cout, 1, h, w, {1, k, k}, {1, s, s}, {0, p, p}, 0, NN_CONV3D_AUTO};
    return ref_conv3d(&d);
}

ref_conv ref_conv3d(const nn_conv3d_desc *d)
{
    ref_conv c = {d->n, d->cin, d->cout, {d->d, d->h, d->w}, {0, 0, 0}, {0, 0, 0}, {0, 0, 0},
                  {0, 0, 0}, d->transposed};
    for (int a = 0; a < 3; a++) {
        c.k[a] = d->k[a], c.stride[a] = d->stride[a], c.pad[a] = d->pad[a];
        c.out[a] = d->transposed ? (c.in[a] - 1) * c.stride[a] - 2 * c.pad[a] + c.k[a]
                                 : (c.in[a] + 2 * c.pad[a] - c.k[a]) / c.stride[a] + 1;
    }
    return c;
}

static size_t vol(const int v[3]) { return (size_t)v[0] * (size_t)v[1] * (size_t)v[2]; }

size_t ref_conv_in_count(const ref_conv *c) { return (size_t)c->n * (size_t)c->cin * vol(c->in); }
size_t ref_conv_out_count(const ref_conv *c)
{
    return (size_t)c->n * (size_t)c->cout * vol(c->out);
}
size_t ref_conv_weight_count(const ref_conv *c)
{
    return (size_t)c->cin * (size_t)c->cout * vol(c->k);
}

enum { PASS_FWD, PASS_BWD_DATA, PASS_BWD_WEIGHTS };

/* PASS_FWD: out (y, zeroed) += a (x) * W; PASS_BWD_DATA: out (dx, zeroed)
 * += a (dy) * W; PASS_BWD_WEIGHTS: out (dW) += a (x) * b (dy). */
static void conv_core(const ref_conv *c, int pass, const double *a, const double *b,
                      const float *wt, int flip, double *out)
{
    const int *small = c->transposed ? c->in : c->out, *big = c->transposed ? c->out : c->in;
    const size_t taps = vol(c->k), sin = vol(c->in), sout = vol(c->out);
    for (int n = 0; n < c->n; n++)
        for (int s0 = 0; s0 < small[0]; s0++)
            for (int s1 = 0; s1 < small[1]; s1++)
                for (int s2 = 0; s2 < small[2]; s2++)
                    for (int t0 = 0; t0 < c->k[0]; t0++)
                        for (int t1 = 0; t1 < c->k[1]; t1++)
                            for (int t2 = 0; t2 < c->k[2]; t2++) {
                                const int b0 = s0 * c->stride[0] - c->pad[0] + t0;
                                const int b1 = s1 * c->stride[1] - c->pad[1] + t1;
                                const int b2 = s2 * c->stride[2] - c->pad[2] + t2;
                                if (b0 < 0 || b0 >= big[0] || b1 < 0 || b1 >= big[1] || b2 < 0 ||
                                    b2 >= big[2])
                                    continue;
                                const size_t ps = ((size_t)s0 * small[1] + s1) * small[2] + s2;
                                const size_t pb = ((size_t)b0 * big[1] + b1) * big[2] + b2;
                                const size_t pi = c->transposed ? ps : pb;
                                const size_t po = c->transposed ? pb : ps;
                                size_t t = ((size_t)t0 * c->k[1] + t1) * c->k[2] + t2;
                                if (flip) t = taps - 1 - t;
                                for (int ci = 0; ci < c->cin; ci++)
                                    for (int co = 0; co < c->cout; co++) {
                                        const size_t wi =
                                            (c->transposed ? (size_t)ci * c->cout + co
                                                           : (size_t)co * c->cin + ci) * taps + t;
                                        const size_t xi = ((size_t)n * c->cin + ci) * sin + pi;
                                        const size_t yi = ((size_t)n * c->cout + co) * sout + po;
                                        if (pass == PASS_FWD)
                                            out[yi] += a[xi] * (double)wt[wi];
                                        else if (pass == PASS_BWD_DATA)
                                            out[xi] += a[yi] * (double)wt[wi];
                                        else
                                            out[wi] += a[xi] * b[yi];
                                    }
                            }
}

static double *to_double(const float *p, size_t n)
{
    double *d = malloc((n ? n : 1) * sizeof *d);
    if (d)
        for (size_t i = 0; i < n; i++) d[i] = p[i];
    return d;
}

static void add_bias(const ref_conv *c, const float *b, double *y)
{
    const size_t s = vol(c->out);
    for (int n = 0; n < c->n; n++)
        for (int o = 0; o < c->cout; o++)
            for (size_t i = 0; i < s; i++) y[((size_t)n * c->cout + o) * s + i] += b[o];
}

void ref_conv_forward_d(const ref_conv *c, const double *x, const float *wt, const float *b,
                        double *y)
{
    memset(y, 0, ref_conv_out_count(c) * sizeof *y);
    conv_core(c, PASS_FWD, x, NULL, wt, 0, y);
    add_bias(c, b, y);
}

void ref_conv_forward(const ref_conv *c, const float *x, const float *wt, const float *b, int leaky,
                      int flip, double *y)
{
    double *xd = to_double(x, ref_conv_in_count(c));
    const size_t ny = ref_conv_out_count(c);
    memset(y, 0, ny * sizeof *y);
    if (!xd) {
        for (size_t i = 0; i < ny; i++) y[i] = NAN;
        return;
    }
    conv_core(c, PASS_FWD, xd, NULL, wt, flip, y);
    add_bias(c, b, y);
    if (leaky)
        for (size_t i = 0; i < ny; i++) y[i] = ref_lrelu(y[i]);
    free(xd);
}

void ref_conv_backward_data(const ref_conv *c, const float *dy, const float *wt, double *dx)
{
    double *dyd = to_double(dy, ref_conv_out_count(c));
    const size_t nx = ref_conv_in_count(c);
    memset(dx, 0, nx * sizeof *dx);
    if (!dyd) {
        for (size_t i = 0; i < nx; i++) dx[i] = NAN;
        return;
    }
    conv_core(c, PASS_BWD_DATA, dyd, NULL, wt, 0, dx);
    free(dyd);
}

void ref_conv_backward_weights(const ref_conv *c, const float *x, const float *dy,
                               const float *dw0, const float *db0, double *dw, double *db)
{
    double *xd = to_double(x, ref_conv_in_count(c)), *dyd = to_double(dy, ref_conv_out_count(c));
    const size_t nw = ref_conv_weight_count(c), s = vol(c->out);
    for (size_t i = 0; i < nw; i++) dw[i] = dw0[i];
    for (int o = 0; o < c->cout; o++) db[o] = db0[o];
    if (xd && dyd) {
        conv_core(c, PASS_BWD_WEIGHTS, xd, dyd, NULL, 0, dw);
        for (int n = 0; n < c->n; n++)
            for (int o = 0; o < c->cout; o++)
                for (size_t i = 0; i < s; i++) db[o] += dyd[((size_t)n * c->cout + o) * s + i];
    } else {
        for (size_t i = 0; i < nw; i++) dw[i] = NAN;
    }
    free(xd);
    free(dyd);
}

/* ---- pooling and upsampling ------------------------------------------------------ */

void ref_avgpool2(int planes, int sh, int sw, const double *big, double *small)
{
    const int bw = 2 * sw;
    for (int p = 0; p < planes; p++)
        for (int y = 0; y < sh; y++)
            for (int x = 0; x < sw; x++) {
                const double *b = big + ((size_t)p * 2 * sh + 2 * y) * bw + 2 * x;
                small[((size_t)p * sh + y) * sw + x] = (b[0] + b[1] + b[bw] + b[bw + 1]) / 4;
            }
}

void ref_upsample2(int planes, int sh, int sw, const double *small, double *big)
{
    const int bw = 2 * sw;
    for (int p = 0; p < planes; p++)
        for (int y = 0; y < 2 * sh; y++)
            for (int x = 0; x < bw; x++)
                big[((size_t)p * 2 * sh + y) * bw + x] =
                    small[((size_t)p * sh + y / 2) * sw + x / 2];
}

/* ---- the BCAE heads and loss ------------------------------------------------------ */

/* p = sigmoid(x), q = 1 - p, each as one quotient (no cancellation). */
static void sigmoid2(double x, double *p, double *q)
{
    *p = 1.0 / (1.0 + exp(-x));
    *q = 1.0 / (1.0 + exp(x));
}

/* The mask compares the probability as the heads output it: a float. */
static int mask_of(double p, float threshold) { return (float)p > threshold; }

void ref_heads(size_t count, const float *logit, const float *raw, float shift, float scale,
               float threshold, double *seg, double *reg, double *recon)
{
    for (size_t i = 0; i < count; i++) {
        double p, q;
        sigmoid2(logit[i], &p, &q);
        const double v = (double)shift + (double)scale * exp((double)raw[i]);
        seg[i] = p;
        reg[i] = v;
        recon[i] = mask_of(p, threshold) ? v : 0.0;
    }
}

static int clamp(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

void ref_loss_sums(int n, int c, int h, int w, const float *logit, const float *raw,
                   const float *target, int z_valid, float shift, float scale, float threshold,
                   float gamma, float eps, nn_loss_sums *out)
{
    const int zv = clamp(z_valid, 0, w);
    const double g = gamma, ep = eps;
    memset(out, 0, sizeof *out);
    for (size_t row = 0; row < (size_t)n * c * h; row++)
        for (int z = 0; z < zv; z++) {
            const size_t i = row * (size_t)w + (size_t)z;
            double p, q;
            sigmoid2(logit[i], &p, &q);
            const int m = mask_of(p, threshold), l = target[i] > 0;
            const double rec = m ? (double)shift + (double)scale * exp((double)raw[i]) : 0.0;
            const double d = rec - target[i];
            out->focal += l ? -pow(q + ep, g) * log2(p + ep) : -pow(p + ep, g) * log2(q + ep);
            out->l1 += fabs(d);
            out->sq += d * d;
            out->voxels += 1;
            out->pos += m;
            out->truth += l;
            out->true_pos += m && l;
        }
}

void ref_loss_backward(int n, int c, int h, int w, const float *logit, const float *raw,
                       const float *target, int z_valid, float shift, float scale,
                       float threshold, float gamma, float eps, float coef, double *dlogit,
                       double *draw)
{
    const int zv = clamp(z_valid, 0, w);
    const double g = gamma, ep = eps, ln2 = log(2.0);
    const double voxels = (double)n * c * h * zv, inv_v = voxels > 0 ? 1.0 / voxels : 0.0;
    for (size_t row = 0; row < (size_t)n * c * h; row++)
        for (int z = 0; z < w; z++) {
            const size_t i = row * (size_t)w + (size_t)z;
            dlogit[i] = draw[i] = 0.0;
            if (z >= zv) continue;
            double p, q;
            sigmoid2(logit[i], &p, &q);
            const int m = mask_of(p, threshold), l = target[i] > 0;
            /* d/dp of -(1 - p + eps)^g log2(p + eps) (l = 1) and of
             * -(p + eps)^g log2(1 - p + eps) (l = 0); dp/dx = p q. */
            const double a = q + ep, b = p + ep;
            const double dfdp = l ? g * pow(a, g - 1) * log2(b) - pow(a, g) / (b * ln2)
                                  : -g * pow(b, g - 1) * log2(a) + pow(b, g) / (a * ln2);
            dlogit[i] = (double)coef * inv_v * dfdp * p * q;
            if (m) {
                const double ex = (double)scale * exp((double)raw[i]);
                const double d = (double)shift + ex - target[i];
                draw[i] = (d > 0 ? 1.0 : d < 0 ? -1.0 : 0.0) * ex * inv_v;
            }
        }
}

/* ---- InstanceNorm ------------------------------------------------------------------ */

static void plane_stats(size_t S, const float *x, float eps, double *mean, double *rstd)
{
    double s = 0, v = 0;
    for (size_t i = 0; i < S; i++) s += x[i];
    *mean = s / (double)S;
    for (size_t i = 0; i < S; i++) v += (x[i] - *mean) * (x[i] - *mean);
    *rstd = 1.0 / sqrt(v / (double)S + (double)eps);
}

void ref_instance_norm(size_t planes, size_t S, const float *x, float eps, double *y,
                       double *mean, double *rstd)
{
    for (size_t p = 0; p < planes; p++) {
        plane_stats(S, x + p * S, eps, &mean[p], &rstd[p]);
        for (size_t i = 0; i < S; i++) y[p * S + i] = (x[p * S + i] - mean[p]) * rstd[p];
    }
}

void ref_instance_norm_backward(size_t planes, size_t S, const float *x, const float *dy,
                                float eps, double *dx)
{
    for (size_t p = 0; p < planes; p++) {
        double mean, rstd, sg = 0, sgy = 0;
        const float *xp = x + p * S, *g = dy + p * S;
        plane_stats(S, xp, eps, &mean, &rstd);
        for (size_t i = 0; i < S; i++) {
            sg += g[i];
            sgy += g[i] * (xp[i] - mean) * rstd;
        }
        for (size_t i = 0; i < S; i++)
            dx[p * S + i] =
                rstd * (g[i] - sg / (double)S - (xp[i] - mean) * rstd * sgy / (double)S);
    }
}

/* ---- AdamW ------------------------------------------------------------------------- */

void ref_adamw(const nn_adamw_hparams *h, size_t n, const float *w, const float *g,
               const float *m, const float *v, double *w_out, double *m_out, double *v_out)
{
    const double lr = h->lr, b1 = h->beta1, b2 = h->beta2, eps = h->eps, wd = h->weight_decay;
    const double bc1 = 1.0 - pow(b1, (double)h->step), bc2 = 1.0 - pow(b2, (double)h->step);
    for (size_t i = 0; i < n; i++) {
        const double mi = b1 * m[i] + (1.0 - b1) * g[i];
        const double vi = b2 * v[i] + (1.0 - b2) * (double)g[i] * g[i];
        w_out[i] = w[i] * (1.0 - lr * wd) - lr / bc1 * mi / (sqrt(vi) / sqrt(bc2) + eps);
        m_out[i] = mi;
        v_out[i] = vi;
    }
}

/* ---- chains ------------------------------------------------------------------------ */

/* y = lrelu(alpha * main + side), element-wise, into main. */
static void rezero_into(size_t n, double alpha, double *main, const double *side)
{
    for (size_t i = 0; i < n; i++) main[i] = ref_lrelu(alpha * main[i] + side[i]);
}

static void lrelu_all(size_t n, double *v)
{
    for (size_t i = 0; i < n; i++) v[i] = ref_lrelu(v[i]);
}

size_t ref_chain(const nn_chain_desc *d, const float *x, double **out, int out_dims[3])
{
    int c = d->c, h = d->h, w = d->w;
    double *cur = to_double(x, (size_t)d->n * c * h * w);
    *out = NULL;
    if (!cur) return 0;
    for (int i = 0; i < d->nlayers; i++) {
        const nn_layer *l = &d->layers[i];
        const size_t n_in = (size_t)d->n * c * h * w;
        double *next = NULL;
        if (l->kind == NN_LAYER_POOL2) {
            next = malloc(n_in / 4 * sizeof *next);
            if (next) ref_avgpool2(d->n * c, h / 2, w / 2, cur, next);
            h /= 2, w /= 2;
        } else if (l->kind == NN_LAYER_CONV) {
            ref_conv cv = ref_conv2d(d->n, c, l->cout, h, w, l->k, 1, l->pad);
            next = malloc(ref_conv_out_count(&cv) * sizeof *next);
            if (next) ref_conv_forward_d(&cv, cur, l->w, l->b, next);
            c = l->cout, h = cv.out[1], w = cv.out[2];
        } else { /* residual: a1 = lrelu(conv1(x)), y = lrelu(alpha conv2(a1) + x) */
            ref_conv cv = ref_conv2d(d->n, c, c, h, w, l->k, 1, l->pad);
            double *a1 = malloc(n_in * sizeof *a1);
            next = malloc(n_in * sizeof *next);
            if (a1 && next) {
                ref_conv_forward_d(&cv, cur, l->w, l->b, a1);
                lrelu_all(n_in, a1);
                ref_conv_forward_d(&cv, a1, l->w2, l->b2, next);
                rezero_into(n_in, l->alpha, next, cur);
            }
            free(a1);
        }
        free(cur);
        cur = next;
        if (!cur) return 0;
    }
    out_dims[0] = c, out_dims[1] = h, out_dims[2] = w;
    *out = cur;
    return (size_t)d->n * c * h * w;
}

/* One 3D block (SPEC section 3): main = conv3(lrelu(conv0(x))), side =
 * lrelu(conv0'(x)), y = lrelu(alpha main + side). conv0 / conv0' strided
 * (encoder) or transposed (decoder) k (3,4,4), s (1,2,2), p 1; conv3 k3 p1.
 * dims (c, d, h, w) in and out. Returns the new activation or NULL. */
static double *block3d(int n, const nn_block3d *b, int transposed, const double *x, int dims[4])
{
    nn_conv3d_desc d0 = {n, b->cin, b->cout, dims[1], dims[2], dims[3], {3, 4, 4}, {1, 2, 2},
                         {1, 1, 1}, transposed, NN_CONV3D_AUTO};
    ref_conv c0 = ref_conv3d(&d0);
    nn_conv3d_desc d3 = {n, b->cout, b->cout, c0.out[0], c0.out[1], c0.out[2], {3, 3, 3},
                         {1, 1, 1}, {1, 1, 1}, 0, NN_CONV3D_AUTO};
    ref_conv c3 = ref_conv3d(&d3);
    const size_t no = ref_conv_out_count(&c0);
    double *m1 = malloc(no * sizeof *m1), *side = malloc(no * sizeof *side);
    double *y = malloc(no * sizeof *y);
    if (m1 && side && y) {
        ref_conv_forward_d(&c0, x, b->w0, b->b0, m1);
        lrelu_all(no, m1);
        ref_conv_forward_d(&c0, x, b->ws, b->bs, side);
        lrelu_all(no, side);
        ref_conv_forward_d(&c3, m1, b->w3, b->b3, y);
        rezero_into(no, b->alpha, y, side);
    } else {
        free(y);
        y = NULL;
    }
    free(m1);
    free(side);
    dims[0] = b->cout, dims[1] = c0.out[0], dims[2] = c0.out[1], dims[3] = c0.out[2];
    return y;
}

/* blocks, then the output Conv3d(k3, p1) without activation. */
static size_t net3d(int n, const nn_block3d *blocks, int nblocks, int transposed, int out_cin,
                    int out_cout, const float *w_out, const float *b_out, double *x, int dims[4],
                    double **out)
{
    *out = NULL;
    for (int i = 0; i < nblocks && x; i++) {
        double *next = block3d(n, &blocks[i], transposed, x, dims);
        free(x);
        x = next;
    }
    if (!x) return 0;
    nn_conv3d_desc dd = {n, out_cin, out_cout, dims[1], dims[2], dims[3], {3, 3, 3}, {1, 1, 1},
                         {1, 1, 1}, 0, NN_CONV3D_AUTO};
    ref_conv co = ref_conv3d(&dd);
    double *y = malloc(ref_conv_out_count(&co) * sizeof *y);
    if (y) ref_conv_forward_d(&co, x, w_out, b_out, y);
    free(x);
    if (!y) return 0;
    dims[0] = out_cout;
    *out = y;
    return ref_conv_out_count(&co);
}

size_t ref_chain3d(const nn_chain3d_desc *d, const float *x, double **out, int out_dims[4])
{
    out_dims[0] = 1, out_dims[1] = d->d, out_dims[2] = d->h, out_dims[3] = d->w;
    double *xd = to_double(x, (size_t)d->n * d->d * d->h * d->w);
    if (!xd) return 0;
    return net3d(d->n, d->blocks, d->nblocks, 0, d->out_cin, d->out_cout, d->w_out, d->b_out, xd,
                 out_dims, out);
}

size_t ref_dechain3d(const nn_dechain3d_desc *d, int head, const float *code, double **out,
                     int out_dims[4])
{
    const nn_dechain3d_head *hd = &d->heads[head];
    out_dims[0] = d->c, out_dims[1] = d->d, out_dims[2] = d->h, out_dims[3] = d->w;
    double *xd = to_double(code, (size_t)d->n * d->c * d->d * d->h * d->w);
    if (!xd) return 0;
    return net3d(d->n, hd->blocks, hd->nblocks, 1, hd->out_cin, hd->out_cout, hd->w_out,
                 hd->b_out, xd, out_dims, out);
}
