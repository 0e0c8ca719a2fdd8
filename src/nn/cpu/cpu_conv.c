/*
 * 2D convolutions through oneDNN (the v2 C API of Debian's libdnnl 2.6).
 *
 * Everything is planned in cpu_conv2d_create(): the forward primitive twice
 * (plain and with the LeakyReLU fused as a post-op, since the post-op is a
 * per-call choice), for training the backward-data and backward-weights
 * primitives, the weight reorders, every memory object and every private
 * buffer. A call afterwards only points memory objects at the caller's
 * storage, executes, and waits: no allocation, no primitive creation.
 *
 * Formats
 *  - Activations are the caller's own storage in the layout of
 *    cpu_internal.h (nChw16c / nChw8c / nchw by channel count), wrapped in
 *    place: the primitives are created for exactly those formats, so there
 *    are no activation copies.
 *  - Weights arrive as plain OIHW. The primitives are created with weights
 *    format `any` and say what they prefer (blocked formats such as
 *    OIhw16i16o); conv_set_weights reorders OIHW into one private copy per
 *    distinct preferred format (the forward and backward-data primitives may
 *    differ). The bias is copied as is.
 *  - Backward-weights writes its preferred format into a private buffer; a
 *    reorder with a `sum` post-op then converts it back to OIHW and adds it
 *    to the caller's dweight in the same pass (the contract is "+=").
 *
 * Algorithm (fp32; bf16: see Mixed precision below): Winograd F(4x4, 3x3)
 * (oneDNN's jit_wino_4x3) for the 3x3 stride-1 forward and backward-data
 * passes where oneDNN has that JIT kernel for the shape, else direct;
 * backward-weights always direct (Winograd measured no faster there). Per pass, the Winograd descriptor is tried first
 * and kept only if oneDNN answers with a JIT Winograd implementation; any
 * failure falls back to direct silently. oneDNN 2.6's Winograd fuses only a
 * plain ReLU, not LeakyReLU, so a Winograd forward applies the LeakyReLU as
 * a separate in-place eltwise pass (same function; still measured 1.5x
 * faster than the direct conv with the fused post-op at 32->32, 192x256).
 * NN_CONV2D_DIRECT (desc or engine) plans direct everywhere. Winograd's
 * transforms round differently: ~1e-6 of the output's magnitude apart from
 * direct (tests/test_conv.c bounds it; docs/TRAINING.md).
 *
 * Scratchpad: user mode. Every primitive (reorders included) is created with
 * dnnl_scratchpad_mode_user; create() allocates one buffer of the largest
 * size any of them asks for, shared by all of them (a conv runs one primitive
 * at a time and waits for it). So oneDNN allocates nothing while executing.
 *
 * Threads: this oneDNN build uses OpenMP and sizes its work split (and the
 * scratchpad) from omp_get_max_threads() when a primitive is created, then
 * runs with it at execution. The count is taken from the engine once, at
 * create, set around creation and around every execution, and the calling
 * thread's previous value is restored afterwards (it is that thread's ICV;
 * we do not leave it changed behind the caller's back).
 *
 * Mixed precision (desc precision BF16, for training): the 3x3 stride-1
 * pad-1 convolutions with channels in blocks of 16 (BCAE-2D's blocks) run
 * our own kernels on AVX512-BF16, all three passes by bf16 Winograd
 * F(2x2, 3x3) (cpu_bfwino.h: forward and backward-data; cpu_wgrad.h);
 * they round their fp32 inputs as they read them, and backward-data
 * applies conv_backward_tail's tail as it writes. The
 * others, and all of them where the algorithm is DIRECT (the comparison)
 * or our kernels cannot be planned, run oneDNN's bf16 primitives (jit_bf16;
 * no Winograd): bf16 source, weights and diff_dst, fp32 destination,
 * diff_src, diff_weights and bias, fp32 accumulation. The weight reorders
 * of conv_set_weights round to bf16, once per weight update. The caller's
 * fp32 x and dy are rounded by a oneDNN reorder into the engine's shared
 * bf16 buffer (cpu_state) before each oneDNN pass that reads them
 * (cpu_conv_backward rounds dy once for both backward passes); the result
 * lands in the caller's fp32 tensor directly. Those rounding passes cost
 * 6-16% of a bf16 step (docs/PRECISION.md), which is why ours avoid them.
 *
 * Errors: after a successful create, execution can only fail on a broken
 * invariant (a tensor of the wrong shape, a backward call on a conv planned
 * for inference) or inside oneDNN. Then the call returns an error, records
 * its message in the engine (nn_engine_last_error) and fills the output with
 * NaN, so that a caller ignoring the status still sees the misuse in its
 * results instead of passing silently.
 * A conv is not safe to use from two threads at once (its memory objects are
 * re-pointed per call).
 */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <dnnl_debug.h>

#include "core/error.h"
#include "nn/cpu/cpu_internal.h"
#include "nn/cpu/cpu_bfwino.h"
#include "nn/cpu/cpu_wgrad.h"

/* Passes that may run oneDNN's (fp32) Winograd (NN_PASS_* bits): forward
 * and backward-data measured 1.6-1.7x faster than direct at 32->32 3x3,
 * backward-weights not (docs/TRAINING.md), so it stays direct. */
enum { CONV_WINOGRAD_PASSES = NN_PASS_FORWARD | NN_PASS_BACKWARD_DATA };

/* At most three primitives consume weights (two forwards, backward-data). */
enum { CONV_MAX_WEIGHT_COPIES = 3 };
/* Alignment of the scratchpad buffer: a cache line, what oneDNN uses itself. */
enum { CONV_ALIGN = 64 };

/* A primitive and its view of the shared scratchpad (NULL if it needs none). */
typedef struct conv_step {
    dnnl_primitive_t prim;
    dnnl_memory_t scratch;
} conv_step;

/* The weights in one format a primitive wants, and the reorder filling it. */
typedef struct weight_copy {
    dnnl_memory_t mem; /* owns its buffer (allocated by oneDNN at create) */
    conv_step reorder; /* caller's OIHW -> mem */
} weight_copy;

struct nn_conv {
    nn_conv2d_desc d;
    int h_out, w_out;
    int training;
    int threads; /* OpenMP threads the primitives were planned for */
    nn_conv2d_algo algo_default; /* the engine's, for a desc saying AUTO */
    nn_engine *owner;     /* for its last_error; it outlives us */
    dnnl_engine_t engine; /* borrowed from the nn_engine, which outlives us */
    dnnl_stream_t stream;

    conv_step fwd[2];       /* indexed by nn_post_op; fwd[1] unused when leaky is */
    int fwd_weights[2];     /* index into copies[] */
    conv_step leaky;        /* in-place LeakyReLU after a Winograd forward */
    int winograd;           /* NN_PASS_* bits of the passes planned as Winograd */
    int bf16;               /* mixed precision (see the top) */
    conv_step x_to_bf16;    /* bf16: caller's x -> x_bf */
    conv_step dy_to_bf16;   /* bf16, training: caller's dy -> dy_bf */
    size_t dy_bf_offset;    /* bytes from the shared buffer's start to dy_bf */
    conv_step bwd_data;     /* training only */
    int bwd_data_weights;
    conv_step bwd_weights;  /* training only */
    conv_step dw_to_plain;  /* private diff weights -> caller's OIHW, += */
    cpu_wgrad *wgrad;       /* bf16 3x3 backward-weights, our own (else NULL) */
    cpu_bfwino *wi_fwd;     /* bf16 3x3 forward, our own (else NULL) */
    cpu_bfwino *wi_bwd;     /* bf16 3x3 backward-data, our own (else NULL) */

    weight_copy copies[CONV_MAX_WEIGHT_COPIES];
    int copy_count;

    /* Wrappers around the caller's storage, re-pointed at every call. */
    dnnl_memory_t x, y, dx, dy; /* activations */
    dnnl_memory_t w_plain;      /* OIHW weights given to set_weights */
    dnnl_memory_t dw_plain;     /* OIHW dweight given to backward_weights */
    dnnl_memory_t x_bf, dy_bf;  /* bf16: views of the engine's shared buffer */

    /* Private buffers (allocated by oneDNN at create). */
    dnnl_memory_t bias, dw, db;
    float *bias_data, *db_data;

    void *scratch_buf; /* shared scratchpad, NULL when nothing needs one */
};

/* ---- helpers ------------------------------------------------------------------ */

static bcae_status conv_error(bcae_error *err, const nn_conv2d_desc *d, const char *what,
                              dnnl_status_t st)
{
    bcae_status code = st == dnnl_unimplemented    ? BCAE_ERR_UNSUPPORTED
                       : st == dnnl_out_of_memory ? BCAE_ERR_OUT_OF_MEMORY
                                                   : BCAE_ERR_INTERNAL;
    return bcae_fail(err, code, "conv2d %d->%d k%d s%d p%d on %dx%dx%dx%d: %s: oneDNN: %s",
                     d->cin, d->cout, d->k, d->stride, d->pad, d->n, d->cin, d->h, d->w, what,
                     dnnl_status2str(st));
}

static dnnl_format_tag_t activation_tag(int c)
{
    switch (cpu_block(c)) {
    case 16: return dnnl_nChw16c;
    case 8: return dnnl_nChw8c;
    default: return dnnl_nchw;
    }
}

static void poison(float *p, size_t count)
{
    for (size_t i = 0; i < count; i++) p[i] = NAN;
}

static size_t tensor_count(const nn_tensor *t)
{
    return (size_t)t->n * (size_t)t->c * (size_t)t->h * (size_t)t->w;
}

static int tensor_is(const nn_tensor *t, int n, int c, int h, int w)
{
    return t->n == n && t->c == c && t->h == h && t->w == w;
}

/* Records a failed call in the engine and returns its status. */
static bcae_status run_error(nn_conv *c, bcae_status status, const char *what)
{
    const nn_conv2d_desc *d = &c->d;
    return bcae_fail(&c->owner->last_error, status, "conv2d %d->%d k%d s%d p%d on %dx%dx%dx%d: %s",
                     d->cin, d->cout, d->k, d->stride, d->pad, d->n, d->cin, d->h, d->w, what);
}

static size_t weight_count(const nn_conv *c)
{
    return (size_t)c->d.cout * (size_t)c->d.cin * (size_t)c->d.k * (size_t)c->d.k;
}

/* Executes one planned step on the engine's stream with the thread count it
 * was planned for, and waits for it. */
static int run_step(nn_conv *c, const conv_step *s, dnnl_exec_arg_t *args, int nargs)
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

/* ---- creation ----------------------------------------------------------------- */

/* Primitive descriptors live only during create(): a primitive keeps its
 * own copy. The forward ones stay until the backward ones have used them as
 * hints. */
typedef struct conv_plan {
    dnnl_primitive_attr_t attr_plain;  /* user scratchpad */
    dnnl_primitive_attr_t attr_leaky;  /* user scratchpad + LeakyReLU post-op */
    dnnl_primitive_attr_t attr_accum;  /* user scratchpad + sum post-op (+=) */
    dnnl_primitive_desc_t fwd[2], leaky, bwd_data, bwd_weights, dw_to_plain;
    dnnl_primitive_desc_t x_to_bf16, dy_to_bf16;
    dnnl_primitive_desc_t reorder[CONV_MAX_WEIGHT_COPIES];
} conv_plan;

static void plan_free(conv_plan *p)
{
    dnnl_primitive_desc_t *pds[] = {&p->fwd[0],      &p->fwd[1],      &p->leaky, &p->bwd_data,
                                    &p->bwd_weights, &p->dw_to_plain, &p->reorder[0],
                                    &p->reorder[1],  &p->reorder[2],  &p->x_to_bf16,
                                    &p->dy_to_bf16};
    for (size_t i = 0; i < sizeof pds / sizeof pds[0]; i++)
        if (*pds[i]) dnnl_primitive_desc_destroy(*pds[i]);
    if (p->attr_plain) dnnl_primitive_attr_destroy(p->attr_plain);
    if (p->attr_leaky) dnnl_primitive_attr_destroy(p->attr_leaky);
    if (p->attr_accum) dnnl_primitive_attr_destroy(p->attr_accum);
}

/* An attribute with user scratchpad and, optionally, one post-op. */
static dnnl_status_t make_attr(dnnl_primitive_attr_t *attr, int leaky, int accumulate)
{
    dnnl_status_t st = dnnl_primitive_attr_create(attr);
    if (st != dnnl_success) return st;
    st = dnnl_primitive_attr_set_scratchpad_mode(*attr, dnnl_scratchpad_mode_user);
    if (st != dnnl_success || (!leaky && !accumulate)) return st;
    dnnl_post_ops_t ops;
    st = dnnl_post_ops_create(&ops);
    if (st != dnnl_success) return st;
    if (leaky) /* relu with a negative slope is LeakyReLU */
        st = dnnl_post_ops_append_eltwise(ops, 1.0f, dnnl_eltwise_relu, NN_LEAKY_SLOPE, 0.0f);
    else /* dst = reorder(src) + 1 * dst */
        st = dnnl_post_ops_append_sum(ops, 1.0f);
    if (st == dnnl_success) st = dnnl_primitive_attr_set_post_ops(*attr, ops);
    dnnl_post_ops_destroy(ops); /* the attribute keeps its own copy */
    return st;
}

static size_t scratch_size(const_dnnl_primitive_desc_t pd)
{
    if (!pd) return 0;
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    return md ? dnnl_memory_desc_get_size(md) : 0;
}

/* Creates the primitive of pd and its view of the shared scratchpad. */
static dnnl_status_t make_step(nn_conv *c, conv_step *s, const_dnnl_primitive_desc_t pd)
{
    dnnl_status_t st = dnnl_primitive_create(&s->prim, pd);
    if (st != dnnl_success) return st;
    if (scratch_size(pd) == 0) return dnnl_success;
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    return dnnl_memory_create(&s->scratch, md, c->engine, c->scratch_buf);
}

static void step_free(conv_step *s)
{
    if (s->scratch) dnnl_memory_destroy(s->scratch);
    if (s->prim) dnnl_primitive_destroy(s->prim);
}

/* The weights copy whose format is md, created if none has it yet; returns
 * its index or -1 on failure (status in *st). */
static int weight_copy_for(nn_conv *c, conv_plan *p, const dnnl_memory_desc_t *md,
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

/* pd for op_desc with the Winograd algorithm, kept only when oneDNN answers
 * with a JIT Winograd kernel (not a reference implementation); 1 if kept,
 * else 0 with *pd NULL, and the caller plans direct instead. */
static int winograd_pd(dnnl_primitive_desc_t *pd, dnnl_status_t desc_status, const void *op_desc,
                       const_dnnl_primitive_attr_t attr, dnnl_engine_t engine,
                       const_dnnl_primitive_desc_t hint)
{
    *pd = NULL;
    if (desc_status != dnnl_success ||
        dnnl_primitive_desc_create(pd, op_desc, attr, engine, hint) != dnnl_success) {
        *pd = NULL;
        return 0;
    }
    const char *impl = NULL;
    if (dnnl_primitive_desc_query(*pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success &&
        impl && strstr(impl, "wino") && !strstr(impl, "ref"))
        return 1;
    dnnl_primitive_desc_destroy(*pd);
    *pd = NULL;
    return 0;
}

static int desc_valid(const nn_conv2d_desc *d)
{
    return d->n >= 1 && d->cin >= 1 && d->cout >= 1 && d->h >= 1 && d->w >= 1 && d->k >= 1 &&
           d->stride >= 1 && d->pad >= 0 && d->h + 2 * d->pad >= d->k &&
           d->w + 2 * d->pad >= d->k;
}

/* Plans every primitive, buffer and memory object of c; on failure returns
 * the error naming the step, leaving what exists for cpu_conv_destroy. The
 * caller sets the conv's OpenMP thread count around it (see the top). */
static bcae_status plan_all(nn_conv *c, conv_plan *p, bcae_error *err)
{
    const nn_conv2d_desc *d = &c->d;
    dnnl_status_t st;
    const char *what;
#define TRY(call, step)                     \
    do {                                    \
        what = (step);                      \
        st = (call);                        \
        if (st != dnnl_success) goto fail;  \
    } while (0)

    dnnl_memory_desc_t src_md, dst_md, any_w_md, plain_w_md, bias_md;
    /* What the primitives read: the caller's fp32 activations, or for bf16
     * their rounded copies (and bf16 weights; diff weights stay fp32). */
    dnnl_memory_desc_t src_in_md, ddst_in_md, any_dw_md;
    const dnnl_data_type_t in_dt = c->bf16 ? dnnl_bf16 : dnnl_f32;
    const dnnl_dims_t src_dims = {d->n, d->cin, d->h, d->w};
    const dnnl_dims_t dst_dims = {d->n, d->cout, c->h_out, c->w_out};
    const dnnl_dims_t w_dims = {d->cout, d->cin, d->k, d->k};
    const dnnl_dims_t b_dims = {d->cout};
    const dnnl_dims_t strides = {d->stride, d->stride};
    /* Symmetric padding as PyTorch: oneDNN accepts it whenever the output
     * size is floor((h + 2p - k) / s) + 1, which is how we computed it. */
    const dnnl_dims_t pads = {d->pad, d->pad};

    TRY(dnnl_memory_desc_init_by_tag(&src_md, 4, src_dims, dnnl_f32, activation_tag(d->cin)),
        "source descriptor");
    TRY(dnnl_memory_desc_init_by_tag(&dst_md, 4, dst_dims, dnnl_f32, activation_tag(d->cout)),
        "destination descriptor");
    TRY(dnnl_memory_desc_init_by_tag(&any_w_md, 4, w_dims, in_dt, dnnl_format_tag_any),
        "weights descriptor");
    TRY(dnnl_memory_desc_init_by_tag(&any_dw_md, 4, w_dims, dnnl_f32, dnnl_format_tag_any),
        "diff weights descriptor");
    TRY(dnnl_memory_desc_init_by_tag(&src_in_md, 4, src_dims, in_dt, activation_tag(d->cin)),
        "source descriptor");
    TRY(dnnl_memory_desc_init_by_tag(&ddst_in_md, 4, dst_dims, in_dt, activation_tag(d->cout)),
        "diff destination descriptor");
    TRY(dnnl_memory_desc_init_by_tag(&plain_w_md, 4, w_dims, dnnl_f32, dnnl_oihw),
        "weights descriptor");
    TRY(dnnl_memory_desc_init_by_tag(&bias_md, 1, b_dims, dnnl_f32, dnnl_x), "bias descriptor");

    TRY(make_attr(&p->attr_plain, 0, 0), "attributes");
    TRY(make_attr(&p->attr_leaky, 1, 0), "attributes");

    /* Winograd where allowed and available (see the top), else direct. */
    nn_conv2d_algo algo = d->algo != NN_CONV2D_AUTO ? d->algo : c->algo_default;
    int wino_ok = algo == NN_CONV2D_AUTO && d->k == 3 && d->stride == 1 && !c->bf16;
    const dnnl_prop_kind_t prop = c->training ? dnnl_forward_training : dnnl_forward_inference;
    dnnl_convolution_desc_t fwd_desc;
    if (wino_ok && (CONV_WINOGRAD_PASSES & NN_PASS_FORWARD) &&
        winograd_pd(&p->fwd[NN_POST_NONE],
                    dnnl_convolution_forward_desc_init(&fwd_desc, prop, dnnl_convolution_winograd,
                                                       &src_in_md, &any_w_md, &bias_md, &dst_md,
                                                       strides, pads, pads),
                    &fwd_desc, p->attr_plain, c->engine, NULL)) {
        c->winograd |= NN_PASS_FORWARD;
        /* LeakyReLU fused if this oneDNN can (2.6 cannot), else a separate
         * in-place eltwise pass with the same slope. */
        if (!winograd_pd(&p->fwd[NN_POST_LEAKY_RELU], dnnl_success, &fwd_desc, p->attr_leaky,
                         c->engine, NULL)) {
            dnnl_eltwise_desc_t leaky_desc;
            TRY(dnnl_eltwise_forward_desc_init(&leaky_desc, prop, dnnl_eltwise_relu, &dst_md,
                                               NN_LEAKY_SLOPE, 0.0f),
                "LeakyReLU descriptor");
            TRY(dnnl_primitive_desc_create(&p->leaky, &leaky_desc, p->attr_plain, c->engine,
                                           NULL),
                "LeakyReLU plan");
        }
    } else {
        TRY(dnnl_convolution_forward_desc_init(&fwd_desc, prop, dnnl_convolution_direct,
                                               &src_in_md, &any_w_md, &bias_md, &dst_md, strides,
                                               pads, pads),
            "forward descriptor");
        TRY(dnnl_primitive_desc_create(&p->fwd[NN_POST_NONE], &fwd_desc, p->attr_plain,
                                       c->engine, NULL),
            "forward plan");
        TRY(dnnl_primitive_desc_create(&p->fwd[NN_POST_LEAKY_RELU], &fwd_desc, p->attr_leaky,
                                       c->engine, NULL),
            "forward plan with LeakyReLU");
    }
    if (!p->fwd[NN_POST_LEAKY_RELU]) c->fwd_weights[NN_POST_LEAKY_RELU] = -1;
    for (int v = 0; v < 2; v++) {
        if (!p->fwd[v]) continue;
        const dnnl_memory_desc_t *md =
            dnnl_primitive_desc_query_md(p->fwd[v], dnnl_query_weights_md, 0);
        c->fwd_weights[v] = weight_copy_for(c, p, md, &plain_w_md, &st);
        what = "weights reorder";
        if (c->fwd_weights[v] < 0) goto fail;
    }

    if (c->training) {
        dnnl_convolution_desc_t bd_desc, bw_desc;
        if (wino_ok && (CONV_WINOGRAD_PASSES & NN_PASS_BACKWARD_DATA) &&
            winograd_pd(&p->bwd_data,
                        dnnl_convolution_backward_data_desc_init(
                            &bd_desc, dnnl_convolution_winograd, &src_md, &any_w_md,
                            &ddst_in_md, strides, pads, pads),
                        &bd_desc, p->attr_plain, c->engine, p->fwd[NN_POST_NONE])) {
            c->winograd |= NN_PASS_BACKWARD_DATA;
        } else {
            TRY(dnnl_convolution_backward_data_desc_init(&bd_desc, dnnl_convolution_direct,
                                                         &src_md, &any_w_md, &ddst_in_md,
                                                         strides, pads, pads),
                "backward-data descriptor");
            TRY(dnnl_primitive_desc_create(&p->bwd_data, &bd_desc, p->attr_plain, c->engine,
                                           p->fwd[NN_POST_NONE]),
                "backward-data plan");
        }
        const dnnl_memory_desc_t *md =
            dnnl_primitive_desc_query_md(p->bwd_data, dnnl_query_weights_md, 0);
        c->bwd_data_weights = weight_copy_for(c, p, md, &plain_w_md, &st);
        what = "weights reorder";
        if (c->bwd_data_weights < 0) goto fail;

        if (wino_ok && (CONV_WINOGRAD_PASSES & NN_PASS_BACKWARD_WEIGHTS) &&
            winograd_pd(&p->bwd_weights,
                        dnnl_convolution_backward_weights_desc_init(
                            &bw_desc, dnnl_convolution_winograd, &src_in_md, &any_dw_md,
                            &bias_md, &ddst_in_md, strides, pads, pads),
                        &bw_desc, p->attr_plain, c->engine, p->fwd[NN_POST_NONE])) {
            c->winograd |= NN_PASS_BACKWARD_WEIGHTS;
        } else {
            TRY(dnnl_convolution_backward_weights_desc_init(&bw_desc, dnnl_convolution_direct,
                                                            &src_in_md, &any_dw_md, &bias_md,
                                                            &ddst_in_md, strides, pads, pads),
                "backward-weights descriptor");
            TRY(dnnl_primitive_desc_create(&p->bwd_weights, &bw_desc, p->attr_plain, c->engine,
                                           p->fwd[NN_POST_NONE]),
                "backward-weights plan");
        }
        const dnnl_memory_desc_t *dw_md =
            dnnl_primitive_desc_query_md(p->bwd_weights, dnnl_query_diff_weights_md, 0);
        const dnnl_memory_desc_t *db_md =
            dnnl_primitive_desc_query_md(p->bwd_weights, dnnl_query_diff_weights_md, 1);
        TRY(dnnl_memory_create(&c->dw, dw_md, c->engine, DNNL_MEMORY_ALLOCATE),
            "diff weights buffer");
        TRY(dnnl_memory_create(&c->db, db_md, c->engine, DNNL_MEMORY_ALLOCATE),
            "diff bias buffer");
        void *h;
        TRY(dnnl_memory_get_data_handle(c->db, &h), "diff bias buffer");
        c->db_data = h;
        TRY(make_attr(&p->attr_accum, 0, 1), "attributes");
        TRY(dnnl_reorder_primitive_desc_create(&p->dw_to_plain, dw_md, c->engine, &plain_w_md,
                                               c->engine, p->attr_accum),
            "diff weights reorder");
    }

    /* Private bias, and wrappers (no buffer yet) around the caller's storage. */
    void *h;
    TRY(dnnl_memory_create(&c->bias, &bias_md, c->engine, DNNL_MEMORY_ALLOCATE), "bias buffer");
    TRY(dnnl_memory_get_data_handle(c->bias, &h), "bias buffer");
    c->bias_data = h;
    TRY(dnnl_memory_create(&c->x, &src_md, c->engine, DNNL_MEMORY_NONE), "memory");
    TRY(dnnl_memory_create(&c->y, &dst_md, c->engine, DNNL_MEMORY_NONE), "memory");
    TRY(dnnl_memory_create(&c->w_plain, &plain_w_md, c->engine, DNNL_MEMORY_NONE), "memory");
    if (c->training) {
        TRY(dnnl_memory_create(&c->dx, &src_md, c->engine, DNNL_MEMORY_NONE), "memory");
        TRY(dnnl_memory_create(&c->dy, &dst_md, c->engine, DNNL_MEMORY_NONE), "memory");
        TRY(dnnl_memory_create(&c->dw_plain, &plain_w_md, c->engine, DNNL_MEMORY_NONE),
            "memory");
    }
    if (c->bf16) {
        /* Round-to-nearest-even reorders f32 -> bf16 in the same layout,
         * into the engine's shared buffer (grown here if too small). */
        TRY(dnnl_memory_create(&c->x_bf, &src_in_md, c->engine, DNNL_MEMORY_NONE), "memory");
        TRY(dnnl_reorder_primitive_desc_create(&p->x_to_bf16, &src_md, c->engine, &src_in_md,
                                               c->engine, p->attr_plain),
            "bf16 source reorder");
        size_t need = dnnl_memory_desc_get_size(&src_in_md);
        need = (need + CONV_ALIGN - 1) / CONV_ALIGN * CONV_ALIGN;
        c->dy_bf_offset = need;
        if (c->training) {
            TRY(dnnl_memory_create(&c->dy_bf, &ddst_in_md, c->engine, DNNL_MEMORY_NONE),
                "memory");
            TRY(dnnl_reorder_primitive_desc_create(&p->dy_to_bf16, &dst_md, c->engine,
                                                   &ddst_in_md, c->engine, p->attr_plain),
                "bf16 diff destination reorder");
            need += (dnnl_memory_desc_get_size(&ddst_in_md) + CONV_ALIGN - 1) / CONV_ALIGN *
                    CONV_ALIGN;
        }
        cpu_state *state = c->owner->impl;
        if (need > state->bf16_bytes) {
            void *buf = aligned_alloc(CONV_ALIGN, need);
            what = "bf16 activation buffer";
            st = dnnl_out_of_memory;
            if (!buf) goto fail;
            free(state->bf16_buf);
            state->bf16_buf = buf;
            state->bf16_bytes = need;
        }
    }

    /* One scratchpad for all: the largest any primitive asks for. */
    const_dnnl_primitive_desc_t all[] = {p->fwd[0],    p->fwd[1],     p->leaky,
                                         p->bwd_data,  p->bwd_weights, p->dw_to_plain,
                                         p->reorder[0], p->reorder[1], p->reorder[2],
                                         p->x_to_bf16, p->dy_to_bf16};
    size_t scratch = 0;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        size_t s = scratch_size(all[i]);
        if (s > scratch) scratch = s;
    }
    if (scratch > 0) {
        /* aligned_alloc wants a multiple of the alignment. */
        size_t bytes = (scratch + CONV_ALIGN - 1) / CONV_ALIGN * CONV_ALIGN;
        c->scratch_buf = aligned_alloc(CONV_ALIGN, bytes);
        if (!c->scratch_buf) {
            st = dnnl_out_of_memory;
            what = "scratchpad";
            goto fail;
        }
    }

    TRY(make_step(c, &c->fwd[0], p->fwd[0]), "forward primitive");
    if (p->fwd[1]) TRY(make_step(c, &c->fwd[1], p->fwd[1]), "forward primitive with LeakyReLU");
    if (p->leaky) TRY(make_step(c, &c->leaky, p->leaky), "LeakyReLU primitive");
    for (int i = 0; i < c->copy_count; i++)
        TRY(make_step(c, &c->copies[i].reorder, p->reorder[i]), "weights reorder primitive");
    if (p->x_to_bf16) TRY(make_step(c, &c->x_to_bf16, p->x_to_bf16), "bf16 reorder primitive");
    if (p->dy_to_bf16)
        TRY(make_step(c, &c->dy_to_bf16, p->dy_to_bf16), "bf16 reorder primitive");
    if (c->training) {
        TRY(make_step(c, &c->bwd_data, p->bwd_data), "backward-data primitive");
        TRY(make_step(c, &c->bwd_weights, p->bwd_weights), "backward-weights primitive");
        TRY(make_step(c, &c->dw_to_plain, p->dw_to_plain), "diff weights reorder primitive");
    }
    return BCAE_OK;
#undef TRY
fail:
    return conv_error(err, d, what, st);
}

bcae_status cpu_conv2d_create(nn_engine *e, const nn_conv2d_desc *d, int training,
                              nn_conv **out, bcae_error *err)
{
    *out = NULL;
    if (!d) return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "conv2d: no descriptor");
    if (!desc_valid(d))
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                         "conv2d %d->%d k%d s%d p%d on %dx%dx%dx%d: invalid shape (sizes must "
                         "be positive, padding >= 0, the output at least 1x1)",
                         d->cin, d->cout, d->k, d->stride, d->pad, d->n, d->cin, d->h, d->w);
    if (d->precision != BCAE_PRECISION_FP32 && d->precision != BCAE_PRECISION_BF16)
        return bcae_fail(err, BCAE_ERR_UNSUPPORTED,
                         "conv2d %d->%d k%d: precision %s is not planned (fp32 or bf16)", d->cin,
                         d->cout, d->k,
                         bcae_precision_name(d->precision) ? bcae_precision_name(d->precision)
                                                           : "(unknown)");
    nn_conv *c = calloc(1, sizeof *c);
    if (!c) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "conv2d: out of memory");
    const cpu_state *s = e->impl;
    c->d = *d;
    c->h_out = (d->h + 2 * d->pad - d->k) / d->stride + 1;
    c->w_out = (d->w + 2 * d->pad - d->k) / d->stride + 1;
    c->training = training != 0;
    c->threads = cpu_threads(e);
    c->engine = s->engine;
    c->stream = s->stream;
    c->bwd_data_weights = -1;
    c->algo_default = cpu_options(e)->conv2d_algo;
    c->owner = e;
    c->bf16 = d->precision == BCAE_PRECISION_BF16;

    /* bf16 3x3 stride-1 convs: our kernels unless DIRECT asks for oneDNN's
     * everywhere (the comparison; see the top). Any that cannot be planned
     * (out of memory, the CPU) leaves its pass to oneDNN. */
    nn_conv2d_algo algo = d->algo != NN_CONV2D_AUTO ? d->algo : c->algo_default;
    if (c->bf16 && algo == NN_CONV2D_AUTO && d->k == 3 && d->stride == 1 && d->pad == 1 &&
        cpu_block(d->cin) == 16 && cpu_block(d->cout) == 16) {
        c->wi_fwd = cpu_bfwino_create(d->n, d->cin, d->cout, d->h, d->w, c->threads);
        if (c->training) {
            c->wi_bwd = cpu_bfwino_create(d->n, d->cout, d->cin, d->h, d->w, c->threads);
            c->wgrad = cpu_wgrad_create(d->n, d->cin, d->cout, d->h, d->w, c->threads);
        }
    }

    conv_plan plan = {0};
    int saved = omp_get_max_threads();
    omp_set_num_threads(c->threads);
    bcae_status rc = plan_all(c, &plan, err);
    omp_set_num_threads(saved);
    plan_free(&plan);
    if (rc != BCAE_OK) {
        cpu_conv_destroy(c);
        return rc;
    }
    *out = c;
    return BCAE_OK;
}

void cpu_conv_destroy(nn_conv *c)
{
    if (!c) return;
    step_free(&c->fwd[0]);
    step_free(&c->fwd[1]);
    step_free(&c->leaky);
    step_free(&c->bwd_data);
    step_free(&c->bwd_weights);
    step_free(&c->dw_to_plain);
    step_free(&c->x_to_bf16);
    step_free(&c->dy_to_bf16);
    cpu_wgrad_destroy(c->wgrad);
    cpu_bfwino_destroy(c->wi_fwd);
    cpu_bfwino_destroy(c->wi_bwd);
    for (int i = 0; i < c->copy_count; i++) {
        step_free(&c->copies[i].reorder);
        dnnl_memory_destroy(c->copies[i].mem);
    }
    dnnl_memory_t mems[] = {c->x,    c->y,  c->dx, c->dy,   c->w_plain, c->dw_plain,
                            c->bias, c->dw, c->db, c->x_bf, c->dy_bf};
    for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++)
        if (mems[i]) dnnl_memory_destroy(mems[i]);
    free(c->scratch_buf);
    free(c);
}

/* ---- execution ---------------------------------------------------------------- */

/* What a pass reads for x (already pointed at the caller's storage): c->x
 * itself, or for bf16 its rounded copy in the engine's shared buffer. 0 if
 * the rounding failed. */
static int source_in(nn_conv *c, dnnl_memory_t *out)
{
    *out = c->x;
    if (!c->bf16) return 1;
    const cpu_state *s = c->owner->impl;
    dnnl_memory_set_data_handle(c->x_bf, s->bf16_buf);
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_FROM, c->x}, {DNNL_ARG_TO, c->x_bf}};
    *out = c->x_bf;
    return run_step(c, &c->x_to_bf16, args, 2);
}

/* The same for dy, after x's copy in the shared buffer. */
static int diff_dst_in(nn_conv *c, dnnl_memory_t *out)
{
    *out = c->dy;
    if (!c->bf16) return 1;
    const cpu_state *s = c->owner->impl;
    dnnl_memory_set_data_handle(c->dy_bf, (char *)s->bf16_buf + c->dy_bf_offset);
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_FROM, c->dy}, {DNNL_ARG_TO, c->dy_bf}};
    *out = c->dy_bf;
    return run_step(c, &c->dy_to_bf16, args, 2);
}

int cpu_conv2d_bf16(const nn_engine *e)
{
    (void)e;
    /* The ISA values are bit sets, each containing those it extends; with
     * AVX512-BF16 oneDNN's jit_bf16 kernels run the hardware's bf16
     * instructions (without, oneDNN emulates them on AVX-512). */
    const unsigned want = (unsigned)dnnl_cpu_isa_avx512_core_bf16;
    return ((unsigned)dnnl_get_effective_cpu_isa() & want) == want;
}

bcae_status cpu_conv_set_weights(nn_conv *c, const float *weight, const float *bias)
{
    bcae_status rc = BCAE_OK;
    /* The copies feed oneDNN's forward and backward-data; where our bf16
     * kernels run both, nothing reads them. */
    const int copies = c->wi_fwd && (!c->training || c->wi_bwd) ? 0 : c->copy_count;
    /* The reorders only read the source; oneDNN's handle is not const. */
    dnnl_memory_set_data_handle(c->w_plain, (void *)(uintptr_t)weight);
    for (int i = 0; i < copies; i++) {
        dnnl_exec_arg_t args[3] = {{DNNL_ARG_FROM, c->w_plain}, {DNNL_ARG_TO, c->copies[i].mem}};
        if (!run_step(c, &c->copies[i].reorder, args, 2)) {
            /* Unreachable after a good create; make the forward output NaN. */
            void *h;
            if (dnnl_memory_get_data_handle(c->copies[i].mem, &h) == dnnl_success && h) {
                const dnnl_memory_desc_t *md;
                dnnl_memory_get_memory_desc(c->copies[i].mem, &md);
                poison(h, dnnl_memory_desc_get_size(md) / sizeof(float));
            }
            rc = run_error(c, BCAE_ERR_INTERNAL, "set_weights: oneDNN's weight reorder failed");
        }
    }
    memcpy(c->bias_data, bias, (size_t)c->d.cout * sizeof(float));
    if (c->wi_fwd) cpu_bfwino_set_weights(c->wi_fwd, weight, 0);
    if (c->wi_bwd) cpu_bfwino_set_weights(c->wi_bwd, weight, 1);
    return rc;
}

bcae_status cpu_conv_forward(nn_conv *c, const nn_tensor *x, nn_tensor *y, nn_post_op post)
{
    const nn_conv2d_desc *d = &c->d;
    int v = post == NN_POST_LEAKY_RELU ? NN_POST_LEAKY_RELU : NN_POST_NONE;
    int separate = v == NN_POST_LEAKY_RELU && c->leaky.prim; /* conv, then LeakyReLU */
    if (separate) v = NN_POST_NONE;
    if (!tensor_is(x, d->n, d->cin, d->h, d->w) ||
        !tensor_is(y, d->n, d->cout, c->h_out, c->w_out)) {
        poison(y->data, tensor_count(y));
        return run_error(c, BCAE_ERR_SHAPE, "forward: tensors of the wrong shape");
    }
    if (c->wi_fwd) {
        const cpu_bfwino_tail tail = {c->bias_data, v == NN_POST_LEAKY_RELU || separate, NULL, NULL};
        cpu_bfwino_run(c->wi_fwd, x->data, y->data, &tail);
        return BCAE_OK;
    }
    dnnl_memory_set_data_handle(c->x, x->data);
    dnnl_memory_set_data_handle(c->y, y->data);
    dnnl_memory_t src;
    int ok = source_in(c, &src);
    dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, src},
                               {DNNL_ARG_WEIGHTS, c->copies[c->fwd_weights[v]].mem},
                               {DNNL_ARG_BIAS, c->bias},
                               {DNNL_ARG_DST, c->y}};
    dnnl_exec_arg_t in_place[3] = {{DNNL_ARG_SRC, c->y}, {DNNL_ARG_DST, c->y}};
    if (!ok || !run_step(c, &c->fwd[v], args, 4) ||
        (separate && !run_step(c, &c->leaky, in_place, 2))) {
        poison(y->data, tensor_count(y));
        return run_error(c, BCAE_ERR_INTERNAL, "forward: oneDNN failed");
    }
    return BCAE_OK;
}

int cpu_conv_winograd(const nn_conv *c)
{
    return c->winograd | (c->wi_fwd ? NN_PASS_FORWARD : 0) |
           (c->wi_bwd ? NN_PASS_BACKWARD_DATA : 0) | (c->wgrad ? NN_PASS_BACKWARD_WEIGHTS : 0);
}

/* Backward-data, then the tail when given (conv_backward_tail; our bf16
 * kernel applies it as dx leaves, else separate passes); rounded: dy's
 * bf16 copy is already in the shared buffer (made by the backward-weights
 * pass of the same conv_backward call). */
static bcae_status backward_data(nn_conv *c, const nn_tensor *dy, nn_tensor *dx, int rounded,
                                 const nn_dx_tail *tail)
{
    const nn_conv2d_desc *d = &c->d;
    if (!c->training) {
        poison(dx->data, tensor_count(dx));
        return run_error(c, BCAE_ERR_INVALID_ARGUMENT,
                         "backward_data on a conv planned for inference");
    }
    if (!tensor_is(dy, d->n, d->cout, c->h_out, c->w_out) ||
        !tensor_is(dx, d->n, d->cin, d->h, d->w)) {
        poison(dx->data, tensor_count(dx));
        return run_error(c, BCAE_ERR_SHAPE, "backward_data: tensors of the wrong shape");
    }
    const nn_tensor *key = tail ? tail->leaky_of : NULL, *add = tail ? tail->add : NULL;
    if ((key && !tensor_is(key, d->n, d->cin, d->h, d->w)) ||
        (add && !tensor_is(add, d->n, d->cin, d->h, d->w))) {
        poison(dx->data, tensor_count(dx));
        return run_error(c, BCAE_ERR_SHAPE, "backward_data: tail tensors of the wrong shape");
    }
    if (c->wi_bwd) {
        const cpu_bfwino_tail t = {NULL, 0, key ? key->data : NULL, add ? add->data : NULL};
        cpu_bfwino_run(c->wi_bwd, dy->data, dx->data, &t);
        return BCAE_OK;
    }
    dnnl_memory_set_data_handle(c->dy, dy->data);
    dnnl_memory_set_data_handle(c->dx, dx->data);
    dnnl_memory_t ddst = c->bf16 ? c->dy_bf : c->dy;
    int ok = rounded || diff_dst_in(c, &ddst);
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_DIFF_DST, ddst},
                               {DNNL_ARG_WEIGHTS, c->copies[c->bwd_data_weights].mem},
                               {DNNL_ARG_DIFF_SRC, c->dx}};
    if (!ok || !run_step(c, &c->bwd_data, args, 3)) {
        poison(dx->data, tensor_count(dx));
        return run_error(c, BCAE_ERR_INTERNAL, "backward_data: oneDNN failed");
    }
    bcae_status st = BCAE_OK;
    if (key) st = cpu_leaky_relu_backward(c->owner, key, dx, dx);
    if (add && st == BCAE_OK) st = cpu_add(c->owner, dx, add);
    return st;
}

bcae_status cpu_conv_backward_data(nn_conv *c, const nn_tensor *dy, nn_tensor *dx)
{
    return backward_data(c, dy, dx, 0, NULL);
}

bcae_status cpu_conv_backward_weights(nn_conv *c, const nn_tensor *x, const nn_tensor *dy,
                                      float *dweight, float *dbias)
{
    const nn_conv2d_desc *d = &c->d;
    if (!c->training || !tensor_is(x, d->n, d->cin, d->h, d->w) ||
        !tensor_is(dy, d->n, d->cout, c->h_out, c->w_out)) {
        poison(dweight, weight_count(c));
        poison(dbias, (size_t)d->cout);
        return c->training
                   ? run_error(c, BCAE_ERR_SHAPE, "backward_weights: tensors of the wrong shape")
                   : run_error(c, BCAE_ERR_INVALID_ARGUMENT,
                               "backward_weights on a conv planned for inference");
    }
    if (c->wgrad) {
        cpu_wgrad_run(c->wgrad, x->data, dy->data, dweight, dbias);
        return BCAE_OK;
    }
    dnnl_memory_set_data_handle(c->x, x->data);
    dnnl_memory_set_data_handle(c->dy, dy->data);
    dnnl_memory_t src, ddst;
    int ok = source_in(c, &src) && diff_dst_in(c, &ddst);
    dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, src},
                               {DNNL_ARG_DIFF_DST, ddst},
                               {DNNL_ARG_DIFF_WEIGHTS, c->dw},
                               {DNNL_ARG_DIFF_BIAS, c->db}};
    if (!ok || !run_step(c, &c->bwd_weights, args, 4)) {
        poison(dweight, weight_count(c));
        poison(dbias, (size_t)d->cout);
        return run_error(c, BCAE_ERR_INTERNAL, "backward_weights: oneDNN failed");
    }
    /* The reorder's sum post-op makes it dweight = OIHW(dw) + dweight. */
    dnnl_memory_set_data_handle(c->dw_plain, dweight);
    dnnl_exec_arg_t back[3] = {{DNNL_ARG_FROM, c->dw}, {DNNL_ARG_TO, c->dw_plain}};
    if (!run_step(c, &c->dw_to_plain, back, 2)) {
        poison(dweight, weight_count(c));
        return run_error(c, BCAE_ERR_INTERNAL, "backward_weights: oneDNN's reorder failed");
    }
    for (int o = 0; o < d->cout; o++) dbias[o] += c->db_data[o];
    return BCAE_OK;
}

bcae_status cpu_conv_backward(nn_conv *c, const nn_tensor *x, const nn_tensor *dy, nn_tensor *dx,
                              float *dweight, float *dbias)
{
    return cpu_conv_backward_tail(c, x, dy, dx, NULL, dweight, dbias);
}

bcae_status cpu_conv_backward_tail(nn_conv *c, const nn_tensor *x, const nn_tensor *dy,
                                   nn_tensor *dx, const nn_dx_tail *tail, float *dweight,
                                   float *dbias)
{
    bcae_status s = cpu_conv_backward_weights(c, x, dy, dweight, dbias);
    if (!dx) return s;
    /* After a successful backward-weights through oneDNN, a bf16 conv's
     * rounded dy is still in the shared buffer (nothing ran in between):
     * reuse it. */
    bcae_status s2 = backward_data(c, dy, dx, s == BCAE_OK && c->bf16 && !c->wgrad, tail);
    return s ? s : s2;
}
