/* Forward, loss and backward of the 3D models through the engine seam. */
#include "model/runner3d.h"

#include <stdlib.h>
#include <string.h>

#include <stdio.h>

#include "core/error.h"

/* A residual block's activations, each kept for the backward pass:
 *   m1 = lrelu(conv0(in)), m1n = norm(m1) (= m1 without norm),
 *   h = conv3(m1n), s = lrelu(conv0'(in)), sn = norm(s) (= s),
 *   t = lrelu(alpha h + sn), out = norm(t) (= t). */
typedef struct run_block {
    const bcae3d_block *b;
    nn_conv3d *c0, *c3, *cs;
    nn_tensor5 in, m1, m1n, h, s, sn, t, out;
    float *st_m, *st_s, *st_t; /* InstanceNorm statistics (2 per sample and channel) */
} run_block;

typedef struct run_net {
    const bcae3d_net *net;
    run_block blocks[BCAE3D_BLOCKS];
    int nblocks;
    nn_conv3d *conv_out;
    nn_tensor5 out_in, out_pre, out; /* out_pre = lrelu(conv) before the norm (encoder of BCAE) */
    float *st_out;
} run_net;

struct bcae3d_runner {
    nn_engine *e;
    const bcae3d_model *model;
    int batch, training;
    nn_conv3d_algo algo;
    run_net nets[NET3D_COUNT];
    nn_tensor5 input, code, seg_logit, reg_raw;
    nn_tensor5 dseg, dreg, dcode;
    float *scratch[3]; /* backward: gradients of the widest activation */
    size_t scratch_floats;
    float *arena;
    size_t arena_floats, stats_floats;
    float *stats;
    nn_chain3d *chain; /* when set, the encoder runs through it */
    nn_dechain3d *dechain; /* when set, the decoders run through it */
    nn_first_layer chain_first;   /* how they were asked for (re-planned by sync) */
    nn_deconv_form dechain_form;
    int dechain_portable;
};

static nn_tensor5 shape5(int n, int c, const int dims[3])
{
    nn_tensor5 t = {n, c, dims[0], dims[1], dims[2], NULL};
    return t;
}

typedef struct cursor {
    float *base; /* NULL while counting */
    size_t used, stats_used, widest;
    float *stats;
    const nn_engine *e;
} cursor;

static void place(cursor *a, nn_tensor5 *t)
{
    size_t n = nn_tensor_floats(a->e, t->n, t->c, t->d * t->h, t->w);
    if (n > a->widest) a->widest = n;
    n = (n + 15) & ~(size_t)15;
    t->data = a->base ? a->base + a->used : NULL;
    a->used += n;
}

static float *place_stats(cursor *a, int n, int c)
{
    float *p = a->stats ? a->stats + a->stats_used : NULL;
    a->stats_used += 2 * (size_t)n * (size_t)c;
    return p;
}

static void block_out_dims(const bcae3d_block *b, const int in[3], int out[3])
{
    for (int a = 0; a < 3; a++)
        out[a] = b->transposed ? (in[a] - 1) * b->stride[a] - 2 * b->pad[a] + b->k[a]
                               : (in[a] + 2 * b->pad[a] - b->k[a]) / b->stride[a] + 1;
}

/* Lays out one network from its input to final (the caller's tensor). */
static void plan_net(bcae3d_runner *r, run_net *rn, const bcae3d_net *net, nn_tensor5 in,
                     nn_tensor5 *final, cursor *a)
{
    const int n = r->batch;
    rn->net = net;
    rn->nblocks = net->nblocks;
    nn_tensor5 cur = in;
    for (int i = 0; i < net->nblocks; i++) {
        run_block *rb = &rn->blocks[i];
        const bcae3d_block *b = &net->blocks[i];
        int dims[3];
        const int cdims[3] = {cur.d, cur.h, cur.w};
        block_out_dims(b, cdims, dims);
        rb->b = b;
        rb->in = cur;
        rb->m1 = rb->h = rb->s = rb->t = shape5(n, b->cout, dims);
        place(a, &rb->m1);
        place(a, &rb->h);
        place(a, &rb->s);
        place(a, &rb->t);
        if (b->norm) {
            rb->m1n = rb->sn = rb->out = rb->t;
            place(a, &rb->m1n);
            place(a, &rb->sn);
            place(a, &rb->out);
            rb->st_m = place_stats(a, n, b->cout);
            rb->st_s = place_stats(a, n, b->cout);
            rb->st_t = place_stats(a, n, b->cout);
        } else {
            rb->m1n = rb->m1;
            rb->sn = rb->s;
            rb->out = rb->t;
        }
        cur = rb->out;
    }
    rn->out_in = cur;
    rn->out = *final;
    if (net->out_act) {
        rn->out_pre = *final;
        place(a, &rn->out_pre);
        rn->st_out = place_stats(a, n, net->out_cout);
    }
}

static void plan(bcae3d_runner *r, cursor *a)
{
    const bcae3d_model *m = r->model;
    const int n = r->batch;
    r->input = shape5(n, 1, m->in_dims);
    r->code = shape5(n, BCAE3D_CODE_CHANNELS, m->code_dims);
    r->seg_logit = r->reg_raw = r->input;
    place(a, &r->input);
    place(a, &r->code);
    place(a, &r->seg_logit);
    place(a, &r->reg_raw);
    if (r->training) {
        r->dseg = r->dreg = r->input;
        r->dcode = r->code;
        place(a, &r->dseg);
        place(a, &r->dreg);
        place(a, &r->dcode);
    }
    plan_net(r, &r->nets[NET3D_ENCODER], &m->nets[NET3D_ENCODER], r->input, &r->code, a);
    plan_net(r, &r->nets[NET3D_CLF], &m->nets[NET3D_CLF], r->code, &r->seg_logit, a);
    plan_net(r, &r->nets[NET3D_REG], &m->nets[NET3D_REG], r->code, &r->reg_raw, a);
    /* Backward scratch: three buffers of the widest activation. */
    if (r->training) {
        size_t w = (a->widest + 15) & ~(size_t)15;
        for (int i = 0; i < 3; i++) {
            r->scratch[i] = a->base ? a->base + a->used : NULL;
            a->used += w;
        }
        r->scratch_floats = w;
    }
}

static nn_conv3d_desc conv_desc(int n, int cin, int cout, const nn_tensor5 *in, const int k[3],
                                const int s[3], const int p[3], int transposed,
                                nn_conv3d_algo algo)
{
    nn_conv3d_desc d = {n, cin, cout, in->d, in->h, in->w, {k[0], k[1], k[2]},
                        {s[0], s[1], s[2]}, {p[0], p[1], p[2]}, transposed, algo};
    return d;
}

static bcae_status create_convs(bcae3d_runner *r, bcae_error *err)
{
    static const int k3[3] = {3, 3, 3}, one[3] = {1, 1, 1};
    const nn_ops *o = r->e->ops;
    for (int k = 0; k < NET3D_COUNT; k++) {
        run_net *rn = &r->nets[k];
        for (int i = 0; i < rn->nblocks; i++) {
            run_block *rb = &rn->blocks[i];
            const bcae3d_block *b = rb->b;
            nn_conv3d_desc d0 = conv_desc(r->batch, b->cin, b->cout, &rb->in, b->k, b->stride,
                                          b->pad, b->transposed, r->algo);
            nn_conv3d_desc d3 = conv_desc(r->batch, b->cout, b->cout, &rb->m1, k3, one, one, 0,
                                          NN_CONV3D_AUTO);
            bcae_status s = o->conv3d_create(r->e, &d0, r->training, &rb->c0, err);
            if (!s) s = o->conv3d_create(r->e, &d3, r->training, &rb->c3, err);
            if (!s) s = o->conv3d_create(r->e, &d0, r->training, &rb->cs, err);
            if (s) return s;
        }
        nn_conv3d_desc dout = conv_desc(r->batch, rn->net->out_cin, rn->net->out_cout,
                                        &rn->out_in, k3, one, one, 0, NN_CONV3D_AUTO);
        bcae_status s = o->conv3d_create(r->e, &dout, r->training, &rn->conv_out, err);
        if (s) return s;
    }
    return BCAE_OK;
}

bcae_status bcae3d_runner_create(nn_engine *e, const bcae3d_model *model, int batch,
                                 int training, nn_conv3d_algo algo, bcae3d_runner **out,
                                 bcae_error *err)
{
    *out = NULL;
    if (batch < 1 || batch > 4096)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "batch size %d is out of range", batch);
    bcae3d_runner *r = calloc(1, sizeof *r);
    if (!r) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "runner: out of memory");
    r->e = e;
    r->model = model;
    r->batch = batch;
    r->training = training;
    r->algo = algo;
    cursor count = {NULL, 0, 0, 0, NULL, e};
    plan(r, &count);
    r->arena_floats = count.used;
    r->stats_floats = count.stats_used;
    /* Activations and the norms' statistics are backend memory. */
    if (nn_alloc(e, count.used, &r->arena, NULL) != BCAE_OK) r->arena = NULL;
    if (nn_alloc(e, count.stats_used ? count.stats_used : 1, &r->stats, NULL) != BCAE_OK)
        r->stats = NULL;
    if (!r->arena || !r->stats) {
        if (r->arena) nn_free(e, r->arena);
        if (r->stats) nn_free(e, r->stats);
        free(r);
        return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY,
                         "runner: cannot allocate %zu MB of activations for batch %d",
                         count.used * sizeof(float) >> 20, batch);
    }
    cursor fill = {r->arena, 0, 0, 0, r->stats, e};
    plan(r, &fill);
    bcae_status s = create_convs(r, err);
    if (s) {
        bcae3d_runner_destroy(r);
        return s;
    }
    nn_tensor fin = nn_tensor5_flat(&r->input);
    e->ops->fill(e, &fin, 0.0f);
    bcae3d_runner_sync_weights(r);
    *out = r;
    return BCAE_OK;
}

void bcae3d_runner_destroy(bcae3d_runner *r)
{
    if (!r) return;
    const nn_ops *o = r->e->ops;
    if (r->chain) o->chain3d_destroy(r->chain);
    if (r->dechain) o->dechain3d_destroy(r->dechain);
    for (int k = 0; k < NET3D_COUNT; k++) {
        run_net *rn = &r->nets[k];
        for (int i = 0; i < rn->nblocks; i++) {
            if (rn->blocks[i].c0) o->conv3d_destroy(rn->blocks[i].c0);
            if (rn->blocks[i].c3) o->conv3d_destroy(rn->blocks[i].c3);
            if (rn->blocks[i].cs) o->conv3d_destroy(rn->blocks[i].cs);
        }
        if (rn->conv_out) o->conv3d_destroy(rn->conv_out);
    }
    if (r->arena) nn_free(r->e, r->arena);
    if (r->stats) nn_free(r->e, r->stats);
    free(r);
}

int bcae3d_runner_batch(const bcae3d_runner *r) { return r->batch; }
size_t bcae3d_runner_arena_bytes(const bcae3d_runner *r)
{
    return (r->arena_floats + r->stats_floats) * sizeof(float);
}
nn_tensor5 *bcae3d_runner_input(bcae3d_runner *r) { return &r->input; }
nn_tensor5 *bcae3d_runner_code(bcae3d_runner *r) { return &r->code; }
const nn_tensor5 *bcae3d_runner_seg_logit(const bcae3d_runner *r) { return &r->seg_logit; }
const nn_tensor5 *bcae3d_runner_reg_raw(const bcae3d_runner *r) { return &r->reg_raw; }

void bcae3d_runner_sync_weights(bcae3d_runner *r)
{
    const float *w = r->model->t->weights;
    const model_param *p = r->model->t->params;
    const nn_ops *o = r->e->ops;
    for (int k = 0; k < NET3D_COUNT; k++) {
        run_net *rn = &r->nets[k];
        for (int i = 0; i < rn->nblocks; i++) {
            run_block *rb = &rn->blocks[i];
            const bcae3d_block *b = rb->b;
            o->conv3d_set_weights(rb->c0, w + p[b->w0].offset, w + p[b->b0].offset);
            o->conv3d_set_weights(rb->c3, w + p[b->w3].offset, w + p[b->b3].offset);
            o->conv3d_set_weights(rb->cs, w + p[b->ws].offset, w + p[b->bs].offset);
        }
        o->conv3d_set_weights(rn->conv_out, w + p[rn->net->out_w].offset,
                              w + p[rn->net->out_b].offset);
    }
}

/* ---- forward ----------------------------------------------------------------- */

static void block_forward(bcae3d_runner *r, run_block *rb)
{
    nn_engine *e = r->e;
    const nn_ops *o = e->ops;
    const bcae3d_block *b = rb->b;
    float alpha = r->model->t->weights[r->model->t->params[b->alpha].offset];
    o->conv3d_forward(rb->c0, &rb->in, &rb->m1, NN_POST_LEAKY_RELU);
    if (b->norm) o->instance_norm_forward(e, &rb->m1, &rb->m1n, NN_INSTANCE_NORM_EPS, rb->st_m);
    o->conv3d_forward(rb->c3, &rb->m1n, &rb->h, NN_POST_NONE);
    o->conv3d_forward(rb->cs, &rb->in, &rb->s, NN_POST_LEAKY_RELU);
    if (b->norm) o->instance_norm_forward(e, &rb->s, &rb->sn, NN_INSTANCE_NORM_EPS, rb->st_s);
    nn_tensor h = nn_tensor5_flat(&rb->h), sn = nn_tensor5_flat(&rb->sn);
    nn_tensor t = nn_tensor5_flat(&rb->t);
    o->rezero_forward(e, alpha, &h, &sn, &t);
    if (b->norm) o->instance_norm_forward(e, &rb->t, &rb->out, NN_INSTANCE_NORM_EPS, rb->st_t);
}

static void net_forward(bcae3d_runner *r, run_net *rn)
{
    nn_engine *e = r->e;
    for (int i = 0; i < rn->nblocks; i++) block_forward(r, &rn->blocks[i]);
    if (rn->net->out_act) {
        e->ops->conv3d_forward(rn->conv_out, &rn->out_in, &rn->out_pre, NN_POST_LEAKY_RELU);
        e->ops->instance_norm_forward(e, &rn->out_pre, &rn->out, NN_INSTANCE_NORM_EPS,
                                      rn->st_out);
    } else {
        e->ops->conv3d_forward(rn->conv_out, &rn->out_in, &rn->out, NN_POST_NONE);
    }
}

void bcae3d_runner_encode(bcae3d_runner *r)
{
    if (r->chain)
        r->e->ops->chain3d_forward(r->chain, &r->input, &r->code);
    else
        net_forward(r, &r->nets[NET3D_ENCODER]);
}

int bcae3d_runner_uses_chain(const bcae3d_runner *r) { return r->chain != NULL; }

bcae_status bcae3d_runner_use_fast_encoder(bcae3d_runner *r, bcae_error *err)
{
    if (r->model->cfg.arch == BCAE3D_ORIGINAL) return BCAE_OK;
    /* Scattering a non-zero voxel costs a dependent read-modify-write per
     * tap, while the dense direct kernel spends one load on 16 columns and
     * 4-16 FMAs: on the synthetic wedges (11% non-zero) the whole encoder
     * measured 1.5x faster with the dense form for BCAE-HT (4 outputs) and
     * 1.04x for BCAE++ (16), so the sparse form only runs when asked for
     * (bench --encoder sparse). */
    return bcae3d_runner_use_chain(r, NN_FIRST_DENSE, err);
}

/* The blocks of one network in the chains' form; BCAE_ERR_UNSUPPORTED
 * for any other block geometry. */
static bcae_status chain_blocks(const bcae3d_model *m, const bcae3d_net *net, int transposed,
                                nn_block3d *blocks, bcae_error *err)
{
    const float *w = m->t->weights;
    const model_param *p = m->t->params;
    static const int k[3] = {3, 4, 4}, st[3] = {1, 2, 2}, pd[3] = {1, 1, 1};
    for (int i = 0; i < net->nblocks; i++) {
        const bcae3d_block *b = &net->blocks[i];
        if (b->norm || b->transposed != transposed || memcmp(b->k, k, sizeof k) ||
            memcmp(b->stride, st, sizeof st) || memcmp(b->pad, pd, sizeof pd))
            return bcae_fail(err, BCAE_ERR_UNSUPPORTED,
                             "the fused 3D %s runs BCAE++ and BCAE-HT blocks only",
                             transposed ? "decoders" : "encoder");
        blocks[i] = (nn_block3d){b->cin,
                                 b->cout,
                                 w + p[b->w0].offset,
                                 w + p[b->b0].offset,
                                 w + p[b->ws].offset,
                                 w + p[b->bs].offset,
                                 w + p[b->w3].offset,
                                 w + p[b->b3].offset,
                                 w[p[b->alpha].offset]};
    }
    if (net->out_act)
        return bcae_fail(err, BCAE_ERR_UNSUPPORTED,
                         "the fused 3D models have no output activation or norm");
    return BCAE_OK;
}

bcae_status bcae3d_runner_use_chain(bcae3d_runner *r, nn_first_layer first, bcae_error *err)
{
    if (r->training)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                         "the fused encoder is for inference runners only");
    if (!r->e->ops->chain3d_create)
        return bcae_fail(err, BCAE_ERR_UNSUPPORTED, "backend %s has no fused 3D encoder",
                         r->e->ops->name);
    const bcae3d_net *net = &r->model->nets[NET3D_ENCODER];
    const float *w = r->model->t->weights;
    const model_param *p = r->model->t->params;
    nn_block3d blocks[BCAE3D_BLOCKS];
    bcae_status bs = chain_blocks(r->model, net, 0, blocks, err);
    if (bs) return bs;
    nn_chain3d_desc d = {r->input.n,
                         r->input.d,
                         r->input.h,
                         r->input.w,
                         blocks,
                         net->nblocks,
                         net->out_cin,
                         net->out_cout,
                         w + p[net->out_w].offset,
                         w + p[net->out_b].offset,
                         first == NN_FIRST_DENSE ? NN_FIRST_DENSE : NN_FIRST_SPARSE,
                         first == NN_FIRST_SPARSE_PORTABLE};
    nn_chain3d *c = NULL;
    bcae_status s = r->e->ops->chain3d_create(r->e, &d, &c, err);
    if (s) return s;
    if (r->chain) r->e->ops->chain3d_destroy(r->chain);
    r->chain = c;
    r->chain_first = first;
    return BCAE_OK;
}

bcae_status bcae3d_runner_use_decoder_chain(bcae3d_runner *r, nn_deconv_form form, int portable,
                                            bcae_error *err)
{
    if (r->training)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                         "the fused decoders are for inference runners only");
    if (!r->e->ops->dechain3d_create)
        return bcae_fail(err, BCAE_ERR_UNSUPPORTED, "backend %s has no fused 3D decoders",
                         r->e->ops->name);
    const bcae3d_model *m = r->model;
    const float *w = m->t->weights;
    const model_param *p = m->t->params;
    nn_block3d blocks[2][BCAE3D_BLOCKS];
    nn_dechain3d_desc d = {r->code.n, r->code.c, r->code.d, r->code.h, r->code.w,
                           {{0}}, 2, form, portable};
    for (int k = 0; k < 2; k++) {
        const bcae3d_net *net = &m->nets[NET3D_CLF + k];
        bcae_status s = chain_blocks(m, net, 1, blocks[k], err);
        if (s) return s;
        d.heads[k] = (nn_dechain3d_head){blocks[k], net->nblocks, net->out_cin, net->out_cout,
                                         w + p[net->out_w].offset, w + p[net->out_b].offset};
    }
    nn_dechain3d *c = NULL;
    bcae_status s = r->e->ops->dechain3d_create(r->e, &d, &c, err);
    if (s) return s;
    if (r->dechain) r->e->ops->dechain3d_destroy(r->dechain);
    r->dechain = c;
    r->dechain_form = form;
    r->dechain_portable = portable;
    return BCAE_OK;
}

bcae_status bcae3d_runner_use_fast_decoder(bcae3d_runner *r, bcae_error *err)
{
    if (r->model->cfg.arch == BCAE3D_ORIGINAL) return BCAE_OK;
    /* The row split (1.5x the deconvolution's multiplications) measured 3-6%
     * faster than the shuffle form (2.25x) at 1 and 2 threads, batch 4. */
    return bcae3d_runner_use_decoder_chain(r, NN_DECONV_ROWS, 0, err);
}

int bcae3d_runner_uses_decoder_chain(const bcae3d_runner *r) { return r->dechain != NULL; }

void bcae3d_runner_decode(bcae3d_runner *r)
{
    if (r->dechain) {
        nn_tensor5 *out[2] = {&r->seg_logit, &r->reg_raw};
        r->e->ops->dechain3d_forward(r->dechain, &r->code, out);
        return;
    }
    net_forward(r, &r->nets[NET3D_CLF]);
    net_forward(r, &r->nets[NET3D_REG]);
}

void bcae3d_runner_loss_sums(bcae3d_runner *r, nn_loss_sums *out)
{
    const bcae3d_model *m = r->model;
    nn_tensor s = nn_tensor5_flat(&r->seg_logit), g = nn_tensor5_flat(&r->reg_raw);
    nn_tensor x = nn_tensor5_flat(&r->input);
    r->e->ops->bcae_loss_sums(r->e, &s, &g, &x, m->crop_w, m->shift, m->scale,
                              m->cfg.clf_threshold, BCAE3D_FOCAL_GAMMA, BCAE3D_FOCAL_EPS, out);
}

/* ---- backward ------------------------------------------------------------------ */

static nn_tensor5 like(const nn_tensor5 *t, float *data)
{
    nn_tensor5 x = *t;
    x.data = data;
    return x;
}

static void lrelu_back(nn_engine *e, const nn_tensor5 *y, nn_tensor5 *g)
{
    nn_tensor fy = nn_tensor5_flat(y), fg = nn_tensor5_flat(g);
    e->ops->leaky_relu_backward(e, &fy, &fg, &fg);
}

/* The gradient at the block's output lives in buf[0]; afterwards the
 * gradient at its input does (when need_dx). buf[1], buf[2] are scratch. */
static void block_backward(bcae3d_runner *r, run_block *rb, float **buf, int need_dx, float *grad)
{
    nn_engine *e = r->e;
    const nn_ops *o = e->ops;
    const bcae3d_block *b = rb->b;
    const model_param *p = r->model->t->params;
    float alpha = r->model->t->weights[p[b->alpha].offset];
    nn_tensor5 g = like(&rb->out, buf[0]);
    if (b->norm) o->instance_norm_backward(e, &rb->out, rb->st_t, &g, &g);
    /* g becomes dh in place; ds the side path's gradient. */
    nn_tensor5 ds = like(&rb->s, buf[1]);
    nn_tensor fh = nn_tensor5_flat(&rb->h), ft = nn_tensor5_flat(&rb->t);
    nn_tensor fg = nn_tensor5_flat(&g), fds = nn_tensor5_flat(&ds);
    double dalpha = 0;
    o->rezero_backward(e, alpha, &fh, &ft, &fg, &fg, &fds, &dalpha);
    grad[p[b->alpha].offset] += (float)dalpha;
    if (b->norm) o->instance_norm_backward(e, &rb->sn, rb->st_s, &ds, &ds);
    lrelu_back(e, &rb->s, &ds);
    o->conv3d_backward_weights(rb->cs, &rb->in, &ds, grad + p[b->ws].offset,
                               grad + p[b->bs].offset);
    /* Main path: dh -> d m1n -> d m1 -> conv0. */
    nn_tensor5 dm = like(&rb->m1, buf[2]);
    o->conv3d_backward_weights(rb->c3, &rb->m1n, &g, grad + p[b->w3].offset,
                               grad + p[b->b3].offset);
    o->conv3d_backward_data(rb->c3, &g, &dm);
    if (b->norm) o->instance_norm_backward(e, &rb->m1n, rb->st_m, &dm, &dm);
    lrelu_back(e, &rb->m1, &dm);
    o->conv3d_backward_weights(rb->c0, &rb->in, &dm, grad + p[b->w0].offset,
                               grad + p[b->b0].offset);
    if (need_dx) {
        /* buf[0] (dh) is no longer needed: dx = side^T(ds) + main^T(dm). */
        nn_tensor5 dx = like(&rb->in, buf[0]), dx2 = like(&rb->in, buf[1]);
        o->conv3d_backward_data(rb->cs, &ds, &dx);
        o->conv3d_backward_data(rb->c0, &dm, &dx2);
        nn_tensor a = nn_tensor5_flat(&dx), c = nn_tensor5_flat(&dx2);
        o->add(e, &a, &c);
    }
}

/* Backward through a network whose output gradient is in buf[0]; the
 * gradient at its input ends in buf[0] when need_dx. */
static void net_backward(bcae3d_runner *r, run_net *rn, float **buf, int need_dx, float *grad)
{
    nn_engine *e = r->e;
    const nn_ops *o = e->ops;
    const model_param *p = r->model->t->params;
    nn_tensor5 g = like(&rn->out, buf[0]);
    if (rn->net->out_act) {
        o->instance_norm_backward(e, &rn->out, rn->st_out, &g, &g);
        lrelu_back(e, &rn->out_pre, &g);
    }
    o->conv3d_backward_weights(rn->conv_out, &rn->out_in, &g, grad + p[rn->net->out_w].offset,
                               grad + p[rn->net->out_b].offset);
    if (rn->nblocks > 0 || need_dx) {
        nn_tensor5 dx = like(&rn->out_in, buf[1]);
        o->conv3d_backward_data(rn->conv_out, &g, &dx);
        float *t = buf[0];
        buf[0] = buf[1];
        buf[1] = t;
    }
    for (int i = rn->nblocks - 1; i >= 0; i--)
        block_backward(r, &rn->blocks[i], buf, i > 0 || need_dx, grad);
}

static void copy_into(nn_engine *e, nn_tensor5 *dst, const nn_tensor5 *src, int accumulate)
{
    nn_tensor d = nn_tensor5_flat(dst), s = nn_tensor5_flat(src);
    if (!accumulate) e->ops->fill(e, &d, 0.0f);
    e->ops->add(e, &d, &s);
}

void bcae3d_runner_backward(bcae3d_runner *r, float coef, float *grad)
{
    nn_engine *e = r->e;
    const bcae3d_model *m = r->model;
    memset(grad, 0, m->t->nfloats * sizeof *grad);
    nn_tensor s = nn_tensor5_flat(&r->seg_logit), g = nn_tensor5_flat(&r->reg_raw);
    nn_tensor x = nn_tensor5_flat(&r->input);
    nn_tensor ds = nn_tensor5_flat(&r->dseg), dr = nn_tensor5_flat(&r->dreg);
    e->ops->bcae_loss_backward(e, &s, &g, &x, m->crop_w, m->shift, m->scale,
                               m->cfg.clf_threshold, BCAE3D_FOCAL_GAMMA, BCAE3D_FOCAL_EPS, coef,
                               &ds, &dr);
    for (int h = 0; h < 2; h++) {
        float *buf[3] = {r->scratch[0], r->scratch[1], r->scratch[2]};
        nn_tensor5 start = like(&r->dseg, buf[0]);
        copy_into(e, &start, h == 0 ? &r->dseg : &r->dreg, 0);
        net_backward(r, &r->nets[NET3D_CLF + h], buf, 1, grad);
        nn_tensor5 dcode = like(&r->code, buf[0]);
        copy_into(e, &r->dcode, &dcode, h == 1);
    }
    float *buf[3] = {r->scratch[0], r->scratch[1], r->scratch[2]};
    nn_tensor5 start = like(&r->dcode, buf[0]);
    copy_into(e, &start, &r->dcode, 0);
    net_backward(r, &r->nets[NET3D_ENCODER], buf, 0, grad);
}

/* ---- the model interface (model.h) ------------------------------------------ */

static bcae3d_runner *impl(const model_runner *r) { return r->impl; }

static void mr_destroy(model_runner *r)
{
    bcae3d_runner_destroy(impl(r));
    free(r);
}

static size_t mr_arena_bytes(const model_runner *r) { return bcae3d_runner_arena_bytes(impl(r)); }

static bcae_status mr_sync(model_runner *r, bcae_error *err)
{
    bcae3d_runner *x = impl(r);
    model_pass_begin(r->engine);
    bcae3d_runner_sync_weights(x);
    bcae_status s0 = model_pass_end(r->engine, err);
    if (s0) return s0;
    /* Chains hold their own copies of the weights: plan them anew. */
    bcae_status s = BCAE_OK;
    if (x->chain) s = bcae3d_runner_use_chain(x, x->chain_first, err);
    if (!s && x->dechain)
        s = bcae3d_runner_use_decoder_chain(x, x->dechain_form, x->dechain_portable, err);
    return s;
}

static bcae_status mr_encode(model_runner *r, bcae_error *err)
{
    model_pass_begin(r->engine);
    bcae3d_runner_encode(impl(r));
    return model_pass_end(r->engine, err);
}

static bcae_status mr_decode(model_runner *r, bcae_error *err)
{
    model_pass_begin(r->engine);
    bcae3d_runner_decode(impl(r));
    return model_pass_end(r->engine, err);
}

static bcae_status mr_loss_sums(model_runner *r, nn_loss_sums *out, bcae_error *err)
{
    model_pass_begin(r->engine);
    bcae3d_runner_loss_sums(impl(r), out);
    return model_pass_end(r->engine, err);
}

static bcae_status mr_backward(model_runner *r, float coef, float *grad, bcae_error *err)
{
    model_pass_begin(r->engine);
    bcae3d_runner_backward(impl(r), coef, grad);
    return model_pass_end(r->engine, err);
}

static const char *mr_describe(const model_runner *r, int decoder, char *buf, size_t size)
{
    const bcae3d_runner *x = impl(r);
    static const char *first[] = {"sparse", "dense", "sparse-portable"};
    static const char *form[] = {"shuffle", "rows"};
    if (decoder >= 2)
        snprintf(buf, size, "%s", "");
    else if (decoder && x->dechain)
        snprintf(buf, size, "chain %s%s", form[x->dechain_form],
                 x->dechain_portable ? " portable" : "");
    else if (!decoder && x->chain)
        snprintf(buf, size, "chain %s", first[x->chain_first]);
    else
        snprintf(buf, size, "layers");
    return buf;
}

static const runner_ops OPS = {mr_destroy, mr_arena_bytes, mr_sync, mr_encode, mr_decode,
                               mr_loss_sums, mr_backward, NULL, NULL, mr_describe};

/* The inference paths asked for; FAST falls back to the layers where the
 * model (the original BCAE's InstanceNorm) or the backend has no chain. */
static bcae_status use_paths(bcae3d_runner *x, const runner_options *opt, bcae_error *err)
{
    bcae_status s = BCAE_OK;
    switch (opt->encoder) {
    case RUNNER_ENCODER_FAST:
        if (nn_has_chain3d(x->e)) s = bcae3d_runner_use_fast_encoder(x, err);
        break;
    case RUNNER_ENCODER_SPARSE: s = bcae3d_runner_use_chain(x, NN_FIRST_SPARSE, err); break;
    case RUNNER_ENCODER_DENSE: s = bcae3d_runner_use_chain(x, NN_FIRST_DENSE, err); break;
    case RUNNER_ENCODER_PORTABLE: s = bcae3d_runner_use_chain(x, NN_FIRST_SPARSE_PORTABLE, err); break;
    case RUNNER_ENCODER_LAYERS: break;
    }
    if (s) return s;
    switch (opt->decoder) {
    case RUNNER_DECODER_FAST:
        if (nn_has_dechain3d(x->e)) s = bcae3d_runner_use_fast_decoder(x, err);
        break;
    case RUNNER_DECODER_SHUFFLE: s = bcae3d_runner_use_decoder_chain(x, NN_DECONV_SHUFFLE, 0, err); break;
    case RUNNER_DECODER_ROWS: s = bcae3d_runner_use_decoder_chain(x, NN_DECONV_ROWS, 0, err); break;
    case RUNNER_DECODER_PORTABLE: s = bcae3d_runner_use_decoder_chain(x, NN_DECONV_ROWS, 1, err); break;
    case RUNNER_DECODER_LAYERS: break;
    }
    return s;
}

bcae_status bcae3d_model_runner_create(nn_engine *e, const bcae_model *m, int batch, int mode,
                                       const runner_options *opt, model_runner **out,
                                       bcae_error *err)
{
    if (opt->decoder_precision != BCAE_PRECISION_FP32)
        return bcae_fail(err, BCAE_ERR_UNSUPPORTED,
                         "decoder precision %s is not supported for %s yet (fp32 only)",
                         bcae_precision_name(opt->decoder_precision)
                             ? bcae_precision_name(opt->decoder_precision)
                             : "?",
                         m->arch->name);
    if (opt->precision != BCAE_PRECISION_FP32 && mode != RUNNER_INFERENCE)
        return bcae_fail(err, BCAE_ERR_UNSUPPORTED,
                         "%s training in %s is not supported yet (fp32 only; bf16 training: "
                         "bcae-2d)",
                         m->arch->name, bcae_precision_name(opt->precision));
    if (opt->precision != BCAE_PRECISION_FP32)
        return bcae_fail(err, BCAE_ERR_UNSUPPORTED,
                         "precision %s is not supported for %s yet (fp32 only)",
                         bcae_precision_name(opt->precision), m->arch->name);
    model_runner *r = calloc(1, sizeof *r);
    if (!r) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "runner: out of memory");
    bcae3d_runner *x = NULL;
    bcae_status s = bcae3d_runner_create(e, bcae3d_of(m), batch, mode != RUNNER_INFERENCE,
                                         opt->conv3d_algo, &x, err);
    if (s) {
        free(r);
        return s;
    }
    *r = (model_runner){&OPS, m, e, batch, mode, nn_tensor5_flat(&x->input),
                        nn_tensor5_flat(&x->code), nn_tensor5_flat(&x->seg_logit),
                        nn_tensor5_flat(&x->reg_raw), 0, x, 0};
    if (mode == RUNNER_INFERENCE) s = use_paths(x, opt, err);
    if (s) {
        mr_destroy(r);
        return s;
    }
    *out = r;
    return BCAE_OK;
}
