/*
 * InstanceNorm3d without affine parameters (the original BCAE), forward and
 * backward, on the blocked layout of cpu_internal.h.
 *
 * A 5D tensor (n, c, d, h, w) is stored as (n, c / B, S, B) with S = d*h*w:
 * one task per (n, channel block) walks S pixels of B adjacent channels, so
 * the B per-channel sums are B lanes of the innermost loop. Sums are double,
 * accumulated in a fixed order within a task, so results do not depend on
 * the thread count.
 *
 *   forward:  mean, var (biased) over S;  y = (x - mean) * rstd,
 *             rstd = 1 / sqrt(var + eps)  (two passes: no cancellation)
 *   backward: dx = rstd * (dy - mean(dy) - y * mean(dy * y))
 *             (y is x-hat; the exact gradient of the normalisation)
 */
#include <math.h>
#include <stddef.h>

#include "core/error.h"
#include "nn/cpu/cpu_internal.h"

enum { NORM_MAX_BLOCK = 16 };

static int same5(const nn_tensor5 *a, const nn_tensor5 *b)
{
    return a->n == b->n && a->c == b->c && a->d == b->d && a->h == b->h && a->w == b->w;
}

/* Both tensors of one shape, else an error (the kernels would run off one). */
static bcae_status check_same5(nn_engine *e, const char *op, const nn_tensor5 *a,
                               const nn_tensor5 *b)
{
    if (same5(a, b)) return BCAE_OK;
    return bcae_fail(&e->last_error, BCAE_ERR_SHAPE,
                     "%s: tensors of shapes %dx%dx%dx%dx%d and %dx%dx%dx%dx%d", op, a->n, a->c,
                     a->d, a->h, a->w, b->n, b->c, b->d, b->h, b->w);
}

bcae_status cpu_instance_norm_forward(nn_engine *e, const nn_tensor5 *x, nn_tensor5 *y, float eps,
                                      float *stats)
{
    bcae_status st = check_same5(e, "instance_norm_forward", x, y);
    if (st != BCAE_OK) return st;
    const int b = cpu_block(x->c), cb_count = x->c / b;
    const size_t S = (size_t)x->d * (size_t)x->h * (size_t)x->w;
#pragma omp parallel for collapse(2) schedule(static) num_threads(cpu_threads(e))
    for (int n = 0; n < x->n; n++)
        for (int cb = 0; cb < cb_count; cb++) {
            const size_t base = ((size_t)n * (size_t)cb_count + (size_t)cb) * S * (size_t)b;
            const float *xv = x->data + base;
            float *yv = y->data + base;
            double sum[NORM_MAX_BLOCK] = {0}, sq[NORM_MAX_BLOCK] = {0};
            double mean[NORM_MAX_BLOCK], rstd[NORM_MAX_BLOCK];
            for (size_t s = 0; s < S; s++)
                for (int l = 0; l < b; l++) sum[l] += xv[s * (size_t)b + (size_t)l];
            for (int l = 0; l < b; l++) mean[l] = sum[l] / (double)S;
            for (size_t s = 0; s < S; s++)
                for (int l = 0; l < b; l++) {
                    double t = xv[s * (size_t)b + (size_t)l] - mean[l];
                    sq[l] += t * t;
                }
            for (int l = 0; l < b; l++) {
                rstd[l] = 1.0 / sqrt(sq[l] / (double)S + (double)eps);
                size_t k = ((size_t)n * (size_t)x->c + (size_t)cb * (size_t)b + (size_t)l) * 2;
                stats[k] = (float)mean[l];
                stats[k + 1] = (float)rstd[l];
            }
            for (size_t s = 0; s < S; s++)
                for (int l = 0; l < b; l++) {
                    size_t i = s * (size_t)b + (size_t)l;
                    yv[i] = (float)((xv[i] - mean[l]) * rstd[l]);
                }
        }
    return BCAE_OK;
}

bcae_status cpu_instance_norm_backward(nn_engine *e, const nn_tensor5 *y, const float *stats,
                                       const nn_tensor5 *dy, nn_tensor5 *dx)
{
    bcae_status st = check_same5(e, "instance_norm_backward", y, dy);
    if (st == BCAE_OK) st = check_same5(e, "instance_norm_backward", y, dx);
    if (st != BCAE_OK) return st;
    const int b = cpu_block(y->c), cb_count = y->c / b;
    const size_t S = (size_t)y->d * (size_t)y->h * (size_t)y->w;
#pragma omp parallel for collapse(2) schedule(static) num_threads(cpu_threads(e))
    for (int n = 0; n < y->n; n++)
        for (int cb = 0; cb < cb_count; cb++) {
            const size_t base = ((size_t)n * (size_t)cb_count + (size_t)cb) * S * (size_t)b;
            const float *yv = y->data + base, *g = dy->data + base;
            float *out = dx->data + base;
            double sg[NORM_MAX_BLOCK] = {0}, sgy[NORM_MAX_BLOCK] = {0};
            double mg[NORM_MAX_BLOCK], mgy[NORM_MAX_BLOCK], rstd[NORM_MAX_BLOCK];
            for (size_t s = 0; s < S; s++)
                for (int l = 0; l < b; l++) {
                    size_t i = s * (size_t)b + (size_t)l;
                    sg[l] += g[i];
                    sgy[l] += (double)g[i] * yv[i];
                }
            for (int l = 0; l < b; l++) {
                mg[l] = sg[l] / (double)S;
                mgy[l] = sgy[l] / (double)S;
                rstd[l] = stats[((size_t)n * (size_t)y->c + (size_t)cb * (size_t)b + (size_t)l) * 2 + 1];
            }
            for (size_t s = 0; s < S; s++)
                for (int l = 0; l < b; l++) {
                    size_t i = s * (size_t)b + (size_t)l;
                    out[i] = (float)(rstd[l] * (g[i] - mg[l] - yv[i] * mgy[l]));
                }
        }
    return BCAE_OK;
}
