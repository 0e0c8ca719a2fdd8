/*
 * One interface for every architecture (BCAE-2D, BCAE++, BCAE-HT, the
 * original BCAE). The codec, the trainer, bench and the verbs see only this
 * file; an architecture is one model file (its parameter table, layer lists,
 * input layout and metadata: bcae2d.c, bcae3d.c) and its runner (runner.c,
 * runner3d.c), registered in model.c's table.
 *
 * What every architecture shares lives here and in model.c: the parameter
 * table (PyTorch state-dict names over one contiguous float buffer, with
 * gradients and optimizer moments mirroring it index for index), the
 * safetensors load / save / --init code, PyTorch's default initialisation,
 * and the runner's operation table.
 */
#ifndef BCAE_MODEL_MODEL_H
#define BCAE_MODEL_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "bcae.h"
#include "nn/engine.h"

#define MODEL_MAX_DIMS 5

typedef struct model_param {
    char name[128];
    size_t offset; /* into the model's buffer, in floats */
    size_t count;
    int ndim;
    size_t shape[MODEL_MAX_DIMS];
} model_param;

/* The parameters of a model: views into one buffer. */
typedef struct model_table {
    model_param *params;
    int nparams, cap;
    size_t nfloats;
    float *weights; /* nfloats, allocated by model_table_alloc */
    int fail;       /* an add ran out of memory */
} model_table;

/* Appends a parameter; returns its index, or -1 (and sets fail) when out of
 * memory. Names longer than model_param.name are truncated. */
int model_table_add(model_table *t, const char *name, int ndim, const size_t *shape);
/* A convolution's <prefix>.weight and <prefix>.bias: weight shape (a, b,
 * k...) with nk kernel dims, bias (bias_len). Returns 0, or -1 out of memory. */
int model_table_add_conv(model_table *t, const char *prefix, int a, int b, int nk, const int *k,
                         int bias_len, int *w, int *bias);
bcae_status model_table_alloc(model_table *t, bcae_error *err);
void model_table_free(model_table *t);
int model_table_find(const model_table *t, const char *name);

/* An architecture's hyper-parameters. Zero fields take the architecture's
 * default (BCAE-2D (4, 8, 3); the 3D encoders' published widths; 0.5). */
typedef struct model_config {
    int m, n, d;         /* BCAE-2D: encoder blocks, decoder blocks, samplings */
    int features[4];     /* 3D: encoder widths */
    float clf_threshold; /* h of SPEC section 2 */
    int input;           /* MODEL_INPUT_*: log2(ADC+1) or raw ADC (3D) */
} model_config;

enum { MODEL_INPUT_DEFAULT = 0, MODEL_INPUT_LOG = 1, MODEL_INPUT_RAW = 2 };

typedef struct model_runner model_runner;
typedef struct bcae_st_file bcae_st_file;

/* How an inference runner computes (fields left zero: the fast default). */
typedef enum runner_encoder {
    RUNNER_ENCODER_FAST = 0,     /* the planned chain in its faster first-layer form */
    RUNNER_ENCODER_SPARSE = 1,   /* the chain, first layer sparse */
    RUNNER_ENCODER_DENSE = 2,    /* the chain, first layer dense (fp32 only) */
    RUNNER_ENCODER_PORTABLE = 3, /* the chain without CPU-specific kernels (a check) */
    RUNNER_ENCODER_LAYERS = 4    /* layer by layer, as training runs it (fp32 only) */
} runner_encoder;

typedef enum runner_decoder {
    RUNNER_DECODER_FAST = 0,    /* the planned decoder chain where there is one */
    RUNNER_DECODER_SHUFFLE = 1, /* 3D chain, transposed convs in shuffle form */
    RUNNER_DECODER_ROWS = 2,    /* 3D chain, row-split form */
    RUNNER_DECODER_PORTABLE = 3,
    RUNNER_DECODER_LAYERS = 4
} runner_decoder;

typedef struct runner_options {
    bcae_precision precision; /* of the encoder */
    runner_encoder encoder;
    runner_decoder decoder;
    nn_conv3d_algo conv3d_algo; /* transposed convs of the layer path */
    bcae_precision decoder_precision; /* FP32, or BF16 for BCAE-2D's fused decoders */
} runner_options;

enum runner_mode { RUNNER_INFERENCE = 0, RUNNER_TRAIN = 1, RUNNER_TRAIN_UNFUSED = 2 };

/* One architecture. */
typedef struct model_arch {
    const char *name;   /* the metadata's arch: "bcae-2d", "bcae++", ... */
    const char *title;  /* for people: "BCAE-2D", "BCAE++", ... */
    int impl_id;        /* which variant of its model file (e.g. bcae3d_arch) */
    uint64_t init_salt; /* of the initialisation's random streams */
    /* Builds the parameter table (weights zeroed) and the layer lists. */
    bcae_status (*create)(const struct model_arch *a, const model_config *cfg, bcae_model *m,
                          bcae_error *err);
    void (*destroy)(bcae_model *m); /* the architecture's own part */
    /* Reads the hyper-parameters from a weights file's metadata. */
    bcae_status (*config_from_file)(const struct model_arch *a, const bcae_st_file *f,
                                    const char *path, model_config *cfg, bcae_error *err);
    /* The weights file's metadata: up to 8 pairs, the values' text in bufs. */
    int (*metadata)(const bcae_model *m, const char **keys, const char **values,
                    char bufs[8][64]);
    /* Optional: the name a parameter had in files of an older bcae release
     * (written into buf), or NULL when it did not change. Loaders accept it. */
    const char *(*alias)(const bcae_model *m, const char *name, char *buf, size_t size);
    /* adc (file layout) -> one wedge of the model input (input_floats). */
    void (*wedge_to_input)(const bcae_model *m, const uint16_t *adc, float *x);
    /* One wedge of a one-channel output in the model layout -> the cropped
     * output (output_shape order). */
    void (*crop_output)(const bcae_model *m, const float *x, float *out);
    /* A reconstruction in the model's layout and units -> raw ADC (file
     * layout, rounded, clamped to [0, 1023], NaN -> 0) and/or log2(ADC+1)
     * of the unrounded value. Either output may be NULL. */
    void (*output_to_wedge)(const bcae_model *m, const float *x, uint16_t *adc, float *log_adc);
    double (*encoder_flops)(const bcae_model *m);
    double (*decoder_flops)(const bcae_model *m);
    /* FLOPs of one wedge's training step (forward and both backward passes). */
    double (*train_flops)(const bcae_model *m);
    bcae_status (*runner_create)(nn_engine *e, const bcae_model *m, int batch, int mode,
                                 const runner_options *opt, model_runner **out, bcae_error *err);
} model_arch;

/* A model: its architecture, parameters and the shapes the codec and the
 * trainer need. The architecture keeps its layer lists in impl. */
struct bcae_model {
    const model_arch *arch;
    model_config cfg;
    model_table t;
    uint8_t fingerprint[32]; /* of the file it was loaded from; zeros if none */
    size_t input_floats;     /* one wedge of the model input (one channel) */
    int code_ndim;           /* 3 (c, h, w) or 4 (c, d, h, w) */
    size_t code_shape[4];
    size_t code_floats;
    int output_ndim;         /* a cropped one-channel output, e.g. (16, 192, 249) */
    size_t output_shape[4];
    float shift, scale;      /* regression transform shift + scale * exp(r) */
    int crop_w;              /* valid extent of the innermost input dim (losses) */
    void *impl;
};

/* The registry. */
const model_arch *model_arch_find(const char *name);
/* "bcae-2d, bcae++, bcae-ht, bcae": for messages. */
const char *model_arch_names(void);

/* A fresh model, weights zero. */
bcae_status model_create(const model_arch *a, const model_config *cfg, bcae_model **out,
                         bcae_error *err);
/* bcae_model_load / bcae_model_free are the same for files. */
bcae_status model_save(const bcae_model *m, const char *path, bcae_error *err);
/* Weights of the same architecture and shape from a file (--init). */
bcae_status model_load_weights_into(bcae_model *m, const char *path, bcae_error *err);
/* Copies every parameter from an opened file (dtype and shape checked;
 * names of older releases accepted through arch->alias). */
bcae_status model_copy_tensors(bcae_model *m, const bcae_st_file *f, const char *path,
                               const char *prefix, float *dst, bcae_error *err);
/* PyTorch's default initialisation (bound 1/sqrt(fan_in), fan_in from
 * weight.size(1) * prod(kernel), also for transposed convs), ReZero alphas
 * 0; deterministic in seed. */
void model_init(bcae_model *m, uint64_t seed);
int model_find(const bcae_model *m, const char *name);
/* The classifier head's output bias, -1 if none. */
int model_clf_bias(const bcae_model *m);
size_t model_encoder_params(const bcae_model *m);

/* ---- runners: a model on an engine for one batch size ---------------------- */

typedef struct runner_ops {
    void (*destroy)(model_runner *r);
    size_t (*arena_bytes)(const model_runner *r);
    /* Pushes the model's current weights into the planned convolutions (and
     * re-plans chains): after every optimizer step. */
    bcae_status (*sync_weights)(model_runner *r, bcae_error *err);
    bcae_status (*encode)(model_runner *r, bcae_error *err);
    bcae_status (*decode)(model_runner *r, bcae_error *err);
    /* Loss sums of the last forward pass against the input (SPEC 4). */
    bcae_status (*loss_sums)(model_runner *r, nn_loss_sums *out, bcae_error *err);
    /* Gradients of L_reg + coef * L_seg into grad (nfloats, overwritten). */
    bcae_status (*backward)(model_runner *r, float coef, float *grad, bcae_error *err);
    /* Optional (NULL: no int8 encoder): feed the current input to an INT8
     * encoder's calibration; finish plans the int8 form. */
    bcae_status (*calibrate)(model_runner *r, bcae_error *err);
    bcae_status (*finish)(model_runner *r, bcae_error *err);
    /* What the encoder (decoder 0) and decoders (1) run as, for reports
     * ("chain sparse bf16"); 2: the encoder chain's kernels in the backend's
     * words (nn_chain_describe), "" when it runs no chain; 3: likewise the
     * decoder chain's. */
    const char *(*describe)(const model_runner *r, int decoder, char *buf, size_t size);
} runner_ops;

/* Tensors are the flattened 4D views of the backend's storage: the input
 * and the heads' raw outputs (batch, 1 or 16 channels, ...) and the code. */
struct model_runner {
    const runner_ops *ops;
    const bcae_model *model;
    nn_engine *engine;
    int batch, mode;
    nn_tensor input, code, seg_logit, reg_raw;
    int needs_calibration; /* an INT8 encoder not yet finished */
    void *impl;
    /* 1: a wedge's decoded outputs do not depend on the batch they are
     * decoded in (nor on their slot), bit for bit: the decoders run kernels
     * whose sums for one wedge have a fixed order (the fused decoder chain);
     * 0: they may (oneDNN picks kernels by shape). */
    int decode_batch_invariant;
};

/* The architecture runners call the engine's ops without checking each
 * status; a pass is bracketed instead: pass_begin clears the engine's last
 * error, pass_end fails the pass (with that error's message) when any op of
 * it failed. */
static inline void model_pass_begin(nn_engine *e) { e->last_error.status = BCAE_OK; }
static inline bcae_status model_pass_end(nn_engine *e, bcae_error *err)
{
    return e->last_error.status ? nn_engine_error(e, e->last_error.status, err) : BCAE_OK;
}

bcae_status model_runner_create(nn_engine *e, const bcae_model *m, int batch, int mode,
                                const runner_options *opt, model_runner **out, bcae_error *err);
void model_runner_destroy(model_runner *r);

/* Wedges (file layout) -> the runner's input; wedges past n are empty. The
 * ADC values are validated to [0, 1023] (BCAE_ERR_RANGE naming wedge
 * first + i). host: batch * input_floats floats. */
bcae_status model_runner_load_wedges(model_runner *r, const uint16_t *adc, size_t n,
                                     size_t first, float *host, bcae_error *err);
/* Feeds wedges (NULL: one event of the built-in simulator, seed
 * BCAE_CALIBRATION_SEED) through an INT8 encoder's calibration and finishes
 * it; a no-op for runners that need none. */
bcae_status model_runner_calibrate(model_runner *r, const uint16_t *wedges, size_t n,
                                   int threads, float *host, bcae_error *err);

#endif
