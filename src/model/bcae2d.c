/* BCAE-2D: parameter table, layer lists, initialisation, weights files. */
#include "model/bcae2d.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"
#include "io/safetensors.h"

#define IN_CHANNELS BCAE_WEDGE_LAYERS

typedef struct table {
    bcae_param *p;
    int n, cap;
    size_t floats;
} table;

static int add_param(table *t, const char *name, int ndim, const size_t *shape)
{
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 64;
        bcae_param *p = realloc(t->p, (size_t)cap * sizeof *p);
        if (!p) return -1;
        t->p = p;
        t->cap = cap;
    }
    bcae_param *q = &t->p[t->n];
    memset(q, 0, sizeof *q);
    snprintf(q->name, sizeof q->name, "%s", name);
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

/* A convolution's weight and bias, named <prefix>.weight / .bias. */
static int add_conv(table *t, const char *prefix, int cin, int cout, int k, int *w, int *b)
{
    char name[128];
    size_t ws[4] = {(size_t)cout, (size_t)cin, (size_t)k, (size_t)k}, bs[1] = {(size_t)cout};
    snprintf(name, sizeof name, "%s.weight", prefix);
    *w = add_param(t, name, 4, ws);
    snprintf(name, sizeof name, "%s.bias", prefix);
    *b = add_param(t, name, 1, bs);
    return *w < 0 || *b < 0 ? -1 : 0;
}

/* Two residual blocks per network block, as the reference's Sequential
 * numbers them: a pooling or upsampling layer takes an index too. */
static int add_blocks(table *t, bcae2d_net *net, const char *prefix, int blocks, int samplings,
                      bcae2d_op_kind sampling)
{
    int j = 0;
    for (int i = 0; i < blocks; i++) {
        if (i < samplings) {
            bcae2d_op *op = &net->ops[net->nops++];
            memset(op, 0, sizeof *op);
            op->kind = sampling;
            op->w = op->b = op->w2 = op->b2 = op->alpha = -1;
            j++;
        }
        for (int r = 0; r < 2; r++, j++) {
            char name[96];
            bcae2d_op *op = &net->ops[net->nops++];
            memset(op, 0, sizeof *op);
            op->kind = OP_RESIDUAL;
            op->cin = op->cout = BCAE2D_CHANNELS;
            op->k = 3;
            op->pad = 1;
            /* PyTorch's state-dict order: the block's own alpha first. */
            size_t one[1] = {1};
            snprintf(name, sizeof name, "%s.layers.%d.rezero_alpha", prefix, j);
            op->alpha = add_param(t, name, 1, one);
            snprintf(name, sizeof name, "%s.layers.%d.conv1.0", prefix, j);
            if (op->alpha < 0 || add_conv(t, name, BCAE2D_CHANNELS, BCAE2D_CHANNELS, 3, &op->w, &op->b))
                return -1;
            snprintf(name, sizeof name, "%s.layers.%d.conv2.0", prefix, j);
            if (add_conv(t, name, BCAE2D_CHANNELS, BCAE2D_CHANNELS, 3, &op->w2, &op->b2)) return -1;
        }
    }
    return 0;
}

static void conv_op(bcae2d_op *op, int cin, int cout, int k, int pad, int w, int b)
{
    memset(op, 0, sizeof *op);
    op->kind = OP_CONV;
    op->cin = cin;
    op->cout = cout;
    op->k = k;
    op->pad = pad;
    op->w = w;
    op->b = b;
    op->w2 = op->b2 = op->alpha = -1;
}

bcae_status bcae2d_create(const bcae2d_config *cfg, bcae2d_model *model, bcae_error *err)
{
    memset(model, 0, sizeof *model);
    if (cfg->d < 1 || cfg->d > 6 || cfg->m < cfg->d || cfg->n < cfg->d ||
        cfg->m > BCAE2D_MAX_DEPTH / 2 || cfg->n > BCAE2D_MAX_DEPTH / 2)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                         "BCAE-2D(m=%d, n=%d, d=%d): need 1 <= d <= 6, m >= d, n >= d, "
                         "m, n <= %d",
                         cfg->m, cfg->n, cfg->d, BCAE2D_MAX_DEPTH / 2);
    if (!(cfg->clf_threshold > 0 && cfg->clf_threshold < 1))
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                         "classification threshold %g is not in (0, 1)", cfg->clf_threshold);
    model->cfg = *cfg;
    table t = {0};
    int w, b, fail = 0;
    bcae2d_net *enc = &model->nets[NET_ENCODER];
    fail |= add_conv(&t, "encoder.init_conv", IN_CHANNELS, BCAE2D_CHANNELS, 7, &w, &b);
    conv_op(&enc->ops[enc->nops++], IN_CHANNELS, BCAE2D_CHANNELS, 7, 3, w, b);
    fail |= add_blocks(&t, enc, "encoder", cfg->m, cfg->d, OP_POOL);
    const char *heads[2] = {"decoder.decoder_clf", "decoder.decoder_reg"};
    for (int h = 0; h < 2 && !fail; h++) {
        bcae2d_net *net = &model->nets[NET_CLF + h];
        char name[96];
        fail |= add_blocks(&t, net, heads[h], cfg->n, cfg->d, OP_UPSAMPLE);
        snprintf(name, sizeof name, "%s.output_layer", heads[h]);
        fail |= add_conv(&t, name, BCAE2D_CHANNELS, IN_CHANNELS, 1, &w, &b);
        conv_op(&net->ops[net->nops++], BCAE2D_CHANNELS, IN_CHANNELS, 1, 0, w, b);
    }
    if (fail) {
        free(t.p);
        return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "model: out of memory");
    }
    model->params = t.p;
    model->nparams = t.n;
    model->nfloats = t.floats;
    model->weights = calloc(t.floats, sizeof *model->weights);
    if (!model->weights) {
        bcae2d_destroy(model);
        return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "model: out of memory");
    }
    return BCAE_OK;
}

void bcae2d_destroy(bcae2d_model *model)
{
    free(model->params);
    free(model->weights);
    memset(model, 0, sizeof *model);
}

void bcae2d_init(bcae2d_model *model, uint64_t seed)
{
    for (int i = 0; i < model->nparams; i++) {
        const bcae_param *p = &model->params[i];
        float *v = model->weights + p->offset;
        if (p->ndim == 1 && p->shape[0] == 1 && strstr(p->name, "rezero_alpha")) {
            v[0] = 0.0f;
            continue;
        }
        /* fan_in of the convolution this weight or bias belongs to. */
        size_t fan_in;
        if (p->ndim == 4) {
            fan_in = p->shape[1] * p->shape[2] * p->shape[3];
        } else {
            const bcae_param *wp = &model->params[i - 1]; /* the weight precedes its bias */
            fan_in = wp->shape[1] * wp->shape[2] * wp->shape[3];
        }
        double bound = 1.0 / sqrt((double)fan_in);
        bcae_rng r;
        bcae_rng_seed(&r, bcae_hash3(seed, 0x6d6f64656cULL, (uint64_t)i, 0));
        for (size_t k = 0; k < p->count; k++)
            v[k] = (float)(bound * (2.0 * bcae_rng_uniform(&r) - 1.0));
    }
}

int bcae2d_find(const bcae2d_model *model, const char *name)
{
    for (int i = 0; i < model->nparams; i++)
        if (!strcmp(model->params[i].name, name)) return i;
    return -1;
}

int bcae2d_code_h(const bcae2d_model *model) { return BCAE_WEDGE_AZIMUTH >> model->cfg.d; }
int bcae2d_code_w(const bcae2d_model *model) { return BCAE_MODEL_Z >> model->cfg.d; }

size_t bcae2d_encoder_params(const bcae2d_model *model)
{
    size_t n = 0;
    for (int i = 0; i < model->nparams; i++)
        if (!strncmp(model->params[i].name, "encoder.", 8)) n += model->params[i].count;
    return n;
}

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

/* Copies every parameter of model from f, checking dtype and shape. */
static bcae_status copy_tensors(const char *path, const bcae_st_file *f, bcae2d_model *model,
                                bcae_error *err)
{
    for (int i = 0; i < model->nparams; i++) {
        const bcae_param *p = &model->params[i];
        const bcae_st_tensor *t = bcae_st_find(f, p->name);
        if (!t)
            return bcae_fail(err, BCAE_ERR_FORMAT, "%s: tensor '%s' is missing", path, p->name);
        int same = t->dtype == BCAE_DTYPE_F32 && t->ndim == p->ndim;
        for (int d = 0; same && d < p->ndim; d++) same = t->shape[d] == p->shape[d];
        if (!same || t->nbytes != p->count * sizeof(float)) {
            char want[64], got[64];
            int a = snprintf(want, sizeof want, "F32 (");
            for (int d = 0; d < p->ndim && a < (int)sizeof want; d++)
                a += snprintf(want + a, sizeof want - (size_t)a, d ? ", %zu" : "%zu", p->shape[d]);
            if (a < (int)sizeof want) snprintf(want + a, sizeof want - (size_t)a, ")");
            a = snprintf(got, sizeof got, "%s (", bcae_st_dtype_name(t->dtype));
            for (int d = 0; d < t->ndim && a < (int)sizeof got; d++)
                a += snprintf(got + a, sizeof got - (size_t)a, d ? ", %zu" : "%zu", t->shape[d]);
            if (a < (int)sizeof got) snprintf(got + a, sizeof got - (size_t)a, ")");
            return bcae_fail(err, BCAE_ERR_SHAPE, "%s: tensor '%s' is %s, expected %s", path,
                             p->name, got, want);
        }
        memcpy(model->weights + p->offset, t->data, t->nbytes);
    }
    return BCAE_OK;
}

bcae_status bcae2d_load(const char *path, bcae2d_model *model, bcae_error *err)
{
    memset(model, 0, sizeof *model);
    bcae_st_file f;
    bcae_status s = bcae_st_read(path, &f, err);
    if (s) return s;
    const char *arch = bcae_st_meta(&f, "arch");
    bcae2d_config cfg = {0, 0, 0, 0.5f};
    int log_mode = 1, transform = 1;
    if (!arch) {
        s = bcae_fail(err, BCAE_ERR_FORMAT, "%s: no 'arch' in the metadata: not a bcae model",
                      path);
    } else if (strcmp(arch, "bcae-2d")) {
        s = bcae_fail(err, BCAE_ERR_UNSUPPORTED, "%s: architecture '%s' is not supported here "
                      "(this build knows bcae-2d)", path, arch);
    } else if (meta_int(&f, "m", &cfg.m) || meta_int(&f, "n", &cfg.n) ||
               meta_int(&f, "d", &cfg.d)) {
        s = bcae_fail(err, BCAE_ERR_FORMAT, "%s: metadata m, n, d missing or not integers", path);
    } else if ((bcae_st_meta(&f, "log") && meta_int(&f, "log", &log_mode)) ||
               (bcae_st_meta(&f, "transform") && meta_int(&f, "transform", &transform)) ||
               log_mode != 1 || transform != 1) {
        s = bcae_fail(err, BCAE_ERR_UNSUPPORTED,
                      "%s: BCAE-2D is built for log = 1 and transform = 1", path);
    } else {
        const char *thr = bcae_st_meta(&f, "clf_threshold");
        if (thr) {
            char *end;
            double v = strtod(thr, &end);
            if (end == thr || *end || !(v > 0 && v < 1))
                s = bcae_fail(err, BCAE_ERR_FORMAT, "%s: bad clf_threshold '%s'", path, thr);
            cfg.clf_threshold = (float)v;
        }
    }
    if (!s) s = bcae2d_create(&cfg, model, err);
    if (!s) s = copy_tensors(path, &f, model, err);
    if (!s) s = bcae_st_fingerprint(&f, model->fingerprint);
    if (!s && f.count != (size_t)model->nparams)
        s = bcae_fail(err, BCAE_ERR_FORMAT, "%s: %zu tensors, expected %d for BCAE-2D(%d, %d, %d)",
                      path, f.count, model->nparams, cfg.m, cfg.n, cfg.d);
    bcae_st_free(&f);
    if (s) bcae2d_destroy(model);
    return s;
}

bcae_status bcae2d_load_weights_into(const char *path, bcae2d_model *model, bcae_error *err)
{
    bcae2d_model other;
    bcae_status s = bcae2d_load(path, &other, err);
    if (s) return s;
    if (other.cfg.m != model->cfg.m || other.cfg.n != model->cfg.n || other.cfg.d != model->cfg.d)
        s = bcae_fail(err, BCAE_ERR_SHAPE, "%s: holds BCAE-2D(%d, %d, %d), expected (%d, %d, %d)",
                      path, other.cfg.m, other.cfg.n, other.cfg.d, model->cfg.m, model->cfg.n,
                      model->cfg.d);
    else
        memcpy(model->weights, other.weights, model->nfloats * sizeof(float));
    bcae2d_destroy(&other);
    return s;
}

bcae_status bcae2d_save(const char *path, const bcae2d_model *model, bcae_error *err)
{
    bcae_st_entry *e = calloc((size_t)model->nparams, sizeof *e);
    if (!e) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "out of memory");
    for (int i = 0; i < model->nparams; i++) {
        const bcae_param *p = &model->params[i];
        e[i].name = p->name;
        e[i].dtype = BCAE_DTYPE_F32;
        e[i].ndim = p->ndim;
        e[i].shape = p->shape;
        e[i].data = model->weights + p->offset;
    }
    char m[16], n[16], d[16], thr[32];
    snprintf(m, sizeof m, "%d", model->cfg.m);
    snprintf(n, sizeof n, "%d", model->cfg.n);
    snprintf(d, sizeof d, "%d", model->cfg.d);
    snprintf(thr, sizeof thr, "%g", (double)model->cfg.clf_threshold);
    const char *keys[] = {"arch", "m", "n", "d", "log", "transform", "clf_threshold"};
    const char *values[] = {"bcae-2d", m, n, d, "1", "1", thr};
    bcae_status s = bcae_st_write(path, e, (size_t)model->nparams, keys, values, 7, err);
    free(e);
    return s;
}
