/*
 * One training step (SPEC section 4), the same for the trainer and for
 * `bcae bench --train`: forward through the runner, the loss sums, the
 * dynamic coefficient of this very batch, the backward pass, AdamW and the
 * weights pushed back into the runner. The batch is already in the
 * runner's input.
 */
#ifndef BCAE_TRAIN_TRAIN_STEP_H
#define BCAE_TRAIN_TRAIN_STEP_H

#include "model/model.h"
#include "train/optim.h"

typedef struct train_step {
    model_runner *runner; /* a training runner of model */
    bcae_model *model;
    float *grad, *m, *v;  /* model->t.nfloats each: gradient and AdamW moments */
    adamw_config opt;
    long step;            /* steps taken */
    double coef;          /* the dynamic coefficient (TRAIN_COEF0 at the start) */
    int threads;
} train_step;

typedef struct train_step_result {
    nn_loss_sums sums;
    double loss, loss_seg, loss_reg;
} train_step_result;

/* Allocates grad, m and v (zeroed) for the model. */
bcae_status train_step_init(train_step *t, bcae_model *model, model_runner *runner, int threads,
                            bcae_error *err);
void train_step_free(train_step *t);

/* One step at learning rate lr. A non-finite loss stops before the weights
 * change (BCAE_ERR_RANGE). */
bcae_status train_step_run(train_step *t, float lr, train_step_result *res, bcae_error *err);

#endif
