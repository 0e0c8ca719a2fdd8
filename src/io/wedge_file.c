/* TPC wedge files: validation of loaded arrays, and wedge .npy load/save.
 * The model layout (log2, z padding) is the model's: model/wedge_layout.c. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "bcae.h"
#include "core/error.h"

static const size_t wedge_shape[3] = {BCAE_WEDGE_AZIMUTH, BCAE_WEDGE_Z, BCAE_WEDGE_LAYERS};

static void format_shape(const bcae_array *a, char *buf, size_t cap)
{
    size_t n = (size_t)snprintf(buf, cap, "(");
    for (int d = 0; d < a->ndim && n < cap; d++)
        n += (size_t)snprintf(buf + n, cap - n, d ? ", %zu" : "%zu", a->shape[d]);
    if (n < cap) snprintf(buf + n, cap - n, a->ndim == 1 ? ",)" : ")");
}

/* Index i of the file layout as (azimuth, z, layer), for messages. */
static bcae_status range_error(bcae_error *err, const char *name, size_t i, const char *value)
{
    size_t layer = i % BCAE_WEDGE_LAYERS;
    size_t z = i / BCAE_WEDGE_LAYERS % BCAE_WEDGE_Z;
    size_t az = i / ((size_t)BCAE_WEDGE_LAYERS * BCAE_WEDGE_Z);
    return bcae_fail(err, BCAE_ERR_RANGE,
                     "%s: value %s at (azimuth %zu, z %zu, layer %zu) is not an integer ADC "
                     "count in [0, %d]",
                     name, value, az, z, layer, BCAE_ADC_MAX);
}

/* Integer dtypes: one typed loop each, since this runs on every wedge loaded. */
#define COPY_INT(T, FMT, CAST)                                                  \
    do {                                                                        \
        const T *src = a->data;                                                 \
        for (size_t i = 0; i < BCAE_WEDGE_VOXELS; i++) {                         \
            T v = src[i];                                                       \
            if (v < 0 || v > BCAE_ADC_MAX) {                                    \
                char text[32];                                                  \
                snprintf(text, sizeof text, FMT, (CAST)v);                      \
                return range_error(err, name, i, text);                         \
            }                                                                   \
            adc[i] = (uint16_t)v;                                               \
        }                                                                       \
    } while (0)

bcae_status bcae_wedge_from_array(const bcae_array *a, const char *name, uint16_t *adc,
                                  bcae_error *err)
{
    if (!name) name = "wedge";
    if (!a || !adc)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "%s: NULL argument", name);
    if (a->ndim != 3 || a->shape[0] != wedge_shape[0] || a->shape[1] != wedge_shape[1] ||
        a->shape[2] != wedge_shape[2]) {
        char shape[8 * 24 + 4];
        format_shape(a, shape, sizeof shape);
        return bcae_fail(err, BCAE_ERR_SHAPE,
                         "%s: wedge has shape %s, expected (%d, %d, %d) (azimuth, z, layer)",
                         name, shape, BCAE_WEDGE_AZIMUTH, BCAE_WEDGE_Z, BCAE_WEDGE_LAYERS);
    }
/* Unsigned types make "v < 0" always false; that is the point of sharing the macro. */
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wtype-limits"
#endif
    switch (a->dtype) {
    case BCAE_DTYPE_BOOL:
    case BCAE_DTYPE_U8: COPY_INT(uint8_t, "%u", unsigned); break;
    case BCAE_DTYPE_I8: COPY_INT(int8_t, "%d", int); break;
    case BCAE_DTYPE_U16: COPY_INT(uint16_t, "%u", unsigned); break;
    case BCAE_DTYPE_I16: COPY_INT(int16_t, "%d", int); break;
    case BCAE_DTYPE_U32: COPY_INT(uint32_t, "%lu", unsigned long); break;
    case BCAE_DTYPE_I32: COPY_INT(int32_t, "%ld", long); break;
    case BCAE_DTYPE_U64: COPY_INT(uint64_t, "%llu", unsigned long long); break;
    case BCAE_DTYPE_I64: COPY_INT(int64_t, "%lld", long long); break;
    case BCAE_DTYPE_F16:
    case BCAE_DTYPE_F32:
    case BCAE_DTYPE_F64:
        for (size_t i = 0; i < BCAE_WEDGE_VOXELS; i++) {
            double v = bcae_array_get_f64(a, i);
            /* NaN fails every comparison, so it lands here too. */
            if (!(v >= 0 && v <= BCAE_ADC_MAX) || v != floor(v)) {
                char text[32];
                snprintf(text, sizeof text, "%.17g", v);
                return range_error(err, name, i, text);
            }
            adc[i] = (uint16_t)v;
        }
        break;
    default:
        return bcae_fail(err, BCAE_ERR_UNSUPPORTED, "%s: wedge has an unknown dtype", name);
    }
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
    return BCAE_OK;
}

bcae_status bcae_wedge_load(const char *path, uint16_t *adc, bcae_error *err)
{
    bcae_array a;
    bcae_status st = bcae_npy_read(path, &a, err);
    if (st) return st;
    st = bcae_wedge_from_array(&a, path, adc, err);
    bcae_array_free(&a);
    return st;
}

bcae_status bcae_wedge_save(const char *path, const uint16_t *adc, bcae_error *err)
{
    if (!adc) return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "%s: no data", path ? path : "?");
    bcae_array a = {.dtype = BCAE_DTYPE_U16, .ndim = 3};
    memcpy(a.shape, wedge_shape, sizeof wedge_shape);
    /* The writer only reads through data; the cast drops a const it keeps. */
    a.data = (void *)(uintptr_t)adc;
    return bcae_npy_write(path, &a, err);
}
