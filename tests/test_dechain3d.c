/*
 * The fused 3D decoder chain (BCAE++, BCAE-HT) against the layer-by-layer
 * decoders: random weights with non-zero ReZero alphas, random codes, both
 * transposed-conv forms (shuffle, row split), the portable kernels, the
 * full-size code and odd ones (widths that leave partial vectors). Compares
 * both raw outputs (the clf logits and the reg output). A perturbed alpha
 * must show up: the comparison can fail.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/rng.h"
#include "model/runner3d.h"

enum { MODE_LAYERS = -1, MODE_SHUFFLE, MODE_ROWS, MODE_SHUFFLE_PORTABLE, MODE_ROWS_PORTABLE };
static const char *const MODE_NAMES[] = {"shuffle", "rows", "shuffle portable", "rows portable"};

static double max_rel(const float *a, const float *b, size_t n)
{
    double dmax = 0, bmax = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= dmax)) dmax = d; /* NaN propagates as a failure */
        if (fabs(b[i]) > bmax) bmax = fabs(b[i]);
    }
    return bmax > 0 ? dmax / bmax : dmax;
}

/* out: the two raw outputs, seg then reg, each of n_out floats. */
static void decode_with(nn_engine *e, const bcae3d_model *m, int batch, const float *code,
                        int mode, float *out, size_t n_out)
{
    bcae_error err;
    bcae3d_runner *r = NULL;
    CHECK(bcae3d_runner_create(e, m, batch, 0, NN_CONV3D_AUTO, &r, &err) == BCAE_OK);
    if (!r) return;
    if (mode != MODE_LAYERS) {
        bcae_status s = bcae3d_runner_use_decoder_chain(
            r, mode == MODE_ROWS || mode == MODE_ROWS_PORTABLE ? NN_DECONV_ROWS : NN_DECONV_SHUFFLE,
            mode >= MODE_SHUFFLE_PORTABLE, &err);
        CHECK_MSG(s == BCAE_OK, "%s", err.message);
        CHECK(bcae3d_runner_uses_decoder_chain(r));
    }
    nn_tensor c = nn_tensor5_flat(bcae3d_runner_code(r));
    e->ops->from_nchw(e, code, &c);
    bcae3d_runner_decode(r);
    nn_tensor s = nn_tensor5_flat(bcae3d_runner_seg_logit(r));
    nn_tensor g = nn_tensor5_flat(bcae3d_runner_reg_raw(r));
    e->ops->to_nchw(e, &s, out);
    e->ops->to_nchw(e, &g, out + n_out);
    bcae3d_runner_destroy(r);
}

static const model_arch *arch_of(bcae3d_arch arch)
{
    return arch == BCAE3D_PLUSPLUS ? &model_arch_bcaepp
           : arch == BCAE3D_HT     ? &model_arch_bcaeht
                                   : &model_arch_bcae;
}

/* Random weights (PyTorch's init) and decoder alphas in [0.5, 1.5). */
static void init_model(bcae_model *m, uint64_t seed)
{
    model_init(m, seed);
    bcae_rng rng;
    bcae_rng_seed(&rng, seed ^ 0xa1fa);
    for (int i = 0; i < m->t.nparams; i++)
        if (strstr(m->t.params[i].name, "decoder.") && strstr(m->t.params[i].name, "rezero_alpha"))
            m->t.weights[m->t.params[i].offset] = (float)(0.5 + bcae_rng_uniform(&rng));
}

static float *perturbed_alpha(bcae_model *m)
{
    for (int i = 0; i < m->t.nparams; i++)
        if (strstr(m->t.params[i].name, "decoder_reg.") &&
            strstr(m->t.params[i].name, "rezero_alpha"))
            return &m->t.weights[m->t.params[i].offset];
    return NULL;
}

/* portable: also the portable kernels, and the perturbation check. */
static void run_case(nn_engine *e, bcae3d_arch arch, const int cdims[3], int batch,
                     int portable, uint64_t seed)
{
    bcae_error err;
    model_config cfg = {0};
    bcae_model *M = NULL;
    if (model_create(arch_of(arch), &cfg, &M, &err) != BCAE_OK) {
        CHECK_MSG(0, "%s", err.message);
        return;
    }
    init_model(M, seed);
    /* The shapes below are changed in the architecture's part. */
    bcae3d_model *m = (bcae3d_model *)bcae3d_of(M);
    /* Other code shapes: the output's follows (each block doubles h and w). */
    memcpy(m->code_dims, cdims, sizeof m->code_dims);
    m->in_dims[0] = cdims[0], m->in_dims[1] = cdims[1] << 4, m->in_dims[2] = cdims[2] << 4;
    const size_t nc = (size_t)batch * BCAE3D_CODE_CHANNELS * (size_t)cdims[0] *
                      (size_t)cdims[1] * (size_t)cdims[2];
    const size_t no = (size_t)batch * (size_t)m->in_dims[0] * (size_t)m->in_dims[1] *
                      (size_t)m->in_dims[2];
    float *code = malloc(nc * sizeof *code);
    float *ref = malloc(2 * no * sizeof *ref), *got = malloc(2 * no * sizeof *got);
    if (!code || !ref || !got) {
        CHECK(0);
        goto done;
    }
    bcae_rng rng;
    bcae_rng_seed(&rng, seed + 1);
    for (size_t i = 0; i < nc; i++) code[i] = (float)(4.0 * bcae_rng_uniform(&rng) - 2.0);
    decode_with(e, m, batch, code, MODE_LAYERS, ref, no);
    for (int k = 0; k < (portable ? 4 : 2); k++) {
        for (size_t i = 0; i < 2 * no; i++) got[i] = NAN;
        decode_with(e, m, batch, code, k, got, no);
        double rs = max_rel(got, ref, no), rr = max_rel(got + no, ref + no, no);
        printf("%-7s code %2dx%2dx%2d batch %d  %-16s max rel seg %.2e reg %.2e\n",
               arch_of(arch)->name, cdims[0], cdims[1], cdims[2], batch, MODE_NAMES[k], rs,
               rr);
        CHECK_MSG(rs <= 1e-5 && rr <= 1e-5, "%s %s: max rel %g %g", arch_of(arch)->name,
                  MODE_NAMES[k], rs, rr);
    }
    /* The check can fail: a reg alpha off by 1% is seen (small shapes only,
     * to keep the test short). */
    float *alpha = portable ? perturbed_alpha(M) : NULL;
    CHECK(!portable || alpha != NULL);
    if (alpha) {
        *alpha *= 1.01f;
        decode_with(e, m, batch, code, MODE_SHUFFLE, got, no);
        double rs = max_rel(got, ref, no), rr = max_rel(got + no, ref + no, no);
        printf("%-7s perturbed reg alpha: max rel seg %.2e reg %.2e\n", arch_of(arch)->name,
               rs, rr);
        CHECK_MSG(rs <= 1e-5 && rr > 1e-5, "perturbation: %g %g", rs, rr);
    }
done:
    free(code);
    free(ref);
    free(got);
    bcae_model_free(M);
}

int main(void)
{
    bcae_error err;
    nn_engine *e = NULL;
    const nn_engine_options cpu2 = {.device = BCAE_DEVICE_CPU, .threads = 2};
    if (nn_engine_create(&cpu2, &e, NULL, &err) != BCAE_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    const int full[3] = {16, 12, 16}, odd[3] = {3, 5, 7}, odd2[3] = {2, 3, 3};
    run_case(e, BCAE3D_HT, full, 1, 0, 21);
    run_case(e, BCAE3D_HT, odd, 3, 1, 22);
    run_case(e, BCAE3D_HT, odd2, 2, 1, 23);
    run_case(e, BCAE3D_PLUSPLUS, full, 1, 0, 24);
    run_case(e, BCAE3D_PLUSPLUS, odd, 2, 1, 25);
    run_case(e, BCAE3D_PLUSPLUS, odd2, 1, 1, 26);

    /* The original BCAE (InstanceNorm) has no decoder chain: the runner says so. */
    model_config cfg = {0};
    bcae_model *M = NULL;
    bcae3d_runner *r = NULL;
    CHECK(model_create(&model_arch_bcae, &cfg, &M, &err) == BCAE_OK);
    CHECK(M && bcae3d_runner_create(e, bcae3d_of(M), 1, 0, NN_CONV3D_AUTO, &r, &err) == BCAE_OK);
    CHECK(bcae3d_runner_use_decoder_chain(r, NN_DECONV_SHUFFLE, 0, &err) == BCAE_ERR_UNSUPPORTED);
    CHECK(!bcae3d_runner_uses_decoder_chain(r));
    CHECK(bcae3d_runner_use_fast_decoder(r, &err) == BCAE_OK);
    CHECK(!bcae3d_runner_uses_decoder_chain(r));
    bcae3d_runner_destroy(r);
    bcae_model_free(M);

    nn_engine_destroy(e);
    printf("%d checks, %d failures\n", check_count, check_failures);
    return check_failures != 0;
}
