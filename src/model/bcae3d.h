/*
 * The 3D models of SPEC section 3: BCAE++ and BCAE-HT (log2(ADC+1) input
 * (1, 16, 192, 256) in (layer, azimuth, z padded) order, code (8, 16, 12, 16))
 * and the original BCAE of 2021 (raw ADC input (1, 192, 249, 16) in the
 * file's (azimuth, z, layer) order, code (8, 12, 15, 16)).
 *
 * Like bcae2d.h: one contiguous float buffer of parameters in PyTorch
 * layouts, a table of views with the reference's state-dict names, and the
 * networks as lists of residual blocks. Gradients and optimizer moments
 * mirror the buffer.
 */
#ifndef BCAE_MODEL_BCAE3D_H
#define BCAE_MODEL_BCAE3D_H

#include "model/model.h"

typedef enum bcae3d_arch {
    BCAE3D_PLUSPLUS = 0, /* "bcae++" */
    BCAE3D_HT = 1,       /* "bcae-ht" */
    BCAE3D_ORIGINAL = 2  /* "bcae", the 2021 model */
} bcae3d_arch;

#define BCAE3D_BLOCKS 4
#define BCAE3D_CODE_CHANNELS 8

typedef struct bcae3d_config {
    bcae3d_arch arch;
    int features[BCAE3D_BLOCKS]; /* encoder widths; the decoders' are (16, 8, 4, 2) */
    int log_input;               /* 1: log2(ADC+1) input; 0: raw ADC as float */
    float clf_threshold;
} bcae3d_config;

/* One residual block (SPEC section 3): main = conv0 -> LeakyReLU [-> norm]
 * -> conv3 (k3, p1); side = conv0' -> LeakyReLU [-> norm];
 * y = [norm](LeakyReLU(alpha * main + side)). conv0 and conv0' share shape. */
typedef struct bcae3d_block {
    int cin, cout;
    int k[3], stride[3], pad[3];
    int transposed; /* decoders: ConvTranspose3d */
    int norm;       /* the original BCAE's InstanceNorm3d */
    int alpha, w0, b0, w3, b3, ws, bs; /* parameter indices */
} bcae3d_block;

typedef struct bcae3d_net {
    bcae3d_block blocks[BCAE3D_BLOCKS];
    int nblocks;
    int out_cin, out_cout, out_w, out_b; /* the output Conv3d(k3, p1) */
    int out_act;                         /* LeakyReLU + InstanceNorm after it (BCAE encoder) */
} bcae3d_net;

enum { NET3D_ENCODER = 0, NET3D_CLF = 1, NET3D_REG = 2, NET3D_COUNT = 3 };

/* The architecture's part of a bcae_model (its impl); the parameters are
 * the owning model's table t. */
typedef struct bcae3d_model {
    bcae3d_config cfg;
    const model_table *t;
    bcae3d_net nets[NET3D_COUNT];
    int in_dims[3];   /* spatial (d, h, w) of the 1-channel model input */
    int code_dims[3]; /* spatial dims of the 8-channel code */
    int crop_w;       /* valid extent of w for losses and outputs (249 or 16) */
    float shift, scale; /* regression transform shift + scale * exp(r) */
} bcae3d_model;

extern const model_arch model_arch_bcaepp, model_arch_bcaeht, model_arch_bcae;

/* The 3D part of a model of one of these architectures (and of no other). */
const bcae3d_model *bcae3d_of(const bcae_model *m);
/* The architecture's defaults: features, log mode, threshold 0.5. */
void bcae3d_config_default(bcae3d_arch arch, bcae3d_config *cfg);
size_t bcae3d_code_elements(const bcae3d_model *model);

/* FLOPs (2 x multiply-adds) of one wedge through the encoder / both decoders. */
double bcae3d_encoder_flops(const bcae3d_model *model);
double bcae3d_decoder_flops(const bcae3d_model *model);

#endif
