/*
 * Winograd F(m x m, 3 x 3) for the encoder chain (see cpu_wino.h).
 *
 * The tiles (m x m outputs, (m + 2) x (m + 2) inputs) of the whole batch are
 * numbered n, tile row, tile column and cut into blocks of WINO_NT
 * consecutive tiles; a thread takes a block through three stages in its own
 * scratch (L2-resident: 2 x T^2 x NT x 32 floats = 147 KiB for m = 4):
 *   1. input transform  V[t][tile][ci]  = (B^T d B)[t], 16 channels a vector;
 *   2. T^2 small GEMMs   M[t][tile][co]  = V[t] x U[t] (U = G g G^T, planned),
 *      8 tiles x 32 output channels of accumulators in registers;
 *   3. output transform Y = A^T M A, + bias, the chain's tail, stored.
 * Matrices from Lavin & Gray, "Fast Algorithms for Convolutional Neural
 * Networks" (2016), points 0, +-1, +-2, inf for m = 4 and 0, +-1, inf for
 * m = 2. The weight transform runs in double, the rest in fp32 with FMAs.
 */
#include "nn/cpu/cpu_report.h"
#include "nn/cpu/cpu_wino.h"

#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <immintrin.h>

/* Tiles per block: a multiple of the GEMM kernel's 8 rows, and small
 * enough that a block's V and M (147 KiB for m = 4 at 32 channels) stay in
 * L2. Not tuned yet (bench/RESULTS.md, Zen 4 section). */
enum { WINO_NT = 16, WINO_ROWS = 8, WINO_ALIGN = 64 };

struct cpu_wino {
    int m, T, n, h, w, cin, cout, bf16, threads;
    int dot; /* bf16 products (AVX512-BF16 dot products) in the GEMMs */
    int tiles_y, tiles_x;
    long tiles, blocks;
    float *u;    /* [T*T][cin][cout] */
    uint16_t *ub; /* dot: [T*T][cin/2][cout][2] bf16 */
    float *bias; /* [cout] */
    float *scratch;
    size_t per_thread; /* floats */
};

int cpu_wino_available(void)
{
    return cpu_isa_allows(CPU_LEVEL_AVX512) && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("fma");
}

int cpu_wino_bf16_dot_available(void)
{
    return cpu_wino_available() && cpu_isa_allows(CPU_LEVEL_AVX512_BF16) &&
           __builtin_cpu_supports("avx512bf16");
}

static uint16_t round_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

void cpu_wino_destroy(cpu_wino *p)
{
    if (!p) return;
    free(p->u);
    free(p->ub);
    free(p->bias);
    free(p->scratch);
    free(p);
}

static void *alloc_floats(size_t count)
{
    size_t bytes = (count * sizeof(float) + WINO_ALIGN - 1) / WINO_ALIGN * WINO_ALIGN;
    void *q = aligned_alloc(WINO_ALIGN, bytes);
    if (q) memset(q, 0, bytes);
    return q;
}

/* G (T x 3) of F(m, 3). */
static void winograd_g(int m, double g[6][3])
{
    static const double g4[6][3] = {{1.0 / 4, 0, 0},
                                    {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                    {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                    {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                    {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                    {0, 0, 1}};
    static const double g2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
    memset(g, 0, 6 * 3 * sizeof(double));
    for (int i = 0; i < m + 2; i++)
        for (int j = 0; j < 3; j++) g[i][j] = m == 4 ? g4[i][j] : g2[i][j];
}

cpu_wino *cpu_wino_create(int m, int n, int cin, int cout, int h, int w, const float *weight,
                          const float *bias, int bf16, int dot, int threads, int shared_scratch)
{
    if (dot && (!bf16 || !cpu_wino_bf16_dot_available())) return NULL;
    if ((m != 2 && m != 4) || cin % 16 || cout % 16 || n < 1 || h < 1 || w < 1) return NULL;
    cpu_wino *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    const int T = m + 2;
    p->m = m, p->T = T, p->n = n, p->h = h, p->w = w, p->cin = cin, p->cout = cout;
    p->bf16 = bf16, p->dot = dot, p->threads = threads > 0 ? threads : omp_get_max_threads();
    p->tiles_y = (h + m - 1) / m, p->tiles_x = (w + m - 1) / m;
    p->tiles = (long)n * p->tiles_y * p->tiles_x;
    p->blocks = (p->tiles + WINO_NT - 1) / WINO_NT;
    p->per_thread = (size_t)T * T * WINO_NT * (size_t)(cin + cout);
    p->u = alloc_floats((size_t)T * T * (size_t)cin * (size_t)cout);
    p->bias = alloc_floats((size_t)cout);
    if (!shared_scratch) p->scratch = alloc_floats(p->per_thread * (size_t)p->threads);
    if (!p->u || !p->bias || (!shared_scratch && !p->scratch)) {
        cpu_wino_destroy(p);
        return NULL;
    }
    memcpy(p->bias, bias, (size_t)cout * sizeof(float));
    double g[6][3];
    winograd_g(m, g);
    for (int o = 0; o < cout; o++)
        for (int i = 0; i < cin; i++) {
            const float *k = weight + ((size_t)o * (size_t)cin + (size_t)i) * 9;
            double gk[6][3]; /* G k */
            for (int a = 0; a < T; a++)
                for (int b = 0; b < 3; b++)
                    gk[a][b] = g[a][0] * k[b] + g[a][1] * k[3 + b] + g[a][2] * k[6 + b];
            for (int a = 0; a < T; a++)
                for (int b = 0; b < T; b++) {
                    double s = gk[a][0] * g[b][0] + gk[a][1] * g[b][1] + gk[a][2] * g[b][2];
                    p->u[(((size_t)a * T + (size_t)b) * (size_t)cin + (size_t)i) * (size_t)cout +
                         (size_t)o] = (float)s;
                }
        }
    if (dot) {
        const size_t TT = (size_t)T * T, CI = (size_t)cin, CO = (size_t)cout;
        p->ub = alloc_floats(TT * CI * CO / 2); /* aligned: the kernels' loads are */
        if (!p->ub) {
            cpu_wino_destroy(p);
            return NULL;
        }
        for (size_t t = 0; t < TT; t++)
            for (size_t i = 0; i < CI; i++)
                for (size_t o = 0; o < CO; o++)
                    p->ub[((t * (CI / 2) + i / 2) * CO + o) * 2 + (i & 1)] =
                        round_bf16(p->u[(t * CI + i) * CO + o]);
    }
    return p;
}

/* ---- the AVX-512 kernels ------------------------------------------------------------ */

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,fma,avx512bf16")
/* avx512bf16 for the dot-product variants only (forward_*_dot): the others
 * use no intrinsic of it and run on any AVX-512 CPU. */

#define WINO_INLINE static inline __attribute__((always_inline))

WINO_INLINE __m512 load16(const void *base, size_t idx, int bf16)
{
    if (bf16) {
        __m256i h = _mm256_loadu_si256((const __m256i *)((const uint16_t *)base + idx));
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
    return _mm512_loadu_ps((const float *)base + idx);
}

/* Round to nearest even, as the chain's scalar f32_to_bf16 (NaN aside). */
WINO_INLINE void store16(void *base, size_t idx, __m512 v, int bf16)
{
    if (bf16) {
        __m512i u = _mm512_castps_si512(v);
        __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
        u = _mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff)));
        _mm256_storeu_si256((__m256i *)((uint16_t *)base + idx),
                            _mm512_cvtepi32_epi16(_mm512_srli_epi32(u, 16)));
        return;
    }
    _mm512_storeu_ps((float *)base + idx, v);
}

/* B^T d along one direction: d[0..T) at stride s in place. */
WINO_INLINE void in_1d(int m, __m512 *d, int s)
{
    if (m == 4) {
        const __m512 two = _mm512_set1_ps(2.0f), four = _mm512_set1_ps(4.0f),
                     five = _mm512_set1_ps(5.0f);
        __m512 d0 = d[0], d1 = d[s], d2 = d[2 * s], d3 = d[3 * s], d4 = d[4 * s], d5 = d[5 * s];
        __m512 t0 = _mm512_fnmadd_ps(four, d2, d4); /* d4 - 4 d2 */
        __m512 t1 = _mm512_fnmadd_ps(four, d1, d3); /* d3 - 4 d1 */
        __m512 t2 = _mm512_sub_ps(d4, d2);
        __m512 t3 = _mm512_mul_ps(two, _mm512_sub_ps(d1, d3));
        d[0] = _mm512_add_ps(_mm512_fnmadd_ps(five, d2, _mm512_mul_ps(four, d0)), d4);
        d[s] = _mm512_add_ps(t0, t1);
        d[2 * s] = _mm512_sub_ps(t0, t1);
        d[3 * s] = _mm512_sub_ps(t2, t3);
        d[4 * s] = _mm512_add_ps(t2, t3);
        d[5 * s] = _mm512_add_ps(_mm512_fnmadd_ps(five, d3, _mm512_mul_ps(four, d1)), d5);
    } else {
        __m512 d0 = d[0], d1 = d[s], d2 = d[2 * s], d3 = d[3 * s];
        d[0] = _mm512_sub_ps(d0, d2);
        d[s] = _mm512_add_ps(d1, d2);
        d[2 * s] = _mm512_sub_ps(d2, d1);
        d[3 * s] = _mm512_sub_ps(d1, d3);
    }
}

/* A^T x along one direction: x[0..T) at stride s -> o[0..m) at stride so. */
WINO_INLINE void out_1d(int m, const __m512 *x, int s, __m512 *o, int so)
{
    if (m == 4) {
        const __m512 two = _mm512_set1_ps(2.0f), four = _mm512_set1_ps(4.0f),
                     eight = _mm512_set1_ps(8.0f);
        __m512 a = _mm512_add_ps(x[s], x[2 * s]), b = _mm512_sub_ps(x[s], x[2 * s]);
        __m512 c = _mm512_add_ps(x[3 * s], x[4 * s]), e = _mm512_sub_ps(x[3 * s], x[4 * s]);
        o[0] = _mm512_add_ps(_mm512_add_ps(x[0], a), c);
        o[so] = _mm512_fmadd_ps(two, e, b);
        o[2 * so] = _mm512_fmadd_ps(four, c, a);
        o[3 * so] = _mm512_add_ps(_mm512_fmadd_ps(eight, e, b), x[5 * s]);
    } else {
        o[0] = _mm512_add_ps(_mm512_add_ps(x[0], x[s]), x[2 * s]);
        o[so] = _mm512_sub_ps(_mm512_sub_ps(x[s], x[2 * s]), x[3 * s]);
    }
}

/* Stage 1 for tiles [t0, t0 + nt) of the batch. */
WINO_INLINE void transform_in(const cpu_wino *p, int m, int bf16, int dot, const void *src,
                              float *V, long t0, int nt)
{
    const int T = m + 2, H = p->h, W = p->w, CI = p->cin;
    for (int j = 0; j < nt; j++) {
        long t = t0 + j;
        int tx = (int)(t % p->tiles_x), ty = (int)(t / p->tiles_x % p->tiles_y);
        int n = (int)(t / ((long)p->tiles_x * p->tiles_y));
        int y0 = ty * m - 1, x0 = tx * m - 1;
        int inside = y0 >= 0 && x0 >= 0 && y0 + T <= H && x0 + T <= W;
        for (int cb = 0; cb < CI; cb += 16) {
            __m512 d[36];
            for (int a = 0; a < T; a++)
                for (int b = 0; b < T; b++) {
                    int y = y0 + a, x = x0 + b;
                    if (inside || ((unsigned)y < (unsigned)H && (unsigned)x < (unsigned)W))
                        d[a * T + b] = load16(src, (((size_t)n * H + (size_t)y) * W + (size_t)x) * CI + (size_t)cb, bf16);
                    else
                        d[a * T + b] = _mm512_setzero_ps();
                }
            for (int b = 0; b < T; b++) in_1d(m, d + b, T);     /* columns: B^T d */
            for (int a = 0; a < T; a++) in_1d(m, d + a * T, 1); /* rows: (B^T d) B */
            if (dot)
                for (int k = 0; k < T * T; k++)
                    _mm256_store_si256((__m256i *)((uint16_t *)V + ((size_t)k * WINO_NT + (size_t)j) * CI + cb),
                                       (__m256i)_mm512_cvtneps_pbh(d[k]));
            else
                for (int k = 0; k < T * T; k++)
                    _mm512_store_ps(V + ((size_t)k * WINO_NT + (size_t)j) * CI + cb, d[k]);
        }
    }
}

/* Stage 2 kernel: 8 rows (tiles) x 32 output channels, over CI. */
WINO_INLINE void gemm_8x32(const float *restrict v, const float *restrict u, float *restrict out,
                           int CI, int CO)
{
    __m512 acc[WINO_ROWS][2];
#pragma GCC unroll 8
    for (int r = 0; r < WINO_ROWS; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int ci = 0; ci < CI; ci++) {
        __m512 w0 = _mm512_load_ps(u + (size_t)ci * CO), w1 = _mm512_load_ps(u + (size_t)ci * CO + 16);
#pragma GCC unroll 8
        for (int r = 0; r < WINO_ROWS; r++) {
            __m512 b = _mm512_set1_ps(v[(size_t)r * CI + ci]);
            acc[r][0] = _mm512_fmadd_ps(b, w0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(b, w1, acc[r][1]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < WINO_ROWS; r++) {
        _mm512_store_ps(out + (size_t)r * CO, acc[r][0]);
        _mm512_store_ps(out + (size_t)r * CO + 16, acc[r][1]);
    }
}

WINO_INLINE void gemm_8x16(const float *restrict v, const float *restrict u, float *restrict out,
                           int CI, int CO)
{
    __m512 acc[WINO_ROWS];
#pragma GCC unroll 8
    for (int r = 0; r < WINO_ROWS; r++) acc[r] = _mm512_setzero_ps();
    for (int ci = 0; ci < CI; ci++) {
        __m512 w0 = _mm512_load_ps(u + (size_t)ci * CO);
#pragma GCC unroll 8
        for (int r = 0; r < WINO_ROWS; r++)
            acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(v[(size_t)r * CI + ci]), w0, acc[r]);
    }
#pragma GCC unroll 8
    for (int r = 0; r < WINO_ROWS; r++) _mm512_store_ps(out + (size_t)r * CO, acc[r]);
}

/* gemm_8x32 with bf16 products: v [8][CI] bf16, u [CI/2][CO][2] bf16; one
 * vdpbf16ps does two input channels. */
WINO_INLINE void gemm_8x32_dot(const uint16_t *restrict v, const uint16_t *restrict u,
                               float *restrict out, int CI, int CO)
{
    __m512 acc[WINO_ROWS][2];
#pragma GCC unroll 8
    for (int r = 0; r < WINO_ROWS; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int cp = 0; cp < CI / 2; cp++) {
        __m512bh w0 = (__m512bh)_mm512_load_si512(u + (size_t)cp * CO * 2),
                 w1 = (__m512bh)_mm512_load_si512(u + (size_t)cp * CO * 2 + 32);
#pragma GCC unroll 8
        for (int r = 0; r < WINO_ROWS; r++) {
            int32_t pair;
            memcpy(&pair, v + (size_t)r * CI + 2 * (size_t)cp, 4);
            __m512bh b = (__m512bh)_mm512_set1_epi32(pair);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], b, w0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], b, w1);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < WINO_ROWS; r++) {
        _mm512_store_ps(out + (size_t)r * CO, acc[r][0]);
        _mm512_store_ps(out + (size_t)r * CO + 16, acc[r][1]);
    }
}

WINO_INLINE void gemm_8x16_dot(const uint16_t *restrict v, const uint16_t *restrict u,
                               float *restrict out, int CI, int CO)
{
    __m512 acc[WINO_ROWS];
#pragma GCC unroll 8
    for (int r = 0; r < WINO_ROWS; r++) acc[r] = _mm512_setzero_ps();
    for (int cp = 0; cp < CI / 2; cp++) {
        __m512bh w0 = (__m512bh)_mm512_load_si512(u + (size_t)cp * CO * 2);
#pragma GCC unroll 8
        for (int r = 0; r < WINO_ROWS; r++) {
            int32_t pair;
            memcpy(&pair, v + (size_t)r * CI + 2 * (size_t)cp, 4);
            acc[r] = _mm512_dpbf16_ps(acc[r], (__m512bh)_mm512_set1_epi32(pair), w0);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < WINO_ROWS; r++) _mm512_store_ps(out + (size_t)r * CO, acc[r]);
}

static void gemm_block_dot(const cpu_wino *p, const float *V, float *M, int nt)
{
    const int TT = p->T * p->T, CI = p->cin, CO = p->cout;
    const int rows = (nt + WINO_ROWS - 1) / WINO_ROWS * WINO_ROWS;
    for (int t = 0; t < TT; t++) {
        const uint16_t *u = p->ub + (size_t)t * (size_t)CI * (size_t)CO;
        const uint16_t *v = (const uint16_t *)V + (size_t)t * WINO_NT * (size_t)CI;
        float *o = M + (size_t)t * WINO_NT * (size_t)CO;
        for (int r = 0; r < rows; r += WINO_ROWS) {
            int c = 0;
            for (; c + 32 <= CO; c += 32)
                gemm_8x32_dot(v + (size_t)r * CI, u + (size_t)c * 2, o + (size_t)r * CO + c, CI, CO);
            if (c < CO)
                gemm_8x16_dot(v + (size_t)r * CI, u + (size_t)c * 2, o + (size_t)r * CO + c, CI, CO);
        }
    }
}

static void gemm_block(const cpu_wino *p, const float *V, float *M, int nt)
{
    const int TT = p->T * p->T, CI = p->cin, CO = p->cout;
    const int rows = (nt + WINO_ROWS - 1) / WINO_ROWS * WINO_ROWS;
    for (int t = 0; t < TT; t++) {
        const float *u = p->u + (size_t)t * (size_t)CI * (size_t)CO;
        const float *v = V + (size_t)t * WINO_NT * (size_t)CI;
        float *o = M + (size_t)t * WINO_NT * (size_t)CO;
        for (int r = 0; r < rows; r += WINO_ROWS) {
            int c = 0;
            for (; c + 32 <= CO; c += 32)
                gemm_8x32(v + (size_t)r * CI, u + c, o + (size_t)r * CO + c, CI, CO);
            if (c < CO) gemm_8x16(v + (size_t)r * CI, u + c, o + (size_t)r * CO + c, CI, CO);
        }
    }
}

/* Stage 3 for tiles [t0, t0 + nt). */
WINO_INLINE void transform_out(const cpu_wino *p, int m, int bf16, const float *M, void *dst,
                               long t0, int nt, cpu_wino_post post, float alpha)
{
    const int T = m + 2, H = p->h, W = p->w, CO = p->cout;
    const __m512 slope = _mm512_set1_ps(0.2f), al = _mm512_set1_ps(alpha);
    for (int j = 0; j < nt; j++) {
        long t = t0 + j;
        int tx = (int)(t % p->tiles_x), ty = (int)(t / p->tiles_x % p->tiles_y);
        int n = (int)(t / ((long)p->tiles_x * p->tiles_y));
        int y0 = ty * m, x0 = tx * m;
        for (int cb = 0; cb < CO; cb += 16) {
            __m512 x[36], s[24], o[16];
            for (int k = 0; k < T * T; k++)
                x[k] = _mm512_load_ps(M + ((size_t)k * WINO_NT + (size_t)j) * CO + cb);
            for (int b = 0; b < T; b++) out_1d(m, x + b, T, s + b, T);     /* A^T x: m x T */
            for (int a = 0; a < m; a++) out_1d(m, s + a * T, 1, o + a * m, 1); /* (A^T x) A */
            const __m512 bias = _mm512_loadu_ps(p->bias + cb);
            for (int a = 0; a < m; a++) {
                int y = y0 + a;
                if (y >= H) break;
                for (int b = 0; b < m; b++) {
                    int xx = x0 + b;
                    if (xx >= W) break;
                    size_t idx = (((size_t)n * H + (size_t)y) * W + (size_t)xx) * CO + (size_t)cb;
                    __m512 v = _mm512_add_ps(o[a * m + b], bias);
                    if (post == WINO_POST_RESIDUAL) v = _mm512_fmadd_ps(al, v, load16(dst, idx, bf16));
                    v = _mm512_max_ps(v, _mm512_mul_ps(slope, v)); /* LeakyReLU, slope < 1 */
                    store16(dst, idx, v, bf16);
                }
            }
        }
    }
}

/* One block through the three stages; m, bf16 and dot are constants where
 * it is inlined, so that each variant compiles to straight-line transforms. */
WINO_INLINE void run_block(cpu_wino *p, int m, int bf16, int dot, const void *src, void *dst,
                           cpu_wino_post post, float alpha, float *V, float *M, long blk)
{
    long t0 = blk * WINO_NT;
    int nt = (int)(p->tiles - t0 < WINO_NT ? p->tiles - t0 : WINO_NT);
    transform_in(p, m, bf16, dot, src, V, t0, nt);
    if (dot) gemm_block_dot(p, V, M, nt);
    else gemm_block(p, V, M, nt);
    transform_out(p, m, bf16, M, dst, t0, nt, post, alpha);
}

/* The parallel region inside each variant (not in a shared inline helper):
 * OpenMP outlines a region before inlining, and one region shared by all
 * variants compiled to a single body branching on m, bf16 and dot at run
 * time. */
#define WINO_FORWARD(name, M_, BF16_, DOT_)                                                     \
    static void name(cpu_wino *p, const void *src, void *dst, cpu_wino_post post, float alpha, \
                     float *scratch)                                                           \
    {                                                                                          \
        _Pragma("omp parallel num_threads(p->threads)")                                        \
        {                                                                                      \
            float *V = scratch + (size_t)omp_get_thread_num() * p->per_thread;                 \
            float *M = V + (size_t)p->T * p->T * WINO_NT * (size_t)p->cin;                     \
            _Pragma("omp for schedule(static)")                                                \
            for (long blk = 0; blk < p->blocks; blk++)                                         \
                run_block(p, M_, BF16_, DOT_, src, dst, post, alpha, V, M, blk);               \
        }                                                                                      \
    }

typedef void forward_fn(cpu_wino *p, const void *s, void *d, cpu_wino_post q, float a,
                        float *scratch);

size_t cpu_wino_scratch_floats(const cpu_wino *p) { return p->per_thread * (size_t)p->threads; }
WINO_FORWARD(forward_m4_f32, 4, 0, 0)
WINO_FORWARD(forward_m4_bf16, 4, 1, 0)
WINO_FORWARD(forward_m4_dot, 4, 1, 1)
WINO_FORWARD(forward_m2_f32, 2, 0, 0)
WINO_FORWARD(forward_m2_bf16, 2, 1, 0)
WINO_FORWARD(forward_m2_dot, 2, 1, 1)

#pragma GCC pop_options

void cpu_wino_forward(cpu_wino *p, const void *src, void *dst, cpu_wino_post post, float alpha,
                      float *scratch)
{
    forward_fn *f = p->m == 4 ? (p->dot ? forward_m4_dot : p->bf16 ? forward_m4_bf16 : forward_m4_f32)
                              : (p->dot ? forward_m2_dot : p->bf16 ? forward_m2_bf16 : forward_m2_f32);
    f(p, src, dst, post, alpha, scratch ? scratch : p->scratch);
}
