/*
 * Forward of a mixed-precision (bf16) 3x3 convolution, stride 1, pad 1,
 * for training (cpu_conv.c): fp32 activations in nChw16c (channels
 * multiples of 16) in and out, the products of their bf16 roundings
 * (nearest even) and of the rounded weights summed in fp32, as oneDNN's
 * bf16 convolutions do (the same error bound, tests/test_backend_ops.c).
 * Direct, not Winograd like the backward passes: see cpu_bfwino.h for why.
 *
 * Why our own: oneDNN 2.6's bf16 passes read a rounded copy of their input
 * that a separate reorder writes first (the whole activation, every pass:
 * a tenth of a bf16 training step on Zen 4, a sixth on Zen 5;
 * bench/RESULTS.md). Here each thread rounds the rows it needs into its
 * own L2-resident scratch, so no bf16 copy of an activation is written to
 * memory at all, and the bias and LeakyReLU are applied as the sums leave
 * the registers. The products: vdpbf16ps over pairs of input channels (the
 * bf16 pairs of nChw16c), 16 output channels in the lanes, 16 output
 * columns' sums in registers, each weight vector loaded once per 16
 * products and each input pair broadcast from memory.
 */
#ifndef BCAE_NN_CPU_BFCONV_H
#define BCAE_NN_CPU_BFCONV_H

typedef struct cpu_bfconv cpu_bfconv;

/* 1 when this CPU runs the kernel (AVX-512 BW and BF16, not capped by
 * BCAE_MAX_ISA). */
int cpu_bfconv_available(void);

/* Plans y (n, cout, h, w) = conv3x3(x (n, cin, h, w)) on `threads` OpenMP
 * threads. NULL when out of memory or not applicable (cin or cout not a
 * multiple of 16, the CPU). */
cpu_bfconv *cpu_bfconv_create(int n, int cin, int cout, int h, int w, int threads);
void cpu_bfconv_destroy(cpu_bfconv *p);

/* Rounds and packs the kernel: OIHW fp32, (cout, cin, 3, 3). */
void cpu_bfconv_set_weights(cpu_bfconv *p, const float *weight);

/* y = conv(x) (+ bias, then LeakyReLU with NN_LEAKY_SLOPE when leaky),
 * overwriting y; bias NULL for none. x and y must not overlap. */
void cpu_bfconv_run(cpu_bfconv *p, const float *x, float *y, const float *bias, int leaky);

#endif
