/*
 * Double-precision references of the engine's operations, for
 * tests/test_backend_ops.c. Written from the contracts of nn/engine.h and
 * SPEC sections 2-4, not from any backend: plain loops over plain NCHW /
 * NCDHW arrays, every product and sum in double. Inputs are the floats the
 * backend gets (converted exactly), outputs are double.
 */
#ifndef BCAE_TESTS_BACKEND_REF_H
#define BCAE_TESTS_BACKEND_REF_H

#include <stddef.h>

#include "nn/engine.h"

/* A convolution in up to three dimensions (2D: d = 1, k[0] = 1, stride[0]
 * = 1, pad[0] = 0), with transposed = PyTorch's ConvTranspose
 * (output_padding 0). Weights (cout, cin, k...) or, transposed, (cin, cout,
 * k...). */
typedef struct ref_conv {
    int n, cin, cout;
    int in[3], out[3]; /* (d, h, w) */
    int k[3], stride[3], pad[3];
    int transposed;
} ref_conv;

/* A 2D conv (n, cin, h, w) -> cout, square k, stride s, padding p. */
ref_conv ref_conv2d(int n, int cin, int cout, int h, int w, int k, int s, int p);
/* From an engine 3D descriptor. */
ref_conv ref_conv3d(const nn_conv3d_desc *d);

size_t ref_conv_in_count(const ref_conv *c);
size_t ref_conv_out_count(const ref_conv *c);
size_t ref_conv_weight_count(const ref_conv *c);

/* y = post(conv(x) + b) (leaky: NN_LEAKY_SLOPE). flip: the kernel mirrored
 * in every spatial axis (negative controls: a correlation / convolution
 * mix-up must fail). */
void ref_conv_forward(const ref_conv *c, const float *x, const float *wt, const float *b, int leaky,
                      int flip, double *y);
/* dx = conv^T(dy). */
void ref_conv_backward_data(const ref_conv *c, const float *dy, const float *wt, double *dx);
/* dw = dw0 + dL/dw, db = db0 + dL/db (the engine's "+=" contract). */
void ref_conv_backward_weights(const ref_conv *c, const float *x, const float *dy,
                               const float *dw0, const float *db0, double *dw, double *db);

/* The same on double inputs (the chains' composed references). */
void ref_conv_forward_d(const ref_conv *c, const double *x, const float *wt, const float *b,
                        double *y);

/* AvgPool2d(2, 2) and nearest Upsample x2 over NCHW planes (n * c planes of
 * the small side sh x sw). */
void ref_avgpool2(int planes, int sh, int sw, const double *big, double *small);
void ref_upsample2(int planes, int sh, int sw, const double *small, double *big);

static inline double ref_lrelu(double v) { return v > 0 ? v : (double)NN_LEAKY_SLOPE * v; }

/* The BCAE heads (SPEC section 2): seg, reg, recon of count voxels. */
void ref_heads(size_t count, const float *logit, const float *raw, float shift, float scale,
               float threshold, double *seg, double *reg, double *recon);

/* The loss of SPEC section 4 over NCHW (n, c, h, w), columns w < z_valid:
 * its sums, and its gradients (zero in the padding). */
void ref_loss_sums(int n, int c, int h, int w, const float *logit, const float *raw,
                   const float *target, int z_valid, float shift, float scale, float threshold,
                   float gamma, float eps, nn_loss_sums *out);
void ref_loss_backward(int n, int c, int h, int w, const float *logit, const float *raw,
                       const float *target, int z_valid, float shift, float scale,
                       float threshold, float gamma, float eps, float coef, double *dlogit,
                       double *draw);

/* InstanceNorm3d without affine parameters over planes of S voxels:
 * y, mean and rstd per plane, and dx from (x, dy). */
void ref_instance_norm(size_t planes, size_t S, const float *x, float eps, double *y,
                       double *mean, double *rstd);
void ref_instance_norm_backward(size_t planes, size_t S, const float *x, const float *dy,
                                float eps, double *dx);

/* n steps of AdamW (as torch.optim.AdamW) on double copies. */
void ref_adamw(const nn_adamw_hparams *h, size_t n, const float *w, const float *g,
               const float *m, const float *v, double *w_out, double *m_out, double *v_out);

/* The composed references of the inference chains: the 2D encoder chain
 * (nn_chain_desc), the 3D encoder (nn_chain3d_desc) and the 3D decoders
 * (nn_dechain3d_desc, head k), on NCHW / NCDHW host data. Each returns the
 * output's element count and writes *out (malloc'd; the caller frees it),
 * or returns 0 when out of memory. */
size_t ref_chain(const nn_chain_desc *d, const float *x, double **out, int out_dims[3]);
size_t ref_chain3d(const nn_chain3d_desc *d, const float *x, double **out, int out_dims[4]);
size_t ref_dechain3d(const nn_dechain3d_desc *d, int head, const float *code, double **out,
                     int out_dims[4]);

#endif
