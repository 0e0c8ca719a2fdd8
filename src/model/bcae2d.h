/*
 * BCAE-2D(m, n, d) (SPEC section 3): the parameter table with PyTorch's
 * state-dict names, the layer sequence of the encoder and the two decoder
 * heads, initialisation, and the weights file (safetensors).
 *
 * All parameters live in one contiguous float buffer, in plain PyTorch
 * layouts; gradients and optimizer moments mirror it index for index.
 */
#ifndef BCAE_MODEL_BCAE2D_H
#define BCAE_MODEL_BCAE2D_H

#include <stddef.h>
#include <stdint.h>

#include "bcae.h"

#define BCAE2D_CHANNELS 32 /* width of every hidden layer */
#define BCAE2D_MAX_DEPTH 64

typedef struct bcae2d_config {
    int m, n, d;         /* encoder blocks, decoder blocks, down/up-samplings */
    float clf_threshold; /* h of SPEC section 2 */
} bcae2d_config;

typedef struct bcae_param {
    char name[128];
    size_t offset; /* into the model's buffer, in floats */
    size_t count;
    int ndim;
    size_t shape[4];
} bcae_param;

typedef enum bcae2d_op_kind { OP_CONV, OP_POOL, OP_UPSAMPLE, OP_RESIDUAL } bcae2d_op_kind;

/* One step of a network. A convolution uses params w, b; a residual block
 * uses w (conv1 weight), b (conv1 bias), w2, b2 (conv2) and alpha. */
typedef struct bcae2d_op {
    bcae2d_op_kind kind;
    int cin, cout, k, pad;     /* convolutions */
    int w, b, w2, b2, alpha;   /* parameter indices, -1 when unused */
} bcae2d_op;

typedef struct bcae2d_net {
    bcae2d_op ops[2 * BCAE2D_MAX_DEPTH + 2];
    int nops;
} bcae2d_net;

enum { NET_ENCODER = 0, NET_CLF = 1, NET_REG = 2, NET_COUNT = 3 };

typedef struct bcae2d_model {
    bcae2d_config cfg;
    bcae_param *params;
    int nparams;
    size_t nfloats;
    float *weights; /* nfloats */
    bcae2d_net nets[NET_COUNT];
    uint8_t fingerprint[32]; /* of the file it was loaded from; zeros if none */
} bcae2d_model;

/* Checks (m >= d, n >= d, 1 <= d <= 6, m, n <= BCAE2D_MAX_DEPTH / 2) and
 * builds the parameter table and layer lists; weights are zeroed. */
bcae_status bcae2d_create(const bcae2d_config *cfg, bcae2d_model *model, bcae_error *err);
void bcae2d_destroy(bcae2d_model *model);

/* PyTorch's default initialisation (kaiming-uniform weights and uniform
 * biases, both bound 1/sqrt(fan_in)), ReZero alphas 0; deterministic in seed. */
void bcae2d_init(bcae2d_model *model, uint64_t seed);

/* Index of a parameter by name, -1 if none. */
int bcae2d_find(const bcae2d_model *model, const char *name);

/* Shapes: code (32, 192 / 2^d, 256 / 2^d). */
int bcae2d_code_h(const bcae2d_model *model);
int bcae2d_code_w(const bcae2d_model *model);
/* Encoder parameters (the paper's "encoder size"). */
size_t bcae2d_encoder_params(const bcae2d_model *model);

/* Weights files. Loading checks the metadata (arch bcae-2d, m, n, d, log,
 * transform) and every tensor's presence, dtype (F32) and shape. */
bcae_status bcae2d_load(const char *path, bcae2d_model *model, bcae_error *err);
bcae_status bcae2d_save(const char *path, const bcae2d_model *model, bcae_error *err);
/* Copies weights of matching names from a file into an existing model of
 * the same configuration (--init). */
bcae_status bcae2d_load_weights_into(const char *path, bcae2d_model *model, bcae_error *err);

#endif
