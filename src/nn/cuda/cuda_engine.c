/*
 * The CUDA backend (issue 9): the device probe and an operation table whose
 * every required slot answers BCAE_ERR_UNSUPPORTED "not implemented yet"
 * (the optional ones are NULL, so callers take their fallbacks). It is
 * compiled when the build is configured with -DBCAE_CUDA=ON and links the
 * CUDA runtime. None of the operations (device memory, cuDNN convolutions,
 * pooling/upsampling/loss kernels, AdamW) is written: they need a GPU to
 * develop and to check (tests/test_backend_ops.c checks every slot against
 * its double-precision reference, and reports these as not implemented).
 * The engine is the seam's placeholder: nn_engine_create hands it out only
 * with nn_engine_options.allow_partial, so that no caller gets an engine it
 * cannot run; without a device creation fails cleanly either way.
 * Filling a slot: replace its stub below with the real function (in a .cu
 * file when it has kernels) and keep the contracts of nn/engine.h.
 */
#include <stdlib.h>

#include <cuda_runtime_api.h>

#include "core/error.h"
#include "nn/cuda/cuda_engine.h"

typedef struct cuda_state {
    int device;
} cuda_state;

/* What every stub answers; the engine keeps the message (nn_engine_last_error). */
static bcae_status missing(nn_engine *e, const char *op)
{
    bcae_error *err = e ? &e->last_error : NULL;
    return bcae_fail(err, BCAE_ERR_UNSUPPORTED,
                     "cuda: %s is not implemented yet (issue 9, docs/CUDA.md)", op);
}

static void cuda_destroy(nn_engine *e)
{
    if (!e) return;
    free(e->impl);
    free(e);
}

static size_t cuda_tensor_floats(const nn_engine *e, int n, int c, int h, int w)
{
    (void)e;
    return (size_t)n * (size_t)c * (size_t)h * (size_t)w;
}

/* ---- memory ---- */
static bcae_status cuda_alloc(nn_engine *e, size_t count, float **out, bcae_error *err)
{
    (void)count;
    *out = NULL;
    bcae_status s = missing(e, "alloc");
    if (err) *err = e->last_error;
    return s;
}
static void cuda_free(nn_engine *e, float *p)
{
    (void)e, (void)p; /* nothing was ever allocated */
}
static bcae_status cuda_tensor_alloc(nn_engine *e, nn_tensor *t, bcae_error *err)
{
    t->data = NULL;
    bcae_status s = missing(e, "tensor_alloc");
    if (err) *err = e->last_error;
    return s;
}
static void cuda_tensor_free(nn_engine *e, nn_tensor *t)
{
    (void)e;
    t->data = NULL;
}
static bcae_status cuda_upload(nn_engine *e, float *dst, const float *host, size_t count)
{
    return missing(e, "upload");
}
static bcae_status cuda_download(nn_engine *e, float *host, const float *src, size_t count)
{
    return missing(e, "download");
}
static bcae_status cuda_zero(nn_engine *e, float *dst, size_t count) { return missing(e, "zero"); }
static bcae_status cuda_from_nchw(nn_engine *e, const float *host, nn_tensor *t)
{
    return missing(e, "from_nchw");
}
static bcae_status cuda_to_nchw(nn_engine *e, const nn_tensor *t, float *host)
{
    return missing(e, "to_nchw");
}
static bcae_status cuda_from_nhwc(nn_engine *e, const float *host, nn_tensor *t)
{
    return missing(e, "from_nhwc");
}
static bcae_status cuda_to_nhwc(nn_engine *e, const nn_tensor *t, float *host)
{
    return missing(e, "to_nhwc");
}
static bcae_status cuda_fill(nn_engine *e, nn_tensor *t, float value)
{
    return missing(e, "fill");
}

/* ---- 2D convolutions: none can be planned, so the per-conv stubs are
 * never reached with a conv; they answer all the same. ---- */
static bcae_status cuda_conv2d_create(nn_engine *e, const nn_conv2d_desc *d, int training,
                                      nn_conv **out, bcae_error *err)
{
    *out = NULL;
    bcae_status s = missing(e, "conv2d_create");
    if (err) *err = e->last_error;
    return s;
}
static void cuda_conv_destroy(nn_conv *c) { (void)c; }
static bcae_status cuda_conv_set_weights(nn_conv *c, const float *weight, const float *bias)
{
    return missing(NULL, "conv_set_weights");
}
static bcae_status cuda_conv_forward(nn_conv *c, const nn_tensor *x, nn_tensor *y,
                                     nn_post_op post)
{
    return missing(NULL, "conv_forward");
}
static bcae_status cuda_conv_backward_data(nn_conv *c, const nn_tensor *dy, nn_tensor *dx)
{
    return missing(NULL, "conv_backward_data");
}
static bcae_status cuda_conv_backward_weights(nn_conv *c, const nn_tensor *x, const nn_tensor *dy,
                                              float *dweight, float *dbias)
{
    return missing(NULL, "conv_backward_weights");
}

/* ---- element-wise, pooling, heads, loss ---- */
static bcae_status cuda_avgpool2_forward(nn_engine *e, const nn_tensor *x, nn_tensor *y)
{
    return missing(e, "avgpool2_forward");
}
static bcae_status cuda_avgpool2_backward(nn_engine *e, const nn_tensor *dy, nn_tensor *dx)
{
    return missing(e, "avgpool2_backward");
}
static bcae_status cuda_upsample2_forward(nn_engine *e, const nn_tensor *x, nn_tensor *y)
{
    return missing(e, "upsample2_forward");
}
static bcae_status cuda_upsample2_backward(nn_engine *e, const nn_tensor *dy, nn_tensor *dx)
{
    return missing(e, "upsample2_backward");
}
static bcae_status cuda_leaky_relu_backward(nn_engine *e, const nn_tensor *y, const nn_tensor *dy,
                                            nn_tensor *dx)
{
    return missing(e, "leaky_relu_backward");
}
static bcae_status cuda_rezero_forward(nn_engine *e, float alpha, const nn_tensor *h,
                                       const nn_tensor *x, nn_tensor *y)
{
    return missing(e, "rezero_forward");
}
static bcae_status cuda_rezero_backward(nn_engine *e, float alpha, const nn_tensor *h,
                                        const nn_tensor *y, const nn_tensor *dy, nn_tensor *dh,
                                        nn_tensor *dx, double *dalpha)
{
    return missing(e, "rezero_backward");
}
static bcae_status cuda_add(nn_engine *e, nn_tensor *acc, const nn_tensor *x)
{
    return missing(e, "add");
}
static bcae_status cuda_bcae_heads(nn_engine *e, const nn_tensor *seg_logit,
                                   const nn_tensor *reg_raw, float shift, float scale,
                                   float threshold, nn_tensor *seg, nn_tensor *reg,
                                   nn_tensor *recon)
{
    return missing(e, "bcae_heads");
}
static bcae_status cuda_bcae_loss_sums(nn_engine *e, const nn_tensor *seg_logit,
                                       const nn_tensor *reg_raw, const nn_tensor *target,
                                       int z_valid, float shift, float scale, float threshold,
                                       float gamma, float eps, nn_loss_sums *out)
{
    return missing(e, "bcae_loss_sums");
}
static bcae_status cuda_bcae_loss_backward(nn_engine *e, const nn_tensor *seg_logit,
                                           const nn_tensor *reg_raw, const nn_tensor *target,
                                           int z_valid, float shift, float scale,
                                           float threshold, float gamma, float eps, float coef,
                                           nn_tensor *dseg_logit, nn_tensor *dreg_raw)
{
    return missing(e, "bcae_loss_backward");
}

/* ---- 3D ---- */
static bcae_status cuda_conv3d_create(nn_engine *e, const nn_conv3d_desc *d, int training,
                                      nn_conv3d **out, bcae_error *err)
{
    *out = NULL;
    bcae_status s = missing(e, "conv3d_create");
    if (err) *err = e->last_error;
    return s;
}
static void cuda_conv3d_destroy(nn_conv3d *c) { (void)c; }
static bcae_status cuda_conv3d_set_weights(nn_conv3d *c, const float *weight, const float *bias)
{
    return missing(NULL, "conv3d_set_weights");
}
static bcae_status cuda_conv3d_forward(nn_conv3d *c, const nn_tensor5 *x, nn_tensor5 *y,
                                       nn_post_op post)
{
    return missing(NULL, "conv3d_forward");
}
static bcae_status cuda_conv3d_backward_data(nn_conv3d *c, const nn_tensor5 *dy, nn_tensor5 *dx)
{
    return missing(NULL, "conv3d_backward_data");
}
static bcae_status cuda_conv3d_backward_weights(nn_conv3d *c, const nn_tensor5 *x,
                                                const nn_tensor5 *dy, float *dweight,
                                                float *dbias)
{
    return missing(NULL, "conv3d_backward_weights");
}
static bcae_status cuda_instance_norm_forward(nn_engine *e, const nn_tensor5 *x, nn_tensor5 *y,
                                              float eps, float *stats)
{
    return missing(e, "instance_norm_forward");
}
static bcae_status cuda_instance_norm_backward(nn_engine *e, const nn_tensor5 *y,
                                               const float *stats, const nn_tensor5 *dy,
                                               nn_tensor5 *dx)
{
    return missing(e, "instance_norm_backward");
}

/* ---- training ---- */
static bcae_status cuda_adamw_step(nn_engine *e, const nn_adamw_hparams *h, float *w,
                                   const float *g, float *m, float *v, size_t n)
{
    return missing(e, "adamw_step");
}

static const nn_ops CUDA_OPS = {
    .name = "cuda (operations not implemented yet)",
    .destroy = cuda_destroy,
    .tensor_floats = cuda_tensor_floats,
    .alloc = cuda_alloc,
    .free = cuda_free,
    .tensor_alloc = cuda_tensor_alloc,
    .tensor_free = cuda_tensor_free,
    .upload = cuda_upload,
    .download = cuda_download,
    .zero = cuda_zero,
    .from_nchw = cuda_from_nchw,
    .to_nchw = cuda_to_nchw,
    .from_nhwc = cuda_from_nhwc,
    .to_nhwc = cuda_to_nhwc,
    .fill = cuda_fill,
    .conv2d_create = cuda_conv2d_create,
    .conv_destroy = cuda_conv_destroy,
    .conv_set_weights = cuda_conv_set_weights,
    .conv_forward = cuda_conv_forward,
    .conv_backward_data = cuda_conv_backward_data,
    .conv_backward_weights = cuda_conv_backward_weights,
    .avgpool2_forward = cuda_avgpool2_forward,
    .avgpool2_backward = cuda_avgpool2_backward,
    .upsample2_forward = cuda_upsample2_forward,
    .upsample2_backward = cuda_upsample2_backward,
    .leaky_relu_backward = cuda_leaky_relu_backward,
    .rezero_forward = cuda_rezero_forward,
    .rezero_backward = cuda_rezero_backward,
    .add = cuda_add,
    .bcae_heads = cuda_bcae_heads,
    .bcae_loss_sums = cuda_bcae_loss_sums,
    .bcae_loss_backward = cuda_bcae_loss_backward,
    /* optional, absent: chain_*, conv3d_algo, chain3d_*, conv_winograd, dechain3d_*, dechain_* */
    .conv3d_create = cuda_conv3d_create,
    .conv3d_destroy = cuda_conv3d_destroy,
    .conv3d_set_weights = cuda_conv3d_set_weights,
    .conv3d_forward = cuda_conv3d_forward,
    .conv3d_backward_data = cuda_conv3d_backward_data,
    .conv3d_backward_weights = cuda_conv3d_backward_weights,
    .instance_norm_forward = cuda_instance_norm_forward,
    .instance_norm_backward = cuda_instance_norm_backward,
    .adamw_step = cuda_adamw_step,
};

int nn_cuda_compiled(void)
{
    return 1;
}

bcae_status nn_cuda_engine_create(const nn_engine_options *opt, nn_engine **out,
                                  bcae_error *err)
{
    *out = NULL;
    const int device = opt->cuda.device;
    int count = 0;
    cudaError_t ce = cudaGetDeviceCount(&count);
    if (ce != cudaSuccess)
        return bcae_fail(err, BCAE_ERR_UNSUPPORTED, "no CUDA device: %s", cudaGetErrorString(ce));
    if (count <= 0)
        return bcae_fail(err, BCAE_ERR_UNSUPPORTED, "no CUDA device: the runtime reports none");
    if (device < 0 || device >= count)
        return bcae_fail(err, BCAE_ERR_UNSUPPORTED,
                         "no CUDA device: device %d requested, %d present", device, count);
    struct cudaDeviceProp prop;
    ce = cudaGetDeviceProperties(&prop, device);
    if (ce != cudaSuccess)
        return bcae_fail(err, BCAE_ERR_UNSUPPORTED, "no CUDA device: %s", cudaGetErrorString(ce));
    if (!opt->allow_partial)
        return bcae_fail(err, BCAE_ERR_UNSUPPORTED,
                         "the CUDA backend's operations are not implemented yet "
                         "(see issue 9); device %d is %s (compute capability %d.%d)",
                         device, prop.name, prop.major, prop.minor);
    nn_engine *e = calloc(1, sizeof *e);
    cuda_state *s = calloc(1, sizeof *s);
    if (!e || !s) {
        free(e);
        free(s);
        return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "engine: out of memory");
    }
    s->device = device;
    e->ops = &CUDA_OPS;
    e->impl = s;
    *out = e;
    return BCAE_OK;
}
