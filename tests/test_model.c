/* BCAE-2D structure: parameter names and counts, shapes, initialisation, weights files. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "model/bcae2d.h"
#include "model/runner.h"
#include "train/optim.h"

int main(void)
{
    bcae_error err;
    bcae_model *M = NULL;
    model_config cfg = {4, 8, 3, {0}, 0.5f, 0};
    CHECK(model_create(&model_arch_bcae2d, &cfg, &M, &err) == BCAE_OK);
    if (!M) return check_report("test_model");
    const bcae2d_model *m = bcae2d_of(M);
    const model_table *t = &M->t;
    /* SPEC section 3: 173,096 encoder parameters for m = 4. */
    CHECK(model_encoder_params(M) == 173096);
    CHECK(bcae2d_code_h(m) == 24 && bcae2d_code_w(m) == 32);
    /* Names as the reference's state dict, pooling layers taking an index. */
    CHECK(model_find(M, "encoder.init_conv.weight") == 0);
    CHECK(model_find(M, "encoder.layers.1.conv1.0.weight") >= 0);
    CHECK(model_find(M, "encoder.layers.0.conv1.0.weight") < 0); /* 0 is a pool */
    CHECK(model_find(M, "encoder.layers.10.rezero_alpha") >= 0);
    CHECK(model_find(M, "encoder.layers.11.rezero_alpha") < 0);
    CHECK(model_find(M, "decoder.decoder_clf.layers.18.conv2.0.bias") >= 0);
    CHECK(model_find(M, "decoder.decoder_clf.layers.19.conv2.0.bias") < 0);
    CHECK(model_find(M, "decoder.decoder_reg.output_layer.weight") >= 0);
    int w = model_find(M, "decoder.decoder_reg.output_layer.weight");
    CHECK(w >= 0 && t->params[w].shape[0] == 16 && t->params[w].shape[1] == 32 &&
          t->params[w].shape[2] == 1);
    /* FLOPs per wedge, SPEC section 6: encoder 3.71 G, decoders (n = 8) 45.9 G. */
    CHECK_NEAR(bcae2d_encoder_flops(m) / 1e9, 3.71, 0.01);
    CHECK_NEAR(bcae2d_decoder_flops(m) / 1e9, 45.9, 0.1);

    /* Initialisation: bounded by 1/sqrt(fan_in), alphas zero, deterministic. */
    model_init(M, 7);
    int a = model_find(M, "encoder.layers.1.rezero_alpha");
    CHECK(t->weights[t->params[a].offset] == 0.0f);
    const model_param *p0 = &t->params[0];
    float mx = 0;
    for (size_t i = 0; i < p0->count; i++) mx = fmaxf(mx, fabsf(t->weights[i]));
    CHECK(mx <= 1.0f / sqrtf(16 * 49) && mx > 0.9f / sqrtf(16 * 49));
    float first = t->weights[5];
    model_init(M, 7);
    CHECK(t->weights[5] == first);
    model_init(M, 8);
    CHECK(t->weights[5] != first);

    /* Save and load. */
    char path[] = "test_model_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    t->weights[t->params[a].offset] = 0.25f;
    CHECK(model_save(M, path, &err) == BCAE_OK);
    bcae_model *L = NULL;
    CHECK(bcae_model_load(path, &L, &err) == BCAE_OK);
    const bcae2d_model *l = L ? bcae2d_of(L) : NULL;
    CHECK(l && l->cfg.m == 4 && l->cfg.n == 8 && l->cfg.d == 3 && l->cfg.clf_threshold == 0.5f);
    CHECK(L && L->t.nfloats == t->nfloats &&
          !memcmp(L->t.weights, t->weights, t->nfloats * sizeof(float)));
    bcae_model_free(L);
    L = NULL;
    /* A model of another shape is refused for --init, naming both. */
    model_config small = {3, 3, 3, {0}, 0.5f, 0};
    CHECK(model_create(&model_arch_bcae2d, &small, &L, &err) == BCAE_OK);
    if (L) {
        CHECK(model_load_weights_into(L, path, &err) == BCAE_ERR_SHAPE);
        /* The file's configuration, as the interface's message words it. */
        CHECK_MSG(strstr(err.message, "m=4 n=8 d=3") != NULL, "%s", err.message);
    }
    bcae_model_free(L);
    L = NULL;
    unlink(path);
    CHECK(bcae_model_load("/nonexistent.safetensors", &L, &err) != BCAE_OK);
    bcae_model_free(L);
    L = NULL;

    /* Invalid configurations. */
    model_config bad = {2, 8, 3, {0}, 0.5f, 0};
    CHECK(model_create(&model_arch_bcae2d, &bad, &L, &err) == BCAE_ERR_INVALID_ARGUMENT);
    bad = (model_config){4, 8, 7, {0}, 0.5f, 0};
    CHECK(model_create(&model_arch_bcae2d, &bad, &L, &err) == BCAE_ERR_INVALID_ARGUMENT);
    bcae_model_free(M);

    /* The schedule: constant through warmup, then gamma per step epochs. */
    CHECK(lr_schedule(1e-3f, 0, 50, 10, 0.95f) == 1e-3f);
    CHECK(lr_schedule(1e-3f, 49, 50, 10, 0.95f) == 1e-3f);
    CHECK_NEAR(lr_schedule(1e-3f, 50, 50, 10, 0.95f), 0.95e-3, 1e-9);
    CHECK_NEAR(lr_schedule(1e-3f, 59, 50, 10, 0.95f), 0.95e-3, 1e-9);
    CHECK_NEAR(lr_schedule(1e-3f, 60, 50, 10, 0.95f), 0.95 * 0.95e-3, 1e-9);

    /* AdamW against a hand computation of its first two steps. */
    adamw_config oc;
    adamw_config_default(&oc);
    float pw = 1.0f, pm = 0, pv = 0, g = 0.5f;
    adamw_step(&oc, 1e-3f, 1, &pw, &g, &pm, &pv, 1, 1);
    /* step 1: m = 0.05, v = 0.00025, mhat = 0.5, vhat = 0.25 -> update 1e-3 * 0.5 / 0.5 */
    CHECK_NEAR(pw, 1.0 * (1 - 1e-5) - 1e-3 * 0.5 / (0.5 + 1e-8), 1e-7);
    return check_report("test_model");
}
