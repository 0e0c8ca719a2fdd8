/* The public codec: wedges <-> fp16 codes through a model on an engine. */
#include <stdlib.h>
#include <string.h>

#include "bcae.h"
#include "core/error.h"
#include "core/half.h"
#include "codec/calibrate.h"
#include "model/runner.h"
#include "codec/codec3d.h"

/* A model is a BCAE-2D (m) or a 3D model (m3, when is3d): codec3d.c runs those. */
struct bcae_model {
    bcae2d_model m;
    int is3d;
    bcae3d_model m3;
};

struct bcae_codec {
    const bcae_model *model;
    nn_engine *engine;
    bcae2d_runner *runner;
    int batch;
    size_t code_per; /* floats of one wedge's code */
    float *host;     /* batch * BCAE_MODEL_VOXELS */
    float *recon;    /* engine tensor (batch, 16, 192, 256) */
    nn_tensor trecon;
    codec3d *c3; /* 3D models: everything above is unused */
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

bcae_status bcae_model_load(const char *path, bcae_model **out, bcae_error *err)
{
    *out = NULL;
    bcae_model *m = calloc(1, sizeof *m);
    if (!m) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "out of memory");
    char arch[64];
    bcae_status s = bcae_model_file_arch(path, arch, sizeof arch, err);
    if (!s && bcae3d_arch_parse(arch) >= 0) {
        m->is3d = 1;
        s = bcae3d_load(path, &m->m3, err);
    } else if (!s) {
        s = bcae2d_load(path, &m->m, err);
    }
    if (s) {
        free(m);
        return s;
    }
    *out = m;
    return BCAE_OK;
}

void bcae_model_free(bcae_model *model)
{
    if (!model) return;
    if (model->is3d) bcae3d_destroy(&model->m3);
    else bcae2d_destroy(&model->m);
    free(model);
}

const char *bcae_model_arch(const bcae_model *model)
{
    return model->is3d ? bcae3d_arch_name(model->m3.cfg.arch) : "bcae-2d";
}

void bcae_model_fingerprint(const bcae_model *model, uint8_t out[32])
{
    memcpy(out, model->is3d ? model->m3.fingerprint : model->m.fingerprint, 32);
}

int bcae_model_code_shape(const bcae_model *model, size_t shape[4])
{
    if (model->is3d) {
        shape[0] = BCAE3D_CODE_CHANNELS;
        for (int i = 0; i < 3; i++) shape[1 + i] = (size_t)model->m3.code_dims[i];
        return 4;
    }
    shape[0] = BCAE2D_CHANNELS;
    shape[1] = (size_t)bcae2d_code_h(&model->m);
    shape[2] = (size_t)bcae2d_code_w(&model->m);
    return 3;
}

size_t bcae_model_code_elements(const bcae_model *model)
{
    if (model->is3d) return bcae3d_code_elements(&model->m3);
    return (size_t)BCAE2D_CHANNELS * (size_t)bcae2d_code_h(&model->m) *
           (size_t)bcae2d_code_w(&model->m);
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
    if (opt && !bcae_device_name(opt->device))
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "codec: unknown device %d",
                         (int)opt->device);
    if (batch > 256) return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "codec: batch %d > 256", batch);
    bcae_codec *c = calloc(1, sizeof *c);
    if (!c) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "codec: out of memory");
    c->model = model;
    c->batch = batch;
    c->code_per = bcae_model_code_elements(model);
    if (model->is3d) {
        bcae_status s3 = BCAE_OK;
        if (opt && opt->precision != BCAE_PRECISION_FP32)
            s3 = bcae_fail(err, BCAE_ERR_UNSUPPORTED, "codec: precision %s is not supported for "
                           "%s yet (fp32 only)", bcae_precision_name(opt->precision),
                           bcae3d_arch_name(model->m3.cfg.arch));
        if (!s3 && opt && opt->device == BCAE_DEVICE_CUDA)
            s3 = bcae_fail(err, BCAE_ERR_UNSUPPORTED, "codec: %s runs on the CPU only",
                           bcae3d_arch_name(model->m3.cfg.arch));
        if (!s3) s3 = codec3d_create(&model->m3, batch, threads, &c->c3, err);
        if (s3) {
            free(c);
            return s3;
        }
        *out = c;
        return BCAE_OK;
    }
    nn_engine_options eo = {.device = opt ? opt->device : BCAE_DEVICE_AUTO, .threads = threads};
    bcae_status s = nn_engine_create(&eo, &c->engine, NULL, err);
    if (!s) s = bcae2d_runner_create(c->engine, &model->m, batch, 0, &c->runner, err);
    if (!s) s = bcae2d_runner_use_chain(c->runner, opt ? opt->precision : BCAE_PRECISION_FP32,
                                        NN_FIRST_SPARSE, err);
    if (!s) {
        c->trecon = *bcae2d_runner_input(c->runner);
        size_t tf = nn_tensor_floats(c->engine, c->trecon.n, c->trecon.c, c->trecon.h, c->trecon.w);
        c->recon = aligned_alloc(64, ((tf * sizeof(float) + 63) / 64) * 64);
        c->host = malloc((size_t)batch * BCAE_MODEL_VOXELS * sizeof(float));
        c->trecon.data = c->recon;
        if (!c->recon || !c->host) s = bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "codec: out of memory");
    }
    if (!s && opt && opt->precision == BCAE_PRECISION_INT8)
        s = codec_calibrate(c->engine, c->runner, c->batch, c->host, opt->calibration,
                            opt->calibration_wedges, opt->threads, err);
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
    codec3d_free(c->c3);
    bcae2d_runner_destroy(c->runner);
    nn_engine_destroy(c->engine);
    free(c->host);
    free(c->recon);
    free(c);
}

bcae_status bcae_encode(bcae_codec *c, const uint16_t *adc, size_t n, uint16_t *codes,
                        bcae_error *err)
{
    if (c->c3) return codec3d_encode(c->c3, adc, n, codes, err);
    nn_engine *e = c->engine;
    for (size_t w0 = 0; w0 < n; w0 += (size_t)c->batch) {
        size_t nb = n - w0 < (size_t)c->batch ? n - w0 : (size_t)c->batch;
        /* A short last batch is padded with empty wedges whose codes are dropped. */
        memset(c->host, 0, (size_t)c->batch * BCAE_MODEL_VOXELS * sizeof(float));
        for (size_t i = 0; i < nb; i++) {
            const uint16_t *w = adc + (w0 + i) * BCAE_WEDGE_VOXELS;
            for (size_t k = 0; k < BCAE_WEDGE_VOXELS; k++)
                if (w[k] > BCAE_ADC_MAX)
                    return bcae_fail(err, BCAE_ERR_RANGE,
                                     "encode: wedge %zu holds ADC %u at voxel %zu, above %d",
                                     w0 + i, w[k], k, BCAE_ADC_MAX);
            bcae_wedge_to_model(w, c->host + i * BCAE_MODEL_VOXELS);
        }
        e->ops->from_nchw(e, c->host, bcae2d_runner_input(c->runner));
        bcae2d_runner_encode(c->runner);
        e->ops->to_nchw(e, bcae2d_runner_code(c->runner), c->host);
        for (size_t i = 0; i < nb * c->code_per; i++)
            codes[w0 * c->code_per + i] = bcae_f32_to_f16(c->host[i]);
    }
    return BCAE_OK;
}

bcae_status bcae_decode(bcae_codec *c, const uint16_t *codes, size_t n, uint16_t *adc,
                        float *log_adc, bcae_error *err)
{
    if (c->c3) return codec3d_decode(c->c3, codes, n, adc, log_adc, err);
    nn_engine *e = c->engine;
    const float threshold = c->model->m.cfg.clf_threshold;
    (void)err;
    for (size_t w0 = 0; w0 < n; w0 += (size_t)c->batch) {
        size_t nb = n - w0 < (size_t)c->batch ? n - w0 : (size_t)c->batch;
        memset(c->host, 0, (size_t)c->batch * c->code_per * sizeof(float));
        for (size_t i = 0; i < nb * c->code_per; i++)
            c->host[i] = bcae_f16_to_f32(codes[w0 * c->code_per + i]);
        e->ops->from_nchw(e, c->host, bcae2d_runner_code(c->runner));
        bcae2d_runner_decode(c->runner);
        e->ops->bcae_heads(e, bcae2d_runner_seg_logit(c->runner), bcae2d_runner_reg_raw(c->runner),
                           BCAE2D_SHIFT, BCAE2D_SCALE, threshold, NULL, NULL, &c->trecon);
        e->ops->to_nchw(e, &c->trecon, c->host);
        for (size_t i = 0; i < nb; i++) {
            const float *x = c->host + i * BCAE_MODEL_VOXELS;
            if (adc) bcae_wedge_from_model(x, adc + (w0 + i) * BCAE_WEDGE_VOXELS);
            if (log_adc) {
                /* (layer, azimuth, z padded) -> the file's (azimuth, z, layer). */
                float *dst = log_adc + (w0 + i) * BCAE_WEDGE_VOXELS;
                for (int a = 0; a < BCAE_WEDGE_AZIMUTH; a++)
                    for (int z = 0; z < BCAE_WEDGE_Z; z++)
                        for (int l = 0; l < BCAE_WEDGE_LAYERS; l++)
                            dst[((size_t)a * BCAE_WEDGE_Z + (size_t)z) * BCAE_WEDGE_LAYERS + (size_t)l] =
                                x[((size_t)l * BCAE_WEDGE_AZIMUTH + (size_t)a) * BCAE_MODEL_Z + (size_t)z];
            }
        }
    }
    return BCAE_OK;
}
