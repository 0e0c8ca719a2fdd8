/*
 * One training step (SPEC section 4), the same for the trainer and for
 * `bcae bench --train`: forward through the runner, the loss sums, the
 * dynamic coefficient of this very batch, the backward pass, AdamW and the
 * weights pushed back into the runner. The batch is already in the
 * runner's input.
 *
 * Data-parallel (comm of several ranks, docs/TRAINING.md): each rank's
 * runner holds its share of the global batch. The loss sums are summed over
 * the ranks before the losses and the coefficient are formed, and each
 * rank's gradient (of its share's mean) is weighted by its share of the
 * voxels and summed with one allreduce over the flat gradient buffer, so
 * every rank takes the AdamW step one process would take on the whole
 * batch (up to the order of float sums) and the replicas stay identical.
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
    const bcae_comm *comm; /* NULL: one process */
    double comm_seconds;   /* the last step's time in collectives */
} train_step;

typedef struct train_step_result {
    nn_loss_sums sums;
    double loss, loss_seg, loss_reg;
} train_step_result;

/* Allocates grad, m and v (zeroed) for the model. */
bcae_status train_step_init(train_step *t, bcae_model *model, model_runner *runner, int threads,
                            const bcae_comm *comm, bcae_error *err);
void train_step_free(train_step *t);

/* One step at learning rate lr. A non-finite loss stops before the weights
 * change (BCAE_ERR_RANGE). `loaded` is the status of putting this rank's
 * share of the batch into the runner: a rank that failed there still takes
 * part in the step's first collective, so that every rank stops together
 * (collective: every rank of t->comm calls it). */
bcae_status train_step_run(train_step *t, float lr, bcae_status loaded, train_step_result *res,
                           bcae_error *err);

/* Collective: sums *ls over the ranks of comm together with each rank's
 * status, so that a failure on one rank fails every rank ("rank R failed"
 * on the others). One process: returns local unchanged. */
bcae_status train_reduce_sums(const bcae_comm *comm, nn_loss_sums *ls, bcae_status local,
                              bcae_error *err);

#endif
