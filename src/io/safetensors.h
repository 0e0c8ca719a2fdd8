/*
 * safetensors reader and writer (docs/FORMATS.md, "Model files
 * (safetensors)"): the weights format of every bcae model.
 *
 * A file is an 8-byte little-endian header length N, N bytes of JSON
 * (tensor name -> {"dtype", "shape", "data_offsets"}, plus an optional
 * "__metadata__" object of strings), then the data buffer, which the
 * tensors tile exactly, little-endian and in C order.
 */
#ifndef BCAE_IO_SAFETENSORS_H
#define BCAE_IO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "bcae.h"

/* bfloat16 has no bcae_dtype; its tensors carry this value, one past the
 * public enum (bcae_dtype_size/name answer 0 and "?" for it: use
 * bcae_st_itemsize and bcae_st_dtype_name, which know it). */
#define BCAE_ST_DTYPE_BF16 BCAE_DTYPE_COUNT

/* The metadata key of the file's checksum: the lower-case hex SHA-256 of
 * the data buffer (= the fingerprint). bcae_st_write always adds it (a
 * caller's own value for the key is replaced); readers verify it when it is
 * there and still read files without it (other writers' files). */
#define BCAE_ST_CHECKSUM_KEY "bcae.sha256"

/* The header length beyond which a file is refused outright (the
 * reference implementation's cap is 100 MB). */
#define BCAE_ST_MAX_HEADER ((size_t)100 << 20)

typedef struct bcae_st_tensor {
    char *name;
    bcae_dtype dtype; /* or BCAE_ST_DTYPE_BF16 */
    int ndim;
    size_t shape[BCAE_MAX_DIMS];
    /* Native byte order, C order, aligned to the item size (a file whose
     * offsets are not is repacked on reading). NULL when nbytes == 0. */
    const unsigned char *data;
    size_t nbytes;
} bcae_st_tensor;

typedef struct bcae_st_file {
    bcae_st_tensor *tensors; /* in the order of the header */
    size_t count;
    char **meta_keys, **meta_values; /* in the order of the header */
    size_t nmeta;
    unsigned char *blob; /* owns every tensor's data */
    size_t blob_len;
    size_t *by_name; /* tensor indices sorted by name, for bcae_st_find */
    size_t *by_offset; /* tensor indices in file (data offset) order */
} bcae_st_file;

/* Reads a whole regular file (anything else is refused before it can
 * block). Every failure is an error status whose message names the file
 * and, where one is at fault, the tensor; *out is then empty (safe to
 * bcae_st_free). A file with a BCAE_ST_CHECKSUM_KEY entry whose data do
 * not match it is BCAE_ERR_FORMAT. Allocations never exceed a small
 * multiple of the file size. */
bcae_status bcae_st_read(const char *path, bcae_st_file *out, bcae_error *err);
/* Same, from bytes in memory (copied; `name` is used in messages). */
bcae_status bcae_st_read_buffer(const void *buf, size_t len, const char *name,
                                bcae_st_file *out, bcae_error *err);
/* The tensor of that name, or NULL. O(log count). */
const bcae_st_tensor *bcae_st_find(const bcae_st_file *f, const char *name);
/* The metadata value of key, or NULL. */
const char *bcae_st_meta(const bcae_st_file *f, const char *key);
void bcae_st_free(bcae_st_file *f);

/* safetensors' spelling of a dtype ("F32", "BF16", "I64", ...), or NULL. */
const char *bcae_st_dtype_name(bcae_dtype dtype);
/* Bytes per element, BF16 included; 0 for anything else unknown. */
size_t bcae_st_itemsize(bcae_dtype dtype);
/* Elements of a tensor (1 for a scalar). */
size_t bcae_st_count(const bcae_st_tensor *t);
/* Converts a floating-point tensor (F16, BF16, F32, F64) to float;
 * out holds bcae_st_count(t) floats. Other dtypes: BCAE_ERR_UNSUPPORTED. */
bcae_status bcae_st_to_f32(const bcae_st_tensor *t, float *out, bcae_error *err);

/* One tensor to write. data holds prod(shape) native-order items in C
 * order (may be NULL when that is zero); shape may be NULL when ndim == 0. */
typedef struct bcae_st_entry {
    const char *name;
    bcae_dtype dtype; /* any bcae_dtype or BCAE_ST_DTYPE_BF16 */
    int ndim;
    const size_t *shape;
    const void *data;
} bcae_st_entry;

/* Writes a file atomically (temporary file, fsync, rename): tensors in the
 * order given with contiguous data offsets, the header padded with spaces
 * to a multiple of 8 bytes, the metadata given followed by
 * BCAE_ST_CHECKSUM_KEY. Names and metadata must be valid UTF-8 without
 * NUL; names unique and not "__metadata__"; metadata keys unique. */
bcae_status bcae_st_write(const char *path, const bcae_st_entry *entries, size_t n,
                          const char *const *meta_keys, const char *const *meta_values,
                          size_t nmeta, bcae_error *err);

/* The model fingerprint: SHA-256 of the tensor data concatenated in file
 * order (the whole data buffer, little-endian as stored), so it depends on
 * the weights and their order, not on the header's spelling or metadata. */
bcae_status bcae_st_fingerprint(const bcae_st_file *f, uint8_t out[32]);

#endif
