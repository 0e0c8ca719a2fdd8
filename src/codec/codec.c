/* The public codec: wedges <-> fp16 codes through any model (model.h) on an
 * engine. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bcae.h"
#include "core/error.h"
#include "core/half.h"
#include "model/model.h"

/* Decoding runs at this batch whatever the codec's batch, so that the bytes
 * a container decodes to do not depend on --batch: the engine may sum in
 * another order for another batch shape, and a classifier output near its
 * threshold then flips. Short batches are padded with zero codes, and a
 * wedge's result does not depend on its slot in the batch. Where the
 * decoders are batch-invariant (model_runner.decode_batch_invariant: the
 * fused decoder chain) the wedges of a short batch are decoded one at a time
 * on a batch-1 runner instead, with the same bytes and a quarter of the work
 * for a single wedge (a Python decode of one code, an HDF5 chunk). */
#define DECODE_BATCH 4

struct bcae_codec {
    const bcae_model *model;
    nn_engine *engine;
    model_runner *runner;  /* encodes at `batch` (and decodes if batch == DECODE_BATCH) */
    model_runner *decoder; /* decodes at DECODE_BATCH; the runner or a second one */
    model_runner *single;  /* batch 1, for the short batches of invariant decoders (or
                            * NULL); the runner itself when the codec's batch is 1 */
    runner_options ropt;
    int batch;
    float *host;  /* max(batch, DECODE_BATCH) * max(input, code) floats */
    nn_tensor recon;  /* engine tensor shaped like the decoder's input */
    nn_tensor recon1; /* the same for `single` */
    nn_tensor heads[3]; /* bcae_forward: seg, reg, recon at the codec's batch */
};

const char *bcae_precision_name(bcae_precision p)
{
    switch (p) {
    case BCAE_PRECISION_FP32: return "fp32";
    case BCAE_PRECISION_BF16: return "bf16";
    case BCAE_PRECISION_INT8: return "int8";
    }
    return NULL;
}

bcae_status bcae_precision_parse(const char *name, bcae_precision *out, bcae_error *err)
{
    if (!strcmp(name, "fp32")) *out = BCAE_PRECISION_FP32;
    else if (!strcmp(name, "bf16") || !strcmp(name, "half")) *out = BCAE_PRECISION_BF16;
    else if (!strcmp(name, "int8")) *out = BCAE_PRECISION_INT8;
    else
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                         "unknown precision '%s' (expected fp32, bf16 or int8)", name);
    return BCAE_OK;
}

/* A backend tensor shaped like `like`. */
static bcae_status alloc_like(nn_engine *e, const nn_tensor *like, nn_tensor *t, bcae_error *err)
{
    return nn_tensor_alloc(e, t, like->n, like->c, like->h, like->w, err);
}

bcae_status bcae_codec_create(const bcae_model *model, const bcae_codec_options *opt,
                              bcae_codec **out, bcae_error *err)
{
    *out = NULL;
    int batch = opt && opt->batch > 0 ? opt->batch : 4;
    int threads = opt ? opt->threads : 0;
    if (opt && !bcae_precision_name(opt->precision))
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "codec: unknown precision %d",
                         (int)opt->precision);
    if (opt && opt->decoder_precision != BCAE_PRECISION_FP32 &&
        opt->decoder_precision != BCAE_PRECISION_BF16)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                         "codec: the decoders run fp32 or bf16 (asked: %d)",
                         (int)opt->decoder_precision);
    if (opt && !bcae_device_name(opt->device))
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "codec: unknown device %d",
                         (int)opt->device);
    if (batch > 256) return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "codec: batch %d > 256", batch);
    bcae_codec *c = calloc(1, sizeof *c);
    if (!c) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "codec: out of memory");
    c->model = model;
    c->batch = batch;
    c->ropt.precision = opt ? opt->precision : BCAE_PRECISION_FP32;
    c->ropt.decoder_precision = opt ? opt->decoder_precision : BCAE_PRECISION_FP32;
    int most = batch > DECODE_BATCH ? batch : DECODE_BATCH;
    size_t per = model->input_floats > model->code_floats ? model->input_floats : model->code_floats;
    c->host = malloc((size_t)most * per * sizeof(float));
    bcae_status s = c->host ? BCAE_OK : bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "codec: out of memory");
    if (!s)
    {
        nn_engine_options eo = {.device = opt ? opt->device : BCAE_DEVICE_AUTO, .threads = threads};
        s = nn_engine_create(&eo, &c->engine, NULL, err);
    }
    if (!s) s = model_runner_create(c->engine, model, batch, RUNNER_INFERENCE, &c->ropt, &c->runner, err);
    if (!s && opt && opt->precision == BCAE_PRECISION_INT8)
        s = model_runner_calibrate(c->runner, opt->calibration, opt->calibration_wedges,
                                   opt->threads, c->host, err);
    if (s) {
        bcae_codec_free(c);
        return s;
    }
    *out = c;
    return BCAE_OK;
}

void bcae_codec_free(bcae_codec *c)
{
    if (!c) return;
    if (c->decoder != c->runner) model_runner_destroy(c->decoder);
    if (c->single != c->runner) model_runner_destroy(c->single);
    if (c->recon1.data) nn_tensor_free(c->engine, &c->recon1);
    model_runner_destroy(c->runner);
    if (c->recon.data) nn_tensor_free(c->engine, &c->recon);
    for (int k = 0; k < 3; k++)
        if (c->heads[k].data) nn_tensor_free(c->engine, &c->heads[k]);
    nn_engine_destroy(c->engine); /* after everything it allocated */
    free(c->host);
    free(c);
}

bcae_status bcae_encode(bcae_codec *c, const uint16_t *adc, size_t n, uint16_t *codes,
                        bcae_error *err)
{
    model_runner *r = c->runner;
    nn_engine *e = c->engine;
    const size_t per = c->model->code_floats;
    for (size_t w0 = 0; w0 < n; w0 += (size_t)c->batch) {
        size_t nb = n - w0 < (size_t)c->batch ? n - w0 : (size_t)c->batch;
        /* A short last batch is padded with empty wedges whose codes are dropped. */
        bcae_status s = model_runner_load_wedges(r, adc + w0 * BCAE_WEDGE_VOXELS, nb, w0, c->host, err);
        if (!s) s = r->ops->encode(r, err);
        if (s) return s;
        s = e->ops->to_nchw(e, &r->code, c->host);
        if (s) return nn_engine_error(e, s, err);
        /* A diverged or damaged model must not write a code that decodes
         * to garbage: a non-finite or fp16-overflowing value fails the wedge. */
        for (size_t i = 0; i < nb * per; i++)
            if (!isfinite(c->host[i]) || fabsf(c->host[i]) > 65504.0f)
                return bcae_fail(err, BCAE_ERR_RANGE,
                                 "encode: the model gave a non-finite code value (%g) for wedge "
                                 "%zu, element %zu: its weights are damaged or diverged",
                                 (double)c->host[i], w0 + i / per, i % per);
        for (size_t i = 0; i < nb * per; i++)
            codes[w0 * per + i] = bcae_f32_to_f16(c->host[i]);
    }
    return BCAE_OK;
}

/* The decoders at DECODE_BATCH, and where they are batch-invariant a batch-1
 * decoder for short batches, planned together (a chain reads its knobs, such
 * as BCAE_CHAIN_CONV, when it is planned: both then make the same choice).
 * Without the batch-1 decoder (it could not be made) short batches are
 * padded. */
static bcae_status decoder_ready(bcae_codec *c, bcae_error *err)
{
    if (c->decoder) return BCAE_OK;
    model_runner *d = c->runner;
    bcae_status s = BCAE_OK;
    /* Only the decoders of these runners run: their encoders stay fp32. */
    runner_options o = c->ropt;
    o.precision = BCAE_PRECISION_FP32;
    if (c->batch != DECODE_BATCH)
        s = model_runner_create(c->engine, c->model, DECODE_BATCH, RUNNER_INFERENCE, &o, &d, err);
    if (s) return s;
    c->decoder = d;
    s = alloc_like(c->engine, &d->input, &c->recon, err);
    if (s || !d->decode_batch_invariant) return s;
    if (c->batch == 1) {
        c->single = c->runner;
    } else {
        bcae_error ignored;
        if (model_runner_create(c->engine, c->model, 1, RUNNER_INFERENCE, &o, &c->single, &ignored))
            c->single = NULL;
    }
    /* The same kernels in both, or not the same bytes. */
    char k1[160] = "", k4[160] = "";
    if (c->single) {
        c->single->ops->describe(c->single, 3, k1, sizeof k1);
        d->ops->describe(d, 3, k4, sizeof k4);
    }
    if (c->single && (!c->single->decode_batch_invariant || strcmp(k1, k4) ||
                      alloc_like(c->engine, &c->single->input, &c->recon1, err))) {
        if (c->single != c->runner) model_runner_destroy(c->single);
        c->single = NULL;
    }
    return BCAE_OK;
}

/* Decodes codes[w0 .. w0 + nb) on runner r (batch >= nb; the rest of its
 * batch decodes zero codes). */
static bcae_status decode_batch(bcae_codec *c, model_runner *r, nn_tensor *recon,
                                const uint16_t *codes, size_t n, size_t w0, size_t nb,
                                uint16_t *adc, float *log_adc, bcae_error *err)
{
    nn_engine *e = c->engine;
    const bcae_model *m = c->model;
    const size_t per = m->code_floats;
    memset(c->host, 0, (size_t)r->batch * per * sizeof(float));
    for (size_t i = 0; i < nb * per; i++) {
        float v = bcae_f16_to_f32(codes[w0 * per + i]);
        if (!isfinite(v))
            return n == 1 ? bcae_fail(err, BCAE_ERR_FORMAT,
                                      "decode: the code holds a non-finite value (%g) at "
                                      "element %zu", (double)v, i % per)
                          : bcae_fail(err, BCAE_ERR_FORMAT,
                                      "decode: code %zu holds a non-finite value (%g) at "
                                      "element %zu", w0 + i / per, (double)v, i % per);
        c->host[i] = v;
    }
    bcae_status s = e->ops->from_nchw(e, c->host, &r->code);
    if (s) return nn_engine_error(e, s, err);
    s = r->ops->decode(r, err);
    if (s) return s;
    s = e->ops->bcae_heads(e, &r->seg_logit, &r->reg_raw, m->shift, m->scale,
                           m->cfg.clf_threshold, NULL, NULL, recon);
    if (s) return nn_engine_error(e, s, err);
    s = e->ops->to_nchw(e, recon, c->host);
    if (s) return nn_engine_error(e, s, err);
    for (size_t i = 0; i < nb; i++)
        m->arch->output_to_wedge(m, c->host + i * m->input_floats,
                                 adc ? adc + (w0 + i) * BCAE_WEDGE_VOXELS : NULL,
                                 log_adc ? log_adc + (w0 + i) * BCAE_WEDGE_VOXELS : NULL);
    return BCAE_OK;
}

bcae_status bcae_decode(bcae_codec *c, const uint16_t *codes, size_t n, uint16_t *adc,
                        float *log_adc, bcae_error *err)
{
    bcae_status s = decoder_ready(c, err);
    if (s) return s;
    model_runner *r = c->decoder;
    for (size_t w0 = 0; w0 < n; w0 += DECODE_BATCH) {
        size_t nb = n - w0 < DECODE_BATCH ? n - w0 : DECODE_BATCH;
        /* A short batch one wedge at a time where that gives the same bytes
         * (if the batch-1 runner cannot be made, the padded batch does). */
        if (nb < DECODE_BATCH && c->single) {
            for (size_t i = 0; i < nb && !s; i++)
                s = decode_batch(c, c->single, &c->recon1, codes, n, w0 + i, 1, adc, log_adc, err);
        } else {
            s = decode_batch(c, r, &c->recon, codes, n, w0, nb, adc, log_adc, err);
        }
        if (s) return s;
    }
    return BCAE_OK;
}

int bcae_model_output_shape(const bcae_model *m, size_t shape[4])
{
    for (int i = 0; i < m->output_ndim; i++) shape[i] = m->output_shape[i];
    return m->output_ndim;
}

bcae_status bcae_forward(bcae_codec *c, const uint16_t *adc, size_t n, int half, float *code,
                         float *seg, float *reg, float *recon, bcae_error *err)
{
    model_runner *r = c->runner;
    nn_engine *e = c->engine;
    const bcae_model *m = c->model;
    const size_t per = m->code_floats, out_per = BCAE_WEDGE_VOXELS;
    for (int k = 0; k < 3; k++) {
        bcae_status s = c->heads[k].data ? BCAE_OK : alloc_like(e, &r->input, &c->heads[k], err);
        if (s) return s;
    }
    float *outs[3] = {seg, reg, recon};
    for (size_t w0 = 0; w0 < n; w0 += (size_t)c->batch) {
        size_t nb = n - w0 < (size_t)c->batch ? n - w0 : (size_t)c->batch;
        bcae_status s = model_runner_load_wedges(r, adc + w0 * BCAE_WEDGE_VOXELS, nb, w0, c->host, err);
        if (!s) s = r->ops->encode(r, err);
        if (s) return s;
        s = e->ops->to_nchw(e, &r->code, c->host);
        if (s) return nn_engine_error(e, s, err);
        for (size_t i = 0; i < nb * per; i++)
            if (!isfinite(c->host[i]) || (half && fabsf(c->host[i]) > 65504.0f))
                return bcae_fail(err, BCAE_ERR_RANGE,
                                 "forward: the model gave a non-finite code value (%g) for wedge "
                                 "%zu, element %zu: its weights are damaged or diverged",
                                 (double)c->host[i], w0 + i / per, i % per);
        if (half) {
            /* As the compressor stores it. */
            for (size_t i = 0; i < (size_t)c->batch * per; i++)
                c->host[i] = bcae_f16_to_f32(bcae_f32_to_f16(c->host[i]));
            s = e->ops->from_nchw(e, c->host, &r->code);
            if (s) return nn_engine_error(e, s, err);
        }
        if (code) memcpy(code + w0 * per, c->host, nb * per * sizeof(float));
        s = r->ops->decode(r, err);
        if (s) return s;
        s = e->ops->bcae_heads(e, &r->seg_logit, &r->reg_raw, m->shift, m->scale,
                               m->cfg.clf_threshold, &c->heads[0], &c->heads[1], &c->heads[2]);
        if (s) return nn_engine_error(e, s, err);
        for (int k = 0; k < 3; k++) {
            if (!outs[k]) continue;
            s = e->ops->to_nchw(e, &c->heads[k], c->host);
            if (s) return nn_engine_error(e, s, err);
            for (size_t i = 0; i < nb; i++)
                m->arch->crop_output(m, c->host + i * m->input_floats, outs[k] + (w0 + i) * out_per);
        }
    }
    return BCAE_OK;
}

bcae_status bcae_classifier_histogram(bcae_codec *c, const uint16_t *adc, size_t n, uint64_t *hits,
                                      uint64_t *all, size_t nbins, bcae_error *err)
{
    if (!c || (n && !adc) || !hits || !all || nbins < 2)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                         "classifier histogram: NULL argument or fewer than 2 bins");
    const bcae_model *m = c->model;
    const size_t V = BCAE_WEDGE_VOXELS, batch = (size_t)c->batch;
    /* The truth is compared in the output's own layout: the model input of
     * each wedge, cropped as the outputs are (ADC > 0 <=> input > 0 in
     * either unit). */
    float *seg = malloc(batch * V * sizeof *seg);
    float *x = malloc(m->input_floats * sizeof *x), *truth = malloc(V * sizeof *truth);
    bcae_status s = BCAE_OK;
    if (!seg || !x || !truth)
        s = bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "classifier histogram: out of memory");
    for (size_t w0 = 0; !s && w0 < n; w0 += batch) {
        size_t nb = n - w0 < batch ? n - w0 : batch;
        s = bcae_forward(c, adc + w0 * V, nb, 1, NULL, seg, NULL, NULL, err);
        for (size_t i = 0; !s && i < nb; i++) {
            m->arch->wedge_to_input(m, adc + (w0 + i) * V, x);
            m->arch->crop_output(m, x, truth);
            const float *p = seg + i * V;
            for (size_t v = 0; v < V; v++) {
                /* A probability of exactly 1 belongs to the top bin. */
                size_t b = (size_t)(p[v] * (float)nbins);
                if (b >= nbins) b = nbins - 1;
                all[b]++;
                hits[b] += truth[v] > 0.0f;
            }
        }
    }
    free(seg);
    free(x);
    free(truth);
    return s;
}

void bcae_classifier_rates(const uint64_t *hits, const uint64_t *all, size_t nbins, size_t k,
                           double *precision, double *recall)
{
    uint64_t tp = 0, called = 0, positives = 0;
    for (size_t b = 0; b < nbins; b++) {
        positives += hits[b];
        if (b >= k) {
            tp += hits[b];
            called += all[b];
        }
    }
    if (precision) *precision = called ? (double)tp / (double)called : 1.0;
    if (recall) *recall = positives ? (double)tp / (double)positives : 1.0;
}

size_t bcae_classifier_breakeven(const uint64_t *hits, const uint64_t *all, size_t nbins)
{
    uint64_t positives = 0;
    for (size_t b = 0; b < nbins; b++) positives += hits[b];
    if (!positives || nbins < 2) return 1;
    /* Voxels called hits at edge k: the sum of all[] from k on, which falls
     * as k grows; take the k where it is nearest the true count. */
    uint64_t called = 0;
    size_t best = nbins - 1;
    uint64_t best_gap = UINT64_MAX;
    for (size_t k = nbins - 1; k >= 1; k--) {
        called += all[k];
        uint64_t gap = called > positives ? called - positives : positives - called;
        if (gap < best_gap) {
            best_gap = gap;
            best = k;
        }
    }
    return best;
}
