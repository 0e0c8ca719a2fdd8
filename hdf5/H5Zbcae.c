/*
 * H5Zbcae.c — the BCAE HDF5 filter plugin (libH5Zbcae.so; docs/HDF5.md).
 *
 * HDF5 loads it from HDF5_PLUGIN_PATH (or its default plugin folder) through
 * H5PLget_plugin_type / H5PLget_plugin_info. A chunk is one or more whole
 * uint16 (192, 249, 16) wedges; the filter stores their fp16 codes
 * (bcae_h5z.h gives the layout) and decodes them on read, or, in its sparse
 * mode (cd_values[0] = 2), their sparse streams, with no model. It uses
 * libbcae's public API only, like the CLI, so a chunk holds the codes (or
 * streams) `bcae compress` makes and reads back as `bcae decompress` decodes
 * them.
 */
#include <hdf5.h>
#include <H5PLextern.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bcae.h"
#include "bcae_h5z.h"

/* Only the entry points are exported (H5Zbcae.map): the libbcae linked in
 * statically stays private to the plugin. */
H5PL_type_t H5PLget_plugin_type(void);
const void *H5PLget_plugin_info(void);

/* Pushes a message onto HDF5's error stack, under HDF5's own error class
 * (as H5Z-ZFP does), so that h5py and h5dump show it. */
static void push_error_at(const char *func, unsigned line, hid_t minor, const char *fmt, ...)
{
    char msg[BCAE_ERROR_MESSAGE_MAX + 256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    H5Epush2(H5E_DEFAULT, __FILE__, func, line, H5E_ERR_CLS, H5E_PLINE, minor, "bcae filter: %s",
             msg);
}
#define push_error(func, ...) push_error_at(func, __LINE__, __VA_ARGS__)

static int little_endian(void)
{
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}

/* ---- the model cache -----------------------------------------------------------
 *
 * Loading a model hashes its weights and creating a codec plans the
 * networks (and, for int8, calibrates on a simulated event): far too slow to
 * repeat per chunk. So the plugin keeps the last (model, codec) it used, one
 * per process, behind a mutex that is held for the whole encode or decode
 * (a codec serves one thread at a time).
 *
 * Why a cached model can never give a wrong wedge: an entry is reused only
 * for a request with the same fingerprint (SHA-256 of the weights), the same
 * encoder precision and the same search result (path), and it was checked
 * against that fingerprint when loaded. If the file at that path is later
 * replaced, the cached weights are still exactly the ones the dataset names.
 * A mismatch is never cached, so fixing $BCAE_MODEL takes effect on the next
 * chunk. The entry is freed when the plugin is unloaded. */

typedef struct cache_entry {
    char path[4096];
    uint8_t fingerprint[32];
    bcae_precision precision;
    bcae_model *model;
    bcae_codec *codec;
} cache_entry;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static cache_entry cache;

static void cache_drop(void)
{
    bcae_codec_free(cache.codec);
    bcae_model_free(cache.model);
    memset(&cache, 0, sizeof cache);
}

__attribute__((destructor)) static void cache_unload(void) { cache_drop(); }

static void hex(const uint8_t fp[32], char out[65])
{
    for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", fp[i]);
}

/* $BCAE_NUM_THREADS as the CLI reads it, else 0 (all cores). */
static int env_threads(void)
{
    const char *env = getenv("BCAE_NUM_THREADS");
    if (!env || !*env) return 0;
    char *end;
    errno = 0;
    long v = strtol(env, &end, 10);
    return errno || *end || v < 1 || v > 4096 ? -1 : (int)v;
}

/* With cache_lock held: a codec for the model with `fp`, found by the
 * search, in `precision`. NULL after pushing an HDF5 error. */
static bcae_codec *cache_get(const char *func, const uint8_t fp[32], bcae_precision precision)
{
    char path[4096];
    bcae_error err;
    if (bcae_default_model_path(path, sizeof path, &err)) {
        push_error(func, H5E_CANTINIT, "%s; set BCAE_MODEL to the weights file", err.message);
        return NULL;
    }
    if (cache.codec && !strcmp(cache.path, path) && !memcmp(cache.fingerprint, fp, 32) &&
        cache.precision == precision)
        return cache.codec;
    cache_drop();
    bcae_model *model = NULL;
    if (bcae_model_load(path, &model, &err)) {
        push_error(func, H5E_CANTINIT, "%s", err.message);
        return NULL;
    }
    uint8_t have[32];
    bcae_model_fingerprint(model, have);
    if (memcmp(have, fp, 32)) {
        char want_hex[65], have_hex[65];
        hex(fp, want_hex);
        hex(have, have_hex);
        push_error(func, H5E_BADVALUE,
                   "the dataset names model %s but %s (found through $BCAE_MODEL or the "
                   "default) is model %s; set BCAE_MODEL to the weights file that wrote it",
                   want_hex, path, have_hex);
        bcae_model_free(model);
        return NULL;
    }
    int threads = env_threads();
    if (threads < 0) {
        push_error(func, H5E_BADVALUE, "BCAE_NUM_THREADS must be a whole number in [1, 4096]");
        bcae_model_free(model);
        return NULL;
    }
    bcae_codec_options opt = {.batch = 4, .threads = threads, .precision = precision};
    bcae_codec *codec = NULL;
    if (bcae_codec_create(model, &opt, &codec, &err)) {
        push_error(func, H5E_CANTINIT, "%s", err.message);
        bcae_model_free(model);
        return NULL;
    }
    snprintf(cache.path, sizeof cache.path, "%s", path);
    memcpy(cache.fingerprint, fp, 32);
    cache.precision = precision;
    cache.model = model;
    cache.codec = codec;
    return codec;
}

/* ---- can_apply and set_local: at dataset creation ------------------------------ */

/* Refusals are errors (-1), not "not applicable" (0): h5py adds filters as
 * optional, and an optional filter that does not apply is silently left
 * out, which would store a user's wedges uncompressed without a word. */
static htri_t can_apply(hid_t dcpl, hid_t type, hid_t space)
{
    const char *func = "H5Z_bcae_can_apply";
    if (H5Tget_class(type) != H5T_INTEGER || H5Tget_size(type) != 2 ||
        H5Tget_sign(type) != H5T_SGN_NONE || H5Tget_order(type) != H5T_ORDER_LE) {
        push_error(func, H5E_BADTYPE,
                   "the dataset's type must be uint16 (little-endian) raw ADC, as a wedge is");
        return -1;
    }
    hsize_t chunk[H5S_MAX_RANK], dims[H5S_MAX_RANK], maxdims[H5S_MAX_RANK];
    int nc = H5Pget_chunk(dcpl, H5S_MAX_RANK, chunk);
    int nd = H5Sget_simple_extent_dims(space, dims, maxdims);
    static const hsize_t wedge[3] = {BCAE_WEDGE_AZIMUTH, BCAE_WEDGE_Z, BCAE_WEDGE_LAYERS};
    int ok = nc >= 3 && nd == nc;
    for (int k = 0; ok && k < 3; k++)
        ok = chunk[nc - 3 + k] == wedge[k] && dims[nd - 3 + k] == wedge[k] &&
             maxdims[nd - 3 + k] == wedge[k];
    if (!ok) {
        push_error(func, H5E_BADVALUE,
                   "the dataset and its chunks must be whole wedges: shape (..., 192, 249, 16) "
                   "with chunks (..., 192, 249, 16) (got %d dims, chunks of %d dims)",
                   nd, nc);
        return -1;
    }
    return 1;
}

/* The wedges in one chunk: the product of its leading dimensions, or 0
 * after pushing an error. */
static unsigned chunk_wedges(const char *func, hid_t dcpl)
{
    hsize_t chunk[H5S_MAX_RANK];
    int nc = H5Pget_chunk(dcpl, H5S_MAX_RANK, chunk);
    hsize_t wedges = 1;
    for (int k = 0; k < nc - 3; k++) wedges *= chunk[k];
    if (nc < 3 || wedges > 65536) {
        push_error(func, H5E_BADVALUE, "chunks of %llu wedges; at most 65536",
                   (unsigned long long)wedges);
        return 0;
    }
    return (unsigned)wedges;
}

/* The sparse mode's cd_values (bcae_h5z.h): the bound or the ratio, checked,
 * and the wedges per chunk. */
static herr_t set_local_sparse(const char *func, hid_t dcpl, unsigned flags, size_t n,
                               unsigned *cd)
{
    if (n > BCAE_H5Z_SPARSE_CD_COUNT) {
        push_error(func, H5E_BADVALUE,
                   "%zu cd_values for the sparse codec; expected 1 (2 = sparse), 2 (+ bound in "
                   "millionths), 3 (+ ratio in thousandths) or 4",
                   n);
        return -1;
    }
    for (size_t k = n; k < BCAE_H5Z_SPARSE_CD_COUNT; k++) cd[k] = 0;
    if (cd[BCAE_H5Z_SPARSE_CD_ERROR] > (unsigned)(BCAE_SPARSE_MAX_ERROR * BCAE_H5Z_SPARSE_ERROR_SCALE)) {
        push_error(func, H5E_BADVALUE,
                   "cd_values[1] (the bound in millionths) is %u; at most %u (E = %g)",
                   cd[BCAE_H5Z_SPARSE_CD_ERROR],
                   (unsigned)(BCAE_SPARSE_MAX_ERROR * BCAE_H5Z_SPARSE_ERROR_SCALE),
                   BCAE_SPARSE_MAX_ERROR);
        return -1;
    }
    if (cd[BCAE_H5Z_SPARSE_CD_RATIO] && cd[BCAE_H5Z_SPARSE_CD_ERROR]) {
        push_error(func, H5E_BADVALUE,
                   "cd_values[1] (bound) and [2] (ratio) are both set; give one, the other 0");
        return -1;
    }
    unsigned wedges = chunk_wedges(func, dcpl);
    if (!wedges) return -1;
    cd[BCAE_H5Z_SPARSE_CD_WEDGES] = wedges;
    flags &= ~(unsigned)H5Z_FLAG_OPTIONAL;
    if (H5Pmodify_filter(dcpl, BCAE_H5Z_FILTER_ID, flags, BCAE_H5Z_SPARSE_CD_COUNT, cd) < 0) {
        push_error(func, H5E_CANTSET, "cannot store the filter's parameters");
        return -1;
    }
    return 0;
}

static herr_t set_local(hid_t dcpl, hid_t type, hid_t space)
{
    const char *func = "H5Z_bcae_set_local";
    unsigned flags = 0, cd[BCAE_H5Z_CD_COUNT + 1] = {0};
    size_t n = BCAE_H5Z_CD_COUNT + 1;
    if (H5Pget_filter_by_id2(dcpl, BCAE_H5Z_FILTER_ID, &flags, &n, cd, 0, NULL, NULL) < 0) {
        push_error(func, H5E_CANTGET, "cannot read the filter's parameters");
        return -1;
    }
    if (n >= 1 && cd[BCAE_H5Z_CD_VERSION] == BCAE_H5Z_SPARSE)
        return set_local_sparse(func, dcpl, flags, n, cd);
    if (!(n == 0 || n == 1 || n == 2 || n == BCAE_H5Z_CD_WEDGES || n == BCAE_H5Z_CD_COUNT)) {
        push_error(func, H5E_BADVALUE,
                   "%zu cd_values; expected 0, 1 (version), 2 (+ precision), 10 (+ fingerprint) "
                   "or 11",
                   n);
        return -1;
    }
    if (n >= 1 && cd[BCAE_H5Z_CD_VERSION] != BCAE_H5Z_VERSION) {
        push_error(func, H5E_BADVALUE,
                   "cd_values[0] (codec and format version) is %u; this plugin writes %d (a "
                   "model's codes) or %d (the sparse codec)",
                   cd[BCAE_H5Z_CD_VERSION], BCAE_H5Z_VERSION, BCAE_H5Z_SPARSE);
        return -1;
    }
    cd[BCAE_H5Z_CD_VERSION] = BCAE_H5Z_VERSION;
    if (n < 2) cd[BCAE_H5Z_CD_PRECISION] = BCAE_PRECISION_FP32;
    if (!bcae_precision_name((bcae_precision)cd[BCAE_H5Z_CD_PRECISION])) {
        push_error(func, H5E_BADVALUE, "cd_values[1] (precision) is %u; expected 0 fp32, 1 bf16 "
                   "or 2 int8", cd[BCAE_H5Z_CD_PRECISION]);
        return -1;
    }
    if (n < BCAE_H5Z_CD_WEDGES) {
        /* No fingerprint given: the model the search finds now, named in
         * the file so that a reader refuses any other. */
        char path[4096];
        bcae_error err;
        bcae_model *model = NULL;
        if (bcae_default_model_path(path, sizeof path, &err) ||
            bcae_model_load(path, &model, &err)) {
            push_error(func, H5E_CANTINIT, "%s", err.message);
            return -1;
        }
        uint8_t fp[32];
        bcae_model_fingerprint(model, fp);
        bcae_model_free(model);
        bcae_h5z_pack_fingerprint(fp, cd + BCAE_H5Z_CD_FINGERPRINT);
    }
    unsigned wedges = chunk_wedges(func, dcpl);
    if (!wedges) return -1;
    cd[BCAE_H5Z_CD_WEDGES] = wedges;
    /* Mandatory: if a chunk cannot be encoded, H5Dwrite fails instead of
     * storing it raw as HDF5 does with an optional filter. */
    flags &= ~(unsigned)H5Z_FLAG_OPTIONAL;
    if (H5Pmodify_filter(dcpl, BCAE_H5Z_FILTER_ID, flags, BCAE_H5Z_CD_COUNT, cd) < 0) {
        push_error(func, H5E_CANTSET, "cannot store the filter's parameters");
        return -1;
    }
    return 0;
}

/* ---- the filter ------------------------------------------------------------------ */

static size_t encode_chunk(const char *func, const unsigned *cd, size_t nbytes, size_t *buf_size,
                           void **buf)
{
    const size_t V = BCAE_WEDGE_VOXELS, n = cd[BCAE_H5Z_CD_WEDGES];
    if (nbytes != n * V * 2) {
        push_error(func, H5E_BADVALUE, "a chunk of %zu bytes is not %zu whole wedges", nbytes, n);
        return 0;
    }
    uint8_t fp[32];
    bcae_h5z_unpack_fingerprint(cd + BCAE_H5Z_CD_FINGERPRINT, fp);
    if (!little_endian()) {
        push_error(func, H5E_UNSUPPORTED, "big-endian hosts are not supported");
        return 0;
    }
    pthread_mutex_lock(&cache_lock);
    bcae_codec *codec = cache_get(func, fp, (bcae_precision)cd[BCAE_H5Z_CD_PRECISION]);
    size_t C = codec ? bcae_model_code_elements(cache.model) : 0;
    size_t out_bytes = BCAE_H5Z_CHUNK_HEADER + n * C * 2;
    unsigned char *out = codec ? H5allocate_memory(out_bytes, 0) : NULL;
    bcae_error err;
    bcae_status s = BCAE_ERR_INTERNAL;
    if (out) s = bcae_encode(codec, *buf, n, (uint16_t *)(out + BCAE_H5Z_CHUNK_HEADER), &err);
    pthread_mutex_unlock(&cache_lock);
    if (!codec) return 0;
    if (!out) {
        push_error(func, H5E_CANTALLOC, "out of memory");
        return 0;
    }
    if (s) {
        push_error(func, H5E_CANTFILTER, "%s", err.message);
        H5free_memory(out);
        return 0;
    }
    bcae_h5z_put_u32(out, BCAE_H5Z_CHUNK_MAGIC);
    bcae_h5z_put_u32(out + 4, BCAE_H5Z_VERSION);
    bcae_h5z_put_u32(out + 8, (uint32_t)n);
    bcae_h5z_put_u32(out + 12, (uint32_t)C);
    H5free_memory(*buf);
    *buf = out;
    *buf_size = out_bytes;
    return out_bytes;
}

static size_t decode_chunk(const char *func, const unsigned *cd, size_t nbytes, size_t *buf_size,
                           void **buf)
{
    const size_t V = BCAE_WEDGE_VOXELS, n = cd[BCAE_H5Z_CD_WEDGES];
    const unsigned char *in = *buf;
    if (nbytes < BCAE_H5Z_CHUNK_HEADER || bcae_h5z_get_u32(in) != BCAE_H5Z_CHUNK_MAGIC ||
        bcae_h5z_get_u32(in + 4) != BCAE_H5Z_VERSION || bcae_h5z_get_u32(in + 8) != n) {
        push_error(func, H5E_BADVALUE,
                   "a stored chunk of %zu bytes is not a version-%d chunk of %zu wedges", nbytes,
                   BCAE_H5Z_VERSION, n);
        return 0;
    }
    if (!little_endian()) {
        push_error(func, H5E_UNSUPPORTED, "big-endian hosts are not supported");
        return 0;
    }
    uint8_t fp[32];
    bcae_h5z_unpack_fingerprint(cd + BCAE_H5Z_CD_FINGERPRINT, fp);
    /* Decoders run in fp32 whatever the encoder's precision. */
    pthread_mutex_lock(&cache_lock);
    bcae_codec *codec = cache_get(func, fp, BCAE_PRECISION_FP32);
    size_t C = codec ? bcae_model_code_elements(cache.model) : 0;
    int fits = codec && bcae_h5z_get_u32(in + 12) == C && nbytes == BCAE_H5Z_CHUNK_HEADER + n * C * 2;
    unsigned char *out = fits ? H5allocate_memory(n * V * 2, 0) : NULL;
    bcae_error err;
    bcae_status s = BCAE_ERR_INTERNAL;
    if (out)
        s = bcae_decode(codec, (const uint16_t *)(in + BCAE_H5Z_CHUNK_HEADER), n, (uint16_t *)out,
                        NULL, &err);
    pthread_mutex_unlock(&cache_lock);
    if (!codec) return 0;
    if (!fits) {
        push_error(func, H5E_BADVALUE,
                   "a stored chunk of %zu bytes does not hold %zu codes of %zu elements", nbytes,
                   n, C);
        return 0;
    }
    if (!out) {
        push_error(func, H5E_CANTALLOC, "out of memory");
        return 0;
    }
    if (s) {
        push_error(func, H5E_CANTFILTER, "%s", err.message);
        H5free_memory(out);
        return 0;
    }
    H5free_memory(*buf);
    *buf = out;
    *buf_size = n * V * 2;
    return n * V * 2;
}

/* ---- the sparse mode: no model, one stream per wedge ---------------------------- */

static size_t encode_sparse(const char *func, const unsigned *cd, size_t nbytes,
                            size_t *buf_size, void **buf)
{
    const size_t V = BCAE_WEDGE_VOXELS, n = cd[BCAE_H5Z_SPARSE_CD_WEDGES];
    const size_t bound = bcae_sparse_bound(), head = BCAE_H5Z_CHUNK_HEADER + 4 * n;
    if (nbytes != n * V * 2) {
        push_error(func, H5E_BADVALUE, "a chunk of %zu bytes is not %zu whole wedges", nbytes, n);
        return 0;
    }
    int threads = env_threads();
    if (threads < 0) {
        push_error(func, H5E_BADVALUE, "BCAE_NUM_THREADS must be a whole number in [1, 4096]");
        return 0;
    }
    /* Each stream is coded in a slot of the longest size, then the streams
     * are moved together (left only, so in place). */
    unsigned char *out = H5allocate_memory(head + n * bound, 0);
    size_t *len = malloc(n * sizeof *len);
    if (!out || !len) {
        push_error(func, H5E_CANTALLOC, "out of memory");
        if (out) H5free_memory(out);
        free(len);
        return 0;
    }
    bcae_sparse_options opt = {cd[BCAE_H5Z_SPARSE_CD_ERROR] / BCAE_H5Z_SPARSE_ERROR_SCALE,
                               cd[BCAE_H5Z_SPARSE_CD_RATIO] / BCAE_H5Z_SPARSE_RATIO_SCALE};
    bcae_error err;
    if (bcae_sparse_encode_many(*buf, n, &opt, threads, out + head, bound, len, NULL, &err)) {
        push_error(func, H5E_CANTFILTER, "%s", err.message);
        H5free_memory(out);
        free(len);
        return 0;
    }
    size_t pos = head;
    for (size_t i = 0; i < n; i++) {
        bcae_h5z_put_u32(out + BCAE_H5Z_CHUNK_HEADER + 4 * i, (uint32_t)len[i]);
        memmove(out + pos, out + head + i * bound, len[i]);
        pos += len[i];
    }
    free(len);
    bcae_h5z_put_u32(out, BCAE_H5Z_CHUNK_MAGIC);
    bcae_h5z_put_u32(out + 4, BCAE_H5Z_SPARSE);
    bcae_h5z_put_u32(out + 8, (uint32_t)n);
    bcae_h5z_put_u32(out + 12, 0);
    unsigned char *fit = H5resize_memory(out, pos);
    if (fit) out = fit;
    H5free_memory(*buf);
    *buf = out;
    *buf_size = fit ? pos : head + n * bound;
    return pos;
}

static size_t decode_sparse(const char *func, const unsigned *cd, size_t nbytes,
                            size_t *buf_size, void **buf)
{
    const size_t V = BCAE_WEDGE_VOXELS, n = cd[BCAE_H5Z_SPARSE_CD_WEDGES];
    const unsigned char *in = *buf;
    const size_t head = BCAE_H5Z_CHUNK_HEADER + 4 * n;
    if (nbytes < head || bcae_h5z_get_u32(in) != BCAE_H5Z_CHUNK_MAGIC ||
        bcae_h5z_get_u32(in + 4) != BCAE_H5Z_SPARSE || bcae_h5z_get_u32(in + 8) != n ||
        bcae_h5z_get_u32(in + 12) != 0) {
        push_error(func, H5E_BADVALUE,
                   "a stored chunk of %zu bytes is not a sparse chunk of %zu wedges", nbytes, n);
        return 0;
    }
    int threads = env_threads();
    if (threads < 0) {
        push_error(func, H5E_BADVALUE, "BCAE_NUM_THREADS must be a whole number in [1, 4096]");
        return 0;
    }
    const uint8_t **ptr = malloc(n * sizeof *ptr);
    size_t *len = malloc(n * sizeof *len);
    unsigned char *out = ptr && len ? H5allocate_memory(n * V * 2, 0) : NULL;
    if (!out) {
        push_error(func, H5E_CANTALLOC, "out of memory");
        free(ptr);
        free(len);
        return 0;
    }
    /* The lengths must tile the chunk exactly; each stream's own checks
     * (its CRC first) are the decoder's. */
    size_t pos = head;
    int fits = 1;
    for (size_t i = 0; i < n && fits; i++) {
        len[i] = bcae_h5z_get_u32(in + BCAE_H5Z_CHUNK_HEADER + 4 * i);
        fits = len[i] <= nbytes - pos;
        ptr[i] = in + pos;
        pos += fits ? len[i] : 0;
    }
    bcae_error err;
    bcae_status s = BCAE_ERR_FORMAT;
    if (fits && pos == nbytes)
        s = bcae_sparse_decode_many(ptr, len, n, threads, (uint16_t *)out, NULL, &err);
    else
        snprintf(err.message, sizeof err.message,
                 "the stream lengths of a %zu-byte sparse chunk do not add up to it", nbytes);
    free(ptr);
    free(len);
    if (s) {
        push_error(func, H5E_CANTFILTER, "%s", err.message);
        H5free_memory(out);
        return 0;
    }
    H5free_memory(*buf);
    *buf = out;
    *buf_size = n * V * 2;
    return n * V * 2;
}

static size_t filter(unsigned flags, size_t cd_nelmts, const unsigned cd_values[], size_t nbytes,
                     size_t *buf_size, void **buf)
{
    const char *func = "H5Z_filter_bcae";
    if (cd_nelmts == BCAE_H5Z_SPARSE_CD_COUNT && cd_values[0] == BCAE_H5Z_SPARSE) {
        if (cd_values[BCAE_H5Z_SPARSE_CD_WEDGES] < 1 ||
            cd_values[BCAE_H5Z_SPARSE_CD_WEDGES] > 65536 ||
            cd_values[BCAE_H5Z_SPARSE_CD_ERROR] >
                (unsigned)(BCAE_SPARSE_MAX_ERROR * BCAE_H5Z_SPARSE_ERROR_SCALE)) {
            push_error(func, H5E_BADVALUE,
                       "invalid sparse cd_values (bound %u millionths, %u wedges per chunk)",
                       cd_values[BCAE_H5Z_SPARSE_CD_ERROR], cd_values[BCAE_H5Z_SPARSE_CD_WEDGES]);
            return 0;
        }
        if (!little_endian()) {
            push_error(func, H5E_UNSUPPORTED, "big-endian hosts are not supported");
            return 0;
        }
        return flags & H5Z_FLAG_REVERSE ? decode_sparse(func, cd_values, nbytes, buf_size, buf)
                                        : encode_sparse(func, cd_values, nbytes, buf_size, buf);
    }
    if (cd_nelmts != BCAE_H5Z_CD_COUNT || cd_values[BCAE_H5Z_CD_VERSION] != BCAE_H5Z_VERSION) {
        push_error(func, H5E_BADVALUE,
                   "%zu cd_values of version %u; this plugin reads %d of version %d (a "
                   "model's codes) or %d of version %d (sparse) (a newer bcae wrote this "
                   "dataset?)",
                   cd_nelmts, cd_nelmts ? cd_values[0] : 0u, BCAE_H5Z_CD_COUNT, BCAE_H5Z_VERSION,
                   BCAE_H5Z_SPARSE_CD_COUNT, BCAE_H5Z_SPARSE);
        return 0;
    }
    if (cd_values[BCAE_H5Z_CD_WEDGES] < 1 ||
        !bcae_precision_name((bcae_precision)cd_values[BCAE_H5Z_CD_PRECISION])) {
        push_error(func, H5E_BADVALUE, "invalid cd_values (precision %u, %u wedges per chunk)",
                   cd_values[BCAE_H5Z_CD_PRECISION], cd_values[BCAE_H5Z_CD_WEDGES]);
        return 0;
    }
    return flags & H5Z_FLAG_REVERSE ? decode_chunk(func, cd_values, nbytes, buf_size, buf)
                                    : encode_chunk(func, cd_values, nbytes, buf_size, buf);
}

static const H5Z_class2_t H5Z_BCAE[1] = {{
    H5Z_CLASS_T_VERS,
    (H5Z_filter_t)BCAE_H5Z_FILTER_ID,
    1, /* encoder present */
    1, /* decoder present */
    BCAE_H5Z_NAME,
    can_apply,
    set_local,
    filter,
}};

H5PL_type_t H5PLget_plugin_type(void) { return H5PL_TYPE_FILTER; }

const void *H5PLget_plugin_info(void) { return H5Z_BCAE; }
