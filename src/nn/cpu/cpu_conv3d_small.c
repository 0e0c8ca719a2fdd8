/*
 * Direct kernels for the small 3D convolutions of the BCAE++ / BCAE-HT
 * decoders in training: Conv3d, kernel 3, stride 1, padding 1, at most
 * C3S_MAX_CHANNELS channels in and out (the 2 -> 2, 2 -> 1, 4 -> 4 layers
 * and the shuffle form's 4 -> 8, 8 -> 16 inner convs, at full resolution).
 *
 * Why: oneDNN 2.x has no blocked JIT kernel for these channel counts and
 * runs them as im2col + GEMM on plain layouts at 10-20 GFLOP/s, ~90% of a
 * BCAE-HT training step (bench/RESULTS.md). Here:
 *  - forward: each output row (n, d, h) is computed for a block of CB
 *    output channels x WV vectors of 16 columns at once, accumulators in
 *    registers, one broadcast weight per channel and tap; bias and the
 *    LeakyReLU post-op are applied on the way out.
 *  - backward-data: for stride 1, k3, p1 the adjoint is itself such a
 *    convolution of dy, with the kernel flipped in (d, h, w) and in / out
 *    channels swapped, so it runs the forward kernel on weights packed that
 *    way (no bias, no post-op).
 *  - backward-weights: per row and input channel, tap row (kd, kh) and
 *    block of output channels, 3 x CB vector accumulators (kw = 0, 1, 2)
 *    sweep the row and are added into per-thread vector partials; the
 *    partials are reduced in thread order at the end, so the result is
 *    deterministic for a given thread count (no atomics).
 * Inputs are first copied into private zero-padded plain buffers (one
 * plane, row and column of zeros on every side, rows rounded up to whole
 * vectors), so the inner loops have no bounds checks; the borders are
 * zeroed once at create and never written. Activations in the caller's
 * blocked layouts (nCdhw8c / nCdhw16c for 8 / 16 channels) are converted on
 * the way in and out.
 * The portable C path computes the same sums (up to FMA rounding and
 * order); it runs where AVX-512 is missing.
 */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <immintrin.h>

#include "core/error.h"
#include "nn/cpu/cpu_internal.h"
#include "nn/cpu/cpu_report.h"

#define AVX512_TARGET "avx512f,avx512vl,avx512dq,fma"

enum { S_ALIGN = 64, TAPS = 27 };

struct c3s {
    int n, cin, cout, D, H, W;
    int training, threads, avx512;
    int rs;              /* padded row stride (floats) */
    size_t xcs, ycs;     /* padded channel strides: x (cin channels), dy (cout) */
    float *xpad, *ypad;  /* (n, c, D + 2, H + 2, rs), zero borders */
    float *tmp;          /* plain output before a blocked caller layout */
    float *wf, *wb;      /* packed [ci][27][cout] forward, [co][27][cin] backward-data */
    float *bias, *zero;  /* cout, cin */
    float *part;         /* per thread: cout * cin * 27 + cout vectors of 16 partial sums */
    size_t part_floats;  /* per thread */
};

int c3s_applies(const nn_conv3d_desc *d)
{
    return !d->transposed && d->cin <= C3S_MAX_CHANNELS && d->cout <= C3S_MAX_CHANNELS &&
           d->k[0] == 3 && d->k[1] == 3 && d->k[2] == 3 && d->stride[0] == 1 &&
           d->stride[1] == 1 && d->stride[2] == 1 && d->pad[0] == 1 && d->pad[1] == 1 &&
           d->pad[2] == 1;
}

static void *alloc_zero(size_t floats)
{
    size_t bytes = ((floats * sizeof(float) + S_ALIGN - 1) / S_ALIGN) * S_ALIGN;
    void *p = aligned_alloc(S_ALIGN, bytes ? bytes : S_ALIGN);
    if (p) memset(p, 0, bytes);
    return p;
}

static int cpu_has_avx512(void)
{
    return cpu_isa_allows(CPU_LEVEL_AVX512) && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("fma");
}

void c3s_destroy(c3s *s)
{
    if (!s) return;
    free(s->xpad);
    free(s->ypad);
    free(s->tmp);
    free(s->wf);
    free(s->wb);
    free(s->bias);
    free(s->zero);
    free(s->part);
    free(s);
}

bcae_status c3s_create(const nn_conv3d_desc *d, int training, int threads, int portable, c3s **out,
                       bcae_error *err)
{
    *out = NULL;
    c3s *s = calloc(1, sizeof *s);
    if (!s) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "conv3d: out of memory");
    s->n = d->n, s->cin = d->cin, s->cout = d->cout, s->D = d->d, s->H = d->h, s->W = d->w;
    s->training = training;
    s->threads = threads > 0 ? threads : omp_get_max_threads();
    s->avx512 = !portable && cpu_has_avx512();
    /* Column w at 1 + w; a vector starting at column q0 + kw (q0 < W rounded
     * up to 16, kw <= 2) stays inside the row. */
    s->rs = ((s->W + 15) / 16) * 16 + 16;
    const size_t plane = (size_t)(s->D + 2) * (size_t)(s->H + 2) * (size_t)s->rs;
    s->xcs = plane, s->ycs = plane;
    const size_t vol = (size_t)s->D * (size_t)s->H * (size_t)s->W;
    const int blocked = cpu_block(s->cin) > 1 || cpu_block(s->cout) > 1;
    const int cmax = s->cin > s->cout ? s->cin : s->cout;
    const size_t nw = (size_t)s->cin * (size_t)s->cout * TAPS;
    s->xpad = alloc_zero((size_t)s->n * (size_t)s->cin * plane);
    s->wf = alloc_zero(nw);
    s->bias = alloc_zero((size_t)s->cout);
    s->zero = alloc_zero((size_t)s->cin);
    int ok = s->xpad && s->wf && s->bias && s->zero;
    if (blocked) ok = ok && (s->tmp = alloc_zero((size_t)s->n * (size_t)cmax * vol));
    if (training) {
        s->part_floats = (nw + (size_t)s->cout) * 16;
        s->ypad = alloc_zero((size_t)s->n * (size_t)s->cout * plane);
        s->wb = alloc_zero(nw);
        s->part = alloc_zero((size_t)s->threads * s->part_floats);
        ok = ok && s->ypad && s->wb && s->part;
    }
    if (!ok) {
        c3s_destroy(s);
        return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "conv3d: out of memory");
    }
    *out = s;
    return BCAE_OK;
}

void c3s_set_weights(c3s *s, const float *weight, const float *bias)
{
    const int ci_n = s->cin, co_n = s->cout;
    for (int co = 0; co < co_n; co++)
        for (int ci = 0; ci < ci_n; ci++)
            for (int t = 0; t < TAPS; t++) {
                float w = weight[((size_t)co * ci_n + ci) * TAPS + t];
                s->wf[((size_t)ci * TAPS + t) * co_n + co] = w;
                if (s->wb) s->wb[((size_t)co * TAPS + (TAPS - 1 - t)) * ci_n + ci] = w;
            }
    memcpy(s->bias, bias, (size_t)co_n * sizeof(float));
}

/* ---- layouts ------------------------------------------------------------------- */

/* Caller tensor (n, c, D, H, W) in nCdhw<B>c, B = cpu_block(c) -> the padded
 * interior. */
static void pad_in(const c3s *s, const float *src, int c, float *dst)
{
    const int B = cpu_block(c), D = s->D, H = s->H, W = s->W, rs = s->rs;
    const size_t plane = (size_t)(D + 2) * (size_t)(H + 2) * (size_t)rs;
    const int cb = c / B;
#pragma omp parallel for collapse(4) schedule(static) num_threads(s->threads)
    for (int n = 0; n < s->n; n++)
        for (int k = 0; k < cb; k++)
            for (int z = 0; z < D; z++)
                for (int y = 0; y < H; y++) {
                    const float *from =
                        src + ((((size_t)n * cb + k) * D + z) * H + y) * (size_t)W * B;
                    float *to = dst + ((size_t)n * c + (size_t)k * B) * plane +
                                ((size_t)(z + 1) * (H + 2) + (size_t)(y + 1)) * rs + 1;
                    if (B == 1) {
                        memcpy(to, from, (size_t)W * sizeof(float));
                        continue;
                    }
                    for (int x = 0; x < W; x++)
                        for (int b = 0; b < B; b++) to[(size_t)b * plane + x] = from[x * B + b];
                }
}

/* Plain (n, c, D, H, W) -> nCdhw<B>c, B > 1. */
static void block_out(const c3s *s, const float *src, int c, float *dst)
{
    const int B = cpu_block(c), D = s->D, H = s->H, W = s->W;
    const size_t vol = (size_t)D * H * W;
    const int cb = c / B;
#pragma omp parallel for collapse(4) schedule(static) num_threads(s->threads)
    for (int n = 0; n < s->n; n++)
        for (int k = 0; k < cb; k++)
            for (int z = 0; z < D; z++)
                for (int y = 0; y < H; y++) {
                    const size_t row = ((size_t)z * H + y) * W;
                    float *to = dst + (((size_t)n * cb + k) * vol + row) * B;
                    const float *from = src + ((size_t)n * c + (size_t)k * B) * vol + row;
                    for (int x = 0; x < W; x++)
                        for (int b = 0; b < B; b++) to[x * B + b] = from[(size_t)b * vol + x];
                }
}

/* ---- forward kernel --------------------------------------------------------------
 * out (n, cout, D, H, W) plain = conv(src padded, cin channels) with weights
 * packed [ci][27][cout]. */
typedef struct fwd_args {
    const float *src;
    size_t cs;
    int cin, cout;
    const float *w, *bias;
    float *out;
    int leaky;
} fwd_args;

static inline const float *src_row(const c3s *s, const fwd_args *a, int n, int ci, int z, int y)
{
    /* padded row (z + kd - 1 + 1, y + kh - 1 + 1) for kd = kh = 0 */
    return a->src + ((size_t)n * a->cin + ci) * a->cs +
           ((size_t)z * (s->H + 2) + (size_t)y) * s->rs;
}

static void fwd_row_portable(const c3s *s, const fwd_args *a, int n, int z, int y)
{
    const int W = s->W, C = a->cout, hs = s->H + 2, rs = s->rs;
    const size_t vol = (size_t)s->D * s->H * W;
    for (int co = 0; co < C; co++) {
        float *o = a->out + ((size_t)n * C + co) * vol + ((size_t)z * s->H + y) * W;
        for (int q = 0; q < W; q++) o[q] = a->bias[co];
        for (int ci = 0; ci < a->cin; ci++) {
            const float *base = src_row(s, a, n, ci, z, y);
            for (int t = 0; t < TAPS; t++) {
                const float w = a->w[((size_t)ci * TAPS + t) * C + co];
                const float *p = base + ((size_t)(t / 9) * hs + (size_t)(t / 3 % 3)) * rs + t % 3;
                for (int q = 0; q < W; q++) o[q] += w * p[q];
            }
        }
        if (a->leaky)
            for (int q = 0; q < W; q++) o[q] = o[q] > 0.0f ? o[q] : NN_LEAKY_SLOPE * o[q];
    }
}

/* Output channels c0 .. c0 + CB - 1, columns q0 .. q0 + 16 WV - 1 of row
 * (n, z, y); inlined per (CB, WV) so the accumulators stay in registers. */
__attribute__((target(AVX512_TARGET), always_inline)) static inline void
fwd_tile(const c3s *s, const fwd_args *a, int n, int z, int y, int c0, int q0, const int CB,
         const int WV)
{
    __m512 acc[16][4];
    const int C = a->cout, W = s->W;
    const size_t hs = (size_t)(s->H + 2) * s->rs, rs = (size_t)s->rs;
    _Pragma("GCC unroll 16") for (int c = 0; c < CB; c++) {
        __m512 b = _mm512_set1_ps(a->bias[c0 + c]);
        _Pragma("GCC unroll 4") for (int v = 0; v < WV; v++) acc[c][v] = b;
    }
    const float *wp = a->w + c0;
    for (int ci = 0; ci < a->cin; ci++) {
        const float *base = src_row(s, a, n, ci, z, y) + q0;
        for (int kd = 0; kd < 3; kd++)
            for (int kh = 0; kh < 3; kh++) {
                const float *row = base + kd * hs + kh * rs;
                _Pragma("GCC unroll 3") for (int kw = 0; kw < 3; kw++, wp += C) {
                    __m512 x[4];
                    _Pragma("GCC unroll 4") for (int v = 0; v < WV; v++)
                        x[v] = _mm512_loadu_ps(row + kw + 16 * v);
                    _Pragma("GCC unroll 16") for (int c = 0; c < CB; c++) {
                        __m512 w = _mm512_set1_ps(wp[c]);
                        _Pragma("GCC unroll 4") for (int v = 0; v < WV; v++)
                            acc[c][v] = _mm512_fmadd_ps(x[v], w, acc[c][v]);
                    }
                }
            }
    }
    const size_t vol = (size_t)s->D * s->H * W;
    float *o = a->out + ((size_t)n * C + c0) * vol + ((size_t)z * s->H + y) * W + q0;
    const __m512 slope = _mm512_set1_ps(NN_LEAKY_SLOPE);
    _Pragma("GCC unroll 4") for (int v = 0; v < WV; v++) {
        const int left = W - q0 - 16 * v;
        const __mmask16 m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
        _Pragma("GCC unroll 16") for (int c = 0; c < CB; c++) {
            __m512 r = acc[c][v];
            /* slope in (0, 1): max(r, slope r) is r > 0 ? r : slope r */
            if (a->leaky) r = _mm512_max_ps(r, _mm512_mul_ps(r, slope));
            _mm512_mask_storeu_ps(o + (size_t)c * vol + 16 * v, m, r);
        }
    }
}

typedef void (*fwd_tile_fn)(const c3s *, const fwd_args *, int, int, int, int, int);

/* Per CB: the widest tile (CB x WV <= 16 accumulators, WV <= 4) and WV = 1. */
#define FWD_TILE(CB, WV)                                                                     \
    __attribute__((target(AVX512_TARGET))) static void fwd_tile_##CB##_##WV(                 \
        const c3s *s, const fwd_args *a, int n, int z, int y, int c0, int q0)                \
    {                                                                                        \
        fwd_tile(s, a, n, z, y, c0, q0, CB, WV);                                             \
    }
#define FWD_TILES(X)                                                                         \
    X(1, 4) X(2, 4) X(3, 4) X(4, 4) X(5, 3) X(6, 2) X(7, 2) X(8, 2) X(9, 1) X(10, 1) X(11, 1) \
    X(12, 1) X(13, 1) X(14, 1) X(15, 1) X(16, 1) X(1, 1) X(2, 1) X(3, 1) X(4, 1) X(5, 1)     \
    X(6, 1) X(7, 1) X(8, 1)
FWD_TILES(FWD_TILE)
#undef FWD_TILE

static const struct {
    fwd_tile_fn wide, one;
    int wv;
} FWD_KINDS[C3S_MAX_CHANNELS + 1] = {
    {NULL, NULL, 0},
    {fwd_tile_1_4, fwd_tile_1_1, 4},
    {fwd_tile_2_4, fwd_tile_2_1, 4},
    {fwd_tile_3_4, fwd_tile_3_1, 4},
    {fwd_tile_4_4, fwd_tile_4_1, 4},
    {fwd_tile_5_3, fwd_tile_5_1, 3},
    {fwd_tile_6_2, fwd_tile_6_1, 2},
    {fwd_tile_7_2, fwd_tile_7_1, 2},
    {fwd_tile_8_2, fwd_tile_8_1, 2},
    {fwd_tile_9_1, fwd_tile_9_1, 1},
    {fwd_tile_10_1, fwd_tile_10_1, 1},
    {fwd_tile_11_1, fwd_tile_11_1, 1},
    {fwd_tile_12_1, fwd_tile_12_1, 1},
    {fwd_tile_13_1, fwd_tile_13_1, 1},
    {fwd_tile_14_1, fwd_tile_14_1, 1},
    {fwd_tile_15_1, fwd_tile_15_1, 1},
    {fwd_tile_16_1, fwd_tile_16_1, 1},
};

static void conv_fwd(const c3s *s, const fwd_args *a)
{
    const int rows = s->n * s->D * s->H, DH = s->D * s->H;
    const int nv = (s->W + 15) / 16, C = a->cout;
#pragma omp parallel for schedule(static) num_threads(s->threads)
    for (int r = 0; r < rows; r++) {
        const int n = r / DH, z = r % DH / s->H, y = r % s->H;
        if (!s->avx512) {
            fwd_row_portable(s, a, n, z, y);
            continue;
        }
        const int wv = FWD_KINDS[C].wv;
        int v = 0;
        for (; v + wv <= nv; v += wv) FWD_KINDS[C].wide(s, a, n, z, y, 0, 16 * v);
        for (; v < nv; v++) FWD_KINDS[C].one(s, a, n, z, y, 0, 16 * v);
    }
}

/* ---- backward-weights kernel ---------------------------------------------------- */

static void bwd_w_row_portable(const c3s *s, float *part, int n, int z, int y)
{
    const int W = s->W, hs = s->H + 2, rs = s->rs, CI = s->cin, CO = s->cout;
    const size_t nw = (size_t)CI * CO * TAPS;
    for (int co = 0; co < CO; co++) {
        const float *g = s->ypad + ((size_t)n * CO + co) * s->ycs +
                         ((size_t)(z + 1) * hs + (size_t)(y + 1)) * rs + 1;
        float *pb = part + (nw + (size_t)co) * 16;
        for (int q = 0; q < W; q++) pb[q % 16] += g[q];
        for (int ci = 0; ci < CI; ci++) {
            const float *base = s->xpad + ((size_t)n * CI + ci) * s->xcs +
                                ((size_t)z * hs + (size_t)y) * rs;
            for (int t = 0; t < TAPS; t++) {
                const float *p = base + ((size_t)(t / 9) * hs + (size_t)(t / 3 % 3)) * rs + t % 3;
                float *pw = part + (((size_t)co * CI + ci) * TAPS + t) * 16;
                for (int q = 0; q < W; q++) pw[q % 16] += g[q] * p[q];
            }
        }
    }
}

/* Output channels c0 .. c0 + CB - 1 of row (n, z, y): for every input
 * channel and tap row, 3 x CB accumulators sweep the row. Columns past W
 * read zeros from dy's padding, so whole vectors are safe. */
__attribute__((target(AVX512_TARGET), always_inline)) static inline void
bwd_w_tile(const c3s *s, float *part, int n, int z, int y, int c0, const int CB)
{
    const int CI = s->cin, CO = s->cout, nv = (s->W + 15) / 16;
    const size_t hs = (size_t)(s->H + 2) * s->rs, rs = (size_t)s->rs;
    const float *g[8];
    _Pragma("GCC unroll 8") for (int c = 0; c < CB; c++)
        g[c] = s->ypad + ((size_t)n * CO + c0 + c) * s->ycs + (size_t)(z + 1) * hs +
               (size_t)(y + 1) * rs + 1;
    for (int ci = 0; ci < CI; ci++) {
        const float *base = s->xpad + ((size_t)n * CI + ci) * s->xcs + (size_t)z * hs +
                            (size_t)y * rs;
        for (int kk = 0; kk < 9; kk++) {
            const float *row = base + (size_t)(kk / 3) * hs + (size_t)(kk % 3) * rs;
            __m512 acc[8][3];
            _Pragma("GCC unroll 8") for (int c = 0; c < CB; c++)
                _Pragma("GCC unroll 3") for (int k = 0; k < 3; k++) acc[c][k] =
                    _mm512_setzero_ps();
            for (int v = 0; v < nv; v++) {
                const __m512 x0 = _mm512_loadu_ps(row + 16 * v),
                             x1 = _mm512_loadu_ps(row + 16 * v + 1),
                             x2 = _mm512_loadu_ps(row + 16 * v + 2);
                _Pragma("GCC unroll 8") for (int c = 0; c < CB; c++) {
                    const __m512 gv = _mm512_loadu_ps(g[c] + 16 * v);
                    acc[c][0] = _mm512_fmadd_ps(gv, x0, acc[c][0]);
                    acc[c][1] = _mm512_fmadd_ps(gv, x1, acc[c][1]);
                    acc[c][2] = _mm512_fmadd_ps(gv, x2, acc[c][2]);
                }
            }
            _Pragma("GCC unroll 8") for (int c = 0; c < CB; c++)
                _Pragma("GCC unroll 3") for (int k = 0; k < 3; k++) {
                    float *p = part + ((((size_t)(c0 + c) * CI + ci) * TAPS) + 3 * kk + k) * 16;
                    _mm512_store_ps(p, _mm512_add_ps(_mm512_load_ps(p), acc[c][k]));
                }
        }
    }
}

typedef void (*bwd_w_tile_fn)(const c3s *, float *, int, int, int, int);

#define BWD_W_TILE(CB)                                                                       \
    __attribute__((target(AVX512_TARGET))) static void bwd_w_tile_##CB(                      \
        const c3s *s, float *part, int n, int z, int y, int c0)                              \
    {                                                                                        \
        bwd_w_tile(s, part, n, z, y, c0, CB);                                                \
    }
BWD_W_TILE(1)
BWD_W_TILE(2)
BWD_W_TILE(3)
BWD_W_TILE(4)
BWD_W_TILE(5)
BWD_W_TILE(6)
BWD_W_TILE(7)
BWD_W_TILE(8)
#undef BWD_W_TILE
static const bwd_w_tile_fn BWD_W_TILES[9] = {NULL,        bwd_w_tile_1, bwd_w_tile_2,
                                             bwd_w_tile_3, bwd_w_tile_4, bwd_w_tile_5,
                                             bwd_w_tile_6, bwd_w_tile_7, bwd_w_tile_8};

__attribute__((target(AVX512_TARGET))) static void bwd_b_row_avx512(const c3s *s, float *part,
                                                                     int n, int z, int y)
{
    const int CO = s->cout, nv = (s->W + 15) / 16;
    const size_t hs = (size_t)(s->H + 2) * s->rs, nw = (size_t)s->cin * CO * TAPS;
    for (int co = 0; co < CO; co++) {
        const float *g = s->ypad + ((size_t)n * CO + co) * s->ycs + (size_t)(z + 1) * hs +
                         (size_t)(y + 1) * s->rs + 1;
        __m512 acc = _mm512_setzero_ps();
        for (int v = 0; v < nv; v++) acc = _mm512_add_ps(acc, _mm512_loadu_ps(g + 16 * v));
        float *p = part + (nw + (size_t)co) * 16;
        _mm512_store_ps(p, _mm512_add_ps(_mm512_load_ps(p), acc));
    }
}

/* ---- the operations --------------------------------------------------------------- */

void c3s_forward(c3s *s, const float *x, float *y, int leaky)
{
    pad_in(s, x, s->cin, s->xpad);
    const int blocked = cpu_block(s->cout) > 1;
    fwd_args a = {s->xpad, s->xcs, s->cin, s->cout, s->wf, s->bias, blocked ? s->tmp : y, leaky};
    conv_fwd(s, &a);
    if (blocked) block_out(s, s->tmp, s->cout, y);
}

void c3s_backward_data(c3s *s, const float *dy, float *dx)
{
    pad_in(s, dy, s->cout, s->ypad);
    const int blocked = cpu_block(s->cin) > 1;
    fwd_args a = {s->ypad, s->ycs, s->cout, s->cin, s->wb, s->zero, blocked ? s->tmp : dx, 0};
    conv_fwd(s, &a);
    if (blocked) block_out(s, s->tmp, s->cin, dx);
}

void c3s_backward_weights(c3s *s, const float *x, const float *dy, float *dweight, float *dbias)
{
    pad_in(s, x, s->cin, s->xpad);
    pad_in(s, dy, s->cout, s->ypad);
    const int rows = s->n * s->D * s->H, DH = s->D * s->H, T = s->threads;
    memset(s->part, 0, (size_t)T * s->part_floats * sizeof(float));
#pragma omp parallel num_threads(T)
    {
        /* Rows split into equal contiguous ranges by thread number, so each
         * partial sum sees the same rows in the same order on every run. */
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
        float *part = s->part + (size_t)t * s->part_floats;
        const int r0 = (int)((long long)rows * t / nt), r1 = (int)((long long)rows * (t + 1) / nt);
        for (int r = r0; r < r1; r++) {
            const int n = r / DH, z = r % DH / s->H, y = r % s->H;
            if (!s->avx512) {
                bwd_w_row_portable(s, part, n, z, y);
                continue;
            }
            for (int c0 = 0; c0 < s->cout; c0 += 8) {
                const int cb = s->cout - c0 < 8 ? s->cout - c0 : 8;
                BWD_W_TILES[cb](s, part, n, z, y, c0);
            }
            bwd_b_row_avx512(s, part, n, z, y);
        }
    }
    const size_t nw = (size_t)s->cin * s->cout * TAPS;
    for (size_t i = 0; i < nw + (size_t)s->cout; i++) {
        double sum = 0;
        for (int t = 0; t < T; t++) {
            const float *p = s->part + (size_t)t * s->part_floats + i * 16;
            for (int l = 0; l < 16; l++) sum += p[l];
        }
        if (i < nw)
            dweight[i] += (float)sum;
        else
            dbias[i - nw] += (float)sum;
    }
}
