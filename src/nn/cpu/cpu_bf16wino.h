/*
 * What the bf16 Winograd F(2x2, 3x3) training kernels share (cpu_bfwino.c:
 * forward and backward-data; cpu_wgrad.c: backward-weights): the input
 * tiles' transform B^T d B, their guarded loads from an nChw16c fp32
 * activation, and the vdpbf16ps step with a broadcast from memory.
 * Include it between `#pragma GCC target("avx512f,avx512bw,avx512vl,
 * avx512bf16")` and the matching pop: it defines AVX-512 code. Which CPUs
 * run it: cpu_wino_bf16_dot_available() (cpu_wino.h).
 */
#ifndef BCAE_NN_CPU_BF16WINO_H
#define BCAE_NN_CPU_BF16WINO_H

#include <immintrin.h>
#include <stddef.h>

/* acc += a . broadcast(m) (16 lanes, each the sum of two bf16 products).
 * Inline assembly for the embedded broadcast: GCC 12 would load each
 * broadcast into a register of its own, and the kernels' 16-28 sums then
 * no longer fit in registers. */
#define BF16_DOT(acc, a, m) \
    __asm__("vdpbf16ps %[x]%{1to16%}, %[y], %[c]" : [c] "+v"(acc) : [y] "v"(a), [x] "m"(m))

/* X(0) .. X(15): one named register variable per sum (GCC keeps an array
 * of them in memory). */
#define BF16_EACH16(X) \
    X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)

/* The four rows of tile row ty (image rows 2ty - 1 .. 2ty + 2) of channel
 * block cb of image n, NULL outside the image. */
static inline void bf16wino_rows(const float *x, int n, int cblocks, int cb, int h, int w, int ty,
                                 const float *rows[4])
{
    for (int i = 0; i < 4; i++) {
        const int yy = 2 * ty - 1 + i;
        rows[i] = yy >= 0 && yy < h
                      ? x + ((((size_t)n * (size_t)cblocks + (size_t)cb) * (size_t)h + (size_t)yy) *
                             (size_t)w) * 16
                      : NULL;
    }
}

/* The 16 channels at column c of row (zero outside the image). */
static inline __attribute__((always_inline)) __m512 bf16wino_load(const float *row, int c, int w)
{
    return row && c >= 0 && c < w ? _mm512_loadu_ps(row + (size_t)c * 16) : _mm512_setzero_ps();
}

/* One direction of B^T d: (d0 - d2, d1 + d2, d2 - d1, d1 - d3). */
static inline __attribute__((always_inline)) void bf16wino_bt(__m512 d0, __m512 d1, __m512 d2,
                                                              __m512 d3, __m512 t[4])
{
    t[0] = _mm512_sub_ps(d0, d2);
    t[1] = _mm512_add_ps(d1, d2);
    t[2] = _mm512_sub_ps(d2, d1);
    t[3] = _mm512_sub_ps(d1, d3);
}

/* Column c of a tile row, transformed down its four rows. */
static inline __attribute__((always_inline)) void bf16wino_column(const float *const rows[4], int c,
                                                                  int w, __m512 t[4])
{
    bf16wino_bt(bf16wino_load(rows[0], c, w), bf16wino_load(rows[1], c, w),
                bf16wino_load(rows[2], c, w), bf16wino_load(rows[3], c, w), t);
}

#endif
