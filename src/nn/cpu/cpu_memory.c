/*
 * The CPU backend's memory: host memory, so upload and download are plain
 * copies. Buffers are 64-byte aligned (a cache line and an AVX-512 vector;
 * what oneDNN uses itself) and rounded up to whole lines, so that a kernel's
 * vector tail never runs past the allocation.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "nn/cpu/cpu_internal.h"

enum { CPU_ALIGN = 64 };

bcae_status cpu_alloc(nn_engine *e, size_t count, float **out, bcae_error *err)
{
    (void)e;
    *out = NULL;
    if (count > (SIZE_MAX - CPU_ALIGN) / sizeof(float))
        return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "engine: %zu floats are too many", count);
    /* aligned_alloc wants a multiple of the alignment, and 0 bytes would
     * give NULL or a pointer not to use: at least one line. */
    size_t bytes = (count * sizeof(float) + CPU_ALIGN - 1) / CPU_ALIGN * CPU_ALIGN;
    if (bytes == 0) bytes = CPU_ALIGN;
    *out = aligned_alloc(CPU_ALIGN, bytes);
    if (!*out)
        return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "engine: out of memory (%zu floats)", count);
    return BCAE_OK;
}

void cpu_free(nn_engine *e, float *p)
{
    (void)e;
    free(p);
}

bcae_status cpu_tensor_alloc(nn_engine *e, nn_tensor *t, bcae_error *err)
{
    t->data = NULL;
    if (t->n < 1 || t->c < 1 || t->h < 1 || t->w < 1)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT, "engine: tensor of shape %dx%dx%dx%d",
                         t->n, t->c, t->h, t->w);
    return cpu_alloc(e, e->ops->tensor_floats(e, t->n, t->c, t->h, t->w), &t->data, err);
}

void cpu_tensor_free(nn_engine *e, nn_tensor *t)
{
    cpu_free(e, t->data);
    t->data = NULL;
}

bcae_status cpu_upload(nn_engine *e, float *dst, const float *host, size_t count)
{
    (void)e;
    if (count) memmove(dst, host, count * sizeof(float));
    return BCAE_OK;
}

bcae_status cpu_download(nn_engine *e, float *host, const float *src, size_t count)
{
    (void)e;
    if (count) memmove(host, src, count * sizeof(float));
    return BCAE_OK;
}

bcae_status cpu_zero(nn_engine *e, float *dst, size_t count)
{
    (void)e;
    /* All-zero bits are 0.0f in IEEE 754. */
    if (count) memset(dst, 0, count * sizeof(float));
    return BCAE_OK;
}
