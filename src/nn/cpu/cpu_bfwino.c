/* bf16 Winograd F(2x2, 3x3) for training's 3x3 convolutions: see cpu_bfwino.h. */
#include "nn/cpu/cpu_bfwino.h"

#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nn/cpu/cpu_wino.h"
#include "nn/engine.h"

/* Tiles (2x2 outputs each) along a row that one pass transforms, multiplies
 * and transforms back: 16 sums of 16 channels in registers per GEMM step. */
enum { BW_GROUP = 16 };

struct cpu_bfwino {
    int n, cin, cout, h, w, threads;
    int th, tw;        /* tiles down and across: ceil(h / 2), ceil(w / 2) */
    uint16_t *u;       /* [16 pos][cout/16][cin/16][8 pairs][16 out][2] bf16 */
    size_t per_thread; /* bytes of one thread's scratch, a multiple of 64 */
    unsigned char *scratch;
};

/* A thread's scratch: V [16 pos][cin/16][BW_GROUP tiles][8 pairs] 32-bit
 * words (the transformed input, rounded), then M [16 pos][BW_GROUP][16]
 * fp32 (one output block's products). */
static size_t v_bytes(const cpu_bfwino *p) { return (size_t)16 * (size_t)(p->cin / 16) * BW_GROUP * 32; }
static size_t m_bytes(void) { return (size_t)16 * BW_GROUP * 64; }

cpu_bfwino *cpu_bfwino_create(int n, int cin, int cout, int h, int w, int threads)
{
    if (n < 1 || h < 1 || w < 1 || cin < 16 || cout < 16 || cin % 16 || cout % 16 ||
        !cpu_wino_bf16_dot_available())
        return NULL;
    cpu_bfwino *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = n, p->cin = cin, p->cout = cout, p->h = h, p->w = w;
    p->th = (h + 1) / 2, p->tw = (w + 1) / 2;
    p->threads = threads > 0 ? threads : omp_get_max_threads();
    p->per_thread = (v_bytes(p) + m_bytes() + 63) & ~(size_t)63;
    p->u = aligned_alloc(64, (size_t)16 * (size_t)cout * (size_t)cin * 2);
    p->scratch = aligned_alloc(64, p->per_thread * (size_t)p->threads);
    if (!p->u || !p->scratch) {
        cpu_bfwino_destroy(p);
        return NULL;
    }
    return p;
}

void cpu_bfwino_destroy(cpu_bfwino *p)
{
    if (!p) return;
    free(p->u);
    free(p->scratch);
    free(p);
}

/* f rounded to bf16 stochastically: up with probability (the dropped bits)
 * / 2^16, from a hash of f's bits and of where it is stored (see the
 * header: round-to-nearest made a systematic error). The same weights give
 * the same bf16, so runs and resumes stay reproducible. */
static uint16_t round_bf16_stochastic(float f, uint32_t where)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) >= 0x7f800000u) /* infinities as they are, NaN quiet */
        return (uint16_t)((u >> 16) | ((u & 0x7fffffu) ? 0x40u : 0u));
    uint32_t h = u ^ (where * 0x9e3779b9u);
    h ^= h >> 16, h *= 0x7feb352du, h ^= h >> 15, h *= 0x846ca68bu, h ^= h >> 16;
    const uint32_t r = (u + (h & 0xffffu)) >> 16;
    /* Never round a finite value up to infinity. */
    return (uint16_t)((r & 0x7fffu) == 0x7f80u ? r - 1 : r);
}

void cpu_bfwino_set_weights(cpu_bfwino *p, const float *weight, int transposed)
{
    /* U = G g G^T in double, then rounded once; G = [1 0 0; .5 .5 .5;
     * .5 -.5 .5; 0 0 1]. */
    static const double G[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
    const int CI = p->cin, CO = p->cout, CB = CI / 16, OB = CO / 16;
    for (int o = 0; o < CO; o++)
        for (int i = 0; i < CI; i++) {
            double g[3][3], t[4][3];
            for (int kh = 0; kh < 3; kh++)
                for (int kw = 0; kw < 3; kw++)
                    /* Backward-data: the forward kernel is (CI, CO, 3, 3);
                     * dx[o] gathers dy[i] through it transposed and flipped. */
                    g[kh][kw] = transposed
                                    ? weight[(((size_t)i * CO + o) * 3 + (2 - kh)) * 3 + (2 - kw)]
                                    : weight[(((size_t)o * CI + i) * 3 + kh) * 3 + kw];
            for (int a = 0; a < 4; a++)
                for (int kw = 0; kw < 3; kw++)
                    t[a][kw] = G[a][0] * g[0][kw] + G[a][1] * g[1][kw] + G[a][2] * g[2][kw];
            for (int a = 0; a < 4; a++)
                for (int b = 0; b < 4; b++) {
                    const double v = t[a][0] * G[b][0] + t[a][1] * G[b][1] + t[a][2] * G[b][2];
                    const size_t vec = (((size_t)(a * 4 + b) * OB + (size_t)(o / 16)) * CB +
                                        (size_t)(i / 16)) * 8 + (size_t)(i % 16) / 2;
                    const size_t at = (vec * 16 + (size_t)(o % 16)) * 2 + (size_t)(i % 2);
                    p->u[at] = round_bf16_stochastic((float)v, (uint32_t)at);
                }
        }
}

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512bf16")

#include "nn/cpu/cpu_bf16wino.h"

/* V of tiles tx0 .. tx0 + BW_GROUP - 1 of one channel block: B^T d B,
 * rounded to bf16, at V[pos][cb][tile]. */
static void transform_in(const cpu_bfwino *p, const float *const rows[4], int tx0, int cb,
                         uint32_t *V)
{
    const int CB = p->cin / 16, W = p->w;
    __m512 a[4], b[4], c[4], d[4];
    bf16wino_column(rows, 2 * tx0 - 1, W, a);
    bf16wino_column(rows, 2 * tx0, W, b);
    for (int t = 0; t < BW_GROUP; t++) {
        bf16wino_column(rows, 2 * (tx0 + t) + 1, W, c);
        bf16wino_column(rows, 2 * (tx0 + t) + 2, W, d);
        for (int i = 0; i < 4; i++) {
            __m512 v[4];
            bf16wino_bt(a[i], b[i], c[i], d[i], v);
            for (int j = 0; j < 4; j++)
                _mm256_store_si256(
                    (__m256i *)(V + (((size_t)(i * 4 + j) * CB + cb) * BW_GROUP + t) * 8),
                    (__m256i)_mm512_cvtneps_pbh(v[j]));
        }
        for (int i = 0; i < 4; i++) a[i] = c[i], b[i] = d[i];
    }
}

#define BW_TILES16(X, PR) \
    X(0, PR) X(1, PR) X(2, PR) X(3, PR) X(4, PR) X(5, PR) X(6, PR) X(7, PR) X(8, PR) X(9, PR) \
    X(10, PR) X(11, PR) X(12, PR) X(13, PR) X(14, PR) X(15, PR)
#define BW_STEP(T, PR) BF16_DOT(m##T, u, v[(T) * 8 + (PR)]);
#define BW_PAIR(PR)                                      \
    {                                                    \
        const __m512i u = _mm512_load_si512(uw + (PR));  \
        BW_TILES16(BW_STEP, PR)                          \
    }
#define BW_ZERO(T) __m512 m##T = _mm512_setzero_ps();
#define BW_SAVE(T) _mm512_store_ps(M + (size_t)(T) * 16, m##T);

/* M[pos][tile] = sum over input channels of U[pos][ob] V[pos][tile]. */
static void gemm(const cpu_bfwino *p, const uint32_t *V, int ob, float *Mall)
{
    const int CB = p->cin / 16, OB = p->cout / 16;
    for (int pos = 0; pos < 16; pos++) {
        BF16_EACH16(BW_ZERO)
        for (int cb = 0; cb < CB; cb++) {
            const uint32_t *v = V + ((size_t)pos * CB + cb) * BW_GROUP * 8;
            const __m512i *uw = (const __m512i *)p->u + (((size_t)pos * OB + ob) * CB + cb) * 8;
            BW_PAIR(0) BW_PAIR(1) BW_PAIR(2) BW_PAIR(3) BW_PAIR(4) BW_PAIR(5) BW_PAIR(6) BW_PAIR(7)
        }
        float *M = Mall + (size_t)pos * BW_GROUP * 16;
        BF16_EACH16(BW_SAVE)
    }
}

/* A^T M A for the group's tiles, then the tail (cpu_bfwino_run), into y. */
static void transform_out(const cpu_bfwino *p, const float *M, int n, int ty, int tx0, int ob,
                          const cpu_bfwino_tail *tail, float *y)
{
    const int OB = p->cout / 16, H = p->h, W = p->w;
    const __m512 slope = _mm512_set1_ps(NN_LEAKY_SLOPE);
    const __m512 bv = tail->bias ? _mm512_loadu_ps(tail->bias + ob * 16) : _mm512_setzero_ps();
    const size_t plane = ((size_t)n * OB + ob) * (size_t)H * W * 16;
    for (int t = 0; t < BW_GROUP && tx0 + t < p->tw; t++) {
        __m512 m[4][4], r[2][4];
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++) m[i][j] = _mm512_load_ps(M + ((size_t)(i * 4 + j) * BW_GROUP + t) * 16);
        for (int j = 0; j < 4; j++) {
            r[0][j] = _mm512_add_ps(_mm512_add_ps(m[0][j], m[1][j]), m[2][j]);
            r[1][j] = _mm512_sub_ps(_mm512_sub_ps(m[1][j], m[2][j]), m[3][j]);
        }
        for (int a = 0; a < 2; a++) {
            const int yy = 2 * ty + a, xx = 2 * (tx0 + t);
            if (yy >= H) break;
            const int both = xx + 1 < W;
            __m512 o[2] = {
                _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(r[a][0], r[a][1]), r[a][2]), bv),
                _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(r[a][1], r[a][2]), r[a][3]), bv)};
            const size_t at = plane + ((size_t)yy * W + (size_t)xx) * 16;
            for (int b = 0; b <= both; b++) {
                if (tail->leaky) o[b] = _mm512_max_ps(o[b], _mm512_mul_ps(o[b], slope));
                if (tail->leaky_of) {
                    /* As leaky_relu_backward: the slope where the key's
                     * bits, as a signed integer, are not positive. */
                    const __mmask16 pos = _mm512_cmpgt_epi32_mask(
                        _mm512_loadu_si512(tail->leaky_of + at + (size_t)b * 16),
                        _mm512_setzero_si512());
                    o[b] = _mm512_mask_blend_ps(pos, _mm512_mul_ps(o[b], slope), o[b]);
                }
                if (tail->add) o[b] = _mm512_add_ps(o[b], _mm512_loadu_ps(tail->add + at + (size_t)b * 16));
                _mm512_storeu_ps(y + at + (size_t)b * 16, o[b]);
            }
        }
    }
}

#pragma GCC pop_options

void cpu_bfwino_run(cpu_bfwino *p, const float *x, float *y, const cpu_bfwino_tail *tail)
{
    const int CB = p->cin / 16, OB = p->cout / 16, H = p->h, W = p->w;
    const long items = (long)p->n * p->th;
#pragma omp parallel num_threads(p->threads)
    {
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
        uint32_t *V = (uint32_t *)(p->scratch + (size_t)t * p->per_thread);
        float *M = (float *)(p->scratch + (size_t)t * p->per_thread + v_bytes(p));
        for (long it = items * t / nt; it < items * (t + 1) / nt; it++) {
            const int n = (int)(it / p->th), ty = (int)(it % p->th);
            for (int tx0 = 0; tx0 < p->tw; tx0 += BW_GROUP) {
                for (int cb = 0; cb < CB; cb++) {
                    const float *rows[4];
                    bf16wino_rows(x, n, CB, cb, H, W, ty, rows);
                    transform_in(p, rows, tx0, cb, V);
                }
                for (int ob = 0; ob < OB; ob++) {
                    gemm(p, V, ob, M);
                    transform_out(p, M, n, ty, tx0, ob, tail, y);
                }
            }
        }
    }
}
