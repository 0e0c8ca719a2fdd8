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

#include <stddef.h>
#include <stdint.h>

#include "bcae.h"

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

typedef struct bcae3d_param {
    char name[128];
    size_t offset; /* floats into the model's buffer */
    size_t count;
    int ndim;
    size_t shape[5];
} bcae3d_param;

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

typedef struct bcae3d_model {
    bcae3d_config cfg;
    bcae3d_param *params;
    int nparams;
    size_t nfloats;
    float *weights;
    bcae3d_net nets[NET3D_COUNT];
    int in_dims[3];   /* spatial (d, h, w) of the 1-channel model input */
    int code_dims[3]; /* spatial dims of the 8-channel code */
    int crop_w;       /* valid extent of w for losses and outputs (249 or 16) */
    float shift, scale; /* regression transform shift + scale * exp(r) */
    uint8_t fingerprint[32];
} bcae3d_model;

/* "bcae++", "bcae-ht", "bcae" -> arch; -1 if none. */
int bcae3d_arch_parse(const char *name);
const char *bcae3d_arch_name(bcae3d_arch arch);
/* The architecture's defaults: features, log mode, threshold 0.5. */
void bcae3d_config_default(bcae3d_arch arch, bcae3d_config *cfg);

bcae_status bcae3d_create(const bcae3d_config *cfg, bcae3d_model *model, bcae_error *err);
void bcae3d_destroy(bcae3d_model *model);
/* PyTorch's default initialisation (bound 1/sqrt(fan_in), fan_in from
 * weight.size(1) as PyTorch computes it, also for transposed convs), ReZero
 * alphas 0; deterministic in seed. */
void bcae3d_init(bcae3d_model *model, uint64_t seed);
int bcae3d_find(const bcae3d_model *model, const char *name);
/* The name a parameter had in BCAE++ / BCAE-HT files bcae wrote before
 * 2026-12-06 (output layers outside `layers.`), for names that changed: name
 * may carry a prefix (a checkpoint's optim.exp_avg.); the result goes in buf.
 * NULL when the name did not change. Loaders accept it as an alias. */
const char *bcae3d_old_name(bcae3d_arch arch, const char *name, char *buf, size_t size);
size_t bcae3d_encoder_params(const bcae3d_model *model);
/* Code elements of one wedge: 8 * code_dims. */
size_t bcae3d_code_elements(const bcae3d_model *model);

/* Weights files: metadata arch, features, log, transform, clf_threshold
 * (docs/MODELS.md); every tensor present with dtype F32 and its shape. */
bcae_status bcae3d_load(const char *path, bcae3d_model *model, bcae_error *err);
bcae_status bcae3d_save(const char *path, const bcae3d_model *model, bcae_error *err);
/* The metadata keys and values bcae3d_save writes (for checkpoints):
 * fills up to 8 pairs, returns the count; buffers owned by the caller. */
int bcae3d_metadata(const bcae3d_model *model, const char **keys, const char **values,
                    char features[64], char threshold[32]);
bcae_status bcae3d_load_weights_into(const char *path, bcae3d_model *model, bcae_error *err);

/* The arch metadata of a weights file ("bcae-2d", "bcae++", ...), copied
 * into out; BCAE_ERR_FORMAT if it has none. */
bcae_status bcae_model_file_arch(const char *path, char *out, size_t size, bcae_error *err);

/* FLOPs (2 x multiply-adds) of one wedge through the encoder / both decoders. */
double bcae3d_encoder_flops(const bcae3d_model *model);
double bcae3d_decoder_flops(const bcae3d_model *model);

#endif
