/*
 * Backward-data of a mixed-precision (bf16) 3x3 convolution, stride 1,
 * pad 1, for training (cpu_conv.c), by Winograd F(2x2, 3x3): dx, the
 * convolution of dy with the kernel transposed (input and output channels
 * swapped) and flipped; fp32 tensors in nChw16c (channels multiples of 16)
 * in and out, any height and width, with the element-wise tail of
 * nn_dx_tail (engine.h) applied as dx is written.
 *
 * Why our own: oneDNN 2.6 has no bf16 Winograd, and its bf16 passes read a
 * rounded copy of their input that a separate reorder writes first (the
 * whole activation, every pass: a tenth of a bf16 training step on Zen 4,
 * a sixth on Zen 5; bench/RESULTS.md). Here each thread transforms the
 * rows it needs straight from the fp32 dy into L2-resident scratch (no
 * bf16 copy is written to memory), multiplies with 2.25x fewer products
 * than a direct convolution (vdpbf16ps over pairs of channels, 16 output
 * channels in the lanes, 16 tiles' sums in registers), and applies the
 * tail as the outputs leave. Measured at 32 -> 32, batch 4, on Zen 4:
 * 0.30 ms against the direct kernel's 0.52 at 48x64, 6.6-8.9 ms against
 * 9.4-10 at 192x256.
 *
 * Numerics: the transformed dy (B^T d B: sums and differences of up to four
 * values, exact in fp32) and the transformed kernel (G g G^T, in double)
 * are each rounded once to bf16 (nearest even) and multiplied with fp32
 * sums, then transformed back in fp32. Within the bound of a direct bf16
 * convolution (tests/test_backend_ops.c: 0.14-0.25 of it, direct kernels
 * 0.08-0.10); F(4x4) would not be (5.6e-2 of the output's maximum,
 * bench/RESULTS.md).
 *
 * Not the forward: the same kernel ran the forward convolutions too, each
 * within the bound, but training then drifted from fp32 (tests/
 * test_train_bf16.c: the loss 1-8% above fp32's from step 7 to 19, against
 * 0.3% for direct bf16), and the drift went away when the transformed
 * kernel was kept to 16 bits (two bf16 parts, twice the products): the
 * rounding of G g G^T is systematic (the same for every tile and step
 * until the weights move), and through the ReZero branch (dalpha sums
 * dz * h over the whole batch) it biases training. The forward runs
 * direct (cpu_bfconv.h).
 */
#ifndef BCAE_NN_CPU_BFWINO_H
#define BCAE_NN_CPU_BFWINO_H

typedef struct cpu_bfwino cpu_bfwino;

/* 1 when this CPU runs the kernels (AVX-512 BW and BF16, not capped by
 * BCAE_MAX_ISA). */
int cpu_bfwino_available(void);

/* Plans dx (n, cout, h, w) from dy (n, cin, h, w), i.e. the backward-data
 * of a forward convolution from cout to cin channels, on `threads` OpenMP
 * threads. NULL when out of memory or not applicable (cin or cout not a
 * multiple of 16, the CPU). */
cpu_bfwino *cpu_bfwino_create(int n, int cin, int cout, int h, int w, int threads);
void cpu_bfwino_destroy(cpu_bfwino *p);

/* Transforms, rounds and packs the kernel: weight is the forward
 * convolution's, OIHW fp32 (planned cin, planned cout, 3, 3). */
void cpu_bfwino_set_weights(cpu_bfwino *p, const float *weight);

/* What cpu_bfwino_run applies to each output as it leaves, in this order
 * (NULL: not applied; nn_dx_tail's storage): tensors of dx's shape and
 * layout, not overlapping dx. */
typedef struct cpu_bfwino_tail {
    const float *leaky_of; /* times lrelu'(leaky_of), as leaky_relu_backward */
    const float *add;      /* + add */
} cpu_bfwino_tail;

/* dx = tail(conv^T(dy)), overwriting dx. dy and dx must not overlap. */
void cpu_bfwino_run(cpu_bfwino *p, const float *dy, float *dx, const cpu_bfwino_tail *tail);

#endif
