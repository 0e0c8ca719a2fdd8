/*
 * Running a BCAE-2D on an engine for a fixed batch size: planned
 * convolutions, an activation arena sized once, forward, the loss and the
 * backward pass. Nothing is allocated after creation.
 *
 * Training runners keep every activation the backward pass needs; inference
 * runners rotate three buffers, so their memory does not grow with depth.
 */
#ifndef BCAE_MODEL_RUNNER_H
#define BCAE_MODEL_RUNNER_H

#include "model/bcae2d.h"
#include "nn/engine.h"

typedef struct bcae2d_runner bcae2d_runner;

#define BCAE2D_FOCAL_GAMMA 2.0f
#define BCAE2D_FOCAL_EPS 1e-8f

/* training: 0 for inference, BCAE2D_TRAIN, or BCAE2D_TRAIN_UNFUSED.
 * Training runners fuse the encoder's first convolution and the AvgPool2d
 * after it into one k + 1, stride 2 convolution (SPEC section 6; exact up to
 * float rounding, a third of the work forward and in the weight gradient);
 * BCAE2D_TRAIN_UNFUSED runs them as two layers, a reference for tests. */
enum { BCAE2D_TRAIN = 1, BCAE2D_TRAIN_UNFUSED = 2 };
bcae_status bcae2d_runner_create(nn_engine *e, const bcae2d_model *model, int batch, int training,
                                 bcae2d_runner **out, bcae_error *err);
/* The same with the precision of the training convolutions: FP32, or
 * BF16 (training runners only, on an engine with nn_has_conv2d_bf16):
 * every convolution in mixed bf16 (nn_conv2d_desc.precision), everything
 * else (activations between layers, element-wise ops, the loss, the
 * gradients handed back) fp32. */
bcae_status bcae2d_runner_create_precision(nn_engine *e, const bcae2d_model *model, int batch,
                                           int training, bcae_precision precision,
                                           bcae2d_runner **out, bcae_error *err);
void bcae2d_runner_destroy(bcae2d_runner *r);

int bcae2d_runner_batch(const bcae2d_runner *r);
/* Bytes of activation memory the runner holds. */
size_t bcae2d_runner_arena_bytes(const bcae2d_runner *r);

/* Pushes the model's current weights into the planned convolutions: after
 * loading and after every optimizer step. */
void bcae2d_runner_sync_weights(bcae2d_runner *r);

/* The model input (batch, 16, 192, 256), to fill with e->ops->from_nchw. */
nn_tensor *bcae2d_runner_input(bcae2d_runner *r);
/* The code (batch, 32, 192 / 2^d, 256 / 2^d), written by encode, read by decode. */
nn_tensor *bcae2d_runner_code(bcae2d_runner *r);
/* The heads' raw outputs (batch, 16, 192, 256): logits and r before T. */
const nn_tensor *bcae2d_runner_seg_logit(const bcae2d_runner *r);
const nn_tensor *bcae2d_runner_reg_raw(const bcae2d_runner *r);

void bcae2d_runner_encode(bcae2d_runner *r);

/* Inference runners: run the encoder as one planned chain from now on (the
 * first convolution and pooling fused and computed sparsely, fused residual
 * tails, the given precision; see nn_chain_desc). The weights are read now:
 * call again after they change. An INT8 chain must then see calibration
 * inputs (fill the input tensor, call bcae2d_runner_calibrate, repeat) and
 * be finished with bcae2d_runner_finish before encoding. */
bcae_status bcae2d_runner_use_chain(bcae2d_runner *r, bcae_precision precision,
                                    nn_first_layer first, bcae_error *err);
void bcae2d_runner_calibrate(bcae2d_runner *r);
bcae_status bcae2d_runner_finish(bcae2d_runner *r, bcae_error *err);
/* Inference runners: run both decoders as one planned chain from now on
 * (nn_dechain_desc; FP32 or BF16). The weights are read now: call again
 * after they change. BCAE_ERR_UNSUPPORTED where the backend does not plan
 * it (the decoders then stay layer by layer). */
bcae_status bcae2d_runner_use_decoder_chain(bcae2d_runner *r, bcae_precision precision,
                                            bcae_error *err);
int bcae2d_runner_uses_decoder_chain(const bcae2d_runner *r);
void bcae2d_runner_decode(bcae2d_runner *r);

/* Loss sums of the last forward pass against the input (SPEC section 4). */
void bcae2d_runner_loss_sums(bcae2d_runner *r, nn_loss_sums *out);
/* Gradients of L_reg + coef * L_seg of the last forward pass into grad
 * (model->nfloats floats, overwritten). Training runners only. */
void bcae2d_runner_backward(bcae2d_runner *r, float coef, float *grad);

/* FLOPs (2 x multiply-adds) of one wedge through the encoder and through both heads. */
double bcae2d_encoder_flops(const bcae2d_model *model);
double bcae2d_decoder_flops(const bcae2d_model *model);

/* model_arch_bcae2d.runner_create (model.h). */
bcae_status bcae2d_model_runner_create(nn_engine *e, const bcae_model *m, int batch, int mode,
                                       const runner_options *opt, model_runner **out,
                                       bcae_error *err);

#endif
