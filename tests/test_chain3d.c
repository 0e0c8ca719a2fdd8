/*
 * The fused 3D encoder chain (BCAE++, BCAE-HT) against the layer-by-layer
 * encoder: random weights with non-zero ReZero alphas, sparse random inputs
 * (and an empty and a dense one), the sparse first layer with AVX-512 and in
 * portable C, the dense first layer, full-size and odd shapes.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/rng.h"
#include "model/runner3d.h"

enum { MODE_LAYERS = -1 };

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

static size_t code_floats(const bcae3d_model *m, int batch)
{
    return (size_t)batch * BCAE3D_CODE_CHANNELS * (size_t)m->code_dims[0] *
           (size_t)m->code_dims[1] * (size_t)m->code_dims[2];
}

/* mode: MODE_LAYERS or an nn_first_layer for the chain. */
static void encode_with(nn_engine *e, const bcae3d_model *m, int batch, const float *host,
                        int mode, float *code)
{
    bcae_error err;
    bcae3d_runner *r = NULL;
    CHECK(bcae3d_runner_create(e, m, batch, 0, NN_CONV3D_AUTO, &r, &err) == BCAE_OK);
    if (!r) return;
    if (mode != MODE_LAYERS) {
        bcae_status s = bcae3d_runner_use_chain(r, (nn_first_layer)mode, &err);
        CHECK_MSG(s == BCAE_OK, "%s", err.message);
        CHECK(bcae3d_runner_uses_chain(r));
    }
    nn_tensor in = nn_tensor5_flat(bcae3d_runner_input(r));
    e->ops->from_nchw(e, host, &in);
    bcae3d_runner_encode(r);
    nn_tensor c = nn_tensor5_flat(bcae3d_runner_code(r));
    e->ops->to_nchw(e, &c, code);
    bcae3d_runner_destroy(r);
}

static const model_arch *arch_of(bcae3d_arch arch)
{
    return arch == BCAE3D_PLUSPLUS ? &model_arch_bcaepp
           : arch == BCAE3D_HT     ? &model_arch_bcaeht
                                   : &model_arch_bcae;
}

/* Random weights (PyTorch's init, scaled so activations stay O(1)) and
 * alphas in [0.5, 1.5). */
static void init_model(bcae_model *m, uint64_t seed)
{
    model_init(m, seed);
    bcae_rng rng;
    bcae_rng_seed(&rng, seed ^ 0xa1fa);
    for (int i = 0; i < m->t.nparams; i++)
        if (strstr(m->t.params[i].name, "encoder.") && strstr(m->t.params[i].name, "rezero_alpha"))
            m->t.weights[m->t.params[i].offset] = (float)(0.5 + bcae_rng_uniform(&rng));
}

/* occupancy 0: all zeros; 1: every voxel non-zero. Values like log2(ADC+1). */
static void random_input(float *x, size_t n, double occupancy, uint64_t seed)
{
    bcae_rng rng;
    bcae_rng_seed(&rng, seed);
    for (size_t i = 0; i < n; i++)
        x[i] = bcae_rng_uniform(&rng) < occupancy ? (float)(6.0 + 4.0 * bcae_rng_uniform(&rng))
                                                  : 0.0f;
}

static void run_case(nn_engine *e, bcae3d_arch arch, const int dims[3], int batch,
                     double occupancy, int portable, uint64_t seed)
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
    /* Other input shapes: the code's follows (each block halves h and w). */
    memcpy(m->in_dims, dims, sizeof m->in_dims);
    m->code_dims[0] = dims[0];
    m->code_dims[1] = dims[1] >> 4;
    m->code_dims[2] = dims[2] >> 4;
    const size_t per = (size_t)dims[0] * (size_t)dims[1] * (size_t)dims[2];
    const size_t nc = code_floats(m, batch);
    float *x = malloc((size_t)batch * per * sizeof *x);
    float *ref = malloc(nc * sizeof *ref), *got = malloc(nc * sizeof *got);
    if (!x || !ref || !got) {
        CHECK(0);
        goto done;
    }
    random_input(x, (size_t)batch * per, occupancy, seed + 1);
    encode_with(e, m, batch, x, MODE_LAYERS, ref);
    const int modes[3] = {NN_FIRST_SPARSE, NN_FIRST_DENSE, NN_FIRST_SPARSE_PORTABLE};
    for (int k = 0; k < (portable ? 3 : 2); k++) {
        for (size_t i = 0; i < nc; i++) got[i] = NAN;
        encode_with(e, m, batch, x, modes[k], got);
        double rel = max_rel(got, ref, nc);
        printf("%-7s %3dx%3dx%3d batch %d occupancy %.2f  %-15s max rel %.2e\n",
               arch_of(arch)->name, dims[0], dims[1], dims[2], batch, occupancy,
               k == 0 ? "sparse" : k == 1 ? "dense" : "sparse portable", rel);
        CHECK_MSG(rel <= 1e-5, "%s mode %d: max rel %g", arch_of(arch)->name, modes[k], rel);
    }
done:
    free(x);
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
    const int full[3] = {16, 192, 256}, odd[3] = {5, 40, 56}, odd2[3] = {3, 34, 50};
    run_case(e, BCAE3D_HT, full, 1, 0.11, 1, 11);
    run_case(e, BCAE3D_HT, odd, 3, 0.11, 1, 12);
    run_case(e, BCAE3D_HT, odd2, 1, 1.0, 1, 13);
    run_case(e, BCAE3D_HT, odd2, 2, 0.0, 1, 14);
    run_case(e, BCAE3D_PLUSPLUS, full, 1, 0.11, 0, 15);
    run_case(e, BCAE3D_PLUSPLUS, odd, 2, 0.11, 1, 16);
    run_case(e, BCAE3D_PLUSPLUS, odd2, 1, 0.5, 1, 17);

    /* The original BCAE (InstanceNorm) has no chain: the runner says so. */
    model_config cfg = {0};
    bcae_model *M = NULL;
    bcae3d_runner *r = NULL;
    CHECK(model_create(&model_arch_bcae, &cfg, &M, &err) == BCAE_OK);
    CHECK(M && bcae3d_runner_create(e, bcae3d_of(M), 1, 0, NN_CONV3D_AUTO, &r, &err) == BCAE_OK);
    CHECK(bcae3d_runner_use_chain(r, NN_FIRST_SPARSE, &err) == BCAE_ERR_UNSUPPORTED);
    CHECK(!bcae3d_runner_uses_chain(r));
    bcae3d_runner_destroy(r);
    bcae_model_free(M);

    nn_engine_destroy(e);
    printf("%d checks, %d failures\n", check_count, check_failures);
    return check_failures != 0;
}
