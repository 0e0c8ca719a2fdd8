/*
 * AdamW on the CPU backend's (host) buffers. The arithmetic is
 * src/train/optim.c's adamw_step, operation for operation, so that a
 * trainer moving to the engine op gets bit-identical weights
 * (tests/test_backend_ops.c compares the two bit for bit). Element-wise, so
 * the result does not depend on the thread count.
 */
#include <math.h>

#include "core/error.h"
#include "nn/cpu/cpu_internal.h"

bcae_status cpu_adamw_step(nn_engine *e, const nn_adamw_hparams *h, float *w, const float *g,
                           float *m, float *v, size_t n)
{
    if (h->step < 1)
        return bcae_fail(&e->last_error, BCAE_ERR_INVALID_ARGUMENT,
                         "adamw_step: step %ld (steps count from 1)", h->step);
    /* The order of operations follows PyTorch's single-tensor AdamW so that
     * float32 results agree step by step: decay, moments, bias-corrected
     * update with eps added after the square root. */
    const float lr = h->lr, b1 = h->beta1, b2 = h->beta2, eps = h->eps;
    const float bc1 = 1.0f - powf(b1, (float)h->step);
    const float bc2_sqrt = sqrtf(1.0f - powf(b2, (float)h->step));
    const float step = lr / bc1;
    const float decay = 1.0f - lr * h->weight_decay;
#pragma omp parallel for schedule(static) num_threads(cpu_threads(e))
    for (size_t i = 0; i < n; i++) {
        float wi = w[i] * decay;
        float mi = m[i] * b1 + (1.0f - b1) * g[i];
        float vi = v[i] * b2 + (1.0f - b2) * g[i] * g[i];
        float denom = sqrtf(vi) / bc2_sqrt + eps;
        w[i] = wi - step * (mi / denom);
        m[i] = mi;
        v[i] = vi;
    }
    return BCAE_OK;
}
