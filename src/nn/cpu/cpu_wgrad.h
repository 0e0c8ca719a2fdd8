/*
 * Backward-weights of a mixed-precision (bf16) 3x3 convolution, stride 1,
 * pad 1, for training (cpu_conv.c): the weight and bias gradients of
 *     y[n][o][h][w] = b[o] + sum_{i,kh,kw} W[o][i][kh][kw] x[n][i][h+kh-1][w+kw-1]
 * from x and dy, both fp32 in nChw16c (cin, cout multiples of 16), any
 * height and width, with bf16 products summed in fp32.
 *
 * Why our own: at BCAE-2D's 32 -> 32 convolutions oneDNN 2.6's jit_bf16
 * backward-weights runs at ~40% of the bf16 dot-product peak on Zen 4 and
 * was the largest item of a bf16 training step (bench/RESULTS.md).
 *
 * How: Winograd F(2x2, 3x3) on the gradient, dW = G^T [sum over output
 * tiles of (A dy A^T) . (B^T x B)] G: 2.25x fewer products than direct.
 * For each of the 16 tile positions the sum over tiles is a product
 * reduced over tiles, which vdpbf16ps does two at a time: 16 output
 * channels in the lanes, (tile, next tile) pairs of the transformed dy
 * against broadcast pairs of the transformed x of one input channel, 16
 * input channels' sums in registers. Each thread transforms the tiles it
 * needs straight from the fp32 x and dy (rounding the transforms to bf16;
 * no bf16 copy of an activation is written), keeps private sums, and the
 * sums of the threads, in a fixed order, are transformed back in double.
 * 7.6-8.2 ms at 32 -> 32, batch 4, 192x256 on Zen 4, against 9.9-10.6 for
 * a direct kernel of ours (commit 0362092, gone) and 15-18 for oneDNN's.
 * The bias gradient sums the bf16-rounded dy, as oneDNN's bf16 pass does.
 *
 * Numerics: the transformed x and dy (sums of up to four values, computed
 * in fp32) are each rounded once to bf16; dy itself is also rounded, but
 * only for the bias gradient. Measured within the direct bf16 bound
 * (tests/test_backend_ops.c: 0.14-0.46 of it), and training follows fp32 as
 * closely as with direct bf16 (tests/test_train_bf16.c). The sums depend on
 * the thread count (each thread's private sums), as oneDNN's do.
 */
#ifndef BCAE_NN_CPU_WGRAD_H
#define BCAE_NN_CPU_WGRAD_H

typedef struct cpu_wgrad cpu_wgrad;

/* Plans the gradient of a 3x3, stride-1, pad-1 conv of n x cin x h x w to
 * cout channels on `threads` OpenMP threads. NULL when out of memory or not
 * applicable (cin or cout not a multiple of 16, the CPU). */
cpu_wgrad *cpu_wgrad_create(int n, int cin, int cout, int h, int w, int threads);
void cpu_wgrad_destroy(cpu_wgrad *p);

/* dweight (OIHW) += dL/dW and dbias (O) += dL/db, from x (n, cin, h, w)
 * and dy (n, cout, h, w), both nChw16c fp32. */
void cpu_wgrad_run(cpu_wgrad *p, const float *x, const float *dy, float *dweight, float *dbias);

#endif
