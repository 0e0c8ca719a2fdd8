/*
 * What the trainer needs of a model, for BCAE-2D and the 3D models alike:
 * the parameter table, the input layout, the runner's passes and the
 * weights file's metadata. A thin switch over bcae2d / bcae3d (the losses,
 * AdamW and the schedule do not depend on the architecture).
 */
#ifndef BCAE_TRAIN_TRAIN_MODEL_H
#define BCAE_TRAIN_TRAIN_MODEL_H

#include "model/bcae2d.h"
#include "model/bcae3d.h"
#include "model/runner.h"
#include "model/runner3d.h"

typedef struct train_model {
    int is3d;
    bcae2d_model m2;
    bcae3d_model m3;
    bcae2d_runner *r2;
    bcae3d_runner *r3;
    float *weights; /* the model's buffer */
    size_t nfloats;
    int nparams;
} train_model;

typedef struct train_param {
    const char *name;
    size_t offset, count;
    int ndim;
    const size_t *shape;
} train_param;

/* A fresh model (zero weights) of either kind. */
bcae_status train_model_create2d(train_model *t, const bcae2d_config *cfg, bcae_error *err);
bcae_status train_model_create3d(train_model *t, const bcae3d_config *cfg, bcae_error *err);
void train_model_destroy(train_model *t);

train_param train_model_param(const train_model *t, int i);
int train_model_find(const train_model *t, const char *name);
void train_model_init(train_model *t, uint64_t seed);
/* The classifier head's output bias parameter, -1 if none. */
int train_model_clf_bias(const train_model *t);
bcae_status train_model_load_weights_into(train_model *t, const char *path, bcae_error *err);
bcae_status train_model_save(const train_model *t, const char *path, bcae_error *err);
/* The weights file's metadata (at most 8 pairs); bufs holds the values' text. */
int train_model_metadata(const train_model *t, const char **keys, const char **values,
                         char bufs[8][64]);

/* Input floats of one wedge and its preparation from raw ADC. */
size_t train_model_input_floats(const train_model *t);
void train_model_wedge_to_input(const train_model *t, const uint16_t *adc, float *x);

bcae_status train_model_runner(train_model *t, nn_engine *e, int batch, bcae_error *err);
nn_tensor train_model_input(train_model *t); /* the runner's input, flattened */
void train_model_forward(train_model *t);    /* encode + decode */
void train_model_loss_sums(train_model *t, nn_loss_sums *out);
void train_model_backward(train_model *t, float coef, float *grad);
void train_model_sync(train_model *t);

#endif
