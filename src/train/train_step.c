/* One training step (see train_step.h). */
#include "train/train_step.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/comm.h"
#include "core/error.h"

bcae_status train_step_init(train_step *t, bcae_model *model, model_runner *runner, int threads,
                            const bcae_comm *comm, bcae_error *err)
{
    memset(t, 0, sizeof *t);
    t->comm = comm;
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

bcae_status train_reduce_sums(const bcae_comm *comm, nn_loss_sums *ls, bcae_status local,
                              bcae_error *err)
{
    if (comm_size(comm) == 1) return local;
    /* One allreduce: the sums and a count of failed ranks. */
    double v[8] = {ls->focal, ls->l1, ls->sq, ls->voxels, ls->pos, ls->truth, ls->true_pos,
                   local ? 1.0 : 0.0};
    if (local) memset(v, 0, 7 * sizeof *v);
    bcae_error mine;
    bcae_status s = comm_sum_f64(comm, v, 8, local ? &mine : err);
    if (local) return local;
    if (s) return s;
    if (v[7] > 0)
        return bcae_fail(err, BCAE_ERR_IO, "train: %g of %d ranks failed at this step (see their "
                                           "messages)",
                         v[7], comm_size(comm));
    *ls = (nn_loss_sums){v[0], v[1], v[2], v[3], v[4], v[5], v[6]};
    return BCAE_OK;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

bcae_status train_step_run(train_step *t, float lr, bcae_status loaded, train_step_result *res,
                           bcae_error *err)
{
    model_runner *r = t->runner;
    bcae_status s = loaded;
    memset(&res->sums, 0, sizeof res->sums);
    if (!s) s = r->ops->encode(r, err);
    if (!s) s = r->ops->decode(r, err);
    if (!s) s = r->ops->loss_sums(r, &res->sums, err);
    /* This rank's share of the voxels weights its gradient below. */
    const double local_voxels = res->sums.voxels;
    double t0 = now_s();
    s = train_reduce_sums(t->comm, &res->sums, s, err);
    t->comm_seconds = now_s() - t0;
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
    if (comm_size(t->comm) > 1) {
        /* The runner's gradient is of this rank's mean; the batch's is the
         * voxel-weighted sum of the ranks' (1/size each for even shares).
         * Every rank passes here or none does (the sums agreed above), so
         * the allreduce always pairs up. */
        const size_t nf = t->model->t.nfloats;
        const float w = (float)(local_voxels / res->sums.voxels);
        for (size_t i = 0; i < nf; i++) t->grad[i] *= w;
        t0 = now_s();
        s = comm_sum_f32(t->comm, t->grad, nf, err);
        t->comm_seconds += now_s() - t0;
        if (s) return s;
    }
    t->step++;
    /* The optimizer runs where the parameters live: an engine op. */
    const nn_adamw_hparams h = {lr, t->opt.beta1, t->opt.beta2, t->opt.eps, t->opt.weight_decay,
                                t->step};
    nn_engine *e = r->engine;
    s = e->ops->adamw_step(e, &h, t->model->t.weights, t->grad, t->m, t->v, t->model->t.nfloats);
    if (s) return nn_engine_error(e, s, err);
    return r->ops->sync_weights(r, err);
}
