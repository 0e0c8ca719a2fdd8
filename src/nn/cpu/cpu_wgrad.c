/* bf16 backward-weights of 3x3 stride-1 convolutions: see cpu_wgrad.h. */
#include "nn/cpu/cpu_wgrad.h"

#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nn/cpu/cpu_report.h"

/* Output rows a thread rounds and reduces at a time: its scratch (R + 2
 * rows of x pairs, R rows of dy pairs; ~260 KB at 32 channels, 256
 * columns) stays in L2 while every (output block, input chunk) pass reads
 * it; the x rows above and below are rounded twice, (R + 2) / R. */
enum { WG_ROWS = 4 };
/* Column pairs a pass covers before moving to the next row: the x pairs
 * of a tile (~7 KB for 16 pairs) stay in L1 while the three output rows
 * that read each of them go by. */
enum { WG_TILE = 16 };
/* Input channels per register-resident pass: 3 x 9 taps = 27 accumulators
 * and one dy vector in 32 registers (chunk_pass3). */

struct cpu_wgrad {
    int n, cin, cout, h, w, threads;
    size_t per_thread; /* bytes of one thread's scratch, a multiple of 64 */
    unsigned char *scratch;
};

/* A thread's scratch, in order, each part 64-byte aligned:
 *  xp  [WG_ROWS + 2][cin/16][w + 1][16] pairs of bf16 (32 bits): entry j of
 *      a row holds (x[j - 1], x[j]) of each channel, zero outside the image
 *      (rows above the first and below the last are all zero);
 *  dyp [WG_ROWS][cout/16][w/2][16] pairs (dy[2j], dy[2j + 1]);
 *  dw  [cout/16][cin][9][16] fp32 private sums, output channel in the lane;
 *  db  [cout/16][16] fp32. */
static size_t align64(size_t b) { return (b + 63) & ~(size_t)63; }
static size_t xp_bytes(const cpu_wgrad *p)
{
    return align64((size_t)(WG_ROWS + 2) * (size_t)(p->cin / 16) * (size_t)(p->w + 1) * 64);
}
static size_t dyp_bytes(const cpu_wgrad *p)
{
    return align64((size_t)WG_ROWS * (size_t)(p->cout / 16) * (size_t)(p->w / 2) * 64);
}
static size_t dw_bytes(const cpu_wgrad *p) { return (size_t)p->cout * (size_t)p->cin * 9 * 4; }
static size_t db_bytes(const cpu_wgrad *p) { return align64((size_t)p->cout * 4); }

int cpu_wgrad_available(void)
{
    return cpu_isa_allows(CPU_LEVEL_AVX512_BF16) && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512bf16");
}

cpu_wgrad *cpu_wgrad_create(int n, int cin, int cout, int h, int w, int threads)
{
    if (n < 1 || h < 1 || w < 2 || cin < 16 || cout < 16 || cin % 16 || cout % 16 || w % 2 ||
        !cpu_wgrad_available())
        return NULL;
    cpu_wgrad *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = n, p->cin = cin, p->cout = cout, p->h = h, p->w = w;
    p->threads = threads > 0 ? threads : omp_get_max_threads();
    p->per_thread = xp_bytes(p) + dyp_bytes(p) + dw_bytes(p) + db_bytes(p);
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

#define WG_INLINE static inline __attribute__((always_inline))

/* 32 bf16: (lo[i], hi[i]) for i = 0..15, each rounded to nearest even. */
WG_INLINE __m512i pairs(__m512 lo, __m512 hi)
{
    /* cvtne2ps puts lo's 16 words first, hi's after; interleave them. */
    const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9,
                                         24, 8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1,
                                         16, 0);
    return _mm512_permutexvar_epi16(idx, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
}

/* One padded row of x pairs (image row hr, zero outside [0, H)). */
WG_INLINE void round_x_row(const cpu_wgrad *p, const float *x, int n, int hr, __m512i *out)
{
    const int CB = p->cin / 16, H = p->h, W = p->w;
    for (int cb = 0; cb < CB; cb++, out += W + 1) {
        if (hr < 0 || hr >= H) {
            for (int j = 0; j <= W; j++) _mm512_store_si512(out + j, _mm512_setzero_si512());
            continue;
        }
        const float *row = x + ((((size_t)n * CB + cb) * H + hr) * W) * 16;
        __m512 lo = _mm512_setzero_ps();
        for (int j = 0; j < W; j++) {
            __m512 hi = _mm512_loadu_ps(row + (size_t)j * 16);
            _mm512_store_si512(out + j, pairs(lo, hi));
            lo = hi;
        }
        _mm512_store_si512(out + W, pairs(lo, _mm512_setzero_ps()));
    }
}

/* One row of dy pairs; adds the row's rounded values to the bias sums. */
WG_INLINE void round_dy_row(const cpu_wgrad *p, const float *dy, int n, int hr, __m512i *out,
                            float *db)
{
    const int OB = p->cout / 16, H = p->h, W = p->w;
    for (int ob = 0; ob < OB; ob++) {
        const float *row = dy + ((((size_t)n * OB + ob) * H + hr) * W) * 16;
        __m512i *o = out + (size_t)ob * (W / 2);
        __m512 s = _mm512_load_ps(db + ob * 16);
        for (int j = 0; j < W / 2; j++) {
            const __m512i v = pairs(_mm512_loadu_ps(row + (size_t)j * 32),
                                    _mm512_loadu_ps(row + (size_t)j * 32 + 16));
            _mm512_store_si512(o + j, v);
            /* The bias sums the rounded dy too, as oneDNN's bf16 pass does:
             * each 32-bit lane holds (dy[2j], dy[2j + 1]) as bf16. */
            const __m512 lo = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
            const __m512 hi = _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32(-65536)));
            s = _mm512_add_ps(s, _mm512_add_ps(lo, hi));
        }
        _mm512_store_ps(db + ob * 16, s);
    }
}

/* acc += a . broadcast(*m) (16 lanes of two bf16 products each). Inline
 * assembly for the embedded broadcast: GCC 12 loads each broadcast into a
 * register of its own, and 27 accumulators then no longer fit. */
#define WG_DOT(acc, a, m) \
    __asm__("vdpbf16ps %[x]%{1to16%}, %[y], %[c]" : [c] "+v"(acc) : [y] "v"(a), [x] "m"(m))

/* The products of `rows` output rows for output block ob and the input
 * channels ic0 .. ic0 + CHUNK - 1, all in one block of 16, added into dw.
 * One function per CHUNK (3 and 1), each accumulator a variable of its own
 * named a<kh><i><kw>: GCC keeps an array of them in memory. Every
 * broadcast address is one of three row pointers plus a constant. */
#define WG_TAPS3(X) X(0, 0, 0) X(0, 0, 1) X(0, 0, 2) X(0, 1, 0) X(0, 1, 1) X(0, 1, 2) X(0, 2, 0) \
    X(0, 2, 1) X(0, 2, 2) X(1, 0, 0) X(1, 0, 1) X(1, 0, 2) X(1, 1, 0) X(1, 1, 1) X(1, 1, 2) \
    X(1, 2, 0) X(1, 2, 1) X(1, 2, 2) X(2, 0, 0) X(2, 0, 1) X(2, 0, 2) X(2, 1, 0) X(2, 1, 1) \
    X(2, 1, 2) X(2, 2, 0) X(2, 2, 1) X(2, 2, 2)
#define WG_TAPS1(X) X(0, 0, 0) X(0, 0, 1) X(0, 0, 2) X(1, 0, 0) X(1, 0, 1) X(1, 0, 2) X(2, 0, 0) \
    X(2, 0, 1) X(2, 0, 2)

#define WG_ZERO(kh, i, kw) __m512 a##kh##i##kw = _mm512_setzero_ps();
/* Output columns 2j, 2j + 1 meet x columns 2j + kw - 1, 2j + kw: pair
 * entry 2j + kw of padded x row r + kh, at q<kh>. */
#define WG_STEP(kh, i, kw) WG_DOT(a##kh##i##kw, v, q##kh[(i) + (kw) * 16]);
#define WG_ADD(kh, i, kw)                                                                    \
    {                                                                                        \
        float *t = dw + (((size_t)ob * p->cin + (size_t)(ic0 + (i))) * 9 + (kh) * 3 + (kw)) * 16; \
        _mm512_store_ps(t, _mm512_add_ps(_mm512_load_ps(t), a##kh##i##kw));                  \
    }

#define WG_CHUNK_PASS(NAME, TAPS)                                                            \
    static void NAME(const cpu_wgrad *p, const uint32_t *xp, const __m512i *dyp, float *dw,  \
                     int rows, int ob, int ic0)                                              \
    {                                                                                        \
        const int CB = p->cin / 16, OB = p->cout / 16, W2 = p->w / 2;                        \
        const size_t xrow = (size_t)CB * (size_t)(p->w + 1) * 16; /* words a padded row */   \
        const size_t off = (size_t)(ic0 / 16) * (size_t)(p->w + 1) * 16 + (size_t)(ic0 % 16); \
        TAPS(WG_ZERO)                                                                        \
        for (int j0 = 0; j0 < W2; j0 += WG_TILE) {                                          \
            const int j1 = j0 + WG_TILE < W2 ? j0 + WG_TILE : W2;                            \
            for (int r = 0; r < rows; r++) {                                                 \
                const __m512i *d = dyp + ((size_t)r * OB + ob) * W2;                         \
                const uint32_t *q0 = xp + (size_t)r * xrow + off + (size_t)j0 * 32;          \
                const uint32_t *q1 = q0 + xrow, *q2 = q1 + xrow;                             \
                for (int j = j0; j < j1; j++, q0 += 32, q1 += 32, q2 += 32) {                \
                    const __m512i v = _mm512_load_si512(d + j);                              \
                    TAPS(WG_STEP)                                                            \
                }                                                                            \
            }                                                                                \
        }                                                                                    \
        TAPS(WG_ADD)                                                                         \
    }

WG_CHUNK_PASS(chunk_pass3, WG_TAPS3)
WG_CHUNK_PASS(chunk_pass1, WG_TAPS1)

/* One thread's share: blocks [b0, b1) of WG_ROWS output rows. */
static void run_blocks(const cpu_wgrad *p, const float *x, const float *dy, unsigned char *s,
                       long b0, long b1)
{
    __m512i *xp = (__m512i *)s;
    __m512i *dyp = (__m512i *)(s + xp_bytes(p));
    float *dw = (float *)(s + xp_bytes(p) + dyp_bytes(p));
    float *db = (float *)((unsigned char *)dw + dw_bytes(p));
    memset(dw, 0, dw_bytes(p));
    memset(db, 0, (size_t)p->cout * 4);
    const int HB = (p->h + WG_ROWS - 1) / WG_ROWS;
    const size_t xrow = (size_t)(p->cin / 16) * (size_t)(p->w + 1); /* vectors */
    const size_t dyrow = (size_t)(p->cout / 16) * (size_t)(p->w / 2);
    for (long b = b0; b < b1; b++) {
        const int n = (int)(b / HB), h0 = (int)(b % HB) * WG_ROWS;
        const int rows = p->h - h0 < WG_ROWS ? p->h - h0 : WG_ROWS;
        for (int q = 0; q < rows + 2; q++) round_x_row(p, x, n, h0 - 1 + q, xp + q * xrow);
        for (int r = 0; r < rows; r++) round_dy_row(p, dy, n, h0 + r, dyp + r * dyrow, db);
        /* Chunks of 3 + 3 + 3 + 3 + 3 + 1 channels of each block of 16. */
        for (int ob = 0; ob < p->cout / 16; ob++)
            for (int ib = 0; ib < p->cin; ib += 16) {
                for (int ic0 = ib; ic0 < ib + 15; ic0 += 3)
                    chunk_pass3(p, (const uint32_t *)xp, dyp, dw, rows, ob, ic0);
                chunk_pass1(p, (const uint32_t *)xp, dyp, dw, rows, ob, ib + 15);
            }
    }
}

#pragma GCC pop_options

void cpu_wgrad_run(cpu_wgrad *p, const float *x, const float *dy, float *dweight, float *dbias)
{
    const long blocks = (long)p->n * ((p->h + WG_ROWS - 1) / WG_ROWS);
    int used = p->threads;
#pragma omp parallel num_threads(p->threads)
    {
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
#pragma omp single
        used = nt;
        run_blocks(p, x, dy, p->scratch + (size_t)t * p->per_thread, blocks * t / nt,
                   blocks * (t + 1) / nt);
    }
    /* The threads' private sums, in a fixed order: the result does not
     * depend on timing. */
    const int CI = p->cin;
    for (int t = 0; t < used; t++) {
        const unsigned char *s = p->scratch + (size_t)t * p->per_thread;
        const float *dw = (const float *)(s + xp_bytes(p) + dyp_bytes(p));
        const float *db = (const float *)((const unsigned char *)dw + dw_bytes(p));
        for (int o = 0; o < p->cout; o++) {
            for (int i = 0; i < CI; i++)
                for (int k = 0; k < 9; k++)
                    dweight[((size_t)o * CI + i) * 9 + k] +=
                        dw[(((size_t)(o / 16) * CI + i) * 9 + k) * 16 + o % 16];
            dbias[o] += db[o];
        }
    }
}
