/* The trainer's view of a model: a switch over BCAE-2D and the 3D models. */
#include "train/train_model.h"

#include <stdio.h>
#include <string.h>

#include "codec/codec3d.h"
#include "core/error.h"

static void bind(train_model *t)
{
    t->weights = t->is3d ? t->m3.weights : t->m2.weights;
    t->nfloats = t->is3d ? t->m3.nfloats : t->m2.nfloats;
    t->nparams = t->is3d ? t->m3.nparams : t->m2.nparams;
}

bcae_status train_model_create2d(train_model *t, const bcae2d_config *cfg, bcae_error *err)
{
    memset(t, 0, sizeof *t);
    bcae_status s = bcae2d_create(cfg, &t->m2, err);
    if (!s) bind(t);
    return s;
}

bcae_status train_model_create3d(train_model *t, const bcae3d_config *cfg, bcae_error *err)
{
    memset(t, 0, sizeof *t);
    t->is3d = 1;
    bcae_status s = bcae3d_create(cfg, &t->m3, err);
    if (!s) bind(t);
    return s;
}

void train_model_destroy(train_model *t)
{
    bcae2d_runner_destroy(t->r2);
    bcae3d_runner_destroy(t->r3);
    if (t->is3d) bcae3d_destroy(&t->m3);
    else bcae2d_destroy(&t->m2);
    memset(t, 0, sizeof *t);
}

train_param train_model_param(const train_model *t, int i)
{
    train_param p;
    if (t->is3d) {
        const bcae3d_param *q = &t->m3.params[i];
        p = (train_param){q->name, q->offset, q->count, q->ndim, q->shape};
    } else {
        const bcae_param *q = &t->m2.params[i];
        p = (train_param){q->name, q->offset, q->count, q->ndim, q->shape};
    }
    return p;
}

int train_model_find(const train_model *t, const char *name)
{
    return t->is3d ? bcae3d_find(&t->m3, name) : bcae2d_find(&t->m2, name);
}

void train_model_init(train_model *t, uint64_t seed)
{
    if (t->is3d) bcae3d_init(&t->m3, seed);
    else bcae2d_init(&t->m2, seed);
}

int train_model_clf_bias(const train_model *t)
{
    if (!t->is3d) return bcae2d_find(&t->m2, "decoder.decoder_clf.output_layer.bias");
    return bcae3d_find(&t->m3, t->m3.cfg.arch == BCAE3D_ORIGINAL
                                   ? "decoder.decoder_c.layers.decoder_output.0.bias"
                                   : "decoder.decoder_clf.layers.decoder_output.0.bias");
}

bcae_status train_model_load_weights_into(train_model *t, const char *path, bcae_error *err)
{
    return t->is3d ? bcae3d_load_weights_into(path, &t->m3, err)
                   : bcae2d_load_weights_into(path, &t->m2, err);
}

bcae_status train_model_save(const train_model *t, const char *path, bcae_error *err)
{
    return t->is3d ? bcae3d_save(path, &t->m3, err) : bcae2d_save(path, &t->m2, err);
}

int train_model_metadata(const train_model *t, const char **keys, const char **values,
                         char bufs[8][64])
{
    if (t->is3d) return bcae3d_metadata(&t->m3, keys, values, bufs[0], bufs[1]);
    const bcae2d_config *c = &t->m2.cfg;
    snprintf(bufs[0], 64, "%d", c->m);
    snprintf(bufs[1], 64, "%d", c->n);
    snprintf(bufs[2], 64, "%d", c->d);
    snprintf(bufs[3], 64, "%g", (double)c->clf_threshold);
    const char *k[] = {"arch", "m", "n", "d", "log", "transform", "clf_threshold"};
    const char *v[] = {"bcae-2d", bufs[0], bufs[1], bufs[2], "1", "1", bufs[3]};
    for (int i = 0; i < 7; i++) {
        keys[i] = k[i];
        values[i] = v[i];
    }
    return 7;
}

size_t train_model_input_floats(const train_model *t)
{
    return t->is3d ? bcae3d_input_floats(&t->m3) : BCAE_MODEL_VOXELS;
}

void train_model_wedge_to_input(const train_model *t, const uint16_t *adc, float *x)
{
    if (t->is3d) bcae3d_wedge_to_input(&t->m3, adc, x);
    else bcae_wedge_to_model(adc, x);
}

bcae_status train_model_runner(train_model *t, nn_engine *e, int batch, bcae_error *err)
{
    return t->is3d ? bcae3d_runner_create(e, &t->m3, batch, 1, NN_CONV3D_AUTO, &t->r3, err)
                   : bcae2d_runner_create(e, &t->m2, batch, 1, &t->r2, err);
}

nn_tensor train_model_input(train_model *t)
{
    return t->is3d ? nn_tensor5_flat(bcae3d_runner_input(t->r3)) : *bcae2d_runner_input(t->r2);
}

void train_model_forward(train_model *t)
{
    if (t->is3d) {
        bcae3d_runner_encode(t->r3);
        bcae3d_runner_decode(t->r3);
    } else {
        bcae2d_runner_encode(t->r2);
        bcae2d_runner_decode(t->r2);
    }
}

void train_model_loss_sums(train_model *t, nn_loss_sums *out)
{
    if (t->is3d) bcae3d_runner_loss_sums(t->r3, out);
    else bcae2d_runner_loss_sums(t->r2, out);
}

void train_model_backward(train_model *t, float coef, float *grad)
{
    if (t->is3d) bcae3d_runner_backward(t->r3, coef, grad);
    else bcae2d_runner_backward(t->r2, coef, grad);
}

void train_model_sync(train_model *t)
{
    if (t->is3d) bcae3d_runner_sync_weights(t->r3);
    else bcae2d_runner_sync_weights(t->r2);
}
