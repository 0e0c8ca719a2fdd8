/*
 * Forward and backward-data of a mixed-precision (bf16) 3x3 convolution,
 * stride 1, pad 1, for training (cpu_conv.c), by Winograd F(2x2, 3x3):
 * fp32 activations in nChw16c (channels multiples of 16) in and out, any
 * height and width, an element-wise tail applied as the outputs leave
 * (the forward's bias and LeakyReLU; backward-data's nn_dx_tail, engine.h).
 * Backward-data is the same computation: dx is the convolution of dy with
 * the kernel transposed (input and output channels swapped) and flipped,
 * packed so by cpu_bfwino_set_weights.
 *
 * Why our own: oneDNN 2.6 has no bf16 Winograd, and its bf16 passes read a
 * rounded copy of their input that a separate reorder writes first (the
 * whole activation, every pass: a tenth of a bf16 training step on Zen 4,
 * a sixth on Zen 5; bench/RESULTS.md). Here each thread transforms the
 * rows it needs straight from the fp32 input into L2-resident scratch (no
 * bf16 copy is written to memory), multiplies with 2.25x fewer products
 * than a direct convolution (vdpbf16ps over pairs of input channels, 16
 * output channels in the lanes, 16 tiles' sums in registers), and applies
 * the tail as the outputs leave. Measured at 32 -> 32, batch 4, on Zen 4:
 * 0.30 ms against a direct kernel's 0.52 at 48x64, 6.6-8.9 ms against
 * 9.4-10 at 192x256 (our direct bf16 kernel, commit 5e1f51f, gone).
 *
 * Numerics: the transformed input B^T d B (sums and differences of up to
 * four inputs, computed in fp32) is rounded to bf16 to nearest even; the
 * transformed kernel G g G^T (computed in double) is rounded to bf16
 * stochastically (up with probability the dropped fraction of an ulp,
 * bits from a hash of the value and its place, so the same weights always
 * give the same result); products summed in fp32, transformed back in
 * fp32. Measured within the bound of a direct bf16 convolution
 * (tests/test_backend_ops.c: 0.14-0.57 of it; oneDNN's direct bf16 up to 0.44);
 * F(4x4) would not be (5.6e-2 of the output's maximum, bench/RESULTS.md).
 *
 * Why stochastic: with G g G^T rounded to nearest, each pass stayed within
 * the bound, but training drifted from fp32 (tests/test_train_bf16.c: the
 * bf16 loss 0.1%, 0.4%, 1.2% ... 8.5% above fp32's from step 6 to 15,
 * 10.5% at most over 20 steps, against 0.26% for direct bf16). Keeping the
 * transformed kernel to 16 bits (two bf16 parts) removed the drift, and so
 * does stochastic rounding (0.25%): a rounding to nearest is the same for
 * every tile and every step until the weights move past a rounding
 * boundary, so its error acts as a fixed bias of the effective kernel,
 * not as noise, and through the ReZero branches (the gradient of alpha sums
 * dz * h over the whole batch) it biased training. Rounded stochastically,
 * the error changes with every weight update and averages out.
 */
#ifndef BCAE_NN_CPU_BFWINO_H
#define BCAE_NN_CPU_BFWINO_H

typedef struct cpu_bfwino cpu_bfwino;

/* Plans y (n, cout, h, w) = conv3x3(x (n, cin, h, w)) on `threads` OpenMP
 * threads (for backward-data: dy (n, cin, h, w) to dx (n, cout, h, w) of a
 * forward convolution from cout to cin channels). NULL when out of memory
 * or not applicable (cin or cout not a multiple of 16, the CPU). */
cpu_bfwino *cpu_bfwino_create(int n, int cin, int cout, int h, int w, int threads);
void cpu_bfwino_destroy(cpu_bfwino *p);

/* Transforms, rounds and packs the kernel. weight: OIHW fp32, (cout, cin,
 * 3, 3) as planned; transposed (backward-data): weight is the kernel of the
 * forward convolution, (planned cin, planned cout, 3, 3), used transposed
 * and flipped. */
void cpu_bfwino_set_weights(cpu_bfwino *p, const float *weight, int transposed);

/* What cpu_bfwino_run applies to each output as it leaves, in this order
 * (a member left zero: not applied). leaky_of and add are tensors of y's
 * shape and layout, not overlapping y. */
typedef struct cpu_bfwino_tail {
    const float *bias;     /* + bias[channel] */
    int leaky;             /* LeakyReLU (slope NN_LEAKY_SLOPE) */
    const float *leaky_of; /* times lrelu'(leaky_of), as leaky_relu_backward */
    const float *add;      /* + add */
} cpu_bfwino_tail;

/* y = tail(conv(x)), overwriting y. x and y must not overlap. */
void cpu_bfwino_run(cpu_bfwino *p, const float *x, float *y, const cpu_bfwino_tail *tail);

#endif
