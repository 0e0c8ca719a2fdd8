/*
 * The CPU backend's own kernels: layout transfers, 2x2 pooling and
 * upsampling, the LeakyReLU and ReZero tails, accumulation.
 *
 * Every kernel works directly on the blocked layout nChw<B>c of
 * cpu_internal.h: a "row" (n, c-block, y) is W * B contiguous floats, and the
 * B channels of one pixel are adjacent, so the innermost loops run over
 * contiguous floats and vectorise. Element-wise kernels ignore the layout
 * altogether: two tensors of the same shape share it, so they are flat loops.
 *
 * Threads split rows (or flat ranges) statically; nothing depends on which
 * thread runs what, except the one reduction (ReZero's dalpha), which is
 * summed over fixed chunks in a fixed order, so its result does not depend on
 * the thread count either.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/error.h"
#include "nn/cpu/cpu_internal.h"

/* Fixed number of pieces a reduction is cut into, independent of the thread
 * count, so the order of the double additions (and so the result) is too.
 * 128 keeps up to 16 threads balanced; the partials live on the stack. */
#define CPU_REDUCE_CHUNKS 128
/* Independent double accumulators inside a chunk: lanes the compiler can
 * keep in vector registers without reassociating anything. */
#define CPU_REDUCE_LANES 8

static size_t tensor_count(const nn_tensor *t)
{
    return (size_t)t->n * (size_t)t->c * (size_t)t->h * (size_t)t->w;
}

/* Element-wise operations need every tensor of one shape (else they would
 * read or write outside one); NULL entries are skipped. */
static bcae_status check_same(nn_engine *e, const char *op, const nn_tensor *a,
                              const nn_tensor *b, const nn_tensor *c)
{
    const nn_tensor *o[2] = {b, c};
    for (int i = 0; i < 2; i++)
        if (o[i] && (o[i]->n != a->n || o[i]->c != a->c || o[i]->h != a->h || o[i]->w != a->w))
            return bcae_fail(&e->last_error, BCAE_ERR_SHAPE,
                             "%s: tensors of shapes %dx%dx%dx%d and %dx%dx%dx%d", op, a->n, a->c,
                             a->h, a->w, o[i]->n, o[i]->c, o[i]->h, o[i]->w);
    return BCAE_OK;
}

/* ---- layout transfers -------------------------------------------------------- */

bcae_status cpu_from_nchw(nn_engine *e, const float *host, nn_tensor *t)
{
    const int b = cpu_block(t->c), cb_count = t->c / b, h = t->h, w = t->w;
    const size_t hw = (size_t)h * (size_t)w;
    /* One task per destination row (n, c-block, y): it reads B source rows
     * (one per channel) and interleaves them. */
#pragma omp parallel for collapse(3) schedule(static) num_threads(cpu_threads(e))
    for (int n = 0; n < t->n; n++)
        for (int cb = 0; cb < cb_count; cb++)
            for (int y = 0; y < h; y++) {
                float *dst = t->data + (((size_t)n * (size_t)cb_count + (size_t)cb) *
                                            (size_t)h + (size_t)y) * (size_t)w * (size_t)b;
                const float *src = host + ((size_t)n * (size_t)t->c + (size_t)cb * (size_t)b) *
                                              hw + (size_t)y * (size_t)w;
                for (int ci = 0; ci < b; ci++)
                    for (int x = 0; x < w; x++)
                        dst[(size_t)x * (size_t)b + (size_t)ci] = src[(size_t)ci * hw + (size_t)x];
            }
    return BCAE_OK;
}

bcae_status cpu_to_nchw(nn_engine *e, const nn_tensor *t, float *host)
{
    const int b = cpu_block(t->c), cb_count = t->c / b, h = t->h, w = t->w;
    const size_t hw = (size_t)h * (size_t)w;
#pragma omp parallel for collapse(3) schedule(static) num_threads(cpu_threads(e))
    for (int n = 0; n < t->n; n++)
        for (int cb = 0; cb < cb_count; cb++)
            for (int y = 0; y < h; y++) {
                const float *src = t->data + (((size_t)n * (size_t)cb_count + (size_t)cb) *
                                                  (size_t)h + (size_t)y) * (size_t)w * (size_t)b;
                float *dst = host + ((size_t)n * (size_t)t->c + (size_t)cb * (size_t)b) * hw +
                             (size_t)y * (size_t)w;
                for (int ci = 0; ci < b; ci++)
                    for (int x = 0; x < w; x++)
                        dst[(size_t)ci * hw + (size_t)x] = src[(size_t)x * (size_t)b + (size_t)ci];
            }
    return BCAE_OK;
}

bcae_status cpu_from_nhwc(nn_engine *e, const float *host, nn_tensor *t)
{
    const int b = cpu_block(t->c), cb_count = t->c / b, h = t->h, w = t->w, c = t->c;
    /* Each pixel's channels are contiguous on both sides; a block copies B of
     * them (for c == B, the whole row is one memcpy-like run). */
#pragma omp parallel for collapse(3) schedule(static) num_threads(cpu_threads(e))
    for (int n = 0; n < t->n; n++)
        for (int cb = 0; cb < cb_count; cb++)
            for (int y = 0; y < h; y++) {
                float *dst = t->data + (((size_t)n * (size_t)cb_count + (size_t)cb) *
                                            (size_t)h + (size_t)y) * (size_t)w * (size_t)b;
                const float *src = host + ((size_t)n * (size_t)h + (size_t)y) * (size_t)w *
                                              (size_t)c + (size_t)cb * (size_t)b;
                for (int x = 0; x < w; x++)
                    for (int ci = 0; ci < b; ci++)
                        dst[(size_t)x * (size_t)b + (size_t)ci] = src[(size_t)x * (size_t)c + (size_t)ci];
            }
    return BCAE_OK;
}

bcae_status cpu_to_nhwc(nn_engine *e, const nn_tensor *t, float *host)
{
    const int b = cpu_block(t->c), cb_count = t->c / b, h = t->h, w = t->w, c = t->c;
#pragma omp parallel for collapse(3) schedule(static) num_threads(cpu_threads(e))
    for (int n = 0; n < t->n; n++)
        for (int cb = 0; cb < cb_count; cb++)
            for (int y = 0; y < h; y++) {
                const float *src = t->data + (((size_t)n * (size_t)cb_count + (size_t)cb) *
                                                  (size_t)h + (size_t)y) * (size_t)w * (size_t)b;
                float *dst = host + ((size_t)n * (size_t)h + (size_t)y) * (size_t)w * (size_t)c +
                             (size_t)cb * (size_t)b;
                for (int x = 0; x < w; x++)
                    for (int ci = 0; ci < b; ci++)
                        dst[(size_t)x * (size_t)c + (size_t)ci] = src[(size_t)x * (size_t)b + (size_t)ci];
            }
    return BCAE_OK;
}

bcae_status cpu_fill(nn_engine *e, nn_tensor *t, float value)
{
    const size_t count = tensor_count(t);
    float *d = t->data;
#pragma omp parallel for schedule(static) num_threads(cpu_threads(e))
    for (size_t i = 0; i < count; i++) d[i] = value;
    return BCAE_OK;
}

/* ---- AvgPool2d(2, 2) and nearest Upsample x2 ----------------------------------
 * Both need the large side's h and w to be exactly twice the small side's:
 * BCAE-2D only pools 192x256 -> 96x128 -> 48x64 -> 24x32 and upsamples back,
 * so they are always even. (PyTorch would floor odd sizes; we do not support
 * them.) Input and output have the same channel count, hence the same block
 * size, so a pixel's B channels line up on both sides. */

/* small = scale * (sum of each 2x2 block of big): the pooling forward
 * (scale 1/4) and the upsampling backward (scale 1). */
static void reduce2x2(nn_engine *e, const nn_tensor *big, nn_tensor *small, float scale)
{
    const int b = cpu_block(small->c), cb_count = small->c / b, sh = small->h, sw = small->w;
    const size_t big_row = (size_t)big->w * (size_t)b;
#pragma omp parallel for collapse(3) schedule(static) num_threads(cpu_threads(e))
    for (int n = 0; n < small->n; n++)
        for (int cb = 0; cb < cb_count; cb++)
            for (int sy = 0; sy < sh; sy++) {
                const size_t plane = (size_t)n * (size_t)cb_count + (size_t)cb;
                float *out = small->data + (plane * (size_t)sh + (size_t)sy) * (size_t)sw * (size_t)b;
                const float *r0 = big->data + (plane * (size_t)big->h + 2 * (size_t)sy) * big_row;
                const float *r1 = r0 + big_row;
                for (int sx = 0; sx < sw; sx++)
                    for (int ci = 0; ci < b; ci++) {
                        size_t i0 = 2 * (size_t)sx * (size_t)b + (size_t)ci, i1 = i0 + (size_t)b;
                        out[(size_t)sx * (size_t)b + (size_t)ci] =
                            scale * ((r0[i0] + r0[i1]) + (r1[i0] + r1[i1]));
                    }
            }
}

/* Every value of small, times scale, into its 2x2 block of big: the
 * upsampling forward (scale 1) and the pooling backward (scale 1/4). */
static void spread2x2(nn_engine *e, const nn_tensor *small, nn_tensor *big, float scale)
{
    const int b = cpu_block(small->c), cb_count = small->c / b, sh = small->h, sw = small->w;
    const size_t big_row = (size_t)big->w * (size_t)b;
#pragma omp parallel for collapse(3) schedule(static) num_threads(cpu_threads(e))
    for (int n = 0; n < small->n; n++)
        for (int cb = 0; cb < cb_count; cb++)
            for (int sy = 0; sy < sh; sy++) {
                const size_t plane = (size_t)n * (size_t)cb_count + (size_t)cb;
                const float *in = small->data + (plane * (size_t)sh + (size_t)sy) * (size_t)sw * (size_t)b;
                float *r0 = big->data + (plane * (size_t)big->h + 2 * (size_t)sy) * big_row;
                float *r1 = r0 + big_row;
                for (int sx = 0; sx < sw; sx++)
                    for (int ci = 0; ci < b; ci++) {
                        float v = scale * in[(size_t)sx * (size_t)b + (size_t)ci];
                        size_t i0 = 2 * (size_t)sx * (size_t)b + (size_t)ci, i1 = i0 + (size_t)b;
                        r0[i0] = v;
                        r0[i1] = v;
                        r1[i0] = v;
                        r1[i1] = v;
                    }
            }
}

/* The large side exactly twice the small one (else the kernels would read
 * or write outside a tensor). */
static bcae_status check2x2(nn_engine *e, const char *op, const nn_tensor *big,
                            const nn_tensor *small)
{
    if (big->n == small->n && big->c == small->c && big->h == 2 * small->h &&
        big->w == 2 * small->w)
        return BCAE_OK;
    return bcae_fail(&e->last_error, BCAE_ERR_SHAPE,
                     "%s: %dx%dx%dx%d and %dx%dx%dx%d are not a 2x2 pair", op, big->n, big->c,
                     big->h, big->w, small->n, small->c, small->h, small->w);
}

bcae_status cpu_avgpool2_forward(nn_engine *e, const nn_tensor *x, nn_tensor *y)
{
    bcae_status s = check2x2(e, "avgpool2_forward", x, y);
    if (s == BCAE_OK) reduce2x2(e, x, y, 0.25f);
    return s;
}

bcae_status cpu_avgpool2_backward(nn_engine *e, const nn_tensor *dy, nn_tensor *dx)
{
    bcae_status s = check2x2(e, "avgpool2_backward", dx, dy);
    if (s == BCAE_OK) spread2x2(e, dy, dx, 0.25f);
    return s;
}

bcae_status cpu_upsample2_forward(nn_engine *e, const nn_tensor *x, nn_tensor *y)
{
    bcae_status s = check2x2(e, "upsample2_forward", y, x);
    if (s == BCAE_OK) spread2x2(e, x, y, 1.0f);
    return s;
}

bcae_status cpu_upsample2_backward(nn_engine *e, const nn_tensor *dy, nn_tensor *dx)
{
    bcae_status s = check2x2(e, "upsample2_backward", dy, dx);
    if (s == BCAE_OK) reduce2x2(e, dy, dx, 1.0f);
    return s;
}

/* ---- activations -------------------------------------------------------------
 * LeakyReLU's derivative is taken as 1 where the output is > 0 and the slope
 * elsewhere (0 included), as PyTorch does. Every element-wise kernel reads
 * all its inputs for an index before writing any output there, which is what
 * makes the aliasing engine.h allows safe.
 */

/* key > 0 ? v : v * slope, without a branch. Written plainly, gcc (which
 * under the default -ftrapping-math may neither speculate the multiply nor
 * if-convert a float comparison) keeps a branch, does not vectorise, and
 * runs 3x slower on mixed signs. Here the comparison is on the key's bits as
 * an int32 (> 0 exactly for floats > 0, NaNs with the sign clear aside, which
 * give NaN either way) and both candidates are blended with a mask. */
static inline float lrelu_select(float key, float v)
{
    int32_t k;
    uint32_t pos, neg, mask;
    float negv = v * NN_LEAKY_SLOPE, out;
    memcpy(&k, &key, sizeof k);
    memcpy(&pos, &v, sizeof pos);
    memcpy(&neg, &negv, sizeof neg);
    mask = 0u - (uint32_t)(k > 0);
    pos = (pos & mask) | (neg & ~mask);
    memcpy(&out, &pos, sizeof out);
    return out;
}

bcae_status cpu_leaky_relu_backward(nn_engine *e, const nn_tensor *y, const nn_tensor *dy,
                                    nn_tensor *dx)
{
    bcae_status st = check_same(e, "leaky_relu_backward", y, dy, dx);
    if (st != BCAE_OK) return st;
    const size_t count = tensor_count(y);
    const float *yv = y->data, *g = dy->data;
    float *out = dx->data;
#pragma omp parallel for schedule(static) num_threads(cpu_threads(e))
    for (size_t i = 0; i < count; i++) {
        out[i] = lrelu_select(yv[i], g[i]);
    }
    return BCAE_OK;
}

bcae_status cpu_rezero_forward(nn_engine *e, float alpha, const nn_tensor *h, const nn_tensor *x,
                               nn_tensor *y)
{
    bcae_status st = check_same(e, "rezero_forward", h, x, y);
    if (st != BCAE_OK) return st;
    const size_t count = tensor_count(h);
    const float *hv = h->data, *xv = x->data;
    float *out = y->data;
#pragma omp parallel for schedule(static) num_threads(cpu_threads(e))
    for (size_t i = 0; i < count; i++) {
        float z = alpha * hv[i] + xv[i];
        out[i] = lrelu_select(z, z);
    }
    return BCAE_OK;
}

bcae_status cpu_rezero_backward(nn_engine *e, float alpha, const nn_tensor *h,
                                const nn_tensor *y, const nn_tensor *dy, nn_tensor *dh,
                                nn_tensor *dx, double *dalpha)
{
    bcae_status st = check_same(e, "rezero_backward", h, y, dy);
    if (st == BCAE_OK) st = check_same(e, "rezero_backward", h, dh, dx);
    if (st != BCAE_OK) return st;
    const size_t count = tensor_count(h);
    const float *hv = h->data, *yv = y->data, *g = dy->data;
    float *dhv = dh->data, *dxv = dx->data;
    double partial[CPU_REDUCE_CHUNKS];
    /* Chunk k covers [k * count / K, (k + 1) * count / K): fixed by the
     * shape alone. Inside it, element i - lo goes to lane (i - lo) % LANES;
     * the lanes and then the chunks are added in order. */
#pragma omp parallel for schedule(static) num_threads(cpu_threads(e))
    for (int k = 0; k < CPU_REDUCE_CHUNKS; k++) {
        const size_t lo = count * (size_t)k / CPU_REDUCE_CHUNKS;
        const size_t hi = count * (size_t)(k + 1) / CPU_REDUCE_CHUNKS;
        /* dz first (dh and dy may share storage, so dy is not read again),
         * then sum(dz * h) from dx, which holds dz and is still in cache.
         * Two simple loops vectorise; one fused loop does not. */
        for (size_t i = lo; i < hi; i++) {
            float dz = lrelu_select(yv[i], g[i]);
            dhv[i] = alpha * dz;
            dxv[i] = dz;
        }
        double lane[CPU_REDUCE_LANES] = {0};
        size_t i = lo;
        for (; i + CPU_REDUCE_LANES <= hi; i += CPU_REDUCE_LANES)
            for (int j = 0; j < CPU_REDUCE_LANES; j++)
                lane[j] += (double)dxv[i + (size_t)j] * (double)hv[i + (size_t)j];
        for (int j = 0; i < hi; i++, j++) lane[j] += (double)dxv[i] * (double)hv[i];
        double sum = 0.0;
        for (int j = 0; j < CPU_REDUCE_LANES; j++) sum += lane[j];
        partial[k] = sum;
    }
    double total = 0.0;
    for (int k = 0; k < CPU_REDUCE_CHUNKS; k++) total += partial[k];
    *dalpha = total;
    return BCAE_OK;
}

bcae_status cpu_add(nn_engine *e, nn_tensor *acc, const nn_tensor *x)
{
    bcae_status st = check_same(e, "add", acc, x, NULL);
    if (st != BCAE_OK) return st;
    const size_t count = tensor_count(acc);
    float *a = acc->data;
    const float *xv = x->data;
#pragma omp parallel for schedule(static) num_threads(cpu_threads(e))
    for (size_t i = 0; i < count; i++) a[i] += xv[i];
    return BCAE_OK;
}
