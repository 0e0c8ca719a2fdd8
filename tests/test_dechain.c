/*
 * The fused BCAE-2D decoder chain against the layer-by-layer decoders: the
 * same runner encodes simulated wedges and one dense random wedge, then
 * decodes the code both ways. fp32 (Winograd F(4x4, 3x3) and F(2x2, 3x3)
 * against oneDNN's layers) must agree to float rounding, bf16 within its
 * precision; a 1% change of one ReZero alpha must show up (the comparison
 * can fail). Also: models with and without upsampling in the first block,
 * training runners refused, and the chain planned through the model
 * runner's options.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/rng.h"
#include "model/runner.h"
#include "nn/cpu/cpu_report.h"

enum { BATCH = 3 };

/* Both heads' raw outputs (seg then reg, NCHW) of the runner's last decode. */
static void heads_of(nn_engine *e, bcae2d_runner *r, float *out, size_t per)
{
    e->ops->to_nchw(e, bcae2d_runner_seg_logit(r), out);
    e->ops->to_nchw(e, bcae2d_runner_reg_raw(r), out + per);
}

typedef struct variant {
    const char *name;
    bcae_precision precision;
    nn_chain_conv conv;
    double max_rel, rms_rel; /* bounds on both heads */
} variant;

/* Encodes `host` (BATCH wedges, model layout) with the layers, decodes with
 * the layers and with each variant's chain, compares. */
static void run_model(const model_config *mc, uint64_t seed, const float *host, int perturb)
{
    bcae_error err;
    bcae_model *M = NULL;
    CHECK(model_create(&model_arch_bcae2d, mc, &M, &err) == BCAE_OK);
    if (!M) return;
    model_init(M, seed);
    bcae_rng rng;
    bcae_rng_seed(&rng, seed ^ 0xa1fa);
    for (int i = 0; i < M->t.nparams; i++)
        if (strstr(M->t.params[i].name, "rezero_alpha"))
            M->t.weights[M->t.params[i].offset] = 0.3f + 0.7f * (float)bcae_rng_uniform(&rng);
    const bcae2d_model *m = bcae2d_of(M);
    const size_t per = (size_t)BATCH * BCAE_WEDGE_LAYERS * BCAE_WEDGE_AZIMUTH * BCAE_MODEL_Z;
    float *ref = malloc(2 * per * sizeof *ref), *got = malloc(2 * per * sizeof *got);
    CHECK(ref && got);
    if (!ref || !got) goto done;

    /* The bounds: fp32 differs from the layers (oneDNN, itself Winograd at
     * these shapes) by summation order and the transforms: measured <= 6e-7
     * relative to the output's maximum (rms 2.6e-7) for every model here;
     * bf16 by the rounding of every activation and product: max 1.8e-2, rms
     * 7.2e-3 (BCAE-2D(4,8,3), 16 convolutions a head). ~25x and ~3x margins. */
    const variant vars[] = {
        {"fp32 F(4x4)", BCAE_PRECISION_FP32, NN_CHAIN_CONV_WINO4, 2e-5, 5e-6},
        {"fp32 F(2x2)", BCAE_PRECISION_FP32, NN_CHAIN_CONV_WINO2, 2e-5, 5e-6},
        {"bf16 F(4x4)", BCAE_PRECISION_BF16, NN_CHAIN_CONV_WINO4, 0.05, 0.02},
    };
    for (size_t v = 0; v < sizeof vars / sizeof vars[0]; v++) {
        nn_engine *e = NULL;
        const nn_engine_options eo = {.device = BCAE_DEVICE_CPU, .threads = 2,
                                      .cpu = {.chain_conv = vars[v].conv}};
        CHECK(nn_engine_create(&eo, &e, NULL, &err) == BCAE_OK);
        if (!e) continue;
        bcae2d_runner *r = NULL;
        CHECK(bcae2d_runner_create(e, m, BATCH, 0, &r, &err) == BCAE_OK);
        if (!r) {
            nn_engine_destroy(e);
            continue;
        }
        e->ops->from_nchw(e, host, bcae2d_runner_input(r));
        bcae2d_runner_encode(r);
        bcae2d_runner_decode(r);
        heads_of(e, r, ref, per);
        bcae_status s = bcae2d_runner_use_decoder_chain(r, vars[v].precision, &err);
        CHECK_MSG(s == BCAE_OK, "%s: %s", vars[v].name, err.message);
        CHECK(bcae2d_runner_uses_decoder_chain(r));
        for (size_t i = 0; i < 2 * per; i++) got[i] = NAN;
        bcae2d_runner_decode(r);
        heads_of(e, r, got, per);
        double ms, rs, mr, rr;
        check_rel_errors(got, ref, per, &ms, &rs);
        check_rel_errors(got + per, ref + per, per, &mr, &rr);
        printf("BCAE-2D(%d,%d,%d) %-12s seg max rel %.2e rms %.2e | reg max rel %.2e rms %.2e\n",
               mc->m, mc->n, mc->d, vars[v].name, ms, rs, mr, rr);
        CHECK_MSG(ms <= vars[v].max_rel && mr <= vars[v].max_rel && rs <= vars[v].rms_rel &&
                      rr <= vars[v].rms_rel,
                  "%s: %g %g %g %g", vars[v].name, ms, mr, rs, rr);
        /* bf16 really rounds. */
        if (vars[v].precision == BCAE_PRECISION_BF16) CHECK(rs > 1e-5 && rr > 1e-5);

        if (perturb && v == 0) {
            /* One reg alpha off by 1%: the chain (re-planned) must differ
             * from the reference in reg only. */
            for (int i = 0; i < M->t.nparams; i++)
                if (strstr(M->t.params[i].name, "decoder_reg.") &&
                    strstr(M->t.params[i].name, "rezero_alpha")) {
                    M->t.weights[M->t.params[i].offset] *= 1.01f;
                    break;
                }
            CHECK(bcae2d_runner_use_decoder_chain(r, BCAE_PRECISION_FP32, &err) == BCAE_OK);
            bcae2d_runner_decode(r);
            heads_of(e, r, got, per);
            check_rel_errors(got, ref, per, &ms, &rs);
            check_rel_errors(got + per, ref + per, per, &mr, &rr);
            printf("perturbed reg alpha: seg max rel %.2e, reg max rel %.2e\n", ms, mr);
            CHECK(ms <= 1e-4 && mr > 1e-3);
        }
        bcae2d_runner_destroy(r);
        nn_engine_destroy(e);
    }
done:
    free(ref);
    free(got);
    bcae_model_free(M);
}

int main(void)
{
    bcae_error err;
    if (!cpu_isa_allows(CPU_LEVEL_AVX512) || !__builtin_cpu_supports("avx512f") ||
        !__builtin_cpu_supports("fma")) {
        /* Without the kernels the chain is refused and the layers run. */
        nn_engine *e = NULL;
        bcae_model *M = NULL;
        bcae2d_runner *r = NULL;
        model_config mc = {4, 2, 1, {0}, 0.5f, 0};
        const nn_engine_options eo = {.device = BCAE_DEVICE_CPU, .threads = 1};
        CHECK(nn_engine_create(&eo, &e, NULL, &err) == BCAE_OK);
        CHECK(model_create(&model_arch_bcae2d, &mc, &M, &err) == BCAE_OK);
        CHECK(bcae2d_runner_create(e, bcae2d_of(M), 1, 0, &r, &err) == BCAE_OK);
        CHECK(bcae2d_runner_use_decoder_chain(r, BCAE_PRECISION_FP32, &err) == BCAE_ERR_UNSUPPORTED);
        bcae2d_runner_destroy(r);
        bcae_model_free(M);
        nn_engine_destroy(e);
        printf("no AVX-512: the decoder chain is refused (checked); nothing else to test\n");
        return check_report("test_dechain");
    }

    /* Input: two simulated wedges and one dense random one, model layout,
     * log2(ADC+1). */
    const size_t V = BCAE_WEDGE_VOXELS, MV = BCAE_MODEL_VOXELS;
    uint16_t *ev = malloc(24 * V * sizeof *ev);
    float *host = calloc(BATCH * MV, sizeof *host);
    bcae_simulator *sim = NULL;
    bcae_rng rng;
    bcae_rng_seed(&rng, 5);
    CHECK(ev && host);
    CHECK(bcae_simulator_create(NULL, &sim, &err) == BCAE_OK);
    CHECK(bcae_simulator_run(sim, 1, 3, ev, 0, NULL, &err) == BCAE_OK);
    bcae_simulator_destroy(sim);
    bcae_wedge_to_model(ev + 0 * V, host);
    bcae_wedge_to_model(ev + 7 * V, host + MV);
    for (size_t k = 0; k < V; k++)
        ev[k] = (k / 4000) % 3 ? (uint16_t)(64 + bcae_rng_u64(&rng) % 960) : 0;
    bcae_wedge_to_model(ev, host + 2 * MV);

    /* The paper's BCAE-2D(4,8,3) runs the same steps as (4,4,3), four more
     * residual blocks at full size; it was measured once (docs/PRECISION.md)
     * and is left out here to keep the sanitizer pass short. */
    const model_config shipped = {4, 4, 3, {0}, 0.5f, 0}; /* the default model's shape */
    const model_config flat = {2, 2, 1, {0}, 0.5f, 0};    /* one upsampling only */
    run_model(&shipped, 31, host, 1);
    run_model(&flat, 33, host, 0);

    /* Training runners have no decoder chain; the model runner plans it by
     * default and runs the layers when asked. */
    {
        nn_engine *e = NULL;
        bcae_model *M = NULL;
        const nn_engine_options eo = {.device = BCAE_DEVICE_CPU, .threads = 2};
        CHECK(nn_engine_create(&eo, &e, NULL, &err) == BCAE_OK);
        CHECK(model_create(&model_arch_bcae2d, &flat, &M, &err) == BCAE_OK);
        model_init(M, 34);
        bcae2d_runner *r = NULL;
        CHECK(bcae2d_runner_create(e, bcae2d_of(M), 1, 1, &r, &err) == BCAE_OK);
        CHECK(bcae2d_runner_use_decoder_chain(r, BCAE_PRECISION_FP32, &err) ==
              BCAE_ERR_INVALID_ARGUMENT);
        bcae2d_runner_destroy(r);
        model_runner *mr = NULL;
        char what[64];
        runner_options ro = {0};
        CHECK(model_runner_create(e, M, 1, RUNNER_INFERENCE, &ro, &mr, &err) == BCAE_OK);
        CHECK(mr && !strcmp(mr->ops->describe(mr, 1, what, sizeof what), "chain fp32"));
        model_runner_destroy(mr);
        ro.decoder_precision = BCAE_PRECISION_BF16;
        CHECK(model_runner_create(e, M, 1, RUNNER_INFERENCE, &ro, &mr, &err) == BCAE_OK);
        CHECK(mr && !strcmp(mr->ops->describe(mr, 1, what, sizeof what), "chain bf16"));
        model_runner_destroy(mr);
        ro.decoder = RUNNER_DECODER_LAYERS;
        CHECK(model_runner_create(e, M, 1, RUNNER_INFERENCE, &ro, &mr, &err) == BCAE_ERR_UNSUPPORTED);
        ro.decoder_precision = BCAE_PRECISION_FP32;
        CHECK(model_runner_create(e, M, 1, RUNNER_INFERENCE, &ro, &mr, &err) == BCAE_OK);
        CHECK(mr && !strcmp(mr->ops->describe(mr, 1, what, sizeof what), "layers"));
        model_runner_destroy(mr);
        bcae_model_free(M);
        nn_engine_destroy(e);
    }
    free(ev);
    free(host);
    return check_report("test_dechain");
}
