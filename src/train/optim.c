#include "train/optim.h"

#include <math.h>
#include <omp.h>

void adamw_config_default(adamw_config *c)
{
    c->lr = 1e-3f;
    c->beta1 = 0.9f;
    c->beta2 = 0.999f;
    c->eps = 1e-8f;
    c->weight_decay = 0.01f;
}

void adamw_step(const adamw_config *c, float lr, long t, float *w, const float *g, float *m,
                float *v, size_t n, int threads)
{
    /* The order of operations follows PyTorch's single-tensor AdamW so that
     * float32 results agree step by step: decay, moments, bias-corrected
     * update with eps added after the square root. */
    const float b1 = c->beta1, b2 = c->beta2;
    const float bc1 = 1.0f - powf(b1, (float)t);
    const float bc2_sqrt = sqrtf(1.0f - powf(b2, (float)t));
    const float step = lr / bc1;
    const float decay = 1.0f - lr * c->weight_decay;
    int nt = threads > 0 ? threads : omp_get_max_threads();
#pragma omp parallel for schedule(static) num_threads(nt)
    for (size_t i = 0; i < n; i++) {
        float wi = w[i] * decay;
        float mi = m[i] * b1 + (1.0f - b1) * g[i];
        float vi = v[i] * b2 + (1.0f - b2) * g[i] * g[i];
        float denom = sqrtf(vi) / bc2_sqrt + c->eps;
        w[i] = wi - step * (mi / denom);
        m[i] = mi;
        v[i] = vi;
    }
}

float lr_schedule(float lr0, int epoch, int warmup, int step, float gamma)
{
    if (epoch < warmup || step <= 0) return lr0;
    int decays = (epoch - warmup) / step + 1;
    return lr0 * powf(gamma, (float)decays);
}

double train_coef_update(double coef, double l_reg, double l_seg)
{
    return isfinite(l_seg) ? (0.5 * coef + l_reg / l_seg) / 1.5 : TRAIN_COEF0;
}
