/* BCAE-2D: parameter table, layer lists, input layout, metadata. */
#include "model/bcae2d.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/safetensors.h"
#include "model/runner.h"

#define IN_CHANNELS BCAE_WEDGE_LAYERS

static bcae2d_op no_params(bcae2d_op_kind kind)
{
    bcae2d_op op = {kind, 0, 0, 0, 0, -1, -1, -1, -1, -1};
    return op;
}

static int add_conv(model_table *t, const char *prefix, int cin, int cout, int k, int *w, int *b)
{
    const int ks[2] = {k, k};
    return model_table_add_conv(t, prefix, cout, cin, 2, ks, cout, w, b);
}

/* Two residual blocks per network block, as the reference's Sequential
 * numbers them: a pooling or upsampling layer takes an index too. */
static int add_blocks(model_table *t, bcae2d_net *net, const char *prefix, int blocks,
                      int samplings, bcae2d_op_kind sampling)
{
    int j = 0;
    for (int i = 0; i < blocks; i++) {
        if (i < samplings) {
            net->ops[net->nops++] = no_params(sampling);
            j++;
        }
        for (int r = 0; r < 2; r++, j++) {
            char name[96];
            bcae2d_op *op = &net->ops[net->nops++];
            *op = no_params(OP_RESIDUAL);
            op->cin = op->cout = BCAE2D_CHANNELS;
            op->k = 3;
            op->pad = 1;
            /* PyTorch's state-dict order: the block's own alpha first. */
            size_t one[1] = {1};
            snprintf(name, sizeof name, "%s.layers.%d.rezero_alpha", prefix, j);
            op->alpha = model_table_add(t, name, 1, one);
            snprintf(name, sizeof name, "%s.layers.%d.conv1.0", prefix, j);
            if (op->alpha < 0 ||
                add_conv(t, name, BCAE2D_CHANNELS, BCAE2D_CHANNELS, 3, &op->w, &op->b))
                return -1;
            snprintf(name, sizeof name, "%s.layers.%d.conv2.0", prefix, j);
            if (add_conv(t, name, BCAE2D_CHANNELS, BCAE2D_CHANNELS, 3, &op->w2, &op->b2))
                return -1;
        }
    }
    return 0;
}

static bcae2d_op conv_op(int cin, int cout, int k, int pad, int w, int b)
{
    bcae2d_op op = no_params(OP_CONV);
    op.cin = cin;
    op.cout = cout;
    op.k = k;
    op.pad = pad;
    op.w = w;
    op.b = b;
    return op;
}

static bcae_status create(const model_arch *a, const model_config *mc, bcae_model *model,
                          bcae_error *err)
{
    if (mc->input == MODEL_INPUT_RAW)
        return bcae_fail(err, BCAE_ERR_UNSUPPORTED, "BCAE-2D takes log2(ADC+1) input only");
    bcae2d_config cfg = {mc->m ? mc->m : 4, mc->n ? mc->n : 8, mc->d ? mc->d : 3,
                         mc->clf_threshold > 0 ? mc->clf_threshold : 0.5f};
    if (cfg.d < 1 || cfg.d > 6 || cfg.m < cfg.d || cfg.n < cfg.d ||
        cfg.m > BCAE2D_MAX_DEPTH / 2 || cfg.n > BCAE2D_MAX_DEPTH / 2)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                         "BCAE-2D(m=%d, n=%d, d=%d): need 1 <= d <= 6, m >= d, n >= d, "
                         "m, n <= %d",
                         cfg.m, cfg.n, cfg.d, BCAE2D_MAX_DEPTH / 2);
    if (!(cfg.clf_threshold > 0 && cfg.clf_threshold < 1))
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                         "classification threshold %g is not in (0, 1)", cfg.clf_threshold);
    bcae2d_model *m2 = calloc(1, sizeof *m2);
    if (!m2) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "model: out of memory");
    model->impl = m2;
    m2->cfg = cfg;
    m2->t = &model->t;
    model_table *t = &model->t;
    int w, b, fail = 0;
    bcae2d_net *enc = &m2->nets[NET_ENCODER];
    fail |= add_conv(t, "encoder.init_conv", IN_CHANNELS, BCAE2D_CHANNELS, 7, &w, &b);
    enc->ops[enc->nops++] = conv_op(IN_CHANNELS, BCAE2D_CHANNELS, 7, 3, w, b);
    fail |= add_blocks(t, enc, "encoder", cfg.m, cfg.d, OP_POOL);
    const char *heads[2] = {"decoder.decoder_clf", "decoder.decoder_reg"};
    for (int h = 0; h < 2 && !fail; h++) {
        bcae2d_net *net = &m2->nets[NET_CLF + h];
        char name[96];
        fail |= add_blocks(t, net, heads[h], cfg.n, cfg.d, OP_UPSAMPLE);
        snprintf(name, sizeof name, "%s.output_layer", heads[h]);
        fail |= add_conv(t, name, BCAE2D_CHANNELS, IN_CHANNELS, 1, &w, &b);
        net->ops[net->nops++] = conv_op(BCAE2D_CHANNELS, IN_CHANNELS, 1, 0, w, b);
    }
    if (fail) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "model: out of memory");
    model->cfg = (model_config){cfg.m, cfg.n, cfg.d, {0}, cfg.clf_threshold, MODEL_INPUT_LOG};
    model->input_floats = BCAE_MODEL_VOXELS;
    model->code_ndim = 3;
    model->code_shape[0] = BCAE2D_CHANNELS;
    model->code_shape[1] = (size_t)bcae2d_code_h(m2);
    model->code_shape[2] = (size_t)bcae2d_code_w(m2);
    model->code_floats = model->code_shape[0] * model->code_shape[1] * model->code_shape[2];
    model->output_ndim = 3;
    model->output_shape[0] = BCAE_WEDGE_LAYERS;
    model->output_shape[1] = BCAE_WEDGE_AZIMUTH;
    model->output_shape[2] = BCAE_WEDGE_Z;
    model->shift = BCAE2D_SHIFT;
    model->scale = BCAE2D_SCALE;
    model->crop_w = BCAE_WEDGE_Z;
    (void)a;
    return BCAE_OK;
}

static void destroy(bcae_model *m)
{
    free(m->impl);
    m->impl = NULL;
}

/* The architecture's functions are reached only through m->arch, so impl
 * is always this file's. */
const bcae2d_model *bcae2d_of(const bcae_model *m) { return m->impl; }

int bcae2d_code_h(const bcae2d_model *model) { return BCAE_WEDGE_AZIMUTH >> model->cfg.d; }
int bcae2d_code_w(const bcae2d_model *model) { return BCAE_MODEL_Z >> model->cfg.d; }

static int meta_int(const bcae_st_file *f, const char *key, int *out)
{
    const char *v = bcae_st_meta(f, key);
    if (!v) return -1;
    char *end;
    long x = strtol(v, &end, 10);
    if (end == v || *end || x < 0 || x > 1000) return -1;
    *out = (int)x;
    return 0;
}

static bcae_status config_from_file(const model_arch *a, const bcae_st_file *f, const char *path,
                                    model_config *cfg, bcae_error *err)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->clf_threshold = 0.5f;
    int log_mode = 1, transform = 1;
    (void)a;
    if (meta_int(f, "m", &cfg->m) || meta_int(f, "n", &cfg->n) || meta_int(f, "d", &cfg->d) ||
        !cfg->m || !cfg->n || !cfg->d)
        return bcae_fail(err, BCAE_ERR_FORMAT, "%s: metadata m, n, d missing or not positive "
                         "integers", path);
    if ((bcae_st_meta(f, "log") && meta_int(f, "log", &log_mode)) ||
        (bcae_st_meta(f, "transform") && meta_int(f, "transform", &transform)) ||
        log_mode != 1 || transform != 1)
        return bcae_fail(err, BCAE_ERR_UNSUPPORTED,
                         "%s: BCAE-2D is built for log = 1 and transform = 1", path);
    const char *thr = bcae_st_meta(f, "clf_threshold");
    if (thr) {
        char *end;
        double v = strtod(thr, &end);
        if (end == thr || *end || !(v > 0 && v < 1))
            return bcae_fail(err, BCAE_ERR_FORMAT, "%s: bad clf_threshold '%s'", path, thr);
        cfg->clf_threshold = (float)v;
    }
    return BCAE_OK;
}

static int metadata(const bcae_model *m, const char **keys, const char **values, char bufs[8][64])
{
    const bcae2d_config *c = &bcae2d_of(m)->cfg;
    snprintf(bufs[0], 64, "%d", c->m);
    snprintf(bufs[1], 64, "%d", c->n);
    snprintf(bufs[2], 64, "%d", c->d);
    snprintf(bufs[3], 64, "%g", (double)m->cfg.clf_threshold);
    const char *k[] = {"arch", "m", "n", "d", "log", "transform", "clf_threshold"};
    const char *v[] = {"bcae-2d", bufs[0], bufs[1], bufs[2], "1", "1", bufs[3]};
    for (int i = 0; i < 7; i++) {
        keys[i] = k[i];
        values[i] = v[i];
    }
    return 7;
}

static void wedge_to_input(const bcae_model *m, const uint16_t *adc, float *x)
{
    (void)m;
    bcae_wedge_to_model(adc, x);
}

/* (16, 192, 256) -> (16, 192, 249). */
static void crop_output(const bcae_model *m, const float *x, float *out)
{
    (void)m;
    for (size_t p = 0; p < (size_t)BCAE_WEDGE_LAYERS * BCAE_WEDGE_AZIMUTH; p++)
        memcpy(out + p * BCAE_WEDGE_Z, x + p * BCAE_MODEL_Z, BCAE_WEDGE_Z * sizeof *out);
}

static void output_to_wedge(const bcae_model *m, const float *x, uint16_t *adc, float *log_adc)
{
    (void)m;
    if (adc) bcae_wedge_from_model(x, adc);
    if (!log_adc) return;
    /* (layer, azimuth, z padded) -> the file's (azimuth, z, layer). */
    for (size_t a = 0; a < BCAE_WEDGE_AZIMUTH; a++)
        for (size_t z = 0; z < BCAE_WEDGE_Z; z++)
            for (size_t l = 0; l < BCAE_WEDGE_LAYERS; l++)
                log_adc[(a * BCAE_WEDGE_Z + z) * BCAE_WEDGE_LAYERS + l] =
                    x[(l * BCAE_WEDGE_AZIMUTH + a) * BCAE_MODEL_Z + z];
}

static double encoder_flops(const bcae_model *m) { return bcae2d_encoder_flops(bcae2d_of(m)); }
static double decoder_flops(const bcae_model *m) { return bcae2d_decoder_flops(bcae2d_of(m)); }

/* Forward, backward-weights and backward-data of every convolution, except
 * the backward-data of the encoder's first one (the input needs no
 * gradient, and the runner skips it). */
static double train_flops(const bcae_model *m)
{
    const bcae2d_model *m2 = bcae2d_of(m);
    double fwd = bcae2d_encoder_flops(m2) + bcae2d_decoder_flops(m2);
    const bcae2d_op *op = &m2->nets[NET_ENCODER].ops[0];
    double first = 2.0 * op->cin * op->cout * op->k * op->k * BCAE_WEDGE_AZIMUTH * BCAE_MODEL_Z;
    return 3.0 * fwd - first;
}

const model_arch model_arch_bcae2d = {
    .name = "bcae-2d",
    .title = "BCAE-2D",
    .init_salt = 0x6d6f64656cULL,
    .create = create,
    .destroy = destroy,
    .config_from_file = config_from_file,
    .metadata = metadata,
    .alias = NULL,
    .wedge_to_input = wedge_to_input,
    .crop_output = crop_output,
    .output_to_wedge = output_to_wedge,
    .encoder_flops = encoder_flops,
    .decoder_flops = decoder_flops,
    .train_flops = train_flops,
    .runner_create = bcae2d_model_runner_create,
};
