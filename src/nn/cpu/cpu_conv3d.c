/*
 * 3D convolutions and transposed convolutions (BCAE++, BCAE-HT, BCAE).
 *
 * Two ways to run one:
 *  - direct: oneDNN's convolution or deconvolution primitives, planned once
 *    in cpu_conv3d_create exactly as cpu_conv.c plans the 2D ones (forward
 *    plain and with the LeakyReLU post-op, backward-data, backward-weights,
 *    weight reorders into the primitives' preferred formats, one shared
 *    user-mode scratchpad, OpenMP thread count fixed at create). Activations
 *    are the caller's storage in nCdhw16c / nCdhw8c / ncdhw (cpu_block of
 *    the channel count), which is the 4D layout of (n, c, d * h, w) that
 *    engine.h promises.
 *  - shuffle (transposed, kernel (3,4,4), stride (1,2,2), padding 1 only):
 *    SPEC section 6's identity. The deconvolution equals a Conv3d(k3, p1)
 *    with 4 * cout outputs followed by a 2x2 pixel shuffle over (h, w):
 *        y[n, o, z, 2i + a, 2j + b] = t[n, (2a + b) * cout + o, z, i, j]
 *    where the inner kernel is the transposed one, re-indexed:
 *        W'[(2a + b) cout + o, c, u, v, s] = Wt[c, o, 2 - u, a + 3 - 2v, b + 3 - 2s]
 *    (zero when a kernel index leaves [0, 3]) and the bias is repeated per
 *    phase. Every Wt tap appears exactly once in W', so the weight gradient
 *    maps back one to one (the structural zeros' gradients are dropped). The
 *    phase-major channel order makes a phase's channels one contiguous block
 *    when cout is a multiple of the block size, so the shuffle copies runs.
 *    It multiplies 2.25x more than the deconvolution needs but runs as a
 *    plain, well-tuned convolution.
 *  - small (Conv3d k3 s1 p1, at most C3S_MAX_CHANNELS channels in and out):
 *    our own direct kernels, cpu_conv3d_small.c, where oneDNN has only its
 *    im2col + GEMM path (nn_cpu_options.conv3d_onednn forces oneDNN). The shuffle
 *    form's inner convolution takes this path too when it qualifies.
 * NN_CONV3D_AUTO picks shuffle where it applies (bench/RESULTS.md measures
 * both; tests/test_conv3d.c checks them against each other and against a
 * float64 reference).
 *
 * Errors as in cpu_conv.c: a broken invariant (wrong shape, backward on an
 * inference conv) or a oneDNN failure returns an error, records its message
 * in the engine and fills the output with NaN.
 */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <dnnl_debug.h>

#include "core/error.h"
#include "nn/cpu/cpu_internal.h"

enum { C3_MAX_COPIES = 3, C3_ALIGN = 64, C3_MAX_SHUFFLE_CHANNELS = 1024 };

typedef struct c3_step {
    dnnl_primitive_t prim;
    dnnl_memory_t scratch;
} c3_step;

typedef struct c3_copy {
    dnnl_memory_t mem;
    c3_step reorder;
} c3_copy;

struct nn_conv3d {
    nn_conv3d_desc d;
    int out[3];
    int training, threads;
    nn_conv3d_algo algo;
    nn_engine *e;
    dnnl_engine_t engine;
    dnnl_stream_t stream;

    /* direct */
    c3_step fwd[2];
    int fwd_weights[2];
    c3_step bwd_data;
    int bwd_data_weights;
    c3_step bwd_weights;
    c3_step dw_to_plain;
    c3_copy copies[C3_MAX_COPIES];
    int copy_count;
    dnnl_memory_t x, y, dx, dy, w_plain, dw_plain, bias, dw, db;
    float *bias_data, *db_data;
    void *scratch_buf;
    /* When oneDNN has no fast kernel for the caller's layouts (a blocked 8c
     * source with a 16c destination, say, which only its reference kernel
     * takes, ~100x slower), the primitives run on layouts of their own
     * choosing in private buffers, and these reorders move data in and out:
     * x_priv holds x or dx, y_priv holds y or dy, one pass at a time. */
    int reorder_src, reorder_dst;
    c3_step src_in, src_out, dst_in, dst_out;
    dnnl_memory_t x_priv, y_priv;

    /* small: own direct kernels instead of everything above */
    c3s *small;

    /* shuffle: the inner Conv3d and its private buffers */
    nn_conv3d *inner;
    float *w_inner, *b_inner, *dw_inner, *db_inner; /* plain OIDHW, O */
    float *t;      /* inner activation (n, 4 cout, d, h, w), also for gradients */
};

/* ---- helpers ------------------------------------------------------------------ */

static bcae_status c3_error(bcae_error *err, const nn_conv3d_desc *d, const char *what,
                            dnnl_status_t st)
{
    bcae_status code = st == dnnl_unimplemented    ? BCAE_ERR_UNSUPPORTED
                       : st == dnnl_out_of_memory ? BCAE_ERR_OUT_OF_MEMORY
                                                   : BCAE_ERR_INTERNAL;
    return bcae_fail(err, code,
                     "conv3d%s %d->%d k(%d,%d,%d) s(%d,%d,%d) p(%d,%d,%d) on %dx%dx%dx%dx%d: %s: "
                     "oneDNN: %s",
                     d->transposed ? " (transposed)" : "", d->cin, d->cout, d->k[0], d->k[1],
                     d->k[2], d->stride[0], d->stride[1], d->stride[2], d->pad[0], d->pad[1],
                     d->pad[2], d->n, d->cin, d->d, d->h, d->w, what, dnnl_status2str(st));
}

static dnnl_format_tag_t act_tag(int c)
{
    switch (cpu_block(c)) {
    case 16: return dnnl_nCdhw16c;
    case 8: return dnnl_nCdhw8c;
    default: return dnnl_ncdhw;
    }
}

static void poison(float *p, size_t count)
{
    for (size_t i = 0; i < count; i++) p[i] = NAN;
}

static size_t count5(const nn_tensor5 *t)
{
    return (size_t)t->n * (size_t)t->c * (size_t)t->d * (size_t)t->h * (size_t)t->w;
}

static int is5(const nn_tensor5 *t, int n, int c, int d, int h, int w)
{
    return t->n == n && t->c == c && t->d == d && t->h == h && t->w == w;
}

static size_t weight_count(const nn_conv3d_desc *d)
{
    return (size_t)d->cout * (size_t)d->cin * (size_t)d->k[0] * (size_t)d->k[1] * (size_t)d->k[2];
}

static int x_ok(const nn_conv3d *c, const nn_tensor5 *x)
{
    return is5(x, c->d.n, c->d.cin, c->d.d, c->d.h, c->d.w);
}

static int y_ok(const nn_conv3d *c, const nn_tensor5 *y)
{
    return is5(y, c->d.n, c->d.cout, c->out[0], c->out[1], c->out[2]);
}

/* Records a failed call in the engine and returns its status. */
static bcae_status run_error(nn_conv3d *c, bcae_status status, const char *what)
{
    const nn_conv3d_desc *d = &c->d;
    return bcae_fail(&c->e->last_error, status,
                     "conv3d%s %d->%d k(%d,%d,%d) s(%d,%d,%d) p(%d,%d,%d) on %dx%dx%dx%dx%d: %s",
                     d->transposed ? " (transposed)" : "", d->cin, d->cout, d->k[0], d->k[1],
                     d->k[2], d->stride[0], d->stride[1], d->stride[2], d->pad[0], d->pad[1],
                     d->pad[2], d->n, d->cin, d->d, d->h, d->w, what);
}

static int run_step(nn_conv3d *c, const c3_step *s, dnnl_exec_arg_t *args, int nargs)
{
    if (!s->prim) return 0;
    if (s->scratch) args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, s->scratch};
    int saved = omp_get_max_threads();
    omp_set_num_threads(c->threads);
    dnnl_status_t st = dnnl_primitive_execute(s->prim, c->stream, nargs, args);
    if (st == dnnl_success) st = dnnl_stream_wait(c->stream);
    omp_set_num_threads(saved);
    return st == dnnl_success;
}

/* A reorder between the caller's layout and a private one. */
static int move(nn_conv3d *c, const c3_step *s, dnnl_memory_t from, dnnl_memory_t to)
{
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    return run_step(c, s, args, 2);
}

/* ---- planning the direct path ------------------------------------------------- */

typedef struct c3_plan {
    dnnl_primitive_attr_t attr_plain, attr_leaky, attr_accum;
    dnnl_primitive_desc_t fwd[2], bwd_data, bwd_weights, dw_to_plain;
    dnnl_primitive_desc_t reorder[C3_MAX_COPIES];
    dnnl_primitive_desc_t src_in, src_out, dst_in, dst_out;
} c3_plan;

static void plan_free(c3_plan *p)
{
    dnnl_primitive_desc_t *pds[] = {&p->fwd[0],      &p->fwd[1],      &p->bwd_data,
                                    &p->bwd_weights, &p->dw_to_plain, &p->reorder[0],
                                    &p->reorder[1],  &p->reorder[2], &p->src_in,
                                    &p->src_out,     &p->dst_in,      &p->dst_out};
    for (size_t i = 0; i < sizeof pds / sizeof pds[0]; i++)
        if (*pds[i]) dnnl_primitive_desc_destroy(*pds[i]);
    if (p->attr_plain) dnnl_primitive_attr_destroy(p->attr_plain);
    if (p->attr_leaky) dnnl_primitive_attr_destroy(p->attr_leaky);
    if (p->attr_accum) dnnl_primitive_attr_destroy(p->attr_accum);
}

static dnnl_status_t make_attr(dnnl_primitive_attr_t *attr, int leaky, int accumulate)
{
    dnnl_status_t st = dnnl_primitive_attr_create(attr);
    if (st != dnnl_success) return st;
    st = dnnl_primitive_attr_set_scratchpad_mode(*attr, dnnl_scratchpad_mode_user);
    if (st != dnnl_success || (!leaky && !accumulate)) return st;
    dnnl_post_ops_t ops;
    st = dnnl_post_ops_create(&ops);
    if (st != dnnl_success) return st;
    if (leaky)
        st = dnnl_post_ops_append_eltwise(ops, 1.0f, dnnl_eltwise_relu, NN_LEAKY_SLOPE, 0.0f);
    else
        st = dnnl_post_ops_append_sum(ops, 1.0f);
    if (st == dnnl_success) st = dnnl_primitive_attr_set_post_ops(*attr, ops);
    dnnl_post_ops_destroy(ops);
    return st;
}

static size_t scratch_size(const_dnnl_primitive_desc_t pd)
{
    if (!pd) return 0;
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    return md ? dnnl_memory_desc_get_size(md) : 0;
}

static dnnl_status_t make_step(nn_conv3d *c, c3_step *s, const_dnnl_primitive_desc_t pd)
{
    dnnl_status_t st = dnnl_primitive_create(&s->prim, pd);
    if (st != dnnl_success || scratch_size(pd) == 0) return st;
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    return dnnl_memory_create(&s->scratch, md, c->engine, c->scratch_buf);
}

static void step_free(c3_step *s)
{
    if (s->scratch) dnnl_memory_destroy(s->scratch);
    if (s->prim) dnnl_primitive_destroy(s->prim);
}

static int copy_for(nn_conv3d *c, c3_plan *p, const dnnl_memory_desc_t *md,
                    const dnnl_memory_desc_t *plain_md, dnnl_status_t *st)
{
    for (int i = 0; i < c->copy_count; i++) {
        const dnnl_memory_desc_t *have;
        *st = dnnl_memory_get_memory_desc(c->copies[i].mem, &have);
        if (*st != dnnl_success) return -1;
        if (dnnl_memory_desc_equal(have, md)) return i;
    }
    int i = c->copy_count;
    *st = dnnl_memory_create(&c->copies[i].mem, md, c->engine, DNNL_MEMORY_ALLOCATE);
    if (*st != dnnl_success) return -1;
    c->copy_count++;
    *st = dnnl_reorder_primitive_desc_create(&p->reorder[i], plain_md, c->engine, md, c->engine,
                                             p->attr_plain);
    return *st == dnnl_success ? i : -1;
}

static int is_reference_impl(const_dnnl_primitive_desc_t pd)
{
    const char *name = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name) != dnnl_success)
        return 0;
    return name && !strncmp(name, "ref", 3);
}

static dnnl_status_t fwd_desc_init(dnnl_convolution_desc_t *desc, const nn_conv3d *c,
                                   const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *w,
                                   const dnnl_memory_desc_t *b, const dnnl_memory_desc_t *dst,
                                   const dnnl_dims_t strides, const dnnl_dims_t pads)
{
    const dnnl_prop_kind_t prop = c->training ? dnnl_forward_training : dnnl_forward_inference;
    if (c->d.transposed)
        return dnnl_deconvolution_forward_desc_init(desc, prop, dnnl_deconvolution_direct, src, w,
                                                    b, dst, strides, pads, pads);
    return dnnl_convolution_forward_desc_init(desc, prop, dnnl_convolution_direct, src, w, b, dst,
                                              strides, pads, pads);
}

/* How many of the passes this conv runs (forward; backward-data and
 * -weights when training) oneDNN has only its reference kernel for, with
 * these activation layouts; 4 if it cannot plan them at all. */
static int ref_count(const nn_conv3d *c, const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *w,
                    const dnnl_memory_desc_t *b, const dnnl_memory_desc_t *dst,
                    const dnnl_dims_t strides, const dnnl_dims_t pads,
                    const_dnnl_primitive_attr_t attr)
{
    const int tr = c->d.transposed;
    const dnnl_alg_kind_t alg = tr ? dnnl_deconvolution_direct : dnnl_convolution_direct;
    dnnl_convolution_desc_t fd, bd, bw;
    dnnl_primitive_desc_t f = NULL, pd = NULL;
    if (fwd_desc_init(&fd, c, src, w, b, dst, strides, pads) != dnnl_success ||
        dnnl_primitive_desc_create(&f, &fd, attr, c->engine, NULL) != dnnl_success)
        return 4;
    int refs = is_reference_impl(f);
    if (c->training) {
        dnnl_status_t st = tr ? dnnl_deconvolution_backward_data_desc_init(&bd, alg, src, w, dst,
                                                                           strides, pads, pads)
                              : dnnl_convolution_backward_data_desc_init(&bd, alg, src, w, dst,
                                                                         strides, pads, pads);
        if (st != dnnl_success ||
            dnnl_primitive_desc_create(&pd, &bd, attr, c->engine, f) != dnnl_success)
            refs = 4;
        else
            refs += is_reference_impl(pd);
        if (pd) dnnl_primitive_desc_destroy(pd);
        pd = NULL;
        st = tr ? dnnl_deconvolution_backward_weights_desc_init(&bw, alg, src, w, b, dst, strides,
                                                                pads, pads)
                : dnnl_convolution_backward_weights_desc_init(&bw, alg, src, w, b, dst, strides,
                                                              pads, pads);
        if (st != dnnl_success ||
            dnnl_primitive_desc_create(&pd, &bw, attr, c->engine, f) != dnnl_success)
            refs = 4;
        else
            refs += is_reference_impl(pd);
        if (pd) dnnl_primitive_desc_destroy(pd);
    }
    dnnl_primitive_desc_destroy(f);
    return refs;
}

/* The forward / backward operation descriptors of a convolution or a
 * deconvolution share one layout in oneDNN 2.x (dnnl_deconvolution_desc_t
 * is dnnl_convolution_desc_t), so one variable holds either. */
static bcae_status plan_direct(nn_conv3d *c, c3_plan *p, bcae_error *err)
{
    const nn_conv3d_desc *d = &c->d;
    dnnl_status_t st;
    const char *what;
#define TRY(call, step)                    \
    do {                                   \
        what = (step);                     \
        st = (call);                       \
        if (st != dnnl_success) goto fail; \
    } while (0)
    const int tr = d->transposed;
    dnnl_memory_desc_t src_md, dst_md, any_w_md, plain_w_md, bias_md;
    const dnnl_dims_t src_dims = {d->n, d->cin, d->d, d->h, d->w};
    const dnnl_dims_t dst_dims = {d->n, d->cout, c->out[0], c->out[1], c->out[2]};
    const dnnl_dims_t w_dims = {d->cout, d->cin, d->k[0], d->k[1], d->k[2]};
    const dnnl_dims_t b_dims = {d->cout};
    const dnnl_dims_t strides = {d->stride[0], d->stride[1], d->stride[2]};
    const dnnl_dims_t pads = {d->pad[0], d->pad[1], d->pad[2]};
    const dnnl_alg_kind_t alg = tr ? dnnl_deconvolution_direct : dnnl_convolution_direct;

    TRY(dnnl_memory_desc_init_by_tag(&src_md, 5, src_dims, dnnl_f32, act_tag(d->cin)), "source");
    TRY(dnnl_memory_desc_init_by_tag(&dst_md, 5, dst_dims, dnnl_f32, act_tag(d->cout)),
        "destination");
    TRY(dnnl_memory_desc_init_by_tag(&any_w_md, 5, w_dims, dnnl_f32, dnnl_format_tag_any),
        "weights");
    /* PyTorch: Conv3d weights (out, in, ...) = oidhw; ConvTranspose3d
     * weights (in, out, ...), which oneDNN's (out, in, ...) dims read as iodhw. */
    TRY(dnnl_memory_desc_init_by_tag(&plain_w_md, 5, w_dims, dnnl_f32,
                                     tr ? dnnl_iodhw : dnnl_oidhw),
        "weights");
    TRY(dnnl_memory_desc_init_by_tag(&bias_md, 1, b_dims, dnnl_f32, dnnl_x), "bias");
    TRY(make_attr(&p->attr_plain, 0, 0), "attributes");
    TRY(make_attr(&p->attr_leaky, 1, 0), "attributes");

    dnnl_convolution_desc_t fwd_desc, bd_desc, bw_desc;
    dnnl_memory_desc_t src_use = src_md, dst_use = dst_md;
    int best = ref_count(c, &src_md, &any_w_md, &bias_md, &dst_md, strides, pads, p->attr_plain);
    if (best > 0) {
        /* Other layout pairs: the AVX-512 kernels' 16 channels (padded), the
         * AVX2 kernels' 8, plain layouts (GEMM-based kernels exist for every
         * pass), oneDNN's own choice. The first with the fewest reference
         * passes wins. (For 8 -> 16 channels in training, say, only the
         * plain pair has real kernels for all three passes.) */
        static const dnnl_format_tag_t pairs[][2] = {{dnnl_nCdhw16c, dnnl_nCdhw16c},
                                                     {dnnl_ncdhw, dnnl_nCdhw16c},
                                                     {dnnl_nCdhw8c, dnnl_nCdhw8c},
                                                     {dnnl_ncdhw, dnnl_ncdhw},
                                                     {dnnl_format_tag_any, dnnl_format_tag_any}};
        for (size_t i = 0; i < sizeof pairs / sizeof pairs[0] && best > 0; i++) {
            dnnl_memory_desc_t s_md, d_md;
            TRY(dnnl_memory_desc_init_by_tag(&s_md, 5, src_dims, dnnl_f32, pairs[i][0]), "source");
            TRY(dnnl_memory_desc_init_by_tag(&d_md, 5, dst_dims, dnnl_f32, pairs[i][1]),
                "destination");
            if (pairs[i][0] == dnnl_format_tag_any) {
                dnnl_convolution_desc_t any_desc;
                dnnl_primitive_desc_t pd = NULL;
                TRY(fwd_desc_init(&any_desc, c, &s_md, &any_w_md, &bias_md, &d_md, strides, pads),
                    "forward descriptor");
                if (dnnl_primitive_desc_create(&pd, &any_desc, p->attr_plain, c->engine, NULL) !=
                    dnnl_success)
                    break;
                s_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
                d_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
                dnnl_primitive_desc_destroy(pd);
            }
            int refs = ref_count(c, &s_md, &any_w_md, &bias_md, &d_md, strides, pads,
                                 p->attr_plain);
            if (refs < best) {
                best = refs;
                src_use = s_md;
                dst_use = d_md;
            }
        }
    }
    TRY(fwd_desc_init(&fwd_desc, c, &src_use, &any_w_md, &bias_md, &dst_use, strides, pads),
        "forward descriptor");
    TRY(dnnl_primitive_desc_create(&p->fwd[0], &fwd_desc, p->attr_plain, c->engine, NULL),
        "forward plan");
    c->reorder_src = !dnnl_memory_desc_equal(&src_use, &src_md);
    c->reorder_dst = !dnnl_memory_desc_equal(&dst_use, &dst_md);
    TRY(dnnl_primitive_desc_create(&p->fwd[1], &fwd_desc, p->attr_leaky, c->engine, NULL),
        "forward plan with LeakyReLU");
    for (int v = 0; v < 2; v++) {
        const dnnl_memory_desc_t *md =
            dnnl_primitive_desc_query_md(p->fwd[v], dnnl_query_weights_md, 0);
        c->fwd_weights[v] = copy_for(c, p, md, &plain_w_md, &st);
        what = "weights reorder";
        if (c->fwd_weights[v] < 0) goto fail;
    }
    if (c->training) {
        if (tr)
            TRY(dnnl_deconvolution_backward_data_desc_init(&bd_desc, alg, &src_use, &any_w_md,
                                                           &dst_use, strides, pads, pads),
                "backward-data descriptor");
        else
            TRY(dnnl_convolution_backward_data_desc_init(&bd_desc, alg, &src_use, &any_w_md,
                                                         &dst_use, strides, pads, pads),
                "backward-data descriptor");
        TRY(dnnl_primitive_desc_create(&p->bwd_data, &bd_desc, p->attr_plain, c->engine,
                                       p->fwd[0]),
            "backward-data plan");
        const dnnl_memory_desc_t *md =
            dnnl_primitive_desc_query_md(p->bwd_data, dnnl_query_weights_md, 0);
        c->bwd_data_weights = copy_for(c, p, md, &plain_w_md, &st);
        what = "weights reorder";
        if (c->bwd_data_weights < 0) goto fail;
        if (tr)
            TRY(dnnl_deconvolution_backward_weights_desc_init(&bw_desc, alg, &src_use, &any_w_md,
                                                              &bias_md, &dst_use, strides, pads,
                                                              pads),
                "backward-weights descriptor");
        else
            TRY(dnnl_convolution_backward_weights_desc_init(&bw_desc, alg, &src_use, &any_w_md,
                                                            &bias_md, &dst_use, strides, pads,
                                                            pads),
                "backward-weights descriptor");
        TRY(dnnl_primitive_desc_create(&p->bwd_weights, &bw_desc, p->attr_plain, c->engine,
                                       p->fwd[0]),
            "backward-weights plan");
        const dnnl_memory_desc_t *dw_md =
            dnnl_primitive_desc_query_md(p->bwd_weights, dnnl_query_diff_weights_md, 0);
        const dnnl_memory_desc_t *db_md =
            dnnl_primitive_desc_query_md(p->bwd_weights, dnnl_query_diff_weights_md, 1);
        TRY(dnnl_memory_create(&c->dw, dw_md, c->engine, DNNL_MEMORY_ALLOCATE), "diff weights");
        TRY(dnnl_memory_create(&c->db, db_md, c->engine, DNNL_MEMORY_ALLOCATE), "diff bias");
        void *h;
        TRY(dnnl_memory_get_data_handle(c->db, &h), "diff bias");
        c->db_data = h;
        TRY(make_attr(&p->attr_accum, 0, 1), "attributes");
        TRY(dnnl_reorder_primitive_desc_create(&p->dw_to_plain, dw_md, c->engine, &plain_w_md,
                                               c->engine, p->attr_accum),
            "diff weights reorder");
    }
    void *h;
    TRY(dnnl_memory_create(&c->bias, &bias_md, c->engine, DNNL_MEMORY_ALLOCATE), "bias");
    TRY(dnnl_memory_get_data_handle(c->bias, &h), "bias");
    c->bias_data = h;
    TRY(dnnl_memory_create(&c->x, &src_md, c->engine, DNNL_MEMORY_NONE), "memory");
    TRY(dnnl_memory_create(&c->y, &dst_md, c->engine, DNNL_MEMORY_NONE), "memory");
    TRY(dnnl_memory_create(&c->w_plain, &plain_w_md, c->engine, DNNL_MEMORY_NONE), "memory");
    if (c->training) {
        TRY(dnnl_memory_create(&c->dx, &src_md, c->engine, DNNL_MEMORY_NONE), "memory");
        TRY(dnnl_memory_create(&c->dy, &dst_md, c->engine, DNNL_MEMORY_NONE), "memory");
        TRY(dnnl_memory_create(&c->dw_plain, &plain_w_md, c->engine, DNNL_MEMORY_NONE), "memory");
    }
    if (c->reorder_src) {
        TRY(dnnl_memory_create(&c->x_priv, &src_use, c->engine, DNNL_MEMORY_ALLOCATE), "buffer");
        TRY(dnnl_reorder_primitive_desc_create(&p->src_in, &src_md, c->engine, &src_use,
                                               c->engine, p->attr_plain),
            "source reorder");
        if (c->training)
            TRY(dnnl_reorder_primitive_desc_create(&p->src_out, &src_use, c->engine, &src_md,
                                                   c->engine, p->attr_plain),
                "source reorder");
    }
    if (c->reorder_dst) {
        TRY(dnnl_memory_create(&c->y_priv, &dst_use, c->engine, DNNL_MEMORY_ALLOCATE), "buffer");
        TRY(dnnl_reorder_primitive_desc_create(&p->dst_out, &dst_use, c->engine, &dst_md,
                                               c->engine, p->attr_plain),
            "destination reorder");
        if (c->training)
            TRY(dnnl_reorder_primitive_desc_create(&p->dst_in, &dst_md, c->engine, &dst_use,
                                                   c->engine, p->attr_plain),
                "destination reorder");
    }
    const_dnnl_primitive_desc_t all[] = {p->fwd[0],      p->fwd[1],      p->bwd_data,
                                         p->bwd_weights, p->dw_to_plain, p->reorder[0],
                                         p->reorder[1],  p->reorder[2],  p->src_in,
                                         p->src_out,     p->dst_in,      p->dst_out};
    size_t scratch = 0;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (scratch_size(all[i]) > scratch) scratch = scratch_size(all[i]);
    if (scratch > 0) {
        c->scratch_buf = aligned_alloc(C3_ALIGN, (scratch + C3_ALIGN - 1) / C3_ALIGN * C3_ALIGN);
        if (!c->scratch_buf) {
            st = dnnl_out_of_memory;
            what = "scratchpad";
            goto fail;
        }
    }
    TRY(make_step(c, &c->fwd[0], p->fwd[0]), "forward primitive");
    TRY(make_step(c, &c->fwd[1], p->fwd[1]), "forward primitive with LeakyReLU");
    for (int i = 0; i < c->copy_count; i++)
        TRY(make_step(c, &c->copies[i].reorder, p->reorder[i]), "weights reorder primitive");
    if (c->training) {
        TRY(make_step(c, &c->bwd_data, p->bwd_data), "backward-data primitive");
        TRY(make_step(c, &c->bwd_weights, p->bwd_weights), "backward-weights primitive");
        TRY(make_step(c, &c->dw_to_plain, p->dw_to_plain), "diff weights reorder primitive");
    }
    if (p->src_in) TRY(make_step(c, &c->src_in, p->src_in), "source reorder primitive");
    if (p->src_out) TRY(make_step(c, &c->src_out, p->src_out), "source reorder primitive");
    if (p->dst_in) TRY(make_step(c, &c->dst_in, p->dst_in), "destination reorder primitive");
    if (p->dst_out) TRY(make_step(c, &c->dst_out, p->dst_out), "destination reorder primitive");
    return BCAE_OK;
#undef TRY
fail:
    return c3_error(err, d, what, st);
}

/* ---- the shuffle path ----------------------------------------------------------- */

static int shuffle_applies(const nn_conv3d_desc *d)
{
    return d->transposed && d->k[0] == 3 && d->k[1] == 4 && d->k[2] == 4 && d->stride[0] == 1 &&
           d->stride[1] == 2 && d->stride[2] == 2 && d->pad[0] == 1 && d->pad[1] == 1 &&
           d->pad[2] == 1 && 4 * d->cout <= C3_MAX_SHUFFLE_CHANNELS;
}

static void *alloc_floats(size_t n)
{
    return aligned_alloc(C3_ALIGN, ((n * sizeof(float) + C3_ALIGN - 1) / C3_ALIGN) * C3_ALIGN);
}

static bcae_status plan_shuffle(nn_conv3d *c, bcae_error *err)
{
    const nn_conv3d_desc *d = &c->d;
    nn_conv3d_desc in = {d->n, d->cin, 4 * d->cout, d->d, d->h, d->w, {3, 3, 3}, {1, 1, 1},
                         {1, 1, 1}, 0, NN_CONV3D_DIRECT};
    bcae_status s = cpu_conv3d_create(c->e, &in, c->training, &c->inner, err);
    if (s) return s;
    size_t wn = weight_count(&in), tn = (size_t)d->n * (size_t)in.cout * (size_t)d->d *
                                         (size_t)d->h * (size_t)d->w;
    c->w_inner = calloc(wn, sizeof(float));
    c->b_inner = calloc((size_t)in.cout, sizeof(float));
    c->t = alloc_floats(tn);
    if (c->training) {
        c->dw_inner = calloc(wn, sizeof(float));
        c->db_inner = calloc((size_t)in.cout, sizeof(float));
    }
    if (!c->w_inner || !c->b_inner || !c->t || (c->training && (!c->dw_inner || !c->db_inner)))
        return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "conv3d: out of memory");
    return BCAE_OK;
}

/* Calls BODY with wt (index into the transposed kernel (cin, cout, 3, 4, 4))
 * and wi (index into the inner kernel (4 cout, cin, 3, 3, 3)) for every tap
 * the two share. */
#define FOR_EACH_SHUFFLE_TAP(cin, cout, BODY)                                               \
    for (int a_ = 0; a_ < 2; a_++)                                                          \
        for (int b_ = 0; b_ < 2; b_++)                                                      \
            for (int o_ = 0; o_ < (cout); o_++)                                             \
                for (int c_ = 0; c_ < (cin); c_++)                                          \
                    for (int u_ = 0; u_ < 3; u_++)                                          \
                        for (int v_ = 0; v_ < 3; v_++) {                                    \
                            int ky_ = a_ + 3 - 2 * v_;                                      \
                            if (ky_ < 0 || ky_ > 3) continue;                               \
                            for (int s_ = 0; s_ < 3; s_++) {                                \
                                int kx_ = b_ + 3 - 2 * s_;                                  \
                                if (kx_ < 0 || kx_ > 3) continue;                           \
                                size_t wt = ((((size_t)c_ * (cout) + o_) * 3 + (2 - u_)) * 4 + \
                                             ky_) * 4 + kx_;                                \
                                size_t wi = (((((size_t)(2 * a_ + b_) * (cout) + o_) * (cin) + \
                                               c_) * 3 + u_) * 3 + v_) * 3 + s_;           \
                                BODY;                                                       \
                            }                                                               \
                        }

static bcae_status shuffle_set_weights(nn_conv3d *c, const float *weight, const float *bias)
{
    const int cin = c->d.cin, cout = c->d.cout;
    memset(c->w_inner, 0, weight_count(&c->inner->d) * sizeof(float));
    FOR_EACH_SHUFFLE_TAP(cin, cout, c->w_inner[wi] = weight[wt]);
    for (int p = 0; p < 4; p++) memcpy(c->b_inner + p * cout, bias, (size_t)cout * sizeof(float));
    return cpu_conv3d_set_weights(c->inner, c->w_inner, c->b_inner);
}

/* Offsets of each channel inside one sample of a (c, rows, w) blocked tensor. */
static void channel_offsets(int c, size_t rows, int w, size_t *off)
{
    const int b = cpu_block(c);
    for (int i = 0; i < c; i++)
        off[i] = (size_t)(i / b) * rows * (size_t)w * (size_t)b + (size_t)(i % b);
}

/* to_big = 1: t (n, 4 cout, d, h, w) -> y (n, cout, d, 2h, 2w), the shuffle;
 * to_big = 0: the inverse (the shuffle is a permutation, so its adjoint). */
static void shuffle_move(nn_engine *e, float *t, float *y, const nn_conv3d_desc *d, int to_big)
{
    const int cout = d->cout, ct = 4 * cout, H = d->h, W = d->w, D = d->d;
    const int bt = cpu_block(ct), by = cpu_block(cout);
    size_t offt[C3_MAX_SHUFFLE_CHANNELS], offy[C3_MAX_SHUFFLE_CHANNELS / 4];
    channel_offsets(ct, (size_t)D * H, W, offt);
    channel_offsets(cout, (size_t)D * 2 * H, 2 * W, offy);
    const size_t sample_t = (size_t)ct * D * H * W, sample_y = (size_t)cout * D * 4 * H * W;
#pragma omp parallel for collapse(3) schedule(static) num_threads(cpu_threads(e))
    for (int n = 0; n < d->n; n++)
        for (int z = 0; z < D; z++)
            for (int i = 0; i < H; i++)
                for (int a = 0; a < 2; a++)
                    for (int j = 0; j < W; j++)
                        for (int b = 0; b < 2; b++) {
                            const int p = 2 * a + b;
                            float *ts = t + (size_t)n * sample_t +
                                        ((size_t)z * H + i) * (size_t)W * bt + (size_t)j * bt;
                            float *ys = y + (size_t)n * sample_y +
                                        (((size_t)z * 2 * H + 2 * i + a) * (size_t)2 * W +
                                         2 * (size_t)j + b) * by;
                            const size_t *ot = offt + (size_t)p * cout;
                            if (to_big)
                                for (int o = 0; o < cout; o++) ys[offy[o]] = ts[ot[o]];
                            else
                                for (int o = 0; o < cout; o++) ts[ot[o]] = ys[offy[o]];
                        }
}

static nn_tensor5 inner_tensor(const nn_conv3d *c)
{
    nn_tensor5 t = {c->d.n, 4 * c->d.cout, c->d.d, c->d.h, c->d.w, c->t};
    return t;
}

/* ---- the public operations ------------------------------------------------------ */

static int desc_valid(const nn_conv3d_desc *d)
{
    if (d->n < 1 || d->cin < 1 || d->cout < 1 || d->d < 1 || d->h < 1 || d->w < 1) return 0;
    int out[3];
    nn_conv3d_out_dims(d, out);
    for (int i = 0; i < 3; i++)
        if (d->k[i] < 1 || d->stride[i] < 1 || d->pad[i] < 0 || out[i] < 1) return 0;
    return d->algo != NN_CONV3D_SHUFFLE || !d->transposed || shuffle_applies(d);
}

bcae_status cpu_conv3d_create(nn_engine *e, const nn_conv3d_desc *d, int training,
                              nn_conv3d **out, bcae_error *err)
{
    *out = NULL;
    if (!d) return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "conv3d: no descriptor");
    if (!desc_valid(d))
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                         "conv3d%s %d->%d k(%d,%d,%d) s(%d,%d,%d) p(%d,%d,%d) on "
                         "%dx%dx%dx%dx%d: invalid shape (sizes positive, padding >= 0, output "
                         "at least 1; the shuffle form needs a transposed k(3,4,4) s(1,2,2) p1)",
                         d->transposed ? " (transposed)" : "", d->cin, d->cout, d->k[0],
                         d->k[1], d->k[2], d->stride[0], d->stride[1], d->stride[2], d->pad[0],
                         d->pad[1], d->pad[2], d->n, d->cin, d->d, d->h, d->w);
    nn_conv3d *c = calloc(1, sizeof *c);
    if (!c) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "conv3d: out of memory");
    const cpu_state *s = e->impl;
    c->d = *d;
    nn_conv3d_out_dims(d, c->out);
    c->training = training != 0;
    c->threads = cpu_threads(e);
    c->e = e;
    c->engine = s->engine;
    c->stream = s->stream;
    c->bwd_data_weights = -1;
    c->algo = d->algo == NN_CONV3D_DIRECT || !shuffle_applies(d) ? NN_CONV3D_DIRECT
                                                                  : NN_CONV3D_SHUFFLE;
    bcae_status rc;
    if (c->algo == NN_CONV3D_SHUFFLE) {
        rc = plan_shuffle(c, err);
    } else if (!cpu_options(e)->conv3d_onednn && c3s_applies(d)) {
        rc = c3s_create(d, c->training, c->threads, cpu_options(e)->conv3d_portable, &c->small,
                        err);
    } else {
        c3_plan plan = {0};
        int saved = omp_get_max_threads();
        omp_set_num_threads(c->threads);
        rc = plan_direct(c, &plan, err);
        omp_set_num_threads(saved);
        plan_free(&plan);
    }
    if (rc != BCAE_OK) {
        cpu_conv3d_destroy(c);
        return rc;
    }
    *out = c;
    return BCAE_OK;
}

void cpu_conv3d_destroy(nn_conv3d *c)
{
    if (!c) return;
    c3_step *steps[] = {&c->fwd[0],   &c->fwd[1], &c->bwd_data, &c->bwd_weights,
                        &c->dw_to_plain, &c->src_in, &c->src_out, &c->dst_in, &c->dst_out};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) step_free(steps[i]);
    for (int i = 0; i < c->copy_count; i++) {
        step_free(&c->copies[i].reorder);
        dnnl_memory_destroy(c->copies[i].mem);
    }
    dnnl_memory_t mems[] = {c->x,    c->y,  c->dx, c->dy,     c->w_plain, c->dw_plain,
                            c->bias, c->dw, c->db, c->x_priv, c->y_priv};
    for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++)
        if (mems[i]) dnnl_memory_destroy(mems[i]);
    free(c->scratch_buf);
    c3s_destroy(c->small);
    cpu_conv3d_destroy(c->inner);
    free(c->w_inner);
    free(c->b_inner);
    free(c->dw_inner);
    free(c->db_inner);
    free(c->t);
    free(c);
}

nn_conv3d_algo cpu_conv3d_algo(const nn_conv3d *c) { return c->algo; }

bcae_status cpu_conv3d_set_weights(nn_conv3d *c, const float *weight, const float *bias)
{
    if (c->algo == NN_CONV3D_SHUFFLE) return shuffle_set_weights(c, weight, bias);
    if (c->small) {
        c3s_set_weights(c->small, weight, bias);
        return BCAE_OK;
    }
    bcae_status rc = BCAE_OK;
    dnnl_memory_set_data_handle(c->w_plain, (void *)(uintptr_t)weight);
    for (int i = 0; i < c->copy_count; i++) {
        dnnl_exec_arg_t args[3] = {{DNNL_ARG_FROM, c->w_plain}, {DNNL_ARG_TO, c->copies[i].mem}};
        if (!run_step(c, &c->copies[i].reorder, args, 2)) {
            void *h;
            const dnnl_memory_desc_t *md;
            if (dnnl_memory_get_data_handle(c->copies[i].mem, &h) == dnnl_success && h &&
                dnnl_memory_get_memory_desc(c->copies[i].mem, &md) == dnnl_success)
                poison(h, dnnl_memory_desc_get_size(md) / sizeof(float));
            rc = run_error(c, BCAE_ERR_INTERNAL, "set_weights: oneDNN's weight reorder failed");
        }
    }
    memcpy(c->bias_data, bias, (size_t)c->d.cout * sizeof(float));
    return rc;
}

bcae_status cpu_conv3d_forward(nn_conv3d *c, const nn_tensor5 *x, nn_tensor5 *y, nn_post_op post)
{
    int v = post == NN_POST_LEAKY_RELU ? 1 : 0;
    if (!x_ok(c, x) || !y_ok(c, y)) {
        poison(y->data, count5(y));
        return run_error(c, BCAE_ERR_SHAPE, "forward: tensors of the wrong shape");
    }
    if (c->algo == NN_CONV3D_SHUFFLE) {
        /* The post-op is element-wise, so it commutes with the permutation. */
        nn_tensor5 t = inner_tensor(c);
        bcae_status rc = cpu_conv3d_forward(c->inner, x, &t, post);
        shuffle_move(c->e, c->t, y->data, &c->d, 1);
        return rc;
    }
    if (c->small) {
        c3s_forward(c->small, x->data, y->data, v);
        return BCAE_OK;
    }
    dnnl_memory_set_data_handle(c->x, x->data);
    dnnl_memory_set_data_handle(c->y, y->data);
    int ok = 1;
    if (c->reorder_src) ok = move(c, &c->src_in, c->x, c->x_priv);
    dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, c->reorder_src ? c->x_priv : c->x},
                               {DNNL_ARG_WEIGHTS, c->copies[c->fwd_weights[v]].mem},
                               {DNNL_ARG_BIAS, c->bias},
                               {DNNL_ARG_DST, c->reorder_dst ? c->y_priv : c->y}};
    ok = ok && run_step(c, &c->fwd[v], args, 4);
    if (ok && c->reorder_dst) ok = move(c, &c->dst_out, c->y_priv, c->y);
    if (!ok) {
        poison(y->data, count5(y));
        return run_error(c, BCAE_ERR_INTERNAL, "forward: oneDNN failed");
    }
    return BCAE_OK;
}

bcae_status cpu_conv3d_backward_data(nn_conv3d *c, const nn_tensor5 *dy, nn_tensor5 *dx)
{
    if (!c->training) {
        poison(dx->data, count5(dx));
        return run_error(c, BCAE_ERR_INVALID_ARGUMENT,
                         "backward_data on a conv planned for inference");
    }
    if (!y_ok(c, dy) || !x_ok(c, dx)) {
        poison(dx->data, count5(dx));
        return run_error(c, BCAE_ERR_SHAPE, "backward_data: tensors of the wrong shape");
    }
    if (c->algo == NN_CONV3D_SHUFFLE) {
        nn_tensor5 t = inner_tensor(c);
        shuffle_move(c->e, c->t, dy->data, &c->d, 0);
        return cpu_conv3d_backward_data(c->inner, &t, dx);
    }
    if (c->small) {
        c3s_backward_data(c->small, dy->data, dx->data);
        return BCAE_OK;
    }
    dnnl_memory_set_data_handle(c->dy, dy->data);
    dnnl_memory_set_data_handle(c->dx, dx->data);
    int ok = 1;
    if (c->reorder_dst) ok = move(c, &c->dst_in, c->dy, c->y_priv);
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_DIFF_DST, c->reorder_dst ? c->y_priv : c->dy},
                               {DNNL_ARG_WEIGHTS, c->copies[c->bwd_data_weights].mem},
                               {DNNL_ARG_DIFF_SRC, c->reorder_src ? c->x_priv : c->dx}};
    ok = ok && run_step(c, &c->bwd_data, args, 3);
    if (ok && c->reorder_src) ok = move(c, &c->src_out, c->x_priv, c->dx);
    if (!ok) {
        poison(dx->data, count5(dx));
        return run_error(c, BCAE_ERR_INTERNAL, "backward_data: oneDNN failed");
    }
    return BCAE_OK;
}

bcae_status cpu_conv3d_backward_weights(nn_conv3d *c, const nn_tensor5 *x, const nn_tensor5 *dy,
                                        float *dweight, float *dbias)
{
    const nn_conv3d_desc *d = &c->d;
    if (!c->training || !x_ok(c, x) || !y_ok(c, dy)) {
        poison(dweight, weight_count(d));
        poison(dbias, (size_t)d->cout);
        return c->training
                   ? run_error(c, BCAE_ERR_SHAPE, "backward_weights: tensors of the wrong shape")
                   : run_error(c, BCAE_ERR_INVALID_ARGUMENT,
                               "backward_weights on a conv planned for inference");
    }
    if (c->algo == NN_CONV3D_SHUFFLE) {
        const int cin = d->cin, cout = d->cout;
        nn_tensor5 t = inner_tensor(c);
        shuffle_move(c->e, c->t, dy->data, d, 0);
        memset(c->dw_inner, 0, weight_count(&c->inner->d) * sizeof(float));
        memset(c->db_inner, 0, (size_t)(4 * cout) * sizeof(float));
        bcae_status rc = cpu_conv3d_backward_weights(c->inner, x, &t, c->dw_inner, c->db_inner);
        FOR_EACH_SHUFFLE_TAP(cin, cout, dweight[wt] += c->dw_inner[wi]);
        for (int p = 0; p < 4; p++)
            for (int o = 0; o < cout; o++) dbias[o] += c->db_inner[p * cout + o];
        return rc;
    }
    if (c->small) {
        c3s_backward_weights(c->small, x->data, dy->data, dweight, dbias);
        return BCAE_OK;
    }
    dnnl_memory_set_data_handle(c->x, x->data);
    dnnl_memory_set_data_handle(c->dy, dy->data);
    int ok = 1;
    if (c->reorder_src) ok = move(c, &c->src_in, c->x, c->x_priv);
    if (ok && c->reorder_dst) ok = move(c, &c->dst_in, c->dy, c->y_priv);
    dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, c->reorder_src ? c->x_priv : c->x},
                               {DNNL_ARG_DIFF_DST, c->reorder_dst ? c->y_priv : c->dy},
                               {DNNL_ARG_DIFF_WEIGHTS, c->dw},
                               {DNNL_ARG_DIFF_BIAS, c->db}};
    if (!ok || !run_step(c, &c->bwd_weights, args, 4)) {
        poison(dweight, weight_count(d));
        poison(dbias, (size_t)d->cout);
        return run_error(c, BCAE_ERR_INTERNAL, "backward_weights: oneDNN failed");
    }
    dnnl_memory_set_data_handle(c->dw_plain, dweight);
    dnnl_exec_arg_t back[3] = {{DNNL_ARG_FROM, c->dw}, {DNNL_ARG_TO, c->dw_plain}};
    if (!run_step(c, &c->dw_to_plain, back, 2)) {
        poison(dweight, weight_count(d));
        return run_error(c, BCAE_ERR_INTERNAL, "backward_weights: oneDNN's reorder failed");
    }
    for (int o = 0; o < d->cout; o++) dbias[o] += c->db_data[o];
    return BCAE_OK;
}
