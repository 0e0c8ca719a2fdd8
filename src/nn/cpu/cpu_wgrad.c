/* bf16 backward-weights of 3x3 stride-1 convolutions by Winograd
 * F(2x2, 3x3): see cpu_wgrad.h. */
#include "nn/cpu/cpu_wgrad.h"

#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nn/cpu/cpu_wino.h"

/* Output tiles (2x2) of one tile row that a pass transforms and reduces:
 * 32 pairs, vdpbf16ps summing the two tiles of a pair. */
enum { WW_GROUP = 64 };

struct cpu_wgrad {
    int n, cin, cout, h, w, threads;
    int th, tw;
    size_t per_thread; /* bytes of one thread's scratch, a multiple of 64 */
    unsigned char *scratch;
};

/* A thread's scratch, each part 64-byte aligned:
 *  V  [16 pos][WW_GROUP/2 pairs][cin] words: the bf16 pair (V of tile 2k,
 *     V of tile 2k + 1) of one input channel, V = B^T d B;
 *  Y  [16 pos][WW_GROUP/2 pairs][cout/16][16] words: the same of
 *     A dy A^T for 16 output channels;
 *  S  [16 pos][cout/16][cin][16] fp32: the sums over this thread's tiles;
 *  db [cout/16][16] fp32. */
static size_t v_bytes(const cpu_wgrad *p) { return (size_t)16 * (WW_GROUP / 2) * (size_t)p->cin * 4; }
static size_t y_bytes(const cpu_wgrad *p) { return (size_t)16 * (WW_GROUP / 2) * (size_t)p->cout * 4; }
static size_t s_bytes(const cpu_wgrad *p) { return (size_t)16 * (size_t)p->cout * (size_t)p->cin * 4; }
static size_t db_bytes(const cpu_wgrad *p) { return ((size_t)p->cout * 4 + 63) & ~(size_t)63; }

cpu_wgrad *cpu_wgrad_create(int n, int cin, int cout, int h, int w, int threads)
{
    if (n < 1 || h < 1 || w < 1 || cin < 16 || cout < 16 || cin % 16 || cout % 16 ||
        !cpu_wino_bf16_dot_available())
        return NULL;
    cpu_wgrad *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = n, p->cin = cin, p->cout = cout, p->h = h, p->w = w;
    p->th = (h + 1) / 2, p->tw = (w + 1) / 2;
    p->threads = threads > 0 ? threads : omp_get_max_threads();
    p->per_thread = v_bytes(p) + y_bytes(p) + s_bytes(p) + db_bytes(p);
    p->scratch = aligned_alloc(64, p->per_thread * (size_t)p->threads);
    if (!p->scratch) {
        free(p);
        return NULL;
    }
    return p;
}

void cpu_wgrad_destroy(cpu_wgrad *p)
{
    if (!p) return;
    free(p->scratch);
    free(p);
}

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512bf16")

#define WW_INLINE static inline __attribute__((always_inline))

#include "nn/cpu/cpu_bf16wino.h"

/* 32 bf16: (lo[i], hi[i]) for i = 0..15, each rounded to nearest even. */
WW_INLINE __m512i pairs(__m512 lo, __m512 hi)
{
    const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9,
                                         24, 8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1,
                                         16, 0);
    return _mm512_permutexvar_epi16(idx, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
}

/* v rounded to bf16 and back. */
WW_INLINE __m512 rounded(__m512 v)
{
    return _mm512_castsi512_ps(
        _mm512_slli_epi32(_mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(v)), 16));
}

/* The 4x4 transforms of both tiles of pair k (tiles tx, tx + 1; the second
 * zero when tx + 1 >= last) of one input channel block, into V. */
static void input_pair(const cpu_wgrad *p, const float *const rows[4], int tx, int last, int k,
                       int cb, uint32_t *V)
{
    const int W = p->w, CI = p->cin;
    const int two = tx + 1 < last;
    __m512 t[6][4]; /* columns 2tx - 1 .. 2tx + 4, transformed down */
    for (int c = 0; c < 6; c++)
        if (c < 4 || two) bf16wino_column(rows, 2 * tx - 1 + c, W, t[c]);
    for (int i = 0; i < 4; i++) {
        __m512 va[4], vb[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                               _mm512_setzero_ps()};
        bf16wino_bt(t[0][i], t[1][i], t[2][i], t[3][i], va);
        if (two) bf16wino_bt(t[2][i], t[3][i], t[4][i], t[5][i], vb);
        for (int j = 0; j < 4; j++)
            _mm512_store_si512(V + (((size_t)(i * 4 + j) * (WW_GROUP / 2) + k) * CI + cb * 16),
                               pairs(va[j], vb[j]));
    }
}

/* A dy A^T of one tile (rows dy0, dy1 at columns 2tx, 2tx + 1; zero
 * outside): 1D A e = (e0, e0 + e1, e0 - e1, -e1), rounded later (pairs).
 * Adds the bf16-rounded dy to *db. */
WW_INLINE void output_tile(const float *dy0, const float *dy1, int tx, int W, __m512 y[16],
                           __m512 *db)
{
    const __m512 e00 = bf16wino_load(dy0, 2 * tx, W), e01 = bf16wino_load(dy0, 2 * tx + 1, W),
                 e10 = bf16wino_load(dy1, 2 * tx, W), e11 = bf16wino_load(dy1, 2 * tx + 1, W);
    *db = _mm512_add_ps(*db, _mm512_add_ps(_mm512_add_ps(rounded(e00), rounded(e01)),
                                           _mm512_add_ps(rounded(e10), rounded(e11))));
    const __m512 zero = _mm512_setzero_ps();
    /* Along rows: r[p][b]. */
    const __m512 r[4][2] = {{e00, e01},
                            {_mm512_add_ps(e00, e10), _mm512_add_ps(e01, e11)},
                            {_mm512_sub_ps(e00, e10), _mm512_sub_ps(e01, e11)},
                            {_mm512_sub_ps(zero, e10), _mm512_sub_ps(zero, e11)}};
    for (int i = 0; i < 4; i++) {
        y[i * 4 + 0] = r[i][0];
        y[i * 4 + 1] = _mm512_add_ps(r[i][0], r[i][1]);
        y[i * 4 + 2] = _mm512_sub_ps(r[i][0], r[i][1]);
        y[i * 4 + 3] = _mm512_sub_ps(zero, r[i][1]);
    }
}

#define WW_LOAD(I) __m512 s##I = _mm512_load_ps(S + (size_t)(I) * 16);
#define WW_STEP(I) BF16_DOT(s##I, yv, v[I]);
#define WW_SAVE(I) _mm512_store_ps(S + (size_t)(I) * 16, s##I);

/* S[pos][ob][cb's 16 channels] += the products of `pairs` pairs. */
static void reduce(const cpu_wgrad *p, const uint32_t *V, const uint32_t *Y, float *Sall, int pairs)
{
    const int CI = p->cin, OB = p->cout / 16;
    for (int pos = 0; pos < 16; pos++)
        for (int ob = 0; ob < OB; ob++)
            for (int cb = 0; cb < CI / 16; cb++) {
                float *S = Sall + (((size_t)pos * OB + ob) * CI + (size_t)cb * 16) * 16;
                BF16_EACH16(WW_LOAD)
                for (int k = 0; k < pairs; k++) {
                    const __m512i yv = _mm512_load_si512(
                        Y + (((size_t)pos * (WW_GROUP / 2) + k) * OB + ob) * 16);
                    const uint32_t *v = V + ((size_t)pos * (WW_GROUP / 2) + k) * CI + cb * 16;
                    BF16_EACH16(WW_STEP)
                }
                BF16_EACH16(WW_SAVE)
            }
}

/* One thread's tile rows [r0, r1) into its S and db. */
static void run_rows(const cpu_wgrad *p, const float *x, const float *dy, unsigned char *s,
                     long r0, long r1)
{
    uint32_t *V = (uint32_t *)s;
    uint32_t *Y = (uint32_t *)(s + v_bytes(p));
    float *S = (float *)(s + v_bytes(p) + y_bytes(p));
    float *db = (float *)((unsigned char *)S + s_bytes(p));
    memset(S, 0, s_bytes(p));
    memset(db, 0, (size_t)p->cout * 4);
    const int CB = p->cin / 16, OB = p->cout / 16, H = p->h, W = p->w;
    for (long it = r0; it < r1; it++) {
        const int n = (int)(it / p->th), ty = (int)(it % p->th);
        for (int tx0 = 0; tx0 < p->tw; tx0 += WW_GROUP) {
            const int last = tx0 + WW_GROUP < p->tw ? tx0 + WW_GROUP : p->tw;
            const int npairs = (last - tx0 + 1) / 2;
            for (int cb = 0; cb < CB; cb++) {
                const float *rows[4];
                bf16wino_rows(x, n, CB, cb, H, W, ty, rows);
                for (int k = 0; k < npairs; k++) input_pair(p, rows, tx0 + 2 * k, last, k, cb, V);
            }
            for (int ob = 0; ob < OB; ob++) {
                const float *plane = dy + ((size_t)n * OB + ob) * (size_t)H * W * 16;
                const float *dy0 = plane + (size_t)(2 * ty) * W * 16;
                const float *dy1 = 2 * ty + 1 < H ? dy0 + (size_t)W * 16 : NULL;
                __m512 b = _mm512_load_ps(db + ob * 16);
                for (int k = 0; k < npairs; k++) {
                    const int tx = tx0 + 2 * k;
                    __m512 ya[16], yb[16];
                    output_tile(dy0, dy1, tx, W, ya, &b);
                    if (tx + 1 < last) {
                        output_tile(dy0, dy1, tx + 1, W, yb, &b);
                    } else {
                        for (int q = 0; q < 16; q++) yb[q] = _mm512_setzero_ps();
                    }
                    for (int q = 0; q < 16; q++)
                        _mm512_store_si512(Y + (((size_t)q * (WW_GROUP / 2) + k) * OB + ob) * 16,
                                           pairs(ya[q], yb[q]));
                }
                _mm512_store_ps(db + ob * 16, b);
            }
            reduce(p, V, Y, S, npairs);
        }
    }
}

#pragma GCC pop_options

void cpu_wgrad_run(cpu_wgrad *p, const float *x, const float *dy, float *dweight, float *dbias)
{
    const long items = (long)p->n * p->th;
    int used = p->threads;
#pragma omp parallel num_threads(p->threads)
    {
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
#pragma omp single
        used = nt;
        run_rows(p, x, dy, p->scratch + (size_t)t * p->per_thread, items * t / nt,
                 items * (t + 1) / nt);
    }
    /* dW = G^T (sum over threads of S) G, the threads in a fixed order; G^T
     * = [1 .5 .5 0; 0 .5 -.5 0; 0 .5 .5 1]. */
    static const double GT[3][4] = {{1, 0.5, 0.5, 0}, {0, 0.5, -0.5, 0}, {0, 0.5, 0.5, 1}};
    const int CI = p->cin, OB = p->cout / 16;
    for (int o = 0; o < p->cout; o++) {
        for (int i = 0; i < CI; i++) {
            double m[4][4] = {{0}};
            for (int t = 0; t < used; t++) {
                const float *S = (const float *)(p->scratch + (size_t)t * p->per_thread +
                                                 v_bytes(p) + y_bytes(p));
                for (int pos = 0; pos < 16; pos++)
                    m[pos / 4][pos % 4] +=
                        S[(((size_t)pos * OB + (size_t)(o / 16)) * CI + (size_t)i) * 16 + o % 16];
            }
            for (int kh = 0; kh < 3; kh++)
                for (int kw = 0; kw < 3; kw++) {
                    double v = 0;
                    for (int a = 0; a < 4; a++)
                        for (int b = 0; b < 4; b++) v += GT[kh][a] * m[a][b] * GT[kw][b];
                    dweight[(((size_t)o * CI + (size_t)i) * 3 + kh) * 3 + kw] += (float)v;
                }
        }
        for (int t = 0; t < used; t++) {
            const float *db = (const float *)(p->scratch + (size_t)t * p->per_thread + v_bytes(p) +
                                              y_bytes(p) + s_bytes(p));
            dbias[o] += db[o];
        }
    }
}
