/* bf16 forward of 3x3 stride-1 convolutions: see cpu_bfconv.h. */
#include "nn/cpu/cpu_bfconv.h"

#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nn/cpu/cpu_report.h"
#include "nn/engine.h"

/* Output rows a thread works on at a time: it rounds R + 2 input rows into
 * its scratch (~110 KB at 32 channels, 256 columns: L2), so each input row
 * is rounded (R + 2) / R times. */
enum { BF_ROWS = 4 };
/* Output columns a register tile holds: 16 sums of 16 channels each, one
 * weight vector, in 32 registers. */
enum { BF_COLS = 16 };

struct cpu_bfconv {
    int n, cin, cout, h, w, threads;
    int wp;            /* padded row length: column -1, w columns, zeros to a tile's end */
    uint16_t *weights; /* [cout/16][3 kh][cin/16][3 kw][8 pairs][16 out][2] bf16 */
    size_t per_thread; /* bytes of one thread's scratch, a multiple of 64 */
    unsigned char *scratch;
};

/* A thread's scratch: [BF_ROWS + 2][cin/16][wp][8 pairs] of 32-bit words,
 * each the bf16 pair (x[2p], x[2p + 1]) of channels 2p, 2p + 1 of a block
 * of 16 (nChw16c's own order, rounded), position q holding column q - 1;
 * rows and columns outside the image are zero. */
static size_t rows_bytes(const cpu_bfconv *p)
{
    return ((size_t)(BF_ROWS + 2) * (size_t)(p->cin / 16) * (size_t)p->wp * 32 + 63) & ~(size_t)63;
}

int cpu_bfconv_available(void)
{
    return cpu_isa_allows(CPU_LEVEL_AVX512_BF16) && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512bf16");
}

cpu_bfconv *cpu_bfconv_create(int n, int cin, int cout, int h, int w, int threads)
{
    if (n < 1 || h < 1 || w < 1 || cin < 16 || cout < 16 || cin % 16 || cout % 16 ||
        !cpu_bfconv_available())
        return NULL;
    cpu_bfconv *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = n, p->cin = cin, p->cout = cout, p->h = h, p->w = w;
    p->threads = threads > 0 ? threads : omp_get_max_threads();
    p->wp = (w + BF_COLS - 1) / BF_COLS * BF_COLS + 2;
    p->per_thread = rows_bytes(p);
    size_t wbytes = ((size_t)cout * (size_t)cin * 9 * 2 + 63) & ~(size_t)63;
    p->weights = aligned_alloc(64, wbytes);
    p->scratch = aligned_alloc(64, p->per_thread * (size_t)p->threads);
    if (!p->weights || !p->scratch) {
        cpu_bfconv_destroy(p);
        return NULL;
    }
    memset(p->weights, 0, wbytes);
    /* Columns past the image stay zero for good: only 1..w are rewritten. */
    memset(p->scratch, 0, p->per_thread * (size_t)p->threads);
    return p;
}

void cpu_bfconv_destroy(cpu_bfconv *p)
{
    if (!p) return;
    free(p->weights);
    free(p->scratch);
    free(p);
}

static uint16_t round_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

void cpu_bfconv_set_weights(cpu_bfconv *p, const float *weight)
{
    const int CI = p->cin, CO = p->cout, CB = CI / 16;
    for (int o = 0; o < CO; o++)
        for (int i = 0; i < CI; i++)
            for (int kh = 0; kh < 3; kh++)
                for (int kw = 0; kw < 3; kw++) {
                    const float v = weight[(((size_t)o * CI + i) * 3 + kh) * 3 + kw];
                    const size_t vec = ((((size_t)(o / 16) * 3 + kh) * CB + i / 16) * 3 + kw) * 8 +
                                       (size_t)(i % 16) / 2;
                    p->weights[(vec * 16 + (size_t)(o % 16)) * 2 + (size_t)(i % 2)] = round_bf16(v);
                }
}

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512bf16")

/* acc += a . broadcast(m): inline assembly for the embedded broadcast (GCC
 * 12 would load each broadcast into a register of its own). */
#define BF_DOT(acc, a, m) \
    __asm__("vdpbf16ps %[x]%{1to16%}, %[y], %[c]" : [c] "+v"(acc) : [y] "v"(a), [x] "m"(m))

/* One input row (image row hr, zero outside [0, H)) into scratch: per block
 * of 16 channels, positions 1..W. */
static void round_row(const cpu_bfconv *p, const float *x, int n, int hr, uint32_t *out)
{
    const int CB = p->cin / 16, H = p->h, W = p->w;
    for (int cb = 0; cb < CB; cb++) {
        uint32_t *o = out + ((size_t)cb * p->wp + 1) * 8;
        if (hr < 0 || hr >= H) {
            memset(o, 0, (size_t)W * 32);
            continue;
        }
        const float *row = x + ((((size_t)n * CB + cb) * H + hr) * W) * 16;
        int j = 0;
        for (; j + 2 <= W; j += 2)
            _mm512_storeu_si512(o + (size_t)j * 8,
                                (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(row + (size_t)j * 16 + 16),
                                                            _mm512_loadu_ps(row + (size_t)j * 16)));
        if (j < W)
            _mm256_storeu_si256((__m256i *)(o + (size_t)j * 8),
                                (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(row + (size_t)j * 16)));
    }
}

#define BF_COLS16(X, KW, PR) \
    X(0, KW, PR) X(1, KW, PR) X(2, KW, PR) X(3, KW, PR) X(4, KW, PR) X(5, KW, PR) X(6, KW, PR) \
    X(7, KW, PR) X(8, KW, PR) X(9, KW, PR) X(10, KW, PR) X(11, KW, PR) X(12, KW, PR)         \
    X(13, KW, PR) X(14, KW, PR) X(15, KW, PR)
/* Output column c of the tile meets position c + kw (column c + kw - 1);
 * pair PR of the channel block. */
#define BF_STEP(C, KW, PR) BF_DOT(a##C, v, b[((C) + (KW)) * 8 + (PR)]);
#define BF_TAP(KW, PR)                                              \
    {                                                               \
        const __m512i v = _mm512_load_si512(wv + (KW) * 8 + (PR)); \
        BF_COLS16(BF_STEP, KW, PR)                                  \
    }
#define BF_TAPS_KW(KW) \
    BF_TAP(KW, 0) BF_TAP(KW, 1) BF_TAP(KW, 2) BF_TAP(KW, 3) BF_TAP(KW, 4) BF_TAP(KW, 5) BF_TAP(KW, 6) BF_TAP(KW, 7)
#define BF_ACC(C) __m512 a##C = _mm512_setzero_ps();
#define BF_EACH(X) \
    X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)
#define BF_OUT(C)                                                                  \
    if (w0 + (C) < W) {                                                            \
        __m512 t = _mm512_add_ps(a##C, bv);                                        \
        if (leaky) t = _mm512_max_ps(t, _mm512_mul_ps(t, slope));                  \
        _mm512_storeu_ps(yrow + (size_t)(w0 + (C)) * 16, t);                       \
    }

/* One output row r of the block (input rows r .. r + 2 in scratch), output
 * block ob, all column tiles. */
static void out_row(const cpu_bfconv *p, const uint32_t *rows, const float *bias, int leaky,
                    float *yrow, int ob)
{
    const int CB = p->cin / 16, W = p->w;
    const size_t rstride = (size_t)CB * (size_t)p->wp * 8; /* words a scratch row */
    const __m512 bv = bias ? _mm512_loadu_ps(bias + ob * 16) : _mm512_setzero_ps();
    const __m512 slope = _mm512_set1_ps(NN_LEAKY_SLOPE);
    for (int w0 = 0; w0 < W; w0 += BF_COLS) {
        BF_EACH(BF_ACC)
        for (int kh = 0; kh < 3; kh++)
            for (int cb = 0; cb < CB; cb++) {
                const uint32_t *b = rows + kh * rstride + ((size_t)cb * p->wp + (size_t)w0) * 8;
                const __m512i *wv =
                    (const __m512i *)p->weights + (((size_t)ob * 3 + kh) * CB + cb) * 24;
                BF_TAPS_KW(0) BF_TAPS_KW(1) BF_TAPS_KW(2)
            }
        BF_EACH(BF_OUT)
    }
}

#pragma GCC pop_options

void cpu_bfconv_run(cpu_bfconv *p, const float *x, float *y, const float *bias, int leaky)
{
    const int HB = (p->h + BF_ROWS - 1) / BF_ROWS, OB = p->cout / 16;
    const long blocks = (long)p->n * HB;
    const size_t rstride = (size_t)(p->cin / 16) * (size_t)p->wp * 8;
#pragma omp parallel num_threads(p->threads)
    {
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
        uint32_t *rows = (uint32_t *)(p->scratch + (size_t)t * p->per_thread);
        for (long b = blocks * t / nt; b < blocks * (t + 1) / nt; b++) {
            const int n = (int)(b / HB), h0 = (int)(b % HB) * BF_ROWS;
            const int nr = p->h - h0 < BF_ROWS ? p->h - h0 : BF_ROWS;
            for (int q = 0; q < nr + 2; q++) round_row(p, x, n, h0 - 1 + q, rows + q * rstride);
            for (int r = 0; r < nr; r++)
                for (int ob = 0; ob < OB; ob++)
                    out_row(p, rows + r * rstride, bias, leaky,
                            y + ((((size_t)n * OB + ob) * p->h + (size_t)(h0 + r)) * p->w) * 16, ob);
        }
    }
}
