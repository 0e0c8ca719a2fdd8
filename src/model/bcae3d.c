/* BCAE++, BCAE-HT and the original BCAE: parameter table, networks, files. */
#include "model/bcae3d.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"
#include "io/safetensors.h"
#include "model/runner3d.h"

static const model_arch *arch_of(bcae3d_arch a);

static const int DECODER_FEATURES[BCAE3D_BLOCKS] = {16, 8, 4, 2};

/* The original BCAE's (kernel, padding, stride) per encoder block, in its
 * (azimuth, z, layer) order; the decoders use them mirrored. */
static const int ORIG_K[BCAE3D_BLOCKS][3] = {{4, 3, 3}, {4, 4, 3}, {4, 4, 3}, {4, 3, 3}};
static const int ORIG_P[BCAE3D_BLOCKS][3] = {{1, 0, 1}, {1, 1, 1}, {1, 1, 1}, {1, 0, 1}};
static const int ORIG_S[3] = {2, 2, 1};

void bcae3d_config_default(bcae3d_arch arch, bcae3d_config *cfg)
{
    static const int pp[4] = {8, 16, 32, 32}, ht[4] = {2, 4, 4, 8};
    memset(cfg, 0, sizeof *cfg);
    cfg->arch = arch;
    memcpy(cfg->features, arch == BCAE3D_HT ? ht : pp, sizeof cfg->features);
    cfg->log_input = arch != BCAE3D_ORIGINAL;
    cfg->clf_threshold = 0.5f;
}

/* ---- the parameter table ---------------------------------------------------- */

/* <prefix>.weight, <prefix>.bias of a Conv3d (cout, cin, k) or a
 * ConvTranspose3d (cin, cout, k). */
static void add_conv(model_table *t, const char *prefix, int cin, int cout, const int k[3],
                     int transposed, int *w, int *b)
{
    model_table_add_conv(t, prefix, transposed ? cin : cout, transposed ? cout : cin, 3, k, cout,
                         w, b);
}

/* One block, named <prefix>.{rezero_alpha, main_block.0, main_block.3,
 * side_block.0} in PyTorch's state-dict order (the block's own parameter
 * first, then its submodules in registration order). */
static void add_block(model_table *t, bcae3d_block *b, const char *prefix)
{
    static const int k3[3] = {3, 3, 3};
    char name[160];
    size_t one[1] = {1};
    snprintf(name, sizeof name, "%s.rezero_alpha", prefix);
    b->alpha = model_table_add(t, name, 1, one);
    snprintf(name, sizeof name, "%s.main_block.0", prefix);
    add_conv(t, name, b->cin, b->cout, b->k, b->transposed, &b->w0, &b->b0);
    snprintf(name, sizeof name, "%s.main_block.3", prefix);
    add_conv(t, name, b->cout, b->cout, k3, 0, &b->w3, &b->b3);
    snprintf(name, sizeof name, "%s.side_block.0", prefix);
    add_conv(t, name, b->cin, b->cout, b->k, b->transposed, &b->ws, &b->bs);
}

static void block_shape(const bcae3d_config *cfg, int i, int transposed, bcae3d_block *b)
{
    if (cfg->arch == BCAE3D_ORIGINAL) {
        int j = transposed ? BCAE3D_BLOCKS - 1 - i : i; /* decoders mirror the list */
        for (int a = 0; a < 3; a++) {
            b->k[a] = ORIG_K[j][a];
            b->pad[a] = ORIG_P[j][a];
            b->stride[a] = ORIG_S[a];
        }
        b->norm = 1;
    } else {
        static const int k[3] = {3, 4, 4}, s[3] = {1, 2, 2}, p[3] = {1, 1, 1};
        memcpy(b->k, k, sizeof k);
        memcpy(b->stride, s, sizeof s);
        memcpy(b->pad, p, sizeof p);
        b->norm = 0;
    }
    b->transposed = transposed;
}

/* The net's spatial dims after each block, from in (or the code). */
static void net_dims(const bcae3d_net *net, const int in[3], int out[3])
{
    int cur[3] = {in[0], in[1], in[2]};
    for (int i = 0; i < net->nblocks; i++) {
        const bcae3d_block *b = &net->blocks[i];
        for (int a = 0; a < 3; a++)
            cur[a] = b->transposed ? (cur[a] - 1) * b->stride[a] - 2 * b->pad[a] + b->k[a]
                                   : (cur[a] + 2 * b->pad[a] - b->k[a]) / b->stride[a] + 1;
    }
    memcpy(out, cur, sizeof cur);
}

static bcae_status build(const bcae3d_config *cfg, bcae3d_model *model, model_table *tab,
                         bcae_error *err)
{
    if (cfg->arch != BCAE3D_PLUSPLUS && cfg->arch != BCAE3D_HT && cfg->arch != BCAE3D_ORIGINAL)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "3D model: unknown architecture %d",
                         (int)cfg->arch);
    for (int i = 0; i < BCAE3D_BLOCKS; i++)
        if (cfg->features[i] < 1 || cfg->features[i] > 256)
            return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                             "%s: encoder width %d out of range [1, 256]",
                             arch_of(cfg->arch)->name, cfg->features[i]);
    if (!(cfg->clf_threshold > 0 && cfg->clf_threshold < 1))
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                         "classification threshold %g is not in (0, 1)", cfg->clf_threshold);
    model->cfg = *cfg;
    model->t = tab;
    const int orig = cfg->arch == BCAE3D_ORIGINAL;
    model_table *t = tab;
    char name[160];
    /* Encoder. */
    bcae3d_net *enc = &model->nets[NET3D_ENCODER];
    int cin = 1;
    for (int i = 0; i < BCAE3D_BLOCKS; i++) {
        bcae3d_block *b = &enc->blocks[enc->nblocks++];
        block_shape(cfg, i, 0, b);
        b->cin = cin;
        b->cout = cin = cfg->features[i];
        snprintf(name, sizeof name, "encoder.layers.encoder_block_%d", i);
        add_block(t, b, name);
    }
    static const int k3[3] = {3, 3, 3};
    enc->out_cin = cin;
    enc->out_cout = BCAE3D_CODE_CHANNELS;
    enc->out_act = orig;
    add_conv(t, "encoder.layers.encoder_output.0", cin, BCAE3D_CODE_CHANNELS, k3, 0, &enc->out_w,
             &enc->out_b);
    /* Decoders. */
    const char *heads[2] = {orig ? "decoder.decoder_c" : "decoder.decoder_clf",
                            orig ? "decoder.decoder_r" : "decoder.decoder_reg"};
    for (int h = 0; h < 2; h++) {
        bcae3d_net *net = &model->nets[NET3D_CLF + h];
        cin = BCAE3D_CODE_CHANNELS;
        for (int i = 0; i < BCAE3D_BLOCKS; i++) {
            bcae3d_block *b = &net->blocks[net->nblocks++];
            block_shape(cfg, i, 1, b);
            b->cin = cin;
            b->cout = cin = DECODER_FEATURES[i];
            snprintf(name, sizeof name, "%s.layers.decoder_block_%d", heads[h], i);
            add_block(t, b, name);
        }
        net->out_cin = cin;
        net->out_cout = 1;
        snprintf(name, sizeof name, "%s.layers.decoder_output.0", heads[h]);
        add_conv(t, name, cin, 1, k3, 0, &net->out_w, &net->out_b);
    }
    if (t->fail) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "model: out of memory");
    if (orig) {
        model->in_dims[0] = BCAE_WEDGE_AZIMUTH;
        model->in_dims[1] = BCAE_WEDGE_Z;
        model->in_dims[2] = BCAE_WEDGE_LAYERS;
        model->crop_w = BCAE_WEDGE_LAYERS;
    } else {
        model->in_dims[0] = BCAE_WEDGE_LAYERS;
        model->in_dims[1] = BCAE_WEDGE_AZIMUTH;
        model->in_dims[2] = BCAE_MODEL_Z;
        model->crop_w = BCAE_WEDGE_Z;
    }
    if (cfg->log_input) {
        model->shift = 6.0f;
        model->scale = 3.0f;
    } else {
        model->shift = 64.0f;
        model->scale = 6.0f;
    }
    net_dims(enc, model->in_dims, model->code_dims);
    /* The decoders must give the input's shape back. */
    int back[3];
    net_dims(&model->nets[NET3D_CLF], model->code_dims, back);
    if (back[0] != model->in_dims[0] || back[1] != model->in_dims[1] ||
        back[2] != model->in_dims[2])
        return bcae_fail(err, BCAE_ERR_INTERNAL, "3D model: decoders do not invert the encoder");
    return BCAE_OK;
}

size_t bcae3d_code_elements(const bcae3d_model *model)
{
    return (size_t)BCAE3D_CODE_CHANNELS * (size_t)model->code_dims[0] *
           (size_t)model->code_dims[1] * (size_t)model->code_dims[2];
}

/* ---- FLOPs ---------------------------------------------------------------------- */

static double conv_flops(int cin, int cout, const int k[3], const int small[3])
{
    return 2.0 * cin * cout * (double)k[0] * k[1] * k[2] * (double)small[0] * small[1] * small[2];
}

static double net_flops(const bcae3d_net *net, const int in[3])
{
    static const int k3[3] = {3, 3, 3};
    int cur[3] = {in[0], in[1], in[2]};
    double f = 0;
    for (int i = 0; i < net->nblocks; i++) {
        const bcae3d_block *b = &net->blocks[i];
        int nxt[3];
        for (int a = 0; a < 3; a++)
            nxt[a] = b->transposed ? (cur[a] - 1) * b->stride[a] - 2 * b->pad[a] + b->k[a]
                                   : (cur[a] + 2 * b->pad[a] - b->k[a]) / b->stride[a] + 1;
        /* A strided conv's multiplies are counted at its small side. */
        f += 2 * conv_flops(b->cin, b->cout, b->k, b->transposed ? cur : nxt);
        f += conv_flops(b->cout, b->cout, k3, nxt);
        memcpy(cur, nxt, sizeof cur);
    }
    return f + conv_flops(net->out_cin, net->out_cout, k3, cur);
}

double bcae3d_encoder_flops(const bcae3d_model *m)
{
    return net_flops(&m->nets[NET3D_ENCODER], m->in_dims);
}

double bcae3d_decoder_flops(const bcae3d_model *m)
{
    return net_flops(&m->nets[NET3D_CLF], m->code_dims) + net_flops(&m->nets[NET3D_REG], m->code_dims);
}

/* ---- files ------------------------------------------------------------------------ */

static int parse_features(const char *s, int out[BCAE3D_BLOCKS])
{
    for (int i = 0; i < BCAE3D_BLOCKS; i++) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > 256) return -1;
        out[i] = (int)v;
        if (i < BCAE3D_BLOCKS - 1) {
            if (*end != ',') return -1;
            s = end + 1;
        } else if (*end) {
            return -1;
        }
    }
    return 0;
}

static int meta_flag(const bcae_st_file *f, const char *key, int dflt, int *out)
{
    const char *v = bcae_st_meta(f, key);
    if (!v) {
        *out = dflt;
        return 0;
    }
    if (!strcmp(v, "0") || !strcmp(v, "1")) {
        *out = v[0] - '0';
        return 0;
    }
    return -1;
}


static bcae_status config_from_file(const model_arch *ma, const bcae_st_file *f, const char *path,
                                    model_config *cfg, bcae_error *err)
{
    bcae3d_config c;
    bcae3d_config_default((bcae3d_arch)ma->impl_id, &c);
    memset(cfg, 0, sizeof *cfg);
    memcpy(cfg->features, c.features, sizeof cfg->features);
    cfg->clf_threshold = c.clf_threshold;
    int log_input, transform;
    const char *feat = bcae_st_meta(f, "features");
    const char *thr = bcae_st_meta(f, "clf_threshold");
    if (feat && parse_features(feat, cfg->features))
        return bcae_fail(err, BCAE_ERR_FORMAT,
                         "%s: features '%s' is not four comma-separated widths in [1, 256]", path,
                         feat);
    if (meta_flag(f, "log", c.log_input, &log_input) ||
        meta_flag(f, "transform", log_input, &transform))
        return bcae_fail(err, BCAE_ERR_FORMAT, "%s: metadata log / transform must be 0 or 1",
                         path);
    if (transform != log_input)
        return bcae_fail(err, BCAE_ERR_UNSUPPORTED,
                         "%s: log = %d with transform = %d: the regression transform must "
                         "match the input (6 + 3 exp(r) for log2 input, 64 + 6 exp(r) for raw "
                         "ADC)",
                         path, log_input, transform);
    cfg->input = log_input ? MODEL_INPUT_LOG : MODEL_INPUT_RAW;
    if (thr) {
        char *end;
        double v = strtod(thr, &end);
        if (end == thr || *end || !(v > 0 && v < 1))
            return bcae_fail(err, BCAE_ERR_FORMAT, "%s: bad clf_threshold '%s'", path, thr);
        cfg->clf_threshold = (float)v;
    }
    return BCAE_OK;
}

/* ---- the architecture behind model.h ------------------------------------------------ */

/* The architecture's functions are reached only through m->arch, so impl
 * is always this file's. */
const bcae3d_model *bcae3d_of(const bcae_model *m) { return m->impl; }

static bcae_status create(const model_arch *ma, const model_config *mc, bcae_model *model,
                          bcae_error *err)
{
    bcae3d_config cfg;
    bcae3d_config_default((bcae3d_arch)ma->impl_id, &cfg);
    for (int i = 0; i < BCAE3D_BLOCKS; i++)
        if (mc->features[i]) cfg.features[i] = mc->features[i];
    if (mc->clf_threshold != 0) cfg.clf_threshold = mc->clf_threshold;
    if (mc->input) cfg.log_input = mc->input == MODEL_INPUT_LOG;
    bcae3d_model *m3 = calloc(1, sizeof *m3);
    if (!m3) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "model: out of memory");
    model->impl = m3;
    bcae_status s = build(&cfg, m3, &model->t, err);
    if (s) return s;
    model->cfg = (model_config){0, 0, 0, {0}, cfg.clf_threshold,
                                cfg.log_input ? MODEL_INPUT_LOG : MODEL_INPUT_RAW};
    memcpy(model->cfg.features, cfg.features, sizeof cfg.features);
    model->input_floats = (size_t)m3->in_dims[0] * (size_t)m3->in_dims[1] * (size_t)m3->in_dims[2];
    model->code_ndim = 4;
    model->code_shape[0] = BCAE3D_CODE_CHANNELS;
    for (int i = 0; i < 3; i++) model->code_shape[1 + i] = (size_t)m3->code_dims[i];
    model->code_floats = bcae3d_code_elements(m3);
    model->output_ndim = 4; /* one channel, then the cropped input dims */
    model->output_shape[0] = 1;
    if (cfg.arch == BCAE3D_ORIGINAL) {
        model->output_shape[1] = BCAE_WEDGE_AZIMUTH;
        model->output_shape[2] = BCAE_WEDGE_Z;
        model->output_shape[3] = BCAE_WEDGE_LAYERS;
    } else {
        model->output_shape[1] = BCAE_WEDGE_LAYERS;
        model->output_shape[2] = BCAE_WEDGE_AZIMUTH;
        model->output_shape[3] = BCAE_WEDGE_Z;
    }
    model->shift = m3->shift;
    model->scale = m3->scale;
    model->crop_w = m3->crop_w;
    return BCAE_OK;
}

static void destroy(bcae_model *m)
{
    free(m->impl);
    m->impl = NULL;
}

static int metadata(const bcae_model *m, const char **keys, const char **values, char bufs[8][64])
{
    const bcae3d_model *m3 = bcae3d_of(m);
    const int *f = m3->cfg.features;
    snprintf(bufs[0], 64, "%d,%d,%d,%d", f[0], f[1], f[2], f[3]);
    snprintf(bufs[1], 64, "%g", (double)m->cfg.clf_threshold);
    const char *log = m3->cfg.log_input ? "1" : "0";
    const char *k[] = {"arch", "features", "log", "transform", "clf_threshold"};
    const char *v[] = {m->arch->name, bufs[0], log, log, bufs[1]};
    for (int i = 0; i < 5; i++) {
        keys[i] = k[i];
        values[i] = v[i];
    }
    return 5;
}

/* ---- layouts: wedge <-> model input and output -------------------------------------- */

static int original_layout(const bcae3d_model *m) { return m->cfg.arch == BCAE3D_ORIGINAL; }

static float input_value(const bcae3d_model *m, uint16_t v)
{
    return m->cfg.log_input ? (float)log2((double)v + 1.0) : (float)v;
}

/* log2(ADC+1) or raw ADC (cfg.log_input), in (layer, azimuth, z padded to
 * 256) for BCAE++/HT, in the file's own (azimuth, z, layer) for BCAE. */
static void wedge_to_input(const bcae_model *mm, const uint16_t *adc, float *x)
{
    const bcae3d_model *m = bcae3d_of(mm);
    if (original_layout(m)) {
        for (size_t i = 0; i < BCAE_WEDGE_VOXELS; i++) x[i] = input_value(m, adc[i]);
        return;
    }
    memset(x, 0, BCAE_MODEL_VOXELS * sizeof *x);
    for (size_t a = 0; a < BCAE_WEDGE_AZIMUTH; a++)
        for (size_t z = 0; z < BCAE_WEDGE_Z; z++)
            for (size_t l = 0; l < BCAE_WEDGE_LAYERS; l++)
                x[(l * BCAE_WEDGE_AZIMUTH + a) * BCAE_MODEL_Z + z] =
                    input_value(m, adc[(a * BCAE_WEDGE_Z + z) * BCAE_WEDGE_LAYERS + l]);
}

/* (16, 192, 256) -> (16, 192, 249) for BCAE++/HT; BCAE's is uncropped. */
static void crop_output(const bcae_model *mm, const float *x, float *out)
{
    const bcae3d_model *m = bcae3d_of(mm);
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

static void output_to_wedge(const bcae_model *mm, const float *x, uint16_t *adc, float *log_adc)
{
    const bcae3d_model *m = bcae3d_of(mm);
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

/* bcae wrote BCAE++ / BCAE-HT files with the output layers outside `layers.`
 * until 2026-12-06 (SPEC 3 had the reference's names wrong); such files,
 * and checkpoints, still load. */
static const char *old_name(const bcae_model *m, const char *name, char *buf, size_t size)
{
    static const char *const moved[] = {"encoder.layers.encoder_output.",
                                        "decoder_clf.layers.decoder_output.",
                                        "decoder_reg.layers.decoder_output."};
    if (bcae3d_of(m)->cfg.arch == BCAE3D_ORIGINAL) return NULL;
    for (int i = 0; i < 3; i++) {
        const char *at = strstr(name, moved[i]);
        if (!at) continue;
        const char *layers = strstr(at, "layers.");
        int n = snprintf(buf, size, "%.*s%s", (int)(layers - name), name, layers + 7);
        return n >= 0 && (size_t)n < size ? buf : NULL;
    }
    return NULL;
}

static double encoder_flops(const bcae_model *m) { return bcae3d_encoder_flops(bcae3d_of(m)); }
static double decoder_flops(const bcae_model *m) { return bcae3d_decoder_flops(bcae3d_of(m)); }
static double train_flops(const bcae_model *m) { return 3.0 * (encoder_flops(m) + decoder_flops(m)); }

#define ARCH_3D(var, id, nm, ttl)                                                              \
    const model_arch var = {                                                                   \
        .name = nm,                                                                            \
        .title = ttl,                                                                          \
        .impl_id = id,                                                                         \
        .init_salt = 0x6d6f64656c33ULL,                                                        \
        .create = create,                                                                      \
        .destroy = destroy,                                                                    \
        .config_from_file = config_from_file,                                                  \
        .metadata = metadata,                                                                  \
        .alias = old_name,                                                                     \
        .wedge_to_input = wedge_to_input,                                                      \
        .crop_output = crop_output,                                                            \
        .output_to_wedge = output_to_wedge,                                                    \
        .encoder_flops = encoder_flops,                                                        \
        .decoder_flops = decoder_flops,                                                        \
        .train_flops = train_flops,                                                            \
        .runner_create = bcae3d_model_runner_create,                                           \
    }

ARCH_3D(model_arch_bcaepp, BCAE3D_PLUSPLUS, "bcae++", "BCAE++");
ARCH_3D(model_arch_bcaeht, BCAE3D_HT, "bcae-ht", "BCAE-HT");
ARCH_3D(model_arch_bcae, BCAE3D_ORIGINAL, "bcae", "BCAE");

static const model_arch *arch_of(bcae3d_arch a)
{
    return a == BCAE3D_PLUSPLUS ? &model_arch_bcaepp
           : a == BCAE3D_HT     ? &model_arch_bcaeht
                                : &model_arch_bcae;
}
