/*
 * The codecs bench_baselines compares. Each takes wedges of raw ADC in the
 * file layout (azimuth 192, z 249, layer 16; layer fastest) and gives them
 * back as ADC rounded and clamped to [0, 1023].
 *
 * Sparse layout (BL_SPARSE_ZSTD lossless, BL_QUANT_ZSTD lossy). The wedge is
 * scanned in (layer, azimuth, z) order, z fastest: a pulse on one pad is a
 * run of consecutive time bins, so with z innermost the non-zeros come in
 * runs (the file's own order, layer fastest, breaks every pulse into
 * single voxels 16 apart). One buffer is built and zstd-compressed whole:
 *
 *   u32 LE  number of non-zero voxels N
 *   u32 LE  bytes of the run stream R
 *   R bytes runs: LEB128 varints, alternating (zeros, non-zeros), starting
 *           with a run of zeros (maybe 0), until the runs cover all 764,928
 *           voxels (the last pair may have 0 non-zeros)
 *   values  lossless: N bytes of ADC & 0xff, then ceil(N/4) bytes of the
 *           top two bits ADC >> 8 (10-bit ADC), four to a byte, first in
 *           the low bits: the split keeps the low bytes (noisy) apart from
 *           the high bits (mostly 0 or 1).
 *           quantised: N bytes, one k-bit code (1..2^k - 1) a voxel.
 *
 * Quantiser (BL_QUANT_ZSTD, k bits): the non-zero range of log2(ADC+1),
 * [log2 65, log2 1024] = [6.02, 10], cut into L = 2^k - 1 equal bins; a
 * voxel is stored as its bin (1..L), reconstructed at the bin's centre in
 * log space and rounded to ADC. Zeros stay exactly zero and non-zeros stay
 * non-zero (>= 64), so precision and recall are 1; the error is the
 * quantisation of the values. Uniform bins in log space are the ones that
 * the metrics' log-space MAE rewards.
 *
 * BL_QUANTE_ZSTD: the same layout and zstd, with the sparse codec's levels
 * for a bound E (src/sparse/levels.h) in place of the k-bit bins: the very
 * values the sparse codec codes at that bound, so the two rows compare
 * coders, not quantisers. BL_SPARSE: the sparse codec itself (bcae.h).
 *
 * ZFP (fixed rate, fixed accuracy) sees the wedge as a 3D float array
 * nx = 16 layers (fastest), ny = 249 z, nz = 192 azimuth, in log2(ADC+1)
 * or raw ADC; only the compressed stream is counted (no header: the shape
 * is known, as it is for BCAE's code).
 */
#include "baselines.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#ifdef BCAE_HAVE_ZFP
#include <zfp.h>
#endif

#include "sparse/levels.h"
#include "sparse/sparse.h"

#define V ((size_t)BCAE_WEDGE_VOXELS)
#define NA BCAE_WEDGE_AZIMUTH
#define NZ BCAE_WEDGE_Z
#define NL BCAE_WEDGE_LAYERS
#define BCAE_BATCH 4

struct bl_ctx {
    ZSTD_CCtx *cc;
    ZSTD_DCtx *dc;
    uint8_t *raw; /* the sparse layout before zstd / after unzstd */
    size_t raw_cap;
    uint8_t code_of[BCAE_ADC_MAX + 1]; /* quantiser: ADC -> bin */
    uint16_t adc_of[256];              /* quantiser: bin -> ADC */
    float *f;                          /* ZFP's float wedge */
#ifdef BCAE_HAVE_ZFP
    zfp_stream *zfp;
    zfp_field *field;
#endif
    bcae_codec *codec;
    uint16_t *codes; /* BCAE_BATCH codes */
    size_t code_elems;
    bcae_sparse_coder *sparse;
    bl_sparse_stats stats;
};

bl_sparse_stats *bl_ctx_sparse_stats(bl_ctx *ctx)
{
    return ctx->sparse ? &ctx->stats : NULL;
}

int bl_batch(const bl_method *m) { return m->kind == BL_BCAE ? BCAE_BATCH : 1; }

static size_t sparse_raw_cap(void)
{
    /* header + at most V + 1 runs of <= 3 varint bytes + values */
    return 8 + 3 * (V + 2) + V + V / 4 + 16;
}

size_t bl_bound(const bl_method *m, int n)
{
    switch (m->kind) {
    case BL_ZSTD_RAW: return ZSTD_compressBound(V * 2);
    case BL_SPARSE_ZSTD:
    case BL_QUANT_ZSTD:
    case BL_QUANTE_ZSTD: return ZSTD_compressBound(sparse_raw_cap());
    case BL_SPARSE: return bcae_sparse_bound();
    case BL_ZFP_RATE:
    case BL_ZFP_ACCURACY:
        /* ZFP's worst case for floats is a little over 32 bits a value. */
        return V * 5 + 4096;
    case BL_BCAE: {
        size_t c = bcae_model_code_elements(m->model) * 2;
        return (size_t)n * (4 + ZSTD_compressBound(c));
    }
    }
    return 0;
}

/* The sparse codec's levels for bound E, as one byte a hit: the level
 * index less that of ADC 64 (so 1..255 over [64, 1023]); values outside
 * [64, 1023] are clamped into it, as a valid wedge has none. */
static int quant_e_tables(bl_ctx *ctx, double max_error)
{
    sparse_levels *lv = malloc(sizeof *lv);
    if (!lv) return -1;
    sparse_levels_build(lv, sparse_mult_of(max_error));
    int base = lv->level_of[BCAE_ZERO_SUPPRESSION] - 1;
    int top = lv->level_of[BCAE_ADC_MAX] - base;
    int ok = top <= 255;
    memset(ctx->code_of, 0, sizeof ctx->code_of);
    memset(ctx->adc_of, 0, sizeof ctx->adc_of);
    for (int a = 1; ok && a <= BCAE_ADC_MAX; a++) {
        int q = lv->level_of[a < BCAE_ZERO_SUPPRESSION ? BCAE_ZERO_SUPPRESSION : a];
        ctx->code_of[a] = (uint8_t)(q - base);
        ctx->adc_of[q - base] = lv->value[q];
    }
    free(lv);
    return ok ? 0 : -1;
}

static void quant_tables(bl_ctx *ctx, int k)
{
    int L = (1 << k) - 1;
    double lo = log2(65.0), hi = 10.0, w = (hi - lo) / L;
    memset(ctx->code_of, 0, sizeof ctx->code_of);
    for (int a = BCAE_ZERO_SUPPRESSION; a <= BCAE_ADC_MAX; a++) {
        int b = (int)floor((log2(a + 1.0) - lo) / w) + 1;
        ctx->code_of[a] = (uint8_t)(b < 1 ? 1 : b > L ? L : b);
    }
    /* ADC below zero suppression cannot occur in a valid wedge; should one,
     * it is kept non-zero in the lowest bin. */
    for (int a = 1; a < BCAE_ZERO_SUPPRESSION; a++) ctx->code_of[a] = 1;
    ctx->adc_of[0] = 0;
    for (int b = 1; b <= L; b++) {
        double v = lo + (b - 0.5) * w, a = round(exp2(v) - 1);
        ctx->adc_of[b] = (uint16_t)(a < 0 ? 0 : a > BCAE_ADC_MAX ? BCAE_ADC_MAX : a);
    }
}

bl_ctx *bl_ctx_create(const bl_method *m, int threads)
{
    bl_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return NULL;
    ctx->cc = ZSTD_createCCtx();
    ctx->dc = ZSTD_createDCtx();
    if (!ctx->cc || !ctx->dc) goto fail;
    if (m->kind == BL_SPARSE_ZSTD || m->kind == BL_QUANT_ZSTD || m->kind == BL_QUANTE_ZSTD) {
        ctx->raw_cap = sparse_raw_cap();
        ctx->raw = malloc(ctx->raw_cap);
        if (!ctx->raw) goto fail;
        if (m->kind == BL_QUANT_ZSTD) quant_tables(ctx, (int)m->param);
        if (m->kind == BL_QUANTE_ZSTD && quant_e_tables(ctx, m->param)) goto fail;
    }
    if (m->kind == BL_SPARSE) {
        bcae_error err;
        if (bcae_sparse_coder_create(&ctx->sparse, &err) != BCAE_OK) goto fail;
        ctx->stats.counts = calloc(SG_MODELS + 1, sizeof *ctx->stats.counts);
        if (!ctx->stats.counts) goto fail;
        sparse_coder_count_bits(ctx->sparse, ctx->stats.counts);
    }
    if (m->kind == BL_ZFP_RATE || m->kind == BL_ZFP_ACCURACY) {
#ifdef BCAE_HAVE_ZFP
        ctx->f = malloc(V * sizeof(float));
        ctx->zfp = zfp_stream_open(NULL);
        ctx->field = zfp_field_3d(ctx->f, zfp_type_float, NL, NZ, NA);
        if (!ctx->f || !ctx->zfp || !ctx->field) goto fail;
        if (m->kind == BL_ZFP_RATE)
            zfp_stream_set_rate(ctx->zfp, m->param, zfp_type_float, 3, zfp_false);
        else
            zfp_stream_set_accuracy(ctx->zfp, m->param);
#else
        goto fail;
#endif
    }
    if (m->kind == BL_BCAE) {
        bcae_codec_options opt = {.batch = BCAE_BATCH, .threads = threads};
        bcae_error err;
        if (bcae_codec_create(m->model, &opt, &ctx->codec, &err) != BCAE_OK) goto fail;
        ctx->code_elems = bcae_model_code_elements(m->model);
        ctx->codes = malloc(BCAE_BATCH * ctx->code_elems * sizeof(uint16_t));
        if (!ctx->codes) goto fail;
    }
    return ctx;
fail:
    bl_ctx_free(ctx);
    return NULL;
}

void bl_ctx_free(bl_ctx *ctx)
{
    if (!ctx) return;
    ZSTD_freeCCtx(ctx->cc);
    ZSTD_freeDCtx(ctx->dc);
    free(ctx->raw);
    free(ctx->f);
#ifdef BCAE_HAVE_ZFP
    if (ctx->field) zfp_field_free(ctx->field);
    if (ctx->zfp) zfp_stream_close(ctx->zfp);
#endif
    if (ctx->codec) bcae_codec_free(ctx->codec);
    free(ctx->codes);
    bcae_sparse_coder_free(ctx->sparse);
    free(ctx->stats.counts);
    free(ctx);
}

/* ---- sparse layout ---------------------------------------------------- */

static size_t put_varint(uint8_t *p, size_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

static int get_varint(const uint8_t *p, size_t len, size_t *pos, size_t *v)
{
    size_t r = 0;
    for (int shift = 0; shift < 28; shift += 7) {
        if (*pos >= len) return -1;
        uint8_t b = p[(*pos)++];
        r |= (size_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return -1;
}

static void put_u32(uint8_t *p, size_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static size_t get_u32(const uint8_t *p)
{
    return (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 | (size_t)p[3] << 24;
}

/* The file-layout index of the i-th voxel of the (layer, azimuth, z) scan. */
static inline size_t scan_index(int layer, int az, int z)
{
    return ((size_t)az * NZ + (size_t)z) * NL + (size_t)layer;
}

/* Builds the sparse layout in ctx->raw; quant: values are bin codes.
 * Returns its size. */
static size_t sparse_build(bl_ctx *ctx, const uint16_t *adc, int quant)
{
    uint8_t *runs = ctx->raw + 8;
    size_t r = 0, nnz = 0, zeros = 0, ones = 0;
    int in_run = 0; /* inside a run of non-zeros */
    for (int l = 0; l < NL; l++)
        for (int a = 0; a < NA; a++)
            for (int z = 0; z < NZ; z++) {
                int nz = adc[scan_index(l, a, z)] != 0;
                if (nz) nnz++;
                if (nz && !in_run) {
                    r += put_varint(runs + r, zeros);
                    zeros = 0;
                    ones = 1;
                    in_run = 1;
                } else if (nz) {
                    ones++;
                } else if (in_run) {
                    r += put_varint(runs + r, ones);
                    ones = 0;
                    zeros = 1;
                    in_run = 0;
                } else {
                    zeros++;
                }
            }
    if (in_run) {
        r += put_varint(runs + r, ones);
    } else {
        r += put_varint(runs + r, zeros);
        r += put_varint(runs + r, 0);
    }
    put_u32(ctx->raw, nnz);
    put_u32(ctx->raw + 4, r);
    uint8_t *lowp = runs + r, *highp = lowp + nnz;
    if (!quant) memset(highp, 0, (nnz + 3) / 4);
    size_t i = 0;
    for (int l = 0; l < NL; l++)
        for (int a = 0; a < NA; a++)
            for (int z = 0; z < NZ; z++) {
                unsigned v = adc[scan_index(l, a, z)];
                if (!v) continue;
                if (quant) {
                    lowp[i] = ctx->code_of[v > BCAE_ADC_MAX ? BCAE_ADC_MAX : v];
                } else {
                    lowp[i] = (uint8_t)(v & 0xff);
                    highp[i / 4] |= (uint8_t)(((v >> 8) & 3) << (2 * (i % 4)));
                }
                i++;
            }
    return 8 + r + nnz + (quant ? 0 : (nnz + 3) / 4);
}

static int sparse_parse(bl_ctx *ctx, size_t len, int quant, uint16_t *adc)
{
    if (len < 8) return -1;
    size_t nnz = get_u32(ctx->raw), r = get_u32(ctx->raw + 4);
    if (nnz > V || r > len - 8) return -1;
    const uint8_t *runs = ctx->raw + 8, *lowp = runs + r, *highp = lowp + nnz;
    size_t need = 8 + r + nnz + (quant ? 0 : (nnz + 3) / 4);
    if (need > len) return -1;
    memset(adc, 0, V * sizeof *adc);
    size_t pos = 0, scan = 0, i = 0;
    while (scan < V) {
        size_t zeros, ones;
        if (get_varint(runs, r, &pos, &zeros) || get_varint(runs, r, &pos, &ones)) return -1;
        if (zeros > V - scan || ones > V - scan - zeros || ones > nnz - i) return -1;
        scan += zeros;
        for (size_t k = 0; k < ones; k++, scan++, i++) {
            int z = (int)(scan % NZ), a = (int)(scan / NZ % NA), l = (int)(scan / NZ / NA);
            uint16_t v;
            if (quant) {
                v = ctx->adc_of[lowp[i]];
            } else {
                v = (uint16_t)(lowp[i] | ((highp[i / 4] >> (2 * (i % 4))) & 3u) << 8);
            }
            adc[scan_index(l, a, z)] = v;
        }
    }
    return i == nnz ? 0 : -1;
}

/* ---- the sparse codec's statistics -------------------------------------- */

static double entropy_bits(uint32_t (*c)[2], size_t from, size_t to)
{
    double h = 0;
    for (size_t i = from; i < to; i++) {
        double n0 = c[i][0], n1 = c[i][1], n = n0 + n1;
        if (n0 > 0) h -= n0 * log2(n0 / n);
        if (n1 > 0) h -= n1 * log2(n1 / n);
    }
    return h;
}

/* Adds the last wedge's entropies and clears its counts. */
static void sparse_stats_wedge(bl_sparse_stats *st)
{
    st->occupancy_h += entropy_bits(st->counts, 0, SG_OCC_MODELS);
    st->value_h += entropy_bits(st->counts, SG_OCC_MODELS, SG_MODELS) + st->counts[SG_MODELS][0];
    memset(st->counts, 0, (SG_MODELS + 1) * sizeof *st->counts);
}

/* ---- ZFP -------------------------------------------------------------- */

#ifdef BCAE_HAVE_ZFP
static size_t zfp_encode(const bl_method *m, bl_ctx *ctx, const uint16_t *adc, uint8_t *out,
                         size_t cap)
{
    if (m->space == BL_SPACE_LOG)
        for (size_t i = 0; i < V; i++) ctx->f[i] = adc[i] ? (float)log2(adc[i] + 1.0) : 0.0f;
    else
        for (size_t i = 0; i < V; i++) ctx->f[i] = (float)adc[i];
    if (zfp_stream_maximum_size(ctx->zfp, ctx->field) > cap) return 0;
    bitstream *bs = stream_open(out, cap);
    if (!bs) return 0;
    zfp_stream_set_bit_stream(ctx->zfp, bs);
    zfp_stream_rewind(ctx->zfp);
    size_t n = zfp_compress(ctx->zfp, ctx->field);
    stream_close(bs);
    return n;
}

static int zfp_decode(const bl_method *m, bl_ctx *ctx, const uint8_t *in, size_t len,
                      uint16_t *adc)
{
    bitstream *bs = stream_open((void *)in, len);
    if (!bs) return -1;
    zfp_stream_set_bit_stream(ctx->zfp, bs);
    zfp_stream_rewind(ctx->zfp);
    size_t n = zfp_decompress(ctx->zfp, ctx->field);
    stream_close(bs);
    if (!n) return -1;
    for (size_t i = 0; i < V; i++) {
        double v = ctx->f[i], a;
        /* round(2^v - 1) is 0 below v = log2(1.5) = 0.58496...: most voxels
         * are near zero, and this spares them the exp2. */
        if (m->space == BL_SPACE_LOG)
            a = v < 0.584 ? 0 : round(exp2(v) - 1);
        else
            a = round(v);
        adc[i] = (uint16_t)(!(a > 0) ? 0 : a > BCAE_ADC_MAX ? BCAE_ADC_MAX : a); /* NaN -> 0 */
    }
    return 0;
}
#endif

/* ---- dispatch --------------------------------------------------------- */

size_t bl_compress(const bl_method *m, bl_ctx *ctx, const uint16_t *adc, int n, uint8_t *out,
                   size_t cap)
{
    size_t r;
    switch (m->kind) {
    case BL_ZSTD_RAW:
        r = ZSTD_compressCCtx(ctx->cc, out, cap, adc, V * 2, m->level);
        return ZSTD_isError(r) ? 0 : r;
    case BL_SPARSE_ZSTD:
    case BL_QUANT_ZSTD:
    case BL_QUANTE_ZSTD: {
        size_t raw = sparse_build(ctx, adc, m->kind != BL_SPARSE_ZSTD);
        r = ZSTD_compressCCtx(ctx->cc, out, cap, ctx->raw, raw, m->level);
        return ZSTD_isError(r) ? 0 : r;
    }
    case BL_SPARSE: {
        bcae_sparse_options opt = {.max_error = m->param};
        bcae_sparse_info info;
        bcae_error err;
        if (bcae_sparse_encode(ctx->sparse, adc, &opt, out, cap, &r, &info, &err) != BCAE_OK)
            return 0;
        ctx->stats.occupancy_bytes += (double)info.occupancy_bytes;
        ctx->stats.value_bytes += (double)info.value_bytes;
        ctx->stats.hits += (double)info.hits;
        sparse_stats_wedge(&ctx->stats);
        return r;
    }
    case BL_ZFP_RATE:
    case BL_ZFP_ACCURACY:
#ifdef BCAE_HAVE_ZFP
        return zfp_encode(m, ctx, adc, out, cap);
#else
        return 0;
#endif
    case BL_BCAE: {
        bcae_error err;
        if (bcae_encode(ctx->codec, adc, (size_t)n, ctx->codes, &err) != BCAE_OK) return 0;
        size_t cbytes = ctx->code_elems * 2;
        if (m->level <= 0) { /* the fp16 code as it is, 16 bits an element */
            if ((size_t)n * cbytes > cap) return 0;
            memcpy(out, ctx->codes, (size_t)n * cbytes);
            return (size_t)n * cbytes;
        }
        /* zstd on each wedge's code, as a .bcae record would be: sizes, frames. */
        size_t pos = 4 * (size_t)n;
        for (int i = 0; i < n; i++) {
            r = ZSTD_compressCCtx(ctx->cc, out + pos, cap - pos, ctx->codes + i * ctx->code_elems,
                                  cbytes, m->level);
            if (ZSTD_isError(r)) return 0;
            put_u32(out + 4 * i, r);
            pos += r;
        }
        return pos;
    }
    }
    return 0;
}

int bl_decompress(const bl_method *m, bl_ctx *ctx, const uint8_t *in, size_t len, int n,
                  uint16_t *adc)
{
    size_t r;
    switch (m->kind) {
    case BL_ZSTD_RAW:
        r = ZSTD_decompressDCtx(ctx->dc, adc, V * 2, in, len);
        return ZSTD_isError(r) || r != V * 2 ? -1 : 0;
    case BL_SPARSE_ZSTD:
    case BL_QUANT_ZSTD:
    case BL_QUANTE_ZSTD:
        r = ZSTD_decompressDCtx(ctx->dc, ctx->raw, ctx->raw_cap, in, len);
        if (ZSTD_isError(r)) return -1;
        return sparse_parse(ctx, r, m->kind != BL_SPARSE_ZSTD, adc);
    case BL_SPARSE: {
        bcae_error err;
        return bcae_sparse_decode(ctx->sparse, in, len, adc, NULL, &err) == BCAE_OK ? 0 : -1;
    }
    case BL_ZFP_RATE:
    case BL_ZFP_ACCURACY:
#ifdef BCAE_HAVE_ZFP
        return zfp_decode(m, ctx, in, len, adc);
#else
        return -1;
#endif
    case BL_BCAE: {
        size_t cbytes = ctx->code_elems * 2;
        if (m->level <= 0) {
            if (len != (size_t)n * cbytes) return -1;
            memcpy(ctx->codes, in, len);
        } else {
            size_t pos = 4 * (size_t)n;
            if (len < pos) return -1;
            for (int i = 0; i < n; i++) {
                size_t fl = get_u32(in + 4 * i);
                if (fl > len - pos) return -1;
                r = ZSTD_decompressDCtx(ctx->dc, ctx->codes + i * ctx->code_elems, cbytes,
                                        in + pos, fl);
                if (ZSTD_isError(r) || r != cbytes) return -1;
                pos += fl;
            }
        }
        bcae_error err;
        return bcae_decode(ctx->codec, ctx->codes, (size_t)n, adc, NULL, &err) == BCAE_OK ? 0
                                                                                           : -1;
    }
    }
    return -1;
}
