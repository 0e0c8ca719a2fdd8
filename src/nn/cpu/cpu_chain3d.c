/*
 * Inference chains for the 3D encoders (BCAE++, BCAE-HT) on the CPU.
 *
 * Why not oneDNN layer by layer: BCAE-HT's layers have 1 to 8 channels, where
 * oneDNN 2.6 runs its gemm or AVX2 fallbacks, and BCAE++'s first blocks have 8;
 * a block also costs four separate passes over memory (two strided convs, the
 * inner conv, the ReZero tail). Here:
 *  - main_block.0 and side_block.0 read the same input with the same
 *    geometry, so they are ONE convolution with 2f outputs (main first);
 *    its epilogue applies the bias and LeakyReLU and writes the two halves.
 *  - main_block.3's epilogue applies the whole ReZero tail,
 *    y = lrelu(alpha * (conv3 + b) + side), and writes y in the layout the
 *    next convolution reads.
 *  - Block 0's strided conv reads the 1-channel input, ~89% zeros: each
 *    output row is gathered from the non-zero voxels of the 12 input rows it
 *    sees (NN_FIRST_SPARSE), exact up to summation order; NN_FIRST_DENSE
 *    runs the dense direct kernel instead. With one input channel and 4 or
 *    16 outputs the dense kernel measured faster (a scattered voxel costs a
 *    dependent read-modify-write per tap; a dense tap costs one load for 16
 *    columns), so callers ask for dense (bcae3d_runner_use_fast_encoder).
 *  - Every convolution is a direct kernel vectorised over w (16 lanes) with
 *    a register tile of CB output channels x R rows x WV vectors, its shape
 *    picked per layer by a small cost model (choose_tile). For BCAE++'s 16
 *    and 32 channel layers it measured about as fast as oneDNN's blocked
 *    kernels, so everything stays in the one layout.
 *    Activations are kept zero-padded by one in d, h and w, so the inner
 *    loops have no branches; a tensor read by a stride-2 convolution is
 *    stored with each row split into its even and odd columns, so the
 *    strided taps are contiguous loads too.
 * Rows (n, d, h) are shared among the engine's OpenMP threads. The portable
 * C path (no CPU-specific code) computes the same sums in the same order
 * per output (up to FMA rounding); it runs where AVX-512 is missing and as
 * a check.
 */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <immintrin.h>

#include "core/error.h"
#include "nn/cpu/cpu_internal.h"

#include "nn/cpu/cpu_chain3d.h"
#include "nn/cpu/cpu_report.h"

struct nn_chain3d {
    nn_chain3d_desc d;
    nn_engine *owner;
    int threads, avx512, sparse;
    int nsteps;
    conv_step steps[2 * 8 + 1];
    act3 acts[3 * 8 + 1]; /* per block: main, side, y; plus the dense input copy */
    int nacts;
    float *out_plain;
    size_t out_floats;
    float *acc; /* sparse first layer: one (ow + 2) x 2f row per thread */
    size_t acc_per_thread;
};

/* ---- epilogues, one value at a time (portable) and one vector at a time -------- */

static inline void store_scalar(const act3 *a, float *row, int q, float v)
{
    if (a->layout == ROW_PLAIN) row[1 + q] = v;
    else if (q & 1) row[a->ob + 1 + q / 2] = v;
    else row[1 + q / 2] = v;
}

/* SHUFFLE: output channel co of a transposed conv's shuffle form is
 * (half, o, a, b) with b fastest, a over the step's na row phases; it lands at
 * row 2 oh + a, columns 2 q + b of channel o of the half's activation. */
static inline float *shuffle_row(const conv_step *s, int n, int co, int od, int oh)
{
    const int p = co / 2, a = s->a0 + p % s->na, o = p / s->na;
    const act3 *dst = o < s->f ? s->dst : s->dst_side;
    return act_row(dst, n, o < s->f ? o : o - s->f, od, 2 * oh + a);
}

static void epi_scalar(const conv_step *s, int n, int co, int od, int oh, const float *v, int cnt)
{
    switch (s->epi) {
    case EPI_SHUFFLE: {
        float *row = shuffle_row(s, n, co, od, oh) + 1 + (co & 1);
        for (int q = 0; q < cnt; q++) row[2 * q] = lrelu(v[q]);
        break;
    }
    case EPI_SPLIT: {
        const int f = s->cout / 2;
        const act3 *a = co < f ? s->dst : s->dst_side;
        float *row = act_row(a, n, co < f ? co : co - f, od, oh);
        for (int q = 0; q < cnt; q++) row[1 + q] = lrelu(v[q]);
        break;
    }
    case EPI_REZERO: {
        const float *sr = act_row(s->side, n, co, od, oh) + 1;
        float *row = act_row(s->dst, n, co, od, oh);
        for (int q = 0; q < cnt; q++) store_scalar(s->dst, row, q, lrelu(s->alpha * v[q] + sr[q]));
        break;
    }
    default: {
        float *o = s->out + ((((size_t)n * (size_t)s->cout + (size_t)co) * (size_t)s->od +
                              (size_t)od) * (size_t)s->oh + (size_t)oh) * (size_t)s->ow;
        memcpy(o, v, (size_t)cnt * sizeof *o);
    }
    }
}

__attribute__((target(AVX512_TARGET))) static inline __m512 lrelu16(__m512 v)
{
    return _mm512_max_ps(v, _mm512_mul_ps(v, _mm512_set1_ps(NN_LEAKY_SLOPE)));
}

/* v holds output columns q .. q + 15 (q a multiple of 16), m the valid ones. */
__attribute__((target(AVX512_TARGET))) static inline void
epi_vec(const conv_step *s, int n, int co, int od, int oh, int q, __m512 v, __mmask16 m)
{
    switch (s->epi) {
    case EPI_SPLIT: {
        const int f = s->cout / 2;
        const act3 *a = co < f ? s->dst : s->dst_side;
        float *row = act_row(a, n, co < f ? co : co - f, od, oh);
        _mm512_mask_storeu_ps(row + 1 + q, m, lrelu16(v));
        break;
    }
    case EPI_REZERO: {
        const float *sr = act_row(s->side, n, co, od, oh) + 1 + q;
        const __m512 side = _mm512_maskz_loadu_ps(m, sr);
        __m512 y = lrelu16(_mm512_fmadd_ps(_mm512_set1_ps(s->alpha), v, side));
        float *row = act_row(s->dst, n, co, od, oh);
        if (s->dst->layout == ROW_PLAIN) {
            _mm512_mask_storeu_ps(row + 1 + q, m, y);
        } else {
            /* Even columns to the low half, odd ones to the high half. */
            const __m512i idx =
                _mm512_set_epi32(15, 13, 11, 9, 7, 5, 3, 1, 14, 12, 10, 8, 6, 4, 2, 0);
            __m512 p = _mm512_permutexvar_ps(idx, y);
            const unsigned valid = (unsigned)__builtin_popcount((unsigned)m);
            const __mmask8 me = (__mmask8)((1u << ((valid + 1) / 2)) - 1u);
            const __mmask8 mo = (__mmask8)((1u << (valid / 2)) - 1u);
            _mm256_mask_storeu_ps(row + 1 + q / 2, me, _mm512_castps512_ps256(p));
            _mm256_mask_storeu_ps(row + s->dst->ob + 1 + q / 2, mo, _mm512_extractf32x8_ps(p, 1));
        }
        break;
    }
    default: {
        float *o = s->out + ((((size_t)n * (size_t)s->cout + (size_t)co) * (size_t)s->od +
                              (size_t)od) * (size_t)s->oh + (size_t)oh) * (size_t)s->ow;
        _mm512_mask_storeu_ps(o + q, m, v);
    }
    }
}

/* SHUFFLE: channels co (b = 0) and co + 1 (b = 1) interleaved into 32
 * output columns 2q .. 2q + 31. */
__attribute__((target(AVX512_TARGET))) static inline void
epi_shuffle(const conv_step *s, int n, int co, int od, int oh, int q, __m512 v0, __m512 v1,
            __mmask16 m)
{
    const __m512i lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i hi = _mm512_add_epi32(lo, _mm512_set1_epi32(8));
    const unsigned valid = 2u * (unsigned)__builtin_popcount((unsigned)m);
    const __mmask16 m0 = valid >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << valid) - 1u);
    const __mmask16 m1 = valid >= 32   ? (__mmask16)0xffff
                         : valid <= 16 ? (__mmask16)0
                                       : (__mmask16)((1u << (valid - 16)) - 1u);
    float *row = shuffle_row(s, n, co, od, oh) + 1 + 2 * q;
    v0 = lrelu16(v0), v1 = lrelu16(v1);
    _mm512_mask_storeu_ps(row, m0, _mm512_permutex2var_ps(v0, lo, v1));
    _mm512_mask_storeu_ps(row + 16, m1, _mm512_permutex2var_ps(v0, hi, v1));
}

/* ---- the direct convolution ------------------------------------------------------- */

static inline const float *src_row(const conv_step *s, int n, int ci, int od, int oh, int kd,
                                   int kh)
{
    /* Padded input row (od + kd - 1, sh * oh + h0 + kh - 1), i.e. act_row(.., -1 ..). */
    const act3 *a = s->src;
    return a->data + (size_t)n * a->ns + (size_t)ci * a->cs +
           ((size_t)(od + kd) * (size_t)(a->h + 2) + (size_t)(s->sh * oh + s->h0 + kh)) *
               (size_t)a->rs;
}

/* One output row, all channels, in plain C. */
static void conv_row_portable(const conv_step *s, int n, int od, int oh, float *tmp)
{
    const int W = s->ow, C = s->cout;
    for (int co = 0; co < C; co++) {
        for (int q = 0; q < W; q++) tmp[q] = s->bias[co];
        for (int ci = 0; ci < s->cin; ci++)
            for (int kd = 0; kd < s->kd; kd++)
                for (int kh = 0; kh < s->kh; kh++) {
                    const float *row = src_row(s, n, ci, od, oh, kd, kh);
                    for (int kw = 0; kw < s->kw; kw++) {
                        const float w = s->wpk[((((size_t)ci * (size_t)s->kd + (size_t)kd) *
                                                     (size_t)s->kh + (size_t)kh) * (size_t)s->kw +
                                                (size_t)kw) * (size_t)C + (size_t)co];
                        const float *p = row + s->off[kw];
                        for (int q = 0; q < W; q++) tmp[q] += w * p[q];
                    }
                }
        epi_scalar(s, n, co, od, oh, tmp, W);
    }
}

/* A tile of accumulators: output channels c0 .. c0 + CB - 1, rows oh ..
 * oh + R - 1, columns q0 .. q0 + 16 WV - 1. Per tap it loads R x WV input
 * vectors and CB weights and does CB x R x WV FMAs; inlined into one
 * function per (CB, R, WV) so that the accumulators live in registers. */
__attribute__((target(AVX512_TARGET), always_inline)) static inline void
tile(const conv_step *s, int n, int od, int oh, int c0, int q0, const int CB, const int R,
     const int WV)
{
    __m512 acc[16][8];
    const int C = s->cout;
    const size_t rstep = (size_t)s->sh * (size_t)s->src->rs;
    _Pragma("GCC unroll 16") for (int c = 0; c < CB; c++) {
        __m512 b = _mm512_set1_ps(s->bias[c0 + c]);
        _Pragma("GCC unroll 8") for (int v = 0; v < R * WV; v++) acc[c][v] = b;
    }
    const float *wp = s->wpk + c0;
    for (int ci = 0; ci < s->cin; ci++)
        for (int kd = 0; kd < s->kd; kd++)
            for (int kh = 0; kh < s->kh; kh++) {
                const float *row = src_row(s, n, ci, od, oh, kd, kh) + q0;
                for (int kw = 0; kw < s->kw; kw++, wp += C) {
                    const float *p = row + s->off[kw];
                    __m512 x[8];
                    _Pragma("GCC unroll 8") for (int r = 0; r < R; r++)
                        _Pragma("GCC unroll 8") for (int v = 0; v < WV; v++)
                            x[r * WV + v] = _mm512_loadu_ps(p + (size_t)r * rstep + 16 * (size_t)v);
                    _Pragma("GCC unroll 16") for (int c = 0; c < CB; c++) {
                        __m512 w = _mm512_set1_ps(wp[c]);
                        _Pragma("GCC unroll 8") for (int v = 0; v < R * WV; v++)
                            acc[c][v] = _mm512_fmadd_ps(x[v], w, acc[c][v]);
                    }
                }
            }
    _Pragma("GCC unroll 8") for (int r = 0; r < R; r++)
        _Pragma("GCC unroll 8") for (int v = 0; v < WV; v++) {
            const int q = q0 + 16 * v, left = s->ow - q;
            const __mmask16 m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
            if (s->epi == EPI_SHUFFLE) {
                _Pragma("GCC unroll 8") for (int c = 0; c + 1 < CB; c += 2)
                    epi_shuffle(s, n, c0 + c, od, oh + r, q, acc[c][r * WV + v],
                                acc[c + 1][r * WV + v], m);
                continue;
            }
            _Pragma("GCC unroll 16") for (int c = 0; c < CB; c++)
                epi_vec(s, n, c0 + c, od, oh + r, q, acc[c][r * WV + v], m);
        }
}

typedef void (*tile_fn)(const conv_step *s, int n, int od, int oh, int c0, int q0);

typedef struct tile_kind {
    int cb, r, wv;
    tile_fn fn;
} tile_kind;

#define TILE(CB, R, WV)                                                                      \
    __attribute__((target(AVX512_TARGET))) static void tile_##CB##_##R##_##WV(               \
        const conv_step *s, int n, int od, int oh, int c0, int q0)                           \
    {                                                                                        \
        tile(s, n, od, oh, c0, q0, CB, R, WV);                                               \
    }
#define TILES_OF(X)                                                                                \
    X(1, 1, 1) X(1, 1, 2) X(1, 1, 3) X(1, 1, 4) X(1, 1, 5) X(1, 1, 6) X(1, 1, 7) X(1, 1, 8)        \
    X(2, 1, 1) X(2, 1, 2) X(2, 1, 3) X(2, 1, 4) X(2, 1, 5) X(2, 1, 6) X(2, 1, 7) X(2, 1, 8)        \
    X(2, 2, 1) X(2, 2, 2) X(2, 2, 3) X(2, 2, 4) X(2, 4, 1) X(2, 4, 2) X(2, 8, 1)                   \
    X(4, 1, 1) X(4, 1, 2) X(4, 1, 3) X(4, 1, 4) X(4, 1, 5) X(4, 1, 6)                              \
    X(4, 2, 1) X(4, 2, 2) X(4, 2, 3) X(4, 3, 1) X(4, 3, 2) X(4, 6, 1)                              \
    X(8, 1, 1) X(8, 1, 2) X(8, 1, 3) X(8, 3, 1) X(8, 2, 1)                                         \
    X(16, 1, 1)
TILES_OF(TILE)
#undef TILE
#define TILE_ENTRY(CB, R, WV) {CB, R, WV, tile_##CB##_##R##_##WV},
static const tile_kind TILE_KINDS[] = {TILES_OF(TILE_ENTRY)};
#undef TILE_ENTRY
enum { TILE_KIND_COUNT = sizeof TILE_KINDS / sizeof TILE_KINDS[0] };

static tile_fn find_tile(int cb, int r, int wv)
{
    for (int k = 0; k < TILE_KIND_COUNT; k++)
        if (TILE_KINDS[k].cb == cb && TILE_KINDS[k].r == r && TILE_KINDS[k].wv == wv)
            return TILE_KINDS[k].fn;
    return NULL;
}

static double tile_cycles(int cb, int r, int wv)
{
    const double fmas = (double)cb * r * wv, loads = (double)r * wv + cb;
    return (fmas > loads ? fmas : loads) / 2.0 + 1.5;
}

/* The tile shape for a step: least estimated time per tap over the whole
 * output (two FMAs and two loads a cycle, a little per tap for addresses),
 * counting the lanes a shape wastes and the leftover rows it runs one by
 * one. */
void c3_choose_tile(conv_step *s)
{
    const int nv = (s->ow + 15) / 16;
    double best = 1e300;
    for (int k = 0; k < TILE_KIND_COUNT; k++) {
        const tile_kind *t = &TILE_KINDS[k];
        if (s->cout % t->cb || t->wv > nv || t->r > s->oh) continue;
        if (s->epi == EPI_SHUFFLE && t->cb % 2) continue;
        const double cost = (double)(s->cout / t->cb) * ((nv + t->wv - 1) / t->wv) *
                            ((s->oh / t->r) * tile_cycles(t->cb, t->r, t->wv) +
                             (s->oh % t->r) * tile_cycles(t->cb, 1, t->wv));
        if (cost < best - 1e-9) {
            best = cost;
            s->cb = t->cb, s->r = t->r, s->wv = t->wv;
        }
    }
    for (int w = 1; w <= s->wv; w++) {
        s->fn[0][w] = find_tile(s->cb, s->r, w);
        s->fn[1][w] = find_tile(s->cb, 1, w);
    }
}

/* Output rows oh .. oh + rows - 1 (rows = s->r, or fewer at the end). */
__attribute__((target(AVX512_TARGET))) static void conv_rows_avx512(const conv_step *s, int n,
                                                                      int od, int oh, int rows)
{
    const int nv = (s->ow + 15) / 16, r = rows == s->r ? s->r : 1;
    /* Channel tiles innermost: they reread the same input columns, which
     * then stay in L1. */
    for (int h = oh; h < oh + rows; h += r)
        for (int v0 = 0; v0 < nv; v0 += s->wv) {
            const int wv = nv - v0 < s->wv ? nv - v0 : s->wv;
            for (int c0 = 0; c0 < s->cout; c0 += s->cb) s->fn[r == 1][wv](s, n, od, h, c0, 16 * v0);
        }
}

/* Row (n, d, h) of the caller's plain (n, 1, D, H, W) input. */
static inline const float *input_row(const float *x, int D, int H, int W, int n, int d, int h)
{
    return x + (((size_t)n * (size_t)D + (size_t)d) * (size_t)H + (size_t)h) * (size_t)W;
}

/* ---- the sparse first layer -------------------------------------------------------- */

/* Output row (n, od, oh) of block 0's fused strided convolution (cin 1, CO =
 * 2f outputs): acc[(ow + 1) * CO + co] gathers every non-zero input voxel of
 * the rows it sees. An input column w feeds outputs ow = (w + 1 - kw) / 2
 * for the two kw of its parity, kw0 = 1 - (w & 1) and kw0 + 2, at slots
 * (w + 3 - kw0) / 2 and one less; slots 0 and ow + 1 catch the taps that
 * fall outside and are dropped. */
static inline void sparse_taps(float *restrict acc, const float *restrict wk, int w, float v,
                               const int CO)
{
    const int kw0 = 1 - (w & 1), slot = (w + 3 - kw0) / 2;
    const float *k0 = wk + (size_t)kw0 * (size_t)CO, *k2 = k0 + 2 * (size_t)CO;
    float *a0 = acc + (size_t)slot * (size_t)CO, *a1 = a0 - CO;
    for (int co = 0; co < CO; co++) {
        a0[co] += v * k0[co];
        a1[co] += v * k2[co];
    }
}

static void sparse_row_portable(const nn_chain3d *c, const conv_step *s, const float *x, int n,
                                int od, int oh, float *acc)
{
    const int D = c->d.d, H = c->d.h, W = c->d.w, CO = s->cout;
    memset(acc, 0, (size_t)(s->ow + 2) * (size_t)CO * sizeof *acc);
    for (int kd = 0; kd < 3; kd++) {
        const int d = od + kd - 1;
        if (d < 0 || d >= D) continue;
        for (int kh = 0; kh < 4; kh++) {
            const int h = 2 * oh + kh - 1;
            if (h < 0 || h >= H) continue;
            const float *row = input_row(x, D, H, W, n, d, h);
            const float *wk = s->wpk + (size_t)(kd * 4 + kh) * 4 * (size_t)CO;
            for (int w = 0; w < W; w++)
                if (row[w] != 0.0f) sparse_taps(acc, wk, w, row[w], CO);
        }
    }
}

__attribute__((target(AVX512_TARGET))) static void
sparse_row_avx512(const nn_chain3d *c, const conv_step *s, const float *x, int n, int od, int oh,
                  float *acc)
{
    const int D = c->d.d, H = c->d.h, W = c->d.w, CO = s->cout;
    memset(acc, 0, (size_t)(s->ow + 2) * (size_t)CO * sizeof *acc);
    const __m512 zero = _mm512_setzero_ps();
    for (int kd = 0; kd < 3; kd++) {
        const int d = od + kd - 1;
        if (d < 0 || d >= D) continue;
        for (int kh = 0; kh < 4; kh++) {
            const int h = 2 * oh + kh - 1;
            if (h < 0 || h >= H) continue;
            const float *row = input_row(x, D, H, W, n, d, h);
            const float *wk = s->wpk + (size_t)(kd * 4 + kh) * 4 * (size_t)CO;
            for (int w0 = 0; w0 < W; w0 += 16) {
                const int left = W - w0;
                const __mmask16 lm = left >= 16 ? 0xffff : (__mmask16)((1u << left) - 1u);
                unsigned m = _mm512_mask_cmp_ps_mask(lm, _mm512_maskz_loadu_ps(lm, row + w0), zero,
                                                     _CMP_NEQ_UQ);
                while (m) {
                    const int w = w0 + __builtin_ctz(m);
                    m &= m - 1;
                    const float v = row[w];
                    const int kw0 = 1 - (w & 1), slot = (w + 3 - kw0) / 2;
                    const float *k0 = wk + (size_t)kw0 * (size_t)CO;
                    float *a0 = acc + (size_t)slot * (size_t)CO;
                    if (CO == 16) {
                        const __m512 xv = _mm512_set1_ps(v);
                        _mm512_storeu_ps(
                            a0, _mm512_fmadd_ps(xv, _mm512_loadu_ps(k0), _mm512_loadu_ps(a0)));
                        _mm512_storeu_ps(a0 - 16, _mm512_fmadd_ps(xv, _mm512_loadu_ps(k0 + 32),
                                                                  _mm512_loadu_ps(a0 - 16)));
                    } else if (CO == 4) {
                        const __m128 xv = _mm_set1_ps(v);
                        _mm_storeu_ps(a0, _mm_fmadd_ps(xv, _mm_loadu_ps(k0), _mm_loadu_ps(a0)));
                        _mm_storeu_ps(a0 - 4, _mm_fmadd_ps(xv, _mm_loadu_ps(k0 + 8),
                                                           _mm_loadu_ps(a0 - 4)));
                    } else {
                        sparse_taps(acc, wk, w, v, CO);
                    }
                }
            }
        }
    }
}

/* acc holds (ow + 2) slots of CO channels; a gather per 16 columns turns
 * them into channel rows. */
__attribute__((target(AVX512_TARGET))) static void sparse_store_avx512(const conv_step *s,
                                                                         const float *acc, int n,
                                                                         int od, int oh)
{
    const int CO = s->cout, Wo = s->ow;
    const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i idx = _mm512_mullo_epi32(lane, _mm512_set1_epi32(CO));
    for (int co = 0; co < CO; co++) {
        const __m512 b = _mm512_set1_ps(s->bias[co]);
        for (int q = 0; q < Wo; q += 16) {
            const int left = Wo - q;
            const __mmask16 m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
            __m512 v = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, idx,
                                                acc + (size_t)(q + 1) * (size_t)CO + (size_t)co, 4);
            epi_vec(s, n, co, od, oh, q, _mm512_add_ps(v, b), m);
        }
    }
}

static void run_sparse(nn_chain3d *c, const conv_step *s, const float *x)
{
    const int N = c->d.n, CO = s->cout, Wo = s->ow;
#pragma omp parallel num_threads(c->threads)
    {
        float *acc = c->acc + (size_t)omp_get_thread_num() * c->acc_per_thread;
        float *tmp = acc + (size_t)(Wo + 2) * (size_t)CO;
#pragma omp for collapse(3) schedule(dynamic, 4)
        for (int n = 0; n < N; n++)
            for (int od = 0; od < s->od; od++)
                for (int oh = 0; oh < s->oh; oh++) {
                    if (c->avx512) {
                        sparse_row_avx512(c, s, x, n, od, oh, acc);
                        sparse_store_avx512(s, acc, n, od, oh);
                        continue;
                    }
                    sparse_row_portable(c, s, x, n, od, oh, acc);
                    for (int co = 0; co < CO; co++) {
                        const float b = s->bias[co];
                        for (int q = 0; q < Wo; q++)
                            tmp[q] = acc[(size_t)(q + 1) * (size_t)CO + (size_t)co] + b;
                        epi_scalar(s, n, co, od, oh, tmp, Wo);
                    }
                }
    }
}

void c3_run_conv(const conv_step *s, int N, int threads, int avx512, float *scratch,
                 size_t per_thread)
{
#pragma omp parallel num_threads(threads)
    {
        float *tmp = scratch + (size_t)omp_get_thread_num() * per_thread;
        const int R = avx512 ? s->r : 1, groups = (s->oh + R - 1) / R;
#pragma omp for collapse(3) schedule(dynamic, 1)
        for (int n = 0; n < N; n++)
            for (int od = 0; od < s->od; od++)
                for (int g = 0; g < groups; g++) {
                    const int oh = g * R, rows = s->oh - oh < R ? s->oh - oh : R;
                    if (avx512) conv_rows_avx512(s, n, od, oh, rows);
                    else conv_row_portable(s, n, od, oh, tmp);
                }
    }
}

/* One input row split into its even and odd columns, 32 at a time. */
__attribute__((target(AVX512_TARGET))) static void phase_row_avx512(const float *r, int W,
                                                                      float *row, int ob)
{
    const __m512i ie = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i io = _mm512_add_epi32(ie, _mm512_set1_epi32(1));
    for (int w0 = 0; w0 < W; w0 += 32) {
        const int left = W - w0;
        const __mmask16 m0 = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
        const __mmask16 m1 = left >= 32   ? (__mmask16)0xffff
                             : left <= 16 ? (__mmask16)0
                                          : (__mmask16)((1u << (left - 16)) - 1u);
        const __m512 a = _mm512_maskz_loadu_ps(m0, r + w0);
        const __m512 b = _mm512_maskz_loadu_ps(m1, r + w0 + 16);
        const int ne = left >= 32 ? 16 : (left + 1) / 2, no = left >= 32 ? 16 : left / 2;
        _mm512_mask_storeu_ps(row + 1 + w0 / 2, (__mmask16)((1u << ne) - 1u),
                              _mm512_permutex2var_ps(a, ie, b));
        _mm512_mask_storeu_ps(row + ob + 1 + w0 / 2, (__mmask16)((1u << no) - 1u),
                              _mm512_permutex2var_ps(a, io, b));
    }
}

/* The dense path: the input copied into a PHASE activation. */
static void input_to_phase(nn_chain3d *c, const float *x, act3 *a)
{
    const int N = c->d.n, D = c->d.d, H = c->d.h, W = c->d.w;
#pragma omp parallel for collapse(3) num_threads(c->threads)
    for (int n = 0; n < N; n++)
        for (int d = 0; d < D; d++)
            for (int h = 0; h < H; h++) {
                const float *r = input_row(x, D, H, W, n, d, h);
                float *row = act_row(a, n, 0, d, h);
                if (c->avx512) phase_row_avx512(r, W, row, a->ob);
                else
                    for (int w = 0; w < W; w++) store_scalar(a, row, w, r[w]);
            }
}

/* ---- planning ---------------------------------------------------------------------- */

void c3_pack(float *dst, const float *w, int cout, int cin, int taps, int ctot, int co_off)
{
    for (int o = 0; o < cout; o++)
        for (int i = 0; i < cin; i++)
            for (int t = 0; t < taps; t++)
                dst[((size_t)i * (size_t)taps + (size_t)t) * (size_t)ctot + (size_t)(co_off + o)] =
                    w[((size_t)o * (size_t)cin + (size_t)i) * (size_t)taps + (size_t)t];
}

int c3_act_alloc(act3 *a, int n, int c, int d, int h, int w, int layout)
{
    act_shape(a, c, d, h, w, layout);
    size_t bytes = ((size_t)n * a->ns + C3_SLACK) * sizeof(float);
    a->data = aligned_alloc(C3_ALIGN, (bytes + C3_ALIGN - 1) / C3_ALIGN * C3_ALIGN);
    if (a->data) memset(a->data, 0, bytes);
    return a->data ? 0 : -1;
}

static act3 *new_act(nn_chain3d *c, int ch, int d, int h, int w, int layout)
{
    act3 *a = &c->acts[c->nacts++];
    return c3_act_alloc(a, c->d.n, ch, d, h, w, layout) ? NULL : a;
}

static conv_step *new_step(nn_chain3d *c, const act3 *src, int cin, int cout, int strided,
                           const int dims[3], int epi)
{
    conv_step *s = &c->steps[c->nsteps++];
    memset(s, 0, sizeof *s);
    s->src = src;
    s->cin = cin, s->cout = cout;
    s->kd = 3;
    s->kh = s->kw = strided ? 4 : 3;
    s->sh = strided ? 2 : 1;
    if (strided && src) {
        s->off[0] = src->ob, s->off[1] = 1, s->off[2] = src->ob + 1, s->off[3] = 2;
    } else {
        s->off[0] = 0, s->off[1] = 1, s->off[2] = 2;
    }
    s->od = dims[0], s->oh = dims[1], s->ow = dims[2];
    s->epi = epi;
    const size_t taps = (size_t)s->kd * (size_t)s->kh * (size_t)s->kw;
    s->wpk = malloc((size_t)cin * taps * (size_t)cout * sizeof(float) + 64);
    s->bias = malloc((size_t)cout * sizeof(float));
    return s;
}

void cpu_chain3d_destroy(nn_chain3d *c)
{
    if (!c) return;
    for (int i = 0; i < c->nsteps; i++) {
        free(c->steps[i].wpk);
        free(c->steps[i].bias);
    }
    for (int i = 0; i < c->nacts; i++) free(c->acts[i].data);
    free(c->out_plain);
    free(c->acc);
    free(c);
}

int c3_has_avx512(void)
{
    return cpu_isa_allows(CPU_LEVEL_AVX512) && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("fma");
}

bcae_status cpu_chain3d_create(nn_engine *e, const nn_chain3d_desc *d, nn_chain3d **out,
                               bcae_error *err)
{
    *out = NULL;
    if (d->n < 1 || d->d < 1 || d->h < 2 || d->w < 2 || d->nblocks < 1 || d->nblocks > 8)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                         "3D encoder chain: unsupported shape %dx1x%dx%dx%d, %d blocks", d->n,
                         d->d, d->h, d->w, d->nblocks);
    if (d->blocks[0].cin != 1)
        return bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                         "3D encoder chain: the input must have one channel, not %d",
                         d->blocks[0].cin);
    nn_chain3d *c = calloc(1, sizeof *c);
    if (!c) return bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "3D encoder chain: out of memory");
    c->d = *d;
    c->d.blocks = NULL;
    c->owner = e;
    c->threads = cpu_threads(e);
    c->avx512 = !d->portable && c3_has_avx512();
    c->sparse = d->first != NN_FIRST_DENSE;
    int dims[3] = {d->d, d->h, d->w};
    const act3 *src = NULL;
    size_t widest = 0;
    bcae_status st = BCAE_OK;
    if (!c->sparse && !(src = new_act(c, 1, d->d, d->h, d->w, ROW_PHASE))) goto oom;
    for (int i = 0; i < d->nblocks; i++) {
        const nn_block3d *b = &d->blocks[i];
        const int prev = i ? d->blocks[i - 1].cout : 1;
        if (b->cin != prev || b->cout < 1) {
            st = bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                           "3D encoder chain: block %d has %d -> %d channels after %d", i, b->cin,
                           b->cout, prev);
            goto fail;
        }
        if (dims[1] < 2 || dims[2] < 2) {
            st = bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                           "3D encoder chain: block %d's input %dx%d is too small", i, dims[1],
                           dims[2]);
            goto fail;
        }
        const int od[3] = {dims[0], dims[1] / 2, dims[2] / 2};
        const int last = i == d->nblocks - 1;
        act3 *m = new_act(c, b->cout, od[0], od[1], od[2], ROW_PLAIN);
        act3 *sd = m ? new_act(c, b->cout, od[0], od[1], od[2], ROW_PLAIN) : NULL;
        const int ylayout = last ? ROW_PLAIN : ROW_PHASE; /* the next conv is strided */
        act3 *y = sd ? new_act(c, b->cout, od[0], od[1], od[2], ylayout) : NULL;
        if (!y) goto oom;
        conv_step *s0 = new_step(c, src, b->cin, 2 * b->cout, 1, od, EPI_SPLIT);
        conv_step *s3 = new_step(c, m, b->cout, b->cout, 0, od, EPI_REZERO);
        if (!s0->wpk || !s0->bias || !s3->wpk || !s3->bias) goto oom;
        c3_pack(s0->wpk, b->w0, b->cout, b->cin, 48, 2 * b->cout, 0);
        c3_pack(s0->wpk, b->ws, b->cout, b->cin, 48, 2 * b->cout, b->cout);
        memcpy(s0->bias, b->b0, (size_t)b->cout * sizeof(float));
        memcpy(s0->bias + b->cout, b->bs, (size_t)b->cout * sizeof(float));
        s0->dst = m;
        s0->dst_side = sd;
        c3_pack(s3->wpk, b->w3, b->cout, b->cout, 27, b->cout, 0);
        memcpy(s3->bias, b->b3, (size_t)b->cout * sizeof(float));
        s3->side = sd;
        s3->dst = y;
        s3->alpha = b->alpha;
        for (int k = 0; k < 2; k++) {
            conv_step *s = k ? s3 : s0;
            c3_choose_tile(s);
            size_t need = (size_t)(s->ow + 2) * (size_t)(s->cout + 1) + 16;
            if (need > widest) widest = need;
        }
        src = y;
        memcpy(dims, od, sizeof dims);
    }
    if (d->out_cin != d->blocks[d->nblocks - 1].cout) {
        st = bcae_fail(err, BCAE_ERR_INVALID_ARGUMENT,
                       "3D encoder chain: output conv takes %d channels after %d", d->out_cin,
                       d->blocks[d->nblocks - 1].cout);
        goto fail;
    }
    conv_step *so = new_step(c, src, d->out_cin, d->out_cout, 0, dims, EPI_OUT);
    if (!so->wpk || !so->bias) goto oom;
    c3_pack(so->wpk, d->w_out, d->out_cout, d->out_cin, 27, d->out_cout, 0);
    memcpy(so->bias, d->b_out, (size_t)d->out_cout * sizeof(float));
    c3_choose_tile(so);
    c->out_floats = (size_t)d->n * (size_t)d->out_cout * (size_t)dims[0] * (size_t)dims[1] *
                    (size_t)dims[2];
    c->out_plain = malloc(c->out_floats * sizeof(float));
    so->out = c->out_plain;
    c->acc_per_thread = round16(widest);
    c->acc = aligned_alloc(C3_ALIGN, (size_t)c->threads * c->acc_per_thread * sizeof(float));
    if (!c->out_plain || !c->acc) goto oom;
    *out = c;
    return BCAE_OK;
oom:
    st = bcae_fail(err, BCAE_ERR_OUT_OF_MEMORY, "3D encoder chain: out of memory");
fail:
    cpu_chain3d_destroy(c);
    return st;
}

bcae_status cpu_chain3d_forward(nn_chain3d *c, const nn_tensor5 *x, nn_tensor5 *y)
{
    const int dd = c->steps[c->nsteps - 1].od, hh = c->steps[c->nsteps - 1].oh,
              ww = c->steps[c->nsteps - 1].ow;
    if (x->n != c->d.n || x->c != 1 || x->d != c->d.d || x->h != c->d.h || x->w != c->d.w ||
        y->n != c->d.n || y->c != c->d.out_cout || y->d != dd || y->h != hh || y->w != ww) {
        size_t cnt = (size_t)y->n * (size_t)y->c * (size_t)y->d * (size_t)y->h * (size_t)y->w;
        for (size_t i = 0; i < cnt; i++) y->data[i] = NAN;
        return bcae_fail(&c->owner->last_error, BCAE_ERR_SHAPE,
                         "3D encoder chain: input %dx%dx%dx%dx%d and output %dx%dx%dx%dx%d, "
                         "planned for %dx1x%dx%dx%d and %dx%dx%dx%dx%d",
                         x->n, x->c, x->d, x->h, x->w, y->n, y->c, y->d, y->h, y->w, c->d.n,
                         c->d.d, c->d.h, c->d.w, c->d.n, c->d.out_cout, dd, hh, ww);
    }
    int saved = omp_get_max_threads();
    for (int i = 0; i < c->nsteps; i++) {
        conv_step *s = &c->steps[i];
        if (i == 0 && c->sparse) {
            run_sparse(c, s, x->data);
            continue;
        }
        if (i == 0) input_to_phase(c, x->data, &c->acts[0]);
        c3_run_conv(s, c->d.n, c->threads, c->avx512, c->acc, c->acc_per_thread);
    }
    nn_tensor fy = nn_tensor5_flat(y);
    omp_set_num_threads(c->threads);
    bcae_status rc = c->owner->ops->from_nchw(c->owner, c->out_plain, &fy);
    omp_set_num_threads(saved);
    return rc;
}
