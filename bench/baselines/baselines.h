/*
 * bench_baselines: learning-free compressors on the same wedges as BCAE.
 * methods.c holds the codecs, main.c runs them over a dataset split and
 * reports, rdplot.c draws the rate-distortion figure.
 */
#ifndef BCAE_BENCH_BASELINES_H
#define BCAE_BENCH_BASELINES_H

#include <stddef.h>
#include <stdint.h>

#include "bcae.h"

typedef enum bl_kind {
    BL_ZSTD_RAW,    /* zstd on the uint16 wedge as stored: lossless */
    BL_SPARSE_ZSTD, /* zstd on runs of zeros / non-zeros + the values: lossless */
    BL_QUANT_ZSTD,  /* log2(ADC+1) of non-zeros quantised to k bits, sparse layout, zstd */
    BL_ZFP_RATE,    /* ZFP fixed-rate on the wedge as a 3D float array */
    BL_ZFP_ACCURACY,/* ZFP fixed-accuracy (absolute error tolerance) */
    BL_BCAE,        /* a BCAE model through bcae_encode / bcae_decode (fp16 code) */
    BL_QUANTE_ZSTD, /* the sparse codec's error-bounded levels (bound E), sparse layout, zstd */
    BL_SPARSE       /* the sparse codec (bcae_sparse_encode) at bound E */
} bl_kind;

/* Values ZFP compresses: log2(ADC+1) (the metrics' space) or the raw ADC. */
typedef enum bl_space { BL_SPACE_LOG, BL_SPACE_ADC } bl_space;

typedef struct bl_method {
    bl_kind kind;
    char family[48]; /* curve / group name, e.g. "zfp-rate (log)" */
    char name[64];   /* row label, e.g. "zfp-rate (log) 0.5 b/v" */
    double param;    /* the swept value: zstd level, bits k, rate, tolerance */
    int level;       /* zstd level where zstd is used */
    bl_space space;
    const bcae_model *model; /* BL_BCAE only */
    int lossless;
} bl_method;

/* Per-thread working memory of the codecs. */
typedef struct bl_ctx bl_ctx;

/* What the sparse codec's streams hold, summed over the wedges a context
 * coded: bytes of each section, hits, and the bit statistics of its models
 * (sparse_coder_count_bits), from which main.c computes the empirical
 * conditional entropy under the codec's contexts. */
typedef struct bl_sparse_stats {
    double occupancy_bytes, value_bytes, hits;
    /* Sums over wedges of each wedge's empirical conditional entropy (bits)
     * of its occupancy and of its values under the codec's contexts: the
     * length a coder with the best fixed probability per context for that
     * wedge would reach (bits without a model count 1 each). */
    double occupancy_h, value_h;
    uint32_t (*counts)[2]; /* SG_MODELS + 1 rows, per wedge */
} bl_sparse_stats;
/* The context's statistics (NULL for other methods). */
bl_sparse_stats *bl_ctx_sparse_stats(bl_ctx *ctx);

bl_ctx *bl_ctx_create(const bl_method *m, int threads);
void bl_ctx_free(bl_ctx *ctx);
/* Wedges handled per call: the BCAE codec's batch, 1 for the rest. */
int bl_batch(const bl_method *m);
/* An upper bound of the compressed size of n wedges. */
size_t bl_bound(const bl_method *m, int n);

/* Compresses n wedges (n * BCAE_WEDGE_VOXELS ADC) into out[cap]; returns
 * the size, 0 on failure. */
size_t bl_compress(const bl_method *m, bl_ctx *ctx, const uint16_t *adc, int n, uint8_t *out,
                   size_t cap);
/* Decompresses into n wedges of ADC, rounded and clamped to [0, 1023];
 * returns 0 on success. */
int bl_decompress(const bl_method *m, bl_ctx *ctx, const uint8_t *in, size_t len, int n,
                  uint16_t *adc);

/* One row of the report. */
typedef struct bl_result {
    bl_method method;
    size_t wedges;
    double input_bytes, compressed_bytes;
    double ratio;
    double mae, mse, psnr, psnr_db, precision, recall;
    double compress_s, decompress_s; /* summed over calls, per thread */
    double compress_wps, decompress_wps, compress_mbps, decompress_mbps;
    int threads;
    int external; /* given on the command line (--bcae), not measured here */
    int nearest;  /* the family's point nearest the target ratio */
    bl_sparse_stats sparse; /* BL_SPARSE: summed over the wedges (counts NULL) */
} bl_result;

/* The figure: MAE and PSNR (dB) against the ratio, one curve per lossy
 * family, points for BCAE rows; target = the ratio marked by a line. */
bcae_status bl_plot(const char *path, const bl_result *rows, int n, double target,
                    bcae_error *err);

#endif
