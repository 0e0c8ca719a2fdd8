/*
 * The backend seam. Model, training and codec code run every layer through
 * an nn_engine's operation table (nn_ops); a backend fills the table:
 * src/nn/cpu/ (oneDNN + own kernels) and src/nn/cuda/ (so far a stub whose
 * operations all answer "not implemented yet", docs/CUDA.md). Code above the
 * seam never names a backend: it creates its engine with nn_engine_create()
 * from nn_engine_options (a device choice plus each backend's own options)
 * and never touches a tensor's storage directly: that storage may be device
 * memory, and its layout is the backend's business (the CPU backend keeps
 * activations in oneDNN's blocked nChw16c layout from layer to layer).
 *
 * Conventions
 *  - Memory. Every buffer an operation reads or writes is backend memory
 *    (device memory on a GPU): activations (tensor_alloc, or views into an
 *    alloc'd buffer at multiples of 16 floats, nn_tensor_floats() floats
 *    each), parameters, gradients, optimizer moments and InstanceNorm stats
 *    (alloc). Host data enters and leaves through from_nchw / from_nhwc /
 *    to_nchw / to_nhwc (tensors, layout-aware) and upload / download (raw
 *    buffers, as they are). Exceptions, all host memory: the weights in
 *    chain descriptors (read once, at create), rezero_backward's *dalpha and
 *    bcae_loss_sums' *out. Allocate once per shape, never inside a training
 *    step.
 *  - Parameters are in plain PyTorch layouts (conv weights OIHW, biases O,
 *    scalars). A planned convolution keeps a private copy in its preferred
 *    format, refreshed by conv_set_weights after every optimizer step.
 *  - Statuses. Every operation that can fail returns a bcae_status. Planning
 *    and allocation take a bcae_error * and fill it. The per-batch
 *    operations take none (their argument lists are the hot path's): on
 *    failure they record the message in their engine, where
 *    nn_engine_last_error() reads it and nn_engine_error() passes it on to a
 *    caller's bcae_error. A failed operation leaves its outputs unspecified
 *    (the CPU backend's convolutions and chains fill them with NaN, so that
 *    a caller ignoring a status still sees it). Operations run in order; a GPU
 *    backend may run them asynchronously, so a failure may also be reported
 *    by a later operation (download at the latest).
 *  - Optional slots say so: "optional: NULL when the backend lacks it;
 *    callers fall back to ...", and nn_has_*() below tests them. Every other
 *    slot is required: a backend lacking one fills it with a function that
 *    answers BCAE_ERR_UNSUPPORTED.
 *  - Backward operations OVERWRITE their outputs unless they say otherwise.
 *  - Nothing here prints or exits; nothing allocates outside alloc,
 *    tensor_alloc and the *_create calls. An engine and everything planned
 *    on it are used from one thread at a time.
 *
 * Adding a backend: a folder src/nn/NAME/ whose create function takes the
 * nn_engine_options (declared in the backend's own header, like
 * nn/cpu/cpu_engine.h, never here), fills an nn_ops, returns an engine whose
 * last_error is clear, and a case in nn_engine_create (engine_select.c).
 * tests/test_backend_ops.c then checks every operation of every backend it
 * can create against a double-precision reference.
 */
#ifndef BCAE_NN_ENGINE_H
#define BCAE_NN_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "bcae.h"

typedef struct nn_engine nn_engine;
typedef struct nn_conv nn_conv;

typedef struct nn_tensor {
    int n, c, h, w;
    float *data; /* backend memory, nn_tensor_floats(engine, n, c, h, w) floats */
} nn_tensor;

/* Which algorithm a 2D convolution may use. AUTO: the engine's choice
 * (on the CPU nn_cpu_options.conv2d_algo, itself AUTO by default: in fp32
 * Winograd F(4x4, 3x3) for the 3x3 stride-1 passes where oneDNN has a JIT
 * kernel and it measured faster, else direct, docs/TRAINING.md; in bf16
 * our Winograd F(2x2, 3x3) for all three passes of those convs,
 * docs/PRECISION.md). DIRECT: direct for every pass (the reference the
 * Winograd results are tested against). */
typedef enum nn_conv2d_algo {
    NN_CONV2D_AUTO = 0,
    NN_CONV2D_DIRECT = 1
} nn_conv2d_algo;

/* A 2D convolution with bias: square kernel k, stride s, zero padding p on
 * every side. Output h_out = (h + 2p - k) / s + 1 (same for w). algo left
 * zero is NN_CONV2D_AUTO.
 *
 * precision (zero: FP32): BCAE_PRECISION_BF16 plans a mixed-precision
 * convolution for training, only on backends with the optional
 * conv2d_bf16 slot (nn_has_conv2d_bf16; others refuse it with
 * BCAE_ERR_UNSUPPORTED, and every backend refuses INT8). The tensors and
 * parameters at the seam stay fp32 (the contracts below are unchanged);
 * inside, the inputs of each pass (x, the weights, dy) are rounded to bf16
 * and multiplied with fp32 accumulation, and y, dx, dweight and dbias are
 * written in fp32; tests/test_backend_ops.c holds every backend to the
 * error bound of direct products of nearest-rounded inputs. A backend may
 * instead round Winograd F(2x2, 3x3) transforms of them if it measures
 * within that bound (a measurement on random data, not a worst-case
 * guarantee: the transforms can grow the sums' magnitudes); the CPU backend
 * does for 3x3 stride-1 convs (nn/cpu/cpu_bfwino.h, whose rounding of the
 * transformed kernel is stochastic, since a fixed rounding error there
 * biased training). The weights are rounded once, by
 * conv_set_weights; algo DIRECT asks for direct products. */
typedef struct nn_conv2d_desc {
    int n, cin, cout, h, w;
    int k, stride, pad;
    nn_conv2d_algo algo;
    bcae_precision precision;
} nn_conv2d_desc;

/* What conv_backward_tail does to dx = conv^T(dy) after computing it, in
 * this order; a member left NULL is skipped. Both are tensors of dx's
 * shape that do not alias dx or dy.
 *   leaky_of: dx = dx * lrelu'(leaky_of), as leaky_relu_backward(leaky_of,
 *             dx, dx) (the backward of a LeakyReLU whose output is leaky_of);
 *   add:      dx = dx + add, as add(dx, add).
 * A residual block's backward is the use: conv2's dx through the LeakyReLU
 * of conv1, conv1's dx plus the skip path's gradient. */
typedef struct nn_dx_tail {
    const nn_tensor *leaky_of;
    const nn_tensor *add;
} nn_dx_tail;

/* Passes of a planned 2D convolution, as bits (nn_ops.conv_winograd). */
enum { NN_PASS_FORWARD = 1, NN_PASS_BACKWARD_DATA = 2, NN_PASS_BACKWARD_WEIGHTS = 4 };

/* What conv_forward fuses after the convolution and bias. */
typedef enum nn_post_op {
    NN_POST_NONE = 0,
    NN_POST_LEAKY_RELU = 1 /* slope NN_LEAKY_SLOPE */
} nn_post_op;

#define NN_LEAKY_SLOPE 0.2f

/* Per-batch results of the BCAE loss (SPEC section 4), over the cropped
 * voxels (z < z_valid). Sums, not means, so batches can be combined. */
typedef struct nn_loss_sums {
    double focal;  /* sum of the focal-loss terms (negated log2 form) */
    double l1;     /* sum of |masked reconstruction - target| */
    double sq;     /* sum of squared errors (for MSE) */
    double voxels; /* number of cropped voxels */
    double pos;    /* voxels with seg > threshold */
    double truth;  /* voxels with target > 0 */
    double true_pos;
} nn_loss_sums;

/* An inference-only chain of layers planned as one unit (the encoders):
 * the backend may fuse layers, keep activations in its own layout and in
 * reduced precision, and compute the first layer sparsely. Weights are
 * taken once, at create; a chain never sees new weights (re-create it).
 *
 * The BCAE-2D encoder form is what the CPU backend supports: layer 0 a
 * convolution (16 -> C, odd k, pad (k-1)/2, no activation), layer 1 a
 * pooling, then pooling and residual layers. */
typedef enum nn_layer_kind {
    NN_LAYER_CONV,
    NN_LAYER_POOL2,
    NN_LAYER_RESIDUAL,
    NN_LAYER_UPSAMPLE2 /* nearest x2 (decoder chains) */
} nn_layer_kind;

typedef struct nn_layer {
    nn_layer_kind kind;
    int cin, cout, k, pad; /* convolutions (stride 1); residual: both convs */
    const float *w, *b;    /* plain OIHW and O; residual: conv1 */
    const float *w2, *b2;  /* residual: conv2 */
    float alpha;           /* residual: the ReZero scalar */
} nn_layer;

typedef enum nn_first_layer {
    NN_FIRST_SPARSE = 0, /* scatter the non-zero inputs (exact; the default) */
    NN_FIRST_DENSE = 1,  /* one dense strided convolution (fp32 only; a check) */
    NN_FIRST_SPARSE_PORTABLE = 2 /* the sparse layer without CPU-specific code (a check) */
} nn_first_layer;

/* Algorithm of a chain's 3x3 stride-1 convolutions (nn_cpu_options). */
typedef enum nn_chain_conv {
    NN_CHAIN_CONV_AUTO = 0,
    NN_CHAIN_CONV_DIRECT = 1, /* oneDNN's direct kernels, tails fused as post-ops */
    NN_CHAIN_CONV_WINO2 = 2,  /* Winograd F(2x2, 3x3), the backend's own */
    NN_CHAIN_CONV_WINO4 = 3   /* Winograd F(4x4, 3x3), the backend's own */
} nn_chain_conv;

typedef struct nn_chain_desc {
    int n, c, h, w; /* input tensor */
    const nn_layer *layers;
    int nlayers;
    bcae_precision precision;
    nn_first_layer first;
} nn_chain_desc;

typedef struct nn_chain nn_chain;

/* An inference-only pair of BCAE-2D decoders reading one code (n, c, h, w):
 * per head, nearest-upsampling and residual layers (as nn_layer above), then
 * a final NN_LAYER_CONV (the output layer, 1x1) whose raw output is the
 * head's (logits for clf, the untransformed regression for reg). The heads
 * run one after the other through the same activation buffers. precision:
 * FP32, or BF16 (bf16 activations and weights, fp32 sums). Weights are read
 * once, at create. buffers: optional, three scratch buffers of buffer_bytes
 * each (backend memory, 64-byte aligned, owned by the caller and outliving
 * the chain; contents not kept between calls) that the chain uses instead
 * of allocating its own when they are large enough: a runner lends the
 * activation buffers its layer path would use. */
typedef struct nn_dechain_desc {
    int n, c, h, w;
    const nn_layer *layers[2];
    int nlayers[2];
    int nheads;
    bcae_precision precision;
    void *buffers[3];
    size_t buffer_bytes;
} nn_dechain_desc;

typedef struct nn_dechain nn_dechain;
/* ---- 3D (BCAE++, BCAE-HT, the original BCAE) --------------------------------
 * A 5D activation (n, c, d, h, w). Contract for every backend: its storage
 * is laid out exactly as that of the 4D tensor (n, c, d * h, w), so that the
 * 4D element-wise operations, the layout transfers (NCDHW host order = NCHW
 * of the flattened view) and the heads and loss apply to nn_tensor5_flat(). */
typedef struct nn_conv3d nn_conv3d;

typedef struct nn_tensor5 {
    int n, c, d, h, w;
    float *data; /* nn_tensor_floats(engine, n, c, d * h, w) floats */
} nn_tensor5;

static inline nn_tensor nn_tensor5_flat(const nn_tensor5 *t)
{
    nn_tensor f = {t->n, t->c, t->d * t->h, t->w, t->data};
    return f;
}

/* How a transposed convolution runs: the backend's choice, a direct
 * deconvolution, or (for kernel (3,4,4), stride (1,2,2), padding 1 only) a
 * Conv3d(k3, p1) with 4x the output channels and a 2x2 pixel shuffle over
 * (h, w), which is exact (SPEC section 6). Plain convolutions ignore it. */
typedef enum nn_conv3d_algo {
    NN_CONV3D_AUTO = 0,
    NN_CONV3D_DIRECT = 1,
    NN_CONV3D_SHUFFLE = 2
} nn_conv3d_algo;

/* A 3D convolution with bias, per-axis kernel, stride and symmetric zero
 * padding, in (d, h, w) order. Weights: Conv3d (cout, cin, kd, kh, kw);
 * transposed = 1 is PyTorch's ConvTranspose3d (output_padding 0), weights
 * (cin, cout, kd, kh, kw). Output sizes: nn_conv3d_out_dims. */
typedef struct nn_conv3d_desc {
    int n, cin, cout, d, h, w;
    int k[3], stride[3], pad[3];
    int transposed;
    nn_conv3d_algo algo;
} nn_conv3d_desc;

static inline void nn_conv3d_out_dims(const nn_conv3d_desc *d, int out[3])
{
    const int in[3] = {d->d, d->h, d->w};
    for (int i = 0; i < 3; i++)
        out[i] = d->transposed ? (in[i] - 1) * d->stride[i] - 2 * d->pad[i] + d->k[i]
                               : (in[i] + 2 * d->pad[i] - d->k[i]) / d->stride[i] + 1;
}

#define NN_INSTANCE_NORM_EPS 1e-5f

/* An inference-only 3D encoder (BCAE++ / BCAE-HT form, SPEC section 3)
 * planned as one unit: blocks of main = conv0 -> LeakyReLU -> conv3,
 * side = conv0' -> LeakyReLU, y = LeakyReLU(alpha * main + side), with
 * conv0 / conv0' Conv3d(k (3,4,4), s (1,2,2), p 1) and conv3 Conv3d(k3, p1),
 * then an output Conv3d(k3, p1) without activation. The input has one
 * channel. Weights are read once, at create. */
typedef struct nn_block3d {
    int cin, cout;
    const float *w0, *b0; /* main_block.0 (cout, cin, 3, 4, 4), (cout) */
    const float *ws, *bs; /* side_block.0, same shapes */
    const float *w3, *b3; /* main_block.3 (cout, cout, 3, 3, 3), (cout) */
    float alpha;          /* rezero_alpha */
} nn_block3d;

typedef struct nn_chain3d_desc {
    int n, d, h, w; /* the 1-channel input (n, 1, d, h, w) */
    const nn_block3d *blocks;
    int nblocks;
    int out_cin, out_cout;
    const float *w_out, *b_out; /* (out_cout, out_cin, 3, 3, 3), (out_cout) */
    nn_first_layer first;       /* block 0's strided convolutions: sparse or dense */
    int portable;               /* 1: no CPU-specific kernels anywhere (a check) */
} nn_chain3d_desc;

typedef struct nn_chain3d nn_chain3d;

/* An inference-only pair of 3D decoders (BCAE++ / BCAE-HT form, SPEC
 * section 3) reading one code: per head, blocks as above but with conv0 /
 * conv0' ConvTranspose3d(k (3,4,4), s (1,2,2), p 1) (weights (cin, cout, 3,
 * 4, 4), nn_block3d's w0 and ws), then an output Conv3d(k3, p1) without
 * activation (the raw logits / regression output). The heads must have the
 * same channel counts (they share activation buffers and run one after the
 * other). Weights are read once, at create. */
typedef enum nn_deconv_form {
    NN_DECONV_SHUFFLE = 0, /* Conv3d(k3) with 4x the outputs + 2x2 shuffle in the epilogue */
    NN_DECONV_ROWS = 1     /* split by output row parity: two Conv3d(k (3,2,3)), 2x outputs */
} nn_deconv_form;

typedef struct nn_dechain3d_head {
    const nn_block3d *blocks;
    int nblocks;
    int out_cin, out_cout;
    const float *w_out, *b_out;
} nn_dechain3d_head;

typedef struct nn_dechain3d_desc {
    int n, c, d, h, w; /* the code (n, c, d, h, w) */
    nn_dechain3d_head heads[2];
    int nheads;
    nn_deconv_form form;
    int portable; /* 1: no CPU-specific kernels (a check) */
} nn_dechain3d_desc;

typedef struct nn_dechain3d nn_dechain3d;

/* AdamW's hyper-parameters for one step (as torch.optim.AdamW computes it;
 * src/train/optim.h has the defaults and the schedule). */
typedef struct nn_adamw_hparams {
    float lr; /* this step's learning rate */
    float beta1, beta2, eps, weight_decay;
    long step; /* t, 1-based */
} nn_adamw_hparams;

typedef struct nn_ops {
    const char *name;
    void (*destroy)(nn_engine *e);
    /* Floats of storage for a tensor of this shape (>= n*c*h*w). */
    size_t (*tensor_floats)(const nn_engine *e, int n, int c, int h, int w);

    /* ---- memory ---- */
    /* count floats of backend memory (contents unspecified), aligned for
     * any tensor; *out NULL on failure. free(e, NULL) does nothing. */
    bcae_status (*alloc)(nn_engine *e, size_t count, float **out, bcae_error *err);
    void (*free)(nn_engine *e, float *p);
    /* t->data = backend memory for t's shape (nn_tensor_floats floats);
     * tensor_free releases it and sets t->data to NULL. */
    bcae_status (*tensor_alloc)(nn_engine *e, nn_tensor *t, bcae_error *err);
    void (*tensor_free)(nn_engine *e, nn_tensor *t);
    /* count floats between host memory and backend memory, as they are
     * (parameters, gradients, moments); zero sets count floats to 0.0f. */
    bcae_status (*upload)(nn_engine *e, float *dst, const float *host, size_t count);
    bcae_status (*download)(nn_engine *e, float *host, const float *src, size_t count);
    bcae_status (*zero)(nn_engine *e, float *dst, size_t count);
    /* Copies between a tensor and plain host memory, in NCHW order or in
     * NHWC order (the latter is the wedge files' (azimuth, z, layer)). */
    bcae_status (*from_nchw)(nn_engine *e, const float *host, nn_tensor *t);
    bcae_status (*to_nchw)(nn_engine *e, const nn_tensor *t, float *host);
    bcae_status (*from_nhwc)(nn_engine *e, const float *host, nn_tensor *t);
    bcae_status (*to_nhwc)(nn_engine *e, const nn_tensor *t, float *host);
    bcae_status (*fill)(nn_engine *e, nn_tensor *t, float value);

    /* Convolutions: plan once per shape (training = 1 also plans the two
     * backward passes), then reuse. */
    bcae_status (*conv2d_create)(nn_engine *e, const nn_conv2d_desc *d, int training,
                                 nn_conv **out, bcae_error *err);
    void (*conv_destroy)(nn_conv *c);
    bcae_status (*conv_set_weights)(nn_conv *c, const float *weight, const float *bias);
    /* y = post(conv(x) + bias). */
    bcae_status (*conv_forward)(nn_conv *c, const nn_tensor *x, nn_tensor *y, nn_post_op post);
    /* dx = conv^T(dy) (overwrites dx). */
    bcae_status (*conv_backward_data)(nn_conv *c, const nn_tensor *dy, nn_tensor *dx);
    /* dweight, dbias (plain OIHW, O) += the gradients from (x, dy). */
    bcae_status (*conv_backward_weights)(nn_conv *c, const nn_tensor *x, const nn_tensor *dy,
                                         float *dweight, float *dbias);

    /* AvgPool2d(2, 2) and nearest Upsample x2, both directions (even sizes
     * on the large side). */
    bcae_status (*avgpool2_forward)(nn_engine *e, const nn_tensor *x, nn_tensor *y);
    bcae_status (*avgpool2_backward)(nn_engine *e, const nn_tensor *dy, nn_tensor *dx);
    bcae_status (*upsample2_forward)(nn_engine *e, const nn_tensor *x, nn_tensor *y);
    bcae_status (*upsample2_backward)(nn_engine *e, const nn_tensor *dy, nn_tensor *dx);

    /* dx = dy * lrelu'(y): y is the activation's output (its sign is the
     * input's, the slope being positive). dx may alias dy. */
    bcae_status (*leaky_relu_backward)(nn_engine *e, const nn_tensor *y, const nn_tensor *dy,
                                       nn_tensor *dx);
    /* ReZero tail: y = lrelu(alpha * h + x). y may alias h. */
    bcae_status (*rezero_forward)(nn_engine *e, float alpha, const nn_tensor *h,
                                  const nn_tensor *x, nn_tensor *y);
    /* Its backward, with dz = dy * lrelu'(y): dh = alpha * dz, dx = dz,
     * *dalpha (host) = sum(dz * h). dh may alias dy; dx must not alias dh. */
    bcae_status (*rezero_backward)(nn_engine *e, float alpha, const nn_tensor *h,
                                   const nn_tensor *y, const nn_tensor *dy, nn_tensor *dh,
                                   nn_tensor *dx, double *dalpha);
    /* acc += x */
    bcae_status (*add)(nn_engine *e, nn_tensor *acc, const nn_tensor *x);

    /* The BCAE heads on the decoders' raw outputs (n, 16, h, w):
     * seg = sigmoid(seg_logit), reg = shift + scale * exp(reg_raw),
     * recon = reg * (seg > threshold). Outputs may be NULL when not wanted;
     * they may alias the inputs. */
    bcae_status (*bcae_heads)(nn_engine *e, const nn_tensor *seg_logit, const nn_tensor *reg_raw,
                              float shift, float scale, float threshold, nn_tensor *seg,
                              nn_tensor *reg, nn_tensor *recon);
    /* Loss sums of SPEC section 4 against target (the model input,
     * log2(ADC+1), zero in the padding), over w < z_valid only; *out is
     * host memory. */
    bcae_status (*bcae_loss_sums)(nn_engine *e, const nn_tensor *seg_logit,
                                  const nn_tensor *reg_raw, const nn_tensor *target, int z_valid,
                                  float shift, float scale, float threshold, float gamma,
                                  float eps, nn_loss_sums *out);
    /* Gradients of L = L_reg + coef * L_seg (both means over the cropped
     * voxels of the batch) with respect to the raw outputs; zero in the
     * padding. The mask 1[seg > threshold] passes no gradient. */
    bcae_status (*bcae_loss_backward)(nn_engine *e, const nn_tensor *seg_logit,
                                      const nn_tensor *reg_raw, const nn_tensor *target,
                                      int z_valid, float shift, float scale, float threshold,
                                      float gamma, float eps, float coef, nn_tensor *dseg_logit,
                                      nn_tensor *dreg_raw);

    /* Inference chains (see nn_chain_desc). optional: NULL when the backend
     * lacks them (create, destroy and forward together, nn_has_chain);
     * callers fall back to running the encoder layer by layer.
     * chain_forward: y = chain(x), y of the last layer's shape. */
    bcae_status (*chain_create)(nn_engine *e, const nn_chain_desc *d, nn_chain **out,
                                bcae_error *err);
    void (*chain_destroy)(nn_chain *c);
    /* An INT8 chain is created uncalibrated: feed it representative inputs
     * with chain_calibrate (it runs them in fp32 and records each
     * activation's range), then chain_finish plans the int8 form. For other
     * precisions both are no-ops. optional: NULL (both) when the backend
     * has no int8 chains (nn_has_chain_int8); its chain_create refuses
     * BCAE_PRECISION_INT8, and callers skip both calls (or fall back to an
     * fp32 chain). */
    bcae_status (*chain_calibrate)(nn_chain *c, const nn_tensor *x);
    bcae_status (*chain_finish)(nn_chain *c, bcae_error *err);
    bcae_status (*chain_forward)(nn_chain *c, const nn_tensor *x, nn_tensor *y);
    /* ---- 3D (appended) ---- */
    /* Planned once per shape like conv2d; the same post-ops and contracts
     * (backward-data overwrites, backward-weights adds). */
    bcae_status (*conv3d_create)(nn_engine *e, const nn_conv3d_desc *d, int training,
                                 nn_conv3d **out, bcae_error *err);
    void (*conv3d_destroy)(nn_conv3d *c);
    bcae_status (*conv3d_set_weights)(nn_conv3d *c, const float *weight, const float *bias);
    bcae_status (*conv3d_forward)(nn_conv3d *c, const nn_tensor5 *x, nn_tensor5 *y,
                                  nn_post_op post);
    bcae_status (*conv3d_backward_data)(nn_conv3d *c, const nn_tensor5 *dy, nn_tensor5 *dx);
    bcae_status (*conv3d_backward_weights)(nn_conv3d *c, const nn_tensor5 *x,
                                           const nn_tensor5 *dy, float *dweight, float *dbias);
    /* Which algorithm a planned conv runs (NN_CONV3D_DIRECT or _SHUFFLE).
     * optional: NULL when the backend lacks it; callers take
     * NN_CONV3D_DIRECT (nn_conv3d_algo_of). */
    nn_conv3d_algo (*conv3d_algo)(const nn_conv3d *c);
    /* InstanceNorm3d without affine parameters: per sample and channel over
     * all d*h*w voxels, y = (x - mean) / sqrt(var + eps), biased variance.
     * stats (2 * n * c floats of backend memory) receives mean and
     * 1/sqrt(var + eps) per (n, c), for the backward. y may alias x. */
    bcae_status (*instance_norm_forward)(nn_engine *e, const nn_tensor5 *x, nn_tensor5 *y,
                                         float eps, float *stats);
    /* dx from the forward's output y, its stats and dy. dx may alias dy. */
    bcae_status (*instance_norm_backward)(nn_engine *e, const nn_tensor5 *y, const float *stats,
                                          const nn_tensor5 *dy, nn_tensor5 *dx);
    /* 3D inference chains (see nn_chain3d_desc): y = chain(x), x of shape
     * (n, 1, d, h, w), y the output convolution's (n, out_cout, ...).
     * optional: NULL when the backend lacks them (all three, nn_has_chain3d);
     * callers fall back to running the encoder layer by layer. */
    bcae_status (*chain3d_create)(nn_engine *e, const nn_chain3d_desc *d, nn_chain3d **out,
                                  bcae_error *err);
    void (*chain3d_destroy)(nn_chain3d *c);
    bcae_status (*chain3d_forward)(nn_chain3d *c, const nn_tensor5 *x, nn_tensor5 *y);
    /* The passes of a planned 2D conv that run Winograd (NN_PASS_* bits);
     * 0 when all run direct. optional: NULL in backends without Winograd;
     * callers take 0 (nn_conv_winograd_passes). */
    int (*conv_winograd)(const nn_conv *c);
    /* out[k] = head k of the decoder chain (nn_dechain3d_desc) on the code.
     * optional: NULL when the backend lacks them (all three,
     * nn_has_dechain3d); callers fall back to the decoders layer by layer. */
    bcae_status (*dechain3d_create)(nn_engine *e, const nn_dechain3d_desc *d,
                                    nn_dechain3d **out, bcae_error *err);
    void (*dechain3d_destroy)(nn_dechain3d *c);
    bcae_status (*dechain3d_forward)(nn_dechain3d *c, const nn_tensor5 *code,
                                     nn_tensor5 *const *out);
    /* out[k] = head k of the BCAE-2D decoder chain (nn_dechain_desc) on the
     * code, in the engine's layout. optional: NULL when the backend lacks
     * them (nn_has_dechain); create answers BCAE_ERR_UNSUPPORTED for a form
     * or CPU it does not plan, and callers then run the layers. describe:
     * what it runs, in words, into buf; returns buf. */
    bcae_status (*dechain_create)(nn_engine *e, const nn_dechain_desc *d, nn_dechain **out,
                                  bcae_error *err);
    void (*dechain_destroy)(nn_dechain *c);
    bcae_status (*dechain_forward)(nn_dechain *c, const nn_tensor *code, nn_tensor *const *out);
    const char *(*dechain_describe)(const nn_dechain *c, char *buf, size_t size);

    /* ---- training ---- */
    /* One AdamW step over n parameters w (backend memory, like their
     * gradient g and moments m, v, which are zero before step 1). The CPU
     * backend's is bit-identical to src/train/optim.c's adamw_step. */
    bcae_status (*adamw_step)(nn_engine *e, const nn_adamw_hparams *h, float *w, const float *g,
                              float *m, float *v, size_t n);
    /* What a planned chain runs, in words (first layer, 3x3 algorithm, ISA),
     * into buf (size bytes); returns buf. optional: NULL when the backend
     * says nothing (nn_chain_describe answers ""). */
    const char *(*chain_describe)(const nn_chain *c, char *buf, size_t size);
    /* Mixed-precision 2D convolutions (nn_conv2d_desc.precision = BF16) are
     * planned by conv2d_create. optional: NULL when the backend has none
     * (nn_has_conv2d_bf16); callers train in fp32 or refuse. Returns 1 when
     * they run on the hardware's bf16 instructions (AVX512-BF16 on the
     * CPU), 0 when emulated (correct, but slower than fp32). */
    int (*conv2d_bf16)(const nn_engine *e);
    /* Both backward passes of a planned 2D conv from one dy: what
     * conv_backward_weights (dweight, dbias +=) and then conv_backward_data
     * (dx overwritten; dx NULL: not wanted) compute, in one call, so that a
     * backend reads (for bf16: rounds) dy once. dx must not alias x or dy.
     * optional: NULL when the backend lacks it; callers make the two calls
     * (nn_conv_backward does). */
    bcae_status (*conv_backward)(nn_conv *c, const nn_tensor *x, const nn_tensor *dy,
                                 nn_tensor *dx, float *dweight, float *dbias);
    /* conv_backward with dx (not NULL) finished by the element-wise tail
     * (see nn_dx_tail), so that a backend may apply it as dx is written
     * instead of in passes of its own over memory. tail NULL: none.
     * optional: NULL when the backend lacks it; callers run conv_backward,
     * then leaky_relu_backward and add (nn_conv_backward_tail does). */
    bcae_status (*conv_backward_tail)(nn_conv *c, const nn_tensor *x, const nn_tensor *dy,
                                      nn_tensor *dx, const nn_dx_tail *tail, float *dweight,
                                      float *dbias);
} nn_ops;

struct nn_engine {
    const nn_ops *ops;
    /* The last failed operation's status and message (see Statuses at the
     * top): written by the backend on failure only, with
     * bcae_fail(&e->last_error, ...); read it through nn_engine_last_error. */
    bcae_error last_error;
    void *impl; /* the backend's own state, its options included */
};

/* ---- creating an engine --------------------------------------------------------
 * One selector creates every engine. Each backend's knobs live in its own
 * options struct; zero-initialised options are every backend's defaults. */

/* The CPU backend's knobs. Fixed at creation; every conv planned on the
 * engine follows them. */
typedef struct nn_cpu_options {
    /* Algorithm for 2D convs whose desc says NN_CONV2D_AUTO: AUTO, or
     * NN_CONV2D_DIRECT for direct everywhere (`bcae bench --conv-algo
     * direct`, bench_conv --direct). */
    nn_conv2d_algo conv2d_algo;
    /* 1: every 3D convolution through oneDNN, also the small k3 s1 p1 ones
     * otherwise run by the backend's own direct kernels (tests, `bcae bench
     * --conv3d onednn`). */
    int conv3d_onednn;
    /* 1: those own kernels take their portable C path even where AVX-512
     * is there (tests: the path machines without AVX-512 run). */
    int conv3d_portable;
    /* The encoder chain's 3x3 stride-1 convolutions: NN_CHAIN_CONV_AUTO
     * (BCAE_CHAIN_CONV=direct|wino2|wino4 in the environment if set, else
     * Winograd F(4x4, 3x3) where the CPU has AVX-512, else direct; direct
     * also when conv2d_algo is NN_CONV2D_DIRECT), or one forced (tests,
     * `bcae bench --chain-conv`). int8 chains always run direct. */
    nn_chain_conv chain_conv;
} nn_cpu_options;

typedef struct nn_cuda_options {
    int device; /* the CUDA device index */
} nn_cuda_options;

typedef struct nn_engine_options {
    bcae_device device; /* AUTO (zero): CUDA when it works, else the CPU */
    /* Host threads (the CPU backend's OpenMP count); <= 0: the runtime's
     * default. */
    int threads;
    nn_cpu_options cpu;
    nn_cuda_options cuda;
    /* 1: also hand out an engine of a backend that is still partial (some
     * required slots answer BCAE_ERR_UNSUPPORTED: the CUDA stub), for the
     * conformance test and backend work. 0: such a backend fails to create,
     * saying why, so that no caller gets an engine it cannot run; AUTO never
     * picks one. */
    int allow_partial;
} nn_engine_options;

/* The engine for opt (NULL: all defaults): CPU -> the CPU backend; CUDA ->
 * the CUDA backend or its error (BCAE_ERR_UNSUPPORTED "built without CUDA
 * (-DBCAE_CUDA=ON)", "no CUDA device: ...", or that its operations are not
 * implemented yet); AUTO -> CUDA when it can be created, else the CPU backend
 * with *fell_back = 1 (fell_back may be NULL). */
bcae_status nn_engine_create(const nn_engine_options *opt, nn_engine **out, int *fell_back,
                             bcae_error *err);

/* 1 when this build has a backend for device d (AUTO and CPU: always),
 * whether or not it can run here. */
int nn_engine_compiled(bcae_device d);

static inline void nn_engine_destroy(nn_engine *e)
{
    if (e) e->ops->destroy(e);
}

/* ---- errors -------------------------------------------------------------------- */

/* The last failed operation's status and message; status BCAE_OK when none
 * failed yet. */
static inline const bcae_error *nn_engine_last_error(const nn_engine *e)
{
    return &e->last_error;
}

/* Passes a failed operation's status on: fills err (may be NULL) with
 * status and the engine's message, or a generic one if the backend left
 * none for this status; returns status. For example
 *     s = e->ops->conv_forward(c, &x, &y, NN_POST_NONE);
 *     if (s) return nn_engine_error(e, s, err); */
bcae_status nn_engine_error(const nn_engine *e, bcae_status status, bcae_error *err);

/* ---- small helpers ------------------------------------------------------------- */

static inline size_t nn_tensor_floats(const nn_engine *e, int n, int c, int h, int w)
{
    return e->ops->tensor_floats(e, n, c, h, w);
}

/* *t = a tensor of shape (n, c, h, w) in backend memory; release it with
 * nn_tensor_free. */
static inline bcae_status nn_tensor_alloc(nn_engine *e, nn_tensor *t, int n, int c, int h, int w,
                                          bcae_error *err)
{
    *t = (nn_tensor){n, c, h, w, NULL};
    return e->ops->tensor_alloc(e, t, err);
}

static inline void nn_tensor_free(nn_engine *e, nn_tensor *t)
{
    if (t->data) e->ops->tensor_free(e, t);
}

/* The same for a 5D tensor (storage of its flat 4D view, see nn_tensor5). */
static inline bcae_status nn_tensor5_alloc(nn_engine *e, nn_tensor5 *t, int n, int c, int d, int h,
                                           int w, bcae_error *err)
{
    nn_tensor f = {n, c, d * h, w, NULL};
    bcae_status s = e->ops->tensor_alloc(e, &f, err);
    *t = (nn_tensor5){n, c, d, h, w, f.data};
    return s;
}

static inline void nn_tensor5_free(nn_engine *e, nn_tensor5 *t)
{
    nn_tensor f = nn_tensor5_flat(t);
    nn_tensor_free(e, &f);
    t->data = NULL;
}

/* count floats of backend memory (parameters, gradients, moments). */
static inline bcae_status nn_alloc(nn_engine *e, size_t count, float **out, bcae_error *err)
{
    return e->ops->alloc(e, count, out, err);
}

static inline void nn_free(nn_engine *e, float *p)
{
    if (p) e->ops->free(e, p);
}

static inline bcae_status nn_upload(nn_engine *e, float *dst, const float *host, size_t count)
{
    return e->ops->upload(e, dst, host, count);
}

static inline bcae_status nn_download(nn_engine *e, float *host, const float *src, size_t count)
{
    return e->ops->download(e, host, src, count);
}

/* The optional slots. */
static inline int nn_has_chain(const nn_engine *e) { return e->ops->chain_create != NULL; }
static inline int nn_has_chain_int8(const nn_engine *e) { return e->ops->chain_calibrate != NULL; }
static inline const char *nn_chain_describe(const nn_engine *e, const nn_chain *c, char *buf,
                                            size_t size)
{
    if (e->ops->chain_describe) return e->ops->chain_describe(c, buf, size);
    if (size) buf[0] = 0;
    return buf;
}
static inline int nn_has_chain3d(const nn_engine *e) { return e->ops->chain3d_create != NULL; }
static inline int nn_has_dechain3d(const nn_engine *e) { return e->ops->dechain3d_create != NULL; }
static inline int nn_has_dechain(const nn_engine *e) { return e->ops->dechain_create != NULL; }
static inline int nn_has_conv_winograd(const nn_engine *e) { return e->ops->conv_winograd != NULL; }
static inline int nn_has_conv3d_algo(const nn_engine *e) { return e->ops->conv3d_algo != NULL; }
static inline int nn_has_conv2d_bf16(const nn_engine *e) { return e->ops->conv2d_bf16 != NULL; }

static inline int nn_has_conv_backward(const nn_engine *e) { return e->ops->conv_backward != NULL; }

/* conv_backward, or where the backend lacks it the two passes it stands
 * for (backward-weights, then backward-data unless dx is NULL). */
static inline bcae_status nn_conv_backward(nn_engine *e, nn_conv *c, const nn_tensor *x,
                                           const nn_tensor *dy, nn_tensor *dx, float *dweight,
                                           float *dbias)
{
    if (e->ops->conv_backward) return e->ops->conv_backward(c, x, dy, dx, dweight, dbias);
    bcae_status s = e->ops->conv_backward_weights(c, x, dy, dweight, dbias);
    bcae_status s2 = dx ? e->ops->conv_backward_data(c, dy, dx) : BCAE_OK;
    return s ? s : s2;
}

/* conv_backward_tail, or where the backend lacks it conv_backward and the
 * tail's passes (dx must not be NULL). */
static inline bcae_status nn_conv_backward_tail(nn_engine *e, nn_conv *c, const nn_tensor *x,
                                                const nn_tensor *dy, nn_tensor *dx,
                                                const nn_dx_tail *tail, float *dweight,
                                                float *dbias)
{
    if (e->ops->conv_backward_tail)
        return e->ops->conv_backward_tail(c, x, dy, dx, tail, dweight, dbias);
    bcae_status s = nn_conv_backward(e, c, x, dy, dx, dweight, dbias);
    if (s == BCAE_OK && dx && tail && tail->leaky_of)
        s = e->ops->leaky_relu_backward(e, tail->leaky_of, dx, dx);
    if (s == BCAE_OK && dx && tail && tail->add) s = e->ops->add(e, dx, tail->add);
    return s;
}

/* conv_winograd, 0 where the backend lacks it. */
static inline int nn_conv_winograd_passes(const nn_engine *e, const nn_conv *c)
{
    return e->ops->conv_winograd ? e->ops->conv_winograd(c) : 0;
}

/* conv3d_algo, NN_CONV3D_DIRECT where the backend lacks it. */
static inline nn_conv3d_algo nn_conv3d_algo_of(const nn_engine *e, const nn_conv3d *c)
{
    return e->ops->conv3d_algo ? e->ops->conv3d_algo(c) : NN_CONV3D_DIRECT;
}

#endif
