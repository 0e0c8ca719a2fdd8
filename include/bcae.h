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
#include <stdio.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Every function declared here, and nothing else, is exported from the
 * shared library: its linker version script lists the names on the lines
 * that start with BCAE_API (so the name goes on that line; CMakeLists.txt,
 * checked both ways by tests/exported_symbols.py). The attribute keeps them
 * exported in a build with -fvisibility=hidden too, and is harmless to
 * callers and to static linking; define BCAE_API first to override it. */
#ifndef BCAE_API
#if defined(__GNUC__) && __GNUC__ >= 4
#define BCAE_API __attribute__((visibility("default")))
#else
#define BCAE_API
#endif
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
BCAE_API const char *bcae_strerror(bcae_status status);
/* "MAJOR.MINOR.PATCH" */
BCAE_API const char *bcae_version(void);

/* ------------------------------------------------------------------ */
/* Communicators: one job on several processes (docs/SCALING.md)       */
/* ------------------------------------------------------------------ */

/* The few collective operations the trainer and the parallel container
 * writer need, as a table of functions over an implementation's context,
 * so that nothing in the library calls MPI directly: the MPI implementation
 * is one module (bcae_comm_mpi_init), built with -DBCAE_MPI=ON, and a
 * caller may supply its own. A communicator is always passed in (a field of
 * bcae_train_config, an argument); NULL everywhere means one process, rank
 * 0 of 1 (bcae_comm_serial). Collective operations must be called by every
 * rank in the same order. Each returns a status; an implementation's errors
 * carry its message. */
typedef struct bcae_comm bcae_comm;

typedef struct bcae_comm_ops {
    /* x[0..n) := the element-wise sum (max) over the ranks, on every rank. */
    bcae_status (*allreduce_sum_f64)(const bcae_comm *c, double *x, size_t n, bcae_error *err);
    bcae_status (*allreduce_sum_f32)(const bcae_comm *c, float *x, size_t n, bcae_error *err);
    bcae_status (*allreduce_max_f64)(const bcae_comm *c, double *x, size_t n, bcae_error *err);
    /* bytes of buf from rank root to every rank. */
    bcae_status (*broadcast)(const bcae_comm *c, void *buf, size_t bytes, int root,
                             bcae_error *err);
    /* all[r] := rank r's `mine`, on every rank (all has size entries). */
    bcae_status (*allgather_u64)(const bcae_comm *c, uint64_t mine, uint64_t *all,
                                 bcae_error *err);
    bcae_status (*barrier)(const bcae_comm *c, bcae_error *err);
    /* A file every rank writes at its own offsets: open (collective) an
     * existing file for writing, write at an offset (independent), close
     * (collective, data on disk when it returns). */
    bcae_status (*file_open)(const bcae_comm *c, const char *path, void **file, bcae_error *err);
    bcae_status (*file_write_at)(const bcae_comm *c, void *file, uint64_t offset, const void *buf,
                                 size_t len, bcae_error *err);
    bcae_status (*file_close)(const bcae_comm *c, void *file, bcae_error *err);
    /* Ends every rank's process (a failure only some ranks saw). */
    void (*abort)(const bcae_comm *c, int code);
    /* Frees ctx (bcae_comm_free). */
    void (*destroy)(bcae_comm *c);
} bcae_comm_ops;

struct bcae_comm {
    int rank, size; /* this process, 0..size-1; how many */
    const bcae_comm_ops *ops;
    void *ctx; /* the implementation's */
};

/* The one-process communicator (rank 0 of 1): a constant, never freed. */
BCAE_API const bcae_comm *bcae_comm_serial(void);
/* 1 if this library was built with MPI (-DBCAE_MPI=ON), else 0. */
BCAE_API int bcae_comm_mpi_compiled(void);
/* A communicator over MPI_COMM_WORLD (a duplicate of it, so its traffic
 * never meets the caller's). Initialises MPI (threads: funneled, OpenMP
 * inside each rank) unless the caller already did; bcae_comm_free then
 * finalises it. BCAE_ERR_UNSUPPORTED without MPI. */
BCAE_API bcae_status bcae_comm_mpi_init(int *argc, char ***argv, bcae_comm **out,
                                        bcae_error *err);
/* Frees a communicator bcae_comm_mpi_init made (NULL and the serial one are fine). */
BCAE_API void bcae_comm_free(bcae_comm *c);

/* A new file written by every rank of a communicator in rank order, the
 * way bcae_atomic_open writes one: under a temporary name next to `path`,
 * renamed into place by commit, so no reader sees a partial file. Every
 * function is collective. Each write appends, on every rank at once, the
 * ranks' buffers one after another (rank 0's first): the bytes are those
 * of one process writing them in that order. A rank that failed calls
 * abort; the others' write or commit then fails too ("another rank
 * failed"), and the file is discarded. */
typedef struct bcae_shared_file bcae_shared_file;
BCAE_API bcae_status bcae_shared_file_open(const char *path, const bcae_comm *comm,
                                           bcae_shared_file **out, bcae_error *err);
BCAE_API bcae_status bcae_shared_file_write(bcae_shared_file *f, const void *buf, size_t len,
                                            bcae_error *err);
/* The file's size so far (every rank's bytes). */
BCAE_API uint64_t bcae_shared_file_size(const bcae_shared_file *f);
/* Closes, syncs and renames into place; frees f whatever happens. */
BCAE_API bcae_status bcae_shared_file_commit(bcae_shared_file *f, bcae_error *err);
/* Discards the file and frees f (NULL is fine). */
BCAE_API void bcae_shared_file_abort(bcae_shared_file *f);

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

BCAE_API size_t bcae_dtype_size(bcae_dtype dtype);
/* NumPy's little-endian descr of a dtype, e.g. "<u2", "|u1", "<f4". */
BCAE_API const char *bcae_dtype_name(bcae_dtype dtype);
BCAE_API size_t bcae_array_count(const bcae_array *a);
/* Allocates a zeroed array; count * itemsize overflow is an error. */
BCAE_API bcae_status bcae_array_alloc(bcae_array *a, bcae_dtype dtype, int ndim,
                                      const size_t *shape, bcae_error *err);
BCAE_API void bcae_array_free(bcae_array *a);
/* Element i of a numeric array as double. */
BCAE_API double bcae_array_get_f64(const bcae_array *a, size_t i);

/* Reads a .npy file (format 1.0, 2.0 or 3.0; any bool/integer/float dtype,
 * either byte order, C or Fortran order) into native C order. */
BCAE_API bcae_status bcae_npy_read(const char *path, bcae_array *out, bcae_error *err);
/* Same, from bytes in memory (`name` is used in messages). */
BCAE_API bcae_status bcae_npy_read_buffer(const void *buf, size_t len, const char *name,
                                          bcae_array *out, bcae_error *err);
/* Writes a .npy (format 1.0, little-endian, C order) atomically: a
 * temporary file in the same folder, fsync, rename. dtype must be U16
 * or F32. */
BCAE_API bcae_status bcae_npy_write(const char *path, const bcae_array *a, bcae_error *err);

/* ------------------------------------------------------------------ */
/* Files: atomic writes, safe output folders, paths, file kinds        */
/* ------------------------------------------------------------------ */
/* What the CLI uses to write outputs; public so that tools built on the
 * library keep the same promises (docs/SECURITY.md): a reader never sees a
 * partial file, nothing is written outside the chosen output folder, and
 * record names are normalised one way. */

/* A file being written under a temporary name next to its destination.
 * Readers never see a partial file: either the old one or the whole new one.
 * Opened by bcae_atomic_open (a path) or bcae_outdir_create (beneath an
 * output folder; then dirfd >= 0 and the names are relative to it). */
typedef struct bcae_atomic_file {
    FILE *fp;
    char *final_path; /* for messages (and the rename when dirfd < 0) */
    char *temp_path;
    int dirfd;        /* -1, or the folder final_name and temp_name live in */
    char *final_name;
    char *temp_name;
    int no_replace;   /* commit fails if the destination exists */
} bcae_atomic_file;

BCAE_API bcae_status bcae_atomic_open(bcae_atomic_file *f, const char *path, bcae_error *err);
/* Flushes, fsyncs and renames onto the final path; on any failure the
 * temporary file is removed and the destination is untouched. */
BCAE_API bcae_status bcae_atomic_commit(bcae_atomic_file *f, bcae_error *err);
/* Discards the temporary file (safe after a failed commit, and twice). */
BCAE_API void bcae_atomic_abort(bcae_atomic_file *f);

/* Creates a directory and its parents (like mkdir -p). */
BCAE_API bcae_status bcae_mkdir_p(const char *path, bcae_error *err);

/* Joins a and b with one '/' into a fresh string (NULL on OOM). */
BCAE_API char *bcae_path_join(const char *a, const char *b);

/* How bcae_path_normalize treats "..". */
enum {
    /* Manifests: a ".." component anywhere, or a leading '/', is refused,
     * so a manifest cannot name anything outside its folder. */
    BCAE_PATH_STRICT = 0,
    /* Command-line inputs (their stored names): "x/.." cancels, and what
     * would climb above the start, and a leading '/', is dropped, as tar
     * does: `a/../b/w.npy` is stored as `b/w.npy`, `../d/w.npy` as `d/w.npy`. */
    BCAE_PATH_RESOLVE = 1,
};
/* The one lexical normalisation of relative paths (manifest lines, record
 * names): drops empty and "." components and handles ".." as `mode` says,
 * writing components joined by single '/' into out (room for
 * strlen(path) + 1: it never grows). Returns NULL, or why the path is
 * refused (nothing left is refused too). Lexical only: it never looks at
 * the file system. */
BCAE_API const char *bcae_path_normalize(const char *path, int mode, char *out);

/* A set of strings (record paths), to refuse duplicates. */
typedef struct bcae_pathset bcae_pathset;
BCAE_API bcae_pathset *bcae_pathset_new(void);
BCAE_API int bcae_pathset_has(const bcae_pathset *s, const char *path);
/* 1 if added, 0 if it was already there, -1 if out of memory. */
BCAE_API int bcae_pathset_add(bcae_pathset *s, const char *path);
BCAE_API void bcae_pathset_free(bcae_pathset *s);

/* An output folder that files are written beneath at relative paths. The
 * folder itself is followed as given (the user chose it); below it, every
 * component is opened with O_NOFOLLOW, so a symbolic link planted inside
 * (to a folder or a file) can never redirect a write outside it. */
typedef struct bcae_outdir {
    int fd;
    char *path;
} bcae_outdir;

/* Creates the folder if needed (mkdir -p) and opens it. */
BCAE_API bcae_status bcae_outdir_open(bcae_outdir *d, const char *path, bcae_error *err);
BCAE_API void bcae_outdir_close(bcae_outdir *d);
/* Whether rel (a valid record path) exists beneath d, without creating
 * anything: *exists is 1 if its final component exists (as anything,
 * a symbolic link included), else 0. A symbolic link or a non-folder
 * where a folder of rel belongs is an error. */
BCAE_API bcae_status bcae_outdir_exists(const bcae_outdir *d, const char *rel, int *exists,
                               bcae_error *err);
/* Starts writing d/rel atomically: creates the missing folders of rel
 * (refusing a symbolic link or non-folder among them) and a temporary file
 * next to it; bcae_atomic_commit renames it into place. Unless `overwrite`,
 * commit refuses an existing destination (atomically: link, not rename). A
 * symbolic link at the destination is replaced, never followed. */
BCAE_API bcae_status bcae_outdir_create(const bcae_outdir *d, const char *rel, int overwrite,
                               bcae_atomic_file *f, bcae_error *err);


/* Writes a (U16 or F32) into f as bcae_npy_write would and commits f; on
 * any failure f is discarded (its temporary file removed). */
BCAE_API bcae_status bcae_npy_write_atomic(bcae_atomic_file *f, const bcae_array *a, bcae_error *err);

typedef enum bcae_file_kind {
    BCAE_FILE_UNKNOWN = 0,
    BCAE_FILE_EMPTY,
    BCAE_FILE_NPY,         /* \x93NUMPY (or a file cut inside it) */
    BCAE_FILE_BCAE,        /* BCAE (or a file cut inside it) */
    BCAE_FILE_SAFETENSORS, /* a plausible u64 header length, then '{' */
    BCAE_FILE_ZIP,         /* .npz, PyTorch .pth / .pt */
    BCAE_FILE_ZSTD,
    BCAE_FILE_GZIP,
    BCAE_FILE_PNG,
    BCAE_FILE_TEXT,        /* printable ASCII and whitespace only */
} bcae_file_kind;

/* Bytes sniffed from the start of a file. */
#define BCAE_SNIFF_BYTES 16

/* The kind that the first n bytes of a file say (n may be less than
 * BCAE_SNIFF_BYTES for a short file). */
BCAE_API bcae_file_kind bcae_sniff_bytes(const unsigned char *b, size_t n);
/* Opens path (a regular file; anything else is refused before it can
 * block), reads up to BCAE_SNIFF_BYTES into first (*n of them) and tells
 * the kind. */
BCAE_API bcae_status bcae_sniff_file(const char *path, bcae_file_kind *kind, unsigned char *first,
                            size_t *n, bcae_error *err);
/* "a NumPy .npy file", "a .bcae container", "a safetensors file", ... */
BCAE_API const char *bcae_file_kind_name(bcae_file_kind k);


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
BCAE_API bcae_status bcae_wedge_from_array(const bcae_array *a, const char *name,
                                           uint16_t *adc, bcae_error *err);
/* Reads a wedge .npy file: bcae_npy_read + bcae_wedge_from_array. */
BCAE_API bcae_status bcae_wedge_load(const char *path, uint16_t *adc, bcae_error *err);
/* Writes a uint16 wedge .npy atomically. */
BCAE_API bcae_status bcae_wedge_save(const char *path, const uint16_t *adc, bcae_error *err);
/* adc (192,249,16) -> x (16,192,256) = log2(adc+1), z zero-padded. */
BCAE_API void bcae_wedge_to_model(const uint16_t *adc, float *x);
/* x (16,192,256) -> adc (192,249,16): crop z, round(2^x - 1) clamped to
 * [0, 1023]; NaN maps to 0. */
BCAE_API void bcae_wedge_from_model(const float *x, uint16_t *adc);

/* ------------------------------------------------------------------ */
/* Datasets: a folder with train.txt / test.txt manifests              */
/* ------------------------------------------------------------------ */

typedef struct bcae_dataset bcae_dataset;

/* `dir` is the folder holding the manifests, or one whose `outer/` does.
 * `split` names the manifest: "train" reads train.txt. */
BCAE_API bcae_status bcae_dataset_open(const char *dir, const char *split,
                                       bcae_dataset **out, bcae_error *err);
BCAE_API void bcae_dataset_close(bcae_dataset *ds);
BCAE_API size_t bcae_dataset_size(const bcae_dataset *ds);
/* The manifest's relative path of wedge i. */
BCAE_API const char *bcae_dataset_relpath(const bcae_dataset *ds, size_t i);
/* The root the relative paths are relative to. */
BCAE_API const char *bcae_dataset_root(const bcae_dataset *ds);
BCAE_API bcae_status bcae_dataset_load(const bcae_dataset *ds, size_t i, uint16_t *adc,
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
BCAE_API void bcae_metrics_log(const float *x, const float *v, size_t n, bcae_metrics *m);
/* Raw-ADC wedges, compared in log2(ADC+1) space. */
BCAE_API void bcae_metrics_adc(const uint16_t *orig, const uint16_t *recon, size_t n,
                               bcae_metrics *m);

/* ------------------------------------------------------------------ */
/* Models and the codec: wedges <-> fp16 codes                         */
/* ------------------------------------------------------------------ */

typedef struct bcae_model bcae_model;

/* Loads a weights file (safetensors with bcae metadata; docs/FORMATS.md). */
BCAE_API bcae_status bcae_model_load(const char *path, bcae_model **out, bcae_error *err);
BCAE_API void bcae_model_free(bcae_model *model);
/* "bcae-2d" */
BCAE_API const char *bcae_model_arch(const bcae_model *model);
/* SHA-256 of the weights file's tensor data: names the model in containers. */
BCAE_API void bcae_model_fingerprint(const bcae_model *model, uint8_t out[32]);
/* Shape of one wedge's code, e.g. (32, 24, 32); returns the number of dims. */
BCAE_API int bcae_model_code_shape(const bcae_model *model, size_t shape[4]);
/* Elements of one wedge's code (each stored as an IEEE fp16). */
BCAE_API size_t bcae_model_code_elements(const bcae_model *model);
/* The classifier's threshold h (SPEC section 2): a voxel is reconstructed
 * as a hit where the classifier's probability exceeds it. Stored in the
 * weights file's metadata (clf_threshold); chosen on validation data with
 * bcae_classifier_histogram + bcae_classifier_breakeven (`bcae threshold`).
 * Setting it takes effect on the next decode of any codec of this model; the
 * fingerprint (tensor data only) does not change. BCAE_ERR_RANGE unless
 * 0 < h < 1. */
BCAE_API float bcae_model_threshold(const bcae_model *model);
BCAE_API bcae_status bcae_model_set_threshold(bcae_model *model, float h, bcae_error *err);
/* Writes the model (weights and metadata) as safetensors, atomically. */
BCAE_API bcae_status bcae_model_save(const bcae_model *model, const char *path, bcae_error *err);

/* The model to use when none is named (the CLI without --model, the Python
 * package's Model(), the HDF5 filter plugin): $BCAE_MODEL when it is set and
 * not empty (even if that file is missing: loading it then says so, rather
 * than falling back silently), else the default model installed with the
 * library (PREFIX/share/bcae/models/bcae2d-default.safetensors), else the
 * one in the source tree the library was built from. Copies the path into
 * out[size] (4096 bytes hold any of them); BCAE_ERR_IO naming the places
 * looked at when none is readable, BCAE_ERR_RANGE when out is too small. */
BCAE_API bcae_status bcae_default_model_path(char *out, size_t size, bcae_error *err);

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
BCAE_API const char *bcae_precision_name(bcae_precision p);
/* Parses a name (also "half" = bf16); BCAE_ERR_INVALID_ARGUMENT if unknown. */
BCAE_API bcae_status bcae_precision_parse(const char *name, bcae_precision *out, bcae_error *err);

/* Where the networks run. AUTO: a CUDA device when the build has the CUDA
 * backend and one works, else the CPU. CUDA: a CUDA device or an error (the
 * CUDA backend is a seam only so far: see docs/CUDA.md). */
typedef enum bcae_device {
    BCAE_DEVICE_AUTO = 0,
    BCAE_DEVICE_CPU = 1,
    BCAE_DEVICE_CUDA = 2
} bcae_device;

/* "auto", "cpu", "cuda"; NULL for an unknown value. */
BCAE_API const char *bcae_device_name(bcae_device d);
/* Parses one of those names; BCAE_ERR_INVALID_ARGUMENT if unknown. */
BCAE_API bcae_status bcae_device_parse(const char *name, bcae_device *out, bcae_error *err);
/* 1 when this build has the backend for `d` compiled in (CPU and AUTO
 * always; CUDA only when built with -DBCAE_CUDA=ON), else 0. */
BCAE_API int bcae_device_compiled(bcae_device d);
/* Whether work can run on `d` now: BCAE_OK for CPU and AUTO (which falls
 * back to the CPU); for CUDA, BCAE_OK once the backend has started on a
 * device (and been released again), else the reason none is usable. */
BCAE_API bcae_status bcae_device_available(bcae_device d, bcae_error *err);

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
    /* Arithmetic of the decoders (zero-initialised = FP32). BF16: BCAE-2D's
     * fused decoders in bf16 (bf16 activations and weights, fp32 sums; CPUs
     * with AVX-512, bf16 products with AVX512-BF16): about twice as fast,
     * ~1e-2 relative difference in the heads' outputs (docs/PRECISION.md);
     * BCAE_ERR_UNSUPPORTED where it cannot run. INT8 is refused. */
    bcae_precision decoder_precision;
} bcae_codec_options;

#define BCAE_CALIBRATION_SEED 20261124u

/* A model bound to a compute engine and buffers for one batch size.
 * Several codecs may share one model; one codec is used by one thread at
 * a time. */
typedef struct bcae_codec bcae_codec;

BCAE_API bcae_status bcae_codec_create(const bcae_model *model, const bcae_codec_options *opt,
                                       bcae_codec **out, bcae_error *err);
BCAE_API void bcae_codec_free(bcae_codec *codec);

/* Encodes n wedges (n * BCAE_WEDGE_VOXELS uint16 ADC in the file layout,
 * validated to [0, 1023]) into n codes of bcae_model_code_elements() IEEE
 * fp16 values each (as uint16 bit patterns). */
BCAE_API bcae_status bcae_encode(bcae_codec *codec, const uint16_t *adc, size_t n, uint16_t *codes,
                                 bcae_error *err);
/* Shape of one wedge's cropped one-channel network output (bcae_forward's
 * seg, reg, recon), e.g. (16, 192, 249) for BCAE-2D, (1, 16, 192, 249) for
 * BCAE++ / BCAE-HT, (1, 192, 249, 16) for BCAE; returns the number of dims.
 * The product is always BCAE_WEDGE_VOXELS. */
BCAE_API int bcae_model_output_shape(const bcae_model *model, size_t shape[4]);

/* The exact pipeline, for comparing implementations: encodes n wedges and
 * decodes each code as the encoder produced it (rounded to IEEE fp16 first
 * when half, as the compressor stores it). Writes the codes as float
 * (n * bcae_model_code_elements()) and per wedge the classifier's sigmoid
 * probabilities (seg), the regression output after its transform (reg) and
 * the reconstruction reg * (seg > threshold) (recon), each
 * BCAE_WEDGE_VOXELS floats in the model's units (log2(ADC+1), or raw ADC
 * for the original BCAE) and bcae_model_output_shape(). Any output may be
 * NULL. */
BCAE_API bcae_status bcae_forward(bcae_codec *codec, const uint16_t *adc, size_t n, int half,
                                  float *code, float *seg, float *reg, float *recon,
                                  bcae_error *err);

/* The classifier's operating curve: runs n wedges through the exact
 * pipeline (fp16 code, as bcae_forward with half = 1) and adds, per bin of
 * the classifier's probability (nbins equal bins of [0, 1]), the number of
 * voxels (all[b]) and of hits, ADC > 0, among them (hits[b]). The arrays
 * accumulate over calls (zero them first). */
BCAE_API bcae_status bcae_classifier_histogram(bcae_codec *codec, const uint16_t *adc, size_t n,
                                               uint64_t *hits, uint64_t *all, size_t nbins,
                                               bcae_error *err);
/* Pooled precision and recall from those histograms when voxels of the
 * bins from index k on are called hits (threshold k / nbins). Either output
 * may be NULL; a rate with no voxels to divide by is 1. */
BCAE_API void bcae_classifier_rates(const uint64_t *hits, const uint64_t *all, size_t nbins,
                                    size_t k, double *precision, double *recall);
/* The break-even threshold: the bin edge k / nbins (0 < k < nbins) at which
 * the number of voxels called hits comes nearest the number of true hits,
 * so precision equals recall there and the reconstruction keeps the
 * wedges' occupancy. Returns k (1 when there are no hits). */
BCAE_API size_t bcae_classifier_breakeven(const uint64_t *hits, const uint64_t *all, size_t nbins);

/* Decodes n codes into n wedges of raw ADC (file layout; may be NULL) and/or
 * the reconstruction in log2(ADC+1) (file layout, float; may be NULL). */
BCAE_API bcae_status bcae_decode(bcae_codec *codec, const uint16_t *codes, size_t n, uint16_t *adc,
                                 float *log_adc, bcae_error *err);

/* ------------------------------------------------------------------ */
/* The sparse codec: error-bounded, learning-free (docs/SPARSE.md)     */
/* ------------------------------------------------------------------ */

/* One wedge <-> one self-contained stream. The occupancy (which voxels are
 * non-zero) is coded exactly; the non-zero values are quantised so that
 * every voxel of the decoded uint16 wedge satisfies
 *     |log2(out + 1) - log2(in + 1)| <= max_error
 * (the integer rounding included; max_error 0 is lossless), and both are
 * coded by a binary arithmetic coder with adaptive context models. Any
 * uint16 wedge is accepted (values above 1023 or below 64 too). Integer
 * arithmetic only in the stream's coding: the bytes are the same on every
 * platform. */

/* The largest bound: 8 (a factor 256 either way). */
#define BCAE_SPARSE_MAX_ERROR 8.0

typedef struct bcae_sparse_options {
    double max_error; /* E in log2(ADC+1) units, 0..BCAE_SPARSE_MAX_ERROR; 0 = lossless */
    /* > 0: ignore max_error and, per wedge, use the finest bound on a grid of
     * 1/512 whose stream is at most 2 * BCAE_WEDGE_VOXELS / ratio bytes (the
     * coarsest, 8, if none is: bcae_sparse_info.met says so). */
    double ratio;
} bcae_sparse_options;

typedef struct bcae_sparse_info {
    double max_error;       /* the bound the stream guarantees */
    uint64_t mult;          /* its exact form in the stream: 2^max_error * 2^32, rounded down */
    size_t hits;            /* non-zero voxels */
    size_t levels;          /* quantiser levels over 1..65535 */
    size_t occupancy_bytes; /* coded occupancy */
    size_t value_bytes;     /* coded values */
    size_t total_bytes;     /* the stream: header, sections, CRC */
    int stored;             /* 1: stored raw, coding would have been larger */
    int met;                /* ratio mode: 1 if the ratio was met (else 1 too) */
} bcae_sparse_info;

/* The longest stream bcae_sparse_encode writes (a wedge stored raw). */
BCAE_API size_t bcae_sparse_bound(void);

/* Working memory (~6 MB) for encoding and decoding one wedge at a time;
 * reusable, used by one thread at a time. */
typedef struct bcae_sparse_coder bcae_sparse_coder;

BCAE_API bcae_status bcae_sparse_coder_create(bcae_sparse_coder **out, bcae_error *err);
BCAE_API void bcae_sparse_coder_free(bcae_sparse_coder *coder);

/* Encodes a wedge (BCAE_WEDGE_VOXELS uint16 in the file layout) into
 * out[cap] (cap >= bcae_sparse_bound() always suffices); *len receives the
 * stream's length, info (may be NULL) what it holds. coder may be NULL (a
 * temporary one is made). */
BCAE_API bcae_status bcae_sparse_encode(bcae_sparse_coder *coder, const uint16_t *wedge,
                                        const bcae_sparse_options *opt, uint8_t *out, size_t cap,
                                        size_t *len, bcae_sparse_info *info, bcae_error *err);
/* Decodes a stream into wedge[BCAE_WEDGE_VOXELS]. A damaged or truncated
 * stream is refused (BCAE_ERR_FORMAT; a CRC covers it) and never read out of
 * bounds. coder may be NULL. */
BCAE_API bcae_status bcae_sparse_decode(bcae_sparse_coder *coder, const uint8_t *in, size_t len,
                                        uint16_t *wedge, bcae_sparse_info *info, bcae_error *err);
/* Reads a stream's header only (no CRC check): its bound, hits and sizes. */
BCAE_API bcae_status bcae_sparse_peek(const uint8_t *in, size_t len, bcae_sparse_info *info,
                                      bcae_error *err);

/* Many wedges on threads, one coder per thread (what `bcae compress --codec
 * sparse` does): wedge i (wedges + i * BCAE_WEDGE_VOXELS) into out + i *
 * stride (stride >= bcae_sparse_bound()), its length in len[i] and, if info
 * is not NULL, its info in info[i]. threads: 0 = OpenMP's default (all
 * cores), never more than n. Each stream is the one bcae_sparse_encode makes
 * alone. Bad options are refused before any coding; a failure reports the
 * lowest failing wedge, named by its index ("wedge 3: ...") when n > 1. */
BCAE_API bcae_status bcae_sparse_encode_many(const uint16_t *wedges, size_t n,
                                             const bcae_sparse_options *opt, int threads,
                                             uint8_t *out, size_t stride, size_t *len,
                                             bcae_sparse_info *info, bcae_error *err);
/* Stream i (streams[i], lens[i] bytes) into wedges + i * BCAE_WEDGE_VOXELS,
 * on threads as above; every stream is checked as by bcae_sparse_decode,
 * and the lowest damaged one is reported by its index. */
BCAE_API bcae_status bcae_sparse_decode_many(const uint8_t *const *streams, const size_t *lens,
                                             size_t n, int threads, uint16_t *wedges,
                                             bcae_sparse_info *info, bcae_error *err);

/* ------------------------------------------------------------------ */
/* The .bcae container (docs/FORMAT.md)                                */
/* ------------------------------------------------------------------ */

/* The compressed form of a set of wedges ("ctr" in names: the container).
 * A file header names the model that made the codes (its weights'
 * fingerprint and architecture) and the code's shape; then one record per
 * wedge (relative path, original shape, the fp16 code, raw or zstd, and
 * CRC-32Cs); then a 16-byte end marker that counts the records, so that a
 * file cut at a record boundary is still seen to be incomplete. A file of
 * the sparse codec (format version 2) has no model: its header says so
 * (code dtype BCAE_CTR_DTYPE_SPARSE) and each record holds one sparse
 * stream (bcae_sparse_encode) as it is.
 *
 * Streaming both ways: the writer emits each record as it is appended, the
 * reader decodes one record at a time, and neither ever holds more than one
 * record. A reader's allocations are bounded by the code size its header
 * declares (itself capped), never by a length field alone.
 *
 * Errors name the file, the record (index from 0, and its path once that is
 * known) and what is wrong: "x.bcae: record 3 (\"12-2_0-0/a.npy\"): CRC
 * mismatch ...". Records returned before an error were fully verified:
 * they are the file's intact prefix. */

/* The newest format version, and the versions this code reads: 1 (BCAE
 * codes) and 2 (version 1 + files of sparse streams). The writer writes the
 * lowest version that describes the file: 1 for codes, so that every
 * version-1 reader still reads them; 2 for sparse streams, which version-1
 * readers refuse as an unsupported version (docs/FORMAT.md section 10). */
#define BCAE_CTR_VERSION 2
#define BCAE_CTR_VERSION_CODES 1
#define BCAE_CTR_VERSION_SPARSE 2
/* The first 4 bytes of every .bcae file ("BCAE"): how `bcae inspect` tells
 * a container from a .npy without trusting the extension. */
#define BCAE_CTR_MAGIC "BCAE"
#define BCAE_CTR_MAGIC_LEN 4

#define BCAE_CTR_MAX_NDIM 4      /* of the code and of the original array */
#define BCAE_CTR_ARCH_MAX 64     /* bytes of the architecture string */
#define BCAE_CTR_PATH_MAX 4096   /* bytes of a record's relative path */
/* The largest code a file may declare: BCAE codes are ~50 KiB, so this only
 * bounds what a hostile header can make a reader allocate. */
#define BCAE_CTR_MAX_CODE_BYTES ((size_t)64 << 20)
/* Element types, by their on-disk codes; SPARSE: each record holds a
 * sparse stream (version 2). */
enum { BCAE_CTR_DTYPE_U16 = 1, BCAE_CTR_DTYPE_F16 = 2, BCAE_CTR_DTYPE_SPARSE = 3 };
/* Payload encodings; SPARSE: the payload is a sparse stream as it is. */
enum { BCAE_CTR_RAW = 0, BCAE_CTR_ZSTD = 1, BCAE_CTR_SPARSE = 2 };
/* "sparse": the architecture string of a sparse file. */
#define BCAE_CTR_SPARSE_ARCH "sparse"
/* The longest sparse stream a record may hold: a wedge stored raw
 * (= bcae_sparse_bound()). */
#define BCAE_CTR_STREAM_MAX ((size_t)36 + 2 * BCAE_WEDGE_VOXELS + 4)

/* What the file header says. The writer takes it (version is ignored and
 * written as the lowest that describes the file); the reader fills it. */
typedef struct bcae_ctr_info {
    unsigned version;
    uint8_t fingerprint[32]; /* bcae_model_fingerprint of the model; zeros for sparse */
    char arch[BCAE_CTR_ARCH_MAX + 1]; /* printable ASCII, 1..64 bytes */
    int code_dtype; /* BCAE_CTR_DTYPE_F16, or BCAE_CTR_DTYPE_SPARSE */
    int code_ndim;  /* 1..4; 0 for sparse (no fixed code) */
    size_t code_shape[BCAE_CTR_MAX_NDIM];
} bcae_ctr_info;

/* The header of a file of sparse streams: no model (zero fingerprint),
 * arch "sparse", dtype BCAE_CTR_DTYPE_SPARSE, no code shape. */
BCAE_API void bcae_ctr_sparse_info(bcae_ctr_info *info);

/* Elements of the code (product of code_shape); 0 if the shape is invalid. */
BCAE_API size_t bcae_ctr_code_count(const bcae_ctr_info *info);

/* Checks that a file's header matches the model about to use it: same
 * fingerprint, architecture, code dtype and shape. On a mismatch the
 * message names `name` (the file) and both fingerprints (BCAE_ERR_UNSUPPORTED). */
BCAE_API bcae_status bcae_ctr_check_model(const bcae_ctr_info *file, const bcae_ctr_info *model,
                                          const char *name, bcae_error *err);

/* Checks a record path: 1..4096 bytes of valid UTF-8, no control
 * characters, relative ('/'-separated, no empty, "." or ".." component).
 * `len` is its length in bytes (a NUL inside is an error). */
BCAE_API bcae_status bcae_ctr_check_path(const char *path, size_t len, bcae_error *err);

/* One record as read. */
typedef struct bcae_ctr_record {
    uint64_t index;  /* from 0, in file order */
    uint64_t offset; /* of the record's first byte in the file */
    char path[BCAE_CTR_PATH_MAX + 1];
    int orig_dtype;  /* BCAE_CTR_DTYPE_U16 */
    int orig_ndim;   /* 1..4 */
    size_t orig_shape[BCAE_CTR_MAX_NDIM];
    int encoding;    /* BCAE_CTR_RAW, BCAE_CTR_ZSTD or BCAE_CTR_SPARSE */
    size_t raw_bytes;    /* code bytes: 2 x bcae_ctr_code_count; sparse: the stream's */
    size_t stored_bytes; /* payload bytes in the file */
    size_t record_bytes; /* the whole record: 44 + path + payload */
} bcae_ctr_record;

/* Writing. */

typedef struct bcae_ctr_writer bcae_ctr_writer;

/* Starts a new file: writes to a temporary name next to `path` and renames
 * it on bcae_ctr_writer_finish, so no reader ever sees a partial file and
 * an abort (or a crash) leaves no file at `path` (an existing one stays). */
BCAE_API bcae_status bcae_ctr_writer_open(const char *path, const bcae_ctr_info *info,
                                          bcae_ctr_writer **out, bcae_error *err);

/* Starts a new file that every rank of `comm` writes together (MPI-IO
 * where comm is MPI's): collective, like bcae_ctr_writer_flush and
 * bcae_ctr_writer_finish on it. Appends go to memory; each flush writes
 * every rank's records since the last one after all of rank 0's, then rank
 * 1's, and so on, so the file is byte for byte the one a single writer
 * makes from the records in that order (docs/SCALING.md). Rank 0 writes
 * the header and the end marker. Paths are checked against this rank's own
 * records only: the caller keeps them distinct across ranks. A rank that
 * fails calls bcae_ctr_writer_abort: the others' next flush or finish
 * fails too, and no file is left. bcae_ctr_writer_stats gives the whole
 * file as of the last flush. comm NULL: one process. */
BCAE_API bcae_status bcae_ctr_writer_open_shared(const char *path, const bcae_ctr_info *info,
                                                 const bcae_comm *comm, bcae_ctr_writer **out,
                                                 bcae_error *err);
/* A shared writer: writes what every rank appended since the last flush
 * (collective). Any other writer: nothing to do. Memory holds at most one
 * flush's records. */
BCAE_API bcae_status bcae_ctr_writer_flush(bcae_ctr_writer *w, bcae_error *err);

/* Flag of bcae_ctr_append_open: if the file lacks its end marker because
 * an earlier append was interrupted, drop the incomplete tail (after
 * verifying every record before it) instead of refusing. */
#define BCAE_CTR_APPEND_REPAIR 1

/* Opens an existing file to add records in place: checks its header
 * against `model` (bcae_ctr_check_model) and that it ends with a valid end
 * marker, which the first appended record overwrites; finish writes a new
 * one. This reads the header, the last 16 bytes and each record's header
 * and path (seeking over the payloads: their paths may not be repeated),
 * never the payloads. The file is locked (fcntl) against a second appender. If an
 * append fails or is aborted, the file is restored to its old length and
 * end marker. A crash in between leaves the old records intact, then zero
 * or more complete new records, then possibly a partial one, and no end
 * marker: readers return every intact record and then fail with
 * "truncated", and only BCAE_CTR_APPEND_REPAIR appends to it again. */
BCAE_API bcae_status bcae_ctr_append_open(const char *path, const bcae_ctr_info *model, int flags,
                                          bcae_ctr_writer **out, bcae_error *err);

/* What bcae_ctr_repair found and did. */
typedef struct bcae_ctr_repair_report {
    uint64_t records;       /* intact records in the file (kept) */
    uint64_t file_bytes;    /* the file's size now, end marker included */
    uint64_t dropped_bytes; /* the incomplete tail cut off */
    int was_complete;       /* it had a valid end marker: left as it was */
} bcae_ctr_repair_report;

/* Repairs a file that an interrupted write or append left without its end
 * marker: verifies every record (both CRCs, decoding), cuts the file after
 * the last intact one and writes an end marker there (cut, marker, fsync:
 * a crash in between leaves it torn and repairable again, never half
 * repaired). A complete file is verified and left as it is. Damage of any
 * other kind (a CRC mismatch, a bad field) is refused with the reader's
 * message: dropping records that are there but damaged is not a repair.
 * Takes the same lock as an appender. */
BCAE_API bcae_status bcae_ctr_repair(const char *path, bcae_ctr_repair_report *rep,
                                     bcae_error *err);

/* Adds one record: `code_f16` holds bcae_ctr_code_count(info) IEEE binary16
 * values (native uint16 bit patterns); orig_shape the wedge's shape
 * (orig_ndim 1..4, uint16 ADC). zstd_level 0 stores the code raw; 1..22
 * compresses it with zstd at that level, falling back to raw if that would
 * not be smaller. A path already in the file (appending: among the old
 * records too) is refused (BCAE_ERR_INVALID_ARGUMENT), as are invalid
 * paths. After a write failure the writer only accepts abort. */
BCAE_API bcae_status bcae_ctr_writer_append(bcae_ctr_writer *w, const char *relpath,
                                            const size_t *orig_shape, int orig_ndim,
                                            const uint16_t *code_f16, int zstd_level,
                                            bcae_error *err);

/* Adds one record of a sparse file: `stream` is one sparse stream of len
 * bytes (bcae_sparse_encode), stored as it is (the container does not look
 * inside: bcae_sparse_decode checks it when read), 1..BCAE_CTR_STREAM_MAX
 * bytes. orig_shape as above; a sparse stream holds a wedge, so it must be
 * (192, 249, 16). */
BCAE_API bcae_status bcae_ctr_writer_append_stream(bcae_ctr_writer *w, const char *relpath,
                                                   const size_t *orig_shape, int orig_ndim,
                                                   const uint8_t *stream, size_t len,
                                                   bcae_error *err);

/* Whether a record with this path is in the file already (appending: the
 * old records too), i.e. whether bcae_ctr_writer_append would refuse it:
 * lets a caller refuse before doing the work of encoding. */
BCAE_API int bcae_ctr_writer_has_path(const bcae_ctr_writer *w, const char *relpath);

/* Writes the end marker, fsyncs and (new file) renames into place. Frees w
 * whatever happens; on failure a new file is discarded and an appended one
 * restored. */
BCAE_API bcae_status bcae_ctr_writer_finish(bcae_ctr_writer *w, bcae_error *err);
/* Discards what this writer added and frees it (NULL is fine). */
BCAE_API void bcae_ctr_writer_abort(bcae_ctr_writer *w);

typedef struct bcae_ctr_stats {
    uint64_t records;        /* in the file, earlier ones (append) included */
    uint64_t file_bytes;     /* the file's size once finished (end marker included) */
    uint64_t new_records;    /* appended by this writer */
    uint64_t new_orig_bytes; /* their original arrays at 16 bits per value */
    uint64_t new_bytes;      /* their records' bytes in the file */
    uint64_t repaired_bytes; /* incomplete tail dropped by BCAE_CTR_APPEND_REPAIR */
} bcae_ctr_stats;

BCAE_API void bcae_ctr_writer_stats(const bcae_ctr_writer *w, bcae_ctr_stats *st);

/* Reading. */

typedef struct bcae_ctr_reader bcae_ctr_reader;

/* Opens a regular file and reads and verifies its header. Anything else (a
 * FIFO, a device, a folder) is refused before it can block: the reader
 * needs the file's size to report truncation before allocating. */
BCAE_API bcae_status bcae_ctr_reader_open(const char *path, bcae_ctr_reader **out, bcae_error *err);
/* The same over bytes in memory (not copied: they must outlive the reader;
 * `name` is used in messages). */
BCAE_API bcae_status bcae_ctr_reader_open_mem(const void *buf, size_t len, const char *name,
                                              bcae_ctr_reader **out, bcae_error *err);
BCAE_API const bcae_ctr_info *bcae_ctr_reader_info(const bcae_ctr_reader *r);
/* A hint for progress bars: the record count of a complete file, read from
 * its end marker alone (1 if it has a valid one, else 0: not a regular
 * file, a cut file). The reader still checks the count when it gets there. */
BCAE_API int bcae_ctr_peek_count(const char *path, uint64_t *records);

/* Reads the next record into *rec and, if code_out is not NULL, its code
 * (bcae_ctr_code_count values, native fp16 bit patterns) after checking
 * both CRCs and decompressing. At the end marker sets *end = 1 (then rec
 * and code_out are untouched) after checking the record count and that
 * nothing follows. An error is final: later calls repeat it. A sparse file
 * has no codes: code_out must be NULL, and bcae_ctr_reader_payload gives
 * the record's stream. */
BCAE_API bcae_status bcae_ctr_reader_next(bcae_ctr_reader *r, bcae_ctr_record *rec,
                                          uint16_t *code_out, int *end, bcae_error *err);
/* The payload of the record bcae_ctr_reader_next last returned, as stored
 * (a sparse stream; a zstd frame; a raw code's little-endian bytes), CRC
 * verified; *len its length (rec->stored_bytes). Valid until the next call
 * on r; NULL before the first record, at the end, after an error, and for
 * a reader that skips payloads. */
BCAE_API const uint8_t *bcae_ctr_reader_payload(const bcae_ctr_reader *r, size_t *len);
/* Bytes consumed and verified so far: after an error, the length of the
 * intact prefix (header and whole records); at the end, the file size. */
BCAE_API uint64_t bcae_ctr_reader_offset(const bcae_ctr_reader *r);
/* Records returned so far. */
BCAE_API uint64_t bcae_ctr_reader_records(const bcae_ctr_reader *r);
BCAE_API void bcae_ctr_reader_close(bcae_ctr_reader *r);

/* ------------------------------------------------------------------ */
/* Pictures of wedges                                                  */
/* ------------------------------------------------------------------ */

/* Each wedge a heat-map panel of azimuth (vertical, 192 rows, azimuth 0 at
 * the bottom) by z (horizontal, 249 columns) in log2(ADC+1), side by side,
 * optionally with a panel of the difference of two wedges. */

typedef struct bcae_rgb {
    uint8_t r, g, b;
} bcae_rgb;

#define BCAE_PLOT_MAX_PANELS 8
#define BCAE_PLOT_MAX_SCALE 8
#define BCAE_PLOT_ALL_LAYERS (-1)

typedef struct bcae_plot_options {
    int layer;         /* BCAE_PLOT_ALL_LAYERS: maximum over the 16 layers; else 0..15 */
    int scale;         /* pixels per voxel side, 1..BCAE_PLOT_MAX_SCALE */
    const char *title; /* figure title; NULL or "" for none */
    int difference;    /* with exactly two wedges A, B: a third panel log2(B+1) - log2(A+1) */
    double vmin, vmax; /* log2(ADC+1) colour range; 0 (empty) is always drawn as `empty` */
    double diff_range; /* the difference panel spans [-diff_range, diff_range] */
    bcae_rgb empty;    /* colour of empty voxels (the figure's own background is white) */
} bcae_plot_options;

/* layer = all, scale 2, no title, no difference, range [6, 10] (zero
 * suppression puts every non-zero ADC at log2(65) > 6, the 10-bit maximum at
 * log2(1024) = 10), difference range 2, white. */
BCAE_API void bcae_plot_options_default(bcae_plot_options *opt);

/* Draws n wedges (1..BCAE_PLOT_MAX_PANELS panels, the difference panel
 * included) as a PNG at `path`, written atomically: no partial file on
 * failure. wedges[i] are BCAE_WEDGE_VOXELS ADC values in (azimuth, z,
 * layer) order; titles (or any of its entries) may be NULL; opt may be
 * NULL for the defaults. */
BCAE_API bcae_status bcae_plot_wedges(const char *path, const uint16_t *const *wedges,
                                      const char *const *titles, int n,
                                      const bcae_plot_options *opt, bcae_error *err);

/* ------------------------------------------------------------------ */
/* TPC simulator (see docs/SIMULATOR.md)                               */
/* ------------------------------------------------------------------ */

#define BCAE_SIM_SECTORS 12
#define BCAE_SIM_SIDES 2
#define BCAE_SIM_WEDGES_PER_EVENT (BCAE_SIM_SECTORS * BCAE_SIM_SIDES)

typedef struct bcae_sim_config {
    /* Collision */
    double dndeta;            /* charged particles per unit pseudorapidity, triggered collision:
                                 the mean over its centrality class */
    double dndeta_spread;     /* extra Gaussian relative spread of it (0: the class alone) */
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
    double centrality_max;    /* the trigger's centrality class is 0 .. this (0.10: 0-10 %) */
} bcae_sim_config;

BCAE_API void bcae_sim_config_default(bcae_sim_config *cfg);
/* Knobs by name (the field names above), range-checked. */
BCAE_API bcae_status bcae_sim_config_set(bcae_sim_config *cfg, const char *name, double value,
                                         bcae_error *err);
BCAE_API bcae_status bcae_sim_config_get(const bcae_sim_config *cfg, const char *name,
                                         double *value, bcae_error *err);
/* Name and one-line description of knob i; returns 0 past the last one. */
BCAE_API int bcae_sim_knob_info(int i, const char **name, const char **help);

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
BCAE_API bcae_status bcae_simulator_create(const bcae_sim_config *cfg, bcae_simulator **out,
                                           bcae_error *err);
BCAE_API void bcae_simulator_destroy(bcae_simulator *sim);

/* Simulates event number `event` of the sequence seeded by `seed` into
 * wedges[24 * BCAE_WEDGE_VOXELS], wedge index sector * 2 + side (side 0:
 * z < 0). Deterministic for (configuration, seed, event) whatever the
 * thread count (`threads` <= 0: OpenMP's default). `info` may be NULL. */
BCAE_API bcae_status bcae_simulator_run(bcae_simulator *sim, uint64_t seed, uint64_t event,
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
    /* Data-parallel training (docs/TRAINING.md, "On several processes"):
     * every rank of comm calls bcae_train with the same configuration; each
     * runs batch_size / size wedges of every global batch (batch_size must
     * divide evenly), the losses, the coefficient and the gradient are the
     * global batch's, and rank 0 alone writes the log, the model and the
     * checkpoints. NULL: one process. */
    const bcae_comm *comm;
    /* Arithmetic of the training step (zero = FP32). BF16: mixed precision,
     * bf16 convolutions forward and backward with fp32 accumulation, fp32
     * master weights, AdamW, losses and reductions (BCAE-2D; INT8 is
     * refused; docs/PRECISION.md). Checkpoints record it, and a resume with
     * another precision is refused. */
    bcae_precision precision;
    /* NULL, or a flag read after every training step (a signal handler or
     * another thread sets it; the progress callback may too): nonzero ends
     * the run at that step as max_steps would (the checkpoint and the model
     * written), and bcae_train returns BCAE_OK. The last progress report
     * tells the step reached. With comm, the ranks' flags are reduced after
     * every step: the run stops when any rank's is set. */
    const volatile int *stop;
} bcae_train_config;

BCAE_API void bcae_train_config_default(bcae_train_config *c);

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
    double comm_seconds; /* of step_seconds: in collectives (the loss sums and the
                            gradient allreduce; waiting for slower ranks included) */
} bcae_train_progress;

typedef void (*bcae_train_callback)(void *ctx, const bcae_train_progress *p);

BCAE_API bcae_status bcae_train(const bcae_train_config *cfg, bcae_train_callback cb, void *ctx,
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
BCAE_API int bcae_stats_scalar_info(int i, const char **key, const char **description,
                           int *is_fraction);

BCAE_API void bcae_stats_init(bcae_stats_acc *acc);
/* Adds one wedge (BCAE_WEDGE_VOXELS values in the file layout);
 * BCAE_ERR_RANGE (acc unchanged) if a value exceeds 1023. */
BCAE_API bcae_status bcae_stats_add(bcae_stats_acc *acc, const uint16_t *adc, bcae_error *err);
/* into += from (from unchanged). */
BCAE_API void bcae_stats_merge(bcae_stats_acc *into, const bcae_stats_acc *from);
/* The statistics of the wedges added so far; BCAE_ERR_INVALID_ARGUMENT if none. */
BCAE_API bcae_status bcae_stats_finish(const bcae_stats_acc *acc, bcae_stats *out, bcae_error *err);
/* Relative differences, tolerances and the histograms' distance of `a`
 * from the reference `ref`. */
BCAE_API void bcae_stats_compare(const bcae_stats *a, const bcae_stats *ref, bcae_stats_distance *d);

#ifdef __cplusplus
}
#endif
#endif /* BCAE_H */
