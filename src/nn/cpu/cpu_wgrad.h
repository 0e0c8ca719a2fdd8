/*
 * Backward-weights of a mixed-precision (bf16) 3x3 convolution, stride 1,
 * pad 1, for training (cpu_conv.c): the weight and bias gradients of
 *     y[n][o][h][w] = b[o] + sum_{i,kh,kw} W[o][i][kh][kw] x[n][i][h+kh-1][w+kw-1]
 * from x and dy, both fp32 in nChw16c (cin, cout multiples of 16), the
 * products of their bf16 roundings (nearest even) summed in fp32, as
 * oneDNN's bf16 convolutions do (and the same error bound,
 * tests/test_backend_ops.c).
 *
 * Why our own: at BCAE-2D's 32 -> 32 convolutions oneDNN 2.6's jit_bf16
 * backward-weights runs at ~40% of the bf16 dot-product peak on Zen 4 and
 * is the largest item of a bf16 training step (bench/RESULTS.md). Here the
 * reduction runs over pairs of neighbouring columns, the dimension
 * vdpbf16ps sums two of: 16 output channels in the lanes, one dy vector
 * (16 channels x 2 columns) against broadcast pairs (x[w-1], x[w]) of one
 * input channel, 27 accumulators (3 input channels x 3 x 3 taps) in
 * registers. Each thread rounds the rows it needs into its own scratch
 * (no bf16 copy of the activations is ever written to memory), keeps
 * private sums and adds them into the caller's gradients at the end.
 */
#ifndef BCAE_NN_CPU_WGRAD_H
#define BCAE_NN_CPU_WGRAD_H

typedef struct cpu_wgrad cpu_wgrad;

/* 1 when this CPU runs the kernel (AVX-512 BW and BF16, not capped by
 * BCAE_MAX_ISA). */
int cpu_wgrad_available(void);

/* Plans the gradient of a 3x3, stride-1, pad-1 conv of n x cin x h x w to
 * cout channels on `threads` OpenMP threads. NULL when out of memory or not
 * applicable (cin or cout not a multiple of 16, w odd, the CPU). */
cpu_wgrad *cpu_wgrad_create(int n, int cin, int cout, int h, int w, int threads);
void cpu_wgrad_destroy(cpu_wgrad *p);

/* dweight (OIHW) += dL/dW and dbias (O) += dL/db, from x (n, cin, h, w)
 * and dy (n, cout, h, w), both nChw16c fp32. */
void cpu_wgrad_run(cpu_wgrad *p, const float *x, const float *dy, float *dweight, float *dbias);

#endif
