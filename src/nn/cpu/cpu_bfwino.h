/*
 * Forward and backward-data of a mixed-precision (bf16) 3x3 convolution,
 * stride 1, pad 1, for training (cpu_conv.c), by Winograd F(2x2, 3x3):
 * fp32 activations in nChw16c (channels multiples of 16) in and out, any
 * height and width. Backward-data is the same computation: dx is the
 * convolution of dy with the kernel transposed (input and output channels
 * swapped) and flipped, packed so by cpu_bfwino_set_weights.
 *
 * Why our own: oneDNN 2.6 has no bf16 Winograd, and its bf16 passes read a
 * rounded copy of their input that a separate reorder writes first (the
 * whole activation, every pass: a tenth of a bf16 training step on Zen 4,
 * a sixth on Zen 5; bench/RESULTS.md). Here each thread transforms the
 * rows it needs straight from the fp32 activation into L2-resident scratch
 * (no bf16 copy of an activation is written to memory at all), multiplies
 * with 2.25x fewer products than a direct convolution (vdpbf16ps over
 * pairs of input channels, 16 output channels in the lanes, 16 tiles' sums
 * in registers), and applies the bias and LeakyReLU as the outputs leave.
 * Measured at 32 -> 32, batch 4, on Zen 4: 0.30 ms against our direct
 * kernel's 0.52 at 48x64, 6.6-8.9 ms against 9.4-10 at 192x256 (the direct
 * kernel, commit 5e1f51f, is gone; oneDNN's is the reference and the
 * fallback).
 *
 * Numerics: the transformed input B^T d B (sums and differences of up to
 * four inputs, exact in fp32) and the transformed kernel G g G^T (computed
 * in double) are each rounded once to bf16 (nearest even) and multiplied
 * with fp32 sums, then transformed back in fp32. F(2x2) stays within the
 * bound of a direct bf16 convolution (tests/test_backend_ops.c: 0.2-0.3 of
 * it, the direct kernels 0.1-0.15); F(4x4) would not (its transforms
 * amplify the rounding: 5.6e-2 of the output's maximum, bench/RESULTS.md).
 */
#ifndef BCAE_NN_CPU_BFWINO_H
#define BCAE_NN_CPU_BFWINO_H

typedef struct cpu_bfwino cpu_bfwino;

/* 1 when this CPU runs the kernels (AVX-512 BW and BF16, not capped by
 * BCAE_MAX_ISA). */
int cpu_bfwino_available(void);

/* Plans y (n, cout, h, w) = conv3x3(x (n, cin, h, w)) on `threads` OpenMP
 * threads. NULL when out of memory or not applicable (cin or cout not a
 * multiple of 16, the CPU). */
cpu_bfwino *cpu_bfwino_create(int n, int cin, int cout, int h, int w, int threads);
void cpu_bfwino_destroy(cpu_bfwino *p);

/* Transforms, rounds and packs the kernel. weight: OIHW fp32, (cout, cin,
 * 3, 3) as planned; transposed: weight is instead the kernel of the forward
 * convolution this plan is the backward-data of, (planned cin, planned
 * cout, 3, 3), used transposed and flipped. */
void cpu_bfwino_set_weights(cpu_bfwino *p, const float *weight, int transposed);

/* y = conv(x) (+ bias, then LeakyReLU with NN_LEAKY_SLOPE when leaky),
 * overwriting y; bias NULL for none. x and y must not overlap. */
void cpu_bfwino_run(cpu_bfwino *p, const float *x, float *y, const float *bias, int leaky);

#endif
