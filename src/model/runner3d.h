/*
 * Running a 3D model (BCAE++, BCAE-HT, BCAE) on an engine for a fixed batch
 * size: planned convolutions, every activation in one arena sized at create,
 * forward, the loss and the backward pass. Nothing is allocated afterwards.
 *
 * Tensors are 5D (nn_tensor5). The model input and the heads' raw outputs
 * have one channel, so their storage is plain NCDHW: for BCAE++/HT that is
 * the 2D model's (N, 16, 192, 256) host layout, for BCAE the files' own
 * (N, 192, 249, 16); fill the input with e->ops->from_nchw on
 * nn_tensor5_flat(input).
 */
#ifndef BCAE_MODEL_RUNNER3D_H
#define BCAE_MODEL_RUNNER3D_H

#include "model/bcae3d.h"
#include "nn/engine.h"

typedef struct bcae3d_runner bcae3d_runner;

#define BCAE3D_FOCAL_GAMMA 2.0f
#define BCAE3D_FOCAL_EPS 1e-8f

/* algo: how the decoders' transposed convolutions run (NN_CONV3D_AUTO: the
 * backend's choice). */
bcae_status bcae3d_runner_create(nn_engine *e, const bcae3d_model *model, int batch,
                                 int training, nn_conv3d_algo algo, bcae3d_runner **out,
                                 bcae_error *err);
void bcae3d_runner_destroy(bcae3d_runner *r);

int bcae3d_runner_batch(const bcae3d_runner *r);
size_t bcae3d_runner_arena_bytes(const bcae3d_runner *r);
void bcae3d_runner_sync_weights(bcae3d_runner *r);

nn_tensor5 *bcae3d_runner_input(bcae3d_runner *r);      /* (batch, 1, in_dims) */
nn_tensor5 *bcae3d_runner_code(bcae3d_runner *r);       /* (batch, 8, code_dims) */
const nn_tensor5 *bcae3d_runner_seg_logit(const bcae3d_runner *r); /* (batch, 1, in_dims) */
const nn_tensor5 *bcae3d_runner_reg_raw(const bcae3d_runner *r);

/* Inference runners of BCAE++ / BCAE-HT: run the encoder as one planned
 * chain from now on (nn_chain3d_desc; first: NN_FIRST_SPARSE, _DENSE, or
 * _SPARSE_PORTABLE = sparse with no CPU-specific kernel anywhere). The
 * weights are read now: call again after they change. BCAE_ERR_UNSUPPORTED
 * for the original BCAE (InstanceNorm) or a backend without chains; the
 * layer-by-layer encoder then stays in use. */
bcae_status bcae3d_runner_use_chain(bcae3d_runner *r, nn_first_layer first, bcae_error *err);
/* The encoder chain as inference should run it: for BCAE++ / BCAE-HT with
 * the first-layer form that measured faster (dense, docs/MODELS.md); the
 * original BCAE keeps the layer-by-layer encoder (BCAE_OK). */
bcae_status bcae3d_runner_use_fast_encoder(bcae3d_runner *r, bcae_error *err);
/* 1 when the encoder runs through a chain. */
int bcae3d_runner_uses_chain(const bcae3d_runner *r);

/* The decoders (both heads) run as one planned inference chain from now on
 * (nn_dechain3d_desc; form: the transposed convs' shuffle or row-split form;
 * portable: no CPU-specific kernels). The outputs are the same raw tensors
 * as the layer path's (seg_logit, reg_raw). Weights are read now.
 * BCAE_ERR_UNSUPPORTED for the original BCAE or a backend without it. */
bcae_status bcae3d_runner_use_decoder_chain(bcae3d_runner *r, nn_deconv_form form, int portable,
                                            bcae_error *err);
/* The decoder chain in the form that measured faster; the original BCAE
 * keeps the layer-by-layer decoders (BCAE_OK). */
bcae_status bcae3d_runner_use_fast_decoder(bcae3d_runner *r, bcae_error *err);
int bcae3d_runner_uses_decoder_chain(const bcae3d_runner *r);

void bcae3d_runner_encode(bcae3d_runner *r);
void bcae3d_runner_decode(bcae3d_runner *r);

/* Loss sums of the last forward pass against the input, over w < crop_w. */
void bcae3d_runner_loss_sums(bcae3d_runner *r, nn_loss_sums *out);
/* Gradients of L_reg + coef * L_seg into grad (nfloats, overwritten). */
void bcae3d_runner_backward(bcae3d_runner *r, float coef, float *grad);

/* model_arch_bcae{pp,ht,}.runner_create (model.h). */
bcae_status bcae3d_model_runner_create(nn_engine *e, const bcae_model *m, int batch, int mode,
                                       const runner_options *opt, model_runner **out,
                                       bcae_error *err);

#endif
