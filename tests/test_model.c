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
    bcae2d_model m;
    bcae2d_config cfg = {4, 8, 3, 0.5f};
    CHECK(bcae2d_create(&cfg, &m, &err) == BCAE_OK);
    /* SPEC section 3: 173,096 encoder parameters for m = 4. */
    CHECK(bcae2d_encoder_params(&m) == 173096);
    CHECK(bcae2d_code_h(&m) == 24 && bcae2d_code_w(&m) == 32);
    /* Names as the reference's state dict, pooling layers taking an index. */
    CHECK(bcae2d_find(&m, "encoder.init_conv.weight") == 0);
    CHECK(bcae2d_find(&m, "encoder.layers.1.conv1.0.weight") >= 0);
    CHECK(bcae2d_find(&m, "encoder.layers.0.conv1.0.weight") < 0); /* 0 is a pool */
    CHECK(bcae2d_find(&m, "encoder.layers.10.rezero_alpha") >= 0);
    CHECK(bcae2d_find(&m, "encoder.layers.11.rezero_alpha") < 0);
    CHECK(bcae2d_find(&m, "decoder.decoder_clf.layers.18.conv2.0.bias") >= 0);
    CHECK(bcae2d_find(&m, "decoder.decoder_clf.layers.19.conv2.0.bias") < 0);
    CHECK(bcae2d_find(&m, "decoder.decoder_reg.output_layer.weight") >= 0);
    int w = bcae2d_find(&m, "decoder.decoder_reg.output_layer.weight");
    CHECK(w >= 0 && m.params[w].shape[0] == 16 && m.params[w].shape[1] == 32 &&
          m.params[w].shape[2] == 1);
    /* FLOPs per wedge, SPEC section 6: encoder 3.71 G, decoders (n = 8) 45.9 G. */
    CHECK_NEAR(bcae2d_encoder_flops(&m) / 1e9, 3.71, 0.01);
    CHECK_NEAR(bcae2d_decoder_flops(&m) / 1e9, 45.9, 0.1);

    /* Initialisation: bounded by 1/sqrt(fan_in), alphas zero, deterministic. */
    bcae2d_init(&m, 7);
    int a = bcae2d_find(&m, "encoder.layers.1.rezero_alpha");
    CHECK(m.weights[m.params[a].offset] == 0.0f);
    const bcae_param *p0 = &m.params[0];
    float mx = 0;
    for (size_t i = 0; i < p0->count; i++) mx = fmaxf(mx, fabsf(m.weights[i]));
    CHECK(mx <= 1.0f / sqrtf(16 * 49) && mx > 0.9f / sqrtf(16 * 49));
    float first = m.weights[5];
    bcae2d_init(&m, 7);
    CHECK(m.weights[5] == first);
    bcae2d_init(&m, 8);
    CHECK(m.weights[5] != first);

    /* Save and load. */
    char path[] = "test_model_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    m.weights[m.params[a].offset] = 0.25f;
    CHECK(bcae2d_save(path, &m, &err) == BCAE_OK);
    bcae2d_model l;
    CHECK(bcae2d_load(path, &l, &err) == BCAE_OK);
    CHECK(l.cfg.m == 4 && l.cfg.n == 8 && l.cfg.d == 3 && l.cfg.clf_threshold == 0.5f);
    CHECK(l.nfloats == m.nfloats && !memcmp(l.weights, m.weights, m.nfloats * sizeof(float)));
    bcae2d_destroy(&l);
    /* A model of another shape is refused for --init, naming both. */
    bcae2d_config small = {3, 3, 3, 0.5f};
    CHECK(bcae2d_create(&small, &l, &err) == BCAE_OK);
    CHECK(bcae2d_load_weights_into(path, &l, &err) == BCAE_ERR_SHAPE);
    CHECK(strstr(err.message, "(4, 8, 3)") != NULL);
    bcae2d_destroy(&l);
    unlink(path);
    CHECK(bcae2d_load("/nonexistent.safetensors", &l, &err) != BCAE_OK);

    /* Invalid configurations. */
    bcae2d_config bad = {2, 8, 3, 0.5f};
    CHECK(bcae2d_create(&bad, &l, &err) == BCAE_ERR_INVALID_ARGUMENT);
    bad = (bcae2d_config){4, 8, 7, 0.5f};
    CHECK(bcae2d_create(&bad, &l, &err) == BCAE_ERR_INVALID_ARGUMENT);
    bcae2d_destroy(&m);

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
