/* bcae_array: a small owned N-d array in native byte order and C order. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bcae.h"
#include "core/error.h"

size_t bcae_dtype_size(bcae_dtype dtype)
{
    switch (dtype) {
    case BCAE_DTYPE_BOOL:
    case BCAE_DTYPE_U8:
    case BCAE_DTYPE_I8: return 1;
    case BCAE_DTYPE_U16:
    case BCAE_DTYPE_I16:
    case BCAE_DTYPE_F16: return 2;
    case BCAE_DTYPE_U32:
    case BCAE_DTYPE_I32:
    case BCAE_DTYPE_F32: return 4;
    case BCAE_DTYPE_U64:
    case BCAE_DTYPE_I64:
    case BCAE_DTYPE_F64: return 8;
    case BCAE_DTYPE_COUNT: break;
    }
    return 0;
}

const char *bcae_dtype_name(bcae_dtype dtype)
{
    switch (dtype) {
    case BCAE_DTYPE_BOOL: return "|b1";
    case BCAE_DTYPE_U8: return "|u1";
    case BCAE_DTYPE_I8: return "|i1";
    case BCAE_DTYPE_U16: return "<u2";
    case BCAE_DTYPE_I16: return "<i2";
    case BCAE_DTYPE_U32: return "<u4";
    case BCAE_DTYPE_I32: return "<i4";
    case BCAE_DTYPE_U64: return "<u8";
    case BCAE_DTYPE_I64: return "<i8";
    case BCAE_DTYPE_F16: return "<f2";
    case BCAE_DTYPE_F32: return "<f4";
    case BCAE_DTYPE_F64: return "<f8";
    case BCAE_DTYPE_COUNT: break;
    }
    return "?";
}

size_t bcae_array_count(const bcae_array *a)
{
    size_t n = 1;
    for (int d = 0; d < a->ndim; d++) n *= a->shape[d];
    return n;
}

bcae_status bcae_array_alloc(bcae_array *a, bcae_dtype dtype, int ndim,
                             const size_t *shape, bcae_error *err)
{
    memset(a, 0, sizeof *a);
    if ((unsigned)dtype >= (unsigned)BCAE_DTYPE_COUNT)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "array: unknown dtype %d", (int)dtype);
    if (ndim < 0 || ndim > BCAE_MAX_DIMS)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "array: %d dimensions (at most %d)",
                         ndim, BCAE_MAX_DIMS);
    /* An empty array is empty whatever its other dimensions (the .npy
     * parser accepts such shapes), wherever the zero stands. */
    size_t bytes = bcae_dtype_size(dtype);
    for (int d = 0; d < ndim; d++)
        if (shape[d] == 0) bytes = 0;
    for (int d = 0; d < ndim && bytes; d++) {
        if (bytes > SIZE_MAX / shape[d])
            return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "array: size overflows (dimension %d = %zu)",
                             d, shape[d]);
        bytes *= shape[d];
    }
    /* calloc(0) may return NULL; one byte keeps "data != NULL" meaning "allocated". */
    void *data = calloc(bytes ? bytes : 1, 1);
    if (!data)
        return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "array: out of memory (%zu bytes)", bytes);
    a->dtype = dtype;
    a->ndim = ndim;
    for (int d = 0; d < ndim; d++) a->shape[d] = shape[d];
    a->data = data;
    return BCAE_OK;
}

void bcae_array_free(bcae_array *a)
{
    if (!a) return;
    free(a->data);
    memset(a, 0, sizeof *a);
}

/* IEEE binary16 decoded by hand: C11 has no half type, and the arithmetic is
 * exact in double (every half is a double). */
static double half_to_double(uint16_t h)
{
    int sign = h >> 15;
    int exp = (h >> 10) & 0x1f;
    int frac = h & 0x3ff;
    double v;
    if (exp == 0)
        v = ldexp((double)frac, -24); /* subnormal (or zero): frac * 2^-14 / 1024 */
    else if (exp == 31)
        v = frac ? NAN : INFINITY;
    else
        v = ldexp((double)(frac | 0x400), exp - 25);
    return sign ? -v : v;
}

double bcae_array_get_f64(const bcae_array *a, size_t i)
{
    const void *p = a->data;
    switch (a->dtype) {
    case BCAE_DTYPE_BOOL: return ((const uint8_t *)p)[i] ? 1.0 : 0.0;
    case BCAE_DTYPE_U8: return ((const uint8_t *)p)[i];
    case BCAE_DTYPE_I8: return ((const int8_t *)p)[i];
    case BCAE_DTYPE_U16: return ((const uint16_t *)p)[i];
    case BCAE_DTYPE_I16: return ((const int16_t *)p)[i];
    case BCAE_DTYPE_U32: return ((const uint32_t *)p)[i];
    case BCAE_DTYPE_I32: return ((const int32_t *)p)[i];
    case BCAE_DTYPE_U64: return (double)((const uint64_t *)p)[i];
    case BCAE_DTYPE_I64: return (double)((const int64_t *)p)[i];
    case BCAE_DTYPE_F16: return half_to_double(((const uint16_t *)p)[i]);
    case BCAE_DTYPE_F32: return ((const float *)p)[i];
    case BCAE_DTYPE_F64: return ((const double *)p)[i];
    case BCAE_DTYPE_COUNT: break;
    }
    return NAN;
}
