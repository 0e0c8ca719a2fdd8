/* AdamW (as torch.optim.AdamW computes it) and the step learning-rate schedule. */
#ifndef BCAE_TRAIN_OPTIM_H
#define BCAE_TRAIN_OPTIM_H

#include <stddef.h>

typedef struct adamw_config {
    float lr, beta1, beta2, eps, weight_decay;
} adamw_config;

/* SPEC section 4: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight decay 0.01. */
void adamw_config_default(adamw_config *c);

/* One step t (1-based) over n parameters: w, their gradient g and the
 * moments m, v (zero before the first step), with learning rate lr. */
void adamw_step(const adamw_config *c, float lr, long t, float *w, const float *g, float *m,
                float *v, size_t n, int threads);

/* Learning rate for 0-based epoch e: lr0 for e < warmup, then multiplied by
 * gamma at epochs warmup, warmup + step, ... (torch MultiStepLR with
 * milestones range(warmup, epochs, step), stepped once per epoch). */
float lr_schedule(float lr0, int epoch, int warmup, int step, float gamma);

/* SPEC section 4's dynamic coefficient of the segmentation loss: starts at
 * TRAIN_COEF0; each batch, before the total is formed,
 * c <- (0.5 c + L_reg / L_seg) / 1.5, reset to TRAIN_COEF0 when L_seg is not
 * finite. One rule for `bcae train` and the benches' training steps. */
#define TRAIN_COEF0 2000.0
double train_coef_update(double coef, double l_reg, double l_seg);

#endif
