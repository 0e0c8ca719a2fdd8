/*
 * bcae.h — public interface of libbcae, the Bicephalous Convolutional
 * Autoencoder compressor for TPC data.
 *
 * Conventions (zstd-like):
 *   - every fallible function returns a bcae_status (BCAE_OK == 0, errors < 0);
 *   - it takes an optional `bcae_error *err` (may be NULL) that receives the
 *     status and a human message with detail (file name, offset, record);
 *   - the library never prints, never exits, and keeps no global mutable
 *     state: everything it needs is passed in, so it is safe to call from
 *     several threads on different objects.
 */
#ifndef BCAE_H
#define BCAE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BCAE_VERSION_MAJOR 0
#define BCAE_VERSION_MINOR 1
#define BCAE_VERSION_PATCH 0

/* ------------------------------------------------------------------ */
/* Errors                                                              */
/* ------------------------------------------------------------------ */

typedef enum bcae_status {
    BCAE_OK = 0,
    BCAE_ERR_INVALID_ARGUMENT = -1, /* a caller passed something unusable */
    BCAE_ERR_IO = -2,               /* open/read/write/rename failed */
    BCAE_ERR_FORMAT = -3,           /* malformed or truncated file */
    BCAE_ERR_UNSUPPORTED = -4,      /* well-formed but not something we handle */
    BCAE_ERR_OUT_OF_MEMORY = -5,
    BCAE_ERR_SHAPE = -6,            /* array of the wrong shape */
    BCAE_ERR_RANGE = -7,            /* values outside their allowed range */
    BCAE_ERR_INTERNAL = -8
} bcae_status;

#define BCAE_ERROR_MESSAGE_MAX 512

typedef struct bcae_error {
    bcae_status status;
    char message[BCAE_ERROR_MESSAGE_MAX];
} bcae_error;

/* Short fixed description of a status code ("I/O error", ...). */
const char *bcae_strerror(bcae_status status);
/* "MAJOR.MINOR.PATCH" */
const char *bcae_version(void);

/* ------------------------------------------------------------------ */
/* N-dimensional arrays and the NumPy .npy format                      */
/* ------------------------------------------------------------------ */

typedef enum bcae_dtype {
    BCAE_DTYPE_BOOL = 0,
    BCAE_DTYPE_U8, BCAE_DTYPE_I8,
    BCAE_DTYPE_U16, BCAE_DTYPE_I16,
    BCAE_DTYPE_U32, BCAE_DTYPE_I32,
    BCAE_DTYPE_U64, BCAE_DTYPE_I64,
    BCAE_DTYPE_F16, BCAE_DTYPE_F32, BCAE_DTYPE_F64,
    BCAE_DTYPE_COUNT
} bcae_dtype;

#define BCAE_MAX_DIMS 8

/* An array in memory: native byte order, C (row-major) order, owned data. */
typedef struct bcae_array {
    bcae_dtype dtype;
    int ndim;
    size_t shape[BCAE_MAX_DIMS];
    void *data;
} bcae_array;

size_t bcae_dtype_size(bcae_dtype dtype);
/* NumPy's little-endian descr of a dtype, e.g. "<u2", "|u1", "<f4". */
const char *bcae_dtype_name(bcae_dtype dtype);
size_t bcae_array_count(const bcae_array *a);
/* Allocates a zeroed array; count * itemsize overflow is an error. */
bcae_status bcae_array_alloc(bcae_array *a, bcae_dtype dtype, int ndim,
                             const size_t *shape, bcae_error *err);
void bcae_array_free(bcae_array *a);
/* Element i of a numeric array as double. */
double bcae_array_get_f64(const bcae_array *a, size_t i);

/* Reads a .npy file (format 1.0, 2.0 or 3.0; any bool/integer/float dtype,
 * either byte order, C or Fortran order) into native C order. */
bcae_status bcae_npy_read(const char *path, bcae_array *out, bcae_error *err);
/* Same, from bytes in memory (`name` is used in messages). */
bcae_status bcae_npy_read_buffer(const void *buf, size_t len, const char *name,
                                 bcae_array *out, bcae_error *err);
/* Writes a .npy (format 1.0, little-endian, C order) atomically: a
 * temporary file in the same folder, fsync, rename. dtype must be U16
 * or F32. */
bcae_status bcae_npy_write(const char *path, const bcae_array *a, bcae_error *err);

/* ------------------------------------------------------------------ */
/* TPC wedges                                                          */
/* ------------------------------------------------------------------ */

/* File layout of a wedge: (azimuth, z, layer), raw 10-bit ADC. */
#define BCAE_WEDGE_AZIMUTH 192
#define BCAE_WEDGE_Z 249
#define BCAE_WEDGE_LAYERS 16
#define BCAE_WEDGE_VOXELS (BCAE_WEDGE_AZIMUTH * BCAE_WEDGE_Z * BCAE_WEDGE_LAYERS)
#define BCAE_ADC_MAX 1023
#define BCAE_ZERO_SUPPRESSION 64
/* Model layout: (layer, azimuth, z padded to 256) of log2(ADC + 1). */
#define BCAE_MODEL_Z 256
#define BCAE_MODEL_VOXELS (BCAE_WEDGE_LAYERS * BCAE_WEDGE_AZIMUTH * BCAE_MODEL_Z)

/* Checks that `a` is a wedge (shape 192x249x16, every value an integer in
 * [0, 1023]) and copies it as uint16 into adc[BCAE_WEDGE_VOXELS]. `name`
 * (e.g. the file path) is named in the error message. */
bcae_status bcae_wedge_from_array(const bcae_array *a, const char *name,
                                  uint16_t *adc, bcae_error *err);
/* Reads a wedge .npy file: bcae_npy_read + bcae_wedge_from_array. */
bcae_status bcae_wedge_load(const char *path, uint16_t *adc, bcae_error *err);
/* Writes a uint16 wedge .npy atomically. */
bcae_status bcae_wedge_save(const char *path, const uint16_t *adc, bcae_error *err);
/* adc (192,249,16) -> x (16,192,256) = log2(adc+1), z zero-padded. */
void bcae_wedge_to_model(const uint16_t *adc, float *x);
/* x (16,192,256) -> adc (192,249,16): crop z, round(2^x - 1) clamped to
 * [0, 1023]; NaN maps to 0. */
void bcae_wedge_from_model(const float *x, uint16_t *adc);

/* ------------------------------------------------------------------ */
/* Datasets: a folder with train.txt / test.txt manifests              */
/* ------------------------------------------------------------------ */

typedef struct bcae_dataset bcae_dataset;

/* `dir` is the folder holding the manifests, or one whose `outer/` does.
 * `split` names the manifest: "train" reads train.txt. */
bcae_status bcae_dataset_open(const char *dir, const char *split,
                              bcae_dataset **out, bcae_error *err);
void bcae_dataset_close(bcae_dataset *ds);
size_t bcae_dataset_size(const bcae_dataset *ds);
/* The manifest's relative path of wedge i. */
const char *bcae_dataset_relpath(const bcae_dataset *ds, size_t i);
/* The root the relative paths are relative to. */
const char *bcae_dataset_root(const bcae_dataset *ds);
bcae_status bcae_dataset_load(const bcae_dataset *ds, size_t i, uint16_t *adc,
                              bcae_error *err);

/* ------------------------------------------------------------------ */
/* Metrics (per wedge, in log2(ADC+1) space, cropped)                  */
/* ------------------------------------------------------------------ */

typedef struct bcae_metrics {
    double occupancy; /* fraction of voxels with x > 0 */
    double mse;
    double mae;
    double psnr;      /* max(x) / sqrt(mse), as the reference computes it; +inf if mse == 0 */
    double psnr_db;   /* 20 log10(max(x) / sqrt(mse)) */
    double precision; /* NaN when nothing is reconstructed non-zero */
    double recall;    /* NaN when the original is empty */
} bcae_metrics;

/* x: original, v: reconstruction, both log2(ADC+1), n voxels. */
void bcae_metrics_log(const float *x, const float *v, size_t n, bcae_metrics *m);
/* Raw-ADC wedges, compared in log2(ADC+1) space. */
void bcae_metrics_adc(const uint16_t *orig, const uint16_t *recon, size_t n,
                      bcae_metrics *m);

/* ------------------------------------------------------------------ */
/* Models and the codec: wedges <-> fp16 codes                         */
/* ------------------------------------------------------------------ */

typedef struct bcae_model bcae_model;

/* Loads a weights file (safetensors with bcae metadata; docs/FORMATS.md). */
bcae_status bcae_model_load(const char *path, bcae_model **out, bcae_error *err);
void bcae_model_free(bcae_model *model);
/* "bcae-2d" */
const char *bcae_model_arch(const bcae_model *model);
/* SHA-256 of the weights file's tensor data: names the model in containers. */
void bcae_model_fingerprint(const bcae_model *model, uint8_t out[32]);
/* Shape of one wedge's code, e.g. (32, 24, 32); returns the number of dims. */
int bcae_model_code_shape(const bcae_model *model, size_t shape[4]);
/* Elements of one wedge's code (each stored as an IEEE fp16). */
size_t bcae_model_code_elements(const bcae_model *model);

/* Arithmetic of the encoder. The code is stored as IEEE fp16 whatever the
 * precision; only the encoder's arithmetic changes (decoders run in fp32).
 *  FP32: fp32 weights and activations.
 *  BF16: bf16 weights and activations, fp32 accumulation (AVX512-BF16 where
 *        the CPU has it; oneDNN emulates it elsewhere, slowly).
 *  INT8: s8 activations (one scale per tensor, from a post-training
 *        calibration) and s8 weights (one scale per output channel), s32
 *        accumulation (AVX512-VNNI); the layers at the code's resolution
 *        (after the last pooling) run in fp32 (docs/PRECISION.md). */
typedef enum bcae_precision {
    BCAE_PRECISION_FP32 = 0,
    BCAE_PRECISION_BF16 = 1,
    BCAE_PRECISION_INT8 = 2
} bcae_precision;

/* "fp32", "bf16", "int8"; NULL for an unknown value. */
const char *bcae_precision_name(bcae_precision p);
/* Parses a name (also "half" = bf16); BCAE_ERR_INVALID_ARGUMENT if unknown. */
bcae_status bcae_precision_parse(const char *name, bcae_precision *out, bcae_error *err);

/* Where the networks run. AUTO: a CUDA device when the build has the CUDA
 * backend and one works, else the CPU. CUDA: a CUDA device or an error (the
 * CUDA backend is a seam only so far: see docs/CUDA.md). */
typedef enum bcae_device {
    BCAE_DEVICE_AUTO = 0,
    BCAE_DEVICE_CPU = 1,
    BCAE_DEVICE_CUDA = 2
} bcae_device;

/* "auto", "cpu", "cuda"; NULL for an unknown value. */
const char *bcae_device_name(bcae_device d);
/* Parses one of those names; BCAE_ERR_INVALID_ARGUMENT if unknown. */
bcae_status bcae_device_parse(const char *name, bcae_device *out, bcae_error *err);

typedef struct bcae_codec_options {
    int batch;   /* wedges per pass (default 4) */
    int threads; /* <= 0: BCAE's default (all cores) */
    bcae_precision precision; /* of the encoder; zero-initialised = FP32 */
    /* INT8 only: wedges (file layout) whose activation ranges calibrate the
     * encoder. NULL: one event of the built-in simulator (seed
     * BCAE_CALIBRATION_SEED, 24 wedges), so the same model always gives the
     * same int8 encoder. */
    const uint16_t *calibration;
    size_t calibration_wedges;
    bcae_device device; /* zero-initialised = AUTO */
} bcae_codec_options;

#define BCAE_CALIBRATION_SEED 20261124u

/* A model bound to a compute engine and buffers for one batch size.
 * Several codecs may share one model; one codec is used by one thread at
 * a time. */
typedef struct bcae_codec bcae_codec;

bcae_status bcae_codec_create(const bcae_model *model, const bcae_codec_options *opt,
                              bcae_codec **out, bcae_error *err);
void bcae_codec_free(bcae_codec *codec);

/* Encodes n wedges (n * BCAE_WEDGE_VOXELS uint16 ADC in the file layout,
 * validated to [0, 1023]) into n codes of bcae_model_code_elements() IEEE
 * fp16 values each (as uint16 bit patterns). */
bcae_status bcae_encode(bcae_codec *codec, const uint16_t *adc, size_t n, uint16_t *codes,
                        bcae_error *err);
/* Shape of one wedge's cropped one-channel network output (bcae_forward's
 * seg, reg, recon), e.g. (16, 192, 249) for BCAE-2D, (1, 16, 192, 249) for
 * BCAE++ / BCAE-HT, (1, 192, 249, 16) for BCAE; returns the number of dims.
 * The product is always BCAE_WEDGE_VOXELS. */
int bcae_model_output_shape(const bcae_model *model, size_t shape[4]);

/* The exact pipeline, for comparing implementations: encodes n wedges and
 * decodes each code as the encoder produced it (rounded to IEEE fp16 first
 * when half, as the compressor stores it). Writes the codes as float
 * (n * bcae_model_code_elements()) and per wedge the classifier's sigmoid
 * probabilities (seg), the regression output after its transform (reg) and
 * the reconstruction reg * (seg > threshold) (recon), each
 * BCAE_WEDGE_VOXELS floats in the model's units (log2(ADC+1), or raw ADC
 * for the original BCAE) and bcae_model_output_shape(). Any output may be
 * NULL. */
bcae_status bcae_forward(bcae_codec *codec, const uint16_t *adc, size_t n, int half, float *code,
                         float *seg, float *reg, float *recon, bcae_error *err);

/* Decodes n codes into n wedges of raw ADC (file layout; may be NULL) and/or
 * the reconstruction in log2(ADC+1) (file layout, float; may be NULL). */
bcae_status bcae_decode(bcae_codec *codec, const uint16_t *codes, size_t n, uint16_t *adc,
                        float *log_adc, bcae_error *err);

/* ------------------------------------------------------------------ */
/* TPC simulator (see docs/SIMULATOR.md)                               */
/* ------------------------------------------------------------------ */

#define BCAE_SIM_SECTORS 12
#define BCAE_SIM_SIDES 2
#define BCAE_SIM_WEDGES_PER_EVENT (BCAE_SIM_SECTORS * BCAE_SIM_SIDES)

typedef struct bcae_sim_config {
    /* Collision */
    double dndeta;            /* charged particles per unit pseudorapidity, central Au+Au */
    double dndeta_spread;     /* relative event-to-event spread of dndeta (centrality) */
    double eta_max;           /* particles generated in |eta| < eta_max */
    double vertex_sigma_cm;   /* Gaussian z spread of the collision vertex */
    double pileup_mean;       /* mean number of pile-up collisions in the drift window */
    double pileup_dndeta;     /* mean dndeta of a (minimum-bias) pile-up collision */
    double mean_pt_gev;       /* mean transverse momentum of the pT spectrum */
    double looper_per_track;  /* low-momentum secondary electrons per primary track */
    /* Detector */
    double bfield_t;          /* solenoid field */
    double r_inner_cm, r_outer_cm; /* radial extent of the 16 outer layers */
    double half_length_cm;    /* drift length of one side */
    double gain;              /* mean ADC counts above pedestal at the pulse peak, summed over
                                 pads, for a minimum-ionising crossing of one pad row */
    double diffusion_t_cm;    /* transverse diffusion, cm per sqrt(drift cm) */
    double diffusion_l;       /* longitudinal diffusion, time bins per sqrt(drift cm) */
    double pad_response_cm;   /* sigma of the charge cloud at the pads (GEMs, pad coupling), cm */
    double shaping_bins;      /* peaking time of the shaper, in time bins */
    double noise_adc;         /* sigma of the electronics noise, ADC counts */
    double pedestal_adc;      /* pedestal: the ADC value of no signal, kept in the data */
    /* Added by the calibration against real data (docs/SIMULATOR.md) */
    double absorber_radius_cm; /* particles stop here (calorimeter), not at the pad rows' edge */
    double electrons_per_cm;  /* ionisation electrons per cm of a minimum-ionising track */
    double clusters_per_cm;   /* primary ionising collisions per cm of it */
    double cluster_size_max;  /* electrons of the largest cluster (delta electron) */
    double looper_cage_fraction; /* share of secondary electrons born in the outer field cage */
    double polya_theta;       /* GEM gain fluctuation: Polya parameter of one electron's avalanche */
    double zs_threshold_adc;  /* zero suppression: a sample above pedestal + this is signal */
    double zs_presamples;     /* samples kept before a run of signal samples */
    double zs_postsamples;    /* samples kept after it */
    double zs_min_samples;    /* samples kept from a run's first signal sample on, at least */
    double pad_zigzag;        /* 1: zigzag pads share charge linearly; 0: plain pads */
} bcae_sim_config;

void bcae_sim_config_default(bcae_sim_config *cfg);
/* Knobs by name (the field names above), range-checked. */
bcae_status bcae_sim_config_set(bcae_sim_config *cfg, const char *name, double value,
                                bcae_error *err);
bcae_status bcae_sim_config_get(const bcae_sim_config *cfg, const char *name, double *value,
                                bcae_error *err);
/* Name and one-line description of knob i; returns 0 past the last one. */
int bcae_sim_knob_info(int i, const char **name, const char **help);

typedef struct bcae_sim_event_info {
    int primary_tracks;    /* charged particles of the triggered collision */
    int pileup_collisions; /* collisions within one drift time of it */
    int pileup_tracks;
    int loopers;           /* low-momentum secondary electrons */
    double vertex_z_cm;
} bcae_sim_event_info;

/* A simulator holds the configuration and the event-sized work buffers
 * (~80 MB), so that a sequence of events allocates once. */
typedef struct bcae_simulator bcae_simulator;

/* Checks the configuration (BCAE_ERR_INVALID_ARGUMENT naming the knob). */
bcae_status bcae_simulator_create(const bcae_sim_config *cfg, bcae_simulator **out,
                                  bcae_error *err);
void bcae_simulator_destroy(bcae_simulator *sim);

/* Simulates event number `event` of the sequence seeded by `seed` into
 * wedges[24 * BCAE_WEDGE_VOXELS], wedge index sector * 2 + side (side 0:
 * z < 0). Deterministic for (configuration, seed, event) whatever the
 * thread count (`threads` <= 0: OpenMP's default). `info` may be NULL. */
bcae_status bcae_simulator_run(bcae_simulator *sim, uint64_t seed, uint64_t event,
                               uint16_t *wedges, int threads, bcae_sim_event_info *info,
                               bcae_error *err);

/* ------------------------------------------------------------------ */
/* Training (SPEC section 4; docs/TRAINING.md)                         */
/* ------------------------------------------------------------------ */

/* Batches from a dataset, the focal and masked-L1 losses with the dynamic
 * coefficient, AdamW, the step schedule, per-epoch validation, a CSV log,
 * and checkpoints that resume to the identical trajectory (same data order,
 * optimizer state and coefficient; bit-identical for the same thread count). */
typedef struct bcae_train_config {
    const char *data_dir; /* a dataset folder (bcae_dataset_open) */
    const char *arch;     /* "bcae-2d" (default), "bcae++", "bcae-ht", "bcae" */
    int m, n, d;          /* BCAE-2D(m, n, d); 0: (4, 8, 3) */
    int features[4];      /* 3D encoder widths; 0: the architecture's own */
    float clf_threshold;  /* 0: 0.5 */
    int num_epochs, num_warmup_epochs, sched_steps;
    float sched_gamma;
    int batch_size;
    float learning_rate;
    long batches_per_epoch;            /* 0: all full batches of the train split */
    long validation_batches_per_epoch; /* batches of the test split, 0: none */
    uint64_t seed;
    int shuffle;
    int threads;
    float clf_bias_init; /* probability p: classifier output bias = logit(p); <= 0: default init */
    const char *init;    /* weights to start from, or NULL */
    const char *out;     /* the trained model, rewritten after every epoch */
    const char *log_path;        /* CSV, one row per step, or NULL */
    const char *checkpoint_path; /* NULL: OUT.ckpt */
    long checkpoint_every;       /* steps; 0: only at the end of each epoch */
    const char *resume;          /* checkpoint to continue from, or NULL */
    long max_steps;              /* stop (with a checkpoint) once the run reaches this
                                    global step; 0: run all epochs */
    bcae_device device;          /* zero = AUTO */
} bcae_train_config;

void bcae_train_config_default(bcae_train_config *c);

typedef struct bcae_train_progress {
    int validation;     /* 0 while training, 1 during validation */
    int epoch;          /* 0-based */
    long step;          /* global training step, 1-based */
    long batch, batches; /* within this epoch / phase */
    double loss, loss_seg, loss_reg, coef, lr;
    double precision, recall; /* running over the epoch / phase */
    double mae;              /* validation: mean |recon - x| */
    double step_seconds;
    int epoch_done; /* set once at the end of each phase */
} bcae_train_progress;

typedef void (*bcae_train_callback)(void *ctx, const bcae_train_progress *p);

bcae_status bcae_train(const bcae_train_config *cfg, bcae_train_callback cb, void *ctx,
                       bcae_error *err);

/* ------------------------------------------------------------------ */
/* Wedge statistics: how TPC data look (docs/SIMULATOR.md "Statistics") */
/* ------------------------------------------------------------------ */

/* The statistics that compare simulated with real wedges, each defined
 * exactly in docs/SIMULATOR.md. Scalars are indexed by this enum. */
typedef enum bcae_stats_scalar {
    BCAE_STATS_OCCUPANCY_MEAN = 0, /* non-zero fraction of a wedge: mean over wedges */
    BCAE_STATS_OCCUPANCY_MIN,
    BCAE_STATS_OCCUPANCY_MAX,
    BCAE_STATS_LOG_MEAN,           /* log2(ADC+1) of the non-zero voxels: mean */
    BCAE_STATS_LOG_MEDIAN,         /* ... nearest-rank percentiles */
    BCAE_STATS_LOG_P90,
    BCAE_STATS_LOG_P99,
    BCAE_STATS_SATURATED,          /* fraction of non-zero voxels at ADC 1023 */
    BCAE_STATS_Z_RUN_MEAN,         /* runs of non-zero voxels along z: mean length */
    BCAE_STATS_Z_RUN_P90,          /* ... 90th percentile of the length */
    BCAE_STATS_Z_RUN_ONE,          /* ... fraction of runs of length 1 */
    BCAE_STATS_AZ_RUN_MEAN,        /* runs along the azimuth: mean width */
    BCAE_STATS_AZ_RUN_ONE,         /* ... fraction of width 1 */
    BCAE_STATS_ISOLATED,           /* fraction of non-zero voxels with no non-zero 6-neighbour */
    BCAE_STATS_NEXT_LAYER,         /* P(layer l+1 non-zero | layer l non-zero), same pad and bin */
    BCAE_STATS_LAYER_RATIO,        /* non-zero voxels in layer 15 / in layer 0 */
    BCAE_STATS_SCALARS
} bcae_stats_scalar;

/* The histogram of log2(ADC+1) over the non-zero voxels: 16 bins of 0.25
 * from 6.0 to 10.0 (the last one closed, holding ADC 1023). */
#define BCAE_STATS_HIST_BINS 16
#define BCAE_STATS_HIST_LO 6.0
#define BCAE_STATS_HIST_WIDTH 0.25

/* Counts gathered over any number of wedges: integers (and the occupancy
 * extremes), so that accumulators of disjoint sets merge exactly. */
typedef struct bcae_stats_acc {
    uint64_t wedges;
    double occupancy_sum, occupancy_min, occupancy_max;
    uint64_t adc[BCAE_ADC_MAX + 1];        /* voxels by ADC value ([0] = zero voxels) */
    uint64_t z_runs[BCAE_WEDGE_Z + 1];     /* runs along z by length */
    uint64_t az_runs[BCAE_WEDGE_AZIMUTH + 1]; /* runs along the azimuth by width */
    uint64_t isolated;
    uint64_t layer_nonzero[BCAE_WEDGE_LAYERS];
    uint64_t layer_pairs_from; /* non-zero voxels in layers 0..14 */
    uint64_t layer_pairs_both; /* ... whose voxel in the next layer is non-zero too */
} bcae_stats_acc;

/* The statistics of a set of wedges. A scalar is NaN where it is undefined
 * (no non-zero voxel, no run, an empty layer 0) or, in a reference read
 * from a file, unknown. */
typedef struct bcae_stats {
    uint64_t wedges;
    double scalar[BCAE_STATS_SCALARS];
    double hist[BCAE_STATS_HIST_BINS]; /* fractions of the non-zero voxels */
    double below_hist; /* fraction of non-zero voxels below 6.0 (ADC < 64): not in hist */
} bcae_stats;

/* How far a set is from a reference. */
typedef struct bcae_stats_distance {
    double rel[BCAE_STATS_SCALARS]; /* (value - reference) / |reference|; NaN if either unknown */
    int within[BCAE_STATS_SCALARS]; /* 1: within tolerance; 0: not; -1: unknown */
    double tvd;                     /* total-variation distance of the histograms */
    int tvd_within;                 /* tvd <= BCAE_STATS_TVD_TOLERANCE */
} bcae_stats_distance;

/* The calibration's tolerances: every scalar within 10 % of the reference,
 * or within 0.002 absolute for a fraction whose reference is below 0.02;
 * the histograms within a total-variation distance of 0.05. */
#define BCAE_STATS_REL_TOLERANCE 0.10
#define BCAE_STATS_ABS_TOLERANCE 0.002
#define BCAE_STATS_SMALL_FRACTION 0.02
#define BCAE_STATS_TVD_TOLERANCE 0.05

/* Key (e.g. "occupancy_mean", as in JSON) and one-line description of
 * scalar i, and whether it is a fraction; returns 0 past the last one. */
int bcae_stats_scalar_info(int i, const char **key, const char **description,
                           int *is_fraction);

void bcae_stats_init(bcae_stats_acc *acc);
/* Adds one wedge (BCAE_WEDGE_VOXELS values in the file layout);
 * BCAE_ERR_RANGE (acc unchanged) if a value exceeds 1023. */
bcae_status bcae_stats_add(bcae_stats_acc *acc, const uint16_t *adc, bcae_error *err);
/* into += from (from unchanged). */
void bcae_stats_merge(bcae_stats_acc *into, const bcae_stats_acc *from);
/* The statistics of the wedges added so far; BCAE_ERR_INVALID_ARGUMENT if none. */
bcae_status bcae_stats_finish(const bcae_stats_acc *acc, bcae_stats *out, bcae_error *err);
/* Relative differences, tolerances and the histograms' distance of `a`
 * from the reference `ref`. */
void bcae_stats_compare(const bcae_stats *a, const bcae_stats *ref, bcae_stats_distance *d);

#ifdef __cplusplus
}
#endif
#endif /* BCAE_H */
