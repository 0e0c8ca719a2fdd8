/*
 * Winograd F(m x m, 3 x 3) convolutions for the encoder chain (cpu_chain.c):
 * 3x3, stride 1, pad 1, NHWC activations in fp32 or bf16, channels a
 * multiple of 16, with the chain's fused tails. AVX-512 only
 * (cpu_wino_available); the chain plans oneDNN's direct kernel otherwise.
 *
 * Why our own: oneDNN 2.6's Winograd (jit_avx512_core_fp32_wino_conv_4x3)
 * wants the blocked nChw16c layout and fuses neither LeakyReLU nor the
 * ReZero tail [linear, sum, LeakyReLU], which the chain's NHWC brgconv
 * kernels fuse; reorders and separate element-wise passes would cost what
 * the saved multiplies buy at 32 channels.
 *
 * m = 4 does 36 multiplies per 16 outputs per (input, output) channel pair
 * instead of 144 (4x fewer), m = 2 does 16 per 4 instead of 36 (2.25x); the
 * transforms cost O(channels) per tile against O(channels^2) for the
 * products. The transforms and sums are fp32 whatever the activations'
 * type (bf16 in, widened; rounded to bf16 out); the products are fp32, or
 * bf16 with `dot`. Error bound: tests/test_backend_ops.c (chain rows) and
 * docs/PRECISION.md.
 */
#ifndef BCAE_NN_CPU_WINO_H
#define BCAE_NN_CPU_WINO_H

#include <stddef.h>

typedef struct cpu_wino cpu_wino;

typedef enum cpu_wino_post {
    WINO_POST_LEAKY = 0,   /* y = lrelu(conv(x) + b) */
    WINO_POST_RESIDUAL = 1 /* y = lrelu(alpha * (conv(x) + b) + y), in place over y */
} cpu_wino_post;

/* 1 when this CPU runs the kernels (AVX-512F and FMA); the second when it
 * also has AVX512-BF16 for the bf16 products (dot below). */
int cpu_wino_available(void);
int cpu_wino_bf16_dot_available(void);

/* Plans a conv of n x cin x h x w (NHWC) to cout channels with output
 * tiles m x m (2 or 4), weights OIHW fp32 (transformed here, in double),
 * bias O. bf16: activations are bf16 (src and dst), else fp32. dot (bf16
 * only): the products in bf16, the transformed input and weights rounded
 * to bf16 and summed in fp32 (vdpbf16ps: twice the multiplies a cycle),
 * else fp32 products. NULL when out of memory or the shape or CPU does not
 * apply (cin, cout not multiples of 16, m not 2 or 4, dot without
 * AVX512-BF16). */
cpu_wino *cpu_wino_create(int m, int n, int cin, int cout, int h, int w, const float *weight,
                          const float *bias, int bf16, int dot, int threads, int shared_scratch);
/* Floats of per-thread scratch a forward needs (all threads). With
 * shared_scratch the plan holds none: a chain whose steps run one after
 * another allocates the largest once and passes it to every forward (with
 * 64 threads each plan's own would be ~9 MB). */
size_t cpu_wino_scratch_floats(const cpu_wino *p);
void cpu_wino_destroy(cpu_wino *p);

/* dst = post(conv(src)); src and dst must not overlap. scratch: at least
 * cpu_wino_scratch_floats floats, 64-byte aligned, or NULL for the plan's
 * own (not NULL with shared_scratch). */
void cpu_wino_forward(cpu_wino *p, const void *src, void *dst, cpu_wino_post post, float alpha,
                      float *scratch);

#endif
