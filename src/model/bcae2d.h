/*
 * BCAE-2D(m, n, d) (SPEC section 3): the parameter table with PyTorch's
 * state-dict names, the layer sequence of the encoder and the two decoder
 * heads. The architecture behind model.h's interface (model_arch_bcae2d);
 * its runner is runner.h.
 */
#ifndef BCAE_MODEL_BCAE2D_H
#define BCAE_MODEL_BCAE2D_H

#include "model/model.h"

#define BCAE2D_CHANNELS 32 /* width of every hidden layer */
#define BCAE2D_MAX_DEPTH 64

typedef struct bcae2d_config {
    int m, n, d;         /* encoder blocks, decoder blocks, down/up-samplings */
    float clf_threshold; /* h of SPEC section 2 */
} bcae2d_config;

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

/* The architecture's part of a bcae_model (its impl); the parameters are
 * the owning model's table t. */
typedef struct bcae2d_model {
    bcae2d_config cfg;
    bcae2d_net nets[NET_COUNT];
    const model_table *t;
} bcae2d_model;

#define BCAE2D_SHIFT 6.0f /* regression transform T(r) = 6 + 3 exp(r) */
#define BCAE2D_SCALE 3.0f

extern const model_arch model_arch_bcae2d;

/* The BCAE-2D part of a model of this architecture (and of no other). */
const bcae2d_model *bcae2d_of(const bcae_model *m);

/* Shapes: code (32, 192 / 2^d, 256 / 2^d). */
int bcae2d_code_h(const bcae2d_model *model);
int bcae2d_code_w(const bcae2d_model *model);

#endif
