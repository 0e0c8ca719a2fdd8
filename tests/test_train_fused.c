/*
 * The training runner's fused first layer (init_conv and the AvgPool2d after
 * it as one k8 stride-2 convolution, SPEC section 6) against the two layers
 * run separately: the code and the gradient of every parameter, init_conv's
 * weight and bias included, agree to float rounding.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/rng.h"
#include "model/runner.h"

enum { BATCH = 2 };

/* max |a - b| / max |b| over n floats; NaN gives NaN, which fails any bound. */
static double max_rel(const float *a, const float *b, size_t n)
{
    double dmax = 0, bmax = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= dmax)) dmax = d;
        if (fabs(b[i]) > bmax) bmax = fabs(b[i]);
    }
    return dmax / bmax;
}

/* One forward and backward; the code and the gradients are written out. */
static void step(nn_engine *e, const bcae2d_model *m, int mode, const float *host, float *code,
                 float *grad)
{
    bcae_error err;
    bcae2d_runner *r = NULL;
    CHECK_MSG(bcae2d_runner_create(e, m, BATCH, mode, &r, &err) == BCAE_OK, "%s", err.message);
    if (!r) return;
    e->ops->from_nchw(e, host, bcae2d_runner_input(r));
    bcae2d_runner_encode(r);
    bcae2d_runner_decode(r);
    e->ops->to_nchw(e, bcae2d_runner_code(r), code);
    bcae2d_runner_backward(r, 3.0f, grad);
    bcae2d_runner_destroy(r);
}

int main(void)
{
    bcae_error err;
    bcae_model *M = NULL;
    model_config cfg = {2, 2, 2, {0}, 0.5f, 0};
    CHECK(model_create(&model_arch_bcae2d, &cfg, &M, &err) == BCAE_OK);
    if (!M) return check_report("test_train_fused");
    model_init(M, 7);
    const bcae2d_model *m = bcae2d_of(M);
    /* Non-zero ReZero alphas, so that the encoder's gradient reaches init_conv
     * through the residual branches too. */
    for (int i = 0; i < M->t.nparams; i++)
        if (strstr(M->t.params[i].name, "rezero_alpha")) M->t.weights[M->t.params[i].offset] = 0.3f;

    const size_t V = BCAE_WEDGE_VOXELS, MV = BCAE_MODEL_VOXELS;
    uint16_t *ev = malloc(24 * V * sizeof *ev);
    float *host = calloc(BATCH * MV, sizeof *host);
    bcae_simulator *sim = NULL;
    CHECK(bcae_simulator_create(NULL, &sim, &err) == BCAE_OK);
    CHECK(bcae_simulator_run(sim, 2, 3, ev, 0, NULL, &err) == BCAE_OK);
    bcae_simulator_destroy(sim);
    for (int b = 0; b < BATCH; b++) bcae_wedge_to_model(ev + (size_t)(5 * b) * V, host + b * MV);

    nn_engine *e = NULL;
    const nn_engine_options cpu2 = {.device = BCAE_DEVICE_CPU, .threads = 2};
    CHECK(nn_engine_create(&cpu2, &e, NULL, &err) == BCAE_OK);
    size_t code_n = (size_t)BATCH * BCAE2D_CHANNELS * (size_t)bcae2d_code_h(m) * (size_t)bcae2d_code_w(m);
    float *code_ref = malloc(code_n * sizeof(float)), *code = malloc(code_n * sizeof(float));
    float *grad_ref = malloc(M->t.nfloats * sizeof(float)), *grad = malloc(M->t.nfloats * sizeof(float));

    step(e, m, BCAE2D_TRAIN_UNFUSED, host, code_ref, grad_ref);
    step(e, m, BCAE2D_TRAIN, host, code, grad);

    double rc = max_rel(code, code_ref, code_n);
    printf("code: max rel %.3g\n", rc);
    CHECK(rc <= 1e-5);
    double worst = 0;
    const char *worst_name = "";
    for (int i = 0; i < M->t.nparams; i++) {
        const model_param *p = &M->t.params[i];
        double d = max_rel(grad + p->offset, grad_ref + p->offset, p->count);
        if (strstr(p->name, "init_conv")) printf("%s: gradient max rel %.3g\n", p->name, d);
        if (!(d <= worst)) worst = d, worst_name = p->name;
        /* init_conv's gradients are what the fusion computes differently;
         * elsewhere the code's float-rounding difference can flip a voxel
         * of the regression loss's hard mask, which moves the heads'
         * gradients by up to ~3e-4 relative (as against PyTorch). */
        double bound = strstr(p->name, "init_conv") ? 1e-4 : 2e-3;
        CHECK_MSG(d <= bound, "%s: gradient max rel %.3g", p->name, d);
    }
    printf("worst gradient: %s, max rel %.3g\n", worst_name, worst);

    nn_engine_destroy(e);
    bcae_model_free(M);
    free(ev);
    free(host);
    free(code_ref);
    free(code);
    free(grad_ref);
    free(grad);
    return check_report("test_train_fused");
}
