/* Forward, loss and backward of BCAE-2D through the engine seam. */
#include "model/runner.h"

#include <stdlib.h>
#include <string.h>

#include <stdio.h>

#include "core/error.h"

typedef struct run_op {
    const bcae2d_op *op;
    nn_conv *c1, *c2;      /* the op's convolution(s) */
    nn_tensor in, out;     /* in aliases the previous op's out */
    nn_tensor a1, h2;      /* residual blocks: lrelu(conv1(in)), conv2(a1) */
} run_op;

typedef struct run_net {
    run_op ops[2 * BCAE2D_MAX_DEPTH + 2];
    int nops;
} run_net;

struct bcae2d_runner {
    nn_engine *e;
    const bcae2d_model *model;
    int batch, training;
    bcae_precision precision; /* of the training convolutions (FP32 or BF16) */
    run_net nets[NET_COUNT];
    nn_tensor input, code, seg_logit, reg_raw;
    /* Three full-size buffers: inference rotates its activations through
     * them; training uses them as backward scratch (two gradient buffers and
     * the skip path's gradient). */
    float *buf[3];
    nn_tensor dseg, dreg, dcode;
    float *arena;
    size_t arena_floats;
    nn_chain *chain; /* when set, the encoder runs through it */
    nn_layer chain_layers[2 * BCAE2D_MAX_DEPTH + 2];
    bcae_precision chain_precision;
    nn_first_layer chain_first;
    nn_dechain *dechain; /* when set, the decoders run through it */
    nn_layer dechain_layers[2][2 * BCAE2D_MAX_DEPTH + 2];
    bcae_precision dechain_precision;
    /* Training: the encoder's first convolution and pooling as one
     * convolution (see fuse_first_weights); its kernel and the scratch for
     * its weight gradient, both (cout, cin, k + 1, k + 1). */
    int fuse_first;
    float *w_fused, *dw_fused;
};

static nn_tensor shape(int n, int c, int h, int w)
{
    nn_tensor t = {n, c, h, w, NULL};
    return t;
}

/* Arena bookkeeping: a first pass counts, a second assigns. */
typedef struct arena_cursor {
    float *base; /* NULL while counting */
    size_t used;
} arena_cursor;

static void place(arena_cursor *a, const nn_engine *e, nn_tensor *t)
{
    size_t n = nn_tensor_floats(e, t->n, t->c, t->h, t->w);
    n = (n + 15) & ~(size_t)15; /* 64-byte aligned tensors */
    t->data = a->base ? a->base + a->used : NULL;
    a->used += n;
}

/* Whether rn's first two ops (a convolution, then AvgPool2d) run as one. */
static int fused_first(const bcae2d_runner *r, const run_net *rn)
{
    return r->fuse_first && rn == &r->nets[NET_ENCODER];
}

/* Lays out one network's tensors. Inference nets write into the rotating
 * buffers: ping-pong p[0]/p[1] for op outputs, p[2] for a1. */
static void plan_net(bcae2d_runner *r, run_net *rn, const bcae2d_net *net, nn_tensor in,
                     nn_tensor *final_out, arena_cursor *a)
{
    const nn_engine *e = r->e;
    int ping = 0;
    nn_tensor cur = in;
    rn->nops = net->nops;
    for (int i = 0; i < net->nops; i++) {
        run_op *ro = &rn->ops[i];
        const bcae2d_op *op = &net->ops[i];
        ro->op = op;
        ro->in = cur;
        if (i == 1 && fused_first(r, rn)) { /* the pooling is done: pass through */
            ro->out = cur;
            continue;
        }
        switch (op->kind) {
        case OP_CONV:
            ro->out = shape(cur.n, op->cout, cur.h, cur.w);
            if (i == 0 && fused_first(r, rn)) ro->out = shape(cur.n, op->cout, cur.h / 2, cur.w / 2);
            break;
        case OP_POOL: ro->out = shape(cur.n, cur.c, cur.h / 2, cur.w / 2); break;
        case OP_UPSAMPLE: ro->out = shape(cur.n, cur.c, cur.h * 2, cur.w * 2); break;
        case OP_RESIDUAL:
            ro->out = shape(cur.n, cur.c, cur.h, cur.w);
            ro->a1 = ro->out;
            ro->h2 = ro->out;
            break;
        }
        int last = i == net->nops - 1;
        if (last && final_out) {
            ro->out.data = final_out->data;
        } else if (r->training) {
            place(a, e, &ro->out);
        } else if (a->base) {
            ro->out.data = r->buf[ping];
        }
        if (op->kind == OP_RESIDUAL) {
            if (r->training) {
                place(a, e, &ro->a1);
                place(a, e, &ro->h2);
            } else if (a->base) {
                ro->a1.data = r->buf[2];
                ro->h2.data = ro->out.data; /* the tail may write y over h2 */
            }
        }
        if (!r->training) ping ^= 1;
        cur = ro->out;
    }
}

static size_t max_floats(const bcae2d_runner *r)
{
    /* The widest activation: 32 channels at full resolution. */
    return nn_tensor_floats(r->e, r->batch, BCAE2D_CHANNELS, BCAE_WEDGE_AZIMUTH, BCAE_MODEL_Z);
}

static void plan(bcae2d_runner *r, arena_cursor *a)
{
    const bcae2d_model *m = r->model;
    int n = r->batch;
    r->input = shape(n, BCAE_WEDGE_LAYERS, BCAE_WEDGE_AZIMUTH, BCAE_MODEL_Z);
    r->code = shape(n, BCAE2D_CHANNELS, bcae2d_code_h(m), bcae2d_code_w(m));
    r->seg_logit = r->reg_raw = r->input;
    place(a, r->e, &r->input);
    place(a, r->e, &r->code);
    place(a, r->e, &r->seg_logit);
    place(a, r->e, &r->reg_raw);
    size_t big = (max_floats(r) + 15) & ~(size_t)15;
    for (int i = 0; i < 3; i++) {
        r->buf[i] = a->base ? a->base + a->used : NULL;
        a->used += big;
    }
    if (r->training) {
        r->dseg = r->dreg = r->input;
        r->dcode = r->code;
        place(a, r->e, &r->dseg);
        place(a, r->e, &r->dreg);
        place(a, r->e, &r->dcode);
    }
    plan_net(r, &r->nets[NET_ENCODER], &m->nets[NET_ENCODER], r->input, &r->code, a);
    plan_net(r, &r->nets[NET_CLF], &m->nets[NET_CLF], r->code, &r->seg_logit, a);
    plan_net(r, &r->nets[NET_REG], &m->nets[NET_REG], r->code, &r->reg_raw, a);
}

static bcae_status create_convs(bcae2d_runner *r, bcae_error *err)
{
    for (int k = 0; k < NET_COUNT; k++) {
        run_net *rn = &r->nets[k];
        for (int i = 0; i < rn->nops; i++) {
            run_op *ro = &rn->ops[i];
            const bcae2d_op *op = ro->op;
            if (op->kind != OP_CONV && op->kind != OP_RESIDUAL) continue;
            nn_conv2d_desc d = {ro->in.n, op->cin,  op->cout, ro->in.h,      ro->in.w,
                                op->k,    1,        op->pad,  NN_CONV2D_AUTO, r->precision};
            if (i == 0 && fused_first(r, rn)) d.k = op->k + 1, d.stride = 2;
            bcae_status s = r->e->ops->conv2d_create(r->e, &d, r->training, &ro->c1, err);
            if (!s && op->kind == OP_RESIDUAL)
                s = r->e->ops->conv2d_create(r->e, &d, r->training, &ro->c2, err);
            if (s) return s;
        }
    }
    return BCAE_OK;
}

bcae_status bcae2d_runner_create(nn_engine *e, const bcae2d_model *model, int batch, int training,
                                 bcae2d_runner **out, bcae_error *err)
{
    return bcae2d_runner_create_precision(e, model, batch, training, BCAE_PRECISION_FP32, out,
                                          err);
}

bcae_status bcae2d_runner_create_precision(nn_engine *e, const bcae2d_model *model, int batch,
                                           int training, bcae_precision precision,
                                           bcae2d_runner **out, bcae_error *err)
{
    *out = NULL;
    if (batch < 1 || batch > 4096)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "batch size %d is out of range", batch);
    if (precision != BCAE_PRECISION_FP32 && (!training || precision != BCAE_PRECISION_BF16))
        return bcae_fail(err, BCAE_ERR_UNSUPPORTED,
                         "BCAE-2D layers run fp32, or bf16 for training (asked: %s)",
                         bcae_precision_name(precision) ? bcae_precision_name(precision) : "?");
    if (precision == BCAE_PRECISION_BF16 && !nn_has_conv2d_bf16(e))
        return bcae_fail(err, BCAE_ERR_UNSUPPORTED,
                         "backend %s has no bf16 convolutions: train with --precision fp32",
                         e->ops->name);
    bcae2d_runner *r = calloc(1, sizeof *r);
    if (!r) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "runner: out of memory");
    r->e = e;
    r->model = model;
    r->batch = batch;
    r->training = training != 0;
    r->precision = precision;
    /* The fusion needs the pooling right after an odd, "same"-padded
     * convolution over an even-sized input (then the fused convolution's
     * output is exactly the pooling's). */
    const bcae2d_net *enc = &model->nets[NET_ENCODER];
    r->fuse_first = training == BCAE2D_TRAIN && enc->nops >= 2 && enc->ops[0].kind == OP_CONV &&
                    enc->ops[1].kind == OP_POOL && enc->ops[0].k % 2 == 1 &&
                    enc->ops[0].pad == enc->ops[0].k / 2 && BCAE_WEDGE_AZIMUTH % 2 == 0 &&
                    BCAE_MODEL_Z % 2 == 0;
    if (r->fuse_first) {
        size_t n = (size_t)enc->ops[0].cout * (size_t)enc->ops[0].cin * (size_t)(enc->ops[0].k + 1) *
                   (size_t)(enc->ops[0].k + 1);
        r->w_fused = malloc(n * sizeof(float));
        r->dw_fused = malloc(n * sizeof(float));
        if (!r->w_fused || !r->dw_fused) {
            free(r->w_fused);
            free(r->dw_fused);
            free(r);
            return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "runner: out of memory");
        }
    }
    arena_cursor count = {NULL, 0};
    plan(r, &count);
    r->arena_floats = count.used;
    /* Activations are backend memory (device memory on a GPU). */
    if (nn_alloc(e, count.used, &r->arena, NULL) != BCAE_OK) {
        r->arena = NULL;
        free(r->w_fused);
        free(r->dw_fused);
        free(r);
        return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY,
                         "runner: cannot allocate %zu MB of activations for batch %d",
                         count.used * sizeof(float) >> 20, batch);
    }
    arena_cursor fill = {r->arena, 0};
    plan(r, &fill);
    bcae_status s = create_convs(r, err);
    if (s) {
        bcae2d_runner_destroy(r);
        return s;
    }
    /* The padding columns of the input must read as zeros. */
    e->ops->fill(e, &r->input, 0.0f);
    bcae2d_runner_sync_weights(r);
    *out = r;
    return BCAE_OK;
}

void bcae2d_runner_destroy(bcae2d_runner *r)
{
    if (!r) return;
    if (r->chain) r->e->ops->chain_destroy(r->chain);
    if (r->dechain) r->e->ops->dechain_destroy(r->dechain);
    for (int k = 0; k < NET_COUNT; k++)
        for (int i = 0; i < r->nets[k].nops; i++) {
            if (r->nets[k].ops[i].c1) r->e->ops->conv_destroy(r->nets[k].ops[i].c1);
            if (r->nets[k].ops[i].c2) r->e->ops->conv_destroy(r->nets[k].ops[i].c2);
        }
    if (r->arena) nn_free(r->e, r->arena);
    free(r->w_fused);
    free(r->dw_fused);
    free(r);
}

int bcae2d_runner_batch(const bcae2d_runner *r) { return r->batch; }
size_t bcae2d_runner_arena_bytes(const bcae2d_runner *r) { return r->arena_floats * sizeof(float); }
nn_tensor *bcae2d_runner_input(bcae2d_runner *r) { return &r->input; }
nn_tensor *bcae2d_runner_code(bcae2d_runner *r) { return &r->code; }
const nn_tensor *bcae2d_runner_seg_logit(const bcae2d_runner *r) { return &r->seg_logit; }
const nn_tensor *bcae2d_runner_reg_raw(const bcae2d_runner *r) { return &r->reg_raw; }

/* The kernel of a k x k convolution followed by AvgPool2d(2) as one
 * (k + 1) x (k + 1) stride-2 convolution: the kernel convolved with a 2 x 2
 * box of 1/4, wf[y][x] = 1/4 sum_{a,b in {0,1}} w[y - a][x - b]. */
static void fuse_first_weights(const float *w, int co, int ci, int k, float *wf)
{
    const int K = k + 1;
    for (size_t oi = 0; oi < (size_t)co * (size_t)ci; oi++) {
        const float *src = w + oi * (size_t)k * (size_t)k;
        float *dst = wf + oi * (size_t)K * (size_t)K;
        for (int y = 0; y < K; y++)
            for (int x = 0; x < K; x++) {
                float s = 0.0f;
                for (int a = 0; a < 2; a++)
                    for (int b = 0; b < 2; b++) {
                        int sy = y - a, sx = x - b;
                        if (sy >= 0 && sy < k && sx >= 0 && sx < k) s += src[sy * k + sx];
                    }
                dst[y * K + x] = 0.25f * s;
            }
    }
}

/* The adjoint of fuse_first_weights: the gradient of the k x k kernel from
 * that of the fused one, dw[y][x] += 1/4 sum_{a,b in {0,1}} dwf[y + a][x + b]. */
static void unfuse_first_grad(const float *dwf, int co, int ci, int k, float *dw)
{
    const int K = k + 1;
    for (size_t oi = 0; oi < (size_t)co * (size_t)ci; oi++) {
        const float *src = dwf + oi * (size_t)K * (size_t)K;
        float *dst = dw + oi * (size_t)k * (size_t)k;
        for (int y = 0; y < k; y++)
            for (int x = 0; x < k; x++)
                dst[y * k + x] += 0.25f * (src[y * K + x] + src[y * K + x + 1] +
                                           src[(y + 1) * K + x] + src[(y + 1) * K + x + 1]);
    }
}

void bcae2d_runner_sync_weights(bcae2d_runner *r)
{
    const float *w = r->model->t->weights;
    const model_param *p = r->model->t->params;
    for (int k = 0; k < NET_COUNT; k++)
        for (int i = 0; i < r->nets[k].nops; i++) {
            run_op *ro = &r->nets[k].ops[i];
            const bcae2d_op *op = ro->op;
            if (ro->c1 && i == 0 && fused_first(r, &r->nets[k])) {
                fuse_first_weights(w + p[op->w].offset, op->cout, op->cin, op->k, r->w_fused);
                r->e->ops->conv_set_weights(ro->c1, r->w_fused, w + p[op->b].offset);
            } else if (ro->c1) {
                r->e->ops->conv_set_weights(ro->c1, w + p[op->w].offset, w + p[op->b].offset);
            }
            if (ro->c2)
                r->e->ops->conv_set_weights(ro->c2, w + p[op->w2].offset, w + p[op->b2].offset);
        }
}

static void net_forward(bcae2d_runner *r, run_net *rn)
{
    nn_engine *e = r->e;
    const nn_ops *o = e->ops;
    const float *w = r->model->t->weights;
    for (int i = 0; i < rn->nops; i++) {
        run_op *ro = &rn->ops[i];
        switch (ro->op->kind) {
        case OP_CONV: o->conv_forward(ro->c1, &ro->in, &ro->out, NN_POST_NONE); break;
        case OP_POOL:
            if (!(i == 1 && fused_first(r, rn))) o->avgpool2_forward(e, &ro->in, &ro->out);
            break;
        case OP_UPSAMPLE: o->upsample2_forward(e, &ro->in, &ro->out); break;
        case OP_RESIDUAL: {
            float alpha = w[r->model->t->params[ro->op->alpha].offset];
            o->conv_forward(ro->c1, &ro->in, &ro->a1, NN_POST_LEAKY_RELU);
            o->conv_forward(ro->c2, &ro->a1, &ro->h2, NN_POST_NONE);
            o->rezero_forward(e, alpha, &ro->h2, &ro->in, &ro->out);
            break;
        }
        }
    }
}

void bcae2d_runner_encode(bcae2d_runner *r)
{
    if (r->chain)
        r->e->ops->chain_forward(r->chain, &r->input, &r->code);
    else
        net_forward(r, &r->nets[NET_ENCODER]);
}

static bcae_status chain_layers_of(const bcae2d_runner *r, const bcae2d_net *net, nn_layer *out,
                                   bcae_error *err);

bcae_status bcae2d_runner_use_chain(bcae2d_runner *r, bcae_precision precision,
                                    nn_first_layer first, bcae_error *err)
{
    if (r->training)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                         "the fused encoder is for inference runners only");
    if (!r->e->ops->chain_create)
        return bcae_fail(err, BCAE_ERR_UNSUPPORTED, "backend %s has no fused encoder",
                         r->e->ops->name);
    const bcae2d_net *net = &r->model->nets[NET_ENCODER];
    for (int i = 0; i < net->nops; i++)
        if (net->ops[i].kind == OP_UPSAMPLE)
            return bcae_fail(err, BCAE_ERR_INTERNAL, "encoder with an upsampling layer");
    bcae_status s0 = chain_layers_of(r, net, r->chain_layers, err);
    if (s0) return s0;
    nn_chain_desc d = {r->input.n, r->input.c, r->input.h, r->input.w, r->chain_layers,
                       net->nops, precision, first};
    nn_chain *c = NULL;
    bcae_status s = r->e->ops->chain_create(r->e, &d, &c, err);
    if (s) return s;
    if (r->chain) r->e->ops->chain_destroy(r->chain);
    r->chain = c;
    r->chain_precision = precision;
    r->chain_first = first;
    return BCAE_OK;
}

void bcae2d_runner_calibrate(bcae2d_runner *r)
{
    if (r->chain && nn_has_chain_int8(r->e)) r->e->ops->chain_calibrate(r->chain, &r->input);
}

bcae_status bcae2d_runner_finish(bcae2d_runner *r, bcae_error *err)
{
    return r->chain && nn_has_chain_int8(r->e) ? r->e->ops->chain_finish(r->chain, err) : BCAE_OK;
}

/* A network's ops as chain layers (pointers into the model's weights). */
static bcae_status chain_layers_of(const bcae2d_runner *r, const bcae2d_net *net, nn_layer *out,
                                   bcae_error *err)
{
    const float *w = r->model->t->weights;
    const model_param *p = r->model->t->params;
    for (int i = 0; i < net->nops; i++) {
        const bcae2d_op *op = &net->ops[i];
        nn_layer *l = &out[i];
        memset(l, 0, sizeof *l);
        l->cin = op->cin, l->cout = op->cout, l->k = op->k, l->pad = op->pad;
        switch (op->kind) {
        case OP_CONV: l->kind = NN_LAYER_CONV; break;
        case OP_POOL: l->kind = NN_LAYER_POOL2; break;
        case OP_RESIDUAL: l->kind = NN_LAYER_RESIDUAL; break;
        case OP_UPSAMPLE: l->kind = NN_LAYER_UPSAMPLE2; break;
        default: return bcae_fail(err, BCAE_ERR_INTERNAL, "runner: unknown op %d", (int)op->kind);
        }
        if (op->w >= 0) l->w = w + p[op->w].offset;
        if (op->b >= 0) l->b = w + p[op->b].offset;
        if (op->w2 >= 0) l->w2 = w + p[op->w2].offset;
        if (op->b2 >= 0) l->b2 = w + p[op->b2].offset;
        if (op->alpha >= 0) l->alpha = w[p[op->alpha].offset];
    }
    return BCAE_OK;
}

bcae_status bcae2d_runner_use_decoder_chain(bcae2d_runner *r, bcae_precision precision,
                                            bcae_error *err)
{
    if (r->training)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                         "the fused decoders are for inference runners only");
    if (!nn_has_dechain(r->e))
        return bcae_fail(err, BCAE_ERR_UNSUPPORTED, "backend %s has no fused decoders",
                         r->e->ops->name);
    const int heads[2] = {NET_CLF, NET_REG};
    /* The chain borrows the layer path's activation buffers (only one of
     * the two runs; the code has its own). */
    nn_dechain_desc d = {r->code.n, r->code.c, r->code.h, r->code.w, {NULL, NULL}, {0, 0}, 2,
                         precision, {r->buf[0], r->buf[1], r->buf[2]},
                         ((max_floats(r) + 15) & ~(size_t)15) * sizeof(float)};
    for (int k = 0; k < 2; k++) {
        const bcae2d_net *net = &r->model->nets[heads[k]];
        bcae_status s = chain_layers_of(r, net, r->dechain_layers[k], err);
        if (s) return s;
        d.layers[k] = r->dechain_layers[k];
        d.nlayers[k] = net->nops;
    }
    nn_dechain *c = NULL;
    bcae_status s = r->e->ops->dechain_create(r->e, &d, &c, err);
    if (s) return s;
    if (r->dechain) r->e->ops->dechain_destroy(r->dechain);
    r->dechain = c;
    r->dechain_precision = precision;
    return BCAE_OK;
}

int bcae2d_runner_uses_decoder_chain(const bcae2d_runner *r) { return r->dechain != NULL; }

void bcae2d_runner_decode(bcae2d_runner *r)
{
    if (r->dechain) {
        nn_tensor *out[2] = {&r->seg_logit, &r->reg_raw};
        r->e->ops->dechain_forward(r->dechain, &r->code, out);
        return;
    }
    net_forward(r, &r->nets[NET_CLF]);
    net_forward(r, &r->nets[NET_REG]);
}

void bcae2d_runner_loss_sums(bcae2d_runner *r, nn_loss_sums *out)
{
    r->e->ops->bcae_loss_sums(r->e, &r->seg_logit, &r->reg_raw, &r->input, BCAE_WEDGE_Z,
                              BCAE2D_SHIFT, BCAE2D_SCALE, r->model->cfg.clf_threshold,
                              BCAE2D_FOCAL_GAMMA, BCAE2D_FOCAL_EPS, out);
}

/* A scratch buffer that is not the one g lives in. */
static float *other(const bcae2d_runner *r, const float *g) { return g == r->buf[0] ? r->buf[1] : r->buf[0]; }

static nn_tensor like(const nn_tensor *t, float *data)
{
    nn_tensor x = *t;
    x.data = data;
    return x;
}

/* Backward through one network from the gradient at its output, g. When
 * dx_out is given, the gradient at the network's input is written there
 * (overwritten) or added to it (accumulate). */
static void net_backward(bcae2d_runner *r, run_net *rn, nn_tensor g, nn_tensor *dx_out,
                         int accumulate, float *grad)
{
    nn_engine *e = r->e;
    const nn_ops *o = e->ops;
    const model_param *p = r->model->t->params;
    const float *w = r->model->t->weights;
    for (int i = rn->nops - 1; i >= 0; i--) {
        run_op *ro = &rn->ops[i];
        const bcae2d_op *op = ro->op;
        int need_dx = i > 0 || dx_out;
        if (i == 1 && fused_first(r, rn)) continue; /* the pooling is in op 0 */
        switch (op->kind) {
        case OP_CONV:
        {
            /* Both passes in one call: a bf16 conv rounds g once. */
            nn_tensor t = like(&ro->in, other(r, g.data));
            if (i == 0 && fused_first(r, rn)) {
                size_t nw = (size_t)op->cout * (size_t)op->cin * (size_t)(op->k + 1) * (size_t)(op->k + 1);
                memset(r->dw_fused, 0, nw * sizeof(float));
                nn_conv_backward(e, ro->c1, &ro->in, &g, need_dx ? &t : NULL, r->dw_fused,
                                 grad + p[op->b].offset);
                unfuse_first_grad(r->dw_fused, op->cout, op->cin, op->k, grad + p[op->w].offset);
            } else {
                nn_conv_backward(e, ro->c1, &ro->in, &g, need_dx ? &t : NULL,
                                 grad + p[op->w].offset, grad + p[op->b].offset);
            }
            if (need_dx) g = t;
            break;
        }
        case OP_POOL: {
            nn_tensor t = like(&ro->in, other(r, g.data));
            o->avgpool2_backward(e, &g, &t);
            g = t;
            break;
        }
        case OP_UPSAMPLE: {
            nn_tensor t = like(&ro->in, other(r, g.data));
            o->upsample2_backward(e, &g, &t);
            g = t;
            break;
        }
        case OP_RESIDUAL: {
            float alpha = w[p[op->alpha].offset];
            nn_tensor skip = like(&ro->in, r->buf[2]);
            nn_tensor t = like(&ro->in, other(r, g.data));
            double dalpha = 0;
            /* g becomes d(conv2 output) in place; skip the identity path. */
            o->rezero_backward(e, alpha, &ro->h2, &ro->out, &g, &g, &skip, &dalpha);
            grad[p[op->alpha].offset] += (float)dalpha;
            /* t = conv2^T(g) through conv1's LeakyReLU; g = conv1^T(t) + skip. */
            const nn_dx_tail through = {&ro->a1, NULL}, plus = {NULL, &skip};
            nn_conv_backward_tail(e, ro->c2, &ro->a1, &g, &t, &through, grad + p[op->w2].offset,
                                  grad + p[op->b2].offset);
            nn_conv_backward_tail(e, ro->c1, &ro->in, &t, &g, &plus, grad + p[op->w].offset,
                                  grad + p[op->b].offset);
            break;
        }
        }
    }
    if (dx_out) {
        if (accumulate) {
            o->add(e, dx_out, &g);
        } else if (g.data != dx_out->data) {
            o->fill(e, dx_out, 0.0f);
            o->add(e, dx_out, &g);
        }
    }
}

void bcae2d_runner_backward(bcae2d_runner *r, float coef, float *grad)
{
    nn_engine *e = r->e;
    memset(grad, 0, r->model->t->nfloats * sizeof *grad);
    e->ops->bcae_loss_backward(e, &r->seg_logit, &r->reg_raw, &r->input, BCAE_WEDGE_Z,
                               BCAE2D_SHIFT, BCAE2D_SCALE, r->model->cfg.clf_threshold,
                               BCAE2D_FOCAL_GAMMA, BCAE2D_FOCAL_EPS, coef, &r->dseg, &r->dreg);
    net_backward(r, &r->nets[NET_CLF], r->dseg, &r->dcode, 0, grad);
    net_backward(r, &r->nets[NET_REG], r->dreg, &r->dcode, 1, grad);
    /* The code gradient is copied into a scratch buffer first: the
     * encoder's backward works in place on buffers of full size. */
    nn_tensor g = like(&r->dcode, r->buf[0]);
    e->ops->fill(e, &g, 0.0f);
    e->ops->add(e, &g, &r->dcode);
    net_backward(r, &r->nets[NET_ENCODER], g, NULL, 0, grad);
}

static double net_flops(const bcae2d_net *net, int h, int w)
{
    double f = 0;
    for (int i = 0; i < net->nops; i++) {
        const bcae2d_op *op = &net->ops[i];
        double k2 = (double)op->k * op->k;
        switch (op->kind) {
        case OP_CONV: f += 2.0 * op->cin * op->cout * k2 * h * w; break;
        case OP_RESIDUAL: f += 2 * 2.0 * op->cin * op->cout * k2 * h * w; break;
        case OP_POOL: h /= 2, w /= 2; break;
        case OP_UPSAMPLE: h *= 2, w *= 2; break;
        }
    }
    return f;
}

double bcae2d_encoder_flops(const bcae2d_model *m)
{
    return net_flops(&m->nets[NET_ENCODER], BCAE_WEDGE_AZIMUTH, BCAE_MODEL_Z);
}

double bcae2d_decoder_flops(const bcae2d_model *m)
{
    return net_flops(&m->nets[NET_CLF], bcae2d_code_h(m), bcae2d_code_w(m)) +
           net_flops(&m->nets[NET_REG], bcae2d_code_h(m), bcae2d_code_w(m));
}

/* ---- the model interface (model.h) ------------------------------------------ */

static bcae2d_runner *impl(const model_runner *r) { return r->impl; }

static void mr_destroy(model_runner *r)
{
    bcae2d_runner_destroy(impl(r));
    free(r);
}

static size_t mr_arena_bytes(const model_runner *r) { return bcae2d_runner_arena_bytes(impl(r)); }

static bcae_status mr_sync(model_runner *r, bcae_error *err)
{
    bcae2d_runner *x = impl(r);
    model_pass_begin(r->engine);
    bcae2d_runner_sync_weights(x);
    bcae_status s0 = model_pass_end(r->engine, err);
    if (s0) return s0;
    /* A chain holds its own copy of the weights: plan it anew. */
    bcae_status s = BCAE_OK;
    if (x->chain) s = bcae2d_runner_use_chain(x, x->chain_precision, x->chain_first, err);
    if (!s && x->dechain) s = bcae2d_runner_use_decoder_chain(x, x->dechain_precision, err);
    return s;
}

static bcae_status mr_encode(model_runner *r, bcae_error *err)
{
    model_pass_begin(r->engine);
    bcae2d_runner_encode(impl(r));
    return model_pass_end(r->engine, err);
}

static bcae_status mr_decode(model_runner *r, bcae_error *err)
{
    model_pass_begin(r->engine);
    bcae2d_runner_decode(impl(r));
    return model_pass_end(r->engine, err);
}

static bcae_status mr_loss_sums(model_runner *r, nn_loss_sums *out, bcae_error *err)
{
    model_pass_begin(r->engine);
    bcae2d_runner_loss_sums(impl(r), out);
    return model_pass_end(r->engine, err);
}

static bcae_status mr_backward(model_runner *r, float coef, float *grad, bcae_error *err)
{
    model_pass_begin(r->engine);
    bcae2d_runner_backward(impl(r), coef, grad);
    return model_pass_end(r->engine, err);
}

static bcae_status mr_calibrate(model_runner *r, bcae_error *err)
{
    model_pass_begin(r->engine);
    bcae2d_runner_calibrate(impl(r));
    return model_pass_end(r->engine, err);
}

static bcae_status mr_finish(model_runner *r, bcae_error *err)
{
    return bcae2d_runner_finish(impl(r), err);
}

static const char *mr_describe(const model_runner *r, int decoder, char *buf, size_t size)
{
    const bcae2d_runner *x = impl(r);
    static const char *first[] = {"sparse", "dense", "sparse-portable"};
    if (x->training && decoder >= 2) snprintf(buf, size, "%s", "");
    else if (x->training) snprintf(buf, size, "layers %s", bcae_precision_name(x->precision));
    else if (decoder == 2) {
        if (x->chain) return nn_chain_describe(x->e, x->chain, buf, size);
        snprintf(buf, size, "%s", "");
    } else if (decoder == 3) {
        if (x->dechain && x->e->ops->dechain_describe)
            return x->e->ops->dechain_describe(x->dechain, buf, size);
        snprintf(buf, size, "%s", "");
    } else if (decoder && x->dechain) {
        snprintf(buf, size, "chain %s", bcae_precision_name(x->dechain_precision));
    } else if (decoder) snprintf(buf, size, "layers");
    else if (!x->chain) snprintf(buf, size, "layers");
    else
        snprintf(buf, size, "chain %s %s", first[x->chain_first],
                 bcae_precision_name(x->chain_precision));
    return buf;
}

static const runner_ops OPS = {mr_destroy, mr_arena_bytes, mr_sync,      mr_encode,  mr_decode,
                               mr_loss_sums, mr_backward, mr_calibrate, mr_finish, mr_describe};

bcae_status bcae2d_model_runner_create(nn_engine *e, const bcae_model *m, int batch, int mode,
                                       const runner_options *opt, model_runner **out,
                                       bcae_error *err)
{
    if (opt->decoder != RUNNER_DECODER_FAST && opt->decoder != RUNNER_DECODER_LAYERS)
        return bcae_fail(err, BCAE_ERR_UNSUPPORTED,
                         "BCAE-2D's decoders run as one chain or layer by layer (no other forms)");
    if (opt->decoder_precision != BCAE_PRECISION_FP32 &&
        (mode != RUNNER_INFERENCE || opt->decoder == RUNNER_DECODER_LAYERS ||
         opt->decoder_precision != BCAE_PRECISION_BF16))
        return bcae_fail(err, BCAE_ERR_UNSUPPORTED,
                         "BCAE-2D's decoders run fp32, or bf16 as the fused chain (asked: %s)",
                         bcae_precision_name(opt->decoder_precision)
                             ? bcae_precision_name(opt->decoder_precision)
                             : "?");
    if (mode == RUNNER_INFERENCE && opt->encoder == RUNNER_ENCODER_LAYERS &&
        opt->precision != BCAE_PRECISION_FP32)
        return bcae_fail(err, BCAE_ERR_UNSUPPORTED, "the layer-by-layer encoder runs fp32 only");
    if (mode != RUNNER_INFERENCE && opt->precision == BCAE_PRECISION_INT8)
        return bcae_fail(err, BCAE_ERR_UNSUPPORTED, "training runs fp32 or bf16, not int8");
    model_runner *r = calloc(1, sizeof *r);
    if (!r) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "runner: out of memory");
    bcae2d_runner *x = NULL;
    /* Training: the precision is that of every convolution (mixed bf16:
     * docs/PRECISION.md); inference: that of the encoder chain below. */
    bcae_precision conv_precision = mode != RUNNER_INFERENCE ? opt->precision : BCAE_PRECISION_FP32;
    bcae_status s = bcae2d_runner_create_precision(e, bcae2d_of(m), batch, mode, conv_precision,
                                                   &x, err);
    if (s) {
        free(r);
        return s;
    }
    *r = (model_runner){&OPS, m, e, batch, mode, x->input, x->code, x->seg_logit, x->reg_raw, 0, x, 0};
    if (mode == RUNNER_INFERENCE && opt->encoder != RUNNER_ENCODER_LAYERS) {
        nn_first_layer first = opt->encoder == RUNNER_ENCODER_DENSE      ? NN_FIRST_DENSE
                               : opt->encoder == RUNNER_ENCODER_PORTABLE ? NN_FIRST_SPARSE_PORTABLE
                                                                         : NN_FIRST_SPARSE;
        /* A backend without chains runs the layers (fp32 only). */
        if (opt->precision == BCAE_PRECISION_INT8 && !nn_has_chain_int8(e))
            s = bcae_fail(err, BCAE_ERR_UNSUPPORTED, "backend %s has no int8 encoder",
                          e->ops->name);
        else if (nn_has_chain(e) || opt->encoder != RUNNER_ENCODER_FAST ||
                 opt->precision != BCAE_PRECISION_FP32) {
            s = bcae2d_runner_use_chain(x, opt->precision, first, err);
            /* fp32 by default: the layers where the backend plans no chain
             * here (a CPU below AVX-512: docs/PRECISION.md). */
            if (s == BCAE_ERR_UNSUPPORTED && opt->encoder == RUNNER_ENCODER_FAST &&
                opt->precision == BCAE_PRECISION_FP32)
                s = BCAE_OK;
        }
        r->needs_calibration = !s && opt->precision == BCAE_PRECISION_INT8;
    }
    /* The fused decoders where the backend plans them; fp32 falls back to
     * the layers when it cannot (any reason: the layers may still fit),
     * bf16 (asked for) fails. */
    if (!s && mode == RUNNER_INFERENCE && opt->decoder == RUNNER_DECODER_FAST) {
        bcae_error derr;
        bcae_status ds = bcae2d_runner_use_decoder_chain(x, opt->decoder_precision, &derr);
        if (ds && opt->decoder_precision != BCAE_PRECISION_FP32) {
            s = ds;
            if (err) *err = derr;
        }
        /* The Winograd tiles and the output layer sum each wedge in a fixed
         * order whatever the batch (tests/test_codec.c checks it). */
        r->decode_batch_invariant = !ds;
    }
    if (s) {
        mr_destroy(r);
        return s;
    }
    *out = r;
    return BCAE_OK;
}
