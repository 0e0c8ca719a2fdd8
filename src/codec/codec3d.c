/* The codec for 3D models: layouts and encode / decode. */
#include "codec/codec3d.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/half.h"

size_t bcae3d_input_floats(const bcae3d_model *m)
{
    return (size_t)m->in_dims[0] * (size_t)m->in_dims[1] * (size_t)m->in_dims[2];
}

static int original_layout(const bcae3d_model *m) { return m->cfg.arch == BCAE3D_ORIGINAL; }

static float input_value(const bcae3d_model *m, uint16_t v)
{
    return m->cfg.log_input ? (float)log2((double)v + 1.0) : (float)v;
}

void bcae3d_wedge_to_input(const bcae3d_model *m, const uint16_t *adc, float *x)
{
    if (original_layout(m)) {
        for (size_t i = 0; i < BCAE_WEDGE_VOXELS; i++) x[i] = input_value(m, adc[i]);
        return;
    }
    /* (azimuth, z, layer) -> (layer, azimuth, z padded). */
    memset(x, 0, BCAE_MODEL_VOXELS * sizeof *x);
    for (size_t a = 0; a < BCAE_WEDGE_AZIMUTH; a++)
        for (size_t z = 0; z < BCAE_WEDGE_Z; z++)
            for (size_t l = 0; l < BCAE_WEDGE_LAYERS; l++)
                x[(l * BCAE_WEDGE_AZIMUTH + a) * BCAE_MODEL_Z + z] =
                    input_value(m, adc[(a * BCAE_WEDGE_Z + z) * BCAE_WEDGE_LAYERS + l]);
}

void bcae3d_crop_output(const bcae3d_model *m, const float *x, float *out)
{
    if (original_layout(m)) {
        memcpy(out, x, BCAE_WEDGE_VOXELS * sizeof *out);
        return;
    }
    for (size_t p = 0; p < (size_t)BCAE_WEDGE_LAYERS * BCAE_WEDGE_AZIMUTH; p++)
        memcpy(out + p * BCAE_WEDGE_Z, x + p * BCAE_MODEL_Z, BCAE_WEDGE_Z * sizeof *out);
}

/* One reconstructed value in the model's units -> ADC (unrounded). */
static double to_adc(const bcae3d_model *m, float v)
{
    return m->cfg.log_input ? exp2((double)v) - 1.0 : (double)v;
}

static uint16_t round_adc(double a)
{
    if (!(a > 0)) return 0; /* also NaN */
    if (a >= BCAE_ADC_MAX) return BCAE_ADC_MAX;
    return (uint16_t)lround(a);
}

void bcae3d_output_to_wedge(const bcae3d_model *m, const float *x, uint16_t *adc, float *log_adc)
{
    for (size_t a = 0; a < BCAE_WEDGE_AZIMUTH; a++)
        for (size_t z = 0; z < BCAE_WEDGE_Z; z++)
            for (size_t l = 0; l < BCAE_WEDGE_LAYERS; l++) {
                size_t dst = (a * BCAE_WEDGE_Z + z) * BCAE_WEDGE_LAYERS + l;
                size_t src = original_layout(m) ? dst
                                                : (l * BCAE_WEDGE_AZIMUTH + a) * BCAE_MODEL_Z + z;
                float v = x[src];
                if (adc) adc[dst] = round_adc(to_adc(m, v));
                if (log_adc) {
                    if (m->cfg.log_input) {
                        log_adc[dst] = v;
                    } else {
                        double r = to_adc(m, v);
                        log_adc[dst] = r > 0 ? (float)log2(r + 1.0) : 0.0f;
                    }
                }
            }
}

struct codec3d {
    const bcae3d_model *m;
    nn_engine *e;
    bcae3d_runner *r;
    int batch;
    size_t in_per, code_per;
    float *host, *code_host;
    float *recon;
    nn_tensor5 trecon;
};

bcae_status codec3d_create(const bcae3d_model *m, int batch, int threads, codec3d **out,
                           bcae_error *err)
{
    *out = NULL;
    codec3d *c = calloc(1, sizeof *c);
    if (!c) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "codec: out of memory");
    c->m = m;
    c->batch = batch;
    c->in_per = bcae3d_input_floats(m);
    c->code_per = bcae3d_code_elements(m);
    nn_engine_options eo = {.device = BCAE_DEVICE_CPU, .threads = threads};
    bcae_status s = nn_engine_create(&eo, &c->e, NULL, err);
    if (!s) s = bcae3d_runner_create(c->e, m, batch, 0, NN_CONV3D_AUTO, &c->r, err);
    if (!s) s = bcae3d_runner_use_fast_encoder(c->r, err);
    if (!s) s = bcae3d_runner_use_fast_decoder(c->r, err);
    if (!s) {
        c->trecon = *bcae3d_runner_input(c->r);
        size_t tf = nn_tensor_floats(c->e, c->trecon.n, c->trecon.c, c->trecon.d * c->trecon.h,
                                     c->trecon.w);
        c->recon = aligned_alloc(64, ((tf * sizeof(float) + 63) / 64) * 64);
        c->trecon.data = c->recon;
        c->host = malloc((size_t)batch * c->in_per * sizeof(float));
        c->code_host = malloc((size_t)batch * c->code_per * sizeof(float));
        if (!c->recon || !c->host || !c->code_host)
            s = bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "codec: out of memory");
    }
    if (s) {
        codec3d_free(c);
        return s;
    }
    *out = c;
    return BCAE_OK;
}

void codec3d_free(codec3d *c)
{
    if (!c) return;
    bcae3d_runner_destroy(c->r);
    nn_engine_destroy(c->e);
    free(c->recon);
    free(c->host);
    free(c->code_host);
    free(c);
}

bcae_status codec3d_encode(codec3d *c, const uint16_t *adc, size_t n, uint16_t *codes,
                           bcae_error *err)
{
    nn_engine *e = c->e;
    for (size_t w0 = 0; w0 < n; w0 += (size_t)c->batch) {
        size_t nb = n - w0 < (size_t)c->batch ? n - w0 : (size_t)c->batch;
        memset(c->host, 0, (size_t)c->batch * c->in_per * sizeof(float));
        for (size_t i = 0; i < nb; i++) {
            const uint16_t *w = adc + (w0 + i) * BCAE_WEDGE_VOXELS;
            for (size_t k = 0; k < BCAE_WEDGE_VOXELS; k++)
                if (w[k] > BCAE_ADC_MAX)
                    return bcae_fail(err, BCAE_ERR_RANGE,
                                     "encode: wedge %zu holds ADC %u at voxel %zu, above %d",
                                     w0 + i, w[k], k, BCAE_ADC_MAX);
            bcae3d_wedge_to_input(c->m, w, c->host + i * c->in_per);
        }
        nn_tensor in = nn_tensor5_flat(bcae3d_runner_input(c->r));
        e->ops->from_nchw(e, c->host, &in);
        bcae3d_runner_encode(c->r);
        nn_tensor code = nn_tensor5_flat(bcae3d_runner_code(c->r));
        e->ops->to_nchw(e, &code, c->code_host);
        for (size_t i = 0; i < nb * c->code_per; i++)
            codes[w0 * c->code_per + i] = bcae_f32_to_f16(c->code_host[i]);
    }
    return BCAE_OK;
}

bcae_status codec3d_decode(codec3d *c, const uint16_t *codes, size_t n, uint16_t *adc,
                           float *log_adc, bcae_error *err)
{
    nn_engine *e = c->e;
    (void)err;
    for (size_t w0 = 0; w0 < n; w0 += (size_t)c->batch) {
        size_t nb = n - w0 < (size_t)c->batch ? n - w0 : (size_t)c->batch;
        memset(c->code_host, 0, (size_t)c->batch * c->code_per * sizeof(float));
        for (size_t i = 0; i < nb * c->code_per; i++)
            c->code_host[i] = bcae_f16_to_f32(codes[w0 * c->code_per + i]);
        nn_tensor code = nn_tensor5_flat(bcae3d_runner_code(c->r));
        e->ops->from_nchw(e, c->code_host, &code);
        bcae3d_runner_decode(c->r);
        nn_tensor s = nn_tensor5_flat(bcae3d_runner_seg_logit(c->r));
        nn_tensor g = nn_tensor5_flat(bcae3d_runner_reg_raw(c->r));
        nn_tensor rec = nn_tensor5_flat(&c->trecon);
        e->ops->bcae_heads(e, &s, &g, c->m->shift, c->m->scale, c->m->cfg.clf_threshold, NULL,
                           NULL, &rec);
        e->ops->to_nchw(e, &rec, c->host);
        for (size_t i = 0; i < nb; i++)
            bcae3d_output_to_wedge(c->m, c->host + i * c->in_per,
                                   adc ? adc + (w0 + i) * BCAE_WEDGE_VOXELS : NULL,
                                   log_adc ? log_adc + (w0 + i) * BCAE_WEDGE_VOXELS : NULL);
    }
    return BCAE_OK;
}
