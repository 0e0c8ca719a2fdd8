/* The public codec API: model loading, encode/decode, batching, validation. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/half.h"
#include "model/bcae2d.h"

int main(void)
{
    bcae_error err;
    /* A small random model with non-zero ReZero alphas, through a file. */
    bcae_model *m = NULL;
    model_config cfg = {3, 3, 3, {0}, 0.5f, 0};
    CHECK(model_create(&model_arch_bcae2d, &cfg, &m, &err) == BCAE_OK);
    if (!m) return check_report("test_codec");
    model_init(m, 3);
    for (int i = 0; i < m->t.nparams; i++)
        if (strstr(m->t.params[i].name, "rezero_alpha")) m->t.weights[m->t.params[i].offset] = 0.3f;
    char path[] = "test_codec_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    CHECK(model_save(m, path, &err) == BCAE_OK);
    bcae_model_free(m);

    bcae_model *model = NULL;
    CHECK(bcae_model_load(path, &model, &err) == BCAE_OK);
    unlink(path);
    if (!model) return check_report("test_codec");
    size_t shape[4];
    CHECK(bcae_model_code_shape(model, shape) == 3 && shape[0] == 32 && shape[1] == 24 &&
          shape[2] == 32);
    CHECK(bcae_model_code_elements(model) == 24576);
    /* Ratio of SPEC section 5: wedge voxels / code elements. */
    CHECK_NEAR((double)BCAE_WEDGE_VOXELS / (double)bcae_model_code_elements(model), 31.125, 1e-9);
    uint8_t fp[32], zero[32] = {0};
    bcae_model_fingerprint(model, fp);
    CHECK(memcmp(fp, zero, 32) != 0);
    CHECK(strcmp(bcae_model_arch(model), "bcae-2d") == 0);

    /* Three simulated wedges. */
    const size_t V = BCAE_WEDGE_VOXELS, C = bcae_model_code_elements(model);
    uint16_t *ev = malloc(24 * V * sizeof *ev);
    bcae_simulator *sim = NULL;
    CHECK(bcae_simulator_create(NULL, &sim, &err) == BCAE_OK);
    CHECK(bcae_simulator_run(sim, 4, 0, ev, 0, NULL, &err) == BCAE_OK);
    bcae_simulator_destroy(sim);

    bcae_codec *c1 = NULL, *c2 = NULL;
    bcae_codec_options o1 = {.batch = 1, .threads = 2}, o2 = {.batch = 2, .threads = 2};
    CHECK(bcae_codec_create(model, &o1, &c1, &err) == BCAE_OK);
    CHECK(bcae_codec_create(model, &o2, &c2, &err) == BCAE_OK);
    uint16_t *k1 = malloc(3 * C * sizeof *k1), *k2 = malloc(3 * C * sizeof *k2);
    CHECK(bcae_encode(c1, ev, 3, k1, &err) == BCAE_OK);
    CHECK(bcae_encode(c2, ev, 3, k2, &err) == BCAE_OK);
    /* Batch size (and the padded last batch) leaves codes equal up to an fp16 ulp. */
    size_t far = 0;
    for (size_t i = 0; i < 3 * C; i++) {
        float a = bcae_f16_to_f32(k1[i]), b = bcae_f16_to_f32(k2[i]);
        if (fabsf(a - b) > 1e-3f * fmaxf(1.0f, fabsf(a))) far++;
    }
    CHECK(far == 0);
    /* Distinct wedges give distinct codes. */
    CHECK(memcmp(k1, k1 + C, C * sizeof *k1) != 0);

    uint16_t *adc = malloc(3 * V * sizeof *adc);
    float *lg = malloc(3 * V * sizeof *lg);
    CHECK(bcae_decode(c2, k1, 3, adc, lg, &err) == BCAE_OK);
    size_t mismatch = 0, nonzero = 0, bad = 0;
    for (size_t i = 0; i < 3 * V; i++) {
        double v = lg[i];
        long want = v > 0 ? lround(exp2(v) - 1.0) : 0;
        if (want > 1023) want = 1023;
        if (labs(want - (long)adc[i]) > 1) mismatch++;
        nonzero += adc[i] > 0;
        if (lg[i] != 0 && lg[i] < 6) bad++; /* T(r) = 6 + 3 exp(r) > 6 */
    }
    CHECK(mismatch == 0);
    CHECK(bad == 0);
    CHECK(nonzero > 0);

    /* A wedge decodes to the same bytes alone as in a batch (the codec may
     * decode a short batch one wedge at a time: decode_batch_invariant). */
    {
        uint16_t *one = malloc(V * sizeof *one);
        float *lg1 = malloc(V * sizeof *lg1);
        for (size_t w = 0; w < 3; w++) {
            CHECK(bcae_decode(c1, k1 + w * C, 1, one, lg1, &err) == BCAE_OK);
            CHECK_MSG(memcmp(one, adc + w * V, V * sizeof *one) == 0 &&
                          memcmp(lg1, lg + w * V, V * sizeof *lg1) == 0,
                      "wedge %zu decodes alone to other bytes than in a batch of 3", w);
        }
        /* Four (a full batch) and five (a full one, then a short one). */
        uint16_t *k5 = malloc(5 * C * sizeof *k5), *adc5 = malloc(5 * V * sizeof *adc5);
        for (size_t w = 0; w < 5; w++) memcpy(k5 + w * C, k1 + (w % 3) * C, C * sizeof *k5);
        CHECK(bcae_decode(c2, k5, 5, adc5, NULL, &err) == BCAE_OK);
        for (size_t w = 0; w < 5; w++)
            CHECK_MSG(memcmp(adc5 + w * V, adc + (w % 3) * V, V * sizeof *adc5) == 0,
                      "wedge %zu of 5 decodes to other bytes", w);
        free(one);
        free(lg1);
        free(k5);
        free(adc5);
    }

    /* The classifier's operating curve over the same three wedges: every
     * voxel counted once, the hits are the wedges' non-zero voxels, and the
     * rates at the model's threshold are what the reconstruction shows
     * (pooled: a voxel is called a hit where its log value is non-zero). */
    {
        enum { K = 1000 };
        uint64_t *hits = calloc(K, sizeof *hits), *all = calloc(K, sizeof *all);
        CHECK(bcae_classifier_histogram(c1, ev, 3, hits, all, K, &err) == BCAE_OK);
        uint64_t nall = 0, nhits = 0, ev_nonzero = 0;
        for (size_t b = 0; b < K; b++) {
            nall += all[b];
            nhits += hits[b];
            CHECK(hits[b] <= all[b]);
        }
        for (size_t i = 0; i < 3 * V; i++) ev_nonzero += ev[i] > 0;
        CHECK(nall == 3 * V);
        CHECK(nhits == ev_nonzero);
        /* Reconstruction through bcae_forward at h = 0.5, pooled. */
        float *recon = malloc(3 * V * sizeof *recon), *seg = malloc(3 * V * sizeof *seg);
        CHECK(bcae_forward(c1, ev, 3, 1, NULL, seg, NULL, recon, &err) == BCAE_OK);
        uint64_t called = 0, near_edge = 0;
        for (size_t i = 0; i < 3 * V; i++) {
            called += recon[i] != 0.0f;
            near_edge += fabsf(seg[i] - 0.5f) < 1e-3f;
        }
        uint64_t called_hist = 0;
        for (size_t b = K / 2; b < K; b++) called_hist += all[b];
        CHECK(called_hist + near_edge >= called && called + near_edge >= called_hist);
        double p, r;
        bcae_classifier_rates(hits, all, K, 0, &p, &r);
        CHECK_NEAR(r, 1.0, 1e-12);
        CHECK_NEAR(p, (double)ev_nonzero / (double)(3 * V), 1e-12);
        /* Break-even on a histogram made up for it: 10 hits, all in bins
         * 6..9; 14 voxels in bins 4..9. Calling bins >= 6 calls 10. */
        uint64_t h2[10] = {0, 0, 0, 0, 0, 0, 2, 3, 3, 2}, a2[10] = {5, 0, 0, 0, 2, 2, 2, 3, 3, 2};
        CHECK(bcae_classifier_breakeven(h2, a2, 10) == 6);
        bcae_classifier_rates(h2, a2, 10, 6, &p, &r);
        CHECK_NEAR(p, 1.0, 1e-12);
        CHECK_NEAR(r, 1.0, 1e-12);
        bcae_classifier_rates(h2, a2, 10, 8, &p, &r);
        CHECK_NEAR(p, 1.0, 1e-12);
        CHECK_NEAR(r, 0.5, 1e-12);
        bcae_classifier_rates(h2, a2, 10, 4, &p, &r);
        CHECK_NEAR(p, 10.0 / 14.0, 1e-12);
        uint64_t z[4] = {0};
        CHECK(bcae_classifier_breakeven(z, a2, 4) == 1);
        CHECK(bcae_classifier_histogram(c1, ev, 1, hits, all, 1, &err) == BCAE_ERR_INVALID_ARGUMENT);
        free(hits);
        free(all);
        free(recon);
        free(seg);
    }

    /* The threshold: range-checked, written to the metadata and read back. */
    CHECK_NEAR(bcae_model_threshold(model), 0.5, 1e-7);
    CHECK(bcae_model_set_threshold(model, 1.0f, &err) == BCAE_ERR_RANGE);
    CHECK(bcae_model_set_threshold(model, 0.0f, &err) == BCAE_ERR_RANGE);
    CHECK(bcae_model_set_threshold(model, NAN, &err) == BCAE_ERR_RANGE);
    CHECK(bcae_model_set_threshold(model, 0.4375f, &err) == BCAE_OK);
    {
        char p2[] = "test_codec_thr_XXXXXX";
        int fd2 = mkstemp(p2);
        close(fd2);
        CHECK(bcae_model_save(model, p2, &err) == BCAE_OK);
        bcae_model *m3 = NULL;
        CHECK(bcae_model_load(p2, &m3, &err) == BCAE_OK);
        unlink(p2);
        if (m3) {
            CHECK_NEAR(bcae_model_threshold(m3), 0.4375, 1e-7);
            uint8_t fa[32], fb[32];
            bcae_model_fingerprint(model, fa);
            bcae_model_fingerprint(m3, fb);
            CHECK(memcmp(fa, fb, 32) == 0);
            bcae_model_free(m3);
        }
    }
    CHECK(bcae_model_set_threshold(model, 0.5f, &err) == BCAE_OK);

    /* Values above 10 bits are refused, naming the wedge. */
    ev[V + 17] = 2000;
    CHECK(bcae_encode(c1, ev, 2, k1, &err) == BCAE_ERR_RANGE);
    CHECK(strstr(err.message, "wedge 1") != NULL);

    bcae_codec_free(c1);
    bcae_codec_free(c2);
    free(k1);
    free(k2);
    free(adc);
    free(lg);
    free(ev);
    bcae_model *m2 = NULL;
    CHECK(bcae_model_load("/nonexistent.safetensors", &m2, &err) != BCAE_OK && !m2);
    bcae_model_free(model);
    return check_report("test_codec");
}
