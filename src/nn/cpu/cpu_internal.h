/*
 * The CPU backend: oneDNN for convolutions, plain OpenMP C for the rest.
 *
 * Activation layout: nChw<B>c, B = cpu_block(c) (16 when c is a multiple of
 * 16, else 8, else 1 = plain NCHW): element (n, c, y, x) of a tensor of shape
 * (N, C, H, W) is at
 *     (((n * C/B + c/B) * H + y) * W + x) * B + c % B.
 * For the BCAE-2D family (16 and 32 channels) this is what oneDNN's AVX-512
 * convolutions want, so no reorder happens between layers; for 16 channels
 * it is NHWC, the wedge files' own (azimuth, z, layer) order.
 */
#ifndef BCAE_NN_CPU_INTERNAL_H
#define BCAE_NN_CPU_INTERNAL_H

#include <dnnl.h>

#include "nn/cpu/cpu_engine.h"
#include "nn/engine.h"

typedef struct cpu_state {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    int threads; /* <= 0: the runtime's default */
    nn_cpu_options opt;
    /* The bf16 copies of the activations the mixed-precision convs read
     * (their input x and their output gradient dy), shared by every conv of
     * the engine: only one runs at a time. Sized at conv create (the
     * largest any conv needs), never during a pass; convs look it up at
     * every call, since a later create may move it. */
    void *bf16_buf;
    size_t bf16_bytes;
} cpu_state;

static inline const nn_cpu_options *cpu_options(const nn_engine *e)
{
    return &((const cpu_state *)e->impl)->opt;
}

/* 1 when oneDNN runs AVX-512 kernels here (its effective ISA, which
 * ONEDNN_MAX_CPU_ISA caps): then channels come in blocks of 16. Below
 * AVX-512 oneDNN's jit kernels take blocks of 8 and run the 16-blocked
 * layout on its reference code, tens of times slower. */
static inline int cpu_blocks16(void)
{
    const dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    return ((unsigned)isa & (unsigned)dnnl_cpu_isa_avx512_core) == (unsigned)dnnl_cpu_isa_avx512_core;
}

static inline int cpu_block(int c)
{
    return c % 16 == 0 && cpu_blocks16() ? 16 : c % 8 == 0 ? 8 : 1;
}

static inline size_t cpu_index(const nn_tensor *t, int n, int c, int y, int x)
{
    int b = cpu_block(t->c);
    return ((((size_t)n * (size_t)(t->c / b) + (size_t)(c / b)) * (size_t)t->h + (size_t)y) *
                (size_t)t->w + (size_t)x) * (size_t)b + (size_t)(c % b);
}

/* Number of threads an engine's kernels use. */
int cpu_threads(const nn_engine *e);

/* cpu_conv.c: convolutions through oneDNN. */
bcae_status cpu_conv2d_create(nn_engine *e, const nn_conv2d_desc *d, int training,
                              nn_conv **out, bcae_error *err);
void cpu_conv_destroy(nn_conv *c);
bcae_status cpu_conv_set_weights(nn_conv *c, const float *weight, const float *bias);
bcae_status cpu_conv_forward(nn_conv *c, const nn_tensor *x, nn_tensor *y, nn_post_op post);
bcae_status cpu_conv_backward_data(nn_conv *c, const nn_tensor *dy, nn_tensor *dx);
bcae_status cpu_conv_backward_weights(nn_conv *c, const nn_tensor *x, const nn_tensor *dy,
                                      float *dweight, float *dbias);
int cpu_conv_winograd(const nn_conv *c);
bcae_status cpu_conv_backward(nn_conv *c, const nn_tensor *x, const nn_tensor *dy, nn_tensor *dx,
                              float *dweight, float *dbias);
bcae_status cpu_conv_backward_tail(nn_conv *c, const nn_tensor *x, const nn_tensor *dy,
                                   nn_tensor *dx, const nn_dx_tail *tail, float *dweight,
                                   float *dbias);
/* 1: this CPU runs oneDNN's bf16 convolutions natively (AVX512-BF16). */
int cpu_conv2d_bf16(const nn_engine *e);

/* cpu_conv3d_small.c: direct kernels for Conv3d k3 s1 p1 with at most
 * C3S_MAX_CHANNELS channels in and out (cpu_conv3d.c runs them instead of
 * oneDNN unless nn_cpu_options.conv3d_onednn). Activations in the caller's
 * layouts; backward-weights adds into dweight / dbias. */
enum { C3S_MAX_CHANNELS = 16 };
typedef struct c3s c3s;
int c3s_applies(const nn_conv3d_desc *d);
bcae_status c3s_create(const nn_conv3d_desc *d, int training, int threads, int portable, c3s **out,
                       bcae_error *err);
void c3s_destroy(c3s *s);
void c3s_set_weights(c3s *s, const float *weight, const float *bias);
void c3s_forward(c3s *s, const float *x, float *y, int leaky);
void c3s_backward_data(c3s *s, const float *dy, float *dx);
void c3s_backward_weights(c3s *s, const float *x, const float *dy, float *dweight, float *dbias);

/* cpu_chain.c: inference chains (the fused encoder). */
bcae_status cpu_chain_create(nn_engine *e, const nn_chain_desc *d, nn_chain **out,
                             bcae_error *err);
void cpu_chain_destroy(nn_chain *c);
bcae_status cpu_chain_calibrate(nn_chain *c, const nn_tensor *x);
bcae_status cpu_chain_finish(nn_chain *c, bcae_error *err);
bcae_status cpu_chain_forward(nn_chain *c, const nn_tensor *x, nn_tensor *y);
const char *cpu_chain_describe(const nn_chain *c, char *buf, size_t size);
/* The 3x3 algorithm of chains (never AUTO): DIRECT where the Winograd kernels
 * do not run or the options ask for it. */
nn_chain_conv cpu_chain_conv_resolve(const nn_cpu_options *o, bcae_precision precision);
/* For bench/bench_chain.c: from now on every forward adds each step's
 * process CPU seconds into per_step (cap entries at least the number of
 * steps, returned; -1 if too few) and names[i] says what step i is. */
int cpu_chain_profile(nn_chain *c, double *per_step, int cap, char (*names)[32]);

/* cpu_kernels.c: layout transfers, pooling, upsampling, activations. */
bcae_status cpu_from_nchw(nn_engine *e, const float *host, nn_tensor *t);
bcae_status cpu_to_nchw(nn_engine *e, const nn_tensor *t, float *host);
bcae_status cpu_from_nhwc(nn_engine *e, const float *host, nn_tensor *t);
bcae_status cpu_to_nhwc(nn_engine *e, const nn_tensor *t, float *host);
bcae_status cpu_fill(nn_engine *e, nn_tensor *t, float value);
bcae_status cpu_avgpool2_forward(nn_engine *e, const nn_tensor *x, nn_tensor *y);
bcae_status cpu_avgpool2_backward(nn_engine *e, const nn_tensor *dy, nn_tensor *dx);
bcae_status cpu_upsample2_forward(nn_engine *e, const nn_tensor *x, nn_tensor *y);
bcae_status cpu_upsample2_backward(nn_engine *e, const nn_tensor *dy, nn_tensor *dx);
bcae_status cpu_leaky_relu_backward(nn_engine *e, const nn_tensor *y, const nn_tensor *dy,
                                    nn_tensor *dx);
bcae_status cpu_rezero_forward(nn_engine *e, float alpha, const nn_tensor *h, const nn_tensor *x,
                               nn_tensor *y);
bcae_status cpu_rezero_backward(nn_engine *e, float alpha, const nn_tensor *h,
                                const nn_tensor *y, const nn_tensor *dy, nn_tensor *dh,
                                nn_tensor *dx, double *dalpha);
bcae_status cpu_add(nn_engine *e, nn_tensor *acc, const nn_tensor *x);

/* cpu_loss.c: the BCAE heads and loss. */
bcae_status cpu_bcae_heads(nn_engine *e, const nn_tensor *seg_logit, const nn_tensor *reg_raw,
                           float shift, float scale, float threshold, nn_tensor *seg,
                           nn_tensor *reg, nn_tensor *recon);
bcae_status cpu_bcae_loss_sums(nn_engine *e, const nn_tensor *seg_logit,
                               const nn_tensor *reg_raw, const nn_tensor *target, int z_valid,
                               float shift, float scale, float threshold, float gamma, float eps,
                               nn_loss_sums *out);
bcae_status cpu_bcae_loss_backward(nn_engine *e, const nn_tensor *seg_logit,
                                   const nn_tensor *reg_raw, const nn_tensor *target, int z_valid,
                                   float shift, float scale, float threshold, float gamma,
                                   float eps, float coef, nn_tensor *dseg_logit,
                                   nn_tensor *dreg_raw);

/* cpu_conv3d.c: 3D convolutions (oneDNN, or Conv3d + pixel shuffle). */
bcae_status cpu_conv3d_create(nn_engine *e, const nn_conv3d_desc *d, int training,
                              nn_conv3d **out, bcae_error *err);
void cpu_conv3d_destroy(nn_conv3d *c);
nn_conv3d_algo cpu_conv3d_algo(const nn_conv3d *c);
bcae_status cpu_conv3d_set_weights(nn_conv3d *c, const float *weight, const float *bias);
bcae_status cpu_conv3d_forward(nn_conv3d *c, const nn_tensor5 *x, nn_tensor5 *y, nn_post_op post);
bcae_status cpu_conv3d_backward_data(nn_conv3d *c, const nn_tensor5 *dy, nn_tensor5 *dx);
bcae_status cpu_conv3d_backward_weights(nn_conv3d *c, const nn_tensor5 *x, const nn_tensor5 *dy,
                                        float *dweight, float *dbias);

/* cpu_chain3d.c: inference chains of the 3D encoders (BCAE++, BCAE-HT). */
bcae_status cpu_chain3d_create(nn_engine *e, const nn_chain3d_desc *d, nn_chain3d **out,
                               bcae_error *err);
void cpu_chain3d_destroy(nn_chain3d *c);
bcae_status cpu_chain3d_forward(nn_chain3d *c, const nn_tensor5 *x, nn_tensor5 *y);

/* cpu_dechain3d.c: inference chains of the 3D decoders (BCAE++, BCAE-HT). */
bcae_status cpu_dechain3d_create(nn_engine *e, const nn_dechain3d_desc *d, nn_dechain3d **out,
                                 bcae_error *err);
void cpu_dechain3d_destroy(nn_dechain3d *c);
bcae_status cpu_dechain3d_forward(nn_dechain3d *c, const nn_tensor5 *code,
                                  nn_tensor5 *const *out);

/* cpu_dechain.c: inference chains of the BCAE-2D decoders. */
bcae_status cpu_dechain_create(nn_engine *e, const nn_dechain_desc *d, nn_dechain **out,
                               bcae_error *err);
void cpu_dechain_destroy(nn_dechain *c);
bcae_status cpu_dechain_forward(nn_dechain *c, const nn_tensor *code, nn_tensor *const *out);
const char *cpu_dechain_describe(const nn_dechain *c, char *buf, size_t size);

/* cpu_memory.c: allocation and raw copies. */
bcae_status cpu_alloc(nn_engine *e, size_t count, float **out, bcae_error *err);
void cpu_free(nn_engine *e, float *p);
bcae_status cpu_tensor_alloc(nn_engine *e, nn_tensor *t, bcae_error *err);
void cpu_tensor_free(nn_engine *e, nn_tensor *t);
bcae_status cpu_upload(nn_engine *e, float *dst, const float *host, size_t count);
bcae_status cpu_download(nn_engine *e, float *host, const float *src, size_t count);
bcae_status cpu_zero(nn_engine *e, float *dst, size_t count);

/* cpu_optim.c: AdamW. */
bcae_status cpu_adamw_step(nn_engine *e, const nn_adamw_hparams *h, float *w, const float *g,
                           float *m, float *v, size_t n);

/* cpu_norm.c: InstanceNorm3d. */
bcae_status cpu_instance_norm_forward(nn_engine *e, const nn_tensor5 *x, nn_tensor5 *y, float eps,
                                      float *stats);
bcae_status cpu_instance_norm_backward(nn_engine *e, const nn_tensor5 *y, const float *stats,
                                       const nn_tensor5 *dy, nn_tensor5 *dx);

#endif
