/* One training step (see train_step.h). */
#include "train/train_step.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

bcae_status train_step_init(train_step *t, bcae_model *model, model_runner *runner, int threads,
                            bcae_error *err)
{
    memset(t, 0, sizeof *t);
    t->model = model;
    t->runner = runner;
    t->threads = threads;
    t->coef = TRAIN_COEF0;
    adamw_config_default(&t->opt);
    size_t nf = model->t.nfloats;
    t->grad = calloc(nf, sizeof(float));
    t->m = calloc(nf, sizeof(float));
    t->v = calloc(nf, sizeof(float));
    if (!t->grad || !t->m || !t->v) {
        train_step_free(t);
        return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "train: out of memory");
    }
    return BCAE_OK;
}

void train_step_free(train_step *t)
{
    free(t->grad);
    free(t->m);
    free(t->v);
    t->grad = t->m = t->v = NULL;
}

bcae_status train_step_run(train_step *t, float lr, train_step_result *res, bcae_error *err)
{
    model_runner *r = t->runner;
    bcae_status s = r->ops->encode(r, err);
    if (!s) s = r->ops->decode(r, err);
    if (!s) s = r->ops->loss_sums(r, &res->sums, err);
    if (s) return s;
    res->loss_seg = res->sums.focal / res->sums.voxels;
    res->loss_reg = res->sums.l1 / res->sums.voxels;
    /* The coefficient follows the losses of this very batch, before the
     * total is formed (the reference code's per-batch rule). */
    double coef = train_coef_update(t->coef, res->loss_reg, res->loss_seg);
    res->loss = res->loss_reg + coef * res->loss_seg;
    if (!isfinite(res->loss))
        return bcae_fail(err, BCAE_ERR_RANGE,
                         "train: the loss became %g at step %ld; lower the learning rate or "
                         "resume from an earlier checkpoint",
                         res->loss, t->step + 1);
    t->coef = coef;
    s = r->ops->backward(r, (float)coef, t->grad, err);
    if (s) return s;
    t->step++;
    /* The optimizer runs where the parameters live: an engine op. */
    const nn_adamw_hparams h = {lr, t->opt.beta1, t->opt.beta2, t->opt.eps, t->opt.weight_decay,
                                t->step};
    nn_engine *e = r->engine;
    s = e->ops->adamw_step(e, &h, t->model->t.weights, t->grad, t->m, t->v, t->model->t.nfloats);
    if (s) return nn_engine_error(e, s, err);
    return r->ops->sync_weights(r, err);
}
