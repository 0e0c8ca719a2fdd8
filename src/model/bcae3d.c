/* BCAE++, BCAE-HT and the original BCAE: parameter table, networks, files. */
#include "model/bcae3d.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"
#include "io/safetensors.h"

static const int DECODER_FEATURES[BCAE3D_BLOCKS] = {16, 8, 4, 2};

/* The original BCAE's (kernel, padding, stride) per encoder block, in its
 * (azimuth, z, layer) order; the decoders use them mirrored. */
static const int ORIG_K[BCAE3D_BLOCKS][3] = {{4, 3, 3}, {4, 4, 3}, {4, 4, 3}, {4, 3, 3}};
static const int ORIG_P[BCAE3D_BLOCKS][3] = {{1, 0, 1}, {1, 1, 1}, {1, 1, 1}, {1, 0, 1}};
static const int ORIG_S[3] = {2, 2, 1};

int bcae3d_arch_parse(const char *name)
{
    if (!strcmp(name, "bcae++")) return BCAE3D_PLUSPLUS;
    if (!strcmp(name, "bcae-ht")) return BCAE3D_HT;
    if (!strcmp(name, "bcae")) return BCAE3D_ORIGINAL;
    return -1;
}

const char *bcae3d_arch_name(bcae3d_arch arch)
{
    switch (arch) {
    case BCAE3D_PLUSPLUS: return "bcae++";
    case BCAE3D_HT: return "bcae-ht";
    case BCAE3D_ORIGINAL: return "bcae";
    }
    return "?";
}

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

typedef struct table {
    bcae3d_param *p;
    int n, cap;
    size_t floats;
    int fail;
} table;

static int add_param(table *t, const char *name, int ndim, const size_t *shape)
{
    if (t->fail) return -1;
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 64;
        bcae3d_param *p = realloc(t->p, (size_t)cap * sizeof *p);
        if (!p) {
            t->fail = 1;
            return -1;
        }
        t->p = p;
        t->cap = cap;
    }
    bcae3d_param *q = &t->p[t->n];
    memset(q, 0, sizeof *q);
    size_t len = strlen(name);
    if (len >= sizeof q->name) len = sizeof q->name - 1;
    memcpy(q->name, name, len);
    q->name[len] = 0;
    q->ndim = ndim;
    q->count = 1;
    for (int i = 0; i < ndim; i++) {
        q->shape[i] = shape[i];
        q->count *= shape[i];
    }
    q->offset = t->floats;
    t->floats += q->count;
    return t->n++;
}

/* <prefix>.weight, <prefix>.bias of a Conv3d (cout, cin, k) or a
 * ConvTranspose3d (cin, cout, k). */
static void add_conv(table *t, const char *prefix, int cin, int cout, const int k[3],
                     int transposed, int *w, int *b)
{
    char name[160];
    size_t ws[5] = {(size_t)(transposed ? cin : cout), (size_t)(transposed ? cout : cin),
                    (size_t)k[0], (size_t)k[1], (size_t)k[2]};
    size_t bs[1] = {(size_t)cout};
    snprintf(name, sizeof name, "%s.weight", prefix);
    *w = add_param(t, name, 5, ws);
    snprintf(name, sizeof name, "%s.bias", prefix);
    *b = add_param(t, name, 1, bs);
}

/* One block, named <prefix>.{rezero_alpha, main_block.0, main_block.3,
 * side_block.0} in PyTorch's state-dict order (the block's own parameter
 * first, then its submodules in registration order). */
static void add_block(table *t, bcae3d_block *b, const char *prefix)
{
    static const int k3[3] = {3, 3, 3};
    char name[160];
    size_t one[1] = {1};
    snprintf(name, sizeof name, "%s.rezero_alpha", prefix);
    b->alpha = add_param(t, name, 1, one);
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

bcae_status bcae3d_create(const bcae3d_config *cfg, bcae3d_model *model, bcae_error *err)
{
    memset(model, 0, sizeof *model);
    if (cfg->arch != BCAE3D_PLUSPLUS && cfg->arch != BCAE3D_HT && cfg->arch != BCAE3D_ORIGINAL)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "3D model: unknown architecture %d",
                         (int)cfg->arch);
    for (int i = 0; i < BCAE3D_BLOCKS; i++)
        if (cfg->features[i] < 1 || cfg->features[i] > 256)
            return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                             "%s: encoder width %d out of range [1, 256]",
                             bcae3d_arch_name(cfg->arch), cfg->features[i]);
    if (!(cfg->clf_threshold > 0 && cfg->clf_threshold < 1))
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                         "classification threshold %g is not in (0, 1)", cfg->clf_threshold);
    model->cfg = *cfg;
    const int orig = cfg->arch == BCAE3D_ORIGINAL;
    table t = {0};
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
        add_block(&t, b, name);
    }
    static const int k3[3] = {3, 3, 3};
    enc->out_cin = cin;
    enc->out_cout = BCAE3D_CODE_CHANNELS;
    enc->out_act = orig;
    add_conv(&t, orig ? "encoder.layers.encoder_output.0" : "encoder.encoder_output.0", cin,
             BCAE3D_CODE_CHANNELS, k3, 0, &enc->out_w, &enc->out_b);
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
            add_block(&t, b, name);
        }
        net->out_cin = cin;
        net->out_cout = 1;
        snprintf(name, sizeof name, orig ? "%s.layers.decoder_output.0" : "%s.decoder_output.0",
                 heads[h]);
        add_conv(&t, name, cin, 1, k3, 0, &net->out_w, &net->out_b);
    }
    if (t.fail) {
        free(t.p);
        return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "model: out of memory");
    }
    model->params = t.p;
    model->nparams = t.n;
    model->nfloats = t.floats;
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
        back[2] != model->in_dims[2]) {
        bcae3d_destroy(model);
        return bcae_fail(err, BCAE_ERR_INTERNAL, "3D model: decoders do not invert the encoder");
    }
    model->weights = calloc(model->nfloats ? model->nfloats : 1, sizeof *model->weights);
    if (!model->weights) {
        bcae3d_destroy(model);
        return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "model: out of memory");
    }
    return BCAE_OK;
}

void bcae3d_destroy(bcae3d_model *model)
{
    free(model->params);
    free(model->weights);
    memset(model, 0, sizeof *model);
}

void bcae3d_init(bcae3d_model *model, uint64_t seed)
{
    for (int i = 0; i < model->nparams; i++) {
        const bcae3d_param *p = &model->params[i];
        float *v = model->weights + p->offset;
        if (strstr(p->name, "rezero_alpha")) {
            v[0] = 0.0f;
            continue;
        }
        const bcae3d_param *wp = p->ndim == 5 ? p : &model->params[i - 1];
        size_t fan_in = wp->shape[1] * wp->shape[2] * wp->shape[3] * wp->shape[4];
        double bound = 1.0 / sqrt((double)fan_in);
        bcae_rng r;
        bcae_rng_seed(&r, bcae_hash3(seed, 0x6d6f64656c33ULL, (uint64_t)i, 0));
        for (size_t k = 0; k < p->count; k++)
            v[k] = (float)(bound * (2.0 * bcae_rng_uniform(&r) - 1.0));
    }
}

int bcae3d_find(const bcae3d_model *model, const char *name)
{
    for (int i = 0; i < model->nparams; i++)
        if (!strcmp(model->params[i].name, name)) return i;
    return -1;
}

size_t bcae3d_encoder_params(const bcae3d_model *model)
{
    size_t n = 0;
    for (int i = 0; i < model->nparams; i++)
        if (!strncmp(model->params[i].name, "encoder.", 8)) n += model->params[i].count;
    return n;
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

int bcae3d_metadata(const bcae3d_model *model, const char **keys, const char **values,
                    char features[64], char threshold[32])
{
    const int *f = model->cfg.features;
    snprintf(features, 64, "%d,%d,%d,%d", f[0], f[1], f[2], f[3]);
    snprintf(threshold, 32, "%g", (double)model->cfg.clf_threshold);
    const char *log = model->cfg.log_input ? "1" : "0";
    const char *k[] = {"arch", "features", "log", "transform", "clf_threshold"};
    const char *v[] = {bcae3d_arch_name(model->cfg.arch), features, log, log, threshold};
    for (int i = 0; i < 5; i++) {
        keys[i] = k[i];
        values[i] = v[i];
    }
    return 5;
}

static bcae_status copy_tensors(const char *path, const bcae_st_file *f, bcae3d_model *model,
                                bcae_error *err)
{
    for (int i = 0; i < model->nparams; i++) {
        const bcae3d_param *p = &model->params[i];
        const bcae_st_tensor *t = bcae_st_find(f, p->name);
        if (!t)
            return bcae_fail(err, BCAE_ERR_FORMAT, "%s: tensor '%s' is missing", path, p->name);
        int same = t->dtype == BCAE_DTYPE_F32 && t->ndim == p->ndim;
        for (int d = 0; same && d < p->ndim; d++) same = t->shape[d] == p->shape[d];
        if (!same || t->nbytes != p->count * sizeof(float)) {
            char want[96], got[96];
            int a = snprintf(want, sizeof want, "F32 (");
            for (int d = 0; d < p->ndim; d++)
                a += snprintf(want + a, sizeof want - (size_t)a, d ? ", %zu" : "%zu", p->shape[d]);
            snprintf(want + a, sizeof want - (size_t)a, ")");
            a = snprintf(got, sizeof got, "%s (", bcae_st_dtype_name(t->dtype));
            for (int d = 0; d < t->ndim && d < 8; d++)
                a += snprintf(got + a, sizeof got - (size_t)a, d ? ", %zu" : "%zu", t->shape[d]);
            snprintf(got + a, sizeof got - (size_t)a, ")");
            return bcae_fail(err, BCAE_ERR_SHAPE, "%s: tensor '%s' is %s, expected %s", path,
                             p->name, got, want);
        }
        memcpy(model->weights + p->offset, t->data, t->nbytes);
    }
    return BCAE_OK;
}

bcae_status bcae3d_load(const char *path, bcae3d_model *model, bcae_error *err)
{
    memset(model, 0, sizeof *model);
    bcae_st_file f;
    bcae_status s = bcae_st_read(path, &f, err);
    if (s) return s;
    const char *arch = bcae_st_meta(&f, "arch");
    int a = arch ? bcae3d_arch_parse(arch) : -1;
    bcae3d_config cfg;
    int transform = 1;
    if (!arch) {
        s = bcae_fail(err, BCAE_ERR_FORMAT, "%s: no 'arch' in the metadata: not a bcae model",
                      path);
    } else if (a < 0) {
        s = bcae_fail(err, BCAE_ERR_UNSUPPORTED,
                      "%s: architecture '%s' is not a 3D model (bcae++, bcae-ht, bcae)", path,
                      arch);
    } else {
        bcae3d_config_default((bcae3d_arch)a, &cfg);
        const char *feat = bcae_st_meta(&f, "features");
        const char *thr = bcae_st_meta(&f, "clf_threshold");
        if (feat && parse_features(feat, cfg.features))
            s = bcae_fail(err, BCAE_ERR_FORMAT,
                          "%s: features '%s' is not four comma-separated widths in [1, 256]",
                          path, feat);
        else if (meta_flag(&f, "log", cfg.log_input, &cfg.log_input) ||
                 meta_flag(&f, "transform", cfg.log_input, &transform))
            s = bcae_fail(err, BCAE_ERR_FORMAT, "%s: metadata log / transform must be 0 or 1",
                          path);
        else if (transform != cfg.log_input)
            s = bcae_fail(err, BCAE_ERR_UNSUPPORTED,
                          "%s: log = %d with transform = %d: the regression transform must "
                          "match the input (6 + 3 exp(r) for log2 input, 64 + 6 exp(r) for raw "
                          "ADC)",
                          path, cfg.log_input, transform);
        if (!s && thr) {
            char *end;
            double v = strtod(thr, &end);
            if (end == thr || *end || !(v > 0 && v < 1))
                s = bcae_fail(err, BCAE_ERR_FORMAT, "%s: bad clf_threshold '%s'", path, thr);
            cfg.clf_threshold = (float)v;
        }
    }
    if (!s) s = bcae3d_create(&cfg, model, err);
    if (!s) s = copy_tensors(path, &f, model, err);
    if (!s) s = bcae_st_fingerprint(&f, model->fingerprint);
    if (!s && f.count != (size_t)model->nparams)
        s = bcae_fail(err, BCAE_ERR_FORMAT, "%s: %zu tensors, expected %d for %s", path, f.count,
                      model->nparams, arch);
    bcae_st_free(&f);
    if (s) bcae3d_destroy(model);
    return s;
}

bcae_status bcae3d_save(const char *path, const bcae3d_model *model, bcae_error *err)
{
    bcae_st_entry *e = calloc((size_t)model->nparams, sizeof *e);
    if (!e) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "out of memory");
    for (int i = 0; i < model->nparams; i++) {
        const bcae3d_param *p = &model->params[i];
        e[i].name = p->name;
        e[i].dtype = BCAE_DTYPE_F32;
        e[i].ndim = p->ndim;
        e[i].shape = p->shape;
        e[i].data = model->weights + p->offset;
    }
    const char *keys[8], *values[8];
    char features[64], thr[32];
    int nm = bcae3d_metadata(model, keys, values, features, thr);
    bcae_status s = bcae_st_write(path, e, (size_t)model->nparams, keys, values, (size_t)nm, err);
    free(e);
    return s;
}

bcae_status bcae3d_load_weights_into(const char *path, bcae3d_model *model, bcae_error *err)
{
    bcae3d_model other;
    bcae_status s = bcae3d_load(path, &other, err);
    if (s) return s;
    if (other.cfg.arch != model->cfg.arch || other.nfloats != model->nfloats ||
        memcmp(other.cfg.features, model->cfg.features, sizeof other.cfg.features))
        s = bcae_fail(err, BCAE_ERR_SHAPE, "%s: holds another model (%s, features %d,%d,%d,%d)",
                      path, bcae3d_arch_name(other.cfg.arch), other.cfg.features[0],
                      other.cfg.features[1], other.cfg.features[2], other.cfg.features[3]);
    else
        memcpy(model->weights, other.weights, model->nfloats * sizeof(float));
    bcae3d_destroy(&other);
    return s;
}

bcae_status bcae_model_file_arch(const char *path, char *out, size_t size, bcae_error *err)
{
    bcae_st_file f;
    bcae_status s = bcae_st_read(path, &f, err);
    if (s) return s;
    const char *arch = bcae_st_meta(&f, "arch");
    if (!arch)
        s = bcae_fail(err, BCAE_ERR_FORMAT, "%s: no 'arch' in the metadata: not a bcae model",
                      path);
    else
        snprintf(out, size, "%s", arch);
    bcae_st_free(&f);
    return s;
}
