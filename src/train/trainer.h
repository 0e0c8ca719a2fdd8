/*
 * Training BCAE-2D or a 3D model (SPEC section 4): batches from a dataset, the focal and
 * masked-L1 losses with the dynamic coefficient, AdamW, the step schedule,
 * per-epoch validation, a CSV log, and checkpoints that resume to the
 * identical trajectory (same data order, same optimizer state, same
 * coefficient; bit-identical for the same thread count).
 */
#ifndef BCAE_TRAIN_TRAINER_H
#define BCAE_TRAIN_TRAINER_H

#include <stdint.h>

#include "model/bcae2d.h"
#include "model/bcae3d.h"

typedef struct bcae_train_config {
    const char *data_dir;
    bcae2d_config model;
    int is3d;              /* train model3d (BCAE++, BCAE-HT, BCAE) instead of model */
    bcae3d_config model3d;
    int num_epochs, num_warmup_epochs, sched_steps;
    float sched_gamma;
    int batch_size;
    float learning_rate;
    long batches_per_epoch;            /* 0: all full batches of the train split */
    long validation_batches_per_epoch; /* batches of the test split, 0: none */
    uint64_t seed;
    int shuffle;
    int threads;
    float clf_bias_init; /* probability p: classifier output bias = logit(p); <= 0: default init */
    const char *init;    /* weights to start from, or NULL */
    const char *out;     /* the trained model, rewritten after every epoch */
    const char *log_path;        /* CSV, one row per step, or NULL */
    const char *checkpoint_path; /* NULL: OUT.ckpt */
    long checkpoint_every;       /* steps; 0: only at the end of each epoch */
    const char *resume;          /* checkpoint to continue from, or NULL */
    long max_steps;              /* stop (with a checkpoint) once the run reaches this
                                    global step; 0: run all epochs */
    bcae_device device;          /* zero = AUTO */
} bcae_train_config;

void bcae_train_config_default(bcae_train_config *c);

typedef struct bcae_train_progress {
    int validation;     /* 0 while training, 1 during validation */
    int epoch;          /* 0-based */
    long step;          /* global training step, 1-based */
    long batch, batches; /* within this epoch / phase */
    double loss, loss_seg, loss_reg, coef, lr;
    double precision, recall; /* running over the epoch / phase */
    double mae;              /* validation: mean |recon - x| */
    double step_seconds;
    int epoch_done; /* set once at the end of each phase */
} bcae_train_progress;

typedef void (*bcae_train_callback)(void *ctx, const bcae_train_progress *p);

bcae_status bcae_train(const bcae_train_config *cfg, bcae_train_callback cb, void *ctx,
                       bcae_error *err);

#endif
