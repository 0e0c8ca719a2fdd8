/* The CPU backend's operation table and oneDNN engine. */
#include <omp.h>
#include <stdlib.h>

#include "core/error.h"
#include "nn/cpu/cpu_engine.h"
#include "nn/cpu/cpu_internal.h"

int cpu_threads(const nn_engine *e)
{
    const cpu_state *s = e->impl;
    return s->threads > 0 ? s->threads : omp_get_max_threads();
}

static size_t cpu_tensor_floats(const nn_engine *e, int n, int c, int h, int w)
{
    (void)e;
    return (size_t)n * (size_t)c * (size_t)h * (size_t)w;
}

static void cpu_destroy(nn_engine *e)
{
    if (!e) return;
    cpu_state *s = e->impl;
    if (s) {
        if (s->stream) dnnl_stream_destroy(s->stream);
        if (s->engine) dnnl_engine_destroy(s->engine);
        free(s->bf16_buf);
        free(s);
    }
    free(e);
}

static const nn_ops CPU_OPS = {
    .name = "cpu (oneDNN)",
    .destroy = cpu_destroy,
    .tensor_floats = cpu_tensor_floats,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .tensor_alloc = cpu_tensor_alloc,
    .tensor_free = cpu_tensor_free,
    .upload = cpu_upload,
    .download = cpu_download,
    .zero = cpu_zero,
    .from_nchw = cpu_from_nchw,
    .to_nchw = cpu_to_nchw,
    .from_nhwc = cpu_from_nhwc,
    .to_nhwc = cpu_to_nhwc,
    .fill = cpu_fill,
    .conv2d_create = cpu_conv2d_create,
    .conv_destroy = cpu_conv_destroy,
    .conv_set_weights = cpu_conv_set_weights,
    .conv_forward = cpu_conv_forward,
    .conv_backward_data = cpu_conv_backward_data,
    .conv_backward_weights = cpu_conv_backward_weights,
    .avgpool2_forward = cpu_avgpool2_forward,
    .avgpool2_backward = cpu_avgpool2_backward,
    .upsample2_forward = cpu_upsample2_forward,
    .upsample2_backward = cpu_upsample2_backward,
    .leaky_relu_backward = cpu_leaky_relu_backward,
    .rezero_forward = cpu_rezero_forward,
    .rezero_backward = cpu_rezero_backward,
    .add = cpu_add,
    .bcae_heads = cpu_bcae_heads,
    .bcae_loss_sums = cpu_bcae_loss_sums,
    .bcae_loss_backward = cpu_bcae_loss_backward,
    .chain_create = cpu_chain_create,
    .chain_destroy = cpu_chain_destroy,
    .chain_calibrate = cpu_chain_calibrate,
    .chain_finish = cpu_chain_finish,
    .chain_forward = cpu_chain_forward,
    .conv3d_create = cpu_conv3d_create,
    .conv3d_destroy = cpu_conv3d_destroy,
    .conv3d_set_weights = cpu_conv3d_set_weights,
    .conv3d_forward = cpu_conv3d_forward,
    .conv3d_backward_data = cpu_conv3d_backward_data,
    .conv3d_backward_weights = cpu_conv3d_backward_weights,
    .conv3d_algo = cpu_conv3d_algo,
    .instance_norm_forward = cpu_instance_norm_forward,
    .instance_norm_backward = cpu_instance_norm_backward,
    .chain3d_create = cpu_chain3d_create,
    .chain3d_destroy = cpu_chain3d_destroy,
    .chain3d_forward = cpu_chain3d_forward,
    .conv_winograd = cpu_conv_winograd,
    .dechain3d_create = cpu_dechain3d_create,
    .dechain3d_destroy = cpu_dechain3d_destroy,
    .dechain3d_forward = cpu_dechain3d_forward,
    .dechain_create = cpu_dechain_create,
    .dechain_destroy = cpu_dechain_destroy,
    .dechain_forward = cpu_dechain_forward,
    .dechain_describe = cpu_dechain_describe,
    .adamw_step = cpu_adamw_step,
    .chain_describe = cpu_chain_describe,
    .conv2d_bf16 = cpu_conv2d_bf16,
    .conv_backward = cpu_conv_backward,
    .conv_backward_tail = cpu_conv_backward_tail,
};

bcae_status nn_cpu_engine_create_with(int threads, const nn_cpu_options *opt, nn_engine **out,
                                      bcae_error *err)
{
    *out = NULL;
    nn_engine *e = calloc(1, sizeof *e);
    cpu_state *s = calloc(1, sizeof *s);
    if (!e || !s) {
        free(e);
        free(s);
        return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "engine: out of memory");
    }
    e->ops = &CPU_OPS;
    e->impl = s;
    s->threads = threads;
    if (opt) s->opt = *opt;
    if (dnnl_engine_create(&s->engine, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&s->stream, s->engine, dnnl_stream_default_flags) != dnnl_success) {
        cpu_destroy(e);
        return bcae_fail(err, BCAE_ERR_INTERNAL, "engine: oneDNN could not create a CPU engine");
    }
    *out = e;
    return BCAE_OK;
}
